//! Sidecars (docs/lifecycle.md L30-L33) with podinit as a real PID 1: start
//! order and the startup gate, restart on exit, the stop order on SIGTERM and
//! when the main process ends by itself, SIGKILL for a stubborn sidecar, and
//! readiness. The processes log what happened with times (tests/data/sidecar.py).

mod common;
use common::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(40);

fn script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sidecar.py")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn ready() -> bool {
    if !can_unshare() {
        return false;
    }
    let ok = std::process::Command::new("python3").args(["-c", "pass"]).status().is_ok_and(|s| s.success());
    if !ok {
        skip("python3 is not installed");
    }
    ok
}

/// An `[[init]]` sidecar running tests/data/sidecar.py.
fn sidecar(name: &str, log: &str, extra: &str) -> String {
    format!(
        "[[init]]\nname = \"{name}\"\nexec = [\"python3\", \"{script}\", \"{name}\", \"{log}\"{extra}]\nrestart = \"always\"\n",
        script = script()
    )
}

/// `NAME what` -> time, from the log (the first of each).
fn times(log: &std::path::Path) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [name, what, t] = parts[..] {
            out.entry(format!("{name} {what}")).or_insert(t.parse().unwrap_or(0.0));
        }
    }
    out
}

/// `-c CONFIG -- python3 sidecar.py main LOG`: the main process logs to the same file.
fn args<'a>(config: &'a str, log: &'a str) -> [&'a str; 7] {
    ["-c", config, "--", "python3", script(), "main", log]
}

fn start(config: &str, log: &str) -> Podinit {
    start_pid1(&args(config, log))
}

/// `start`, with the control socket at `dir/pi.sock`, once it answers.
fn start_with_socket(dir: &TempDir, config: &str, log: &str) -> Podinit {
    start_pid1_with_socket(dir, &args(config, log))
}

/// A, B, a wait step that needs B's port, the main process: started in that
/// order, and B's startup probe, failing for its first 2 s, holds the step back.
#[test]
fn sidecars_start_in_order_and_gate_the_next_step() {
    if !ready() {
        return;
    }
    let dir = TempDir::new("sc-order");
    let log = dir.s("log");
    let port = free_port();
    let config = dir.config(&format!(
        "{a}{b}[init.probe.startup]\ntcp = \"127.0.0.1:{port}\"\nperiod = \"200ms\"\nfailure_threshold = 100\n\
         [[init]]\nname = \"wait-for-b\"\ntcp = \"127.0.0.1:{port}\"\ninterval = \"100ms\"\n",
        a = sidecar("a", &log, ""),
        b = sidecar("b", &log, &format!(", \"{port}\", \"2\"")),
    ));
    let p = start(&config, &log);
    wait_for_file(&dir.path("log"), "main start", LIMIT);
    wait_for_file(&dir.path("log"), "a start", LIMIT);
    let out = p.sigterm_and_wait(LIMIT).0;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let err = &out.stderr;
    let at = |what: &str| err.find(what).unwrap_or_else(|| panic!("no {what:?} in {err}"));
    assert!(at("Started: sidecar a") < at("Started: sidecar b"), "{err}");
    assert!(at("sidecar b started in") < at("step 3/3 wait-for-b succeeded"), "{err}");
    assert!(at("step 3/3 wait-for-b succeeded") < at("Started: main process"), "{err}");
    let t = times(&dir.path("log"));
    let held = t["main start"] - t["b start"];
    assert!(held >= 1.9, "the main process started {held:.2}s after b, before b's port was open");
}

