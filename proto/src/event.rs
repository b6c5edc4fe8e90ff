//! The events of a slope: inception (position 0), rotations (establishment events that
//! change the signing key) and interactions (routine attestations).
//!
//! Every event after the inception names its position (`seq`) and the link digest of
//! its predecessor (`prev`), so two different events at one position are unambiguous,
//! and its key `epoch` (0 for the inception key, +1 per rotation), so a verifier knows
//! when an event needs a rotation it has not seen.

use ed25519_dalek::SigningKey;
use heapless::Vec;
use serde::{Deserialize, Serialize};

use crate::crypto;
use crate::envelope::Kind;
use crate::error::{DecodeError, EncodeError};
use crate::ids::{DeviceId, Digest, LinkDigest, NeighbourId, ShortId};
use crate::limits::{MAX_HEARD, MAX_PAYLOAD};
pub use crate::signed::{Body, Signed};

/// Position 0 of a slope. Its digest is the device id; it is signed by the key it names
/// (proof of possession) and commits to the digest of the next key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inception {
    /// The first signing key (epoch 0).
    pub key: [u8; 32],
    /// [`crypto::next_key_digest`] of the key the first rotation must reveal.
    pub next_key: Digest,
    /// The device's announced nominal interval between attestations, in seconds. It
    /// sets the verifier's expectation of regularity; it does not bind the device.
    pub interval_s: u32,
}

/// An establishment event: reveals the key committed by the previous establishment
/// event, signs itself with it, and commits to the following key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    pub device: ShortId,
    /// Position, ≥ 1.
    pub seq: u32,
    pub prev: LinkDigest,
    /// The epoch this rotation establishes, ≥ 1.
    pub epoch: u32,
    /// The revealed key; its [`crypto::next_key_digest`] must equal the previous
    /// establishment event's `next_key`.
    pub key: [u8; 32],
    pub next_key: Digest,
}

/// A heard neighbour: another device whose attestation this device received since its
/// own last attestation (device-to-device corroboration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heard {
    pub id: NeighbourId,
    /// The neighbour's sequence number as heard.
    pub seq: u32,
    /// Received signal strength in dBm, clamped to −128..=127.
    pub rssi_dbm: i8,
}

/// A routine attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    pub device: ShortId,
    /// Position, ≥ 1.
    pub seq: u32,
    pub prev: LinkDigest,
    /// The epoch of the key that signs this event.
    pub epoch: u32,
    /// How many times the device has booted (a continuity input: reboots are visible).
    pub boot: u16,
    /// A compact digest of the device's behaviour (sensor statistics, uptime class):
    /// opaque to the protocol, compared against the device's own history.
    pub behaviour: [u8; 4],
    /// Neighbours heard since the previous attestation, at most [`MAX_HEARD`].
    pub heard: Vec<Heard, MAX_HEARD>,
    /// Application payload, at most [`MAX_PAYLOAD`] bytes.
    pub payload: Vec<u8, MAX_PAYLOAD>,
}

impl Body for Inception {
    const KIND: Kind = Kind::Inception;
    fn check(&self) -> Result<(), &'static str> {
        Ok(())
    }
}

impl Body for Rotation {
    const KIND: Kind = Kind::Rotation;
    fn check(&self) -> Result<(), &'static str> {
        if self.seq == 0 {
            return Err("rotation at position 0");
        }
        if self.epoch == 0 {
            return Err("rotation to epoch 0");
        }
        if self.epoch > self.seq {
            return Err("epoch beyond position");
        }
        Ok(())
    }
}

impl Body for Interaction {
    const KIND: Kind = Kind::Interaction;
    fn check(&self) -> Result<(), &'static str> {
        if self.seq == 0 {
            return Err("interaction at position 0");
        }
        if self.epoch >= self.seq {
            return Err("epoch beyond position");
        }
        Ok(())
    }
}

