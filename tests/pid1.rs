//! podinit as a real PID 1 (and as a subreaper): exit codes, signal
//! forwarding, reaping of orphans, leftovers, idle wake-ups.

mod common;
use common::*;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn exit_codes_are_the_main_process_s() {
    if !can_unshare() {
        return;
    }
    let cases: [(&[&str], i32); 8] = [
        (&["--", "sh", "-c", "exit 0"], 0),
        (&["--", "sh", "-c", "exit 3"], 3),
        (&["--", "sh", "-c", "kill -TERM $$"], 143),
        (&["--", "sh", "-c", "kill -KILL $$"], 137),
        (&["--", "/etc/passwd"], 126),
        (&["--", "/no/such/program"], 127),
        (&["-e", "3", "--", "sh", "-c", "exit 3"], 0),
        (&["-e", "143", "--", "sh", "-c", "kill -TERM $$"], 0),
    ];
    for (args, want) in cases {
        let out = run_pid1(args, LIMIT);
        assert_eq!(out.code, want, "{args:?}: {}", out.stderr);
    }
}

#[test]
fn exec_failures_say_what_to_check() {
    if !can_unshare() {
        return;
    }
    let out = run_pid1(&["no-such-command-anywhere"], LIMIT);
    assert_eq!(out.code, 127);
    assert!(out.stderr.contains("cannot run 'no-such-command-anywhere'"), "{}", out.stderr);
    let out = run_pid1(&["/etc/passwd"], LIMIT);
    assert_eq!(out.code, 126);
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
}

/// A main process that records every signal it traps in `log` and exits 10 on SIGTERM.
fn recorder(dir: &TempDir) -> String {
    format!(
        "trap 'echo TERM >> {log}; exit 10' TERM; \
         for s in INT USR1 HUP QUIT WINCH; do trap \"echo $s >> {log}\" $s; done; \
         touch {ready}; while :; do sleep 0.02; done",
        log = dir.s("log"),
        ready = dir.s("ready")
    )
}

#[test]
fn forwards_signals_to_the_main_process() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("fwd");
    let p = start_pid1(&["--", "sh", "-c", &recorder(&dir)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    for (sig, name) in
        [(libc::SIGINT, "INT"), (libc::SIGUSR1, "USR1"), (libc::SIGHUP, "HUP"), (libc::SIGWINCH, "WINCH")]
    {
        p.signal(sig);
        wait_for_file(&dir.path("log"), name, Duration::from_secs(5));
    }
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 10, "{}", out.stderr);
    let log = std::fs::read_to_string(dir.path("log")).unwrap();
    assert_eq!(log.lines().collect::<Vec<_>>(), ["INT", "USR1", "HUP", "WINCH", "TERM"]);
}

#[test]
fn rewrite_changes_the_forwarded_signal() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("rewrite");
    let script = format!(
        "trap 'echo QUIT >> {log}; exit 4' QUIT; trap 'echo TERM >> {log}; exit 5' TERM; \
         trap 'echo USR1 >> {log}' USR1; touch {ready}; while :; do sleep 0.02; done",
        log = dir.s("log"),
        ready = dir.s("ready")
    );
    let p = start_pid1(&["-r", "15:3", "--rewrite", "USR2:0", "--", "sh", "-c", &script]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    p.signal(libc::SIGUSR2); // dropped: the shell would die of an untrapped USR2
    p.signal(libc::SIGUSR1);
    wait_for_file(&dir.path("log"), "USR1", Duration::from_secs(5));
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(dir.path("log")).unwrap(), "USR1\nQUIT\n");
}

/// The main shell starts a helper in its own process group, which records USR1.
fn family(dir: &TempDir) -> String {
    format!(
        "sh -c 'trap \"echo child >> {log}; exit 0\" USR1; touch {kid}; while :; do sleep 0.02; done' & \
         trap 'echo parent >> {log}' USR1; trap 'exit 0' TERM; \
         while [ ! -e {kid} ]; do sleep 0.01; done; touch {ready}; while :; do sleep 0.02; done",
        log = dir.s("log"),
        kid = dir.s("kid"),
        ready = dir.s("ready")
    )
}

