#!/usr/bin/env bash
# The test command of the README: every test in a debug build, every test in a release
# build, and the golden consensus vectors once more in a `-C target-cpu=native` build
# (DESIGN.md §4: the same bits from every build). Usage: scripts/test.sh [--quick]
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

step "golden vectors in a target-cpu=native build"
scripts/golden.sh native
