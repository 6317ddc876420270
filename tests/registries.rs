//! The `nacos` and `consul` preStop actions (docs/lifecycle.md L37,
//! L38) against emulators that check every request, and the restore of
//! each registry action (L39). Most run the real binary's standalone
//! `podinit pre-stop -c FILE` (no podinit running); one runs podinit as PID 1.

mod common;
use common::http::{closed_port, Consul, Nacos, Reply, Server};
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(40);

/// `podinit pre-stop -c cfg` in a container where no podinit runs (its own
/// pid namespace: podinits of concurrent tests are not visible): (exit code, stderr).
fn pre_stop(dir: &TempDir, cfg: &str) -> (i32, String) {
    let sock = dir.s("nobody.sock");
    let (code, _, err) = isolated_verb(&["pre-stop", "-c", cfg], &[("PODINIT_SOCKET", &sock)]);
    assert_ne!(code, 101, "panicked: {err}");
    (code, err)
}

fn check(cfg: &str) -> (i32, String) {
    let out = Command::new(bin()).args(["check", "-c", cfg]).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// A `nacos` entry for the emulator's instance, with `extra` keys.
fn nacos_entry(n: &Nacos, extra: &str) -> String {
    format!(
        "[[pre_stop]]\nnacos = {{ url = \"{}\", service = \"orders\", ip = \"10.0.0.7\", port = 8080{extra} }}\ntimeout = \"5s\"\n",
        n.base()
    )
}

const AUTH: &str = ", username = \"nacos\", password = \"N4cosS3cret\"";

fn targets(n: &Nacos) -> Vec<String> {
    n.server.requests().iter().map(|r| format!("{} {}", r.method, r.target)).collect()
}

#[test]
fn nacos_v1_without_and_with_auth_disables_by_a_partial_update() {
    for auth in [None, Some(("nacos", "N4cosS3cret"))] {
        let n = Nacos::start(&["v1"], auth);
        let dir = TempDir::new("nacos-v1");
        let cfg = dir.config(&nacos_entry(&n, &format!(", api = \"v1\"{}", if auth.is_some() { AUTH } else { "" })));
        let (code, err) = pre_stop(&dir, &cfg);
        assert_eq!(code, 0, "{err}");
        assert_eq!(n.errors(), Vec::<String>::new());
        let i = n.instance();
        assert!(!i.enabled, "{:?}", targets(&n));
        assert_eq!(
            (i.weight, i.metadata.as_str()),
            (2.5, "{\"zone\":\"a\"}"),
            "a full update reset weight or metadata"
        );
        let reqs = n.server.requests();
        let last = reqs.last().unwrap();
        assert_eq!((last.method.as_str(), last.path()), ("PATCH", "/nacos/v1/ns/instance"));
        assert_eq!(last.param("enabled").as_deref(), Some("false"));
        assert_eq!(last.param("groupName").as_deref(), Some("DEFAULT_GROUP"));
        match auth {
            None => assert_eq!(reqs.len(), 1, "{:?}", targets(&n)),
            Some(_) => {
                assert_eq!(reqs.len(), 2, "{:?}", targets(&n));
                assert_eq!((reqs[0].method.as_str(), reqs[0].path()), ("POST", "/nacos/v1/auth/login"));
                assert_eq!(reqs[0].body, "username=nacos&password=N4cosS3cret");
                assert_eq!(last.param("accessToken").as_deref(), Some("eyJhbGciOiJIUzI1NiJ9.tok1"));
                assert!(!err.contains("N4cosS3cret") && !err.contains("eyJhbGci"), "{err}");
            }
        }
    }
}

#[test]
fn nacos_v1_without_credentials_on_an_auth_server_says_to_set_them() {
    let n = Nacos::start(&["v1"], Some(("nacos", "N4cosS3cret")));
    let dir = TempDir::new("nacos-noauth");
    let (code, err) = pre_stop(&dir, &dir.config(&nacos_entry(&n, ", api = \"v1\"")));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("403 user not found!: the server wants a login: set username and password"), "{err}");
    let wrong = dir.config(&nacos_entry(&n, ", api = \"v1\", username = \"nacos\", password = \"wrong\""));
    let (code, err) = pre_stop(&dir, &wrong);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("login as nacos") && err.contains("unknown user!"), "{err}");
    assert!(n.instance().enabled);
}

