//! In-process nodes over real libp2p on 127.0.0.1 (port 0, temp dirs): start a node, its
//! network and the p2p glue, connect nodes, and wait (bounded) for tips.

#![allow(dead_code)]

use gradientcoin::chain::params::ChainParams;
use gradientcoin::hash::Hash256;
use gradientcoin::mempool::MempoolConfig;
use gradientcoin::net::{self, Multiaddr, NetConfig, NetEvent, NetHandle, PeerId};
use gradientcoin::node::p2p::SyncStats;
use gradientcoin::node::{self, Handle, NodeOptions};
use libp2p::multiaddr::Protocol;
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long any wait in these tests may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(40);

/// Starts a dev node on `dir`.
pub fn spawn_node(dir: &Path) -> (Handle, std::thread::JoinHandle<()>) {
    let opts = NodeOptions {
        params: ChainParams::dev(),
        datadir: dir.to_path_buf(),
        mempool: MempoolConfig { max_bytes: 1 << 20, min_fee_rate: 1 },
    };
    node::spawn(opts).expect("node starts")
}

/// Starts a network task on 127.0.0.1 (free port) enforcing `banned`.
pub fn spawn_net(banned: Vec<(PeerId, u64)>) -> (NetHandle, mpsc::Receiver<NetEvent>) {
    let params = ChainParams::dev();
    let cfg = NetConfig {
        keypair: libp2p::identity::Keypair::generate_ed25519(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")],
        bootstrap: vec![],
        mdns: false,
        chain_id: params.chain_id,
        max_block_bytes: params.max_block_bytes,
        max_tx_bytes: params.tx_limits.max_tx_bytes,
        idle_timeout: Duration::from_secs(60),
        banned,
    };
    net::spawn(cfg).expect("network starts")
}

/// A node with its network and p2p glue.
pub struct TestNode {
    /// The node.
    pub node: Handle,
    /// Its network.
    pub net: NetHandle,
    /// What its sync coordinator fetched.
    pub stats: SyncStats,
    /// The node thread (ends once every handle is gone).
    pub thread: Option<std::thread::JoinHandle<()>>,
    /// The p2p glue task.
    pub glue: tokio::task::JoinHandle<()>,
}

impl TestNode {
    /// Starts node, network and glue on `dir`.
    pub fn start(dir: &Path) -> TestNode {
        let (node, thread) = spawn_node(dir);
        let (net, events) = spawn_net(vec![]);
        TestNode::wire(node, thread, net, events)
    }

    /// Runs the p2p glue over an already started node and network.
    pub fn wire(
        node: Handle,
        thread: std::thread::JoinHandle<()>,
        net: NetHandle,
        events: mpsc::Receiver<NetEvent>,
    ) -> TestNode {
        let stats = SyncStats::default();
        let glue = tokio::spawn(node::p2p::run_with_stats(node.clone(), net.clone(), events, stats.clone()));
        TestNode { node, net, stats, thread: Some(thread), glue }
    }

    /// Our peer id.
    pub fn id(&self) -> PeerId {
        self.net.local_peer_id()
    }

    /// Our dialable address, with `/p2p/<id>`.
    pub async fn addr(&self) -> Multiaddr {
        p2p_addr(&self.net).await
    }

    /// Stops glue, network and node, and waits for the node thread (the store is flushed).
    pub async fn stop(mut self) {
        self.glue.abort();
        let _ = (&mut self.glue).await;
        let thread = self.thread.take();
        drop(self);
        if let Some(t) = thread {
            tokio::task::spawn_blocking(move || t.join().expect("node thread")).await.expect("join");
        }
    }
}

/// `net`'s first listen address with `/p2p/<id>`.
pub async fn p2p_addr(net: &NetHandle) -> Multiaddr {
    let addr = net.listen_addrs().await.expect("listen addrs")[0].clone();
    addr.with(Protocol::P2p(net.local_peer_id()))
}

/// Makes `from` dial `to` and waits until both see the connection.
pub async fn connect(from: &NetHandle, to: &NetHandle) {
    from.dial(p2p_addr(to).await).await.expect("dial");
    wait_until("connected", || async {
        let a = from.peers().await.expect("peers").iter().any(|p| p.peer_id == to.local_peer_id());
        let b = to.peers().await.expect("peers").iter().any(|p| p.peer_id == from.local_peer_id());
        a && b
    })
    .await;
}

/// Polls `cond` every 20 ms until it holds; panics after [`DEADLINE`].
pub async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every node's tip is `hash`.
pub async fn wait_tips(nodes: &[&Handle], hash: Hash256) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut behind = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            let tip = n.tip().await.expect("tip");
            if tip.hash != hash {
                behind.push((i, tip.height));
            }
        }
        if behind.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "no convergence on {hash}: (node, height) behind: {behind:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Unix time now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
