//! Independent re-verification of an exported lineage, from nothing but the author's
//! public key.
//!
//! Checks, in order: the container (magic, version, canonical encoding); each record
//! decodes canonically, has the next index and names its predecessor's digest; record 0
//! and only record 0 is the genesis, by the expected author; every attestation frame
//! verifies under the device key history the log carries ([`super::keys`]); every
//! compact frame decodes as an attestation of its logged device and interval (its MAC
//! is not re-checkable from the log: docs/trust-model.md, "Compact attestations"); every
//! receipt verifies under a witness key registered in the log before it and names the
//! observed event (a batched receipt's one signature is checked once, at its own
//! record, and each observation's reference to one of its entries is checked against
//! that entry); every divergence proof verifies on its own (a suite-2 one under its
//! recorded clock bound, each frame dated by the author itself or by witnesses of two
//! trust zones registered and active before it: `compact::dated_enough`); every operator action is
//! signed by a genesis operator; every grant names an earlier decision of its device and
//! every revocation an earlier grant; and the checkpoint's count, head and signature.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use slope_proto::{
    DeviceId, Digest, DivergenceProof, Receipt, ReceiptBatch, Signed, WitnessId, crypto,
};

use super::export::{self, Export};
use super::keys::{FrameFault, Keys};
use super::record::{self, Entry, ReceiptRef, Record};
use crate::trust::Zone;
use crate::trust::operator::Action;

/// What a successful verification established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub records: u64,
    pub head: Digest,
    pub observations: u64,
    /// Compact (suite-2) observations: frame decoded, device and interval matched,
    /// receipts re-checked; their MACs are not re-checkable from the log.
    pub compact: u64,
    /// Attestation frames whose signatures were re-checked.
    pub frames: u64,
    /// Frames of devices whose inception is not in the log (not re-checkable).
    pub unanchored: u64,
    /// Receipts re-checked: single receipts, and references to batch entries.
    pub receipts: u64,
    /// Batched receipts whose one signature was re-checked.
    pub batches: u64,
    pub proofs: u64,
    pub operator_actions: u64,
    pub decisions: u64,
    pub grants: u64,
    pub revocations: u64,
}

