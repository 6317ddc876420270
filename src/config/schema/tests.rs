use super::parse;
use crate::actions::Kind;
use std::time::Duration;

fn env(k: &str) -> Option<String> {
    match k {
        "PORT" => Some("8016".into()),
        "EUREKA_PASS" => Some("s3cret".into()),
        _ => None,
    }
}

fn err(text: &str) -> String {
    parse(text, &env).unwrap_err()
}

#[test]
fn the_spec_example_loads() {
    let text = include_str!("../../../examples/spring-eureka.toml");
    let f = parse(text, &|k| (k == "HOSTNAME").then(|| "h1".to_string())).unwrap();
    assert_eq!(f.grace_period, Some(Duration::from_secs(45)));
    assert!(!f.init.is_empty() && !f.pre_stop.is_empty());
}

#[test]
fn values_are_typed_and_expanded() {
    let f = parse(
        r#"
grace_period = "1m30s"
stop_signal = "QUIT"
restart = "on-failure"
[main]
command = ["app", "--port", "${PORT}"]
env = { A = "${MISSING:-x}" }
[[init]]
tcp = "db:${PORT}"
interval = 1
timeout = "500ms"
[[init]]
exec = ["/bin/migrate"]
retries = 3
[[post_start]]
exec = ["true"]
on_failure = "ignore"
[[pre_stop]]
eureka = { urls = ["http://a:${EUREKA_PASS}@e1/eureka", "http://e2/eureka"], app = "svc", instance = "h:svc:${PORT}" }
[[pre_stop]]
sleep = "30s"
[probe.readiness]
http = { url = "http://127.0.0.1:8080/health" }
success_threshold = 2
"#,
        &env,
    )
    .unwrap();
    assert_eq!(f.grace_period, Some(Duration::from_secs(90)));
    assert_eq!(f.stop_signal, Some(libc::SIGQUIT));
    assert_eq!(f.main.command[2], "8016");
    assert_eq!(f.main.env, vec![("A".to_string(), "x".to_string())]);
    assert_eq!(f.init[0].action.kind, Kind::Tcp("db:8016".into()));
    assert_eq!(f.init[0].interval, Duration::from_secs(1));
    assert_eq!(f.init[0].action.timeout, Some(Duration::from_millis(500)));
    assert_eq!(f.init[1].retries, 3);
    assert!(!f.post_start[0].kill_on_failure);
    let Kind::Eureka(e) = &f.pre_stop[0].kind else { panic!() };
    assert_eq!(e.urls.len(), 2);
    assert_eq!(e.instance, "h:svc:8016");
    assert_eq!(e.status, "OUT_OF_SERVICE");
    assert_eq!(f.probes[0].which, "readiness");
    assert_eq!(f.probes[0].success_threshold, 2);
}

