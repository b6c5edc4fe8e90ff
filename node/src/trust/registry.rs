//! The bounded device registry: the hot records in a slab, an index by short id, and
//! the small cold maps that only operators or divergence proofs grow.
//!
//! Bounds and their policy (see `Bounds`): at `max_devices`, or at `max_newcomers`
//! devices that never held full scope, a new device is refused (`Refusal::Capacity`)
//! and known devices keep working; `evict_idle` frees newcomers idle for longer than
//! `newcomer_idle_ms` (never a quarantined device). A Sybil flood therefore fills the
//! newcomer quota and meets a wall; established devices are never displaced by it.
//!
//! The index is keyed by [`ShortId`] (8 bytes, as an integer) rather than the full id, to
//! keep the hot state small; the full id is in the hot record and checked on every
//! lookup. It is a [`ShortIndex`]: one or two cache lines per lookup, a tree descent
//! only for ground short ids, and the order the neighbour lookup ranges over. Two
//! devices with one short id (2^-64 by chance; a deliberate grind costs ~2^32 work and
//! only harms the grinder's own second identity) cannot both be tracked: the second is
//! refused with `Refusal::IdCollision`.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use slope_proto::{DeviceId, NeighbourId, ShortId};

use super::decision::{Quarantine, Refusal};
use super::device::{Hot, flag};
use super::operator::OperatorId;
use super::policy::Bounds;
use super::zone::{Position, Zone};
use crate::index::ShortIndex;
use crate::time::Millis;

/// Operator-provided authority inputs of a device (cold: read only when the hot record's
/// `ENROLLED` flag is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Enrollment {
    pub zone: Option<Zone>,
    pub position: Option<Position>,
    pub certificate_until: Option<Millis>,
}

/// A short id as the index's key: big-endian, so the keys' order is the short ids'.
fn key(short: ShortId) -> u64 {
    u64::from_be_bytes(short.0)
}

/// The registry.
#[derive(Debug, Default)]
pub struct Registry {
    index: ShortIndex,
    slots: Vec<Hot>,
    free: Vec<u32>,
    newcomers: u32,
    enrolled: BTreeMap<DeviceId, Enrollment>,
    quarantine: BTreeMap<u32, Quarantine>,
    pins: BTreeMap<u32, OperatorId>,
}

impl Registry {
    /// An empty registry with room for `devices` hot records reserved up front.
    pub fn with_capacity(devices: usize) -> Self {
        Self {
            slots: Vec::with_capacity(devices),
            ..Self::default()
        }
    }

    /// Reserves room for `more` hot records.
    pub fn reserve(&mut self, more: usize) {
        self.slots.reserve(more);
    }

    /// Whether a new device would meet a bound (`Refusal::Capacity`).
    pub fn full(&self, b: &Bounds) -> bool {
        self.len() >= b.max_devices as usize || self.newcomers >= b.max_newcomers
    }

    /// The slot of `id`; `Err` when another device holds its short id.
    pub fn find(&self, id: &DeviceId) -> Result<Option<u32>, Refusal> {
        match self.index.get(key(id.short())) {
            None => Ok(None),
            Some(s) => match self.slots.get(s as usize) {
                Some(h) if h.id == *id => Ok(Some(s)),
                _ => Err(Refusal::IdCollision),
            },
        }
    }

    /// The hot record a new device starts with (not tracked yet: see
    /// [`Registry::insert`]).
    pub fn fresh(&self, id: DeviceId, now: Millis) -> Hot {
        let mut hot = Hot::new(id, now);
        if self.enrolled.contains_key(&id) {
            hot.set(flag::ENROLLED, true);
        }
        hot
    }

    /// Tracks a new device, within the bounds.
    pub fn insert(&mut self, id: DeviceId, now: Millis, b: &Bounds) -> Result<u32, Refusal> {
        if let Some(s) = self.find(&id)? {
            return Ok(s);
        }
        if self.full(b) {
            return Err(Refusal::Capacity);
        }
        let hot = self.fresh(id, now);
        let slot = match self.free.pop() {
            Some(s) => {
                if let Some(h) = self.slots.get_mut(s as usize) {
                    *h = hot;
                }
                s
            }
            None => {
                let s = u32::try_from(self.slots.len()).map_err(|_| Refusal::Capacity)?;
                self.slots.push(hot);
                s
            }
        };
        self.index.insert(key(id.short()), slot);
        self.newcomers += 1;
        Ok(slot)
    }

