//! Bad input on the command line: one clear error, the usage, exit 2, and no
//! process started.

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

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
    let cases: [(&[&str], &str); 11] = [
        (&["--frobnicate", "touch", &marker], "unknown option '--frobnicate'"),
        (&["-p", "SIGNOPE", "touch", &marker], "'SIGNOPE' is not a signal"),
        (&["-e", "many", "touch", &marker], "-e 'many': expected an exit code"),
        (&["-r", "TERM", "touch", &marker], "--rewrite 'TERM': expected FROM:TO"),
        (&["--grace", "soon", "touch", &marker], "--grace: 'soon' is not a duration"),
        (&["-r", "9:15", "touch", &marker], "--rewrite '9:15': SIGKILL cannot be rewritten: the kernel never lets"),
        (&["-r", "SIGSTOP:TERM", "touch", &marker], "--rewrite 'SIGSTOP:TERM': SIGSTOP cannot be rewritten"),
        (
            &["--rewrite", "17:1", "touch", &marker],
            "--rewrite '17:1': SIGCHLD cannot be rewritten: it is podinit's own",
        ),
        (&["--log-format", "yaml", "touch", &marker], "--log-format: 'yaml' is not a log format: write text or json"),
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
    let cases = [
        ("PODINIT_GRACE", "forever"),
        ("PODINIT_STOP_SIGNAL", "NOPE"),
        ("PODINIT_LOG", "loud"),
        ("PODINIT_LOG_FORMAT", "yaml"),
        ("TINI_VERBOSITY", "loud"),
    ];
    for (var, value) in cases {
        let (code, _, err) = podinit(&["touch", &marker], &[(var, value)]);
        assert_eq!(code, 2, "{var}");
        assert!(err.contains(var) && err.contains(value), "{var}: {err}");
        assert_eq!(err.matches(var).count(), 1, "{var} named twice: {err}");
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

/// A config file for `podinit check` in a scratch directory.
fn check(dir: &TempDir, text: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let cfg = dir.config(text);
    podinit(&["check", "-c", &cfg], env)
}

#[test]
fn check_refuses_a_hook_sleep_longer_than_the_grace_period() {
    let dir = TempDir::new("check-sleep");
    let (code, out, err) =
        check(&dir, "grace_period = \"20s\"\n[[pre_stop]]\nname = \"drain\"\nsleep = \"30s\"\n", &[]);
    assert_eq!(code, 2, "{out}{err}");
    let want = format!("podinit: {}:4:9: key `sleep` in pre_stop: a sleep of 30s is longer than the grace period of 20s (grace_period)", dir.s("podinit.toml"));
    assert!(err.starts_with(&want), "{err}");
    assert!(out.is_empty(), "a plan for a refused config: {out}");
    // post_start too, against the default 30 s; and against PODINIT_GRACE, as at start.
    let (code, _, err) = check(&dir, "[[post_start]]\nsleep = \"31s\"\n", &[]);
    assert!(code == 2 && err.contains("key `sleep` in post_start") && err.contains("30s (the default)"), "{err}");
    let (code, _, err) = check(&dir, "[[pre_stop]]\nsleep = \"10s\"\n", &[("PODINIT_GRACE", "5s")]);
    assert!(code == 2 && err.contains("of 5s (PODINIT_GRACE)"), "{err}");
    // Init steps may sleep longer.
    let (code, _, err) = check(&dir, "grace_period = 5\n[[init]]\nsleep = \"1m\"\n", &[]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn check_warns_when_pre_stop_leaves_under_2s() {
    let dir = TempDir::new("check-warn");
    let eureka = "[[pre_stop]]\neureka = { url = \"http://127.0.0.1:1/eureka\", app = \"a\", instance = \"i\" }\n";
    let (code, out, err) =
        check(&dir, &format!("grace_period = \"30s\"\n{eureka}[[pre_stop]]\nsleep = \"19s\"\n"), &[]);
    assert_eq!(code, 0, "{err}");
    let warning = out.lines().find(|l| l.starts_with("warning: ")).unwrap_or_else(|| panic!("no warning: {out}"));
    assert!(warning.contains("up to 29s") && warning.contains("at least 31s"), "{warning}");
    let (code, out, _) = check(&dir, &format!("grace_period = \"30s\"\n{eureka}[[pre_stop]]\nsleep = \"18s\"\n"), &[]);
    assert!(code == 0 && !out.contains("warning"), "{out}");
}

#[test]
fn check_names_the_key_a_section_allows_and_the_eureka_statuses() {
    let dir = TempDir::new("check-keys");
    let cases = [
        ("[[pre-stop]]\nsleep = 1\n", "1:3: [[pre-stop]]: unknown key: did you mean `pre_stop`?"),
        ("graceperiod = 5\n", "1:1: key `graceperiod`: unknown key: did you mean `grace_period`?"),
        (
            "[[pre_stop]]\nslep = 1\n",
            "2:1: key `slep`: unknown key: did you mean `sleep`? a [[pre_stop]] entry takes name, timeout, exec, http, sleep, eureka, nacos, consul\n",
        ),
        (
            "[[pre_stop]]\neureka = { url = \"http://e/eureka\", app = \"a\", instance = \"i\", status = \"GONE\" }\n",
            "2:1: key `eureka`: eureka `status` 'GONE' is not a Eureka status: write one of UP, DOWN, STARTING, OUT_OF_SERVICE, UNKNOWN",
        ),
    ];
    for (text, want) in cases {
        let (code, _, err) = check(&dir, text, &[]);
        assert_eq!(code, 2, "{text:?}: {err}");
        assert!(err.starts_with(&format!("podinit: {}:{want}", dir.s("podinit.toml"))), "{text:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// At start the grace period from the command line decides: `--grace 5s`
/// with a config pre_stop sleep of 10 s starts nothing and exits 2.
#[test]
fn start_refuses_a_sleep_longer_than_the_command_line_grace() {
    let dir = TempDir::new("start-sleep");
    let (init, main) = (dir.s("init-ran"), dir.s("main-ran"));
    let cfg = dir.config(&format!(
        "grace_period = \"60s\"\n[[init]]\nexec = [\"touch\", \"{init}\"]\n[[pre_stop]]\nsleep = \"10s\"\n"
    ));
    let (code, _, err) = podinit(&["--grace", "5s", "-c", &cfg, "--", "touch", &main], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(":5:9: key `sleep` in pre_stop: a sleep of 10s is longer than the grace period of 5s"),
        "{err}"
    );
    assert!(!dir.path("init-ran").exists() && !dir.path("main-ran").exists(), "something started: {err}");
    // Within the grace period it starts, with the 2 s warning logged first.
    let (code, _, err) = podinit(&["--grace", "11s", "-c", &cfg, "--", "touch", &main], &[]);
    assert_eq!(code, 0, "{err}");
    let warn = err.find("preStop may take up to 10s").unwrap_or_else(|| panic!("no warning: {err}"));
    assert!(warn < err.find("Started").unwrap_or(0), "{err}");
    assert!(dir.path("main-ran").exists());
}

#[test]
fn verbs_print_their_usage() {
    for verb in ["pre-stop", "status", "check"] {
        for flag in ["--help", "-h"] {
            let (code, out, err) = podinit(&[verb, flag], &[("PODINIT_SOCKET", "/nonexistent/podinit.sock")]);
            assert_eq!(code, 0, "{verb} {flag}: {err}");
            assert!(out.starts_with(&format!("usage: podinit {verb}")), "{verb} {flag}: {out}");
            assert!(err.is_empty(), "{verb} {flag}: {err}");
        }
    }
    let (_, out, _) = podinit(&["status", "--help"], &[]);
    assert!(out.contains("--ready") && out.contains("--json"), "{out}");
}

#[test]
fn tini_license_and_reap_warning_flags() {
    let (code, out, _) = podinit(&["-l"], &[]);
    let license = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/LICENSE")).unwrap();
    assert_eq!((code, out), (0, license));
    // -w and TINI_SUBREAPER are accepted and change nothing of the outcome.
    let (code, _, err) = podinit(&["-w", "--", "sh", "-c", "exit 3"], &[("TINI_SUBREAPER", "1")]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = podinit(&["-sw", "-g", "--", "sh", "-c", "exit 4"], &[]);
    assert_eq!(code, 4, "{err}");
}

#[test]
fn tini_verbosity_sets_the_log_level() {
    let (code, _, err) = podinit(&["--", "sh", "-c", "exit 0"], &[("TINI_VERBOSITY", "0")]);
    assert_eq!((code, err.as_str()), (0, ""), "TINI_VERBOSITY=0 is errors only");
    let (code, _, err) = podinit(&["--", "sh", "-c", "exit 0"], &[("TINI_VERBOSITY", "1")]);
    assert!(code == 0 && err.contains("Started: main process"), "TINI_VERBOSITY=1 is podinit's default: {err}");
    let (_, _, err) = podinit(&["--", "sh", "-c", "exit 0"], &[("TINI_VERBOSITY", "0"), ("PODINIT_LOG", "info")]);
    assert!(err.contains("Started: main process"), "PODINIT_LOG wins: {err}");
}

/// TINI_KILL_PROCESS_GROUP=1 is `-g`: SIGUSR1 reaches a grandchild in the
/// main process's group (the pattern of pid1.rs `group_flag_reaches_...`).
#[test]
fn tini_kill_process_group_signals_the_group() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("tini-group");
    let script = format!(
        "sh -c 'trap \"echo child >> {log}; exit 0\" USR1; touch {kid}; while :; do sleep 0.02; done' & \
         trap 'echo parent >> {log}' USR1; trap 'wait; exit 0' TERM; \
         while [ ! -e {kid} ]; do sleep 0.01; done; touch {ready}; while :; do sleep 0.02; done",
        log = dir.s("log"),
        kid = dir.s("kid"),
        ready = dir.s("ready")
    );
    let p = start_pid1_env(&["--", "sh", "-c", &script], &[("TINI_KILL_PROCESS_GROUP", "1")]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    p.signal(libc::SIGUSR1);
    wait_for_file(&dir.path("log"), "child\n", Duration::from_secs(5));
    wait_for_file(&dir.path("log"), "parent\n", Duration::from_secs(5));
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn an_init_step_message_says_each_thing_once() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = TempDir::new("tcp-msg");
    let cfg = dir.config(&format!("[[init]]\ntcp = \"127.0.0.1:{port}\"\ntimeout = \"1s\"\n"));
    let (code, _, err) = podinit(&["-c", &cfg, "--", "true"], &[]);
    assert_eq!(code, 1, "{err}");
    let line = err.lines().find(|l| l.contains("InitStepFailed")).unwrap_or_else(|| panic!("{err}"));
    assert_eq!(line.matches(&format!("127.0.0.1:{port}")).count(), 1, "{line}");
    assert!(line.contains("Connection refused"), "{line}");
}

/// A sidecar with everything a Kubernetes native sidecar may have, then a
/// step that needs it: `check` accepts it and shows it in its place.
const SIDECAR: &str = r#"grace_period = "20s"
[main]
command = ["/app/run"]
workdir = "/app"
[[init]]
name = "proxy"
exec = ["socat", "TCP-LISTEN:15432,fork,reuseaddr", "TCP:db:5432"]
restart = "always"
stop_signal = "SIGINT"
timeout = "30s"
env = { TOKEN_PASSWORD = "hunter2" }
[init.probe.startup]
tcp = "127.0.0.1:15432"
period = "1s"
[init.probe.liveness]
tcp = "127.0.0.1:15432"
[[init.post_start]]
exec = ["/bin/true"]
[[init.pre_stop]]
http = { url = "http://admin:hunter2@127.0.0.1:15000/drain" }
timeout = "3s"
[[init.pre_stop]]
sleep = "5s"
[[init]]
name = "wait-for-proxy"
tcp = "127.0.0.1:15432"
"#;

#[test]
fn check_shows_a_sidecar_in_its_place_among_the_steps() {
    let dir = TempDir::new("check-sidecar");
    let (code, out, err) = check(&dir, SIDECAR, &[]);
    assert_eq!(code, 0, "{err}");
    let want = [
        "init 1: sidecar proxy: exec socat TCP-LISTEN:15432,fork,reuseaddr TCP:db:5432, restart: always, the next step waits up to 30s for it to start",
        "  stop_signal: SIGINT",
        "  env: TOKEN_PASSWORD=***",
        "  user, workdir: from [main]",
        "  probe.startup: tcp 127.0.0.1:15432: initial_delay 0s, period 1s,",
        "  probe.liveness: tcp 127.0.0.1:15432:",
        "  post_start 1: /bin/true: exec /bin/true, on failure kill",
        "  pre_stop 1: http http://***@127.0.0.1:15000/drain: http GET http://***@127.0.0.1:15000/drain, timeout 3s",
        "  pre_stop 2: sleep 5s",
        "init 2: wait-for-proxy: tcp 127.0.0.1:15432, every 2s until it succeeds",
    ];
    let lines: Vec<&str> = out.lines().collect();
    let first = lines.iter().position(|l| l.starts_with("init 1:")).unwrap_or_else(|| panic!("{out}"));
    for (i, w) in want.iter().enumerate() {
        assert!(lines.get(first + i).is_some_and(|l| l.starts_with(w)), "line {i}: want {w:?} in\n{out}");
    }
    assert!(!out.contains("hunter2") && !err.contains("hunter2"), "{out}{err}");
}

#[test]
fn check_refuses_bad_sidecars_with_file_line_and_key() {
    let dir = TempDir::new("check-sidecar-bad");
    let exec = "[[init]]\nname = \"proxy\"\nexec = [\"socat\"]\n";
    let cases = [
        (
            format!("{exec}restart = \"sometimes\"\n"),
            "4:11: key `restart`: restart = \"sometimes\": only \"always\" makes a sidecar",
        ),
        (
            format!("{exec}[init.probe.readiness]\ntcp = \"127.0.0.1:1\"\n"),
            "4:1: [init.probe.readiness]: `probe` is only for a sidecar: add restart = \"always\" to this step",
        ),
        (
            "[[init]]\nrestart = \"always\"\nhttp = { url = \"http://127.0.0.1:1/\" }\n".to_string(),
            "3:1: key `http`: a sidecar (restart = \"always\") runs a command: `http` cannot be one; make it an `exec` step",
        ),
        (
            format!("{exec}restart = \"always\"\n[init.probe.readiness]\ntcp = \"127.0.0.1:1\"\nperod = \"1s\"\n"),
            "7:1: key `perod`: unknown key: did you mean `period`? a probe takes name, timeout, exec, http, tcp,",
        ),
        (
            format!("grace_period = 10\n{exec}restart = \"always\"\n[[init.pre_stop]]\nsleep = \"15s\"\n"),
            "7:9: key `sleep` in init.pre_stop: a sleep of 15s is longer than the grace period of 10s (grace_period)",
        ),
    ];
    for (text, want) in cases {
        let (code, out, err) = check(&dir, &text, &[]);
        assert_eq!(code, 2, "{text:?}: {out}{err}");
        assert!(err.starts_with(&format!("podinit: {}:{want}", dir.s("podinit.toml"))), "{text:?}:\n{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(out.is_empty(), "a plan for a refused config: {out}");
    }
}

/// examples/sidecar.toml and the Pod it mirrors say the same thing: the proxy
/// is a sidecar before the wait step, with the same command and probes.
#[test]
fn the_sidecar_example_mirrors_its_kubernetes_manifest() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let (code, plan, err) = podinit(&["check", "-c", &root.join("sidecar.toml").to_string_lossy()], &[]);
    assert_eq!(code, 0, "{err}");
    let steps: Vec<&str> = plan.lines().filter(|l| l.starts_with("init ")).collect();
    assert_eq!(steps.len(), 2, "{plan}");
    assert!(
        steps[0].starts_with(
            "init 1: sidecar db-proxy: exec socat TCP-LISTEN:15432,fork,reuseaddr TCP:db:5432, restart: always"
        ),
        "{plan}"
    );
    assert!(steps[1].starts_with("init 2: wait-for-proxy: tcp 127.0.0.1:15432"), "{plan}");
    assert!(plan.contains("  probe.startup: tcp 127.0.0.1:15432: initial_delay 0s, period 1s, timeout 1s, success_threshold 1, failure_threshold 30"), "{plan}");
    let pod = std::fs::read_to_string(root.join("kubernetes/sidecar.yaml")).unwrap();
    let sidecar = pod.find("- name: db-proxy").unwrap();
    let wait = pod.find("- name: wait-for-proxy").unwrap();
    assert!(
        pod.find("initContainers:").unwrap() < sidecar && sidecar < wait && wait < pod.find("containers:\n").unwrap()
    );
    let own = &pod[sidecar..wait];
    for field in [
        "restartPolicy: Always",
        "args: [\"TCP-LISTEN:15432,fork,reuseaddr\", \"TCP:db:5432\"]",
        "startupProbe:",
        "periodSeconds: 1\n",
        "failureThreshold: 30",
        "livenessProbe:",
    ] {
        assert!(own.contains(field), "the manifest's sidecar lacks {field:?}");
    }
    assert!(pod.contains("terminationGracePeriodSeconds: 30") && plan.contains("grace_period: 30s"));
}
