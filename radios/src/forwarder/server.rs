//! The GWMP server: socket loop, per-source rate limit, gateway table, uplink queue, and
//! the [`Radio`] view of it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::json::{GatewayStat, Txpk, parse_push_data};
use super::wire::{self, HeaderError, Kind};
use super::{Config, Error, Eui, Stats, Uplink};
use crate::meta::RxMeta;
use crate::radio::{Radio, TxParams, TxReport};

/// What the server knows about one gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayInfo {
    /// Its EUI.
    pub eui: Eui,
    /// Protocol version of its last datagram.
    pub version: u8,
    /// Source of its last datagram.
    pub last_addr: SocketAddr,
    /// Source of its last PULL_DATA: where PULL_RESP goes.
    pub pull_addr: Option<SocketAddr>,
    /// Its latest `stat` report.
    pub last_stat: Option<GatewayStat>,
    /// PUSH_DATA received.
    pub push_data: u64,
    /// PULL_DATA received.
    pub pull_data: u64,
    /// When its last datagram came.
    pub last_seen: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug, Default)]
struct State {
    gateways: HashMap<Eui, GatewayInfo>,
    buckets: HashMap<IpAddr, Bucket>,
    last_pull: Option<Eui>,
    stats: Stats,
    next_token: u16,
    /// Last sweep of each table at its bound (at most one a second: a flood of new
    /// sources or EUIs costs one scan a second, not one per datagram).
    swept_sources: Option<Instant>,
    swept_gateways: Option<Instant>,
}

/// Whether a sweep last done at `last` may run again at `now` (and marks it done).
fn may_sweep(last: &mut Option<Instant>, now: Instant) -> bool {
    if last.is_some_and(|t| now.duration_since(t) < std::time::Duration::from_secs(1)) {
        return false;
    }
    *last = Some(now);
    true
}

#[derive(Debug)]
struct Shared {
    socket: Arc<UdpSocket>,
    state: Arc<Mutex<State>>,
    local: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A running GWMP server. Cheap to clone; the socket task stops when the last clone drops.
#[derive(Debug, Clone)]
pub struct Forwarder {
    shared: Arc<Shared>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Forwarder {
    /// Bind the socket and start serving; uplinks arrive on the returned receiver.
    pub async fn bind(config: Config) -> Result<(Self, mpsc::Receiver<Uplink>), Error> {
        let socket = Arc::new(UdpSocket::bind(config.bind).await?);
        let local = socket.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let task = tokio::spawn(run(socket.clone(), state.clone(), config, tx));
        Ok((
            Self {
                shared: Arc::new(Shared {
                    socket,
                    state,
                    local,
                    task,
                }),
            },
            rx,
        ))
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.state).stats
    }

    /// One gateway's record.
    pub fn gateway(&self, eui: Eui) -> Option<GatewayInfo> {
        lock(&self.shared.state).gateways.get(&eui).cloned()
    }

    /// All gateways, by EUI.
    pub fn gateways(&self) -> Vec<GatewayInfo> {
        let mut v: Vec<_> = lock(&self.shared.state)
            .gateways
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|g| g.eui);
        v
    }

    /// Send `txpk` to `gateway` as a PULL_RESP, to the address of its last PULL_DATA.
    pub async fn send_txpk(&self, gateway: Eui, txpk: &Txpk) -> Result<(), Error> {
        let (addr, datagram) = {
            let mut st = lock(&self.shared.state);
            let route = st
                .gateways
                .get(&gateway)
                .and_then(|g| g.pull_addr.map(|a| (a, g.version)));
            let Some((addr, version)) = route else {
                st.stats.pull_resp_failed += 1;
                return Err(Error::NoRoute(gateway));
            };
            st.next_token = st.next_token.wrapping_add(1);
            (
                addr,
                wire::pull_resp(version, st.next_token, &txpk.to_json()),
            )
        };
        let sent = self.shared.socket.send_to(&datagram, addr).await;
        let mut st = lock(&self.shared.state);
        match sent {
            Ok(_) => {
                st.stats.pull_resp += 1;
                Ok(())
            }
            Err(e) => {
                st.stats.pull_resp_failed += 1;
                Err(e.into())
            }
        }
    }

