//! Any frames into a verifier that knows one real device: never a panic, and nothing
//! unsigned is ever accepted as an extension or a divergence.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slope_node::verifier::{Config, Outcome, Verifier};
use slope_proto::{Observation, sample};

fuzz_target!(|data: &[u8]| {
    let rx = Observation { rssi_dbm: -90, snr_qdb: 10, freq_hz: 868_100_000, foff_hz: None, sf: 9, time_ms: 0 };
    let inception = sample::inception(1);
    let device = inception.device_id();
    let mut v = Verifier::new(Config { escrow_total: 64, window: 4, ..Config::default() });
    v.handle_attestation(0, inception.frame(), rx);
    v.handle_attestation(1, sample::interaction(&device, 1, 3, 0).frame(), rx);
    // The input is a sequence of length-prefixed frames, verified one by one and as a batch.
    let mut frames = Vec::new();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        frames.push(&tail[..len]);
        rest = &tail[len..];
    }
    for (i, f) in frames.iter().enumerate() {
        let o = v.handle_attestation(2 + i as u64, f, rx);
        if let Outcome::Extended(a) | Outcome::Unlinked(a) = &o {
            // Whatever was accepted for the known device carries a real signature.
            if let slope_proto::Event::Interaction(e) = a.event() {
                if a.device() == &device && e.body().epoch == 0 {
                    let key = sample::key(1).verifying_key();
                    assert!(e.verify(&device, &key).is_ok(), "accepted an unsigned frame");
                }
            }
        }
    }
    let batch: Vec<(&[u8], Observation)> = frames.iter().map(|f| (*f, rx)).collect();
    let _ = v.handle_batch(100, &batch);
    while v.poll_outcome().is_some() {}
});
