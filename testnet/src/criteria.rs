//! Each scenario's pass criteria, evaluated on its [`Summary`]. A criterion the run
//! cannot evaluate (it needs the trust engine, or receipts) is reported as such, never
//! as passed.

use crate::scenario::Scenario;
use crate::summary::{Criterion, Summary};

/// Clones heard, caught anywhere and caught everywhere (either layer).
pub(crate) struct Clones {
    pub attacked: usize,
    pub detected: usize,
    pub detected_everywhere: usize,
    pub unheard: usize,
    pub silent: usize,
    pub gateways: usize,
}

/// "Every clone detected" and "every gateway quarantines every clone".
pub(crate) fn clones(c: &Clones) -> [Criterion; 2] {
    [
        check(
            "every clone detected",
            c.attacked > 0 && c.detected == c.attacked,
            format!(
                "{} of {} heard clones quarantined ({} clones no gateway heard; {} whose original stayed silent)",
                c.detected, c.attacked, c.unheard, c.silent
            ),
        ),
        check(
            "every gateway quarantines every clone",
            c.attacked > 0 && c.detected_everywhere == c.attacked,
            format!(
                "{} of {} quarantined by all {} gateways",
                c.detected_everywhere, c.attacked, c.gateways
            ),
        ),
    ]
}

pub(crate) fn check(name: &str, held: bool, detail: String) -> Criterion {
    Criterion {
        name: name.to_string(),
        held: Some(held),
        detail,
    }
}

fn needs(name: &str, what: &str) -> Criterion {
    Criterion {
        name: name.to_string(),
        held: None,
        detail: format!("not evaluated: needs {what}"),
    }
}

