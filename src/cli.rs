//! The command line and the `PODINIT_*` environment: verbs, tini / dumb-init
//! compatible flags, precedence command line > environment > defaults.

use crate::{duration, signals};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// The usage error for a run with no command and no config to name one.
pub const MISSING_COMMAND: &str =
    "missing COMMAND: say what podinit should run, e.g. podinit -- nginx -g 'daemon off;', or name a config with -c";

/// podinit's license, printed by `-l` (tini `-l`).
pub const LICENSE: &str = include_str!("../LICENSE");

pub const USAGE: &str =
    "usage: podinit [OPTIONS] [--] COMMAND [ARG...] | pre-stop | status | check (podinit --help for more)";

pub const HELP: &str = "\
podinit: a container's PID 1 with the lifecycle the kubelet gives a pod.

usage:
  podinit [OPTIONS] [--] COMMAND [ARG...]   be the init; run COMMAND as the main process
  podinit pre-stop [-c FILE]                 run the preStop sequence in the running podinit
                                             (or the config's pre_stop actions when none runs)
  podinit status [--json] [--ready|--live]   print the lifecycle state
  podinit check [-c FILE]                    validate a config and print the resolved plan
  podinit --help | --version

A COMMAND named like a verb is run with --: podinit -- status

options:
  -c, --config FILE       TOML config (PODINIT_CONFIG; default /etc/podinit.toml if present)
  -s                      accepted for tini compatibility (podinit is a subreaper whenever
                          it is not PID 1)
  -g                      forward signals to the main process's whole process group
  -e CODE                 report exit code CODE of the main process as 0 (repeatable)
  -p SIG                  parent-death signal for podinit itself
  -r, --rewrite FROM:TO   rewrite a forwarded signal, e.g. 15:3; TO = 0 drops it
  -w                      log each reaped process that is not the main process as a warning
  -l                      print podinit's license and exit
  -v                      more logging, repeatable (PODINIT_LOG=error|warn|info|debug|trace)
  --log-format text|json  event lines as text or JSON (PODINIT_LOG_FORMAT)
  --grace DURATION        termination grace period (overrides grace_period), default 30s
                          (PODINIT_GRACE)
  --stop-signal SIG       signal that asks the main process to stop, default SIGTERM
                          (PODINIT_STOP_SIGNAL)
  --stop-on SIG           a signal that starts the stop sequence instead of being
                          forwarded; repeatable; default SIGTERM (PODINIT_STOP_ON=
                          SIGTERM,SIGQUIT for images with STOPSIGNAL SIGQUIT, like nginx)
  --pre-stop-sleep DUR    a preStop drain delay without a config (PODINIT_PRE_STOP_SLEEP)
  -h, --help              this text
  --version               podinit's version

tini's variables work too: TINI_SUBREAPER (accepted: podinit is a subreaper anyway),
TINI_KILL_PROCESS_GROUP (non-empty: as -g), TINI_VERBOSITY (0 error, 1 info, the
default, 2 debug, 3 trace; PODINIT_LOG wins). podinit VERB --help: that verb's usage.

Signals: SIGTERM, TERM or 15. Durations: 30, 30s, 1m30s, 500ms.
Exit status: the main process's code, 128+N if signal N killed it; 2 usage or config
error, 126 command not executable, 127 command not found.
";

/// `podinit pre-stop --help`.
pub const PRE_STOP_HELP: &str = "\
usage: podinit pre-stop [-c FILE]

The target of a Kubernetes preStop exec hook (or of `docker exec` before `docker stop`):
asks the podinit running in this container, over its control socket, to run the preStop
sequence (the config's pre_stop actions) and waits until it has finished; a SIGTERM
after it sends the stop signal at once. Called twice, it waits for the same run. Only
when no podinit runs in this container does it run the config's pre_stop actions itself.

options:
  -c, --config FILE   the config whose pre_stop actions run when no podinit runs
                      (PODINIT_CONFIG; default /etc/podinit.toml if present)
  -h, --help          this text

environment: PODINIT_SOCKET (the control socket), PODINIT_PRE_STOP_SLEEP
exit status: 0 when every preStop action succeeded, 1 otherwise (the kubelet then
records FailedPreStopHook)
";

/// `podinit status --help`.
pub const STATUS_HELP: &str = "\
usage: podinit status [--json] [--ready | --live]

Prints the running podinit's lifecycle state: phase, main PID, start time, restarts,
readiness, liveness, the preStop state and the latest events.

options:
  --json        the state as one JSON object
  --ready       print yes or no; exit 0 only when ready (a HEALTHCHECK)
  --live        print yes or no; exit 0 only when live
  -h, --help    this text

environment: PODINIT_SOCKET (the control socket)
exit status: 0; 1 when not ready / not live, or when no podinit answered
";

/// `podinit check --help`.
pub const CHECK_HELP: &str = "\
usage: podinit check [-c FILE]

Validates a config and prints the resolved plan; nothing runs. An error names the file,
line and key. Checked against the grace period (grace_period, or PODINIT_GRACE as at
start): a post_start or pre_stop `sleep` longer than it is an error, and a preStop
whose worst case (sleeps plus timeouts) leaves under 2 s of it is a warning.
Every key, its default and where it is allowed: docs/config.md in podinit's source.

options:
  -c, --config FILE   the config (PODINIT_CONFIG; default /etc/podinit.toml)
  -h, --help          this text

exit status: 0 valid, 2 invalid
";

/// How event lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything `podinit [OPTIONS] COMMAND` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    pub command: Vec<OsString>,
    pub config: Option<PathBuf>,
    pub group: bool,
    pub zero_codes: Vec<i32>,
    pub parent_death: Option<i32>,
    pub rewrite: Vec<(i32, i32)>,
    /// From `--grace` or PODINIT_GRACE; the config file fills in below these.
    pub grace: Option<Duration>,
    pub stop_signal: Option<i32>,
    /// From `--stop-on` (repeatable) or PODINIT_STOP_ON: the signals that start the stop sequence.
    pub stop_on: Option<Vec<i32>>,
    pub pre_stop_sleep: Option<Duration>,
    /// `-w` (tini): log each reaped process that is not the main process as a warning.
    pub warn_on_reap: bool,
}

impl RunOptions {
    /// The signal to deliver for `sig` after `--rewrite`; None when rewritten to 0.
    pub fn rewritten(&self, sig: i32) -> Option<i32> {
        match self.rewrite.iter().rev().find(|(from, _)| *from == sig) {
            Some(&(_, 0)) => None,
            Some(&(_, to)) => Some(to),
            None => Some(sig),
        }
    }

    /// The exit code podinit reports for the main process's code (after `-e`).
    pub fn reported(&self, code: i32) -> i32 {
        if self.zero_codes.contains(&code) {
            0
        } else {
            code
        }
    }
}

/// What podinit was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Verb {
    Run(RunOptions),
    PreStop {
        config: Option<PathBuf>,
    },
    Status {
        json: bool,
        ready: bool,
        live: bool,
    },
    Check {
        config: Option<PathBuf>,
    },
    Help,
    /// `VERB --help`: that verb's usage text.
    Usage(&'static str),
    Version,
    /// `-l` (tini): print the license.
    License,
}

/// The parsed invocation: the verb plus settings shared by all verbs.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub verb: Verb,
    pub log_level: log::LevelFilter,
    pub log_format: LogFormat,
}

