//! Test vectors: regenerates `docs/test-vectors/slope-v1.txt` from fixed entropy and
//! times and compares it with the committed file. `SLOPE_BLESS=1 cargo test -p
//! slope-node --test vectors` rewrites the file after a deliberate format change.

use std::fmt::Write;

use ed25519_dalek::SigningKey;
use slope_node::device::storage::{MemSlots, TwoSlot};
use slope_node::device::{Config, MIN_INCEPT_SAMPLES, MIN_ROTATE_SAMPLES, Slope};
use slope_node::verifier::{Config as VConfig, Outcome, Verifier};
use slope_proto::batch::Entry;
use slope_proto::limits::MAX_RECEIPT_BATCH;
use slope_proto::{Event, Heard, NeighbourId, Observation, Receipt, ReceiptBatch, Signed, crypto};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../docs/test-vectors/slope-v1.txt"
);

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn feed(d: &mut Slope<TwoSlot<MemSlots>>, from: u32, n: u32) {
    for i in from..from + n {
        d.handle_entropy(&i.to_le_bytes());
    }
}

fn event_block(out: &mut String, name: &str, frame: &[u8], device: &slope_proto::DeviceId) {
    let e = Event::decode(frame).expect("valid event");
    let kind = match &e {
        Event::Inception(_) => "inception",
        Event::Rotation(_) => "rotation",
        Event::Interaction(_) => "interaction",
    };
    writeln!(out, "[{name}]").ok();
    writeln!(out, "kind = {kind}").ok();
    writeln!(out, "seq = {}", e.seq()).ok();
    writeln!(out, "epoch = {}", e.epoch()).ok();
    writeln!(out, "length = {}", frame.len()).ok();
    writeln!(out, "frame = {}", hex(frame)).ok();
    writeln!(out, "signed_message = {}", hex(&e.message(device))).ok();
    writeln!(out, "digest = {}", hex(&e.digest(device).0)).ok();
    writeln!(out).ok();
}

fn generate() -> String {
    let mut out = String::new();
    out.push_str(
        "# Slope v1 test vectors (suite 1: ed25519 + blake3).\n\
         # Regenerated and compared by `cargo test -p slope-node --test vectors`.\n\
         # Device entropy: samples are the 4-byte little-endian encodings of 0, 1, 2, ...;\n\
         # 256 samples before inception, then samples 1000+ between attestations\n\
         # (128 before each attestation). Device config: interval 900 s, rotation every\n\
         # 2 events. Times in milliseconds. Hex is lowercase, no separators.\n\
         # Every [section] lists: kind, seq, epoch, length, frame (the whole envelope),\n\
         # signed_message (the 32 bytes the ed25519 signature covers) and digest (the\n\
         # event digest; its first 16 bytes are the next event's `prev`).\n\n",
    );
    let config = Config {
        interval_s: 900,
        rotate_every: 2,
        rotate_after_ms: 0,
        max_epoch_events: 8,
    };
    let mut d = Slope::restore(config, TwoSlot::new(MemSlots::default())).expect("fresh");
    feed(&mut d, 0, MIN_INCEPT_SAMPLES);
    let inception = d.incept(0).expect("incept").to_vec();
    let device = d.id().expect("id");
    writeln!(
        out,
        "[device]\nid = {}\nshort_id = {}\n",
        hex(&device.0),
        hex(&device.short().0)
    )
    .ok();
    event_block(&mut out, "inception", &inception, &device);

    let mut frames = vec![inception.clone()];
    let mut n = 0;
    for i in 0..4u32 {
        feed(&mut d, 1000 + i * MIN_ROTATE_SAMPLES, MIN_ROTATE_SAMPLES);
        let heard = [Heard {
            id: NeighbourId([0xa1, 0xb2, 0xc3, 0xd4]),
            seq: 41 + i,
            rssi_dbm: -97,
        }];
        let r = d
            .attest(
                u64::from(i + 1) * 900_000,
                &[i as u8; 8],
                if i % 2 == 1 { &heard } else { &[] },
            )
            .expect("attest");
        for f in r.frames.iter() {
            n += 1;
            event_block(&mut out, &format!("event {n}"), f, &device);
            frames.push(f.to_vec());
        }
    }

    // A witness receipt for the last event, by the gateway key with seed bytes 0x07.
    let gateway = SigningKey::from_bytes(&[7; 32]);
    let last = Event::decode(frames.last().expect("events")).expect("valid");
    let receipt = Signed::witness(
        Receipt {
            witness: crypto::witness_id(gateway.verifying_key().as_bytes()),
            device: device.short(),
            seq: last.seq(),
            event: last.digest(&device).link(),
            observed: Observation {
                rssi_dbm: -109,
                snr_qdb: -22,
                freq_hz: 868_300_000,
                foff_hz: Some(-812),
                sf: 9,
                time_ms: 1_795_000_000_000,
            },
        },
        &gateway,
    )
    .expect("receipt");
    writeln!(
        out,
        "[receipt]\nwitness_public_key = {}\nframe = {}\n",
        hex(gateway.verifying_key().as_bytes()),
        hex(receipt.frame())
    )
    .ok();

    // The same gateway's batched receipt for the last two events (kind 5): entries in
    // increasing (device, seq, event) order, one signature.
    let entries = frames[frames.len() - 2..].iter().map(|f| {
        let e = Event::decode(f).expect("valid");
        Entry {
            device: device.short(),
            seq: e.seq(),
            event: e.digest(&device).link(),
            observed: Observation {
                time_ms: 1_795_000_000_000 + u64::from(e.seq()),
                ..receipt.body().observed
            },
        }
    });
    let mut buf = vec![0u8; MAX_RECEIPT_BATCH];
    let len =
        ReceiptBatch::sign_into(&gateway, 1_795_000_060_000, entries, &mut buf).expect("batch");
    let batch = ReceiptBatch::decode(&buf[..len]).expect("batch decodes");
    writeln!(
        out,
        "[receipt batch]\nwitness_public_key = {}\nentries = {}\nsigned_message = {}\ndigest = {}\nframe = {}\n",
        hex(gateway.verifying_key().as_bytes()),
        batch.len(),
        hex(&batch.message()),
        hex(&batch.digest().0),
        hex(batch.frame())
    )
    .ok();

    // A clone of the device's flash signs a different event at the next position
    // (both first make the same rotation: identical bytes, a duplicate, not a fork).
    let mut clone =
        Slope::restore(config, TwoSlot::new(d.storage().medium().clone())).expect("clone");
    let honest = d.attest(10_000_000, b"honest", &[]).expect("attest");
    let cloned = clone.attest(10_000_000, b"clone", &[]).expect("attest");
    let rx = Observation {
        rssi_dbm: 0,
        snr_qdb: 0,
        freq_hz: 0,
        foff_hz: None,
        sf: 7,
        time_ms: 0,
    };
    let mut v = Verifier::new(VConfig::default());
    for f in frames
        .iter()
        .map(|f| &f[..])
        .chain(honest.frames.iter().map(|f| &f[..]))
    {
        let o = v.handle_attestation(0, f, rx);
        assert!(matches!(o, Outcome::Extended(_)), "{o:?}");
    }
    let mut proof = None;
    for f in cloned.frames.iter() {
        if let Outcome::Divergence(ev) = v.handle_attestation(0, f, rx) {
            proof = Some(ev);
        }
    }
    let ev = proof.expect("clone detected");
    writeln!(
        out,
        "[divergence]\nseq = {}\nproof = {}\n",
        ev.seq,
        hex(&ev.proof)
    )
    .ok();
    out
}

