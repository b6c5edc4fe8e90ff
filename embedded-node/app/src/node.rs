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
//! 5. after the attestation, open the echo window (`slope_radios::echo`: 2 s after the
//!    frame's end, on the region's echo frequency and data rate) for a gateway's time
//!    echo; listen for the rest of the receive window (echoes and receipts of the
//!    device's own frames feed the clock synchronisation, [`crate::timesync`]), then
//!    sleep until the next cycle (interval ± 1/8).
//!
//! With the compact suite configured ([`Config::compact`], [`crate::compact`]) and the
//! clock synchronised, step 3 is suite 2 instead: the first time, anchor a compact chain
//! (state stored, then the anchor sent in suite 1); afterwards one compact attestation
//! with the sensor payload in the current interval (or a renewal near the chain's end),
//! its state stored before it is returned, and dropped rather than sent after
//! `start(i + d) − max_skew` if the duty cycle holds it that long.
//!
//! A storage failure is [`Fatal`]: nothing was released, and the board resets (on a real
//! power loss, the device is simply gone at that point). Nothing received from the air
//! can make a step fail or panic.

use embassy_futures::select::{Either, select};
use heapless::Vec;
#[cfg(feature = "compact")]
use slope_node::compact::device::{Error as CompactError, Schedule};
#[cfg(feature = "compact")]
use slope_node::compact::persist::{PersistError, Persistent};
use slope_node::device::storage::{Slots, TwoSlot, TwoSlotError};
use slope_node::device::{self, Error, Frame, MIN_INCEPT_SAMPLES, Slope};
use slope_proto::ShortId;
#[cfg(feature = "compact")]
use slope_proto::{LinkDigest, compact::crypto::frame_digest};
use slope_radios::airtime::Modulation;
use slope_radios::echo::Window;
use slope_radios::frame::encode_frame;
use slope_radios::meta::RxMeta;
use slope_radios::radio::{Radio, Tune};

use crate::air::{Air, Hold, Plan};
use crate::clock::Clock;
use crate::compact::{self, NoStore, RenewalPool};
#[cfg(feature = "compact")]
use crate::compact::{Store, When};
use crate::harvest::{Harvester, MAX_SOURCES, Sources};
use crate::health::STARTUP_SYMBOLS;
use crate::log::dbg;
use crate::neighbours::Neighbours;
use crate::rx::{self, classify};
use crate::sensor::Sensor;
use crate::timesync::{TimeSync, Update};

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
    /// The compact suite (suite 2), when the device may use it.
    pub compact: Option<compact::Config>,
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
            compact: Some(compact::Config::DEFAULT),
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
    /// The compact state could not be committed; no compact frame was released.
    CompactStorage,
    /// The stored compact state does not decode, or belongs to another identity
    /// (erase both state regions to start over).
    CompactCorrupt,
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
    /// A compact chain was anchored (its first interval); the anchor was sent.
    Anchored {
        /// First interval of the chain.
        first: u32,
    },
    /// A compact frame was made for `interval` (a renewal when `renewal`).
    Compact {
        /// The interval.
        interval: u32,
        /// Whether it was a renewal.
        renewal: bool,
        /// Whether it went on air (not dropped for lateness).
        sent: bool,
    },
    /// Compact suite, but nothing to do this cycle (interval already used, or the
    /// chain has not started).
    Waiting,
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
    /// Time echoes received (any device's).
    pub echoes: u32,
    /// Receipts and echoes that became clock samples.
    pub time_samples: u32,
    /// Compact frames sent.
    pub compact_sent: u32,
    /// Compact frames dropped because the duty cycle held them past their deadline.
    pub compact_late: u32,
}

/// The storage error of a node over medium `M`.
pub type StorageError<M> = TwoSlotError<<M as Slots>::Error>;

/// A compact frame's bytes.
#[cfg(feature = "compact")]
type CompactFrame = Vec<u8, { slope_proto::compact::params::MAX_COMPACT_FRAME }>;

