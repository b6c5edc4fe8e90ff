//! [`Engine`]: the trust engine's state machine. Each input is decided on a copy of the
//! device's hot record, written to the lineage, and only then committed: no decision,
//! grant or revocation exists without its record.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use slope_proto::{DeviceId, Digest, DivergenceProof, Event, Receipt, ReceiptBatch, Signed};

use super::admission;
use super::batch::{BatchFrame, Recorded};
use super::decision::{Admission, Decision, MAX_REASONS, Quarantine, Reason, Refusal, push};
use super::device::{Hot, flag, pin, scope_code};
use super::error::Error;
use super::evidence::{self, Inputs, MAX_RECEIPTS, Subject};
use super::grant::{Cause, Grant, Revocation, Scope};
use super::operator::{self, Action};
use super::policy::Policy;
use super::profile::EMPTY;
use super::registry::Registry;
use super::weighting::{self, Weights};
use super::witness::{self, ReceiptError, RegisterError, VerifiedReceipt};
use super::zone::Zone;
use crate::lineage::{Entry, Genesis, Lineage, Observation, ReceiptRef, Storage};
use crate::time::Millis;
use crate::verifier::SignatureMemo;
use crate::verifier::{DivergenceEvidence, VerifiedAttestation};

/// The trust engine of one gateway.
#[derive(Debug)]
pub struct Engine<S> {
    pub(super) policy: Policy,
    pub(super) operators: Vec<[u8; 32]>,
    pub(super) witnesses: witness::Registry,
    pub(super) local: Option<u16>,
    pub(super) devices: Registry,
    /// Batched receipts the lineage holds (record index by batch digest).
    pub(super) batches: Recorded,
    pub(super) lineage: Lineage<S>,
}

impl<S: Storage> Engine<S> {
    /// Starts an engine whose lineage begins with `genesis` (policy, operators, the
    /// gateway's key). The gateway's own radio becomes a witness when `genesis.local`
    /// is set.
    ///
    /// On a store that already holds a log, this resumes the chain but starts with no
    /// device state; [`Engine::restore`] rebuilds the state by replaying the log.
    pub fn new(genesis: Genesis, storage: S, now: Millis) -> Result<Self, Error> {
        Self::with_lineage(&genesis, |g| Lineage::open(storage, g, now))
    }

    /// Builds the engine's configuration from `genesis`, around the lineage `open`
    /// gives.
    pub(super) fn with_lineage(
        genesis: &Genesis,
        open: impl FnOnce(Genesis) -> Result<Lineage<S>, crate::lineage::AppendError>,
    ) -> Result<Self, Error> {
        let policy = genesis.policy.clone();
        let operators = genesis.operators.clone();
        let mut witnesses = witness::Registry::default();
        let local = match genesis.local {
            Some(l) => Some(witnesses.register(
                &genesis.author,
                l.zone,
                l.position,
                policy.bounds.max_witnesses,
            )?),
            None => None,
        };
        let lineage = open(genesis.clone())?;
        Ok(Self {
            devices: Registry::with_capacity(0),
            batches: Recorded::default(),
            policy,
            operators,
            witnesses,
            local,
            lineage,
        })
    }

    /// Reserves hot records for `devices` more devices up front (avoids growth slack).
    pub fn reserve(&mut self, devices: usize) {
        self.devices.reserve(devices);
    }

