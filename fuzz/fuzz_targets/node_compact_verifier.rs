//! Suite 2 through the one verifier after a real anchor: a device incepts in suite 1,
//! anchors a short compact chain, attests, renews and goes on in its next chain. The
//! input schedules what an attacker on the air can do with that traffic — deliver the
//! real frames (never before the device sent them), replay them, flip their bytes, send
//! arbitrary bytes, let time pass, resend a mutated anchor — and the verifier must never
//! panic, never authenticate a frame the device did not make, never report a
//! divergence or a renewal conflict for a device that never equivocated, and never
//! follow a renewal the device did not send.
#![no_main]

use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use slope_node::compact::device::{Device, Schedule};
use slope_node::verifier::compact::{self, Event};
use slope_node::verifier::{Config, Outcome, Verifier};
use slope_proto::compact::SignedAnchor;
use slope_proto::{DeviceId, Observation, sample};

const START: u64 = 1_700_000_000_000;
const T: u64 = 60_000;
/// The first chain is short so that the renewal and the second chain are reachable.
const FIRST_LEN: u32 = 12;
const INTERVALS: u32 = 30;

struct World {
    id: DeviceId,
    inception: Vec<u8>,
    anchor: Vec<u8>,
    /// (time the device sent it, frame), in sending order.
    frames: Vec<(u64, Vec<u8>)>,
    /// (first, len) of the chain the device's renewal commits to.
    renewed: (u32, u32),
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let key: SigningKey = sample::key(1);
        let inception = sample::inception(1);
        let id = inception.device_id();
        let schedule = Schedule { start_ms: START, interval_ms: T as u32, delay: 2 };
        let mut device = Device::new(id, &[9; 32], schedule, 1, FIRST_LEN).expect("device");
        let anchor = SignedAnchor::sign(device.anchor(0), &id, &key).expect("anchor");
        device.prepare_renewal(&[10; 32], 64).expect("prepare");
        let mut frames = Vec::new();
        for i in 1..=INTERVALS {
            let t = START + u64::from(i - 1) * T + 1_000;
            // Renewal copies in three intervals well before the first chain ends.
            let frame = if (8..=10).contains(&i) {
                device.renew(t).expect("renew").frame().to_vec()
            } else {
                device.attest(t, &[i as u8; 8]).expect("attest").frame().to_vec()
            };
            frames.push((t, frame));
        }
        World {
            id,
            inception: inception.frame().to_vec(),
            anchor: anchor.frame().to_vec(),
            frames,
            renewed: (FIRST_LEN + 1, 64),
        }
    })
}

fn rx(time_ms: u64) -> Observation {
    Observation { rssi_dbm: -100, snr_qdb: 20, freq_hz: 868_100_000, foff_hz: None, sf: 12, time_ms }
}

fn check(v: &mut Verifier, w: &World) {
    while let Some(o) = v.poll_outcome() {
        let Outcome::Compact(compact::Outcome::Event(e)) = o else {
            continue;
        };
        match e {
            Event::Authenticated(a) => {
                assert!(
                    w.frames.iter().any(|(_, f)| f.as_slice() == a.frame()),
                    "authenticated a frame the device never made: interval {}",
                    a.interval()
                );
            }
            Event::Divergence(c) => assert_ne!(c.device, w.id, "divergence of an honest device"),
            Event::RenewalConflict { device, .. } => {
                assert_ne!(device, w.id, "renewal conflict of an honest device")
            }
            Event::Renewed { device, first, len } if device == w.id => {
                assert_eq!((first, len), w.renewed, "followed a renewal the device did not send")
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let mut v = Verifier::with_compact(
        Config::default(),
        compact::Config { max_pending: 8, max_pending_total: 64, ..compact::Config::default() },
    );
    let o = v.handle_attestation(START, &w.inception, rx(START));
    assert!(matches!(o, Outcome::Extended(_)), "{o:?}");
    let o = v.handle_attestation(START, &w.anchor, rx(START));
    assert!(matches!(o, Outcome::Compact(compact::Outcome::Anchored { .. })), "{o:?}");

    let mut now = START;
    let mut sent = 0usize;
    let mut ops = data.iter().copied();
    while let Some(op) = ops.next() {
        let arg = ops.next().unwrap_or(0);
        match op % 7 {
            // The device's next frame, at the earliest when it was sent.
            0 | 1 => {
                if let Some((t, f)) = w.frames.get(sent) {
                    now = now.max(*t + u64::from(arg) * 100);
                    sent += 1;
                    v.handle_attestation(now, f, rx(now));
                }
            }
            // A frame already on the air, replayed now.
            2 if sent > 0 => {
                let (_, f) = &w.frames[usize::from(arg) % sent];
                v.handle_attestation(now, f, rx(now));
            }
            // A frame already on the air with one byte changed.
            3 if sent > 0 => {
                let mut f = w.frames[usize::from(arg) % sent].1.clone();
                let at = usize::from(ops.next().unwrap_or(0)) % f.len();
                f[at] ^= ops.next().unwrap_or(1).max(1);
                v.handle_attestation(now, &f, rx(now));
            }
            // Arbitrary bytes.
            4 => {
                let bytes: Vec<u8> = ops.by_ref().take(usize::from(arg % 72)).collect();
                v.handle_attestation(now, &bytes, rx(now));
            }
            // Time passes.
            5 => {
                now += u64::from(arg) * 7_000;
                v.handle_timeout(now);
            }
            // The anchor again, possibly with one byte changed.
            6 => {
                let mut a = w.anchor.clone();
                if arg != 0 {
                    let at = usize::from(arg) % a.len();
                    a[at] ^= ops.next().unwrap_or(1).max(1);
                }
                v.handle_attestation(now, &a, rx(now));
            }
            _ => {}
        }
        check(&mut v, w);
    }
    // The same traffic as one batch must not panic either.
    let batch: Vec<(&[u8], Observation)> =
        w.frames.iter().map(|(_, f)| (f.as_slice(), rx(now))).collect();
    let _ = v.handle_batch(now, &batch);
    check(&mut v, w);
});
