//! A simulated gateway: the real `slope_node::verifier::Verifier` fed in batches
//! (`handle_batch`, as the mesh pipeline does), a short durable history to check
//! historic events against, the trust stage ([`super::trust::Stage`]), and the
//! divergence proofs it has verified.
//!
//! Receptions (radio, gossip, sync replies) wait in an inbox and are processed together
//! at the next flush, one batch verification per flush. What the world must do next
//! comes back as [`Action`]s.

use std::collections::{BTreeSet, VecDeque};

use super::fx::{HashMap, HashSet};
use std::sync::Arc;

use slope_node::verifier::compact::{
    self as vc, Conflict, Event as CompactEvent, FrameOutcome, Reject, VerifiedCompact,
};
use slope_node::verifier::{Config, Missing, Outcome, Verifier, VerifyError};
use slope_proto::compact::CompactProof;
use slope_proto::compact::proof::Parts;
use slope_proto::{DeviceId, Observation, ShortId};
use slope_radios::sim::{NodeId, Position};

use super::memo::Memo;
use super::receipts::{Att, Corroboration, Pending};
use super::trust::{Judged, Mode, Stage};

/// Positions kept per device (a day at one attestation per 15 min), to compare a
/// `Historic` event with: what the mesh's durable store does. A clone that speaks while
/// its original is dormant pushes the original's positions out of the verifier's
/// window; the original's frames then arrive as `Historic` and are proven against this.
pub const HISTORY: usize = 96;

/// Radio-heard escrowed frames remembered at most (the verifier's escrow bound).
const ESCROWED_RADIO_MAX: usize = 4096;

/// What a gateway keeps of one device beside its verifier, in one map entry (one lookup
/// per verified frame): whether it announced tracking it, and its held positions.
#[derive(Debug, Default)]
struct Local {
    tracked: bool,
    /// Held positions, oldest first, at most `HISTORY`: their positions apart from their
    /// envelopes, so that the duplicate check on each new one scans 4 bytes an entry.
    seqs: VecDeque<u32>,
    envelopes: VecDeque<Arc<[u8]>>,
}

impl Local {
    /// Holds `envelope` at `seq` unless it is held there already (the oldest position
    /// leaves at the bound).
    fn remember(&mut self, seq: u32, envelope: Arc<[u8]>) {
        let held = self
            .seqs
            .iter()
            .zip(&self.envelopes)
            .any(|(s, f)| *s == seq && **f == *envelope);
        if held {
            return;
        }
        if self.seqs.len() >= HISTORY {
            self.seqs.pop_front();
            self.envelopes.pop_front();
        } else if self.seqs.len() == self.seqs.capacity() {
            // Grown in steps that end at the bound, not past it.
            let more = self.seqs.len().max(8).min(HISTORY - self.seqs.len());
            self.seqs.reserve_exact(more);
            self.envelopes.reserve_exact(more);
        }
        self.seqs.push_back(seq);
        self.envelopes.push_back(envelope);
    }

    /// Marks the device tracked; whether it was not before (the world is told then).
    fn track(&mut self) -> bool {
        !std::mem::replace(&mut self.tracked, true)
    }

    /// The envelopes held at positions `from..=to`.
    fn held(&self, from: u32, to: u32) -> Vec<Arc<[u8]>> {
        self.seqs
            .iter()
            .zip(&self.envelopes)
            .filter(|(s, _)| (from..=to).contains(*s))
            .map(|(_, f)| f.clone())
            .collect()
    }
}

/// Suite-2 receive stamps kept at most (own receptions and receipts that came with
/// relayed frames): what a compact divergence proof needs for each of its frames.
const STAMPS_MAX: usize = 65_536;
/// Authenticated compact frames the rogue keeps per device (its raw material).
const ROGUE_FRAMES: usize = 8;

/// A map with a bound, dropping the oldest entry at the bound.
#[derive(Debug, Default)]
struct Bounded<V> {
    map: HashMap<[u8; 32], V>,
    order: VecDeque<[u8; 32]>,
}

impl<V> Bounded<V> {
    fn insert(&mut self, key: [u8; 32], value: V) {
        if self.map.insert(key, value).is_none() {
            if self.order.len() >= STAMPS_MAX
                && let Some(old) = self.order.pop_front()
            {
                self.map.remove(&old);
            }
            self.order.push_back(key);
        }
    }
    fn get(&self, key: &[u8; 32]) -> Option<&V> {
        self.map.get(key)
    }
    fn get_mut(&mut self, key: &[u8; 32]) -> Option<&mut V> {
        self.map.get_mut(key)
    }
}

