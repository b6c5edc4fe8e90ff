//! Per-node enforcement of regional transmit limits: duty cycle per sub-band over a sliding
//! one-hour window, US915 dwell time, and the data rate's maximum payload.
//!
//! [`DutyCycle`] answers "may I send this now?" with either the time on air or a typed
//! [`Refused`] carrying the earliest instant the same transmission would be allowed. It
//! never drops anything itself. Time is passed in (microseconds on the caller's clock).
//!
//! # Guarantee
//!
//! For every sub-band and every window `(t − 1 h, t]`, the time on air of admitted frames
//! that falls in the window is at most `duty_cycle × 1 h`. The tracker admits a frame
//! starting at `now` with airtime `a` only if the airtime of all earlier frames that *end*
//! after `now − 1 h`, plus `a`, fits the budget. Memory is a fixed `N` entries per
//! sub-band; when full, the two oldest entries are merged into one that ends at the later
//! end time, which can only over-count, so the guarantee is kept at the price of some
//! conservatism under very dense traffic.

use crate::airtime::{MAX_PHY_PAYLOAD, Modulation};
use crate::region::{MAX_SUB_BANDS, Region};

/// Length of the duty-cycle window (ETSI EN 300 220: one hour), in microseconds.
pub const WINDOW_US: u64 = 3_600_000_000;

/// Why a transmission was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    /// The sub-band's duty-cycle budget is spent; the same frame is allowed from this
    /// instant (microseconds, caller's clock).
    WaitUntil(u64),
    /// The frame alone is longer than the region's dwell limit; waiting does not help.
    DwellTime {
        /// Time on air of the frame.
        airtime_us: u32,
        /// The region's limit.
        limit_us: u32,
    },
    /// The frame alone exceeds the sub-band's hourly budget; waiting does not help.
    ExceedsBudget {
        /// Time on air of the frame.
        airtime_us: u32,
        /// Budget of the sub-band per window.
        budget_us: u64,
    },
    /// The frequency (with the channel's bandwidth) is not inside one of the region's
    /// sub-bands.
    OutOfBand {
        /// Centre frequency requested.
        freq_hz: u32,
    },
    /// The spreading factor and bandwidth are not one of the region's data rates.
    NoSuchDataRate,
    /// The PHY payload is longer than the data rate allows.
    PayloadTooLarge {
        /// Requested PHY payload length.
        len: usize,
        /// Maximum at this data rate.
        max: usize,
    },
}

impl core::fmt::Display for Refused {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Refused::WaitUntil(t) => write!(f, "duty cycle spent: wait until {t} us"),
            Refused::DwellTime {
                airtime_us,
                limit_us,
            } => {
                write!(
                    f,
                    "airtime {airtime_us} us exceeds the dwell limit of {limit_us} us"
                )
            }
            Refused::ExceedsBudget {
                airtime_us,
                budget_us,
            } => {
                write!(
                    f,
                    "airtime {airtime_us} us exceeds the hourly budget of {budget_us} us"
                )
            }
            Refused::OutOfBand { freq_hz } => write!(f, "{freq_hz} Hz is outside every sub-band"),
            Refused::NoSuchDataRate => f.write_str("modulation is not a data rate of the region"),
            Refused::PayloadTooLarge { len, max } => {
                write!(f, "payload of {len} bytes exceeds {max} at this data rate")
            }
        }
    }
}

/// A transmission the tracker has admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Time on air of the frame in microseconds.
    pub airtime_us: u32,
    /// Index of the sub-band charged.
    pub sub_band: u8,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Entry {
    end_us: u64,
    airtime_us: u64,
}

/// Fixed-capacity record of recent transmissions in one sub-band, sorted by end time.
#[derive(Debug, Clone)]
struct Ledger<const N: usize> {
    entries: [Entry; N],
    len: usize,
}

impl<const N: usize> Ledger<N> {
    const fn new() -> Self {
        Self {
            entries: [Entry {
                end_us: 0,
                airtime_us: 0,
            }; N],
            len: 0,
        }
    }

    fn live(&self) -> &[Entry] {
        &self.entries[..self.len]
    }

    fn counts(e: &Entry, now_us: u64) -> bool {
        e.end_us.saturating_add(WINDOW_US) > now_us
    }

    fn used_us(&self, now_us: u64) -> u64 {
        self.live()
            .iter()
            .filter(|e| Self::counts(e, now_us))
            .map(|e| e.airtime_us)
            .sum()
    }

