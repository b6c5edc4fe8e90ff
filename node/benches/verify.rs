//! Verification throughput: the verifier against raw ed25519-dalek, in one run.
//!
//! `cargo bench -p slope-node --bench verify`
//!
//! Runs are interleaved (raw, verifier, raw, verifier, …) so the machine's noise hits
//! both alike; each figure is the median of the rounds. The goal: the verifier reaches
//! ≥ 80 % of raw single verification, and batch verification beats single.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock; the library never does

use std::time::Instant;

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

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this quickly too.
    let quick = !std::env::args().any(|a| a == "--bench");
    let c = corpus();
    let n = if quick { 200 } else { c.frames.len() };
    let rounds = if quick { 1 } else { ROUNDS };
    let rx = rx();
    let (mut raw_single, mut raw_batch, mut ver_single, mut ver_batch) =
        (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        raw_single.push(rate(n, || {
            for (m, s, k) in &c.raw[..n] {
                k.verify_strict(m, s).expect("valid");
            }
        }));
        let mut v = loaded_verifier(&c);
        ver_single.push(rate(n, || {
            for f in &c.frames[..n] {
                let o = v.handle_attestation(1, f, rx);
                assert!(matches!(o, Outcome::Extended(_)), "{o:?}");
            }
        }));
        raw_batch.push(rate(n, || {
            for chunk in c.raw[..n].chunks(BATCH) {
                let m: Vec<&[u8]> = chunk.iter().map(|(m, _, _)| &m[..]).collect();
                let s: Vec<Signature> = chunk.iter().map(|(_, s, _)| *s).collect();
                let k: Vec<VerifyingKey> = chunk.iter().map(|(_, _, k)| *k).collect();
                ed25519_dalek::verify_batch(&m, &s, &k).expect("valid");
            }
        }));
        let mut v = loaded_verifier(&c);
        let items: Vec<(&[u8], Observation)> = c.frames[..n].iter().map(|f| (&f[..], rx)).collect();
        ver_batch.push(rate(n, || {
            for chunk in items.chunks(BATCH) {
                let out = v.handle_batch(1, chunk);
                assert!(out.iter().all(|o| matches!(o, Outcome::Extended(_))));
            }
        }));
    }
    let (rs, rb, vs, vb) = (
        median(raw_single),
        median(raw_batch),
        median(ver_single),
        median(ver_batch),
    );
    println!(
        "routine attestation verification, {n} attestations of {DEVICES} devices, median of {rounds} rounds"
    );
    println!(
        "{:<44} {:>12} {:>10}",
        "measurement", "per second", "vs raw 1x1"
    );
    println!(
        "{:<44} {:>12.0} {:>9.0}%",
        "raw ed25519-dalek verify_strict", rs, 100.0
    );
    println!(
        "{:<44} {:>12.0} {:>9.0}%",
        "verifier.handle_attestation",
        vs,
        100.0 * vs / rs
    );
    println!(
        "{:<44} {:>12.0} {:>9.0}%",
        format!("raw ed25519-dalek verify_batch ({BATCH})"),
        rb,
        100.0 * rb / rs
    );
    println!(
        "{:<44} {:>12.0} {:>9.0}%",
        format!("verifier.handle_batch ({BATCH})"),
        vb,
        100.0 * vb / rs
    );
}
