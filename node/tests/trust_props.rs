//! Properties of the trust engine: scores stay within bounds for any evidence and
//! policy; decisions do not depend on the order of receipts or on how devices
//! interleave (no map iteration order leaks into a decision).

#[path = "trust_support.rs"]
mod support;

use proptest::prelude::*;
use slope_node::trust::evidence::{Discounts, Evidence};
use slope_node::trust::quorum::Verdict;
use slope_node::trust::weighting::weigh;
use slope_node::trust::zone::{Zone, ZoneWeight};
use slope_node::trust::{Decision, Policy};
use support::*;

const T0: u64 = 1_795_000_000_000;

prop_compose! {
    fn evidence()(
        depth in any::<u32>(), lost in any::<u32>(), interval_ms in any::<u64>(),
        interval_dev_ms in any::<u64>(), silent_ms in any::<u64>(), dormant in any::<bool>(),
        dormancy_left in any::<u8>(), reboots in any::<u16>(), witnesses in any::<u8>(),
        zones in any::<u8>(), neighbours in any::<u8>(), established in any::<u8>(),
        deviating in any::<u8>(), mismatch in any::<bool>(), changes in any::<u16>(),
        certified in any::<bool>(), zone in any::<u16>(),
    ) -> Evidence {
        Evidence {
            depth, lost, interval_ms, interval_dev_ms, age_ms: silent_ms, silent_ms, dormant,
            dormancy_ms: 0, dormancy_left, reboots, boot_regression: None, head: true,
            quorum: Verdict { witnesses, zones, groups: 0, satisfied: true },
            discounts: Discounts::default(), neighbours, established, deviating,
            magnitude_q4: 0, deviation: false, severe: false, expectation: None, mismatch,
            behaviour_changes: changes, zone: Zone(zone), certified, profiled: established,
        }
    }
}

proptest! {
    #[test]
    fn scores_stay_within_bounds(
        ev in evidence(),
        avg in proptest::option::of(any::<u16>()),
        w in proptest::array::uniform4(any::<u16>()),
        zone_weight in any::<u16>(),
        cert in any::<u16>(),
        depth_half in any::<u32>(),
        half_milli in any::<u32>(),
        loss_tolerated in any::<u32>(),
    ) {
        let mut p = Policy::default();
        p.weights.continuity = w[0];
        p.weights.corroboration = w[1];
        p.weights.context = w[2];
        p.weights.authority = w[3];
        p.authority.zones = vec![ZoneWeight { zone: ev.zone, weight: zone_weight }];
        p.authority.certificate = cert;
        p.continuity.depth_half = depth_half;
        p.corroboration.half_milli = half_milli;
        p.continuity.loss_tolerated = loss_tolerated;
        let s = weigh(&ev, avg, &p);
        for x in [s.continuity, s.corroboration, s.context, s.authority, s.total] {
            prop_assert!(x <= 1000, "{s:?}");
        }
        let lo = s.continuity.min(s.corroboration).min(s.context).min(s.authority);
        let hi = s.continuity.max(s.corroboration).max(s.context).max(s.authority);
        if w.iter().any(|x| *x > 0) {
            prop_assert!(s.total >= lo.saturating_sub(1) && s.total <= hi, "{s:?}");
        }
    }
}

/// Everything of a decision but its lineage index (which depends on interleaving).
fn essence(d: &Decision) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {:?}",
        d.admission,
        d.weights,
        d.reasons,
        d.grant.map(|g| (g.scope, g.expires)),
        d.revoked.map(|r| r.cause)
    )
}

/// Runs `devices` devices for `rounds` attestations each, interleaving devices in the
/// order `order(round)` and presenting receipts in the order `flip(round, device)`.
fn run(order_seed: u64, flip_seed: u64) -> Vec<Vec<String>> {
    let g2 = Gateway::new(102, 2, 1_800);
    let g3 = Gateway::new(103, 3, -2_500);
    let mut e = engine(Policy::default(), &[&g2, &g3], T0);
    let mut devices: Vec<Device> = (40..46u8).map(Device::new).collect();
    let mut out = vec![Vec::new(); devices.len()];
    let mut order_rng = Rng(order_seed);
    let mut flip_rng = Rng(flip_seed);
    for round in 0..30u64 {
        let now = T0 + round * 900_000;
        let mut idx: Vec<usize> = (0..devices.len()).collect();
        for i in (1..idx.len()).rev() {
            idx.swap(i, (order_rng.next_u64() % (i as u64 + 1)) as usize);
        }
        for i in idx {
            let dev = &mut devices[i];
            // The RF of each (device, round) is fixed whatever the interleaving.
            let mut rf = Rng(u64::from(dev.seed) << 32 | round);
            let event = if round == 0 {
                dev.incept()
            } else {
                dev.next(&[])
            };
            let att = verified(dev, event, link_rf(&mut rf, 0, now), now, 0);
            let mut rs = vec![
                g2.receipt(&att, link_rf(&mut rf, 1, now)),
                g3.receipt(&att, link_rf(&mut rf, 2, now)),
            ];
            if flip_rng.chance(50) {
                rs.reverse();
            }
            let rs = receipts(&e, &rs);
            out[i].push(essence(
                &e.handle_attestation(now, &att, &rs).expect("decision"),
            ));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn decisions_do_not_depend_on_arrival_interleaving_or_receipt_order(a in any::<u64>(), b in any::<u64>()) {
        prop_assert_eq!(run(a, b), run(b.wrapping_add(1), a.wrapping_add(7)));
    }
}
