//! The firmware's device role, on host doubles of the board, through a thousand
//! attestations with the power cut at random instants (during flash writes, right after
//! a write landed, between cycles): no two different frames ever go on air for one
//! position, every position does go on air, and the slope stays one hash-linked chain.
//!
//! It builds this crate with the firmware's own features (only `defmt`, a transport, and
//! `lora-phy`, the board's driver, are left out) and uses the firmware's own flash layer
//! (`FlashSlots` over a NOR flash with STM32WL geometry).

mod support;

use std::collections::BTreeMap;

use slope_firmware::flash::FlashSlots;
use slope_firmware::harvest::{SourceInfo, Sources};
use slope_firmware::health::{MinEntropy, Status};
use slope_firmware::node::{Config, Cycle, Fatal, Node};
use slope_firmware::sensor::{Reading, Sensor};
use slope_firmware::sim::{MemFlash, SimRadio, VirtualClock};
use slope_node::device::storage::{MemSlots, TwoSlot};
use slope_node::device::{Config as SlopeConfig, MIN_INCEPT_SAMPLES, Slope};
use slope_proto::{DeviceId, Event};
use slope_radios::SpreadingFactor;
use slope_radios::frame::{encode_frame, parse_frame};
use slope_radios::meta::{RxMeta, Snr};
use support::Rng;

const PAGES: usize = 4;
const FLASH: usize = 2 * PAGES * 2048;

/// A board with a good source, a source stuck at one value, and a biased one that
/// alternates with zeros (too poor for its claim).
struct Board(Rng);
const LIST: &[SourceInfo] = &[
    SourceInfo {
        name: "trng",
        min_entropy: MinEntropy::FourBits,
    },
    SourceInfo {
        name: "adc (stuck)",
        min_entropy: MinEntropy::OneBit,
    },
    SourceInfo {
        name: "jitter (biased)",
        min_entropy: MinEntropy::FourBits,
    },
];
impl Sources for Board {
    fn list(&self) -> &'static [SourceInfo] {
        LIST
    }
    async fn sample(&mut self, index: usize) -> Option<u8> {
        let x = self.0.next();
        Some(match index {
            0 => x as u8,
            1 => 0x80,
            _ => {
                if x & 1 == 0 {
                    0
                } else {
                    (x >> 8) as u8
                }
            }
        })
    }
}

/// A sensor reporting a counter.
struct Counter(u32);
impl Sensor for Counter {
    async fn read(&mut self) -> Reading {
        self.0 += 1;
        let mut r = Reading::default();
        let _ = r.payload.extend_from_slice(&self.0.to_le_bytes());
        let _ = r.behaviour.push(1);
        r
    }
}

type Device = Node<SimRadio, FlashSlots<MemFlash, PAGES>, VirtualClock, Board, Counter>;

fn config() -> Config {
    let mut c = Config::eu868();
    // Rotate often so rotations (two frames per commit) are cut too.
    c.slope = SlopeConfig {
        rotate_every: 7,
        max_epoch_events: 28,
        rotate_after_ms: 0,
        interval_s: 60,
    };
    c.interval_ms = 60_000;
    c.listen_ms = 5_000;
    c.establishment_every = 5;
    c.fresh_per_cycle = 24;
    c
}

/// A neighbour device whose frames the node hears now and then.
fn neighbour_frames(n: u32) -> (DeviceId, Vec<Vec<u8>>) {
    let mut d = Slope::restore(SlopeConfig::default(), TwoSlot::new(MemSlots::default())).unwrap();
    let mut rng = Rng(99);
    for _ in 0..MIN_INCEPT_SAMPLES {
        d.handle_entropy(&rng.next().to_le_bytes());
    }
    let mut frames = vec![d.incept(0).unwrap().to_vec()];
    for i in 0..n {
        for _ in 0..8 {
            d.handle_entropy(&rng.next().to_le_bytes());
        }
        let r = d.attest(u64::from(i) * 60_000, &[], &[]).unwrap();
        frames.extend(r.frames.iter().map(|f| f.to_vec()));
    }
    (d.id().unwrap(), frames)
}

fn rx_meta(rng: &mut Rng) -> RxMeta {
    RxMeta {
        rssi_dbm: -110 + rng.below(30) as i16,
        signal_rssi_dbm: None,
        snr: Snr(rng.below(60) as i16 - 30),
        freq_hz: 868_100_000,
        sf: SpreadingFactor::_9,
        bw: slope_radios::Bandwidth::_125KHz,
        timestamp_us: 0,
        freq_offset_hz: None,
    }
}

