//! EU863-870 tables (LoRaWAN RP002-1.0.3 §2.4; ETSI EN 300 220-2 V3.2.1 annex B).

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

/// DR0–DR6 (DR7 is FSK and not used by Slope).
pub(super) const DATA_RATES: [DataRate; 7] = [
    dr(0, SpreadingFactor::_12, Bandwidth::_125KHz, 51),
    dr(1, SpreadingFactor::_11, Bandwidth::_125KHz, 51),
    dr(2, SpreadingFactor::_10, Bandwidth::_125KHz, 51),
    dr(3, SpreadingFactor::_9, Bandwidth::_125KHz, 115),
    dr(4, SpreadingFactor::_8, Bandwidth::_125KHz, 242),
    dr(5, SpreadingFactor::_7, Bandwidth::_125KHz, 242),
    dr(6, SpreadingFactor::_7, Bandwidth::_250KHz, 242),
];

const fn band(index: u8, name: &'static str, low_hz: u32, high_hz: u32, bp: u16) -> SubBand {
    SubBand {
        index,
        name,
        low_hz,
        high_hz,
        duty_cycle_bp: bp,
    }
}

/// Sub-bands usable by short-range devices without LBT/AFA, with their duty cycles.
pub(super) const SUB_BANDS: [SubBand; 6] = [
    band(0, "h1.3 (863-865)", 863_000_000, 865_000_000, 10),
    band(1, "g (865-868)", 865_000_000, 868_000_000, 100),
    band(2, "g1 (868.0-868.6)", 868_000_000, 868_600_000, 100),
    band(3, "g2 (868.7-869.2)", 868_700_000, 869_200_000, 10),
    band(4, "g3 (869.4-869.65)", 869_400_000, 869_650_000, 1000),
    band(5, "g4 (869.7-870.0)", 869_700_000, 870_000_000, 100),
];

/// The three mandatory LoRaWAN join channels, all in g1.
pub(super) const DEFAULT_CHANNELS: [u32; 3] = [868_100_000, 868_300_000, 868_500_000];
