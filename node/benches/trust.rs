//! Trust engine benchmark: a registry of one million devices in memory.
//!
//! Prints decisions per second per core (one thread) and bytes of memory per tracked
//! device — measured with a counting global allocator, not estimated — next to
//! references measured in the same run: one ed25519 strict verification and blake3 of
//! 100 bytes. Run with `cargo bench -p slope-node --bench trust`.
//!
//! Attestations are built with `VerifiedAttestation::assume_verified` (feature
//! `bench-internals`): signing and verifying a million events would measure ed25519,
//! which is the reference column, not the trust engine. Events come from a pool of
//! really signed frames; receipts in the corroborated run are really verified (before
//! timing). Lineage records are encoded and hashed as in production, into a store that
//! counts bytes and discards them (a durable store's I/O is not the engine's cost).
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock; the library never does

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use slope_node::lineage::{Genesis, Local, Storage, StorageError};
use slope_node::proto::{
    DeviceId, Digest, Event, Interaction, LinkDigest, Observation, Receipt, Signed, crypto, sample,
};
use slope_node::trust::device::Hot;
use slope_node::trust::operator::{self, Action};
use slope_node::trust::{Admission, Engine, Policy, Zone};
use slope_node::verifier::VerifiedAttestation;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Counts lineage bytes, keeps only the head.
#[derive(Default)]
struct Discard {
    len: u64,
    bytes: u64,
    head: Option<Digest>,
}

