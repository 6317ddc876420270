//! Startup, liveness and readiness probes (docs/lifecycle.md L8-L10), run on the
//! shared action runner with timers that live in the supervisor's poll
//! timeout: without probes podinit never wakes; with them, only when one is due.
//!
//! Start values: readiness fails, liveness succeeds. Liveness and readiness
//! wait until the startup probe has succeeded; the startup probe then stops.
//! A result changes only after `threshold` consecutive identical results; a
//! probe that outlives its timeout counts as a failure.

use crate::actions::Outcome;
use crate::config::Probe;
use crate::events::{self, Reason};
use crate::runner::{Id, Runner};
use std::time::Instant;

struct Worker {
    probe: Probe,
    next_at: Instant,
    running: Option<Id>,
    successes: u32,
    failures: u32,
    /// The current result: passing or failing.
    passing: bool,
}

impl Worker {
    fn new(probe: Probe, start: Instant) -> Worker {
        let passing = probe.which == "liveness";
        Worker { next_at: start + probe.initial_delay, probe, running: None, successes: 0, failures: 0, passing }
    }

    /// Counts one result; returns the new state when it flipped.
    fn record(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.successes += 1;
            self.failures = 0;
        } else {
            self.failures += 1;
            self.successes = 0;
        }
        let flip = if ok {
            !self.passing && self.successes >= self.probe.success_threshold
        } else {
            self.passing && self.failures >= self.probe.failure_threshold
        };
        if flip {
            self.passing = ok;
            Some(ok)
        } else {
            None
        }
    }
}

/// What the supervisor must do after a probe result.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Liveness or startup failed: stop the container (then `restart` decides).
    Kill(String),
}

pub struct Probes {
    /// Whom exec probes run as, and the name events give, when not the main process.
    who: Option<(crate::config::Main, String)>,
    startup: Option<Worker>,
    liveness: Option<Worker>,
    readiness: Option<Worker>,
}

impl Probes {
    /// Probes of a container whose main process (and postStart) just started.
    pub fn new(probes: &[Probe], now: Instant) -> Probes {
        let find = |w: &str| probes.iter().find(|p| p.which == w).map(|p| Worker::new(p.clone(), now));
        Probes { who: None, startup: find("startup"), liveness: find("liveness"), readiness: find("readiness") }
    }

    /// Probes of a sidecar: exec probes run as it, events name it.
    pub fn for_sidecar(probes: &[Probe], now: Instant, run: &crate::config::Main, name: &str) -> Probes {
        Probes { who: Some((run.clone(), format!("sidecar {name}: "))), ..Probes::new(probes, now) }
    }

    /// Whether `id` is one of these probes' runs.
    pub fn owns(&self, id: Id) -> bool {
        [&self.startup, &self.liveness, &self.readiness].into_iter().flatten().any(|w| w.running == Some(id))
    }

    /// Whether the startup probe has passed (or there is none).
    pub fn started(&self) -> bool {
        self.startup.is_none()
    }

    /// Whether the container counts as ready (no readiness probe: ready once running).
    pub fn ready(&self) -> bool {
        self.startup.is_none() && self.readiness.as_ref().is_none_or(|w| w.passing)
    }

    /// The probes that run now: startup alone until it has passed.
    fn active(&mut self) -> Vec<&mut Worker> {
        match &mut self.startup {
            Some(w) => vec![w],
            None => [&mut self.liveness, &mut self.readiness].into_iter().flatten().collect(),
        }
    }

    /// The next time a probe is due (none while every active probe is running).
    pub fn deadline(&self) -> Option<Instant> {
        let active: Vec<&Worker> = match &self.startup {
            Some(w) => vec![w],
            None => [&self.liveness, &self.readiness].into_iter().flatten().collect(),
        };
        active.into_iter().filter(|w| w.running.is_none()).map(|w| w.next_at).min()
    }

