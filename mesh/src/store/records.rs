//! What the store keeps per device and per frame (postcard-encoded values).

use serde::{Deserialize, Serialize};
use slope_proto::Observation;

use crate::lineage::Source;
use crate::trust::{Admission, Grant, Reasons, Scope};

/// Distinct witnesses remembered per device; beyond it the least-seen is replaced.
pub const MAX_WITNESSES: usize = 16;

/// A gateway that witnessed the device on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessStat {
    pub witness: [u8; 8],
    pub count: u32,
    pub last_rssi: i16,
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
        }
    }

    /// Counts one witnessing by `witness` (bounded, see [`MAX_WITNESSES`]).
    pub fn add_witness(&mut self, witness: [u8; 8], rssi: i16) {
        if let Some(w) = self.witnesses.iter_mut().find(|w| w.witness == witness) {
            w.count = w.count.saturating_add(1);
            w.last_rssi = rssi;
            return;
        }
        let stat = WitnessStat {
            witness,
            count: 1,
            last_rssi: rssi,
        };
        if self.witnesses.len() < MAX_WITNESSES {
            self.witnesses.push(stat);
        } else if let Some(min) = self.witnesses.iter_mut().min_by_key(|w| w.count) {
            *min = stat;
        }
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
