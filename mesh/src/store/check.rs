//! `slope db check`: opens the database read-write (never creating it), runs redb's
//! integrity check, then decodes every record and re-verifies the lineage chain, and
//! reports each problem it finds instead of stopping at the first.

use std::path::Path;

use redb::{ReadableDatabase, ReadableTable};
use serde::Serialize;
use slope_proto::DeviceId;

use super::tables::*;
use super::{DeviceRecord, Store, StoreError, db};

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub what: String,
}

/// The report of a check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Check {
    pub devices: u64,
    pub frames: u64,
    pub lineage_records: u64,
    pub divergences: u64,
    /// Suite-2 frames read.
    pub compact_frames: u64,
    pub problems: Vec<Problem>,
}

impl Check {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
    fn problem(&mut self, what: impl Into<String>) {
        if self.problems.len() < 1000 {
            self.problems.push(Problem { what: what.into() });
        }
    }
}

pub(super) fn run(path: &Path) -> Check {
    let mut report = Check::default();
    let mut store = match Store::open_existing(path) {
        Ok(s) => s,
        Err(e) => {
            report.problem(e.to_string());
            return report;
        }
    };
    match store.db_mut().check_integrity() {
        Ok(true) => {}
        Ok(false) => report.problem("redb integrity check repaired the file (it was not cleanly closed or was damaged); re-run to confirm"),
        Err(e) => {
            report.problem(format!("redb integrity check failed: {e}"));
            return report;
        }
    }
    if let Err(e) = scan(&store, &mut report) {
        report.problem(e.to_string());
    }
    match store.verify_lineage() {
        Ok(Ok(n)) => report.lineage_records = n,
        Ok(Err(e)) => report.problem(format!("lineage: {e}")),
        Err(e) => report.problem(format!("lineage: {e}")),
    }
    report
}

fn scan(store: &Store, report: &mut Check) -> Result<(), StoreError> {
    let txn = store.db.begin_read().map_err(db)?;
    let devices = txn.open_table(DEVICES).map_err(db)?;
    let frames = txn.open_table(FRAMES).map_err(db)?;
    for item in devices.iter().map_err(db)? {
        let (k, v) = item.map_err(db)?;
        report.devices += 1;
        let id = DeviceId(*k.value());
        match postcard::from_bytes::<DeviceRecord>(v.value()) {
            Err(_) => report.problem(format!(
                "device {} record does not decode",
                hex::encode(id.0)
            )),
            Ok(r) => {
                if r.depth > 0 && super::frames::get(&frames, &id, r.head_seq)?.is_none() {
                    report.problem(format!(
                        "device {}: head frame {} is missing",
                        hex::encode(id.0),
                        r.head_seq
                    ));
                }
            }
        }
    }
    super::frames::scan(&frames, |id, seq, record| {
        report.frames += 1;
        let ok = record.is_some_and(|f| {
            f.seq == seq
                && slope_proto::Event::decode(&f.frame)
                    .map(|e| e.digest(&id).0 == f.digest)
                    .unwrap_or(false)
        });
        if !ok {
            report.problem(format!(
                "frame {} seq {seq}: does not decode, or its bytes do not match their digest",
                hex::encode(id.0)
            ));
        }
    })?;
    let div = txn.open_table(DIVERGENCES).map_err(db)?;
    for item in div.iter().map_err(db)? {
        let (k, v) = item.map_err(db)?;
        report.divergences += 1;
        match super::compact::proof_device(v.value()) {
            Some(d) if d.0 == *k.value() => {}
            _ => report.problem(format!(
                "divergence proof of {} does not verify",
                hex::encode(k.value())
            )),
        }
    }
    let (frames, problems) = super::compact::check(store)?;
    report.compact_frames = frames;
    for p in problems {
        report.problem(p);
    }
    Ok(())
}
