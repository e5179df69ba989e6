//! `gradientcoin bench fake-work`: JSON-RPC latency while peers feed the node blocks whose
//! work is made up (DESIGN.md §3.6).
//!
//! A dev node with a heavy task registered serves `chain_getTip` over HTTP on 127.0.0.1.
//! Then `--peers` attackers, each a fresh libp2p identity (what a banned attacker does
//! next), connect one after the other and offer in sync one block on the heavy task whose
//! PoW is valid and whose `output_hash` is made up: each costs the node one step replay and
//! gets its sender banned. The RPC latencies measured meanwhile are compared with those of
//! the idle node in the same run, and with the time of one replay: a node replaying on its
//! state thread would hold every request for up to a replay.

use super::{BenchNode, NET_DEADLINE, quantile_ms, unix_now};
use crate::chain::amount::Amount;
use crate::chain::block::{Block, WorkWitness};
use crate::chain::params::ChainParams;
use crate::chain::pipeline::MemChain;
use crate::net::protocol::{SyncRequest, SyncResponse};
use crate::net::{NetEvent, NetHandle};
use crate::node::BlockId;
use crate::pouw::task::{TaskData, TaskKind, TaskSpec};
use crate::rpc::ApiClient as _;
use anyhow::{Context, bail};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The heavy task: a synthetic softmax regression near half the step-cost cap.
fn heavy_spec() -> TaskSpec {
    TaskSpec {
        kind: TaskKind::Softmax,
        data: TaskData::Synthetic { n: 8192, d: 48, seed: 5, scale: 0.5 },
        reg_lambda: 1e-6,
        copyright: None,
        target_score: 1e-12,
    }
}

/// Runs the benchmark: `peers` attackers, `calls` RPC calls for the idle reference.
pub fn run(peers: usize, calls: usize) -> anyhow::Result<()> {
    if peers == 0 || calls == 0 {
        bail!("need --peers >= 1 and --calls >= 1");
    }
    let rt = super::runtime()?;
    let victim = rt.block_on(async {
        let victim = BenchNode::start()?.networked()?;
        measure(&victim, peers, calls).await?;
        Ok::<_, anyhow::Error>(victim)
    })?;
    super::shut_down(rt, vec![victim]);
    Ok(())
}