    /// Starts every probe that is due.
    pub fn on_time(&mut self, now: Instant, runner: &mut Runner) {
        let who = self.who.as_ref().map(|(run, _)| run.clone());
        for w in self.active() {
            if w.running.is_none() && w.next_at <= now {
                w.running = Some(runner.start_as(&w.probe.action, w.probe.action.timeout, true, who.as_ref()));
                w.next_at = now + w.probe.period;
            }
        }
    }

    /// A probe run finished; returns a verdict when the container must stop.
    pub fn on_done(&mut self, id: Id, outcome: &Outcome, now: Instant) -> Option<Verdict> {
        let owner = self.who.as_ref().map_or(String::new(), |(_, name)| name.clone());
        let w = [&mut self.startup, &mut self.liveness, &mut self.readiness]
            .into_iter()
            .flatten()
            .find(|w| w.running == Some(id))?;
        w.running = None;
        let ok = matches!(outcome, Outcome::Success(_));
        let which = w.probe.which;
        if let Outcome::Failure { message, .. } = outcome {
            // Readiness failing while not ready yet is the normal start: one event a streak.
            if which != "readiness" || w.failures == 0 {
                events::emit(log::Level::Warn, Reason::Unhealthy, &format!("{owner}{which} probe failed: {message}"));
            } else {
                log::debug!("{which} probe failed: {message}");
            }
        }
        // The startup probe has no start value to flip: it passes on its first
        // success and fails after `failure_threshold` failures in a row.
        let change = if which == "startup" {
            w.record(ok);
            if ok {
                Some(true)
            } else {
                (w.failures >= w.probe.failure_threshold).then_some(false)
            }
        } else {
            w.record(ok)
        };
        match (which, change) {
            ("startup", Some(true)) => {
                log::info!("{owner}startup probe succeeded: liveness and readiness probes start");
                self.startup = None;
                for w in [&mut self.liveness, &mut self.readiness].into_iter().flatten() {
                    w.next_at = w.next_at.max(now);
                }
                None
            }
            ("startup" | "liveness", Some(false)) => Some(Verdict::Kill(format!(
                "{owner}{which} probe failed {} times in a row: stopping {}",
                w.probe.failure_threshold,
                if owner.is_empty() { "the container" } else { "it" }
            ))),
            ("readiness", Some(flip)) => {
                log::info!("{owner}readiness: {}", if flip { "ready" } else { "not ready" });
                None
            }
            _ => None,
        }
    }

    /// Stops every running probe (the container is stopping).
    pub fn stop(&mut self, runner: &mut Runner) {
        let now = Instant::now();
        for w in [&mut self.startup, &mut self.liveness, &mut self.readiness].into_iter().flatten() {
            if let Some(id) = w.running.take() {
                runner.stop(id, libc::SIGKILL, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::{Action, Kind};
    use std::time::Duration;

    fn probe(which: &'static str, success: u32, failure: u32) -> Probe {
        Probe {
            which,
            action: Action { name: "p".into(), kind: Kind::Exec(vec!["true".into()]), timeout: None },
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    #[test]
    fn thresholds_count_consecutive_results() {
        let mut w = Worker::new(probe("liveness", 1, 3), Instant::now());
        assert!(w.passing, "liveness starts as success");
        assert_eq!(w.record(false), None);
        assert_eq!(w.record(false), None);
        assert_eq!(w.record(true), None, "a success resets the failure count");
        assert_eq!(w.record(false), None);
        assert_eq!(w.record(false), None);
        assert_eq!(w.record(false), Some(false));
        let mut r = Worker::new(probe("readiness", 2, 1), Instant::now());
        assert!(!r.passing, "readiness starts as failure");
        assert_eq!(r.record(true), None);
        assert_eq!(r.record(true), Some(true));
        assert_eq!(r.record(false), Some(false));
    }

    #[test]
    fn startup_gates_the_others() {
        let now = Instant::now();
        let mut p = Probes::new(&[probe("startup", 1, 3), probe("liveness", 1, 3), probe("readiness", 1, 3)], now);
        assert!(!p.ready());
        assert_eq!(p.active().len(), 1);
        assert_eq!(p.active()[0].probe.which, "startup");
    }
}
