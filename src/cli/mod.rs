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
mod compute;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// GradientCoin: a Bitcoin-style chain whose proof of work is useful numerical work.
#[derive(Debug, Parser)]
#[command(name = "gradientcoin", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
    match cli.command {
        Command::Compute(cmd) => compute::run(cmd),
        Command::Bench(BenchCommand::Chain { txs }) => bench::run(txs),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// The whole error chain on one line (`outer: inner: cause`).
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}
