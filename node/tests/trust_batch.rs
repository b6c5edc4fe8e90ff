//! Batched witness receipts in the trust engine and its lineage: one signature check
//! per batch, entries that decide exactly like single receipts, a batch recorded once
//! however many decisions it serves, and `lineage::verify` checking the batch signature
//! once and every reference to an entry.

#[path = "trust_support.rs"]
mod support;

use slope_node::Millis;
use slope_node::lineage::{self, Entry, ReceiptRef, VerifyError};
use slope_node::proto::Observation;
use slope_node::proto::{ReceiptBatch, crypto, sample};
use slope_node::trust::operator::Action;
use slope_node::trust::{Engine, Policy, PreparedBatch, ReceiptError, Scope};
use slope_node::verifier::VerifiedAttestation;
use support::*;

const T0: u64 = 1_795_000_000_000;

fn author() -> [u8; 32] {
    sample::key(AUTHOR).verifying_key().to_bytes()
}

/// The next attestation of `dev`, heard by the local radio.
fn attest(e_hot: bool, dev: &mut Device, rng: &mut Rng, now: Millis) -> VerifiedAttestation {
    let event = if dev.seq == 0 && !e_hot {
        dev.incept()
    } else {
        dev.next(&[])
    };
    verified(dev, event, link_rf(rng, 0, now), now, 0)
}

/// What a decision says, without the record indices (which differ between a log with
/// batch records and one without).
fn gist(d: &slope_node::trust::Decision) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {:?}",
        d.admission,
        d.weights,
        d.reasons,
        d.grant.map(|g| (g.scope, g.monitored, g.issued, g.expires)),
        d.revoked.map(|r| (r.scope, r.at))
    )
}

#[test]
fn batch_entries_decide_exactly_like_single_receipts() {
    let g2 = Gateway::new(102, 2, 1_800);
    let g3 = Gateway::new(103, 3, -2_500);
    let mut single = engine(Policy::default(), &[&g2, &g3], T0);
    let mut batched = engine(Policy::default(), &[&g2, &g3], T0);
    let mut rng = Rng(5);
    let mut dev = Device::new(41);
    let mut decoy = Device::new(42);
    let mut now = T0;
    let mut full = false;
    for _ in 0..40 {
        let att = attest(single.hot(&dev.id).is_some(), &mut dev, &mut rng, now);
        // Another device in the same batches: its entries are not this attestation's.
        let other = attest(true, &mut decoy, &mut rng, now);
        let rf: Vec<_> = (1..3).map(|g| link_rf(&mut rng, g, now)).collect();
        let singles: Vec<_> = [&g2, &g3]
            .iter()
            .zip(&rf)
            .map(|(g, rf)| {
                single
                    .verify_receipt(&g.receipt(&att, *rf))
                    .expect("receipt")
            })
            .collect();
        let mut from_batches = Vec::new();
        for (g, rf) in [&g2, &g3].iter().zip(&rf) {
            let frame = g.batch(&[(&att, *rf), (&other, *rf)], now + 1_000);
            from_batches.extend(batch_receipts(&batched, &frame, &att));
        }
        assert_eq!(from_batches.len(), 2);
        for (s, b) in singles.iter().zip(&from_batches) {
            assert_eq!((s.body(), s.slot()), (b.body(), b.slot()));
            assert!(s.signed().is_some() && b.signed().is_none() && b.batch().is_some());
        }
        let a = single
            .handle_attestation(now, &att, &singles)
            .expect("decides");
        let b = batched
            .handle_attestation(now, &att, &from_batches)
            .expect("decides");
        assert_eq!(gist(&a), gist(&b));
        full |= a
            .grant
            .is_some_and(|g| g.scope == slope_node::trust::Scope::Full);
        now += 900_000;
    }
    assert!(
        full,
        "the device reached full scope through batched receipts"
    );
    let log = batched
        .lineage()
        .export(&sample::key(AUTHOR))
        .expect("export");
    let report = lineage::verify(&log, &author()).expect("verifies");
    assert_eq!((report.batches, report.receipts), (80, 80));
    assert_eq!(
        lineage::verify_replay(&log, &author()),
        Ok(report),
        "decisions re-derive from the batches"
    );
}

