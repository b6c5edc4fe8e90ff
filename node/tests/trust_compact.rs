//! Compact (suite-2) attestations in the trust engine: a device climbs with suite-1
//! attestations, anchors a compact chain with its suite-1 key and keeps its scope
//! speaking compact frames (through the one verifier, then `Engine::handle_compact`);
//! lost intervals count as loss; receipts name the compact frame; the lineage records
//! compact observations that `lineage::verify` re-checks (frame, receipts) and that
//! `verify_replay` and `Engine::restore` replay (property test: restore ≡ never-stopped
//! at any cut point); edits to compact records are caught.

#[path = "trust_support.rs"]
mod support;

use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use slope_node::Millis;
use slope_node::compact::device::{Device as Chain, Schedule};
use slope_node::lineage::{self, Entry, Memory};
use slope_node::proto::compact::proof::Parts;
use slope_node::proto::compact::{
    CompactProof, Receipt as CompactReceipt, SignedAnchor, crypto as pcrypto,
};
use slope_node::proto::{Observation, Receipt, Signed, crypto, sample};
use slope_node::trust::compact::receipt_digest;
use slope_node::trust::{Admission, Engine, Policy, Scope, VerifiedReceipt};
use slope_node::verifier::compact::{self as vc, Event as CompactEvent, VerifiedCompact};
use slope_node::verifier::{Config, Outcome, Verifier};
use support::*;

const T0: Millis = 1_795_000_000_000;
/// Compact interval: the suite-1 attestation period of `run_honest`.
const T: u64 = 900_000;

/// A signed receipt by `g` naming the compact attestation `att`.
fn compact_receipt(g: &Gateway, att: &VerifiedCompact, observed: Observation) -> Signed<Receipt> {
    let body = Receipt {
        witness: crypto::witness_id(g.key.verifying_key().as_bytes()),
        device: att.device().short(),
        seq: att.interval(),
        event: receipt_digest(att.frame()).link(),
        observed,
    };
    Signed::witness(body, &g.key).expect("receipt")
}

/// One input of a run, as the engine takes it.
#[allow(clippy::large_enum_variant)] // a test's list of inputs
enum Input {
    Suite1(
        slope_node::verifier::VerifiedAttestation,
        Vec<Signed<Receipt>>,
    ),
    Compact(VerifiedCompact, Vec<Signed<Receipt>>),
}

/// A device that climbs with `n1` suite-1 attestations (heard by the local radio and
/// both gateways), anchors a compact chain and sends a compact frame in each interval
/// `sent` allows (heard by the gateways `heard(i)` selects: bit 0 = gateway 1, bit 1 =
/// gateway 2). Gives the inputs in order, with the `now` of each; the frames go through
/// the one verifier, so every `VerifiedCompact` is a real one.
fn scenario(
    seed: u64,
    n1: u32,
    intervals: u32,
    sent: impl Fn(u32) -> bool,
    heard: impl Fn(u32) -> u8,
) -> (Vec<(Millis, Input)>, Vec<Gateway>, slope_proto::DeviceId) {
    let gws = vec![Gateway::new(11, 2, 300), Gateway::new(12, 3, -450)];
    let mut rng = Rng(seed);
    let mut dev = Device::new(7);
    let mut now = T0;
    let mut out = Vec::new();
    let mut v = Verifier::with_compact(Config::default(), vc::Config::default());
    // The verifier learns the suite-1 key from the inception.
    let o = v.handle_attestation(now, dev.inception.frame(), link_rf(&mut rng, 0, now));
    assert!(matches!(o, Outcome::Extended(_)), "{o:?}");
    for k in 0..n1 {
        let event = if k == 0 { dev.incept() } else { dev.next(&[]) };
        let att = verified(&dev, event, link_rf(&mut rng, 0, now), now, 0);
        let rs = gws
            .iter()
            .enumerate()
            .map(|(i, g)| g.receipt(&att, link_rf(&mut rng, i + 1, now)))
            .collect();
        out.push((now, Input::Suite1(att, rs)));
        now += T;
    }
    // The compact chain, anchored by the suite-1 key; interval 1 starts now.
    let schedule = Schedule {
        start_ms: now,
        interval_ms: T as u32,
        delay: 2,
    };
    let mut chain = Chain::new(dev.id, &[seed as u8; 32], schedule, 1, 4096).expect("chain");
    let anchor =
        SignedAnchor::sign(chain.anchor(0), &dev.id, &sample::key(dev.seed)).expect("anchor");
    let o = v.handle_attestation(now, anchor.frame(), link_rf(&mut rng, 0, now));
    assert!(
        matches!(o, Outcome::Compact(vc::Outcome::Anchored { .. })),
        "{o:?}"
    );
    for i in 1..=intervals {
        let start = schedule.start_ms + u64::from(i - 1) * T;
        let rx = start + 3_000;
        if sent(i) {
            let frame = chain.attest(start + 1_000, &[i as u8; 6]).expect("attest");
            let o = v.handle_attestation(rx, frame.frame(), link_rf(&mut rng, 0, rx));
            assert!(
                matches!(o, Outcome::Compact(vc::Outcome::Frame(_))),
                "{o:?}"
            );
        }
        while let Some(o) = v.poll_outcome() {
            let Outcome::Compact(vc::Outcome::Event(CompactEvent::Authenticated(a))) = o else {
                panic!("unexpected {o:?}");
            };
            let bits = heard(a.interval());
            let rs = gws
                .iter()
                .enumerate()
                .filter(|(k, _)| bits & (1 << k) != 0)
                .map(|(k, g)| compact_receipt(g, &a, link_rf(&mut rng, k + 1, a.rx_ms())))
                .collect();
            out.push((rx, Input::Compact(a, rs)));
        }
    }
    (out, gws, dev.id)
}

