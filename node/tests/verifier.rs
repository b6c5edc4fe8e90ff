//! The verifier against real device slopes: extension across lost frames, escrow,
//! duplicates, forgeries, clones, batch equivalence, bounds, and order independence.

mod common;

use common::{Rng, feed, incepted, run, rx};
use proptest::prelude::*;
use slope_node::device::storage::TwoSlot;
use slope_node::device::{Config as DeviceConfig, Slope};
use slope_node::verifier::{
    Config, Missing, Outcome, Snapshot, Verifier, VerifyError, verify_divergence_proof,
};
use slope_proto::{Event, Interaction, Signed};

fn verifier() -> Verifier {
    Verifier::new(Config::default())
}

fn extended(o: &Outcome) -> bool {
    matches!(o, Outcome::Extended(_))
}

#[test]
fn an_honest_slope_with_rotations_extends_every_time() {
    let (mut d, inc) = incepted(1, 5);
    let frames = run(&mut d, &mut Rng(2), 40, 0);
    let rotations = frames
        .iter()
        .filter(|f| matches!(Event::decode(f), Ok(Event::Rotation(_))))
        .count();
    assert!(
        rotations >= 7,
        "expected rotations every 5 events, saw {rotations}"
    );
    let mut v = verifier();
    assert!(extended(&v.handle_attestation(0, &inc, rx(0))));
    for f in &frames {
        let o = v.handle_attestation(1, f, rx(1));
        assert!(extended(&o), "{o:?}");
    }
    let id = d.id().unwrap();
    assert_eq!(v.head(&id).unwrap().0, d.seq().unwrap());
    assert_eq!(v.snapshot(&id).unwrap().epoch, d.epoch().unwrap());
}

#[test]
fn lost_interactions_are_bridged_with_the_current_key() {
    let (mut d, inc) = incepted(3, 1000);
    let frames = run(&mut d, &mut Rng(4), 30, 0);
    let mut v = verifier();
    v.handle_attestation(0, &inc, rx(0));
    let mut rng = Rng(5);
    let mut gaps = 0;
    for f in &frames {
        if rng.chance(0.3) {
            continue;
        }
        match v.handle_attestation(1, f, rx(1)) {
            Outcome::Extended(a) => gaps += a.gap(),
            other => panic!("{other:?}"),
        }
    }
    assert!(gaps > 0);
}

#[test]
fn a_missed_rotation_escrows_until_it_arrives_from_anywhere() {
    let (mut d, inc) = incepted(6, 4);
    let frames = run(&mut d, &mut Rng(7), 12, 0);
    let (rotation_at, _) = frames
        .iter()
        .enumerate()
        .find(|(_, f)| matches!(Event::decode(f), Ok(Event::Rotation(_))))
        .unwrap();
    let mut v = verifier();
    v.handle_attestation(0, &inc, rx(0));
    let id = d.id().unwrap();
    for f in &frames[..rotation_at] {
        assert!(extended(&v.handle_attestation(1, f, rx(1))));
    }
    // The rotation is lost; the next interaction needs epoch 1.
    let after = &frames[rotation_at + 1];
    assert_eq!(
        v.handle_attestation(2, after, rx(2)),
        Outcome::Escrowed(Missing::Rotation {
            device: id,
            epoch: 1
        })
    );
    assert!(v.poll_outcome().is_none());
    // The rotation arrives later (from gossip, say): the escrowed frame is released.
    assert!(extended(&v.handle_attestation(
        3,
        &frames[rotation_at],
        rx(3)
    )));
    let released = v.poll_outcome().expect("escrowed frame released");
    assert!(extended(&released), "{released:?}");
    assert_eq!(v.escrow_stats().held, 0);
}

#[test]
fn events_before_the_inception_wait_for_it() {
    let (mut d, inc) = incepted(8, 100);
    let frames = run(&mut d, &mut Rng(9), 3, 0);
    let mut v = verifier();
    let short = d.id().unwrap().short();
    assert_eq!(
        v.handle_attestation(0, &frames[0], rx(0)),
        Outcome::Escrowed(Missing::Inception(short))
    );
    assert!(extended(&v.handle_attestation(0, &inc, rx(0))));
    assert!(extended(&v.poll_outcome().unwrap()));
}

