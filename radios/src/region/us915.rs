//! US902-928 tables (LoRaWAN RP002-1.0.3 §2.5), uplink only, dwell time on.

use lora_modulation::{Bandwidth, SpreadingFactor};

use super::{DataRate, SubBand};

const fn dr(index: u8, sf: SpreadingFactor, bw: Bandwidth, n: u8) -> DataRate {
    DataRate {
        index,
        sf,
        bw,
        max_app_payload: n,
    }
}

/// Uplink DR0–DR4; payload limits are those that hold under the 400 ms dwell time.
pub(super) const DATA_RATES: [DataRate; 5] = [
    dr(0, SpreadingFactor::_10, Bandwidth::_125KHz, 11),
    dr(1, SpreadingFactor::_9, Bandwidth::_125KHz, 53),
    dr(2, SpreadingFactor::_8, Bandwidth::_125KHz, 125),
    dr(3, SpreadingFactor::_7, Bandwidth::_125KHz, 242),
    dr(4, SpreadingFactor::_8, Bandwidth::_500KHz, 242),
];

/// FCC 15.247 frequency-hopping dwell limit: 400 ms per channel per 20 s; applied by
/// LoRaWAN (and Slope) as a cap on the time on air of every uplink.
pub(super) const DWELL_LIMIT_US: u32 = 400_000;

/// One band with no duty-cycle limit (the dwell limit applies instead).
pub(super) const SUB_BANDS: [SubBand; 1] = [SubBand {
    index: 0,
    name: "902-928",
    low_hz: 902_000_000,
    high_hz: 928_000_000,
    duty_cycle_bp: 10_000,
}];

/// Channels 8–15 (sub-band 2), the set most US915 networks listen on.
pub(super) const SUB_BAND_2_CHANNELS: [u32; 8] = [
    903_900_000,
    904_100_000,
    904_300_000,
    904_500_000,
    904_700_000,
    904_900_000,
    905_100_000,
    905_300_000,
];
