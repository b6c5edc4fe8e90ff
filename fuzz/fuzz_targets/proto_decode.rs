//! Any bytes into the message decoder: never a panic, and every accepted message
//! re-encodes to exactly its input (canonical encoding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use slope_proto::{Message, decode};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode(data) {
        let again: &[u8] = match &msg {
            Message::Inception(e) => e.frame(),
            Message::Rotation(e) => e.frame(),
            Message::Interaction(e) => e.frame(),
            Message::Receipt(e) => e.frame(),
            Message::Divergence(_) => data,
            Message::ReceiptBatch(b) => b.frame(),
        };
        assert_eq!(again, data, "accepted a non-canonical encoding");
    }
});