impl Storage for Discard {
    fn append(&mut self, _: u64, d: &Digest, r: &[u8]) -> Result<(), StorageError> {
        self.len += 1;
        self.bytes += r.len() as u64;
        self.head = Some(*d);
        Ok(())
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn head(&self) -> Option<Digest> {
        self.head
    }
    fn read(&self, _: u64, _: &mut Vec<u8>) -> Result<bool, StorageError> {
        Ok(false)
    }
}

const DEVICES: u32 = 1_000_000;
const POOL: usize = 256;
const BATCH: u32 = 8_192;
const T0: u64 = 1_795_000_000_000;
const INTERVAL: u64 = 900_000;

fn device_id(i: u32) -> DeviceId {
    DeviceId(*blake3::hash(&i.to_le_bytes()).as_bytes())
}

fn pool() -> Vec<Event> {
    let dev = sample::inception(1).device_id();
    (0..POOL as u32)
        .map(|i| {
            let body = Interaction {
                device: dev.short(),
                seq: 1 + i,
                prev: LinkDigest([i as u8; 16]),
                epoch: 0,
                boot: 1,
                behaviour: [1, 2, 3, 4],
                heard: heapless::Vec::new(),
                payload: heapless::Vec::from_slice(&[0x42; 8]).unwrap_or_default(),
            };
            Event::Interaction(Signed::sign(body, &dev, &sample::key(1)).expect("sign"))
        })
        .collect()
}

fn rx(i: u32, now: u64) -> Observation {
    Observation {
        rssi_dbm: -90 - (i % 20) as i16,
        snr_qdb: -20 - (i % 7) as i16,
        freq_hz: 868_100_000,
        foff_hz: Some(-1_200 - (i % 50) as i32),
        sf: 9,
        time_ms: now,
    }
}

fn attestation(pool: &[Event], i: u32, round: u32) -> VerifiedAttestation {
    let event = pool[(i as usize + round as usize) % POOL].clone();
    let id = device_id(i);
    let digest = event.digest(&id);
    let now = T0 + u64::from(round) * INTERVAL;
    VerifiedAttestation::assume_verified(id, event, digest, rx(i, now), now, 0, true)
}

fn engine(policy: Policy) -> Engine<Discard> {
    let genesis = Genesis {
        author: sample::key(200).verifying_key().to_bytes(),
        operators: vec![sample::key(201).verifying_key().to_bytes()],
        local: Some(Local {
            zone: Zone(1),
            position: None,
        }),
        policy,
    };
    Engine::new(genesis, Discard::default(), T0).expect("engine")
}

/// Nanoseconds per call of `f`, over `n` calls.
fn per_call(n: u32, mut f: impl FnMut(u32)) -> f64 {
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() {
    // References, same run.
    let key = sample::key(7);
    let msg = [9u8; 32];
    let sig = crypto::sign(&key, &msg);
    let vk = key.verifying_key();
    let ed = per_call(20_000, |_| {
        black_box(crypto::verify(&vk, black_box(&msg), &sig)).expect("verifies");
    });
    let data = [7u8; 100];
    let b3 = per_call(2_000_000, |i| {
        let mut d = data;
        d[0] = i as u8;
        black_box(blake3::hash(black_box(&d)));
    });

    // One million devices, the gateway's own radio as the only witness.
    let pool = pool();
    let mut policy = Policy::default();
    policy.bounds.max_devices = DEVICES;
    policy.bounds.max_newcomers = DEVICES;
    let mut e = engine(policy.clone());
    let before = LIVE.load(Ordering::Relaxed);
    let mut timed_ns = [0f64; 3];
    let mut full = 0u32;
    for round in 0..3u32 {
        let mut start = 0u32;
        while start < DEVICES {
            let end = (start + BATCH).min(DEVICES);
            // Spread the batch over the registry (not sequential keys).
            let batch: Vec<_> = (start..end)
                .map(|k| {
                    attestation(
                        &pool,
                        (u64::from(k) * 7_919 % u64::from(DEVICES)) as u32,
                        round,
                    )
                })
                .collect();
            let now = T0 + u64::from(round) * INTERVAL;
            let t = Instant::now();
            for att in &batch {
                let d = e.handle_attestation(now, att, &[]).expect("decision");
                full += u32::from(d.admission == Admission::Full);
                black_box(d);
            }
            timed_ns[round as usize] += t.elapsed().as_nanos() as f64;
            start = end;
        }
    }
    assert_eq!(e.devices(), DEVICES as usize);
    let bytes = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    let per_device = bytes as f64 / f64::from(DEVICES);
    let lineage_bytes = e.lineage().storage().bytes as f64 / (3.0 * f64::from(DEVICES));
    drop(e);

    // Corroborated: 10,000 devices, two registered witnesses each sending a receipt
    // (receipts verified before timing).
    let mut e = engine(policy);
    let witnesses = [sample::key(102), sample::key(103)];
    for (z, k) in witnesses.iter().enumerate() {
        let a = operator::Signed::sign(
            Action::RegisterWitness {
                key: k.verifying_key().to_bytes(),
                zone: Zone(2 + z as u16),
                position: None,
            },
            heapless::String::try_from("bench").expect("short"),
            T0,
            &sample::key(201),
        )
        .expect("sign");
        e.handle_operator(T0, &a).expect("register");
    }
    let n = 10_000u32;
    let mut corroborated_ns = 0f64;
    for round in 0..3u32 {
        let now = T0 + u64::from(round) * INTERVAL;
        let items: Vec<_> = (0..n)
            .map(|i| {
                let att = attestation(&pool, i, round);
                let rs: Vec<_> = witnesses
                    .iter()
                    .map(|k| {
                        let body = Receipt {
                            witness: crypto::witness_id(k.verifying_key().as_bytes()),
                            device: att.device().short(),
                            seq: att.seq(),
                            event: att.digest().link(),
                            observed: rx(i, now),
                        };
                        e.verify_receipt(&Signed::witness(body, k).expect("receipt"))
                            .expect("verifies")
                    })
                    .collect();
                (att, rs)
            })
            .collect();
        let t = Instant::now();
        for (att, rs) in &items {
            black_box(e.handle_attestation(now, att, rs).expect("decision"));
        }
        corroborated_ns += t.elapsed().as_nanos() as f64;
    }
    let corroborated = corroborated_ns / (3.0 * f64::from(n));

    let rate = |ns: f64| 1e9 / ns;
    let first = timed_ns[0] / f64::from(DEVICES);
    let steady = (timed_ns[1] + timed_ns[2]) / (2.0 * f64::from(DEVICES));
    println!("trust engine, {DEVICES} devices, one thread");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| reference: ed25519 verify_strict | {ed:.0} ns ({:.0}/s) |",
        rate(ed)
    );
    println!(
        "| reference: blake3, 100 B | {b3:.0} ns ({:.0}/s) |",
        rate(b3)
    );
    println!(
        "| first-contact decision (registry insert) | {first:.0} ns ({:.0}/s) |",
        rate(first)
    );
    println!(
        "| steady-state decision, 1M registry, local radio only | {steady:.0} ns ({:.0}/s) |",
        rate(steady)
    );
    println!(
        "| decision with 2 verified receipts, 10k registry | {corroborated:.0} ns ({:.0}/s) |",
        rate(corroborated)
    );
    println!(
        "| hot record (size_of::<Hot>) | {} B |",
        std::mem::size_of::<Hot>()
    );
    println!("| memory per tracked device (allocator, 1M registry) | {per_device:.1} B |");
    println!("| lineage written per decision (3 records + grant) | {lineage_bytes:.0} B |");
    println!("| full-scope decisions in the run | {full} |");
}
