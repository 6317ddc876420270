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
        ("\n\nfoo = 1", "3:", "", "unknown field `foo`"),
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