/// The criteria of `s.scenario`, evaluated.
pub fn evaluate(s: &Summary) -> Vec<Criterion> {
    let o = &s.outcomes;
    let c = &s.counters;
    let mut v = vec![
        check(
            "duty-cycle violations = 0",
            s.duty_cycle_violations == 0,
            format!(
                "{} violations, {} deferred transmissions",
                s.duty_cycle_violations, c.duty_cycle_deferrals
            ),
        ),
        check(
            "no honest device quarantined",
            s.false_quarantines == 0,
            format!("{} honest identities quarantined", s.false_quarantines),
        ),
    ];
    let no_fork = |what: &str| {
        check(
            what,
            o.divergence == 0 && o.unlinked == 0 && o.proofs_accepted == 0,
            format!(
                "{} divergences, {} unlinked events, {} proofs accepted",
                o.divergence, o.unlinked, o.proofs_accepted
            ),
        )
    };
    let every_clone = |v: &mut Vec<Criterion>| {
        v.extend(clones(&Clones {
            attacked: s.attacked,
            detected: s.detected,
            detected_everywhere: s.detected_everywhere,
            unheard: s.cloned_unheard,
            silent: s.cloned_original_silent,
            gateways: s.gateways,
        }));
    };
    match s.scenario {
        Scenario::Baseline => {
            v.push(no_fork("an honest device never looks forked"));
            v.push(check(
                "power cuts were injected",
                c.power_cuts > 0,
                format!("{} power cuts, {} reboots", c.power_cuts, c.reboots),
            ));
            v.push(match s.time_to_full_scope {
                Some(q) => check(
                    "time to full scope reported",
                    true,
                    format!("p50 {:.0} s over {} devices", q.p50_s, q.n),
                ),
                None => needs(
                    "time to full scope reported (no device reached full scope)",
                    "a run long enough for the default policy (24 attestations, 6 h, two \
                     established witness profiles)",
                ),
            });
        }
        Scenario::Clone | Scenario::BatchCompromise => every_clone(&mut v),
        Scenario::Partition => {
            every_clone(&mut v);
            v.push(check(
                "re-converged after the heal",
                s.reconvergence_s.is_some(),
                s.reconvergence_s.map_or("not re-converged".into(), |r| {
                    format!("{r:.1} s after the heal")
                }),
            ));
        }
        Scenario::SilentClone => {
            v.push(check(
                "the chain alone reports what it can (no false divergence)",
                true,
                format!(
                    "{} of {} silent clones produced a divergence proof",
                    s.detected, s.attacked
                ),
            ));
            v.push(check(
                "detection rate from RF and behaviour context reported",
                true,
                format!(
                    "{} of {} silent clones drew a context reason from the trust engine after the copy started; {} of {} honest devices drew one too (false flags)",
                    s.context_flagged, s.attacked, s.context_false_flags, s.devices
                ),
            ));
        }
        Scenario::Forgery => {
            v.push(check(
                "no forgery accepted",
                c.forged_received > 0 && c.forged_accepted == 0,
                format!(
                    "{} forged receptions, {} accepted",
                    c.forged_received, c.forged_accepted
                ),
            ));
            v.push(no_fork("forgeries never make a device look forked"));
        }
        Scenario::Replay => {
            v.push(check(
                "replays never change a state",
                c.replayed_received > 0 && o.divergence == 0 && o.unlinked == 0,
                format!(
                    "{} replayed receptions; {} were authentic frames the gateway had missed; {} divergences",
                    c.replayed_received, c.replayed_new, o.divergence
                ),
            ));
        }
        Scenario::Sybil => {
            let compact = o.compact.map_or((true, String::new()), |c| {
                (
                    c.peak_pending <= c.pending_bound,
                    format!(
                        ", peak {} suite-2 frames waiting for their key (bound {})",
                        c.peak_pending, c.pending_bound
                    ),
                )
            });
            v.push(check(
                "gateway state within its bound",
                s.gateway_peak_devices <= s.gateway_device_bound
                    && s.gateway_peak_escrow <= s.gateway_escrow_bound
                    && compact.0,
                format!(
                    "peak {} devices (bound {}), peak {} escrowed (bound {}){}",
                    s.gateway_peak_devices,
                    s.gateway_device_bound,
                    s.gateway_peak_escrow,
                    s.gateway_escrow_bound,
                    compact.1
                ),
            ));
            let control = s.control_heard_after_attack.unwrap_or(1.0);
            v.push(check(
                "honest devices unaffected",
                s.honest_heard_after_attack + 0.05 >= control,
                format!(
                    "{:.1} % of the honest devices verified before the attack were verified after it began; {:.1} % in the control run without the attack (tolerance 5 points); {} collisions on the air",
                    s.honest_heard_after_attack * 100.0,
                    control * 100.0,
                    s.radio.lost_collision
                ),
            ));
            let honest_full = s.time_to_full_scope.map_or(0, |q| q.n);
            v.push(if honest_full == 0 {
                needs(
                    "no Sybil identity reaches full scope",
                    "an honest device at full scope in the same run (otherwise nothing could)",
                )
            } else {
                check(
                    "no Sybil identity reaches full scope",
                    s.sybil_full == 0,
                    format!(
                        "{} Sybil identities at full scope anywhere, while {} honest devices reached it in the same run",
                        s.sybil_full, honest_full
                    ),
                )
            });
        }
        Scenario::RogueGateway => {
            v.push(check(
                "fake divergence proofs rejected everywhere",
                c.fake_proofs_sent > 0 && o.proofs_accepted == 0 && o.divergence == 0,
                format!(
                    "{} fake proofs sent, {} rejections, {} accepted",
                    c.fake_proofs_sent, o.proofs_rejected, o.proofs_accepted
                ),
            ));
            let r = &s.receipts;
            v.push(check(
                "false receipts move nothing past the rogue's trust zone",
                r.false_entries > 0 && c.rogue_receipted > 0 && c.rogue_over_one_witness == 0,
                format!(
                    "{} false receipts signed (for frames it only got by gossip, and for events that never happened); {} decisions carried a receipt of the rogue (true or false), the witness policy counted the rogue as more than one witness in {} of them; {} receipts matched nothing held; {} decisions reached full scope with the rogue as the only other witness (one registered witness in one zone is what the default policy's full_witnesses = 2 allows)",
                    r.false_entries,
                    c.rogue_receipted,
                    c.rogue_over_one_witness,
                    r.counters.unmatched,
                    c.rogue_only_full
                ),
            ));
        }
        Scenario::Duplicates => {
            v.push(no_fork("duplicates are never a divergence"));
            v.push(check(
                "duplicates were delivered",
                o.duplicate > 0,
                format!("{} duplicate receptions", o.duplicate),
            ));
        }
    }
    v
}
