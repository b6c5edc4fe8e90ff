//! The compact suite in the firmware's device role, on host doubles of the board:
//! two gateways answer every attestation the device sends with a time echo (one of
//! them per frame: their echoes share a window) carrying their (true) receive time;
//! the device synchronises its clock from them,
//! anchors a compact chain, and sends compact attestations (and renewals near each
//! chain's end) through hundreds of intervals, with the power cut at random instants —
//! during flash writes of either state region (they share one flash), right after a
//! write landed, between cycles. After every reboot the clock is lost and the device
//! attests in suite 1 until it has synchronised again; suite-1 rotations happen in
//! those stretches.
//!
//! Checked: no interval ever carries two different compact frames; no position two
//! different suite-1 frames; every compact frame on air goes through the real node
//! verifier (`slope_node::verifier::Verifier` with the compact verifier, receive times
//! from the true clock) and is authenticated once a later frame discloses its key —
//! across renewals, rotations and reboots — with no divergence, renewal conflict, bad
//! MAC or late/future rejection.

mod support;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use slope_firmware::compact::{self, When};
use slope_firmware::flash::{FlashSlots, Shared};
use slope_firmware::node::{Config, Cycle, Fatal, Node};
use slope_firmware::sim::{MemFlash, SimFrame};
use slope_firmware::timesync::Policy;
use slope_node::device::Config as SlopeConfig;
use slope_node::verifier::compact::{self as vc, Event as CEvent, Reject};
use slope_node::verifier::{Config as VConfig, Outcome, Verifier, VerifyError};
use slope_proto::compact::Echo;
use slope_proto::compact::crypto::frame_digest;
use slope_proto::compact::{Attestation, Maced, Renewal};
use slope_proto::{Event, Observation, WitnessId};
use slope_radios::SpreadingFactor;
use slope_radios::airtime::Modulation;
use slope_radios::echo;
use slope_radios::frame::{encode_frame, parse_frame};
use slope_radios::meta::{RxMeta, Snr};
use slope_radios::radio::{Radio, Tune, TxParams, TxReport};
use support::{BootClock, Counter, Rng, Trng, World};

const PAGES: usize = 4;
const REGION: u32 = (2 * PAGES * 2048) as u32;
/// True Unix time at world time 0.
const T0_MS: u64 = compact::Config::EPOCH_2026_MS + 86_400_000;

/// A frame on air: the envelope and the true time it left (ms).
type OnAir = Vec<(Vec<u8>, u64)>;

/// The air around the device: every transmission is recorded with its true time, and
/// two gateways answer each of the device's events with a signed receipt (their
/// receive time, true ± a few ms), heard 300–800 ms later.
struct Gateways {
    world: World,
    air: Rc<RefCell<OnAir>>,
    device: Option<slope_proto::DeviceId>,
    inbox: Vec<(u64, SimFrame)>,
    listening: bool,
    rng: Rng,
}

impl Gateways {
    /// One gateway's time echo (of the two, at random: their echoes share a window),
    /// for the device's interactions and compact attestations and renewals, heard in
    /// the echo window 2 s after the frame ended at `end_ms`.
    fn echo(&mut self, envelope: &[u8], end_ms: u64) {
        let Some(device) = self.device else { return };
        let (seq, link) = if envelope.get(1) == Some(&2) {
            let interval = match envelope.get(2) {
                Some(1) => Maced::<Attestation>::decode(envelope).map(|a| a.body().interval),
                Some(2) => Maced::<Renewal>::decode(envelope).map(|r| r.body().interval),
                _ => return,
            };
            let Ok(interval) = interval else { return };
            (interval, frame_digest(envelope))
        } else {
            match Event::decode(envelope) {
                Ok(e @ Event::Interaction(_)) => (e.seq(), e.digest(&device).0),
                _ => return,
            }
        };
        let g = 1 + self.rng.below(2) as u8;
        let mut digest = [0u8; 8];
        digest.copy_from_slice(&link[..8]);
        let echo = Echo {
            device: device.short(),
            seq,
            digest,
            rx_ms: end_ms + self.rng.below(40),
            witness: WitnessId([g; 8]),
        };
        let bytes = echo.encode().expect("echo");
        let mut phy = [0u8; 255];
        let n = encode_frame(&bytes, &mut phy).expect("frame");
        let at = self.world.get() + u64::from(echo::DELAY_US);
        self.inbox
            .push((at, phy[..n].iter().copied().collect::<SimFrame>()));
    }
}

