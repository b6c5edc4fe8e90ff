//! [`Radio`] over lora-phy 3, for boards with an SX126x, SX127x or STM32WL radio.
//!
//! Owns the translation between this crate's types and lora-phy's: modulation and packet
//! parameters (8-symbol preamble, explicit header, CRC on, IQ not inverted: exactly what a
//! LoRaWAN gateway expects of an uplink), and the packet status into [`RxMeta`]. `no_std`,
//! no allocation. The board creates `LoRa` (with `enable_public_network = true`, so that
//! LoRaWAN gateways, which listen for the public sync word, hear Slope frames) and supplies
//! a [`Clock`] for receive timestamps: this module never reads a clock itself.
//!
//! lora-phy reports SNR in whole decibels, so [`RxMeta::snr`] from this driver has a 1 dB
//! resolution; it reports neither a separate signal RSSI nor a frequency offset.

use lora_phy::LoRa;
use lora_phy::mod_params::RadioError;
use lora_phy::mod_traits::RadioKind;
use lora_phy::{DelayNs, RxMode};

use crate::airtime::{MAX_PHY_PAYLOAD, Modulation, PREAMBLE_SYMBOLS};
use crate::meta::{RxMeta, Snr};
use crate::radio::{Radio, Tune, TxParams, TxReport};

/// Source of receive timestamps, in microseconds (e.g. `embassy_time::Instant`).
pub trait Clock {
    /// Current time, µs.
    fn now_us(&mut self) -> u64;
}

impl<F: FnMut() -> u64> Clock for F {
    fn now_us(&mut self) -> u64 {
        self()
    }
}

/// What the receiver listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxConfig {
    /// Centre frequency, Hz.
    pub freq_hz: u32,
    /// Modulation.
    pub modulation: Modulation,
}

/// Errors of the lora-phy driver.
#[derive(Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The radio or its bus reported an error.
    Radio(RadioError),
    /// Frame longer than 255 bytes.
    FrameTooLong(usize),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Radio(e) => write!(f, "radio error: {e:?}"),
            Error::FrameTooLong(n) => write!(f, "frame of {n} bytes exceeds {MAX_PHY_PAYLOAD}"),
        }
    }
}

impl From<RadioError> for Error {
    fn from(e: RadioError) -> Self {
        Error::Radio(e)
    }
}

/// A lora-phy radio, generic over the chip (`RK`), delay (`DLY`) and clock (`C`).
pub struct LoraRadio<RK: RadioKind, DLY: DelayNs, C: Clock> {
    lora: LoRa<RK, DLY>,
    clock: C,
    rx: RxConfig,
}

impl<RK: RadioKind, DLY: DelayNs, C: Clock> LoraRadio<RK, DLY, C> {
    /// Wrap an initialised `LoRa`; `rx` is what [`Radio::receive`] listens to.
    pub fn new(lora: LoRa<RK, DLY>, clock: C, rx: RxConfig) -> Self {
        Self { lora, clock, rx }
    }

    /// Change what the receiver listens to (from the next `receive`).
    pub fn set_rx(&mut self, rx: RxConfig) {
        self.rx = rx;
    }

    /// Give back the lora-phy handle (e.g. to put the radio to sleep).
    pub fn into_inner(self) -> LoRa<RK, DLY> {
        self.lora
    }
}

impl<RK: RadioKind, DLY: DelayNs, C: Clock> Radio for LoraRadio<RK, DLY, C> {
    type Error = Error;

    async fn transmit(&mut self, frame: &[u8], params: TxParams) -> Result<TxReport, Error> {
        let m = params.modulation;
        let airtime_us = m
            .time_on_air_us(frame.len())
            .map_err(|e| Error::FrameTooLong(e.len))?;
        let mdltn = self
            .lora
            .create_modulation_params(m.sf, m.bw, m.cr, params.freq_hz)?;
        let mut pkt = self.lora.create_tx_packet_params(
            u16::from(PREAMBLE_SYMBOLS),
            false,
            true,
            false,
            &mdltn,
        )?;
        self.lora
            .prepare_for_tx(&mdltn, &mut pkt, i32::from(params.power_dbm), frame)
            .await?;
        self.lora.tx().await?;
        Ok(TxReport { airtime_us })
    }

    async fn receive(&mut self, buf: &mut [u8]) -> Result<(usize, RxMeta), Error> {
        let RxConfig {
            freq_hz,
            modulation: m,
        } = self.rx;
        let mdltn = self
            .lora
            .create_modulation_params(m.sf, m.bw, m.cr, freq_hz)?;
        let max = u8::try_from(buf.len()).unwrap_or(u8::MAX);
        let pkt = self.lora.create_rx_packet_params(
            u16::from(PREAMBLE_SYMBOLS),
            false,
            max,
            true,
            false,
            &mdltn,
        )?;
        self.lora
            .prepare_for_rx(RxMode::Continuous, &mdltn, &pkt)
            .await?;
        let (len, status) = self.lora.rx(&pkt, buf).await?;
        let timestamp_us = self.clock.now_us();
        let meta = RxMeta {
            rssi_dbm: status.rssi,
            signal_rssi_dbm: None,
            snr: Snr::from_db(status.snr),
            freq_hz,
            sf: m.sf,
            bw: m.bw,
            timestamp_us,
            freq_offset_hz: None,
        };
        Ok((usize::from(len), meta))
    }
}

/// `listen_on` is [`LoraRadio::set_rx`]; the radio is programmed by the next `receive`.
/// `idle` puts the chip in warm sleep (configuration kept; an SX126x draws about 1 µA
/// there instead of about 5 mA in receive); the next transmit or receive wakes it.
impl<RK: RadioKind, DLY: DelayNs, C: Clock> Tune for LoraRadio<RK, DLY, C> {
    fn listen_on(&mut self, freq_hz: u32, modulation: Modulation) -> Result<(), Error> {
        self.set_rx(RxConfig {
            freq_hz,
            modulation,
        });
        Ok(())
    }

    async fn idle(&mut self) -> Result<(), Error> {
        self.lora.sleep(true).await?;
        Ok(())
    }
}
