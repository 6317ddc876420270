#!/usr/bin/env bash
# The smallest static podinit: std rebuilt with panic = immediate-abort, so
# none of std's panic-message and backtrace machinery is linked in. It needs
# the rust-src component and unstable cargo flags, enabled on the stable
# toolchain with RUSTC_BOOTSTRAP=1 (the Rust project's own escape hatch).
# Behaviour is the same; only a panic (which podinit must never reach)
# would abort without a message. Output: target/small/x86_64-unknown-linux-musl/release/podinit
set -euo pipefail
cd "$(dirname "$0")/.."
rustup component list --installed 2>/dev/null | grep -q '^rust-src' || rustup component add rust-src
rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl
out=target/small/x86_64-unknown-linux-musl/release/podinit
if ! RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Crelocation-model=static" \
  cargo build --release --target x86_64-unknown-linux-musl --target-dir target/small \
  -Z build-std=std,panic_abort "$@"; then
  # A toolchain without these unstable options still gets a working static binary.
  echo "build-small: the small build failed on this toolchain; falling back to the plain static build" >&2
  cargo build --release --target x86_64-unknown-linux-musl "$@"
  mkdir -p "$(dirname "$out")"
  cp target/x86_64-unknown-linux-musl/release/podinit "$out"
fi
ls -l "$out"