impl Radio for Gateways {
    type Error = core::convert::Infallible;

    async fn transmit(&mut self, frame: &[u8], params: TxParams) -> Result<TxReport, Self::Error> {
        let envelope = parse_frame(frame).expect("a Slope frame").to_vec();
        let tx_ms = T0_MS + self.world.get() / 1000;
        if self.device.is_none()
            && let Ok(Event::Inception(i)) = Event::decode(&envelope)
        {
            self.device = Some(i.device_id());
        }
        self.air.borrow_mut().push((envelope.clone(), tx_ms));
        let airtime_us = params.modulation.time_on_air_us(frame.len()).unwrap_or(0);
        self.world.set(self.world.get() + u64::from(airtime_us));
        self.echo(&envelope, T0_MS + self.world.get() / 1000);
        Ok(TxReport { airtime_us })
    }

    async fn receive(&mut self, buf: &mut [u8]) -> Result<(usize, RxMeta), Self::Error> {
        // Whatever is due by now (the caller's window bounds the wait).
        let now = self.world.get();
        let due = self
            .inbox
            .iter()
            .enumerate()
            .filter(|(_, (at, _))| *at <= now + 2_000_000)
            .min_by_key(|(_, (at, _))| *at)
            .map(|(k, _)| k);
        if !self.listening {
            return core::future::pending().await;
        }
        let Some(k) = due else {
            return core::future::pending().await;
        };
        let (at, frame) = self.inbox.remove(k);
        if at > now {
            self.world.set(at);
        }
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Ok((
            n,
            RxMeta {
                rssi_dbm: -90,
                signal_rssi_dbm: None,
                snr: Snr(20),
                freq_hz: 868_100_000,
                sf: SpreadingFactor::_9,
                bw: slope_radios::Bandwidth::_125KHz,
                timestamp_us: 0,
                freq_offset_hz: None,
            },
        ))
    }
}

impl Tune for Gateways {
    fn listen_on(&mut self, _: u32, _: Modulation) -> Result<(), Self::Error> {
        self.listening = true;
        Ok(())
    }
    async fn idle(&mut self) -> Result<(), Self::Error> {
        self.listening = false;
        // Echoes not heard in this window are lost.
        let now = self.world.get();
        self.inbox.retain(|(at, _)| *at > now);
        Ok(())
    }
}

/// The device: suite-1 rotations every 5 attestations, cycles of `cycle_ms`, compact
/// intervals of `t_ms`, short chains.
fn config(cycle_ms: u64, t_ms: u32, chain_len: u32, renew_within: u32) -> Config {
    let mut c = Config::eu868();
    c.slope = SlopeConfig {
        rotate_every: 5,
        max_epoch_events: 20,
        rotate_after_ms: 0,
        interval_s: 60,
    };
    c.interval_ms = cycle_ms;
    c.listen_ms = 5_000.min(cycle_ms / 2);
    c.establishment_every = 9;
    c.fresh_per_cycle = 24;
    c.compact = Some(compact::Config {
        when: When::Always,
        interval_ms: t_ms,
        delay: 2,
        chain_len,
        renew_within,
        renewals: 3,
        sync: Policy {
            quorum: 2,
            ..Policy::DEFAULT
        },
        ..compact::Config::DEFAULT
    });
    c
}

type Slots<'a> = FlashSlots<Shared<'a, MemFlash>, PAGES>;

/// One frame every ~3 intervals (cycles of 60 s, T = 20 s), chains of 256 intervals.
#[test]
fn the_compact_loop_survives_power_cuts_and_verifies_through_the_node_verifier() {
    power_cut_loop(config(60_000, 20_000, 256, 160), 1_500, 8, 6);
}

