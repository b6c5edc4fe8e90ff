//! The receive window of the time echo: when, where and how a gateway answers a Slope
//! attestation it heard with a short time echo (`slope_proto::compact::Echo`), and
//! where the device listens for it (docs/protocol.md, "Time echo").
//!
//! Like LoRaWAN class A's second receive window (RX2), and for the same reasons:
//!
//! - **When**: [`DELAY_US`] = 2 s after the *end* of the uplink (the packet
//!   forwarder's `tmst` marks the end of reception; the device knows when its
//!   transmission ended). Two seconds leave the gateway's backhaul, the daemon's
//!   decision and the forwarder's just-in-time queue ≥ 1.5 s, and the device's crystal
//!   drifts by 0.1 ms over them at 50 ppm.
//! - **Where (EU868)**: 869.525 MHz, the g3 sub-band (869.4–869.65 MHz), the only EU868
//!   sub-band with a **10 %** duty cycle (the uplink channels are in 1 % g1): a gateway
//!   answers ten times as many devices there as it could on the uplink's channel (an
//!   RX1-like answer), and a device listens on one known frequency. 27 dBm is the
//!   sub-band's limit (500 mW ERP); the packet forwarder lowers it to its own table.
//! - **How (EU868)**: DR0, SF12 / 125 kHz: the longest range, so a device that needs
//!   the slowest uplink rates (the compact suite's) still hears the answer. 51 bytes
//!   fit; an echo is 39 on air (42 + 3 at most).
//! - **US915**: 923.3 MHz at DR8 (SF12 / 500 kHz), RX2's default: downlinks there carry
//!   53 bytes even at DR8 (uplink DR0's 11-byte limit does not apply), FCC part 15.247
//!   digital modulation has no duty cycle.
//!
//! The echo is sent **without** inverted I/Q (like every Slope frame): a gateway that
//! happens to hear it classifies it as a Slope frame of kind echo and drops it, and the
//! device's receiver needs no second polarity.

use lora_modulation::{Bandwidth, SpreadingFactor};

use crate::airtime::Modulation;
use crate::region::Region;

/// Delay from the end of the uplink to the start of the echo, µs.
pub const DELAY_US: u32 = 2_000_000;

/// Largest echo on air: the 42-byte message plus the 3-byte radio framing.
pub const MAX_ECHO_PHY: usize = 45;

/// How early a device opens the window before the echo is due, and how long after its
/// end it keeps it open, µs (covers the device's reaction time, not the crystal: 50 ppm
/// of 2 s is 100 µs).
pub const MARGIN_US: u32 = 100_000;

/// The echo window of a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// From the end of the uplink to the start of the echo, µs.
    pub delay_us: u32,
    /// Centre frequency, Hz.
    pub freq_hz: u32,
    /// Modulation (coding rate 4/5).
    pub modulation: Modulation,
    /// Transmit power the gateway asks for, dBm.
    pub power_dbm: i8,
}

impl Window {
    /// The window of `region`.
    pub const fn of(region: Region) -> Window {
        match region {
            Region::Eu868 => Window {
                delay_us: DELAY_US,
                freq_hz: 869_525_000,
                modulation: Modulation::new(SpreadingFactor::_12, Bandwidth::_125KHz),
                power_dbm: 27,
            },
            Region::Us915 => Window {
                delay_us: DELAY_US,
                freq_hz: 923_300_000,
                modulation: Modulation::new(SpreadingFactor::_12, Bandwidth::_500KHz),
                power_dbm: 20,
            },
        }
    }

    /// The region whose uplink band holds `freq_hz` (EU868: 863–870 MHz; US915:
    /// 902–928 MHz), for a gateway that learns the region from what it hears.
    pub const fn region_of(freq_hz: u32) -> Option<Region> {
        match freq_hz {
            863_000_000..=870_000_000 => Some(Region::Eu868),
            902_000_000..=928_000_000 => Some(Region::Us915),
            _ => None,
        }
    }

    /// Where the device listens, relative to the end of its uplink (µs): from
    /// `delay − margin` to the end of the longest echo plus the margin.
    pub fn listen_span_us(&self) -> (u32, u32) {
        let airtime = self
            .modulation
            .time_on_air_us(MAX_ECHO_PHY)
            .unwrap_or(u32::MAX / 4);
        (
            self.delay_us.saturating_sub(MARGIN_US),
            self.delay_us
                .saturating_add(airtime)
                .saturating_add(MARGIN_US),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_their_airtime() {
        let eu = Window::of(Region::Eu868);
        // 39 bytes on air at SF12/125 kHz: 1.97 s.
        assert_eq!(eu.modulation.time_on_air_us(39), Ok(1_974_272));
        // In the 10 % sub-band.
        let band = Region::Eu868
            .sub_band(eu.freq_hz, eu.modulation.bw)
            .unwrap();
        assert_eq!(band.duty_cycle_bp, 1000);
        let (open, close) = eu.listen_span_us();
        assert_eq!(open, 1_900_000);
        // Until the longest (45-byte) echo has ended, plus the margin.
        assert_eq!(eu.modulation.time_on_air_us(MAX_ECHO_PHY), Ok(2_138_112));
        assert_eq!(close, 2_000_000 + 2_138_112 + 100_000);
        assert_eq!(Window::region_of(868_100_000), Some(Region::Eu868));
        assert_eq!(Window::region_of(904_300_000), Some(Region::Us915));
        assert_eq!(Window::region_of(433_175_000), None);
    }
}