const VERBS: [&str; 3] = ["pre-stop", "status", "check"];

/// Parses argv (without argv[0]) and the environment; errors are usage errors (exit 2).
pub fn parse(args: Vec<OsString>, env: &dyn Fn(&str) -> Option<String>) -> Result<Invocation, String> {
    let mut p = Parser { args: args.into_iter(), pending_short: None };
    let mut run = RunOptions {
        command: Vec::new(),
        config: None,
        group: false,
        zero_codes: Vec::new(),
        parent_death: None,
        rewrite: Vec::new(),
        grace: None,
        stop_signal: None,
        stop_on: None,
        pre_stop_sleep: None,
        warn_on_reap: false,
    };
    let mut verbose = 0u8;
    let mut log_format = None;
    let mut verb = None;

    while let Some(arg) = p.next_option()? {
        match arg {
            Arg::Opt(opt) => match opt.as_str() {
                "-h" | "--help" => return invocation(Verb::Help, 0, None, env),
                "--version" => return invocation(Verb::Version, 0, None, env),
                "-l" => return invocation(Verb::License, 0, None, env),
                "-s" => {}
                "-w" => run.warn_on_reap = true,
                "-g" => run.group = true,
                "-v" => verbose = verbose.saturating_add(1),
                "-c" | "--config" => run.config = Some(PathBuf::from(p.value(&opt)?)),
                "-e" => {
                    let v = p.value(&opt)?;
                    let code = v.parse::<i32>().ok().filter(|c| (0..=255).contains(c));
                    run.zero_codes.push(code.ok_or(format!("-e '{v}': expected an exit code from 0 to 255"))?);
                }
                "-p" => run.parent_death = Some(signals::parse(&p.value(&opt)?).map_err(|e| format!("-p: {e}"))?),
                "-r" | "--rewrite" => run.rewrite.push(parse_rewrite(&p.value(&opt)?)?),
                "--grace" => run.grace = Some(duration::parse(&p.value(&opt)?).map_err(|e| format!("--grace: {e}"))?),
                "--stop-signal" => {
                    run.stop_signal = Some(signals::parse(&p.value(&opt)?).map_err(|e| format!("--stop-signal: {e}"))?)
                }
                "--stop-on" => {
                    let sig = signals::parse_stop_on(&p.value(&opt)?).map_err(|e| format!("--stop-on: {e}"))?;
                    run.stop_on.get_or_insert_with(Vec::new).push(sig);
                }
                "--pre-stop-sleep" => {
                    let v = p.value(&opt)?;
                    run.pre_stop_sleep = Some(duration::parse(&v).map_err(|e| format!("--pre-stop-sleep: {e}"))?)
                }
                "--log-format" => {
                    log_format = Some(parse_log_format(&p.value(&opt)?).map_err(|e| format!("--log-format: {e}"))?)
                }
                _ => return Err(format!("unknown option '{opt}'")),
            },
            Arg::Word(word) => {
                if VERBS.iter().any(|v| word == *v) && run.command.is_empty() {
                    verb = Some(parse_verb(&word.to_string_lossy(), &mut p)?);
                } else {
                    run.command.push(word);
                    run.command.extend(p.rest());
                }
                break;
            }
            Arg::Rest(rest) => {
                run.command = rest;
                break;
            }
        }
    }

    let verb = match verb {
        Some(v) => v,
        None => {
            if run.grace.is_none() {
                run.grace = env_value(env, "PODINIT_GRACE", duration::parse)?;
            }
            if run.stop_signal.is_none() {
                run.stop_signal = env_value(env, "PODINIT_STOP_SIGNAL", signals::parse)?;
            }
            if run.stop_on.is_none() {
                run.stop_on = env_value(env, "PODINIT_STOP_ON", signals::parse_stop_on_list)?;
            }
            if run.pre_stop_sleep.is_none() {
                run.pre_stop_sleep = env_value(env, "PODINIT_PRE_STOP_SLEEP", duration::parse)?;
            }
            if run.config.is_none() {
                run.config = env("PODINIT_CONFIG").filter(|c| !c.is_empty()).map(PathBuf::from);
            }
            // tini's variables, for images that switch from tini and keep them.
            // TINI_SUBREAPER needs nothing: podinit is a subreaper whenever it is not PID 1.
            if env("TINI_KILL_PROCESS_GROUP").is_some_and(|v| !v.is_empty()) {
                run.group = true;
            }
            Verb::Run(run)
        }
    };
    invocation(verb, verbose, log_format, env)
}

