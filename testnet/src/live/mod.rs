//! The live layer (`--live`): real `slope-mesh` gateway nodes with real libp2p gossip
//! (loopback TCP) in one process, fed by the simulated devices, over several seeds.
//!
//! Per seed: [`tape`] runs the simulated world (fleet, geometry, channel, honest
//! misbehaviour and attack of the simulated layer) and keeps every reception at a
//! gateway's radio; [`cluster`] starts one real gateway per simulated gateway on a
//! manual clock and replays the tape into their radios window by window, letting
//! gossip settle between steps; [`readback`] reads every gateway's store, lineage,
//! counters and announced quarantines against the tape's ground truth and evaluates
//! [`criteria`]; [`report`] gives each figure's mean, min and max over the seeds.
//!
//! Scenarios: baseline, clone, silent-clone, batch-compromise, forgery, replay,
//! duplicates. Not live: partition (the harness would have to refuse connections
//! across a cut), sybil (10,000 identities through 300 real pipelines) and
//! rogue-gateway (a node that signs false receipts); `run` says so. Suite 1 only.

pub mod cluster;
pub mod criteria;
pub mod readback;
pub mod report;
pub mod tape;

use std::time::{Duration, Instant};

use crate::error::Error;
use crate::metrics::{cpu_s, peak_rss_mib};
use crate::params::{HOUR_MS, Params, Suite};
use crate::scenario::Scenario;
pub use report::Report;

/// How a live run steps.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Width of one replay window, virtual ms: receptions in one window go in together,
    /// and detection latencies in virtual time are counted in these steps.
    pub step_ms: u64,
    pub cluster: cluster::Options,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            step_ms: 10_000,
            cluster: cluster::Options::default(),
        }
    }
}

/// The scenarios the live layer runs.
pub fn supported(s: Scenario) -> bool {
    !matches!(
        s,
        Scenario::Partition | Scenario::Sybil | Scenario::RogueGateway
    )
}

/// The live defaults of a scenario: 16 gateways, 24 devices, 6 h, the attack at 2 h
/// (two clones, forgers or replayers) — a minute or two per seed on 2 cores.
pub fn defaults(scenario: Scenario) -> Params {
    let mut p = Params::defaults(scenario);
    p.gateways = 16;
    p.devices = 24;
    p.duration_ms = 6 * HOUR_MS;
    p.attack_at_ms = 2 * HOUR_MS;
    p.attack_size = match scenario {
        Scenario::Baseline | Scenario::Duplicates => 0,
        _ => 2,
    };
    p
}

/// Runs the live layer for `params` once per seed in `seeds`.
pub fn run(params: &Params, seeds: &[u64], options: Options) -> Result<Report, Error> {
    if !supported(params.scenario) {
        return Err(Error::Live(format!(
            "scenario {} is not run live (partition, sybil and rogue-gateway need a harness \
             that cuts connections, 10,000 identities or a lying node; see docs/testnet.md)",
            params.scenario
        )));
    }
    if params.suite != Suite::Ed25519 {
        return Err(Error::Live("only suite 1 (ed25519) runs live".into()));
    }
    if seeds.is_empty() {
        return Err(Error::Live("at least one seed".into()));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Live(format!("tokio runtime: {e}")))?;
    let mut results = Vec::with_capacity(seeds.len());
    for &seed in seeds {
        let mut p = params.clone();
        p.seed = seed;
        p.check()?;
        let s = runtime.block_on(one(p, options))?;
        // Progress on long runs: one line per seed as it ends.
        eprintln!(
            "  seed {seed}: {} ({:.0} s wall)",
            if s.passed { "pass" } else { "FAIL" },
            s.perf.wall_s
        );
        results.push(s);
    }
    Ok(Report::of(params, results))
}

/// One seed.
async fn one(params: Params, options: Options) -> Result<readback::Seed, Error> {
    let started = Instant::now();
    let cpu0 = cpu_s();
    let seed = params.seed;
    let tape = tape::Tape::record(&params)?;
    let tape_s = started.elapsed().as_secs_f64();
    let cols = (params.gateways as f64).sqrt().ceil() as usize;
    let zones: Vec<u16> = (0..params.gateways)
        .map(|g| crate::world::setup::site_zone(g, cols).0)
        .collect();
    let t = Instant::now();
    let mut cluster = cluster::Cluster::start(seed, &zones, options.cluster).await?;
    let startup_s = t.elapsed().as_secs_f64();
    let (components, mean_peers) = cluster.topology().await?;
    let t = Instant::now();
    let receipt_wait = slope_mesh::config::Ingest::default().receipt_wait_ms;
    let windows = tape.windows(options.step_ms);
    let mut injected = Vec::with_capacity(windows.len());
    for (end_ms, receptions) in &windows {
        injected.push((*end_ms, Instant::now()));
        cluster.step(*end_ms, receptions, receipt_wait).await;
    }
    // Drain: a sync round everywhere and a few more steps of the clock.
    let end = params.duration_ms.max(cluster.clock_ms());
    cluster.sync_all().await;
    for k in 1..=3 {
        cluster.advance(end + k * 1_000).await;
        cluster.settle().await;
    }
    let replay_s = t.elapsed().as_secs_f64();
    let replay = readback::Replay {
        injected,
        steps: windows.len(),
        components,
        mean_peers,
    };
    let perf = readback::Perf {
        tape_s,
        startup_s,
        replay_s,
        wall_s: 0.0,
        cpu_s: None,
        peak_rss_mib: peak_rss_mib(),
        threads: threads(),
    };
    let mut s = readback::read(&tape, &cluster, &replay, seed, perf);
    cluster.shutdown().await;
    s.perf.wall_s = started.elapsed().as_secs_f64();
    s.perf.cpu_s = cpu_s().zip(cpu0).map(|(b, a)| b - a);
    // Let the runtime drop what the stopped nodes left (connections closing).
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(s)
}

/// Threads of this process now (Linux `/proc/self/status`).
fn threads() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Threads:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
