//! `podinit pre-stop` and `podinit status` over the control socket, with
//! podinit as a real PID 1, plus the socket's bad-input cases.

mod common;
use common::http::Server;
use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const LIMIT: Duration = Duration::from_secs(30);

/// Runs a podinit verb as a client against the socket at `sock`.
fn verb(sock: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).env("PODINIT_SOCKET", sock).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn app(dir: &TempDir) -> String {
    format!(
        "trap 'date +%s.%N >> {term}; exit 0' TERM; touch {ready}; while :; do sleep 0.01; done",
        term = dir.s("term"),
        ready = dir.s("ready")
    )
}

fn status(sock: &str) -> serde_json::Value {
    let (code, out, err) = verb(sock, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("status is not JSON ({e}): {out}"))
}

#[test]
fn pre_stop_drains_once_for_every_caller_then_sigterm_stops_at_once() {
    if !can_unshare() {
        return;
    }
    let eureka = Server::start(|_, _| 200);
    let dir = TempDir::new("prestop");
    let sock = dir.s("pi.sock");
    let cfg = dir.config(&format!(
            "grace_period = \"20s\"\n[[pre_stop]]\neureka = {{ url = \"http://127.0.0.1:{}/eureka\", app = \"svc\", instance = \"i1\" }}\n[[pre_stop]]\nsleep = \"1500ms\"\n",
            eureka.port
        ),
    );
    let p = start_pid1_with_socket(&dir, &["-c", &cfg, "--", "sh", "-c", &app(&dir)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    assert_eq!(status(&sock)["phase"], "Running");

    // Two concurrent hook calls: one run, one PUT, the same answer for both.
    let started = Instant::now();
    let (s1, s2) = (sock.clone(), sock.clone());
    let a = std::thread::spawn(move || verb(&s1, &["pre-stop"]));
    std::thread::sleep(Duration::from_millis(200));
    let during = status(&sock);
    let b = std::thread::spawn(move || verb(&s2, &["pre-stop"]));
    let (ra, rb) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!(ra.0, 0, "{}", ra.2);
    assert_eq!(rb.0, 0, "{}", rb.2);
    assert_eq!(ra.2, rb.2, "both callers must get the same result");
    assert!(started.elapsed() >= Duration::from_millis(1450), "pre-stop returned before the drain ended");
    assert_eq!(eureka.requests().len(), 1, "a second PUT was sent");
    assert_eq!(during["phase"], "Terminating");
    assert_eq!(during["pre_stop"]["state"], "running", "{during}");
    assert_eq!(during["pre_stop"]["took_ms"], serde_json::Value::Null, "{during}");
    let after = status(&sock);
    assert_eq!(after["pre_stop"]["state"], "finished", "{after}");
    assert!(after["pre_stop"]["took_ms"].as_u64().unwrap() >= 1450, "{after}");
    assert_eq!(after["pre_stop"]["failed"], 0, "{after}");
    assert_eq!(during["ready"], false);
    // The stop signal waits for the kubelet's SIGTERM...
    std::thread::sleep(Duration::from_millis(300));
    assert!(!dir.path("term").exists(), "the main process was stopped before SIGTERM");
    // ...which then reaches the main process at once.
    let sent = SystemTime::now();
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let term: f64 = std::fs::read_to_string(dir.path("term")).unwrap().trim().parse().unwrap();
    let delay = term - sent.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(delay < 0.1, "SIGTERM reached the main process after {delay:.3}s");
    assert_eq!(eureka.requests().len(), 1, "SIGTERM ran preStop again");
    assert_eq!(out.stderr.matches("PreStopStarted").count(), 1, "{}", out.stderr);
}

#[test]
fn a_failing_pre_stop_action_gives_exit_1_naming_it() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("prestop-fail");
    let sock = dir.s("pi.sock");
    let cfg = dir.config("[[pre_stop]]\nname = \"deregister\"\nexec = [\"sh\", \"-c\", \"exit 4\"]\n");
    let p = start_pid1_with_socket(&dir, &["-c", &cfg, "--", "sh", "-c", &app(&dir)]);
    let (code, _, err) = verb(&sock, &["pre-stop"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("deregister") && err.contains("exit code 4"), "{err}");
    let s = status(&sock);
    assert_eq!(s["pre_stop"]["state"], "finished", "{s}");
    assert_eq!(s["pre_stop"]["failed"], 1, "{s}");
    assert!(s["pre_stop"]["failures"][0].as_str().unwrap().contains("deregister"), "{s}");
    let (_, text, _) = verb(&sock, &["status"]);
    assert!(text.contains("PreStop:     finished after") && text.contains("1 failed: deregister"), "{text}");
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait(LIMIT).code, 0);
}

/// No podinit in this root (the client runs alone in a pid namespace, so no
/// concurrent test's podinit is visible) and no socket file: the client runs
/// the actions itself and reports like podinit does.
#[test]
fn standalone_pre_stop_runs_the_config_itself() {
    if !can_unshare() {
        return;
    }
    let verb = |sock: &str, args: &[&str]| isolated_verb(args, &[("PODINIT_SOCKET", sock)]);
    let dir = TempDir::new("standalone");
    let marker = dir.s("ran");
    let cfg = dir.config(&format!("[[pre_stop]]\nexec = [\"touch\", \"{marker}\"]\n[[pre_stop]]\nsleep = \"300ms\"\n"));
    let sock = dir.s("nobody-here.sock");
    let started = Instant::now();
    let (code, _, err) = verb(&sock, &["pre-stop", "-c", &cfg]);
    assert_eq!(code, 0, "{err}");
    assert!(dir.path("ran").exists());
    assert!(started.elapsed() >= Duration::from_millis(300));
    let finished = err.lines().find(|l| l.contains("PreStopFinished")).unwrap_or_else(|| panic!("{err}"));
    assert!(finished.contains("finished after") && finished.contains("0 of 2 action(s) failed"), "{finished}");
    let bad = dir.config("[[pre_stop]]\nexec = [\"false\"]\n");
    let (code, _, err) = verb(&sock, &["pre-stop", "-c", &bad]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("FailedPreStopHook") && err.contains("1 of 1 action(s) failed"), "{err}");
    // Nothing to run at all is an error, not a silent success.
    let (code, _, err) = verb(&sock, &["pre-stop", "-c", &dir.config("grace_period = 5\n")]);
    assert_eq!(code, 1);
    assert!(err.contains("nothing to do"), "{err}");
}

#[test]
fn status_shows_each_phase_and_ready_live() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("status");
    let sock = dir.s("pi.sock");
    let cfg = dir.config("[[init]]\nsleep = \"1500ms\"\n[[pre_stop]]\nsleep = \"1s\"\n");
    let p = start_pid1_with_socket(&dir, &["-c", &cfg, "--", "sh", "-c", &app(&dir)]);
    let s = status(&sock);
    assert_eq!(s["phase"], "Pending", "{s}");
    assert_eq!(s["main_pid"], serde_json::Value::Null);
    assert_eq!(s["pre_stop"]["state"], "not run", "{s}");
    assert_eq!(verb(&sock, &["status", "--ready"]).0, 1);
    let (_, text, _) = verb(&sock, &["status"]);
    assert!(text.contains("Main PID:    -\n") && text.contains("PreStop:     not run"), "{text}");
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let s = status(&sock);
    assert_eq!(s["phase"], "Running", "{s}");
    assert!(s["main_pid"].as_i64().unwrap() > 1);
    assert_eq!(s["ready"], true);
    assert_eq!(s["live"], true);
    // Events carry the fields of a `--log-format json` line.
    let events = s["events"].as_array().unwrap();
    let step = events.iter().find(|e| e["reason"] == "InitStepSucceeded").unwrap_or_else(|| panic!("{s}"));
    assert_eq!(step["level"], "info", "{step}");
    assert!(step["ts"].as_str().unwrap().ends_with('Z') && step["message"].is_string(), "{step}");
    assert_eq!(verb(&sock, &["status", "--ready"]).0, 0);
    assert_eq!(verb(&sock, &["status", "--live"]).0, 0);
    let (code, text, _) = verb(&sock, &["status"]);
    assert_eq!(code, 0);
    assert!(text.contains("Phase:       Running") && text.contains("Z Started: main process"), "{text}");
    p.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    let s = status(&sock);
    assert_eq!(s["phase"], "Terminating", "{s}");
    assert_eq!(s["pre_stop"]["state"], "running", "{s}");
    assert_eq!(verb(&sock, &["status", "--ready"]).0, 1);
    assert_eq!(p.wait(LIMIT).code, 0);
    assert!(!dir.path("pi.sock").exists(), "podinit left its socket file behind");
    // Seen from a root where no podinit runs (concurrent tests' podinits hidden).
    let (code, _, err) = isolated_verb(&["status"], &[("PODINIT_SOCKET", &sock)]);
    assert_eq!(code, 1);
    assert!(err.contains("no running podinit"), "{err}");
}

