//! `slope_node::lineage::Storage` on redb: the trust engine's hash-chained lineage in
//! the `engine_lineage` table.
//!
//! The engine appends while the pipeline decides a batch; appends are held in memory
//! (shared with the pipeline) and written by [`super::Txn::put_engine_lineage`] in the
//! batch's own transaction, so they become durable in the same fsync as the observations
//! they describe — and before any receipt or gossip verdict for them leaves the node
//! (the trait's "durable before acting" rule, at batch granularity). If a commit fails
//! the pipeline discards the engine and reopens it from the committed head.
//!
//! Stored in chunks of consecutive records ([`super::chunks`]).

use std::sync::{Arc, Mutex, MutexGuard};

use redb::ReadableDatabase;
use slope_node::lineage::{Storage, StorageError};
use slope_proto::Digest;

use super::chunks::{self, Chunks};
use super::tables::{ENGINE_LINEAGE, K_ENGINE_HEAD, K_WITNESSES, META};
use super::{Store, StoreError, db, decode_head};

/// What the engine's store and the pipeline share: records appended and not yet
/// written, and the committed head. Appends go straight into the chunks the commit
/// writes (one copy of each record, no allocation per record).
#[derive(Debug, Default)]
pub struct Shared {
    /// Records appended and not yet written, in chunks.
    chunks: Chunks,
    /// Where each of them lies in `chunks`, in index order from `committed.0`.
    at: Vec<chunks::At>,
    /// Digest of the last record appended.
    last: Option<Digest>,
    /// Bytes in `chunks` (kept, not summed per append: that was quadratic in a batch).
    pending_bytes: usize,
    committed: (u64, Option<Digest>),
}

impl Shared {
    /// The index the next record gets.
    fn next(&self) -> u64 {
        self.committed.0 + self.at.len() as u64
    }
}

/// The shared state (see `Shared`, private to this module).
pub type Pending = Arc<Mutex<Shared>>;

/// Bytes of uncommitted engine records held at most (a runaway batch fails closed).
const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;

/// The engine lineage store.
pub struct RedbLineage {
    store: Arc<Store>,
    pending: Pending,
}

impl std::fmt::Debug for RedbLineage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbLineage")
            .field("records", &self.len())
            .finish()
    }
}

fn lock(p: &Pending) -> MutexGuard<'_, Shared> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

impl RedbLineage {
    /// Opens on the committed head of `store`; appends go to the returned [`Pending`].
    pub fn open(store: Arc<Store>) -> Result<(Self, Pending), StoreError> {
        let committed = store.engine_lineage_head()?;
        let pending = Arc::new(Mutex::new(Shared {
            committed,
            ..Shared::default()
        }));
        Ok((
            Self {
                store,
                pending: pending.clone(),
            },
            pending,
        ))
    }
}

impl Storage for RedbLineage {
    fn append(&mut self, index: u64, digest: &Digest, record: &[u8]) -> Result<(), StorageError> {
        let mut p = lock(&self.pending);
        if index != p.next() {
            return Err(StorageError::OutOfOrder);
        }
        if p.pending_bytes + record.len() > MAX_PENDING_BYTES {
            return Err(StorageError::Full);
        }
        p.pending_bytes += record.len();
        let at = p.chunks.push(index, record);
        p.at.push(at);
        p.last = Some(*digest);
        Ok(())
    }

    fn len(&self) -> u64 {
        lock(&self.pending).next()
    }

    fn head(&self) -> Option<Digest> {
        let p = lock(&self.pending);
        if p.at.is_empty() {
            p.committed.1
        } else {
            p.last
        }
    }

    fn read(&self, index: u64, out: &mut Vec<u8>) -> Result<bool, StorageError> {
        out.clear();
        {
            // Pending records are consecutive by index, from the committed head.
            let p = lock(&self.pending);
            let pending = index
                .checked_sub(p.committed.0)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| p.at.get(i).copied());
            if let Some(at) = pending {
                let record = p.chunks.get(at).ok_or(StorageError::Failed)?;
                out.extend_from_slice(record);
                return Ok(true);
            }
        }
        match self.store.engine_record(index) {
            Ok(Some(r)) => {
                out.extend_from_slice(&r);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(_) => Err(StorageError::Failed),
        }
    }
}

