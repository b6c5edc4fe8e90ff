//! The terminal table of a run: the headline figures, then each pass criterion.

use std::fmt::Write;

use crate::metrics::Quantiles;
use crate::summary::Summary;

fn q(q: &Option<Quantiles>) -> String {
    q.map_or("—".into(), |q| {
        format!(
            "{} / {} / {} (n={})",
            secs(q.p50_s),
            secs(q.p99_s),
            secs(q.max_s),
            q.n
        )
    })
}

/// Seconds, in the most readable unit.
pub fn secs(s: f64) -> String {
    if s >= 3600.0 {
        format!("{:.2} h", s / 3600.0)
    } else if s >= 60.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{s:.2} s")
    }
}

/// The table as text.
pub fn render(s: &Summary) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("scenario", format!("{} (seed {})", s.scenario, s.seed)),
        (
            "size",
            format!(
                "{} devices, {} gateways, {} h simulated",
                s.devices, s.gateways, s.hours
            ),
        ),
        (
            "gateway stage",
            if s.trust_engine {
                "verifier + trust engine".into()
            } else {
                "verifier only".into()
            },
        ),
        (
            "attestation suite",
            match s.suite {
                crate::params::Suite::Ed25519 => "ed25519 (suite 1)".into(),
                crate::params::Suite::Compact => {
                    "compact (suite 2, after a suite-1 inception and anchor)".into()
                }
            },
        ),
        (
            "detection rate",
            s.detection_rate
                .map_or("— (no clone in this scenario)".into(), |r| {
                    format!("{:.1} % ({} of {})", r * 100.0, s.detected, s.attacked)
                }),
        ),
        ("false quarantines", s.false_quarantines.to_string()),
        ("detection latency p50/p99/max", q(&s.detection_latency)),
        ("  …until every gateway", q(&s.everywhere_latency)),
        ("time to full scope p50/p99/max", q(&s.time_to_full_scope)),
        (
            "context flags (attacked / honest)",
            format!("{} / {}", s.context_flagged, s.context_false_flags),
        ),
        (
            "gossip bytes per attestation",
            format!("{:.0} B", s.gossip_bytes_per_attestation),
        ),
        (
            "witness receipts",
            format!(
                "{} batches of {:.1}, {:.2} receipts per decision, {:.0} B per attestation",
                s.receipts.counters.batches_signed,
                s.receipts.entries_per_batch,
                s.receipts.receipts_per_decision,
                s.counters.receipt_bytes as f64 / s.counters.honest_frames.max(1) as f64
            ),
        ),
        (
            "per device per day, ed25519 suite",
            s.suites.map_or("—".into(), |x| {
                suite(&x.ed25519, x.measured == crate::params::Suite::Ed25519)
            }),
        ),
        (
            "  …compact suite",
            s.suites.map_or("—".into(), |x| {
                suite(&x.compact, x.measured == crate::params::Suite::Compact)
            }),
        ),
        (
            "duplicates per attestation",
            format!("{:.2}", s.duplicates_per_attestation),
        ),
        (
            "airtime per device per day",
            secs(s.airtime_s_per_device_day),
        ),
        (
            "duty-cycle violations",
            format!(
                "{} ({} deferrals)",
                s.duty_cycle_violations, s.counters.duty_cycle_deferrals
            ),
        ),
        (
            "peak memory (process RSS)",
            s.perf
                .peak_rss_mib
                .map_or("—".into(), |m| format!("{m:.0} MiB")),
        ),
        (
            "events per second",
            format!(
                "{:.0} ({} events in {:.1} s wall, {} CPU, {} of it the event loop's; {} threads)",
                s.perf.events_per_s,
                s.events,
                s.perf.wall_s,
                s.perf.cpu_s.map_or("—".into(), |c| format!("{c:.1} s")),
                s.perf
                    .main_thread_cpu_s
                    .map_or("—".into(), |c| format!("{c:.1} s")),
                s.perf.threads,
            ),
        ),
        (
            "signature checks per second",
            format!(
                "{:.0} (shared memo: {} answered, {} computed by gateways, {} ahead by the second thread)",
                s.perf.signature_checks_per_s,
                s.perf.memo_hits,
                s.perf.memo_misses,
                s.perf.preverified
            ),
        ),
        (
            "device signatures made ahead",
            format!(
                "{} by the second thread, {} of them adopted at the wake-up, {} audited \
                 (checked; the others are filed valid as made) ({:.1} s CPU on that \
                 thread, checks included)",
                s.perf.signed_ahead, s.perf.adopted, s.perf.audited, s.perf.preverify_cpu_s
            ),
        ),
        (
            "gateway ticks on the workers",
            format!(
                "{} ticks, {} gateway events ({} on the workers, {:.1} s CPU there)",
                s.perf.parallel_ticks,
                s.perf.tick_jobs,
                s.perf.tick_jobs_on_workers,
                s.perf.tick_workers_cpu_s
            ),
        ),
        (
            "reference (this machine, now)",
            s.perf.reference.map_or("—".into(), |r| {
                format!(
                    "ed25519 {:.0} signs/s, {:.0} strict verifies/s, {:.0} batch-of-64 verifies/s (one thread)",
                    r.ed25519_sign_per_s, r.ed25519_verify_per_s, r.ed25519_batch64_verify_per_s
                )
            }),
        ),
        ("trace digest", s.trace_digest.clone()),
    ];
    if let Some(c) = s.outcomes.compact {
        rows.insert(
            4,
            (
                "compact frames at gateways",
                format!(
                    "{} anchors ({} refused), {} taken, {} authenticated, {} bad MACs, {} late, {} unknown device, {} divergences without a proof",
                    c.anchored,
                    c.anchor_refused,
                    c.taken,
                    c.authenticated,
                    c.bad_mac,
                    c.late,
                    c.unknown_device,
                    c.unproven
                ),
            ),
        );
    }
    if let Some(r) = s.reconvergence_s {
        rows.insert(7, ("re-convergence after heal", secs(r)));
    }
    let w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in &rows {
        let _ = writeln!(out, "  {k:<w$}  {v}");
    }
    let _ = writeln!(out, "\n  pass criteria:");
    for c in &s.criteria {
        let mark = match c.held {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "n/a ",
        };
        let _ = writeln!(out, "  [{mark}] {} — {}", c.name, c.detail);
    }
    let verdict = if s.passed() { "PASSED" } else { "FAILED" };
    let _ = writeln!(out, "\n  {} {verdict}", s.scenario);
    out
}

fn suite(f: &crate::suites::Figures, measured: bool) -> String {
    format!(
        "{:.1} frames of {:.0} B, {:.2} s on air, {:.2} J to transmit ({})",
        f.frames,
        f.bytes_per_frame,
        f.airtime_s,
        f.energy_j,
        if measured { "measured" } else { "computed" }
    )
}
