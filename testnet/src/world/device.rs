//! A simulated device: the real `slope_node::device::Slope` on an in-memory two-slot
//! flash ([`MemSlots`]) with power-cut injection, plus what the simulator needs around
//! it (its radio node, its transmit queue, its role in the scenario, its counters).
//!
//! Power cuts are real: at every boot the flash is armed with a byte budget drawn so
//! that cuts happen at the configured rate, and the cut lands at a random byte of a
//! state write (torn writes included). After the power returns the device restores from
//! flash, exactly as firmware does, and sends its last committed frames again.

use std::collections::VecDeque;
use std::sync::Arc;

use rand::Rng;
use slope_node::device::storage::{MemSlots, TwoSlot};
use slope_node::device::{Config, Error as DeviceError, MIN_INCEPT_SAMPLES, Slope};
use slope_proto::DeviceId;
use slope_radios::airtime::Modulation;
use slope_radios::sim::{NodeId, Position};

use crate::error::Error;

/// The device engine as the simulator runs it.
pub type Engine = Slope<TwoSlot<MemSlots>>;

/// Approximate bytes written per state commit (record header, state, checksum): sizes
/// the power-cut budget so cuts land at the configured rate.
const WRITE_BYTES: f64 = 700.0;

/// A device re-sends its current establishment event (inception or latest rotation)
/// every this many wake-ups, so that a verifier that missed it (a lost frame) can leave
/// escrow — what `Slope::establishment` is for. Without it, a device whose inception no
/// gateway received stays unverifiable for good.
pub const ESTABLISHMENT_EVERY: u32 = 8;

/// What a device is in the scenario (ground truth for the oracles; gateways never see
/// it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An honest device.
    Honest,
    /// A copy of device `of`'s flash, run by the attacker elsewhere.
    Clone { of: usize },
    /// A fresh identity of a Sybil attacker.
    Sybil,
}

/// Why a wake-up released nothing.
#[derive(Debug)]
pub enum Wake {
    /// Frames to transmit, in order (framed for the air).
    Frames(Vec<Arc<[u8]>>),
    /// The power was cut during the state write: nothing was released.
    PowerCut,
}

/// One simulated device.
pub struct Device {
    engine: Option<Engine>,
    /// The flash while the power is off.
    off: Option<MemSlots>,
    config: Config,
    behaviour: Vec<u8>,
    pub node: NodeId,
    pub pos: Position,
    pub modulation: Modulation,
    pub role: Role,
    /// Frames released and not yet on the air.
    pub pending: VecDeque<Arc<[u8]>>,
    /// Whether a send event is scheduled for `pending`.
    pub sending: bool,
    /// Stops attesting for good (a silenced original, a finished attacker).
    pub silent: bool,
    pub id: Option<DeviceId>,
    /// Attestations (and establishment events) signed.
    pub signed: u64,
    pub power_cuts: u64,
    pub reboots: u64,
    wakes: u32,
}

impl Device {
    /// A fresh device (not incepted) with a blank flash.
    pub fn new(
        config: Config,
        node: NodeId,
        pos: Position,
        modulation: Modulation,
        role: Role,
        behaviour: Vec<u8>,
    ) -> Self {
        Self {
            engine: None,
            off: Some(MemSlots::default()),
            config,
            behaviour,
            node,
            pos,
            modulation,
            role,
            pending: VecDeque::new(),
            sending: false,
            silent: false,
            id: None,
            signed: 0,
            power_cuts: 0,
            reboots: 0,
            wakes: 0,
        }
    }

    /// Whether the power is on.
    pub fn is_on(&self) -> bool {
        self.engine.is_some()
    }

    /// The flash as it is now (a copy): what an attacker extracts.
    pub fn flash(&self) -> MemSlots {
        let mut m = match (&self.engine, &self.off) {
            (Some(e), _) => e.storage().medium().clone(),
            (None, Some(m)) => m.clone(),
            (None, None) => MemSlots::default(),
        };
        m.power_on();
        m
    }

    /// A device that boots from `flash` (a clone, when the flash is someone else's).
    pub fn with_flash(mut self, flash: MemSlots) -> Self {
        self.engine = None;
        self.off = Some(flash);
        self
    }

