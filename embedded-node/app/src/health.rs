//! Continuous health tests for raw entropy sources, after NIST SP 800-90B §4.4.
//!
//! Every source hands out 8-bit symbols and states how much min-entropy `H` each symbol
//! carries at least ([`MinEntropy`]). Two tests watch it, with a false-positive rate of
//! α = 2⁻²⁰ per the standard's recommendation:
//!
//! - **Repetition count test** (§4.4.1): fails when one symbol repeats `C` times in a row,
//!   `C = 1 + ⌈20 / H⌉`. It catches a source that got stuck.
//! - **Adaptive proportion test** (§4.4.2): over windows of `W = 1024` symbols (the
//!   non-binary window), fails when the window's first symbol occurs `C` times or more,
//!   `C = 1 + CRITBINOM(W, 2⁻ᴴ, 1 − α)`. It catches a large loss of entropy that still
//!   moves (a bias, a short cycle).
//!
//! Start-up testing (§4.3) is one full adaptive-proportion window, 1024 consecutive
//! symbols, that must pass both tests before any symbol is credited. A failure is final
//! for this boot: the source is reported and never used again (a flaky source is not
//! worth its entropy claim).
//!
//! The cutoffs come from a table ([`MinEntropy::cutoffs`]), not from floating point at
//! run time; the unit tests recompute every entry from the binomial distribution.

/// Window of the adaptive proportion test for non-binary symbols.
pub const APT_WINDOW: u16 = 1024;

/// Symbols of start-up testing before a source is credited.
pub const STARTUP_SYMBOLS: u16 = APT_WINDOW;

/// The min-entropy a source claims for each 8-bit symbol it produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MinEntropy {
    /// 0.5 bit per symbol.
    HalfBit,
    /// 1 bit per symbol.
    OneBit,
    /// 2 bits per symbol.
    TwoBits,
    /// 4 bits per symbol.
    FourBits,
    /// 6 bits per symbol.
    SixBits,
}

/// The two cutoffs that follow from a min-entropy claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Repetition count test: this many identical symbols in a row fail.
    pub repetition: u16,
    /// Adaptive proportion test: this many occurrences of the window's first symbol fail.
    pub proportion: u16,
}

impl MinEntropy {
    /// The claim in eighths of a bit (what the harvester credits per symbol).
    pub const fn eighths(self) -> u16 {
        match self {
            Self::HalfBit => 4,
            Self::OneBit => 8,
            Self::TwoBits => 16,
            Self::FourBits => 32,
            Self::SixBits => 48,
        }
    }

    /// Cutoffs for α = 2⁻²⁰ and W = 1024 (see the module doc for the formulas).
    pub const fn cutoffs(self) -> Cutoffs {
        let (repetition, proportion) = match self {
            Self::HalfBit => (41, 793),
            Self::OneBit => (21, 589),
            Self::TwoBits => (11, 325),
            Self::FourBits => (6, 105),
            Self::SixBits => (5, 39),
        };
        Cutoffs {
            repetition,
            proportion,
        }
    }
}

/// Which test failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Failure {
    /// A symbol repeated `run` times in a row.
    RepetitionCount {
        /// The repeated symbol.
        symbol: u8,
        /// Length of the run (the cutoff).
        run: u16,
    },
    /// A symbol took `count` of the window's places.
    AdaptiveProportion {
        /// The window's first symbol.
        symbol: u8,
        /// Its occurrences so far in the window (the cutoff).
        count: u16,
    },
}

/// Where a source stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Status {
    /// Still in start-up testing: `seen` of [`STARTUP_SYMBOLS`] symbols passed.
    Startup {
        /// Symbols tested so far.
        seen: u16,
    },
    /// Passed start-up, no failure since: symbols are credited.
    Healthy,
    /// Failed; never used again this boot.
    Failed(Failure),
}

/// What the tests made of one symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Use the symbol and credit its min-entropy.
    Credit,
    /// Discard the symbol (start-up testing, or the source has failed).
    Discard,
    /// This symbol made the source fail: report it.
    Failed(Failure),
}

