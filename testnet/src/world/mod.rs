//! The simulated world: one virtual clock, one seeded RNG, one event queue, the LoRa
//! channel (`slope_radios::sim::Channel`), devices running the real device engine,
//! gateways running the real verifier, the gossip overlay between them, and the
//! scenario's attacker.
//!
//! - [`queue`]: the event queue; [`trace`]: the trace digest.
//! - [`device`]: a simulated device; [`gateway`]: a simulated gateway;
//!   [`trust`]: the gateway's trust stage (integration point of the trust engine).
//! - [`gossip`]: the overlay model; [`radio`]: transmissions and receptions;
//!   [`mesh`]: what gateways do with each other (gossip, proofs, sync).
//! - [`receipts`] and [`corroborate`]: witness receipt batches between gateways, and
//!   the decisions that wait for them.
//! - [`chains`]: suite 2, each gateway's record of a device's compact chains (what a
//!   proof in a renewed chain needs).
//! - [`fx`]: the fixed hasher of the simulator's maps.
//! - [`memo`]: the signature memo the gateways share; [`preverify`]: the second
//!   thread that fills it; [`tick`]: the gateways' work at one tick, in parallel.
//! - [`attack`]: the scenarios' scripts; [`setup`]: building the world.

pub mod attack;
pub mod chains;
pub mod corroborate;
pub mod device;
pub mod fx;
pub mod gateway;
pub mod gossip;
pub mod memo;
pub mod mesh;
pub mod preverify;
pub mod queue;
pub mod radio;
pub mod receipts;
pub mod setup;
pub mod tick;
pub mod trace;
pub mod trust;

use std::collections::VecDeque;

use fx::HashMap;
use std::sync::Arc;

use rand_chacha::ChaCha12Rng;
use slope_node::verifier::Missing;
use slope_proto::{DeviceId, ShortId};
use slope_radios::sim::Channel;

use crate::error::Error;
use crate::metrics::{Counters, Sample, Series, Truth};
use crate::params::Params;
use attack::Attack;
use device::Device;
use gateway::{Gateway, Input};
use gossip::Overlay;
use queue::Queue;
use trace::Trace;

/// The gateways' clock tick, ms: a gateway verifies what its inbox gathered (one
/// batch) at the first tick after its first queued frame, and decides on the
/// attestations whose wait for receipts is over at the first tick at or after it is.
/// One grid for every gateway, so the gateways' own work falls on shared instants and
/// runs in parallel (`run_tick`); a frame waits (0, 500] ms for its flush.
pub const FLUSH_MS: u64 = 500;

/// The first gateway tick strictly after `now_us`, µs.
pub fn tick_after(now_us: u64) -> u64 {
    let tick = FLUSH_MS * 1000;
    (now_us / tick + 1) * tick
}

/// The first gateway tick at or after `at_us`, µs.
pub fn tick_at_or_after(at_us: u64) -> u64 {
    let tick = FLUSH_MS * 1000;
    at_us.div_ceil(tick) * tick
}
/// Interval between samples of admissions and slopes, ms.
pub const SAMPLE_MS: u64 = 30 * 60 * 1000;

/// What a radio node is, by node index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    Device(usize),
    Gateway(u16),
    /// An attacker radio that is not a device engine (forger, replayer).
    Attacker,
}

/// A reception at a gateway's radio, recorded for the live layer (`crate::live`) when
/// [`World::tape`] is on: it replays them into real gateways.
#[derive(Debug, Clone)]
pub struct Reception {
    /// When the gateway got it (virtual ms; a forwarder loop's copy comes later than its
    /// `rx.time_ms`).
    pub at_ms: u64,
    pub gateway: u16,
    pub envelope: Arc<[u8]>,
    pub rx: slope_proto::Observation,
}

/// A scheduled event.
#[derive(Debug)]
pub enum Ev {
    /// A device wakes to attest (or incept).
    Wake(usize),
    /// A device puts its next pending frame on the air.
    Send(usize),
    /// Power returns after a cut.
    PowerOn(usize),
    /// A clean reboot.
    Reboot(usize),
    /// A gateway verifies its inbox.
    Flush(u16),
    /// A frame reaches a gateway by sync or a forwarder loop.
    Deliver(u16, Input),
    /// An attestation's gossip message reaches a gateway (through its seen-cache).
    Gossip {
        to: u16,
        id: gossip::MessageId,
        input: Input,
    },
    /// A sync reply: `from`'s establishment events of `device` for `to`.
    SyncReply {
        to: u16,
        from: u16,
        device: DeviceId,
        missing: Missing,
    },
    /// A fetch request reaches gateway `to`: it sends `from` what it holds of `device`
    /// around `seq`, arriving `ms` later.
    Fetch {
        to: u16,
        from: u16,
        device: DeviceId,
        seq: u32,
        ms: f64,
    },
    /// A divergence proof reaches a gateway.
    Proof {
        to: u16,
        from: u16,
        proof: Arc<[u8]>,
    },
    /// A step of the scenario's attack.
    Attack(attack::Step),
    /// The gateway mesh splits (`true`) or heals.
    Partition(bool),
    /// Sample admissions and slopes.
    Sample,
    /// A gateway's receipt round: it signs what its radio witnessed and gossips it.
    Round(u16),
    /// A receipt batch reaches a gateway (taken at its first tick after the arrival).
    Receipts {
        to: u16,
        batch: Arc<Option<slope_node::trust::PreparedBatch>>,
    },
    /// A gateway decides on the attestations whose wait for receipts is over.
    Decide(u16),
}