    /// Stops the engine and gives its lineage store back (to [`Engine::restore`] from
    /// it later, for example).
    pub fn into_storage(self) -> S {
        self.lineage.into_storage()
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The lineage.
    pub fn lineage(&self) -> &Lineage<S> {
        &self.lineage
    }

    /// Tracked devices.
    pub fn devices(&self) -> usize {
        self.devices.len()
    }

    /// The hot record of a device.
    pub fn hot(&self, device: &DeviceId) -> Option<&Hot> {
        let slot = self.devices.find(device).ok()??;
        self.devices.get(slot)
    }

    /// Checks a receipt against the registered witnesses (its signature, the witness's
    /// status). Receipts are verified apart from decisions so that they can be batched
    /// and so that a decision's cost excludes signature checks.
    pub fn verify_receipt(
        &self,
        receipt: &Signed<Receipt>,
    ) -> Result<VerifiedReceipt, ReceiptError> {
        self.witnesses.verify(receipt)
    }

    /// Checks a batched receipt's one signature against the registered witness it
    /// names (and the witness's status), then gives one [`VerifiedReceipt`] per entry,
    /// in batch order, each usable by [`Engine::handle_attestation`] like a single
    /// receipt's. A bad signature refuses every entry (`ReceiptError::BadSignature`
    /// names the witness to blame). The lineage records the batch frame once, when a
    /// decision first considers one of its entries.
    pub fn verify_receipt_batch(
        &self,
        batch: &ReceiptBatch<'_>,
    ) -> Result<Vec<VerifiedReceipt>, ReceiptError> {
        self.witnesses.verify_batch(batch)
    }

    /// [`Engine::verify_receipt_batch`] for a gateway that sees many batches more than
    /// once or cares about few of their entries (the testnet's simulated gateways): the
    /// one signature check goes through `memo` (see `verifier::SignatureMemo`; validity
    /// is pure, so the result is the same), and only the entries `keep` selects become
    /// tokens, with their batch indices unchanged.
    pub fn verify_receipt_batch_with(
        &self,
        batch: &ReceiptBatch<'_>,
        memo: Option<&mut dyn SignatureMemo>,
        keep: impl FnMut(&slope_proto::batch::Entry) -> bool,
    ) -> Result<Vec<VerifiedReceipt>, ReceiptError> {
        self.witnesses.verify_batch_with(batch, memo, keep)
    }

    /// [`Engine::verify_receipt_batch_with`] on a batch whose byte-only work (decode,
    /// signed message, digest) was done once for every engine that receives it
    /// ([`super::PreparedBatch`]): the same checks against this engine's registry, the
    /// same results.
    pub fn verify_prepared_receipt_batch_with(
        &self,
        batch: &super::PreparedBatch,
        memo: Option<&mut dyn SignatureMemo>,
        keep: impl FnMut(&slope_proto::batch::Entry) -> bool,
    ) -> Result<Vec<VerifiedReceipt>, ReceiptError> {
        self.witnesses.verify_prepared_with(batch, memo, keep)
    }

    /// The grant in force for a device at `now`.
    pub fn grant(&self, device: &DeviceId, now: Millis) -> Option<Grant> {
        let h = self.hot(device)?;
        let scope = h.scope(now)?;
        Some(Grant {
            device: *device,
            scope,
            monitored: h.has(flag::MONITORED),
            issued: h.grant_issued,
            expires: h.grant_expires,
            decision: h.grant_decision,
        })
    }

    /// Frees newcomers idle longer than `Bounds::newcomer_idle_ms`; returns how many.
    /// An eviction is recorded (`Entry::Eviction`) before it takes effect, so that a
    /// replay of the log evicts the same devices; when the store refuses the record,
    /// nothing is evicted (0).
    pub fn evict_idle(&mut self, now: Millis) -> usize {
        self.try_evict_idle(now).unwrap_or(0)
    }

    /// [`Engine::evict_idle`], with the lineage error when the record could not be
    /// written.
    pub fn try_evict_idle(&mut self, now: Millis) -> Result<usize, Error> {
        let idle = self.policy.bounds.newcomer_idle_ms;
        let n = self.devices.idle(now, idle);
        if n == 0 {
            return Ok(0);
        }
        let devices = u32::try_from(n).unwrap_or(u32::MAX);
        self.lineage.append(now, Entry::Eviction { devices })?;
        Ok(self.devices.evict_idle(now, idle))
    }

    /// Decides on one verified attestation, with the verified receipts gathered for it.
    pub fn handle_attestation(
        &mut self,
        now: Millis,
        att: &VerifiedAttestation,
        receipts: &[VerifiedReceipt],
    ) -> Result<Decision, Error> {
        // A receipt naming another device, position or event moves no score, and a log
        // holding one would not pass `lineage::verify` (every logged receipt must name
        // its observation): dropped here, whatever the caller passed.
        let named: Cow<'_, [VerifiedReceipt]> = if receipts.iter().all(|r| r.names(att)) {
            Cow::Borrowed(receipts)
        } else {
            Cow::Owned(receipts.iter().filter(|r| r.names(att)).cloned().collect())
        };
        let (decision, slot) = self.decide(
            now,
            *att.device(),
            &Subject::of(att, now),
            &named,
            |receipts| {
                Entry::Observation(Observation {
                    device: *att.device(),
                    digest: *att.digest(),
                    frame: att.frame(),
                    rx: *att.rx(),
                    receipts,
                })
            },
        )?;
        if let Some(slot) = slot {
            self.credit_neighbours(slot, att);
        }
        Ok(decision)
    }

