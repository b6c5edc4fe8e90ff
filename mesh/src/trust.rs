//! The trust stage of the pipeline: from a verified attestation and the device's durable
//! record to an admission tier, its reasons and a grant.
//!
//! By default the stage is `slope_node::trust::Engine` (graduated admission, grants,
//! witness policy, its own hash-chained lineage on redb), wrapped by [`Engine`]. The small
//! explainable policy behind [`Decide`] — depth of the slope, distinct witnessing
//! gateways, the device's own RF profile, operator pins — is the fallback when the engine
//! is switched off (`trust.engine = false`). A quarantine is never decided here: only a
//! verified divergence proof sets it (see [`crate::pipeline`]), and only an operator
//! releases it.

use serde::{Deserialize, Serialize};

use crate::config;
use crate::store::DeviceRecord;

/// The admission tier of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Admission {
    /// Admitted to full scope.
    Full,
    /// Admitted to restricted scope pending continuity.
    Restricted,
    /// Admitted (restricted scope) with elevated monitoring: its RF context deviates.
    Monitored,
    /// Deferred for corroboration: no gateway has witnessed it on the air yet.
    Deferred,
    /// Refused, with a reason.
    Refused,
    /// A verified divergence proof exists.
    Quarantined,
}

impl Admission {
    /// All tiers, for metrics labels.
    pub const ALL: [Admission; 6] = [
        Self::Full,
        Self::Restricted,
        Self::Monitored,
        Self::Deferred,
        Self::Refused,
        Self::Quarantined,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Restricted => "restricted",
            Self::Monitored => "monitored",
            Self::Deferred => "deferred",
            Self::Refused => "refused",
            Self::Quarantined => "quarantined",
        }
    }
}

/// What a grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Full,
    Restricted,
    None,
}

/// A grant: separate from the claim, with an expiry, revoked by a quarantine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub scope: Scope,
    pub issued_ms: u64,
    pub expires_ms: u64,
}

/// One decision: the tier, the reasons, and the grant it produces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub admission: Admission,
    pub reasons: Reasons,
    pub grant: Option<Grant>,
}

/// Why a decision was made, kept in a compact form: the trust engine's typed reasons are
/// stored as they are (a few dozen bytes) and only turned into text when read
/// ([`Reasons::lines`]: the API, `slope device`), never once per attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reasons {
    /// The built-in policy's and the mesh's own reasons, as text.
    Text(Vec<String>),
    /// The trust engine's decision: its tier, typed reasons, weights and the index of
    /// its record in the engine lineage (which holds all of it, signed into the chain).
    Engine {
        admission: slope_node::trust::Admission,
        reasons: Vec<slope_node::trust::Reason>,
        weights: slope_node::trust::Weights,
        record: u64,
    },
}

impl Default for Reasons {
    fn default() -> Self {
        Self::Text(Vec::new())
    }
}

impl Reasons {
    /// One reason as text.
    pub fn text(line: impl Into<String>) -> Self {
        Self::Text(vec![line.into()])
    }

    /// The reasons as readable lines.
    pub fn lines(&self) -> Vec<String> {
        match self {
            Self::Text(lines) => lines.clone(),
            Self::Engine {
                admission,
                reasons,
                weights,
                record,
            } => {
                let mut out = vec![admission.to_string()];
                out.extend(reasons.iter().map(|r| format!("{r:?}")));
                out.push(format!("weights {weights:?}"));
                out.push(format!("engine lineage record {record}"));
                out
            }
        }
    }
}

/// The trust stage.
pub trait Decide: Send {
    /// Decides on `record` (already updated with the new observation) at `now_ms`.
    fn decide(&self, record: &DeviceRecord, now_ms: u64) -> Decision;
}

/// The built-in policy (see the module doc).
#[derive(Debug, Clone)]
pub struct Policy {
    pub config: config::Trust,
}

