//! The compact attestation (kind 1): one per interval, MAC'd under the interval's key,
//! disclosing the key of interval `interval − delay`.
//!
//! ```text
//! 01 02 01 | short id (8) | interval (varint, 3 B up to 2^21) | disclosed K(i−d) (16) | payload (1 + n) | MAC (8)
//! ```
//!
//! With an 8-byte payload: 3 + 8 + 3 + 16 + 9 + 8 = 47 bytes (budget 51, EU868 DR0).
//! `disclosed` is all zeros when `interval − delay` lies before the device's first
//! chain (nothing to disclose yet); a verifier ignores it then.

use heapless::Vec;
use serde::{Deserialize, Serialize};

use super::crypto::ChainKey;
use super::frame::{Kind, MacedBody};
use crate::ids::ShortId;
use crate::limits::MAX_PAYLOAD;

/// The body of a compact attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    pub device: ShortId,
    /// Global interval, ≥ 1.
    pub interval: u32,
    /// The chain key of global interval `interval − delay`.
    pub disclosed: ChainKey,
    /// Application payload, at most [`MAX_PAYLOAD`] bytes.
    pub payload: Vec<u8, MAX_PAYLOAD>,
}

impl MacedBody for Attestation {
    const KIND: Kind = Kind::Attestation;
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
        Ok(())
    }
}
