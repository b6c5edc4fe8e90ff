//! The live layer, small: 8 real gateways (libp2p over loopback TCP, redb, manual
//! clock) fed by the simulated radio. A clone is quarantined by every gateway with a
//! proof that verifies and no honest device is; forged frames are never stored.

use slope_testnet::live::{self, Options};
use slope_testnet::params::HOUR_MS;
use slope_testnet::{Params, Scenario};

fn small(scenario: Scenario, attack_size: usize) -> Params {
    let mut p = live::defaults(scenario);
    p.gateways = 8;
    p.devices = 6;
    p.duration_ms = 4 * HOUR_MS;
    p.attack_at_ms = HOUR_MS;
    p.attack_size = attack_size;
    p.threads = 1;
    p
}

fn show(r: &live::Report) -> String {
    r.render()
}

#[test]
fn a_clone_is_quarantined_by_every_real_gateway_and_nobody_else_is() {
    let p = small(Scenario::Clone, 1);
    let r = live::run(&p, &[3], Options::default()).unwrap();
    let s = &r.runs[0];
    assert_eq!(s.components, 1, "{}", show(&r));
    assert!(s.attacked >= 1, "the clone was heard\n{}", show(&r));
    assert_eq!(s.detected_everywhere, s.attacked, "{}", show(&r));
    assert_eq!(s.false_quarantines, 0, "{}", show(&r));
    assert!(s.proofs_held >= 8 * s.attacked, "{}", show(&r));
    assert_eq!(s.proofs_verified, s.proofs_held, "{}", show(&r));
    // Quarantine times come from the nodes' announcements (wall time known for all).
    let everywhere = s.everywhere_latency_wall.expect("wall latencies");
    assert_eq!(everywhere.n, s.attacked);
    assert!(s.gossip_bytes_out > 0 && s.gossip_bytes_in > 0);
    assert!(r.passed, "{}", show(&r));
}

#[test]
fn forged_frames_are_never_stored_by_a_real_gateway() {
    let p = small(Scenario::Forgery, 2);
    let r = live::run(&p, &[5], Options::default()).unwrap();
    let s = &r.runs[0];
    assert!(s.forged_received > 0, "{}", show(&r));
    assert_eq!(s.forged_accepted, 0, "{}", show(&r));
    // The oracle compares stored frames with tape envelopes byte for byte: it sees the
    // victims' authentic frames, so it would see a forged one.
    assert!(s.victim_frames_matched > 0, "{}", show(&r));
    assert_eq!(s.quarantines, 0, "{}", show(&r));
    assert_eq!(s.false_quarantines, 0, "{}", show(&r));
    assert!(r.passed, "{}", show(&r));
}

#[test]
fn scenarios_the_harness_cannot_run_live_say_so() {
    let p = small(Scenario::Partition, 1);
    let e = live::run(&p, &[1], Options::default()).unwrap_err();
    assert!(e.to_string().contains("not run live"), "{e}");
}
