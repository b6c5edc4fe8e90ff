//! The gateways of a live run: `G` real `slope_mesh::Node`s in this process, each with
//! its own temporary data directory (redb, fsync off), identity and config, on one
//! manual clock the harness drives, peered over loopback TCP.
//!
//! Topology: node `i` bootstraps to the last earlier node on its side of the
//! scenario's cut (node `i − 1` when there is no cut, or none earlier on its side) and
//! to two earlier nodes drawn from the seed (a spanning tree, so the mesh is connected
//! by construction, and so is each side of a cut), and nothing else: Kademlia runs in client mode (`Options::discovery = false`), so it neither
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
use slope_mesh::node::{Multiaddr, PeerId};
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
    /// Devices each gateway tracks at most (`verifier.max_devices` and the trust
    /// engine's `max_newcomers`); `None`: the daemon's defaults.
    pub max_devices: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            heartbeat_ms: 1_000,
            settle_timeout: Duration::from_secs(30),
            max_devices: None,
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
    /// Where each gateway listens (with its peer id), by index.
    pub addrs: Vec<Multiaddr>,
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
pub fn identity(seed: u64, g: usize) -> Identity {
    let mut h = blake3::Hasher::new_derive_key("slope-testnet live gateway identity");
    h.update(&seed.to_le_bytes());
    h.update(&(g as u64).to_le_bytes());
    Identity::from_seed(*h.finalize().as_bytes())
}

