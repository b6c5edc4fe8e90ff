//! A simulated gateway: the real `slope_node::verifier::Verifier` fed in batches
//! (`handle_batch`, as the mesh pipeline does), a short durable history to check
//! historic events against, the trust stage ([`super::trust::Stage`]), and the
//! divergence proofs it has verified.
//!
//! Receptions (radio, gossip, sync replies) wait in an inbox and are processed together
//! at the next flush, one batch verification per flush. What the world must do next
//! comes back as [`Action`]s.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use slope_node::verifier::{Config, Missing, Outcome, Verifier, VerifyError};
use slope_proto::{DeviceId, Observation};
use slope_radios::sim::{NodeId, Position};

use super::memo::Memo;
use super::receipts::{Corroboration, Key, Pending};
use super::trust::{Judged, Mode, Stage};

/// Positions kept per device (a day at one attestation per 15 min), to compare a
/// `Historic` event with: what the mesh's durable store does. A clone that speaks while
/// its original is dormant pushes the original's positions out of the verifier's
/// window; the original's frames then arrive as `Historic` and are proven against this.
pub const HISTORY: usize = 96;

/// Radio-heard escrowed frames remembered at most (the verifier's escrow bound).
const ESCROWED_RADIO_MAX: usize = 4096;

/// Held positions of one device: (position, envelope), oldest first.
type History = VecDeque<(u32, Arc<[u8]>)>;

/// Where an input came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// This gateway's radio (possibly a second RF chain or a forwarder loop).
    Radio,
    /// Gossip from another gateway.
    Gossip,
    /// A sync reply with establishment events.
    Sync,
}

/// One frame waiting for the next flush.
#[derive(Debug, Clone)]
pub struct Input {
    /// The envelope (air framing removed).
    pub envelope: Arc<[u8]>,
    pub rx: Observation,
    pub source: Source,
}

/// What the world must do after a flush.
#[derive(Debug, Clone)]
pub enum Action {
    /// A frame this gateway's radio heard and verified: deliver it to the other gateways
    /// that track the device.
    Gossip {
        device: DeviceId,
        envelope: Arc<[u8]>,
    },
    /// The gateway now tracks this device (it wants its gossip).
    Track(DeviceId),
    /// Ask the mesh for the establishment events an escrowed frame waits for.
    Sync(Missing),
    /// An `Unlinked` event (fork evidence without its sibling): ask the gateways that
    /// track the device for what they hold at these positions.
    Fetch { device: DeviceId, seq: u32 },
    /// The trust engine's decision on this device carried a context reason.
    Flagged(DeviceId),
    /// The trust engine decided on a radio-heard attestation; `watched` receipts of
    /// the watched witness (the rogue gateway) were among its receipts.
    Decided {
        device: DeviceId,
        judged: Judged,
        receipts: u8,
        watched: u8,
    },
    /// Attestations wait for receipts: decide at this time (ms).
    DecideAt(u64),
    /// A divergence proof this gateway built or verified for the first time: it has
    /// quarantined the device and floods the proof.
    Quarantined { device: DeviceId, proof: Arc<[u8]> },
}

/// Outcome counters of one gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub extended: u64,
    pub unlinked: u64,
    pub historic: u64,
    pub duplicate: u64,
    pub escrowed: u64,
    pub divergence: u64,
    pub rejected_signature: u64,
    pub rejected_decode: u64,
    pub rejected_other: u64,
    pub rejected_capacity: u64,
    /// Frames that went through a signature check (not duplicates, not escrowed).
    pub verified: u64,
    pub proofs_accepted: u64,
    pub proofs_rejected: u64,
    pub batches: u64,
}

/// One gateway.
pub struct Gateway {
    pub index: u16,
    pub node: NodeId,
    pub pos: Position,
    verifier: Verifier,
    pub stage: Stage,
    inbox: Vec<Input>,
    pub flush_scheduled: bool,
    history: HashMap<DeviceId, History>,
    tracked: HashSet<DeviceId>,
    proofs: HashSet<[u8; 32]>,
    proof_list: Vec<Arc<[u8]>>,
    syncing: BTreeSet<Missing>,
    /// Digests of frames this gateway's radio heard that went to escrow: when the
    /// escrow releases them they are radio receptions again (gossiped, judged).
    escrowed_radio: HashSet<[u8; 32]>,
    /// The shared signature memo (receipt batches; the verifier holds its own handle).
    memo: Memo,
    pub counters: Counters,
    pub peak_devices: usize,
    pub peak_escrow: usize,
    pub peak_engine: usize,
    /// Receipts to sign and decisions waiting for receipts.
    pub corroboration: Corroboration,
    /// The scenario's rogue: it also receipts what it only learned by gossip, and events
    /// that never happened.
    pub rogue: bool,
    /// Fabricated entries the rogue signed.
    pub false_entries: u64,
}

