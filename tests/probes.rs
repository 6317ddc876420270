//! Probes and restarts with podinit as a real PID 1 and short periods.

mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(40);

fn status_code(dir: &TempDir, flag: &str) -> i32 {
    Command::new(bin())
        .args(["status", flag])
        .env("PODINIT_SOCKET", dir.s("pi.sock"))
        .output()
        .unwrap()
        .status
        .code()
        .unwrap()
}

fn status_json(dir: &TempDir) -> serde_json::Value {
    let out = Command::new(bin()).args(["status", "--json"]).env("PODINIT_SOCKET", dir.s("pi.sock")).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Polls `cond` for up to `limit`.
fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn app() -> &'static str {
    "trap 'exit 0' TERM; while :; do sleep 0.02; done"
}

#[test]
fn liveness_failures_restart_the_main_process_and_post_start_runs_again() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("liveness");
    let (sick, log) = (dir.s("sick"), dir.s("post-start.log"));
    let cfg = dir.config(&format!(
            "restart = \"always\"\n[backoff]\ninitial = \"200ms\"\n\
             [[post_start]]\nexec = [\"sh\", \"-c\", \"echo run >> {log}\"]\n\
             [probe.liveness]\nexec = [\"sh\", \"-c\", \"test ! -e {sick}\"]\nperiod = \"100ms\"\nfailure_threshold = 3\n"
        ),
    );
    let p = start_pid1_with_socket(&dir, &["-c", &cfg, "--", "sh", "-c", app()]);
    wait_for_file(&dir.path("post-start.log"), "run", LIMIT);
    let first_pid = status_json(&dir)["main_pid"].as_i64().unwrap();
    std::fs::write(&sick, "").unwrap();
    eventually(Duration::from_secs(10), "a restart", || status_json(&dir)["restarts"].as_i64() >= Some(1));
    std::fs::remove_file(&sick).unwrap();
    eventually(Duration::from_secs(10), "postStart again", || {
        std::fs::read_to_string(&log).unwrap_or_default().lines().count() >= 2
    });
    eventually(Duration::from_secs(10), "running again", || status_json(&dir)["phase"] == "Running");
    let s = status_json(&dir);
    assert_ne!(s["main_pid"].as_i64().unwrap(), first_pid, "the main process was not restarted: {s}");
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("Unhealthy: liveness probe failed"), "{}", out.stderr);
    assert!(out.stderr.contains("liveness probe failed 3 times in a row"), "{}", out.stderr);
    assert!(out.stderr.contains("BackOff: main process exited"), "{}", out.stderr);
}

#[test]
fn readiness_flips_status_ready_both_ways() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("readiness");
    let ok = dir.s("ok");
    let cfg = dir.config(&format!(
        "[probe.readiness]\nexec = [\"test\", \"-e\", \"{ok}\"]\nperiod = \"100ms\"\nfailure_threshold = 2\n"
    ));
    let p = start_pid1_with_socket(&dir, &["-c", &cfg, "--", "sh", "-c", app()]);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(status_code(&dir, "--ready"), 1, "ready before the probe passed (L9: readiness starts as failure)");
    assert_eq!(status_code(&dir, "--live"), 0);
    std::fs::write(&ok, "").unwrap();
    eventually(Duration::from_secs(5), "ready", || status_code(&dir, "--ready") == 0);
    std::fs::remove_file(&ok).unwrap();
    eventually(Duration::from_secs(5), "unready", || status_code(&dir, "--ready") == 1);
    assert_eq!(status_json(&dir)["phase"], "Running", "readiness must not stop the container");
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait(LIMIT).code, 0);
}

#[test]
fn startup_probe_gates_liveness() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("startup");
    let started = dir.s("started");
    // Liveness always fails: it must not run (and kill) before startup has passed.
    let cfg = dir.config(&format!(
        "[probe.startup]\nexec = [\"test\", \"-e\", \"{started}\"]\nperiod = \"100ms\"\nfailure_threshold = 100\n\
             [probe.liveness]\nexec = [\"false\"]\nperiod = \"100ms\"\nfailure_threshold = 1\n"
    ));
    let p = start_pid1_with_socket(
        &dir,
        &["-c", &cfg, "--", "sh", "-c", "trap 'exit 9' TERM; while :; do sleep 0.02; done"],
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(status_json(&dir)["phase"], "Running", "liveness ran before startup passed");
    assert_eq!(status_code(&dir, "--ready"), 1, "ready before startup passed");
    std::fs::write(&started, "").unwrap();
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 9, "restart = never: podinit ends with the main process's status: {}", out.stderr);
    assert!(out.stderr.contains("startup probe succeeded"), "{}", out.stderr);
    // The stop came from the liveness probe, through the stop sequence.
    let unhealthy =
        out.stderr.find("podinit: Unhealthy: liveness probe failed").unwrap_or_else(|| panic!("{}", out.stderr));
    let killing = out.stderr.find("podinit: Killing: sent SIGTERM").unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(unhealthy < killing, "{}", out.stderr);
}

#[test]
fn a_failing_startup_probe_kills_the_container() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("startup-fail");
    let cfg = dir.config(
        "[probe.startup]\nexec = [\"sh\", \"-c\", \"echo cache not warm; echo 12% >&2; exit 1\"]\nperiod = \"100ms\"\nfailure_threshold = 3\n",
    );
    let out = run_pid1(&["-c", &cfg, "--", "sh", "-c", "trap 'exit 8' TERM; while :; do sleep 0.02; done"], LIMIT);
    assert_eq!(out.code, 8, "{}", out.stderr);
    assert!(out.stderr.contains("startup probe failed 3 times in a row"), "{}", out.stderr);
    // The event quotes the probe's output (stdout and stderr), as the kubelet's does.
    let unhealthy: Vec<&str> =
        out.stderr.lines().filter(|l| l.starts_with("podinit: Unhealthy: startup probe failed")).collect();
    assert_eq!(unhealthy.len(), 3, "{}", out.stderr);
    assert!(unhealthy.iter().all(|l| l.ends_with("exit code 1: cache not warm 12%")), "{}", out.stderr);
    assert!(!out.stdout.contains("cache not warm"), "probe output went to stdout: {}", out.stdout);
}

