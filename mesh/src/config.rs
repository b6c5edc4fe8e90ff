//! The daemon's configuration (`slope.toml`): every section with its defaults, and the
//! commented template that `slope init` writes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the key, the database and nothing else live. Relative paths are relative to
    /// the configuration file.
    pub data_dir: PathBuf,
    pub network: Network,
    pub api: Api,
    pub ingest: Ingest,
    pub radio: Radio,
    pub trust: Trust,
    pub verifier: slope_node::verifier::Config,
}

/// libp2p networking.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Network {
    /// Multiaddrs to listen on (TCP and QUIC).
    pub listen: Vec<String>,
    /// Peers dialled at start and added to Kademlia: `/ip4/…/tcp/…/p2p/<peer id>`.
    pub bootstrap: Vec<String>,
    /// Discover peers on the local network with mDNS.
    pub mdns: bool,
    /// gossipsub heartbeat, milliseconds.
    pub heartbeat_ms: u64,
    /// How often each connected peer is asked for its summary, milliseconds.
    pub sync_interval_ms: u64,
    /// Peers asked per sync round, at most.
    pub sync_fanout: usize,
    /// Peers (inbound plus outbound, dials in progress included) beyond which the node
    /// stops dialling peers Kademlia discovers. Inbound connections are not refused.
    pub max_connections: u32,
    /// Established incoming connections accepted at most; beyond it a new one is denied
    /// (at most 64 more are negotiated at once, and 4 per peer).
    pub max_incoming: u32,
}

/// The operator HTTP API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Api {
    /// Bind address; keep it on loopback unless a reverse proxy with TLS fronts it.
    pub listen: SocketAddr,
    /// Bearer token required by operator actions (POST). Empty disables them.
    pub token: String,
}

/// The ingest pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ingest {
    /// Frames waiting for verification, per source (radio, gossip); the oldest is dropped
    /// at the bound.
    pub queue_capacity: usize,
    /// Frames verified and committed together (one batch verification, one commit).
    pub batch_max: usize,
    /// Group commit: verified batches waiting for the store are committed together, up
    /// to this many attestations in one write transaction (one fsync); receipts are
    /// signed after that commit. A lone batch commits at once. While a group commits,
    /// the batches waiting are verified together (one per verifier shard), so up to
    /// `commit_max` plus about one merged batch can wait verified.
    pub commit_max: usize,
    /// Frames kept per device in the store (establishment events are always kept).
    pub frames_per_device: u32,
    /// Peers' receipts held while their attestation has not arrived, at most (the oldest
    /// is dropped, and counted, at the bound).
    pub pending_receipts: usize,
    /// How long such a receipt is held, milliseconds.
    pub pending_receipt_ttl_ms: u64,
    /// The receipt window, milliseconds: an attestation heard on this gateway's radio
    /// is committed, receipted and gossiped at once, and its trust decision is taken
    /// this long later with the receipts the other gateways that heard it sent in the
    /// meantime; an attestation that came by gossip waits this long before it is
    /// verified, so that the receipts its witnesses gossip with it arrive first.
    /// 0: decided at once (peers' receipts arriving later are only counted).
    pub receipt_wait_ms: u64,
    /// Attestations committed and waiting for their decision (the receipt window), at
    /// most; at the bound the oldest is decided early, and counted
    /// (`slope_decisions_total{kind="early"}`).
    pub receipt_wait_max: usize,
}

/// A peer gateway whose witness receipts count (see [`Trust::witnesses`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Witness {
    /// Its public key, 64 hex digits (`witness_key` in its `slope status`).
    pub key: String,
    /// The operator's trust zone it stands in (0: none).
    #[serde(default)]
    pub zone: u16,
}

impl Witness {
    /// The key as bytes, if it is 32 bytes of hex.
    pub fn key_bytes(&self) -> Option<[u8; 32]> {
        hex::decode(self.key.trim()).ok()?.try_into().ok()
    }
}

/// Where frames from the air come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Radio {
    /// Serve the Semtech UDP packet forwarder on this address (`0.0.0.0:1700`); empty for
    /// none.
    pub forwarder: String,
    /// Answer attestations of known devices heard through the packet forwarder with a
    /// time echo downlink (`crate::downlink`; on by default: without it a device that
    /// needs the compact suite cannot get its time).
    pub echo: bool,
    /// At most one echo per device in this many ms.
    pub echo_gap_ms: u64,
    /// If not empty, only these gateway EUIs (16 hex digits) are served by the packet
    /// forwarder server; others are dropped and counted.
    pub forwarder_gateways: Vec<String>,
    /// If not empty, only datagrams from these IP addresses are served.
    pub forwarder_sources: Vec<std::net::IpAddr>,
    /// Gateways the packet forwarder server tracks at most; at the bound a new one
    /// replaces those silent for 120 s, else it is refused (counted).
    pub forwarder_max_gateways: usize,
}

