//! Trust engine benchmark: every row runs in one registry of one million devices.
//!
//! Prints decisions per second per core (one thread) and bytes of memory per tracked
//! device — measured with a counting global allocator, not estimated — next to
//! references measured in the same run: one ed25519 strict verification and blake3 of
//! 100 bytes. Run with `cargo bench -p slope-node --bench trust`.
//!
//! Attestations are built with `VerifiedAttestation::assume_verified` (feature
//! `bench-internals`): signing and verifying a million events would measure ed25519,
//! which is the reference row, not the trust engine. Events come from a pool of really
//! signed frames. Receipts are really signed and really verified (`verify_receipt`)
//! before timing. Lineage records are encoded and hashed as in production, into a store
//! that counts bytes and discards them (a durable store's I/O is not the engine's cost).
//!
//! Timing: decisions are timed in blocks; a row's figure is the median block (the
//! machine is shared, so a preempted block is an outlier, not the engine's cost), and
//! the mean over all blocks is printed beside it. The corroborated rows use a sample of
//! devices spread over the registry, and the caches are flushed (64 MiB written)
//! before each of their rounds, so their records are as cold as in the full-registry
//! rows. `SLOPE_TRUST_DEVICES`, `SLOPE_TRUST_SAMPLE` and `SLOPE_TRUST_ROUNDS` shrink the
//! run (for a profiler); the defaults are the documented figures.
//!
//! Receipts (printed first): receipts verified per second one by one
//! (`Engine::verify_receipt`, decode included) against batched receipts of 64 and 256
//! entries (`Engine::verify_receipt_batch`, one signature per batch, decode included),
//! and the witness's signing cost per receipt, beside the ed25519 reference of the same
//! run. `SLOPE_TRUST_ONLY=receipts` stops after that table.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock; the library never does

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use ed25519_dalek::SigningKey;
use slope_node::lineage::{Genesis, Local, Storage, StorageError};
use slope_node::proto::batch::Entry;
use slope_node::proto::limits::MAX_RECEIPT_BATCH;
use slope_node::proto::{
    DeviceId, Digest, Event, Interaction, LinkDigest, Observation, Receipt, ReceiptBatch, Signed,
    crypto, sample,
};
use slope_node::trust::device::Hot;
use slope_node::trust::operator::{self, Action};
use slope_node::trust::{Admission, Engine, Policy, VerifiedReceipt, Zone};
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

const POOL: usize = 256;
const BLOCK: usize = 256;
const CORROBORATED_BLOCK: usize = 64;
const T0: u64 = 1_795_000_000_000;
const INTERVAL: u64 = 900_000;
/// Rounds of the full registry (first contact, then steady state), local radio only.
const LOCAL_ROUNDS: u32 = 3;

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

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

fn now(round: u32) -> u64 {
    T0 + u64::from(round) * INTERVAL
}

fn attestation(pool: &[Event], i: u32, round: u32) -> VerifiedAttestation {
    let event = pool[(i as usize + round as usize) % POOL].clone();
    let id = device_id(i);
    let digest = event.digest(&id);
    VerifiedAttestation::assume_verified(id, event, digest, rx(i, now(round)), now(round), 0, true)
}

/// Signs and verifies one receipt per witness for `att`.
fn receipts(
    e: &Engine<Discard>,
    witnesses: &[SigningKey],
    att: &VerifiedAttestation,
    i: u32,
    round: u32,
) -> Vec<VerifiedReceipt> {
    witnesses
        .iter()
        .map(|k| {
            let body = Receipt {
                witness: crypto::witness_id(k.verifying_key().as_bytes()),
                device: att.device().short(),
                seq: att.seq(),
                event: att.digest().link(),
                observed: rx(i + 3, now(round) + 40),
            };
            e.verify_receipt(&Signed::witness(body, k).expect("receipt"))
                .expect("verifies")
        })
        .collect()
}

fn engine(policy: Policy, witnesses: &[SigningKey]) -> Engine<Discard> {
    let genesis = Genesis {
        author: sample::key(200).verifying_key().to_bytes(),
        operators: vec![sample::key(201).verifying_key().to_bytes()],
        local: Some(Local {
            zone: Zone(1),
            position: None,
        }),
        policy,
    };
    let mut e = Engine::new(genesis, Discard::default(), T0).expect("engine");
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
    e
}

