//! Time on air of a LoRa frame under the Slope PHY profile.
//!
//! Owns [`Modulation`] (spreading factor, bandwidth, coding rate) and the airtime
//! computation. The arithmetic is delegated to the `lora-modulation` crate; this module only
//! fixes the profile every Slope frame uses: 8-symbol preamble, explicit header, CRC on,
//! low data rate optimisation chosen automatically (on when a symbol lasts ≥ 16.384 ms,
//! i.e. SF11 and SF12 at 125 kHz), exactly as LoRaWAN uplinks are sent.

use lora_modulation::{Bandwidth, BaseBandModulationParams, CodingRate, SpreadingFactor};

/// Preamble length in symbols used by every Slope (and LoRaWAN) frame.
pub const PREAMBLE_SYMBOLS: u8 = 8;

/// Largest LoRa PHY payload, in bytes (the length field is one byte).
pub const MAX_PHY_PAYLOAD: usize = 255;

/// LoRa modulation parameters, frequency excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modulation {
    /// Spreading factor.
    pub sf: SpreadingFactor,
    /// Channel bandwidth.
    pub bw: Bandwidth,
    /// Forward error correction rate.
    pub cr: CodingRate,
}

impl Modulation {
    /// Modulation with coding rate 4/5, the LoRaWAN uplink default.
    pub const fn new(sf: SpreadingFactor, bw: Bandwidth) -> Self {
        Self {
            sf,
            bw,
            cr: CodingRate::_4_5,
        }
    }

    /// Duration of one symbol in microseconds (2^SF / BW).
    pub const fn symbol_us(&self) -> u32 {
        // 2^12 * 1e6 fits in u32; lowest bandwidth is 7.81 kHz.
        (1u32 << self.sf.factor()) * 1_000_000 / self.bw.hz()
    }

    /// Whether low data rate optimisation is on for this modulation.
    pub const fn low_data_rate_optimisation(&self) -> bool {
        BaseBandModulationParams::new(self.sf, self.bw, self.cr).ldro
    }

    /// Time on air in microseconds of a frame carrying `len` PHY payload bytes.
    ///
    /// Returns [`TooLong`] when `len` exceeds [`MAX_PHY_PAYLOAD`].
    pub fn time_on_air_us(&self, len: usize) -> Result<u32, TooLong> {
        let len = u8::try_from(len).map_err(|_| TooLong { len })?;
        let params = BaseBandModulationParams::new(self.sf, self.bw, self.cr);
        Ok(params.time_on_air_us(Some(PREAMBLE_SYMBOLS), true, len))
    }
}

/// A PHY payload longer than [`MAX_PHY_PAYLOAD`] cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    /// The offending length in bytes.
    pub len: usize,
}

impl core::fmt::Display for TooLong {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "PHY payload of {} bytes exceeds {MAX_PHY_PAYLOAD}",
            self.len
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(sf: SpreadingFactor, len: usize) -> f64 {
        let us = Modulation::new(sf, Bandwidth::_125KHz)
            .time_on_air_us(len)
            .expect("len <= 255");
        f64::from(us) / 1000.0
    }

    /// Published figures (brief; TTN airtime calculator) for 125 kHz, CR 4/5.
    #[test]
    fn matches_published_figures() {
        let cases = [
            (SpreadingFactor::_12, 50, 2302.0),
            (SpreadingFactor::_9, 50, 329.0),
            (SpreadingFactor::_7, 50, 97.5),
            (SpreadingFactor::_12, 120, 4596.0),
            (SpreadingFactor::_9, 120, 636.0),
            (SpreadingFactor::_7, 120, 200.0),
        ];
        for (sf, len, expected) in cases {
            let got = ms(sf, len);
            assert!(
                (got - expected).abs() < 1.0,
                "{sf:?} {len} B: got {got} ms, expected {expected}"
            );
        }
    }

    #[test]
    fn ldro_only_for_long_symbols() {
        let on = |sf| Modulation::new(sf, Bandwidth::_125KHz).low_data_rate_optimisation();
        assert!(on(SpreadingFactor::_12));
        assert!(on(SpreadingFactor::_11));
        assert!(!on(SpreadingFactor::_10));
        assert!(!on(SpreadingFactor::_7));
    }

    #[test]
    fn refuses_oversize() {
        let m = Modulation::new(SpreadingFactor::_7, Bandwidth::_125KHz);
        assert_eq!(m.time_on_air_us(256), Err(TooLong { len: 256 }));
        assert!(m.time_on_air_us(255).is_ok());
    }
}
