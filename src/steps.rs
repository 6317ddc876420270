//! Init steps (docs/lifecycle.md L11): run in order before the main process, each
//! succeeding before the next. Wait kinds (tcp, http, dns) are retried every
//! `interval` until they succeed or `timeout` runs out; an exec step runs
//! once, or `retries` more times with doubling back-off; sleep and eureka
//! run once. The first step that fails for good fails the container.
//! A sidecar step (`restart = "always"`) is not run here: the supervisor
//! starts it (`sidecar_to_launch`) and tells when it has started
//! (`on_sidecar_started`); the next step waits for that, up to its `timeout`.

use crate::actions::{Kind, Outcome};
use crate::config::{Sidecar, Step};
use crate::duration;
use crate::events::{self, Reason};
use crate::runner::{self, Id, Runner};
use std::time::{Duration, Instant};

/// Longest back-off between two attempts of an exec step.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Running,
    Done,
    /// Exit status for podinit: the exec's own, 1 for other kinds.
    Failed(i32),
}

pub struct InitSteps {
    steps: Vec<Step>,
    index: usize,
    attempt: u32,
    current: Option<Id>,
    attempt_started: Instant,
    step_started: Instant,
    retry_at: Option<Instant>,
    warned: bool,
    /// The current step is a sidecar, launched (true) or still to be (false).
    sidecar: Option<bool>,
}

fn is_wait(kind: &Kind) -> bool {
    matches!(kind, Kind::Tcp(_) | Kind::Http(_) | Kind::Dns(_))
}

impl InitSteps {
    pub fn new(steps: Vec<Step>) -> InitSteps {
        let now = Instant::now();
        InitSteps {
            steps,
            index: 0,
            attempt: 0,
            current: None,
            attempt_started: now,
            step_started: now,
            retry_at: None,
            warned: false,
            sidecar: None,
        }
    }

    /// Starts the first step; `Done` at once when there is none.
    pub fn begin(&mut self, runner: &mut Runner) -> Progress {
        if self.steps.is_empty() {
            return Progress::Done;
        }
        self.step_started = Instant::now();
        self.launch(runner);
        Progress::Running
    }

    fn give_up_at(&self) -> Option<Instant> {
        let step = &self.steps[self.index];
        if is_wait(&step.action.kind) {
            step.action.timeout.map(|t| self.step_started + t)
        } else {
            None
        }
    }

    fn launch(&mut self, runner: &mut Runner) {
        let now = Instant::now();
        self.attempt_started = now;
        self.retry_at = None;
        let step = &self.steps[self.index];
        if step.sidecar.is_some() {
            self.sidecar = Some(false);
            return;
        }
        // A wait step's `timeout` bounds the whole wait; each attempt gets at most 10 s.
        let limit = if is_wait(&step.action.kind) {
            let mut l = step.interval.max(Duration::from_secs(1)).min(crate::actions::DEFAULT_ATTEMPT);
            if let Some(end) = self.give_up_at() {
                l = l.min(end.saturating_duration_since(now).max(Duration::from_millis(1)));
            }
            Some(l)
        } else {
            None
        };
        self.current = Some(runner.start(&step.action, limit));
    }

    /// The running step's action, if any.
    pub fn current(&self) -> Option<Id> {
        self.current
    }

    /// The next retry, or when a sidecar step gives up waiting.
    pub fn deadline(&self) -> Option<Instant> {
        self.retry_at.or_else(|| self.sidecar_gives_up_at())
    }

    fn sidecar_gives_up_at(&self) -> Option<Instant> {
        self.sidecar?;
        self.steps[self.index].action.timeout.map(|t| self.step_started + t)
    }

    /// The sidecar the current step wants started (once): its name and spec.
    pub fn sidecar_to_launch(&mut self) -> Option<(String, Sidecar)> {
        if self.sidecar != Some(false) {
            return None;
        }
        self.sidecar = Some(true);
        let step = &self.steps[self.index];
        step.sidecar.as_ref().map(|s| (step.action.name.clone(), (**s).clone()))
    }

    /// Whether the current step waits for a sidecar it launched.
    pub fn waits_for_sidecar(&self) -> bool {
        self.sidecar == Some(true)
    }

