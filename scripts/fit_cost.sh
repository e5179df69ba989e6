#!/usr/bin/env bash
# Refits the step-cost weights: runs the calibration sweep in a release build and fits
# the class weights to it (scripts/fit_cost.py) in a venv of its own (numpy, scipy).
# Usage: scripts/fit_cost.sh [reps] [softmax|attention|ricl|all] [sweeps]
# With several sweeps each case counts with its fastest time (a busy machine only ever
# slows a case down).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
venv=target/fit-venv
ensure_venv "$venv"
sweep=target/cost-sweep.txt
cargo build --release --locked -q
: > "$sweep"
for _ in $(seq "${3:-1}"); do
    target/release/gradientcoin bench cost --classes --reps "${1:-20}" | tee -a "$sweep" | tail -n 1
done
"$venv/bin/python" scripts/fit_cost.py "$sweep" "${2:-softmax}"
