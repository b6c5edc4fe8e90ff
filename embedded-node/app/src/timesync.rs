//! Unix time for the compact suite, from the gateways' time echoes and witness receipts
//! heard on air.
//!
//! The device's own clock ([`crate::clock::Clock`]) is monotonic since boot. The compact
//! suite (docs/compact-suite.md §3) needs Unix time: a device clock pushed **ahead** of
//! true time discloses its chain keys early, which breaks the security condition; one
//! pushed **behind** only gets its frames refused (a denial of service a radio attacker
//! has anyway). Receipts are not authenticated for the device (it holds no gateway
//! keys), so every sample may be an attacker's. The policy below is built so that
//! samples can only ever pull the clock *ahead* as fast as the crystal could have
//! fallen behind.
//!
//! **Samples.** A receipt or a time echo (`slope_proto::compact::Echo`, the short
//! downlink a gateway sends in the device's echo window) counts only if it names this
//! device, the position (or compact interval) **and the event digest** (an echo: its
//! first 8 bytes) of a frame this device sent, and arrives within
//! [`Policy::max_latency_ms`] of that transmission. Its time is the gateway's receive
//! time of that frame. A receipt's sample is assigned to the moment the receipt was
//! heard (it lies before that: behind by the round trip); an echo's to the moment the
//! frame's transmission ended, which is when the gateway received it (the echo's 2 s
//! delay and its airtime would otherwise put every sample ≈ 4 s behind at SF12). Either
//! way an honest sample is ahead of true time by at most the gateway's own error
//! (δ_gw: its clock and its stamping latency). Neither is authenticated; the policy
//! below does not care which kind a sample came from.
//!
//! **Estimate.** Between samples the estimate runs slow by the crystal's tolerance
//! ([`Policy::drift_ppm`], ρ): `E(m) = E₀ + (m − m₀)(1 − ρ)`. A crystal within ±ρ then
//! never carries the estimate ahead of true time; it can only fall behind, by up to
//! 2ρ per unit of time.
//!
//! **Rounds.** The samples heard in one receive window form a round, closed by
//! [`TimeSync::close`]; each sample is projected to the close with the slow rate.
//! - Not synchronised: samples accumulate (at most [`MAX_SAMPLES`], none older than
//!   [`Policy::round_window_ms`]) until [`Policy::quorum`] distinct witnesses have
//!   answered; the clock is set to the **minimum** (the earliest) of them. One honest
//!   witness among them is enough to keep the first estimate within δ_gw of the truth.
//! - Synchronised: if every sample is ahead of the estimate, it moves forward to the
//!   minimum, but by at most 2ρ × (time since the last update) — what the crystal can
//!   have lost. If every sample is behind, it moves back to the **maximum** (the
//!   smallest step back all samples agree on). Mixed rounds change nothing (the
//!   estimate lies within the samples' spread).
//! - A forward step cut short by more than [`Policy::max_lag_ms`]
//!   [`Policy::max_clamped`] rounds in a row (the estimate is far behind every source,
//!   e.g. after an attacker pushed it back)
//!   drops synchronisation: the device leaves the compact suite and synchronises again
//!   by quorum.
//! - No update for [`Policy::max_age_ms`]: not synchronised (the estimate may have
//!   fallen too far behind for the verifiers' window).
//!
//! **Invariant** (property test `attacker_never_pushes_the_clock_ahead`): the estimate
//! is never ahead of true time by more than δ_gw + 2ρ × (time spanned by rounds in
//! which no honest receipt was heard) — so with an honest receipt in every round, never
//! by more than δ_gw; and an attacker who jams every honest gateway gains at most
//! 2ρ (100 µs per second at ρ = 50 ppm, 8.6 s a day).
//! The first synchronisation is the weak point: an attacker who controls *everything*
//! the device hears until it has heard [`Policy::quorum`] witnesses sets its clock. A
//! device whose clock is ahead by more than the verifiers' skew sees its own frames
//! refused as `Future`, which the gateways can see.
//!
//! Without synchronisation the device stays in suite 1.

