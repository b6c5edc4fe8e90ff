//! The trust policy: every threshold and weight of the engine, in one serde-deserialisable
//! struct with documented defaults. `docs/trust-model.md` explains each formula and why
//! the default is what it is.
//!
//! Scores are integers in permille (0..=1000); times are milliseconds; statistics are
//! quantised in sixteenths ("q4") of their unit. Nothing here is a float, so a decision is
//! the same on every platform.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use super::quorum;
use super::zone::{Zone, ZoneWeight};

/// All thresholds of the trust engine.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    pub weights: Weights,
    pub continuity: Continuity,
    pub corroboration: Corroboration,
    pub context: Context,
    pub authority: Authority,
    pub admission: Admission,
    pub grants: Grants,
    pub bounds: Bounds,
}

/// How the four evidential scores combine into the total (relative weights).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Weights {
    pub continuity: u16,
    pub corroboration: u16,
    pub context: u16,
    pub authority: u16,
}

/// Continuity: depth, regularity, loss, dormancy, reboots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Continuity {
    /// Depth (received attestations) at which the depth score is 500‰.
    pub depth_half: u32,
    /// Relative interval deviation (‰ of the mean) at which regularity is 500‰.
    pub regularity_half: u32,
    /// Loss ratio (‰ of positions never received) tolerated without penalty.
    pub loss_tolerated: u32,
    /// A silence longer than this many mean intervals (and than `dormancy_min_ms`) is a
    /// dormancy gap.
    pub dormancy_intervals: u32,
    /// Shortest silence that can count as dormancy.
    pub dormancy_min_ms: u64,
    /// Attestations after a dormancy gap during which continuity is weighed with it.
    pub dormancy_probation: u8,
    /// Continuity factor (‰) applied during dormancy probation.
    pub dormancy_factor: u32,
    /// Reboots per 100 attestations tolerated without penalty.
    pub reboots_tolerated_pct: u32,
    /// Window of the interval statistics, as a power of two of samples.
    pub window_log2: u8,
}

/// Corroboration: witness receipts and device-to-device reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Corroboration {
    /// The witness policy that decides whether one attestation is corroborated.
    pub quorum: quorum::Policy,
    /// Effective witnesses (in thousandths) at which the corroboration score is 500‰.
    pub half_milli: u32,
    /// Bonus (thousandths of a witness) per additional distinct trust zone.
    pub zone_bonus_milli: u32,
    /// Weight (thousandths of a witness) of one heard-neighbour report.
    pub neighbour_milli: u32,
    /// At most this many heard-neighbour reports count per attestation.
    pub neighbour_cap: u8,
    /// Only reporters holding this scope (or better) credit the neighbours they hear:
    /// a cluster of fresh identities cannot vouch for itself.
    pub neighbour_reporter_full_only: bool,
}

/// Context: RF profiles per (device, witness), physical plausibility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Context {
    /// Samples before a per-witness profile is established (compared against).
    pub min_samples: u16,
    /// Window of the profile statistics, as a power of two of samples.
    pub window_log2: u8,
    /// Floor of the RSSI deviation, q4 dB (a very stable link is not infinitely strict).
    pub rssi_floor_q4: u16,
    /// Floor of the SNR deviation, q4 dB.
    pub snr_floor_q4: u16,
    /// Floor of the frequency-offset deviation, in 4 Hz units.
    pub foff_floor_4hz: u16,
    /// A sample deviates at a witness when it is this many deviations (q4) from the
    /// profile's mean.
    pub deviation_q4: u16,
    /// A context deviation needs deviating samples at this many witnesses (or at every
    /// established witness, when fewer are established).
    pub deviation_witnesses: u8,
    /// A deviation this large (q4 deviations) at `deviation_witnesses` refuses.
    pub severe_q4: u16,
    /// Largest EIRP a device may radiate, dBm (EU868: 14 dBm + antenna).
    pub device_eirp_dbm: i16,
    /// Largest witness antenna gain, dBi.
    pub witness_gain_dbi: i16,
    /// Margin above the free-space bound before a receipt is implausible, dB.
    pub fspl_margin_db: i16,
    /// Largest distance of a receipt's time from the median of the attestation's
    /// observation times.
    pub time_tolerance_ms: u64,
}

