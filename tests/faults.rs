//! The fault suite (issue 8, "Reliability under faults, load and hostile
//! input"): registries that answer garbage, hooks that fork daemons, flood
//! stdout or ignore SIGTERM, a main process that exits or is stopped during
//! postStart, signal storms, ten thousand orphans, a full pids cgroup,
//! argv and environment that are not what podinit expects, a crowded control
//! socket, and credentials that must appear in no output.
//!
//! Every case runs the real binary as PID 1 (`unshare`) and checks real
//! outcomes: exit status, event lines, zombies, and timings with generous
//! bounds (the machine may be a loaded 2-core one). Cases already covered
//! elsewhere (a registry that accepts and never answers: stop.rs; a 1 MiB or
//! silent control client: control.rs) are not repeated.

mod common;
use common::http::{closed_port, Server};
use common::*;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(40);

/// A main process that writes `ready` and exits with `code` on SIGTERM.
fn app(dir: &TempDir, code: i32) -> String {
    format!("trap 'exit {code}' TERM; touch {ready}; while :; do sleep 0.02; done", ready = dir.s("ready"))
}

/// podinit never panicked: no exit 101, no panic message.
fn no_panic(what: &str, code: i32, stderr: &str) {
    assert_ne!(code, 101, "{what}: podinit panicked: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: podinit panicked: {stderr}");
}

/// SIGTERM to podinit, as `docker stop` sends it; returns podinit's outcome
/// and how long the stop took, after checking that podinit did not panic.
fn sigterm(p: Podinit, what: &str) -> (Outcome, Duration) {
    let (out, took) = p.sigterm_and_wait(LIMIT);
    no_panic(what, out.code, &out.stderr);
    (out, took)
}

/// The event lines of one reason.
fn events<'a>(stderr: &'a str, reason: &str) -> Vec<&'a str> {
    let tag = format!("podinit: {reason}:");
    stderr.lines().filter(|l| l.starts_with(&tag)).collect()
}

/// Whether `tool` is installed; records a skip when not.
fn have(tool: &str) -> bool {
    let ok = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success());
    if !ok {
        skip(&format!("{tool} is not installed"));
    }
    ok
}

/// Runs a podinit verb as a client against the socket at `sock`.
fn verb(sock: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).env("PODINIT_SOCKET", sock).env_remove("PODINIT_LOG").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `podinit status --json`, timed; panics unless it answers.
fn status(sock: &str) -> (serde_json::Value, Duration) {
    let started = Instant::now();
    let (code, out, err) = verb(sock, &["status", "--json"]);
    assert_eq!(code, 0, "status failed: {err}");
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("status is not JSON ({e}): {out}"));
    (v, started.elapsed())
}

/// Polls `status` until `phase` shows, within `limit`.
fn wait_for_phase(sock: &str, phase: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let (s, _) = status(sock);
        if s["phase"] == phase {
            return;
        }
        assert!(Instant::now() < deadline, "phase never became {phase}: {s}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TCP server on 127.0.0.1 that hands every connection to `serve` on its own thread.
fn raw_server(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let serve = serve.clone();
            std::thread::spawn(move || serve(stream));
        }
    });
    port
}

/// Reads an HTTP request's head (bounded), so a later close does not reset it.
fn read_head(stream: &mut TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
}

/// A registry answering bytes that are not HTTP (a status line of binary
/// junk with terminal escapes, or an endless line without a newline) fails
/// its preStop action with one event line that names the action and holds no
/// raw control bytes; the rest of preStop still runs, the stop goes on within
/// the action's timeout, and podinit exits with the main process's status.
#[test]
fn a_registry_answering_garbage_fails_one_action_and_the_stop_goes_on() {
    if !can_unshare() {
        return;
    }
    let junk = raw_server(|mut s| {
        read_head(&mut s);
        let _ = s.write_all(b"\x1b[2J\x00\xff\xfeSSH-2.0-OpenSSH\x07 \x1b]0;pwned\x07\r\n");
        let _ = s.shutdown(std::net::Shutdown::Write);
        std::thread::sleep(Duration::from_secs(1));
    });
    let endless = raw_server(|mut s| {
        read_head(&mut s);
        let chunk = [b'A'; 4096];
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until && s.write_all(&chunk).is_ok() {}
    });
    for (port, want) in [(junk, "not an HTTP answer"), (endless, "not an HTTP answer: \"AAAA")] {
        let dir = TempDir::new("garbage");
        let cfg = dir.config(&format!(
            "grace_period = \"30s\"\n\
             [[pre_stop]]\nname = \"deregister\"\neureka = {{ url = \"http://127.0.0.1:{port}/eureka\", app = \"a\", instance = \"i\" }}\ntimeout = \"2s\"\n\
             [[pre_stop]]\nexec = [\"touch\", \"{}\"]\n",
            dir.s("went-on")
        ));
        let p = start_pid1(&["-c", &cfg, "--", "sh", "-c", &app(&dir, 7)]);
        wait_for_file(&dir.path("ready"), "", LIMIT);
        let (out, took) = sigterm(p, "garbage registry");
        assert_eq!(out.code, 7, "{}", out.stderr);
        assert!(took < Duration::from_secs(2 + 5), "the stop took {took:?}");
        let failed = events(&out.stderr, "FailedPreStopHook");
        assert_eq!(failed.len(), 1, "{}", out.stderr);
        assert!(failed[0].starts_with("podinit: FailedPreStopHook: deregister: eureka PUT"), "{}", failed[0]);
        assert!(failed[0].contains(want), "{want}: {}", failed[0]);
        assert!(failed[0].len() < 600, "an endless answer made an endless event line: {} bytes", failed[0].len());
        assert!(
            !out.stderr.bytes().any(|b| b != b'\n' && b.is_ascii_control()),
            "raw control bytes reached stderr: {:?}",
            out.stderr
        );
        assert!(out.stderr.lines().all(|l| l.starts_with("podinit: ")), "{}", out.stderr);
        assert!(dir.path("went-on").exists(), "the rest of preStop did not run");
        assert!(out.stderr.contains("PreStopFinished: finished after"), "{}", out.stderr);
    }
}

