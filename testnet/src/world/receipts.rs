//! Witness receipts between gateways, one gateway's side: what its radio witnessed since
//! its last batch, and the decisions it holds back until the other witnesses' receipts
//! can arrive.
//!
//! - Every attestation this gateway's radio heard and its verifier committed (extended
//!   or unlinked) becomes an entry of its next `ReceiptBatch` (device, position, event
//!   link, what the radio observed). Once per receipt round the gateway signs its
//!   entries (one signature per batch of up to 256) and the world gossips the batch to
//!   the gateways whose radio heard any of those devices (`super::mesh`).
//! - The trust engine decides on an attestation only with the receipts that name it, so
//!   the gateway holds each radio-heard attestation for one round and a margin
//!   ([`Corroboration::wait_ms`]) before `Engine::handle_attestation`; receipts that
//!   arrive meanwhile are attached to it (`Engine::verify_receipt_batch_with`: the
//!   batch's one signature check goes through the shared signature memo, so the ~80
//!   gateways a batch reaches pay for one check between them, and only the entries
//!   naming an attestation pending here become receipts). An entry naming nothing
//!   pending (late, or for an event this gateway never heard) is counted and dropped.
//!
//! Bounded: [`WITNESSED_MAX`] entries wait for a batch (more are dropped, counted),
//! [`PENDING_MAX`] decisions wait (at the bound the oldest is decided at once), at
//! most [`slope_node::trust::evidence::MAX_RECEIPTS`] receipts per decision.

use std::collections::VecDeque;

use super::fx::HashMap;

use slope_node::trust::VerifiedReceipt;
use slope_node::trust::compact::receipt_digest;
use slope_node::trust::evidence::MAX_RECEIPTS;
use slope_node::verifier::VerifiedAttestation;
use slope_node::verifier::compact::VerifiedCompact;
use slope_proto::batch::Entry;
use slope_proto::limits::{MAX_BATCH_ENTRIES, MAX_RECEIPT_BATCH};
use slope_proto::{DeviceId, LinkDigest, Observation, ShortId, WitnessId};

/// Entries waiting for the next batch at most.
pub const WITNESSED_MAX: usize = 4 * MAX_BATCH_ENTRIES;
/// Attestations waiting for their receipts at most.
pub const PENDING_MAX: usize = 8192;
/// Suite-2 frames awaiting their key whose receipts are kept at most.
pub const EXPECTED_MAX: usize = 65_536;
/// Receipts a held attestation has room for before its list grows.
const RECEIPTS_ROOM: usize = 8;
/// Margin past one round for a receipt to cross the overlay.
const MARGIN_MS: u64 = 5_000;
/// Buckets of [`Corroboration`]'s short-id filter (a power of two).
const BUCKETS: usize = 4096;

/// A short id's bucket (short ids are digest bytes: uniform).
fn bucket(short: &ShortId) -> usize {
    usize::from(u16::from_le_bytes([short.0[0], short.0[1]])) & (BUCKETS - 1)
}

/// Where a kept batch entry's receipt goes ([`Corroboration::find`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The attestation at this place of the pending queue.
    Pending(usize),
    /// The early receipts of an expected attestation.
    Expected,
}

/// What names one witnessed event.
pub type Key = (ShortId, u32, LinkDigest);

/// A verified attestation of either suite, as the trust engine decides on it.
// A run holds one kind (its suite's) in its pending queue: boxing the suite-1 variant
// would add an allocation per decision on the default path and save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Att {
    /// Suite 1 (`Engine::handle_attestation`).
    Suite1(VerifiedAttestation),
    /// Suite 2, authenticated once its key was disclosed (`Engine::handle_compact`).
    Compact(VerifiedCompact),
}

impl Att {
    /// The device.
    pub fn device(&self) -> &DeviceId {
        match self {
            Att::Suite1(a) => a.device(),
            Att::Compact(a) => a.device(),
        }
    }

    /// What a receipt names: device, position (the interval for suite 2) and the link
    /// of the event digest (the suite-2 frame digest for suite 2).
    pub fn key(&self) -> Key {
        match self {
            Att::Suite1(a) => (a.device().short(), a.seq(), a.digest().link()),
            Att::Compact(a) => (
                a.device().short(),
                a.interval(),
                receipt_digest(a.frame()).link(),
            ),
        }
    }

