//! The network task: owns the `Swarm`, serves [`Command`]s from handles, and turns swarm
//! events into [`NetEvent`]s.
//!
//! One task, one owner: nothing else touches the swarm, so no locks. It must never block
//! (no waiting on the node: events are offered with `try_send`), never panic on a peer's
//! input, and never judge validity.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId, PublishError, TopicHash};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identify, kad, mdns};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::chain::block::Block;
use crate::chain::encode;
use crate::chain::tx::Transaction;
use crate::net::behaviour::{Behaviour, BehaviourEvent};
use crate::net::protocol::SyncResponse;
use crate::net::{Command, NetConfig, NetError, NetEvent, PeerInfo, ResponseToken, Topic};

/// How often expired bans are lifted. A ban ends at most this late; a minute-scale ban
/// period makes 5 s irrelevant.
const BAN_SWEEP: Duration = Duration::from_secs(5);

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A connected peer's bookkeeping.
struct Peer {
    /// Remote address per open connection.
    connections: HashMap<ConnectionId, Multiaddr>,
    agent: Option<String>,
    since: u64,
}

/// The state of the network task.
pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    blocks_topic: IdentTopic,
    txs_topic: IdentTopic,
    max_block_bytes: usize,
    max_tx_bytes: usize,
    /// Our chain's Kademlia protocol, to recognise peers of the same chain.
    kad_protocol: StreamProtocol,
    /// Outbound sync requests waiting for their response.
    pending_requests: HashMap<OutboundRequestId, (PeerId, oneshot::Sender<Result<SyncResponse, NetError>>)>,
    peers: HashMap<PeerId, Peer>,
    /// Banned peers and the unix time their ban ends.
    bans: HashMap<PeerId, u64>,
    /// Addresses per listener; a listener with none has not reported yet.
    listeners: HashMap<ListenerId, Vec<Multiaddr>>,
    /// `listen_addrs` callers waiting for every listener to report.
    listen_waiters: Vec<oneshot::Sender<Vec<Multiaddr>>>,
}

impl EventLoop {
    /// Subscribes, listens, applies the configured bans and dials the bootstrap peers.
    pub(crate) fn start(
        mut swarm: Swarm<Behaviour>,
        cfg: &NetConfig,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<NetEvent>,
    ) -> Result<Self, NetError> {
        let blocks_topic = IdentTopic::new(Topic::Blocks.name(&cfg.chain_id));
        let txs_topic = IdentTopic::new(Topic::Txs.name(&cfg.chain_id));
        for (topic, kind) in [(&blocks_topic, Topic::Blocks), (&txs_topic, Topic::Txs)] {
            swarm
                .behaviour_mut()
                .gossipsub
                .subscribe(topic)
                .map_err(|reason| NetError::Subscribe { topic: kind, reason })?;
        }

        let mut listeners = HashMap::new();
        for addr in &cfg.listen {
            let id = swarm
                .listen_on(addr.clone())
                .map_err(|source| NetError::Listen { addr: addr.clone(), source: Box::new(source) })?;
            listeners.insert(id, Vec::new());
        }

        let mut this = EventLoop {
            swarm,
            commands,
            events,
            blocks_topic,
            txs_topic,
            max_block_bytes: cfg.max_block_bytes,
            max_tx_bytes: cfg.max_tx_bytes,
            kad_protocol: crate::net::behaviour::kad_protocol(&cfg.chain_id),
            pending_requests: HashMap::new(),
            peers: HashMap::new(),
            bans: HashMap::new(),
            listeners,
            listen_waiters: Vec::new(),
        };

        let now = now_unix();
        for &(peer, until) in &cfg.banned {
            if until > now {
                this.ban(peer, until);
            }
        }

        let mut seeded = false;
        for addr in &cfg.bootstrap {
            if let Some(Protocol::P2p(peer)) = addr.iter().last() {
                this.swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
                seeded = true;
            }
            // A bootstrap peer that is down must not stop the node: log and go on.
            if let Err(e) = this.swarm.dial(addr.clone()) {
                warn!(%addr, error = %e, "cannot dial bootstrap peer");
            }
        }
        if seeded && let Err(e) = this.swarm.behaviour_mut().kad.bootstrap() {
            debug!(error = ?e, "kademlia bootstrap did not start");
        }
        Ok(this)
    }

