//! Suite 2 end to end: device → verifier round trips, bit flips, lost frames, the
//! security condition, renewal, divergence proofs, and decode robustness.

mod compact_support;

use compact_support::{Identity, SKEW, START, T, at, identity, schedule};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use slope_node::compact::device::Device;
use slope_node::compact::verifier::{Config, Conflict, Event, Outcome, Reject, Verifier};
use slope_node::compact::verify_proof;
use slope_proto::DeviceId;
use slope_proto::compact::proof::Parts;
use slope_proto::compact::{self as c2, CompactProof, ProofError, Receipt, SignedAnchor};

struct Setup {
    id: DeviceId,
    inception: Vec<u8>,
    anchor: Vec<u8>,
    device: Device,
    verifier: Verifier,
}

fn setup(len: u32) -> Setup {
    let Identity { key, id, inception } = identity();
    let device = Device::new(id, &[9; 32], schedule(), 1, len).expect("device");
    let anchor = SignedAnchor::sign(device.anchor(0), &id, &key).expect("anchor");
    let mut verifier = Verifier::new(Config::default());
    verifier
        .add_anchor(id, &key.verifying_key(), anchor.frame())
        .expect("anchor verifies");
    Setup {
        id,
        inception,
        anchor: anchor.frame().to_vec(),
        device,
        verifier,
    }
}

fn events(v: &mut Verifier) -> Vec<Event> {
    std::iter::from_fn(|| v.poll_event()).collect()
}

/// A clone (the same state, `len` intervals) sends a different frame in interval 4; both
/// are heard in time, the device's frame of interval 6 discloses K(4): the verifier's
/// divergence.
fn clone_conflict(len: u32) -> (Setup, Conflict) {
    let mut s = setup(len);
    let mut clone = setup(len).device;
    let (t4, rx4) = at(4);
    let a = s.device.attest(t4, b"honest").expect("attest");
    let b = clone.attest(t4, b"clone").expect("attest");
    s.verifier.handle_frame(rx4, a.frame()).expect("a");
    s.verifier.handle_frame(rx4 + 500, b.frame()).expect("b");
    let (t6, rx6) = at(6);
    s.verifier
        .handle_frame(rx6, s.device.attest(t6, b"").expect("attest").frame())
        .expect("discloser");
    let ev = events(&mut s.verifier);
    let Some(Event::Divergence(conflict)) = ev
        .iter()
        .find(|e| matches!(e, Event::Divergence(_)))
        .cloned()
    else {
        panic!("no divergence in {ev:?}");
    };
    (s, *conflict)
}

fn authenticated(ev: &[Event]) -> Vec<u32> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Authenticated(a) => Some(a.interval()),
            _ => None,
        })
        .collect()
}

#[test]
fn budget_compact_attestation_with_8_byte_payload_fits_51_bytes() {
    let mut s = setup(1 << 16);
    let f = s.device.attest(at(65_000).0, &[0xab; 8]).expect("attest");
    assert!(f.frame().len() <= 51, "{} bytes", f.frame().len());
    assert_eq!(f.frame().len(), 47);
    assert!(s.anchor.len() <= 115, "anchor {} bytes", s.anchor.len());
}

#[test]
fn round_trip_every_interval_and_lost_frames_bridged() {
    let mut s = setup(500);
    let mut sent = Vec::new();
    // Intervals 1..=40, every third frame lost on air.
    for i in 1..=40u32 {
        let (t, rx) = at(i);
        let f = s.device.attest(t, &i.to_le_bytes()).expect("attest");
        assert_eq!(c2::decode(f.frame()).map(|_| ()), Ok(()));
        if i % 3 == 0 {
            continue;
        }
        sent.push(i);
        s.verifier.handle_frame(rx, f.frame()).expect("accepted");
    }
    let ok = authenticated(&events(&mut s.verifier));
    // Everything received up to the last disclosed interval (40 − 2) verified.
    let expected: Vec<u32> = sent.iter().copied().filter(|i| *i <= 38).collect();
    assert_eq!(ok, expected);
}

#[test]
fn sparse_device_bridges_many_intervals() {
    let mut s = setup(5000);
    let mut got = Vec::new();
    for i in (1..=4000u32).step_by(97) {
        let (t, rx) = at(i);
        let f = s.device.attest(t, b"x").expect("attest");
        s.verifier.handle_frame(rx, f.frame()).expect("accepted");
        got.extend(authenticated(&events(&mut s.verifier)));
    }
    let all: Vec<u32> = (1..=4000u32).step_by(97).collect();
    assert_eq!(got, all[..all.len() - 1].to_vec());
}