#[test]
fn identical_receptions_are_duplicates_never_divergence() {
    let (mut d, inc) = incepted(10, 100);
    let frames = run(&mut d, &mut Rng(11), 3, 0);
    let mut v = verifier();
    v.handle_attestation(0, &inc, rx(0));
    v.handle_attestation(0, &frames[1], rx(0));
    for _ in 0..3 {
        assert!(matches!(
            v.handle_attestation(5, &frames[1], rx(5)),
            Outcome::Duplicate { seq: 2, .. }
        ));
        assert!(matches!(
            v.handle_attestation(5, &inc, rx(5)),
            Outcome::Duplicate { seq: 0, .. }
        ));
    }
}

#[test]
fn a_forged_frame_at_an_occupied_position_is_a_rejection_not_a_fork() {
    let (mut d, inc) = incepted(12, 100);
    let frames = run(&mut d, &mut Rng(13), 2, 0);
    let mut v = verifier();
    v.handle_attestation(0, &inc, rx(0));
    v.handle_attestation(0, &frames[0], rx(0));
    // Same position, other payload, the old signature kept.
    let original = Signed::<Interaction>::decode(&frames[0]).unwrap();
    let mut body = original.body().clone();
    body.payload[0] ^= 0xff;
    let mut forged = frames[0].clone();
    let payload_at = forged.len() - 64 - body.payload.len();
    forged[payload_at] ^= 0xff;
    assert_eq!(
        Signed::<Interaction>::decode(&forged).unwrap().body(),
        &body
    );
    assert_eq!(
        v.handle_attestation(1, &forged, rx(1)),
        Outcome::Rejected(VerifyError::BadSignature)
    );
    assert!(v.snapshot(&d.id().unwrap()).unwrap().divergence.is_none());
}

/// Copies a device's flash: the clone continues the same slope.
fn clone_of(d: &common::Device) -> common::Device {
    Slope::restore(
        DeviceConfig {
            rotate_every: 100,
            rotate_after_ms: 0,
            max_epoch_events: 400,
            ..DeviceConfig::default()
        },
        TwoSlot::new(d.storage().medium().clone()),
    )
    .unwrap()
}

#[test]
fn a_clone_that_speaks_is_caught_with_a_proof_anyone_can_check() {
    let (mut d, inc) = incepted(14, 100);
    run(&mut d, &mut Rng(15), 5, 0);
    let mut clone = clone_of(&d);
    let honest = d.attest(10_000_000, b"honest", &[]).unwrap().frames[0].to_vec();
    let cloned = clone.attest(10_000_000, b"clone", &[]).unwrap().frames[0].to_vec();

    let mut proofs = Vec::new();
    for order in [[&honest, &cloned], [&cloned, &honest]] {
        let mut v = verifier();
        v.handle_attestation(0, &inc, rx(0));
        assert!(extended(&v.handle_attestation(1, order[0], rx(1))));
        match v.handle_attestation(2, order[1], rx(2)) {
            Outcome::Divergence(ev) => {
                assert_eq!(ev.seq, 6);
                let checked = verify_divergence_proof(&ev.proof).unwrap();
                assert_eq!(checked.device, d.id().unwrap());
                proofs.push(ev.proof.clone());
            }
            other => panic!("{other:?}"),
        }
    }
    // The proof does not depend on which copy was heard first.
    assert_eq!(proofs[0], proofs[1]);
}

#[test]
fn a_clone_is_caught_across_rotations_and_gaps() {
    let (mut d, inc) = incepted(16, 3);
    let mut rng = Rng(17);
    let early = run(&mut d, &mut rng, 7, 0);
    let mut clone = clone_of(&d);
    feed(&mut clone, &mut Rng(99), 200);
    let honest = run(&mut d, &mut rng, 4, 50_000_000);
    let cloned = run(&mut clone, &mut Rng(18), 4, 60_000_000);
    let mut v = verifier();
    v.handle_attestation(0, &inc, rx(0));
    for f in early.iter().chain(&honest) {
        assert!(extended(&v.handle_attestation(1, f, rx(1))));
    }
    let caught = cloned
        .iter()
        .map(|f| v.handle_attestation(2, f, rx(2)))
        .find_map(|o| match o {
            Outcome::Divergence(ev) => Some(ev),
            _ => None,
        })
        .expect("clone detected");
    assert!(verify_divergence_proof(&caught.proof).is_ok());
}

