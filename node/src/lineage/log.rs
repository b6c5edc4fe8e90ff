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
}

impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Encode => f.write_str("lineage record does not encode"),
            Self::Storage(e) => write!(f, "lineage storage: {e}"),
            Self::WrongAuthor => f.write_str("export key is not the log's author"),
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

/// The hash-chained log.
#[derive(Debug)]
pub struct Lineage<S> {
    storage: S,
    next: u64,
    head: Digest,
    author: [u8; 32],
    buf: Vec<u8>,
    context: blake3::hazmat::ContextKey,
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
        })
    }

    /// Appends an entry; returns its index.
    pub fn append(&mut self, at: Millis, entry: Entry<'_>) -> Result<u64, AppendError> {
        let rec = Record {
            index: self.next,
            prev: self.head,
            at,
            entry,
        };
        self.buf.clear();
        let buf = core::mem::take(&mut self.buf);
        self.buf = postcard::to_extend(&rec, buf).map_err(|_| AppendError::Encode)?;
        let digest = record::digest_with(&self.context, &self.buf);
        self.storage.append(self.next, &digest, &self.buf)?;
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
