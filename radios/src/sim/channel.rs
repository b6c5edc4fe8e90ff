//! [`Channel`]: the shared air. Nodes, transmissions in flight, and the decision, at the end
//! of every frame, of which nodes received it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;

use super::grid::Grid;
use super::model::{self, Propagation};
use super::{Config, Listen, NodeConfig, NodeId, Position, Refused, Stats, TxId};
use crate::airtime::Modulation;
use crate::duty_cycle::DutyCycle;
use crate::meta::{RxMeta, Snr};
use crate::radio::TxParams;
use lora_modulation::{Bandwidth, SpreadingFactor};

/// A frame received by one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Receiving node.
    pub to: NodeId,
    /// Sending node (ground truth, for test oracles; a real receiver does not know it).
    pub from: NodeId,
    /// The transmission.
    pub tx: TxId,
    /// The PHY payload.
    pub bytes: Arc<[u8]>,
    /// What the receiver measured; `timestamp_us` is the simulated end of the frame.
    pub meta: RxMeta,
}

/// An accepted transmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmission {
    /// Its id.
    pub id: TxId,
    /// Time on air, µs.
    pub airtime_us: u32,
    /// Simulated time at which it ends, µs.
    pub end_us: u64,
}

#[derive(Debug, Clone)]
struct Frame {
    from: NodeId,
    start_us: u64,
    end_us: u64,
    freq_hz: u32,
    modulation: Modulation,
    eirp_dbm: f64,
    bytes: Arc<[u8]>,
}

#[derive(Debug, Clone)]
struct Node {
    pos: Position,
    config: NodeConfig,
    duty: DutyCycle,
    busy_until_us: u64,
}

/// The simulated air: deterministic for [`Config::seed`].
#[derive(Debug)]
pub struct Channel {
    config: Config,
    nodes: Vec<Node>,
    /// Listening nodes only: a frame is evaluated at receivers, never at sleeping nodes.
    grid: Grid,
    max_gain_dbi: f64,
    /// Frames that may still overlap an undelivered or future frame, by id.
    recent: BTreeMap<u64, Frame>,
    /// Undelivered frames by end time.
    pending: BinaryHeap<Reverse<(u64, u64)>>,
    next_tx: u64,
    simulated_until_us: u64,
    fading: ChaCha12Rng,
    stats: Stats,
    scratch: Vec<NodeId>,
    /// Each sender's receivers and their signal, computed at its first frame.
    links: Links,
    /// Whether frames are decided from [`Self::links`] (the default) or by the reference
    /// computation, link by link ([`Self::set_link_cache`]).
    link_cache: bool,
    /// Shadowing of the links the reference computation evaluated so far (a pure function
    /// of the seed and the link, cached: drawing it costs a seeded ChaCha block, a log and
    /// a cosine). Stays empty while the link cache is on.
    shadows: Shadows,
}

/// Links the link cache holds at most, over every sender (16 bytes each: 64 MiB). A
/// sender's list that does not fit empties the cache; lists are then recomputed,
/// identically, at their senders' next frames.
pub const LINKS_MAX: usize = 1 << 22;

/// The link cache. Nodes stay where they are between frames, so a sender's candidate
/// receivers (the listening nodes in the grid cells its frame can reach at the most
/// favourable shadowing and fading) and the signal of each link (EIRP, receiver gain,
/// mean path loss and shadowing: everything but the fast fading) are the same at every
/// frame it sends with the same power and modulation. Each sender's list is computed once,
/// sorted by receiver, with the arithmetic of the reference computation in the same order
/// ([`link_rssi_dbm`]), so the decisions are the same bit for bit.
///
/// Invalidation: any change of the grid (a listening node added, moved, switched on or
/// off), of a position, or of the largest antenna gain (which widens every range) starts
/// a new [`Links::generation`]; a list of an older generation, or computed for another
/// EIRP, spreading factor or bandwidth, is recomputed at its sender's next frame (one list
/// per sender: a sender alternating modulations recomputes at each change). Bound:
/// [`Links::max`] links in all (beyond it only if one list alone is longer); when a new
/// list does not fit, every list is dropped.
#[derive(Debug)]
struct Links {
    /// By sender.
    rows: Vec<Option<Row>>,
    /// Links in `rows`.
    len: usize,
    max: usize,
    generation: u64,
}

