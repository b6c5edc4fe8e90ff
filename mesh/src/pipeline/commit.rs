//! The commit stage: the trust decision for each verified outcome, the batch's writes in
//! one redb transaction (tables opened once), its commit, then the witness receipts for
//! what it committed. Also the other writers: peers' receipts and proofs, operator
//! actions. Suite-2 (compact) outcomes: [`compact`].

mod compact;

use std::sync::Arc;
use std::time::Instant;

use slope_node::trust::{ReceiptError, VerifiedReceipt};
use slope_node::verifier::{
    DivergenceEvidence, Outcome, VerifiedAttestation, VerifyError, build_proof,
    verify_divergence_proof,
};
use slope_proto::batch::Entry as BatchEntry;
use slope_proto::limits::{MAX_BATCH_ENTRIES, MAX_RECEIPT_BATCH};
use slope_proto::{DeviceId, Message, Observation, Receipt, ReceiptBatch, WitnessId};

use super::pending::Pending;
use super::window::{Waiting, Window};
use super::{
    Effect, Failed, Output, Verdict, Verified, blame, parse_receipt_message, quiet_rx,
    receipt_message,
};
use crate::identity::Identity;
use crate::lineage::{Entry, Source};
use crate::metrics::{Metrics, kind};
use crate::store::{Batch, DeviceRecord, FrameRef, QuarantineInfo, Store, StoreError};
use crate::trust::{Admission, Decide, Decision, Reasons};

/// A receipt to sign once the batch is committed.
struct PendingReceipt {
    device: DeviceId,
    seq: u32,
    digest: slope_proto::Digest,
    rx: Observation,
}

/// What a decision is recorded with in the gateway lineage: a newly committed
/// observation (its digest and source), a suite-1 attestation or a compact one.
struct Observed {
    digest: [u8; 32],
    source: Source,
    compact: bool,
}

/// A divergence proof of either suite (by its suite byte: `01 02 04 …` is suite 2),
/// checked with no other state under the verifier's clock bound: its suite, the device,
/// and the position (suite 1) or interval (suite 2) its two events conflict at.
pub(crate) fn check_proof(bytes: &[u8]) -> Option<(u8, DeviceId, u32)> {
    if super::compact::is_compact(bytes) {
        slope_node::compact::verify_proof(bytes, compact::max_skew_ms())
            .ok()
            .map(|d| (2, d.device, d.interval))
    } else {
        verify_divergence_proof(bytes)
            .ok()
            .map(|d| (1, d.device, d.seq))
    }
}

/// The commit stage's state: everything but the verifier.
pub(super) struct Stage {
    pub(super) store: Arc<Store>,
    decide: Box<dyn Decide>,
    identity: Identity,
    witness: WitnessId,
    metrics: Metrics,
    frames_per_device: u32,
    /// The trust engine stage, and the policy it is (re)opened with.
    engine: Option<crate::trust::Engine>,
    engine_policy: Option<slope_node::trust::Policy>,
    /// Peer gateways whose receipts count (key, zone), from the config.
    listed: Vec<([u8; 32], u16)>,
    /// Peers' receipts waiting for their attestation.
    pending: Pending<VerifiedReceipt>,
    /// Attestations committed whose decision waits for their witnesses' receipts.
    pub(super) window: Window,
    /// The receipts taken from `pending` by the group being committed: held again if
    /// its commit fails (its decisions are undone, the receipts must not be lost).
    taken: Vec<(super::pending::Key, VerifiedReceipt)>,
    /// Where operator actions the stage signs itself read the time.
    pub(super) clock: crate::clock::Shared,
    /// Whether [`Self::set_receipts`] was called (until then the registry is left as
    /// the lineage has it).
    configured: bool,
    /// Device records the store may hold before a proof about a device this gateway
    /// never saw is left alone (the verifier's `max_devices`): each such proof would
    /// otherwise add a record, and anyone can mint conflicting frames of a new identity.
    pub(super) device_bound: u64,
}

impl Stage {
    pub(super) fn new(
        store: Arc<Store>,
        decide: Box<dyn Decide>,
        identity: Identity,
        metrics: Metrics,
        frames_per_device: u32,
        engine_policy: Option<slope_node::trust::Policy>,
    ) -> Self {
        Self {
            witness: identity.witness_id(),
            store,
            decide,
            identity,
            metrics,
            frames_per_device,
            engine: None,
            engine_policy,
            listed: Vec::new(),
            pending: Pending::new(0, 0),
            window: Window::default(),
            taken: Vec::new(),
            configured: false,
            clock: crate::clock::system(),
            device_bound: u64::MAX,
        }
    }

    /// Sets the witness list and the pending-receipt bounds; registers the list with
    /// the engine.
    pub(super) fn set_receipts(&mut self, r: super::Receipts) -> Result<(), StoreError> {
        self.listed = r.witnesses;
        self.pending = Pending::new(r.pending, r.pending_ttl_ms);
        self.window.wait_ms = r.wait_ms;
        self.window.max = r.waiting;
        self.configured = true;
        let out = self.register_witnesses();
        if out.is_err() {
            // The engine registered them in memory; its lineage did not commit.
            self.rollback_engine();
        }
        out
    }

