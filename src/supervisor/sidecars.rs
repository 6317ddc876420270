//! Sidecars: `[[init]]` steps with `restart = "always"` (docs/lifecycle.md
//! L30-L33), kept running beside the main process.
//!
//! - Start: in its place among the init steps; it has *started* once its
//!   startup probe passed (or it has none) and its postStart finished.
//! - Run: restarted on any exit with crash-loop back-off until the final stop;
//!   a liveness (or postStart `kill`) failure runs its own preStop, its stop
//!   signal (L4 floor), then the restart.
//! - Final stop (a `stop_on` signal, `podinit pre-stop`): every started
//!   sidecar's preStop starts with the main process's. Once the main process
//!   (or the running init step) has exited, `teardown`: the sidecars get their
//!   stop signals one at a time in reverse start order, each after its own
//!   preStop (started then, when the main process ended by itself) and after
//!   the later one exited. At the grace deadline every sidecar not yet
//!   signalled gets its stop signal; each gets SIGKILL at the grace deadline
//!   or 2 s after its stop signal, whichever is later.
//!
//! The supervisor owns one `Sidecars`; this module owns every sidecar's state.

use super::pre_stop::MIN_AFTER_PRE_STOP;
use super::supervised::Supervised;
use crate::actions::Outcome;
use crate::config::{Backoff, Sidecar};
use crate::events::{self, Reason};
use crate::hooks::Sequence;
use crate::probes::{Probes, Verdict};
use crate::process::{self, ExitStatus};
use crate::runner::{Id, Runner};
use crate::signals;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where a sidecar's own preStop is.
enum PreStop {
    NotRun,
    Running(Box<Sequence>),
    Done,
}

struct Proc {
    name: String,
    spec: Sidecar,
    /// Its run, probes and restarts, as for the main process.
    proc: Supervised,
    restart_at: Option<Instant>,
    post_start: Option<Sequence>,
    /// This run has started (startup probe passed, postStart finished).
    started: bool,
    /// Some run has started: what the next init step waits for.
    ever_started: bool,
    pre_stop: PreStop,
    /// When SIGKILL is due, once its stop signal went out.
    kill_at: Option<Instant>,
    killed: bool,
    /// Stopped for a liveness or postStart failure: restart once it exited.
    restart_after_stop: bool,
}

impl Proc {
    fn label(&self) -> String {
        match self.proc.running() {
            Some(pid) => format!("sidecar {} (pid {pid})", self.name),
            None => format!("sidecar {}", self.name),
        }
    }
}

pub struct Sidecars {
    procs: Vec<Proc>,
    backoff: Backoff,
    grace: Duration,
    workdir: Option<PathBuf>,
    /// The final stop began: no more restarts.
    stopping: bool,
    /// The main process (or the running init step) is gone: reverse-order stop.
    teardown: bool,
    /// The final stop's grace deadline.
    grace_deadline: Option<Instant>,
    /// The sidecars' preStop actions that failed in the final stop, for `podinit pre-stop`.
    failures: Vec<String>,
}

impl Sidecars {
    pub fn new(backoff: Backoff, grace: Duration, workdir: Option<PathBuf>) -> Sidecars {
        Sidecars {
            procs: Vec::new(),
            backoff,
            grace,
            workdir,
            stopping: false,
            teardown: false,
            grace_deadline: None,
            failures: Vec::new(),
        }
    }

    /// Starts a sidecar in its place among the init steps.
    pub fn launch(&mut self, name: String, spec: Sidecar, runner: &mut Runner) {
        let now = Instant::now();
        self.procs.push(Proc {
            name,
            spec,
            proc: Supervised::new(now),
            restart_at: None,
            post_start: None,
            started: false,
            ever_started: false,
            pre_stop: PreStop::NotRun,
            kill_at: None,
            killed: false,
            restart_after_stop: false,
        });
        let i = self.procs.len() - 1;
        self.spawn(i, runner, now);
    }

