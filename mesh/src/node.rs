//! The running gateway: one event loop that owns the libp2p swarm and the ingest
//! pipeline, fed by radio sources through a [`RadioSink`], by gossip, by sync and by
//! operator commands; and the [`Handle`] to talk to it.
//!
//! Gossip attestations wait in a bounded queue (oldest dropped, and reported to
//! gossipsub as `Ignore` so nothing is held for them); radio frames are processed first
//! in every batch.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance, MessageId};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
/// The libp2p types of [`Handle`]'s signatures, for embedding programs that do not
/// depend on libp2p themselves.
pub use libp2p::{Multiaddr, PeerId};
use libp2p::{Swarm, identify, kad, mdns, noise, tcp, yamux};
use serde::Serialize;
use slope_node::verifier::Missing;
use slope_proto::DeviceId;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::config::Config;
use crate::error::Error;
use crate::identity::Identity;
use crate::lineage::Source;
use crate::metrics::{Metrics, kind};
use crate::net::sync::{self, Action, Entry, Request, Response};
use crate::net::{Behaviour, BehaviourEvent, topics};
use crate::pipeline::{Effect, Input, Output, Overlapped, Pipeline, Verdict};
use crate::source::RadioSink;
use crate::store::{DB_FILE, Store, StoreError};
use crate::trust::{Policy, Scope};

/// Gossip tag: who forwarded the message, and its id.
type Tag = Option<(PeerId, MessageId)>;

/// Sync fetches in flight at most.
const MAX_INFLIGHT_FETCH: usize = 256;
/// Summary pages asked of one peer per sync round at most (1024 × 1024 devices).
const MAX_SUMMARY_PAGES: u32 = 1024;

/// What an outstanding sync request was.
struct Outstanding {
    /// A fetch: its key in `inflight`, released when it is answered or fails.
    fetch: Option<Vec<u8>>,
    /// A summary page: the device it asked after (the next page must start later).
    after: Option<[u8; 32]>,
}

/// Missing establishment events asked for recently, remembered at most (oldest
/// forgotten first). A prefix asked for within `network.sync_interval_ms` is not asked
/// for again (counted: `slope_dropped_total{kind="fetch_repeat"}`): a device this node
/// refuses (its verifier at `max_devices`) would otherwise loop — its fetched later
/// frames go back to escrow, which asks for the inception again, which is refused.
const MAX_RECENT_MISSING: usize = 1024;

/// How often the verifier's timeouts run (escrow expiry, suite-2 frames whose key
/// never came): it visits every suite-2 device, so not per frame.
const TIMEOUT_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// A connected peer, for the API.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    pub peer_id: String,
    pub score: Option<f64>,
    /// Where it listens, as it announced through identify (at most
    /// [`MAX_PEER_ADDRS`]), then the remote address of each live connection.
    pub addresses: Vec<String>,
}

/// Addresses remembered per connected peer (identify and connection endpoints), each.
pub const MAX_PEER_ADDRS: usize = 8;

/// What the node knows of a connected peer's addresses (dropped when it disconnects).
#[derive(Debug, Default)]
struct PeerAddrs {
    /// From identify: where it listens.
    listen: Vec<Multiaddr>,
    /// Remote addresses of its live connections.
    connections: Vec<Multiaddr>,
}

/// Operator and diagnostic commands.
enum Command {
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Dial(Multiaddr),
    Release(DeviceId, String, oneshot::Sender<Result<bool, StoreError>>),
    Pin(
        DeviceId,
        Option<Scope>,
        String,
        oneshot::Sender<Result<bool, StoreError>>,
    ),
    PublishRaw(&'static str, Vec<u8>),
    /// Block (`true`) or unblock a peer.
    Block(PeerId, bool),
    SyncNow,
    /// Nothing to do: the loop wakes and re-reads its clock.
    ClockMoved,
    Tracked(oneshot::Sender<Tracked>),
}

/// What a node holds in memory for remote parties now, each with the configuration
/// bound that caps it ([`Handle::tracked`]). For an embedding program that checks the
/// bounds hold under load (the testnet's `sybil --live`) and for diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tracked {
    /// Devices the verifier tracks (all shards): `verifier.max_devices`.
    pub verifier_devices: usize,
    /// Suite-2 chains held and suite-2 frames waiting for their key.
    pub compact_devices: usize,
    pub compact_pending: usize,
    /// Gossip attestations waiting for verification: `ingest.queue_capacity`.
    pub gossip_queue: usize,
    /// Attestations fetched by sync waiting: `ingest.queue_capacity`.
    pub sync_queue: usize,
    /// Radio frames waiting: `ingest.queue_capacity`.
    pub radio_queue: usize,
    /// Committed attestations waiting for their decision: `ingest.receipt_wait_max`.
    pub undecided: usize,
    /// Peers' receipts held for an attestation not yet here: `ingest.pending_receipts`.
    pub pending_receipts: usize,
    /// Sync fetches in flight: 256 at most (`MAX_INFLIGHT_FETCH`).
    pub inflight_fetches: usize,
}

/// What a node did, for the program that embeds it ([`Handle::events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// `device` was quarantined here at `at_ms` (the node's clock) on a divergence proof
    /// this node found or received and verified; committed before it is announced.
    Quarantined { device: DeviceId, at_ms: u64 },
}