    /// Earliest instant at which `used + airtime <= budget`, given `budget >= airtime`.
    fn allowed_from(&self, now_us: u64, airtime_us: u64, budget_us: u64) -> u64 {
        let used = self.used_us(now_us);
        let Some(excess) = (used + airtime_us)
            .checked_sub(budget_us)
            .filter(|x| *x > 0)
        else {
            return now_us;
        };
        let mut freed = 0u64;
        for e in self.live().iter().filter(|e| Self::counts(e, now_us)) {
            freed += e.airtime_us;
            if freed >= excess {
                return e.end_us.saturating_add(WINDOW_US);
            }
        }
        // Unreachable while budget >= airtime; stay conservative regardless.
        self.live()
            .last()
            .map_or(now_us, |e| e.end_us.saturating_add(WINDOW_US))
    }

    fn record(&mut self, now_us: u64, end_us: u64, airtime_us: u64) {
        // Forget what can no longer count.
        let keep_from = self
            .live()
            .iter()
            .take_while(|e| !Self::counts(e, now_us))
            .count();
        self.entries.copy_within(keep_from..self.len, 0);
        self.len -= keep_from;
        if N == 0 {
            return;
        }
        if self.len == N {
            if N == 1 {
                // Merge with the only entry; the later end keeps it conservative.
                let e = &mut self.entries[0];
                e.airtime_us += airtime_us;
                e.end_us = e.end_us.max(end_us);
                return;
            }
            // Merge the two oldest: all their airtime moves to the later end time.
            let merged = Entry {
                end_us: self.entries[1].end_us,
                airtime_us: self.entries[0].airtime_us + self.entries[1].airtime_us,
            };
            self.entries.copy_within(2..self.len, 1);
            self.entries[0] = merged;
            self.len -= 1;
        }
        let at = self.live().partition_point(|e| e.end_us <= end_us);
        self.entries.copy_within(at..self.len, at + 1);
        self.entries[at] = Entry { end_us, airtime_us };
        self.len += 1;
    }
}

/// Transmit-limit tracker for one node, in one region.
///
/// `N` bounds the remembered transmissions per sub-band (default 16).
#[derive(Debug, Clone)]
pub struct DutyCycle<const N: usize = 16> {
    region: Region,
    ledgers: [Ledger<N>; MAX_SUB_BANDS],
}

impl<const N: usize> DutyCycle<N> {
    /// An empty tracker.
    pub const fn new(region: Region) -> Self {
        Self {
            region,
            ledgers: [const { Ledger::new() }; MAX_SUB_BANDS],
        }
    }

    /// The region this tracker enforces.
    pub const fn region(&self) -> Region {
        self.region
    }

    /// Check a transmission of `len` PHY bytes starting at `now_us`, without recording it.
    pub fn check(
        &self,
        now_us: u64,
        freq_hz: u32,
        modulation: Modulation,
        len: usize,
    ) -> Result<Grant, Refused> {
        let dr = self
            .region
            .data_rate_for(modulation.sf, modulation.bw)
            .ok_or(Refused::NoSuchDataRate)?;
        let max = dr.max_phy_payload().min(MAX_PHY_PAYLOAD);
        let airtime_us = modulation
            .time_on_air_us(len)
            .map_err(|_| Refused::PayloadTooLarge { len, max })?;
        // The dwell limit is the physical rule; the payload table is derived from it.
        if let Some(limit_us) = self.region.dwell_limit_us() {
            if airtime_us > limit_us {
                return Err(Refused::DwellTime {
                    airtime_us,
                    limit_us,
                });
            }
        }
        if len > max {
            return Err(Refused::PayloadTooLarge { len, max });
        }
        let band = self
            .region
            .sub_band(freq_hz, modulation.bw)
            .ok_or(Refused::OutOfBand { freq_hz })?;
        let grant = Grant {
            airtime_us,
            sub_band: band.index,
        };
        if band.duty_cycle_bp >= 10_000 {
            return Ok(grant);
        }
        let budget_us = WINDOW_US * u64::from(band.duty_cycle_bp) / 10_000;
        if u64::from(airtime_us) > budget_us {
            return Err(Refused::ExceedsBudget {
                airtime_us,
                budget_us,
            });
        }
        let ledger = self
            .ledger(band.index)
            .ok_or(Refused::OutOfBand { freq_hz })?;
        let from = ledger.allowed_from(now_us, u64::from(airtime_us), budget_us);
        if from > now_us {
            Err(Refused::WaitUntil(from))
        } else {
            Ok(grant)
        }
    }

    /// Check and, if admitted, record a transmission starting at `now_us`.
    pub fn try_transmit(
        &mut self,
        now_us: u64,
        freq_hz: u32,
        modulation: Modulation,
        len: usize,
    ) -> Result<Grant, Refused> {
        let grant = self.check(now_us, freq_hz, modulation, len)?;
        let airtime = u64::from(grant.airtime_us);
        if let Some(ledger) = self.ledgers.get_mut(usize::from(grant.sub_band)) {
            ledger.record(now_us, now_us.saturating_add(airtime), airtime);
        }
        Ok(grant)
    }

