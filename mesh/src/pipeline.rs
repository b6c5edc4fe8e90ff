//! The one ingest pipeline for frames from the radio, from gossip and from sync:
//! decode → verify (batch ed25519 with one-by-one fallback) → trust decision → commit
//! (one redb transaction per batch) → witness receipt → gossip.
//!
//! Ordering guarantee: [`Pipeline::ingest`] returns gossip verdicts, receipts and proofs
//! only after the batch's commit returned, so nothing this gateway signs or forwards is
//! ahead of its durable state. If the commit fails, the verifier is rebuilt from the
//! store, so memory never runs ahead of disk either.
//!
//! The pipeline is synchronous and owns no socket: the node drives it from its event
//! loop, the benchmark drives it directly.

use std::sync::Arc;
use std::time::Instant;

use slope_node::verifier::{
    DivergenceEvidence, Missing, Outcome, VerifiedAttestation, Verifier, VerifyError, build_proof,
    verify_divergence_proof,
};
use slope_proto::{DeviceId, Observation, Receipt, Signed, WitnessId};

use crate::identity::Identity;
use crate::lineage::{Entry, Source};
use crate::metrics::{Metrics, kind};
use crate::store::{Batch, DeviceRecord, FrameRecord, QuarantineInfo, Store, StoreError};
use crate::trust::{Admission, Decide, Decision};

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

/// A receipt to sign once the batch is committed.
struct PendingReceipt {
    device: DeviceId,
    seq: u32,
    digest: slope_proto::Digest,
    rx: Observation,
}

/// The pipeline.
pub struct Pipeline {
    verifier: Verifier,
    verifier_config: slope_node::verifier::Config,
    store: Arc<Store>,
    decide: Box<dyn Decide>,
    identity: Identity,
    witness: WitnessId,
    metrics: Metrics,
    frames_per_device: u32,
    /// The trust engine stage, and the policy it is (re)opened with.
    engine: Option<crate::trust::Engine>,
    engine_policy: Option<slope_node::trust::Policy>,
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

impl Pipeline {
    /// A pipeline over `store`, with the verifier rebuilt from what the store holds.
    pub fn new(
        store: Arc<Store>,
        verifier_config: slope_node::verifier::Config,
        decide: Box<dyn Decide>,
        identity: Identity,
        metrics: Metrics,
        frames_per_device: u32,
        engine_policy: Option<slope_node::trust::Policy>,
    ) -> Result<Self, StoreError> {
        let witness = identity.witness_id();
        let mut p = Self {
            verifier: Verifier::new(verifier_config),
            verifier_config,
            store,
            decide,
            identity,
            witness,
            metrics,
            frames_per_device,
            engine: None,
            engine_policy,
        };
        p.rebuild()?;
        Ok(p)
    }

    /// The verifier (read-only), for summaries.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Rebuilds the verifier from the store: for every device, its establishment events
    /// and its last `window` frames. (The verifier has no import of its state; replaying
    /// what was committed reproduces it, since every replayed frame verified before.)
    /// The trust engine, when enabled, is restored by replaying its committed lineage
    /// (see [`crate::trust::Engine::open`]).
    pub fn rebuild(&mut self) -> Result<usize, StoreError> {
        self.verifier = Verifier::new(self.verifier_config);
        self.engine = None;
        if let Some(policy) = self.engine_policy.clone() {
            let engine = crate::trust::Engine::open(
                self.store.clone(),
                self.identity.signing_key(),
                policy,
                0,
            )
            .map_err(|e| StoreError::Db(e.to_string()))?;
            let mut batch = self.store.begin()?;
            batch.put_engine_lineage(engine.pending())?;
            batch.commit()?;
            self.engine = Some(engine);
        }
        let window = self.verifier_config.window.max(1);
        let mut after: Option<DeviceId> = None;
        let mut n = 0;
        loop {
            let page = self.store.devices(after.as_ref(), 1024)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(*last);
            let mut frames: Vec<(Vec<u8>, Observation)> = Vec::new();
            for (id, _) in &page {
                let rx = quiet_rx();
                for f in self.store.establishments(id)? {
                    frames.push((f, rx));
                }
                for f in self.store.recent_frames(id, window)? {
                    frames.push((f.frame, f.rx));
                }
                n += 1;
            }
            let refs: Vec<(&[u8], Observation)> =
                frames.iter().map(|(f, rx)| (f.as_slice(), *rx)).collect();
            for chunk in refs.chunks(512) {
                let now = chunk.iter().map(|(_, rx)| rx.time_ms).max().unwrap_or(0);
                self.verifier.handle_batch(now, chunk);
            }
            while self.verifier.poll_outcome().is_some() {}
        }
        Ok(n)
    }

