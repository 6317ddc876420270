//! The TOML config (SPEC "Config file"): serde schema with unknown keys
//! rejected, `${VAR}` expansion, durations, signals and users resolved, every
//! action checked against its section, all while the file loads, so that an
//! error names file, line and key before anything runs (exit 2).
//!
//! `resolve` merges the file under the command line and the environment into
//! the one `Spec` the supervisor runs.

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
/// to `max`; back to immediate after `reset` of stable running (LIFECYCLE L13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub reset: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { initial: Duration::from_secs(10), max: Duration::from_secs(300), reset: Duration::from_secs(600) }
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
    pub restart: Option<Restart>,
    pub main: Main,
    pub init: Vec<Step>,
    pub post_start: Vec<Hook>,
    pub pre_stop: Vec<Action>,
    pub probes: Vec<Probe>,
    pub backoff: Backoff,
}

/// Everything podinit runs, resolved: command line > environment > file > defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub grace: Duration,
    pub stop_signal: i32,
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
    let mut pre_stop = file.pre_stop;
    if let Some(d) = cli.pre_stop_sleep {
        pre_stop.push(Action { name: "pre-stop-sleep".into(), kind: Kind::Sleep(d), timeout: None });
    }
    Ok(Spec {
        grace: cli.grace.or(file.grace_period).unwrap_or(Duration::from_secs(30)),
        stop_signal: cli.stop_signal.or(file.stop_signal).unwrap_or(libc::SIGTERM),
        restart: file.restart.unwrap_or(Restart::Never),
        main,
        init: file.init,
        post_start: file.post_start,
        pre_stop,
        probes: file.probes,
        backoff: file.backoff,
    })
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
    line(format!("grace_period: {}", show(file.grace_period, "30s")));
    line(format!("stop_signal: {}", file.stop_signal.map(signals::name).unwrap_or("SIGTERM (default)".into())));
    line(format!(
        "restart: {}",
        match file.restart {
            None => "never (default)",
            Some(Restart::Never) => "never",
            Some(Restart::OnFailure) => "on-failure",
            Some(Restart::Always) => "always",
        }
    ));
    if file.restart.is_some_and(|r| r != Restart::Never) {
        let b = file.backoff;
        line(format!(
            "  back-off: first restart at once, then {} doubling to {}, reset after {} running",
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
    if let Some((name, ids)) = &m.user {
        line(format!("  user: {name} (uid {}, gid {}, groups {:?})", ids.uid, ids.gid, ids.groups));
    }
    if let Some(w) = &m.workdir {
        line(format!("  workdir: {}", w.display()));
    }
    for (k, v) in &m.env {
        let v = if crate::actions::is_secret_header(k) || k.to_ascii_lowercase().contains("pass") { "***" } else { v };
        line(format!("  env: {k}={v}"));
    }
    let timeout = |a: &Action| a.timeout.map(|t| format!(", timeout {}", duration::show(t))).unwrap_or_default();
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
        let t = if matches!(s.action.kind, Kind::Tcp(_) | Kind::Http(_) | Kind::Dns(_)) {
            String::new()
        } else {
            timeout(&s.action)
        };
        line(format!("init {}: {}: {}{rule}{t}", i + 1, s.action.name, s.action.kind.describe()));
    }
    for (i, h) in file.post_start.iter().enumerate() {
        let on = if h.kill_on_failure { "kill" } else { "ignore" };
        line(format!(
            "post_start {}: {}: {}{}, on failure {on}",
            i + 1,
            h.action.name,
            h.action.kind.describe(),
            timeout(&h.action)
        ));
    }
    for (i, a) in file.pre_stop.iter().enumerate() {
        line(format!("pre_stop {}: {}: {}{}", i + 1, a.name, a.kind.describe(), timeout(a)));
        if let Some(undo) = a.kind.restore() {
            line(format!("  undone when the main process is restarted in place and ready: {}", undo.describe()));
        }
    }
    for p in &file.probes {
        line(format!(
            "probe.{}: {}: initial_delay {}, period {}, timeout {}, success_threshold {}, failure_threshold {}",
            p.which,
            p.action.kind.describe(),
            duration::show(p.initial_delay),
            duration::show(p.period),
            duration::show(p.action.timeout.unwrap_or(Duration::from_secs(1))),
            p.success_threshold,
            p.failure_threshold
        ));
    }
    out
}