    /// A [`Radio`] over this server: receives its uplinks; transmits through `gateway`, or
    /// through the gateway whose PULL_DATA came last when `None`.
    pub fn radio(&self, uplinks: mpsc::Receiver<Uplink>, gateway: Option<Eui>) -> ForwarderRadio {
        ForwarderRadio {
            forwarder: self.clone(),
            uplinks,
            gateway,
        }
    }
}

async fn run(
    socket: Arc<UdpSocket>,
    state: Arc<Mutex<State>>,
    config: Config,
    tx: mpsc::Sender<Uplink>,
) {
    // One byte more than the limit, to tell an oversize datagram from one that fits.
    let mut buf = vec![0u8; config.max_datagram.saturating_add(1)];
    loop {
        let (n, src) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            // ICMP errors from earlier sends surface here on some systems; keep serving.
            Err(_) => continue,
        };
        let (reply, uplinks) = {
            let mut st = lock(&state);
            let datagram = buf.get(..n).unwrap_or_default();
            handle(&mut st, &config, datagram, src, Instant::now())
        };
        if let Some(reply) = reply {
            // Best effort, like the protocol: a lost ack is the gateway's statistic.
            let _ = socket.send_to(&reply, src).await;
        }
        for up in uplinks {
            if tx.try_send(up).is_err() {
                lock(&state).stats.queue_full += 1;
            } else {
                lock(&state).stats.uplinks += 1;
            }
        }
    }
}

/// Whether `ip` may send a datagram now (token bucket); bounded in the number of sources.
fn admit(st: &mut State, config: &Config, ip: IpAddr, now: Instant) -> bool {
    let rate = f64::from(config.rate_per_sec);
    let burst = f64::from(config.burst.max(1));
    if !st.buckets.contains_key(&ip) && st.buckets.len() >= config.max_sources {
        // Forget sources whose bucket has refilled: they are indistinguishable from new.
        if may_sweep(&mut st.swept_sources, now) {
            st.buckets
                .retain(|_, b| b.tokens + rate * now.duration_since(b.last).as_secs_f64() < burst);
        }
        if st.buckets.len() >= config.max_sources {
            st.stats.too_many_sources += 1;
            return false;
        }
    }
    let b = st.buckets.entry(ip).or_insert(Bucket {
        tokens: burst,
        last: now,
    });
    b.tokens = (b.tokens + rate * now.duration_since(b.last).as_secs_f64()).min(burst);
    b.last = now;
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        true
    } else {
        st.stats.rate_limited += 1;
        false
    }
}