    /// Verifies, decides and commits a batch of frames.
    pub fn ingest<T>(&mut self, now: u64, inputs: Vec<Input<T>>) -> Result<Output<T>, StoreError> {
        for i in &inputs {
            self.metrics
                .ingest
                .get_or_create(&kind(source_str(i.source)))
                .inc();
        }
        let started = Instant::now();
        let frames: Vec<(&[u8], Observation)> =
            inputs.iter().map(|i| (i.frame.as_slice(), i.rx)).collect();
        let outcomes = self.verifier.handle_batch(now, &frames);
        let mut released = Vec::new();
        while let Some(o) = self.verifier.poll_outcome() {
            released.push(o);
        }
        self.metrics
            .verify_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.batch_size.observe(inputs.len() as f64);

        let mut pending = Vec::new();
        let mut effects = Vec::new();
        let mut verdicts = Vec::with_capacity(inputs.len());
        let committed = (|| {
            let mut batch = self.store.begin()?;
            for (input, outcome) in inputs.iter().zip(outcomes) {
                let v = self.apply(
                    &mut batch,
                    now,
                    outcome,
                    input.source,
                    input.rx,
                    &mut pending,
                    &mut effects,
                )?;
                verdicts.push(v);
            }
            for outcome in released {
                self.apply(
                    &mut batch,
                    now,
                    outcome,
                    Source::Escrow,
                    quiet_rx(),
                    &mut pending,
                    &mut effects,
                )?;
            }
            if let Some(e) = &self.engine {
                batch.put_engine_lineage(e.pending())?;
            }
            let t = Instant::now();
            batch.commit()?;
            self.metrics
                .commit_seconds
                .observe(t.elapsed().as_secs_f64());
            Ok::<_, StoreError>(())
        })();
        if let Err(e) = committed {
            tracing::error!(error = %e, "commit failed; rebuilding the verifier from the store");
            if let Err(e) = self.rebuild() {
                tracing::error!(error = %e, "rebuild failed");
            }
            return Err(e);
        }
        // Committed: now sign and publish. Receipts are independent of each other, so a
        // large batch signs them on two threads.
        let (identity, witness, metrics) = (&self.identity, self.witness, &self.metrics);
        let sign = |ps: &[PendingReceipt]| -> Vec<Vec<u8>> {
            ps.iter()
                .filter_map(|p| sign_receipt(identity, witness, metrics, p))
                .collect()
        };
        let receipts = if pending.len() >= 64 {
            let (a, b) = pending.split_at(pending.len() / 2);
            std::thread::scope(|s| {
                let first = s.spawn(|| sign(a));
                let second = sign(b);
                let mut all = first.join().unwrap_or_default();
                all.extend(second);
                all
            })
        } else {
            sign(&pending)
        };
        effects.extend(receipts.into_iter().map(Effect::PublishReceipt));
        Ok(Output {
            verdicts: inputs.into_iter().map(|i| i.tag).zip(verdicts).collect(),
            effects,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        batch: &mut Batch,
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
                            self.observe_radio(&mut rec, &rx);
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
            _ => Verdict::Ignore,
        })
    }

