//! Lineage records: one [`Record`] per fact, each committing to its predecessor.
//!
//! Records borrow their byte fields (frames, receipts, proofs) so that appending an
//! observation copies the frame once, into the encoding; decoding borrows from the
//! export.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};
use slope_proto::{DeviceId, Digest};

use crate::time::Millis;
use crate::trust::decision::{Admission, MAX_REASONS, Reason};
use crate::trust::evidence::{Evidence, MAX_RECEIPTS};
use crate::trust::grant::{Grant, Revocation};
use crate::trust::operator;
use crate::trust::policy::Policy;
use crate::trust::weighting::Weights;
use crate::trust::zone::{Position, Zone};

/// Domain of a record digest.
pub const CTX_RECORD: &str = "slope v1 lineage record";

/// One record of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record<'a> {
    /// Position in the log, from 0 (the genesis record).
    pub index: u64,
    /// Digest of the previous record (all zeros for the genesis record).
    pub prev: Digest,
    /// The engine's `now` when the record was appended.
    pub at: Millis,
    #[serde(borrow)]
    pub entry: Entry<'a>,
}

/// What a record says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry<'a> {
    /// Record 0: who writes the log, who may act on it, under which policy.
    Genesis(Genesis),
    /// A verified attestation as received, with its receipts.
    #[serde(borrow)]
    Observation(Observation<'a>),
    /// The evidence measured and the scores it gave.
    Weighting {
        device: DeviceId,
        seq: u32,
        evidence: Evidence,
        weights: Weights,
    },
    /// The admission decision and its reasons.
    Decision {
        device: DeviceId,
        seq: u32,
        digest: Digest,
        admission: Admission,
        reasons: heapless::Vec<Reason, MAX_REASONS>,
    },
    /// A grant issued or renewed.
    Grant(Grant),
    /// A grant revoked or narrowed.
    Revocation(Revocation),
    /// A divergence proof (encoded `DivergenceProof`).
    Divergence {
        device: DeviceId,
        seq: u32,
        proof: &'a [u8],
    },
    /// A signed operator action.
    Operator(operator::Signed),
    /// `devices` newcomers idle longer than `Bounds::newcomer_idle_ms` stopped being
    /// tracked (`Engine::evict_idle` at this record's `at`); their history stays here.
    Eviction { devices: u32 },
    /// A batched witness receipt (encoded `slope_proto::ReceiptBatch`) whose signature
    /// verified, recorded once, before the first observation that names one of its
    /// entries ([`ReceiptRef::Batch`]).
    ReceiptBatch { frame: &'a [u8] },
    /// A verified compact (suite-2) attestation as received, with its receipts
    /// (docs/trust-model.md, "Compact attestations").
    #[serde(borrow)]
    Compact(CompactObservation<'a>),
    /// A suite-2 divergence proof (encoded `slope_proto::compact::CompactProof`), checked
    /// under the clock bound `max_skew_ms` the engine was given, with both receipt
    /// signers registered, active witnesses at this point of the log.
    CompactDivergence {
        device: DeviceId,
        interval: u32,
        max_skew_ms: u64,
        proof: &'a [u8],
    },
}

/// A receipt an observation considered: a single receipt's frame, or an entry of a
/// batch recorded earlier in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReceiptRef<'a> {
    /// A single witness receipt frame.
    Frame(&'a [u8]),
    /// Entry `entry` of the batch held by record `record` (an `Entry::ReceiptBatch`).
    Batch { record: u64, entry: u16 },
}

/// The genesis record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// The gateway's ed25519 public key: it signs export checkpoints (and, as a
    /// witness, receipts).
    pub author: [u8; 32],
    /// Operator public keys whose signed actions the engine accepts.
    pub operators: Vec<[u8; 32]>,
    /// The gateway's own radio, as a witness (its key is `author`).
    pub local: Option<Local>,
    /// The trust policy in force.
    pub policy: Policy,
}

/// The gateway's own radio as a witness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Local {
    pub zone: Zone,
    pub position: Option<Position>,
}

