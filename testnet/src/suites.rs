//! Airtime and energy per device per day with either suite (issue 8): the suite the
//! run simulated is *measured* on the simulated channel (every frame its devices put on
//! the air: attestations, establishment events, anchors, re-sends), the other one is
//! *computed* for the same fleet from the radio model, and labelled so.
//!
//! - Suite 2 computed (in an ed25519 run): every device sends one compact attestation
//!   per wake-up it made in the run (the real `slope_node::compact::Device` makes the
//!   frame, with the run's 8-byte payload, so its size is the real one), at the
//!   device's own data rate, plus its anchor once (the real `SignedAnchor`). Not
//!   counted: renewals (one per 4096 intervals, longer than any run), repeated
//!   establishment events and anchors, collisions, re-sends after power cuts.
//! - Suite 1 computed (in a compact run): every wake-up one suite-1 attestation with
//!   the same 8-byte payload (the real `Signed<Interaction>`), plus the establishment
//!   event every [`crate::world::device::ESTABLISHMENT_EVERY`] wake-ups (the
//!   inception's size) and a rotation every 96 attestations (the device's default
//!   `rotate_every`), at the device's own data rate. Not counted: collisions,
//!   re-sends after power cuts, neighbour reports.
//!
//! Energy is transmit energy only: airtime × 3.3 V × [`TX_CURRENT_MA`] (an
//! SX1276-class radio at +14 dBm); receive windows, the MCU and sleep are not counted,
//! for either suite.

use serde::Serialize;
use slope_node::compact::device::{Device, Schedule};
use slope_proto::compact::SignedAnchor;
use slope_proto::{DeviceId, Inception, Interaction, LinkDigest, Rotation, Signed};
use slope_radios::airtime::Modulation;

use crate::params::Suite;

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
    /// The suite the run simulated: its figures are measured, the other's computed
    /// (see the module doc for what is modelled).
    pub measured: Suite,
    /// Suite 1.
    pub ed25519: Figures,
    /// Suite 2.
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

/// The real suite-1 frames with a `payload_len`-byte payload: (attestation,
/// inception, rotation) envelope sizes, or `None` if they do not build.
pub fn ed25519_sizes(payload_len: usize) -> Option<(usize, usize, usize)> {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let next = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
    let inception = Signed::incept(
        Inception {
            key: key.verifying_key().to_bytes(),
            next_key: slope_proto::crypto::next_key_digest(&next.verifying_key().to_bytes()),
            interval_s: 900,
        },
        &key,
    )
    .ok()?;
    let id = inception.device_id();
    let body = Interaction {
        device: id.short(),
        seq: 1_000,
        prev: LinkDigest([5; 16]),
        epoch: 3,
        boot: 2,
        behaviour: [0; 4],
        heard: heapless::Vec::new(),
        payload: heapless::Vec::from_slice(&vec![0xA5; payload_len]).ok()?,
    };
    let att = Signed::sign(body, &id, &key).ok()?;
    let rotation = Signed::sign(
        Rotation {
            device: id.short(),
            seq: 1_001,
            prev: LinkDigest([6; 16]),
            epoch: 4,
            key: next.verifying_key().to_bytes(),
            next_key: slope_proto::Digest([9; 32]),
        },
        &id,
        &next,
    )
    .ok()?;
    Some((
        att.frame().len(),
        inception.frame().len(),
        rotation.frame().len(),
    ))
}

/// Airtime of one `len`-byte envelope at `m`, s.
fn air(m: &Modulation, len: usize) -> f64 {
    f64::from(
        m.time_on_air_us(len + slope_radios::frame::OVERHEAD)
            .unwrap_or(0),
    ) / 1e6
}

/// Suite 1 computed for a fleet: `(modulation, wake-ups)` of every device, over
/// `days` (see the module doc).
pub fn ed25519(fleet: &[(Modulation, u64)], days: f64, sizes: (usize, usize, usize)) -> Figures {
    let (att, establishment, rotation) = sizes;
    let every = u64::from(crate::world::device::ESTABLISHMENT_EVERY);
    let (mut frames, mut bytes, mut airtime) = (0u64, 0u64, 0.0);
    for (m, wakes) in fleet {
        let (e, r) = (wakes / every, wakes / 96);
        frames += wakes + e + r;
        bytes += wakes * att as u64 + e * establishment as u64 + r * rotation as u64;
        airtime += *wakes as f64 * air(m, att)
            + e as f64 * air(m, establishment)
            + r as f64 * air(m, rotation);
    }
    figures(fleet.len(), days, frames, bytes, airtime)
}

fn figures(devices: usize, days: f64, frames: u64, bytes: u64, airtime: f64) -> Figures {
    let per = (devices.max(1) as f64) * days.max(1e-9);
    let airtime_s = airtime / per;
    Figures {
        frames: frames as f64 / per,
        bytes_per_frame: bytes as f64 / frames.max(1) as f64,
        airtime_s,
        energy_j: energy_j(airtime_s),
    }
}

/// Suite 2 computed for a fleet: `(modulation, wake-ups)` of every device, over
/// `days`.
pub fn compact(fleet: &[(Modulation, u64)], days: f64, sizes: (usize, usize)) -> Figures {
    let (att, anchor) = sizes;
    let (mut frames, mut bytes, mut airtime) = (0u64, 0u64, 0.0);
    for (m, wakes) in fleet {
        frames += wakes + 1;
        bytes += wakes * att as u64 + anchor as u64;
        airtime += *wakes as f64 * air(m, att) + air(m, anchor);
    }
    figures(fleet.len(), days, frames, bytes, airtime)
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
        // The same wake-ups in suite 1 cost more air.
        let sizes = ed25519_sizes(8).unwrap_or_default();
        assert!(sizes.0 > 47 + 64 - 8, "{sizes:?}");
        let e = ed25519(&[(m, 96)], 1.0, sizes);
        assert_eq!(e.frames, 96.0 + 12.0 + 1.0);
        assert!(
            e.airtime_s > f.airtime_s * 1.5,
            "{} vs {}",
            e.airtime_s,
            f.airtime_s
        );
    }
}
