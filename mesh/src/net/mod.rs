//! Gateway-to-gateway networking over libp2p.
//!
//! - [`behaviour`]: the composed [`Behaviour`] and its scoring.
//! - [`topics`]: gossipsub topics (attestations, receipts, divergence proofs).
//! - [`sync`]: the summary/fetch protocol and the summary comparison.
//! - [`codec`]: its size-limited postcard codec.

pub mod behaviour;
pub mod codec;
pub mod sync;
pub mod topics;

pub use behaviour::{Behaviour, BehaviourEvent};
