//! Clock synchronisation from time echoes, in the device role on host doubles: the
//! device starts with no clock, and the only time it hears is the gateways' short echo
//! downlinks (no receipts), delivered only when its receiver is tuned to the echo
//! window (`slope_radios::echo`: 2 s after the uplink's end, 869.525 MHz, SF12).
//!
//! 1. Two honest gateways (clock error within ±δ_gw) echo every attestation; one wins
//!    each window (capture effect). The device synchronises (quorum 2 across rounds),
//!    switches to the compact suite, and its clock is never ahead of true time by more
//!    than δ_gw.
//! 2. Then an attacker's echo wins every window (the honest ones are jammed), claiming
//!    an hour ahead: the clock moves ahead by at most 2ρ × the time since the last
//!    honest sample (timesync's bound), and the device drops synchronisation instead
//!    of following.

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use slope_firmware::compact::{self, When};
use slope_firmware::flash::{FlashSlots, Shared};
use slope_firmware::node::{Config, Cycle, Node};
use slope_firmware::sim::{MemFlash, SimFrame};
use slope_firmware::timesync::Policy;
use slope_proto::compact::crypto::frame_digest;
use slope_proto::compact::{Attestation, Echo, Maced};
use slope_proto::{DeviceId, Event, ShortId, WitnessId};
use slope_radios::airtime::Modulation;
use slope_radios::echo::Window;
use slope_radios::frame::{encode_frame, parse_frame};
use slope_radios::meta::{RxMeta, Snr};
use slope_radios::radio::{Radio, Tune, TxParams, TxReport};
use slope_radios::region::Region;
use slope_radios::{Bandwidth, SpreadingFactor};
use support::{BootClock, Counter, Rng, Trng, World};

const PAGES: usize = 4;
const REGION: u32 = (2 * PAGES * 2048) as u32;
/// True Unix time at world time 0.
const T0_MS: u64 = compact::Config::EPOCH_2026_MS + 86_400_000;
/// The honest gateways' clock error (δ_gw), ms.
const GW_ERR: u64 = 100;

/// Who answers in the echo window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// One of two honest gateways, at random.
    Honest,
    /// An attacker claiming this much ahead of true time (ms), with one witness id.
    Forged(u64),
}

/// The air: records the device's frames, and answers each attestation with one echo
/// due 2 s after the frame's end, heard only by a receiver tuned to the echo window.
struct Air {
    world: World,
    device: Option<DeviceId>,
    answer: Rc<Cell<Answer>>,
    inbox: Vec<(u64, SimFrame)>,
    tuned: Option<(u32, Modulation)>,
    echoes_sent: Rc<Cell<u32>>,
    rng: Rng,
}

impl Air {
    /// The frame's (seq or interval, link digest) when gateways echo it: suite-1
    /// interactions and compact attestations.
    fn echoed(&self, envelope: &[u8]) -> Option<(ShortId, u32, [u8; 16])> {
        let device = self.device?;
        if envelope.get(1) == Some(&2) {
            let a = Maced::<Attestation>::decode(envelope).ok()?;
            let mut link = [0u8; 16];
            link.copy_from_slice(&frame_digest(envelope)[..16]);
            return Some((a.body().device, a.body().interval, link));
        }
        match Event::decode(envelope).ok()? {
            e @ Event::Interaction(_) => {
                Some((device.short(), e.seq(), e.digest(&device).link().0))
            }
            _ => None,
        }
    }
}

impl Radio for Air {
    type Error = core::convert::Infallible;

    async fn transmit(&mut self, frame: &[u8], params: TxParams) -> Result<TxReport, Self::Error> {
        let envelope = parse_frame(frame).expect("a Slope frame").to_vec();
        if self.device.is_none()
            && let Ok(Event::Inception(i)) = Event::decode(&envelope)
        {
            self.device = Some(i.device_id());
        }
        let airtime_us = params.modulation.time_on_air_us(frame.len()).unwrap_or(0);
        self.world.set(self.world.get() + u64::from(airtime_us));
        let end_us = self.world.get();
        if let Some((device, seq, link)) = self.echoed(&envelope) {
            let truth_ms = T0_MS + end_us / 1000;
            let (witness, rx_ms) = match self.answer.get() {
                Answer::Honest => {
                    let g = 1 + self.rng.below(2) as u8;
                    let err = self.rng.below(2 * GW_ERR + 1);
                    (WitnessId([g; 8]), truth_ms + err - GW_ERR)
                }
                Answer::Forged(ahead) => (WitnessId([0xee; 8]), truth_ms + ahead),
            };
            let mut digest = [0u8; 8];
            digest.copy_from_slice(&link[..8]);
            let echo = Echo {
                device,
                seq,
                digest,
                rx_ms,
                witness,
            };
            let bytes = echo.encode().expect("echo");
            let mut phy = [0u8; 255];
            let n = encode_frame(&bytes, &mut phy).expect("frame");
            let at = end_us + u64::from(Window::of(Region::Eu868).delay_us);
            self.inbox.push((at, phy[..n].iter().copied().collect()));
            self.echoes_sent.set(self.echoes_sent.get() + 1);
        }
        Ok(TxReport { airtime_us })
    }

