//! Any bytes into the suite-2 decoder and proof checker: never a panic, and every
//! accepted frame re-encodes to exactly its input (canonical encoding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use slope_proto::compact::{self, Message};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = compact::decode(data) {
        let again: &[u8] = match &msg {
            Message::Anchor(a) => a.frame(),
            Message::Attestation(a) => a.frame(),
            Message::Renewal(r) => r.frame(),
            Message::Receipt(r) => r.frame(),
            _ => data,
        };
        assert_eq!(again, data, "accepted a non-canonical encoding");
        if let Message::Divergence(p) = msg {
            let _ = p.verify(10_000);
        }
    }
});
