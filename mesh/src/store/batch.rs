//! Writing: a [`Txn`] is one redb write transaction; its [`Batch`] holds every table the
//! pipeline writes, opened once for the whole transaction (opening a table is a B-tree
//! root lookup and an allocation: per record it cost more than the insert itself).
//!
//! Device records are written back: the transaction keeps each record it read or wrote
//! decoded in memory and writes each changed one once, at [`Txn::commit`] (a device
//! heard five times in a group commit was decoded, encoded and inserted five times).
//! Likewise the per-device lineage index gets one entry per device per transaction,
//! listing the indices of the records about it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use redb::{ReadableTable, Table};
use slope_proto::DeviceId;

use super::chunks::Chunks;
use super::tables::*;
use super::{DeviceRecord, FrameRecord, FrameRef, StoreError, Undecided, db, decode};
use crate::lineage::{self, Entry, Record};

/// One write transaction: open its tables with [`Txn::batch`], drop the batch, then
/// [`Txn::commit`].
pub struct Txn {
    pub(super) txn: redb::WriteTransaction,
    pub(super) head: (u64, [u8; 32]),
    /// The store's fault-injection counter ([`super::Store::fail_next_commits`]).
    pub(super) fail: Arc<AtomicU32>,
    /// Device records read or written in this transaction (see the module docs).
    pub(super) devices: Devices,
    /// The lineage records this transaction appended, by device (one index entry per
    /// device at the commit).
    pub(super) by_device: HashMap<[u8; 32], Vec<u64>>,
    /// The lineage records this transaction appended, in chunks written at the commit.
    pub(super) lineage: Chunks,
    /// The frames this transaction stores, one run per device, written at the commit.
    pub(super) frames: super::frames::Pending,
}

/// Device records of a transaction, decoded; `true`: changed, to write at the commit.
pub(super) type Devices = HashMap<[u8; 32], (DeviceRecord, bool)>;

/// The tables of one [`Txn`], open until dropped. Reads see this transaction's writes.
pub struct Batch<'t> {
    devices: Table<'t, &'static [u8; 32], &'static [u8]>,
    frames: Table<'t, &'static [u8; 36], &'static [u8]>,
    establishments: Table<'t, &'static [u8; 36], &'static [u8]>,
    divergences: Table<'t, &'static [u8; 32], &'static [u8]>,
    undecided: Table<'t, u64, &'static [u8]>,
    head: &'t mut (u64, [u8; 32]),
    cache: &'t mut Devices,
    by_device: &'t mut HashMap<[u8; 32], Vec<u64>>,
    lineage: &'t mut Chunks,
    pending_frames: &'t mut super::frames::Pending,
    /// Scratch for encoding values (one allocation per batch, not per record).
    buf: Vec<u8>,
    /// Suite-2 tables ([`super::compact`]).
    pub(super) compact: super::compact::Tables<'t>,
}

