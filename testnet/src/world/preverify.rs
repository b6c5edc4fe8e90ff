//! The second core: a worker thread that checks the signature of every frame as it goes
//! on the air and files the result in the shared [`Memo`], so that when the first
//! gateway flushes (500 ms of simulated time later, thousands of events later in real
//! time) its verifier finds the check done.
//!
//! Why this cannot change a trace: the memo holds the pure function (key, message,
//! signature) → valid, and the verifier asks it for exactly that triple; whether the
//! worker or the gateway computed an entry, or the worker's queue was full and it never
//! saw the frame, only the work moves. The worker never touches the world, its RNG or
//! its event queue. `tests/determinism.rs` compares the digest of one and two threads.
//!
//! It also checks each receipt batch's one signature when the batch is sealed, under the
//! sealing gateway's key, with the check a receiving engine makes
//! (`ReceiptBatch::verify_witness`: the batch names that key's witness id, and the
//! signature verifies strictly), filed under the same (key, message, signature): a
//! receiver whose registry holds that key for the witness finds the answer.
//!
//! The worker learns keys the way a verifier does, from the frames it sees: an
//! inception's key, a rotation's new key (under the epoch it starts); an interaction is
//! checked with the key its epoch names. A wrong belief (a forged rotation) costs a
//! check nobody asks for, never a wrong answer. Batches of up to [`BATCH`] frames are
//! checked with one `verify_batch` (what `Verifier::handle_batch` does), one by one
//! (`crypto::verify`, strict) when a batch fails.
//!
//! And it signs devices' attestations ahead of their wake-ups: when a device has
//! attested, the loop asks its engine for the signing its next attestation will need
//! (`Slope::sign_ahead`: the key and the message, for the next wake-up's time and
//! payload) and hands it here; the worker signs (`SignJob::sign`, node code) when no
//! frame waits for a check, and the device adopts the signature at its wake-up
//! (`Slope::attest_ahead`) only when it is for exactly the message and key it signs
//! then — else, or when the worker has not got to it, the device signs itself. Ed25519
//! signatures are deterministic: the frames and the flash are the same bytes either
//! way, only where the signing ran moves (`tests/determinism.rs` compares 1, 2 and 3
//! threads; node's `tests/device_sign_ahead.rs` the bytes). A rotation, an inception,
//! the first wake-up after a power-on and a wake-up the attack moved are signed at the
//! wake-up.
//! The worker files each signature it makes in the memo as valid, under exactly the
//! (public key, message, signature) it signed: `SignJob::sign` is ed25519-dalek's
//! signing with the job's secret key, and the job's public key is derived from that
//! same key, so the triple is valid by construction. A gateway's verifier asks the memo
//! for the triple it reads from the frame; any difference (another key, another
//! message, altered bytes) is another triple, a memo miss, checked for real. What this
//! skips is checking, 900,000 times a day, that Ed25519 signing works; it is audited:
//! one signature in `Params::audit_every` (every 16th by default; `--audit-every 1`
//! checks them all) is checked instead, with the gateways' check (`verify_batch` under
//! the job's public key, strict one by one when a batch fails), and the check's result,
//! not the construction's, goes to the memo. An audited signature that does not verify
//! fails the run ([`Stats::audit_failures`], `crate::Error::Audit`).
//!
//! The audited checks wait for batches of [`AHEAD_BATCH`] (dalek's batch verification
//! costs less per signature the larger the batch: Pippenger past 190 points), or until
//! the earliest wake-up among them is less than [`AHEAD_MARGIN_US`] of simulated time
//! away (the loop passes its clock with every submission; a small fleet never fills a
//! batch). A frame's own check stays in batches of up to [`BATCH`], taken before any
//! other work. The memo keeps about 50 minutes of a 10,000-device fleet's entries; an
//! audited result waits in it at most the margin plus the lateness of the device's
//! wake-up, a signature filed as made about one interval (a later wake-up is a miss: the
//! gateway checks it). A signing whose wake-up the loop has passed (a worker behind the
//! loop, on a loaded machine) is dropped: the device signed itself.
//!
//! The worker polls its queue (sleeping [`POLL`] when it is empty) rather than
//! blocking on it: a blocked receiver makes every send wake it (a futex call under a
//! mutex, 3 % of the event loop's time at 10,000 devices), a polling one costs the
//! sender an atomic store. The frames' first flush is at least hundreds of
//! milliseconds of simulated time (thousands of events) after they go on the air.
//!
//! Bounded: the queue holds [`QUEUE`] frames (a full queue drops the frame: the gateway
//! checks it itself), the key table [`KEYS`] devices (cleared when full), the signing
//! jobs waiting for an idle moment [`SIGNS`] (past it the oldest is signed at once).

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use ed25519_dalek::{Signature, VerifyingKey};
use slope_node::device::{Ahead, SignJob};
use slope_node::trust::PreparedBatch;
use slope_proto::{DeviceId, Event, ShortId, WitnessId, crypto};