fn invocation(
    verb: Verb,
    verbose: u8,
    log_format: Option<LogFormat>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Invocation, String> {
    let base = env_value(env, "PODINIT_LOG", |v| {
        v.parse::<log::LevelFilter>()
            .map_err(|_| format!("'{v}' is not a log level: write error, warn, info, debug or trace"))
    })?;
    let base = match base {
        Some(level) => level,
        None => env_value(env, "TINI_VERBOSITY", tini_verbosity)?.unwrap_or(log::LevelFilter::Info),
    };
    let log_level = log::LevelFilter::iter()
        .nth((base as usize + verbose as usize).min(log::LevelFilter::max() as usize))
        .unwrap_or(log::LevelFilter::max());
    let log_format = match log_format {
        Some(f) => f,
        None => env_value(env, "PODINIT_LOG_FORMAT", parse_log_format)?.unwrap_or(LogFormat::Text),
    };
    Ok(Invocation { verb, log_level, log_format })
}

fn env_value<T>(
    env: &dyn Fn(&str) -> Option<String>,
    var: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match env(var).filter(|v| !v.is_empty()) {
        Some(v) => parse(&v).map(Some).map_err(|e| format!("environment variable {var}: {e}")),
        None => Ok(None),
    }
}

/// TINI_VERBOSITY as tini counts it (1 is tini's default, each -v adds one),
/// mapped so that tini's default is podinit's: 0 error (tini then prints only
/// fatal errors), 1 info, 2 debug, 3 and more trace.
fn tini_verbosity(v: &str) -> Result<log::LevelFilter, String> {
    match v.trim().parse::<u32>() {
        Ok(0) => Ok(log::LevelFilter::Error),
        Ok(1) => Ok(log::LevelFilter::Info),
        Ok(2) => Ok(log::LevelFilter::Debug),
        Ok(_) => Ok(log::LevelFilter::Trace),
        Err(_) => Err(format!("'{v}' is not a number: write 0 (errors only) to 3 (trace), 1 is the default")),
    }
}

fn parse_log_format(v: &str) -> Result<LogFormat, String> {
    match v {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("'{v}' is not a log format: write text or json")),
    }
}