#[test]
fn thresholds_need_consecutive_failures() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("threshold");
    let count = dir.s("count");
    // Fails twice, passes once, over and over: never 3 failures in a row.
    let probe = format!("n=$(cat {count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {count}; [ $((n % 3)) -eq 0 ]");
    let cfg = dir.config(&format!(
        "[probe.liveness]\nexec = [\"sh\", \"-c\", \"{probe}\"]\nperiod = \"50ms\"\nfailure_threshold = 3\n"
    ));
    let p = start_pid1_with_socket(&dir, &["-c", &cfg, "--", "sh", "-c", app()]);
    eventually(Duration::from_secs(10), "20 probe runs", || {
        std::fs::read_to_string(&count).ok().and_then(|c| c.trim().parse::<u32>().ok()).unwrap_or(0) >= 20
    });
    assert_eq!(status_json(&dir)["phase"], "Running", "killed without 3 consecutive failures");
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 0);
    assert!(!out.stderr.contains("times in a row"), "{}", out.stderr);
}

#[test]
fn back_off_grows_and_caps_and_sigterm_ends_it_at_once() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("backoff");
    let starts = dir.s("starts");
    let cfg = dir.config("restart = \"on-failure\"\n[backoff]\ninitial = \"300ms\"\nmax = \"600ms\"\nreset = \"1m\"\n");
    let script = format!("date +%s.%N >> {starts}; exit 3");
    let p = start_pid1_with_socket(&dir, &["-c", &cfg, "--", "sh", "-c", &script]);
    eventually(Duration::from_secs(15), "5 starts", || {
        std::fs::read_to_string(&starts).unwrap_or_default().lines().count() >= 5
    });
    let times: Vec<f64> = std::fs::read_to_string(&starts).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Immediate, 300 ms, 600 ms, 600 ms (capped).
    assert!(gaps[0] < 0.25, "first restart not immediate: {gaps:?}");
    assert!((0.28..0.55).contains(&gaps[1]), "second back-off: {gaps:?}");
    assert!((0.58..0.9).contains(&gaps[2]), "third back-off: {gaps:?}");
    assert!((0.58..0.9).contains(&gaps[3]), "the cap did not hold: {gaps:?}");
    assert_eq!(status_json(&dir)["phase"], "Pending");
    let (out, took) = p.sigterm_and_wait(LIMIT);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(took < Duration::from_millis(500), "{:?}", took);
    assert!(out.stderr.contains("BackOff") && out.stderr.contains("restart 3 in 0.6s"), "{}", out.stderr);
}

/// A probe command that hangs is killed at its timeout and reaped: with
/// podinit as PID 1, after several timed-out runs at most the current run's
/// `sleep` is alive below podinit, and nothing is a zombie.
#[test]
fn a_hanging_probe_is_killed_at_its_timeout_and_reaped() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("hang");
    let runs = dir.s("runs");
    let cfg = dir.config(&format!(
            "[probe.liveness]\nexec = [\"sh\", \"-c\", \"echo run >> {runs}; exec sleep 100\"]\ntimeout = \"200ms\"\nperiod = \"300ms\"\nfailure_threshold = 100\n"
        ),
    );
    let p = start_pid1(&["-c", &cfg, "--", "sh", "-c", app()]);
    eventually(Duration::from_secs(10), "4 probe runs", || {
        std::fs::read_to_string(&runs).unwrap_or_default().lines().count() >= 4
    });
    let below = tree(p.pid);
    assert!(below.iter().any(|(_, _, cmd)| cmd.starts_with("sh -c trap")), "the main process is not in {below:?}");
    let sleeping = below.iter().filter(|(_, _, cmd)| cmd == "sleep 100").count();
    assert!(sleeping <= 1, "timed-out probes still alive: {below:?}");
    let zombies = lasting_zombies(p.pid);
    assert!(zombies.is_empty(), "zombies under podinit: {zombies:?}");
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("timed out, killed"), "{}", out.stderr);
}

#[test]
fn bad_probe_configs_are_refused_at_load() {
    let dir = TempDir::new("badprobe");
    let cases = [
        ("[probe.liveness]\ndns = \"x\"\n", "`dns` is not allowed in probe"),
        ("[probe.liveness]\nsleep = 1\n", "`sleep` is not allowed in probe"),
        (
            "[probe.readiness]\neureka = { url = \"http://e/eureka\", app = \"a\", instance = \"i\" }\n",
            "`eureka` is not allowed",
        ),
        ("[probe.startup]\nexec = [\"true\"]\nsuccess_threshold = 2\n", "success_threshold must be 1"),
        ("[probe.readiness]\nexec = [\"true\"]\nperiod = \"0s\"\n", "period must be more than 0s"),
        ("[probe.readiness]\nhttp = { url = \"localhost:8080/health\" }\n", "not a URL"),
        ("[probe.liveness]\nhttp = { url = \"http://[::1/health\" }\n", "is not a host[:port]"),
        ("[probe.liveness]\nhttp = { url = \"http://localhost:0/health\" }\n", "is not a host[:port]"),
    ];
    for (text, want) in cases {
        let cfg = dir.config(text);
        let out = Command::new(bin()).args(["-c", &cfg, "--", "true"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(want) && err.contains(&cfg), "{text}: {err}");
    }
}