async fn measure(victim: &BenchNode, peers: usize, calls: usize) -> anyhow::Result<()> {
    let spec = heavy_spec();
    outln!("== fake-work: chain_getTip over HTTP while {peers} peers each offer a block with made-up work");
    let ctx = crate::rpc::RpcContext {
        node: victim.node.clone(),
        net: victim.net.clone(),
        network: crate::chain::Network::Dev,
        ban_secs: 60,
        stop: None,
    };
    let datadir = victim.dir.path();
    let server = crate::rpc::serve("127.0.0.1:0".parse().context("address")?, datadir, None, ctx).await?;
    let cookie = crate::rpc::read_cookie(datadir)?;
    let client = Arc::new(crate::rpc::connect(
        &server.addr.to_string(),
        &crate::rpc::Credentials::Cookie(cookie),
        Duration::from_secs(60),
    )?);

    // The heavy task, registered on the victim's chain.
    let node = &victim.node;
    node.generate(11, None).await?;
    let cost = spec.cost();
    let (_, task) = node.submit_task(spec, Amount::from_units(10_000), 1000, 2).await?;
    node.generate(1, None).await?;
    let tip = node.tip().await?;

    // The attackers' blocks, built on a mirror of the victim's chain: on the tip, on the
    // heavy task, each with its own nonce and a made-up output.
    let mut mirror = MemChain::in_memory(ChainParams::dev())?;
    let far = ChainParams::dev().genesis.header.time + 10_000_000;
    for h in 1..=tip.height {
        mirror.process_block(&node.block(BlockId::Height(h)).await?, far)?;
    }
    let t = crate::miner::template(
        &mut mirror,
        super::addr(&super::key(1)),
        tip.time + 1,
        vec![],
        Some(task),
        Amount::ZERO,
    )?;
    let mut fakes = Vec::with_capacity(peers);
    let mut nonce = 0u64;
    while fakes.len() < peers {
        let mut header = t.header;
        header.nonce = nonce;
        nonce += 1;
        header.work.output_hash = crate::hash::sha256d(&nonce.to_le_bytes());
        if header.pow_value() <= t.effective_target {
            fakes.push(Block { header, witness: WorkWitness { input_params: t.input.0.clone() }, txs: t.txs.clone() });
        }
    }
    // One replay's time, measured here.
    let mut replay = Vec::new();
    for f in fakes.iter().take(3) {
        let started = Instant::now();
        t.problem.step(&t.input, &f.header.ticket_seed())?;
        replay.push(started.elapsed().as_secs_f64());
    }
    let replay_ms = super::median(replay) * 1e3;
    outln!("  task: {cost} mWU per step, one replay {replay_ms:.1} ms");

    // Idle reference, after a warm-up (connections, caches).
    for _ in 0..calls / 10 {
        client.api().chain_get_tip().await?;
    }
    let mut idle = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        client.api().chain_get_tip().await?;
        idle.push(started.elapsed().as_secs_f64());
    }
    idle.sort_by(f64::total_cmp);

    // Under attack: a caller in a loop, the attackers one after the other.
    let stop = Arc::new(AtomicBool::new(false));
    let caller = tokio::spawn({
        let (client, stop) = (client.clone(), stop.clone());
        async move {
            let mut v = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                client.api().chain_get_tip().await?;
                v.push(started.elapsed().as_secs_f64());
            }
            Ok::<_, anyhow::Error>(v)
        }
    });
    let attack_started = Instant::now();
    let mut banned = 0usize;
    let victim_addr = victim.addr().await?;
    for fake in &fakes {
        let (net, events) = attacker_net()?;
        let id = net.local_peer_id().to_string();
        let server = tokio::spawn(serve_fake(events, net.clone(), fake.clone()));
        net.dial(victim_addr.clone()).await?;
        let started = Instant::now();
        loop {
            if node.bans().await?.iter().any(|(p, until)| *p == id && *until > unix_now()) {
                banned += 1;
                break;
            }
            if started.elapsed() > NET_DEADLINE {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        server.abort();
    }
    let attack_secs = attack_started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut busy = caller.await.context("the RPC caller task")??;
    busy.sort_by(f64::total_cmp);
    let kept = node.tip().await?.hash == tip.hash;
    server.stop().await;

    let (idle_p50, idle_p99) = (quantile_ms(&idle, 0.5), quantile_ms(&idle, 0.99));
    let (busy_p50, busy_p99, busy_max) =
        (quantile_ms(&busy, 0.5), quantile_ms(&busy, 0.99), busy.last().map_or(f64::NAN, |v| v * 1e3));
    outln!("  idle:         {} calls, p50 {idle_p50:.3} ms, p99 {idle_p99:.3} ms", idle.len());
    outln!("  under attack: {} calls, p50 {busy_p50:.3} ms, p99 {busy_p99:.3} ms, max {busy_max:.3} ms", busy.len());
    outln!(
        "  attack: {} fake blocks in {attack_secs:.2} s ({:.0} ms of replays), {banned} peers banned, tip kept: {kept}",
        fakes.len(),
        fakes.len() as f64 * replay_ms
    );
    outln!("  ratio p99 under attack / idle: {:.2}", busy_p99 / idle_p99);
    let held = busy_p99 < replay_ms / 4.0 && banned == fakes.len() && kept;
    outln!(
        "  claim: while fake-work blocks are replayed, RPC p99 stays under a quarter of one replay \
         ({busy_p99:.3} ms < {:.1} ms), every attacker is banned and the tip is kept: {}",
        replay_ms / 4.0,
        if held { "held" } else { "NOT held" }
    );
    Ok(())
}

/// A fresh identity's network on 127.0.0.1.
fn attacker_net() -> anyhow::Result<(NetHandle, tokio::sync::mpsc::Receiver<NetEvent>)> {
    Ok(crate::net::spawn(super::dev_net_config()?)?)
}

/// Answers every sync request with the fake block: its header, then the block.
async fn serve_fake(mut events: tokio::sync::mpsc::Receiver<NetEvent>, net: NetHandle, fake: Block) {
    while let Some(ev) = events.recv().await {
        let NetEvent::SyncRequest { request, token, .. } = ev else { continue };
        let response = match request {
            SyncRequest::GetHeaders { .. } => SyncResponse::Headers(vec![fake.header]),
            SyncRequest::GetBlocks { hashes } => {
                SyncResponse::Blocks(if hashes.contains(&fake.hash()) { vec![fake.clone()] } else { vec![] })
            }
        };
        let _ = net.respond(token, response).await;
    }
}
