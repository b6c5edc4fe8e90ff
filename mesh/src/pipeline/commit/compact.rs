//! The commit stage for suite-2 (compact) outcomes: anchors and frames are written in
//! the batch's transaction; frames heard on this gateway's radio are stamped (a signed
//! timestamp receipt, suite-2 kind 3) and gossiped only after that commit; verifier
//! results (authenticated frames, renewals, divergences) go to the trust engine and the
//! store; a divergence becomes a proof that this gateway built and verified itself.

use slope_node::verifier::compact::{
    Conflict, Event, FrameOutcome, Outcome as CompactOutcome, Received, Reject, VerifiedCompact,
};
use slope_node::verifier::{Outcome, VerifyError};
use slope_proto::compact::proof::Parts;
use slope_proto::compact::{CompactProof, Receipt, SignedAnchor, crypto};
use slope_proto::{DeviceId, Digest};

use super::{Admission, Decision, Observed, PendingReceipt, Reasons, Stage};
use crate::identity::Identity;
use crate::lineage::{Entry, Source};
use crate::metrics::kind;
use crate::pipeline::compact::{frame_of, rx_ms, split_stamped, stamped_message};
use crate::pipeline::{Effect, Input, Verdict};
use crate::store::compact::{CompactFrame, CompactRecord};
use crate::store::{Batch, DeviceRecord, StoreError};

/// A frame heard on this gateway's radio, to stamp once its batch is committed.
pub(in crate::pipeline) struct ToStamp {
    frame: Vec<u8>,
    rx_ms: u64,
}

/// The clock bound proofs are checked under: the verifier's own.
pub(in crate::pipeline) fn max_skew_ms() -> u64 {
    slope_node::verifier::compact::Config::default().max_skew_ms
}

/// Who is to blame for a refused suite-2 frame: the sender of bytes that are malformed,
/// of an anchor whose signature fails, or of a frame whose disclosed key does not hash
/// to the chain (no honest device makes one, and an honest gateway refuses it before
/// forwarding). Late, early, unknown or over a bound is not the sender's fault.
fn blame(e: &VerifyError) -> Verdict {
    match e {
        VerifyError::Decode(_)
        | VerifyError::BadSignature
        | VerifyError::Unexpected
        | VerifyError::Compact(
            Reject::Decode(_) | Reject::BadDisclosure | Reject::UnexpectedKind,
        ) => Verdict::Reject,
        _ => Verdict::Ignore,
    }
}

fn reject_label(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::Decode(_) | VerifyError::Compact(Reject::Decode(_)) => "rejected_malformed",
        VerifyError::BadSignature => "rejected_bad_signature",
        VerifyError::UnknownKey => "rejected_unknown_key",
        VerifyError::RetiredKey => "rejected_retired_key",
        VerifyError::Compact(Reject::Late { .. }) => "rejected_late",
        VerifyError::Compact(Reject::Future { .. }) => "rejected_future",
        VerifyError::Compact(Reject::UnknownDevice) => "rejected_unknown_device",
        VerifyError::Compact(Reject::BadDisclosure) => "rejected_bad_disclosure",
        VerifyError::Compact(Reject::PendingFull) => "rejected_pending_full",
        _ => "rejected_other",
    }
}

impl Stage {
    fn count_compact(&self, label: &'static str) {
        self.metrics.compact.get_or_create(&kind(label)).inc();
    }

    fn quarantined(batch: &mut Batch<'_>, device: &DeviceId) -> Result<bool, StoreError> {
        Ok(batch
            .device(device)?
            .is_some_and(|r| r.quarantine.is_some()))
    }

