//! [`Engine::restore`]: rebuilds an engine — its configuration and every device's hot
//! state — by replaying the lineage in a store, so that a gateway that restarts decides
//! exactly as an engine that never stopped.
//!
//! The log holds every input the engine took (the genesis policy, attestation frames
//! — suite 1 and compact — with their radio observations and receipts, divergence proofs, signed operator
//! actions, evictions) and the `now` of each call. Replay feeds each input to the same
//! handler, with the lineage in replay mode: every record the handler would append is
//! encoded and compared, byte for byte, with the stored one, and nothing is written.
//! The first difference is [`RestoreError::Mismatch`]. Restoring is therefore also a
//! check that every decision follows from its inputs under the policy
//! (`lineage::verify_replay` uses it on exports).
//!
//! Inputs are recognised by the record that starts them:
//! - an observation followed by a weighting of the same device: an attestation;
//! - a compact observation (`Entry::Compact`): a compact attestation (only
//!   `Engine::handle_compact` writes one, always before its weighting);
//! - any other observation: the frame of divergence evidence, or of a call whose next
//!   record the store refused; it changed no state and is stepped over;
//! - a divergence record (suite 1 or compact): its proof; a decision quarantining a
//!   device whose proof is already recorded: that proof again;
//! - a decision refusing for capacity or an id collision (logged without the frame):
//!   checked against the registry as it stands;
//! - an operator action; an eviction;
//! - a batched receipt: recorded by the attestation call that first considered one of
//!   its entries, just before that call's observation; replayed as its own step (it
//!   changes only which batches the engine knows are recorded), so that the call's
//!   replay then finds it recorded, as the original call did once it had written it.
//!
//! A call that failed part-way in the original run (the store refused one of its
//! records) left its first records and changed no state. Its replay stops at the same
//! record, also without changing state, and the next input starts there — which must
//! then be a record that starts an input, or the replay fails.
//!
//! What a restore trusts: its own store. Frames and receipts are not re-verified (they
//! were verified before they were logged; the chain of digests is checked as records
//! are read). A log one does not trust is checked with `lineage::verify` first.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use slope_proto::{Digest, Event, Receipt, ReceiptBatch, Signed};

use super::batch::BatchFrame;
use super::compact::Parts;
use super::decision::{Admission, Refusal};
use super::engine::Engine;
use super::error::Error;
use super::evidence::MAX_RECEIPTS;
use super::witness::VerifiedReceipt;
use crate::lineage::{
    AppendError, Entry, Lineage, Observation, ReceiptRef, Record, Storage, StorageError,
};
use crate::time::Millis;
use crate::verifier::VerifiedAttestation;

