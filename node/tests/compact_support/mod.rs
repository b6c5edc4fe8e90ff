//! Shared by the suite-2 tests: a suite-1 identity, the schedule, interval times.
#![allow(dead_code)] // each test crate uses a part

use ed25519_dalek::SigningKey;
use slope_node::compact::device::Schedule;
use slope_proto::crypto::next_key_digest;
use slope_proto::{DeviceId, Inception, Signed};

pub const T: u64 = 60_000;
pub const START: u64 = 1_700_000_000_000;
pub const SKEW: u64 = 10_000;

/// A device's suite-1 identity: its key, its id and its inception frame.
pub struct Identity {
    pub key: SigningKey,
    pub id: DeviceId,
    pub inception: Vec<u8>,
}

pub fn identity() -> Identity {
    let key = SigningKey::from_bytes(&[42; 32]);
    let next = SigningKey::from_bytes(&[43; 32]);
    let inception = Signed::incept(
        Inception {
            key: key.verifying_key().to_bytes(),
            next_key: next_key_digest(&next.verifying_key().to_bytes()),
            interval_s: 60,
        },
        &key,
    )
    .expect("incept");
    Identity {
        id: inception.device_id(),
        inception: inception.frame().to_vec(),
        key,
    }
}

/// One-minute intervals from `START`, disclosure delay 2.
pub fn schedule() -> Schedule {
    Schedule {
        start_ms: START,
        interval_ms: T as u32,
        delay: 2,
    }
}

/// Time early in interval `i` (1 s in), and its receive time (3 s in).
pub fn at(i: u32) -> (u64, u64) {
    let s = START + u64::from(i - 1) * T;
    (s + 1_000, s + 3_000)
}
