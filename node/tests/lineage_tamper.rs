//! Lineage: an export re-verifies from nothing but the author's key, and editing,
//! dropping, inserting or reordering any record (batched receipts included) is
//! detected (property test).

#[path = "trust_support.rs"]
mod support;

use proptest::prelude::*;
use slope_node::lineage::{self, export::Export};
use slope_node::proto::{DivergenceProof, sample};
use slope_node::trust::operator::Action;
use slope_node::trust::{Policy, Scope};
use support::*;

const T0: u64 = 1_795_000_000_000;

/// A log with observations, single and batched receipts, decisions, grants, a
/// divergence proof, a revocation and operator actions.
fn sample_log() -> Vec<u8> {
    let g2 = Gateway::new(102, 2, 1_800);
    let mut e = engine(Policy::default(), &[&g2], T0);
    let mut rng = Rng(1);
    let mut dev = Device::new(31);
    let (_, now) = run_honest(&mut e, &mut rng, &mut dev, &[&g2], 6, T0);
    let pin = act(
        Action::Pin {
            device: dev.id,
            scope: Scope::Full,
        },
        "acceptance test",
        now,
    );
    e.handle_operator(now, &pin).expect("pin");
    let (_, mut now) = run_honest(&mut e, &mut rng, &mut dev, &[&g2], 2, now);
    // Two attestations whose receipts come in one batch, recorded once.
    let atts: Vec<_> = (0..2)
        .map(|k| {
            let event = dev.next(&[]);
            verified(
                &dev,
                event,
                link_rf(&mut rng, 0, now + k * 900_000),
                now + k * 900_000,
                0,
            )
        })
        .collect();
    let heard: Vec<_> = atts
        .iter()
        .map(|a| (a, link_rf(&mut rng, 1, now)))
        .collect();
    let frame = g2.batch(&heard, now + 1_000_000);
    for att in &atts {
        let rs = batch_receipts(&e, &frame, att);
        e.handle_attestation(now, att, &rs).expect("decides");
        now += 900_000;
    }
    let prev = dev.prev.link();
    let a = dev.next(&[]);
    let b = dev.fork(prev, dev.seq);
    let mut proof = vec![0u8; 4096];
    let n = DivergenceProof::encode(dev.inception.frame(), &[], a.frame(), b.frame(), &mut proof)
        .expect("proof");
    proof.truncate(n);
    let d = e.handle_proof(now, &proof).expect("quarantine");
    assert!(d.revoked.is_some());
    e.lineage().export(&sample::key(AUTHOR)).expect("export")
}

fn author() -> [u8; 32] {
    sample::key(AUTHOR).verifying_key().to_bytes()
}

fn reencode(records: &[Vec<u8>], checkpoint: &lineage::Checkpoint) -> Vec<u8> {
    lineage::export::encode(records, checkpoint).expect("encode")
}

fn split(bytes: &[u8]) -> (Vec<Vec<u8>>, lineage::Checkpoint) {
    let ex: Export<'_> = postcard::from_bytes(bytes).expect("export decodes");
    (
        ex.records.iter().map(|r| r.to_vec()).collect(),
        ex.checkpoint,
    )
}

#[test]
fn the_sample_log_verifies() {
    let log = sample_log();
    let r = lineage::verify(&log, &author()).expect("verifies");
    assert_eq!(r.unanchored, 0);
    assert_eq!(r.proofs, 1);
    assert_eq!(r.frames, 10);
    assert_eq!(r.receipts, 10);
    assert_eq!(r.batches, 1);
    assert!(r.operator_actions >= 2 && r.revocations >= 1 && r.grants >= 8);
    // Another author's key does not verify it.
    assert!(lineage::verify(&log, &sample::key(1).verifying_key().to_bytes()).is_err());
}