use super::memo::{Memo, Triple};
use crate::metrics::thread_cpu_s;

/// Frames the worker checks with one batch verification at most.
pub const BATCH: usize = 64;
/// Frames waiting for the worker at most.
pub const QUEUE: usize = 16_384;
/// Devices whose keys the worker remembers at most.
pub const KEYS: usize = 1 << 17;
/// How long the worker sleeps when its queue is empty.
pub const POLL: std::time::Duration = std::time::Duration::from_micros(200);
/// Key epochs remembered per device (the newest).
const EPOCHS: usize = 4;
/// Devices' signatures waiting for an idle moment at most (past it the oldest is made
/// at once).
pub const SIGNS: usize = 16_384;
/// Signatures made ahead checked with one `verify_batch` at most (per signature on this
/// machine: 21.4 µs in batches of 64, 17.7 at 256, 17.0 at 512, 16.0 at 1,024).
pub const AHEAD_BATCH: usize = 1024;
/// Signatures made ahead are checked at the latest when the earliest wake-up among
/// them is this close (simulated µs) to the loop's clock.
pub const AHEAD_MARGIN_US: u64 = 120_000_000;

/// Nice value of the worker's thread (Linux). Its work is ahead of need (a frame's check
/// by ≥ 500 ms of simulated time, a signature by minutes); a tick worker's is not (the
/// loop waits for the tick's last job). With both on the second core at one priority,
/// the scheduler shares it evenly and a tick job may wait out the pre-verifier's slice
/// while the loop waits for it.
pub const NICE: i32 = 10;

/// Lowers the calling thread's priority to [`NICE`]: on Linux `setpriority` with a
/// thread id sets that thread's nice value alone. Elsewhere nothing (it would set the
/// whole process's). A refusal leaves the priority as it was (only timing moves).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE);
}

/// What the worker did (work, not outcomes).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Frames and receipt batches submitted, and those dropped because the queue was
    /// full.
    pub submitted: u64,
    pub dropped: u64,
    /// Signatures the worker checked (frames and batches).
    pub checked: u64,
    /// Devices' signatures the worker made ahead of their wake-ups.
    pub signed: u64,
    /// Of those, the ones checked (the audit) rather than filed valid as made, and the
    /// audited ones that did not verify (a broken signer: the run fails).
    pub audited: u64,
    pub audit_failures: u64,
    /// CPU seconds of the worker's thread.
    pub cpu_s: f64,
}

/// The worker's handle; without a worker (one thread) it does nothing.
/// What the worker is handed.
enum Work {
    /// A frame (envelope) that went on the air, and the loop's clock then (µs).
    Frame(Arc<[u8]>, u64),
    /// A receipt batch's signature, with the key that sealed it.
    Batch(Box<BatchCheck>),
    /// A device's next attestation to sign, where the signature goes, and when it is
    /// wanted.
    Sign(Box<Signing>),
}

