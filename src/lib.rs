//! podinit: a container's PID 1 with the lifecycle the kubelet gives a pod.
//!
//! `main` parses the invocation, sets up logging and hands each verb to its
//! module; it alone turns outcomes into podinit's exit status (SPEC behaviour 10).
//! The crate is a library only so that the fuzz target in fuzz/ can reach the
//! config loader (`fuzz_config`, built with `--cfg fuzzing`); src/main.rs calls `main`.

mod actions;
mod cli;
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
    match config::load(&path) {
        Ok(file) => {
            out(&config::plan(&file));
            0
        }
        Err(e) => {
            log::error!("{e}");
            EXIT_USAGE
        }
    }
}

/// `podinit pre-stop`: the exec-hook target. Asks the running podinit to run
/// its preStop part and waits for it; with none running, runs the config's
/// pre_stop actions here. Exit 0 when every action succeeded, 1 otherwise.
fn pre_stop(named: Option<&Path>) -> i32 {
    if let Some(stream) = control::connect() {
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
    let answer = control::connect().map(|s| control::call(s, control::Ask::Status));
    let text = match answer {
        Some(Ok(t)) if t.trim_start().starts_with('{') => t.trim().to_string(),
        Some(Ok(t)) => {
            eout(&format!("podinit status: {}\n", t.trim()));
            return 1;
        }
        Some(Err(e)) => {
            eout(&format!("podinit status: the running podinit did not answer: {e}\n"));
            return 1;
        }
        None => {
            let tried: Vec<_> = control::candidates().iter().map(|p| p.display().to_string()).collect();
            eout(&format!("podinit status: no running podinit (tried {})\n", tried.join(", ")));
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
    out(&format!("Phase:       {}\n", field("phase")));
    out(&format!("Main PID:    {}\n", field("main_pid")));
    out(&format!("Started:     {}\n", field("started_at")));
    out(&format!("Restarts:    {}\n", field("restarts")));
    out(&format!("Ready:       {}\n", field("ready")));
    out(&format!("Live:        {}\n", field("live")));
    out(&format!("PreStop:     {}\n", field("pre_stop")));
    out("Events:\n");
    for e in events::json_strings_after(&text, "\"events\":[") {
        out(&format!("  {e}\n"));
    }
    0
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
