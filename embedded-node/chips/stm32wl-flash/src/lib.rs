//! # slope-stm32wl-flash
//!
//! The STM32WL's internal flash, with an uncorrectable ECC error on a read reported as a
//! read error ([`Error::Ecc`]) instead of a processor stuck in the NMI handler.
//!
//! ## Why
//!
//! The STM32WL stores an 8-bit ECC with every 64-bit double-word of flash. A power cut
//! while a double-word is being programmed (or a page erased) can leave it with a double
//! ECC error; reading it later sets `FLASH_ECCR.ECCD` and raises the non-maskable
//! interrupt. embassy-stm32 0.6 reads flash with plain loads (`Flash::blocking_read` is a
//! `memcpy`) and knows nothing of ECC, and cortex-m-rt's default NMI handler spins
//! forever: a board cut at the wrong instant of a state write would hang at every boot,
//! when the slot scan reads the torn page again.
//!
//! ## How
//!
//! [`EccFlash`] wraps the blocking driver and arms a flag for the duration of each read.
//! The [`NonMaskableInt`](NonMaskableInt) handler defined here, when the NMI is a double
//! ECC error in user flash (`ECCD` set, `SYSF_ECC` clear) while a read is armed, clears
//! `ECCD`, records the event and returns: the load that hit the error completes with
//! undefined data, which the read discards, returning [`Error::Ecc`]. Any other NMI (an
//! ECC error outside an armed read, e.g. in code; a clock-security event) halts as the
//! default handler did. `FLASH_ECCR.ADDR_ECC` is kept for diagnostics
//! ([`last_ecc_address`]) but not used to attribute the error to the read: the window
//! is the copy loop alone.
//!
//! `slope_firmware::flash::FlashSlots` then treats the page as unreadable: an unreadable
//! header is a page that was never completed, an unreadable record is an invalid slot
//! (the write that tore it never returned, so nothing was sent from it).
//!
//! ## Why this crate is not `forbid(unsafe_code)`
//!
//! cortex-m-rt requires a `NonMaskableInt` handler to be an `unsafe fn` (it runs at any
//! point, even inside critical sections). The handler touches only two atomics and the
//! `FLASH_ECCR` register through embassy-stm32's PAC; nothing else here is unsafe.
//!
//! Not yet verified on hardware (no power-cut rig): the host tests of `FlashSlots` cover
//! its side of the contract with a simulated flash that fails reads of torn double-words.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering, compiler_fence};

use cortex_m_rt::exception;
use embassy_stm32::pac;
use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// A read is in progress: a double ECC error now is the read's.
static ARMED: AtomicBool = AtomicBool::new(false);
/// The NMI handler saw a double ECC error during the armed read.
static DETECTED: AtomicBool = AtomicBool::new(false);
/// `FLASH_ECCR` of the last double ECC error handled (0: none).
static LAST_ECCR: AtomicU32 = AtomicU32::new(0);

/// An error of [`EccFlash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The wrapped driver failed.
    Flash(E),
    /// The read hit a double-word with an uncorrectable ECC error (its data is lost).
    Ecc,
}

impl<E: NorFlashError> NorFlashError for Error<E> {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::Flash(e) => e.kind(),
            Self::Ecc => NorFlashErrorKind::Other,
        }
    }
}

/// The flash driver `F` (embassy-stm32's blocking `Flash`) with ECC-checked reads.
pub struct EccFlash<F> {
    flash: F,
}

impl<F> EccFlash<F> {
    /// Wraps the driver. The NMI handler of this crate is linked in with it.
    pub fn new(flash: F) -> Self {
        Self { flash }
    }
}

/// `FLASH_ECCR.ADDR_ECC` of the last double ECC error reported as [`Error::Ecc`].
pub fn last_ecc_address() -> Option<u32> {
    let eccr = pac::flash::regs::Eccr(LAST_ECCR.load(Ordering::Relaxed));
    eccr.eccd().then(|| eccr.addr_ecc())
}

impl<F: ErrorType> ErrorType for EccFlash<F> {
    type Error = Error<F::Error>;
}

impl<F: ReadNorFlash> ReadNorFlash for EccFlash<F> {
    const READ_SIZE: usize = F::READ_SIZE;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        DETECTED.store(false, Ordering::SeqCst);
        ARMED.store(true, Ordering::SeqCst);
        compiler_fence(Ordering::SeqCst);
        let result = self.flash.read(offset, bytes);
        // The NMI is taken at the next instruction boundary after the faulting load;
        // complete every access before disarming.
        cortex_m::asm::dsb();
        cortex_m::asm::isb();
        compiler_fence(Ordering::SeqCst);
        ARMED.store(false, Ordering::SeqCst);
        result.map_err(Error::Flash)?;
        if DETECTED.swap(false, Ordering::SeqCst) {
            bytes.fill(0);
            return Err(Error::Ecc);
        }
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.flash.capacity()
    }
}

impl<F: NorFlash> NorFlash for EccFlash<F> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.flash.erase(from, to).map_err(Error::Flash)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.flash.write(offset, bytes).map_err(Error::Flash)
    }
}

/// The NMI handler: absorbs a double ECC error in user flash during an armed read;
/// halts on anything else, as cortex-m-rt's default handler does.
#[exception]
unsafe fn NonMaskableInt() {
    let eccr = pac::FLASH.eccr().read();
    if eccr.eccd() && !eccr.sysf_ecc() && ARMED.load(Ordering::SeqCst) {
        // ECCD (and ECCC) are write-1-to-clear: writing the value back clears them and
        // keeps ECCCIE.
        pac::FLASH.eccr().write_value(eccr);
        LAST_ECCR.store(eccr.0, Ordering::Relaxed);
        DETECTED.store(true, Ordering::SeqCst);
        return;
    }
    loop {
        compiler_fence(Ordering::SeqCst);
    }
}
