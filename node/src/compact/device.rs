//! The device side of suite 2: one frame per interval, MAC'd under the interval's key,
//! disclosing the key of `delay` intervals earlier; renewal before exhaustion.
//!
//! Memory (measured by `device_fits_budget`): the current chain's [`Traversal`]
//! (≈ 1.35 KiB), the next chain's seed and anchor, and the last `delay` keys of the
//! previous chain (disclosed during the first `delay` intervals of the next one):
//! under 2 KiB in all.
//!
//! Clock assumption: `now_ms` is the device's estimate of Unix time, within the
//! verifier's `max_skew_ms` of true time (minus the gateways' own error): a device whose
//! clock runs ahead discloses keys early, which is exactly what the bound covers.
//!
//! Persist before transmit: [`super::persist::Persistent`] stores the state (the last
//! used interval, the chain seeds, the tail keys) before it returns a frame, so that a
//! reboot never MACs two frames for one interval; the traversal is rebuilt from the
//! seed on restore.

use heapless::Vec;
use slope_proto::DeviceId;
use slope_proto::EncodeError;
use slope_proto::compact::crypto::{self, ChainKey};
use slope_proto::compact::params::{
    KEY_LEN, MAX_CHAIN, MAX_DELAY, MAX_INTERVAL_MS, MIN_INTERVAL_MS,
};
use slope_proto::compact::{Anchor, Attestation, Maced, Renewal};
use slope_proto::limits::MAX_PAYLOAD;

use super::chain::Traversal;

/// The schedule a device announces in its anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Start of global interval 1, ms since the Unix epoch.
    pub start_ms: u64,
    pub interval_ms: u32,
    pub delay: u8,
}

