//! The gateways of a live run: `G` real `slope_mesh::Node`s in this process, each with
//! its own temporary data directory (redb, fsync off), identity and config, on one
//! manual clock the harness drives, peered over loopback TCP.
//!
//! Topology: node `i` bootstraps to node `i − 1` and to two earlier nodes drawn from
//! the seed (a spanning tree, so the mesh is connected by construction), and nothing
//! else: Kademlia runs in client mode (`Options::discovery = false`), so it neither
//! answers nor asks the DHT (in server mode its bootstrap queries connected 64 nodes
//! to 54 peers each, which at 300 nodes outgrows the file descriptors of one process).
//! Every node lists every other as
//! a witness whose receipts count, in the trust zone the simulated layer gives its site
//! (a 2 × 2 block of the grid).
//!
//! Settling: after the harness injects a window's receptions and moves the clock, it
//! polls every node's counters (radio queue, ingest, gossip bytes and validations,
//! receipts, divergences, sync) and calls the mesh settled when nothing moved for
//! [`QUIET_POLLS`] polls [`POLL`] apart, with a bound ([`Options::settle_timeout`]):
//! a step that hits the bound is counted and reported, never hidden.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use slope_mesh::clock::Manual;
use slope_mesh::config::{Config, Witness};
use slope_mesh::identity::Identity;
use slope_mesh::metrics::{Metrics, kind};
use slope_mesh::node::{Event, Options as NodeOptions};
use slope_mesh::source::Uplink;
use slope_mesh::{Handle, Node};
use slope_proto::DeviceId;

use crate::error::Error;
use crate::world::Reception;

/// Interval between two polls of the nodes' counters while settling.
pub const POLL: Duration = Duration::from_millis(20);
/// Polls without change that make the mesh settled.
pub const QUIET_POLLS: u32 = 4;
/// Peers beyond which a node stops dialling what Kademlia finds (connections it
/// accepts are not capped).
pub const MAX_CONNECTIONS: u32 = 8;

/// How the gateways run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Gossipsub heartbeat, ms (real time).
    pub heartbeat_ms: u64,
    /// Bound on one settling wait.
    pub settle_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            heartbeat_ms: 1_000,
            settle_timeout: Duration::from_secs(30),
        }
    }
}

/// A quarantine a node announced: device, node time (virtual ms), wall instant.
pub type Quarantine = (DeviceId, u64, Instant);

/// One gateway.
pub struct Gateway {
    pub handle: Handle,
    /// What its event collector heard, in order.
    pub quarantines: Arc<Mutex<Vec<Quarantine>>>,
    collector: tokio::task::JoinHandle<u64>,
    _dir: tempfile::TempDir,
}

/// The running gateways and their clock.
pub struct Cluster {
    pub gateways: Vec<Gateway>,
    pub clock: Manual,
    pub options: Options,
    /// Settling waits that hit their bound.
    pub settle_timeouts: u64,
    /// Settling waits done.
    pub settles: u64,
}

fn net(e: impl std::fmt::Display) -> Error {
    Error::Live(e.to_string())
}

/// The identity of gateway `g` in the run seeded `seed`.
fn identity(seed: u64, g: usize) -> Identity {
    let mut h = blake3::Hasher::new_derive_key("slope-testnet live gateway identity");
    h.update(&seed.to_le_bytes());
    h.update(&(g as u64).to_le_bytes());
    Identity::from_seed(*h.finalize().as_bytes())
}

