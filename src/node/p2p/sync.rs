//! The sync coordinator: one sync at a time, headers-first from the peer whose headers
//! add the most work, blocks downloaded from several peers in parallel and submitted to
//! the node strictly in header order.
//!
//! Owns the sync rounds and nothing else: it judges no block (the node does, and an error
//! whose `fault()` says so bans the peer that served the block) and it computes work only
//! with `chain::target`'s consensus helpers. It runs on its own task, woken through a
//! [`Notify`] by the event loop (a peer connected, a gossiped block had an unknown parent)
//! and by itself (a round ended with more to do); triggers that arrive during a round
//! coalesce into one more round.
//!
//! A round:
//! 1. asks up to [`MAX_HEADER_PEERS`] connected peers, in parallel, for the headers after
//!    our locator;
//! 2. scores each answer by the work its headers add beyond the fork point, minus the
//!    work our own chain has beyond that point (so answers with different fork points
//!    compare), and picks the best;
//! 3. fetches the best chain's blocks in chunks of [`MAX_BLOCKS_PER_RESPONSE`] from every
//!    peer whose headers contain them, [`IN_FLIGHT_PER_PEER`] requests per peer and at
//!    most [`WINDOW_CHUNKS`] chunks ahead of the next one to submit; a chunk a peer cannot
//!    (fully) serve goes to another peer;
//! 4. submits the blocks in header order as their chunks complete.

use super::{ban, peer_fault};
use crate::chain::block::{Block, Header};
use crate::chain::fault::{Classify, Fault};
use crate::chain::pipeline::Accepted;
use crate::chain::target::{U256, chainwork, target_from_bits};
use crate::chain::validate::BlockError;
use crate::hash::Hash256;
use crate::net::protocol::{MAX_BLOCKS_PER_RESPONSE, MAX_HEADERS, SyncRequest, SyncResponse};
use crate::net::{NetError, NetHandle, PeerId};
use crate::node::{Handle, NodeError};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// Peers asked for headers in one round. Each answer holds up to 2000 headers kept for
/// the round; 8 answers are enough to find the best chain among the peers we trust to
/// have it, and bound what one round holds in memory.
pub const MAX_HEADER_PEERS: usize = 8;

/// Block requests in flight to one peer: two keep a peer busy (one served while the other
/// travels) without letting one slow peer sit on many chunks.
pub const IN_FLIGHT_PER_PEER: usize = 2;

/// Chunks requested ahead of the next chunk to submit. Bounds the blocks waiting for
/// submission to this many responses (each at most `MAX_RESPONSE_BYTES`), however fast
/// the peers are and however slow validation is.
pub const WINDOW_CHUNKS: usize = 8;

/// What the coordinator did, shared between clones (tests and benchmarks read it).
#[derive(Clone, Debug, Default)]
pub struct SyncStats(Arc<Mutex<StatsInner>>);

#[derive(Debug, Default)]
struct StatsInner {
    rounds: u64,
    blocks_from: HashMap<PeerId, u64>,
    submitted: u64,
}

impl SyncStats {
    fn with<T>(&self, f: impl FnOnce(&mut StatsInner) -> T) -> T {
        // A poisoned lock only means a panic elsewhere mid-update of plain counters.
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut inner)
    }

    /// Sync rounds started.
    pub fn rounds(&self) -> u64 {
        self.with(|s| s.rounds)
    }

    /// Requested blocks received from `peer` during sync.
    pub fn blocks_from(&self, peer: &PeerId) -> u64 {
        self.with(|s| s.blocks_from.get(peer).copied().unwrap_or(0))
    }

    /// Blocks submitted to the node by the sync (accepted or not).
    pub fn blocks_submitted(&self) -> u64 {
        self.with(|s| s.submitted)
    }
}

/// With no trigger, a round runs this often anyway: a block refused only for being early
/// is fetched again this way (DESIGN §6: early blocks are retried), and a gossip message
/// lost to a full queue is caught up. A round in sync costs one `GetHeaders` per peer.
const RESYNC: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs sync rounds whenever `trigger` fires (or every [`RESYNC`]), until the node stops.
/// The event loop aborts it when it ends.
pub(crate) async fn coordinate(node: Handle, net: NetHandle, trigger: Arc<Notify>, stats: SyncStats) {
    loop {
        tokio::select! {
            _ = trigger.notified() => {}
            _ = tokio::time::sleep(RESYNC) => {}
        }
        loop {
            stats.with(|s| s.rounds += 1);
            match round(&node, &net, &stats).await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(NodeError::Stopped) => return,
                Err(e) => {
                    tracing::debug!("sync round stopped: {e}");
                    break;
                }
            }
        }
    }
}

