#!/usr/bin/env bash
# Release artefacts in dist/: the small static binary for x86_64 and aarch64
# (scripts/build-small.sh, cross-compiled from this host), stripped, the man
# page podinit(1), and SHA256SUMS over all of them.
#
#   scripts/release.sh                  writes dist/
#   scripts/release.sh --prefix DIR     also installs this host's binary as
#                                       DIR/bin/podinit and the man page as
#                                       DIR/share/man/man1/podinit.1
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=""
if [ "${1:-}" = --prefix ]; then
  [ $# -ge 2 ] || { echo "release: --prefix needs a directory, e.g. /usr/local" >&2; exit 2; }
  prefix=$2
fi
targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
rm -rf dist
mkdir -p dist
for t in "${targets[@]}"; do
  scripts/build-small.sh --target "$t" --locked >&2
  cp "target/small/$t/release/podinit" "dist/podinit-$t"
  # profile.release has strip = true; make sure, with a tool that reads any
  # architecture's ELF (binutils' strip only knows the host's).
  if readelf -S "dist/podinit-$t" | grep -q '\.symtab'; then
    echo "release: dist/podinit-$t still has a symbol table (is strip = true gone from Cargo.toml?)" >&2
    exit 1
  fi
done
cp docs/podinit.1 dist/podinit.1
(cd dist && sha256sum podinit-* podinit.1 > SHA256SUMS)
ls -l dist
cat dist/SHA256SUMS
if [ -n "$prefix" ]; then
  host=$(uname -m)-unknown-linux-musl
  install -D -m 0755 "dist/podinit-$host" "$prefix/bin/podinit"
  install -D -m 0644 dist/podinit.1 "$prefix/share/man/man1/podinit.1"
  echo "release: installed $prefix/bin/podinit and $prefix/share/man/man1/podinit.1"
fi