impl Cluster {
    /// Starts `zones.len()` gateways (gateway `g` in trust zone `zones[g]`) and waits,
    /// with a bound, until every one has a peer.
    pub async fn start(seed: u64, zones: &[u16], options: Options) -> Result<Self, Error> {
        let g_count = zones.len();
        let ids: Vec<Identity> = (0..g_count).map(|g| identity(seed, g)).collect();
        let witnesses: Vec<Witness> = ids
            .iter()
            .zip(zones)
            .map(|(id, &zone)| Witness {
                key: hex(id.signing_key().verifying_key().as_bytes()),
                zone,
            })
            .collect();
        let clock = Manual::at(0);
        let mut rng = ChaCha12Rng::seed_from_u64(seed ^ 0x6c69_7665);
        let mut addrs: Vec<String> = Vec::with_capacity(g_count);
        let mut gateways = Vec::with_capacity(g_count);
        for (g, id) in ids.into_iter().enumerate() {
            let dir = tempfile::tempdir().map_err(net)?;
            let mut c = Config {
                data_dir: dir.path().to_owned(),
                ..Config::default()
            };
            c.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
            c.network.mdns = false;
            c.network.heartbeat_ms = options.heartbeat_ms;
            // Sync on connection and at the end of the run (the harness asks), not
            // periodically: a wall-clock round would land between virtual steps.
            c.network.sync_interval_ms = 3_600_000;
            c.network.sync_fanout = 2;
            c.network.max_connections = MAX_CONNECTIONS;
            let mut boot = Vec::new();
            if g > 0 {
                boot.push(addrs[g - 1].clone());
                for _ in 0..2 {
                    let j = rng.gen_range(0..g);
                    if !boot.contains(&addrs[j]) {
                        boot.push(addrs[j].clone());
                    }
                }
            }
            c.network.bootstrap = boot;
            c.radio.forwarder = String::new();
            c.trust.witnesses = witnesses
                .iter()
                .enumerate()
                .filter(|(h, _)| *h != g)
                .map(|(_, w)| w.clone())
                .collect();
            let node_options = NodeOptions {
                clock: Arc::new(clock.clone()),
                fsync: false,
                events: 4096,
                discovery: false,
                ..NodeOptions::default()
            };
            let handle = Node::start_with(c, id, node_options)
                .await
                .map_err(|e| Error::Live(format!("gateway {g}: {e}")))?;
            addrs.push(listen_addr(&handle).await?);
            let quarantines = Arc::new(Mutex::new(Vec::new()));
            let collector = collect(&handle, quarantines.clone());
            gateways.push(Gateway {
                handle,
                quarantines,
                collector,
                _dir: dir,
            });
        }
        let mut cluster = Self {
            gateways,
            clock,
            options,
            settle_timeouts: 0,
            settles: 0,
        };
        cluster.connected().await?;
        Ok(cluster)
    }

    /// Waits (bounded) until every gateway has a peer, then lets gossipsub form its
    /// meshes for three heartbeats (a warm-up, not a check).
    async fn connected(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(60 + self.gateways.len() as u64 / 2);
        while self
            .gateways
            .iter()
            .any(|g| g.handle.metrics().peers.get() < 1)
        {
            if Instant::now() > deadline {
                let alone = self
                    .gateways
                    .iter()
                    .filter(|g| g.handle.metrics().peers.get() < 1)
                    .count();
                return Err(Error::Live(format!("{alone} gateways found no peer")));
            }
            tokio::time::sleep(POLL).await;
        }
        tokio::time::sleep(Duration::from_millis(3 * self.options.heartbeat_ms)).await;
        Ok(())
    }