/// Eureka failover when the first server hangs (accepts the connection and
/// never answers, like a host that went away behind a load balancer): the
/// hang must not use up the whole timeout, the next server gets its PUT.
#[test]
fn a_hanging_first_registry_still_leaves_time_for_the_next() {
    if !can_unshare() {
        return;
    }
    let hang = raw_server(|s| {
        std::thread::sleep(Duration::from_secs(30));
        drop(s);
    });
    let good = Server::start(|_, _| 200);
    let dir = TempDir::new("failover");
    let cfg = dir.config(&format!(
        "grace_period = \"30s\"\n[[pre_stop]]\nname = \"deregister\"\n\
         eureka = {{ urls = [\"http://127.0.0.1:{hang}/eureka\", \"http://127.0.0.1:{}/eureka\"], app = \"a\", instance = \"i\" }}\ntimeout = \"4s\"\n",
        good.port
    ));
    let p = start_pid1(&["-c", &cfg, "--", "sh", "-c", &app(&dir, 7)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let (out, took) = sigterm(p, "hanging registry");
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert_eq!(good.requests().len(), 1, "the second registry was never tried: {}", out.stderr);
    assert!(events(&out.stderr, "FailedPreStopHook").is_empty(), "{}", out.stderr);
    assert!(took < Duration::from_secs(4 + 5), "the stop took {took:?}");
}

/// postStart and preStop exec hooks that start daemons (one in the hook's
/// process group, one in a session of its own) and exit: the hook counts as
/// finished when its own process exits, so postStart ends promptly and the
/// stop does not wait for the daemons; the daemons get SIGTERM (not a
/// SIGKILL at the deadline) once the main process is gone, and podinit exits
/// with the main process's status long before the grace period ends.
#[test]
fn hooks_that_leave_daemons_behind_hold_nothing() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("daemons");
    let daemon = |tag: &str| {
        format!(
            "sleep 1000 & setsid sh -c 'trap \\\"echo {tag} >> {log}; exit 0\\\" TERM; touch {up}; while :; do sleep 0.05; done' & \
             while [ ! -e {up} ]; do sleep 0.01; done; exit 0",
            log = dir.s("term-log"),
            up = dir.s(&format!("{tag}-up"))
        )
    };
    let cfg = dir.config(&format!(
        "grace_period = \"20s\"\n[[post_start]]\nexec = [\"sh\", \"-c\", \"{}\"]\n[[pre_stop]]\nexec = [\"sh\", \"-c\", \"{}\"]\n",
        daemon("post-start"),
        daemon("pre-stop")
    ));
    let p = start_pid1_with_socket(&dir, &["-c", &cfg, "--", "sh", "-c", &app(&dir, 7)]);
    let sock = dir.s("pi.sock");
    wait_for_file(&dir.path("post-start-up"), "", LIMIT);
    wait_for_phase(&sock, "Running", Duration::from_secs(5));
    let (out, took) = sigterm(p, "daemons");
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(took < Duration::from_secs(5), "the daemons held the stop for {took:?} (grace 20s)");
    assert!(dir.path("pre-stop-up").exists(), "the preStop hook never ran");
    assert!(!out.stderr.contains("grace period over"), "a daemon needed SIGKILL: {}", out.stderr);
    let log = std::fs::read_to_string(dir.path("term-log")).unwrap_or_default();
    assert!(log.contains("post-start") && log.contains("pre-stop"), "daemons did not get SIGTERM: {log:?}");
    assert!(out.stderr.contains("left after the main process with SIGTERM"), "{}", out.stderr);
}

/// Probes that misbehave: a liveness probe that leaves a daemon in its group
/// and one in a session of its own; a readiness probe that writes without end
/// (`yes`), ignores SIGTERM and outlives its timeout. podinit reads and drops probe
/// output (quoting at most 1 KiB, on one line, in the event), kills the hung
/// probe's group at the timeout and the first daemon with its probe's group,
/// reaps all of it, keeps answering, and stops with the main process's status.
#[test]
fn probes_that_flood_fork_daemons_or_ignore_sigterm_hold_nothing() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("bad-probes");
    let cfg = dir.config(
        "grace_period = \"10s\"\n\
         [probe.liveness]\nexec = [\"sh\", \"-c\", \"sleep 1000 & setsid sleep 1001 & sleep 0.1; echo alive\"]\nperiod = \"300ms\"\n\
         [probe.readiness]\nexec = [\"sh\", \"-c\", \"trap '' TERM; exec yes xxxx\"]\ntimeout = \"500ms\"\nperiod = \"300ms\"\n",
    );
    let p = start_pid1_with_socket(&dir, &["-c", &cfg, "--", "sh", "-c", &app(&dir, 7)]);
    let sock = dir.s("pi.sock");
    wait_for_file(&dir.path("ready"), "", LIMIT);
    std::thread::sleep(Duration::from_millis(2500));
    let (s, took) = status(&sock);
    assert!(took < Duration::from_secs(2), "status took {took:?} while probes flooded");
    assert_eq!(
        (s["phase"].as_str(), s["live"].as_bool(), s["ready"].as_bool()),
        (Some("Running"), Some(true), Some(false)),
        "{s}"
    );
    assert_eq!(s["restarts"], 0, "{s}");
    let below = tree(p.pid);
    let count = |cmd: &str| below.iter().filter(|(_, _, c)| c == cmd).count();
    assert!(count("yes xxxx") <= 1, "endless readiness probes left: {below:?}");
    assert!(count("sleep 1000") <= 1, "daemons in their probe's group outlived it: {below:?}");
    assert!(count("sleep 1001") >= 3, "the setsid daemons should live on, as under the kubelet: {below:?}");
    let zombies = lasting_zombies(p.pid);
    assert!(zombies.is_empty(), "zombies under podinit: {zombies:?}");
    let (out, took) = sigterm(p, "bad probes");
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(took < Duration::from_secs(5), "{took:?}");
    let unhealthy: Vec<&str> = events(&out.stderr, "Unhealthy");
    assert!(!unhealthy.is_empty(), "{}", out.stderr);
    for line in &unhealthy {
        assert!(line.contains("readiness probe failed") && line.contains("timed out, killed: xxxx"), "{line}");
        assert!(line.len() < 1500, "the event quotes too much: {} bytes", line.len());
    }
    assert!(!out.stdout.contains("xxxx"), "probe output reached podinit's stdout");
    assert!(out.stderr.contains("left after the main process with SIGTERM"), "{}", out.stderr);
}

