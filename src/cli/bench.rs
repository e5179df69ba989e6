//! `gradientcoin bench chain|cost|sync|propagation|fake-work`: benchmarks that print ratios against
//! references measured in the same run (the machines are noisy; absolute times mean little).
//!
//! `bench chain`:
//! 1. Validation throughput of a block full of transfers, against the raw `verify_strict`
//!    rate of the same machine.
//! 2. The time to replay one step of each kind, next to its cost in mWU.
//! 3. Expected mining work per block against the work of verifying it, at test params.
//!
//! `bench sync`: a node syncs dev blocks from another over libp2p on 127.0.0.1, against
//! the rate of feeding the same blocks to a fresh node's `submit_block` (no network).
//!
//! `bench propagation`: a ring of nodes on 127.0.0.1, the miner rotating; the latency until
//! each node, and every node, has a new block as its tip.
//!
//! `bench fake-work` ([`fakework`]): JSON-RPC latency while peers offer blocks with
//! made-up work, against the idle node and the time of one replay.

pub mod cost;
pub mod fakework;
pub mod mining;

use crate::chain::address::Address;
use crate::chain::amount::Amount;
use crate::chain::params::ChainParams;
use crate::chain::target::U256;
use crate::chain::tx::{OutPoint, Sig64, Transaction, TxIn, TxOut};
use crate::compute::attention::Kernel;
use crate::compute::copyright::CopyrightVariant;
use crate::compute::problem::Problem;
use crate::miner;
use crate::pouw::task::{CopyrightSpec, TaskData, TaskKind, TaskSpec};
use crate::store::ChainStore;
use anyhow::{Context, bail};
use ed25519_dalek::{Signer, SigningKey};
use std::io::Write;
use std::time::Instant;

fn key(i: u32) -> SigningKey {
    let mut b = [7u8; 32];
    b[..4].copy_from_slice(&i.to_le_bytes());
    SigningKey::from_bytes(&b)
}

fn addr(k: &SigningKey) -> Address {
    Address::from_pubkey(&k.verifying_key().to_bytes())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the chain benchmarks with `txs` transfers in the validation block.
pub fn run(txs: usize) -> anyhow::Result<()> {
    if txs == 0 || txs > 9_000 {
        bail!("--txs must be between 1 and 9000 (one fan-out transaction funds them)");
    }
    validation(txs)?;
    replay_per_kind()?;
    mining_vs_verification()?;
    Ok(())
}

fn validation(n: usize) -> anyhow::Result<()> {
    outln!("== validation throughput: one block of {n} transfers (one core)");
    let dir = tempfile::tempdir().context("temp dir")?;
    let params = ChainParams::dev();
    let chain_id = params.chain_id;
    let mut cs = ChainStore::open(dir.path(), params.clone())?;
    let now = params.genesis.header.time + 100_000_000;
    let k0 = key(0);
    let mine = |cs: &mut ChainStore, txs: Vec<Transaction>| -> anyhow::Result<(crate::chain::block::Block, f64)> {
        let time = cs.tip_entry().header.time + 1;
        let t = miner::template(cs, addr(&k0), time, txs, None, Amount::ZERO)?;
        let b = t.mine(0, 10_000_000).context("dev block")?;
        let started = Instant::now();
        cs.process_block(&b, now)?;
        Ok((b, started.elapsed().as_secs_f64()))
    };
    let (first, _) = mine(&mut cs, vec![])?;
    for _ in 0..params.coinbase_maturity {
        mine(&mut cs, vec![])?;
    }
    // Fan out the first coinbase into n outputs owned by n keys.
    let coin = OutPoint { txid: first.txs[0].txid(), vout: 0 };
    let total = first.txs[0].outputs()[0].value.units();
    let each = total / (n as u64 + 1);
    let keys: Vec<SigningKey> = (1..=n as u32).map(key).collect();
    let mut fan = Transaction::Transfer {
        inputs: vec![TxIn { prevout: coin, pubkey: [0; 32], signature: Sig64::EMPTY }],
        outputs: keys.iter().map(|k| TxOut { value: Amount::from_units(each), address: addr(k) }).collect(),
    };
    fan.sign(&chain_id, &[&k0]);
    let fan_id = fan.txid();
    mine(&mut cs, vec![fan])?;
    let spends: Vec<Transaction> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let mut t = Transaction::Transfer {
                inputs: vec![TxIn {
                    prevout: OutPoint { txid: fan_id, vout: i as u32 },
                    pubkey: [0; 32],
                    signature: Sig64::EMPTY,
                }],
                outputs: vec![TxOut { value: Amount::from_units(each - 100), address: addr(&k0) }],
            };
            t.sign(&chain_id, &[k]);
            t
        })
        .collect();
    let (block, secs) = mine(&mut cs, spends)?;
    let tx_per_s = n as f64 / secs;
    // Reference: raw verify_strict over the same messages and keys.
    let msgs: Vec<(ed25519_dalek::VerifyingKey, [u8; 32], ed25519_dalek::Signature)> = block.txs[1..]
        .iter()
        .zip(&keys)
        .map(|(t, k)| {
            let m = t.signing_message(&chain_id).0;
            (k.verifying_key(), m, k.sign(&m))
        })
        .collect();
    let started = Instant::now();
    for (vk, m, s) in &msgs {
        vk.verify_strict(m, s).context("reference signature")?;
    }
    let verify_per_s = n as f64 / started.elapsed().as_secs_f64();
    outln!("  block of {} bytes validated and connected in {:.1} ms: {tx_per_s:.0} tx/s", block.size(), secs * 1e3);
    outln!("  reference verify_strict: {verify_per_s:.0} signatures/s");
    outln!("  ratio validation / signature-only: {:.2}", tx_per_s / verify_per_s);
    Ok(())
}

