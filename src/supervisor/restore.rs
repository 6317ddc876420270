//! Restore on restart (docs/lifecycle.md L39): a registry override set by a
//! preStop (Eureka OUT_OF_SERVICE, Nacos `enabled=false`, Consul maintenance)
//! outlives the process. When the main process is restarted in place after a
//! stop that was not final (a liveness or postStart failure), each registry
//! action that succeeded is undone once the new main process is ready, never
//! before (an UP instance that does not listen yet fails requests). A final
//! stop cancels what is pending. A failed undo is an event; it holds nothing.

use crate::actions::{Action, Outcome};
use crate::events::{self, Reason};
use crate::hooks::Sequence;
use crate::runner::{Id, Runner};

#[derive(Default)]
pub struct Restore {
    /// Undo actions waiting for the restarted main process to be ready.
    pending: Vec<Action>,
    running: Option<Sequence>,
}

impl Restore {
    /// A preStop action succeeded: remember its undo, if it has one.
    pub fn on_pre_stop_success(&mut self, action: &Action) {
        // Once per override, however many stops set it before the process was ready again.
        if let Some(kind) = action.kind.restore().filter(|k| !self.pending.iter().any(|a| &a.kind == k)) {
            self.pending.push(Action { name: action.name.clone(), kind, timeout: action.timeout });
        }
    }

    /// The stop is final (a `stop_on` signal, `podinit pre-stop`): nothing is undone.
    pub fn cancel(&mut self, runner: &mut Runner) {
        if !self.pending.is_empty() {
            log::info!("the stop is final: {} registry restore(s) cancelled", self.pending.len());
        }
        self.pending.clear();
        if let Some(mut seq) = self.running.take() {
            seq.abort(runner, libc::SIGKILL, std::time::Instant::now());
        }
    }

    /// Whether undo actions wait for the main process to be ready.
    pub fn is_pending(&self) -> bool {
        !self.pending.is_empty() && self.running.is_none()
    }

    /// A main process that is running again and ready: undo now.
    pub fn on_ready(&mut self, runner: &mut Runner) {
        if self.pending.is_empty() || self.running.is_some() {
            return;
        }
        log::info!("the restarted main process is ready: undoing {} registry override(s)", self.pending.len());
        self.running = Some(Sequence::start(std::mem::take(&mut self.pending), runner));
    }

    /// An action finished; returns whether it was an undo.
    pub fn on_done(&mut self, id: Id, outcome: &Outcome, runner: &mut Runner) -> bool {
        let Some(seq) = &mut self.running else { return false };
        if seq.on_done(id, outcome, runner).is_none() {
            return false;
        }
        match outcome {
            Outcome::Success(detail) => events::emit(log::Level::Info, Reason::RegistryRestored, detail),
            Outcome::Failure { message, .. } => events::emit(log::Level::Warn, Reason::FailedRegistryRestore, message),
        }
        if seq.is_done() {
            self.running = None;
        }
        true
    }
}
