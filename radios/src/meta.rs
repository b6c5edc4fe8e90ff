//! What a receiver knows about a frame besides its bytes: [`RxMeta`] and the [`Snr`] unit.
//!
//! Integer units only, so the type is the same on a microcontroller, in the simulator and
//! behind a packet forwarder. Timestamps come from the clock of whoever received the frame
//! (radio timer, simulator clock, concentrator counter) and are passed in: nothing here
//! reads a clock.

use lora_modulation::{Bandwidth, SpreadingFactor};

/// Signal-to-noise ratio in quarter-decibel steps (the SX127x/SX126x register unit).
///
/// `Snr(-30)` is −7.5 dB. Range of an `i16`: ±8191.75 dB, far beyond any radio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Snr(pub i16);

impl Snr {
    /// From a whole number of decibels (saturating).
    pub const fn from_db(db: i16) -> Self {
        Snr(db.saturating_mul(4))
    }

    /// From tenths of a decibel (the 0.1 dB precision of the packet forwarder), rounded to
    /// the nearest quarter decibel, saturating.
    pub const fn from_decidb(decidb: i32) -> Self {
        // quarter-dB = decidb * 4 / 10, rounded half away from zero.
        let num = decidb as i64 * 4;
        let q = if num >= 0 {
            (num + 5) / 10
        } else {
            (num - 5) / 10
        };
        let q = if q > i16::MAX as i64 {
            i16::MAX
        } else if q < i16::MIN as i64 {
            i16::MIN
        } else {
            q as i16
        };
        Snr(q)
    }

    /// Value in quarter decibels.
    pub const fn quarter_db(self) -> i16 {
        self.0
    }
}

impl core::fmt::Display for Snr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let q = i32::from(self.0);
        let sign = if q < 0 { "-" } else { "" };
        let a = q.unsigned_abs();
        write!(f, "{sign}{}.{:02} dB", a / 4, (a % 4) * 25)
    }
}

/// Metadata of one received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxMeta {
    /// Channel (packet) RSSI in dBm.
    pub rssi_dbm: i16,
    /// Signal RSSI in dBm, when the hardware estimates it separately (SX130x `rssis`).
    pub signal_rssi_dbm: Option<i16>,
    /// Signal-to-noise ratio.
    pub snr: Snr,
    /// Centre frequency in Hz.
    pub freq_hz: u32,
    /// Spreading factor the frame was received with.
    pub sf: SpreadingFactor,
    /// Bandwidth the frame was received with.
    pub bw: Bandwidth,
    /// End-of-frame timestamp in microseconds on the receiver's own clock (radio timer,
    /// simulator time, or the concentrator's 32-bit `tmst` counter widened to `u64`).
    pub timestamp_us: u64,
    /// Carrier frequency offset in Hz, when the hardware reports it.
    pub freq_offset_hz: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snr_units() {
        assert_eq!(Snr::from_db(-7), Snr(-28));
        assert_eq!(Snr::from_decidb(51), Snr(20)); // 5.1 dB -> 5.0 (20.4 q)
        assert_eq!(Snr::from_decidb(-28), Snr(-11)); // -2.8 dB -> -2.75
        assert_eq!(Snr::from_decidb(-75), Snr(-30));
        assert_eq!(Snr::from_decidb(i32::MAX), Snr(i16::MAX));
        assert_eq!(Snr::from_decidb(i32::MIN), Snr(i16::MIN));
        assert_eq!(Snr(-30).to_string(), "-7.50 dB");
        assert_eq!(Snr(21).to_string(), "5.25 dB");
    }
}
