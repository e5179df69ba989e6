//! The glue between the network and the node: gossip in (blocks and transactions checked
//! by the node, then reported Accept/Reject/Ignore so invalid objects are never relayed),
//! announcements out, headers-first sync from each peer that connects, and answers to
//! peers' sync requests.
//!
//! Decides nothing itself: validity comes from the node (`chain`), and misbehaviour is an
//! error whose `fault()` says so — such a peer is banned at once.

use crate::hash::Hash256;
use crate::net::protocol::{SyncRequest, SyncResponse, MAX_BLOCKS_PER_RESPONSE, MAX_HEADERS};
use crate::net::{NetEvent, NetHandle, PeerId, Verdict};
use crate::node::{Announce, Handle, NodeError};
use crate::store::chainstore::Accepted;
use crate::store::ProcessError;
use crate::chain::validate::BlockError;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, mpsc};

/// How long a misbehaving peer stays banned.
pub const BAN_SECS: u64 = 24 * 3600;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Whether a node error blames the peer that sent the object.
fn peer_fault(e: &NodeError) -> bool {
    match e {
        NodeError::Process(p) => p.fault(),
        NodeError::Mempool(m) => m.fault(),
        _ => false,
    }
}

fn is_orphan(e: &NodeError) -> bool {
    matches!(e, NodeError::Process(ProcessError::Block(BlockError::UnknownParent(_))))
}

/// Runs until the network's event stream or the node stops.
pub async fn run(node: Handle, net: NetHandle, mut events: mpsc::Receiver<NetEvent>) {
    let mut announcements = node.subscribe();
    loop {
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                if let Err(e) = on_event(&node, &net, ev).await {
                    if matches!(e, NodeError::Stopped) {
                        break;
                    }
                    tracing::debug!("handling a network event: {e}");
                }
            }
            a = announcements.recv() => match a {
                Ok(Announce::Block(b)) => { let _ = net.publish_block(&b).await; }
                Ok(Announce::Tx(t)) => { let _ = net.publish_tx(&t).await; }
                Err(broadcast::error::RecvError::Lagged(n)) => tracing::debug!("skipped {n} announcements"),
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
}

async fn ban(net: &NetHandle, peer: PeerId, why: String) {
    tracing::warn!(%peer, "banning peer: {why}");
    let _ = net.ban(peer, now() + BAN_SECS).await;
}

async fn on_event(node: &Handle, net: &NetHandle, ev: NetEvent) -> Result<(), NodeError> {
    match ev {
        NetEvent::Block { source, message_id, block } => {
            let verdict = match node.submit_block(block).await {
                Ok(Accepted::NewTip { .. }) | Ok(Accepted::SideChain) => Verdict::Accept,
                Ok(Accepted::Duplicate) => Verdict::Ignore,
                Err(e) if is_orphan(&e) => {
                    // We are behind this peer: catch up from it.
                    let _ = net.report(message_id, source, Verdict::Ignore).await;
                    spawn_sync(node, net, source);
                    return Ok(());
                }
                Err(e) if peer_fault(&e) => {
                    ban(net, source, e.to_string()).await;
                    Verdict::Reject
                }
                Err(NodeError::Stopped) => return Err(NodeError::Stopped),
                Err(_) => Verdict::Ignore,
            };
            let _ = net.report(message_id, source, verdict).await;
        }
        NetEvent::Tx { source, message_id, tx } => {
            let verdict = match node.send_tx_quiet(tx).await {
                Ok(_) => Verdict::Accept,
                Err(e) if peer_fault(&e) => {
                    ban(net, source, e.to_string()).await;
                    Verdict::Reject
                }
                Err(NodeError::Stopped) => return Err(NodeError::Stopped),
                Err(_) => Verdict::Ignore,
            };
            let _ = net.report(message_id, source, verdict).await;
        }
        NetEvent::BadMessage { source, reason, .. } => ban(net, source, reason.to_string()).await,
        NetEvent::BadRequest { peer, reason } => ban(net, peer, reason.to_string()).await,
        NetEvent::PeerConnected { peer, .. } => spawn_sync(node, net, peer),
        NetEvent::SyncRequest { request, token, .. } => {
            let response = match request {
                SyncRequest::GetHeaders { locator, stop } => SyncResponse::Headers(node.headers_after(locator, stop, MAX_HEADERS).await?),
                SyncRequest::GetBlocks { hashes } => SyncResponse::blocks_within_limits(node.blocks(hashes).await?),
            };
            let _ = net.respond(token, response).await;
        }
        NetEvent::PeerDisconnected { .. } | NetEvent::PeerSubscribed { .. } => {}
    }
    Ok(())
}

/// Syncs from `peer` on its own task: the event loop must keep answering the peer's own
/// sync requests meanwhile (two nodes syncing from each other would otherwise deadlock).
fn spawn_sync(node: &Handle, net: &NetHandle, peer: PeerId) {
    let (node, net) = (node.clone(), net.clone());
    tokio::spawn(async move {
        if let Err(e) = sync_from(&node, &net, peer).await {
            tracing::debug!(%peer, "sync stopped: {e}");
        }
    });
}

/// Headers-first sync from `peer`: headers after our locator, then the blocks we lack in
/// batches, each offered to the node; repeats while the peer sends full header batches.
pub async fn sync_from(node: &Handle, net: &NetHandle, peer: PeerId) -> Result<(), NodeError> {
    loop {
        let locator = node.locator().await?;
        let headers = match net.request(peer, SyncRequest::GetHeaders { locator, stop: Hash256::ZERO }).await {
            Ok(SyncResponse::Headers(h)) => h,
            Ok(_) | Err(_) => return Ok(()),
        };
        if headers.is_empty() {
            return Ok(());
        }
        let full = headers.len() >= MAX_HEADERS;
        let hashes: Vec<Hash256> = headers.iter().map(|h| h.hash()).collect();
        for chunk in hashes.chunks(MAX_BLOCKS_PER_RESPONSE) {
            let blocks = match net.request(peer, SyncRequest::GetBlocks { hashes: chunk.to_vec() }).await {
                Ok(SyncResponse::Blocks(b)) => b,
                Ok(_) | Err(_) => return Ok(()),
            };
            for b in blocks {
                match node.submit_block(b).await {
                    Ok(_) => {}
                    Err(e) if peer_fault(&e) => {
                        ban(net, peer, e.to_string()).await;
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if !full {
            return Ok(());
        }
    }
}