fn specs() -> Vec<(&'static str, TaskSpec)> {
    let base = |kind, n, d| TaskSpec {
        kind,
        data: TaskData::Synthetic { n, d, seed: 1, scale: 0.5 },
        reg_lambda: 1e-8,
        copyright: None,
        target_score: 1e-300, // never met: the regulariser keeps the loss above it
    };
    let cr = |variant| CopyrightSpec { rows: (0..100).collect(), gamma: 1e-9, variant };
    vec![
        ("softmax n=256 d=8 (dev public task)", base(TaskKind::Softmax, 256, 8)),
        ("softmax n=1000 d=16 (test public task)", base(TaskKind::Softmax, 1000, 16)),
        ("softmax n=2000 d=32 (main public task)", base(TaskKind::Softmax, 2000, 32)),
        ("resnet_softmax n=2000 d=32", base(TaskKind::ResnetSoftmax, 2000, 32)),
        ("softmax n=5000 d=64", base(TaskKind::Softmax, 5000, 64)),
        ("softmax n=2000 d=128", base(TaskKind::Softmax, 2000, 128)),
        (
            "softmax+copyright(all) n=2000 d=32",
            TaskSpec { copyright: Some(cr(CopyrightVariant::All)), ..base(TaskKind::Softmax, 2000, 32) },
        ),
        (
            "softmax+copyright(per-block) n=2000 d=32",
            TaskSpec { copyright: Some(cr(CopyrightVariant::PerBlock)), ..base(TaskKind::Softmax, 2000, 32) },
        ),
        ("attention n=128 d=6", base(TaskKind::Attention(Kernel::Softmax), 128, 6)),
        ("attention_linear n=2000 d=6", base(TaskKind::Attention(Kernel::Linear), 2000, 6)),
    ]
}

/// Median seconds of one step of `p` from its initial point.
fn step_seconds(p: &dyn Problem, reps: usize) -> anyhow::Result<f64> {
    let x = p.init();
    let mut times = Vec::with_capacity(reps);
    for r in 0..reps {
        let seed = [r as u8; 32];
        let started = Instant::now();
        p.step(&x, &seed)?;
        times.push(started.elapsed().as_secs_f64());
    }
    Ok(median(times))
}

fn replay_per_kind() -> anyhow::Result<()> {
    outln!("== replay of one step per kind, against its cost (median of 15)");
    outln!("  {:<44} {:>6} {:>10} {:>10} {:>8}", "task", "mWU", "replay ms", "us / mWU", "vs first");
    let mut first = None;
    for (name, spec) in specs() {
        let p = spec.build_unchecked()?;
        let secs = step_seconds(&p, 15)?;
        let per_wu = secs * 1e6 / p.cost() as f64;
        let base = *first.get_or_insert(per_wu);
        outln!("  {name:<44} {:>6} {:>10.3} {:>10.4} {:>8.2}", p.cost(), secs * 1e3, per_wu, per_wu / base);
    }
    outln!("  (a flat 'vs first' column means cost() prices every kind alike)");
    Ok(())
}

fn mining_vs_verification() -> anyhow::Result<()> {
    outln!("== expected mining work per block vs verification work, at test params");
    let params = ChainParams::test();
    let p = params.public_task.build_unchecked()?;
    let step = step_seconds(&p, 15)?;
    let x = p.init();
    let started = Instant::now();
    let reps = 15;
    for _ in 0..reps {
        p.certify(&x)?;
    }
    let certify = started.elapsed().as_secs_f64() / reps as f64;
    // Expected steps per block at the max target: 2^256 / (target * cost).
    let eff = params.max_target().saturating_mul_u64(p.cost());
    let steps = 2f64.powi(256) / u256_to_f64(eff);
    let mining = steps * step;
    let verify = step + certify;
    outln!("  public task: {} mWU per step, step {:.3} ms, certify {:.3} ms", p.cost(), step * 1e3, certify * 1e3);
    outln!("  expected steps per block at the max target: {steps:.0} ({mining:.2} s of one core)");
    outln!("  verification: one replay + one certificate = {:.3} ms", verify * 1e3);
    outln!("  ratio mining / verification: {:.0}", mining / verify);
    Ok(())
}

