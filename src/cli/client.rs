//! Client commands — `wallet`, `task`, `query`, `mining` — over the node's JSON-RPC: find
//! the node (`--rpc`) and its credentials (the cookie in `--datadir`, or the configured
//! user/password), call, print (human by default, `--json` for scripts).

use super::node::{ConfigArgs, load_config};
use crate::chain::amount::Amount;
use crate::compute::data;
use crate::config::Overrides;
use crate::pouw::task::{TaskData, TaskKind, TaskSpec};
use crate::rpc::{self, ApiClient as _, ClientError, Credentials, RpcClient};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// `wallet` subcommands.
#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Create a new key and print its address.
    New {
        /// A label for the key.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List the wallet's keys with their balances.
    List,
    /// The wallet's balance (spendable and maturing).
    Balance,
    /// Pay AMOUNT GRAD to ADDRESS.
    Send {
        /// Recipient address.
        address: String,
        /// Amount in GRAD (e.g. 1.5).
        amount: String,
        /// Fee rate in base units per byte.
        #[arg(long)]
        fee_rate: Option<u64>,
    },
}

/// `task` subcommands.
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Submit a training task with a bounty, paid from the wallet.
    Submit(SubmitArgs),
    /// List every task.
    List,
    /// A task's state and its score history.
    Show {
        /// Task id.
        id: String,
    },
    /// A task's best model (its parameters).
    Model {
        /// Task id.
        id: String,
        /// Also write the parameters to this file (.csv or .npy).
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// Predict with a task's best model on a data file (.csv or .npy, one row per input).
    Predict {
        /// Task id.
        id: String,
        /// Input rows.
        #[arg(long)]
        data: PathBuf,
    },
    /// Reclaim the bounty of an expired, unsolved task you created.
    Reclaim {
        /// Task id.
        id: String,
    },
}

/// Arguments of `task submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Solver kind: softmax, resnet_softmax or attention.
    #[arg(long, default_value = "softmax")]
    kind: String,
    /// Attention: the kernel (softmax or linear).
    #[arg(long, value_enum, default_value_t = super::compute::KernelArg::Softmax)]
    kernel: super::compute::KernelArg,
    /// Data matrix A (n x d) as .csv or .npy.
    #[arg(long, requires = "target", conflicts_with = "synthetic")]
    data: Option<PathBuf>,
    #[command(flatten)]
    files: super::compute::AttentionFiles,
    /// Target vector b (n values) as .csv or .npy.
    #[arg(long, requires = "data")]
    target: Option<PathBuf>,
    /// Seeded synthetic planted data instead of files: n=ROWS,d=COLS,seed=N[,scale=S]; for
    /// ricl m=EXAMPLES,d=WIDTH,v=VALIDATION,seed=N,flip=P.
    #[arg(long, value_parser = super::compute::parse_synthetic_arg)]
    synthetic: Option<super::compute::SyntheticArg>,
    #[command(flatten)]
    ricl: super::compute::RiclFiles,
    /// Regulariser strength λ (every row gets w² = λ/n²; attention: the ridge ρ on
    /// ||X||² + ||Y||²; ricl: (λ/2)||θ||²). Default 1e-8 (ricl 1e-4).
    #[arg(long)]
    reg: Option<f64>,
    /// The task is solved once its score (the loss) is at most this.
    #[arg(long)]
    target_score: f64,
    /// Bounty in GRAD, paid to whoever solves it.
    #[arg(long)]
    bounty: String,
    /// Blocks the task stays open.
    #[arg(long, default_value_t = 1000)]
    expires_in: u64,
    /// Fee rate in base units per byte.
    #[arg(long)]
    fee_rate: Option<u64>,
}

/// `query` subcommands.
#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// The tip.
    Tip,
    /// A block by height or hash.
    Block {
        /// Height or hash.
        id: String,
    },
    /// A transaction (main chain or mempool).
    Tx {
        /// Txid.
        txid: String,
    },
    /// The merkle proof of a main-chain transaction, checked against its block.
    Proof {
        /// Txid.
        txid: String,
    },
    /// Unspent outputs of addresses (the wallet's when none are given).
    Utxos {
        /// Addresses.
        addresses: Vec<String>,
    },
    /// The mempool.
    Mempool,
    /// Connected peers.
    Peers,
}