/// A peer's answer to our `GetHeaders`, checked for shape.
struct Offer {
    peer: PeerId,
    /// Our locator hash the headers build on.
    fork: Hash256,
    headers: Vec<Header>,
    hashes: HashSet<Hash256>,
    /// Work of the headers, summed from their `bits` once each header was checked.
    work: U256,
    /// A full batch: the peer may have more after these.
    full: bool,
}

/// Checks that `headers` build on our locator, then has the node check each header
/// (`Chain::check_headers`: linked, ASERT bits, time after the median time past, proof of
/// work against the cost table) before their work counts. `Err` is misbehaviour; a
/// header that is only early makes the offer wait for a later round (`Ok(None)`).
async fn check_headers(
    node: &Handle,
    peer: PeerId,
    headers: Vec<Header>,
    locator: &[Hash256],
) -> Result<Result<Option<Offer>, String>, NodeError> {
    let Some(first) = headers.first() else { return Ok(Ok(None)) };
    let fork = first.prev;
    if !locator.contains(&fork) {
        return Ok(Err(format!("headers build on {fork}, which is not in our locator")));
    }
    let work = match node.check_headers(headers.clone()).await? {
        Ok(work) => work,
        Err(e) if e.fault() == Fault::Transient && !matches!(e, BlockError::UnknownParent(_)) => {
            tracing::debug!(%peer, "headers not usable yet: {e}");
            return Ok(Ok(None));
        }
        Err(e) => return Ok(Err(format!("invalid headers: {e}"))),
    };
    let hashes = headers.iter().map(Header::hash).collect();
    let full = headers.len() >= MAX_HEADERS;
    Ok(Ok(Some(Offer { peer, fork, headers, hashes, work, full })))
}

/// The work of our main chain after `fork`, or `None` if `fork` is no longer on it (our
/// tip moved during the round; the next round sees the new tip).
async fn our_work_after(node: &Handle, fork: Hash256) -> Result<Option<U256>, NodeError> {
    let mut work = U256::ZERO;
    let mut from = fork;
    loop {
        let headers = node.headers_after(vec![from], Hash256::ZERO, MAX_HEADERS).await?;
        let Some(first) = headers.first() else { return Ok(Some(work)) };
        // `headers_after` falls back to genesis for an unknown hash.
        if first.prev != from {
            return Ok(None);
        }
        for h in &headers {
            match target_from_bits(h.bits) {
                Ok(t) => work = work.saturating_add(chainwork(t)),
                Err(_) => return Ok(None), // our stored headers were validated: unreachable
            }
        }
        if headers.len() < MAX_HEADERS {
            return Ok(Some(work));
        }
        from = headers.last().map_or(from, Header::hash);
    }
}

/// One round; `Ok(true)` if another round should follow at once.
async fn round(node: &Handle, net: &NetHandle, stats: &SyncStats) -> Result<bool, NodeError> {
    let Ok(peers) = net.peers().await else { return Ok(false) };
    if peers.is_empty() {
        return Ok(false);
    }
    let locator = node.locator().await?;
    let mut asks = JoinSet::new();
    for p in peers.into_iter().take(MAX_HEADER_PEERS) {
        let (net, locator, peer) = (net.clone(), locator.clone(), p.peer_id);
        asks.spawn(
            async move { (peer, net.request(peer, SyncRequest::GetHeaders { locator, stop: Hash256::ZERO }).await) },
        );
    }
    let mut offers = Vec::new();
    while let Some(joined) = asks.join_next().await {
        let Ok((peer, answer)) = joined else { continue };
        match answer {
            Ok(SyncResponse::Headers(h)) => match check_headers(node, peer, h, &locator).await? {
                Ok(Some(offer)) => offers.push(offer),
                Ok(None) => {}
                Err(why) => ban(node, net, peer, &why).await,
            },
            Ok(SyncResponse::Blocks(_)) => ban(node, net, peer, "answered GetHeaders with blocks").await,
            Ok(SyncResponse::Error(e)) => tracing::debug!(%peer, "no headers: {e}"),
            Err(e) => tracing::debug!(%peer, "headers request failed: {e}"),
        }
    }
    // Score each offer by the work it adds beyond our tip. A full batch with no gain yet
    // stays a candidate: its chain may overtake ours in the headers that follow.
    let mut ours_after: HashMap<Hash256, Option<U256>> = HashMap::new();
    let mut best: Option<(usize, U256)> = None;
    for (i, offer) in offers.iter().enumerate() {
        let ours = match ours_after.get(&offer.fork) {
            Some(w) => *w,
            None => {
                let w = our_work_after(node, offer.fork).await?;
                ours_after.insert(offer.fork, w);
                w
            }
        };
        let Some(ours) = ours else { continue };
        let gain = offer.work.checked_sub(ours).unwrap_or(U256::ZERO);
        if gain.is_zero() && !offer.full {
            continue;
        }
        if best.is_none_or(|(_, g)| gain > g) {
            best = Some((i, gain));
        }
    }
    let Some((i, _)) = best else { return Ok(false) };
    let offer = &offers[i];
    tracing::debug!(peer = %offer.peer, headers = offer.headers.len(), sources = offers.len(), "syncing");
    let hashes: Vec<Hash256> = offer.headers.iter().map(Header::hash).collect();
    Download::new(node, net, stats, &hashes, &offers, offer).run().await
}

