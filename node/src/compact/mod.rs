//! Suite 2 on the node: compact, hash-only attestations (issue 8, docs/compact-suite.md).
//!
//! - [`chain`]: device-side traversal of a 2^16 hash chain in 1.3 KiB (checkpoints).
//! - [`device`]: one MAC'd frame per interval, delayed key disclosure, renewal.
//! - [`persist`]: the device bound to storage, persist before transmit.
//! - [`verifier`] (alloc): buffering until disclosure, the security condition, lost
//!   frames bridged by hashing forward, renewals, divergence detection.
//! - [`verify_proof`]: the stateless check of a suite-2 divergence proof.
//!
//! Routed inside the one verifier by `verifier::compact`; decided by the trust engine
//! (`trust::Engine::handle_compact`, `handle_compact_proof`); run by the testnet
//! (`--suite compact`) and the firmware (feature `compact`). What each integration
//! covers and leaves out: docs/compact-suite.md, "Integration".

pub mod chain;
pub mod device;
pub mod persist;
#[cfg(feature = "alloc")]
pub mod verifier;

use slope_proto::compact::{CompactProof, Divergence, ProofError};

/// Decodes and checks a suite-2 divergence proof with no other state, under the clock
/// bound `max_skew_ms` of the security condition.
pub fn verify_proof(bytes: &[u8], max_skew_ms: u64) -> Result<Divergence, ProofError> {
    CompactProof::decode(bytes)?.verify(max_skew_ms)
}
