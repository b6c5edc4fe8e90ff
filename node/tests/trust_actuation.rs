//! Governed actuation: grants, their expiry, revocation by divergence in the same call,
//! narrowing on a context deviation, post-actuation checks, operator actions, bounds.

#[path = "trust_support.rs"]
mod support;

use slope_node::lineage;
use slope_node::proto::{DivergenceProof, sample};
use slope_node::trust::operator::Action;
use slope_node::trust::{Admission, Cause, Error, Policy, Reason, Refusal, Scope};
use support::*;

const T0: u64 = 1_795_000_000_000;

fn proof_for(dev: &Device, a: &slope_node::proto::Event, b: &slope_node::proto::Event) -> Vec<u8> {
    let mut out = vec![0u8; 4096];
    let n = DivergenceProof::encode(dev.inception.frame(), &[], a.frame(), b.frame(), &mut out)
        .expect("encode proof");
    out.truncate(n);
    out
}

fn verify_log(e: &slope_node::trust::Engine<lineage::Memory>) -> lineage::Report {
    let export = e.lineage().export(&sample::key(AUTHOR)).expect("export");
    lineage::verify(&export, &sample::key(AUTHOR).verifying_key().to_bytes()).expect("verifies")
}

fn full_device() -> (
    slope_node::trust::Engine<lineage::Memory>,
    Device,
    Gateway,
    Gateway,
    Rng,
    u64,
) {
    let g2 = Gateway::new(102, 2, 1_800);
    let g3 = Gateway::new(103, 3, -2_500);
    let mut e = engine(Policy::default(), &[&g2, &g3], T0);
    let mut rng = Rng(7);
    let mut dev = Device::new(11);
    let (d, now) = run_honest(&mut e, &mut rng, &mut dev, &[&g2, &g3], 40, T0);
    let d = d.expect("decided");
    assert_eq!(d.admission, Admission::Full, "{d:?}");
    (e, dev, g2, g3, rng, now)
}

#[test]
fn grants_expire_unless_renewed() {
    let (e, dev, _, _, _, now) = full_device();
    let g = e.grant(&dev.id, now).expect("a grant in force");
    assert_eq!(g.scope, Scope::Full);
    assert!(g.expires > now);
    assert!(
        e.grant(&dev.id, g.expires).is_none(),
        "expired without renewal"
    );
}

#[test]
fn divergence_revokes_in_the_same_call_and_quarantines() {
    let (mut e, mut dev, g2, g3, mut rng, now) = full_device();
    let prev = dev.prev.link();
    let honest = dev.next(&[]);
    let clone = dev.fork(prev, dev.seq);
    let proof = proof_for(&dev, &honest, &clone);
    let d = e.handle_proof(now, &proof).expect("proof verifies");
    let q = match d.admission {
        Admission::Quarantined(q) => q,
        other => panic!("{other:?}"),
    };
    let r = d.revoked.expect("the grant is revoked in the same call");
    assert_eq!(r.scope, Scope::Full);
    assert_eq!(r.cause, Cause::Divergence { record: q.record });
    assert!(e.grant(&dev.id, now).is_none());
    // Later attestations stay quarantined, and get no grant.
    let (d, now) = run_honest(&mut e, &mut rng, &mut dev, &[&g2, &g3], 1, now + 1);
    let d = d.expect("decided");
    assert!(matches!(d.admission, Admission::Quarantined(_)), "{d:?}");
    assert!(d.grant.is_none());
    // An operator releases it after investigation: recorded, with who and why.
    let release = act(
        Action::Release { device: dev.id },
        "clone was a lab replay, ticket 4411",
        now,
    );
    e.handle_operator(now, &release).expect("release");
    let (d, _) = run_honest(&mut e, &mut rng, &mut dev, &[&g2, &g3], 1, now + 1);
    assert!(!matches!(
        d.expect("decided").admission,
        Admission::Quarantined(_)
    ));
    let report = verify_log(&e);
    assert_eq!((report.proofs, report.operator_actions), (1, 3));
    assert!(report.revocations >= 1);
}

#[test]
fn a_forged_proof_quarantines_nothing() {
    let (mut e, dev, _, _, _, now) = full_device();
    let mut proof = proof_for(
        &dev,
        &dev.fork(dev.prev.link(), dev.seq),
        &dev.fork(slope_node::proto::LinkDigest([1; 16]), dev.seq),
    );
    let at = proof.len() - 10;
    proof[at] ^= 1;
    assert!(matches!(e.handle_proof(now, &proof), Err(Error::Proof(_))));
    assert!(e.grant(&dev.id, now).is_some());
}

#[test]
fn a_context_deviation_narrows_the_grant() {
    let (mut e, mut dev, g2, g3, mut rng, now) = full_device();
    // Same keys, another radio somewhere else: every witness hears it 25 dB off.
    let event = dev.next(&[]);
    let mut rx = link_rf(&mut rng, 0, now);
    rx.rssi_dbm += 25;
    let att = verified(&dev, event, rx, now, 0);
    let mut o2 = link_rf(&mut rng, 1, now);
    o2.rssi_dbm += 25;
    let mut o3 = link_rf(&mut rng, 2, now);
    o3.rssi_dbm -= 25;
    let rs = receipts(&e, &[g2.receipt(&att, o2), g3.receipt(&att, o3)]);
    let d = e.handle_attestation(now, &att, &rs).expect("decision");
    assert_eq!(d.admission, Admission::Monitored, "{d:?}");
    assert!(
        d.reason(|r| matches!(r, Reason::Deviation { .. }))
            .is_some()
    );
    let r = d.revoked.expect("narrowed");
    assert!(matches!(
        r.cause,
        Cause::Narrowed {
            to: Scope::Restricted,
            ..
        }
    ));
    let g = d.grant.expect("a narrower grant");
    assert_eq!((g.scope, g.monitored), (Scope::Restricted, true));
    verify_log(&e);
}