fn fresh(gws: &[Gateway]) -> Engine<Memory> {
    let refs: Vec<&Gateway> = gws.iter().collect();
    engine(Policy::default(), &refs, T0 - 1)
}

/// A fresh engine for `gws` fed every input; the time after the last one.
fn fed(gws: &[Gateway], inputs: &[(Millis, Input)]) -> (Engine<Memory>, Millis) {
    let mut e = fresh(gws);
    let mut now = T0;
    for (t, input) in inputs {
        feed(&mut e, *t, input);
        now = *t;
    }
    (e, now)
}

fn verify_all<S: lineage::Storage>(e: &Engine<S>, rs: &[Signed<Receipt>]) -> Vec<VerifiedReceipt> {
    rs.iter()
        .map(|r| e.verify_receipt(r).expect("receipt verifies"))
        .collect()
}

fn feed<S: lineage::Storage>(
    e: &mut Engine<S>,
    now: Millis,
    input: &Input,
) -> slope_node::trust::Decision {
    match input {
        Input::Suite1(att, rs) => {
            let rs = verify_all(e, rs);
            e.handle_attestation(now, att, &rs).expect("decision")
        }
        Input::Compact(att, rs) => {
            let rs = verify_all(e, rs);
            e.handle_compact(now, att, &rs).expect("decision")
        }
    }
}

fn export(e: &Engine<Memory>) -> Vec<u8> {
    e.lineage().export(&sample::key(AUTHOR)).expect("export")
}

fn author() -> [u8; 32] {
    sample::key(AUTHOR).verifying_key().to_bytes()
}

#[test]
fn a_device_climbs_in_suite_one_and_keeps_its_scope_in_compact() {
    let (inputs, gws, id) = scenario(0xc0_ffee, 60, 40, |_| true, |_| 0b11);
    let mut e = fresh(&gws);
    let mut compact = 0;
    let mut last = 0;
    for (now, input) in &inputs {
        let d = feed(&mut e, *now, input);
        last = *now;
        if let Input::Compact(..) = input {
            compact += 1;
            assert_eq!(
                d.admission,
                Admission::Full,
                "compact decision {compact}: {d:?}"
            );
            assert!(d.grant.is_some_and(|g| g.scope == Scope::Full), "{d:?}");
            assert!(d.weights.corroboration > 0);
        }
    }
    // Frames 39 and 40 wait for the frames that disclose their keys.
    assert_eq!(compact, 38);
    assert_eq!(e.grant(&id, last).map(|g| g.scope), Some(Scope::Full));
    let h = e.hot(&id).expect("tracked");
    assert_eq!(h.depth, 60 + 38);
    assert_eq!(h.lost, 0);
    assert_eq!(h.compact_head, 38);
    assert_eq!(h.head_seq, 59);
    let report = lineage::verify(&export(&e), &author()).expect("verifies");
    assert_eq!(report.compact, 38);
    assert_eq!(report.observations, 60);
    assert_eq!(report.receipts, 2 * (60 + 38));
    lineage::verify_replay(&export(&e), &author()).expect("replays");
}