/// Why the device cannot produce a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A parameter is out of its bound.
    InvalidParameter(&'static str),
    /// `now` lies before the chain's first interval.
    NotStarted,
    /// A frame was already made in this interval (one frame per interval: a second
    /// one would be a divergence).
    IntervalUsed(u32),
    /// The chain is exhausted and no renewal was prepared: re-anchor with suite 1.
    Exhausted,
    /// `renew` was called before `prepare_renewal`.
    NoRenewal,
    /// The frame does not encode (payload too long).
    Encode(EncodeError),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::InvalidParameter(w) => write!(f, "invalid parameter: {w}"),
            Self::NotStarted => f.write_str("chain has not started"),
            Self::IntervalUsed(i) => write!(f, "interval {i} already used"),
            Self::Exhausted => f.write_str("chain exhausted, no renewal prepared"),
            Self::NoRenewal => f.write_str("no renewal prepared"),
            Self::Encode(e) => write!(f, "encode: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// The next chain, committed before it is used.
pub(super) struct Next {
    pub(super) seed: ChainKey,
    pub(super) len: u32,
    pub(super) anchor: ChainKey,
}

/// A device's compact-suite state. [`super::persist::Persistent`] binds it to storage
/// (persist before transmit).
pub struct Device {
    pub(super) device: DeviceId,
    pub(super) schedule: Schedule,
    pub(super) chain: Traversal,
    pub(super) next: Option<Next>,
    /// Keys of the previous chain's last `delay` intervals: (interval, key).
    pub(super) tail: Vec<(u32, ChainKey), { MAX_DELAY as usize }>,
    /// First interval of the very first chain (nothing to disclose before it).
    pub(super) origin: u32,
    pub(super) last: u32,
}

impl Device {
    /// Creates the first chain from the device's 32-byte chain state, covering global
    /// intervals `first..first + len`. Costs `len` hashes.
    pub fn new(
        device: DeviceId,
        chain_state: &[u8; 32],
        schedule: Schedule,
        first: u32,
        len: u32,
    ) -> Result<Self, Error> {
        if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&schedule.interval_ms) {
            return Err(Error::InvalidParameter("interval_ms"));
        }
        if schedule.delay == 0 || schedule.delay > MAX_DELAY {
            return Err(Error::InvalidParameter("delay"));
        }
        check_len(first, len)?;
        let seed = crypto::seed(chain_state, &device, first);
        Ok(Self {
            device,
            schedule,
            chain: Traversal::new(device, seed, first, len),
            next: None,
            tail: Vec::new(),
            origin: first,
            last: 0,
        })
    }

    /// The anchor body to sign with the suite-1 key of `epoch`
    /// ([`slope_proto::compact::SignedAnchor::sign`]).
    pub fn anchor(&self, epoch: u32) -> Anchor {
        Anchor {
            device: self.device.short(),
            epoch,
            first: self.chain.first(),
            len: self.chain.len(),
            anchor: self.chain.anchor().clone(),
            start_ms: self.schedule.start_ms,
            interval_ms: self.schedule.interval_ms,
            delay: self.schedule.delay,
        }
    }

    /// The last interval a frame was made for (0: none). Persist it before transmit.
    pub fn last_interval(&self) -> u32 {
        self.last
    }

    /// The current chain.
    pub fn chain(&self) -> &Traversal {
        &self.chain
    }

    pub(super) fn interval_at(&self, now_ms: u64) -> u32 {
        if now_ms < self.schedule.start_ms {
            return 0;
        }
        let k = (now_ms - self.schedule.start_ms) / u64::from(self.schedule.interval_ms);
        u32::try_from(k + 1).unwrap_or(u32::MAX)
    }

    /// Claims the interval of `now_ms` and returns it with its key.
    fn claim(&mut self, now_ms: u64) -> Result<(u32, ChainKey), Error> {
        let i = self.interval_at(now_ms);
        if i < self.origin {
            return Err(Error::NotStarted);
        }
        if i <= self.last {
            return Err(Error::IntervalUsed(i));
        }
        while i > self.chain.last() {
            self.switch()?;
        }
        let key = self.chain.key_at(i).ok_or(Error::Exhausted)?;
        self.last = i;
        Ok((i, key))
    }

    /// Moves to the prepared next chain, keeping the old chain's last `delay` keys.
    fn switch(&mut self) -> Result<(), Error> {
        let next = self.next.take().ok_or(Error::Exhausted)?;
        let old_last = self.chain.last();
        let d = u32::from(self.schedule.delay);
        self.tail.clear();
        for j in old_last.saturating_sub(d - 1).max(self.chain.first())..=old_last {
            if let Some(k) = self.chain.key_at(j) {
                // Capacity is MAX_DELAY ≥ delay: cannot fail.
                let _ = self.tail.push((j, k));
            }
        }
        self.chain = Traversal::new(self.device, next.seed, old_last + 1, next.len);
        debug_assert_eq!(self.chain.anchor(), &next.anchor);
        Ok(())
    }

    /// The key to disclose in interval `i`: K(i − delay), or zeros if none exists.
    fn disclosed(&mut self, i: u32) -> ChainKey {
        let d = u32::from(self.schedule.delay);
        let Some(j) = i.checked_sub(d).filter(|j| *j >= self.origin) else {
            return ChainKey([0; KEY_LEN]);
        };
        if let Some(k) = self.chain.key_at(j) {
            return k;
        }
        self.tail
            .iter()
            .find(|(t, _)| *t == j)
            .map(|(_, k)| k.clone())
            .unwrap_or(ChainKey([0; KEY_LEN]))
    }

    /// Makes the attestation for the interval of `now_ms`.
    pub fn attest(&mut self, now_ms: u64, payload: &[u8]) -> Result<Maced<Attestation>, Error> {
        let payload: Vec<u8, MAX_PAYLOAD> =
            Vec::from_slice(payload).map_err(|_| Error::Encode(EncodeError::TooLarge))?;
        let (i, key) = self.claim(now_ms)?;
        let body = Attestation {
            device: self.device.short(),
            interval: i,
            disclosed: self.disclosed(i),
            payload,
        };
        Maced::seal(body, &crypto::mac_key(&key)).map_err(Error::Encode)
    }

    /// Whether a next chain is prepared (and so committed to by any renewal sent).
    pub fn has_next(&self) -> bool {
        self.next.is_some()
    }

    /// Commits to the next chain, made from a fresh 32-byte chain state (costs `len`
    /// hashes). Replaces an earlier, unsent preparation.
    pub fn prepare_renewal(&mut self, chain_state: &[u8; 32], len: u32) -> Result<(), Error> {
        let first = self.chain.last() + 1;
        check_len(first, len)?;
        let seed = crypto::seed(chain_state, &self.device, first);
        let anchor = crypto::walk(&self.device, first, len, &seed, 0);
        self.next = Some(Next { seed, len, anchor });
        Ok(())
    }

    /// Sends the prepared renewal in the interval of `now_ms` (instead of an
    /// attestation). Send it in several intervals well before the chain ends; every
    /// copy commits to the same next chain.
    pub fn renew(&mut self, now_ms: u64) -> Result<Maced<Renewal>, Error> {
        let (len, anchor) = match &self.next {
            Some(n) => (n.len, n.anchor.clone()),
            None => return Err(Error::NoRenewal),
        };
        if self.interval_at(now_ms) > self.chain.last() {
            return Err(Error::Exhausted);
        }
        let (i, key) = self.claim(now_ms)?;
        let body = Renewal {
            device: self.device.short(),
            interval: i,
            len,
            anchor,
        };
        Maced::seal(body, &crypto::mac_key(&key)).map_err(Error::Encode)
    }
}

fn check_len(first: u32, len: u32) -> Result<(), Error> {
    if first == 0 || len == 0 || len > MAX_CHAIN || first.checked_add(len).is_none() {
        return Err(Error::InvalidParameter("chain first/len"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_fits_budget() {
        let size = core::mem::size_of::<Device>();
        assert!(size <= 2048, "device is {size} bytes");
    }
}
