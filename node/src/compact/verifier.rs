//! The gateway side of suite 2: buffers frames until their key is disclosed, accepts
//! them only under the security condition, bridges lost frames by hashing forward,
//! follows renewals, and detects two different frames for one interval.
//!
//! Security condition (checked on arrival, with the caller's receive time): a frame for
//! interval i is kept only if `rx_ms + max_skew_ms < start(i + delay)` (schedule from
//! the signed anchor); otherwise its key may already be public and it is `Late`. Frames
//! for intervals that have not started even with the skew (`start(i) > rx_ms +
//! max_skew_ms`) are `Future`: nobody honest sends them, and refusing them keeps an
//! attacker from filling the buffer ahead of time.
//!
//! Clock assumptions: `rx_ms` is the receiving gateway's clock (Unix ms), stamped at
//! reception; `max_skew_ms` bounds the device clock error plus the gateway clock error
//! (docs/compact-suite.md gives the numbers). Frames relayed between gateways keep the
//! first gateway's `rx_ms`.
//!
//! Bounds and policies ([`Config`]): devices (new anchors refused at the bound), frames
//! waiting per device (new frames refused at the bound: the honest frame of an interval
//! normally arrives first, and each gateway has its own buffer), frames kept per
//! authenticated interval for duplicate and divergence checks (oldest dropped), chains
//! per device (3: previous, current, next; the oldest dropped), events (oldest dropped,
//! counted in [`Verifier::dropped_events`]).

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use core::fmt;

use ed25519_dalek::VerifyingKey;
use slope_proto::compact::attestation::View;
use slope_proto::compact::crypto::{self, ChainKey};
use slope_proto::compact::frame::{self, Kind};
use slope_proto::compact::params::{MAC_LEN, MAX_COMPACT_FRAME};
use slope_proto::compact::{Anchor, Maced, Renewal, SignedAnchor};
use slope_proto::{DecodeError, DeviceId, Observation, ShortId, SignatureError};

/// Verifier bounds and the clock bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Bound on device clock error + gateway clock error (default 10 s).
    pub max_skew_ms: u64,
    /// Devices tracked (default 1,000,000).
    pub max_devices: usize,
    /// Frames waiting for their key, per device (default 32).
    pub max_pending: usize,
    /// Frames waiting for their key, all devices together (default 65,536: about
    /// 8 MiB of buffered frames).
    pub max_pending_total: usize,
    /// How long a frame may wait for its key before [`Verifier::expire`] drops it
    /// (default 1 day: a device that attests at least daily always drains its own
    /// frames first).
    pub max_pending_age_ms: u64,
    /// Authenticated frames remembered per device (default 8).
    pub recent: usize,
    /// Events waiting to be polled (default 65,536).
    pub max_events: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_skew_ms: 10_000,
            max_devices: 1_000_000,
            max_pending: 32,
            max_pending_total: 65_536,
            max_pending_age_ms: 86_400_000,
            recent: 8,
            max_events: 65_536,
        }
    }
}

/// Why a frame is refused on arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reject {
    Decode(DecodeError),
    /// Not an attestation or a renewal (anchors go to [`Verifier::add_anchor`]).
    UnexpectedKind,
    /// No anchor for this short id.
    UnknownDevice,
    /// Received too late: its key may already be public (security condition).
    Late {
        interval: u32,
    },
    /// For an interval that has not started, even allowing for the clock bound.
    Future {
        interval: u32,
    },
    /// Before the device's oldest known chain.
    BeforeChain {
        interval: u32,
    },
    /// The disclosed key does not hash to the last known key: not an honest frame.
    BadDisclosure,
    /// The device's buffer of waiting frames is full.
    PendingFull,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "decode: {e}"),
            Self::UnexpectedKind => f.write_str("not an attestation or renewal"),
            Self::UnknownDevice => f.write_str("no anchor for this device"),
            Self::Late { interval } => write!(f, "late for interval {interval}"),
            Self::Future { interval } => write!(f, "interval {interval} has not started"),
            Self::BeforeChain { interval } => write!(f, "interval {interval} before the chain"),
            Self::BadDisclosure => f.write_str("disclosed key does not verify"),
            Self::PendingFull => f.write_str("too many frames waiting for keys"),
        }
    }
}