/// SIGTERM: the main process's and the sidecars' preStops start together;
/// the main process gets its stop signal after its own preStop; b only after
/// the main process exited; a only after b exited.
#[test]
fn sigterm_stops_main_then_sidecars_in_reverse_order() {
    if !ready() {
        return;
    }
    let dir = TempDir::new("sc-stop");
    let log = dir.s("log");
    let hooks = dir.s("hooks");
    let stamp = |who: &str| format!("exec = [\"sh\", \"-c\", \"echo {who} $(date +%s.%N) >> {hooks}\"]\n");
    let config = dir.config(&format!(
        "grace_period = \"20s\"\n{a}[[init.pre_stop]]\n{sa}{b}[[init.pre_stop]]\n{sb}\
         [[pre_stop]]\n{sm}[[pre_stop]]\nsleep = \"1s\"\n",
        a = sidecar("a", &log, ""),
        sa = stamp("a"),
        b = sidecar("b", &log, ""),
        sb = stamp("b"),
        sm = stamp("main"),
    ));
    let p = start(&config, &log);
    wait_for_file(&dir.path("log"), "main start", LIMIT);
    wait_for_file(&dir.path("log"), "a start", LIMIT);
    let (out, took) = p.sigterm_and_wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let hooks: HashMap<String, f64> = std::fs::read_to_string(dir.path("hooks"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(n, t)| (n.to_string(), t.parse().unwrap())))
        .collect();
    let (hm, ha, hb) = (hooks["main"], hooks["a"], hooks["b"]);
    let spread = hm.max(ha).max(hb) - hm.min(ha).min(hb);
    assert!(spread < 0.5, "preStops did not start together: {hooks:?}");
    let t = times(&dir.path("log"));
    assert!(t["main term"] - hm >= 0.95, "main got its stop signal before its preStop ended: {t:?} {hooks:?}");
    assert!(t["b term"] >= t["main exit"], "b stopped before main exited: {t:?}");
    assert!(t["a term"] >= t["b exit"], "a stopped before b exited: {t:?}");
    assert!(t.contains_key("a start") && !out.stderr.contains("BackOff"), "{}", out.stderr);
}