/// Repetition count and adaptive proportion tests over one source.
#[derive(Debug, Clone)]
pub struct HealthTest {
    cutoffs: Cutoffs,
    status: Status,
    // repetition count test
    last: u8,
    run: u16,
    // adaptive proportion test
    reference: u8,
    in_window: u16,
    matches: u16,
}

impl HealthTest {
    /// A test for a source claiming `h` per symbol, in start-up.
    pub const fn new(h: MinEntropy) -> Self {
        Self {
            cutoffs: h.cutoffs(),
            status: Status::Startup { seen: 0 },
            last: 0,
            run: 0,
            reference: 0,
            in_window: 0,
            matches: 0,
        }
    }

    /// The source's status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Runs both tests on the next symbol.
    pub fn check(&mut self, symbol: u8) -> Verdict {
        if let Status::Failed(_) = self.status {
            return Verdict::Discard;
        }
        if let Some(failure) = self.repetition(symbol).or(self.proportion(symbol)) {
            self.status = Status::Failed(failure);
            return Verdict::Failed(failure);
        }
        match &mut self.status {
            Status::Startup { seen } => {
                *seen += 1;
                if *seen >= STARTUP_SYMBOLS {
                    self.status = Status::Healthy;
                }
                Verdict::Discard
            }
            Status::Healthy => Verdict::Credit,
            Status::Failed(_) => Verdict::Discard,
        }
    }

    fn repetition(&mut self, symbol: u8) -> Option<Failure> {
        if self.run > 0 && symbol == self.last {
            self.run += 1;
        } else {
            self.last = symbol;
            self.run = 1;
        }
        (self.run >= self.cutoffs.repetition).then_some(Failure::RepetitionCount {
            symbol,
            run: self.run,
        })
    }

