//! Reading a live run back: what every real gateway decided (its store, its lineage,
//! its counters and the quarantines it announced), held against the tape's ground
//! truth, as one seed's figures and pass criteria.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde::Serialize;
use slope_mesh::lineage::Entry;
use slope_mesh::metrics::kind;
use slope_mesh::trust::{Admission, Scope};
use slope_node::verifier::verify_divergence_proof;
use slope_proto::DeviceId;

use super::cluster::Cluster;
use super::tape::Tape;
use crate::metrics::Quantiles;
use crate::scenario::Scenario;
use crate::summary::Criterion;
use crate::world::device::Role;

/// Lineage records read per device when looking for a time.
const LINEAGE_LIMIT: usize = 4096;
/// Frames read per attacked device when looking for a forged one.
const FRAMES_LIMIT: usize = 4096;

/// One seed's results.
#[derive(Debug, Clone, Serialize)]
pub struct Seed {
    pub seed: u64,
    pub passed: bool,
    /// Cloned identities a gateway heard the clone of (the oracle of the simulated
    /// layer: unheard clones and clones whose original never spoke again apart).
    pub attacked: usize,
    pub cloned_unheard: usize,
    pub cloned_original_silent: usize,
    /// Of those, quarantined by at least one gateway / by every gateway.
    pub detected: usize,
    pub detected_everywhere: usize,
    pub detection_rate: Option<f64>,
    /// Honest identities quarantined by any gateway.
    pub false_quarantines: usize,
    /// From the clone's first new frame at a gateway to the first / the last gateway's
    /// quarantine, in virtual time (the nodes' clock).
    pub detection_latency: Option<Quantiles>,
    pub everywhere_latency: Option<Quantiles>,
    /// The same two in wall time: from the harness injecting that frame to the node
    /// announcing its quarantine (the harness's settling waits included).
    pub detection_latency_wall: Option<Quantiles>,
    pub everywhere_latency_wall: Option<Quantiles>,
    /// Divergence proofs held by gateways for quarantined devices, and how many of them
    /// verified again here (they must all).
    pub proofs_held: usize,
    pub proofs_verified: usize,
    /// Quarantines (any device) summed over gateways, from their counters.
    pub quarantines: u64,
    /// Decisions by admission mode, summed over gateways.
    pub admissions: BTreeMap<&'static str, u64>,
    /// From a device's first frame to a full-scope grant at its home gateway.
    pub time_to_full_scope: Option<Quantiles>,
    /// Forged and replayed receptions injected, forged frames a gateway stored.
    pub forged_received: u64,
    pub forged_accepted: u64,
    /// Frames of the attacked identities stored by gateways that are byte for byte a
    /// reception on the tape: the oracle above compares like with like when it is > 0.
    pub victim_frames_matched: u64,
    pub replayed_received: u64,
    /// Receptions repeating an earlier one at the same gateway.
    pub duplicate_receptions: u64,
    /// Gossip payload bytes received and sent, summed over gateways; sent bytes per
    /// honest attestation on the air.
    pub gossip_bytes_in: u64,
    pub gossip_bytes_out: u64,
    pub gossip_bytes_out_per_attestation: f64,
    /// Gossip messages the gateways rejected (forged frames, bad proofs).
    pub gossip_rejected: u64,
    /// Receptions injected, steps, settling waits that hit their bound.
    pub receptions: usize,
    pub steps: usize,
    pub settles: u64,
    pub settle_timeouts: u64,
    /// Connected components of the peer graph at the start (1: connected), mean peers.
    pub components: usize,
    pub mean_peers: f64,
    pub criteria: Vec<Criterion>,
    pub perf: Perf,
}

/// Wall-clock figures of one seed.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Perf {
    /// Simulating the radio side (the tape), starting the gateways, replaying the tape.
    pub tape_s: f64,
    pub startup_s: f64,
    pub replay_s: f64,
    pub wall_s: f64,
    pub cpu_s: Option<f64>,
    /// Peak resident memory of the process so far, MiB, and its threads at the end of
    /// the replay (gateways running).
    pub peak_rss_mib: Option<f64>,
    pub threads: Option<u64>,
}

/// What the harness saw while replaying.
pub struct Replay {
    /// Wall instant at which each window (by its end, virtual ms) was injected.
    pub injected: Vec<(u64, Instant)>,
    pub steps: usize,
    pub components: usize,
    pub mean_peers: f64,
}

impl Replay {
    /// Wall instant of the window that held virtual time `ms`.
    fn wall_at(&self, ms: u64) -> Option<Instant> {
        let i = self.injected.partition_point(|(end, _)| *end <= ms);
        self.injected.get(i).map(|(_, t)| *t)
    }
}

