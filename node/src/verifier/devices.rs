//! The verifier's devices, found by short id.
//!
//! Every rotation and interaction names its device by its 8-byte short id, so the map is
//! keyed by that short id as an integer: one tree descent comparing `u64`s, over nodes
//! whose keys fit in two cache lines (a tree of full 32-byte ids compared them with
//! `memcmp`, and a short id's range walk took two descents). A short id held by two
//! devices (a 2^-64 accident, or a deliberate grind) keeps its lowest device in the
//! primary map and the others in `overflow`, by full id; `overflow` is empty in any
//! honest fleet, and costs one emptiness check per lookup.
//!
//! Invariant: a device is in exactly one of the two maps; the primary device of a short
//! id is lower than every device of that short id in `overflow`, and a short id with
//! devices in `overflow` has one in the primary map. So the devices of one short id are
//! the primary one followed by an `overflow` range, ascending.

use alloc::collections::BTreeMap;
use alloc::collections::btree_map::Entry;

use slope_proto::{DeviceId, ShortId};

/// Devices by short id, then by full id.
pub(crate) struct Devices<V> {
    primary: BTreeMap<u64, (DeviceId, V)>,
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
            primary: BTreeMap::new(),
            overflow: BTreeMap::new(),
        }
    }
}

impl<V> Devices<V> {
    pub fn len(&self) -> usize {
        self.primary.len() + self.overflow.len()
    }

    pub fn get(&self, id: &DeviceId) -> Option<&V> {
        match self.primary.get(&key(id.short())) {
            Some((held, v)) if held == id => Some(v),
            Some(_) => self.overflow.get(id),
            None => None,
        }
    }

    pub fn get_mut(&mut self, id: &DeviceId) -> Option<&mut V> {
        match self.primary.get_mut(&key(id.short())) {
            Some((held, v)) if held == id => Some(v),
            Some(_) => self.overflow.get_mut(id),
            None => None,
        }
    }

    /// Inserts or replaces.
    pub fn insert(&mut self, id: DeviceId, value: V) {
        match self.primary.entry(key(id.short())) {
            Entry::Vacant(e) => {
                e.insert((id, value));
            }
            Entry::Occupied(mut e) => {
                let held = e.get_mut();
                if held.0 == id {
                    held.1 = value;
                } else if id < held.0 {
                    // The lowest device of a short id stays in the primary map.
                    let (old, v) = core::mem::replace(held, (id, value));
                    self.overflow.insert(old, v);
                } else {
                    self.overflow.insert(id, value);
                }
            }
        }
    }

    pub fn remove(&mut self, id: &DeviceId) -> Option<V> {
        let short = id.short();
        match self.primary.get(&key(short)) {
            Some((held, _)) if held == id => {}
            Some(_) => return self.overflow.remove(id),
            None => return None,
        }
        let (_, value) = self.primary.remove(&key(short))?;
        // The next device of that short id, if any, becomes the primary one.
        let next = self.overflow.range(span(short)).next().map(|(id, _)| *id);
        if let Some(next) = next
            && let Some(v) = self.overflow.remove(&next)
        {
            self.primary.insert(key(short), (next, v));
        }
        Some(value)
    }

    /// The devices whose short id is `short`, ascending (more than one only on a
    /// collision).
    pub fn of_short(&self, short: ShortId) -> impl Iterator<Item = (&DeviceId, &V)> {
        let primary = self.primary.get(&key(short));
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
        self.primary.values().flat_map(|(id, _)| {
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