fn parse_rewrite(v: &str) -> Result<(i32, i32), String> {
    let (from, to) = v.split_once(':').ok_or(format!("--rewrite '{v}': expected FROM:TO, e.g. 15:3"))?;
    let from = signals::parse(from).map_err(|e| format!("--rewrite '{v}': {e}"))?;
    let why = match from {
        libc::SIGKILL | libc::SIGSTOP => Some("the kernel never lets a process catch it, so podinit never sees it"),
        libc::SIGCHLD => Some("it is podinit's own: it tells podinit to reap a child, and is never forwarded"),
        _ => None,
    };
    if let Some(why) = why {
        return Err(format!("--rewrite '{v}': {} cannot be rewritten: {why}", signals::name(from)));
    }
    let to = if to.trim() == "0" { 0 } else { signals::parse(to).map_err(|e| format!("--rewrite '{v}': {e}"))? };
    Ok((from, to))
}

fn parse_verb(verb: &str, p: &mut Parser) -> Result<Verb, String> {
    let mut config = None;
    let (mut json, mut ready, mut live) = (false, false, false);
    let help = match verb {
        "pre-stop" => PRE_STOP_HELP,
        "status" => STATUS_HELP,
        _ => CHECK_HELP,
    };
    while let Some(arg) = p.next_option()? {
        match (verb, arg) {
            (_, Arg::Opt(o)) if o == "-h" || o == "--help" => return Ok(Verb::Usage(help)),
            ("status", Arg::Opt(o)) if o == "--json" => json = true,
            ("status", Arg::Opt(o)) if o == "--ready" => ready = true,
            ("status", Arg::Opt(o)) if o == "--live" => live = true,
            ("check" | "pre-stop", Arg::Opt(o)) if o == "-c" || o == "--config" => {
                config = Some(PathBuf::from(p.value(&o)?))
            }
            (_, Arg::Opt(o)) => return Err(format!("{verb}: unknown option '{o}'")),
            (_, Arg::Word(w)) => return Err(format!("{verb}: unexpected argument '{}'", w.to_string_lossy())),
            (_, Arg::Rest(_)) => return Err(format!("{verb}: takes no command")),
        }
    }
    if ready && live {
        return Err("status: give --ready or --live, not both".into());
    }
    Ok(match verb {
        "pre-stop" => Verb::PreStop { config },
        "status" => Verb::Status { json, ready, live },
        _ => Verb::Check { config },
    })
}