/// A handle to a running node.
pub struct Handle {
    peer_id: PeerId,
    store: Arc<Store>,
    metrics: Metrics,
    radio: RadioSink,
    events: broadcast::Sender<Event>,
    commands: mpsc::Sender<Command>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    api: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

/// How a node runs when it is embedded (a simulation, a test) rather than started by
/// `slope gateway`, which uses the defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// Serve the HTTP API on `config.api.listen`. Default: false.
    pub serve_api: bool,
    /// Where the node reads the time (pipeline `now`, gossip receive times, receipt
    /// waits, operator actions). Default: the system clock. A simulation passes a
    /// [`crate::clock::Manual`] it advances itself. (libp2p's own timers — heartbeats,
    /// idle timeouts — and the sync interval still run on tokio time.)
    pub clock: crate::clock::Shared,
    /// Commit each batch durably. Default: true, always for a gateway. `false` is for
    /// simulations only (see [`crate::store::Options::fsync`]): a crash may lose
    /// batches whose receipts were already gossiped.
    pub fsync: bool,
    /// Capacity of the [`Handle::events`] broadcast. Default: 1024. A subscriber that
    /// falls further behind loses the oldest events and is told how many
    /// (`broadcast::error::RecvError::Lagged`); the node never waits for it.
    pub events: usize,
    /// Find peers beyond those given: Kademlia serves and asks queries. Default: true.
    /// `false` (an embedding that sets its own topology) puts Kademlia in client mode:
    /// the node neither answers nor learns from the DHT, so it holds its bootstrap
    /// peers, the peers it is told to dial and those that dial it.
    pub discovery: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            serve_api: false,
            clock: crate::clock::system(),
            fsync: true,
            events: 1024,
            discovery: true,
        }
    }
}

/// The gateway (namespace for [`Node::start`]).
#[derive(Debug)]
pub struct Node;

impl Node {
    /// Opens the store, rebuilds the verifier from it, starts listening, dials the
    /// bootstrap peers, and (if `serve_api`) serves the HTTP API.
    pub async fn start(
        config: Config,
        identity: Identity,
        serve_api: bool,
    ) -> Result<Handle, Error> {
        let options = Options {
            serve_api,
            ..Options::default()
        };
        Self::start_with(config, identity, options).await
    }

    /// [`Self::start`] with [`Options`]: a node embedded in a simulation or a test.
    pub async fn start_with(
        config: Config,
        identity: Identity,
        options: Options,
    ) -> Result<Handle, Error> {
        let Options {
            serve_api,
            clock,
            fsync,
            events,
            discovery,
        } = options;
        let (events, _) = broadcast::channel(events.max(1));
        std::fs::create_dir_all(&config.data_dir).map_err(|e| Error::io(&config.data_dir, e))?;
        let store = Arc::new(Store::open_with(
            &config.data_dir.join(DB_FILE),
            crate::store::Options { fsync },
        )?);
        let metrics = Metrics::new();
        let pipeline = Pipeline::new(
            store.clone(),
            config.verifier,
            Box::new(Policy {
                config: config.trust.clone(),
            }),
            identity.clone(),
            metrics.clone(),
            config.ingest.frames_per_device,
            config.trust.engine.then(|| config.trust.policy.clone()),
        )?;
        let mut pipeline = pipeline;
        pipeline.set_clock(clock.clone());
        let mut witnesses = Vec::new();
        for w in &config.trust.witnesses {
            match w.key_bytes() {
                Some(k) => witnesses.push((k, w.zone)),
                None => {
                    return Err(Error::Config {
                        path: config.data_dir.clone(),
                        message: format!("[[trust.witnesses]] key {:?}: not 64 hex digits", w.key),
                    });
                }
            }
        }
        pipeline.set_receipts(crate::pipeline::Receipts {
            witnesses,
            pending: config.ingest.pending_receipts,
            pending_ttl_ms: config.ingest.pending_receipt_ttl_ms,
            wait_ms: config.ingest.receipt_wait_ms,
            waiting: config.ingest.receipt_wait_max,
        })?;
        let mut swarm = build_swarm(&config, &identity)?;
        if !discovery {
            swarm
                .behaviour_mut()
                .kad
                .set_mode(Some(libp2p::kad::Mode::Client));
        }
        let peer_id = *swarm.local_peer_id();
        let radio = RadioSink::new(config.ingest.queue_capacity, metrics.clone());
        let (commands, command_rx) = mpsc::channel(64);
        let (stop, stop_rx) = watch::channel(false);
        let mut runtime = Runtime {
            swarm,
            pipeline,
            overlap: Overlapped::new(config.ingest.commit_max),
            radio: radio.clone(),
            gossip: VecDeque::new(),
            synced: VecDeque::new(),
            config: config.clone(),
            metrics: metrics.clone(),
            requests: HashMap::new(),
            summary_pages: HashMap::new(),
            peer_addrs: HashMap::new(),
            clock,
            inflight: HashSet::new(),
            recent_missing: VecDeque::new(),
            sync_cursor: 0,
            events: events.clone(),
        };
        runtime.listen_and_bootstrap()?;
        let task = tokio::spawn(runtime.run(command_rx, stop_rx.clone()));
        let api = if serve_api {
            let listener = tokio::net::TcpListener::bind(config.api.listen)
                .await
                .map_err(|e| Error::Network(format!("API {}: {e}", config.api.listen)))?;
            let addr = listener
                .local_addr()
                .map_err(|e| Error::Network(e.to_string()))?;
            let state = crate::api::State {
                store: store.clone(),
                metrics: metrics.clone(),
                node: ApiPort {
                    commands: commands.clone(),
                },
                token: config.api.token.clone(),
                peer_id: peer_id.to_string(),
                witness: hex::encode(identity.witness_id().0),
                witness_key: hex::encode(identity.signing_key().verifying_key().as_bytes()),
            };
            let mut stop = stop_rx;
            let server = tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                if let Err(e) = crate::api::serve(listener, state, shutdown).await {
                    tracing::error!(error = %e, "API server stopped");
                }
            });
            tracing::info!(%addr, "operator API listening");
            Some((addr, server))
        } else {
            None
        };
        tracing::info!(%peer_id, witness = %hex::encode(identity.witness_id().0), "gateway started");
        Ok(Handle {
            peer_id,
            store,
            metrics,
            radio,
            events,
            commands,
            stop,
            task,
            api,
        })
    }
}