/// Why an engine could not be restored from a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestoreError {
    /// The store failed.
    Storage(StorageError),
    /// The store holds no record.
    Empty,
    /// Record 0 is not a genesis record.
    Genesis,
    /// A record does not decode, or holds a frame or receipt that does not.
    Decode { record: u64 },
    /// Record `record` is not what the engine derives from the log's inputs (or is
    /// missing, or does not chain, or cannot start an input where it stands).
    Mismatch { record: u64 },
    /// The input starting at `record` is refused when replayed (an operator signature,
    /// a divergence proof, a witness registration).
    Input { record: u64, error: Error },
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Storage(e) => write!(f, "restore: {e}"),
            Self::Empty => f.write_str("restore: the store holds no lineage"),
            Self::Genesis => f.write_str("restore: record 0 is not a genesis record"),
            Self::Decode { record } => write!(f, "restore: record {record} does not decode"),
            Self::Mismatch { record } => write!(
                f,
                "restore: record {record} does not follow from the log's inputs"
            ),
            Self::Input { record, error } => {
                write!(
                    f,
                    "restore: the input at record {record} is refused: {error}"
                )
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RestoreError {}

fn read<S: Storage>(s: &S, i: u64, out: &mut Vec<u8>) -> Result<(), RestoreError> {
    match s.read(i, out) {
        Ok(true) => Ok(()),
        Ok(false) => Err(RestoreError::Mismatch { record: i }),
        Err(e) => Err(RestoreError::Storage(e)),
    }
}

impl<S: Storage> Engine<S> {
    /// Rebuilds the engine whose lineage is in `storage` by replaying it (see the
    /// module documentation). The engine then appends after the last stored record.
    /// Cost: one decision per logged attestation, without signature checks.
    pub fn restore(storage: S) -> Result<Self, RestoreError> {
        let mut buf = Vec::new();
        match storage.read(0, &mut buf) {
            Ok(true) => {}
            Ok(false) => return Err(RestoreError::Empty),
            Err(e) => return Err(RestoreError::Storage(e)),
        }
        let genesis = match postcard::from_bytes::<Record<'_>>(&buf) {
            Ok(Record {
                index: 0,
                prev,
                entry: Entry::Genesis(g),
                ..
            }) if prev == Digest([0; 32]) => g,
            _ => return Err(RestoreError::Genesis),
        };
        let head = crate::lineage::record::digest(&buf);
        let author = genesis.author;
        let mut e = Self::with_lineage(&genesis, |_| Ok(Lineage::replaying(storage, author, head)))
            .map_err(|error| RestoreError::Input { record: 0, error })?;
        let mut peek = Vec::new();
        let len = e.lineage.storage().len();
        while e.lineage.next_index() < len {
            let i = e.lineage.next_index();
            e.replay_input(i, &mut buf, &mut peek)?;
            if e.lineage.next_index() == i {
                return Err(RestoreError::Mismatch { record: i });
            }
        }
        e.lineage
            .end_replay()
            .map_err(|_| RestoreError::Mismatch { record: len })?;
        Ok(e)
    }

    /// Replays the input whose first record is `i`.
    fn replay_input(
        &mut self,
        i: u64,
        buf: &mut Vec<u8>,
        peek: &mut Vec<u8>,
    ) -> Result<(), RestoreError> {
        read(self.lineage.storage(), i, buf)?;
        let rec: Record<'_> =
            postcard::from_bytes(buf).map_err(|_| RestoreError::Decode { record: i })?;
        let at = rec.at;
        let outcome = match &rec.entry {
            Entry::Observation(o) => {
                let next: Option<Record<'_>> = if i + 1 < self.lineage.storage().len() {
                    read(self.lineage.storage(), i + 1, peek)?;
                    postcard::from_bytes(peek).ok()
                } else {
                    None
                };
                match next.map(|r| r.entry) {
                    Some(Entry::Weighting {
                        device, evidence, ..
                    }) if device == o.device => {
                        let att = logged_attestation(i, o, at)?;
                        let receipts =
                            self.logged_receipts(i, &o.receipts, evidence.discounts.excess)?;
                        self.handle_attestation(at, &att, &receipts).map(drop)
                    }
                    _ => self.lineage.skip().map(drop).map_err(Error::Lineage),
                }
            }
            Entry::Compact(o) => {
                // Only a compact decision writes one (always followed by its weighting).
                let receipts = self.logged_receipts(i, &o.receipts, self.logged_excess(i)?)?;
                let parts = Parts {
                    device: o.device,
                    interval: o.interval,
                    rx_ms: o.rx_ms,
                    rx: o.rx.as_ref(),
                    frame: o.frame,
                };
                self.decide_compact(at, &parts, &receipts).map(drop)
            }
            Entry::Divergence { proof, .. } => self.handle_proof(at, proof).map(drop),
            Entry::CompactDivergence {
                proof, max_skew_ms, ..
            } => self.handle_compact_proof(at, proof, *max_skew_ms).map(drop),
            Entry::Decision {
                device,
                seq,
                digest,
                admission,
                ..
            } => match admission {
                Admission::Quarantined(q) if q.record < i => {
                    read(self.lineage.storage(), q.record, peek)?;
                    match postcard::from_bytes::<Record<'_>>(peek) {
                        Ok(Record {
                            entry: Entry::Divergence { proof, .. },
                            ..
                        }) => self.handle_proof(at, proof).map(drop),
                        Ok(Record {
                            entry:
                                Entry::CompactDivergence {
                                    proof, max_skew_ms, ..
                                },
                            ..
                        }) => self.handle_compact_proof(at, proof, max_skew_ms).map(drop),
                        _ => return Err(RestoreError::Mismatch { record: i }),
                    }
                }
                Admission::Refused(r @ (Refusal::Capacity | Refusal::IdCollision)) => {
                    let refused = match self.devices.find(device) {
                        Err(c) => Some(c),
                        Ok(None) if self.devices.full(&self.policy.bounds) => {
                            Some(Refusal::Capacity)
                        }
                        Ok(_) => None,
                    };
                    if refused != Some(*r) {
                        return Err(RestoreError::Mismatch { record: i });
                    }
                    self.refuse(at, *device, *seq, *digest, *r).map(drop)
                }
                _ => return Err(RestoreError::Mismatch { record: i }),
            },
            Entry::Operator(a) => self.handle_operator(at, a).map(drop),
            Entry::ReceiptBatch { frame } => {
                let batch = logged_batch(i, frame)?;
                self.record_batch(at, &batch).map(drop)
            }
            Entry::Eviction { .. } => self.try_evict_idle(at).map(drop),
            _ => return Err(RestoreError::Mismatch { record: i }),
        };
        match outcome {
            Ok(()) => Ok(()),
            // The original call failed at `record` (the store refused it) after
            // storing its first records; the replay stopped there too.
            Err(Error::Lineage(AppendError::Replay { record })) if record > i => Ok(()),
            Err(Error::Lineage(AppendError::Replay { record })) => {
                Err(RestoreError::Mismatch { record })
            }
            Err(Error::Lineage(AppendError::Storage(e))) => Err(RestoreError::Storage(e)),
            Err(error) => Err(RestoreError::Input { record: i, error }),
        }
    }

    /// The receipts of a logged observation, as the engine took them: a receipt's
    /// witness slot is looked up as registered at this point of the log. Receipts
    /// beyond [`MAX_RECEIPTS`] were counted (as excess) but not logged: as many
    /// stand-ins are added, which the engine counts as excess without reading them.
    fn logged_receipts(
        &self,
        i: u64,
        logged: &[ReceiptRef<'_>],
        excess: u8,
    ) -> Result<Vec<VerifiedReceipt>, RestoreError> {
        let mut out = Vec::with_capacity(logged.len());
        // The batch last read, by record: an observation's entries of one batch share it.
        let mut shared: Option<(u64, Arc<BatchFrame>)> = None;
        let mut buf = Vec::new();
        for r in logged {
            let verified = match r {
                ReceiptRef::Frame(f) => {
                    let signed = Signed::<Receipt>::decode(f)
                        .map_err(|_| RestoreError::Decode { record: i })?;
                    let slot = self.logged_witness(i, &signed.body().witness)?;
                    VerifiedReceipt::from_log(signed, slot)
                }
                &ReceiptRef::Batch { record, entry } => {
                    let batch = match &shared {
                        Some((at, b)) if *at == record => b.clone(),
                        _ => {
                            let b = Arc::new(self.logged_batch_record(i, record, &mut buf)?);
                            shared = Some((record, b.clone()));
                            b
                        }
                    };
                    let decoded = ReceiptBatch::decode(batch.frame())
                        .map_err(|_| RestoreError::Decode { record })?;
                    let body = decoded
                        .entry(usize::from(entry))
                        .ok_or(RestoreError::Mismatch { record: i })?
                        .receipt(decoded.witness());
                    let slot = self.logged_witness(i, &body.witness)?;
                    VerifiedReceipt::from_log_batch(batch, entry, body, slot)
                }
            };
            out.push(verified);
        }
        if out.len() == MAX_RECEIPTS {
            let max = usize::from(self.policy.bounds.max_receipts).min(MAX_RECEIPTS);
            let unlogged = usize::from(excess).saturating_sub(MAX_RECEIPTS - max);
            if let Some(last) = out.last().cloned() {
                out.extend(core::iter::repeat_n(last, unlogged));
            }
        }
        Ok(out)
    }

    /// The excess receipts counted by the weighting that follows the observation at
    /// record `i` (0 when the next record is not a weighting: the replay then stops
    /// where the original call did, or reports the mismatch).
    fn logged_excess(&self, i: u64) -> Result<u8, RestoreError> {
        if i + 1 >= self.lineage.storage().len() {
            return Ok(0);
        }
        let mut buf = Vec::new();
        read(self.lineage.storage(), i + 1, &mut buf)?;
        Ok(match postcard::from_bytes::<Record<'_>>(&buf) {
            Ok(Record {
                entry: Entry::Weighting { evidence, .. },
                ..
            }) => evidence.discounts.excess,
            _ => 0,
        })
    }

    /// The registry slot of a logged receipt's witness, as registered at this point.
    fn logged_witness(
        &self,
        i: u64,
        witness: &slope_proto::WitnessId,
    ) -> Result<u16, RestoreError> {
        self.witnesses
            .slot_of(witness)
            .ok_or(RestoreError::Mismatch { record: i })
    }

    /// The batch held by record `record`, named by the observation at record `i`: an
    /// earlier record, and a batched receipt.
    fn logged_batch_record(
        &self,
        i: u64,
        record: u64,
        buf: &mut Vec<u8>,
    ) -> Result<BatchFrame, RestoreError> {
        if record >= i {
            return Err(RestoreError::Mismatch { record: i });
        }
        read(self.lineage.storage(), record, buf)?;
        match postcard::from_bytes::<Record<'_>>(buf) {
            Ok(Record {
                entry: Entry::ReceiptBatch { frame },
                ..
            }) => logged_batch(record, frame),
            _ => Err(RestoreError::Mismatch { record: i }),
        }
    }
}

/// A logged batch frame: it decodes (its signature was checked before it was logged).
fn logged_batch(i: u64, frame: &[u8]) -> Result<BatchFrame, RestoreError> {
    let batch = ReceiptBatch::decode(frame).map_err(|_| RestoreError::Decode { record: i })?;
    Ok(BatchFrame::of(&batch))
}

/// The attestation of a logged observation: its frame decodes and has the logged
/// digest for the logged device.
fn logged_attestation(
    i: u64,
    o: &Observation<'_>,
    at: Millis,
) -> Result<VerifiedAttestation, RestoreError> {
    let event = Event::decode(o.frame).map_err(|_| RestoreError::Decode { record: i })?;
    if event.short_id() != o.device.short() || event.digest(&o.device) != o.digest {
        return Err(RestoreError::Mismatch { record: i });
    }
    Ok(VerifiedAttestation::new(
        o.device, event, o.digest, o.rx, at, 0, true,
    ))
}