    /// Powers on: restores from flash, arming a power cut after a random number of
    /// bytes when `cuts_per_day` > 0, and queues the last committed frames again.
    pub fn power_on(&mut self, rng: &mut impl Rng, cuts_per_day: f64) -> Result<(), Error> {
        let mut medium = match self.engine.take() {
            Some(e) => e.storage().medium().clone(),
            None => self.off.take().unwrap_or_default(),
        };
        medium.power_on();
        if cuts_per_day > 0.0 {
            let writes_per_day = 86_400.0 / f64::from(self.config.interval_s.max(1));
            let mean_bytes = writes_per_day / cuts_per_day * WRITE_BYTES;
            // Exponential: memoryless, so the cut is at a uniformly random byte of a
            // uniformly random write.
            let u: f64 = rng.r#gen::<f64>();
            let budget = (-(1.0 - u).ln() * mean_bytes).min(1e15);
            medium.budget = Some(budget as usize);
        }
        let engine = Slope::restore(self.config, TwoSlot::new(medium))
            .map_err(|e| self.fail(format!("restore: {e:?}")))?;
        for f in engine.last_frames() {
            self.pending.push_back(frame_for_air(f));
        }
        self.id = engine.id();
        self.engine = Some(engine);
        Ok(())
    }

    /// Cuts the power now (a clean reboot follows with [`Self::power_on`]).
    pub fn power_off(&mut self) {
        if let Some(e) = self.engine.take() {
            self.off = Some(e.storage().medium().clone());
        }
        self.pending.clear();
    }

    /// One wake-up: mixes entropy, incepts on the first wake, attests on the others.
    pub fn wake(&mut self, now_ms: u64, rng: &mut impl Rng, payload: &[u8]) -> Result<Wake, Error> {
        let Some(engine) = self.engine.as_mut() else {
            return Ok(Wake::Frames(Vec::new()));
        };
        let samples = if engine.id().is_none() {
            MIN_INCEPT_SAMPLES + 8
        } else {
            4
        };
        for _ in 0..samples {
            engine.handle_entropy(&rng.r#gen::<u64>().to_le_bytes());
        }
        engine.set_behaviour(&self.behaviour);
        let result = if engine.id().is_none() {
            engine.incept(now_ms).map(|f| vec![frame_for_air(&f)])
        } else {
            engine
                .attest(now_ms, payload, &[])
                .map(|r| r.frames.iter().map(|f| frame_for_air(f)).collect())
        };
        match result {
            Ok(mut frames) => {
                self.signed += frames.len() as u64;
                self.id = engine.id();
                self.wakes = self.wakes.wrapping_add(1);
                if self.wakes % ESTABLISHMENT_EVERY == 0
                    && let Some(e) = engine.establishment()
                {
                    frames.insert(0, frame_for_air(e));
                }
                Ok(Wake::Frames(frames))
            }
            Err(DeviceError::Storage(_)) => {
                self.power_cuts += 1;
                self.power_off();
                Ok(Wake::PowerCut)
            }
            Err(e) => Err(self.fail(format!("{e:?}"))),
        }
    }

    /// Wake-ups that released frames (attestations made).
    pub fn wakes(&self) -> u32 {
        self.wakes
    }

    /// The device's configuration.
    pub fn config(&self) -> Config {
        self.config
    }

    /// The behaviour features the device reports.
    pub fn behaviour(&self) -> &[u8] {
        &self.behaviour
    }

    /// The current key epoch, once incepted.
    pub fn epoch(&self) -> Option<u32> {
        self.engine.as_ref().and_then(|e| e.epoch())
    }

    /// The position of the device's slope, once incepted.
    pub fn seq(&self) -> Option<u32> {
        self.engine.as_ref().and_then(|e| e.seq())
    }

    fn fail(&self, what: String) -> Error {
        Error::Device {
            device: self.node.0 as usize,
            what,
        }
    }
}

/// Frames an envelope for the air (LoRaWAN proprietary `0xE0 "SL"`).
pub fn frame_for_air(envelope: &[u8]) -> Arc<[u8]> {
    let mut out = vec![0u8; envelope.len() + slope_radios::frame::OVERHEAD];
    match slope_radios::frame::encode_frame(envelope, &mut out) {
        Ok(n) => out.truncate(n),
        // Longer than any PHY payload: send the bare envelope, which no gateway parses.
        Err(_) => out = envelope.to_vec(),
    }
    out.into()
}
