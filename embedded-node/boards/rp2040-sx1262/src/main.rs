//! Slope device firmware for a Raspberry Pi Pico with the Waveshare Pico-LoRa-SX1262
//! module: pins, clocks and peripherals only; the device role is `slope_firmware::node`.
//!
//! Wiring (Waveshare Pico-LoRa-SX1262): SPI1 on GP10 (SCK), GP11 (MOSI), GP12 (MISO),
//! NSS GP3, RESET GP15, BUSY GP2, DIO1 GP20; TCXO on DIO3 at 1.7 V; the module switches
//! its antenna from DIO2. The slope's state lives in the last 16 KiB of flash (`memory.x`).

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

mod entropy;

use core::cell::RefCell;

use cortex_m::peripheral::SCB;
use cortex_m::peripheral::syst::SystClkSource;
use embassy_executor::Spawner;
use embassy_rp::adc::{Adc, Channel, Config as AdcConfig};
use embassy_rp::flash::{Blocking, Flash};
use embassy_rp::gpio::{Input, Level, Output, Pull};
use embassy_rp::spi::{Config as SpiConfig, Spi};
use embassy_rp::{bind_interrupts, dma, peripherals};
use embassy_time::Delay;
use embedded_hal_bus::spi::ExclusiveDevice;
use lora_phy::LoRa;
use lora_phy::iv::GenericSx126xInterfaceVariant;
use lora_phy::sx126x::{self, Sx126x, Sx1262, TcxoCtrlVoltage};
use slope_firmware::board::{self, halt};
use slope_firmware::flash::{FlashSlots, Shared};
use slope_firmware::node::Config;

// lora-phy needs a defmt transport in every build (see Cargo.toml).
use defmt_rtt as _;
#[cfg(not(feature = "defmt"))]
use panic_halt as _;
#[cfg(feature = "defmt")]
use panic_probe as _;

/// Size of the Pico's flash.
const FLASH_SIZE: usize = 2 * 1024 * 1024;
/// Offset of the state sectors from the start of flash (`STATE` in memory.x).
const STATE_OFFSET: u32 = 0x1F_C000;
/// Sectors per slot bank: 2 × 2 sectors of 4 KiB = the 16 KiB `STATE` region.
const STATE_PAGES: usize = 2;
/// Offset of the compact suite's state sectors (`COMPACT` in memory.x), laid out the
/// same way.
const COMPACT_OFFSET: u32 = 0x1F_8000;
const COMPACT_PAGES: usize = 2;

bind_interrupts!(struct Irqs {
    DMA_IRQ_0 => dma::InterruptHandler<peripherals::DMA_CH0>, dma::InterruptHandler<peripherals::DMA_CH1>;
});

macro_rules! log {
    ($level:ident, $($arg:tt)*) => {
        #[cfg(feature = "defmt")]
        defmt::$level!($($arg)*);
    };
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let p = embassy_rp::init(Default::default());
    log!(info, "slope firmware, RP2040 + SX1262");

    // SysTick free-running at the core clock, for the clock-jitter source.
    if let Some(mut core) = cortex_m::Peripherals::take() {
        core.SYST.set_clock_source(SystClkSource::Core);
        core.SYST.set_reload(0x00ff_ffff);
        core.SYST.clear_current();
        core.SYST.enable_counter();
    }

    let sources = entropy::Board {
        adc: Adc::new_blocking(p.ADC, AdcConfig::default()),
        temperature: Channel::new_temp_sensor(p.ADC_TEMP_SENSOR),
    };

    // One driver, two regions (the slope, the compact state).
    let flash = RefCell::new(Flash::<_, Blocking, FLASH_SIZE>::new_blocking(p.FLASH));
    let slots = match FlashSlots::<_, STATE_PAGES>::new(Shared(&flash), STATE_OFFSET) {
        Ok(s) => s,
        Err(e) => halt(e).await,
    };
    let compact = match FlashSlots::<_, COMPACT_PAGES>::new(Shared(&flash), COMPACT_OFFSET) {
        Ok(s) => s,
        Err(e) => halt(e).await,
    };

    let nss = Output::new(p.PIN_3, Level::High);
    let reset = Output::new(p.PIN_15, Level::High);
    let dio1 = Input::new(p.PIN_20, Pull::None);
    let busy = Input::new(p.PIN_2, Pull::None);
    let spi = Spi::new(
        p.SPI1,
        p.PIN_10,
        p.PIN_11,
        p.PIN_12,
        p.DMA_CH0,
        p.DMA_CH1,
        Irqs,
        SpiConfig::default(),
    );
    let spi = match ExclusiveDevice::new(spi, nss, Delay) {
        Ok(s) => s,
        Err(e) => halt(e).await,
    };
    let iv = match GenericSx126xInterfaceVariant::new(reset, dio1, busy, None, None) {
        Ok(iv) => iv,
        Err(e) => halt(e).await,
    };
    let chip = sx126x::Config {
        chip: Sx1262,
        tcxo_ctrl: Some(TcxoCtrlVoltage::Ctrl1V7),
        use_dcdc: true,
        rx_boost: false,
    };
    let lora = match LoRa::new(Sx126x::new(spi, iv, chip), true, Delay).await {
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
