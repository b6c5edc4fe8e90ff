//! Frames stored in runs: the frames of one device that one write transaction stores
//! go into ONE value, keyed by the device and the run's lowest position, instead of one
//! B-tree entry each. A group commit that hears a device five times inserts one run, not
//! five frames (each insert was a leaf rebuilt, and often split: a quarter of the commit
//! thread); a transaction that hears the device once inserts a run of one, as before.
//!
//! Invariant: the runs of a device do not overlap (each run's positions lie above the
//! previous run's), so the one run that can hold position `seq` is the last one keyed at
//! or below it. A transaction storing frames below positions already stored (rare: the
//! device record's `frames_max` tells) merges the runs they fall between.
//!
//! Retention: a device keeps at least its last `retain` positions (the node's
//! `ingest.frames_per_device`); a run is pruned whole, once all its positions are older.
//!
//! A run's bytes: entries in ascending position, each `seq` (u32 little-endian), `len`
//! (u32 little-endian), then `len` bytes of the postcard [`FrameRecord`].

use std::collections::HashMap;

use redb::{ReadableTable, Table};
use slope_proto::DeviceId;

use super::tables::frame_key;
use super::{FrameRecord, FrameRef, StoreError, db, decode};

const TABLE: &str = "frame_runs";

/// The entries of a run: (position, record bytes); `None` where the run is cut short.
pub(super) fn entries(mut run: &[u8]) -> impl Iterator<Item = Option<(u32, &[u8])>> {
    std::iter::from_fn(move || {
        if run.is_empty() {
            return None;
        }
        let head = run.get(..8).map(|h| {
            let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
            (word(0), word(4) as usize)
        });
        let entry = head.and_then(|(seq, len)| Some((seq, run.get(8..8usize.checked_add(len)?)?)));
        Some(match entry {
            Some((seq, bytes)) => {
                run = run.get(8 + bytes.len()..).unwrap_or_default();
                Some((seq, bytes))
            }
            None => {
                run = &[];
                None
            }
        })
    })
}

fn push_entry(out: &mut Vec<u8>, seq: u32, record: &[u8]) {
    out.extend_from_slice(&seq.to_le_bytes());
    // Frame records are bounded far below 4 GiB (frame and observation bounds).
    out.extend_from_slice(&(record.len() as u32).to_le_bytes());
    out.extend_from_slice(record);
}

/// The highest position of a run (`None`: empty or cut short).
fn last_seq(run: &[u8]) -> Option<u32> {
    let mut last = None;
    for e in entries(run) {
        last = Some(e?.0);
    }
    last
}

/// The stored frame of `id` at `seq`.
pub(super) fn get(
    t: &impl ReadableTable<&'static [u8; 36], &'static [u8]>,
    id: &DeviceId,
    seq: u32,
) -> Result<Option<FrameRecord>, StoreError> {
    let lo = frame_key(id, 0);
    let hi = frame_key(id, seq);
    let Some(item) = t.range::<&[u8; 36]>(&lo..=&hi).map_err(db)?.next_back() else {
        return Ok(None);
    };
    let (_, v) = item.map_err(db)?;
    for e in entries(v.value()) {
        let (s, bytes) = e.ok_or(StoreError::Decode { table: TABLE })?;
        if s == seq {
            return decode(TABLE, bytes).map(Some);
        }
        if s > seq {
            break;
        }
    }
    Ok(None)
}

