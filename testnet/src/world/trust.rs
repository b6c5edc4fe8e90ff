//! The trust stage a simulated gateway runs after its verifier: the real
//! `slope_node::trust::Engine`, wired the way `slope-mesh` wires it (the gateway's own
//! radio is its local witness, no operator, default policy), with a lineage store that
//! chains every record (hashing and encoding included) without retaining them.
//!
//! - Every gateway is a registered witness in its site's trust zone: the simulated
//!   operator (one key, in every engine's genesis) signs one `RegisterWitness` action
//!   per gateway, and every engine applies them (`Engine::handle_operator`).
//! - `receipts` is `Engine::verify_receipt_batch_with`: the one signature of a batch
//!   that another gateway gossiped, checked against the registered witness it names
//!   through the shared signature memo, and receipts made of the entries the gateway
//!   waits for only.
//! - `attested` is `Engine::handle_attestation` with the verified receipts that name
//!   the attestation (see `super::receipts` for when they are gathered).
//! - `diverged` is `Engine::handle_proof`: the engine verifies the proof again.
//! - `mode` is the admission of the device's latest decision at this gateway.

use super::fx::HashMap;

use ed25519_dalek::SigningKey;
use serde::Serialize;
use slope_node::lineage::{Genesis, Local, Storage, StorageError};
use slope_node::trust::operator::{self, Action};
use slope_node::trust::{
    Admission, Decision, Engine, Policy, Position, PreparedBatch, Reason, ReceiptError,
    VerifiedReceipt, Zone,
};
use slope_proto::batch::Entry;
use slope_proto::{DeviceId, Digest};

use super::memo::Memo;
use super::receipts::Att;

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
    /// A receipt batch: its frame is counted, not joined to the record's head.
    fn append_split(
        &mut self,
        index: u64,
        digest: &Digest,
        head: &[u8],
        tail: &[u8],
    ) -> Result<(), StorageError> {
        self.append(index, digest, head)?;
        self.bytes += tail.len() as u64;
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
    /// Witnesses and zones the witness policy counted (the local radio included).
    pub witnesses: u8,
    pub zones: u8,
    /// Receipts the engine discounted (implausible, mismatched, duplicate, excess).
    pub discounted: u16,
}

/// A gateway as a witness: what its `RegisterWitness` action says.
#[derive(Debug, Clone, Copy)]
pub struct WitnessSite {
    pub key: [u8; 32],
    pub zone: Zone,
    pub position: Position,
}

/// The simulated operator: the one key every engine's genesis lists.
pub struct Operator {
    key: SigningKey,
}

impl Operator {
    /// The operator of a run with `seed` (derived, so it draws nothing from the world's
    /// generator).
    pub fn new(seed: u64) -> Self {
        let bytes = blake3::derive_key("slope v1 testnet operator", &seed.to_le_bytes());
        Self {
            key: SigningKey::from_bytes(&bytes),
        }
    }

    /// The operator's public key.
    pub fn public(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The signed action registering `site` as a witness.
    pub fn register(&self, site: &WitnessSite) -> Option<operator::Signed> {
        let action = Action::RegisterWitness {
            key: site.key,
            zone: site.zone,
            position: Some(site.position),
        };
        let why = heapless::String::try_from("testnet gateway").unwrap_or_default();
        operator::Signed::sign(action, why, 0, &self.key).ok()
    }
}

/// The trust stage of one gateway.
pub struct Stage {
    engine: Engine<Chain>,
    modes: HashMap<DeviceId, Mode>,
    /// Engine calls that failed (lineage refused, bounds): counted, never hidden.
    pub errors: u64,
}

impl Stage {
    /// An engine with the gateway's key as lineage author, its radio as the local
    /// witness in its site's zone, and `operator` as the one operator.
    pub fn new(
        site: &WitnessSite,
        operator: [u8; 32],
        now_ms: u64,
    ) -> Result<Self, slope_node::trust::Error> {
        let genesis = Genesis {
            author: site.key,
            operators: vec![operator],
            local: Some(Local {
                zone: site.zone,
                position: Some(site.position),
            }),
            policy: Policy::default(),
        };
        Ok(Self {
            engine: Engine::new(genesis, Chain::default(), now_ms)?,
            modes: HashMap::default(),
            errors: 0,
        })
    }

