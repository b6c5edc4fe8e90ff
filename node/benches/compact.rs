//! Suite-2 verification throughput against raw blake3 on the same sizes, in one run.
//!
//! `cargo bench -p slope-node --bench compact`
//!
//! 100 devices attest every interval for 300 intervals (30,000 frames of 47 bytes,
//! 8-byte payload, interleaved as a gateway hears them). The compact verifier handles
//! every frame (fixed-layout decode, security condition, disclosure walk, buffering,
//! MAC check of the frame the disclosure releases, event out); the one verifier does
//! the same behind its suite-byte routing. Next to them, in the same run: raw blake3
//! of the same work — one chain step (56 B keyed hash), one MAC key (16 B keyed hash)
//! and one keyed MAC (39 B) per frame — and a plain blake3 hash of each 47-byte frame.
//! Best of 25 rounds, the measurements interleaved round by round (this machine is
//! shared and noisy: interleaving exposes all of them to the same load). Goal: ≥ 1,000,000 per second.
//!
//! Decisions (second table): the trust engine's cost per compact attestation
//! (`Engine::handle_compact` on the `VerifiedCompact`s the one verifier produced above,
//! no receipts, into an in-memory lineage) beside a suite-1 decision on the same engine
//! and devices (`Engine::handle_attestation`, events built with `assume_verified`, as in
//! the trust benchmark) and ed25519 `verify_strict`, interleaved in the same run. A fresh
//! engine per round; the devices' inceptions are decided before the clock starts.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock; the library never does

use std::hint::black_box;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use slope_node::compact::device::{Device, Schedule};
use slope_node::compact::verifier::{Config, Verifier};
use slope_node::lineage::{Genesis, Local, Memory};
use slope_node::trust::{Engine, Policy, Zone};
use slope_node::verifier::VerifiedAttestation;
use slope_proto::compact::SignedAnchor;
use slope_proto::compact::crypto::{ChainKey, mac, mac_key, step};
use slope_proto::{DeviceId, Event, Inception, Interaction, LinkDigest, Observation, Signed};

const DEVICES: usize = 100;
const INTERVALS: u32 = 300;
/// First interval: 20,000 (two weeks after the schedule's start) so the interval varint
/// takes its 3 bytes and frames are 47 bytes, as in the size budget.
const FIRST: u32 = 20_000;
const ROUNDS: usize = 25;
const T: u64 = 60_000;
const START: u64 = 1_700_000_000_000;

struct Corpus {
    /// Suite-1 inception frames, for the one verifier.
    inceptions: Vec<Vec<u8>>,
    anchors: Vec<(DeviceId, ed25519_dalek::VerifyingKey, Vec<u8>)>,
    /// (rx_ms, frame), in arrival order.
    frames: Vec<(u64, Vec<u8>)>,
}

fn corpus() -> Corpus {
    let mut anchors = Vec::new();
    let mut inceptions = Vec::new();
    let mut devices = Vec::new();
    for d in 0..DEVICES {
        let key = SigningKey::from_bytes(&[d as u8 + 1; 32]);
        let inc = Signed::incept(
            Inception {
                key: key.verifying_key().to_bytes(),
                next_key: slope_proto::crypto::next_key_digest(&[0; 32]),
                interval_s: 60,
            },
            &key,
        )
        .expect("incept");
        let id = inc.device_id();
        let schedule = Schedule {
            start_ms: START,
            interval_ms: T as u32,
            delay: 2,
        };
        let dev = Device::new(id, &[d as u8; 32], schedule, FIRST, 4096).expect("device");
        let anchor = SignedAnchor::sign(dev.anchor(0), &id, &key).expect("anchor");
        anchors.push((id, key.verifying_key(), anchor.frame().to_vec()));
        inceptions.push(inc.frame().to_vec());
        devices.push(dev);
    }
    let mut frames = Vec::new();
    for i in FIRST..FIRST + INTERVALS {
        let t = START + u64::from(i - 1) * T;
        for (d, dev) in devices.iter_mut().enumerate() {
            let f = dev
                .attest(t + 1_000 + d as u64, &u64::from(i).to_le_bytes())
                .expect("attest");
            frames.push((t + 3_000 + d as u64, f.frame().to_vec()));
        }
    }
    Corpus {
        inceptions,
        anchors,
        frames,
    }
}

/// Runs every measurement once per round, interleaved, so that the load of this shared
/// machine falls on all of them alike, and keeps each one's best round. A measurement
/// times its own hot loop (setup, such as checking 100 anchor signatures, is not a
/// per-frame cost) and returns (seconds, its result).
fn interleaved(ms: &mut [&mut dyn FnMut() -> (f64, u64)]) -> Vec<(f64, u64)> {
    let mut out = vec![(f64::MAX, 0); ms.len()];
    for _ in 0..ROUNDS {
        for (m, o) in ms.iter_mut().zip(&mut out) {
            let (secs, result) = m();
            *o = (o.0.min(secs), result);
        }
    }
    out
}