    /// Whether `r` names this attestation.
    pub fn named_by(&self, r: &VerifiedReceipt) -> bool {
        match self {
            Att::Suite1(a) => r.names(a),
            Att::Compact(a) => r.names_compact(a),
        }
    }
}

/// An attestation waiting for its receipts.
pub struct Pending {
    pub due_ms: u64,
    pub att: Att,
    pub receipts: Vec<VerifiedReceipt>,
    /// Receipts from the watched witness (the scenario's rogue gateway; ground truth
    /// for the oracle, the engine does not see it).
    pub watched: u8,
}

/// Receipt counters of one gateway (or, summed, of all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Batches this gateway signed, and their entries.
    pub batches_signed: u64,
    pub entries_signed: u64,
    /// Entries dropped because [`WITNESSED_MAX`] were waiting.
    pub entries_dropped: u64,
    /// Batches received whose signature verified, and those refused.
    pub batches_verified: u64,
    pub batches_refused: u64,
    /// Receipts attached to a pending decision, and those naming nothing pending.
    pub attached: u64,
    pub unmatched: u64,
    /// Decisions taken early because [`PENDING_MAX`] were waiting.
    pub decided_early: u64,
}

impl Counters {
    /// Adds another gateway's counters.
    pub fn add(&mut self, o: &Self) {
        self.batches_signed += o.batches_signed;
        self.entries_signed += o.entries_signed;
        self.entries_dropped += o.entries_dropped;
        self.batches_verified += o.batches_verified;
        self.batches_refused += o.batches_refused;
        self.attached += o.attached;
        self.unmatched += o.unmatched;
        self.decided_early += o.decided_early;
    }
}

/// One gateway's receipts: entries to sign, decisions to take.
pub struct Corroboration {
    /// The gateway's witness key (its lineage author key): signs its batches.
    key: ed25519_dalek::SigningKey,
    round_ms: u64,
    /// Entries for the next batch in the order witnessed, a key possibly more than
    /// once (the first observation counts): sorted and deduplicated at the bound and
    /// when sealed. A tree here cost a cold search per reception.
    witnessed: Vec<(Key, Observation)>,
    pending: VecDeque<Pending>,
    /// Serial number of `pending`'s front.
    base: u64,
    /// Serial of the pending attestation each key names (looked up, never iterated).
    index: HashMap<Key, u64>,
    /// Suite 2: frames this gateway's radio received and holds until their key is
    /// disclosed (one or more intervals), by key, oldest first ([`EXPECTED_MAX`]).
    expected: HashMap<Key, u64>,
    expected_order: VecDeque<Key>,
    /// Receipts that arrived for an expected frame before it was authenticated: attached
    /// when it is (the other witnesses sign at reception, so theirs come first).
    early: HashMap<Key, Vec<VerifiedReceipt>>,
    /// Keys in `index` and `expected`, counted by their device's [`bucket`]. A receipt
    /// batch reaches every gateway that heard any of its ~135 devices, so most of its
    /// entries name nothing here: a zero count answers that without a hash lookup.
    buckets: Box<[u32]>,
    /// One bit per bucket, set while its count is not zero: what [`Self::waits_for`]
    /// reads (512 bytes, against 16 KiB of counts: the gateway's state is cold when a
    /// batch arrives, and the lookups are memory-bound).
    occupied: Box<[u64]>,
    /// Whether a decision event is scheduled.
    pub decide_scheduled: bool,
    /// The witness whose receipts the oracles watch (the rogue gateway), if any.
    pub watch: Option<WitnessId>,
    pub counters: Counters,
}

impl Corroboration {
    /// Receipts signed with `key` every `round_ms`.
    pub fn new(key: ed25519_dalek::SigningKey, round_ms: u64) -> Self {
        Self {
            key,
            round_ms,
            witnessed: Vec::new(),
            pending: VecDeque::new(),
            base: 0,
            index: HashMap::default(),
            expected: HashMap::default(),
            expected_order: VecDeque::new(),
            early: HashMap::default(),
            buckets: vec![0; BUCKETS].into_boxed_slice(),
            occupied: vec![0; BUCKETS / 64].into_boxed_slice(),
            decide_scheduled: false,
            watch: None,
            counters: Counters::default(),
        }
    }

    /// The gateway's public (witness) key.
    pub fn public_key(&self) -> ed25519_dalek::VerifyingKey {
        self.key.verifying_key()
    }

