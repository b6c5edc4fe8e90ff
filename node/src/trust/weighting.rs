//! Evidential weighting: the four scores (continuity, corroboration, context,
//! authority) and their weighted total, each an integer in permille (0..=1000). The
//! formulas and the reasons for their defaults are in `docs/trust-model.md`.

use serde::{Deserialize, Serialize};

use super::evidence::Evidence;
use super::policy::Policy;

/// The scores of one attestation, in permille.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Weights {
    pub continuity: u16,
    pub corroboration: u16,
    pub context: u16,
    pub authority: u16,
    pub total: u16,
}

/// Neutral context score of a device with no established profile yet.
pub const UNKNOWN_CONTEXT: u32 = 500;

/// Scores the evidence. `corroboration_avg` is the device's running corroboration score
/// (‰) before this attestation (`None` for its first); the new average is returned in
/// `Weights::corroboration`.
pub fn weigh(ev: &Evidence, corroboration_avg: Option<u16>, p: &Policy) -> Weights {
    let continuity = continuity(ev, p);
    let now = corroboration_now(ev, p);
    let corroboration = match corroboration_avg {
        None => now,
        // Exponential average over ~4 attestations: one lost receipt does not swing it.
        Some(avg) => {
            let avg = i64::from(avg.min(1000));
            (avg + (i64::from(now) - avg) / 4).clamp(0, 1000) as u32
        }
    };
    let context = context(ev);
    let authority = authority(ev, p);
    let w = &p.weights;
    let sum = u64::from(w.continuity)
        + u64::from(w.corroboration)
        + u64::from(w.context)
        + u64::from(w.authority);
    let total = (u64::from(w.continuity) * u64::from(continuity)
        + u64::from(w.corroboration) * u64::from(corroboration)
        + u64::from(w.context) * u64::from(context)
        + u64::from(w.authority) * u64::from(authority))
    .checked_div(sum)
    .unwrap_or(0);
    Weights {
        continuity: permille(u64::from(continuity)),
        corroboration: permille(u64::from(corroboration)),
        context: permille(u64::from(context)),
        authority: permille(u64::from(authority)),
        total: permille(total),
    }
}

fn permille(x: u64) -> u16 {
    x.min(1000) as u16
}

/// `1000 · x / (x + half)`: 0 at 0, 500 at `half`, approaching 1000.
fn saturating(x: u64, half: u64) -> u64 {
    if x == 0 {
        return 0;
    }
    1000 * x / (x + half.max(1))
}

fn continuity(ev: &Evidence, p: &Policy) -> u32 {
    let c = &p.continuity;
    let depth = saturating(u64::from(ev.depth), u64::from(c.depth_half));
    let regularity = if ev.depth < 3 || ev.interval_ms == 0 {
        500
    } else {
        let irregular = ev.interval_dev_ms.saturating_mul(1000) / ev.interval_ms.max(1);
        1000 * u64::from(c.regularity_half) / (u64::from(c.regularity_half) + irregular).max(1)
    };
    let seen = u64::from(ev.depth) + u64::from(ev.lost);
    let loss = u64::from(ev.lost) * 1000 / seen.max(1);
    let tol = u64::from(c.loss_tolerated.min(999));
    let loss_factor = if loss <= tol {
        1000
    } else {
        1000 - (loss - tol) * 1000 / (1000 - tol)
    };
    let dormancy = if ev.dormancy_left > 0 || ev.dormant {
        u64::from(c.dormancy_factor.min(1000))
    } else {
        1000
    };
    let reboot_pct = u64::from(ev.reboots) * 100 / u64::from(ev.depth.max(1));
    let reboot = 1000u64.saturating_sub(
        reboot_pct
            .saturating_sub(u64::from(c.reboots_tolerated_pct))
            .saturating_mul(20),
    );
    (depth * regularity / 1000 * loss_factor / 1000 * dormancy / 1000 * reboot / 1000) as u32
}

fn corroboration_now(ev: &Evidence, p: &Policy) -> u32 {
    let c = &p.corroboration;
    let extra_zones = u64::from(ev.quorum.zones.saturating_sub(1));
    let effective = 1000 * u64::from(ev.quorum.witnesses)
        + u64::from(c.zone_bonus_milli) * extra_zones
        + u64::from(c.neighbour_milli) * u64::from(ev.neighbours);
    saturating(effective, u64::from(c.half_milli)) as u32
}

fn context(ev: &Evidence) -> u32 {
    let rf = if ev.established == 0 {
        UNKNOWN_CONTEXT
    } else {
        1000 * u32::from(ev.established - ev.deviating.min(ev.established))
            / u32::from(ev.established)
    };
    // Behaviour digest changes: a stable device rarely changes it.
    let ratio = u32::from(ev.behaviour_changes) * 1000 / ev.depth.max(1);
    let behaviour = 1000 - (ratio / 2).min(300);
    let mut x = rf * behaviour / 1000;
    if ev.mismatch || ev.boot_regression.is_some() {
        x = x.min(250);
    }
    x
}

fn authority(ev: &Evidence, p: &Policy) -> u32 {
    let a = &p.authority;
    let cert = if ev.certified { a.certificate } else { 0 };
    (u32::from(a.zone_weight(ev.zone)) + u32::from(cert)).min(1000)
}
