//! podinit: a container's PID 1 with the lifecycle the kubelet gives a pod.
//!
//! `main` parses the invocation, sets up logging and hands each verb to its
//! module; it alone turns outcomes into podinit's exit status (SPEC behaviour 10).

mod cli;
mod duration;
mod events;
mod process;
mod signals;
mod supervisor;

use cli::Verb;
use std::path::Path;

/// podinit's own usage or configuration error.
const EXIT_USAGE: i32 = 2;
/// The config podinit reads when none is named.
const DEFAULT_CONFIG: &str = "/etc/podinit.toml";

fn main() {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let env = |k: &str| std::env::var(k).ok();
    let inv = match cli::parse(args, &env) {
        Ok(inv) => inv,
        Err(e) => {
            eprintln!("podinit: {e}\n{}", cli::USAGE);
            std::process::exit(EXIT_USAGE);
        }
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
        Verb::Run(opts) => {
            if let Some(path) = &opts.config {
                log::error!("{}: config files are not supported by this version yet; run without -c / PODINIT_CONFIG", path.display());
                EXIT_USAGE
            } else {
                if Path::new(DEFAULT_CONFIG).exists() {
                    log::warn!("{DEFAULT_CONFIG} is ignored: config files are not supported by this version yet");
                }
                supervisor::run(opts)
            }
        }
        Verb::PreStop | Verb::Status { .. } | Verb::Check { .. } => {
            log::error!(
                "this verb is not available yet in podinit {}",
                env!("CARGO_PKG_VERSION")
            );
            1
        }
    };
    std::process::exit(code);
}