#[test]
fn nacos_v2_reads_the_weight_patches_and_insists_on_code_zero() {
    let n = Nacos::start(&["v2"], Some(("nacos", "N4cosS3cret")));
    let dir = TempDir::new("nacos-v2");
    let cfg = dir.config(&nacos_entry(&n, &format!(", api = \"v2\"{AUTH}")));
    let (code, err) = pre_stop(&dir, &cfg);
    assert_eq!(code, 0, "{err}");
    assert_eq!(n.errors(), Vec::<String>::new());
    let t = targets(&n);
    assert!(t[0].starts_with("POST /nacos/v1/auth/login"), "{t:?}");
    assert!(t[1].starts_with("GET /nacos/v2/ns/instance?"), "{t:?}");
    assert!(t[2].starts_with("PATCH /nacos/v2/ns/instance?serviceName=DEFAULT_GROUP%40%40orders&"), "{t:?}");
    let i = n.instance();
    assert!(!i.enabled && i.weight == 2.5, "{i:?}");
    // HTTP 200 whose JSON `code` is not 0 is a failure, quoting Nacos's message.
    n.state.lock().unwrap().fault =
        Some(Reply::json(200, r#"{"code":21000,"message":"service not found","data":"service orders is not exist"}"#));
    let (code, err) = pre_stop(&dir, &cfg);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("200 but Nacos says code 21000: service not found: service orders is not exist"), "{err}");
    assert_eq!(err.lines().filter(|l| l.contains("FailedPreStopHook")).count(), 1, "{err}");
}

#[test]
fn nacos_v3_admin_api_with_the_token_in_a_header() {
    let n = Nacos::start(&["v3"], Some(("nacos", "N4cosS3cret")));
    let dir = TempDir::new("nacos-v3");
    let (code, err) = pre_stop(&dir, &dir.config(&nacos_entry(&n, &format!(", api = \"v3\"{AUTH}"))));
    assert_eq!(code, 0, "{err}");
    assert_eq!(n.errors(), Vec::<String>::new());
    let reqs = n.server.requests();
    assert_eq!(reqs.len(), 2, "{:?}", targets(&n));
    assert_eq!(reqs[0].path(), "/nacos/v3/auth/user/login");
    assert_eq!((reqs[1].method.as_str(), reqs[1].path()), ("PUT", "/nacos/v3/admin/ns/instance/partial"));
    assert_eq!(reqs[1].header("accessToken"), Some("eyJhbGciOiJIUzI1NiJ9.tok1"));
    assert!(!n.instance().enabled);
    // Deregistration: DELETE on the admin path.
    let n = Nacos::start(&["v3"], None);
    let (code, err) = pre_stop(&dir, &dir.config(&nacos_entry(&n, ", api = \"v3\", mode = \"deregister\"")));
    assert_eq!(code, 0, "{err}");
    assert_eq!(targets(&n)[0].split('?').next(), Some("DELETE /nacos/v3/admin/ns/instance"));
    assert!(n.state.lock().unwrap().instances.is_empty());
}

#[test]
fn nacos_auto_finds_the_api_that_answers_and_remembers_it() {
    // A 1.x server: v3 and v2 answer 404 (Spring's, not Nacos's); two actions.
    let n = Nacos::start(&["v1"], None);
    let dir = TempDir::new("nacos-auto");
    let two = format!("{}{}", nacos_entry(&n, ""), nacos_entry(&n, ", mode = \"deregister\""));
    let (code, err) = pre_stop(&dir, &dir.config(&two));
    assert_eq!(code, 0, "{err}");
    let t: Vec<String> = targets(&n).iter().map(|t| t.split('?').next().unwrap().to_string()).collect();
    assert_eq!(
        t,
        [
            "PUT /nacos/v3/admin/ns/instance/partial",
            "GET /nacos/v2/ns/instance",
            "PATCH /nacos/v1/ns/instance",
            "DELETE /nacos/v1/ns/instance"
        ],
        "the second action should go straight to v1"
    );
    // A 3.x server: the first try answers.
    let n = Nacos::start(&["v3"], Some(("nacos", "N4cosS3cret")));
    let (code, err) = pre_stop(&dir, &dir.config(&nacos_entry(&n, AUTH)));
    assert_eq!(code, 0, "{err}");
    let t = targets(&n);
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(
        t[0].starts_with("POST /nacos/v3/auth/user/login")
            && t[1].starts_with("PUT /nacos/v3/admin/ns/instance/partial")
    );
    // A 3.x server that refuses the old admin APIs with 410 when v1 is asked for by name.
    let n = Nacos::start(&["v3"], None);
    n.state.lock().unwrap().apis = vec!["v3"];
    let (code, err) = pre_stop(&dir, &dir.config(&nacos_entry(&n, ", api = \"v1\"")));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no Nacos API answered") && err.contains("check url"), "{err}");
}

#[test]
fn nacos_logs_in_once_for_two_actions_and_again_when_the_token_is_refused() {
    let n = Nacos::start(&["v1"], Some(("nacos", "N4cosS3cret")));
    let dir = TempDir::new("nacos-login");
    let e = nacos_entry(&n, &format!(", api = \"v1\"{AUTH}"));
    let (code, err) = pre_stop(&dir, &dir.config(&format!("{e}{e}")));
    assert_eq!(code, 0, "{err}");
    assert_eq!(n.state.lock().unwrap().logins, 1, "{:?}", targets(&n));
    // The server forgets the token (restart, expiry) between two actions: a 403, one login more.
    let cfg = dir.config(&format!("{e}[[pre_stop]]\nsleep = \"1500ms\"\n{e}"));
    let n2 = n.state.clone();
    let before = n.server.requests().len();
    let forget = std::thread::spawn(move || {
        let deadline = Instant::now() + LIMIT;
        while n2.lock().unwrap().logins < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(500));
        n2.lock().unwrap().tokens.clear();
    });
    let (code, err) = pre_stop(&dir, &cfg);
    forget.join().unwrap();
    assert_eq!(code, 0, "{err}");
    let t: Vec<String> = targets(&n)[before..].iter().map(|t| t.split('?').next().unwrap().to_string()).collect();
    assert_eq!(
        t,
        [
            "POST /nacos/v1/auth/login",
            "PATCH /nacos/v1/ns/instance",
            "PATCH /nacos/v1/ns/instance",
            "POST /nacos/v1/auth/login",
            "PATCH /nacos/v1/ns/instance"
        ]
    );
}

