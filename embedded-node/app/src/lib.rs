//! # slope-firmware
//!
//! The Slope roles of a LoRa board, independent of the board: the board crates under
//! `boards/` supply pins, clocks, the flash driver, the radio and the entropy sources,
//! and call into this crate.
//!
//! - [`node`]: the **device role**: a trust slope built from first power-on with
//!   nothing provisioned, persisted before every transmission, periodic attestations in
//!   the duty cycle, receive windows, heard-neighbour evidence.
//! - [`health`], [`harvest`]: every entropy source behind NIST SP 800-90B-style
//!   repetition-count and adaptive-proportion tests; a failing source is reported and
//!   dropped.
//! - [`flash`]: the slope's two-slot storage in internal flash, wear-levelled over a ring
//!   of pages per slot.
//! - [`air`]: channel hopping and data-rate choice under the regional duty cycle and
//!   dwell limits; [`rx`] and [`neighbours`]: what is heard.
//! - [`clock`], [`sensor`]: the traits a board implements, with `slope_radios::radio::Radio`
//!   and `slope_radios::radio::Tune` for the radio (every board uses
//!   `slope_radios::lora::LoraRadio`, lora-phy 3 under the Slope PHY profile).
//! - [`relay`] (feature `relay`): the **relay role**, forwarding heard Slope frames to a
//!   mesh node as Semtech UDP `PUSH_DATA` over embassy-net; [`gwmp`] is its encoder.
//! - [`board`] (feature `embassy-time`): what every board's `main` does once its
//!   peripherals are up: run the device role, reset after a fatal error.
//! - [`timesync`]: Unix time from gateway receipts heard on air, for the compact suite
//!   (a policy under which an attacker's receipts cannot push the clock ahead faster
//!   than the crystal drifts).
//! - [`compact`]: the compact suite's device loop state (suite 2, hash-only frames):
//!   anchor, persisted chain, schedule.
//! - [`sim`]: host doubles (flash with power cuts, virtual clock, recording radio).
//!
//! ## Guarantees
//!
//! - No input from the air or the network makes this crate panic; every table a remote
//!   party can grow is bounded.
//! - The device never releases a frame whose state is not committed (the slope's
//!   persist-before-transmit rule), and re-sends the last committed frames after a reboot.
//! - `no_std`, no allocator, `#![forbid(unsafe_code)]`.
//!
//! ## Non-goals
//!
//! - Verifying other devices' signatures (the device holds no one's keys; the gateways
//!   do that).
//! - A LoRaWAN MAC: Slope frames are LoRaWAN proprietary frames, sent without joins.
//!
//! ## Features
//!
//! | feature   | default | enables |
//! |-----------|---------|---------|
//! | `defmt`   | no      | logging through `defmt` (otherwise the log calls compile to nothing) |
//! | `relay`   | no      | [`relay`]: the relay role over embassy-net (UDP) |
//! | `compact` | no      | the compact suite's device loop in [`node`] (suite 2, [`compact`]); without it the device attests in suite 1 only (clock synchronisation runs either way) |

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
pub(crate) mod log;

pub mod air;
#[cfg(feature = "embassy-time")]
pub mod board;
pub mod clock;
pub mod compact;
pub mod flash;
pub mod gwmp;
pub mod harvest;
pub mod health;
pub mod neighbours;
pub mod node;
pub mod rx;
pub mod sensor;
pub mod sim;
pub mod timesync;

#[cfg(feature = "relay")]
pub mod relay;
