//! In-process tests over real libp2p on 127.0.0.1 (port 0). Every wait is bounded by a
//! timeout; nothing sleeps and polls.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::timeout;

use super::protocol::{MAX_BLOCKS_PER_RESPONSE, SyncRequest, SyncResponse};
use super::*;
use crate::chain::params::ChainParams;

/// Upper bound on any single expected event; they normally arrive within milliseconds.
const WAIT: Duration = Duration::from_secs(10);
/// How long we watch for something that must not happen.
const QUIET: Duration = Duration::from_millis(1500);

fn dev() -> &'static ChainParams {
    static P: OnceLock<ChainParams> = OnceLock::new();
    P.get_or_init(ChainParams::dev)
}

/// A distinct small block (the net layer does not validate).
fn block(nonce: u64) -> Block {
    let mut b = dev().genesis.clone();
    b.header.nonce = nonce;
    b
}

struct Node {
    net: NetHandle,
    events: mpsc::Receiver<NetEvent>,
    id: PeerId,
    addr: Multiaddr,
}

fn config() -> NetConfig {
    NetConfig {
        keypair: Keypair::generate_ed25519(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: vec![],
        mdns: false,
        chain_id: dev().chain_id,
        max_block_bytes: dev().max_block_bytes,
        max_tx_bytes: dev().tx_limits.max_tx_bytes,
        idle_timeout: Duration::from_secs(60),
        banned: vec![],
    }
}

async fn node_with(cfg: NetConfig) -> Node {
    let (net, events) = spawn(cfg).unwrap();
    let addrs = timeout(WAIT, net.listen_addrs()).await.unwrap().unwrap();
    assert_eq!(addrs.len(), 1);
    assert!(!addrs[0].to_string().ends_with("/tcp/0"), "real port expected: {}", addrs[0]);
    Node { id: net.local_peer_id(), net, events, addr: addrs[0].clone() }
}

async fn node() -> Node {
    node_with(config()).await
}

/// Waits for the first event `f` maps to `Some`, discarding the others.
async fn wait_for<T>(node: &mut Node, what: &str, mut f: impl FnMut(NetEvent) -> Option<T>) -> T {
    let got = timeout(WAIT, async {
        loop {
            match node.events.recv().await {
                Some(ev) => {
                    if let Some(t) = f(ev) {
                        return t;
                    }
                }
                None => panic!("event channel closed while waiting for {what}"),
            }
        }
    })
    .await;
    got.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn subscribed(node: &mut Node, peer: PeerId) {
    wait_for(node, "block topic subscription", |ev| match ev {
        NetEvent::PeerSubscribed { peer: p, topic: Topic::Blocks } if p == peer => Some(()),
        _ => None,
    })
    .await
}

/// `b` dials `a`; returns once each side knows the other follows the block topic.
async fn connect(a: &mut Node, b: &mut Node) {
    b.net.dial(a.addr.clone()).await.unwrap();
    let b_id = b.id;
    wait_for(a, "PeerConnected at the dialled node", |ev| match ev {
        NetEvent::PeerConnected { peer, .. } if peer == b_id => Some(()),
        _ => None,
    })
    .await;
    subscribed(a, b.id).await;
    subscribed(b, a.id).await;
}

async fn next_block(node: &mut Node) -> (PeerId, MessageId, Block) {
    wait_for(node, "a gossiped block", |ev| match ev {
        NetEvent::Block { source, message_id, block } => Some((source, message_id, block)),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_connect_and_gossip_a_block_and_a_tx() {
    let (mut a, mut b) = (node().await, node().await);
    connect(&mut a, &mut b).await;

    let peers = a.net.peers().await.unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].peer_id, b.id);
    assert!(!peers[0].addresses.is_empty());

    let sent = block(1);
    a.net.publish_block(&sent).await.unwrap();
    let (source, _, got) = next_block(&mut b).await;
    assert_eq!(source, a.id);
    assert_eq!(got.hash(), sent.hash());
    // Publishing the same block again is a logged no-op, not an error.
    a.net.publish_block(&sent).await.unwrap();

    let tx = dev().genesis.txs[0].clone();
    a.net.publish_tx(&tx).await.unwrap();
    let got = wait_for(&mut b, "a gossiped tx", |ev| match ev {
        NetEvent::Tx { tx, .. } => Some(tx),
        _ => None,
    })
    .await;
    assert_eq!(got.txid(), tx.txid());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_is_relayed_only_after_accept() {
    let (mut a, mut b, mut c) = (node().await, node().await, node().await);
    // Keep the line A - B - C: without these bans Kademlia would introduce A and C.
    let far = u64::MAX;
    a.net.ban(c.id, far).await.unwrap();
    c.net.ban(a.id, far).await.unwrap();
    connect(&mut a, &mut b).await;
    connect(&mut b, &mut c).await;

    let accepted = block(10);
    a.net.publish_block(&accepted).await.unwrap();
    let (source, id, got) = next_block(&mut b).await;
    assert_eq!((source, got.hash()), (a.id, accepted.hash()));
    b.net.report(id, source, Verdict::Accept).await.unwrap();
    let (source, _, got) = next_block(&mut c).await;
    assert_eq!((source, got.hash()), (b.id, accepted.hash()));

    let rejected = block(11);
    a.net.publish_block(&rejected).await.unwrap();
    let (source, id, got) = next_block(&mut b).await;
    assert_eq!(got.hash(), rejected.hash());
    b.net.report(id, source, Verdict::Reject).await.unwrap();
    let leaked = timeout(QUIET, next_block(&mut c)).await;
    assert!(leaked.is_err(), "a rejected block reached C: {leaked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_request_is_answered_through_respond() {
    let (mut a, mut b) = (node().await, node().await);
    connect(&mut a, &mut b).await;

    let genesis = dev().genesis.header;
    let asked = SyncRequest::GetHeaders { locator: vec![genesis.prev], stop: Hash256::ZERO };
    let requester = b.net.clone();
    let (a_id, req) = (a.id, asked.clone());
    let pending = tokio::spawn(async move { requester.request(a_id, req).await });

    let (peer, request, token) = wait_for(&mut a, "a sync request", |ev| match ev {
        NetEvent::SyncRequest { peer, request, token } => Some((peer, request, token)),
        _ => None,
    })
    .await;
    assert_eq!((peer, &request), (b.id, &asked));
    assert_eq!(token.peer(), b.id);
    a.net.respond(token, SyncResponse::Headers(vec![genesis])).await.unwrap();

    let answer = timeout(WAIT, pending).await.unwrap().unwrap().unwrap();
    assert_eq!(answer, SyncResponse::Headers(vec![genesis]));

    // Over-limit requests never leave the node.
    let too_many = SyncRequest::GetBlocks { hashes: vec![Hash256::ZERO; MAX_BLOCKS_PER_RESPONSE + 1] };
    assert!(matches!(b.net.request(a.id, too_many).await, Err(NetError::Limit(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banned_peer_is_disconnected_and_cannot_reconnect_until_unbanned() {
    let (mut a, mut b) = (node().await, node().await);
    connect(&mut a, &mut b).await;

    a.net.ban(b.id, u64::MAX).await.unwrap();
    let (a_id, b_id) = (a.id, b.id);
    wait_for(&mut a, "B disconnected at A", |ev| match ev {
        NetEvent::PeerDisconnected { peer } if peer == b_id => Some(()),
        _ => None,
    })
    .await;
    wait_for(&mut b, "A disconnected at B", |ev| match ev {
        NetEvent::PeerDisconnected { peer } if peer == a_id => Some(()),
        _ => None,
    })
    .await;

    // The re-dial may start, but A must never accept it; watch both sides for a while.
    b.net.dial(a.addr.clone()).await.unwrap();
    let watch = timeout(QUIET, async {
        loop {
            tokio::select! {
                Some(ev) = a.events.recv() => {
                    if let NetEvent::PeerConnected { peer, .. } = ev {
                        assert_ne!(peer, b_id, "A accepted a connection from banned B");
                    }
                }
                Some(_) = b.events.recv() => {}
            }
        }
    })
    .await;
    assert!(watch.is_err(), "watch loop ended early");
    assert!(a.net.peers().await.unwrap().iter().all(|p| p.peer_id != b_id));
    assert!(b.net.peers().await.unwrap().iter().all(|p| p.peer_id != a_id));

    a.net.unban(b.id).await.unwrap();
    b.net.dial(a.addr.clone()).await.unwrap();
    wait_for(&mut a, "B reconnected after unban", |ev| match ev {
        NetEvent::PeerConnected { peer, .. } if peer == b_id => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_gossip_is_reported_as_a_bad_message() {
    let (mut a, mut b) = (node().await, node().await);
    connect(&mut a, &mut b).await;

    a.net.publish_bytes(Topic::Blocks, vec![0xde, 0xad, 0xbe, 0xef]).await.unwrap();
    let (source, reason) = wait_for(&mut b, "BadMessage", |ev| match ev {
        NetEvent::BadMessage { source, reason, .. } => Some((source, reason)),
        NetEvent::Block { .. } => panic!("garbage decoded as a block"),
        _ => None,
    })
    .await;
    assert_eq!(source, a.id);
    assert!(reason.contains("block"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bans_from_the_config_apply_from_the_start() {
    let b_cfg = config();
    let b_id = b_cfg.keypair.public().to_peer_id();
    let mut a = node_with(NetConfig { banned: vec![(b_id, u64::MAX)], ..config() }).await;
    let b = node_with(b_cfg).await;

    b.net.dial(a.addr.clone()).await.unwrap();
    let connected = timeout(
        QUIET,
        wait_for(&mut a, "a connection from B", |ev| match ev {
            NetEvent::PeerConnected { peer, .. } if peer == b_id => Some(()),
            _ => None,
        }),
    )
    .await;
    assert!(connected.is_err(), "A accepted B despite the configured ban");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_mdns_starts_and_listens() {
    // Only this node runs mDNS, so it finds none of the other tests' nodes.
    let n = node_with(NetConfig { mdns: true, ..config() }).await;
    assert!(n.net.peers().await.unwrap().is_empty());
}
