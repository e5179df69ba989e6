//! `gradientcoin testnet`: a local multi-node network of real `gradientcoin node`
//! processes on 127.0.0.1, each with its own data directory and ports, mining; optionally
//! a demo task with a bounty; a live view; a clean stop of every child.
//!
//! Owns process orchestration only: the nodes are the same binary a user runs, talked to
//! over RPC like any client.

use super::node::ConfigArgs;
use crate::chain::Network;
use crate::pouw::task::{TaskData, TaskKind, TaskSpec};
use crate::rpc::{self, ApiClient as _, Credentials, RpcClient};
use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Arguments of `gradientcoin testnet`.
#[derive(Debug, Args)]
pub struct TestnetArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Directory for the nodes' data dirs and logs (a fresh temporary one by default,
    /// removed at the end; a given one is kept).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Stop once the first node's chain is this many blocks high (default: run until
    /// Ctrl-C).
    #[arg(long)]
    blocks: Option<u64>,
    /// Submit a demo task with a bounty once the first node has coins, and watch it train.
    #[arg(long)]
    demo: bool,
    /// Miner threads per node.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print the final summary as JSON.
    #[arg(long)]
    json: bool,
}

/// A running child node.
struct Proc {
    child: Child,
    client: RpcClient,
    datadir: PathBuf,
}

/// The demo task: a planted softmax regression 8192 x 48 with rows of scale 16, far from
/// its start (the map is saturated at x = 0): its loss starts at 0.42 and takes a dozen
/// chained Gauss–Newton steps, several of them damped, to fall below the target
/// (`compute run --synthetic n=8192,d=48,seed=21,scale=16 --reg 1e-6` solves it in 41
/// Newton iterations).
pub fn demo_spec() -> TaskSpec {
    TaskSpec {
        kind: TaskKind::Softmax,
        data: TaskData::Synthetic { n: 8192, d: 48, seed: 21, scale: 16.0 },
        reg_lambda: 1e-6,
        copyright: None,
        target_score: DEMO_TARGET,
    }
}

/// The demo task's target score (its solved loss is 2.0e-9).
const DEMO_TARGET: f64 = 1e-8;

/// The final state, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Summary {
    nodes: Vec<NodeSummary>,
    converged: bool,
    demo: Option<DemoSummary>,
    seconds: f64,
}

#[derive(Debug, Serialize)]
struct NodeSummary {
    datadir: String,
    height: u64,
    tip: String,
    peers: usize,
}