impl Txn {
    /// Opens the tables (once for the whole transaction).
    pub fn batch(&mut self) -> Result<Batch<'_>, StoreError> {
        let txn = &self.txn;
        Ok(Batch {
            devices: txn.open_table(DEVICES).map_err(db)?,
            frames: txn.open_table(FRAMES).map_err(db)?,
            establishments: txn.open_table(ESTABLISHMENTS).map_err(db)?,
            divergences: txn.open_table(DIVERGENCES).map_err(db)?,
            undecided: txn.open_table(UNDECIDED).map_err(db)?,
            head: &mut self.head,
            cache: &mut self.devices,
            by_device: &mut self.by_device,
            lineage: &mut self.lineage,
            pending_frames: &mut self.frames,
            buf: Vec::new(),
            compact: super::compact::Tables::open(txn)?,
        })
    }

    /// Commits everything durably (fsync before returning, unless the store was opened
    /// without it, see [`super::Options::fsync`]).
    pub fn commit(mut self) -> Result<(), StoreError> {
        let injected = self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if injected {
            // Dropping the transaction rolls it back: nothing of it is written.
            self.txn.abort().map_err(db)?;
            return Err(StoreError::Db("injected commit failure".into()));
        }
        let frames = std::mem::take(&mut self.frames);
        let maxes = {
            let mut t = self.txn.open_table(FRAMES).map_err(db)?;
            frames.write(&mut t)?
        };
        for (id, max) in maxes {
            self.frames_max(&id, max)?;
        }
        if self.devices.values().any(|(_, changed)| *changed) {
            let mut t = self.txn.open_table(DEVICES).map_err(db)?;
            let mut buf = Vec::new();
            for (id, (record, _)) in self.devices.iter().filter(|(_, (_, c))| *c) {
                buf.clear();
                buf = postcard::to_extend(record, buf)
                    .map_err(|_| StoreError::Decode { table: "devices" })?;
                t.insert(id, buf.as_slice()).map_err(db)?;
            }
        }
        if !self.lineage.is_empty() {
            let mut t = self.txn.open_table(LINEAGE).map_err(db)?;
            self.lineage.write(&mut t)?;
        }
        if !self.by_device.is_empty() {
            let mut t = self.txn.open_table(LINEAGE_BY_DEVICE).map_err(db)?;
            let mut run = Vec::new();
            for (id, indices) in &self.by_device {
                let Some(first) = indices.first() else {
                    continue;
                };
                run.clear();
                for i in indices {
                    run.extend_from_slice(&i.to_be_bytes());
                }
                t.insert(&lineage_key(&DeviceId(*id), *first), run.as_slice())
                    .map_err(db)?;
            }
        }
        {
            let mut meta = self.txn.open_table(META).map_err(db)?;
            let mut head = Vec::with_capacity(40);
            head.extend_from_slice(&self.head.0.to_le_bytes());
            head.extend_from_slice(&self.head.1);
            meta.insert(K_LINEAGE_HEAD, head.as_slice()).map_err(db)?;
        }
        self.txn.commit().map_err(db)
    }
}

impl Txn {
    /// Sets the highest stored frame position in the device record of `id` (written
    /// with the other device records); no record, nothing to set.
    fn frames_max(&mut self, id: &[u8; 32], max: u32) -> Result<(), StoreError> {
        if !self.devices.contains_key(id) {
            let t = self.txn.open_table(DEVICES).map_err(db)?;
            let Some(record) = t
                .get(id)
                .map_err(db)?
                .map(|v| decode::<DeviceRecord>("devices", v.value()))
                .transpose()?
            else {
                return Ok(());
            };
            self.devices.insert(*id, (record, false));
        }
        if let Some((record, changed)) = self.devices.get_mut(id) {
            if record.frames_max != Some(max) {
                record.frames_max = Some(max);
                *changed = true;
            }
        }
        Ok(())
    }
}

