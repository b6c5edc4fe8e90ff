//! What gateways do with each other: deliver verified attestations to the gateways
//! that track the device, answer sync requests with establishment events, flood
//! divergence proofs (re-verified at every hop), heal partitions by exchanging the
//! proofs each side holds, and the periodic samples of admissions and slopes.

use std::sync::Arc;

use slope_node::verifier::Missing;
use slope_proto::{DeviceId, Observation};

use super::gateway::{Action, Input, Relay, Source};
use super::gossip::{self, OVERHEAD_BYTES};
use super::trust::Mode;
use super::{Ev, SAMPLE_MS, World};
use crate::metrics::Sample;

impl World {
    pub(super) fn act(&mut self, g: u16, action: Action) {
        match action {
            Action::Gossip {
                device,
                envelope,
                relay,
            } => {
                self.verified(g, device, &envelope);
                self.gossip(g, device, envelope, relay);
            }
            Action::Verified { device, envelope } => self.verified(g, device, &envelope),
            Action::Relay {
                envelope, relay, ..
            } => {
                // Suite-2 frames go to every gateway, as on the mesh's gossipsub topic:
                // checking one costs three hashes, not a signature (see "Model of
                // gossip" in docs/testnet.md), and a gateway that received both frames
                // of a clone in time takes a compact proof on its own word.
                let all = |w: &Self| Some((0..w.gateways.len() as u16).collect());
                self.publish(g, all, envelope, Some(relay));
            }
            Action::Track(device) => {
                let list = self.interest.entry(device).or_default();
                if let Err(pos) = list.binary_search(&g) {
                    list.insert(pos, g);
                }
                self.short.entry(device.short()).or_insert(device);
            }
            Action::Sync(missing) => self.sync(g, missing),
            Action::Fetch { device, seq } => self.fetch(g, device, seq),
            Action::Flagged(device) => {
                let now_ms = self.now_ms();
                if let Some(&i) = self.identity.get(&device)
                    && let Some(t) = self.truth.get_mut(i)
                {
                    let after = t.attacked_at_ms.is_some_and(|a| now_ms >= a);
                    if after {
                        t.flagged_by_context = true;
                    } else {
                        t.flagged_honest = true;
                    }
                }
            }
            Action::Quarantined { device, proof } => {
                self.detected(g, device);
                self.flood(g, None, proof);
            }
            Action::Decided { .. } => self.decided(&action),
            Action::DecideAt(at_ms) => {
                let at = super::tick_at_or_after((at_ms * 1000).max(self.now_us));
                self.schedule(at, Ev::Decide(g));
            }
        }
    }

    /// Gateway `g` verified a frame its radio heard: the attack and truth bookkeeping.
    fn verified(&mut self, g: u16, device: DeviceId, envelope: &[u8]) {
        self.attack.accepted(envelope, &mut self.counters);
        let after = self.now_ms() >= self.params.attack_at_ms;
        if let Some(&i) = self.identity.get(&device)
            && let Some(t) = self.truth.get_mut(i)
        {
            if after {
                t.heard_after_attack = true;
            } else {
                t.heard_before_attack = true;
            }
        }
        self.heard(g, device.short());
    }

    /// Publishes a verified attestation: gossip delivers it to every other gateway
    /// tracking the device, each copy through the receiver's seen-cache. A gateway that
    /// already holds the message id (it got the message by gossip before its own radio
    /// copy was verified) publishes nothing, as gossipsub refuses a duplicate publish.
    fn gossip(&mut self, from: u16, device: DeviceId, envelope: Arc<[u8]>, relay: Option<Relay>) {
        self.publish(from, |w| w.interest.get(&device).cloned(), envelope, relay);
    }

    /// Publishes a message from `from` to the gateways `targets` names (`None`: to
    /// nobody), each copy through the receiver's seen-cache (see [`Self::gossip`]).
    fn publish(
        &mut self,
        from: u16,
        targets: impl FnOnce(&Self) -> Option<Vec<u16>>,
        envelope: Arc<[u8]>,
        relay: Option<Relay>,
    ) {
        let id = gossip::message_id(&envelope, relay.as_ref().map(|r| &r.receipt[..]));
        let now_us = self.now_us;
        if !self
            .seen
            .get_mut(usize::from(from))
            .is_none_or(|s| s.insert(id, now_us))
        {
            self.counters.gossip_publish_duplicate += 1;
            return;
        }
        let Some(targets) = targets(self) else {
            return;
        };
        for to in targets {
            if to == from {
                continue;
            }
            let Some((ms, hops)) = self.overlay.route(from, to, &mut self.rng) else {
                continue;
            };
            self.counters.gossip_deliveries += 1;
            let receipt = relay.as_ref().map_or(0, |r| r.receipt.len() as u64 + 8);
            self.counters.gossip_bytes +=
                (envelope.len() as u64 + receipt + OVERHEAD_BYTES) * u64::from(hops);
            // A receiver that holds the id now still holds it when the copy arrives
            // (the latency is far below the cache's 120 s): drop the copy here rather
            // than through the event queue; its bytes were sent all the same.
            if self
                .seen
                .get_mut(usize::from(to))
                .is_some_and(|s| s.contains(&id, now_us))
            {
                self.counters.gossip_seen_dropped += 1;
                continue;
            }
            let input = Input {
                envelope: envelope.clone(),
                rx: gossip_rx(self.now_ms()),
                source: Source::Gossip,
                relay: relay.clone(),
            };
            self.schedule(now_us + (ms * 1000.0) as u64, Ev::Gossip { to, id, input });
        }
    }