/// Relayers' receipts kept per suite-2 frame (distinct relayers): with this gateway's
/// own, a proof frame's dating (`MAX_DATING`).
const RELAYS_PER_FRAME: usize = slope_proto::compact::params::MAX_DATING - 1;

/// A suite-2 renewal ready for a proof: (its receipt, the frame, its interval's key).
type Dated = (
    Vec<Arc<[u8]>>,
    Arc<[u8]>,
    slope_proto::compact::crypto::ChainKey,
);

/// A suite-2 frame relayed by another gateway: the first gateway's receive time and
/// its signed receipt of it (the frame keeps the first receive time, §3 of
/// docs/compact-suite.md).
#[derive(Debug, Clone)]
pub struct Relay {
    pub rx_ms: u64,
    pub receipt: Arc<[u8]>,
}

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
    /// For a relayed suite-2 frame: its first receive time and receipt.
    pub relay: Option<Relay>,
}

/// What the world must do after a flush.
#[derive(Debug, Clone)]
pub enum Action {
    /// A frame this gateway's radio heard and verified: deliver it to the other gateways
    /// that track the device.
    Gossip {
        device: DeviceId,
        envelope: Arc<[u8]>,
        relay: Option<Relay>,
    },
    /// A suite-2 frame this gateway's radio heard, relayed at once with this gateway's
    /// timestamp receipt (as the mesh does after its commit): its MAC can only be
    /// checked one disclosure later, and by then a relayed frame would be late at every
    /// other gateway (they date it by their own clock, at most `RELAY_BACKDATE_MS`
    /// earlier). Not a verdict on the frame: nothing is counted as accepted.
    Relay {
        device: DeviceId,
        envelope: Arc<[u8]>,
        relay: Relay,
    },
    /// A suite-2 frame this gateway's radio heard is now authenticated (it was relayed
    /// at reception): counted as a verified frame, not gossiped again.
    Verified {
        device: DeviceId,
        envelope: Arc<[u8]>,
    },
    /// The gateway now tracks this device (it wants its gossip).
    Track(DeviceId),
    /// Ask the mesh for the establishment events an escrowed frame waits for (and, for
    /// a suite-2 frame of an unknown device, its anchor too).
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
    /// Suite 2: anchors accepted, frames taken for checking, frames authenticated,
    /// MACs that failed once their key was known, frames refused as late (received
    /// after their key could be public), for an unknown device, or otherwise, and
    /// divergences no proof could be built for (a receipt missing).
    pub compact: CompactCounters,
}

/// Suite-2 outcomes of one gateway (or, summed, of all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CompactCounters {
    pub anchored: u64,
    pub anchor_refused: u64,
    pub taken: u64,
    pub authenticated: u64,
    pub bad_mac: u64,
    pub late: u64,
    pub unknown_device: u64,
    pub refused_other: u64,
    pub renewed: u64,
    /// Renewals the honest devices sent, and honest devices whose chain ran out
    /// (filled in by the summary).
    pub renewals_sent: u64,
    pub exhausted: u64,
    pub unproven: u64,
    pub proofs_built: u64,
    /// Peers' proofs dated by one zone only that this gateway took after adding its
    /// own receipts (it received the frames in time itself).
    pub proofs_upgraded: u64,
    /// Peak of frames waiting for their key at one gateway, and the verifier's bound
    /// (filled in by the summary).
    pub peak_pending: usize,
    pub pending_bound: usize,
}