impl Decide for Policy {
    fn decide(&self, r: &DeviceRecord, now_ms: u64) -> Decision {
        let c = &self.config;
        let mut reasons = Vec::new();
        if r.quarantine.is_some() {
            return Decision {
                admission: Admission::Quarantined,
                reasons: Reasons::text("a verified divergence proof exists for this device"),
                grant: None,
            };
        }
        let witnesses = r.witnesses.len() as u32;
        let grant = |scope| {
            Some(Grant {
                scope,
                issued_ms: now_ms,
                expires_ms: now_ms.saturating_add(c.grant_ttl_s.saturating_mul(1000)),
            })
        };
        if let Some(scope) = r.pinned {
            reasons.push(format!("operator pinned scope {scope:?}"));
            let admission = match scope {
                Scope::Full => Admission::Full,
                Scope::Restricted => Admission::Restricted,
                Scope::None => Admission::Refused,
            };
            return Decision {
                admission,
                reasons: Reasons::Text(reasons),
                grant: grant(scope),
            };
        }
        if witnesses == 0 {
            reasons.push("no gateway has witnessed this device on the air".into());
            return Decision {
                admission: Admission::Deferred,
                reasons: Reasons::Text(reasons),
                grant: None,
            };
        }
        if let Some(dev) = r.rf.deviation_db(r.last_rssi) {
            if r.rf.count >= 8 && dev > c.monitor_rssi_db {
                reasons.push(format!(
                    "RSSI {} dBm deviates {dev} dB from the device's mean",
                    r.last_rssi
                ));
                return Decision {
                    admission: Admission::Monitored,
                    reasons: Reasons::Text(reasons),
                    grant: grant(Scope::Restricted),
                };
            }
        }
        if r.depth >= c.full_depth && witnesses >= c.full_witnesses {
            reasons.push(format!(
                "slope depth {} >= {} and {witnesses} witnesses >= {}",
                r.depth, c.full_depth, c.full_witnesses
            ));
            Decision {
                admission: Admission::Full,
                reasons: Reasons::Text(reasons),
                grant: grant(Scope::Full),
            }
        } else {
            reasons.push(format!(
                "slope depth {}/{} and {witnesses}/{} witnesses: restricted pending continuity",
                r.depth, c.full_depth, c.full_witnesses
            ));
            Decision {
                admission: Admission::Restricted,
                reasons: Reasons::Text(reasons),
                grant: grant(Scope::Restricted),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RfProfile, WitnessStat};

    fn record(depth: u32, witnesses: usize) -> DeviceRecord {
        let mut r = DeviceRecord::new(0, 0);
        r.depth = depth;
        r.witnesses = (0..witnesses)
            .map(|i| WitnessStat {
                witness: [i as u8; 8],
                count: 1,
                last_rssi: -100,
                last_seq: 0,
                seen: 1,
            })
            .collect();
        r.rf = RfProfile::default();
        r
    }

    #[test]
    fn tiers() {
        let p = Policy {
            config: config::Trust::default(),
        };
        assert_eq!(p.decide(&record(1, 0), 0).admission, Admission::Deferred);
        assert_eq!(p.decide(&record(1, 1), 0).admission, Admission::Restricted);
        assert_eq!(p.decide(&record(16, 2), 0).admission, Admission::Full);
        let mut q = record(16, 2);
        q.quarantine = Some(crate::store::QuarantineInfo {
            seq: 3,
            proof_digest: [0; 32],
            lineage_index: 0,
        });
        let d = p.decide(&q, 0);
        assert_eq!(d.admission, Admission::Quarantined);
        assert!(d.grant.is_none());
        let mut pinned = record(1, 0);
        pinned.pinned = Some(Scope::Full);
        assert_eq!(p.decide(&pinned, 0).admission, Admission::Full);
    }
}

/// The trust engine of `slope_node::trust` as the pipeline's decision stage, with its
/// lineage on redb ([`crate::store::RedbLineage`]).
///
/// On a store that already holds an engine lineage, [`Engine::open`] restores the engine
/// by replaying it (`slope_node::trust::Engine::restore`): every device's hot state,
/// grants and quarantines come back as they were, and the replay re-derives every
/// stored decision from its inputs, so a lineage that does not follow from its policy
/// refuses to start. The stored genesis (policy, operators) stays in force; a different
/// policy in the config is reported and ignored until the lineage is started afresh.
///
/// The genesis of a new lineage lists the gateway's own key as its operator: an action
/// the operator API accepted (bearer token) is signed by the gateway key and recorded in
/// the engine's lineage, so that a restore replays it.
pub struct Engine {
    engine: slope_node::trust::Engine<crate::store::RedbLineage>,
    pending: crate::store::Pending,
    /// The gateway key, which signs operator actions the API accepted.
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("devices", &self.engine.devices())
            .finish()
    }
}

/// Why the engine could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("trust engine: {0}")]
    Engine(slope_node::trust::Error),
    #[error("trust engine: {0}")]
    Restore(slope_node::trust::RestoreError),
}

