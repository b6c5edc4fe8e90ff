//! Suite 2 through the one verifier (`slope_node::verifier::Verifier`): a device that
//! establishes with suite 1 and then speaks compact frames, routed by the suite byte;
//! forged MACs and disclosures refused; a compact divergence detected and proven; the
//! buffering bounds; batches equal to one-by-one handling.

mod common;
mod compact_support;

use common::rx;
use compact_support::{Identity, SKEW, START, at, identity, schedule};
use ed25519_dalek::SigningKey;
use slope_node::compact::device::Device;
use slope_node::compact::verify_proof;
use slope_node::verifier::compact::{self, Conflict, Event as CompactEvent, FrameOutcome, Reject};
use slope_node::verifier::{Config, Outcome, Verifier, VerifyError};
use slope_proto::DeviceId;
use slope_proto::compact::proof::Parts;
use slope_proto::compact::{CompactProof, Receipt, SignedAnchor, crypto};

struct Fixture {
    id: DeviceId,
    key: SigningKey,
    inception: Vec<u8>,
    anchor: Vec<u8>,
    device: Device,
    verifier: Verifier,
}

/// A suite-1 identity (inception verified by the one verifier) and its compact chain.
fn fixture(compact: compact::Config) -> Fixture {
    let Identity { key, id, inception } = identity();
    let device = Device::new(id, &[9; 32], schedule(), 1, 4096).expect("device");
    let anchor = SignedAnchor::sign(device.anchor(0), &id, &key).expect("anchor");
    let mut verifier = Verifier::with_compact(Config::default(), compact);
    let o = verifier.handle_attestation(START, &inception, rx(START));
    assert!(matches!(o, Outcome::Extended(_)), "{o:?}");
    Fixture {
        id,
        key,
        inception,
        anchor: anchor.frame().to_vec(),
        device,
        verifier,
    }
}

fn polled(v: &mut Verifier) -> Vec<CompactEvent> {
    std::iter::from_fn(|| v.poll_outcome())
        .filter_map(|o| match o {
            Outcome::Compact(compact::Outcome::Event(e)) => Some(e),
            _ => None,
        })
        .collect()
}

fn authenticated(events: &[CompactEvent]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            CompactEvent::Authenticated(a) => Some(a.interval()),
            _ => None,
        })
        .collect()
}

fn anchored(f: &mut Fixture) {
    let o = f.verifier.handle_attestation(START, &f.anchor, rx(START));
    assert_eq!(
        o,
        Outcome::Compact(compact::Outcome::Anchored {
            device: f.id,
            first: 1,
            len: 4096
        })
    );
}

#[test]
fn a_suite_one_device_speaks_compact_through_the_one_verifier() {
    let mut f = fixture(compact::Config::default());
    anchored(&mut f);
    // The same anchor again changes nothing.
    let again = f.verifier.handle_attestation(START, &f.anchor, rx(START));
    assert!(matches!(
        again,
        Outcome::Compact(compact::Outcome::Anchored { .. })
    ));
    let mut events = Vec::new();
    for i in 1..=10 {
        let (t, r) = at(i);
        let frame = f.device.attest(t, &[i as u8; 8]).expect("attest");
        let o = f.verifier.handle_attestation(r, frame.frame(), rx(r));
        match o {
            Outcome::Compact(compact::Outcome::Frame(FrameOutcome::Buffered {
                device,
                interval,
                ..
            })) => {
                assert_eq!((device, interval), (f.id, i));
            }
            other => panic!("interval {i}: {other:?}"),
        }
        events.extend(polled(&mut f.verifier));
    }
    // Each frame is verified when the frame two intervals later discloses its key.
    assert_eq!(authenticated(&events), (1..=8).collect::<Vec<_>>());
    for e in &events {
        if let CompactEvent::Authenticated(a) = e {
            assert_eq!(a.device(), &f.id);
            // The radio's observation travels with the verified frame.
            assert_eq!(a.rx().map(|o| o.time_ms), Some(a.rx_ms()));
        }
    }
    // The suite-1 view of the device is untouched.
    assert_eq!(f.verifier.snapshot(&f.id).map(|s| s.window.len()), Some(1));
    // Forgetting the device drops its compact state too.
    assert!(f.verifier.forget(&f.id));
    assert_eq!(f.verifier.compact().device_count(), 0);
}