    /// The witness id of the gateway's key.
    pub fn witness_id(&self) -> WitnessId {
        slope_proto::crypto::witness_id(self.key.verifying_key().as_bytes())
    }

    /// A suite-2 timestamp receipt by this gateway: it received `frame` at `rx_ms`
    /// (what a compact divergence proof carries for each frame).
    pub fn stamp(&self, frame: &[u8], rx_ms: u64) -> Option<Vec<u8>> {
        let digest = slope_proto::compact::crypto::frame_digest(frame);
        slope_proto::compact::Receipt::sign(&self.key, digest, rx_ms)
            .ok()
            .map(|r| r.frame().to_vec())
    }

    /// How long a decision waits for receipts.
    pub fn wait_ms(&self) -> u64 {
        self.round_ms + MARGIN_MS
    }

    /// The radio witnessed `key` with `observed`: an entry of the next batch.
    pub fn witness(&mut self, key: Key, observed: Observation) {
        if self.witnessed.len() >= WITNESSED_MAX {
            self.dedup_witnessed();
            if self.witnessed.len() >= WITNESSED_MAX {
                if !self.witnessed.iter().any(|(k, _)| *k == key) {
                    self.counters.entries_dropped += 1;
                }
                return;
            }
        }
        self.witnessed.push((key, observed));
    }

    /// Sorts the witnessed entries by key and keeps each key's first observation.
    fn dedup_witnessed(&mut self) {
        // Stable: a key's first observation stays first among its equals.
        self.witnessed.sort_by_key(|a| a.0);
        self.witnessed.dedup_by(|later, first| later.0 == first.0);
    }

    /// Signs everything witnessed since the last round, in batches of up to 256
    /// entries. Returns the frames.
    pub fn seal(&mut self, now_ms: u64) -> Vec<Vec<u8>> {
        self.dedup_witnessed();
        let entries: Vec<Entry> = self
            .witnessed
            .drain(..)
            .map(|((device, seq, event), observed)| Entry {
                device,
                seq,
                event,
                observed,
            })
            .collect();
        let mut out = Vec::new();
        let mut buf = vec![0u8; MAX_RECEIPT_BATCH];
        for chunk in entries.chunks(MAX_BATCH_ENTRIES) {
            match slope_proto::ReceiptBatch::sign_into(
                &self.key,
                now_ms,
                chunk.iter().copied(),
                &mut buf,
            ) {
                Ok(n) => {
                    self.counters.batches_signed += 1;
                    self.counters.entries_signed += chunk.len() as u64;
                    out.push(buf.get(..n).unwrap_or_default().to_vec());
                }
                Err(_) => self.counters.entries_dropped += chunk.len() as u64,
            }
        }
        out
    }

    /// Suite 2: the radio received a frame named `key` that waits for its key: the
    /// other witnesses' receipts for it are kept until it is authenticated.
    pub fn expect(&mut self, key: Key) {
        if self.expected.contains_key(&key) {
            return;
        }
        if self.expected_order.len() >= EXPECTED_MAX
            && let Some(old) = self.expected_order.pop_front()
        {
            self.expected.remove(&old);
            self.early.remove(&old);
            self.count(&old.0, false);
        }
        self.expected.insert(key, 0);
        self.expected_order.push_back(key);
        self.count(&key.0, true);
    }

    /// Holds a radio-heard attestation for its receipts. Returns an attestation to
    /// decide at once when the queue is at its bound.
    pub fn hold(&mut self, now_ms: u64, att: Att) -> Option<Pending> {
        let early = if self.pending.len() >= PENDING_MAX {
            self.counters.decided_early += 1;
            self.pop()
        } else {
            None
        };
        let key = att.key();
        let serial = self.base + self.pending.len() as u64;
        if self.index.insert(key, serial).is_none() {
            self.count(&key.0, true);
        }
        // Room for the receipts most decisions get (4.1 on average in the 24 h
        // baseline): one allocation, no growth from 4 to 8.
        let mut receipts = Vec::with_capacity(RECEIPTS_ROOM);
        let mut watched = 0u8;
        if let Some(got) = self.early.remove(&key) {
            for r in got {
                if receipts.len() < MAX_RECEIPTS && att.named_by(&r) {
                    if Some(r.body().witness) == self.watch {
                        watched = watched.saturating_add(1);
                    }
                    receipts.push(r);
                }
            }
        }
        self.pending.push_back(Pending {
            due_ms: now_ms + self.wait_ms(),
            att,
            receipts,
            watched,
        });
        early
    }

