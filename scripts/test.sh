#!/usr/bin/env bash
# The test command: set up a fresh machine, check formatting and lints, then
# run every test (unit tests, podinit as a real PID 1, podman containers), then
# fuzz the config loader for a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
run_tests() {
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --no-fail-fast --failure-output final
  else
    cargo test --no-fail-fast
  fi
}
run_tests
# The same suite against the small static build that the Containerfile ships.
scripts/build-small.sh
PODINIT_TEST_BINARY="$PWD/target/small/x86_64-unknown-linux-musl/release/podinit" run_tests
# Coverage-guided fuzzing of the config loader, bounded (issue 8): a panic fails CI.
scripts/fuzz.sh "${PODINIT_FUZZ_SECONDS:-60}"