    /// A gossip copy arrives: the seen-cache drops it if the id was received or
    /// published here before, or hands it to the gateway.
    pub(super) fn on_gossip(&mut self, to: u16, id: gossip::MessageId, input: Input) {
        let now_us = self.now_us;
        let fresh = self
            .seen
            .get_mut(usize::from(to))
            .is_none_or(|s| s.insert(id, now_us));
        if !fresh {
            self.counters.gossip_seen_dropped += 1;
            return;
        }
        self.trace.record(now_us, 3, &[u64::from(to)]);
        self.deliver(to, input);
    }

    /// Asks the nearest reachable gateway that tracks the device for its establishment
    /// events.
    fn sync(&mut self, g: u16, missing: Missing) {
        let device = match missing {
            Missing::Inception(short) => self.short.get(&short).copied(),
            Missing::Rotation { device, .. } => Some(device),
        };
        // A gateway in `interest` tracks the device (it said so with `Action::Track`, and
        // a gateway never stops tracking): the world's list is the answer, no gateway's
        // state is read here (see `Self::fetch`).
        let responder = device.and_then(|d| {
            self.interest
                .get(&d)?
                .iter()
                .copied()
                .filter(|&h| h != g)
                .find(|&h| self.overlay.connected(g, h))
        });
        let (Some(device), Some(from)) = (device, responder) else {
            if let Some(gw) = self.gateways.get_mut(usize::from(g)) {
                gw.synced(&missing);
            }
            return;
        };
        self.counters.sync_requests += 1;
        let rtt = match (
            self.overlay.route(g, from, &mut self.rng),
            self.overlay.route(from, g, &mut self.rng),
        ) {
            (Some((a, _)), Some((b, _))) => a + b,
            _ => {
                if let Some(gw) = self.gateways.get_mut(usize::from(g)) {
                    gw.synced(&missing);
                }
                return;
            }
        };
        self.schedule(
            self.now_us + (rtt * 1000.0) as u64,
            Ev::SyncReply {
                to: g,
                from,
                device,
                missing,
            },
        );
    }

    /// Fork evidence without its sibling: every reachable gateway that tracks the
    /// device is asked for what it holds at the neighbouring positions (the mesh's sync
    /// by position), so the sibling completes a proof here. Each answers with what it
    /// holds when the request reaches it ([`Self::on_fetch`]): the world reads another
    /// gateway's state only in an event of that gateway's own, never in an action of
    /// this one (what lets gateways act in parallel at one tick, `World::run_tick`).
    fn fetch(&mut self, g: u16, device: DeviceId, seq: u32) {
        let Some(peers) = self.interest.get(&device).cloned() else {
            return;
        };
        for h in peers {
            if h == g || !self.overlay.connected(g, h) {
                continue;
            }
            let Some((ms, _)) = self.overlay.route(h, g, &mut self.rng) else {
                continue;
            };
            self.counters.sync_requests += 1;
            self.schedule(
                self.now_us + (ms * 1000.0) as u64,
                Ev::Fetch {
                    to: h,
                    from: g,
                    device,
                    seq,
                    ms,
                },
            );
        }
    }

    /// A fetch request reaches `to`: it sends `from` its frames of `device` at `seq` and
    /// its neighbours, `ms` on the way back.
    pub(super) fn on_fetch(&mut self, to: u16, from: u16, device: DeviceId, seq: u32, ms: f64) {
        let Some(gw) = self.gateways.get(usize::from(to)) else {
            return;
        };
        let frames = gw.held(&device, seq.saturating_sub(1), seq + 1);
        self.trace.record(
            self.now_us,
            16,
            &[u64::from(to), u64::from(from), frames.len() as u64],
        );
        let now_ms = self.now_ms();
        for f in frames {
            self.counters.sync_bytes += f.len() as u64 + OVERHEAD_BYTES;
            let input = Input {
                envelope: f,
                rx: gossip_rx(now_ms),
                source: Source::Sync,
                relay: None,
            };
            self.schedule(self.now_us + (ms * 1000.0) as u64, Ev::Deliver(from, input));
        }
    }

