//! Witness receipts between gateways, the world's side: each gateway's receipt round
//! (it signs what its radio witnessed and the batch is gossiped to the gateways whose
//! radio heard any of those devices, with the overlay's latency and loss), the arrival
//! of a batch (checked by the receiver's trust engine), and the decisions that waited
//! for receipts. The gateway's side is [`super::receipts`].

use std::sync::Arc;

use slope_node::trust::PreparedBatch;
use slope_proto::ShortId;

use super::gateway::Action;
use super::gossip::OVERHEAD_BYTES;
use super::{Ev, World};

impl World {
    /// Gateway `g`'s radio verified a frame of `short`: it is a witness of that device
    /// (its receipts go to the others that are).
    pub(super) fn heard(&mut self, g: u16, short: ShortId) {
        let list = self.heard_by.entry(short).or_default();
        if let Err(pos) = list.binary_search(&g) {
            list.insert(pos, g);
        }
    }

    pub(super) fn on_round(&mut self, g: u16) {
        let round_us = self.params.gossip.receipt_round_ms * 1000;
        self.schedule(self.now_us + round_us, Ev::Round(g));
        let now_ms = self.now_ms();
        let Some(gw) = self.gateways.get_mut(usize::from(g)) else {
            return;
        };
        if self.params.suite == crate::params::Suite::Compact {
            // The suite-2 verifier's timer (frames that waited too long for their key).
            gw.tick(now_ms);
        }
        let frames = gw.seal(now_ms);
        let key = gw.public_key();
        for frame in frames {
            self.trace.record(self.now_us, 13, &[u64::from(g)]);
            self.trace.record_bytes(&frame);
            // Decoded, its message and digest worked out once, for every receiver (a
            // pure function of the bytes: each receiver's engine still checks it).
            let prepared = Arc::new(PreparedBatch::prepare(&frame).ok());
            if let Some(p) = prepared.as_ref() {
                // Its signature, checked ahead on the second core (see `preverify`).
                self.pre.submit_batch(key, p);
            }
            let mut to: Vec<u16> = Vec::new();
            for e in prepared.iter().flat_map(PreparedBatch::entries) {
                to.extend(self.heard_by.get(&e.device).into_iter().flatten());
            }
            to.sort_unstable();
            to.dedup();
            for h in to {
                if h == g {
                    continue;
                }
                let Some((ms, hops)) = self.overlay.route(g, h, &mut self.rng) else {
                    continue;
                };
                self.counters.receipt_deliveries += 1;
                self.counters.receipt_bytes +=
                    (frame.len() as u64 + OVERHEAD_BYTES) * u64::from(hops);
                // The receiver takes it at its first tick after the arrival, with its
                // other work there (see "Gateway ticks" in docs/testnet.md).
                self.schedule(
                    super::tick_after(self.now_us + (ms * 1000.0) as u64),
                    Ev::Receipts {
                        to: h,
                        batch: Arc::clone(&prepared),
                    },
                );
            }
        }
    }

    /// What a decision tells the oracles.
    pub(super) fn decided(&mut self, action: &Action) {
        let Action::Decided {
            judged,
            receipts,
            watched,
            ..
        } = action
        else {
            return;
        };
        let c = &mut self.counters;
        c.decisions += 1;
        if *receipts > 0 {
            c.decisions_with_receipts += 1;
        }
        if *watched > 0 {
            c.rogue_receipted += 1;
            // The local radio, the honest receipts, and at most one for the rogue.
            let honest = receipts.saturating_sub(*watched);
            if u16::from(judged.witnesses) > 2 + u16::from(honest) {
                c.rogue_over_one_witness += 1;
            }
            if judged.mode == super::trust::Mode::Full && honest == 0 {
                c.rogue_only_full += 1;
            }
        }
    }
}
