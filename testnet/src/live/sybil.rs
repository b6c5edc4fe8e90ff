//! `sybil --live`: fresh identities from one site flood real gateways. What is read
//! back comes from the nodes themselves — each node's live state
//! ([`slope_mesh::node::Handle::tracked`]), its store's device count, its counters and
//! its lineage — held against the bounds its configuration gave it, and the honest
//! fleet's decisions held against a control run of the same seed without the flood.
//!
//! The bounds: the harness gives every gateway a device bound
//! ([`device_bound`]: the honest fleet plus half the flood, so the flood must meet the
//! wall, as the simulated layer's `devices + 4096` does against its 10,000) as the
//! verifier's `max_devices` and the trust engine's `max_newcomers`; every other bound
//! is the daemon's default (`slope_mesh::config::Ingest`, `verifier.escrow_total`).
//! Peaks are sampled at every step, after the mesh settled, and the nodes' drop
//! counters say whether a bound was met between two samples.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use slope_mesh::lineage::Entry;
use slope_mesh::metrics::kind;
use slope_mesh::node::Tracked;
use slope_mesh::trust::{Admission, Scope};
use slope_proto::DeviceId;

use super::cluster::Cluster;
use super::tape::Tape;
use crate::criteria::check;
use crate::summary::Criterion;
use crate::world::device::Role;

/// Lineage records read from a store at a time.
const LINEAGE_CHUNK: usize = 4096;

/// The device bound a `sybil --live` gateway is given: the honest fleet plus half the
/// flood (at least 16 more).
pub fn device_bound(devices: usize, sybils: usize) -> usize {
    devices + (sybils / 2).max(16)
}

/// The bounds the gateways ran with (from the configuration the harness gave them).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Bounds {
    /// `verifier.max_devices` (also the trust engine's `max_newcomers`).
    pub devices: usize,
    /// `ingest.queue_capacity`: radio, gossip and sync queues, each.
    pub queue: usize,
    /// `ingest.receipt_wait_max`.
    pub undecided: usize,
    /// `ingest.pending_receipts`.
    pub pending_receipts: usize,
    /// `verifier.escrow_total`.
    pub escrow: usize,
    /// Sync fetches in flight (the node's constant).
    pub inflight_fetches: usize,
}

impl Bounds {
    /// The bounds of a gateway configured with `max_devices`, the rest the defaults.
    pub fn with(max_devices: usize) -> Self {
        let ingest = slope_mesh::config::Ingest::default();
        Self {
            devices: max_devices,
            queue: ingest.queue_capacity,
            undecided: ingest.receipt_wait_max,
            pending_receipts: ingest.pending_receipts,
            escrow: slope_node::verifier::Config::default().escrow_total,
            inflight_fetches: 256,
        }
    }
}

/// Per gateway, the largest value each tracked quantity reached at the samples; and the
/// process's resident memory at the samples.
#[derive(Debug, Clone, Default)]
pub struct Peaks {
    pub tracked: Vec<Tracked>,
    /// Device records in each store.
    pub stored: Vec<u64>,
    /// Largest resident set seen at a sample, MiB (`VmRSS`).
    pub rss_mib: f64,
    pub samples: u64,
}

impl Peaks {
    /// Samples every gateway now.
    pub async fn sample(&mut self, cluster: &Cluster) {
        let n = cluster.gateways.len();
        self.tracked.resize(n, Tracked::default());
        self.stored.resize(n, 0);
        for (g, gw) in cluster.gateways.iter().enumerate() {
            if let Ok(t) = gw.handle.tracked().await {
                raise(&mut self.tracked[g], &t);
            }
            if let Ok(d) = gw.handle.store().device_count() {
                self.stored[g] = self.stored[g].max(d);
            }
        }
        if let Some(r) = rss_mib() {
            self.rss_mib = self.rss_mib.max(r);
        }
        self.samples += 1;
    }

    /// The largest of each quantity over the gateways.
    pub fn max(&self) -> Tracked {
        let mut m = Tracked::default();
        for t in &self.tracked {
            raise(&mut m, t);
        }
        m
    }
}

