//! The parameters of one run: fleet size, duration, seed, the honest fleet's
//! misbehaviour (frame loss, power cuts, reboots, dormancy), the gossip model and the
//! attack's size. Everything a run depends on is here, so `results.json` can echo it.

use serde::Serialize;

use crate::error::Error;
use crate::scenario::Scenario;

/// How gateways gossip with each other (the model, see `docs/testnet.md`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Gossip {
    /// Overlay peers per gateway (push degree).
    pub degree: usize,
    /// Median one-hop latency, milliseconds (log-normal).
    pub latency_median_ms: f64,
    /// σ of the log-normal one-hop latency (natural log).
    pub latency_sigma: f64,
    /// Probability that one message on one hop is lost.
    pub loss: f64,
    /// Interval between a gateway's receipt batches, milliseconds (a decision waits one
    /// round and a margin for the other witnesses' receipts).
    pub receipt_round_ms: u64,
}

impl Default for Gossip {
    fn default() -> Self {
        Self {
            degree: 6,
            latency_median_ms: 40.0,
            latency_sigma: 0.5,
            loss: 0.01,
            receipt_round_ms: 300_000,
        }
    }
}

/// Which attestation suite the devices speak after their inception (issue 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Suite {
    /// Suite 1: every attestation ed25519-signed (`slope_node::device::Slope`).
    #[default]
    Ed25519,
    /// Suite 2: the device incepts in suite 1, anchors a compact hash chain with its
    /// suite-1 key and then sends MAC'd compact attestations (`slope_node::compact`).
    Compact,
}

impl Suite {
    /// The name on the command line and in the reports.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Ed25519 => "ed25519",
            Suite::Compact => "compact",
        }
    }

    /// The suite named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [Suite::Ed25519, Suite::Compact]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

impl core::fmt::Display for Suite {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything one run depends on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Params {
    pub scenario: Scenario,
    /// The attestation suite the devices speak.
    pub suite: Suite,
    /// Suite 2: intervals per compact chain (a device renews before the end).
    pub chain_len: u32,
    /// Honest devices.
    pub devices: usize,
    /// Gateways.
    pub gateways: usize,
    /// The one seed of every random draw.
    pub seed: u64,
    /// Simulated time, milliseconds.
    pub duration_ms: u64,
    /// Nominal interval between a device's attestations, seconds.
    pub interval_s: u32,
    /// Extra loss of each reception (interference, fading), on top of the radio model.
    pub frame_loss: f64,
    /// Expected power cuts per device per day (a cut lands during a state write).
    pub power_cuts_per_day: f64,
    /// Expected clean reboots per device per day.
    pub reboots_per_day: f64,
    /// Fraction of devices that fall dormant once (2–8 h without attesting).
    pub dormant_fraction: f64,
    /// Distance between neighbouring gateways on the grid, metres.
    pub gateway_spacing_m: f64,
    /// Attackers (clones, forgers, replayers, sybil identities) in the scenario.
    pub attack_size: usize,
    /// When the attack starts, milliseconds into the run.
    pub attack_at_ms: u64,
    /// Gossip between gateways.
    pub gossip: Gossip,
    /// Threads the run may use (1: everything on one; N > 1: N - 1 workers share the
    /// gateways' work at each tick with the event loop, see `world::tick`, and, with
    /// [`Params::preverify`], one more checks signatures ahead, see
    /// `world::preverify`). Changes the wall time, never a figure or the trace, so it
    /// is not part of the results.
    #[serde(skip)]
    pub threads: usize,
    /// With more than one thread, a pre-verifier thread besides (see `threads`).
    #[serde(skip)]
    pub preverify: bool,
    /// The least total work (frames to verify, decisions, receipt entries / 8) of a tick
    /// handed to the workers; a lighter tick runs on the loop's thread, where it costs
    /// less than waking a worker. Like `threads`, never a figure or the trace.
    #[serde(skip)]
    pub tick_min_weight: usize,
    /// The pre-verifier files the signatures it makes for devices in the signature memo
    /// as valid as made, and checks one in this many (the audit; 0 or 1 checks every one;
    /// see `world::preverify`). Like `threads`, never a figure or the trace.
    #[serde(skip)]
    pub audit_every: u32,
}

/// Default of [`Params::audit_every`].
pub const AUDIT_EVERY: u32 = 16;

/// Default of [`Params::tick_min_weight`]: measured on the README's baseline run
/// (100 gateways' ticks mostly light; 7.6 s wall with it, 11.0 s with every tick of two
/// jobs or more handed over, 7.0 s on one thread) and on 10,000 devices × 100 gateways
/// for 2 h (12.9 s with it, 13.6 s at 32).
pub const TICK_MIN_WEIGHT: usize = 128;

impl Params {
    /// The scenario's defaults (about a minute in release on a 2-core machine).
    pub fn defaults(scenario: Scenario) -> Self {
        let d = scenario.defaults();
        Self {
            scenario,
            suite: Suite::Ed25519,
            chain_len: crate::world::device::CHAIN_LEN,
            devices: d.devices,
            gateways: d.gateways,
            seed: 1,
            duration_ms: d.hours * HOUR_MS,
            interval_s: 900,
            frame_loss: 0.2,
            power_cuts_per_day: 0.5,
            reboots_per_day: 0.5,
            dormant_fraction: 0.1,
            gateway_spacing_m: 4_000.0,
            attack_size: d.attack_size,
            attack_at_ms: d.hours * HOUR_MS / 3,
            gossip: Gossip::default(),
            threads: 2,
            preverify: true,
            tick_min_weight: TICK_MIN_WEIGHT,
            audit_every: AUDIT_EVERY,
        }
    }

