//! podinit: a container's PID 1 with the lifecycle the kubelet gives a pod.
//!
//! `main` parses the invocation, sets up logging and hands each verb to its
//! module; it alone turns outcomes into podinit's exit status (SPEC behaviour 10).

mod actions;
mod cli;
mod config;
mod duration;
mod events;
mod hooks;
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

fn main() {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let env = |k: &str| std::env::var(k).ok();
    let inv = match cli::parse(args, &env) {
        Ok(inv) => inv,
        Err(e) => usage_error(&e),
    };
    events::init(inv.log_level, inv.log_format);
    let code = match inv.verb {
        Verb::Help => {
            print!("{}", cli::HELP);
            0
        }
        Verb::Version => {
            println!("podinit {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Verb::Run(opts) => run(opts),
        Verb::Check { config } => check(config.as_deref().or(env("PODINIT_CONFIG").as_deref().map(Path::new))),
        Verb::PreStop | Verb::Status { .. } => {
            log::error!("this verb is not available yet in podinit {}", env!("CARGO_PKG_VERSION"));
            1
        }
    };
    std::process::exit(code);
}

fn usage_error(message: &str) -> ! {
    eprintln!("podinit: {}\n{}", url::redact(message), cli::USAGE);
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
            print!("{}", config::plan(&file));
            0
        }
        Err(e) => {
            log::error!("{e}");
            EXIT_USAGE
        }
    }
}
