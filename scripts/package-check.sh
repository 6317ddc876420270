#!/usr/bin/env bash
# The crate as crates.io would get it: `cargo publish --dry-run` packages it
# (only what Cargo.toml's `include` lists) and builds that package; then
# `cargo install --path` of the packaged sources must give a podinit that
# runs a command as PID 1 and checks a config from the package's examples.
# The install is a debug build in its own target dir (kept between runs), to
# stay fast.
set -euo pipefail
cd "$(dirname "$0")/.."
# --allow-dirty: what is checked is the package's content and build, not
# whether the work tree is committed (CI's clone always is).
cargo publish --dry-run --allow-dirty --locked
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
pkg=target/package/podinit-$version
[ -f "$pkg/Cargo.toml" ] || { echo "package-check: $pkg is missing after cargo publish --dry-run" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
cargo install --quiet --debug --locked --path "$pkg" --root "$root" --target-dir target/package-install
bin=$root/bin/podinit
"$bin" --version | grep -qx "podinit $version" || { echo "package-check: the installed podinit does not report version $version" >&2; exit 1; }
status=0
unshare --pid --fork --mount-proc "$bin" -- sh -c 'exit 7' 2>/dev/null || status=$?
[ "$status" -eq 7 ] || { echo "package-check: the installed podinit as PID 1 exited $status, not the main process's 7" >&2; exit 1; }
"$bin" check -c "$pkg/examples/spring-eureka.toml" >/dev/null
[ -f "$pkg/docs/podinit.1" ] || { echo "package-check: the package lacks the man page docs/podinit.1" >&2; exit 1; }
echo "package-check: cargo publish --dry-run passed; cargo install --path $pkg gives a working podinit"
