//! Suite 2: compact, hash-only attestations for the slowest data rates (issue 8).
//!
//! A device commits to the anchor of a one-way blake3 hash chain in an [`anchor`] message
//! signed once with its suite-1 (ed25519) key. After that, every routine
//! [`attestation`] carries an 8-byte MAC under the chain key of its interval and
//! discloses the key of the interval `delay` intervals earlier (TESLA, RFC 4082). A
//! verifier buffers an attestation until its key is disclosed and accepts it only if it
//! was received before that key could have been known (the security condition in
//! `slope-node`'s `compact::verifier`). A [`renewal`] commits to the next chain under
//! the old one. Two different frames that verify under one disclosed key for one
//! interval, each with a gateway's timestamp [`receipt`] proving it arrived in time,
//! are a divergence [`proof`].
//!
//! Every frame starts with the envelope header `01 02 kind` (version 1, suite 2). The
//! suite-1 decoder [`crate::decode`] keeps refusing these with `UnknownSuite(2)`; this
//! module's [`decode`] is their entry point, and a router that looks at byte 1 picks
//! one or the other (docs/compact-suite.md, "Routing").
//!
//! Map:
//! - [`params`]: bounds and default parameters, each with its reason.
//! - [`crypto`]: the chain step, MAC keys, MACs, digests (domain-separated blake3).
//! - [`frame`]: the shared header and the MAC'd frame container.
//! - [`anchor`], [`attestation`], [`renewal`], [`receipt`], [`proof`]: the messages.
//! - [`echo`]: the gateway's unsigned time echo, a downlink to the device.
//! - [`error`]: the proof error type.

pub mod anchor;
pub mod attestation;
pub mod crypto;
pub mod echo;
pub mod error;
pub mod frame;
pub mod params;
pub mod proof;
pub mod receipt;
pub mod renewal;

pub use anchor::{Anchor, SignedAnchor};
pub use attestation::Attestation;
pub use crypto::ChainKey;
pub use echo::Echo;
pub use error::ProofError;
pub use frame::{Kind, Maced, SUITE};
pub use proof::{CompactProof, Dating, Divergence};
pub use receipt::Receipt;
pub use renewal::Renewal;

use crate::error::DecodeError;

/// Any suite-2 message, decoded and checked for form (MACs and signatures need state or
/// disclosed keys: see `slope-node`'s `compact` module and [`CompactProof::verify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message<'a> {
    Anchor(SignedAnchor),
    Attestation(Maced<Attestation>),
    Renewal(Maced<Renewal>),
    Receipt(Receipt),
    Divergence(CompactProof<'a>),
    Echo(Echo),
}

/// Decodes any suite-2 message (header `01 02 kind`). Never panics, never allocates.
pub fn decode(bytes: &[u8]) -> Result<Message<'_>, DecodeError> {
    Ok(match frame::parse_header(bytes)? {
        Kind::Anchor => Message::Anchor(SignedAnchor::decode(bytes)?),
        Kind::Attestation => Message::Attestation(Maced::decode(bytes)?),
        Kind::Renewal => Message::Renewal(Maced::decode(bytes)?),
        Kind::Receipt => Message::Receipt(Receipt::decode(bytes)?),
        Kind::Divergence => Message::Divergence(CompactProof::decode(bytes)?),
        Kind::Echo => Message::Echo(Echo::decode(bytes)?),
    })
}