use heapless::Vec;
use slope_proto::{LinkDigest, WitnessId};

/// Samples kept while synchronising.
pub const MAX_SAMPLES: usize = 8;
/// Own frames whose receipts are awaited.
pub const MAX_SENT: usize = 4;

/// The synchronisation policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The crystal's worst-case frequency error, parts per million (ρ).
    pub drift_ppm: u32,
    /// Distinct witnesses needed for a first synchronisation.
    pub quorum: u8,
    /// A receipt counts only if heard within this of the frame it witnesses.
    pub max_latency_ms: u64,
    /// Samples older than this are dropped while synchronising.
    pub round_window_ms: u64,
    /// Without an update for this long, the clock is no longer synchronised.
    pub max_age_ms: u64,
    /// Forward steps cut short by more than [`Policy::max_lag_ms`] this many rounds in a
    /// row drop synchronisation.
    pub max_clamped: u8,
    /// A forward step cut short by at most this much is ordinary (the sources' jitter
    /// exceeds what the crystal can drift between two cycles): the estimate just stays
    /// a little behind.
    pub max_lag_ms: u64,
}

impl Policy {
    /// ρ = 50 ppm (a 20 ppm crystal over temperature, with margin), 2 witnesses, 30 s
    /// latency, a 2-hour window to gather the first quorum, 24 h without an update
    /// (at most 8.6 s behind), 4 rounds in a row more than 5 s behind every source.
    pub const DEFAULT: Policy = Policy {
        drift_ppm: 50,
        quorum: 2,
        max_latency_ms: 30_000,
        round_window_ms: 2 * 3_600_000,
        max_age_ms: 24 * 3_600_000,
        max_clamped: 4,
        max_lag_ms: 5_000,
    };

    /// `d × ρ` in ms, rounded down: what a crystal can gain or lose over `d` ms (the
    /// forward allowance, so rounded against the step).
    fn drift(&self, d: u64) -> u64 {
        d.saturating_mul(u64::from(self.drift_ppm)) / 1_000_000
    }

