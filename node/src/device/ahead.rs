//! Signatures made ahead: a host that runs many devices (the simulator) can have a
//! device's next interaction signed on another core, long before the device attests,
//! and the device adopts that signature at its wake-up — only when it is for exactly
//! the key and the message it is about to sign (otherwise it signs itself, as
//! [`super::Slope::attest`] does). Ed25519 signatures are deterministic, so the frame
//! and the committed state are the same bytes either way: only where the signing ran
//! moves. Firmware has no use for this and does not link it.

use ed25519_dalek::{SigningKey, VerifyingKey};
use slope_proto::crypto;
use slope_proto::limits::SIGNATURE_LEN;

/// The signing one future attestation needs: the device's current key and the message
/// it will sign, from [`super::Slope::sign_ahead`]. Holds the secret key (erased when
/// dropped); send it to the thread that signs, and nowhere else.
pub struct SignJob {
    pub(super) key: SigningKey,
    pub(super) message: [u8; 32],
}

impl SignJob {
    /// The public key the signature will verify under.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The 32-byte message to sign.
    pub fn message(&self) -> &[u8; 32] {
        &self.message
    }

    /// Signs (the ed25519 signing [`super::Slope::attest`] would do at the wake-up).
    pub fn sign(self) -> Ahead {
        Ahead {
            public: self.key.verifying_key().to_bytes(),
            message: self.message,
            signature: crypto::sign(&self.key, &self.message),
        }
    }
}

/// A signature made ahead by [`SignJob::sign`], for
/// [`super::Slope::attest_ahead`]. Only `SignJob::sign` makes one, so it is always a
/// valid signature of its message under its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ahead {
    public: [u8; 32],
    message: [u8; 32],
    signature: [u8; SIGNATURE_LEN],
}

impl Ahead {
    /// The signature (of [`SignJob::message`] under [`SignJob::verifying_key`]).
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// The signature, when it is for `message` under `key`.
    pub(super) fn adopt(
        &self,
        key: &SigningKey,
        message: &[u8; 32],
    ) -> Option<[u8; SIGNATURE_LEN]> {
        (self.message == *message && self.public == key.verifying_key().to_bytes())
            .then_some(self.signature)
    }
}
