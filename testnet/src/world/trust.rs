//! The trust stage a simulated gateway runs after its verifier: the real
//! `slope_node::trust::Engine`, wired the way `slope-mesh` wires it (the gateway's own
//! radio is its local witness, no operator, default policy), with a lineage store that
//! chains every record (hashing and encoding included) without retaining them.
//!
//! - `attested` is `Engine::handle_attestation` with no receipts: gateways do not yet
//!   exchange witness receipts (neither the mesh nor this model), so a device has one
//!   witness profile per gateway, and the default policy's `full_witnesses = 2` is
//!   never met — see `docs/testnet.md`, "What the testnet does not model".
//! - `diverged` is `Engine::handle_proof`: the engine verifies the proof again.
//! - `mode` is the admission of the device's latest decision at this gateway.

use std::collections::HashMap;

use serde::Serialize;
use slope_node::lineage::{Genesis, Local, Storage, StorageError};
use slope_node::trust::{Admission, Decision, Engine, Policy, Reason, Zone};
use slope_node::verifier::VerifiedAttestation;
use slope_proto::{DeviceId, Digest};

/// A device's admission at one gateway, as the report counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Full,
    Restricted,
    Monitored,
    Deferred,
    Refused,
    Quarantined,
    /// No decision yet.
    Unjudged,
}

impl Mode {
    /// Every mode, in report order.
    pub const ALL: [Mode; 7] = [
        Mode::Full,
        Mode::Restricted,
        Mode::Monitored,
        Mode::Deferred,
        Mode::Refused,
        Mode::Quarantined,
        Mode::Unjudged,
    ];

    /// The mode's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Restricted => "restricted",
            Mode::Monitored => "monitored",
            Mode::Deferred => "deferred",
            Mode::Refused => "refused",
            Mode::Quarantined => "quarantined",
            Mode::Unjudged => "unjudged",
        }
    }

    fn of(a: &Admission) -> Self {
        match a {
            Admission::Full => Mode::Full,
            Admission::Restricted => Mode::Restricted,
            Admission::Monitored => Mode::Monitored,
            Admission::Deferred => Mode::Deferred,
            Admission::Refused(_) => Mode::Refused,
            Admission::Quarantined(_) => Mode::Quarantined,
            _ => Mode::Unjudged,
        }
    }
}

/// A lineage store that chains records and forgets them: the simulation pays for
/// encoding and hashing every record but does not hold a day of lineage for every
/// gateway in memory.
#[derive(Debug, Default)]
pub struct Chain {
    len: u64,
    head: Option<Digest>,
    bytes: u64,
}

impl Storage for Chain {
    fn append(&mut self, index: u64, digest: &Digest, record: &[u8]) -> Result<(), StorageError> {
        if index != self.len {
            return Err(StorageError::OutOfOrder);
        }
        self.len += 1;
        self.head = Some(*digest);
        self.bytes += record.len() as u64;
        Ok(())
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn head(&self) -> Option<Digest> {
        self.head
    }
    fn read(&self, _index: u64, _out: &mut Vec<u8>) -> Result<bool, StorageError> {
        Ok(false)
    }
}

/// What the stage concluded about one attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    pub mode: Mode,
    /// The decision carried a context reason (RF deviation, failed expectation, boot
    /// regression).
    pub context: bool,
}

/// The trust stage of one gateway.
pub struct Stage {
    engine: Engine<Chain>,
    modes: HashMap<DeviceId, Mode>,
    /// Engine calls that failed (lineage refused, bounds): counted, never hidden.
    pub errors: u64,
}

impl Stage {
    /// An engine with the gateway's key as lineage author and its radio as witness.
    pub fn new(author: [u8; 32], now_ms: u64) -> Result<Self, slope_node::trust::Error> {
        let genesis = Genesis {
            author,
            operators: Vec::new(),
            local: Some(Local {
                zone: Zone::NONE,
                position: None,
            }),
            policy: Policy::default(),
        };
        Ok(Self {
            engine: Engine::new(genesis, Chain::default(), now_ms)?,
            modes: HashMap::new(),
            errors: 0,
        })
    }

    /// Whether this stage runs a trust engine (graduated admission).
    pub fn judges(&self) -> bool {
        true
    }

    /// Decides on a verified attestation.
    pub fn attested(&mut self, now_ms: u64, att: &VerifiedAttestation) -> Option<Judged> {
        match self.engine.handle_attestation(now_ms, att, &[]) {
            Ok(d) => Some(self.record(&d)),
            Err(_) => {
                self.errors += 1;
                None
            }
        }
    }

    /// A verified divergence proof for `device`: the engine checks it again and
    /// quarantines. Returns whether the device was not quarantined here before.
    pub fn diverged(&mut self, now_ms: u64, device: &DeviceId, proof: &[u8]) -> bool {
        if self.modes.get(device) == Some(&Mode::Quarantined) {
            return false;
        }
        match self.engine.handle_proof(now_ms, proof) {
            Ok(d) => {
                self.record(&d);
                self.modes.insert(*device, Mode::Quarantined);
                true
            }
            Err(_) => {
                self.errors += 1;
                false
            }
        }
    }

    /// The device's mode at this gateway.
    pub fn mode(&self, device: &DeviceId, _now_ms: u64) -> Mode {
        self.modes.get(device).copied().unwrap_or(Mode::Unjudged)
    }

    /// Devices the engine tracks.
    pub fn devices(&self) -> usize {
        self.engine.devices()
    }

    /// Lineage records written.
    pub fn records(&self) -> u64 {
        self.engine.lineage().next_index()
    }

    fn record(&mut self, d: &Decision) -> Judged {
        let mode = Mode::of(&d.admission);
        let context = d.reasons.iter().any(|r| {
            matches!(
                r,
                Reason::Deviation { .. }
                    | Reason::Expectation { .. }
                    | Reason::BootRegression { .. }
            )
        });
        let held = self.modes.get(&d.device) == Some(&Mode::Quarantined);
        if !held {
            self.modes.insert(d.device, mode);
        }
        Judged { mode, context }
    }
}
