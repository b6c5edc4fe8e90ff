//! Divergence proofs verify with no other state, and only when they prove something.

use slope_proto::proof::ProofError;
use slope_proto::{DivergenceProof, Message, decode, sample};

fn encode(inception: &[u8], rotations: &[&[u8]], a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 65_536];
    let n = DivergenceProof::encode(inception, rotations, a, b, &mut out).unwrap();
    out.truncate(n);
    out
}

#[test]
fn two_interactions_at_one_position_prove_divergence() {
    let inc = sample::inception(1);
    let dev = inc.device_id();
    let a = sample::interaction(&dev, 1, 7, 0);
    let b = sample::interaction(&dev, 1, 7, 2);
    let bytes = encode(inc.frame(), &[], a.frame(), b.frame());
    let proof = DivergenceProof::decode(&bytes).unwrap();
    let d = proof.verify().unwrap();
    assert_eq!(d.device, dev);
    assert_eq!(d.seq, 7);
    // Order of detection does not change the proof bytes.
    assert_eq!(bytes, encode(inc.frame(), &[], b.frame(), a.frame()));
    assert!(matches!(decode(&bytes).unwrap(), Message::Divergence(_)));
}

#[test]
fn identical_events_are_no_divergence() {
    let inc = sample::inception(1);
    let a = sample::interaction(&inc.device_id(), 1, 7, 0);
    let bytes = encode(inc.frame(), &[], a.frame(), a.frame());
    // Equal frames are not in strict canonical order: refused at decode.
    assert!(DivergenceProof::decode(&bytes).is_err());
}

#[test]
fn forged_second_event_is_no_proof() {
    let inc = sample::inception(1);
    let dev = inc.device_id();
    let a = sample::interaction(&dev, 1, 7, 0);
    let forged = sample::interaction(&dev, 99, 7, 1); // signed by a key the device never had
    let bytes = encode(inc.frame(), &[], a.frame(), forged.frame());
    let err = DivergenceProof::decode(&bytes)
        .unwrap()
        .verify()
        .unwrap_err();
    assert!(matches!(err, ProofError::Signature(_)), "{err:?}");
}

#[test]
fn events_at_different_positions_do_not_conflict() {
    let inc = sample::inception(1);
    let dev = inc.device_id();
    let mut b1 = sample::interaction(&dev, 1, 7, 0).body().clone();
    b1.prev = slope_proto::LinkDigest([1; 16]);
    let mut b2 = b1.clone();
    b2.seq = 8;
    b2.prev = slope_proto::LinkDigest([2; 16]);
    let a = slope_proto::Signed::sign(b1, &dev, &sample::key(1)).unwrap();
    let b = slope_proto::Signed::sign(b2, &dev, &sample::key(1)).unwrap();
    let bytes = encode(inc.frame(), &[], a.frame(), b.frame());
    assert_eq!(
        DivergenceProof::decode(&bytes)
            .unwrap()
            .verify()
            .unwrap_err(),
        ProofError::NoConflict
    );
}

#[test]
fn proofs_walk_the_key_history() {
    // inception(1) commits to key(2); rotation to epoch 1 reveals key(2), commits key(3).
    let inc = sample::inception(1);
    let dev = inc.device_id();
    let rot = sample::rotation(&dev, 2, 5, 1);
    let mut b1 = sample::interaction(&dev, 2, 9, 0).body().clone();
    b1.epoch = 1;
    let mut b2 = b1.clone();
    b2.payload[0] ^= 1;
    let a = slope_proto::Signed::sign(b1, &dev, &sample::key(2)).unwrap();
    let b = slope_proto::Signed::sign(b2, &dev, &sample::key(2)).unwrap();
    let with = encode(inc.frame(), &[rot.frame()], a.frame(), b.frame());
    assert!(DivergenceProof::decode(&with).unwrap().verify().is_ok());
    let without = encode(inc.frame(), &[], a.frame(), b.frame());
    assert_eq!(
        DivergenceProof::decode(&without)
            .unwrap()
            .verify()
            .unwrap_err(),
        ProofError::MissingEpoch(1)
    );
    // A rotation that reveals an uncommitted key breaks the chain.
    let bad_rot = sample::rotation(&dev, 5, 5, 1);
    let broken = encode(inc.frame(), &[bad_rot.frame()], a.frame(), b.frame());
    assert_eq!(
        DivergenceProof::decode(&broken)
            .unwrap()
            .verify()
            .unwrap_err(),
        ProofError::BrokenKeyChain
    );
}

#[test]
fn conflicting_rotations_are_a_divergence() {
    let inc = sample::inception(1);
    let dev = inc.device_id();
    let r1 = sample::rotation(&dev, 2, 5, 1);
    let mut body = r1.body().clone();
    body.next_key = slope_proto::Digest([7; 32]);
    let r2 = slope_proto::Signed::sign(body, &dev, &sample::key(2)).unwrap();
    let bytes = encode(inc.frame(), &[], r1.frame(), r2.frame());
    assert!(DivergenceProof::decode(&bytes).unwrap().verify().is_ok());
}

#[test]
fn truncated_proofs_are_typed_errors() {
    let inc = sample::inception(1);
    let dev = inc.device_id();
    let bytes = encode(
        inc.frame(),
        &[],
        sample::interaction(&dev, 1, 7, 0).frame(),
        sample::interaction(&dev, 1, 7, 1).frame(),
    );
    for cut in 0..bytes.len() {
        assert!(DivergenceProof::decode(&bytes[..cut]).is_err());
    }
}