/// Six cycles per interval (cycles of 10 s, T = 60 s): after a reboot the device is back
/// in the interval it last used before the cut, and must not make a second frame for it
/// (the persisted last interval refuses it), even though its sensor counter restarted.
#[test]
fn reboots_inside_a_used_interval_make_no_second_frame() {
    // (Its chains end by re-anchors after rotations more often than by renewals: the
    // renewals are the first loop's to check.)
    power_cut_loop(config(10_000, 60_000, 128, 80), 500, 21, 0);
}

fn power_cut_loop(config: Config, target: u32, seed: u64, min_renewals: u32) {
    let world: World = Rc::new(Cell::new(0));
    let air: Rc<RefCell<OnAir>> = Rc::new(RefCell::new(Vec::new()));
    let mut rng = Rng(seed);
    let mut flash = MemFlash::new(2 * REGION as usize, None);
    let mut device = None;
    let (mut boots, mut cuts, mut compact_cycles, mut anchored, mut renewals) = (0, 0, 0, 0, 0);
    let (mut rotations_seen, mut rotations_after_anchor) = (0u32, 0u32);
    let mut waiting = 0u32;
    while compact_cycles < target {
        boots += 1;
        assert!(boots < 5_000, "no progress");
        let budget = match rng.below(4) {
            0 => None,
            1 => Some(rng.below(60) as usize),
            _ => Some(rng.below(2_500) as usize),
        };
        flash.set_budget(budget);
        let cell = RefCell::new(flash.clone());
        let slots = Slots::new(Shared(&cell), 0).expect("layout");
        let compact_slots = Slots::new(Shared(&cell), REGION).expect("layout");
        let radio = Gateways {
            world: world.clone(),
            air: air.clone(),
            device,
            inbox: Vec::new(),
            listening: false,
            rng: Rng(rng.next()),
        };
        let clock = BootClock {
            world: world.clone(),
            boot_us: world.get(),
        };
        let booted = Node::boot_with(
            config,
            slots,
            Some(compact_slots),
            radio,
            clock,
            Trng(Rng(rng.next())),
            Counter(0),
        );
        let mut node = match booted {
            Ok(n) => n,
            Err(Fatal::Storage(_) | Fatal::CompactStorage) => {
                cuts += 1;
                drop(booted);
                flash = cell.into_inner();
                continue;
            }
            Err(e) => panic!("boot failed: {e:?}"),
        };
        for _ in 0..1 + rng.below(30) {
            let r = embassy_futures::block_on(node.step());
            match r {
                Ok(Cycle::Compact { renewal, .. }) => {
                    compact_cycles += 1;
                    renewals += u32::from(renewal);
                }
                Ok(Cycle::Anchored { .. }) => anchored += 1,
                Ok(Cycle::Waiting) => waiting += 1,
                Ok(Cycle::Attested { rotated, .. }) => {
                    rotations_seen += u32::from(rotated);
                    if anchored > 0 {
                        rotations_after_anchor += u32::from(rotated);
                    }
                }
                Ok(_) => {}
                Err(Fatal::Storage(_) | Fatal::CompactStorage) => {
                    cuts += 1;
                    break;
                }
                Err(e) => panic!("unexpected fatal error {e:?}"),
            }
        }
        device = node.radio().device;
        drop(node);
        flash = cell.into_inner();
        // The board is off for a while now and then.
        world.set(world.get() + rng.below(4) * rng.below(120_000_000));
    }
    // One anchor, and one more after each suite-1 rotation in a compact stretch (the
    // rotation retires the key that signed the stored anchor).
    assert!(
        anchored >= 1 && anchored <= 1 + rotations_after_anchor,
        "{anchored} anchors for {rotations_after_anchor} rotations after the first"
    );
    // (A rotation right before the run ends may not have reached a compact cycle.)
    assert!(
        rotations_after_anchor < 2 || anchored > 1,
        "{rotations_after_anchor} rotations after the first anchor and no re-anchor"
    );
    assert!(cuts > target / 10, "only {cuts} power cuts");
    assert!(renewals >= min_renewals, "only {renewals} renewals");
    assert!(
        rotations_seen > 0,
        "no suite-1 rotation in the fallback stretches"
    );
    let device = device.expect("incepted");

    // No interval (or position) carries two different frames.
    let air = air.borrow();
    let mut intervals: BTreeMap<u32, &[u8]> = BTreeMap::new();
    let mut positions: BTreeMap<u32, &[u8]> = BTreeMap::new();
    for (f, _) in air.iter() {
        let (map, at) = match (f.get(1), f.get(2)) {
            (Some(2), Some(1)) => (
                &mut intervals,
                Maced::<Attestation>::decode(f).unwrap().body().interval,
            ),
            (Some(2), Some(2)) => (
                &mut intervals,
                Maced::<Renewal>::decode(f).unwrap().body().interval,
            ),
            (Some(2), _) => continue,
            _ => (&mut positions, Event::decode(f).unwrap().seq()),
        };
        if let Some(prev) = map.insert(at, f) {
            assert_eq!(prev, &f[..], "two different frames for {at}");
        }
    }

    // Everything through the node's verifier, received 200 ms after it left.
    // Frames whose key is never disclosed (the last of a chain, when the device did
    // not speak in the next chain's first `delay` intervals) expire after an hour.
    let mut v = Verifier::with_compact(
        VConfig::default(),
        vc::Config {
            max_pending_age_ms: 3_600_000,
            ..vc::Config::default()
        },
    );
    let (mut authenticated, mut renewed, mut compact_on_air) = (0u32, 0u32, 0u32);
    let mut anchors = std::collections::BTreeSet::new();
    let mut verified = std::collections::BTreeSet::new();
    for (f, tx_ms) in air.iter() {
        let rx = tx_ms + 200;
        let obs = Observation {
            rssi_dbm: -100,
            snr_qdb: 20,
            freq_hz: 868_100_000,
            foff_hz: None,
            sf: 9,
            time_ms: rx,
        };
        v.handle_timeout(rx);
        let o = v.handle_attestation(rx, f, obs);
        let is_compact = f.get(1) == Some(&2);
        match o {
            Outcome::Compact(vc::Outcome::Frame(_)) => compact_on_air += 1,
            Outcome::Compact(vc::Outcome::Anchored {
                device: d, first, ..
            }) => {
                assert_eq!(d, device);
                anchors.insert(first);
            }
            // The anchor again after a rotation, before the device re-anchored: signed
            // by a retired key.
            Outcome::Rejected(VerifyError::RetiredKey) if is_compact => {}
            Outcome::Rejected(VerifyError::Compact(
                r @ (Reject::Late { .. } | Reject::Future { .. }),
            )) => {
                panic!("compact frame refused by the clock check: {r:?}")
            }
            Outcome::Divergence(d) => panic!("suite-1 divergence {d:?}"),
            Outcome::Extended(_) | Outcome::Duplicate { .. } => {}
            other if is_compact => panic!("compact frame: {other:?}"),
            _ => {}
        }
        while let Some(o) = v.poll_outcome() {
            match o {
                Outcome::Compact(vc::Outcome::Event(CEvent::Authenticated(a))) => {
                    authenticated += 1;
                    verified.insert(a.interval());
                }
                Outcome::Compact(vc::Outcome::Event(CEvent::Renewed { .. })) => renewed += 1,
                other => panic!("verifier: {other:?}"),
            }
        }
    }
    // Every frame verifies but the last ones (whose keys are not disclosed yet) and,
    // at a chain switch the device slept through (off during the next chain's first
    // `delay` intervals, where the old chain's last keys are disclosed), the frames
    // after the old chain's last disclosure: at most one or two per switch.
    // Every anchor the device made (the first and each re-anchor) was taken.
    assert_eq!(anchors.len() as u32, anchored, "anchors taken: {anchors:?}");
    // The chains the verifier followed: one per anchor, one per renewal. A chain the
    // device moved to without either would leave all its frames unverified (caught by
    // the bound on unverified frames below).
    let chains = anchored + renewed;
    // (Renewal copies after the first are accepted silently: one `Renewed` per chain.)
    let attestations: Vec<u32> = intervals
        .iter()
        .filter(|(_, f)| f[2] == 1)
        .map(|(i, _)| *i)
        .collect();
    let missing: Vec<u32> = attestations
        .iter()
        .filter(|i| !verified.contains(*i))
        .copied()
        .collect();
    // A re-anchor abandons the old chain: its last `delay` frames are never disclosed
    // (the new chain's frames disclose only its own keys).
    let delay = u32::from(config.compact.expect("compact").delay);
    assert!(
        missing.len() as u32 <= 2 + chains + delay * (anchored - 1),
        "{authenticated} of {} attestations authenticated, {chains} chains; unverified: {missing:?}",
        attestations.len()
    );
    assert!(
        renewed >= min_renewals.min(1),
        "no renewal verified of the {renewals} sent"
    );
    assert!(compact_on_air >= target * 8 / 10, "{compact_on_air}");
    println!(
        "{boots} boots, {cuts} power cuts, {compact_cycles} compact cycles, {compact_on_air} compact frames on air, \
         {authenticated} authenticated, {} unverified, {renewed} renewals verified, {chains} chains, {rotations_seen} rotations, {anchored} anchors, \
         {waiting} cycles with nothing to send",
        missing.len()
    );
}