/// Why an export does not verify. `record` is the index of the offending record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not an export (magic, version or encoding).
    Container,
    /// A record does not decode canonically.
    Decode { record: u64 },
    /// A record's index is not its position.
    Index { record: u64 },
    /// A record does not name its predecessor's digest.
    Chain { record: u64 },
    /// Record 0 is not a genesis by the expected author, or a genesis appears later.
    Genesis { record: u64 },
    /// An attestation frame fails (decode, device, digest, signature or key chain).
    Frame { record: u64, fault: FrameFault },
    /// A frame whose device's key history never reaches its epoch.
    Unverifiable { record: u64 },
    /// A receipt fails (unknown or retired witness, signature, or another event).
    Receipt { record: u64 },
    /// A divergence proof fails or names another device.
    Proof { record: u64 },
    /// An operator action's signature fails.
    Operator { record: u64 },
    /// A grant or revocation names no earlier decision or grant of its device.
    Reference { record: u64 },
    /// The checkpoint's count or head does not match the records.
    Checkpoint,
    /// The checkpoint's signature does not verify under the author's key.
    CheckpointSignature,
    /// Replay (`verify_replay`): record `record` does not follow from the log's inputs
    /// under its genesis policy.
    Replay { record: u64 },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Container => f.write_str("not a lineage export"),
            Self::Decode { record } => write!(f, "record {record} does not decode canonically"),
            Self::Index { record } => write!(f, "record {record} has the wrong index"),
            Self::Chain { record } => {
                write!(f, "record {record} does not chain to its predecessor")
            }
            Self::Genesis { record } => write!(f, "record {record}: bad or misplaced genesis"),
            Self::Frame { record, fault } => {
                write!(f, "record {record}: attestation frame fails ({fault:?})")
            }
            Self::Unverifiable { record } => {
                write!(f, "record {record}: no key for the frame's epoch")
            }
            Self::Receipt { record } => write!(f, "record {record}: receipt fails"),
            Self::Proof { record } => write!(f, "record {record}: divergence proof fails"),
            Self::Operator { record } => write!(f, "record {record}: operator signature fails"),
            Self::Reference { record } => {
                write!(f, "record {record}: dangling decision or grant reference")
            }
            Self::Checkpoint => f.write_str("checkpoint does not match the records"),
            Self::CheckpointSignature => f.write_str("checkpoint signature fails"),
            Self::Replay { record } => {
                write!(f, "replay: record {record} does not follow from its inputs")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for VerifyError {}

/// Verifies an export written by the holder of `author`.
pub fn verify(bytes: &[u8], author: &[u8; 32]) -> Result<Report, VerifyError> {
    let export: Export<'_> = canonical(bytes).ok_or(VerifyError::Container)?;
    if export.magic != export::MAGIC || export.version != export::VERSION {
        return Err(VerifyError::Container);
    }
    let mut st = State {
        batches: BTreeMap::new(),
        operators: Vec::new(),
        witnesses: BTreeMap::new(),
        own: None,
        decisions: BTreeMap::new(),
        grants: BTreeMap::new(),
        keys: Keys::default(),
        report: Report {
            records: 0,
            head: Digest([0; 32]),
            observations: 0,
            compact: 0,
            frames: 0,
            unanchored: 0,
            receipts: 0,
            batches: 0,
            proofs: 0,
            operator_actions: 0,
            decisions: 0,
            grants: 0,
            revocations: 0,
        },
    };
    let mut head = Digest([0; 32]);
    let contexts = record::Contexts::new();
    for (i, raw) in export.records.iter().enumerate() {
        let i = i as u64;
        let rec: Record<'_> = canonical(raw).ok_or(VerifyError::Decode { record: i })?;
        if rec.index != i {
            return Err(VerifyError::Index { record: i });
        }
        if rec.prev != head {
            return Err(VerifyError::Chain { record: i });
        }
        st.check(i, &rec.entry, author)?;
        head = record::digest_with(&contexts, raw);
    }
    let cp = export.checkpoint;
    if cp.count != export.records.len() as u64 || cp.head != head || export.records.is_empty() {
        return Err(VerifyError::Checkpoint);
    }
    let key = crypto::verifying_key(author).map_err(|_| VerifyError::CheckpointSignature)?;
    crypto::verify(
        &key,
        &export::message(cp.count, &cp.head),
        &cp.signature_bytes(),
    )
    .map_err(|_| VerifyError::CheckpointSignature)?;
    st.report.frames = st.keys.verified;
    st.report.unanchored = st
        .keys
        .finish()
        .map_err(|record| VerifyError::Unverifiable { record })?;
    st.report.records = cp.count;
    st.report.head = head;
    Ok(st.report)
}

/// [`verify`], then re-derives every decision: the records are replayed through a
/// trust engine restored from them (`trust::Engine::restore`), which re-runs every
/// input under the genesis policy and compares each record it would write with the
/// logged one. Reports the first record that differs (`VerifyError::Replay`). Cost:
/// one engine decision per logged attestation, on top of [`verify`].
pub fn verify_replay(bytes: &[u8], author: &[u8; 32]) -> Result<Report, VerifyError> {
    use super::storage::{Memory, Storage};
    use crate::trust::{Engine, RestoreError};
    let report = verify(bytes, author)?;
    let export: Export<'_> = canonical(bytes).ok_or(VerifyError::Container)?;
    let mut store = Memory::new(usize::MAX);
    let contexts = record::Contexts::new();
    for (i, raw) in export.records.iter().enumerate() {
        store
            .append(i as u64, &record::digest_with(&contexts, raw), raw)
            .map_err(|_| VerifyError::Container)?;
    }
    match Engine::restore(store) {
        Ok(_) => Ok(report),
        Err(
            RestoreError::Mismatch { record }
            | RestoreError::Decode { record }
            | RestoreError::Input { record, .. },
        ) => Err(VerifyError::Replay { record }),
        Err(_) => Err(VerifyError::Replay { record: 0 }),
    }
}

/// Decodes exactly one canonical value.
fn canonical<'a, T: serde::Deserialize<'a> + Serialize>(bytes: &'a [u8]) -> Option<T> {
    let (v, rest) = postcard::take_from_bytes::<T>(bytes).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let again = postcard::to_extend(&v, Vec::with_capacity(bytes.len())).ok()?;
    (again == bytes).then_some(v)
}

struct State<'a> {
    /// Verified batched receipts by record index (borrowed from the export).
    batches: BTreeMap<u64, ReceiptBatch<'a>>,
    operators: Vec<[u8; 32]>,
    /// Registered witnesses: key, active, trust zone.
    witnesses: BTreeMap<WitnessId, (VerifyingKey, bool, Zone)>,
    /// The author's own key when its radio is a witness (genesis `local`).
    own: Option<[u8; 32]>,
    decisions: BTreeMap<u64, DeviceId>,
    grants: BTreeMap<u64, DeviceId>,
    keys: Keys,
    report: Report,
}

