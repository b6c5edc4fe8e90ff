//! `slope-proto`: the Slope wire format and its crypto primitives.
//!
//! What it is: the typed messages that travel on air (LoRa) and between gateways
//! (libp2p), their canonical encoding, and the hash and signature rules that bind them.
//!
//! Guarantees:
//! - `no_std`, no allocation, no clock, no randomness, `forbid(unsafe_code)`.
//! - Decoding is checked once at the edge ([`decode`]): it never panics, never allocates,
//!   rejects trailing bytes, non-minimal varints and unknown versions or suites with a
//!   typed [`DecodeError`], and every accepted byte string re-encodes to itself.
//! - Every count and length has a bound written next to its type ([`limits`]).
//!
//! Non-goals: verification *state* (which key is current for a device) lives in
//! `slope-node`; this crate only checks what one message says about itself.
//!
//! Feature flags: `std` (default) only adds `std::error::Error` impls.
//!
//! Map of the crate:
//! - [`ids`]: device identifiers, short forms, digests.
//! - [`crypto`]: domain-separated digests, signing and verification helpers.
//! - [`envelope`]: the 3-byte header (version, suite, kind) and [`decode`].
//! - [`event`]: inception, rotation and interaction (routine attestation) events.
//! - [`receipt`]: witness receipts signed by gateways.
//! - [`batch`]: batched witness receipts, one signature over many receipt bodies
//!   (what gateways gossip to each other).
//! - [`proof`]: divergence proofs, checkable by anyone with no other state.
//! - [`codec`]: the canonical postcard codec shared by all of the above.
//! - [`compact`]: suite 2, compact hash-only attestations (TESLA-style delayed key
//!   disclosure) for the slowest data rates; its own [`compact::decode`].
//! - [`sample`]: deterministic sample messages (fixed seeds) for sizes, tests, fuzzing.
//! - [`limits`]: every bound of the format.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "std")]
extern crate std;

pub mod batch;
pub mod codec;
pub mod compact;
pub mod crypto;
pub mod envelope;
pub mod error;
pub mod event;
pub mod ids;
pub mod limits;
pub mod proof;
pub mod receipt;
pub mod sample;
pub mod signed;

pub use batch::ReceiptBatch;
pub use envelope::{Header, Kind, Message, Suite, decode};
pub use error::{DecodeError, EncodeError, SignatureError};
pub use event::{Event, Heard, Inception, Interaction, Rotation};
pub use ids::{DeviceId, Digest, LinkDigest, NeighbourId, ShortId, WitnessId};
pub use proof::{Divergence, DivergenceProof, ProofError};
pub use receipt::{Observation, Receipt};
pub use signed::{Body, Signed};
