//! Building the world for a scenario: gateways on a jittered grid, devices uniformly
//! over the same area, the gossip overlay, the honest fleet's dormancy, reboots and
//! power-cut arming, and the scenario's attack plan.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use slope_node::verifier::Config as VerifierConfig;
use slope_radios::sim::{Channel, Config as ChannelConfig, NodeConfig, Position};

use super::attack::{Attack, Radio, Step};
use super::device::{Device, Role};
use super::gateway::Gateway;
use super::gossip::Overlay;
use super::memo::Memo;
use super::preverify::PreVerifier;
use super::queue::Queue;
use super::radio::exp_us;
use super::receipts::Corroboration;
use super::trace::Trace;
use super::trust::{Operator, Stage, WitnessSite};
use super::{Ev, NodeRole, SAMPLE_MS, World};
use crate::error::Error;
use crate::metrics::{Counters, Series, Truth};
use crate::params::{HOUR_MS, Params, Suite};
use crate::scenario::Scenario;
use slope_node::trust::Position as TrustPosition;

fn trust_error(_: slope_node::trust::Error) -> &'static str {
    "a trust engine that starts (its genesis was refused)"
}

/// Height of a gateway's antenna, metres (its registered position).
const MAST_M: i32 = 30;

/// The trust zone of gateway `g` on a grid of `cols` columns: its site, a 2 × 2 block of
/// neighbouring gateways (one operator's word for four masts).
pub(crate) fn site_zone(g: usize, cols: usize) -> slope_node::trust::Zone {
    let (c, r) = (g % cols, g / cols);
    let zone = 1 + c / 2 + (r / 2) * cols.div_ceil(2);
    slope_node::trust::Zone(u16::try_from(zone).unwrap_or(u16::MAX))
}

/// Devices whose slopes the report plots (honest ones, then attacked ones).
const PLOTTED: usize = 3;

