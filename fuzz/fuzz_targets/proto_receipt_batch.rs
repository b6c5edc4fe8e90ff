//! Any bytes into the batched-receipt decoder: never a panic; an accepted batch
//! re-encodes to its own signed bytes (canonical), iterates exactly its count of
//! entries, and its signature check returns instead of panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slope_proto::{ReceiptBatch, limits::MAX_RECEIPT_BATCH, sample};

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = ReceiptBatch::decode(data) else {
        return;
    };
    assert_eq!(batch.entries().count(), batch.len());
    assert_eq!(batch.receipts().count(), batch.len());
    let _ = batch.verify_witness(&sample::key(9).verifying_key());
    // Re-sign the decoded entries: with the batch's own witness key the signed bytes
    // must come out identical; the witness id differs otherwise, so compare from the
    // time field on.
    let mut again = vec![0u8; MAX_RECEIPT_BATCH];
    let len = ReceiptBatch::sign_into(&sample::key(9), batch.time_ms(), batch.entries(), &mut again)
        .expect("a decoded batch re-encodes");
    let ours = &again[3 + 8..len - 64];
    let theirs = &batch.signed_bytes()[3 + 8..];
    assert_eq!(ours, theirs, "accepted a non-canonical encoding");
});