impl Signed<Inception> {
    /// Encodes and self-signs an inception.
    pub fn incept(body: Inception, key: &SigningKey) -> Result<Self, EncodeError> {
        Self::sign_with(
            body,
            |signed| crypto::signed_message(&crypto::device_id(signed), signed),
            key,
        )
    }

    /// The self-certifying device id this inception creates.
    pub fn device_id(&self) -> DeviceId {
        crypto::device_id(self.signed_bytes())
    }
}

/// Any event of a slope, as the verifier takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Inception(Signed<Inception>),
    Rotation(Signed<Rotation>),
    Interaction(Signed<Interaction>),
}

impl Event {
    /// Decodes an event frame (inception, rotation or interaction).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        match crate::envelope::decode(bytes)? {
            crate::Message::Inception(e) => Ok(Self::Inception(e)),
            crate::Message::Rotation(e) => Ok(Self::Rotation(e)),
            crate::Message::Interaction(e) => Ok(Self::Interaction(e)),
            crate::Message::Receipt(_) => Err(DecodeError::UnexpectedKind {
                expected: Kind::Interaction as u8,
                found: Kind::Receipt as u8,
            }),
            crate::Message::Divergence(_) => Err(DecodeError::UnexpectedKind {
                expected: Kind::Interaction as u8,
                found: Kind::Divergence as u8,
            }),
            crate::Message::ReceiptBatch(_) => Err(DecodeError::UnexpectedKind {
                expected: Kind::Interaction as u8,
                found: Kind::ReceiptBatch as u8,
            }),
        }
    }

    /// Position in the slope.
    pub fn seq(&self) -> u32 {
        match self {
            Self::Inception(_) => 0,
            Self::Rotation(e) => e.body().seq,
            Self::Interaction(e) => e.body().seq,
        }
    }

    /// The key epoch that signs this event.
    pub fn epoch(&self) -> u32 {
        match self {
            Self::Inception(_) => 0,
            Self::Rotation(e) => e.body().epoch,
            Self::Interaction(e) => e.body().epoch,
        }
    }

    /// The predecessor's link digest (none for an inception).
    pub fn prev(&self) -> Option<LinkDigest> {
        match self {
            Self::Inception(_) => None,
            Self::Rotation(e) => Some(e.body().prev),
            Self::Interaction(e) => Some(e.body().prev),
        }
    }

    /// The device's short id (computed for an inception).
    pub fn short_id(&self) -> ShortId {
        match self {
            Self::Inception(e) => e.device_id().short(),
            Self::Rotation(e) => e.body().device,
            Self::Interaction(e) => e.body().device,
        }
    }

    /// The whole frame.
    pub fn frame(&self) -> &[u8] {
        match self {
            Self::Inception(e) => e.frame(),
            Self::Rotation(e) => e.frame(),
            Self::Interaction(e) => e.frame(),
        }
    }

    /// The frame without its signature.
    pub fn signed_bytes(&self) -> &[u8] {
        match self {
            Self::Inception(e) => e.signed_bytes(),
            Self::Rotation(e) => e.signed_bytes(),
            Self::Interaction(e) => e.signed_bytes(),
        }
    }

    /// The raw signature.
    pub fn signature(&self) -> &[u8; 64] {
        match self {
            Self::Inception(e) => e.signature(),
            Self::Rotation(e) => e.signature(),
            Self::Interaction(e) => e.signature(),
        }
    }

    /// The event digest for `device`.
    pub fn digest(&self, device: &DeviceId) -> Digest {
        crypto::event_digest(device, self.signed_bytes())
    }

    /// The message the signature covers, for `device`.
    pub fn message(&self, device: &DeviceId) -> [u8; 32] {
        crypto::signed_message(device, self.signed_bytes())
    }

    /// Whether this is an establishment event (inception or rotation).
    pub fn is_establishment(&self) -> bool {
        !matches!(self, Self::Interaction(_))
    }
}
