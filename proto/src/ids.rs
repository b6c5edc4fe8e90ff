//! Identifiers and digests: the full self-certifying device id, the short forms that
//! travel on air, and the event digests that link a slope.

use serde::{Deserialize, Serialize};

/// A 32-byte blake3 digest produced under one of the contexts of [`crate::crypto`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Digest(pub [u8; 32]);

/// The self-certifying device identifier: the digest of the device's inception event
/// (see [`crate::crypto::device_id`]). Stored in full; travels on air as a [`ShortId`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeviceId(pub [u8; 32]);

/// The first 8 bytes of a [`DeviceId`], which is what rotations and interactions carry.
/// Collisions (2^-64 for a pair, or a deliberate grind) are resolved by the verifier: it
/// tries the key of every known device with that short id, and only a valid signature
/// attributes the event.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShortId(pub [u8; 8]);

/// The first 4 bytes of a [`DeviceId`], used in heard-neighbour reports. A collision only
/// blurs one piece of evidence; it never attributes a signature.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NeighbourId(pub [u8; 4]);

/// The first 16 bytes of an event [`Digest`]: the link to a predecessor carried on air,
/// and the event reference in a witness receipt.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LinkDigest(pub [u8; 16]);

/// A gateway's witness identifier: the first 8 bytes of the digest of its ed25519 public
/// key (see [`crate::crypto::witness_id`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WitnessId(pub [u8; 8]);

impl DeviceId {
    /// The on-air short form.
    pub fn short(&self) -> ShortId {
        ShortId(prefix(&self.0))
    }
    /// The heard-neighbour form.
    pub fn neighbour(&self) -> NeighbourId {
        NeighbourId(prefix(&self.0))
    }
}

impl Digest {
    /// The on-air link form.
    pub fn link(&self) -> LinkDigest {
        LinkDigest(prefix(&self.0))
    }
}

fn prefix<const N: usize>(full: &[u8; 32]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&full[..N]);
    out
}

macro_rules! hex_debug {
    ($($t:ty),*) => {$(
        impl core::fmt::Debug for $t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Display::fmt(self, f)
            }
        }
        impl core::fmt::Display for $t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                for b in self.0.iter() {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    )*};
}
hex_debug!(
    Digest,
    DeviceId,
    ShortId,
    NeighbourId,
    LinkDigest,
    WitnessId
);
