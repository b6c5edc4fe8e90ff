//! `slope-node`: the sans-IO Slope protocol engine.
//!
//! What it is: the state machines that run unchanged in the firmware, the gateway daemon
//! and the simulator. Inputs are `handle_*` calls, outputs are return values and
//! `poll_*` calls; time (`now`, milliseconds) and entropy are always arguments.
//!
//! Guarantees: `no_std` (+ `alloc` for everything but the device), no I/O, no clock,
//! no OS randomness (enforced by `clippy.toml`), `forbid(unsafe_code)`, no panic on any
//! input a remote party controls, every map a remote party can grow is bounded.
//!
//! Map of the crate:
//! - [`compact`]: suite 2, compact hash-only attestations: device chain traversal,
//!   verifier with delayed key disclosure, stateless divergence proofs.
//! - [`device`]: the device's own slope: entropy, key ratchet, pre-rotation,
//!   persist-before-transmit.
//! - [`verifier`]: per-device key state, linking across lost frames, escrow, duplicate
//!   and divergence detection, `VerifiedAttestation`.
//! - [`trust`]: evidential weighting, graduated admission, grants and revocations,
//!   signed operator actions (the trust engine).
//! - [`lineage`]: the hash-chained, exportable, independently verifiable log of every
//!   observation, weighting, decision, grant, revocation, proof and operator action.
//! - [`time`]: the time type every `now` argument uses.
//!
//! Feature flags: `alloc` (default) enables the verifier; `std` adds `Error` impls.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod compact;
pub mod device;
#[cfg(feature = "alloc")]
pub(crate) mod index;
#[cfg(feature = "alloc")]
pub mod lineage;
pub mod time;
#[cfg(feature = "alloc")]
pub mod trust;
#[cfg(feature = "alloc")]
pub mod verifier;

pub use slope_proto as proto;
pub use time::Millis;