/// Raises each quantity of `peak` to `t`'s where that is larger.
fn raise(peak: &mut Tracked, t: &Tracked) {
    let pairs = [
        (&mut peak.verifier_devices, t.verifier_devices),
        (&mut peak.compact_devices, t.compact_devices),
        (&mut peak.compact_pending, t.compact_pending),
        (&mut peak.gossip_queue, t.gossip_queue),
        (&mut peak.sync_queue, t.sync_queue),
        (&mut peak.radio_queue, t.radio_queue),
        (&mut peak.undecided, t.undecided),
        (&mut peak.pending_receipts, t.pending_receipts),
        (&mut peak.inflight_fetches, t.inflight_fetches),
    ];
    for (p, v) in pairs {
        *p = (*p).max(v);
    }
}

/// Resident memory of this process now, MiB (Linux `/proc/self/status`, `VmRSS`).
pub fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The honest fleet as the real gateways saw it (their lineages).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Honest {
    /// Honest devices some gateway decided on before the attack time, and of those, the
    /// ones some gateway decided on after it; the share.
    pub before: usize,
    pub after: usize,
    pub share: f64,
    /// Honest devices admitted to full scope by some gateway during the run.
    pub full: usize,
    /// Decisions on honest devices from the attack time on, by mode, over gateways.
    pub decisions_after: BTreeMap<&'static str, u64>,
    /// Receptions of honest frames from the attack time on, on the tape (what the
    /// radios heard: the flood's collisions on the air show here, not at the gateways).
    pub receptions_after: usize,
}

/// What a `sybil --live` seed read back.
#[derive(Debug, Clone, Serialize)]
pub struct SybilSeen {
    pub bounds: Bounds,
    /// Sybil identities that powered on, those some gateway stored, and those some
    /// gateway admitted to full scope during the run (must be 0).
    pub identities: usize,
    pub stored_anywhere: usize,
    pub full: usize,
    /// Decisions on Sybil identities by mode, over gateways.
    pub decisions: BTreeMap<&'static str, u64>,
    /// Frames the verifiers rejected (the device bound: no other rejection is injected
    /// here) and frames they escrowed, over gateways.
    pub rejected: u64,
    pub escrowed_max: u64,
    /// Items the nodes dropped at a bound, by kind, over gateways.
    pub dropped: BTreeMap<&'static str, u64>,
    /// The largest value of each tracked quantity at any gateway and sample, and the
    /// largest store device count.
    pub peak: Tracked,
    pub peak_stored: u64,
    /// Gateways whose verifier reached the device bound.
    pub gateways_at_bound: usize,
    pub samples: u64,
    /// Peak resident memory of the process at the samples, flood and control runs,
    /// MiB, and the difference per gateway (what the flood cost each).
    pub rss_flood_mib: f64,
    pub rss_control_mib: f64,
    pub rss_per_gateway_mib: f64,
    pub honest: Honest,
    pub control: Honest,
}

/// Drop counters read per node.
const DROPS: [&str; 7] = [
    "fetch_repeat",
    "sync_fetch",
    "radio_queue",
    "gossip_queue",
    "sync_queue",
    "pending_receipt",
    "receipt_unlisted",
];

/// Honest and Sybil identities of the tape's world.
fn identities(tape: &Tape) -> (HashSet<DeviceId>, HashSet<DeviceId>) {
    let w = &tape.world;
    let honest = w.devices[..w.params.devices.min(w.devices.len())]
        .iter()
        .filter(|d| d.role == Role::Honest)
        .filter_map(|d| d.id)
        .collect();
    let sybils = w
        .devices
        .iter()
        .filter(|d| d.role == Role::Sybil)
        .filter_map(|d| d.id)
        .collect();
    (honest, sybils)
}

/// Decisions by admission mode.
type ByMode = BTreeMap<&'static str, u64>;

/// What one device's records say, per store.
#[derive(Default)]
struct Seen {
    before: bool,
    after: bool,
    full: bool,
}