    fn spawn(&mut self, i: usize, runner: &mut Runner, now: Instant) {
        let p = &mut self.procs[i];
        p.restart_at = None;
        p.started = false;
        p.pre_stop = PreStop::NotRun;
        (p.kill_at, p.killed, p.restart_after_stop) = (None, false, false);
        let run = &p.spec.run;
        match process::spawn_os(&run.command, run, self.workdir.as_deref(), false, None) {
            Ok(pid) => {
                p.proc.started(pid, now);
                let argv: Vec<_> = run.command.iter().map(|a| a.to_string_lossy()).collect();
                events::emit(
                    log::Level::Info,
                    Reason::Started,
                    &format!("sidecar {} pid {pid}: {}", p.name, argv.join(" ")),
                );
                let hooks: Vec<_> = p.spec.post_start.iter().map(|h| h.action.clone()).collect();
                if hooks.is_empty() {
                    p.proc.probes = Some(Probes::for_sidecar(&p.spec.probes, now, run, &p.name));
                } else {
                    p.post_start = Some(Sequence::start_as(hooks, runner, Some(run.clone())));
                }
            }
            Err(e) => {
                log::error!("sidecar {}: {}", p.name, e.message);
                self.schedule_restart(i, now, &format!("could not start: {}", e.message));
            }
        }
    }

    /// The sidecars' preStop failures of the final stop so far.
    pub fn pre_stop_failures(&self) -> &[String] {
        &self.failures
    }

    /// Whether the sidecar launched last has started at least once: what
    /// the next init step waits for (L30).
    pub fn newest_has_started(&self) -> bool {
        self.procs.last().is_some_and(|p| p.ever_started)
    }

    /// Whether any sidecar process is still running.
    pub fn any_alive(&self) -> bool {
        self.procs.iter().any(|p| p.proc.running().is_some())
    }

    /// Every sidecar is started, running and, where it has a readiness probe, ready (L31).
    pub fn ready(&self) -> bool {
        self.procs.iter().all(|p| p.started && p.proc.ready())
    }

    /// `status --json`'s `sidecars` array.
    pub fn json(&self) -> String {
        let items: Vec<String> = self
            .procs
            .iter()
            .map(|p| {
                format!(
                    "{{\"name\":{},\"pid\":{},\"restarts\":{},\"started\":{},\"ready\":{}}}",
                    events::json_string(&p.name),
                    p.proc.running().map_or("null".into(), |pid| pid.to_string()),
                    p.proc.crash_loop.restarts,
                    p.started,
                    p.started && p.proc.ready()
                )
            })
            .collect();
        format!("[{}]", items.join(","))
    }

    /// A child ended; returns whether it was a sidecar.
    pub fn on_exit(&mut self, pid: i32, status: ExitStatus, runner: &mut Runner) -> bool {
        let Some(i) = self.procs.iter().position(|p| p.proc.owns(pid)) else { return false };
        let now = Instant::now();
        let p = &mut self.procs[i];
        p.proc.status = Some(status);
        p.started = false;
        events::emit(
            log::Level::Info,
            Reason::Exited,
            &format!("sidecar {} ({pid}) exited: {}", p.name, status.describe()),
        );
        if let Some(mut seq) = p.post_start.take() {
            seq.abort(runner, libc::SIGKILL, now);
        }
        p.proc.stop_probes(runner);
        // Its preStop has nothing left to prepare (a restart runs it anew).
        if let PreStop::Running(seq) = &mut p.pre_stop {
            seq.abort(runner, libc::SIGKILL, now);
        }
        p.pre_stop = PreStop::Done;
        // What is left of its process group goes with it (a restart starts clean).
        let _ = signals::send(-pid, libc::SIGKILL);
        if self.stopping {
            return true;
        }
        self.schedule_restart(i, now, &status.describe());
        true
    }

    /// L31: restarted on any exit, with crash-loop back-off.
    fn schedule_restart(&mut self, i: usize, now: Instant, why: &str) {
        let p = &mut self.procs[i];
        let delay = p.proc.next_delay(now, self.backoff);
        events::emit(
            log::Level::Warn,
            Reason::BackOff,
            &format!(
                "sidecar {} exited ({why}); restart {} in {}",
                p.name,
                p.proc.crash_loop.restarts + 1,
                super::show_left(delay)
            ),
        );
        p.restart_at = Some(now + delay);
    }

