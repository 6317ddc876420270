#!/usr/bin/env bash
# The test command: set up a fresh machine, check formatting and lints, then
# run every test (unit tests, podinit as a real PID 1, podman containers), then
# fuzz the config loader for a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
# The crate docs build without a warning, and the crate as crates.io would
# get it packages, builds and installs into a working podinit.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
scripts/package-check.sh
# A test that cannot run here (no podman, no unshare, ...) records itself in this
# ledger (tests/common: skip); the runner counts it as passed, so the ledger is
# reported after each run as what was skipped. PODINIT_TESTS_STRICT=1 makes a
# skip fail instead.
mkdir -p target
export PODINIT_SKIP_LEDGER="$PWD/target/skipped.txt"
# run_tests LABEL [BINARY:TEST...]: every test, or only the named ones
# (BINARY:* for all of a test binary).
run_tests() {
  local label=$1
  shift
  rm -f "$PODINIT_SKIP_LEDGER"
  local status=0
  if [ $# -eq 0 ]; then
    if cargo nextest --version >/dev/null 2>&1; then
      cargo nextest run --no-fail-fast --failure-output final || status=$?
    else
      cargo test --no-fail-fast || status=$?
    fi
  elif cargo nextest --version >/dev/null 2>&1; then
    local expr="" t
    for t in "$@"; do
      if [ "${t#*:}" = "*" ]; then t="binary(${t%%:*})"; else t="(binary(${t%%:*}) & test(=${t#*:}))"; fi
      expr="${expr:+$expr | }$t"
    done
    cargo nextest run --no-fail-fast --failure-output final -E "$expr" || status=$?
  else
    local bin
    for bin in $(printf '%s\n' "$@" | cut -d: -f1 | sort -u); do
      local names=()
      for t in "$@"; do
        [ "${t%%:*}" = "$bin" ] && [ "${t#*:}" != "*" ] && names+=("${t#*:}")
      done
      cargo test --no-fail-fast --test "$bin" -- --exact "${names[@]}" || status=$?
    done
  fi
  set -- "$label"
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
# The aarch64 build, cross-compiled here and run under qemu-user: the CLI and
# config tests and a core PID-1 subset (exit codes, signal forwarding, orphan
# reaping, leftovers, the stop sequence with a preStop sleep). Through
# binfmt_misc when the kernel has qemu registered for aarch64, else with the
# explicit wrapper tests/common prepends. What qemu-user cannot do (the child
# subreaper) is recorded as skipped by the tests themselves (skip_emulated).
# Tests are named one by one: a new PID-1 test joins the subset only once it
# is known to run under qemu (real-time signals, for one, do not).
scripts/build-small.sh --target aarch64-unknown-linux-musl
qemu_subset=(
  'cli:*'
  init:bad_configs_exit_2_naming_file_line_and_key_and_run_nothing
  init:every_example_config_passes_check
  init:check_prints_the_plan_with_credentials_masked
  init:failing_exec_step_stops_everything_with_its_code
  init:sigterm_during_an_exec_step_stops_it_and_starts_nothing
  pid1:exit_codes_are_the_main_process_s
  pid1:exec_failures_say_what_to_check
  pid1:forwards_signals_to_the_main_process
  pid1:rewrite_changes_the_forwarded_signal
  pid1:group_flag_reaches_the_whole_process_group
  pid1:without_group_flag_only_the_main_process_gets_the_signal
  pid1:thousand_orphans_leave_no_zombie
  pid1:subreaper_adopts_and_reaps_orphans
  pid1:leftovers_are_stopped_and_podinit_exits_at_once
  pid1:leftovers_ignoring_sigterm_are_killed_at_the_grace_deadline
  pid1:subreaper_stops_only_its_own_leftovers
  pid1:idle_podinit_never_wakes_up
  pid1:parent_death_signal_reaches_podinit
  pid1:a_closed_stderr_never_hurts_the_main_process
  stop:out_of_service_then_drain_then_stop_signal
  stop:pre_stop_sleep_without_a_config
  stop:a_long_pre_stop_still_leaves_two_seconds
  stop:a_second_sigterm_skips_the_rest_of_pre_stop
  stop:main_ignoring_sigterm_is_killed_at_the_grace_deadline
)
(
  export PODINIT_TEST_BINARY="$PWD/target/small/aarch64-unknown-linux-musl/release/podinit" PODINIT_TEST_EMULATED=1
  if ! grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    PODINIT_TEST_WRAPPER="$(command -v qemu-aarch64-static)"
    export PODINIT_TEST_WRAPPER
  fi
  run_tests "aarch64 build under qemu-user" "${qemu_subset[@]}"
)
# Coverage-guided fuzzing of the config loader, bounded (issue 8): a panic fails CI.
scripts/fuzz.sh "${PODINIT_FUZZ_SECONDS:-60}"