/// Why an anchor is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnchorError {
    Decode(DecodeError),
    Signature(SignatureError),
    /// Another device with the same short id is tracked.
    ShortIdTaken,
    /// The device already has an anchor with another schedule or chain.
    Conflict,
    /// The device bound is reached.
    Full,
}

impl fmt::Display for AnchorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "decode: {e}"),
            Self::Signature(e) => write!(f, "anchor signature: {e}"),
            Self::ShortIdTaken => f.write_str("short id taken by another device"),
            Self::Conflict => f.write_str("device already anchored differently"),
            Self::Full => f.write_str("device bound reached"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Reject {}
#[cfg(feature = "std")]
impl std::error::Error for AnchorError {}

/// What happened to a frame on arrival (the device and interval it names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Kept until its key is disclosed; `released` earlier frames were checked.
    Buffered {
        device: DeviceId,
        interval: u32,
        released: usize,
    },
    /// Its key was already known: checked at once (result in the events).
    Checked {
        device: DeviceId,
        interval: u32,
        released: usize,
    },
    /// Byte-identical to a frame already held.
    Duplicate { device: DeviceId, interval: u32 },
}

/// An attestation whose MAC verified under a disclosed key and that arrived in time.
/// Only the verifier makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCompact {
    device: DeviceId,
    interval: u32,
    rx_ms: u64,
    rx: Option<Observation>,
    frame: FrameBuf,
}

impl VerifiedCompact {
    /// What the receiving radio observed, when the caller passed it
    /// ([`Verifier::handle_observed`]; the one verifier always does).
    pub fn rx(&self) -> Option<&Observation> {
        self.rx.as_ref()
    }
    pub fn device(&self) -> &DeviceId {
        &self.device
    }
    pub fn interval(&self) -> u32 {
        self.interval
    }
    pub fn rx_ms(&self) -> u64 {
        self.rx_ms
    }
    pub fn frame(&self) -> &[u8] {
        self.frame.as_slice()
    }
}

/// A frame with the time it was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    frame: FrameBuf,
    rx_ms: u64,
}

impl Received {
    /// The exact frame.
    pub fn frame(&self) -> &[u8] {
        self.frame.as_slice()
    }
    /// When the receiving gateway stamped it (Unix ms, gateway clock).
    pub fn rx_ms(&self) -> u64 {
        self.rx_ms
    }
}

/// A suite-2 MAC'd frame held inline (at most [`MAX_COMPACT_FRAME`] bytes): copied
/// with one `memcpy`, no allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FrameBuf {
    len: u8,
    bytes: [u8; MAX_COMPACT_FRAME],
}

impl FrameBuf {
    fn new(frame: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; MAX_COMPACT_FRAME];
        bytes.get_mut(..frame.len())?.copy_from_slice(frame);
        Some(Self {
            len: u8::try_from(frame.len()).ok()?,
            bytes,
        })
    }
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for FrameBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_slice() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Two different frames that verify under one disclosed key for one interval, both
/// received in time (boxed in [`Event::Divergence`] to keep events small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub device: DeviceId,
    pub interval: u32,
    /// The disclosed key of `interval`, under which both MACs verify.
    pub key: ChainKey,
    /// The frame authenticated first, and the other one.
    pub first: Received,
    pub second: Received,
}

/// Results of checks, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An attestation verified.
    Authenticated(VerifiedCompact),
    /// A renewal verified: the device's next chain starts at `first`.
    Renewed {
        device: DeviceId,
        first: u32,
        len: u32,
    },
    /// Two different frames verify under one disclosed key for one interval, both
    /// received in time. With the gateways' receipts this is a
    /// [`slope_proto::compact::CompactProof`].
    Divergence(Box<Conflict>),
    /// A second, different renewal of one chain verified (evidence of duplicity that
    /// the renewal chain cannot attribute to one interval): the first one is kept.
    RenewalConflict { device: DeviceId, interval: u32 },
    /// A waiting frame's MAC failed once its key was known: dropped.
    BadMac { device: DeviceId, interval: u32 },
}

/// A frame waiting for its key: its bytes (the one copy the verifier makes of a frame
/// on arrival), its interval and kind.
struct Pending {
    received: Received,
    rx: Option<Observation>,
    interval: u32,
    renewal: bool,
}

