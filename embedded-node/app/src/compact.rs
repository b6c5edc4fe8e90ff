//! The compact suite on the device (suite 2, docs/compact-suite.md): what the device
//! role needs around `slope_node::compact` — its configuration, the store that keeps
//! the compact state (and the anchor frame) beside the suite-1 slope, and the entropy
//! pool for renewals. The loop itself is in [`crate::node`].
//!
//! **When.** With [`Config::compact`](crate::node::Config::compact) set, the device
//! speaks suite 2 once its clock is synchronised ([`crate::timesync`]) and either
//! always ([`When::Always`]) or only when the plan's slowest data rate cannot carry its
//! suite-1 attestation ([`When::Suite1DoesNotFit`]). Otherwise — no synchronisation
//! yet, or it was lost — it attests in suite 1 as before.
//!
//! **Anchor.** The first time, the device anchors a chain starting two intervals after
//! the current one (`Slope::anchor_compact`, signed with the live suite-1 key), stores
//! the compact state *and the anchor frame* ([`Store`]), and only then sends the anchor
//! (a suite-1 frame, on the plan's fastest data rate if need be). The anchor is sent
//! again with the suite-1 establishment every `establishment_every` cycles.
//!
//! **One chain for life.** The chain is renewed before it ends (a renewal MAC'd by the
//! old chain, sent in [`Config::renewals`] intervals among the last
//! [`Config::renew_within`]), never re-anchored: the verifier refuses a second,
//! different anchor for a device (`AnchorError::Conflict`), and a suite-1 rotation does
//! not drop the device's chains there. So after a rotation (in a stretch of suite-1
//! fallback) and after a reboot the device continues its stored chain. A chain that
//! runs out without a renewal (the device was off past its end) leaves the device in
//! suite 1.
//!
//! **Persist before transmit.** Every attestation and renewal goes through
//! `slope_node::compact::persist::Persistent`, which stores the state that marks the
//! interval used before it returns the frame: a power cut at any instant never MACs
//! two frames for one interval. The store is a second `TwoSlot` over its own flash
//! region ([`crate::flash::Shared`] lets both regions use one flash driver).

use heapless::Vec;
use slope_node::device::storage::{Slots, Storage, TwoSlot, TwoSlotError};

use crate::timesync::Policy;

/// When the device speaks suite 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Whenever the clock is synchronised.
    Always,
    /// When the plan's slowest data rate cannot carry a routine suite-1 attestation
    /// ([`SUITE1_ATTESTATION_PHY`]).
    Suite1DoesNotFit,
}

/// The compact suite's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// When to use it.
    pub when: When,
    /// Start of global interval 1, ms since the Unix epoch (shared by the network).
    pub start_ms: u64,
    /// Interval length T, ms.
    pub interval_ms: u32,
    /// Disclosure delay d, intervals.
    pub delay: u8,
    /// Chain length, intervals (≤ 2¹⁶).
    pub chain_len: u32,
    /// Renew when this few intervals of the chain are left.
    pub renew_within: u32,
    /// Renewal copies to send (in place of that many attestations).
    pub renewals: u8,
    /// The verifiers' clock bound (`compact::verifier::Config::max_skew_ms`): a frame
    /// the duty cycle holds past `start(i + d) − max_skew_ms` is dropped, not sent late.
    pub max_skew_ms: u64,
    /// Clock synchronisation.
    pub sync: Policy,
}

impl Config {
    /// 1 January 2026 00:00 UTC.
    pub const EPOCH_2026_MS: u64 = 1_767_225_600_000;

    /// T = 60 s, d = 2, chains of 2¹⁶ intervals (45.5 days), renewals from 2 days before
    /// the end, 3 copies, 10 s skew; used when suite 1 does not fit.
    pub const DEFAULT: Config = Config {
        when: When::Suite1DoesNotFit,
        start_ms: Self::EPOCH_2026_MS,
        interval_ms: 60_000,
        delay: 2,
        chain_len: 1 << 16,
        renew_within: 2 * 1440,
        renewals: 3,
        max_skew_ms: 10_000,
        sync: Policy::DEFAULT,
    };
}

/// Bytes on air of a routine suite-1 attestation with 8 bytes of payload and no
/// neighbours (109, docs/benchmarks.md "Wire format"), with the 3-byte radio framing:
/// [`When::Suite1DoesNotFit`] compares it with the plan's slowest data rate (EU868 DR3
/// carries 128 bytes: suite 1; DR0–DR2, 64: suite 2).
pub const SUITE1_ATTESTATION_PHY: usize = 109 + 3;

/// Largest anchor frame kept.
pub const MAX_ANCHOR: usize = 160;
/// Largest compact state record (`slope_node::compact::persist::STATE_MAX`).
const STATE_MAX: usize = slope_node::compact::persist::STATE_MAX;
/// `anchor length (u8) ‖ anchor ‖ compact state`.
const RECORD_MAX: usize = 1 + MAX_ANCHOR + STATE_MAX;

/// Why the compact store failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StoreError<E> {
    /// The medium failed (or the record does not fit a slot).
    Medium(E),
    /// The stored record is malformed.
    Corrupt,
}

