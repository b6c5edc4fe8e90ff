//! Where lineage records go: the [`Storage`] trait (the gateway's durable store
//! implements it) and [`Memory`], a bounded in-memory store.

use alloc::vec::Vec;
use core::fmt;

use slope_proto::Digest;

/// Why a store refused or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageError {
    /// The store is at its bound.
    Full,
    /// The backing store failed (I/O, corruption): the caller's store knows which.
    Failed,
    /// An append out of order.
    OutOfOrder,
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => f.write_str("lineage store full"),
            Self::Failed => f.write_str("lineage store failed"),
            Self::OutOfOrder => f.write_str("lineage append out of order"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StorageError {}

/// An append-only record store. Appends are in index order; a store must make an
/// append durable before returning `Ok` (the engine acts only on logged decisions).
pub trait Storage {
    /// Appends the encoded record `index` with its digest.
    fn append(&mut self, index: u64, digest: &Digest, record: &[u8]) -> Result<(), StorageError>;
    /// Appends the encoded record `index` given in two parts, `head ‖ tail` (a receipt
    /// batch: its head, then the frame, not copied behind the head first). The default
    /// joins them for [`Storage::append`]; a store that keeps no bytes, or writes them
    /// out in parts, does better.
    fn append_split(
        &mut self,
        index: u64,
        digest: &Digest,
        head: &[u8],
        tail: &[u8],
    ) -> Result<(), StorageError> {
        self.append(index, digest, &[head, tail].concat())
    }
    /// Number of records held.
    fn len(&self) -> u64;
    /// Whether the store is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Digest of the last record.
    fn head(&self) -> Option<Digest>;
    /// Copies record `index` into `out` (cleared first); `Ok(false)` when absent.
    fn read(&self, index: u64, out: &mut Vec<u8>) -> Result<bool, StorageError>;
}

/// A bounded in-memory store: refuses appends beyond `max_bytes` of records
/// (`StorageError::Full`), so a flood cannot exhaust memory; the engine then fails
/// closed (no decision without its record).
#[derive(Debug, Clone)]
pub struct Memory {
    records: Vec<Vec<u8>>,
    head: Option<Digest>,
    bytes: usize,
    max_bytes: usize,
}

impl Memory {
    /// A store holding at most `max_bytes` of encoded records.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            records: Vec::new(),
            head: None,
            bytes: 0,
            max_bytes,
        }
    }

    /// Bytes of encoded records held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Memory {
    /// Appends the record made of `parts`, in order.
    fn push(&mut self, index: u64, digest: &Digest, parts: &[&[u8]]) -> Result<(), StorageError> {
        if index != self.records.len() as u64 {
            return Err(StorageError::OutOfOrder);
        }
        let len = parts.iter().map(|p| p.len()).sum::<usize>();
        if self.bytes.saturating_add(len) > self.max_bytes {
            return Err(StorageError::Full);
        }
        let mut record = Vec::with_capacity(len);
        for p in parts {
            record.extend_from_slice(p);
        }
        self.records.push(record);
        self.bytes += len;
        self.head = Some(*digest);
        Ok(())
    }
}

impl Storage for Memory {
    fn append(&mut self, index: u64, digest: &Digest, record: &[u8]) -> Result<(), StorageError> {
        self.push(index, digest, &[record])
    }
    fn append_split(
        &mut self,
        index: u64,
        digest: &Digest,
        head: &[u8],
        tail: &[u8],
    ) -> Result<(), StorageError> {
        self.push(index, digest, &[head, tail])
    }
    fn len(&self) -> u64 {
        self.records.len() as u64
    }
    fn head(&self) -> Option<Digest> {
        self.head
    }
    fn read(&self, index: u64, out: &mut Vec<u8>) -> Result<bool, StorageError> {
        out.clear();
        match usize::try_from(index)
            .ok()
            .and_then(|i| self.records.get(i))
        {
            Some(r) => {
                out.extend_from_slice(r);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
