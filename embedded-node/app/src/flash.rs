//! The device state in the MCU's internal flash: the two slots of
//! `slope_node::device::storage::TwoSlot`, each a ring of erase pages for wear levelling.
//!
//! [`FlashSlots`] implements `Slots` over any blocking `embedded-storage` `NorFlash`
//! (embassy-stm32's and embassy-rp's flash drivers both are). Slot `s` is a bank of `N`
//! pages; each write to it goes to the bank's next page, which is erased and programmed
//! from its start with
//!
//! ```text
//! generation (u32 LE) ‖ !generation (u32 LE) ‖ TwoSlot record ‖ 0xFF padding
//! ```
//!
//! and a read of slot `s` returns the record of the bank's page with the highest valid
//! generation. Atomicity stays `TwoSlot`'s: it only ever writes the slot that does *not*
//! hold the newest record, so a write torn anywhere (in the generation header or in the
//! record) damages at most the bank being written, and the other bank still holds the
//! newest complete state. Only the oldest page of that bank is erased first.
//!
//! Unreadable flash: on the STM32WL a power cut in the middle of programming a 64-bit
//! double-word (or erasing a page) can leave an uncorrectable ECC error, and reading it
//! raises an NMI; the board's driver (`slope_stm32wl_flash::EccFlash`) turns that into a
//! read error. A read of an in-range, aligned region (the layout is checked by
//! [`FlashSlots::new`]) fails for no other reason, so a page whose header cannot be read
//! is skipped like a torn header, and a slot whose record cannot be read reads as no
//! valid record: that write never returned, so nothing was sent from it, and `TwoSlot`
//! takes the other slot. Only when the records of *both* banks are unreadable is it an
//! error ([`FlashError::Unreadable`]): one power cut touches one bank, so this is a
//! failing flash, and the device stops rather than start over with a new identity.
//!
//! Wear: every page is erased once every `2 N` commits. With `N = 8` (16 pages of 2 KiB on
//! an STM32WL, rated 10 000 cycles) and one attestation every 15 minutes, a page sees
//! about 2 200 erases a year.

use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};
use slope_node::device::storage::{MAX_SLOT, Slots};

/// Bytes programmed per flash write call (a multiple of every supported write size).
const CHUNK: usize = 64;
/// The generation header in front of each page's record.
const HEADER: usize = 8;

/// Why a [`FlashSlots`] layout was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LayoutError {
    /// The region does not start on an erase-page boundary.
    Unaligned,
    /// The region runs past the end of the flash, or `N` is 0.
    OutOfRange,
    /// This flash's write or read size does not divide the programming chunk, or its
    /// pages are smaller than the generation header plus a state record.
    UnsupportedFlash,
}

/// A flash failure, or a record too large for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FlashError {
    /// The flash driver failed.
    Flash(FlashErrorKind),
    /// The record is longer than a slot.
    TooLarge,
    /// The newest records of both banks are unreadable (ECC errors): the flash is
    /// failing, not torn by one power cut.
    Unreadable,
}

/// `embedded_storage::nor_flash::NorFlashErrorKind`, with `defmt` support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FlashErrorKind {
    /// An offset or length was not aligned to the flash's unit.
    NotAligned,
    /// Out of the flash's range.
    OutOfBounds,
    /// Anything else the driver reports (a programming or erase failure).
    Other,
}

fn kind<E: NorFlashError>(e: E) -> FlashError {
    FlashError::Flash(match e.kind() {
        NorFlashErrorKind::NotAligned => FlashErrorKind::NotAligned,
        NorFlashErrorKind::OutOfBounds => FlashErrorKind::OutOfBounds,
        _ => FlashErrorKind::Other,
    })
}

/// Two banks of `N` erase pages each, from one page-aligned offset.
pub struct FlashSlots<F, const N: usize> {
    flash: F,
    base: u32,
    page: u32,
    slot_len: usize,
    /// Whether the last read of each bank found its newest record unreadable.
    unreadable: [bool; 2],
}

impl<F: NorFlash, const N: usize> FlashSlots<F, N> {
    /// Bytes of flash the slots occupy: `2 N` erase pages.
    pub const fn region_len() -> u32 {
        (2 * N * F::ERASE_SIZE) as u32
    }