/// A device's next signature to make ahead.
struct Signing {
    job: SignJob,
    slot: Arc<OnceLock<Ahead>>,
    /// The loop's clock at the submission, and the wake-up that needs the signature
    /// (simulated µs).
    now_us: u64,
    due_us: u64,
}

/// A receipt batch's one signature check.
struct BatchCheck {
    key: VerifyingKey,
    witness: WitnessId,
    message: [u8; 32],
    signature: [u8; 64],
}

pub struct PreVerifier {
    tx: Option<SyncSender<Work>>,
    worker: Option<JoinHandle<Stats>>,
    stats: Stats,
}

impl PreVerifier {
    /// A worker thread filling `memo` when `threads` > 1; nothing otherwise. It checks
    /// one in `audit_every` of the signatures it makes (0 or 1: every one).
    pub fn new(threads: usize, memo: &Memo, audit_every: u32) -> Self {
        if threads <= 1 {
            return Self {
                tx: None,
                worker: None,
                stats: Stats::default(),
            };
        }
        let (tx, rx) = sync_channel(QUEUE);
        let memo = memo.clone();
        let worker = std::thread::Builder::new()
            .name("slope-testnet-preverify".into())
            .spawn(move || {
                lower_priority();
                Worker {
                    audit_every: u64::from(audit_every),
                    ..Worker::default()
                }
                .run(&rx, &memo)
            })
            .ok();
        Self {
            tx: worker.as_ref().map(|_| tx),
            worker,
            stats: Stats::default(),
        }
    }

    /// Hands a frame (envelope) that just went on the air, at `now_us`, to the worker.
    pub fn submit(&mut self, envelope: &Arc<[u8]>, now_us: u64) {
        self.send(Work::Frame(envelope.clone(), now_us));
    }

    /// Hands a receipt batch just sealed with `key` to the worker, for its signature.
    pub fn submit_batch(&mut self, key: VerifyingKey, batch: &PreparedBatch) {
        self.send(Work::Batch(Box::new(BatchCheck {
            key,
            witness: batch.witness(),
            message: *batch.message(),
            signature: *batch.signature(),
        })));
    }

    /// Whether there is a worker to sign devices' attestations ahead.
    pub fn signs(&self) -> bool {
        self.tx.is_some()
    }

    /// Hands a device's next signature, for its wake-up at `due_us`, to the worker at
    /// `now_us`; where it will be, unless the queue was full (the device then signs at
    /// its wake-up).
    pub fn submit_sign(
        &mut self,
        job: SignJob,
        now_us: u64,
        due_us: u64,
    ) -> Option<Arc<OnceLock<Ahead>>> {
        let slot = Arc::new(OnceLock::new());
        self.send(Work::Sign(Box::new(Signing {
            job,
            slot: Arc::clone(&slot),
            now_us,
            due_us,
        })))
        .then_some(slot)
    }

    /// Queues `work`; whether the worker will get it.
    fn send(&mut self, work: Work) -> bool {
        let Some(tx) = &self.tx else { return false };
        self.stats.submitted += 1;
        match tx.try_send(work) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.stats.dropped += 1;
                false
            }
            Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped += 1;
                self.tx = None;
                false
            }
        }
    }

    /// Stops the worker and returns what it did.
    pub fn finish(&mut self) -> Stats {
        self.tx = None;
        if let Some(w) = self.worker.take() {
            let done = w.join().unwrap_or_default();
            self.stats.checked += done.checked;
            self.stats.signed += done.signed;
            self.stats.audited += done.audited;
            self.stats.audit_failures += done.audit_failures;
            self.stats.cpu_s += done.cpu_s;
        }
        self.stats
    }
}

impl Drop for PreVerifier {
    fn drop(&mut self) {
        self.finish();
    }
}