    fn proportion(&mut self, symbol: u8) -> Option<Failure> {
        if self.in_window == 0 {
            self.reference = symbol;
            self.matches = 1;
            self.in_window = 1;
            return None;
        }
        if symbol == self.reference {
            self.matches += 1;
        }
        self.in_window += 1;
        let failed =
            (self.matches >= self.cutoffs.proportion).then_some(Failure::AdaptiveProportion {
                symbol: self.reference,
                count: self.matches,
            });
        if self.in_window >= APT_WINDOW {
            self.in_window = 0;
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    const ALL: [(MinEntropy, f64); 5] = [
        (MinEntropy::HalfBit, 0.5),
        (MinEntropy::OneBit, 1.0),
        (MinEntropy::TwoBits, 2.0),
        (MinEntropy::FourBits, 4.0),
        (MinEntropy::SixBits, 6.0),
    ];

    /// `1 + CRITBINOM(n, p, 1 - 2^-20)`, summing the binomial pmf in log space.
    fn apt_cutoff(n: u32, p: f64) -> u16 {
        let ln_fact = |k: u32| (1..=k).map(|i| f64::from(i).ln()).sum::<f64>();
        let target = 1.0 - 2f64.powi(-20);
        let mut cdf = 0.0;
        for k in 0..=n {
            let ln_pmf = ln_fact(n) - ln_fact(k) - ln_fact(n - k)
                + f64::from(k) * p.ln()
                + f64::from(n - k) * (1.0 - p).ln();
            cdf += ln_pmf.exp();
            if cdf >= target {
                return 1 + k as u16;
            }
        }
        unreachable!()
    }

    #[test]
    fn cutoff_table_matches_sp800_90b_formulas() {
        for (h, bits) in ALL {
            let c = h.cutoffs();
            assert_eq!(c.repetition, 1 + (20.0 / bits).ceil() as u16, "{h:?}");
            assert_eq!(
                c.proportion,
                apt_cutoff(u32::from(APT_WINDOW), 2f64.powf(-bits)),
                "{h:?}"
            );
            assert_eq!(h.eighths(), (bits * 8.0) as u16);
        }
        // Published anchor points (SP 800-90B table 2, W = 1024): H = 1 gives 589.
        assert_eq!(MinEntropy::OneBit.cutoffs().proportion, 589);
    }

    /// SplitMix64: a stand-in for a good source.
    fn good(seed: u64) -> impl Iterator<Item = u8> {
        let mut s = seed;
        core::iter::repeat_with(move || {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as u8
        })
    }

    fn run(h: MinEntropy, symbols: impl Iterator<Item = u8>, n: usize) -> (HealthTest, usize) {
        let mut t = HealthTest::new(h);
        let credited = symbols
            .take(n)
            .filter(|&s| t.check(s) == Verdict::Credit)
            .count();
        (t, credited)
    }

    #[test]
    fn a_good_source_passes_startup_and_is_credited() {
        for (h, _) in ALL {
            let (t, credited) = run(h, good(7), 100_000);
            assert_eq!(t.status(), Status::Healthy, "{h:?}");
            assert_eq!(credited, 100_000 - usize::from(STARTUP_SYMBOLS));
        }
    }

    #[test]
    fn nothing_is_credited_during_startup() {
        let (t, credited) = run(MinEntropy::OneBit, good(1), 1023);
        assert_eq!(t.status(), Status::Startup { seen: 1023 });
        assert_eq!(credited, 0);
    }

    #[test]
    fn a_stuck_source_fails_the_repetition_count_test() {
        let (t, credited) = run(MinEntropy::OneBit, core::iter::repeat(0x5a), 5000);
        assert_eq!(
            t.status(),
            Status::Failed(Failure::RepetitionCount {
                symbol: 0x5a,
                run: 21
            })
        );
        assert_eq!(credited, 0);
    }

    #[test]
    fn a_source_stuck_after_startup_fails_and_stops_being_credited() {
        let symbols = good(3).take(3000).chain(core::iter::repeat(0));
        let (t, credited) = run(MinEntropy::FourBits, symbols, 10_000);
        assert!(matches!(
            t.status(),
            Status::Failed(Failure::RepetitionCount { run: 6, .. })
        ));
        // Credited: the good symbols after start-up, and at most the 5 repeats that were
        // still below the cutoff.
        assert!(credited <= 3000 - 1024 + 5, "{credited}");
    }

    #[test]
    fn a_biased_source_that_never_repeats_long_fails_the_proportion_test() {
        // Alternates 0 with a good odd symbol, starting with 0: runs stay short, but 0
        // opens and fills half of every window, which a claim of 4 bits per symbol cannot allow (cutoff 105).
        let mut g = good(9);
        let mut i = 0u32;
        let biased = core::iter::repeat_with(move || {
            i += 1;
            if i % 2 == 1 {
                0
            } else {
                g.next().unwrap_or(1) | 1
            }
        });
        let (t, _) = run(MinEntropy::FourBits, biased, 5000);
        assert!(
            matches!(
                t.status(),
                Status::Failed(Failure::AdaptiveProportion {
                    symbol: 0,
                    count: 105
                })
            ),
            "{:?}",
            t.status()
        );
        // The same bias is acceptable for a half-bit claim (cutoff 793 of 1024): it
        // passes start-up and keeps passing.
        let mut g = good(9);
        let mut i = 0u32;
        let biased = core::iter::repeat_with(move || {
            i += 1;
            if i % 2 == 1 {
                0
            } else {
                g.next().unwrap_or(1) | 1
            }
        });
        let (t, _) = run(MinEntropy::HalfBit, biased, 50_000);
        assert_eq!(t.status(), Status::Healthy);
    }

    #[test]
    fn a_short_cycle_fails() {
        // A counter repeating every 4 symbols: no repetition, but the window's first
        // symbol comes back 256 times in 1024.
        let cycle = (0u8..4).cycle();
        let (t, _) = run(MinEntropy::FourBits, cycle, 5000);
        assert!(matches!(
            t.status(),
            Status::Failed(Failure::AdaptiveProportion { count: 105, .. })
        ));
    }
}
