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
    pub reasons: Vec<String>,
    pub grant: Option<Grant>,
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
                reasons: vec!["a verified divergence proof exists for this device".into()],
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
                reasons,
                grant: grant(scope),
            };
        }
        if witnesses == 0 {
            reasons.push("no gateway has witnessed this device on the air".into());
            return Decision {
                admission: Admission::Deferred,
                reasons,
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
                    reasons,
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
                reasons,
                grant: grant(Scope::Full),
            }
        } else {
            reasons.push(format!(
                "slope depth {}/{} and {witnesses}/{} witnesses: restricted pending continuity",
                r.depth, c.full_depth, c.full_witnesses
            ));
            Decision {
                admission: Admission::Restricted,
                reasons,
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

    /// Decides on a verified attestation.
    pub fn attestation(
        &mut self,
        now: u64,
        att: &slope_node::verifier::VerifiedAttestation,
    ) -> Result<Decision, slope_node::trust::Error> {
        self.engine
            .handle_attestation(now, att, &[])
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

/// The engine's decision in the mesh's terms (tier, readable reasons, grant).
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
    let mut reasons: Vec<String> = vec![format!("{}", d.admission)];
    reasons.extend(d.reasons.iter().map(|r| format!("{r:?}")));
    reasons.push(format!("weights {:?}", d.weights));
    reasons.push(format!("engine lineage record {}", d.record));
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