/// Per identity and gateway: when it was quarantined (virtual ms, wall instant).
type Quarantines = HashMap<DeviceId, BTreeMap<usize, (u64, Option<Instant>)>>;

/// Reads the gateways back against the tape.
pub fn read(tape: &Tape, cluster: &Cluster, replay: &Replay, seed: u64, perf: Perf) -> Seed {
    let world = &tape.world;
    let p = &world.params;
    let g_count = cluster.gateways.len();
    let honest: Vec<(usize, DeviceId)> = world
        .devices
        .iter()
        .enumerate()
        .filter(|(_, d)| d.role == Role::Honest)
        .filter_map(|(i, d)| Some((i, d.id?)))
        .filter(|(i, _)| *i < p.devices)
        .collect();
    let quarantined = quarantines(cluster, &honest);
    let cloned: Vec<usize> =
        if p.scenario.expects_divergence() || p.scenario == Scenario::SilentClone {
            world.attack.victims.clone()
        } else {
            Vec::new()
        };
    let ids: HashMap<usize, DeviceId> = honest.iter().copied().collect();
    let expects = p.scenario.expects_divergence();
    let (mut attacked, mut unheard, mut silent, mut detected, mut everywhere) = (0, 0, 0, 0, 0);
    let (mut first, mut all, mut first_wall, mut all_wall) = (vec![], vec![], vec![], vec![]);
    for &v in &cloned {
        let t = &world.truth[v];
        let q = ids.get(&v).and_then(|id| quarantined.get(id));
        let caught = q.is_some_and(|m| !m.is_empty());
        if t.attacked_at_ms.is_none() && !caught {
            unheard += 1;
            continue;
        }
        if expects && !t.original_heard_after && !caught {
            silent += 1;
            continue;
        }
        attacked += 1;
        let Some(q) = q.filter(|m| !m.is_empty()) else {
            continue;
        };
        detected += 1;
        let at = t.attacked_at_ms.unwrap_or(0);
        let wall0 = replay.wall_at(at);
        let earliest = q.values().map(|x| x.0).min().unwrap_or(at);
        first.push(earliest.saturating_sub(at));
        let walls: Vec<Instant> = q.values().filter_map(|x| x.1).collect();
        if let (Some(w0), Some(w)) = (wall0, walls.iter().min()) {
            first_wall.push(w.saturating_duration_since(w0).as_millis() as u64);
        }
        if q.len() == g_count {
            everywhere += 1;
            let latest = q.values().map(|x| x.0).max().unwrap_or(at);
            all.push(latest.saturating_sub(at));
            if let (Some(w0), Some(w), true) = (wall0, walls.iter().max(), walls.len() == g_count) {
                all_wall.push(w.saturating_duration_since(w0).as_millis() as u64);
            }
        }
    }
    let cloned_ids: Vec<DeviceId> = cloned.iter().filter_map(|v| ids.get(v).copied()).collect();
    let false_quarantines = honest
        .iter()
        .filter(|(i, id)| !cloned.contains(i) && quarantined.get(id).is_some_and(|m| !m.is_empty()))
        .count();
    // Every proof a gateway holds for a quarantined identity verifies here again.
    let (mut held, mut verified) = (0, 0);
    for g in &cluster.gateways {
        if let Ok(proofs) = g.handle.store().divergences() {
            for (id, proof) in proofs {
                held += 1;
                if verify_divergence_proof(&proof).is_ok_and(|d| d.device == id) {
                    verified += 1;
                }
            }
        }
    }
    // Forged frames stored anywhere, for the identities the forgers spoke for.
    let victims: Vec<DeviceId> = world
        .attack
        .victims
        .iter()
        .filter_map(|v| ids.get(v).copied())
        .collect();
    let on_tape: std::collections::HashSet<blake3::Hash> = tape
        .receptions
        .iter()
        .map(|r| blake3::hash(&r.envelope))
        .collect();
    let (mut forged_accepted, mut matched) = (0, 0);
    for g in &cluster.gateways {
        for id in &victims {
            for f in g
                .handle
                .store()
                .frames(id, None, FRAMES_LIMIT)
                .unwrap_or_default()
            {
                if world.attack.attacker_frame(&f.frame) == Some(true) {
                    forged_accepted += 1;
                }
                if on_tape.contains(&blake3::hash(&f.frame)) {
                    matched += 1;
                }
            }
        }
    }
    let mut admissions = BTreeMap::new();
    let (mut bytes_in, mut bytes_out, mut rejected, mut quarantines_n) = (0, 0, 0, 0);
    for g in &cluster.gateways {
        let m = g.handle.metrics();
        for a in Admission::ALL {
            *admissions.entry(a.as_str()).or_insert(0) +=
                m.admissions.get_or_create(&kind(a.as_str())).get();
        }
        bytes_in += m.gossip_bytes.get_or_create(&kind("in")).get();
        bytes_out += m.gossip_bytes.get_or_create(&kind("out")).get();
        rejected += m.validation.get_or_create(&kind("reject")).get();
        quarantines_n += m.divergences.get();
    }
    let full = time_to_full_scope(tape, cluster, &honest, &cloned_ids);
    let (forged_received, replayed_received, duplicate_receptions) = tape.tagged();
    let mut s = Seed {
        seed,
        passed: false,
        attacked,
        cloned_unheard: unheard,
        cloned_original_silent: silent,
        detected,
        detected_everywhere: everywhere,
        detection_rate: (attacked > 0).then(|| detected as f64 / attacked as f64),
        false_quarantines,
        detection_latency: Quantiles::of_ms(first),
        everywhere_latency: Quantiles::of_ms(all),
        detection_latency_wall: Quantiles::of_ms(first_wall),
        everywhere_latency_wall: Quantiles::of_ms(all_wall),
        proofs_held: held,
        proofs_verified: verified,
        quarantines: quarantines_n,
        admissions,
        time_to_full_scope: full,
        forged_received,
        forged_accepted,
        victim_frames_matched: matched,
        replayed_received,
        duplicate_receptions,
        gossip_bytes_in: bytes_in,
        gossip_bytes_out: bytes_out,
        gossip_bytes_out_per_attestation: bytes_out as f64
            / world.counters.honest_frames.max(1) as f64,
        gossip_rejected: rejected,
        receptions: tape.receptions.len(),
        steps: replay.steps,
        settles: cluster.settles,
        settle_timeouts: cluster.settle_timeouts,
        components: replay.components,
        mean_peers: replay.mean_peers,
        criteria: Vec::new(),
        perf,
    };
    s.criteria = super::criteria::evaluate(p.scenario, &s, g_count);
    s.passed = s.criteria.iter().all(|c| c.held != Some(false));
    s
}

