//! The scenarios' attackers: clones (a copy of a device's flash restored on another
//! radio), forgers and replayers (radios near a victim that put made-up or recorded
//! frames on the air), a Sybil site, a rogue gateway that gossips fake divergence
//! proofs, and the duplicating RF chains and forwarder loop of `duplicates`.
//!
//! The attack also keeps the oracles' bookkeeping: which frames were forged or
//! replayed (by digest), and which frames each victim really sent.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand::Rng;
use rand_chacha::ChaCha12Rng;
use slope_proto::{DeviceId, DivergenceProof, Interaction, LinkDigest, Rotation, Signed};
use slope_radios::airtime::Modulation;
use slope_radios::radio::TxParams;
use slope_radios::region::Region;
use slope_radios::sim::{NodeConfig, NodeId, Position};

use super::device::{Device, Role, frame_for_air};
use super::gateway::Input;
use super::queue::Queue;
use super::radio::TX_POWER_DBM;
use super::{Ev, NodeRole, World};
use crate::error::Error;
use crate::metrics::Counters;
use crate::params::Suite;

/// Frames of each victim kept for replays and bit flips.
const POOL: usize = 48;

/// A step of an attack.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// Copy victim `v`'s flash to a new radio at `site` (and silence `v` when `silence`).
    Clone {
        v: usize,
        site: (f64, f64),
        silence: bool,
    },
    /// Forger `k` sends its next forged frame.
    Forge(usize),
    /// Replayer `k` sends a recorded frame again.
    Replay(usize),
    /// Sybil identity `k` powers on.
    Sybil(usize),
    /// The rogue gateway gossips its next fake proof.
    FakeProof(u16),
}

/// Why a frame is the attacker's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Forged,
    Replayed,
}

/// An attacker radio that is not a device engine.
#[derive(Debug, Clone, Copy)]
pub struct Radio {
    pub node: NodeId,
    pub modulation: Modulation,
    pub victim: usize,
}

/// The attack's state.
#[derive(Debug, Default)]
pub struct Attack {
    pub victims: Vec<usize>,
    victim_set: HashSet<usize>,
    pub radios: Vec<Radio>,
    dormant: HashMap<usize, (u64, u64)>,
    /// Digests of frames the victims really sent.
    sent: HashSet<[u8; 32]>,
    pool: HashMap<usize, VecDeque<Arc<[u8]>>>,
    tags: HashMap<[u8; 32], Tag>,
    forged: u64,
    pub rogue: Option<u16>,
    pub sybil_site: Option<Position>,
    pub duplicate_chains: bool,
}

impl Attack {
    /// Marks `victims` (the oracles watch their frames).
    pub fn set_victims(&mut self, victims: Vec<usize>) {
        self.victim_set = victims.iter().copied().collect();
        self.victims = victims;
    }

    /// Schedules device `i` to be dormant in `[from, to)` µs.
    pub fn set_dormant(&mut self, i: usize, from: u64, to: u64) {
        self.dormant.insert(i, (from, to));
    }

    /// End of device `i`'s dormancy, if it is dormant at `now`.
    pub fn dormant_until(&self, i: usize, now: u64) -> Option<u64> {
        self.dormant
            .get(&i)
            .and_then(|&(from, to)| (from <= now && now < to).then_some(to))
    }

    /// An honest device sent `frame` (air bytes).
    pub fn recorded(&mut self, i: usize, frame: &Arc<[u8]>) {
        if !self.victim_set.contains(&i) {
            return;
        }
        self.sent.insert(*blake3::hash(frame).as_bytes());
        let pool = self.pool.entry(i).or_default();
        if pool.len() >= POOL {
            pool.pop_front();
        }
        pool.push_back(frame.clone());
    }

    /// Whether a clone's frame is one its original never sent.
    pub fn is_new_frame(&self, frame: &[u8]) -> bool {
        !self.sent.contains(blake3::hash(frame).as_bytes())
    }

    /// A gateway's radio received an attacker's frame (envelope).
    pub fn received(&self, envelope: &[u8], c: &mut Counters) {
        match self.tags.get(blake3::hash(envelope).as_bytes()) {
            Some(Tag::Forged) => c.forged_received += 1,
            Some(Tag::Replayed) => c.replayed_received += 1,
            None => {}
        }
    }

