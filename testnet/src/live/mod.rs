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
//! duplicates, partition (the harness cuts the real mesh with every node's block list
//! and heals it: [`cluster::Cluster::cut`]), rogue-gateway (one real node's key signs
//! false receipts and fake proofs the harness gossips through it: [`rogue`]) and sybil
//! (fresh identities from one site against each gateway's configured bounds, with a
//! control run of the same seed without the flood: [`sybil`]). Suite 1 only.

pub mod cluster;
pub mod criteria;
pub mod html;
pub mod readback;
pub mod report;
pub mod rogue;
pub mod sybil;
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

/// The live defaults of a scenario: 16 gateways, 24 devices, 6 h, the attack at 2 h
/// (two clones, forgers or replayers) — a minute or two per seed on 2 cores;
/// `partition` runs 8 h with the cut from 1 h 30 to 5 h 30 (the simulated layer's
/// 4 h cut) and clones 4 devices, those of the west quarter clone from the east;
/// `sybil` runs 12 h (honest devices reach full scope after 6 h at the earliest, so "no
/// Sybil at full scope" can be evaluated) with [`SYBILS`] identities powering on from
/// 2 h to 4 h, attesting hourly.
pub fn defaults(scenario: Scenario) -> Params {
    let mut p = Params::defaults(scenario);
    p.gateways = 16;
    p.devices = 24;
    p.duration_ms = 6 * HOUR_MS;
    p.attack_at_ms = 2 * HOUR_MS;
    p.attack_size = match scenario {
        Scenario::Baseline | Scenario::Duplicates | Scenario::RogueGateway => 0,
        Scenario::Partition => 4,
        Scenario::Sybil => SYBILS,
        _ => 2,
    };
    if scenario == Scenario::Sybil {
        p.duration_ms = 12 * HOUR_MS;
    }
    if scenario == Scenario::Partition {
        p.duration_ms = 8 * HOUR_MS;
        p.attack_at_ms = 3 * HOUR_MS / 2;
    }
    p
}

/// Sybil identities of a default `sybil --live` run: what the real pipelines of 16
/// gateways take in a few minutes on this 2-core machine (every gateway verifies,
/// stores and decides every Sybil frame it hears or is gossiped, up to its bound);
/// the simulated layer's 10,000 run with `--attack-size 10000`.
pub const SYBILS: usize = 2_000;

/// The replay window of a scenario when none is given: 10 s, and 5 min for `sybil`
/// (its flood keeps nearly every 10-second window busy for hours, and each window costs
/// two settling waits; nothing it checks is timed).
pub fn default_step_ms(scenario: Scenario) -> u64 {
    match scenario {
        Scenario::Sybil => 300_000,
        _ => 10_000,
    }
}

