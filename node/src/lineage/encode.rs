//! Fast canonical encoding of the records the engine writes on every decision
//! (observation, weighting, decision, grant) and of batched receipts.
//!
//! The bytes are exactly postcard's (the tests compare the two on random records, and
//! [`super::verify()`] re-encodes every record with postcard and refuses any difference):
//! postcard is a concatenation of fields, integers are LEB128 varints, an enum is its
//! variant index as a varint, a sequence is its length then its elements, and a
//! `[u8; N]` is its N bytes. What this module changes is only how they are produced:
//! serde's generic path writes a 32-byte id or a 120-byte frame one byte at a time,
//! here it is one copy. Small nested values (evidence, weights, reasons) still go
//! through postcard, into the same buffer.
//!
//! Any other entry kind, or a buffer too small, returns `None`: the caller then uses
//! postcard itself.

use serde::Serialize;

use super::record::{Entry, ReceiptRef, Record};

/// A write position in a fixed buffer; every write fails (`None`) rather than overflow.
struct Cursor<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn raw(&mut self, b: &[u8]) -> Option<()> {
        let end = self.pos.checked_add(b.len())?;
        self.buf.get_mut(self.pos..end)?.copy_from_slice(b);
        self.pos = end;
        Some(())
    }

    fn varint(&mut self, mut v: u64) -> Option<()> {
        let mut tmp = [0u8; 10];
        let mut n = 0;
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                tmp[n] = byte;
                n += 1;
                break;
            }
            tmp[n] = byte | 0x80;
            n += 1;
        }
        self.raw(&tmp[..n])
    }

    /// A byte sequence: its length, then its bytes.
    fn seq(&mut self, b: &[u8]) -> Option<()> {
        self.varint(b.len() as u64)?;
        self.raw(b)
    }

    /// Any value, through postcard.
    fn value<T: Serialize + ?Sized>(&mut self, v: &T) -> Option<()> {
        let rest = self.buf.get_mut(self.pos..)?;
        let n = postcard::to_slice(v, rest).ok()?.len();
        self.pos += n;
        Some(())
    }
}

/// Variant indices of [`Entry`] (its declaration order, which postcard encodes).
mod variant {
    pub const OBSERVATION: u64 = 1;
    pub const WEIGHTING: u64 = 2;
    pub const DECISION: u64 = 3;
    pub const GRANT: u64 = 4;
    pub const RECEIPT_BATCH: u64 = crate::lineage::record::RECEIPT_BATCH_VARIANT;
}

/// Variant indices of [`ReceiptRef`].
mod receipt_ref {
    pub const FRAME: u64 = 0;
    pub const BATCH: u64 = 1;
}

/// Encodes `rec` into `buf` and returns its length; `None` when the entry is not one of
/// the per-decision kinds or `buf` is too small.
pub fn encode(rec: &Record<'_>, buf: &mut [u8]) -> Option<usize> {
    let mut c = Cursor { buf, pos: 0 };
    c.varint(rec.index)?;
    c.raw(&rec.prev.0)?;
    c.varint(rec.at)?;
    match &rec.entry {
        Entry::Observation(o) => {
            c.varint(variant::OBSERVATION)?;
            c.raw(&o.device.0)?;
            c.raw(&o.digest.0)?;
            c.seq(o.frame)?;
            c.value(&o.rx)?;
            c.varint(o.receipts.len() as u64)?;
            for r in &o.receipts {
                match r {
                    ReceiptRef::Frame(f) => {
                        c.varint(receipt_ref::FRAME)?;
                        c.seq(f)?;
                    }
                    ReceiptRef::Batch { record, entry } => {
                        c.varint(receipt_ref::BATCH)?;
                        c.varint(*record)?;
                        c.varint(u64::from(*entry))?;
                    }
                }
            }
        }
        Entry::Weighting {
            device,
            seq,
            evidence,
            weights,
        } => {
            c.varint(variant::WEIGHTING)?;
            c.raw(&device.0)?;
            c.varint(u64::from(*seq))?;
            c.value(evidence)?;
            c.value(weights)?;
        }
        Entry::Decision {
            device,
            seq,
            digest,
            admission,
            reasons,
        } => {
            c.varint(variant::DECISION)?;
            c.raw(&device.0)?;
            c.varint(u64::from(*seq))?;
            c.raw(&digest.0)?;
            c.value(admission)?;
            c.value(reasons)?;
        }
        Entry::Grant(g) => {
            c.varint(variant::GRANT)?;
            c.raw(&g.device.0)?;
            c.value(&(g.scope, g.monitored))?;
            c.varint(g.issued)?;
            c.varint(g.expires)?;
            c.varint(g.decision)?;
        }
        Entry::ReceiptBatch { frame } => {
            c.varint(variant::RECEIPT_BATCH)?;
            c.seq(frame)?;
        }
        _ => return None,
    }
    Some(c.pos)
}

