//! Hook sequences: postStart and preStop actions, run one after another on
//! the shared action runner. A sequence only orders and reports; what a
//! failure means (kill the container, or log and go on) is the supervisor's
//! decision, taken from the outcome it is handed.

use crate::actions::{Action, Outcome};
use crate::runner::{Id, Runner};
use std::time::{Duration, Instant};

pub struct Sequence {
    actions: Vec<Action>,
    /// Whom exec actions run as, when not as the main process (a sidecar's hooks).
    who: Option<crate::config::Main>,
    index: usize,
    current: Option<Id>,
    pub started: Instant,
    /// Messages of the actions that failed, in order.
    pub failures: Vec<String>,
}

impl Sequence {
    /// Starts the first action (a sequence of none is done at once).
    pub fn start(actions: Vec<Action>, runner: &mut Runner) -> Sequence {
        Sequence::start_as(actions, runner, None)
    }

    /// `start` for hooks whose exec actions run as `who` (a sidecar's).
    pub fn start_as(actions: Vec<Action>, runner: &mut Runner, who: Option<crate::config::Main>) -> Sequence {
        let mut s = Sequence { actions, who, index: 0, current: None, started: Instant::now(), failures: Vec::new() };
        s.launch(runner);
        s
    }

    fn launch(&mut self, runner: &mut Runner) {
        self.current = self.actions.get(self.index).map(|a| runner.start_as(a, None, false, self.who.as_ref()));
    }

    pub fn is_done(&self) -> bool {
        self.current.is_none()
    }

    /// If `id` is this sequence's running action: records its outcome, starts
    /// the next action, and returns the finished action's index and outcome.
    pub fn on_done(&mut self, id: Id, outcome: &Outcome, runner: &mut Runner) -> Option<usize> {
        if self.current != Some(id) {
            return None;
        }
        let finished = self.index;
        if let Outcome::Failure { message, .. } = outcome {
            self.failures.push(format!("{}: {message}", self.actions[finished].name));
        }
        self.index += 1;
        self.launch(runner);
        Some(finished)
    }

    /// Abandons the rest: the running action is stopped with `sig` (an exec's
    /// process group; SIGKILL follows at `kill_at`), nothing more starts.
    pub fn abort(&mut self, runner: &mut Runner, sig: i32, kill_at: Instant) {
        if let Some(id) = self.current.take() {
            runner.stop(id, sig, kill_at);
        }
        self.index = self.actions.len();
    }

    pub fn len(&self) -> usize {
        self.actions.len()
    }
}

/// The `PreStopFinished` summary, the same from podinit and from a
/// standalone `podinit pre-stop`: `finished after 1.5s, 0 of 2 action(s) failed`.
pub fn summary(how: &str, started: Instant, failed: usize, total: usize) -> String {
    format!("{how} after {}, {failed} of {total} action(s) failed", crate::runner::took(started))
}

/// How the last preStop part ended, for `podinit status --json`.
pub struct Report {
    /// `finished`, `skipped`, `abandoned`, `interrupted` (the main process exited).
    pub state: &'static str,
    pub took: Duration,
    pub failures: Vec<String>,
}

impl Report {
    /// `{"state":..,"took_ms":..,"failed":..,"failures":[..]}`; `took_ms` is
    /// null until preStop has ended.
    pub fn json(report: Option<&Report>, running: bool) -> String {
        use crate::events::json_string;
        let (state, took, failures) = match report {
            Some(r) => (r.state, r.took.as_millis().to_string(), &r.failures[..]),
            None => (if running { "running" } else { "not run" }, "null".into(), &[][..]),
        };
        let failures: Vec<String> = failures.iter().map(|f| json_string(f)).collect();
        format!(
            "{{\"state\":\"{state}\",\"took_ms\":{took},\"failed\":{},\"failures\":[{}]}}",
            failures.len(),
            failures.join(",")
        )
    }
}

/// Runs `actions` in order without a supervisor (`podinit pre-stop` when no
/// podinit is running, e.g. in an image whose PID 1 is something else).
/// Returns the failures; each one is also logged as `FailedPreStopHook`.
pub fn run_standalone(actions: &[Action], main: &crate::config::Main) -> Vec<String> {
    use crate::actions::{self, Kind};
    use crate::events::{self, Reason};
    let started = Instant::now();
    let mut failures = Vec::new();
    for a in actions {
        let outcome = match &a.kind {
            Kind::Sleep(d) => {
                std::thread::sleep(*d);
                Outcome::Success(a.kind.describe())
            }
            Kind::Exec(argv) => match crate::process::spawn(argv, main, None, None) {
                Err(e) => Outcome::failed(e.message),
                Ok(pid) => {
                    let deadline = a.timeout.map(|t| Instant::now() + t);
                    loop {
                        let mut status = 0;
                        // Raw waitpid, as in process::reap: nix's would lose the status of
                        // a hook killed by a real-time signal.
                        // SAFETY: waiting for our own child; status is a valid out pointer.
                        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
                        if r == pid || r < 0 {
                            let ok = r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
                            break if ok {
                                Outcome::Success(a.kind.describe())
                            } else {
                                Outcome::failed(format!("{}: exit status {status:#x}", a.kind.describe()))
                            };
                        }
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            let _ = crate::signals::send(-pid, libc::SIGKILL);
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            },
            kind => actions::run_blocking(kind, a.timeout.unwrap_or(actions::DEFAULT_ATTEMPT)),
        };
        if let Outcome::Failure { message, .. } = outcome {
            events::emit(log::Level::Warn, Reason::FailedPreStopHook, &format!("{}: {message}", a.name));
            failures.push(format!("{}: {message}", a.name));
        }
    }
    let level = if failures.is_empty() { log::Level::Info } else { log::Level::Warn };
    events::emit(level, Reason::PreStopFinished, &summary("finished", started, failures.len(), actions.len()));
    failures
}