/// Process one datagram: the reply to send, and the uplinks to queue.
fn handle(
    st: &mut State,
    config: &Config,
    datagram: &[u8],
    src: SocketAddr,
    now: Instant,
) -> (Option<[u8; 4]>, Vec<Uplink>) {
    st.stats.datagrams += 1;
    if config
        .allowed_sources
        .as_ref()
        .is_some_and(|a| !a.contains(&src.ip()))
    {
        st.stats.source_not_allowed += 1;
        return (None, Vec::new());
    }
    if !admit(st, config, src.ip(), now) {
        return (None, Vec::new());
    }
    if datagram.len() > config.max_datagram {
        st.stats.oversize += 1;
        return (None, Vec::new());
    }
    let up = match wire::parse_upstream(datagram) {
        Ok(up) => up,
        Err(e) => {
            match e {
                HeaderError::Truncated => st.stats.truncated += 1,
                HeaderError::UnknownVersion(_) => st.stats.unknown_version += 1,
                HeaderError::UnknownIdentifier(_) => st.stats.unknown_identifier += 1,
            }
            return (None, Vec::new());
        }
    };
    if config
        .allowed_gateways
        .as_ref()
        .is_some_and(|a| !a.contains(&up.gateway))
    {
        st.stats.gateway_not_allowed += 1;
        return (None, Vec::new());
    }
    if !st.gateways.contains_key(&up.gateway) && st.gateways.len() >= config.max_gateways {
        // Forget gateways silent for `gateway_idle`: made-up EUIs cannot hold the table.
        if may_sweep(&mut st.swept_gateways, now) {
            st.gateways
                .retain(|_, g| now.duration_since(g.last_seen) < config.gateway_idle);
            if st.last_pull.is_some_and(|e| !st.gateways.contains_key(&e)) {
                st.last_pull = None;
            }
        }
        if st.gateways.len() >= config.max_gateways {
            st.stats.too_many_gateways += 1;
            return (None, Vec::new());
        }
    }
    let gw = st
        .gateways
        .entry(up.gateway)
        .or_insert_with(|| GatewayInfo {
            eui: up.gateway,
            version: up.version,
            last_addr: src,
            pull_addr: None,
            last_stat: None,
            push_data: 0,
            pull_data: 0,
            last_seen: now,
        });
    gw.version = up.version;
    gw.last_addr = src;
    gw.last_seen = now;
    let mut uplinks = Vec::new();
    match up.kind {
        Kind::PullData => {
            gw.pull_addr = Some(src);
            gw.pull_data += 1;
            st.last_pull = Some(up.gateway);
            st.stats.pull_data += 1;
        }
        Kind::TxAck => st.stats.tx_ack += 1,
        Kind::PushData => {
            gw.push_data += 1;
            st.stats.push_data += 1;
            // Acknowledge even if the body turns out malformed: the header was valid, and the
            // ack only feeds the gateway's statistics.
            match parse_push_data(up.body) {
                Err(_) => st.stats.malformed_json += 1,
                Ok(body) => {
                    if let Some(stat) = body.stat {
                        if let Some(gw) = st.gateways.get_mut(&up.gateway) {
                            gw.last_stat = Some(stat);
                        }
                        st.stats.stat_reports += 1;
                    }
                    for rxpk in body.rxpk {
                        match rxpk {
                            Err(e) => st.stats.count_rxpk_error(e),
                            Ok(rxpk) => {
                                let slope = crate::frame::parse_frame(&rxpk.data);
                                if let Err(e) = slope {
                                    st.stats.count_not_slope(e);
                                }
                                if slope.is_ok() || config.deliver_non_slope {
                                    let meta = rxpk.meta();
                                    uplinks.push(Uplink {
                                        gateway: up.gateway,
                                        rxpk,
                                        meta,
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    (wire::ack(&up), uplinks)
}

/// [`Radio`] view of a [`Forwarder`]: `receive` yields the PHY payload of each queued
/// uplink; `transmit` sends an immediate, non-inverted `txpk` and returns as soon as the
/// datagram is sent (the gateway schedules the emission; `airtime_us` is computed).
/// Futures are `Send`.
#[derive(Debug)]
pub struct ForwarderRadio {
    forwarder: Forwarder,
    uplinks: mpsc::Receiver<Uplink>,
    gateway: Option<Eui>,
}

impl ForwarderRadio {
    /// Receive the next uplink with all its gateway-level details.
    pub async fn next_uplink(&mut self) -> Option<Uplink> {
        self.uplinks.recv().await
    }
}

impl Radio for ForwarderRadio {
    type Error = Error;

    async fn transmit(&mut self, frame: &[u8], params: TxParams) -> Result<TxReport, Error> {
        let m = params.modulation;
        let airtime_us = m
            .time_on_air_us(frame.len())
            .map_err(|e| Error::FrameTooLong(e.len))?;
        let last = lock(&self.forwarder.shared.state).last_pull;
        let gateway = self.gateway.or(last).ok_or(Error::NoRoute(Eui([0; 8])))?;
        let txpk = Txpk {
            tmst: None,
            freq_hz: params.freq_hz,
            rfch: 0,
            power_dbm: params.power_dbm,
            sf: m.sf,
            bw: m.bw,
            cr: m.cr,
            ipol: false,
            data: frame.to_vec(),
        };
        self.forwarder.send_txpk(gateway, &txpk).await?;
        Ok(TxReport { airtime_us })
    }

    async fn receive(&mut self, buf: &mut [u8]) -> Result<(usize, RxMeta), Error> {
        let up = self.uplinks.recv().await.ok_or(Error::Stopped)?;
        let have = buf.len();
        let need = up.rxpk.data.len();
        let out = buf
            .get_mut(..need)
            .ok_or(Error::BufferTooSmall { need, have })?;
        out.copy_from_slice(&up.rxpk.data);
        Ok((need, up.meta))
    }
}
