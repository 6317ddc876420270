//! postStart and the preStop stop sequence with podinit as a real PID 1:
//! ordering (PUT OUT_OF_SERVICE -> drain -> stop signal), grace deadlines
//! (docs/lifecycle.md L4), failing, hanging and slow hooks, and real nginx.

mod common;
use common::http::{closed_port, Server};
use common::*;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const LIMIT: Duration = Duration::from_secs(40);

/// A main process that writes `ready`, and on SIGTERM appends the wall-clock
/// arrival time to `term` and exits with `code` (or keeps running with `code` < 0).
fn app(dir: &TempDir, code: i32) -> String {
    let on_term = if code >= 0 { format!("exit {code}") } else { ":".into() };
    format!(
        "trap 'date +%s.%N >> {term}; {on_term}' TERM; touch {ready}; while :; do sleep 0.02; done",
        term = dir.s("term"),
        ready = dir.s("ready")
    )
}

fn secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn term_times(dir: &TempDir) -> Vec<f64> {
    std::fs::read_to_string(dir.path("term"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn post_start_runs_beside_the_main_process() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("poststart");
    let (ready, hook) = (dir.s("ready"), dir.s("hook"));
    // The hook only succeeds once the main process has visibly started.
    let cfg = dir.config(&format!(
            "[[post_start]]\nexec = [\"sh\", \"-c\", \"while [ ! -e {ready} ]; do sleep 0.02; done; echo saw-main > {hook}\"]\n"
        ),
    );
    let p = start_pid1(&["-c", &cfg, "--", "sh", "-c", &app(&dir, 0)]);
    wait_for_file(&dir.path("hook"), "saw-main", Duration::from_secs(10));
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // (Whether "postStart finished" was logged races with our SIGTERM: the hook
    // wrote its file, the proof, and may still be exiting.)
}

#[test]
fn failed_post_start_kills_the_container_through_pre_stop() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("poststart-fail");
    let cfg = dir.config(&format!(
            "[[post_start]]\nname = \"warm-cache\"\nexec = [\"sh\", \"-c\", \"exit 3\"]\n[[pre_stop]]\nexec = [\"touch\", \"{}\"]\n",
            dir.s("pre-stop-ran")
        ),
    );
    let out = run_pid1(&["-c", &cfg, "--", "sh", "-c", &app(&dir, 9)], LIMIT);
    assert_eq!(out.code, 9, "{}", out.stderr);
    assert!(out.stderr.contains("FailedPostStartHook: warm-cache: exec sh -c exit 3: exit code 3"), "{}", out.stderr);
    assert!(dir.path("pre-stop-ran").exists(), "preStop did not run on the kill path (L2)");
    assert_eq!(term_times(&dir).len(), 1, "the main process did not get the stop signal");
}

#[test]
fn ignored_post_start_failure_keeps_the_container() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("poststart-ignore");
    let cfg = dir.config("[[post_start]]\nexec = [\"false\"]\non_failure = \"ignore\"\n");
    let p = start_pid1(&["-c", &cfg, "--", "sh", "-c", &app(&dir, 0)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    std::thread::sleep(Duration::from_millis(500));
    assert!(term_times(&dir).is_empty(), "an ignored postStart failure stopped the container");
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 0);
    assert!(out.stderr.contains("FailedPostStartHook"), "{}", out.stderr);
}

#[test]
fn out_of_service_then_drain_then_stop_signal() {
    if !can_unshare() {
        return;
    }
    let eureka = Server::start(|_, _| 200);
    let dir = TempDir::new("order");
    let cfg = dir.config(&format!(
            "grace_period = \"20s\"\n[[pre_stop]]\neureka = {{ url = \"http://admin:pw@127.0.0.1:{}/eureka\", app = \"orders\", instance = \"h1:orders:8016\" }}\n[[pre_stop]]\nsleep = \"1500ms\"\n",
            eureka.port
        ),
    );
    let p = start_pid1(&["-c", &cfg, "--", "sh", "-c", &app(&dir, 0)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let sent = SystemTime::now();
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let reqs = eureka.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].target, "/eureka/apps/ORDERS/h1:orders:8016/status?value=OUT_OF_SERVICE");
    let put = secs(reqs[0].wall);
    let term = term_times(&dir);
    assert_eq!(term.len(), 1, "{}", out.stderr);
    assert!(put >= secs(sent) && put - secs(sent) < 1.0, "PUT came {:.3}s after SIGTERM", put - secs(sent));
    let drain = term[0] - put;
    assert!(drain >= 1.45, "the stop signal came {drain:.3}s after the PUT, before the 1.5s drain ended");
    assert!(drain < 4.0, "the stop signal came {drain:.3}s after the PUT");
    for reason in ["PreStopStarted", "PreStopFinished", "Killing: sent SIGTERM to main process"] {
        assert!(out.stderr.contains(reason), "{reason}: {}", out.stderr);
    }
    assert!(!out.stderr.contains("pw@"), "{}", out.stderr);
}

#[test]
fn main_ignoring_sigterm_is_killed_at_the_grace_deadline() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("ignore-term");
    let p = start_pid1(&["--grace", "2s", "--", "sh", "-c", &app(&dir, -1)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let (out, took) = p.sigterm_and_wait(LIMIT);
    assert_eq!(out.code, 137, "{}", out.stderr);
    assert_eq!(term_times(&dir).len(), 1, "SIGTERM never reached the main process");
    assert!(took >= Duration::from_millis(1900) && took < Duration::from_secs(6), "{took:?}");
    assert!(out.stderr.contains("grace period over: sending SIGKILL"), "{}", out.stderr);
}

#[test]
fn a_long_pre_stop_still_leaves_two_seconds() {
    if !can_unshare() {
        return;
    }
    // L4: grace 5 s, a preStop of 4 s: the stop signal at ~4 s, SIGKILL 2 s later (not 1 s).
    let dir = TempDir::new("l4");
    let cfg = dir.config("grace_period = \"5s\"\n[[pre_stop]]\nexec = [\"sleep\", \"4\"]\n");
    let p = start_pid1(&["-c", &cfg, "--", "sh", "-c", &app(&dir, -1)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let sent = SystemTime::now();
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    let total = SystemTime::now().duration_since(sent).unwrap().as_secs_f64();
    assert_eq!(out.code, 137, "{}", out.stderr);
    let term = term_times(&dir);
    assert_eq!(term.len(), 1);
    let at = term[0] - secs(sent);
    assert!((3.9..5.0).contains(&at), "stop signal {at:.2}s after SIGTERM");
    let gap = total - at;
    assert!((1.9..3.5).contains(&gap), "SIGKILL {gap:.2}s after the stop signal, L4 says 2s");
}

#[test]
fn a_hanging_pre_stop_is_abandoned_at_the_grace_deadline() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("hang");
    let cfg = dir.config("grace_period = \"2s\"\n[[pre_stop]]\nname = \"stuck\"\nexec = [\"sleep\", \"100\"]\n");
    let p = start_pid1(&["-c", &cfg, "--", "sh", "-c", &app(&dir, 0)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let (out, took) = p.sigterm_and_wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(took >= Duration::from_millis(1900) && took < Duration::from_secs(6), "{:?}", took);
    assert!(out.stderr.contains("abandoned"), "{}", out.stderr);
}

#[test]
fn a_second_sigterm_skips_the_rest_of_pre_stop() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("second");
    let cfg = dir.config("[[pre_stop]]\nsleep = \"30s\"\n");
    let p = start_pid1(&["-c", &cfg, "--", "sh", "-c", &app(&dir, 0)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    p.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(500));
    let second = Instant::now();
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(second.elapsed() < Duration::from_secs(3), "{:?}", second.elapsed());
    assert!(out.stderr.contains("skipped"), "{}", out.stderr);
}

#[test]
fn pre_stop_sleep_without_a_config() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("pss");
    let p = start_pid1(&["--pre-stop-sleep", "1s", "--", "sh", "-c", &app(&dir, 0)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let sent = SystemTime::now();
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let at = term_times(&dir)[0] - secs(sent);
    assert!((0.95..3.0).contains(&at), "stop signal {at:.2}s after SIGTERM with a 1s drain");
}

#[test]
fn main_exiting_during_pre_stop_ends_podinit_with_its_status() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("exit-during");
    let cfg = dir.config("[[pre_stop]]\nsleep = \"30s\"\n");
    // The main process exits by itself 1 s after it starts.
    let p = start_pid1(&["-c", &cfg, "--", "sh", "-c", "trap '' TERM; sleep 1.5; exit 5"]);
    std::thread::sleep(Duration::from_millis(300));
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
}

#[test]
fn a_registry_that_fails_delays_nothing_beyond_its_timeout() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("registry");
    let slow = Server::start(|_, _| {
        std::thread::sleep(Duration::from_secs(20));
        200
    });
    let (e401, e500) = (Server::start(|_, _| 401), Server::start(|_, _| 500));
    let down = closed_port();
    let cases: [(u16, &str); 4] =
        [(down, "refused"), (e401.port, "401 Unauthorized"), (e500.port, "500 Internal Server Error"), (slow.port, "")];
    for (port, want) in cases {
        let cfg = dir.config(&format!(
                "grace_period = \"30s\"\n[[pre_stop]]\neureka = {{ url = \"http://127.0.0.1:{port}/eureka\", app = \"a\", instance = \"i\" }}\ntimeout = \"1s\"\n"
            ),
        );
        let _ = std::fs::remove_file(dir.path("ready"));
        let p = start_pid1(&["-c", &cfg, "--", "sh", "-c", &app(&dir, 0)]);
        wait_for_file(&dir.path("ready"), "", LIMIT);
        let (out, took) = p.sigterm_and_wait(LIMIT);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(took < Duration::from_secs(3), "port {port}: stop took {:?}", took);
        assert!(out.stderr.contains("FailedPreStopHook"), "{}", out.stderr);
        assert!(out.stderr.to_lowercase().contains(&want.to_lowercase()), "{want}: {}", out.stderr);
    }
}

/// Bad input in preStop (issue 4): a hook command that does not exist, a
/// registry host that does not resolve, an instance the registry does not
/// know. Each is one event line naming its action; the sequence goes on to
/// the next action and the stop signal, well within the grace period, and
/// podinit exits with the main process's status.
#[test]
fn bad_pre_stop_actions_each_fail_in_one_line_and_the_stop_completes() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("bad-pre-stop");
    let unknown = Server::start(|_, _| 404);
    let cfg = dir.config(&format!(
        "grace_period = \"20s\"\n\
         [[pre_stop]]\nname = \"flush\"\nexec = [\"/no/such/hook\", \"--now\"]\n\
         [[pre_stop]]\nname = \"deregister-dns\"\neureka = {{ url = \"http://no-such-registry.invalid:8761/eureka\", app = \"a\", instance = \"i\" }}\ntimeout = \"3s\"\n\
         [[pre_stop]]\nname = \"deregister-404\"\neureka = {{ url = \"http://127.0.0.1:{}/eureka\", app = \"a\", instance = \"i\" }}\n\
         [[pre_stop]]\nname = \"drain\"\nsleep = \"300ms\"\n",
        unknown.port
    ));
    let p = start_pid1(&["-c", &cfg, "--", "sh", "-c", &app(&dir, 5)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let (out, took) = p.sigterm_and_wait(LIMIT);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(took < Duration::from_secs(8), "the stop took {:?}", took);
    let failed: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("podinit: FailedPreStopHook: ")).collect();
    assert_eq!(failed.len(), 3, "{}", out.stderr);
    let wants = [("flush", "/no/such/hook"), ("deregister-dns", "no-such-registry.invalid"), ("deregister-404", "404")];
    for (line, (name, want)) in failed.iter().zip(wants) {
        assert!(line.starts_with(&format!("podinit: FailedPreStopHook: {name}: ")), "{line}");
        assert!(line.contains(want), "{want}: {line}");
    }
    assert_eq!(unknown.requests().len(), 1, "the 404 registry was asked once");
    assert!(out.stderr.contains("PreStopFinished"), "{}", out.stderr);
    assert!(out.stderr.contains("Killing: sent SIGTERM to main process"), "{}", out.stderr);
}

#[test]
fn events_as_json_lines() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("json");
    let cfg = dir.config("[[pre_stop]]\nexec = [\"false\"]\n");
    let p = start_pid1(&["--log-format", "json", "-c", &cfg, "--", "sh", "-c", &app(&dir, 0)]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    let reasons: Vec<&str> = out
        .stderr
        .lines()
        .inspect(|l| assert!(l.starts_with("{\"ts\":\"") && l.ends_with('}'), "not JSON: {l}"))
        .filter_map(|l| l.split("\"reason\":\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        reasons,
        ["Started", "PreStopStarted", "FailedPreStopHook", "PreStopFinished", "Killing", "Exited"],
        "{}",
        out.stderr
    );
}

/// Real nginx under podinit: SIGQUIT is its graceful stop; a slow download in
/// flight when the container is stopped must complete, and the status is 0.
#[test]
fn nginx_finishes_in_flight_requests_on_a_graceful_stop() {
    if !can_unshare() {
        return;
    }
    let Some(nginx) = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| std::path::Path::new(p).exists())
    else {
        skip("nginx is not installed (apt-get install nginx-light; scripts/setup.sh does)");
        return;
    };
    let dir = TempDir::new("nginx");
    let port = closed_port();
    let body = vec![b'x'; 300_000];
    std::fs::create_dir_all(dir.path("www")).unwrap();
    std::fs::write(dir.path("www/big"), &body).unwrap();
    let conf = format!(
        "daemon off; pid {pid}; error_log stderr; worker_processes 1; user root;\n\
         events {{ worker_connections 64; }}\n\
         http {{ access_log off; client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};\n\
         server {{ listen 127.0.0.1:{port}; root {www}; location / {{ limit_rate 150k; }} }} }}\n",
        pid = dir.s("nginx.pid"),
        tmp = dir.s("tmp"),
        www = dir.s("www")
    );
    std::fs::write(dir.path("nginx.conf"), conf).unwrap();
    let cfg = dir.config("stop_signal = \"SIGQUIT\"\ngrace_period = \"20s\"\n");
    let p = start_pid1(&["-c", &cfg, "--", nginx, "-c", &dir.s("nginx.conf")]);
    // Wait until nginx accepts, then start a download that takes about 2 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "nginx never listened: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    use std::io::{Read, Write};
    stream.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stream.read_to_end(&mut all);
        all
    });
    std::thread::sleep(Duration::from_millis(500));
    p.signal(libc::SIGTERM);
    let response = reader.join().unwrap();
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("no HTTP header") + 4;
    assert!(response.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&response[..split]));
    assert_eq!(response.len() - split, body.len(), "the in-flight download was cut off");
    assert!(out.stderr.contains("sent SIGQUIT to main process"), "{}", out.stderr);
}