/// An honest slope's frames (inception first) with, right after frame `at`, a copy of it
/// whose signature is broken.
fn frames_with_forgery(seed: u64, rotate_every: u32, n: u32, at: usize) -> Vec<Vec<u8>> {
    let (mut d, inc) = incepted(seed, rotate_every);
    let mut frames = vec![inc];
    frames.extend(run(&mut d, &mut Rng(seed + 1), n, 0));
    let mut forged = frames[at].clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    frames.insert(at + 1, forged);
    frames
}

#[test]
fn batch_outcomes_equal_sequential_outcomes() {
    let mut frames = frames_with_forgery(20, 4, 20, 5);
    frames.insert(3, frames[2].clone());
    frames.push(vec![1, 2, 3]);
    let items: Vec<(&[u8], _)> = frames.iter().map(|f| (&f[..], rx(9))).collect();
    let mut a = verifier();
    let sequential: Vec<Outcome> = frames
        .iter()
        .map(|f| a.handle_attestation(9, f, rx(9)))
        .collect();
    let mut b = verifier();
    let batched = b.handle_batch(9, &items);
    assert_eq!(sequential, batched);
    assert!(
        batched
            .iter()
            .any(|o| matches!(o, Outcome::Rejected(VerifyError::BadSignature)))
    );
}

#[test]
fn the_escrow_and_the_device_table_are_bounded() {
    let config = Config {
        escrow_total: 16,
        escrow_per_key: 2,
        max_devices: 2,
        ..Config::default()
    };
    let mut v = Verifier::new(config);
    // A flood of unverifiable frames claiming many unknown devices.
    for seed in 0..40u8 {
        let inc = slope_proto::sample::inception(seed);
        let f = slope_proto::sample::interaction(&inc.device_id(), seed, 5, 0);
        v.handle_attestation(0, f.frame(), rx(0));
        v.handle_attestation(0, f.frame(), rx(0));
    }
    assert_eq!(v.escrow_stats().held, 16);
    assert!(v.escrow_stats().evicted_total >= 24);
    // Escrow expires.
    v.handle_timeout(Config::default().escrow_ttl_ms + 1);
    assert_eq!(v.escrow_stats().held, 0);
    // At capacity, new inceptions are refused.
    for seed in 0..2u8 {
        assert!(extended(&v.handle_attestation(
            0,
            slope_proto::sample::inception(100 + seed).frame(),
            rx(0)
        )));
    }
    assert_eq!(
        v.handle_attestation(0, slope_proto::sample::inception(110).frame(), rx(0)),
        Outcome::Rejected(VerifyError::Capacity)
    );
}

/// A device's key history stops at `max_epochs`: the rotation past it and every later
/// frame are refused (not escrowed: no key could ever verify them), the frames of the
/// last allowed epoch keep extending, and what the verifier holds stays at the bound.
#[test]
fn the_key_history_stops_at_max_epochs() {
    let (mut d, inc) = incepted(30, 2);
    let frames = run(&mut d, &mut Rng(31), 24, 0);
    let epoch_of = |f: &[u8]| Event::decode(f).map(|e| e.epoch()).unwrap();
    assert!(
        frames.iter().any(|f| epoch_of(f) > 4),
        "the device rotated past 4"
    );
    let mut v = Verifier::new(Config {
        max_epochs: 3,
        ..Config::default()
    });
    assert!(extended(&v.handle_attestation(0, &inc, rx(0))));
    let mut refused = 0;
    for f in &frames {
        let o = v.handle_attestation(1, f, rx(1));
        if epoch_of(f) > 3 {
            assert_eq!(o, Outcome::Rejected(VerifyError::EpochLimit), "{o:?}");
            refused += 1;
        } else {
            assert!(extended(&o), "{o:?}");
        }
    }
    assert!(refused > 0);
    let id = d.id().unwrap();
    assert_eq!(v.snapshot(&id).unwrap().epoch, 3);
    assert_eq!(
        v.establishments(&id).len(),
        4,
        "the inception and 3 rotations"
    );
    assert_eq!(v.escrow_stats().held, 0);
    // The same frames in one batch: the same outcomes.
    let mut w = Verifier::new(Config {
        max_epochs: 3,
        ..Config::default()
    });
    let batch: Vec<(&[u8], _)> = std::iter::once(&inc)
        .chain(&frames)
        .map(|f| (&f[..], rx(1)))
        .collect();
    let outcomes = w.handle_batch(1, &batch);
    let limited = outcomes
        .iter()
        .filter(|o| **o == Outcome::Rejected(VerifyError::EpochLimit))
        .count();
    assert_eq!(limited, refused);
    assert_eq!(w.snapshot(&id).unwrap().epoch, 3);
}

