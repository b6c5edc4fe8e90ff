//! The one ingest pipeline for frames from the radio, from gossip and from sync:
//! decode → verify (batch ed25519 with one-by-one fallback, [`shards`] across cores) →
//! trust decision → commit (one redb transaction per batch, or per group of waiting
//! batches under load: group commit, see [`Overlapped`]) → witness receipts → gossip.
//!
//! Two stages: the verify stage ([`Pipeline::verify`], the sharded verifier, one thread
//! per shard) and the commit stage ([`Pipeline::commit`]: decide, write, commit, sign).
//! [`Pipeline::ingest`] runs them one after the other; [`Overlapped`] runs the commit of
//! the batches waiting (one transaction, one fsync for all of them) on its own thread
//! while the shards' threads verify the next batches.
//!
//! Ordering guarantee: outputs (gossip verdicts, receipts, proofs) of a batch exist only
//! after that batch's commit returned, so nothing this gateway signs or forwards is
//! ahead of its durable state. The verifier may be one batch ahead of the store while
//! overlapping; if a commit fails, the verifier and the trust engine are rebuilt from
//! the store and the batch verified in the meantime is verified again against it.
//!
//! The pipeline is synchronous and owns no socket: the node drives it from its event
//! loop, the benchmark drives it directly.

mod commit;
pub mod compact;
pub mod pending;
pub mod shards;
pub mod window;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use slope_node::verifier::{Missing, Outcome, VerifiedAttestation, VerifyError};
use slope_proto::{DeviceId, Observation};

pub(crate) use commit::check_proof;

use crate::identity::Identity;
use crate::lineage::Source;
use crate::metrics::{Metrics, kind};
use crate::store::{Store, StoreError};
use crate::trust::Decide;
use commit::Stage;
use shards::Shards;

/// One frame entering the pipeline, with a caller's tag (e.g. the gossip message id).
#[derive(Debug, Clone)]
pub struct Input<T> {
    pub frame: Vec<u8>,
    pub rx: Observation,
    pub source: Source,
    pub tag: T,
}

/// The gossip validation verdict for a frame, receipt or proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It verifies: deliver and forward.
    Accept,
    /// Stale, duplicate, escrowed or otherwise not the sender's fault: drop silently.
    Ignore,
    /// The sender can be blamed (malformed, bad signature): drop and penalise.
    Reject,
}

/// Something the node must do after a committed batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Gossip this frame (heard on our radio and committed).
    PublishAttestation(Vec<u8>),
    /// Gossip this witness receipt message ([`receipt_message`]).
    PublishReceipt(Vec<u8>),
    /// Gossip this divergence proof (found here).
    PublishProof(Vec<u8>),
    /// Gossip this suite-2 message on the compact topic: an anchor, or a stamped frame
    /// ([`compact::stamped_message`]).
    PublishCompact(Vec<u8>),
    /// An escrowed frame waits for this: ask peers.
    Missing(Missing),
    /// The device was quarantined.
    Quarantined(DeviceId),
}

/// What one ingest call produced.
#[derive(Debug)]
pub struct Output<T> {
    pub verdicts: Vec<(T, Verdict)>,
    pub effects: Vec<Effect>,
}

/// How peers' receipts are taken (see [`Pipeline::set_receipts`]).
#[derive(Debug, Clone)]
pub struct Receipts {
    /// Peer gateways whose receipts count: (public key, trust zone).
    pub witnesses: Vec<([u8; 32], u16)>,
    /// Receipts held for attestations not yet here, at most ([`pending`]).
    pub pending: usize,
    /// How long such a receipt is held, milliseconds.
    pub pending_ttl_ms: u64,
    /// The receipt window: how long after its commit an attestation is decided, so that
    /// the receipts of the other gateways that heard it are decided with it,
    /// milliseconds (0: decided in its commit, as before the window). With the trust
    /// engine only ([`window`]).
    pub wait_ms: u64,
    /// Attestations waiting for their decision, at most (the oldest is decided early at
    /// the bound).
    pub waiting: usize,
}