    /// Slots in `2 N` erase pages from `base` (relative to the driver's start, a
    /// multiple of the erase size).
    pub fn new(flash: F, base: u32) -> Result<Self, LayoutError> {
        let page = F::ERASE_SIZE;
        if !CHUNK.is_multiple_of(F::WRITE_SIZE)
            || !CHUNK.is_multiple_of(F::READ_SIZE)
            || page < HEADER + slope_node::device::STATE_MAX + 32
        {
            return Err(LayoutError::UnsupportedFlash);
        }
        if !base.is_multiple_of(page as u32) {
            return Err(LayoutError::Unaligned);
        }
        let fits = base
            .checked_add(Self::region_len())
            .is_some_and(|end| end as usize <= flash.capacity());
        if N == 0 || !fits {
            return Err(LayoutError::OutOfRange);
        }
        Ok(Self {
            flash,
            base,
            page: page as u32,
            slot_len: (page - HEADER).min(MAX_SLOT),
            unreadable: [false; 2],
        })
    }

    /// The flash driver (for diagnostics, and to take a simulated flash's contents
    /// across a simulated reboot).
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// Gives the driver back (a simulated reboot in tests).
    pub fn into_flash(self) -> F {
        self.flash
    }

    fn page_offset(&self, slot: usize, index: usize) -> u32 {
        self.base + ((slot & 1) * N + index) as u32 * self.page
    }

    /// The generation of a page, if its header is intact (and readable).
    fn generation(&mut self, offset: u32) -> Option<u32> {
        let mut h = [0u8; CHUNK];
        let n = HEADER.next_multiple_of(F::READ_SIZE);
        // Unreadable (ECC): a header torn by a power cut, like one that reads wrong.
        self.flash.read(offset, &mut h[..n]).ok()?;
        let g = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let inv = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        (g == !inv).then_some(g)
    }

    /// (page index, generation) of the bank's newest page with an intact header.
    fn newest(&mut self, slot: usize) -> Option<(usize, u32)> {
        let mut best: Option<(usize, u32)> = None;
        for i in 0..N {
            if let Some(g) = self.generation(self.page_offset(slot, i))
                && best.is_none_or(|(_, b)| g > b)
            {
                best = Some((i, g));
            }
        }
        best
    }
}

impl<F: NorFlash, const N: usize> Slots for FlashSlots<F, N> {
    type Error = FlashError;

    fn slot_len(&self) -> usize {
        self.slot_len
    }

    fn read(&mut self, slot: usize, buf: &mut [u8]) -> Result<(), FlashError> {
        let len = buf.len().min(self.slot_len);
        let buf = &mut buf[..len];
        let bank = slot & 1;
        self.unreadable[bank] = false;
        let Some((index, _)) = self.newest(slot) else {
            // A bank never written reads as erased flash: no valid record.
            buf.fill(0xff);
            return Ok(());
        };
        let start = self.page_offset(slot, index) + HEADER as u32;
        let mut bounce = [0u8; CHUNK];
        let mut readable = true;
        for (i, piece) in buf.chunks_mut(CHUNK).enumerate() {
            // The record starts 8 bytes into the page; read whole READ_SIZE units.
            let n = piece.len().next_multiple_of(F::READ_SIZE).min(CHUNK);
            if self
                .flash
                .read(start + (i * CHUNK) as u32, &mut bounce[..n])
                .is_err()
            {
                readable = false;
                break;
            }
            piece.copy_from_slice(&bounce[..piece.len()]);
        }
        zeroize::Zeroize::zeroize(&mut bounce);
        if !readable {
            // Torn by a power cut (ECC): no valid record (`TwoSlot` records start with
            // a non-zero magic), unless the other bank is unreadable too.
            buf.fill(0);
            self.unreadable[bank] = true;
            if self.unreadable[bank ^ 1] {
                return Err(FlashError::Unreadable);
            }
        }
        Ok(())
    }

