//! Batched witness receipts on the engine side: the verified batch frame its receipts
//! share ([`BatchFrame`]), and which batches the lineage already holds ([`Recorded`]).
//!
//! A batch is recorded in the lineage once (`Entry::ReceiptBatch`), the first time a
//! decision considers one of its entries; the decision's observation then names the
//! entry by (record index, entry index) instead of carrying a receipt frame. Which
//! batches are recorded is bounded ([`MAX_RECORDED_BATCHES`], oldest forgotten first):
//! a forgotten batch whose entries are considered again is simply recorded again.
//! Everything here changes only inside engine calls that are logged, so a replay of
//! the lineage rebuilds it exactly.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use slope_proto::batch::Entry;
use slope_proto::{DecodeError, Digest, ReceiptBatch, WitnessId};

/// How many recorded batches the engine remembers (digest → record index). A batch
/// heard again after it was forgotten costs one more record, never a wrong reference.
pub const MAX_RECORDED_BATCHES: usize = 1024;

/// The frame of a batch whose signature verified, shared by the receipts made from it.
#[derive(Debug, PartialEq, Eq)]
pub struct BatchFrame {
    frame: Vec<u8>,
    digest: Digest,
}

impl BatchFrame {
    /// Copies a decoded batch's frame (the caller has verified it).
    pub(crate) fn of(batch: &ReceiptBatch<'_>) -> Self {
        Self {
            frame: batch.frame().to_vec(),
            digest: batch.digest(),
        }
    }

    /// The whole batch frame.
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// The batch digest (`slope_proto::crypto::receipt_batch_digest`).
    pub fn digest(&self) -> Digest {
        self.digest
    }
}

/// What a receipt batch's bytes alone determine, worked out once: the form checked
/// (`ReceiptBatch::decode`), the entries read, the message its signature covers, its
/// digest, and one copy of its frame for the receipts made from it.
///
/// For a host that receives the same batch bytes at many engines (a simulation of many
/// gateways, or a cache in front of several engines): each engine still decides for
/// itself whether the batch is acceptable — its own registry names the witness, and the
/// signature is checked (or asked of a memo) under that witness's key — through
/// `Engine::verify_prepared_receipt_batch_with`, with the same results as
/// `Engine::verify_receipt_batch_with` on the same bytes. Until a signature check
/// passed, the frame is not handed out.
#[derive(Debug)]
pub struct PreparedBatch {
    frame: Arc<BatchFrame>,
    witness: WitnessId,
    message: [u8; 32],
    signature: [u8; 64],
    entries: Vec<Entry>,
}

impl PreparedBatch {
    /// Decodes `frame` and does the work that depends on its bytes only.
    pub fn prepare(frame: &[u8]) -> Result<Self, DecodeError> {
        let batch = ReceiptBatch::decode(frame)?;
        Ok(Self {
            frame: Arc::new(BatchFrame::of(&batch)),
            witness: batch.witness(),
            message: batch.message(),
            signature: *batch.signature(),
            entries: batch.entries().collect(),
        })
    }

    /// The witness the batch names.
    pub fn witness(&self) -> WitnessId {
        self.witness
    }

    /// The entries, in batch order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The 32-byte message the signature covers (`ReceiptBatch::message`).
    pub fn message(&self) -> &[u8; 32] {
        &self.message
    }

    /// The batch's signature.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// The frame, shared by the receipts made from it; for the registry only, once a
    /// signature check passed.
    pub(crate) fn shared(&self) -> &Arc<BatchFrame> {
        &self.frame
    }

    /// The whole frame as received.
    pub fn frame(&self) -> &[u8] {
        self.frame.frame()
    }
}

/// The batches the lineage holds: digest → record index, at most
/// [`MAX_RECORDED_BATCHES`], the oldest record forgotten first.
///
/// Looked up once per receipt of every decision, and memory-bound there (a host with
/// many engines, like the simulator, finds each engine's state cold): so an
/// open-addressing table of [`SLOTS`] slots (linear probing from the digest's first
/// eight bytes, whole digests compared, at most half full), one or two cache misses
/// where a tree costs a miss per level. A forger grinding digests into one run of
/// slots only lengthens that run, bounded by the [`MAX_RECORDED_BATCHES`] entries.
///
/// Records are remembered in the order they are given, which is the lineage's (record
/// indices only grow): the oldest given is the first forgotten. A queue keeps that
/// order (a tree cost two of the table's misses again per decision); a batch recorded
/// again leaves its old place in the queue stale, skipped when it comes out.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// Empty until the first batch is recorded, then [`SLOTS`] long.
    slots: Vec<Option<(Digest, u64)>>,
    /// (record, digest) in the order given, stale entries included; at most
    /// [`ORDER_MAX`] long (stale entries are dropped when it would grow past).
    order: VecDeque<(u64, Digest)>,
    /// Batches remembered (live entries of `order`).
    len: usize,
}

/// Longest [`Recorded::order`]: live entries and as many stale ones.
const ORDER_MAX: usize = 2 * MAX_RECORDED_BATCHES;

/// Slots of [`Recorded`]'s table: twice its bound, a power of two.
const SLOTS: usize = (2 * MAX_RECORDED_BATCHES).next_power_of_two();

/// The slot a digest's probe starts at.
fn home(digest: &Digest) -> usize {
    let [a, b, c, d, e, f, g, h, ..] = digest.0;
    (u64::from_le_bytes([a, b, c, d, e, f, g, h]) as usize) & (SLOTS - 1)
}

impl Recorded {
    /// The record holding the batch with `digest`, if remembered.
    pub fn get(&self, digest: &Digest) -> Option<u64> {
        let i = self.find(digest).ok()?;
        self.slots.get(i)?.map(|(_, record)| record)
    }