impl Gateway {
    /// A gateway whose verifier shares signature checks through `memo`.
    pub fn new(
        index: u16,
        node: NodeId,
        pos: Position,
        config: Config,
        stage: Stage,
        memo: &Memo,
        corroboration: Corroboration,
    ) -> Self {
        let mut verifier = Verifier::new(config);
        verifier.set_signature_memo(Box::new(memo.clone()));
        Self {
            memo: memo.clone(),
            index,
            node,
            pos,
            verifier,
            stage,
            inbox: Vec::new(),
            flush_scheduled: false,
            history: HashMap::new(),
            tracked: HashSet::new(),
            proofs: HashSet::new(),
            proof_list: Vec::new(),
            syncing: BTreeSet::new(),
            escrowed_radio: HashSet::new(),
            counters: Counters::default(),
            peak_devices: 0,
            peak_escrow: 0,
            peak_engine: 0,
            corroboration,
            rogue: false,
            false_entries: 0,
        }
    }

    /// The gateway's witness id.
    pub fn witness_id(&self) -> slope_proto::WitnessId {
        self.corroboration.witness_id()
    }

    /// Signs what the radio witnessed since the last round (receipt batch frames).
    pub fn seal(&mut self, now_ms: u64) -> Vec<Arc<[u8]>> {
        self.corroboration
            .seal(now_ms)
            .into_iter()
            .map(Arc::from)
            .collect()
    }

    /// A receipt batch another gateway gossiped: its one signature is checked by the
    /// trust engine against the registered witness it names (through the shared memo),
    /// and the receipts naming attestations pending here wait with them.
    pub fn handle_receipts(&mut self, frame: &[u8]) {
        let c = &mut self.corroboration;
        let verified = slope_proto::ReceiptBatch::decode(frame).ok().and_then(|b| {
            let wanted = |e: &slope_proto::batch::Entry| c.waits_for(e);
            let receipts = self.stage.receipts(&b, &mut self.memo, wanted).ok()?;
            Some((b.len() - receipts.len(), receipts))
        });
        match verified {
            Some((skipped, receipts)) => {
                c.counters.batches_verified += 1;
                c.attach(receipts, skipped);
            }
            None => c.counters.batches_refused += 1,
        }
    }

    /// Decides on every attestation whose wait for receipts is over.
    pub fn decide(&mut self, now_ms: u64) -> Vec<Action> {
        self.corroboration.decide_scheduled = false;
        let mut actions = Vec::new();
        while let Some(p) = self.corroboration.due(now_ms) {
            self.judge(now_ms, p, &mut actions);
        }
        if let Some(at) = self.corroboration.next_due() {
            self.corroboration.decide_scheduled = true;
            actions.push(Action::DecideAt(at));
        }
        actions
    }

    fn judge(&mut self, now_ms: u64, p: Pending, actions: &mut Vec<Action>) {
        let device = *p.att.device();
        let Some(judged) = self.stage.attested(now_ms, &p.att, &p.receipts) else {
            return;
        };
        if judged.context {
            actions.push(Action::Flagged(device));
        }
        actions.push(Action::Decided {
            device,
            judged,
            receipts: u8::try_from(p.receipts.len()).unwrap_or(u8::MAX),
            watched: p.watched,
        });
    }

    /// The radio heard and the verifier committed `att`: an entry of the next receipt
    /// batch, and a decision once the other witnesses' receipts can have arrived.
    fn witnessed(
        &mut self,
        now_ms: u64,
        att: &slope_node::verifier::VerifiedAttestation,
        actions: &mut Vec<Action>,
    ) {
        self.corroboration.witness(key_of(att), *att.rx());
        if let Some(early) = self.corroboration.hold(now_ms, att.clone()) {
            self.judge(now_ms, early, actions);
        }
        if !self.corroboration.decide_scheduled {
            self.corroboration.decide_scheduled = true;
            actions.push(Action::DecideAt(now_ms + self.corroboration.wait_ms()));
        }
    }

    /// The rogue's lies: a receipt for an attestation it only received by gossip, with
    /// a made-up strong reception, and one for an event that never happened.
    fn lie(&mut self, now_ms: u64, att: &slope_node::verifier::VerifiedAttestation) {
        let observed = Observation {
            rssi_dbm: -70,
            snr_qdb: 32,
            freq_hz: 868_100_000,
            foff_hz: None,
            sf: 7,
            time_ms: now_ms,
        };
        let (short, seq, link) = key_of(att);
        self.corroboration.witness((short, seq, link), observed);
        let mut never = [0u8; 16];
        never.copy_from_slice(&blake3::hash(&link.0).as_bytes()[..16]);
        self.corroboration
            .witness((short, seq + 1, slope_proto::LinkDigest(never)), observed);
        self.false_entries += 2;
    }

