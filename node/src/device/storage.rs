//! Durable storage of the device state, and a two-slot scheme that makes any
//! page-writing medium atomic.
//!
//! [`Storage::store`] must be atomic: after a power cut during a store, `load` returns
//! either the old state or the new one, never a mix. [`TwoSlot`] provides that over any
//! [`Slots`] medium (two flash pages, two EEPROM regions, two files): each record is
//! `magic ‖ counter ‖ length ‖ state ‖ checksum`, written to the slot that does *not*
//! hold the newest valid record; `load` takes the valid record with the highest counter.
//! A torn write fails its checksum and the other slot still holds the previous state.

/// Atomic durable storage of one state blob.
pub trait Storage {
    type Error: core::fmt::Debug;
    /// Reads the current state into `buf`, returning its length, or `None` when nothing
    /// was ever stored.
    fn load(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Self::Error>;
    /// Replaces the state, atomically.
    fn store(&mut self, state: &[u8]) -> Result<(), Self::Error>;
}

/// A medium with two independently writable slots. A write may be torn by a power cut:
/// any prefix of the new content may have reached the medium.
pub trait Slots {
    type Error: core::fmt::Debug;
    /// Size of one slot in bytes.
    fn slot_len(&self) -> usize;
    /// Reads slot `slot` (0 or 1) into `buf[..slot_len]`.
    fn read(&mut self, slot: usize, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// Erases slot `slot` and writes `data` to its start.
    fn write(&mut self, slot: usize, data: &[u8]) -> Result<(), Self::Error>;
}

const MAGIC: [u8; 2] = *b"SL";
const HEADER: usize = 2 + 4 + 2;
const CHECK: usize = 16;
/// Largest slot [`TwoSlot`] works with.
pub const MAX_SLOT: usize = 2048;

/// Errors of [`TwoSlot`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TwoSlotError<E> {
    /// The state does not fit a slot.
    TooLarge,
    /// The medium failed.
    Medium(E),
}

/// (slot, counter, data length) of a valid record.
type Found = (usize, u32, usize);

/// Atomic storage over two slots.
pub struct TwoSlot<M: Slots> {
    medium: M,
    /// (slot, counter) of the newest valid record, once known.
    newest: Option<(usize, u32)>,
    scanned: bool,
}

impl<M: Slots> TwoSlot<M> {
    pub fn new(medium: M) -> Self {
        Self {
            medium,
            newest: None,
            scanned: false,
        }
    }

    /// The underlying medium.
    pub fn medium(&self) -> &M {
        &self.medium
    }

    /// Gives the medium back (for a simulated reboot in tests).
    pub fn into_medium(self) -> M {
        self.medium
    }

    /// Finds the newest valid record, copying its data into `buf` when it fits.
    fn scan(&mut self, buf: &mut [u8]) -> Result<Option<Found>, TwoSlotError<M::Error>> {
        let len = self.medium.slot_len().min(MAX_SLOT);
        let mut best: Option<Found> = None;
        for slot in 0..2 {
            let mut page = [0u8; MAX_SLOT];
            self.medium
                .read(slot, &mut page[..len])
                .map_err(TwoSlotError::Medium)?;
            if let Some((counter, data_len)) = parse(&page[..len]) {
                if best.is_none_or(|(_, c, _)| counter > c) {
                    best = Some((slot, counter, data_len));
                    if let Some(out) = buf.get_mut(..data_len) {
                        out.copy_from_slice(&page[HEADER..HEADER + data_len]);
                    }
                }
            }
        }
        self.newest = best.map(|(s, c, _)| (s, c));
        self.scanned = true;
        Ok(best)
    }
}

fn checksum(counter_len_data: &[u8]) -> [u8; CHECK] {
    let d = blake3::Hasher::new_derive_key("slope v1 device state slot")
        .update(counter_len_data)
        .finalize();
    let mut out = [0u8; CHECK];
    out.copy_from_slice(&d.as_bytes()[..CHECK]);
    out
}

/// A valid record's (counter, data length), or `None`.
fn parse(page: &[u8]) -> Option<(u32, usize)> {
    if page.get(..2)? != MAGIC {
        return None;
    }
    let counter = u32::from_le_bytes(page.get(2..6)?.try_into().ok()?);
    let len = usize::from(u16::from_le_bytes(page.get(6..8)?.try_into().ok()?));
    let end = HEADER.checked_add(len)?;
    let check = page.get(end..end + CHECK)?;
    (checksum(&page[2..end]) == check).then_some((counter, len))
}

impl<M: Slots> Storage for TwoSlot<M> {
    type Error = TwoSlotError<M::Error>;