/// One chunk of the blocks to fetch.
struct Chunk {
    hashes: Vec<Hash256>,
    /// Blocks received so far, with the peer that served each.
    got: Vec<Option<(Block, PeerId)>>,
    /// Peers that could not serve (the rest of) it.
    tried: HashSet<PeerId>,
    /// A request for it is in flight.
    busy: bool,
}

impl Chunk {
    fn complete(&self) -> bool {
        self.got.iter().all(Option::is_some)
    }

    fn missing(&self) -> Vec<Hash256> {
        self.hashes.iter().zip(&self.got).filter(|(_, g)| g.is_none()).map(|(h, _)| *h).collect()
    }
}

type Fetched = (usize, PeerId, Result<SyncResponse, NetError>);

/// The block download of one round.
struct Download<'a> {
    node: &'a Handle,
    net: &'a NetHandle,
    stats: &'a SyncStats,
    chunks: Vec<Chunk>,
    /// Peers that offered headers, with the hashes they have, best peer first.
    sources: Vec<(PeerId, &'a HashSet<Hash256>)>,
    in_flight: HashMap<PeerId, usize>,
    /// Requests each peer was given, to spread chunks evenly.
    assigned: HashMap<PeerId, usize>,
    /// Peers whose request failed at the transport: not asked again this round.
    failed: HashSet<PeerId>,
    requests: JoinSet<Fetched>,
    next_submit: usize,
    progressed: bool,
    /// The headers were a full batch: once they are all fetched, another round follows.
    more_after: bool,
}

impl<'a> Download<'a> {
    fn new(
        node: &'a Handle,
        net: &'a NetHandle,
        stats: &'a SyncStats,
        hashes: &[Hash256],
        offers: &'a [Offer],
        best: &Offer,
    ) -> Self {
        let chunks = hashes
            .chunks(MAX_BLOCKS_PER_RESPONSE)
            .map(|c| Chunk { hashes: c.to_vec(), got: vec![None; c.len()], tried: HashSet::new(), busy: false })
            .collect();
        let mut sources: Vec<(PeerId, &HashSet<Hash256>)> = offers.iter().map(|o| (o.peer, &o.hashes)).collect();
        sources.sort_by_key(|(p, _)| *p != best.peer);
        Download {
            node,
            net,
            stats,
            chunks,
            sources,
            in_flight: HashMap::new(),
            assigned: HashMap::new(),
            failed: HashSet::new(),
            requests: JoinSet::new(),
            next_submit: 0,
            progressed: false,
            more_after: best.full,
        }
    }

    /// Fetches and submits; `Ok(true)` if another round should follow (the headers were a
    /// full batch, a peer was banned, or a chunk could not be fetched after some progress).
    async fn run(mut self) -> Result<bool, NodeError> {
        loop {
            self.fill();
            if let Some(again) = self.submit_ready().await? {
                return Ok(again);
            }
            if self.next_submit == self.chunks.len() {
                return Ok(self.more_after);
            }
            // Nothing in flight and the next chunk incomplete: no peer can serve it.
            let Some(joined) = self.requests.join_next().await else { return Ok(self.progressed) };
            let Ok((idx, peer, answer)) = joined else { continue };
            self.on_answer(idx, peer, answer).await;
        }
    }

