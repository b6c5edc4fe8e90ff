//! The envelope: a 3-byte header in front of every message, and [`decode`], the one
//! entry point for bytes from the outside.
//!
//! ```text
//! +---------+-------+------+------------------------+---------------------+
//! | version | suite | kind | body (canonical        | signature (64 B,    |
//! |  1 B    |  1 B  | 1 B  |  postcard)             |  signed kinds only) |
//! +---------+-------+------+------------------------+---------------------+
//! ```
//!
//! The suite byte selects the cryptographic suite, so a second suite can be added
//! without breaking the first; a decoder refuses suites it does not speak.

use crate::batch::ReceiptBatch;
use crate::error::DecodeError;
use crate::event::{Inception, Interaction, Rotation, Signed};
use crate::limits::HEADER_LEN;
use crate::proof::DivergenceProof;
use crate::receipt::Receipt;

/// The only wire version so far.
pub const VERSION: u8 = 1;

/// The cryptographic suite of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum Suite {
    /// ed25519 signatures (RFC 8032, strict verification) and blake3 digests.
    Ed25519Blake3 = 1,
}

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum Kind {
    Inception = 0,
    Rotation = 1,
    Interaction = 2,
    Receipt = 3,
    Divergence = 4,
    /// A batched witness receipt ([`crate::batch`]).
    ReceiptBatch = 5,
}

impl Kind {
    fn from_u8(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            0 => Self::Inception,
            1 => Self::Rotation,
            2 => Self::Interaction,
            3 => Self::Receipt,
            4 => Self::Divergence,
            5 => Self::ReceiptBatch,
            other => return Err(DecodeError::UnknownKind(other)),
        })
    }
}

/// The checked header of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub suite: Suite,
    pub kind: Kind,
}

impl Header {
    /// Parses and checks the first [`HEADER_LEN`] bytes of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [version, suite, kind, ..] = *bytes else {
            return Err(DecodeError::Truncated);
        };
        if version != VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        if suite != Suite::Ed25519Blake3 as u8 {
            return Err(DecodeError::UnknownSuite(suite));
        }
        Ok(Self {
            suite: Suite::Ed25519Blake3,
            kind: Kind::from_u8(kind)?,
        })
    }

    /// Checks that `bytes` is at most `max` long and starts with a valid header of
    /// `kind`: the common first step of every decoder.
    pub fn expect(bytes: &[u8], kind: Kind, max: usize) -> Result<Self, DecodeError> {
        if bytes.len() > max {
            return Err(DecodeError::Oversize {
                len: bytes.len(),
                max,
            });
        }
        let header = Self::parse(bytes)?;
        if header.kind != kind {
            return Err(DecodeError::UnexpectedKind {
                expected: kind as u8,
                found: header.kind as u8,
            });
        }
        Ok(header)
    }

    /// The header bytes for `kind` in the current version and suite.
    pub fn bytes(kind: Kind) -> [u8; HEADER_LEN] {
        [VERSION, Suite::Ed25519Blake3 as u8, kind as u8]
    }
}

/// Any Slope message, decoded and checked for form (not yet for signatures: signature
/// checks need the device's key state, which the verifier in `slope-node` holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    Inception(Signed<Inception>),
    Rotation(Signed<Rotation>),
    Interaction(Signed<Interaction>),
    Receipt(Signed<Receipt>),
    Divergence(DivergenceProof<'a>),
    ReceiptBatch(ReceiptBatch<'a>),
}

/// Decodes any message. Never panics, never allocates.
pub fn decode(bytes: &[u8]) -> Result<Message<'_>, DecodeError> {
    Ok(match Header::parse(bytes)?.kind {
        Kind::Inception => Message::Inception(Signed::decode(bytes)?),
        Kind::Rotation => Message::Rotation(Signed::decode(bytes)?),
        Kind::Interaction => Message::Interaction(Signed::decode(bytes)?),
        Kind::Receipt => Message::Receipt(Signed::decode(bytes)?),
        Kind::Divergence => Message::Divergence(DivergenceProof::decode(bytes)?),
        Kind::ReceiptBatch => Message::ReceiptBatch(ReceiptBatch::decode(bytes)?),
    })
}