#[test]
fn anchors_need_the_current_suite_one_key() {
    let mut f = fixture(compact::Config::default());
    // Signed by another key: a bad signature.
    let other = SigningKey::from_bytes(&[7; 32]);
    let forged = SignedAnchor::sign(f.device.anchor(0), &f.id, &other).expect("anchor");
    assert_eq!(
        f.verifier
            .handle_attestation(START, forged.frame(), rx(START)),
        Outcome::Rejected(VerifyError::BadSignature)
    );
    // For an epoch whose rotation has not arrived: no key to check it.
    let future = SignedAnchor::sign(f.device.anchor(1), &f.id, &f.key).expect("anchor");
    assert_eq!(
        f.verifier
            .handle_attestation(START, future.frame(), rx(START)),
        Outcome::Rejected(VerifyError::UnknownKey)
    );
    // A device nobody has heard of.
    let mut fresh = Verifier::new(Config::default());
    assert_eq!(
        fresh.handle_attestation(START, &f.anchor, rx(START)),
        Outcome::Rejected(VerifyError::UnknownKey)
    );
    // Frames of an unanchored device are refused without state.
    let (t, r) = at(1);
    let frame = f.device.attest(t, b"x").expect("attest");
    assert_eq!(
        f.verifier.handle_attestation(r, frame.frame(), rx(r)),
        Outcome::Rejected(VerifyError::Compact(Reject::UnknownDevice))
    );
    assert_eq!(f.verifier.compact().pending_total(), 0);
}

#[test]
fn a_forged_mac_is_rejected_once_the_key_is_disclosed() {
    let mut f = fixture(compact::Config::default());
    anchored(&mut f);
    let (t1, r1) = at(1);
    let honest = f.device.attest(t1, b"reading").expect("attest");
    let mut forged = honest.frame().to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    // The forgery arrives first and is buffered (its key is not public yet).
    assert!(matches!(
        f.verifier.handle_attestation(r1, &forged, rx(r1)),
        Outcome::Compact(compact::Outcome::Frame(FrameOutcome::Buffered { .. }))
    ));
    f.verifier
        .handle_attestation(r1 + 1, honest.frame(), rx(r1));
    for i in 2..=3 {
        let (t, r) = at(i);
        let frame = f.device.attest(t, b"").expect("attest");
        f.verifier.handle_attestation(r, frame.frame(), rx(r));
    }
    let events = polled(&mut f.verifier);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, CompactEvent::BadMac { interval: 1, .. })),
        "{events:?}"
    );
    assert_eq!(authenticated(&events), vec![1]);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, CompactEvent::Divergence(_)))
    );

    // A frame whose disclosed key does not hash to the chain is refused on arrival.
    let (t4, r4) = at(4);
    let mut bad = f.device.attest(t4, b"").expect("attest").frame().to_vec();
    bad[14] ^= 0x40; // inside the disclosed key (3 + 8 + 3 = byte 14)
    assert_eq!(
        f.verifier.handle_attestation(r4, &bad, rx(r4)),
        Outcome::Rejected(VerifyError::Compact(Reject::BadDisclosure))
    );
}

