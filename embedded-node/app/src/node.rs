//! The device role: from first power-on, with nothing provisioned, gather health-tested
//! entropy, incept, then attest periodically inside the regional duty cycle, listen for
//! neighbours and gateway beacons in between, and report the neighbours heard in the next
//! attestation.
//!
//! One [`Node::step`] is one cycle:
//!
//! 1. after a reboot (or a failed transmission), send the last committed frames again:
//!    identical bytes are duplicates to every verifier, never a divergence;
//! 2. harvest entropy: enough for the inception, then fresh samples for the next key;
//! 3. incept, or sign the next attestation with the sensor's payload and the neighbours
//!    heard: the slope commits the new state to flash *before* it hands out the frame;
//! 4. transmit, on a channel and data rate the duty-cycle tracker admits (a frame held back
//!    by the duty cycle waits, listening meanwhile);
//! 5. listen for a receive window, then sleep until the next cycle (interval ± 1/8).
//!
//! A storage failure is [`Fatal`]: nothing was released, and the board resets (on a real
//! power loss, the device is simply gone at that point). Nothing received from the air
//! can make a step fail or panic.

use embassy_futures::select::{Either, select};
use heapless::Vec;
use slope_node::device::storage::{Slots, TwoSlot, TwoSlotError};
use slope_node::device::{self, Error, Frame, MIN_INCEPT_SAMPLES, Slope};
use slope_proto::ShortId;
use slope_radios::frame::encode_frame;
use slope_radios::meta::RxMeta;
use slope_radios::radio::{Radio, Tune};

use crate::air::{Air, Hold, Plan};
use crate::clock::Clock;
use crate::harvest::{Harvester, MAX_SOURCES, Sources};
use crate::health::STARTUP_SYMBOLS;
use crate::log::dbg;
use crate::neighbours::Neighbours;
use crate::rx::{self, classify};
use crate::sensor::Sensor;

/// How the device behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The slope's pacing (announced interval, rotation cadence).
    pub slope: device::Config,
    /// Region, data rates and power.
    pub plan: Plan,
    /// Time between attestations in milliseconds (jittered by ± 1/8).
    pub interval_ms: u64,
    /// Receive window after each attestation, milliseconds.
    pub listen_ms: u64,
    /// Send the establishment event (inception or latest rotation) again every this many
    /// attestations, for verifiers that missed it (0: never).
    pub establishment_every: u32,
    /// Fresh entropy samples harvested per cycle once incepted (rotations need
    /// `MIN_ROTATE_SAMPLES` = 128 since the last one).
    pub fresh_per_cycle: u32,
}

impl Config {
    /// EU868, one attestation every 15 minutes, a 10-second receive window, a rotation
    /// every 96 attestations (one a day).
    pub const fn eu868() -> Self {
        Self {
            slope: device::Config {
                interval_s: 900,
                rotate_every: 96,
                // Device time restarts at every boot (see `clock`): rotate by count.
                rotate_after_ms: 0,
                max_epoch_events: 192,
            },
            plan: Plan::EU868,
            interval_ms: 900_000,
            listen_ms: 10_000,
            establishment_every: 16,
            fresh_per_cycle: 8,
        }
    }
}

/// Why the device role stopped: the board logs it and resets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fatal<E> {
    /// The new state could not be committed; nothing was released, the previous state
    /// stands. On hardware this is a flash fault (or the power going).
    Storage(E),
    /// The stored state does not decode. The device does not start a new identity on its
    /// own: that is an operator's decision (erase the state pages).
    CorruptState,
    /// The slope's position counter is exhausted (2³² events).
    Exhausted,
    /// The slope refused for a reason its state machine should never produce here
    /// (an encoding rule, a call out of order): a bug, reported rather than looped on.
    Internal,
}

/// What one cycle did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Cycle {
    /// The slope was created.
    Incepted,
    /// An attestation (preceded by a rotation when `rotated`) was signed at `seq`.
    Attested {
        /// Position of the attestation.
        seq: u32,
        /// Whether a rotation preceded it.
        rotated: bool,
    },
    /// Not enough healthy entropy for the next key: nothing was signed.
    Starved,
}