/// One frame ready for a check.
struct Job {
    key: VerifyingKey,
    message: [u8; 32],
    signature: [u8; 64],
}

#[derive(Default)]
struct Worker {
    shorts: HashMap<ShortId, DeviceId>,
    /// Newest key epochs of each device: (epoch, key).
    keys: HashMap<DeviceId, Vec<(u32, VerifyingKey)>>,
    /// The loop's clock in the newest submission that carried it (simulated µs).
    now_us: u64,
    /// The audited signatures made ahead, whose checks wait for a large batch, and the
    /// earliest wake-up among them.
    fresh: Vec<Job>,
    fresh_due_us: u64,
    /// One signature made ahead in this many is audited (0 or 1: all).
    audit_every: u64,
    checked: u64,
    signed: u64,
    audited: u64,
    audit_failures: u64,
}

impl Worker {
    fn run(mut self, rx: &Receiver<Work>, memo: &Memo) -> Stats {
        let cpu0 = thread_cpu_s();
        let mut jobs = Vec::with_capacity(BATCH);
        // Signing waits for the moments the checks leave: a frame's check is wanted at
        // its first flush (≤ 500 ms of simulated time), a signature at the device's
        // next wake-up (≈ 15 min).
        let mut signs: VecDeque<Box<Signing>> = VecDeque::new();
        self.fresh = Vec::with_capacity(AHEAD_BATCH);
        self.fresh_due_us = u64::MAX;
        loop {
            match rx.try_recv() {
                Ok(Work::Batch(b)) => {
                    let t = Triple::new(&b.key.to_bytes(), &b.message, &b.signature);
                    if !memo.contains(t) {
                        self.checked += 1;
                        let valid = b.witness == crypto::witness_id(b.key.as_bytes())
                            && crypto::verify(&b.key, &b.message, &b.signature).is_ok();
                        memo.put_many([(t, valid)]);
                    }
                }
                Ok(Work::Sign(s)) => {
                    self.now_us = self.now_us.max(s.now_us);
                    signs.push_back(s);
                    if signs.len() > SIGNS
                        && let Some(oldest) = signs.pop_front()
                        && oldest.due_us >= self.now_us
                    {
                        self.sign(*oldest, memo);
                        if self.fresh.len() >= AHEAD_BATCH {
                            self.check_fresh(memo);
                        }
                    }
                }
                Ok(Work::Frame(f, now_us)) => {
                    self.now_us = self.now_us.max(now_us);
                    jobs.extend(self.job(&f));
                    if jobs.len() >= BATCH {
                        self.check(&mut jobs, memo);
                    }
                }
                Err(TryRecvError::Empty) => {
                    if !jobs.is_empty() {
                        self.check(&mut jobs, memo);
                    } else if self.fresh_wanted(signs.is_empty()) {
                        self.check_fresh(memo);
                    } else if let Some(s) = signs.pop_front() {
                        // A wake-up already past signed itself: its signature made now
                        // would be work for nothing.
                        if s.due_us >= self.now_us {
                            self.sign(*s, memo);
                        }
                    } else {
                        std::thread::sleep(POLL);
                    }
                }
                Err(TryRecvError::Disconnected) => break,
            }
        }
        // Audited signatures still waiting: checked before the run's figures are read.
        if !self.fresh.is_empty() {
            self.check_fresh(memo);
        }
        let cpu_s = thread_cpu_s().zip(cpu0).map_or(0.0, |(b, a)| b - a);
        Stats {
            checked: self.checked,
            signed: self.signed,
            audited: self.audited,
            audit_failures: self.audit_failures,
            cpu_s,
            ..Stats::default()
        }
    }

