//! Helpers for running the real podinit binary, as a real PID 1 in a new pid
//! namespace (`unshare --pid --fork --mount-proc`) or as a plain child.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The binary under test: `PODINIT_TEST_BINARY` (e.g. the small static build
/// of scripts/build-small.sh), else the one cargo built for these tests.
/// With `PODINIT_TEST_WRAPPER` (e.g. `qemu-aarch64-static`, for the aarch64
/// build on an x86_64 host without binfmt_misc) this is a script that execs
/// `WRAPPER BINARY ARGS...`, so every way a test starts podinit (directly,
/// under unshare, from a shell) goes through the wrapper.
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let binary = std::env::var("PODINIT_TEST_BINARY")
            .ok()
            .filter(|b| !b.is_empty())
            .unwrap_or(env!("CARGO_BIN_EXE_podinit").into());
        let Some(wrapper) = wrapper() else { return binary };
        let script = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("podinit-wrapped-{}", std::process::id()));
        let text = format!("#!/bin/sh\nexec '{wrapper}' '{binary}' \"$@\"\n");
        std::fs::write(&script, text).expect("write the wrapper script");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod the wrapper script");
        script.to_string_lossy().into_owned()
    })
}

/// `PODINIT_TEST_WRAPPER`, when the binary under test runs through one (qemu-user).
pub fn wrapper() -> Option<String> {
    std::env::var("PODINIT_TEST_WRAPPER").ok().filter(|w| !w.is_empty())
}

/// Whether podinit runs under an emulator (`PODINIT_TEST_EMULATED=1`, set by
/// scripts/test.sh for the aarch64 run, or a `PODINIT_TEST_WRAPPER`). Under
/// qemu-user the kernel sees qemu, not podinit: a test of behaviour qemu
/// cannot give calls `skip_emulated` and records itself as skipped.
pub fn emulated() -> bool {
    wrapper().is_some() || std::env::var_os("PODINIT_TEST_EMULATED").is_some_and(|v| v == "1")
}

/// Why subreaper tests skip under qemu (docs/lifecycle.md L28).
pub const NO_SUBREAPER_UNDER_QEMU: &str =
    "qemu-user 7.2 answers prctl(PR_SET_CHILD_SUBREAPER) with EINVAL, so podinit is no subreaper there (L28)";

/// When emulated: records a skip with `why` and returns true (the caller
/// returns). Never counts the test as passed.
pub fn skip_emulated(why: &str) -> bool {
    if emulated() {
        skip(&format!("under qemu-user: {why}"));
    }
    emulated()
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "podinit-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn s(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }

    /// Writes `text` as `podinit.toml` here and returns its path.
    pub fn config(&self, text: &str) -> String {
        std::fs::write(self.path("podinit.toml"), text).expect("write config");
        self.s("podinit.toml")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Records that the running test (or part of it) cannot run on this machine:
/// prints SKIPPED with the reason and appends it to the skip ledger
/// (`$PODINIT_SKIP_LEDGER`, else target/tmp/skipped.txt), which
/// scripts/test.sh reports as skipped, never as passed. With
/// PODINIT_TESTS_STRICT=1 a skip fails the test instead.
pub fn skip(reason: &str) {
    let test = std::thread::current().name().unwrap_or("?").to_string();
    if std::env::var_os("PODINIT_TESTS_STRICT").is_some_and(|v| v == "1") {
        panic!("{test} cannot run here (PODINIT_TESTS_STRICT=1): {reason}");
    }
    eprintln!("SKIPPED ({test}): {reason}");
    let ledger = std::env::var_os("PODINIT_SKIP_LEDGER")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped.txt"));
    let line = format!("{test}: {}\n", reason.replace('\n', " "));
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&ledger)
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    if let Err(e) = written {
        eprintln!("(could not record the skip in {}: {e})", ledger.display());
    }
}

/// A shell prefix for a main process: starts a child that ignores SIGTERM
/// (`sleep 1000`) and goes on only once the child has said so, so the child
/// is a real leftover when the main process exits (a head start in time is
/// lost on a loaded machine).
pub fn stubborn_child(dir: &TempDir) -> String {
    format!(
        "sh -c 'trap \"\" TERM; touch {kid}; exec sleep 1000' & while [ ! -e {kid} ]; do sleep 0.01; done; ",
        kid = dir.s("stubborn-kid")
    )
}

/// Whether this machine lets us create pid namespaces; records a skip if not.
pub fn can_unshare() -> bool {
    let ok = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        skip("`unshare --pid --fork --mount-proc` does not work here (needs root and pid namespaces)");
    }
    ok
}

