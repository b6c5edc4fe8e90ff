//! # slope-stm32wl-subghz
//!
//! The STM32WL's integrated SX126x ("SUBGHZ" radio) for lora-phy: an
//! [`InterfaceVariant`] (reset, busy and interrupt through the RCC/PWR registers and the
//! `SUBGHZ_RADIO` interrupt, RF switch through the board's pins) and an async
//! [`SpiDevice`] over the internal SUBGHZSPI bus whose chip select is a PWR register bit.
//!
//! Used by every STM32WL board of the workspace (the Slope firmware and the LoRaWAN
//! comparison), so the boards keep only pins and clocks.
//!
//! ## Why this crate is not `forbid(unsafe_code)`
//!
//! Two operations are `unsafe` in embassy-stm32 and cannot be avoided: implementing an
//! interrupt handler (`Handler::on_interrupt` is an `unsafe fn`, called only by the
//! vector table) and unmasking the interrupt in the NVIC (`InterruptExt::enable`, unsafe
//! because an unmasked interrupt may break a critical section that relies on it being
//! masked). Each use carries its argument; nothing else here is unsafe.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use embassy_stm32::interrupt::InterruptExt;
use embassy_stm32::{interrupt, pac};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::Timer;
use embedded_hal::digital::OutputPin;
use embedded_hal_async::spi::{ErrorType, Operation, SpiBus, SpiDevice};
use lora_phy::DelayNs;
use lora_phy::mod_params::RadioError;
use lora_phy::mod_traits::InterfaceVariant;

/// Raised by the radio interrupt, awaited by [`SubGhz::await_irq`].
static RADIO_IRQ: Signal<CriticalSectionRawMutex, ()> = Signal::new();

/// The `SUBGHZ_RADIO` interrupt handler: bind it with `bind_interrupts!`.
pub struct InterruptHandler;

impl interrupt::typelevel::Handler<interrupt::typelevel::SUBGHZ_RADIO> for InterruptHandler {
    unsafe fn on_interrupt() {
        // The radio holds its IRQ line until lora-phy clears the status over SPI, so the
        // interrupt is masked here and unmasked again by the next `await_irq`.
        interrupt::SUBGHZ_RADIO.disable();
        RADIO_IRQ.signal(());
    }
}

/// The board's RF switch, when it has one (RAK3172: two control pins; LoRa-E5: two
/// control pins, one of them inverted).
pub struct RfSwitch<P> {
    /// Driven high to receive.
    pub rx: Option<P>,
    /// Driven high to transmit.
    pub tx: Option<P>,
}

/// The SUBGHZ radio's interface variant.
pub struct SubGhz<P> {
    switch: RfSwitch<P>,
}

impl<P: OutputPin> SubGhz<P> {
    /// Takes the interrupt binding (proof that [`InterruptHandler`] is installed) and the
    /// board's RF switch.
    pub fn new(
        _irq: impl interrupt::typelevel::Binding<interrupt::typelevel::SUBGHZ_RADIO, InterruptHandler>
        + 'static,
        switch: RfSwitch<P>,
    ) -> Self {
        interrupt::SUBGHZ_RADIO.disable();
        Self { switch }
    }

    fn set(pin: &mut Option<P>, high: bool, err: RadioError) -> Result<(), RadioError> {
        match pin {
            Some(p) if high => p.set_high().map_err(|_| err),
            Some(p) => p.set_low().map_err(|_| err),
            None => Ok(()),
        }
    }
}

impl<P: OutputPin> InterfaceVariant for SubGhz<P> {
    async fn reset(&mut self, delay: &mut impl DelayNs) -> Result<(), RadioError> {
        // RM0453 §6.6.1: the radio is reset through RCC_CSR.RFRST.
        pac::RCC.csr().modify(|w| w.set_rfrst(true));
        delay.delay_us(100).await;
        pac::RCC.csr().modify(|w| w.set_rfrst(false));
        Ok(())
    }

    async fn wait_on_busy(&mut self) -> Result<(), RadioError> {
        // PWR_SR2.RFBUSYS mirrors the radio's BUSY line; it clears within microseconds
        // except while the radio wakes up, which lora-phy only asks for right after.
        for _ in 0..100_000u32 {
            if !pac::PWR.sr2().read().rfbusys() {
                return Ok(());
            }
        }
        Err(RadioError::Busy)
    }

    async fn await_irq(&mut self) -> Result<(), RadioError> {
        RADIO_IRQ.reset();
        interrupt::SUBGHZ_RADIO.unpend();
        // SAFETY: no critical section of this firmware relies on SUBGHZ_RADIO being
        // masked; the handler above only masks itself and signals a critical-section
        // mutex, which is sound at any priority.
        unsafe { interrupt::SUBGHZ_RADIO.enable() };
        RADIO_IRQ.wait().await;
        Ok(())
    }

    async fn enable_rf_switch_rx(&mut self) -> Result<(), RadioError> {
        Self::set(&mut self.switch.tx, false, RadioError::RfSwitchTx)?;
        Self::set(&mut self.switch.rx, true, RadioError::RfSwitchRx)
    }

    async fn enable_rf_switch_tx(&mut self) -> Result<(), RadioError> {
        Self::set(&mut self.switch.rx, false, RadioError::RfSwitchRx)?;
        Self::set(&mut self.switch.tx, true, RadioError::RfSwitchTx)
    }

    async fn disable_rf_switch(&mut self) -> Result<(), RadioError> {
        Self::set(&mut self.switch.rx, false, RadioError::RfSwitchRx)?;
        Self::set(&mut self.switch.tx, false, RadioError::RfSwitchTx)
    }
}

/// Asserts the SUBGHZSPI chip select (PWR_SUBGHZSPICR.NSS low) for its lifetime, so the
/// bus is released even when a transaction future is dropped half-way (a receive window
/// that closes during a read).
struct Selected;

impl Selected {
    fn new() -> Self {
        pac::PWR.subghzspicr().modify(|w| w.set_nss(false));
        Selected
    }
}

impl Drop for Selected {
    fn drop(&mut self) {
        pac::PWR.subghzspicr().modify(|w| w.set_nss(true));
    }
}

/// The SUBGHZSPI bus as an `SpiDevice`: chip select is a PWR register bit.
pub struct SubGhzSpi<B>(pub B);

impl<B: SpiBus> ErrorType for SubGhzSpi<B> {
    type Error = B::Error;
}

impl<B: SpiBus> SpiDevice for SubGhzSpi<B> {
    async fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), B::Error> {
        let selected = Selected::new();
        let mut result = Ok(());
        for op in ops {
            result = match op {
                Operation::Read(buf) => self.0.read(buf).await,
                Operation::Write(buf) => self.0.write(buf).await,
                Operation::Transfer(read, write) => self.0.transfer(read, write).await,
                Operation::TransferInPlace(buf) => self.0.transfer_in_place(buf).await,
                Operation::DelayNs(ns) => match self.0.flush().await {
                    Ok(()) => {
                        Timer::after_nanos(u64::from(*ns)).await;
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
            };
            if result.is_err() {
                break;
            }
        }
        // Flush before releasing chip select, whatever happened.
        let flushed = self.0.flush().await;
        drop(selected);
        result.and(flushed)
    }
}
