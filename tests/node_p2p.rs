//! Two nodes over real libp2p on 127.0.0.1: a late node syncs the chain headers-first when
//! it connects, and blocks mined afterwards reach it by gossip.

use gradientcoin::chain::params::ChainParams;
use gradientcoin::mempool::MempoolConfig;
use gradientcoin::net::{self, NetConfig};
use gradientcoin::node::{self, Handle, NodeOptions};
use std::time::Duration;

async fn start(dir: &std::path::Path) -> (Handle, net::NetHandle, std::thread::JoinHandle<()>) {
    let params = ChainParams::dev();
    let opts = NodeOptions { params: params.clone(), datadir: dir.to_path_buf(), mempool: MempoolConfig { max_bytes: 1 << 20, min_fee_rate: 1 } };
    let (handle, thread) = node::spawn(opts).unwrap();
    let cfg = NetConfig {
        keypair: libp2p::identity::Keypair::generate_ed25519(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: vec![],
        mdns: false,
        chain_id: params.chain_id,
        max_block_bytes: params.max_block_bytes,
        max_tx_bytes: params.tx_limits.max_tx_bytes,
        idle_timeout: Duration::from_secs(60),
        banned: vec![],
    };
    let (net, events) = net::spawn(cfg).unwrap();
    tokio::spawn(node::p2p::run(handle.clone(), net.clone(), events));
    (handle, net, thread)
}

/// Waits (bounded) until `b`'s tip equals `a`'s.
async fn converge(a: &Handle, b: &Handle) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (ta, tb) = (a.tip().await.unwrap(), b.tip().await.unwrap());
        if ta.hash == tb.hash {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no convergence: a at {}, b at {}", ta.height, tb.height);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_node_syncs_then_follows_by_gossip() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, net_a, _ta) = start(da.path()).await;
    a.generate(40, None).await.unwrap();
    let (b, net_b, _tb) = start(db.path()).await;
    assert_eq!(b.tip().await.unwrap().height, 0);
    let addr = net_a.listen_addrs().await.unwrap()[0].clone();
    net_b.dial(addr).await.unwrap();
    converge(&a, &b).await;
    assert_eq!(b.tip().await.unwrap().height, 40);
    // Wait until gossip meshes are up, then new blocks travel by gossip alone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while net_a.peers().await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await; // gossipsub subscription exchange
    a.generate(3, None).await.unwrap();
    converge(&a, &b).await;
    assert_eq!(b.tip().await.unwrap().height, 43);
}