    /// Queues a frame for the next flush.
    pub fn receive(&mut self, input: Input) {
        self.inbox.push(input);
    }

    /// Frames waiting.
    pub fn inbox_len(&self) -> usize {
        self.inbox.len()
    }

    /// The verifier (read-only: establishments for sync replies, snapshots).
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Whether the gateway tracks `device`.
    pub fn tracks(&self, device: &DeviceId) -> bool {
        self.tracked.contains(device)
    }

    /// The trust stage's current mode for `device`.
    pub fn mode(&self, device: &DeviceId, now_ms: u64) -> Mode {
        self.stage.mode(device, now_ms)
    }

    /// The valid divergence proofs this gateway holds.
    pub fn proofs(&self) -> &[Arc<[u8]>] {
        &self.proof_list
    }

    /// The frames held for `device` at positions `from..=to` (envelopes).
    pub fn held(&self, device: &DeviceId, from: u32, to: u32) -> Vec<Arc<[u8]>> {
        self.history.get(device).map_or_else(Vec::new, |h| {
            h.iter()
                .filter(|(s, _)| (from..=to).contains(s))
                .map(|(_, f)| f.clone())
                .collect()
        })
    }

    /// The newest frame held for `device` (envelope).
    pub fn latest(&self, device: &DeviceId) -> Option<Arc<[u8]>> {
        self.history.get(device)?.back().map(|(_, f)| f.clone())
    }

    /// A sync request for `missing` was answered (or given up).
    pub fn synced(&mut self, missing: &Missing) {
        self.syncing.remove(missing);
    }

    /// Verifies everything in the inbox as one batch; returns what the world must do.
    pub fn flush(&mut self, now_ms: u64, trace: &mut super::trace::Trace) -> Vec<Action> {
        self.flush_scheduled = false;
        let inbox = std::mem::take(&mut self.inbox);
        if inbox.is_empty() {
            return Vec::new();
        }
        self.counters.batches += 1;
        let frames: Vec<(&[u8], Observation)> =
            inbox.iter().map(|i| (&i.envelope[..], i.rx)).collect();
        let outcomes = self.verifier.handle_batch(now_ms, &frames);
        let mut actions = Vec::new();
        for (input, outcome) in inbox.iter().zip(outcomes) {
            self.outcome(now_ms, outcome, Some(input), &mut actions, trace);
        }
        while let Some(outcome) = self.verifier.poll_outcome() {
            self.outcome(now_ms, outcome, None, &mut actions, trace);
        }
        self.peak_devices = self.peak_devices.max(self.verifier.device_count());
        self.peak_engine = self.peak_engine.max(self.stage.devices());
        self.peak_escrow = self.peak_escrow.max(self.verifier.escrow_stats().held);
        actions
    }

    /// A divergence proof received by gossip: verified here from nothing before it
    /// quarantines anything. Returns the device when the proof is valid and new here.
    pub fn handle_proof(&mut self, now_ms: u64, proof: &Arc<[u8]>) -> Option<DeviceId> {
        let key = *blake3::hash(proof).as_bytes();
        if self.proofs.contains(&key) {
            return None;
        }
        match slope_node::verifier::verify_divergence_proof(proof) {
            Ok(d) => {
                self.counters.proofs_accepted += 1;
                self.proofs.insert(key);
                self.proof_list.push(proof.clone());
                let fresh = self.stage.diverged(now_ms, &d.device, proof);
                fresh.then_some(d.device)
            }
            Err(_) => {
                self.counters.proofs_rejected += 1;
                None
            }
        }
    }

