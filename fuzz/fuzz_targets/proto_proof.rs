//! Any bytes as a divergence proof: decoding and verifying never panic, and a proof
//! that verifies names two different events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slope_proto::DivergenceProof;

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = DivergenceProof::decode(data) {
        if let Ok(d) = proof.verify() {
            assert_ne!(d.first, d.second);
        }
    }
});
