//! Hook sequences: postStart and preStop actions, run one after another on
//! the shared action runner. A sequence only orders and reports; what a
//! failure means (kill the container, or log and go on) is the supervisor's
//! decision, taken from the outcome it is handed.

use crate::actions::{Action, Outcome};
use crate::runner::{Id, Runner};
use std::time::Instant;

pub struct Sequence {
    actions: Vec<Action>,
    index: usize,
    current: Option<Id>,
    pub started: Instant,
    /// Messages of the actions that failed, in order.
    pub failures: Vec<String>,
}

impl Sequence {
    /// Starts the first action (a sequence of none is done at once).
    pub fn start(actions: Vec<Action>, runner: &mut Runner) -> Sequence {
        let mut s = Sequence { actions, index: 0, current: None, started: Instant::now(), failures: Vec::new() };
        s.launch(runner);
        s
    }

    fn launch(&mut self, runner: &mut Runner) {
        self.current = self.actions.get(self.index).map(|a| runner.start(a, None));
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
