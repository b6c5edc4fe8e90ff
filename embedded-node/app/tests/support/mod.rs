//! Shared by the device-role host tests: the seeded random stream that drives power
//! cuts, reception metadata and entropy, and the board doubles of the compact and echo
//! tests (a clock over a shared world time, one healthy entropy source, a counter
//! sensor).
#![allow(dead_code)]

use std::cell::Cell;
use std::rc::Rc;

use slope_firmware::clock::Clock;
use slope_firmware::harvest::{SourceInfo, Sources};
use slope_firmware::health::MinEntropy;
use slope_firmware::sensor::{Reading, Sensor};

/// SplitMix64.
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
        self.next() % n
    }
}

/// True time, µs since world start (the device's clock restarts at every boot).
pub type World = Rc<Cell<u64>>;

pub struct BootClock {
    pub world: World,
    pub boot_us: u64,
}
impl Clock for BootClock {
    fn now_us(&self) -> u64 {
        self.world.get() - self.boot_us
    }
    async fn sleep_until_us(&mut self, deadline_us: u64) {
        let t = self.boot_us + deadline_us;
        if t > self.world.get() {
            self.world.set(t);
        }
    }
}

/// One healthy source.
pub struct Trng(pub Rng);
const LIST: &[SourceInfo] = &[SourceInfo {
    name: "trng",
    min_entropy: MinEntropy::FourBits,
}];
impl Sources for Trng {
    fn list(&self) -> &'static [SourceInfo] {
        LIST
    }
    async fn sample(&mut self, _: usize) -> Option<u8> {
        Some(self.0.next() as u8)
    }
}

pub struct Counter(pub u32);
impl Sensor for Counter {
    async fn read(&mut self) -> Reading {
        self.0 += 1;
        let mut r = Reading::default();
        let _ = r.payload.extend_from_slice(&self.0.to_le_bytes());
        r
    }
}
