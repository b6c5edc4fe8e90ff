//! The pass criteria of a live seed: the scenario's criteria of the simulated layer
//! where the live read-back can evaluate them, and the harness's own (a connected
//! mesh, every settling wait within its bound, every stored proof verifying).

use super::readback::Seed;
use crate::scenario::Scenario;
use crate::summary::Criterion;

use crate::criteria::check;

/// The criteria of `scenario` on seed `s` with `gateways` gateways.
pub fn evaluate(scenario: Scenario, s: &Seed, gateways: usize) -> Vec<Criterion> {
    let mut v = vec![
        check(
            "the gateway mesh is connected",
            s.components == 1,
            format!(
                "{} component(s), {:.1} peers per gateway",
                s.components, s.mean_peers
            ),
        ),
        check(
            "every step settled within its bound",
            s.settle_timeouts == 0,
            format!(
                "{} of {} settling waits hit the bound",
                s.settle_timeouts, s.settles
            ),
        ),
        check(
            "every stored divergence proof verifies",
            s.proofs_verified == s.proofs_held,
            format!("{} of {} proofs verify", s.proofs_verified, s.proofs_held),
        ),
        check(
            "no honest device quarantined",
            s.false_quarantines == 0,
            format!("{} honest identities quarantined", s.false_quarantines),
        ),
    ];
    let no_divergence = |what: &str| {
        check(
            what,
            s.quarantines == 0 && s.proofs_held == 0,
            format!(
                "{} quarantines, {} proofs held over all gateways",
                s.quarantines, s.proofs_held
            ),
        )
    };
    match scenario {
        Scenario::Baseline => {
            v.push(no_divergence("an honest device never looks forked"));
            v.push(check(
                "time to full scope reported",
                true,
                s.time_to_full_scope.map_or(
                    "no device reached full scope at its home gateway in this run".into(),
                    |q| format!("p50 {:.0} s over {} devices", q.p50_s, q.n),
                ),
            ));
        }
        Scenario::Clone | Scenario::BatchCompromise => {
            v.extend(crate::criteria::clones(&crate::criteria::Clones {
                attacked: s.attacked,
                detected: s.detected,
                detected_everywhere: s.detected_everywhere,
                unheard: s.cloned_unheard,
                silent: s.cloned_original_silent,
                gateways,
            }));
        }
        Scenario::SilentClone => v.push(check(
            "the chain alone reports what it can",
            true,
            format!(
                "{} of {} silent clones produced a divergence proof",
                s.detected, s.attacked
            ),
        )),
        Scenario::Forgery => {
            v.push(check(
                "no forgery accepted",
                s.forged_received > 0 && s.forged_accepted == 0,
                format!(
                    "{} forged receptions, {} forged frames stored by a gateway, {} gossip messages rejected",
                    s.forged_received, s.forged_accepted, s.gossip_rejected
                ),
            ));
            v.push(no_divergence("forgeries never make a device look forked"));
        }
        Scenario::Replay => {
            v.push(check(
                "replays were injected",
                s.replayed_received > 0,
                format!("{} replayed receptions", s.replayed_received),
            ));
            v.push(no_divergence("replays never change a state"));
        }
        Scenario::Duplicates => {
            v.push(check(
                "duplicates were delivered",
                s.duplicate_receptions > 0,
                format!("{} repeated receptions", s.duplicate_receptions),
            ));
            v.push(no_divergence("duplicates are never a divergence"));
        }
        Scenario::Sybil | Scenario::Partition | Scenario::RogueGateway => {}
    }
    v
}