/// The admission policy of the trust stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Trust {
    /// Decide with the full trust engine of `slope_node::trust` (weighting, graduated
    /// admission, grants; its own signed lineage). `false`: the small built-in policy
    /// below.
    pub engine: bool,
    /// The engine's policy (thresholds, bounds); see `slope_node::trust::Policy`.
    pub policy: slope_node::trust::Policy,
    /// Positions a device must have before full scope.
    pub full_depth: u32,
    /// Independent witnesses (gateways) a device needs before full scope.
    pub full_witnesses: u32,
    /// RSSI deviation from the device's own mean (dB) that raises monitoring.
    pub monitor_rssi_db: i16,
    /// Lifetime of a grant, seconds.
    pub grant_ttl_s: u64,
    /// Peer gateways whose witness receipts count, like KERI's configured witness list.
    /// Registered with the trust engine through signed operator actions (so a restore
    /// replays them); receipts from any other gateway are ignored and counted
    /// (`slope_dropped_total{kind="receipt_unlisted"}`): anyone can start a gateway
    /// and sign receipts, so an unlisted witness is a Sybil until an operator says not.
    pub witnesses: Vec<Witness>,
}

impl Default for Network {
    fn default() -> Self {
        Self {
            listen: vec![
                "/ip4/0.0.0.0/tcp/4710".into(),
                "/ip4/0.0.0.0/udp/4710/quic-v1".into(),
            ],
            bootstrap: Vec::new(),
            mdns: false,
            heartbeat_ms: 1000,
            sync_interval_ms: 30_000,
            sync_fanout: 4,
            max_connections: 128,
            max_incoming: 256,
        }
    }
}

impl Default for Api {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4711)),
            token: String::new(),
        }
    }
}

impl Default for Ingest {
    fn default() -> Self {
        Self {
            queue_capacity: 8192,
            batch_max: 256,
            commit_max: crate::pipeline::DEFAULT_COMMIT_MAX,
            frames_per_device: 256,
            pending_receipts: 65_536,
            pending_receipt_ttl_ms: 600_000,
            receipt_wait_ms: 250,
            receipt_wait_max: crate::pipeline::window::DEFAULT_MAX,
        }
    }
}

impl Default for Radio {
    fn default() -> Self {
        Self {
            forwarder: "0.0.0.0:1700".into(),
            echo: true,
            echo_gap_ms: 60_000,
            forwarder_gateways: Vec::new(),
            forwarder_sources: Vec::new(),
            forwarder_max_gateways: 1024,
        }
    }
}

impl Default for Trust {
    fn default() -> Self {
        Self {
            engine: true,
            policy: slope_node::trust::Policy::default(),
            full_depth: 16,
            full_witnesses: 2,
            monitor_rssi_db: 20,
            grant_ttl_s: 3600,
            witnesses: Vec::new(),
        }
    }
}

impl Network {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms.max(10))
    }
    pub fn sync_interval(&self) -> Duration {
        Duration::from_millis(self.sync_interval_ms.max(50))
    }
}

impl Config {
    /// Reads and checks a configuration file; `data_dir` is resolved against its folder.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut config: Config = toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if config.data_dir.as_os_str().is_empty() {
            config.data_dir = PathBuf::from("data");
        }
        if config.data_dir.is_relative() {
            let base = path.parent().unwrap_or(Path::new("."));
            config.data_dir = base.join(&config.data_dir);
        }
        Ok(config)
    }
}