/// A suite-2 frame checked for form, borrowed from the input.
enum Parsed<'a> {
    /// The hot path: fixed-layout view, no copy.
    Attestation(View<'a>),
    Renewal(Maced<Renewal>),
}

impl Parsed<'_> {
    fn parse(bytes: &[u8]) -> Result<Parsed<'_>, Reject> {
        match frame::parse_header(bytes).map_err(Reject::Decode)? {
            Kind::Attestation => View::parse(bytes)
                .map(Parsed::Attestation)
                .map_err(Reject::Decode),
            Kind::Renewal => Maced::decode(bytes)
                .map(Parsed::Renewal)
                .map_err(Reject::Decode),
            _ => Err(Reject::UnexpectedKind),
        }
    }
    fn device(&self) -> ShortId {
        match self {
            Self::Attestation(v) => v.device(),
            Self::Renewal(m) => m.body().device,
        }
    }
    fn interval(&self) -> u32 {
        match self {
            Self::Attestation(v) => v.interval(),
            Self::Renewal(m) => m.body().interval,
        }
    }
}

/// Whether the MAC at the end of `frame` verifies under `mac_key`.
fn mac_ok(frame: &[u8], mac_key: &[u8; 32]) -> bool {
    let Some(end) = frame.len().checked_sub(MAC_LEN) else {
        return false;
    };
    let mut tag = [0u8; MAC_LEN];
    tag.copy_from_slice(&frame[end..]);
    crypto::mac_eq(&crypto::mac(mac_key, &frame[..end]), &tag)
}

struct Chain {
    first: u32,
    len: u32,
    /// The highest authenticated key: local position and key (0: the anchor).
    known_l: u32,
    known: ChainKey,
    /// Set once a renewal of this chain verified: (len, anchor) of the next chain.
    renewed: Option<(u32, ChainKey)>,
}

impl Chain {
    fn last(&self) -> u32 {
        self.first + self.len - 1
    }
    fn local(&self, interval: u32) -> Option<u32> {
        (interval >= self.first && interval <= self.last()).then(|| interval - self.first + 1)
    }
}

struct Done {
    interval: u32,
    key: ChainKey,
    received: Received,
}

struct State {
    device: DeviceId,
    schedule: Anchor,
    /// Previous, current and next chain, oldest first (a slice: cheap to scan).
    chains: heapless::Vec<Chain, MAX_CHAINS>,
    pending: VecDeque<Pending>,
    recent: VecDeque<Done>,
}

const MAX_CHAINS: usize = 3;

/// The suite-2 verifier of one gateway.
pub struct Verifier {
    config: Config,
    devices: BTreeMap<ShortId, State>,
    events: VecDeque<Event>,
    dropped_events: u64,
    /// Frames waiting for their key, all devices together.
    pending_total: usize,
}

