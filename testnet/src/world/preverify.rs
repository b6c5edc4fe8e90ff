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
//! The worker then checks the signatures it made (in batches of up to [`BATCH`], as a
//! frame's: `verify_batch` under the job's public key, strict one by one when a batch
//! fails) and files the results in the memo: the frame goes on the air with its check
//! done, and the checks move from the frames' airtime (wanted within 500 ms) to the
//! thread's idle moments. The memo keeps over an hour of entries; the wake-up is ≈ 15
//! min later.
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

/// What the worker did (work, not outcomes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames and receipt batches submitted, and those dropped because the queue was
    /// full.
    pub submitted: u64,
    pub dropped: u64,
    /// Signatures the worker checked (frames and batches).
    pub checked: u64,
    /// Devices' signatures the worker made ahead of their wake-ups.
    pub signed: u64,
}

/// The worker's handle; without a worker (one thread) it does nothing.
/// What the worker is handed.
enum Work {
    /// A frame (envelope) that went on the air.
    Frame(Arc<[u8]>),
    /// A receipt batch's signature, with the key that sealed it.
    Batch(Box<BatchCheck>),
    /// A device's next attestation to sign, and where the signature goes.
    Sign(Box<SignJob>, Arc<OnceLock<Ahead>>),
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
    worker: Option<JoinHandle<(u64, u64)>>,
    stats: Stats,
}

impl PreVerifier {
    /// A worker thread filling `memo` when `threads` > 1; nothing otherwise.
    pub fn new(threads: usize, memo: &Memo) -> Self {
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
            .spawn(move || Worker::default().run(&rx, &memo))
            .ok();
        Self {
            tx: worker.as_ref().map(|_| tx),
            worker,
            stats: Stats::default(),
        }
    }

    /// Hands a frame (envelope) that just went on the air to the worker.
    pub fn submit(&mut self, envelope: &Arc<[u8]>) {
        self.send(Work::Frame(envelope.clone()));
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

    /// Hands a device's next signature to the worker; where it will be, unless the
    /// queue was full (the device then signs at its wake-up).
    pub fn submit_sign(&mut self, job: SignJob) -> Option<Arc<OnceLock<Ahead>>> {
        let slot = Arc::new(OnceLock::new());
        self.send(Work::Sign(Box::new(job), Arc::clone(&slot)))
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
            let (checked, signed) = w.join().unwrap_or((0, 0));
            self.stats.checked += checked;
            self.stats.signed += signed;
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
    checked: u64,
    signed: u64,
}

impl Worker {
    fn run(mut self, rx: &Receiver<Work>, memo: &Memo) -> (u64, u64) {
        let mut jobs = Vec::with_capacity(BATCH);
        // Signing waits for the moments the checks leave: a frame's check is wanted at
        // its first flush (≤ 500 ms of simulated time), a signature at the device's
        // next wake-up (≈ 15 min).
        let mut signs: VecDeque<(Box<SignJob>, Arc<OnceLock<Ahead>>)> = VecDeque::new();
        // The signatures just made, checked in batches as any frame's: their frames go
        // on the air at the wake-up with the check already in the memo.
        let mut fresh = Vec::with_capacity(BATCH);
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
                Ok(Work::Sign(job, slot)) => {
                    signs.push_back((job, slot));
                    if signs.len() > SIGNS {
                        self.sign(signs.pop_front(), &mut fresh);
                    }
                }
                Ok(Work::Frame(f)) => {
                    jobs.extend(self.job(&f));
                    if jobs.len() >= BATCH {
                        self.check(&mut jobs, memo);
                    }
                }
                Err(TryRecvError::Empty) => {
                    if !jobs.is_empty() {
                        self.check(&mut jobs, memo);
                    } else if !signs.is_empty() {
                        self.sign(signs.pop_front(), &mut fresh);
                        if fresh.len() >= BATCH || signs.is_empty() {
                            self.check(&mut fresh, memo);
                        }
                    } else {
                        std::thread::sleep(POLL);
                    }
                }
                Err(TryRecvError::Disconnected) => break,
            }
        }
        (self.checked, self.signed)
    }

    /// Makes a device's signature, files it where the device will look, and queues
    /// its check in `fresh`.
    fn sign(&mut self, job: Option<(Box<SignJob>, Arc<OnceLock<Ahead>>)>, fresh: &mut Vec<Job>) {
        if let Some((job, slot)) = job {
            self.signed += 1;
            let (key, message) = (job.verifying_key(), *job.message());
            let ahead = job.sign();
            fresh.push(Job {
                key,
                message,
                signature: *ahead.signature(),
            });
            let _ = slot.set(ahead);
        }
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

    fn check(&mut self, jobs: &mut Vec<Job>, memo: &Memo) {
        jobs.retain(|j| !memo.contains(Triple::new(&j.key.to_bytes(), &j.message, &j.signature)));
        if jobs.is_empty() {
            return;
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
        memo.put_many(results);
        jobs.clear();
    }
}