    /// Runs until every handle is dropped.
    pub(crate) async fn run(mut self) {
        let mut sweep = tokio::time::interval(BAN_SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    // Every handle is gone: shut down (dropping the swarm closes connections).
                    None => break,
                },
                _ = sweep.tick() => self.lift_expired_bans(),
            }
        }
        debug!("network task stopped");
    }

    /// Offers an event to the node without waiting; see `EVENT_CHANNEL` for why. Returns
    /// the event when it was not delivered, so the caller can undo its side effects.
    fn emit(&mut self, ev: NetEvent) -> Option<NetEvent> {
        match self.events.try_send(ev) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(ev)) => {
                warn!(event = ?ev, "node is behind: network event dropped");
                Some(ev)
            }
            Err(mpsc::error::TrySendError::Closed(ev)) => {
                debug!("event receiver dropped; event discarded");
                Some(ev)
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish { topic, data, reply } => {
                let hash = match topic {
                    Topic::Blocks => self.blocks_topic.hash(),
                    Topic::Txs => self.txs_topic.hash(),
                };
                let result = match self.swarm.behaviour_mut().gossipsub.publish(hash, data) {
                    Ok(id) => {
                        debug!(?topic, %id, "published");
                        Ok(())
                    }
                    // Not errors for the caller: alone on the network, or already sent.
                    Err(PublishError::NoPeersSubscribedToTopic) => {
                        debug!(?topic, "published to nobody: no peer subscribed yet");
                        Ok(())
                    }
                    Err(PublishError::Duplicate) => {
                        debug!(?topic, "not published again: duplicate");
                        Ok(())
                    }
                    Err(reason) => Err(NetError::Publish { topic, reason }),
                };
                let _ = reply.send(result);
            }
            Command::Report { message_id, source, verdict } => {
                let known = self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                    &message_id,
                    &source,
                    verdict.into(),
                );
                if !known {
                    debug!(%message_id, "verdict for a message no longer in the cache");
                }
            }
            Command::Request { peer, request, reply } => {
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.pending_requests.insert(id, (peer, reply));
            }
            Command::Respond { token, response, reply } => {
                let peer = token.peer;
                let result = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(token.channel, response)
                    .map_err(|_| NetError::ResponseChannelClosed { peer });
                let _ = reply.send(result);
            }
            Command::Ban { peer, until, reply } => {
                self.ban(peer, until);
                let _ = reply.send(());
            }
            Command::Unban { peer, reply } => {
                self.unban(peer);
                let _ = reply.send(());
            }
            Command::Dial { addr, reply } => {
                let result =
                    self.swarm.dial(addr.clone()).map_err(|source| NetError::Dial { addr, source: Box::new(source) });
                let _ = reply.send(result);
            }
            Command::Peers { reply } => {
                let peers = self
                    .peers
                    .iter()
                    .map(|(id, p)| PeerInfo {
                        peer_id: *id,
                        addresses: p.connections.values().cloned().collect(),
                        agent: p.agent.clone(),
                        connected_since: p.since,
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::ListenAddrs { reply } => {
                self.listen_waiters.push(reply);
                self.answer_listen_waiters();
            }
        }
    }

    fn ban(&mut self, peer: PeerId, until: u64) {
        info!(%peer, until, "peer banned");
        self.bans.insert(peer, until);
        // Closes every connection to the peer now and denies new ones in the handshake.
        self.swarm.behaviour_mut().blocked.block_peer(peer);
        // Forget its addresses so discovery does not keep dialling it.
        self.swarm.behaviour_mut().kad.remove_peer(&peer);
    }

    fn unban(&mut self, peer: PeerId) {
        if self.bans.remove(&peer).is_some() {
            info!(%peer, "ban lifted");
        }
        self.swarm.behaviour_mut().blocked.unblock_peer(peer);
    }

    fn lift_expired_bans(&mut self) {
        let now = now_unix();
        let expired: Vec<PeerId> = self.bans.iter().filter(|&(_, &until)| until <= now).map(|(p, _)| *p).collect();
        for peer in expired {
            self.unban(peer);
        }
    }

    fn is_banned(&self, peer: &PeerId) -> bool {
        self.bans.get(peer).is_some_and(|&until| until > now_unix())
    }

    fn answer_listen_waiters(&mut self) {
        if self.listen_waiters.is_empty() || self.listeners.values().any(Vec::is_empty) {
            return;
        }
        let addrs: Vec<Multiaddr> = self.listeners.values().flatten().cloned().collect();
        for w in self.listen_waiters.drain(..) {
            let _ = w.send(addrs.clone());
        }
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::Behaviour(ev) => self.on_behaviour_event(ev),
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                // The block list denies banned peers in the handshake; this catches a
                // connection that raced with the ban.
                if self.is_banned(&peer_id) {
                    debug!(peer = %peer_id, "closing connection from banned peer");
                    self.swarm.close_connection(connection_id);
                    return;
                }
                let addr = endpoint.get_remote_address().clone();
                let first = !self.peers.contains_key(&peer_id);
                let peer = self.peers.entry(peer_id).or_insert_with(|| Peer {
                    connections: HashMap::new(),
                    agent: None,
                    since: now_unix(),
                });
                peer.connections.insert(connection_id, addr.clone());
                if first {
                    debug!(peer = %peer_id, %addr, "peer connected");
                    self.emit(NetEvent::PeerConnected { peer: peer_id, addr });
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, cause, .. } => {
                let Some(peer) = self.peers.get_mut(&peer_id) else {
                    return;
                };
                peer.connections.remove(&connection_id);
                if peer.connections.is_empty() {
                    self.peers.remove(&peer_id);
                    debug!(peer = %peer_id, ?cause, "peer disconnected");
                    self.emit(NetEvent::PeerDisconnected { peer: peer_id });
                }
            }
            SwarmEvent::NewListenAddr { listener_id, address } => {
                info!(%address, "listening");
                self.listeners.entry(listener_id).or_default().push(address);
                self.answer_listen_waiters();
            }
            SwarmEvent::ExpiredListenAddr { listener_id, address } => {
                if let Some(addrs) = self.listeners.get_mut(&listener_id) {
                    addrs.retain(|a| a != &address);
                }
            }
            SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
                warn!(?listener_id, ?reason, "listener closed");
                self.listeners.remove(&listener_id);
                self.answer_listen_waiters();
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(?peer_id, %error, "outgoing connection failed");
            }
            SwarmEvent::IncomingConnectionError { send_back_addr, error, .. } => {
                debug!(%send_back_addr, %error, "incoming connection failed");
            }
            other => debug!(event = ?other, "swarm event"),
        }
    }

    fn on_behaviour_event(&mut self, ev: BehaviourEvent) {
        match ev {
            BehaviourEvent::Gossipsub(ev) => self.on_gossip(ev),
            BehaviourEvent::Sync(ev) => self.on_sync(ev),
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    p.agent = Some(info.agent_version.clone());
                }
                // Feed the DHT only with peers that speak our chain's Kademlia protocol,
                // so discovery never leads to nodes of another chain.
                if info.protocols.contains(&self.kad_protocol) {
                    for addr in info.listen_addrs {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    self.swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
                    if !self.swarm.is_connected(&peer) && !self.is_banned(&peer) {
                        let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(peer).addresses(vec![addr]).build();
                        if let Err(e) = self.swarm.dial(opts) {
                            debug!(%peer, error = %e, "cannot dial mdns peer");
                        }
                    }
                }
            }
            BehaviourEvent::Kad(kad::Event::RoutingUpdated { peer, is_new_peer: true, .. }) => {
                debug!(%peer, "kademlia: new peer in routing table");
            }
            BehaviourEvent::Ping(_) => {}
            other => debug!(event = ?other, "behaviour event"),
        }
    }

    fn topic_of(&self, hash: &TopicHash) -> Option<Topic> {
        if *hash == self.blocks_topic.hash() {
            Some(Topic::Blocks)
        } else if *hash == self.txs_topic.hash() {
            Some(Topic::Txs)
        } else {
            None
        }
    }

    fn reject_bad_gossip(&mut self, source: PeerId, message_id: MessageId, reason: String) {
        debug!(%source, %message_id, %reason, "undecodable gossip");
        self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
            &message_id,
            &source,
            MessageAcceptance::Reject,
        );
        self.emit(NetEvent::BadMessage { source, message_id, reason });
    }

    fn on_gossip(&mut self, ev: gossipsub::Event) {
        match ev {
            gossipsub::Event::Message { propagation_source: source, message_id, message } => {
                let event = match self.topic_of(&message.topic) {
                    Some(Topic::Blocks) => {
                        match encode::decode::<Block>(&message.data, self.max_block_bytes, "block") {
                            Ok(block) => NetEvent::Block { source, message_id: message_id.clone(), block },
                            Err(e) => {
                                return self.reject_bad_gossip(source, message_id, e.to_string());
                            }
                        }
                    }
                    Some(Topic::Txs) => {
                        match encode::decode::<Transaction>(&message.data, self.max_tx_bytes, "transaction") {
                            Ok(tx) => NetEvent::Tx { source, message_id: message_id.clone(), tx },
                            Err(e) => return self.reject_bad_gossip(source, message_id, e.to_string()),
                        }
                    }
                    None => {
                        let reason = format!("message on unknown topic {}", message.topic);
                        return self.reject_bad_gossip(source, message_id, reason);
                    }
                };
                if self.emit(event).is_some() {
                    // The node never sees it: release it from gossipsub's cache without
                    // judging it, so the sender is not penalised for our backlog.
                    self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &message_id,
                        &source,
                        MessageAcceptance::Ignore,
                    );
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                if let Some(topic) = self.topic_of(&topic) {
                    self.emit(NetEvent::PeerSubscribed { peer: peer_id, topic });
                }
            }
            other => debug!(event = ?other, "gossipsub event"),
        }
    }

    fn on_sync(&mut self, ev: request_response::Event<crate::net::protocol::SyncRequest, SyncResponse>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    let token = ResponseToken { peer, channel };
                    // If the node cannot take it, dropping the token fails the request at
                    // the requester, who asks someone else.
                    self.emit(NetEvent::SyncRequest { peer, request, token });
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some((_, reply)) = self.pending_requests.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
                debug!(%peer, %error, "sync request failed");
                if let Some((_, reply)) = self.pending_requests.remove(&request_id) {
                    let _ = reply.send(Err(NetError::Request { peer, reason: error }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                // Undecodable or over-limit requests are the peer's fault; timeouts and
                // closed connections are not.
                if let request_response::InboundFailure::Io(e) = &error
                    && e.kind() == std::io::ErrorKind::InvalidData
                {
                    self.emit(NetEvent::BadRequest { peer, reason: e.to_string() });
                } else {
                    debug!(%peer, %error, "inbound sync request failed");
                }
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}
