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
use alloc::vec::Vec;

use slope_proto::{Digest, ReceiptBatch};

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

/// The batches the lineage holds: digest → record index, at most
/// [`MAX_RECORDED_BATCHES`], the oldest record forgotten first.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    by_digest: BTreeMap<Digest, u64>,
    by_record: BTreeMap<u64, Digest>,
}

impl Recorded {
    /// The record holding the batch with `digest`, if remembered.
    pub fn get(&self, digest: &Digest) -> Option<u64> {
        self.by_digest.get(digest).copied()
    }

    /// Remembers that record `record` holds the batch `digest`.
    pub fn insert(&mut self, digest: Digest, record: u64) {
        if let Some(old) = self.by_digest.insert(digest, record) {
            self.by_record.remove(&old);
        }
        self.by_record.insert(record, digest);
        while self.by_record.len() > MAX_RECORDED_BATCHES {
            if let Some((_, d)) = self.by_record.pop_first() {
                self.by_digest.remove(&d);
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
}
