//! Time echoes: the gateway's short, unsigned downlink that gives a device its time
//! (docs/protocol.md, "Time echo"; docs/compact-suite.md §3).
//!
//! When the gateway's own radio (a packet forwarder) hears a Slope attestation of a
//! device it knows, it answers in the device's echo window ([`slope_radios::echo`]:
//! 2 s after the uplink's end, EU868 869.525 MHz at SF12) with a
//! [`slope_proto::compact::Echo`]: the device's short id, the position or interval, the
//! first 8 bytes of the frame's link digest, the gateway's receive time (the same
//! `time_ms` its receipts carry) and its witness id.
//!
//! [`Echoer::decide`] is the policy, separate from the I/O:
//! - **What**: suite-1 interactions and suite-2 attestations and renewals, decoded;
//!   anything else heard (inceptions, rotations, anchors, echoes, garbage) is never
//!   answered, so nothing on the air but a well-formed attestation makes the gateway
//!   transmit.
//! - **Whose**: a device this gateway's store knows (suite 1: exactly one device with
//!   that short id, whose id gives the event digest; suite 2: one with a compact
//!   anchor). Frames are not authenticated at this point (a compact MAC cannot be
//!   checked before its key is disclosed): someone who knows a device's short id can
//!   make the gateway answer a forged frame, at most once per device per
//!   [`Config::min_gap_ms`], and spend the gateway's downlink budget, which a radio
//!   jammer could deny anyway. The echo itself tells the device nothing it does not
//!   treat as possibly forged.
//! - **How often**: at most one echo per device (short id) per [`Config::min_gap_ms`]
//!   (default 60 s, the compact interval): a rotation and its interaction, a resent
//!   frame, two gateways' copies of one frame in one forwarder, get one echo.
//! - **Budget**: a duty-cycle tracker per gateway (EU868 g3: 10 %, 360 s an hour;
//!   an echo at SF12 is 1.97 s on air, so at most ≈ 182 echoes an hour per gateway).
//!   An echo the budget refuses is dropped, not delayed (it would miss the window).
//! - **Bounds**: [`Config::max_devices`] devices remembered (entries older than the gap
//!   are forgotten first; at the bound a new device gets no echo) and
//!   [`Config::max_gateways`] duty-cycle trackers (beyond: no echo).
//!
//! Every decision is counted in `slope_echo_total{kind=...}`: `sent`, `send_failed`,
//! and the skips `not_attestation`, `unknown_device`, `ambiguous_device`, `too_soon`,
//! `duty_cycle`, `no_region`, `table_full`, `store_error`.
//!
//! Sources without a downlink (the simulator's channel, tests pushing into the
//! [`crate::source::RadioSink`]) send no echo.

use std::collections::HashMap;
use std::sync::Arc;

use slope_proto::compact::crypto::frame_digest;
use slope_proto::compact::{Attestation, Echo, Maced, Renewal};
use slope_proto::{DeviceId, Event, ShortId, WitnessId};
use slope_radios::duty_cycle::DutyCycle;
use slope_radios::echo::Window;
use slope_radios::region::Region;

use crate::metrics::{Metrics, kind};
use crate::store::Store;

/// The echo policy's settings (`[radio]` in the configuration file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// At most one echo per device in this many ms.
    pub min_gap_ms: u64,
    /// Devices remembered for the gap.
    pub max_devices: usize,
    /// Gateways (EUIs) with a duty-cycle tracker.
    pub max_gateways: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            min_gap_ms: 60_000,
            max_devices: 100_000,
            max_gateways: 1024,
        }
    }
}

/// Why a frame gets no echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Skip {
    /// Not a well-formed suite-1 interaction or suite-2 attestation / renewal.
    NotAttestation,
    /// No device with that short id (or no compact anchor for a suite-2 frame).
    UnknownDevice,
    /// Several suite-1 devices share the short id: which digest to echo is unclear.
    AmbiguousDevice,
    /// This device had an echo less than the gap ago.
    TooSoon,
    /// The gateway's downlink budget is spent (or the echo would break a limit).
    DutyCycle,
    /// The uplink's frequency is in no supported region.
    NoRegion,
    /// The device or gateway table is full.
    TableFull,
    /// The store could not be read.
    StoreError,
}

impl Skip {
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Skip::NotAttestation => "not_attestation",
            Skip::UnknownDevice => "unknown_device",
            Skip::AmbiguousDevice => "ambiguous_device",
            Skip::TooSoon => "too_soon",
            Skip::DutyCycle => "duty_cycle",
            Skip::NoRegion => "no_region",
            Skip::TableFull => "table_full",
            Skip::StoreError => "store_error",
        }
    }
}

/// An echo to send: the message, framed for the air, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub echo: Echo,
    /// The PHY payload (radio framing and the echo).
    pub phy: Vec<u8>,
    pub window: Window,
}

/// Decides which heard frames get an echo (see the module documentation).
pub struct Echoer<G> {
    config: Config,
    witness: WitnessId,
    store: Arc<Store>,
    metrics: Metrics,
    last: HashMap<ShortId, u64>,
    duty: HashMap<G, DutyCycle>,
}

