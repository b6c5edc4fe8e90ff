//! What the store keeps per device and per frame (postcard-encoded values).

use serde::{Deserialize, Serialize};
use slope_proto::Observation;

use crate::lineage::Source;
use crate::trust::{Admission, Grant, Reasons, Scope};

/// Distinct witnesses remembered per device; beyond it the least-seen is replaced.
pub const MAX_WITNESSES: usize = 16;

/// Positions below a witness's highest one that are still told apart from replays
/// (see [`WitnessStat::mark`]).
pub const WITNESS_WINDOW: u32 = 64;

/// A gateway that witnessed the device on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessStat {
    pub witness: [u8; 8],
    /// Distinct positions counted for this witness.
    pub count: u32,
    pub last_rssi: i16,
    /// Highest position counted for this witness.
    pub last_seq: u32,
    /// Bit `i` set: position `last_seq - i` has been counted (`i` < [`WITNESS_WINDOW`]).
    pub seen: u64,
}

impl WitnessStat {
    fn new(witness: [u8; 8], rssi: i16, seq: u32) -> Self {
        Self {
            witness,
            count: 1,
            last_rssi: rssi,
            last_seq: seq,
            seen: 1,
        }
    }

    /// Marks position `seq` as witnessed; false when it was marked already, or when it
    /// lies [`WITNESS_WINDOW`] or more positions below the highest one (too old to tell
    /// from a replay: such a receipt counts nothing and is not recorded again).
    pub fn mark(&mut self, seq: u32) -> bool {
        if seq > self.last_seq {
            let shift = seq - self.last_seq;
            self.seen = if shift >= WITNESS_WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.last_seq = seq;
            return true;
        }
        let back = self.last_seq - seq;
        if back >= WITNESS_WINDOW {
            return false;
        }
        let bit = 1u64 << back;
        let fresh = self.seen & bit == 0;
        self.seen |= bit;
        fresh
    }
}

/// Running RSSI/SNR statistics of a device as this gateway's radio hears it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RfProfile {
    pub count: u32,
    pub mean_rssi: f32,
    pub mean_snr_db: f32,
    pub last_freq_hz: u32,
    pub last_sf: u8,
}

impl RfProfile {
    /// Adds one radio observation (running mean, weight capped at 64 samples).
    pub fn observe(&mut self, rx: &Observation) {
        self.count = self.count.saturating_add(1);
        let w = self.count.min(64) as f32;
        self.mean_rssi += (f32::from(rx.rssi_dbm) - self.mean_rssi) / w;
        self.mean_snr_db += (f32::from(rx.snr_qdb) / 4.0 - self.mean_snr_db) / w;
        self.last_freq_hz = rx.freq_hz;
        self.last_sf = rx.sf;
    }

    /// |rssi − mean| in dB, when the profile has samples.
    pub fn deviation_db(&self, rssi: i16) -> Option<i16> {
        (self.count > 0).then(|| (f32::from(rssi) - self.mean_rssi).abs().round() as i16)
    }
}

/// An attestation committed whose trust decision is still to be taken (the receipt
/// window): enough to find its frame again after a restart and to record the decision
/// as it would have been recorded at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undecided {
    pub device: [u8; 32],
    pub seq: u32,
    /// The time of the batch that committed it: the decision is taken as of then.
    pub now_ms: u64,
    pub source: Source,
}

/// Why a device is quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineInfo {
    pub seq: u32,
    /// blake3 of the proof bytes (kept in the divergences table).
    pub proof_digest: [u8; 32],
    pub lineage_index: u64,
}

/// The durable state of one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub head_seq: u32,
    pub head_digest: [u8; 32],
    pub epoch: u32,
    /// Distinct positions committed.
    pub depth: u32,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    pub admission: Admission,
    pub reasons: Reasons,
    pub grant: Option<Grant>,
    pub pinned: Option<Scope>,
    pub quarantine: Option<QuarantineInfo>,
    pub witnesses: Vec<WitnessStat>,
    pub rf: RfProfile,
    pub last_rssi: i16,
    /// Highest position this gateway signed a receipt for.
    pub witnessed_seq: Option<u32>,
    /// Highest position whose frame was stored (kept by the store, see `frames`: a new
    /// frame above it needs no look-up to know it is not stored yet).
    pub frames_max: Option<u32>,
}

impl DeviceRecord {
    pub fn new(now_ms: u64, seq: u32) -> Self {
        Self {
            head_seq: seq,
            head_digest: [0; 32],
            epoch: 0,
            depth: 0,
            first_seen_ms: now_ms,
            last_seen_ms: now_ms,
            admission: Admission::Deferred,
            reasons: Reasons::default(),
            grant: None,
            pinned: None,
            quarantine: None,
            witnesses: Vec::new(),
            rf: RfProfile::default(),
            last_rssi: 0,
            witnessed_seq: None,
            frames_max: None,
        }
    }