    pub(super) fn on_sync_reply(&mut self, to: u16, from: u16, device: DeviceId, missing: Missing) {
        // The establishment events, then the suite-2 anchor if the device has one.
        let frames: Vec<Arc<[u8]>> = self
            .gateways
            .get(usize::from(from))
            .map(|gw| {
                let mut v: Vec<Arc<[u8]>> = gw
                    .verifier()
                    .establishments(&device)
                    .into_iter()
                    .map(Arc::from)
                    .collect();
                v.extend(gw.anchor(&device));
                v
            })
            .unwrap_or_default();
        self.trace
            .record(self.now_us, 9, &[u64::from(to), frames.len() as u64]);
        let now_ms = self.now_ms();
        for f in frames {
            self.counters.sync_bytes += f.len() as u64 + OVERHEAD_BYTES;
            self.deliver(
                to,
                Input {
                    envelope: f,
                    rx: gossip_rx(now_ms),
                    source: Source::Sync,
                    relay: None,
                },
            );
        }
        if let Some(gw) = self.gateways.get_mut(usize::from(to)) {
            gw.synced(&missing);
        }
    }

    /// Sends a proof to every reachable overlay peer of `g` but `except`.
    pub(super) fn flood(&mut self, g: u16, except: Option<u16>, proof: Arc<[u8]>) {
        let peers: Vec<(u16, f64)> = self.overlay.peers(g).collect();
        for (p, base) in peers {
            if Some(p) == except {
                continue;
            }
            self.counters.proof_messages += 1;
            self.counters.proof_bytes += proof.len() as u64 + OVERHEAD_BYTES;
            if let Some(ms) = self.overlay.hop(base, &mut self.rng) {
                self.schedule(
                    self.now_us + (ms * 1000.0) as u64,
                    Ev::Proof {
                        to: p,
                        from: g,
                        proof: proof.clone(),
                    },
                );
            }
        }
    }

    pub(super) fn on_proof(&mut self, to: u16, from: u16, proof: Arc<[u8]>) {
        let now_ms = self.now_ms();
        self.trace
            .record(self.now_us, 10, &[u64::from(to), u64::from(from)]);
        let Some(gw) = self.gateways.get_mut(usize::from(to)) else {
            return;
        };
        // A compact proof this gateway completed with its own dating is flooded in
        // that form.
        if let Some((device, proof)) = gw.handle_proof(now_ms, &proof) {
            self.detected(to, device);
            self.flood(to, Some(from), proof);
        }
    }

    /// Records that gateway `g` quarantined `device`.
    fn detected(&mut self, g: u16, device: DeviceId) {
        let now_ms = self.now_ms();
        self.trace.record(self.now_us, 11, &[u64::from(g)]);
        if let Some(&i) = self.identity.get(&device)
            && let Some(t) = self.truth.get_mut(i)
        {
            t.quarantined_at.entry(g).or_insert(now_ms);
        }
    }

    pub(super) fn on_partition(&mut self, split: bool) {
        self.trace.record(self.now_us, 12, &[u64::from(split)]);
        self.overlay.set_partitioned(split);
        if split {
            return;
        }
        self.partition_healed_ms = Some(self.now_ms());
        // Anti-entropy after the heal: every gateway offers the proofs it holds to its
        // peers (what the mesh's sync protocol does on reconnection).
        for g in 0..self.gateways.len() as u16 {
            let proofs = self
                .gateways
                .get(usize::from(g))
                .map(|gw| gw.proofs().to_vec())
                .unwrap_or_default();
            for p in proofs {
                self.flood(g, None, p);
            }
        }
    }

    pub(super) fn on_sample(&mut self) {
        let now_ms = self.now_ms();
        self.schedule(self.now_us + SAMPLE_MS * 1000, Ev::Sample);
        let mut modes = [0u64; 7];
        let mut untracked = 0;
        for i in 0..self.params.devices {
            let Some(id) = self.devices.get(i).and_then(|d| d.id) else {
                untracked += 1;
                continue;
            };
            let gw = &self.gateways[usize::from(self.home(i))];
            if !gw.tracks(&id) {
                untracked += 1;
                continue;
            }
            let m = gw.mode(&id, now_ms);
            if let Some(k) = Mode::ALL.iter().position(|x| *x == m) {
                modes[k] += 1;
            }
            if m == Mode::Full
                && let Some(t) = self.truth.get_mut(i)
            {
                t.full_at_ms.get_or_insert(now_ms);
            }
        }
        self.samples.push(Sample {
            t_ms: now_ms,
            modes,
            untracked,
        });
        for k in 0..self.series.len() {
            let (i, _) = self.series[k];
            let Some(id) = self.devices.get(i).and_then(|d| d.id) else {
                continue;
            };
            let gw = &self.gateways[usize::from(self.home(i))];
            let head = match gw.stage.compact_head(&id) {
                Some(interval) => interval,
                None => gw.verifier().head(&id).map_or(0, |(s, _)| s),
            };
            let mode = gw.mode(&id, now_ms);
            self.series[k].1.points.push((now_ms, head, mode));
        }
    }
}

/// The observation attached to a frame that arrived by gossip or sync (no radio).
fn gossip_rx(now_ms: u64) -> Observation {
    Observation::relayed(now_ms)
}