    /// The pending attestation `key` names, if any.
    fn slot(&self, key: &Key) -> Option<usize> {
        let serial = self.index.get(key)?;
        let i = usize::try_from(serial.checked_sub(self.base)?).ok()?;
        (i < self.pending.len()).then_some(i)
    }

    /// Where a batch entry's receipt would go: the place of the attestation waiting here
    /// that it names, or the early receipts of an expected one; `None` when it names
    /// nothing waiting (it is never made a receipt: `Engine::verify_receipt_batch_with`'s
    /// `keep`; [`Corroboration::attach`] counts it unmatched).
    pub fn find(&self, e: &Entry) -> Option<Found> {
        let b = bucket(&e.device);
        if self
            .occupied
            .get(b / 64)
            .is_none_or(|w| w & (1 << (b % 64)) == 0)
        {
            return None;
        }
        let key = (e.device, e.seq, e.event);
        match self.slot(&key) {
            Some(i) => Some(Found::Pending(i)),
            None => self.expected.contains_key(&key).then_some(Found::Expected),
        }
    }

    /// Whether a batch entry names an attestation waiting here ([`Self::find`]).
    pub fn waits_for(&self, e: &Entry) -> bool {
        self.find(e).is_some()
    }

    /// Attaches verified receipts to the attestations they name; `skipped` entries of
    /// their batch named nothing pending and were never made receipts (unmatched).
    pub fn attach(&mut self, receipts: Vec<VerifiedReceipt>, skipped: usize) {
        let found: Vec<Option<Found>> = receipts
            .iter()
            .map(|r| {
                let b = r.body();
                let key = (b.device, b.seq, b.event);
                match self.slot(&key) {
                    Some(i) => Some(Found::Pending(i)),
                    None => self.expected.contains_key(&key).then_some(Found::Expected),
                }
            })
            .collect();
        self.attach_found(receipts, &found, skipped);
    }

    /// [`Self::attach`] with each receipt's place already found by [`Self::find`] (one
    /// per receipt, in order; nothing changed here since): the batch's entry filter
    /// found them, and a second lookup per receipt is what this saves.
    pub fn attach_found(
        &mut self,
        receipts: Vec<VerifiedReceipt>,
        found: &[Option<Found>],
        skipped: usize,
    ) {
        self.counters.unmatched += skipped as u64;
        debug_assert_eq!(receipts.len(), found.len());
        for (r, found) in receipts.into_iter().zip(found) {
            let b = r.body();
            let key = (b.device, b.seq, b.event);
            // The pending attestation the key finds is the one the receipt names:
            // `index` maps a key to an attestation with that key, and a receipt names
            // an attestation exactly when their keys are equal (short id, position,
            // link). Not asked again here: it would read the attestation's cold lines
            // (and hash a suite-2 frame) for each of the ~16 M receipts a day.
            match found {
                Some(Found::Pending(i)) => match self.pending.get_mut(*i) {
                    Some(p) if p.receipts.len() < MAX_RECEIPTS => {
                        debug_assert!(p.att.named_by(&r));
                        if Some(b.witness) == self.watch {
                            p.watched = p.watched.saturating_add(1);
                        }
                        p.receipts.push(r);
                        self.counters.attached += 1;
                    }
                    _ => self.counters.unmatched += 1,
                },
                Some(Found::Expected) => {
                    let kept = self.early.entry(key).or_default();
                    if kept.len() < MAX_RECEIPTS {
                        kept.push(r);
                        self.counters.attached += 1;
                    } else {
                        self.counters.unmatched += 1;
                    }
                }
                None => self.counters.unmatched += 1,
            }
        }
    }

    /// One key more (`up`) or fewer in `short`'s bucket.
    fn count(&mut self, short: &ShortId, up: bool) {
        let b = bucket(short);
        if let (Some(n), Some(w)) = (self.buckets.get_mut(b), self.occupied.get_mut(b / 64)) {
            *n = if up { *n + 1 } else { n.saturating_sub(1) };
            if *n == 0 {
                *w &= !(1 << (b % 64));
            } else {
                *w |= 1 << (b % 64);
            }
        }
    }