    /// Airtime (µs) counted against sub-band `index` at `now_us`.
    pub fn used_us(&self, now_us: u64, sub_band: u8) -> u64 {
        self.ledger(sub_band).map_or(0, |l| l.used_us(now_us))
    }

    fn ledger(&self, index: u8) -> Option<&Ledger<N>> {
        self.ledgers.get(usize::from(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lora_modulation::{Bandwidth, SpreadingFactor};

    const SF12: Modulation = Modulation::new(SpreadingFactor::_12, Bandwidth::_125KHz);
    const SF7: Modulation = Modulation::new(SpreadingFactor::_7, Bandwidth::_125KHz);

    #[test]
    fn one_percent_budget_then_wait() {
        let mut dc = DutyCycle::<16>::new(Region::Eu868);
        let f = 868_100_000;
        // 50 B at SF12: 2.301952 s; 1 % of 1 h = 36 s -> 15 frames fit.
        let mut t = 0u64;
        for _ in 0..15 {
            let g = dc.try_transmit(t, f, SF12, 50).expect("within budget");
            assert_eq!(g.airtime_us, 2_301_952);
            t += 10_000_000;
        }
        let refused = dc.try_transmit(t, f, SF12, 50);
        // The first frame (ended at 2.301952 s) must leave the window first.
        assert_eq!(refused, Err(Refused::WaitUntil(2_301_952 + WINDOW_US)));
        // Another sub-band has its own budget.
        assert!(dc.try_transmit(t, 869_525_000, SF12, 50).is_ok());
        // At the announced instant it is allowed.
        assert!(dc.try_transmit(2_301_952 + WINDOW_US, f, SF12, 50).is_ok());
    }

    #[test]
    fn limits_are_typed() {
        let dc = DutyCycle::<4>::new(Region::Eu868);
        assert_eq!(
            dc.check(0, 915_000_000, SF7, 10),
            Err(Refused::OutOfBand {
                freq_hz: 915_000_000
            })
        );
        assert_eq!(
            dc.check(0, 868_100_000, SF12, 65),
            Err(Refused::PayloadTooLarge { len: 65, max: 64 })
        );
        assert!(dc.check(0, 868_100_000, SF12, 64).is_ok());
        let sf6 = Modulation::new(SpreadingFactor::_6, Bandwidth::_125KHz);
        assert_eq!(
            dc.check(0, 868_100_000, sf6, 10),
            Err(Refused::NoSuchDataRate)
        );
        // 0.1 % band: 3.6 s budget, SF12 with 64 B takes ~2.8 s: one fits, two do not.
        let mut dc = DutyCycle::<4>::new(Region::Eu868);
        assert!(dc.try_transmit(0, 868_800_000, SF12, 64).is_ok());
        assert!(matches!(
            dc.try_transmit(5_000_000, 868_800_000, SF12, 64),
            Err(Refused::WaitUntil(_))
        ));
    }

    #[test]
    fn us915_dwell_limit() {
        let dc = DutyCycle::<4>::new(Region::Us915);
        let sf10 = Modulation::new(SpreadingFactor::_10, Bandwidth::_125KHz);
        // DR0 allows a 24 B PHY payload: ~371 ms, under 400 ms.
        assert!(dc.check(0, 903_900_000, sf10, 24).is_ok());
        // 50 B at SF10 would take ~616 ms: refused for dwell time, not for waiting.
        assert!(matches!(
            dc.check(0, 903_900_000, sf10, 50),
            Err(Refused::DwellTime {
                limit_us: 400_000,
                ..
            })
        ));
        // Every RP002 payload limit fits the dwell time.
        for dr in Region::Us915.data_rates() {
            let f = if dr.bw == Bandwidth::_500KHz {
                903_000_000
            } else {
                903_900_000
            };
            assert!(
                dc.check(0, f, dr.modulation(), dr.max_phy_payload())
                    .is_ok(),
                "{dr:?}"
            );
        }
        // No duty cycle in US915: back-to-back frames are fine.
        let mut dc = DutyCycle::<4>::new(Region::Us915);
        for i in 0..1000 {
            assert!(dc.try_transmit(i * 400_000, 903_900_000, SF7, 255).is_ok());
        }
    }

    #[test]
    fn merging_keeps_budget() {
        let mut dc = DutyCycle::<2>::new(Region::Eu868);
        let mut sent = 0u64;
        let mut t = 0;
        while t < WINDOW_US {
            if let Ok(g) = dc.try_transmit(t, 868_100_000, SF7, 20) {
                sent += u64::from(g.airtime_us);
            }
            t += 1_000_000;
        }
        assert!(sent <= WINDOW_US / 100, "{sent}");
        assert!(sent > WINDOW_US / 200, "too conservative: {sent}");
    }
}