#[derive(Debug, Serialize)]
struct DemoSummary {
    task: String,
    initial_score: f64,
    best_score: f64,
    target_score: f64,
    status: String,
    solved_by: Option<String>,
    /// The task's best score after every block that changed it: `(height, score)`.
    history: Vec<(u64, f64)>,
    /// Steps the nodes' miners computed on the task, and the useful ones (their output
    /// improved the miner's iterate by the network's margin).
    steps: u64,
    useful_steps: u64,
    /// Blocks and seconds from the block that included the task to the one that solved it.
    blocks_to_solve: Option<u64>,
    seconds_to_solve: Option<f64>,
    /// Seconds `compute run` (the off-chain solve) takes on the same task, here.
    compute_run_seconds: f64,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_rpc(datadir: &Path, addr: &str, child: &mut Child, deadline: Instant) -> anyhow::Result<RpcClient> {
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("node in {} exited at start ({status}); see its node.log", datadir.display());
        }
        if let Ok(cookie) = rpc::read_cookie(datadir) {
            let c = rpc::connect(addr, &Credentials::Cookie(cookie), Duration::from_secs(30))?;
            if c.api().chain_get_tip().await.is_ok() {
                return Ok(c);
            }
        }
        if Instant::now() > deadline {
            bail!("node in {} did not answer RPC on {addr} within 60 s; see its node.log", datadir.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start_node(
    exe: &Path,
    network: Network,
    datadir: &Path,
    peers: &[String],
    threads: usize,
) -> anyhow::Result<(Proc, String)> {
    std::fs::create_dir_all(datadir).with_context(|| format!("cannot create {}", datadir.display()))?;
    let (p2p, rpc_port) = (free_port()?, free_port()?);
    let addr = format!("127.0.0.1:{rpc_port}");
    let log = std::fs::File::create(datadir.join("node.log"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("node")
        .args(["--network", network.name()])
        .arg("--datadir")
        .arg(datadir)
        .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{p2p}")])
        .args(["--rpc", &addr])
        .args(["--mine", "--threads", &threads.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    for p in peers {
        cmd.args(["--peer", p]);
    }
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    // The environment's GRADIENTCOIN_* settings would override the flags' intent.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with(crate::config::ENV_PREFIX)) {
        cmd.env_remove(k);
    }
    let mut child = cmd.spawn().with_context(|| format!("cannot start {}", exe.display()))?;
    let client = wait_rpc(datadir, &addr, &mut child, Instant::now() + Duration::from_secs(60)).await?;
    let info = client.api().net_info().await.map_err(|e| client.explain(e))?;
    let listen = info.listen.first().cloned().context("the node listens nowhere")?;
    Ok((Proc { child, client, datadir: datadir.to_path_buf() }, listen))
}

/// Runs the testnet.
pub fn run(c: &ConfigArgs, args: TestnetArgs) -> anyhow::Result<()> {
    if args.nodes == 0 || args.nodes > 64 {
        bail!("--nodes must be between 1 and 64, got {}", args.nodes);
    }
    if args.threads == 0 || args.threads > 256 {
        bail!("--threads must be between 1 and 256, got {}", args.threads);
    }
    let network = c.network.unwrap_or(Network::Test);
    if network == Network::Main {
        bail!("a local testnet runs on the test or dev network, not main");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(run_async(network, args))
}

async fn run_async(network: Network, args: TestnetArgs) -> anyhow::Result<()> {
    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::Builder::new().prefix("gradientcoin-testnet-").tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let exe = std::env::current_exe().context("locating the gradientcoin binary")?;
    let human = !args.json;
    if human {
        outln!("starting {} {} nodes in {}", args.nodes, network, dir.display());
    }
    let bar = if human { indicatif::ProgressBar::new(args.nodes as u64) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} nodes up {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut procs: Vec<Proc> = Vec::new();
    let mut addrs: Vec<String> = Vec::new();
    let started = Instant::now();
    let result = async {
        for i in 0..args.nodes {
            // Each node dials the first and the previous one: a connected graph from the start.
            let mut peers: Vec<String> = addrs.first().cloned().into_iter().collect();
            if i >= 2 {
                peers.push(addrs[i - 1].clone());
            }
            let (p, listen) = start_node(&exe, network, &dir.join(format!("node{i}")), &peers, args.threads).await?;
            bar.inc(1);
            procs.push(p);
            addrs.push(listen);
        }
        bar.finish_and_clear();
        if human {
            for (i, p) in procs.iter().enumerate() {
                outln!("node{i}: --rpc {} --datadir {}  (p2p {})", p.client.addr(), p.datadir.display(), addrs[i]);
            }
        }
        watch(&mut procs, &args, started).await
    }
    .await;
    let stop = stop_all(&mut procs).await;
    let summary = result?;
    stop?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        outln!(
            "stopped after {:.0} s: {}",
            summary.seconds,
            if summary.converged { "every node on the same tip" } else { "nodes did NOT converge" }
        );
        for (i, n) in summary.nodes.iter().enumerate() {
            outln!("  node{i} height {} tip {}", n.height, n.tip);
        }
        if let Some(d) = &summary.demo {
            outln!(
                "  demo task {} {}: score {:.4e} -> {:.4e} (target {:.1e})",
                d.task,
                d.status,
                d.initial_score,
                d.best_score,
                d.target_score
            );
            for (height, score) in &d.history {
                outln!("    block {height:>4}  best score {score:.4e}");
            }
            let useful = d.useful_steps as f64 / d.steps.max(1) as f64;
            outln!(
                "  {} steps computed on it by the miners, {} useful (fraction {useful:.2})",
                d.steps,
                d.useful_steps
            );
            if let (Some(b), Some(s)) = (d.blocks_to_solve, d.seconds_to_solve) {
                outln!(
                    "  solved {b} block(s) and {s:.0} s (block times) after the block that included it; `compute run` solves it here in {:.2} s",
                    d.compute_run_seconds
                );
            }
        }
        if args.dir.is_some() {
            outln!("data and logs kept in {}", dir.display());
        }
    }
    if !summary.converged {
        bail!("the nodes did not converge on one tip");
    }
    Ok(())
}

/// The live view: one line a second until Ctrl-C or `--blocks`.
async fn watch(procs: &mut [Proc], args: &TestnetArgs, started: Instant) -> anyhow::Result<Summary> {
    let human = !args.json;
    let mut demo: Option<(String, f64)> = None;
    // The children run in their own process groups: Ctrl-C reaches only us, and we stop
    // them in order (mining first, so they end on one tip).
    let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = tick.tick() => {}
        }
        for p in procs.iter_mut() {
            if let Some(status) = p.child.try_wait()? {
                bail!("node in {} exited ({status}); see its node.log", p.datadir.display());
            }
        }
        let mut line = format!("{:>4}s", started.elapsed().as_secs());
        let mut first_height = 0;
        for (i, p) in procs.iter().enumerate() {
            let tip = p.client.api().chain_get_tip().await.map_err(|e| p.client.explain(e))?;
            let peers = p.client.api().net_peers().await.map(|v| v.len()).unwrap_or(0);
            let mining = p.client.api().mining_info().await.ok();
            let rate = mining.as_ref().map_or(0.0, |m| m.steps_per_sec);
            if i == 0 {
                first_height = tip.height;
            }
            line.push_str(&format!(" | node{i} h={} peers={} {:.0} steps/s", tip.height, peers, rate));
            // The miner's own iterate of the demo task: its loss falls step by step, ahead
            // of the chain's best, which moves when a block carries it.
            let own = demo.as_ref().and_then(|(id, _)| {
                mining.as_ref().and_then(|m| m.iterates.iter().find(|it| &it.task == id && it.open))
            });
            if let Some(it) = own {
                line.push_str(&format!(" own {:.2e}", it.objective));
            }
        }
        if args.demo {
            match &demo {
                None => demo = try_submit_demo(&procs[0].client, human).await?,
                Some((id, _)) => match procs[0].client.api().task_get(id.clone()).await {
                    Ok(t) => line.push_str(&format!(
                        " | demo {} chain best {:.3e} (target {:.0e})",
                        t.status, t.best_score, t.target_score
                    )),
                    Err(e) => {
                        let e = procs[0].client.explain(e);
                        if e.code() != Some(rpc::code::NOT_FOUND) {
                            return Err(e.into());
                        }
                        line.push_str(" | demo: waiting to be mined");
                    }
                },
            }
            if demo.is_none() {
                line.push_str(" | demo: waiting for mature coins");
            }
        }
        if human {
            outln!("{line}");
        }
        if args.blocks.is_some_and(|b| first_height >= b) {
            break;
        }
    }
    summarize(procs, demo, started).await
}

/// Submits the demo task from the first node once its wallet can pay; `(task id, its
/// initial score)`.
async fn try_submit_demo(c: &RpcClient, human: bool) -> anyhow::Result<Option<(String, f64)>> {
    let b = c.api().wallet_balance().await.map_err(|e| c.explain(e))?;
    let bounty = 10 * crate::chain::amount::COIN;
    if b.spendable < bounty + crate::chain::amount::COIN {
        return Ok(None);
    }
    let submit = rpc::TaskSubmit { spec: demo_spec(), bounty: "10".into(), expires_in: 1000, fee_rate: None };
    let s = c.api().task_submit(submit).await.map_err(|e| c.explain(e))?;
    // Its initial score is known once mined; until then report the spec's initial loss.
    let problem = demo_spec().build_unchecked()?;
    let init = crate::pouw::verify::score(&problem, &crate::compute::problem::Problem::init(&problem))?;
    if human {
        outln!("demo task {} submitted (bounty 10 GRAD, target score {DEMO_TARGET:e})", s.task);
    }
    Ok(Some((s.task, init)))
}

async fn summarize(procs: &[Proc], demo: Option<(String, f64)>, started: Instant) -> anyhow::Result<Summary> {
    // Stop mining everywhere and let in-flight blocks settle. Miners may end on tips of
    // equal work (ties keep the first seen): then the first node alone mines until every
    // node follows it.
    // Every node's miner figures for the demo task, as mining stops.
    let mut demo_steps = (0u64, 0u64);
    for p in procs {
        if let Ok(m) = p.client.api().mining_stop().await
            && let Some((id, _)) = &demo
        {
            for it in m.iterates.iter().filter(|it| &it.task == id) {
                demo_steps.0 += it.steps;
                demo_steps.1 += it.useful;
            }
        }
    }
    let settle = Instant::now();
    let deadline = settle + Duration::from_secs(60);
    let (mut nodes, mut tiebreak) = (Vec::new(), false);
    loop {
        nodes.clear();
        for p in procs {
            let t = p.client.api().chain_get_tip().await.map_err(|e| p.client.explain(e))?;
            let peers = p.client.api().net_peers().await.map(|v| v.len()).unwrap_or(0);
            nodes.push(NodeSummary { datadir: p.datadir.display().to_string(), height: t.height, tip: t.hash, peers });
        }
        let agreed = nodes.windows(2).all(|w| w[0].tip == w[1].tip);
        if agreed && tiebreak {
            // Stopped now; one more look catches a block found meanwhile.
            let _ = procs[0].client.api().mining_stop().await;
            tiebreak = false;
        } else if agreed || Instant::now() > deadline {
            break;
        } else if !tiebreak && settle.elapsed() > Duration::from_secs(3) {
            let _ = procs[0].client.api().mining_start(Some(1), None).await;
            tiebreak = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if tiebreak {
        let _ = procs[0].client.api().mining_stop().await;
    }
    let converged = nodes.windows(2).all(|w| w[0].tip == w[1].tip);
    let demo = match demo {
        None => None,
        Some((id, initial)) => {
            let c = &procs[0].client;
            let Ok(t) = c.api().task_get(id.clone()).await else {
                return Ok(Summary { nodes, converged, demo: None, seconds: started.elapsed().as_secs_f64() });
            };
            let history: Vec<(u64, f64)> = c
                .api()
                .task_history(id.clone())
                .await
                .map(|h| h.into_iter().map(|p| (p.height, p.score)).collect())
                .unwrap_or_default();
            let solve_started = Instant::now();
            let problem = demo_spec().build_unchecked()?;
            crate::compute::problem::Problem::solve(&problem, &Default::default(), &mut |_| {})?;
            let compute_run_seconds = solve_started.elapsed().as_secs_f64();
            Some(DemoSummary {
                task: id,
                initial_score: initial,
                best_score: t.best_score,
                target_score: t.target_score,
                blocks_to_solve: t.closed_height.filter(|_| t.status == "solved").map(|h| h - t.created_height),
                // By the blocks' own times (whole seconds).
                seconds_to_solve: match (t.status.as_str(), t.closed_height) {
                    ("solved", Some(h)) => {
                        let time = |h: u64| async move {
                            c.api().chain_get_block(serde_json::json!(h)).await.map(|b| b.time).ok()
                        };
                        match (time(t.created_height).await, time(h).await) {
                            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64),
                            _ => None,
                        }
                    }
                    _ => None,
                },
                status: t.status,
                solved_by: t.solved_by,
                history,
                steps: demo_steps.0,
                useful_steps: demo_steps.1,
                compute_run_seconds,
            })
        }
    };
    Ok(Summary { nodes, converged, demo, seconds: started.elapsed().as_secs_f64() })
}

/// Stops every child: `node_stop` over RPC, then waits; a child that does not exit within
/// 30 s is killed.
async fn stop_all(procs: &mut [Proc]) -> anyhow::Result<()> {
    for p in procs.iter() {
        let _ = p.client.api().node_stop().await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut failed = Vec::new();
    for p in procs.iter_mut() {
        loop {
            match p.child.try_wait()? {
                Some(status) if status.success() => break,
                Some(status) => {
                    failed.push(format!("{} ({status})", p.datadir.display()));
                    break;
                }
                None if Instant::now() > deadline => {
                    let _ = p.child.kill();
                    let _ = p.child.wait();
                    failed.push(format!("{} (killed after 30 s)", p.datadir.display()));
                    break;
                }
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    if !failed.is_empty() {
        bail!("nodes did not stop cleanly: {}", failed.join(", "));
    }
    Ok(())
}
