//! The verify stage across cores: one [`Verifier`] per shard, each owning the devices
//! whose short id falls in it, each on its own long-lived thread fed by a queue.
//!
//! Why this changes no outcome: everything the verifier decides is per device (its key
//! state, window, escrow keyed by the missing event of that device, divergences), and a
//! device's frames always reach the same shard in their input order (each shard takes
//! its jobs in the order they were submitted). What is split is only the bounds: each
//! shard tracks at most `max_devices / n` devices and escrows at most
//! `escrow_total / n` frames (rounded up), so a flood concentrated on one shard's ids
//! meets its wall a little earlier than with one verifier.
//!
//! Why threads that live as long as the shards: a batch is [`Shards::submit`]ted (each
//! shard's part queued to its thread) and its outcomes taken later with
//! [`Shards::wait`], oldest batch first. While the caller waits for batch n, a shard
//! that finished its part of n goes on with its part of n + 1: no shard waits for the
//! others at the end of each batch (the barrier that left a core idle for 16–19 % of
//! the time, docs/benchmarks.md, Mesh). Bound: the caller decides how many batches are
//! in flight ([`super::Overlapped`] keeps at most [`super::LOOKAHEAD`]); the queues
//! hold no more than that. A small batch with nothing in flight (a lone frame on an
//! idle gateway) is verified on the caller's thread, as before the threads.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::{Duration, Instant};

use slope_node::verifier::{Config, Outcome, Verifier, VerifyError};
use slope_proto::{DeviceId, Digest, Event, Observation, ShortId};

/// How a shard checks one frame of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// A suite-1 frame: in the shard's batch verification.
    Suite1,
    /// A suite-2 frame, from byte `start` of the bytes given (after a stamped frame's
    /// receipt), received at `rx_ms`: checked after the shard's suite-1 frames, so an
    /// anchor meets the inception that came with it.
    Compact { rx_ms: u64, start: usize },
    /// A stamped suite-2 form that does not split: rejected.
    Unsplit,
}

/// One frame handed to the shards: its bytes, its observation, how it is checked.
pub type Frame = (Vec<u8>, Observation, Check);

/// A batch back from the shards.
#[derive(Debug)]
pub struct Done {
    /// The frames as submitted (handed back, not copied).
    pub frames: Vec<Frame>,
    /// One outcome per frame, in input order.
    pub outcomes: Vec<Outcome>,
    /// Outcomes of escrowed frames released by the batch (and suite-2 results that
    /// came after their frame), shard by shard.
    pub released: Vec<Outcome>,
    /// The longest time one shard spent on its part.
    pub busy: Duration,
}

/// One shard's part of a batch, queued to its thread.
struct Job {
    now: u64,
    frames: Arc<Vec<Frame>>,
    /// Positions in `frames` of this shard's frames, in input order.
    items: Arc<Vec<usize>>,
}

/// What a shard's thread sends back for a job: outcomes aligned with its items.
struct Part {
    outcomes: Vec<Outcome>,
    released: Vec<Outcome>,
    busy: Duration,
}

/// A shard: its verifier (locked by its thread for each job), its queue, its thread.
struct Shard {
    verifier: Arc<Mutex<Verifier>>,
    jobs: Option<mpsc::Sender<Job>>,
    parts: mpsc::Receiver<Part>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A batch submitted and not yet waited for: queued to the shards' threads, or (a small
/// batch with nothing else in flight) already verified on the caller's thread.
enum Submitted {
    Queued {
        frames: Arc<Vec<Frame>>,
        items: Vec<Arc<Vec<usize>>>,
    },
    Inline(Done),
}

/// Frames a batch is worth the shards' threads for: below this, with nothing in flight,
/// a batch is verified on the caller's thread (a lone frame on an idle gateway is not
/// handed to another thread and back).
const PARALLEL_MIN: usize = 32;

/// The sharded verifier.
pub struct Shards {
    shards: Vec<Shard>,
    config: Config,
    /// Batches submitted, oldest first (each shard's thread takes them in this order).
    submitted: VecDeque<Submitted>,
    /// Outcomes released by batches verified through [`Self::handle_batch`], for
    /// [`Self::poll_outcome`].
    released: VecDeque<Outcome>,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards")
            .field("shards", &self.shards.len())
            .field("devices", &self.device_count())
            .field("in_flight", &self.submitted.len())
            .finish()
    }
}

