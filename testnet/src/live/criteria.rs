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
        Scenario::Clone | Scenario::BatchCompromise | Scenario::Partition => {
            v.extend(crate::criteria::clones(&crate::criteria::Clones {
                attacked: s.attacked,
                detected: s.detected,
                detected_everywhere: s.detected_everywhere,
                unheard: s.cloned_unheard,
                silent: s.cloned_original_silent,
                gateways,
            }));
            if scenario == Scenario::Partition {
                v.extend(partition(s));
            }
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
        Scenario::RogueGateway => v.extend(rogue(s)),
        Scenario::Sybil => match &s.sybil {
            Some(sy) => v.extend(super::sybil::criteria(sy, gateways)),
            None => v.push(check("a flood ran", false, "no Sybil read-back".into())),
        },
    }
    v
}

/// `partition`: the cut held, the heal restored it, and the sync protocol re-converged
/// the mesh at the heal.
fn partition(s: &Seed) -> Vec<Criterion> {
    let Some(p) = &s.partition else {
        return vec![check(
            "the mesh was cut and healed within the run",
            false,
            "no heal in this run (the cut lasts 4 h from the attack time)".into(),
        )];
    };
    vec![
        check(
            "the cut held: no connection across it until the heal",
            p.cut_links > 0 && p.cut_held && p.crossing_before_heal == 0,
            format!(
                "{} links cut, {} across the cut just before the heal",
                p.cut_links, p.crossing_before_heal
            ),
        ),
        check(
            "the heal restored every cut link",
            p.restored == p.cut_links,
            format!("{} of {} links up again", p.restored, p.cut_links),
        ),
        check(
            "re-converged by the sync protocol at the heal",
            p.pairs > 0 && p.pairs_at_heal == p.pairs,
            format!(
                "{} of {} (gateway, clone) quarantines held when the heal settled, before any later \
                 reception ({} before the heal); {} sync responses during the heal; re-converged {}",
                p.pairs_at_heal,
                p.pairs,
                p.pairs_before_heal,
                p.sync_responses_at_heal,
                match (p.reconvergence_s, p.reconvergence_wall_s) {
                    (Some(v), Some(w)) => format!("{v:.1} virtual s, {w:.2} wall s after the heal"),
                    (Some(v), None) => format!("{v:.1} virtual s after the heal"),
                    _ => "never".into(),
                }
            ),
        ),
    ]
}

/// `rogue-gateway`: fake proofs rejected everywhere, false receipts bounded by the
/// rogue's zone.
fn rogue(s: &Seed) -> Vec<Criterion> {
    let Some(r) = &s.rogue else {
        return vec![check("a rogue ran", false, "no rogue".into())];
    };
    vec![
        check(
            "fake divergence proofs rejected at every honest node",
            r.sent.fake_proofs > 0
                && r.nodes_rejecting == r.honest_nodes
                && r.divergences == 0
                && s.proofs_held == 0,
            format!(
                "{} fake proofs sent to {} peers; {} of {} honest nodes rejected gossip ({} rejections); \
                 {} divergences, {} proofs held anywhere; the rogue's score at its honest peers {}",
                r.sent.fake_proofs,
                r.sent.peers,
                r.nodes_rejecting,
                r.honest_nodes,
                r.rejected,
                r.divergences,
                s.proofs_held,
                match (r.score_min, r.score_max) {
                    (Some(a), Some(b)) => format!("{a:.1} to {b:.1}"),
                    _ => "unknown".into(),
                }
            ),
        ),
        check(
            "false receipts move nothing past the rogue's trust zone",
            r.sent.false_receipts > 0
                && r.lifted > 0
                && r.beyond_zone == 0
                && r.fabricated_counted == 0,
            format!(
                "{} false receipts (frames its radio never heard) and {} for events that never \
                 happened, each sent twice in {} batches; of {} trust-engine decisions read \
                 back, {} counted more witnesses or zones than the radios that heard the frame \
                 (the rogue's lie counted; {} of them at full scope, which one registered \
                 witness in one zone may reach under the default policy) and {} more than those \
                 radios and the rogue; {} receipts for events that never happened recorded",
                r.sent.false_receipts,
                r.sent.fabricated_receipts,
                r.sent.receipt_batches,
                r.decisions_checked,
                r.lifted,
                r.lifted_full,
                r.beyond_zone,
                r.fabricated_counted
            ),
        ),
    ]
}
