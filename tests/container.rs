//! podinit in a real container runtime: the Containerfile's final stage, built
//! from the locally built static binary, run by podman + runc as PID 1.
//! Skips with a printed reason where podman cannot run; `.ci/run` installs it.

mod common;
use common::http::Server;
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

/// Podman set up as docs/design.md "Testing" describes, or None with the reason printed.
fn podman() -> Option<Podman> {
    let base = std::env::temp_dir().join("podinit-podman");
    std::fs::create_dir_all(&base).ok()?;
    let conf = base.join("containers.conf");
    std::fs::write(&conf, "[containers]\ndefault_ulimits = []\n").ok()?;
    let p = Podman { conf, base };
    match p.cmd().arg("info").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            skip(&format!("podman cannot run here: {}", String::from_utf8_lossy(&o.stderr).trim()));
            return None;
        }
        Err(e) => {
            skip(&format!("podman is not installed ({e}); `apt-get install podman runc` (.ci/run does)"));
            return None;
        }
    }
    if !Path::new("/bin/busybox").exists() {
        skip("/bin/busybox missing; `apt-get install busybox-static` (.ci/run does)");
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
    static IMAGE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let mut built = IMAGE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(image) = built.as_ref() {
        return image.clone();
    }
    let image = build_images_now(p);
    *built = Some(image.clone());
    image
}

fn build_images_now(p: &Podman) -> String {
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

/// The kubelet's sequence in a real runtime: `podman exec CTR /podinit pre-stop`
/// (the preStop exec hook), then `podman stop` (SIGTERM, SIGKILL after -t).
/// Plus the image's HEALTHCHECK, `podinit status --ready`: unhealthy during an
/// init step, healthy once the main process runs, unhealthy after preStop.
#[test]
fn podman_exec_pre_stop_then_stop_like_the_kubelet() {
    let Some(p) = podman() else { return };
    let base = build_images(&p);
    let eureka = Server::start(|_, _| 200);
    let dir = TempDir::new("kubelet");
    std::fs::write(
        dir.path("podinit.toml"),
        format!(
            "grace_period = \"20s\"\n[[init]]\nsleep = \"2s\"\n[[pre_stop]]\neureka = {{ url = \"http://127.0.0.1:{}/eureka\", app = \"svc\", instance = \"${{HOSTNAME}}:svc:8080\" }}\n[[pre_stop]]\nsleep = \"1500ms\"\n",
            eureka.port
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path("Containerfile"),
        format!(
            "FROM {base}\nCOPY podinit.toml /etc/podinit.toml\nHEALTHCHECK --interval=30s CMD [\"/podinit\", \"status\", \"--ready\"]\n"
        ),
    )
    .unwrap();
    let image = "localhost/podinit-kubelet:test";
    p.run(&["build", "--format", "docker", "-t", image, &dir.0.to_string_lossy()]);
    let name = format!("podinit-kubelet-{}", std::process::id());
    let _ = p.cmd().args(["rm", "-f", &name]).output();
    let script = "trap 'echo graceful exit; exit 0' TERM; echo up; while :; do sleep 0.1; done";
    p.run(&["run", "-d", "--network", "host", "--hostname", "pod-1", "--name", &name, image, "sh", "-c", script]);
    // Unhealthy while the init step holds the main process back...
    let health = p.cmd().args(["healthcheck", "run", &name]).output().unwrap();
    let logs = p.text(&["logs", &name]);
    assert!(!logs.contains("up"), "the main process started within the 2 s init step: {logs}");
    assert!(!health.status.success(), "healthy before the main process runs");
    wait_for_log(&p, &name, "up");

    // ...healthy once it runs.
    let health = p.cmd().args(["healthcheck", "run", &name]).output().unwrap();
    assert!(health.status.success(), "unhealthy: {}", String::from_utf8_lossy(&health.stderr));
    assert_eq!(p.text(&["inspect", &name, "--format", "{{.State.Health.Status}}"]), "healthy");

    let started = Instant::now();
    let hook = p.cmd().args(["exec", &name, "/podinit", "pre-stop"]).output().unwrap();
    let took = started.elapsed();
    assert!(hook.status.success(), "pre-stop failed: {}", String::from_utf8_lossy(&hook.stderr));
    assert!(took >= Duration::from_millis(1450), "pre-stop returned after {took:?}, before the drain");
    let reqs = eureka.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].target, "/eureka/apps/SVC/pod-1:svc:8080/status?value=OUT_OF_SERVICE");
    // Not ready any more once preStop ran.
    let health = p.cmd().args(["healthcheck", "run", &name]).output().unwrap();
    assert!(!health.status.success(), "still healthy after preStop");

    let stopping = Instant::now();
    p.run(&["stop", "-t", "20", &name]);
    assert!(stopping.elapsed() < Duration::from_secs(5), "stop took {:?}", stopping.elapsed());
    let code = p.text(&["inspect", &name, "--format", "{{.State.ExitCode}}"]);
    let logs = wait_for_log(&p, &name, "graceful exit");
    p.run(&["rm", &name]);
    assert_eq!(code, "0", "{logs}");
    assert_eq!(eureka.requests().len(), 1, "SIGTERM sent a second PUT: {logs}");
    assert_eq!(logs.matches("PreStopStarted").count(), 1, "{logs}");
}