impl Default for Receipts {
    fn default() -> Self {
        Self {
            witnesses: Vec::new(),
            pending: 0,
            pending_ttl_ms: 0,
            wait_ms: 0,
            waiting: window::DEFAULT_MAX,
        }
    }
}

/// A batch whose commit failed: the error, and the tags of its inputs (nothing of it was
/// committed, signed or forwarded).
#[derive(Debug)]
pub struct Failed<T> {
    pub error: StoreError,
    pub tags: Vec<T>,
}

/// A batch through the verify stage, waiting for the commit stage.
#[derive(Debug)]
pub struct Verified<T> {
    now: u64,
    inputs: Vec<Input<T>>,
    outcomes: Vec<Outcome>,
    released: Vec<Outcome>,
}

impl<T> Verified<T> {
    /// Attestations the commit stage will take from this batch (inputs and frames
    /// released from escrow).
    pub fn len(&self) -> usize {
        self.inputs.len() + self.released.len()
    }

    /// Whether the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Builds the gossip message for a receipt: the witness's 32-byte public key, then the
/// signed receipt frame.
pub fn receipt_message(key: &[u8; 32], receipt: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + receipt.len());
    out.extend_from_slice(key);
    out.extend_from_slice(receipt);
    out
}

/// Splits a receipt gossip message (see [`receipt_message`]).
pub fn parse_receipt_message(bytes: &[u8]) -> Option<([u8; 32], &[u8])> {
    let key: [u8; 32] = bytes.get(..32)?.try_into().ok()?;
    Some((key, bytes.get(32..)?))
}

/// The pipeline.
pub struct Pipeline {
    verifier: Shards,
    metrics: Metrics,
    stage: Stage,
}

impl Pipeline {
    /// A pipeline over `store`, with the verifier rebuilt from what the store holds (one
    /// verifier shard per available core).
    pub fn new(
        store: Arc<Store>,
        verifier_config: slope_node::verifier::Config,
        decide: Box<dyn Decide>,
        identity: Identity,
        metrics: Metrics,
        frames_per_device: u32,
        engine_policy: Option<slope_node::trust::Policy>,
    ) -> Result<Self, StoreError> {
        let cores = shard_count();
        let device_bound = u64::try_from(verifier_config.max_devices).unwrap_or(u64::MAX);
        let mut p = Self {
            verifier: Shards::new(verifier_config, cores),
            stage: Stage::new(
                store,
                decide,
                identity,
                metrics.clone(),
                frames_per_device,
                engine_policy,
            ),
            metrics,
        };
        p.stage.device_bound = device_bound;
        p.rebuild()?;
        Ok(p)
    }

    /// Which peers' receipts count, and the bounds of the receipts waiting for their
    /// attestation; registers the witnesses with the trust engine (signed operator
    /// actions in its lineage) and retires those no longer listed. Until it is called no
    /// peer receipt counts.
    pub fn set_receipts(&mut self, receipts: Receipts) -> Result<(), StoreError> {
        self.stage.set_receipts(receipts)
    }

    /// Where the pipeline reads the time for the operator actions it signs itself
    /// (witness registration); the system clock unless set.
    pub fn set_clock(&mut self, clock: crate::clock::Shared) {
        self.stage.clock = clock;
    }

    /// Peers' receipts held for attestations not yet here.
    pub fn pending_receipts(&self) -> usize {
        self.stage.pending_receipts()
    }

    /// Attestations committed whose decision waits for the receipt window
    /// ([`window`]).
    pub fn undecided(&self) -> usize {
        self.stage.window.len()
    }

    /// Milliseconds until the oldest waiting decision is due at `now` (0: due now),
    /// `None` when none waits. The node calls [`Self::decide_due`] then (a group commit
    /// also takes the decisions that are due).
    pub fn decision_due_in(&self, now: u64) -> Option<u64> {
        self.stage.window.due_in(now)
    }

    /// Decides, in a transaction of their own, the attestations whose receipt window is
    /// over at `now`; returns how many. On a failed commit the verifier, the engine and
    /// the window are rebuilt from the store (nothing of it was decided).
    pub fn decide_due(&mut self, now: u64) -> Result<usize, StoreError> {
        let out = self.stage.decide_due(now);
        if out.is_err() {
            self.recover();
        }
        out
    }

