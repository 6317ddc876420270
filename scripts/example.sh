#!/usr/bin/env bash
# Runs podinit as PID 1 of a fresh pid namespace on examples/app.sh: an app
# that leaves orphans behind and exits 0 on SIGTERM. After 3 s the script
# sends SIGTERM to podinit, as `docker stop` would, and shows the exit status.
# Needs root (for unshare --pid); installs nothing beyond a cargo build.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/podinit
unshare --pid --fork --mount-proc "$bin" -- sh examples/app.sh &
outer=$!
sleep 3
pid=$(cat "/proc/$outer/task/$outer/children" | awk '{print $1}')
echo "example: sending SIGTERM to podinit (pid $pid on the host, PID 1 inside)"
kill -TERM "$pid"
status=0
wait "$outer" || status=$?
echo "example: podinit exited with status $status"