impl World {
    /// Builds the world for `params`.
    pub fn new(params: Params) -> Result<Self, Error> {
        params.check()?;
        let mut rng = ChaCha12Rng::seed_from_u64(params.seed);
        let g_count = params.gateways;
        let cols = (g_count as f64).sqrt().ceil() as usize;
        let rows = g_count.div_ceil(cols);
        let s = params.gateway_spacing_m;
        let (width, height) = (cols as f64 * s, rows as f64 * s);
        let mut channel = Channel::new(ChannelConfig::new(params.seed));
        let mut roles = Vec::new();
        let verifier = VerifierConfig {
            max_devices: params.devices + 4096,
            ..VerifierConfig::default()
        };

        let memo = Memo::default();
        // The pre-verifier takes a core of its own only when asked to (`--preverify`).
        let pre = PreVerifier::new(
            if params.preverify { params.threads } else { 1 },
            &memo,
            params.audit_every,
        );
        let mut gateways = Vec::with_capacity(g_count);
        let mut side = Vec::with_capacity(g_count);
        let operator = Operator::new(params.seed);
        let mut sites = Vec::with_capacity(g_count);
        for g in 0..g_count {
            let pos = Position::new(
                ((g % cols) as f64 + 0.5 + rng.gen_range(-0.2..0.2)) * s,
                ((g / cols) as f64 + 0.5 + rng.gen_range(-0.2..0.2)) * s,
            );
            let node = channel.add_node(pos, NodeConfig::gateway());
            roles.push(NodeRole::Gateway(g as u16));
            side.push(pos.x_m >= width / 2.0);
            let key = ed25519_dalek::SigningKey::from_bytes(&rng.r#gen::<[u8; 32]>());
            let site = WitnessSite {
                key: key.verifying_key().to_bytes(),
                zone: site_zone(g, cols),
                position: TrustPosition {
                    east_m: pos.x_m as i32,
                    north_m: pos.y_m as i32,
                    up_m: MAST_M,
                },
            };
            let stage = Stage::new(&site, operator.public(), 0)
                .map_err(|e| Error::Params(trust_error(e)))?;
            sites.push(site);
            let round = params.gossip.receipt_round_ms;
            let corroboration = Corroboration::new(key, round);
            gateways.push(Box::new(Gateway::new(
                g as u16,
                node,
                pos,
                verifier,
                stage,
                &memo,
                corroboration,
            )));
        }
        // The operator registers every gateway as a witness in its site's zone, at
        // every gateway (its own registration comes from its genesis).
        let actions: Vec<_> = sites.iter().filter_map(|w| operator.register(w)).collect();
        for (g, gw) in gateways.iter_mut().enumerate() {
            for (h, a) in actions.iter().enumerate() {
                if h != g {
                    gw.stage.operator(0, a);
                }
            }
        }
        let overlay = Overlay::new(g_count, params.gossip, side, &mut rng);
        let end_us = params.duration_ms * 1000;
        let pool = (params.threads > 1).then(|| super::tick::Pool::new(params.threads - 1));
        let mut world = World {
            rng,
            queue: Queue::default(),
            channel,
            devices: Vec::with_capacity(params.devices),
            gateways,
            overlay,
            roles,
            identity: Default::default(),
            short: Default::default(),
            interest: Default::default(),
            heard_by: Default::default(),
            home: Vec::with_capacity(params.devices),
            ledger: Vec::new(),
            truth: vec![Truth::default(); params.devices],
            counters: Counters::default(),
            samples: Vec::new(),
            series: Vec::new(),
            attack: Attack::default(),
            trace: Trace::default(),
            now_us: 0,
            end_us,
            events: 0,
            partition_healed_ms: None,
            pre_stats: Default::default(),
            last_rx: None,
            seen: (0..params.gateways).map(|_| Default::default()).collect(),
            memo,
            pre,
            params,
            tape: None,
            pool,
            in_tick: vec![0; g_count],
            ticks: Default::default(),
        };
        world.place_devices(width, height)?;
        world.plan_attack(width, height);
        world.pick_plotted();
        world.schedule(SAMPLE_MS * 1000, Ev::Sample);
        // Receipt rounds, spread over one round so gateways do not all sign at once.
        let round_us = world.params.gossip.receipt_round_ms * 1000;
        for g in 0..g_count {
            let phase = round_us * g as u64 / g_count.max(1) as u64;
            world.schedule(round_us + phase, Ev::Round(g as u16));
        }
        Ok(world)
    }

    fn place_devices(&mut self, width: f64, height: f64) -> Result<(), Error> {
        let config = slope_node::device::Config {
            interval_s: self.params.interval_s,
            ..slope_node::device::Config::default()
        };
        let interval_us = u64::from(self.params.interval_s) * 1_000_000;
        let end_us = self.end_us;
        for i in 0..self.params.devices {
            let pos = Position::new(
                self.rng.gen_range(0.0..width),
                self.rng.gen_range(0.0..height),
            );
            let modulation = self.modulation_at(pos);
            let node = self.channel.add_node(pos, NodeConfig::device());
            self.roles.push(NodeRole::Device(i));
            let home = self
                .gateways
                .iter()
                .min_by(|a, b| a.pos.distance_m(pos).total_cmp(&b.pos.distance_m(pos)))
                .map_or(0, |g| g.index);
            self.home.push(home);
            let behaviour = vec![(i % 7) as u8, 0x51];
            let mut d = Device::new(config, node, pos, modulation, Role::Honest, behaviour);
            if self.params.suite == Suite::Compact {
                d = d.speaking(Suite::Compact, self.params.chain_len, &mut self.rng);
            }
            d.power_on(&mut self.rng, self.params.power_cuts_per_day)?;
            self.devices.push(d);
            let first = self.rng.gen_range(0..interval_us);
            self.schedule(first, Ev::Wake(i));
            if self.params.reboots_per_day > 0.0 {
                let at = exp_us(&mut self.rng, 86_400.0 / self.params.reboots_per_day);
                self.schedule(at, Ev::Reboot(i));
            }
            if self.rng.r#gen::<f64>() < self.params.dormant_fraction {
                let len = self.rng.gen_range(2 * HOUR_MS..=8 * HOUR_MS) * 1000;
                let latest = end_us.saturating_sub(len).max(HOUR_MS * 1000 + 1);
                let from = self.rng.gen_range(HOUR_MS * 1000..latest);
                self.attack.set_dormant(i, from, from + len);
            }
        }
        Ok(())
    }