#[test]
fn security_condition_refuses_late_and_future_frames() {
    let mut s = setup(100);
    let (t, _) = at(5);
    let f = s.device.attest(t, b"a").expect("attest");
    // Deadline: start(5 + 2) − skew.
    let deadline = START + 6 * T - SKEW;
    assert_eq!(
        s.verifier.handle_frame(deadline, f.frame()),
        Err(Reject::Late { interval: 5 })
    );
    assert!(s.verifier.handle_frame(deadline - 1, f.frame()).is_ok());
    let (t, _) = at(9);
    let g = s.device.attest(t, b"b").expect("attest");
    assert_eq!(
        s.verifier.handle_frame(START + 8 * T - SKEW - 1, g.frame()),
        Err(Reject::Future { interval: 9 })
    );
    assert_eq!(
        s.device.attest(t, b"c").err(),
        Some(slope_node::compact::device::Error::IntervalUsed(9))
    );
}

#[test]
fn forged_frame_after_disclosure_is_late() {
    // An attacker who saw K(5) disclosed in interval 7 can MAC a new frame for
    // interval 5, but cannot get it received in time.
    let mut s = setup(100);
    for i in [5u32, 7] {
        let (t, rx) = at(i);
        let f = s.device.attest(t, b"a").expect("attest");
        s.verifier.handle_frame(rx, f.frame()).expect("ok");
    }
    let forged = {
        let mut bytes = s
            .device
            .attest(at(8).0, b"b")
            .expect("attest")
            .frame()
            .to_vec();
        bytes[11] = 5; // interval varint position (3 + 8): claims interval 5
        bytes
    };
    assert!(matches!(
        s.verifier.handle_frame(at(7).1, &forged),
        Err(Reject::Late { .. }) | Err(Reject::Decode(_))
    ));
}

#[test]
fn every_single_bit_flip_is_rejected_once_the_key_is_disclosed() {
    let mut base = setup(100);
    let (t, _) = at(3);
    let f = base
        .device
        .attest(t, &[1, 2, 3, 4, 5, 6, 7, 8])
        .expect("attest");
    let (t5, rx5) = at(5);
    let discloser = base.device.attest(t5, b"").expect("attest");
    let frame = f.frame().to_vec();
    for bit in 0..frame.len() * 8 {
        let mut s = setup(100);
        let mut flipped = frame.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let _ = s.verifier.handle_frame(at(3).1, &flipped);
        s.verifier
            .handle_frame(rx5, discloser.frame())
            .expect("discloser");
        let ev = events(&mut s.verifier);
        assert!(authenticated(&ev).is_empty(), "bit {bit} accepted: {ev:?}");
    }
    // And the unflipped frame verifies.
    let mut s = setup(100);
    s.verifier.handle_frame(at(3).1, &frame).expect("ok");
    s.verifier.handle_frame(rx5, discloser.frame()).expect("ok");
    assert_eq!(authenticated(&events(&mut s.verifier)), vec![3]);
}

#[test]
fn bad_disclosure_is_rejected() {
    let mut s = setup(100);
    let (t, rx) = at(6);
    let f = s.device.attest(t, b"").expect("attest");
    let mut bytes = f.frame().to_vec();
    bytes[14] ^= 1; // first byte of the disclosed key
    assert_eq!(
        s.verifier.handle_frame(rx, &bytes),
        Err(Reject::BadDisclosure)
    );
    assert!(matches!(
        s.verifier.handle_frame(rx, f.frame()),
        Ok(Outcome::Buffered { .. })
    ));
    assert!(matches!(
        s.verifier.handle_frame(rx, f.frame()),
        Ok(Outcome::Duplicate { .. })
    ));
}