/// One sender's links.
#[derive(Debug)]
struct Row {
    generation: u64,
    eirp_bits: u64,
    sf: SpreadingFactor,
    bw: Bandwidth,
    sensitivity_dbm: f64,
    noise_dbm: f64,
    /// Candidate receivers, sorted, each with the signal of the link without fading.
    links: Vec<(NodeId, f64)>,
}

impl Links {
    fn new(max: usize) -> Self {
        Self {
            rows: Vec::new(),
            len: 0,
            max,
            generation: 0,
        }
    }

    fn invalidate(&mut self) {
        self.generation += 1;
    }

    /// `from`'s list, if it is current for a frame at `eirp_dbm` in `m`.
    fn row(&self, from: NodeId, eirp_dbm: f64, m: Modulation) -> Option<&Row> {
        self.rows
            .get(from.index())
            .and_then(Option::as_ref)
            .filter(|r| {
                r.generation == self.generation
                    && r.eirp_bits == eirp_dbm.to_bits()
                    && r.sf == m.sf
                    && r.bw == m.bw
            })
    }

    fn store(&mut self, from: NodeId, row: Row) {
        let i = from.index();
        if self.rows.len() <= i {
            self.rows.resize_with(i + 1, || None);
        }
        if let Some(old) = self.rows[i].take() {
            self.len -= old.links.len();
        }
        if self.len + row.links.len() > self.max {
            self.rows.iter_mut().for_each(|r| *r = None);
            self.len = 0;
        }
        self.len += row.links.len();
        self.rows[i] = Some(row);
    }
}

/// Links whose shadowing the reference computation's cache holds at most; a full cache is
/// emptied (the values are recomputed, identically, on demand).
const SHADOWS_MAX: usize = 1 << 22;

/// The reference computation's shadowing cache: for each transmitting node, the receivers
/// evaluated so far and the shadowing of each link, sorted by receiver.
#[derive(Debug, Default)]
struct Shadows {
    rows: Vec<Vec<(u32, f64)>>,
    len: usize,
}

impl Shadows {
    /// The shadowing of the link between `from` and `to` under `p` and `seed`.
    fn get(&mut self, p: &Propagation, seed: u64, from: u32, to: u32) -> f64 {
        let i = from as usize;
        if let Some(row) = self.rows.get(i)
            && let Ok(k) = row.binary_search_by_key(&to, |(r, _)| *r)
        {
            return row[k].1;
        }
        let s = p.shadowing_db(seed, from, to);
        if self.len >= SHADOWS_MAX {
            self.rows.iter_mut().for_each(Vec::clear);
            self.len = 0;
        }
        if self.rows.len() <= i {
            self.rows.resize_with(i + 1, Vec::new);
        }
        let row = &mut self.rows[i];
        let k = row.partition_point(|(r, _)| *r < to);
        row.insert(k, (to, s));
        self.len += 1;
        s
    }
}

/// Signal at `rx` of a frame sent at `eirp_dbm` from `tx_pos`, without fading, dBm: the
/// one formula of the link cache and the reference computation (same operations in the
/// same order, so the same bits).
fn link_rssi_dbm(
    p: &Propagation,
    eirp_dbm: f64,
    tx_pos: Position,
    rx: &Node,
    shadowing_db: f64,
) -> f64 {
    let d = tx_pos.distance_m(rx.pos);
    eirp_dbm + rx.config.antenna_gain_dbi - p.mean_path_loss_db(d) - shadowing_db
}

