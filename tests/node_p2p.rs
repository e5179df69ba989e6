//! Nodes over real libp2p on 127.0.0.1: a late node syncs the chain headers-first when it
//! connects and then follows by gossip; three nodes converge; a node reorganises to a
//! peer's heavier chain on connect; a long chain is fetched from two peers at once; a peer
//! serving an invalid block is banned, and the ban survives a restart.

#[path = "common/net.rs"]
mod net_common;

use gradientcoin::chain::block::Block;
use gradientcoin::hash::Hash256;
use gradientcoin::net::NetEvent;
use gradientcoin::net::protocol::{MAX_HEADERS, SyncRequest, SyncResponse};
use gradientcoin::node::p2p::persisted_bans;
use gradientcoin::node::{BlockId, Handle};
use net_common::{TestNode, connect, spawn_net, spawn_node, unix_now, wait_tips, wait_until};
use std::time::Duration;

/// Gossipsub needs a heartbeat or two after peers subscribe before its meshes carry
/// blocks; sync covers anything missed except the very last block, so give it that.
async fn let_meshes_form() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_node_syncs_then_follows_by_gossip() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestNode::start(da.path());
    a.node.generate(40, None).await.unwrap();
    let b = TestNode::start(db.path());
    assert_eq!(b.node.tip().await.unwrap().height, 0);
    connect(&b.net, &a.net).await;
    let tip = a.node.tip().await.unwrap();
    wait_tips(&[&b.node], tip.hash).await;
    assert_eq!(b.node.tip().await.unwrap().height, 40);
    let_meshes_form().await;
    let mined = a.node.generate(3, None).await.unwrap();
    wait_tips(&[&b.node], mined[2]).await;
    assert_eq!(b.node.tip().await.unwrap().height, 43);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_converge_whoever_mines() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = TestNode::start(dirs[0].path());
    a.node.generate(20, None).await.unwrap();
    let b = TestNode::start(dirs[1].path());
    let c = TestNode::start(dirs[2].path());
    // A line: C - B - A. C hears of A's chain only through B.
    connect(&b.net, &a.net).await;
    connect(&c.net, &b.net).await;
    let tip = a.node.tip().await.unwrap().hash;
    wait_tips(&[&a.node, &b.node, &c.node], tip).await;
    let_meshes_form().await;
    let mined = c.node.generate(5, None).await.unwrap();
    wait_tips(&[&a.node, &b.node, &c.node], mined[4]).await;
    assert_eq!(a.node.tip().await.unwrap().height, 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reorganises_to_a_heavier_chain_on_connect() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestNode::start(da.path());
    let b = TestNode::start(db.path());
    // Separate wallets pay separate addresses: the two chains differ from block 1.
    a.node.generate(5, None).await.unwrap();
    b.node.generate(9, None).await.unwrap();
    let a_first = a.node.block(BlockId::Height(1)).await.unwrap().hash();
    let b_first = b.node.block(BlockId::Height(1)).await.unwrap().hash();
    assert_ne!(a_first, b_first);
    connect(&a.net, &b.net).await;
    let b_tip = b.node.tip().await.unwrap();
    wait_tips(&[&a.node], b_tip.hash).await;
    let a_tip = a.node.tip().await.unwrap();
    assert_eq!((a_tip.hash, a_tip.height), (b_tip.hash, 9));
    assert_eq!(a.node.block(BlockId::Height(1)).await.unwrap().hash(), b_first, "A's block at the fork height changed");
    // B did not move to A's lighter chain.
    assert_eq!(b.node.tip().await.unwrap().hash, b_tip.hash);
}