/// `mining` subcommands.
#[derive(Debug, Subcommand)]
pub enum MiningCommand {
    /// Start (or restart) the built-in miner.
    Start {
        /// Threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Payout address (a wallet address by default).
        #[arg(long)]
        payout: Option<String>,
    },
    /// Stop the miner.
    Stop,
    /// The miner's figures (steps per second, blocks found).
    Info,
}

/// A client for the node the config names: `--rpc` and the cookie in `--datadir` (or
/// the configured user/password).
pub fn client(c: &ConfigArgs) -> anyhow::Result<RpcClient> {
    let cfg = load_config(c, Overrides::default())?;
    let addr = cfg.rpc_addr()?.to_string();
    let creds = match (&cfg.rpc.user, &cfg.rpc.password) {
        (Some(user), Some(password)) => Credentials::UserPassword { user: user.clone(), password: password.clone() },
        _ => {
            let datadir = cfg.datadir();
            match rpc::read_cookie(&datadir) {
                Ok(c) => Credentials::Cookie(c),
                Err(e) => {
                    // No cookie: say first whether a node answers there at all.
                    if std::net::TcpStream::connect_timeout(&cfg.rpc_addr()?, Duration::from_secs(2)).is_err() {
                        return Err(ClientError::Unreachable { addr, reason: "connection refused".into() }.into());
                    }
                    bail!(
                        "cannot read the RPC cookie {}: {e} (give the node's --datadir, or rpc user/password in the config)",
                        rpc::cookie_path(&datadir).display()
                    );
                }
            }
        }
    };
    Ok(rpc::connect(&addr, &creds, Duration::from_secs(600))?)
}

/// Runs a client call on a small runtime, explaining failures.
macro_rules! call {
    ($client:expr, $method:ident ( $($arg:expr),* )) => {{
        let c: &RpcClient = &$client;
        block_on(c.api().$method($($arg),*)).map_err(|e| c.explain(e))?
    }};
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a current-thread runtime").block_on(f)
}

fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn grad(units: u64) -> Amount {
    Amount::from_units(units)
}

/// `wallet ...`.
pub fn wallet(c: &ConfigArgs, cmd: WalletCommand, json: bool) -> anyhow::Result<()> {
    let cl = client(c)?;
    match cmd {
        WalletCommand::New { label } => {
            let a = call!(cl, wallet_new_address(Some(label)));
            if json { print_json(&serde_json::json!({ "address": a }))? } else { outln!("{a}") }
        }
        WalletCommand::List => {
            let keys = call!(cl, wallet_list());
            if json {
                return print_json(&keys);
            }
            if keys.is_empty() {
                outln!("no keys yet: `gradientcoin wallet new`");
            }
            for k in keys {
                outln!(
                    "{:<44} {:>22} spendable {:>22} maturing  {}",
                    k.address,
                    grad(k.spendable),
                    grad(k.immature),
                    k.label
                );
            }
        }
        WalletCommand::Balance => {
            let b = call!(cl, wallet_balance());
            if json {
                print_json(&b)?
            } else {
                outln!("spendable {}\nmaturing  {}", grad(b.spendable), grad(b.immature))
            }
        }
        WalletCommand::Send { address, amount, fee_rate } => {
            let txid = call!(cl, wallet_send(address, amount, fee_rate));
            if json { print_json(&serde_json::json!({ "txid": txid }))? } else { outln!("{txid}") }
        }
    }
    Ok(())
}

