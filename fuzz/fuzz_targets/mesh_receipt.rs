//! Any bytes as a witness-receipt gossip message (`slope_mesh::pipeline`), in both forms
//! the mesh publishes and accepts: a single signed `Receipt` and a `ReceiptBatch` (one
//! witness signature over up to 256 entries, what the commit stage now signs). The
//! split into key and frame, the message decode the mesh uses (`slope_proto::decode`),
//! the key/witness match, the witness signature check and the walk over a batch's
//! entries never panic; a split message re-joins to exactly its input; a decoded batch
//! holds 1..=MAX_BATCH_ENTRIES entries in strictly increasing order, and its receipts
//! all name its witness.
//!
//! Also the suite-2 form on the compact topic (`slope_mesh::pipeline::compact`): a
//! *stamped frame* (a timestamp receipt, then the frame it names). Splitting and
//! admission never panic; a split message re-joins to exactly its input, its frame is
//! an attestation or a renewal; an admitted message's receive time is the receiver's
//! own clock unless its receipt's signer is listed, and never later than it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slope_mesh::pipeline::{parse_receipt_message, receipt_message};
use slope_proto::limits::MAX_BATCH_ENTRIES;
use slope_proto::{Message, Receipt, Signed};

fn compact(data: &[u8]) {
    use slope_mesh::pipeline::compact::{admit, split_stamped, stamped_message};
    use slope_proto::compact::Kind;
    if let Some((receipt, frame)) = split_stamped(data) {
        assert_eq!(stamped_message(receipt.frame(), frame), data);
        assert!(matches!(
            slope_proto::compact::frame::parse_header(frame),
            Ok(Kind::Attestation | Kind::Renewal)
        ));
        let listed = [(receipt.body().witness, 0u16)];
        let now = 1_700_000_000_000;
        if let Ok(a) = admit(data, &listed, now) {
            assert!(a.rx_ms <= now);
            assert!(a.stamped_by_listed);
        }
    }
    if let Ok(a) = admit(data, &[], 42) {
        assert_eq!(a.rx_ms, 42);
        assert!(!a.stamped_by_listed);
    }
}

fuzz_target!(|data: &[u8]| {
    compact(data);
    let Some((key, frame)) = parse_receipt_message(data) else {
        assert!(data.len() < 32);
        return;
    };
    assert_eq!(receipt_message(&key, frame), data);
    let vk = slope_proto::crypto::verifying_key(&key).ok();
    match slope_proto::decode(frame) {
        Ok(Message::Receipt(receipt)) => {
            if let Some(vk) = &vk {
                let _ = receipt.verify_witness(vk);
            }
            let _ = receipt.body();
        }
        Ok(Message::ReceiptBatch(batch)) => {
            let n = batch.len();
            assert!((1..=MAX_BATCH_ENTRIES).contains(&n));
            assert!(!batch.is_empty());
            let mut last = None;
            let mut count = 0;
            for e in batch.entries() {
                let k = e.order_key();
                assert!(last.is_none_or(|l| l < k), "entries strictly increasing");
                last = Some(k);
                count += 1;
            }
            assert_eq!(count, n);
            let witness = batch.witness();
            assert!(batch.receipts().all(|r| r.witness == witness));
            assert_eq!(batch.receipts().len(), n);
            // What the mesh checks before anything else: the key is the named witness.
            let _ = slope_proto::crypto::witness_id(&key) == witness;
            if let Some(vk) = &vk {
                let _ = batch.verify_witness(vk);
            }
            let _ = (batch.digest(), batch.message(), batch.time_ms());
        }
        // Any other kind is rejected by the mesh; decoding it must not panic either.
        Ok(_) | Err(_) => {}
    }
    // The single-receipt decoder on its own, as before.
    let _ = Signed::<Receipt>::decode(frame);
});
