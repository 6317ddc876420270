//! The documentation in docs/ stays true to the code: every rule the sources
//! and tests cite (`docs/lifecycle.md L4`, `B9`, `docs/config.md "Actions"`)
//! exists, no reference points at a document outside the repository, and
//! the man page is what scripts/man.sh makes from the binary's `--help`.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// Every file under `dir` (relative to the repository), recursively.
fn files(dir: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(Path::new(ROOT).join(dir)).unwrap() {
        let path = entry.unwrap().path();
        let rel = path.strip_prefix(ROOT).unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            files(&rel, out);
        } else {
            out.push(PathBuf::from(rel));
        }
    }
}

/// The sources, tests and examples whose references must resolve (not this
/// file, which names the forbidden words).
fn cited_files() -> Vec<(String, String)> {
    let mut all = Vec::new();
    for dir in ["src", "tests", "examples"] {
        files(dir, &mut all);
    }
    all.into_iter()
        .filter(|p| p != Path::new("tests/docs.rs"))
        .filter_map(|p| {
            let text = std::fs::read_to_string(Path::new(ROOT).join(&p)).ok()?;
            Some((p.to_string_lossy().into_owned(), text))
        })
        .collect()
}

fn ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Word-bounded tokens `L<n>` / `B<n>` (a letter, then digits) in `text`, with their line.
fn rule_tokens(text: &str, letter: char) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        for i in 0..chars.len() {
            if chars[i] != letter || (i > 0 && ident(chars[i - 1])) {
                continue;
            }
            let digits: String = chars[i + 1..].iter().take_while(|c| c.is_ascii_digit()).collect();
            let end = i + 1 + digits.len();
            if !digits.is_empty() && chars.get(end).is_none_or(|&c| !ident(c)) {
                found.push((n + 1, format!("{letter}{digits}")));
            }
        }
    }
    found
}

/// The rules docs/lifecycle.md defines: lines starting `**L4.` / `**B9.`.
fn defined_rules(lifecycle: &str) -> BTreeSet<String> {
    lifecycle
        .lines()
        .filter_map(|l| l.strip_prefix("**"))
        .filter_map(|l| l.split_once('.').map(|(id, _)| id.to_string()))
        .filter(|id| id.len() > 1 && (id.starts_with('L') || id.starts_with('B')) && id[1..].parse::<u32>().is_ok())
        .collect()
}

/// `docs/NAME.md "Heading"` references: (line, file, heading).
fn section_refs(text: &str) -> Vec<(usize, String, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("docs/") {
            rest = &rest[at..];
            let name: String = rest.chars().take_while(|&c| ident(c) || ".-/".contains(c)).collect();
            rest = &rest[name.len()..];
            let name = name.trim_end_matches('.').to_string();
            let heading = rest.strip_prefix(" \"").and_then(|r| r.split_once('"')).map(|(h, _)| h.to_string());
            found.push((n + 1, name, heading.unwrap_or_default()));
        }
    }
    found
}

fn headings(doc: &str) -> BTreeSet<String> {
    doc.lines().filter(|l| l.starts_with('#')).map(|l| l.trim_start_matches('#').trim().to_string()).collect()
}

/// Problems with the references in one file's text.
fn problems(file: &str, text: &str, rules: &BTreeSet<String>) -> Vec<String> {
    let mut bad = Vec::new();
    // Built from pieces so that this file does not trip over its own list.
    let outside = [
        ["LIFE", "CYCLE"].concat(),
        ["SP", "EC"].concat(),
        ["DES", "IGN"].concat(),
        ["../", "shared"].concat(),
        ["behaviour", " "].concat(),
    ];
    for (n, line) in text.lines().enumerate() {
        for word in &outside {
            let hit = line.match_indices(word.as_str()).any(|(i, _)| {
                let before = line[..i].chars().next_back();
                let after = line[i + word.len()..].chars().next();
                if word.ends_with(' ') {
                    // "behaviour 9": the old numbering; "behaviour" alone is a word.
                    after.is_some_and(|c| c.is_ascii_digit())
                } else {
                    before.is_none_or(|c| !ident(c)) && after.is_none_or(|c| !c.is_ascii_alphabetic())
                }
            });
            if hit {
                bad.push(format!("{file}:{}: `{word}` points outside the repository: cite docs/ instead", n + 1));
            }
        }
    }
    for letter in ['L', 'B'] {
        for (n, id) in rule_tokens(text, letter) {
            if !rules.contains(&id) {
                bad.push(format!("{file}:{n}: cites {id}, which docs/lifecycle.md does not define"));
            }
        }
    }
    for (n, name, heading) in section_refs(text) {
        let Ok(doc) = std::fs::read_to_string(Path::new(ROOT).join(&name)) else {
            bad.push(format!("{file}:{n}: {name} does not exist"));
            continue;
        };
        if !heading.is_empty() && !headings(&doc).contains(&heading) {
            bad.push(format!("{file}:{n}: {name} has no section \"{heading}\""));
        }
    }
    bad
}

#[test]
fn every_cited_rule_and_section_exists_in_docs() {
    let rules = defined_rules(&read("docs/lifecycle.md"));
    for i in 1..=39 {
        assert!(rules.contains(&format!("L{i}")), "docs/lifecycle.md lacks L{i}");
    }
    for i in 1..=12 {
        assert!(rules.contains(&format!("B{i}")), "docs/lifecycle.md lacks B{i}");
    }
    let files = cited_files();
    assert!(files.iter().any(|(f, _)| f == "src/supervisor/mod.rs"), "the scan found no sources");
    let bad: Vec<String> = files.iter().flat_map(|(f, text)| problems(f, text, &rules)).collect();
    assert!(bad.is_empty(), "references that do not resolve:\n{}", bad.join("\n"));
}

#[test]
fn the_reference_check_catches_what_it_should() {
    let rules = defined_rules(&read("docs/lifecycle.md"));
    let cases = [
        ("/// preStop first (docs/lifecycle.md L40).", "cites L40"),
        ("//! the socket (docs/lifecycle.md B13)", "cites B13"),
        (&["// see LIFE", "CYCLE L4"].concat(), "points outside"),
        (&["// SP", "EC behaviour 9"].concat(), "points outside"),
        ("// docs/config.md \"No such heading\"", "has no section"),
        ("// docs/nothing.md", "does not exist"),
    ];
    for (text, want) in cases {
        let found = problems("sample.rs", text, &rules);
        assert!(found.iter().any(|p| p.contains(want)), "{text:?}: expected `{want}`, got {found:?}");
    }
    let good = "// docs/lifecycle.md L4, L7 and B9; docs/config.md \"Actions\"; SIGTERM, LSB, B-tree";
    assert_eq!(problems("sample.rs", good, &rules), Vec::<String>::new());
}

#[test]
fn the_man_page_is_generated_from_the_current_help() {
    let out = std::process::Command::new(Path::new(ROOT).join("scripts/man.sh")).arg(bin()).output().unwrap();
    assert!(out.status.success(), "scripts/man.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    let fresh = String::from_utf8(out.stdout).unwrap();
    let kept = read("docs/podinit.1");
    assert!(fresh.contains("\n.SH OPTIONS\n") && fresh.contains("\\-\\-grace"), "not a man page:\n{fresh}");
    assert!(
        fresh == kept,
        "docs/podinit.1 is not what `podinit --help` says now: run scripts/man.sh and commit docs/podinit.1"
    );
}