impl Engine {
    /// Opens the engine on `store`, with the gateway's key (`key`) as lineage author and
    /// operator and its own radio as a witness: restored from the stored lineage when
    /// there is one (see the type's doc), else started with a new genesis.
    pub fn open(
        store: std::sync::Arc<crate::store::Store>,
        key: &ed25519_dalek::SigningKey,
        policy: slope_node::trust::Policy,
        now: u64,
    ) -> Result<Self, EngineError> {
        let author = key.verifying_key().to_bytes();
        let stored = store.engine_lineage_head()?.0;
        let (storage, pending) = crate::store::RedbLineage::open(store)?;
        let engine = if stored > 0 {
            let engine =
                slope_node::trust::Engine::restore(storage).map_err(EngineError::Restore)?;
            if *engine.policy() != policy {
                tracing::warn!(
                    "the trust policy in the config differs from the one in the stored engine \
                     lineage; the stored policy stays in force"
                );
            }
            tracing::info!(
                records = stored,
                devices = engine.devices(),
                "trust engine restored from its lineage"
            );
            engine
        } else {
            let genesis = slope_node::lineage::Genesis {
                author,
                operators: vec![author],
                local: Some(slope_node::lineage::Local {
                    zone: slope_node::trust::Zone::NONE,
                    position: None,
                }),
                policy,
            };
            slope_node::trust::Engine::new(genesis, storage, now).map_err(EngineError::Engine)?
        };
        Ok(Self {
            engine,
            pending,
            key: key.clone(),
        })
    }

