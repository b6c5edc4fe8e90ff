//! Persist before transmit: a power cut at any write boundary, then a reboot, never
//! makes the device release two different events at one position.

mod common;

use std::collections::BTreeMap;

use common::{Rng, feed, rx};
use proptest::prelude::*;
use slope_node::device::storage::{MemSlots, TwoSlot};
use slope_node::device::{Config, Error, MIN_INCEPT_SAMPLES, Slope};
use slope_node::verifier::{Outcome, Verifier};
use slope_proto::Event;

/// Runs `steps` attestations, cutting the power after `cuts[i]` more bytes written, for
/// each cut in turn, rebooting after each; returns every released frame.
fn run_with_cuts(seed: u64, steps: u32, cuts: &[usize]) -> (Vec<Vec<u8>>, u32) {
    let config = Config {
        rotate_every: 3,
        rotate_after_ms: 0,
        max_epoch_events: 12,
        ..Config::default()
    };
    let mut rng = Rng(seed);
    let mut medium = MemSlots::default();
    let mut released: Vec<Vec<u8>> = Vec::new();
    let mut cuts = cuts.iter().copied();
    medium.budget = cuts.next();
    let mut t = 0u64;
    let mut done = 0;
    let mut reboots = 0;
    while done < steps {
        reboots += 1;
        let mut device = Slope::restore(config, TwoSlot::new(medium.clone())).unwrap();
        // After a reboot the device sends its last committed frames again.
        released.extend(device.last_frames().iter().map(|f| f.to_vec()));
        let mut cut = false;
        while done < steps && !cut {
            feed(&mut device, &mut rng, 50);
            t += 60_000;
            let result = if device.id().is_none() {
                feed(&mut device, &mut rng, MIN_INCEPT_SAMPLES);
                device.incept(t).map(|f| vec![f.to_vec()])
            } else {
                device
                    .attest(t, &t.to_le_bytes(), &[])
                    .map(|r| r.frames.iter().map(|f| f.to_vec()).collect())
            };
            match result {
                Ok(frames) => {
                    released.extend(frames);
                    done += 1;
                }
                Err(Error::Storage(_)) => cut = true,
                Err(e) => panic!("unexpected device error {e}"),
            }
        }
        medium = device.storage().medium().clone();
        medium.power_on();
        medium.budget = cuts.next();
    }
    (released, reboots - 1)
}

fn assert_no_two_frames_share_a_position(frames: &[Vec<u8>]) {
    let mut at: BTreeMap<u32, &Vec<u8>> = BTreeMap::new();
    for f in frames {
        let seq = Event::decode(f).unwrap().seq();
        if let Some(prev) = at.insert(seq, f) {
            assert_eq!(prev, f, "two different frames released at position {seq}");
        }
    }
    // And a verifier that hears everything sees one honest slope.
    let mut v = Verifier::new(Default::default());
    for f in frames {
        let o = v.handle_attestation(0, f, rx(0));
        assert!(
            matches!(o, Outcome::Extended(_) | Outcome::Duplicate { .. }),
            "{o:?}"
        );
    }
}

#[test]
fn a_cut_at_every_byte_of_every_write_is_safe() {
    // A state record is under 1 KiB: cutting after 0..1100 bytes of the next write
    // covers every boundary of it, including "the whole record landed".
    for budget in (0..1100).step_by(7).chain([1, 2, 3, 8, 9, 10]) {
        // The budget counts bytes from the start, so cut during the write that crosses it.
        let (frames, reboots) = run_with_cuts(7, 12, &[budget, budget / 2 + 300, budget + 2000]);
        assert!(reboots >= 1, "the power was never cut at budget {budget}");
        assert_no_two_frames_share_a_position(&frames);
    }
}

#[test]
fn a_failed_store_releases_nothing_and_keeps_the_old_state() {
    let mut medium = MemSlots::default();
    medium.budget = Some(2_000); // enough for the inception only (plus a bit)
    let config = Config::default();
    let mut d = Slope::restore(config, TwoSlot::new(medium)).unwrap();
    let mut rng = Rng(1);
    feed(&mut d, &mut rng, MIN_INCEPT_SAMPLES);
    d.incept(0).unwrap();
    let seq = d.seq();
    let mut failed = false;
    for i in 0..10 {
        if d.attest(i * 1000, &[1], &[]).is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed);
    let before = d.seq();
    assert!(d.attest(99_999, &[2], &[]).is_err());
    assert_eq!(d.seq(), before);
    assert!(before >= seq);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_power_cuts_never_fork_an_honest_device(
        seed in any::<u64>(),
        cuts in proptest::collection::vec(0usize..4000, 1..8),
    ) {
        let (frames, _) = run_with_cuts(seed, 16, &cuts);
        assert_no_two_frames_share_a_position(&frames);
    }
}