#[test]
fn nacos_failures_are_one_line_and_the_sequence_goes_on() {
    let dir = TempDir::new("nacos-faults");
    let done = dir.s("next-ran");
    let next = format!("[[pre_stop]]\nexec = [\"touch\", \"{done}\"]\n");
    let cases: [(Option<Reply>, &str, &str); 5] = [
        (None, ", api = \"v2\", port = 9999", "404 instance not found: resource not found: no matched ip found!"),
        (
            None,
            ", api = \"v1\", port = 9999",
            "404 instance not found: caused: errCode: 404, errMsg: no matched ip found!",
        ),
        (Some(Reply::Answer(500, "caused: boom".into())), ", api = \"v1\"", "500 Internal Server Error: caused: boom"),
        (Some(Reply::Garbage), ", api = \"v3\"", "not an HTTP answer"),
        (Some(Reply::Hang), ", api = \"v3\"", "no answer within"),
    ];
    for (fault, extra, want) in cases {
        let n = Nacos::start(&["v1", "v2", "v3"], None);
        n.state.lock().unwrap().fault = fault;
        let _ = std::fs::remove_file(&done);
        // `port` given twice is a TOML error: the case's port replaces the entry's.
        let entry =
            nacos_entry(&n, extra).replace("port = 8080, api", "api").replace("timeout = \"5s\"", "timeout = \"1s\"");
        let entry = if extra.contains("port") { entry } else { nacos_entry(&n, extra).replace("\"5s\"", "\"1s\"") };
        let started = Instant::now();
        let (code, err) = pre_stop(&dir, &dir.config(&format!("{entry}{next}")));
        assert_eq!(code, 1, "{want}: {err}");
        assert!(err.contains(want), "{want}: {err}");
        assert_eq!(err.lines().filter(|l| l.contains("FailedPreStopHook")).count(), 1, "{err}");
        assert!(dir.path("next-ran").exists(), "{want}: the next action did not run");
        assert!(started.elapsed() < Duration::from_secs(10), "{want}: took {:?}", started.elapsed());
    }
}

