//! The durable store: one redb file in the data directory holding device records,
//! frames, establishment events, divergence proofs and the lineage.
//!
//! Writes go through a [`Txn`] (one redb write transaction, committed with immediate
//! durability) and the [`Batch`] of its tables, each opened once per transaction, so
//! everything the pipeline decides about one batch of frames lands atomically, before
//! any receipt for it is signed. Reads take their own read
//! transactions and may run concurrently with the writer (the API does).

mod batch;
mod check;
mod chunks;
pub mod compact;
mod engine_lineage;
mod frames;
mod records;
mod tables;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use slope_proto::DeviceId;

pub use batch::{Batch, Txn};
pub use check::{Check, Problem};
pub use engine_lineage::{Pending, RedbLineage};
pub use records::{
    DeviceRecord, FrameRecord, FrameRef, MAX_WITNESSES, QuarantineInfo, RfProfile, Undecided,
    WitnessStat,
};

use crate::lineage::{self, Record};
use tables::*;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "slope.redb";

/// The schema version this build reads and writes (2: decisions keep the trust
/// engine's typed reasons, one lineage record per observation; 3: the engine lineage
/// in chunks of records; 4: suite-2 tables ([`compact`]) and lineage entries; 5: each
/// witness of a device remembers which recent positions it was counted for; 6: frames
/// stored in runs, one per device per transaction ([`frames`]), and the device record
/// keeps its highest stored frame position; 7: the engine lineage's receipt-batch
/// records are chained by the batch-record digest, `slope_node::lineage::record::digest`,
/// so a schema-6 engine lineage holding a batch no longer replays).
pub const SCHEMA: u32 = 7;

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error(
        "{path}: the database is open in another process (is `slope gateway` running? stop it, or use the HTTP API)"
    )]
    Locked { path: PathBuf },
    #[error("{path}: the database is corrupt or truncated: {detail} (run `slope db check`)")]
    Corrupt { path: PathBuf, detail: String },
    #[error("{path}: no database here (run `slope init`)")]
    Missing { path: PathBuf },
    #[error(
        "{path}: schema version {found}, this build reads {SCHEMA}: the data directory was written by another version of slope; keep that version for it, or start this one on a new data directory (`slope init`)"
    )]
    Schema { path: PathBuf, found: u32 },
    #[error("database: {0}")]
    Db(String),
    #[error("stored value in {table} does not decode")]
    Decode { table: &'static str },
}

fn db<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::Db(e.into().to_string())
}

fn decode<T: serde::de::DeserializeOwned>(
    table: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|_| StoreError::Decode { table })
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // postcard into a Vec fails only on out-of-memory, which aborts anyway.
    postcard::to_allocvec(value).unwrap_or_default()
}

/// The store.
pub struct Store {
    db: Database,
    path: PathBuf,
    fsync: bool,
    /// Commits still to fail on purpose (the fault-injection seam, see
    /// [`Store::fail_next_commits`]); 0 in a gateway, always.
    fail_commits: Arc<AtomicU32>,
}

