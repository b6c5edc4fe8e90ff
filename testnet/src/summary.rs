//! The results of a run: every figure of the terminal table and `results.json`, and the
//! scenario's pass criteria evaluated on them. Everything but [`Perf`] is a pure
//! function of the parameters (the snapshot tests compare it); [`Perf`] is wall-clock.

use std::collections::HashSet;

use serde::Serialize;

use crate::metrics::{Counters, Quantiles, Sample, Series};
use crate::params::{Params, Suite};
use crate::scenario::Scenario;
use crate::world::World;
use crate::world::gateway::Counters as GatewayCounters;
use crate::world::receipts::Counters as ReceiptCounters;

/// One pass criterion: `held` is `None` when the run cannot evaluate it (the detail
/// says what it needs).
#[derive(Debug, Clone, Serialize)]
pub struct Criterion {
    pub name: String,
    pub held: Option<bool>,
    pub detail: String,
}

/// Verifier outcomes summed over every gateway.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Outcomes {
    pub extended: u64,
    pub unlinked: u64,
    pub historic: u64,
    pub duplicate: u64,
    pub escrowed: u64,
    pub divergence: u64,
    pub rejected_signature: u64,
    pub rejected_decode: u64,
    pub rejected_capacity: u64,
    pub rejected_other: u64,
    /// Frames that needed a signature check.
    pub signature_checked: u64,
    pub proofs_accepted: u64,
    pub proofs_rejected: u64,
    pub batches: u64,
    /// Suite 2 (compact runs only): anchors, frames taken, authenticated, bad MACs,
    /// late and unknown-device refusals, divergences without a proof.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compact: Option<crate::world::gateway::CompactCounters>,
}

/// Witness receipts between gateways, summed over gateways.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Receipts {
    #[serde(flatten)]
    pub counters: ReceiptCounters,
    /// False entries the rogue gateway signed.
    pub false_entries: u64,
    /// Receipts per batch, and mean receipts per decision on a radio-heard attestation.
    pub entries_per_batch: f64,
    pub receipts_per_decision: f64,
}

/// What the radio model did.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Radio {
    pub transmitted: u64,
    pub delivered: u64,
    pub lost_collision: u64,
    pub lost_half_duplex: u64,
    pub refused_regional: u64,
}

/// Wall-clock figures (not reproducible; excluded from snapshots).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Perf {
    pub wall_s: f64,
    /// CPU seconds the run used (user + system).
    pub cpu_s: Option<f64>,
    pub events_per_s: f64,
    pub signature_checks_per_s: f64,
    pub peak_rss_mib: Option<f64>,
    /// Threads the run used, and the CPU seconds of the event loop's thread alone.
    pub threads: usize,
    pub main_thread_cpu_s: Option<f64>,
    /// Signature checks answered by the shared memo, and those it had to compute
    /// (work, not outcomes: with two threads they depend on timing).
    pub memo_hits: u64,
    pub memo_misses: u64,
    /// Signatures the second thread checked ahead of the gateways.
    pub preverified: u64,
    /// Devices' attestation signatures the second thread made ahead of their
    /// wake-ups, and those the devices adopted (the others signed at the wake-up).
    pub signed_ahead: u64,
    pub adopted: u64,
    /// Of `signed_ahead`, those checked (the audit of `world::preverify`) rather than
    /// filed in the memo as valid as made.
    pub audited: u64,
    /// CPU seconds of the second thread (its checks and signatures).
    pub preverify_cpu_s: f64,
    /// Gateway ticks run in parallel, the jobs they held, and the CPU seconds of the
    /// tick workers (`world::tick`).
    pub parallel_ticks: u64,
    pub tick_jobs: u64,
    pub tick_workers_cpu_s: f64,
    /// Of `tick_jobs`, those the workers ran (the loop's thread ran the others).
    pub tick_jobs_on_workers: u64,
    /// This machine's ed25519 rates measured in the same process (the command line
    /// fills it in; `None` in tests).
    pub reference: Option<crate::metrics::Reference>,
}

