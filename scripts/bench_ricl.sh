#!/usr/bin/env bash
# Side-by-side benchmark of the ricl solve against SciPy (least_squares "trf" and L-BFGS-B,
# both with the box bounds and exact derivatives), single thread, same data and start,
# equal objective value. Sets up its own venv (numpy, scipy) in target/bench-venv.
# Usage: scripts/bench_ricl.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
venv=target/bench-venv
ensure_venv "$venv"
cargo build --release --locked -q
"$venv/bin/python" scripts/bench_ricl.py target/release/gradientcoin "$@"