    /// The current step's sidecar has started (L30): on to the next step.
    pub fn on_sidecar_started(&mut self, runner: &mut Runner) -> Progress {
        self.sidecar = None;
        let n = self.steps.len();
        let name = &self.steps[self.index].action.name;
        events::emit(
            log::Level::Info,
            Reason::InitStepSucceeded,
            &format!("step {}/{n} sidecar {name} started in {}", self.index + 1, runner::took(self.step_started)),
        );
        self.next(runner)
    }

    /// The current sidecar step has waited its `timeout` for the sidecar to start.
    pub fn sidecar_timed_out(&self, now: Instant) -> Option<Progress> {
        let at = self.sidecar_gives_up_at()?;
        if now < at {
            return None;
        }
        let n = self.steps.len();
        let name = &self.steps[self.index].action.name;
        events::emit(
            log::Level::Error,
            Reason::InitStepFailed,
            &format!(
                "step {}/{n} sidecar {name} did not start within {}",
                self.index + 1,
                runner::took(self.step_started)
            ),
        );
        Some(Progress::Failed(1))
    }

    /// Moves to the step after the current one.
    fn next(&mut self, runner: &mut Runner) -> Progress {
        self.index += 1;
        self.attempt = 0;
        self.warned = false;
        if self.index == self.steps.len() {
            return Progress::Done;
        }
        self.step_started = Instant::now();
        self.launch(runner);
        Progress::Running
    }

    /// An action finished; returns how the steps go on.
    pub fn on_done(&mut self, id: Id, outcome: Outcome, runner: &mut Runner) -> Progress {
        if self.current != Some(id) {
            return Progress::Running;
        }
        self.current = None;
        let n = self.steps.len();
        let step = &self.steps[self.index];
        let name = step.action.name.clone();
        match outcome {
            Outcome::Success(detail) => {
                let detail = crate::actions::detail(&name, &detail);
                events::emit(
                    log::Level::Info,
                    Reason::InitStepSucceeded,
                    &format!(
                        "step {}/{n} {name} succeeded in {} ({detail})",
                        self.index + 1,
                        runner::took(self.step_started)
                    ),
                );
                self.next(runner)
            }
            Outcome::Failure { code, message } => {
                let message = crate::actions::detail(&name, &message);
                let now = Instant::now();
                let wait = is_wait(&step.action.kind);
                let retry = if wait {
                    let next = (self.attempt_started + step.interval).max(now);
                    match self.give_up_at() {
                        Some(end) if next >= end => None,
                        _ => Some(next),
                    }
                } else if matches!(step.action.kind, Kind::Exec(_)) && self.attempt < step.retries {
                    let backoff = step.interval.saturating_mul(1u32 << self.attempt.min(20)).min(MAX_BACKOFF);
                    Some(now + backoff)
                } else {
                    None
                };
                self.attempt += 1;
                match retry {
                    Some(at) => {
                        if !self.warned {
                            let how = if wait {
                                format!("retrying every {}", duration::show(step.interval))
                            } else {
                                format!("retry {} of {}", self.attempt, step.retries)
                            };
                            log::info!("step {}/{n} {name}: {message}; {how}", self.index + 1);
                            self.warned = wait;
                        } else {
                            log::debug!("step {}/{n} {name}: {message}", self.index + 1);
                        }
                        self.retry_at = Some(at);
                        Progress::Running
                    }
                    None => {
                        let code = if matches!(step.action.kind, Kind::Exec(_)) { code } else { 1 };
                        events::emit(
                            log::Level::Error,
                            Reason::InitStepFailed,
                            &format!(
                                "step {}/{n} {name} failed after {} ({} attempt(s)): {message}",
                                self.index + 1,
                                runner::took(self.step_started),
                                self.attempt
                            ),
                        );
                        Progress::Failed(code)
                    }
                }
            }
        }
    }

    /// Time passed: start a scheduled retry.
    pub fn on_time(&mut self, now: Instant, runner: &mut Runner) {
        if self.retry_at.is_some_and(|at| at <= now) {
            self.launch(runner);
        }
    }
}
