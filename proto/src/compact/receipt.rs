//! The timestamp receipt (kind 3): a gateway's signed statement "I received the frame
//! with this digest at this time". Travels over libp2p only.
//!
//! | field | type | meaning |
//! |---|---|---|
//! | witness | [u8; 32] | the gateway's ed25519 public key (self-contained proofs) |
//! | frame | [u8; 32] | frame digest of the received suite-2 frame |
//! | rx_ms | u64 varint | receive time, ms since the Unix epoch, gateway clock |
//!
//! followed by an ed25519 signature over `derive_key("slope v2 compact receipt", header
//! ‖ body)`. A MAC proves nothing once its key is public, so a suite-2 divergence
//! proof needs each frame's receive time from a gateway: it is as strong as the
//! gateways that signed its two receipts (docs/compact-suite.md, "Divergence").

use ed25519_dalek::SigningKey;
use heapless::Vec;
use serde::{Deserialize, Serialize};

use super::crypto;
use super::frame::{Kind, expect_kind, header};
use super::params::MAX_RECEIPT;
use crate::codec;
use crate::crypto as c1;
use crate::error::{DecodeError, EncodeError, SignatureError};
use crate::limits::{HEADER_LEN, SIGNATURE_LEN};

/// The body of a timestamp receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub witness: [u8; 32],
    pub frame: [u8; 32],
    pub rx_ms: u64,
}

/// A decoded timestamp receipt with its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    body: Stamp,
    frame: Vec<u8, MAX_RECEIPT>,
}

impl Receipt {
    /// Decodes a receipt canonically. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        expect_kind(bytes, Kind::Receipt)?;
        if bytes.len() > MAX_RECEIPT {
            return Err(DecodeError::Oversize {
                len: bytes.len(),
                max: MAX_RECEIPT,
            });
        }
        let Some(body_end) = bytes.len().checked_sub(SIGNATURE_LEN) else {
            return Err(DecodeError::Truncated);
        };
        if body_end < HEADER_LEN {
            return Err(DecodeError::Truncated);
        }
        let body: Stamp = codec::decode_exact(&bytes[HEADER_LEN..body_end])?;
        let frame = Vec::from_slice(bytes).map_err(|_| DecodeError::Truncated)?;
        Ok(Self { body, frame })
    }

    /// Signs that the frame with digest `frame` was received at `rx_ms`.
    pub fn sign(key: &SigningKey, frame: [u8; 32], rx_ms: u64) -> Result<Self, EncodeError> {
        let body = Stamp {
            witness: key.verifying_key().to_bytes(),
            frame,
            rx_ms,
        };
        let mut buf = [0u8; MAX_RECEIPT];
        buf[..HEADER_LEN].copy_from_slice(&header(Kind::Receipt));
        let n = codec::encode_into(&body, &mut buf[HEADER_LEN..MAX_RECEIPT - SIGNATURE_LEN])?;
        let end = HEADER_LEN + n;
        let sig = c1::sign(key, &crypto::receipt_message(&buf[..end]));
        buf[end..end + SIGNATURE_LEN].copy_from_slice(&sig);
        let frame =
            Vec::from_slice(&buf[..end + SIGNATURE_LEN]).map_err(|_| EncodeError::TooLarge)?;
        Ok(Self { body, frame })
    }

    /// Checks the signature under the key the receipt names (strict ed25519, weak keys
    /// refused). Whether that gateway is trusted is the caller's policy.
    pub fn verify(&self) -> Result<(), SignatureError> {
        let key = c1::verifying_key(&self.body.witness)?;
        let end = self.frame.len() - SIGNATURE_LEN;
        let sig: &[u8; SIGNATURE_LEN] = self.frame[end..]
            .try_into()
            .map_err(|_| SignatureError::BadSignature)?;
        c1::verify(&key, &crypto::receipt_message(&self.frame[..end]), sig)
    }

    pub fn body(&self) -> &Stamp {
        &self.body
    }
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }
}