/// When each gateway quarantined each identity: from the events it announced (with
/// their wall instant), else from its lineage (virtual time only).
fn quarantines(cluster: &Cluster, honest: &[(usize, DeviceId)]) -> Quarantines {
    let mut out: Quarantines = HashMap::new();
    for (g, gw) in cluster.gateways.iter().enumerate() {
        if let Ok(events) = gw.quarantines.lock() {
            for (id, at, wall) in events.iter() {
                out.entry(*id)
                    .or_default()
                    .entry(g)
                    .or_insert((*at, Some(*wall)));
            }
        }
        let store = gw.handle.store();
        for (_, id) in honest {
            let Ok(Some(rec)) = store.device(id) else {
                continue;
            };
            if rec.quarantine.is_none() || out.get(id).is_some_and(|m| m.contains_key(&g)) {
                continue;
            }
            let at = store
                .lineage_of(id, LINEAGE_LIMIT)
                .unwrap_or_default()
                .iter()
                .find(|r| matches!(r.entry, Entry::Quarantined { .. }))
                .map_or(0, |r| r.time_ms);
            out.entry(*id).or_default().insert(g, (at, None));
        }
    }
    out
}

/// From each honest, never-cloned device's first frame on the air to the first
/// full-scope grant its home gateway recorded.
fn time_to_full_scope(
    tape: &Tape,
    cluster: &Cluster,
    honest: &[(usize, DeviceId)],
    cloned: &[DeviceId],
) -> Option<Quantiles> {
    let world = &tape.world;
    let mut ms = Vec::new();
    for (i, id) in honest {
        if cloned.contains(id) {
            continue;
        }
        let Some(first_tx) = world.truth[*i].first_tx_ms else {
            continue;
        };
        let Some(home) = cluster.gateways.get(usize::from(world.home(*i))) else {
            continue;
        };
        let records = home
            .handle
            .store()
            .lineage_of(id, LINEAGE_LIMIT)
            .unwrap_or_default();
        let full = records.iter().find(
            |r| matches!(r.entry, Entry::Granted { grant, .. } if grant.scope == Scope::Full),
        );
        if let Some(r) = full {
            ms.push(r.time_ms.saturating_sub(first_tx));
        }
    }
    Quantiles::of_ms(ms)
}