    /// A gateway accepted a frame from its radio as a new position.
    pub fn accepted(&self, envelope: &[u8], c: &mut Counters) {
        if self.tags.is_empty() {
            return;
        }
        match self.tags.get(blake3::hash(envelope).as_bytes()) {
            Some(Tag::Forged) => c.forged_accepted += 1,
            Some(Tag::Replayed) => c.replayed_new += 1,
            None => {}
        }
    }

    /// `duplicates`: a second RF chain delivers every reception again, and a forwarder
    /// loop re-injects some of them seconds later.
    pub fn duplicate(
        &self,
        g: u16,
        input: &Input,
        now_us: u64,
        rng: &mut ChaCha12Rng,
        queue: &mut Queue<Ev>,
    ) {
        if !self.duplicate_chains {
            return;
        }
        let mut second = input.clone();
        second.rx.rssi_dbm = second.rx.rssi_dbm.saturating_sub(2);
        queue.push(now_us + 1, Ev::Deliver(g, second));
        if rng.r#gen::<f64>() < 0.3 {
            let later = now_us + rng.gen_range(2_000_000..10_000_000);
            queue.push(later, Ev::Deliver(g, input.clone()));
        }
    }

    /// Whether `envelope` is a frame the attacker forged (`Some(true)`) or replayed
    /// (`Some(false)`), for the live layer's oracles.
    pub fn attacker_frame(&self, envelope: &[u8]) -> Option<bool> {
        self.tags
            .get(blake3::hash(envelope).as_bytes())
            .map(|t| *t == Tag::Forged)
    }

    fn tag(&mut self, envelope: &[u8], tag: Tag) {
        self.tags.insert(*blake3::hash(envelope).as_bytes(), tag);
    }
}

impl World {
    pub(super) fn on_attack(&mut self, step: Step) -> Result<(), Error> {
        self.trace.record(self.now_us, 20, &[]);
        match step {
            Step::Clone { v, site, silence } => self.start_clone(v, site, silence)?,
            Step::Forge(k) => self.forge(k),
            Step::Replay(k) => self.replay(k),
            Step::Sybil(k) => self.sybil(k)?,
            Step::FakeProof(r) => self.fake_proof(r),
        }
        Ok(())
    }

    fn start_clone(&mut self, v: usize, site: (f64, f64), silence: bool) -> Result<(), Error> {
        let Some(victim) = self.devices.get_mut(v) else {
            return Ok(());
        };
        if silence {
            victim.silent = true;
        }
        let flash = victim.flash();
        let seq = victim.position();
        let (config, behaviour) = (victim.config(), victim.behaviour().to_vec());
        if let Some(t) = self.truth.get_mut(v) {
            t.copied_at_seq = seq;
        }
        let pos = Position::new(site.0, site.1);
        let modulation = self.modulation_at(pos);
        let node = self.channel.add_node(pos, NodeConfig::device());
        let i = self.devices.len();
        self.roles.push(NodeRole::Device(i));
        let clone = Device::new(
            config,
            node,
            pos,
            modulation,
            Role::Clone { of: v },
            behaviour,
        )
        .with_flash(flash);
        let clone = match self.params.suite {
            Suite::Compact => clone.speaking(Suite::Compact, self.params.chain_len, &mut self.rng),
            Suite::Ed25519 => clone,
        };
        self.devices.push(clone);
        if let Some(d) = self.devices.get_mut(i) {
            d.power_on(&mut self.rng, 0.0)?;
        }
        self.kick(i);
        let first = self.now_us + self.rng.gen_range(1_000_000..120_000_000);
        self.schedule(first, Ev::Wake(i));
        Ok(())
    }

