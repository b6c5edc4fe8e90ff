//! The suite-1 device hands over to the compact suite: `Slope::anchor_compact` signs a
//! compact anchor with the live suite-1 key and gives the chain to a compact device;
//! the device incepts in suite 1, anchors, and speaks compact through the one verifier
//! and the trust engine. The anchor is the same after a restart (no second chain over
//! the same intervals), and a rotation gives a new chain under the new key.

mod common;
#[path = "trust_support.rs"]
mod support;

use common::{Device, Rng, feed, incepted, rx};
use slope_node::compact::device::Schedule;
use slope_node::device::storage::TwoSlot;
use slope_node::device::{Config, Slope};
use slope_node::lineage::{self, Memory};
use slope_node::proto::sample;
use slope_node::trust::{Admission, Engine, Policy};
use slope_node::verifier::compact::{self as vc, Event as CompactEvent};
use slope_node::verifier::{Config as VConfig, Outcome, Verifier};

const T: u64 = 900_000;

fn engine() -> Engine<Memory> {
    support::engine(Policy::default(), &[], 0)
}

fn schedule(start_ms: u64) -> Schedule {
    Schedule {
        start_ms,
        interval_ms: T as u32,
        delay: 2,
    }
}

#[test]
fn a_device_incepts_anchors_and_speaks_compact_through_verifier_and_engine() {
    let (mut dev, inception): (Device, _) = incepted(0xa11c, 0);
    let id = dev.id().expect("incepted");
    let mut v = Verifier::with_compact(VConfig::default(), vc::Config::default());
    let mut e = engine();
    let mut rng = Rng(5);
    // Suite 1: the inception and ten attestations, each decided by the engine.
    let mut now = 0;
    let mut frames = vec![inception];
    for i in 1..=10u64 {
        feed(&mut dev, &mut rng, 4);
        let released = dev.attest(i * T, &i.to_le_bytes(), &[]).expect("attest");
        frames.extend(released.frames.iter().map(|f| f.to_vec()));
    }
    for (k, f) in frames.iter().enumerate() {
        now = k as u64 * T;
        let Outcome::Extended(att) = v.handle_attestation(now, f, rx(now)) else {
            panic!("frame {k} did not extend");
        };
        let d = e.handle_attestation(now, &att, &[]).expect("decision");
        assert!(!matches!(d.admission, Admission::Refused(_)), "{d:?}");
    }
    let depth = e.hot(&id).expect("tracked").depth;
    assert_eq!(depth, 11);
    // Hand over: anchor with the live key; interval 1 starts one period later.
    let start = now + T;
    let (mut chain, anchor) = dev
        .anchor_compact(schedule(start), 1, 1024)
        .expect("anchor");
    assert_eq!(anchor.body().epoch, 0);
    assert_eq!(
        v.handle_attestation(start, anchor.frame(), rx(start)),
        Outcome::Compact(vc::Outcome::Anchored {
            device: id,
            first: 1,
            len: 1024
        })
    );
    let mut compact = 0;
    for i in 1..=12u32 {
        let s = start + u64::from(i - 1) * T;
        let frame = chain.attest(s + 1_000, &[i as u8]).expect("compact frame");
        let o = v.handle_attestation(s + 3_000, frame.frame(), rx(s + 3_000));
        assert!(
            matches!(o, Outcome::Compact(vc::Outcome::Frame(_))),
            "{o:?}"
        );
        while let Some(o) = v.poll_outcome() {
            let Outcome::Compact(vc::Outcome::Event(CompactEvent::Authenticated(a))) = o else {
                panic!("unexpected {o:?}");
            };
            let d = e.handle_compact(s + 3_000, &a, &[]).expect("decision");
            assert!(!matches!(d.admission, Admission::Refused(_)), "{d:?}");
            compact += 1;
        }
    }
    assert_eq!(compact, 10);
    let h = e.hot(&id).expect("tracked");
    assert_eq!((h.depth, h.compact_head, h.lost), (21, 10, 0));
    let ex = e
        .lineage()
        .export(&sample::key(support::AUTHOR))
        .expect("export");
    let author = sample::key(support::AUTHOR).verifying_key().to_bytes();
    let report = lineage::verify(&ex, &author).expect("verifies");
    assert_eq!((report.frames, report.compact), (11, 10));
    lineage::verify_replay(&ex, &author).expect("replays");
}

#[test]
fn the_anchor_survives_a_restart_and_a_rotation_gives_a_new_chain() {
    let (mut dev, _) = incepted(0xbeef, 3);
    let (_, a) = dev.anchor_compact(schedule(0), 1, 256).expect("anchor");
    // Entropy fed but not yet committed, then a power cut: same chain, same anchor.
    let mut rng = Rng(9);
    feed(&mut dev, &mut rng, 40);
    let (_, b) = dev.anchor_compact(schedule(0), 1, 256).expect("anchor");
    assert_eq!(a, b);
    let medium = dev.storage().medium().clone();
    let restarted = Slope::restore(Config::default(), TwoSlot::new(medium)).expect("restore");
    let (_, c) = restarted
        .anchor_compact(schedule(0), 1, 256)
        .expect("anchor");
    assert_eq!(a, c);
    // Another first interval: another chain.
    let (_, d) = dev.anchor_compact(schedule(0), 257, 256).expect("anchor");
    assert_ne!(a.body().anchor, d.body().anchor);
    // After a rotation the anchor is signed by the new key, for the new epoch.
    for i in 1..=4u64 {
        feed(&mut dev, &mut rng, 40);
        dev.attest(i * T, &[], &[]).expect("attest");
    }
    assert_eq!(dev.epoch(), Some(1));
    let (_, r) = dev.anchor_compact(schedule(0), 1, 256).expect("anchor");
    assert_eq!(r.body().epoch, 1);
    assert_ne!(r.body().anchor, a.body().anchor);
    // Bad parameters are an error, not a panic; before inception, NotIncepted.
    assert!(dev.anchor_compact(schedule(0), 1, 0).is_err());
    let fresh = Slope::restore(
        Config::default(),
        TwoSlot::new(slope_node::device::storage::MemSlots::default()),
    )
    .expect("fresh");
    assert!(matches!(
        fresh.anchor_compact(schedule(0), 1, 16),
        Err(slope_node::device::Error::NotIncepted)
    ));
}
