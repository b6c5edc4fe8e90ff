//! Graduated admission: the one decision per verified attestation, its tier and the
//! reasons (inputs and thresholds) that produced it.

use core::fmt;

use heapless::Vec;
use serde::{Deserialize, Serialize};
use slope_proto::{DeviceId, Digest, WitnessId};

use super::evidence::Discounts;
use super::grant::{Grant, Revocation, Scope};
use super::operator::OperatorId;
use super::quorum::Verdict;
use super::weighting::Weights;

/// At most this many reasons per decision: each [`Reason`] kind appears at most once, and
/// there are fewer kinds than this.
pub const MAX_REASONS: usize = 16;

/// The admission tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Admission {
    /// Admitted to full scope.
    Full,
    /// Admitted to restricted scope, pending continuity.
    Restricted,
    /// Admitted (restricted scope) with elevated monitoring.
    Monitored,
    /// Deferred for corroboration: the witness policy is not met. An existing grant is
    /// neither renewed nor revoked.
    Deferred,
    /// Refused, with the reason.
    Refused(Refusal),
    /// Quarantined: a divergence proof exists.
    Quarantined(Quarantine),
}

/// Why a device was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Refusal {
    /// The registry is at a bound (`Bounds::max_devices` or `max_newcomers`).
    Capacity,
    /// Another tracked device has the same short id (a ground collision).
    IdCollision,
    /// The total score is below `Admission::refuse_score`.
    InsufficientScore,
    /// A context deviation at or above `Context::severe_q4`.
    SevereDeviation,
}

/// The divergence that quarantined a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantine {
    /// blake3 of the encoded divergence proof.
    pub proof: Digest,
    /// Lineage index of the divergence record.
    pub record: u64,
}

/// One input that shaped a decision, with the threshold it was compared to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Reason {
    /// The total score against the full and refuse thresholds (‰).
    Score { total: u16, full: u16, refuse: u16 },
    /// Depth below what full scope needs.
    Depth { depth: u32, required: u32 },
    /// Age below what full scope needs.
    Age { age_ms: u64, required_ms: u64 },
    /// Fewer established witness profiles than full scope needs.
    Witnesses { profiled: u8, required: u8 },
    /// The witness policy's verdict.
    Quorum(Verdict),
    /// Receipts discounted as implausible or not matching.
    Discounted(Discounts),
    /// A context deviation: magnitude (q4 deviations) at `witnesses` witnesses.
    Deviation {
        witnesses: u8,
        magnitude_q4: u16,
        threshold_q4: u16,
    },
    /// Post-actuation check: the grant's expected witness saw another radio.
    Expectation {
        witness: WitnessId,
        magnitude_q4: u16,
        threshold_q4: u16,
    },
    /// Back from a dormancy gap (continuity weighed with it).
    Dormant { silent_ms: u64, threshold_ms: u64 },
    /// Loss ratio above what is tolerated (‰).
    Loss { lost_permille: u16, tolerated: u16 },
    /// The boot counter went backwards (a restored or cloned state).
    BootRegression { from: u16, to: u16 },
    /// An operator pinned the device to a scope.
    Pinned { scope: Scope, by: OperatorId },
    /// Not the device's new head (a lost frame filling a hole, or a historic event):
    /// evidence counted, no grant issued or renewed.
    NotHead,
    /// A divergence at this position.
    Diverged { seq: u32 },
}

/// The decision on one verified attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub device: DeviceId,
    pub seq: u32,
    pub admission: Admission,
    pub weights: Weights,
    pub reasons: Vec<Reason, MAX_REASONS>,
    /// The grant issued or renewed by this decision.
    pub grant: Option<Grant>,
    /// A grant revoked or narrowed by this decision.
    pub revoked: Option<Revocation>,
    /// Lineage index of the decision record.
    pub record: u64,
}

impl Decision {
    /// The reason of a kind, if present.
    pub fn reason(&self, pick: impl Fn(&Reason) -> bool) -> Option<&Reason> {
        self.reasons.iter().find(|r| pick(r))
    }
}

impl fmt::Display for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => f.write_str("full scope"),
            Self::Restricted => f.write_str("restricted scope, pending continuity"),
            Self::Monitored => f.write_str("admitted with elevated monitoring"),
            Self::Deferred => f.write_str("deferred for corroboration"),
            Self::Refused(r) => write!(f, "refused: {r}"),
            Self::Quarantined(q) => write!(f, "quarantined (divergence record {})", q.record),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Capacity => f.write_str("registry at capacity"),
            Self::IdCollision => f.write_str("short id collides with a tracked device"),
            Self::InsufficientScore => f.write_str("score below the refuse threshold"),
            Self::SevereDeviation => f.write_str("severe context deviation"),
        }
    }
}

/// Pushes a reason; the bound cannot be reached (one reason per kind), and if it ever
/// were, the reason would be dropped rather than panic.
pub(crate) fn push(reasons: &mut Vec<Reason, MAX_REASONS>, r: Reason) {
    let _ = reasons.push(r);
}