/// A sidecar killed while the main process runs is restarted with BackOff;
/// the main process goes on; no zombie is left.
#[test]
fn a_killed_sidecar_is_restarted_and_main_never_notices() {
    if !ready() {
        return;
    }
    let dir = TempDir::new("sc-restart");
    let log = dir.s("log");
    let config = dir.config(&format!("[backoff]\ninitial = \"200ms\"\n{}", sidecar("a", &log, "")));
    let p = start(&config, &log);
    wait_for_file(&dir.path("log"), "main start", LIMIT);
    wait_for_file(&dir.path("log"), "a start", LIMIT);
    let first = tree(p.pid).into_iter().find(|(_, _, cmd)| cmd.contains("sidecar.py a")).expect("sidecar a");
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(first.0, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let again = tree(p.pid).into_iter().find(|(pid, _, cmd)| cmd.contains("sidecar.py a") && *pid != first.0);
        if again.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "sidecar a was not restarted: {:?}", tree(p.pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(lasting_zombies(p.pid).is_empty(), "{:?}", tree(p.pid));
    while std::fs::read_to_string(dir.path("log")).unwrap_or_default().matches("a start").count() < 2 {
        assert!(Instant::now() < deadline, "the restarted sidecar never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = p.sigterm_and_wait(LIMIT).0;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("BackOff: sidecar a exited"), "{}", out.stderr);
    let t = std::fs::read_to_string(dir.path("log")).unwrap();
    assert_eq!(t.matches("main start").count(), 1, "the main process was restarted: {t}");
    assert_eq!(t.matches("a start").count(), 2, "{t}");
}

/// A sidecar that ignores SIGTERM gets SIGKILL when the grace period is over
/// (at least 2 s after its stop signal); podinit reports the main process's status.
#[test]
fn a_sidecar_ignoring_sigterm_is_killed_and_main_status_reported() {
    if !ready() {
        return;
    }
    let dir = TempDir::new("sc-stubborn");
    let log = dir.s("log");
    let config = dir.config(&format!("grace_period = \"3s\"\n{}", sidecar("a", &log, ", \"-\", \"0\", \"1\"")));
    let p = start(&config, &log);
    wait_for_file(&dir.path("log"), "main start", LIMIT);
    wait_for_file(&dir.path("log"), "a start", LIMIT);
    let (out, took) = p.sigterm_and_wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(8), "took {took:?}: {}", out.stderr);
    assert!(out.stderr.contains("sending SIGKILL to sidecar a"), "{}", out.stderr);
    let t = times(&dir.path("log"));
    assert!(t.contains_key("a term") && !t.contains_key("a exit"), "{t:?}");
}

/// The main process exits 3 by itself (a Job): the sidecars are stopped in
/// reverse order, each after its own preStop, and podinit exits 3.
#[test]
fn main_exiting_by_itself_stops_sidecars_in_reverse_and_keeps_its_status() {
    if !ready() {
        return;
    }
    let dir = TempDir::new("sc-job");
    let log = dir.s("log");
    let pre =
        |n: &str| format!("[[init.pre_stop]]\nexec = [\"sh\", \"-c\", \"echo {n}-prestop >> {}\"]\n", dir.s("hooks"));
    let config = dir.config(&format!("{}{}{}{}", sidecar("a", &log, ""), pre("a"), sidecar("b", &log, ""), pre("b")));
    let main = format!("until grep -q 'a start' {log} && grep -q 'b start' {log}; do sleep 0.05; done; exit 3");
    let out = run_pid1(&["-c", &config, "--", "sh", "-c", &main], LIMIT);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let t = times(&dir.path("log"));
    assert!(t["b term"] < t["a term"] && t["b exit"] <= t["a term"], "not in reverse order: {t:?}");
    let hooks = std::fs::read_to_string(dir.path("hooks")).unwrap();
    assert_eq!(hooks, "b-prestop\na-prestop\n", "{}", out.stderr);
}

/// A sidecar's failing readiness probe makes the container unready.
#[test]
fn a_sidecar_that_is_not_ready_makes_the_container_unready() {
    if !ready() {
        return;
    }
    let dir = TempDir::new("sc-ready");
    let log = dir.s("log");
    let flag = dir.s("ready-flag");
    let config = dir.config(&format!(
        "{}[init.probe.readiness]\nexec = [\"test\", \"-e\", \"{flag}\"]\nperiod = \"200ms\"\nfailure_threshold = 1\n",
        sidecar("a", &log, "")
    ));
    let sock = dir.s("pi.sock");
    let p = start_with_socket(&dir, &config, &log);
    wait_for_file(&dir.path("log"), "main start", LIMIT);
    wait_for_file(&dir.path("log"), "a start", LIMIT);
    let status = |extra: &[&str]| {
        std::process::Command::new(bin()).arg("status").args(extra).env("PODINIT_SOCKET", &sock).output().unwrap()
    };
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(status(&["--ready"]).status.code(), Some(1), "ready while sidecar a's readiness fails");
    std::fs::write(&flag, "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while status(&["--ready"]).status.code() != Some(0) {
        assert!(Instant::now() < deadline, "never ready: {}", String::from_utf8_lossy(&status(&["--json"]).stdout));
        std::thread::sleep(Duration::from_millis(100));
    }
    let json = String::from_utf8_lossy(&status(&["--json"]).stdout).into_owned();
    assert!(json.contains("\"sidecars\":[{\"name\":\"a\""), "{json}");
    let text = String::from_utf8_lossy(&status(&[]).stdout).into_owned();
    assert!(text.contains("Sidecars:") && text.contains("  a  pid "), "{text}");
    let out = p.sigterm_and_wait(LIMIT).0;
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// A sidecar that never starts holds the next step, as Kubernetes does;
/// with the step's `timeout` it fails the container (exit 1) and nothing
/// after it runs.
#[test]
fn a_sidecar_that_never_starts_fails_at_its_timeout() {
    if !ready() {
        return;
    }
    let dir = TempDir::new("sc-never");
    let log = dir.s("log");
    let config = dir.config(&format!(
        "{}timeout = \"1500ms\"\n[init.probe.startup]\nexec = [\"false\"]\nperiod = \"200ms\"\nfailure_threshold = 1000\n",
        sidecar("a", &log, "")
    ));
    let out = run_pid1(&["-c", &config, "--", "sh", "-c", &format!("echo main >> {log}")], LIMIT);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("InitStepFailed: step 1/1 sidecar a did not start within"), "{}", out.stderr);
    assert!(out.elapsed >= Duration::from_millis(1400), "{:?}", out.elapsed);
    let t = std::fs::read_to_string(dir.path("log")).unwrap_or_default();
    assert!(!t.contains("main"), "the main process ran: {t}");
}

/// SIGTERM while a step after a sidecar still waits: the step is stopped,
/// then the sidecar; nothing more starts; exit 143.
#[test]
fn sigterm_during_init_steps_stops_the_step_then_the_sidecars() {
    if !ready() {
        return;
    }
    let dir = TempDir::new("sc-init-stop");
    let log = dir.s("log");
    let config = dir.config(&format!(
        "{}[[init]]\nname = \"never\"\ntcp = \"127.0.0.1:{}\"\ninterval = \"100ms\"\n",
        sidecar("a", &log, ""),
        free_port()
    ));
    let p = start(&config, &log);
    wait_for_file(&dir.path("log"), "a start", LIMIT);
    let (out, took) = p.sigterm_and_wait(LIMIT);
    assert_eq!(out.code, 143, "{}", out.stderr);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let t = times(&dir.path("log"));
    assert!(t.contains_key("a term") && !t.contains_key("main start"), "{t:?}");
}

/// A sidecar's liveness failure: its own preStop, its stop signal, then a
/// restart; the main process never notices.
#[test]
fn a_sidecar_liveness_failure_restarts_it_after_its_own_pre_stop() {
    if !ready() {
        return;
    }
    let dir = TempDir::new("sc-live");
    let log = dir.s("log");
    let flag = dir.s("alive");
    std::fs::write(&flag, "").unwrap();
    let config = dir.config(&format!(
        "[backoff]\ninitial = \"200ms\"\n{}[init.probe.liveness]\nexec = [\"test\", \"-e\", \"{flag}\"]\n\
         period = \"200ms\"\nfailure_threshold = 1\n[[init.pre_stop]]\nexec = [\"sh\", \"-c\", \"echo a prestop 0 >> {log}\"]\n",
        sidecar("a", &log, "")
    ));
    let p = start(&config, &log);
    wait_for_file(&dir.path("log"), "main start", LIMIT);
    wait_for_file(&dir.path("log"), "a start", LIMIT);
    std::fs::remove_file(&flag).unwrap();
    wait_for_file(&dir.path("log"), "a prestop", LIMIT);
    std::fs::write(&flag, "").unwrap(); // the restarted sidecar is alive again
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(dir.path("log")).unwrap_or_default().matches("a start").count() < 2 {
        assert!(Instant::now() < deadline, "not restarted: {}", std::fs::read_to_string(dir.path("log")).unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = p.sigterm_and_wait(LIMIT).0;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = std::fs::read_to_string(dir.path("log")).unwrap();
    let order: Vec<&str> =
        text.lines().filter(|l| l.starts_with("a ")).map(|l| l.split(' ').nth(1).unwrap_or("")).collect();
    assert_eq!(&order[..4], ["start", "prestop", "term", "exit"], "{text}");
    assert_eq!(text.matches("main start").count(), 1, "{text}");
    assert!(out.stderr.contains("sidecar a: liveness probe failed"), "{}", out.stderr);
}

/// `podinit pre-stop` (the kubelet's exec hook) returns when the main
/// process's preStop has finished, and exits 1 when a sidecar's preStop that
/// finished by then failed.
#[test]
fn pre_stop_hook_reports_a_failed_sidecar_pre_stop() {
    if !ready() {
        return;
    }
    let dir = TempDir::new("sc-hook");
    let log = dir.s("log");
    let config = dir.config(&format!(
        "{}[[init.pre_stop]]\nname = \"flush\"\nexec = [\"false\"]\n[[pre_stop]]\nsleep = \"1s\"\n",
        sidecar("a", &log, "")
    ));
    let p = start_with_socket(&dir, &config, &log);
    wait_for_file(&dir.path("log"), "main start", LIMIT);
    wait_for_file(&dir.path("log"), "a start", LIMIT);
    let hook =
        std::process::Command::new(bin()).arg("pre-stop").env("PODINIT_SOCKET", dir.s("pi.sock")).output().unwrap();
    let err = String::from_utf8_lossy(&hook.stderr);
    assert_eq!(hook.status.code(), Some(1), "{err}");
    assert!(err.contains("sidecar a: flush"), "{err}");
    let out = p.sigterm_and_wait(LIMIT).0;
    assert_eq!(out.code, 0, "{}", out.stderr);
}
