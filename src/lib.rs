//! podinit: a container's PID 1 with the lifecycle the kubelet gives a pod.
//!
//! `main` parses the invocation, sets up logging and hands each verb to its
//! module; it alone turns outcomes into podinit's exit status (docs/lifecycle.md B10).
//! The crate is a library only so that the fuzz target in fuzz/ can reach the
//! config loader (`fuzz_config`, built with `--cfg fuzzing`); src/main.rs calls `main`.

mod actions;
mod cli;
mod client;
mod config;
mod control;
mod duration;
mod events;
mod hooks;
mod probes;
mod process;
mod runner;
mod signals;
mod steps;
mod supervisor;
mod terminal;
mod url;
mod user;

use cli::{RunOptions, Verb};
use std::path::Path;

/// podinit's own usage or configuration error.
const EXIT_USAGE: i32 = 2;

/// podinit's entry point; never returns.
pub fn main() -> ! {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let env = |k: &str| std::env::var(k).ok();
    let inv = match cli::parse(args, &env) {
        Ok(inv) => inv,
        Err(e) => usage_error(&e),
    };
    events::init(inv.log_level, inv.log_format);
    let code = match inv.verb {
        Verb::Help => {
            out(cli::HELP);
            0
        }
        Verb::Version => {
            out(&format!("podinit {}\n", env!("CARGO_PKG_VERSION")));
            0
        }
        Verb::Usage(text) => {
            out(text);
            0
        }
        Verb::License => {
            out(cli::LICENSE);
            0
        }
        Verb::Run(opts) => run(opts),
        Verb::Check { config } => check(config.as_deref().or(env("PODINIT_CONFIG").as_deref().map(Path::new))),
        Verb::PreStop { config } => pre_stop(config.as_deref().or(env("PODINIT_CONFIG").as_deref().map(Path::new))),
        Verb::Status { json, ready, live } => status(json, ready, live),
    };
    std::process::exit(code);
}

/// The config fuzz target's entry: load, plan and resolve any text; only a
/// panic is a finding. Built only for fuzzing (cargo-fuzz sets `--cfg fuzzing`).
#[cfg(fuzzing)]
pub fn fuzz_config(text: &str) {
    let env = |k: &str| k.len().is_multiple_of(2).then(|| k.to_lowercase());
    if let Ok(file) = config::parse(text, &env) {
        let _ = config::plan(&file);
        let opts = cli::parse(vec!["--".into(), "true".into()], &|_: &str| None);
        if let Ok(cli::Invocation { verb: Verb::Run(opts), .. }) = opts {
            let _ = config::resolve(&opts, file);
        }
    }
}

/// Runs the restore (L39) of each registry action in the config's pre_stop,
/// in order, as after an in-place restart: (name, succeeded, message) each.
/// A hook for the tests until the supervisor's restart path calls
/// `Kind::restore` itself; unused by the binary (and so not in it).
#[doc(hidden)]
pub fn restore_registries(path: &Path) -> Result<Vec<(String, bool, String)>, String> {
    let file = config::load(path)?;
    let undo = file.pre_stop.iter().filter_map(|a| Some((a, a.kind.restore()?)));
    let run = |(a, kind): (&actions::Action, actions::Kind)| match actions::run_blocking(
        &kind,
        a.timeout.unwrap_or(actions::DEFAULT_ATTEMPT),
    ) {
        actions::Outcome::Success(m) => (a.name.clone(), true, m),
        actions::Outcome::Failure { message, .. } => (a.name.clone(), false, message),
    };
    Ok(undo.map(run).collect())
}

fn usage_error(message: &str) -> ! {
    eout(&format!("podinit: {}\n{}\n", url::redact(message), cli::USAGE));
    std::process::exit(EXIT_USAGE);
}