/// Runs the live layer for `params` once per seed in `seeds`.
pub fn run(params: &Params, seeds: &[u64], options: Options) -> Result<Report, Error> {
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
async fn one(params: Params, mut options: Options) -> Result<readback::Seed, Error> {
    let started = Instant::now();
    let cpu0 = cpu_s();
    let seed = params.seed;
    let sybil = params.scenario == Scenario::Sybil;
    let bounds = sybil.then(|| {
        let max = sybil::device_bound(params.devices, params.attack_size);
        options.cluster.max_devices = Some(max);
        sybil::Bounds::with(max)
    });
    // The control first: the same seed, fleet and bounds without the flood.
    let control = if sybil {
        Some(control(&params, options).await?)
    } else {
        None
    };
    let mut peaks = sybil.then(sybil::Peaks::default);
    let tape = tape::Tape::record(&params)?;
    let tape_s = started.elapsed().as_secs_f64();
    let cols = (params.gateways as f64).sqrt().ceil() as usize;
    let zones: Vec<u16> = (0..params.gateways)
        .map(|g| crate::world::setup::site_zone(g, cols).0)
        .collect();
    let partition = params.scenario == Scenario::Partition;
    let sides: Vec<bool> = (0..params.gateways)
        .map(|g| partition && tape.world.side(g as u16))
        .collect();
    let t = Instant::now();
    let mut cluster = cluster::Cluster::start(seed, &zones, &sides, options.cluster).await?;
    let mut rogue = match params.scenario {
        Scenario::RogueGateway => {
            let r = tape
                .world
                .attack
                .rogue
                .map_or(params.gateways / 2, usize::from);
            let mut rogue = rogue::Rogue::new(seed, r, params.attack_at_ms, &tape);
            rogue.figures.peers = cluster.connect_all(r).await?;
            Some(rogue)
        }
        _ => None,
    };
    let startup_s = t.elapsed().as_secs_f64();
    let (components, mean_peers) = cluster.topology().await?;
    let t = Instant::now();
    let receipt_wait = slope_mesh::config::Ingest::default().receipt_wait_ms;
    let windows = tape.windows(options.step_ms);
    let ids = rogue::short_ids(&tape);
    let mut injected = Vec::with_capacity(windows.len());
    // The cut at the attack time, the heal when the simulated world healed.
    let mut split = partition.then_some(params.attack_at_ms);
    let mut heal_at = if partition {
        tape.world.partition_healed_ms
    } else {
        None
    };
    let mut cut_links = Vec::new();
    let mut heal = None;
    let mut cut = None;
    for (end_ms, receptions) in &windows {
        if let Some(at) = split.filter(|at| end_ms > at) {
            split = None;
            cluster.advance(at).await;
            let (links, held) = cluster.cut(&sides).await?;
            cut = Some((links.len(), held));
            cut_links = links;
        }
        if let Some(at) = heal_at.filter(|at| end_ms > at) {
            heal_at = None;
            heal = Some(heal_now(&mut cluster, &sides, &cut_links, at, cut, receipt_wait).await?);
        }
        injected.push((*end_ms, Instant::now()));
        match rogue.as_mut() {
            None => {
                cluster.step(*end_ms, receptions, receipt_wait).await;
                if let Some(p) = peaks.as_mut() {
                    p.sample(&cluster).await;
                }
            }
            Some(r) => {
                // The rogue's receipts go out with the window, before any decision.
                cluster.inject(*end_ms, receptions).await;
                r.receipts(&cluster, receptions, &ids, *end_ms).await;
                cluster.settle().await;
                cluster.advance(*end_ms + receipt_wait + 1).await;
                cluster.settle().await;
                if r.proofs(&cluster, *end_ms).await {
                    cluster.settle().await;
                }
            }
        }
    }
    // A heal after the last window (a short run): still healed, and measured.
    if let Some(at) = heal_at {
        heal = Some(heal_now(&mut cluster, &sides, &cut_links, at, cut, receipt_wait).await?);
    }
    drain(&mut cluster, params.duration_ms).await;
    let replay_s = t.elapsed().as_secs_f64();
    let replay = readback::Replay {
        injected,
        steps: windows.len(),
        components,
        mean_peers,
        heal,
        rogue: rogue.as_ref().map(|r| (r.index, r.witness(), r.figures)),
        zones,
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
    let mut s = readback::read(&tape, &cluster, &replay, seed, perf).await;
    if let (Some(b), Some(c), Some(p)) = (bounds, control, peaks.as_mut()) {
        p.sample(&cluster).await;
        s.sybil = Some(sybil::read(&tape, &cluster, p, b, c));
        s.criteria = criteria::evaluate(params.scenario, &s, params.gateways);
        s.passed = s.criteria.iter().all(|c| c.held != Some(false));
    }
    cluster.shutdown().await;
    s.perf.wall_s = started.elapsed().as_secs_f64();
    s.perf.cpu_s = cpu_s().zip(cpu0).map(|(b, a)| b - a);
    // Let the runtime drop what the stopped nodes left (connections closing).
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(s)
}

/// After the last window: a sync round everywhere and a few more steps of the clock.
async fn drain(cluster: &mut cluster::Cluster, duration_ms: u64) {
    let end = duration_ms.max(cluster.clock_ms());
    cluster.sync_all().await;
    for k in 1..=3 {
        cluster.advance(end + k * 1_000).await;
        cluster.settle().await;
    }
}

/// `sybil`'s control: the same seed, fleet and gateway bounds with no flood (the
/// simulated layer's control, a `baseline` world), replayed into a cluster of its own;
/// returns the honest fleet's figures and the process's peak resident memory at the
/// steps.
async fn control(params: &Params, options: Options) -> Result<(sybil::Honest, f64), Error> {
    let mut p = params.clone();
    p.scenario = Scenario::Baseline;
    p.attack_size = 0;
    let tape = tape::Tape::record(&p)?;
    let cols = (p.gateways as f64).sqrt().ceil() as usize;
    let zones: Vec<u16> = (0..p.gateways)
        .map(|g| crate::world::setup::site_zone(g, cols).0)
        .collect();
    let sides = vec![false; p.gateways];
    let mut cluster = cluster::Cluster::start(p.seed, &zones, &sides, options.cluster).await?;
    let receipt_wait = slope_mesh::config::Ingest::default().receipt_wait_ms;
    let mut peaks = sybil::Peaks::default();
    for (end_ms, receptions) in tape.windows(options.step_ms) {
        cluster.step(end_ms, receptions, receipt_wait).await;
        peaks.sample(&cluster).await;
    }
    drain(&mut cluster, p.duration_ms).await;
    let honest = sybil::honest(&tape, &cluster);
    cluster.shutdown().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok((honest, peaks.rss_mib))
}

/// Heals the cut at virtual `at_ms`: whether it held until now, the blocks lifted and
/// the cut links re-dialled, then the mesh settles with no reception injected, so
/// what the two sides learn of each other here is the sync protocol's doing (a node
/// asks each new peer for its summary) and the gossip of the proofs that it produces.
async fn heal_now(
    cluster: &mut cluster::Cluster,
    sides: &[bool],
    links: &[(usize, usize)],
    at_ms: u64,
    cut: Option<(usize, bool)>,
    receipt_wait: u64,
) -> Result<readback::Heal, Error> {
    cluster.advance(at_ms).await;
    let crossing = cluster.crossing(sides).await?;
    let sync0 = cluster.sync_responses();
    let wall = Instant::now();
    let restored = cluster.heal(sides, links).await?;
    cluster.settle().await;
    cluster.advance(at_ms + receipt_wait + 1).await;
    cluster.settle().await;
    let (cut_links, cut_held) = cut.unwrap_or((0, false));
    Ok(readback::Heal {
        at_ms,
        wall,
        settled: Instant::now(),
        cut_links,
        cut_held,
        crossing_before_heal: crossing,
        restored,
        sync_responses: cluster.sync_responses().saturating_sub(sync0),
    })
}

/// Threads of this process now (Linux `/proc/self/status`).
fn threads() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Threads:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