    /// The verifier (read-only), for heads.
    pub fn verifier(&self) -> &Shards {
        &self.verifier
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.stage.store
    }

    /// Rebuilds the verifier from the store: for every device, its establishment events
    /// and its last `window` frames. (The verifier has no import of its state; replaying
    /// what was committed reproduces it, since every replayed frame verified before.)
    /// The trust engine, when enabled, is restored by replaying its committed lineage
    /// (see [`crate::trust::Engine::open`]).
    pub fn rebuild(&mut self) -> Result<usize, StoreError> {
        let config = *self.verifier.config();
        let cores = shard_count();
        self.verifier = Shards::new(config, cores);
        self.stage.reopen_engine()?;
        let store = self.stage.store.clone();
        let window = config.window.max(1);
        // Attestations committed whose decision was still waiting: the replay below
        // yields each again as a verified attestation, which queues it again.
        let undecided = store.undecided()?;
        let mut wanted: std::collections::HashMap<([u8; 32], u32), Option<VerifiedAttestation>> =
            undecided
                .iter()
                .flat_map(|(_, u)| u.iter().map(|u| ((u.device, u.seq), None)))
                .collect();
        // Per device, the oldest position waiting: replayed from there when that is
        // further back than the verifier's window.
        let mut oldest: std::collections::HashMap<[u8; 32], u32> = Default::default();
        for u in undecided.iter().flat_map(|(_, u)| u) {
            let o = oldest.entry(u.device).or_insert(u.seq);
            *o = (*o).min(u.seq);
        }
        let mut after: Option<DeviceId> = None;
        let mut n = 0;
        loop {
            let page = store.devices(after.as_ref(), 1024)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(*last);
            let mut frames: Vec<(Vec<u8>, Observation)> = Vec::new();
            for (id, _) in &page {
                let mut recent = store.recent_frames(id, window)?;
                if let Some(&seq) = oldest.get(&id.0) {
                    if recent.first().is_some_and(|f| f.seq > seq) {
                        recent = store.frames(id, seq.checked_sub(1), usize::MAX)?;
                    }
                }
                for f in store.establishments(id)? {
                    // As it was heard, when it is among the recent frames (a decision
                    // still waiting for it is taken with its reception).
                    let rx = recent
                        .iter()
                        .find(|r| r.frame == f)
                        .map_or_else(quiet_rx, |r| r.rx);
                    frames.push((f, rx));
                }
                for f in recent {
                    frames.push((f.frame, f.rx));
                }
                n += 1;
            }
            let refs: Vec<(&[u8], Observation)> =
                frames.iter().map(|(f, rx)| (f.as_slice(), *rx)).collect();
            for chunk in refs.chunks(512) {
                let now = chunk.iter().map(|(_, rx)| rx.time_ms).max().unwrap_or(0);
                for outcome in self.verifier.handle_batch(now, chunk) {
                    if wanted.is_empty() {
                        break;
                    }
                    if let Outcome::Extended(att) = outcome {
                        if let Some(slot) = wanted.get_mut(&(att.device().0, att.seq())) {
                            *slot = Some(att);
                        }
                    }
                }
            }
            compact::replay(&mut self.verifier, &store, &page)?;
            while self.verifier.poll_outcome().is_some() {}
        }
        self.restore_window(undecided, wanted);
        Ok(n)
    }

    /// Queues again the attestations whose decision was waiting (see [`Self::rebuild`]);
    /// one whose frame the replay did not yield (pruned from the store, or a replay
    /// that failed) is counted as lost and dropped from the store at the next commit.
    fn restore_window(
        &mut self,
        undecided: Vec<(u64, Vec<crate::store::Undecided>)>,
        mut found: std::collections::HashMap<([u8; 32], u32), Option<VerifiedAttestation>>,
    ) {
        let next_group = undecided.last().map_or(0, |(g, _)| g.saturating_add(1));
        let mut restored = Vec::new();
        let mut gone = std::collections::BTreeSet::new();
        for (group, entries) in undecided {
            for u in entries {
                match found.get_mut(&(u.device, u.seq)).and_then(Option::take) {
                    Some(att) => restored.push(window::Waiting {
                        group,
                        now: u.now_ms,
                        source: u.source,
                        att,
                    }),
                    None => {
                        tracing::warn!(
                            device = %hex::encode(u.device),
                            seq = u.seq,
                            "a decision waiting at the restart lost its frame; not decided"
                        );
                        self.metrics.decisions.get_or_create(&kind("lost")).inc();
                        gone.insert(group);
                    }
                }
            }
        }
        if !restored.is_empty() {
            self.metrics
                .decisions
                .get_or_create(&kind("restored"))
                .inc_by(restored.len() as u64);
        }
        self.stage.window.reset(restored, gone, next_group);
    }