    fn outcome(
        &mut self,
        now_ms: u64,
        outcome: Outcome,
        input: Option<&Input>,
        actions: &mut Vec<Action>,
        trace: &mut super::trace::Trace,
    ) {
        let source = match (input, &outcome) {
            (Some(i), _) => i.source,
            // Released from escrow: a radio reception if this gateway's radio heard it.
            (None, Outcome::Extended(att) | Outcome::Unlinked(att))
                if self
                    .escrowed_radio
                    .remove(blake3::hash(att.frame()).as_bytes()) =>
            {
                Source::Radio
            }
            (None, _) => Source::Sync,
        };
        let c = &mut self.counters;
        let tag = match &outcome {
            Outcome::Extended(_) => 1,
            Outcome::Unlinked(_) => 2,
            Outcome::Historic(_) => 3,
            Outcome::Duplicate { .. } => 4,
            Outcome::Escrowed(_) => 5,
            Outcome::Divergence(_) => 6,
            Outcome::Rejected(_) => 7,
            _ => 8,
        };
        trace.record(now_ms, 100 + tag, &[u64::from(self.index)]);
        match outcome {
            Outcome::Extended(att) | Outcome::Unlinked(att) => {
                if tag == 1 {
                    c.extended += 1;
                } else {
                    c.unlinked += 1;
                }
                c.verified += 1;
                let device = *att.device();
                if tag == 2 {
                    actions.push(Action::Fetch {
                        device,
                        seq: att.seq(),
                    });
                }
                let envelope: Arc<[u8]> =
                    input.map_or_else(|| att.frame().into(), |i| i.envelope.clone());
                self.remember(device, att.seq(), envelope.clone());
                self.track(device, actions);
                // The engine weighs the local radio's observation: only what this
                // gateway's own radio heard goes to it (gossip carries no RF context),
                // with the other witnesses' receipts once they can have arrived.
                if source == Source::Radio {
                    self.witnessed(now_ms, &att, actions);
                    actions.push(Action::Gossip { device, envelope });
                } else if self.rogue && source == Source::Gossip {
                    self.lie(now_ms, &att);
                }
            }
            Outcome::Historic(att) => {
                c.historic += 1;
                c.verified += 1;
                let device = *att.device();
                let held = self.history.get(&device).and_then(|h| {
                    h.iter()
                        .find(|(s, _)| *s == att.seq())
                        .map(|(_, f)| f.clone())
                });
                match held {
                    Some(held) => {
                        if *held != *att.frame()
                            && let Ok(proof) = self.verifier.prove(&device, &held, att.frame())
                        {
                            self.quarantine(now_ms, device, proof.into(), actions);
                        }
                    }
                    // A position this gateway never held (it missed it, or a clone took
                    // it while the original was silent): keep it, and ask the gateways
                    // that track the device what they hold there — a sibling completes
                    // a proof.
                    None => {
                        self.remember(device, att.seq(), att.frame().into());
                        if source != Source::Sync {
                            actions.push(Action::Fetch {
                                device,
                                seq: att.seq(),
                            });
                        }
                    }
                }
            }
            Outcome::Duplicate { .. } => c.duplicate += 1,
            Outcome::Escrowed(missing) => {
                c.escrowed += 1;
                if let Some(i) = input.filter(|i| i.source == Source::Radio)
                    && self.escrowed_radio.len() < ESCROWED_RADIO_MAX
                {
                    self.escrowed_radio
                        .insert(*blake3::hash(&i.envelope).as_bytes());
                }
                if self.syncing.insert(missing) {
                    actions.push(Action::Sync(missing));
                }
            }
            Outcome::Divergence(ev) => {
                c.divergence += 1;
                c.verified += 1;
                let device = ev.device;
                self.track(device, actions);
                self.quarantine(now_ms, device, ev.proof.clone().into(), actions);
            }
            Outcome::Rejected(e) => match e {
                VerifyError::BadSignature | VerifyError::UnknownKey => {
                    c.rejected_signature += 1;
                }
                VerifyError::Decode(_) => c.rejected_decode += 1,
                VerifyError::Capacity => c.rejected_capacity += 1,
                _ => c.rejected_other += 1,
            },
            _ => c.rejected_other += 1,
        }
    }

    fn quarantine(
        &mut self,
        now_ms: u64,
        device: DeviceId,
        proof: Arc<[u8]>,
        actions: &mut Vec<Action>,
    ) {
        let key = *blake3::hash(&proof).as_bytes();
        if !self.proofs.insert(key) {
            return;
        }
        self.proof_list.push(proof.clone());
        if self.stage.diverged(now_ms, &device, &proof) {
            actions.push(Action::Quarantined { device, proof });
        }
    }

    fn track(&mut self, device: DeviceId, actions: &mut Vec<Action>) {
        if self.tracked.insert(device) {
            actions.push(Action::Track(device));
        }
    }

    fn remember(&mut self, device: DeviceId, seq: u32, envelope: Arc<[u8]>) {
        let h = self.history.entry(device).or_default();
        if h.iter().any(|(s, f)| *s == seq && **f == *envelope) {
            return;
        }
        if h.len() >= HISTORY {
            h.pop_front();
        }
        h.push_back((seq, envelope));
    }
}

/// What names `att` in a receipt.
fn key_of(att: &slope_node::verifier::VerifiedAttestation) -> Key {
    (att.device().short(), att.seq(), att.digest().link())
}
