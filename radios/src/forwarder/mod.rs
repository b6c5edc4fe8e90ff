//! Ingest from commercial LoRa gateways through the Semtech UDP packet forwarder (GWMP,
//! protocol versions 1 and 2), on tokio.
//!
//! Owns the UDP socket (default port [`DEFAULT_PORT`]), acknowledges PUSH_DATA and
//! PULL_DATA, turns each good `rxpk` into an [`Uplink`], tracks gateways by EUI with their
//! latest `stat`, and sends beacons back as PULL_RESP/`txpk` to the address of a gateway's
//! last PULL_DATA.
//!
//! # Security
//!
//! **GWMP has no authentication and no encryption.** Anyone who can send a UDP datagram to
//! this port can pretend to be any gateway and inject any frame with any metadata. Expose
//! the port only to the operator's own gateways (firewall, VPN), and set
//! [`Config::allowed_gateways`] and [`Config::allowed_sources`]. Frames received here are
//! still verified by their signatures above this layer; metadata (RSSI, time) is only as
//! trustworthy as the network path.
//!
//! # Bad input
//!
//! Nothing a datagram contains can panic the server. Every dropped datagram or `rxpk` is
//! counted by reason in [`Stats`]: truncated or oversize datagrams, unknown versions or
//! identifiers, malformed JSON, sources or EUIs not allowed, per-address flood (token
//! bucket), too many gateways or sources tracked, bad `rxpk` fields, CRC not OK, non-LoRa
//! modulation, non-Slope frames (by [`FrameKind`]).
//!
//! # Queue
//!
//! Uplinks go to a bounded `tokio::sync::mpsc` channel of [`Config::queue_capacity`]. When
//! it is full the *arriving* uplink is dropped and counted (`queue_full`): the socket loop
//! never waits for a slow consumer, so acknowledgements stay immediate.
//!
//! # Why not the `semtech-udp` parser
//!
//! `semtech-udp` 0.12 is used in the tests as an independent encoder, but not to parse:
//! its parser accepts only protocol version 2 (rejects v1 gateways), always writes version 2
//! in acknowledgements (a v1 forwarder ignores those), has no top-level `foff`, requires
//! fields that real v2 (`jver`) gateways omit, and slices `datr` by byte index, which panics
//! on a non-ASCII `datr` from the network. The JSON is therefore parsed here with
//! `serde_json` into permissive structs and checked field by field.

mod json;
mod server;
pub mod wire;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

pub use json::{
    Antenna, GatewayStat, MAX_ANTENNAS, MalformedJson, PushData, Rxpk, RxpkError, Txpk,
    format_datr, parse_datr, parse_push_data, parse_utc_us,
};
pub use server::{Forwarder, ForwarderRadio, GatewayInfo};

use crate::frame::{FrameError, FrameKind};
use crate::meta::RxMeta;

/// The packet forwarder's customary server port.
pub const DEFAULT_PORT: u16 = 1700;

/// A gateway's 64-bit EUI (the "MAC address" of the protocol), as sent on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Eui(pub [u8; 8]);

impl core::fmt::Display for Eui {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

/// Server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind (default `0.0.0.0:1700`).
    pub bind: SocketAddr,
    /// If set, only these gateway EUIs are served.
    pub allowed_gateways: Option<HashSet<Eui>>,
    /// If set, only datagrams from these IP addresses are served.
    pub allowed_sources: Option<HashSet<IpAddr>>,
    /// Capacity of the uplink queue.
    pub queue_capacity: usize,
    /// Largest datagram accepted, bytes.
    pub max_datagram: usize,
    /// Most gateways tracked at once. At the bound a new gateway replaces those silent
    /// for [`Self::gateway_idle`]; if none is, it is refused and counted
    /// (`too_many_gateways`).
    pub max_gateways: usize,
    /// How long a gateway may stay silent before the table may forget it (a packet
    /// forwarder sends a PULL_DATA keep-alive every 10 s by default).
    pub gateway_idle: std::time::Duration,
    /// Most source addresses rate-limited at once (further new addresses are dropped).
    pub max_sources: usize,
    /// Sustained datagrams per second allowed from one source address.
    pub rate_per_sec: u32,
    /// Burst of datagrams allowed from one source address.
    pub burst: u32,
    /// Also queue frames that are not Slope frames (counted either way).
    pub deliver_non_slope: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            allowed_gateways: None,
            allowed_sources: None,
            queue_capacity: 1024,
            max_datagram: 16 * 1024,
            max_gateways: 1024,
            gateway_idle: std::time::Duration::from_secs(120),
            max_sources: 4096,
            rate_per_sec: 50,
            burst: 100,
            deliver_non_slope: false,
        }
    }
}