    /// The hot record in `slot`.
    pub fn get(&self, slot: u32) -> Option<&Hot> {
        self.slots.get(slot as usize)
    }

    /// Replaces the hot record in `slot`, keeping the newcomer count right.
    pub fn put(&mut self, slot: u32, hot: Hot) {
        if let Some(h) = self.slots.get_mut(slot as usize) {
            if !h.has(flag::EVER_FULL) && hot.has(flag::EVER_FULL) {
                self.newcomers = self.newcomers.saturating_sub(1);
            }
            *h = hot;
        }
    }

    /// Tracked devices.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no device is tracked.
    pub fn is_empty(&self) -> bool {
        self.index.len() == 0
    }

    /// Tracked devices that never held full scope.
    pub fn newcomers(&self) -> u32 {
        self.newcomers
    }

    /// The unique tracked device whose id starts with `n` (none when ambiguous).
    pub fn neighbour(&self, n: NeighbourId) -> Option<u32> {
        let mut lo = [0u8; 8];
        lo[..4].copy_from_slice(&n.0);
        let mut hi = [0xffu8; 8];
        hi[..4].copy_from_slice(&n.0);
        let mut it = self.index.range(key(ShortId(lo)), key(ShortId(hi)));
        let first = it.next().map(|(_, s)| s);
        if it.next().is_some() { None } else { first }
    }

    /// Enrolment of a device.
    pub fn enrollment(&self, id: &DeviceId) -> Option<&Enrollment> {
        self.enrolled.get(id)
    }

    /// Updates a device's enrolment (operator input).
    pub fn enroll(&mut self, id: DeviceId, f: impl FnOnce(&mut Enrollment)) {
        f(self.enrolled.entry(id).or_default());
        if let Ok(Some(s)) = self.find(&id)
            && let Some(h) = self.slots.get_mut(s as usize)
        {
            h.set(flag::ENROLLED, true);
        }
    }

    /// The quarantine of `slot`.
    pub fn quarantine(&self, slot: u32) -> Option<&Quarantine> {
        self.quarantine.get(&slot)
    }

    /// Quarantines `slot`.
    pub fn set_quarantine(&mut self, slot: u32, q: Option<Quarantine>) {
        match q {
            Some(q) => {
                self.quarantine.insert(slot, q);
            }
            None => {
                self.quarantine.remove(&slot);
            }
        }
    }

    /// Who pinned `slot`.
    pub fn pinned_by(&self, slot: u32) -> Option<OperatorId> {
        self.pins.get(&slot).copied()
    }

    /// Records who pinned `slot` (or clears it).
    pub fn set_pin(&mut self, slot: u32, by: Option<OperatorId>) {
        match by {
            Some(o) => {
                self.pins.insert(slot, o);
            }
            None => {
                self.pins.remove(&slot);
            }
        }
    }

    /// Whether the device in `slot` is an idle newcomer that [`Registry::evict_idle`]
    /// would evict.
    fn evictable(&self, slot: usize, h: &Hot, now: Millis, idle_ms: u64) -> bool {
        let s = slot as u32;
        now.saturating_sub(h.last_seen) > idle_ms
            && self.index.get(key(h.id.short())) == Some(s)
            && !h.has(flag::EVER_FULL)
            && !h.has(flag::QUARANTINED)
            && !self.pins.contains_key(&s)
    }

    /// How many devices [`Registry::evict_idle`] would evict. Cost: one pass over the
    /// slab.
    pub fn idle(&self, now: Millis, idle_ms: u64) -> usize {
        self.slots
            .iter()
            .enumerate()
            .filter(|(i, h)| self.evictable(*i, h, now, idle_ms))
            .count()
    }

    /// Stops tracking newcomers idle since before `now - idle_ms` (never quarantined or
    /// pinned devices). Their history stays in the lineage. Returns how many. Cost: one
    /// pass over the slab.
    pub fn evict_idle(&mut self, now: Millis, idle_ms: u64) -> usize {
        let mut evicted = 0;
        for i in 0..self.slots.len() {
            let Some(h) = self.slots.get(i).copied() else {
                continue;
            };
            if self.evictable(i, &h, now, idle_ms) {
                self.index.remove(key(h.id.short()));
                self.free.push(i as u32);
                self.newcomers = self.newcomers.saturating_sub(1);
                evicted += 1;
            }
        }
        evicted
    }
}