    /// A message from the compact gossip topic, checked for form and receipt before it
    /// is queued: the receive time to verify it with, or the verdict
    /// ([`compact::admit`]).
    pub fn admit_compact(&self, now: u64, bytes: &[u8]) -> Result<u64, Verdict> {
        compact::admit(bytes, self.stage.listed(), now).map(|a| a.rx_ms)
    }

    /// Expires what waited too long in the verifier (escrowed suite-1 frames, suite-2
    /// frames whose key never came). Call it periodically.
    pub fn handle_timeout(&mut self, now: u64) {
        let expired = self.verifier.handle_timeout(now);
        if expired > 0 {
            self.metrics
                .compact
                .get_or_create(&kind("expired"))
                .inc_by(expired as u64);
        }
    }

    /// The verify stage: decodes and verifies a batch (the verifier's state advances).
    pub fn verify<T>(&mut self, now: u64, inputs: Vec<Input<T>>) -> Verified<T> {
        verify(&mut self.verifier, &self.metrics, now, inputs)
    }

    /// The commit stage for a verified batch: decide, commit, then sign receipts. On a
    /// failed commit the verifier and engine are rebuilt from the store.
    pub fn commit<T>(&mut self, verified: Verified<T>) -> Result<Output<T>, Failed<T>> {
        let out = self.stage.commit(verified);
        if out.is_err() {
            self.recover();
        }
        out
    }

    /// The commit stage for several verified batches at once (group commit): one write
    /// transaction, one fsync, then the receipts of all of them. One result per batch,
    /// in order; on a failed commit every batch fails and the verifier and engine are
    /// rebuilt from the store.
    pub fn commit_group<T>(
        &mut self,
        group: Vec<Verified<T>>,
    ) -> Vec<Result<Output<T>, Failed<T>>> {
        let out = self.stage.commit_group(group);
        if out.iter().any(Result::is_err) {
            self.recover();
        }
        out
    }

    /// Verifies, decides and commits a batch of frames.
    pub fn ingest<T>(&mut self, now: u64, inputs: Vec<Input<T>>) -> Result<Output<T>, StoreError> {
        let v = self.verify(now, inputs);
        self.commit(v).map_err(|f| f.error)
    }

    fn recover(&mut self) {
        tracing::error!("commit failed; rebuilding the verifier and engine from the store");
        if let Err(e) = self.rebuild() {
            tracing::error!(error = %e, "rebuild failed");
        }
    }

    /// A divergence proof from gossip or sync: verified here, independently of who sent
    /// it, before anything is quarantined.
    pub fn ingest_proof(
        &mut self,
        now: u64,
        bytes: &[u8],
    ) -> Result<(Verdict, Vec<Effect>), StoreError> {
        self.stage.ingest_proof(now, bytes)
    }

    /// Another gateway's witness receipt message (see [`receipt_message`]).
    pub fn ingest_receipt(&mut self, now: u64, bytes: &[u8]) -> Result<Verdict, StoreError> {
        self.stage.ingest_receipt(now, bytes)
    }

    /// Operator: releases `device` from quarantine: the verifier forgets the divergence
    /// (`Verifier::release`), and the trust engine records the release in its lineage
    /// (signed by the gateway key), in the same transaction. Returns false if it was not
    /// quarantined. If the write fails, the engine is reopened from the store (the
    /// verifier is touched only after the commit).
    pub fn release(
        &mut self,
        now: u64,
        device: &DeviceId,
        note: String,
    ) -> Result<bool, StoreError> {
        let released = self.stage.release(now, device, note)?;
        if released {
            self.verifier.release(device);
        }
        Ok(released)
    }

