#!/usr/bin/env bash
# Side-by-side benchmark of the ricl solve against SciPy (least_squares "trf" and L-BFGS-B,
# both with the box bounds and exact derivatives), single thread, same data and start,
# equal objective value. Sets up its own venv (numpy, scipy) in target/bench-venv.
# Usage: scripts/bench_ricl.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/bench-venv
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q numpy scipy
fi
cargo build --release --locked -q
"$venv/bin/python" scripts/bench_ricl.py target/release/gradientcoin "$@"
