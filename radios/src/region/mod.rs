//! Regional parameters: data rates with their maximum payloads, sub-bands with their duty
//! cycles, and dwell-time limits, for EU868 and US915 (LoRaWAN RP002-1.0.x).
//!
//! Payload limits are given as LoRaWAN's `N` (maximum application payload with no FOpts);
//! a LoRaWAN PHY payload is `N + 13` bytes at most, and that is the limit a Slope frame
//! (which has no LoRaWAN MAC header) must respect: [`DataRate::max_phy_payload`].

mod eu868;
mod us915;

use lora_modulation::{Bandwidth, SpreadingFactor};

use crate::airtime::Modulation;

/// LoRaWAN overhead around an application payload: MHDR 1 + FHDR 7 + FPort 1 + MIC 4.
pub const LORAWAN_OVERHEAD: usize = 13;

/// A supported regional plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Region {
    /// Europe 863–870 MHz (ETSI EN 300 220).
    Eu868,
    /// United States 902–928 MHz (FCC part 15.247).
    Us915,
}

/// One uplink data rate of a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRate {
    /// Index in the region's table (`DR0` = 0).
    pub index: u8,
    /// Spreading factor.
    pub sf: SpreadingFactor,
    /// Bandwidth.
    pub bw: Bandwidth,
    /// Maximum LoRaWAN application payload `N` in bytes (no FOpts).
    pub max_app_payload: u8,
}

impl DataRate {
    /// Modulation of this data rate (coding rate 4/5).
    pub const fn modulation(&self) -> Modulation {
        Modulation::new(self.sf, self.bw)
    }

    /// Largest PHY payload allowed at this data rate: `N + 13`.
    pub const fn max_phy_payload(&self) -> usize {
        self.max_app_payload as usize + LORAWAN_OVERHEAD
    }
}

/// A regulatory sub-band: a frequency range sharing one duty-cycle budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubBand {
    /// Index of the sub-band in its region (stable; used by the duty-cycle tracker).
    pub index: u8,
    /// Short name, e.g. `"g1"`.
    pub name: &'static str,
    /// Lowest frequency of the band in Hz (inclusive).
    pub low_hz: u32,
    /// Highest frequency of the band in Hz (inclusive).
    pub high_hz: u32,
    /// Duty cycle in parts per ten thousand (`100` = 1 %, `10000` = no limit).
    pub duty_cycle_bp: u16,
}

impl SubBand {
    /// Whether a channel centred at `freq_hz` with bandwidth `bw` lies entirely in the band.
    pub const fn contains(&self, freq_hz: u32, bw: Bandwidth) -> bool {
        let half = bw.hz() / 2;
        match (freq_hz.checked_sub(half), freq_hz.checked_add(half)) {
            (Some(lo), Some(hi)) => lo >= self.low_hz && hi <= self.high_hz,
            _ => false,
        }
    }
}

/// Maximum number of sub-bands of any region (sizes the duty-cycle tracker).
pub const MAX_SUB_BANDS: usize = 6;

