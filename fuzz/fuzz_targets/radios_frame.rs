//! Fuzz the Slope on-air frame parser: never panics, and anything it accepts re-encodes to
//! the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slope_radios::frame::{encode_frame, parse_frame};

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = parse_frame(data) {
        let mut out = [0u8; 255];
        let n = encode_frame(envelope, &mut out).expect("a parsed envelope always re-encodes");
        assert_eq!(&out[..n], data);
    }
});