/// The two end phases: once the main process has exited, podinit waits for
/// leftovers (here one that ignores SIGTERM, until `--grace`), and `status`
/// says Succeeded or Failed after the main process's status, with its code.
#[test]
fn status_shows_succeeded_and_failed_while_leftovers_drain() {
    if !can_unshare() {
        return;
    }
    for (code, phase) in [(0, "Succeeded"), (3, "Failed")] {
        let dir = TempDir::new("end-phase");
        let sock = dir.s("pi.sock");
        let main = format!("{}touch {}; sleep 0.3; exit {code}", stubborn_child(&dir), dir.s("ready"));
        let p = start_pid1_with_socket(&dir, &["--grace", "3s", "--", "sh", "-c", &main]);
        wait_for_file(&dir.path("ready"), "", LIMIT);
        let deadline = Instant::now() + Duration::from_secs(2);
        let s = loop {
            let s = status(&sock);
            if s["phase"] != "Running" || Instant::now() > deadline {
                break s;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(s["phase"], phase, "{s}");
        assert_eq!(s["exit_code"], code, "{s}");
        assert_eq!(s["live"], false, "{s}");
        assert_eq!(verb(&sock, &["status", "--ready"]).0, 1);
        let (_, text, _) = verb(&sock, &["status"]);
        assert!(text.contains(&format!("Phase:       {phase}")), "{text}");
        let out = p.wait(LIMIT);
        assert_eq!(out.code, code, "{}", out.stderr);
    }
}

#[test]
fn a_non_root_peer_is_refused() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("peer");
    let sock = dir.s("pi.sock");
    let cfg = dir.config("[[pre_stop]]\nexec = [\"touch\", \"/tmp/never\"]\n");
    let p = start_pid1_with_socket(&dir, &["-c", &cfg, "--", "sh", "-c", &app(&dir)]);
    let mode = std::fs::metadata(&sock).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.unwrap(), 0o600, "the socket must be 0600");
    // Open the file mode so only SO_PEERCRED stands between nobody and podinit.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups", bin(), "pre-stop"])
        .env("PODINIT_SOCKET", &sock)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert_eq!(status(&sock)["pre_stop"]["state"], "not run", "a refused peer triggered preStop");
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    assert!(out.stderr.contains("refused a client with uid 65534"), "{}", out.stderr);
}