    /// An action finished; returns whether it was a sidecar's hook or probe.
    pub fn on_done(&mut self, id: Id, outcome: &Outcome, runner: &mut Runner) -> bool {
        let now = Instant::now();
        for i in 0..self.procs.len() {
            let p = &mut self.procs[i];
            if let Some(seq) = &mut p.post_start {
                if let Some(k) = seq.on_done(id, outcome, runner) {
                    let hook = &p.spec.post_start[k];
                    if let Outcome::Failure { message, .. } = outcome {
                        let msg = format!("sidecar {}: {}: {message}", p.name, hook.action.name);
                        events::emit(log::Level::Warn, Reason::FailedPostStartHook, &msg);
                        if hook.kill_on_failure {
                            self.stop_for_restart(i, runner, now);
                            return true;
                        }
                    }
                    if seq.is_done() {
                        p.post_start = None;
                        p.proc.probes = Some(Probes::for_sidecar(&p.spec.probes, now, &p.spec.run, &p.name));
                    }
                    return true;
                }
            }
            if let Some(probes) = p.proc.probes.as_mut().filter(|probes| probes.owns(id)) {
                if let Some(Verdict::Kill(why)) = probes.on_done(id, outcome, now) {
                    log::warn!("{why}");
                    self.stop_for_restart(i, runner, now);
                }
                return true;
            }
            if let PreStop::Running(seq) = &mut p.pre_stop {
                if let Some(k) = seq.on_done(id, outcome, runner) {
                    if let Outcome::Failure { message, .. } = outcome {
                        let msg = format!("sidecar {}: {}: {message}", p.name, p.spec.pre_stop[k].name);
                        events::emit(log::Level::Warn, Reason::FailedPreStopHook, &msg);
                        if self.stopping {
                            self.failures.push(msg);
                        }
                    }
                    return true;
                }
            }
        }
        false
    }

