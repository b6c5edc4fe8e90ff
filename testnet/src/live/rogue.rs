//! `rogue-gateway --live`: one of the real gateways lies. Its node runs the daemon's
//! code like the others (it verifies, stores, gossips and receipts what its radio
//! heard, truthfully); the harness holds its identity key and, through the node's
//! test/embedding hook `Handle::publish_raw`, gossips what a lying gateway would, signed
//! by that node on the real topics, so the honest nodes validate it like any gossip:
//!
//! - **false witness receipts**: in every replay window, as soon as the window's
//!   receptions are injected (so they arrive while the honest deciders still wait for
//!   receipts), a receipt batch signed with the rogue's witness key for every frame
//!   another gateway heard on the air that the rogue's radio never heard (it learns
//!   them by gossip), with a made-up strong reception, and for each one a receipt for
//!   an event that never happened (position [`FABRICATED_SEQ`] higher, a made-up
//!   digest); every batch is sent twice (signed at two times: two messages);
//! - **fake divergence proofs**: from the attack time, every 10 virtual minutes, one of
//!   four kinds (the same frame twice, a frame and a copy with one byte flipped, the
//!   frames of two devices, random bytes), built from what the rogue's store holds.
//!
//! The rogue dials every other gateway first, so what it publishes reaches every node
//! directly (gossipsub floods its own publications to every peer).

use std::collections::{HashMap, HashSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use slope_mesh::identity::Identity;
use slope_mesh::net::topics;
use slope_mesh::pipeline::receipt_message;
use slope_proto::batch::Entry as BatchEntry;
use slope_proto::limits::{MAX_BATCH_ENTRIES, MAX_RECEIPT_BATCH};
use slope_proto::{DeviceId, DivergenceProof, LinkDigest, Message, ReceiptBatch, ShortId};

use super::cluster::Cluster;
use super::tape::Tape;
use crate::world::Reception;

/// How far above a real position a fabricated receipt claims an event (no device of a
/// run gets there, so a receipt at or above it that counted would be a lie believed).
pub const FABRICATED_SEQ: u32 = 1_000_000;
/// Virtual time between two fake proofs, ms (as the simulated layer).
pub const PROOF_EVERY_MS: u64 = 10 * 60 * 1000;
/// Devices the rogue reads from its store for a fake proof, at most.
const READ_LIMIT: usize = 4096;

/// The lying gateway and what it sent.
pub struct Rogue {
    pub index: usize,
    identity: Identity,
    /// Envelopes the rogue's radio heard at some point of the run (never lied about).
    heard: HashSet<blake3::Hash>,
    /// Envelopes already lied about.
    done: HashSet<blake3::Hash>,
    next_proof_ms: u64,
    rng: ChaCha12Rng,
    pub figures: Sent,
}

/// What the rogue sent.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Sent {
    /// Receipts for frames its radio never heard.
    pub false_receipts: u64,
    /// Receipts for events that never happened.
    pub fabricated_receipts: u64,
    /// Signed receipt batches published (each twice).
    pub receipt_batches: u64,
    pub fake_proofs: u64,
    /// Peers the rogue had after dialling every gateway.
    pub peers: usize,
}

/// The device, position and event digest of a suite-1 event frame (after its inception,
/// the device is looked up in `ids`: short id → id).
pub fn event_of(
    frame: &[u8],
    ids: &HashMap<ShortId, DeviceId>,
) -> Option<(DeviceId, u32, slope_proto::Digest)> {
    match slope_proto::decode(frame).ok()? {
        Message::Inception(e) => {
            let id = e.device_id();
            Some((id, 0, e.digest(&id)))
        }
        Message::Interaction(e) => {
            let id = *ids.get(&e.body().device)?;
            Some((id, e.body().seq, e.digest(&id)))
        }
        Message::Rotation(e) => {
            let id = *ids.get(&e.body().device)?;
            Some((id, e.body().seq, e.digest(&id)))
        }
        _ => None,
    }
}

/// Short id → id of every device the tape's world knows.
pub fn short_ids(tape: &Tape) -> HashMap<ShortId, DeviceId> {
    tape.world
        .identity
        .keys()
        .map(|id| (id.short(), *id))
        .collect()
}

impl Rogue {
    /// The rogue is gateway `index` of the run seeded `seed` on `tape`; fake proofs
    /// start at `attack_at_ms`.
    pub fn new(seed: u64, index: usize, attack_at_ms: u64, tape: &Tape) -> Self {
        Self {
            index,
            identity: super::cluster::identity(seed, index),
            heard: tape
                .receptions
                .iter()
                .filter(|r| usize::from(r.gateway) == index)
                .map(|r| blake3::hash(&r.envelope))
                .collect(),
            done: HashSet::new(),
            next_proof_ms: attack_at_ms,
            rng: ChaCha12Rng::seed_from_u64(seed ^ 0x0072_6f67_7565),
            figures: Sent::default(),
        }
    }