#[test]
fn a_compact_divergence_is_detected_and_proven() {
    let mut f = fixture(compact::Config::default());
    anchored(&mut f);
    // Someone extracted the device's state: a second device with the same chain.
    let mut clone = Device::new(f.id, &[9; 32], schedule(), 1, 4096).expect("clone");
    let gw1 = SigningKey::from_bytes(&[1; 32]);
    let gw2 = SigningKey::from_bytes(&[2; 32]);
    for i in 1..=3 {
        let (t, r) = at(i);
        let frame = f.device.attest(t, b"").expect("attest");
        f.verifier.handle_attestation(r, frame.frame(), rx(r));
        clone.attest(t, b"").expect("clone keeps pace");
    }
    let (t4, r4) = at(4);
    let a = f.device.attest(t4, b"honest").expect("attest");
    let b = clone.attest(t4, b"clone").expect("attest");
    f.verifier.handle_attestation(r4, a.frame(), rx(r4));
    f.verifier.handle_attestation(r4 + 700, b.frame(), rx(r4));
    let (t6, r6) = at(6);
    let (t5, r5) = at(5);
    let five = f.device.attest(t5, b"").expect("attest");
    f.verifier.handle_attestation(r5, five.frame(), rx(r5));
    let six = f.device.attest(t6, b"").expect("attest");
    f.verifier.handle_attestation(r6, six.frame(), rx(r6));
    let events = polled(&mut f.verifier);
    let conflicts: Vec<Conflict> = events
        .iter()
        .filter_map(|e| match e {
            CompactEvent::Divergence(c) => Some((**c).clone()),
            _ => None,
        })
        .collect();
    assert_eq!(conflicts.len(), 1, "{events:?}");
    let c = &conflicts[0];
    assert_eq!((c.device, c.interval), (f.id, 4));

    // The gateways that received the two frames sign receipts; with the suite-1 key
    // history the one verifier holds, that is a proof anyone can check.
    let establishments = f.verifier.establishments(&f.id);
    assert_eq!(establishments, vec![&f.inception[..]]);
    let r1 =
        Receipt::sign(&gw1, crypto::frame_digest(c.first.frame()), c.first.rx_ms()).expect("r1");
    let r2 = Receipt::sign(
        &gw2,
        crypto::frame_digest(c.second.frame()),
        c.second.rx_ms(),
    )
    .expect("r2");
    let mut out = vec![0u8; 4096];
    let n = CompactProof::encode(
        &Parts {
            inception: establishments[0],
            rotations: &[],
            anchor: &f.anchor,
            renewals: &[],
            key: &c.key,
            a: (c.first.frame(), &[r1.frame()]),
            b: (c.second.frame(), &[r2.frame()]),
        },
        &mut out,
    )
    .expect("encode");
    let d = verify_proof(&out[..n], SKEW).expect("proof verifies");
    assert_eq!((d.device, d.interval), (f.id, 4));
}