/// Encodes what precedes the frame in a receipt-batch record of `frame_len` bytes of
/// frame: the record's head (index, prev, at, the variant index: what its digest covers
/// before the batch digest), then the frame's length. Returns the head's length and the
/// whole length written; `None` when `buf` is too small.
pub fn batch_head(
    index: u64,
    prev: &slope_proto::Digest,
    at: u64,
    frame_len: usize,
    buf: &mut [u8],
) -> Option<(usize, usize)> {
    let mut c = Cursor { buf, pos: 0 };
    c.varint(index)?;
    c.raw(&prev.0)?;
    c.varint(at)?;
    c.varint(variant::RECEIPT_BATCH)?;
    let head = c.pos;
    c.varint(u64::try_from(frame_len).ok()?)?;
    Some((head, c.pos))
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use proptest::prelude::*;
    use slope_proto::{DeviceId, Digest, Observation as Rx};

    use super::encode;
    use crate::lineage::record::{Entry, Observation, ReceiptRef, Record};
    use crate::trust::decision::{Admission, Quarantine, Reason, Refusal};
    use crate::trust::evidence::Evidence;
    use crate::trust::grant::{Grant, Scope};
    use crate::trust::quorum::Verdict;
    use crate::trust::weighting::Weights;

    fn check(rec: &Record<'_>) {
        let slow = postcard::to_extend(rec, Vec::new()).expect("postcard encodes");
        let mut buf = alloc::vec![0u8; 32_768];
        let n = encode(rec, &mut buf[..]).expect("fast path encodes");
        assert_eq!(&buf[..n], &slow[..]);
        // Too small a buffer fails instead of truncating.
        if n > 0 {
            assert_eq!(encode(rec, &mut buf[..n - 1]), None);
        }
    }

    fn evidence(x: u64, flag: bool) -> Evidence {
        let b = x as u8;
        Evidence {
            depth: x as u32,
            lost: (x >> 3) as u32,
            interval_ms: x.rotate_left(9),
            interval_dev_ms: x >> 40,
            age_ms: x.rotate_left(20),
            silent_ms: x >> 20,
            dormant: flag,
            dormancy_ms: x >> 7,
            dormancy_left: b,
            reboots: x as u16,
            boot_regression: flag.then_some((x as u16, (x >> 16) as u16)),
            head: !flag,
            quorum: Verdict {
                witnesses: b,
                zones: b / 2,
                groups: b / 3,
                satisfied: flag,
            },
            discounts: Default::default(),
            neighbours: b,
            established: b / 5,
            deviating: b / 7,
            magnitude_q4: (x >> 5) as u16,
            deviation: flag,
            severe: !flag,
            expectation: (!flag).then_some((slope_proto::WitnessId([b; 8]), x as u16)),
            mismatch: flag,
            behaviour_changes: (x >> 11) as u16,
            zone: crate::trust::zone::Zone((x >> 13) as u16),
            certified: !flag,
            profiled: b / 11,
        }
    }

    proptest! {
        #[test]
        fn same_bytes_as_postcard(
            index in any::<u64>(),
            at in any::<u64>(),
            x in any::<u64>(),
            flag in any::<bool>(),
            frame in proptest::collection::vec(any::<u8>(), 0..300),
            receipts in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..200), proptest::option::of((any::<u64>(), any::<u16>()))),
                0..=16),
            batch in proptest::collection::vec(any::<u8>(), 0..20_000),
        ) {
            let prev = Digest([(x >> 8) as u8; 32]);
            let device = DeviceId([x as u8; 32]);
            let digest = Digest([(x >> 16) as u8; 32]);
            let rx = Rx {
                rssi_dbm: x as i16,
                snr_qdb: (x >> 16) as i16,
                freq_hz: (x >> 32) as u32,
                foff_hz: flag.then_some(x as i32),
                sf: (x >> 56) as u8,
                time_ms: x.rotate_left(17),
            };
            let rs: heapless::Vec<ReceiptRef<'_>, 16> = receipts
                .iter()
                .map(|(f, r)| match r {
                    None => ReceiptRef::Frame(f),
                    Some((record, entry)) => ReceiptRef::Batch { record: *record, entry: *entry },
                })
                .collect();
            let mut reasons = heapless::Vec::new();
            let _ = reasons.push(Reason::Score { total: x as u16, full: 600, refuse: 100 });
            if flag {
                let _ = reasons.push(Reason::Diverged { seq: x as u32 });
            }
            let admission = match x % 5 {
                0 => Admission::Full,
                1 => Admission::Restricted,
                2 => Admission::Deferred,
                3 => Admission::Refused(Refusal::Capacity),
                _ => Admission::Quarantined(Quarantine { proof: digest, record: x }),
            };
            let entries = [
                Entry::Observation(Observation { device, digest, frame: &frame, rx, receipts: rs }),
                Entry::Weighting {
                    device,
                    seq: x as u32,
                    evidence: evidence(x, flag),
                    weights: Weights { continuity: x as u16, corroboration: 3, context: 1000, authority: 0, total: 999 },
                },
                Entry::Decision { device, seq: (x >> 7) as u32, digest, admission, reasons },
                Entry::Grant(Grant {
                    device,
                    scope: if flag { Scope::Full } else { Scope::Restricted },
                    monitored: !flag,
                    issued: at,
                    expires: x,
                    decision: index,
                }),
            ];
            for entry in entries {
                check(&Record { index, prev, at, entry });
            }
            let rec = Record { index, prev, at, entry: Entry::ReceiptBatch { frame: &batch } };
            check(&rec);
            let whole = postcard::to_extend(&rec, Vec::new()).expect("postcard encodes");
            let mut buf = [0u8; 64];
            let (_, n) = super::batch_head(index, &prev, at, batch.len(), &mut buf).expect("fits");
            prop_assert_eq!(&buf[..n], &whole[..whole.len() - batch.len()]);
        }
    }
}