    fn write(&mut self, slot: usize, data: &[u8]) -> Result<(), FlashError> {
        if data.len() > self.slot_len {
            return Err(FlashError::TooLarge);
        }
        self.unreadable[slot & 1] = false;
        let (index, generation) = match self.newest(slot) {
            Some((i, g)) => ((i + 1) % N, g.wrapping_add(1)),
            None => (0, 1),
        };
        let offset = self.page_offset(slot, index);
        self.flash.erase(offset, offset + self.page).map_err(kind)?;
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(&generation.to_le_bytes());
        header[4..].copy_from_slice(&(!generation).to_le_bytes());
        // Program header ‖ data as one stream, CHUNK bytes at a time.
        let total = HEADER + data.len();
        let byte = |i: usize| {
            if i < HEADER {
                header[i]
            } else {
                data[i - HEADER]
            }
        };
        let mut chunk = [0xffu8; CHUNK];
        let mut at = 0;
        while at < total {
            let n = (total - at).min(CHUNK);
            chunk.fill(0xff);
            for (i, b) in chunk[..n].iter_mut().enumerate() {
                *b = byte(at + i);
            }
            let program = n.next_multiple_of(F::WRITE_SIZE);
            self.flash
                .write(offset + at as u32, &chunk[..program])
                .map_err(kind)?;
            at += n;
        }
        zeroize::Zeroize::zeroize(&mut chunk);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::MemFlash;
    use slope_node::device::storage::{Storage, TwoSlot};

    #[test]
    fn layout_is_checked() {
        let f = || MemFlash::new(8 * 2048, None);
        assert!(FlashSlots::<_, 4>::new(f(), 0).is_ok());
        assert_eq!(
            FlashSlots::<_, 4>::new(f(), 1024).err(),
            Some(LayoutError::Unaligned)
        );
        assert_eq!(
            FlashSlots::<_, 4>::new(f(), 2048).err(),
            Some(LayoutError::OutOfRange)
        );
        assert_eq!(
            FlashSlots::<_, 0>::new(f(), 0).err(),
            Some(LayoutError::OutOfRange)
        );
    }

    #[test]
    fn two_slot_round_trip_over_flash_and_pages_rotate() {
        let slots = FlashSlots::<_, 3>::new(MemFlash::new(8 * 2048, None), 2048).unwrap();
        let mut store = TwoSlot::new(slots);
        let mut buf = [0u8; 64];
        assert_eq!(store.load(&mut buf).unwrap(), None);
        for i in 0..20u8 {
            store.store(&[i; 40]).unwrap();
        }
        let flash = store.into_medium().into_flash();
        // 20 commits over 6 pages: every page was used, none more than 4 times.
        let erases = flash.erase_counts();
        assert!(
            erases[1..7].iter().all(|&e| (3..=4).contains(&e)),
            "{erases:?}"
        );
        assert_eq!(erases[0], 0);
        assert_eq!(erases[7], 0);
        let mut again = TwoSlot::new(FlashSlots::<_, 3>::new(flash, 2048).unwrap());
        let n = again.load(&mut buf).unwrap().unwrap();
        assert_eq!(&buf[..n], &[19u8; 40]);
    }

    #[test]
    fn an_unreadable_record_is_an_invalid_slot_and_two_are_an_error() {
        let slots = FlashSlots::<_, 2>::new(MemFlash::new(4 * 2048, None), 0).unwrap();
        let mut store = TwoSlot::new(slots);
        store.store(b"first").unwrap(); // slot 0, page 0
        store.store(b"second").unwrap(); // slot 1, page 2
        let mut flash = store.into_medium().into_flash();
        // A double ECC error in slot 1's record (past the 8-byte page header).
        flash.poison(2 * 2048 + 16);
        let mut store = TwoSlot::new(FlashSlots::<_, 2>::new(flash, 0).unwrap());
        let mut buf = [0u8; 64];
        let n = store.load(&mut buf).unwrap().unwrap();
        assert_eq!(&buf[..n], b"first");
        // The next commit goes to the unreadable bank's next page and is read back.
        store.store(b"third").unwrap();
        let n = store.load(&mut buf).unwrap().unwrap();
        assert_eq!(&buf[..n], b"third");
        // Both banks unreadable: an error, never "nothing stored" (a new identity).
        let mut flash = store.into_medium().into_flash();
        flash.poison(16);
        flash.poison(3 * 2048 + 16);
        let mut store = TwoSlot::new(FlashSlots::<_, 2>::new(flash, 0).unwrap());
        assert!(store.load(&mut buf).is_err());
    }

    #[test]
    fn an_unreadable_header_skips_the_page() {
        let slots = FlashSlots::<_, 2>::new(MemFlash::new(4 * 2048, None), 0).unwrap();
        let mut store = TwoSlot::new(slots);
        for s in [b"a", b"b", b"c"] {
            store.store(s).unwrap(); // slot 0 page 0, slot 1 page 2, slot 0 page 1
        }
        let mut flash = store.into_medium().into_flash();
        flash.poison(2048); // the header of slot 0's newest page ("c")
        let mut store = TwoSlot::new(FlashSlots::<_, 2>::new(flash, 0).unwrap());
        let mut buf = [0u8; 64];
        let n = store.load(&mut buf).unwrap().unwrap();
        assert_eq!(&buf[..n], b"b");
    }

    #[test]
    fn a_write_torn_at_any_byte_keeps_the_previous_or_the_new_state() {
        for cut in 0..120 {
            let slots = FlashSlots::<_, 2>::new(MemFlash::new(4 * 2048, None), 0).unwrap();
            let mut store = TwoSlot::new(slots);
            store.store(b"old state").unwrap();
            store.store(b"older? no: newer").unwrap();
            let mut flash = store.into_medium().into_flash();
            flash.set_budget(Some(cut));
            let mut store = TwoSlot::new(FlashSlots::<_, 2>::new(flash, 0).unwrap());
            let landed = store.store(b"the newest state of all").is_ok();
            let mut flash = store.into_medium().into_flash();
            flash.set_budget(None);
            let mut again = TwoSlot::new(FlashSlots::<_, 2>::new(flash, 0).unwrap());
            let mut buf = [0u8; 64];
            let n = again.load(&mut buf).unwrap().unwrap();
            let got = &buf[..n];
            assert!(
                got == b"older? no: newer" || got == b"the newest state of all",
                "cut {cut}: {got:?}"
            );
            if landed {
                assert_eq!(got, b"the newest state of all");
            }
        }
    }
}

/// One flash driver shared by several [`FlashSlots`] regions (the suite-1 slope and
/// the compact state), through a `RefCell`: every flash call is blocking and borrows
/// the driver only for its own duration, so the borrows never overlap; if one ever
/// did, the call fails ([`SharedError::Busy`]) rather than panic.
pub struct Shared<'a, F>(pub &'a core::cell::RefCell<F>);