    /// Projects Unix time `unix` at monotonic `from` to monotonic `to` with the slow
    /// rate `(1 − ρ)`, rounded down (never ahead of the exact slow projection).
    fn project(&self, unix: u64, from: u64, to: u64) -> u64 {
        let d = to.saturating_sub(from);
        let slow = d
            .saturating_mul(u64::from(self.drift_ppm))
            .div_ceil(1_000_000);
        unix.saturating_add(d.saturating_sub(slow))
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What closing a round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Update {
    /// No sample this round (or not enough witnesses yet).
    None,
    /// Synchronised for the first time (or again, after losing it).
    Synced,
    /// Moved forward by this many ms (`clamped`: by less than the samples asked).
    Forward {
        /// Milliseconds.
        ms: u64,
        /// Whether the step was cut to the drift bound.
        clamped: bool,
    },
    /// Moved back by this many ms.
    Backward(u64),
    /// The samples lie on both sides of the estimate: unchanged.
    Held,
    /// Synchronisation dropped (forward steps cut short too often): the device leaves
    /// the compact suite until a quorum answers again.
    Lost,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    mono_ms: u64,
    seq: u32,
    event: LinkDigest,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    witness: WitnessId,
    /// Monotonic time the receipt was heard, and the gateway's time it carried.
    mono_ms: u64,
    unix_ms: u64,
}

/// The estimate: Unix time `unix_ms` at monotonic `mono_ms`, running slow.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    mono_ms: u64,
    unix_ms: u64,
}

/// Unix time from witness receipts (see the module documentation).
#[derive(Debug, Clone)]
pub struct TimeSync {
    policy: Policy,
    sent: Vec<Sent, MAX_SENT>,
    samples: Vec<Sample, MAX_SAMPLES>,
    estimate: Option<Estimate>,
    clamped: u8,
}

impl TimeSync {
    /// Not synchronised.
    pub const fn new(policy: Policy) -> Self {
        Self {
            policy,
            sent: Vec::new(),
            samples: Vec::new(),
            estimate: None,
            clamped: 0,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Records a frame this device sent, whose transmission **ended** at `mono_ms`: its
    /// position (or compact interval) and event digest, which a receipt or an echo
    /// must name.
    pub fn sent(&mut self, mono_ms: u64, seq: u32, event: LinkDigest) {
        if self.sent.is_full() {
            self.sent.remove(0);
        }
        let _ = self.sent.push(Sent {
            mono_ms,
            seq,
            event,
        });
    }

    /// Offers a witness receipt for one of this device's frames, heard at `mono_ms`.
    /// The sample is the receipt's time at `mono_ms` (the gateway's receive time lies
    /// before that: behind by the round trip). Returns whether it became a sample (it
    /// names a frame sent within the latency bound, and its witness has no sample yet
    /// in this round).
    pub fn offer(
        &mut self,
        mono_ms: u64,
        witness: WitnessId,
        seq: u32,
        event: LinkDigest,
        time_ms: u64,
    ) -> bool {
        self.take(mono_ms, witness, seq, &event.0, time_ms, false)
    }

    /// Offers a time echo (`slope_proto::compact::Echo`) heard at `mono_ms`: it names
    /// the frame by `seq` and the first 8 bytes of its digest. The sample is the echo's
    /// time at the moment the frame's transmission ended (what [`TimeSync::sent`]
    /// recorded), which is when the gateway received it: an honest echo is ahead of
    /// true time by at most the gateway's error (its clock and its stamping latency,
    /// δ_gw), never by the echo's own delay and airtime. Same rules as
    /// [`TimeSync::offer`] otherwise: a gateway's echo and receipt for one frame are one
    /// witness, one sample.
    pub fn offer_echo(
        &mut self,
        mono_ms: u64,
        witness: WitnessId,
        seq: u32,
        digest: &[u8; 8],
        time_ms: u64,
    ) -> bool {
        self.take(mono_ms, witness, seq, digest, time_ms, true)
    }

    /// A sample from a receipt or an echo naming (`seq`, a prefix of the event digest),
    /// heard at `mono_ms`, taken at the frame's end (`at_sent`) or at `mono_ms`.
    #[inline(never)]
    fn take(
        &mut self,
        mono_ms: u64,
        witness: WitnessId,
        seq: u32,
        event: &[u8],
        time_ms: u64,
        at_sent: bool,
    ) -> bool {
        let max = self.policy.max_latency_ms;
        let matched = self.sent.iter().find(|s| {
            s.seq == seq
                && !event.is_empty()
                && s.event.0.starts_with(event)
                && mono_ms >= s.mono_ms
                && mono_ms - s.mono_ms <= max
        });
        let Some(sent) = matched else {
            return false;
        };
        if time_ms == 0 || self.samples.iter().any(|s| s.witness == witness) {
            return false;
        }
        let sample = Sample {
            witness,
            mono_ms: if at_sent { sent.mono_ms } else { mono_ms },
            unix_ms: time_ms,
        };
        if self.samples.is_full() {
            self.samples.remove(0);
        }
        self.samples.push(sample).is_ok()
    }

    /// Closes the round at `mono_ms` (after a receive window).
    #[inline(never)]
    pub fn close(&mut self, mono_ms: u64) -> Update {
        let p = self.policy;
        if let Some(e) = self.estimate
            && mono_ms.saturating_sub(e.mono_ms) > p.max_age_ms
        {
            self.estimate = None;
        }
        // Each sample projected to now, slow.
        let values = self
            .samples
            .iter()
            .map(|s| p.project(s.unix_ms, s.mono_ms, mono_ms));
        let (Some(lo), Some(hi)) = (values.clone().min(), values.max()) else {
            return Update::None;
        };
        let Some(e) = self.estimate else {
            self.samples
                .retain(|s| mono_ms.saturating_sub(s.mono_ms) <= p.round_window_ms);
            if self.samples.len() < usize::from(p.quorum.max(1)) {
                return Update::None;
            }
            self.set(mono_ms, lo);
            return Update::Synced;
        };
        self.samples.clear();
        let now = p.project(e.unix_ms, e.mono_ms, mono_ms);
        if lo > now {
            // Every source is ahead: forward by what the crystal can have lost.
            let allowed = 2 * p.drift(mono_ms.saturating_sub(e.mono_ms));
            let step = (lo - now).min(allowed);
            let clamped = step < lo - now;
            let lagging = lo - now - step > p.max_lag_ms;
            self.clamped = if lagging { self.clamped + 1 } else { 0 };
            if self.clamped >= p.max_clamped {
                self.estimate = None;
                self.clamped = 0;
                return Update::Lost;
            }
            self.set_keep_clamped(mono_ms, now + step);
            Update::Forward { ms: step, clamped }
        } else if hi <= now {
            self.set(mono_ms, hi);
            Update::Backward(now - hi)
        } else {
            self.set(mono_ms, now);
            Update::Held
        }
    }

    fn set(&mut self, mono_ms: u64, unix_ms: u64) {
        self.clamped = 0;
        self.set_keep_clamped(mono_ms, unix_ms);
    }

    fn set_keep_clamped(&mut self, mono_ms: u64, unix_ms: u64) {
        self.estimate = Some(Estimate { mono_ms, unix_ms });
        self.samples.clear();
    }

    /// Unix time (ms) at monotonic `mono_ms`, when synchronised and not stale.
    pub fn unix_ms(&self, mono_ms: u64) -> Option<u64> {
        let e = self.estimate?;
        let age = mono_ms.checked_sub(e.mono_ms)?;
        (age <= self.policy.max_age_ms).then(|| self.policy.project(e.unix_ms, e.mono_ms, mono_ms))
    }

    /// Monotonic time (ms) at which the estimate reads `unix_ms` (`None` when not
    /// synchronised, or when that lies before the last update).
    pub fn mono_ms(&self, unix_ms: u64) -> Option<u64> {
        let e = self.estimate?;
        let d = unix_ms.checked_sub(e.unix_ms)?;
        // Inverse of the slow projection, rounded up (never earlier than asked).
        let rate = 1_000_000 - u64::from(self.policy.drift_ppm.min(999_999));
        Some(
            e.mono_ms
                .saturating_add(d.saturating_mul(1_000_000).div_ceil(rate)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: [WitnessId; 3] = [WitnessId([1; 8]), WitnessId([2; 8]), WitnessId([3; 8])];
    const EV: LinkDigest = LinkDigest([7; 16]);

    #[test]
    fn first_sync_needs_a_quorum_of_matching_receipts_and_takes_the_earliest() {
        let mut s = TimeSync::new(Policy::DEFAULT);
        // A receipt for a frame never sent, or too late, is no sample.
        assert!(!s.offer(100, W[0], 5, EV, 1_000_000));
        s.sent(100, 5, EV);
        assert!(!s.offer(100 + 31_000, W[0], 5, EV, 1_000_000));
        assert!(!s.offer(200, W[0], 5, LinkDigest([8; 16]), 1_000_000));
        assert!(s.offer(200, W[0], 5, EV, 1_000_000));
        assert!(
            !s.offer(210, W[0], 5, EV, 9_000_000),
            "one sample per witness"
        );
        assert_eq!(s.close(300), Update::None);
        assert_eq!(s.unix_ms(300), None);
        assert!(s.offer(400, W[1], 5, EV, 1_000_500));
        assert_eq!(s.close(400), Update::Synced);
        // The earliest: W[0]'s 1_000_000 at 200, projected slow to 400.
        assert_eq!(s.unix_ms(400), Some(1_000_199));
        assert_eq!(s.mono_ms(1_000_199), Some(400));
    }

    #[test]
    fn an_echo_is_taken_at_the_end_of_its_frame_and_counts_as_its_witness() {
        let mut s = TimeSync::new(Policy {
            quorum: 1,
            ..Policy::DEFAULT
        });
        // The frame's transmission ended at 1_000; the echo is heard 4 s later.
        s.sent(1_000, 9, EV);
        let prefix = [7u8; 8];
        assert!(
            !s.offer_echo(5_000, W[0], 8, &prefix, 2_000_000),
            "other seq"
        );
        assert!(
            !s.offer_echo(5_000, W[0], 9, &[6; 8], 2_000_000),
            "other digest"
        );
        assert!(
            !s.offer_echo(500, W[0], 9, &prefix, 2_000_000),
            "before the frame"
        );
        assert!(s.offer_echo(5_000, W[0], 9, &prefix, 2_000_000));
        assert!(
            !s.offer(5_100, W[0], 9, EV, 2_000_000),
            "the same gateway's receipt is the same witness"
        );
        assert_eq!(s.close(5_000), Update::Synced);
        // 2_000_000 at 1_000, projected slow over 4 s: 3_999.8 ms later, rounded down.
        assert_eq!(s.unix_ms(5_000), Some(2_003_999));
    }

    #[test]
    fn forward_steps_are_bounded_by_the_drift_backward_steps_are_not() {
        let mut s = TimeSync::new(Policy {
            quorum: 1,
            ..Policy::DEFAULT
        });
        s.sent(0, 1, EV);
        s.offer(0, W[0], 1, EV, 1_000_000);
        assert_eq!(s.close(0), Update::Synced);
        // An hour later a source claims a minute more: only 2ρ·1h = 360 ms allowed.
        let h = 3_600_000;
        s.sent(h, 2, EV);
        let now = s.unix_ms(h).unwrap();
        s.offer(h, W[1], 2, EV, now + 60_000);
        assert_eq!(
            s.close(h),
            Update::Forward {
                ms: 360,
                clamped: true
            }
        );
        // Behind: accepted in full.
        s.sent(h + 10, 3, EV);
        let now = s.unix_ms(h + 10).unwrap();
        s.offer(h + 10, W[1], 3, EV, now - 5_000);
        assert_eq!(s.close(h + 10), Update::Backward(5_000));
        // Both sides: held.
        s.sent(h + 20, 4, EV);
        let now = s.unix_ms(h + 20).unwrap();
        s.offer(h + 20, W[0], 4, EV, now - 10);
        s.offer(h + 20, W[1], 4, EV, now + 10);
        assert_eq!(s.close(h + 20), Update::Held);
    }

    #[test]
    fn clamped_too_often_loses_sync_and_staleness_too() {
        let p = Policy {
            quorum: 1,
            ..Policy::DEFAULT
        };
        let mut s = TimeSync::new(p);
        s.sent(0, 0, EV);
        s.offer(0, W[0], 0, EV, 5_000_000);
        s.close(0);
        let mut last = Update::None;
        for k in 1..=u64::from(p.max_clamped) {
            let t = k * 60_000;
            s.sent(t, k as u32, EV);
            s.offer(t, W[0], k as u32, EV, 9_000_000);
            last = s.close(t);
        }
        assert_eq!(last, Update::Lost);
        assert_eq!(s.unix_ms(300_000), None);
        // Stale: no update for max_age.
        let mut s = TimeSync::new(p);
        s.sent(0, 0, EV);
        s.offer(0, W[0], 0, EV, 5_000_000);
        s.close(0);
        assert!(s.unix_ms(p.max_age_ms).is_some());
        assert_eq!(s.unix_ms(p.max_age_ms + 1), None);
    }
}