#[test]
fn bad_clients_and_paths_never_block_or_crash_podinit() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("badsock");
    let sock = dir.s("pi.sock");
    // A stale socket file from an earlier run.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(dir.path("pi.sock").exists());
    let p = start_pid1_with_socket(&dir, &["--", "sh", "-c", &app(&dir)]);
    // A client that connects and never writes, and one that sends garbage.
    let _silent = UnixStream::connect(&sock).unwrap();
    let mut garbage = UnixStream::connect(&sock).unwrap();
    garbage.write_all(b"\x00\xffrm -rf /\n").unwrap();
    let mut answer = String::new();
    garbage.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("fail unknown request"), "{answer}");
    let mut huge = UnixStream::connect(&sock).unwrap();
    let _ = huge.write_all(&vec![b'x'; 1 << 20]);
    let started = Instant::now();
    assert_eq!(status(&sock)["phase"], "Running");
    assert!(started.elapsed() < Duration::from_secs(2), "a silent client blocked status");
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait(LIMIT).code, 0);

    // A socket path in a missing directory: podinit runs without the socket, says why.
    let out = run_pid1_env(&["--", "sh", "-c", "exit 3"], &[("PODINIT_SOCKET", "/no/such/dir/pi.sock")], LIMIT);
    assert_eq!(out.code, 3);
    assert!(out.stderr.contains("no control socket") && out.stderr.contains("/no/such/dir/pi.sock"), "{}", out.stderr);
}

