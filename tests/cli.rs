//! Bad input on the command line: one clear error, the usage, exit 2, and no
//! process started.

mod common;
use common::*;
use std::process::Command;

fn podinit(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).env_remove("PODINIT_LOG").envs(env.iter().copied()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_arguments_exit_2_and_start_nothing() {
    let dir = TempDir::new("cli");
    let marker = dir.s("started");
    let cases: [(&[&str], &str); 7] = [
        (&["--frobnicate", "touch", &marker], "unknown option '--frobnicate'"),
        (&["-p", "SIGNOPE", "touch", &marker], "'SIGNOPE' is not a signal"),
        (&["-e", "many", "touch", &marker], "-e 'many': expected an exit code"),
        (&["-r", "TERM", "touch", &marker], "--rewrite 'TERM': expected FROM:TO"),
        (&["--grace", "soon", "touch", &marker], "--grace: 'soon' is not a duration"),
        (&["-v"], "missing COMMAND"),
        (&[], "missing COMMAND"),
    ];
    for (args, want) in cases {
        let (code, _, err) = podinit(args, &[]);
        assert_eq!(code, 2, "{args:?}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {err}");
        assert!(lines[0].starts_with("podinit: ") && lines[0].contains(want), "{args:?}: {err}");
        assert!(lines[1].starts_with("usage: podinit"), "{args:?}: {err}");
    }
    assert!(!dir.path("started").exists(), "a command ran despite bad arguments");
}

#[test]
fn bad_environment_names_the_variable() {
    let dir = TempDir::new("cli-env");
    let marker = dir.s("started");
    for (var, value) in [("PODINIT_GRACE", "forever"), ("PODINIT_STOP_SIGNAL", "NOPE"), ("PODINIT_LOG", "loud")] {
        let (code, _, err) = podinit(&["touch", &marker], &[(var, value)]);
        assert_eq!(code, 2, "{var}");
        assert!(err.contains(var) && err.contains(value), "{var}: {err}");
    }
    assert!(!dir.path("started").exists());
}

#[test]
fn help_and_version() {
    let (code, out, _) = podinit(&["--help"], &[]);
    assert_eq!(code, 0);
    for flag in ["-g", "-e CODE", "-p SIG", "--rewrite", "--grace", "pre-stop"] {
        assert!(out.contains(flag), "--help lacks {flag}");
    }
    let (code, out, _) = podinit(&["--version"], &[]);
    assert_eq!((code, out.trim()), (0, format!("podinit {}", env!("CARGO_PKG_VERSION")).as_str()));
}

#[test]
fn a_command_named_like_a_verb_runs_after_double_dash() {
    let dir = TempDir::new("verb");
    let script = dir.path("status");
    std::fs::write(&script, "#!/bin/sh\nexit 9\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", dir.0.display(), std::env::var("PATH").unwrap_or_default());
    let (code, _, err) = podinit(&["--", "status"], &[("PATH", &path)]);
    assert_eq!(code, 9, "{err}");
}

#[test]
fn json_log_format_gives_one_object_a_line() {
    let (code, _, err) = podinit(&["--log-format", "json", "--", "sh", "-c", "exit 4"], &[]);
    assert_eq!(code, 4);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() >= 2, "{err}");
    for l in &lines {
        assert!(l.starts_with("{\"ts\":\"") && l.ends_with('}'), "{l}");
    }
    assert!(lines.iter().any(|l| l.contains("\"reason\":\"Started\"")), "{err}");
    assert!(lines.iter().any(|l| l.contains("\"reason\":\"Exited\"") && l.contains("exit code 4")), "{err}");
}