/// An image built FROM nginx inherits `STOPSIGNAL SIGQUIT`: `podman stop`
/// sends SIGQUIT to PID 1. With `PODINIT_STOP_ON=SIGTERM,SIGQUIT` in the image,
/// podinit runs preStop first, then the stop signal; without it SIGQUIT is
/// forwarded at once and preStop never runs (what users hit before stop_on).
#[test]
fn an_image_with_stopsignal_sigquit_runs_pre_stop() {
    let Some(p) = podman() else { return };
    let base = build_images(&p);
    let dir = TempDir::new("quit-image");
    std::fs::write(
        dir.path("podinit.toml"),
        "[[pre_stop]]\nexec = [\"sh\", \"-c\", \"echo draining\"]\n[[pre_stop]]\nsleep = \"1500ms\"\n",
    )
    .unwrap();
    let script =
        "trap 'echo got QUIT; exit 0' QUIT; trap 'echo got TERM; exit 0' TERM; echo up; while :; do sleep 0.1; done";
    for (tag, env, drains) in [("with", "ENV PODINIT_STOP_ON=SIGTERM,SIGQUIT\n", true), ("without", "", false)] {
        std::fs::write(
            dir.path("Containerfile"),
            format!("FROM {base}\nCOPY podinit.toml /etc/podinit.toml\nSTOPSIGNAL SIGQUIT\n{env}"),
        )
        .unwrap();
        let image = format!("localhost/podinit-quit-{tag}:test");
        p.run(&["build", "--format", "docker", "-t", &image, &dir.0.to_string_lossy()]);
        let name = format!("podinit-quit-{tag}-{}", std::process::id());
        let _ = p.cmd().args(["rm", "-f", &name]).output();
        p.run(&["run", "-d", "--name", &name, &image, "sh", "-c", script]);
        wait_for_log(&p, &name, "up");
        let started = Instant::now();
        p.run(&["stop", "-t", "20", &name]);
        let took = started.elapsed();
        let logs = wait_for_log(&p, &name, "Exited");
        p.run(&["rm", &name]);
        if drains {
            assert!(logs.contains("PreStopStarted") && logs.contains("draining"), "{logs}");
            assert!(took >= Duration::from_millis(1400), "stop took {took:?}: the drain did not run: {logs}");
            // The stop signal (SIGTERM by default) comes after preStop.
            let drained = logs.find("draining").unwrap();
            assert!(logs.find("got TERM").is_some_and(|t| t > drained), "{logs}");
        } else {
            assert!(!logs.contains("PreStopStarted") && logs.contains("got QUIT"), "{logs}");
        }
    }
}