    /// Decides on `subject` of device `id` with its receipts (already filtered to those
    /// naming it), recording first the observation `observe` builds around the logged
    /// receipt references. Gives the device's slot too when its admission lets it
    /// credit the neighbours it reports.
    pub(super) fn decide<'r>(
        &mut self,
        now: Millis,
        id: DeviceId,
        subject: &Subject<'_>,
        receipts: &'r [VerifiedReceipt],
        observe: impl FnOnce(heapless::Vec<ReceiptRef<'r>, MAX_RECEIPTS>) -> Entry<'r>,
    ) -> Result<(Decision, Option<u32>), Error> {
        let (seq, digest) = (subject.seq, subject.digest);
        let refused = |e: &mut Self, r| e.refuse(now, id, seq, digest, r).map(|d| (d, None));
        // A new device is tracked only once its records are stored (fail closed).
        let slot = match self.devices.find(&id) {
            Ok(Some(s)) => Some(s),
            Ok(None) if self.devices.full(&self.policy.bounds) => {
                return refused(self, Refusal::Capacity);
            }
            Ok(None) => None,
            Err(r) => return refused(self, r),
        };
        let old = match slot {
            Some(s) => match self.devices.get(s).copied() {
                Some(h) => h,
                None => return refused(self, Refusal::Capacity),
            },
            None => self.devices.fresh(id, now),
        };
        let mut h = old;
        let enrolment = if h.has(flag::ENROLLED) {
            self.devices.enrollment(&id).copied().unwrap_or_default()
        } else {
            Default::default()
        };
        let inputs = Inputs {
            policy: &self.policy,
            witnesses: &self.witnesses,
            local: self.local,
            position: enrolment.position,
            zone: enrolment.zone.unwrap_or(Zone::NONE),
            certified: enrolment.certificate_until.is_some_and(|t| now < t),
        };
        let previous = (h.depth > 0).then_some(h.corroboration);
        let ev = evidence::gather(&mut h, subject, receipts, now, &inputs);
        let w = weighting::weigh(&ev, previous, &self.policy);
        h.corroboration = w.corroboration;
        h.last_link = digest.link();
        h.last_seq = seq;

        let (admission, reasons) = match slot.and_then(|s| self.devices.quarantine(s)) {
            Some(q) => {
                let mut r = heapless::Vec::new();
                push(&mut r, Reason::Diverged { seq });
                (Admission::Quarantined(*q), r)
            }
            None => {
                let pinned_by = slot.and_then(|s| self.devices.pinned_by(s));
                admission::decide(&h, &ev, &w, pinned_by, &self.policy)
            }
        };

        let mut frames: heapless::Vec<ReceiptRef<'r>, MAX_RECEIPTS> = heapless::Vec::new();
        for r in receipts.iter().take(MAX_RECEIPTS) {
            let logged = match (r.signed(), r.batch()) {
                (Some(single), _) => ReceiptRef::Frame(single.frame()),
                (None, Some((batch, entry))) => ReceiptRef::Batch {
                    record: self.record_batch(now, batch)?,
                    entry,
                },
                (None, None) => continue,
            };
            let _ = frames.push(logged);
        }
        self.lineage.append(now, observe(frames))?;
        self.lineage.append(
            now,
            Entry::Weighting {
                device: id,
                seq,
                evidence: ev,
                weights: w,
            },
        )?;
        let decision = self.lineage.append(
            now,
            Entry::Decision {
                device: id,
                seq,
                digest,
                admission,
                reasons: reasons.clone(),
            },
        )?;
        let (grant, revoked) = self.actuate(&mut h, &old, admission, ev.head, decision, now)?;
        let slot = match slot {
            Some(s) => s,
            // Cannot fail: nothing changed since `find` and `full` above.
            None => self
                .devices
                .insert(id, now, &self.policy.bounds)
                .map_err(|_| Error::UnknownDevice)?,
        };
        self.devices.put(slot, h);
        let credits = matches!(admission, Admission::Full)
            || (!self.policy.corroboration.neighbour_reporter_full_only
                && matches!(admission, Admission::Restricted | Admission::Monitored));
        let decision = Decision {
            device: id,
            seq,
            admission,
            weights: w,
            reasons,
            grant,
            revoked,
            record: decision,
        };
        Ok((decision, credits.then_some(slot)))
    }

