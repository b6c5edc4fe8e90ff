//! Per-(device, witness) RF profiles: running RSSI, SNR and frequency-offset statistics
//! of how one witness hears one device, kept for the device's top witnesses only.
//!
//! Bound: [`PROFILES`] per device, fixed-size, inside the hot record. Replacement
//! policy: a witness not in the table takes the slot with the fewest samples, but only
//! while that slot is not yet established (`n < Context::min_samples`); once all slots
//! are established, samples from other witnesses still count for corroboration but are
//! not profiled. The table therefore converges to the witnesses that hear the device
//! most, and a passing witness cannot evict an established profile.

use slope_proto::Observation;

use super::stat::Stat;

/// Witness profiles per device.
pub const PROFILES: usize = 4;

/// The empty-slot marker.
pub const EMPTY: u16 = u16::MAX;

/// How one witness hears one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Witness registry slot, or [`EMPTY`].
    pub witness: u16,
    /// RSSI and SNR samples (saturating).
    pub n: u16,
    /// Frequency-offset samples (not every radio reports it).
    pub foff_n: u16,
    /// RSSI, q4 dB.
    pub rssi: Stat,
    /// SNR, q4 dB.
    pub snr: Stat,
    /// Frequency offset, 4 Hz units.
    pub foff: Stat,
}

impl Default for Profile {
    fn default() -> Self {
        Self {
            witness: EMPTY,
            n: 0,
            foff_n: 0,
            rssi: Stat::default(),
            snr: Stat::default(),
            foff: Stat::default(),
        }
    }
}

/// An observation in the profile's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub rssi_q4: i32,
    pub snr_q4: i32,
    pub foff_4hz: Option<i32>,
}

impl Sample {
    /// Quantises an observation.
    pub fn of(o: &Observation) -> Self {
        Self {
            rssi_q4: i32::from(o.rssi_dbm) * 16,
            snr_q4: i32::from(o.snr_qdb) * 4,
            foff_4hz: o.foff_hz.map(|f| f / 4),
        }
    }
}

/// Deviation floors and window, from the policy.
#[derive(Debug, Clone, Copy)]
pub struct Floors {
    pub rssi_q4: u16,
    pub snr_q4: u16,
    pub foff_4hz: u16,
}

impl Profile {
    /// Whether the profile has enough samples to be compared against.
    pub fn established(&self, min_samples: u16) -> bool {
        self.witness != EMPTY && self.n >= min_samples
    }

    /// How far (q4 deviations, the largest of the three quantities) a sample is from
    /// this profile.
    pub fn distance_q4(&self, s: &Sample, floors: &Floors, min_samples: u16) -> u16 {
        let mut d = self
            .rssi
            .distance_q4(s.rssi_q4, floors.rssi_q4)
            .max(self.snr.distance_q4(s.snr_q4, floors.snr_q4));
        if let Some(f) = s.foff_4hz
            && self.foff_n >= min_samples
        {
            d = d.max(self.foff.distance_q4(f, floors.foff_4hz));
        }
        d
    }

    /// Adds a sample.
    pub fn update(&mut self, s: &Sample, window_log2: u8) {
        self.n = self.n.saturating_add(1);
        self.rssi.update(s.rssi_q4, self.n, window_log2);
        self.snr.update(s.snr_q4, self.n, window_log2);
        if let Some(f) = s.foff_4hz {
            self.foff_n = self.foff_n.saturating_add(1);
            self.foff.update(f, self.foff_n, window_log2);
        }
    }
}

/// Finds the profile of `witness`, or the slot it may take (see the module doc).
pub fn slot_for(profiles: &[Profile; PROFILES], witness: u16, min_samples: u16) -> Option<usize> {
    if let Some(i) = profiles.iter().position(|p| p.witness == witness) {
        return Some(i);
    }
    // Fewest samples first; ties go to the lowest index (deterministic).
    let (i, p) = profiles
        .iter()
        .enumerate()
        .min_by_key(|(i, p)| (if p.witness == EMPTY { 0 } else { p.n }, *i))?;
    (p.witness == EMPTY || p.n < min_samples).then_some(i)
}
