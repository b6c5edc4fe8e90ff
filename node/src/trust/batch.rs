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

use alloc::collections::BTreeMap;
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
/// Looked up once per receipt of every decision, so keyed by the digest's first eight
/// bytes (integer comparisons instead of 32-byte ones), with the last [`RECENT`]
/// batches looked up or recorded in a small array in front of the map (the receipts of
/// consecutive decisions come from the same few batches; a host with many engines,
/// like the simulator, finds each engine's map cold). The array only ever holds what
/// the map holds, with the same record, so answers are the map's. The whole digest is
/// kept and compared: two digests sharing those eight bytes (a forger grinding for it
/// gains nothing) are never confused, the later evicts the earlier, which costs at most
/// one more record of the earlier batch, like any forgotten batch.
#[derive(Debug, Clone)]
pub struct Recorded {
    by_key: BTreeMap<u64, (Digest, u64)>,
    by_record: BTreeMap<u64, u64>,
    /// (key, digest, record) of recent batches.
    recent: [Option<(u64, Digest, u64)>; RECENT],
    /// Where the next recent batch goes (round robin).
    next: usize,
}

/// Batches [`Recorded`] keeps in front of its map.
const RECENT: usize = 16;

impl Default for Recorded {
    fn default() -> Self {
        Self {
            by_key: BTreeMap::new(),
            by_record: BTreeMap::new(),
            recent: [None; RECENT],
            next: 0,
        }
    }
}

/// The digest's first eight bytes.
fn key(digest: &Digest) -> u64 {
    let [a, b, c, d, e, f, g, h, ..] = digest.0;
    u64::from_le_bytes([a, b, c, d, e, f, g, h])
}

impl Recorded {
    /// The record holding the batch with `digest`, if remembered.
    pub fn get(&mut self, digest: &Digest) -> Option<u64> {
        let k = key(digest);
        let recent = self.recent.iter().flatten();
        if let Some((_, _, record)) = recent
            .into_iter()
            .find(|(rk, rd, _)| *rk == k && rd == digest)
        {
            return Some(*record);
        }
        match self.by_key.get(&k) {
            Some((held, record)) if held == digest => {
                let record = *record;
                self.remember(k, *digest, record);
                Some(record)
            }
            _ => None,
        }
    }

    /// Remembers that record `record` holds the batch `digest`.
    pub fn insert(&mut self, digest: Digest, record: u64) {
        let k = key(&digest);
        if let Some((_, old)) = self.by_key.insert(k, (digest, record)) {
            self.by_record.remove(&old);
            self.forget(k);
        }
        self.by_record.insert(record, k);
        while self.by_record.len() > MAX_RECORDED_BATCHES {
            if let Some((_, k)) = self.by_record.pop_first() {
                self.by_key.remove(&k);
                self.forget(k);
            }
        }
        // Last: the loop above may have forgotten another batch with this key.
        if self.by_key.contains_key(&k) {
            self.remember(k, digest, record);
        }
    }

    /// Puts a batch the map holds in front of it.
    fn remember(&mut self, k: u64, digest: Digest, record: u64) {
        if let Some(slot) = self.recent.get_mut(self.next) {
            *slot = Some((k, digest, record));
        }
        self.next = (self.next + 1) % RECENT;
    }

    /// Drops the batches with key `k` from the front array.
    fn forget(&mut self, k: u64) {
        for slot in &mut self.recent {
            if slot.is_some_and(|(rk, _, _)| rk == k) {
                *slot = None;
            }
        }
    }

    /// Number of remembered batches.
    pub fn len(&self) -> usize {
        self.by_record.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_record.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // The later evicts the earlier: the earlier is recorded again if it returns.
        r.insert(b, 2);
        assert_eq!(r.get(&b), Some(2));
        assert_eq!(r.get(&a), None);
        assert_eq!(r.len(), 1);
        r.insert(a, 3);
        assert_eq!((r.get(&a), r.get(&b), r.len()), (Some(3), None, 1));
    }

    /// The plain map (no front array): what [`Recorded`] must answer.
    #[derive(Default)]
    struct Model {
        by_key: BTreeMap<u64, (Digest, u64)>,
        by_record: BTreeMap<u64, u64>,
    }

    impl Model {
        fn get(&self, d: &Digest) -> Option<u64> {
            self.by_key
                .get(&key(d))
                .filter(|(held, _)| held == d)
                .map(|(_, r)| *r)
        }
        fn insert(&mut self, d: Digest, record: u64) {
            if let Some((_, old)) = self.by_key.insert(key(&d), (d, record)) {
                self.by_record.remove(&old);
            }
            self.by_record.insert(record, key(&d));
            while self.by_record.len() > MAX_RECORDED_BATCHES {
                if let Some((_, k)) = self.by_record.pop_first() {
                    self.by_key.remove(&k);
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Lookups and records in any order (digests from a small pool, some sharing
        /// their first eight bytes; enough of them to evict): the front array never
        /// changes an answer.
        #[test]
        fn the_front_array_answers_as_the_map(
            ops in proptest::collection::vec((proptest::bool::ANY, 0u16..1400, 0u8..3), 1..4000)
        ) {
            let mut r = Recorded::default();
            let mut m = Model::default();
            let digest = |i: u16, tail: u8| {
                let mut d = [0u8; 32];
                d[..2].copy_from_slice(&(i % 1300).to_le_bytes());
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