/// A verified attestation as the engine received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation<'a> {
    pub device: DeviceId,
    pub digest: Digest,
    /// The exact attestation frame.
    pub frame: &'a [u8],
    /// What the gateway's own radio observed.
    pub rx: slope_proto::Observation,
    /// Receipts that were verified and considered, in the order the engine took them:
    /// single receipt frames, and references to entries of recorded batches.
    #[serde(borrow)]
    pub receipts: heapless::Vec<ReceiptRef<'a>, MAX_RECEIPTS>,
}

/// A compact (suite-2) attestation the verifier authenticated, as the engine received
/// it. What `lineage::verify` can re-check: the frame decodes as a compact attestation
/// of `interval` for `device`, and every receipt is signed by a witness registered
/// before it and names this frame (`trust::compact::receipt_digest`). What it cannot:
/// the MAC (its key is disclosed by a later frame of the device, and the chain anchor,
/// signed by the device's suite-1 key, is not in the log) and the receive-time
/// condition (it rests on the gateway's clock at `rx_ms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactObservation<'a> {
    pub device: DeviceId,
    pub interval: u32,
    /// The exact compact attestation frame.
    pub frame: &'a [u8],
    /// When the receiving gateway stamped the frame (its clock).
    pub rx_ms: u64,
    /// What the gateway's own radio observed, when the verifier was given it.
    pub rx: Option<slope_proto::Observation>,
    #[serde(borrow)]
    pub receipts: heapless::Vec<ReceiptRef<'a>, MAX_RECEIPTS>,
}

/// Domain of a receipt-batch record's digest ([`Entry::ReceiptBatch`]): such a record
/// commits to its batch through the batch's digest, not its bytes (see [`digest`]).
pub const CTX_BATCH_RECORD: &str = "slope v1 lineage batch record";

/// The pre-hashed derive-key contexts of record digests (saves one blake3 compression
/// per record; the digests are the same as [`digest`]'s).
#[derive(Debug, Clone)]
pub struct Contexts {
    record: blake3::hazmat::ContextKey,
    batch: blake3::hazmat::ContextKey,
}

impl Contexts {
    /// Hashes both contexts.
    pub fn new() -> Self {
        Self {
            record: blake3::hazmat::hash_derive_key_context(CTX_RECORD),
            batch: blake3::hazmat::hash_derive_key_context(CTX_BATCH_RECORD),
        }
    }
}

impl Default for Contexts {
    fn default() -> Self {
        Self::new()
    }
}

/// The digest of an encoded record ([`digest`]), with the contexts hashed beforehand.
pub fn digest_with(ctx: &Contexts, encoded: &[u8]) -> Digest {
    match split_batch(encoded) {
        Some((head, frame)) => {
            batch_record(ctx, head, &slope_proto::crypto::receipt_batch_digest(frame))
        }
        None => keyed(&ctx.record, &[encoded]),
    }
}

/// The digest of an encoded record:
///
/// - a receipt-batch record (`head ‖ varint len ‖ frame`, `head` being its index,
///   `prev`, `at` and the variant index 9):
///   `blake3-derive_key(CTX_BATCH_RECORD, head ‖ receipt_batch_digest(frame))`, so that
///   a holder of the batch's digest hashes 80 bytes instead of the whole batch again;
/// - any other record: `blake3-derive_key(CTX_RECORD, record bytes)`.
///
/// Which rule applies follows from the bytes alone (the variant index in the record's
/// head), and the two contexts keep the two kinds of input apart.
pub fn digest(encoded: &[u8]) -> Digest {
    digest_with(&Contexts::new(), encoded)
}

/// The digest of a receipt-batch record whose head (index, prev, at, variant index) is
/// `head` and whose frame has the digest `batch` (the caller vouches for it).
pub(crate) fn batch_record(ctx: &Contexts, head: &[u8], batch: &Digest) -> Digest {
    keyed(&ctx.batch, &[head, &batch.0])
}

