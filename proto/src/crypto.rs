//! Domain-separated digests and the signature rules.
//!
//! Every digest is blake3 in `derive_key` mode with its own context string, so a digest
//! made for one purpose can never be taken for another. The context strings are part of
//! the wire format (docs/protocol.md lists them):
//!
//! | use | context | input |
//! |---|---|---|
//! | device id | `slope v1 device id` | inception frame without its signature |
//! | event digest | `slope v1 event digest` | device id ‖ frame without signature |
//! | signed message | `slope v1 signed event` | device id ‖ frame without signature |
//! | next-key commitment | `slope v1 next key` | the 32-byte ed25519 public key |
//! | receipt signed message | `slope v1 witness receipt` | receipt frame without signature |
//! | witness id | `slope v1 witness id` | the gateway's 32-byte ed25519 public key |
//! | receipt batch signed message | `slope v1 witness receipt batch` | batch frame without signature |
//! | receipt batch digest | `slope v1 witness receipt batch digest` | the whole batch frame |
//!
//! An event's signature is an ed25519 signature over the 32-byte *signed message*
//! digest. Signing a fixed-size digest keeps batch verification cheap and lets the
//! signed input include the full device id, which never travels on air.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::error::SignatureError;
use crate::ids::{DeviceId, Digest, WitnessId};

pub const CTX_DEVICE_ID: &str = "slope v1 device id";
pub const CTX_EVENT_DIGEST: &str = "slope v1 event digest";
pub const CTX_SIGNED_EVENT: &str = "slope v1 signed event";
pub const CTX_NEXT_KEY: &str = "slope v1 next key";
pub const CTX_RECEIPT: &str = "slope v1 witness receipt";
pub const CTX_WITNESS_ID: &str = "slope v1 witness id";
pub const CTX_RECEIPT_BATCH: &str = "slope v1 witness receipt batch";
pub const CTX_RECEIPT_BATCH_DIGEST: &str = "slope v1 witness receipt batch digest";

fn derive(context: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(context);
    for p in parts {
        h.update(p);
    }
    *h.finalize().as_bytes()
}

/// The device id of an inception, from its frame without the signature.
pub fn device_id(inception_signed_bytes: &[u8]) -> DeviceId {
    DeviceId(derive(CTX_DEVICE_ID, &[inception_signed_bytes]))
}

/// The digest of an event (what `prev` links to and receipts name).
pub fn event_digest(device: &DeviceId, signed_bytes: &[u8]) -> Digest {
    Digest(derive(CTX_EVENT_DIGEST, &[&device.0, signed_bytes]))
}

/// The 32-byte message an event's signature covers.
pub fn signed_message(device: &DeviceId, signed_bytes: &[u8]) -> [u8; 32] {
    derive(CTX_SIGNED_EVENT, &[&device.0, signed_bytes])
}

/// The 32-byte message a witness receipt's signature covers.
pub fn receipt_message(signed_bytes: &[u8]) -> [u8; 32] {
    derive(CTX_RECEIPT, &[signed_bytes])
}

/// The 32-byte message a batched witness receipt's signature covers. Its own context:
/// a batch signature can never be replayed as a single receipt's, nor the reverse.
pub fn receipt_batch_message(signed_bytes: &[u8]) -> [u8; 32] {
    derive(CTX_RECEIPT_BATCH, &[signed_bytes])
}

/// The digest that names a batched witness receipt (the whole frame, signature
/// included: it names exactly the bytes that were stored or forwarded).
pub fn receipt_batch_digest(frame: &[u8]) -> Digest {
    Digest(derive(CTX_RECEIPT_BATCH_DIGEST, &[frame]))
}

/// The commitment to a next public key made by an establishment event.
pub fn next_key_digest(public_key: &[u8; 32]) -> Digest {
    Digest(derive(CTX_NEXT_KEY, &[public_key]))
}

/// A gateway's witness id from its public key.
pub fn witness_id(public_key: &[u8; 32]) -> WitnessId {
    let d = derive(CTX_WITNESS_ID, &[public_key]);
    let mut id = [0u8; 8];
    id.copy_from_slice(&d[..8]);
    WitnessId(id)
}

/// Parses a public key, refusing invalid and weak (small-order) points: a weak key
/// would let one signature verify for many messages.
pub fn verifying_key(bytes: &[u8; 32]) -> Result<VerifyingKey, SignatureError> {
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| SignatureError::BadKey)?;
    if key.is_weak() {
        return Err(SignatureError::BadKey);
    }
    Ok(key)
}

/// Strict ed25519 verification of `signature` over `message`.
pub fn verify(
    key: &VerifyingKey,
    message: &[u8; 32],
    signature: &[u8; 64],
) -> Result<(), SignatureError> {
    let sig = Signature::from_bytes(signature);
    key.verify_strict(message, &sig)
        .map_err(|_| SignatureError::BadSignature)
}

/// Signs `message` with `key`.
pub fn sign(key: &SigningKey, message: &[u8; 32]) -> [u8; 64] {
    key.sign(message).to_bytes()
}
