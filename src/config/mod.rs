//! The TOML config (docs/config.md "The file"): serde schema with unknown keys
//! rejected, `${VAR}` expansion, durations, signals and users resolved, every
//! action checked against its section, all while the file loads, so that an
//! error names file, line and key before anything runs (exit 2).
//!
//! `resolve` merges the file under the command line and the environment into
//! the one `Spec` the supervisor runs.

pub mod defaults;
mod expand;
mod schema;

use crate::actions::{Action, Kind};
use crate::cli::RunOptions;
use crate::duration;
use crate::signals;
use crate::user::Ids;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The config read when none is named.
pub const DEFAULT_PATH: &str = "/etc/podinit.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    Never,
    OnFailure,
    Always,
}

/// Crash-loop back-off: first restart at once, then `initial`, doubling up
/// to `max`; back to immediate after `reset` of stable running (docs/lifecycle.md L13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub reset: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { initial: defaults::BACKOFF_INITIAL, max: defaults::BACKOFF_MAX, reset: defaults::BACKOFF_RESET }
    }
}

/// How the main process (and exec actions, which inherit it) is started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Main {
    pub command: Vec<OsString>,
    pub user: Option<(String, Ids)>,
    pub workdir: Option<PathBuf>,
    pub env: Vec<(String, String)>,
}

/// An init step: an action plus its retry rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub action: Action,
    /// Wait kinds: time between attempts. Exec: first back-off delay.
    pub interval: Duration,
    /// Exec steps: how many more times a failure is retried.
    pub retries: u32,
    /// `restart = "always"`: this step is a sidecar (docs/lifecycle.md L30-L33).
    pub sidecar: Option<Box<Sidecar>>,
}

/// A sidecar: an `[[init]]` exec step with `restart = "always"`, started in
/// its place among the steps and kept running beside the main process. Its
/// step's `action` holds the name and the start `timeout` (how long the next
/// step waits for it to start; none: forever).
#[derive(Debug, Clone, PartialEq)]
pub struct Sidecar {
    /// The command, user, workdir and env it runs with. At load, only what the
    /// step sets; `resolve` fills what it leaves unset from `[main]`.
    pub run: Main,
    /// Which of user, workdir, env the step set itself (the rest come from `[main]`).
    pub sets_user: bool,
    pub sets_workdir: bool,
    pub sets_env: bool,
    /// What asks it to stop; SIGTERM unless set.
    pub stop_signal: i32,
    /// Its startup, liveness and readiness probes.
    pub probes: Vec<Probe>,
    pub post_start: Vec<Hook>,
    pub pre_stop: Vec<Action>,
}

/// A postStart action.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    pub action: Action,
    pub kill_on_failure: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub which: &'static str,
    pub action: Action,
    pub initial_delay: Duration,
    pub period: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

/// A config file as loaded, before the command line is merged in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct File {
    pub path: Option<PathBuf>,
    pub grace_period: Option<Duration>,
    pub stop_signal: Option<i32>,
    pub stop_on: Option<Vec<i32>>,
    pub restart: Option<Restart>,
    pub main: Main,
    pub init: Vec<Step>,
    pub post_start: Vec<Hook>,
    pub pre_stop: Vec<Action>,
    pub probes: Vec<Probe>,
    pub backoff: Backoff,
    /// The `sleep` actions of post_start and pre_stop, for `check_grace`.
    pub hook_sleeps: Vec<HookSleep>,
}

/// A postStart or preStop `sleep` and where it stands in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct HookSleep {
    /// The table it stands in: `pre_stop`, `init.pre_stop` (a sidecar's), ...
    pub table: &'static str,
    pub sleep: Duration,
    /// `line:column` of the value.
    pub at: String,
}

/// Everything podinit runs, resolved: command line > environment > file > defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub grace: Duration,
    pub stop_signal: i32,
    /// The signals that start the stop sequence (not forwarded).
    pub stop_on: Vec<i32>,
    pub restart: Restart,
    pub main: Main,
    pub init: Vec<Step>,
    pub post_start: Vec<Hook>,
    pub pre_stop: Vec<Action>,
    pub probes: Vec<Probe>,
    pub backoff: Backoff,
}

/// Which file to read: the one named, else the default when it exists.
pub fn choose(named: Option<&Path>) -> Option<PathBuf> {
    match named {
        Some(p) => Some(p.to_path_buf()),
        None => Path::new(DEFAULT_PATH).exists().then(|| PathBuf::from(DEFAULT_PATH)),
    }
}

