//! Verification throughput: the verifier against raw ed25519-dalek, in one run.
//!
//! `cargo bench -p slope-node --bench verify`
//!
//! Criterion measures four things in one run: raw ed25519-dalek single and batch
//! verification of the very same attestations, and the verifier's single and batch
//! paths. Each prints its throughput; at the end a table puts every figure next to raw
//! single verification measured in the same run, because this machine is noisy. The
//! goal: the verifier reaches ≥ 80 % of raw single verification, and batching beats it.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock; the library never does

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

use ed25519_dalek::{Signature, VerifyingKey};
use slope_node::device::storage::{MemSlots, TwoSlot};
use slope_node::device::{Config as DeviceConfig, MIN_INCEPT_SAMPLES, Slope};
use slope_node::verifier::{Config, Outcome, Verifier};
use slope_proto::{DeviceId, Event, Observation};

const DEVICES: usize = 100;
const PER_DEVICE: usize = 300;
const BATCH: usize = 64;
const ROUNDS: usize = 5;

struct Corpus {
    inceptions: Vec<Vec<u8>>,
    /// Routine attestations, interleaved across devices in arrival order.
    frames: Vec<Vec<u8>>,
    /// The same attestations as raw (message, signature, key) triples.
    raw: Vec<([u8; 32], Signature, VerifyingKey)>,
}

fn corpus() -> Corpus {
    let config = DeviceConfig {
        rotate_every: 0,
        rotate_after_ms: 0,
        ..DeviceConfig::default()
    };
    let mut inceptions = Vec::new();
    let mut per_device = Vec::new();
    for d in 0..DEVICES {
        let mut dev = Slope::restore(config, TwoSlot::new(MemSlots::default())).expect("fresh");
        for i in 0..MIN_INCEPT_SAMPLES {
            dev.handle_entropy(&[
                (d & 0xff) as u8,
                (d >> 8) as u8,
                (i & 0xff) as u8,
                (i >> 8) as u8,
            ]);
        }
        inceptions.push(dev.incept(0).expect("incept").to_vec());
        let id: DeviceId = dev.id().expect("id");
        let mut frames = Vec::new();
        for n in 0..PER_DEVICE {
            let r = dev
                .attest(n as u64 * 900_000, &(n as u64).to_le_bytes(), &[])
                .expect("attest");
            frames.push(r.frames[0].to_vec());
        }
        per_device.push((id, frames));
    }
    let keys: std::collections::BTreeMap<DeviceId, VerifyingKey> = inceptions
        .iter()
        .map(|f| match Event::decode(f) {
            Ok(Event::Inception(i)) => (
                i.device_id(),
                VerifyingKey::from_bytes(&i.body().key).expect("key"),
            ),
            other => panic!("not an inception: {other:?}"),
        })
        .collect();
    let mut frames = Vec::new();
    let mut raw = Vec::new();
    for n in 0..PER_DEVICE {
        for (id, fs) in &per_device {
            let e = Event::decode(&fs[n]).expect("valid");
            raw.push((
                e.message(id),
                Signature::from_bytes(e.signature()),
                keys[id],
            ));
            frames.push(fs[n].clone());
        }
    }
    Corpus {
        inceptions,
        frames,
        raw,
    }
}

fn rx() -> Observation {
    Observation {
        rssi_dbm: -100,
        snr_qdb: 20,
        freq_hz: 868_100_000,
        foff_hz: None,
        sf: 9,
        time_ms: 0,
    }
}

fn loaded_verifier(c: &Corpus) -> Verifier {
    let mut v = Verifier::new(Config::default());
    for f in &c.inceptions {
        assert!(matches!(
            v.handle_attestation(0, f, rx()),
            Outcome::Extended(_)
        ));
    }
    v
}