    fn plan_attack(&mut self, width: f64, height: f64) {
        let p = self.params.clone();
        let at = p.attack_at_ms * 1000;
        let end = self.end_us;
        let spacing = p.gateway_spacing_m;
        let mut order: Vec<usize> = (0..p.devices).collect();
        order.shuffle(&mut self.rng);
        let n = p.attack_size.min(p.devices);
        match p.scenario {
            Scenario::Baseline => {}
            Scenario::Duplicates => self.attack.duplicate_chains = true,
            Scenario::Clone | Scenario::SilentClone | Scenario::BatchCompromise => {
                let victims: Vec<usize> = order[..n].to_vec();
                let latest = end.saturating_sub(6 * HOUR_MS * 1000).max(at + 1);
                for &v in &victims {
                    let when = if p.scenario == Scenario::BatchCompromise {
                        at
                    } else {
                        self.rng.gen_range(at..latest)
                    };
                    let site = self.far_site(v, 2.0 * spacing, width, height);
                    let silence = p.scenario == Scenario::SilentClone;
                    self.schedule(when, Ev::Attack(Step::Clone { v, site, silence }));
                }
                self.attack.set_victims(victims);
            }
            Scenario::Partition => {
                let west: Vec<usize> = order
                    .iter()
                    .copied()
                    .filter(|&i| self.devices[i].pos.x_m < width / 4.0)
                    .take(n)
                    .collect();
                self.schedule(at, Ev::Partition(true));
                for &v in &west {
                    let site = (
                        self.rng.gen_range(width * 0.75..width),
                        self.rng.gen_range(0.0..height),
                    );
                    let when = at + 10 * 60 * 1_000_000;
                    let clone = Step::Clone {
                        v,
                        site,
                        silence: false,
                    };
                    self.schedule(when, Ev::Attack(clone));
                }
                self.schedule(at + 4 * HOUR_MS * 1000, Ev::Partition(false));
                self.attack.set_victims(west);
            }
            Scenario::Forgery | Scenario::Replay => {
                let victims: Vec<usize> = order[..n].to_vec();
                for (k, &v) in victims.iter().enumerate() {
                    let vp = self.devices[v].pos;
                    let pos = Position::new(vp.x_m + 200.0, vp.y_m + 150.0);
                    let modulation = self.modulation_at(pos);
                    let node = self.channel.add_node(pos, NodeConfig::device());
                    self.roles.push(NodeRole::Attacker);
                    self.attack.radios.push(Radio {
                        node,
                        modulation,
                        victim: v,
                    });
                    let step = if p.scenario == Scenario::Forgery {
                        Step::Forge(k)
                    } else {
                        Step::Replay(k)
                    };
                    self.schedule(at + k as u64 * 30_000_000, Ev::Attack(step));
                }
                self.attack.set_victims(victims);
            }
            Scenario::Sybil => {
                self.attack.sybil_site = Some(Position::new(spacing * 0.4, spacing * 0.4));
                for k in 0..p.attack_size {
                    let when = at + self.rng.gen_range(0..2 * HOUR_MS * 1000);
                    self.schedule(when, Ev::Attack(Step::Sybil(k)));
                }
            }
            Scenario::RogueGateway => {
                let r = (p.gateways / 2) as u16;
                self.attack.rogue = Some(r);
                let watch = self.gateways.get_mut(usize::from(r)).map(|gw| {
                    gw.rogue = true;
                    gw.witness_id()
                });
                for gw in &mut self.gateways {
                    gw.corroboration.watch = watch;
                }
                self.schedule(at, Ev::Attack(Step::FakeProof(r)));
            }
        }
    }

    /// A position at least `min_m` from device `v` (best effort in a small area).
    fn far_site(&mut self, v: usize, min_m: f64, width: f64, height: f64) -> (f64, f64) {
        let vp = self.devices[v].pos;
        let mut best = (0.0, 0.0, -1.0);
        for _ in 0..32 {
            let (x, y) = (
                self.rng.gen_range(0.0..width),
                self.rng.gen_range(0.0..height),
            );
            let d = vp.distance_m(Position::new(x, y));
            if d >= min_m {
                return (x, y);
            }
            if d > best.2 {
                best = (x, y, d);
            }
        }
        (best.0, best.1)
    }

    fn pick_plotted(&mut self) {
        let victims = self.attack.victims.clone();
        let honest = (0..self.params.devices)
            .filter(|i| !victims.contains(i))
            .take(PLOTTED);
        for i in honest {
            self.series
                .push((i, Series::new(format!("honest #{i}"), false)));
        }
        for &i in victims.iter().take(PLOTTED) {
            self.series
                .push((i, Series::new(format!("attacked #{i}"), true)));
        }
    }
}
