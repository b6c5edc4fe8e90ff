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
    /// Every detection latency of this seed, seconds (for the report's CDF): first
    /// gateway and every gateway, virtual; every gateway, wall.
    pub latencies: Latencies,
    /// `partition`: the cut, the heal and the re-convergence.
    pub partition: Option<Partition>,
    /// `rogue-gateway`: what the rogue sent and what the honest nodes made of it.
    pub rogue: Option<RogueSeen>,
    /// `sybil`: the flood against the gateways' bounds, the honest fleet against the
    /// control run (set by the caller, which runs the control).
    pub sybil: Option<super::sybil::SybilSeen>,
    pub criteria: Vec<Criterion>,
    pub perf: Perf,
    /// Where everything was (the report's map), and each gateway's side of a cut.
    #[serde(skip)]
    pub map: crate::summary::Map,
    #[serde(skip)]
    pub sides: Vec<bool>,
}

/// Detection latencies of one seed, seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latencies {
    pub first_s: Vec<f64>,
    pub every_s: Vec<f64>,
    pub every_wall_s: Vec<f64>,
}

/// The heal of a `partition` run, as the harness did it.
#[derive(Debug, Clone, Copy)]
pub struct Heal {
    /// Virtual time of the heal, and the wall instants it began and settled.
    pub at_ms: u64,
    pub wall: Instant,
    pub settled: Instant,
    /// Links that crossed the cut when it was made; whether none crossed once it was.
    pub cut_links: usize,
    pub cut_held: bool,
    /// Links across the cut found just before the heal (must be 0).
    pub crossing_before_heal: usize,
    /// Cut links up again after the heal.
    pub restored: usize,
    /// Sync responses the nodes received during the heal's settling.
    pub sync_responses: u64,
}

/// `partition` figures of one seed.
#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    pub heal_at_ms: u64,
    pub cut_links: usize,
    pub cut_held: bool,
    pub crossing_before_heal: usize,
    pub restored: usize,
    pub sync_responses_at_heal: u64,
    /// (gateway, attacked clone) pairs: all of them, those quarantined before the heal,
    /// and those quarantined by the end of the heal's settling (before any later
    /// reception was injected).
    pub pairs: usize,
    pub pairs_before_heal: usize,
    pub pairs_at_heal: usize,
    /// From the heal to the last gateway's quarantine of the last clone, when every
    /// gateway quarantined every attacked clone: virtual and wall seconds.
    pub reconvergence_s: Option<f64>,
    pub reconvergence_wall_s: Option<f64>,
}

/// `rogue-gateway` figures of one seed.
#[derive(Debug, Clone, Serialize)]
pub struct RogueSeen {
    pub rogue: usize,
    pub sent: super::rogue::Sent,
    /// Honest nodes, and those that rejected at least one gossip message.
    pub honest_nodes: usize,
    pub nodes_rejecting: usize,
    /// Gossip messages rejected, summed over the honest nodes.
    pub rejected: u64,
    /// Divergences recorded by any node (a fake proof accepted would be one).
    pub divergences: u64,
    /// Trust-engine decisions at honest nodes whose witness quorum was read back
    /// against the tape: those that counted more witnesses than the gateways whose
    /// radios heard the frame (only a false receipt of the rogue can add one), and those
    /// that counted more witnesses or zones than those gateways and the rogue (what its
    /// lies may reach at most: one witness, its own zone).
    pub decisions_checked: u64,
    pub lifted: u64,
    pub lifted_full: u64,
    pub beyond_zone: u64,
    /// Late receipts of the rogue the honest lineages recorded (`Witnessed`), the most
    /// records for one event at one node, and those for events that never happened.
    pub rogue_witnessed: u64,
    pub max_per_event: u64,
    pub fabricated_counted: u64,
    /// The rogue's gossipsub score at the honest nodes still connected to it, at the end.
    pub score_min: Option<f64>,
    pub score_max: Option<f64>,
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
    pub heal: Option<Heal>,
    /// The rogue: its index, witness id and what it sent.
    pub rogue: Option<(usize, [u8; 8], super::rogue::Sent)>,
    /// Trust zone of each gateway.
    pub zones: Vec<u16>,
}