#[test]
fn consul_maintenance_and_deregister_with_the_token_from_a_file() {
    let c = Consul::start(Some("C0nsulT0ken"), None);
    let dir = TempDir::new("consul");
    std::fs::write(dir.path("token"), "  C0nsulT0ken\n").unwrap();
    let entry = |extra: &str| {
        format!(
            "[[pre_stop]]\nconsul = {{ url = \"{}\", service_id = \"web-1\", token_file = \"{}\"{extra} }}\n",
            c.base(),
            dir.s("token")
        )
    };
    let (code, err) = pre_stop(&dir, &dir.config(&entry("")));
    assert_eq!(code, 0, "{err}");
    assert_eq!(*c.maintenance.lock().unwrap(), ["web-1"]);
    let reqs = c.server.requests();
    assert_eq!(reqs[0].method, "PUT");
    assert_eq!(reqs[0].target, "/v1/agent/service/maintenance/web-1?enable=true&reason=podinit%20preStop");
    assert_eq!(reqs[0].header("X-Consul-Token"), Some("C0nsulT0ken"));
    assert!(!err.contains("C0nsulT0ken"), "{err}");
    let (code, err) = pre_stop(&dir, &dir.config(&entry(", mode = \"deregister\", reason = \"x\"")));
    assert_eq!(code, 0, "{err}");
    assert_eq!(c.server.requests()[1].target, "/v1/agent/service/deregister/web-1");
    assert!(c.errors.lock().unwrap().is_empty(), "{:?}", c.errors.lock().unwrap());
    // The service is gone now: the agent's 404 says which agent and id to check.
    let (code, err) = pre_stop(&dir, &dir.config(&entry("")));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Unknown service ID") && err.contains("the agent the service registered with"), "{err}");
}

#[test]
fn consul_403_says_what_the_token_needs() {
    let c = Consul::start(Some("right"), None);
    let dir = TempDir::new("consul-403");
    for (token, want) in [
        (", token = \"C0nsulWr0ng\"", "check that the token has service:write on 'web-1'"),
        ("", "no token was sent: set token or token_file"),
    ] {
        let cfg = dir
            .config(&format!("[[pre_stop]]\nconsul = {{ url = \"{}\", service_id = \"web-1\"{token} }}\n", c.base()));
        let (code, err) = pre_stop(&dir, &cfg);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("403 Permission denied") && err.contains(want), "{err}");
        assert!(!err.contains("C0nsulWr0ng"), "{err}");
    }
    let c = Consul::start(None, Some(Reply::Answer(500, "rpc error".into())));
    let cfg = dir.config(&format!("[[pre_stop]]\nconsul = {{ url = \"{}\", service_id = \"web-1\" }}\n", c.base()));
    let (code, err) = pre_stop(&dir, &cfg);
    assert_eq!(code, 1);
    assert!(err.contains("500 Internal Server Error rpc error"), "{err}");
    let cfg = dir.config(&format!(
        "[[pre_stop]]\nconsul = {{ url = \"http://127.0.0.1:{}\", service_id = \"web-1\", token_file = \"{}\" }}\n",
        c.server.port,
        dir.s("no-such-token")
    ));
    let (code, err) = pre_stop(&dir, &cfg);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read token_file"), "{err}");
}

