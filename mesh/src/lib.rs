//! # slope-mesh
//!
//! The Slope gateway daemon (`slope`): it hears LoRa frames (a Semtech packet forwarder,
//! a local radio or the simulator), verifies and witnesses them, gossips with other
//! gateways over libp2p, keeps a durable per-device record in redb, decides what each
//! device may do, and serves an operator API.
//!
//! ## Map
//! - [`node`]: the running gateway — one event loop owning the swarm and the pipeline;
//!   [`node::Handle`] to inject frames, query and stop it.
//! - [`pipeline`]: decode → verify (batch, [`pipeline::shards`] across cores) → trust
//!   decision → commit → one signed receipt batch → gossip; [`pipeline::Overlapped`]
//!   commits batch n while batch n+1 is verified; peers' receipts from listed witnesses
//!   ([`pipeline::pending`] holds those that arrive before their attestation); the
//!   receipt window ([`pipeline::window`]) decides an attestation heard on the radio
//!   `ingest.receipt_wait_ms` after its commit, with the receipts that came meanwhile.
//!   Suite-2 (compact, hash-only) frames go through the same pipeline
//!   ([`pipeline::compact`]: receive times, the stamped-frame gossip form, routing;
//!   results come one disclosure delay later, from the verifier's polled outcomes).
//! - [`trust`]: the trust stage (admission tiers, grants) behind [`trust::Decide`].
//! - [`store`]: redb tables for devices, frames, establishment events, divergence
//!   proofs, lineage, suite-2 anchors and frames ([`store::compact`]); `slope db check`.
//! - [`lineage`]: the hash-chained log of every observation, decision and action.
//! - [`net`]: libp2p behaviour (gossipsub, Kademlia, identify, mDNS, request-response
//!   sync) and the sync protocol.
//! - [`source`]: radio sources (packet forwarder, simulator, anything) as one channel.
//! - [`downlink`]: time echoes, the short downlink that answers a known device's
//!   attestation heard through the packet forwarder (its clock source).
//! - [`api`]: axum HTTP API, OpenAPI document, Prometheus `/metrics`.
//! - [`config`], [`identity`], [`metrics`], [`error`].
//!
//! ## Embedding (simulations, tests)
//! [`Node::start_with`] runs a gateway inside another program: several in one process
//! (each with its own data directory and identity), on loopback TCP
//! (`network.listen = ["/ip4/127.0.0.1/tcp/0"]`, `network.mdns = false`, peers given in
//! `network.bootstrap` or with [`Handle::dial`]), with [`node::Options`]: a clock the
//! caller drives ([`clock::Manual`]) and, for simulations only, commits without fsync.
//! Per node, [`Handle::radio`] injects radio frames, [`Handle::store`] answers queries
//! (a device's admission, slope, grant), [`Handle::metrics`] its counters, and
//! [`Handle::peers`] its connections, and [`Handle::events`] what it decided that a
//! harness reads back ([`node::Event`]: each quarantine with the node's time; a bounded
//! broadcast, see [`node::Options::events`]). Not provided: libp2p's memory transport
//! (embedded nodes use loopback TCP), and a stream of what it gossips other than by a
//! peer subscribing.
//!
//! ## Guarantees
//! - A witness receipt is signed, and a gossip message forwarded, only after the
//!   observation it concerns is committed (fsync) to the store.
//! - A divergence proof from anywhere is verified here before anything is quarantined.
//! - Every queue a remote party can fill is bounded; every drop is counted in `/metrics`.
//! - A corrupt or truncated database is an error that names the file and says to run
//!   `slope db check`; nothing a peer, a radio or the disk sends can panic the node.
//! - `#![forbid(unsafe_code)]`.
//!
//! ## Non-goals
//! - No TLS on the HTTP API (bind it to loopback or put a proxy in front).
//! - The packet-forwarder protocol is unauthenticated (see `slope_radios::forwarder`).
//! - No central server, and no consensus: gateways converge by gossip and sync; a
//!   divergence is a proof, not a vote.
//!
//! ## Features
//! - `forwarder` (default): serve the Semtech UDP packet forwarder as a radio source.
#![forbid(unsafe_code)]

pub mod api;
pub mod clock;
pub mod config;
pub mod downlink;
pub mod error;
pub mod identity;
pub mod lineage;
pub mod metrics;
pub mod net;
pub mod node;
pub mod pipeline;
pub mod source;
pub mod store;
pub mod trust;

pub use config::Config;
pub use error::Error;
pub use node::{Handle, Node};
