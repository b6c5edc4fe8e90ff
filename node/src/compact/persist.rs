//! Persist before transmit for suite 2: [`Persistent`] stores the device's state
//! before it hands out any frame that depends on it, so a power cut at any instant
//! never lets the device MAC two different frames for one interval (which would be a
//! suite-2 divergence of an honest device), nor commit to two different next chains.
//!
//! What is stored (a fixed binary record, at most [`STATE_MAX`] bytes, through the
//! same [`Storage`] as the suite-1 device, e.g. the two-slot store): the device id and
//! schedule, the first interval ever used, the last interval used, the current chain
//! (first, len, seed K(len)), the prepared next chain (seed, len, anchor) and the
//! previous chain's last `delay` keys. The traversal's checkpoints are not stored: they
//! are rebuilt from the seed on restore (`len` hashes).
//!
//! Order of operations for a frame: claim the interval in memory, store, then return
//! the frame. If the store fails (torn write, power cut), no frame is returned: the
//! stored state is the older one, and no frame exists for the interval it still
//! allows. A store that landed but whose frame was never sent costs one interval.

use slope_proto::DeviceId;
use slope_proto::compact::crypto::ChainKey;
use slope_proto::compact::params::{
    KEY_LEN, MAX_CHAIN, MAX_DELAY, MAX_INTERVAL_MS, MIN_INTERVAL_MS,
};
use slope_proto::compact::{Attestation, Maced, Renewal};

use super::chain::Traversal;
use super::device::{Device, Error, Next, Schedule};
use crate::device::Storage;

const MAGIC: [u8; 3] = *b"SC1";
/// Largest stored record: fixed fields, the next chain, and `MAX_DELAY` tail keys.
pub const STATE_MAX: usize = 3
    + 32
    + 8
    + 4
    + 1
    + 4
    + 4
    + 4
    + 4
    + KEY_LEN
    + 1
    + (KEY_LEN + 4 + KEY_LEN)
    + 1
    + MAX_DELAY as usize * (4 + KEY_LEN);

/// Why a persistent device failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PersistError<E> {
    /// The device refused (interval used, exhausted, …). Nothing was stored.
    Device(Error),
    /// The store failed: no frame was released.
    Storage(E),
    /// The stored record is not a valid state.
    Corrupt(&'static str),
}

impl<E: core::fmt::Debug> core::fmt::Display for PersistError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Device(e) => write!(f, "device: {e}"),
            Self::Storage(e) => write!(f, "storage: {e:?}"),
            Self::Corrupt(w) => write!(f, "stored state corrupt: {w}"),
        }
    }
}

/// A compact device whose state reaches storage before any frame leaves it.
pub struct Persistent<S: Storage> {
    device: Device,
    storage: S,
}

impl<S: Storage> Persistent<S> {
    /// Binds a new device to `storage`, storing its initial state.
    pub fn create(device: Device, storage: S) -> Result<Self, PersistError<S::Error>> {
        let mut p = Self { device, storage };
        p.store()?;
        Ok(p)
    }

    /// Restores the device stored in `storage` (`None` when nothing was stored).
    /// Rebuilds the traversal from the stored seed (`len` hashes).
    pub fn restore(mut storage: S) -> Result<Option<Self>, PersistError<S::Error>> {
        let mut buf = [0u8; STATE_MAX];
        let Some(n) = storage.load(&mut buf).map_err(PersistError::Storage)? else {
            return Ok(None);
        };
        let bytes = buf
            .get(..n)
            .ok_or(PersistError::Corrupt("record too long"))?;
        let device = decode(bytes).map_err(PersistError::Corrupt)?;
        Ok(Some(Self { device, storage }))
    }

    /// The device (read-only: every change goes through this wrapper).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The storage (for a simulated reboot in tests).
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Gives the storage back, for a new chain to be created in it
    /// ([`Persistent::create`] stores over the old state: a re-anchor after a suite-1
    /// rotation).
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// The attestation for the interval of `now_ms`, returned only once the state
    /// that marks the interval used is stored.
    pub fn attest(
        &mut self,
        now_ms: u64,
        payload: &[u8],
    ) -> Result<Maced<Attestation>, PersistError<S::Error>> {
        let frame = self
            .device
            .attest(now_ms, payload)
            .map_err(PersistError::Device)?;
        self.store()?;
        Ok(frame)
    }

    /// Prepares the next chain (see [`Device::prepare_renewal`]) and stores it, so
    /// every renewal sent, before or after a reboot, commits to the same chain. A
    /// prepared chain is kept: preparing again while one is stored is refused by
    /// returning the stored one unchanged (`Ok(false)`).
    pub fn prepare_renewal(
        &mut self,
        chain_state: &[u8; 32],
        len: u32,
    ) -> Result<bool, PersistError<S::Error>> {
        if self.device.has_next() {
            return Ok(false);
        }
        self.device
            .prepare_renewal(chain_state, len)
            .map_err(PersistError::Device)?;
        self.store()?;
        Ok(true)
    }