/// Each registry's restore (L39), run through the library hook the
/// supervisor's restart path is to use: Eureka `DELETE ...?value=UP`, Nacos
/// `enabled=true`, Consul `enable=false`; a 404 is nothing to undo; a
/// deregistration has no undo.
#[test]
fn each_registry_action_is_undone() {
    let eureka = Server::start(|r, _| if r.target.contains("/GONE/") { 404 } else { 200 });
    let n = Nacos::start(&["v3"], Some(("nacos", "N4cosS3cret")));
    let c = Consul::start(Some("C0nsulT0ken"), None);
    let dir = TempDir::new("restore");
    let cfg = dir.config(&format!(
        "[[pre_stop]]\neureka = {{ url = \"http://127.0.0.1:{e}/eureka\", app = \"orders\", instance = \"h1:orders:8016\" }}\n\
         [[pre_stop]]\neureka = {{ url = \"http://127.0.0.1:{e}/eureka\", app = \"gone\", instance = \"x\" }}\n\
         {nacos}\
         [[pre_stop]]\nconsul = {{ url = \"{consul}\", service_id = \"web-1\", token = \"C0nsulT0ken\" }}\n\
         [[pre_stop]]\nconsul = {{ url = \"{consul}\", service_id = \"web-1\", mode = \"deregister\" }}\n",
        e = eureka.port,
        nacos = nacos_entry(&n, AUTH),
        consul = c.base()
    ));
    // As after a preStop: the instance disabled, the service in maintenance.
    let mut i = n.instance();
    i.enabled = false;
    n.state.lock().unwrap().instances = vec![i];
    c.maintenance.lock().unwrap().push("web-1".into());
    let (before_e, before_c) = (eureka.requests().len(), c.server.requests().len());
    let results = podinit::restore_registries(std::path::Path::new(&cfg)).unwrap();
    assert_eq!(results.len(), 4, "a deregistration has no undo: {results:?}");
    assert!(results.iter().all(|(_, ok, _)| *ok), "{results:?}");
    assert!(results[1].2.contains("nothing to undo"), "{results:?}");
    let e = &eureka.requests()[before_e..];
    assert_eq!(
        (e[0].method.as_str(), e[0].target.as_str()),
        ("DELETE", "/eureka/apps/ORDERS/h1:orders:8016/status?value=UP")
    );
    assert!(n.instance().enabled, "nacos not re-enabled");
    let last = n.server.requests().last().unwrap().clone();
    assert_eq!((last.path(), last.param("enabled").as_deref()), ("/nacos/v3/admin/ns/instance/partial", Some("true")));
    assert_eq!(c.server.requests()[before_c].target, "/v1/agent/service/maintenance/web-1?enable=false");
    assert!(c.maintenance.lock().unwrap().is_empty());
    // Undo against a registry that no longer knows the instance: nothing to undo.
    n.state.lock().unwrap().instances.clear();
    c.maintenance.lock().unwrap().clear();
    let results = podinit::restore_registries(std::path::Path::new(&cfg)).unwrap();
    assert!(results.iter().all(|(_, ok, _)| *ok), "{results:?}");
    assert!(results[2].2.contains("nothing to undo"), "{results:?}");
    assert_eq!(n.errors(), Vec::<String>::new());
    // `check` shows what would be undone, and no secret.
    let (code, plan) = check(&cfg);
    assert_eq!(code, 0, "{plan}");
    assert_eq!(plan.matches("undone when the main process is restarted").count(), 4, "{plan}");
    assert!(plan.contains("eureka DELETE {http://127.0.0.1:") && plan.contains("status?value=UP"), "{plan}");
    assert!(plan.contains("nacos enabled=true DEFAULT_GROUP@@orders 10.0.0.7:8080"), "{plan}");
    assert!(plan.contains("consul PUT") && plan.contains("enable=false [X-Consul-Token: ***]"), "{plan}");
    assert!(!plan.contains("N4cosS3cret") && !plan.contains("C0nsulT0ken"), "{plan}");
}