/// A shared flash's error: the driver's, or the driver was already borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedError<E> {
    /// The driver failed.
    Flash(E),
    /// The driver was in use (never happens with blocking calls).
    Busy,
}

impl<E: NorFlashError> NorFlashError for SharedError<E> {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::Flash(e) => e.kind(),
            Self::Busy => NorFlashErrorKind::Other,
        }
    }
}

impl<F: NorFlash> Shared<'_, F> {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut F) -> Result<T, F::Error>,
    ) -> Result<T, SharedError<F::Error>> {
        let mut flash = self.0.try_borrow_mut().map_err(|_| SharedError::Busy)?;
        f(&mut flash).map_err(SharedError::Flash)
    }
}

impl<F: NorFlash> embedded_storage::nor_flash::ErrorType for Shared<'_, F> {
    type Error = SharedError<F::Error>;
}

impl<F: NorFlash> embedded_storage::nor_flash::ReadNorFlash for Shared<'_, F> {
    const READ_SIZE: usize = F::READ_SIZE;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.with(|f| f.read(offset, bytes))
    }
    fn capacity(&self) -> usize {
        self.0.try_borrow().map_or(0, |f| f.capacity())
    }
}

impl<F: NorFlash> NorFlash for Shared<'_, F> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.with(|f| f.erase(from, to))
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.with(|f| f.write(offset, bytes))
    }
}
