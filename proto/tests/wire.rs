//! Wire-format properties: round trips, canonical encoding, bit flips, budgets, and
//! decoding arbitrary bytes without panicking.

use proptest::prelude::*;
use slope_proto::{
    DecodeError, DeviceId, Event, Heard, Interaction, LinkDigest, Message, NeighbourId, Signed,
    crypto, decode, sample,
};

fn device() -> DeviceId {
    sample::inception(1).device_id()
}

fn arb_interaction() -> impl Strategy<Value = Interaction> {
    (
        1u32..=u32::MAX,
        any::<[u8; 16]>(),
        any::<u16>(),
        any::<[u8; 4]>(),
        proptest::collection::vec((any::<[u8; 4]>(), any::<u32>(), any::<i8>()), 0..=4),
        proptest::collection::vec(any::<u8>(), 0..=16),
    )
        .prop_flat_map(|(seq, prev, boot, behaviour, heard, payload)| {
            (0..seq).prop_map(move |epoch| Interaction {
                device: device().short(),
                seq,
                prev: LinkDigest(prev),
                epoch,
                boot,
                behaviour,
                heard: heard
                    .iter()
                    .map(|&(id, seq, rssi_dbm)| Heard {
                        id: NeighbourId(id),
                        seq,
                        rssi_dbm,
                    })
                    .collect(),
                payload: heapless::Vec::from_slice(&payload).unwrap_or_default(),
            })
        })
}

proptest! {
    #[test]
    fn interaction_round_trips_and_reencodes_identically(body in arb_interaction()) {
        let signed = Signed::sign(body.clone(), &device(), &sample::key(1)).unwrap();
        let back = Signed::<Interaction>::decode(signed.frame()).unwrap();
        prop_assert_eq!(back.body(), &body);
        prop_assert_eq!(back.frame(), signed.frame());
        prop_assert!(back.verify(&device(), &sample::key(1).verifying_key()).is_ok());
    }

    #[test]
    fn every_single_bit_flip_is_rejected(body in arb_interaction(), bit in 0usize..(252 * 8)) {
        let signed = Signed::sign(body, &device(), &sample::key(1)).unwrap();
        let mut frame = signed.frame().to_vec();
        let bit = bit % (frame.len() * 8);
        frame[bit / 8] ^= 1 << (bit % 8);
        // Either the flipped frame is not a valid interaction, or its signature fails.
        if let Ok(flipped) = Signed::<Interaction>::decode(&frame) {
            prop_assert!(flipped.verify(&device(), &sample::key(1).verifying_key()).is_err());
        }
    }

    #[test]
    fn decode_never_panics_and_accepted_bytes_reencode(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(Event::Interaction(e)) = Event::decode(&bytes) {
            prop_assert_eq!(e.frame(), &bytes[..]);
        }
        let _ = decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_mutated_valid_frames(
        heard in 0usize..=4,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut frame = sample::interaction(&device(), 1, 77, heard).frame().to_vec();
        for (at, byte) in edits {
            let at = at % frame.len();
            frame[at] = byte;
        }
        frame.truncate(cut % (frame.len() + 1));
        if let Ok(msg) = decode(&frame) {
            let again = match &msg {
                Message::Interaction(e) => e.frame().to_vec(),
                Message::Rotation(e) => e.frame().to_vec(),
                Message::Inception(e) => e.frame().to_vec(),
                Message::Receipt(e) => e.frame().to_vec(),
                Message::Divergence(_) => frame.clone(),
                Message::ReceiptBatch(b) => b.frame().to_vec(),
            };
            prop_assert_eq!(again, frame);
        }
    }
}

#[test]
fn size_budgets_hold() {
    let dev = device();
    assert!(sample::interaction(&dev, 1, 1000, 0).frame().len() <= 115);
    assert!(sample::interaction(&dev, 1, 1000, 3).frame().len() <= 140);
    // Worst case of the 3-neighbour form: every varint at its longest.
    assert!(sample::interaction(&dev, 1, u32::MAX, 3).frame().len() <= 146);
    assert!(sample::rotation(&dev, 2, u32::MAX, u32::MAX).frame().len() <= 222);
    assert!(sample::receipt(&dev, 9, u32::MAX).frame().len() <= 128);
}

#[test]
fn non_minimal_varint_is_non_canonical() {
    let frame = sample::interaction(&device(), 1, 5, 0).frame().to_vec();
    // Body starts after the 3-byte header and the 8-byte short id: seq = 5 is one byte.
    assert_eq!(frame[11], 5);
    let mut long = frame[..11].to_vec();
    long.extend_from_slice(&[0x85, 0x00]);
    long.extend_from_slice(&frame[12..]);
    assert_eq!(
        Signed::<Interaction>::decode(&long).unwrap_err(),
        DecodeError::NonCanonical
    );
}

#[test]
fn trailing_bytes_and_headers_are_typed_errors() {
    let frame = sample::interaction(&device(), 1, 5, 0).frame().to_vec();
    let mut extra = frame.clone();
    extra.insert(frame.len() - 64, 0);
    assert_eq!(
        Signed::<Interaction>::decode(&extra).unwrap_err(),
        DecodeError::TrailingBytes
    );
    let mut v = frame.clone();
    v[0] = 2;
    assert_eq!(decode(&v).unwrap_err(), DecodeError::UnknownVersion(2));
    let mut s = frame.clone();
    s[1] = 9;
    assert_eq!(decode(&s).unwrap_err(), DecodeError::UnknownSuite(9));
    let mut k = frame.clone();
    k[2] = 200;
    assert_eq!(decode(&k).unwrap_err(), DecodeError::UnknownKind(200));
    assert_eq!(decode(&frame[..2]).unwrap_err(), DecodeError::Truncated);
    assert_eq!(decode(&frame[..40]).unwrap_err(), DecodeError::Truncated);
    assert_eq!(
        decode(&frame[..80]).unwrap_err(),
        DecodeError::MalformedBody
    );
    assert!(matches!(
        decode(&[1u8; 400]).unwrap_err(),
        DecodeError::Oversize { .. }
    ));
}

#[test]
fn format_rules_are_enforced_on_both_sides() {
    let mut body = sample::interaction(&device(), 1, 5, 0).body().clone();
    body.epoch = 5;
    assert!(Signed::sign(body, &device(), &sample::key(1)).is_err());
}

#[test]
fn receipts_verify_only_under_their_witness() {
    let r = sample::receipt(&device(), 9, 10);
    assert!(r.verify_witness(&sample::key(9).verifying_key()).is_ok());
    assert!(r.verify_witness(&sample::key(8).verifying_key()).is_err());
    assert_eq!(
        r.body().witness,
        crypto::witness_id(sample::key(9).verifying_key().as_bytes())
    );
}

#[test]
fn inception_is_self_certifying() {
    let inc = sample::inception(1);
    let back = Signed::<slope_proto::Inception>::decode(inc.frame()).unwrap();
    assert_eq!(back.device_id(), inc.device_id());
    assert!(
        back.verify(&back.device_id(), &sample::key(1).verifying_key())
            .is_ok()
    );
    assert_ne!(sample::inception(2).device_id(), inc.device_id());
}