/// What the API may ask of the node.
#[derive(Clone)]
pub struct ApiPort {
    commands: mpsc::Sender<Command>,
}

/// Sends the node's loop a command that carries a reply channel (made by `command`
/// from its sender) and waits for the reply; a loop that stopped is `Error::Stopped`.
async fn ask<T>(
    commands: &mpsc::Sender<Command>,
    command: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Result<T, Error> {
    let (tx, rx) = oneshot::channel();
    commands
        .send(command(tx))
        .await
        .map_err(|_| Error::Stopped)?;
    rx.await.map_err(|_| Error::Stopped)
}

impl ApiPort {
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, Error> {
        ask(&self.commands, Command::Peers).await
    }
    pub async fn release(&self, device: DeviceId, note: String) -> Result<bool, Error> {
        Ok(ask(&self.commands, |tx| Command::Release(device, note, tx)).await??)
    }
    pub async fn pin(
        &self,
        device: DeviceId,
        scope: Option<Scope>,
        note: String,
    ) -> Result<bool, Error> {
        Ok(ask(&self.commands, |tx| Command::Pin(device, scope, note, tx)).await??)
    }
}

impl Handle {
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    /// Where radio sources push frames.
    pub fn radio(&self) -> &RadioSink {
        &self.radio
    }
    /// What the node does from now on ([`Event`]), bounded by [`Options::events`].
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
    /// The API's bound address, if it serves one.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api.as_ref().map(|(a, _)| *a)
    }
    fn port(&self) -> ApiPort {
        ApiPort {
            commands: self.commands.clone(),
        }
    }
    /// Connected peers with their gossipsub scores.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, Error> {
        self.port().peers().await
    }
    /// The addresses the swarm listens on (with `/p2p/<id>` appended).
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, Error> {
        ask(&self.commands, Command::ListenAddrs).await
    }
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), Error> {
        self.commands
            .send(Command::Dial(addr))
            .await
            .map_err(|_| Error::Stopped)
    }
    /// Operator: release from quarantine.
    pub async fn release(&self, device: DeviceId, note: String) -> Result<bool, Error> {
        self.port().release(device, note).await
    }
    /// Operator: pin a scope.
    pub async fn pin(
        &self,
        device: DeviceId,
        scope: Option<Scope>,
        note: String,
    ) -> Result<bool, Error> {
        self.port().pin(device, scope, note).await
    }
    /// Starts a sync round now.
    pub async fn sync_now(&self) -> Result<(), Error> {
        self.commands
            .send(Command::SyncNow)
            .await
            .map_err(|_| Error::Stopped)
    }
    /// Tells a node on a clock the caller drives ([`crate::clock::Manual`]) that the time
    /// moved: it re-reads the clock now (gossip whose receipt wait is over is decided)
    /// instead of when its own timer, set with the old time, fires.
    pub async fn clock_moved(&self) -> Result<(), Error> {
        self.commands
            .send(Command::ClockMoved)
            .await
            .map_err(|_| Error::Stopped)
    }
    /// Refuses `peer` from now on: closes every connection to it and denies every dial
    /// to or from it (the operator's own, Kademlia's, the peer's) until [`Self::unblock`].
    /// For an embedding program that cuts the mesh (the testnet's `partition --live`)
    /// and for an operator shutting out a misbehaving gateway. The list lives in memory
    /// (not persisted); it holds what the caller put there.
    pub async fn block(&self, peer: PeerId) -> Result<(), Error> {
        self.commands
            .send(Command::Block(peer, true))
            .await
            .map_err(|_| Error::Stopped)
    }
    /// Lifts [`Self::block`]: dials are allowed again (nothing is re-dialled by itself;
    /// [`Self::dial`] does).
    pub async fn unblock(&self, peer: PeerId) -> Result<(), Error> {
        self.commands
            .send(Command::Block(peer, false))
            .await
            .map_err(|_| Error::Stopped)
    }
    /// Test and embedding hook: publishes `data` on `topic` as this node, signed with its
    /// libp2p key, bypassing the pipeline (the node neither checks nor stores it). The
    /// testnet's `rogue-gateway --live` uses it to make one real node gossip what a
    /// lying gateway would (false receipts, fake divergence proofs); the receivers
    /// validate it like any gossip. Not an operator action.
    pub async fn publish_raw(&self, topic: &'static str, data: Vec<u8>) -> Result<(), Error> {
        self.commands
            .send(Command::PublishRaw(topic, data))
            .await
            .map_err(|_| Error::Stopped)
    }
    /// What the node holds for remote parties now, each against its bound (read by the
    /// node's loop between two batches).
    pub async fn tracked(&self) -> Result<Tracked, Error> {
        ask(&self.commands, Command::Tracked).await
    }
    /// Stops the node and waits until its store is closed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let Handle {
            store, task, api, ..
        } = self;
        drop(store);
        let _ = task.await;
        if let Some((_, server)) = api {
            let _ = server.await;
        }
    }
}