/// Stored frames of `id` with a position of at least `from`, ascending, at most `limit`.
pub(super) fn from(
    t: &impl ReadableTable<&'static [u8; 36], &'static [u8]>,
    id: &DeviceId,
    from: u32,
    limit: usize,
) -> Result<Vec<FrameRecord>, StoreError> {
    let lo = frame_key(id, 0);
    let hi = frame_key(id, u32::MAX);
    // The run that may hold `from` starts at or below it.
    let start = match t
        .range::<&[u8; 36]>(&lo..=&frame_key(id, from))
        .map_err(db)?
        .next_back()
    {
        Some(item) => *item.map_err(db)?.0.value(),
        None => frame_key(id, from),
    };
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    for item in t.range::<&[u8; 36]>(&start..=&hi).map_err(db)? {
        let (_, v) = item.map_err(db)?;
        for e in entries(v.value()) {
            let (s, bytes) = e.ok_or(StoreError::Decode { table: TABLE })?;
            if s >= from {
                out.push(decode(TABLE, bytes)?);
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

/// The last `n` stored frames of `id`, ascending.
pub(super) fn recent(
    t: &impl ReadableTable<&'static [u8; 36], &'static [u8]>,
    id: &DeviceId,
    n: usize,
) -> Result<Vec<FrameRecord>, StoreError> {
    let lo = frame_key(id, 0);
    let hi = frame_key(id, u32::MAX);
    let mut out = Vec::new();
    if n == 0 {
        return Ok(out);
    }
    'runs: for item in t.range::<&[u8; 36]>(&lo..=&hi).map_err(db)?.rev() {
        let (_, v) = item.map_err(db)?;
        let run: Vec<(u32, &[u8])> = entries(v.value())
            .collect::<Option<_>>()
            .ok_or(StoreError::Decode { table: TABLE })?;
        for (_, bytes) in run.into_iter().rev() {
            out.push(decode(TABLE, bytes)?);
            if out.len() >= n {
                break 'runs;
            }
        }
    }
    out.reverse();
    Ok(out)
}

/// Every stored frame in key order, with its device, for `slope db check`: `visit` gets
/// the device, the position and the decoded record (or `None` where it does not decode).
pub(super) fn scan(
    t: &impl ReadableTable<&'static [u8; 36], &'static [u8]>,
    mut visit: impl FnMut(DeviceId, u32, Option<FrameRecord>),
) -> Result<(), StoreError> {
    for item in t.iter().map_err(db)? {
        let (k, v) = item.map_err(db)?;
        let mut id = [0u8; 32];
        id.copy_from_slice(&k.value()[..32]);
        let first =
            u32::from_be_bytes([k.value()[32], k.value()[33], k.value()[34], k.value()[35]]);
        for e in entries(v.value()) {
            match e {
                Some((seq, bytes)) => {
                    visit(DeviceId(id), seq, postcard::from_bytes(bytes).ok());
                }
                None => {
                    visit(DeviceId(id), first, None);
                    break;
                }
            }
        }
    }
    Ok(())
}

/// One device's frames stored by the current transaction, not yet written.
#[derive(Debug)]
struct Run {
    /// The highest position stored before this transaction (from the device record).
    stored_max: Option<u32>,
    /// Positions kept at least ([`super::Batch::put_frame`]'s `retain`).
    retain: u32,
    /// Positions in `bytes`, in the order stored.
    seqs: Vec<u32>,
    /// Entries in the run format, in the order stored.
    bytes: Vec<u8>,
}

/// The frames a transaction stores, by device, written at its commit.
#[derive(Debug, Default)]
pub(super) struct Pending {
    runs: HashMap<[u8; 32], Run>,
}

impl Pending {
    /// Whether this transaction has started a run for `id`; its `stored_max` otherwise
    /// must be given to [`Self::push`].
    pub fn has(&self, id: &DeviceId) -> bool {
        self.runs.contains_key(&id.0)
    }

    /// The frame of `id` at `seq` stored by this transaction.
    pub fn get(&self, id: &DeviceId, seq: u32) -> Result<Option<FrameRecord>, StoreError> {
        let Some(run) = self.runs.get(&id.0) else {
            return Ok(None);
        };
        for e in entries(&run.bytes) {
            let (s, bytes) = e.ok_or(StoreError::Decode { table: TABLE })?;
            if s == seq {
                return decode(TABLE, bytes).map(Some);
            }
        }
        Ok(None)
    }

    /// Whether position `seq` of `id` may be stored already (by this transaction, or
    /// before it at or below the device's highest stored position).
    pub fn may_hold(&self, id: &DeviceId, seq: u32) -> (bool, bool) {
        match self.runs.get(&id.0) {
            Some(run) => (
                run.seqs.contains(&seq),
                run.stored_max.is_some_and(|m| seq <= m),
            ),
            None => (false, false),
        }
    }

    /// Adds a frame (the caller checked that its position is not stored); `stored_max`
    /// is used when this is the device's first frame in the transaction.
    pub fn push(
        &mut self,
        id: &DeviceId,
        stored_max: Option<u32>,
        record: &FrameRef<'_>,
        retain: u32,
        scratch: &mut Vec<u8>,
    ) {
        let run = self.runs.entry(id.0).or_insert_with(|| Run {
            stored_max,
            retain,
            seqs: Vec::with_capacity(8),
            bytes: Vec::with_capacity(8 * 256),
        });
        run.retain = retain;
        scratch.clear();
        record.encode_into(scratch);
        push_entry(&mut run.bytes, record.seq, scratch);
        run.seqs.push(record.seq);
    }

    /// Writes the runs into `t`, prunes what fell out of each device's retention, and
    /// returns each device's new highest stored position (for its record).
    pub fn write(
        self,
        t: &mut Table<'_, &'static [u8; 36], &'static [u8]>,
    ) -> Result<Vec<([u8; 32], u32)>, StoreError> {
        let mut maxes = Vec::with_capacity(self.runs.len());
        for (id, run) in self.runs {
            let Some(max) = write_run(t, &DeviceId(id), run)? else {
                continue;
            };
            maxes.push((id, max));
        }
        Ok(maxes)
    }
}

/// Writes one device's run (see [`Pending::write`]); its new highest position.
fn write_run(
    t: &mut Table<'_, &'static [u8; 36], &'static [u8]>,
    id: &DeviceId,
    run: Run,
) -> Result<Option<u32>, StoreError> {
    let (Some(&first), Some(&last)) = (run.seqs.iter().min(), run.seqs.iter().max()) else {
        return Ok(None);
    };
    let sorted = run.seqs.is_sorted();
    let below = run.stored_max.is_some_and(|m| first <= m);
    if sorted && !below {
        // The usual case: new positions above everything stored.
        t.insert(&frame_key(id, first), run.bytes.as_slice())
            .map_err(db)?;
    } else {
        merge(t, id, &run, first, last)?;
    }
    let max = run.stored_max.map_or(last, |m| m.max(last));
    prune(t, id, max, run.retain)?;
    Ok(Some(max))
}

/// Writes `run` merged with the stored runs whose positions it falls between (keeps the
/// runs of a device disjoint).
fn merge(
    t: &mut Table<'_, &'static [u8; 36], &'static [u8]>,
    id: &DeviceId,
    run: &Run,
    first: u32,
    last: u32,
) -> Result<(), StoreError> {
    let lo = frame_key(id, 0);
    let mut taken: Vec<([u8; 36], Vec<u8>)> = Vec::new();
    for item in t
        .range::<&[u8; 36]>(&lo..=&frame_key(id, last))
        .map_err(db)?
        .rev()
    {
        let (k, v) = item.map_err(db)?;
        let reaches = last_seq(v.value()).ok_or(StoreError::Decode { table: TABLE })?;
        if reaches < first {
            break;
        }
        taken.push((*k.value(), v.value().to_vec()));
    }
    let mut all: Vec<(u32, Vec<u8>)> = Vec::new();
    for (_, bytes) in &taken {
        for e in entries(bytes) {
            let (s, b) = e.ok_or(StoreError::Decode { table: TABLE })?;
            all.push((s, b.to_vec()));
        }
    }
    for e in entries(&run.bytes) {
        let (s, b) = e.ok_or(StoreError::Decode { table: TABLE })?;
        // A position stored twice cannot happen (the caller checked); keep the stored one.
        if !all.iter().any(|(x, _)| *x == s) {
            all.push((s, b.to_vec()));
        }
    }
    all.sort_by_key(|(s, _)| *s);
    for (k, _) in &taken {
        t.remove(k).map_err(db)?;
    }
    let mut bytes = Vec::new();
    for (s, b) in &all {
        push_entry(&mut bytes, *s, b);
    }
    if let Some((lowest, _)) = all.first() {
        t.insert(&frame_key(id, *lowest), bytes.as_slice())
            .map_err(db)?;
    }
    Ok(())
}

/// Removes the runs of `id` whose positions all lie below the last `retain` ones up to
/// `max`.
fn prune(
    t: &mut Table<'_, &'static [u8; 36], &'static [u8]>,
    id: &DeviceId,
    max: u32,
    retain: u32,
) -> Result<(), StoreError> {
    // Positions kept: cut ..= max.
    let Some(cut) = (max + 1).checked_sub(retain.max(1)).filter(|c| *c > 0) else {
        return Ok(());
    };
    let mut gone = Vec::new();
    for item in t
        .range::<&[u8; 36]>(&frame_key(id, 0)..&frame_key(id, cut))
        .map_err(db)?
    {
        let (k, v) = item.map_err(db)?;
        match last_seq(v.value()) {
            Some(l) if l < cut => gone.push(*k.value()),
            _ => break,
        }
    }
    for k in &gone {
        t.remove(k).map_err(db)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use slope_proto::Observation;

    use crate::lineage::Source;

    fn frame(seq: u32) -> (Vec<u8>, [u8; 32]) {
        (vec![seq as u8; 3 + (seq as usize % 5)], [seq as u8; 32])
    }

    fn store(
        txns: &[Vec<u32>],
        retain: u32,
    ) -> (tempfile::TempDir, std::sync::Arc<crate::store::Store>) {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::store::Store::open_with(
            &dir.path().join("s.redb"),
            crate::store::Options { fsync: false },
        )
        .unwrap();
        let id = DeviceId([9; 32]);
        let rx = Observation::relayed(0);
        for seqs in txns {
            let mut txn = s.begin().unwrap();
            {
                let mut b = txn.batch().unwrap();
                if b.device(&id).unwrap().is_none() {
                    b.put_device(&id, &crate::store::DeviceRecord::new(0, 0))
                        .unwrap();
                }
                for &seq in seqs {
                    let (f, d) = frame(seq);
                    let r = FrameRef {
                        seq,
                        digest: &d,
                        frame: &f,
                        rx: &rx,
                        source: Source::Radio,
                    };
                    let _ = b.put_frame(&id, &r, retain).unwrap();
                }
            }
            txn.commit().unwrap();
        }
        (dir, std::sync::Arc::new(s))
    }

    proptest! {
        /// Whatever positions arrive in whatever transactions (in order, out of order,
        /// repeated): every position stored once, found by `frame`, listed in order by
        /// `frames` and `recent_frames`, and the first copy of a position is the one kept;
        /// with retention, at least the last `retain` positions stay.
        #[test]
        fn runs_store_each_position_once(
            txns in proptest::collection::vec(proptest::collection::vec(0u32..60, 0..8), 1..12),
            retain in prop_oneof![Just(1000u32), 1u32..20],
        ) {
            let (_dir, s) = store(&txns, retain);
            let id = DeviceId([9; 32]);
            let mut held: std::collections::BTreeSet<u32> = Default::default();
            for seqs in &txns {
                held.extend(seqs.iter().copied());
            }
            let max = held.iter().max().copied();
            let listed: Vec<u32> = s.frames(&id, None, usize::MAX).unwrap().iter().map(|f| f.seq).collect();
            let mut sorted = listed.clone();
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert_eq!(&listed, &sorted, "ascending, no repeats");
            for seq in &listed {
                prop_assert!(held.contains(seq));
                let f = s.frame(&id, *seq).unwrap().unwrap();
                prop_assert_eq!(f.seq, *seq);
                prop_assert_eq!(f.frame, frame(*seq).0);
            }
            if let Some(max) = max {
                let keep = max.saturating_add(1).saturating_sub(retain);
                for seq in held.iter().filter(|s| **s >= keep) {
                    prop_assert!(listed.contains(seq), "position {} lost", seq);
                }
                if retain >= 1000 {
                    prop_assert_eq!(listed.len(), held.len());
                }
                let recent: Vec<u32> = s.recent_frames(&id, 3).unwrap().iter().map(|f| f.seq).collect();
                let tail: Vec<u32> = listed.iter().rev().take(3).rev().copied().collect();
                prop_assert_eq!(recent, tail);
                for after in [None, Some(0), Some(max / 2), Some(max)] {
                    let got: Vec<u32> = s.frames(&id, after, 4).unwrap().iter().map(|f| f.seq).collect();
                    let want: Vec<u32> = listed.iter().copied().filter(|q| after.is_none_or(|a| *q > a)).take(4).collect();
                    prop_assert_eq!(got, want);
                }
            }
            prop_assert!(s.frame(&id, 61).unwrap().is_none());
            prop_assert_eq!(s.device(&id).unwrap().unwrap().frames_max, max);
        }
    }
}