/// Reads and validates a config file; the error names the file, line and key.
pub fn load(path: &Path) -> Result<File, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read the config: {e}", path.display()))?;
    let mut file = parse(&text, &|k| std::env::var(k).ok()).map_err(|e| format!("{}:{e}", path.display()))?;
    file.path = Some(path.to_path_buf());
    Ok(file)
}

/// Parses config text; errors start with `line:column:`.
pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<File, String> {
    schema::parse(text, env)
}

/// Merges the file under the command line (which already holds the
/// environment's values) into the runnable spec.
pub fn resolve(cli: &RunOptions, file: File) -> Result<Spec, String> {
    let grace = cli.grace.map(|g| (g, "--grace or PODINIT_GRACE"));
    if let Some(warning) = check_grace(&file, cli.pre_stop_sleep, grace)? {
        log::warn!("{warning}");
    }
    let from = || file.path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default();
    let mut main = file.main;
    if !cli.command.is_empty() {
        main.command = cli.command.clone();
    }
    if main.command.is_empty() {
        return Err(format!(
            "{}no command to run: give COMMAND on the command line, or `command` in the [main] table",
            from()
        ));
    }
    let mut init = file.init;
    for s in init.iter_mut().filter_map(|s| s.sidecar.as_deref_mut()) {
        // As exec actions do: what the sidecar leaves unset comes from [main] (not its command).
        if !s.sets_user {
            s.run.user.clone_from(&main.user);
        }
        if !s.sets_workdir {
            s.run.workdir.clone_from(&main.workdir);
        }
        if !s.sets_env {
            s.run.env.clone_from(&main.env);
        }
    }
    let mut pre_stop = file.pre_stop;
    if let Some(d) = cli.pre_stop_sleep {
        pre_stop.push(Action { name: "pre-stop-sleep".into(), kind: Kind::Sleep(d), timeout: None });
    }
    let stop_on = cli.stop_on.clone().or(file.stop_on).unwrap_or(defaults::STOP_ON.to_vec());
    let stop_signal = cli.stop_signal.or(file.stop_signal).unwrap_or(defaults::STOP_SIGNAL);
    for &(from, _) in cli.rewrite.iter().filter(|&&(from, _)| stop_on.contains(&from) && from != stop_signal) {
        // stop_on is matched first: such a signal starts the stop sequence and is
        // never forwarded, so the rewrite never applies (it does to the stop signal).
        log::warn!(
            "--rewrite {0}: {0} is in stop_on, so it starts the stop sequence and is never forwarded or \
             rewritten; rewrite the stop signal ({1}) to change what the main process gets",
            signals::name(from),
            signals::name(stop_signal)
        );
    }
    Ok(Spec {
        grace: cli.grace.or(file.grace_period).unwrap_or(defaults::GRACE),
        stop_signal,
        stop_on,
        restart: file.restart.unwrap_or(Restart::Never),
        main,
        init,
        post_start: file.post_start,
        pre_stop,
        probes: file.probes,
        backoff: file.backoff,
    })
}

/// The grace period that applies, with what set it: `over` (the command line
/// or environment, and its name), else the file's, else the default.
fn grace_of(file: &File, over: Option<(Duration, &str)>) -> (Duration, String) {
    match (over, file.grace_period) {
        (Some((g, from)), _) => (g, from.to_string()),
        (None, Some(g)) => (g, "grace_period".into()),
        (None, None) => (defaults::GRACE, "the default".into()),
    }
}

