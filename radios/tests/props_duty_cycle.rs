//! Property test: the duty-cycle tracker never lets a sub-band exceed its budget over any
//! one-hour window, whatever the sequence of requests.

use proptest::prelude::*;
use slope_radios::airtime::Modulation;
use slope_radios::duty_cycle::{DutyCycle, Refused, WINDOW_US};
use slope_radios::region::Region;
use slope_radios::{Bandwidth, SpreadingFactor};

const SFS: [SpreadingFactor; 6] = [
    SpreadingFactor::_7,
    SpreadingFactor::_8,
    SpreadingFactor::_9,
    SpreadingFactor::_10,
    SpreadingFactor::_11,
    SpreadingFactor::_12,
];

/// Largest on-air time of `frames` ([start, end)) inside any window of length `WINDOW_US`.
fn worst_window(frames: &[(u64, u64)]) -> u64 {
    let overlap = |lo: u64, hi: u64| -> u64 {
        frames
            .iter()
            .map(|&(s, e)| e.min(hi).saturating_sub(s.max(lo)))
            .sum()
    };
    // The maximum is reached with a window edge on a frame edge.
    frames
        .iter()
        .flat_map(|&(s, e)| [(s, s + WINDOW_US), (e.saturating_sub(WINDOW_US), e)])
        .map(|(lo, hi)| overlap(lo, hi))
        .max()
        .unwrap_or(0)
}

fn run<const N: usize>(
    requests: &[(u64, usize, usize, bool)],
    freq: u32,
    budget: u64,
) -> Result<(), TestCaseError> {
    let mut dc = DutyCycle::<N>::new(Region::Eu868);
    let mut now = 0u64;
    let mut frames = Vec::new();
    for &(gap, sf, len, retry) in requests {
        now += gap;
        let m = Modulation::new(SFS[sf], Bandwidth::_125KHz);
        match dc.try_transmit(now, freq, m, len) {
            Ok(g) => {
                frames.push((now, now + u64::from(g.airtime_us)));
                // The half-duplex radio is busy until the frame ends.
                now += u64::from(g.airtime_us);
            }
            Err(Refused::WaitUntil(t)) => {
                prop_assert!(t > now);
                if retry {
                    // Waiting as told must be enough.
                    let g = dc.try_transmit(t, freq, m, len);
                    prop_assert!(g.is_ok(), "refused again at the announced time: {:?}", g);
                    let a = u64::from(g.map(|g| g.airtime_us).unwrap_or(0));
                    frames.push((t, t + a));
                    now = t + a;
                }
            }
            Err(Refused::PayloadTooLarge { .. } | Refused::ExceedsBudget { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected refusal {other:?}"),
        }
    }
    prop_assert!(worst_window(&frames) <= budget, "budget exceeded");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn one_percent_band_never_exceeds_budget(
        requests in proptest::collection::vec((0u64..120_000_000, 0usize..6, 1usize..65, any::<bool>()), 1..200)
    ) {
        run::<16>(&requests, 868_100_000, WINDOW_US / 100)?;
        run::<2>(&requests, 868_100_000, WINDOW_US / 100)?;
    }

    #[test]
    fn tenth_percent_band_never_exceeds_budget(
        requests in proptest::collection::vec((0u64..600_000_000, 0usize..6, 1usize..65, any::<bool>()), 1..100)
    ) {
        run::<16>(&requests, 868_800_000, WINDOW_US / 1000)?;
        run::<1>(&requests, 868_800_000, WINDOW_US / 1000)?;
    }
}