/// Feeds `from`'s main chain (heights 1..=n) to `to` without a network.
async fn copy_chain(from: &Handle, to: &Handle, n: u64) {
    for h in 1..=n {
        let b = from.block(BlockId::Height(h)).await.unwrap();
        to.submit_block(b).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_node_fetches_a_long_chain_from_two_peers() {
    const N: u64 = 500;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = TestNode::start(dirs[0].path());
    let b = TestNode::start(dirs[1].path());
    // Mined fast, the blocks' times run ahead of the clock (each at least the median time
    // past + 1); mining on a clock an hour back keeps them all in the receivers' past.
    a.node.set_mock_time(Some(unix_now() - 3600)).await.unwrap();
    a.node.generate(N, None).await.unwrap();
    copy_chain(&a.node, &b.node, N).await;
    let tip = a.node.tip().await.unwrap();
    assert_eq!(b.node.tip().await.unwrap().hash, tip.hash);

    // The late node connects to both before its glue starts, so its first sync round
    // sees both peers (the connection events wait in the channel).
    let (node, thread) = spawn_node(dirs[2].path());
    let (net, events) = spawn_net(vec![]);
    connect(&net, &a.net).await;
    connect(&net, &b.net).await;
    let late = TestNode::wire(node, thread, net, events);
    let started = tokio::time::Instant::now();
    wait_tips(&[&late.node], tip.hash).await;
    let (from_a, from_b) = (late.stats.blocks_from(&a.id()), late.stats.blocks_from(&b.id()));
    eprintln!("synced {N} blocks in {:?}: {from_a} from A, {from_b} from B", started.elapsed());
    assert!(from_a > 0 && from_b > 0, "blocks came from both peers: A {from_a}, B {from_b}");
    assert_eq!(from_a + from_b, N, "each block fetched once");
}

/// A peer that serves `source`'s chain but breaks the block at `bad_height` (a duplicated
/// coinbase: the header still matches, the merkle root does not).
async fn serve_tampered(
    source: Handle,
    mut events: tokio::sync::mpsc::Receiver<NetEvent>,
    net: gradientcoin::net::NetHandle,
    bad: Hash256,
) {
    while let Some(ev) = events.recv().await {
        let NetEvent::SyncRequest { request, token, .. } = ev else { continue };
        let response = match request {
            SyncRequest::GetHeaders { locator, stop } => {
                SyncResponse::Headers(source.headers_after(locator, stop, MAX_HEADERS).await.unwrap())
            }
            SyncRequest::GetBlocks { hashes } => {
                let blocks: Vec<Block> = source
                    .blocks(hashes)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|mut b| {
                        if b.hash() == bad {
                            let coinbase = b.txs[0].clone();
                            b.txs.push(coinbase);
                        }
                        b
                    })
                    .collect();
                SyncResponse::Blocks(blocks)
            }
        };
        let _ = net.respond(token, response).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_an_invalid_block_is_banned_and_the_ban_persists() {
    let (ds, dv) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The chain the bad peer serves comes from a node it keeps to itself.
    let (source, source_thread) = spawn_node(ds.path());
    source.generate(12, None).await.unwrap();
    let bad = source.block(BlockId::Height(7)).await.unwrap().hash();
    let (bad_net, bad_events) = spawn_net(vec![]);
    let bad_id = bad_net.local_peer_id();
    let server = tokio::spawn(serve_tampered(source.clone(), bad_events, bad_net.clone(), bad));

    let victim = TestNode::start(dv.path());
    victim.net.dial(net_common::p2p_addr(&bad_net).await).await.unwrap();
    wait_until("the victim bans the bad peer", || async {
        victim.node.bans().await.unwrap().iter().any(|(p, until)| *p == bad_id.to_string() && *until > unix_now())
    })
    .await;
    wait_until("the bad peer is disconnected", || async {
        victim.net.peers().await.unwrap().iter().all(|p| p.peer_id != bad_id)
    })
    .await;
    // Blocks before the bad one were good and stay.
    assert_eq!(victim.node.tip().await.unwrap().height, 6);
    assert!(persisted_bans(&victim.node).await.iter().any(|(p, _)| *p == bad_id));

    // An expired ban and an entry that is not a peer id are not passed on.
    let expired = libp2p::PeerId::random().to_string();
    victim.node.put_ban(expired, unix_now() - 10).await.unwrap();
    victim.node.put_ban("not-a-peer-id".into(), unix_now() + 3600).await.unwrap();

    // Restart the victim: its launcher reads the persisted bans into the network config,
    // and the network refuses the banned peer.
    victim.stop().await;
    let (node, thread) = spawn_node(dv.path());
    let banned = persisted_bans(&node).await;
    assert_eq!(banned.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![bad_id]);
    let (net, events) = spawn_net(banned);
    let victim = TestNode::wire(node, thread, net, events);
    let refused = victim.net.dial(net_common::p2p_addr(&bad_net).await).await;
    assert!(refused.is_err(), "dialling a banned peer is refused: {refused:?}");
    assert_eq!(victim.node.tip().await.unwrap().height, 6);

    server.abort();
    let _ = server.await;
    victim.stop().await;
    drop(source);
    drop(bad_net);
    tokio::task::spawn_blocking(move || source_thread.join().unwrap()).await.unwrap();
}
