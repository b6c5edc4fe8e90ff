//! The gateway-to-gateway gossip model: an overlay where each gateway keeps about
//! `degree` peers, a log-normal latency per link, loss per message per hop, and
//! partitions that cut every link between the two halves.
//!
//! Two kinds of traffic use it (see `docs/testnet.md`, "Model of gossip"):
//! - divergence proofs are flooded hop by hop (each gateway re-verifies a proof before it
//!   forwards it), simulated as individual messages;
//! - attestations are delivered to the gateways that track the device, along the
//!   overlay's fastest path ([`Overlay::route`]): hop count and latency from the current
//!   topology, with per-delivery jitter and loss.

use rand::Rng;
use rand_chacha::ChaCha12Rng;

use crate::params::Gossip;

/// Bytes a gossip message costs beyond its payload (framing, topic, message id,
/// signature of the publishing peer), per hop.
pub const OVERHEAD_BYTES: u64 = 112;

/// The overlay of gateways.
#[derive(Debug, Clone)]
pub struct Overlay {
    params: Gossip,
    /// `peers[g]`: (peer, base latency ms), symmetric.
    peers: Vec<Vec<(u16, f64)>>,
    /// Side of each gateway when the mesh is partitioned.
    side: Vec<bool>,
    partitioned: bool,
    /// Fastest-path latency (ms) and hop count between every pair, for the current
    /// topology; `f64::INFINITY` when unreachable.
    dist: Vec<f64>,
    hops: Vec<u16>,
    n: usize,
}

impl Overlay {
    /// A random overlay of `n` gateways: a ring (so it is connected) plus random links
    /// up to about `degree` peers each.
    pub fn new(n: usize, params: Gossip, side: Vec<bool>, rng: &mut ChaCha12Rng) -> Self {
        let mut peers: Vec<Vec<(u16, f64)>> = vec![Vec::new(); n];
        let mut link = |a: usize, b: usize, rng: &mut ChaCha12Rng| {
            if a == b || peers[a].iter().any(|(p, _)| usize::from(*p) == b) {
                return;
            }
            let lat = lognormal(rng, params.latency_median_ms, params.latency_sigma);
            peers[a].push((b as u16, lat));
            peers[b].push((a as u16, lat));
        };
        for a in 0..n {
            link(a, (a + 1) % n, rng);
        }
        let extra = params.degree.saturating_sub(2).div_ceil(2);
        for a in 0..n {
            for _ in 0..extra {
                let b = rng.gen_range(0..n);
                link(a, b, rng);
            }
        }
        let mut o = Self {
            params,
            peers,
            side,
            partitioned: false,
            dist: Vec::new(),
            hops: Vec::new(),
            n,
        };
        o.recompute();
        o
    }

    /// Number of gateways.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the overlay is empty.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Splits the mesh (every link between the two sides is cut) or heals it.
    pub fn set_partitioned(&mut self, partitioned: bool) {
        self.partitioned = partitioned;
        self.recompute();
    }

    /// The side of the partition `g` is on (`true`: east of the middle).
    pub fn side(&self, g: u16) -> bool {
        self.side.get(usize::from(g)).copied().unwrap_or(false)
    }

    /// Whether `a` and `b` can talk now.
    pub fn connected(&self, a: u16, b: u16) -> bool {
        !self.partitioned || self.side[usize::from(a)] == self.side[usize::from(b)]
    }

    /// The peers of `g` reachable now, with their base latency.
    pub fn peers(&self, g: u16) -> impl Iterator<Item = (u16, f64)> + '_ {
        self.peers[usize::from(g)]
            .iter()
            .copied()
            .filter(move |(p, _)| self.connected(g, *p))
    }

    /// Latency (ms) and hops of a delivery from `from` to `to` now, or `None` when it is
    /// lost (unreachable, or dropped on the way).
    pub fn route(&self, from: u16, to: u16, rng: &mut ChaCha12Rng) -> Option<(f64, u16)> {
        let i = usize::from(from) * self.n + usize::from(to);
        let d = *self.dist.get(i)?;
        if !d.is_finite() {
            return None;
        }
        let hops = self.hops[i];
        let delivered = (1.0 - self.params.loss).powi(i32::from(hops.min(1)));
        if rng.r#gen::<f64>() >= delivered {
            return None;
        }
        Some((d * rng.gen_range(0.8..1.25), hops))
    }

    /// One hop's latency on the link `a`–`b` (base latency, jittered), or `None` when
    /// the message is lost on it.
    pub fn hop(&self, base_ms: f64, rng: &mut ChaCha12Rng) -> Option<f64> {
        if rng.r#gen::<f64>() < self.params.loss {
            return None;
        }
        Some(base_ms * lognormal(rng, 1.0, 0.2))
    }

    fn recompute(&mut self) {
        let n = self.n;
        self.dist = vec![f64::INFINITY; n * n];
        self.hops = vec![u16::MAX; n * n];
        for s in 0..n {
            // Dijkstra over a small graph: O(n²) is fine for a few hundred gateways.
            let mut done = vec![false; n];
            let row = s * n;
            self.dist[row + s] = 0.0;
            self.hops[row + s] = 0;
            for _ in 0..n {
                let mut best = None;
                for (v, is_done) in done.iter().enumerate() {
                    let d = self.dist[row + v];
                    if !is_done && d.is_finite() && best.is_none_or(|(_, bd)| d < bd) {
                        best = Some((v, d));
                    }
                }
                let Some((u, du)) = best else { break };
                done[u] = true;
                for &(p, lat) in &self.peers[u] {
                    let v = usize::from(p);
                    if !self.connected(u as u16, p) {
                        continue;
                    }
                    if du + lat < self.dist[row + v] {
                        self.dist[row + v] = du + lat;
                        self.hops[row + v] = self.hops[row + u].saturating_add(1);
                    }
                }
            }
        }
    }
}