/// Authority class: operator trust zones and brownfield certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Authority {
    /// Authority score (‰) of a device enrolled in each zone.
    pub zones: Vec<ZoneWeight>,
    /// Authority score (‰) a valid brownfield certificate adds.
    pub certificate: u16,
}

/// Admission thresholds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Admission {
    /// Total score (‰) for full scope.
    pub full_score: u16,
    /// Received attestations before full scope.
    pub full_depth: u32,
    /// Time since the first attestation before full scope.
    pub full_age_ms: u64,
    /// Distinct established witness profiles before full scope.
    pub full_witnesses: u8,
    /// Total score (‰) below which a device is refused.
    pub refuse_score: u16,
    /// Attestations after a grant checked against its expectations.
    pub expectation_checks: u8,
}

/// Grant lifetimes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Grants {
    /// A grant lasts this many of the device's mean intervals...
    pub ttl_intervals: u32,
    /// ...but at least this long...
    pub min_ttl_ms: u64,
    /// ...and at most this long.
    pub max_ttl_ms: u64,
}

/// Bounds on state a remote party can make the engine hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Bounds {
    /// Tracked devices. At the bound, new devices are refused (`Refusal::Capacity`);
    /// known devices keep working.
    pub max_devices: u32,
    /// Tracked devices that have never held full scope (Sybil wall). At the bound, new
    /// devices are refused; [`super::Engine::evict_idle`] frees newcomers idle longer
    /// than `newcomer_idle_ms`.
    pub max_newcomers: u32,
    /// Idle time after which a newcomer may be evicted.
    pub newcomer_idle_ms: u64,
    /// Registered witnesses (operator-controlled).
    pub max_witnesses: u16,
    /// Receipts considered per attestation; extra receipts are ignored (and counted).
    pub max_receipts: u8,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            continuity: 40,
            corroboration: 30,
            context: 20,
            authority: 10,
        }
    }
}

impl Default for Continuity {
    fn default() -> Self {
        Self {
            depth_half: 24,
            regularity_half: 250,
            loss_tolerated: 500,
            dormancy_intervals: 8,
            dormancy_min_ms: 6 * 3_600_000,
            dormancy_probation: 8,
            dormancy_factor: 600,
            reboots_tolerated_pct: 5,
            window_log2: 4,
        }
    }
}

impl Default for Corroboration {
    fn default() -> Self {
        Self {
            quorum: quorum::Policy::default(),
            half_milli: 2_000,
            zone_bonus_milli: 500,
            neighbour_milli: 250,
            neighbour_cap: 4,
            neighbour_reporter_full_only: true,
        }
    }
}

impl Default for Context {
    fn default() -> Self {
        Self {
            min_samples: 8,
            window_log2: 4,
            rssi_floor_q4: 2 * 16,
            snr_floor_q4: 24,
            foff_floor_4hz: 50,
            deviation_q4: 6 * 16,
            deviation_witnesses: 2,
            severe_q4: 20 * 16,
            device_eirp_dbm: 16,
            witness_gain_dbi: 9,
            fspl_margin_db: 6,
            time_tolerance_ms: 2_000,
        }
    }
}

impl Default for Authority {
    fn default() -> Self {
        Self {
            zones: Vec::new(),
            certificate: 300,
        }
    }
}

impl Authority {
    /// The authority score of a device enrolled in `zone` (0 when the zone has no weight).
    pub fn zone_weight(&self, zone: Zone) -> u16 {
        self.zones
            .iter()
            .find(|z| z.zone == zone)
            .map_or(0, |z| z.weight.min(1000))
    }
}

impl Default for Admission {
    fn default() -> Self {
        Self {
            full_score: 600,
            full_depth: 24,
            full_age_ms: 6 * 3_600_000,
            full_witnesses: 2,
            refuse_score: 100,
            expectation_checks: 3,
        }
    }
}

impl Default for Grants {
    fn default() -> Self {
        Self {
            ttl_intervals: 4,
            min_ttl_ms: 10 * 60_000,
            max_ttl_ms: 7 * 24 * 3_600_000,
        }
    }
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            max_devices: 1 << 20,
            max_newcomers: 1 << 18,
            newcomer_idle_ms: 7 * 24 * 3_600_000,
            max_witnesses: 4_096,
            max_receipts: 16,
        }
    }
}
