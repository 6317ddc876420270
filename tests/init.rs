//! Config-driven start-up with podinit as a real PID 1: init steps in order,
//! wait steps (tcp, http, dns), failing steps, SIGTERM during a step, the
//! eureka action against an emulator, the `user` drop, and `podinit check`.

mod common;
use common::http::{closed_port, Server};
use common::*;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn steps_run_in_order_before_the_main_process() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("order");
    let log = dir.s("log");
    let cfg = dir.config(&format!(
        r#"
[main]
command = ["sh", "-c", "echo main >> {log}"]
[[init]]
name = "one"
exec = ["sh", "-c", "sleep 0.3; echo one >> {log}"]
[[init]]
sleep = "200ms"
[[init]]
name = "two"
exec = ["sh", "-c", "echo two >> {log}"]
"#
    ));
    let out = run_pid1(&["-c", &cfg], LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "one\ntwo\nmain\n");
    let succeeded = out.stderr.lines().filter(|l| l.contains("InitStepSucceeded")).count();
    assert_eq!(succeeded, 3, "{}", out.stderr);
    assert!(out.stderr.contains("step 1/3 one succeeded in"), "{}", out.stderr);
}

#[test]
fn tcp_step_waits_for_a_port_that_opens_later() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("tcp");
    let port = closed_port();
    let cfg = dir.config(&format!(
        "[[init]]\nname = \"wait-for-db\"\ntcp = \"127.0.0.1:{port}\"\ninterval = \"200ms\"\ntimeout = \"20s\"\n"
    ));
    let start = Instant::now();
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let opened = Instant::now();
        let _ = l.accept();
        opened
    });
    let out = run_pid1(&["-c", &cfg, "--", "sh", "-c", "echo main-ran"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("main-ran"));
    let opened = opener.join().unwrap();
    assert!(opened.duration_since(start) >= Duration::from_secs(2));
    assert!(out.elapsed >= Duration::from_secs(2), "main started before the port opened");
    assert!(out.elapsed < Duration::from_secs(8), "{:?}", out.elapsed);
    assert!(out.stderr.contains("InitStepSucceeded: step 1/1 wait-for-db"), "{}", out.stderr);
}

#[test]
fn http_step_retries_until_the_endpoint_is_healthy() {
    if !can_unshare() {
        return;
    }
    let server = Server::start(|_, i| if i < 2 { 503 } else { 200 });
    let dir = TempDir::new("http");
    let cfg = dir.config(&format!(
        "[[init]]\nhttp = {{ url = \"http://127.0.0.1:{}/health\" }}\ninterval = \"300ms\"\n",
        server.port
    ));
    let out = run_pid1(&["-c", &cfg, "--", "true"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3, "503, 503, then 200: {reqs:?}");
    assert!(reqs.iter().all(|r| r.method == "GET" && r.target == "/health"));
    assert!(reqs[1].at.duration_since(reqs[0].at) >= Duration::from_millis(250), "retried faster than interval");
    assert!(out.stderr.contains("503"), "{}", out.stderr);
}

#[test]
fn dns_steps_resolve_or_fail_at_their_timeout() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("dns");
    let marker = dir.s("main-ran");
    let ok = dir.config("[[init]]\ndns = \"localhost\"\n");
    let out = run_pid1(&["-c", &ok, "--", "touch", &marker], LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(dir.path("main-ran").exists());
    std::fs::remove_file(dir.path("main-ran")).unwrap();

    let bad = dir.config("[[init]]\ndns = \"no-such-host.invalid\"\ninterval = \"200ms\"\ntimeout = \"1s\"\n");
    let out = run_pid1(&["-c", &bad, "--", "touch", &marker], LIMIT);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("InitStepFailed") && out.stderr.contains("no-such-host.invalid"), "{}", out.stderr);
    assert!(!dir.path("main-ran").exists(), "the main process ran after a failed step");
}