/// Counters since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Frames transmitted.
    pub sent: u32,
    /// Times a frame waited for the duty cycle.
    pub held: u32,
    /// Frames received (any kind).
    pub received: u32,
    /// Slope events of other devices received.
    pub neighbours: u32,
    /// Gateway receipts received.
    pub beacons: u32,
    /// Gateway receipts for this device's own events.
    pub witnessed: u32,
    /// Radio driver errors.
    pub radio_errors: u32,
}

/// The storage error of a node over medium `M`.
pub type StorageError<M> = TwoSlotError<<M as Slots>::Error>;

/// The device role over a radio, flash slots, a clock, entropy sources and a sensor.
pub struct Node<R, M: Slots, C, S, P> {
    config: Config,
    slope: Slope<TwoSlot<M>>,
    radio: R,
    clock: C,
    sources: S,
    sensor: P,
    harvester: Harvester,
    air: Air,
    neighbours: Neighbours,
    own: Option<ShortId>,
    /// Samples fed to the pre-inception pool (RAM only: a reboot starts over).
    pooled: u32,
    /// Folded from harvested samples to seed channel hopping and jitter.
    hop_seed: u32,
    resend: bool,
    since_establishment: u32,
    next_cycle_us: Option<u64>,
    stats: Stats,
}

impl<R, M, C, S, P> Node<R, M, C, S, P>
where
    R: Radio + Tune,
    M: Slots,
    C: Clock,
    S: Sources,
    P: Sensor,
{
    /// Restores the slope from flash (or finds none: a first boot) and gets ready.
    pub fn boot(
        config: Config,
        slots: M,
        radio: R,
        clock: C,
        sources: S,
        sensor: P,
    ) -> Result<Self, Fatal<StorageError<M>>> {
        let slope = Slope::restore(config.slope, TwoSlot::new(slots)).map_err(fatal)?;
        let harvester = Harvester::new(sources.list());
        let mut node = Self {
            config,
            slope,
            radio,
            clock,
            sources,
            sensor,
            harvester,
            air: Air::new(config.plan, 1),
            neighbours: Neighbours::default(),
            own: None,
            pooled: 0,
            hop_seed: 0,
            resend: false,
            since_establishment: 0,
            next_cycle_us: None,
            stats: Stats::default(),
        };
        match node.slope.id() {
            Some(id) => {
                node.adopt_identity();
                node.resend = !node.slope.last_frames().is_empty();
                info!(
                    "slope restored: device {=[u8]:x} at position {}",
                    id.short().0,
                    node.slope.seq().unwrap_or(0)
                );
            }
            None => info!("no slope yet: gathering entropy for the inception"),
        }
        Ok(node)
    }

    /// Runs cycles until a fatal error, which it returns (the board then resets).
    pub async fn run(&mut self) -> Fatal<StorageError<M>> {
        loop {
            if let Err(f) = self.step().await {
                return f;
            }
        }
    }

    /// One cycle (see the module documentation).
    pub async fn step(&mut self) -> Result<Cycle, Fatal<StorageError<M>>> {
        let start = self.clock.now_us();
        if self.resend {
            self.resend = false;
            let last: Vec<Frame, 2> = self.slope.last_frames().iter().cloned().collect();
            info!("sending the last committed frames again ({})", last.len());
            for frame in &last {
                self.send(frame).await;
            }
        }
        self.harvest().await;
        let cycle = self.sign().await?;
        self.listen_until(start.saturating_add(self.config.listen_ms * 1000))
            .await;
        let next = self.next_deadline(start);
        self.clock.sleep_until_us(next).await;
        Ok(cycle)
    }

    /// The slope (identity, position, last frames).
    pub fn slope(&self) -> &Slope<TwoSlot<M>> {
        &self.slope
    }

    /// The entropy harvester (health of every source).
    pub fn harvester(&self) -> &Harvester {
        &self.harvester
    }

    /// Counters since boot.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The radio (for tests and diagnostics).
    pub fn radio(&mut self) -> &mut R {
        &mut self.radio
    }

    fn adopt_identity(&mut self) {
        if let Some(id) = self.slope.id() {
            self.own = Some(id.short());
            self.neighbours.set_own(id.neighbour());
        }
    }

    /// Harvests what this cycle needs: the whole inception pool first, then a few fresh
    /// samples per cycle for the next rotation.
    async fn harvest(&mut self) {
        let want = if self.slope.id().is_none() {
            MIN_INCEPT_SAMPLES.saturating_sub(self.pooled)
        } else {
            self.config.fresh_per_cycle
        };
        if want == 0 {
            return;
        }
        // Start-up testing of every source, then at most 64 symbols per sample.
        let budget = want * 64 + u32::from(STARTUP_SYMBOLS) * MAX_SOURCES as u32;
        let incepted = self.slope.id().is_some();
        let slope = &mut self.slope;
        let pooled = &mut self.pooled;
        let seed = &mut self.hop_seed;
        let got = self
            .harvester
            .harvest(&mut self.sources, want, budget, |sample| {
                slope.handle_entropy(sample);
                if !incepted {
                    *pooled += 1;
                }
                for b in sample {
                    *seed = seed.rotate_left(5) ^ u32::from(*b);
                }
            })
            .await;
        if got.exhausted {
            error!("no healthy entropy source left on this board");
        }
        self.air.reseed(self.hop_seed);
        debug!("entropy: {} samples this cycle", got.delivered);
    }

    /// Incepts or attests; transmits what was released.
    async fn sign(&mut self) -> Result<Cycle, Fatal<StorageError<M>>> {
        let now_ms = self.clock.now_ms();
        if self.slope.id().is_none() {
            return match self.slope.incept(now_ms) {
                Ok(frame) => {
                    self.adopt_identity();
                    if let Some(id) = self.slope.id() {
                        info!("incepted: device {=[u8]:x}", id.short().0);
                    }
                    self.send(&frame).await;
                    Ok(Cycle::Incepted)
                }
                Err(Error::InsufficientEntropy { have, need }) => {
                    warn!("inception waits for entropy: {} of {} samples", have, need);
                    Ok(Cycle::Starved)
                }
                Err(e) => Err(fatal(e)),
            };
        }
        let reading = self.sensor.read().await;
        if !reading.behaviour.is_empty() {
            self.slope.set_behaviour(&reading.behaviour);
        }
        let heard = self.neighbours.drain();
        let released = match self.slope.attest(now_ms, &reading.payload, &heard) {
            Ok(r) => r,
            Err(Error::InsufficientEntropy { have, need }) => {
                warn!(
                    "rotation due but only {} of {} fresh samples: not signing",
                    have, need
                );
                return Ok(Cycle::Starved);
            }
            Err(e) => return Err(fatal(e)),
        };
        let rotated = released.frames.len() > 1;
        let seq = self.slope.seq().unwrap_or(0);
        info!(
            "attestation {} signed ({} neighbours heard{})",
            seq,
            heard.len(),
            if rotated { ", key rotated" } else { "" }
        );
        for frame in &released.frames {
            self.send(frame).await;
        }
        self.since_establishment = if rotated {
            0
        } else {
            self.since_establishment + 1
        };
        let every = self.config.establishment_every;
        if every > 0 && self.since_establishment >= every {
            self.since_establishment = 0;
            if let Some(est) = self
                .slope
                .establishment()
                .and_then(|e| Frame::from_slice(e).ok())
            {
                self.send(&est).await;
            }
        }
        Ok(Cycle::Attested { seq, rotated })
    }

    /// Transmits one envelope as soon as the duty cycle allows (listening while it
    /// waits). A radio failure marks the last frames for sending again next cycle.
    async fn send(&mut self, envelope: &[u8]) {
        let mut phy = [0u8; 255];
        let len = match encode_frame(envelope, &mut phy) {
            Ok(n) => n,
            Err(e) => {
                error!("frame not sent: {}", dbg(&e));
                return;
            }
        };
        loop {
            match self.air.admit(self.clock.now_us(), len) {
                Ok(params) => {
                    match self.radio.transmit(&phy[..len], params).await {
                        Ok(report) => {
                            self.stats.sent += 1;
                            debug!(
                                "sent {} bytes on {} Hz, {} us on air",
                                len, params.freq_hz, report.airtime_us
                            );
                        }
                        Err(e) => {
                            self.stats.radio_errors += 1;
                            self.resend = true;
                            warn!("transmit failed: {}", dbg(&e));
                        }
                    }
                    return;
                }
                Err(Hold::Until(t)) => {
                    self.stats.held += 1;
                    info!(
                        "duty cycle: frame held for {} ms",
                        t.saturating_sub(self.clock.now_us()) / 1000
                    );
                    self.listen_until(t).await;
                }
                Err(Hold::Never) => {
                    error!("a {}-byte frame fits no data rate of the plan", len);
                    return;
                }
            }
        }
    }

    /// Listens on one channel of the plan until `deadline_us`, then idles the radio.
    async fn listen_until(&mut self, deadline_us: u64) {
        let (Some(modulation), Some(channel)) = (
            self.air.plan().listen_modulation(),
            self.air.listen_channel(),
        ) else {
            self.clock.sleep_until_us(deadline_us).await;
            return;
        };
        if let Err(e) = self.radio.listen_on(channel, modulation) {
            self.stats.radio_errors += 1;
            warn!("cannot tune the receiver: {}", dbg(&e));
            self.clock.sleep_until_us(deadline_us).await;
            return;
        }
        let mut buf = [0u8; 255];
        let mut errors = 0u8;
        while self.clock.now_us() < deadline_us {
            let received = select(
                self.radio.receive(&mut buf),
                self.clock.sleep_until_us(deadline_us),
            )
            .await;
            match received {
                Either::First(Ok((n, meta))) => {
                    errors = 0;
                    let n = n.min(buf.len());
                    self.on_frame(&buf[..n], &meta);
                }
                Either::First(Err(e)) => {
                    self.stats.radio_errors += 1;
                    errors += 1;
                    debug!("receive failed: {}", dbg(&e));
                    if errors >= 3 {
                        warn!("radio keeps failing: receive window closed early");
                        self.clock.sleep_until_us(deadline_us).await;
                        break;
                    }
                }
                Either::Second(()) => break,
            }
        }
        if let Err(e) = self.radio.idle().await {
            // The radio stays in receive: it only costs current until the next transmit.
            self.stats.radio_errors += 1;
            debug!("cannot idle the radio: {}", dbg(&e));
        }
    }

    /// Takes in one received frame: radio noise for the harvester, then evidence.
    fn on_frame(&mut self, frame: &[u8], meta: &RxMeta) {
        self.stats.received = self.stats.received.saturating_add(1);
        let incepted = self.slope.id().is_some();
        let slope = &mut self.slope;
        let pooled = &mut self.pooled;
        self.harvester
            .offer_radio(meta.rssi_dbm, meta.snr.quarter_db(), &mut |sample| {
                slope.handle_entropy(sample);
                if !incepted {
                    *pooled += 1;
                }
            });
        match classify(frame) {
            rx::Heard::Neighbour { id, seq } => {
                self.stats.neighbours = self.stats.neighbours.saturating_add(1);
                self.neighbours.hear(id, seq, meta.rssi_dbm);
            }
            rx::Heard::Beacon { device, seq, .. } => {
                self.stats.beacons = self.stats.beacons.saturating_add(1);
                if Some(device) == self.own {
                    self.stats.witnessed = self.stats.witnessed.saturating_add(1);
                    info!("a gateway witnessed position {}", seq);
                }
            }
            rx::Heard::Other => {}
        }
    }

    /// The start of the next cycle: one interval after `start`, ± 1/8.
    fn next_deadline(&mut self, start: u64) -> u64 {
        let interval = self.config.interval_ms.saturating_mul(1000);
        let spread = (interval / 4).max(1);
        let jitter = u64::from(self.air.next_random()) % spread;
        let next = start
            .saturating_add(interval - interval / 8)
            .saturating_add(jitter);
        self.next_cycle_us = Some(next);
        next
    }
}

/// Maps the slope's errors to what stops the device.
fn fatal<E>(e: Error<E>) -> Fatal<E> {
    match e {
        Error::Storage(e) => Fatal::Storage(e),
        Error::CorruptState => Fatal::CorruptState,
        Error::Exhausted => Fatal::Exhausted,
        _ => Fatal::Internal,
    }
}