#[test]
fn implausible_receipts_are_discounted() {
    let g2 = Gateway::new(102, 2, 2_500);
    let mut e = engine(Policy::default(), &[&g2], T0);
    let dev = Device::new(12);
    let att = verified(&dev, dev.incept(), obs(-100, -20, -1_000, T0), T0, 0);
    // No position for the device: the 1 m bound applies; +5 dBm is beyond it.
    let loud = g2.receipt(&att, obs(5, 40, -1_000, T0));
    let d = e
        .handle_attestation(T0, &att, &receipts(&e, &[loud]))
        .expect("decision");
    let Some(Reason::Discounted(disc)) = d.reason(|r| matches!(r, Reason::Discounted(_))) else {
        panic!("{d:?}");
    };
    assert_eq!(disc.rssi, 1);
    // Enrolled 2.5 km from the witness: -40 dBm is stronger than free space allows.
    let dev = Device::new(13);
    let pos = slope_node::trust::Position {
        east_m: 0,
        north_m: 0,
        up_m: 2,
    };
    let enrol = act(
        Action::Enroll {
            device: dev.id,
            zone: slope_node::trust::Zone(1),
            position: Some(pos),
        },
        "installed meter",
        T0,
    );
    e.handle_operator(T0, &enrol).expect("enrol");
    let att = verified(&dev, dev.incept(), obs(-100, -20, -1_000, T0), T0, 0);
    let near = g2.receipt(&att, obs(-40, 30, -1_000, T0));
    let d = e
        .handle_attestation(T0, &att, &receipts(&e, &[near]))
        .expect("decision");
    assert!(
        d.reason(|r| matches!(r, Reason::Discounted(x) if x.rssi == 1))
            .is_some()
    );
    let dev2 = Device::new(14);
    let att2 = verified(&dev2, dev2.incept(), obs(-100, -20, -1_000, T0), T0, 0);
    let late2 = g2.receipt(&att2, obs(-110, -30, -1_000, T0 + 60_000));
    let d = e
        .handle_attestation(T0, &att2, &receipts(&e, &[late2]))
        .expect("decision");
    assert!(
        d.reason(|r| matches!(r, Reason::Discounted(x) if x.time == 1))
            .is_some(),
        "{d:?}"
    );
}

#[test]
fn operator_pin_is_signed_recorded_and_applied() {
    let g2 = Gateway::new(102, 2, 1_800);
    let mut e = engine(Policy::default(), &[&g2], T0);
    let mut rng = Rng(3);
    let mut dev = Device::new(15);
    let (d, now) = run_honest(&mut e, &mut rng, &mut dev, &[&g2], 2, T0);
    assert_eq!(d.expect("decided").admission, Admission::Restricted);
    // An action signed by someone who is not an operator is refused.
    let rogue = slope_node::trust::operator::Signed::sign(
        Action::Pin {
            device: dev.id,
            scope: Scope::Full,
        },
        heapless::String::try_from("trust me").expect("short"),
        now,
        &sample::key(66),
    )
    .expect("sign");
    assert!(matches!(
        e.handle_operator(now, &rogue),
        Err(Error::Operator(_))
    ));
    let pin = act(
        Action::Pin {
            device: dev.id,
            scope: Scope::Full,
        },
        "factory-certified fleet",
        now,
    );
    e.handle_operator(now, &pin).expect("pin");
    let (d, _) = run_honest(&mut e, &mut rng, &mut dev, &[&g2], 1, now);
    let d = d.expect("decided");
    assert_eq!(d.admission, Admission::Full);
    assert!(
        d.reason(|r| matches!(
            r,
            Reason::Pinned {
                scope: Scope::Full,
                ..
            }
        ))
        .is_some()
    );
    assert_eq!(verify_log(&e).operator_actions, 2);
}

#[test]
fn newcomers_meet_a_wall() {
    let mut policy = Policy::default();
    policy.bounds.max_newcomers = 2;
    let mut e = engine(policy, &[], T0);
    for seed in 20..22u8 {
        let dev = Device::new(seed);
        let d = e.handle_attestation(
            T0,
            &verified(&dev, dev.incept(), obs(-100, -20, 0, T0), T0, 0),
            &[],
        );
        assert_eq!(d.expect("decision").admission, Admission::Restricted);
    }
    let dev = Device::new(22);
    let d = e.handle_attestation(
        T0,
        &verified(&dev, dev.incept(), obs(-100, -20, 0, T0), T0, 0),
        &[],
    );
    assert_eq!(
        d.expect("decision").admission,
        Admission::Refused(Refusal::Capacity)
    );
    assert_eq!(e.devices(), 2);
    // Idle newcomers can be evicted; then there is room again.
    assert_eq!(e.evict_idle(T0 + 8 * 24 * 3_600_000), 2);
    let d = e.handle_attestation(
        T0,
        &verified(&dev, dev.incept(), obs(-100, -20, 0, T0), T0, 0),
        &[],
    );
    assert_eq!(d.expect("decision").admission, Admission::Restricted);
}