impl Verifier {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            devices: BTreeMap::new(),
            events: VecDeque::new(),
            dropped_events: 0,
            pending_total: 0,
        }
    }

    /// Adds a device's anchor, checked against its suite-1 key of the anchor's epoch
    /// (the caller takes it from its suite-1 key state). Re-adding the same anchor is
    /// a no-op.
    ///
    /// **Re-anchoring** (a device anchors again after a suite-1 rotation, which retires
    /// the key that signed its first anchor): an anchor of a *later* epoch than the
    /// tracked one, with the same schedule (start, interval, delay) and a chain that
    /// starts after every interval the device is known to have used, replaces what
    /// follows: the tracked chains end just before the new `first` (chains a renewal
    /// committed to from there on are superseded) and the new chain is tracked from its
    /// anchor. No interval can so carry frames of two chains. Anything else that
    /// differs from the tracked anchor — another chain in the same epoch, an earlier
    /// epoch, another schedule, a chain that does not start later — is
    /// [`AnchorError::Conflict`].
    pub fn add_anchor(
        &mut self,
        device: DeviceId,
        key: &VerifyingKey,
        frame: &[u8],
    ) -> Result<(), AnchorError> {
        let anchor = SignedAnchor::decode(frame).map_err(AnchorError::Decode)?;
        anchor
            .verify(&device, key)
            .map_err(AnchorError::Signature)?;
        let body = anchor.body().clone();
        if let Some(s) = self.devices.get_mut(&device.short()) {
            if s.device != device {
                return Err(AnchorError::ShortIdTaken);
            }
            return if s.schedule == body {
                Ok(())
            } else {
                reanchor(s, body)
            };
        }
        if self.devices.len() >= self.config.max_devices {
            return Err(AnchorError::Full);
        }
        let mut chains = heapless::Vec::new();
        // Capacity MAX_CHAINS ≥ 1: cannot fail.
        let _ = chains.push(Chain {
            first: body.first,
            len: body.len,
            known_l: 0,
            known: body.anchor.clone(),
            renewed: None,
        });
        self.devices.insert(
            device.short(),
            State {
                device,
                schedule: body,
                chains,
                pending: VecDeque::new(),
                recent: VecDeque::new(),
            },
        );
        Ok(())
    }

    /// Drops frames that have waited for their key longer than
    /// [`Config::max_pending_age_ms`] (a device that never discloses, or a forgery
    /// whose interval the device skipped). Visits every device: call it periodically
    /// (the one verifier does in `handle_timeout`), not per frame. Returns how many
    /// frames were dropped.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let max_age = self.config.max_pending_age_ms;
        let mut dropped = 0;
        for state in self.devices.values_mut() {
            let before = state.pending.len();
            state
                .pending
                .retain(|p| p.received.rx_ms.saturating_add(max_age) >= now_ms);
            dropped += before - state.pending.len();
        }
        self.pending_total -= dropped;
        dropped
    }

    /// Drops everything held for `device` (its anchor, chains and buffered frames).
    /// Returns whether it was tracked.
    pub fn forget(&mut self, device: &DeviceId) -> bool {
        match self.devices.get(&device.short()) {
            Some(s) if s.device == *device => {}
            _ => return false,
        }
        if let Some(s) = self.devices.remove(&device.short()) {
            self.pending_total = self.pending_total.saturating_sub(s.pending.len());
        }
        true
    }

    /// Whether `device` has an anchor here.
    pub fn is_anchored(&self, device: &DeviceId) -> bool {
        self.devices
            .get(&device.short())
            .is_some_and(|s| s.device == *device)
    }

    /// Devices tracked.
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// Frames waiting for their key, all devices together (bounded by
    /// [`Config::max_pending_total`]).
    pub fn pending_total(&self) -> usize {
        self.pending_total
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Events dropped because nobody polled them.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// Handles one suite-2 frame received at `rx_ms` (gateway clock, Unix ms).
    pub fn handle_frame(&mut self, rx_ms: u64, bytes: &[u8]) -> Result<Outcome, Reject> {
        self.handle(rx_ms, bytes, None)
    }

    /// [`Self::handle_frame`] with the receiving radio's observation, which the
    /// resulting [`VerifiedCompact`] carries (for the trust engine's RF context).
    pub fn handle_observed(
        &mut self,
        rx_ms: u64,
        bytes: &[u8],
        rx: Observation,
    ) -> Result<Outcome, Reject> {
        self.handle(rx_ms, bytes, Some(rx))
    }

    fn handle(
        &mut self,
        rx_ms: u64,
        bytes: &[u8],
        rx: Option<Observation>,
    ) -> Result<Outcome, Reject> {
        let frame = Parsed::parse(bytes)?;
        let config = self.config;
        let Self {
            devices,
            events,
            dropped_events,
            pending_total,
            ..
        } = self;
        let state = devices
            .get_mut(&frame.device())
            .ok_or(Reject::UnknownDevice)?;
        let i = frame.interval();
        if state.schedule.start_of(i) > rx_ms.saturating_add(config.max_skew_ms) {
            return Err(Reject::Future { interval: i });
        }
        if !state.schedule.in_time(i, rx_ms, config.max_skew_ms) {
            return Err(Reject::Late { interval: i });
        }
        if state.chains.first().is_some_and(|c| i < c.first) {
            return Err(Reject::BeforeChain { interval: i });
        }
        let same = |r: &Received| r.frame() == bytes;
        if state
            .pending
            .iter()
            .any(|p| p.interval == i && same(&p.received))
            || state
                .recent
                .iter()
                .any(|d| d.interval == i && same(&d.received))
        {
            return Ok(Outcome::Duplicate {
                device: state.device,
                interval: i,
            });
        }

        // The disclosed key, if any, must hash to the last known key of its chain.
        if let Parsed::Attestation(v) = &frame {
            let d = u32::from(state.schedule.delay);
            if let Some(j) = i.checked_sub(d).filter(|j| *j >= state.schedule.first) {
                disclose(state, j, &v.disclosed())?;
            }
        }

        let mut sink = Sink {
            events,
            dropped: dropped_events,
            max: config.max_events,
        };
        let known_now = is_known(state, i);
        let mut released = 0;
        if !known_now {
            // The disclosure this frame carried may free room before the bound is
            // checked, so a full buffer never blocks the frame that would drain it.
            let freed = release(state, &config, &mut sink);
            *pending_total -= freed;
            released += freed;
            if state.pending.len() >= config.max_pending
                || *pending_total >= config.max_pending_total
            {
                return Err(Reject::PendingFull);
            }
        }
        let Some(frame_bytes) = FrameBuf::new(bytes) else {
            // Cannot happen: both parsers bound the frame to MAX_COMPACT_FRAME.
            return Err(Reject::Decode(DecodeError::Oversize {
                len: bytes.len(),
                max: MAX_COMPACT_FRAME,
            }));
        };
        state.pending.push_back(Pending {
            received: Received {
                frame: frame_bytes,
                rx_ms,
            },
            rx,
            interval: i,
            renewal: matches!(frame, Parsed::Renewal(_)),
        });
        *pending_total += 1;
        let checked = release(state, &config, &mut sink);
        *pending_total -= checked;
        released += checked;
        Ok(if known_now {
            Outcome::Checked {
                device: state.device,
                interval: i,
                released: released.saturating_sub(1),
            }
        } else {
            Outcome::Buffered {
                device: state.device,
                interval: i,
                released,
            }
        })
    }
}

