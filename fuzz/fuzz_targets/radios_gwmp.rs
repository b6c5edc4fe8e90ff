//! Fuzz the GWMP (Semtech UDP) upstream parsing: datagram header, then the PUSH_DATA JSON
//! body, every `rxpk`, its metadata and its frame classification, as the forwarder's socket
//! loop does. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slope_radios::forwarder::parse_push_data;
use slope_radios::forwarder::wire::{ack, parse_upstream};
use slope_radios::frame::parse_frame;

fuzz_target!(|data: &[u8]| {
    // The body alone, so the fuzzer reaches the JSON without learning the header first.
    for body in [data, parse_upstream(data).map(|up| up.body).unwrap_or_default()] {
        if let Ok(push) = parse_push_data(body) {
            for rxpk in push.rxpk.into_iter().flatten() {
                let _ = rxpk.meta();
                let _ = parse_frame(&rxpk.data);
            }
        }
    }
    if let Ok(up) = parse_upstream(data) {
        let _ = ack(&up);
    }
});