fn keyed(key: &blake3::hazmat::ContextKey, parts: &[&[u8]]) -> Digest {
    Digest(slope_proto::crypto::derive(key, parts))
}

/// Variant index of [`Entry::ReceiptBatch`] (its declaration order, which postcard
/// encodes).
pub(crate) const RECEIPT_BATCH_VARIANT: u64 = 9;

/// Splits an encoded receipt-batch record into its head (index, prev, at, variant) and
/// its frame; `None` for any other record, or bytes that are not one.
fn split_batch(encoded: &[u8]) -> Option<(&[u8], &[u8])> {
    let (_, rest) = varint(encoded)?;
    let rest = rest.get(32..)?;
    let (_, rest) = varint(rest)?;
    let (variant, rest) = varint(rest)?;
    if variant != RECEIPT_BATCH_VARIANT {
        return None;
    }
    let head = encoded.get(..encoded.len() - rest.len())?;
    let (len, frame) = varint(rest)?;
    (u64::try_from(frame.len()).ok()? == len).then_some((head, frame))
}

/// A postcard `u64` (a varint), and what follows it.
fn varint(b: &[u8]) -> Option<(u64, &[u8])> {
    postcard::take_from_bytes(b).ok()
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use proptest::prelude::*;
    use slope_proto::Digest;

    use super::{Contexts, Entry, Record, digest, digest_with};

    fn plain(encoded: &[u8]) -> Digest {
        Digest(
            *blake3::Hasher::new_derive_key(super::CTX_RECORD)
                .update(encoded)
                .finalize()
                .as_bytes(),
        )
    }

    #[test]
    fn cached_contexts_give_the_same_digest() {
        let k = Contexts::new();
        assert_eq!(digest_with(&k, b"slope"), digest(b"slope"));
        assert_eq!(digest(b"slope"), plain(b"slope"));
    }

    proptest! {
        /// A batch record's digest is the batch rule's, over the head and the batch
        /// digest; any other record's is the plain rule's, over its bytes.
        #[test]
        fn batch_records_commit_through_the_batch_digest(
            index in any::<u64>(),
            at in any::<u64>(),
            prev in any::<[u8; 32]>(),
            frame in proptest::collection::vec(any::<u8>(), 0..3000),
            devices in any::<u32>(),
        ) {
            let prev = Digest(prev);
            let batch = Record { index, prev, at, entry: Entry::ReceiptBatch { frame: &frame } };
            let bytes = postcard::to_extend(&batch, Vec::new()).expect("encodes");
            let head = postcard::to_extend(&(index, prev, at, super::RECEIPT_BATCH_VARIANT as u32), Vec::new())
                .expect("encodes");
            let mut input = head.clone();
            input.extend_from_slice(&slope_proto::crypto::receipt_batch_digest(&frame).0);
            let expected = Digest(
                *blake3::Hasher::new_derive_key(super::CTX_BATCH_RECORD)
                    .update(&input)
                    .finalize()
                    .as_bytes(),
            );
            prop_assert_eq!(digest(&bytes), expected);
            prop_assert_ne!(digest(&bytes), plain(&bytes));
            let batch_digest = slope_proto::crypto::receipt_batch_digest(&frame);
            prop_assert_eq!(super::batch_record(&Contexts::new(), &head, &batch_digest), expected);
            // Truncated or extended bytes are not a batch record: the plain rule.
            for cut in [bytes.len() - 1, bytes.len() + 1] {
                let mut b = bytes.clone();
                b.resize(cut, 0);
                prop_assert_eq!(digest(&b), plain(&b));
            }
            let other = Record { index, prev, at, entry: Entry::Eviction { devices } };
            let bytes = postcard::to_extend(&other, Vec::new()).expect("encodes");
            prop_assert_eq!(digest(&bytes), plain(&bytes));
        }
    }
}