/// A read-only root filesystem (docs/lifecycle.md B12): with /run read-only and
/// no PODINIT_SOCKET, podinit makes its socket in /tmp, and `podinit status`
/// (here run by the main process itself) finds it there; with PODINIT_SOCKET
/// in a read-only directory podinit runs without a socket and says what to do.
#[test]
fn a_read_only_run_falls_back_to_tmp_and_a_read_only_socket_dir_is_reported() {
    if !can_unshare() {
        return;
    }
    // A fresh /tmp (so no other podinit's socket is met there); the binary,
    // which may itself live under /tmp, is copied in through an open fd.
    let main = "for i in 1 2 3 4 5 6 7 8 9 10; do /tmp/podinit status --json && exit 4; sleep 0.1; done; exit 9";
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "sh", "-c"])
        .arg(
            "exec 3<\"$0\" && mount -t tmpfs -o ro tmpfs /run && mount -t tmpfs tmpfs /tmp \
             && cat <&3 >/tmp/podinit && chmod 755 /tmp/podinit && ! touch /run/x 2>/dev/null \
             && exec /tmp/podinit -- sh -c \"$1\"",
        )
        .args([bin(), main])
        .current_dir("/") // the working directory may be under the new /tmp as well
        .env_remove("PODINIT_SOCKET");
    let out = run_pid1_command(cmd, LIMIT);
    assert_eq!(out.code, 4, "status never reached podinit: {}{}", out.stdout, out.stderr);
    let s: serde_json::Value =
        serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!(s["phase"], "Running", "{s}");
    assert!(!out.stderr.contains("no control socket"), "{}", out.stderr);

    let ro = TempDir::new("ro-socket-dir");
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "sh", "-c"])
        .arg("mount -t tmpfs -o ro tmpfs \"$2\" && exec \"$0\" -- sh -c 'exit 3'")
        .args([bin(), "-", &ro.s("")])
        .env("PODINIT_SOCKET", ro.path("pi.sock"));
    let out = run_pid1_command(cmd, LIMIT);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let line = out.stderr.lines().find(|l| l.contains("no control socket")).unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(line.contains("Read-only file system") && line.contains("set PODINIT_SOCKET"), "{line}");
}

