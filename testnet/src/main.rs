//! `slope-testnet`: run a scenario on the simulated (default) or live layer, print the
//! table, write `results.json` and `report.html`.
//!
//! `deny`, not `forbid(unsafe_code)`: one FFI call sets a mimalloc option
//! ([`large_pages`]); the comment there is why it is sound. Nothing else may.
#![deny(unsafe_code)]

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use slope_testnet::params::parse_duration;
use slope_testnet::{Params, Scenario, report, run};

/// See testnet/Cargo.toml: the simulator's many small allocations on two threads.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "slope-testnet",
    version,
    about = "Slope testnet: scripted attacks on a simulated network"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the `run` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run one scenario.
    Run {
        /// Scenario name (see `list`).
        #[arg(long, default_value = "baseline")]
        scenario: String,
        /// Honest devices (default: the scenario's).
        #[arg(long)]
        devices: Option<usize>,
        /// Gateways (default: the scenario's).
        #[arg(long)]
        gateways: Option<usize>,
        /// The one seed of every random draw.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Simulated time, e.g. 24h, 90m, 2d.
        #[arg(long)]
        duration: Option<String>,
        /// Size of the attack (clones, forgers, Sybil identities...).
        #[arg(long)]
        attack_size: Option<usize>,
        /// Run real slope-mesh gateways with libp2p instead of the modelled mesh.
        #[arg(long)]
        live: bool,
        /// Seeds for --live (statistics over several runs): --seed, --seed + 1, …
        #[arg(long, default_value_t = 3)]
        seeds: u64,
        /// --live: width of one replay window of virtual time, e.g. 10s, 1m (receptions
        /// in a window are injected together; gossip settles between windows). Default
        /// 10s; 5m for sybil.
        #[arg(long)]
        step: Option<String>,
        /// Where to write results.json and report.html.
        #[arg(long, default_value = "testnet-out")]
        out: PathBuf,
        /// Start from the small seeded version the tests run.
        #[arg(long)]
        small: bool,
        /// Print only the table (no progress bar).
        #[arg(long)]
        quiet: bool,
        /// Interval between a gateway's witness receipt batches, e.g. 5m, 60s (a
        /// decision waits one round for receipts; every receiver checks every batch).
        #[arg(long)]
        receipt_round: Option<String>,
        /// Attestation suite the devices speak: ed25519 (suite 1) or compact (suite 2,
        /// hash-only frames after a suite-1 inception and anchor).
        #[arg(long, default_value = "ed25519")]
        suite: String,
        /// Suite 2: intervals per compact chain (default 4096, 42.7 days at 15 min);
        /// a device sends 3 renewals within the last quarter of each chain.
        #[arg(long)]
        chain_len: Option<u32>,
        /// Threads (default: the machine's cores): with N > 1, N - 1 workers share
        /// the gateways' work at each tick with the event loop. The results and the
        /// trace digest do not depend on it.
        #[arg(long)]
        threads: Option<usize>,
        /// With more than one thread, also run the pre-verifier (a thread checking
        /// signatures ahead of the gateways): `on` (default) or `off`.
        #[arg(long, default_value = "on")]
        preverify: String,
        /// The pre-verifier files the signatures it makes for devices as valid as made
        /// and checks one in N of them (the audit; 0 or 1 checks every one). The results
        /// and the trace digest do not depend on it.
        #[arg(long, default_value_t = slope_testnet::params::AUDIT_EVERY)]
        audit_every: u32,
    },
    /// List the scenarios.
    List,
}

/// Lets mimalloc back its memory with 2 MiB pages: on Linux it `madvise`s its arenas
/// `MADV_HUGEPAGE`, so transparent huge pages apply where the kernel leaves them to
/// `madvise` (the common default). A 24 h run at 10,000 devices reads ≈ 850 MiB at
/// random, far past what 4 KiB pages' TLB covers (measured: docs/benchmarks.md,
/// Testnet, session 10). Where huge pages are unavailable nothing changes. The same as
/// `MIMALLOC_ALLOW_LARGE_OS_PAGES=1`.
#[allow(unsafe_code)]
fn large_pages() {
    // SAFETY: `mi_option_set_enabled` takes two integers and no pointer; it stores the
    // value in mimalloc's option table, which mimalloc documents as settable at any
    // time. It runs first in `main`, before any thread is started.
    unsafe {
        libmimalloc_sys::mi_option_set_enabled(libmimalloc_sys::mi_option_large_os_pages, true)
    }
}