/// The results of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: Scenario,
    /// The attestation suite the devices spoke.
    pub suite: Suite,
    /// Suite 2: intervals per compact chain (compact runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_len: Option<u32>,
    pub version: &'static str,
    pub seed: u64,
    pub devices: usize,
    pub gateways: usize,
    pub hours: f64,
    pub trust_engine: bool,
    pub trace_digest: String,
    pub events: u64,
    /// Identities the attacker cloned and whose clone a gateway heard (a clone no
    /// gateway hears can neither be caught nor act; those are `cloned_unheard`).
    pub attacked: usize,
    pub cloned_unheard: usize,
    /// Clones whose original never spoke again after the copy (dormant to the end) and
    /// that nobody caught: silent clones in effect, reported apart.
    pub cloned_original_silent: usize,
    /// Of those, quarantined by at least one gateway / by every gateway.
    pub detected: usize,
    pub detected_everywhere: usize,
    pub detection_rate: Option<f64>,
    /// Cloned identities nobody quarantined, with when the clone's first new frame went
    /// on the air (`None`: it never did).
    pub undetected: Vec<(usize, Option<f64>)>,
    /// Honest identities (never cloned) quarantined anywhere.
    pub false_quarantines: usize,
    /// From the clone's first new frame on the air to the first gateway's quarantine.
    pub detection_latency: Option<Quantiles>,
    /// From the clone's first new frame on the air to the last gateway's quarantine.
    pub everywhere_latency: Option<Quantiles>,
    /// `partition`: from the heal until every gateway quarantined every clone, s.
    pub reconvergence_s: Option<f64>,
    /// Attacked identities whose decisions carried a context reason after the attack
    /// started, at any gateway (trust engine), and honest identities flagged so.
    pub context_flagged: usize,
    pub context_false_flags: usize,
    /// Sybil identities at full scope at any gateway at the end.
    pub sybil_full: usize,
    /// Gateways' peak of devices tracked by the trust engine.
    pub engine_peak_devices: usize,
    /// Trust-engine calls that failed, over all gateways.
    pub engine_errors: u64,
    /// From a device's first frame to full scope at its home gateway (trust engine).
    pub time_to_full_scope: Option<Quantiles>,
    /// Honest devices tracked by at least one gateway at the end, as a fraction of the
    /// incepted ones.
    pub honest_tracked: f64,
    /// Of the honest devices a gateway verified before the attack started, the fraction
    /// a gateway verified again after it started.
    pub honest_heard_after_attack: f64,
    /// The same figure in a control run without the attack (`sybil` only).
    pub control_heard_after_attack: Option<f64>,
    pub gossip_bytes_per_attestation: f64,
    pub duplicates_per_attestation: f64,
    pub airtime_s_per_device_day: f64,
    /// Airtime and transmit energy per device per day, suite 1 (this run) beside suite 2
    /// (computed for the same fleet, see [`crate::suites`]).
    pub suites: Option<crate::suites::Comparison>,
    pub duty_cycle_violations: u64,
    pub gateway_peak_devices: usize,
    pub gateway_device_bound: usize,
    pub gateway_peak_escrow: usize,
    pub gateway_escrow_bound: usize,
    pub outcomes: Outcomes,
    pub receipts: Receipts,
    pub radio: Radio,
    pub counters: Counters,
    pub criteria: Vec<Criterion>,
    pub perf: Perf,
    /// Every detection latency (first gateway / every gateway), s, for the CDF.
    #[serde(skip)]
    pub latencies_s: (Vec<f64>, Vec<f64>),
    #[serde(skip)]
    pub samples: Vec<Sample>,
    #[serde(skip)]
    pub series: Vec<Series>,
    #[serde(skip)]
    pub map: Map,
}

/// Where everything was, for the report's map.
#[derive(Debug, Clone, Default)]
pub struct Map {
    pub width_m: f64,
    pub height_m: f64,
    pub gateways: Vec<(f64, f64)>,
    pub rogue: Option<usize>,
    pub honest: Vec<(f64, f64)>,
    pub victims: Vec<(f64, f64)>,
    pub attackers: Vec<(f64, f64)>,
}