/// Runs `per_item` over `iters` items of a corpus of `n`, with a fresh `setup()` state
/// whenever the corpus is used up; only the processing is timed.
fn timed<S>(
    iters: u64,
    n: usize,
    mut setup: impl FnMut() -> S,
    mut per_item: impl FnMut(&mut S, usize),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0u64;
    while done < iters {
        let mut state = setup();
        let chunk = (iters - done).min(n as u64) as usize;
        let t = Instant::now();
        for i in 0..chunk {
            per_item(&mut state, i);
        }
        total += t.elapsed();
        done += chunk as u64;
    }
    total
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let c = corpus();
    let rx = rx();
    let n = c.frames.len();
    let batches = n / BATCH;

    let mut single = criterion.benchmark_group("single");
    single.throughput(Throughput::Elements(1));
    single.bench_function("raw ed25519-dalek verify_strict", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                n,
                || (),
                |_, i| {
                    let (m, s, k) = &c.raw[i];
                    k.verify_strict(m, s).expect("valid");
                },
            )
        })
    });
    single.bench_function("Verifier::handle_attestation", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                n,
                || loaded_verifier(&c),
                |v, i| {
                    let o = v.handle_attestation(1, &c.frames[i], rx);
                    assert!(matches!(o, Outcome::Extended(_)), "{o:?}");
                },
            )
        })
    });
    single.finish();

    let items: Vec<(&[u8], Observation)> = c.frames.iter().map(|f| (&f[..], rx)).collect();
    let mut batch = criterion.benchmark_group("batch of 64");
    batch.throughput(Throughput::Elements(BATCH as u64));
    batch.bench_function("raw ed25519-dalek verify_batch", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                batches,
                || (),
                |_, i| {
                    let chunk = &c.raw[i * BATCH..(i + 1) * BATCH];
                    let m: Vec<&[u8]> = chunk.iter().map(|(m, _, _)| &m[..]).collect();
                    let s: Vec<Signature> = chunk.iter().map(|(_, s, _)| *s).collect();
                    let k: Vec<VerifyingKey> = chunk.iter().map(|(_, _, k)| *k).collect();
                    ed25519_dalek::verify_batch(&m, &s, &k).expect("valid");
                },
            )
        })
    });
    batch.bench_function("Verifier::handle_batch", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                batches,
                || loaded_verifier(&c),
                |v, i| {
                    let out = v.handle_batch(1, &items[i * BATCH..(i + 1) * BATCH]);
                    assert!(out.iter().all(|o| matches!(o, Outcome::Extended(_))));
                },
            )
        })
    });
    batch.finish();
    criterion.final_summary();

    interleaved_table(&c);
}

/// Items per second of `f`, which processes `items` items.
fn rate(items: usize, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    items as f64 / t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The closing table: raw and verifier runs interleaved round by round, so the noise of
/// a shared machine hits both alike; the median of the rounds.
fn interleaved_table(c: &Corpus) {
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = if quick { 200 } else { c.frames.len() };
    let rounds = if quick { 1 } else { ROUNDS };
    let rx = rx();
    let items: Vec<(&[u8], Observation)> = c.frames[..n].iter().map(|f| (&f[..], rx)).collect();
    let mut rates = [vec![], vec![], vec![], vec![]];
    for _ in 0..rounds {
        rates[0].push(rate(n, || {
            for (m, s, k) in &c.raw[..n] {
                k.verify_strict(m, s).expect("valid");
            }
        }));
        let mut v = loaded_verifier(c);
        rates[1].push(rate(n, || {
            for f in &c.frames[..n] {
                assert!(matches!(
                    v.handle_attestation(1, f, rx),
                    Outcome::Extended(_)
                ));
            }
        }));
        rates[2].push(rate(n, || {
            for chunk in c.raw[..n].chunks(BATCH) {
                let m: Vec<&[u8]> = chunk.iter().map(|(m, _, _)| &m[..]).collect();
                let s: Vec<Signature> = chunk.iter().map(|(_, s, _)| *s).collect();
                let k: Vec<VerifyingKey> = chunk.iter().map(|(_, _, k)| *k).collect();
                ed25519_dalek::verify_batch(&m, &s, &k).expect("valid");
            }
        }));
        let mut v = loaded_verifier(c);
        rates[3].push(rate(n, || {
            for chunk in items.chunks(BATCH) {
                let out = v.handle_batch(1, chunk);
                assert!(out.iter().all(|o| matches!(o, Outcome::Extended(_))));
            }
        }));
    }
    let [rs, vs, rb, vb] = rates.map(median);
    println!(
        "\nroutine attestations: {n} of {DEVICES} devices, raw and verifier interleaved, median of {rounds} rounds"
    );
    println!(
        "{:<44} {:>12} {:>14}",
        "measurement", "per second", "vs raw single"
    );
    for (name, r) in [
        ("raw ed25519-dalek verify_strict", rs),
        ("Verifier::handle_attestation", vs),
        ("raw ed25519-dalek verify_batch (64)", rb),
        ("Verifier::handle_batch (64)", vb),
    ] {
        println!("{name:<44} {r:>12.0} {:>13.0}%", 100.0 * r / rs);
    }
}