/// Scans every gateway's lineage: per device of `watch`, whether a decision was taken
/// before / from `attack_ms`, whether it reached full scope; decisions by mode (all, and
/// from `attack_ms` on).
fn scan(
    cluster: &Cluster,
    watch: &HashSet<DeviceId>,
    attack_ms: u64,
) -> (HashMap<DeviceId, Seen>, ByMode, ByMode) {
    let mut seen: HashMap<DeviceId, Seen> = HashMap::new();
    let (mut all, mut after) = (BTreeMap::new(), BTreeMap::new());
    for gw in &cluster.gateways {
        let store = gw.handle.store();
        let mut from = 0;
        loop {
            let records = store.lineage(from, LINEAGE_CHUNK).unwrap_or_default();
            let Some(last) = records.last() else { break };
            from = last.index + 1;
            for r in &records {
                let id = DeviceId(*r.entry.device());
                if !watch.contains(&id) {
                    continue;
                }
                let s = seen.entry(id).or_default();
                match &r.entry {
                    Entry::Observed { admission, .. }
                    | Entry::Decided { admission, .. }
                    | Entry::Compact { admission, .. } => {
                        *all.entry(admission.as_str()).or_insert(0) += 1;
                        if r.time_ms < attack_ms {
                            s.before = true;
                        } else {
                            s.after = true;
                            *after.entry(admission.as_str()).or_insert(0) += 1;
                        }
                        s.full |= *admission == Admission::Full;
                    }
                    Entry::Granted { grant, .. } => s.full |= grant.scope == Scope::Full,
                    _ => {}
                }
            }
            if records.len() < LINEAGE_CHUNK {
                break;
            }
        }
    }
    (seen, all, after)
}

/// The honest fleet's figures from the gateways' lineages.
pub fn honest(tape: &Tape, cluster: &Cluster) -> Honest {
    let (honest, _) = identities(tape);
    let attack_ms = tape.world.params.attack_at_ms;
    let (seen, _, after) = scan(cluster, &honest, attack_ms);
    let ids = super::rogue::short_ids(tape);
    let receptions_after = tape
        .receptions
        .iter()
        .filter(|r| r.at_ms >= attack_ms)
        .filter_map(|r| super::rogue::event_of(&r.envelope, &ids))
        .filter(|(id, _, _)| honest.contains(id))
        .count();
    let before = seen.values().filter(|s| s.before).count();
    let after_n = seen.values().filter(|s| s.before && s.after).count();
    Honest {
        before,
        after: after_n,
        share: after_n as f64 / before.max(1) as f64,
        full: seen.values().filter(|s| s.full).count(),
        decisions_after: after,
        receptions_after,
    }
}

/// Reads a flood run back: the Sybils' fate, the peaks against the bounds, the honest
/// fleet against `control` (the same seed without the flood).
pub fn read(
    tape: &Tape,
    cluster: &Cluster,
    peaks: &Peaks,
    bounds: Bounds,
    control: (Honest, f64),
) -> SybilSeen {
    let (_, sybils) = identities(tape);
    let (seen, decisions, _) = scan(cluster, &sybils, tape.world.params.attack_at_ms);
    let mut stored = 0;
    for id in &sybils {
        if cluster
            .gateways
            .iter()
            .any(|g| g.handle.store().device(id).ok().flatten().is_some())
        {
            stored += 1;
        }
    }
    let (mut rejected, mut escrowed_max) = (0, 0);
    let mut dropped = BTreeMap::new();
    for g in &cluster.gateways {
        let m = g.handle.metrics();
        rejected += m.outcomes.get_or_create(&kind("rejected")).get();
        escrowed_max = escrowed_max.max(m.outcomes.get_or_create(&kind("escrowed")).get());
        for d in DROPS {
            *dropped.entry(d).or_insert(0) += m.dropped.get_or_create(&kind(d)).get();
        }
    }
    let g_count = cluster.gateways.len().max(1);
    let (control, rss_control) = control;
    SybilSeen {
        bounds,
        identities: sybils.len(),
        stored_anywhere: stored,
        full: seen.values().filter(|s| s.full).count(),
        decisions,
        rejected,
        escrowed_max,
        dropped,
        peak: peaks.max(),
        peak_stored: peaks.stored.iter().copied().max().unwrap_or(0),
        gateways_at_bound: peaks
            .tracked
            .iter()
            .filter(|t| t.verifier_devices >= bounds.devices)
            .count(),
        samples: peaks.samples,
        rss_flood_mib: peaks.rss_mib,
        rss_control_mib: rss_control,
        rss_per_gateway_mib: (peaks.rss_mib - rss_control) / g_count as f64,
        honest: honest(tape, cluster),
        control,
    }
}

