//! The witness registry: gateways the operator registered (key, trust zone, position),
//! and [`VerifiedReceipt`], the proof-carrying result of checking a receipt (or a batched
//! receipt's entry) against it.
//!
//! Witnesses enter only through a signed operator action, so a remote party cannot grow
//! the registry; it is bounded anyway (`Bounds::max_witnesses`, refuse new at the bound).
//! A witness is never removed, only retired: its slot number stays stable because
//! per-device RF profiles refer to it.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::VerifyingKey;
use slope_proto::batch::Entry;
use slope_proto::{DeviceId, Digest, Receipt, ReceiptBatch, Signed, WitnessId, crypto};

use super::batch::{BatchFrame, PreparedBatch};
use super::zone::{Position, Zone};
use crate::verifier::compact::VerifiedCompact;
use crate::verifier::{SignatureMemo, VerifiedAttestation};

/// A registered witness.
#[derive(Debug, Clone)]
pub struct Witness {
    pub id: WitnessId,
    pub key: VerifyingKey,
    pub zone: Zone,
    pub position: Option<Position>,
    pub retired: bool,
}

/// A receipt whose signature verified under a registered, active witness's key: a
/// single signed receipt, or one entry of a batched receipt whose one signature
/// verified. Only [`Registry::verify`] and [`Registry::verify_batch`] build one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    source: Source,
    slot: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// Boxed: a single receipt carries its whole frame (336 bytes), a batch entry
    /// only its body; one allocation beside a signature check is noise.
    Single(Box<Signed<Receipt>>),
    Batch {
        batch: Arc<BatchFrame>,
        entry: u16,
        body: Receipt,
    },
}

impl VerifiedReceipt {
    /// The signed receipt, when it came as a single receipt (its frame goes into the
    /// lineage); `None` for an entry of a batch (see [`Self::batch`]).
    pub fn signed(&self) -> Option<&Signed<Receipt>> {
        match &self.source {
            Source::Single(r) => Some(r),
            Source::Batch { .. } => None,
        }
    }
    /// The batch frame and the entry index, when it came in a batch (the lineage
    /// records the batch once and names the entry).
    pub fn batch(&self) -> Option<(&Arc<BatchFrame>, u16)> {
        match &self.source {
            Source::Single(_) => None,
            Source::Batch { batch, entry, .. } => Some((batch, *entry)),
        }
    }
    /// The receipt body (for a batch entry: the entry with the batch's witness).
    pub fn body(&self) -> &Receipt {
        match &self.source {
            Source::Single(r) => r.body(),
            Source::Batch { body, .. } => body,
        }
    }
    /// The witness's registry slot.
    pub fn slot(&self) -> u16 {
        self.slot
    }
    /// Whether the receipt names `att` (device, position, event link): the receipts to
    /// hand to `Engine::handle_attestation` for `att` (it drops any other: they move no
    /// score and are not logged).
    pub fn names(&self, att: &VerifiedAttestation) -> bool {
        self.names_event(att.device(), att.seq(), att.digest())
    }
    /// Whether the receipt names the compact attestation `att`: its device, its
    /// interval as `seq`, and the frame's digest (`compact::receipt_digest`) as `event`.
    pub fn names_compact(&self, att: &VerifiedCompact) -> bool {
        self.names_event(
            att.device(),
            att.interval(),
            &super::compact::receipt_digest(att.frame()),
        )
    }
    pub(crate) fn names_event(&self, device: &DeviceId, seq: u32, digest: &Digest) -> bool {
        let b = self.body();
        b.device == device.short() && b.seq == seq && b.event == digest.link()
    }
    /// A receipt read back from the engine's own lineage during a restore: it was
    /// verified before it was logged, and the log's chain is checked as it is read.
    /// (A log one does not trust is checked with `lineage::verify`, signatures
    /// included.)
    pub(crate) fn from_log(receipt: Signed<Receipt>, slot: u16) -> Self {
        Self {
            source: Source::Single(Box::new(receipt)),
            slot,
        }
    }
    /// Entry `entry` of a batch read back from the engine's own lineage (see
    /// [`Self::from_log`]).
    pub(crate) fn from_log_batch(
        batch: Arc<BatchFrame>,
        entry: u16,
        body: Receipt,
        slot: u16,
    ) -> Self {
        Self {
            source: Source::Batch { batch, entry, body },
            slot,
        }
    }
}