    /// The next attestation whose wait is over at `now_ms`.
    pub fn due(&mut self, now_ms: u64) -> Option<Pending> {
        if self.pending.front()?.due_ms > now_ms {
            return None;
        }
        self.pop()
    }

    /// When the next decision is due.
    pub fn next_due(&self) -> Option<u64> {
        self.pending.front().map(|p| p.due_ms)
    }

    /// Attestations waiting.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn pop(&mut self) -> Option<Pending> {
        let p = self.pending.pop_front()?;
        let key = p.att.key();
        if self.index.get(&key) == Some(&self.base) {
            self.index.remove(&key);
            self.count(&key.0, false);
        }
        self.base += 1;
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: Key) -> Entry {
        Entry {
            device: key.0,
            seq: key.1,
            event: key.2,
            observed: Observation::relayed(0),
        }
    }

    /// A key whose short id falls in bucket `b`.
    fn key(b: usize, i: u32) -> Key {
        let mut short = [0u8; 8];
        short[..2].copy_from_slice(&(b as u16).to_le_bytes());
        short[4..].copy_from_slice(&i.to_le_bytes());
        (ShortId(short), i, LinkDigest([0; 16]))
    }

    /// What a tree keyed by `Key` with `or_insert` gave: each key once, its first
    /// observation, in key order; past [`WITNESSED_MAX`] distinct keys a new key is
    /// dropped (counted) and a known one changes nothing.
    #[test]
    fn witnessed_entries_are_the_first_observation_of_each_key_up_to_the_bound() {
        let mut c = Corroboration::new(ed25519_dalek::SigningKey::from_bytes(&[1; 32]), 60_000);
        let seen = |t: u64| Observation::relayed(t);
        // Descending keys, each witnessed twice (the second observation must lose).
        for i in (0..WITNESSED_MAX as u32).rev() {
            c.witness(key(i as usize % BUCKETS, i), seen(u64::from(i)));
            c.witness(key(i as usize % BUCKETS, i), seen(u64::MAX));
        }
        assert_eq!(c.counters.entries_dropped, 0);
        c.witness(key(1, WITNESSED_MAX as u32), seen(1));
        c.witness(key(3, 3), seen(u64::MAX));
        assert_eq!(c.counters.entries_dropped, 1);
        let frames = c.seal(1_000);
        let entries: Vec<Entry> = frames
            .iter()
            .flat_map(|f| {
                let b = slope_proto::ReceiptBatch::decode(f).expect("decodes");
                b.entries().collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(entries.len(), WITNESSED_MAX);
        let mut want: Vec<Key> = (0..WITNESSED_MAX as u32)
            .map(|i| key(i as usize % BUCKETS, i))
            .collect();
        want.sort();
        let got: Vec<Key> = entries.iter().map(|e| (e.device, e.seq, e.event)).collect();
        assert_eq!(got, want);
        assert!(entries.iter().all(|e| e.observed == seen(u64::from(e.seq))));
        // Sealed: the next round starts empty.
        assert!(c.seal(2_000).is_empty());
    }

    #[test]
    fn the_short_id_filter_counts_the_expected_keys_through_eviction() {
        let mut c = Corroboration::new(ed25519_dalek::SigningKey::from_bytes(&[1; 32]), 60_000);
        c.expect(key(5, 0));
        c.expect(key(5, 0));
        assert_eq!(c.buckets[5], 1);
        assert!(c.waits_for(&entry(key(5, 0))));
        // Same bucket, another key: the filter lets it through, the map answers.
        assert!(!c.waits_for(&entry(key(5, 1))));
        assert!(!c.waits_for(&entry(key(6, 0))));
        for i in 1..EXPECTED_MAX as u32 {
            c.expect(key(6, i));
        }
        assert_eq!((c.buckets[5], c.buckets[6]), (1, EXPECTED_MAX as u32 - 1));
        // At the bound the oldest goes, and its bucket empties.
        c.expect(key(7, 0));
        assert_eq!((c.buckets[5], c.buckets[7]), (0, 1));
        assert!(!c.waits_for(&entry(key(5, 0))));
        assert!(c.waits_for(&entry(key(7, 0))));
        assert_eq!(
            c.buckets.iter().map(|n| *n as usize).sum::<usize>(),
            EXPECTED_MAX
        );
    }
}