    /// The renewal for the interval of `now_ms`, returned only once stored.
    pub fn renew(&mut self, now_ms: u64) -> Result<Maced<Renewal>, PersistError<S::Error>> {
        let frame = self.device.renew(now_ms).map_err(PersistError::Device)?;
        self.store()?;
        Ok(frame)
    }

    fn store(&mut self) -> Result<(), PersistError<S::Error>> {
        let mut buf = [0u8; STATE_MAX];
        let n = encode(&self.device, &mut buf);
        let result = self.storage.store(&buf[..n]);
        zeroize::Zeroize::zeroize(&mut buf[..]);
        result.map_err(PersistError::Storage)
    }
}

/// Writes the state into `out` (which holds [`STATE_MAX`] bytes) and returns its
/// length.
fn encode(d: &Device, out: &mut [u8; STATE_MAX]) -> usize {
    let mut w = Writer { out, at: 0 };
    w.put(&MAGIC);
    w.put(&d.device.0);
    w.put(&d.schedule.start_ms.to_le_bytes());
    w.put(&d.schedule.interval_ms.to_le_bytes());
    w.put(&[d.schedule.delay]);
    w.put(&d.origin.to_le_bytes());
    w.put(&d.last.to_le_bytes());
    w.put(&d.chain.first().to_le_bytes());
    w.put(&d.chain.len().to_le_bytes());
    w.put(&d.chain.seed().0);
    match &d.next {
        Some(n) => {
            w.put(&[1]);
            w.put(&n.seed.0);
            w.put(&n.len.to_le_bytes());
            w.put(&n.anchor.0);
        }
        None => w.put(&[0]),
    }
    w.put(&[d.tail.len() as u8]);
    for (i, k) in &d.tail {
        w.put(&i.to_le_bytes());
        w.put(&k.0);
    }
    w.at
}

struct Writer<'a> {
    out: &'a mut [u8; STATE_MAX],
    at: usize,
}

impl Writer<'_> {
    /// Appends `b`; the record's layout fits `STATE_MAX` by construction (the tail
    /// holds at most `MAX_DELAY` keys), so nothing is ever cut.
    fn put(&mut self, b: &[u8]) {
        let end = (self.at + b.len()).min(STATE_MAX);
        self.out[self.at..end].copy_from_slice(&b[..end - self.at]);
        self.at = end;
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.bytes.len() < n {
            return Err("record truncated");
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn key(&mut self) -> Result<ChainKey, &'static str> {
        Ok(ChainKey(self.array()?))
    }
}

fn decode(bytes: &[u8]) -> Result<Device, &'static str> {
    let mut r = Reader { bytes };
    if r.array::<3>()? != MAGIC {
        return Err("not a compact device record");
    }
    let device = DeviceId(r.array()?);
    let schedule = Schedule {
        start_ms: u64::from_le_bytes(r.array()?),
        interval_ms: r.u32()?,
        delay: r.u8()?,
    };
    if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&schedule.interval_ms)
        || schedule.delay == 0
        || schedule.delay > MAX_DELAY
    {
        return Err("schedule out of range");
    }
    let origin = r.u32()?;
    let last = r.u32()?;
    let first = r.u32()?;
    let len = r.u32()?;
    if first == 0 || len == 0 || len > MAX_CHAIN || first.checked_add(len).is_none() {
        return Err("chain out of range");
    }
    let seed = r.key()?;
    let next = match r.u8()? {
        0 => None,
        1 => {
            let seed = r.key()?;
            let len = r.u32()?;
            if len == 0 || len > MAX_CHAIN {
                return Err("next chain out of range");
            }
            Some(Next {
                seed,
                len,
                anchor: r.key()?,
            })
        }
        _ => return Err("bad next-chain flag"),
    };
    let count = r.u8()?;
    let mut tail = heapless::Vec::new();
    for _ in 0..count {
        let entry = (r.u32()?, r.key()?);
        tail.push(entry).map_err(|_| "too many tail keys")?;
    }
    if !r.bytes.is_empty() {
        return Err("trailing bytes");
    }
    Ok(Device {
        device,
        schedule,
        chain: Traversal::new(device, seed, first, len),
        next,
        tail,
        origin,
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_record_fits() {
        assert_eq!(STATE_MAX, 438); // docs/compact-suite.md states it
        const { assert!(STATE_MAX <= crate::device::storage::MAX_SLOT - 8 - 16) };
    }
}