/// `--cap-drop ALL` (with SETUID/SETGID kept to switch user) and the main
/// process as another user: podinit cannot signal it. It warns at start and
/// reports the failed SIGTERM with pid, user and capability, never "sent";
/// at the grace deadline it exits, and the kernel ends the rest.
#[test]
fn a_container_without_cap_kill_reports_the_failed_kill() {
    let Some(p) = podman() else { return };
    let image = build_images(&p);
    let dir = TempDir::new("capkill");
    std::fs::write(dir.path("podinit.toml"), "grace_period = \"2s\"\n[main]\nuser = \"65534\"\n").unwrap();
    let name = format!("podinit-capkill-{}", std::process::id());
    let _ = p.cmd().args(["rm", "-f", &name]).output();
    let volume = format!("{}:/cfg:ro", dir.0.display());
    let script = "trap 'echo got TERM; exit 0' TERM; echo up; while :; do sleep 0.1; done";
    p.run(&[
        "run",
        "-d",
        "--name",
        &name,
        "--cap-drop",
        "ALL",
        "--cap-add",
        "SETUID",
        "--cap-add",
        "SETGID",
        "-v",
        &volume,
        "-e",
        "PODINIT_CONFIG=/cfg/podinit.toml",
        &image,
        "sh",
        "-c",
        script,
    ]);
    wait_for_log(&p, &name, "up");
    p.run(&["stop", "-t", "20", &name]);
    let code = p.text(&["inspect", &name, "--format", "{{.State.ExitCode}}"]);
    let logs = wait_for_log(&p, &name, "FailedKill");
    p.run(&["rm", &name]);
    assert_eq!(code, "137", "{logs}");
    assert!(logs.contains("lacks the CAP_KILL capability"), "{logs}");
    assert!(logs.lines().any(|l| l.contains("FailedKill") && l.contains("uid 65534")), "{logs}");
    assert!(!logs.contains("Killing: sent SIGTERM"), "a failed kill reported as sent: {logs}");
    assert!(!logs.lines().any(|l| l == "got TERM"), "the main process got SIGTERM after all: {logs}");
}