    /// The record holding `batch`, appending it first when the lineage does not hold
    /// it (or no longer remembers where).
    pub(super) fn record_batch(&mut self, now: Millis, batch: &BatchFrame) -> Result<u64, Error> {
        if let Some(record) = self.batches.get(&batch.digest()) {
            return Ok(record);
        }
        let record = self.lineage.append_batch(now, batch)?;
        self.batches.insert(batch.digest(), record);
        Ok(record)
    }

    /// Quarantines a device on the verifier's divergence evidence: records the
    /// conflicting attestation and the proof, and revokes the device's grant in this
    /// same call.
    pub fn handle_divergence(
        &mut self,
        now: Millis,
        evidence: &DivergenceEvidence,
    ) -> Result<Decision, Error> {
        let att = &evidence.attestation;
        let proof = DivergenceProof::decode(&evidence.proof)
            .map_err(slope_proto::ProofError::Decode)?
            .verify()?;
        let anchored = self
            .hot(&proof.device)
            .is_some_and(|h| h.has(flag::ANCHORED));
        if anchored || matches!(att.event(), Event::Inception(_)) {
            self.lineage.append(
                now,
                Entry::Observation(Observation {
                    device: *att.device(),
                    digest: *att.digest(),
                    frame: att.frame(),
                    rx: *att.rx(),
                    receipts: heapless::Vec::new(),
                }),
            )?;
        }
        let entry = Entry::Divergence {
            device: proof.device,
            seq: proof.seq,
            proof: &evidence.proof,
        };
        self.quarantine(now, &evidence.proof, proof, entry)
    }

    /// Quarantines a device on a divergence proof received from elsewhere (gossip);
    /// the proof is verified here, with no other state.
    pub fn handle_proof(&mut self, now: Millis, proof: &[u8]) -> Result<Decision, Error> {
        let d = DivergenceProof::decode(proof)
            .map_err(slope_proto::ProofError::Decode)?
            .verify()?;
        let entry = Entry::Divergence {
            device: d.device,
            seq: d.seq,
            proof,
        };
        self.quarantine(now, proof, d, entry)
    }

    /// Quarantines `d.device` on the verified `proof`, recording it as `entry` (a
    /// divergence record) unless the device is already quarantined on this proof.
    pub(super) fn quarantine(
        &mut self,
        now: Millis,
        proof: &[u8],
        d: slope_proto::Divergence,
        entry: Entry<'_>,
    ) -> Result<Decision, Error> {
        let device = d.device;
        let digest = Digest(*blake3::hash(proof).as_bytes());
        // A device seen first in a proof is tracked (to hold its quarantine) when the
        // registry has room, once the records are stored.
        let (slot, track) = match self.devices.find(&device) {
            Ok(Some(s)) => (Some(s), false),
            Ok(None) => (None, !self.devices.full(&self.policy.bounds)),
            Err(_) => (None, false),
        };
        let existing = slot.and_then(|s| self.devices.quarantine(s).copied());
        let q = match existing {
            Some(q) if q.proof == digest => q,
            _ => {
                let record = self.lineage.append(now, entry)?;
                existing.unwrap_or(Quarantine {
                    proof: digest,
                    record,
                })
            }
        };
        let mut reasons = heapless::Vec::new();
        push(&mut reasons, Reason::Diverged { seq: d.seq });
        let admission = Admission::Quarantined(q);
        let decision = self.lineage.append(
            now,
            Entry::Decision {
                device,
                seq: d.seq,
                digest: d.second,
                admission,
                reasons: reasons.clone(),
            },
        )?;
        let mut revoked = None;
        let slot = match slot {
            Some(s) => Some(s),
            None if track => self.devices.insert(device, now, &self.policy.bounds).ok(),
            None => None,
        };
        if let Some(s) = slot
            && let Some(old) = self.devices.get(s).copied()
        {
            let mut h = old;
            if let Some(scope) = old.scope(now) {
                let r = Revocation {
                    device,
                    grant_decision: old.grant_decision,
                    scope,
                    at: now,
                    cause: Cause::Divergence { record: q.record },
                };
                self.lineage.append(now, Entry::Revocation(r))?;
                revoked = Some(r);
            }
            h.grant_scope = 0;
            h.grant_expires = now;
            h.set(flag::QUARANTINED, true);
            h.set(flag::MONITORED, false);
            self.devices.put(s, h);
            self.devices.set_quarantine(s, Some(q));
        }
        Ok(Decision {
            device,
            seq: d.seq,
            admission,
            weights: Weights::default(),
            reasons,
            grant: None,
            revoked,
            record: decision,
        })
    }

