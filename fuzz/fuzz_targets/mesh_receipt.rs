//! Any bytes as a witness-receipt gossip message (`slope_mesh::pipeline`): the split
//! into key and receipt frame, the receipt decode, the key and the witness signature
//! check never panic, and a split message re-joins to exactly its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slope_mesh::pipeline::{parse_receipt_message, receipt_message};
use slope_proto::{Receipt, Signed};

fuzz_target!(|data: &[u8]| {
    let Some((key, frame)) = parse_receipt_message(data) else {
        assert!(data.len() < 32);
        return;
    };
    assert_eq!(receipt_message(&key, frame), data);
    let Ok(receipt) = Signed::<Receipt>::decode(frame) else {
        return;
    };
    if let Ok(vk) = slope_proto::crypto::verifying_key(&key) {
        let _ = receipt.verify_witness(&vk);
    }
    let _ = receipt.body();
});
