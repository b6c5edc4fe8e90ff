//! The corroboration window: attestations committed (and receipted, and gossiped) whose
//! trust decision waits `ingest.receipt_wait_ms`, so that the receipts other gateways
//! sign for the same frame — they heard it on their radios at the same moment and
//! gossip their receipts once their own commit returned — reach the trust engine with
//! it instead of arriving after it (the deduplication delay of LoRa network servers,
//! e.g. ChirpStack's `deduplication_delay`).
//!
//! What waits: an attestation heard on this gateway's radio (one that came by gossip
//! waited the same time before it was verified, see the node), and any attestation of a
//! device that has one waiting (behind it).
//!
//! Order: first in, first decided. Every attestation waits the same time after the
//! batch that committed it, so the queue is in deadline order; a device's frames are
//! therefore decided in the order they were committed, as without the window.
//!
//! Bound: at most `max` attestations wait; at the bound the oldest is decided at once
//! (early, with the receipts that arrived so far), and counted
//! (`slope_decisions_total{kind="early"}`).
//!
//! Durability: the attestations each write transaction leaves waiting are stored in
//! that transaction ([`crate::store::Undecided`], keyed by a transaction number), and
//! rewritten by the transaction that decides them; after a restart (or a failed
//! commit) the queue is rebuilt from the store, with the attestations the verifier's
//! replay yields again ([`super::Pipeline::rebuild`]).

use std::collections::{BTreeSet, HashMap, VecDeque};

use slope_node::verifier::VerifiedAttestation;

use super::pending::Key;
use crate::lineage::Source;
use crate::store::Undecided;

/// Default bound of the attestations waiting for their decision.
pub const DEFAULT_MAX: usize = 32_768;

/// What waits: a verified attestation (generic so that the queue's bounds and order
/// are tested without signing anything).
pub(super) trait Attestation {
    /// The event receipts for it name.
    fn key(&self) -> Key;
    /// Device and position.
    fn position(&self) -> ([u8; 32], u32);
}

impl Attestation for VerifiedAttestation {
    fn key(&self) -> Key {
        key_of(self)
    }

    fn position(&self) -> ([u8; 32], u32) {
        (self.device().0, self.seq())
    }
}

/// One attestation waiting for its decision.
#[derive(Debug)]
pub(super) struct Waiting<A = VerifiedAttestation> {
    /// The write transaction that committed it (its entry in the store).
    pub group: u64,
    /// The time of the batch that committed it.
    pub now: u64,
    pub source: Source,
    pub att: A,
}

impl<A: Attestation> Waiting<A> {
    fn stored(&self) -> Undecided {
        let (device, seq) = self.att.position();
        Undecided {
            device,
            seq,
            now_ms: self.now,
            source: self.source,
        }
    }
}

/// The event a receipt for `att` names.
pub(super) fn key_of(att: &VerifiedAttestation) -> Key {
    (att.device().short(), att.seq(), att.digest().link())
}

/// The queue (see the module docs).
#[derive(Debug)]
pub(super) struct Window<A = VerifiedAttestation> {
    queue: VecDeque<Waiting<A>>,
    /// Waiting attestations per receipt key (a short id may be shared).
    keys: HashMap<Key, u32>,
    /// Waiting attestations per device.
    devices: HashMap<[u8; 32], u32>,
    /// Transactions whose stored entry changed since [`Self::take_dirty`].
    dirty: BTreeSet<u64>,
    /// The number of the next transaction that leaves attestations waiting.
    next_group: u64,
    /// The number this transaction uses, once it left one waiting.
    current: Option<u64>,
    /// How long an attestation waits, milliseconds (0: decided at once, no window).
    pub wait_ms: u64,
    /// At most this many wait.
    pub max: usize,
    /// After a failed commit of decisions: none is due before this time (kept across
    /// [`Self::reset`]), so a failing disk is retried once a second, not in a loop.
    pub retry_at: u64,
}

impl<A> Default for Window<A> {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
            keys: HashMap::new(),
            devices: HashMap::new(),
            dirty: BTreeSet::new(),
            next_group: 0,
            current: None,
            wait_ms: 0,
            max: DEFAULT_MAX,
            retry_at: 0,
        }
    }
}

impl<A: Attestation> Window<A> {
    /// Attestations waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether an attestation receipts for `key` name waits for its decision.
    pub fn contains(&self, key: &Key) -> bool {
        !self.keys.is_empty() && self.keys.contains_key(key)
    }

    /// Whether an attestation of `device` waits (a later one must wait behind it: a
    /// device's attestations are decided in order).
    pub fn holds(&self, device: &[u8; 32]) -> bool {
        !self.devices.is_empty() && self.devices.contains_key(device)
    }

    /// Starts a write transaction: attestations pushed until the next call share one
    /// stored entry.
    pub fn begin(&mut self) {
        self.current = None;
    }

    /// Adds an attestation committed by this transaction at `now`.
    pub fn push(&mut self, now: u64, source: Source, att: A) {
        let group = *self.current.get_or_insert_with(|| {
            let g = self.next_group;
            self.next_group = self.next_group.saturating_add(1);
            g
        });
        self.insert(Waiting {
            group,
            now,
            source,
            att,
        });
    }