/// As PID 1: SIGTERM runs the nacos and consul actions before the stop signal.
#[test]
fn pid1_takes_the_instance_out_on_sigterm() {
    if !can_unshare() {
        return;
    }
    let n = Nacos::start(&["v2"], Some(("nacos", "N4cosS3cret")));
    let c = Consul::start(None, None);
    let dir = TempDir::new("reg-pid1");
    let cfg = dir.config(&format!(
        "grace_period = \"20s\"\n{}[[pre_stop]]\nconsul = {{ url = \"{}\", service_id = \"web-1\" }}\n",
        nacos_entry(&n, AUTH),
        c.base()
    ));
    let app = format!(
        "trap 'touch {t}; exit 0' TERM; touch {r}; while :; do sleep 0.02; done",
        t = dir.s("term"),
        r = dir.s("ready")
    );
    let p = start_pid1(&["-v", "-c", &cfg, "--", "sh", "-c", &app]);
    wait_for_file(&dir.path("ready"), "", LIMIT);
    p.signal(libc::SIGTERM);
    let out = p.wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(dir.path("term").exists());
    assert!(!n.instance().enabled);
    assert_eq!(*c.maintenance.lock().unwrap(), ["web-1"]);
    // Both before the stop signal reached the main process.
    let term = std::fs::metadata(dir.path("term")).unwrap().modified().unwrap();
    let last = n.server.requests().last().unwrap().wall.max(c.server.requests()[0].wall);
    assert!(last <= term, "a registry request came after the stop signal");
    assert!(!out.stderr.contains("N4cosS3cret") && !out.stderr.contains("eyJhbGci"), "{}", out.stderr);
}

/// Passwords, tokens from a login, `accessToken` values and `X-Consul-Token`
/// never appear: not in `check`, not in failing `pre-stop`, not in events as
/// text or JSON.
#[test]
fn registry_credentials_appear_in_no_output() {
    const SECRETS: [&str; 3] = ["N4cosS3cret", "eyJhbGciOiJIUzI1NiJ9", "C0nsulT0ken"];
    let clean = |what: &str, text: &str| {
        for s in SECRETS {
            assert!(!text.contains(s), "{what} shows the secret {s}: {text}");
        }
    };
    let n = Nacos::start(&["v1", "v3"], Some(("nacos", "N4cosS3cret")));
    n.state.lock().unwrap().fault =
        Some(Reply::Answer(500, "caused: token=eyJhbGciOiJIUzI1NiJ9.x password=N4cosS3cret".into()));
    let c = Consul::start(Some("other"), None);
    let dir = TempDir::new("reg-secrets");
    std::fs::write(dir.path("token"), "C0nsulT0ken").unwrap();
    let cfg = dir.config(&format!(
        "{}{}[[pre_stop]]\nconsul = {{ url = \"{}\", service_id = \"web-1\", token = \"C0nsulT0ken\" }}\n\
         [[pre_stop]]\nconsul = {{ url = \"http://127.0.0.1:{}\", service_id = \"web-1\", token_file = \"{}\" }}\n",
        nacos_entry(&n, &format!(", api = \"v1\"{AUTH}")),
        nacos_entry(&n, &format!(", api = \"v3\"{AUTH}")),
        c.base(),
        closed_port(),
        dir.s("token")
    ));
    let (code, plan) = check(&cfg);
    assert_eq!(code, 0, "{plan}");
    clean("check", &plan);
    assert!(plan.contains("[password: ***]"), "{plan}");
    let (code, err) = pre_stop(&dir, &cfg);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.matches("FailedPreStopHook").count(), 4, "{err}");
    clean("standalone pre-stop", &err);
    if !can_unshare() {
        return;
    }
    for format in ["text", "json"] {
        let ready = dir.s("ready");
        let _ = std::fs::remove_file(&ready);
        let app = format!("trap 'exit 0' TERM; touch {ready}; while :; do sleep 0.02; done");
        let p = start_pid1_with_socket(&dir, &["-vvv", "--log-format", format, "-c", &cfg, "--", "sh", "-c", &app]);
        wait_for_file(&dir.path("ready"), "", LIMIT);
        // `podinit pre-stop` through the socket, then `status` (text and JSON).
        let sock = dir.s("pi.sock");
        let verb = |args: &[&str]| {
            let out = Command::new(bin()).args(args).env("PODINIT_SOCKET", &sock).output().unwrap();
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
        };
        let answer = verb(&["pre-stop"]);
        assert!(answer.contains("fail") || answer.contains("403"), "{answer}");
        clean("pre-stop through the socket", &answer);
        for args in [&["status"][..], &["status", "--json"]] {
            let s = verb(args);
            assert!(s.contains("FailedPreStopHook"), "{s}");
            clean("status", &s);
        }
        p.signal(libc::SIGTERM);
        let out = p.wait(LIMIT);
        assert!(out.stderr.contains("FailedPreStopHook"), "{}", out.stderr);
        clean(&format!("stderr ({format})"), &out.stderr);
        clean(&format!("stdout ({format})"), &out.stdout);
    }
    // The secrets did reach the servers.
    assert!(n.server.requests().iter().any(|r| r.param("accessToken").is_some_and(|t| t.starts_with(SECRETS[1]))));
    assert!(c.server.requests().iter().any(|r| r.header("X-Consul-Token") == Some("C0nsulT0ken")));
}

