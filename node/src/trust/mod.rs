//! The trust engine: turns every verified attestation into an explainable, reversible
//! decision about what the device may do, and records everything in the lineage.
//!
//! Inputs: [`Engine::handle_attestation`] (a `VerifiedAttestation` and the receipts
//! verified by [`Engine::verify_receipt`] or, one signature per batch,
//! [`Engine::verify_receipt_batch`]), [`Engine::handle_divergence`] /
//! [`Engine::handle_proof`], and signed [`operator`] actions. Outputs: one [`Decision`]
//! per attestation (tier, weights, reasons, grant issued, grant revoked), and the
//! hash-chained [`crate::lineage`]. Time is an argument; nothing here reads a clock.
//!
//! Map:
//! - [`policy`]: every threshold, serde-deserialisable, documented defaults.
//! - [`evidence`]: continuity, corroboration, context and authority measured for one
//!   attestation; [`weighting`]: the four scores and the total.
//! - [`quorum`]: the witness policy (groups and thresholds); [`witness`]: the witness
//!   registry and [`VerifiedReceipt`]; [`batch`]: batched receipts' shared frames and
//!   which batches the lineage holds; [`zone`]: trust zones and positions.
//! - [`profile`]: per-(device, witness) RF profiles; [`stat`]: quantised running
//!   statistics; [`fixed`]: deterministic logarithms for free-space path loss.
//! - [`admission`]: the admission ladder; [`decision`]: tiers, reasons, decisions.
//! - [`grant`]: grants and revocations; [`operator`]: signed operator actions.
//! - [`device`]: the per-device hot record; [`registry`]: the bounded registry.
//! - [`engine`]: [`Engine`], which ties them together; [`error`]: its errors.
//! - [`restore`]: [`Engine::restore`], rebuilding an engine by replaying its lineage.

pub mod admission;
pub mod batch;
pub mod compact;
pub mod decision;
pub mod device;
pub mod engine;
pub mod error;
pub mod evidence;
pub mod fixed;
pub mod grant;
pub mod operator;
pub mod policy;
pub mod profile;
pub mod quorum;
pub mod registry;
pub mod restore;
pub mod stat;
pub mod weighting;
pub mod witness;
pub mod zone;

pub use batch::{BatchFrame, PreparedBatch};
pub use decision::{Admission, Decision, Quarantine, Reason, Refusal};
pub use engine::Engine;
pub use error::Error;
pub use evidence::Evidence;
pub use grant::{Cause, Grant, Revocation, Scope};
pub use policy::Policy;
pub use restore::RestoreError;
pub use weighting::Weights;
pub use witness::{ReceiptError, VerifiedReceipt};
pub use zone::{Position, Zone};
