//! The documentation in docs/ stays true to the code: the man page is what
//! scripts/man.sh makes from the binary's `--help`.

mod common;
use common::*;
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn the_man_page_is_generated_from_the_current_help() {
    let out = std::process::Command::new(Path::new(ROOT).join("scripts/man.sh")).arg(bin()).output().unwrap();
    assert!(out.status.success(), "scripts/man.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    let fresh = String::from_utf8(out.stdout).unwrap();
    let kept = std::fs::read_to_string(Path::new(ROOT).join("docs/podinit.1")).unwrap();
    assert!(fresh.contains("\n.SH OPTIONS\n") && fresh.contains("\\-\\-grace"), "not a man page:\n{fresh}");
    assert!(
        fresh == kept,
        "docs/podinit.1 is not what `podinit --help` says now: run scripts/man.sh and commit docs/podinit.1"
    );
}