    /// Whether this stage runs a trust engine (graduated admission).
    pub fn judges(&self) -> bool {
        true
    }

    /// Applies a signed operator action (witness registration).
    pub fn operator(&mut self, now_ms: u64, action: &operator::Signed) -> bool {
        let ok = self.engine.handle_operator(now_ms, action).is_ok();
        if !ok {
            self.errors += 1;
        }
        ok
    }

    /// Checks a gossiped receipt batch's one signature against the witness it names,
    /// through `memo` (validity is pure: the same answer, one check per batch for all
    /// gateways); only the entries `keep` selects become receipts. The batch comes
    /// prepared (decoded, its message and digest worked out) once for all its
    /// receivers: a pure function of its bytes, so the same results as decoding it here.
    pub fn receipts(
        &self,
        batch: &PreparedBatch,
        memo: &mut Memo,
        keep: impl FnMut(&Entry) -> bool,
    ) -> Result<Vec<VerifiedReceipt>, ReceiptError> {
        self.engine
            .verify_prepared_receipt_batch_with(batch, Some(memo), keep)
    }

    /// Decides on a verified attestation (either suite) with the verified receipts that
    /// name it.
    pub fn attested(
        &mut self,
        now_ms: u64,
        att: &Att,
        receipts: &[VerifiedReceipt],
    ) -> Option<Judged> {
        let decided = match att {
            Att::Suite1(a) => self.engine.handle_attestation(now_ms, a, receipts),
            Att::Compact(a) => self.engine.handle_compact(now_ms, a, receipts),
        };
        match decided {
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

    /// A suite-2 divergence proof (already decoded and checked by the caller): the
    /// engine checks it again under `max_skew_ms`, requires both receipt signers to be
    /// registered witnesses, and quarantines. Returns whether the device was not
    /// quarantined here before, and whether the engine accepted the proof.
    pub fn diverged_compact(
        &mut self,
        now_ms: u64,
        device: &DeviceId,
        proof: &[u8],
        max_skew_ms: u64,
    ) -> (bool, bool) {
        if self.modes.get(device) == Some(&Mode::Quarantined) {
            return (false, true);
        }
        match self.engine.handle_compact_proof(now_ms, proof, max_skew_ms) {
            Ok(d) => {
                self.record(&d);
                self.modes.insert(*device, Mode::Quarantined);
                (true, true)
            }
            Err(_) => {
                self.errors += 1;
                (false, false)
            }
        }
    }

    /// The device's position in its compact chain at this gateway's engine (the last
    /// interval decided), if it speaks suite 2.
    pub fn compact_head(&self, device: &DeviceId) -> Option<u32> {
        self.engine
            .hot(device)
            .map(|h| h.compact_head)
            .filter(|h| *h > 0)
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
        let (mut witnesses, mut zones, mut discounted) = (0, 0, 0);
        for r in &d.reasons {
            match r {
                Reason::Quorum(v) => (witnesses, zones) = (v.witnesses, v.zones),
                Reason::Discounted(x) => {
                    discounted = [x.rssi, x.time, x.mismatch, x.duplicate, x.excess]
                        .iter()
                        .map(|n| u16::from(*n))
                        .sum();
                }
                _ => {}
            }
        }
        let held = self.modes.get(&d.device) == Some(&Mode::Quarantined);
        if !held {
            self.modes.insert(d.device, mode);
        }
        Judged {
            mode,
            context,
            witnesses,
            zones,
            discounted,
        }
    }
}