    fn load(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Self::Error> {
        Ok(self.scan(buf)?.map(|(_, _, len)| len))
    }

    fn store(&mut self, state: &[u8]) -> Result<(), Self::Error> {
        if !self.scanned {
            self.scan(&mut [])?;
        }
        let total = HEADER + state.len() + CHECK;
        if total > self.medium.slot_len().min(MAX_SLOT) || state.len() > usize::from(u16::MAX) {
            return Err(TwoSlotError::TooLarge);
        }
        let (slot, counter) = match self.newest {
            Some((s, c)) => (1 - s, c.wrapping_add(1)),
            None => (0, 1),
        };
        let mut page = [0u8; MAX_SLOT];
        page[..2].copy_from_slice(&MAGIC);
        page[2..6].copy_from_slice(&counter.to_le_bytes());
        page[6..8].copy_from_slice(&(state.len() as u16).to_le_bytes());
        page[HEADER..HEADER + state.len()].copy_from_slice(state);
        let check = checksum(&page[2..HEADER + state.len()]);
        page[HEADER + state.len()..total].copy_from_slice(&check);
        let result = self.medium.write(slot, &page[..total]);
        zeroize::Zeroize::zeroize(&mut page[..]);
        // Whatever happened, the medium must be scanned again before the next store:
        // a failed write may or may not have landed.
        self.scanned = false;
        result.map_err(TwoSlotError::Medium)?;
        self.newest = Some((slot, counter));
        self.scanned = true;
        Ok(())
    }
}

/// An in-memory two-slot medium with power-cut injection, for tests and the simulator.
#[derive(Debug, Clone)]
pub struct MemSlots {
    slots: [[u8; MAX_SLOT]; 2],
    /// Bytes that may still be written before the power is cut; `None`: never cut.
    pub budget: Option<usize>,
    /// Whether a cut has happened (the medium refuses writes until `power_on`).
    pub cut: bool,
}

/// The power was cut during a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerCut;

impl Default for MemSlots {
    fn default() -> Self {
        Self {
            slots: [[0xff; MAX_SLOT]; 2],
            budget: None,
            cut: false,
        }
    }
}

impl MemSlots {
    /// Restores power (what a reboot does), keeping the contents.
    pub fn power_on(&mut self) {
        self.cut = false;
        self.budget = None;
    }
}

impl Slots for MemSlots {
    type Error = PowerCut;
    fn slot_len(&self) -> usize {
        MAX_SLOT
    }
    fn read(&mut self, slot: usize, buf: &mut [u8]) -> Result<(), PowerCut> {
        if self.cut {
            return Err(PowerCut);
        }
        let n = buf.len().min(MAX_SLOT);
        buf[..n].copy_from_slice(&self.slots[slot & 1][..n]);
        Ok(())
    }
    fn write(&mut self, slot: usize, data: &[u8]) -> Result<(), PowerCut> {
        if self.cut {
            return Err(PowerCut);
        }
        let page = &mut self.slots[slot & 1];
        // Erase first, as flash does, then program byte by byte until the budget ends.
        page.fill(0xff);
        let allowed = self.budget.map_or(data.len(), |b| b.min(data.len()));
        page[..allowed].copy_from_slice(&data[..allowed]);
        if let Some(b) = &mut self.budget {
            *b -= allowed;
            // A budget that ends exactly at the last byte cuts the power right after the
            // write landed, before the caller learns it did.
            if *b == 0 {
                self.cut = true;
                return Err(PowerCut);
            }
        }
        Ok(())
    }
}