    fn insert(&mut self, w: Waiting<A>) {
        *self.keys.entry(w.att.key()).or_insert(0) += 1;
        *self.devices.entry(w.att.position().0).or_insert(0) += 1;
        self.dirty.insert(w.group);
        self.queue.push_back(w);
    }

    /// The oldest attestation if its wait is over at `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<Waiting<A>> {
        let due = self
            .queue
            .front()
            .is_some_and(|w| w.now.saturating_add(self.wait_ms) <= now);
        if due { self.pop() } else { None }
    }

    /// The oldest attestation if more than `max` wait.
    pub fn pop_over(&mut self) -> Option<Waiting<A>> {
        if self.queue.len() > self.max {
            self.pop()
        } else {
            None
        }
    }

    fn pop(&mut self) -> Option<Waiting<A>> {
        let w = self.queue.pop_front()?;
        let key = w.att.key();
        if let Some(n) = self.keys.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.keys.remove(&key);
            }
        }
        let device = w.att.position().0;
        if let Some(n) = self.devices.get_mut(&device) {
            *n -= 1;
            if *n == 0 {
                self.devices.remove(&device);
            }
        }
        self.dirty.insert(w.group);
        Some(w)
    }

    /// Milliseconds until the oldest attestation is due at `now` (0: now), `None` when
    /// none waits.
    pub fn due_in(&self, now: u64) -> Option<u64> {
        let w = self.queue.front()?;
        let due = w.now.saturating_add(self.wait_ms).max(self.retry_at);
        Some(due.saturating_sub(now))
    }

    /// The stored entries that changed, with what each must now hold (empty: remove).
    pub fn take_dirty(&mut self) -> Vec<(u64, Vec<Undecided>)> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|g| {
                // The queue is ordered by transaction: a group's entries are contiguous.
                let entries = self
                    .queue
                    .iter()
                    .skip_while(|w| w.group < g)
                    .take_while(|w| w.group == g)
                    .map(Waiting::stored)
                    .collect();
                (g, entries)
            })
            .collect()
    }

    /// Replaces the queue with what the store holds (after a restart or a failed
    /// commit): `restored` in stored order; `gone` lists transactions whose stored entry
    /// must be rewritten (an attestation of it could not be restored).
    pub fn reset(&mut self, restored: Vec<Waiting<A>>, gone: BTreeSet<u64>, next_group: u64) {
        self.queue.clear();
        self.keys.clear();
        self.devices.clear();
        self.current = None;
        self.next_group = next_group;
        for w in restored {
            self.insert(w);
        }
        // Restored entries are stored as they are: only the ones that lost an
        // attestation are rewritten.
        self.dirty = gone;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use slope_proto::{LinkDigest, ShortId};

    /// A stand-in attestation: device byte and position.
    #[derive(Debug, Clone, Copy)]
    struct Att(u8, u32);

    impl Attestation for Att {
        fn key(&self) -> Key {
            (ShortId([self.0; 8]), self.1, LinkDigest([self.0; 16]))
        }
        fn position(&self) -> ([u8; 32], u32) {
            ([self.0; 32], self.1)
        }
    }

    proptest! {
        /// Whatever is committed and whenever decisions are asked for: never more than
        /// the bound waits after a transaction, attestations are decided in the order
        /// they were committed and never before their window is over (unless early, at
        /// the bound), `contains` is exact, and the stored entries (replayed as the
        /// transactions write them) always hold exactly what waits.
        #[test]
        fn bounded_ordered_and_stored(
            txns in proptest::collection::vec(
                (proptest::collection::vec((0u8..4, 0u64..30), 0..12), 0u64..60),
                0..40,
            ),
            wait in 0u64..100,
            max in 0usize..16,
        ) {
            let mut w: Window<Att> = Window { wait_ms: wait, max, ..Window::default() };
            let mut store: std::collections::BTreeMap<u64, Vec<Undecided>> = Default::default();
            let (mut now, mut seq, mut decided) = (0u64, 0u32, Vec::new());
            for (frames, dt) in txns {
                now += dt;
                w.begin();
                while let Some(x) = w.pop_due(now) {
                    prop_assert!(x.now + wait <= now);
                    decided.push(x.att.1);
                }
                for (device, _) in frames {
                    seq += 1;
                    w.push(now, Source::Radio, Att(device, seq));
                }
                while let Some(x) = w.pop_over() {
                    decided.push(x.att.1);
                }
                prop_assert!(w.len() <= max);
                for (g, entries) in w.take_dirty() {
                    if entries.is_empty() {
                        store.remove(&g);
                    } else {
                        store.insert(g, entries);
                    }
                }
                let stored: Vec<u32> = store.values().flatten().map(|u| u.seq).collect();
                let waiting: Vec<u32> = w.queue.iter().map(|x| x.att.1).collect();
                prop_assert_eq!(&stored, &waiting);
                for x in &w.queue {
                    prop_assert!(w.contains(&x.att.key()));
                    prop_assert!(w.holds(&x.att.position().0));
                }
                prop_assert_eq!(w.keys.values().map(|n| *n as usize).sum::<usize>(), w.len());
                prop_assert_eq!(w.devices.values().map(|n| *n as usize).sum::<usize>(), w.len());
            }
            // First committed, first decided.
            prop_assert!(decided.windows(2).all(|p| p[0] < p[1]));
            prop_assert_eq!(decided.len() + w.len(), seq as usize);
        }
    }
}
