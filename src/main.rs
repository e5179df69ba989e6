//! The `gradientcoin` binary: parses the command line and hands over to `cli::run`.
//!
//! Exit codes: 0 ok, 1 error (one line on stderr), 2 usage (clap's message).

use std::process::ExitCode;

fn main() -> ExitCode {
    gradientcoin::cli::main()
}