/// Why a receipt was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiptError {
    /// No registered witness has this id.
    UnknownWitness(WitnessId),
    /// The witness is retired.
    Retired(WitnessId),
    /// The signature does not verify under the witness's key.
    BadSignature(WitnessId),
}

impl fmt::Display for ReceiptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownWitness(w) => write!(f, "unknown witness {w}"),
            Self::Retired(w) => write!(f, "retired witness {w}"),
            Self::BadSignature(w) => write!(f, "bad receipt signature from witness {w}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ReceiptError {}

/// Why a witness could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// The key is not a valid, non-weak ed25519 point.
    BadKey,
    /// The registry holds `Bounds::max_witnesses`.
    Full,
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadKey => f.write_str("invalid witness key"),
            Self::Full => f.write_str("witness registry full"),
        }
    }
}

/// The registered witnesses.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    slots: Vec<Witness>,
    index: BTreeMap<WitnessId, u16>,
}

impl Registry {
    /// Registers (or re-registers, updating zone and position) the witness with `key`.
    /// Returns its slot.
    pub fn register(
        &mut self,
        key: &[u8; 32],
        zone: Zone,
        position: Option<Position>,
        max: u16,
    ) -> Result<u16, RegisterError> {
        let key = crypto::verifying_key(key).map_err(|_| RegisterError::BadKey)?;
        let id = crypto::witness_id(key.as_bytes());
        if let Some(&slot) = self.index.get(&id) {
            if let Some(w) = self.slots.get_mut(usize::from(slot)) {
                w.zone = zone;
                w.position = position;
                w.retired = false;
            }
            return Ok(slot);
        }
        let slot = u16::try_from(self.slots.len()).map_err(|_| RegisterError::Full)?;
        if slot >= max {
            return Err(RegisterError::Full);
        }
        self.slots.push(Witness {
            id,
            key,
            zone,
            position,
            retired: false,
        });
        self.index.insert(id, slot);
        Ok(slot)
    }

    /// Retires a witness: its receipts no longer verify. Returns whether it was known.
    pub fn retire(&mut self, id: &WitnessId) -> bool {
        match self
            .slot_of(id)
            .and_then(|s| self.slots.get_mut(usize::from(s)))
        {
            Some(w) => {
                w.retired = true;
                true
            }
            None => false,
        }
    }

    /// The slot of a witness id.
    pub fn slot_of(&self, id: &WitnessId) -> Option<u16> {
        self.index.get(id).copied()
    }

    /// The slot of an active (not retired) witness.
    pub fn active(&self, id: &WitnessId) -> Option<u16> {
        let slot = self.slot_of(id)?;
        self.get(slot).filter(|w| !w.retired).map(|_| slot)
    }

    /// The witness in `slot`.
    pub fn get(&self, slot: u16) -> Option<&Witness> {
        self.slots.get(usize::from(slot))
    }

    /// Number of registered witnesses (retired ones included).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no witness is registered.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Checks a receipt's signature against the registered key of the witness it names.
    pub fn verify(&self, receipt: &Signed<Receipt>) -> Result<VerifiedReceipt, ReceiptError> {
        let id = receipt.body().witness;
        let (slot, w) = self.signer(id)?;
        receipt
            .verify_witness(&w.key)
            .map_err(|_| ReceiptError::BadSignature(id))?;
        Ok(VerifiedReceipt {
            source: Source::Single(Box::new(receipt.clone())),
            slot,
        })
    }