impl<'a> State<'a> {
    fn check(&mut self, i: u64, entry: &Entry<'a>, author: &[u8; 32]) -> Result<(), VerifyError> {
        match entry {
            Entry::Genesis(g) => {
                if i != 0 || g.author != *author {
                    return Err(VerifyError::Genesis { record: i });
                }
                self.operators = g.operators.clone();
                if let Some(local) = &g.local {
                    let k = crypto::verifying_key(author)
                        .map_err(|_| VerifyError::Genesis { record: i })?;
                    self.witnesses
                        .insert(crypto::witness_id(author), (k, true, local.zone));
                    self.own = Some(*author);
                }
            }
            _ if i == 0 => return Err(VerifyError::Genesis { record: i }),
            Entry::Observation(o) => {
                self.report.observations += 1;
                self.keys
                    .observe(i, &o.device, &o.digest, o.frame)
                    .map_err(|(record, fault)| VerifyError::Frame { record, fault })?;
                let seq = slope_proto::Event::decode(o.frame)
                    .map(|e| e.seq())
                    .map_err(|_| VerifyError::Frame {
                        record: i,
                        fault: FrameFault::Decode,
                    })?;
                self.receipts(i, &o.receipts, &o.device, seq, &o.digest)?;
            }
            Entry::Compact(o) => {
                // The MAC is not re-checkable here (its key is disclosed by a later frame,
                // and the chain anchor is not logged): the frame must decode as a compact
                // attestation of the logged device and interval.
                let ok = slope_proto::compact::attestation::View::parse(o.frame)
                    .is_ok_and(|v| v.device() == o.device.short() && v.interval() == o.interval);
                if !ok {
                    return Err(VerifyError::Frame {
                        record: i,
                        fault: FrameFault::Decode,
                    });
                }
                self.report.compact += 1;
                let digest = crate::trust::compact::receipt_digest(o.frame);
                self.receipts(i, &o.receipts, &o.device, o.interval, &digest)?;
            }
            Entry::ReceiptBatch { frame } => {
                let b =
                    ReceiptBatch::decode(frame).map_err(|_| VerifyError::Receipt { record: i })?;
                if !self.active_witness_signed(&b.witness(), |k| b.verify_witness(k).is_ok()) {
                    return Err(VerifyError::Receipt { record: i });
                }
                self.batches.insert(i, b);
                self.report.batches += 1;
            }
            Entry::Weighting { .. } | Entry::Eviction { .. } => {}
            Entry::Decision { device, .. } => {
                self.report.decisions += 1;
                self.decisions.insert(i, *device);
            }
            Entry::Grant(g) => {
                if self.decisions.get(&g.decision) != Some(&g.device) {
                    return Err(VerifyError::Reference { record: i });
                }
                self.report.grants += 1;
                self.grants.insert(g.decision, g.device);
            }
            Entry::Revocation(r) => {
                if self.grants.get(&r.grant_decision) != Some(&r.device) {
                    return Err(VerifyError::Reference { record: i });
                }
                self.report.revocations += 1;
            }
            Entry::Divergence { device, proof, .. } => {
                let ok = DivergenceProof::decode(proof)
                    .ok()
                    .and_then(|p| p.verify().ok())
                    .is_some_and(|d| d.device == *device);
                if !ok {
                    return Err(VerifyError::Proof { record: i });
                }
                self.report.proofs += 1;
            }
            Entry::CompactDivergence {
                device,
                interval,
                max_skew_ms,
                proof,
            } => {
                let zone_of = |k: &[u8; 32]| match self.witnesses.get(&crypto::witness_id(k)) {
                    Some((_, true, zone)) => Some(*zone),
                    _ => None,
                };
                let ok = slope_proto::compact::CompactProof::decode(proof)
                    .ok()
                    .and_then(|p| {
                        p.verify_with(*max_skew_ms, |dating| {
                            crate::compact::dated_enough(dating, self.own.as_ref(), zone_of)
                        })
                        .ok()
                    })
                    .is_some_and(|d| d.device == *device && d.interval == *interval);
                if !ok {
                    return Err(VerifyError::Proof { record: i });
                }
                self.report.proofs += 1;
            }
            Entry::Operator(s) => {
                s.verify(&self.operators)
                    .map_err(|_| VerifyError::Operator { record: i })?;
                self.report.operator_actions += 1;
                match &s.action {
                    Action::RegisterWitness { key, zone, .. } => {
                        let k = crypto::verifying_key(key)
                            .map_err(|_| VerifyError::Operator { record: i })?;
                        self.witnesses
                            .insert(crypto::witness_id(key), (k, true, *zone));
                    }
                    Action::RetireWitness { witness } => {
                        if let Some(w) = self.witnesses.get_mut(witness) {
                            w.1 = false;
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Checks the receipts logged with the observation at record `i`: each is signed by
    /// an active witness (a batch entry's signature was checked at its own record) and
    /// names `device`, `seq` and the link of `digest`.
    fn receipts(
        &mut self,
        i: u64,
        receipts: &[ReceiptRef<'a>],
        device: &DeviceId,
        seq: u32,
        digest: &Digest,
    ) -> Result<(), VerifyError> {
        for r in receipts {
            let b = match r {
                ReceiptRef::Frame(f) => {
                    let r = Signed::<Receipt>::decode(f)
                        .map_err(|_| VerifyError::Receipt { record: i })?;
                    if !self
                        .active_witness_signed(&r.body().witness, |k| r.verify_witness(k).is_ok())
                    {
                        return Err(VerifyError::Receipt { record: i });
                    }
                    r.body().clone()
                }
                ReceiptRef::Batch { record, entry } => self
                    .batches
                    .get(record)
                    .and_then(|b| Some(b.entry(usize::from(*entry))?.receipt(b.witness())))
                    .ok_or(VerifyError::Receipt { record: i })?,
            };
            if b.device != device.short() || b.seq != seq || b.event != digest.link() {
                return Err(VerifyError::Receipt { record: i });
            }
            self.report.receipts += 1;
        }
        Ok(())
    }

    /// Whether `witness` is registered and active at this point of the log and
    /// `verifies` holds for its key.
    fn active_witness_signed(
        &self,
        witness: &WitnessId,
        verifies: impl FnOnce(&VerifyingKey) -> bool,
    ) -> bool {
        matches!(self.witnesses.get(witness), Some((k, true, _)) if verifies(k))
    }
}