/// Hooks that write 50 MB each to stdout: podinit does not buffer or pipe
/// hook output, so it stays responsive while a hook is blocked on a full
/// stdout, and once the reader drains it, postStart and preStop complete and
/// podinit exits with the main process's status.
#[test]
fn hooks_flooding_stdout_never_block_podinit() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("flood");
    let flood = "head -c 50000000 /dev/zero";
    let cfg = dir.config(&format!(
        "[[post_start]]\nexec = [\"sh\", \"-c\", \"{flood}\"]\n[[pre_stop]]\nexec = [\"sh\", \"-c\", \"{flood}\"]\n"
    ));
    let mut p = start_pid1_with_socket(&dir, &["-c", &cfg, "--", "sh", "-c", &app(&dir, 7)]);
    let sock = dir.s("pi.sock");
    let mut stdout = p.take_stdout().unwrap();
    let drain = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (drain, total) = (drain.clone(), total.clone());
        std::thread::spawn(move || {
            while !drain.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                total.fetch_add(n, Ordering::SeqCst);
            }
        })
    };
    // The hook is stuck on a full pipe: podinit answers anyway, and waits for it.
    wait_for_file(&dir.path("ready"), "", LIMIT);
    std::thread::sleep(Duration::from_millis(500));
    let (s, took) = status(&sock);
    assert_eq!(s["phase"], "Pending", "postStart cannot have finished: {s}");
    assert!(took < Duration::from_secs(3), "status took {took:?} while a hook flooded stdout");
    drain.store(true, Ordering::SeqCst);
    wait_for_phase(&sock, "Running", Duration::from_secs(20));
    let (out, _) = sigterm(p, "flood");
    reader.join().unwrap();
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(events(&out.stderr, "FailedPreStopHook").is_empty(), "{}", out.stderr);
    assert!(events(&out.stderr, "FailedPostStartHook").is_empty(), "{}", out.stderr);
    assert_eq!(total.load(Ordering::SeqCst), 100_000_000, "both hooks' output, all of it");
}

