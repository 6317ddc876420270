#!/bin/sh
# A small stand-in application: it forks helpers that outlive their parent
# (orphans that PID 1 must reap), reports what it sees, and exits 0 on SIGTERM.
trap 'echo "app: SIGTERM received, shutting down cleanly"; exit 0' TERM
echo "app: running as pid $$, parent $PPID"
for i in 1 2 3; do (sleep 0.5 &); done
sleep 1
echo "app: zombies now: $(grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l)"
while :; do sleep 0.1; done