#[test]
fn compact_memory_fits_the_budget() {
    use slope_firmware::compact::Store;
    use slope_firmware::timesync::TimeSync;
    use slope_node::compact::chain::Traversal;
    use slope_node::compact::device::Device;
    use slope_node::compact::persist::Persistent;
    let traversal = size_of::<Traversal>();
    let device = size_of::<Device>();
    let persistent = size_of::<Persistent<Store<Slots<'static>>>>();
    let sync = size_of::<TimeSync>();
    let pool = size_of::<compact::RenewalPool>();
    println!(
        "chain traversal {traversal} B, compact device {device} B, persisted device with its store {persistent} B, \
         clock sync {sync} B, renewal pool {pool} B"
    );
    assert!(
        traversal <= 2048 && device <= 2048,
        "{traversal} / {device}"
    );
    assert!(
        persistent + sync + pool <= 2560,
        "{persistent} + {sync} + {pool}"
    );
}

/// The default choice ([`When::Suite1DoesNotFit`]): a device whose slowest data rate
/// carries a suite-1 attestation (EU868 from SF9) stays in suite 1; one planned down to
/// SF12 (51-byte payloads) synchronises, anchors and speaks compact.
#[test]
fn suite_two_only_where_suite_one_does_not_fit() {
    use slope_firmware::air::Plan;
    let run = |plan: Plan| {
        let world: World = Rc::new(Cell::new(0));
        let cell = RefCell::new(MemFlash::new(2 * REGION as usize, None));
        let mut c = Config::eu868();
        c.plan = plan;
        c.compact = Some(compact::Config::DEFAULT);
        let mut node = Node::boot_with(
            c,
            Slots::new(Shared(&cell), 0).expect("layout"),
            Some(Slots::new(Shared(&cell), REGION).expect("layout")),
            Gateways {
                world: world.clone(),
                air: Rc::new(RefCell::new(Vec::new())),
                device: None,
                inbox: Vec::new(),
                listening: false,
                rng: Rng(3),
            },
            BootClock {
                world: world.clone(),
                boot_us: 0,
            },
            Trng(Rng(4)),
            Counter(0),
        )
        .expect("boot");
        // (One echo per attestation, from one of two gateways: the quorum of two
        // witnesses takes a few cycles.)
        (0..16)
            .map(|_| embassy_futures::block_on(node.step()).expect("cycle"))
            .filter(|c| matches!(c, Cycle::Compact { sent: true, .. }))
            .count()
    };
    assert_eq!(run(Plan::EU868), 0, "EU868 from SF9 carries suite 1");
    let sf12 = Plan {
        min_dr: 0,
        ..Plan::EU868
    };
    let compact = run(sf12);
    assert!(compact >= 10, "only {compact} compact frames at SF12");
}
