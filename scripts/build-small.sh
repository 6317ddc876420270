#!/usr/bin/env bash
# The smallest static podinit: std rebuilt with panic = immediate-abort, so
# none of std's panic-message and backtrace machinery is linked in. It needs
# the rust-src component and unstable cargo flags, enabled on the stable
# toolchain with RUSTC_BOOTSTRAP=1 (the Rust project's own escape hatch).
# Behaviour is the same; only a panic (which podinit must never reach)
# would abort without a message.
#
#   scripts/build-small.sh [--target TRIPLE] [CARGO ARGS...]
#
# TRIPLE: x86_64-unknown-linux-musl (default) or aarch64-unknown-linux-musl.
# A target other than the host's is cross-compiled and linked with rust-lld,
# which ships with rustup (the musl targets bring their own C runtime), so no
# C cross toolchain is needed. Output: target/small/TRIPLE/release/podinit.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
if [ "${1:-}" = --target ]; then
  [ $# -ge 2 ] || { echo "build-small: --target needs a triple, e.g. aarch64-unknown-linux-musl" >&2; exit 2; }
  target=$2
  shift 2
fi
case "$target" in
  x86_64-unknown-linux-musl | aarch64-unknown-linux-musl) ;;
  *) echo "build-small: unsupported target '$target': use x86_64-unknown-linux-musl or aarch64-unknown-linux-musl" >&2; exit 2 ;;
esac
rustup component list --installed 2>/dev/null | grep -q '^rust-src' || rustup component add rust-src
rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target"
# Cross-linking: rust-lld, unless the caller chose a linker (e.g. Debian's
# aarch64-linux-gnu-gcc) through the usual cargo variable.
host=$(rustc -vV | sed -n 's/^host: //p')
linker_var="CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_LINKER"
if [ "${host%%-*}" != "${target%%-*}" ] && [ -z "${!linker_var:-}" ]; then
  export "$linker_var"=rust-lld
fi
out=target/small/$target/release/podinit
# No unwind tables: with panic=immediate-abort nothing unwinds, and .eh_frame was
# 94 KB of the binary (755,576 -> 661,368 B on 2026-11-29); only a debugger's
# backtrace of a crash would miss them.
if ! RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Crelocation-model=static -Cforce-unwind-tables=no" \
  cargo build --release --target "$target" --target-dir target/small \
  -Z build-std=std,panic_abort "$@"; then
  # A toolchain without these unstable options still gets a working static binary.
  echo "build-small: the small build failed on this toolchain; falling back to the plain static build" >&2
  cargo build --release --target "$target" "$@"
  mkdir -p "$(dirname "$out")"
  cp "target/$target/release/podinit" "$out"
fi
ls -l "$out"
