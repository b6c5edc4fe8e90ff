//! Deterministic sample messages of every kind, for the sizes table, the tests and the
//! fuzz corpora. Keys come from fixed seeds: nothing here is a secret.

use ed25519_dalek::SigningKey;
use heapless::Vec;

use crate::batch::{Entry, ReceiptBatch};
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

/// `n` batch entries for events of `device` at positions `first_seq..first_seq + n`
/// (already in batch order), with typical observations.
pub fn batch_entries(
    device: &DeviceId,
    first_seq: u32,
    n: usize,
) -> impl Iterator<Item = Entry> + use<> {
    let short = device.short();
    (0..n).map(move |i| {
        let seq = first_seq.wrapping_add(i as u32);
        let mut event = [0x44; 16];
        event[..4].copy_from_slice(&seq.to_le_bytes());
        Entry {
            device: short,
            seq,
            event: LinkDigest(event),
            observed: Observation {
                rssi_dbm: -100 - (i % 20) as i16,
                snr_qdb: -((i % 40) as i16),
                freq_hz: 868_100_000 + 200_000 * (i % 3) as u32,
                foff_hz: Some(-1_250),
                sf: 7 + (i % 6) as u8,
                time_ms: 1_795_000_000_000 + 1_000 * i as u64,
            },
        }
    })
}

/// A batched witness receipt by `key(seed)` of `n` entries (see [`batch_entries`]),
/// written into `out` (sized [`crate::limits::MAX_RECEIPT_BATCH`]); returns its length.
pub fn receipt_batch(device: &DeviceId, seed: u8, n: usize, out: &mut [u8]) -> usize {
    let entries = batch_entries(device, 1, n);
    match ReceiptBatch::sign_into(&key(seed), 1_795_000_600_000, entries, out) {
        Ok(len) => len,
        Err(e) => panic!("sample receipt batch must encode: {e}"),
    }
}