/// Sensitivity, noise floor and the largest distance a frame at `eirp_dbm` in `m` can
/// reach (fading can only help up to 3σ, like shadowing).
fn reach(config: &Config, max_gain_dbi: f64, eirp_dbm: f64, m: Modulation) -> (f64, f64, f64) {
    let nf = config.noise_figure_db;
    let sensitivity = model::sensitivity_dbm(m.sf, m.bw, nf);
    let noise = model::noise_floor_dbm(m.bw, nf);
    let range = Propagation::max_distance_m(
        &config.propagation,
        eirp_dbm + max_gain_dbi + 3.0 * config.fading_sigma_db - sensitivity,
    );
    (sensitivity, noise, range)
}

impl Channel {
    /// An empty channel.
    pub fn new(config: Config) -> Self {
        let fading = ChaCha12Rng::seed_from_u64(model::mix(config.seed, 0x00FA_D146));
        Self {
            grid: Grid::new(config.grid_cell_m),
            config,
            nodes: Vec::new(),
            max_gain_dbi: f64::NEG_INFINITY,
            recent: BTreeMap::new(),
            pending: BinaryHeap::new(),
            next_tx: 0,
            simulated_until_us: 0,
            fading,
            stats: Stats::default(),
            scratch: Vec::new(),
            links: Links::new(LINKS_MAX),
            link_cache: true,
            shadows: Shadows::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Decide frames from each sender's cached links (`true`, the default), or link by
    /// link as the model states it (`false`: the reference computation, for tests and
    /// benchmarks; slower, same results bit for bit).
    pub fn set_link_cache(&mut self, on: bool) {
        self.link_cache = on;
        self.links = Links::new(self.links.max);
        self.shadows = Shadows::default();
    }

    /// Bound the link cache to `max` links (tests of the bound's policy).
    #[doc(hidden)]
    pub fn set_links_max(&mut self, max: usize) {
        self.links = Links::new(max);
    }

    /// Add a node at `pos`.
    pub fn add_node(&mut self, pos: Position, config: NodeConfig) -> NodeId {
        let id = NodeId(u32::try_from(self.nodes.len()).unwrap_or(u32::MAX));
        if config.listen != Listen::Off {
            self.grid.insert(id, pos);
            self.links.invalidate();
        }
        if config.antenna_gain_dbi > self.max_gain_dbi {
            self.links.invalidate();
        }
        self.max_gain_dbi = self.max_gain_dbi.max(config.antenna_gain_dbi);
        self.nodes.push(Node {
            pos,
            config,
            duty: DutyCycle::new(self.config.region),
            busy_until_us: 0,
        });
        id
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Position of a node.
    pub fn position(&self, node: NodeId) -> Option<Position> {
        self.node(node).map(|n| n.pos)
    }

    /// Move a node (takes effect for frames delivered from now on).
    pub fn move_node(&mut self, node: NodeId, pos: Position) -> Result<(), Refused> {
        let n = self
            .nodes
            .get_mut(node.index())
            .ok_or(Refused::UnknownNode(node))?;
        if n.config.listen != Listen::Off {
            self.grid.remove(node, n.pos);
            self.grid.insert(node, pos);
        }
        n.pos = pos;
        self.links.invalidate();
        Ok(())
    }

    /// Change what a node listens to.
    pub fn set_listen(&mut self, node: NodeId, listen: Listen) -> Result<(), Refused> {
        let n = self
            .nodes
            .get_mut(node.index())
            .ok_or(Refused::UnknownNode(node))?;
        match (n.config.listen == Listen::Off, listen == Listen::Off) {
            (true, false) => {
                self.grid.insert(node, n.pos);
                self.links.invalidate();
            }
            (false, true) => {
                self.grid.remove(node, n.pos);
                self.links.invalidate();
            }
            _ => {}
        }
        n.config.listen = listen;
        Ok(())
    }

    /// Counters since the start.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// End time of the earliest undelivered frame.
    pub fn next_event_us(&self) -> Option<u64> {
        self.pending.peek().map(|Reverse((end, _))| *end)
    }

    /// Put a frame on the air at `now_us`, if the node is idle and the regional rules allow.
    ///
    /// `now_us` must not be earlier than the `until_us` of the last [`Self::deliveries`].
    pub fn transmit(
        &mut self,
        now_us: u64,
        node: NodeId,
        params: &TxParams,
        bytes: &[u8],
    ) -> Result<Transmission, Refused> {
        if now_us < self.simulated_until_us {
            return Err(Refused::InThePast {
                now_us,
                simulated_until_us: self.simulated_until_us,
            });
        }
        let n = self
            .nodes
            .get_mut(node.index())
            .ok_or(Refused::UnknownNode(node))?;
        if n.busy_until_us > now_us {
            self.stats.refused_busy += 1;
            return Err(Refused::Busy {
                until_us: n.busy_until_us,
            });
        }
        let grant =
            match n
                .duty
                .try_transmit(now_us, params.freq_hz, params.modulation, bytes.len())
            {
                Ok(g) => g,
                Err(r) => {
                    self.stats.refused_regional += 1;
                    return Err(Refused::Regional(r));
                }
            };
        let end_us = now_us + u64::from(grant.airtime_us);
        n.busy_until_us = end_us;
        let id = self.next_tx;
        self.next_tx += 1;
        self.recent.insert(
            id,
            Frame {
                from: node,
                start_us: now_us,
                end_us,
                freq_hz: params.freq_hz,
                modulation: params.modulation,
                eirp_dbm: f64::from(params.power_dbm) + n.config.antenna_gain_dbi,
                bytes: bytes.into(),
            },
        );
        self.pending.push(Reverse((end_us, id)));
        self.stats.transmitted += 1;
        Ok(Transmission {
            id: TxId(id),
            airtime_us: grant.airtime_us,
            end_us,
        })
    }

    /// Decide every frame that ends at or before `until_us`; return its receptions, ordered
    /// by (end time, transmission, receiver).
    pub fn deliveries(&mut self, until_us: u64) -> Vec<Delivery> {
        let mut out = Vec::new();
        while let Some(&Reverse((end, id))) = self.pending.peek() {
            if end > until_us {
                break;
            }
            self.pending.pop();
            if self.link_cache {
                self.decide(id, &mut out);
            } else {
                self.decide_reference(id, &mut out);
            }
        }
        self.simulated_until_us = self.simulated_until_us.max(until_us);
        self.prune();
        out
    }

    fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.index())
    }

    /// Drop frames that can no longer overlap an undelivered or a future frame.
    fn prune(&mut self) {
        let oldest_pending_start = self
            .pending
            .iter()
            .filter_map(|Reverse((_, id))| self.recent.get(id).map(|f| f.start_us))
            .min()
            .unwrap_or(u64::MAX);
        let horizon = oldest_pending_start.min(self.simulated_until_us);
        self.recent.retain(|_, f| f.end_us > horizon);
    }

    /// Compute `from`'s links for a frame at `eirp_dbm` in `m` unless they are current.
    /// False if there is no such node.
    fn ensure_links(&mut self, from: NodeId, eirp_dbm: f64, m: Modulation) -> bool {
        if self.links.row(from, eirp_dbm, m).is_some() {
            return true;
        }
        let Some(sender) = self.nodes.get(from.index()) else {
            return false;
        };
        let (sensitivity_dbm, noise_dbm, range) =
            reach(&self.config, self.max_gain_dbi, eirp_dbm, m);
        let mut candidates = std::mem::take(&mut self.scratch);
        candidates.clear();
        self.grid.around(sender.pos, range, &mut candidates);
        candidates.sort_unstable();
        let p = &self.config.propagation;
        let links = candidates
            .iter()
            .filter(|&&rx_id| rx_id != from)
            .filter_map(|&rx_id| {
                let rx = self.nodes.get(rx_id.index())?;
                let shadowing = p.shadowing_db(self.config.seed, from.0, rx_id.0);
                Some((rx_id, link_rssi_dbm(p, eirp_dbm, sender.pos, rx, shadowing)))
            })
            .collect();
        self.scratch = candidates;
        let row = Row {
            generation: self.links.generation,
            eirp_bits: eirp_dbm.to_bits(),
            sf: m.sf,
            bw: m.bw,
            sensitivity_dbm,
            noise_dbm,
            links,
        };
        self.links.store(from, row);
        true
    }

    /// Decide frame `id` from its sender's links: exactly [`Self::decide_reference`].
    fn decide(&mut self, id: u64, out: &mut Vec<Delivery>) {
        let Some(f) = self.recent.get(&id) else {
            return;
        };
        let (from, eirp_dbm, m) = (f.from, f.eirp_dbm, f.modulation);
        if !self.ensure_links(from, eirp_dbm, m) {
            return;
        }
        let Self {
            config,
            nodes,
            recent,
            fading,
            stats,
            links,
            ..
        } = self;
        let (Some(frame), Some(row)) = (recent.get(&id), links.row(from, eirp_dbm, m)) else {
            return;
        };
        let overlapping: Vec<&Frame> = recent
            .iter()
            .filter(|(gid, g)| {
                **gid != id && g.start_us < frame.end_us && g.end_us > frame.start_us
            })
            .map(|(_, g)| g)
            .collect();
        let (sensitivity, noise) = (row.sensitivity_dbm, row.noise_dbm);
        for &(rx_id, link_rssi) in &row.links {
            let Some(rx) = nodes.get(rx_id.index()) else {
                continue;
            };
            if !rx.config.listen.hears(frame.freq_hz, m) {
                continue;
            }
            let mut rssi = link_rssi;
            if config.fading_sigma_db > 0.0 {
                let z = model::standard_normal(fading).clamp(-3.0, 3.0);
                rssi += z * config.fading_sigma_db;
            }
            if rssi < sensitivity {
                stats.below_sensitivity += 1;
                continue;
            }
            if overlapping.iter().any(|g| g.from == rx_id) {
                stats.lost_half_duplex += 1;
                continue;
            }
            let captured = overlapping
                .iter()
                .filter(|g| {
                    g.freq_hz == frame.freq_hz && g.modulation.sf == m.sf && g.modulation.bw == m.bw
                })
                .all(|g| {
                    rssi >= interferer_rssi_dbm(config, nodes, links, g, rx_id, rx)
                        + config.capture_threshold_db
                });
            if !captured {
                stats.lost_collision += 1;
                continue;
            }
            stats.delivered += 1;
            out.push(delivery(id, frame, rx_id, rssi, noise));
        }
    }

    fn rssi_dbm(&self, shadows: &mut Shadows, frame: &Frame, rx: &Node, rx_id: NodeId) -> f64 {
        let (Some(tx), p) = (self.node(frame.from), &self.config.propagation) else {
            return f64::NEG_INFINITY;
        };
        let shadowing = shadows.get(p, self.config.seed, frame.from.0, rx_id.0);
        link_rssi_dbm(p, frame.eirp_dbm, tx.pos, rx, shadowing)
    }

    /// The reference computation: frame `id` evaluated link by link, as the model states
    /// it (the decision of every version before the link cache).
    fn decide_reference(&mut self, id: u64, out: &mut Vec<Delivery>) {
        let Some(frame) = self.recent.get(&id).cloned() else {
            return;
        };
        let Some(sender) = self.node(frame.from).cloned() else {
            return;
        };
        let m = frame.modulation;
        let (sensitivity, noise, range) = reach(&self.config, self.max_gain_dbi, frame.eirp_dbm, m);
        let overlapping: Vec<(u64, Frame)> = self
            .recent
            .iter()
            .filter(|(gid, g)| {
                **gid != id && g.start_us < frame.end_us && g.end_us > frame.start_us
            })
            .map(|(gid, g)| (*gid, g.clone()))
            .collect();
        let mut candidates = std::mem::take(&mut self.scratch);
        let mut shadows = std::mem::take(&mut self.shadows);
        candidates.clear();
        self.grid.around(sender.pos, range, &mut candidates);
        candidates.sort_unstable();
        for &rx_id in &candidates {
            if rx_id == frame.from {
                continue;
            }
            let Some(rx) = self.nodes.get(rx_id.index()) else {
                continue;
            };
            if !rx.config.listen.hears(frame.freq_hz, m) {
                continue;
            }
            let mut rssi = self.rssi_dbm(&mut shadows, &frame, rx, rx_id);
            if self.config.fading_sigma_db > 0.0 {
                let z = model::standard_normal(&mut self.fading).clamp(-3.0, 3.0);
                rssi += z * self.config.fading_sigma_db;
            }
            if rssi < sensitivity {
                self.stats.below_sensitivity += 1;
                continue;
            }
            if overlapping.iter().any(|(_, g)| g.from == rx_id) {
                self.stats.lost_half_duplex += 1;
                continue;
            }
            let captured = overlapping
                .iter()
                .filter(|(_, g)| {
                    g.freq_hz == frame.freq_hz && g.modulation.sf == m.sf && g.modulation.bw == m.bw
                })
                .all(|(_, g)| {
                    rssi >= self.rssi_dbm(&mut shadows, g, rx, rx_id)
                        + self.config.capture_threshold_db
                });
            if !captured {
                self.stats.lost_collision += 1;
                continue;
            }
            self.stats.delivered += 1;
            out.push(delivery(id, &frame, rx_id, rssi, noise));
        }
        self.scratch = candidates;
        self.shadows = shadows;
    }
}

/// Signal at `rx` of the overlapping frame `g`, without fading: from `g`'s sender's links
/// when they are current, else from the model.
fn interferer_rssi_dbm(
    config: &Config,
    nodes: &[Node],
    links: &Links,
    g: &Frame,
    rx_id: NodeId,
    rx: &Node,
) -> f64 {
    if let Some(row) = links.row(g.from, g.eirp_dbm, g.modulation)
        && let Ok(k) = row.links.binary_search_by_key(&rx_id, |(r, _)| *r)
    {
        return row.links[k].1;
    }
    let Some(tx) = nodes.get(g.from.index()) else {
        return f64::NEG_INFINITY;
    };
    let p = &config.propagation;
    let shadowing = p.shadowing_db(config.seed, g.from.0, rx_id.0);
    link_rssi_dbm(p, g.eirp_dbm, tx.pos, rx, shadowing)
}

fn delivery(id: u64, frame: &Frame, to: NodeId, rssi: f64, noise: f64) -> Delivery {
    let m = frame.modulation;
    Delivery {
        to,
        from: frame.from,
        tx: TxId(id),
        bytes: frame.bytes.clone(),
        meta: RxMeta {
            rssi_dbm: round_i16(rssi),
            signal_rssi_dbm: None,
            snr: Snr(round_i16((rssi - noise) * 4.0)),
            freq_hz: frame.freq_hz,
            sf: m.sf,
            bw: m.bw,
            timestamp_us: frame.end_us,
            freq_offset_hz: None,
        },
    }
}

fn round_i16(x: f64) -> i16 {
    // `as` saturates and maps NaN to 0.
    x.round() as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(links_max: usize) -> (Channel, Vec<NodeId>) {
        let mut ch = Channel::new(Config::new(5));
        ch.set_links_max(links_max);
        for k in 0..6 {
            let x = f64::from(k) * 3_000.0;
            ch.add_node(Position::new(x, x / 2.0), NodeConfig::gateway());
        }
        let devices = (0..40)
            .map(|k| {
                let p = Position::new(f64::from(k) * 450.0, f64::from(k % 7) * 900.0);
                ch.add_node(p, NodeConfig::device())
            })
            .collect();
        (ch, devices)
    }

    fn send_all(ch: &mut Channel, devices: &[NodeId], t0: u64) {
        let params = TxParams {
            freq_hz: 868_100_000,
            modulation: Modulation::new(SpreadingFactor::_9, Bandwidth::_125KHz),
            power_dbm: 14,
        };
        for (k, &d) in devices.iter().enumerate() {
            ch.transmit(t0 + k as u64 * 100_000, d, &params, b"frame")
                .unwrap();
        }
        ch.deliveries(t0 + 100_000_000);
    }

    /// Each cached link holds the signal as the model's formula states it, bit for bit.
    #[test]
    fn cached_links_are_the_models_bits() {
        let (mut ch, devices) = world(LINKS_MAX);
        send_all(&mut ch, &devices, 0);
        let p = ch.config.propagation;
        let mut seen = 0;
        for (from, row) in ch.links.rows.iter().enumerate() {
            let Some(row) = row else { continue };
            let tx = &ch.nodes[from];
            for &(to, got) in &row.links {
                let rx = &ch.nodes[to.index()];
                let want = (14.0 + tx.config.antenna_gain_dbi) + rx.config.antenna_gain_dbi
                    - p.mean_path_loss_db(tx.pos.distance_m(rx.pos))
                    - p.shadowing_db(ch.config.seed, from as u32, to.0);
                assert_eq!(got.to_bits(), want.to_bits(), "{from} -> {to:?}");
                seen += 1;
            }
        }
        assert_eq!(seen, devices.len() * 6);
        assert_eq!(ch.links.len, seen);
    }

    /// At the bound, a list that does not fit empties the cache: never more than
    /// `max` links held (a list of `max` or fewer), and the lists come back at the
    /// senders' next frames.
    #[test]
    fn link_cache_bound() {
        let (mut ch, devices) = world(15);
        send_all(&mut ch, &devices, 0);
        let held = |ch: &Channel| {
            let n: usize = ch.links.rows.iter().flatten().map(|r| r.links.len()).sum();
            assert_eq!(n, ch.links.len);
            n
        };
        assert!(held(&ch) <= 15 && held(&ch) > 0);
        // Six links a sender: two lists fit, the third empties the cache.
        assert_eq!(ch.links.rows.iter().flatten().count(), 2);
        let (mut unbounded, _) = world(LINKS_MAX);
        send_all(&mut unbounded, &devices, 0);
        send_all(&mut ch, &devices, 3_600_000_000);
        send_all(&mut unbounded, &devices, 3_600_000_000);
        assert_eq!(ch.stats(), unbounded.stats());
        assert_eq!(held(&unbounded), devices.len() * 6);
    }

    /// The cache answers what the model draws, for either direction of a link, before
    /// and after the draw is cached.
    #[test]
    fn cached_shadowing_is_the_models() {
        let p = Propagation::default();
        let mut cache = Shadows::default();
        for (a, b) in [
            (1, 2),
            (2, 1),
            (7, 40_000),
            (40_000, 7),
            (3, 3),
            (1, 2),
            (1, 0),
        ] {
            let want = p.shadowing_db(11, a, b);
            assert_eq!(cache.get(&p, 11, a, b).to_bits(), want.to_bits());
            assert_eq!(cache.get(&p, 11, a, b).to_bits(), want.to_bits());
        }
        assert_eq!(cache.len, 6);
        assert_eq!(
            cache.rows[1],
            [(0, p.shadowing_db(11, 0, 1)), (2, p.shadowing_db(11, 1, 2))]
        );
        assert_ne!(cache.get(&p, 11, 1, 2), 0.0);
    }
}
