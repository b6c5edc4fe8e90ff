//! Slope device firmware for STM32WLE5 boards (RAK3172, Seeed LoRa-E5): pins, clocks and
//! peripherals only; the device role is `slope_firmware::node`.
//!
//! Wiring (RAK3172): SUBGHZ radio with a 1.7 V TCXO on DIO3, RF switch on PB8 (receive)
//! and PC13 (transmit), high-power PA. The slope's state lives in the last 32 KiB of
//! flash, the compact suite's state in the 32 KiB before it (`memory.x`).

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

mod entropy;

use core::cell::RefCell;

use cortex_m::peripheral::SCB;
use embassy_executor::Spawner;
use embassy_stm32::adc::{Adc, Clock as AdcClock, Presc};
use embassy_stm32::flash::Flash;
use embassy_stm32::gpio::{Level, Output, Speed};
use embassy_stm32::rng::{self, Rng};
use embassy_stm32::spi::Spi;
use embassy_stm32::{bind_interrupts, dma, peripherals};
use embassy_time::Delay;
use lora_phy::LoRa;
use lora_phy::sx126x::{self, Stm32wl, Sx126x, TcxoCtrlVoltage};
use slope_firmware::board::{self, halt};
use slope_firmware::flash::{FlashSlots, Shared};
use slope_firmware::node::Config;
use slope_stm32wl_flash::EccFlash;
use slope_stm32wl_subghz::{InterruptHandler, RfSwitch, SubGhz, SubGhzSpi};

// lora-phy needs a defmt transport in every build (see Cargo.toml).
use defmt_rtt as _;
#[cfg(not(feature = "defmt"))]
use panic_halt as _;
#[cfg(feature = "defmt")]
use panic_probe as _;

/// Offset of the state pages from the start of flash (`STATE` in memory.x).
const STATE_OFFSET: u32 = 0x3_8000;
/// Pages per slot bank: 2 × 8 pages of 2 KiB = the 32 KiB `STATE` region.
const STATE_PAGES: usize = 8;
/// Offset of the compact suite's state pages (`COMPACT` in memory.x): 2 × 8 pages, so
/// a compact device writing every cycle wears its pages as the slope does.
const COMPACT_OFFSET: u32 = 0x3_0000;
const COMPACT_PAGES: usize = 8;

bind_interrupts!(struct Irqs {
    SUBGHZ_RADIO => InterruptHandler;
    RNG => rng::InterruptHandler<peripherals::RNG>;
    DMA1_CHANNEL1 => dma::InterruptHandler<peripherals::DMA1_CH1>;
    DMA1_CHANNEL2 => dma::InterruptHandler<peripherals::DMA1_CH2>;
});

macro_rules! log {
    ($level:ident, $($arg:tt)*) => {
        #[cfg(feature = "defmt")]
        defmt::$level!($($arg)*);
    };
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let mut config = embassy_stm32::Config::default();
    {
        use embassy_stm32::rcc::*;
        // Core on the 48 MHz MSI, the ADC on HSI16: two independent RC oscillators, whose
        // relative jitter is one of the entropy sources. The RNG runs from the MSI.
        config.rcc.msi = Some(MSIRange::RANGE48M);
        config.rcc.sys = Sysclk::MSI;
        config.rcc.hsi = true;
        config.rcc.mux.rngsel = mux::Rngsel::MSI;
        config.rcc.mux.adcsel = mux::Adcsel::HSI;
    }
    let p = embassy_stm32::init(config);
    log!(info, "slope firmware, STM32WLE5");

    // Cycle counter for the clock-jitter source.
    let mut core = cortex_m::Peripherals::take();
    if let Some(core) = core.as_mut() {
        core.DCB.enable_trace();
        core.DWT.enable_cycle_counter();
    }

    let adc = Adc::new_with_clock(p.ADC1, AdcClock::Async { div: Presc::DIV1 });
    let temperature = adc.enable_temperature();
    let sources = entropy::Board::new(Rng::new(p.RNG, Irqs), adc, temperature);

    // A double ECC error (a double-word torn by a power cut) reads as an error, not an NMI.
    // One driver, two regions (the slope, the compact state).
    let flash = RefCell::new(EccFlash::new(Flash::new_blocking(p.FLASH)));
    let slots = match FlashSlots::<_, STATE_PAGES>::new(Shared(&flash), STATE_OFFSET) {
        Ok(s) => s,
        Err(e) => halt(e).await,
    };
    let compact = match FlashSlots::<_, COMPACT_PAGES>::new(Shared(&flash), COMPACT_OFFSET) {
        Ok(s) => s,
        Err(e) => halt(e).await,
    };

    let switch = RfSwitch {
        rx: Some(Output::new(p.PB8, Level::Low, Speed::VeryHigh)),
        tx: Some(Output::new(p.PC13, Level::Low, Speed::VeryHigh)),
    };
    let spi = SubGhzSpi(Spi::new_subghz(p.SUBGHZSPI, p.DMA1_CH1, p.DMA1_CH2, Irqs));
    let chip = sx126x::Config {
        chip: Stm32wl {
            use_high_power_pa: true,
        },
        tcxo_ctrl: Some(TcxoCtrlVoltage::Ctrl1V7),
        use_dcdc: true,
        rx_boost: false,
    };
    let lora = match LoRa::new(
        Sx126x::new(spi, SubGhz::new(Irqs, switch), chip),
        true,
        Delay,
    )
    .await
    {
        Ok(l) => l,
        Err(e) => halt(e).await,
    };
    board::run_lora(
        Config::eu868(),
        slots,
        compact,
        lora,
        sources,
        SCB::sys_reset,
    )
    .await
}
