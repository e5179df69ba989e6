//! The libp2p `NetworkBehaviour` of a node: which protocols it speaks and how each is
//! configured (gossipsub, identify, ping, Kademlia, optional mDNS, the sync protocol and
//! the ban list).
//!
//! Owns protocol configuration only. It must not interpret messages: the event loop in
//! `net` turns the events into `NetEvent`s, and `node` decides what they mean.

use std::time::Duration;

use libp2p::allow_block_list::{self, BlockedPeers};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{StreamProtocol, gossipsub, identify, kad, mdns, ping};

use crate::hash::{Hash256, sha256};
use crate::net::NetError;
use crate::net::protocol::{self, SyncCodec};

/// Gossipsub heartbeat. Test networks make a block every few seconds: 500 ms keeps mesh
/// repair and IHAVE gossip well inside one block interval, at the cost of a few small
/// control messages per peer per second.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// Room on top of the largest block for gossipsub's envelope (protobuf framing, topic,
/// signature, public key, sequence number) and control messages sharing the same RPC.
pub const GOSSIP_OVERHEAD_BYTES: usize = 64 * 1024;

/// How long a sync request may wait for its response. A 16 MiB response over a slow
/// link takes seconds, not minutes; a peer that takes longer is better replaced.
pub const SYNC_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The behaviours a node runs. The derive generates `BehaviourEvent`, one variant per field.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Banned peers: connections to and from them are denied during the handshake.
    /// First, so that no other behaviour builds a handler for a denied connection.
    pub blocked: allow_block_list::Behaviour<BlockedPeers>,
    /// Block and transaction gossip; messages wait for the node's verdict before relay.
    pub gossipsub: gossipsub::Behaviour,
    /// Exchanges agent, protocol version and listen addresses.
    pub identify: identify::Behaviour,
    /// Liveness.
    pub ping: ping::Behaviour,
    /// Peer discovery over the chain's own DHT.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// LAN discovery, off unless configured.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// Headers-first sync (`/gradientcoin/sync/1`).
    pub sync: request_response::Behaviour<SyncCodec>,
}

/// First 8 hex digits of the chain id: names topics and protocols so that networks with
/// different genesis blocks never share gossip or DHT records.
pub fn chain_tag(chain_id: &Hash256) -> String {
    chain_id.to_string()[..8].to_string()
}

/// Identify protocol version: `/gradientcoin/<chain-id-hex8>/1`.
pub fn identify_protocol(chain_id: &Hash256) -> String {
    format!("/gradientcoin/{}/1", chain_tag(chain_id))
}

/// Kademlia protocol name: `/gradientcoin/<chain-id-hex8>/kad/1`.
pub fn kad_protocol(chain_id: &Hash256) -> StreamProtocol {
    // StreamProtocol needs 'static text or a checked owned string; the tag is ASCII hex
    // after a leading '/', which is always a valid protocol name.
    StreamProtocol::try_from_owned(format!("/gradientcoin/{}/kad/1", chain_tag(chain_id)))
        .expect("'/gradientcoin/<hex>/kad/1' starts with '/'")
}

impl Behaviour {
    /// Builds every behaviour for the node with identity `key`.
    ///
    /// `max_block_bytes` sizes gossipsub's message cap: its default (64 KiB) is far below
    /// a block.
    pub fn new(key: &Keypair, chain_id: &Hash256, max_block_bytes: usize, mdns: bool) -> Result<Self, NetError> {
        let peer_id = key.public().to_peer_id();

        let gossip_cfg = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(HEARTBEAT)
            // Strict: every message is signed by its author and checked; required for
            // interop with standard implementations and for attributing messages.
            .validation_mode(gossipsub::ValidationMode::Strict)
            // Hold every message until the node reports Accept / Reject / Ignore, so that
            // an invalid block is never relayed by us.
            .validate_messages()
            // Content addressing: the same object sent by two peers is one message.
            .message_id_fn(|m: &gossipsub::Message| gossipsub::MessageId::from(sha256(&m.data).0.to_vec()))
            .max_transmit_size(max_block_bytes.saturating_add(GOSSIP_OVERHEAD_BYTES))
            .build()
            .map_err(|e| NetError::Behaviour { what: "gossipsub config", reason: e.to_string() })?;
        let gossipsub = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), gossip_cfg)
            .map_err(|e| NetError::Behaviour { what: "gossipsub", reason: e.to_string() })?;

        let identify = identify::Behaviour::new(
            identify::Config::new(identify_protocol(chain_id), key.public())
                .with_agent_version(format!("gradientcoin/{}", env!("CARGO_PKG_VERSION"))),
        );

        let mut kad = kad::Behaviour::with_config(
            peer_id,
            kad::store::MemoryStore::new(peer_id),
            kad::Config::new(kad_protocol(chain_id)),
        );
        // Nodes on a local testnet have no confirmed external address, so automatic mode
        // would leave every one of them a DHT client and discovery would find nobody.
        kad.set_mode(Some(kad::Mode::Server));

        let mdns = if mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(|e| NetError::Behaviour { what: "mdns", reason: e.to_string() })?,
            )
        } else {
            None
        };

        let sync = request_response::Behaviour::with_codec(
            SyncCodec::default(),
            [(protocol::PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(SYNC_REQUEST_TIMEOUT),
        );

        Ok(Behaviour {
            blocked: allow_block_list::Behaviour::default(),
            gossipsub,
            identify,
            ping: ping::Behaviour::new(ping::Config::new()),
            kad,
            mdns: Toggle::from(mdns),
            sync,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_carry_the_chain_tag() {
        let id: Hash256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".parse().unwrap();
        assert_eq!(identify_protocol(&id), "/gradientcoin/01234567/1");
        assert_eq!(kad_protocol(&id).as_ref(), "/gradientcoin/01234567/kad/1");
    }
}
