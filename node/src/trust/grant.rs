//! Governed actuation: a grant (what a device may do, until when, and which decision it
//! came from), distinct from the device's claim, and its revocation.
//!
//! Grants expire unless renewed by a later decision: expiry needs no record, because the
//! grant record carries its `expires` and a re-verifier can read it. Revocations are
//! records.

use serde::{Deserialize, Serialize};
use slope_proto::DeviceId;

use crate::time::Millis;

/// What a device may do. Ordered: `Restricted < Full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Restricted scope: pending continuity (or under monitoring).
    Restricted,
    /// Full scope.
    Full,
}

/// A grant: issued by a decision, expires unless renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub device: DeviceId,
    pub scope: Scope,
    /// Under elevated monitoring (post-actuation checks every attestation).
    pub monitored: bool,
    pub issued: Millis,
    pub expires: Millis,
    /// Lineage index of the decision record this grant came from.
    pub decision: u64,
}

impl Grant {
    /// Whether the grant is in force at `now`.
    pub fn valid_at(&self, now: Millis) -> bool {
        now >= self.issued && now < self.expires
    }
}

/// Why a grant was revoked or narrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Cause {
    /// A divergence proof (lineage index of the divergence record).
    Divergence { record: u64 },
    /// A decision that admitted less (context deviation, expectation mismatch, pin).
    Narrowed { decision: u64, to: Scope },
    /// A decision that refused the device.
    Refused { decision: u64 },
    /// An operator action (lineage index of the action record).
    Operator { record: u64 },
}

/// A revocation record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub device: DeviceId,
    /// Lineage index of the grant decision being revoked.
    pub grant_decision: u64,
    pub scope: Scope,
    pub at: Millis,
    pub cause: Cause,
}