impl Store {
    /// The configured witnesses the engine has registered (empty when none).
    pub fn registered_witnesses(&self) -> Result<Vec<([u8; 32], u16)>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let meta = txn.open_table(META).map_err(db)?;
        match meta.get(K_WITNESSES).map_err(db)? {
            Some(v) => super::decode("meta", v.value()),
            None => Ok(Vec::new()),
        }
    }

    /// (records, digest of the last) of the engine lineage.
    pub fn engine_lineage_head(&self) -> Result<(u64, Option<Digest>), StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let meta = txn.open_table(META).map_err(db)?;
        let Some(v) = meta.get(K_ENGINE_HEAD).map_err(db)? else {
            return Ok((0, None));
        };
        let (n, d) = decode_head(v.value())?;
        Ok((n, Some(Digest(d))))
    }

    /// One stored engine lineage record.
    pub fn engine_record(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.engine_records(index, 1)?.pop())
    }

    /// The engine lineage as exported by `slope_node::lineage` (records in order), from
    /// `from`, at most `limit`.
    pub fn engine_records(&self, from: u64, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(ENGINE_LINEAGE).map_err(db)?;
        let mut out = Vec::new();
        if limit > 0 {
            chunks::read(&t, "engine_lineage", from, |_, record| {
                out.push(record.to_vec());
                Ok(out.len() < limit)
            })?;
        }
        Ok(out)
    }
}

impl super::Txn {
    /// Records which configured witnesses the engine has registered (see
    /// [`crate::trust::Engine::register_witnesses`]).
    pub fn put_registered_witnesses(&mut self, list: &[([u8; 32], u16)]) -> Result<(), StoreError> {
        let mut meta = self.txn.open_table(META).map_err(db)?;
        meta.insert(K_WITNESSES, super::encode(&list).as_slice())
            .map_err(db)?;
        Ok(())
    }

    /// Writes the engine's pending records in this transaction. (If the commit then
    /// fails, the pipeline reopens the engine from the committed head.)
    pub fn put_engine_lineage(&mut self, pending: &Pending) -> Result<(), StoreError> {
        let (chunks, next, digest) = {
            let mut p = lock(pending);
            let Some(digest) = p.last.filter(|_| !p.at.is_empty()) else {
                return Ok(());
            };
            let next = p.next();
            p.committed = (next, Some(digest));
            p.at.clear();
            p.pending_bytes = 0;
            (std::mem::take(&mut p.chunks), next, digest)
        };
        let mut t = self.txn.open_table(ENGINE_LINEAGE).map_err(db)?;
        chunks.write(&mut t)?;
        let mut meta = self.txn.open_table(META).map_err(db)?;
        let mut head = Vec::with_capacity(40);
        head.extend_from_slice(&next.to_le_bytes());
        head.extend_from_slice(&digest.0);
        meta.insert(K_ENGINE_HEAD, head.as_slice()).map_err(db)?;
        Ok(())
    }
}

impl Store {
    /// The engine lineage as a `slope_node::lineage` export, with a checkpoint signed by
    /// `key` (the gateway key, the lineage's author). `None` when there is none.
    pub fn engine_export(
        &self,
        key: &ed25519_dalek::SigningKey,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let (count, head) = self.engine_lineage_head()?;
        let Some(head) = head else { return Ok(None) };
        let records = self.engine_records(0, usize::MAX)?;
        if records.len() as u64 != count {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!(
                    "engine lineage holds {} records, its head says {count}",
                    records.len()
                ),
            });
        }
        let checkpoint = slope_node::lineage::Checkpoint::sign(count, head, key);
        Ok(slope_node::lineage::export::encode(&records, &checkpoint))
    }
}
