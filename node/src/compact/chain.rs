//! Device-side traversal of a hash chain in bounded memory (two checkpoint levels).
//!
//! Keys are made top-down (K(len) is the seed, K(l−1) = H(K(l))) but used bottom-up
//! (interval 1 first). Storing the chain would take 16 B × 2^16 = 1 MiB; recomputing
//! each key from the seed up to 65,535 hashes. The traversal keeps instead:
//! - 16 top checkpoints, one every [`TOP_SEGMENT`] = 4096 positions (made once, when
//!   the chain is created, in `len` hashes, which also yields the anchor K(0));
//! - 64 mid checkpoints, one every [`MID_SEGMENT`] = 64 positions inside the current
//!   top segment (rebuilt from its top checkpoint when the device enters a new top
//!   segment: ≤ 4032 hashes, once per 4096 intervals);
//! - and computes a key from the mid checkpoint above it (≤ 63 hashes per attestation).
//!
//! Memory: 80 keys × 16 B = 1280 B plus a few words (`size_of::<Traversal>()` is
//! measured by the test `traversal_fits_budget`; budget 2 KiB for the whole device).
//! Checkpoints above the current position stay secret until their interval is
//! disclosed; keys below it are public anyway.

use slope_proto::DeviceId;
use slope_proto::compact::crypto::{self, ChainKey};
use slope_proto::compact::params::{KEY_LEN, MAX_CHAIN};

/// Distance between top checkpoints.
pub const TOP_SEGMENT: u32 = 4096;
/// Distance between mid checkpoints.
pub const MID_SEGMENT: u32 = 64;
const TOP: usize = (MAX_CHAIN / TOP_SEGMENT) as usize;
const MID: usize = (TOP_SEGMENT / MID_SEGMENT) as usize;
const ZERO: ChainKey = ChainKey([0; KEY_LEN]);

/// A chain being used bottom-up with bounded memory.
#[derive(Clone)]
pub struct Traversal {
    device: DeviceId,
    first: u32,
    len: u32,
    anchor: ChainKey,
    top: [ChainKey; TOP],
    mid: [ChainKey; MID],
    /// The top segment `mid` was built for (`u32::MAX`: none yet).
    mid_segment: u32,
}

impl Traversal {
    /// Builds the traversal of the chain whose top key is `seed` (= K(len)), for
    /// global intervals `first..first + len`. Costs `len` hashes. `len` must be in
    /// `1..=MAX_CHAIN` (callers check; out-of-range values are clamped).
    pub fn new(device: DeviceId, seed: ChainKey, first: u32, len: u32) -> Self {
        let len = len.clamp(1, MAX_CHAIN);
        let mut top = [ZERO; TOP];
        let mut k = seed;
        let mut l = len;
        loop {
            if l % TOP_SEGMENT == 0 || l == len {
                top[((l - 1) / TOP_SEGMENT) as usize] = k.clone();
            }
            k = crypto::step(&device, first, l, &k);
            l -= 1;
            if l == 0 {
                break;
            }
        }
        Self {
            device,
            first,
            len,
            anchor: k,
            top,
            mid: [ZERO; MID],
            mid_segment: u32::MAX,
        }
    }

    /// The chain's top key K(len) (secret: the seed the traversal is rebuilt from).
    pub fn seed(&self) -> &ChainKey {
        &self.top[((self.len - 1) / TOP_SEGMENT) as usize]
    }
    /// The public end K(0).
    pub fn anchor(&self) -> &ChainKey {
        &self.anchor
    }
    /// Global interval of position 1.
    pub fn first(&self) -> u32 {
        self.first
    }
    /// Chain length.
    pub fn len(&self) -> u32 {
        self.len
    }
    /// Never empty (length ≥ 1); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Last global interval of the chain.
    pub fn last(&self) -> u32 {
        self.first + self.len - 1
    }

    /// The key of global interval `interval`, or `None` outside the chain.
    pub fn key_at(&mut self, interval: u32) -> Option<ChainKey> {
        if interval < self.first || interval > self.last() {
            return None;
        }
        let l = interval - self.first + 1;
        let seg = (l - 1) / TOP_SEGMENT;
        if self.mid_segment != seg {
            self.rebuild_mid(seg);
        }
        let m = ((l - 1) % TOP_SEGMENT) / MID_SEGMENT;
        let pos = (seg * TOP_SEGMENT + (m + 1) * MID_SEGMENT).min(self.len);
        Some(crypto::walk(
            &self.device,
            self.first,
            pos,
            &self.mid[m as usize],
            l,
        ))
    }

    fn rebuild_mid(&mut self, seg: u32) {
        let top_pos = ((seg + 1) * TOP_SEGMENT).min(self.len);
        let base = seg * TOP_SEGMENT;
        let mut k = self.top[seg as usize].clone();
        let mut l = top_pos;
        while l > base {
            if (l - base) % MID_SEGMENT == 0 || l == top_pos {
                self.mid[((l - base - 1) / MID_SEGMENT) as usize] = k.clone();
            }
            k = crypto::step(&self.device, self.first, l, &k);
            l -= 1;
        }
        self.mid_segment = seg;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(d: &DeviceId, seed: &ChainKey, first: u32, len: u32, interval: u32) -> ChainKey {
        crypto::walk(d, first, len, seed, interval - first + 1)
    }

    #[test]
    fn traversal_matches_naive_walk() {
        let d = DeviceId([3; 32]);
        for len in [1u32, 2, 63, 64, 65, 4095, 4096, 4097, 9000] {
            let seed = ChainKey([len as u8; KEY_LEN]);
            let mut t = Traversal::new(d, seed.clone(), 5, len);
            assert_eq!(t.anchor(), &crypto::walk(&d, 5, len, &seed, 0));
            assert_eq!(t.seed(), &seed);
            let probes = [
                5,
                6,
                5 + len / 2,
                5 + len - 1,
                4 + 64,
                4 + 65,
                4 + 4096,
                4 + 4097,
            ];
            let mut sorted = probes.to_vec();
            sorted.sort();
            for i in sorted {
                if i >= 5 && i <= t.last() {
                    assert_eq!(
                        t.key_at(i),
                        Some(naive(&d, &seed, 5, len, i)),
                        "len {len} i {i}"
                    );
                }
            }
            assert_eq!(t.key_at(4), None);
            assert_eq!(t.key_at(5 + len), None);
        }
    }

    #[test]
    fn traversal_fits_budget() {
        let size = core::mem::size_of::<Traversal>();
        assert!(size <= 1400, "traversal is {size} bytes");
    }
}