/// Tolerance on the honest shares against the control, in points of share.
pub const TOLERANCE: f64 = 0.05;

/// The `sybil` criteria of a live seed.
pub fn criteria(s: &SybilSeen, gateways: usize) -> Vec<Criterion> {
    let b = &s.bounds;
    let p = &s.peak;
    let within = p.verifier_devices <= b.devices
        && s.peak_stored <= b.devices as u64
        && p.radio_queue <= b.queue
        && p.gossip_queue <= b.queue
        && p.sync_queue <= b.queue
        && p.undecided <= b.undecided
        && p.pending_receipts <= b.pending_receipts
        && p.inflight_fetches <= b.inflight_fetches;
    let drops: Vec<String> = s
        .dropped
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let h = &s.honest;
    let c = &s.control;
    let refused = |x: &Honest| x.decisions_after.get("refused").copied().unwrap_or(0);
    let mut v = vec![
        check(
            "gateway state within its bound",
            within && s.gateways_at_bound > 0,
            format!(
                "peaks over {} gateways and {} samples: {} devices tracked by a verifier and {} \
                 stored (bound {}; {} gateways reached it, {} frames refused), queues radio {} / \
                 gossip {} / sync {} (bound {} each), {} undecided (bound {}), {} pending \
                 receipts (bound {}), {} fetches in flight (bound {}); {} frames ever escrowed \
                 at one gateway (a cumulative count, not checked: the bound, {}, is on what \
                 is held at once, which the node does not expose); dropped at a bound: {}; resident \
                 memory {:.0} MiB with the flood, {:.0} MiB without: {:+.1} MiB per gateway",
                gateways,
                s.samples,
                p.verifier_devices,
                s.peak_stored,
                b.devices,
                s.gateways_at_bound,
                s.rejected,
                p.radio_queue,
                p.gossip_queue,
                p.sync_queue,
                b.queue,
                p.undecided,
                b.undecided,
                p.pending_receipts,
                b.pending_receipts,
                p.inflight_fetches,
                b.inflight_fetches,
                s.escrowed_max,
                b.escrow,
                if drops.is_empty() {
                    "nothing".into()
                } else {
                    drops.join(", ")
                },
                s.rss_flood_mib,
                s.rss_control_mib,
                s.rss_per_gateway_mib
            ),
        ),
        check(
            "honest devices unaffected",
            h.share + TOLERANCE >= c.share && refused(h) <= refused(c),
            format!(
                "{} of {} honest devices decided before the attack were decided after it began \
                 ({:.1} %), {} of {} in the control run without the flood ({:.1} %; tolerance \
                 {:.0} points); honest decisions refused after the attack time {}, control {}; \
                 honest decisions after it {:?}, control {:?}; honest devices at full scope {}, \
                 control {} (reported: the flood's collisions on the air change what the \
                 radios hear, {} honest receptions after the attack time against {})",
                h.after,
                h.before,
                h.share * 100.0,
                c.after,
                c.before,
                c.share * 100.0,
                TOLERANCE * 100.0,
                refused(h),
                refused(c),
                h.decisions_after,
                c.decisions_after,
                h.full,
                c.full,
                h.receptions_after,
                c.receptions_after
            ),
        ),
    ];
    v.push(if h.full == 0 {
        Criterion {
            name: "no Sybil identity reaches full scope".into(),
            held: None,
            detail: "not evaluated: needs an honest device at full scope in the same run \
                     (otherwise nothing could)"
                .into(),
        }
    } else {
        check(
            "no Sybil identity reaches full scope",
            s.full == 0 && s.stored_anywhere > 0,
            format!(
                "{} of {} Sybil identities at full scope at some gateway during the run ({} stored \
                 by some gateway; their decisions {:?}), while {} honest devices reached it",
                s.full, s.identities, s.stored_anywhere, s.decisions, h.full
            ),
        )
    });
    v
}