fn lock(v: &Mutex<Verifier>) -> MutexGuard<'_, Verifier> {
    // A thread that panicked holding the lock is reported by `wait`; the verifier's
    // state is still the one it left.
    v.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A shard's thread: takes its jobs in order until the queue closes.
fn run(verifier: Arc<Mutex<Verifier>>, jobs: mpsc::Receiver<Job>, parts: mpsc::Sender<Part>) {
    while let Ok(job) = jobs.recv() {
        let t = Instant::now();
        let (outcomes, released) = check(&mut lock(&verifier), &job);
        // The job's frames are released before the part is sent: the caller takes them
        // back when every part of the batch is in.
        drop(job);
        let part = Part {
            outcomes,
            released,
            busy: t.elapsed(),
        };
        if parts.send(part).is_err() {
            return;
        }
    }
}

/// A shard's part of a batch: its suite-1 frames in one batch verification, then its
/// suite-2 frames in input order; then what the verifier released.
fn check(v: &mut Verifier, job: &Job) -> (Vec<Outcome>, Vec<Outcome>) {
    let mut out: Vec<Option<Outcome>> = (0..job.items.len()).map(|_| None).collect();
    let mut suite1 = Vec::with_capacity(job.items.len());
    let mut slots = Vec::with_capacity(job.items.len());
    for (n, &i) in job.items.iter().enumerate() {
        let (bytes, rx, check) = &job.frames[i];
        if *check == Check::Suite1 {
            suite1.push((bytes.as_slice(), *rx));
            slots.push(n);
        }
    }
    for (n, o) in slots.into_iter().zip(v.handle_batch(job.now, &suite1)) {
        out[n] = Some(o);
    }
    for (n, &i) in job.items.iter().enumerate() {
        let (bytes, rx, check) = &job.frames[i];
        match *check {
            Check::Suite1 => {}
            Check::Compact { rx_ms, start } => {
                out[n] = Some(match bytes.get(start..) {
                    Some(frame) => v.handle_attestation(rx_ms, frame, *rx),
                    None => Outcome::Rejected(VerifyError::Unexpected),
                });
            }
            Check::Unsplit => out[n] = Some(Outcome::Rejected(VerifyError::Unexpected)),
        }
    }
    let mut released = Vec::new();
    while let Some(o) = v.poll_outcome() {
        released.push(o);
    }
    let out = out
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Rejected(VerifyError::Unexpected)))
        .collect();
    (out, released)
}

/// The first byte of the short id a suite-1 interaction or rotation names, read where
/// its encoding puts it (the body's first field, right after the header, eight raw
/// bytes) instead of decoding the frame a second time on the routing thread; `None`
/// for an inception (its short id is a digest of the frame: decoded) or anything else.
/// A frame that reads here but does not decode is rejected by whichever shard gets it,
/// with no state involved.
fn short_id_byte(bytes: &[u8]) -> Option<u8> {
    match slope_proto::Header::parse(bytes).ok()?.kind {
        slope_proto::Kind::Interaction | slope_proto::Kind::Rotation => {
            bytes.get(slope_proto::limits::HEADER_LEN).copied()
        }
        _ => None,
    }
}