/// The world.
pub struct World {
    pub params: Params,
    rng: ChaCha12Rng,
    queue: Queue<Ev>,
    channel: Channel,
    pub devices: Vec<Device>,
    /// Boxed: a tick moves the gateways that work at it to the workers and back.
    pub gateways: Vec<Box<Gateway>>,
    overlay: Overlay,
    roles: Vec<NodeRole>,
    /// Identity of every device id the world has seen: index of the honest device.
    pub identity: HashMap<DeviceId, usize>,
    short: HashMap<ShortId, DeviceId>,
    /// Gateways tracking each device, ascending.
    interest: HashMap<DeviceId, Vec<u16>>,
    /// Gateways whose radio verified a frame of each device, ascending: its witnesses.
    heard_by: HashMap<ShortId, Vec<u16>>,
    /// Home gateway (nearest) of every honest device.
    home: Vec<u16>,
    /// Own airtime ledger of each radio node: (start µs, airtime µs).
    ledger: Vec<VecDeque<(u64, u32)>>,
    pub truth: Vec<Truth>,
    pub counters: Counters,
    pub samples: Vec<Sample>,
    pub series: Vec<(usize, Series)>,
    pub attack: Attack,
    pub trace: Trace,
    now_us: u64,
    end_us: u64,
    pub events: u64,
    pub partition_healed_ms: Option<u64>,
    /// What the pre-verifier did (set at the end of the run).
    pub pre_stats: preverify::Stats,
    /// The envelope of the last transmission received, shared by its receptions.
    last_rx: Option<(u64, Arc<[u8]>)>,
    /// Each gateway's gossipsub seen-cache.
    seen: Vec<gossip::Seen>,
    /// The signature memo every gateway's verifier shares.
    memo: memo::Memo,
    /// The second core's signature checks (see [`preverify`]).
    pre: preverify::PreVerifier,
    /// Every radio reception at a gateway, in order, when `Some` (the live layer).
    pub tape: Option<Vec<Reception>>,
    /// The workers of gateway ticks (`None`: one thread).
    pool: Option<tick::Pool>,
    /// Per gateway, its job (1-based) in the tick being gathered, 0 for none.
    in_tick: Vec<usize>,
    /// Ticks run in parallel, and the jobs they held.
    pub ticks: TickStats,
}

/// How much of the gateways' work ran at shared ticks (work, not outcomes).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TickStats {
    /// Ticks with two jobs or more, handed to the pool, and their jobs.
    pub parallel: u64,
    pub jobs: u64,
    /// CPU seconds of the tick workers, and the jobs' events they ran (set at the end
    /// of the run; the loop's thread ran the others).
    pub workers_cpu_s: f64,
    pub worker_jobs: u64,
}

impl World {
    /// Runs to the end of the simulated time; `progress` gets the fraction done now
    /// and then.
    pub fn run(&mut self, progress: &mut dyn FnMut(f64)) -> Result<(), Error> {
        let mut next_report = 0u64;
        loop {
            let tq = self.queue.peek_time().unwrap_or(u64::MAX);
            let tc = self.channel.next_event_us().unwrap_or(u64::MAX);
            let t = tq.min(tc);
            if t > self.end_us || t == u64::MAX {
                break;
            }
            self.now_us = t;
            self.events += 1;
            if tc <= tq {
                for d in self.channel.deliveries(tc) {
                    self.on_delivery(d);
                }
            } else if self.pool.is_some() && self.gateway_work_next().is_some() {
                self.run_tick(t);
            } else if let Some((_, ev)) = self.queue.pop_until(t) {
                self.dispatch(ev)?;
            }
            if self.events >= next_report {
                next_report = self.events + 20_000;
                progress(self.now_us as f64 / self.end_us.max(1) as f64);
            }
        }
        self.now_us = self.end_us;
        self.pre_stats = self.pre.finish();
        if let Some(p) = &mut self.pool {
            (self.ticks.workers_cpu_s, self.ticks.worker_jobs) = p.finish();
        }
        progress(1.0);
        // Every run of a world, the sybil scenario's control run included: a signature
        // the pre-verifier filed as valid as made is trusted only while its audit holds.
        if self.pre_stats.audit_failures > 0 {
            return Err(Error::Audit {
                failures: self.pre_stats.audit_failures,
                audited: self.pre_stats.audited,
            });
        }
        Ok(())
    }