impl<G> std::fmt::Debug for Echoer<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Echoer")
            .field("devices", &self.last.len())
            .field("gateways", &self.duty.len())
            .finish()
    }
}

impl<G: std::hash::Hash + Eq + Copy> Echoer<G> {
    pub fn new(config: Config, witness: WitnessId, store: Arc<Store>, metrics: Metrics) -> Self {
        Self {
            config,
            witness,
            store,
            metrics,
            last: HashMap::new(),
            duty: HashMap::new(),
        }
    }

    /// Decides whether `envelope`, heard by `gateway` on `freq_hz` at `rx_ms` (gateway
    /// wall clock) and `now_us` (a monotonic clock for the duty cycle, at the uplink's
    /// end), gets an echo; records it (gap and airtime) when it does. Counts the skip.
    pub fn decide(
        &mut self,
        gateway: G,
        envelope: &[u8],
        freq_hz: u32,
        rx_ms: u64,
        now_us: u64,
    ) -> Result<Answer, Skip> {
        let out = self.try_decide(gateway, envelope, freq_hz, rx_ms, now_us);
        if let Err(skip) = out {
            self.count(skip.label());
        }
        out
    }

    /// Counts a sent echo, or one the gateway could not be sent.
    pub fn count(&self, label: &'static str) {
        self.metrics.echo.get_or_create(&kind(label)).inc();
    }

    fn try_decide(
        &mut self,
        gateway: G,
        envelope: &[u8],
        freq_hz: u32,
        rx_ms: u64,
        now_us: u64,
    ) -> Result<Answer, Skip> {
        let (device, seq, link) = self.attestation(envelope)?;
        let region = Window::region_of(freq_hz).ok_or(Skip::NoRegion)?;
        let window = Window::of(region);
        if let Some(&t) = self.last.get(&device)
            && rx_ms < t.saturating_add(self.config.min_gap_ms)
        {
            return Err(Skip::TooSoon);
        }
        if !self.last.contains_key(&device) && self.last.len() >= self.config.max_devices {
            let gap = self.config.min_gap_ms;
            self.last.retain(|_, t| rx_ms < t.saturating_add(gap));
            if self.last.len() >= self.config.max_devices {
                return Err(Skip::TableFull);
            }
        }
        let mut digest = [0u8; 8];
        digest.copy_from_slice(&link[..8]);
        let echo = Echo {
            device,
            seq,
            digest,
            rx_ms: rx_ms.max(1),
            witness: self.witness,
        };
        let bytes = echo.encode().map_err(|_| Skip::NotAttestation)?;
        let mut phy = vec![0u8; bytes.len() + 3];
        let n = slope_radios::frame::encode_frame(&bytes, &mut phy)
            .map_err(|_| Skip::NotAttestation)?;
        phy.truncate(n);
        // The downlink budget (EU868; US915's 500 kHz downlinks have none).
        if region == Region::Eu868 {
            if !self.duty.contains_key(&gateway) && self.duty.len() >= self.config.max_gateways {
                return Err(Skip::TableFull);
            }
            let at = now_us.saturating_add(u64::from(window.delay_us));
            self.duty
                .entry(gateway)
                .or_insert_with(|| DutyCycle::new(region))
                .try_transmit(at, window.freq_hz, window.modulation, phy.len())
                .map_err(|_| Skip::DutyCycle)?;
        }
        self.last.insert(device, rx_ms);
        Ok(Answer { echo, phy, window })
    }

    /// The device, position or interval and link digest of a suite-1 interaction or a
    /// suite-2 attestation or renewal of a known device.
    fn attestation(&self, envelope: &[u8]) -> Result<(ShortId, u32, [u8; 16]), Skip> {
        let candidates = |short: ShortId| -> Result<Vec<DeviceId>, Skip> {
            self.store
                .devices_with_prefix(&short.0)
                .map_err(|_| Skip::StoreError)
        };
        if envelope.get(1) == Some(&slope_proto::compact::SUITE) {
            let (device, interval) = match envelope.get(2) {
                Some(1) => Maced::<Attestation>::decode(envelope)
                    .map(|a| (a.body().device, a.body().interval)),
                Some(2) => {
                    Maced::<Renewal>::decode(envelope).map(|r| (r.body().device, r.body().interval))
                }
                _ => return Err(Skip::NotAttestation),
            }
            .map_err(|_| Skip::NotAttestation)?;
            let mut known = false;
            for id in candidates(device)? {
                known |= self
                    .store
                    .compact_device(&id)
                    .map_err(|_| Skip::StoreError)?
                    .is_some();
            }
            if !known {
                return Err(Skip::UnknownDevice);
            }
            let mut link = [0u8; 16];
            link.copy_from_slice(&frame_digest(envelope)[..16]);
            return Ok((device, interval, link));
        }
        let Ok(Event::Interaction(i)) = Event::decode(envelope) else {
            return Err(Skip::NotAttestation);
        };
        let short = i.body().device;
        let ids = candidates(short)?;
        let [id] = ids.as_slice() else {
            return Err(if ids.is_empty() {
                Skip::UnknownDevice
            } else {
                Skip::AmbiguousDevice
            });
        };
        let event = Event::Interaction(i);
        Ok((short, event.seq(), event.digest(id).link().0))
    }
}
