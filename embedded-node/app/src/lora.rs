//! `Radio` over lora-phy 3, for any chip lora-phy drives (SX126x, the STM32WL's SUBGHZ,
//! SX127x).
//!
//! This is the firmware's thin adapter while `slope_radios::lora` is being written; it
//! follows the Slope PHY profile of `slope_radios::airtime`: 8-symbol preamble, explicit
//! header, CRC on. The sync word is the board's choice (`LoRa::new`'s
//! `enable_public_network`); Slope frames are LoRaWAN proprietary frames meant for LoRaWAN
//! gateways, so the boards use the public one (`0x34`).

use lora_phy::mod_params::{PacketParams, RadioError};
use lora_phy::mod_traits::RadioKind;
use lora_phy::{DelayNs, LoRa, RxMode};
use slope_radios::airtime::{MAX_PHY_PAYLOAD, Modulation, PREAMBLE_SYMBOLS};
use slope_radios::meta::{RxMeta, Snr};
use slope_radios::radio::{Radio, TxParams, TxReport};

use crate::radio::Tune;

/// A lora-phy error, or a receive before [`Tune::listen_on`].
#[derive(Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Fault {
    /// The driver failed.
    Radio(RadioError),
    /// `receive` was called before the receiver was tuned.
    NotTuned,
}

impl From<RadioError> for Fault {
    fn from(e: RadioError) -> Self {
        Self::Radio(e)
    }
}

impl core::fmt::Display for Fault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Radio(e) => write!(f, "radio: {e:?}"),
            Self::NotTuned => f.write_str("receive before the receiver was tuned"),
        }
    }
}

/// A lora-phy transceiver as a Slope `Radio`.
pub struct LoraRadio<RK: RadioKind, DLY: DelayNs> {
    lora: LoRa<RK, DLY>,
    listen: Option<(u32, Modulation)>,
    /// Whether the radio is programmed for `listen` (continuous receive).
    receiving: bool,
    now_us: fn() -> u64,
}

impl<RK: RadioKind, DLY: DelayNs> LoraRadio<RK, DLY> {
    /// Wraps an initialised `LoRa`; `now_us` timestamps receptions (the board's clock).
    pub fn new(lora: LoRa<RK, DLY>, now_us: fn() -> u64) -> Self {
        Self {
            lora,
            listen: None,
            receiving: false,
            now_us,
        }
    }
}

impl<RK: RadioKind, DLY: DelayNs> Radio for LoraRadio<RK, DLY> {
    type Error = Fault;

    async fn transmit(&mut self, frame: &[u8], params: TxParams) -> Result<TxReport, Fault> {
        let m = params.modulation;
        let airtime_us = m
            .time_on_air_us(frame.len())
            .map_err(|_| Fault::Radio(RadioError::PayloadSizeUnexpected(frame.len())))?;
        self.receiving = false;
        let mp = self
            .lora
            .create_modulation_params(m.sf, m.bw, m.cr, params.freq_hz)?;
        let mut pp = self.lora.create_tx_packet_params(
            u16::from(PREAMBLE_SYMBOLS),
            false,
            true,
            false,
            &mp,
        )?;
        self.lora
            .prepare_for_tx(&mp, &mut pp, i32::from(params.power_dbm), frame)
            .await?;
        self.lora.tx().await?;
        Ok(TxReport { airtime_us })
    }

    async fn receive(&mut self, buf: &mut [u8]) -> Result<(usize, RxMeta), Fault> {
        let (freq_hz, m) = self.listen.ok_or(Fault::NotTuned)?;
        let mp = self
            .lora
            .create_modulation_params(m.sf, m.bw, m.cr, freq_hz)?;
        let pp: PacketParams = self.lora.create_rx_packet_params(
            u16::from(PREAMBLE_SYMBOLS),
            false,
            MAX_PHY_PAYLOAD as u8,
            true,
            false,
            &mp,
        )?;
        if !self.receiving {
            self.lora
                .prepare_for_rx(RxMode::Continuous, &mp, &pp)
                .await?;
            self.receiving = true;
        }
        let (len, status) = self.lora.rx(&pp, buf).await?;
        let meta = RxMeta {
            rssi_dbm: status.rssi,
            signal_rssi_dbm: None,
            snr: Snr::from_db(status.snr),
            freq_hz,
            sf: m.sf,
            bw: m.bw,
            timestamp_us: (self.now_us)(),
            freq_offset_hz: None,
        };
        Ok((usize::from(len).min(buf.len()), meta))
    }
}

impl<RK: RadioKind, DLY: DelayNs> Tune for LoraRadio<RK, DLY> {
    fn listen_on(&mut self, freq_hz: u32, modulation: Modulation) {
        if self.listen != Some((freq_hz, modulation)) {
            self.listen = Some((freq_hz, modulation));
            self.receiving = false;
        }
    }

    async fn idle(&mut self) {
        self.receiving = false;
        // Warm sleep keeps the configuration; a failure only costs current.
        let _ = self.lora.sleep(true).await;
    }
}
