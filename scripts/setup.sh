#!/usr/bin/env bash
# Installs everything podinit's tests, examples and benchmarks need on a fresh
# Debian machine with a Rust toolchain: the musl target for the static build,
# podman + runc for the container tests, busybox-static for a shell inside
# FROM-scratch images, and the peers (tini, dumb-init, catatonit) that tests
# and benchmarks compare against, g++ for libFuzzer (scripts/fuzz.sh),
# qemu-user-static to run the aarch64 build's tests on an x86_64 host, and the
# rustup pieces of the cross build (aarch64 musl target, rust-src for
# scripts/build-small.sh; rust-lld ships with rustup).
# Safe to run again: it skips what is there.
set -euo pipefail

packages=(podman runc busybox-static tini dumb-init catatonit hyperfine nginx-light g++ qemu-user-static)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

rustup component list --installed 2>/dev/null | grep -q "^clippy" || rustup component add clippy rustfmt
for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
  if ! rustup target list --installed 2>/dev/null | grep -qx "$t"; then
    echo "setup: adding the rustup target $t"
    rustup target add "$t"
  fi
done
rustup component list --installed 2>/dev/null | grep -q '^rust-src' || rustup component add rust-src