#[test]
fn truncation_with_a_forged_checkpoint_is_detected() {
    let log = sample_log();
    let (mut records, cp) = split(&log);
    records.pop();
    // Keep the old checkpoint: count and head no longer match.
    assert!(lineage::verify(&reencode(&records, &cp), &author()).is_err());
    // Re-sign with another key: the signature fails.
    let head = slope_node::lineage::record::digest(records.last().expect("records"));
    let forged = lineage::Checkpoint::sign(records.len() as u64, head, &sample::key(99));
    assert_eq!(
        lineage::verify(&reencode(&records, &forged), &author()),
        Err(lineage::VerifyError::CheckpointSignature)
    );
}

/// The index and frame of the log's (one) receipt-batch record.
fn batch_record(records: &[Vec<u8>]) -> (usize, Vec<u8>) {
    records
        .iter()
        .enumerate()
        .find_map(
            |(i, raw)| match postcard::from_bytes::<lineage::Record<'_>>(raw) {
                Ok(lineage::Record {
                    entry: lineage::Entry::ReceiptBatch { frame },
                    ..
                }) => Some((i, frame.to_vec())),
                _ => None,
            },
        )
        .expect("the sample log records a batch")
}

/// A batch record's digest commits to its frame (through the batch digest): the same
/// witness's batch with the same entries, signed at another time, passes every content
/// check in the batch record's place, and only the next record's link catches it.
#[test]
fn another_signed_batch_in_a_batch_record_breaks_the_chain() {
    use slope_node::proto::ReceiptBatch;
    let log = sample_log();
    let (mut records, cp) = split(&log);
    let (i, frame) = batch_record(&records);
    assert!(i + 1 < records.len(), "records follow the batch");
    let batch = ReceiptBatch::decode(&frame).expect("logged batch decodes");
    let mut other = vec![0u8; frame.len() + 64];
    let n = ReceiptBatch::sign_into(
        &sample::key(102),
        batch.time_ms() + 1,
        batch.entries(),
        &mut other,
    )
    .expect("re-signed");
    other.truncate(n);
    assert_ne!(other, frame);
    let logged = records[i].clone();
    let mut rec: lineage::Record<'_> = postcard::from_bytes(&logged).expect("decodes");
    rec.entry = lineage::Entry::ReceiptBatch { frame: &other };
    records[i] = postcard::to_extend(&rec, Vec::new()).expect("encodes");
    assert_eq!(
        lineage::verify(&reencode(&records, &cp), &author()),
        Err(lineage::VerifyError::Chain {
            record: i as u64 + 1
        })
    );
}

#[derive(Debug, Clone)]
enum Tamper {
    Flip { record: usize, byte: usize, bit: u8 },
    Drop(usize),
    Insert { at: usize, copy_of: usize },
    Swap(usize, usize),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        (any::<usize>(), any::<usize>(), 0u8..8).prop_map(|(record, byte, bit)| Tamper::Flip {
            record,
            byte,
            bit
        }),
        any::<usize>().prop_map(Tamper::Drop),
        (any::<usize>(), any::<usize>()).prop_map(|(at, copy_of)| Tamper::Insert { at, copy_of }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Tamper::Swap(a, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_edit_drop_insert_or_reorder_is_detected(t in tamper()) {
        // Built once per case: small, and keeps the test independent of caching.
        let log = sample_log();
        let (mut records, cp) = split(&log);
        let n = records.len();
        match t {
            Tamper::Flip { record, byte, bit } => {
                let r = &mut records[record % n];
                let at = byte % r.len();
                r[at] ^= 1 << bit;
            }
            Tamper::Drop(i) => {
                records.remove(i % n);
            }
            Tamper::Insert { at, copy_of } => {
                let copy = records[copy_of % n].clone();
                records.insert(at % (n + 1), copy);
            }
            Tamper::Swap(a, b) => {
                let (a, b) = (a % n, b % n);
                prop_assume!(a != b && records[a] != records[b]);
                records.swap(a, b);
            }
        }
        prop_assert!(lineage::verify(&reencode(&records, &cp), &author()).is_err());
    }

    #[test]
    fn any_bit_flip_of_the_export_is_detected(byte in any::<usize>(), bit in 0u8..8) {
        let mut log = sample_log();
        let at = byte % log.len();
        log[at] ^= 1 << bit;
        prop_assert!(lineage::verify(&log, &author()).is_err());
    }
}
