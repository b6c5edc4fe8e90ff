//! The [`Radio`] trait: the one interface between Slope device or gateway code and a LoRa
//! transceiver, whether it is a board (lora-phy), the channel simulator or a packet
//! forwarder.
//!
//! Frames are opaque bytes here: the caller frames them with [`crate::frame`] first.
//! Regional rules (duty cycle, dwell time) are enforced above the radio with
//! [`crate::duty_cycle::DutyCycle`], so a refusal carries a time to wait instead of being
//! swallowed by a driver.

use crate::airtime::Modulation;
use crate::meta::RxMeta;

/// How to send one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxParams {
    /// Centre frequency in Hz.
    pub freq_hz: u32,
    /// Spreading factor, bandwidth and coding rate.
    pub modulation: Modulation,
    /// Conducted output power in dBm.
    pub power_dbm: i8,
}

/// What a completed transmission cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxReport {
    /// Time on air in microseconds, computed from the modulation and length (see
    /// [`crate::airtime`]).
    pub airtime_us: u32,
}

/// A half-duplex LoRa transceiver.
///
/// `async fn` in a trait: the futures are not required to be `Send`, which suits embedded
/// executors (embassy) and `tokio::task::LocalSet`; implementations in this crate document
/// whether theirs are.
#[allow(async_fn_in_trait)]
pub trait Radio {
    /// Error of this implementation.
    type Error: core::fmt::Debug + core::fmt::Display;

    /// Send `frame` (a complete PHY payload, at most 255 bytes) and wait until it is on air
    /// completely.
    async fn transmit(&mut self, frame: &[u8], params: TxParams) -> Result<TxReport, Self::Error>;

    /// Wait for the next frame, copy it into `buf` and return its length and metadata.
    async fn receive(&mut self, buf: &mut [u8]) -> Result<(usize, RxMeta), Self::Error>;
}
