//! The verifier's devices, found by short id.
//!
//! Every rotation and interaction names its device by its 8-byte short id, so the
//! devices are found by that short id as an integer, through [`ShortIndex`] (one or two
//! cache lines per lookup, a tree descent only for ground ids), and live in a slab. A
//! short id held by two devices (a 2^-64 accident, or a deliberate grind) keeps its
//! lowest device in the primary index and the others in `overflow`, by full id;
//! `overflow` is empty in any honest fleet, and costs one emptiness check per lookup.
//!
//! Invariant: a device is in exactly one of the two; the primary device of a short id
//! is lower than every device of that short id in `overflow`, and a short id with
//! devices in `overflow` has one in the primary index. So the devices of one short id
//! are the primary one followed by an `overflow` range, ascending. Every slab entry is
//! named by exactly one index entry; the free list holds the others.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use slope_proto::{DeviceId, ShortId};

use crate::index::ShortIndex;

/// Devices by short id, then by full id.
pub(crate) struct Devices<V> {
    primary: ShortIndex,
    slab: Vec<Option<(DeviceId, V)>>,
    free: Vec<u32>,
    overflow: BTreeMap<DeviceId, V>,
}

fn key(short: ShortId) -> u64 {
    u64::from_be_bytes(short.0)
}

/// The full ids of one short id, lowest and highest.
fn span(short: ShortId) -> core::ops::RangeInclusive<DeviceId> {
    let mut lo = [0u8; 32];
    lo[..8].copy_from_slice(&short.0);
    let mut hi = [0xffu8; 32];
    hi[..8].copy_from_slice(&short.0);
    DeviceId(lo)..=DeviceId(hi)
}

impl<V> Default for Devices<V> {
    fn default() -> Self {
        Self {
            primary: ShortIndex::default(),
            slab: Vec::new(),
            free: Vec::new(),
            overflow: BTreeMap::new(),
        }
    }
}

impl<V> Devices<V> {
    pub fn len(&self) -> usize {
        self.primary.len() + self.overflow.len()
    }

    /// The primary device of `short` and its value.
    fn primary(&self, short: ShortId) -> Option<&(DeviceId, V)> {
        let slot = self.primary.get(key(short))?;
        self.slab.get(slot as usize)?.as_ref()
    }

    fn primary_mut(&mut self, short: ShortId) -> Option<&mut (DeviceId, V)> {
        let slot = self.primary.get(key(short))?;
        self.slab.get_mut(slot as usize)?.as_mut()
    }

    pub fn get(&self, id: &DeviceId) -> Option<&V> {
        match self.primary(id.short()) {
            Some((held, v)) if held == id => Some(v),
            Some(_) => self.overflow.get(id),
            None => None,
        }
    }

    pub fn get_mut(&mut self, id: &DeviceId) -> Option<&mut V> {
        let overflow = &mut self.overflow;
        let slot = self.primary.get(key(id.short()))?;
        match self.slab.get_mut(slot as usize)?.as_mut() {
            Some((held, v)) if held == id => Some(v),
            Some(_) => overflow.get_mut(id),
            None => None,
        }
    }

