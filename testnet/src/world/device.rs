//! A simulated device: the real `slope_node::device::Slope` on an in-memory two-slot
//! flash ([`MemSlots`]) with power-cut injection, plus what the simulator needs around
//! it (its radio node, its transmit queue, its role in the scenario, its counters).
//!
//! Power cuts are real: at every boot the flash is armed with a byte budget drawn so
//! that cuts happen at the configured rate, and the cut lands at a random byte of a
//! state write (torn writes included). After the power returns the device restores from
//! flash, exactly as firmware does, and sends its last committed frames again.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use rand::Rng;
use slope_node::compact::device::{Error as ChainError, Schedule};
use slope_node::compact::persist::{PersistError, Persistent};
use slope_node::device::storage::{MemSlots, TwoSlot};
use slope_node::device::{Ahead, Config, Error as DeviceError, MIN_INCEPT_SAMPLES, SignJob, Slope};
use slope_proto::DeviceId;
use slope_radios::airtime::Modulation;
use slope_radios::sim::{NodeId, Position};

use crate::error::Error;
use crate::params::Suite;

/// The device engine as the simulator runs it.
pub type Engine = Slope<TwoSlot<MemSlots>>;

/// The suite-2 chain as the simulator runs it: persisted before transmit on a flash
/// region of its own (the same two-slot store as the suite-1 state).
pub type Chain = Persistent<TwoSlot<MemSlots>>;

/// Approximate bytes written per suite-2 state commit (record and two-slot framing).
const CHAIN_WRITE_BYTES: f64 = 200.0;

/// A compact device sends its renewal (instead of an attestation) this many times,
/// in its first wake-ups within the last quarter of a chain (at least this many
/// intervals): every copy commits to the same next chain, so one reception of any of
/// them is enough, and a device dormant for less than the window still renews.
pub const RENEW_LAST: u32 = 3;

/// One suite-2 frame a device made.
struct Made {
    bytes: Vec<u8>,
    renewal: bool,
}

/// Renewal copies sent for one chain: (the chain's first interval, copies).
type Copies = (u32, u32);

/// The frame for the interval of `clock_ms`: an attestation, or in the last quarter of
/// the chain (at least [`RENEW_LAST`] intervals) one of [`RENEW_LAST`] renewals
/// committing to a next chain of `len` intervals (prepared from a fresh 32-byte chain
/// state drawn from the device's entropy, and stored before any renewal leaves: every
/// copy commits to the same chain).
fn compact_frame(
    chain: &mut Chain,
    clock_ms: u64,
    (interval_ms, len, copies): (u32, u32, &mut Copies),
    rng: &mut impl Rng,
    payload: &[u8],
) -> Result<Made, PersistError<<TwoSlot<MemSlots> as slope_node::device::Storage>::Error>> {
    let d = chain.device();
    let t = u64::from(interval_ms);
    let interval = u32::try_from(clock_ms / t.max(1) + 1).unwrap_or(u32::MAX);
    let (first, last) = (d.chain().first(), d.chain().last());
    if copies.0 != first {
        *copies = (first, 0);
    }
    let window = (d.chain().len() / 4).max(RENEW_LAST);
    if interval <= last && last - interval < window && copies.1 < RENEW_LAST {
        copies.1 += 1;
        if !d.has_next() {
            let state: [u8; 32] = rng.r#gen();
            chain.prepare_renewal(&state, len)?;
        }
        let m = chain.renew(clock_ms)?;
        return Ok(Made {
            bytes: m.frame().to_vec(),
            renewal: true,
        });
    }
    let m = chain.attest(clock_ms, payload)?;
    Ok(Made {
        bytes: m.frame().to_vec(),
        renewal: false,
    })
}

