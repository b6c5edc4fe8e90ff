//! [`Lineage`]: appends records to a [`Storage`], chaining each to its predecessor, and
//! exports the log with a signed checkpoint.

use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::SigningKey;
use slope_proto::Digest;

use super::export::{self, Checkpoint};
use super::record::{self, Entry, Genesis, Record};
use super::storage::{Storage, StorageError};
use crate::time::Millis;
use crate::trust::BatchFrame;

/// Why a record could not be appended (or the log exported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppendError {
    /// The record does not encode.
    Encode,
    /// The store refused or failed.
    Storage(StorageError),
    /// The export key is not the genesis author's.
    WrongAuthor,
    /// While replaying a stored log: record `record` differs from the one the engine
    /// derives from the log's inputs (or is missing).
    Replay { record: u64 },
}

impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Encode => f.write_str("lineage record does not encode"),
            Self::Storage(e) => write!(f, "lineage storage: {e}"),
            Self::WrongAuthor => f.write_str("export key is not the log's author"),
            Self::Replay { record } => {
                write!(f, "replay: record {record} differs from the derived one")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for AppendError {}

impl From<StorageError> for AppendError {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

/// Bytes of the reusable encoding buffer: every record the engine writes per decision
/// fits (an observation with 16 receipts of the largest frame is about 4.2 KiB), and so
/// does a batched receipt (at most `MAX_RECEIPT_BATCH`, 16 KiB, plus the record head);
/// larger ones (a genesis with a long policy) grow it.
const SCRATCH: usize = 20 << 10;

/// Encodes `rec` into `buf` (kept at least [`SCRATCH`] long, never shrunk) and returns
/// the encoded length: the per-decision kinds through [`super::encode`], anything else
/// through postcard. Both give the same canonical postcard bytes.
fn encode(rec: &Record<'_>, buf: &mut Vec<u8>) -> Result<usize, AppendError> {
    if buf.len() < SCRATCH {
        buf.resize(SCRATCH, 0);
    }
    if let Some(len) = super::encode::encode(rec, buf) {
        return Ok(len);
    }
    match postcard::to_slice(rec, buf) {
        Ok(out) => Ok(out.len()),
        Err(postcard::Error::SerializeBufferFull) => {
            let grown = postcard::to_extend(rec, Vec::new()).map_err(|_| AppendError::Encode)?;
            let len = grown.len();
            *buf = grown;
            Ok(len)
        }
        Err(_) => Err(AppendError::Encode),
    }
}

/// The hash-chained log.
#[derive(Debug)]
pub struct Lineage<S> {
    storage: S,
    next: u64,
    head: Digest,
    author: [u8; 32],
    buf: Vec<u8>,
    contexts: record::Contexts,
    /// Replaying a stored log: appends compare with the stored record instead of
    /// writing (see [`Lineage::replaying`]).
    replay: Option<Vec<u8>>,
}

impl<S: Storage> Lineage<S> {
    /// Starts a log in an empty store with its genesis record, or resumes a store that
    /// already holds one (the genesis is then not appended again).
    pub fn open(mut storage: S, genesis: Genesis, at: Millis) -> Result<Self, AppendError> {
        let author = genesis.author;
        if let Some(head) = storage.head() {
            return Ok(Self {
                next: storage.len(),
                storage,
                head,
                author,
                buf: Vec::new(),
                contexts: record::Contexts::new(),
                replay: None,
            });
        }
        let rec = Record {
            index: 0,
            prev: Digest([0; 32]),
            at,
            entry: Entry::Genesis(genesis),
        };
        let bytes = postcard::to_extend(&rec, Vec::new()).map_err(|_| AppendError::Encode)?;
        let head = record::digest(&bytes);
        storage.append(0, &head, &bytes)?;
        Ok(Self {
            storage,
            next: 1,
            head,
            author,
            buf: bytes,
            contexts: record::Contexts::new(),
            replay: None,
        })
    }

    /// A log positioned after its genesis record (digest `head`) in replay mode: each
    /// [`Lineage::append`] encodes the record as usual and compares it with the stored
    /// record of that index (`AppendError::Replay` when they differ), writing nothing.
    /// [`Lineage::end_replay`] returns to normal appending.
    pub(crate) fn replaying(storage: S, author: [u8; 32], head: Digest) -> Self {
        Self {
            storage,
            next: 1,
            head,
            author,
            buf: Vec::new(),
            contexts: record::Contexts::new(),
            replay: Some(Vec::new()),
        }
    }

    /// Ends replay mode; the replay must have consumed every stored record, and the
    /// last one's digest must be the store's head.
    pub(crate) fn end_replay(&mut self) -> Result<(), AppendError> {
        if self.next != self.storage.len() || self.storage.head() != Some(self.head) {
            return Err(AppendError::Replay { record: self.next });
        }
        self.replay = None;
        Ok(())
    }

    /// In replay mode, steps over the stored record at the current index (one that
    /// changes no state), checking its index and chain. Returns the index stepped over.
    pub(crate) fn skip(&mut self) -> Result<u64, AppendError> {
        let i = self.next;
        let stored = self
            .replay
            .as_mut()
            .ok_or(AppendError::Replay { record: i })?;
        if !self.storage.read(i, stored)? {
            return Err(AppendError::Replay { record: i });
        }
        let rec: Record<'_> =
            postcard::from_bytes(stored).map_err(|_| AppendError::Replay { record: i })?;
        if rec.index != i || rec.prev != self.head {
            return Err(AppendError::Replay { record: i });
        }
        self.head = record::digest_with(&self.contexts, stored);
        self.next += 1;
        Ok(i)
    }

    /// Gives the store back.
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Appends an entry; returns its index. A receipt batch is better appended with
    /// [`Lineage::append_batch`], which does not hash its frame again.
    pub fn append(&mut self, at: Millis, entry: Entry<'_>) -> Result<u64, AppendError> {
        let rec = Record {
            index: self.next,
            prev: self.head,
            at,
            entry,
        };
        let len = encode(&rec, &mut self.buf)?;
        let bytes = self.buf.get(..len).ok_or(AppendError::Encode)?;
        let digest = record::digest_with(&self.contexts, bytes);
        self.store(len, &[], digest)
    }

    /// Appends the receipt batch `batch` (an `Entry::ReceiptBatch` of its frame): the
    /// record's digest commits to the frame through `batch.digest()`, which `BatchFrame`
    /// computed from that same frame when the batch was verified, and the frame goes to
    /// the store without being copied behind the record's head first
    /// ([`Storage::append_split`]). Returns the record's index.
    pub fn append_batch(&mut self, at: Millis, batch: &BatchFrame) -> Result<u64, AppendError> {
        let frame = batch.frame();
        if self.buf.len() < SCRATCH {
            self.buf.resize(SCRATCH, 0);
        }
        let (head, len) =
            super::encode::batch_head(self.next, &self.head, at, frame.len(), &mut self.buf)
                .ok_or(AppendError::Encode)?;
        let head_bytes = self.buf.get(..head).ok_or(AppendError::Encode)?;
        let digest = record::batch_record(&self.contexts, head_bytes, &batch.digest());
        debug_assert_eq!(
            Some(digest),
            self.buf
                .get(..len)
                .map(|h| record::digest_with(&self.contexts, &[h, frame].concat()))
        );
        self.store(len, frame, digest)
    }

    /// Stores (or, replaying, compares) the record encoded as the buffer's first `len`
    /// bytes followed by `tail`, whose digest is `digest`; returns its index.
    fn store(&mut self, len: usize, tail: &[u8], digest: Digest) -> Result<u64, AppendError> {
        let head = self.buf.get(..len).ok_or(AppendError::Encode)?;
        match self.replay.as_mut() {
            None if tail.is_empty() => self.storage.append(self.next, &digest, head)?,
            None => self.storage.append_split(self.next, &digest, head, tail)?,
            Some(stored) => {
                let found = self.storage.read(self.next, stored)?;
                let same = stored.len() == head.len() + tail.len()
                    && stored.starts_with(head)
                    && stored.ends_with(tail);
                if !found || !same {
                    return Err(AppendError::Replay { record: self.next });
                }
            }
        }
        let index = self.next;
        self.head = digest;
        self.next += 1;
        Ok(index)
    }

    /// The index the next record will get.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// Digest of the last record.
    pub fn head(&self) -> Digest {
        self.head
    }

    /// The store.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Exports the whole log with a checkpoint signed by `key` (the genesis author).
    pub fn export(&self, key: &SigningKey) -> Result<Vec<u8>, AppendError> {
        if key.verifying_key().to_bytes() != self.author {
            return Err(AppendError::WrongAuthor);
        }
        let mut records = Vec::with_capacity(self.next as usize);
        let mut buf = Vec::new();
        for i in 0..self.next {
            if !self.storage.read(i, &mut buf)? {
                return Err(AppendError::Storage(StorageError::Failed));
            }
            records.push(buf.clone());
        }
        let checkpoint = Checkpoint::sign(self.next, self.head, key);
        export::encode(&records, &checkpoint).ok_or(AppendError::Encode)
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use proptest::prelude::*;
    use slope_proto::batch::Entry as BatchEntry;
    use slope_proto::{LinkDigest, Observation, ReceiptBatch, ShortId, sample};

    use super::{Entry, Genesis, Lineage};
    use crate::lineage::record;
    use crate::lineage::storage::{Memory, Storage};
    use crate::trust::{BatchFrame, Policy};

    fn batch(n: u8, time_ms: u64) -> Vec<u8> {
        let entries = (0..n).map(|i| BatchEntry {
            device: ShortId([i; 8]),
            seq: u32::from(i),
            event: LinkDigest([n; 16]),
            observed: Observation {
                rssi_dbm: -100,
                snr_qdb: 4,
                freq_hz: 868_100_000,
                foff_hz: None,
                sf: 7,
                time_ms,
            },
        });
        let mut out = alloc::vec![0u8; 16 << 10];
        let len = ReceiptBatch::sign_into(&sample::key(7), time_ms, entries, &mut out)
            .expect("batch signs");
        out.truncate(len);
        out
    }

    fn open() -> Lineage<Memory> {
        let genesis = Genesis {
            author: sample::key(1).verifying_key().to_bytes(),
            operators: Vec::new(),
            local: None,
            policy: Policy::default(),
        };
        Lineage::open(Memory::new(usize::MAX), genesis, 0).expect("opens")
    }

    /// Replaying, a batch record is compared in full: another frame of the same length
    /// in the store is a mismatch.
    #[test]
    fn a_replayed_batch_is_compared_frame_and_all() {
        let (x, y) = (batch(5, 1_000), batch(5, 1_001));
        assert_eq!(x.len(), y.len());
        assert_ne!(x, y);
        let frame = |f: &[u8]| BatchFrame::of(&ReceiptBatch::decode(f).expect("decodes"));
        let mut log = open();
        let genesis = log.head();
        log.append_batch(7, &frame(&x)).expect("appends");
        let storage = log.into_storage();
        let author = sample::key(1).verifying_key().to_bytes();
        let mut same = Lineage::replaying(storage.clone(), author, genesis);
        assert_eq!(same.append_batch(7, &frame(&x)), Ok(1));
        assert_eq!(same.end_replay(), Ok(()));
        let mut other = Lineage::replaying(storage, author, genesis);
        assert_eq!(
            other.append_batch(7, &frame(&y)),
            Err(super::AppendError::Replay { record: 1 })
        );
    }

    proptest! {
        /// `append_batch` writes the record `append` writes for the same frame, under the
        /// same digest, and every stored record's digest recomputed from its bytes alone
        /// is the digest its successor names.
        #[test]
        fn append_batch_is_append_of_the_frame(
            steps in proptest::collection::vec((1u8..120, any::<bool>()), 1..12),
        ) {
            let (mut fast, mut slow) = (open(), open());
            for (k, (n, evict)) in steps.iter().enumerate() {
                let at = k as u64 * 1_000;
                if *evict {
                    let e = Entry::Eviction { devices: u32::from(*n) };
                    fast.append(at, e.clone()).expect("appends");
                    slow.append(at, e).expect("appends");
                    continue;
                }
                let frame = batch(*n, at);
                let decoded = ReceiptBatch::decode(&frame).expect("decodes");
                fast.append_batch(at, &BatchFrame::of(&decoded)).expect("appends");
                slow.append(at, Entry::ReceiptBatch { frame: &frame }).expect("appends");
                prop_assert_eq!(fast.head(), slow.head());
            }
            prop_assert_eq!(fast.head(), slow.head());
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for i in 0..slow.storage().len() {
                prop_assert!(fast.storage().read(i, &mut a).expect("reads"));
                prop_assert!(slow.storage().read(i, &mut b).expect("reads"));
                prop_assert_eq!(&a, &b);
            }
            let store = fast.storage();
            let (mut prev, mut buf) = (None, Vec::new());
            for i in 0..store.len() {
                prop_assert!(store.read(i, &mut buf).expect("reads"));
                let rec: super::Record<'_> = postcard::from_bytes(&buf).expect("decodes");
                if let Some(p) = prev {
                    prop_assert_eq!(rec.prev, p);
                }
                prev = Some(record::digest(&buf));
            }
            prop_assert_eq!(prev, Some(fast.head()));
        }
    }
}
