//! Shared helpers for the node's integration tests: devices on in-memory flash with a
//! deterministic entropy source, and radio observations.
#![allow(dead_code)]

use slope_node::device::storage::{MemSlots, TwoSlot};
use slope_node::device::{Config, MIN_INCEPT_SAMPLES, Slope};
use slope_proto::Observation;

pub type Device = Slope<TwoSlot<MemSlots>>;

/// A small deterministic generator (SplitMix64) so tests need no RNG crate.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Feeds `n` samples derived from `rng`.
pub fn feed(device: &mut Device, rng: &mut Rng, n: u32) {
    for _ in 0..n {
        device.handle_entropy(&rng.next().to_le_bytes());
    }
}

/// A device rotating every `rotate_every` events, incepted at time 0.
pub fn incepted(seed: u64, rotate_every: u32) -> (Device, Vec<u8>) {
    let config = Config {
        rotate_every,
        rotate_after_ms: 0,
        max_epoch_events: rotate_every.saturating_mul(4).max(8),
        ..Config::default()
    };
    let mut d = Slope::restore(config, TwoSlot::new(MemSlots::default())).unwrap();
    let mut rng = Rng(seed);
    feed(&mut d, &mut rng, MIN_INCEPT_SAMPLES);
    let inc = d.incept(0).unwrap();
    (d, inc.to_vec())
}

/// Signs `n` attestations, feeding enough entropy for every rotation; returns every
/// released frame in order.
pub fn run(device: &mut Device, rng: &mut Rng, n: u32, t0: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..n {
        feed(device, rng, 32);
        let payload = (i as u64 + t0).to_le_bytes();
        let released = device
            .attest(t0 + u64::from(i) * 900_000, &payload, &[])
            .unwrap();
        out.extend(released.frames.iter().map(|f| f.to_vec()));
    }
    out
}

pub fn rx(time_ms: u64) -> Observation {
    Observation {
        rssi_dbm: -100,
        snr_qdb: 20,
        freq_hz: 868_100_000,
        foff_hz: None,
        sf: 9,
        time_ms,
    }
}