/// A batch's outcomes in input order from its shards' parts (one per shard, in shard
/// order, each aligned with that shard's items).
fn assemble(frames: Arc<Vec<Frame>>, items: &[Arc<Vec<usize>>], parts: Vec<Part>) -> Done {
    // Each outcome is moved once: frame by frame, from the part of the shard it went
    // to (a shard's items are in input order).
    let mut owner = vec![0usize; frames.len()];
    for (shard, items) in items.iter().enumerate() {
        for &slot in items.iter() {
            owner[slot] = shard;
        }
    }
    let mut released = Vec::new();
    let mut busy = Duration::ZERO;
    let mut parts: Vec<_> = parts
        .into_iter()
        .map(|part| {
            released.extend(part.released);
            busy = busy.max(part.busy);
            part.outcomes.into_iter()
        })
        .collect();
    let outcomes = owner
        .into_iter()
        .map(|shard| {
            parts[shard]
                .next()
                .unwrap_or(Outcome::Rejected(VerifyError::Unexpected))
        })
        .collect();
    // Every part is in, so every job (and its handle on the frames) was dropped.
    let frames = Arc::try_unwrap(frames).unwrap_or_else(|a| (*a).clone());
    Done {
        frames,
        outcomes,
        released,
        busy,
    }
}

impl Shards {
    /// `n` shards (at least one), each on its own thread, sharing the bounds of
    /// `config`.
    pub fn new(config: Config, n: usize) -> Self {
        let n = n.clamp(1, 64);
        let per = Config {
            max_devices: config.max_devices.div_ceil(n),
            escrow_total: config.escrow_total.div_ceil(n),
            released_max: config.released_max.div_ceil(n),
            ..config
        };
        let shards = (0..n)
            .map(|i| {
                let verifier = Arc::new(Mutex::new(Verifier::new(per)));
                let (jobs, queue) = mpsc::channel();
                let (done, parts) = mpsc::channel();
                let v = verifier.clone();
                let thread = std::thread::Builder::new()
                    .name(format!("slope-verify-{i}"))
                    .spawn(move || run(v, queue, done))
                    .map_err(|e| tracing::error!(error = %e, "verifier shard thread not started"))
                    .ok();
                Shard {
                    verifier,
                    jobs: Some(jobs),
                    parts,
                    thread,
                }
            })
            .collect();
        Self {
            shards,
            config,
            submitted: VecDeque::new(),
            released: VecDeque::new(),
        }
    }

    /// Verifier shards (one per core).
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Never: there is at least one shard.
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// The configuration as given (before it was split).
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn index(&self, short: &ShortId) -> usize {
        usize::from(short.0[0]) % self.shards.len()
    }

    /// The shard of a frame: by the short id it names (suite 1), or by byte 3 of the
    /// frame, the first of the short id every suite-2 frame carries there (the anchor
    /// lands beside its device's suite-1 key; see [`super::compact`]); an undecodable
    /// frame goes to shard 0, which rejects it.
    fn route(&self, (bytes, _, check): &Frame) -> usize {
        match *check {
            Check::Suite1 => match short_id_byte(bytes) {
                Some(b) => usize::from(b) % self.shards.len(),
                None => match Event::decode(bytes) {
                    Ok(e) => self.index(&e.short_id()),
                    Err(_) => 0,
                },
            },
            Check::Compact { start, .. } => bytes
                .get(start + 3)
                .map_or(0, |b| usize::from(*b) % self.shards.len()),
            Check::Unsplit => 0,
        }
    }

    /// Batches submitted and not yet waited for.
    pub fn in_flight(&self) -> usize {
        self.submitted.len()
    }