#[test]
fn failing_exec_step_stops_everything_with_its_code() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("fail");
    let marker = dir.s("ran");
    let cfg = dir.config(&format!(
            "[[init]]\nname = \"migrate\"\nexec = [\"sh\", \"-c\", \"exit 7\"]\n[[init]]\nexec = [\"touch\", \"{marker}.step2\"]\n"
        ),
    );
    let out = run_pid1(&["-c", &cfg, "--", "touch", &marker], LIMIT);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.stderr.contains("InitStepFailed: step 1/2 migrate failed"), "{}", out.stderr);
    assert!(!dir.path("ran").exists() && !dir.path("ran.step2").exists(), "something ran after the failed step");
}

#[test]
fn exec_step_retries_with_back_off() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("retry");
    let count = dir.s("count");
    let cfg = dir.config(&format!(
            "[[init]]\nexec = [\"sh\", \"-c\", \"echo x >> {count}; [ $(wc -l < {count}) -ge 3 ]\"]\nretries = 5\ninterval = \"100ms\"\n"
        ),
    );
    let out = run_pid1(&["-c", &cfg, "--", "true"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 3);
    // Back-off 100 ms then 200 ms.
    assert!(out.elapsed >= Duration::from_millis(300), "{:?}", out.elapsed);
}

#[test]
fn sigterm_during_a_wait_step_exits_143_promptly() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("term-wait");
    let marker = dir.s("ran");
    let cfg = dir.config(&format!("[[init]]\ntcp = \"127.0.0.1:{}\"\ninterval = \"200ms\"\n", closed_port()));
    let p = start_pid1(&["-c", &cfg, "--", "touch", &marker]);
    std::thread::sleep(Duration::from_millis(800));
    let (out, took) = p.sigterm_and_wait(LIMIT);
    assert_eq!(out.code, 143, "{}", out.stderr);
    assert!(took < Duration::from_secs(2), "took {:?}", took);
    assert!(!dir.path("ran").exists());
}

#[test]
fn sigterm_during_an_exec_step_stops_it_and_starts_nothing() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("term-exec");
    let (marker, got) = (dir.s("ran"), dir.s("step-got-term"));
    let ready = dir.s("ready");
    let cfg = dir.config(&format!(
            "[[init]]\nexec = [\"sh\", \"-c\", \"trap 'touch {got}; exit 1' TERM; touch {ready}; while :; do sleep 0.05; done\"]\n"
        ),
    );
    let p = start_pid1(&["-c", &cfg, "--", "touch", &marker]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    let (out, took) = p.sigterm_and_wait(LIMIT);
    assert_eq!(out.code, 143, "{}", out.stderr);
    assert!(took < Duration::from_secs(3), "took {:?}", took);
    assert!(dir.path("step-got-term").exists(), "the step never got the stop signal");
    assert!(!dir.path("ran").exists(), "the main process started after SIGTERM");
}

#[test]
fn eureka_action_puts_the_status_override_with_basic_auth() {
    if !can_unshare() {
        return;
    }
    let eureka = Server::start(|_, _| 200);
    let dir = TempDir::new("eureka");
    let cfg = dir.config(&format!(
            "[[init]]\neureka = {{ url = \"http://admin:s3cret@127.0.0.1:{}/eureka\", app = \"orders-service\", instance = \"h1:orders-service:8016\" }}\n",
            eureka.port
        ),
    );
    let out = run_pid1(&["-c", &cfg, "--", "true"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let reqs = eureka.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].method, "PUT");
    assert_eq!(reqs[0].target, "/eureka/apps/ORDERS-SERVICE/h1:orders-service:8016/status?value=OUT_OF_SERVICE");
    assert_eq!(reqs[0].header("authorization"), Some("Basic YWRtaW46czNjcmV0")); // admin:s3cret
    assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);
}