/// A running podinit and how to reach it.
pub struct Podinit {
    child: Child,
    /// podinit's pid as seen from the test (host pid namespace).
    pub pid: i32,
}

/// Starts podinit as PID 1 of a new pid namespace.
pub fn start_pid1(args: &[&str]) -> Podinit {
    start(unshare(args), true)
}

/// Starts podinit as PID 1 with extra environment variables.
pub fn start_pid1_env(args: &[&str], env: &[(&str, &str)]) -> Podinit {
    let mut cmd = unshare(args);
    cmd.envs(env.iter().copied());
    start(cmd, true)
}

/// Runs podinit as PID 1 with extra environment variables to completion.
pub fn run_pid1_env(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Outcome {
    let mut cmd = unshare(args);
    cmd.envs(env.iter().copied());
    start(cmd, false).wait(limit)
}

/// Starts podinit as PID 1 with its control socket at `dir/pi.sock`, once the socket answers.
pub fn start_pid1_with_socket(dir: &TempDir, args: &[&str]) -> Podinit {
    let sock = dir.s("pi.sock");
    let p = start_pid1_env(args, &[("PODINIT_SOCKET", &sock)]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(Instant::now() < deadline, "the control socket never appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
    p
}

fn unshare(args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", bin()]).args(args);
    cmd
}

/// The `unshare ... podinit ARGS` command, with arguments that need not be UTF-8,
/// for tests that change it (environment, cgroup) before `start_pid1_command`.
pub fn pid1_command<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", bin()]);
    for a in args {
        cmd.arg(a);
    }
    cmd
}

/// Starts a `pid1_command` (podinit as PID 1).
pub fn start_pid1_command(cmd: Command) -> Podinit {
    start(cmd, true)
}

/// Runs a `pid1_command` to completion.
pub fn run_pid1_command(cmd: Command, limit: Duration) -> Outcome {
    start(cmd, false).wait(limit)
}

/// Starts podinit as a plain child of the test (so it is a subreaper, not PID 1).
pub fn start_child(args: &[&str]) -> Podinit {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    start(cmd, false)
}

fn start(mut cmd: Command, via_unshare: bool) -> Podinit {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).env_remove("PODINIT_LOG");
    // A control socket of its own, unless the test names one: podinits of
    // concurrent tests must not meet at /run/podinit.sock.
    if !cmd.get_envs().any(|(k, _)| k == "PODINIT_SOCKET") {
        static N: AtomicUsize = AtomicUsize::new(0);
        let sock = std::env::temp_dir().join(format!(
            "podinit-test-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        cmd.env("PODINIT_SOCKET", sock);
    }
    let child = cmd.spawn().expect("spawn podinit");
    let outer = child.id() as i32;
    let pid = if via_unshare { wait_for_child_of(outer) } else { outer };
    Podinit { child, pid }
}

/// The first child of `parent` (unshare's forked podinit).
pub fn wait_for_child_of(parent: i32) -> i32 {
    let path = format!("/proc/{parent}/task/{parent}/children");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(s) = std::fs::read_to_string(&path) {
            if let Some(p) = s.split_whitespace().next().and_then(|p| p.parse().ok()) {
                return p;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("unshare {parent} started no child");
}

/// What podinit left behind.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Podinit {
    /// podinit's stdout, for a test to drain while it runs (`wait` then reports none).
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// SIGTERM, as `docker stop` sends it, then the outcome and how long the
    /// stop took from the signal.
    pub fn sigterm_and_wait(self, limit: Duration) -> (Outcome, Duration) {
        let sent = Instant::now();
        self.signal(libc::SIGTERM);
        let out = self.wait(limit);
        (out, sent.elapsed())
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory effects.
        assert_eq!(unsafe { libc::kill(self.pid, sig) }, 0, "kill {} {sig}", self.pid);
    }

    /// Waits for podinit to exit (killing it after `limit`, which fails the test).
    pub fn wait(mut self, limit: Duration) -> Outcome {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let mut stdout = String::new();
                let mut stderr = String::new();
                let _ = self.child.stdout.take().map(|mut o| o.read_to_string(&mut stdout));
                let _ = self.child.stderr.take().map(|mut e| e.read_to_string(&mut stderr));
                use std::os::unix::process::ExitStatusExt;
                let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                return Outcome { code, stdout, stderr, elapsed: start.elapsed() };
            }
            if start.elapsed() > limit {
                // Kill the namespace's PID 1 too (it holds the output pipes), then unshare.
                let outer = self.child.id() as i32;
                let inner = std::fs::read_to_string(format!("/proc/{outer}/task/{outer}/children")).unwrap_or_default();
                for pid in inner.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                    // SAFETY: kill has no memory effects.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                // SAFETY: kill has no memory effects.
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("podinit still running after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Podinit {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs podinit as PID 1 to completion.
pub fn run_pid1(args: &[&str], limit: Duration) -> Outcome {
    // The pid is not needed (and a quick podinit may be gone before it could be read).
    start(unshare(args), false).wait(limit)
}

/// Waits until `path` exists and holds `want` (or any content if `want` is empty).
pub fn wait_for_file(path: &Path, want: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let content = std::fs::read_to_string(path).unwrap_or_default();
        if path.exists() && content.contains(want) {
            return content;
        }
        assert!(Instant::now() < deadline, "{} never held {want:?}; it holds {content:?}", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every (pid, state, command line) below `root`, seen from the host's /proc.
pub fn tree(root: i32) -> Vec<(i32, char, String)> {
    let mut found = Vec::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
        for task in tasks.flatten() {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse::<i32>().ok()) {
                let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
                let state = stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next()).unwrap_or('?');
                let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ").trim().to_string();
                found.push((child, state, cmdline));
                todo.push(child);
            }
        }
    }
    found
}

/// Zombies below `root` that are still there 300 ms later: a child that has
/// just exited is a zombie until podinit's next turn, so one look proves nothing.
pub fn lasting_zombies(root: i32) -> Vec<(i32, char, String)> {
    let zombies = |t: Vec<(i32, char, String)>| t.into_iter().filter(|(_, state, _)| *state == 'Z').collect::<Vec<_>>();
    let first = zombies(tree(root));
    if first.is_empty() {
        return first;
    }
    std::thread::sleep(Duration::from_millis(300));
    let again = zombies(tree(root));
    first.into_iter().filter(|z| again.iter().any(|a| a.0 == z.0)).collect()
}

/// A field of /proc/PID/status, e.g. `voluntary_ctxt_switches`.
pub fn proc_status(pid: i32, field: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(|v| v.trim().to_string()))
}
pub mod http;

/// Runs `podinit ARGS` as a client alone in a new pid namespace (with its own
/// /proc), so that no podinit of a concurrent test is visible: a container in
/// which no podinit runs. Returns (exit code, stdout, stderr).
pub fn isolated_verb(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", bin()])
        .args(args)
        .envs(env.iter().copied())
        .env_remove("PODINIT_LOG")
        .output()
        .expect("run unshare");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