/// examples/kubernetes/pod.yaml under `podman kube play`, the closest thing to
/// a kubelet on one machine, with the demo image of examples/kubernetes built
/// from the local binary. The app serves; the pod's stop runs podinit's
/// preStop once (one Eureka PUT, the drain) before the app hears SIGTERM.
/// podman 4.3 runs no preStop hook, ignores terminationGracePeriodSeconds and
/// SIGKILLs at once on `kube down` (`Stopping ctr ... (timeout 0)`), so the
/// pod is stopped with `podman pod stop -t` first, as the README says.
#[test]
fn kube_play_runs_pre_stop_once_before_the_app_stops() {
    let Some(p) = podman() else { return };
    build_images(&p); // localhost/podinit:test, the example's `FROM localhost/podinit`
    p.run(&["tag", "localhost/podinit:test", "localhost/podinit:latest"]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes");
    let dir = TempDir::new("kube");
    for f in ["Containerfile", "podinit.toml", "demo-app.sh"] {
        std::fs::copy(root.join(f), dir.path(f)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.path("busybox")).unwrap();
    p.run(&["build", "-t", "localhost/podinit-demo:latest", &dir.0.to_string_lossy()]);

    let eureka = Server::start(|_, _| 200);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let pod = format!("podinit-demo-{}", std::process::id());
    let manifest = std::fs::read_to_string(root.join("pod.yaml"))
        .unwrap()
        .replace("name: podinit-demo\n", &format!("name: {pod}\n"))
        .replace("http://127.0.0.1:8761/eureka", &format!("http://127.0.0.1:{}/eureka", eureka.port))
        .replace("value: \"8080\"", &format!("value: \"{port}\""))
        .replace("value: 5s", "value: 1500ms")
        .replace(
            "        - name: PODINIT_SOCKET\n",
            &format!(
                "        - name: STOP_NOTIFY_URL\n          value: http://127.0.0.1:{}/app-stopping\n        - name: PODINIT_SOCKET\n",
                eureka.port
            ),
        );
    assert!(manifest.contains(&format!("{}/app-stopping", eureka.port)), "pod.yaml changed shape:\n{manifest}");
    std::fs::write(dir.path("pod.yaml"), &manifest).unwrap();
    let yaml = dir.s("pod.yaml");
    let _ = p.cmd().args(["kube", "down", &yaml]).output();
    p.run(&["kube", "play", "--network", "host", &yaml]);

    // The app serves.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = std::net::TcpStream::connect(("127.0.0.1", port)).ok().and_then(|mut s| {
            use std::io::{Read, Write};
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
            let mut body = String::new();
            s.read_to_string(&mut body).ok()?;
            Some(body)
        });
        if page.is_some_and(|b| b.contains("hello from")) {
            break;
        }
        assert!(Instant::now() < deadline, "the demo app never served on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(eureka.requests().is_empty(), "a registry call before the stop: {:?}", eureka.requests());

    let stopping = Instant::now();
    p.run(&["pod", "stop", "-t", "30", &pod]);
    let took = stopping.elapsed();
    let out = p.run(&["logs", &format!("{pod}-app")]);
    let logs = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    p.run(&["kube", "down", &yaml]);
    let reqs = eureka.requests();
    let put = format!("/eureka/apps/DEMO/{pod}:demo:{port}/status?value=OUT_OF_SERVICE");
    let targets: Vec<_> = reqs.iter().map(|r| format!("{} {}", r.method, r.target)).collect();
    assert_eq!(targets, [format!("PUT {put}"), "GET /app-stopping".to_string()], "{logs}");
    let drained = reqs[1].at.duration_since(reqs[0].at);
    assert!(drained >= Duration::from_millis(1400), "the app got SIGTERM {drained:?} after the PUT: {logs}");
    assert!(took < Duration::from_secs(15), "pod stop took {took:?}: {logs}");
    assert_eq!(logs.matches("PreStopStarted").count(), 1, "{logs}");
    assert!(logs.contains("demo-app: got SIGTERM"), "{logs}");
}

/// A sidecar in a real container: `podman stop` (SIGTERM to PID 1) stops the
/// main process first and the sidecar only after it exited, and the
/// container's exit code is the main process's.
#[test]
fn podman_stop_stops_the_sidecar_after_the_main_process() {
    let Some(p) = podman() else { return };
    let image = build_images(&p);
    let dir = TempDir::new("sidecar-ctr");
    std::fs::write(
        dir.path("podinit.toml"),
        "[[init]]\nname = \"agent\"\nexec = [\"sh\", \"-c\", \"trap 'echo agent got TERM; exit 0' TERM; echo agent up; \
         while :; do sleep 0.1; done\"]\nrestart = \"always\"\n[[init.pre_stop]]\nexec = [\"sh\", \"-c\", \"echo agent preStop\"]\n",
    )
    .unwrap();
    let name = format!("podinit-sidecar-{}", std::process::id());
    let _ = p.cmd().args(["rm", "-f", &name]).output();
    let volume = format!("{}:/cfg:ro", dir.0.display());
    let script = "trap 'sleep 0.5; echo main got TERM; exit 4' TERM; echo main up; while :; do sleep 0.1; done";
    p.run(&[
        "run",
        "-d",
        "--name",
        &name,
        "-v",
        &volume,
        "-e",
        "PODINIT_CONFIG=/cfg/podinit.toml",
        &image,
        "sh",
        "-c",
        script,
    ]);
    wait_for_log(&p, &name, "main up");
    wait_for_log(&p, &name, "agent up");
    p.run(&["stop", "-t", "20", &name]);
    let code = p.text(&["inspect", &name, "--format", "{{.State.ExitCode}}"]);
    let logs = wait_for_log(&p, &name, "agent got TERM");
    p.run(&["rm", &name]);
    assert_eq!(code, "4", "{logs}");
    let at = |what: &str| logs.find(what).unwrap_or_else(|| panic!("no {what:?}: {logs}"));
    assert!(at("Started: sidecar agent") < at("Started: main process"), "{logs}");
    assert!(at("agent preStop") < at("agent got TERM"), "{logs}");
    assert!(
        at("main got TERM") < at("agent got TERM"),
        "the sidecar was stopped before the main process exited: {logs}"
    );
}