/// What [`Node::make_compact`] made.
#[cfg(feature = "compact")]
enum Made {
    /// Fall back to suite 1 this cycle.
    Suite1,
    /// Nothing to send this cycle.
    Waiting,
    /// A chain was anchored from this interval; its anchor is in the store.
    Anchor(u32),
    /// A compact attestation or renewal, stored.
    Frame {
        frame: CompactFrame,
        interval: u32,
        renewal: bool,
        deadline_us: u64,
    },
}

/// The compact suite's state in the device role (one per device, in place: no
/// allocator to box the large variant into).
#[allow(clippy::large_enum_variant)]
enum Suite2<K: Slots> {
    /// Not configured, no store, or the chain ran out: suite 1 only.
    Off,
    /// Configured, not anchored yet.
    #[cfg(feature = "compact")]
    Ready(Store<K>),
    /// Anchored: the persisted compact device.
    #[cfg(feature = "compact")]
    Live(Persistent<Store<K>>),
    /// (Without the feature the medium is only kept.)
    #[cfg(not(feature = "compact"))]
    #[allow(dead_code)]
    Unused(core::marker::PhantomData<K>),
}

/// The device role over a radio, flash slots, a clock, entropy sources and a sensor
/// (and, for the compact suite, a second pair of flash slots `K`).
pub struct Node<R, M: Slots, C, S, P, K: Slots = NoStore> {
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
    #[cfg_attr(not(feature = "compact"), allow(dead_code))]
    suite2: Suite2<K>,
    sync: TimeSync,
    renewal: RenewalPool,
    /// Renewal copies sent for the chain starting at `.1`.
    #[cfg_attr(not(feature = "compact"), allow(dead_code))]
    renewals_sent: (u8, u32),
    /// Wake up for this cycle (µs) if it is earlier than the usual one.
    wake_us: Option<u64>,
}

impl<R, M, C, S, P> Node<R, M, C, S, P, NoStore>
where
    R: Radio + Tune,
    M: Slots,
    C: Clock,
    S: Sources,
    P: Sensor,
{
    /// Restores the slope from flash (or finds none: a first boot) and gets ready;
    /// suite 1 only.
    pub fn boot(
        config: Config,
        slots: M,
        radio: R,
        clock: C,
        sources: S,
        sensor: P,
    ) -> Result<Self, Fatal<StorageError<M>>> {
        Self::boot_with(config, slots, None, radio, clock, sources, sensor)
    }
}

