//! Peers' receipts that arrived before the attestation they witness (the usual order at
//! a gateway that did not hear the device itself: a witness gossips the attestation and
//! its receipt batch together, and receipts are checked at once while attestations wait
//! for the next ingest batch). They wait here, keyed by the event they name, until the
//! attestation is decided, and go to the trust engine with it.
//!
//! Bounds: at most `capacity` receipts in all and [`PER_EVENT`] per event; at the bound
//! the oldest receipt is dropped; a receipt older than `ttl_ms` is dropped. Every drop is
//! counted by the caller (`slope_dropped_total{kind="pending_receipt"}`).

use std::collections::{HashMap, VecDeque};

use slope_proto::{LinkDigest, ShortId};

/// Receipts held per event at most (distinct witnesses beyond it add little).
pub const PER_EVENT: usize = 16;

/// The event a receipt names.
pub type Key = (ShortId, u32, LinkDigest);

/// The pending receipts (`R`: a verified receipt; generic so that the bounds are tested
/// without signing anything).
#[derive(Debug)]
pub struct Pending<R> {
    /// Receipts per event (with their witness slot), and the generation the event's
    /// entry was created in.
    by_event: HashMap<Key, (u64, Vec<(u16, R)>)>,
    /// Arrival order: (time, event, generation), one per held receipt; entries of an
    /// event taken since are stale and skipped (compacted at twice the capacity).
    order: VecDeque<(u64, Key, u64)>,
    live: usize,
    generation: u64,
    capacity: usize,
    ttl_ms: u64,
}

impl<R> Pending<R> {
    pub fn new(capacity: usize, ttl_ms: u64) -> Self {
        Self {
            by_event: HashMap::new(),
            order: VecDeque::new(),
            live: 0,
            generation: 0,
            capacity,
            ttl_ms,
        }
    }

    /// Receipts held.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Holds `r` until its event is decided; returns how many receipts were dropped
    /// (expired, or the oldest at the bound, or `r` itself when its event is full or
    /// already holds a receipt from the same witness).
    pub fn hold(&mut self, now: u64, key: Key, witness: u16, r: R) -> usize {
        let mut dropped = self.expire(now);
        if self.capacity == 0 {
            return dropped + 1;
        }
        let next = self.generation + 1;
        let (generation, held) = self.by_event.entry(key).or_insert((next, Vec::new()));
        if held.len() >= PER_EVENT || held.iter().any(|(w, _)| *w == witness) {
            return dropped + 1;
        }
        held.push((witness, r));
        let generation = *generation;
        self.generation = self.generation.max(generation);
        self.order.push_back((now, key, generation));
        self.live += 1;
        while self.live > self.capacity && !self.order.is_empty() {
            dropped += usize::from(self.pop_oldest());
        }
        if self.order.len() > 2 * self.capacity.max(64) {
            let by_event = &self.by_event;
            self.order
                .retain(|(_, k, g)| by_event.get(k).is_some_and(|(eg, _)| eg == g));
        }
        dropped
    }

    /// The receipts waiting for this event (removed).
    pub fn take(&mut self, key: &Key) -> Vec<R> {
        let taken = self
            .by_event
            .remove(key)
            .map(|(_, v)| v)
            .unwrap_or_default();
        self.live -= taken.len();
        taken.into_iter().map(|(_, r)| r).collect()
    }

    /// Drops receipts older than the time to live; returns how many.
    pub fn expire(&mut self, now: u64) -> usize {
        let mut n = 0;
        while let Some((t, _, _)) = self.order.front() {
            if now.saturating_sub(*t) <= self.ttl_ms {
                break;
            }
            n += usize::from(self.pop_oldest());
        }
        n
    }

    /// Removes the oldest entry of the arrival order; true when it was a live receipt.
    fn pop_oldest(&mut self) -> bool {
        let Some((_, key, generation)) = self.order.pop_front() else {
            return false;
        };
        let Some((g, held)) = self.by_event.get_mut(&key) else {
            return false;
        };
        if *g != generation || held.is_empty() {
            return false;
        }
        held.remove(0);
        self.live -= 1;
        if held.is_empty() {
            self.by_event.remove(&key);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(n: u8) -> Key {
        (ShortId([n; 8]), u32::from(n), LinkDigest([n; 16]))
    }

    proptest! {
        /// Whatever arrives: never more than the capacity held, never more than
        /// PER_EVENT per event nor two from one witness, and every receipt is either
        /// held, taken or counted as dropped.
        #[test]
        fn bounded_and_accounted(
            ops in proptest::collection::vec((0u8..6, 0u16..20, 0u64..50, any::<bool>()), 0..300),
            capacity in 0usize..40,
        ) {
            let mut p: Pending<u32> = Pending::new(capacity, 100);
            let (mut now, mut arrived, mut dropped, mut taken) = (0u64, 0usize, 0usize, 0usize);
            for (i, (event, witness, dt, take)) in ops.into_iter().enumerate() {
                now += dt;
                if take {
                    let t = p.take(&key(event));
                    prop_assert!(t.len() <= PER_EVENT);
                    taken += t.len();
                } else {
                    arrived += 1;
                    dropped += p.hold(now, key(event), witness, i as u32);
                }
                prop_assert!(p.len() <= capacity);
                prop_assert_eq!(arrived, p.len() + dropped + taken);
                for (_, held) in p.by_event.values() {
                    let mut w: Vec<u16> = held.iter().map(|(w, _)| *w).collect();
                    w.sort_unstable();
                    w.dedup();
                    prop_assert_eq!(w.len(), held.len());
                }
                prop_assert!(p.order.len() <= 2 * capacity.max(64) + 1);
            }
            // Everything held expires after the time to live.
            let left = p.len();
            prop_assert_eq!(p.expire(now + 101), left);
            prop_assert!(p.is_empty());
        }
    }
}