/// preStop hooks that ignore SIGTERM and hang: one with a `timeout` is
/// killed (its whole group) and reaped at the timeout, reported as a failed
/// preStop action, and the rest of preStop runs; one without is abandoned at
/// the grace deadline. No zombie is left under podinit while the stop goes
/// on, and podinit exits with the main process's status.
#[test]
fn hooks_ignoring_sigterm_are_killed_and_reaped() {
    if !can_unshare() {
        return;
    }
    // With a timeout: killed at 1 s; the next action (a 1.5 s sleep) leaves time to look for zombies.
    let dir = TempDir::new("stubborn");
    let hook = format!("trap '' TERM; touch {}; sleep 1000", dir.s("hook-up"));
    let cfg = dir.config(&format!(
        "grace_period = \"30s\"\n[[pre_stop]]\nname = \"stubborn\"\nexec = [\"sh\", \"-c\", \"{hook}\"]\ntimeout = \"1s\"\n\
         [[pre_stop]]\nsleep = \"1500ms\"\n"
    ));
    let p = start_pid1(&["-c", &cfg, "--", "sh", "-c", &app(&dir, 7)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let sent = Instant::now();
    p.signal(libc::SIGTERM);
    wait_for_file(&dir.path("hook-up"), "", LIMIT);
    // The hook's shell runs `sleep` just after the touch: look until it shows.
    let deadline = Instant::now() + Duration::from_millis(500);
    while !tree(p.pid).iter().any(|(_, _, cmd)| cmd == "sleep 1000") {
        assert!(Instant::now() < deadline, "the hook's sleep is not running");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(1800).saturating_sub(sent.elapsed()));
    let left = tree(p.pid);
    assert!(!left.iter().any(|(_, _, cmd)| cmd == "sleep 1000" || cmd.contains("hook-up")), "hook left: {left:?}");
    let zombies = lasting_zombies(p.pid);
    assert!(zombies.is_empty(), "zombies under podinit: {zombies:?}");
    let out = p.wait(LIMIT);
    let took = sent.elapsed();
    no_panic("stubborn hook", out.code, &out.stderr);
    assert_eq!(out.code, 7, "{}", out.stderr);
    let failed = events(&out.stderr, "FailedPreStopHook");
    assert_eq!(failed.len(), 1, "{}", out.stderr);
    assert!(failed[0].contains("stubborn") && failed[0].contains("timed out, killed"), "{}", failed[0]);
    assert!(took >= Duration::from_millis(2400) && took < Duration::from_secs(2 + 5), "{took:?}");

    // Without a timeout: abandoned at the 2 s grace deadline; the main process still stops by SIGTERM.
    let dir = TempDir::new("stubborn-grace");
    let cfg = dir.config(
        "grace_period = \"2s\"\n[[pre_stop]]\nname = \"stubborn\"\nexec = [\"sh\", \"-c\", \"trap '' TERM; sleep 1000\"]\n",
    );
    let p = start_pid1(&["-c", &cfg, "--", "sh", "-c", &app(&dir, 7)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let (out, took) = sigterm(p, "stubborn hook, no timeout");
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(took >= Duration::from_millis(1900) && took < Duration::from_secs(2 + 5), "{took:?}");
    assert!(out.stderr.contains("abandoned"), "{}", out.stderr);
}

/// The main process exits (code 7) while a postStart hook still runs (an exec
/// that would sleep 1000 s, and one that ignores SIGTERM): podinit stops the
/// hook and exits 7 promptly, SIGKILLing the stubborn one at the grace deadline.
#[test]
fn main_exiting_during_post_start_ends_podinit_with_its_status() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("exit-in-poststart");
    let cfg = dir.config(&format!(
        "grace_period = \"30s\"\n[[post_start]]\nexec = [\"sh\", \"-c\", \"touch {}; exec sleep 1000\"]\n",
        dir.s("hook-up")
    ));
    let script = format!("while [ ! -e {} ]; do sleep 0.01; done; exit 7", dir.s("hook-up"));
    let out = run_pid1(&["-c", &cfg, "--", "sh", "-c", &script], LIMIT);
    no_panic("exit during postStart", out.code, &out.stderr);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.elapsed < Duration::from_secs(5), "took {:?} with a grace period of 30s", out.elapsed);

    // The main process exits once the hook ignores SIGTERM.
    let cfg = dir.config(&format!(
        "grace_period = \"2s\"\n[[post_start]]\nexec = [\"sh\", \"-c\", \"trap '' TERM; touch {}; sleep 1000\"]\n",
        dir.s("stubborn-up")
    ));
    let script = format!("while [ ! -e {} ]; do sleep 0.01; done; exit 7", dir.s("stubborn-up"));
    let out = run_pid1(&["-c", &cfg, "--", "sh", "-c", &script], LIMIT);
    no_panic("exit during a stubborn postStart", out.code, &out.stderr);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(
        out.elapsed >= Duration::from_millis(1900) && out.elapsed < Duration::from_secs(2 + 5),
        "{:?}",
        out.elapsed
    );
    assert!(out.stderr.contains("SIGKILL"), "{}", out.stderr);
}

/// SIGTERM while postStart still runs: the hook is stopped, preStop runs
/// (once), the stop signal reaches the main process, and podinit exits with
/// its status: 143 for a main process that dies of SIGTERM.
#[test]
fn sigterm_during_post_start_runs_pre_stop_and_stops() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("term-in-poststart");
    let cfg = dir.config(&format!(
        "grace_period = \"20s\"\n[[post_start]]\nexec = [\"sh\", \"-c\", \"touch {}; exec sleep 1000\"]\n[[pre_stop]]\nexec = [\"touch\", \"{}\"]\n",
        dir.s("hook-up"),
        dir.s("pre-stop-ran")
    ));
    let main = format!("touch {}; exec sleep 1000", dir.s("ready"));
    let p = start_pid1_with_socket(&dir, &["-c", &cfg, "--", "sh", "-c", &main]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    wait_for_file(&dir.path("hook-up"), "", LIMIT);
    let (s, _) = status(&dir.s("pi.sock"));
    assert_eq!(s["phase"], "Pending", "{s}");
    let (out, took) = sigterm(p, "SIGTERM during postStart");
    assert_eq!(out.code, 143, "{}", out.stderr);
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(dir.path("pre-stop-ran").exists(), "preStop did not run");
    assert_eq!(events(&out.stderr, "PreStopStarted").len(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("Killing: sent SIGTERM to main process"), "{}", out.stderr);
    assert!(!out.stderr.contains("grace period over"), "{}", out.stderr);
}

/// A signal storm: 1,500 signals a second for 10 s (SIGUSR1, SIGUSR2,
/// SIGWINCH, stray SIGCHLDs) at podinit. podinit survives, keeps answering
/// its control socket, keeps forwarding (standard signals coalesce, so not
/// every one arrives, but many must), and SIGTERM afterwards still stops the
/// main process with its own status.
const STORM: Duration = Duration::from_secs(10);

#[test]
fn a_signal_storm_is_survived_and_forwarded() {
    if !can_unshare() || !have("python3") {
        return;
    }
    let dir = TempDir::new("storm");
    let script = format!(
        "import os, signal\n\
         n = {{signal.SIGUSR1: 0, signal.SIGUSR2: 0}}\n\
         def count(sig, _): n[sig] += 1\n\
         def term(_, __):\n    open({counts:?}, 'w').write('%d %d' % (n[signal.SIGUSR1], n[signal.SIGUSR2]))\n    os._exit(42)\n\
         signal.signal(signal.SIGUSR1, count)\n\
         signal.signal(signal.SIGUSR2, count)\n\
         signal.signal(signal.SIGTERM, term)\n\
         open({ready:?}, 'w').close()\n\
         while True: signal.pause()\n",
        counts = dir.s("counts"),
        ready = dir.s("ready")
    );
    let p = start_pid1_with_socket(&dir, &["--", "python3", "-c", &script]);
    let sock = dir.s("pi.sock");
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let (sock, stop) = (sock.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut worst = Duration::ZERO;
            while !stop.load(Ordering::SeqCst) {
                let (s, took) = status(&sock);
                assert_eq!(s["phase"], "Running", "{s}");
                worst = worst.max(took);
                std::thread::sleep(Duration::from_millis(300));
            }
            worst
        })
    };
    // Paced at 1,500 a second for 10 s (the issue asks for 1,000 a second).
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < STORM {
        if sent as f64 >= started.elapsed().as_secs_f64() * 1500.0 {
            std::thread::sleep(Duration::from_micros(500));
            continue;
        }
        let sig = match sent % 8 {
            0 | 2 | 4 | 6 => libc::SIGUSR1,
            1 | 5 => libc::SIGUSR2,
            3 => libc::SIGWINCH,
            _ => libc::SIGCHLD,
        };
        p.signal(sig);
        sent += 1;
    }
    let rate = sent as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    let worst = prober.join().unwrap();
    assert!(rate >= 1000.0, "the storm was only {rate:.0} signals a second ({sent} in all)");
    assert!(worst < Duration::from_secs(3), "status took up to {worst:?} during the storm");
    std::thread::sleep(Duration::from_millis(200));
    let (out, took) = sigterm(p, "signal storm");
    assert_eq!(out.code, 42, "{}", out.stderr);
    assert!(took < Duration::from_secs(5), "{took:?}");
    let counts = std::fs::read_to_string(dir.path("counts")).unwrap();
    let (usr1, usr2) = counts.split_once(' ').unwrap();
    let (usr1, usr2): (u64, u64) = (usr1.parse().unwrap(), usr2.parse().unwrap());
    assert!(usr1 >= 20 && usr2 >= 5, "{sent} sent, the main process saw USR1 {usr1}, USR2 {usr2}");
}

/// Ten thousand orphans: the main process double-forks 10,000 children whose
/// parents exit at once, so each is re-parented to podinit (PID 1) and ends
/// there. Afterwards no zombie is left in the namespace, and podinit exits
/// with the main process's status.
#[test]
fn ten_thousand_orphans_leave_no_zombie() {
    if !can_unshare() || !have("perl") {
        return;
    }
    let dir = TempDir::new("orphans10k");
    // perl forks in about half a millisecond (python takes three times as long).
    // Every 100th orphan lives 50 ms, so the test sees orphans under podinit.
    let script = format!(
        "perl -MPOSIX -e 'for (1..10000) {{ my $p = fork // die \"fork: $!\"; if ($p == 0) {{ if (fork == 0 && $_ % 100 == 0) {{ select(undef, undef, undef, 0.05) }} POSIX::_exit(0) }} waitpid($p, 0) }}' || exit 9; \
         i=0; while [ $i -lt 200 ]; do z=$(grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l); [ $z -eq 0 ] && break; sleep 0.05; i=$((i+1)); done; \
         echo $z > {zombies}; exit 3",
        zombies = dir.s("zombies")
    );
    let p = start_pid1(&["--", "sh", "-c", &script]);
    // Watch podinit's children from outside: orphans must show up there (or the test proves nothing).
    let mut most = 0;
    let started = Instant::now();
    while !dir.path("zombies").exists() && started.elapsed() < Duration::from_secs(50) {
        let kids = std::fs::read_to_string(format!("/proc/{}/task/{}/children", p.pid, p.pid)).unwrap_or_default();
        most = most.max(kids.split_whitespace().count());
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = p.wait(Duration::from_secs(60));
    no_panic("10,000 orphans", out.code, &out.stderr);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(dir.path("zombies")).unwrap().trim(), "0", "zombies left under podinit");
    assert!(most >= 2, "no orphan was ever seen under podinit ({most}): the test proves nothing");
}

/// A cgroup whose pids.max the main process has filled: podinit itself runs
/// fine there, and when SIGTERM needs a preStop exec hook that cannot be
/// forked (EAGAIN), podinit reports a clear FailedPreStopHook event, does not
/// panic or hang, sends the stop signal anyway, and exits with the main
/// process's status. Needs a writable pids cgroup (v2 or v1).
#[test]
fn a_full_pids_cgroup_fails_the_hook_not_podinit() {
    if !can_unshare() || !have("python3") {
        return;
    }
    let Some(cgroup) = PidsCgroup::create("podinit-faults") else {
        skip("no writable pids cgroup (v2 or v1) here");
        return;
    };
    std::fs::write(cgroup.0.join("pids.max"), "24").unwrap();
    let dir = TempDir::new("pids");
    let script = format!(
        "import os, signal, time\n\
         kids = 0\n\
         while kids < 500:\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n    if pid == 0:\n        while True: time.sleep(100)\n    kids += 1\n\
         signal.signal(signal.SIGTERM, lambda *_: os._exit(5))\n\
         open({ready:?}, 'w').write(str(kids) + ' forked\\n')\n\
         while True: signal.pause()\n",
        ready = dir.s("ready")
    );
    let cfg = dir.config(&format!(
        "grace_period = \"20s\"\n[[pre_stop]]\nname = \"flush\"\nexec = [\"touch\", \"{}\"]\n",
        dir.s("pre-stop-ran")
    ));
    let mut cmd = pid1_command(&["-c", &cfg, "--", "python3", "-c", &script]);
    cgroup.enter_on_exec(&mut cmd);
    let p = start_pid1_command(cmd);
    // Wait for the whole line: the file exists, empty, before Python writes it.
    let kids = wait_for_file(&dir.path("ready"), " forked\n", LIMIT);
    let kids: u32 = kids.split_whitespace().next().and_then(|k| k.parse().ok()).unwrap_or(0);
    assert!((5..500).contains(&kids), "the main process forked {kids} children: the limit did not hold");
    let (out, took) = sigterm(p, "pids limit");
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(took < Duration::from_secs(5), "{took:?}");
    let failed = events(&out.stderr, "FailedPreStopHook");
    assert_eq!(failed.len(), 1, "{}", out.stderr);
    assert!(failed[0].contains("flush") && failed[0].contains("Resource temporarily unavailable"), "{}", failed[0]);
    assert!(failed[0].contains("process limit"), "the event should say what to check: {}", failed[0]);
    assert!(!dir.path("pre-stop-ran").exists());
    assert!(out.stderr.contains("Killing: sent SIGTERM to main process"), "{}", out.stderr);
}

/// A pids cgroup of our own, removed on drop.
struct PidsCgroup(std::path::PathBuf, std::ffi::CString);

impl PidsCgroup {
    fn create(tag: &str) -> Option<PidsCgroup> {
        let name = format!("{tag}-{}", std::process::id());
        let v2 = std::path::Path::new("/sys/fs/cgroup");
        let mut candidates = Vec::new();
        if std::fs::read_to_string(v2.join("cgroup.controllers"))
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"))
        {
            let _ = std::fs::write(v2.join("cgroup.subtree_control"), "+pids");
            candidates.push(v2.join(&name));
        }
        candidates.push(v2.join("pids").join(&name));
        for dir in candidates {
            let _ = std::fs::remove_dir(&dir);
            if std::fs::create_dir(&dir).is_ok() {
                if dir.join("pids.max").exists() && dir.join("cgroup.procs").exists() {
                    let procs = std::ffi::CString::new(dir.join("cgroup.procs").as_os_str().as_bytes()).unwrap();
                    return Some(PidsCgroup(dir, procs));
                }
                let _ = std::fs::remove_dir(&dir);
            }
        }
        None
    }

    /// Moves the command's process into this cgroup between fork and exec.
    fn enter_on_exec(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        let procs = self.1.clone();
        // SAFETY: open, write and close are async-signal-safe; nothing is allocated.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                libc::close(fd);
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // The namespace's processes are gone with its PID 1; the kernel may lag a moment.
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Arguments that are not UTF-8: the command's own are passed to it byte for
/// byte; as a podinit option or option value they are a clear usage error
/// (exit 2), never a panic.
#[test]
fn argv_that_is_not_utf8_passes_through_or_is_refused_clearly() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("argv");
    let bytes: &[u8] = b"\xff\xfe caf\xe9 \x01\x1b[0m $HOME;\n-x";
    let file = dir.s("arg");
    let printf = format!("printf %s \"$1\" > {file}");
    let args: Vec<&OsStr> =
        vec!["--".as_ref(), "sh".as_ref(), "-c".as_ref(), printf.as_ref(), "sh".as_ref(), OsStr::from_bytes(bytes)];
    let out = run_pid1_command(pid1_command(&args), LIMIT);
    no_panic("non-UTF-8 command argument", out.code, &out.stderr);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read(dir.path("arg")).unwrap(), bytes, "the argument was changed on its way");
    assert!(out.stderr.contains("Started: main process"), "{}", out.stderr);

    let bad = OsStr::from_bytes(b"3\xffs");
    let marker = dir.s("started");
    let cases: [(Vec<&OsStr>, &str); 5] = [
        (vec!["--grace".as_ref(), bad, "touch".as_ref(), marker.as_ref()], "--grace: value"),
        (vec!["-c".as_ref(), bad, "touch".as_ref(), marker.as_ref()], "-c: value"),
        (vec![OsStr::from_bytes(b"--gr\xffce=3"), "touch".as_ref(), marker.as_ref()], "is not valid UTF-8"),
        (vec!["check".as_ref(), "-c".as_ref(), bad], "-c: value"),
        (vec!["status".as_ref(), bad], "unexpected argument"),
    ];
    for (args, want) in cases {
        let out = Command::new(bin()).args(&args).env_remove("PODINIT_LOG").output().unwrap();
        let (code, err) = (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr));
        no_panic(&format!("{args:?}"), code, &err);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert!(!dir.path("started").exists(), "a command ran despite a bad option");
}

/// Environment that is huge or absurd: a 100 KiB PODINIT_GRACE, durations
/// past any clock (`18446744073709551615` seconds once panicked PID 1 when
/// the deadline was computed), a 100 KiB variable expanded into the config,
/// a non-UTF-8 one. Each is either a clear error (exit 2 naming the variable)
/// or works; podinit never panics.
#[test]
fn huge_and_absurd_environment_never_panics() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("env");
    let huge_digits = "9".repeat(100 * 1024);
    let cases: [(&str, &str, &str); 6] = [
        ("PODINIT_GRACE", &huge_digits, "PODINIT_GRACE"),
        ("PODINIT_GRACE", "18446744073709551615", "too long"),
        ("PODINIT_GRACE", "9223372036854775807", "too long"),
        ("PODINIT_PRE_STOP_SLEEP", "876001h", "too long"),
        ("PODINIT_STOP_SIGNAL", &huge_digits, "PODINIT_STOP_SIGNAL"),
        ("PODINIT_LOG_FORMAT", &huge_digits, "PODINIT_LOG_FORMAT"),
    ];
    for (var, value, want) in cases {
        // Refused before anything starts, with the 100 KiB value in the message: read
        // stdout and stderr while podinit runs (`timeout` turns a hang into 124).
        let out = Command::new("timeout")
            .args(["30", bin(), "--", "sh", "-c", "exit 3"])
            .env_remove("PODINIT_LOG")
            .env(var, value)
            .output()
            .unwrap();
        let (code, err) = (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr));
        no_panic(var, code, &err);
        assert_eq!(code, 2, "{var}={}: {}", &value[..value.len().min(40)], &err[..err.len().min(400)]);
        assert!(err.contains(want), "{var}: {}", &err[..err.len().min(400)]);
    }
    // The same absurd durations on the command line and in a config.
    let out = run_pid1(&["--grace", "18446744073709551615", "--", "sh", "-c", "exit 3"], LIMIT);
    no_panic("--grace u64::MAX", out.code, &out.stderr);
    assert_eq!(out.code, 2, "{}", out.stderr);
    for text in ["grace_period = 9223372036854775807\n", "[[pre_stop]]\nsleep = \"18446744073709551615\"\n"] {
        let cfg = dir.config(text);
        let out = run_pid1(&["-c", &cfg, "--", "sh", "-c", "exit 3"], LIMIT);
        no_panic(text, out.code, &out.stderr);
        assert_eq!(out.code, 2, "{text}: {}", out.stderr);
        assert!(out.stderr.contains("too long"), "{text}: {}", out.stderr);
    }
    // The longest accepted grace period works end to end.
    let out = run_pid1(&["--grace", "876000h", "--", "sh", "-c", "sleep 100 & exit 3"], LIMIT);
    no_panic("--grace 876000h", out.code, &out.stderr);
    assert_eq!(out.code, 3, "{}", out.stderr);

    // A 100 KiB variable expanded into the config: it works, the main process gets it whole.
    let big = "x".repeat(100 * 1024);
    let cfg = dir.config(&format!(
        "[main]\nenv = {{ BIG = \"${{BIG_VALUE}}\" }}\n[[pre_stop]]\nexec = [\"sh\", \"-c\", \"printf %s \\\"$BIG\\\" | wc -c > {}\"]\n",
        dir.s("len")
    ));
    let p = start_pid1_env(&["-c", &cfg, "--", "sh", "-c", &app(&dir, 4)], &[("BIG_VALUE", &big)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let (out, _) = sigterm(p, "100 KiB ${VAR}");
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(dir.path("len")).unwrap().trim(), (100 * 1024).to_string());

    // A variable that is not UTF-8 where podinit reads one: ignored or refused, never a panic.
    let mut cmd = pid1_command(&["--", "sh", "-c", "exit 3"]);
    cmd.env("PODINIT_GRACE", OsStr::from_bytes(b"3\xffs"));
    let out = run_pid1_command(cmd, LIMIT);
    no_panic("non-UTF-8 PODINIT_GRACE", out.code, &out.stderr);
    assert!(out.code == 3 || out.code == 2, "{}", out.stderr);
}