#[test]
fn errors_name_line_and_key() {
    let cases = [
        ("grace_period = \"soon\"", "1:", "grace_period", "not a duration"),
        ("stop_signal = \"SIGNOPE\"", "1:", "stop_signal", "not a signal"),
        ("\n\nfoo = 1", "3:1: key `foo`: ", "", "unknown key; allowed here: grace_period, stop_signal"),
        ("restart = \"sometimes\"", "1:", "restart", "unknown variant"),
        ("[main]\ncommand = \"java -jar\"", "2:", "command", "invalid type"),
        ("[main]\ncommand = [\"x\"]\nuser = \"no-such-user-podinit\"", "3:", "key `user`", "no-such-user-podinit"),
        ("[[pre_stop]]\ntcp = \"db:5432\"", "2:", "key `tcp`", "`tcp` is not allowed in pre_stop"),
        ("[[init]]\nsleep = 1\nexec = [\"x\"]", "3:", "key `exec`", "exactly one kind"),
        ("[[init]]\nname = \"x\"", "1:", "[init]", "needs one of exec"),
        ("[[init]]\ntcp = \"db\"", "2:", "key `tcp`", "not host:port"),
        ("[[init]]\nexec = [\"${NOPE}\"]", "2:", "exec", "NOPE is not set"),
        ("[[pre_stop]]\nsleep = 1\ninterval = 2", "3:", "key `interval`", "`interval` is not allowed in pre_stop"),
        ("[[post_start]]\nexec = [\"x\"]\non_failure = \"explode\"", "3:", "key `on_failure`", "kill or ignore"),
        (
            "[probe.liveness]\nexec = [\"x\"]\nsuccess_threshold = 2",
            "3:",
            "key `success_threshold`",
            "must be 1 for liveness",
        ),
        ("[probe.readiness]\ndns = \"x\"", "2:", "key `dns`", "`dns` is not allowed in probe"),
        ("[probe.readiness]\nexec = [\"x\"]\nperiod = 0", "3:", "key `period`", "period must be more than 0s"),
        ("[[init]]\nhttp = { url = \"not a url\" }", "2:", "http", "not a URL"),
        ("[[init]]\neureka = { app = \"a\", instance = \"i\" }", "2:", "key `eureka`", "needs `url` or `urls`"),
        ("[[init]]\ntcp = \"a:1\"\nretries = 2", "3:", "key `retries`", "`retries` is for exec"),
        ("grace_period = 1\ngrace_period = 2", "2:", "", "duplicate key"),
        ("[main\n", "1:", "", ""),
        // The entry at fault, not the first `[[init]]`, and the key inside it.
        (
            "[[init]]\nexec = [\"true\"]\n[[pre_stop]]\nsleep = 1\n[[init]] # second\nname = \"n\"\n  tcp = \"db\"\n",
            "7:3:",
            "key `tcp`",
            "not host:port",
        ),
        // A valid entry with a sub-table, then the one at fault.
        (
            "[[init]]\nname = \"cfg\"\n[init.http]\nurl = \"http://cfg:8888/health\"\n[[init]]\ntcp = \"db\"\n",
            "6:",
            "key `tcp`",
            "not host:port",
        ),
        // A shell script whose lines start with '[' does not end its entry.
        (
            "[[init]]\nexec = [\"sh\", \"-c\", \"\"\"\n[ -f /ready ] && exit 0\nx = 1\n\"\"\"]\n[[init]]\nname = \"resolve\"\ndns = \"db host\"\n",
            "8:",
            "key `dns`",
            "is not a host name",
        ),
    ];
    for (text, line, key, want) in cases {
        let e = err(text);
        assert!(e.contains(want), "{text:?}: {e}");
        assert!(e.starts_with(line), "{text:?}: wrong line: {e}");
        assert!(e.contains(key), "{text:?}: no key {key}: {e}");
    }
}

#[test]
fn credentials_never_appear_in_errors() {
    let texts = [
        "[[init]]\nhttp = \"http://admin:hunter2@h/\"",
        "[[pre_stop]]\neureka = { url = \"ftp://admin:hunter2@h/\", app = \"a\", instance = \"i\" }",
        "[[pre_stop]]\neureka = \"http://admin:hunter2@h/eureka\"",
        "[main]\ncommand = 5\nx = \"http://u:hunter2@h\"",
    ];
    for t in texts {
        let e = err(t);
        assert!(!e.contains("hunter2"), "{t:?}: {e}");
    }
}

/// Deterministic mutation fuzzing of the loader: no input may panic. (The
/// cargo-fuzz target in fuzz/, run by scripts/fuzz.sh in CI, does the same
/// with coverage guidance.)
#[test]
fn mangled_configs_never_panic() {
    let seed = include_str!("../../../examples/spring-eureka.toml");
    let pieces =
        ["[", "]", "\"", "=", "${", "}", "\n", "[[init]]", "\u{0}", "é", "-1", "99999999999999999999", "{", ",", "'"];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let mut t: Vec<char> = seed.chars().collect();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() as usize) % (t.len() + 1);
            match next() % 3 {
                0 if at < t.len() => {
                    t.remove(at);
                }
                _ => {
                    let p = pieces[(next() as usize) % pieces.len()];
                    for (i, c) in p.chars().enumerate() {
                        t.insert(at + i, c);
                    }
                }
            }
        }
        let text: String = t.into_iter().collect();
        let _ = parse(&text, &env);
    }
}