    /// Applies a signed operator action; returns the index of its lineage record.
    pub fn handle_operator(
        &mut self,
        now: Millis,
        action: &operator::Signed,
    ) -> Result<u64, Error> {
        action.verify(&self.operators)?;
        // Validate before recording: a recorded action always took effect.
        let slot_of = |d: &DeviceId| {
            self.devices
                .find(d)
                .ok()
                .flatten()
                .ok_or(Error::UnknownDevice)
        };
        let slot = match &action.action {
            Action::RegisterWitness { key, .. } => {
                slope_proto::crypto::verifying_key(key).map_err(|_| RegisterError::BadKey)?;
                let id = slope_proto::crypto::witness_id(key);
                if self.witnesses.slot_of(&id).is_none()
                    && self.witnesses.len() >= usize::from(self.policy.bounds.max_witnesses)
                {
                    return Err(Error::Witness(RegisterError::Full));
                }
                None
            }
            Action::Release { device } => {
                let s = slot_of(device)?;
                if self.devices.quarantine(s).is_none() {
                    return Err(Error::NotQuarantined);
                }
                Some(s)
            }
            Action::Pin { device, .. } | Action::Unpin { device } => Some(slot_of(device)?),
            _ => None,
        };
        let record = self.lineage.append(now, Entry::Operator(action.clone()))?;
        match &action.action {
            Action::RegisterWitness {
                key,
                zone,
                position,
            } => {
                self.witnesses
                    .register(key, *zone, *position, self.policy.bounds.max_witnesses)?;
            }
            Action::RetireWitness { witness } => {
                self.witnesses.retire(witness);
            }
            Action::Enroll {
                device,
                zone,
                position,
            } => {
                self.devices.enroll(*device, |e| {
                    e.zone = Some(*zone);
                    e.position = *position;
                });
            }
            Action::Certificate {
                device, not_after, ..
            } => {
                self.devices
                    .enroll(*device, |e| e.certificate_until = Some(*not_after));
            }
            Action::Release { .. } => {
                if let Some(s) = slot
                    && let Some(mut h) = self.devices.get(s).copied()
                {
                    h.set(flag::QUARANTINED, false);
                    self.devices.put(s, h);
                    self.devices.set_quarantine(s, None);
                }
            }
            Action::Pin { scope, .. } => {
                if let Some(s) = slot
                    && let Some(mut h) = self.devices.get(s).copied()
                {
                    h.pin = match scope {
                        Scope::Full => pin::FULL,
                        Scope::Restricted => pin::RESTRICTED,
                    };
                    if let Some(current) = h.scope(now)
                        && current > *scope
                    {
                        let r = Revocation {
                            device: h.id,
                            grant_decision: h.grant_decision,
                            scope: current,
                            at: now,
                            cause: Cause::Operator { record },
                        };
                        self.lineage.append(now, Entry::Revocation(r))?;
                        h.grant_scope = scope_code(Some(*scope));
                    }
                    self.devices.put(s, h);
                    self.devices.set_pin(s, Some(action.by));
                }
            }
            Action::Unpin { .. } => {
                if let Some(s) = slot
                    && let Some(mut h) = self.devices.get(s).copied()
                {
                    h.pin = pin::NONE;
                    self.devices.put(s, h);
                    self.devices.set_pin(s, None);
                }
            }
        }
        Ok(record)
    }

