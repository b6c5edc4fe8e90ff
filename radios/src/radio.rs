//! The [`Radio`] trait: the one interface between Slope device or gateway code and a LoRa
//! transceiver, whether it is a board (lora-phy), the channel simulator or a packet
//! forwarder.
//!
//! A radio that listens on one channel at a time (an end device's transceiver) also
//! implements [`Tune`]: what to listen to and when to sleep. A radio that hears every
//! channel at once (a multi-channel gateway behind a packet forwarder) does not.
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

/// Tuning and power control of a single-channel receiver (an end device's transceiver).
///
/// [`Radio::receive`] takes no channel: the receiver is tuned beforehand with
/// [`Tune::listen_on`], and put in its low-power state with [`Tune::idle`] when a receive
/// window closes (an SX126x left in continuous receive draws about 5 mA). After `idle`,
/// call `listen_on` again before the next receive window: an implementation may hear
/// nothing until then.
#[allow(async_fn_in_trait)]
pub trait Tune: Radio {
    /// The channel and modulation the next [`Radio::receive`] calls listen with (a
    /// receive already waiting may keep the previous ones).
    fn listen_on(&mut self, freq_hz: u32, modulation: Modulation) -> Result<(), Self::Error>;

    /// Stop listening and save power until the next transmit or `listen_on`.
    async fn idle(&mut self) -> Result<(), Self::Error>;
}
