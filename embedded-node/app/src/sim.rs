//! Host doubles of the board, for tests: NOR flash that loses power mid-write, a virtual
//! clock, and a radio that records what it sends and replays what it is given.
//!
//! They are plain `no_std` code with no feature gate, so the host tests build the crate
//! exactly as the firmware does; nothing here is referenced by a board, so none of it
//! reaches a firmware image.

use core::cell::Cell;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use heapless::{Deque, Vec};
use slope_radios::airtime::Modulation;
use slope_radios::meta::RxMeta;
use slope_radios::radio::{Radio, Tune, TxParams, TxReport};

use crate::clock::Clock;

/// Largest simulated flash.
pub const MEM_FLASH_MAX: usize = 64 * 1024;
/// Pages of [`MemFlash`] (STM32WL geometry: 2 KiB pages, 8-byte programming).
pub const MEM_PAGE: usize = 2048;

/// NOR flash in RAM with STM32WL geometry and an optional power-cut budget.
///
/// Like the STM32WL's ECC-protected flash, a power cut in the middle of programming a
/// 64-bit double-word leaves it unreadable (reads overlapping it fail, as
/// `slope_stm32wl_flash::EccFlash` reports a double ECC error), and so does a cut
/// erase for its whole page, until the page is erased again.
#[derive(Clone)]
pub struct MemFlash {
    bytes: [u8; MEM_FLASH_MAX],
    /// One bit per 8-byte double-word: unreadable (ECC error).
    poisoned: [u8; MEM_FLASH_MAX / 64],
    capacity: usize,
    erases: [u32; MEM_FLASH_MAX / MEM_PAGE],
    /// Operations left before the power is cut: one per erased page, one per programmed
    /// byte. `None`: never.
    budget: Option<usize>,
    cut: bool,
}

/// The simulated flash failed: the power was cut, or the request was malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemFlashError(pub NorFlashErrorKind);

impl NorFlashError for MemFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

impl MemFlash {
    /// An erased flash of `capacity` bytes (at most [`MEM_FLASH_MAX`]).
    pub fn new(capacity: usize, budget: Option<usize>) -> Self {
        Self {
            bytes: [0xff; MEM_FLASH_MAX],
            poisoned: [0; MEM_FLASH_MAX / 64],
            capacity: capacity.min(MEM_FLASH_MAX),
            erases: [0; MEM_FLASH_MAX / MEM_PAGE],
            budget,
            cut: false,
        }
    }

    /// Sets the power-cut budget and restores power.
    pub fn set_budget(&mut self, budget: Option<usize>) {
        self.budget = budget;
        self.cut = false;
    }

    /// Whether the power was cut.
    pub fn is_cut(&self) -> bool {
        self.cut
    }

    /// Makes the double-word holding `offset` unreadable (an ECC error) until its page
    /// is erased.
    pub fn poison(&mut self, offset: u32) {
        let dw = offset as usize / 8;
        if let Some(b) = self.poisoned.get_mut(dw / 8) {
            *b |= 1 << (dw % 8);
        }
    }

    fn poisoned(&self, start: usize, len: usize) -> bool {
        (start / 8..(start + len).div_ceil(8))
            .any(|dw| self.poisoned[dw / 8] & (1 << (dw % 8)) != 0)
    }

    fn set_page_poison(&mut self, page: usize, on: bool) {
        let bits = &mut self.poisoned[page / 64..(page + MEM_PAGE) / 64];
        bits.fill(if on { 0xff } else { 0 });
    }

    /// Erases per page so far.
    pub fn erase_counts(&self) -> &[u32] {
        &self.erases[..self.capacity / MEM_PAGE]
    }

    /// Spends `n` operations of the budget; returns how many may go ahead.
    fn spend(&mut self, n: usize) -> usize {
        match &mut self.budget {
            None => n,
            Some(b) => {
                let allowed = n.min(*b);
                *b -= allowed;
                if *b == 0 {
                    self.cut = true;
                }
                allowed
            }
        }
    }

    fn check(&self, offset: u32, len: usize, align: usize) -> Result<usize, MemFlashError> {
        if self.cut {
            return Err(MemFlashError(NorFlashErrorKind::Other));
        }
        let start = offset as usize;
        if !start.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(MemFlashError(NorFlashErrorKind::NotAligned));
        }
        match start.checked_add(len) {
            Some(end) if end <= self.capacity => Ok(start),
            _ => Err(MemFlashError(NorFlashErrorKind::OutOfBounds)),
        }
    }
}

impl ErrorType for MemFlash {
    type Error = MemFlashError;
}