/// A crowded control socket: 40 clients that connect and stall, one that
/// sends 1 MiB without a newline, and 50 concurrent `podinit status` calls.
/// podinit stays up, the concurrent calls are answered, a status call after
/// the crowd arrived is answered promptly, and the stop is normal.
#[test]
fn a_crowded_control_socket_still_answers_and_stops_normally() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("crowd");
    let sock = dir.s("pi.sock");
    let p = start_pid1_with_socket(&dir, &["--", "sh", "-c", &app(&dir, 7)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let stalled: Vec<UnixStream> = (0..40).map(|_| UnixStream::connect(&sock).unwrap()).collect();
    let mut huge = UnixStream::connect(&sock).unwrap();
    huge.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = huge.write_all(&vec![b'x'; 1 << 20]);
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let sock = sock.clone();
            std::thread::spawn(move || verb(&sock, &["status", "--json"]))
        })
        .collect();
    let mut ok = 0;
    for c in callers {
        let (code, out, err) = c.join().unwrap();
        if code == 0 && out.contains("\"phase\":\"Running\"") {
            ok += 1;
        } else {
            eprintln!("a concurrent status call failed: {code} {err}");
        }
    }
    assert_eq!(ok, 50, "concurrent status calls went unanswered");
    let (s, took) = status(&sock);
    assert_eq!(s["phase"], "Running");
    assert!(took < Duration::from_secs(2), "status took {took:?} with stalled clients");
    drop(stalled);
    let (out, _) = sigterm(p, "crowded socket");
    assert_eq!(out.code, 7, "{}", out.stderr);
}

