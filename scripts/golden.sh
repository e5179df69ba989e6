#!/usr/bin/env bash
# Runs the golden consensus vectors (tests/vectors/*.json) in the builds DESIGN.md §4
# names: debug, release, and release with RUSTFLAGS="-C target-cpu=native".
# Usage: scripts/golden.sh [debug|release|native ...]   (default: all three)
# The native build uses its own target directory so it does not evict the normal one.
set -euo pipefail
cd "$(dirname "$0")/.."
builds=("$@")
[[ ${#builds[@]} -eq 0 ]] && builds=(debug release native)
tests=(--test golden_steps --test det_vectors)
for b in "${builds[@]}"; do
  printf '\n=== golden vectors: %s build\n' "$b"
  case "$b" in
    debug) cargo test --locked "${tests[@]}" ;;
    release) cargo test --locked --release "${tests[@]}" ;;
    native) RUSTFLAGS="-C target-cpu=native" CARGO_TARGET_DIR=target/native \
              cargo test --locked --release "${tests[@]}" ;;
    *) echo "unknown build '$b' (expected debug, release or native)" >&2; exit 2 ;;
  esac
done