/// A device that rotates at every event reaches `MAX_EPOCHS`, then keeps its last key
/// (past `max_epoch_events`, which binds only while a rotation is due) and every frame it
/// makes stays verifiable by a verifier with the default bound.
#[test]
fn a_device_stops_rotating_at_max_epochs_and_stays_verifiable() {
    use slope_proto::limits::MAX_EPOCHS;
    let (mut d, inc) = incepted(40, 1);
    let mut rng = Rng(41);
    let mut v = verifier();
    assert!(extended(&v.handle_attestation(0, &inc, rx(0))));
    let extra = 20;
    for i in 0..MAX_EPOCHS + extra {
        feed(&mut d, &mut rng, 128);
        let released = d.attest(u64::from(i) * 900_000, &[1], &[]).unwrap();
        for f in released.frames.iter() {
            let o = v.handle_attestation(1, f, rx(1));
            assert!(extended(&o), "event {i}: {o:?}");
        }
    }
    assert_eq!(d.epoch().unwrap(), MAX_EPOCHS);
    let id = d.id().unwrap();
    assert_eq!(v.snapshot(&id).unwrap().epoch, MAX_EPOCHS);
    assert_eq!(v.head(&id).unwrap().0, d.seq().unwrap());
}

#[test]
fn events_older_than_the_window_are_historic() {
    let (mut d, inc) = incepted(22, 1000);
    let frames = run(&mut d, &mut Rng(23), 20, 0);
    let mut v = Verifier::new(Config {
        window: 4,
        ..Config::default()
    });
    v.handle_attestation(0, &inc, rx(0));
    for f in &frames[10..] {
        assert!(extended(&v.handle_attestation(1, f, rx(1))));
    }
    assert!(matches!(
        v.handle_attestation(2, &frames[2], rx(2)),
        Outcome::Historic(_)
    ));
}

fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// The verifier's view of `device` after hearing `frames` in the order `order` shuffles
/// them into (escrow releases drained), with a window that holds the whole set.
fn snapshot_after(
    frames: &[Vec<u8>],
    order: u64,
    device: &slope_proto::DeviceId,
) -> Option<Snapshot> {
    let mut fs = frames.to_vec();
    shuffle(&mut fs, &mut Rng(order));
    let mut v = Verifier::new(Config {
        window: 16,
        ..Config::default()
    });
    for f in &fs {
        v.handle_attestation(0, f, rx(0));
    }
    while v.poll_outcome().is_some() {}
    v.snapshot(device)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Any arrival order of one honest slope (with duplicates, rotations and lost
    /// frames) leaves the same state.
    #[test]
    fn order_does_not_change_the_final_state(seed in any::<u64>(), order_a in any::<u64>(), order_b in any::<u64>()) {
        let (mut d, inc) = incepted(seed, 3);
        let mut rng = Rng(seed ^ 0x55);
        let mut frames = vec![inc];
        frames.extend(run(&mut d, &mut rng, 6, 0));
        let dup = frames[rng.below(frames.len() as u64) as usize].clone();
        frames.push(dup);
        let id = d.id().unwrap();
        let finals: Vec<_> = [order_a, order_b].iter().map(|&o| snapshot_after(&frames, o, &id)).collect();
        prop_assert!(finals[0].is_some());
        prop_assert_eq!(&finals[0], &finals[1]);
        prop_assert_eq!(finals[0].as_ref().unwrap().window.len(), frames.len() - 1);
    }

    /// Whatever order a device's frames arrive in, the key history held for it never
    /// passes `max_epochs`, and nothing past it waits in escrow.
    #[test]
    fn no_arrival_order_passes_max_epochs(seed in any::<u64>(), order in any::<u64>(), max in 0u32..4) {
        let (mut d, inc) = incepted(seed, 1);
        let mut rng = Rng(seed ^ 0xaa);
        let mut frames = vec![inc];
        frames.extend(run(&mut d, &mut rng, 10, 0));
        shuffle(&mut frames, &mut Rng(order));
        // An escrow that holds the whole slope, so no frame is lost to its bound.
        let mut v = Verifier::new(Config { max_epochs: max, escrow_per_key: 64, ..Config::default() });
        for f in &frames {
            v.handle_attestation(0, f, rx(0));
        }
        while v.poll_outcome().is_some() {}
        let id = d.id().unwrap();
        let snap = v.snapshot(&id).unwrap();
        prop_assert!(snap.epoch <= max);
        prop_assert_eq!(v.establishments(&id).len() as u32, snap.epoch + 1);
        // Every frame was decided: nothing waits for a rotation that will be refused.
        prop_assert_eq!(v.escrow_stats().held, 0);
        prop_assert_eq!(snap.epoch, max.min(d.epoch().unwrap()));
    }

    /// Fork detection does not depend on arrival order: the same proof every time.
    #[test]
    fn fork_detection_does_not_depend_on_order(seed in any::<u64>(), order_a in any::<u64>(), order_b in any::<u64>()) {
        let (mut d, inc) = incepted(seed, 100);
        let mut rng = Rng(seed ^ 0xaa);
        let mut frames = vec![inc];
        frames.extend(run(&mut d, &mut rng, 2, 0));
        let mut clone = clone_of(&d);
        frames.extend(run(&mut d, &mut rng, 2, 10_000_000));
        frames.extend(run(&mut clone, &mut Rng(seed), 2, 20_000_000));
        let id = d.id().unwrap();
        let finals: Vec<_> = [order_a, order_b]
            .iter()
            .map(|&o| snapshot_after(&frames, o, &id).and_then(|s| s.divergence))
            .collect();
        prop_assert!(finals[0].is_some(), "fork not detected");
        prop_assert_eq!(&finals[0], &finals[1]);
    }

    /// Arbitrary bytes never panic the verifier and are never accepted.
    #[test]
    fn garbage_never_panics_or_extends(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let (_, inc) = incepted(1, 100);
        let mut v = verifier();
        v.handle_attestation(0, &inc, rx(0));
        let o = v.handle_attestation(0, &bytes, rx(0));
        prop_assert!(!matches!(o, Outcome::Extended(_) | Outcome::Divergence(_)));
    }
}

#[test]
fn proofs_build_from_stored_frames_and_release_clears_a_divergence() {
    let (mut d, inc) = incepted(30, 3);
    let frames = run(&mut d, &mut Rng(31), 5, 0);
    let mut clone = clone_of(&d);
    let honest = d
        .attest(90_000_000, b"h", &[])
        .unwrap()
        .frames
        .last()
        .unwrap()
        .to_vec();
    let cloned = clone
        .attest(90_000_000, b"c", &[])
        .unwrap()
        .frames
        .last()
        .unwrap()
        .to_vec();
    let mut v = verifier();
    v.handle_attestation(0, &inc, rx(0));
    for f in &frames {
        v.handle_attestation(0, f, rx(0));
    }
    let id = d.id().unwrap();
    let establishments: Vec<Vec<u8>> = v.establishments(&id).iter().map(|f| f.to_vec()).collect();
    let refs: Vec<&[u8]> = establishments.iter().map(|f| &f[..]).collect();
    let proof = slope_node::verifier::build_proof(&refs, &honest, &cloned).unwrap();
    assert_eq!(verify_divergence_proof(&proof).unwrap().device, id);
    assert!(slope_node::verifier::build_proof(&refs, &honest, &honest).is_err());

    v.handle_attestation(1, &honest, rx(1));
    assert!(matches!(
        v.handle_attestation(1, &cloned, rx(1)),
        Outcome::Divergence(_)
    ));
    assert!(v.snapshot(&id).unwrap().divergence.is_some());
    assert!(v.release(&id));
    assert!(v.snapshot(&id).unwrap().divergence.is_none());
    assert!(v.forget(&id));
    assert!(v.snapshot(&id).is_none());
}

/// Remembered checks and the number of hits.
type Seen = std::sync::Arc<std::sync::Mutex<(std::collections::BTreeMap<Vec<u8>, bool>, usize)>>;

/// A shared memo: counts the checks it saved, and never changes an outcome.
struct Memo {
    seen: Seen,
}

impl slope_node::verifier::SignatureMemo for Memo {
    fn get(&self, key: &[u8; 32], message: &[u8; 32], signature: &[u8; 64]) -> Option<bool> {
        let k = [&key[..], &message[..], &signature[..]].concat();
        let mut g = self.seen.lock().unwrap();
        let hit = g.0.get(&k).copied();
        if hit.is_some() {
            g.1 += 1;
        }
        hit
    }
    fn put(&mut self, key: &[u8; 32], message: &[u8; 32], signature: &[u8; 64], valid: bool) {
        let k = [&key[..], &message[..], &signature[..]].concat();
        self.seen.lock().unwrap().0.insert(k, valid);
    }
}

#[test]
fn a_shared_signature_memo_saves_work_and_changes_no_outcome() {
    let frames = frames_with_forgery(40, 3, 12, 4);
    let shared: Seen = Default::default();
    let mut plain = verifier();
    let expected: Vec<Outcome> = frames
        .iter()
        .map(|f| plain.handle_attestation(0, f, rx(0)))
        .collect();
    for _ in 0..3 {
        let mut v = verifier();
        v.set_signature_memo(Box::new(Memo {
            seen: shared.clone(),
        }));
        let got: Vec<Outcome> = frames
            .iter()
            .map(|f| v.handle_attestation(0, f, rx(0)))
            .collect();
        assert_eq!(got, expected);
    }
    // The second and third verifiers found every check in the memo.
    assert_eq!(shared.lock().unwrap().1, 2 * frames.len());
}

#[test]
fn the_memo_serves_batches_too() {
    let frames = frames_with_forgery(42, 4, 16, 6);
    let items: Vec<(&[u8], _)> = frames.iter().map(|f| (&f[..], rx(0))).collect();
    let expected = verifier().handle_batch(0, &items);
    let shared: Seen = Default::default();
    for _ in 0..3 {
        let mut v = verifier();
        v.set_signature_memo(Box::new(Memo {
            seen: shared.clone(),
        }));
        assert_eq!(v.handle_batch(0, &items), expected);
    }
    assert!(shared.lock().unwrap().1 >= 2 * (frames.len() - 1));
}

/// Counts the checks a verifier computed (every computed check is remembered).
struct Puts(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl slope_node::verifier::SignatureMemo for Puts {
    fn get(&self, _: &[u8; 32], _: &[u8; 32], _: &[u8; 64]) -> Option<bool> {
        None
    }
    fn put(&mut self, _: &[u8; 32], _: &[u8; 32], _: &[u8; 64], _: bool) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_batch_checks_no_frame_it_holds_or_has_already_queued() {
    let (mut d, inc) = incepted(50, 4);
    let mut frames = vec![inc];
    // Fewer frames than the window (8 positions): every one stays held.
    frames.extend(run(&mut d, &mut Rng(51), 6, 0));
    // Every frame twice in a row (two RF chains, say).
    let twice: Vec<(&[u8], _)> = frames
        .iter()
        .flat_map(|f| [(&f[..], rx(0)), (&f[..], rx(0))])
        .collect();
    let mut sequential = verifier();
    let expected: Vec<Outcome> = twice
        .iter()
        .map(|(f, r)| sequential.handle_attestation(0, f, *r))
        .collect();
    let checks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut v = verifier();
    v.set_signature_memo(Box::new(Puts(checks.clone())));
    assert_eq!(v.handle_batch(0, &twice), expected);
    let first = checks.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        first <= frames.len(),
        "{first} checks for {} distinct frames",
        frames.len()
    );
    // The same frames again: all held, none checked.
    let again = v.handle_batch(1, &twice);
    assert!(again.iter().all(|o| matches!(o, Outcome::Duplicate { .. })));
    assert_eq!(checks.load(std::sync::atomic::Ordering::Relaxed), first);
}