/// The bounded event queue (drop oldest at the bound, counted).
struct Sink<'a> {
    events: &'a mut VecDeque<Event>,
    dropped: &'a mut u64,
    max: usize,
}

impl Sink<'_> {
    fn push(&mut self, e: Event) {
        if self.events.len() >= self.max {
            self.events.pop_front();
            *self.dropped += 1;
        }
        self.events.push_back(e);
    }
}

/// Checks a disclosed key for global interval `j` and advances the chain's known key.
fn disclose(state: &mut State, j: u32, key: &ChainKey) -> Result<(), Reject> {
    let device = state.device;
    let Some(chain) = state.chains.iter_mut().find(|c| c.local(j).is_some()) else {
        // Its chain is not known yet (a renewal still waiting): nothing to check.
        return Ok(());
    };
    let l = j - chain.first + 1;
    if l <= chain.known_l {
        return Ok(());
    }
    if crypto::walk(&device, chain.first, l, key, chain.known_l) != chain.known {
        return Err(Reject::BadDisclosure);
    }
    chain.known_l = l;
    chain.known = key.clone();
    Ok(())
}

/// Whether the key of global interval `i` is known (no hashing).
fn is_known(state: &State, i: u32) -> bool {
    state
        .chains
        .iter()
        .find(|c| c.local(i).is_some())
        .is_some_and(|c| i - c.first < c.known_l)
}

/// The key of global interval `i` if it is known (disclosed or derivable).
fn key_of(state: &State, i: u32) -> Option<ChainKey> {
    let c = state.chains.iter().find(|c| c.local(i).is_some())?;
    let l = i - c.first + 1;
    (l <= c.known_l).then(|| crypto::walk(&state.device, c.first, c.known_l, &c.known, l))
}