/// How a store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Commit every write transaction durably (fsync before `commit` returns). `true`
    /// for a gateway, always. `false` is for simulations and tests only: commits are
    /// atomic and visible but not durable until a later durable commit, so a crash loses
    /// them while receipts for them may already be out; `slope gateway` never sets it.
    pub fsync: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { fsync: true }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the database at `path`, creating it (and its tables) if missing.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Options::default())
    }

    /// [`Self::open`] with [`Options`].
    pub fn open_with(path: &Path, options: Options) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(|e| open_error(path, e))?;
        let store = Self {
            db,
            path: path.to_owned(),
            fsync: options.fsync,
            fail_commits: Arc::default(),
        };
        store.init()?;
        Ok(store)
    }

    /// Opens an existing database (never creates one).
    pub fn open_existing(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_owned(),
            });
        }
        Self::open(path)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn init(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut meta = txn.open_table(META).map_err(db)?;
            let schema = meta.get(K_SCHEMA).map_err(db)?.map(|v| v.value().to_vec());
            match schema {
                None => {
                    meta.insert(K_SCHEMA, &SCHEMA.to_le_bytes()[..])
                        .map_err(db)?;
                }
                Some(v) => {
                    let found = v
                        .as_slice()
                        .try_into()
                        .map(u32::from_le_bytes)
                        .unwrap_or(u32::MAX);
                    if found != SCHEMA {
                        return Err(StoreError::Schema {
                            path: self.path.clone(),
                            found,
                        });
                    }
                }
            }
            txn.open_table(DEVICES).map_err(db)?;
            txn.open_table(FRAMES).map_err(db)?;
            txn.open_table(ESTABLISHMENTS).map_err(db)?;
            txn.open_table(DIVERGENCES).map_err(db)?;
            txn.open_table(LINEAGE).map_err(db)?;
            txn.open_table(LINEAGE_BY_DEVICE).map_err(db)?;
            txn.open_table(ENGINE_LINEAGE).map_err(db)?;
            txn.open_table(UNDECIDED).map_err(db)?;
            compact::create(&txn)?;
        }
        txn.commit().map_err(db)
    }

    /// One device's record.
    pub fn device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(DEVICES).map_err(db)?;
        match t.get(&id.0).map_err(db)? {
            Some(v) => Ok(Some(decode("devices", v.value())?)),
            None => Ok(None),
        }
    }

    /// Devices in id order, after `after`, at most `limit`.
    pub fn devices(
        &self,
        after: Option<&DeviceId>,
        limit: usize,
    ) -> Result<Vec<(DeviceId, DeviceRecord)>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(DEVICES).map_err(db)?;
        let mut out = Vec::new();
        let iter = match after {
            Some(a) => {
                t.range::<&[u8; 32]>((std::ops::Bound::Excluded(&a.0), std::ops::Bound::Unbounded))
            }
            None => t.range::<&[u8; 32]>(..),
        }
        .map_err(db)?;
        for item in iter.take(limit) {
            let (k, v) = item.map_err(db)?;
            out.push((DeviceId(*k.value()), decode("devices", v.value())?));
        }
        Ok(out)
    }

    /// Number of device records.
    pub fn device_count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(DEVICES).map_err(db)?;
        t.len().map_err(db)
    }

    /// Devices whose id starts with `prefix` (a short id, or any prefix up to 32 bytes).
    pub fn devices_with_prefix(&self, prefix: &[u8]) -> Result<Vec<DeviceId>, StoreError> {
        let (lo, hi) = prefix_range(prefix);
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(DEVICES).map_err(db)?;
        let mut out = Vec::new();
        for item in t.range::<&[u8; 32]>(&lo..=&hi).map_err(db)?.take(64) {
            let (k, _) = item.map_err(db)?;
            out.push(DeviceId(*k.value()));
        }
        Ok(out)
    }

    /// The committed frame of `id` at `seq`.
    pub fn frame(&self, id: &DeviceId, seq: u32) -> Result<Option<FrameRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(FRAMES).map_err(db)?;
        frames::get(&t, id, seq)
    }

    /// Committed frames of `id` with a position above `after` (all with `None`),
    /// ascending, at most `limit`.
    pub fn frames(
        &self,
        id: &DeviceId,
        after: Option<u32>,
        limit: usize,
    ) -> Result<Vec<FrameRecord>, StoreError> {
        let from = match after {
            Some(s) => match s.checked_add(1) {
                Some(n) => n,
                None => return Ok(Vec::new()),
            },
            None => 0,
        };
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(FRAMES).map_err(db)?;
        frames::from(&t, id, from, limit)
    }

    /// The attestations committed whose decision waits (see [`Undecided`]), by the
    /// transaction that committed them, oldest first.
    pub fn undecided(&self) -> Result<Vec<(u64, Vec<Undecided>)>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = match txn.open_table(UNDECIDED) {
            Ok(t) => t,
            // A store opened read-only that never had the table: nothing waits.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db(e)),
        };
        let mut out = Vec::new();
        for item in t.iter().map_err(db)? {
            let (k, v) = item.map_err(db)?;
            out.push((k.value(), decode("undecided", v.value())?));
        }
        Ok(out)
    }

    /// The last `n` committed frames of `id`, ascending.
    pub fn recent_frames(&self, id: &DeviceId, n: usize) -> Result<Vec<FrameRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(FRAMES).map_err(db)?;
        frames::recent(&t, id, n)
    }

    /// The establishment frames of `id` (inception, then rotations by epoch).
    pub fn establishments(&self, id: &DeviceId) -> Result<Vec<Vec<u8>>, StoreError> {
        let lo = frame_key(id, 0);
        let hi = frame_key(id, u32::MAX);
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(ESTABLISHMENTS).map_err(db)?;
        let mut out = Vec::new();
        for item in t.range::<&[u8; 36]>(&lo..=&hi).map_err(db)? {
            let (_, v) = item.map_err(db)?;
            out.push(v.value().to_vec());
        }
        Ok(out)
    }

    /// Stored divergence proofs, the first 10,000 in device order (use
    /// [`Self::divergences_page`] to read them all).
    pub fn divergences(&self) -> Result<Vec<(DeviceId, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(DIVERGENCES).map_err(db)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(db)?.take(10_000) {
            let (k, v) = item.map_err(db)?;
            out.push((DeviceId(*k.value()), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Stored divergence proofs in device order, after `after`, at most `limit`.
    pub fn divergences_page(
        &self,
        after: Option<&DeviceId>,
        limit: usize,
    ) -> Result<Vec<(DeviceId, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(DIVERGENCES).map_err(db)?;
        let iter = match after {
            Some(a) => {
                t.range::<&[u8; 32]>((std::ops::Bound::Excluded(&a.0), std::ops::Bound::Unbounded))
            }
            None => t.range::<&[u8; 32]>(..),
        }
        .map_err(db)?;
        let mut out = Vec::new();
        for item in iter.take(limit) {
            let (k, v) = item.map_err(db)?;
            out.push((DeviceId(*k.value()), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Number of stored divergence proofs.
    pub fn divergence_count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(DIVERGENCES).map_err(db)?;
        t.len().map_err(db)
    }

    /// The divergence proof of `id`, if any.
    pub fn divergence(&self, id: &DeviceId) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(DIVERGENCES).map_err(db)?;
        Ok(t.get(&id.0).map_err(db)?.map(|v| v.value().to_vec()))
    }

    /// The committed lineage head: (records, digest of the last).
    pub fn lineage_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let meta = txn.open_table(META).map_err(db)?;
        read_head(&meta)
    }

    /// Lineage records from `from`, at most `limit`.
    pub fn lineage(&self, from: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(LINEAGE).map_err(db)?;
        let mut out = Vec::new();
        if limit > 0 {
            chunks::read(&t, "lineage", from, |_, v| {
                out.push(decode("lineage", v)?);
                Ok(out.len() < limit)
            })?;
        }
        Ok(out)
    }

    /// The newest `limit` lineage records about `id`, oldest first.
    pub fn lineage_of(&self, id: &DeviceId, limit: usize) -> Result<Vec<Record>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let idx = txn.open_table(LINEAGE_BY_DEVICE).map_err(db)?;
        let t = txn.open_table(LINEAGE).map_err(db)?;
        let lo = lineage_key(id, 0);
        let hi = lineage_key(id, u64::MAX);
        let mut out = Vec::new();
        'runs: for item in idx.range::<&[u8; 40]>(&lo..=&hi).map_err(db)?.rev() {
            let (_, run) = item.map_err(db)?;
            for index in run.value().chunks(8).rev() {
                if out.len() >= limit {
                    break 'runs;
                }
                let index = <[u8; 8]>::try_from(index)
                    .map_err(|_| StoreError::Decode {
                        table: "lineage_by_device",
                    })
                    .map(u64::from_be_bytes)?;
                chunks::read(&t, "lineage", index, |at, v| {
                    if at == index {
                        out.push(decode("lineage", v)?);
                    }
                    Ok(false)
                })?;
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Verifies the whole lineage against its committed head.
    pub fn verify_lineage(&self) -> Result<Result<u64, lineage::LineageError>, StoreError> {
        let head = self.lineage_head()?;
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(LINEAGE).map_err(db)?;
        // Streamed: a long log never has to fit in memory.
        let mut chain = lineage::Chain::new();
        let mut broken = None;
        chunks::read(&t, "lineage", 0, |index, v| {
            if let Err(e) = chain.push(index, v) {
                broken = Some(e);
                return Ok(false);
            }
            Ok(true)
        })?;
        if let Some(e) = broken {
            return Ok(Err(e));
        }
        Ok(chain.finish(head))
    }

    /// Starts a write transaction; [`Txn::batch`] opens its tables.
    pub fn begin(&self) -> Result<Txn, StoreError> {
        let mut txn = self.db.begin_write().map_err(db)?;
        if !self.fsync {
            txn.set_durability(redb::Durability::None).map_err(db)?;
        }
        let head = {
            let meta = txn.open_table(META).map_err(db)?;
            read_head(&meta)?
        };
        Ok(Txn {
            txn,
            head,
            fail: self.fail_commits.clone(),
            devices: Default::default(),
            by_device: Default::default(),
            lineage: Default::default(),
            frames: Default::default(),
        })
    }

    /// Fault injection, for tests: the next `n` write transactions fail at their commit
    /// (nothing of them is written, as when redb's commit fails, e.g. on a full disk),
    /// with [`StoreError::Db`]. Nothing in the node calls it.
    #[doc(hidden)]
    pub fn fail_next_commits(&self, n: u32) {
        self.fail_commits.store(n, Ordering::SeqCst);
    }

    /// Runs every check of `slope db check` (see [`Check`]).
    pub fn check(path: &Path) -> Check {
        check::run(path)
    }

    pub(crate) fn db_mut(&mut self) -> &mut Database {
        &mut self.db
    }
}

fn read_head(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<(u64, [u8; 32]), StoreError> {
    match meta.get(K_LINEAGE_HEAD).map_err(db)? {
        None => Ok((0, [0; 32])),
        Some(v) => decode_head(v.value()),
    }
}

/// A lineage head as stored in `meta`: the record count (u64 little-endian), then the
/// 32-byte digest of the last record.
fn decode_head(b: &[u8]) -> Result<(u64, [u8; 32]), StoreError> {
    let (Ok(n), Ok(d)) = (
        <[u8; 8]>::try_from(b.get(..8).unwrap_or_default()),
        <[u8; 32]>::try_from(b.get(8..).unwrap_or_default()),
    ) else {
        return Err(StoreError::Decode { table: "meta" });
    };
    Ok((u64::from_le_bytes(n), d))
}

fn open_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
            path: path.to_owned(),
        },
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
            StoreError::Corrupt {
                path: path.to_owned(),
                detail,
            }
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) => StoreError::Corrupt {
            path: path.to_owned(),
            detail: io.to_string(),
        },
        other => StoreError::Corrupt {
            path: path.to_owned(),
            detail: other.to_string(),
        },
    }
}