/// With `-g`, SIGUSR1, SIGINT, SIGHUP and SIGTERM reach a grandchild in the
/// main process's group as well as the main process. (The grandchild is perl:
/// a shell's background job starts with SIGINT ignored and cannot trap it.)
#[test]
fn group_flag_reaches_the_whole_process_group() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("group");
    let script = format!(
        "perl -e 'for my $s (qw(USR1 INT HUP TERM)) {{ $SIG{{$s}} = sub {{ open my $f, \">>\", $ARGV[0]; print $f \"child $_[0]\\n\"; close $f; exit 0 if $_[0] eq \"TERM\" }} }} open my $k, \">\", $ARGV[1]; close $k; sleep 1 while 1' {log} {kid} & \
         for s in USR1 INT HUP; do trap \"echo parent $s >> {log}\" $s; done; trap 'echo parent TERM >> {log}; wait; exit 0' TERM; \
         while [ ! -e {kid} ]; do sleep 0.01; done; touch {ready}; while :; do sleep 0.02; done",
        log = dir.s("log"),
        kid = dir.s("kid"),
        ready = dir.s("ready")
    );
    let p = start_pid1(&["-g", "--", "sh", "-c", &script]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    for (sig, name) in [(libc::SIGUSR1, "USR1"), (libc::SIGINT, "INT"), (libc::SIGHUP, "HUP")] {
        p.signal(sig);
        wait_for_file(&dir.path("log"), &format!("child {name}\n"), Duration::from_secs(5));
        wait_for_file(&dir.path("log"), &format!("parent {name}\n"), Duration::from_secs(5));
    }
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let log = std::fs::read_to_string(dir.path("log")).unwrap();
    assert!(log.contains("child TERM\n") && log.contains("parent TERM\n"), "{log}");
}

