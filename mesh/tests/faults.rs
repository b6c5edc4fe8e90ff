//! Injected redb commit failures (`Store::fail_next_commits`): a failed group commit
//! yields no receipt, the pipeline recovers (verifier and trust engine rebuilt from the
//! store) and the next group commits; an operator action or a peer's proof whose write
//! fails leaves neither the store nor the engine changed. Nothing committed is lost:
//! after every scenario the gateway lineage and the engine lineage verify as a whole
//! and a restart on the same store succeeds.

mod common;
mod staged;

use std::sync::Arc;

use common::{attest, clone_of, device_id, incepted};
use slope_mesh::identity::Identity;
use slope_mesh::metrics::Metrics;
use slope_mesh::pipeline::{Effect, Output, Overlapped, Pipeline, Receipts, Verdict};
use slope_mesh::store::Store;
use slope_mesh::trust::{Admission, Scope};
use slope_proto::DeviceId;
use staged::{SEED, inputs};

fn pipeline(dir: &std::path::Path) -> (Arc<Store>, Pipeline) {
    staged::pipeline(dir, &Metrics::new())
}

/// `n` devices: inception and four attestations each.
fn chains(n: u64, seed: u64) -> Vec<(DeviceId, Vec<Vec<u8>>)> {
    (0..n)
        .map(|i| {
            let (mut d, mut rng, inception) = incepted(seed + i);
            let mut frames = vec![inception];
            frames.extend(attest(&mut d, &mut rng, 4, 1000, 1));
            (device_id(&d), frames)
        })
        .collect()
}

fn receipts(out: &Output<usize>) -> usize {
    out.effects
        .iter()
        .filter(|e| matches!(e, Effect::PublishReceipt(_)))
        .count()
}

/// Everything committed is whole: the gateway lineage and the engine lineage verify
/// (no hole, no record the store lacks), and a restart on the store succeeds.
fn assert_whole(dir: &std::path::Path, store: Arc<Store>, p: Pipeline) {
    assert_eq!(store.verify_lineage().unwrap().map(|_| ()), Ok(()));
    let id = Identity::from_seed(SEED);
    let export = store
        .engine_export(id.signing_key())
        .expect("engine lineage has no hole")
        .expect("engine lineage exists");
    let author = id.signing_key().verifying_key().to_bytes();
    slope_node::lineage::verify(&export, &author).expect("engine lineage verifies");
    drop(p);
    drop(store);
    let (_store, _p) = pipeline(dir);
}

#[test]
fn failed_group_commit_no_receipts_recovers_and_next_group_commits() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut p) = pipeline(dir.path());
    let batches = chains(4, 700);
    let mut overlap: Overlapped<usize> = Overlapped::new(batches[0].1.len());

    // Batch 0 waits; pushing batch 1 commits it.
    assert!(
        overlap
            .push(&mut p, 1, inputs(&batches[0].1), || None)
            .is_empty()
    );
    let out = overlap.push(&mut p, 2, inputs(&batches[1].1), || None);
    assert_eq!(out.len(), 1);
    assert!(receipts(out[0].as_ref().expect("committed")) > 0);

    // The group holding batch 1 fails at its commit.
    store.fail_next_commits(1);
    let out = overlap.push(&mut p, 3, inputs(&batches[2].1), || None);
    assert_eq!(out.len(), 1, "one result for the failed group");
    let failed = out
        .into_iter()
        .next()
        .unwrap()
        .expect_err("injected failure");
    assert_eq!(
        failed.tags.len(),
        batches[1].1.len(),
        "no receipt, every tag back"
    );
    assert!(
        store.device(&batches[1].0).unwrap().is_none(),
        "nothing of the failed group is in the store"
    );
    assert!(
        store.device(&batches[0].0).unwrap().is_some(),
        "what was committed before is kept"
    );

    // The next group (batch 2, verified again against the rebuilt verifier) commits.
    let out = overlap.push(&mut p, 4, inputs(&batches[3].1), || None);
    let committed = out.into_iter().next().unwrap().expect("next group commits");
    assert!(
        committed
            .verdicts
            .iter()
            .all(|(_, v)| *v == Verdict::Accept)
    );
    assert!(receipts(&committed) > 0);
    for o in overlap.flush(&mut p) {
        o.expect("committed");
    }

    // Batch 1 heard again: the rebuilt verifier never saw it (had it not been rebuilt,
    // it would call these frames duplicates and they would never be committed).
    let out = p.ingest(5, inputs(&batches[1].1)).expect("commits");
    assert!(out.verdicts.iter().all(|(_, v)| *v == Verdict::Accept));
    assert!(receipts(&out) > 0);
    for (id, frames) in &batches {
        for seq in 0..frames.len() as u32 {
            assert!(store.frame(id, seq).unwrap().is_some(), "frame {seq} lost");
        }
    }
    assert_whole(dir.path(), store, p);
}