    /// Counts the witnessing of position `seq` by `witness`, once: false (and nothing
    /// changed) when that witness was already counted for that position, or when the
    /// position is too old to tell (see [`WitnessStat::mark`]). Bounded: at most
    /// [`MAX_WITNESSES`] witnesses are remembered; a new one replaces the least-counted.
    pub fn add_witness(&mut self, witness: [u8; 8], rssi: i16, seq: u32) -> bool {
        if let Some(w) = self.witnesses.iter_mut().find(|w| w.witness == witness) {
            if !w.mark(seq) {
                return false;
            }
            w.count = w.count.saturating_add(1);
            w.last_rssi = rssi;
            return true;
        }
        let stat = WitnessStat::new(witness, rssi, seq);
        if self.witnesses.len() < MAX_WITNESSES {
            self.witnesses.push(stat);
        } else if let Some(min) = self.witnesses.iter_mut().min_by_key(|w| w.count) {
            *min = stat;
        }
        true
    }
}

/// One committed frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameRecord {
    pub seq: u32,
    pub digest: [u8; 32],
    pub frame: Vec<u8>,
    pub rx: Observation,
    pub source: Source,
}

/// A frame record to store, borrowing its frame: encoded straight into the store's
/// buffer ([`FrameRef::encode_into`]) with exactly the bytes postcard gives the
/// [`FrameRecord`] it decodes as (serde's generic path writes the 120-byte frame and the
/// 32-byte digest one byte at a time, and the owned record copied the frame once more).
#[derive(Debug, Clone, Copy)]
pub struct FrameRef<'a> {
    pub seq: u32,
    pub digest: &'a [u8; 32],
    pub frame: &'a [u8],
    pub rx: &'a Observation,
    pub source: Source,
}

impl FrameRef<'_> {
    /// Appends the record's postcard encoding to `out`: `seq` (varint), the digest's 32
    /// bytes, the frame (varint length, bytes), then `rx` and `source` through postcard.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        varint(out, u64::from(self.seq));
        out.extend_from_slice(self.digest);
        varint(out, self.frame.len() as u64);
        out.extend_from_slice(self.frame);
        // Into a Vec these fail only on out-of-memory, which aborts anyway.
        let tail = std::mem::take(out);
        *out = postcard::to_extend(&(self.rx, self.source), tail).unwrap_or_default();
    }
}

/// postcard's unsigned varint (LEB128).
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn source(i: u8) -> Source {
        match i % 4 {
            0 => Source::Radio,
            1 => Source::Gossip,
            2 => Source::Sync,
            _ => Source::Escrow,
        }
    }

    proptest! {
        /// The direct encoding is postcard's, byte for byte, and decodes as the record.
        #[test]
        fn frame_ref_encodes_as_postcard(
            seq in any::<u32>(),
            digest in any::<[u8; 32]>(),
            frame in proptest::collection::vec(any::<u8>(), 0..400),
            rssi in any::<i16>(),
            snr in any::<i16>(),
            freq in any::<u32>(),
            foff in any::<Option<i32>>(),
            sf in any::<u8>(),
            time in any::<u64>(),
            src in any::<u8>(),
        ) {
            let rx = Observation { rssi_dbm: rssi, snr_qdb: snr, freq_hz: freq, foff_hz: foff, sf, time_ms: time };
            let owned = FrameRecord { seq, digest, frame: frame.clone(), rx, source: source(src) };
            let mut direct = vec![0xAA];
            FrameRef { seq, digest: &digest, frame: &frame, rx: &rx, source: source(src) }
                .encode_into(&mut direct);
            let expected = postcard::to_allocvec(&owned).unwrap();
            prop_assert_eq!(&direct[1..], expected.as_slice());
            prop_assert_eq!(postcard::from_bytes::<FrameRecord>(&direct[1..]).unwrap(), owned);
        }
    }

    proptest! {
        /// A witness is counted once per position: `add_witness` says yes exactly for
        /// a position not counted before that lies within the window below the highest
        /// one (a model with an unbounded set), and the count is the number of yeses.
        #[test]
        fn a_witness_counts_each_position_once(
            seqs in proptest::collection::vec(0u32..300, 1..400),
        ) {
            let mut rec = DeviceRecord::new(0, 0);
            let mut counted = std::collections::BTreeSet::new();
            let mut highest: Option<u32> = None;
            let mut yes = 0u32;
            for seq in seqs {
                let fresh = !counted.contains(&seq)
                    && highest.is_none_or(|h| seq + WITNESS_WINDOW > h);
                prop_assert_eq!(rec.add_witness([7; 8], -90, seq), fresh, "seq {}", seq);
                if fresh {
                    counted.insert(seq);
                    yes += 1;
                }
                highest = Some(highest.map_or(seq, |h| h.max(seq)));
            }
            prop_assert_eq!(rec.witnesses.len(), 1);
            prop_assert_eq!(rec.witnesses[0].count, yes);
        }
    }
}
