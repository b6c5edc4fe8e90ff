//! Batched witness receipts: round trips, canonical form, bounds, and that one
//! signature covers every entry.

use proptest::prelude::*;
use slope_proto::batch::Entry;
use slope_proto::limits::{MAX_BATCH_ENTRIES, MAX_BATCH_ENTRY, MAX_RECEIPT_BATCH};
use slope_proto::{
    DecodeError, DeviceId, EncodeError, LinkDigest, Message, Observation, ReceiptBatch, ShortId,
    SignatureError, codec, crypto, decode, sample,
};

fn device() -> DeviceId {
    sample::inception(1).device_id()
}

fn batch(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; MAX_RECEIPT_BATCH];
    let len = sample::receipt_batch(&device(), 9, n, &mut out);
    out.truncate(len);
    out
}

/// A frame with a hand-made body (`head` then `entries` as given, no checks), signed
/// by `key(9)` so that only the form can be wrong.
fn raw(count: &[u8], entries: &[Entry]) -> Vec<u8> {
    let key = sample::key(9);
    let mut frame = vec![1, 1, 5];
    let mut buf = [0u8; 64];
    let witness = crypto::witness_id(key.verifying_key().as_bytes());
    let n = codec::encode_into(&(witness, 7u64), &mut buf).unwrap();
    frame.extend_from_slice(&buf[..n]);
    frame.extend_from_slice(count);
    for e in entries {
        let n = codec::encode_into(e, &mut buf).unwrap();
        frame.extend_from_slice(&buf[..n]);
    }
    let sig = crypto::sign(&key, &crypto::receipt_batch_message(&frame));
    frame.extend_from_slice(&sig);
    frame
}

fn entries(n: usize) -> Vec<Entry> {
    sample::batch_entries(&device(), 1, n).collect()
}

#[test]
fn round_trips_at_every_size_class() {
    for n in [1, 2, 127, 128, 255, MAX_BATCH_ENTRIES] {
        let frame = batch(n);
        let b = ReceiptBatch::decode(&frame).unwrap();
        assert_eq!(b.len(), n);
        assert_eq!(b.entries().collect::<Vec<_>>(), entries(n));
        assert_eq!(b.entry(n - 1), entries(n).last().copied());
        assert_eq!(b.entry(n), None);
        assert_eq!(b.frame(), &frame[..]);
        assert!(b.verify_witness(&sample::key(9).verifying_key()).is_ok());
        let witness = crypto::witness_id(sample::key(9).verifying_key().as_bytes());
        assert_eq!(b.witness(), witness);
        for (r, e) in b.receipts().zip(entries(n)) {
            assert_eq!(r.witness, witness);
            assert_eq!(Entry::from(&r), e);
        }
        assert_eq!(decode(&frame), Ok(Message::ReceiptBatch(b)));
    }
}

#[test]
fn hand_encoding_matches_the_builder() {
    let key = sample::key(9);
    let mut out = vec![0u8; MAX_RECEIPT_BATCH];
    for n in [1usize, 127, 128, 256] {
        let len = ReceiptBatch::sign_into(&key, 7, entries(n), &mut out).unwrap();
        let mut varint = [0u8; 4];
        let c = codec::encode_into(&(n as u32), &mut varint).unwrap();
        assert_eq!(&out[..len], &raw(&varint[..c], &entries(n))[..], "n = {n}");
    }
}