/// A device, its chain, and a divergence proof for it (a clone signs position 2 again),
/// found by another gateway.
fn divergence() -> (DeviceId, Vec<Vec<u8>>, Vec<u8>) {
    let (mut d, mut rng, inception) = incepted(800);
    let mut frames = vec![inception];
    frames.extend(attest(&mut d, &mut rng, 1, 1000, 1));
    let mut clone = clone_of(&d);
    let mut clone_rng = common::Rng(9_999);
    frames.extend(attest(&mut d, &mut rng, 2, 200_000, 1));
    let forged = attest(&mut clone, &mut clone_rng, 1, 200_000, 2);
    let dir = tempfile::tempdir().unwrap();
    let (_store, mut other) = pipeline(dir.path());
    other.ingest(1, inputs(&frames)).unwrap();
    let out = other.ingest(2, inputs(&forged)).unwrap();
    let proof = out
        .effects
        .into_iter()
        .find_map(|e| match e {
            Effect::PublishProof(p) => Some(p),
            _ => None,
        })
        .expect("the clone's frame is a divergence");
    (device_id(&d), frames, proof)
}

/// After a failed write the engine must take the next attestation on its committed
/// head: one more device through the pipeline.
fn one_more_device(p: &mut Pipeline, seed: u64) {
    let (id, frames) = chains(1, seed).pop().unwrap();
    let out = p.ingest(50, inputs(&frames)).expect("commits");
    assert!(out.verdicts.iter().all(|(_, v)| *v == Verdict::Accept));
    assert!(p.store().device(&id).unwrap().is_some());
}

#[test]
fn failed_proof_write_leaves_the_engine_at_the_store() {
    let (device, frames, proof) = divergence();
    let dir = tempfile::tempdir().unwrap();
    let (store, mut p) = pipeline(dir.path());
    p.ingest(1, inputs(&frames)).unwrap();

    store.fail_next_commits(1);
    assert!(p.ingest_proof(10, &proof).is_err());
    assert!(
        store.device(&device).unwrap().unwrap().quarantine.is_none(),
        "not quarantined: the write failed"
    );
    // The engine appends again: had it kept the failed write's records in memory, the
    // next commit would leave a hole in its lineage.
    one_more_device(&mut p, 810);
    let (verdict, effects) = p.ingest_proof(11, &proof).unwrap();
    assert_eq!(verdict, Verdict::Accept);
    assert!(effects.contains(&Effect::Quarantined(device)));
    one_more_device(&mut p, 820);
    assert_whole(dir.path(), store, p);
}

#[test]
fn failed_release_changes_neither_store_nor_engine() {
    let (device, frames, proof) = divergence();
    let dir = tempfile::tempdir().unwrap();
    let (store, mut p) = pipeline(dir.path());
    p.ingest(1, inputs(&frames)).unwrap();
    p.ingest_proof(10, &proof).unwrap();

    store.fail_next_commits(1);
    assert!(p.release(20, &device, "operator".into()).is_err());
    let rec = store.device(&device).unwrap().unwrap();
    assert!(rec.quarantine.is_some(), "still quarantined");
    assert_eq!(rec.admission, Admission::Quarantined);
    one_more_device(&mut p, 830);
    assert!(p.release(21, &device, "operator".into()).unwrap());
    assert!(store.device(&device).unwrap().unwrap().quarantine.is_none());
    one_more_device(&mut p, 840);
    assert_whole(dir.path(), store, p);
}

#[test]
fn failed_pin_changes_neither_store_nor_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut p) = pipeline(dir.path());
    let (device, frames) = chains(1, 850).pop().unwrap();
    p.ingest(1, inputs(&frames)).unwrap();
    let lineage = store.lineage_head().unwrap();

    store.fail_next_commits(1);
    assert!(
        p.pin(20, &device, Some(Scope::Full), "operator".into())
            .is_err()
    );
    assert!(store.device(&device).unwrap().unwrap().pinned.is_none());
    assert_eq!(store.lineage_head().unwrap(), lineage, "nothing recorded");
    one_more_device(&mut p, 860);
    assert!(
        p.pin(21, &device, Some(Scope::Full), "operator".into())
            .unwrap()
    );
    assert_eq!(
        store.device(&device).unwrap().unwrap().pinned,
        Some(Scope::Full)
    );
    assert_whole(dir.path(), store, p);
}

