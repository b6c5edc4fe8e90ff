//! Getting on the air within the regional rules: channel hopping, data-rate choice and
//! the duty-cycle / dwell-time tracker of `slope-radios`.
//!
//! For each frame, [`Air::admit`] tries the data rates from the plan's lowest (longest
//! range) up, and at each the region's channels from a random start, and records the
//! first transmission the tracker allows. When the budget is spent everywhere it says
//! until when to wait; when the frame cannot be sent at all under the plan (too long for
//! every data rate, or for the dwell limit) it says so.

use slope_radios::airtime::Modulation;
use slope_radios::duty_cycle::{DutyCycle, Refused};
use slope_radios::radio::TxParams;
use slope_radios::region::Region;

/// Where and how the device transmits and listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Regional rules.
    pub region: Region,
    /// Lowest data rate used (index in the region's table): routine attestations go
    /// here when they fit, and the device listens here.
    pub min_dr: u8,
    /// Highest data rate used (establishment events are longer).
    pub max_dr: u8,
    /// Conducted output power, dBm.
    pub power_dbm: i8,
}

impl Plan {
    /// EU868: SF9 to SF7 at 125 kHz, 14 dBm.
    pub const EU868: Plan = Plan {
        region: Region::Eu868,
        min_dr: 3,
        max_dr: 5,
        power_dbm: 14,
    };

    /// US915: SF8/500 kHz and SF7/125 kHz (the dwell limit rules out slower rates for
    /// Slope frames), 20 dBm.
    pub const US915: Plan = Plan {
        region: Region::Us915,
        min_dr: 3,
        max_dr: 4,
        power_dbm: 20,
    };

    /// The modulation the device listens with.
    pub fn listen_modulation(&self) -> Option<Modulation> {
        self.region.data_rate(self.min_dr).map(|d| d.modulation())
    }

    /// The region's first channel with [`Plan::listen_modulation`]: what a radio is set
    /// up with at boot, before the device role tunes it for a receive window. `None` when
    /// the plan has no channel or no listening data rate.
    pub fn first_listen(&self) -> Option<(u32, Modulation)> {
        let freq_hz = *self.region.default_channels().first()?;
        Some((freq_hz, self.listen_modulation()?))
    }
}

/// Why a frame is not sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Hold {
    /// Every allowed channel's budget is spent until this instant (µs).
    Until(u64),
    /// No data rate and channel of the plan can carry a frame this long.
    Never,
}

/// The transmit side of the plan, with its duty-cycle state.
pub struct Air {
    plan: Plan,
    duty: DutyCycle,
    hop: u32,
}

impl Air {
    /// A fresh tracker; `seed` decorrelates the channel hopping of devices that boot
    /// together.
    pub fn new(plan: Plan, seed: u32) -> Self {
        Self {
            plan,
            duty: DutyCycle::new(plan.region),
            hop: seed | 1,
        }
    }

    /// Mixes fresh randomness into the hopping sequence.
    pub fn reseed(&mut self, seed: u32) {
        self.hop = (self.hop ^ seed) | 1;
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// A pseudo-random number for hopping and jitter (xorshift32; not for keys).
    pub fn next_random(&mut self) -> u32 {
        let mut x = self.hop;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.hop = x;
        x
    }

    /// The channel to listen on next.
    pub fn listen_channel(&mut self) -> Option<u32> {
        let channels = self.plan.region.default_channels();
        let n = channels.len() as u32;
        (n > 0).then(|| channels[(self.next_random() % n) as usize])
    }

    /// Admits a `len`-byte frame at `now_us` on some channel and data rate, recording it.
    pub fn admit(&mut self, now_us: u64, len: usize) -> Result<TxParams, Hold> {
        let region = self.plan.region;
        let channels = region.default_channels();
        if channels.is_empty() {
            return Err(Hold::Never);
        }
        let start = self.next_random() as usize % channels.len();
        let mut earliest: Option<u64> = None;
        for dr in self.plan.min_dr..=self.plan.max_dr {
            let Some(rate) = region.data_rate(dr) else {
                continue;
            };
            let modulation = rate.modulation();
            for k in 0..channels.len() {
                let freq_hz = channels[(start + k) % channels.len()];
                match self.duty.try_transmit(now_us, freq_hz, modulation, len) {
                    Ok(_) => {
                        return Ok(TxParams {
                            freq_hz,
                            modulation,
                            power_dbm: self.plan.power_dbm,
                        });
                    }
                    Err(Refused::WaitUntil(t)) => {
                        earliest = Some(earliest.map_or(t, |e| e.min(t)));
                    }
                    // Too long for this rate (or the dwell limit): try a faster one.
                    Err(_) => {}
                }
            }
        }
        Err(earliest.map_or(Hold::Never, Hold::Until))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slope_radios::SpreadingFactor;

    #[test]
    fn short_frames_go_slow_long_ones_faster() {
        let mut air = Air::new(Plan::EU868, 1);
        let p = air.admit(0, 100).unwrap();
        assert_eq!(p.modulation.sf, SpreadingFactor::_9);
        let p = air.admit(0, 160).unwrap();
        assert_eq!(p.modulation.sf, SpreadingFactor::_8);
        assert_eq!(air.admit(0, 256), Err(Hold::Never));
    }

    #[test]
    fn the_duty_cycle_holds_frames_back() {
        let mut air = Air::new(Plan::EU868, 7);
        let mut sent = 0u32;
        let held = loop {
            match air.admit(0, 150) {
                Ok(_) => sent += 1,
                Err(h) => break h,
            }
        };
        // The three default channels share sub-band g1: 1 % of an hour is 36 s of air,
        // ~300 ms per frame at SF8 and ~170 ms at SF7: a bounded burst, then a wait.
        assert!(sent > 50 && sent < 250, "{sent}");
        assert!(matches!(held, Hold::Until(t) if t > 0), "{held:?}");
    }

    #[test]
    fn us915_respects_the_dwell_limit() {
        let mut air = Air::new(Plan::US915, 3);
        let p = air.admit(0, 160).unwrap();
        let airtime = p.modulation.time_on_air_us(160).unwrap();
        assert!(airtime <= 400_000, "{airtime}");
    }
}
