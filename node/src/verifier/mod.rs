//! The verifier: per-device key state, linking across lost frames, escrow of events
//! that need an establishment event not yet seen, and duplicate and divergence
//! detection. Signatures are always checked *before* an event is classified, so a
//! garbage frame at an occupied position is a rejection, never a fork.
//!
//! Inputs: [`Verifier::handle_attestation`] (one frame) and [`Verifier::handle_batch`]
//! (many frames, one ed25519 batch verification with one-by-one fallback). Outputs: the
//! returned [`Outcome`]s, and [`Verifier::poll_outcome`] for escrowed frames that an
//! arriving establishment event released and for suite-2 verdicts.
//!
//! Suite 2 (compact, hash-only frames, docs/compact-suite.md): a frame whose envelope
//! suite byte is 2 is routed to [`compact`] before the suite-1 decoder sees it; its
//! anchor is checked against the key history held here.
//!
//! Bounds (see [`Config`]): devices tracked (new inceptions refused at the bound), the
//! window of recent positions per device, and the escrow (per missing event, in total,
//! and in time). Order independence: for any set of events spanning at most `window`
//! positions per device, every arrival order leaves the same [`Snapshot`]. Events older
//! than the window are verified and returned as [`Outcome::Historic`] for the caller to
//! compare with its durable history.

pub mod compact;
mod devices;
mod escrow;
mod outcome;
mod slope;

use alloc::boxed::Box;
use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec;
use alloc::vec::Vec;

use ed25519_dalek::{Signature, VerifyingKey};
use slope_proto::proof::Divergence;
use slope_proto::{DeviceId, Digest, DivergenceProof, Event, Observation, ShortId, crypto};

pub use escrow::EscrowStats;
pub use outcome::{DivergenceEvidence, Missing, Outcome, VerifiedAttestation, VerifyError};

use crate::time::Millis;
use devices::Devices;
use escrow::Escrow;
use slope::{DeviceSlope, Establishment, Held};

/// The verifier's bounds and windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Config {
    /// Devices tracked at most; new inceptions are refused beyond it.
    pub max_devices: usize,
    /// Recent positions held per device for duplicate and divergence detection.
    pub window: usize,
    /// Escrowed frames waiting for one missing establishment event.
    pub escrow_per_key: usize,
    /// Escrowed frames in all.
    pub escrow_total: usize,
    /// How long a frame may wait in escrow, milliseconds.
    pub escrow_ttl_ms: Millis,
    /// Outcomes released from escrow and not yet polled, at most (oldest dropped).
    pub released_max: usize,
    /// Highest epoch a device may rotate to: frames of later epochs are refused
    /// ([`VerifyError::EpochLimit`]), so one device's key history, which every verifier
    /// tracking it holds, is bounded. At most [`slope_proto::limits::MAX_EPOCHS`] (the
    /// default; a larger value acts as it), beyond which a proof of the device's clone
    /// would not fit.
    pub max_epochs: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_devices: 1_000_000,
            window: 8,
            escrow_per_key: 8,
            escrow_total: 4096,
            escrow_ttl_ms: 24 * 3600 * 1000,
            released_max: 4096,
            max_epochs: slope_proto::limits::MAX_EPOCHS,
        }
    }
}

/// The verifier's view of one device, for comparisons and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub device: DeviceId,
    pub epoch: u32,
    /// Held positions and digests, ascending.
    pub window: Vec<(u32, Digest)>,
    /// The lowest-position divergence proof, if the device has diverged.
    pub divergence: Option<(u32, Vec<u8>)>,
}

/// A frame whose signature was already checked by a batch verification, with the key
/// that checked it.
type PreVerified = Option<[u8; 32]>;

/// The verifier.
pub struct Verifier {
    config: Config,
    devices: Devices<DeviceSlope>,
    escrow: Escrow,
    /// Establishment events applied since the escrow was last drained.
    established: Vec<Missing>,
    released: VecDeque<Outcome>,
    released_dropped: u64,
    memo: Option<Box<dyn SignatureMemo + Send>>,
    /// Suite 2: chains anchored under keys this verifier holds ([`compact`]).
    compact: crate::compact::verifier::Verifier,
}