/// Times `f`.
fn timed(f: impl FnOnce() -> u64) -> (f64, u64) {
    let t = Instant::now();
    let r = f();
    (t.elapsed().as_secs_f64(), r)
}

fn main() {
    let c = corpus();
    let n = c.frames.len() as f64;
    assert!(c.frames.iter().all(|(_, f)| f.len() == 47));

    let mut verifier = || {
        let mut v = Verifier::new(Config::default());
        for (id, key, a) in &c.anchors {
            v.add_anchor(*id, key, a).expect("anchor");
        }
        timed(|| {
            let mut ok = 0u64;
            for (rx, f) in &c.frames {
                v.handle_frame(*rx, f).expect("frame");
                while let Some(e) = v.poll_event() {
                    ok +=
                        matches!(e, slope_node::compact::verifier::Event::Authenticated(_)) as u64;
                }
            }
            ok
        })
    };

    // The same frames through the one verifier (suite byte routing, anchors checked
    // against the suite-1 key history, results from poll_outcome).
    let mut one = || {
        let mut v = slope_node::verifier::Verifier::new(Default::default());
        for (inc, (_, _, a)) in c.inceptions.iter().zip(&c.anchors) {
            v.handle_attestation(START, inc, rx(START));
            v.handle_attestation(START, a, rx(START));
        }
        timed(|| {
            let mut ok = 0u64;
            for (t, f) in &c.frames {
                v.handle_attestation(*t, f, rx(*t));
                while let Some(o) = v.poll_outcome() {
                    ok += matches!(
                        o,
                        slope_node::verifier::Outcome::Compact(
                            slope_node::verifier::compact::Outcome::Event(
                                slope_node::compact::verifier::Event::Authenticated(_)
                            )
                        )
                    ) as u64;
                }
            }
            ok
        })
    };

    let device = DeviceId([5; 32]);
    let mut raw3 = || {
        timed(|| {
            let mut acc = 0u64;
            let mut k = ChainKey([1; 16]);
            for (i, (_, f)) in c.frames.iter().enumerate() {
                k = step(&device, 1, i as u32 + 2, black_box(&k));
                let mk = mac_key(&k);
                let tag = mac(&mk, black_box(&f[..39]));
                acc = acc.wrapping_add(u64::from(tag[0]));
            }
            acc
        })
    };
    let mut raw1 = || {
        timed(|| {
            let mut acc = 0u64;
            for (_, f) in &c.frames {
                acc = acc.wrapping_add(u64::from(blake3::hash(black_box(f)).as_bytes()[0]));
            }
            acc
        })
    };

    let mut decode = || {
        timed(|| {
            let mut acc = 0u64;
            for (_, f) in &c.frames {
                acc += slope_proto::compact::decode(black_box(f)).is_ok() as u64;
            }
            acc
        })
    };

    let r = interleaved(&mut [&mut verifier, &mut one, &mut raw3, &mut raw1, &mut decode]);
    let expected = (DEVICES as u64) * u64::from(INTERVALS - 2);
    assert_eq!((r[0].1, r[1].1), (expected, expected));
    let [verifier_s, one_s, raw3_s, raw1_s, decode_s] = [r[0].0, r[1].0, r[2].0, r[3].0, r[4].0];
    let rate = |s: f64| n / s;
    println!(
        "compact suite verification, {} frames of 47 B (best of {ROUNDS} interleaved rounds)",
        c.frames.len()
    );
    println!("| what | per second | ns per frame |");
    println!("|---|---|---|");
    for (what, s) in [
        ("compact verifier (handle_frame + poll_event)", verifier_s),
        ("one verifier (handle_attestation + poll_outcome)", one_s),
        ("raw blake3: step + MAC key + MAC per frame", raw3_s),
        ("raw blake3: one hash of each 47 B frame", raw1_s),
        ("decode only (compact::decode)", decode_s),
    ] {
        println!("| {what} | {:.0} | {:.0} |", rate(s), s / n * 1e9);
    }
    let goal = |s: f64| if rate(s) >= 1e6 { "met" } else { "NOT met" };
    println!(
        "raw 3-hash minimum / compact verifier: {:.2} (goal ≥ 1,000,000/s: {}); / one verifier: {:.2} ({})",
        raw3_s / verifier_s,
        goal(verifier_s),
        raw3_s / one_s,
        goal(one_s)
    );
    decisions(&c);
}