    /// Virtual time now, ms.
    pub fn now_ms(&self) -> u64 {
        self.now_us / 1000
    }

    /// Largest number of pending events.
    pub fn queue_peak(&self) -> usize {
        self.queue.peak()
    }

    /// The radio channel (statistics).
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The shared signature memo's counters.
    pub fn memo_stats(&self) -> memo::Stats {
        self.memo.stats()
    }

    /// The side of the `partition` cut gateway `g` is on (`true`: east of the middle;
    /// the live layer cuts its real mesh along the same line).
    pub fn side(&self, g: u16) -> bool {
        self.overlay.side(g)
    }

    /// Home gateway of honest device `i`.
    pub fn home(&self, i: usize) -> u16 {
        self.home.get(i).copied().unwrap_or(0)
    }

    /// The next queued event if it is a gateway's own work (flush, decisions): its
    /// gateway and the work.
    fn gateway_work_next(&self) -> Option<(u64, u16, tick::Work)> {
        let (at, ev) = self.queue.peek()?;
        let (g, work) = match ev {
            Ev::Flush(g) => (*g, tick::Work::Flush),
            Ev::Decide(g) => (*g, tick::Work::Decide),
            Ev::Receipts { to, batch } => (*to, tick::Work::Receipts(Arc::clone(batch))),
            _ => return None,
        };
        (usize::from(g) < self.gateways.len()).then_some((at, g, work))
    }

    /// Runs the gateways' own work due at `t` (the next queued events, while they are
    /// gateway work at `t`; a gateway's events in one job, see [`tick::may_join`]) on
    /// the pool, then applies the results in queue order (see [`tick`] for why that is
    /// the one-thread loop's result).
    fn run_tick(&mut self, t: u64) {
        let mut jobs: Vec<(u16, Vec<(usize, tick::Work)>)> = Vec::new();
        let mut n = 0usize;
        while let Some((at, g, work)) = self.gateway_work_next() {
            if at != t {
                break;
            }
            let slot = &mut self.in_tick[usize::from(g)];
            match *slot {
                0 => {
                    jobs.push((g, vec![(n, work)]));
                    *slot = jobs.len();
                }
                k => match jobs.get_mut(k - 1) {
                    Some((_, works)) if tick::may_join(works) => {
                        works.push((n, work));
                    }
                    _ => break,
                },
            }
            let _ = self.queue.pop_until(t);
            n += 1;
        }
        // The loop counted the first.
        self.events += n.saturating_sub(1) as u64;
        for (g, _) in &jobs {
            self.in_tick[usize::from(*g)] = 0;
        }
        // Each job's weight, once: a tick is worth the workers only with enough work to
        // share (handing a light one over, a wake-up per worker, costs more than it
        // saves, and small fleets have mostly light ticks), and the pool hands out the
        // heaviest jobs first. Who runs a job never changes its result.
        let weights: Vec<usize> = jobs
            .iter()
            .map(|(g, works)| {
                self.gateways
                    .get(usize::from(*g))
                    .map_or(0, |gw| works.iter().map(|(_, w)| tick::weight(gw, w)).sum())
            })
            .collect();
        let worth =
            || jobs.len() > 1 && weights.iter().sum::<usize>() >= self.params.tick_min_weight;
        let pool = match &self.pool {
            Some(p) if worth() => p,
            _ => {
                // In queue order, as the one-thread loop (a job groups a gateway's
                // events, which the queue may interleave with another gateway's).
                let mut order: Vec<(usize, u16, tick::Work)> = jobs
                    .into_iter()
                    .flat_map(|(g, works)| works.into_iter().map(move |(n, w)| (n, g, w)))
                    .collect();
                order.sort_unstable_by_key(|o| o.0);
                for (_, g, work) in order {
                    self.gateway_work(g, work);
                }
                return;
            }
        };
        self.ticks.parallel += 1;
        self.ticks.jobs += n as u64;
        let mut slots: Vec<Option<Box<Gateway>>> = std::mem::take(&mut self.gateways)
            .into_iter()
            .map(Some)
            .collect();
        let mut run = Vec::with_capacity(jobs.len());
        for ((g, works), weight) in jobs.into_iter().zip(weights) {
            if let Some(gw) = slots.get_mut(usize::from(g)).and_then(Option::take) {
                run.push(tick::Job {
                    g,
                    out: Vec::with_capacity(works.len()),
                    works,
                    now_us: t,
                    weight,
                    gw,
                });
            }
        }
        let done = pool.run(run);
        let mut results = Vec::with_capacity(n);
        for j in done {
            results.extend(
                j.out
                    .into_iter()
                    .map(|(order, rec, a)| (order, j.g, rec, a)),
            );
            if let Some(slot) = slots.get_mut(usize::from(j.g)) {
                *slot = Some(j.gw);
            }
        }
        self.gateways = slots.into_iter().flatten().collect();
        results.sort_unstable_by_key(|r| r.0);
        for (_, g, mut rec, actions) in results {
            self.trace.absorb(&mut rec);
            for a in actions {
                self.act(g, a);
            }
        }
    }

