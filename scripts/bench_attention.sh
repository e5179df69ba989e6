#!/usr/bin/env bash
# Side-by-side benchmark of the attention solve against SciPy (L-BFGS-B and Newton-CG with
# the exact Hessian-vector product), single thread, same planted instances and start,
# equal gradient norm. Sets up its own venv (numpy, scipy) in target/bench-venv.
# Usage: scripts/bench_attention.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
venv=target/bench-venv
ensure_venv "$venv"
cargo build --release --locked -q
"$venv/bin/python" scripts/bench_attention.py target/release/gradientcoin "$@"