impl ReadNorFlash for MemFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MemFlashError> {
        let start = self.check(offset, bytes.len(), 1)?;
        if self.poisoned(start, bytes.len()) {
            return Err(MemFlashError(NorFlashErrorKind::Other));
        }
        bytes.copy_from_slice(&self.bytes[start..start + bytes.len()]);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.capacity
    }
}

impl NorFlash for MemFlash {
    const WRITE_SIZE: usize = 8;
    const ERASE_SIZE: usize = MEM_PAGE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), MemFlashError> {
        let len = to.saturating_sub(from) as usize;
        let start = self.check(from, len, MEM_PAGE)?;
        for page in (start..start + len).step_by(MEM_PAGE) {
            if self.spend(1) == 0 {
                // Cut mid-erase: the page's contents and ECC are undefined.
                self.set_page_poison(page, true);
                return Err(MemFlashError(NorFlashErrorKind::Other));
            }
            self.bytes[page..page + MEM_PAGE].fill(0xff);
            self.set_page_poison(page, false);
            self.erases[page / MEM_PAGE] += 1;
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MemFlashError> {
        let start = self.check(offset, bytes.len(), 8)?;
        let allowed = self.spend(bytes.len());
        // NOR programming only clears bits.
        for (d, s) in self.bytes[start..start + allowed].iter_mut().zip(bytes) {
            *d &= *s;
        }
        if allowed < bytes.len() && !allowed.is_multiple_of(8) {
            // Cut in the middle of a double-word: its ECC does not match.
            self.poison((start + allowed) as u32);
        }
        if allowed < bytes.len() || self.cut {
            return Err(MemFlashError(NorFlashErrorKind::Other));
        }
        Ok(())
    }
}

/// A clock that jumps: sleeping moves time forward at once.
#[derive(Debug, Default)]
pub struct VirtualClock {
    now_us: Cell<u64>,
}

impl VirtualClock {
    /// A clock at `now_us`.
    pub fn at(now_us: u64) -> Self {
        Self {
            now_us: Cell::new(now_us),
        }
    }
}

impl Clock for VirtualClock {
    fn now_us(&self) -> u64 {
        self.now_us.get()
    }
    async fn sleep_until_us(&mut self, deadline_us: u64) {
        if deadline_us > self.now_us.get() {
            self.now_us.set(deadline_us);
        }
    }
}

/// Frames a [`SimRadio`] keeps.
pub const SIM_QUEUE: usize = 8;

/// One frame on the simulated air.
pub type SimFrame = Vec<u8, 255>;

/// A radio that records transmissions and hands out queued receptions, only while it is
/// tuned ([`Tune::listen_on`], until [`Tune::idle`]).
#[derive(Default)]
pub struct SimRadio {
    /// Frames transmitted since the last [`SimRadio::take_sent`].
    pub sent: Deque<(SimFrame, TxParams), SIM_QUEUE>,
    /// Frames to be received, in order.
    pub inbox: Deque<(SimFrame, RxMeta), SIM_QUEUE>,
    /// What the receiver is tuned to; `None` while idle (nothing is received).
    pub listening: Option<(u32, Modulation)>,
}

/// The simulated radio does not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Never;

impl core::fmt::Display for Never {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("never")
    }
}

impl Radio for SimRadio {
    type Error = Never;

    async fn transmit(&mut self, frame: &[u8], params: TxParams) -> Result<TxReport, Never> {
        let airtime_us = params.modulation.time_on_air_us(frame.len()).unwrap_or(0);
        if self.sent.is_full() {
            self.sent.pop_front();
        }
        let _ = self
            .sent
            .push_back((Vec::from_slice(frame).unwrap_or_default(), params));
        Ok(TxReport { airtime_us })
    }

    async fn receive(&mut self, buf: &mut [u8]) -> Result<(usize, RxMeta), Never> {
        if self.listening.is_none() {
            // Idle: hears nothing (the caller's receive window ends the wait).
            return core::future::pending().await;
        }
        match self.inbox.pop_front() {
            Some((frame, meta)) => {
                let n = frame.len().min(buf.len());
                buf[..n].copy_from_slice(&frame[..n]);
                Ok((n, meta))
            }
            // Nothing on the air: wait forever (the caller's receive window ends it).
            None => core::future::pending().await,
        }
    }
}

impl Tune for SimRadio {
    fn listen_on(&mut self, freq_hz: u32, modulation: Modulation) -> Result<(), Never> {
        self.listening = Some((freq_hz, modulation));
        Ok(())
    }

    async fn idle(&mut self) -> Result<(), Never> {
        self.listening = None;
        Ok(())
    }
}
