//! Persist before transmit, suite 2: a power cut at any byte of any state write, then
//! a reboot, never makes the device MAC two different frames for one interval, nor
//! commit to two different next chains; a verifier that hears every released frame
//! sees no divergence and no renewal conflict.

mod compact_support;

use std::collections::BTreeMap;

use compact_support::{Identity, START, T, identity, schedule};
use proptest::prelude::*;
use slope_node::compact::device::Device;
use slope_node::compact::persist::{PersistError, Persistent};
use slope_node::compact::verifier::{Config, Event, Verifier};
use slope_node::device::storage::{MemSlots, TwoSlot};
use slope_proto::compact::{self as c2, SignedAnchor};

/// Chain length: short, so the runs cross a renewal and a chain switch.
const LEN: u32 = 6;
const STEPS: u32 = 16;

/// A released frame and the interval it was sent in.
struct Sent {
    rx_ms: u64,
    frame: Vec<u8>,
}

/// Runs `STEPS` intervals (renewal prepared from interval 2, sent in the chain's last
/// two intervals, then attestations on the next chain), cutting the power after `cuts[i]` more bytes
/// written for each cut in turn, rebooting after each. Returns every released frame.
fn run_with_cuts(cuts: &[usize]) -> (Vec<Sent>, u32, Vec<u8>) {
    let Identity { key, id, .. } = identity();
    let device = Device::new(id, &[9; 32], schedule(), 1, LEN).expect("device");
    let anchor = SignedAnchor::sign(device.anchor(0), &id, &key)
        .expect("anchor")
        .frame()
        .to_vec();
    let mut medium = MemSlots::default();
    let mut cuts = cuts.iter().copied();
    // The initial state is stored with the power on.
    let mut p = Persistent::create(device, TwoSlot::new(medium.clone())).expect("create");
    medium = p.storage().medium().clone();
    medium.budget = cuts.next();
    let mut sent = Vec::new();
    let mut reboots = 0;
    let mut i = 1;
    while i <= STEPS {
        p = Persistent::restore(TwoSlot::new(medium.clone()))
            .expect("restore")
            .expect("a state was stored");
        let mut cut = false;
        while i <= STEPS && !cut {
            let now = START + u64::from(i - 1) * T + 1_000;
            // What a firmware does at every wake-up before the chain ends: make sure a
            // renewal is prepared, from a fresh chain state each time. Only a stored
            // preparation keeps every renewal committing to one chain across reboots.
            let fresh = [i as u8 ^ (reboots as u8).wrapping_mul(31); 32];
            let prepared = if (2..=LEN).contains(&i) {
                p.prepare_renewal(&fresh, LEN).map(|_| ())
            } else {
                Ok(())
            };
            let result = prepared.and_then(|()| {
                if (LEN - 1..=LEN).contains(&i) {
                    p.renew(now).map(|f| Some(f.frame().to_vec()))
                } else {
                    p.attest(now, &[i as u8, reboots as u8])
                        .map(|f| Some(f.frame().to_vec()))
                }
            });
            let done = match result {
                Ok(Some(frame)) => {
                    sent.push(Sent {
                        rx_ms: now + 2_000,
                        frame,
                    });
                    true
                }
                Ok(None) => true,
                // Nothing released: the interval is tried again after the reboot.
                Err(PersistError::Storage(_)) => false,
                Err(PersistError::Device(_)) => true, // interval already used: skip it
                Err(e) => panic!("unexpected {e}"),
            };
            // The power is gone whatever the device reported: reboot, still in the
            // same interval (a quick reboot), and try it again.
            cut = p.storage().medium().cut;
            if done && !cut {
                i += 1;
            }
        }
        if cut {
            reboots += 1;
            medium = p.storage().medium().clone();
            medium.power_on();
            medium.budget = cuts.next();
        }
    }
    (sent, reboots, anchor)
}