impl CompactCounters {
    /// Adds another gateway's counters (peaks: the largest).
    pub fn add(&mut self, o: &Self) {
        self.anchored += o.anchored;
        self.anchor_refused += o.anchor_refused;
        self.taken += o.taken;
        self.authenticated += o.authenticated;
        self.bad_mac += o.bad_mac;
        self.late += o.late;
        self.unknown_device += o.unknown_device;
        self.refused_other += o.refused_other;
        self.renewed += o.renewed;
        self.renewals_sent += o.renewals_sent;
        self.exhausted += o.exhausted;
        self.unproven += o.unproven;
        self.proofs_built += o.proofs_built;
        self.proofs_upgraded += o.proofs_upgraded;
        self.peak_pending = self.peak_pending.max(o.peak_pending);
        self.pending_bound = self.pending_bound.max(o.pending_bound);
    }
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
    /// Per device: tracked or not, and the held positions.
    local: HashMap<DeviceId, Local>,
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
    /// Suite 2: the anchor frame accepted for each device (a proof carries it).
    anchors: HashMap<DeviceId, Arc<[u8]>>,
    /// Suite 2: frame digest → this gateway's radio reception time.
    heard: Bounded<u64>,
    /// Suite 2: frame digest → the time this gateway's verifier dated a relayed frame
    /// with (its own clock, at most `RELAY_BACKDATE_MS` earlier).
    dated: Bounded<u64>,
    /// Suite 2: frame digest → this gateway's signed receipt of its radio reception.
    stamps: Bounded<Arc<[u8]>>,
    /// Suite 2: frame digest → the receipts of the gateways that relayed it here (each
    /// heard it on its radio), at most `RELAYS_PER_FRAME`.
    relays: Bounded<Vec<Arc<[u8]>>>,
    /// The rogue's raw material: recent authenticated compact frames per device.
    pub rogue_frames: HashMap<DeviceId, VecDeque<VerifiedCompact>>,
    /// Suite 2: each device's chains, disclosed keys and renewal frames.
    chains: super::chains::Chains,
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
            local: HashMap::default(),
            proofs: HashSet::default(),
            proof_list: Vec::new(),
            syncing: BTreeSet::new(),
            escrowed_radio: HashSet::default(),
            counters: Counters::default(),
            peak_devices: 0,
            peak_escrow: 0,
            peak_engine: 0,
            corroboration,
            rogue: false,
            false_entries: 0,
            anchors: HashMap::default(),
            heard: Bounded::default(),
            stamps: Bounded::default(),
            relays: Bounded::default(),
            dated: Bounded::default(),
            rogue_frames: HashMap::default(),
            chains: super::chains::Chains::default(),
        }
    }

    /// The suite-2 anchor this gateway accepted for `device`.
    pub fn anchor(&self, device: &DeviceId) -> Option<Arc<[u8]>> {
        self.anchors.get(device).cloned()
    }

    /// A suite-2 receipt of this gateway dating `frame` at `rx_ms` (what the rogue
    /// signs at will; honest gateways sign only what their radio received).
    pub fn stamp(&self, frame: &[u8], rx_ms: u64) -> Option<Vec<u8>> {
        self.corroboration.stamp(frame, rx_ms)
    }

    /// The suite-2 clock bound of the verifier.
    pub fn max_skew_ms(&self) -> u64 {
        self.verifier.compact().config().max_skew_ms
    }

    /// The periodic timer of the suite-2 verifier (frames that waited too long).
    pub fn tick(&mut self, now_ms: u64) {
        self.verifier.handle_timeout(now_ms);
    }

    /// A receipt of this gateway dating `frame` at `rx_ms` (signed on demand, kept).
    fn own_stamp(&mut self, frame: &[u8], rx_ms: u64) -> Option<Arc<[u8]>> {
        let digest = *blake3::hash(frame).as_bytes();
        if let Some(r) = self.stamps.get(&digest) {
            return Some(r.clone());
        }
        let r: Arc<[u8]> = self.corroboration.stamp(frame, rx_ms)?.into();
        self.stamps.insert(digest, r.clone());
        Some(r)
    }

    /// The gateway's public (witness) key.
    pub fn public_key(&self) -> ed25519_dalek::VerifyingKey {
        self.corroboration.public_key()
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
    pub fn handle_receipts(&mut self, batch: Option<&slope_node::trust::PreparedBatch>) {
        let c = &mut self.corroboration;
        // The filter finds each kept entry's place once; attach uses what it found.
        let mut found = Vec::new();
        let verified = batch.and_then(|b| {
            let wanted = |e: &slope_proto::batch::Entry| {
                let f = c.find(e);
                if f.is_some() {
                    found.push(f);
                }
                f.is_some()
            };
            let receipts = self.stage.receipts(b, &mut self.memo, wanted).ok()?;
            Some((b.entries().len() - receipts.len(), receipts))
        });
        match verified {
            Some((skipped, receipts)) if receipts.len() == found.len() => {
                c.counters.batches_verified += 1;
                c.attach_found(receipts, &found, skipped);
            }
            Some((skipped, receipts)) => {
                // Not one receipt per kept entry (never, by `verify_prepared_with`):
                // look each up again rather than trust the places.
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
        att: Att,
        observed: Observation,
        actions: &mut Vec<Action>,
    ) {
        self.corroboration.witness(att.key(), observed);
        self.hold(now_ms, att, actions);
    }

    /// Holds `att` for the other witnesses' receipts (decided once they can be in).
    fn hold(&mut self, now_ms: u64, att: Att, actions: &mut Vec<Action>) {
        if let Some(early) = self.corroboration.hold(now_ms, att) {
            self.judge(now_ms, early, actions);
        }
        if !self.corroboration.decide_scheduled {
            self.corroboration.decide_scheduled = true;
            actions.push(Action::DecideAt(now_ms + self.corroboration.wait_ms()));
        }
    }

    /// The rogue's lies: a receipt for an attestation it only received by gossip, with
    /// a made-up strong reception, and one for an event that never happened.
    fn lie(&mut self, now_ms: u64, att: &Att) {
        let observed = forged_reception(now_ms);
        let (short, seq, link) = att.key();
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
        self.local.get(device).is_some_and(|l| l.tracked)
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
        self.local
            .get(device)
            .map_or_else(Vec::new, |l| l.held(from, to))
    }

    /// The newest frame held for `device` (envelope).
    pub fn latest(&self, device: &DeviceId) -> Option<Arc<[u8]>> {
        self.local.get(device)?.envelopes.back().cloned()
    }

    /// A sync request for `missing` was answered (or given up).
    pub fn synced(&mut self, missing: &Missing) {
        self.syncing.remove(missing);
    }

    /// Verifies everything in the inbox as one batch; returns what the world must do.
    pub fn flush(&mut self, now_ms: u64, trace: &mut super::trace::Records) -> Vec<Action> {
        self.flush_scheduled = false;
        let mut inbox = std::mem::take(&mut self.inbox);
        if inbox.is_empty() {
            self.inbox = inbox;
            return Vec::new();
        }
        self.counters.batches += 1;
        // Relayed suite-2 frames are checked one by one after the batch (below).
        let batched = || inbox.iter().filter(|i| i.relay.is_none());
        let frames: Vec<(&[u8], Observation)> =
            batched().map(|i| (&i.envelope[..], i.rx)).collect();
        let outcomes = self.verifier.handle_batch(now_ms, &frames);
        drop(frames);
        let mut actions = Vec::new();
        for (input, outcome) in batched().zip(outcomes) {
            self.outcome(now_ms, outcome, Some(input), &mut actions, trace);
        }
        let relayed = inbox.iter().filter(|i| i.relay.is_some());
        // A relayed suite-2 frame keeps the first gateway's receive time (dated by its
        // receipt, which travels with it), but never earlier than its arrival here less
        // `RELAY_BACKDATE_MS` (as in the mesh: a lying witness cannot back-date a frame
        // into this verifier): checked one by one at that time.
        for input in relayed {
            let Some(relay) = &input.relay else { continue };
            let digest = *blake3::hash(&input.envelope).as_bytes();
            match self.relays.get_mut(&digest) {
                Some(rs) => {
                    if rs.len() < RELAYS_PER_FRAME && !rs.contains(&relay.receipt) {
                        rs.push(relay.receipt.clone());
                    }
                }
                None => self.relays.insert(digest, vec![relay.receipt.clone()]),
            }
            let floor = now_ms.saturating_sub(slope_node::compact::RELAY_BACKDATE_MS);
            let rx_ms = relay.rx_ms.clamp(floor, now_ms.max(floor));
            self.dated.insert(digest, rx_ms);
            let outcome = self
                .verifier
                .handle_attestation(rx_ms, &input.envelope, input.rx);
            self.outcome(now_ms, outcome, Some(input), &mut actions, trace);
        }
        while let Some(outcome) = self.verifier.poll_outcome() {
            self.outcome(now_ms, outcome, None, &mut actions, trace);
        }
        self.peak_devices = self.peak_devices.max(self.verifier.device_count());
        self.peak_engine = self.peak_engine.max(self.stage.devices());
        self.peak_escrow = self.peak_escrow.max(self.verifier.escrow_stats().held);
        let pending = self.verifier.compact().pending_total();
        self.counters.compact.peak_pending = self.counters.compact.peak_pending.max(pending);
        // The inbox keeps its buffer for the next round of receptions.
        inbox.clear();
        self.inbox = inbox;
        actions
    }

    /// A divergence proof received by gossip: verified here from nothing before it
    /// quarantines anything. Returns the device and the proof to forward when the proof
    /// is valid and new here (a suite-2 proof may come back with this gateway's own
    /// receipts added).
    pub fn handle_proof(
        &mut self,
        now_ms: u64,
        proof: &Arc<[u8]>,
    ) -> Option<(DeviceId, Arc<[u8]>)> {
        let key = *blake3::hash(proof).as_bytes();
        if self.proofs.contains(&key) {
            return None;
        }
        if proof.get(1) == Some(&slope_proto::compact::SUITE) {
            return self.handle_compact_proof(now_ms, key, proof);
        }
        match slope_node::verifier::verify_divergence_proof(proof) {
            Ok(d) => {
                self.counters.proofs_accepted += 1;
                self.proofs.insert(key);
                self.proof_list.push(proof.clone());
                let fresh = self.stage.diverged(now_ms, &d.device, proof);
                fresh.then(|| (d.device, proof.clone()))
            }
            Err(_) => {
                self.counters.proofs_rejected += 1;
                None
            }
        }
    }

    /// A gossiped suite-2 divergence proof: checked from nothing, then by the trust
    /// engine (which also requires both receipt signers to be registered witnesses).
    fn handle_compact_proof(
        &mut self,
        now_ms: u64,
        key: [u8; 32],
        proof: &Arc<[u8]>,
    ) -> Option<(DeviceId, Arc<[u8]>)> {
        let skew = self.max_skew_ms();
        let Ok(d) = slope_node::compact::verify_proof(proof, skew) else {
            self.counters.proofs_rejected += 1;
            return None;
        };
        let (mut fresh, mut accepted) = self.stage.diverged_compact(now_ms, &d.device, proof, skew);
        let mut proof = proof.clone();
        if !accepted && let Some(upgraded) = self.own_dating(&proof) {
            // Dated by others in one zone only, but this gateway received the frames in
            // time itself: its own receipts make the proof one it takes (and floods).
            (fresh, accepted) = self
                .stage
                .diverged_compact(now_ms, &d.device, &upgraded, skew);
            if accepted {
                self.counters.compact.proofs_upgraded += 1;
                proof = upgraded;
            }
        }
        if !accepted {
            self.counters.proofs_rejected += 1;
            return None;
        }
        self.counters.proofs_accepted += 1;
        self.proofs.insert(key);
        self.proofs.insert(*blake3::hash(&proof).as_bytes());
        self.proof_list.push(proof.clone());
        fresh.then_some((d.device, proof))
    }

    /// When this gateway dated a suite-2 frame itself: its radio reception, or a relay's
    /// arrival by its own clock (`RELAY_BACKDATE_MS`).
    fn dated_at(&self, frame: &[u8]) -> Option<u64> {
        let digest = *blake3::hash(frame).as_bytes();
        self.heard
            .get(&digest)
            .or_else(|| self.dated.get(&digest))
            .copied()
    }

    /// The receipts dating a suite-2 frame in a proof: this gateway's own at `at` (when
    /// it dated the frame itself), then those of the gateways that relayed it here;
    /// `None` when there is none.
    fn dating(&mut self, frame: &[u8], at: Option<u64>) -> Option<Vec<Arc<[u8]>>> {
        let digest = *blake3::hash(frame).as_bytes();
        let relayed = self.relays.get(&digest).cloned().unwrap_or_default();
        let own = at.and_then(|t| self.own_stamp(frame, t));
        let out: Vec<Arc<[u8]>> = own.into_iter().chain(relayed).collect();
        (!out.is_empty()).then_some(out)
    }

    /// A suite-2 proof with this gateway's own receipt added to every frame and renewal
    /// it received in time itself (its radio, or a relay it dated by its own clock),
    /// `None` if it dated none of the two conflicting frames.
    fn own_dating(&mut self, proof: &[u8]) -> Option<Arc<[u8]>> {
        let p = CompactProof::decode(proof).ok()?;
        let (a, b) = p.frames();
        if self.dated_at(a).is_none() && self.dated_at(b).is_none() {
            return None;
        }
        let mut own: Vec<(&[u8], Arc<[u8]>)> = Vec::new();
        p.for_each_frame(|f| {
            if let Some(t) = self.dated_at(f)
                && let Some(r) = self.own_stamp(f, t)
            {
                own.push((f, r));
            }
        });
        let mut out = vec![0u8; slope_proto::limits::MAX_PROOF];
        let n = p
            .with_receipts(
                |f| {
                    own.iter()
                        .find(|(frame, _)| *frame == f)
                        .map(|(_, r)| &r[..])
                },
                &mut out,
            )
            .ok()?;
        out.truncate(n);
        Some(out.into())
    }

    /// A suite-2 divergence this verifier found: a proof whose frames are each dated by
    /// this gateway's own receipt (at the time its verifier dated the frame) and by the
    /// receipts of the gateways that relayed it here (each heard it on its radio): for
    /// the gateways that saw neither frame in time, that is usually witnesses of two
    /// zones (`slope_node::compact::dated_enough`). Renewals are dated the same way.
    fn compact_conflict(&mut self, now_ms: u64, c: &Conflict, actions: &mut Vec<Action>) {
        // A clone conflicts in every interval: once the device is quarantined here, one
        // proof is enough (the proofs held stay one per device, not one per interval).
        if self.stage.mode(&c.device, now_ms) == Mode::Quarantined {
            return;
        }
        // A renewal's dating: this gateway's own receipt at the time it dated the
        // renewal (its radio, or a relay), and the relayers' receipts.
        // Both frames were dated by this verifier (the conflict carries the times).
        let a = self.dating(c.first.frame(), Some(c.first.rx_ms()));
        let b = self.dating(c.second.frame(), Some(c.second.rx_ms()));
        // Every renewal from the anchor's chain to the conflict's, each with the
        // receipt that dates it.
        let renewals: Option<Vec<Dated>> =
            self.chains.parts(&c.device, c.interval).and_then(|parts| {
                parts
                    .into_iter()
                    .map(|(frame, key)| {
                        let at = self.dated_at(&frame);
                        Some((self.dating(&frame, at)?, frame, key))
                    })
                    .collect()
            });
        let proof = match (a, b, self.anchors.get(&c.device), renewals) {
            (Some(ra), Some(rb), Some(anchor), Some(renewals)) => {
                let est = self.verifier.establishments(&c.device);
                let receipts: Vec<Vec<&[u8]>> = renewals
                    .iter()
                    .map(|(rs, _, _)| rs.iter().map(|r| &r[..]).collect())
                    .collect();
                let renewals: Vec<slope_proto::compact::proof::DatedRenewal<'_>> = renewals
                    .iter()
                    .zip(&receipts)
                    .map(|((_, f, k), r)| (&f[..], &r[..], k))
                    .collect();
                let ra: Vec<&[u8]> = ra.iter().map(|r| &r[..]).collect();
                let rb: Vec<&[u8]> = rb.iter().map(|r| &r[..]).collect();
                est.first().and_then(|inception| {
                    let mut out = vec![0u8; slope_proto::limits::MAX_PROOF];
                    let parts = Parts {
                        inception,
                        rotations: est.get(1..).unwrap_or(&[]),
                        anchor,
                        renewals: &renewals,
                        key: &c.key,
                        a: (c.first.frame(), &ra),
                        b: (c.second.frame(), &rb),
                    };
                    let n = CompactProof::encode(&parts, &mut out).ok()?;
                    out.truncate(n);
                    Some(out)
                })
            }
            _ => None,
        };
        // Checked before use: a proof missing a piece stays unproven (counted).
        let skew = self.max_skew_ms();
        let Some(proof) = proof.filter(|p| slope_node::compact::verify_proof(p, skew).is_ok())
        else {
            self.counters.compact.unproven += 1;
            return;
        };
        self.counters.compact.proofs_built += 1;
        let proof: Arc<[u8]> = proof.into();
        let key = *blake3::hash(&proof).as_bytes();
        if !self.proofs.insert(key) {
            return;
        }
        self.proof_list.push(proof.clone());
        let (fresh, _) = self.stage.diverged_compact(now_ms, &c.device, &proof, skew);
        if fresh {
            actions.push(Action::Quarantined {
                device: c.device,
                proof,
            });
        }
    }

    /// What a suite-2 outcome does here.
    fn compact(
        &mut self,
        now_ms: u64,
        outcome: vc::Outcome,
        input: Option<&Input>,
        source: Source,
        actions: &mut Vec<Action>,
    ) {
        let c = &mut self.counters;
        match outcome {
            vc::Outcome::Anchored { device, first, len } => {
                c.compact.anchored += 1;
                if let Some(i) = input {
                    if let Ok(a) = slope_proto::compact::SignedAnchor::decode(&i.envelope) {
                        self.chains.anchored(device, first, len, a.body().delay);
                    }
                    let fresh = !self.anchors.contains_key(&device);
                    self.anchors.insert(device, i.envelope.clone());
                    self.track(device, actions);
                    if fresh && source == Source::Radio {
                        actions.push(Action::Gossip {
                            device,
                            envelope: i.envelope.clone(),
                            relay: None,
                        });
                    }
                }
            }
            vc::Outcome::Frame(FrameOutcome::Duplicate { .. }) => c.duplicate += 1,
            vc::Outcome::Frame(f) => {
                c.compact.taken += 1;
                if let (
                    FrameOutcome::Buffered {
                        device, interval, ..
                    }
                    | FrameOutcome::Checked {
                        device, interval, ..
                    },
                    Some(i),
                ) = (f, input)
                    && slope_proto::compact::frame::parse_header(&i.envelope)
                        == Ok(slope_proto::compact::Kind::Renewal)
                {
                    self.chains.heard(device, interval, i.envelope.clone());
                }
                if let Some(i) = input.filter(|i| i.source == Source::Radio) {
                    // The reception time this gateway would sign for the frame, and its
                    // witness entry: signed at reception (what the radio observed, not
                    // a verdict), so the other witnesses' receipts are there when the
                    // frame is authenticated one disclosure later.
                    self.heard
                        .insert(*blake3::hash(&i.envelope).as_bytes(), now_ms);
                    if let Some(key) = compact_key(&i.envelope) {
                        self.corroboration.witness(key, i.rx);
                        self.corroboration.expect(key);
                    }
                    // Relayed now, stamped with this reception (see `Action::Relay`).
                    if let (
                        FrameOutcome::Buffered { device, .. }
                        | FrameOutcome::Checked { device, .. },
                        Some(receipt),
                    ) = (f, self.own_stamp(&i.envelope, now_ms))
                    {
                        actions.push(Action::Relay {
                            device,
                            envelope: i.envelope.clone(),
                            relay: Relay {
                                rx_ms: now_ms,
                                receipt,
                            },
                        });
                    }
                }
            }
            vc::Outcome::Event(CompactEvent::Authenticated(a)) => {
                c.compact.authenticated += 1;
                c.verified += 1;
                let device = *a.device();
                self.track(device, actions);
                if let Ok(view) = slope_proto::compact::attestation::View::parse(a.frame()) {
                    self.chains
                        .disclosed(&device, view.interval(), view.disclosed());
                }
                // Authenticated from this gateway's own radio reception (a relayed
                // frame carries the relayed observation, frequency 0); it was relayed
                // when it was heard.
                if a.rx().is_some_and(|o| o.freq_hz != 0) {
                    let envelope: Arc<[u8]> = a.frame().into();
                    self.hold(now_ms, Att::Compact(a.clone()), actions);
                    actions.push(Action::Verified { device, envelope });
                } else if self.rogue {
                    self.lie(now_ms, &Att::Compact(a.clone()));
                }
                if self.rogue {
                    let kept = self.rogue_frames.entry(device).or_default();
                    if kept.len() >= ROGUE_FRAMES {
                        kept.pop_front();
                    }
                    kept.push_back(a);
                }
            }
            vc::Outcome::Event(CompactEvent::Divergence(conflict)) => {
                c.divergence += 1;
                c.verified += 1;
                self.track(conflict.device, actions);
                self.compact_conflict(now_ms, &conflict, actions);
            }
            vc::Outcome::Event(CompactEvent::BadMac { .. }) => c.compact.bad_mac += 1,
            vc::Outcome::Event(CompactEvent::Renewed { device, first, len }) => {
                c.compact.renewed += 1;
                // The renewal copies this radio heard were relayed when heard.
                self.chains.renewed(&device, first, len);
            }
            vc::Outcome::Event(CompactEvent::RenewalConflict { .. }) => c.divergence += 1,
            _ => c.compact.refused_other += 1,
        }
    }

    /// A suite-2 frame refused on arrival.
    fn compact_refused(
        &mut self,
        e: VerifyError,
        input: Option<&Input>,
        actions: &mut Vec<Action>,
    ) {
        // Counted with the other refusals too (the suite-1 figures stay comparable),
        // and by reason below.
        self.counters.rejected_other += 1;
        let c = &mut self.counters.compact;
        let unknown = match e {
            VerifyError::Compact(Reject::Late { .. }) => {
                c.late += 1;
                false
            }
            VerifyError::Compact(Reject::UnknownDevice) => {
                c.unknown_device += 1;
                true
            }
            // An anchor whose suite-1 key this verifier does not hold (yet).
            VerifyError::UnknownKey => {
                c.anchor_refused += 1;
                true
            }
            VerifyError::Anchor(_) | VerifyError::BadSignature => {
                c.anchor_refused += 1;
                false
            }
            _ => {
                c.refused_other += 1;
                false
            }
        };
        // A device this gateway cannot check yet: ask the mesh for its inception and
        // anchor (its next frames will verify).
        if unknown
            && let Some(i) = input.filter(|i| i.source == Source::Radio)
            && let Some(short) = compact_short(&i.envelope)
        {
            let missing = Missing::Inception(short);
            if self.syncing.insert(missing) {
                actions.push(Action::Sync(missing));
            }
        }
    }

    fn outcome(
        &mut self,
        now_ms: u64,
        outcome: Outcome,
        input: Option<&Input>,
        actions: &mut Vec<Action>,
        trace: &mut super::trace::Records,
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
        let tag = match &outcome {
            Outcome::Compact(vc::Outcome::Anchored { .. }) => 9,
            Outcome::Compact(vc::Outcome::Frame(FrameOutcome::Duplicate { .. })) => 4,
            Outcome::Compact(vc::Outcome::Frame(_)) => 10,
            Outcome::Compact(vc::Outcome::Event(CompactEvent::Authenticated(_))) => 11,
            Outcome::Compact(vc::Outcome::Event(CompactEvent::Divergence(_))) => 6,
            Outcome::Compact(vc::Outcome::Event(_)) => 12,
            _ => tag,
        };
        trace.record(now_ms, 100 + tag, &[u64::from(self.index)]);
        let compact_frame =
            input.is_some_and(|i| i.envelope.get(1) == Some(&slope_proto::compact::SUITE));
        match outcome {
            Outcome::Compact(o) => {
                self.compact(now_ms, o, input, source, actions);
                return;
            }
            Outcome::Rejected(e) if compact_frame => {
                self.compact_refused(e, input, actions);
                return;
            }
            _ => {}
        }
        let c = &mut self.counters;
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
                let local = self.local.entry(device).or_default();
                local.remember(att.seq(), envelope.clone());
                if local.track() {
                    actions.push(Action::Track(device));
                }
                // The engine weighs the local radio's observation: only what this
                // gateway's own radio heard goes to it (gossip carries no RF context),
                // with the other witnesses' receipts once they can have arrived.
                if source == Source::Radio {
                    let observed = *att.rx();
                    self.witnessed(now_ms, Att::Suite1(att), observed, actions);
                    actions.push(Action::Gossip {
                        device,
                        envelope,
                        relay: None,
                    });
                } else if self.rogue && source == Source::Gossip {
                    self.lie(now_ms, &Att::Suite1(att));
                }
            }
            Outcome::Historic(att) => {
                c.historic += 1;
                c.verified += 1;
                let device = *att.device();
                let held = self.local.get(&device).and_then(|l| {
                    let at = l.seqs.iter().position(|s| *s == att.seq())?;
                    l.envelopes.get(at).cloned()
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
                        self.local
                            .entry(device)
                            .or_default()
                            .remember(att.seq(), att.frame().into());
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
        if self.local.entry(device).or_default().track() {
            actions.push(Action::Track(device));
        }
    }
}

/// What a receipt names for a suite-2 attestation: its device, interval and the link
/// of its frame digest.
fn compact_key(frame: &[u8]) -> Option<super::receipts::Key> {
    let view = slope_proto::compact::attestation::View::parse(frame).ok()?;
    Some((
        view.device(),
        view.interval(),
        slope_node::trust::compact::receipt_digest(frame).link(),
    ))
}

/// The short id a suite-2 frame names (anchor, attestation or renewal).
pub fn compact_short(frame: &[u8]) -> Option<ShortId> {
    match slope_proto::compact::decode(frame).ok()? {
        slope_proto::compact::Message::Anchor(a) => Some(a.body().device),
        slope_proto::compact::Message::Attestation(m) => Some(m.body().device),
        slope_proto::compact::Message::Renewal(m) => Some(m.body().device),
        _ => None,
    }
}

/// The strong reception a rogue gateway claims in its false receipts (the simulated
/// and the live rogue claim the same).
pub fn forged_reception(now_ms: u64) -> Observation {
    Observation {
        rssi_dbm: -70,
        snr_qdb: 32,
        freq_hz: 868_100_000,
        foff_hz: None,
        sf: 7,
        time_ms: now_ms,
    }
}