/// One conflict, one proof of bounded size: a rotation list that goes on past the
/// epochs the two events need — the next real rotation, or padding (each zero byte
/// reads as an empty "rotation frame") — is refused, so nobody can gossip the same
/// conflict under endless byte strings of up to `MAX_PROOF`.
#[test]
fn surplus_rotations_and_padding_are_refused() {
    let inc = sample::inception(1);
    let dev = inc.device_id();
    let a = sample::interaction(&dev, 1, 7, 0);
    let b = sample::interaction(&dev, 1, 7, 1);
    let bare = encode(inc.frame(), &[], a.frame(), b.frame());
    assert!(DivergenceProof::decode(&bare).unwrap().verify().is_ok());
    assert_eq!(
        slope_proto::proof::epochs_needed(
            &slope_proto::Event::decode(a.frame()).unwrap(),
            &slope_proto::Event::decode(b.frame()).unwrap()
        ),
        0
    );
    // An epoch-0 conflict with the device's real rotation to epoch 1 appended.
    let rot = sample::rotation(&dev, 2, 5, 1);
    let surplus = encode(inc.frame(), &[rot.frame()], a.frame(), b.frame());
    for pad in [&[][..], &[&[][..]; 1][..], &[&[][..]; 1000][..]] {
        let padded = encode(inc.frame(), pad, a.frame(), b.frame());
        let expect = if pad.is_empty() {
            Ok(())
        } else {
            Err(ProofError::SurplusRotation)
        };
        assert_eq!(
            DivergenceProof::decode(&padded)
                .unwrap()
                .verify()
                .map(|_| ()),
            expect
        );
    }
    assert_eq!(
        DivergenceProof::decode(&surplus)
            .unwrap()
            .verify()
            .unwrap_err(),
        ProofError::SurplusRotation
    );
    // Two rotations to epoch 1 need the inception's commitment alone: the accepted
    // rotation is not part of their proof.
    let mut body = rot.body().clone();
    body.next_key = slope_proto::Digest([7; 32]);
    let r2 = slope_proto::Signed::sign(body, &dev, &sample::key(2)).unwrap();
    let with_accepted = encode(inc.frame(), &[rot.frame()], rot.frame(), r2.frame());
    assert_eq!(
        DivergenceProof::decode(&with_accepted)
            .unwrap()
            .verify()
            .unwrap_err(),
        ProofError::SurplusRotation
    );
}

/// `MAX_EPOCHS` is the most rotations a proof can carry: with every part at its longest
/// (inception and both events of `MAX_FRAME` bytes, rotations of `MAX_ROTATION_FRAME`),
/// `MAX_EPOCHS` rotations fit `MAX_PROOF` and one more does not.
#[test]
fn max_epochs_is_what_a_proof_holds_at_the_longest() {
    use slope_proto::limits::{MAX_EPOCHS, MAX_FRAME, MAX_PROOF, MAX_ROTATION_FRAME};
    let dev = sample::inception(1).device_id();
    // The longest rotation: seq and epoch varints at 5 bytes.
    let longest = sample::rotation(&dev, 2, u32::MAX, u32::MAX);
    assert_eq!(longest.frame().len(), MAX_ROTATION_FRAME);
    let frame = [0x5a; MAX_FRAME];
    let rotation = [0xa5; MAX_ROTATION_FRAME];
    let mut out = vec![0u8; 2 * MAX_PROOF];
    let fits = |n: u32, out: &mut [u8]| {
        let rotations = vec![&rotation[..]; n as usize];
        DivergenceProof::encode(&frame, &rotations, &frame, &frame, out)
    };
    let n = fits(MAX_EPOCHS, &mut out).unwrap();
    assert!(n <= MAX_PROOF);
    assert!(fits(MAX_EPOCHS + 1, &mut out).is_err());
}

/// A real key history of `MAX_EPOCHS` rotations (positions past 2^28, so seq varints
/// are at their longest) proves a conflict signed in the last epoch.
#[test]
fn a_proof_at_the_last_epoch_verifies() {
    use slope_proto::limits::{MAX_EPOCHS, MAX_PROOF};
    let inc = sample::inception(1);
    let dev = inc.device_id();
    let base = 1u32 << 28;
    // Rotation to epoch e reveals key(1 + e) and commits to key(2 + e) (u8 seeds wrap,
    // consistently on both sides).
    let seed = |e: u32| (1 + e) as u8;
    let rotations: Vec<_> = (1..=MAX_EPOCHS)
        .map(|e| sample::rotation(&dev, seed(e), base + e, e))
        .collect();
    let frames: Vec<&[u8]> = rotations.iter().map(|r| r.frame()).collect();
    let mut b1 = sample::interaction(&dev, 2, base + MAX_EPOCHS + 1, 0)
        .body()
        .clone();
    b1.epoch = MAX_EPOCHS;
    let mut b2 = b1.clone();
    b2.payload[0] ^= 1;
    let key = sample::key(seed(MAX_EPOCHS));
    let a = slope_proto::Signed::sign(b1, &dev, &key).unwrap();
    let b = slope_proto::Signed::sign(b2, &dev, &key).unwrap();
    let proof = encode(inc.frame(), &frames, a.frame(), b.frame());
    assert!(proof.len() <= MAX_PROOF);
    let verified = DivergenceProof::decode(&proof).unwrap().verify();
    assert!(verified.is_ok(), "{verified:?}");
}