fn assert_honest(sent: &[Sent], anchor: &[u8]) {
    // One frame per interval.
    let mut at: BTreeMap<u32, &Vec<u8>> = BTreeMap::new();
    for s in sent {
        let interval = match c2::decode(&s.frame) {
            Ok(c2::Message::Attestation(a)) => a.body().interval,
            Ok(c2::Message::Renewal(r)) => r.body().interval,
            other => panic!("{other:?}"),
        };
        if let Some(prev) = at.insert(interval, &s.frame) {
            assert_eq!(
                prev, &s.frame,
                "two frames released for interval {interval}"
            );
        }
    }
    // A verifier that hears everything: no divergence, no renewal conflict.
    let Identity { key, id, .. } = identity();
    let mut v = Verifier::new(Config::default());
    v.add_anchor(id, &key.verifying_key(), anchor)
        .expect("anchor");
    for s in sent {
        v.handle_frame(s.rx_ms, &s.frame).expect("accepted");
    }
    while let Some(e) = v.poll_event() {
        assert!(
            !matches!(
                e,
                Event::Divergence(_) | Event::RenewalConflict { .. } | Event::BadMac { .. }
            ),
            "{e:?}"
        );
    }
}

#[test]
fn a_cut_at_every_byte_of_every_write_is_safe() {
    // A state record is under 500 bytes (plus the slot's header and check): cutting
    // after 0..600 bytes of a write covers every boundary, including "it all landed".
    for budget in (0..600).chain([700, 1_000, 1_500]) {
        let (sent, reboots, anchor) = run_with_cuts(&[budget, budget / 2 + 150, budget + 900]);
        assert!(reboots >= 1, "the power was never cut at budget {budget}");
        assert_honest(&sent, &anchor);
    }
}

#[test]
fn a_failed_store_releases_nothing() {
    let Identity { id, .. } = identity();
    let device = Device::new(id, &[9; 32], schedule(), 1, 64).expect("device");
    let p = Persistent::create(device, TwoSlot::new(MemSlots::default())).expect("create");
    let mut medium = p.storage().medium().clone();
    medium.budget = Some(10);
    let mut p = Persistent::restore(TwoSlot::new(medium))
        .expect("restore")
        .expect("stored");
    let now = START + 1_000;
    assert!(matches!(p.attest(now, b"x"), Err(PersistError::Storage(_))));
    // After the reboot the interval is free again (no frame for it ever left) and the
    // device works.
    let mut medium = p.storage().medium().clone();
    medium.power_on();
    let mut p = Persistent::restore(TwoSlot::new(medium))
        .expect("restore")
        .expect("stored");
    assert_eq!(p.device().last_interval(), 0);
    let f = p.attest(now, b"x").expect("attest");
    assert_eq!(p.device().last_interval(), 1);
    assert!(matches!(p.attest(now, b"y"), Err(PersistError::Device(_))));
    assert!(!f.frame().is_empty());
}

#[test]
fn restore_rebuilds_the_same_chain() {
    let Identity { id, .. } = identity();
    let device = Device::new(id, &[9; 32], schedule(), 1, 5000).expect("device");
    let mut reference = Device::new(id, &[9; 32], schedule(), 1, 5000).expect("device");
    let mut p = Persistent::create(device, TwoSlot::new(MemSlots::default())).expect("create");
    for i in [1u32, 2, 4200] {
        let now = START + u64::from(i - 1) * T + 1_000;
        let a = p.attest(now, b"p").expect("attest");
        let b = reference.attest(now, b"p").expect("attest");
        assert_eq!(a.frame(), b.frame());
        p = Persistent::restore(TwoSlot::new(p.storage().medium().clone()))
            .expect("restore")
            .expect("stored");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_power_cuts_never_fork_an_honest_device(
        cuts in proptest::collection::vec(0usize..3_000, 1..8),
    ) {
        let (sent, _, anchor) = run_with_cuts(&cuts);
        assert_honest(&sent, &anchor);
    }

    /// Arbitrary stored bytes never panic the restore.
    #[test]
    fn corrupt_records_are_refused_not_panicked_on(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut medium = MemSlots::default();
        {
            use slope_node::device::Storage;
            let mut s = TwoSlot::new(medium.clone());
            let mut framed = b"SC1".to_vec();
            framed.extend(&bytes);
            s.store(&framed).expect("store");
            medium = s.medium().clone();
        }
        let _ = Persistent::restore(TwoSlot::new(medium));
    }
}