/// Fuzzed control requests: 400 requests of random bytes, valid verbs with
/// junk around them, several lines, and a 1 MiB line. Every answer is one
/// `fail ...` line, a status, or nothing; none triggers preStop; podinit stays
/// Running and stops normally. (Deterministic: a fixed xorshift seed.)
#[test]
fn fuzzed_control_requests_get_clear_answers_and_change_nothing() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("fuzz-socket");
    let sock = dir.s("pi.sock");
    let p = start_pid1_with_socket(&dir, &["--", "sh", "-c", &app(&dir, 7)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let pieces: [&[u8]; 10] =
        [b"status", b"pre-stop", b"\n", b"\r\n", b" ", b"\0", b"\xff\xfe", b"STATUS", b"pre-stop-now", b"{\"ask\":1}"];
    let mut unknown = 0;
    for i in 0..400 {
        let mut req: Vec<u8> = Vec::new();
        match i {
            0 => req = vec![b'x'; 1 << 20],
            _ => {
                for _ in 0..(next() % 6) {
                    match next() % 3 {
                        0 => req.extend((0..next() % 40).map(|_| next() as u8)),
                        _ => req.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]),
                    }
                }
            }
        }
        let first = String::from_utf8_lossy(req.split(|&b| b == b'\n').next().unwrap_or(&[])).trim().to_string();
        if first == "pre-stop" {
            continue; // a valid request, not a fuzzed one
        }
        let mut c = UnixStream::connect(&sock).unwrap();
        c.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let _ = c.write_all(&req);
        let _ = c.shutdown(std::net::Shutdown::Write);
        let mut answer = Vec::new();
        let _ = c.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        let ok = match first.as_str() {
            "status" => answer.starts_with("Phase:") || answer.starts_with('{') || answer.is_empty(),
            "" if !req.contains(&b'\n') && !req.is_empty() => answer.is_empty() || answer.starts_with("fail "),
            "" => answer.is_empty() || answer.starts_with("fail "),
            _ => answer == "fail unknown request: send pre-stop or status\n" || answer.is_empty(),
        };
        assert!(ok, "request {i} ({} bytes, first line {first:?}) got {answer:?}", req.len());
        unknown += usize::from(answer.starts_with("fail unknown request"));
    }
    assert!(unknown > 100, "only {unknown} requests were refused as unknown: the fuzzing proves little");
    let (s, took) = status(&sock);
    assert_eq!(s["phase"], "Running", "{s}");
    assert_eq!(s["pre_stop"]["state"], "not run", "a fuzzed request triggered preStop: {s}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let (out, _) = sigterm(p, "fuzzed socket");
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.stderr.contains("Killing: sent SIGTERM to main process"), "{}", out.stderr);
    assert!(
        !out.stderr.bytes().any(|b| b != b'\n' && b.is_ascii_control()),
        "raw control bytes reached stderr: {:?}",
        out.stderr
    );
}

