//! The simulator's hasher for its own maps (see [`Fx`]).

/// A fixed (unseeded) hasher for the simulator's own maps, keyed by ids that are
/// digests or small integers: the rotate-multiply hash of rustc's `FxHasher`. Not
/// for maps a remote party could aim collisions at in a real gateway; here every key
/// comes from the simulation, and a fixed hasher keeps iteration-free lookups
/// deterministic and cheap (SipHash was ~5 % of the loop).
#[derive(Debug, Default, Clone, Copy)]
pub struct Fx(u64);

const FX_K: u64 = 0xf135_7aea_2e62_a9c5;

impl std::hash::Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in chunks.by_ref() {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // Fold the high bits down: hashbrown takes its bucket from the low bits and
        // its tag from the top seven.
        self.0.rotate_left(26)
    }
}

impl Fx {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(FX_K);
    }
}

/// `BuildHasher` of [`Fx`].
pub type BuildFx = std::hash::BuildHasherDefault<Fx>;

/// A `HashMap` with [`Fx`].
pub type HashMap<K, V> = std::collections::HashMap<K, V, BuildFx>;

/// A `HashSet` with [`Fx`].
pub type HashSet<K> = std::collections::HashSet<K, BuildFx>;

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, Hasher};

    use super::*;

    #[test]
    fn fixed_and_sensitive_to_every_byte() {
        let h = |b: &[u8]| BuildFx::default().hash_one(b);
        assert_eq!(h(b"slope"), h(b"slope"));
        let base = [7u8; 20];
        for i in 0..base.len() {
            let mut other = base;
            other[i] ^= 1;
            assert_ne!(h(&base), h(&other), "byte {i}");
        }
        let mut a = Fx::default();
        a.write(&[1, 2, 3]);
        let mut b = Fx::default();
        b.write(&[1, 2, 3, 0]);
        assert_ne!(a.finish(), b.finish());
    }
}
