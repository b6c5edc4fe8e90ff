//! Compact (suite-2) attestations in the trust engine (docs/trust-model.md, "Compact
//! attestations").
//!
//! A compact attestation is decided like a suite-1 one, on the same hot record (the
//! compact chain is anchored by the device's suite-1 key, so it is the same identity):
//! - continuity: interval numbers are positions of their own (`Hot::compact_head`),
//!   lost intervals between two compact attestations count as loss; the switch from
//!   suite 1 to suite 2 counts none;
//! - context: the gateway's radio observation of the frame (when the verifier had it);
//! - corroboration: witness receipts naming the frame — `seq` = the interval, `event`
//!   = the link of [`receipt_digest`] (the suite-2 frame digest, `derive_key("slope v2
//!   compact frame digest", frame)`, the digest suite-2 timestamp receipts name);
//! - weight: the same as a suite-1 attestation. The engine only ever sees a
//!   [`VerifiedCompact`], i.e. a frame whose MAC verified *and* that was stamped
//!   before its key's disclosure by the receiving gateway's clock: its authenticity is
//!   exactly as good as that gateway's clock (within `max_skew_ms`), which is the
//!   engine's own gateway for frames it heard, the same trust it already places in its
//!   own radio observation. Receipts from other gateways corroborate presence as for
//!   suite 1; they do not re-check the MAC.
//!
//! The lineage records each one as [`Entry::Compact`] (frame, receive time, radio
//! observation, receipts), followed by the usual weighting and decision records;
//! restore replays it through the same code.

use alloc::borrow::Cow;

use slope_proto::{DeviceId, Digest, Observation};

use super::Engine;
use super::decision::Decision;
use super::error::Error;
use super::evidence::Subject;
use super::witness::VerifiedReceipt;
use crate::lineage::{CompactObservation, Entry, Storage};
use crate::time::Millis;
use crate::verifier::compact::VerifiedCompact;

/// The digest a witness receipt names (as its `event` link) for a compact frame: the
/// suite-2 frame digest.
pub fn receipt_digest(frame: &[u8]) -> Digest {
    Digest(slope_proto::compact::crypto::frame_digest(frame))
}

/// The parts of a compact attestation a decision reads (from a [`VerifiedCompact`],
/// or from the lineage on restore).
pub(super) struct Parts<'a> {
    pub device: DeviceId,
    pub interval: u32,
    pub rx_ms: u64,
    pub rx: Option<&'a Observation>,
    pub frame: &'a [u8],
}

impl<S: Storage> Engine<S> {
    /// Decides on one compact attestation the verifier authenticated, with the verified
    /// receipts gathered for it (those not naming it — [`VerifiedReceipt::names_compact`]
    /// — are dropped, as for suite 1).
    pub fn handle_compact(
        &mut self,
        now: Millis,
        att: &VerifiedCompact,
        receipts: &[VerifiedReceipt],
    ) -> Result<Decision, Error> {
        let parts = Parts {
            device: *att.device(),
            interval: att.interval(),
            rx_ms: att.rx_ms(),
            rx: att.rx(),
            frame: att.frame(),
        };
        self.decide_compact(now, &parts, receipts)
    }

    pub(super) fn decide_compact(
        &mut self,
        now: Millis,
        p: &Parts<'_>,
        receipts: &[VerifiedReceipt],
    ) -> Result<Decision, Error> {
        let digest = receipt_digest(p.frame);
        let names = |r: &VerifiedReceipt| r.names_event(&p.device, p.interval, &digest);
        let named: Cow<'_, [VerifiedReceipt]> = if receipts.iter().all(names) {
            Cow::Borrowed(receipts)
        } else {
            Cow::Owned(receipts.iter().filter(|r| names(r)).cloned().collect())
        };
        let subject = Subject {
            seq: p.interval,
            digest,
            rx: p.rx,
            event: None,
            seen: p.rx_ms,
        };
        // A compact frame reports no neighbours: nothing to credit.
        let (decision, _) = self.decide(now, p.device, &subject, &named, |receipts| {
            Entry::Compact(CompactObservation {
                device: p.device,
                interval: p.interval,
                frame: p.frame,
                rx_ms: p.rx_ms,
                rx: p.rx.copied(),
                receipts,
            })
        })?;
        Ok(decision)
    }

    /// Quarantines a device on a suite-2 divergence proof (a `CompactProof`: two frames
    /// for one interval under one disclosed key, each dated by gateway receipts before
    /// the key's disclosure), through the same path as a suite-1 proof (records the
    /// proof, revokes the grant in this call). The proof is checked under
    /// `max_skew_ms` (the verifier's clock bound; recorded with it) and, since it is only
    /// as strong as the witnesses whose receipts date it, every renewal and both frames
    /// must be [`crate::compact::dated_enough`]: by this gateway itself, or by
    /// registered, active witnesses of [`crate::compact::DATING_ZONES`] trust zones
    /// ([`Error::Undated`] otherwise: nothing recorded).
    pub fn handle_compact_proof(
        &mut self,
        now: Millis,
        proof: &[u8],
        max_skew_ms: u64,
    ) -> Result<Decision, Error> {
        let own = self
            .local
            .and_then(|slot| self.witnesses.get(slot))
            .map(|w| w.key.to_bytes());
        let zone_of = |k: &[u8; 32]| {
            let slot = self.witnesses.active(&slope_proto::crypto::witness_id(k))?;
            self.witnesses.get(slot).map(|w| w.zone)
        };
        let d = slope_proto::compact::CompactProof::decode(proof)
            .map_err(|e| Error::CompactProof(e.into()))?
            .verify_with(max_skew_ms, |dating| {
                crate::compact::dated_enough(dating, own.as_ref(), zone_of)
            })
            .map_err(|e| match e {
                slope_proto::compact::ProofError::Undated { .. } => Error::Undated,
                e => Error::CompactProof(e),
            })?;
        let digest = Digest(*blake3::hash(proof).as_bytes());
        let divergence = slope_proto::Divergence {
            device: d.device,
            seq: d.interval,
            first: digest,
            second: digest,
        };
        let entry = Entry::CompactDivergence {
            device: d.device,
            interval: d.interval,
            max_skew_ms,
            proof,
        };
        self.quarantine(now, proof, divergence, entry)
    }
}
