//! A live run over several seeds: each figure's mean, min and max, each seed's
//! pass/fail, as a terminal table, `results.json` (labelled `"layer": "live"`) and
//! `report.html` ([`super::html`]).

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::readback::Seed;
use crate::error::Error;
use crate::params::Params;
use crate::scenario::Scenario;

/// Mean, min and max of a figure over the seeds that have it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Stat {
    /// Seeds that have the figure.
    pub n: usize,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    fn of(xs: &[f64]) -> Option<Self> {
        if xs.is_empty() {
            return None;
        }
        let n = xs.len();
        Some(Self {
            n,
            mean: xs.iter().sum::<f64>() / n as f64,
            min: xs.iter().copied().fold(f64::INFINITY, f64::min),
            max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// The results of a live run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub layer: &'static str,
    pub version: &'static str,
    pub scenario: Scenario,
    pub devices: usize,
    pub gateways: usize,
    pub hours: f64,
    pub attack_size: usize,
    pub seeds: Vec<u64>,
    /// Whether every seed passed every criterion it could evaluate.
    pub passed: bool,
    /// Figure name → mean/min/max over the seeds, in table order.
    pub stats: Vec<(&'static str, Stat)>,
    pub runs: Vec<Seed>,
}

/// The figures summarised over seeds: name, and how to read it off a seed.
type Figure = (&'static str, fn(&Seed) -> Option<f64>);

const FIGURES: &[Figure] = &[
    ("detection rate", |s| s.detection_rate),
    ("false quarantines", |s| Some(s.false_quarantines as f64)),
    ("detection latency p50, virtual s", |s| {
        s.detection_latency.map(|q| q.p50_s)
    }),
    ("detection latency max, virtual s", |s| {
        s.detection_latency.map(|q| q.max_s)
    }),
    ("every gateway, latency max, virtual s", |s| {
        s.everywhere_latency.map(|q| q.max_s)
    }),
    ("detection latency max, wall s", |s| {
        s.detection_latency_wall.map(|q| q.max_s)
    }),
    ("every gateway, latency max, wall s", |s| {
        s.everywhere_latency_wall.map(|q| q.max_s)
    }),
    ("time to full scope p50, s", |s| {
        s.time_to_full_scope.map(|q| q.p50_s)
    }),
    ("forged frames accepted", |s| Some(s.forged_accepted as f64)),
    ("gossip bytes out per attestation", |s| {
        Some(s.gossip_bytes_out_per_attestation)
    }),
    ("gossip bytes in, MiB (all gateways)", |s| {
        Some(s.gossip_bytes_in as f64 / 1_048_576.0)
    }),
    ("partition: links cut", |s| {
        s.partition.as_ref().map(|p| p.cut_links as f64)
    }),
    ("partition: re-converged at the heal, fraction", |s| {
        s.partition
            .as_ref()
            .map(|p| p.pairs_at_heal as f64 / p.pairs.max(1) as f64)
    }),
    ("partition: re-convergence, virtual s", |s| {
        s.partition.as_ref().and_then(|p| p.reconvergence_s)
    }),
    ("partition: re-convergence, wall s", |s| {
        s.partition.as_ref().and_then(|p| p.reconvergence_wall_s)
    }),
    ("rogue: fake proofs sent", |s| {
        s.rogue.as_ref().map(|r| r.sent.fake_proofs as f64)
    }),
    ("rogue: honest nodes rejecting, fraction", |s| {
        s.rogue
            .as_ref()
            .map(|r| r.nodes_rejecting as f64 / r.honest_nodes.max(1) as f64)
    }),
    ("rogue: false receipts sent", |s| {
        s.rogue.as_ref().map(|r| r.sent.false_receipts as f64)
    }),
    ("rogue: decisions its lies lifted (all nodes)", |s| {
        s.rogue.as_ref().map(|r| r.lifted as f64)
    }),
    ("rogue: decisions past its zone (must be 0)", |s| {
        s.rogue.as_ref().map(|r| r.beyond_zone as f64)
    }),
    ("rogue: its score at honest peers, min", |s| {
        s.rogue.as_ref().and_then(|r| r.score_min)
    }),
    ("sybil: identities", |s| {
        s.sybil.as_ref().map(|y| y.identities as f64)
    }),
    ("sybil: at full scope (must be 0)", |s| {
        s.sybil.as_ref().map(|y| y.full as f64)
    }),
    ("sybil: peak devices at a gateway", |s| {
        s.sybil.as_ref().map(|y| y.peak.verifier_devices as f64)
    }),
    ("sybil: device bound", |s| {
        s.sybil.as_ref().map(|y| y.bounds.devices as f64)
    }),
    ("sybil: frames refused at the bound", |s| {
        s.sybil.as_ref().map(|y| y.rejected as f64)
    }),
    ("sybil: honest decided after attack", |s| {
        s.sybil.as_ref().map(|y| y.honest.share)
    }),
    ("sybil: honest decided after, control", |s| {
        s.sybil.as_ref().map(|y| y.control.share)
    }),
    ("sybil: honest at full scope", |s| {
        s.sybil.as_ref().map(|y| y.honest.full as f64)
    }),
    ("sybil: honest at full scope, control", |s| {
        s.sybil.as_ref().map(|y| y.control.full as f64)
    }),
    ("sybil: RSS per gateway over control, MiB", |s| {
        s.sybil.as_ref().map(|y| y.rss_per_gateway_mib)
    }),
    ("peers per gateway", |s| Some(s.mean_peers)),
    ("receptions injected", |s| Some(s.receptions as f64)),
    ("steps", |s| Some(s.steps as f64)),
    ("gateway start-up, s", |s| Some(s.perf.startup_s)),
    ("replay, wall s", |s| Some(s.perf.replay_s)),
    ("seed total, wall s", |s| Some(s.perf.wall_s)),
    ("seed total, CPU s", |s| s.perf.cpu_s),
    ("peak RSS so far, MiB", |s| s.perf.peak_rss_mib),
    ("threads (gateways running)", |s| {
        s.perf.threads.map(|t| t as f64)
    }),
];

impl Report {
    /// Summarises the seeds' results.
    pub fn of(params: &Params, runs: Vec<Seed>) -> Self {
        let stats = FIGURES
            .iter()
            .filter_map(|(name, f)| {
                let xs: Vec<f64> = runs.iter().filter_map(f).collect();
                Stat::of(&xs).map(|s| (*name, s))
            })
            .collect();
        Self {
            layer: "live",
            version: env!("CARGO_PKG_VERSION"),
            scenario: params.scenario,
            devices: params.devices,
            gateways: params.gateways,
            hours: params.duration_ms as f64 / 3.6e6,
            attack_size: params.attack_size,
            seeds: runs.iter().map(|r| r.seed).collect(),
            passed: runs.iter().all(|r| r.passed),
            stats,
            runs,
        }
    }

    /// The terminal table.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "slope-testnet {} LIVE: {} real gateways (libp2p, loopback TCP), {} devices, {:.0} h, seeds {:?}",
            self.scenario, self.gateways, self.devices, self.hours, self.seeds
        );
        let _ = writeln!(
            o,
            "  {:<40} {:>12} {:>12} {:>12}",
            "figure (over seeds)", "mean", "min", "max"
        );
        for (name, s) in &self.stats {
            let _ = writeln!(
                o,
                "  {:<40} {:>12.3} {:>12.3} {:>12.3}{}",
                name,
                s.mean,
                s.min,
                s.max,
                if s.n < self.runs.len() {
                    format!("  ({} of {} seeds)", s.n, self.runs.len())
                } else {
                    String::new()
                }
            );
        }
        for r in &self.runs {
            let _ = writeln!(
                o,
                "  seed {}: {}",
                r.seed,
                if r.passed { "PASS" } else { "FAIL" }
            );
            for c in &r.criteria {
                let mark = match c.held {
                    Some(true) => "ok  ",
                    Some(false) => "FAIL",
                    None => "n/e ",
                };
                let _ = writeln!(o, "    [{mark}] {}: {}", c.name, c.detail);
            }
        }
        let _ = writeln!(
            o,
            "  live: {}",
            if self.passed {
                "every seed passed"
            } else {
                "a seed FAILED"
            }
        );
        o
    }

    /// Writes `dir/results.json` and `dir/report.html`.
    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        let io = |source| Error::Io {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join("results.json");
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(&path, json).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let path = dir.join("report.html");
        std::fs::write(&path, super::html::render(self)).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })
    }
}