/// A memo of signature checks that several verifiers checking the same frames can share
/// (the testnet's simulated gateways, where one attestation reaches many of them).
/// Signature validity is a pure function of (key, message, signature), so a memo never
/// changes an outcome, only the work; a memo that answers wrongly is a bug in the memo.
/// A real gateway has no use for one: it checks what it receives itself.
pub trait SignatureMemo {
    /// The remembered result for this triple, if any.
    fn get(&self, key: &[u8; 32], message: &[u8; 32], signature: &[u8; 64]) -> Option<bool>;
    /// Remembers a result; the memo bounds itself.
    fn put(&mut self, key: &[u8; 32], message: &[u8; 32], signature: &[u8; 64], valid: bool);
}

/// Checks `event`'s signature for `device` under `key`, through the memo when there is one.
fn signature_ok(
    memo: &mut Option<Box<dyn SignatureMemo + Send>>,
    device: &DeviceId,
    event: &Event,
    key: &VerifyingKey,
) -> bool {
    let message = event.message(device);
    let (key_bytes, signature) = (key.to_bytes(), event.signature());
    if let Some(valid) = memo
        .as_ref()
        .and_then(|m| m.get(&key_bytes, &message, signature))
    {
        return valid;
    }
    let valid = crypto::verify(key, &message, signature).is_ok();
    if let Some(m) = memo.as_mut() {
        m.put(&key_bytes, &message, signature, valid);
    }
    valid
}

impl Verifier {
    /// A verifier with the default suite-2 bounds and clock bound.
    pub fn new(config: Config) -> Self {
        Self::with_compact(config, compact::Config::default())
    }

    /// A verifier with explicit suite-2 bounds and clock bound.
    pub fn with_compact(config: Config, compact: compact::Config) -> Self {
        Self {
            config,
            devices: Devices::default(),
            escrow: Escrow::new(
                config.escrow_per_key,
                config.escrow_total,
                config.escrow_ttl_ms,
            ),
            established: Vec::new(),
            released: VecDeque::new(),
            released_dropped: 0,
            memo: None,
            compact: crate::compact::verifier::Verifier::new(compact),
        }
    }