/// The inceptions of devices `seeds`, and one batch by `g` with a receipt for each.
fn first_attestations_in_one_batch(
    g: &Gateway,
    seeds: std::ops::Range<u8>,
    rng: u64,
) -> (Vec<VerifiedAttestation>, Vec<u8>) {
    let mut rng = Rng(rng);
    let atts: Vec<_> = seeds
        .map(|s| attest(false, &mut Device::new(s), &mut rng, T0))
        .collect();
    let heard: Vec<_> = atts.iter().map(|a| (a, link_rf(&mut rng, 1, T0))).collect();
    let frame = g.batch(&heard, T0 + 5_000);
    (atts, frame)
}

#[test]
fn one_batch_is_recorded_once_for_every_decision_it_serves() {
    let g2 = Gateway::new(102, 2, 1_800);
    let mut e = engine(Policy::default(), &[&g2], T0);
    let (atts, frame) = first_attestations_in_one_batch(&g2, 50..54, 9);
    // The batch arrives again with every decision (gossip repeats): still one record.
    for att in &atts[..2] {
        let rs = batch_receipts(&e, &frame, att);
        assert_eq!(rs.len(), 1);
        e.handle_attestation(T0 + 10_000, att, &rs)
            .expect("decides");
    }
    // A restart from the store knows the batch is recorded: the next decisions name
    // it without a new record, exactly as in the engine that never stopped.
    let mut restored = Engine::restore(e.lineage().storage().clone()).expect("restore");
    for att in &atts[2..] {
        for engine in [&mut e, &mut restored] {
            let rs = batch_receipts(engine, &frame, att);
            engine
                .handle_attestation(T0 + 20_000, att, &rs)
                .expect("decides");
        }
        assert_eq!(e.lineage().head(), restored.lineage().head());
    }
    let log = e.lineage().export(&sample::key(AUTHOR)).expect("export");
    let recs = records(&log);
    let batch_records: Vec<usize> = recs
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.entry, Entry::ReceiptBatch { .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(batch_records.len(), 1);
    let mut entries_named = Vec::new();
    for r in &recs {
        if let Entry::Observation(o) = &r.entry {
            for rf in &o.receipts {
                match rf {
                    ReceiptRef::Batch { record, entry } => {
                        assert_eq!(*record as usize, batch_records[0]);
                        entries_named.push(*entry);
                    }
                    ReceiptRef::Frame(_) => panic!("no single receipt was given"),
                }
            }
        }
    }
    entries_named.sort_unstable();
    assert_eq!(entries_named, vec![0, 1, 2, 3]);
    let report = lineage::verify(&log, &author()).expect("verifies");
    assert_eq!((report.batches, report.receipts), (1, 4));
    assert_eq!(lineage::verify_replay(&log, &author()), Ok(report));
}

#[test]
fn a_bad_batch_signature_refuses_every_entry_and_names_the_witness() {
    let g2 = Gateway::new(102, 2, 1_800);
    let stranger = Gateway::new(109, 2, 900);
    let mut e = engine(Policy::default(), &[&g2], T0);
    let mut rng = Rng(3);
    let mut dev = Device::new(44);
    let att = attest(false, &mut dev, &mut rng, T0);
    let rf = link_rf(&mut rng, 1, T0);
    let mut frame = g2.batch(&[(&att, rf)], T0);
    let last = frame.len() - 1;
    frame[last] ^= 1;
    let witness = crypto::witness_id(g2.key.verifying_key().as_bytes());
    let batch = ReceiptBatch::decode(&frame).expect("form is fine");
    assert_eq!(
        e.verify_receipt_batch(&batch),
        Err(ReceiptError::BadSignature(witness))
    );
    let frame = stranger.batch(&[(&att, rf)], T0);
    let batch = ReceiptBatch::decode(&frame).expect("decodes");
    assert!(matches!(
        e.verify_receipt_batch(&batch),
        Err(ReceiptError::UnknownWitness(_))
    ));
    let frame = g2.batch(&[(&att, rf)], T0);
    let batch = ReceiptBatch::decode(&frame).expect("decodes");
    assert!(e.verify_receipt_batch(&batch).is_ok());
    let retire = act(Action::RetireWitness { witness }, "decommissioned", T0);
    e.handle_operator(T0, &retire).expect("retire");
    assert_eq!(
        e.verify_receipt_batch(&batch),
        Err(ReceiptError::Retired(witness))
    );
}

/// A log where two devices' decisions name entries of one batch.
fn shared_batch_log() -> Vec<u8> {
    let g2 = Gateway::new(102, 2, 1_800);
    let mut e = engine(Policy::default(), &[&g2], T0);
    let (atts, frame) = first_attestations_in_one_batch(&g2, 70..72, 12);
    for att in &atts {
        let rs = batch_receipts(&e, &frame, att);
        e.handle_attestation(T0 + 10_000, att, &rs)
            .expect("decides");
    }
    e.lineage().export(&sample::key(AUTHOR)).expect("export")
}

/// The index of the first record matching `pick`.
fn find(log: &[u8], pick: impl Fn(&Entry<'_>) -> bool) -> usize {
    records(log)
        .iter()
        .position(|r| pick(&r.entry))
        .expect("record present")
}

#[test]
fn verify_checks_the_batch_signature_once_and_every_entry_reference() {
    let log = shared_batch_log();
    assert!(lineage::verify(&log, &author()).is_ok());
    let batch_at = find(&log, |e| matches!(e, Entry::ReceiptBatch { .. }));
    let first_obs = find(&log, |e| matches!(e, Entry::Observation(_)));

    // A gateway rewriting its own log (re-chained, re-signed) to point a decision at
    // the other device's entry, at an entry that does not exist, or at a record that
    // holds no batch: refused at that observation.
    let repoint = |record: u64, entry: u16| {
        rewrite(&log, first_obs, move |rec| {
            if let Entry::Observation(o) = &mut rec.entry {
                o.receipts[0] = ReceiptRef::Batch { record, entry };
            }
        })
    };
    let original = match &records(&log)[first_obs].entry {
        Entry::Observation(o) => o.receipts[0],
        _ => unreachable!(),
    };
    let ReceiptRef::Batch { entry, .. } = original else {
        panic!("a batch reference")
    };
    for forged in [
        repoint(batch_at as u64, 1 - entry),
        repoint(batch_at as u64, 7),
        repoint(0, entry),
    ] {
        assert_eq!(
            lineage::verify(&forged, &author()),
            Err(VerifyError::Receipt {
                record: first_obs as u64
            })
        );
    }
    // An edited entry inside the batch breaks its one signature: refused at the batch.
    let edited = rewrite(&log, batch_at, |rec| {
        if let Entry::ReceiptBatch { frame } = &mut rec.entry {
            let mut f = frame.to_vec();
            let at = f.len() - 70;
            f[at] ^= 0x01;
            *frame = Box::leak(f.into_boxed_slice());
        }
    });
    assert_eq!(
        lineage::verify(&edited, &author()),
        Err(VerifyError::Receipt {
            record: batch_at as u64
        })
    );
}

#[test]
fn receipts_for_other_events_are_dropped_not_logged() {
    let g2 = Gateway::new(102, 2, 1_800);
    let mut filtered = engine(Policy::default(), &[&g2], T0);
    let mut unfiltered = engine(Policy::default(), &[&g2], T0);
    let mut rng = Rng(77);
    let (mut dev, mut decoy) = (Device::new(61), Device::new(62));
    let mut now = T0;
    for _ in 0..6 {
        let att = attest(filtered.hot(&dev.id).is_some(), &mut dev, &mut rng, now);
        let other = attest(true, &mut decoy, &mut rng, now);
        let rf = link_rf(&mut rng, 1, now);
        let frame = g2.batch(&[(&att, rf), (&other, rf)], now + 1_000);
        let batch = ReceiptBatch::decode(&frame).expect("batch decodes");
        // Every entry of the batch, the decoy's included, as a careless caller would.
        let all = unfiltered.verify_receipt_batch(&batch).expect("verifies");
        assert_eq!(all.iter().filter(|r| !r.names(&att)).count(), 1);
        let a = filtered
            .handle_attestation(now, &att, &batch_receipts(&filtered, &frame, &att))
            .expect("decides");
        let b = unfiltered
            .handle_attestation(now, &att, &all)
            .expect("decides");
        assert_eq!(gist(&a), gist(&b), "the decoy's receipt moved nothing");
        now += 900_000;
    }
    let log = unfiltered
        .lineage()
        .export(&sample::key(AUTHOR))
        .expect("export");
    let report = lineage::verify(&log, &author()).expect("the log verifies");
    assert_eq!(report.receipts, 6, "only the receipts naming their event");
    assert_eq!(lineage::verify_replay(&log, &author()), Ok(report));
}

/// (key, message, signature)
type Check = ([u8; 32], [u8; 32], [u8; 64]);

/// Counts the memo's writes; remembers everything.
#[derive(Default)]
struct CountingMemo {
    known: std::collections::HashMap<Check, bool>,
    puts: usize,
}

impl slope_node::verifier::SignatureMemo for CountingMemo {
    fn get(&self, key: &[u8; 32], message: &[u8; 32], signature: &[u8; 64]) -> Option<bool> {
        self.known.get(&(*key, *message, *signature)).copied()
    }
    fn put(&mut self, key: &[u8; 32], message: &[u8; 32], signature: &[u8; 64], valid: bool) {
        self.puts += 1;
        self.known.insert((*key, *message, *signature), valid);
    }
}

#[test]
fn a_memo_and_an_entry_filter_change_no_token() {
    let g2 = Gateway::new(102, 2, 1_800);
    let e = engine(Policy::default(), &[&g2], T0);
    let (atts, frame) = first_attestations_in_one_batch(&g2, 70..76, 11);
    let batch = ReceiptBatch::decode(&frame).expect("batch decodes");
    let plain = e.verify_receipt_batch(&batch).expect("verifies");
    let mut memo = CountingMemo::default();
    for round in 0..3 {
        let all = e
            .verify_receipt_batch_with(&batch, Some(&mut memo), |_| true)
            .expect("verifies through the memo");
        assert_eq!(all, plain, "round {round}");
    }
    assert_eq!(
        memo.puts, 1,
        "one signature check, then answers from the memo"
    );
    // Only the entries of two devices: the same tokens, batch indices kept.
    let wanted = [atts[1].device().short(), atts[4].device().short()];
    let some = e
        .verify_receipt_batch_with(&batch, Some(&mut memo), |en| wanted.contains(&en.device))
        .expect("verifies");
    let expected: Vec<_> = plain
        .iter()
        .filter(|r| wanted.contains(&r.body().device))
        .cloned()
        .collect();
    assert_eq!(some.len(), 2);
    assert_eq!(some, expected);
    // A forged batch stays refused, and its result is remembered as invalid.
    let mut forged = frame.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0x40;
    let forged = ReceiptBatch::decode(&forged).expect("still well-formed");
    for _ in 0..2 {
        assert!(matches!(
            e.verify_receipt_batch_with(&forged, Some(&mut memo), |_| true),
            Err(ReceiptError::BadSignature(_))
        ));
    }
    assert_eq!(memo.puts, 2);
}

/// A batch's result through [`PreparedBatch`] and through the decoded frame, with and
/// without a memo and a filter: `None` when the bytes do not decode.
#[allow(clippy::type_complexity)]
fn both_ways(
    e: &Engine<lineage::Memory>,
    frame: &[u8],
    keep: impl Fn(&slope_node::proto::batch::Entry) -> bool + Copy,
) -> Option<(
    Result<Vec<slope_node::trust::VerifiedReceipt>, ReceiptError>,
    Result<Vec<slope_node::trust::VerifiedReceipt>, ReceiptError>,
)> {
    let decoded = ReceiptBatch::decode(frame);
    let prepared = PreparedBatch::prepare(frame);
    assert_eq!(decoded.is_ok(), prepared.is_ok(), "the same bytes decode");
    let (batch, prepared) = (decoded.ok()?, prepared.ok()?);
    let plain = e.verify_receipt_batch_with(&batch, None, keep);
    let mut memo = CountingMemo::default();
    for round in 0..2 {
        let p = e.verify_prepared_receipt_batch_with(&prepared, Some(&mut memo), keep);
        assert_eq!(p, plain, "round {round} through the memo");
    }
    assert!(memo.puts <= 1, "one signature check at most");
    let p = e.verify_prepared_receipt_batch_with(&prepared, None, keep);
    Some((plain, p))
}

#[test]
fn a_prepared_batch_gives_the_same_tokens_and_refusals() {
    let g2 = Gateway::new(102, 2, 1_800);
    let e = engine(Policy::default(), &[&g2], T0);
    let (atts, frame) = first_attestations_in_one_batch(&g2, 90..96, 13);
    let prepared = PreparedBatch::prepare(&frame).expect("prepares");
    assert_eq!(prepared.frame(), &frame[..]);
    assert_eq!(prepared.entries().len(), atts.len());
    let (plain, p) = both_ways(&e, &frame, |_| true).expect("decodes");
    assert_eq!(plain.as_ref().map(Vec::len), Ok(atts.len()));
    assert_eq!(p, plain);
    // A filter keeps the batch indices.
    let wanted = atts[2].device().short();
    let (plain, p) = both_ways(&e, &frame, |en| en.device == wanted).expect("decodes");
    assert_eq!(p, plain);
    // Entries are sorted by device: the kept one's index is its place in the batch.
    let index = prepared
        .entries()
        .iter()
        .position(|en| en.device == wanted)
        .and_then(|i| u16::try_from(i).ok());
    assert_eq!(plain.map(|v| v[0].batch().map(|(_, i)| i)), Ok(index));
    // A bad signature, an unknown witness, a retired one: the same refusals.
    let mut forged = frame.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0x40;
    let (plain, p) = both_ways(&e, &forged, |_| true).expect("decodes");
    assert!(matches!(plain, Err(ReceiptError::BadSignature(_))));
    assert_eq!(p, plain);
    let stranger = engine(Policy::default(), &[], T0);
    let (plain, p) = both_ways(&stranger, &frame, |_| true).expect("decodes");
    assert!(matches!(plain, Err(ReceiptError::UnknownWitness(_))));
    assert_eq!(p, plain);
    let mut retired = engine(Policy::default(), &[&g2], T0);
    let witness = crypto::witness_id(&g2.key.verifying_key().to_bytes());
    retired
        .handle_operator(T0, &act(Action::RetireWitness { witness }, "moved", T0))
        .expect("retire");
    let (plain, p) = both_ways(&retired, &frame, |_| true).expect("decodes");
    assert!(matches!(plain, Err(ReceiptError::Retired(_))));
    assert_eq!(p, plain);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]
    /// Whatever byte of a batch is changed, preparing it and checking the prepared
    /// batch gives exactly what decoding and checking the bytes gives.
    #[test]
    fn a_prepared_batch_answers_as_its_bytes(at in 0usize..4096, xor in 1u8..=255, cut in proptest::prelude::any::<bool>()) {
        let g2 = Gateway::new(102, 2, 1_800);
        let e = engine(Policy::default(), &[&g2], T0);
        let (_, mut frame) = first_attestations_in_one_batch(&g2, 20..23, 3);
        let at = at % frame.len();
        if cut {
            frame.truncate(at);
        } else {
            frame[at] ^= xor;
        }
        if let Some((plain, p)) = both_ways(&e, &frame, |_| true) {
            proptest::prop_assert_eq!(p, plain);
        }
    }
}

#[test]
fn the_local_radio_is_no_witness_of_what_it_did_not_hear() {
    let g2 = Gateway::new(102, 2, 1_800);
    let mut heard = engine(Policy::default(), &[&g2], T0);
    let mut relayed = engine(Policy::default(), &[&g2], T0);
    let mut rng = Rng(31);
    let mut dev = Device::new(81);
    let mut now = T0;
    let mut some_full = false;
    for _ in 0..40 {
        let event = if heard.hot(&dev.id).is_none() {
            dev.incept()
        } else {
            dev.next(&[])
        };
        let rf = link_rf(&mut rng, 0, now);
        let on_air = verified(&dev, event.clone(), rf, now, 0);
        let by_gossip = verified(&dev, event, Observation::relayed(now), now, 0);
        let receipts = |e: &slope_node::trust::Engine<lineage::Memory>, att| {
            let frame = g2.batch(&[(att, link_rf(&mut Rng(now), 1, now))], now + 1_000);
            batch_receipts(e, &frame, att)
        };
        let r1 = receipts(&heard, &on_air);
        let r2 = receipts(&relayed, &by_gossip);
        let a = heard
            .handle_attestation(now, &on_air, &r1)
            .expect("decides");
        let b = relayed
            .handle_attestation(now, &by_gossip, &r2)
            .expect("decides");
        // Heard: two witnesses (own radio + g2) in two zones can make full scope.
        // Relayed: g2 alone, never full scope under the default policy.
        some_full |= a.grant.is_some_and(|g| g.scope == Scope::Full);
        assert!(b.grant.is_none_or(|g| g.scope != Scope::Full));
        assert!(b.weights.corroboration <= a.weights.corroboration);
        now += 900_000;
    }
    assert!(
        some_full,
        "the control reaches full scope with its own radio"
    );
    let log = relayed
        .lineage()
        .export(&sample::key(AUTHOR))
        .expect("export");
    let report = lineage::verify(&log, &author()).expect("verifies");
    assert_eq!(lineage::verify_replay(&log, &author()), Ok(report));
}