    /// Queues a batch: each shard's frames to its thread (every shard gets a part, an
    /// empty one too, as each verifier expires its escrow at every batch). Take the
    /// outcomes with [`Self::wait`], batches in the order they were submitted.
    pub fn submit(&mut self, now: u64, frames: Vec<Frame>) {
        let mut items: Vec<Vec<usize>> = vec![Vec::new(); self.shards.len()];
        for (i, f) in frames.iter().enumerate() {
            items[self.route(f)].push(i);
        }
        let frames = Arc::new(frames);
        let items: Vec<Arc<Vec<usize>>> = items.into_iter().map(Arc::new).collect();
        if frames.len() < PARALLEL_MIN && self.submitted.is_empty() {
            // The threads hold no job: their verifiers are free to lock here.
            let parts = self.shards.iter().zip(&items).map(|(shard, items)| {
                let t = Instant::now();
                let job = Job {
                    now,
                    frames: frames.clone(),
                    items: items.clone(),
                };
                let (outcomes, released) = check(&mut lock(&shard.verifier), &job);
                Part {
                    outcomes,
                    released,
                    busy: t.elapsed(),
                }
            });
            let parts: Vec<Part> = parts.collect();
            let done = assemble(frames, &items, parts);
            self.submitted.push_back(Submitted::Inline(done));
            return;
        }
        for (shard, items) in self.shards.iter().zip(&items) {
            let job = Job {
                now,
                frames: frames.clone(),
                items: items.clone(),
            };
            // A closed queue is a thread gone (panicked): `wait` reports it.
            if let Some(q) = &shard.jobs {
                let _ = q.send(job);
            }
        }
        self.submitted
            .push_back(Submitted::Queued { frames, items });
    }

    /// The outcomes of the oldest batch submitted, once every shard is done with it
    /// (blocks until then); `None` when none is in flight. A shard thread's panic is a
    /// bug, propagated as such.
    pub fn wait(&mut self) -> Option<Done> {
        let (frames, items) = match self.submitted.pop_front()? {
            Submitted::Inline(done) => return Some(done),
            Submitted::Queued { frames, items } => (frames, items),
        };
        let mut parts = Vec::with_capacity(items.len());
        for i in 0..items.len() {
            match self.shards[i].parts.recv() {
                Ok(p) => parts.push(p),
                Err(_) => self.lost(i),
            }
        }
        Some(assemble(frames, &items, parts))
    }

    /// A shard's thread is gone: re-raises its panic.
    fn lost(&mut self, i: usize) -> ! {
        match self.shards[i]
            .thread
            .take()
            .map(std::thread::JoinHandle::join)
        {
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            _ => panic!("verifier shard {i} has no thread"),
        }
    }

    /// Waits for every batch in flight; their outcomes are dropped (the callers that
    /// submit take theirs before touching the shards otherwise: this is only a guard
    /// so that no other call ever runs beside a shard's thread).
    fn settle(&mut self) {
        while self.submitted.front().is_some() {
            if let Some(done) = self.wait() {
                self.released.extend(done.released);
            }
        }
    }

    /// Verifies a batch, in parallel across the shards, and waits for it; outcomes in
    /// input order, equal to those of one verifier with the same bounds. Frames
    /// released from escrow: [`Self::poll_outcome`].
    pub fn handle_batch(&mut self, now: u64, frames: &[(&[u8], Observation)]) -> Vec<Outcome> {
        self.settle();
        let owned = frames
            .iter()
            .map(|(f, rx)| (f.to_vec(), *rx, Check::Suite1))
            .collect();
        self.submit(now, owned);
        match self.wait() {
            Some(done) => {
                self.released.extend(done.released);
                done.outcomes
            }
            None => Vec::new(),
        }
    }

    /// Outcomes of escrowed frames released by an establishment event.
    pub fn poll_outcome(&mut self) -> Option<Outcome> {
        self.settle();
        if let Some(o) = self.released.pop_front() {
            return Some(o);
        }
        self.shards
            .iter()
            .find_map(|s| lock(&s.verifier).poll_outcome())
    }