impl<R, M, C, S, P, K> Node<R, M, C, S, P, K>
where
    R: Radio + Tune,
    M: Slots,
    C: Clock,
    S: Sources,
    P: Sensor,
    K: Slots,
{
    /// Restores the slope from `slots` and, when `compact` slots are given and
    /// [`Config::compact`] is set, the compact state from them.
    pub fn boot_with(
        config: Config,
        slots: M,
        compact: Option<K>,
        radio: R,
        clock: C,
        sources: S,
        sensor: P,
    ) -> Result<Self, Fatal<StorageError<M>>> {
        let slope = Slope::restore(config.slope, TwoSlot::new(slots)).map_err(fatal)?;
        #[cfg(feature = "compact")]
        let suite2 = match (config.compact, compact) {
            (Some(_), Some(medium)) => restore_compact(Store::new(medium), slope.id())?,
            _ => Suite2::Off,
        };
        #[cfg(not(feature = "compact"))]
        let suite2 = {
            drop(compact);
            Suite2::Off
        };
        let sync = TimeSync::new(config.compact.map_or_else(Default::default, |c| c.sync));
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
            suite2,
            sync,
            renewal: RenewalPool::new(),
            renewals_sent: (0, 0),
            wake_us: None,
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
        // Without the `compact` feature none of the compact loop is compiled in.
        #[cfg(feature = "compact")]
        let compact = match self.compact_time() {
            Some(unix_ms) => self.compact(unix_ms).await?,
            None => None,
        };
        #[cfg(not(feature = "compact"))]
        let compact: Option<Cycle> = None;
        let cycle = match compact {
            Some(cycle) => cycle,
            None => self.sign().await?,
        };
        self.listen_until(start.saturating_add(self.config.listen_ms * 1000))
            .await;
        match self.sync.close(self.clock.now_ms()) {
            Update::None | Update::Held => {}
            u => info!("clock: {}", u),
        }
        let mut next = self.next_deadline(start);
        if let Some(wake) = self.wake_us.take() {
            next = next.min(wake.max(self.clock.now_us()));
        }
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

    /// The clock synchronisation.
    pub fn sync(&self) -> &TimeSync {
        &self.sync
    }

    /// The compact state, once anchored.
    #[cfg(feature = "compact")]
    pub fn compact_state(&self) -> Option<&Persistent<Store<K>>> {
        match &self.suite2 {
            Suite2::Live(p) => Some(p),
            _ => None,
        }
    }

    /// The compact store's medium, anchored or not (for a simulated reboot in tests).
    #[cfg(feature = "compact")]
    pub fn compact_medium(&self) -> Option<&K> {
        match &self.suite2 {
            Suite2::Live(p) => Some(p.storage().medium()),
            Suite2::Ready(s) => Some(s.medium()),
            Suite2::Off => None,
        }
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
        } else if self.renewal_wanted() {
            // The next compact chain waits for these: gather them in one cycle.
            let missing = compact::MIN_RENEWAL_SAMPLES.saturating_sub(self.renewal.samples());
            self.config.fresh_per_cycle.max(missing)
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
        let renewal = &mut self.renewal;
        let got = self
            .harvester
            .harvest(&mut self.sources, want, budget, |sample| {
                slope.handle_entropy(sample);
                if incepted {
                    renewal.mix(sample);
                }
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

    /// Whether the next compact chain waits for entropy.
    #[cfg(feature = "compact")]
    fn renewal_wanted(&self) -> bool {
        matches!(&self.suite2, Suite2::Live(p) if !p.device().has_next())
    }

    #[cfg(not(feature = "compact"))]
    fn renewal_wanted(&self) -> bool {
        false
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
                    if let Some(tx) = self.send(&frame).await {
                        self.note_suite1(&frame, 0, tx);
                    }
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
        // The frames take the positions up to `seq` (a rotation, then the interaction).
        let first = seq.saturating_sub(released.frames.len() as u32 - 1);
        let mut end = None;
        for (k, frame) in released.frames.iter().enumerate() {
            end = self.send(frame).await;
            if let Some(tx) = end {
                self.note_suite1(frame, first + k as u32, tx);
            }
        }
        // Gateways echo the attestation (the last frame), not a rotation before it.
        if let Some(end) = end {
            self.echo_window(end).await;
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
    /// Returns the transmission's end (µs), if it went on air.
    async fn send(&mut self, envelope: &[u8]) -> Option<u64> {
        self.send_by(envelope, None).await
    }

    /// [`Node::send`], but gives up (returns `None`) when the duty cycle would hold the
    /// frame past `deadline_us`.
    async fn send_by(&mut self, envelope: &[u8], deadline_us: Option<u64>) -> Option<u64> {
        let mut phy = [0u8; 255];
        let len = match encode_frame(envelope, &mut phy) {
            Ok(n) => n,
            Err(e) => {
                error!("frame not sent: {}", dbg(&e));
                return None;
            }
        };
        loop {
            let now = self.clock.now_us();
            match self.air.admit(now, len) {
                Ok(params) => {
                    return match self.radio.transmit(&phy[..len], params).await {
                        Ok(report) => {
                            self.stats.sent += 1;
                            debug!(
                                "sent {} bytes on {} Hz, {} us on air",
                                len, params.freq_hz, report.airtime_us
                            );
                            // The transmission has ended (the radio returns at TxDone).
                            Some(self.clock.now_us())
                        }
                        Err(e) => {
                            self.stats.radio_errors += 1;
                            self.resend = true;
                            warn!("transmit failed: {}", dbg(&e));
                            None
                        }
                    };
                }
                Err(Hold::Until(t)) if deadline_us.is_some_and(|d| t > d) => {
                    warn!("duty cycle: frame dropped, it would leave too late");
                    return None;
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
                    return None;
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
        self.listen_on_until(channel, modulation, deadline_us).await;
    }

    /// The echo window after an attestation whose transmission ended at `end_us`
    /// (`slope_radios::echo`: 2 s later, the region's echo frequency and data rate,
    /// EU868 869.525 MHz at SF12): listens for neighbours on the plan's channels until
    /// it opens, then for the echo until the longest one would have ended.
    async fn echo_window(&mut self, end_us: u64) {
        let w = Window::of(self.air.plan().region);
        let (open, close) = w.listen_span_us();
        self.listen_until(end_us.saturating_add(u64::from(open)))
            .await;
        self.listen_on_until(
            w.freq_hz,
            w.modulation,
            end_us.saturating_add(u64::from(close)),
        )
        .await;
    }

    /// Listens on `channel` with `modulation` until `deadline_us`, then idles the radio.
    async fn listen_on_until(&mut self, channel: u32, modulation: Modulation, deadline_us: u64) {
        if self.clock.now_us() >= deadline_us {
            return;
        }
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
    #[inline(never)]
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
            rx::Heard::Beacon {
                witness,
                device,
                seq,
                event,
                time_ms,
            } => {
                self.stats.beacons = self.stats.beacons.saturating_add(1);
                if Some(device) == self.own {
                    self.stats.witnessed = self.stats.witnessed.saturating_add(1);
                    info!("a gateway witnessed position {}", seq);
                    let now = self.clock.now_ms();
                    if self.sync.offer(now, witness, seq, event, time_ms) {
                        self.stats.time_samples = self.stats.time_samples.saturating_add(1);
                    }
                }
            }
            rx::Heard::Echo(e) => {
                self.stats.echoes = self.stats.echoes.saturating_add(1);
                if Some(e.device) == self.own {
                    let now = self.clock.now_ms();
                    if self
                        .sync
                        .offer_echo(now, e.witness, e.seq, &e.digest, e.rx_ms)
                    {
                        self.stats.time_samples = self.stats.time_samples.saturating_add(1);
                    }
                }
            }
            rx::Heard::Other => {}
        }
    }

    /// Registers suite-1 frame `seq` whose transmission ended at `tx_us` with the clock
    /// synchronisation (a receipt or an echo must name its position and digest).
    #[inline(never)]
    fn note_suite1(&mut self, frame: &[u8], seq: u32, tx_us: u64) {
        let signed = frame.len().checked_sub(slope_proto::limits::SIGNATURE_LEN);
        if let (Some(id), Some(n)) = (self.slope.id(), signed) {
            let digest = slope_proto::crypto::event_digest(&id, &frame[..n]);
            self.sync.sent(tx_us / 1000, seq, digest.link());
        }
    }

    /// Whether the plan's slowest data rate carries a routine suite-1 attestation
    /// (fixed size, so the choice does not flap with the neighbours heard).
    #[cfg(feature = "compact")]
    fn suite1_fits(&self) -> bool {
        let plan = self.air.plan();
        plan.region
            .data_rate(plan.min_dr)
            .is_some_and(|rate| compact::SUITE1_ATTESTATION_PHY <= rate.max_phy_payload())
    }

    /// Unix time now, when this cycle speaks suite 2: configured, a store, incepted,
    /// the clock synchronised, and (for [`When::Suite1DoesNotFit`]) suite 1 too long.
    #[cfg(feature = "compact")]
    fn compact_time(&self) -> Option<u64> {
        if !cfg!(feature = "compact") {
            return None;
        }
        let c = self.config.compact?;
        if matches!(self.suite2, Suite2::Off) || self.slope.id().is_none() {
            return None;
        }
        if c.when == When::Suite1DoesNotFit && self.suite1_fits() {
            return None;
        }
        self.sync.unix_ms(self.clock.now_ms())
    }

    /// One suite-2 cycle at Unix time `unix_ms`: anchor, or a compact frame; `None`
    /// when this cycle falls back to suite 1. The frame is made by a plain function and
    /// only its bytes are held across the transmission (the device's state stays out
    /// of the task's future, which is static RAM).
    #[cfg(feature = "compact")]
    async fn compact(&mut self, unix_ms: u64) -> Result<Option<Cycle>, Fatal<StorageError<M>>> {
        let reading = self.sensor.read().await;
        let made = self.make_compact(unix_ms, &reading.payload)?;
        drop(reading);
        let (frame, interval, renewal, deadline_us) = match made {
            Made::Suite1 => return Ok(None),
            Made::Waiting => return Ok(Some(Cycle::Waiting)),
            Made::Anchor(first) => {
                let anchor = match &self.suite2 {
                    Suite2::Live(p) => Frame::from_slice(p.storage().anchor()).ok(),
                    _ => None,
                };
                if let Some(anchor) = anchor {
                    self.send(&anchor).await;
                }
                self.since_establishment = 0;
                return Ok(Some(Cycle::Anchored { first }));
            }
            Made::Frame {
                frame,
                interval,
                renewal,
                deadline_us,
            } => (frame, interval, renewal, deadline_us),
        };
        let sent = self.send_by(&frame, Some(deadline_us)).await;
        if let Some(tx) = sent {
            self.stats.compact_sent = self.stats.compact_sent.saturating_add(1);
            let mut link = [0u8; 16];
            link.copy_from_slice(&frame_digest(&frame)[..16]);
            self.sync.sent(tx / 1000, interval, LinkDigest(link));
            if renewal {
                self.renewals_sent.0 += 1;
            }
            self.echo_window(tx).await;
        } else {
            self.stats.compact_late = self.stats.compact_late.saturating_add(1);
        }
        info!(
            "compact {} for interval {}{}",
            if renewal { "renewal" } else { "attestation" },
            interval,
            if sent.is_some() { "" } else { " dropped" }
        );
        self.since_establishment += 1;
        let every = self.config.establishment_every;
        if every > 0 && self.since_establishment >= every {
            self.since_establishment = 0;
            self.resend_establishment().await;
        }
        Ok(Some(Cycle::Compact {
            interval,
            renewal,
            sent: sent.is_some(),
        }))
    }

    /// Anchors (state and anchor stored first), or makes the compact attestation (or
    /// renewal) of the current interval, stored before it is returned.
    #[inline(never)]
    #[cfg(feature = "compact")]
    fn make_compact(
        &mut self,
        unix_ms: u64,
        payload: &[u8],
    ) -> Result<Made, Fatal<StorageError<M>>> {
        let Some(c) = self.config.compact else {
            return Ok(Made::Suite1);
        };
        let schedule = Schedule {
            start_ms: c.start_ms,
            interval_ms: c.interval_ms,
            delay: c.delay,
        };
        let i = interval_of(&schedule, unix_ms);
        // A suite-1 rotation retired the key that signed the stored anchor: gateways
        // that learn the device from now on refuse that anchor, so the device anchors a
        // new chain under its current key (the verifiers take a later epoch whose chain
        // starts after every interval used: two intervals ahead, as the first time).
        if let Suite2::Live(live) = &self.suite2
            && anchored_epoch(live.storage().anchor()) < self.slope.epoch()
        {
            let Suite2::Live(live) = core::mem::replace(&mut self.suite2, Suite2::Off) else {
                return Ok(Made::Suite1);
            };
            info!("suite-1 key rotated: anchoring a new compact chain");
            self.suite2 = Suite2::Ready(live.into_storage());
        }
        if let Suite2::Ready(_) = &self.suite2 {
            let Suite2::Ready(mut store) = core::mem::replace(&mut self.suite2, Suite2::Off) else {
                return Ok(Made::Suite1);
            };
            // Two intervals ahead: the anchor reaches the verifiers first.
            let first = i.saturating_add(2);
            let (device, anchor) = match self.slope.anchor_compact(schedule, first, c.chain_len) {
                Ok(a) => a,
                Err(e) => {
                    error!("cannot anchor a compact chain: {}", dbg(&e));
                    return Ok(Made::Suite1);
                }
            };
            if !store.set_anchor(anchor.frame()) {
                return Err(Fatal::Internal);
            }
            // Stored (with the anchor) before the anchor leaves.
            let live = Persistent::create(device, store).map_err(compact_fatal)?;
            self.suite2 = Suite2::Live(live);
            info!("compact chain anchored from interval {}", first);
            return Ok(Made::Anchor(first));
        }
        let Suite2::Live(live) = &mut self.suite2 else {
            return Ok(Made::Suite1);
        };
        let chain = live.device().chain();
        let (chain_first, chain_last) = (chain.first(), chain.last());
        if self.renewals_sent.1 != chain_first {
            self.renewals_sent = (0, chain_first);
        }
        // The next chain is prepared (and stored) as soon as there is fresh entropy for
        // it, long before its renewals are due.
        if !live.device().has_next()
            && let Some(mut state) = self.renewal.take()
        {
            let prepared = live.prepare_renewal(&state, c.chain_len);
            zeroize::Zeroize::zeroize(&mut state);
            prepared.map_err(compact_fatal)?;
        }
        // Renewals alternate with attestations near the chain's end until enough copies
        // went out, but early enough that later frames of the same chain disclose the
        // renewal's key (a key of the old chain is disclosed across the switch only in
        // the next chain's first `delay` intervals, which the device may not speak in):
        // `delay` intervals plus two cycles before the end. (A device that was off
        // through the window still sends one, late.) Past the end, the attestation
        // switches to the prepared chain.
        let cycle_intervals =
            u32::try_from((self.config.interval_ms * 9 / 8).div_ceil(u64::from(c.interval_ms)))
                .unwrap_or(u32::MAX);
        let margin = u32::from(c.delay)
            .saturating_add(cycle_intervals.saturating_mul(2))
            .saturating_add(1);
        let left = chain_last.saturating_sub(i);
        let renewal = i <= chain_last
            && left < c.renew_within
            && (left >= margin || self.renewals_sent.0 == 0)
            && live.device().has_next()
            && self.renewals_sent.0 < c.renewals
            && i.is_multiple_of(2);
        if i <= chain_last && left < cycle_intervals.saturating_add(u32::from(c.delay)) {
            // The old chain's last keys are disclosed only in the next chain's first
            // `delay` intervals: wake up for the first of them.
            let next_start = schedule
                .start_ms
                .saturating_add(u64::from(chain_last) * u64::from(schedule.interval_ms));
            self.wake_us = self.sync.mono_ms(next_start + 500).map(|m| m * 1000);
            // And make no frame whose key only those intervals would disclose.
            if left + 1 < u32::from(c.delay) {
                return Ok(Made::Waiting);
            }
        }
        let made = if renewal {
            live.renew(unix_ms)
                .map(|f| CompactFrame::from_slice(f.frame()))
        } else {
            live.attest(unix_ms, payload)
                .map(|f| CompactFrame::from_slice(f.frame()))
        };
        let frame = match made {
            Ok(Ok(f)) => f,
            Ok(Err(())) => return Err(Fatal::Internal),
            Err(PersistError::Device(CompactError::IntervalUsed(_) | CompactError::NotStarted)) => {
                return Ok(Made::Waiting);
            }
            Err(PersistError::Device(CompactError::Exhausted)) => {
                warn!("compact chain exhausted without a renewal: back to suite 1");
                self.suite2 = Suite2::Off;
                return Ok(Made::Suite1);
            }
            Err(e) => return Err(compact_fatal(e)),
        };
        // Dropped rather than sent after start(i + d) − skew (less 1 s of airtime).
        let deadline_ms = schedule
            .start_ms
            .saturating_add(
                u64::from(i + u32::from(schedule.delay) - 1) * u64::from(schedule.interval_ms),
            )
            .saturating_sub(c.max_skew_ms + 1_000);
        let deadline_us = self
            .sync
            .mono_ms(deadline_ms)
            .map_or(0, |m| m.saturating_mul(1000));
        Ok(Made::Frame {
            frame,
            interval: i,
            renewal,
            deadline_us,
        })
    }

    /// The suite-1 establishment and the compact anchor again, for verifiers that
    /// missed them.
    #[cfg(feature = "compact")]
    async fn resend_establishment(&mut self) {
        if let Some(est) = self
            .slope
            .establishment()
            .and_then(|e| Frame::from_slice(e).ok())
        {
            self.send(&est).await;
        }
        let anchor = match &self.suite2 {
            Suite2::Live(p) => Frame::from_slice(p.storage().anchor()).ok(),
            _ => None,
        };
        if let Some(anchor) = anchor.filter(|a| !a.is_empty()) {
            self.send(&anchor).await;
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

/// The global interval of Unix time `unix_ms` (0 before interval 1).
#[cfg(feature = "compact")]
fn interval_of(s: &Schedule, unix_ms: u64) -> u32 {
    match unix_ms.checked_sub(s.start_ms) {
        Some(d) => u32::try_from(d / u64::from(s.interval_ms.max(1)) + 1).unwrap_or(u32::MAX),
        None => 0,
    }
}

/// The suite-1 epoch whose key signed a stored anchor frame (`None`: unreadable, which
/// compares below every epoch, so the device anchors again). Read without the anchor
/// decoder, which the image does not otherwise need.
#[cfg(feature = "compact")]
fn anchored_epoch(frame: &[u8]) -> Option<u32> {
    slope_proto::compact::SignedAnchor::epoch_of(frame)
}

/// The stored compact state of `device`, or a store ready to anchor.
#[cfg(feature = "compact")]
#[inline(never)]
fn restore_compact<K: Slots, E>(
    mut store: Store<K>,
    device: Option<slope_proto::DeviceId>,
) -> Result<Suite2<K>, Fatal<E>> {
    match store.is_stored() {
        Ok(false) => return Ok(Suite2::Ready(store)),
        Ok(true) => {}
        Err(compact::StoreError::Corrupt) => return Err(Fatal::CompactCorrupt),
        Err(compact::StoreError::Medium(_)) => return Err(Fatal::CompactStorage),
    }
    let live = match Persistent::restore(store) {
        Ok(Some(p)) => p,
        Ok(None) => return Err(Fatal::CompactStorage),
        Err(e) => return Err(compact_fatal(e)),
    };
    if device.map(|d| d.short()) != Some(live.device().anchor(0).device) {
        return Err(Fatal::CompactCorrupt);
    }
    info!(
        "compact state restored: last interval {}",
        live.device().last_interval()
    );
    Ok(Suite2::Live(live))
}

/// Maps the compact store's errors to what stops the device.
#[cfg(feature = "compact")]
fn compact_fatal<X, E>(e: PersistError<compact::StoreError<X>>) -> Fatal<E> {
    match e {
        PersistError::Corrupt(_) | PersistError::Storage(compact::StoreError::Corrupt) => {
            Fatal::CompactCorrupt
        }
        PersistError::Storage(_) => Fatal::CompactStorage,
        _ => Fatal::Internal,
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
