#!/usr/bin/env bash
# The test command: set up a fresh machine, check formatting and lints, then
# run every test (unit tests, podinit as a real PID 1, podman containers), then
# fuzz the config loader for a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
# A test that cannot run here (no podman, no unshare, ...) records itself in this
# ledger (tests/common: skip); the runner counts it as passed, so the ledger is
# reported after each run as what was skipped. PODINIT_TESTS_STRICT=1 makes a
# skip fail instead.
mkdir -p target
export PODINIT_SKIP_LEDGER="$PWD/target/skipped.txt"
run_tests() {
  rm -f "$PODINIT_SKIP_LEDGER"
  local status=0
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --no-fail-fast --failure-output final || status=$?
  else
    cargo test --no-fail-fast || status=$?
  fi
  if [ -s "$PODINIT_SKIP_LEDGER" ]; then
    echo "test.sh ($1): SKIPPED, not passed: $(sort -u "$PODINIT_SKIP_LEDGER" | wc -l) test(s) or parts of tests:"
    sort -u "$PODINIT_SKIP_LEDGER" | sed 's/^/  /'
  else
    echo "test.sh ($1): no test skipped"
  fi
  return "$status"
}
run_tests "debug build"
# The same suite against the small static build that the Containerfile ships.
scripts/build-small.sh
PODINIT_TEST_BINARY="$PWD/target/small/x86_64-unknown-linux-musl/release/podinit" run_tests "small static build"
# Coverage-guided fuzzing of the config loader, bounded (issue 8): a panic fails CI.
scripts/fuzz.sh "${PODINIT_FUZZ_SECONDS:-60}"