#[test]
fn vectors_match_the_committed_file() {
    let fresh = generate();
    assert_eq!(fresh, generate(), "generation must be deterministic");
    if std::env::var_os("SLOPE_BLESS").is_some() {
        std::fs::write(PATH, &fresh).expect("write vectors");
    }
    let committed = std::fs::read_to_string(PATH).expect("docs/test-vectors/slope-v1.txt exists");
    assert!(
        committed == fresh,
        "test vectors changed: if the format change is deliberate, run with SLOPE_BLESS=1 and document it in docs/protocol.md"
    );
}

#[test]
fn committed_vectors_verify_from_the_text_alone() {
    // What another implementation would do: parse the file, check every frame.
    let text = std::fs::read_to_string(PATH).expect("vectors");
    let unhex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    };
    let mut v = Verifier::new(VConfig::default());
    let rx = Observation {
        rssi_dbm: 0,
        snr_qdb: 0,
        freq_hz: 0,
        foff_hz: None,
        sf: 7,
        time_ms: 0,
    };
    let mut events = 0;
    let mut batches = 0;
    let mut gateway_key = [0u8; 32];
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("frame = ") {
            let bytes = unhex(f);
            if Event::decode(&bytes).is_ok() {
                assert!(matches!(
                    v.handle_attestation(0, &bytes, rx),
                    Outcome::Extended(_)
                ));
                events += 1;
            }
        }
        if let Some(f) = line.strip_prefix("frame = ") {
            if let Ok(b) = ReceiptBatch::decode(&unhex(f)) {
                let key = slope_proto::crypto::verifying_key(&gateway_key).expect("key");
                assert!(b.verify_witness(&key).is_ok());
                batches += 1;
            }
        }
        if let Some(k) = line.strip_prefix("witness_public_key = ") {
            gateway_key = unhex(k).try_into().expect("32-byte key");
        }
        if let Some(p) = line.strip_prefix("proof = ") {
            assert!(slope_node::verifier::verify_divergence_proof(&unhex(p)).is_ok());
        }
    }
    assert!(events >= 6, "only {events} events in the vectors");
    assert_eq!(batches, 1, "one receipt batch in the vectors");
}