#[test]
fn lost_compact_intervals_count_as_loss() {
    // Intervals 10..=14 never sent: five positions lost.
    let (inputs, gws, id) = scenario(3, 30, 30, |i| !(10..15).contains(&i), |_| 0b11);
    let mut e = fresh(&gws);
    for (now, input) in &inputs {
        feed(&mut e, *now, input);
    }
    let h = e.hot(&id).expect("tracked");
    assert_eq!(h.lost, 5);
    assert_eq!(h.compact_head, 28);
}

#[test]
fn only_receipts_naming_the_compact_frame_count_and_are_logged() {
    let (inputs, gws, id) = scenario(5, 20, 6, |_| true, |_| 0b11);
    let mut e = fresh(&gws);
    let mut compact = inputs
        .iter()
        .filter_map(|(now, i)| match i {
            Input::Compact(a, rs) => Some((*now, a.clone(), rs.clone())),
            Input::Suite1(..) => None,
        })
        .collect::<Vec<_>>();
    for (now, input) in &inputs {
        if let Input::Suite1(..) = input {
            feed(&mut e, *now, input);
        }
    }
    // The receipts of interval 2 handed with interval 1: they name another frame.
    let (now, a1, _) = compact.remove(0);
    let (_, _, rs2) = compact.remove(0);
    let rs = verify_all(&e, &rs2);
    assert!(rs.iter().all(|r| !r.names_compact(&a1)));
    let d = e.handle_compact(now, &a1, &rs).expect("decision");
    assert_eq!(d.device, id);
    let ex = export(&e);
    let logged = records(&ex)
        .into_iter()
        .find_map(|r| match r.entry {
            Entry::Compact(o) => Some(o.receipts.len()),
            _ => None,
        })
        .expect("a compact record");
    assert_eq!(logged, 0, "receipts naming another frame are not logged");
    lineage::verify_replay(&ex, &author()).expect("replays");
}

/// An engine run over `inputs`, and the index of every compact observation record.
fn run(inputs: &[(Millis, Input)], gws: &[Gateway]) -> (Engine<Memory>, Vec<usize>) {
    let mut e = fresh(gws);
    for (now, input) in inputs {
        feed(&mut e, *now, input);
    }
    let ex = export(&e);
    let at = records(&ex)
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.entry, Entry::Compact(_)))
        .map(|(i, _)| i)
        .collect();
    (e, at)
}

