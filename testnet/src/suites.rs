//! Airtime and energy per device per day with either suite (issue 8): suite 1
//! (ed25519 attestations, what the run simulated) measured on the simulated channel,
//! beside suite 2 (the compact hash-only suite, `slope_node::compact`) computed for the
//! same fleet from the radio model.
//!
//! What is modelled for suite 2, and what is not: every device sends one compact
//! attestation per wake-up it made in the run (the real `slope_node::compact::Device`
//! makes the frame, with the run's 8-byte payload, so its size is the real one), at the
//! device's own data rate, plus its anchor once (the real `SignedAnchor`, ed25519-signed);
//! renewals (one per chain: 2^16 intervals, longer than any run) are not counted. Not
//! modelled for suite 2: collisions and the duty-cycle tracker (the frames are shorter,
//! so both can only improve), re-sends after power cuts, and the gateways' side (the
//! suite-2 verifier and its one-period verification latency) — the simulation runs
//! suite 1 only. Energy is transmit energy only: airtime × 3.3 V × [`TX_CURRENT_MA`]
//! (an SX1276-class radio at +14 dBm); receive windows, the MCU and sleep are not
//! counted, for either suite.

use serde::Serialize;
use slope_node::compact::device::{Device, Schedule};
use slope_proto::DeviceId;
use slope_proto::compact::SignedAnchor;
use slope_radios::airtime::Modulation;

/// Supply current while transmitting at +14 dBm, mA.
pub const TX_CURRENT_MA: f64 = 44.0;
/// Supply voltage, V.
pub const SUPPLY_V: f64 = 3.3;

/// One suite's figures, per device per day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Figures {
    pub frames: f64,
    /// Mean envelope bytes per frame (before the 3-byte air framing).
    pub bytes_per_frame: f64,
    pub airtime_s: f64,
    /// Transmit energy, joules.
    pub energy_j: f64,
}

/// Both suites side by side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Comparison {
    /// Suite 1, measured in the run.
    pub ed25519: Figures,
    /// Suite 2, computed for the same fleet (see the module doc for what is modelled).
    pub compact: Figures,
    /// Sizes of the real suite-2 frames used: attestation and anchor envelopes.
    pub compact_attestation_bytes: usize,
    pub compact_anchor_bytes: usize,
}

/// Transmit energy of `airtime_s`, joules.
pub fn energy_j(airtime_s: f64) -> f64 {
    airtime_s * SUPPLY_V * TX_CURRENT_MA / 1000.0
}

/// The real suite-2 frames for a `payload_len`-byte payload and an `interval_s`
/// schedule: (attestation, anchor) envelope sizes, or `None` if they do not build.
pub fn compact_sizes(interval_s: u32, payload_len: usize) -> Option<(usize, usize)> {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let device = DeviceId([9; 32]);
    let schedule = Schedule {
        start_ms: 0,
        interval_ms: interval_s.saturating_mul(1000),
        delay: 2,
    };
    // Global intervals count from the Unix epoch: in 2026, at T = 15 min, the interval
    // number is about 2 million (a 3-byte varint), as on a real device.
    let now = 1_790_000_000_000u64;
    let current = u32::try_from(now / u64::from(schedule.interval_ms.max(1)) + 1).ok()?;
    // A chain that started a few intervals ago: a real key is disclosed, not the zeros
    // of the first `delay` intervals.
    let mut d = Device::new(device, &[3; 32], schedule, current - 4, 4096).ok()?;
    let anchor = SignedAnchor::sign(d.anchor(0), &device, &key).ok()?;
    let att = d.attest(now, &vec![0xA5; payload_len]).ok()?;
    Some((att.frame().len(), anchor.frame().len()))
}

/// Suite 2 for a fleet: `(modulation, wake-ups)` of every device, over `days`.
pub fn compact(fleet: &[(Modulation, u64)], days: f64, sizes: (usize, usize)) -> Figures {
    let (att, anchor) = sizes;
    let air = |m: &Modulation, len: usize| {
        f64::from(
            m.time_on_air_us(len + slope_radios::frame::OVERHEAD)
                .unwrap_or(0),
        ) / 1e6
    };
    let (mut frames, mut bytes, mut airtime) = (0u64, 0u64, 0.0);
    for (m, wakes) in fleet {
        frames += wakes + 1;
        bytes += wakes * att as u64 + anchor as u64;
        airtime += *wakes as f64 * air(m, att) + air(m, anchor);
    }
    let per = (fleet.len().max(1) as f64) * days.max(1e-9);
    let airtime_s = airtime / per;
    Figures {
        frames: frames as f64 / per,
        bytes_per_frame: bytes as f64 / frames.max(1) as f64,
        airtime_s,
        energy_j: energy_j(airtime_s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_frames_are_the_documented_size() {
        // docs/compact-suite.md: 47 bytes with an 8-byte payload; the anchor ≈ 106 B.
        let (att, anchor) = compact_sizes(900, 8).unwrap_or_default();
        assert_eq!(att, 47);
        assert!((90..=120).contains(&anchor), "{anchor}");
    }

    #[test]
    fn fewer_bytes_less_airtime() {
        let m = slope_radios::region::Region::Eu868
            .data_rate(5)
            .map(|d| d.modulation());
        let Some(m) = m else { return };
        let f = compact(&[(m, 96)], 1.0, (47, 106));
        assert_eq!(f.frames, 97.0);
        // 96 frames of 50 B at SF7 (~97.5 ms each, brief table) plus one anchor.
        assert!(f.airtime_s > 8.0 && f.airtime_s < 11.0, "{}", f.airtime_s);
        assert!((f.energy_j - f.airtime_s * 3.3 * 0.044).abs() < 1e-9);
    }
}
