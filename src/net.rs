//! Peer-to-peer networking over libp2p: transport only.
//!
//! Owns the libp2p `Swarm` (TCP + noise + yamux; gossipsub, identify, ping, Kademlia,
//! optional mDNS, the sync protocol of [`protocol`]) and the ban list it enforces. It
//! decodes what peers send with the canonical encoding and its size limits, and it must
//! decide nothing about validity: every block, transaction and sync request goes to the
//! node as a [`NetEvent`], and the node answers with [`NetHandle::report`],
//! [`NetHandle::respond`] and [`NetHandle::ban`].
//!
//! Entry point: [`spawn`] starts one tokio task that owns the swarm (the libp2p
//! file-sharing example's shape) and returns a cloneable [`NetHandle`] plus the event
//! receiver. The task stops when the last handle is dropped.
//!
//! Wire format (documented for other implementations):
//! - gossipsub topics `/gradientcoin/<chain-id-hex8>/blocks` and `/gradientcoin/<chain-id-hex8>/txs`
//!   (first 8 hex digits of the chain id); each message is one canonically encoded
//!   `Block` or `Transaction`; message id = SHA-256 of the message data; signed messages
//!   (strict validation); default `/meshsub/1.x` protocol ids.
//! - identify protocol version `/gradientcoin/<chain-id-hex8>/1`; Kademlia protocol
//!   `/gradientcoin/<chain-id-hex8>/kad/1`.
//! - sync: `/gradientcoin/sync/1`, see [`protocol`].

mod behaviour;
mod event_loop;
pub mod protocol;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::request_response::{OutboundFailure, ResponseChannel};
use libp2p::swarm::DialError;
use libp2p::{SwarmBuilder, gossipsub, noise, tcp, yamux};
use tokio::sync::{mpsc, oneshot};

pub use libp2p::gossipsub::MessageId;
pub use libp2p::{Multiaddr, PeerId};

use crate::chain::block::Block;
use crate::chain::encode;
use crate::chain::tx::Transaction;
use crate::hash::Hash256;
use protocol::{SyncRequest, SyncResponse};

/// Commands waiting for the network task. Every command is handled in microseconds, so 256
/// only fills when the task is stalled; callers then wait (back-pressure) instead of
/// queueing without bound.
const COMMAND_CHANNEL: usize = 256;

/// Events waiting for the node. 1024 holds a few seconds of gossip at full rate. When the
/// node falls further behind, the network task sheds events (reporting shed gossip as
/// Ignore) rather than stalling the swarm: a stalled swarm stops answering pings and
/// every peer would drop us, and the node awaiting a reply from this task while the task
/// awaits the node would deadlock.
const EVENT_CHANNEL: usize = 1024;