/// Checks every waiting frame whose key is now known. Returns how many were checked
/// (and so left the buffer).
fn release(state: &mut State, config: &Config, events: &mut Sink<'_>) -> usize {
    let mut checked = 0;
    loop {
        let Some(idx) = state
            .pending
            .iter()
            .position(|p| is_known(state, p.interval))
        else {
            return checked;
        };
        // Usually the oldest frame: `pop_front` is far cheaper than a middle removal.
        let taken = if idx == 0 {
            state.pending.pop_front()
        } else {
            state.pending.remove(idx)
        };
        let Some(p) = taken else {
            return checked;
        };
        checked += 1;
        let i = p.interval;
        let Some(key) = key_of(state, i) else {
            continue;
        };
        if !mac_ok(p.received.frame(), &crypto::mac_key(&key)) {
            events.push(Event::BadMac {
                device: state.device,
                interval: i,
            });
            continue;
        }
        if let Some(prev) = state.recent.iter().find(|d| d.interval == i) {
            if prev.received.frame != p.received.frame {
                events.push(Event::Divergence(Box::new(Conflict {
                    device: state.device,
                    interval: i,
                    key: prev.key.clone(),
                    first: prev.received,
                    second: p.received,
                })));
            }
            continue;
        }
        if p.renewal {
            // It decoded on arrival, so it decodes again.
            if let Ok(r) = Maced::<Renewal>::decode(p.received.frame()) {
                renewed(state, i, r.body(), events);
            }
        } else {
            events.push(Event::Authenticated(VerifiedCompact {
                device: state.device,
                interval: i,
                rx_ms: p.received.rx_ms,
                rx: p.rx,
                frame: p.received.frame,
            }));
        }
        if state.recent.len() >= config.recent {
            state.recent.pop_front();
        }
        state.recent.push_back(Done {
            interval: i,
            key,
            received: p.received,
        });
    }
}

/// Tracks a later-epoch anchor of an anchored device (see [`Verifier::add_anchor`]).
fn reanchor(state: &mut State, body: Anchor) -> Result<(), AnchorError> {
    let old = &state.schedule;
    let same_schedule =
        (old.start_ms, old.interval_ms, old.delay) == (body.start_ms, body.interval_ms, body.delay);
    // The highest interval the device is known to have used: frames waiting or
    // authenticated, and the frames that disclosed each chain's highest known key.
    let delay = u32::from(old.delay);
    let used = state
        .pending
        .iter()
        .map(|p| p.interval)
        .chain(state.recent.iter().map(|d| d.interval))
        .chain(
            state
                .chains
                .iter()
                .filter(|c| c.known_l > 0)
                .map(|c| (c.first + c.known_l - 1).saturating_add(delay)),
        )
        .max()
        .unwrap_or(0);
    let starts_before = state.chains.first().is_some_and(|c| c.first < body.first);
    if body.epoch <= old.epoch || !same_schedule || body.first <= used || !starts_before {
        return Err(AnchorError::Conflict);
    }
    // Chains (from renewals) that would start at or after the new one are superseded;
    // the others end just before it.
    state.chains.retain(|c| c.first < body.first);
    for c in state.chains.iter_mut() {
        if c.last() >= body.first {
            c.len = body.first - c.first;
            c.renewed = None;
        }
    }
    if state.chains.is_full() {
        state.chains.remove(0);
    }
    // Room was made above: cannot fail.
    let _ = state.chains.push(Chain {
        first: body.first,
        len: body.len,
        known_l: 0,
        known: body.anchor.clone(),
        renewed: None,
    });
    state.schedule = body;
    Ok(())
}

/// Records a verified renewal of the chain containing interval `i`.
fn renewed(state: &mut State, i: u32, r: &Renewal, events: &mut Sink<'_>) {
    let device = state.device;
    let Some(pos) = state.chains.iter().position(|c| c.local(i).is_some()) else {
        return;
    };
    let commitment = (r.len, r.anchor.clone());
    let chain = &mut state.chains[pos];
    match &chain.renewed {
        Some(c) if *c == commitment => return,
        Some(_) => {
            events.push(Event::RenewalConflict {
                device,
                interval: i,
            });
            return;
        }
        None => chain.renewed = Some(commitment),
    }
    let Some(first) = chain.last().checked_add(1) else {
        return;
    };
    if first.checked_add(r.len).is_none() || pos + 1 != state.chains.len() {
        return;
    }
    if state.chains.is_full() {
        state.chains.remove(0);
    }
    // Room was made above: cannot fail.
    let _ = state.chains.push(Chain {
        first,
        len: r.len,
        known_l: 0,
        known: r.anchor.clone(),
        renewed: None,
    });
    events.push(Event::Renewed {
        device,
        first,
        len: r.len,
    });
}
