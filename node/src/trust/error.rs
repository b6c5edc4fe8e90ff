//! Errors of the trust engine's inputs.

use core::fmt;

use slope_proto::ProofError;

use super::operator::ActionError;
use super::witness::RegisterError;
use crate::lineage::AppendError;

/// Why the engine could not take an input. Nothing is decided (or changed) without its
/// lineage record: a lineage failure fails closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The lineage could not record the input.
    Lineage(AppendError),
    /// A divergence proof does not verify.
    Proof(ProofError),
    /// An operator action is not signed by a listed operator.
    Operator(ActionError),
    /// A witness could not be registered.
    Witness(RegisterError),
    /// The operator action names a device the engine does not track.
    UnknownDevice,
    /// A release names a device that is not quarantined.
    NotQuarantined,
    /// A suite-2 divergence proof does not verify.
    CompactProof(slope_proto::compact::ProofError),
    /// A frame (or renewal) of a suite-2 divergence proof is not dated by witnesses
    /// this engine takes as enough: registered, active witnesses of
    /// [`crate::compact::DATING_ZONES`] trust zones, or this gateway itself.
    Undated,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lineage(e) => write!(f, "lineage: {e}"),
            Self::Proof(e) => write!(f, "divergence proof: {e}"),
            Self::Operator(e) => write!(f, "operator action: {e}"),
            Self::Witness(e) => write!(f, "witness: {e}"),
            Self::UnknownDevice => f.write_str("unknown device"),
            Self::NotQuarantined => f.write_str("device is not quarantined"),
            Self::CompactProof(e) => write!(f, "compact divergence proof: {e:?}"),
            Self::Undated => f.write_str(
                "compact divergence proof: a frame is not dated by witnesses of two trust zones \
                 (or this gateway)",
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

impl From<AppendError> for Error {
    fn from(e: AppendError) -> Self {
        Self::Lineage(e)
    }
}
impl From<ProofError> for Error {
    fn from(e: ProofError) -> Self {
        Self::Proof(e)
    }
}
impl From<ActionError> for Error {
    fn from(e: ActionError) -> Self {
        Self::Operator(e)
    }
}
impl From<RegisterError> for Error {
    fn from(e: RegisterError) -> Self {
        Self::Witness(e)
    }
}