/// The examples for the registries pass `podinit check` and say what they send.
#[test]
fn registry_examples_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for (file, want) in [
        ("spring-nacos.toml", "nacos enabled=false"),
        ("consul.toml", "consul PUT"),
        ("spring-actuator.toml", "http POST http://127.0.0.1:8080/actuator/serviceregistry"),
    ] {
        let path = root.join(file);
        let out = Command::new(bin())
            .args(["check", "-c"])
            .arg(&path)
            .env("HOSTNAME", "h1")
            .env("POD_IP", "10.0.0.7")
            .env("HOST_IP", "10.0.0.1")
            .env("NACOS_PASSWORD", "N4cosS3cret")
            .output()
            .unwrap();
        let plan = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{file}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(plan.contains(want), "{file}: {plan}");
        assert!(!plan.contains("N4cosS3cret"), "{file}: {plan}");
    }
}

/// Restore on restart in place (docs/lifecycle.md L39), podinit as PID 1: a
/// liveness failure runs preStop (OUT_OF_SERVICE), the main process is
/// restarted, and the override is undone (`DELETE .../status?value=UP`) only
/// once the new main process's readiness probe passes.
#[test]
fn a_restart_in_place_undoes_the_override_once_ready() {
    if !can_unshare() {
        return;
    }
    let eureka = Server::start(|_, _| 200);
    let dir = TempDir::new("restore-pid1");
    let (alive, ready) = (dir.s("alive"), dir.s("ready"));
    std::fs::write(&alive, "").unwrap();
    std::fs::write(&ready, "").unwrap();
    let cfg = dir.config(&format!(
        "restart = \"always\"\n[backoff]\ninitial = \"200ms\"\n\
         [[pre_stop]]\neureka = {{ url = \"http://127.0.0.1:{}/eureka\", app = \"svc\", instance = \"h:svc:1\" }}\n\
         [probe.liveness]\nexec = [\"test\", \"-e\", \"{alive}\"]\nperiod = \"200ms\"\nfailure_threshold = 1\n\
         initial_delay = \"1s\"\n[probe.readiness]\nexec = [\"test\", \"-e\", \"{ready}\"]\nperiod = \"200ms\"\n",
        eureka.port
    ));
    let p = start_pid1(&["-c", &cfg, "--", "sh", "-c", "while :; do sleep 0.05; done"]);
    std::thread::sleep(Duration::from_millis(1500)); // past liveness's initial delay
    std::fs::remove_file(&ready).unwrap(); // the restarted process will not be ready at first
    std::fs::remove_file(&alive).unwrap(); // liveness fails: preStop, stop, restart
    let deadline = Instant::now() + Duration::from_secs(10);
    while eureka.requests().is_empty() {
        assert!(Instant::now() < deadline, "no preStop PUT");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(&alive, "").unwrap();
    std::thread::sleep(Duration::from_millis(1500)); // restarted, running, not ready
    let reqs = eureka.requests();
    assert_eq!(reqs.len(), 1, "undone before the new process was ready: {reqs:?}");
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].target.as_str()),
        ("PUT", "/eureka/apps/SVC/h:svc:1/status?value=OUT_OF_SERVICE")
    );
    let made_ready = Instant::now();
    std::fs::write(&ready, "").unwrap();
    while eureka.requests().len() < 2 {
        assert!(Instant::now() < deadline + Duration::from_secs(5), "never undone");
        std::thread::sleep(Duration::from_millis(20));
    }
    let undo = &eureka.requests()[1];
    assert_eq!((undo.method.as_str(), undo.target.as_str()), ("DELETE", "/eureka/apps/SVC/h:svc:1/status?value=UP"));
    assert!(undo.at >= made_ready, "undone before readiness passed");
    let out = p.sigterm_and_wait(LIMIT).0;
    assert!(out.stderr.contains("RegistryRestored"), "{}", out.stderr);
    // The final stop marks it out again, and nothing undoes that.
    let reqs = eureka.requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    assert_eq!(reqs[2].method, "PUT");
}