impl Region {
    /// Uplink data rates, indexed by DR number.
    pub const fn data_rates(self) -> &'static [DataRate] {
        match self {
            Region::Eu868 => &eu868::DATA_RATES,
            Region::Us915 => &us915::DATA_RATES,
        }
    }

    /// Uplink data rate `index`, if the region defines it for LoRa.
    pub fn data_rate(self, index: u8) -> Option<DataRate> {
        self.data_rates().get(usize::from(index)).copied()
    }

    /// The data rate using `sf` and `bw`, if any.
    pub fn data_rate_for(self, sf: SpreadingFactor, bw: Bandwidth) -> Option<DataRate> {
        self.data_rates()
            .iter()
            .copied()
            .find(|d| d.sf == sf && d.bw == bw)
    }

    /// Regulatory sub-bands.
    pub const fn sub_bands(self) -> &'static [SubBand] {
        match self {
            Region::Eu868 => &eu868::SUB_BANDS,
            Region::Us915 => &us915::SUB_BANDS,
        }
    }

    /// The sub-band a channel belongs to, if it lies entirely inside one.
    pub fn sub_band(self, freq_hz: u32, bw: Bandwidth) -> Option<SubBand> {
        self.sub_bands()
            .iter()
            .copied()
            .find(|b| b.contains(freq_hz, bw))
    }

    /// Maximum time on air of one uplink in microseconds, where a dwell limit applies.
    pub const fn dwell_limit_us(self) -> Option<u32> {
        match self {
            Region::Eu868 => None,
            Region::Us915 => Some(us915::DWELL_LIMIT_US),
        }
    }

    /// Default channels a Slope device hops over in this region (uplink, 125 kHz).
    pub const fn default_channels(self) -> &'static [u32] {
        match self {
            Region::Eu868 => &eu868::DEFAULT_CHANNELS,
            Region::Us915 => &us915::SUB_BAND_2_CHANNELS,
        }
    }
}

impl core::fmt::Display for Region {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Region::Eu868 => "EU868",
            Region::Us915 => "US915",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eu868_payloads_match_rp002() {
        let n: [u8; 7] = [51, 51, 51, 115, 242, 242, 242];
        for (i, dr) in Region::Eu868.data_rates().iter().enumerate() {
            assert_eq!(dr.index as usize, i);
            assert_eq!(dr.max_app_payload, n[i]);
        }
        assert_eq!(Region::Eu868.data_rates().len(), 7);
        let dr0 = Region::Eu868.data_rate(0).unwrap();
        assert_eq!((dr0.sf, dr0.bw), (SpreadingFactor::_12, Bandwidth::_125KHz));
        let dr6 = Region::Eu868.data_rate(6).unwrap();
        assert_eq!((dr6.sf, dr6.bw), (SpreadingFactor::_7, Bandwidth::_250KHz));
        assert_eq!(dr6.max_phy_payload(), 255);
        assert_eq!(Region::Eu868.data_rate(7), None);
    }

    #[test]
    fn us915_payloads_match_rp002_dwell_on() {
        let n: [u8; 5] = [11, 53, 125, 242, 242];
        for (i, dr) in Region::Us915.data_rates().iter().enumerate() {
            assert_eq!(dr.max_app_payload, n[i]);
        }
        let dr4 = Region::Us915.data_rate(4).unwrap();
        assert_eq!((dr4.sf, dr4.bw), (SpreadingFactor::_8, Bandwidth::_500KHz));
        assert_eq!(Region::Us915.dwell_limit_us(), Some(400_000));
    }

    #[test]
    fn eu868_sub_bands() {
        let band = |f| {
            Region::Eu868
                .sub_band(f, Bandwidth::_125KHz)
                .map(|b| b.duty_cycle_bp)
        };
        assert_eq!(band(868_100_000), Some(100)); // g1
        assert_eq!(band(868_500_000), Some(100)); // g1
        assert_eq!(band(868_800_000), Some(10)); // g2
        assert_eq!(band(869_525_000), Some(1000)); // g3
        assert_eq!(band(867_100_000), Some(100)); // g
        assert_eq!(band(864_100_000), Some(10)); // 863-865
        assert_eq!(band(869_300_000), None); // gap between g2 and g3
        assert_eq!(band(868_600_000), None); // straddles the g1 edge
        assert_eq!(band(915_000_000), None);
        assert_eq!(band(u32::MAX), None);
        assert_eq!(band(0), None);
    }

    #[test]
    fn default_channels_are_in_band() {
        for region in [Region::Eu868, Region::Us915] {
            for &f in region.default_channels() {
                assert!(
                    region.sub_band(f, Bandwidth::_125KHz).is_some(),
                    "{region} {f}"
                );
            }
        }
    }
}
