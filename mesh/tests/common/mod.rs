//! Helpers for the mesh tests: devices on in-memory flash, gateways on loopback, and
//! polling with a deadline (never a fixed sleep as an assertion).
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use libp2p::Multiaddr;
use slope_mesh::config::Config;
use slope_mesh::identity::Identity;
use slope_mesh::source::Uplink;
use slope_mesh::{Handle, Node};
use slope_node::device::storage::{MemSlots, TwoSlot};
use slope_node::device::{self, MIN_INCEPT_SAMPLES, Slope};
use slope_proto::{DeviceId, Observation};

pub type Device = Slope<TwoSlot<MemSlots>>;

/// A deterministic generator (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

pub fn device_config() -> device::Config {
    device::Config {
        rotate_every: 4,
        rotate_after_ms: 0,
        max_epoch_events: 16,
        ..device::Config::default()
    }
}

/// A device incepted at time 0, and its inception frame.
pub fn incepted(seed: u64) -> (Device, Rng, Vec<u8>) {
    let mut d = Slope::restore(device_config(), TwoSlot::new(MemSlots::default())).unwrap();
    let mut rng = Rng(seed);
    for _ in 0..MIN_INCEPT_SAMPLES {
        d.handle_entropy(&rng.next().to_le_bytes());
    }
    let inc = d.incept(0).unwrap();
    (d, rng, inc.to_vec())
}

/// A clone: the same flash copied into another device.
pub fn clone_of(d: &Device) -> Device {
    Slope::restore(device_config(), TwoSlot::new(d.storage().medium().clone())).unwrap()
}

/// Signs `n` attestations; every released frame (rotations included), in order.
pub fn attest(d: &mut Device, rng: &mut Rng, n: u32, t0: u64, tag: u8) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..n {
        for _ in 0..16 {
            d.handle_entropy(&rng.next().to_le_bytes());
        }
        let payload = [tag, i as u8];
        let released = d.attest(t0 + u64::from(i) * 60_000, &payload, &[]).unwrap();
        out.extend(released.frames.iter().map(|f| f.to_vec()));
    }
    out
}

pub fn device_id(d: &Device) -> DeviceId {
    d.id().unwrap()
}

pub fn rx(rssi: i16) -> Observation {
    Observation {
        rssi_dbm: rssi,
        snr_qdb: 20,
        freq_hz: 868_100_000,
        foff_hz: None,
        sf: 9,
        time_ms: 1_700_000_000_000,
    }
}

pub fn hear(g: &Handle, frames: &[Vec<u8>]) {
    for f in frames {
        g.radio().push(Uplink {
            frame: f.clone(),
            rx: rx(-100),
        });
    }
}

/// The EUI of the fake packet forwarder in [`push_data`].
pub const FORWARDER_EUI: [u8; 8] = [0xAA, 0x55, 0, 0, 0, 0, 0, 1];

/// A GWMP v2 PUSH_DATA from [`FORWARDER_EUI`] carrying `frames` (Slope-framed) as
/// `rxpk`s heard at `tmst` on 868.1 MHz, SF9.
pub fn push_data(frames: &[Vec<u8>], tmst: u32) -> Vec<u8> {
    use base64::Engine;
    let rxpk: Vec<String> = frames
        .iter()
        .map(|f| {
            let mut phy = vec![0xE0, b'S', b'L'];
            phy.extend_from_slice(f);
            format!(
                r#"{{"time":"2024-01-12T08:59:28.000000Z","tmst":{tmst},"chan":2,"rfch":0,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF9BW125","codr":"4/5","rssi":-95,"lsnr":5.5,"size":{},"data":"{}"}}"#,
                phy.len(),
                base64::engine::general_purpose::STANDARD.encode(&phy)
            )
        })
        .collect();
    let json = format!(r#"{{"rxpk":[{}]}}"#, rxpk.join(","));
    let mut d = vec![2, 0x12, 0x34, 0x00];
    d.extend_from_slice(&FORWARDER_EUI);
    d.extend_from_slice(json.as_bytes());
    d
}

/// A test configuration: loopback TCP on a free port, fast heartbeat and sync.
pub fn config(dir: &Path, bootstrap: &[Multiaddr]) -> Config {
    let mut c = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    c.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    c.network.bootstrap = bootstrap.iter().map(|a| a.to_string()).collect();
    c.network.heartbeat_ms = 100;
    c.network.sync_interval_ms = 1000;
    c.network.mdns = false;
    c.api.listen = "127.0.0.1:0".parse().unwrap();
    c.api.token = "test-token".into();
    c.radio.forwarder = String::new();
    c
}

pub fn identity(seed: u8) -> Identity {
    Identity::from_seed([seed; 32])
}

pub async fn gateway(dir: &Path, seed: u8, bootstrap: &[Multiaddr]) -> Handle {
    Node::start(config(dir, bootstrap), identity(seed), false)
        .await
        .unwrap()
}

/// The first TCP listen address of `g` with its peer id.
pub async fn address(g: &Handle) -> Multiaddr {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let addrs = g.listen_addrs().await.unwrap();
        if let Some(a) = addrs.into_iter().next() {
            return a;
        }
        assert!(tokio::time::Instant::now() < deadline, "no listen address");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `cond` every 50 ms until it holds, failing after `secs` seconds.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (head seq, head digest, depth, quarantined) of a device at a gateway.
pub fn state(g: &Handle, id: &DeviceId) -> Option<(u32, [u8; 32], u32, bool)> {
    g.store()
        .device(id)
        .unwrap()
        .map(|r| (r.head_seq, r.head_digest, r.depth, r.quarantine.is_some()))
}

/// GET `path` from a gateway's API (served: `Node::start(.., true)`), as JSON; the
/// response must be 200.
pub async fn api_get(g: &Handle, path: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = g.api_addr().expect("API served");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).expect("JSON body")
}

/// A metric's value as the node's `/metrics` text gives it, by its name with labels
/// (`slope_dropped_total{kind="…"}`; a trailing space is allowed); 0 when absent.
pub fn metric(g: &Handle, name: &str) -> u64 {
    g.metrics()
        .encode()
        .lines()
        .find_map(|l| {
            l.strip_prefix(name.trim_end())?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
