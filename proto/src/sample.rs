//! Deterministic sample messages of every kind, for the sizes table, the tests and the
//! fuzz corpora. Keys come from fixed seeds: nothing here is a secret.

use ed25519_dalek::SigningKey;
use heapless::Vec;

use crate::crypto;
use crate::event::{Heard, Inception, Interaction, Rotation};
use crate::ids::{DeviceId, Digest, LinkDigest, NeighbourId};
use crate::receipt::{Observation, Receipt};
use crate::signed::Signed;

/// A signing key from a one-byte seed.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// An inception by `key(seed)` committing to `key(seed + 1)`.
pub fn inception(seed: u8) -> Signed<Inception> {
    let body = Inception {
        key: key(seed).verifying_key().to_bytes(),
        next_key: crypto::next_key_digest(key(seed.wrapping_add(1)).verifying_key().as_bytes()),
        interval_s: 900,
    };
    match Signed::incept(body, &key(seed)) {
        Ok(s) => s,
        Err(e) => panic!("sample inception must encode: {e}"),
    }
}

/// A routine attestation of `device` at a typical position, signed by `key(seed)`,
/// with an 8-byte payload and `heard` neighbours.
pub fn interaction(device: &DeviceId, seed: u8, seq: u32, heard: usize) -> Signed<Interaction> {
    let mut list = Vec::new();
    for i in 0..heard {
        let n = Heard {
            id: NeighbourId([i as u8, 0xa5, 0x5a, 0x01]),
            seq: 20_000 + i as u32,
            rssi_dbm: -97,
        };
        if list.push(n).is_err() {
            break;
        }
    }
    let body = Interaction {
        device: device.short(),
        seq,
        prev: LinkDigest([0x11; 16]),
        epoch: 0,
        boot: 3,
        behaviour: [1, 2, 3, 4],
        heard: list,
        payload: Vec::from_slice(&[0x42; 8]).unwrap_or_default(),
    };
    match Signed::sign(body, device, &key(seed)) {
        Ok(s) => s,
        Err(e) => panic!("sample interaction must encode: {e}"),
    }
}

/// A rotation of `device` to `epoch`, revealing `key(seed)`.
pub fn rotation(device: &DeviceId, seed: u8, seq: u32, epoch: u32) -> Signed<Rotation> {
    let body = Rotation {
        device: device.short(),
        seq,
        prev: LinkDigest([0x22; 16]),
        epoch,
        key: key(seed).verifying_key().to_bytes(),
        next_key: crypto::next_key_digest(key(seed.wrapping_add(1)).verifying_key().as_bytes()),
    };
    match Signed::sign(body, device, &key(seed)) {
        Ok(s) => s,
        Err(e) => panic!("sample rotation must encode: {e}"),
    }
}

/// A witness receipt by `key(seed)` for an event of `device`.
pub fn receipt(device: &DeviceId, seed: u8, seq: u32) -> Signed<Receipt> {
    let body = Receipt {
        witness: crypto::witness_id(key(seed).verifying_key().as_bytes()),
        device: device.short(),
        seq,
        event: Digest([0x33; 32]).link(),
        observed: Observation {
            rssi_dbm: -112,
            snr_qdb: -30,
            freq_hz: 868_100_000,
            foff_hz: Some(-1_250),
            sf: 9,
            time_ms: 1_795_000_000_000,
        },
    };
    match Signed::witness(body, &key(seed)) {
        Ok(s) => s,
        Err(e) => panic!("sample receipt must encode: {e}"),
    }
}
