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

use alloc::collections::{BTreeMap, VecDeque};
use core::fmt;

use ed25519_dalek::VerifyingKey;
use heapless::Vec;
use slope_proto::compact::crypto::{self, ChainKey};
use slope_proto::compact::frame::MacedBody;
use slope_proto::compact::params::MAX_COMPACT_FRAME;
use slope_proto::compact::{self as c2, Anchor, Attestation, Maced, Renewal, SignedAnchor};
use slope_proto::{DecodeError, DeviceId, ShortId, SignatureError};

/// Verifier bounds and the clock bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Bound on device clock error + gateway clock error (default 10 s).
    pub max_skew_ms: u64,
    /// Devices tracked (default 1,000,000).
    pub max_devices: usize,
    /// Frames waiting for their key, per device (default 32).
    pub max_pending: usize,
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

/// What happened to a frame on arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Kept until its key is disclosed; `released` earlier frames were checked.
    Buffered { released: usize },
    /// Its key was already known: checked at once (result in the events).
    Checked { released: usize },
    /// Byte-identical to a frame already held.
    Duplicate,
}

/// An attestation whose MAC verified under a disclosed key and that arrived in time.
/// Only the verifier makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCompact {
    device: DeviceId,
    interval: u32,
    rx_ms: u64,
    frame: Vec<u8, MAX_COMPACT_FRAME>,
}

impl VerifiedCompact {
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
        &self.frame
    }
}

/// A frame with the time it was received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub frame: Vec<u8, MAX_COMPACT_FRAME>,
    pub rx_ms: u64,
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
    Divergence {
        device: DeviceId,
        interval: u32,
        key: ChainKey,
        first: Received,
        second: Received,
    },
    /// A second, different renewal of one chain verified (evidence of duplicity that
    /// the renewal chain cannot attribute to one interval): the first one is kept.
    RenewalConflict { device: DeviceId, interval: u32 },
    /// A waiting frame's MAC failed once its key was known: dropped.
    BadMac { device: DeviceId, interval: u32 },
}

enum Frame {
    Attestation(Maced<Attestation>),
    Renewal(Maced<Renewal>),
}

impl Frame {
    fn interval(&self) -> u32 {
        match self {
            Self::Attestation(m) => m.body().interval(),
            Self::Renewal(m) => m.body().interval(),
        }
    }
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Attestation(m) => m.frame(),
            Self::Renewal(m) => m.frame(),
        }
    }
    fn verify(&self, mac_key: &[u8; 32]) -> bool {
        match self {
            Self::Attestation(m) => m.verify(mac_key),
            Self::Renewal(m) => m.verify(mac_key),
        }
    }
}

struct Pending {
    frame: Frame,
    rx_ms: u64,
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
    chains: VecDeque<Chain>,
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
}

impl Verifier {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            devices: BTreeMap::new(),
            events: VecDeque::new(),
            dropped_events: 0,
        }
    }

    /// Adds a device's anchor, checked against its suite-1 key of the anchor's epoch
    /// (the caller takes it from its suite-1 key state). Re-adding the same anchor is
    /// a no-op.
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
        if let Some(s) = self.devices.get(&device.short()) {
            if s.device != device {
                return Err(AnchorError::ShortIdTaken);
            }
            return if s.schedule == body {
                Ok(())
            } else {
                Err(AnchorError::Conflict)
            };
        }
        if self.devices.len() >= self.config.max_devices {
            return Err(AnchorError::Full);
        }
        let mut chains = VecDeque::new();
        chains.push_back(Chain {
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
        let frame = match c2::decode(bytes).map_err(Reject::Decode)? {
            c2::Message::Attestation(m) => Frame::Attestation(m),
            c2::Message::Renewal(m) => Frame::Renewal(m),
            _ => return Err(Reject::UnexpectedKind),
        };
        let short = match &frame {
            Frame::Attestation(m) => m.body().device,
            Frame::Renewal(m) => m.body().device,
        };
        let config = self.config;
        let Self {
            devices,
            events,
            dropped_events,
            ..
        } = self;
        let state = devices.get_mut(&short).ok_or(Reject::UnknownDevice)?;
        let i = frame.interval();
        if state.schedule.start_of(i) > rx_ms.saturating_add(config.max_skew_ms) {
            return Err(Reject::Future { interval: i });
        }
        if !state.schedule.in_time(i, rx_ms, config.max_skew_ms) {
            return Err(Reject::Late { interval: i });
        }
        if state.chains.front().is_some_and(|c| i < c.first) {
            return Err(Reject::BeforeChain { interval: i });
        }
        if state.pending.iter().any(|p| p.frame.bytes() == bytes)
            || state.recent.iter().any(|d| d.received.frame == bytes)
        {
            return Ok(Outcome::Duplicate);
        }

        // The disclosed key, if any, must hash to the last known key of its chain.
        if let Frame::Attestation(m) = &frame {
            let d = u32::from(state.schedule.delay);
            if let Some(j) = i.checked_sub(d).filter(|j| *j >= state.schedule.first) {
                disclose(state, j, &m.body().disclosed)?;
            }
        }

        let known_now = is_known(state, i);
        if !known_now && state.pending.len() >= config.max_pending {
            return Err(Reject::PendingFull);
        }
        state.pending.push_back(Pending { frame, rx_ms });
        let mut sink = Sink {
            events,
            dropped: dropped_events,
            max: config.max_events,
        };
        let released = release(state, &config, &mut sink);
        Ok(if known_now {
            Outcome::Checked {
                released: released.saturating_sub(1),
            }
        } else {
            Outcome::Buffered { released }
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

/// Checks every waiting frame whose key is now known. Returns how many were checked.
fn release(state: &mut State, config: &Config, events: &mut Sink<'_>) -> usize {
    let mut checked = 0;
    loop {
        let Some(idx) = state
            .pending
            .iter()
            .position(|p| is_known(state, p.frame.interval()))
        else {
            return checked;
        };
        let Some(p) = state.pending.remove(idx) else {
            return checked;
        };
        checked += 1;
        let i = p.frame.interval();
        let Some(key) = key_of(state, i) else {
            continue;
        };
        if !p.frame.verify(&crypto::mac_key(&key)) {
            events.push(Event::BadMac {
                device: state.device,
                interval: i,
            });
            continue;
        }
        let received = Received {
            frame: Vec::from_slice(p.frame.bytes()).unwrap_or_default(),
            rx_ms: p.rx_ms,
        };
        if let Some(prev) = state.recent.iter().find(|d| d.interval == i) {
            if prev.received.frame != received.frame {
                events.push(Event::Divergence {
                    device: state.device,
                    interval: i,
                    key: prev.key.clone(),
                    first: prev.received.clone(),
                    second: received,
                });
            }
            continue;
        }
        if let Frame::Renewal(r) = &p.frame {
            renewed(state, i, r.body(), events);
        } else {
            events.push(Event::Authenticated(VerifiedCompact {
                device: state.device,
                interval: i,
                rx_ms: p.rx_ms,
                frame: received.frame.clone(),
            }));
        }
        if state.recent.len() >= config.recent {
            state.recent.pop_front();
        }
        state.recent.push_back(Done {
            interval: i,
            key,
            received,
        });
    }
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
    if state.chains.len() >= MAX_CHAINS {
        state.chains.pop_front();
    }
    state.chains.push_back(Chain {
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