enum Arg {
    /// `-x` or `--long` (a `--long=value` leaves its value pending).
    Opt(String),
    /// The first word that is not an option.
    Word(OsString),
    /// Everything after `--`.
    Rest(Vec<OsString>),
}

struct Parser {
    args: std::vec::IntoIter<OsString>,
    /// The rest of a short-option cluster (`-vvg`) or the value of `--opt=value`.
    pending_short: Option<Pending>,
}

enum Pending {
    Cluster(String),
    Value(String),
}

impl Parser {
    fn next_option(&mut self) -> Result<Option<Arg>, String> {
        match self.pending_short.take() {
            Some(Pending::Cluster(rest)) => {
                let mut chars = rest.chars();
                let c = chars.next().unwrap_or('-');
                let tail: String = chars.collect();
                if !tail.is_empty() {
                    self.pending_short = Some(Pending::Cluster(tail));
                }
                return Ok(Some(Arg::Opt(format!("-{c}"))));
            }
            Some(Pending::Value(v)) => return Err(format!("unexpected value '{v}'")),
            None => {}
        }
        let Some(arg) = self.args.next() else {
            return Ok(None);
        };
        if arg == "--" {
            return Ok(Some(Arg::Rest(self.args.by_ref().collect())));
        }
        let bytes = arg.as_encoded_bytes();
        if bytes.len() < 2 || bytes[0] != b'-' {
            return Ok(Some(Arg::Word(arg)));
        }
        let text = arg.into_string().map_err(|a| format!("option {a:?} is not valid UTF-8"))?;
        if let Some(long) = text.strip_prefix("--") {
            if let Some((name, value)) = long.split_once('=') {
                self.pending_short = Some(Pending::Value(value.to_string()));
                return Ok(Some(Arg::Opt(format!("--{name}"))));
            }
            return Ok(Some(Arg::Opt(text)));
        }
        let mut chars = text[1..].chars();
        let c = chars.next().unwrap_or('-');
        let tail: String = chars.collect();
        if !tail.is_empty() {
            self.pending_short = Some(Pending::Cluster(tail));
        }
        Ok(Some(Arg::Opt(format!("-{c}"))))
    }

    /// The value of option `opt`: `--opt=v`, `-ov` or the next argument.
    fn value(&mut self, opt: &str) -> Result<String, String> {
        match self.pending_short.take() {
            Some(Pending::Value(v)) | Some(Pending::Cluster(v)) => Ok(v),
            None => match self.args.next() {
                Some(v) => v.into_string().map_err(|v| format!("{opt}: value {v:?} is not valid UTF-8")),
                None => Err(format!("{opt} needs a value")),
            },
        }
    }