#[test]
fn unknown_keys_list_the_section_and_suggest_the_nearest() {
    let cases = [
        ("[[pre-stop]]\nsleep = 1", "1:3: [[pre-stop]]: unknown key: did you mean `pre_stop`? allowed here: grace_period"),
        ("graceperiod = 5", "1:1: key `graceperiod`: unknown key: did you mean `grace_period`?"),
        (
            "[[pre_stop]]\nslep = 1",
            "2:1: key `slep`: unknown key: did you mean `sleep`? a [[pre_stop]] entry takes name, timeout, exec, http, sleep, eureka, nacos, consul",
        ),
        (
            "[[post_start]]\nexec = [\"x\"]\non-failure = \"kill\"",
            "3:1: key `on-failure`: unknown key: did you mean `on_failure`? a [[post_start]] entry takes name, timeout, exec, http, sleep, eureka, nacos, consul, on_failure",
        ),
        (
            "[[init]]\ntcp = \"a:1\"\nfoo = 1",
            "3:1: key `foo`: unknown key; an [[init]] step takes name, timeout, exec, http, tcp, dns, sleep, eureka, nacos, consul, interval, retries",
        ),
        ("[probe.liveness]\ntcp = \"a:1\"\nperod = 1", "3:1: key `perod`: unknown key: did you mean `period`? a probe takes"),
        ("pre_stop = [{ slep = 1 }]", "key `pre_stop`: unknown key `slep`: did you mean `sleep`? a [[pre_stop]] entry takes"),
        (
            "[[pre_stop]]\neureka = { url = \"http://e/eureka\", app = \"a\", instance = \"i\", stat = \"UP\" }",
            "key `eureka`: unknown key `stat`: did you mean `status`? allowed here: url, urls, app, instance, status",
        ),
        ("[main]\ncomand = [\"x\"]", "2:1: key `comand`: unknown key: did you mean `command`?"),
    ];
    for (text, want) in cases {
        let e = err(text);
        assert!(e.contains(want), "{text:?}:\n got {e}\nwant {want}");
        assert!(!e.contains("on_failure, initial_delay") || text.contains("pre_stop = ["), "{text:?}: all keys: {e}");
    }
    // Every action entry key is in ENTRY_KEYS: toml's list for an unknown key matches it.
    let e = err("[probe]\nliveness = { exec = [\"x\"], bogus = 1 }");
    assert!(e.contains(&super::ENTRY_KEYS.join(", ")), "ENTRY_KEYS out of step with RawEntry: {e}");
}

#[test]
fn near_misses_only() {
    let keys = ["grace_period", "stop_signal", "pre_stop", "init"];
    assert_eq!(super::nearest("Grace-Period", &keys), Some("grace_period"));
    assert_eq!(super::nearest("pre-stop", &keys), Some("pre_stop"));
    assert_eq!(super::nearest("int", &keys), Some("init"));
    assert_eq!(super::nearest("bogus", &keys), None);
    assert_eq!(super::nearest("x", &keys), None);
}

#[test]
fn eureka_status_must_be_one_eureka_knows() {
    let text = |status: &str| {
        format!("[[pre_stop]]\neureka = {{ url = \"http://e/eureka\", app = \"a\", instance = \"i\", status = \"{status}\" }}")
    };
    for ok in ["UP", "DOWN", "STARTING", "OUT_OF_SERVICE", "UNKNOWN", "out_of_service"] {
        let f = parse(&text(ok), &env).unwrap();
        let Kind::Eureka(e) = &f.pre_stop[0].kind else { panic!() };
        assert_eq!(e.status, ok.to_ascii_uppercase());
    }
    let e = err(&text("GONE"));
    assert!(
        e.starts_with("2:1: key `eureka`: eureka `status` 'GONE' is not a Eureka status: write one of UP, DOWN"),
        "{e}"
    );
}

