//! The export container and its signed checkpoint.
//!
//! ```text
//! export     = postcard(Export { magic: "slopelin", version: 1,
//!                                records: [bytes], checkpoint })
//! checkpoint = { count: u64, head: Digest, signature: ed25519 by the genesis author over
//!                blake3-derive_key("slope v1 lineage checkpoint", count as u64 LE ‖ head) }
//! ```
//!
//! The checkpoint is what makes dropping the *last* records detectable: the chain alone
//! proves order and integrity of a prefix, the signed count and head prove the end.

use alloc::vec::Vec;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use slope_proto::{Digest, crypto};

/// Magic bytes of an export.
pub const MAGIC: [u8; 8] = *b"slopelin";
/// Export format version.
pub const VERSION: u8 = 1;
/// Domain of the checkpoint signature.
pub const CTX_CHECKPOINT: &str = "slope v1 lineage checkpoint";

/// The signed end of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub count: u64,
    pub head: Digest,
    pub signature: [[u8; 32]; 2],
}

/// The export container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export<'a> {
    pub magic: [u8; 8],
    pub version: u8,
    #[serde(borrow)]
    pub records: Vec<&'a [u8]>,
    pub checkpoint: Checkpoint,
}

/// The message a checkpoint signs.
pub fn message(count: u64, head: &Digest) -> [u8; 32] {
    *blake3::Hasher::new_derive_key(CTX_CHECKPOINT)
        .update(&count.to_le_bytes())
        .update(&head.0)
        .finalize()
        .as_bytes()
}

impl Checkpoint {
    /// Signs `count` and `head`.
    pub fn sign(count: u64, head: Digest, key: &SigningKey) -> Self {
        let sig = crypto::sign(key, &message(count, &head));
        let mut signature = [[0u8; 32]; 2];
        signature[0].copy_from_slice(&sig[..32]);
        signature[1].copy_from_slice(&sig[32..]);
        Self {
            count,
            head,
            signature,
        }
    }

    /// The signature as 64 bytes.
    pub fn signature_bytes(&self) -> [u8; 64] {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&self.signature[0]);
        s[32..].copy_from_slice(&self.signature[1]);
        s
    }
}

/// Encodes an export.
pub fn encode(records: &[Vec<u8>], checkpoint: &Checkpoint) -> Option<Vec<u8>> {
    let export = Export {
        magic: MAGIC,
        version: VERSION,
        records: records.iter().map(Vec::as_slice).collect(),
        checkpoint: *checkpoint,
    };
    postcard::to_extend(&export, Vec::new()).ok()
}