#[test]
fn edits_to_compact_records_are_caught() {
    let (inputs, gws, _) = scenario(9, 12, 10, |_| true, |_| 0b11);
    let (e, at) = run(&inputs, &gws);
    let ex = export(&e);
    let k = at[3];
    // Another interval: the frame does not say it.
    let edited = rewrite(&ex, k, |r| {
        if let Entry::Compact(o) = &mut r.entry {
            o.interval += 1;
        }
    });
    assert!(matches!(
        lineage::verify(&edited, &author()),
        Err(lineage::VerifyError::Frame { record, .. }) if record == k as u64
    ));
    // A payload byte changed: the receipts no longer name the frame.
    let mut frame = match &records(&ex)[k].entry {
        Entry::Compact(o) => o.frame.to_vec(),
        _ => unreachable!(),
    };
    let last = frame.len() - 9; // the last payload byte, before the 8-byte MAC
    frame[last] ^= 1;
    let frame: &'static [u8] = Vec::leak(frame);
    let edited = rewrite(&ex, k, |r| {
        if let Entry::Compact(o) = &mut r.entry {
            o.frame = frame;
        }
    });
    assert_eq!(
        lineage::verify(&edited, &author()),
        Err(lineage::VerifyError::Receipt { record: k as u64 })
    );
    // A receipt dropped: every remaining check holds, the replay does not.
    let edited = rewrite(&ex, k, |r| {
        if let Entry::Compact(o) = &mut r.entry {
            o.receipts.pop();
        }
    });
    lineage::verify(&edited, &author()).expect("content checks hold");
    assert!(matches!(
        lineage::verify_replay(&edited, &author()),
        Err(lineage::VerifyError::Replay { .. })
    ));
    // The decision after a compact observation made wider.
    let edited = rewrite(&ex, k + 2, |r| {
        if let Entry::Decision { admission, .. } = &mut r.entry {
            *admission = if *admission == Admission::Full {
                Admission::Restricted
            } else {
                Admission::Full
            };
        }
    });
    assert_eq!(
        lineage::verify_replay(&edited, &author()),
        Err(lineage::VerifyError::Replay {
            record: k as u64 + 2
        })
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Restore ≡ never stopped, with compact records: an engine restored from its log
    /// at any input has the same device state, grant and head as one that never
    /// stopped, and decides the rest the same; the log verifies and replays.
    #[test]
    fn restore_with_compact_records_equals_never_stopped(
        seed in any::<u64>(),
        n1 in 1u32..30,
        lost in any::<u64>(),
        heard in any::<u64>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let (inputs, gws, id) = scenario(
            seed,
            n1,
            24,
            |i| lost & (1 << (i % 64)) == 0 || i % 5 == 0,
            |i| ((heard >> ((2 * i) % 64)) & 0b11) as u8,
        );
        let (never, _) = run(&inputs, &gws);
        let cut = cut.index(inputs.len() + 1);
        let mut e = fresh(&gws);
        for (now, input) in &inputs[..cut] {
            feed(&mut e, *now, input);
        }
        let mut e = Engine::restore(e.into_storage()).expect("restores");
        let mut decisions = Vec::new();
        for (now, input) in &inputs[cut..] {
            decisions.push(feed(&mut e, *now, input));
        }
        let end = inputs.last().map_or(T0, |(n, _)| *n);
        prop_assert_eq!(e.hot(&id), never.hot(&id));
        prop_assert_eq!(e.grant(&id, end), never.grant(&id, end));
        prop_assert_eq!(e.lineage().head(), never.lineage().head());
        let ex = export(&never);
        let report = lineage::verify(&ex, &author()).expect("verifies");
        let compact = inputs.iter().filter(|(_, i)| matches!(i, Input::Compact(..))).count();
        prop_assert_eq!(report.compact, compact as u64);
        lineage::verify_replay(&ex, &author()).expect("replays");
        // Never refused, never quarantined: an honest device.
        for d in decisions {
            prop_assert!(!matches!(d.admission, Admission::Refused(_) | Admission::Quarantined(_)));
        }
    }
}

#[test]
fn the_compact_head_fits_the_hot_record() {
    // docs/trust-model.md, "Hot state": the compact head takes padding or 8 bytes.
    let size = std::mem::size_of::<slope_node::trust::device::Hot>();
    println!("Hot: {size} B");
    assert_eq!(size, 216);
}

/// A compact divergence proof for device `Device::new(7)`: a clone of its chain sends
/// another frame for interval 4; the two frames are dated by receipts of `signers`.
/// A proof of a clone's conflict in interval 4 whose first frame is dated by
/// `signers[0]` and second by `signers[1]` (each a list of witnesses).
fn compact_proof(signers: [&[&SigningKey]; 2], start_ms: Millis) -> Vec<u8> {
    let dev = Device::new(7);
    let mut v = Verifier::with_compact(Config::default(), vc::Config::default());
    let r0 = obs(-100, -20, 0, start_ms);
    assert!(matches!(
        v.handle_attestation(start_ms, dev.inception.frame(), r0),
        Outcome::Extended(_)
    ));
    let schedule = Schedule {
        start_ms,
        interval_ms: T as u32,
        delay: 2,
    };
    let mut chain = Chain::new(dev.id, &[1; 32], schedule, 1, 4096).expect("chain");
    let mut clone = Chain::new(dev.id, &[1; 32], schedule, 1, 4096).expect("clone");
    let anchor =
        SignedAnchor::sign(chain.anchor(0), &dev.id, &sample::key(dev.seed)).expect("anchor");
    v.handle_attestation(start_ms, anchor.frame(), r0);
    let at = |i: u32| start_ms + u64::from(i - 1) * T;
    for i in 1..=6 {
        let (t, rx) = (at(i) + 1_000, at(i) + 3_000);
        let frame = chain.attest(t, b"").expect("attest");
        v.handle_attestation(rx, frame.frame(), obs(-100, -20, 0, rx));
        let other = clone.attest(t, b"clone").expect("clone");
        if i == 4 {
            v.handle_attestation(rx + 700, other.frame(), obs(-100, -20, 0, rx));
        }
    }
    let conflict = std::iter::from_fn(|| v.poll_outcome())
        .find_map(|o| match o {
            Outcome::Compact(vc::Outcome::Event(CompactEvent::Divergence(c))) => Some(c),
            _ => None,
        })
        .expect("a conflict");
    let stamp = |k: &SigningKey, r: &vc::Received| {
        CompactReceipt::sign(k, pcrypto::frame_digest(r.frame()), r.rx_ms()).expect("stamp")
    };
    let dating = |keys: &[&SigningKey], r: &vc::Received| -> Vec<Vec<u8>> {
        keys.iter().map(|k| stamp(k, r).frame().to_vec()).collect()
    };
    let (r1, r2) = (
        dating(signers[0], &conflict.first),
        dating(signers[1], &conflict.second),
    );
    let r1: Vec<&[u8]> = r1.iter().map(Vec::as_slice).collect();
    let r2: Vec<&[u8]> = r2.iter().map(Vec::as_slice).collect();
    let mut out = vec![0u8; 8192];
    let n = CompactProof::encode(
        &Parts {
            inception: dev.inception.frame(),
            rotations: &[],
            anchor: anchor.frame(),
            renewals: &[],
            key: &conflict.key,
            a: (conflict.first.frame(), &r1),
            b: (conflict.second.frame(), &r2),
        },
        &mut out,
    )
    .expect("encode");
    out.truncate(n);
    out
}

#[test]
fn a_compact_divergence_quarantines_through_the_divergence_path() {
    let (inputs, gws, id) = scenario(21, 50, 0, |_| true, |_| 0b11);
    let mut gws = gws;
    gws.push(Gateway::new(13, 2, 900)); // a second witness in gws[0]'s zone
    let (mut e, now) = fed(&gws, &inputs);
    let now = now + 1_000;
    assert!(e.grant(&id, now).is_some(), "the device holds a grant");
    let records = e.lineage().next_index();
    let (g1, g2, zone_mate) = (&gws[0].key, &gws[1].key, &gws[2].key);
    let stranger = sample::key(99);
    // Each frame dated by one registered witness: refused, nothing recorded. This is
    // the rogue-witness case: one witness's back-dated receipt would frame the device.
    // So are a stranger's word, and two witnesses of one zone.
    for weak in [
        [&[g1][..], &[g2][..]],
        [&[g1, g2][..], &[g2, &stranger][..]],
        [&[g1, g2][..], &[g1, zone_mate][..]],
    ] {
        assert_eq!(
            e.handle_compact_proof(now, &compact_proof(weak, T0), 10_000),
            Err(slope_node::trust::Error::Undated)
        );
    }
    assert_eq!(e.lineage().next_index(), records);
    // Each frame dated by witnesses of two zones: quarantined, grant revoked in this call.
    let proof = compact_proof([&[g1, g2], &[zone_mate, g2, &stranger]], T0);
    let d = e
        .handle_compact_proof(now, &proof, 10_000)
        .expect("decision");
    assert!(matches!(d.admission, Admission::Quarantined(_)), "{d:?}");
    assert!(d.revoked.is_some());
    assert_eq!(e.grant(&id, now), None);
    assert!(
        e.hot(&id)
            .is_some_and(|h| h.has(slope_node::trust::device::flag::QUARANTINED))
    );
    // The same proof again changes nothing more (no second divergence record).
    let again = e
        .handle_compact_proof(now + 1, &proof, 10_000)
        .expect("decision");
    assert!(again.revoked.is_none());
    let ex = export(&e);
    let report = lineage::verify(&ex, &author()).expect("verifies");
    assert_eq!(report.proofs, 1);
    lineage::verify_replay(&ex, &author()).expect("replays");
    // Garbage is refused, not panicked on.
    assert!(matches!(
        e.handle_compact_proof(now + 2, &proof[..proof.len() / 2], 10_000),
        Err(slope_node::trust::Error::CompactProof(_))
    ));
    let restored = Engine::restore(e.into_storage()).expect("restores");
    assert!(
        restored
            .hot(&id)
            .is_some_and(|h| h.has(slope_node::trust::device::flag::QUARANTINED))
    );
}

#[test]
fn a_compact_proof_dated_by_the_gateway_itself_needs_no_other_zone() {
    let (inputs, gws, _) = scenario(22, 50, 0, |_| true, |_| 0b11);
    let (mut e, now) = fed(&gws, &inputs);
    let now = now + 1_000;
    let own = sample::key(AUTHOR);
    // Its own receipt on one frame only: the other still needs two zones.
    let half = compact_proof([&[&own], &[&gws[0].key]], T0);
    assert_eq!(
        e.handle_compact_proof(now, &half, 10_000),
        Err(slope_node::trust::Error::Undated)
    );
    // It dated both frames itself (its own clock, its own radio or gossip in time).
    let proof = compact_proof([&[&own], &[&own, &gws[1].key]], T0);
    let d = e
        .handle_compact_proof(now, &proof, 10_000)
        .expect("decision");
    assert!(matches!(d.admission, Admission::Quarantined(_)), "{d:?}");
    let ex = export(&e);
    assert_eq!(lineage::verify(&ex, &author()).expect("verifies").proofs, 1);
    // A checker that is not the author and sees every signer in one zone does not take
    // the same proof: the author's own word counts only for the author.
    let p = slope_node::proto::compact::CompactProof::decode(&proof).expect("decodes");
    let one_zone = |_: &[u8; 32]| Some(slope_node::trust::Zone(2));
    assert_eq!(
        p.verify_with(10_000, |d| slope_node::compact::dated_enough(
            d, None, one_zone
        )),
        Err(slope_node::proto::compact::ProofError::Undated { interval: 4 })
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Tamper detection with compact records: an edit of a compact observation's
    /// interval, payload or receipts, or of the decision after it, in a log re-chained
    /// and re-signed by its author, fails `verify_replay` (which runs `verify` first).
    #[test]
    fn edits_of_compact_records_are_caught(
        seed in any::<u64>(),
        pick in any::<prop::sample::Index>(),
        edit in 0u8..4,
    ) {
        let (inputs, gws, _) = scenario(seed, 8, 10, |_| true, |_| 0b11);
        let (e, at) = run(&inputs, &gws);
        let ex = export(&e);
        let k = at[pick.index(at.len())];
        let edited = match edit {
            0 => rewrite(&ex, k, |r| {
                if let Entry::Compact(o) = &mut r.entry {
                    o.interval ^= 1 << 7;
                }
            }),
            1 => {
                let mut frame = match &records(&ex)[k].entry {
                    Entry::Compact(o) => o.frame.to_vec(),
                    _ => unreachable!(),
                };
                let last = frame.len() - 9;
                frame[last] = frame[last].wrapping_add(1);
                let frame: &'static [u8] = Vec::leak(frame);
                rewrite(&ex, k, |r| {
                    if let Entry::Compact(o) = &mut r.entry {
                        o.frame = frame;
                    }
                })
            }
            2 => rewrite(&ex, k, |r| {
                if let Entry::Compact(o) = &mut r.entry {
                    o.receipts.pop();
                }
            }),
            _ => rewrite(&ex, k + 2, |r| {
                if let Entry::Decision { admission, .. } = &mut r.entry {
                    let refused = Admission::Refused(slope_node::trust::Refusal::InsufficientScore);
                    *admission = if *admission == refused { Admission::Full } else { refused };
                }
            }),
        };
        prop_assert!(lineage::verify_replay(&edited, &author()).is_err());
        prop_assert!(lineage::verify_replay(&ex, &author()).is_ok());
    }
}