    /// Inserts or replaces.
    pub fn insert(&mut self, id: DeviceId, value: V) {
        if let Some(held) = self.primary_mut(id.short()) {
            if held.0 == id {
                held.1 = value;
            } else if id < held.0 {
                // The lowest device of a short id stays in the primary index.
                let (old, v) = core::mem::replace(held, (id, value));
                self.overflow.insert(old, v);
            } else {
                self.overflow.insert(id, value);
            }
            return;
        }
        let entry = Some((id, value));
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = entry;
                s
            }
            None => {
                self.slab.push(entry);
                // A verifier's devices are bounded far below u32::MAX (`max_devices`).
                u32::try_from(self.slab.len() - 1).unwrap_or(u32::MAX - 2)
            }
        };
        self.primary.insert(key(id.short()), slot);
    }

    pub fn remove(&mut self, id: &DeviceId) -> Option<V> {
        let short = id.short();
        match self.primary(short) {
            Some((held, _)) if held == id => {}
            Some(_) => return self.overflow.remove(id),
            None => return None,
        }
        let slot = self.primary.get(key(short))?;
        let (_, value) = self.slab.get_mut(slot as usize)?.take()?;
        // The next device of that short id, if any, becomes the primary one (same slot).
        let next = self.overflow.range(span(short)).next().map(|(id, _)| *id);
        if let Some(next) = next
            && let Some(v) = self.overflow.remove(&next)
        {
            self.slab[slot as usize] = Some((next, v));
        } else {
            self.primary.remove(key(short));
            self.free.push(slot);
        }
        Some(value)
    }

    /// The devices whose short id is `short`, ascending (more than one only on a
    /// collision).
    pub fn of_short(&self, short: ShortId) -> impl Iterator<Item = (&DeviceId, &V)> {
        let primary = self.primary(short);
        let overflow = primary
            .filter(|_| !self.overflow.is_empty())
            .map(|_| self.overflow.range(span(short)));
        primary
            .map(|(id, v)| (id, v))
            .into_iter()
            .chain(overflow.into_iter().flatten())
    }

    /// Every device id, ascending (no lookup per device while `overflow` is empty).
    pub fn ids(&self) -> impl Iterator<Item = &DeviceId> {
        self.primary
            .iter()
            .filter_map(|(_, slot)| self.slab.get(slot as usize)?.as_ref())
            .flat_map(|(id, _)| {
                let more = (!self.overflow.is_empty())
                    .then(|| self.overflow.range(span(id.short())).map(|(id, _)| id));
                core::iter::once(id).chain(more.into_iter().flatten())
            })
    }
}

#[cfg(test)]
mod tests {
    //! The index against a plain map by full id: the same answers for any sequence of
    //! inserts and removals, with ids crowded onto a few short ids so that collisions,
    //! a lower id displacing the primary one and promotion on removal all happen.

    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn id(short: u8, rest: u8) -> DeviceId {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&[short; 8]);
        b[8] = rest;
        b[31] = rest ^ 0x5a;
        DeviceId(b)
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u8, u32),
        Remove(u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..4, 0u8..6, any::<u32>()).prop_map(|(s, r, v)| Op::Insert(s, r, v)),
            1 => (0u8..4, 0u8..6).prop_map(|(s, r)| Op::Remove(s, r)),
        ]
    }

    proptest! {
        #[test]
        fn agrees_with_a_map_by_full_id(ops in proptest::collection::vec(op(), 0..80)) {
            let mut index = Devices::default();
            let mut model = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(s, r, v) => {
                        index.insert(id(s, r), v);
                        model.insert(id(s, r), v);
                    }
                    Op::Remove(s, r) => {
                        prop_assert_eq!(index.remove(&id(s, r)), model.remove(&id(s, r)));
                    }
                }
                prop_assert_eq!(index.len(), model.len());
                let ids: Vec<_> = index.ids().copied().collect();
                let want: Vec<_> = model.keys().copied().collect();
                prop_assert_eq!(ids, want);
                for s in 0u8..4 {
                    let short = id(s, 0).short();
                    let got: Vec<_> = index.of_short(short).map(|(k, v)| (*k, *v)).collect();
                    let want: Vec<_> = model
                        .range(span(short))
                        .map(|(k, v)| (*k, *v))
                        .collect();
                    prop_assert_eq!(got, want);
                    for r in 0u8..6 {
                        prop_assert_eq!(index.get(&id(s, r)), model.get(&id(s, r)));
                        if let Some(v) = index.get_mut(&id(s, r)) {
                            *v = v.wrapping_add(1);
                            let m = model.get_mut(&id(s, r)).expect("the model holds it");
                            *m = m.wrapping_add(1);
                        }
                    }
                }
            }
        }
    }
}