impl Batch<'_> {
    /// A device record (sees this transaction's writes).
    pub fn device(&mut self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        Ok(self.cached(id)?.cloned())
    }

    /// The device record of `id` as this transaction sees it, decoded once and kept for
    /// the transaction.
    fn cached(&mut self, id: &DeviceId) -> Result<Option<&DeviceRecord>, StoreError> {
        if !self.cache.contains_key(&id.0) {
            let Some(record) = self
                .devices
                .get(&id.0)
                .map_err(db)?
                .map(|v| decode::<DeviceRecord>("devices", v.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            self.cache.insert(id.0, (record, false));
        }
        Ok(self.cache.get(&id.0).map(|(r, _)| r))
    }

    /// The committed (or batched) frame of `id` at `seq`.
    pub fn frame(&self, id: &DeviceId, seq: u32) -> Result<Option<FrameRecord>, StoreError> {
        if let Some(f) = self.pending_frames.get(id, seq)? {
            return Ok(Some(f));
        }
        super::frames::get(&self.frames, id, seq)
    }

    /// The establishment frames of `id` (inception, then rotations by epoch), this
    /// transaction's included.
    pub fn establishments(&self, id: &DeviceId) -> Result<Vec<Vec<u8>>, StoreError> {
        let lo = frame_key(id, 0);
        let hi = frame_key(id, u32::MAX);
        let mut out = Vec::new();
        for item in self
            .establishments
            .range::<&[u8; 36]>(&lo..=&hi)
            .map_err(db)?
        {
            let (_, v) = item.map_err(db)?;
            out.push(v.value().to_vec());
        }
        Ok(out)
    }

    /// Stores a device record (written at the commit, see the module docs).
    pub fn put_device(&mut self, id: &DeviceId, record: &DeviceRecord) -> Result<(), StoreError> {
        self.cache.insert(id.0, (record.clone(), true));
        Ok(())
    }

    /// `value` encoded into the batch's scratch buffer.
    fn encoded<T: serde::Serialize>(&mut self, value: &T) -> &[u8] {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        // Into a Vec it fails only on out-of-memory, which aborts anyway.
        self.buf = postcard::to_extend(value, buf).unwrap_or_default();
        &self.buf
    }

    /// Stores a frame (written at the commit, in the device's run for this transaction:
    /// see `frames`); keeps at least the device's last `retain` positions. Returns false
    /// (and stores nothing) when a frame is already stored at that position.
    pub fn put_frame(
        &mut self,
        id: &DeviceId,
        record: &FrameRef<'_>,
        retain: u32,
    ) -> Result<bool, StoreError> {
        let stored_max = if self.pending_frames.has(id) {
            None
        } else {
            self.stored_frames_max(id)?
        };
        let (here, maybe) = self.pending_frames.may_hold(id, record.seq);
        if here {
            return Ok(false);
        }
        let maybe = maybe || stored_max.is_some_and(|m| record.seq <= m);
        if maybe && super::frames::get(&self.frames, id, record.seq)?.is_some() {
            return Ok(false);
        }
        self.pending_frames
            .push(id, stored_max, record, retain, &mut self.buf);
        Ok(true)
    }

    /// The highest stored frame position of `id` as of the transaction's start (its
    /// record, read once: the record is kept for the transaction).
    fn stored_frames_max(&mut self, id: &DeviceId) -> Result<Option<u32>, StoreError> {
        Ok(self.cached(id)?.and_then(|r| r.frames_max))
    }

    pub fn put_establishment(
        &mut self,
        id: &DeviceId,
        epoch: u32,
        frame: &[u8],
    ) -> Result<(), StoreError> {
        self.establishments
            .insert(&frame_key(id, epoch), frame)
            .map_err(db)?;
        Ok(())
    }

    pub fn put_divergence(&mut self, id: &DeviceId, proof: &[u8]) -> Result<(), StoreError> {
        self.divergences.insert(&id.0, proof).map_err(db)?;
        Ok(())
    }

    /// Stores the attestations of transaction `group` still waiting for their decision
    /// (none: removes the entry).
    pub fn put_undecided(&mut self, group: u64, waiting: &[Undecided]) -> Result<(), StoreError> {
        if waiting.is_empty() {
            self.undecided.remove(group).map_err(db)?;
            return Ok(());
        }
        self.encoded(&waiting);
        self.undecided
            .insert(group, self.buf.as_slice())
            .map_err(db)?;
        Ok(())
    }

    pub fn remove_divergence(&mut self, id: &DeviceId) -> Result<(), StoreError> {
        self.divergences.remove(&id.0).map_err(db)?;
        Ok(())
    }

    /// Appends a lineage entry; returns its index.
    pub fn append(&mut self, time_ms: u64, entry: Entry) -> Result<u64, StoreError> {
        let index = self.head.0;
        let device = DeviceId(*entry.device());
        let record = Record {
            index,
            prev: self.head.1,
            time_ms,
            entry,
        };
        self.encoded(&record);
        let _ = self.lineage.push(index, &self.buf);
        self.by_device.entry(device.0).or_default().push(index);
        *self.head = (index + 1, lineage::digest(&self.buf));
        Ok(index)
    }
}