#[test]
fn renewal_is_authenticated_by_the_old_chain() {
    let mut s = setup(20);
    s.device.prepare_renewal(&[10; 32], 30).expect("prepare");
    let mut got = Vec::new();
    let mut renewed = None;
    for i in 1..=45u32 {
        let (t, rx) = at(i);
        let f = if i == 12 || i == 15 {
            s.device.renew(t).expect("renew").frame().to_vec()
        } else {
            s.device.attest(t, b"p").expect("attest").frame().to_vec()
        };
        s.verifier.handle_frame(rx, &f).expect("accepted");
        for e in events(&mut s.verifier) {
            match e {
                Event::Authenticated(a) => got.push(a.interval()),
                Event::Renewed { first, len, .. } => renewed = Some((first, len)),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(renewed, Some((21, 30)));
    let expected: Vec<u32> = (1..=43).filter(|i| *i != 12 && *i != 15).collect();
    assert_eq!(got, expected);
    // Without a renewal the device refuses past its chain.
    let mut t = setup(3);
    for i in 1..=3 {
        t.device.attest(at(i).0, b"").expect("attest");
    }
    assert!(t.device.attest(at(4).0, b"").is_err());
}

/// A clone with the same state sends a different frame in interval 4; both are heard
/// in time by (different) gateways; the verifier reports a divergence, and the proof
/// built from the gateways' receipts verifies statelessly.
#[test]
fn divergence_proof_verifies_and_forgeries_do_not() {
    let (s, conflict) = clone_conflict(100);
    let gw1 = SigningKey::from_bytes(&[1; 32]);
    let gw2 = SigningKey::from_bytes(&[2; 32]);
    let Conflict {
        key,
        first,
        second,
        interval,
        ..
    } = conflict;
    assert_eq!(interval, 4);
    let r1 =
        Receipt::sign(&gw1, c2::crypto::frame_digest(first.frame()), first.rx_ms()).expect("r1");
    let r2 = Receipt::sign(
        &gw2,
        c2::crypto::frame_digest(second.frame()),
        second.rx_ms(),
    )
    .expect("r2");
    let mut out = vec![0u8; 4096];
    let parts = Parts {
        inception: &s.inception,
        rotations: &[],
        anchor: &s.anchor,
        renewals: &[],
        key: &key,
        a: (first.frame(), &[r1.frame()]),
        b: (second.frame(), &[r2.frame()]),
    };
    let n = CompactProof::encode(&parts, &mut out).expect("encode");
    let proof = &out[..n];
    let d = verify_proof(proof, SKEW).expect("proof verifies");
    assert_eq!(d.device, s.id);
    assert_eq!(d.interval, 4);
    assert!(matches!(c2::decode(proof), Ok(c2::Message::Divergence(_))));

    // Forgery 1: a frame made after disclosure, with a receipt dated after the deadline.
    let late = Receipt::sign(
        &gw2,
        c2::crypto::frame_digest(second.frame()),
        START + 6 * T,
    )
    .expect("late");
    let n = CompactProof::encode(
        &Parts {
            b: (second.frame(), &[late.frame()]),
            ..parts
        },
        &mut out,
    )
    .expect("encode");
    assert!(matches!(
        verify_proof(&out[..n], SKEW),
        Err(ProofError::Late { .. })
    ));
    // Forgery 2: the same frame twice.
    let n = CompactProof::encode(
        &Parts {
            b: (first.frame(), &[r1.frame()]),
            ..parts
        },
        &mut out,
    )
    .expect("encode");
    assert!(verify_proof(&out[..n], SKEW).is_err());
    // Forgery 3: a wrong key.
    let wrong = c2::ChainKey([7; 16]);
    let n = CompactProof::encode(
        &Parts {
            key: &wrong,
            ..parts
        },
        &mut out,
    )
    .expect("encode");
    assert_eq!(verify_proof(&out[..n], SKEW), Err(ProofError::BadKey));
    // Forgery 4: a receipt for another frame.
    let n = CompactProof::encode(
        &Parts {
            b: (second.frame(), &[r1.frame()]),
            ..parts
        },
        &mut out,
    )
    .expect("encode");
    assert!(verify_proof(&out[..n], SKEW).is_err());
    // Any single bit flip of the valid proof is refused.
    let n = CompactProof::encode(&parts, &mut out).expect("encode");
    let good = out[..n].to_vec();
    for bit in 0..good.len() * 8 {
        let mut f = good.clone();
        f[bit / 8] ^= 1 << (bit % 8);
        assert!(verify_proof(&f, SKEW).is_err(), "bit {bit}");
    }
}

/// Several receipts date each frame: encoding keeps one per witness in ascending order,
/// every one must be in time, at most `MAX_DATING`, and a proof whose receipts are out
/// of order (or repeat a witness) is not canonical.
#[test]
fn a_proof_frame_carries_several_receipts_of_distinct_witnesses() {
    let (s, c) = clone_conflict(101);
    let gws: Vec<SigningKey> = (1..=6u8)
        .map(|i| SigningKey::from_bytes(&[i; 32]))
        .collect();
    let stamp = |k: &SigningKey, frame: &[u8], rx: u64| {
        Receipt::sign(k, c2::crypto::frame_digest(frame), rx)
            .expect("receipt")
            .frame()
            .to_vec()
    };
    let (fa, fb) = (c.first.frame(), c.second.frame());
    let ra: Vec<Vec<u8>> = [2, 0, 2, 1]
        .iter()
        .map(|&g| stamp(&gws[g], fa, c.first.rx_ms()))
        .collect();
    let rb = [stamp(&gws[3], fb, c.second.rx_ms())];
    let ra_refs: Vec<&[u8]> = ra.iter().map(Vec::as_slice).collect();
    let rb_refs: Vec<&[u8]> = rb.iter().map(Vec::as_slice).collect();
    let parts = Parts {
        inception: &s.inception,
        rotations: &[],
        anchor: &s.anchor,
        renewals: &[],
        key: &c.key,
        a: (fa, &ra_refs),
        b: (fb, &rb_refs),
    };
    let mut out = vec![0u8; 4096];
    let n = CompactProof::encode(&parts, &mut out).expect("encode");
    let good = out[..n].to_vec();
    let d = verify_proof(&good, SKEW).expect("verifies");
    let key = |g: usize| gws[g].verifying_key().to_bytes();
    let mut want = [key(0), key(1), key(2)];
    want.sort();
    // The frames are in canonical order: find which dating is whose.
    let (da, db) = if fa < fb {
        (d.dating[0], d.dating[1])
    } else {
        (d.dating[1], d.dating[0])
    };
    assert_eq!(da.witnesses(), &want[..], "one per witness, ascending");
    assert_eq!(db.witnesses(), &[key(3)][..]);

    // A policy that wants two witnesses per frame refuses it (the second frame has one).
    let p = CompactProof::decode(&good).expect("decodes");
    assert_eq!(
        p.verify_with(SKEW, |d| d.witnesses().len() >= 2),
        Err(ProofError::Undated { interval: 4 })
    );

    // Every receipt must be in time: one late receipt among good ones spoils the proof.
    let late = stamp(&gws[4], fb, START + 6 * T);
    let rb_late: Vec<&[u8]> = vec![&rb[0], &late];
    let n = CompactProof::encode(
        &Parts {
            b: (fb, &rb_late),
            ..parts
        },
        &mut out,
    )
    .expect("encode");
    assert!(matches!(
        verify_proof(&out[..n], SKEW),
        Err(ProofError::Late { .. })
    ));

    // Five distinct witnesses do not fit; none does not either.
    let five: Vec<Vec<u8>> = (0..5)
        .map(|g| stamp(&gws[g], fa, c.first.rx_ms()))
        .collect();
    let five: Vec<&[u8]> = five.iter().map(Vec::as_slice).collect();
    for receipts in [&five[..], &[][..]] {
        assert!(
            CompactProof::encode(
                &Parts {
                    a: (fa, receipts),
                    ..parts
                },
                &mut out,
            )
            .is_err()
        );
    }

    // Swap two receipts of the first frame in the encoded proof (same length: same
    // rx_ms): the order is no longer canonical and the proof is refused.
    let (x, y) = (&ra[0], &ra[1]); // witnesses 2 and 0 (both kept; now sorted apart)
    let px = good.windows(x.len()).position(|w| w == &x[..]).expect("x");
    let py = good.windows(y.len()).position(|w| w == &y[..]).expect("y");
    let mut swapped = good.clone();
    swapped[px..px + x.len()].copy_from_slice(y);
    swapped[py..py + y.len()].copy_from_slice(x);
    assert_eq!(
        verify_proof(&swapped, SKEW),
        Err(ProofError::Decode(slope_proto::DecodeError::NonCanonical))
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = c2::decode(&bytes);
        let _ = verify_proof(&bytes, SKEW);
    }

    #[test]
    fn decode_never_panics_on_suite2_headers(kind in 0u8..6, body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = vec![1, 2, kind];
        bytes.extend(body);
        if let Ok(m) = c2::decode(&bytes) {
            let again: &[u8] = match &m {
                c2::Message::Anchor(a) => a.frame(),
                c2::Message::Attestation(a) => a.frame(),
                c2::Message::Renewal(r) => r.frame(),
                c2::Message::Receipt(r) => r.frame(),
                _ => &bytes,
            };
            prop_assert_eq!(again, &bytes[..]);
        }
        let mut v = setup(50).verifier;
        let _ = v.handle_frame(START + 3 * T, &bytes);
    }

    #[test]
    fn attestation_round_trips(i in 1u32..60, payload in proptest::collection::vec(any::<u8>(), 0..=16)) {
        let mut s = setup(100);
        let f = s.device.attest(at(i).0, &payload).expect("attest");
        let m = c2::decode(f.frame()).expect("decodes");
        let c2::Message::Attestation(d) = m else { panic!("kind") };
        prop_assert_eq!(d.frame(), f.frame());
        prop_assert_eq!(d.body().interval, i);
        prop_assert_eq!(&d.body().payload[..], &payload[..]);
    }
}

#[test]
fn suite_one_decoder_still_refuses_suite_two() {
    let mut s = setup(10);
    let f = s.device.attest(at(1).0, b"").expect("attest");
    assert_eq!(
        slope_proto::decode(f.frame()),
        Err(slope_proto::DecodeError::UnknownSuite(2))
    );
}
