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
    context: blake3::hazmat::ContextKey,
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
                context: record::context_key(),
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
            context: record::context_key(),
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
            context: record::context_key(),
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
        self.head = record::digest_with(&self.context, stored);
        self.next += 1;
        Ok(i)
    }

    /// Gives the store back.
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Appends an entry; returns its index.
    pub fn append(&mut self, at: Millis, entry: Entry<'_>) -> Result<u64, AppendError> {
        let rec = Record {
            index: self.next,
            prev: self.head,
            at,
            entry,
        };
        let len = encode(&rec, &mut self.buf)?;
        let bytes = self.buf.get(..len).ok_or(AppendError::Encode)?;
        let digest = record::digest_with(&self.context, bytes);
        match self.replay.as_mut() {
            None => self.storage.append(self.next, &digest, bytes)?,
            Some(stored) => {
                let found = self.storage.read(self.next, stored)?;
                if !found || stored.as_slice() != bytes {
                    return Err(AppendError::Replay { record: self.next });
                }
            }
        }
        self.head = digest;
        self.next += 1;
        Ok(rec.index)
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