    /// Makes a device's signature and files it where the device will look; files it
    /// in the memo as valid or, one in `audit_every`, queues its check in `fresh`.
    fn sign(&mut self, s: Signing, memo: &Memo) {
        let (key, message) = (s.job.verifying_key(), *s.job.message());
        let ahead = s.job.sign();
        let job = Job {
            key,
            message,
            signature: *ahead.signature(),
        };
        if self.signed % self.audit_every.max(1) == 0 {
            self.fresh.push(job);
            self.fresh_due_us = self.fresh_due_us.min(s.due_us);
        } else {
            let made = Triple::new(&job.key.to_bytes(), &job.message, &job.signature);
            memo.put_many([(made, true)]);
        }
        self.signed += 1;
        let _ = s.slot.set(ahead);
    }

    /// Whether the signatures made ahead waiting in `fresh` are to be checked now: a
    /// full batch, or a wake-up that needs one of them is near and the batch is as
    /// large as a frames' batch or no signing waits (a worker that lags behind the
    /// loop keeps batches of [`BATCH`] at least, rather than checking each signature
    /// as it makes it).
    fn fresh_wanted(&self, no_signs: bool) -> bool {
        self.fresh.len() >= AHEAD_BATCH
            || (self.fresh_due_us <= self.now_us.saturating_add(AHEAD_MARGIN_US)
                && (self.fresh.len() >= BATCH || no_signs))
    }

    /// Checks the audited signatures made ahead waiting in `fresh`: each that does not
    /// verify is an audit failure.
    fn check_fresh(&mut self, memo: &Memo) {
        let mut fresh = std::mem::take(&mut self.fresh);
        self.audited += fresh.len() as u64;
        self.audit_failures += self.check(&mut fresh, memo);
        self.fresh = fresh;
        self.fresh_due_us = u64::MAX;
    }

    /// The check a frame needs, when the worker knows its key and the memo lacks it.
    fn job(&mut self, envelope: &[u8]) -> Option<Job> {
        let event = Event::decode(envelope).ok()?;
        let (device, key) = match &event {
            Event::Inception(e) => {
                let device = e.device_id();
                let key = crypto::verifying_key(&e.body().key).ok()?;
                self.learn(device, 0, key);
                (device, key)
            }
            Event::Rotation(r) => {
                let device = *self.shorts.get(&r.body().device)?;
                let key = crypto::verifying_key(&r.body().key).ok()?;
                self.learn(device, r.body().epoch, key);
                (device, key)
            }
            Event::Interaction(i) => {
                let device = *self.shorts.get(&i.body().device)?;
                let epoch = i.body().epoch;
                let key = self.keys.get(&device)?.iter().find(|(e, _)| *e == epoch)?.1;
                (device, key)
            }
        };
        Some(Job {
            key,
            message: event.message(&device),
            signature: *event.signature(),
        })
    }

    fn learn(&mut self, device: DeviceId, epoch: u32, key: VerifyingKey) {
        if self.keys.len() >= KEYS && !self.keys.contains_key(&device) {
            self.keys.clear();
            self.shorts.clear();
        }
        self.shorts.entry(device.short()).or_insert(device);
        let epochs = self.keys.entry(device).or_default();
        if let Some(slot) = epochs.iter_mut().find(|(e, _)| *e == epoch) {
            slot.1 = key;
            return;
        }
        epochs.push((epoch, key));
        epochs.sort_by_key(|(e, _)| std::cmp::Reverse(*e));
        epochs.truncate(EPOCHS);
    }

