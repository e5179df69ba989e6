//! Command-line interface: clap commands and their human and `--json` output.
//!
//! Owns argument parsing, reading files, printing and exit codes. It decides nothing about
//! numerics or consensus: it builds inputs, calls the library, and prints what comes back.
//! `anyhow` is used here (and in `main`) only.

/// `println!` that returns the I/O error instead of panicking (a closed pipe ends the
/// command quietly; see [`main`]).
macro_rules! outln {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*)?
    };
}

/// `print!` that returns the I/O error instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        write!(std::io::stdout().lock(), $($arg)*)?
    };
}

mod bench;
mod client;
mod compute;
mod node;
mod reproduce;
pub mod testnet;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// GradientCoin: a Bitcoin-style chain whose proof of work is useful numerical work.
#[derive(Debug, Parser)]
#[command(name = "gradientcoin", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    config: node::ConfigArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node: peer-to-peer networking, JSON-RPC, optionally the miner.
    Node(node::NodeArgs),
    /// Start a local multi-node testnet of node processes with a live view.
    Testnet(testnet::TestnetArgs),
    /// Wallet: keys, balance, payments (through a running node).
    Wallet {
        #[command(subcommand)]
        cmd: client::WalletCommand,
        /// Print JSON.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Training tasks: submit with a bounty, list, show, fetch the model, predict.
    Task {
        #[command(subcommand)]
        cmd: client::TaskCommand,
        /// Print JSON.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Chain queries: tip, blocks, transactions, proofs, UTXOs, mempool, peers.
    Query {
        #[command(subcommand)]
        cmd: client::QueryCommand,
        /// Print JSON.
        #[arg(long, global = true)]
        json: bool,
    },
    /// The node's built-in miner: start, stop, info.
    Mining {
        #[command(subcommand)]
        cmd: client::MiningCommand,
        /// Print JSON.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Run the numerical solvers locally (off-chain): solve a task, benchmark kernels.
    #[command(subcommand)]
    Compute(compute::ComputeCommand),
    /// Consensus benchmarks (ratios against references measured in the same run).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Block validation throughput, step replay time per kind against its cost, and
    /// mining work per block against verification work.
    Chain {
        /// Transfers in the validation benchmark's block.
        #[arg(long, default_value_t = 2000)]
        txs: usize,
    },
    /// Cost calibration: replay time per mWU across the admission domain of every kind;
    /// the last line is `spread X.XX` (max over min).
    Cost {
        /// Seeds per case (each stepped from two iterates).
        #[arg(long, default_value_t = 7)]
        reps: usize,
        /// Also print each case's flops by class (the inputs of the calibration fit).
        #[arg(long)]
        classes: bool,
    },
    /// Headers-first sync of dev blocks between two nodes over libp2p on 127.0.0.1,
    /// against feeding the same blocks to a node without a network.
    Sync {
        /// Blocks to sync.
        #[arg(long, default_value_t = 300)]
        blocks: u64,
    },
    /// Gossip propagation of blocks through a ring of nodes on 127.0.0.1, the miner
    /// rotating: per-node and full-coverage latency percentiles.
    Propagation {
        /// Nodes in the ring.
        #[arg(long, default_value_t = 8)]
        nodes: usize,
        /// Blocks to propagate.
        #[arg(long, default_value_t = 30)]
        blocks: u64,
    },
    /// Is mining training? Chained ticket steps against the off-chain solve on planted
    /// tasks, then a one-node test network mining a bounty task from submit to solved;
    /// the last line is `useful X.XX wu-ratio Y.YY`.
    Mining {
        /// Only the planted comparison (no network part).
        #[arg(long)]
        planted_only: bool,
        /// Measure this planted shape instead of the default ones (repeatable; the
        /// consensus step only, no network part):
        /// n=ROWS,d=COLS[,scale=S][,seed=N][,reg=R][,kind=softmax|resnet_softmax].
        #[arg(long = "shape", value_parser = bench::mining::Shape::parse)]
        shapes: Vec<bench::mining::Shape>,
        /// Only this family's planted comparison (no network part).
        #[arg(long, value_enum)]
        only: Option<bench::mining::Family>,
    },
    /// JSON-RPC latency (p50, p99) while peers, each a fresh identity, offer blocks with
    /// made-up work on a heavy task, against the idle node and one replay's time.
    FakeWork {
        /// Attacking peers (one fake block each).
        #[arg(long, default_value_t = 20)]
        peers: usize,
        /// RPC calls measured on the idle node.
        #[arg(long, default_value_t = 2000)]
        calls: usize,
    },
}

/// Parses the command line, runs the command, and maps the outcome to an exit code:
/// 0 ok, 1 error (printed as one line), 2 usage error (clap's own message).
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout with exit 0, usage errors to stderr with 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // `gradientcoin ... | head` closed the pipe: not an error (as ripgrep does).
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// Runs a parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let c = &cli.config;
    match cli.command {
        Command::Node(args) => node::run(c, args),
        Command::Testnet(args) => testnet::run(c, args),
        Command::Wallet { cmd, json } => client::wallet(c, cmd, json),
        Command::Task { cmd, json } => client::task(c, cmd, json),
        Command::Query { cmd, json } => client::query(c, cmd, json),
        Command::Mining { cmd, json } => client::mining(c, cmd, json),
        Command::Compute(cmd) => compute::run(cmd),
        Command::Bench(BenchCommand::Chain { txs }) => bench::run(txs),
        Command::Bench(BenchCommand::Cost { reps, classes }) => bench::cost::run(reps.max(1), classes),
        Command::Bench(BenchCommand::Sync { blocks }) => bench::sync(blocks),
        Command::Bench(BenchCommand::Propagation { nodes, blocks }) => bench::propagation(nodes, blocks),
        Command::Bench(BenchCommand::FakeWork { peers, calls }) => bench::fakework::run(peers, calls),
        Command::Bench(BenchCommand::Mining { planted_only, shapes, only }) => {
            bench::mining::run(planted_only, shapes, only)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// The whole error chain on one line (`outer: inner: cause`).
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}