#[test]
fn eureka_reports_404_and_refused_and_falls_over_to_the_next_url() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("eureka-fail");
    // 404: the instance is not registered.
    let missing = Server::start(|_, _| 404);
    let cfg = dir.config(&format!(
        "[[init]]\neureka = {{ url = \"http://127.0.0.1:{}/eureka\", app = \"a\", instance = \"i\" }}\n",
        missing.port
    ));
    let out = run_pid1(&["-c", &cfg, "--", "true"], LIMIT);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("404 Not Found (instance not registered)"), "{}", out.stderr);

    // Refused connection.
    let down = closed_port();
    let cfg = dir.config(&format!(
        "[[init]]\neureka = {{ url = \"http://u:pw123@127.0.0.1:{down}/eureka\", app = \"a\", instance = \"i\" }}\n"
    ));
    let out = run_pid1(&["-c", &cfg, "--", "true"], LIMIT);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains(&format!("127.0.0.1:{down}")), "{}", out.stderr);
    assert!(out.stderr.to_lowercase().contains("refused"), "{}", out.stderr);
    assert!(!out.stderr.contains("pw123"), "{}", out.stderr);

    // The second server answers when the first is down.
    let up = Server::start(|_, _| 200);
    let cfg = dir.config(&format!(
            "[[init]]\neureka = {{ urls = [\"http://127.0.0.1:{down}/eureka\", \"http://127.0.0.1:{}/eureka/\"], app = \"a\", instance = \"i\" }}\n",
            up.port
        ),
    );
    let out = run_pid1(&["-c", &cfg, "--", "true"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(up.requests().len(), 1);
    assert_eq!(up.requests()[0].target, "/eureka/apps/A/i/status?value=OUT_OF_SERVICE");
}

#[test]
fn user_drop_gives_the_uid_gid_and_groups_asked_for() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("user");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out_file = dir.s("ids");
    let cfg = dir.config(&format!(
            "[main]\ncommand = [\"sh\", \"-c\", \"grep -E '^(Uid|Gid|Groups):' /proc/self/status > {out_file}; echo HOME=$HOME >> {out_file}\"]\nuser = \"4242:4343\"\n"
        ),
    );
    let out = run_pid1(&["-c", &cfg], LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ids = std::fs::read_to_string(&out_file).unwrap();
    assert!(ids.contains("Uid:\t4242\t4242\t4242\t4242"), "{ids}");
    assert!(ids.contains("Gid:\t4343\t4343\t4343\t4343"), "{ids}");
    assert!(ids.lines().any(|l| l.trim_end() == "Groups:\t4343"), "supplementary groups not dropped: {ids}");

    // A named user gets its passwd gid, its groups and its home.
    let out_file = dir.s("ids-nobody");
    let cfg = dir.config(&format!(
            "[main]\ncommand = [\"sh\", \"-c\", \"grep -E '^(Uid|Gid|Groups):' /proc/self/status > {out_file}; echo HOME=$HOME >> {out_file}\"]\nuser = \"nobody\"\n"
        ),
    );
    let out = run_pid1(&["-c", &cfg], LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ids = std::fs::read_to_string(&out_file).unwrap();
    assert!(ids.contains("Uid:\t65534\t"), "{ids}");
    assert!(ids.contains("Gid:\t65534\t"), "{ids}");
    assert!(ids.contains("HOME=/nonexistent"), "{ids}");

    // A named user who is a member of two more groups in /etc/group gets all
    // three; the files are bind-mounted in podinit's own mount namespace.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap() + "podinit-app:x:4500:4500::/srv/app:/bin/sh\n";
    let group = std::fs::read_to_string("/etc/group").unwrap()
        + "podinit-app:x:4500:\npodinit-x1:x:4501:podinit-app\npodinit-x2:x:4502:someone,podinit-app\npodinit-x3:x:4503:someone\n";
    std::fs::write(dir.path("passwd"), passwd).unwrap();
    std::fs::write(dir.path("group"), group).unwrap();
    let out_file = dir.s("ids-app");
    let cfg = dir.config(&format!(
            "[main]\ncommand = [\"sh\", \"-c\", \"grep -E '^(Uid|Gid|Groups):' /proc/self/status > {out_file}; echo HOME=$HOME >> {out_file}\"]\nuser = \"podinit-app\"\n"
        ),
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "sh", "-c"])
        .arg("mount --bind \"$1\" /etc/passwd && mount --bind \"$2\" /etc/group && exec \"$0\" -c \"$3\"")
        .args([bin(), &dir.s("passwd"), &dir.s("group"), &cfg]);
    let out = run_pid1_command(cmd, LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ids = std::fs::read_to_string(&out_file).unwrap();
    assert!(ids.contains("Uid:\t4500\t4500\t4500\t4500"), "{ids}");
    assert!(ids.contains("Gid:\t4500\t4500\t4500\t4500"), "{ids}");
    assert!(ids.lines().any(|l| l.trim_end() == "Groups:\t4500 4501 4502"), "supplementary groups: {ids}");
    assert!(ids.contains("HOME=/srv/app"), "{ids}");
}

#[test]
fn bad_configs_exit_2_naming_file_line_and_key_and_run_nothing() {
    let dir = TempDir::new("badcfg");
    let marker = dir.s("ran");
    let cases = [
        ("grace_period = \"forever\"\n", ":1:16: key `grace_period`", "is not a duration: write seconds like 30"),
        ("[main]\ncommand = [\"x\"]\nuser = \"no-such-user-podinit\"\n", ":3:1: key `user`", "no-such-user-podinit"),
        ("[[pre_stop]]\ntcp = \"db:5432\"\n", ":2:1: key `tcp`", "`tcp` is not allowed in pre_stop"),
        ("[[init]]\nexec = [\"${PODINIT_TEST_UNSET}\"]\n", ":2:", "PODINIT_TEST_UNSET is not set"),
        ("[main\n", ":1:6: [main]", "unclosed table, expected `]`"),
        (
            "[main]\ncommand = \"java -jar\"\n",
            ":2:11: key `command`",
            "invalid type: string \"java -jar\", expected a sequence",
        ),
        ("stop_signal = \"SIGNOPE\"\n", ":1:", "stop_signal"),
        ("bogus = 1\n", ":1:1: key `bogus`", "unknown key; allowed here: grace_period"),
        ("[[init]]\nhttp = { url = \"http://admin:hunter2@h:1/\", verb = \"GET\" }\n", ":2:", "unknown key `verb`"),
        // The second entry is at fault, not the first `[[init]]`.
        (
            "[[init]]\nexec = [\"true\"]\n\n[[init]]\ntcp = \"a:1\"\nretries = 2\n",
            ":6:1: key `retries`",
            "`retries` is for exec",
        ),
    ];
    for (text, line, want) in cases {
        let cfg = dir.config(text);
        let out = std::process::Command::new(bin()).args(["-c", &cfg, "--", "touch", &marker]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {err}");
        assert!(err.contains(&format!("{cfg}{line}")) && err.contains(want), "{text:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one error, one line: {err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(!dir.path("ran").exists(), "{text:?}: the command ran");
    }
    // A config naming no command, with none on the command line.
    let cfg = dir.config("grace_period = 5\n");
    let out = std::process::Command::new(bin()).args(["-c", &cfg]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no command to run"));
    // A missing file.
    let out = std::process::Command::new(bin()).args(["-c", "/no/such.toml", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such.toml: cannot read"));
}

#[test]
fn every_example_config_passes_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = std::process::Command::new(bin())
                .args(["check", "-c"])
                .arg(&path)
                .env("HOSTNAME", "h1")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
            assert!(stdout.contains("grace_period:"), "{stdout}");
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} example configs");
}

#[test]
fn check_prints_the_plan_with_credentials_masked() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/spring-eureka.toml");
    let out = std::process::Command::new(bin())
        .args(["check", "-c"])
        .arg(&path)
        .env("HOSTNAME", "h1")
        .env("EUREKA_PASSWORD", "topsecret")
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(!plan.contains("topsecret") && plan.contains("http://***@eureka:8761/eureka"), "{plan}");
    assert!(plan.contains("/apps/ORDERS-SERVICE/h1:orders-service:8016/status?value=OUT_OF_SERVICE"), "{plan}");
    assert!(plan.contains("init 1: wait-for-db: tcp db:5432, every 2s until 2m"), "{plan}");
    assert!(plan.contains("pre_stop 2: drain: sleep 35s"), "{plan}");
}
