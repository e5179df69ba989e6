//! The glue between the network and the node: gossip in (blocks and transactions checked
//! by the node, then reported Accept/Reject/Ignore so invalid objects are never relayed),
//! announcements out, answers to peers' sync requests, and the trigger of the one sync
//! coordinator ([`sync`]: headers-first from the peer with the most work, blocks from
//! several peers).
//!
//! Decides nothing itself: validity comes from the node (`chain`), and misbehaviour is an
//! error whose `fault()` says so — such a peer is disconnected and banned at once (no
//! score accumulation), and the ban is written to the store so that it survives a
//! restart: a launcher passes [`persisted_bans`] into `NetConfig::banned`.
//!
//! Entry point: [`run`] (or [`run_with_stats`] to watch the sync), spawned once per node
//! next to `net::spawn`.

pub mod sync;

use crate::chain::fault::{Classify, Fault};
use crate::chain::pipeline::Accepted;
use crate::chain::validate::BlockError;
use crate::net::protocol::{MAX_HEADERS, SyncRequest, SyncResponse};
use crate::net::{NetEvent, NetHandle, PeerId, Verdict};
use crate::node::{Announce, Handle, NodeError};
use crate::store::ProcessError;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, broadcast, mpsc};

pub use sync::SyncStats;

/// How long a misbehaving peer stays banned.
pub const BAN_SECS: u64 = 24 * 3600;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Whether a node error blames the peer that sent the object: only a refusal of what it
/// sent (the node's own failures are [`Fault::Local`]).
fn peer_fault(e: &NodeError) -> bool {
    matches!(e, NodeError::Process(_) | NodeError::Mempool(_)) && e.fault() == Fault::Peer
}

fn is_orphan(e: &NodeError) -> bool {
    matches!(e, NodeError::Process(ProcessError::Block(BlockError::UnknownParent(_))))
}

/// The unexpired bans in the node's store, parsed: what a launcher passes into
/// `NetConfig::banned` so a restarted node keeps refusing the peers it banned. Entries
/// that do not parse as a peer id (a corrupt or foreign store) are skipped with a warning
/// rather than failing the start; so is an unreadable ban list (logged as an error): a
/// node that cannot read its bans should still start.
pub async fn persisted_bans(node: &Handle) -> Vec<(PeerId, u64)> {
    let now = now();
    let stored = match node.bans().await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!("cannot read the persisted bans: {e}");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (peer, until) in stored {
        if until <= now {
            continue;
        }
        match peer.parse::<PeerId>() {
            Ok(p) => out.push((p, until)),
            Err(e) => tracing::warn!(%peer, "skipping a stored ban that is not a peer id: {e}"),
        }
    }
    out
}

/// Bans `peer` for [`BAN_SECS`]: disconnects it now and records the ban in the store.
/// Both steps are best effort: a store failure must not keep the peer connected, and a
/// stopped network has nothing left to disconnect.
pub(crate) async fn ban(node: &Handle, net: &NetHandle, peer: PeerId, why: &str) {
    let until = now() + BAN_SECS;
    tracing::warn!(%peer, "banning peer: {why}");
    let _ = net.ban(peer, until).await;
    if let Err(e) = node.put_ban(peer.to_string(), until).await {
        tracing::warn!(%peer, "cannot persist the ban: {e}");
    }
}

/// Runs until the network's event stream or the node stops.
pub async fn run(node: Handle, net: NetHandle, events: mpsc::Receiver<NetEvent>) {
    run_with_stats(node, net, events, SyncStats::default()).await
}

/// [`run`], recording what the sync coordinator fetched in `stats` (tests and benchmarks
/// read it; a clone shares the counters).
pub async fn run_with_stats(node: Handle, net: NetHandle, mut events: mpsc::Receiver<NetEvent>, stats: SyncStats) {
    // The coordinator runs on its own task: this loop must keep answering peers' sync
    // requests while we sync (two nodes syncing from each other deadlock otherwise).
    let trigger = Arc::new(Notify::new());
    let coordinator = tokio::spawn(sync::coordinate(node.clone(), net.clone(), trigger.clone(), stats));
    // Ends the coordinator with this loop, however the loop ends.
    let _abort = AbortOnDrop(coordinator);
    let mut announcements = node.subscribe();
    loop {
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                if let Err(e) = on_event(&node, &net, &trigger, ev).await {
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

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn on_event(node: &Handle, net: &NetHandle, trigger: &Notify, ev: NetEvent) -> Result<(), NodeError> {
    match ev {
        NetEvent::Block { source, message_id, block } => {
            let verdict = match node.submit_block(block).await {
                Ok(Accepted::NewTip { .. }) | Ok(Accepted::SideChain) => Verdict::Accept,
                Ok(Accepted::Duplicate) => Verdict::Ignore,
                Err(e) if is_orphan(&e) => {
                    // Someone has blocks we lack: the coordinator asks every peer and
                    // syncs from the one with the most work.
                    trigger.notify_one();
                    Verdict::Ignore
                }
                Err(e) if peer_fault(&e) => {
                    ban(node, net, source, &e.to_string()).await;
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
                    ban(node, net, source, &e.to_string()).await;
                    Verdict::Reject
                }
                Err(NodeError::Stopped) => return Err(NodeError::Stopped),
                Err(_) => Verdict::Ignore,
            };
            let _ = net.report(message_id, source, verdict).await;
        }
        NetEvent::BadMessage { source, reason, .. } => ban(node, net, source, &reason).await,
        NetEvent::BadRequest { peer, reason } => ban(node, net, peer, &reason).await,
        NetEvent::PeerConnected { .. } => trigger.notify_one(),
        NetEvent::SyncRequest { request, token, .. } => {
            let response = match request {
                SyncRequest::GetHeaders { locator, stop } => {
                    SyncResponse::Headers(node.headers_after(locator, stop, MAX_HEADERS).await?)
                }
                SyncRequest::GetBlocks { hashes } => SyncResponse::blocks_within_limits(node.blocks(hashes).await?),
            };
            let _ = net.respond(token, response).await;
        }
        NetEvent::PeerDisconnected { .. } | NetEvent::PeerSubscribed { .. } => {}
    }
    Ok(())
}
