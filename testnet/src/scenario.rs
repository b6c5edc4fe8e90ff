//! The scenarios: their names, one-line descriptions, default sizes, and the pass
//! criteria each one checks on its results.

use serde::Serialize;

/// A scripted experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    Baseline,
    Clone,
    SilentClone,
    Forgery,
    Replay,
    BatchCompromise,
    Sybil,
    Partition,
    RogueGateway,
    Duplicates,
}

/// Default sizes of a scenario.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub devices: usize,
    pub gateways: usize,
    pub hours: u64,
    pub attack_size: usize,
}

impl Scenario {
    /// Every scenario, in the order `list` prints them.
    pub const ALL: [Scenario; 10] = [
        Scenario::Baseline,
        Scenario::Clone,
        Scenario::SilentClone,
        Scenario::Forgery,
        Scenario::Replay,
        Scenario::BatchCompromise,
        Scenario::Sybil,
        Scenario::Partition,
        Scenario::RogueGateway,
        Scenario::Duplicates,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Baseline => "baseline",
            Scenario::Clone => "clone",
            Scenario::SilentClone => "silent-clone",
            Scenario::Forgery => "forgery",
            Scenario::Replay => "replay",
            Scenario::BatchCompromise => "batch-compromise",
            Scenario::Sybil => "sybil",
            Scenario::Partition => "partition",
            Scenario::RogueGateway => "rogue-gateway",
            Scenario::Duplicates => "duplicates",
        }
    }

    /// The scenario named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// One line for `slope-testnet list`.
    pub fn describe(self) -> &'static str {
        match self {
            Scenario::Baseline => {
                "honest fleet: 20 % frame loss, dormancy, reboots, power cuts during state writes"
            }
            Scenario::Clone => {
                "a device's flash is copied at a random time; the copy speaks from another site"
            }
            Scenario::SilentClone => {
                "the same, but the original falls silent when the copy starts (context only)"
            }
            Scenario::Forgery => {
                "frames made without the state: foreign keys, bit flips, random bytes"
            }
            Scenario::Replay => "frames recorded off the air and played again later, elsewhere",
            Scenario::BatchCompromise => "many devices of one batch cloned at the same instant",
            Scenario::Sybil => "thousands of fresh identities from one site",
            Scenario::Partition => {
                "the gateway mesh splits in two, a clone speaks on each side, then it heals"
            }
            Scenario::RogueGateway => {
                "a gateway gossips fake divergence proofs and signs false receipts"
            }
            Scenario::Duplicates => {
                "the same frame through several gateways, RF chains and a forwarder loop"
            }
        }
    }

    /// Default sizes: about a minute in release on this 2-core machine.
    pub fn defaults(self) -> Sizes {
        let s = |devices, gateways, hours, attack_size| Sizes {
            devices,
            gateways,
            hours,
            attack_size,
        };
        match self {
            Scenario::Baseline => s(500, 25, 24, 0),
            Scenario::Clone | Scenario::SilentClone => s(500, 25, 24, 20),
            Scenario::Forgery | Scenario::Replay => s(500, 25, 24, 20),
            Scenario::BatchCompromise => s(500, 25, 24, 50),
            Scenario::Sybil => s(500, 25, 24, 10_000),
            Scenario::Partition => s(500, 25, 24, 10),
            Scenario::RogueGateway => s(500, 25, 24, 20),
            Scenario::Duplicates => s(500, 25, 24, 0),
        }
    }

    /// Whether the attack picks its targets among the honest devices.
    pub fn needs_victims(self) -> bool {
        matches!(
            self,
            Scenario::Clone
                | Scenario::SilentClone
                | Scenario::BatchCompromise
                | Scenario::Partition
                | Scenario::Replay
                | Scenario::Forgery
        )
    }

    /// Whether the scenario's attack is one the chain alone must detect (a divergence
    /// proof for every attacked device).
    pub fn expects_divergence(self) -> bool {
        matches!(
            self,
            Scenario::Clone | Scenario::BatchCompromise | Scenario::Partition
        )
    }
}

impl core::fmt::Display for Scenario {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}
