//! Suite 2 (compact frames, docs/compact-suite.md) in the store: what the compact
//! verifier needs to be rebuilt after a restart, and what the API shows.
//!
//! - `compact_anchors`: device id ‖ suite-1 epoch → the signed anchor frame.
//! - `compact_frames`: device id ‖ interval ‖ frame digest → [`CompactFrame`] (the
//!   frame, the receive time the security condition was checked with, and the peer's
//!   timestamp receipt when that time came from it). Bounded per device
//!   ([`KEEP_FRAMES`], oldest dropped first; renewals and the frames that disclose
//!   their keys are kept, [`KEEP_RENEWALS`] at most) so that a replay in interval order
//!   rebuilds the chains, the last known keys and the frames still waiting for theirs.
//! - `compact_devices`: device id → [`CompactRecord`] (schedule, position, counters).
//!
//! Written in the pipeline's transaction ([`super::Batch`]), so a compact frame is
//! durable before the gateway signs a receipt for it.

use redb::{ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use slope_proto::{DeviceId, Observation};

use super::{Batch, Store, StoreError, db, decode, encode};
use crate::lineage::Source;

/// device id ‖ epoch (big endian) → signed anchor frame.
const ANCHORS: TableDefinition<&[u8; 36], &[u8]> = TableDefinition::new("compact_anchors");
/// device id ‖ interval (big endian) ‖ frame digest → postcard [`CompactFrame`].
const FRAMES: TableDefinition<&[u8; 68], &[u8]> = TableDefinition::new("compact_frames");
/// device id → postcard [`CompactRecord`].
const DEVICES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("compact_devices");

/// Compact frames kept per device (twice the verifier's buffer of 32 frames waiting for
/// their keys, so a restart loses none of them).
pub const KEEP_FRAMES: usize = 64;
/// Renewal frames kept per device (the verifier tracks three chains).
pub const KEEP_RENEWALS: usize = 3;

/// One stored compact frame (an attestation or a renewal the verifier accepted for
/// checking).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactFrame {
    pub interval: u32,
    /// The receive time the security condition was checked with (Unix ms).
    pub rx_ms: u64,
    pub frame: Vec<u8>,
    /// The peer's timestamp receipt, when `rx_ms` is its time; `None` when it is this
    /// gateway's own (its receipt is re-signed from `rx_ms` when a proof needs it).
    pub receipt: Option<Vec<u8>>,
    pub rx: Observation,
    pub source: Source,
    pub renewal: bool,
}

/// A device's compact chain as this gateway knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CompactRecord {
    /// Suite-1 epoch of the anchor's signing key.
    pub epoch: u32,
    /// First interval and length of the anchored chain.
    pub first: u32,
    pub len: u32,
    pub start_ms: u64,
    pub interval_ms: u32,
    pub delay: u8,
    /// Highest authenticated interval.
    pub head_interval: Option<u32>,
    /// Frames accepted for checking, authenticated, and failed (bad MAC).
    pub frames: u64,
    pub authenticated: u64,
    pub bad_mac: u64,
    /// The last verified renewal: (first interval, length) of the next chain.
    pub renewed: Option<(u32, u32)>,
}

fn key36(id: &DeviceId, n: u32) -> [u8; 36] {
    let mut k = [0u8; 36];
    k[..32].copy_from_slice(&id.0);
    k[32..].copy_from_slice(&n.to_be_bytes());
    k
}

fn key68(id: &DeviceId, interval: u32, digest: &[u8; 32]) -> [u8; 68] {
    let mut k = [0u8; 68];
    k[..32].copy_from_slice(&id.0);
    k[32..36].copy_from_slice(&interval.to_be_bytes());
    k[36..].copy_from_slice(digest);
    k
}

fn range68(id: &DeviceId) -> ([u8; 68], [u8; 68]) {
    (key68(id, 0, &[0; 32]), key68(id, u32::MAX, &[0xff; 32]))
}

/// Creates the tables (called when the store is opened).
pub(super) fn create(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(ANCHORS).map_err(db)?;
    txn.open_table(FRAMES).map_err(db)?;
    txn.open_table(DEVICES).map_err(db)?;
    Ok(())
}

/// The compact tables of one write transaction (opened with the [`Batch`]).
pub struct Tables<'t> {
    anchors: Table<'t, &'static [u8; 36], &'static [u8]>,
    frames: Table<'t, &'static [u8; 68], &'static [u8]>,
    devices: Table<'t, &'static [u8; 32], &'static [u8]>,
}

impl<'t> Tables<'t> {
    pub(super) fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            anchors: txn.open_table(ANCHORS).map_err(db)?,
            frames: txn.open_table(FRAMES).map_err(db)?,
            devices: txn.open_table(DEVICES).map_err(db)?,
        })
    }
}