fn build_spec(a: &SubmitArgs) -> anyhow::Result<TaskSpec> {
    let kind = match a.kind.parse()? {
        TaskKind::Attention(_) => TaskKind::Attention(a.kernel.into()),
        other => other,
    };
    if !a.target_score.is_finite() || a.target_score < 0.0 {
        bail!("--target-score {} is not a non-negative number", a.target_score);
    }
    let reg = a.reg.unwrap_or(if kind == TaskKind::Ricl { super::compute::DEFAULT_RICL_REG } else { 1e-8 });
    if !reg.is_finite() || reg < 0.0 {
        bail!("--reg {reg} is not a non-negative number");
    }
    if kind == TaskKind::Ricl {
        if a.data.is_some() || a.files.given() {
            bail!("ricl tasks take --prompt and --validation (or --synthetic m=..,d=..,v=..), not --data/--a1");
        }
        let u32_of = |v: usize, what: &str| u32::try_from(v).with_context(|| format!("{what} is too large"));
        let data = if let Some(f) = a.ricl.read()? {
            TaskData::RiclInline {
                m: u32_of(f.xp.rows(), "the prompt")?,
                d: u32_of(f.xp.cols(), "the width")?,
                v: u32_of(f.q.rows(), "the validation set")?,
                prompt_x: f.xp.into_vec(),
                prompt_y: f.yp,
                w: f.w.into_vec(),
                val_x: f.q.into_vec(),
                val_y: f.yv,
            }
        } else if let Some(syn) = &a.synthetic {
            let r = syn.ricl()?;
            TaskData::RiclSynthetic {
                m: u32_of(r.m, "--synthetic m")?,
                d: u32_of(r.d, "--synthetic d")?,
                v: u32_of(r.v, "--synthetic v")?,
                seed: r.seed,
                flip: r.flip,
            }
        } else {
            bail!("give the task's data: --prompt P --validation V [--w W], or --synthetic m=..,d=..,v=..,seed=..")
        };
        return Ok(TaskSpec { kind, data, reg_lambda: reg, copyright: None, target_score: a.target_score });
    }
    if a.ricl.given() {
        bail!("--prompt/--validation/--w are ricl data; {} tasks take other data", kind.name());
    }
    let attention = matches!(kind, TaskKind::Attention(_));
    if attention && a.data.is_some() {
        bail!("attention tasks take --a1 --a2 --a3 --b (or --synthetic), not --data/--target");
    }
    if !attention && a.files.given() {
        bail!("--a1/--a2/--a3/--b are attention data; {} tasks take --data and --target", kind.name());
    }
    if let Some((m, _)) = a.files.read()? {
        let (n, d) = (m[0].rows(), m[0].cols());
        let mut it = m.into_iter().map(|m| m.into_vec());
        let mut next = || it.next().expect("four matrices");
        let data = TaskData::AttentionInline {
            rows: u32::try_from(n).context("too many rows")?,
            cols: u32::try_from(d).context("too many columns")?,
            a1: next(),
            a2: next(),
            a3: next(),
            b: next(),
        };
        return Ok(TaskSpec { kind, data, reg_lambda: reg, copyright: None, target_score: a.target_score });
    }
    let data = match (&a.synthetic, &a.data, &a.target) {
        (Some(s), _, _) => {
            let s = s.softmax(crate::compute::softmax::Synthetic { n: 2000, d: 32, seed: 1, scale: 0.5 })?;
            TaskData::Synthetic {
                n: u32::try_from(s.n).context("--synthetic n is too large")?,
                d: u32::try_from(s.d).context("--synthetic d is too large")?,
                seed: s.seed,
                scale: s.scale,
            }
        }
        (None, Some(ap), Some(bp)) => {
            let m = super::compute::read_matrix(ap)?;
            let b = data::to_vector(super::compute::read_matrix(bp)?).with_context(|| bp.display().to_string())?;
            if b.len() != m.rows() {
                bail!("{} has {} rows but {} has {} values", ap.display(), m.rows(), bp.display(), b.len());
            }
            TaskData::Inline { rows: m.rows() as u32, cols: m.cols() as u32, a: m.into_vec(), b }
        }
        _ if attention => {
            bail!("give the task's data: --a1 A1 --a2 A2 --a3 A3 --b B, or --synthetic n=..,d=..,seed=..")
        }
        _ => bail!("give the task's data: --data A --target b, or --synthetic n=..,d=..,seed=.."),
    };
    Ok(TaskSpec { kind, data, reg_lambda: reg, copyright: None, target_score: a.target_score })
}

