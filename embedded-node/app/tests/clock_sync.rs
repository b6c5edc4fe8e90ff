//! The clock-synchronisation invariant, against an attacker who chooses receipts and
//! time echoes freely (any time, any witness id, any number, any arrival within the
//! latency bound) and may jam the honest gateways in any round, whose honest answer is
//! a receipt or an echo: the estimate is never ahead of true time by
//! more than δ_gw + 2ρ × (the time spanned by rounds with no honest receipt), for a
//! crystal anywhere within ±ρ. The first synchronisation is assumed to hear at least
//! one honest gateway (the stated weak point, docs in `slope_firmware::timesync`).

use proptest::prelude::*;
use slope_firmware::timesync::{Policy, TimeSync, Update};
use slope_proto::{LinkDigest, WitnessId};

/// The honest gateways' clock error (δ_gw), ms.
const GW_ERR: i64 = 100;
/// Rounding slack of the test's own true-time model, ms.
const SLACK: u64 = 2;

#[derive(Debug, Clone)]
struct Round {
    /// Milliseconds of device (monotonic) time since the previous round.
    gap_ms: u64,
    /// Whether an honest gateway's answer gets through, and its clock error.
    honest: Option<i64>,
    /// Whether that answer is a time echo (else a receipt).
    echo: bool,
    /// The attacker's receipts or echoes: (witness byte, offset from true time in ms,
    /// delay ms, an echo).
    forged: Vec<(u8, i64, u64, bool)>,
}

fn round() -> impl Strategy<Value = Round> {
    (
        prop_oneof![1_000u64..120_000, 120_000u64..20_000_000],
        prop::option::weighted(0.5, -GW_ERR..=GW_ERR),
        any::<bool>(),
        prop::collection::vec(
            (
                any::<u8>(),
                prop_oneof![
                    -3_600_000i64..3_600_000,
                    -2_000i64..2_000,
                    Just(i64::MAX / 4)
                ],
                0u64..30_000,
                any::<bool>(),
            ),
            0..4,
        ),
    )
        .prop_map(|(gap_ms, honest, echo, forged)| Round {
            gap_ms,
            honest,
            echo,
            forged,
        })
}

/// True Unix time at device time `mono` for a crystal `ppm` fast (negative: slow).
fn truth(t0: u64, mono: u64, ppm: i64) -> u64 {
    // Device time runs at (1 + ppm·1e-6) of true time.
    let mono = i128::from(mono);
    let t = mono * 1_000_000 / (1_000_000 + i128::from(ppm));
    t0 + t as u64
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn attacker_never_pushes_the_clock_ahead(
        ppm in -50i64..=50,
        t0 in 1_600_000_000_000u64..1_900_000_000_000,
        first_err in -GW_ERR..=GW_ERR,
        rounds in prop::collection::vec(round(), 1..60),
    ) {
        let policy = Policy { quorum: 2, ..Policy::DEFAULT };
        let rho = u64::from(policy.drift_ppm);
        let mut sync = TimeSync::new(policy);
        let mut mono = 10_000u64;
        let mut seq = 0u32;
        let mut bound: Option<u64> = None;
        let mut last_set = 0u64;
        // The first round: one honest gateway and one forged witness (the quorum).
        let mut all = vec![Round { gap_ms: 0, honest: Some(first_err), echo: false, forged: vec![(9, 3_600_000, 5, true)] }];
        all.extend(rounds);
        for r in all {
            mono += r.gap_ms;
            seq += 1;
            let event = LinkDigest([seq as u8; 16]);
            sync.sent(mono, seq, event);
            let mut heard = mono;
            let mut honest_here = false;
            // An unsynchronised device takes the first clock only with an honest
            // gateway heard (the stated assumption); otherwise the attacker is jamming.
            let honest = if sync.unix_ms(mono).is_none() { r.honest.or(Some(0)) } else { r.honest };
            let prefix = [seq as u8; 8];
            if let Some(err) = honest {
                if r.echo {
                    // Received when the frame ended (`sent`), heard 2 s + airtime later.
                    heard += 4_000;
                    let c = (truth(t0, mono, ppm) as i64 + err) as u64;
                    honest_here |= sync.offer_echo(heard, WitnessId([0xaa; 8]), seq, &prefix, c);
                } else {
                    heard += 400;
                    let c = (truth(t0, mono + 200, ppm) as i64 + err) as u64;
                    honest_here |= sync.offer(heard, WitnessId([0xaa; 8]), seq, event, c);
                }
            }
            for (w, off, delay, echo) in &r.forged {
                let at = heard + delay;
                let c = (truth(t0, at, ppm) as i64).saturating_add(*off).max(1) as u64;
                if *echo {
                    sync.offer_echo(at, WitnessId([*w; 8]), seq, &prefix, c);
                } else {
                    sync.offer(at, WitnessId([*w; 8]), seq, event, c);
                }
                heard = heard.max(at);
            }
            mono = heard + 1;
            match sync.close(mono) {
                Update::Synced => {
                    bound = Some(GW_ERR as u64);
                    last_set = mono;
                }
                Update::Forward { .. } | Update::Backward(_) | Update::Held => {
                    if !honest_here {
                        let b = bound.unwrap_or(GW_ERR as u64);
                        bound = Some(b + 2 * (mono - last_set) * rho / 1_000_000 + SLACK);
                    }
                    last_set = mono;
                }
                Update::Lost => bound = None,
                Update::None => {}
            }
            if let (Some(b), Some(est)) = (bound, sync.unix_ms(mono)) {
                let t = truth(t0, mono, ppm);
                prop_assert!(est <= t + b + SLACK, "ahead by {} > bound {b}", est as i64 - t as i64);
                // And still so later, with no new round (the slow rate).
                let later = mono + r.gap_ms;
                if let Some(est) = sync.unix_ms(later) {
                    prop_assert!(est <= truth(t0, later, ppm) + b + SLACK);
                }
            }
        }
    }

    /// An honest-only deployment stays synchronised and close: within the round trip
    /// behind, never ahead by more than δ_gw, for receipts every cycle.
    #[test]
    fn honest_receipts_keep_the_clock_close(
        ppm in -50i64..=50,
        errs in prop::collection::vec(-GW_ERR..=GW_ERR, 10..200),
    ) {
        let mut sync = TimeSync::new(Policy { quorum: 1, ..Policy::DEFAULT });
        let t0 = 1_750_000_000_000u64;
        let mut mono = 0u64;
        for (k, err) in errs.iter().enumerate() {
            mono += 900_000;
            let seq = k as u32;
            let event = LinkDigest([k as u8; 16]);
            sync.sent(mono, seq, event);
            let c = (truth(t0, mono + 100, ppm) as i64 + err) as u64;
            prop_assert!(sync.offer(mono + 2_000, WitnessId([1; 8]), seq, event, c));
            let u = sync.close(mono + 2_000);
            prop_assert!(!matches!(u, Update::Lost | Update::None), "{u:?}");
            let est = sync.unix_ms(mono + 2_000).unwrap() as i64;
            let t = truth(t0, mono + 2_000, ppm) as i64;
            prop_assert!(est - t <= GW_ERR + SLACK as i64, "ahead {}", est - t);
            prop_assert!(t - est <= 2_500, "behind {}", t - est);
        }
    }
}