#[test]
fn messages_do_not_repeat_the_location() {
    let e = err("[main]\ncommand = [\"x\"]\nuser = \"no-such-user-podinit\"");
    assert!(e.starts_with("3:1: key `user`: user 'no-such-user-podinit' is not"), "{e}");
    let e = err("[[pre_stop]]\nname = \"x\"");
    assert_eq!(e, "1:1: [[pre_stop]]: an entry needs one of exec, http, sleep, eureka, nacos, consul");
    let e = err("[probe.liveness]\nexec = [\"x\"]\nperiod = 0");
    assert_eq!(e, "3:1: key `period`: period must be more than 0s");
}

const SIDECAR: &str = r#"
[main]
command = ["app"]
[[init]]
name = "proxy"
exec = ["socat", "TCP-LISTEN:${PORT},fork", "TCP:db:5432"]
restart = "always"
stop_signal = "INT"
timeout = "20s"
user = "nobody"
workdir = "/srv"
env = { MODE = "proxy" }
[init.probe.startup]
tcp = "127.0.0.1:${PORT}"
period = "1s"
[init.probe.readiness]
tcp = "127.0.0.1:${PORT}"
success_threshold = 2
[[init.post_start]]
exec = ["true"]
on_failure = "ignore"
[[init.pre_stop]]
sleep = "5s"
[[init]]
tcp = "127.0.0.1:${PORT}"
"#;

#[test]
fn a_restart_always_step_is_a_sidecar_with_the_settings_of_a_container() {
    let f = parse(SIDECAR, &env).unwrap();
    assert_eq!(f.init.len(), 2);
    assert!(f.init[1].sidecar.is_none(), "a step without restart is no sidecar");
    let step = &f.init[0];
    assert_eq!(step.action.name, "proxy");
    assert_eq!(step.action.timeout, Some(Duration::from_secs(20)), "timeout is the start timeout");
    let s = step.sidecar.as_ref().expect("a sidecar");
    assert_eq!(s.run.command, ["socat", "TCP-LISTEN:8016,fork", "TCP:db:5432"]);
    let (name, ids) = s.run.user.as_ref().unwrap();
    assert_eq!((name.as_str(), ids.uid), ("nobody", 65534));
    assert_eq!(s.run.workdir.as_deref(), Some(std::path::Path::new("/srv")));
    assert_eq!(s.run.env, [("MODE".to_string(), "proxy".to_string())]);
    assert!(s.sets_user && s.sets_workdir && s.sets_env);
    assert_eq!(s.stop_signal, libc::SIGINT);
    let probes: Vec<_> = s.probes.iter().map(|p| (p.which, p.period, p.success_threshold)).collect();
    assert_eq!(probes, [("startup", Duration::from_secs(1), 1), ("readiness", Duration::from_secs(10), 2)]);
    assert_eq!(s.probes[0].action.kind, Kind::Tcp("127.0.0.1:8016".into()));
    assert!(!s.post_start[0].kill_on_failure);
    assert_eq!(s.pre_stop[0].kind, Kind::Sleep(Duration::from_secs(5)));
    // The sidecar's hooks are not the container's; its sleep is checked against the grace period.
    assert!(f.post_start.is_empty() && f.pre_stop.is_empty() && f.probes.is_empty());
    assert_eq!(f.hook_sleeps.len(), 1);
    assert_eq!((f.hook_sleeps[0].table, f.hook_sleeps[0].at.as_str()), ("init.pre_stop", "23:9"));
    // Unset: SIGTERM, nothing set (resolve fills them from [main]).
    let f = parse("[[init]]\nexec = [\"x\"]\nrestart = \"always\"\n", &env).unwrap();
    let s = f.init[0].sidecar.as_ref().unwrap();
    assert_eq!(s.stop_signal, libc::SIGTERM);
    assert!(!s.sets_user && !s.sets_workdir && !s.sets_env && s.run.user.is_none() && s.probes.is_empty());
}