    /// Issues, renews, narrows or revokes the grant after a decision.
    fn actuate(
        &mut self,
        h: &mut Hot,
        old: &Hot,
        admission: Admission,
        head: bool,
        decision: u64,
        now: Millis,
    ) -> Result<(Option<Grant>, Option<Revocation>), Error> {
        let current = old.scope(now);
        let (target, monitored) = match admission {
            Admission::Full => (Some(Scope::Full), false),
            Admission::Restricted => (Some(Scope::Restricted), false),
            Admission::Monitored => (Some(Scope::Restricted), true),
            Admission::Deferred => return Ok((None, None)),
            _ => (None, false),
        };
        let mut revoked = None;
        if let Some(cur) = current
            && target.is_none_or(|t| t < cur)
        {
            let cause = match (admission, target) {
                (Admission::Quarantined(q), _) => Cause::Divergence { record: q.record },
                (_, Some(to)) => Cause::Narrowed { decision, to },
                _ => Cause::Refused { decision },
            };
            let r = Revocation {
                device: h.id,
                grant_decision: old.grant_decision,
                scope: cur,
                at: now,
                cause,
            };
            self.lineage.append(now, Entry::Revocation(r))?;
            revoked = Some(r);
            h.grant_scope = 0;
            h.grant_expires = now;
        }
        let Some(scope) = target else {
            return Ok((None, revoked));
        };
        if !head && revoked.is_none() {
            return Ok((None, None));
        }
        let g = &self.policy.grants;
        let ttl = h
            .interval
            .mean_ms()
            .saturating_mul(u64::from(g.ttl_intervals))
            .clamp(g.min_ttl_ms, g.max_ttl_ms.max(g.min_ttl_ms));
        let grant = Grant {
            device: h.id,
            scope,
            monitored,
            issued: now,
            expires: now.saturating_add(ttl),
            decision,
        };
        self.lineage.append(now, Entry::Grant(grant))?;
        if current.is_none_or(|c| scope > c) {
            // A new or wider grant: check the next attestations against its
            // expectations (the witness that hears the device most, as profiled now).
            let min = self.policy.context.min_samples;
            h.expect_witness = h
                .profiles
                .iter()
                .filter(|p| p.established(min))
                .max_by_key(|p| (p.n, core::cmp::Reverse(p.witness)))
                .map_or(EMPTY, |p| p.witness);
            h.expect_left = self.policy.admission.expectation_checks;
        }
        if monitored {
            h.expect_left = h.expect_left.max(1);
        }
        h.grant_scope = scope_code(Some(scope));
        h.grant_issued = now;
        h.grant_expires = grant.expires;
        h.grant_decision = decision;
        h.set(flag::MONITORED, monitored);
        if scope == Scope::Full {
            h.set(flag::EVER_FULL, true);
        }
        Ok((Some(grant), revoked))
    }

    /// Credits the neighbours a device reports having heard.
    fn credit_neighbours(&mut self, reporter: u32, att: &VerifiedAttestation) {
        let Event::Interaction(i) = att.event() else {
            return;
        };
        for heard in &i.body().heard {
            if let Some(s) = self.devices.neighbour(heard.id)
                && s != reporter
                && let Some(mut n) = self.devices.get(s).copied()
            {
                n.neighbour_credits = n.neighbour_credits.saturating_add(1);
                n.neighbour_total = n.neighbour_total.saturating_add(1);
                self.devices.put(s, n);
            }
        }
    }

    /// Records a refusal that happens before any device state exists (capacity, id
    /// collision): the decision only, not the frame — its key history is not tracked.
    pub(super) fn refuse(
        &mut self,
        now: Millis,
        device: DeviceId,
        seq: u32,
        digest: Digest,
        r: Refusal,
    ) -> Result<Decision, Error> {
        let admission = Admission::Refused(r);
        let reasons: heapless::Vec<Reason, MAX_REASONS> = heapless::Vec::new();
        let record = self.lineage.append(
            now,
            Entry::Decision {
                device,
                seq,
                digest,
                admission,
                reasons: reasons.clone(),
            },
        )?;
        Ok(Decision {
            device,
            seq,
            admission,
            weights: Weights::default(),
            reasons,
            grant: None,
            revoked: None,
            record,
        })
    }
}