#[test]
fn buffered_frames_are_bounded_per_device_and_in_total() {
    let config = compact::Config {
        max_pending: 4,
        max_pending_total: 3,
        ..compact::Config::default()
    };
    let mut f = fixture(config);
    anchored(&mut f);
    // Different forged frames for interval 1 (the key is not disclosed yet).
    let (t1, r1) = at(1);
    let honest = f.device.attest(t1, b"h").expect("attest").frame().to_vec();
    let mut refused = 0;
    for n in 0u8..6 {
        let mut forged = honest.clone();
        let last = forged.len() - 1;
        forged[last] = n;
        match f.verifier.handle_attestation(r1, &forged, rx(r1)) {
            Outcome::Rejected(VerifyError::Compact(Reject::PendingFull)) => refused += 1,
            Outcome::Compact(compact::Outcome::Frame(FrameOutcome::Buffered { .. })) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(refused, 3);
    assert_eq!(f.verifier.compact().pending_total(), 3);
    // Disclosure drains the buffer.
    for i in 2..=3 {
        let (t, r) = at(i);
        let frame = f.device.attest(t, b"").expect("attest");
        f.verifier.handle_attestation(r, frame.frame(), rx(r));
    }
    // Frame 2 met a full buffer (nothing to disclose yet); frame 3's disclosure
    // checked the three forgeries first, so it found room.
    assert_eq!(f.verifier.compact().pending_total(), 1);
    let events = polled(&mut f.verifier);
    let bad = events
        .iter()
        .filter(|e| matches!(e, CompactEvent::BadMac { interval: 1, .. }))
        .count();
    assert_eq!(bad, 3, "{events:?}");
    // A frame that waits longer than the age bound is dropped by the timer.
    let (_, r3) = at(3);
    f.verifier.handle_timeout(r3 + 86_400_000);
    assert_eq!(f.verifier.compact().pending_total(), 1);
    f.verifier.handle_timeout(r3 + 86_400_001);
    assert_eq!(f.verifier.compact().pending_total(), 0);
}

#[test]
fn a_batch_with_both_suites_equals_one_by_one() {
    let f = fixture(compact::Config::default());
    let mut frames: Vec<(u64, Vec<u8>)> = vec![(START, f.anchor.clone())];
    let mut device = Device::new(f.id, &[9; 32], schedule(), 1, 4096).expect("device");
    for i in 1..=6 {
        let (t, r) = at(i);
        frames.push((
            r,
            device
                .attest(t, &[i as u8])
                .expect("attest")
                .frame()
                .to_vec(),
        ));
    }
    // One batch per receive time (a gateway batches what arrives together).
    let fresh = || {
        let mut v = Verifier::new(Config::default());
        v.handle_attestation(START, &f.inception, rx(START));
        v
    };
    let mut one = fresh();
    let mut batch = fresh();
    for (r, frame) in &frames {
        let a = one.handle_attestation(*r, frame, rx(*r));
        let b = batch.handle_batch(*r, &[(&frame[..], rx(*r))]);
        assert_eq!(vec![a], b);
    }
    let ea = polled(&mut one);
    let eb = polled(&mut batch);
    assert_eq!(ea, eb);
    assert_eq!(authenticated(&ea), vec![1, 2, 3, 4]);
}

proptest::proptest! {
    /// Arbitrary suite-2 frames through the one verifier: never a panic, never an
    /// anchor or a verified frame, and nothing buffered for an unanchored device.
    #[test]
    fn suite_two_garbage_never_panics_or_authenticates(
        kind in 0u8..6,
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
    ) {
        let mut f = fixture(compact::Config::default());
        let mut frame = vec![1u8, 2, kind];
        frame.extend(&body);
        let o = f.verifier.handle_attestation(START, &frame, rx(START));
        proptest::prop_assert!(matches!(o, Outcome::Rejected(_)), "{:?}", o);
        proptest::prop_assert!(polled(&mut f.verifier).is_empty());
        proptest::prop_assert_eq!(f.verifier.compact().pending_total(), 0);
    }
}

/// Fisher–Yates with a small deterministic generator (the proptest seed drives it).
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        items.swap(i, (seed >> 33) as usize % (i + 1));
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// A clone's frame at interval 4 among the honest device's frames 1..=7, heard in
    /// any order (each keeping its receive time, as relayed frames do): always exactly
    /// one divergence, at interval 4, and the same intervals authenticated.
    #[test]
    fn compact_divergence_does_not_depend_on_arrival_order(order in proptest::prelude::any::<u64>()) {
        let mut f = fixture(compact::Config::default());
        anchored(&mut f);
        let mut clone = Device::new(f.id, &[9; 32], schedule(), 1, 4096).expect("clone");
        let mut frames = Vec::new();
        for i in 1..=7u32 {
            let (t, r) = at(i);
            frames.push((r, f.device.attest(t, &[i as u8]).expect("attest").frame().to_vec()));
            let c = clone.attest(t, &[i as u8, 0xc1]).expect("clone");
            if i == 4 {
                frames.push((r + 500, c.frame().to_vec()));
            }
        }
        shuffle(&mut frames, order);
        for (r, frame) in &frames {
            let o = f.verifier.handle_attestation(*r, frame, rx(*r));
            proptest::prop_assert!(matches!(o, Outcome::Compact(_)), "{:?}", o);
        }
        let events = polled(&mut f.verifier);
        let divergences: Vec<u32> = events
            .iter()
            .filter_map(|e| match e {
                CompactEvent::Divergence(c) => Some(c.interval),
                _ => None,
            })
            .collect();
        proptest::prop_assert_eq!(divergences, vec![4]);
        let mut got = authenticated(&events);
        got.sort_unstable();
        proptest::prop_assert_eq!(got, vec![1, 2, 3, 4, 5]);
    }
}

/// The device's suite-1 rotation to epoch 1 (revealing key 43, committing to key 44).
fn rotation(f: &Fixture) -> Vec<u8> {
    let next = SigningKey::from_bytes(&[43; 32]);
    let inception = slope_proto::Event::decode(&f.inception).expect("inception");
    let body = slope_proto::Rotation {
        device: f.id.short(),
        seq: 1,
        prev: inception.digest(&f.id).link(),
        epoch: 1,
        key: next.verifying_key().to_bytes(),
        next_key: slope_proto::crypto::next_key_digest(
            SigningKey::from_bytes(&[44; 32]).verifying_key().as_bytes(),
        ),
    };
    slope_proto::Signed::sign(body, &f.id, &next)
        .expect("rotation")
        .frame()
        .to_vec()
}

#[test]
fn a_device_re_anchors_after_a_rotation_and_never_reuses_an_interval() {
    let mut f = fixture(compact::Config::default());
    anchored(&mut f);
    let mut events = Vec::new();
    for i in 1..=6 {
        let (t, r) = at(i);
        let frame = f.device.attest(t, &[i as u8; 8]).expect("attest");
        f.verifier.handle_attestation(r, frame.frame(), rx(r));
        events.extend(polled(&mut f.verifier));
    }
    assert_eq!(authenticated(&events), (1..=4).collect::<Vec<_>>());
    let next = SigningKey::from_bytes(&[43; 32]);
    let conflict = Outcome::Rejected(VerifyError::Anchor(compact::AnchorError::Conflict));
    // Another chain in the same epoch: a conflict.
    let other = Device::new(f.id, &[10; 32], schedule(), 20, 4096).expect("device");
    let same_epoch = SignedAnchor::sign(other.anchor(0), &f.id, &f.key).expect("anchor");
    let (_, r) = at(7);
    assert_eq!(
        f.verifier.handle_attestation(r, same_epoch.frame(), rx(r)),
        conflict
    );
    // The rotation retires key 42; the device re-anchors under key 43.
    let o = f.verifier.handle_attestation(r, &rotation(&f), rx(r));
    assert!(matches!(o, Outcome::Extended(_)), "{o:?}");
    // A new chain over intervals the device already used is refused.
    let reuse = Device::new(f.id, &[10; 32], schedule(), 5, 4096).expect("device");
    let reuse = SignedAnchor::sign(reuse.anchor(1), &f.id, &next).expect("anchor");
    assert_eq!(
        f.verifier.handle_attestation(r, reuse.frame(), rx(r)),
        conflict
    );
    // Another schedule is refused too.
    let mut moved = schedule();
    moved.interval_ms *= 2;
    let moved = Device::new(f.id, &[10; 32], moved, 20, 4096).expect("device");
    let moved = SignedAnchor::sign(moved.anchor(1), &f.id, &next).expect("anchor");
    assert_eq!(
        f.verifier.handle_attestation(r, moved.frame(), rx(r)),
        conflict
    );
    // The old epoch's anchor is now signed by a retired key.
    assert_eq!(
        f.verifier.handle_attestation(r, &f.anchor, rx(r)),
        Outcome::Rejected(VerifyError::RetiredKey)
    );
    // The later chain is accepted, and its frames authenticate.
    let mut device = Device::new(f.id, &[10; 32], schedule(), 20, 4096).expect("device");
    let anchor = SignedAnchor::sign(device.anchor(1), &f.id, &next).expect("anchor");
    assert_eq!(
        f.verifier.handle_attestation(r, anchor.frame(), rx(r)),
        Outcome::Compact(compact::Outcome::Anchored {
            device: f.id,
            first: 20,
            len: 4096
        })
    );
    let mut events = Vec::new();
    for i in 20..=26 {
        let (t, r) = at(i);
        let frame = device.attest(t, &[i as u8; 8]).expect("attest");
        f.verifier.handle_attestation(r, frame.frame(), rx(r));
        events.extend(polled(&mut f.verifier));
    }
    assert_eq!(authenticated(&events), (20..=24).collect::<Vec<_>>());
    // A frame of the retired chain for an interval of the new one: its disclosure does
    // not hash to the new chain's anchor, so it is refused on arrival.
    let (t, r) = at(27);
    let stale = f.device.attest(t, b"old chain").expect("attest");
    assert_eq!(
        f.verifier.handle_attestation(r, stale.frame(), rx(r)),
        Outcome::Rejected(VerifyError::Compact(Reject::BadDisclosure))
    );
    let frame = device.attest(t, b"new chain").expect("attest");
    f.verifier.handle_attestation(r, frame.frame(), rx(r));
    assert_eq!(authenticated(&polled(&mut f.verifier)), vec![25]);

    // A gateway that learns the device after its rotation takes the new anchor only.
    let mut late = Verifier::with_compact(Config::default(), compact::Config::default());
    late.handle_attestation(r, &f.inception, rx(r));
    let o = late.handle_attestation(r, &rotation(&f), rx(r));
    assert!(matches!(o, Outcome::Extended(_)), "{o:?}");
    assert_eq!(
        late.handle_attestation(r, &f.anchor, rx(r)),
        Outcome::Rejected(VerifyError::RetiredKey)
    );
    assert!(matches!(
        late.handle_attestation(r, anchor.frame(), rx(r)),
        Outcome::Compact(compact::Outcome::Anchored { first: 20, .. })
    ));
}
