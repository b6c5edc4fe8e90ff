//! # slope-radios
//!
//! The radio layer of Slope: how Slope frames get on and off the air.
//!
//! - [`radio::Radio`]: one async trait for a LoRa transceiver, served by a board driver
//!   ([`lora`], feature `lora-phy`), the channel simulator ([`sim`], feature `sim`) and a
//!   Semtech UDP packet forwarder ([`forwarder`], feature `forwarder`).
//! - [`region`], [`duty_cycle`], [`airtime`]: EU868 and US915 rules, a per-node tracker
//!   that refuses (with the time to wait) any frame breaking the duty cycle or dwell time,
//!   and time on air computed by the `lora-modulation` crate.
//! - [`frame`]: Slope frames on air are LoRaWAN proprietary frames (`0xE0`, then `"SL"`,
//!   then the envelope: 3 bytes of overhead), so they share channels and gateways with
//!   LoRaWAN.
//! - [`echo`]: the time echo's receive window (delay, frequency, data rate per region).
//! - [`meta`]: what a receiver reports with every frame ([`meta::RxMeta`]).
//!
//! ## Guarantees
//!
//! - The core (everything not behind `std`) is `no_std`, allocation-free, reads no clock and
//!   draws no randomness: time is passed in.
//! - No input from the air or the network can make this crate panic; decoders return typed
//!   errors and every queue or map a remote party can grow is bounded.
//! - The simulator is deterministic for a seed.
//!
//! ## Non-goals
//!
//! - Envelopes are opaque bytes: this crate never parses, signs or verifies them.
//! - No LoRaWAN MAC (no joins, no ADR; the one downlink window is [`echo`]'s) and no FSK or LR-FHSS.
//! - The packet-forwarder protocol is unauthenticated; this crate does not fix that (see
//!   [`forwarder`]).
//!
//! ## Feature flags
//!
//! | feature     | default | enables |
//! |-------------|---------|---------|
//! | `std`       | yes     | std-only parts (`thiserror` errors) |
//! | `sim`       | yes     | [`sim`]: discrete-event channel simulator (implies `std`) |
//! | `forwarder` | yes     | [`forwarder`]: GWMP v1/v2 ingest server on tokio (implies `std`) |
//! | `lora-phy`  | no      | [`lora`]: `Radio` over lora-phy 3 for SX126x, SX127x, STM32WL (`no_std`) |
//!
//! `--no-default-features` builds the `no_std` core alone;
//! `--no-default-features --features lora-phy` builds the firmware configuration.

#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod airtime;
pub mod duty_cycle;
pub mod echo;
pub mod frame;
pub mod meta;
pub mod radio;
pub mod region;

#[cfg(feature = "forwarder")]
pub mod forwarder;
#[cfg(feature = "lora-phy")]
pub mod lora;
#[cfg(feature = "sim")]
pub mod sim;

pub use lora_modulation::{Bandwidth, CodingRate, SpreadingFactor};