#[test]
fn receipts_taken_by_a_failed_group_wait_for_their_attestation_again() {
    use slope_mesh::pipeline::receipt_message;
    use slope_proto::{Event, Receipt, Signed, crypto};

    let dir = tempfile::tempdir().unwrap();
    let (store, mut p) = pipeline(dir.path());
    let peer = Identity::from_seed([7; 32]);
    let peer_key = peer.signing_key().verifying_key().to_bytes();
    p.set_receipts(Receipts {
        witnesses: vec![(peer_key, 2)],
        pending: 1024,
        pending_ttl_ms: 600_000,
        ..Receipts::default()
    })
    .unwrap();
    let (d, _, inception) = incepted(901);
    let id = device_id(&d);
    let event = Event::decode(&inception).unwrap();
    // The listed peer's receipt arrives before the attestation it names.
    let body = Receipt {
        witness: crypto::witness_id(&peer_key),
        device: id.short(),
        seq: 0,
        event: event.digest(&id).link(),
        observed: common::rx(-90),
    };
    let signed = Signed::witness(body, peer.signing_key()).unwrap();
    let verdict = p
        .ingest_receipt(1, &receipt_message(&peer_key, signed.frame()))
        .unwrap();
    assert_eq!(verdict, Verdict::Accept);
    assert_eq!(p.pending_receipts(), 1);

    // Its attestation's group fails at the commit: the receipt waits again.
    store.fail_next_commits(1);
    let v = p.verify(2, inputs(std::slice::from_ref(&inception)));
    assert!(p.commit(v).is_err());
    assert_eq!(
        p.pending_receipts(),
        1,
        "a failed commit lost the peer's receipt"
    );

    // The frame comes back and is decided with it.
    let v = p.verify(3, inputs(std::slice::from_ref(&inception)));
    assert!(p.commit(v).is_ok());
    assert_eq!(p.pending_receipts(), 0);
    assert_whole(dir.path(), store, p);
}

#[test]
fn an_engine_lost_to_a_failed_reopen_is_reopened_before_the_next_decision() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut p) = pipeline(dir.path());
    let batches = chains(2, 910);
    // The group fails, and so does the engine's reopen after it (its commit).
    store.fail_next_commits(2);
    let v = p.verify(1, inputs(&batches[0].1));
    assert!(p.commit(v).is_err());
    // The next group is decided by the trust engine, not by the built-in policy: the
    // engine lineage holds an observation for every frame committed.
    let v = p.verify(2, inputs(&batches[1].1));
    assert!(p.commit(v).is_ok());
    let id = Identity::from_seed(SEED);
    let export = store
        .engine_export(id.signing_key())
        .unwrap()
        .expect("engine lineage exists");
    let author = id.signing_key().verifying_key().to_bytes();
    let report = slope_node::lineage::verify(&export, &author).expect("verifies");
    assert_eq!(report.observations, batches[1].1.len() as u64);
    assert_whole(dir.path(), store, p);
}

/// The receipt window: decisions whose own commit fails are undone, stay stored as
/// waiting, are not retried before a second has passed (no loop on a failing disk), and
/// are then taken; both lineages are whole.
#[test]
fn failed_decision_commit_waits_and_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut p) = pipeline(dir.path());
    p.set_receipts(Receipts {
        wait_ms: 100,
        ..Receipts::default()
    })
    .unwrap();
    let (id, frames) = chains(1, 950).remove(0);
    let out = p.ingest(1_000, inputs(&frames)).unwrap();
    // Committed and receipted at once; decided later.
    assert!(receipts(&out) > 0);
    let waiting = frames.len();
    assert_eq!(p.undecided(), waiting);
    assert_eq!(p.decision_due_in(1_000), Some(100));
    assert_eq!(
        store.device(&id).unwrap().unwrap().admission,
        Admission::Deferred
    );

    store.fail_next_commits(1);
    assert!(p.decide_due(1_100).is_err());
    // Nothing decided: still waiting, in memory (rebuilt from the store) and stored.
    assert_eq!(p.undecided(), waiting);
    let stored: usize = store
        .undecided()
        .unwrap()
        .iter()
        .map(|(_, u)| u.len())
        .sum();
    assert_eq!(stored, waiting);
    assert_eq!(p.decision_due_in(1_100), Some(1_000));
    assert_eq!(p.decide_due(1_500).unwrap(), 0);

    assert_eq!(p.decide_due(2_100).unwrap(), waiting);
    assert_eq!(p.undecided(), 0);
    assert!(store.undecided().unwrap().is_empty());
    assert_ne!(
        store.device(&id).unwrap().unwrap().admission,
        Admission::Deferred
    );
    assert_whole(dir.path(), store, p);
}
