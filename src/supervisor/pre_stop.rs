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

/// One stop sequence's timing, a plain value (docs/lifecycle.md L4): when
/// it began, the grace deadline, whether the stop signal waits for a stop
/// request (`hold`: preStop asked for by `podinit pre-stop`, whose caller
/// sends the stop request itself), and SIGKILL, due once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    began: Instant,
    grace: Duration,
    hold: bool,
    kill_at: Option<Instant>,
    killed: bool,
}

impl Stop {
    pub fn begin(now: Instant, grace: Duration, hold: bool) -> Stop {
        Stop { began: now, grace, hold, kill_at: None, killed: false }
    }

    /// A hung preStop is abandoned here (L4).
    pub fn grace_deadline(&self) -> Instant {
        self.began + self.grace
    }

    pub fn held(&self) -> bool {
        self.hold
    }

    /// A stop request arrived during a held preStop: the stop signal follows it.
    pub fn release(&mut self) {
        self.hold = false;
    }

    /// When SIGKILL is due, once the stop signal went out.
    pub fn kill_at(&self) -> Option<Instant> {
        self.kill_at
    }

    /// preStop ended at `now`: unless held, the stop signal goes now and
    /// SIGKILL is due at the returned instant (L4: whole elapsed seconds off
    /// the grace period, at least 2 s left).
    pub fn pre_stop_ended(&mut self, now: Instant) -> Option<Instant> {
        (!self.hold).then(|| self.signal_now(now))
    }

    /// The stop signal goes at `now`, after preStop (released or not): when SIGKILL is due.
    pub fn signal_now(&mut self, now: Instant) -> Instant {
        self.hold = false;
        let at = kill_deadline(self.began, now, self.grace);
        self.kill_at = Some(at);
        at
    }

    /// The stop signal went out; SIGKILL at `at`.
    pub fn signalled(&mut self, at: Instant) {
        self.kill_at = Some(at);
    }

    /// Whether SIGKILL is due at `now`: true once.
    pub fn kill_due(&mut self, now: Instant) -> bool {
        let due = !self.killed && self.kill_at.is_some_and(|k| now >= k);
        self.killed |= due;
        due
    }

    /// The next moment something is due: SIGKILL, or, while preStop runs,
    /// its abandonment at the grace deadline.
    pub fn deadline(&self, pre_stop_running: bool) -> Option<Instant> {
        match (self.killed, self.kill_at) {
            (true, _) => None,
            (false, Some(k)) => Some(k),
            (false, None) => pre_stop_running.then(|| self.grace_deadline()),
        }
    }
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
    fn a_stop_signals_after_pre_stop_and_kills_once() {
        let t0 = Instant::now();
        let mut stop = Stop::begin(t0, s(30), false);
        assert_eq!(stop.deadline(true), Some(t0 + s(30)), "a hung preStop is abandoned at the grace deadline");
        assert_eq!(stop.pre_stop_ended(t0 + s(12)), Some(t0 + s(30)));
        assert_eq!(stop.deadline(false), Some(t0 + s(30)));
        assert!(!stop.kill_due(t0 + s(29)));
        assert!(stop.kill_due(t0 + s(30)));
        assert!(!stop.kill_due(t0 + s(31)), "SIGKILL goes once");
        assert_eq!(stop.deadline(false), None);
    }

    #[test]
    fn a_held_stop_waits_for_the_request() {
        let t0 = Instant::now();
        let mut stop = Stop::begin(t0, s(30), true);
        assert_eq!(stop.pre_stop_ended(t0 + s(5)), None, "held: no stop signal after preStop");
        assert_eq!(stop.deadline(false), None, "nothing is due while held");
        // The kubelet's SIGTERM 10 s later: 2 s floor not reached, whole seconds off.
        assert_eq!(stop.signal_now(t0 + s(10)), t0 + s(10) + s(20));
        assert!(!stop.held());
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