/// A SIGTERM during the back-off wait is a final stop: the pending restore is
/// cancelled and the instance stays out of the registry.
#[test]
fn a_stop_during_back_off_cancels_the_restore() {
    if !can_unshare() {
        return;
    }
    let eureka = Server::start(|_, _| 200);
    let dir = TempDir::new("restore-cancel");
    let alive = dir.s("alive");
    std::fs::write(&alive, "").unwrap();
    let cfg = dir.config(&format!(
        "restart = \"always\"\n[backoff]\ninitial = \"20s\"\n\
         [[pre_stop]]\neureka = {{ url = \"http://127.0.0.1:{}/eureka\", app = \"svc\", instance = \"h:svc:1\" }}\n\
         [probe.liveness]\nexec = [\"test\", \"-e\", \"{alive}\"]\nperiod = \"200ms\"\nfailure_threshold = 1\n",
        eureka.port
    ));
    // The first run exits by itself (restart 1 is immediate); the second is killed by liveness (restart 2 waits 20 s).
    let once = dir.s("once");
    let main = format!("if [ ! -e {once} ]; then touch {once}; exit 1; fi; while :; do sleep 0.05; done");
    let p = start_pid1(&["-c", &cfg, "--", "sh", "-c", &main]);
    wait_for_file(std::path::Path::new(&once), "", LIMIT);
    std::thread::sleep(Duration::from_millis(500));
    std::fs::remove_file(&alive).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while eureka.requests().is_empty() {
        assert!(Instant::now() < deadline, "no preStop PUT");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500)); // in the 20 s back-off now
    std::fs::write(&alive, "").unwrap();
    let (out, took) = p.sigterm_and_wait(LIMIT);
    assert!(took < Duration::from_secs(5), "took {took:?}: {}", out.stderr);
    assert!(out.stderr.contains("BackOff"), "{}", out.stderr);
    let reqs = eureka.requests();
    assert!(reqs.iter().all(|r| r.method == "PUT"), "restored after a final stop: {reqs:?}");
    assert!(!out.stderr.contains("RegistryRestored"), "{}", out.stderr);
}