/// Intervals per compact chain: 4096 intervals of 15 min is 42.7 days, the duration of
/// the suite's default chain (2^16 intervals of 60 s). Costs 4096 hashes to build or
/// restore (the traversal's checkpoints are rebuilt from the seed).
pub const CHAIN_LEN: u32 = 4096;
/// Disclosure delay of the compact schedule, intervals (the suite's default).
pub const DELAY: u8 = 2;
/// A compact device re-sends its inception and its anchor every this many wake-ups (a
/// gateway that missed both learns them from the mesh when it hears a frame of an
/// unknown device, so the device repeats them less often than suite 1 does).
pub const COMPACT_ESTABLISHMENT_EVERY: u32 = 32;
/// Bounds of the device clock model (docs/compact-suite.md §3: a device resynchronised
/// daily stays within 2 s): a fixed offset up to ±1 s after the daily synchronisation,
/// plus a crystal drift up to ±20 ppm (1.73 s a day) since it.
pub const CLOCK_OFFSET_MAX_MS: f64 = 1_000.0;
pub const CLOCK_DRIFT_MAX_PPM: f64 = 20.0;
const DAY_MS: u64 = 86_400_000;

/// A device's clock error: what its clock reads at true (simulated) time `t`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Clock {
    pub offset_ms: f64,
    pub drift_ppm: f64,
}

impl Clock {
    /// A clock with an offset and a drift drawn within the documented bounds.
    pub fn draw(rng: &mut impl Rng) -> Self {
        Self {
            offset_ms: rng.gen_range(-CLOCK_OFFSET_MAX_MS..=CLOCK_OFFSET_MAX_MS),
            drift_ppm: rng.gen_range(-CLOCK_DRIFT_MAX_PPM..=CLOCK_DRIFT_MAX_PPM),
        }
    }

    /// The largest error this model can produce, ms.
    pub fn bound_ms() -> f64 {
        CLOCK_OFFSET_MAX_MS + CLOCK_DRIFT_MAX_PPM * 1e-6 * DAY_MS as f64
    }

    /// The device's reading at true time `t_ms` (resynchronised at every midnight).
    pub fn now(&self, t_ms: u64) -> u64 {
        let since_sync = (t_ms % DAY_MS) as f64;
        let err = self.offset_ms + self.drift_ppm * 1e-6 * since_sync;
        (t_ms as f64 + err).max(0.0) as u64
    }
}

/// The compact schedule of a device attesting every `interval_s` (interval 1 starts at
/// time 0 of the simulated clock).
pub fn schedule(interval_s: u32) -> Schedule {
    Schedule {
        start_ms: 0,
        interval_ms: interval_s.saturating_mul(1000),
        delay: DELAY,
    }
}