    /// Shares signature checks with other verifiers through `memo` (see
    /// [`SignatureMemo`]).
    pub fn set_signature_memo(&mut self, memo: Box<dyn SignatureMemo + Send>) {
        self.memo = Some(memo);
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Number of devices tracked.
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// Escrow counters.
    pub fn escrow_stats(&self) -> EscrowStats {
        self.escrow.stats()
    }

    /// Outcomes released from escrow that were dropped because nobody polled them.
    pub fn released_dropped(&self) -> u64 {
        self.released_dropped
    }

    /// The suite-2 state, read-only (device count, buffered frames, dropped events).
    pub fn compact(&self) -> &crate::compact::verifier::Verifier {
        &self.compact
    }

    /// Verifies one frame received at `now` with the radio's observation `rx`. A
    /// suite-2 frame (suite byte 2) goes to the compact verifier, with `now` as its
    /// receive time for the security condition (so `now` must be the gateway's Unix
    /// time in ms, stamped at reception).
    pub fn handle_attestation(&mut self, now: Millis, frame: &[u8], rx: Observation) -> Outcome {
        if compact::is_compact(frame) {
            // Suite-2 frames establish no suite-1 key: nothing in the escrow can wait
            // for them, so the escrow is left alone (it expires on suite-1 frames and
            // in `handle_timeout`).
            return self.handle_compact(now, frame, rx);
        }
        self.escrow.expire(now);
        let outcome = match Event::decode(frame) {
            Ok(event) => self.process(now, event, rx, None),
            Err(e) => Outcome::Rejected(VerifyError::Decode(e)),
        };
        self.drain_ready(now);
        outcome
    }

    /// Verifies many frames: one ed25519 batch verification for every frame whose key is
    /// known, falling back to one-by-one verification if the batch fails. Outcomes are
    /// in input order and equal to those of calling
    /// [`Self::handle_attestation`] for each frame in turn.
    pub fn handle_batch(&mut self, now: Millis, frames: &[(&[u8], Observation)]) -> Vec<Outcome> {
        self.escrow.expire(now);
        let decoded: Vec<Result<Event, VerifyError>> = frames
            .iter()
            .map(|(f, _)| Event::decode(f).map_err(VerifyError::Decode))
            .collect();
        let mut messages = Vec::new();
        let mut signatures = Vec::new();
        let mut keys = Vec::new();
        let mut slots = Vec::new();
        let mut pre: Vec<PreVerified> = vec![None; frames.len()];
        // Frames held already, or met earlier in this batch, are answered without a
        // signature check (`Duplicate`, or processed after their twin): not batched.
        let mut queued: BTreeSet<&[u8]> = BTreeSet::new();
        for (i, event) in decoded.iter().enumerate() {
            let Ok(event) = event else { continue };
            let (identical, single) = self.scan(event);
            if identical || !queued.insert(event.frame()) {
                continue;
            }
            if let Some((device, key)) = Self::batchable_key(event, single) {
                let message = event.message(&device);
                let remembered = self
                    .memo
                    .as_ref()
                    .and_then(|m| m.get(&key, &message, event.signature()));
                match remembered {
                    Some(true) => pre[i] = Some(key),
                    // Known bad: the one-by-one path rejects it (through the memo).
                    Some(false) => {}
                    None => {
                        // Parsed only for a check the memo cannot answer (an invalid
                        // key is never in the memo: the one-by-one path rejects it).
                        let Ok(key) = crypto::verifying_key(&key) else {
                            continue;
                        };
                        messages.push(message);
                        signatures.push(Signature::from_bytes(event.signature()));
                        keys.push(key);
                        slots.push(i);
                    }
                }
            }
        }
        if !slots.is_empty() {
            let refs: Vec<&[u8]> = messages.iter().map(|m| &m[..]).collect();
            if ed25519_dalek::verify_batch(&refs, &signatures, &keys).is_ok() {
                for (n, (slot, key)) in slots.iter().zip(&keys).enumerate() {
                    pre[*slot] = Some(key.to_bytes());
                    if let Some(m) = self.memo.as_mut() {
                        m.put(
                            &key.to_bytes(),
                            &messages[n],
                            &signatures[n].to_bytes(),
                            true,
                        );
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(frames.len());
        for ((decoded, (frame, rx)), pre) in decoded.into_iter().zip(frames).zip(pre) {
            let outcome = match decoded {
                _ if compact::is_compact(frame) => self.handle_compact(now, frame, *rx),
                Ok(event) => self.process(now, event, *rx, pre),
                Err(e) => Outcome::Rejected(e),
            };
            out.push(outcome);
            self.drain_ready(now);
        }
        out
    }

    /// Outcomes that arrive after their frame, oldest first within each kind: escrowed
    /// suite-1 frames released by an establishment event, then suite-2 results
    /// ([`compact::Outcome::Event`]: a buffered frame checked once its key was
    /// disclosed, a renewal, a suite-2 divergence).
    pub fn poll_outcome(&mut self) -> Option<Outcome> {
        self.released.pop_front().or_else(|| {
            self.compact
                .poll_event()
                .map(|e| Outcome::Compact(compact::Outcome::Event(e)))
        })
    }

    /// When [`Self::handle_timeout`] should next be called (escrow expiry).
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.escrow.next_expiry()
    }

    /// Expires escrowed frames, and suite-2 frames that waited too long for their key
    /// (this visits every suite-2 device: call it periodically, for example once a
    /// minute, not per frame).
    pub fn handle_timeout(&mut self, now: Millis) {
        self.escrow.expire(now);
        self.compact.expire(now);
    }

    /// The verifier's view of `device`.
    pub fn snapshot(&self, device: &DeviceId) -> Option<Snapshot> {
        let d = self.devices.get(device)?;
        Some(Snapshot {
            device: *device,
            epoch: d.epoch(),
            window: d.window.iter().map(|h| (h.seq, h.digest)).collect(),
            divergence: d.diverged.as_ref().map(|(s, p)| (*s, p.to_vec())),
        })
    }

    /// Every tracked device id, ascending.
    pub fn devices(&self) -> impl Iterator<Item = &DeviceId> {
        self.devices.ids()
    }

    /// The device's establishment frames (inception, then rotations in epoch order):
    /// what a peer that escrowed one of its events needs.
    pub fn establishments(&self, device: &DeviceId) -> Vec<&[u8]> {
        let Some(d) = self.devices.get(device) else {
            return Vec::new();
        };
        let mut out = vec![&d.inception.frame[..]];
        out.extend(d.rotations.iter().map(|r| &r.frame[..]));
        out
    }

    /// The head (highest held position and its digest) of `device`.
    pub fn head(&self, device: &DeviceId) -> Option<(u32, Digest)> {
        self.devices.get(device)?.head().map(|h| (h.seq, h.digest))
    }

    /// Builds a divergence proof from two frames of `device` (for example a historic
    /// event against the caller's durable copy of that position). Both must verify and
    /// conflict; the proof is checked before it is returned.
    pub fn prove(&self, device: &DeviceId, a: &[u8], b: &[u8]) -> Result<Vec<u8>, VerifyError> {
        let d = self.devices.get(device).ok_or(VerifyError::UnknownKey)?;
        let epoch = Event::decode(a)?.epoch().max(Event::decode(b)?.epoch());
        let proof = encode_proof(d, epoch, a, b)?;
        verify_divergence_proof(&proof)?;
        Ok(proof)
    }

    /// Clears a device's recorded divergence (an operator released it after
    /// investigation). Its key history and window stay; a new conflict is detected and
    /// recorded again as usual. Returns whether the device was known.
    pub fn release(&mut self, device: &DeviceId) -> bool {
        match self.devices.get_mut(device) {
            Some(d) => {
                d.diverged = None;
                true
            }
            None => false,
        }
    }

    /// Drops everything held for `device` (for example when the gateway evicts an idle
    /// identity); its next event is escrowed until its inception is seen again.
    pub fn forget(&mut self, device: &DeviceId) -> bool {
        let compact = self.compact.forget(device);
        self.devices.remove(device).is_some() || compact
    }

    /// Routes a suite-2 frame: anchors are checked here against the key history,
    /// attestations and renewals go to the compact verifier.
    fn handle_compact(&mut self, now: Millis, frame: &[u8], rx: Observation) -> Outcome {
        if compact::kind(frame) == Some(slope_proto::compact::Kind::Anchor) {
            return self.handle_anchor(frame);
        }
        match self.compact.handle_observed(now, frame, rx) {
            Ok(o) => Outcome::Compact(compact::Outcome::Frame(o)),
            Err(r) => Outcome::Rejected(VerifyError::Compact(r)),
        }
    }

    /// Checks an anchor under the current suite-1 key of each device with its short
    /// id (more than one only on a collision).
    fn handle_anchor(&mut self, frame: &[u8]) -> Outcome {
        let anchor = match slope_proto::compact::SignedAnchor::decode(frame) {
            Ok(a) => a,
            Err(e) => return Outcome::Rejected(VerifyError::Decode(e)),
        };
        let body = anchor.body();
        let mut error = VerifyError::UnknownKey;
        for id in self.candidates(body.device) {
            let Some(d) = self.devices.get(&id) else {
                continue;
            };
            if body.epoch < d.epoch() {
                error = VerifyError::RetiredKey;
                continue;
            }
            if body.epoch > d.epoch() {
                // The rotation to that epoch has not arrived here.
                continue;
            }
            match self.compact.add_anchor(id, &d.key, frame) {
                Ok(()) => {
                    return Outcome::Compact(compact::Outcome::Anchored {
                        device: id,
                        first: body.first,
                        len: body.len,
                    });
                }
                Err(compact::AnchorError::Signature(_)) => error = VerifyError::BadSignature,
                Err(e) => return Outcome::Rejected(compact::anchor_error(e)),
            }
        }
        Outcome::Rejected(error)
    }

    /// The devices whose short id is `short` (more than one only on a collision).
    fn candidates(&self, short: ShortId) -> Vec<DeviceId> {
        self.devices.of_short(short).map(|(id, _)| *id).collect()
    }

    /// One walk over the slopes of `event`'s short id: whether the verifier holds these
    /// exact bytes (a second reception, a replay: the frame will come back `Duplicate`
    /// with no signature check), and the one slope with that short id (none on a
    /// collision: such a frame is processed alone).
    fn scan(&self, event: &Event) -> (bool, Option<(&DeviceId, &DeviceSlope)>) {
        match event {
            Event::Inception(e) => {
                let held = self.devices.get(&e.device_id());
                (held.is_some_and(|d| *d.inception.frame == *e.frame()), None)
            }
            _ => {
                let (seq, frame) = (event.seq(), event.frame());
                let mut identical = false;
                let mut found = None;
                let mut n = 0usize;
                for (id, d) in self.devices.of_short(event.short_id()) {
                    identical |= d.at(seq).iter().any(|h| *h.frame == *frame);
                    found = Some((id, d));
                    n += 1;
                }
                (identical, found.filter(|_| n == 1))
            }
        }
    }

    /// The key a batch can check `event` with, as bytes (parsed only if the memo does
    /// not answer), when it is known without processing anything else first (`single`:
    /// the one slope of its short id, from [`Self::scan`]).
    fn batchable_key(
        event: &Event,
        single: Option<(&DeviceId, &DeviceSlope)>,
    ) -> Option<(DeviceId, [u8; 32])> {
        match event {
            Event::Inception(e) => Some((e.device_id(), e.body().key)),
            Event::Rotation(r) => {
                let (device, _) = single?;
                Some((*device, r.body().key))
            }
            Event::Interaction(i) => {
                let (device, d) = single?;
                Some((*device, d.key_bytes_of(i.body().epoch)?))
            }
        }
    }

    /// Releases escrowed frames whose missing event has arrived: only those waiting for
    /// the establishment events applied since the last call (`self.established`), so a
    /// full escrow costs nothing to frames that establish nothing.
    fn drain_ready(&mut self, now: Millis) {
        while let Some(done) = self.established.pop() {
            let ready = match done {
                Missing::Inception(_) => self.escrow.take(done..=done),
                Missing::Rotation { device, epoch } => self.escrow.take(
                    Missing::Rotation { device, epoch: 0 }..=Missing::Rotation { device, epoch },
                ),
            };
            for entry in ready {
                let outcome = match Event::decode(&entry.frame) {
                    Ok(event) => self.process(now, event, entry.rx, None),
                    Err(e) => Outcome::Rejected(VerifyError::Decode(e)),
                };
                if self.released.len() >= self.config.released_max.max(1) {
                    self.released.pop_front();
                    self.released_dropped += 1;
                }
                self.released.push_back(outcome);
            }
        }
    }

    fn process(&mut self, now: Millis, event: Event, rx: Observation, pre: PreVerified) -> Outcome {
        match event {
            Event::Inception(_) => self.process_inception(now, event, rx, pre),
            _ => {
                let short = event.short_id();
                // The first candidate apart, so the usual single one allocates nothing.
                let mut ids = self.devices.of_short(short).map(|(id, _)| *id);
                let Some(first) = ids.next() else {
                    self.escrow
                        .hold(Missing::Inception(short), event.frame(), rx, now);
                    return Outcome::Escrowed(Missing::Inception(short));
                };
                let others: Vec<DeviceId> = ids.collect();
                let single = others.is_empty();
                let mut escrow = None;
                for device in core::iter::once(first).chain(others) {
                    match self.process_for(now, device, &event, rx, pre) {
                        Outcome::Rejected(VerifyError::BadSignature) => continue,
                        Outcome::Escrowed(m) => {
                            escrow.get_or_insert(m);
                        }
                        other => return other,
                    }
                }
                match escrow {
                    Some(missing) => {
                        self.escrow.hold(missing, event.frame(), rx, now);
                        Outcome::Escrowed(missing)
                    }
                    None if single => Outcome::Rejected(VerifyError::BadSignature),
                    None => Outcome::Rejected(VerifyError::UnknownKey),
                }
            }
        }
    }

    fn process_inception(
        &mut self,
        now: Millis,
        event: Event,
        rx: Observation,
        pre: PreVerified,
    ) -> Outcome {
        let Event::Inception(inc) = &event else {
            return Outcome::Rejected(VerifyError::Unexpected);
        };
        let device = inc.device_id();
        if let Some(d) = self.devices.get(&device) {
            let digest = inc.digest(&device);
            let held_digest = crypto::event_digest(&device, signed_part(&d.inception.frame));
            return if *d.inception.frame == *inc.frame() || held_digest == digest {
                Outcome::Duplicate {
                    device,
                    seq: 0,
                    digest,
                }
            } else {
                Outcome::Rejected(VerifyError::Unexpected)
            };
        }
        if self.devices.len() >= self.config.max_devices {
            return Outcome::Rejected(VerifyError::Capacity);
        }
        let Ok(key) = crypto::verifying_key(&inc.body().key) else {
            return Outcome::Rejected(VerifyError::BadSignature);
        };
        if pre != Some(key.to_bytes()) && !signature_ok(&mut self.memo, &device, &event, &key) {
            return Outcome::Rejected(VerifyError::BadSignature);
        }
        let digest = inc.digest(&device);
        let mut slope = DeviceSlope {
            inception: Establishment::inception(inc),
            rotations: Vec::new(),
            key,
            window: Vec::new(),
            diverged: None,
        };
        slope.insert(&event, digest, self.config.window);
        self.devices.insert(device, slope);
        self.established.push(Missing::Inception(device.short()));
        Outcome::Extended(VerifiedAttestation::new(
            device, event, digest, rx, now, 0, true,
        ))
    }

    /// Processes a rotation or interaction as an event of `device`.
    fn process_for(
        &mut self,
        now: Millis,
        device: DeviceId,
        event: &Event,
        rx: Observation,
        pre: PreVerified,
    ) -> Outcome {
        let window_cap = self.config.window;
        let max_epochs = self.config.max_epochs.min(slope_proto::limits::MAX_EPOCHS);
        let Some(d) = self.devices.get_mut(&device) else {
            return Outcome::Rejected(VerifyError::UnknownKey);
        };
        let epoch = event.epoch();
        let current = d.epoch();
        let seq = event.seq();

        // 0. The identical frame again: its signature was checked when it was first
        //    held, so a replay or a second reception costs no signature verification.
        if let Some(h) = d
            .window
            .iter()
            .find(|h| h.seq == seq && *h.frame == *event.frame())
        {
            return Outcome::Duplicate {
                device,
                seq,
                digest: h.digest,
            };
        }

        // 1. Find the key and check the signature (nothing is classified before this).
        let mut applies_rotation = false;
        match event {
            Event::Rotation(r) => {
                if epoch > current + 1 {
                    if epoch > max_epochs {
                        return Outcome::Rejected(VerifyError::EpochLimit);
                    }
                    return Outcome::Escrowed(Missing::Rotation {
                        device,
                        epoch: current + 1,
                    });
                }
                // A key checked ahead (`pre`) was parsed then; parsed here only to check.
                if pre != Some(r.body().key) {
                    let Ok(key) = crypto::verifying_key(&r.body().key) else {
                        return Outcome::Rejected(VerifyError::BadSignature);
                    };
                    if !signature_ok(&mut self.memo, &device, event, &key) {
                        return Outcome::Rejected(VerifyError::BadSignature);
                    }
                }
                let Some(commitment) = d.commitment_of(epoch - 1) else {
                    return Outcome::Rejected(VerifyError::Unexpected);
                };
                if crypto::next_key_digest(&r.body().key) != commitment {
                    return Outcome::Rejected(VerifyError::KeyCommitmentMismatch);
                }
                if seq <= d.established_at(epoch - 1).unwrap_or(0) {
                    return Outcome::Rejected(VerifyError::RetiredKey);
                }
                if epoch > max_epochs {
                    return Outcome::Rejected(VerifyError::EpochLimit);
                }
                if epoch == current + 1 {
                    applies_rotation = true;
                } else if let Some(held) = d.rotations.get(epoch as usize - 1) {
                    // A second, different rotation to an epoch already established.
                    let held_digest = crypto::event_digest(&device, signed_part(&held.frame));
                    if *held.frame != *r.frame() && held_digest != r.digest(&device) {
                        let held_frame = held.frame.clone();
                        return self.diverge(
                            now,
                            device,
                            event,
                            rx,
                            &held_frame,
                            seq.min(held_seq(&held_frame)),
                        );
                    }
                }
            }
            Event::Interaction(_) => {
                if epoch > max_epochs {
                    // No key can ever verify it: the rotation it waits for is refused.
                    return Outcome::Rejected(VerifyError::EpochLimit);
                }
                if epoch > current {
                    return Outcome::Escrowed(Missing::Rotation {
                        device,
                        epoch: current + 1,
                    });
                }
                // Held keys were parsed when established: the bytes say whether a key
                // checked ahead (`pre`) is this one, and only a check parses it again.
                let Some(key_bytes) = d.key_bytes_of(epoch) else {
                    return Outcome::Rejected(VerifyError::UnknownKey);
                };
                if pre != Some(key_bytes) {
                    let Some(key) = d.key_of(epoch) else {
                        return Outcome::Rejected(VerifyError::UnknownKey);
                    };
                    if !signature_ok(&mut self.memo, &device, event, &key) {
                        return Outcome::Rejected(VerifyError::BadSignature);
                    }
                }
                if seq <= d.established_at(epoch).unwrap_or(0) {
                    return Outcome::Rejected(VerifyError::RetiredKey);
                }
            }
            Event::Inception(_) => return Outcome::Rejected(VerifyError::Unexpected),
        }

        // 2. Classify the position against the window.
        let digest = event.digest(&device);
        let prev = event.prev();
        if d.at(seq).iter().any(|h| h.digest == digest) {
            return Outcome::Duplicate {
                device,
                seq,
                digest,
            };
        }
        let conflicts: Vec<(Box<[u8]>, u32)> = d
            .window
            .iter()
            .filter(|h| h.seq == seq || (h.prev.is_some() && h.prev == prev))
            .map(|h| (h.frame.clone(), h.seq))
            .collect();
        if !conflicts.is_empty() {
            if applies_rotation && apply_rotation(d, event) {
                self.established.push(Missing::Rotation {
                    device,
                    epoch: d.epoch(),
                });
            }
            d.insert(event, digest, window_cap);
            // Every conflict is recorded (the device keeps the lowest proof, so the
            // result does not depend on which one arrived first); the lowest is reported.
            let mut lowest: Option<Outcome> = None;
            for (held, held_seq) in conflicts {
                let outcome = self.diverge(now, device, event, rx, &held, seq.min(held_seq));
                let better = match (&lowest, &outcome) {
                    (None, _) => true,
                    (Some(Outcome::Divergence(a)), Outcome::Divergence(b)) => {
                        (b.seq, &b.proof) < (a.seq, &a.proof)
                    }
                    (Some(_), Outcome::Divergence(_)) => true,
                    _ => false,
                };
                if better {
                    lowest = Some(outcome);
                }
            }
            return lowest.unwrap_or(Outcome::Rejected(VerifyError::Unexpected));
        }
        let below = d.window.len() >= window_cap && d.window.first().is_some_and(|h| seq < h.seq);
        // A later rotation retires this epoch's key from the rotation's position on.
        if let Some(next_at) = d.established_at(epoch + 1) {
            if seq > next_at {
                return Outcome::Rejected(VerifyError::RetiredKey);
            }
        }
        if below {
            return Outcome::Historic(VerifiedAttestation::new(
                device,
                event.clone(),
                digest,
                rx,
                now,
                0,
                false,
            ));
        }
        // A held neighbour position that this event does not link with (in either
        // direction) means the device signed two events at one of the two positions.
        let link = digest.link();
        let mismatched = |at: u32, linked: &dyn Fn(&Held) -> bool| {
            let neighbours = d.at(at);
            !neighbours.is_empty() && !neighbours.iter().any(linked)
        };
        let broken_below =
            seq > 0 && mismatched(seq - 1, &|h: &Held| Some(h.digest.link()) == prev);
        let broken_above = mismatched(seq.saturating_add(1), &|h: &Held| h.prev == Some(link));
        let unlinked = broken_below || broken_above;
        let head = d.head().map_or(0, |h| h.seq);
        let advanced = seq > head;
        let gap = if advanced { seq - head - 1 } else { 0 };
        if applies_rotation && apply_rotation(d, event) {
            self.established.push(Missing::Rotation {
                device,
                epoch: d.epoch(),
            });
        }
        d.insert(event, digest, window_cap);
        let verified =
            VerifiedAttestation::new(device, event.clone(), digest, rx, now, gap, advanced);
        if unlinked {
            Outcome::Unlinked(verified)
        } else {
            Outcome::Extended(verified)
        }
    }

    /// Builds, checks and records a proof that `event` conflicts with `held`.
    fn diverge(
        &mut self,
        now: Millis,
        device: DeviceId,
        event: &Event,
        rx: Observation,
        held: &[u8],
        seq: u32,
    ) -> Outcome {
        let Some(d) = self.devices.get_mut(&device) else {
            return Outcome::Rejected(VerifyError::UnknownKey);
        };
        let epoch = event
            .epoch()
            .max(Event::decode(held).map_or(0, |e| e.epoch()));
        let proof = match encode_proof(d, epoch, event.frame(), held) {
            Ok(p) => p,
            Err(e) => return Outcome::Rejected(e),
        };
        // Belt and braces: a proof this verifier publishes must verify from nothing.
        if let Err(e) = verify_divergence_proof(&proof) {
            return Outcome::Rejected(e);
        }
        d.record_divergence(seq, &proof);
        let digest = event.digest(&device);
        Outcome::Divergence(Box::new(DivergenceEvidence {
            device,
            seq,
            proof,
            attestation: VerifiedAttestation::new(device, event.clone(), digest, rx, now, 0, false),
        }))
    }
}

/// A frame without its signature (what digests cover).
fn signed_part(frame: &[u8]) -> &[u8] {
    &frame[..frame
        .len()
        .saturating_sub(slope_proto::limits::SIGNATURE_LEN)]
}

fn held_seq(frame: &[u8]) -> u32 {
    Event::decode(frame).map_or(0, |e| e.seq())
}

/// Applies a rotation that establishes the next epoch; whether it did.
fn apply_rotation(d: &mut DeviceSlope, event: &Event) -> bool {
    if let Event::Rotation(r) = event {
        if r.body().epoch == d.epoch() + 1 {
            if let Ok(key) = crypto::verifying_key(&r.body().key) {
                d.key = key;
                d.rotations.push(Establishment::rotation(r));
                return true;
            }
        }
    }
    false
}

/// Encodes the proof that `a` and `b` conflict, with the key history up to the later
/// epoch of the two.
fn encode_proof(d: &DeviceSlope, epoch: u32, a: &[u8], b: &[u8]) -> Result<Vec<u8>, VerifyError> {
    encode_with(&d.inception.frame, &d.rotation_frames(epoch), a, b)
}

/// Encodes the proof with exactly the rotations it needs
/// ([`slope_proto::proof::epochs_needed`]; a proof with more is refused).
fn encode_with(
    inception: &[u8],
    rotations: &[&[u8]],
    a: &[u8],
    b: &[u8],
) -> Result<Vec<u8>, VerifyError> {
    let needed = slope_proto::proof::epochs_needed(&Event::decode(a)?, &Event::decode(b)?);
    let rotations = &rotations[..(needed as usize).min(rotations.len())];
    let size = 16
        + inception.len()
        + a.len()
        + b.len()
        + rotations.iter().map(|r| r.len() + 1).sum::<usize>();
    let mut out = vec![0u8; size];
    let n = DivergenceProof::encode(inception, rotations, a, b, &mut out).map_err(|_| {
        VerifyError::Proof(slope_proto::proof::ProofError::Decode(
            slope_proto::DecodeError::Oversize {
                len: size,
                max: slope_proto::limits::MAX_PROOF,
            },
        ))
    })?;
    out.truncate(n);
    Ok(out)
}

/// Builds a divergence proof from stored frames alone: the device's establishment
/// frames (inception first, then rotations in epoch order, as
/// [`Verifier::establishments`] returns them) and two conflicting event frames. The
/// proof is checked before it is returned.
pub fn build_proof(establishments: &[&[u8]], a: &[u8], b: &[u8]) -> Result<Vec<u8>, VerifyError> {
    let (inception, rotations) = establishments
        .split_first()
        .ok_or(VerifyError::UnknownKey)?;
    let out = encode_with(inception, rotations, a, b)?;
    verify_divergence_proof(&out)?;
    Ok(out)
}

/// Checks a divergence proof with no other state.
pub fn verify_divergence_proof(bytes: &[u8]) -> Result<Divergence, VerifyError> {
    DivergenceProof::decode(bytes)
        .map_err(VerifyError::Decode)?
        .verify()
        .map_err(VerifyError::Proof)
}