impl Batch<'_> {
    /// Stores an anchor; false when the same bytes were stored already.
    pub fn put_compact_anchor(
        &mut self,
        id: &DeviceId,
        epoch: u32,
        frame: &[u8],
    ) -> Result<bool, StoreError> {
        let t = &mut self.compact.anchors;
        let key = key36(id, epoch);
        if t.get(&key).map_err(db)?.is_some_and(|v| v.value() == frame) {
            return Ok(false);
        }
        t.insert(&key, frame).map_err(db)?;
        Ok(true)
    }

    /// The anchor of `id` signed in `epoch`.
    pub fn compact_anchor(&self, id: &DeviceId, epoch: u32) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .compact
            .anchors
            .get(&key36(id, epoch))
            .map_err(db)?
            .map(|v| v.value().to_vec()))
    }

    pub fn compact_device(&self, id: &DeviceId) -> Result<Option<CompactRecord>, StoreError> {
        match self.compact.devices.get(&id.0).map_err(db)? {
            Some(v) => Ok(Some(decode("compact_devices", v.value())?)),
            None => Ok(None),
        }
    }

    pub fn put_compact_device(
        &mut self,
        id: &DeviceId,
        record: &CompactRecord,
    ) -> Result<(), StoreError> {
        self.compact
            .devices
            .insert(&id.0, encode(record).as_slice())
            .map_err(db)?;
        Ok(())
    }

    /// The stored frame of `id` at `interval` with frame digest `digest`.
    pub fn compact_frame(
        &self,
        id: &DeviceId,
        interval: u32,
        digest: &[u8; 32],
    ) -> Result<Option<CompactFrame>, StoreError> {
        match self
            .compact
            .frames
            .get(&key68(id, interval, digest))
            .map_err(db)?
        {
            Some(v) => Ok(Some(decode("compact_frames", v.value())?)),
            None => Ok(None),
        }
    }

    /// Stores a compact frame (keyed by its digest, so two receptions of one frame are
    /// one record) and prunes the device's frames to [`KEEP_FRAMES`]. Returns false when
    /// it was stored already.
    pub fn put_compact_frame(
        &mut self,
        id: &DeviceId,
        digest: &[u8; 32],
        f: &CompactFrame,
    ) -> Result<bool, StoreError> {
        let key = key68(id, f.interval, digest);
        let t = &mut self.compact.frames;
        if t.get(&key).map_err(db)?.is_some() {
            return Ok(false);
        }
        t.insert(&key, encode(f).as_slice()).map_err(db)?;
        let (lo, hi) = range68(id);
        let mut held: Vec<([u8; 68], u32, bool)> = Vec::new();
        for item in t.range::<&[u8; 68]>(&lo..=&hi).map_err(db)? {
            let (k, v) = item.map_err(db)?;
            let r: CompactFrame = decode("compact_frames", v.value())?;
            held.push((*k.value(), r.interval, r.renewal));
        }
        let delay = self.compact_device(id)?.map_or(DELAY_KEPT, |r| r.delay);
        let t = &mut self.compact.frames;
        for k in prunable(&held, usize::from(delay)) {
            t.remove(&k).map_err(db)?;
        }
        Ok(true)
    }
}

/// The disclosure delay assumed for a device without a record (the largest a schedule
/// may have).
const DELAY_KEPT: u8 = slope_proto::compact::params::MAX_DELAY;

/// Which of a device's frames (key, interval, is a renewal; ascending) to drop so that
/// at most [`KEEP_FRAMES`] remain: oldest first, except the last [`KEEP_RENEWALS`]
/// renewals and, after each, the first frame at least `delay` intervals later (the one
/// that discloses the renewal's key), without which a replay could not verify it.
fn prunable(held: &[([u8; 68], u32, bool)], delay: usize) -> Vec<[u8; 68]> {
    if held.len() <= KEEP_FRAMES {
        return Vec::new();
    }
    let renewals: Vec<u32> = held.iter().filter(|h| h.2).map(|h| h.1).collect();
    let kept_renewals = &renewals[renewals.len().saturating_sub(KEEP_RENEWALS)..];
    let mut pinned = vec![false; held.len()];
    for r in kept_renewals {
        for (i, h) in held.iter().enumerate() {
            if h.2 && h.1 == *r {
                pinned[i] = true;
            }
        }
        let discloser = held
            .iter()
            .position(|h| !h.2 && u64::from(h.1) >= u64::from(*r) + delay as u64);
        if let Some(i) = discloser {
            pinned[i] = true;
        }
    }
    let mut excess = held.len() - KEEP_FRAMES;
    let mut out = Vec::new();
    for (h, pinned) in held.iter().zip(pinned) {
        if excess == 0 {
            break;
        }
        if !pinned {
            out.push(h.0);
            excess -= 1;
        }
    }
    out
}