/// One frame heard by one gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct Uplink {
    /// Gateway that forwarded it.
    pub gateway: Eui,
    /// Everything the gateway reported, payload included.
    pub rxpk: Rxpk,
    /// Metadata in the crate's units (best antenna; `timestamp_us` is the gateway's `tmst`).
    pub meta: RxMeta,
}

impl Uplink {
    /// The Slope envelope, or why this is not a Slope frame.
    pub fn envelope(&self) -> Result<&[u8], FrameError> {
        crate::frame::parse_frame(&self.rxpk.data)
    }
}

/// Counters of the server, by outcome. Snapshot of monotonically increasing counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams received.
    pub datagrams: u64,
    /// PUSH_DATA acknowledged.
    pub push_data: u64,
    /// PULL_DATA acknowledged.
    pub pull_data: u64,
    /// TX_ACK received.
    pub tx_ack: u64,
    /// `stat` reports kept.
    pub stat_reports: u64,
    /// Slope uplinks queued.
    pub uplinks: u64,
    /// PULL_RESP sent.
    pub pull_resp: u64,
    /// Dropped: shorter than the header.
    pub truncated: u64,
    /// Dropped: longer than `max_datagram`.
    pub oversize: u64,
    /// Dropped: version not 1 or 2.
    pub unknown_version: u64,
    /// Dropped: unknown identifier.
    pub unknown_identifier: u64,
    /// Dropped: body not valid UTF-8 JSON of the expected shape.
    pub malformed_json: u64,
    /// Dropped: source address not allowed.
    pub source_not_allowed: u64,
    /// Dropped: gateway EUI not allowed.
    pub gateway_not_allowed: u64,
    /// Dropped: source over its rate.
    pub rate_limited: u64,
    /// Dropped: too many source addresses tracked.
    pub too_many_sources: u64,
    /// Dropped: too many gateways tracked.
    pub too_many_gateways: u64,
    /// `rxpk` dropped: CRC failed.
    pub crc_bad: u64,
    /// `rxpk` dropped: no CRC.
    pub crc_absent: u64,
    /// `rxpk` dropped: not LoRa.
    pub not_lora: u64,
    /// `rxpk` dropped: missing or bad field.
    pub bad_rxpk: u64,
    /// `rxpk` dropped: `size` differs from `data`.
    pub size_mismatch: u64,
    /// `rxpk` that are not Slope frames: LoRaWAN join requests.
    pub not_slope_join_request: u64,
    /// Not Slope: LoRaWAN data uplinks.
    pub not_slope_data_up: u64,
    /// Not Slope: everything else (downlinks, join accepts, rejoin, other proprietary,
    /// empty, truncated).
    pub not_slope_other: u64,
    /// Uplinks dropped because the queue was full.
    pub queue_full: u64,
    /// Beacons not sent (unknown gateway, no PULL_DATA yet, socket error).
    pub pull_resp_failed: u64,
}

impl Stats {
    fn count_not_slope(&mut self, e: FrameError) {
        match e {
            FrameError::NotSlope(FrameKind::JoinRequest) => self.not_slope_join_request += 1,
            FrameError::NotSlope(FrameKind::DataUp) => self.not_slope_data_up += 1,
            _ => self.not_slope_other += 1,
        }
    }

    fn count_rxpk_error(&mut self, e: RxpkError) {
        match e {
            RxpkError::CrcBad => self.crc_bad += 1,
            RxpkError::CrcAbsent => self.crc_absent += 1,
            RxpkError::NotLora => self.not_lora += 1,
            RxpkError::SizeMismatch => self.size_mismatch += 1,
            RxpkError::BadField(_) => self.bad_rxpk += 1,
        }
    }
}

/// Errors of the forwarder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Socket error.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// No such gateway, or it has not sent PULL_DATA yet.
    #[error("gateway {0} has no downstream route (no PULL_DATA yet)")]
    NoRoute(Eui),
    /// The uplink queue was closed.
    #[error("forwarder stopped")]
    Stopped,
    /// The receive buffer is too small for the frame.
    #[error("receive buffer of {have} bytes, frame of {need}")]
    BufferTooSmall {
        /// Frame length.
        need: usize,
        /// Buffer length.
        have: usize,
    },
    /// A frame longer than 255 bytes cannot be sent.
    #[error("frame of {0} bytes is too long")]
    FrameTooLong(usize),
}
