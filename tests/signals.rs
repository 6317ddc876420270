//! Signals as users send them: every catchable signal reaches the main process
//! exactly once (PID 1 and subreaper alike, fault signals included), `stop_on`
//! makes an image's own STOPSIGNAL start the stop sequence, a stopped main
//! process still stops, and a signal podinit cannot send is reported.

mod common;
use common::*;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

/// A Python main process that appends every signal it catches to `log` (one
/// number a line) and exits 10 on SIGTERM.
fn catcher(dir: &TempDir) -> String {
    let script = format!(
        r#"
import signal, sys, time
log = open({log:?}, "a", buffering=1)
def caught(s, _frame):
    log.write("%d\n" % s)
for s in range(1, 65):
    if s in (9, 15, 19, 32, 33):
        continue
    try:
        signal.signal(s, caught)
    except (OSError, ValueError, RuntimeError):
        pass
signal.signal(15, lambda s, f: sys.exit(10))
open({ready:?}, "w").close()
while True:
    time.sleep(0.05)
"#,
        log = dir.s("log"),
        ready = dir.s("ready")
    );
    std::fs::write(dir.path("catcher.py"), script).unwrap();
    dir.s("catcher.py")
}

/// Signals 1-31 and 34-64 but the uncatchable (9, 19), the stop request (15),
/// podinit's own (17) and job control (20, 21, 22).
fn every_forwardable() -> Vec<i32> {
    (1..=64).filter(|s| ![9, 15, 17, 19, 20, 21, 22, 32, 33].contains(s)).collect()
}

fn lines(path: &std::path::Path) -> Vec<i32> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| l.parse().ok()).collect()
}