fn build_swarm(config: &Config, identity: &Identity) -> Result<Swarm<Behaviour>, Error> {
    let net = |e: &dyn std::fmt::Display| Error::Network(e.to_string());
    let heartbeat = config.network.heartbeat();
    let mdns = config.network.mdns;
    let limits = crate::net::behaviour::limits(config.network.max_incoming);
    let swarm = libp2p::SwarmBuilder::with_existing_identity(identity.keypair())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| net(&e))?
        .with_quic()
        .with_behaviour(|key| {
            Behaviour::new(key, heartbeat, mdns, limits)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
        .map_err(|e| net(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(std::time::Duration::from_secs(120)))
        .build();
    Ok(swarm)
}

/// The next batch of at most `max` inputs: radio first, then synced frames, then gossip
/// attestations that waited `receipt_wait_ms` for their receipts.
fn next_inputs(
    radio: &RadioSink,
    synced: &mut VecDeque<Input<Tag>>,
    gossip: &mut VecDeque<Input<Tag>>,
    max: usize,
    now: u64,
    receipt_wait_ms: u64,
) -> Vec<Input<Tag>> {
    let mut inputs: Vec<Input<Tag>> = radio
        .drain(max)
        .into_iter()
        .map(|u| Input {
            frame: u.frame,
            rx: u.rx,
            source: Source::Radio,
            tag: None,
        })
        .collect();
    while inputs.len() < max {
        match synced.pop_front() {
            Some(i) => inputs.push(i),
            None => break,
        }
    }
    while inputs.len() < max
        && gossip
            .front()
            .is_some_and(|f| f.rx.time_ms.saturating_add(receipt_wait_ms) <= now)
    {
        inputs.extend(gossip.pop_front());
    }
    inputs
}

struct Runtime {
    swarm: Swarm<Behaviour>,
    pipeline: Pipeline,
    /// The batch verified and not yet committed (see [`Overlapped`]).
    overlap: Overlapped<Tag>,
    radio: RadioSink,
    gossip: VecDeque<Input<Tag>>,
    synced: VecDeque<Input<Tag>>,
    config: Config,
    metrics: Metrics,
    requests: HashMap<OutboundRequestId, Outstanding>,
    /// Summary pages asked of each peer in this sync round (bounded by the peers
    /// connected; cleared every round).
    summary_pages: HashMap<PeerId, u32>,
    /// Connected peers only (bounded by the connections the swarm holds).
    peer_addrs: HashMap<PeerId, PeerAddrs>,
    clock: crate::clock::Shared,
    inflight: HashSet<Vec<u8>>,
    /// Missing events asked for, with when (see [`MAX_RECENT_MISSING`]).
    recent_missing: VecDeque<(Vec<u8>, u64)>,
    sync_cursor: usize,
    /// Where [`Event`]s go (nobody may listen).
    events: broadcast::Sender<Event>,
}

impl Runtime {
    fn listen_and_bootstrap(&mut self) -> Result<(), Error> {
        for addr in &self.config.network.listen {
            let ma: Multiaddr = addr
                .parse()
                .map_err(|e| Error::Network(format!("listen address {addr}: {e}")))?;
            self.swarm
                .listen_on(ma)
                .map_err(|e| Error::Network(format!("listen on {addr}: {e}")))?;
        }
        let mut any = false;
        for addr in &self.config.network.bootstrap {
            let ma: Multiaddr = match addr.parse() {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "bad bootstrap address");
                    continue;
                }
            };
            if let Some(peer) = peer_of(&ma) {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .add_address(&peer, ma.clone());
                any = true;
            }
            if let Err(e) = self.swarm.dial(ma) {
                tracing::warn!(%addr, error = %e, "dial failed");
            }
        }
        if any {
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
        Ok(())
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>, mut stop: watch::Receiver<bool>) {
        let mut sync_tick = tokio::time::interval(self.config.network.sync_interval());
        sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut timeout_tick = tokio::time::interval(TIMEOUT_EVERY);
        timeout_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let radio = self.radio.clone();
        loop {
            let now = self.clock.now_ms();
            let gossip_wait = self.gossip_wait(now);
            let work = gossip_wait == Some(0)
                || !self.synced.is_empty()
                || !radio.is_empty()
                || self.overlap.is_pending();
            let ripe =
                tokio::time::sleep(std::time::Duration::from_millis(gossip_wait.unwrap_or(0)));
            // Decisions whose receipt window ends (a group commit takes them too).
            let decide_in = self.pipeline.decision_due_in(now);
            let decide =
                tokio::time::sleep(std::time::Duration::from_millis(decide_in.unwrap_or(0)));
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break,
                cmd = commands.recv() => match cmd {
                    Some(c) => self.command(c),
                    None => break,
                },
                ev = self.swarm.select_next_some() => self.swarm_event(ev),
                _ = std::future::ready(()), if work => self.process_batch(),
                _ = radio.notified(), if !work => {}
                _ = ripe, if !work && gossip_wait.is_some() => {}
                _ = decide, if !work && decide_in.is_some() => self.decide_due(),
                _ = sync_tick.tick() => self.sync_round(),
                _ = timeout_tick.tick() => self.pipeline.handle_timeout(self.clock.now_ms()),
            }
        }
        tracing::info!("gateway stopped");
    }

    /// Milliseconds until the oldest gossip attestation may be decided (see
    /// `ingest.receipt_wait_ms`): `Some(0)` when it may now, `None` when none waits.
    fn gossip_wait(&self, now: u64) -> Option<u64> {
        let front = self.gossip.front()?;
        let ripe_at = front
            .rx
            .time_ms
            .saturating_add(self.config.ingest.receipt_wait_ms);
        Some(ripe_at.saturating_sub(now))
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Peers(tx) => {
                let b = self.swarm.behaviour();
                let peers = self
                    .swarm
                    .connected_peers()
                    .map(|p| PeerInfo {
                        peer_id: p.to_string(),
                        score: b.gossipsub.peer_score(p),
                        addresses: self.peer_addrs.get(p).map_or_else(Vec::new, |a| {
                            let mut out: Vec<String> = Vec::new();
                            for m in a.listen.iter().chain(&a.connections) {
                                let m = m.to_string();
                                if !out.contains(&m) {
                                    out.push(m);
                                }
                            }
                            out
                        }),
                    })
                    .collect();
                let _ = tx.send(peers);
            }
            Command::ListenAddrs(tx) => {
                let id = *self.swarm.local_peer_id();
                let addrs = self
                    .swarm
                    .listeners()
                    .map(|a| a.clone().with_p2p(id).unwrap_or_else(|a| a))
                    .collect();
                let _ = tx.send(addrs);
            }
            Command::Dial(addr) => {
                if let Some(peer) = peer_of(&addr) {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                }
                if let Err(e) = self.swarm.dial(addr) {
                    tracing::warn!(error = %e, "dial failed");
                }
            }
            Command::Release(device, note, tx) => {
                self.flush();
                let _ = tx.send(self.pipeline.release(self.clock.now_ms(), &device, note));
            }
            Command::Pin(device, scope, note, tx) => {
                self.flush();
                let _ = tx.send(self.pipeline.pin(self.clock.now_ms(), &device, scope, note));
            }
            Command::PublishRaw(topic, data) => {
                let t = gossipsub::IdentTopic::new(topic);
                self.swarm.behaviour_mut().publish(&t, data);
            }
            Command::Block(peer, true) => {
                self.swarm.behaviour_mut().blocked.block_peer(peer);
            }
            Command::Block(peer, false) => {
                self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            }
            Command::SyncNow => self.sync_round(),
            Command::ClockMoved => {}
            Command::Tracked(tx) => {
                let v = self.pipeline.verifier();
                let _ = tx.send(Tracked {
                    verifier_devices: v.device_count(),
                    compact_devices: v.compact_devices(),
                    compact_pending: v.compact_pending(),
                    gossip_queue: self.gossip.len(),
                    sync_queue: self.synced.len(),
                    radio_queue: self.radio.len(),
                    undecided: self.pipeline.undecided(),
                    pending_receipts: self.pipeline.pending_receipts(),
                    inflight_fetches: self.inflight.len(),
                });
            }
        }
    }

    fn swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                tracing::debug!(%peer_id, "connected");
                let addrs = self.peer_addrs.entry(peer_id).or_default();
                let remote = endpoint.get_remote_address();
                if addrs.connections.len() < MAX_PEER_ADDRS && !addrs.connections.contains(remote) {
                    addrs.connections.push(remote.clone());
                }
                self.metrics
                    .peers
                    .set(self.swarm.connected_peers().count() as i64);
                if endpoint.is_dialer() {
                    let addr = endpoint.get_remote_address().clone();
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
                // A new peer: compare summaries right away (late joiners catch up).
                self.request_summary(peer_id, None);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                tracing::debug!(%peer_id, "disconnected");
                if num_established == 0 {
                    self.peer_addrs.remove(&peer_id);
                } else if let Some(a) = self.peer_addrs.get_mut(&peer_id) {
                    a.connections.retain(|m| m != endpoint.get_remote_address());
                }
                self.metrics
                    .peers
                    .set(self.swarm.connected_peers().count() as i64);
            }
            SwarmEvent::IncomingConnectionError {
                error: libp2p::swarm::ListenError::Denied { cause },
                send_back_addr,
                ..
            } => {
                // A bound (`network.max_incoming`, pending, per peer) or the block list.
                tracing::debug!(%send_back_addr, %cause, "incoming connection denied");
                self.metrics
                    .dropped
                    .get_or_create(&kind("connection_denied"))
                    .inc();
            }
            SwarmEvent::Behaviour(b) => self.behaviour_event(b),
            _ => {}
        }
    }

    fn behaviour_event(&mut self, ev: BehaviourEvent) {
        match ev {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => self.gossip_message(propagation_source, message_id, message),
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                // Kademlia keeps every address it is given, so a peer pushing identify
                // with new addresses again and again would grow its routing entry: the
                // addresses an earlier identify gave it and this one does not are taken
                // out, so it holds at most MAX_PEER_ADDRS from identify per peer.
                let listen: Vec<Multiaddr> =
                    info.listen_addrs.into_iter().take(MAX_PEER_ADDRS).collect();
                let previous = match self.peer_addrs.get_mut(&peer_id) {
                    Some(a) => std::mem::replace(&mut a.listen, listen.clone()),
                    None => Vec::new(),
                };
                let kad = &mut self.swarm.behaviour_mut().kad;
                for old in previous.iter().filter(|a| !listen.contains(a)) {
                    kad.remove_address(&peer_id, old);
                }
                for addr in listen {
                    kad.add_address(&peer_id, addr);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(list)) => {
                for (peer, addr) in list.into_iter().take(64) {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    if !self.swarm.is_connected(&peer) {
                        let _ = self.swarm.dial(addr);
                    }
                }
            }
            BehaviourEvent::Kad(kad::Event::RoutingUpdated { peer, .. }) => {
                // Dials still in progress count: Kademlia reports many peers at once,
                // and counting only established connections dialled them all.
                let max = self.config.network.max_connections as usize;
                let pending = self
                    .swarm
                    .network_info()
                    .connection_counters()
                    .num_pending_outgoing() as usize;
                if !self.swarm.is_connected(&peer)
                    && self.swarm.connected_peers().count() + pending < max
                {
                    let _ = self.swarm.dial(peer);
                }
            }
            BehaviourEvent::Sync(request_response::Event::Message { peer, message, .. }) => {
                match message {
                    request_response::Message::Request {
                        request, channel, ..
                    } => {
                        self.metrics.sync.get_or_create(&kind("request_in")).inc();
                        let response = self.answer(request);
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .sync
                            .send_response(channel, response);
                    }
                    request_response::Message::Response {
                        request_id,
                        response,
                    } => {
                        self.metrics.sync.get_or_create(&kind("response_in")).inc();
                        let after = self.requests.remove(&request_id).and_then(|o| {
                            if let Some(key) = o.fetch {
                                self.inflight.remove(&key);
                            }
                            o.after
                        });
                        self.on_response(peer, after, response);
                    }
                }
            }
            BehaviourEvent::Sync(request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            }) => {
                tracing::debug!(%peer, %error, "sync request failed");
                if let Some(key) = self.requests.remove(&request_id).and_then(|o| o.fetch) {
                    self.inflight.remove(&key);
                }
            }
            _ => {}
        }
    }

    fn gossip_message(&mut self, peer: PeerId, id: MessageId, m: gossipsub::Message) {
        self.metrics
            .gossip_bytes
            .get_or_create(&kind("in"))
            .inc_by(m.data.len() as u64);
        let topic = m.topic.as_str();
        let now = self.clock.now_ms();
        let queued = if topic == topics::ATTESTATIONS {
            (m.data.len() <= slope_proto::limits::MAX_FRAME).then_some(now)
        } else if topic == topics::COMPACT {
            match self.pipeline.admit_compact(now, &m.data) {
                Ok(rx_ms) => Some(rx_ms),
                Err(v) => {
                    self.report(Some((peer, id)), v);
                    return;
                }
            }
        } else {
            None
        };
        if let Some(rx_ms) = queued {
            self.queue_gossip(peer, id, m.data, rx_ms);
            return;
        }
        let verdict = if topic == topics::ATTESTATIONS {
            Verdict::Reject
        } else if topic == topics::RECEIPTS {
            match self.pipeline.ingest_receipt(now, &m.data) {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(error = %e, "store error on receipt");
                    Verdict::Ignore
                }
            }
        } else if topic == topics::DIVERGENCES {
            match self.pipeline.ingest_proof(now, &m.data) {
                Ok((v, effects)) => {
                    self.announce(&effects);
                    v
                }
                Err(e) => {
                    tracing::error!(error = %e, "store error on proof");
                    Verdict::Ignore
                }
            }
        } else {
            Verdict::Reject
        };
        self.report(Some((peer, id)), verdict);
    }

    /// Queues a gossip attestation or suite-2 message for the pipeline, received (for a
    /// suite-2 frame: to be checked as received) at `rx_ms`. One bounded queue, oldest
    /// dropped and reported as `Ignore`.
    fn queue_gossip(&mut self, peer: PeerId, id: MessageId, frame: Vec<u8>, rx_ms: u64) {
        let cap = self.config.ingest.queue_capacity.max(1);
        if self.gossip.len() >= cap {
            if let Some(old) = self.gossip.pop_front() {
                self.metrics
                    .dropped
                    .get_or_create(&kind("gossip_queue"))
                    .inc();
                self.report(old.tag, Verdict::Ignore);
            }
        }
        self.gossip.push_back(Input {
            frame,
            rx: gossip_rx(rx_ms),
            source: Source::Gossip,
            tag: Some((peer, id)),
        });
        self.metrics
            .queue_depth
            .get_or_create(&kind("gossip"))
            .set(self.gossip.len() as i64);
    }

    fn report(&mut self, tag: Tag, verdict: Verdict) {
        let Some((peer, id)) = tag else { return };
        let (acceptance, label) = match verdict {
            Verdict::Accept => (MessageAcceptance::Accept, "accept"),
            Verdict::Ignore => (MessageAcceptance::Ignore, "ignore"),
            Verdict::Reject => (MessageAcceptance::Reject, "reject"),
        };
        self.metrics.validation.get_or_create(&kind(label)).inc();
        if verdict == Verdict::Reject {
            tracing::info!(%peer, "rejected gossip from peer");
        }
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &peer, acceptance);
    }

    fn process_batch(&mut self) {
        let max = self.config.ingest.batch_max.max(1);
        let wait = self.config.ingest.receipt_wait_ms;
        let now = self.clock.now_ms();
        let inputs = next_inputs(
            &self.radio,
            &mut self.synced,
            &mut self.gossip,
            max,
            now,
            wait,
        );
        // Verify this batch (and, while the commit runs, the next ones) while the batches
        // verified before commit as one group; with nothing new, commit what waits.
        let out = if inputs.is_empty() {
            self.overlap.flush(&mut self.pipeline)
        } else {
            let (radio, synced, gossip, clock) =
                (&self.radio, &mut self.synced, &mut self.gossip, &self.clock);
            self.overlap.push(&mut self.pipeline, now, inputs, || {
                let now = clock.now_ms();
                let more = next_inputs(radio, synced, gossip, max, now, wait);
                (!more.is_empty()).then_some((now, more))
            })
        };
        self.metrics
            .queue_depth
            .get_or_create(&kind("gossip"))
            .set(self.gossip.len() as i64);
        for out in out {
            self.committed(out);
        }
    }

    /// Decides the attestations whose receipt window is over.
    fn decide_due(&mut self) {
        if let Err(e) = self.pipeline.decide_due(self.clock.now_ms()) {
            tracing::error!(error = %e, "decisions not committed; they wait again");
        }
    }

    /// Commits the batches waiting in the overlap, if any.
    fn flush(&mut self) {
        for out in self.overlap.flush(&mut self.pipeline) {
            self.committed(out);
        }
    }

    fn committed(&mut self, out: Result<Output<Tag>, crate::pipeline::Failed<Tag>>) {
        match out {
            Ok(out) => {
                for (tag, v) in out.verdicts {
                    self.report(tag, v);
                }
                for e in out.effects {
                    self.effect(e);
                }
            }
            Err(failed) => {
                tracing::error!(error = %failed.error, "ingest batch failed");
                for tag in failed.tags {
                    self.report(tag, Verdict::Ignore);
                }
            }
        }
    }

    fn publish(&mut self, topic: gossipsub::IdentTopic, data: Vec<u8>) {
        let n = data.len() as u64;
        if self.swarm.behaviour_mut().publish(&topic, data) {
            self.metrics
                .gossip_bytes
                .get_or_create(&kind("out"))
                .inc_by(n);
        }
    }

    fn effect(&mut self, e: Effect) {
        match e {
            Effect::PublishAttestation(f) => self.publish(topics::attestations(), f),
            Effect::PublishReceipt(r) => self.publish(topics::receipts(), r),
            Effect::PublishProof(p) => self.publish(topics::divergences(), p),
            Effect::PublishCompact(c) => self.publish(topics::compact(), c),
            Effect::Missing(m) => {
                let (prefix, after) = match m {
                    Missing::Inception(short) => (short.0.to_vec(), None),
                    Missing::Rotation { device, .. } => {
                        let head = self.pipeline.verifier().head(&device).map(|(s, _)| s);
                        (device.0.to_vec(), head)
                    }
                };
                if !self.ask_missing(&prefix) {
                    return;
                }
                let peers: Vec<PeerId> = self
                    .swarm
                    .connected_peers()
                    .take(self.config.network.sync_fanout.max(1))
                    .copied()
                    .collect();
                for p in peers {
                    self.fetch(p, prefix.clone(), after);
                }
            }
            Effect::Quarantined(d) => self.announce(&[Effect::Quarantined(d)]),
        }
    }

    /// Whether a missing event under `prefix` may be asked for now (not asked for within
    /// a sync interval); remembers it when so.
    fn ask_missing(&mut self, prefix: &[u8]) -> bool {
        let now = self.clock.now_ms();
        let cooldown = self.config.network.sync_interval_ms;
        if let Some((_, at)) = self.recent_missing.iter().find(|(p, _)| p == prefix) {
            if now.saturating_sub(*at) < cooldown {
                self.metrics
                    .dropped
                    .get_or_create(&kind("fetch_repeat"))
                    .inc();
                return false;
            }
        }
        self.recent_missing.retain(|(p, _)| p != prefix);
        if self.recent_missing.len() >= MAX_RECENT_MISSING {
            self.recent_missing.pop_front();
        }
        self.recent_missing.push_back((prefix.to_vec(), now));
        true
    }

    /// Tells the embedding program about the quarantines among `effects` (committed).
    fn announce(&self, effects: &[Effect]) {
        for e in effects {
            if let Effect::Quarantined(device) = e {
                let at_ms = self.clock.now_ms();
                // No subscriber is not an error.
                let _ = self.events.send(Event::Quarantined {
                    device: *device,
                    at_ms,
                });
            }
        }
    }

    fn sync_round(&mut self) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        if peers.is_empty() {
            return;
        }
        let fanout = self.config.network.sync_fanout.max(1).min(peers.len());
        for i in 0..fanout {
            let p = peers[(self.sync_cursor + i) % peers.len()];
            self.request_summary(p, None);
        }
        self.sync_cursor = self.sync_cursor.wrapping_add(fanout);
        self.summary_pages.clear();
        // Only fetches still outstanding hold their key (a request that ended without
        // an event, if libp2p ever drops one, cannot hold the bound forever).
        self.inflight = self
            .requests
            .values()
            .filter_map(|o| o.fetch.clone())
            .collect();
    }

    fn request_summary(&mut self, peer: PeerId, after: Option<[u8; 32]>) {
        let pages = self.summary_pages.entry(peer).or_default();
        if *pages >= MAX_SUMMARY_PAGES {
            self.metrics
                .dropped
                .get_or_create(&kind("sync_summary_pages"))
                .inc();
            return;
        }
        *pages += 1;
        self.metrics.sync.get_or_create(&kind("summary_out")).inc();
        let id = self.swarm.behaviour_mut().sync.send_request(
            &peer,
            Request::Summary {
                after,
                limit: sync::MAX_SUMMARY as u16,
            },
        );
        self.requests.insert(id, Outstanding { fetch: None, after });
    }

    fn fetch(&mut self, peer: PeerId, prefix: Vec<u8>, after: Option<u32>) {
        if self.inflight.len() >= MAX_INFLIGHT_FETCH {
            self.metrics
                .dropped
                .get_or_create(&kind("sync_fetch"))
                .inc();
            return;
        }
        let mut key = prefix.clone();
        key.extend_from_slice(&peer.to_bytes());
        if !self.inflight.insert(key.clone()) {
            return;
        }
        self.metrics.sync.get_or_create(&kind("fetch_out")).inc();
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, Request::Fetch { prefix, after });
        self.requests.insert(
            id,
            Outstanding {
                fetch: Some(key),
                after: None,
            },
        );
    }

    /// Answers a peer's sync request from the store.
    fn answer(&self, request: Request) -> Response {
        let store = self.pipeline.store();
        match request {
            Request::Summary { after, limit } => {
                let limit = usize::from(limit).clamp(1, sync::MAX_SUMMARY);
                let after = after.map(DeviceId);
                match store.devices(after.as_ref(), limit) {
                    Ok(devices) => Response::Summary {
                        more: devices.len() == limit,
                        entries: devices
                            .into_iter()
                            .map(|(id, r)| {
                                let mut digest = [0u8; 8];
                                digest.copy_from_slice(&r.head_digest[..8]);
                                Entry {
                                    device: id.0,
                                    head: r.head_seq,
                                    digest,
                                    quarantined: r.quarantine.is_some(),
                                }
                            })
                            .collect(),
                    },
                    Err(_) => Response::Refused,
                }
            }
            Request::Fetch { prefix, after } => {
                if !(8..=32).contains(&prefix.len()) {
                    return Response::Refused;
                }
                let mut establishments = Vec::new();
                let mut frames = Vec::new();
                let mut proofs = Vec::new();
                let Ok(devices) = store.devices_with_prefix(&prefix) else {
                    return Response::Refused;
                };
                for id in devices.into_iter().take(4) {
                    establishments.extend(store.establishments(&id).unwrap_or_default());
                    // Suite-2 anchors after the key history that verifies them.
                    establishments.extend(store.compact_anchors(&id).unwrap_or_default());
                    let limit = sync::MAX_FETCH.saturating_sub(frames.len());
                    frames.extend(
                        store
                            .frames(&id, after, limit)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|f| f.frame),
                    );
                    if let Ok(Some(p)) = store.divergence(&id) {
                        proofs.push(p);
                    }
                }
                Response::Frames {
                    establishments,
                    frames,
                    proofs,
                }
            }
        }
    }

    /// A peer's answer; `asked_after` is the device a summary page was asked after.
    fn on_response(&mut self, peer: PeerId, asked_after: Option<[u8; 32]>, response: Response) {
        match response {
            Response::Summary { entries, more } => {
                let store = self.pipeline.store().clone();
                let local = StoreView(&store);
                let mut last = None;
                for e in entries.iter().take(sync::MAX_SUMMARY) {
                    last = Some(e.device);
                    if let Action::Fetch { device, after } = sync::compare(&local, e) {
                        self.fetch(peer, device.to_vec(), after);
                    }
                }
                // The next page only if this one moved on: a peer answering the same
                // page again and again (`more` forever) gets no further request.
                if more {
                    if let Some(last) = last.filter(|l| asked_after.is_none_or(|a| *l > a)) {
                        self.request_summary(peer, Some(last));
                    }
                }
            }
            Response::Frames {
                establishments,
                frames,
                proofs,
            } => {
                let now = self.clock.now_ms();
                for p in proofs.into_iter().take(8) {
                    match self.pipeline.ingest_proof(now, &p) {
                        Ok((verdict, effects)) => {
                            self.announce(&effects);
                            // A proof that quarantined here goes on by gossip, as one
                            // received by gossip is forwarded: peers that do not sync
                            // with the sender learn it now, not at their next sync round.
                            if verdict == Verdict::Accept {
                                self.publish(topics::divergences(), p);
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "store error on synced proof"),
                    }
                }
                let cap = self.config.ingest.queue_capacity.max(1);
                for f in establishments
                    .into_iter()
                    .chain(frames)
                    .take(2 * sync::MAX_FETCH)
                {
                    if f.len() > slope_proto::limits::MAX_FRAME {
                        continue;
                    }
                    if self.synced.len() >= cap {
                        self.synced.pop_front();
                        self.metrics
                            .dropped
                            .get_or_create(&kind("sync_queue"))
                            .inc();
                    }
                    self.synced.push_back(Input {
                        frame: f,
                        rx: gossip_rx(now),
                        source: Source::Sync,
                        tag: None,
                    });
                }
            }
            Response::Refused => {}
        }
    }
}

/// The store as the sync comparison's local view.
struct StoreView<'a>(&'a Arc<Store>);

impl sync::Local for StoreView<'_> {
    fn head(&self, device: &[u8; 32]) -> Option<(u32, [u8; 32], bool)> {
        let r = self.0.device(&DeviceId(*device)).ok()??;
        if r.depth == 0 && r.quarantine.is_some() {
            return Some((0, [0; 32], true));
        }
        Some((r.head_seq, r.head_digest, r.quarantine.is_some()))
    }
    fn digest_at(&self, device: &[u8; 32], seq: u32) -> Option<[u8; 32]> {
        self.0
            .frame(&DeviceId(*device), seq)
            .ok()
            .flatten()
            .map(|f| f.digest)
    }
}

/// The observation recorded for frames that arrived over the network (no radio).
fn gossip_rx(now: u64) -> slope_proto::Observation {
    slope_proto::Observation::relayed(now)
}

fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(id) => Some(id),
        _ => None,
    })
}