    /// Checks a batched receipt's one signature against the registered key of the
    /// witness it names, then gives one [`VerifiedReceipt`] per entry, in batch order.
    /// A bad signature refuses the whole batch: there is no per-entry signature to
    /// fall back on, and the witness that signed it is to blame.
    pub fn verify_batch(
        &self,
        batch: &ReceiptBatch<'_>,
    ) -> Result<Vec<VerifiedReceipt>, ReceiptError> {
        self.verify_batch_with(batch, None, |_| true)
    }

    /// [`Self::verify_batch`], answering the one signature check from `memo` when it
    /// holds it (and filling it otherwise), and giving tokens only for the entries
    /// `keep` selects (entry indices stay those of the batch). Signature validity is
    /// pure, so a memo changes no result, only the work.
    pub fn verify_batch_with(
        &self,
        batch: &ReceiptBatch<'_>,
        memo: Option<&mut dyn SignatureMemo>,
        mut keep: impl FnMut(&Entry) -> bool,
    ) -> Result<Vec<VerifiedReceipt>, ReceiptError> {
        let id = batch.witness();
        let slot = self.check_batch(id, &batch.message(), batch.signature(), memo)?;
        let shared = Arc::new(BatchFrame::of(batch));
        Ok(batch
            .entries()
            .zip(0u16..)
            .filter(|(e, _)| keep(e))
            .map(|(e, entry)| {
                VerifiedReceipt::from_log_batch(shared.clone(), entry, e.receipt(id), slot)
            })
            .collect())
    }

    /// [`Self::verify_batch_with`] on a batch whose byte-only work was done once
    /// ([`PreparedBatch`]): the same checks against this registry (the witness it
    /// names is registered and active; the signature verifies under its key, through
    /// `memo` when given), the same tokens for the same bytes. The receipts share the
    /// prepared frame.
    pub fn verify_prepared_with(
        &self,
        batch: &PreparedBatch,
        memo: Option<&mut dyn SignatureMemo>,
        mut keep: impl FnMut(&Entry) -> bool,
    ) -> Result<Vec<VerifiedReceipt>, ReceiptError> {
        let id = batch.witness();
        let slot = self.check_batch(id, batch.message(), batch.signature(), memo)?;
        Ok(batch
            .entries()
            .iter()
            .zip(0u16..)
            .filter(|(e, _)| keep(e))
            .map(|(e, entry)| {
                VerifiedReceipt::from_log_batch(batch.shared().clone(), entry, e.receipt(id), slot)
            })
            .collect())
    }

    /// A batch's one signature (over `message`, by the witness `id` names) against
    /// the registered, active witness's key, through `memo` when given: the witness's
    /// slot when it verifies. The check is `ReceiptBatch::verify_witness`'s (the named
    /// witness is the key's, and the signature verifies strictly); the memo holds that
    /// answer under (key, message, signature).
    fn check_batch(
        &self,
        id: WitnessId,
        message: &[u8; 32],
        signature: &[u8; 64],
        memo: Option<&mut dyn SignatureMemo>,
    ) -> Result<u16, ReceiptError> {
        let (slot, w) = self.signer(id)?;
        let check = || {
            id == crypto::witness_id(w.key.as_bytes())
                && crypto::verify(&w.key, message, signature).is_ok()
        };
        let valid = match memo {
            None => check(),
            Some(m) => {
                let key = w.key.to_bytes();
                match m.get(&key, message, signature) {
                    Some(valid) => valid,
                    None => {
                        let valid = check();
                        m.put(&key, message, signature, valid);
                        valid
                    }
                }
            }
        };
        if !valid {
            return Err(ReceiptError::BadSignature(id));
        }
        Ok(slot)
    }

    /// The slot and record of the active witness `id`.
    fn signer(&self, id: WitnessId) -> Result<(u16, &Witness), ReceiptError> {
        let slot = self.slot_of(&id).ok_or(ReceiptError::UnknownWitness(id))?;
        let w = self.get(slot).ok_or(ReceiptError::UnknownWitness(id))?;
        if w.retired {
            return Err(ReceiptError::Retired(id));
        }
        Ok((slot, w))
    }
}
