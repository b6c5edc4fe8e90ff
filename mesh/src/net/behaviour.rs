//! The libp2p behaviour of a gateway: gossipsub (content-addressed message ids,
//! application validation, peer scoring), Kademlia, identify, optional mDNS, ping, the
//! sync request-response protocol, and a block list (empty unless the embedding program
//! blocks a peer: [`crate::Handle::block`]).

use std::time::Duration;

use libp2p::gossipsub::{
    self, IdentTopic, MessageAuthenticity, MessageId, PeerScoreParams, PeerScoreThresholds,
    TopicScoreParams, ValidationMode,
};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{StreamProtocol, allow_block_list, connection_limits, identify, kad, mdns, ping};

use super::codec::{Codec, PROTOCOL};
use super::topics;
use crate::error::Error;

/// Largest gossip message (a divergence proof is the largest, ≤ 64 KiB).
pub const MAX_GOSSIP: usize = 80 * 1024;

/// The gateway's network behaviour.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub gossipsub: gossipsub::Behaviour,
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    pub identify: identify::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub ping: ping::Behaviour,
    pub sync: request_response::Behaviour<Codec>,
    /// Peers refused: their connections are closed and every dial to or from them is
    /// denied (Kademlia's and identify's included) until they are unblocked.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Connections accepted at most (see [`limits`]): beyond them a new connection is
    /// denied before it costs more than its handshake.
    pub limits: connection_limits::Behaviour,
}

/// Incoming connections being negotiated at once, at most.
pub const MAX_PENDING_INCOMING: u32 = 64;
/// Connections to one peer at most (TCP and QUIC, and a simultaneous dial, fit).
pub const MAX_PER_PEER: u32 = 4;

/// The connection bounds: `max_incoming` established incoming connections, and the
/// constants above.
pub fn limits(max_incoming: u32) -> connection_limits::ConnectionLimits {
    connection_limits::ConnectionLimits::default()
        .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
        .with_max_established_incoming(Some(max_incoming.max(1)))
        .with_max_established_per_peer(Some(MAX_PER_PEER))
}

/// The gossip message id: blake3 of the data, so one attestation heard by many
/// gateways is one message.
pub fn message_id(m: &gossipsub::Message) -> MessageId {
    MessageId::from(&blake3::hash(&m.data).as_bytes()[..20])
}

/// Peer scoring: invalid messages (what we `Reject`) cost a lot; nothing penalises a
/// quiet topic (attestations may be rare). Colocation is not penalised: gateways of one
/// operator often share an address.
pub fn score_params() -> (PeerScoreParams, PeerScoreThresholds) {
    let mut params = PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        ..PeerScoreParams::default()
    };
    for topic in topics::all() {
        params.topics.insert(
            topic.hash(),
            TopicScoreParams {
                topic_weight: 1.0,
                time_in_mesh_weight: 0.01,
                time_in_mesh_quantum: Duration::from_secs(1),
                time_in_mesh_cap: 100.0,
                first_message_deliveries_weight: 1.0,
                first_message_deliveries_decay: 0.9,
                first_message_deliveries_cap: 50.0,
                mesh_message_deliveries_weight: 0.0,
                mesh_failure_penalty_weight: 0.0,
                invalid_message_deliveries_weight: -100.0,
                invalid_message_deliveries_decay: 0.99,
                ..TopicScoreParams::default()
            },
        );
    }
    let thresholds = PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -50.0,
        graylist_threshold: -80.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 5.0,
    };
    (params, thresholds)
}

impl Behaviour {
    /// Builds the behaviour for `key`.
    pub fn new(
        key: &Keypair,
        heartbeat: Duration,
        mdns: bool,
        limits: connection_limits::ConnectionLimits,
    ) -> Result<Self, Error> {
        let peer_id = key.public().to_peer_id();
        let config = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(heartbeat)
            .validation_mode(ValidationMode::Strict)
            .validate_messages()
            .message_id_fn(message_id)
            .max_transmit_size(MAX_GOSSIP)
            .duplicate_cache_time(Duration::from_secs(120))
            .build()
            .map_err(|e| Error::Network(format!("gossipsub config: {e}")))?;
        let mut gossipsub =
            gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)
                .map_err(|e| Error::Network(format!("gossipsub: {e}")))?;
        let (params, thresholds) = score_params();
        gossipsub
            .with_peer_score(params, thresholds)
            .map_err(|e| Error::Network(format!("peer score: {e}")))?;
        for t in topics::all() {
            gossipsub
                .subscribe(&t)
                .map_err(|e| Error::Network(format!("subscribe: {e}")))?;
        }
        let mut kad_config = kad::Config::new(StreamProtocol::new("/slope/kad/1"));
        kad_config.set_query_timeout(Duration::from_secs(30));
        let mut kad =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
        kad.set_mode(Some(kad::Mode::Server));
        let identify =
            identify::Behaviour::new(identify::Config::new("/slope/id/1".into(), key.public()));
        let mdns = if mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(|e| Error::Network(format!("mdns: {e}")))?,
            )
        } else {
            None
        };
        let sync = request_response::Behaviour::new(
            [(PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(20))
                .with_max_concurrent_streams(64),
        );
        Ok(Self {
            gossipsub,
            kad,
            identify,
            mdns: Toggle::from(mdns),
            ping: ping::Behaviour::default(),
            sync,
            blocked: allow_block_list::Behaviour::default(),
            limits: connection_limits::Behaviour::new(limits),
        })
    }

    /// Publishes on `topic`; a duplicate (someone published it first) is not an error.
    pub fn publish(&mut self, topic: &IdentTopic, data: Vec<u8>) -> bool {
        match self.gossipsub.publish(topic.clone(), data) {
            Ok(_) => true,
            Err(gossipsub::PublishError::Duplicate) => false,
            Err(e) => {
                tracing::debug!(error = %e, topic = %topic, "publish failed");
                false
            }
        }
    }
}
