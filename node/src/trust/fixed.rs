//! Deterministic fixed-point logarithms for the free-space path-loss bound: integer
//! arithmetic only, so a plausibility verdict is identical on every platform.

/// `log2(x)` in Q16 (65536 = 1.0) for `x ≥ 1`; 0 for `x = 0`. Error < 2^-15.
pub fn log2_q16(x: u64) -> u32 {
    if x == 0 {
        return 0;
    }
    let int = 63 - x.leading_zeros();
    // Normalise to a Q62 mantissa m in [1, 2).
    let mut m: u128 = u128::from(x) << (62 - int);
    let mut frac: u32 = 0;
    for bit in (0..16).rev() {
        m = (m * m) >> 62;
        if m >= (2u128 << 62) {
            m >>= 1;
            frac |= 1 << bit;
        }
    }
    (int << 16) | frac
}

/// `10·log10(x)` in hundredths of a dB, for `x ≥ 1`.
pub fn db_hundredths(x: u64) -> i64 {
    // 10·log10(2) = 3.0102999566 dB per octave = 301.03 hundredths.
    i64::from(log2_q16(x)) * 30_103 / (65_536 * 100)
}

/// Free-space path loss in hundredths of a dB for a squared distance (m²) and a
/// frequency (Hz): `10·log10(d²) + 20·log10(f) − 147.55`. Distances below 1 m count as
/// 1 m.
pub fn fspl_hundredths(distance_sq_m2: u64, freq_hz: u32) -> i64 {
    db_hundredths(distance_sq_m2.max(1)) + freq_term(freq_hz)
}

/// The frequency's part of [`fspl_hundredths`]: `20·log10(f) − 147.55`.
fn freq_term(freq_hz: u32) -> i64 {
    2 * db_hundredths(u64::from(freq_hz).max(1)) - 14_755
}

/// [`fspl_hundredths`] for many distances at few frequencies (a decision's receipts
/// were all received on the frame's channel): the frequency's term is computed again
/// only when the frequency changes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fspl {
    last: Option<(u32, i64)>,
}

impl Fspl {
    /// What [`fspl_hundredths`] gives.
    pub fn hundredths(&mut self, distance_sq_m2: u64, freq_hz: u32) -> i64 {
        let term = match self.last {
            Some((f, t)) if f == freq_hz => t,
            _ => {
                let t = freq_term(freq_hz);
                self.last = Some((freq_hz, t));
                t
            }
        };
        db_hundredths(distance_sq_m2.max(1)) + term
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs() {
        assert_eq!(log2_q16(1), 0);
        assert_eq!(log2_q16(2), 65_536);
        assert_eq!(log2_q16(1024), 10 * 65_536);
        assert!((i64::from(log2_q16(3)) - 103_872).abs() <= 2);
        assert!((db_hundredths(10) - 1000).abs() <= 1);
        // 1 km at 868 MHz: 91.2 dB.
        let l = fspl_hundredths(1_000_000, 868_000_000);
        assert!((l - 9_122).abs() < 5, "{l}");
    }

    proptest::proptest! {
        /// The frequency's term kept between calls gives what the one-call form gives,
        /// whatever the order of frequencies.
        #[test]
        fn the_kept_frequency_term_changes_nothing(
            calls in proptest::collection::vec(
                (0u64..10_000_000_000, proptest::sample::select(alloc::vec![0u32, 1, 433_050_000, 868_100_000, 868_300_000, 915_000_000, u32::MAX])),
                1..40,
            )
        ) {
            let mut f = Fspl::default();
            for (d2, hz) in calls {
                proptest::prop_assert_eq!(f.hundredths(d2, hz), fspl_hundredths(d2, hz));
            }
        }
    }
}