    /// No more restarts or probes from now on; with `pre_stops`, every started
    /// sidecar's preStop starts. Only the first call counts.
    fn stop_for_good(&mut self, grace_deadline: Instant, runner: &mut Runner, pre_stops: bool) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        self.grace_deadline = Some(grace_deadline);
        for p in &mut self.procs {
            p.restart_at = None;
            p.proc.stop_probes(runner);
            if pre_stops && p.proc.running().is_some() && p.ever_started && p.kill_at.is_none() {
                Self::begin_own_pre_stop(p, runner);
            }
        }
    }

    /// A liveness or postStart failure of one sidecar: its own preStop, its
    /// stop signal, and a restart once it has exited.
    fn stop_for_restart(&mut self, i: usize, runner: &mut Runner, now: Instant) {
        let p = &mut self.procs[i];
        if p.proc.running().is_none() || p.restart_after_stop || self.stopping {
            return;
        }
        p.restart_after_stop = true;
        p.proc.stop_probes(runner);
        if let Some(mut seq) = p.post_start.take() {
            seq.abort(runner, libc::SIGKILL, now);
        }
        Self::begin_own_pre_stop(p, runner);
    }

    fn begin_own_pre_stop(p: &mut Proc, runner: &mut Runner) {
        if !matches!(p.pre_stop, PreStop::NotRun) {
            return;
        }
        p.pre_stop = if p.spec.pre_stop.is_empty() {
            PreStop::Done
        } else {
            events::emit(
                log::Level::Info,
                Reason::PreStopStarted,
                &format!("sidecar {}: {} action(s)", p.name, p.spec.pre_stop.len()),
            );
            PreStop::Running(Box::new(Sequence::start_as(p.spec.pre_stop.clone(), runner, Some(p.spec.run.clone()))))
        };
    }

    /// The final stop (L32): every started sidecar's preStop starts now,
    /// with the main process's; restarts stop for good.
    pub fn begin_final_stop(&mut self, grace_deadline: Instant, runner: &mut Runner) {
        self.stop_for_good(grace_deadline, runner, true);
    }

    /// The main process (or the running init step) is gone for good: the
    /// sidecars are stopped in reverse order (L32, L33). `grace_deadline`
    /// applies when no final stop set one (a main process that ended by
    /// itself: then no preStop has started, and each sidecar runs its own
    /// when its turn comes, L33).
    pub fn main_gone(&mut self, grace_deadline: Instant, runner: &mut Runner) {
        self.stop_for_good(grace_deadline, runner, false);
        self.teardown = true;
    }

    /// Restarts that are due, probes, start gating, the reverse-order stop and
    /// the deadlines.
    pub fn on_time(&mut self, now: Instant, runner: &mut Runner) {
        for i in 0..self.procs.len() {
            if self.procs[i].restart_at.is_some_and(|at| at <= now) && !self.stopping {
                self.procs[i].proc.crash_loop.restarted();
                self.spawn(i, runner, now);
            }
            let p = &mut self.procs[i];
            let running = p.proc.running().is_some();
            if let Some(probes) = &mut p.proc.probes {
                probes.on_time(now, runner);
                if !p.started && running && probes.started() {
                    p.started = true;
                    p.ever_started = true;
                    log::info!("sidecar {} has started", p.name);
                }
            }
            if matches!(&p.pre_stop, PreStop::Running(seq) if seq.is_done()) {
                p.pre_stop = PreStop::Done;
                log::info!("sidecar {}: preStop finished", p.name);
            }
            // A sidecar stopped for a liveness failure: its stop signal once its preStop is done.
            if p.restart_after_stop && !self.stopping && matches!(p.pre_stop, PreStop::Done) && p.kill_at.is_none() {
                let kill_at = now + self.grace.max(MIN_AFTER_PRE_STOP);
                Self::signal(p, now, kill_at);
            }
        }
        if self.teardown {
            self.tear_down_next(now, runner);
        }
        let over = self.grace_deadline.is_some_and(|d| now >= d);
        for p in &mut self.procs {
            if p.proc.running().is_none() {
                continue;
            }
            if over && self.stopping && p.kill_at.is_none() {
                // Grace period over: its stop signal now, SIGKILL 2 s later at the latest.
                if let PreStop::Running(seq) = &mut p.pre_stop {
                    seq.abort(runner, libc::SIGKILL, now);
                    events::emit(
                        log::Level::Warn,
                        Reason::FailedPreStopHook,
                        &format!("sidecar {}: preStop did not finish within the grace period: abandoned", p.name),
                    );
                }
                p.pre_stop = PreStop::Done;
                Self::signal(p, now, now + MIN_AFTER_PRE_STOP);
            }
            if let (Some(kill_at), false) = (p.kill_at, p.killed) {
                if now >= kill_at {
                    p.killed = true;
                    let pid = p.proc.running().unwrap_or(0);
                    events::emit(log::Level::Warn, Reason::Killing, &format!("sending SIGKILL to {}", p.label()));
                    process::signal(-pid, libc::SIGKILL, &p.label());
                }
            }
        }
    }

    /// The last running sidecar (in start order) gets its stop signal once its
    /// preStop is done; the ones before it wait until it has exited.
    fn tear_down_next(&mut self, now: Instant, runner: &mut Runner) {
        let grace_deadline = self.grace_deadline.unwrap_or(now);
        let Some(p) = self.procs.iter_mut().rev().find(|p| p.proc.running().is_some()) else { return };
        if p.kill_at.is_some() {
            return;
        }
        if matches!(p.pre_stop, PreStop::NotRun) && p.ever_started {
            // The main process ended by itself (L33): this sidecar's own preStop first.
            Self::begin_own_pre_stop(p, runner);
        }
        if !matches!(p.pre_stop, PreStop::Running(_)) {
            let kill_at = grace_deadline.max(now + MIN_AFTER_PRE_STOP);
            Self::signal(p, now, kill_at);
        }
    }

    /// Sends a sidecar its stop signal (then SIGCONT); SIGKILL at `kill_at`.
    fn signal(p: &mut Proc, now: Instant, kill_at: Instant) {
        let Some(pid) = p.proc.running() else { return };
        p.kill_at = Some(kill_at);
        let sig = p.spec.stop_signal;
        if process::stop(-pid, sig, &p.label()) {
            events::emit(
                log::Level::Info,
                Reason::Killing,
                &format!(
                    "sent {} to sidecar {} {pid}, SIGKILL in {}",
                    signals::name(sig),
                    p.name,
                    super::show_left(kill_at.saturating_duration_since(now))
                ),
            );
        }
    }

    /// The nearest moment something is due.
    pub fn deadline(&self) -> Option<Instant> {
        let mut at: Vec<Instant> = Vec::new();
        for p in &self.procs {
            at.extend(p.restart_at.filter(|_| !self.stopping));
            at.extend(p.proc.probes.as_ref().and_then(Probes::deadline));
            if p.proc.running().is_some() {
                at.extend(p.kill_at.filter(|_| !p.killed));
                if self.stopping && p.kill_at.is_none() {
                    at.extend(self.grace_deadline);
                }
            }
        }
        at.into_iter().min()
    }
}
