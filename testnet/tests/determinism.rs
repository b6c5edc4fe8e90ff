//! One seed, one trace: a scenario run twice gives the same trace digest and the same
//! figures; another seed gives another trace; the number of threads changes neither.

use slope_testnet::{Params, Scenario, run};

fn digest(p: Params) -> (String, String) {
    match run::simulate(p, &mut |_| {}) {
        Ok(s) => (s.trace_digest.clone(), s.reproducible_json()),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn same_seed_same_trace() {
    let p = Params::small(Scenario::Clone);
    let a = digest(p.clone());
    let b = digest(p.clone());
    assert_eq!(a, b);
    let mut other = p;
    other.seed += 1;
    assert_ne!(digest(other).0, a.0);
}

#[test]
fn same_seed_same_trace_with_the_compact_suite() {
    let mut p = Params::small(Scenario::Clone);
    p.suite = slope_testnet::params::Suite::Compact;
    let a = digest(p.clone());
    let b = digest(p.clone());
    assert_eq!(a, b);
    // Not the suite-1 trace, and another seed gives another trace.
    let mut one = p.clone();
    one.suite = slope_testnet::params::Suite::Ed25519;
    assert_ne!(digest(one).0, a.0);
    let mut other = p.clone();
    other.seed += 1;
    assert_ne!(digest(other).0, a.0);
    // The second thread changes nothing either.
    let mut single = p;
    single.threads = 1;
    assert_eq!(digest(single), a);
}

#[test]
fn threads_do_not_change_the_trace() {
    for scenario in [Scenario::Clone, Scenario::Forgery] {
        let mut one = Params::small(scenario);
        one.threads = 1;
        // Every tick of two jobs or more to the workers (the default keeps light ones).
        one.tick_min_weight = 0;
        let mut two = one.clone();
        two.threads = 2;
        let (a, b) = (digest(one), digest(two));
        assert_eq!(a, b, "{scenario}");
    }
}

#[test]
fn gateway_ticks_on_workers_do_not_change_the_trace() {
    // The gateways' flushes and decisions at one tick run on the workers and this
    // thread, their results applied in queue order: the trace and every figure are
    // those of one thread, with and without the pre-verifier, with one or two workers.
    for scenario in [
        Scenario::Baseline,
        Scenario::Partition,
        Scenario::RogueGateway,
    ] {
        let mut one = Params::small(scenario);
        one.threads = 1;
        // Every tick of two jobs or more to the workers (the default keeps light ones).
        one.tick_min_weight = 0;
        let a = digest(one.clone());
        // The last: light ticks on the loop's thread, heavier ones on the workers, mixed
        // in one run (each in queue order).
        for (threads, preverify, min) in [(2, false, 0), (3, false, 0), (3, true, 0), (2, true, 4)]
        {
            let mut p = one.clone();
            p.threads = threads;
            p.preverify = preverify;
            p.tick_min_weight = min;
            let s = match run::simulate(p, &mut |_| {}) {
                Ok(s) => s,
                Err(e) => panic!("{e}"),
            };
            // The pool ran ticks (else this compares one thread with itself).
            if min == 0 {
                assert!(s.perf.parallel_ticks > 100, "{scenario}: {:?}", s.perf);
                assert!(s.perf.tick_jobs > 2 * s.perf.parallel_ticks, "{:?}", s.perf);
            } else {
                assert!(s.perf.parallel_ticks > 0, "{scenario}: {:?}", s.perf);
            }
            assert_eq!(
                (s.trace_digest.clone(), s.reproducible_json()),
                a,
                "{scenario}, {threads} threads, pre-verifier {preverify}"
            );
        }
    }
}

#[test]
fn gateway_ticks_on_workers_with_the_compact_suite() {
    let mut one = Params::small(Scenario::Clone);
    one.suite = slope_testnet::params::Suite::Compact;
    one.threads = 1;
    one.tick_min_weight = 0;
    let mut two = one.clone();
    two.threads = 2;
    two.preverify = false;
    assert_eq!(digest(one), digest(two));
}

#[test]
fn the_shared_memo_saves_checks() {
    let mut p = Params::small(Scenario::Baseline);
    p.threads = 1;
    let s = match run::simulate(p, &mut |_| {}) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    // Every attestation reaches several gateways: most checks are answered.
    assert!(s.perf.memo_hits > 2 * s.perf.memo_misses, "{:?}", s.perf);
    assert_eq!(s.perf.preverified, 0);
}

#[test]
fn devices_signing_ahead_do_not_change_the_trace() {
    // With a second thread, each device's next attestation is signed there ahead of its
    // wake-up and adopted then (`world::preverify`, `Slope::attest_ahead`); one thread
    // signs at the wake-up. Same trace, same figures, with 1, 2 and 3 threads; the
    // clone scenario copies devices' flash (a signature pending in the copy's original
    // must never leak into the copy). The second thread files what it signs in the
    // memo as valid and audits one signature in `audit_every`: same trace whether it
    // checks all or 1 in 16.
    use slope_testnet::params::AUDIT_EVERY;
    for scenario in [Scenario::Baseline, Scenario::Clone] {
        let mut one = Params::small(scenario);
        one.threads = 1;
        let s1 = match run::simulate(one.clone(), &mut |_| {}) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!((s1.perf.signed_ahead, s1.perf.adopted), (0, 0));
        let a = (s1.trace_digest.clone(), s1.reproducible_json());
        for (threads, audit_every) in [(2, 1), (2, AUDIT_EVERY), (3, AUDIT_EVERY)] {
            let mut p = one.clone();
            p.threads = threads;
            p.preverify = true;
            p.audit_every = audit_every;
            let s = match run::simulate(p, &mut |_| {}) {
                Ok(s) => s,
                Err(e) => panic!("{e}"),
            };
            // Attestations were signed ahead and adopted (else this compares one thread
            // with itself; how many were ready in time depends on the scheduler).
            assert!(s.perf.signed_ahead > 100, "{scenario}: {:?}", s.perf);
            assert!(s.perf.adopted > 0, "{scenario}: {:?}", s.perf);
            assert!(s.perf.adopted <= s.perf.signed_ahead, "{:?}", s.perf);
            // The first of every `audit_every` signatures made is checked.
            let every = u64::from(audit_every);
            assert_eq!(
                s.perf.audited,
                s.perf.signed_ahead.div_ceil(every),
                "{scenario}: {:?}",
                s.perf
            );
            assert_eq!(
                (s.trace_digest.clone(), s.reproducible_json()),
                a,
                "{scenario}, {threads} threads, audit 1 in {audit_every}"
            );
        }
    }
}