    fn extended(
        &mut self,
        batch: &mut Batch,
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
        let record = FrameRecord {
            seq: att.seq(),
            digest: att.digest().0,
            frame: att.frame().to_vec(),
            rx: *att.rx(),
            source,
        };
        if !batch.put_frame(&device, &record, self.frames_per_device)? {
            // Already durable (the verifier forgot it, e.g. beyond its window after a
            // restart): identical is a duplicate, different is a fork.
            if let Some(stored) = batch.frame(&device, att.seq())? {
                if stored.digest != record.digest {
                    if let Some(proof) =
                        self.prove_stored(batch, &device, &stored.frame, &record.frame)?
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
            self.observe_radio(&mut rec, att.rx());
            pending.push(PendingReceipt {
                device,
                seq: att.seq(),
                digest: *att.digest(),
                rx: *att.rx(),
            });
            effects.push(Effect::PublishAttestation(att.frame().to_vec()));
        }
        batch.append(
            now,
            Entry::Observed {
                device: device.0,
                seq: att.seq(),
                digest: att.digest().0,
                source,
            },
        )?;
        let engine = self.engine.as_mut().map(|e| {
            e.attestation(now, &att).unwrap_or_else(|e| Decision {
                // Fail closed: no decision without its lineage record.
                admission: Admission::Deferred,
                reasons: vec![format!("trust engine: {e}")],
                grant: None,
            })
        });
        self.decide_and_record(batch, now, &device, &mut rec, att.seq(), engine)?;
        batch.put_device(&device, &rec)?;
        Ok(Verdict::Accept)
    }

    /// A divergence proof for two conflicting frames of `device`, built from the
    /// establishment frames in the store alone (`verifier::build_proof`), so that it
    /// does not depend on what the verifier still holds in memory.
    fn prove_stored(
        &self,
        batch: &Batch,
        device: &DeviceId,
        a: &[u8],
        b: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let establishments = batch.establishments(device)?;
        let refs: Vec<&[u8]> = establishments.iter().map(Vec::as_slice).collect();
        Ok(build_proof(&refs, a, b).ok())
    }

    fn observe_radio(&self, rec: &mut DeviceRecord, rx: &Observation) {
        rec.rf.observe(rx);
        rec.last_rssi = rx.rssi_dbm;
        rec.add_witness(self.witness.0, rx.rssi_dbm);
    }

    fn decide_and_record(
        &self,
        batch: &mut Batch,
        now: u64,
        device: &DeviceId,
        rec: &mut DeviceRecord,
        seq: u32,
        engine: Option<Decision>,
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
        batch.append(
            now,
            Entry::Decided {
                device: device.0,
                seq,
                admission: decision.admission,
                reasons: decision.reasons.clone(),
            },
        )?;
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
        batch: &mut Batch,
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
        rec.reasons = vec![format!("divergence proof at position {seq}, verified here")];
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
    pub fn ingest_proof(
        &mut self,
        now: u64,
        bytes: &[u8],
    ) -> Result<(Verdict, Vec<Effect>), StoreError> {
        let Ok(d) = verify_divergence_proof(bytes) else {
            return Ok((Verdict::Reject, Vec::new()));
        };
        if self
            .store
            .device(&d.device)?
            .is_some_and(|r| r.quarantine.is_some())
        {
            return Ok((Verdict::Ignore, Vec::new()));
        }
        let mut effects = Vec::new();
        let mut batch = self.store.begin()?;
        self.quarantine(
            &mut batch,
            now,
            &d.device,
            d.seq,
            bytes,
            &mut effects,
            false,
        )?;
        if let Some(engine) = &self.engine {
            batch.put_engine_lineage(engine.pending())?;
        }
        batch.commit()?;
        Ok((Verdict::Accept, effects))
    }

    /// Another gateway's witness receipt message (see [`receipt_message`]).
    pub fn ingest_receipt(&mut self, now: u64, bytes: &[u8]) -> Result<Verdict, StoreError> {
        let Some((key, frame)) = parse_receipt_message(bytes) else {
            return Ok(Verdict::Reject);
        };
        let Ok(receipt) = Signed::<Receipt>::decode(frame) else {
            return Ok(Verdict::Reject);
        };
        let Ok(vk) = slope_proto::crypto::verifying_key(&key) else {
            return Ok(Verdict::Reject);
        };
        if receipt.verify_witness(&vk).is_err() {
            return Ok(Verdict::Reject);
        }
        let body = receipt.body();
        if body.witness == self.witness {
            return Ok(Verdict::Ignore);
        }
        for device in self.store.devices_with_prefix(&body.device.0)? {
            let Some(f) = self.store.frame(&device, body.seq)? else {
                continue;
            };
            if slope_proto::Digest(f.digest).link() != body.event {
                continue;
            }
            let mut batch = self.store.begin()?;
            let Some(mut rec) = batch.device(&device)? else {
                continue;
            };
            if rec.quarantine.is_some() {
                return Ok(Verdict::Ignore);
            }
            rec.add_witness(body.witness.0, body.observed.rssi_dbm);
            batch.append(
                now,
                Entry::Witnessed {
                    device: device.0,
                    seq: body.seq,
                    witness: body.witness.0,
                },
            )?;
            if self.engine.is_none() {
                self.decide_and_record(&mut batch, now, &device, &mut rec, body.seq, None)?;
            }
            batch.put_device(&device, &rec)?;
            batch.commit()?;
            return Ok(Verdict::Accept);
        }
        Ok(Verdict::Ignore)
    }

    /// Operator: releases `device` from quarantine: the verifier forgets the divergence
    /// (`Verifier::release`), and the trust engine records the release in its lineage
    /// (signed by the gateway key), in the same transaction. Returns false if it was not
    /// quarantined.
    pub fn release(
        &mut self,
        now: u64,
        device: &DeviceId,
        note: String,
    ) -> Result<bool, StoreError> {
        let mut batch = self.store.begin()?;
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
                Err(e) => tracing::warn!(error = %e, "trust engine did not record the release"),
            }
            batch.put_engine_lineage(engine.pending())?;
        }
        batch.append(
            now,
            Entry::Released {
                device: device.0,
                note,
            },
        )?;
        rec.admission = Admission::Deferred;
        rec.reasons = vec!["released from quarantine by the operator".into()];
        batch.remove_divergence(device)?;
        batch.put_device(device, &rec)?;
        if let Err(e) = batch.commit() {
            self.rebuild()?;
            return Err(e);
        }
        self.verifier.release(device);
        Ok(true)
    }

    /// Operator: pins (or with `None` unpins) the scope of `device`.
    pub fn pin(
        &mut self,
        now: u64,
        device: &DeviceId,
        scope: Option<crate::trust::Scope>,
        note: String,
    ) -> Result<bool, StoreError> {
        let mut batch = self.store.begin()?;
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
        self.decide_and_record(&mut batch, now, device, &mut rec, seq, None)?;
        batch.put_device(device, &rec)?;
        batch.commit()?;
        Ok(true)
    }
}

/// Signs a witness receipt for a committed observation; the gossip message.
fn sign_receipt(
    identity: &Identity,
    witness: WitnessId,
    metrics: &Metrics,
    p: &PendingReceipt,
) -> Option<Vec<u8>> {
    let body = Receipt {
        witness,
        device: p.device.short(),
        seq: p.seq,
        event: p.digest.link(),
        observed: p.rx,
    };
    let signed = Signed::<Receipt>::witness(body, identity.signing_key()).ok()?;
    metrics.receipts_signed.inc();
    Some(receipt_message(
        identity.signing_key().verifying_key().as_bytes(),
        signed.frame(),
    ))
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

fn reject_label(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::Decode(_) => "rejected_malformed",
        VerifyError::BadSignature => "rejected_bad_signature",
        VerifyError::UnknownKey => "rejected_unknown_key",
        VerifyError::Capacity => "rejected_capacity",
        _ => "rejected_other",
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

/// The observation used when replaying stored establishment frames.
fn quiet_rx() -> Observation {
    Observation {
        rssi_dbm: 0,
        snr_qdb: 0,
        freq_hz: 0,
        foff_hz: None,
        sf: 7,
        time_ms: 0,
    }
}
