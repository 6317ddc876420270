#!/usr/bin/env bash
# Coverage-guided fuzzing of the config loader (fuzz/fuzz_targets/config.rs) for a
# bounded time: scripts/fuzz.sh [SECONDS] (default 60). Seeds are the example
# configs; a panic or a hang fails the run and leaves the input in fuzz/artifacts/.
# No sanitizer, so the stable toolchain does (cargo-fuzz asks for unstable
# flags only with one): the loader is safe Rust, and overflow checks (on in
# cargo-fuzz builds) turn arithmetic overflow into a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install --quiet --locked cargo-fuzz --version 0.13.2
fi
corpus=fuzz/corpus/config
mkdir -p "$corpus"
cp examples/*.toml "$corpus/"
log=fuzz/target/last-run.log
mkdir -p fuzz/target
status=0
cargo fuzz run --sanitizer none config "$corpus" -- \
  -max_total_time="$seconds" -max_len=4096 -timeout=10 -dict=fuzz/config.dict -print_final_stats=1 \
  >"$log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  tail -40 "$log"; echo
  echo "fuzz: cargo fuzz failed (exit $status): a build error above, or an input that made the loader panic or hang, kept in fuzz/artifacts/config/" >&2
else
  grep -E '^(Done|stat::(number_of_executed_units|new_units_added|peak_rss_mb))' "$log" || true
fi
exit "$status"