    /// Runs one of the stage's own write transactions (`write` begins, fills and
    /// commits it). The trust engine takes a decision or an operator action into its
    /// memory before the transaction commits; if anything fails, the engine is reopened
    /// from its committed lineage, so that it is never ahead of the store (and never
    /// writes, at the next commit, records after a hole). The ingest path does the same
    /// through [`super::Pipeline::commit_group`] (which also rebuilds the verifier).
    fn staged<R>(
        &mut self,
        write: impl FnOnce(&mut Self) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.ensure_engine()?;
        let out = write(self);
        if out.is_err() {
            self.rollback_engine();
        }
        out
    }

    /// With a trust engine configured, nothing is decided or written without it: an
    /// engine lost to a failed reopen (after a failed commit) is reopened first, and
    /// while that fails the write fails too (fail closed) instead of falling back to
    /// the built-in policy.
    fn ensure_engine(&mut self) -> Result<(), StoreError> {
        if self.engine_policy.is_some() && self.engine.is_none() {
            self.reopen_engine()?;
        }
        Ok(())
    }

    /// Reopens the engine from the committed lineage after a failed write (see
    /// [`Self::staged`]).
    fn rollback_engine(&mut self) {
        if self.engine.is_none() {
            return;
        }
        tracing::error!("write failed; reopening the trust engine from the store");
        if let Err(e) = self.reopen_engine() {
            tracing::error!(error = %e, "trust engine not reopened");
        }
    }

