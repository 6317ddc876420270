#!/usr/bin/env bash
# The benchmark, in one command from a clean clone: bench/run.sh
# Installs the peers (tini, tini-static, dumb-init, catatonit, hyperfine; by
# scripts/setup.sh), builds podinit's static binaries and the C helpers, and
# runs bench/bench.py, which writes bench/RESULTS.md and bench/out/raw.json.
# Needs root (pid namespaces). About 2 minutes on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
command -v gcc >/dev/null || { apt-get update -qq && apt-get install -y -qq gcc >/dev/null; }
cargo build --release --target x86_64-unknown-linux-musl
scripts/build-small.sh >/dev/null
scripts/build-small.sh --target aarch64-unknown-linux-musl >/dev/null
mkdir -p bench/out
gcc -O2 -Wall -Wextra -o bench/out/helpers bench/helpers.c
exec python3 bench/bench.py "$@"