    /// The outcome of a suite-2 input (an anchor, an attestation or a renewal).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn compact_input<T>(
        &mut self,
        batch: &mut Batch<'_>,
        now: u64,
        outcome: Outcome,
        input: &Input<T>,
        pending: &mut Vec<PendingReceipt>,
        stamps: &mut Vec<ToStamp>,
        effects: &mut Vec<Effect>,
    ) -> Result<Verdict, StoreError> {
        self.count_compact("frame_in");
        let Outcome::Compact(outcome) = outcome else {
            return Ok(match outcome {
                Outcome::Rejected(e) => {
                    self.count_compact(reject_label(&e));
                    blame(&e)
                }
                _ => Verdict::Ignore,
            });
        };
        match outcome {
            CompactOutcome::Anchored { device, first, len } => {
                self.count_compact("anchored");
                self.anchored(batch, now, device, first, len, input, effects)
            }
            CompactOutcome::Frame(
                FrameOutcome::Buffered {
                    device, interval, ..
                }
                | FrameOutcome::Checked {
                    device, interval, ..
                },
            ) => {
                self.count_compact("accepted");
                if Self::quarantined(batch, &device)? {
                    return Ok(Verdict::Ignore);
                }
                let Some(frame) = frame_of(input) else {
                    return Ok(Verdict::Reject);
                };
                let rx_ms = rx_ms(input, now);
                let digest = crypto::frame_digest(frame);
                // The peer's receipt is kept when its time is the one we checked with.
                let receipt = match input.source {
                    Source::Radio => None,
                    _ => split_stamped(&input.frame)
                        .filter(|(r, _)| {
                            r.body().rx_ms == rx_ms
                                && self.listed.iter().any(|(k, _)| *k == r.body().witness)
                        })
                        .map(|(r, _)| r.frame().to_vec()),
                };
                let record = CompactFrame {
                    interval,
                    rx_ms,
                    frame: frame.to_vec(),
                    receipt,
                    rx: input.rx,
                    source: input.source,
                    renewal: frame.get(2) == Some(&(slope_proto::compact::Kind::Renewal as u8)),
                };
                if !batch.put_compact_frame(&device, &digest, &record)? {
                    return Ok(Verdict::Ignore);
                }
                let mut rec = batch.compact_device(&device)?.unwrap_or_default();
                rec.frames = rec.frames.saturating_add(1);
                batch.put_compact_device(&device, &rec)?;
                if input.source == Source::Radio {
                    // Stamped and gossiped after the commit; witnessed (a suite-1
                    // receipt batch entry naming the suite-2 frame digest) likewise.
                    stamps.push(ToStamp {
                        frame: frame.to_vec(),
                        rx_ms,
                    });
                    pending.push(PendingReceipt {
                        device,
                        seq: interval,
                        digest: Digest(digest),
                        rx: input.rx,
                    });
                }
                Ok(Verdict::Accept)
            }
            CompactOutcome::Frame(FrameOutcome::Duplicate { device, interval }) => {
                self.count_compact("duplicate");
                // Heard on our radio after it arrived by gossip: witness it (a suite-1
                // receipt batch entry), as for suite 1. Its time stays the first one.
                if input.source == Source::Radio && !Self::quarantined(batch, &device)? {
                    if let Some(frame) = frame_of(input) {
                        pending.push(PendingReceipt {
                            device,
                            seq: interval,
                            digest: Digest(crypto::frame_digest(frame)),
                            rx: input.rx,
                        });
                    }
                }
                Ok(Verdict::Ignore)
            }
            _ => Ok(Verdict::Ignore),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn anchored<T>(
        &mut self,
        batch: &mut Batch<'_>,
        now: u64,
        device: DeviceId,
        first: u32,
        len: u32,
        input: &Input<T>,
        effects: &mut Vec<Effect>,
    ) -> Result<Verdict, StoreError> {
        let Ok(anchor) = SignedAnchor::decode(&input.frame) else {
            return Ok(Verdict::Reject);
        };
        let body = anchor.body();
        if Self::quarantined(batch, &device)?
            || !batch.put_compact_anchor(&device, body.epoch, &input.frame)?
        {
            return Ok(Verdict::Ignore);
        }
        let old = batch.compact_device(&device)?.unwrap_or_default();
        let rec = CompactRecord {
            epoch: body.epoch,
            first,
            len,
            start_ms: body.start_ms,
            interval_ms: body.interval_ms,
            delay: body.delay,
            renewed: None,
            ..old
        };
        batch.put_compact_device(&device, &rec)?;
        batch.append(
            now,
            Entry::Anchored {
                device: device.0,
                epoch: body.epoch,
                first,
                len,
            },
        )?;
        if input.source == Source::Radio {
            effects.push(Effect::PublishCompact(input.frame.clone()));
        }
        Ok(Verdict::Accept)
    }

    /// A suite-2 result the verifier produced later (a frame checked once its key was
    /// disclosed).
    pub(super) fn compact_event(
        &mut self,
        batch: &mut Batch<'_>,
        now: u64,
        event: Event,
        effects: &mut Vec<Effect>,
    ) -> Result<(), StoreError> {
        match event {
            Event::Authenticated(vc) => {
                self.count_compact("authenticated");
                self.authenticated(batch, now, &vc)
            }
            Event::Renewed { device, first, len } => {
                self.count_compact("renewed");
                if let Some(mut rec) = batch.compact_device(&device)? {
                    rec.renewed = Some((first, len));
                    batch.put_compact_device(&device, &rec)?;
                }
                Ok(())
            }
            Event::Divergence(conflict) => {
                self.count_compact("divergence");
                self.compact_divergence(batch, now, &conflict, effects)
            }
            Event::RenewalConflict { device, interval } => {
                self.count_compact("renewal_conflict");
                tracing::warn!(device = %hex::encode(device.0), interval, "two different renewals of one compact chain");
                Ok(())
            }
            Event::BadMac { device, interval } => {
                self.count_compact("bad_mac");
                tracing::info!(device = %hex::encode(device.0), interval, "compact frame with a bad MAC dropped");
                if let Some(mut rec) = batch.compact_device(&device)? {
                    rec.bad_mac = rec.bad_mac.saturating_add(1);
                    batch.put_compact_device(&device, &rec)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// An authenticated compact attestation: the trust engine decides it with the
    /// listed witnesses' receipts gathered for it; the device record and the lineage
    /// record the decision.
    fn authenticated(
        &mut self,
        batch: &mut Batch<'_>,
        now: u64,
        vc: &VerifiedCompact,
    ) -> Result<(), StoreError> {
        let device = *vc.device();
        let mut rec = batch
            .device(&device)?
            .unwrap_or_else(|| DeviceRecord::new(now, 0));
        if rec.quarantine.is_some() {
            return Ok(());
        }
        let digest = crypto::frame_digest(vc.frame());
        let source = batch
            .compact_frame(&device, vc.interval(), &digest)?
            .map_or(Source::Gossip, |f| f.source);
        let receipts = self.take_held_receipts(
            &(device.short(), vc.interval(), Digest(digest).link()),
            &mut rec,
        );
        if let Some(rx) = vc.rx().filter(|rx| !rx.is_relayed()) {
            self.observe_radio(&mut rec, rx, vc.interval());
        }
        let engine = self.engine.as_mut().map(|e| {
            e.compact(now, vc, &receipts).unwrap_or_else(|e| Decision {
                // Fail closed: no decision without its lineage record.
                admission: Admission::Deferred,
                reasons: Reasons::text(format!("trust engine: {e}")),
                grant: None,
            })
        });
        rec.last_seen_ms = now;
        let observed = Observed {
            digest,
            source,
            compact: true,
        };
        self.decide_and_record(
            batch,
            now,
            &device,
            &mut rec,
            vc.interval(),
            engine,
            Some(observed),
        )?;
        batch.put_device(&device, &rec)?;
        let mut c = batch.compact_device(&device)?.unwrap_or_default();
        c.head_interval = Some(
            c.head_interval
                .map_or(vc.interval(), |h| h.max(vc.interval())),
        );
        c.authenticated = c.authenticated.saturating_add(1);
        batch.put_compact_device(&device, &c)
    }

    /// Two different frames for one interval under one disclosed key, both received in
    /// time: build the proof from the store, quarantine if the witness policy takes it,
    /// and gossip it.
    fn compact_divergence(
        &mut self,
        batch: &mut Batch<'_>,
        now: u64,
        conflict: &Conflict,
        effects: &mut Vec<Effect>,
    ) -> Result<(), StoreError> {
        if Self::quarantined(batch, &conflict.device)? {
            return Ok(());
        }
        let Some(proof) = self.compact_proof(batch, conflict)? else {
            self.count_compact("divergence_unproven");
            tracing::warn!(device = %hex::encode(conflict.device.0), interval = conflict.interval,
                "compact divergence seen, but no proof could be built from the store");
            return Ok(());
        };
        if self.quarantine_compact(
            batch,
            now,
            &conflict.device,
            conflict.interval,
            &proof,
            effects,
        )? {
            effects.push(Effect::PublishProof(proof));
        }
        Ok(())
    }

    /// Builds the `CompactProof` for a conflict from the store: the suite-1 key history,
    /// the anchor, the disclosed key and each frame with the receipts that date it: this
    /// gateway's own, signed from the stored receive time (the time its verifier used,
    /// its own clock or a listed relayer's by at most `RELAY_BACKDATE_MS` earlier), and
    /// the listed relayer's receipt when the frame came over gossip. Witnesses of two
    /// zones per frame let gateways that saw neither frame in time take the proof
    /// (`slope_node::compact::dated_enough`); this gateway takes it on its own word.
    /// `None` when a part is missing, or the conflict lies in a renewed chain (proofs
    /// across renewals are not built yet).
    fn compact_proof(
        &self,
        batch: &Batch<'_>,
        c: &Conflict,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(rec) = batch.compact_device(&c.device)? else {
            return Ok(None);
        };
        if c.interval < rec.first || c.interval - rec.first >= rec.len {
            return Ok(None);
        }
        let establishments = batch.establishments(&c.device)?;
        let epoch = rec.epoch as usize;
        let (Some(inception), Some(anchor)) = (
            establishments.first(),
            batch.compact_anchor(&c.device, rec.epoch)?,
        ) else {
            return Ok(None);
        };
        let Some(rotations) = establishments.get(1..=epoch) else {
            return Ok(None);
        };
        let rotations: Vec<&[u8]> = rotations.iter().map(Vec::as_slice).collect();
        let (Some(ra), Some(rb)) = (
            self.receipts_for(batch, &c.device, c.interval, &c.first)?,
            self.receipts_for(batch, &c.device, c.interval, &c.second)?,
        ) else {
            return Ok(None);
        };
        let ra: Vec<&[u8]> = ra.iter().map(Vec::as_slice).collect();
        let rb: Vec<&[u8]> = rb.iter().map(Vec::as_slice).collect();
        let parts = Parts {
            inception,
            rotations: &rotations,
            anchor: &anchor,
            renewals: &[],
            key: &c.key,
            a: (c.first.frame(), &ra),
            b: (c.second.frame(), &rb),
        };
        let mut buf = vec![0u8; slope_proto::limits::MAX_PROOF];
        Ok(CompactProof::encode(&parts, &mut buf).ok().map(|n| {
            buf.truncate(n);
            buf
        }))
    }

    /// The receipts that date a received frame: this gateway's own, and the relayer's
    /// when it came stamped (see [`Self::compact_proof`]).
    fn receipts_for(
        &self,
        batch: &Batch<'_>,
        device: &DeviceId,
        interval: u32,
        r: &Received,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let digest = crypto::frame_digest(r.frame());
        let Some(stored) = batch.compact_frame(device, interval, &digest)? else {
            return Ok(None);
        };
        let Some(own) = sign_receipt(&self.identity, r.frame(), stored.rx_ms) else {
            return Ok(None);
        };
        let mut out = vec![own.frame().to_vec()];
        out.extend(stored.receipt);
        Ok(Some(out))
    }

    /// A peer's proof with this gateway's own receipt added to every frame and renewal
    /// it holds in its store (it received them in time: its verifier dated them), signed
    /// from the stored receive time; `None` when it holds none of them.
    fn with_own_dating(
        &self,
        batch: &Batch<'_>,
        device: &DeviceId,
        proof: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Ok(p) = slope_proto::compact::CompactProof::decode(proof) else {
            return Ok(None);
        };
        let mut frames = Vec::new();
        p.for_each_frame(|f| frames.push(f));
        let mut own: Vec<(&[u8], Vec<u8>)> = Vec::new();
        for f in frames {
            let interval = match slope_proto::compact::decode(f) {
                Ok(slope_proto::compact::Message::Attestation(m)) => m.body().interval,
                Ok(slope_proto::compact::Message::Renewal(m)) => m.body().interval,
                _ => continue,
            };
            let digest = crypto::frame_digest(f);
            if let Some(stored) = batch.compact_frame(device, interval, &digest)?
                && let Some(r) = sign_receipt(&self.identity, f, stored.rx_ms)
            {
                own.push((f, r.frame().to_vec()));
            }
        }
        if own.is_empty() {
            return Ok(None);
        }
        let mut out = vec![0u8; slope_proto::limits::MAX_PROOF];
        let receipt = |f: &[u8]| own.iter().find(|(x, _)| *x == f).map(|(_, r)| &r[..]);
        Ok(p.with_receipts(receipt, &mut out).ok().map(|n| {
            out.truncate(n);
            out
        }))
    }

    /// Quarantines on a verified compact proof if the witness policy takes it: each
    /// frame dated by this gateway itself or by witnesses of two trust zones
    /// (`slope_node::compact::dated_enough`), registered with the engine or, without
    /// one, listed. A peer's proof dated by one zone only is taken when this gateway
    /// received the frames in time itself: it adds its own receipts
    /// ([`Self::with_own_dating`]) and gossips the completed proof. Returns whether
    /// it quarantined.
    pub(super) fn quarantine_compact(
        &mut self,
        batch: &mut Batch<'_>,
        now: u64,
        device: &DeviceId,
        interval: u32,
        proof: &[u8],
        effects: &mut Vec<Effect>,
    ) -> Result<bool, StoreError> {
        if self.compact_policy_takes(now, proof) {
            return self.quarantine(batch, now, device, interval, proof, effects, true);
        }
        if let Some(upgraded) = self.with_own_dating(batch, device, proof)?
            && upgraded != proof
            && self.compact_policy_takes(now, &upgraded)
        {
            self.count_compact("proof_completed");
            let quarantined =
                self.quarantine(batch, now, device, interval, &upgraded, effects, true)?;
            effects.push(Effect::PublishProof(upgraded));
            return Ok(quarantined);
        }
        self.count_compact("divergence_unproven");
        Ok(false)
    }

    /// Whether the witness policy takes a compact proof (the engine records it when it
    /// does).
    fn compact_policy_takes(&mut self, now: u64, proof: &[u8]) -> bool {
        match &mut self.engine {
            Some(engine) => match engine.compact_proof(now, proof, max_skew_ms()) {
                Ok(_) => true,
                Err(
                    e @ (slope_node::trust::Error::Undated
                    | slope_node::trust::Error::CompactProof(_)),
                ) => {
                    tracing::warn!(error = %e, "compact proof not taken by the trust engine");
                    false
                }
                Err(e) => {
                    tracing::warn!(error = %e, "trust engine did not record a compact proof");
                    true
                }
            },
            None => {
                let own = self.identity.signing_key().verifying_key().to_bytes();
                let zone_of = |w: &[u8; 32]| {
                    self.listed
                        .iter()
                        .find(|(k, _)| k == w)
                        .map(|(_, z)| slope_node::trust::Zone(*z))
                };
                slope_proto::compact::CompactProof::decode(proof).is_ok_and(|p| {
                    p.verify_with(max_skew_ms(), |d| {
                        slope_node::compact::dated_enough(d, Some(&own), zone_of)
                    })
                    .is_ok()
                })
            }
        }
    }
}

fn sign_receipt(identity: &Identity, frame: &[u8], rx_ms: u64) -> Option<Receipt> {
    Receipt::sign(identity.signing_key(), crypto::frame_digest(frame), rx_ms).ok()
}

/// After the commit: this gateway's timestamp receipts for the frames its radio heard,
/// each gossiped with its frame.
pub(super) fn stamp(identity: &Identity, stamps: Vec<ToStamp>) -> Vec<Effect> {
    stamps
        .into_iter()
        .filter_map(|s| {
            let r = sign_receipt(identity, &s.frame, s.rx_ms)?;
            Some(Effect::PublishCompact(stamped_message(r.frame(), &s.frame)))
        })
        .collect()
}
