//! The suite-2 header (`01 02 kind`) and [`Maced`], the container of every frame that
//! a chain key authenticates: `header ‖ body (canonical postcard) ‖ MAC (8 bytes)`.

use heapless::Vec;
use serde::{Serialize, de::DeserializeOwned};

use super::crypto;
use super::params::{MAC_LEN, MAX_COMPACT_FRAME};
use crate::codec;
use crate::envelope::VERSION;
use crate::error::{DecodeError, EncodeError};
use crate::ids::ShortId;
use crate::limits::HEADER_LEN;

/// The suite byte of compact, hash-only messages.
pub const SUITE: u8 = 2;

/// What a suite-2 message is (byte 2 of the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum Kind {
    /// Chain anchor, signed with the device's suite-1 key.
    Anchor = 0,
    /// Routine attestation, MAC'd under its interval's chain key.
    Attestation = 1,
    /// Commitment to the next chain, MAC'd under the old chain.
    Renewal = 2,
    /// A gateway's signed receive timestamp of a frame (libp2p only).
    Receipt = 3,
    /// Divergence proof (libp2p only).
    Divergence = 4,
    /// A gateway's unsigned time echo of a frame it heard (downlink, on air only).
    Echo = 5,
}

/// Checks the header of a suite-2 message and returns its kind.
pub fn parse_header(bytes: &[u8]) -> Result<Kind, DecodeError> {
    let [version, suite, kind, ..] = *bytes else {
        return Err(DecodeError::Truncated);
    };
    if version != VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    if suite != SUITE {
        return Err(DecodeError::UnknownSuite(suite));
    }
    Ok(match kind {
        0 => Kind::Anchor,
        1 => Kind::Attestation,
        2 => Kind::Renewal,
        3 => Kind::Receipt,
        4 => Kind::Divergence,
        5 => Kind::Echo,
        other => return Err(DecodeError::UnknownKind(other)),
    })
}

/// Checks the header and that it names `expected`.
pub(crate) fn expect_kind(bytes: &[u8], expected: Kind) -> Result<(), DecodeError> {
    let found = parse_header(bytes)?;
    if found != expected {
        return Err(DecodeError::UnexpectedKind {
            expected: expected as u8,
            found: found as u8,
        });
    }
    Ok(())
}

/// The header bytes of a suite-2 message of `kind`.
pub fn header(kind: Kind) -> [u8; HEADER_LEN] {
    [VERSION, SUITE, kind as u8]
}

/// The body of a MAC'd frame.
pub trait MacedBody: Serialize + DeserializeOwned {
    /// The header kind of this body.
    const KIND: Kind;
    /// The device (short id) that sent it.
    fn device(&self) -> ShortId;
    /// The global interval whose chain key MACs it (≥ 1).
    fn interval(&self) -> u32;
    /// Field rules beyond the encoding.
    fn check(&self) -> Result<(), &'static str>;

    /// Decodes the body bytes (between header and MAC) canonically and checks the
    /// field rules. The default is the canonical postcard codec; a body with a fixed
    /// layout may decode it by hand, with exactly the same accepted inputs and errors.
    fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let value: Self = codec::decode_exact(body)?;
        value.check().map_err(DecodeError::InvalidField)?;
        Ok(value)
    }
}

/// Checks the header (`expected` kind), the size bounds and the room for a MAC, and
/// returns where the body ends (where the MAC starts).
pub(crate) fn maced_body_end(bytes: &[u8], expected: Kind) -> Result<usize, DecodeError> {
    expect_kind(bytes, expected)?;
    if bytes.len() > MAX_COMPACT_FRAME {
        return Err(DecodeError::Oversize {
            len: bytes.len(),
            max: MAX_COMPACT_FRAME,
        });
    }
    match bytes.len().checked_sub(MAC_LEN) {
        Some(end) if end >= HEADER_LEN => Ok(end),
        _ => Err(DecodeError::Truncated),
    }
}

/// A decoded MAC'd frame: its typed body and its exact bytes. The MAC is not checked
/// here (the key is disclosed later); [`Maced::verify`] checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maced<B> {
    body: B,
    frame: Vec<u8, MAX_COMPACT_FRAME>,
}

impl<B: MacedBody> Maced<B> {
    /// Decodes a frame of kind `B::KIND`, canonically. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let body_end = maced_body_end(bytes, B::KIND)?;
        let body = B::decode_body(&bytes[HEADER_LEN..body_end])?;
        let frame = Vec::from_slice(bytes).map_err(|_| DecodeError::Oversize {
            len: bytes.len(),
            max: MAX_COMPACT_FRAME,
        })?;
        Ok(Self { body, frame })
    }

    /// Encodes `body` and MACs it under `mac_key` (the MAC key of its interval).
    pub fn seal(body: B, mac_key: &[u8; 32]) -> Result<Self, EncodeError> {
        body.check().map_err(EncodeError::InvalidField)?;
        let mut buf = [0u8; MAX_COMPACT_FRAME];
        buf[..HEADER_LEN].copy_from_slice(&header(B::KIND));
        let n = codec::encode_into(&body, &mut buf[HEADER_LEN..MAX_COMPACT_FRAME - MAC_LEN])?;
        let end = HEADER_LEN + n;
        let tag = crypto::mac(mac_key, &buf[..end]);
        buf[end..end + MAC_LEN].copy_from_slice(&tag);
        let frame = Vec::from_slice(&buf[..end + MAC_LEN]).map_err(|_| EncodeError::TooLarge)?;
        Ok(Self { body, frame })
    }

    /// Whether the MAC verifies under `mac_key` (constant-time comparison).
    pub fn verify(&self, mac_key: &[u8; 32]) -> bool {
        crypto::mac_eq(&crypto::mac(mac_key, self.maced_bytes()), self.mac())
    }

    /// The typed body.
    pub fn body(&self) -> &B {
        &self.body
    }
    /// The exact frame bytes.
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }
    /// Header and body: what the MAC covers.
    pub fn maced_bytes(&self) -> &[u8] {
        &self.frame[..self.frame.len() - MAC_LEN]
    }
    /// The 8-byte MAC.
    pub fn mac(&self) -> &[u8; MAC_LEN] {
        let start = self.frame.len() - MAC_LEN;
        self.frame[start..].try_into().unwrap_or(&[0u8; MAC_LEN])
    }
    /// The frame digest (what receipts name).
    pub fn digest(&self) -> [u8; 32] {
        crypto::frame_digest(&self.frame)
    }
}