/// A log-normal draw with the given median and σ (natural log).
pub fn lognormal(rng: &mut impl Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * standard_normal(rng)).exp()
}

/// One N(0, 1) draw (Box–Muller).
pub fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.r#gen::<f64>();
    let u2: f64 = rng.r#gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// How long a gateway remembers a gossip message id, µs: the mesh's gossipsub
/// `duplicate_cache_time` (`mesh/src/net/behaviour.rs`).
pub const SEEN_TTL_US: u64 = 120 * 1_000_000;

/// A gossip message id: blake3 of the message's data, first 20 bytes, as the mesh's
/// `message_id` (so one attestation heard by many gateways is one message).
pub type MessageId = [u8; 20];

/// The message id of an attestation's gossip data: the frame, and for a relayed
/// suite-2 frame the relaying gateway's receipt after it.
pub fn message_id(envelope: &[u8], receipt: Option<&[u8]>) -> MessageId {
    let mut h = blake3::Hasher::new();
    h.update(envelope);
    if let Some(r) = receipt {
        h.update(r);
    }
    let mut id = [0u8; 20];
    id.copy_from_slice(&h.finalize().as_bytes()[..20]);
    id
}

/// One gateway's gossipsub seen-cache (its duplicate cache): the ids of the messages
/// it published or received in the last [`SEEN_TTL_US`]. A copy whose id is in it is
/// dropped before the application sees it; publishing an id in it is refused
/// (gossipsub's `PublishError::Duplicate`). Bounded by time, as gossipsub's is: it
/// holds what the gateway got in the last 120 s and no more.
#[derive(Debug, Default)]
pub struct Seen {
    ids: super::fx::HashMap<MessageId, u64>,
    /// Ids by insertion time (ascending), for expiry.
    order: std::collections::VecDeque<(u64, MessageId)>,
}

impl Seen {
    /// Whether `id` was seen within the TTL before `now_us`.
    pub fn contains(&mut self, id: &MessageId, now_us: u64) -> bool {
        self.expire(now_us);
        self.ids.contains_key(id)
    }

    /// Records `id` as seen at `now_us`; false if it was already there.
    pub fn insert(&mut self, id: MessageId, now_us: u64) -> bool {
        self.expire(now_us);
        if self.ids.contains_key(&id) {
            return false;
        }
        self.ids.insert(id, now_us);
        self.order.push_back((now_us, id));
        true
    }

    /// Ids held now.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn expire(&mut self, now_us: u64) {
        while let Some(&(at, id)) = self.order.front() {
            if at + SEEN_TTL_US > now_us {
                break;
            }
            self.order.pop_front();
            self.ids.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn seen_cache_drops_repeats_within_its_ttl_only() {
        let mut seen = Seen::default();
        let a = message_id(b"frame", None);
        let b = message_id(b"frame", Some(b"receipt"));
        assert_ne!(a, b);
        assert!(seen.insert(a, 1_000));
        assert!(!seen.insert(a, 2_000));
        assert!(seen.contains(&a, 1_000 + SEEN_TTL_US - 1));
        assert!(!seen.contains(&b, 2_000));
        // Expired: seen again as new, and the cache holds only what is live.
        assert!(!seen.contains(&a, 1_000 + SEEN_TTL_US));
        assert!(seen.is_empty());
        assert!(seen.insert(a, 1_000 + SEEN_TTL_US));
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn partition_cuts_and_heal_restores() {
        let mut rng = ChaCha12Rng::seed_from_u64(3);
        let side: Vec<bool> = (0..20).map(|i| i >= 10).collect();
        let mut o = Overlay::new(20, Gossip::default(), side, &mut rng);
        let reach = |o: &Overlay| o.dist.iter().filter(|d| d.is_finite()).count();
        assert_eq!(reach(&o), 400);
        o.set_partitioned(true);
        assert!(!o.connected(0, 15));
        assert!(reach(&o) <= 200);
        assert!(o.dist[15].is_infinite());
        o.set_partitioned(false);
        assert_eq!(reach(&o), 400);
    }
}