/// `task ...`.
pub fn task(c: &ConfigArgs, cmd: TaskCommand, json: bool) -> anyhow::Result<()> {
    // Local input is checked before the node is contacted.
    let spec = match &cmd {
        TaskCommand::Submit(a) => Some(build_spec(a)?),
        _ => None,
    };
    let rows = match &cmd {
        TaskCommand::Predict { data, .. } => {
            let m = super::compute::read_matrix(data)?;
            Some((0..m.rows()).map(|i| m.row(i).to_vec()).collect::<Vec<_>>())
        }
        _ => None,
    };
    let cl = client(c)?;
    match cmd {
        TaskCommand::Submit(a) => {
            let submit = rpc::TaskSubmit {
                spec: spec.expect("built above"),
                bounty: a.bounty,
                expires_in: a.expires_in,
                fee_rate: a.fee_rate,
            };
            let s = call!(cl, task_submit(submit));
            if json { print_json(&s)? } else { outln!("task {}\nsubmitted in transaction {}", s.task, s.txid) }
        }
        TaskCommand::List => {
            let tasks = call!(cl, task_list());
            if json {
                return print_json(&tasks);
            }
            outln!(
                "{:<64}  {:<9} {:>8} {:>22} {:>12} {:>12}",
                "task",
                "status",
                "shape",
                "bounty",
                "best score",
                "target"
            );
            for t in tasks {
                let shape = format!("{}x{}", t.rows.unwrap_or(0), t.cols.unwrap_or(0));
                outln!(
                    "{:<64}  {:<9} {:>8} {:>22} {:>12.5e} {:>12.5e}",
                    t.id,
                    if t.stalled { "stalled" } else { t.status.as_str() },
                    shape,
                    grad(t.bounty),
                    t.best_score,
                    t.target_score
                );
            }
        }
        TaskCommand::Show { id } => {
            let t = call!(cl, task_get(id.clone()));
            let history = call!(cl, task_history(id));
            if json {
                return print_json(&serde_json::json!({ "task": t, "history": history }));
            }
            outln!("task       {}", t.id);
            outln!("status     {}{}", t.status, t.solved_by.as_ref().map(|a| format!(" by {a}")).unwrap_or_default());
            if t.stalled {
                outln!(
                    "stalled    no improvement by the network's margin since height {}: miners skip it (reclaim the bounty after expiry, or resubmit with a reachable target)",
                    t.improved_height
                );
            }
            if let (Some(k), Some(r), Some(cols)) = (&t.kind, t.rows, t.cols) {
                outln!("kind       {k} on {r} x {cols}");
            }
            outln!("bounty     {}", grad(t.bounty));
            outln!("best score {:.6e} (height {}), target {:.6e}", t.best_score, t.best_height, t.target_score);
            outln!("open       heights {}..={}", t.created_height, t.expires_at_height);
            if let Some(cr) = &t.creator {
                outln!("creator    {cr}");
            }
            outln!("history    ({} blocks changed it)", history.len());
            for p in history.iter().rev().take(20).rev() {
                outln!("  height {:>8}  score {:.6e}", p.height, p.score);
            }
        }
        TaskCommand::Model { id, save } => {
            let m = call!(cl, task_get_model(id));
            if let Some(path) = &save {
                let mat = crate::compute::det::Mat::from_vec(m.params.len(), 1, m.params.clone()).expect("a column");
                let bytes = match data::Format::from_path(path)? {
                    data::Format::Csv => data::write_csv(&mat).into_bytes(),
                    data::Format::Npy => data::write_npy(&mat),
                };
                std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
            }
            if json {
                return print_json(&m);
            }
            outln!("task {} score {:.6e} (height {}), {} parameters", m.task, m.score, m.height, m.params.len());
            for v in &m.params {
                outln!("{v:.17e}");
            }
        }
        TaskCommand::Predict { id, .. } => {
            let rows = rows.expect("read above");
            let count = rows.len().max(1);
            let f = call!(cl, task_predict(id, rows));
            if json {
                return print_json(&f);
            }
            // One line per input row: a softmax-family task gives one value per row, an
            // attention task the d outputs of each query row.
            let per = (f.len() / count).max(1);
            for row in f.chunks(per) {
                let line: Vec<String> = row.iter().map(|v| format!("{v:.17e}")).collect();
                outln!("{}", line.join(" "));
            }
        }
        TaskCommand::Reclaim { id } => {
            let txid = call!(cl, task_reclaim(id));
            if json { print_json(&serde_json::json!({ "txid": txid }))? } else { outln!("{txid}") }
        }
    }
    Ok(())
}

