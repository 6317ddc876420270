//! What one stop's preStop part leaves behind: when it began, its result for
//! every `podinit pre-stop` caller (docs/lifecycle.md L7: it runs at most once per
//! stop, and every caller gets the same answer), its report for `status`,
//! and the deadline rule that follows it (docs/lifecycle.md L4).

use crate::hooks::Report;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the stop signal always leaves the main process after preStop (docs/lifecycle.md L4).
pub const MIN_AFTER_PRE_STOP: Duration = Duration::from_secs(2);

/// docs/lifecycle.md L4: after preStop, whole elapsed seconds come off the grace
/// period and at least 2 s remain; returns when SIGKILL is due.
pub fn kill_deadline(started: Instant, now: Instant, grace: Duration) -> Instant {
    let elapsed = Duration::from_secs(now.saturating_duration_since(started).as_secs());
    now + grace.saturating_sub(elapsed).max(MIN_AFTER_PRE_STOP)
}

/// The preStop part of the current stop; empty until one begins.
#[derive(Default)]
pub struct PreStopRecord {
    started: Option<Instant>,
    /// `ok ...` / `fail ...` once concluded.
    result: Option<String>,
    report: Option<Report>,
    waiters: Vec<mpsc::Sender<String>>,
}

impl PreStopRecord {
    pub fn begin(&mut self, now: Instant) {
        self.started = Some(now);
    }

    pub fn result(&self) -> Option<&String> {
        self.result.as_ref()
    }

    /// A `podinit pre-stop` caller waits for the result.
    pub fn wait(&mut self, reply: mpsc::Sender<String>) {
        self.waiters.push(reply);
    }

    /// Records the result and answers everyone waiting for it.
    pub fn conclude(&mut self, result: String) {
        for w in self.waiters.drain(..) {
            let _ = w.send(result.clone());
        }
        let state = if result.starts_with("ok") { "finished" } else { "interrupted" };
        let took = self.started.map_or(Duration::ZERO, |s| s.elapsed());
        self.report = Some(Report { state, took, failures: Vec::new() });
        self.result = Some(result);
    }

    /// How it ended, once concluded: its state and failures.
    pub fn set_outcome(&mut self, state: &'static str, failures: Vec<String>) {
        if let Some(report) = &mut self.report {
            (report.state, report.failures) = (state, failures);
        }
    }

    /// When SIGKILL is due if preStop ends `now` (docs/lifecycle.md L4).
    pub fn kill_deadline(&self, now: Instant, grace: Duration) -> Instant {
        kill_deadline(self.started.unwrap_or(now), now, grace)
    }

    /// `status --json`'s `pre_stop` object.
    pub fn json(&self) -> String {
        Report::json(self.result.as_ref().and(self.report.as_ref()), self.started.is_some())
    }

    /// A restart: the next stop runs preStop again.
    pub fn reset(&mut self) {
        *self = PreStopRecord { waiters: std::mem::take(&mut self.waiters), ..PreStopRecord::default() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn l4_whole_seconds_come_off_the_grace_period() {
        let t0 = Instant::now();
        // grace 30 s, hook 12 s -> 18 s for the process to stop.
        assert_eq!(kill_deadline(t0, t0 + s(12), s(30)), t0 + s(12) + s(18));
        // 12.9 s elapsed counts as 12 whole seconds.
        let late = t0 + s(12) + Duration::from_millis(900);
        assert_eq!(kill_deadline(t0, late, s(30)), late + s(18));
    }

    #[test]
    fn l4_at_least_two_seconds_remain() {
        let t0 = Instant::now();
        assert_eq!(kill_deadline(t0, t0 + s(29), s(30)), t0 + s(29) + s(2));
        assert_eq!(kill_deadline(t0, t0 + s(45), s(30)), t0 + s(45) + s(2)); // abandoned hook: grace + 2 s
        assert_eq!(kill_deadline(t0, t0, Duration::ZERO), t0 + s(2));
    }

    #[test]
    fn l7_every_caller_gets_the_same_result_once() {
        let mut r = PreStopRecord::default();
        r.begin(Instant::now());
        let (a, ra) = mpsc::channel();
        let (b, rb) = mpsc::channel();
        r.wait(a);
        r.wait(b);
        r.conclude("ok preStop finished".into());
        assert_eq!(ra.recv().unwrap(), "ok preStop finished");
        assert_eq!(rb.recv().unwrap(), "ok preStop finished");
        assert_eq!(r.result().map(String::as_str), Some("ok preStop finished"));
        r.reset();
        assert!(r.result().is_none() && r.json().contains("not run"), "{}", r.json());
    }
}