impl Cluster {
    /// Starts `zones.len()` gateways (gateway `g` in trust zone `zones[g]`, on side
    /// `sides[g]` of a cut; all `false` without one) and waits, with a bound, until
    /// every one has a peer.
    pub async fn start(
        seed: u64,
        zones: &[u16],
        sides: &[bool],
        options: Options,
    ) -> Result<Self, Error> {
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
                let side = sides.get(g).copied().unwrap_or(false);
                let same = (0..g)
                    .rev()
                    .find(|&h| sides.get(h).copied().unwrap_or(false) == side)
                    .unwrap_or(g - 1);
                boot.push(addrs[same].clone());
                for _ in 0..2 {
                    let j = rng.gen_range(0..g);
                    if !boot.contains(&addrs[j]) {
                        boot.push(addrs[j].clone());
                    }
                }
            }
            c.network.bootstrap = boot;
            c.radio.forwarder = String::new();
            if let Some(max) = options.max_devices {
                c.verifier.max_devices = max;
                c.trust.policy.bounds.max_newcomers = u32::try_from(max).unwrap_or(u32::MAX);
            }
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
        let addrs = addrs
            .iter()
            .map(|a| a.parse().map_err(net))
            .collect::<Result<Vec<Multiaddr>, Error>>()?;
        let mut cluster = Self {
            gateways,
            addrs,
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

    /// Each node's index by its peer id as the nodes' peer lists name it.
    fn peer_index(&self) -> std::collections::HashMap<String, usize> {
        self.gateways
            .iter()
            .enumerate()
            .map(|(i, g)| (g.handle.peer_id().to_string(), i))
            .collect()
    }

    /// Connected components of the peer graph and the mean number of peers.
    pub async fn topology(&self) -> Result<(usize, f64), Error> {
        let n = self.gateways.len();
        let index = self.peer_index();
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

    /// The links connected now, as `(i, j)` with `i < j`, from every node's peer list.
    pub async fn links(&self) -> Result<Vec<(usize, usize)>, Error> {
        let index = self.peer_index();
        let mut out = std::collections::BTreeSet::new();
        for (i, g) in self.gateways.iter().enumerate() {
            for p in g.handle.peers().await.map_err(net)? {
                if let Some(&j) = index.get(&p.peer_id) {
                    out.insert((i.min(j), i.max(j)));
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Links connected now between the two sides of `sides`.
    pub async fn crossing(&self, sides: &[bool]) -> Result<usize, Error> {
        Ok(self
            .links()
            .await?
            .iter()
            .filter(|(i, j)| sides.get(*i) != sides.get(*j))
            .count())
    }

    /// Cuts the mesh in two: every node blocks every node of the other side (its
    /// connections to them close, every dial either way — Kademlia's, identify's, a
    /// re-dial — is refused: `Handle::block`), then waits, bounded, until no
    /// connection crosses. Returns the links that crossed before the cut and whether
    /// none crosses now.
    pub async fn cut(&mut self, sides: &[bool]) -> Result<(Vec<(usize, usize)>, bool), Error> {
        let before: Vec<(usize, usize)> = self
            .links()
            .await?
            .into_iter()
            .filter(|(i, j)| sides.get(*i) != sides.get(*j))
            .collect();
        self.block_across(sides, true).await?;
        let deadline = Instant::now() + self.options.settle_timeout;
        loop {
            if self.crossing(sides).await? == 0 {
                return Ok((before, true));
            }
            if Instant::now() > deadline {
                return Ok((before, false));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Every node blocks (or unblocks) every node of the other side.
    async fn block_across(&self, sides: &[bool], block: bool) -> Result<(), Error> {
        let ids: Vec<PeerId> = self.gateways.iter().map(|g| g.handle.peer_id()).collect();
        for (i, g) in self.gateways.iter().enumerate() {
            for (j, id) in ids.iter().enumerate() {
                if sides.get(i) != sides.get(j) {
                    if block {
                        g.handle.block(*id).await.map_err(net)?;
                    } else {
                        g.handle.unblock(*id).await.map_err(net)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Heals a [`Self::cut`]: every node unblocks the other side, and each link that
    /// crossed before the cut is dialled again (nothing else reconnects them: the
    /// nodes do not re-dial by themselves). Waits, bounded, until those links are up;
    /// returns how many are. What the two sides missed is then the sync protocol's
    /// work: a node asks a new peer for its summary on connection.
    pub async fn heal(&mut self, sides: &[bool], links: &[(usize, usize)]) -> Result<usize, Error> {
        self.block_across(sides, false).await?;
        let deadline = Instant::now() + self.options.settle_timeout;
        let mut down: Vec<(usize, usize)> = links.to_vec();
        let mut polls = 0u32;
        loop {
            // Dial what is still down (again every second: a dial that raced the other
            // end's unblock was refused).
            if polls % 50 == 0 {
                for &(i, j) in &down {
                    if let (Some(g), Some(a)) = (self.gateways.get(i), self.addrs.get(j)) {
                        g.handle.dial(a.clone()).await.map_err(net)?;
                    }
                }
            }
            polls += 1;
            tokio::time::sleep(POLL).await;
            let now: std::collections::HashSet<(usize, usize)> =
                self.links().await?.into_iter().collect();
            down.retain(|l| !now.contains(l));
            if down.is_empty() || Instant::now() > deadline {
                return Ok(links.len() - down.len());
            }
        }
    }

    /// Gateway `g` dials every other gateway (a rogue that wants its gossip to reach
    /// every node directly); waits, bounded, until it is connected to all. Returns its
    /// peers then.
    pub async fn connect_all(&self, g: usize) -> Result<usize, Error> {
        let Some(from) = self.gateways.get(g) else {
            return Ok(0);
        };
        for (j, a) in self.addrs.iter().enumerate() {
            if j != g {
                from.handle.dial(a.clone()).await.map_err(net)?;
            }
        }
        let want = self.gateways.len().saturating_sub(1);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let n = from.handle.peers().await.map_err(net)?.len();
            if n >= want || Instant::now() > deadline {
                return Ok(n);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// One step: the clock moves to `now_ms`, the receptions go to the radios of the
    /// gateways that heard them, the mesh settles; then the clock moves past the
    /// gossip receipt wait and the mesh settles again.
    pub async fn step(&mut self, now_ms: u64, receptions: &[Reception], receipt_wait_ms: u64) {
        self.inject(now_ms, receptions).await;
        self.settle().await;
        self.advance(now_ms + receipt_wait_ms + 1).await;
        self.settle().await;
    }

    /// The first half of a [`Self::step`]: the clock moves to `now_ms` and the
    /// receptions go to the radios (nothing waits).
    pub async fn inject(&mut self, now_ms: u64, receptions: &[Reception]) {
        self.advance(now_ms).await;
        for r in receptions {
            if let Some(g) = self.gateways.get(usize::from(r.gateway)) {
                g.handle.radio().push(Uplink {
                    frame: r.envelope.to_vec(),
                    rx: r.rx,
                });
            }
        }
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
    /// Sync responses received, summed over the gateways.
    pub fn sync_responses(&self) -> u64 {
        self.gateways
            .iter()
            .map(|g| {
                g.handle
                    .metrics()
                    .sync
                    .get_or_create(&kind("response_in"))
                    .get()
            })
            .sum()
    }

    /// The clock's time, ms.
    pub fn clock_ms(&self) -> u64 {
        use slope_mesh::clock::Clock;
        self.clock.now_ms()
    }
}
