//! Every scenario, small and seeded: its pass criteria hold, and its reproducible
//! summary matches the committed snapshot (insta). A change to the protocol code, the
//! radio model or the simulator that changes any figure shows up here as a diff.

use slope_testnet::{Params, Scenario, run};

fn small(scenario: Scenario) -> slope_testnet::Summary {
    match run::simulate(Params::small(scenario), &mut |_| {}) {
        Ok(s) => s,
        Err(e) => panic!("{scenario}: {e}"),
    }
}

fn check(scenario: Scenario) {
    let s = small(scenario);
    for c in &s.criteria {
        assert_ne!(c.held, Some(false), "{scenario}: {} — {}", c.name, c.detail);
    }
    insta::assert_snapshot!(scenario.name(), s.reproducible_json());
}

#[test]
fn baseline() {
    check(Scenario::Baseline);
}

#[test]
fn clone() {
    check(Scenario::Clone);
}

#[test]
fn silent_clone() {
    check(Scenario::SilentClone);
}

#[test]
fn forgery() {
    check(Scenario::Forgery);
}

#[test]
fn replay() {
    check(Scenario::Replay);
}

#[test]
fn batch_compromise() {
    check(Scenario::BatchCompromise);
}

#[test]
fn sybil() {
    check(Scenario::Sybil);
}

#[test]
fn partition() {
    check(Scenario::Partition);
}

#[test]
fn rogue_gateway() {
    check(Scenario::RogueGateway);
}

#[test]
fn duplicates() {
    check(Scenario::Duplicates);
}