/// docs/lifecycle.md L34 and L4 against the grace period the container will have
/// (`over`, from the command line or environment, else the file's): a
/// post_start or pre_stop `sleep` longer than it is an error naming file, line
/// and key (init steps may sleep longer); preStop's worst case (its sleeps
/// plus its actions' timeouts, 10 s for a network action without one; an exec
/// without a timeout counts nothing) leaving under 2 s of it is the warning
/// returned.
pub fn check_grace(
    file: &File,
    pre_stop_sleep: Option<Duration>,
    over: Option<(Duration, &str)>,
) -> Result<Option<String>, String> {
    let (grace, from) = grace_of(file, over);
    let shown = duration::show;
    let too_long = |what: String, sleep: Duration| {
        format!(
            "{what}: a sleep of {} is longer than the grace period of {} ({from}): the stop would run into \
             SIGKILL, and Kubernetes refuses it (docs/lifecycle.md L34); shorten the sleep or raise the grace period",
            shown(sleep),
            shown(grace)
        )
    };
    if let Some(s) = file.hook_sleeps.iter().find(|s| s.sleep > grace) {
        let path = file.path.as_ref().map(|p| format!("{}:", p.display())).unwrap_or_default();
        return Err(too_long(format!("{path}{}: key `sleep` in {}", s.at, s.table), s.sleep));
    }
    if let Some(d) = pre_stop_sleep.filter(|d| *d > grace) {
        return Err(too_long("--pre-stop-sleep or PODINIT_PRE_STOP_SLEEP".into(), d));
    }
    let worst = |a: &Action| match a.kind {
        Kind::Sleep(d) => a.timeout.map_or(d, |t| t.min(d)),
        Kind::Exec(_) => a.timeout.unwrap_or_default(),
        _ => a.timeout.unwrap_or(crate::actions::DEFAULT_ATTEMPT),
    };
    // The main process's preStop and every sidecar's start together (docs/lifecycle.md L32): the longest counts.
    let parts = file.pre_stop.iter().map(worst).chain(pre_stop_sleep).collect::<Vec<_>>();
    let main = (String::from("the main process"), parts);
    let sidecars = file.init.iter().filter_map(|s| {
        let parts = s.sidecar.as_ref()?.pre_stop.iter().map(worst).collect();
        Some((format!("sidecar {}", s.action.name), parts))
    });
    let groups = std::iter::once(main).chain(sidecars).filter(|(_, parts)| !parts.is_empty());
    let Some((who, total)) =
        groups.map(|(who, parts)| (who, parts.iter().sum::<Duration>())).max_by_key(|&(_, total)| total)
    else {
        return Ok(None);
    };
    let floor = Duration::from_secs(2);
    if total + floor <= grace {
        return Ok(None);
    }
    Ok(Some(format!(
        "{} may take up to {} (sleeps plus timeouts) of the grace period of {} ({from}), leaving less than 2s \
         for {who} to stop (docs/lifecycle.md L4): raise the grace period to at least {} (and docker/podman \
         stop -t with it), or shorten preStop",
        if who == "the main process" { "preStop".into() } else { format!("the preStop of {who}") },
        shown(total),
        shown(grace),
        shown(total + floor)
    )))
}

/// The resolved plan, as `podinit check` prints it; credentials masked.
pub fn plan(file: &File) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&crate::url::redact(&s));
        out.push('\n');
    };
    if let Some(p) = &file.path {
        line(format!("config: {}", p.display()));
    }
    let show = |d: Option<Duration>, default: &str| d.map(duration::show).unwrap_or(format!("{default} (default)"));
    line(format!("grace_period: {}", show(file.grace_period, &duration::show(defaults::GRACE))));
    line(format!(
        "stop_signal: {}",
        file.stop_signal.map(signals::name).unwrap_or(format!("{} (default)", signals::name(defaults::STOP_SIGNAL)))
    ));
    line(format!(
        "stop_on: {}",
        file.stop_on.as_ref().map_or("SIGTERM (default)".into(), |l| l
            .iter()
            .map(|&s| signals::name(s))
            .collect::<Vec<_>>()
            .join(", "))
    ));
    line(format!(
        "restart: {}",
        match file.restart {
            None => "never (default)",
            Some(Restart::Never) => "never",
            Some(Restart::OnFailure) => "on-failure",
            Some(Restart::Always) => "always",
        }
    ));
    // Sidecars are restarted with the same back-off.
    if file.restart.is_some_and(|r| r != Restart::Never) || file.init.iter().any(|s| s.sidecar.is_some()) {
        let b = file.backoff;
        line(format!(
            "  back-off{}: first restart at once, then {} doubling to {}, reset after {} running",
            if file.restart.is_some_and(|r| r != Restart::Never) { "" } else { " (sidecars)" },
            duration::show(b.initial),
            duration::show(b.max),
            duration::show(b.reset)
        ));
    }
    let m = &file.main;
    line(format!(
        "main: {}",
        if m.command.is_empty() {
            "(command from the command line)".to_string()
        } else {
            m.command.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
        }
    ));
    run_lines(m, "  ", &mut line);
    for (i, s) in file.init.iter().enumerate() {
        let rule = match &s.action.kind {
            Kind::Exec(_) if s.retries > 0 => format!(", {} retries from {}", s.retries, duration::show(s.interval)),
            Kind::Tcp(_) | Kind::Http(_) | Kind::Dns(_) => format!(
                ", every {} until {}",
                duration::show(s.interval),
                s.action.timeout.map(duration::show).unwrap_or("it succeeds".into())
            ),
            _ => String::new(),
        };
        let Some(car) = &s.sidecar else {
            let t = if matches!(s.action.kind, Kind::Tcp(_) | Kind::Http(_) | Kind::Dns(_)) {
                String::new()
            } else {
                timeout(&s.action)
            };
            line(format!("init {}: {}{rule}{t}", i + 1, named(&s.action)));
            continue;
        };
        let start = s.action.timeout.map_or("the next step waits until it has started".into(), |t| {
            format!("the next step waits up to {} for it to start", duration::show(t))
        });
        line(format!("init {}: sidecar {}, restart: always, {start}", i + 1, named(&s.action)));
        line(format!("  stop_signal: {}", signals::name(car.stop_signal)));
        run_lines(&car.run, "  ", &mut line);
        let inherited: Vec<_> = [("user", car.sets_user), ("workdir", car.sets_workdir), ("env", car.sets_env)]
            .into_iter()
            .filter_map(|(k, set)| (!set).then_some(k))
            .collect();
        if !inherited.is_empty() {
            line(format!("  {}: from [main]", inherited.join(", ")));
        }
        for p in &car.probes {
            line(format!("  {}", probe_line(p)));
        }
        hook_lines(&car.post_start, &car.pre_stop, "  ", &mut line);
    }
    hook_lines(&file.post_start, &file.pre_stop, "", &mut line);
    for p in &file.probes {
        line(probe_line(p));
    }
    out
}