/// The compact state's storage: a `TwoSlot` whose record is the anchor frame followed
/// by `Persistent`'s state, so the anchor can be sent again after a reboot (its key
/// may have been rotated away since).
pub struct Store<M: Slots> {
    inner: TwoSlot<M>,
    anchor: Vec<u8, MAX_ANCHOR>,
}

impl<M: Slots> Store<M> {
    /// A store over `medium`.
    pub fn new(medium: M) -> Self {
        Self {
            inner: TwoSlot::new(medium),
            anchor: Vec::new(),
        }
    }

    /// Whether a compact state is stored (a device that anchored before).
    pub fn is_stored(&mut self) -> Result<bool, StoreError<TwoSlotError<M::Error>>> {
        let mut buf = [0u8; RECORD_MAX];
        Ok(self.load(&mut buf)?.is_some())
    }

    /// Sets the anchor frame written with every following record.
    pub fn set_anchor(&mut self, frame: &[u8]) -> bool {
        self.anchor.clear();
        self.anchor.extend_from_slice(frame).is_ok()
    }

    /// The anchor frame (after a load or [`Store::set_anchor`]).
    pub fn anchor(&self) -> &[u8] {
        &self.anchor
    }

    /// The medium (for a simulated reboot in tests).
    pub fn medium(&self) -> &M {
        self.inner.medium()
    }
}

impl<M: Slots> Storage for Store<M> {
    type Error = StoreError<TwoSlotError<M::Error>>;

    fn load(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Self::Error> {
        let mut record = [0u8; RECORD_MAX];
        let Some(n) = self.inner.load(&mut record).map_err(StoreError::Medium)? else {
            return Ok(None);
        };
        let record = record.get(..n).ok_or(StoreError::Corrupt)?;
        let (&len, rest) = record.split_first().ok_or(StoreError::Corrupt)?;
        let len = usize::from(len);
        let (anchor, state) = (rest.get(..len), rest.get(len..));
        let (Some(anchor), Some(state)) = (anchor, state) else {
            return Err(StoreError::Corrupt);
        };
        let out = buf.get_mut(..state.len()).ok_or(StoreError::Corrupt)?;
        out.copy_from_slice(state);
        self.set_anchor(anchor)
            .then_some(Some(state.len()))
            .ok_or(StoreError::Corrupt)
    }

    fn store(&mut self, state: &[u8]) -> Result<(), Self::Error> {
        let mut record = [0u8; RECORD_MAX];
        let n = 1 + self.anchor.len() + state.len();
        let out = record.get_mut(..n).ok_or(StoreError::Corrupt)?;
        out[0] = self.anchor.len() as u8;
        out[1..1 + self.anchor.len()].copy_from_slice(&self.anchor);
        out[1 + self.anchor.len()..].copy_from_slice(state);
        let result = self.inner.store(out).map_err(StoreError::Medium);
        zeroize::Zeroize::zeroize(&mut record[..]);
        result
    }
}

/// Fresh entropy for the next chain of a renewal: health-tested samples folded into
/// 32 bytes. Renewal chains come from fresh entropy, not from the suite-1 key (the
/// slope does not expose its chain state); the prepared chain is stored before any
/// renewal commits to it, so a reboot cannot make two.
#[derive(Clone)]
pub struct RenewalPool {
    state: [u8; 32],
    samples: u32,
}

/// Samples needed before a renewal chain is made (as for a suite-1 rotation).
pub const MIN_RENEWAL_SAMPLES: u32 = slope_node::device::MIN_ROTATE_SAMPLES;

impl RenewalPool {
    /// Empty.
    pub const fn new() -> Self {
        Self {
            state: [0; 32],
            samples: 0,
        }
    }

    /// Folds one sample in.
    pub fn mix(&mut self, sample: &[u8]) {
        self.state = *blake3::Hasher::new_derive_key("slope firmware compact renewal pool")
            .update(&self.state)
            .update(sample)
            .finalize()
            .as_bytes();
        self.samples = self.samples.saturating_add(1);
    }

    /// Samples mixed in since the last [`RenewalPool::take`].
    pub fn samples(&self) -> u32 {
        self.samples
    }

    /// The chain state, once enough samples were mixed in; the pool starts over.
    pub fn take(&mut self) -> Option<[u8; 32]> {
        if self.samples < MIN_RENEWAL_SAMPLES {
            return None;
        }
        let out = self.state;
        self.mix(b"taken");
        self.samples = 0;
        Some(out)
    }
}

impl Default for RenewalPool {
    fn default() -> Self {
        Self::new()
    }
}

/// No compact store: for a device role without suite 2 (`Slots` that hold nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoStore;

impl Slots for NoStore {
    type Error = ();
    fn slot_len(&self) -> usize {
        0
    }
    fn read(&mut self, _: usize, buf: &mut [u8]) -> Result<(), ()> {
        buf.fill(0xff);
        Ok(())
    }
    fn write(&mut self, _: usize, _: &[u8]) -> Result<(), ()> {
        Err(())
    }
}
