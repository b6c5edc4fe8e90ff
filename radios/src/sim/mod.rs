//! Discrete-event LoRa channel simulator for the testnet.
//!
//! Owns the simulated air: where nodes are, what each frame's signal is at each receiver,
//! and which receptions survive. Time is passed in (microseconds); nothing reads a clock
//! and all randomness comes from ChaCha generators seeded by [`Config::seed`], so a run is
//! a pure function of its seed and inputs.
//!
//! The model (see `docs/radio-model.md`): log-distance path loss with per-link log-normal
//! shadowing (symmetric, stable for the seed), thermal noise floor from bandwidth and noise
//! figure, per-SF SNR demodulation floor, half-duplex radios, same-channel same-SF
//! collisions with a capture threshold, and per-node duty-cycle / dwell enforcement with
//! [`crate::duty_cycle::DutyCycle`].
//!
//! - [`Channel`] is the sans-IO core: [`Channel::transmit`] then [`Channel::deliveries`].
//! - [`Air`] wraps a channel so each node gets a [`SimRadio`] implementing
//!   [`crate::radio::Radio`]: device code runs unchanged while a harness advances time.

mod air;
mod channel;
mod grid;
pub mod model;

pub use air::{Air, SimError, SimRadio};
pub use channel::{Channel, Delivery, LINKS_MAX, Transmission};
pub use model::Propagation;

use crate::airtime::Modulation;
use crate::region::Region;

/// Index of a node in a [`Channel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

impl NodeId {
    fn index(self) -> usize {
        self.0 as usize
    }
}

/// Id of a transmission, in order of acceptance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxId(pub u64);

/// Position on a plane, metres.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Position {
    /// East, metres.
    pub x_m: f64,
    /// North, metres.
    pub y_m: f64,
}

impl Position {
    /// A position.
    pub const fn new(x_m: f64, y_m: f64) -> Self {
        Self { x_m, y_m }
    }

    /// Euclidean distance.
    pub fn distance_m(self, other: Position) -> f64 {
        (self.x_m - other.x_m).hypot(self.y_m - other.y_m)
    }
}

/// What a node's receiver is tuned to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Listen {
    /// Receiver off (sleeping).
    Off,
    /// One channel and modulation (an end device in receive mode).
    Channel {
        /// Centre frequency, Hz.
        freq_hz: u32,
        /// Modulation.
        modulation: Modulation,
    },
    /// Every frequency and spreading factor at once (a multi-channel gateway; the model does
    /// not limit its number of demodulators).
    Gateway,
}

impl Listen {
    fn hears(&self, freq_hz: u32, m: Modulation) -> bool {
        match *self {
            Listen::Off => false,
            Listen::Channel {
                freq_hz: f,
                modulation,
            } => f == freq_hz && modulation.sf == m.sf && modulation.bw == m.bw,
            Listen::Gateway => true,
        }
    }
}

/// Per-node radio settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeConfig {
    /// Antenna gain in dBi, applied on transmit and receive.
    pub antenna_gain_dbi: f64,
    /// What the receiver listens to.
    pub listen: Listen,
}

impl NodeConfig {
    /// An end device with a 0 dBi antenna, receiver off.
    pub const fn device() -> Self {
        Self {
            antenna_gain_dbi: 0.0,
            listen: Listen::Off,
        }
    }

    /// A gateway with a 3 dBi antenna, listening to everything.
    pub const fn gateway() -> Self {
        Self {
            antenna_gain_dbi: 3.0,
            listen: Listen::Gateway,
        }
    }
}

/// Simulator parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Seed of every random draw.
    pub seed: u64,
    /// Region whose duty cycle and dwell rules every node obeys.
    pub region: Region,
    /// Path loss and shadowing.
    pub propagation: Propagation,
    /// Receiver noise figure, dB.
    pub noise_figure_db: f64,
    /// A frame survives an overlapping same-channel same-SF frame only if it is at least
    /// this much stronger, dB.
    pub capture_threshold_db: f64,
    /// Per-reception fast fading σ, dB (0 disables it).
    pub fading_sigma_db: f64,
    /// Side of a spatial-grid cell, metres (performance only; does not change results).
    pub grid_cell_m: f64,
}

impl Config {
    /// Defaults for `seed`: EU868, Bor et al. urban propagation, NF 6 dB, capture 6 dB,
    /// no fast fading, 1 km grid cells.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            region: Region::Eu868,
            propagation: Propagation::default(),
            noise_figure_db: 6.0,
            capture_threshold_db: 6.0,
            fading_sigma_db: 0.0,
            grid_cell_m: 1000.0,
        }
    }
}

/// Counters of what happened on the air.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Frames put on the air.
    pub transmitted: u64,
    /// Transmissions refused because the node was still transmitting.
    pub refused_busy: u64,
    /// Transmissions refused by the regional rules.
    pub refused_regional: u64,
    /// Receptions delivered.
    pub delivered: u64,
    /// Listening receivers within the frame's possible range (at the most favourable
    /// shadowing) where the signal was under sensitivity.
    pub below_sensitivity: u64,
    /// Receptions lost because the receiver was transmitting.
    pub lost_half_duplex: u64,
    /// Receptions lost to a collision without capture.
    pub lost_collision: u64,
}

/// Why the simulator did not put a frame on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// Duty cycle, dwell time, band or payload size (see the inner reason).
    #[error("regional rules: {0}")]
    Regional(crate::duty_cycle::Refused),
    /// The node's radio is still transmitting.
    #[error("radio busy until {until_us} us")]
    Busy {
        /// End of the current transmission.
        until_us: u64,
    },
    /// No such node.
    #[error("unknown node {0:?}")]
    UnknownNode(NodeId),
    /// The channel has already decided frames up to a later time.
    #[error("time {now_us} us is before the simulated horizon {simulated_until_us} us")]
    InThePast {
        /// Requested start.
        now_us: u64,
        /// Horizon already simulated.
        simulated_until_us: u64,
    },
}