/// What the network task needs to start.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// The node's libp2p identity (its `PeerId`).
    pub keypair: Keypair,
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/19733`; port 0 picks a free port
    /// (ask [`NetHandle::listen_addrs`] for it).
    pub listen: Vec<Multiaddr>,
    /// Peers dialled at start; those ending in `/p2p/<peer-id>` also seed Kademlia.
    pub bootstrap: Vec<Multiaddr>,
    /// Discover peers on the LAN with mDNS.
    pub mdns: bool,
    /// The chain id (genesis hash): names the topics and protocols.
    pub chain_id: Hash256,
    /// The network's block size limit: caps gossip messages and block decoding.
    pub max_block_bytes: usize,
    /// The network's transaction size limit: caps transaction decoding.
    pub max_tx_bytes: usize,
    /// Connections with no open stream close after this long.
    pub idle_timeout: Duration,
    /// Bans to enforce from the start (as persisted by the store): peer, unix time until.
    pub banned: Vec<(PeerId, u64)>,
}

/// The node's verdict on a gossip message, passed to gossipsub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: relay it to our mesh.
    Accept,
    /// Invalid: drop it and penalise the peer that sent it.
    Reject,
    /// Not invalid but not wanted (duplicate, early, unknown parent): drop it, no penalty.
    Ignore,
}

impl From<Verdict> for gossipsub::MessageAcceptance {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Accept => gossipsub::MessageAcceptance::Accept,
            Verdict::Reject => gossipsub::MessageAcceptance::Reject,
            Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
        }
    }
}

/// A gossip topic of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `/gradientcoin/<chain-id-hex8>/blocks`.
    Blocks,
    /// `/gradientcoin/<chain-id-hex8>/txs`.
    Txs,
}

impl Topic {
    /// The topic's name on the chain with `chain_id`.
    pub fn name(self, chain_id: &Hash256) -> String {
        let kind = match self {
            Topic::Blocks => "blocks",
            Topic::Txs => "txs",
        };
        format!("/gradientcoin/{}/{kind}", behaviour::chain_tag(chain_id))
    }
}

/// The reply slot of an inbound sync request; hand it back with [`NetHandle::respond`].
/// Dropping it makes the requester's request fail.
pub struct ResponseToken {
    peer: PeerId,
    channel: ResponseChannel<SyncResponse>,
}

impl ResponseToken {
    /// The peer waiting for the response.
    pub fn peer(&self) -> PeerId {
        self.peer
    }
}

impl fmt::Debug for ResponseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResponseToken({})", self.peer)
    }
}

/// What the network reports to the node.
#[derive(Debug)]
pub enum NetEvent {
    /// The first connection to a peer is up.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// Its address on that connection.
        addr: Multiaddr,
    },
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A peer subscribed to one of our topics: it now receives what we publish there.
    PeerSubscribed {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: Topic,
    },
    /// A gossiped block that decoded; report a [`Verdict`] for `message_id`.
    Block {
        /// The peer that forwarded it (the one to blame).
        source: PeerId,
        /// The gossip message id.
        message_id: MessageId,
        /// The block, not validated.
        block: Block,
    },
    /// A gossiped transaction that decoded; report a [`Verdict`] for `message_id`.
    Tx {
        /// The peer that forwarded it.
        source: PeerId,
        /// The gossip message id.
        message_id: MessageId,
        /// The transaction, not validated.
        tx: Transaction,
    },
    /// Gossip that does not decode (garbage, oversize, unknown topic). Already reported as
    /// Reject; the node decides about a ban.
    BadMessage {
        /// The peer that forwarded it.
        source: PeerId,
        /// The gossip message id.
        message_id: MessageId,
        /// Why it does not decode.
        reason: String,
    },
    /// A peer sent a sync request that broke the codec's limits or did not decode; the
    /// stream is already closed. The node decides about a ban.
    BadRequest {
        /// The peer.
        peer: PeerId,
        /// What was wrong.
        reason: String,
    },
    /// A peer asks for headers or blocks; answer with [`NetHandle::respond`].
    SyncRequest {
        /// The peer.
        peer: PeerId,
        /// What it asks for (counts already within the protocol limits).
        request: SyncRequest,
        /// Where the answer goes.
        token: ResponseToken,
    },
}

/// A connected peer, for `net_peers`-style queries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer.
    pub peer_id: PeerId,
    /// The remote address of each open connection.
    pub addresses: Vec<Multiaddr>,
    /// Its identify agent string, once identify has run.
    pub agent: Option<String>,
    /// Unix time (seconds) its first current connection opened.
    pub connected_since: u64,
}

/// Errors of the network layer.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// `spawn` was called outside a tokio runtime.
    #[error("the network task needs a tokio runtime")]
    NoRuntime,
    /// The TCP / noise / yamux transport could not be built.
    #[error("cannot build the transport: {0}")]
    Transport(#[from] noise::Error),
    /// A behaviour could not be built.
    #[error("cannot build {what}: {reason}")]
    Behaviour {
        /// Which behaviour.
        what: &'static str,
        /// libp2p's reason.
        reason: String,
    },
    /// A listen address was refused.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why (boxed: it is large and errors should stay small).
        source: Box<libp2p::TransportError<std::io::Error>>,
    },
    /// A dial could not start.
    #[error("cannot dial {addr}: {source}")]
    Dial {
        /// The address.
        addr: Multiaddr,
        /// Why (boxed: it is large and errors should stay small).
        source: Box<DialError>,
    },
    /// Gossipsub refused to publish (too large, signing failed, queues full).
    #[error("cannot publish on {topic:?}: {reason}")]
    Publish {
        /// The topic.
        topic: Topic,
        /// gossipsub's reason.
        reason: gossipsub::PublishError,
    },
    /// Subscribing to a topic failed.
    #[error("cannot subscribe to {topic:?}: {reason}")]
    Subscribe {
        /// The topic.
        topic: Topic,
        /// gossipsub's reason.
        reason: gossipsub::SubscriptionError,
    },
    /// A sync request failed (timeout, disconnect, undecodable or oversize response).
    #[error("sync request to {peer} failed: {reason}")]
    Request {
        /// The peer asked.
        peer: PeerId,
        /// Why.
        reason: OutboundFailure,
    },
    /// A sync message breaks the protocol limits.
    #[error("sync message breaks the protocol limits: {0}")]
    Limit(#[from] protocol::LimitError),
    /// The requester is gone (timed out or disconnected) before we responded.
    #[error("the response to {peer} cannot be sent: its request timed out or the connection closed")]
    ResponseChannelClosed {
        /// The requester.
        peer: PeerId,
    },
    /// The network task has stopped.
    #[error("the network task has stopped")]
    Shutdown,
}

/// Requests from handles to the network task; each carries its reply slot.
pub(crate) enum Command {
    Publish { topic: Topic, data: Vec<u8>, reply: oneshot::Sender<Result<(), NetError>> },
    Report { message_id: MessageId, source: PeerId, verdict: Verdict },
    Request { peer: PeerId, request: SyncRequest, reply: oneshot::Sender<Result<SyncResponse, NetError>> },
    Respond { token: ResponseToken, response: SyncResponse, reply: oneshot::Sender<Result<(), NetError>> },
    Ban { peer: PeerId, until: u64, reply: oneshot::Sender<()> },
    Unban { peer: PeerId, reply: oneshot::Sender<()> },
    Dial { addr: Multiaddr, reply: oneshot::Sender<Result<(), NetError>> },
    Peers { reply: oneshot::Sender<Vec<PeerInfo>> },
    ListenAddrs { reply: oneshot::Sender<Vec<Multiaddr>> },
}

/// A cloneable handle to the network task. The task stops when the last handle drops.
#[derive(Clone, Debug)]
pub struct NetHandle {
    commands: mpsc::Sender<Command>,
    local_peer_id: PeerId,
}

impl NetHandle {
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| NetError::Shutdown)?;
        rx.await.map_err(|_| NetError::Shutdown)
    }

    /// Publishes encoded bytes on a topic (also used by tests to send garbage).
    pub(crate) async fn publish_bytes(&self, topic: Topic, data: Vec<u8>) -> Result<(), NetError> {
        self.call(|reply| Command::Publish { topic, data, reply }).await?
    }

    /// Gossips a block. Having no subscribed peers, or having published the same block
    /// before, is not an error (it is logged).
    pub async fn publish_block(&self, block: &Block) -> Result<(), NetError> {
        // Encode here, on the caller's task, so the network task never spends time on it.
        self.publish_bytes(Topic::Blocks, encode::encode(block)).await
    }

    /// Gossips a transaction (same rules as [`Self::publish_block`]).
    pub async fn publish_tx(&self, tx: &Transaction) -> Result<(), NetError> {
        self.publish_bytes(Topic::Txs, encode::encode(tx)).await
    }

    /// Reports the node's verdict on a gossip message (from [`NetEvent::Block`] or
    /// [`NetEvent::Tx`]); only accepted messages are relayed. Report each message once.
    pub async fn report(
        &self,
        message_id: MessageId,
        propagation_source: PeerId,
        verdict: Verdict,
    ) -> Result<(), NetError> {
        self.commands
            .send(Command::Report { message_id, source: propagation_source, verdict })
            .await
            .map_err(|_| NetError::Shutdown)
    }

    /// Sends a sync request and waits for the response (bounded by the protocol's 30 s
    /// request timeout).
    pub async fn request(&self, peer: PeerId, request: SyncRequest) -> Result<SyncResponse, NetError> {
        request.check()?;
        self.call(|reply| Command::Request { peer, request, reply }).await?
    }

    /// Answers an inbound [`NetEvent::SyncRequest`].
    pub async fn respond(&self, token: ResponseToken, response: SyncResponse) -> Result<(), NetError> {
        response.check()?;
        self.call(|reply| Command::Respond { token, response, reply }).await?
    }

    /// Disconnects `peer` at once and refuses connections to and from it until the unix
    /// time `until_unix`.
    pub async fn ban(&self, peer: PeerId, until_unix: u64) -> Result<(), NetError> {
        self.call(|reply| Command::Ban { peer, until: until_unix, reply }).await
    }

    /// Lifts a ban.
    pub async fn unban(&self, peer: PeerId) -> Result<(), NetError> {
        self.call(|reply| Command::Unban { peer, reply }).await
    }

    /// Starts dialling `addr`; returns once the dial has started (the outcome arrives as
    /// [`NetEvent::PeerConnected`], or as nothing if it fails).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.call(|reply| Command::Dial { addr, reply }).await?
    }

    /// The connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetError> {
        self.call(|reply| Command::Peers { reply }).await
    }

    /// The addresses we listen on, once every listener has reported one (so a port-0
    /// listener shows its real port).
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.call(|reply| Command::ListenAddrs { reply }).await
    }

    /// Our peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }
}

/// Builds the swarm, starts listening and dialling, and spawns the network task on the
/// current tokio runtime.
pub fn spawn(cfg: NetConfig) -> Result<(NetHandle, mpsc::Receiver<NetEvent>), NetError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| NetError::NoRuntime)?;
    let local_peer_id = cfg.keypair.public().to_peer_id();
    let (chain_id, max_block_bytes, mdns) = (cfg.chain_id, cfg.max_block_bytes, cfg.mdns);
    let mut behaviour_error = None;
    let swarm = SwarmBuilder::with_existing_identity(cfg.keypair.clone())
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)?
        .with_behaviour(|key| match behaviour::Behaviour::new(key, &chain_id, max_block_bytes, mdns) {
            Ok(b) => Ok(b),
            Err(e) => {
                let text = e.to_string();
                behaviour_error = Some(e);
                Err(text.into())
            }
        })
        .map_err(|e| {
            behaviour_error.take().unwrap_or_else(|| NetError::Behaviour { what: "behaviour", reason: e.to_string() })
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(cfg.idle_timeout))
        .build();

    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CHANNEL);
    let (events_tx, events_rx) = mpsc::channel(EVENT_CHANNEL);
    let event_loop = event_loop::EventLoop::start(swarm, &cfg, commands_rx, events_tx)?;
    runtime.spawn(event_loop.run());
    Ok((NetHandle { commands: commands_tx, local_peer_id }, events_rx))
}