    /// Operator: pins (or with `None` unpins) the scope of `device`.
    pub fn pin(
        &mut self,
        now: u64,
        device: &DeviceId,
        scope: Option<crate::trust::Scope>,
        note: String,
    ) -> Result<bool, StoreError> {
        self.stage.pin(now, device, scope, note)
    }
}

/// A batch handed to the verifier shards ([`Shards::submit`]), its frames with them.
struct InFlight<T> {
    now: u64,
    inputs: Vec<Input<T>>,
}

impl<T> InFlight<T> {
    fn len(&self) -> usize {
        self.inputs.len()
    }
}

/// Hands a batch to the verifier shards (the frames travel with it and come back in
/// [`complete`]); counts its inputs.
fn submit<T>(
    verifier: &mut Shards,
    metrics: &Metrics,
    now: u64,
    mut inputs: Vec<Input<T>>,
) -> InFlight<T> {
    // Counted per source per batch (a labelled counter is a lock and a look-up: once
    // per frame it was serial work on the verify stage's critical path).
    let mut by_source = [0u64; 4];
    for i in &inputs {
        by_source[source_index(i.source)] += 1;
    }
    for (n, source) in by_source.into_iter().zip(SOURCES) {
        if n > 0 {
            metrics
                .ingest
                .get_or_create(&kind(source_str(source)))
                .inc_by(n);
        }
    }
    metrics.batch_size.observe(inputs.len() as f64);
    let frames = inputs
        .iter_mut()
        .map(|i| {
            let check = if compact::is_compact(&i.frame) {
                match compact::frame_of(i) {
                    Some(f) => shards::Check::Compact {
                        rx_ms: compact::rx_ms(i, now),
                        start: i.frame.len() - f.len(),
                    },
                    None => shards::Check::Unsplit,
                }
            } else {
                shards::Check::Suite1
            };
            (std::mem::take(&mut i.frame), i.rx, check)
        })
        .collect();
    verifier.submit(now, frames);
    InFlight { now, inputs }
}

/// The oldest batch in flight, back from the shards (blocks until it is).
fn complete<T>(verifier: &mut Shards, metrics: &Metrics, f: InFlight<T>) -> Verified<T> {
    let InFlight { now, mut inputs } = f;
    let Some(done) = verifier.wait() else {
        // Cannot happen: every `InFlight` was submitted and is completed once, in order.
        unreachable!("a batch in flight has its outcomes");
    };
    for (input, (frame, _, _)) in inputs.iter_mut().zip(done.frames) {
        input.frame = frame;
    }
    metrics.verify_seconds.observe(done.busy.as_secs_f64());
    Verified {
        now,
        inputs,
        outcomes: done.outcomes,
        released: done.released,
    }
}

fn verify<T>(
    verifier: &mut Shards,
    metrics: &Metrics,
    now: u64,
    inputs: Vec<Input<T>>,
) -> Verified<T> {
    let f = submit(verifier, metrics, now, inputs);
    complete(verifier, metrics, f)
}

/// Batches in flight in the verifier shards at most while a group commits (see
/// [`Overlapped`]): enough that a shard done with its part of the oldest goes on
/// with the next ones while the others finish theirs.
pub const LOOKAHEAD: usize = 16;

/// Runs the two stages overlapped, with group commit. [`Overlapped::push`] commits the
/// verified batches waiting (all of them, up to `commit_max` attestations: ONE write
/// transaction and ONE fsync for the group) on a thread of its own while new batches
/// are verified by the verifier shards' threads: first the one given, then, as long as
/// that commit is still running and fewer than `commit_max` attestations wait verified
/// or in flight, more from the caller's `more` source, up to [`LOOKAHEAD`] batches
/// queued to the shards at once (a shard done with its part of one batch goes on with
/// the next; the calling thread only routes frames and takes batches back, oldest
/// first). Every batch handed to the shards is back before `push` returns. A batch's
/// output comes out one call later: call [`Overlapped::flush`] when no more input is
/// waiting. When the node is idle a lone batch is the whole group and commits at the
/// next call, as without grouping.
///
/// Batches are verified together — the one given with those waiting in `more`, and,
/// while a group commits, those taken from `more` with each other — up to the given
/// batch's size times the number of verifier shards (and at most `commit_max`), so that
/// every shard verifies full-size ed25519 batches; their outputs then come out as one.
///
/// Bound: at most `commit_max` attestations wait verified or in flight, plus one
/// coalesced batch (the one given; fewer than `commit_max` plus one batch).
#[derive(Debug)]
pub struct Overlapped<T> {
    waiting: std::collections::VecDeque<Verified<T>>,
    commit_max: usize,
}

