//! One supervised process, the main process or a sidecar alike: its current
//! run (pid, exit status once reaped, when it started, its probes) and its
//! restarts (crash-loop back-off, docs/lifecycle.md L13). The reaper finds the
//! owner of an exited pid; the owner's kind decides what follows (the main
//! process: the container's fate; a sidecar: a restart).

use super::crash_loop::CrashLoop;
use crate::config::Backoff;
use crate::probes::Probes;
use crate::process::ExitStatus;
use crate::runner::Runner;
use std::time::{Duration, Instant};

pub struct Supervised {
    /// The current (or last) run's pid.
    pub pid: Option<i32>,
    /// How the last run ended, once reaped.
    pub status: Option<ExitStatus>,
    pub run_started: Instant,
    /// The current run's probes (from when its postStart finished).
    pub probes: Option<Probes>,
    pub crash_loop: CrashLoop,
}

impl Supervised {
    pub fn new(now: Instant) -> Supervised {
        Supervised { pid: None, status: None, run_started: now, probes: None, crash_loop: CrashLoop::default() }
    }

    /// A new run started as `pid`.
    pub fn started(&mut self, pid: i32, now: Instant) {
        (self.pid, self.status, self.run_started) = (Some(pid), None, now);
    }

    /// The pid of the current run while it has not been reaped.
    pub fn running(&self) -> Option<i32> {
        self.pid.filter(|_| self.status.is_none())
    }

    /// Whether `pid` is the current run, not yet reaped.
    pub fn owns(&self, pid: i32) -> bool {
        self.running() == Some(pid)
    }

    /// Its probes stop (the run ended, or a stop began).
    pub fn stop_probes(&mut self, runner: &mut Runner) {
        if let Some(mut probes) = self.probes.take() {
            probes.stop(runner);
        }
    }

    /// Ready: running, and its readiness probe (if any) passes.
    pub fn ready(&self) -> bool {
        self.running().is_some() && self.probes.as_ref().is_some_and(Probes::ready)
    }

    /// The run ended at `now` and another follows: how long it waits (L13).
    pub fn next_delay(&mut self, now: Instant, rule: Backoff) -> Duration {
        self.crash_loop.schedule(now.saturating_duration_since(self.run_started), rule)
    }
}
