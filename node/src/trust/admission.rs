//! The admission ladder: from evidence and weights to a tier and its reasons. A pure
//! function of its inputs (no map is iterated), so the same inputs give the same
//! decision on every gateway.
//!
//! Order of the rungs (first match wins): severe deviation refuses; a pin sets the
//! scope; a score below `refuse_score` refuses; an unmet witness policy defers; a
//! context deviation, a failed post-actuation check or a boot regression admits under
//! monitoring; the full-scope requirements admit fully; anything else is restricted
//! pending continuity. Quarantine is decided before the ladder, by the engine.

use heapless::Vec;

use super::decision::{Admission, MAX_REASONS, Reason, Refusal, push};
use super::device::Hot;
use super::evidence::Evidence;
use super::grant::Scope;
use super::operator::OperatorId;
use super::policy::Policy;
use super::weighting::Weights;

/// Decides the tier of one attestation.
pub fn decide(
    h: &Hot,
    ev: &Evidence,
    w: &Weights,
    pinned_by: Option<OperatorId>,
    p: &Policy,
) -> (Admission, Vec<Reason, MAX_REASONS>) {
    let a = &p.admission;
    let c = &p.context;
    let mut r = Vec::new();
    push(
        &mut r,
        Reason::Score {
            total: w.total,
            full: a.full_score,
            refuse: a.refuse_score,
        },
    );
    push(&mut r, Reason::Quorum(ev.quorum));
    if ev.discounts.any() {
        push(&mut r, Reason::Discounted(ev.discounts));
    }
    if !ev.head {
        push(&mut r, Reason::NotHead);
    }
    if ev.dormant || ev.dormancy_left > 0 {
        push(
            &mut r,
            Reason::Dormant {
                silent_ms: ev.silent_ms,
                threshold_ms: ev.dormancy_ms,
            },
        );
    }
    let seen = u64::from(ev.depth) + u64::from(ev.lost);
    let loss = (u64::from(ev.lost) * 1000 / seen.max(1)) as u16;
    let tolerated = p.continuity.loss_tolerated.min(1000) as u16;
    if loss > tolerated {
        push(
            &mut r,
            Reason::Loss {
                lost_permille: loss,
                tolerated,
            },
        );
    }
    if let Some((from, to)) = ev.boot_regression {
        push(&mut r, Reason::BootRegression { from, to });
    }
    if ev.deviation {
        push(
            &mut r,
            Reason::Deviation {
                witnesses: ev.deviating,
                magnitude_q4: ev.magnitude_q4,
                threshold_q4: if ev.severe {
                    c.severe_q4
                } else {
                    c.deviation_q4
                },
            },
        );
    }
    if let Some((witness, magnitude_q4)) = ev.expectation
        && ev.mismatch
    {
        push(
            &mut r,
            Reason::Expectation {
                witness,
                magnitude_q4,
                threshold_q4: c.deviation_q4,
            },
        );
    }

    if ev.severe {
        return (Admission::Refused(Refusal::SevereDeviation), r);
    }
    if let (Some(scope), Some(by)) = (h.pinned(), pinned_by) {
        push(&mut r, Reason::Pinned { scope, by });
        let tier = match scope {
            Scope::Full => Admission::Full,
            Scope::Restricted => Admission::Restricted,
        };
        return (tier, r);
    }
    if w.total < a.refuse_score {
        return (Admission::Refused(Refusal::InsufficientScore), r);
    }
    if !ev.quorum.satisfied {
        return (Admission::Deferred, r);
    }
    if ev.deviation || ev.mismatch || ev.boot_regression.is_some() {
        return (Admission::Monitored, r);
    }
    let mut full = w.total >= a.full_score;
    if ev.depth < a.full_depth {
        full = false;
        push(
            &mut r,
            Reason::Depth {
                depth: ev.depth,
                required: a.full_depth,
            },
        );
    }
    if ev.age_ms < a.full_age_ms {
        full = false;
        push(
            &mut r,
            Reason::Age {
                age_ms: ev.age_ms,
                required_ms: a.full_age_ms,
            },
        );
    }
    if ev.profiled < a.full_witnesses {
        full = false;
        push(
            &mut r,
            Reason::Witnesses {
                profiled: ev.profiled,
                required: a.full_witnesses,
            },
        );
    }
    if full {
        (Admission::Full, r)
    } else {
        (Admission::Restricted, r)
    }
}
