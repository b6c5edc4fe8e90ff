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

/// The blake3 context keys of the contexts above
/// (`blake3::hazmat::hash_derive_key_context`, tested against it): hashing with
/// `Hasher::new_from_context_key` gives exactly `derive_key(context, input)` without
/// hashing the context string again, one compression fewer per digest (most of these
/// digests are two or three compressions).
mod context_key {
    pub const DEVICE_ID: [u8; 32] = [
        230, 168, 114, 160, 201, 106, 66, 152, 1, 123, 49, 191, 139, 58, 100, 238, 214, 27, 59,
        101, 179, 153, 151, 19, 250, 168, 233, 221, 121, 42, 133, 57,
    ];
    pub const EVENT_DIGEST: [u8; 32] = [
        16, 166, 21, 51, 68, 73, 129, 137, 21, 218, 252, 58, 176, 89, 125, 155, 109, 49, 188, 192,
        237, 32, 75, 114, 116, 185, 110, 80, 207, 109, 184, 22,
    ];
    pub const SIGNED_EVENT: [u8; 32] = [
        172, 156, 249, 226, 142, 74, 207, 196, 234, 189, 28, 187, 170, 192, 206, 172, 70, 56, 19,
        76, 245, 179, 196, 135, 133, 77, 84, 144, 101, 200, 70, 124,
    ];
    pub const NEXT_KEY: [u8; 32] = [
        19, 242, 88, 139, 75, 159, 242, 160, 150, 0, 5, 48, 132, 191, 103, 161, 144, 189, 13, 103,
        238, 227, 78, 160, 81, 100, 229, 26, 131, 25, 101, 236,
    ];
    pub const RECEIPT: [u8; 32] = [
        66, 16, 22, 106, 187, 32, 124, 180, 26, 114, 169, 63, 32, 221, 13, 5, 67, 174, 119, 246,
        19, 159, 7, 36, 54, 176, 183, 190, 213, 177, 58, 139,
    ];
    pub const WITNESS_ID: [u8; 32] = [
        52, 125, 211, 65, 191, 156, 198, 115, 151, 198, 52, 187, 213, 37, 241, 143, 232, 94, 48,
        226, 106, 96, 73, 147, 162, 1, 176, 146, 97, 163, 195, 13,
    ];
    pub const RECEIPT_BATCH: [u8; 32] = [
        211, 233, 118, 132, 238, 69, 142, 79, 208, 195, 214, 108, 104, 232, 93, 152, 164, 15, 149,
        248, 187, 117, 124, 144, 173, 50, 36, 150, 200, 237, 126, 205,
    ];
    pub const RECEIPT_BATCH_DIGEST: [u8; 32] = [
        49, 67, 40, 15, 47, 114, 177, 30, 12, 93, 113, 90, 159, 78, 250, 250, 24, 99, 69, 162, 3,
        144, 17, 0, 136, 133, 97, 25, 133, 239, 0, 32,
    ];
}

/// BLAKE3 in derive-key mode under a context already hashed (`context_key`, from
/// `blake3::hazmat::hash_derive_key_context`, as this module keeps its own) over `parts`
/// in order: `blake3::derive_key(context, parts…)` without hashing the context again.
pub fn derive(context_key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    use blake3::hazmat::HasherExt;
    let mut h = blake3::Hasher::new_from_context_key(context_key);
    for p in parts {
        h.update(p);
    }
    *h.finalize().as_bytes()
}

/// The device id of an inception, from its frame without the signature.
pub fn device_id(inception_signed_bytes: &[u8]) -> DeviceId {
    DeviceId(derive(&context_key::DEVICE_ID, &[inception_signed_bytes]))
}

/// The digest of an event (what `prev` links to and receipts name).
pub fn event_digest(device: &DeviceId, signed_bytes: &[u8]) -> Digest {
    Digest(derive(
        &context_key::EVENT_DIGEST,
        &[&device.0, signed_bytes],
    ))
}

/// The 32-byte message an event's signature covers.
pub fn signed_message(device: &DeviceId, signed_bytes: &[u8]) -> [u8; 32] {
    derive(&context_key::SIGNED_EVENT, &[&device.0, signed_bytes])
}

/// The 32-byte message a witness receipt's signature covers.
pub fn receipt_message(signed_bytes: &[u8]) -> [u8; 32] {
    derive(&context_key::RECEIPT, &[signed_bytes])
}

/// The 32-byte message a batched witness receipt's signature covers. Its own context:
/// a batch signature can never be replayed as a single receipt's, nor the reverse.
pub fn receipt_batch_message(signed_bytes: &[u8]) -> [u8; 32] {
    derive(&context_key::RECEIPT_BATCH, &[signed_bytes])
}

/// The digest that names a batched witness receipt (the whole frame, signature
/// included: it names exactly the bytes that were stored or forwarded).
pub fn receipt_batch_digest(frame: &[u8]) -> Digest {
    Digest(derive(&context_key::RECEIPT_BATCH_DIGEST, &[frame]))
}

/// The commitment to a next public key made by an establishment event.
pub fn next_key_digest(public_key: &[u8; 32]) -> Digest {
    Digest(derive(&context_key::NEXT_KEY, &[public_key]))
}

/// A gateway's witness id from its public key.
pub fn witness_id(public_key: &[u8; 32]) -> WitnessId {
    let d = derive(&context_key::WITNESS_ID, &[public_key]);
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

#[cfg(test)]
mod context_key_tests {
    use super::*;

    const ALL: [(&str, &[u8; 32]); 8] = [
        (CTX_DEVICE_ID, &context_key::DEVICE_ID),
        (CTX_EVENT_DIGEST, &context_key::EVENT_DIGEST),
        (CTX_SIGNED_EVENT, &context_key::SIGNED_EVENT),
        (CTX_NEXT_KEY, &context_key::NEXT_KEY),
        (CTX_RECEIPT, &context_key::RECEIPT),
        (CTX_WITNESS_ID, &context_key::WITNESS_ID),
        (CTX_RECEIPT_BATCH, &context_key::RECEIPT_BATCH),
        (CTX_RECEIPT_BATCH_DIGEST, &context_key::RECEIPT_BATCH_DIGEST),
    ];

    /// Each constant is its context's key, and hashing with it is `derive_key` under
    /// the context string, for inputs of one block, several blocks and several chunks.
    #[test]
    fn context_keys_are_the_contexts() {
        for (context, key) in ALL {
            assert_eq!(
                *key,
                blake3::hazmat::hash_derive_key_context(context),
                "{context}: {:?}",
                blake3::hazmat::hash_derive_key_context(context)
            );
            for len in [0usize, 1, 64, 65, 100, 1024, 1025, 5000] {
                let input: std::vec::Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                assert_eq!(
                    derive(key, &[&input[..len / 2], &input[len / 2..]]),
                    blake3::derive_key(context, &input),
                    "{context}, {len} bytes"
                );
            }
        }
    }
}