fn main() -> anyhow::Result<()> {
    large_pages();
    let cli = Cli::parse();
    match cli.command {
        Command::List => {
            for s in Scenario::ALL {
                let d = s.defaults();
                println!(
                    "{:<17} {}  [{} devices, {} gateways, {} h]",
                    s.name(),
                    s.describe(),
                    d.devices,
                    d.gateways,
                    d.hours
                );
            }
            Ok(())
        }
        Command::Run {
            scenario,
            devices,
            gateways,
            seed,
            duration,
            attack_size,
            live,
            seeds,
            step,
            out,
            small,
            quiet,
            receipt_round,
            suite,
            chain_len,
            threads,
            preverify,
            audit_every,
        } => {
            let scenario = Scenario::from_name(&scenario)
                .ok_or_else(|| slope_testnet::Error::UnknownScenario(scenario.clone()))?;
            let mut p = if small {
                Params::small(scenario)
            } else if live {
                slope_testnet::live::defaults(scenario)
            } else {
                Params::defaults(scenario)
            };
            p.seed = seed;
            p.threads = threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            });
            p.audit_every = audit_every;
            p.preverify = match preverify.as_str() {
                "on" => true,
                "off" => false,
                other => anyhow::bail!("--preverify takes on or off, not {other}"),
            };
            p.suite = slope_testnet::params::Suite::from_name(&suite)
                .ok_or_else(|| slope_testnet::Error::UnknownSuite(suite.clone()))?;
            if let Some(n) = chain_len {
                p.chain_len = n;
            }
            if let Some(n) = devices {
                p.devices = n;
            }
            if let Some(g) = gateways {
                p.gateways = g;
            }
            if let Some(d) = duration {
                p.duration_ms = parse_duration(&d)?;
                p.attack_at_ms = p.duration_ms / 3;
            }
            if let Some(r) = receipt_round {
                p.gossip.receipt_round_ms = parse_duration(&r)?;
            }
            if let Some(a) = attack_size {
                p.attack_size = a;
            }
            p.check()?;
            if live {
                let list: Vec<u64> = (0..seeds.max(1)).map(|k| seed + k).collect();
                let options = slope_testnet::live::Options {
                    step_ms: match &step {
                        Some(s) => parse_duration(s)?,
                        None => slope_testnet::live::default_step_ms(scenario),
                    },
                    ..Default::default()
                };
                println!(
                    "slope-testnet {} LIVE: {} gateways, {} devices, {:.0} h, {} seed(s) from {}",
                    scenario,
                    p.gateways,
                    p.devices,
                    p.duration_ms as f64 / 3.6e6,
                    list.len(),
                    seed
                );
                let report = slope_testnet::live::run(&p, &list, options)?;
                print!("{}", report.render());
                report
                    .write(&out)
                    .with_context(|| format!("writing to {}", out.display()))?;
                println!(
                    "  wrote {}/results.json and {}/report.html",
                    out.display(),
                    out.display()
                );
                if !report.passed {
                    bail!("{} (live) failed its pass criteria", scenario);
                }
                return Ok(());
            }
            println!(
                "slope-testnet {} ({} suite): {} devices, {} gateways, {:.0} h, seed {}",
                scenario,
                p.suite,
                p.devices,
                p.gateways,
                p.duration_ms as f64 / 3.6e6,
                p.seed
            );
            let bar = (!quiet && std::io::stdout().is_terminal()).then(|| {
                let b = ProgressBar::new(1000);
                b.set_style(
                    ProgressStyle::with_template(
                        "  {bar:40} {percent:>3}% simulated, {elapsed} elapsed, eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                b
            });
            let mut summary = run::simulate(p, &mut |f| {
                if let Some(b) = &bar {
                    b.set_position((f * 1000.0) as u64);
                }
            })?;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            // The reference beside the figure, measured now in this process.
            summary.perf.reference = Some(slope_testnet::metrics::Reference::measure(4096));
            print!("{}", report::table::render(&summary));
            report::write(&out, &summary)
                .with_context(|| format!("writing to {}", out.display()))?;
            println!(
                "  wrote {}/results.json and {}/report.html",
                out.display(),
                out.display()
            );
            if !summary.passed() {
                bail!("{} failed its pass criteria", scenario);
            }
            Ok(())
        }
    }
}
