//! What the verifier says about one frame: the outcome, its proof-carrying success type
//! [`VerifiedAttestation`], and the typed reasons for rejection.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use slope_proto::proof::ProofError;
use slope_proto::{DecodeError, DeviceId, Digest, Event, Observation, ShortId, SignatureError};

use crate::compact::verifier::{AnchorError, Reject};
use crate::time::Millis;

/// An event whose signature, key epoch and links the verifier has checked.
///
/// Only the verifier constructs it (the fields are private and there is no public
/// constructor), so a `VerifiedAttestation` in hand is proof that the check happened:
/// only a `VerifiedAttestation` may enter a slope, a lineage record or a gossip message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAttestation {
    device: DeviceId,
    event: Event,
    digest: Digest,
    rx: Observation,
    verified_at: Millis,
    gap: u32,
    advanced_head: bool,
}

impl VerifiedAttestation {
    pub(crate) fn new(
        device: DeviceId,
        event: Event,
        digest: Digest,
        rx: Observation,
        verified_at: Millis,
        gap: u32,
        advanced_head: bool,
    ) -> Self {
        Self {
            device,
            event,
            digest,
            rx,
            verified_at,
            gap,
            advanced_head,
        }
    }
    /// Builds a `VerifiedAttestation` WITHOUT verifying anything.
    ///
    /// This bypasses the verifier and breaks the type's promise; it exists only so the
    /// trust benchmark and trust tests can feed the trust engine millions of
    /// attestations without re-running ed25519 for each (verification cost is measured
    /// separately, beside it). It is compiled only with the non-default
    /// `bench-internals` feature, which no production build enables.
    #[cfg(feature = "bench-internals")]
    #[doc(hidden)]
    pub fn assume_verified(
        device: DeviceId,
        event: Event,
        digest: Digest,
        rx: Observation,
        verified_at: Millis,
        gap: u32,
        advanced_head: bool,
    ) -> Self {
        Self::new(device, event, digest, rx, verified_at, gap, advanced_head)
    }
    /// The full device id.
    pub fn device(&self) -> &DeviceId {
        &self.device
    }
    /// The verified event (inception, rotation or interaction).
    pub fn event(&self) -> &Event {
        &self.event
    }
    /// Position in the slope.
    pub fn seq(&self) -> u32 {
        self.event.seq()
    }
    /// The event digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }
    /// What the receiving radio observed (passed in by the caller).
    pub fn rx(&self) -> &Observation {
        &self.rx
    }
    /// The caller's `now` when it was verified.
    pub fn verified_at(&self) -> Millis {
        self.verified_at
    }
    /// Positions skipped between the previous head and this event (lost frames); 0 when
    /// it directly extends the head or fills a hole below it.
    pub fn gap(&self) -> u32 {
        self.gap
    }
    /// Whether this event became the device's new head (false when it fills a hole
    /// below the head, or is historic).
    pub fn advanced_head(&self) -> bool {
        self.advanced_head
    }
    /// The exact frame that was verified.
    pub fn frame(&self) -> &[u8] {
        self.event.frame()
    }
}

/// A missing establishment event an escrowed frame waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Missing {
    /// No inception is known for this short id.
    Inception(ShortId),
    /// The rotation that establishes `epoch` for `device`.
    Rotation { device: DeviceId, epoch: u32 },
}

/// Two validly signed, conflicting events of one device, as a self-contained proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DivergenceEvidence {
    pub device: DeviceId,
    /// Position of the conflict (the lower one for two successors of one event).
    pub seq: u32,
    /// The encoded [`slope_proto::DivergenceProof`]: anyone can check it with
    /// [`crate::verifier::verify_divergence_proof`] and no other state.
    pub proof: Vec<u8>,
    /// The newly received event, verified (it conflicts with an earlier one).
    pub attestation: VerifiedAttestation,
}

/// The verifier's verdict on one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A new position of the device's slope, verified.
    Extended(VerifiedAttestation),
    /// A valid event older than the verifier's window: verified, but not checked for
    /// conflicts here (the caller compares it with its durable history, and may build a
    /// proof with [`crate::verifier::Verifier::prove`]). Changes no state.
    Historic(VerifiedAttestation),
    /// The identical event again (two gateways, two RF chains, a replay): never a
    /// divergence. Changes no state.
    Duplicate {
        device: DeviceId,
        seq: u32,
        digest: Digest,
    },
    /// Validly signed, but it does not link with a held neighbour position: the device
    /// signed two different events at this position or the adjacent one. Not yet a
    /// proof (the other event has not been heard); the event is held, so the missing
    /// sibling completes a divergence proof whenever it arrives, in any order. An honest
    /// device never produces this.
    Unlinked(VerifiedAttestation),
    /// Held until the named establishment event arrives (from any source).
    Escrowed(Missing),
    /// The event is validly signed and conflicts with one the verifier holds.
    Divergence(Box<DivergenceEvidence>),
    /// Refused, with the reason.
    Rejected(VerifyError),
    /// A suite-2 (compact, hash-only) frame: see [`super::compact`]. Its verdicts
    /// arrive later, through [`super::Verifier::poll_outcome`].
    Compact(super::compact::Outcome),
}

/// Why a frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The bytes are not a valid Slope event.
    Decode(DecodeError),
    /// The signature does not verify under the device's key for the event's epoch (or
    /// the revealed key is invalid). A garbage frame at an occupied position lands here,
    /// never in `Divergence`.
    BadSignature,
    /// No known device with this short id has a key that verifies the event.
    UnknownKey,
    /// A rotation reveals a key other than the one its predecessor committed to.
    KeyCommitmentMismatch,
    /// A validly signed event signed in an epoch that a later rotation retired, at a
    /// position after that rotation.
    RetiredKey,
    /// The verifier tracks its maximum number of devices: new inceptions are refused
    /// (known devices keep working).
    Capacity,
    /// An event of an epoch past `Config::max_epochs`: the device's key history is at
    /// its bound, and the rotation it needs is refused.
    EpochLimit,
    /// The frame is an inception for a device that is already known, with other bytes
    /// (impossible: the id is the inception's digest), or an inception where an event
    /// was expected.
    Unexpected,
    /// The proof does not hold (for [`crate::verifier::verify_divergence_proof`]).
    Proof(ProofError),
    /// A suite-2 attestation or renewal refused on arrival (late, from the future,
    /// unknown device, bad disclosure, buffer full, ...).
    Compact(Reject),
    /// A suite-2 anchor refused for a reason other than its signature or its form
    /// (short id taken, conflicting anchor, device bound).
    Anchor(AnchorError),
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "decode: {e}"),
            Self::BadSignature => f.write_str("bad signature"),
            Self::UnknownKey => f.write_str("no known key verifies this event"),
            Self::KeyCommitmentMismatch => f.write_str("rotation reveals an uncommitted key"),
            Self::RetiredKey => f.write_str("event signed with a retired key"),
            Self::Capacity => f.write_str("verifier at device capacity"),
            Self::EpochLimit => f.write_str("epoch past the key-history bound"),
            Self::Unexpected => f.write_str("unexpected event"),
            Self::Proof(e) => write!(f, "proof: {e}"),
            Self::Compact(e) => write!(f, "compact frame: {e}"),
            Self::Anchor(e) => write!(f, "compact anchor: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for VerifyError {}

impl From<DecodeError> for VerifyError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}

impl From<SignatureError> for VerifyError {
    fn from(_: SignatureError) -> Self {
        Self::BadSignature
    }
}
