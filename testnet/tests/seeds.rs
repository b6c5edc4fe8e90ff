//! The pass criteria of the attack scenarios hold on other seeds too (no snapshot: a
//! criterion that holds only on the committed seed is a finding, not a pass).

use slope_testnet::{Params, Scenario, run};

#[test]
fn attack_criteria_hold_on_other_seeds() {
    for scenario in [
        Scenario::Clone,
        Scenario::BatchCompromise,
        Scenario::Partition,
        Scenario::Sybil,
        Scenario::RogueGateway,
    ] {
        for seed in [2, 3] {
            let mut p = Params::small(scenario);
            p.seed = seed;
            let s = match run::simulate(p, &mut |_| {}) {
                Ok(s) => s,
                Err(e) => panic!("{scenario} seed {seed}: {e}"),
            };
            for c in &s.criteria {
                assert_ne!(
                    c.held,
                    Some(false),
                    "{scenario} seed {seed}: {} — {}",
                    c.name,
                    c.detail
                );
            }
        }
    }
}