fn u256_to_f64(v: U256) -> f64 {
    v.to_be_bytes().iter().fold(0.0, |acc, b| acc * 256.0 + f64::from(*b))
}

/// Waits this long at most for a sync or a block to reach a node before the benchmark
/// reports it as lost (a benchmark must end even when the network misbehaves).
const NET_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// How often the network benchmarks poll a node's tip: the resolution of their latencies.
const POLL: std::time::Duration = std::time::Duration::from_millis(2);

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("tokio runtime")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A dev-network configuration for a fresh identity listening on 127.0.0.1 (free port).
fn dev_net_config() -> anyhow::Result<crate::net::NetConfig> {
    let params = ChainParams::dev();
    Ok(crate::net::NetConfig {
        keypair: libp2p::identity::Keypair::generate_ed25519(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().context("listen address")?],
        bootstrap: vec![],
        mdns: false,
        chain_id: params.chain_id,
        max_block_bytes: params.max_block_bytes,
        max_tx_bytes: params.tx_limits.max_tx_bytes,
        idle_timeout: std::time::Duration::from_secs(60),
        banned: vec![],
    })
}

/// A dev node on a temp dir, with (once [`BenchNode::networked`]) its network and glue.
struct BenchNode {
    /// The node's data directory (removed on drop).
    dir: tempfile::TempDir,
    node: crate::node::Handle,
    thread: std::thread::JoinHandle<()>,
    net: Option<crate::net::NetHandle>,
}

impl BenchNode {
    fn start() -> anyhow::Result<BenchNode> {
        BenchNode::start_with(ChainParams::dev())
    }

    /// A node of the network `params` (no networking).
    fn start_with(params: ChainParams) -> anyhow::Result<BenchNode> {
        let dir = tempfile::tempdir().context("temp dir")?;
        let opts = crate::node::NodeOptions {
            params,
            datadir: dir.path().to_path_buf(),
            mempool: crate::mempool::MempoolConfig { max_bytes: 1 << 20, min_fee_rate: 1 },
        };
        let (node, thread) = crate::node::spawn(opts)?;
        Ok(BenchNode { dir, node, thread, net: None })
    }

    /// Starts the node's network on 127.0.0.1 (free port) and the p2p glue.
    fn networked(mut self) -> anyhow::Result<BenchNode> {
        let (net, events) = crate::net::spawn(dev_net_config()?)?;
        tokio::spawn(crate::node::p2p::run(self.node.clone(), net.clone(), events));
        self.net = Some(net);
        Ok(self)
    }

    fn net(&self) -> anyhow::Result<&crate::net::NetHandle> {
        self.net.as_ref().context("the node has no network")
    }

    async fn addr(&self) -> anyhow::Result<libp2p::Multiaddr> {
        let net = self.net()?;
        let addr = net.listen_addrs().await?.into_iter().next().context("no listen address")?;
        Ok(addr.with(libp2p::multiaddr::Protocol::P2p(net.local_peer_id())))
    }

