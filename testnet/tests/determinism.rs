//! One seed, one trace: a scenario run twice gives the same trace digest and the same
//! figures; another seed gives another trace.

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
