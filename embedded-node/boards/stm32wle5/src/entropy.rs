//! The STM32WLE5's entropy sources, as 8-bit symbols for the health tests.
//!
//! | source | symbol | claimed min-entropy |
//! |---|---|---|
//! | TRNG (RNG peripheral, analogue ring oscillators) | one byte of a 32-bit word | 4 bits |
//! | ADC noise (internal temperature sensor, shortest sampling) | low byte of the 12-bit reading | ½ bit |
//! | clock jitter (ADC on HSI16 timed by the core on MSI, two RC oscillators) | low byte of the conversion time in core cycles | ½ bit |
//!
//! The claims are deliberately below what the sources are characterised for; the health
//! tests hold every source to its claim and drop it on the first failure.

use cortex_m::peripheral::DWT;
use embassy_stm32::adc::{Adc, AdcChannel, SampleTime, Temperature};
use embassy_stm32::peripherals::{ADC1, RNG};
use embassy_stm32::rng::Rng;
use slope_firmware::harvest::{SourceInfo, Sources};
use slope_firmware::health::MinEntropy;

const LIST: &[SourceInfo] = &[
    SourceInfo {
        name: "trng",
        min_entropy: MinEntropy::FourBits,
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
    pub rng: Rng<'static, RNG>,
    pub adc: Adc<'static, ADC1>,
    pub temperature: Temperature,
    /// Bytes of the last TRNG word not handed out yet.
    word: [u8; 4],
    left: usize,
}

impl Board {
    pub fn new(rng: Rng<'static, RNG>, adc: Adc<'static, ADC1>, temperature: Temperature) -> Self {
        Self {
            rng,
            adc,
            temperature,
            word: [0; 4],
            left: 0,
        }
    }

    fn convert(&mut self) -> u16 {
        self.adc
            .blocking_read(&mut self.temperature, SampleTime::CYCLES1_5)
    }
}

impl Sources for Board {
    fn list(&self) -> &'static [SourceInfo] {
        LIST
    }

    async fn sample(&mut self, index: usize) -> Option<u8> {
        match index {
            0 => {
                if self.left == 0 {
                    // A seed or clock error of the RNG is a read failure, not a symbol.
                    self.rng.async_fill_bytes(&mut self.word).await.ok()?;
                    self.left = 4;
                }
                self.left -= 1;
                Some(self.word[self.left])
            }
            1 => Some(self.convert() as u8),
            2 => {
                let start = DWT::cycle_count();
                let _ = self.convert();
                Some(DWT::cycle_count().wrapping_sub(start) as u8)
            }
            _ => None,
        }
    }
}

// `AdcChannel` is implemented for `Temperature` by embassy-stm32; keep the bound visible.
const _: fn() = || {
    fn is_channel<C: AdcChannel<ADC1>>() {}
    is_channel::<Temperature>();
};
