//! `slope-testnet`: a reproducible experiment on a simulated Slope network.
//!
//! What it is: a deterministic discrete-event simulation of hundreds to thousands of
//! LoRa devices and tens to hundreds of gateways, running the real protocol code with
//! either attestation suite (`--suite ed25519|compact`) —
//! devices run `slope_node::device::Slope` on simulated flash with power-cut injection
//! (and, with suite 2, anchor a compact chain and speak `slope_node::compact` frames),
//! over the `slope_radios::sim` channel (path loss, shadowing, collisions, duty cycle);
//! gateways run `slope_node::verifier::Verifier` (batch verification) and the trust
//! engine, and gossip verified attestations, witness receipt batches and divergence
//! proofs over a modelled overlay — with scripted
//! attacks, each scenario's pass criteria, and a report (terminal table,
//! `results.json`, self-contained `report.html` with SVG plots).
//!
//! Guarantees:
//! - One seed, one trace: every random draw comes from one ChaCha generator seeded by
//!   `--seed` (the channel's shadowing from the same seed); the run prints a blake3
//!   digest of its event trace, and the same parameters give the same digest.
//! - Figures are measured, never assumed: a criterion that this run cannot evaluate is
//!   reported "not evaluated", never "passed".
//! - `forbid(unsafe_code)`; no panic on any simulated input.
//!
//! Non-goals: the simulated layer does not run libp2p (that is `--live`), models radio
//! per `docs/radio-model.md` only, and does not model device-to-device hearing.
//!
//! Map:
//! - [`params`]: run parameters; [`scenario`]: the scenarios; [`criteria`]: their
//!   pass criteria.
//! - [`world`]: the simulation (devices, gateways, channel, gossip, attacks).
//! - [`metrics`]: counters and ground truth; [`summary`]: the results of a run;
//!   [`suites`]: airtime and energy with either suite (measured for the one that ran,
//!   computed for the other).
//! - [`report`]: terminal table, `results.json`, `report.html`.
//! - [`run`]: one run end to end; [`live`]: the live layer (`--live`).
//!
//! Features: none.
#![forbid(unsafe_code)]

pub mod criteria;
pub mod error;
pub mod live;
pub mod metrics;
pub mod params;
pub mod report;
pub mod run;
pub mod scenario;
pub mod suites;
pub mod summary;
pub mod world;

pub use error::Error;
pub use params::Params;
pub use scenario::Scenario;
pub use summary::Summary;
