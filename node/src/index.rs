//! An index from 64-bit keys (short ids read as integers) to `u32` slots that finds an
//! entry in one or two cache lines, and stays `O(log n)` when a remote party grinds keys
//! onto one home.
//!
//! Every entry is in an ordered tree (the authority, and the order for range queries and
//! iteration). Beside it, an open-addressing table of `(key, slot)` pairs answers lookups:
//! an entry sits at most [`PROBE`] places after its home (a Fibonacci hash of the key).
//! An entry that finds its window full when it is placed is *spilled*: it is only in the
//! tree. A lookup scans the window; when nothing is spilled (any honest fleet: short ids
//! are BLAKE3 outputs) a miss there is final, otherwise it asks the tree. So ground keys
//! cost their owner a tree descent — what every lookup cost before — and never a long
//! probe. A removed entry leaves a tombstone (a window stays valid); the table is rebuilt
//! from the tree when tombstones reach a quarter of it, and doubled when live entries
//! and tombstones reach half of it.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

/// Places an entry may sit after its home.
pub(crate) const PROBE: usize = 8;
/// The smallest table.
const MIN_TABLE: usize = 16;
/// Slot values of an empty place and of a tombstone (slots are slab indices, far below).
const EMPTY: u32 = u32::MAX;
const TOMB: u32 = u32::MAX - 1;

#[derive(Debug, Default, Clone)]
pub(crate) struct ShortIndex {
    tree: BTreeMap<u64, u32>,
    table: Vec<(u64, u32)>,
    /// Entries in the tree but not in the table.
    spilled: usize,
    tombs: usize,
}

/// The home of `key` in a table of `len` places (a power of two, at least 2).
fn home(key: u64, len: usize) -> usize {
    let bits = len.trailing_zeros();
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
}

impl ShortIndex {
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn get(&self, key: u64) -> Option<u32> {
        if self.table.is_empty() {
            return self.tree.get(&key).copied();
        }
        let mask = self.table.len() - 1;
        let start = home(key, self.table.len());
        for i in 0..PROBE {
            match self.table.get((start + i) & mask) {
                Some(&(_, EMPTY)) | None => break,
                Some(&(k, slot)) if k == key && slot != TOMB => return Some(slot),
                Some(_) => {}
            }
        }
        if self.spilled == 0 {
            None
        } else {
            self.tree.get(&key).copied()
        }
    }

    /// Inserts or replaces; the slot held before, if any.
    pub fn insert(&mut self, key: u64, slot: u32) -> Option<u32> {
        debug_assert!(slot < TOMB);
        if let Some(old) = self.tree.insert(key, slot) {
            if let Some(at) = self.place_of(key) {
                self.table[at].1 = slot;
            }
            return Some(old);
        }
        if (self.tree.len() + self.tombs) * 2 > self.table.len() {
            self.rebuild((self.tree.len() * 2).next_power_of_two().max(MIN_TABLE));
        } else {
            self.place(key, slot);
        }
        None
    }

    pub fn remove(&mut self, key: u64) -> Option<u32> {
        let slot = self.tree.remove(&key)?;
        match self.place_of(key) {
            Some(at) => {
                self.table[at].1 = TOMB;
                self.tombs += 1;
                if self.tombs * 4 >= self.table.len() {
                    self.rebuild(self.table.len());
                }
            }
            None => self.spilled -= 1,
        }
        Some(slot)
    }

    /// Entries with keys in `lo..=hi`, ascending.
    pub fn range(&self, lo: u64, hi: u64) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.tree.range(lo..=hi).map(|(k, s)| (*k, *s))
    }

    /// Every entry, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.tree.iter().map(|(k, s)| (*k, *s))
    }

    /// Where `key` sits in the table, if it is there (not spilled).
    fn place_of(&self, key: u64) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        let mask = self.table.len() - 1;
        let start = home(key, self.table.len());
        (0..PROBE).map(|i| (start + i) & mask).find(|&at| {
            let (k, slot) = self.table[at];
            k == key && slot != EMPTY && slot != TOMB
        })
    }

    /// Puts a new entry in the first free place of its window, or spills it.
    fn place(&mut self, key: u64, slot: u32) {
        let mask = self.table.len() - 1;
        let start = home(key, self.table.len());
        let free = (0..PROBE)
            .map(|i| (start + i) & mask)
            .find(|&at| matches!(self.table[at].1, EMPTY | TOMB));
        match free {
            Some(at) => {
                if self.table[at].1 == TOMB {
                    self.tombs -= 1;
                }
                self.table[at] = (key, slot);
            }
            None => self.spilled += 1,
        }
    }

    fn rebuild(&mut self, len: usize) {
        self.table = vec![(0, EMPTY); len];
        self.spilled = 0;
        self.tombs = 0;
        let entries: Vec<(u64, u32)> = self.iter().collect();
        for (key, slot) in entries {
            self.place(key, slot);
        }
    }

    /// Entries only in the tree (for tests and bounds checks).
    #[cfg(test)]
    fn spilled(&self) -> usize {
        self.spilled
    }
}

#[cfg(test)]
mod tests {
    //! The index against a plain ordered map, with keys ground onto one home (they share
    //! the top bits of their Fibonacci hash, so they share a home in every table up to
    //! 1,024 places): spills, tombstones in full windows, rebuilds and growth all happen.

    use super::*;
    use proptest::prelude::*;

    /// Keys whose home is the same in every table of at most 1,024 places.
    fn ground(n: usize) -> Vec<u64> {
        (0u64..).filter(|k| home(*k, 1024) == 7).take(n).collect()
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(usize, u32),
        Remove(usize),
    }

    fn op(keys: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..keys, 0u32..1000).prop_map(|(k, v)| Op::Insert(k, v)),
            1 => (0..keys).prop_map(Op::Remove),
        ]
    }

    proptest! {
        #[test]
        fn agrees_with_an_ordered_map(
            ops in proptest::collection::vec(op(64), 0..300),
            random in proptest::collection::vec(any::<u64>(), 32),
        ) {
            // Half the keys ground onto one home, half random.
            let keys: Vec<u64> = ground(32).into_iter().chain(random).collect();
            let mut index = ShortIndex::default();
            let mut model = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        prop_assert_eq!(index.insert(keys[k], v), model.insert(keys[k], v));
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(index.remove(keys[k]), model.remove(&keys[k]));
                    }
                }
                prop_assert_eq!(index.len(), model.len());
                for k in &keys {
                    prop_assert_eq!(index.get(*k), model.get(k).copied());
                }
                let (lo, hi) = (keys[0].min(keys[40]), keys[0].max(keys[40]));
                let got: Vec<_> = index.range(lo, hi).collect();
                let want: Vec<_> = model.range(lo..=hi).map(|(k, v)| (*k, *v)).collect();
                prop_assert_eq!(got, want);
                let all: Vec<_> = index.iter().collect();
                let want: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
                prop_assert_eq!(all, want);
            }
        }
    }

    #[test]
    fn ground_keys_spill_into_the_tree_and_stay_found() {
        let keys = ground(100);
        let mut index = ShortIndex::default();
        for (i, k) in keys.iter().enumerate() {
            index.insert(*k, i as u32);
        }
        // One window holds PROBE of them; the rest are only in the tree.
        assert_eq!(index.spilled(), keys.len() - PROBE);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(index.get(*k), Some(i as u32));
        }
        assert_eq!(index.get(keys[0] ^ 1 << 40), None);
    }
}