    async fn receive(&mut self, buf: &mut [u8]) -> Result<(usize, RxMeta), Self::Error> {
        let w = Window::of(Region::Eu868);
        if self.tuned != Some((w.freq_hz, w.modulation)) {
            return core::future::pending().await;
        }
        let now = self.world.get();
        // An echo is heard if the receiver is on when its preamble starts: from the
        // window's opening, up to 100 ms late.
        let Some(k) = self
            .inbox
            .iter()
            .position(|(at, _)| *at + 100_000 >= now && *at <= now + 2_500_000)
        else {
            return core::future::pending().await;
        };
        let (at, frame) = self.inbox.remove(k);
        let airtime = w.modulation.time_on_air_us(frame.len()).unwrap_or(0);
        self.world.set(now.max(at) + u64::from(airtime));
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Ok((
            n,
            RxMeta {
                rssi_dbm: -110,
                signal_rssi_dbm: None,
                snr: Snr(-20),
                freq_hz: w.freq_hz,
                sf: SpreadingFactor::_12,
                bw: Bandwidth::_125KHz,
                timestamp_us: 0,
                freq_offset_hz: None,
            },
        ))
    }
}

impl Tune for Air {
    fn listen_on(&mut self, freq_hz: u32, m: Modulation) -> Result<(), Self::Error> {
        self.tuned = Some((freq_hz, m));
        Ok(())
    }
    async fn idle(&mut self) -> Result<(), Self::Error> {
        self.tuned = None;
        let now = self.world.get();
        self.inbox.retain(|(at, _)| *at > now);
        Ok(())
    }
}

fn config() -> Config {
    let mut c = Config::eu868();
    c.interval_ms = 120_000;
    c.listen_ms = 10_000;
    c.fresh_per_cycle = 24;
    c.compact = Some(compact::Config {
        when: When::Always,
        sync: Policy {
            quorum: 2,
            ..Policy::DEFAULT
        },
        ..compact::Config::DEFAULT
    });
    c
}

type Slots<'a> = FlashSlots<Shared<'a, MemFlash>, PAGES>;

#[test]
fn a_device_synchronises_from_echoes_alone_and_a_forged_echo_cannot_push_it_ahead() {
    let world: World = Rc::new(Cell::new(0));
    let answer = Rc::new(Cell::new(Answer::Honest));
    let echoes_sent = Rc::new(Cell::new(0));
    let cell = RefCell::new(MemFlash::new(2 * REGION as usize, None));
    let slots = Slots::new(Shared(&cell), 0).expect("layout");
    let compact_slots = Slots::new(Shared(&cell), REGION).expect("layout");
    let air = Air {
        world: world.clone(),
        device: None,
        answer: answer.clone(),
        inbox: Vec::new(),
        tuned: None,
        echoes_sent: echoes_sent.clone(),
        rng: Rng(7),
    };
    let clock = BootClock {
        world: world.clone(),
        boot_us: 0,
    };
    let mut node = Node::boot_with(
        config(),
        slots,
        Some(compact_slots),
        air,
        clock,
        Trng(Rng(11)),
        Counter(0),
    )
    .expect("boot");
    let now_mono_ms = |w: &World| w.get() / 1000;
    let truth_ms = |w: &World| T0_MS + w.get() / 1000;

    // 1. Honest echoes only.
    let (mut synced_at, mut compact_cycles) = (None, 0);
    for k in 0..40 {
        let cycle = embassy_futures::block_on(node.step()).expect("cycle");
        compact_cycles += u32::from(matches!(cycle, Cycle::Compact { sent: true, .. }));
        if let Some(est) = node.sync().unix_ms(now_mono_ms(&world)) {
            synced_at.get_or_insert(k);
            let t = truth_ms(&world);
            assert!(est <= t + GW_ERR + 1, "ahead by {} ms", est - t);
            // Behind by at most δ_gw plus the slow rate's loss over a cycle.
            assert!(t <= est + GW_ERR + 50, "behind by {} ms", t - est);
        }
    }
    let synced_at = synced_at.expect("never synchronised from echoes");
    assert!(synced_at <= 6, "synchronised only at cycle {synced_at}");
    assert!(compact_cycles >= 20, "only {compact_cycles} compact cycles");
    assert!(node.stats().echoes >= 30 && node.stats().time_samples >= 30);

    // 2. The attacker's echo wins every window, an hour ahead.
    answer.set(Answer::Forged(3_600_000));
    let last_honest_ms = now_mono_ms(&world);
    let rho = u64::from(Policy::DEFAULT.drift_ppm);
    let mut lost = false;
    for _ in 0..20 {
        embassy_futures::block_on(node.step()).expect("cycle");
        match node.sync().unix_ms(now_mono_ms(&world)) {
            Some(est) => {
                let t = truth_ms(&world);
                let bound = GW_ERR + 2 * (now_mono_ms(&world) - last_honest_ms) * rho / 1_000_000;
                assert!(est <= t + bound + 2, "ahead by {} ms > {bound}", est - t);
            }
            None => lost = true,
        }
    }
    assert!(
        lost,
        "the device followed a forged clock instead of dropping it"
    );
    assert!(echoes_sent.get() >= 50, "{} echoes", echoes_sent.get());
}