    /// Requests every chunk in the window that is neither complete nor in flight, from
    /// the least busy peer that has it and has not failed it.
    fn fill(&mut self) {
        let end = self.chunks.len().min(self.next_submit + WINDOW_CHUNKS);
        for idx in self.next_submit..end {
            let chunk = &self.chunks[idx];
            if chunk.busy || chunk.complete() {
                continue;
            }
            let Some(last) = chunk.hashes.last() else { continue };
            let usable = |p: &PeerId| !chunk.tried.contains(p) && !self.failed.contains(p);
            // Peers whose headers contain the chunk have it on their main chain; others
            // may hold it on a side chain, so they are the fallback.
            let mut candidates: Vec<PeerId> =
                self.sources.iter().filter(|(p, has)| usable(p) && has.contains(last)).map(|(p, _)| *p).collect();
            if candidates.is_empty() {
                candidates = self.sources.iter().filter(|(p, _)| usable(p)).map(|(p, _)| *p).collect();
            }
            let pick = candidates
                .into_iter()
                .filter(|p| self.in_flight.get(p).copied().unwrap_or(0) < IN_FLIGHT_PER_PEER)
                .min_by_key(|p| {
                    (self.in_flight.get(p).copied().unwrap_or(0), self.assigned.get(p).copied().unwrap_or(0))
                });
            let Some(peer) = pick else { continue };
            let hashes = chunk.missing();
            self.chunks[idx].busy = true;
            *self.in_flight.entry(peer).or_default() += 1;
            *self.assigned.entry(peer).or_default() += 1;
            let net = self.net.clone();
            self.requests.spawn(async move { (idx, peer, net.request(peer, SyncRequest::GetBlocks { hashes }).await) });
        }
    }

    async fn on_answer(&mut self, idx: usize, peer: PeerId, answer: Result<SyncResponse, NetError>) {
        if let Some(n) = self.in_flight.get_mut(&peer) {
            *n = n.saturating_sub(1);
        }
        let Some(chunk) = self.chunks.get_mut(idx) else { return };
        chunk.busy = false;
        let blocks = match answer {
            Ok(SyncResponse::Blocks(b)) => b,
            Ok(SyncResponse::Headers(_)) => {
                chunk.tried.insert(peer);
                self.failed.insert(peer);
                ban(self.node, self.net, peer, "answered GetBlocks with headers").await;
                return;
            }
            Ok(SyncResponse::Error(e)) => {
                tracing::debug!(%peer, "no blocks: {e}");
                chunk.tried.insert(peer);
                return;
            }
            Err(e) => {
                tracing::debug!(%peer, "blocks request failed: {e}");
                chunk.tried.insert(peer);
                self.failed.insert(peer);
                return;
            }
        };
        let mut new = 0u64;
        for b in blocks {
            let h = b.hash();
            let Some(pos) = chunk.hashes.iter().position(|x| *x == h) else {
                chunk.tried.insert(peer);
                self.failed.insert(peer);
                ban(self.node, self.net, peer, &format!("sent block {h}, which was not asked for")).await;
                return;
            };
            if chunk.got[pos].is_none() {
                chunk.got[pos] = Some((b, peer));
                new += 1;
            }
        }
        self.stats.with(|s| *s.blocks_from.entry(peer).or_default() += new);
        // A short answer that made progress may just be the byte limit: ask again.
        if new == 0 && !chunk.complete() {
            chunk.tried.insert(peer);
        }
    }

    /// Submits complete chunks in order. `Some(again)` ends the round.
    async fn submit_ready(&mut self) -> Result<Option<bool>, NodeError> {
        while let Some(chunk) = self.chunks.get_mut(self.next_submit) {
            if !chunk.complete() {
                break;
            }
            let got = std::mem::take(&mut chunk.got);
            self.next_submit += 1;
            for (block, from) in got.into_iter().flatten() {
                self.stats.with(|s| s.submitted += 1);
                match self.node.submit_block(block).await {
                    Ok(Accepted::NewTip { .. } | Accepted::SideChain) => self.progressed = true,
                    Ok(Accepted::Duplicate) => {}
                    Err(e) if peer_fault(&e) => {
                        ban(self.node, self.net, from, &e.to_string()).await;
                        // The rest of this chain may still come from honest peers.
                        return Ok(Some(true));
                    }
                    Err(NodeError::Stopped) => return Err(NodeError::Stopped),
                    Err(e) => {
                        // Not the peer's fault (early, storage): stop here; retry only
                        // if this round got somewhere, or it would spin.
                        tracing::debug!(peer = %from, "sync stopped at a block: {e}");
                        return Ok(Some(self.progressed));
                    }
                }
            }
            // Keep the peers busy while the next chunk is validated.
            self.fill();
        }
        Ok(None)
    }
}