#[test]
fn pre_stop_after_the_main_process_exited_says_so() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("after-exit");
    let sock = dir.s("pi.sock");
    // The main process exits at once, leaving a child that ignores SIGTERM: podinit drains it.
    let script = format!("{}touch {}; exit 6", stubborn_child(&dir), dir.s("ready"));
    let p = start_pid1_with_socket(&dir, &["--grace", "3s", "--", "sh", "-c", &script]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    std::thread::sleep(Duration::from_millis(300));
    let (code, _, err) = verb(&sock, &["pre-stop"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already exited"), "{err}");
    assert_eq!(p.wait(LIMIT).code, 6);
}

/// The preStop of the unreachable-socket cases: one Eureka PUT, one line in
/// `drains`, a 1 s drain. The directory is open to all, so that a client of
/// another uid could read the config and run it (as podinit once did).
fn counted_pre_stop(dir: &TempDir, eureka: &Server) -> String {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    let cfg = dir.config(&format!(
        "grace_period = \"20s\"\n[[pre_stop]]\neureka = {{ url = \"http://127.0.0.1:{}/eureka\", app = \"svc\", instance = \"i1\" }}\n\
         [[pre_stop]]\nexec = [\"sh\", \"-c\", \"echo drain >> {}\"]\n[[pre_stop]]\nsleep = \"1s\"\n",
        eureka.port,
        dir.s("drains")
    ));
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    cfg
}

/// The hook `podinit pre-stop` (run by `client`) cannot reach the running
/// podinit `p`: it must exit 1 saying why and what to do, run nothing, and
/// leave preStop to podinit's SIGTERM: one PUT and one drain in all.
fn unreachable(p: Podinit, dir: &TempDir, eureka: &Server, mut client: Command, expect: &[&str]) {
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let started = Instant::now();
    let out = client.output().unwrap();
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for e in expect {
        assert!(err.contains(e), "expected {e:?} in: {err}");
    }
    assert!(err.contains("nothing was run here"), "{err}");
    assert!(!err.contains("PreStopFinished"), "the client ran preStop: {err}");
    assert!(took < Duration::from_millis(900), "the client took {took:?}: it drained");
    assert_eq!(eureka.requests().len(), 0, "the client sent the PUT");
    assert!(!dir.path("drains").exists(), "the client ran the drain");
    let (out, _) = p.sigterm_and_wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(eureka.requests().len(), 1, "one PUT in all: {:?}", eureka.requests());
    assert_eq!(std::fs::read_to_string(dir.path("drains")).unwrap(), "drain\n", "one drain in all");
    assert_eq!(out.stderr.matches("PreStopFinished").count(), 1, "{}", out.stderr);
}

/// The hook runs as another uid than podinit (root): connect() gets EACCES
/// from the socket's mode 0600 (nothing chmodded); the fix names the uid.
#[test]
fn pre_stop_as_another_uid_says_run_as_root_and_runs_nothing() {
    if !can_unshare() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let eureka = Server::start(|_, _| 200);
    let dir = TempDir::new("eacces");
    let cfg = counted_pre_stop(&dir, &eureka);
    let p = start_pid1_with_socket(&dir, &["-c", &cfg, "--", "sh", "-c", &app(&dir)]);
    let sock = dir.s("pi.sock");
    let mut client = Command::new(bin());
    client.args(["pre-stop", "-c", &cfg]).env("PODINIT_SOCKET", &sock).uid(65534).gid(65534);
    let status = Command::new(bin()).arg("status").env("PODINIT_SOCKET", &sock).uid(65534).gid(65534).output();
    let status = status.unwrap();
    let err = String::from_utf8_lossy(&status.stderr);
    assert_eq!(status.status.code(), Some(1), "{err}");
    assert!(err.contains("permission denied") && err.contains("as root or as podinit's uid 0"), "{err}");
    assert!(!err.contains("no running podinit"), "{err}");
    unreachable(p, &dir, &eureka, client, &["permission denied", &sock, "run the hook as root or as podinit's uid 0"]);
}

/// PODINIT_SOCKET in a directory that does not exist (the emptyDir
/// forgotten): podinit runs without a socket; the hook names the directory.
#[test]
fn pre_stop_with_the_socket_directory_missing_names_it_and_runs_nothing() {
    if !can_unshare() {
        return;
    }
    let eureka = Server::start(|_, _| 200);
    let dir = TempDir::new("nodir");
    let cfg = counted_pre_stop(&dir, &eureka);
    let sock = dir.s("missing/pi.sock");
    let p = start_pid1_env(&["-c", &cfg, "--", "sh", "-c", &app(&dir)], &[("PODINIT_SOCKET", &sock)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let (code, _, err) = verb(&sock, &["status"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not exist") && err.contains(&dir.s("missing")), "{err}");
    let mut client = Command::new(bin());
    client.args(["pre-stop", "-c", &cfg]).env("PODINIT_SOCKET", &sock);
    let missing = format!("directory that does not exist ({})", dir.s("missing"));
    unreachable(p, &dir, &eureka, client, &[&missing, "emptyDir"]);
}

/// podinit could not bind its socket (a read-only directory): the hook says
/// podinit runs without one and how to give it one.
#[test]
fn pre_stop_with_the_socket_off_says_how_to_give_podinit_one_and_runs_nothing() {
    if !can_unshare() {
        return;
    }
    let eureka = Server::start(|_, _| 200);
    let dir = TempDir::new("sockoff");
    let cfg = counted_pre_stop(&dir, &eureka);
    std::fs::create_dir(dir.path("ro")).unwrap();
    let sock = dir.s("ro/pi.sock");
    // Read-only only in podinit's mount namespace: the client finds no socket file there.
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "sh", "-c"])
        .arg("mount -t tmpfs -o ro tmpfs \"$1\" && exec \"$0\" -c \"$2\" -- sh -c \"$3\"")
        .args([bin(), &dir.s("ro"), &cfg, &app(&dir)])
        .env("PODINIT_SOCKET", &sock);
    let p = start_pid1_command(cmd);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let (code, _, err) = verb(&sock, &["status"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("podinit runs without one"), "{err}");
    let mut client = Command::new(bin());
    client.args(["pre-stop", "-c", &cfg]).env("PODINIT_SOCKET", &sock);
    unreachable(
        p,
        &dir,
        &eureka,
        client,
        &["no control socket at", &sock, "podinit runs without one", "setting PODINIT_SOCKET"],
    );
}

/// No podinit in this root and no socket file: the hook runs preStop itself
/// (one PUT, one drain) and prints the same summary podinit would; a socket
/// file left behind, though, means "maybe a podinit": nothing runs.
#[test]
fn standalone_pre_stop_runs_once_when_no_podinit_runs_and_not_beside_a_socket_file() {
    if !can_unshare() {
        return;
    }
    let eureka = Server::start(|_, _| 200);
    let dir = TempDir::new("alone");
    let cfg = counted_pre_stop(&dir, &eureka);
    let sock = dir.s("none.sock");
    let started = Instant::now();
    let (code, _, err) = isolated_verb(&["pre-stop", "-c", &cfg], &[("PODINIT_SOCKET", &sock)]);
    assert_eq!(code, 0, "{err}");
    assert!(started.elapsed() >= Duration::from_secs(1), "the drain did not run");
    assert_eq!(eureka.requests().len(), 1);
    assert_eq!(std::fs::read_to_string(dir.path("drains")).unwrap(), "drain\n");
    let finished = err.lines().find(|l| l.contains("PreStopFinished")).unwrap_or_else(|| panic!("{err}"));
    assert!(finished.contains("finished after 1.") && finished.contains("0 of 3 action(s) failed"), "{finished}");

    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap()); // a stale socket file
    let (code, _, err) = isolated_verb(&["pre-stop", "-c", &cfg], &[("PODINIT_SOCKET", &sock)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("connection refused") && err.contains("remove it"), "{err}");
    assert_eq!(eureka.requests().len(), 1, "preStop ran beside a socket file");
}