/// The commented default `slope.toml` that `slope init` writes.
pub fn template(token: &str) -> String {
    format!(
        r#"# Slope gateway configuration. Every key is optional; shown values are the defaults.

# Folder for the gateway key (gateway.key, mode 0600) and the database (slope.redb),
# relative to this file.
data_dir = "data"

[network]
# Where to listen for other gateways: TCP and QUIC.
listen = ["/ip4/0.0.0.0/tcp/4710", "/ip4/0.0.0.0/udp/4710/quic-v1"]
# Gateways to dial at start, with their peer id (see `slope status` on them), e.g.
# "/ip4/192.0.2.10/tcp/4710/p2p/12D3KooW...". Kademlia finds the rest.
bootstrap = []
# Find gateways on the same LAN by mDNS.
mdns = false
# gossipsub heartbeat in milliseconds.
heartbeat_ms = 1000
# Every sync_interval_ms, up to sync_fanout peers are asked for their slope summary; what
# differs is fetched, and every comparison is also a divergence check.
sync_interval_ms = 30000
sync_fanout = 4
max_connections = 128
# Incoming connections accepted at most (beyond it new ones are denied; at most 64 are
# negotiated at once and 4 held per peer).
max_incoming = 256

[api]
# Operator HTTP API (JSON, /openapi.json, /metrics). Keep it on loopback.
listen = "127.0.0.1:4711"
# Bearer token for operator actions (release from quarantine, pin a scope).
# Empty disables them.
token = "{token}"

[ingest]
# Frames waiting per source (radio, gossip); the oldest is dropped (and counted) when full.
queue_capacity = 8192
# Frames verified in one ed25519 batch and committed in one transaction.
batch_max = 256
# Group commit: when several verified batches wait for the store (under load), up to
# this many attestations go into one transaction and one fsync. Receipts are still
# signed only after their commit; an idle node commits each batch at once.
commit_max = 4096
# Frames kept per device (establishment events are always kept).
frames_per_device = 256
# Peers' receipts waiting for their attestation: at most this many (oldest dropped),
# for at most this long.
pending_receipts = 65536
pending_receipt_ttl_ms = 600000
# The receipt window (ms): an attestation heard on the radio is committed and receipted
# at once, and decided this long later with the receipts of the other gateways that
# heard it; one from gossip waits this long before it is verified. 0: decide at once.
receipt_wait_ms = 250
# Attestations waiting for their decision at most; the oldest is decided early beyond.
receipt_wait_max = 32768

[radio]
# Semtech UDP packet forwarder: point the gateway's `server_address` here
# (`serv_port_up` / `serv_port_down` = the port). Empty disables it.
forwarder = "0.0.0.0:1700"
# Answer attestations of known devices with a time echo (a 39-byte downlink 2 s after
# the uplink, EU868 869.525 MHz at SF12: 1.97 s of the gateway's 10 % budget in that
# sub-band), at most one per device per `echo_gap_ms`. Devices that need the compact
# suite get their time from it; `false` stops every transmission of this gateway.
echo = true
echo_gap_ms = 60000
# Who may use the packet forwarder port: gateway EUIs (16 hex digits) and source IP
# addresses; empty lists admit anyone (each source is rate-limited). Gateways tracked at
# most: at the bound a new one replaces those silent for 120 s, else it is refused.
forwarder_gateways = []
forwarder_sources = []
forwarder_max_gateways = 1024

[trust]
# Decide with the trust engine (slope_node::trust): weighting, graduated admission,
# grants, and its own hash-chained lineage. `false` uses the small policy below. The
# engine's thresholds live in [trust.policy] (defaults documented in slope_node).
engine = true
# Built-in policy: full scope needs this slope depth and this many distinct witnessing gateways.
full_depth = 16
full_witnesses = 2
# An RSSI this far (dB) from the device's own mean raises elevated monitoring.
monitor_rssi_db = 20
# Grant lifetime, seconds.
grant_ttl_s = 3600
# Peer gateways whose witness receipts count (their `witness_key` from `slope status`)
# and the trust zone each stands in. Receipts from unlisted gateways are ignored.
# [[trust.witnesses]]
# key = "<64 hex digits>"
# zone = 1

[verifier]
# Devices tracked at most (new inceptions refused beyond it), the window of recent
# positions per device, and the escrow for events whose establishment event is missing.
max_devices = 1000000
window = 8
escrow_per_key = 8
escrow_total = 4096
escrow_ttl_ms = 86400000
released_max = 4096
# Rotations kept per device: a device's frames past this epoch are refused. 390 is the
# most a divergence proof can carry (a larger value acts as 390).
max_epochs = 390
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_to_defaults() {
        let c: Config = toml::from_str(&template("t")).unwrap();
        assert_eq!(c.api.token, "t");
        assert_eq!(c.network.listen, Network::default().listen);
        assert_eq!(c.verifier, slope_node::verifier::Config::default());
        assert_eq!(c.ingest.batch_max, Ingest::default().batch_max);
    }
}
