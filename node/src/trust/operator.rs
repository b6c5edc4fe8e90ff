//! Operator actions: explicit, signed inputs (register or retire a witness, enrol a
//! device in a zone, record a brownfield certificate, release from quarantine, pin or
//! unpin a scope), each attributed (who) and justified (why).
//!
//! Decision: operator actions are *signed*, not merely attributed. An operator is an
//! ed25519 key listed in the lineage's genesis record; the signature covers the action,
//! the operator id, the reason text and the time, under the context
//! `slope v1 operator action`. A re-verifier of the lineage therefore checks that every
//! action came from a listed operator, without trusting the gateway that logged it.

use core::fmt;

use ed25519_dalek::{SigningKey, VerifyingKey};
use heapless::String;
use serde::{Deserialize, Serialize};
use slope_proto::{DeviceId, Digest, WitnessId, crypto};

use super::grant::Scope;
use super::zone::{Position, Zone};
use crate::time::Millis;

/// Largest reason text, bytes.
pub const MAX_WHY: usize = 160;

/// Domain of an operator action signature.
pub const CTX_OPERATOR_ACTION: &str = "slope v1 operator action";
/// Domain of an operator id.
pub const CTX_OPERATOR_ID: &str = "slope v1 operator id";

/// An operator's id: the first 8 bytes of a domain-separated digest of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OperatorId(pub [u8; 8]);

impl OperatorId {
    /// The id of an operator key.
    pub fn of(key: &[u8; 32]) -> Self {
        let d = blake3::Hasher::new_derive_key(CTX_OPERATOR_ID)
            .update(key)
            .finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&d.as_bytes()[..8]);
        Self(id)
    }
}

/// What the operator does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Action {
    /// Register (or update) a witness: its receipts count from now on.
    RegisterWitness {
        key: [u8; 32],
        zone: Zone,
        position: Option<Position>,
    },
    /// Retire a witness: its receipts no longer count.
    RetireWitness { witness: WitnessId },
    /// Enrol a device in a trust zone, optionally with its position.
    Enroll {
        device: DeviceId,
        zone: Zone,
        position: Option<Position>,
    },
    /// A brownfield certificate the gateway validated for this device (digest of the
    /// certificate, and its expiry): one weighted observation, never a precondition.
    Certificate {
        device: DeviceId,
        certificate: Digest,
        not_after: Millis,
    },
    /// Release a device from quarantine after investigation. Its history is kept; it
    /// re-enters at restricted scope.
    Release { device: DeviceId },
    /// Pin a device to a scope (until unpinned). Quarantine still overrides a pin.
    Pin { device: DeviceId, scope: Scope },
    /// Remove a pin.
    Unpin { device: DeviceId },
}

/// A signed operator action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    pub action: Action,
    pub by: OperatorId,
    pub why: String<MAX_WHY>,
    pub at: Millis,
    /// ed25519 signature, as two halves (serde has no 64-byte arrays).
    pub signature: [[u8; 32]; 2],
}

#[derive(Serialize)]
struct Signable<'a> {
    action: &'a Action,
    by: &'a OperatorId,
    why: &'a str,
    at: Millis,
}

/// Why an operator action was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActionError {
    /// The operator is not listed in the genesis record.
    UnknownOperator(OperatorId),
    /// The signature does not verify.
    BadSignature,
    /// The action could not be encoded (too large).
    Encode,
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownOperator(o) => write!(f, "unknown operator {:02x?}", o.0),
            Self::BadSignature => f.write_str("bad operator signature"),
            Self::Encode => f.write_str("operator action does not encode"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ActionError {}

fn message(
    action: &Action,
    by: &OperatorId,
    why: &str,
    at: Millis,
) -> Result<[u8; 32], ActionError> {
    let mut buf = [0u8; 512];
    let bytes = postcard::to_slice(
        &Signable {
            action,
            by,
            why,
            at,
        },
        &mut buf,
    )
    .map_err(|_| ActionError::Encode)?;
    Ok(*blake3::Hasher::new_derive_key(CTX_OPERATOR_ACTION)
        .update(bytes)
        .finalize()
        .as_bytes())
}

impl Signed {
    /// Signs an action (the operator's console does this; the key never enters the
    /// gateway).
    pub fn sign(
        action: Action,
        why: String<MAX_WHY>,
        at: Millis,
        key: &SigningKey,
    ) -> Result<Self, ActionError> {
        let by = OperatorId::of(key.verifying_key().as_bytes());
        let m = message(&action, &by, &why, at)?;
        let sig = crypto::sign(key, &m);
        let mut halves = [[0u8; 32]; 2];
        halves[0].copy_from_slice(&sig[..32]);
        halves[1].copy_from_slice(&sig[32..]);
        Ok(Self {
            action,
            by,
            why,
            at,
            signature: halves,
        })
    }

    /// Checks the signature under the key of the operator it names, among `operators`.
    pub fn verify(&self, operators: &[[u8; 32]]) -> Result<(), ActionError> {
        let key = operators
            .iter()
            .find(|k| OperatorId::of(k) == self.by)
            .ok_or(ActionError::UnknownOperator(self.by))?;
        let key: VerifyingKey =
            crypto::verifying_key(key).map_err(|_| ActionError::BadSignature)?;
        let m = message(&self.action, &self.by, &self.why, self.at)?;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&self.signature[0]);
        sig[32..].copy_from_slice(&self.signature[1]);
        crypto::verify(&key, &m, &sig).map_err(|_| ActionError::BadSignature)
    }
}