/// A fresh engine that knows every device of `c` (inceptions decided, not timed).
fn engine(c: &Corpus, inceptions: &[VerifiedAttestation]) -> Engine<Memory> {
    let genesis = Genesis {
        author: SigningKey::from_bytes(&[200; 32])
            .verifying_key()
            .to_bytes(),
        operators: vec![],
        local: Some(Local {
            zone: Zone(1),
            position: None,
        }),
        policy: Policy::default(),
    };
    let mut e = Engine::new(genesis, Memory::new(1 << 30), START).expect("engine");
    for a in inceptions {
        e.handle_attestation(START, a, &[])
            .expect("inception decided");
    }
    assert_eq!(e.devices(), c.anchors.len());
    e
}

/// The receiving radio's observation at `t` (an SF12 reception).
fn rx(t: u64) -> Observation {
    Observation {
        rssi_dbm: -100,
        snr_qdb: 20,
        freq_hz: 868_100_000,
        foff_hz: None,
        sf: 12,
        time_ms: t,
    }
}

fn decisions(c: &Corpus) {
    // The verified inputs, made once by the real verifier.
    let mut v = slope_node::verifier::Verifier::new(Default::default());
    let mut inceptions = Vec::new();
    for (inc, (_, _, a)) in c.inceptions.iter().zip(&c.anchors) {
        match v.handle_attestation(START, inc, rx(START)) {
            slope_node::verifier::Outcome::Extended(att) => inceptions.push(att),
            o => panic!("inception: {o:?}"),
        }
        v.handle_attestation(START, a, rx(START));
    }
    let mut compact = Vec::new();
    for (t, f) in &c.frames {
        v.handle_attestation(*t, f, rx(*t));
        while let Some(o) = v.poll_outcome() {
            if let slope_node::verifier::Outcome::Compact(
                slope_node::verifier::compact::Outcome::Event(
                    slope_node::compact::verifier::Event::Authenticated(a),
                ),
            ) = o
            {
                compact.push((*t, a));
            }
        }
    }
    // Suite-1 events for the same devices at the same times (one signed pool).
    let key = SigningKey::from_bytes(&[1; 32]);
    let pool: Vec<Event> = (0..256u32)
        .map(|i| {
            let body = Interaction {
                device: c.anchors[0].0.short(),
                seq: 1 + i,
                prev: LinkDigest([i as u8; 16]),
                epoch: 0,
                boot: 1,
                behaviour: [1, 2, 3, 4],
                heard: heapless::Vec::new(),
                payload: heapless::Vec::from_slice(&[0x42; 8]).unwrap_or_default(),
            };
            Event::Interaction(Signed::sign(body, &c.anchors[0].0, &key).expect("sign"))
        })
        .collect();
    let suite1: Vec<(u64, VerifiedAttestation)> = compact
        .iter()
        .enumerate()
        .map(|(k, (t, a))| {
            let event = pool[k % pool.len()].clone();
            let digest = event.digest(a.device());
            let att = VerifiedAttestation::assume_verified(
                *a.device(),
                event,
                digest,
                rx(*t),
                *t,
                0,
                true,
            );
            (*t, att)
        })
        .collect();
    let n = compact.len() as f64;

    // One round: a fresh engine, then every decision timed.
    let round = |decide: &dyn Fn(&mut Engine<Memory>, usize)| {
        let mut e = engine(c, &inceptions);
        timed(|| {
            for k in 0..compact.len() {
                decide(&mut e, k);
            }
            compact.len() as u64
        })
    };
    let mut compact_run = || {
        round(&|e, k| {
            let (t, a) = &compact[k];
            e.handle_compact(*t, a, &[]).expect("decision");
        })
    };
    let mut suite1_run = || {
        round(&|e, k| {
            let (t, a) = &suite1[k];
            e.handle_attestation(*t, a, &[]).expect("decision");
        })
    };
    let msg = [9u8; 32];
    let sig = slope_proto::crypto::sign(&key, &msg);
    let vk = key.verifying_key();
    let mut ed = || {
        timed(|| {
            let mut ok = 0u64;
            for _ in 0..2_000 {
                ok += slope_proto::crypto::verify(&vk, black_box(&msg), &sig).is_ok() as u64;
            }
            ok
        })
    };
    let r = interleaved(&mut [&mut compact_run, &mut suite1_run, &mut ed]);
    assert_eq!((r[0].1, r[1].1, r[2].1), (n as u64, n as u64, 2_000));
    println!();
    println!(
        "trust decisions, {} devices, {} decisions per round, no receipts (best of {ROUNDS} interleaved rounds)",
        c.anchors.len(),
        compact.len()
    );
    println!("| what | per second | ns per decision |");
    println!("|---|---|---|");
    for (what, s, k) in [
        ("Engine::handle_compact (suite 2)", r[0].0, n),
        (
            "Engine::handle_attestation (suite 1, same devices)",
            r[1].0,
            n,
        ),
        ("reference: ed25519 verify_strict", r[2].0, 2_000.0),
    ] {
        println!("| {what} | {:.0} | {:.0} |", k / s, s / k * 1e9);
    }
}