impl<T> Default for Overlapped<T> {
    fn default() -> Self {
        Self {
            waiting: std::collections::VecDeque::new(),
            commit_max: DEFAULT_COMMIT_MAX,
        }
    }
}

/// Default bound of a group commit, attestations (see [`Overlapped`]).
pub const DEFAULT_COMMIT_MAX: usize = 4096;

/// What one [`Overlapped`] call committed: one result per batch, in order.
pub type Committed<T> = Vec<Result<Output<T>, Failed<T>>>;

impl<T: Send> Overlapped<T> {
    /// Groups of at most `commit_max` attestations per commit (a batch larger than the
    /// bound is still committed, alone).
    pub fn new(commit_max: usize) -> Self {
        Self {
            waiting: std::collections::VecDeque::new(),
            commit_max: commit_max.max(1),
        }
    }

    /// Whether verified batches wait for their commit.
    pub fn is_pending(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Attestations waiting verified.
    pub fn waiting(&self) -> usize {
        attestations(&self.waiting)
    }

    /// The next group (see [`take_group`]).
    fn group(&mut self) -> Vec<Verified<T>> {
        take_group(&mut self.waiting, self.commit_max)
    }

    /// Verifies `inputs` (and, while the commit runs, more batches from `more`) while
    /// committing the batches verified before; returns their outputs (empty when none
    /// waited).
    pub fn push(
        &mut self,
        p: &mut Pipeline,
        now: u64,
        inputs: Vec<Input<T>>,
        mut more: impl FnMut() -> Option<(u64, Vec<Input<T>>)>,
    ) -> Committed<T> {
        // Batches waiting in `more` are verified together up to this many frames (at
        // most `commit_max`), so that each shard's ed25519 batch is as large as one input
        // batch (a 256-frame batch split over two shards is two batches of 128, whose
        // verification costs more per signature): the first one too, not only those
        // verified while the commit runs.
        let coalesce = inputs
            .len()
            .max(1)
            .saturating_mul(p.verifier.len())
            .min(self.commit_max);
        let (now, inputs) = fill(coalesce, (now, inputs), &mut more);
        let group = self.group();
        if group.is_empty() {
            self.waiting.push_back(p.verify(now, inputs));
            return Vec::new();
        }
        let commit_max = self.commit_max;
        let waiting = &mut self.waiting;
        let Pipeline {
            verifier,
            metrics,
            stage,
        } = p;
        let committed = std::thread::scope(|s| {
            let commit = s.spawn(|| stage.commit_group(group));
            let mut flight = VecDeque::from([submit(verifier, metrics, now, inputs)]);
            let mut stopped = "commit";
            let mut waited = std::time::Duration::ZERO;
            // While the commit runs, keep up to LOOKAHEAD batches queued to the shards
            // (each shard takes its part of the next as soon as it is done with the
            // last), taking the oldest back as it is done.
            loop {
                while !commit.is_finished() && flight.len() < LOOKAHEAD {
                    let in_flight: usize = flight.iter().map(InFlight::len).sum();
                    if attestations(waiting) + in_flight >= commit_max {
                        stopped = "commit_bound";
                        break;
                    }
                    let Some(first) = more() else {
                        break;
                    };
                    let (now, inputs) = fill(coalesce, first, &mut more);
                    flight.push_back(submit(verifier, metrics, now, inputs));
                }
                if commit.is_finished() {
                    break;
                }
                let Some(oldest) = flight.pop_front() else {
                    break;
                };
                let t = Instant::now();
                waiting.push_back(complete(verifier, metrics, oldest));
                waited += t.elapsed();
            }
            let t = Instant::now();
            for f in flight {
                waiting.push_back(complete(verifier, metrics, f));
            }
            waited += t.elapsed();
            let t = Instant::now();
            let out = commit
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            metrics
                .verify_wait_seconds
                .get_or_create(&kind(stopped))
                .inc_by(t.elapsed().as_secs_f64());
            metrics
                .verify_wait_seconds
                .get_or_create(&kind("verify"))
                .inc_by(waited.as_secs_f64());
            out
        });
        if committed.iter().any(Result::is_err) {
            p.recover();
            self.reverify(p);
        }
        committed
    }

    /// After a failed commit (and the rebuild from the store): the batches verified
    /// meanwhile were verified against state that did not become durable; verify them
    /// again.
    fn reverify(&mut self, p: &mut Pipeline) {
        let stale: Vec<Verified<T>> = self.waiting.drain(..).collect();
        for v in stale {
            self.waiting.push_back(p.verify(v.now, v.inputs));
        }
    }

    /// Commits every batch still waiting (in groups of at most `commit_max`).
    pub fn flush(&mut self, p: &mut Pipeline) -> Committed<T> {
        let mut out = Vec::new();
        loop {
            let group = self.group();
            if group.is_empty() {
                return out;
            }
            let committed = p.commit_group(group);
            if committed.iter().any(Result::is_err) {
                // `commit_group` rebuilt the verifier from the store.
                self.reverify(p);
            }
            out.extend(committed);
        }
    }
}

/// Attestations in verified batches.
fn attestations<T>(batches: &VecDeque<Verified<T>>) -> usize {
    batches.iter().map(Verified::len).sum()
}

/// The next group: waiting batches in order, at least one (when any waits), up to
/// `commit_max` attestations.
fn take_group<T>(waiting: &mut VecDeque<Verified<T>>, commit_max: usize) -> Vec<Verified<T>> {
    let mut group = Vec::new();
    let mut n = 0;
    while let Some(v) = waiting.front() {
        if !group.is_empty() && n + v.len() > commit_max {
            break;
        }
        n += v.len();
        group.extend(waiting.pop_front());
    }
    group
}

/// `first` topped up with the batches waiting in `more` until it holds `coalesce` frames
/// or `more` has none; stamped with the time of the last batch taken.
fn fill<T>(
    coalesce: usize,
    first: (u64, Vec<Input<T>>),
    more: &mut impl FnMut() -> Option<(u64, Vec<Input<T>>)>,
) -> (u64, Vec<Input<T>>) {
    let (mut now, mut inputs) = first;
    while inputs.len() < coalesce {
        let Some((later, more_inputs)) = more() else {
            break;
        };
        now = later;
        inputs.extend(more_inputs);
    }
    (now, inputs)
}

/// Who is to blame for a rejected frame: only the sender of bytes that are malformed or
/// whose signature fails is penalised; everything that a valid device signature backs
/// (retired keys) or that depends on our own state
/// (unknown key, capacity) is ignored.
pub fn blame(e: &VerifyError) -> Verdict {
    match e {
        VerifyError::Decode(_)
        | VerifyError::BadSignature
        | VerifyError::KeyCommitmentMismatch
        | VerifyError::Unexpected => Verdict::Reject,
        _ => Verdict::Ignore,
    }
}

/// Every source, in [`source_index`] order.
const SOURCES: [Source; 4] = [Source::Radio, Source::Gossip, Source::Sync, Source::Escrow];

fn source_index(s: Source) -> usize {
    match s {
        Source::Radio => 0,
        Source::Gossip => 1,
        Source::Sync => 2,
        Source::Escrow => 3,
    }
}

fn source_str(s: Source) -> &'static str {
    match s {
        Source::Radio => "radio",
        Source::Gossip => "gossip",
        Source::Sync => "sync",
        Source::Escrow => "escrow",
    }
}

fn shard_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The observation used when replaying stored establishment frames.
fn quiet_rx() -> Observation {
    Observation::relayed(0)
}