    /// Registers the listed witnesses with the engine (and retires those no longer
    /// listed), committed with the engine's records.
    fn register_witnesses(&mut self) -> Result<(), StoreError> {
        let Some(engine) = self.engine.as_mut().filter(|_| self.configured) else {
            return Ok(());
        };
        let previous = self.store.registered_witnesses()?;
        if previous == self.listed {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let registered = match engine.register_witnesses(now, &self.listed, &previous) {
            Ok(r) => r,
            Err(e) => {
                // A lineage begun before the gateway key was its operator: its receipts
                // policy stays as it was; say so.
                tracing::error!(error = %e, "trust engine did not register the configured witnesses");
                return Ok(());
            }
        };
        let mut txn = self.store.begin()?;
        txn.put_engine_lineage(engine.pending())?;
        txn.put_registered_witnesses(&registered)?;
        txn.commit()
    }

    /// Peer gateways whose receipts count (key, zone).
    pub(super) fn listed(&self) -> &[([u8; 32], u16)] {
        &self.listed
    }

    /// Receipts held for attestations not yet here.
    pub(super) fn pending_receipts(&self) -> usize {
        self.pending.len()
    }

    /// (Re)opens the trust engine from its committed lineage.
    pub(super) fn reopen_engine(&mut self) -> Result<(), StoreError> {
        self.engine = None;
        if let Some(policy) = self.engine_policy.clone() {
            let engine = crate::trust::Engine::open(
                self.store.clone(),
                self.identity.signing_key(),
                policy,
                0,
            )
            .map_err(|e| StoreError::Db(e.to_string()))?;
            let mut txn = self.store.begin()?;
            txn.put_engine_lineage(engine.pending())?;
            txn.commit()?;
            self.engine = Some(engine);
            if let Err(e) = self.register_witnesses() {
                // Registered in memory, not committed: no engine ahead of the store.
                self.engine = None;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Decides and commits a group of verified batches in ONE write transaction (one
    /// fsync), then signs the receipts of all of them: nothing of the group is receipted,
    /// forwarded or reported before the commit returned. One output per batch, in order;
    /// if the commit fails, every batch of the group fails (nothing of it was committed).
    pub(super) fn commit_group<T>(
        &mut self,
        mut group: Vec<Verified<T>>,
    ) -> Vec<Result<Output<T>, Failed<T>>> {
        let cpu = crate::metrics::thread_cpu_seconds();
        self.taken.clear();
        let outcomes = self.commit_outcomes(&mut group);
        if outcomes.is_err() {
            // Nothing of the group was committed: the receipts its decisions took wait
            // for their attestation again (it comes back when the frame is re-sent).
            let now = group.iter().map(|v| v.now).max().unwrap_or(0);
            for (key, r) in std::mem::take(&mut self.taken) {
                let slot = r.slot();
                self.pending.hold(now, key, slot, r);
            }
        }
        self.taken.clear();
        if let (Some(a), Some(b)) = (cpu, crate::metrics::thread_cpu_seconds()) {
            self.metrics.commit_cpu_seconds.inc_by((b - a).max(0.0));
        }
        match outcomes {
            Ok(per_batch) => group
                .into_iter()
                .zip(per_batch)
                .map(|(v, (verdicts, effects))| {
                    Ok(Output {
                        verdicts: v.inputs.into_iter().map(|i| i.tag).zip(verdicts).collect(),
                        effects,
                    })
                })
                .collect(),
            Err(error) => {
                let mut out = Vec::with_capacity(group.len());
                let mut first = Some(error);
                for v in group {
                    // The error is not `Clone`: the first batch carries it, the others
                    // say they were in the same transaction.
                    let error = first.take().unwrap_or_else(|| {
                        StoreError::Db("group commit failed (see the first batch)".into())
                    });
                    out.push(Err(Failed {
                        error,
                        tags: v.inputs.into_iter().map(|i| i.tag).collect(),
                    }));
                }
                out
            }
        }
    }

    /// Decides and commits a verified batch, then signs its receipts.
    pub(super) fn commit<T>(&mut self, v: Verified<T>) -> Result<Output<T>, Failed<T>> {
        let mut out = self.commit_group(vec![v]);
        match out.pop() {
            Some(r) => r,
            // `commit_group` returns one result per batch.
            None => unreachable!("one batch in, one result out"),
        }
    }

    /// The group's writes, one transaction, its commit, then the receipts; verdicts and
    /// effects per batch.
    #[allow(clippy::type_complexity)]
    fn commit_outcomes<T>(
        &mut self,
        group: &mut [Verified<T>],
    ) -> Result<Vec<(Vec<Verdict>, Vec<Effect>)>, StoreError> {
        self.ensure_engine()?;
        let mut pending = Vec::new();
        let mut stamps = Vec::new();
        let mut per_batch = Vec::with_capacity(group.len());
        let mut txn = self.store.begin()?;
        {
            let mut batch = txn.batch()?;
            self.window.begin();
            // Decisions whose receipt window is over come first: their attestations
            // were committed before this group's.
            let latest = group.iter().map(|v| v.now).max().unwrap_or(0);
            self.decide_waiting(&mut batch, latest, false)?;
            for v in group.iter_mut() {
                let mut effects = Vec::new();
                let mut verdicts = Vec::with_capacity(v.inputs.len());
                for (input, outcome) in v.inputs.iter().zip(std::mem::take(&mut v.outcomes)) {
                    if super::compact::is_compact(&input.frame) {
                        let verdict = self.compact_input(
                            &mut batch,
                            v.now,
                            outcome,
                            input,
                            &mut pending,
                            &mut stamps,
                            &mut effects,
                        )?;
                        verdicts.push(verdict);
                        continue;
                    }
                    let verdict = self.apply(
                        &mut batch,
                        v.now,
                        outcome,
                        input.source,
                        input.rx,
                        &mut pending,
                        &mut effects,
                    )?;
                    verdicts.push(verdict);
                }
                for outcome in std::mem::take(&mut v.released) {
                    self.apply(
                        &mut batch,
                        v.now,
                        outcome,
                        Source::Escrow,
                        quiet_rx(),
                        &mut pending,
                        &mut effects,
                    )?;
                }
                per_batch.push((verdicts, effects));
            }
            self.decide_waiting(&mut batch, latest, true)?;
            self.store_window(&mut batch)?;
        }
        if let Some(e) = &self.engine {
            txn.put_engine_lineage(e.pending())?;
        }
        let t = Instant::now();
        txn.commit()?;
        self.metrics
            .commit_seconds
            .observe(t.elapsed().as_secs_f64());
        self.metrics.group_batches.observe(group.len() as f64);
        // Committed: now sign and publish the group's receipts, one receipt batch per
        // (up to 256) receipts, stamped with the latest batch's time; they go out with
        // the group's last batch.
        self.metrics.receipts_signed.inc_by(pending.len() as u64);
        let now = group.iter().map(|v| v.now).max().unwrap_or(0);
        if let Some((_, effects)) = per_batch.last_mut() {
            effects.extend(compact::stamp(&self.identity, stamps));
            effects.extend(
                sign_receipts(&self.identity, now, pending)
                    .into_iter()
                    .map(Effect::PublishReceipt),
            );
        }
        Ok(per_batch)
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        batch: &mut Batch<'_>,
        now: u64,
        outcome: Outcome,
        source: Source,
        rx: Observation,
        pending: &mut Vec<PendingReceipt>,
        effects: &mut Vec<Effect>,
    ) -> Result<Verdict, StoreError> {
        let label = match &outcome {
            Outcome::Extended(_) => "extended",
            Outcome::Historic(_) => "historic",
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::Unlinked(_) => "unlinked",
            Outcome::Escrowed(_) => "escrowed",
            Outcome::Divergence(_) => "divergence",
            Outcome::Rejected(_) => "rejected",
            _ => "other",
        };
        self.metrics.outcomes.get_or_create(&kind(label)).inc();
        Ok(match outcome {
            Outcome::Extended(att) => self.extended(batch, now, att, source, pending, effects)?,
            Outcome::Historic(att) => {
                let stored = batch.frame(att.device(), att.seq())?;
                match stored {
                    Some(s) if s.digest != att.digest().0 => {
                        match self.prove_stored(batch, att.device(), &s.frame, att.frame())? {
                            Some(proof) => {
                                let device = *att.device();
                                self.quarantine(
                                    batch,
                                    now,
                                    &device,
                                    att.seq(),
                                    &proof,
                                    effects,
                                    false,
                                )?;
                                effects.push(Effect::PublishProof(proof));
                                Verdict::Accept
                            }
                            None => Verdict::Ignore,
                        }
                    }
                    _ => Verdict::Ignore,
                }
            }
            Outcome::Duplicate {
                device,
                seq,
                digest,
            } => {
                if source == Source::Radio {
                    if let Some(mut rec) = batch.device(&device)? {
                        if rec.quarantine.is_none() && rec.witnessed_seq.is_none_or(|w| w < seq) {
                            // Heard on our radio after it arrived by gossip: witness it.
                            rec.witnessed_seq = Some(seq);
                            self.observe_radio(&mut rec, &rx, seq);
                            batch.put_device(&device, &rec)?;
                            pending.push(PendingReceipt {
                                device,
                                seq,
                                digest,
                                rx,
                            });
                        }
                    }
                }
                Verdict::Ignore
            }
            // Validly signed by the device but not linking with what we hold: the other
            // branch of a fork whose sibling we have not heard. The verifier holds it;
            // forwarding it lets the gateway that holds the sibling build the proof.
            Outcome::Unlinked(_) => Verdict::Accept,
            Outcome::Escrowed(missing) => {
                effects.push(Effect::Missing(missing));
                Verdict::Ignore
            }
            Outcome::Divergence(ev) => {
                if let Some(engine) = &mut self.engine {
                    if let Err(e) = engine.divergence(now, &ev) {
                        tracing::warn!(error = %e, "trust engine refused local divergence evidence");
                    }
                }
                let DivergenceEvidence {
                    device, seq, proof, ..
                } = *ev;
                self.quarantine(batch, now, &device, seq, &proof, effects, true)?;
                effects.push(Effect::PublishProof(proof));
                Verdict::Accept
            }
            Outcome::Rejected(e) => {
                self.metrics
                    .dropped
                    .get_or_create(&kind(reject_label(&e)))
                    .inc();
                blame(&e)
            }
            Outcome::Compact(slope_node::verifier::compact::Outcome::Event(e)) => {
                self.compact_event(batch, now, e, effects)?;
                Verdict::Ignore
            }
            _ => Verdict::Ignore,
        })
    }

    fn extended(
        &mut self,
        batch: &mut Batch<'_>,
        now: u64,
        att: VerifiedAttestation,
        source: Source,
        pending: &mut Vec<PendingReceipt>,
        effects: &mut Vec<Effect>,
    ) -> Result<Verdict, StoreError> {
        let device = *att.device();
        let mut rec = batch
            .device(&device)?
            .unwrap_or_else(|| DeviceRecord::new(now, att.seq()));
        if rec.quarantine.is_some() {
            return Ok(Verdict::Ignore);
        }
        let record = FrameRef {
            seq: att.seq(),
            digest: &att.digest().0,
            frame: att.frame(),
            rx: att.rx(),
            source,
        };
        if !batch.put_frame(&device, &record, self.frames_per_device)? {
            // Already durable (the verifier forgot it, e.g. beyond its window after a
            // restart): identical is a duplicate, different is a fork.
            if let Some(stored) = batch.frame(&device, att.seq())? {
                if stored.digest != att.digest().0 {
                    if let Some(proof) =
                        self.prove_stored(batch, &device, &stored.frame, att.frame())?
                    {
                        self.quarantine(batch, now, &device, att.seq(), &proof, effects, false)?;
                        effects.push(Effect::PublishProof(proof));
                        return Ok(Verdict::Accept);
                    }
                }
            }
            return Ok(Verdict::Ignore);
        }
        if att.event().is_establishment() {
            batch.put_establishment(&device, att.event().epoch(), att.frame())?;
        }
        if att.advanced_head() || rec.depth == 0 {
            rec.head_seq = att.seq();
            rec.head_digest = att.digest().0;
            rec.epoch = att.event().epoch();
        }
        rec.depth = rec.depth.saturating_add(1);
        rec.last_seen_ms = now;
        if source == Source::Radio {
            rec.witnessed_seq = Some(rec.witnessed_seq.map_or(att.seq(), |w| w.max(att.seq())));
            self.observe_radio(&mut rec, att.rx(), att.seq());
            pending.push(PendingReceipt {
                device,
                seq: att.seq(),
                digest: *att.digest(),
                rx: *att.rx(),
            });
            effects.push(Effect::PublishAttestation(att.frame().to_vec()));
        }
        // Heard on our radio: committed and receipted now, decided when the receipt
        // window is over (a frame from gossip waited before it was verified). A later
        // frame of a device with one waiting waits behind it (decided in order).
        let wait = source == Source::Radio || self.window.holds(&device.0);
        if self.engine.is_some() && self.window.wait_ms > 0 && wait {
            batch.put_device(&device, &rec)?;
            self.window.push(now, source, att);
            return Ok(Verdict::Accept);
        }
        self.decide_observed(batch, now, &att, source, &mut rec)?;
        batch.put_device(&device, &rec)?;
        Ok(Verdict::Accept)
    }

    /// The trust decision on a committed attestation, with the peers' receipts held
    /// for it, recorded as its `Observed` lineage record (at `now`, the time of the
    /// batch that committed it).
    fn decide_observed(
        &mut self,
        batch: &mut Batch<'_>,
        now: u64,
        att: &VerifiedAttestation,
        source: Source,
        rec: &mut DeviceRecord,
    ) -> Result<(), StoreError> {
        let device = *att.device();
        let receipts = self.take_held_receipts(&super::window::key_of(att), rec);
        let engine = self.engine.as_mut().map(|e| {
            e.attestation(now, att, &receipts)
                .unwrap_or_else(|e| Decision {
                    // Fail closed: no decision without its lineage record.
                    admission: Admission::Deferred,
                    reasons: Reasons::text(format!("trust engine: {e}")),
                    grant: None,
                })
        });
        let observed = Some(Observed {
            digest: att.digest().0,
            source,
            compact: false,
        });
        self.decide_and_record(batch, now, &device, rec, att.seq(), engine, observed)
    }

    /// Decides the waiting attestations whose window is over at `now` (with `early`:
    /// the oldest beyond the bound instead), in the order they were committed.
    fn decide_waiting(
        &mut self,
        batch: &mut Batch<'_>,
        now: u64,
        early: bool,
    ) -> Result<usize, StoreError> {
        let mut n = 0;
        loop {
            let next = if early {
                self.window.pop_over()
            } else {
                self.window.pop_due(now)
            };
            let Some(Waiting {
                now: then,
                source,
                att,
                ..
            }) = next
            else {
                break;
            };
            n += 1;
            let device = *att.device();
            // A committed attestation has its device record (a device is never
            // removed); a record missing means nothing to decide on.
            let Some(mut rec) = batch.device(&device)? else {
                continue;
            };
            self.decide_observed(batch, then, &att, source, &mut rec)?;
            batch.put_device(&device, &rec)?;
        }
        if n > 0 {
            self.metrics
                .decisions
                .get_or_create(&kind(if early { "early" } else { "waited" }))
                .inc_by(n as u64);
        }
        Ok(n)
    }

    /// Writes what changed in the window into this transaction.
    fn store_window(&mut self, batch: &mut Batch<'_>) -> Result<(), StoreError> {
        for (group, waiting) in self.window.take_dirty() {
            batch.put_undecided(group, &waiting)?;
        }
        self.metrics
            .queue_depth
            .get_or_create(&kind("undecided"))
            .set(self.window.len() as i64);
        Ok(())
    }

    /// Decides, in one transaction of their own, the waiting attestations whose window
    /// is over at `now` (the node calls it when no group commit does). Returns how many.
    pub(super) fn decide_due(&mut self, now: u64) -> Result<usize, StoreError> {
        if self.window.due_in(now) != Some(0) {
            return Ok(0);
        }
        self.taken.clear();
        let out = self.ensure_engine().and_then(|()| self.write_due(now));
        if out.is_err() {
            // Retried in a second (a group commit may take them before).
            self.window.retry_at = now.saturating_add(1000);
            // Undone: the receipts its decisions took wait again.
            for (key, r) in std::mem::take(&mut self.taken) {
                let slot = r.slot();
                self.pending.hold(now, key, slot, r);
            }
        }
        self.taken.clear();
        out
    }

    fn write_due(&mut self, now: u64) -> Result<usize, StoreError> {
        let mut txn = self.store.begin()?;
        let n = {
            let mut batch = txn.batch()?;
            self.window.begin();
            let n = self.decide_waiting(&mut batch, now, false)?;
            self.store_window(&mut batch)?;
            n
        };
        if let Some(e) = &self.engine {
            txn.put_engine_lineage(e.pending())?;
        }
        txn.commit()?;
        Ok(n)
    }

    /// A divergence proof for two conflicting frames of `device`, built from the
    /// establishment frames in the store alone (`verifier::build_proof`), so that it
    /// does not depend on what the verifier still holds in memory.
    fn prove_stored(
        &self,
        batch: &Batch<'_>,
        device: &DeviceId,
        a: &[u8],
        b: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let establishments = batch.establishments(device)?;
        let refs: Vec<&[u8]> = establishments.iter().map(Vec::as_slice).collect();
        Ok(build_proof(&refs, a, b).ok())
    }

    /// The peers' receipts held for the event `key` (none without a trust engine),
    /// counted as witnesses in the device record and as `decided_with` in the metrics.
    fn take_held_receipts(
        &mut self,
        key: &super::pending::Key,
        rec: &mut DeviceRecord,
    ) -> Vec<VerifiedReceipt> {
        let receipts = match self.engine {
            Some(_) if !self.pending.is_empty() => self.pending.take(key),
            _ => Vec::new(),
        };
        for r in &receipts {
            rec.add_witness(r.body().witness.0, r.body().observed.rssi_dbm, key.1);
            self.taken.push((*key, r.clone()));
        }
        if !receipts.is_empty() {
            self.metrics
                .receipts_in
                .get_or_create(&kind("decided_with"))
                .inc_by(receipts.len() as u64);
        }
        receipts
    }

    /// This gateway's own reception of position `seq`: the RF profile, and this
    /// gateway counted once as its witness.
    fn observe_radio(&self, rec: &mut DeviceRecord, rx: &Observation, seq: u32) {
        rec.rf.observe(rx);
        rec.last_rssi = rx.rssi_dbm;
        rec.add_witness(self.witness.0, rx.rssi_dbm, seq);
    }

    /// Decides (the engine's decision `engine`, unless the mesh's own state overrides
    /// it) and records the decision: with `observed` (digest, source) as the one
    /// `Observed` lineage record of a newly committed attestation, else as `Decided`.
    #[allow(clippy::too_many_arguments)]
    fn decide_and_record(
        &self,
        batch: &mut Batch<'_>,
        now: u64,
        device: &DeviceId,
        rec: &mut DeviceRecord,
        seq: u32,
        engine: Option<Decision>,
        observed: Option<Observed>,
    ) -> Result<(), StoreError> {
        // The engine decides, except where the operator pinned a scope or a proof
        // quarantined the device (both are the mesh's own durable state).
        // An engine quarantine the operator released in the mesh but the engine could
        // not record (a lineage older than the gateway key as operator) yields too.
        let decision = match engine {
            Some(d)
                if rec.pinned.is_none()
                    && rec.quarantine.is_none()
                    && d.admission != Admission::Quarantined =>
            {
                d
            }
            _ => self.decide.decide(rec, now),
        };
        self.metrics
            .admissions
            .get_or_create(&kind(decision.admission.as_str()))
            .inc();
        let entry = match observed {
            Some(Observed {
                digest,
                source,
                compact: true,
            }) => Entry::Compact {
                device: device.0,
                interval: seq,
                digest,
                source,
                admission: decision.admission,
                reasons: decision.reasons.clone(),
            },
            Some(Observed { digest, source, .. }) => Entry::Observed {
                device: device.0,
                seq,
                digest,
                source,
                admission: decision.admission,
                reasons: decision.reasons.clone(),
            },
            None => Entry::Decided {
                device: device.0,
                seq,
                admission: decision.admission,
                reasons: decision.reasons.clone(),
            },
        };
        batch.append(now, entry)?;
        let scope_changed = rec.grant.map(|g| g.scope) != decision.grant.map(|g| g.scope);
        if let Some(grant) = decision.grant {
            if scope_changed {
                batch.append(
                    now,
                    Entry::Granted {
                        device: device.0,
                        grant,
                    },
                )?;
            }
        }
        rec.admission = decision.admission;
        rec.reasons = decision.reasons;
        rec.grant = decision.grant;
        Ok(())
    }

    /// Quarantines `device` with a proof the caller verified; revokes its grant.
    #[allow(clippy::too_many_arguments)]
    fn quarantine(
        &mut self,
        batch: &mut Batch<'_>,
        now: u64,
        device: &DeviceId,
        seq: u32,
        proof: &[u8],
        effects: &mut Vec<Effect>,
        engine_told: bool,
    ) -> Result<bool, StoreError> {
        if !engine_told {
            if let Some(engine) = &mut self.engine {
                if let Err(e) = engine.proof(now, proof) {
                    tracing::warn!(error = %e, "trust engine refused a verified proof");
                }
            }
        }
        let mut rec = batch
            .device(device)?
            .unwrap_or_else(|| DeviceRecord::new(now, seq));
        if rec.quarantine.is_some() {
            return Ok(false);
        }
        let proof_digest = *blake3::hash(proof).as_bytes();
        let index = batch.append(
            now,
            Entry::Quarantined {
                device: device.0,
                seq,
                proof_digest,
            },
        )?;
        if rec.grant.take().is_some() {
            batch.append(
                now,
                Entry::Revoked {
                    device: device.0,
                    reason: format!("divergence at position {seq}"),
                },
            )?;
        }
        rec.quarantine = Some(QuarantineInfo {
            seq,
            proof_digest,
            lineage_index: index,
        });
        rec.admission = Admission::Quarantined;
        rec.reasons = Reasons::text(format!("divergence proof at position {seq}, verified here"));
        batch.put_divergence(device, proof)?;
        batch.put_device(device, &rec)?;
        self.metrics.divergences.inc();
        self.metrics
            .admissions
            .get_or_create(&kind(Admission::Quarantined.as_str()))
            .inc();
        effects.push(Effect::Quarantined(*device));
        tracing::warn!(device = %hex::encode(device.0), seq, "divergence: device quarantined");
        Ok(true)
    }

    /// A divergence proof from gossip or sync: verified here, independently of who sent
    /// it, before anything is quarantined.
    pub(super) fn ingest_proof(
        &mut self,
        now: u64,
        bytes: &[u8],
    ) -> Result<(Verdict, Vec<Effect>), StoreError> {
        let Some((suite, device, seq)) = check_proof(bytes) else {
            return Ok((Verdict::Reject, Vec::new()));
        };
        let compact = suite == 2;
        let known = self.store.device(&device)?;
        if known.as_ref().is_some_and(|r| r.quarantine.is_some()) {
            return Ok((Verdict::Ignore, Vec::new()));
        }
        // At the device bound, a proof about a device never seen here is not stored and
        // not forwarded (its gateways quarantine it; the flood stops here), and counted.
        if known.is_none() && self.store.device_count()? >= self.device_bound {
            self.metrics
                .dropped
                .get_or_create(&kind("proof_unseen_device"))
                .inc();
            return Ok((Verdict::Ignore, Vec::new()));
        }
        self.staged(|s| {
            let mut effects = Vec::new();
            let mut txn = s.store.begin()?;
            let taken = if compact {
                // Only under the witness policy (see `quarantine_compact`).
                let mut batch = txn.batch()?;
                s.quarantine_compact(&mut batch, now, &device, seq, bytes, &mut effects)?
            } else {
                let mut batch = txn.batch()?;
                s.quarantine(&mut batch, now, &device, seq, bytes, &mut effects, false)?;
                true
            };
            if let Some(engine) = &s.engine {
                txn.put_engine_lineage(engine.pending())?;
            }
            txn.commit()?;
            let verdict = if taken {
                Verdict::Accept
            } else {
                Verdict::Ignore
            };
            Ok((verdict, effects))
        })
    }

    /// Another gateway's witness receipt or receipt batch (see
    /// [`super::receipt_message`]): one signature check per message; only listed
    /// witnesses count. Each receipt whose attestation is committed is counted in the
    /// device record (`late`); each one whose attestation has not arrived waits for it
    /// in the pending map and goes to the trust engine with it.
    pub(super) fn ingest_receipt(&mut self, now: u64, bytes: &[u8]) -> Result<Verdict, StoreError> {
        let Some((key, frame)) = parse_receipt_message(bytes) else {
            return Ok(Verdict::Reject);
        };
        let Ok(message) = slope_proto::decode(frame) else {
            return Ok(Verdict::Reject);
        };
        let named = match &message {
            Message::Receipt(r) => r.body().witness,
            Message::ReceiptBatch(b) => b.witness(),
            _ => return Ok(Verdict::Reject),
        };
        // The key in the message must be the witness's own.
        if slope_proto::crypto::witness_id(&key) != named {
            return Ok(Verdict::Reject);
        }
        if named == self.witness {
            return Ok(Verdict::Ignore);
        }
        if !self.listed.iter().any(|(k, _)| *k == key) {
            self.metrics
                .dropped
                .get_or_create(&kind("receipt_unlisted"))
                .inc();
            return Ok(Verdict::Ignore);
        }
        // Verified once, by the engine's registry when there is one (its receipts are
        // what decisions take), else with the listed key.
        let (bodies, verified): (Vec<Receipt>, Vec<Option<VerifiedReceipt>>) = match &self.engine {
            Some(engine) => match engine.verify_receipts(&message) {
                Some(Ok(v)) => (
                    v.iter().map(|r| r.body().clone()).collect(),
                    v.into_iter().map(Some).collect(),
                ),
                Some(Err(ReceiptError::BadSignature(_))) | None => {
                    return Ok(Verdict::Reject);
                }
                Some(Err(_)) => {
                    self.metrics
                        .dropped
                        .get_or_create(&kind("receipt_unlisted"))
                        .inc();
                    return Ok(Verdict::Ignore);
                }
            },
            None => {
                let Ok(vk) = slope_proto::crypto::verifying_key(&key) else {
                    return Ok(Verdict::Reject);
                };
                let bodies: Vec<Receipt> = match &message {
                    Message::Receipt(r) if r.verify_witness(&vk).is_ok() => vec![r.body().clone()],
                    Message::ReceiptBatch(b) if b.verify_witness(&vk).is_ok() => {
                        b.receipts().collect()
                    }
                    _ => return Ok(Verdict::Reject),
                };
                let n = bodies.len();
                (bodies, (0..n).map(|_| None).collect())
            }
        };
        let mut late = Vec::new();
        for (body, verified) in bodies.iter().zip(verified) {
            // Committed but still in its receipt window: held, it is decided with it.
            let waiting =
                verified.is_some() && self.window.contains(&(body.device, body.seq, body.event));
            let committed = if waiting {
                None
            } else {
                self.committed_device(body)?
            };
            match committed {
                Some(device) => late.push((device, body)),
                None => {
                    if let Some(v) = verified {
                        let key = (body.device, body.seq, body.event);
                        let dropped = self.pending.hold(now, key, v.slot(), v);
                        self.metrics
                            .receipts_in
                            .get_or_create(&kind("pending"))
                            .inc();
                        if dropped > 0 {
                            self.metrics
                                .dropped
                                .get_or_create(&kind("pending_receipt"))
                                .inc_by(dropped as u64);
                        }
                    }
                }
            }
        }
        self.metrics
            .queue_depth
            .get_or_create(&kind("pending_receipts"))
            .set(self.pending.len() as i64);
        if late.is_empty() {
            return Ok(Verdict::Accept);
        }
        self.metrics
            .receipts_in
            .get_or_create(&kind("late"))
            .inc_by(late.len() as u64);
        let mut txn = self.store.begin()?;
        {
            let mut batch = txn.batch()?;
            for (device, body) in late {
                let Some(mut rec) = batch.device(&device)? else {
                    continue;
                };
                if rec.quarantine.is_some() {
                    continue;
                }
                // Counted and recorded once per (witness, position): a receipt heard
                // again (re-gossiped, or re-signed in another batch) changes nothing,
                // so a peer cannot grow this lineage by repeating itself.
                if !rec.add_witness(body.witness.0, body.observed.rssi_dbm, body.seq) {
                    self.metrics
                        .dropped
                        .get_or_create(&kind("receipt_repeated"))
                        .inc();
                    continue;
                }
                batch.append(
                    now,
                    Entry::Witnessed {
                        device: device.0,
                        seq: body.seq,
                        witness: body.witness.0,
                    },
                )?;
                if self.engine.is_none() {
                    let seq = body.seq;
                    self.decide_and_record(&mut batch, now, &device, &mut rec, seq, None, None)?;
                }
                batch.put_device(&device, &rec)?;
            }
        }
        txn.commit()?;
        Ok(Verdict::Accept)
    }

    /// The device whose committed frame a receipt names, if that frame is committed.
    fn committed_device(&self, body: &Receipt) -> Result<Option<DeviceId>, StoreError> {
        for device in self.store.devices_with_prefix(&body.device.0)? {
            if let Some(f) = self.store.frame(&device, body.seq)? {
                if slope_proto::Digest(f.digest).link() == body.event {
                    return Ok(Some(device));
                }
            }
        }
        Ok(None)
    }

    /// Operator release (see [`super::Pipeline::release`]): the store and the engine,
    /// one transaction; a failed one leaves neither changed ([`Self::staged`]).
    pub(super) fn release(
        &mut self,
        now: u64,
        device: &DeviceId,
        note: String,
    ) -> Result<bool, StoreError> {
        self.staged(|s| s.write_release(now, device, note))
    }

    fn write_release(
        &mut self,
        now: u64,
        device: &DeviceId,
        note: String,
    ) -> Result<bool, StoreError> {
        let mut txn = self.store.begin()?;
        {
            let mut batch = txn.batch()?;
            let Some(mut rec) = batch.device(device)? else {
                return Ok(false);
            };
            if rec.quarantine.take().is_none() {
                return Ok(false);
            }
            if let Some(engine) = &mut self.engine {
                match engine.release(now, device, &note) {
                    Ok(true) => {}
                    Ok(false) => {}
                    // A lineage begun before the gateway key was its operator: the mesh's
                    // own record releases the device (see `decide_and_record`).
                    Err(e) => {
                        tracing::warn!(error = %e, "trust engine did not record the release")
                    }
                }
            }
            batch.append(
                now,
                Entry::Released {
                    device: device.0,
                    note,
                },
            )?;
            rec.admission = Admission::Deferred;
            rec.reasons = Reasons::text("released from quarantine by the operator");
            batch.remove_divergence(device)?;
            batch.put_device(device, &rec)?;
        }
        if let Some(engine) = &self.engine {
            txn.put_engine_lineage(engine.pending())?;
        }
        txn.commit()?;
        Ok(true)
    }

    /// Operator: pins (or with `None` unpins) the scope of `device`; a failed write
    /// leaves neither the store nor the engine changed ([`Self::staged`]).
    pub(super) fn pin(
        &mut self,
        now: u64,
        device: &DeviceId,
        scope: Option<crate::trust::Scope>,
        note: String,
    ) -> Result<bool, StoreError> {
        self.staged(|s| s.write_pin(now, device, scope, note))
    }

    fn write_pin(
        &mut self,
        now: u64,
        device: &DeviceId,
        scope: Option<crate::trust::Scope>,
        note: String,
    ) -> Result<bool, StoreError> {
        let mut txn = self.store.begin()?;
        {
            let mut batch = txn.batch()?;
            let Some(mut rec) = batch.device(device)? else {
                return Ok(false);
            };
            rec.pinned = scope;
            batch.append(
                now,
                Entry::Pinned {
                    device: device.0,
                    scope,
                    note,
                },
            )?;
            let seq = rec.head_seq;
            self.decide_and_record(&mut batch, now, device, &mut rec, seq, None, None)?;
            batch.put_device(device, &rec)?;
        }
        txn.commit()?;
        Ok(true)
    }
}

/// Signs the witness receipts of a committed batch: entries in the wire order (by
/// device, position, event; one per event), [`MAX_BATCH_ENTRIES`] per signed
/// `ReceiptBatch`; the gossip messages ([`receipt_message`]). One signature per batch
/// instead of one per receipt: at 256 entries signing costs about 1/256 of what it did.
fn sign_receipts(identity: &Identity, now: u64, pending: Vec<PendingReceipt>) -> Vec<Vec<u8>> {
    let mut entries: Vec<BatchEntry> = pending
        .iter()
        .map(|p| BatchEntry {
            device: p.device.short(),
            seq: p.seq,
            event: p.digest.link(),
            observed: p.rx,
        })
        .filter(|e| e.observed.check().is_ok())
        .collect();
    entries.sort_by_key(BatchEntry::order_key);
    entries.dedup_by_key(|e| e.order_key());
    let key = identity.signing_key();
    let public = key.verifying_key().to_bytes();
    let mut buf = vec![0u8; MAX_RECEIPT_BATCH];
    let mut out = Vec::new();
    for chunk in entries.chunks(MAX_BATCH_ENTRIES) {
        match ReceiptBatch::sign_into(key, now, chunk.iter().copied(), &mut buf) {
            Ok(n) => out.push(receipt_message(&public, &buf[..n])),
            // Cannot happen for checked, ordered, bounded entries; never sign half.
            Err(e) => tracing::error!(error = %e, "receipt batch not signed"),
        }
    }
    out
}

fn reject_label(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::Decode(_) => "rejected_malformed",
        VerifyError::BadSignature => "rejected_bad_signature",
        VerifyError::UnknownKey => "rejected_unknown_key",
        VerifyError::Capacity => "rejected_capacity",
        VerifyError::EpochLimit => "rejected_epoch_limit",
        _ => "rejected_other",
    }
}