    /// Polls until the tip is `hash`; the time it took, or `None` past [`NET_DEADLINE`].
    async fn wait_tip(&self, hash: crate::hash::Hash256, since: Instant) -> anyhow::Result<Option<f64>> {
        loop {
            if self.node.tip().await?.hash == hash {
                return Ok(Some(since.elapsed().as_secs_f64()));
            }
            if since.elapsed() > NET_DEADLINE {
                return Ok(None);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Drops the runtime (ending the glue and network tasks, which hold node handles), then
/// joins the node threads so their stores flush before the temp dirs go.
fn shut_down(rt: tokio::runtime::Runtime, nodes: Vec<BenchNode>) {
    let mut threads = Vec::new();
    let mut dirs = Vec::new();
    for n in nodes {
        threads.push(n.thread);
        dirs.push(n.dir);
    }
    drop(rt);
    for t in threads {
        let _ = t.join();
    }
    drop(dirs);
}

/// `bench sync`: node B syncs `blocks` dev blocks from node A over libp2p on 127.0.0.1;
/// the reference is a fresh node fed the same blocks through `submit_block` (the node's
/// own validation rate, no network).
pub fn sync(blocks: u64) -> anyhow::Result<()> {
    if blocks == 0 {
        bail!("--blocks must be at least 1");
    }
    let rt = runtime()?;
    let nodes = rt.block_on(async {
        outln!("== sync: {blocks} dev blocks over libp2p on 127.0.0.1, against local validation");
        let a = BenchNode::start()?.networked()?;
        // Mined in a burst, the blocks' times run ahead of the clock (each at least the
        // median time past + 1): mining on a clock well back keeps them in B's past.
        a.node.set_mock_time(Some(unix_now().saturating_sub(3600 + blocks))).await?;
        let started = Instant::now();
        a.node.generate(blocks, None).await?;
        outln!("  mined on A in {:.2} s", started.elapsed().as_secs_f64());
        let tip = a.node.tip().await?;

        // Over the network.
        let b = BenchNode::start()?.networked()?;
        let started = Instant::now();
        b.net()?.dial(a.addr().await?).await?;
        let Some(net_secs) = b.wait_tip(tip.hash, started).await? else {
            bail!("B did not reach A's tip within {NET_DEADLINE:?}");
        };
        let net_rate = blocks as f64 / net_secs;
        outln!("  network sync (dial to tip): {net_secs:.2} s, {net_rate:.0} blocks/s");

        // Reference: the same blocks straight into a fresh node.
        let c = BenchNode::start()?;
        let mut chain = Vec::with_capacity(blocks as usize);
        for h in 1..=blocks {
            chain.push(a.node.block(crate::node::BlockId::Height(h)).await?);
        }
        let started = Instant::now();
        for block in chain {
            c.node.submit_block(block).await?;
        }
        let local_secs = started.elapsed().as_secs_f64();
        let local_rate = blocks as f64 / local_secs;
        outln!("  local submit_block: {local_secs:.2} s, {local_rate:.0} blocks/s");
        outln!("  ratio network sync / local validation: {:.2}", net_rate / local_rate);
        Ok::<_, anyhow::Error>(vec![a, b, c])
    })?;
    shut_down(rt, nodes);
    Ok(())
}

/// The `q`-quantile (nearest rank) of sorted `v`, in milliseconds.
fn quantile_ms(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1] * 1e3
}

/// `bench propagation`: `nodes` nodes in a ring on 127.0.0.1; each of `blocks` blocks is
/// mined by the next node in turn, and the time from the miner's `generate` returning
/// until each other node has the block as its tip is recorded.
pub fn propagation(nodes: usize, blocks: u64) -> anyhow::Result<()> {
    if nodes < 2 || blocks == 0 {
        bail!("need --nodes >= 2 and --blocks >= 1");
    }
    let rt = runtime()?;
    let all = rt.block_on(async {
        outln!("== propagation: {blocks} blocks through a ring of {nodes} nodes on 127.0.0.1, miner rotating");
        let mut all = Vec::with_capacity(nodes);
        for _ in 0..nodes {
            all.push(BenchNode::start()?.networked()?);
        }
        for i in 0..nodes {
            let next = all[(i + 1) % nodes].addr().await?;
            all[i].net()?.dial(next).await?;
        }
        // Every node sees its ring neighbours (one neighbour when there are two nodes).
        let want = if nodes == 2 { 1 } else { 2 };
        let started = Instant::now();
        for n in &all {
            while n.net()?.peers().await?.len() < want {
                if started.elapsed() > NET_DEADLINE {
                    bail!("the ring did not connect within {NET_DEADLINE:?}");
                }
                tokio::time::sleep(POLL).await;
            }
        }
        // Gossipsub builds its meshes on heartbeats (500 ms) after the subscriptions.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;

        let mut per_node = Vec::new();
        let mut coverage = Vec::new();
        let mut lost = 0usize;
        for k in 0..blocks {
            let miner = (k as usize) % nodes;
            let hash = *all[miner].node.generate(1, None).await?.first().context("a mined block")?;
            let since = Instant::now();
            let waits = all.iter().enumerate().filter(|(i, _)| *i != miner).map(|(_, n)| n.wait_tip(hash, since));
            let times = futures::future::try_join_all(waits).await?;
            let mut worst: f64 = 0.0;
            for t in times {
                match t {
                    Some(t) => {
                        per_node.push(t);
                        worst = worst.max(t);
                    }
                    None => lost += 1,
                }
            }
            coverage.push(worst);
        }
        per_node.sort_by(f64::total_cmp);
        coverage.sort_by(f64::total_cmp);
        outln!(
            "  per node ({} samples):     p50 {:.1} ms, p99 {:.1} ms",
            per_node.len(),
            quantile_ms(&per_node, 0.5),
            quantile_ms(&per_node, 0.99)
        );
        outln!(
            "  full coverage ({} blocks): p50 {:.1} ms, p99 {:.1} ms",
            coverage.len(),
            quantile_ms(&coverage, 0.5),
            quantile_ms(&coverage, 0.99)
        );
        outln!("  (tips polled every {} ms; {lost} node-blocks not reached within {NET_DEADLINE:?})", POLL.as_millis());
        Ok::<_, anyhow::Error>(all)
    })?;
    shut_down(rt, all);
    Ok(())
}