    /// Remembers that record `record` holds the batch `digest`.
    pub fn insert(&mut self, digest: Digest, record: u64) {
        if self.slots.is_empty() {
            self.slots = alloc::vec![None; SLOTS];
        }
        match self.find(&digest) {
            // Its old place in `order` is now stale.
            Ok(i) => {
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = Some((digest, record));
                }
            }
            Err(i) => {
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = Some((digest, record));
                    self.len += 1;
                }
            }
        }
        if self.order.len() >= ORDER_MAX {
            let live = |(r, d): &(u64, Digest)| self.get(d) == Some(*r);
            let kept: VecDeque<_> = self.order.iter().copied().filter(live).collect();
            self.order = kept;
        }
        self.order.push_back((record, digest));
        while self.len > MAX_RECORDED_BATCHES {
            let Some((r, d)) = self.order.pop_front() else {
                break;
            };
            if self.get(&d) == Some(r) {
                self.remove(&d);
                self.len -= 1;
            }
        }
    }

    /// The slot holding `digest` (`Ok`), or the free slot ending its probe (`Err`).
    /// The table is never more than half full, so a probe always ends.
    fn find(&self, digest: &Digest) -> Result<usize, usize> {
        let mut i = home(digest);
        for _ in 0..self.slots.len() {
            match self.slots.get(i) {
                Some(Some((held, _))) if held == digest => return Ok(i),
                Some(Some(_)) => i = (i + 1) & (SLOTS - 1),
                _ => return Err(i),
            }
        }
        Err(i)
    }

    /// Empties `digest`'s slot and shifts the rest of its run back (no tombstones).
    fn remove(&mut self, digest: &Digest) {
        let Ok(mut hole) = self.find(digest) else {
            return;
        };
        let mut j = hole;
        loop {
            j = (j + 1) & (SLOTS - 1);
            let Some(Some((d, _))) = self.slots.get(j) else {
                break;
            };
            // An entry may fill the hole when its probe starts outside (hole, j].
            let h = home(d);
            let outside = if hole <= j {
                h <= hole || h > j
            } else {
                h <= hole && h > j
            };
            if outside {
                self.slots.swap(hole, j);
                hole = j;
            }
        }
        if let Some(slot) = self.slots.get_mut(hole) {
            *slot = None;
        }
    }

    /// Number of remembered batches.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;

    #[test]
    fn forgets_the_oldest_record_first_and_stays_bounded() {
        let mut r = Recorded::default();
        let d = |i: u64| {
            let mut d = [0u8; 32];
            d[..8].copy_from_slice(&i.to_le_bytes());
            Digest(d)
        };
        for i in 0..(MAX_RECORDED_BATCHES as u64 + 10) {
            r.insert(d(i), 100 + i);
        }
        assert_eq!(r.len(), MAX_RECORDED_BATCHES);
        assert_eq!(r.get(&d(0)), None);
        assert_eq!(r.get(&d(9)), None);
        assert_eq!(r.get(&d(10)), Some(110));
        // Recording a batch again moves it to its new record.
        r.insert(d(10), 5_000);
        assert_eq!(r.get(&d(10)), Some(5_000));
        assert_eq!(r.len(), MAX_RECORDED_BATCHES);
    }

    #[test]
    fn digests_sharing_their_first_bytes_are_never_confused() {
        let mut r = Recorded::default();
        let a = Digest([7u8; 32]);
        let mut b = a;
        b.0[31] ^= 1;
        r.insert(a, 1);
        assert_eq!(r.get(&a), Some(1));
        assert_eq!(r.get(&b), None);
        r.insert(b, 2);
        assert_eq!((r.get(&a), r.get(&b), r.len()), (Some(1), Some(2), 2));
    }

    /// A plain map: what [`Recorded`] must answer.
    #[derive(Default)]
    struct Model {
        by_digest: BTreeMap<Digest, u64>,
        by_record: BTreeMap<u64, Digest>,
    }

    impl Model {
        fn get(&self, d: &Digest) -> Option<u64> {
            self.by_digest.get(d).copied()
        }
        fn insert(&mut self, d: Digest, record: u64) {
            if let Some(old) = self.by_digest.insert(d, record) {
                self.by_record.remove(&old);
            }
            self.by_record.insert(record, d);
            while self.by_record.len() > MAX_RECORDED_BATCHES {
                if let Some((_, d)) = self.by_record.pop_first() {
                    self.by_digest.remove(&d);
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Lookups and records in any order (digests from a small pool, many sharing
        /// their first eight bytes, so probe runs are long and wrap around; enough of
        /// them to evict from the middle of runs): the table answers as a plain map.
        #[test]
        fn the_table_answers_as_a_plain_map(
            ops in proptest::collection::vec((proptest::bool::ANY, 0u16..1400, 0u8..3), 1..4000)
        ) {
            let mut r = Recorded::default();
            let mut m = Model::default();
            let digest = |i: u16, tail: u8| {
                let mut d = [0u8; 32];
                // Homes crowd the table's last slots: runs wrap past the end.
                d[..2].copy_from_slice(&(2000 + (i % 1300) / 8).to_le_bytes());
                d[30] = (i % 8) as u8;
                d[31] = tail;
                Digest(d)
            };
            for (n, (record, i, tail)) in ops.into_iter().enumerate() {
                let d = digest(i, tail);
                if record {
                    r.insert(d, n as u64);
                    m.insert(d, n as u64);
                } else {
                    proptest::prop_assert_eq!(r.get(&d), m.get(&d));
                }
                proptest::prop_assert_eq!(r.len(), m.by_record.len());
            }
        }
    }
}