/// Nanoseconds per call of `f`, over `n` calls.
fn per_call(n: u32, mut f: impl FnMut(u32)) -> f64 {
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

/// Timed blocks of one row: (nanoseconds, decisions, full-scope decisions) per block.
#[derive(Default)]
struct Row {
    blocks: Vec<(u128, usize, usize)>,
    full: u64,
    decisions: u64,
}

impl Row {
    fn median_ns(&self) -> f64 {
        let mut v: Vec<f64> = self
            .blocks
            .iter()
            .map(|&(ns, n, _)| ns as f64 / n as f64)
            .collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }
    fn mean_ns(&self) -> f64 {
        let ns: u128 = self.blocks.iter().map(|b| b.0).sum();
        let n: usize = self.blocks.iter().map(|b| b.1).sum();
        ns as f64 / n as f64
    }
    /// Times `items` in blocks of `block`.
    fn run<T>(
        &mut self,
        items: &[T],
        block: usize,
        mut f: impl FnMut(&T) -> slope_node::trust::Decision,
    ) {
        for chunk in items.chunks(block) {
            let mut full = 0;
            let t = Instant::now();
            for it in chunk {
                let d = f(it);
                full += usize::from(d.admission == Admission::Full);
                black_box(d);
            }
            self.blocks
                .push((t.elapsed().as_nanos(), chunk.len(), full));
            self.decisions += chunk.len() as u64;
            self.full += full as u64;
        }
    }
    fn line(&self, label: &str) -> String {
        let m = self.median_ns();
        format!(
            "| {label} | {m:.0} ns ({:.0}/s); mean {:.0} ns | {} of {} |",
            1e9 / m,
            self.mean_ns(),
            self.full,
            self.decisions
        )
    }
}

/// The median over `reps` repetitions of nanoseconds per item of `f`, which handles
/// `items` items per call.
fn median_per_item(reps: usize, items: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos() as f64 / items as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Receipt entries for 256 distinct events, in batch order.
fn receipt_entries() -> Vec<Entry> {
    let mut v: Vec<Entry> = (0..256u32)
        .map(|i| Entry {
            device: device_id(i).short(),
            seq: 1_000 + i,
            event: LinkDigest(
                *blake3::hash(&i.to_be_bytes())
                    .as_bytes()
                    .first_chunk()
                    .expect("16"),
            ),
            observed: rx(i, T0 + u64::from(i)),
        })
        .collect();
    v.sort_by_key(Entry::order_key);
    v
}

/// The receipts table: one-by-one against batched verification and signing.
fn receipt_rows() {
    const RECEIPTS: usize = 1_024;
    const REPS: usize = 15;
    // The reference, timed the same way as the rows (median of repetitions).
    let key = sample::key(7);
    let msg = [9u8; 32];
    let sig = crypto::sign(&key, &msg);
    let vk = key.verifying_key();
    // One signature per receipt: short repetitions (SHORT receipts), many of them, so
    // that a preempted repetition is an outlier rather than the median.
    const SHORT: usize = 16;
    const SHORT_REPS: usize = 64;
    let ed = median_per_item(SHORT_REPS, SHORT, || {
        for _ in 0..SHORT {
            black_box(crypto::verify(&vk, black_box(&msg), &sig)).expect("verifies");
        }
    });
    let witness = sample::key(102);
    let e = engine(Policy::default(), std::slice::from_ref(&witness));
    let id = crypto::witness_id(witness.verifying_key().as_bytes());
    let entries = receipt_entries();
    let singles: Vec<Vec<u8>> = (0..RECEIPTS)
        .map(|i| {
            let body = entries[i % entries.len()].receipt(id);
            Signed::witness(body, &witness)
                .expect("receipt")
                .frame()
                .to_vec()
        })
        .collect();
    let batches = |n: usize| -> Vec<Vec<u8>> {
        (0..RECEIPTS / n)
            .map(|b| {
                let mut out = vec![0u8; MAX_RECEIPT_BATCH];
                let len = ReceiptBatch::sign_into(
                    &witness,
                    T0 + b as u64,
                    entries[..n].iter().copied(),
                    &mut out,
                )
                .expect("batch");
                out.truncate(len);
                out
            })
            .collect()
    };
    let (b64, b256) = (batches(64), batches(256));

    let mut at = 0;
    let one = median_per_item(SHORT_REPS, SHORT, || {
        for f in &singles[at..at + SHORT] {
            let r = Signed::<Receipt>::decode(f).expect("decodes");
            black_box(e.verify_receipt(&r).expect("verifies"));
        }
        at = (at + SHORT) % RECEIPTS;
    });
    let batched = |frames: &[Vec<u8>]| {
        median_per_item(REPS, RECEIPTS, || {
            for f in frames {
                let b = ReceiptBatch::decode(f).expect("decodes");
                black_box(e.verify_receipt_batch(&b).expect("verifies"));
            }
        })
    };
    let (v64, v256) = (batched(&b64), batched(&b256));

    let mut at = 0;
    let sign_one = median_per_item(SHORT_REPS, SHORT, || {
        for en in &entries[at..at + SHORT] {
            black_box(Signed::witness(en.receipt(id), &witness).expect("receipt"));
        }
        at = (at + SHORT) % entries.len();
    });
    let mut out = vec![0u8; MAX_RECEIPT_BATCH];
    let mut sign_batch = |n: usize| {
        median_per_item(REPS, 256, || {
            for chunk in entries.chunks(n) {
                black_box(
                    ReceiptBatch::sign_into(&witness, T0, chunk.iter().copied(), &mut out)
                        .expect("batch"),
                );
            }
        })
    };
    let (s64, s256) = (sign_batch(64), sign_batch(256));

    let (lineage_single, lineage_batched) = lineage_per_decision();

    let rate = |ns: f64| 1e9 / ns;
    println!(
        "witness receipts, one thread (median of {SHORT_REPS} repetitions of {SHORT} receipts one by one, of {REPS} repetitions of {RECEIPTS} receipts batched)"
    );
    println!("| measure | per receipt | receipts/s | vs ed25519 verify |");
    println!("|---|---|---|---|");
    for (label, ns) in [
        ("reference: ed25519 verify_strict (one signature)", ed),
        ("verify one by one (decode + verify_receipt)", one),
        ("verify batches of 64 (decode + verify_receipt_batch)", v64),
        (
            "verify batches of 256 (decode + verify_receipt_batch)",
            v256,
        ),
        ("sign one receipt (Signed::witness)", sign_one),
        ("sign batches of 64 (ReceiptBatch::sign_into)", s64),
        ("sign batches of 256 (ReceiptBatch::sign_into)", s256),
    ] {
        println!(
            "| {label} | {ns:.0} ns | {:.0} | {:.2}x |",
            rate(ns),
            ed / ns
        );
    }
    println!("| lineage per decision, 2 single receipts | {lineage_single:.0} B | | |");
    println!(
        "| lineage per decision, 2 batched receipts (batches of 256) | {lineage_batched:.0} B | | |"
    );
    println!();
}

/// Lineage bytes per decision for 256 devices' first attestations with a receipt from
/// each of two witnesses: single receipts, then entries of one 256-entry batch per
/// witness (recorded once, referenced by every decision).
fn lineage_per_decision() -> (f64, f64) {
    let witnesses = [sample::key(102), sample::key(103)];
    let pool = pool();
    let atts: Vec<_> = (0..256).map(|i| attestation(&pool, i, 0)).collect();
    let mut single = engine(Policy::default(), &witnesses);
    let base = single.lineage().storage().bytes;
    for (i, att) in atts.iter().enumerate() {
        let rs = receipts(&single, &witnesses, att, i as u32, 0);
        single
            .handle_attestation(now(0), att, &rs)
            .expect("decision");
    }
    let per_single = (single.lineage().storage().bytes - base) as f64 / atts.len() as f64;

    let mut batched = engine(Policy::default(), &witnesses);
    let base = batched.lineage().storage().bytes;
    let mut out = vec![0u8; MAX_RECEIPT_BATCH];
    let mut verified: Vec<VerifiedReceipt> = Vec::new();
    for k in &witnesses {
        let mut entries: Vec<Entry> = atts
            .iter()
            .enumerate()
            .map(|(i, att)| Entry {
                device: att.device().short(),
                seq: att.seq(),
                event: att.digest().link(),
                observed: rx(i as u32 + 3, now(0) + 40),
            })
            .collect();
        entries.sort_by_key(Entry::order_key);
        let len = ReceiptBatch::sign_into(k, now(0), entries, &mut out).expect("batch");
        let b = ReceiptBatch::decode(&out[..len]).expect("decodes");
        verified.extend(batched.verify_receipt_batch(&b).expect("verifies"));
    }
    for att in &atts {
        let rs: Vec<_> = verified.iter().filter(|r| r.names(att)).cloned().collect();
        batched
            .handle_attestation(now(0), att, &rs)
            .expect("decision");
    }
    let per_batched = (batched.lineage().storage().bytes - base) as f64 / atts.len() as f64;
    (per_single, per_batched)
}

fn main() {
    let devices = env("SLOPE_TRUST_DEVICES", 1_000_000);
    let sample_n = env("SLOPE_TRUST_SAMPLE", 1_024).min(devices);
    let rounds = env("SLOPE_TRUST_ROUNDS", 32);

    // References, same run.
    let key = sample::key(7);
    let msg = [9u8; 32];
    let sig = crypto::sign(&key, &msg);
    let vk = key.verifying_key();
    let ed = per_call(20_000, |_| {
        black_box(crypto::verify(&vk, black_box(&msg), &sig)).expect("verifies");
    });
    receipt_rows();
    if std::env::var("SLOPE_TRUST_ONLY").is_ok_and(|v| v == "receipts") {
        return;
    }
    let data = [7u8; 100];
    let b3 = per_call(2_000_000, |i| {
        let mut d = data;
        d[0] = i as u8;
        black_box(blake3::hash(black_box(&d)));
    });

    // The registry: every device, the gateway's own radio as the only witness.
    let pool = pool();
    let witnesses = [sample::key(102), sample::key(103)];
    let mut policy = Policy::default();
    policy.bounds.max_devices = devices;
    policy.bounds.max_newcomers = devices;
    let mut e = engine(policy, &witnesses);
    let before = LIVE.load(Ordering::Relaxed);
    let mut first = Row::default();
    let mut steady = Row::default();
    let mut batch = Vec::with_capacity(8_192);
    for round in 0..LOCAL_ROUNDS {
        let mut start = 0u32;
        while start < devices {
            let end = (start + 8_192).min(devices);
            // Spread the batch over the registry (not sequential keys).
            batch.clear();
            batch.extend((start..end).map(|k| {
                let i = (u64::from(k) * 7_919 % u64::from(devices)) as u32;
                attestation(&pool, i, round)
            }));
            let row = if round == 0 { &mut first } else { &mut steady };
            row.run(&batch, BLOCK, |att| {
                e.handle_attestation(now(round), att, &[])
                    .expect("decision")
            });
            start = end;
        }
    }
    assert_eq!(e.devices(), devices as usize);
    drop(batch);
    let bytes = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    let per_device = bytes as f64 / f64::from(devices);
    let (len0, bytes0) = (e.lineage().storage().len, e.lineage().storage().bytes);
    let local_lineage = bytes0 as f64 / f64::from(LOCAL_ROUNDS * devices);

    // Corroborated: a sample spread over the registry, two registered witnesses each
    // sending a receipt, for `rounds` more rounds (the sample climbs to full scope).
    let stride = devices / sample_n.max(1);
    let sampled: Vec<u32> = (0..sample_n).map(|k| k * stride).collect();
    let mut corroborated = Row::default();
    let mut full_only = Row::default();
    let mut flush = vec![0u8; 64 << 20];
    for r in 0..rounds {
        let round = LOCAL_ROUNDS + r;
        let items: Vec<_> = sampled
            .iter()
            .map(|&i| {
                let att = attestation(&pool, i, round);
                let rs = receipts(&e, &witnesses, &att, i, round);
                (att, rs)
            })
            .collect();
        for (k, b) in flush.iter_mut().enumerate() {
            *b = b.wrapping_add(k as u8);
        }
        black_box(&flush);
        let mut block = Row::default();
        block.run(&items, CORROBORATED_BLOCK, |(att, rs)| {
            e.handle_attestation(now(round), att, rs).expect("decision")
        });
        // Blocks in which every decision admitted full scope.
        for b in block.blocks.iter().filter(|b| b.1 == b.2) {
            full_only.blocks.push(*b);
            full_only.decisions += b.1 as u64;
            full_only.full += b.1 as u64;
        }
        corroborated.blocks.extend(block.blocks);
        corroborated.full += block.full;
        corroborated.decisions += block.decisions;
    }
    let s = e.lineage().storage();
    let corroborated_lineage = (s.bytes - bytes0) as f64 / (corroborated.decisions.max(1)) as f64;
    let records = (s.len - len0) as f64 / (corroborated.decisions.max(1)) as f64;

    let rate = |ns: f64| 1e9 / ns;
    println!(
        "trust engine, {devices} devices, one thread; corroborated: {sample_n} devices x {rounds} rounds"
    );
    println!("| measure | value | full-scope decisions |");
    println!("|---|---|---|");
    println!(
        "| reference: ed25519 verify_strict | {ed:.0} ns ({:.0}/s) | |",
        rate(ed)
    );
    println!(
        "| reference: blake3, 100 B | {b3:.0} ns ({:.0}/s) | |",
        rate(b3)
    );
    println!(
        "{}",
        first.line("first contact (registry insert), local radio only")
    );
    println!("{}", steady.line("steady state, local radio only"));
    println!(
        "{}",
        corroborated.line("2 verified receipts (sample, all rounds)")
    );
    println!("{}", full_only.line("2 verified receipts, full scope only"));
    println!(
        "| hot record (size_of::<Hot>) | {} B | |",
        std::mem::size_of::<Hot>()
    );
    println!("| memory per tracked device (allocator) | {per_device:.1} B | |");
    println!("| lineage per decision, local radio only | {local_lineage:.0} B | |");
    println!(
        "| lineage per decision, 2 receipts | {corroborated_lineage:.0} B in {records:.1} records | |"
    );
}
