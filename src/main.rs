//! The `gradientcoin` binary: parses the command line and hands over to `cli::run`.
//!
//! Exit codes: 0 ok, 1 error (one line on stderr), 2 usage (clap's message).

use std::process::ExitCode;

/// mimalloc keeps freed memory for reuse instead of returning it to the system at once:
/// with glibc's allocator, the large short-lived buffers of every solver step were
/// mmapped and page-faulted afresh on many steps, which made a step's time depend on the
/// allocator's history more than on its flops (up to 2x on the same step) and so
/// defeated the calibration of step costs (DESIGN.md §3.1).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    gradientcoin::cli::main()
}
