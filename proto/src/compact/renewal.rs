//! The renewal (kind 2): the old chain commits to the next one.
//!
//! ```text
//! 01 02 02 | short id (8) | interval (varint) | len (varint) | next anchor K'(0) (16) | MAC (8)
//! ```
//!
//! About 41 bytes. It is MAC'd under the old chain's key of `interval` and takes that
//! interval's place (a device sends one frame per interval). The next chain starts at
//! the global interval right after the old chain's last one. Like an attestation, it
//! is buffered until a later frame discloses its key, under the same security
//! condition. A device sends the same renewal in several intervals (identical
//! commitments are one renewal, not a conflict) so that one lost frame costs nothing.

use serde::{Deserialize, Serialize};

use super::crypto::ChainKey;
use super::frame::{Kind, MacedBody};
use super::params::MAX_CHAIN;
use crate::ids::ShortId;

/// The body of a renewal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Renewal {
    pub device: ShortId,
    /// Global interval (of the old chain) whose key MACs this renewal.
    pub interval: u32,
    /// Length of the next chain, 1..=[`MAX_CHAIN`].
    pub len: u32,
    /// The next chain's public end K'(0).
    pub anchor: ChainKey,
}

impl MacedBody for Renewal {
    const KIND: Kind = Kind::Renewal;
    fn device(&self) -> ShortId {
        self.device
    }
    fn interval(&self) -> u32 {
        self.interval
    }
    fn check(&self) -> Result<(), &'static str> {
        if self.interval == 0 {
            return Err("compact interval 0");
        }
        if self.len == 0 || self.len > MAX_CHAIN {
            return Err("renewal chain length out of range");
        }
        Ok(())
    }
}