    /// The small seeded version CI runs (seconds in a debug build).
    pub fn small(scenario: Scenario) -> Self {
        let mut p = Self::defaults(scenario);
        p.devices = 40;
        p.gateways = 9;
        p.duration_ms = 12 * HOUR_MS;
        p.attack_at_ms = 2 * HOUR_MS;
        p.attack_size = match scenario {
            Scenario::Sybil => 400,
            Scenario::BatchCompromise => 10,
            Scenario::Baseline | Scenario::Duplicates => 0,
            _ => 3,
        };
        p
    }

    /// Checks the parameters make sense before a run.
    pub fn check(&self) -> Result<(), Error> {
        let bad = |what: &'static str| Err(Error::Params(what));
        if self.devices == 0 {
            return bad("at least one device");
        }
        if self.gateways < 2 {
            return bad("at least two gateways");
        }
        if self.gateways > usize::from(u16::MAX) {
            return bad("at most 65535 gateways");
        }
        if self.duration_ms < HOUR_MS {
            return bad("a duration of at least one hour");
        }
        if !(0.0..1.0).contains(&self.frame_loss) || !(0.0..1.0).contains(&self.gossip.loss) {
            return bad("loss probabilities in [0, 1)");
        }
        if !(1_000..=3_600_000).contains(&self.gossip.receipt_round_ms) {
            return bad("a receipt round between 1 s and 1 h");
        }
        if !(4 * crate::world::device::RENEW_LAST..=slope_proto::compact::params::MAX_CHAIN)
            .contains(&self.chain_len)
        {
            return bad("a compact chain of 12 to 65536 intervals");
        }
        if self.interval_s < 60 {
            return bad("an interval of at least 60 s");
        }
        if self.scenario.needs_victims() && self.attack_size > self.devices {
            return bad("no more attacked devices than devices");
        }
        Ok(())
    }
}

/// One hour in milliseconds.
pub const HOUR_MS: u64 = 3_600_000;

/// Parses a duration such as `24h`, `90m`, `2d` or `3600s` into milliseconds.
pub fn parse_duration(s: &str) -> Result<u64, Error> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| Error::Duration(s.to_string()))?;
    let ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" | "" => HOUR_MS,
        "d" => 24 * HOUR_MS,
        _ => return Err(Error::Duration(s.to_string())),
    };
    n.checked_mul(ms).ok_or(Error::Duration(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("24h").ok(), Some(24 * HOUR_MS));
        assert_eq!(parse_duration("90m").ok(), Some(90 * 60_000));
        assert_eq!(parse_duration("2d").ok(), Some(48 * HOUR_MS));
        assert_eq!(parse_duration("3").ok(), Some(3 * HOUR_MS));
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn every_scenario_has_sane_defaults() {
        for s in Scenario::ALL {
            assert!(Params::defaults(s).check().is_ok(), "{s:?}");
            assert!(Params::small(s).check().is_ok(), "{s:?}");
        }
    }
}
