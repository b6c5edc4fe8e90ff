//! The hash primitives of suite 2, all blake3 with a context string per use.
//!
//! | use | context | input | output |
//! |---|---|---|---|
//! | chain seed | `slope v2 compact chain seed` | device chain state ‖ device id ‖ u32le(first) | 16 |
//! | chain step K(l−1) = H(K(l)) | keyed blake3 under `STEP_KEY` | device id ‖ u32le(first) ‖ u32le(l) ‖ K(l) | 16 |
//! | MAC key | keyed blake3 under `MAC_KEY_KEY` | K(l) | 32 |
//! | MAC | keyed blake3 under the MAC key | frame without its MAC | 8 |
//! | anchor signed message | `slope v2 compact anchor` | device id ‖ anchor frame without signature | 32 |
//! | frame digest | `slope v2 compact frame digest` | whole frame | 32 |
//! | receipt signed message | `slope v2 compact receipt` | receipt without signature | 32 |
//!
//! The two hashes of the hot path (step and MAC key) are keyed blake3 under fixed keys
//! `STEP_KEY = derive_key("slope v2 compact chain step", "")` and `MAC_KEY_KEY =
//! derive_key("slope v2 compact mac key", "")`, written out as constants (the test
//! `fixed_keys_are_the_context_keys` recomputes them): same domain separation as
//! `derive_key`, one compression per call instead of two.
//!
//! The step is salted with the device id, the chain's first interval and the position,
//! so a preimage found for one step of one chain is useless for any other step or chain
//! (no multi-target speed-up across positions or devices). The MAC key is derived from
//! the disclosed key with another context (RFC 4082's F'), so the value that travels
//! on air is never itself a MAC key.

use zeroize::Zeroize;

use super::params::{KEY_LEN, MAC_LEN};
use crate::ids::DeviceId;

pub const CTX_SEED: &str = "slope v2 compact chain seed";
pub const CTX_STEP: &str = "slope v2 compact chain step";
pub const CTX_MAC_KEY: &str = "slope v2 compact mac key";
pub const CTX_ANCHOR: &str = "slope v2 compact anchor";
pub const CTX_FRAME_DIGEST: &str = "slope v2 compact frame digest";
pub const CTX_RECEIPT: &str = "slope v2 compact receipt";

/// A 16-byte chain key. Keys of past intervals are public (disclosed); keys of current
/// and future intervals are the device's secret, zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, serde::Serialize, serde::Deserialize)]
#[zeroize(drop)]
pub struct ChainKey(pub [u8; KEY_LEN]);

impl core::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// `derive_key("slope v2 compact chain step", "")`.
pub const STEP_KEY: [u8; 32] = [
    228, 198, 161, 187, 178, 83, 53, 199, 33, 242, 39, 27, 61, 131, 40, 87, 10, 201, 231, 251, 61,
    201, 131, 161, 135, 245, 15, 217, 177, 190, 73, 100,
];
/// `derive_key("slope v2 compact mac key", "")`.
pub const MAC_KEY_KEY: [u8; 32] = [
    212, 180, 6, 85, 168, 155, 170, 73, 96, 212, 48, 64, 157, 251, 53, 197, 7, 97, 17, 104, 158,
    190, 159, 239, 246, 55, 130, 144, 163, 168, 26, 145,
];

fn derive(context: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(context);
    for p in parts {
        h.update(p);
    }
    *h.finalize().as_bytes()
}

fn truncate(full: [u8; 32]) -> ChainKey {
    let mut k = [0u8; KEY_LEN];
    k.copy_from_slice(&full[..KEY_LEN]);
    ChainKey(k)
}

/// The top key K(len) of a chain, from the device's 32-byte chain state.
pub fn seed(chain_state: &[u8; 32], device: &DeviceId, first: u32) -> ChainKey {
    truncate(derive(
        CTX_SEED,
        &[chain_state, &device.0, &first.to_le_bytes()],
    ))
}

/// One step down the chain: K(l−1) from K(l), for the chain starting at `first`.
pub fn step(device: &DeviceId, first: u32, l: u32, key: &ChainKey) -> ChainKey {
    let mut k = ChainKey(key.0);
    step_in_place(device, first, l, &mut k.0);
    k
}

/// The step on raw bytes, overwriting K(l) with K(l−1) (no intermediate `ChainKey`
/// to zeroize on every step of a walk). The input block holds K(l) and is wiped.
fn step_in_place(device: &DeviceId, first: u32, l: u32, key: &mut [u8; KEY_LEN]) {
    let mut input = [0u8; 32 + 4 + 4 + KEY_LEN];
    input[..32].copy_from_slice(&device.0);
    input[32..36].copy_from_slice(&first.to_le_bytes());
    input[36..40].copy_from_slice(&l.to_le_bytes());
    input[40..].copy_from_slice(key);
    key.copy_from_slice(&blake3::keyed_hash(&STEP_KEY, &input).as_bytes()[..KEY_LEN]);
    input[40..].zeroize();
}

/// K(to) from K(from), `to ≤ from`: `from − to` steps.
pub fn walk(device: &DeviceId, first: u32, from: u32, key: &ChainKey, to: u32) -> ChainKey {
    let mut k = ChainKey(key.0);
    let mut l = from;
    while l > to {
        step_in_place(device, first, l, &mut k.0);
        l -= 1;
    }
    k
}

/// The 32-byte MAC key of a chain key.
pub fn mac_key(key: &ChainKey) -> [u8; 32] {
    *blake3::keyed_hash(&MAC_KEY_KEY, &key.0).as_bytes()
}

/// The truncated MAC of a frame's MAC'd bytes (header and body).
pub fn mac(mac_key: &[u8; 32], maced_bytes: &[u8]) -> [u8; MAC_LEN] {
    let full = blake3::keyed_hash(mac_key, maced_bytes);
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full.as_bytes()[..MAC_LEN]);
    out
}

/// Constant-time comparison of two MACs.
pub fn mac_eq(a: &[u8; MAC_LEN], b: &[u8; MAC_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The 32-byte message an anchor's ed25519 signature covers.
pub fn anchor_message(device: &DeviceId, signed_bytes: &[u8]) -> [u8; 32] {
    derive(CTX_ANCHOR, &[&device.0, signed_bytes])
}

/// The digest of a whole suite-2 frame (what a receipt names).
pub fn frame_digest(frame: &[u8]) -> [u8; 32] {
    derive(CTX_FRAME_DIGEST, &[frame])
}

/// The 32-byte message a timestamp receipt's signature covers.
pub fn receipt_message(signed_bytes: &[u8]) -> [u8; 32] {
    derive(CTX_RECEIPT, &[signed_bytes])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_keys_are_the_context_keys() {
        assert_eq!(STEP_KEY, blake3::derive_key(CTX_STEP, b""));
        assert_eq!(MAC_KEY_KEY, blake3::derive_key(CTX_MAC_KEY, b""));
    }

    #[test]
    fn walk_composes_steps_and_is_salted() {
        let d = DeviceId([7; 32]);
        let top = ChainKey([1; KEY_LEN]);
        let k8 = walk(&d, 1, 10, &top, 8);
        assert_eq!(k8, step(&d, 1, 9, &step(&d, 1, 10, &top)));
        assert_eq!(walk(&d, 1, 10, &k8, 10), k8);
        assert_ne!(step(&d, 1, 10, &top), step(&d, 2, 10, &top));
        assert_ne!(step(&d, 1, 10, &top), step(&d, 1, 11, &top));
        assert_ne!(step(&d, 1, 10, &top), step(&DeviceId([8; 32]), 1, 10, &top));
    }
}