/// `query ...`.
pub fn query(c: &ConfigArgs, cmd: QueryCommand, json: bool) -> anyhow::Result<()> {
    let cl = client(c)?;
    match cmd {
        QueryCommand::Tip => {
            let t = call!(cl, chain_get_tip());
            if json {
                print_json(&t)?
            } else {
                outln!("{} height {} {} (mempool {} txs)", t.network, t.height, t.hash, t.mempool_txs)
            }
        }
        QueryCommand::Block { id } => {
            let v = match id.parse::<u64>() {
                Ok(h) if id.len() != 64 => serde_json::Value::from(h),
                _ => serde_json::Value::from(id),
            };
            let b = call!(cl, chain_get_block(v));
            if json {
                return print_json(&b);
            }
            outln!("block {} height {} ({} confirmations)", b.hash, b.height, b.confirmations);
            outln!("prev  {}  time {}  bits {}  nonce {}", b.prev, b.time, b.bits, b.nonce);
            outln!("work  task {} cost {} mWU, output {}", b.task, b.cost, b.output_hash);
            outln!("{} transactions, {} bytes", b.txs.len(), b.size);
            for t in &b.txs {
                outln!("  {} {}", t.txid, t.kind);
            }
        }
        QueryCommand::Tx { txid } => {
            let t = call!(cl, chain_get_tx(txid));
            if json {
                return print_json(&t);
            }
            let place = match (&t.block, t.height) {
                (Some(b), Some(h)) => format!("in block {b} at height {h} ({} confirmations)", t.confirmations),
                _ => "in the mempool".to_string(),
            };
            outln!("{} {} ({} bytes) {place}", t.txid, t.kind, t.size);
            for i in &t.inputs {
                outln!("  in  {i}");
            }
            for o in &t.outputs {
                outln!("  out {} {}", o.address, grad(o.value));
            }
            if let Some(task) = &t.task {
                outln!("  task {task}");
            }
        }
        QueryCommand::Proof { txid } => {
            let p = call!(cl, chain_get_merkle_proof(txid));
            if json {
                return print_json(&p);
            }
            outln!("{} is leaf {} of block {} (height {})", p.txid, p.index, p.block, p.height);
            for s in &p.branch {
                outln!("  {s}");
            }
            outln!("root {} — {}", p.merkle_root, if p.valid { "proof checks" } else { "PROOF DOES NOT CHECK" });
        }
        QueryCommand::Utxos { addresses } => {
            let a = if addresses.is_empty() { None } else { Some(addresses) };
            let u = call!(cl, chain_get_utxos(a));
            if json {
                return print_json(&u);
            }
            for o in u {
                outln!(
                    "{}:{} {} {:>22} height {}{}",
                    o.txid,
                    o.vout,
                    o.address,
                    grad(o.value),
                    o.height,
                    if o.maturing { " (maturing)" } else { "" }
                );
            }
        }
        QueryCommand::Mempool => {
            let m = call!(cl, tx_mempool());
            if json {
                return print_json(&m);
            }
            outln!("{} transactions", m.len());
            for t in m {
                outln!("{} {:<12} {:>6} bytes fee {}", t.txid, t.kind, t.size, grad(t.fee));
            }
        }
        QueryCommand::Peers => {
            let p = call!(cl, net_peers());
            if json {
                return print_json(&p);
            }
            outln!("{} peers", p.len());
            for peer in p {
                outln!("{} {} {}", peer.peer_id, peer.addresses.join(","), peer.agent.unwrap_or_default());
            }
        }
    }
    Ok(())
}

/// `mining ...`.
pub fn mining(c: &ConfigArgs, cmd: MiningCommand, json: bool) -> anyhow::Result<()> {
    let cl = client(c)?;
    let m = match cmd {
        MiningCommand::Start { threads, payout } => call!(cl, mining_start(Some(threads), payout)),
        MiningCommand::Stop => call!(cl, mining_stop()),
        MiningCommand::Info => call!(cl, mining_info()),
    };
    if json {
        return print_json(&m);
    }
    if m.running {
        outln!(
            "mining with {} threads on task {}: {:.1} steps/s, {} blocks found, paying {}",
            m.threads,
            m.task.as_deref().unwrap_or("-"),
            m.steps_per_sec,
            m.blocks_found,
            m.payout.as_deref().unwrap_or("-")
        );
        let useful: u64 = m.iterates.iter().map(|i| i.useful).sum();
        let fraction = if m.steps > 0 { useful as f64 / m.steps as f64 } else { 0.0 };
        outln!(
            "{} steps: {} outputs adopted, {useful} of them improving by the network's margin (useful fraction {fraction:.2})",
            m.steps,
            m.steps_adopted
        );
        for (task, share) in &m.tasks {
            outln!("  task {task}: {:.0}% of the steps", share * 100.0);
        }
        for i in &m.iterates {
            outln!(
                "  iterate of {}{}: objective {:.6e}, {} steps, {} useful",
                i.task,
                if i.open { "" } else { " (closed)" },
                i.objective,
                i.steps,
                i.useful
            );
        }
        if let Some(t) = m.paused_until {
            outln!("paused until unix time {t}: blocks came faster than the clock allows");
        }
    } else {
        outln!("not mining");
    }
    Ok(())
}
