//! podinit in a real container runtime: the Containerfile's final stage, built
//! from the locally built static binary, run by podman + runc as PID 1.
//! Skips with a printed reason where podman cannot run; `.ci/run` installs it.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const MUSL: &str = "x86_64-unknown-linux-musl";

struct Podman {
    conf: PathBuf,
    base: PathBuf,
}

impl Podman {
    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &self.conf).args([
            "--runtime",
            "runc",
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--root",
        ]);
        c.arg(self.base.join("root")).arg("--runroot").arg(self.base.join("run"));
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).output().expect("run podman");
        assert!(
            out.status.success(),
            "podman {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn text(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.run(args).stdout).trim().to_string()
    }
}

/// Podman set up as DESIGN.md describes, or None with the reason printed.
fn podman() -> Option<Podman> {
    let base = std::env::temp_dir().join("podinit-podman");
    std::fs::create_dir_all(&base).ok()?;
    let conf = base.join("containers.conf");
    std::fs::write(&conf, "[containers]\ndefault_ulimits = []\n").ok()?;
    let p = Podman { conf, base };
    match p.cmd().arg("info").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            eprintln!("SKIPPED: podman cannot run here: {}", String::from_utf8_lossy(&o.stderr).trim());
            return None;
        }
        Err(e) => {
            eprintln!("SKIPPED: podman is not installed ({e}); `apt-get install podman runc` (.ci/run does)");
            return None;
        }
    }
    if !Path::new("/bin/busybox").exists() {
        eprintln!("SKIPPED: /bin/busybox missing; `apt-get install busybox-static` (.ci/run does)");
        return None;
    }
    Some(p)
}

/// Builds the static release binary in its own target dir (so it never waits
/// on the test build's lock) and returns the directory holding it.
fn static_binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = root.join("target").join("container-test");
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["build", "--release", "--target", MUSL, "--target-dir"])
        .arg(&target)
        .output()
        .expect("run cargo");
    assert!(out.status.success(), "static build failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let dir = target.join(MUSL).join("release");
    let ctx = dir.join("context");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(dir.join("podinit"), ctx.join("podinit")).unwrap();
    ctx
}

/// The Containerfile's final stage with its `build` stage replaced by the
/// local static binary, plus busybox as /bin/sh and /bin/sleep for the tests.
fn build_images(p: &Podman) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let ctx = static_binary();
    p.run(&[
        "build",
        "--build-context",
        &format!("build={}", ctx.display()),
        "-t",
        "localhost/podinit:test",
        "-f",
        &format!("{root}/Containerfile"),
        root,
    ]);
    let dir = TempDir::new("image");
    std::fs::copy("/bin/busybox", dir.path("busybox")).unwrap();
    std::fs::write(
        dir.path("Containerfile"),
        "FROM localhost/podinit:test\nCOPY busybox /bin/sh\nCOPY busybox /bin/sleep\n",
    )
    .unwrap();
    p.run(&["build", "-t", "localhost/podinit-sh:test", &dir.0.to_string_lossy()]);
    "localhost/podinit-sh:test".to_string()
}

fn wait_for_log(p: &Podman, name: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = p.cmd().args(["logs", name]).output().unwrap();
        let logs = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if logs.contains(want) {
            return logs;
        }
        assert!(Instant::now() < deadline, "container {name} never logged {want:?}: {logs}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn podman_stop_yields_the_main_process_status() {
    let Some(p) = podman() else { return };
    let image = build_images(&p);
    let name = format!("podinit-test-{}", std::process::id());
    let _ = p.cmd().args(["rm", "-f", &name]).output();

    // The main process traps SIGTERM and exits 7; it prints its parent, podinit, which must be PID 1.
    let script = "trap 'echo got TERM; exit 7' TERM; echo ppid=$PPID; while :; do sleep 0.1; done";
    p.run(&["run", "-d", "--name", &name, &image, "sh", "-c", script]);
    let logs = wait_for_log(&p, &name, "ppid=");
    assert!(logs.contains("ppid=1\n"), "podinit is not PID 1: {logs}");
    let started = Instant::now();
    p.run(&["stop", "-t", "20", &name]);
    assert!(started.elapsed() < Duration::from_secs(10), "stop took {:?}", started.elapsed());
    let code = p.text(&["inspect", &name, "--format", "{{.State.ExitCode}}"]);
    let logs = wait_for_log(&p, &name, "Exited");
    p.run(&["rm", &name]);
    assert_eq!(code, "7", "{logs}");
    assert!(logs.contains("got TERM") && logs.contains("podinit: Exited: main process"), "{logs}");

    // A main process without a handler dies of the forwarded SIGTERM: 143.
    p.run(&["run", "-d", "--name", &name, &image, "sh", "-c", "echo up; while :; do sleep 0.1; done"]);
    wait_for_log(&p, &name, "up");
    p.run(&["stop", "-t", "20", &name]);
    let code = p.text(&["inspect", &name, "--format", "{{.State.ExitCode}}"]);
    p.run(&["rm", &name]);
    assert_eq!(code, "143");

    // `podman run` returns the main process's own exit code.
    let out = p.cmd().args(["run", "--rm", &image, "sh", "-c", "exit 42"]).output().unwrap();
    assert_eq!(out.status.code(), Some(42), "{}", String::from_utf8_lossy(&out.stderr));
}