impl Summary {
    /// Reads the results off a finished world.
    pub fn of(world: &World, perf: Perf) -> Self {
        let p: &Params = &world.params;
        let g_count = world.gateways.len();
        let cloned: HashSet<usize> =
            if p.scenario.expects_divergence() || p.scenario == Scenario::SilentClone {
                world.attack.victims.iter().copied().collect()
            } else {
                HashSet::new()
            };
        let mut first = Vec::new();
        let mut everywhere = Vec::new();
        let (mut detected, mut all, mut false_q) = (0, 0, 0);
        let mut last_quarantine = 0u64;
        let mut undetected = Vec::new();
        let mut unheard = 0;
        let mut silent_originals = 0;
        let expects = p.scenario.expects_divergence();
        for (i, t) in world.truth.iter().enumerate() {
            if !cloned.contains(&i) {
                if !t.quarantined_at.is_empty() {
                    false_q += 1;
                }
                continue;
            }
            if t.attacked_at_ms.is_none() && t.quarantined_at.is_empty() {
                unheard += 1;
                continue;
            }
            // A clone whose original never spoke again (dormant to the end) is a silent
            // clone in effect: counted apart in the scenarios that expect a proof.
            if expects && !t.original_heard_after && t.quarantined_at.is_empty() {
                silent_originals += 1;
                continue;
            }
            let Some(&earliest) = t.quarantined_at.values().min() else {
                undetected.push((i, t.attacked_at_ms.map(|a| a as f64 / 3.6e6)));
                continue;
            };
            detected += 1;
            let latest = t.quarantined_at.values().copied().max().unwrap_or(earliest);
            if let Some(at) = t.attacked_at_ms {
                first.push(earliest.saturating_sub(at));
            }
            if t.quarantined_at.len() == g_count {
                all += 1;
                last_quarantine = last_quarantine.max(latest);
                if let Some(at) = t.attacked_at_ms {
                    everywhere.push(latest.saturating_sub(at));
                }
            }
        }
        let full: Vec<u64> = world
            .truth
            .iter()
            .filter_map(|t| Some(t.full_at_ms?.saturating_sub(t.first_tx_ms?)))
            .collect();
        let mut r = Receipts::default();
        for g in &world.gateways {
            r.counters.add(&g.corroboration.counters);
            r.false_entries += g.false_entries;
        }
        r.entries_per_batch =
            r.counters.entries_signed as f64 / r.counters.batches_signed.max(1) as f64;
        r.receipts_per_decision =
            r.counters.attached as f64 / world.counters.decisions.max(1) as f64;
        let mut o = Outcomes::default();
        let mut peak_devices = 0;
        let mut peak_escrow = 0;
        for g in &world.gateways {
            add(&mut o, &g.counters);
            peak_devices = peak_devices.max(g.peak_devices);
            peak_escrow = peak_escrow.max(g.peak_escrow);
        }
        if p.suite == Suite::Compact {
            let mut cc = crate::world::gateway::CompactCounters::default();
            for g in &world.gateways {
                cc.add(&g.counters.compact);
            }
            let honest = &world.devices[..p.devices];
            cc.renewals_sent = honest.iter().map(|d| d.renewals).sum();
            cc.exhausted = honest.iter().filter(|d| d.exhausted).count() as u64;
            cc.pending_bound = world
                .gateways
                .first()
                .map_or(0, |g| g.verifier().compact().config().max_pending_total);
            o.compact = Some(cc);
        }
        let c = world.counters.clone();
        let stats = world.channel().stats();
        let days = p.duration_ms as f64 / 86_400_000.0;
        let attestations = c.honest_frames.max(1) as f64;
        let incepted: Vec<_> = world.devices[..p.devices]
            .iter()
            .filter_map(|d| d.id)
            .collect();
        let tracked = incepted
            .iter()
            .filter(|id| world.tracked_anywhere(id))
            .count();
        let vc = world.gateways.first().map(|g| *g.verifier().config());
        let mut s = Self {
            scenario: p.scenario,
            suite: p.suite,
            chain_len: (p.suite == Suite::Compact).then_some(p.chain_len),
            version: env!("CARGO_PKG_VERSION"),
            seed: p.seed,
            devices: p.devices,
            gateways: g_count,
            hours: p.duration_ms as f64 / 3_600_000.0,
            trust_engine: world.gateways.first().is_some_and(|g| g.stage.judges()),
            trace_digest: world.trace.digest(),
            events: world.events,
            attacked: cloned.len() - unheard - silent_originals,
            cloned_unheard: unheard,
            cloned_original_silent: silent_originals,
            detected,
            detected_everywhere: all,
            undetected,
            detection_rate: (cloned.len() > unheard + silent_originals)
                .then(|| detected as f64 / (cloned.len() - unheard - silent_originals) as f64),
            false_quarantines: false_q,
            latencies_s: (secs(&first), secs(&everywhere)),
            detection_latency: Quantiles::of_ms(first),
            everywhere_latency: Quantiles::of_ms(everywhere),
            reconvergence_s: world.partition_healed_ms.and_then(|h| {
                (all == cloned.len() - unheard - silent_originals && all > 0)
                    .then(|| last_quarantine.saturating_sub(h) as f64 / 1000.0)
            }),
            time_to_full_scope: Quantiles::of_ms(full),
            context_flagged: world
                .truth
                .iter()
                .enumerate()
                .filter(|(i, t)| cloned.contains(i) && t.flagged_by_context)
                .count(),
            context_false_flags: world
                .truth
                .iter()
                .enumerate()
                .filter(|(i, t)| !cloned.contains(i) && t.flagged_honest)
                .count(),
            sybil_full: world.sybils_at_full(),
            control_heard_after_attack: None,
            engine_peak_devices: world
                .gateways
                .iter()
                .map(|g| g.peak_engine)
                .max()
                .unwrap_or(0),
            engine_errors: world.gateways.iter().map(|g| g.stage.errors).sum(),
            honest_tracked: tracked as f64 / incepted.len().max(1) as f64,
            honest_heard_after_attack: {
                let before: Vec<_> = world.truth[..p.devices]
                    .iter()
                    .enumerate()
                    .filter(|(i, t)| t.heard_before_attack && !cloned.contains(i))
                    .collect();
                let after = before.iter().filter(|(_, t)| t.heard_after_attack).count();
                after as f64 / before.len().max(1) as f64
            },
            gossip_bytes_per_attestation: (c.gossip_bytes + c.proof_bytes + c.sync_bytes) as f64
                / attestations,
            duplicates_per_attestation: o.duplicate as f64 / attestations,
            airtime_s_per_device_day: c.honest_airtime_us as f64
                / 1e6
                / p.devices as f64
                / days.max(1e-9),
            suites: {
                let fleet: Vec<_> = world.devices[..p.devices]
                    .iter()
                    .map(|d| (d.modulation, u64::from(d.wakes())))
                    .collect();
                let sizes = crate::suites::compact_sizes(p.interval_s, 8)
                    .zip(crate::suites::ed25519_sizes(8));
                sizes.map(|(sizes, sizes1)| {
                    let per = p.devices as f64 * days.max(1e-9);
                    let airtime_s = c.honest_airtime_us as f64 / 1e6 / per;
                    let measured = crate::suites::Figures {
                        frames: c.honest_frames as f64 / per,
                        bytes_per_frame: c.honest_bytes as f64 / c.honest_frames.max(1) as f64,
                        airtime_s,
                        energy_j: crate::suites::energy_j(airtime_s),
                    };
                    let (ed25519, compact) = match p.suite {
                        Suite::Ed25519 => (measured, crate::suites::compact(&fleet, days, sizes)),
                        Suite::Compact => (crate::suites::ed25519(&fleet, days, sizes1), measured),
                    };
                    crate::suites::Comparison {
                        measured: p.suite,
                        ed25519,
                        compact,
                        compact_attestation_bytes: sizes.0,
                        compact_anchor_bytes: sizes.1,
                    }
                })
            },
            duty_cycle_violations: c.duty_cycle_violations,
            gateway_peak_devices: peak_devices,
            gateway_device_bound: vc.map_or(0, |v| v.max_devices),
            gateway_peak_escrow: peak_escrow,
            gateway_escrow_bound: vc.map_or(0, |v| v.escrow_total),
            outcomes: o,
            receipts: r,
            radio: Radio {
                transmitted: stats.transmitted,
                delivered: stats.delivered,
                lost_collision: stats.lost_collision,
                lost_half_duplex: stats.lost_half_duplex,
                refused_regional: stats.refused_regional,
            },
            counters: c,
            criteria: Vec::new(),
            perf,
            samples: world.samples.clone(),
            series: world.series.iter().map(|(_, s)| s.clone()).collect(),
            map: world.map(),
        };
        s.criteria = crate::criteria::evaluate(&s);
        s
    }

    /// Whether every evaluated criterion held.
    pub fn passed(&self) -> bool {
        self.criteria.iter().all(|c| c.held != Some(false))
    }

    /// The reproducible part as pretty JSON (what the snapshot tests compare).
    pub fn reproducible_json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("perf");
        }
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }
}

fn secs(ms: &[u64]) -> Vec<f64> {
    ms.iter().map(|&m| m as f64 / 1000.0).collect()
}

fn add(o: &mut Outcomes, g: &GatewayCounters) {
    o.extended += g.extended;
    o.unlinked += g.unlinked;
    o.historic += g.historic;
    o.duplicate += g.duplicate;
    o.escrowed += g.escrowed;
    o.divergence += g.divergence;
    o.rejected_signature += g.rejected_signature;
    o.rejected_decode += g.rejected_decode;
    o.rejected_capacity += g.rejected_capacity;
    o.rejected_other += g.rejected_other;
    o.signature_checked += g.verified;
    o.proofs_accepted += g.proofs_accepted;
    o.proofs_rejected += g.proofs_rejected;
    o.batches += g.batches;
}
