//! One run end to end: build the world, run it with a progress callback, measure the
//! wall clock, and read the summary.

use std::time::Instant;

use crate::error::Error;
use crate::metrics::{cpu_s, peak_rss_mib, thread_cpu_s};
use crate::params::Params;
use crate::summary::{Perf, Summary};
use crate::world::World;

/// Runs the simulated layer for `params`.
pub fn simulate(params: Params, progress: &mut dyn FnMut(f64)) -> Result<Summary, Error> {
    let started = Instant::now();
    let cpu0 = cpu_s();
    let thread0 = thread_cpu_s();
    let threads = params.threads;
    let mut world = World::new(params)?;
    world.run(progress)?;
    let wall_s = started.elapsed().as_secs_f64();
    let main_thread_cpu_s = thread_cpu_s().zip(thread0).map(|(b, a)| b - a);
    let memo = world.memo_stats();
    let mut summary = Summary::of(&world, Perf::default());
    if world.params.scenario == crate::scenario::Scenario::Sybil {
        // The control: the same fleet, size and seed with no attack, so "honest devices
        // unaffected" compares like with like (dormancy and marginal links lose some
        // devices in any run).
        let mut control = world.params.clone();
        control.scenario = crate::scenario::Scenario::Baseline;
        control.attack_size = 0;
        let mut c = World::new(control)?;
        c.run(&mut |_| {})?;
        let cs = Summary::of(&c, Perf::default());
        summary.control_heard_after_attack = Some(cs.honest_heard_after_attack);
        summary.criteria = crate::criteria::evaluate(&summary);
    }
    let checks = summary.outcomes.signature_checked + summary.outcomes.rejected_signature;
    summary.perf = Perf {
        wall_s,
        cpu_s: cpu_s().zip(cpu0).map(|(b, a)| b - a),
        events_per_s: world.events as f64 / wall_s.max(1e-9),
        signature_checks_per_s: checks as f64 / wall_s.max(1e-9),
        peak_rss_mib: peak_rss_mib(),
        threads,
        main_thread_cpu_s,
        memo_hits: memo.hits,
        memo_misses: memo.misses,
        preverified: world.pre_stats.checked,
        signed_ahead: world.pre_stats.signed,
        audited: world.pre_stats.audited,
        adopted: world.devices.iter().map(|d| d.adopted).sum(),
        preverify_cpu_s: world.pre_stats.cpu_s,
        parallel_ticks: world.ticks.parallel,
        tick_jobs: world.ticks.jobs,
        tick_workers_cpu_s: world.ticks.workers_cpu_s,
        tick_jobs_on_workers: world.ticks.worker_jobs,
        reference: None,
    };
    Ok(summary)
}
