#!/usr/bin/env bash
# The test command of the README: every test in a debug build and every test in a release
# build (the golden consensus vectors included, so both builds must give the same bits).
# `scripts/golden.sh native` checks them in a `-C target-cpu=native` build as well; it is
# not run here because a third cold build of the node's dependency stack would push CI
# past its time budget. Usage: scripts/test.sh [--quick]
#   --quick   debug tests only (for the edit-compile loop)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

step "debug: cargo test"
cargo test --locked

if [[ "${1:-}" == "--quick" ]]; then
  exit 0
fi

step "release: cargo test --release"
cargo test --locked --release