#[test]
fn a_thousand_attestations_with_power_cuts_never_fork_the_device() {
    let target = 1000u32;
    let mut rng = Rng(2024);
    let (neighbour, their_frames) = neighbour_frames(400);
    let mut their = their_frames.iter().cycle();

    let mut flash = MemFlash::new(FLASH, None);
    let mut air: Vec<Vec<u8>> = Vec::new();
    let (mut boots, mut cuts, mut stuck_reported, mut heard_reports) = (0u32, 0u32, 0u32, 0u32);
    let mut attested = 0u32;
    let mut clock_base = 0u64;

    while attested < target {
        boots += 1;
        // Each life ends with a power cut after a random number of flash operations
        // (0 = during the very next erase), or after a random number of cycles.
        let budget = match rng.below(4) {
            0 => None,
            1 => Some(rng.below(40) as usize),
            _ => Some(rng.below(3_000) as usize),
        };
        flash.set_budget(budget);
        let cycles = 1 + rng.below(40);
        let slots = FlashSlots::<_, PAGES>::new(flash.clone(), 0).expect("layout");
        let mut node: Device = match Node::boot(
            config(),
            slots,
            SimRadio::default(),
            VirtualClock::at(clock_base),
            Board(Rng(rng.next())),
            Counter(0),
        ) {
            Ok(n) => n,
            Err(Fatal::Storage(_)) => {
                cuts += 1;
                continue;
            }
            Err(e) => panic!("boot failed: {e:?}"),
        };
        let mut ended_by_cut = false;
        for _ in 0..cycles {
            // A neighbour's frame (and some noise) waits on the air for the next window.
            if rng.below(3) == 0 {
                let mut phy = [0u8; 255];
                let n = encode_frame(their.next().unwrap(), &mut phy).unwrap();
                let _ = node
                    .radio()
                    .inbox
                    .push_back((phy[..n].iter().copied().collect(), rx_meta(&mut rng)));
                let junk: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
                let _ = node
                    .radio()
                    .inbox
                    .push_back((junk.iter().copied().collect(), rx_meta(&mut rng)));
            }
            let result = embassy_futures::block_on(node.step());
            // Every receive window ends with the receiver idled.
            assert_eq!(
                node.radio().listening,
                None,
                "receiver left on after a cycle"
            );
            while let Some((f, _)) = node.radio().sent.pop_front() {
                air.push(f.to_vec());
            }
            match result {
                Ok(Cycle::Attested { .. }) => attested += 1,
                Ok(Cycle::Incepted | Cycle::Starved) => {}
                // Suite 1 only here (`Node::boot`: no compact store).
                Ok(c @ (Cycle::Anchored { .. } | Cycle::Compact { .. } | Cycle::Waiting)) => {
                    panic!("a suite-1 device spoke compact: {c:?}")
                }
                Err(Fatal::Storage(_)) => {
                    ended_by_cut = true;
                    break;
                }
                Err(e) => panic!("unexpected fatal error {e:?}"),
            }
        }
        cuts += u32::from(ended_by_cut);
        if node
            .harvester()
            .report()
            .any(|(name, s)| name == "adc (stuck)" && matches!(s, Status::Failed(_)))
        {
            stuck_reported += 1;
        }
        assert!(
            node.harvester()
                .report()
                .all(|(name, s)| name != "jitter (biased)" || !matches!(s, Status::Healthy)),
            "a biased source must never be credited"
        );
        heard_reports += node.stats().neighbours;
        clock_base = 0; // the clock restarts with every boot
        flash = node.slope().storage().medium().flash().clone();
    }

    // Every frame on air, by position.
    let mut at: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut device: Option<DeviceId> = None;
    let mut heard_neighbour = 0;
    for phy in &air {
        let envelope = parse_frame(phy).expect("the node sends Slope frames");
        let event = Event::decode(envelope).expect("well-formed event");
        if let Event::Inception(i) = &event {
            let id = i.device_id();
            assert!(
                device.is_none_or(|d| d == id),
                "the device incepted twice on air"
            );
            device = Some(id);
        }
        if let Event::Interaction(e) = &event
            && e.body().heard.iter().any(|h| h.id == neighbour.neighbour())
        {
            heard_neighbour += 1;
        }
        if let Some(prev) = at.insert(event.seq(), envelope.to_vec()) {
            assert_eq!(
                prev,
                envelope,
                "two different frames on air at position {}",
                event.seq()
            );
        }
    }
    let device = device.expect("the inception went on air");
    let top = *at.keys().last().unwrap();
    assert!(top >= target, "only {top} positions");
    // No position is missing: a frame committed before a cut was sent after the reboot.
    assert_eq!(
        at.len() as u32,
        top + 1,
        "a committed position never went on air"
    );
    // And they form one chain.
    for seq in 1..=top {
        let prev = Event::decode(&at[&(seq - 1)]).unwrap();
        let this = Event::decode(&at[&seq]).unwrap();
        assert_eq!(
            this.prev(),
            Some(prev.digest(&device).link()),
            "chain broken at {seq}"
        );
    }
    assert!(cuts > 100, "only {cuts} power cuts");
    assert_eq!(
        stuck_reported, boots,
        "the stuck source was not reported in every boot"
    );
    assert!(
        heard_reports > 0 && heard_neighbour > 0,
        "no neighbour evidence reported"
    );
    println!(
        "{boots} boots, {cuts} power cuts, {} positions, {} frames on air, {heard_neighbour} attestations reporting the neighbour",
        top + 1,
        air.len()
    );
}
