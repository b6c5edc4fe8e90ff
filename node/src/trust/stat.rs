//! Quantised running statistics: a mean and a mean absolute deviation in 4 bytes, updated
//! with integer arithmetic only (the same result on every platform).
//!
//! The first `2^window_log2` samples are averaged cumulatively (fast convergence); after
//! that the statistic is an exponentially weighted average with weight `2^-window_log2`,
//! so it follows slow drift (seasons, a re-aimed antenna) but not a sudden jump.

/// Mean and mean absolute deviation of a quantity, in the caller's unit (typically q4 of
/// dB or 4 Hz steps), saturating at the `i16`/`u16` range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    pub mean: i16,
    pub dev: u16,
}

impl Stat {
    /// Adds sample `x`, which is sample number `n` (1-based) of this statistic.
    pub fn update(&mut self, x: i32, n: u16, window_log2: u8) {
        let x = x.clamp(i32::from(i16::MIN), i32::from(i16::MAX));
        if n <= 1 {
            self.mean = x as i16;
            self.dev = 0;
            return;
        }
        let div = i32::from(n).min(1 << window_log2.min(14));
        let mean = i32::from(self.mean);
        let diff = x - mean;
        // Round to nearest, towards the sample, so small steps still move the mean.
        let step = (diff + diff.signum() * (div / 2)) / div;
        let new_mean = (mean + step).clamp(i32::from(i16::MIN), i32::from(i16::MAX));
        let dev = i32::from(self.dev);
        let dd = diff.abs() - dev;
        let dstep = (dd + dd.signum() * (div / 2)) / div;
        self.mean = new_mean as i16;
        self.dev = (dev + dstep).clamp(0, i32::from(u16::MAX)) as u16;
    }

    /// How many deviations (q4: sixteenths) `x` is from the mean, with `floor` as the
    /// smallest deviation used. Saturates at `u16::MAX`.
    pub fn distance_q4(&self, x: i32, floor: u16) -> u16 {
        let d = (i64::from(x) - i64::from(self.mean)).unsigned_abs();
        let scale = u64::from(self.dev.max(floor).max(1));
        u16::try_from(d.saturating_mul(16) / scale).unwrap_or(u16::MAX)
    }
}

/// Mean and deviation of the interval between positions, in q4 seconds (up to ~3 days
/// per position; longer silences are dormancy, measured separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interval {
    pub mean_q4s: u32,
    pub dev_q4s: u32,
}

impl Interval {
    /// Adds an interval of `ms` milliseconds per position, sample number `n`.
    pub fn update(&mut self, ms: u64, n: u32, window_log2: u8) {
        let x = i64::try_from((ms.saturating_mul(16) / 1000).min(u64::from(u32::MAX))).unwrap_or(0);
        if n <= 1 {
            self.mean_q4s = x as u32;
            self.dev_q4s = 0;
            return;
        }
        let div = i64::from(n.min(1 << window_log2.min(30)));
        let mean = i64::from(self.mean_q4s);
        let diff = x - mean;
        let step = (diff + diff.signum() * (div / 2)) / div;
        let dev = i64::from(self.dev_q4s);
        let dd = diff.abs() - dev;
        let dstep = (dd + dd.signum() * (div / 2)) / div;
        self.mean_q4s = (mean + step).clamp(0, i64::from(u32::MAX)) as u32;
        self.dev_q4s = (dev + dstep).clamp(0, i64::from(u32::MAX)) as u32;
    }

    /// The mean interval in milliseconds.
    pub fn mean_ms(&self) -> u64 {
        u64::from(self.mean_q4s) * 1000 / 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges_and_bounds() {
        let mut s = Stat::default();
        for n in 1..=200u16 {
            let x = if n % 2 == 0 { -1600 - 16 } else { -1600 + 16 };
            s.update(x, n, 4);
        }
        assert!((i32::from(s.mean) + 1600).abs() <= 2, "{s:?}");
        assert!((i32::from(s.dev) - 16).abs() <= 3, "{s:?}");
        assert!((140..=170).contains(&s.distance_q4(-1600 + 160, 16)));
        let mut e = Stat::default();
        for n in 1..=50u16 {
            e.update(i32::MAX, n, 4);
        }
        assert_eq!(e.mean, i16::MAX);
    }

    #[test]
    fn interval_mean() {
        let mut i = Interval::default();
        for n in 1..=64u32 {
            i.update(900_000 + u64::from(n % 3) * 10_000, n, 4);
        }
        assert!((i.mean_ms() as i64 - 910_000).abs() < 5_000, "{i:?}");
    }
}