impl Store {
    /// A device's compact record.
    pub fn compact_device(&self, id: &DeviceId) -> Result<Option<CompactRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(DEVICES).map_err(db)?;
        match t.get(&id.0).map_err(db)? {
            Some(v) => Ok(Some(decode("compact_devices", v.value())?)),
            None => Ok(None),
        }
    }

    /// A device's anchors, by epoch.
    pub fn compact_anchors(&self, id: &DeviceId) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(ANCHORS).map_err(db)?;
        let mut out = Vec::new();
        for item in t
            .range::<&[u8; 36]>(&key36(id, 0)..=&key36(id, u32::MAX))
            .map_err(db)?
        {
            out.push(item.map_err(db)?.1.value().to_vec());
        }
        Ok(out)
    }

    /// A device's stored compact frames, in interval order.
    pub fn compact_frames(&self, id: &DeviceId) -> Result<Vec<CompactFrame>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(FRAMES).map_err(db)?;
        let (lo, hi) = range68(id);
        let mut out = Vec::new();
        for item in t.range::<&[u8; 68]>(&lo..=&hi).map_err(db)? {
            out.push(decode("compact_frames", item.map_err(db)?.1.value())?);
        }
        Ok(out)
    }
}

/// The device a stored divergence proof proves, checked with no other state: suite 2
/// (`01 02 04 …`, under the verifier's clock bound) or suite 1.
pub(super) fn proof_device(bytes: &[u8]) -> Option<DeviceId> {
    if bytes.get(1) == Some(&slope_proto::compact::SUITE) {
        let skew = slope_node::verifier::compact::Config::default().max_skew_ms;
        slope_node::compact::verify_proof(bytes, skew)
            .ok()
            .map(|d| d.device)
    } else {
        slope_node::verifier::verify_divergence_proof(bytes)
            .ok()
            .map(|d| d.device)
    }
}

/// `slope db check` of the suite-2 tables: every anchor decodes, every compact record
/// decodes, every compact frame decodes and its bytes match the digest and interval in
/// its key. Returns the frames read and the problems found.
pub(super) fn check(store: &Store) -> Result<(u64, Vec<String>), StoreError> {
    let txn = store.db.begin_read().map_err(db)?;
    let mut problems = Vec::new();
    for item in txn.open_table(ANCHORS).map_err(db)?.iter().map_err(db)? {
        let (k, v) = item.map_err(db)?;
        if slope_proto::compact::SignedAnchor::decode(v.value()).is_err() {
            problems.push(format!(
                "compact anchor {} does not decode",
                hex::encode(k.value())
            ));
        }
    }
    for item in txn.open_table(DEVICES).map_err(db)?.iter().map_err(db)? {
        let (k, v) = item.map_err(db)?;
        if postcard::from_bytes::<CompactRecord>(v.value()).is_err() {
            problems.push(format!(
                "compact record of {} does not decode",
                hex::encode(k.value())
            ));
        }
    }
    let mut frames = 0;
    for item in txn.open_table(FRAMES).map_err(db)?.iter().map_err(db)? {
        let (k, v) = item.map_err(db)?;
        frames += 1;
        let key = k.value();
        let ok = postcard::from_bytes::<CompactFrame>(v.value()).is_ok_and(|f| {
            key[32..36] == f.interval.to_be_bytes()
                && key[36..] == slope_proto::compact::crypto::frame_digest(&f.frame)
        });
        if !ok {
            problems.push(format!(
                "compact frame {}: does not decode or does not match its key",
                hex::encode(key)
            ));
        }
    }
    Ok((frames, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(spec: &[(u32, bool)]) -> Vec<([u8; 68], u32, bool)> {
        let id = DeviceId([1; 32]);
        spec.iter()
            .map(|(i, r)| (key68(&id, *i, &[0; 32]), *i, *r))
            .collect()
    }

    #[test]
    fn prunes_oldest_down_to_the_bound() {
        let spec: Vec<(u32, bool)> = (1..=(KEEP_FRAMES as u32 + 5)).map(|i| (i, false)).collect();
        let h = held(&spec);
        let out = prunable(&h, 2);
        assert_eq!(out.len(), 5);
        assert_eq!(out, h[..5].iter().map(|x| x.0).collect::<Vec<_>>());
    }

    #[test]
    fn keeps_renewals_and_their_disclosing_frame() {
        let mut spec: Vec<(u32, bool)> = vec![(1, false), (2, true), (3, false), (4, false)];
        spec.extend((5..=(KEEP_FRAMES as u32 + 10)).map(|i| (i, false)));
        let h = held(&spec);
        let out = prunable(&h, 2);
        assert_eq!(h.len() - out.len(), KEEP_FRAMES);
        assert!(!out.contains(&h[1].0), "renewal kept");
        assert!(
            !out.contains(&h[3].0),
            "frame at interval 4 discloses K(2): kept"
        );
        assert!(out.contains(&h[0].0));
        assert!(out.contains(&h[2].0));
    }

    #[test]
    fn nothing_pruned_under_the_bound() {
        let spec: Vec<(u32, bool)> = (1..=10).map(|i| (i, i == 3)).collect();
        assert!(prunable(&held(&spec), 2).is_empty());
    }
}
