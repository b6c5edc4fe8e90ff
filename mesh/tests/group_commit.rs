//! Group commit: several verified batches waiting for the store go into one write
//! transaction (one fsync), and no receipt exists before the commit that made its
//! observation durable.

mod common;
mod staged;

use common::{attest, device_id, incepted};
use slope_mesh::metrics::Metrics;
use slope_mesh::pipeline::{Effect, Output, Overlapped, Verdict, parse_receipt_message};
use slope_mesh::store::Store;
use slope_proto::{DeviceId, ReceiptBatch};
use staged::{inputs, pipeline};

/// Four devices, one batch each: inception and five attestations.
fn batches() -> Vec<(DeviceId, Vec<Vec<u8>>)> {
    (0..4u64)
        .map(|seed| {
            let (mut d, mut rng, inception) = incepted(500 + seed);
            let mut frames = vec![inception];
            frames.extend(attest(&mut d, &mut rng, 5, 1000, 1));
            (device_id(&d), frames)
        })
        .collect()
}

/// Durable commits so far (observations of the commit histogram).
fn commits(metrics: &Metrics) -> u64 {
    metrics
        .encode()
        .lines()
        .find_map(|l| {
            l.strip_prefix("slope_commit_seconds_count ")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// The (device prefix, seq) of every receipt entry an output publishes.
fn receipted(out: &Output<usize>) -> Vec<([u8; 8], u32)> {
    let mut r = Vec::new();
    for e in &out.effects {
        if let Effect::PublishReceipt(m) = e {
            let (_, frame) = parse_receipt_message(m).unwrap();
            let b = ReceiptBatch::decode(frame).unwrap();
            r.extend(b.receipts().map(|x| (x.device.0, x.seq)));
        }
    }
    r
}

/// Asserts every receipt names a frame the store holds (durable when it was signed:
/// outputs exist only after their commit returned).
fn assert_durable(store: &Store, ids: &[DeviceId], out: &Output<usize>) {
    for (prefix, seq) in receipted(out) {
        let device = ids
            .iter()
            .find(|d| d.short().0 == prefix)
            .expect("receipt names a known device");
        assert!(
            store.frame(device, seq).unwrap().is_some(),
            "receipt for an uncommitted frame"
        );
    }
}

#[test]
fn several_waiting_batches_commit_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let (store, mut p) = pipeline(dir.path(), &metrics);
    let batches = batches();
    let ids: Vec<DeviceId> = batches.iter().map(|(id, _)| *id).collect();
    let before = commits(&metrics);
    let waiting: Vec<_> = batches
        .iter()
        .enumerate()
        .map(|(n, (_, frames))| p.verify(10 + n as u64, inputs(frames)))
        .collect();
    // Verified is not durable: nothing is in the store yet.
    for id in &ids {
        assert!(store.device(id).unwrap().is_none());
    }
    let out = p.commit_group(waiting);
    assert_eq!(
        commits(&metrics),
        before + 1,
        "one transaction for the group"
    );
    assert_eq!(out.len(), batches.len(), "one output per batch");
    let mut all = Vec::new();
    for (out, (id, frames)) in out.iter().zip(&batches) {
        let out = out.as_ref().expect("committed");
        assert_eq!(out.verdicts.len(), frames.len());
        assert!(out.verdicts.iter().all(|(_, v)| *v == Verdict::Accept));
        for seq in 0..frames.len() as u32 {
            assert!(store.frame(id, seq).unwrap().is_some());
        }
        assert_durable(&store, &ids, out);
        all.extend(receipted(out));
    }
    let expected: usize = batches.iter().map(|(_, f)| f.len()).sum();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        expected,
        "every committed observation receipted once"
    );
}

#[test]
fn overlapped_groups_are_bounded_and_receipt_only_committed_frames() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let (store, mut p) = pipeline(dir.path(), &metrics);
    let batches = batches();
    let ids: Vec<DeviceId> = batches.iter().map(|(id, _)| *id).collect();
    let per_batch = batches[0].1.len();
    // At most two batches per group.
    let commit_max = 2 * per_batch;
    let mut overlap: Overlapped<usize> = Overlapped::new(commit_max);
    let mut queue = batches
        .iter()
        .enumerate()
        .map(|(n, (_, f))| (n as u64, inputs(f)));
    let mut outputs = Vec::new();
    let before = commits(&metrics);
    while let Some((now, inputs)) = queue.next() {
        let out = overlap.push(&mut p, now, inputs, || queue.next());
        // One verification may take several waiting batches (fewer than `commit_max`
        // frames plus one batch).
        assert!(overlap.waiting() < 2 * commit_max + per_batch, "bounded");
        for o in out {
            let o = o.expect("committed");
            assert_durable(&store, &ids, &o);
            outputs.push(o);
        }
    }
    while overlap.is_pending() {
        for o in overlap.flush(&mut p) {
            let o = o.expect("committed");
            assert_durable(&store, &ids, &o);
            outputs.push(o);
        }
    }
    // Batches verified together come out as one output.
    assert!((1..=batches.len()).contains(&outputs.len()));
    let verdicts: usize = outputs.iter().map(|o| o.verdicts.len()).sum();
    assert_eq!(
        verdicts,
        batches.len() * per_batch,
        "every frame has its verdict"
    );
    let n = commits(&metrics) - before;
    assert!(
        (2..=batches.len() as u64).contains(&n),
        "{n} commits for {} batches in groups of at most two",
        batches.len()
    );
    let receipts: usize = outputs.iter().map(|o| receipted(o).len()).sum();
    assert_eq!(receipts, batches.len() * per_batch);
}