    /// Checks the `jobs` the memo lacks and files the results; returns how many did not
    /// verify.
    fn check(&mut self, jobs: &mut Vec<Job>, memo: &Memo) -> u64 {
        jobs.retain(|j| !memo.contains(Triple::new(&j.key.to_bytes(), &j.message, &j.signature)));
        if jobs.is_empty() {
            return 0;
        }
        self.checked += jobs.len() as u64;
        let messages: Vec<&[u8]> = jobs.iter().map(|j| &j.message[..]).collect();
        let signatures: Vec<Signature> = jobs
            .iter()
            .map(|j| Signature::from_bytes(&j.signature))
            .collect();
        let keys: Vec<VerifyingKey> = jobs.iter().map(|j| j.key).collect();
        let all_valid = ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok();
        let results: Vec<(Triple, bool)> = jobs
            .iter()
            .map(|j| {
                let valid = all_valid || crypto::verify(&j.key, &j.message, &j.signature).is_ok();
                (
                    Triple::new(&j.key.to_bytes(), &j.message, &j.signature),
                    valid,
                )
            })
            .collect();
        let invalid = results.iter().filter(|(_, valid)| !valid).count() as u64;
        memo.put_many(results);
        jobs.clear();
        invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use slope_node::verifier::SignatureMemo;

    /// A signature of `n`'s message under `n`'s key.
    fn job(n: u32) -> Job {
        let mut seed = [7u8; 32];
        seed[..4].copy_from_slice(&n.to_le_bytes());
        let key = SigningKey::from_bytes(&seed);
        let mut message = [3u8; 32];
        message[..4].copy_from_slice(&n.to_le_bytes());
        Job {
            key: key.verifying_key(),
            message,
            signature: crypto::sign(&key, &message),
        }
    }

    #[test]
    fn signatures_made_ahead_wait_for_a_large_batch_or_their_wake_up() {
        let mut w = Worker {
            now_us: 1_000_000_000,
            fresh_due_us: u64::MAX,
            ..Worker::default()
        };
        assert!(!w.fresh_wanted(true));
        let far = w.now_us + AHEAD_MARGIN_US + 1;
        w.fresh.push(job(0));
        w.fresh_due_us = far;
        assert!(!w.fresh_wanted(true));
        // The earliest wake-up comes within the margin: checked now, unless signing
        // waits and the batch is small.
        w.now_us += 1;
        assert!(w.fresh_wanted(true));
        assert!(!w.fresh_wanted(false));
        for n in 1..BATCH as u32 {
            w.fresh.push(job(n));
        }
        assert!(w.fresh_wanted(false));
        w.now_us -= 1;
        for n in BATCH as u32..AHEAD_BATCH as u32 - 1 {
            w.fresh.push(job(n));
        }
        assert!(!w.fresh_wanted(false) && !w.fresh_wanted(true));
        w.fresh.push(job(AHEAD_BATCH as u32));
        assert!(w.fresh_wanted(false));
    }

    #[test]
    fn a_failed_large_batch_is_checked_one_by_one() {
        let memo = Memo::default();
        let mut w = Worker {
            fresh_due_us: u64::MAX,
            ..Worker::default()
        };
        w.fresh = (0..AHEAD_BATCH as u32).map(job).collect();
        let mut bad = job(5000);
        bad.signature[10] ^= 1;
        let good = job(5001);
        let triple = |j: &Job| (j.key.to_bytes(), j.message, j.signature);
        let (kb, mb, sb) = triple(&bad);
        let (kg, mg, sg) = triple(&good);
        w.fresh.insert(AHEAD_BATCH / 2, bad);
        w.fresh.push(good);
        w.fresh_due_us = 0;
        w.check_fresh(&memo);
        assert!(w.fresh.is_empty());
        assert_eq!(w.fresh_due_us, u64::MAX);
        assert_eq!(w.checked, AHEAD_BATCH as u64 + 2);
        // `fresh` holds the audited signatures the worker made: the bad one failed it.
        assert_eq!((w.audited, w.audit_failures), (AHEAD_BATCH as u64 + 2, 1));
        assert_eq!(memo.get(&kb, &mb, &sb), Some(false));
        assert_eq!(memo.get(&kg, &mg, &sg), Some(true));
        let j = job(17);
        assert_eq!(
            memo.get(&j.key.to_bytes(), &j.message, &j.signature),
            Some(true)
        );
        // What the memo holds is not checked again.
        w.fresh.push(job(17));
        w.check_fresh(&memo);
        assert_eq!(w.checked, AHEAD_BATCH as u64 + 2);
    }
}