#[test]
fn sidecar_errors_name_line_and_key() {
    let cases = [
        ("[[init]]\nexec = [\"x\"]\nrestart = \"sometimes\"", "3:11: key `restart`: restart = \"sometimes\": only \"always\" makes a sidecar"),
        ("[[init]]\nexec = [\"x\"]\nrestart = \"never\"", "3:11: key `restart`: restart = \"never\": only \"always\""),
        (
            "[[init]]\nexec = [\"x\"]\n\n[init.probe.readiness]\ntcp = \"a:1\"",
            "4:1: [init.probe.readiness]: `probe` is only for a sidecar: add restart = \"always\" to this step",
        ),
        ("[[init]]\nexec = [\"y\"]\n[[init]]\nexec = [\"x\"]\nuser = \"nobody\"", "5:1: key `user`: `user` is only for a sidecar: add restart = \"always\""),
        ("[[init]]\nexec = [\"x\"]\n[[init.pre_stop]]\nsleep = 1", "3:1: [[init.pre_stop]]: `pre_stop` is only for a sidecar"),
        (
            "[[init]]\nrestart = \"always\"\n[init.http]\nurl = \"http://a/\"",
            "3:1: [init.http]: a sidecar (restart = \"always\") runs a command: `http` cannot be one; make it an `exec` step",
        ),
        ("[[init]]\nrestart = \"always\"\ntcp = \"a:1\"", "3:1: key `tcp`: a sidecar (restart = \"always\") runs a command"),
        ("[[init]]\nrestart = \"always\"\nexec = [\"x\"]\nretries = 3", "4:1: key `retries`: `retries` is not for a sidecar"),
        ("[[init]]\nrestart = \"always\"\nexec = [\"x\"]\ninterval = 1", "4:1: key `interval`: `interval` is not for a sidecar"),
        ("[[init]]\nrestart = \"always\"\nexec = [\"x\"]\nstop_signal = \"NOPE\"", "4:1"),
        // The probe checks of the top level.
        (
            "[[init]]\nrestart = \"always\"\nexec = [\"x\"]\n[init.probe.liveness]\nexec = [\"x\"]\nsuccess_threshold = 2",
            "6:1: key `success_threshold`: success_threshold must be 1 for liveness",
        ),
        ("[[init]]\nrestart = \"always\"\nexec = [\"x\"]\n[init.probe.startup]\ndns = \"x\"", "5:1: key `dns`: `dns` is not allowed in probe"),
        // The hook entry at fault, not the first one.
        (
            "[[init]]\nrestart = \"always\"\nexec = [\"x\"]\n[[init.pre_stop]]\nsleep = 1\n[[init.pre_stop]]\ntcp = \"a:1\"",
            "7:1: key `tcp`: `tcp` is not allowed in pre_stop",
        ),
        (
            "[[init]]\nrestart = \"always\"\nexec = [\"x\"]\n[[init.post_start]]\nexec = [\"x\"]\non_failure = \"boom\"",
            "6:1: key `on_failure`: on_failure 'boom': expected kill or ignore",
        ),
        // Sidecar keys stay out of hooks and probes.
        ("[[pre_stop]]\nsleep = 1\nrestart = \"always\"", "3:1: key `restart`: `restart` is not allowed in pre_stop"),
    ];
    for (text, want) in cases {
        let e = err(text);
        assert!(e.starts_with(want), "{text:?}:\n got {e}\nwant {want}");
    }
}

