//! Crash-loop back-off for a restarted process (docs/lifecycle.md L13): the first
//! restart at once, then `initial`, doubling up to `max`, back to immediate
//! after `reset` of stable running. A plain function of how long the last run
//! lasted, so the rule is tested without processes or clocks.

use crate::config::Backoff;
use std::time::Duration;

/// Restarts so far and the delay the next one waits.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CrashLoop {
    pub restarts: u32,
    next: Duration,
}

impl CrashLoop {
    /// A run that lasted `ran_for` ended and a restart follows: returns how
    /// long to wait before it.
    pub fn schedule(&mut self, ran_for: Duration, rule: Backoff) -> Duration {
        if ran_for >= rule.reset {
            self.next = Duration::ZERO;
        }
        let delay = self.next;
        self.next = if delay.is_zero() { rule.initial } else { delay.saturating_mul(2).min(rule.max) };
        delay
    }

    /// The restart happened.
    pub fn restarted(&mut self) {
        self.restarts += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_back_off_immediate_then_doubling_capped_and_reset() {
        let rule = Backoff::default();
        let mut c = CrashLoop::default();
        let quick = Duration::from_secs(1);
        let delays: Vec<u64> = (0..8).map(|_| c.schedule(quick, rule).as_secs()).collect();
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300]);
        // Ten minutes of stable running: the next restart is immediate again.
        assert_eq!(c.schedule(Duration::from_secs(600), rule), Duration::ZERO);
        assert_eq!(c.schedule(quick, rule), Duration::from_secs(10));
    }
}
