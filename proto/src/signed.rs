//! `Signed<B>`: a message body together with the exact frame that carries it and its
//! signature. The frame is kept because digests and signatures are over bytes, and a
//! verifier that forwards or stores a message must forward the bytes it checked.

use ed25519_dalek::{SigningKey, VerifyingKey};
use heapless::Vec;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::crypto;
use crate::envelope::{Header, Kind};
use crate::error::{DecodeError, EncodeError, SignatureError};
use crate::ids::{DeviceId, Digest};
use crate::limits::{HEADER_LEN, MAX_FRAME, SIGNATURE_LEN};

/// A body that travels signed: its kind and the format rules its fields must keep.
pub trait Body: Serialize + DeserializeOwned {
    const KIND: Kind;
    /// Rules of the format that types alone do not express.
    fn check(&self) -> Result<(), &'static str>;
}

/// A checked, signed frame of a body of type `B`. Whether the signature is *valid* is
/// the verifier's business (it needs the key); this type only promises the form.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed<B> {
    body: B,
    frame: Vec<u8, MAX_FRAME>,
}

impl<B: core::fmt::Debug> core::fmt::Debug for Signed<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Signed")
            .field("body", &self.body)
            .field("len", &self.frame.len())
            .finish()
    }
}

impl<B: Body> Signed<B> {
    /// Decodes a frame of kind `B::KIND`: header, canonical body, signature, nothing else.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Header::expect(bytes, B::KIND, MAX_FRAME)?;
        if bytes.len() < HEADER_LEN + SIGNATURE_LEN {
            return Err(DecodeError::Truncated);
        }
        let body_bytes = &bytes[HEADER_LEN..bytes.len() - SIGNATURE_LEN];
        let body: B = codec::decode_exact(body_bytes)?;
        body.check().map_err(DecodeError::InvalidField)?;
        let frame = Vec::from_slice(bytes).map_err(|()| DecodeError::Oversize {
            len: bytes.len(),
            max: MAX_FRAME,
        })?;
        Ok(Self { body, frame })
    }

    /// Encodes `body` and signs it for `device` (see [`crypto::signed_message`]).
    pub fn sign(body: B, device: &DeviceId, key: &SigningKey) -> Result<Self, EncodeError> {
        Self::sign_with(body, |signed| crypto::signed_message(device, signed), key)
    }

    /// Encodes `body` for `device` and takes its signature from `sign`, which gets the
    /// 32-byte message (see [`crypto::signed_message`]) and must return the signature
    /// over it: [`Self::sign`] with the signing done elsewhere (a signature computed
    /// ahead, on another core). A wrong signature gives a frame no verifier accepts.
    pub fn sign_by(
        body: B,
        device: &DeviceId,
        sign: impl FnOnce(&[u8; 32]) -> [u8; SIGNATURE_LEN],
    ) -> Result<Self, EncodeError> {
        Self::assemble(body, |signed| crypto::signed_message(device, signed), sign)
    }

    /// Encodes `body` and signs the message `message(signed bytes)` with `key`.
    pub(crate) fn sign_with(
        body: B,
        message: impl FnOnce(&[u8]) -> [u8; 32],
        key: &SigningKey,
    ) -> Result<Self, EncodeError> {
        Self::assemble(body, message, |m| crypto::sign(key, m))
    }

    /// Encodes `body`, then appends `sign(message(signed bytes))`.
    fn assemble(
        body: B,
        message: impl FnOnce(&[u8]) -> [u8; 32],
        sign: impl FnOnce(&[u8; 32]) -> [u8; SIGNATURE_LEN],
    ) -> Result<Self, EncodeError> {
        body.check().map_err(EncodeError::InvalidField)?;
        let mut buf = [0u8; MAX_FRAME];
        buf[..HEADER_LEN].copy_from_slice(&Header::bytes(B::KIND));
        let body_len = codec::encode_into(&body, &mut buf[HEADER_LEN..])?;
        let signed_len = HEADER_LEN + body_len;
        let total = signed_len + SIGNATURE_LEN;
        if total > MAX_FRAME {
            return Err(EncodeError::TooLarge);
        }
        let sig = sign(&message(&buf[..signed_len]));
        buf[signed_len..total].copy_from_slice(&sig);
        let frame = Vec::from_slice(&buf[..total]).map_err(|()| EncodeError::TooLarge)?;
        Ok(Self { body, frame })
    }

    /// Checks the signature for `device` under `key`.
    pub fn verify(&self, device: &DeviceId, key: &VerifyingKey) -> Result<(), SignatureError> {
        crypto::verify(key, &self.message(device), self.signature())
    }

    /// The 32-byte message the signature covers, for batch verification.
    pub fn message(&self, device: &DeviceId) -> [u8; 32] {
        crypto::signed_message(device, self.signed_bytes())
    }

    /// The event digest of this frame for `device`.
    pub fn digest(&self, device: &DeviceId) -> Digest {
        crypto::event_digest(device, self.signed_bytes())
    }
}

impl<B> Signed<B> {
    /// The decoded body.
    pub fn body(&self) -> &B {
        &self.body
    }
    /// The whole frame, as received or sent.
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }
    /// The frame without its signature: what digests and signatures cover.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.frame[..self.frame.len() - SIGNATURE_LEN]
    }
    /// The raw signature.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        let start = self.frame.len() - SIGNATURE_LEN;
        // The frame always ends with exactly SIGNATURE_LEN bytes of signature: both
        // constructors guarantee it, so this conversion cannot fail.
        match self.frame[start..].try_into() {
            Ok(sig) => sig,
            Err(_) => unreachable!("a Signed frame always ends with a signature"),
        }
    }
}
