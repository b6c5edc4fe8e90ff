//! For comparison only: the incumbent on the same board and toolchain. A minimal LoRaWAN
//! 1.0.x class A device with OTAA (`lorawan-device`) that joins, then sends one
//! confirmed-free uplink every 15 minutes, like a Slope device's attestations.
//!
//! It needs what Slope removes: a DevEUI, a JoinEUI and an AppKey provisioned into every
//! device and registered with the network server (the zeros below are placeholders).

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use embassy_executor::Spawner;
use embassy_stm32::gpio::{Level, Output, Speed};
use embassy_stm32::rng::{self, Rng};
use embassy_stm32::spi::Spi;
use embassy_stm32::{bind_interrupts, dma, peripherals};
use embassy_time::{Delay, Duration, Instant, Timer};
use lora_phy::LoRa;
use lora_phy::lorawan_radio::LorawanRadio;
use lora_phy::sx126x::{self, Stm32wl, Sx126x, TcxoCtrlVoltage};
use lorawan_device::async_device::{Device, JoinMode, region};
use lorawan_device::default_crypto::DefaultFactory;
use lorawan_device::{AppEui, AppKey, DevEui};
use slope_stm32wl_subghz::{InterruptHandler, RfSwitch, SubGhz, SubGhzSpi};

use defmt_rtt as _;
#[cfg(not(feature = "defmt"))]
use panic_halt as _;
#[cfg(feature = "defmt")]
use panic_probe as _;

/// Provisioned per device: exactly what a Slope device does without.
const DEV_EUI: [u8; 8] = [0; 8];
const JOIN_EUI: [u8; 8] = [0; 8];
const APP_KEY: [u8; 16] = [0; 16];
const MAX_TX_POWER: u8 = 14;

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

/// lorawan-device's timer over embassy-time (its own `embassy-time` feature pins an
/// older embassy-time than the HAL's).
struct EmbassyTimer(Instant);

impl lorawan_device::async_device::radio::Timer for EmbassyTimer {
    fn reset(&mut self) {
        self.0 = Instant::now();
    }
    async fn at(&mut self, millis: u64) {
        Timer::at(self.0 + Duration::from_millis(millis)).await;
    }
    async fn delay_ms(&mut self, millis: u64) {
        Timer::after_millis(millis).await;
    }
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let mut config = embassy_stm32::Config::default();
    {
        use embassy_stm32::rcc::*;
        config.rcc.msi = Some(MSIRange::RANGE48M);
        config.rcc.sys = Sysclk::MSI;
        config.rcc.mux.rngsel = mux::Rngsel::MSI;
    }
    let p = embassy_stm32::init(config);

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
    let Ok(lora) = LoRa::new(
        Sx126x::new(spi, SubGhz::new(Irqs, switch), chip),
        true,
        Delay,
    )
    .await
    else {
        log!(error, "radio setup failed");
        return;
    };
    let radio: LorawanRadio<_, _, MAX_TX_POWER> = lora.into();
    let region = region::Configuration::new(region::Region::EU868);
    let mut device: Device<_, DefaultFactory, _, _> = Device::new(
        region,
        radio,
        EmbassyTimer(Instant::now()),
        Rng::new(p.RNG, Irqs),
    );

    let join = JoinMode::OTAA {
        deveui: DevEui::from(DEV_EUI),
        appeui: AppEui::from(JOIN_EUI),
        appkey: AppKey::from(APP_KEY),
    };
    loop {
        match device.join(&join).await {
            Ok(_) => break,
            Err(_) => {
                log!(warn, "join failed; retrying in 60 s");
                Timer::after_secs(60).await;
            }
        }
    }
    log!(info, "joined");
    let mut counter = 0u32;
    loop {
        counter = counter.wrapping_add(1);
        if device.send(&counter.to_le_bytes(), 1, false).await.is_err() {
            log!(warn, "uplink failed");
        }
        Timer::after_secs(900).await;
    }
}
