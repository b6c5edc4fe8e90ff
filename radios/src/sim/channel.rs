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
    /// Shadowing of the links evaluated so far (a pure function of the seed and the
    /// link, cached: drawing it costs a seeded ChaCha block, a log and a cosine).
    shadows: Shadows,
}

/// Links whose shadowing the cache holds at most; a full cache is emptied (the values
/// are recomputed, identically, on demand).
pub const SHADOWS_MAX: usize = 1 << 22;

/// The shadowing cache: for each transmitting node, the receivers evaluated so far and
/// the shadowing of each link, sorted by receiver. A frame is evaluated at every
/// receiver in range, all in its sender's row: one row in cache instead of one random
/// probe of a big map per receiver.
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
            shadows: Shadows::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Add a node at `pos`.
    pub fn add_node(&mut self, pos: Position, config: NodeConfig) -> NodeId {
        let id = NodeId(u32::try_from(self.nodes.len()).unwrap_or(u32::MAX));
        if config.listen != Listen::Off {
            self.grid.insert(id, pos);
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
        Ok(())
    }

    /// Change what a node listens to.
    pub fn set_listen(&mut self, node: NodeId, listen: Listen) -> Result<(), Refused> {
        let n = self
            .nodes
            .get_mut(node.index())
            .ok_or(Refused::UnknownNode(node))?;
        match (n.config.listen == Listen::Off, listen == Listen::Off) {
            (true, false) => self.grid.insert(node, n.pos),
            (false, true) => self.grid.remove(node, n.pos),
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
            self.decide(id, &mut out);
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

    fn rssi_dbm(&self, shadows: &mut Shadows, frame: &Frame, rx: &Node, rx_id: NodeId) -> f64 {
        let (Some(tx), p) = (self.node(frame.from), &self.config.propagation) else {
            return f64::NEG_INFINITY;
        };
        let d = tx.pos.distance_m(rx.pos);
        frame.eirp_dbm + rx.config.antenna_gain_dbi
            - p.mean_path_loss_db(d)
            - shadows.get(p, self.config.seed, frame.from.0, rx_id.0)
    }

    fn decide(&mut self, id: u64, out: &mut Vec<Delivery>) {
        let Some(frame) = self.recent.get(&id).cloned() else {
            return;
        };
        let Some(sender) = self.node(frame.from).cloned() else {
            return;
        };
        let m = frame.modulation;
        let nf = self.config.noise_figure_db;
        let sensitivity = model::sensitivity_dbm(m.sf, m.bw, nf);
        let noise = model::noise_floor_dbm(m.bw, nf);
        // Fading can only help up to 3σ, like shadowing.
        let range = Propagation::max_distance_m(
            &self.config.propagation,
            frame.eirp_dbm + self.max_gain_dbi + 3.0 * self.config.fading_sigma_db - sensitivity,
        );
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
            out.push(Delivery {
                to: rx_id,
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
            });
        }
        self.scratch = candidates;
        self.shadows = shadows;
    }
}

fn round_i16(x: f64) -> i16 {
    // `as` saturates and maps NaN to 0.
    x.round() as i16
}

#[cfg(test)]
mod tests {
    use super::*;

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