/// Credentials in URLs (`http://user:secret@host/`) and secret headers
/// (Authorization, API keys) reach the servers but no output: event lines in
/// text and JSON (at trace level), `podinit status --json`, `podinit
/// pre-stop`, `podinit check` (also for a URL whose password holds an
/// unencoded '/', which `check` refuses), and the errors of failing,
/// refusing and garbage-answering registries.
#[test]
fn credentials_appear_in_no_output() {
    if !can_unshare() {
        return;
    }
    const SECRETS: [&str; 4] = ["S3cretUrlPw", "T0kenS3cret", "K3yS3cret", "B4sicS3cret"];
    // base64("admin:S3cretUrlPw") and base64("u:B4sicS3cret") too.
    const ENCODED: [&str; 2] = ["YWRtaW46UzNjcmV0VXJsUHc", "dTpCNHNpY1MzY3JldA"];
    let clean = |what: &str, text: &str| {
        for s in SECRETS.iter().chain(ENCODED.iter()) {
            assert!(!text.contains(s), "{what} shows the secret {s}: {text}");
        }
    };
    let e401 = Server::start(|_, _| 401);
    let e500 = Server::start(|_, _| 500);
    let junk = raw_server(|mut s| {
        read_head(&mut s);
        let _ = s.write_all(b"\x00garbage\r\n");
    });
    let down = closed_port();
    let dir = TempDir::new("secrets");
    let sock = dir.s("pi.sock");
    let cfg = dir.config(&format!(
        "grace_period = \"20s\"\n\
         [[post_start]]\nhttp = {{ url = \"http://hook:S3cretUrlPw@127.0.0.1:{p401}/hook\", headers = {{ Authorization = \"Bearer T0kenS3cret\", X-Api-Key = \"K3yS3cret\" }} }}\non_failure = \"ignore\"\n\
         [[pre_stop]]\neureka = {{ urls = [\"http://admin:S3cretUrlPw@127.0.0.1:{down}/eureka\", \"http://admin:S3cretUrlPw@127.0.0.1:{junk}/eureka\", \"http://admin:S3cretUrlPw@127.0.0.1:{p500}/eureka\"], app = \"a\", instance = \"i\" }}\ntimeout = \"5s\"\n\
         [[pre_stop]]\nhttp = {{ url = \"http://u:B4sicS3cret@127.0.0.1:{p401}/x\", method = \"DELETE\", headers = {{ Proxy-Authorization = \"Basic T0kenS3cret\" }} }}\n\
         [probe.readiness]\nexec = [\"sh\", \"-c\", \"echo '> Authorization: Bearer T0kenS3cret'; echo GET http://admin:S3cretUrlPw@x/; exit 1\"]\nperiod = \"200ms\"\n",
        p401 = e401.port,
        p500 = e500.port
    ));
    let (code, out, err) = verb(&sock, &["check", "-c", &cfg]);
    assert_eq!(code, 0, "{err}");
    clean("podinit check", &format!("{out}{err}"));
    assert!(out.contains("http://***@127.0.0.1") && out.contains("[Authorization: ***]"), "{out}");

    for format in ["text", "json"] {
        let p = start_pid1_with_socket(
            &dir,
            &["-vvv", "--log-format", format, "-c", &cfg, "--", "sh", "-c", &app(&dir, 7)],
        );
        wait_for_file(&dir.path("ready"), "", LIMIT);
        wait_for_phase(&sock, "Running", Duration::from_secs(10));
        let (code, out, err) = verb(&sock, &["pre-stop"]);
        assert_eq!(code, 1, "preStop should have failed: {out}{err}");
        clean("podinit pre-stop", &format!("{out}{err}"));
        let (s, _) = status(&sock);
        clean("podinit status --json", &s.to_string());
        assert!(s.to_string().contains("FailedPreStopHook"), "{s}");
        let (out, _) = sigterm(p, format);
        assert_eq!(out.code, 7, "{}", out.stderr);
        clean(&format!("stderr ({format})"), &out.stderr);
        clean(&format!("stdout ({format})"), &out.stdout);
        assert!(out.stderr.contains("FailedPostStartHook") && out.stderr.contains("401"), "{}", out.stderr);
        // A probe that prints credentials (`curl -v` does): quoted, masked.
        assert!(
            out.stderr.contains("readiness probe failed") && out.stderr.contains("Authorization: ***"),
            "{}",
            out.stderr
        );
    }
    // The secrets did reach the servers.
    let auths: Vec<String> =
        e401.requests().iter().filter_map(|r| r.header("authorization").map(str::to_string)).collect();
    assert!(auths.iter().any(|a| a == "Bearer T0kenS3cret"), "{auths:?}");

    // Standalone `podinit pre-stop -c` (no podinit running) reports the same failures, masked.
    let (code, out, err) = isolated_verb(&["pre-stop", "-c", &cfg], &[("PODINIT_SOCKET", &dir.s("nobody.sock"))]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("FailedPreStopHook"), "{err}");
    clean("standalone pre-stop", &format!("{out}{err}"));

    // A password with an unencoded '/' (base64 ones have them) is refused without being shown.
    let bad = dir.config("[[pre_stop]]\neureka = { url = \"http://admin:ab/S3cretUrlPw=@eureka:8761/eureka\", app = \"a\", instance = \"i\" }\n");
    let (code, out, err) = verb(&sock, &["check", "-c", &bad]);
    assert_eq!(code, 2, "{out}{err}");
    clean("check of a bad URL", &format!("{out}{err}"));
    assert!(err.contains("%2F"), "the error should say how to write it: {err}");
}

/// Exec actions never go through a shell: `["echo", "$HOME;touch FILE"]`
/// prints the literal string and creates no file.
#[test]
fn exec_actions_never_go_through_a_shell() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("noshell");
    let evil = format!("$HOME;touch {} `touch {}` $(touch {})", dir.s("x1"), dir.s("x2"), dir.s("x3"));
    let cfg = dir
        .config(&format!("[[post_start]]\nexec = [\"echo\", {evil:?}]\n[[pre_stop]]\nexec = [\"echo\", {evil:?}]\n"));
    let p = start_pid1(&["-c", &cfg, "--", "sh", "-c", &app(&dir, 0)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    std::thread::sleep(Duration::from_millis(300));
    let (out, _) = sigterm(p, "no shell");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.matches(&format!("{evil}\n")).count(), 2, "{:?}", out.stdout);
    for x in ["x1", "x2", "x3"] {
        assert!(!dir.path(x).exists(), "an exec action went through a shell");
    }
}