    /// Devices tracked, in all shards.
    pub fn device_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| lock(&s.verifier).device_count())
            .sum()
    }

    fn of(&self, device: &DeviceId) -> MutexGuard<'_, Verifier> {
        lock(&self.shards[self.index(&device.short())].verifier)
    }

    /// The head the verifier holds for `device`.
    pub fn head(&self, device: &DeviceId) -> Option<(u32, Digest)> {
        self.of(device).head(device)
    }

    /// A suite-2 frame received at `rx_ms`, on the shard of the short id it names
    /// (bytes 3..11 of every suite-2 frame; the anchor lands beside its device's
    /// suite-1 key). See [`super::compact`].
    pub fn handle_compact(&mut self, rx_ms: u64, frame: &[u8], rx: Observation) -> Outcome {
        self.settle();
        let i = frame
            .get(3)
            .map_or(0, |b| usize::from(*b) % self.shards.len());
        lock(&self.shards[i].verifier).handle_attestation(rx_ms, frame, rx)
    }

    /// Expires escrowed frames and suite-2 frames that waited too long for their key,
    /// in every shard; returns how many suite-2 frames were dropped.
    pub fn handle_timeout(&mut self, now: u64) -> usize {
        self.settle();
        let before = self.compact_pending();
        for s in &self.shards {
            lock(&s.verifier).handle_timeout(now);
        }
        before.saturating_sub(self.compact_pending())
    }

    /// Suite-2 devices tracked, in all shards.
    pub fn compact_devices(&self) -> usize {
        self.shards
            .iter()
            .map(|s| lock(&s.verifier).compact().device_count())
            .sum()
    }

    /// Suite-2 frames waiting for their keys, in all shards.
    pub fn compact_pending(&self) -> usize {
        self.shards
            .iter()
            .map(|s| lock(&s.verifier).compact().pending_total())
            .sum()
    }

    /// Forgets a divergence of `device` (operator release).
    pub fn release(&mut self, device: &DeviceId) -> bool {
        self.settle();
        self.of(device).release(device)
    }
}

impl Drop for Shards {
    /// Closes the queues and lets the threads finish what they hold.
    fn drop(&mut self) {
        for s in &mut self.shards {
            s.jobs = None;
        }
        for s in &mut self.shards {
            if let Some(t) = s.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The routing byte read in place is the first byte of the short id the decoded
    /// frame names, for interactions and rotations of any content (an inception's is
    /// never read in place: its kind is not matched).
    #[test]
    fn the_short_id_byte_is_read_where_the_decoder_finds_it() {
        use ed25519_dalek::SigningKey;
        use slope_proto::{DeviceId, Digest, Interaction, Rotation, Signed};
        for seed in 0..32u8 {
            let k = SigningKey::from_bytes(&[seed; 32]);
            let next = SigningKey::from_bytes(&[seed ^ 0xa5; 32]);
            // Any device id: the signature is not checked here.
            let device = DeviceId(*blake3::hash(&[seed]).as_bytes());
            let prev = Digest([seed; 32]).link();
            let body = Interaction {
                device: device.short(),
                seq: 1 + u32::from(seed) * 1_000_003,
                prev,
                epoch: 0,
                boot: u16::from(seed),
                behaviour: [seed; 4],
                heard: heapless::Vec::new(),
                payload: heapless::Vec::from_slice(&[seed; 9]).unwrap_or_default(),
            };
            let f = Signed::sign(body, &device, &k).expect("interaction encodes");
            let e = Event::decode(f.frame()).expect("decodes");
            assert_eq!(short_id_byte(f.frame()), Some(e.short_id().0[0]));
            let rot = Rotation {
                device: device.short(),
                seq: 1 + u32::from(seed),
                prev,
                epoch: 1,
                key: next.verifying_key().to_bytes(),
                next_key: Digest([seed; 32]),
            };
            let r = Signed::sign(rot, &device, &next).expect("rotation encodes");
            let e = Event::decode(r.frame()).expect("decodes");
            assert_eq!(short_id_byte(r.frame()), Some(e.short_id().0[0]));
        }
    }

    #[test]
    fn undecodable_frames_are_rejected_in_order() {
        let mut s = Shards::new(Config::default(), 3);
        let rx = crate::pipeline::quiet_rx();
        let junk: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; usize::from(i)]).collect();
        let frames: Vec<(&[u8], Observation)> = junk.iter().map(|f| (&f[..], rx)).collect();
        let out = s.handle_batch(0, &frames);
        assert_eq!(out.len(), 40);
        assert!(out.iter().all(|o| matches!(o, Outcome::Rejected(_))));
    }
}