    /// Connected components of the peer graph and the mean number of peers.
    pub async fn topology(&self) -> Result<(usize, f64), Error> {
        let n = self.gateways.len();
        let index: std::collections::HashMap<String, usize> = self
            .gateways
            .iter()
            .enumerate()
            .map(|(i, g)| (g.handle.peer_id().to_string(), i))
            .collect();
        let mut parent: Vec<usize> = (0..n).collect();
        fn root(p: &mut [usize], mut i: usize) -> usize {
            while p[i] != i {
                p[i] = p[p[i]];
                i = p[i];
            }
            i
        }
        let mut links = 0usize;
        for (i, g) in self.gateways.iter().enumerate() {
            let peers = g.handle.peers().await.map_err(net)?;
            links += peers.len();
            for p in peers {
                if let Some(&j) = index.get(&p.peer_id) {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a] = b;
                }
            }
        }
        let components = (0..n).filter(|&i| root(&mut parent, i) == i).count();
        Ok((components, links as f64 / n.max(1) as f64))
    }

    /// One step: the clock moves to `now_ms`, the receptions go to the radios of the
    /// gateways that heard them, the mesh settles; then the clock moves past the
    /// gossip receipt wait and the mesh settles again.
    pub async fn step(&mut self, now_ms: u64, receptions: &[Reception], receipt_wait_ms: u64) {
        self.advance(now_ms).await;
        for r in receptions {
            if let Some(g) = self.gateways.get(usize::from(r.gateway)) {
                g.handle.radio().push(Uplink {
                    frame: r.envelope.to_vec(),
                    rx: r.rx,
                });
            }
        }
        self.settle().await;
        self.advance(now_ms + receipt_wait_ms + 1).await;
        self.settle().await;
    }

    /// Moves the clock forward to `ms` (never back) and tells every node.
    pub async fn advance(&self, ms: u64) {
        use slope_mesh::clock::Clock;
        if ms > self.clock.now_ms() {
            self.clock.set(ms);
        }
        for g in &self.gateways {
            let _ = g.handle.clock_moved().await;
        }
    }

    /// Asks every node for a sync round now.
    pub async fn sync_all(&self) {
        for g in &self.gateways {
            let _ = g.handle.sync_now().await;
        }
    }

    /// Waits until no counter moved for [`QUIET_POLLS`] polls (bounded).
    pub async fn settle(&mut self) {
        self.settles += 1;
        let started = Instant::now();
        let mut last = None;
        let mut quiet = 0;
        loop {
            let queued = self.gateways.iter().any(|g| !g.handle.radio().is_empty());
            let now = fingerprint(&self.gateways);
            if !queued && last == Some(now) {
                quiet += 1;
                if quiet >= QUIET_POLLS {
                    return;
                }
            } else {
                quiet = 0;
            }
            last = Some(now);
            if started.elapsed() > self.options.settle_timeout {
                self.settle_timeouts += 1;
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops every node; returns the events each collector saw.
    pub async fn shutdown(self) -> u64 {
        let mut events = 0;
        for g in self.gateways {
            g.handle.shutdown().await;
            events += g.collector.await.unwrap_or(0);
        }
        events
    }
}

/// A sum of the counters that move whenever a node does anything.
fn fingerprint(gateways: &[Gateway]) -> u64 {
    let mut sum = 0u64;
    for g in gateways {
        let m: &Metrics = g.handle.metrics();
        let family = |f: &prometheus_client::metrics::family::Family<
            slope_mesh::metrics::Kind,
            prometheus_client::metrics::counter::Counter,
        >,
                      kinds: &[&'static str]| {
            kinds
                .iter()
                .map(|k| f.get_or_create(&kind(k)).get())
                .sum::<u64>()
        };
        sum = sum
            .wrapping_add(family(&m.gossip_bytes, &["in", "out"]))
            .wrapping_add(family(&m.ingest, &["radio", "gossip", "sync", "escrow"]))
            .wrapping_add(family(&m.validation, &["accept", "ignore", "reject"]))
            .wrapping_add(family(&m.sync, &["request_in", "response_in"]))
            .wrapping_add(m.receipts_signed.get())
            .wrapping_add(m.divergences.get())
            .wrapping_add(m.queue_depth.get_or_create(&kind("gossip")).get() as u64);
    }
    sum
}

/// The node's first listen address with its peer id (bounded wait).
async fn listen_addr(h: &Handle) -> Result<String, Error> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(a) = h.listen_addrs().await.map_err(net)?.into_iter().next() {
            return Ok(a.to_string());
        }
        if Instant::now() > deadline {
            return Err(Error::Live("a gateway got no listen address".into()));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Collects the node's quarantine events with the wall instant each arrived; returns
/// how many it saw when the node stops.
fn collect(h: &Handle, into: Arc<Mutex<Vec<Quarantine>>>) -> tokio::task::JoinHandle<u64> {
    let mut rx = h.events();
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            match rx.recv().await {
                Ok(Event::Quarantined { device, at_ms }) => {
                    n += 1;
                    if let Ok(mut v) = into.lock() {
                        v.push((device, at_ms, Instant::now()));
                    }
                }
                Ok(_) => n += 1,
                // Lost events: the store still says who is quarantined, and the
                // read-back takes the time from the lineage (no wall time then).
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return n,
            }
        }
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Cluster {
    /// The clock's time, ms.
    pub fn clock_ms(&self) -> u64 {
        use slope_mesh::clock::Clock;
        self.clock.now_ms()
    }
}