/// The user, workdir and env lines of the main process or a sidecar; env values of secret-looking names masked.
fn run_lines(m: &Main, indent: &str, line: &mut dyn FnMut(String)) {
    if let Some((name, ids)) = &m.user {
        line(format!("{indent}user: {name} (uid {}, gid {}, groups {:?})", ids.uid, ids.gid, ids.groups));
    }
    if let Some(w) = &m.workdir {
        line(format!("{indent}workdir: {}", w.display()));
    }
    for (k, v) in &m.env {
        let v = if crate::actions::is_secret_header(k) || k.to_ascii_lowercase().contains("pass") { "***" } else { v };
        line(format!("{indent}env: {k}={v}"));
    }
}

/// `name: what it does`, once when the name is the description (`sleep 20s`).
fn named(a: &Action) -> String {
    match a.kind.describe() {
        d if d == a.name => d,
        d => format!("{}: {d}", a.name),
    }
}

fn timeout(a: &Action) -> String {
    a.timeout.map(|t| format!(", timeout {}", duration::show(t))).unwrap_or_default()
}

/// The post_start and pre_stop lines of the container or of a sidecar.
fn hook_lines(post_start: &[Hook], pre_stop: &[Action], indent: &str, line: &mut dyn FnMut(String)) {
    for (i, h) in post_start.iter().enumerate() {
        let on = if h.kill_on_failure { "kill" } else { "ignore" };
        line(format!("{indent}post_start {}: {}{}, on failure {on}", i + 1, named(&h.action), timeout(&h.action)));
    }
    for (i, a) in pre_stop.iter().enumerate() {
        line(format!("{indent}pre_stop {}: {}{}", i + 1, named(a), timeout(a)));
        // The main process's registry actions are undone when it is restarted in place (L39).
        if let Some(undo) = a.kind.restore().filter(|_| indent.is_empty()) {
            line(format!("  undone when the main process is restarted in place and ready: {}", undo.describe()));
        }
    }
}

