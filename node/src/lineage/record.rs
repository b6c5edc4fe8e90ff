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

/// The pre-hashed derive-key context of record digests (saves one blake3 compression
/// per record; the digest is the same as [`digest`]'s).
pub fn context_key() -> blake3::hazmat::ContextKey {
    blake3::hazmat::hash_derive_key_context(CTX_RECORD)
}

/// The digest of an encoded record, with the context key from [`context_key`].
pub fn digest_with(key: &blake3::hazmat::ContextKey, encoded: &[u8]) -> Digest {
    use blake3::hazmat::HasherExt;
    Digest(
        *blake3::Hasher::new_from_context_key(key)
            .update(encoded)
            .finalize()
            .as_bytes(),
    )
}

/// The digest of an encoded record.
pub fn digest(encoded: &[u8]) -> Digest {
    Digest(
        *blake3::Hasher::new_derive_key(CTX_RECORD)
            .update(encoded)
            .finalize()
            .as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn cached_context_gives_the_same_digest() {
        let k = super::context_key();
        assert_eq!(super::digest_with(&k, b"slope"), super::digest(b"slope"));
    }
}