/// `podinit [OPTIONS] COMMAND`: load the config, then supervise.
fn run(opts: RunOptions) -> i32 {
    let file = match config::choose(opts.config.as_deref()) {
        Some(path) => match config::load(&path) {
            Ok(f) => f,
            Err(e) => {
                log::error!("{e}");
                return EXIT_USAGE;
            }
        },
        None if opts.command.is_empty() => usage_error(cli::MISSING_COMMAND),
        None => config::File::default(),
    };
    match config::resolve(&opts, file) {
        Ok(spec) => supervisor::run(opts, spec),
        Err(e) => {
            log::error!("{e}");
            EXIT_USAGE
        }
    }
}

/// `podinit check [-c FILE]`: validate and print the resolved plan.
fn check(named: Option<&Path>) -> i32 {
    let Some(path) = config::choose(named) else {
        log::error!("no config to check: give -c FILE (or PODINIT_CONFIG); {} does not exist", config::DEFAULT_PATH);
        return EXIT_USAGE;
    };
    // As at start: PODINIT_GRACE and PODINIT_PRE_STOP_SLEEP count when set.
    let env_duration = |var: &str| match std::env::var(var).ok().filter(|v| !v.is_empty()) {
        Some(v) => duration::parse(&v).map(Some).map_err(|e| format!("environment variable {var}: {e}")),
        None => Ok(None),
    };
    let checked = config::load(&path).and_then(|file| {
        let grace = env_duration("PODINIT_GRACE")?.map(|g| (g, "PODINIT_GRACE"));
        let warning = config::check_grace(&file, env_duration("PODINIT_PRE_STOP_SLEEP")?, grace)?;
        Ok((file, warning))
    });
    match checked {
        Ok((file, warning)) => {
            out(&config::plan(&file));
            if let Some(w) = warning {
                out(&format!("warning: {w}\n"));
            }
            0
        }
        Err(e) => {
            log::error!("{e}");
            EXIT_USAGE
        }
    }
}

/// `podinit pre-stop`: the exec-hook target. Asks the running podinit to run
/// its preStop part and waits for it; runs the config's pre_stop actions here
/// only when no podinit supervises this container and no socket file exists
/// (so preStop never runs twice). Exit 0 when every action succeeded, 1 otherwise.
fn pre_stop(named: Option<&Path>) -> i32 {
    let connected = client::connect();
    if let Err(why) = &connected {
        let sup = client::supervisor();
        if !why.is_missing() || sup != client::Supervisor::Absent {
            eout(&format!(
                "podinit pre-stop: cannot reach podinit: {}; nothing was run here (podinit runs preStop itself on SIGTERM)\n",
                why.explain(&sup)
            ));
            return 1;
        }
    }
    if let Ok(stream) = connected {
        return match control::call(stream, control::Ask::PreStop) {
            Ok(answer) => {
                let answer = answer.trim();
                match answer.split_once(' ').unwrap_or((answer, "")) {
                    ("ok", text) => {
                        eout(&format!("podinit pre-stop: {text}\n"));
                        0
                    }
                    (_, text) => {
                        let text = if text.is_empty() { "no answer from podinit" } else { text };
                        eout(&format!("podinit pre-stop: {text}\n"));
                        1
                    }
                }
            }
            Err(e) => {
                eout(&format!("podinit pre-stop: the running podinit did not answer: {e}\n"));
                1
            }
        };
    }
    let mut actions = Vec::new();
    let mut main = config::Main::default();
    if let Some(path) = config::choose(named) {
        match config::load(&path) {
            Ok(f) => {
                actions = f.pre_stop;
                main = f.main;
            }
            Err(e) => {
                log::error!("{e}");
                return 1;
            }
        }
    }
    if let Some(d) = std::env::var("PODINIT_PRE_STOP_SLEEP").ok().and_then(|v| duration::parse(&v).ok()) {
        actions.push(actions::Action { name: "pre-stop-sleep".into(), kind: actions::Kind::Sleep(d), timeout: None });
    }
    if actions.is_empty() {
        let tried: Vec<_> = control::candidates().iter().map(|p| p.display().to_string()).collect();
        log::error!(
            "pre-stop: no running podinit (tried {}) and no pre_stop actions in a config: nothing to do",
            tried.join(", ")
        );
        return 1;
    }
    log::info!("no running podinit: running {} pre_stop action(s) here", actions.len());
    let failures = hooks::run_standalone(&actions, &main);
    i32::from(!failures.is_empty())
}