#[test]
fn worst_case_entry_and_batch_fit_their_bounds() {
    let worst = Entry {
        device: ShortId([0xff; 8]),
        seq: u32::MAX,
        event: LinkDigest([0xff; 16]),
        observed: Observation {
            rssi_dbm: i16::MIN,
            snr_qdb: i16::MIN,
            freq_hz: u32::MAX,
            foff_hz: Some(i32::MIN),
            sf: 12,
            time_ms: u64::MAX,
        },
    };
    assert_eq!(
        codec::encode_into(&worst, &mut [0u8; 64]).unwrap(),
        MAX_BATCH_ENTRY
    );
    let all = (0..MAX_BATCH_ENTRIES).map(|i| Entry {
        device: ShortId([i as u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        ..worst
    });
    let mut out = vec![0u8; MAX_RECEIPT_BATCH];
    let len = ReceiptBatch::sign_into(&sample::key(9), u64::MAX, all, &mut out).unwrap();
    assert!(len <= MAX_RECEIPT_BATCH);
    assert_eq!(
        ReceiptBatch::decode(&out[..len]).unwrap().len(),
        MAX_BATCH_ENTRIES
    );
}

#[test]
fn builder_refuses_what_decode_refuses() {
    let key = sample::key(9);
    let mut out = vec![0u8; MAX_RECEIPT_BATCH];
    let too_many = sample::batch_entries(&device(), 1, MAX_BATCH_ENTRIES + 5);
    assert_eq!(
        ReceiptBatch::sign_into(&key, 0, too_many, &mut out),
        Err(EncodeError::TooManyEntries {
            count: MAX_BATCH_ENTRIES + 5,
            max: MAX_BATCH_ENTRIES
        })
    );
    assert!(matches!(
        ReceiptBatch::sign_into(&key, 0, [], &mut out),
        Err(EncodeError::InvalidField(_))
    ));
    let mut backwards = entries(3);
    backwards.reverse();
    assert!(matches!(
        ReceiptBatch::sign_into(&key, 0, backwards, &mut out),
        Err(EncodeError::InvalidField(_))
    ));
    let twice = [entries(1)[0], entries(1)[0]];
    assert!(matches!(
        ReceiptBatch::sign_into(&key, 0, twice, &mut out),
        Err(EncodeError::InvalidField(_))
    ));
    let mut bad_sf = entries(1);
    bad_sf[0].observed.sf = 13;
    assert!(matches!(
        ReceiptBatch::sign_into(&key, 0, bad_sf, &mut out),
        Err(EncodeError::InvalidField(_))
    ));
    let full = batch(10).len();
    for short in [0, 2, 20, full - 1] {
        assert_eq!(
            ReceiptBatch::sign_into(&key, 1_795_000_600_000, entries(10), &mut out[..short]),
            Err(EncodeError::TooLarge),
            "buffer of {short}"
        );
    }
}

#[test]
fn decode_refuses_non_canonical_and_out_of_bound_forms() {
    let e = entries(3);
    // Count 3 as a non-minimal varint.
    assert_eq!(
        ReceiptBatch::decode(&raw(&[0x83, 0x00], &e)),
        Err(DecodeError::NonCanonical)
    );
    // Entries out of order, and a duplicate.
    let swapped = [e[1], e[0], e[2]];
    assert!(matches!(
        ReceiptBatch::decode(&raw(&[3], &swapped)),
        Err(DecodeError::InvalidField(_))
    ));
    assert!(matches!(
        ReceiptBatch::decode(&raw(&[2], &[e[0], e[0]])),
        Err(DecodeError::InvalidField(_))
    ));
    // No entries.
    assert!(matches!(
        ReceiptBatch::decode(&raw(&[0], &[])),
        Err(DecodeError::InvalidField(_))
    ));
    // A count above the bound is refused before any entry is read.
    assert_eq!(
        ReceiptBatch::decode(&raw(&[0x81, 0x02], &e)),
        Err(DecodeError::TooManyEntries {
            count: 257,
            max: MAX_BATCH_ENTRIES
        })
    );
    // Fewer entries than counted, more than counted.
    assert_eq!(
        ReceiptBatch::decode(&raw(&[4], &e)),
        Err(DecodeError::MalformedBody)
    );
    assert_eq!(
        ReceiptBatch::decode(&raw(&[2], &e)),
        Err(DecodeError::TrailingBytes)
    );
    // A spreading factor the format does not have.
    let mut bad = e.clone();
    bad[0].observed.sf = 4;
    assert!(matches!(
        ReceiptBatch::decode(&raw(&[3], &bad)),
        Err(DecodeError::InvalidField(_))
    ));
    // Too long, too short, wrong kind.
    let mut long = batch(1);
    long.resize(MAX_RECEIPT_BATCH + 1, 0);
    assert!(matches!(
        ReceiptBatch::decode(&long),
        Err(DecodeError::Oversize { .. })
    ));
    assert_eq!(
        ReceiptBatch::decode(&[1, 1, 5]),
        Err(DecodeError::Truncated)
    );
    let receipt = sample::receipt(&device(), 9, 3);
    assert!(matches!(
        ReceiptBatch::decode(receipt.frame()),
        Err(DecodeError::UnexpectedKind { .. })
    ));
}

#[test]
fn one_bad_signature_condemns_the_batch_and_keys_are_checked() {
    let frame = batch(64);
    let b = ReceiptBatch::decode(&frame).unwrap();
    assert_eq!(
        b.verify_witness(&sample::key(8).verifying_key()),
        Err(SignatureError::BadKey)
    );
    // The same body signed under the single-receipt context does not verify: the two
    // kinds of witness signature cannot stand in for each other.
    let mut other = frame.clone();
    let at = other.len() - 64;
    let sig = crypto::sign(&sample::key(9), &crypto::receipt_message(&other[..at]));
    other[at..].copy_from_slice(&sig);
    let b = ReceiptBatch::decode(&other).unwrap();
    assert_eq!(
        b.verify_witness(&sample::key(9).verifying_key()),
        Err(SignatureError::BadSignature)
    );
    assert_ne!(b.digest(), ReceiptBatch::decode(&frame).unwrap().digest());
}

fn arb_entries() -> impl Strategy<Value = Vec<Entry>> {
    proptest::collection::vec(
        (
            any::<[u8; 8]>(),
            any::<u32>(),
            any::<[u8; 16]>(),
            (
                any::<i16>(),
                any::<i16>(),
                any::<u32>(),
                any::<Option<i32>>(),
            ),
            (5u8..=12, any::<u64>()),
        ),
        1..40,
    )
    .prop_map(|raw| {
        let mut v: Vec<Entry> = raw
            .into_iter()
            .map(|(d, seq, ev, (rssi, snr, freq, foff), (sf, t))| Entry {
                device: ShortId(d),
                seq,
                event: LinkDigest(ev),
                observed: Observation {
                    rssi_dbm: rssi,
                    snr_qdb: snr,
                    freq_hz: freq,
                    foff_hz: foff,
                    sf,
                    time_ms: t,
                },
            })
            .collect();
        v.sort_by_key(Entry::order_key);
        v.dedup_by_key(|e| e.order_key());
        v
    })
}

proptest! {
    #[test]
    fn any_ordered_entries_round_trip(es in arb_entries(), time in any::<u64>()) {
        let mut out = vec![0u8; MAX_RECEIPT_BATCH];
        let len = ReceiptBatch::sign_into(&sample::key(9), time, es.iter().copied(), &mut out).unwrap();
        let b = ReceiptBatch::decode(&out[..len]).unwrap();
        prop_assert_eq!(b.time_ms(), time);
        prop_assert_eq!(b.entries().collect::<Vec<_>>(), es);
        prop_assert!(b.verify_witness(&sample::key(9).verifying_key()).is_ok());
    }

    #[test]
    fn every_bit_flip_is_refused_or_fails_the_signature(n in 1usize..40, bit in any::<usize>()) {
        let mut frame = batch(n);
        let bit = bit % (frame.len() * 8);
        frame[bit / 8] ^= 1 << (bit % 8);
        if let Ok(b) = ReceiptBatch::decode(&frame) {
            prop_assert!(b.verify_witness(&sample::key(9).verifying_key()).is_err());
        }
    }

    #[test]
    fn mutated_batches_never_panic_and_accepted_ones_are_canonical(
        n in 1usize..20,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut frame = batch(n);
        for (at, byte) in edits {
            let at = at % frame.len();
            frame[at] = byte;
        }
        frame.truncate(cut % (frame.len() + 1));
        if let Ok(b) = ReceiptBatch::decode(&frame) {
            let mut again = vec![0u8; MAX_RECEIPT_BATCH];
            // Re-encoding the decoded entries gives the same body (signature aside).
            let key = sample::key(9);
            let len = ReceiptBatch::sign_into(&key, b.time_ms(), b.entries(), &mut again).unwrap();
            if b.witness() == crypto::witness_id(key.verifying_key().as_bytes()) {
                prop_assert_eq!(&again[..len - 64], b.signed_bytes());
            }
        }
    }
}