#[test]
fn unknown_keys_in_a_sidecar_table_list_what_that_table_takes() {
    let head = "[[init]]\nrestart = \"always\"\nexec = [\"x\"]\n";
    let cases = [
        (
            "[init.probe.readiness]\ntcp = \"a:1\"\nperod = 1",
            "6:1: key `perod`: unknown key: did you mean `period`? a probe takes name, timeout, exec, http, tcp, initial_delay, period, success_threshold, failure_threshold",
        ),
        ("[init.probe.readyness]\ntcp = \"a:1\"", "did you mean `readiness`? allowed here: startup, liveness, readiness"),
        (
            "[[init.pre_stop]]\nsleep = 1\n[[init.pre_stop]]\nslep = 1",
            "7:1: key `slep`: unknown key: did you mean `sleep`? a [[pre_stop]] entry takes name, timeout, exec, http, sleep, eureka, nacos, consul",
        ),
        ("[[init.post_start]]\nexec = [\"x\"]\non-failure = \"kill\"", "6:1: key `on-failure`: unknown key: did you mean `on_failure`?"),
        ("stop-signal = \"INT\"", "4:1: key `stop-signal`: unknown key: did you mean `stop_signal`? an [[init]] step takes"),
    ];
    for (tail, want) in cases {
        let e = err(&format!("{head}{tail}"));
        assert!(e.contains(want), "{tail:?}:\n got {e}\nwant {want}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    let e = err(&format!("{head}wrkdir = \"/\""));
    assert!(e.contains("restart, stop_signal, user, env, workdir, probe, post_start, pre_stop"), "{e}");
}

#[test]
fn registry_actions_load_with_their_defaults() {
    let text = "[[pre_stop]]\nnacos = { url = \"http://nacos:8848/nacos\", service = \"orders\", ip = \"10.0.0.7\", port = 8080 }\n\
                [[pre_stop]]\nconsul = { url = \"http://127.0.0.1:8500\", service_id = \"web-1\", token_file = \"/run/t\" }\n";
    let f = parse(text, &env).unwrap();
    let Kind::Nacos(n) = &f.pre_stop[0].kind else { panic!() };
    assert_eq!((n.group.as_str(), n.namespace.as_str(), n.ephemeral), ("DEFAULT_GROUP", "", true));
    assert_eq!((n.api, n.deregister, n.undo), (crate::actions::NacosApi::Auto, false, false));
    let Kind::Consul(c) = &f.pre_stop[1].kind else { panic!() };
    assert_eq!((c.reason.as_str(), c.deregister, c.token_file.as_str()), ("podinit preStop", false, "/run/t"));
    assert!(f.pre_stop.iter().all(|a| a.kind.restore().is_some()));
}

#[test]
fn registry_mistakes_are_named() {
    let n = "[[pre_stop]]\nnacos = { url = \"http://n:8848/nacos\", service = \"s\", ip = \"1.2.3.4\", port = 80";
    let c = "[[pre_stop]]\nconsul = { url = \"http://c:8500\", service_id = \"w\"";
    let cases = [
        (format!("{n}, api = \"v4\" }}"), "expected auto, v1, v2 or v3"),
        (format!("{n}, mode = \"delete\" }}"), "expected disable or deregister"),
        (format!("{n}, username = \"nacos\" }}"), "username and password together"),
        (format!("{n}, port2 = 1 }}"), "unknown key `port2`: expected one of url, service"),
        (
            "[[pre_stop]]\nnacos = { url = \"http://n/nacos\", service = \"s\", ip = \"i\", port = \"eighty\" }".into(),
            "nacos port 'eighty': expected a port number",
        ),
        ("[[pre_stop]]\nnacos = { url = \"http://n/nacos\", service = \"\", ip = \"i\", port = 80 }".into(), "service"),
        (format!("{c}, mode = \"drain\" }}"), "expected maintenance or deregister"),
        (format!("{c}, token = \"t\", token_file = \"/f\" }}"), "token or token_file, not both"),
        ("[probe.liveness]\nconsul = { url = \"http://c:8500\", service_id = \"w\" }".into(), "not allowed in probe"),
    ];
    for (text, want) in cases {
        let e = err(&text);
        assert!(e.contains(want), "{text:?}: {e}");
    }
    // `port` may come from the environment.
    let f = parse(
        "[[pre_stop]]\nnacos = { url = \"http://n/nacos\", service = \"s\", ip = \"i\", port = \"${PORT}\" }",
        &env,
    )
    .unwrap();
    assert!(matches!(&f.pre_stop[0].kind, Kind::Nacos(n) if n.port == 8016));
    let e = err("[[pre_stop]]\nnacos = { url = \"http://n/nacos\", service = \"s\", ip = \"i\", port = 0, password = \"hunter2\" }");
    assert!(!e.contains("hunter2"), "{e}");
}