fn probe_line(p: &Probe) -> String {
    format!(
        "probe.{}: {}: initial_delay {}, period {}, timeout {}, success_threshold {}, failure_threshold {}",
        p.which,
        p.action.kind.describe(),
        duration::show(p.initial_delay),
        duration::show(p.period),
        duration::show(p.action.timeout.unwrap_or(defaults::PROBE_TIMEOUT)),
        p.success_threshold,
        p.failure_threshold
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> File {
        let mut f = parse(text, &|_| None).unwrap();
        f.path = Some("/etc/podinit.toml".into());
        f
    }

    #[test]
    fn a_hook_sleep_longer_than_the_grace_period_is_refused_where_it_stands() {
        let f = file(
            "grace_period = 10\n[[init]]\nsleep = 60\n[[pre_stop]]\nexec = [\"true\"]\n[[pre_stop]]\nsleep = \"11s\"\n",
        );
        let e = check_grace(&f, None, None).unwrap_err();
        assert!(e.starts_with("/etc/podinit.toml:7:9: key `sleep` in pre_stop: a sleep of 11s is longer than the grace period of 10s (grace_period)"), "{e}");
        // The command line's grace period is the one checked against.
        assert!(check_grace(&f, None, Some((Duration::from_secs(20), "--grace"))).is_ok());
        let e = check_grace(&f, None, Some((Duration::from_secs(5), "--grace or PODINIT_GRACE"))).unwrap_err();
        assert!(e.contains("grace period of 5s (--grace or PODINIT_GRACE)"), "{e}");
        let f = file("[[post_start]]\nexec = [\"true\"]\n[[post_start]]\nsleep = \"31s\"\n");
        let e = check_grace(&f, None, None).unwrap_err();
        assert!(e.contains(":4:9: key `sleep` in post_start") && e.contains("30s (the default)"), "{e}");
        // Init steps may sleep longer; a sleep equal to the grace period is allowed (L34: must not exceed).
        assert!(check_grace(&file("[[init]]\nsleep = 100\n"), None, None).is_ok());
        assert!(check_grace(&file("grace_period = 5\n[[post_start]]\nsleep = 5\n"), None, None).is_ok());
        let e = check_grace(&File::default(), Some(Duration::from_secs(40)), None).unwrap_err();
        assert!(e.starts_with("--pre-stop-sleep or PODINIT_PRE_STOP_SLEEP: a sleep of 40s"), "{e}");
    }

    #[test]
    fn a_pre_stop_leaving_under_2s_is_a_warning() {
        let eureka = "[[pre_stop]]\neureka = { url = \"http://e/eureka\", app = \"a\", instance = \"i\" }\n";
        // 10 s (the network default) + 19 s = 29 s of 30 s: under 2 s left.
        let f = file(&format!("{eureka}[[pre_stop]]\nsleep = 19\n"));
        let w = check_grace(&f, None, None).unwrap().expect("a warning");
        assert!(w.contains("up to 29s") && w.contains("at least 31s"), "{w}");
        // 10 s + 18 s leaves exactly 2 s: fine.
        assert_eq!(check_grace(&file(&format!("{eureka}[[pre_stop]]\nsleep = 18\n")), None, None), Ok(None));
        // Timeouts count as given; an exec without one counts nothing; --pre-stop-sleep adds.
        let f = file("grace_period = 10\n[[pre_stop]]\nhttp = { url = \"http://h/\" }\ntimeout = \"3s\"\n[[pre_stop]]\nexec = [\"x\"]\n");
        assert_eq!(check_grace(&f, None, None), Ok(None));
        assert!(check_grace(&f, Some(Duration::from_secs(6)), None).unwrap().is_some());
        assert_eq!(check_grace(&file("grace_period = 1\n"), None, None), Ok(None), "no preStop, no warning");
    }

    #[test]
    fn resolve_refuses_too_long_a_sleep_against_the_command_line_grace() {
        let cli = |grace: u64| RunOptions {
            command: vec!["true".into()],
            config: None,
            group: false,
            zero_codes: vec![],
            parent_death: None,
            rewrite: vec![],
            grace: Some(Duration::from_secs(grace)),
            stop_signal: None,
            stop_on: None,
            pre_stop_sleep: None,
            warn_on_reap: false,
        };
        let f = file("grace_period = 60\n[[pre_stop]]\nsleep = 10\n");
        assert!(resolve(&cli(5), f.clone()).unwrap_err().contains("key `sleep` in pre_stop"));
        assert_eq!(resolve(&cli(30), f).unwrap().grace, Duration::from_secs(30));
    }

    const SIDECARS: &str = "[main]\ncommand = [\"app\"]\nworkdir = \"/app\"\nenv = { A = \"1\" }\n\
        [[init]]\nname = \"a\"\nexec = [\"proxy\", \"--port\", \"1\"]\nrestart = \"always\"\nenv = { B = \"2\" }\n\
        [init.probe.startup]\ntcp = \"127.0.0.1:1\"\n[[init.pre_stop]]\nhttp = { url = \"http://u:hunter2@h/quit\" }\n\
        [[init]]\ntcp = \"127.0.0.1:1\"\n\
        [[init]]\nname = \"b\"\nexec = [\"shipper\"]\nrestart = \"always\"\nuser = \"nobody\"\nstop_signal = \"QUIT\"\ntimeout = 5\n";

    fn cli(command: &[&str]) -> RunOptions {
        RunOptions {
            command: command.iter().map(Into::into).collect(),
            config: None,
            group: false,
            zero_codes: vec![],
            parent_death: None,
            rewrite: vec![],
            grace: None,
            stop_signal: None,
            stop_on: None,
            pre_stop_sleep: None,
            warn_on_reap: false,
        }
    }

    #[test]
    fn a_sidecar_takes_from_main_what_it_does_not_set_but_never_the_command() {
        let spec = resolve(&cli(&["other", "cmd"]), file(SIDECARS)).unwrap();
        assert_eq!(spec.main.command, ["other", "cmd"]);
        let a = spec.init[0].sidecar.as_ref().unwrap();
        assert_eq!(a.run.command, ["proxy", "--port", "1"]);
        assert_eq!(a.run.env, [("B".to_string(), "2".to_string())], "its own env, not [main]'s");
        assert_eq!(a.run.workdir, Some("/app".into()));
        assert_eq!(a.run.user, None);
        assert!(spec.init[1].sidecar.is_none());
        let b = spec.init[2].sidecar.as_ref().unwrap();
        assert_eq!(b.run.user.as_ref().map(|u| u.0.as_str()), Some("nobody"));
        assert_eq!((b.run.workdir.clone(), b.run.env.clone()), (Some("/app".into()), vec![("A".into(), "1".into())]));
    }

    #[test]
    fn the_plan_shows_each_sidecar_in_its_place() {
        let p = plan(&file(SIDECARS));
        let want = "init 1: sidecar a: exec proxy --port 1, restart: always, the next step waits until it has started\n\
            \x20 stop_signal: SIGTERM\n  env: B=2\n  user, workdir: from [main]\n\
            \x20 probe.startup: tcp 127.0.0.1:1: initial_delay 0s, period 10s, timeout 1s, success_threshold 1, failure_threshold 3\n\
            \x20 pre_stop 1: http http://***@h/quit: http GET http://***@h/quit\n\
            init 2: tcp 127.0.0.1:1, every 2s until it succeeds\n\
            init 3: sidecar b: exec shipper, restart: always, the next step waits up to 5s for it to start\n\
            \x20 stop_signal: SIGQUIT\n  user: nobody (uid 65534, gid 65534, groups [65534])\n  workdir, env: from [main]\n";
        assert!(p.contains(want), "{p}");
        assert!(p.contains("  back-off (sidecars): first restart at once, then 10s"), "{p}");
        assert!(!p.contains("hunter2"), "{p}");
    }

    #[test]
    fn a_sidecar_pre_stop_counts_in_the_grace_checks() {
        let car = |hooks: &str| {
            file(&format!("grace_period = 10\n[[init]]\nname = \"px\"\nexec = [\"p\"]\nrestart = \"always\"\n{hooks}"))
        };
        let e = check_grace(&car("[[init.pre_stop]]\nsleep = 11\n"), None, None).unwrap_err();
        assert!(e.starts_with("/etc/podinit.toml:7:9: key `sleep` in init.pre_stop: a sleep of 11s is longer"), "{e}");
        let e = check_grace(&car("[[init.post_start]]\nsleep = \"12s\"\n"), None, None).unwrap_err();
        assert!(e.contains(":7:9: key `sleep` in init.post_start"), "{e}");
        // Its worst case, not added to the main process's (they run together): 9 s of 10 leaves under 2 s.
        let w = check_grace(&car("[[init.pre_stop]]\nsleep = 9\n[[pre_stop]]\nsleep = 1\n"), None, None).unwrap();
        assert!(w.as_deref().is_some_and(|w| w.starts_with("the preStop of sidecar px may take up to 9s")), "{w:?}");
        let f = car("[[init.pre_stop]]\nsleep = 4\n[[pre_stop]]\nsleep = 4\n");
        assert_eq!(check_grace(&f, None, None), Ok(None), "4 s each, together: 6 s left");
    }

    #[test]
    fn the_plan_names_an_action_once() {
        let p = plan(&file("[[pre_stop]]\nsleep = 20\n[[pre_stop]]\nname = \"drain\"\nsleep = 1\n"));
        assert!(p.contains("pre_stop 1: sleep 20s\n") && p.contains("pre_stop 2: drain: sleep 1s\n"), "{p}");
    }
}
