#!/usr/bin/env bash
# Refits the step-cost weights: runs the calibration sweep in a release build and fits
# the class weights to it (scripts/fit_cost.py) in a venv of its own (numpy, scipy).
# Usage: scripts/fit_cost.sh [reps] [ricl]   (ricl: the ricl kind's weights)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/fit-venv
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q numpy scipy
fi
sweep=target/cost-sweep.txt
cargo run --release --locked -q -- bench cost --classes --reps "${1:-20}" | tee "$sweep"
"$venv/bin/python" scripts/fit_cost.py "$sweep" ${2:+"$2"}