    fn forge(&mut self, k: usize) {
        let Some(radio) = self.attack.radios.get(k).copied() else {
            return;
        };
        self.schedule(
            self.now_us + 15 * 60 * 1_000_000,
            Ev::Attack(Step::Forge(k)),
        );
        let v = radio.victim;
        let (Some(id), Some(seq), Some(epoch)) = (
            self.devices.get(v).and_then(|d| d.id),
            self.devices.get(v).and_then(|d| d.seq()),
            self.devices.get(v).and_then(|d| d.epoch()),
        ) else {
            return;
        };
        let variant = self.attack.forged % 4;
        self.attack.forged += 1;
        if self.params.suite == Suite::Compact && matches!(variant, 0 | 3) {
            if let Some(e) = self.forge_compact(v, variant == 3) {
                self.attack.tag(&e, Tag::Forged);
                self.attacker_send(radio, &e);
            }
            return;
        }
        let key = SigningKey::from_bytes(&self.rng.r#gen::<[u8; 32]>());
        let mut prev = [0u8; 16];
        self.rng.fill(&mut prev[..]);
        let envelope: Option<Vec<u8>> = match variant {
            0 => {
                let body = Interaction {
                    device: id.short(),
                    seq: seq + 1,
                    prev: LinkDigest(prev),
                    epoch,
                    boot: 0,
                    behaviour: [0; 4],
                    heard: heapless::Vec::new(),
                    payload: heapless::Vec::from_slice(&[0xAB; 8]).unwrap_or_default(),
                };
                Signed::sign(body, &id, &key)
                    .ok()
                    .map(|s| s.frame().to_vec())
            }
            1 => self
                .attack
                .pool
                .get(&v)
                .and_then(|p| p.back())
                .and_then(|f| {
                    let mut e = slope_radios::frame::parse_frame(f).ok()?.to_vec();
                    let at = self.rng.gen_range(3..e.len());
                    e[at] ^= 1 << self.rng.gen_range(0..8);
                    Some(e)
                }),
            2 => {
                let mut e = vec![0u8; 100];
                self.rng.fill(&mut e[..]);
                Some(e)
            }
            _ => {
                let mut next = [0u8; 32];
                self.rng.fill(&mut next[..]);
                let body = Rotation {
                    device: id.short(),
                    seq: seq + 1,
                    prev: LinkDigest(prev),
                    epoch: epoch + 1,
                    key: key.verifying_key().to_bytes(),
                    next_key: slope_proto::Digest(next),
                };
                Signed::sign(body, &id, &key)
                    .ok()
                    .map(|s| s.frame().to_vec())
            }
        };
        if let Some(e) = envelope {
            self.attack.tag(&e, Tag::Forged);
            self.attacker_send(radio, &e);
        }
    }

    /// A suite-2 forgery for victim `v`, from the victim's latest frame heard on the
    /// air (interval j, disclosing K(j − 2)). `late = false`: a frame for interval j
    /// itself (still in time) with the right disclosure and a made-up MAC — it waits
    /// for K(j) and fails its MAC. `late = true`: a frame for interval j − 2 with a
    /// *valid* MAC under the key K(j − 2) the victim has just disclosed — the attack
    /// the security condition exists for; it must be refused as late.
    fn forge_compact(&mut self, v: usize, late: bool) -> Option<Vec<u8>> {
        use slope_proto::compact::crypto::{ChainKey, mac_key};
        use slope_proto::compact::{Attestation, Maced, attestation::View};
        let pool = self.attack.pool.get(&v)?;
        let latest = pool.iter().rev().find_map(|f| {
            let e = slope_radios::frame::parse_frame(f).ok()?;
            let view = View::parse(e).ok()?;
            Some((view.device(), view.interval(), view.disclosed()))
        })?;
        let (short, j, disclosed) = latest;
        let mut payload = [0u8; 8];
        self.rng.fill(&mut payload[..]);
        let payload = heapless::Vec::from_slice(&payload).ok()?;
        let frame = if late {
            let i = j.checked_sub(2).filter(|i| *i > 0)?;
            // The disclosure frame i itself carried, when it was recorded; zeros else.
            let earlier = pool
                .iter()
                .filter_map(|f| {
                    let e = slope_radios::frame::parse_frame(f).ok()?;
                    let view = View::parse(e).ok()?;
                    (view.interval() == i).then(|| view.disclosed())
                })
                .next()
                .unwrap_or(ChainKey([0; 16]));
            let body = Attestation {
                device: short,
                interval: i,
                disclosed: earlier,
                payload,
            };
            Maced::seal(body, &mac_key(&disclosed)).ok()?
        } else {
            let body = Attestation {
                device: short,
                interval: j,
                disclosed,
                payload,
            };
            Maced::seal(body, &self.rng.r#gen::<[u8; 32]>()).ok()?
        };
        Some(frame.frame().to_vec())
    }

    fn replay(&mut self, k: usize) {
        let Some(radio) = self.attack.radios.get(k).copied() else {
            return;
        };
        self.schedule(
            self.now_us + 20 * 60 * 1_000_000,
            Ev::Attack(Step::Replay(k)),
        );
        let Some(pool) = self.attack.pool.get(&radio.victim) else {
            return;
        };
        if pool.len() < 2 {
            return;
        }
        let pick = self.rng.gen_range(0..pool.len() - 1);
        let Some(frame) = pool.get(pick).cloned() else {
            return;
        };
        let Ok(e) = slope_radios::frame::parse_frame(&frame) else {
            return;
        };
        let e = e.to_vec();
        self.attack.tag(&e, Tag::Replayed);
        self.attacker_send(radio, &e);
    }

    fn attacker_send(&mut self, radio: Radio, envelope: &[u8]) {
        let frame = frame_for_air(envelope);
        let channels = Region::Eu868.default_channels();
        let params = TxParams {
            freq_hz: channels[self.rng.gen_range(0..channels.len())],
            modulation: radio.modulation,
            power_dbm: TX_POWER_DBM,
        };
        if let Ok(tx) = self
            .channel
            .transmit(self.now_us, radio.node, &params, &frame)
        {
            self.counters.attack_frames += 1;
            self.check_ledger(radio.node.0 as usize, tx.airtime_us);
            if let Some(t) = self.truth.get_mut(radio.victim) {
                t.attacked_at_ms.get_or_insert(self.now_us / 1000);
            }
        }
    }

    fn sybil(&mut self, k: usize) -> Result<(), Error> {
        let Some(site) = self.attack.sybil_site else {
            return Ok(());
        };
        let pos = Position::new(
            site.x_m + self.rng.gen_range(-50.0..50.0),
            site.y_m + self.rng.gen_range(-50.0..50.0),
        );
        let modulation = self.modulation_at(pos);
        let node = self.channel.add_node(pos, NodeConfig::device());
        let i = self.devices.len();
        self.roles.push(NodeRole::Device(i));
        let config = slope_node::device::Config {
            interval_s: 3600,
            ..slope_node::device::Config::default()
        };
        let mut d = Device::new(config, node, pos, modulation, Role::Sybil, vec![k as u8]);
        if self.params.suite == Suite::Compact {
            d = d.speaking(Suite::Compact, self.params.chain_len, &mut self.rng);
        }
        self.devices.push(d);
        if let Some(d) = self.devices.get_mut(i) {
            d.power_on(&mut self.rng, 0.0)?;
        }
        self.schedule(self.now_us, Ev::Wake(i));
        Ok(())
    }

    fn fake_proof(&mut self, r: u16) {
        self.schedule(
            self.now_us + 10 * 60 * 1_000_000,
            Ev::Attack(Step::FakeProof(r)),
        );
        if self.params.suite == Suite::Compact {
            self.fake_compact_proof(r);
            return;
        }
        let Some(gw) = self.gateways.get(usize::from(r)) else {
            return;
        };
        let known: Vec<DeviceId> = gw.verifier().devices().copied().collect();
        if known.len() < 2 {
            return;
        }
        let a_dev = known[self.rng.gen_range(0..known.len())];
        let b_dev = known[self.rng.gen_range(0..known.len())];
        let (Some(a), Some(b)) = (gw.latest(&a_dev), gw.latest(&b_dev)) else {
            return;
        };
        let est = gw.verifier().establishments(&a_dev);
        let (Some(inception), rotations) = (est.first().copied(), est.get(1..).unwrap_or(&[]))
        else {
            return;
        };
        let variant = self.counters.fake_proofs_sent % 4;
        let mut out = vec![0u8; 16 * 1024];
        let proof = match variant {
            0 => DivergenceProof::encode(inception, rotations, &a, &a, &mut out).ok(),
            1 => {
                let mut flipped = a.to_vec();
                let at = self.rng.gen_range(3..flipped.len());
                flipped[at] ^= 0x20;
                DivergenceProof::encode(inception, rotations, &a, &flipped, &mut out).ok()
            }
            2 => DivergenceProof::encode(inception, rotations, &a, &b, &mut out).ok(),
            _ => {
                self.rng.fill(&mut out[..300]);
                Some(300)
            }
        };
        let Some(n) = proof else { return };
        out.truncate(n);
        self.counters.fake_proofs_sent += 1;
        self.flood(r, None, out.into());
    }

    /// The rogue's suite-2 proofs. It is a registered witness and it hears the
    /// mesh, so it holds honest frames (interval i) and, one disclosure later, the key
    /// K(i) that makes any frame for i MAC-valid. Variants: (0) a second frame for i
    /// MAC'd under the disclosed K(i), with the rogue's own receipts *back-dated* to the
    /// honest frame's receive time — the attack docs/compact-suite.md §5 names (a proof
    /// is only as strong as its receipt signers); (1) the same, honestly dated (late:
    /// must fail the security condition); (2) one frame twice; (3) random bytes under a
    /// proof header.
    fn fake_compact_proof(&mut self, r: u16) {
        use slope_proto::compact::crypto::mac_key;
        use slope_proto::compact::proof::Parts;
        use slope_proto::compact::{Attestation, CompactProof, Maced, attestation::View};
        let Some(gw) = self.gateways.get(usize::from(r)) else {
            return;
        };
        let variant = self.counters.fake_proofs_sent % 4;
        let mut out = vec![0u8; slope_proto::limits::MAX_PROOF];
        if variant == 3 {
            self.rng.fill(&mut out[..300]);
            out[..3].copy_from_slice(&[1, slope_proto::compact::SUITE, 4]);
            out.truncate(300);
            self.counters.fake_proofs_sent += 1;
            self.flood(r, None, out.into());
            return;
        }
        // A device with an honest frame for i and the frame of i + 2 disclosing K(i).
        let mut devices: Vec<DeviceId> = gw.rogue_frames.keys().copied().collect();
        devices.sort_unstable();
        let pairs: Vec<_> = devices
            .iter()
            .filter_map(|d| {
                let frames = gw.rogue_frames.get(d)?;
                frames.iter().find_map(|f| {
                    let g = frames.iter().find(|g| g.interval() == f.interval() + 2)?;
                    let key = View::parse(g.frame()).ok()?.disclosed();
                    Some((*d, f.clone(), key))
                })
            })
            .collect();
        if pairs.is_empty() {
            return;
        }
        let (device, honest, key) = pairs[self.rng.gen_range(0..pairs.len())].clone();
        let Ok(view) = View::parse(honest.frame()) else {
            return;
        };
        let mut payload = [0u8; 8];
        self.rng.fill(&mut payload[..]);
        let Ok(payload) = heapless::Vec::from_slice(&payload) else {
            return;
        };
        let body = Attestation {
            device: view.device(),
            interval: view.interval(),
            disclosed: view.disclosed(),
            payload,
        };
        let Ok(forged) = Maced::seal(body, &mac_key(&key)) else {
            return;
        };
        let second: Vec<u8> = if variant == 2 {
            honest.frame().to_vec()
        } else {
            forged.frame().to_vec()
        };
        let dated = if variant == 1 {
            self.now_ms()
        } else {
            honest.rx_ms()
        };
        let (Some(ra), Some(rb), Some(anchor)) = (
            gw.stamp(honest.frame(), honest.rx_ms()),
            gw.stamp(&second, dated),
            gw.anchor(&device),
        ) else {
            return;
        };
        let est = gw.verifier().establishments(&device);
        let Some(inception) = est.first().copied() else {
            return;
        };
        let parts = Parts {
            inception,
            rotations: est.get(1..).unwrap_or(&[]),
            anchor: &anchor,
            renewals: &[],
            key: &key,
            a: (honest.frame(), &[&ra[..]]),
            b: (&second, &[&rb[..]]),
        };
        let n = match CompactProof::encode(&parts, &mut out) {
            Ok(n) => n,
            // Variant 2 (one frame twice) does not even encode: send it as the
            // bytes a careless encoder would make, a proof with two equal frames.
            Err(_) => {
                let n = 300.min(out.len());
                out[..3].copy_from_slice(&[1, slope_proto::compact::SUITE, 4]);
                n
            }
        };
        out.truncate(n);
        self.counters.fake_proofs_sent += 1;
        self.flood(r, None, out.into());
    }

    /// The modulation a device at `pos` uses: SF7 near a gateway, SF8 farther (both
    /// carry a rotation, 161 bytes on air).
    pub(super) fn modulation_at(&self, pos: Position) -> Modulation {
        let nearest = self
            .gateways
            .iter()
            .map(|g| g.pos.distance_m(pos))
            .fold(f64::INFINITY, f64::min);
        let dr = if nearest < 2_500.0 { 5 } else { 4 };
        Region::Eu868
            .data_rate(dr)
            .map_or(Modulation::new(lora_sf7(), lora_bw125()), |d| {
                d.modulation()
            })
    }
}

fn lora_sf7() -> lora_modulation::SpreadingFactor {
    lora_modulation::SpreadingFactor::_7
}

fn lora_bw125() -> lora_modulation::Bandwidth {
    lora_modulation::Bandwidth::_125KHz
}
