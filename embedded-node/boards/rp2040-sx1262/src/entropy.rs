//! The RP2040's entropy sources, as 8-bit symbols for the health tests.
//!
//! | source | symbol | claimed min-entropy |
//! |---|---|---|
//! | ring oscillator (ROSC `RANDOMBIT`, 8 reads) | one byte | 1 bit |
//! | ADC noise (internal temperature sensor) | low byte of the 12-bit reading | ½ bit |
//! | clock jitter (ADC on the USB PLL timed by SysTick on the system PLL) | low byte of the conversion time | ½ bit |
//!
//! The RP2040 has no TRNG, and its ROSC bit is known to be biased and correlated: it is
//! claimed at 1 bit per byte and the health tests hold it to that.

use cortex_m::peripheral::SYST;
use embassy_rp::adc::{Adc, Blocking, Channel};
use embassy_rp::clocks::RoscRng;
use slope_firmware::harvest::{SourceInfo, Sources};
use slope_firmware::health::MinEntropy;

const LIST: &[SourceInfo] = &[
    SourceInfo {
        name: "rosc",
        min_entropy: MinEntropy::OneBit,
    },
    SourceInfo {
        name: "adc noise",
        min_entropy: MinEntropy::HalfBit,
    },
    SourceInfo {
        name: "clock jitter",
        min_entropy: MinEntropy::HalfBit,
    },
];

/// The board's sources.
pub struct Board {
    pub adc: Adc<'static, Blocking>,
    pub temperature: Channel<'static>,
}

impl Board {
    fn convert(&mut self) -> Option<u16> {
        self.adc.blocking_read(&mut self.temperature).ok()
    }
}

impl Sources for Board {
    fn list(&self) -> &'static [SourceInfo] {
        LIST
    }

    async fn sample(&mut self, index: usize) -> Option<u8> {
        match index {
            0 => Some(RoscRng::next_u8()),
            1 => self.convert().map(|v| v as u8),
            2 => {
                // SysTick counts down from 2^24 - 1 at the core clock.
                let start = SYST::get_current();
                self.convert()?;
                Some(start.wrapping_sub(SYST::get_current()) as u8)
            }
            _ => None,
        }
    }
}