#[test]
fn without_group_flag_only_the_main_process_gets_the_signal() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("nogroup");
    let p = start_pid1(&["--", "sh", "-c", &family(&dir)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    p.signal(libc::SIGUSR1);
    wait_for_file(&dir.path("log"), "parent", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(dir.path("log")).unwrap(), "parent\n");
}

#[test]
fn thousand_orphans_leave_no_zombie() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("orphans");
    // Each `( sleep & )` subshell exits at once, so its sleep is re-parented to
    // PID 1 and dies there. The main process then counts zombies in its /proc.
    let script = format!(
        "i=0; while [ $i -lt 1000 ]; do (sleep 0.2 &); i=$((i+1)); done; \
         ps_orphans=$(grep -l '^PPid:.1$' /proc/[0-9]*/status 2>/dev/null | wc -l); echo $ps_orphans > {seen}; \
         sleep 1.5; grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l > {zombies}",
        seen = dir.s("seen"),
        zombies = dir.s("zombies")
    );
    let out = run_pid1(&["--", "sh", "-c", &script], Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let seen: u32 = std::fs::read_to_string(dir.path("seen")).unwrap().trim().parse().unwrap();
    assert!(seen > 1, "no orphan was ever re-parented to PID 1 ({seen}): the test proves nothing");
    let zombies = std::fs::read_to_string(dir.path("zombies")).unwrap();
    assert_eq!(zombies.trim(), "0", "zombies left under podinit");
}

#[test]
fn subreaper_adopts_and_reaps_orphans() {
    if skip_emulated(NO_SUBREAPER_UNDER_QEMU) {
        return;
    }
    let dir = TempDir::new("subreaper");
    let script = format!(
        "(sleep 1 & echo $! > {orphan}); touch {ready}; sleep 4",
        orphan = dir.s("orphan"),
        ready = dir.s("ready")
    );
    let p = start_child(&["--", "sh", "-c", &script]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let orphan: i32 = std::fs::read_to_string(dir.path("orphan")).unwrap().trim().parse().unwrap();
    let ppid = proc_status(orphan, "PPid").expect("orphan still alive");
    assert_eq!(ppid, p.pid.to_string(), "the orphan was not re-parented to podinit");
    // It dies after 1 s while the main process still runs: podinit must reap it.
    let deadline = Instant::now() + Duration::from_secs(3);
    while proc_status(orphan, "State").is_some() {
        assert!(Instant::now() < deadline, "orphan {orphan} not reaped: {:?}", proc_status(orphan, "State"));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(p.wait(LIMIT).code, 0);
}

#[test]
fn leftovers_are_stopped_and_podinit_exits_at_once() {
    if !can_unshare() {
        return;
    }
    let out = run_pid1(&["--", "sh", "-c", "sleep 100 & sleep 100 & exit 5"], LIMIT);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(out.elapsed < Duration::from_secs(5), "waited {:?} for leftovers that stop on SIGTERM", out.elapsed);
    assert!(out.stderr.contains("Killing:"), "{}", out.stderr);
}

#[test]
fn leftovers_ignoring_sigterm_are_killed_at_the_grace_deadline() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("stubborn-leftover");
    let script = format!("{}exit 6", stubborn_child(&dir));
    let out = run_pid1(&["--grace", "2s", "--", "sh", "-c", &script], LIMIT);
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(out.elapsed >= Duration::from_millis(2000), "SIGKILL came before the grace period: {:?}", out.elapsed);
    assert!(out.elapsed < Duration::from_secs(8), "SIGKILL came late: {:?}", out.elapsed);
    assert!(out.stderr.contains("SIGKILL"), "{}", out.stderr);
}

#[test]
fn subreaper_stops_only_its_own_leftovers() {
    if skip_emulated(NO_SUBREAPER_UNDER_QEMU) {
        return;
    }
    // Not PID 1: leftovers are found through /proc and nothing outside the tree is touched.
    let mut bystander = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let out = start_child(&["--grace", "5s", "--", "sh", "-c", "sleep 100 & exit 7"]).wait(LIMIT);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.elapsed < Duration::from_secs(4), "{:?}", out.elapsed);
    assert!(bystander.try_wait().unwrap().is_none(), "podinit signalled a process outside its tree");
    bystander.kill().unwrap();
    bystander.wait().unwrap();
}

/// Voluntary context switches of `pid` over `span`.
fn wakeups(pid: i32, span: Duration) -> u64 {
    std::thread::sleep(Duration::from_millis(500)); // let start-up settle
    let read = || proc_status(pid, "voluntary_ctxt_switches").and_then(|v| v.parse::<u64>().ok()).expect("status");
    let before = read();
    std::thread::sleep(span);
    read() - before
}

#[test]
fn idle_podinit_never_wakes_up() {
    if !can_unshare() {
        return;
    }
    let p = start_pid1(&["--", "sleep", "30"]);
    let n = wakeups(p.pid, Duration::from_secs(3));
    assert_eq!(n, 0, "idle podinit woke {n} times in 3 s");
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait(LIMIT).code, 143);

    // The same measurement sees tini's once-a-second poll, so it can fail.
    let Some(tini) = ["/usr/bin/tini", "/usr/bin/tini-static"].into_iter().find(|t| std::path::Path::new(t).exists())
    else {
        skip("the tini comparison: tini is not installed");
        return;
    };
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", tini, "--", "sleep", "30"]);
    let mut child = cmd.spawn().unwrap();
    let tini_pid = wait_for_child_of(child.id() as i32);
    let t = wakeups(tini_pid, Duration::from_secs(3));
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(tini_pid, libc::SIGKILL) };
    let _ = child.wait();
    assert!(t >= 2, "tini woke only {t} times in 3 s: the measurement is blind");
}

#[test]
fn parent_death_signal_reaches_podinit() {
    let dir = TempDir::new("pdeath");
    // A shell starts podinit in the background and exits after 0.5 s.
    let script = format!("{bin} -p TERM -- sleep 100 & echo $! > {pid}; sleep 0.5", bin = bin(), pid = dir.s("pid"));
    let status =
        std::process::Command::new("sh").args(["-c", &script]).stderr(std::process::Stdio::null()).status().unwrap();
    assert!(status.success());
    let pid: i32 = std::fs::read_to_string(dir.path("pid")).unwrap().trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match proc_status(pid, "State") {
            None => break,
            Some(s) if s.starts_with('Z') => break,
            Some(_) => {}
        }
        assert!(Instant::now() < deadline, "podinit {pid} outlived its parent despite -p TERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_closed_stderr_never_hurts_the_main_process() {
    // podinit's writes to a closed pipe raise SIGPIPE in podinit itself; that
    // signal must not be forwarded (the main process would die of it).
    let mut child = std::process::Command::new(bin())
        .args(["-vv", "--", "sh", "-c", "sleep 0.5; kill -USR1 1 2>/dev/null; sleep 0.3; exit 5"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // the reader is gone before podinit writes a line
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "podinit hung");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(5), "the main process's status was lost: {status:?}");
}