    /// The rogue's witness id.
    pub fn witness(&self) -> [u8; 8] {
        self.identity.witness_id().0
    }

    /// The false receipts for a window's `receptions` (just injected at `now_ms`).
    pub async fn receipts(
        &mut self,
        cluster: &Cluster,
        receptions: &[Reception],
        ids: &HashMap<ShortId, DeviceId>,
        now_ms: u64,
    ) {
        let Some(gw) = cluster.gateways.get(self.index) else {
            return;
        };
        let observed = crate::world::gateway::forged_reception(now_ms);
        let mut entries = Vec::new();
        for r in receptions {
            let h = blake3::hash(&r.envelope);
            if usize::from(r.gateway) == self.index || self.heard.contains(&h) {
                continue;
            }
            if !self.done.insert(h) {
                continue;
            }
            let Some((id, seq, digest)) = event_of(&r.envelope, ids) else {
                continue;
            };
            entries.push(BatchEntry {
                device: id.short(),
                seq,
                event: digest.link(),
                observed,
            });
            let mut never = [0u8; 16];
            never.copy_from_slice(&blake3::hash(&digest.0).as_bytes()[..16]);
            entries.push(BatchEntry {
                device: id.short(),
                seq: seq.saturating_add(FABRICATED_SEQ),
                event: LinkDigest(never),
                observed,
            });
            self.figures.false_receipts += 1;
            self.figures.fabricated_receipts += 1;
        }
        entries.sort_by_key(BatchEntry::order_key);
        entries.dedup_by_key(|e| e.order_key());
        let key = self.identity.signing_key();
        let public = key.verifying_key().to_bytes();
        let mut buf = vec![0u8; MAX_RECEIPT_BATCH];
        for chunk in entries.chunks(MAX_BATCH_ENTRIES) {
            // Twice, signed at two times: two messages claiming the same receptions.
            for t in [now_ms, now_ms + 1] {
                if let Ok(n) = ReceiptBatch::sign_into(key, t, chunk.iter().copied(), &mut buf) {
                    let _ = gw
                        .handle
                        .publish_raw(topics::RECEIPTS, receipt_message(&public, &buf[..n]))
                        .await;
                }
            }
            self.figures.receipt_batches += 1;
        }
    }

    /// A fake proof when one is due at `now_ms`; whether one was sent.
    pub async fn proofs(&mut self, cluster: &Cluster, now_ms: u64) -> bool {
        let Some(gw) = cluster.gateways.get(self.index) else {
            return false;
        };
        if now_ms < self.next_proof_ms {
            return false;
        }
        self.next_proof_ms = now_ms + PROOF_EVERY_MS;
        let store = gw.handle.store().clone();
        let devices = store.devices(None, READ_LIMIT).unwrap_or_default();
        let Some(p) = self.fake_proof(&store, &devices) else {
            return false;
        };
        let _ = gw.handle.publish_raw(topics::DIVERGENCES, p).await;
        self.figures.fake_proofs += 1;
        true
    }

    /// One fake proof from what the store holds, of the next of four kinds.
    fn fake_proof(
        &mut self,
        store: &slope_mesh::store::Store,
        devices: &[(DeviceId, slope_mesh::store::DeviceRecord)],
    ) -> Option<Vec<u8>> {
        if devices.len() < 2 {
            return None;
        }
        let (a_dev, a_rec) = &devices[self.rng.gen_range(0..devices.len())];
        let (b_dev, b_rec) = &devices[self.rng.gen_range(0..devices.len())];
        let a = store.frame(a_dev, a_rec.head_seq).ok()??.frame;
        let b = store.frame(b_dev, b_rec.head_seq).ok()??.frame;
        let est = store.establishments(a_dev).ok()?;
        let inception = est.first()?;
        let rotations: Vec<&[u8]> = est.iter().skip(1).map(Vec::as_slice).collect();
        let mut out = vec![0u8; 16 * 1024];
        let n = match self.figures.fake_proofs % 4 {
            0 => DivergenceProof::encode(inception, &rotations, &a, &a, &mut out).ok()?,
            1 => {
                let mut flipped = a.clone();
                let at = self.rng.gen_range(3..flipped.len().max(4));
                if let Some(x) = flipped.get_mut(at) {
                    *x ^= 0x20;
                }
                DivergenceProof::encode(inception, &rotations, &a, &flipped, &mut out).ok()?
            }
            2 => DivergenceProof::encode(inception, &rotations, &a, &b, &mut out).ok()?,
            _ => {
                self.rng.fill(&mut out[..300]);
                300
            }
        };
        out.truncate(n);
        Some(out)
    }
}