    fn rest(&mut self) -> Vec<OsString> {
        self.args.by_ref().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Invocation, String> {
        parse(args.iter().map(OsString::from).collect(), &|_| None)
    }

    fn opts(args: &[&str]) -> RunOptions {
        match run(args).unwrap().verb {
            Verb::Run(o) => o,
            v => panic!("not run: {v:?}"),
        }
    }

    #[test]
    fn tini_style_flags() {
        let o = opts(&["-s", "-g", "-e", "143", "-e3", "-p", "SIGKILL", "-r", "15:3", "--", "app", "-x"]);
        assert!(o.group);
        assert_eq!(o.zero_codes, vec![143, 3]);
        assert_eq!(o.parent_death, Some(libc::SIGKILL));
        assert_eq!(o.rewrite, vec![(15, 3)]);
        assert_eq!(o.command, vec![OsString::from("app"), OsString::from("-x")]);
        assert_eq!(o.rewritten(15), Some(3));
        assert_eq!(o.reported(143), 0);
        assert_eq!(o.reported(1), 1);
    }

    #[test]
    fn command_options_belong_to_the_command() {
        let o = opts(&["-v", "sh", "-c", "echo -g"]);
        assert_eq!((o.grace, o.stop_signal), (None, None));
        assert!(!o.group);
        assert_eq!(o.command.len(), 3);
    }

    #[test]
    fn clusters_long_values_and_levels() {
        let i = run(&["-vvg", "--grace=5s", "--rewrite=TERM:0", "true"]).unwrap();
        assert_eq!(i.log_level, log::LevelFilter::Trace);
        let Verb::Run(o) = i.verb else { panic!() };
        assert!(o.group);
        assert_eq!(o.grace, Some(Duration::from_secs(5)));
        assert_eq!(o.rewritten(libc::SIGTERM), None);
    }

    #[test]
    fn environment_is_below_the_command_line() {
        let env = |k: &str| match k {
            "PODINIT_GRACE" => Some("7".to_string()),
            "PODINIT_STOP_SIGNAL" => Some("QUIT".to_string()),
            "PODINIT_LOG" => Some("warn".to_string()),
            _ => None,
        };
        let i = parse(vec!["true".into()], &env).unwrap();
        assert_eq!(i.log_level, log::LevelFilter::Warn);
        let Verb::Run(o) = i.verb else { panic!() };
        assert_eq!((o.grace, o.stop_signal), (Some(Duration::from_secs(7)), Some(libc::SIGQUIT)));
        let i = parse(vec!["--grace".into(), "1".into(), "true".into()], &env).unwrap();
        let Verb::Run(o) = i.verb else { panic!() };
        assert_eq!(o.grace, Some(Duration::from_secs(1)));
        let bad = |k: &str| (k == "PODINIT_GRACE").then(|| "soon".to_string());
        let err = parse(vec!["true".into()], &bad).unwrap_err();
        assert!(err.contains("PODINIT_GRACE"), "{err}");
    }

    #[test]
    fn verbs_are_routed() {
        assert_eq!(run(&["pre-stop"]).unwrap().verb, Verb::PreStop { config: None });
        assert_eq!(
            run(&["status", "--json", "--ready"]).unwrap().verb,
            Verb::Status { json: true, ready: true, live: false }
        );
        assert_eq!(run(&["check", "-c", "x.toml"]).unwrap().verb, Verb::Check { config: Some("x.toml".into()) });
        assert_eq!(opts(&["--", "status"]).command, vec![OsString::from("status")]);
        assert_eq!(run(&["--version"]).unwrap().verb, Verb::Version);
    }

    #[test]
    fn tini_variables_and_flags() {
        let env = |k: &str| match k {
            "TINI_KILL_PROCESS_GROUP" => Some("1".to_string()),
            "TINI_SUBREAPER" => Some("1".to_string()),
            "TINI_VERBOSITY" => Some("2".to_string()),
            _ => None,
        };
        let i = parse(vec!["-w".into(), "true".into()], &env).unwrap();
        assert_eq!(i.log_level, log::LevelFilter::Debug);
        let Verb::Run(o) = i.verb else { panic!() };
        assert!(o.group && o.warn_on_reap);
        let o = opts(&["true"]);
        assert!(!o.group && !o.warn_on_reap);
        let empty = |k: &str| (k == "TINI_KILL_PROCESS_GROUP").then(String::new);
        let Verb::Run(o) = parse(vec!["true".into()], &empty).unwrap().verb else { panic!() };
        assert!(!o.group, "an empty TINI_KILL_PROCESS_GROUP is off");
        for (v, want) in [
            ("0", log::LevelFilter::Error),
            ("1", log::LevelFilter::Info),
            ("2", log::LevelFilter::Debug),
            ("3", log::LevelFilter::Trace),
            ("9", log::LevelFilter::Trace),
        ] {
            let e = |k: &str| (k == "TINI_VERBOSITY").then(|| v.to_string());
            assert_eq!(parse(vec!["true".into()], &e).unwrap().log_level, want, "TINI_VERBOSITY={v}");
        }
        // -v counts on top of TINI_VERBOSITY, and PODINIT_LOG wins over it.
        let e = |k: &str| (k == "TINI_VERBOSITY").then(|| "0".to_string());
        assert_eq!(parse(vec!["-vv".into(), "true".into()], &e).unwrap().log_level, log::LevelFilter::Info);
        let both = |k: &str| match k {
            "TINI_VERBOSITY" => Some("3".to_string()),
            "PODINIT_LOG" => Some("warn".to_string()),
            _ => None,
        };
        assert_eq!(parse(vec!["true".into()], &both).unwrap().log_level, log::LevelFilter::Warn);
        let bad = |k: &str| (k == "TINI_VERBOSITY").then(|| "loud".to_string());
        let err = parse(vec!["true".into()], &bad).unwrap_err();
        assert!(err.starts_with("environment variable TINI_VERBOSITY: 'loud' is not a number"), "{err}");
        assert_eq!(run(&["-l"]).unwrap().verb, Verb::License);
        assert!(LICENSE.starts_with("MIT License"));
    }

    #[test]
    fn verbs_have_their_own_help() {
        assert_eq!(run(&["pre-stop", "--help"]).unwrap().verb, Verb::Usage(PRE_STOP_HELP));
        assert_eq!(run(&["status", "--json", "-h"]).unwrap().verb, Verb::Usage(STATUS_HELP));
        assert_eq!(run(&["check", "--help"]).unwrap().verb, Verb::Usage(CHECK_HELP));
        for (text, verb) in [(PRE_STOP_HELP, "pre-stop"), (STATUS_HELP, "status"), (CHECK_HELP, "check")] {
            assert!(text.starts_with(&format!("usage: podinit {verb}")), "{text}");
        }
    }

    #[test]
    fn rewrite_refuses_what_podinit_never_sees() {
        for (arg, name) in [("9:15", "SIGKILL"), ("STOP:TERM", "SIGSTOP"), ("17:1", "SIGCHLD")] {
            let err = run(&["-r", arg, "true"]).unwrap_err();
            assert!(err.starts_with(&format!("--rewrite '{arg}': {name} cannot be rewritten: ")), "{err}");
        }
        for ok in ["4:15", "31:1", "21:15", "22:15", "15:9"] {
            assert!(run(&["-r", ok, "true"]).is_ok(), "{ok}");
        }
    }

    #[test]
    fn log_format_errors_name_the_source_once() {
        let err = run(&["--log-format", "yaml", "true"]).unwrap_err();
        assert_eq!(err, "--log-format: 'yaml' is not a log format: write text or json");
        let env = |k: &str| (k == "PODINIT_LOG_FORMAT").then(|| "yaml".to_string());
        let err = parse(vec!["true".into()], &env).unwrap_err();
        assert_eq!(err, "environment variable PODINIT_LOG_FORMAT: 'yaml' is not a log format: write text or json");
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let cases: [(&[&str], &str); 7] = [
            (&["-x", "true"], "unknown option '-x'"),
            (&["--frobnicate", "true"], "unknown option '--frobnicate'"),
            (&["-e", "abc", "true"], "-e 'abc'"),
            (&["-e", "256", "true"], "-e '256'"),
            (&["-p", "SIGFOO", "true"], "'SIGFOO' is not a signal"),
            (&["-r", "15", "true"], "expected FROM:TO"),
            (&["-e"], "-e needs a value"),
        ];
        for (args, want) in cases {
            let err = run(args).unwrap_err();
            assert!(err.contains(want), "{args:?}: {err}");
        }
        assert!(run(&["status", "--ready", "--live"]).is_err());
        assert!(run(&["pre-stop", "x"]).is_err());
    }
}

#[cfg(test)]
mod help_defaults {
    use crate::config::defaults;

    #[test]
    fn help_shows_the_defaults_podinit_uses() {
        let grace = format!("default {}", crate::duration::show(defaults::GRACE));
        let signal = format!("default {}", crate::signals::name(defaults::STOP_SIGNAL));
        assert!(super::HELP.contains(&grace) && super::HELP.contains(&signal), "{}", super::HELP);
    }
}