    /// Operator release, signed by the gateway key (the API checked the operator's
    /// token). `Ok(false)` when the engine does not hold the device as quarantined.
    pub fn release(
        &mut self,
        now: u64,
        device: &slope_proto::DeviceId,
        note: &str,
    ) -> Result<bool, slope_node::trust::Error> {
        let mut why = heapless::String::new();
        for c in note.chars() {
            if why.push(c).is_err() {
                break;
            }
        }
        let action = slope_node::trust::operator::Signed::sign(
            slope_node::trust::operator::Action::Release { device: *device },
            why,
            now,
            &self.key,
        )
        .map_err(slope_node::trust::Error::Operator)?;
        match self.engine.handle_operator(now, &action) {
            Ok(_) => Ok(true),
            Err(
                slope_node::trust::Error::NotQuarantined | slope_node::trust::Error::UnknownDevice,
            ) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Records the engine appended and the pipeline must commit with its batch.
    pub fn pending(&self) -> &crate::store::Pending {
        &self.pending
    }

    /// Tracked devices.
    pub fn devices(&self) -> usize {
        self.engine.devices()
    }

    /// Decides on a verified attestation, with the peers' receipts for it.
    pub fn attestation(
        &mut self,
        now: u64,
        att: &slope_node::verifier::VerifiedAttestation,
        receipts: &[slope_node::trust::VerifiedReceipt],
    ) -> Result<Decision, slope_node::trust::Error> {
        self.engine
            .handle_attestation(now, att, receipts)
            .map(|d| convert(&d))
    }

    /// Checks a peer's receipt or receipt batch against the registered witnesses: one
    /// signature check, one [`slope_node::trust::VerifiedReceipt`] per receipt.
    pub fn verify_receipts(
        &self,
        message: &slope_proto::Message<'_>,
    ) -> Option<Result<Vec<slope_node::trust::VerifiedReceipt>, slope_node::trust::ReceiptError>>
    {
        Some(match message {
            slope_proto::Message::Receipt(r) => self.engine.verify_receipt(r).map(|v| vec![v]),
            slope_proto::Message::ReceiptBatch(b) => self.engine.verify_receipt_batch(b),
            _ => return None,
        })
    }

    /// Brings the engine's witness registry in line with the configured list: each
    /// witness that is new (or in another zone) is registered, each one no longer
    /// listed is retired, through operator actions signed by the gateway key, so that a
    /// restore replays them. `previous` is what the last call registered (kept by the
    /// store). Returns the list now registered.
    pub fn register_witnesses(
        &mut self,
        now: u64,
        listed: &[([u8; 32], u16)],
        previous: &[([u8; 32], u16)],
    ) -> Result<Vec<([u8; 32], u16)>, slope_node::trust::Error> {
        use slope_node::trust::operator::{Action, Signed};
        let mut actions = Vec::new();
        for (key, zone) in listed {
            if !previous.contains(&(*key, *zone)) {
                actions.push(Action::RegisterWitness {
                    key: *key,
                    zone: slope_node::trust::Zone(*zone),
                    position: None,
                });
            }
        }
        for (key, _) in previous {
            if !listed.iter().any(|(k, _)| k == key) {
                actions.push(Action::RetireWitness {
                    witness: slope_proto::crypto::witness_id(key),
                });
            }
        }
        for action in actions {
            let mut why = heapless::String::new();
            let _ = why.push_str("slope.toml [[trust.witnesses]]");
            let signed = Signed::sign(action, why, now, &self.key)
                .map_err(slope_node::trust::Error::Operator)?;
            self.engine.handle_operator(now, &signed)?;
        }
        Ok(listed.to_vec())
    }

    /// Decides on a compact (suite-2) attestation the verifier authenticated, with the
    /// listed peers' receipts naming it.
    pub fn compact(
        &mut self,
        now: u64,
        att: &slope_node::verifier::compact::VerifiedCompact,
        receipts: &[slope_node::trust::VerifiedReceipt],
    ) -> Result<Decision, slope_node::trust::Error> {
        self.engine
            .handle_compact(now, att, receipts)
            .map(|d| convert(&d))
    }

    /// Quarantines on a suite-2 divergence proof (verified again by the engine under
    /// `max_skew_ms`; each frame dated by this gateway or by registered, active
    /// witnesses of two trust zones: `slope_node::compact::dated_enough`).
    pub fn compact_proof(
        &mut self,
        now: u64,
        proof: &[u8],
        max_skew_ms: u64,
    ) -> Result<Decision, slope_node::trust::Error> {
        self.engine
            .handle_compact_proof(now, proof, max_skew_ms)
            .map(|d| convert(&d))
    }

    /// Quarantines on locally found divergence evidence.
    pub fn divergence(
        &mut self,
        now: u64,
        ev: &slope_node::verifier::DivergenceEvidence,
    ) -> Result<Decision, slope_node::trust::Error> {
        self.engine.handle_divergence(now, ev).map(|d| convert(&d))
    }

    /// Quarantines on a proof from the network (the engine verifies it again).
    pub fn proof(&mut self, now: u64, proof: &[u8]) -> Result<Decision, slope_node::trust::Error> {
        self.engine.handle_proof(now, proof).map(|d| convert(&d))
    }
}

/// The engine's decision in the mesh's terms (tier, its typed reasons, grant).
pub fn convert(d: &slope_node::trust::Decision) -> Decision {
    use slope_node::trust::Admission as A;
    let admission = match d.admission {
        A::Full => Admission::Full,
        A::Restricted => Admission::Restricted,
        A::Monitored => Admission::Monitored,
        A::Deferred => Admission::Deferred,
        A::Refused(_) => Admission::Refused,
        A::Quarantined(_) => Admission::Quarantined,
        _ => Admission::Deferred,
    };
    let reasons = Reasons::Engine {
        admission: d.admission,
        reasons: d.reasons.iter().copied().collect(),
        weights: d.weights,
        record: d.record,
    };
    let grant = d.grant.map(|g| Grant {
        scope: match g.scope {
            slope_node::trust::Scope::Full => Scope::Full,
            _ => Scope::Restricted,
        },
        issued_ms: g.issued,
        expires_ms: g.expires,
    });
    Decision {
        admission,
        reasons,
        grant,
    }
}