    /// Gateway `g`'s own `work` now, on this thread.
    fn gateway_work(&mut self, g: u16, work: tick::Work) {
        let Some(gw) = self.gateways.get_mut(usize::from(g)) else {
            match work {
                tick::Work::Decide => self.trace.record(self.now_us, 15, &[u64::from(g)]),
                tick::Work::Receipts(_) => self.trace.record(self.now_us, 14, &[u64::from(g)]),
                tick::Work::Flush => {}
            }
            return;
        };
        let mut rec = trace::Records::default();
        let actions = tick::work(gw, g, &work, self.now_us, &mut rec);
        self.trace.absorb(&mut rec);
        for a in actions {
            self.act(g, a);
        }
    }

    fn schedule(&mut self, at_us: u64, ev: Ev) {
        self.queue.push(at_us, ev);
    }

    fn dispatch(&mut self, ev: Ev) -> Result<(), Error> {
        match ev {
            Ev::Wake(i) => self.on_wake(i)?,
            Ev::Send(i) => self.on_send(i),
            Ev::PowerOn(i) => self.on_power_on(i)?,
            Ev::Reboot(i) => self.on_reboot(i)?,
            Ev::Flush(g) => self.gateway_work(g, tick::Work::Flush),
            Ev::Deliver(g, input) => {
                self.trace.record(self.now_us, 3, &[u64::from(g)]);
                self.deliver(g, input);
            }
            Ev::Gossip { to, id, input } => self.on_gossip(to, id, input),
            Ev::SyncReply {
                to,
                from,
                device,
                missing,
            } => self.on_sync_reply(to, from, device, missing),
            Ev::Fetch {
                to,
                from,
                device,
                seq,
                ms,
            } => self.on_fetch(to, from, device, seq, ms),
            Ev::Proof { to, from, proof } => self.on_proof(to, from, proof),
            Ev::Attack(step) => self.on_attack(step)?,
            Ev::Partition(split) => self.on_partition(split),
            Ev::Sample => self.on_sample(),
            Ev::Round(g) => self.on_round(g),
            Ev::Receipts { to, batch } => self.gateway_work(to, tick::Work::Receipts(batch)),
            Ev::Decide(g) => self.gateway_work(g, tick::Work::Decide),
        }
        Ok(())
    }
}

impl World {
    /// Whether any gateway tracks `device`.
    pub fn tracked_anywhere(&self, device: &slope_proto::DeviceId) -> bool {
        self.interest.get(device).is_some_and(|v| !v.is_empty())
    }

    /// Sybil identities that some gateway admits to full scope now.
    pub fn sybils_at_full(&self) -> usize {
        let now = self.now_ms();
        self.devices
            .iter()
            .filter(|d| d.role == device::Role::Sybil)
            .filter_map(|d| d.id)
            .filter(|id| {
                self.gateways
                    .iter()
                    .any(|g| g.mode(id, now) == trust::Mode::Full)
            })
            .count()
    }

    /// Positions of everything, for the report's map.
    pub fn map(&self) -> crate::summary::Map {
        let mut m = crate::summary::Map {
            rogue: self.attack.rogue.map(usize::from),
            ..Default::default()
        };
        for g in &self.gateways {
            m.gateways.push((g.pos.x_m, g.pos.y_m));
            m.width_m = m.width_m.max(g.pos.x_m);
            m.height_m = m.height_m.max(g.pos.y_m);
        }
        let s = self.params.gateway_spacing_m;
        m.width_m = (m.width_m / s).ceil() * s;
        m.height_m = (m.height_m / s).ceil() * s;
        for (i, d) in self.devices.iter().enumerate() {
            let p = (d.pos.x_m, d.pos.y_m);
            if i >= self.params.devices {
                m.attackers.push(p);
            } else if self.attack.victims.contains(&i) {
                m.victims.push(p);
            } else {
                m.honest.push(p);
            }
        }
        for r in &self.attack.radios {
            if let Some(p) = self.channel.position(r.node) {
                m.attackers.push((p.x_m, p.y_m));
            }
        }
        m
    }
}