/// `podinit status`: the running podinit's lifecycle state.
fn status(json: bool, ready: bool, live: bool) -> i32 {
    let answer = client::connect().map(|s| control::call(s, control::Ask::Status));
    let text = match answer {
        Ok(Ok(t)) if t.trim_start().starts_with('{') => t.trim().to_string(),
        Ok(Ok(t)) => {
            eout(&format!("podinit status: {}\n", t.trim()));
            return 1;
        }
        Ok(Err(e)) => {
            eout(&format!("podinit status: the running podinit did not answer: {e}\n"));
            return 1;
        }
        Err(why) => {
            let sup = client::supervisor();
            if why.is_missing() && sup == client::Supervisor::Absent {
                eout(&format!("podinit status: no running podinit (tried {})\n", why.tried()));
            } else {
                eout(&format!("podinit status: cannot reach podinit: {}\n", why.explain(&sup)));
            }
            return 1;
        }
    };
    let field = |k: &str| events::json_field(&text, k).unwrap_or_default();
    if ready || live {
        let yes = field(if ready { "ready" } else { "live" }) == "true";
        if !json {
            out(&format!("{}\n", if yes { "yes" } else { "no" }));
        } else {
            out(&format!("{text}\n"));
        }
        return i32::from(!yes);
    }
    if json {
        out(&format!("{text}\n"));
        return 0;
    }
    let pid = field("main_pid");
    out(&format!("Phase:       {}\n", field("phase")));
    out(&format!("Main PID:    {}\n", if pid == "null" { "-" } else { &pid }));
    out(&format!("Started:     {}\n", field("started_at")));
    out(&format!("Restarts:    {}\n", field("restarts")));
    out(&format!("Ready:       {}\n", field("ready")));
    out(&format!("Live:        {}\n", field("live")));
    out(&format!("PreStop:     {}\n", pre_stop_line(&text)));
    let sidecars = events::json_objects_after(&text, "\"sidecars\":[");
    if !sidecars.is_empty() {
        out("Sidecars:\n");
        for sc in sidecars {
            let f = |k: &str| events::json_field(sc, k).unwrap_or_default();
            let pid = f("pid");
            out(&format!(
                "  {}  pid {}  restarts {}  started {}  ready {}\n",
                f("name"),
                if pid == "null" { "-" } else { &pid },
                f("restarts"),
                f("started"),
                f("ready")
            ));
        }
    }
    out("Events:\n");
    for e in events::json_objects_after(&text, "\"events\":[") {
        let f = |k: &str| events::json_field(e, k).unwrap_or_default();
        out(&format!("  {} {}: {}\n", f("ts"), f("reason"), f("message")));
    }
    0
}

/// The status JSON's `pre_stop` object as one line: `finished after 1502ms, 1 failed: NAME: ...`.
fn pre_stop_line(status: &str) -> String {
    let Some(obj) = events::json_objects_after(status, "\"pre_stop\":").into_iter().next() else {
        return "?".into();
    };
    let field = |k: &str| events::json_field(obj, k).unwrap_or_default();
    let mut line = field("state");
    if let Ok(ms) = field("took_ms").parse::<u64>() {
        line += &format!(" after {}", duration::show(std::time::Duration::from_millis(ms)));
    }
    let failures = events::json_strings_after(obj, "\"failures\":[");
    if !failures.is_empty() {
        line += &format!(", {} failed: {}", failures.len(), failures.join("; "));
    }
    line
}

/// Writes to stderr, never panicking.
fn eout(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// Writes to stdout; a closed pipe (`podinit status | head`) is not an error worth a panic.
fn out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
}