/// A device's flash: the suite-1 state and the suite-2 chain state.
#[derive(Clone, Default)]
pub struct Flash {
    pub slope: MemSlots,
    pub chain: MemSlots,
}

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
    /// The suite-2 chain once anchored (and powered).
    chain: Option<Chain>,
    /// The suite-2 flash region while no chain holds it (power off, or not anchored).
    chain_off: Option<MemSlots>,
    /// The signed anchor of the chain, framed for the air (RAM: rebuilt at power-on).
    anchor: Option<Arc<[u8]>>,
    suite: Suite,
    pub clock: Clock,
    phase: f64,
    chain_len: u32,
    /// Suite-2 renewals sent (each commits to the next chain).
    pub renewals: u64,
    copies: Copies,
    /// The compact chain ended with no renewal sent (the device slept through its
    /// renewal window).
    pub exhausted: bool,
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
    /// The signature of the next attestation, being made ahead on another thread (see
    /// [`Self::sign_ahead`]); filled when done.
    ahead: Option<Arc<OnceLock<Ahead>>>,
    /// Attestations whose signature was made ahead (the device adopted it).
    pub adopted: u64,
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
            chain: None,
            chain_off: Some(MemSlots::default()),
            anchor: None,
            suite: Suite::Ed25519,
            clock: Clock::default(),
            phase: 0.0,
            chain_len: CHAIN_LEN,
            renewals: 0,
            copies: (0, 0),
            exhausted: false,
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
            ahead: None,
            adopted: 0,
        }
    }

    /// Whether the power is on.
    pub fn is_on(&self) -> bool {
        self.engine.is_some()
    }

    /// The flash as it is now (a copy): what an attacker extracts.
    pub fn flash(&self) -> Flash {
        let mut slope = match (&self.engine, &self.off) {
            (Some(e), _) => e.storage().medium().clone(),
            (None, Some(m)) => m.clone(),
            (None, None) => MemSlots::default(),
        };
        slope.power_on();
        let mut chain = match (&self.chain, &self.chain_off) {
            (Some(c), _) => c.storage().medium().clone(),
            (None, Some(m)) => m.clone(),
            (None, None) => MemSlots::default(),
        };
        chain.power_on();
        Flash { slope, chain }
    }

    /// A device that boots from `flash` (a clone, when the flash is someone else's).
    pub fn with_flash(mut self, flash: Flash) -> Self {
        self.engine = None;
        self.off = Some(flash.slope);
        self.chain = None;
        self.chain_off = Some(flash.chain);
        self
    }

    /// A device that speaks `suite` after its inception; for suite 2, with chains of
    /// `chain_len` intervals, and a clock error and a phase in its intervals drawn
    /// from `rng`.
    pub fn speaking(mut self, suite: Suite, chain_len: u32, rng: &mut impl Rng) -> Self {
        self.suite = suite;
        self.chain_len = chain_len;
        if suite == Suite::Compact {
            self.clock = Clock::draw(rng);
            self.phase = rng.gen_range(0.1..0.5);
        }
        self
    }

    /// Where in each of its intervals a suite-2 device transmits (a fraction of the
    /// interval, by its own schedule; each wake-up adds ±5 % of jitter).
    pub fn phase(&self) -> f64 {
        self.phase
    }

    /// The suite the device speaks.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Whether a compact chain is anchored (and the power is on).
    pub fn anchored(&self) -> bool {
        self.chain.is_some()
    }

    /// Powers on: restores from flash, arming a power cut after a random number of
    /// bytes when `cuts_per_day` > 0, and queues the last committed frames again.
    pub fn power_on(&mut self, rng: &mut impl Rng, cuts_per_day: f64) -> Result<(), Error> {
        let mut medium = match self.engine.take() {
            Some(e) => e.storage().medium().clone(),
            None => self.off.take().unwrap_or_default(),
        };
        medium.power_on();
        self.arm(&mut medium, rng, cuts_per_day, WRITE_BYTES);
        let engine = Slope::restore(self.config, TwoSlot::new(medium))
            .map_err(|e| self.fail(format!("restore: {e:?}")))?;
        if self.suite == Suite::Compact {
            self.restore_chain(&engine, rng, cuts_per_day)?;
        }
        // A compact device re-sends its suite-1 frames only until it has anchored (its
        // compact frames are never re-sent: a stored interval whose frame did not
        // leave costs one interval).
        if self.chain.is_none() {
            for f in engine.last_frames() {
                self.pending.push_back(frame_for_air(f));
            }
        }
        self.id = engine.id();
        self.engine = Some(engine);
        Ok(())
    }

    /// Arms a power cut on `medium` so that cuts land at `cuts_per_day` when every
    /// wake-up writes about `write_bytes` to it.
    fn arm(&self, medium: &mut MemSlots, rng: &mut impl Rng, cuts_per_day: f64, write_bytes: f64) {
        if cuts_per_day > 0.0 {
            let writes_per_day = 86_400.0 / f64::from(self.config.interval_s.max(1));
            let mean_bytes = writes_per_day / cuts_per_day * write_bytes;
            // Exponential: memoryless, so the cut is at a uniformly random byte of a
            // uniformly random write.
            let u: f64 = rng.r#gen::<f64>();
            let budget = (-(1.0 - u).ln() * mean_bytes).min(1e15);
            medium.budget = Some(budget as usize);
        }
    }

    /// Suite 2 at power-on: restores the chain from its flash region (rebuilding the
    /// traversal and the anchor), arming a power cut as for the suite-1 state.
    fn restore_chain(
        &mut self,
        engine: &Engine,
        rng: &mut impl Rng,
        cuts_per_day: f64,
    ) -> Result<(), Error> {
        let mut medium = match self.chain.take() {
            Some(c) => c.storage().medium().clone(),
            None => self.chain_off.take().unwrap_or_default(),
        };
        medium.power_on();
        self.arm(&mut medium, rng, cuts_per_day, CHAIN_WRITE_BYTES);
        self.anchor = None;
        match Chain::restore(TwoSlot::new(medium.clone())) {
            Ok(Some(chain)) => {
                let (first, len) = (chain.device().chain().first(), chain.device().chain().len());
                let (_, anchor) = engine
                    .anchor_compact(schedule(self.config.interval_s), first, len)
                    .map_err(|e| self.fail(format!("re-anchor: {e:?}")))?;
                self.anchor = Some(frame_for_air(anchor.frame()));
                self.chain = Some(chain);
            }
            Ok(None) => self.chain_off = Some(medium),
            Err(e) => return Err(self.fail(format!("chain restore: {e:?}"))),
        }
        Ok(())
    }

    /// Cuts the power now (a clean reboot follows with [`Self::power_on`]).
    pub fn power_off(&mut self) {
        if let Some(e) = self.engine.take() {
            self.off = Some(e.storage().medium().clone());
        }
        if let Some(c) = self.chain.take() {
            self.chain_off = Some(c.storage().medium().clone());
        }
        self.anchor = None;
        self.pending.clear();
        self.ahead = None;
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
        if self.suite == Suite::Compact {
            return self.wake_compact(now_ms, rng, payload);
        }
        let ahead = self.ahead.take();
        let result = if engine.id().is_none() {
            engine.incept(now_ms).map(|f| vec![frame_for_air(&f)])
        } else {
            // The signature made ahead when it is ready and right (the frames are the
            // same bytes either way).
            let ahead = ahead.as_deref().and_then(OnceLock::get);
            engine
                .attest_ahead(now_ms, payload, &[], ahead)
                .map(|(r, adopted)| {
                    self.adopted += u64::from(adopted);
                    r.frames.iter().map(|f| frame_for_air(f)).collect()
                })
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

    /// One wake-up of a suite-2 device: incept in suite 1 on the first, anchor the
    /// compact chain (the interval after this one is its first), then one compact
    /// attestation per interval, by the device's own clock.
    fn wake_compact(
        &mut self,
        now_ms: u64,
        rng: &mut impl Rng,
        payload: &[u8],
    ) -> Result<Wake, Error> {
        let Some(engine) = self.engine.as_mut() else {
            return Ok(Wake::Frames(Vec::new()));
        };
        let clock_ms = self.clock.now(now_ms);
        let mut frames = Vec::new();
        if engine.id().is_none() {
            match engine.incept(now_ms) {
                Ok(f) => frames.push(frame_for_air(&f)),
                Err(DeviceError::Storage(_)) => return Ok(self.cut()),
                Err(e) => return Err(self.fail(format!("{e:?}"))),
            }
            self.id = engine.id();
        }
        let Some(engine) = self.engine.as_ref() else {
            return Ok(Wake::Frames(frames));
        };
        match self.chain.as_mut() {
            None => {
                let sched = schedule(self.config.interval_s);
                let current = u32::try_from(clock_ms / u64::from(sched.interval_ms.max(1)) + 1)
                    .unwrap_or(u32::MAX - self.chain_len - 1);
                let (chain, anchor) = engine
                    .anchor_compact(sched, current + 1, self.chain_len)
                    .map_err(|e| self.fail(format!("anchor: {e:?}")))?;
                let medium = self.chain_off.take().unwrap_or_default();
                match Chain::create(chain, TwoSlot::new(medium.clone())) {
                    Ok(c) => {
                        self.chain = Some(c);
                        let air = frame_for_air(anchor.frame());
                        self.anchor = Some(air.clone());
                        frames.push(air);
                    }
                    Err(PersistError::Storage(_)) => {
                        self.chain_off = Some(medium);
                        return Ok(self.cut());
                    }
                    Err(e) => return Err(self.fail(format!("anchor store: {e:?}"))),
                }
            }
            Some(chain) => match compact_frame(
                chain,
                clock_ms,
                (
                    schedule(self.config.interval_s).interval_ms,
                    self.chain_len,
                    &mut self.copies,
                ),
                rng,
                payload,
            ) {
                Ok(f) => {
                    if f.renewal {
                        self.renewals += 1;
                    }
                    frames.push(frame_for_air(&f.bytes));
                }
                // The interval was used before a reboot, or the chain starts later:
                // nothing to send in this interval.
                Err(PersistError::Device(ChainError::IntervalUsed(_) | ChainError::NotStarted)) => {
                }
                // The device slept through its renewal window: its chain is over and
                // the verifiers hold no next one. It falls silent in suite 2 (counted);
                // coming back takes a suite-1 rotation and a new anchor, which this
                // simulation does not script.
                Err(PersistError::Device(ChainError::Exhausted)) => self.exhausted = true,
                Err(PersistError::Storage(_)) => return Ok(self.cut()),
                Err(e) => return Err(self.fail(format!("compact attest: {e:?}"))),
            },
        }
        if frames.is_empty() {
            return Ok(Wake::Frames(frames));
        }
        self.signed += frames.len() as u64;
        self.wakes = self.wakes.wrapping_add(1);
        if self.wakes % COMPACT_ESTABLISHMENT_EVERY == 0
            && let (Some(e), Some(a)) = (
                self.engine.as_ref().and_then(|e| e.establishment()),
                self.anchor.clone(),
            )
        {
            frames.insert(0, a);
            frames.insert(0, frame_for_air(e));
        }
        Ok(Wake::Frames(frames))
    }

    /// The signing of the attestation the device makes at its next wake-up, at `at_ms`
    /// with `payload`, to be done ahead on another thread
    /// (`slope_node::device::Slope::sign_ahead`; suite 1 only). The device adopts the
    /// result at that wake-up when it is ready and still the signature it needs (not
    /// after a reboot, a power cut, a rotation, a wake-up moved by the attack): only
    /// where the signing runs depends on it, never a frame.
    pub fn sign_ahead(&mut self, at_ms: u64, payload: &[u8]) -> Option<SignJob> {
        if self.suite != Suite::Ed25519 {
            return None;
        }
        self.engine.as_mut()?.sign_ahead(at_ms, payload, &[])
    }

    /// Where the signature made ahead by [`Self::sign_ahead`]'s job will be.
    pub fn expect_ahead(&mut self, slot: Arc<OnceLock<Ahead>>) {
        self.ahead = Some(slot);
    }

    fn cut(&mut self) -> Wake {
        self.power_cuts += 1;
        self.power_off();
        Wake::PowerCut
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

    /// Where the device is: the last compact interval it used once anchored, else the
    /// position of its slope.
    pub fn position(&self) -> Option<u32> {
        match &self.chain {
            Some(c) => Some(c.device().last_interval()),
            None => self.seq(),
        }
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

/// The position a frame speaks for: the slope position of a suite-1 event, the
/// interval of a suite-2 attestation or renewal.
pub fn frame_position(envelope: &[u8]) -> Option<u32> {
    if envelope.get(1) == Some(&slope_proto::compact::SUITE) {
        return match slope_proto::compact::decode(envelope).ok()? {
            slope_proto::compact::Message::Attestation(m) => Some(m.body().interval),
            slope_proto::compact::Message::Renewal(m) => Some(m.body().interval),
            _ => None,
        };
    }
    slope_proto::Event::decode(envelope).ok().map(|e| e.seq())
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_clock_stays_within_its_documented_bound() {
        // docs/compact-suite.md §3: the verifier's max_skew_ms (10 s) must cover the
        // device's error plus the gateway's.
        assert!(
            Clock::bound_ms() < 10_000.0 - 100.0,
            "{}",
            Clock::bound_ms()
        );
        let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(7);
        for _ in 0..1000 {
            let c = Clock::draw(&mut rng);
            for t in [0, 3_600_000, DAY_MS - 1, DAY_MS, 5 * DAY_MS + 12_345] {
                let err = c.now(t + 10_000_000) as f64 - (t + 10_000_000) as f64;
                assert!(err.abs() <= Clock::bound_ms() + 1.0, "{c:?} at {t}: {err}");
            }
        }
    }
}