/// Sends each signal to podinit and waits until the main process logged it.
fn send_each_and_check(p: &Podinit, dir: &TempDir) {
    let want = every_forwardable();
    for (i, &sig) in want.iter().enumerate() {
        p.signal(sig);
        let deadline = Instant::now() + Duration::from_secs(5);
        while lines(&dir.path("log")).len() <= i {
            assert!(
                Instant::now() < deadline,
                "signal {sig} never reached the main process: {:?}",
                lines(&dir.path("log"))
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    std::thread::sleep(Duration::from_millis(200)); // a duplicate would show by now
    assert_eq!(lines(&dir.path("log")), want, "each signal exactly once, in order");
    let state = proc_status(p.pid, "State").unwrap_or_default();
    assert!(!state.is_empty() && !state.starts_with('Z'), "podinit did not survive: {state:?}");
}

fn have_python() -> bool {
    let ok = std::process::Command::new("python3").args(["-c", "pass"]).status().is_ok_and(|s| s.success());
    if !ok {
        skip("python3 is not installed");
    }
    ok
}

#[test]
fn every_catchable_signal_reaches_the_main_process_once_as_pid1() {
    if !can_unshare() || !have_python() {
        return;
    }
    let dir = TempDir::new("every-sig-pid1");
    let p = start_pid1(&["--", "python3", &catcher(&dir)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    send_each_and_check(&p, &dir);
    let out = p.sigterm_and_wait(LIMIT).0;
    assert_eq!(out.code, 10, "{}", out.stderr);
}

#[test]
fn every_catchable_signal_reaches_the_main_process_once_as_subreaper() {
    if !have_python() {
        return;
    }
    let dir = TempDir::new("every-sig-sub");
    let p = start_child(&["--", "python3", &catcher(&dir)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    send_each_and_check(&p, &dir);
    let out = p.sigterm_and_wait(LIMIT).0;
    assert_eq!(out.code, 10, "{}", out.stderr);
}

#[test]
fn rewrite_sources_podinit_used_to_drop_or_die_of() {
    if !can_unshare() || !have_python() {
        return;
    }
    let dir = TempDir::new("rewrite-odd");
    // SIGILL (a fault signal) becomes SIGUSR1; SIGTTIN, dropped by default, becomes SIGUSR2.
    let p = start_pid1(&["-r", "ILL:USR1", "-r", "TTIN:USR2", "--", "python3", &catcher(&dir)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    p.signal(libc::SIGTTOU); // no --rewrite names it: not forwarded
    p.signal(libc::SIGILL);
    wait_for_file(&dir.path("log"), &format!("{}\n", libc::SIGUSR1), Duration::from_secs(5));
    p.signal(libc::SIGTTIN);
    wait_for_file(&dir.path("log"), &format!("{}\n", libc::SIGUSR2), Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(lines(&dir.path("log")), [libc::SIGUSR1, libc::SIGUSR2]);
    let out = p.sigterm_and_wait(LIMIT).0;
    assert_eq!(out.code, 10, "{}", out.stderr);
}

/// The nginx case: the image says STOPSIGNAL SIGQUIT, so SIGQUIT is what
/// PID 1 gets. With `stop_on` it runs preStop first, then the stop signal.
#[test]
fn stop_on_makes_sigquit_run_pre_stop_first() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("stop-on");
    let config = dir.config(&format!(
        "stop_on = [\"SIGTERM\", \"SIGQUIT\"]\nstop_signal = \"SIGQUIT\"\n\
         [[pre_stop]]\nexec = [\"sh\", \"-c\", \"echo pre-stop >> {log}\"]\n[[pre_stop]]\nsleep = \"1s\"\n",
        log = dir.s("log")
    ));
    let main = format!(
        "trap 'echo QUIT >> {log}; exit 3' QUIT; trap 'echo TERM >> {log}; exit 5' TERM; touch {ready}; \
         while :; do sleep 0.02; done",
        log = dir.s("log"),
        ready = dir.s("ready")
    );
    let p = start_pid1(&["-c", &config, "--", "sh", "-c", &main]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let sent = Instant::now();
    p.signal(libc::SIGQUIT);
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(sent.elapsed() >= Duration::from_millis(950), "the drain did not run: {:?}", sent.elapsed());
    assert_eq!(std::fs::read_to_string(dir.path("log")).unwrap(), "pre-stop\nQUIT\n", "{}", out.stderr);
    assert_eq!(out.stderr.matches("PreStopStarted").count(), 1, "{}", out.stderr);

    // The same from the environment, with the default list replaced: SIGTERM is now forwarded.
    let dir = TempDir::new("stop-on-env");
    let main = format!(
        "trap 'echo TERM >> {log}; exit 5' TERM; trap 'echo INT >> {log}; exit 6' INT; touch {ready}; \
         while :; do sleep 0.02; done",
        log = dir.s("log"),
        ready = dir.s("ready")
    );
    let p = start_pid1_env(&["--pre-stop-sleep", "500ms", "--", "sh", "-c", &main], &[("PODINIT_STOP_ON", "SIGINT")]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    p.signal(libc::SIGTERM); // forwarded: no preStop
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(!out.stderr.contains("PreStopStarted"), "{}", out.stderr);
}

#[test]
fn stop_on_refuses_what_cannot_stop_a_container() {
    let dir = TempDir::new("stop-on-bad");
    for (args, env, want) in [
        (vec!["--stop-on", "SIGKILL", "--", "true"], vec![], "SIGKILL"),
        (vec!["--stop-on", "CHLD", "--", "true"], vec![], "SIGCHLD"),
        (vec!["--", "true"], vec![("PODINIT_STOP_ON", "SIGTERM,STOP")], "PODINIT_STOP_ON"),
        (vec!["--", "true"], vec![("PODINIT_STOP_ON", ",")], "at least one"),
    ] {
        let out = std::process::Command::new(bin()).args(&args).envs(env).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let config = dir.config("stop_on = []\n");
    let out = std::process::Command::new(bin()).args(["check", "-c", &config]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("stop_on") && err.contains(":1:"), "{err}");
}

/// ^Z or `kill -TSTP` left the main process stopped: the stop signal alone
/// could never act; SIGCONT follows it.
#[test]
fn a_stopped_main_process_stops_within_a_second_of_sigterm() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("tstp");
    let main = format!("trap 'exit 10' TERM; touch {ready}; while :; do sleep 0.02; done", ready = dir.s("ready"));
    let p = start_pid1(&["--", "sh", "-c", &main]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    p.signal(libc::SIGTSTP); // forwarded: the shell stops
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stopped = tree(p.pid).iter().any(|(_, state, cmd)| *state == 'T' && cmd.starts_with("sh -c"));
        if stopped {
            break;
        }
        assert!(Instant::now() < deadline, "the main process never stopped: {:?}", tree(p.pid));
        std::thread::sleep(Duration::from_millis(10));
    }
    let (out, took) = p.sigterm_and_wait(LIMIT);
    assert_eq!(out.code, 10, "{}", out.stderr);
    assert!(took < Duration::from_secs(1), "took {took:?}: {}", out.stderr);
}

/// `--cap-drop ALL` with `user = "nobody"`: podinit (root without CAP_KILL)
/// cannot signal the main process. It warns at start, reports the failed
/// kill naming pid, user and capability, and as PID 1 ends at the grace
/// deadline (the kernel then kills the rest), instead of saying "sent".
#[test]
fn a_kill_without_cap_kill_is_reported_not_claimed() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("no-cap-kill");
    let config = dir.config("grace_period = \"2s\"\n[main]\nuser = \"nobody\"\n");
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--bounding-set", "-kill", "unshare", "--pid", "--fork", "--mount-proc", bin(), "-c", &config]);
    cmd.args(["--", "sh", "-c", "trap 'exit 10' TERM; while :; do sleep 0.02; done"]);
    let p = start_pid1_command(cmd);
    std::thread::sleep(Duration::from_millis(500));
    let (out, took) = p.sigterm_and_wait(LIMIT);
    assert_eq!(out.code, 137, "{}", out.stderr);
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(out.stderr.contains("lacks the CAP_KILL capability"), "no start warning: {}", out.stderr);
    let failed: Vec<_> = out.stderr.lines().filter(|l| l.contains("FailedKill")).collect();
    assert!(
        failed
            .iter()
            .any(|l| l.contains("SIGTERM to main process") && l.contains("uid 65534") && l.contains("CAP_KILL")),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("Killing: sent SIGTERM"), "a failed kill was reported as sent: {}", out.stderr);
    assert_eq!(out.stderr.matches("grace period over").count(), 1, "{}", out.stderr);
}

/// Outside a container, from a terminal (podinit not PID 1): a background
/// podinit leaves the foreground alone; ^Z stops the main process and podinit
/// with it, so the shell gets control back; a SIGCONT (`fg`) resumes both; at
/// exit podinit's group has the foreground again.
#[test]
fn job_control_on_a_real_terminal() {
    if !have_python() {
        return;
    }
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pty_job_control.py");
    let out = std::process::Command::new("python3").args([driver, bin()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for want in ["background-left-foreground=True", "podinit-stopped=True", "exit=0", "foreground-back=True"] {
        assert!(text.contains(want), "missing {want}: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let after = text.split("podinit-stopped=True").nth(1).unwrap_or("");
    assert!(after.contains("tick"), "the main process never resumed: {text}");
}

/// `stop_on` is matched before `--rewrite`: a rewrite of a stop_on signal
/// would never apply (unless it is the stop signal, which is rewritten), and
/// podinit says so at start.
#[test]
fn a_rewrite_that_stop_on_makes_moot_is_warned_about() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&["--stop-on", "SIGQUIT", "--stop-on", "TERM", "-r", "QUIT:USR1", "--", "true"]);
    assert!(err.contains("--rewrite SIGQUIT") && err.contains("stop_on"), "{err}");
    let err = run(&["-r", "15:3", "--", "true"]); // dumb-init's idiom: rewrites the stop signal
    assert!(!err.contains("stop_on"), "{err}");
}

/// Messages that say what happened: a 30 s grace period is "SIGKILL in 30s"
/// (never 29s), and with `-e 143` the Exited event says the status is
/// reported as 0.
#[test]
fn stop_messages_round_the_grace_and_name_the_remapped_status() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("messages");
    let main = format!("touch {}; while :; do sleep 0.02; done", dir.s("ready"));
    let p = start_pid1(&["-e", "143", "--", "sh", "-c", &main]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let out = p.sigterm_and_wait(LIMIT).0;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("SIGKILL in 30s"), "{}", out.stderr);
    assert!(out.stderr.contains("(exit code 143), reported as exit code 0 (-e)"), "{}", out.stderr);
}