impl Replay {
    /// Wall instant of the window that held virtual time `ms`.
    fn wall_at(&self, ms: u64) -> Option<Instant> {
        let i = self.injected.partition_point(|(end, _)| *end <= ms);
        self.injected.get(i).map(|(_, t)| *t)
    }
}

/// Per gateway: when it quarantined an identity (virtual ms, wall instant).
type ByGateway = BTreeMap<usize, (u64, Option<Instant>)>;
/// Per identity and gateway: when it was quarantined.
type Quarantines = HashMap<DeviceId, ByGateway>;

/// Reads the gateways back against the tape.
pub async fn read(tape: &Tape, cluster: &Cluster, replay: &Replay, seed: u64, perf: Perf) -> Seed {
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
    let mut attacked_q = Vec::new();
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
        attacked_q.push(q);
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
    let partition = replay
        .heal
        .map(|h| partition(&h, &attacked_q, g_count, everywhere == attacked));
    let rogue = match replay.rogue {
        Some((r, witness, sent)) => {
            Some(rogue(tape, cluster, &honest, &replay.zones, (r, witness, sent)).await)
        }
        None => None,
    };
    let secs = |v: &[u64]| v.iter().map(|&ms| ms as f64 / 1000.0).collect::<Vec<f64>>();
    let latencies = Latencies {
        first_s: secs(&first),
        every_s: secs(&all),
        every_wall_s: secs(&all_wall),
    };
    let sides = (0..g_count)
        .map(|g| p.scenario == Scenario::Partition && world.side(g as u16))
        .collect();
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
        latencies,
        partition,
        rogue,
        sybil: None,
        criteria: Vec::new(),
        perf,
        map: world.map(),
        sides,
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

/// The heal's figures: when each (gateway, attacked clone) pair was quarantined against
/// the heal.
fn partition(
    h: &Heal,
    attacked: &[Option<&ByGateway>],
    g_count: usize,
    everywhere: bool,
) -> Partition {
    let (mut before, mut at_heal, mut last_ms, mut last_wall) = (0, 0, h.at_ms, Some(h.wall));
    for q in attacked.iter().flatten() {
        for &(at, wall) in q.values() {
            if at < h.at_ms {
                before += 1;
            }
            if at < h.at_ms || wall.is_some_and(|w| w <= h.settled) {
                at_heal += 1;
            }
            last_ms = last_ms.max(at);
            last_wall = match (last_wall, wall) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
        }
    }
    let converged = everywhere && !attacked.is_empty();
    Partition {
        heal_at_ms: h.at_ms,
        cut_links: h.cut_links,
        cut_held: h.cut_held,
        crossing_before_heal: h.crossing_before_heal,
        restored: h.restored,
        sync_responses_at_heal: h.sync_responses,
        pairs: attacked.len() * g_count,
        pairs_before_heal: before,
        pairs_at_heal: at_heal,
        reconvergence_s: converged.then(|| last_ms.saturating_sub(h.at_ms) as f64 / 1000.0),
        reconvergence_wall_s: last_wall
            .filter(|_| converged)
            .map(|w| w.saturating_duration_since(h.wall).as_secs_f64()),
    }
}

/// What the honest nodes made of the rogue's lies: their counters, each trust-engine
/// decision's witness quorum against who really heard the frame, the rogue's receipts
/// their lineages recorded, and the rogue's score at each.
async fn rogue(
    tape: &Tape,
    cluster: &Cluster,
    honest: &[(usize, DeviceId)],
    zones: &[u16],
    (r, witness, sent): (usize, [u8; 8], super::rogue::Sent),
) -> RogueSeen {
    use slope_mesh::trust::{Admission as Adm, Reasons};
    use slope_node::trust::Reason;
    // Who heard each event on the air (the truth a quorum is held against).
    let ids = super::rogue::short_ids(tape);
    let mut heard: HashMap<(DeviceId, u32, [u8; 32]), std::collections::BTreeSet<usize>> =
        HashMap::new();
    for rx in &tape.receptions {
        if let Some((id, seq, digest)) = super::rogue::event_of(&rx.envelope, &ids) {
            heard
                .entry((id, seq, digest.0))
                .or_default()
                .insert(usize::from(rx.gateway));
        }
    }
    // A node's own radio is registered in no zone (`Zone::NONE`, 0: the mesh's engine
    // genesis gives the local witness none), the others in their site's zone.
    let zone_at = |decider: usize, g: &usize| {
        if *g == decider {
            0
        } else {
            zones.get(*g).copied().unwrap_or(0)
        }
    };
    let rogue_peer = cluster
        .gateways
        .get(r)
        .map(|g| g.handle.peer_id().to_string());
    let mut out = RogueSeen {
        rogue: r,
        sent,
        honest_nodes: 0,
        nodes_rejecting: 0,
        rejected: 0,
        divergences: 0,
        decisions_checked: 0,
        lifted: 0,
        lifted_full: 0,
        beyond_zone: 0,
        rogue_witnessed: 0,
        max_per_event: 0,
        fabricated_counted: 0,
        score_min: None,
        score_max: None,
    };
    for (g, gw) in cluster.gateways.iter().enumerate() {
        let m = gw.handle.metrics();
        out.divergences += m.divergences.get();
        if g == r {
            continue;
        }
        out.honest_nodes += 1;
        let rejected = m.validation.get_or_create(&kind("reject")).get();
        out.rejected += rejected;
        if rejected > 0 {
            out.nodes_rejecting += 1;
        }
        let store = gw.handle.store();
        for (_, id) in honest {
            let records = store.lineage_of(id, LINEAGE_LIMIT).unwrap_or_default();
            let mut per_event: HashMap<u32, u64> = HashMap::new();
            for rec in &records {
                match &rec.entry {
                    Entry::Observed {
                        seq,
                        digest,
                        admission,
                        reasons: Reasons::Engine { reasons, .. },
                        ..
                    } => {
                        let Some(v) = reasons.iter().find_map(|x| match x {
                            Reason::Quorum(v) => Some(*v),
                            _ => None,
                        }) else {
                            continue;
                        };
                        let truth = heard
                            .get(&(*id, *seq, *digest))
                            .cloned()
                            .unwrap_or_default();
                        let zone = |x: &usize| zone_at(g, x);
                        let true_zones: std::collections::BTreeSet<u16> =
                            truth.iter().map(zone).collect();
                        let mut bound = truth.clone();
                        bound.insert(r);
                        let bound_zones: std::collections::BTreeSet<u16> =
                            bound.iter().map(zone).collect();
                        out.decisions_checked += 1;
                        if usize::from(v.witnesses) > truth.len()
                            || usize::from(v.zones) > true_zones.len()
                        {
                            out.lifted += 1;
                            if *admission == Adm::Full {
                                out.lifted_full += 1;
                            }
                        }
                        if usize::from(v.witnesses) > bound.len()
                            || usize::from(v.zones) > bound_zones.len()
                        {
                            out.beyond_zone += 1;
                        }
                    }
                    Entry::Witnessed {
                        seq, witness: w, ..
                    } if *w == witness => {
                        out.rogue_witnessed += 1;
                        *per_event.entry(*seq).or_insert(0) += 1;
                        if *seq >= super::rogue::FABRICATED_SEQ {
                            out.fabricated_counted += 1;
                        }
                    }
                    _ => {}
                }
            }
            out.max_per_event = out
                .max_per_event
                .max(per_event.values().copied().max().unwrap_or(0));
        }
        if let (Ok(peers), Some(rp)) = (gw.handle.peers().await, rogue_peer.as_ref()) {
            for p in peers.iter().filter(|p| &p.peer_id == rp) {
                if let Some(sc) = p.score {
                    out.score_min = Some(out.score_min.map_or(sc, |m: f64| m.min(sc)));
                    out.score_max = Some(out.score_max.map_or(sc, |m: f64| m.max(sc)));
                }
            }
        }
    }
    out
}
