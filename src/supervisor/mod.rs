//! The PID-1 loop: one thread that owns every child. It blocks in one `poll`
//! over the signalfd and the action runner's wake-up fd, with the nearest
//! deadline as timeout (none when idle, so an idle podinit never wakes up).
//!
//! Phases: Initializing (init steps) -> Running (main process, postStart
//! beside it) -> Terminating (preStop, then the stop signal, SIGKILL at the
//! grace deadline) -> Draining (main process gone, leftovers stopped) -> exit.
//!
//! Beside this file: `pre_stop` (`Stop`, the timing of one stop sequence: grace
//! deadline, hold, SIGKILL once, the L4 rule; and the preStop record),
//! `crash_loop` (restart back-off, L13), `status` (the status document), each
//! a plain value with its rule unit-tested without processes; `supervised`
//! (one supervised process: the main process or a sidecar), `sidecars`
//! (L30-L33) and `restore` (registry undo on restart, L39).

mod crash_loop;
mod pre_stop;
mod restore;
mod sidecars;
mod status;
mod supervised;

use crate::cli::RunOptions;
use crate::config::Restart;
use crate::config::Spec;
use crate::events::{self, Reason};
use crate::hooks::Sequence;
use crate::probes::{Probes, Verdict};
use crate::process::{self, ExitStatus};
use crate::runner::{Id, Runner};
use crate::signals::{self, Received, SignalFd};
use crate::steps::{InitSteps, Progress};
use crate::{control, duration, runner, terminal};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use pre_stop::{PreStopRecord, Stop};
use restore::Restore;
use sidecars::Sidecars;
use status::Status;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};
use supervised::Supervised;

/// How long podinit still waits for SIGKILLed leftovers to be reaped.
const AFTER_KILL: Duration = Duration::from_secs(5);

/// Where the container is in its life.
enum Phase {
    /// Init steps run; the main process has not started.
    Initializing(InitSteps),
    /// A stop arrived during init: the running step got the stop signal;
    /// podinit exits with `code` once it is gone.
    Aborting { step: Option<Id>, code: i32 },
    /// The main process runs; `post_start` while its hooks have not finished.
    Running { post_start: Option<Sequence> },
    /// The stop sequence: preStop runs (until the grace deadline at the
    /// latest), then the stop signal, then SIGKILL; `stop` holds the timing.
    Terminating { pre_stop: Option<Sequence>, stop: Stop },
    /// The main process is gone; once the sidecars are gone too (`told`),
    /// leftovers get SIGTERM, and SIGKILL at `kill_at`.
    Draining { kill_at: Instant, killed: bool, told: bool },
    /// Crash-loop back-off: the main process restarts at `until`; `code` is
    /// what podinit exits with if stopped meanwhile.
    BackOff { until: Instant, code: i32 },
}

pub struct Supervisor {
    /// podinit's own pid: signals it sent itself are never forwarded.
    own_pid: i32,
    opts: RunOptions,
    spec: Spec,
    signals: SignalFd,
    runner: Runner,
    workdir: Option<PathBuf>,
    /// The main process: its run, probes and restarts.
    main: Supervised,
    /// The current stop's preStop part: it runs at most once per container stop (docs/lifecycle.md L7).
    prestop: PreStopRecord,
    control: Option<control::Server>,
    control_rx: mpsc::Receiver<control::Request>,
    started_at: SystemTime,
    /// The sidecars started by init steps (docs/lifecycle.md L30-L33).
    sidecars: Sidecars,
    /// Registry overrides to undo once a restarted main process is ready (L39).
    restore: Restore,
    /// A stop asked for from outside (SIGTERM, `podinit pre-stop`): no restart follows.
    for_good: bool,
    /// The process group podinit gave the terminal's foreground to, to take it back at exit.
    foreground_to: Option<i32>,
    /// podinit stopped itself with the main process (^Z) and was continued:
    /// the SIGCONT that continued it is not forwarded a second time.
    resumed: bool,
    phase: Phase,
}

/// Runs the container's lifecycle until everything has ended; returns
/// podinit's exit status.
pub fn run(opts: RunOptions, spec: Spec) -> i32 {
    let signals = match SignalFd::install() {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot set up signal handling: {e}");
            return 1;
        }
    };
    if nix::unistd::getpid().as_raw() != 1 {
        if let Err(e) = process::become_subreaper() {
            log::warn!("cannot become a child subreaper ({e}): orphans will not be reaped by podinit");
        }
    }
    if let Some(sig) = opts.parent_death {
        if let Err(e) = process::set_parent_death_signal(sig) {
            log::warn!("cannot set the parent-death signal {}: {e}", signals::name(sig));
        }
    }
    if let Some((name, ids)) = &spec.main.user {
        if ids.uid != nix::unistd::geteuid().as_raw() && !process::can_kill_any_user() {
            log::warn!(
                "user = \"{name}\" but podinit lacks the CAP_KILL capability: it will not be able to signal \
                 the main process (stop signal, SIGKILL, forwarded signals); give it back with --cap-add KILL \
                 (Kubernetes: securityContext.capabilities.add: [KILL])"
            );
        }
    }
    // Children start in the original directory; podinit itself pins no mount.
    let workdir: Option<PathBuf> = std::env::current_dir().ok();
    let _ = std::env::set_current_dir("/");
    let runner = match Runner::new(spec.main.clone(), workdir.clone()) {
        Ok(r) => r,
        Err(e) => {
            log::error!("cannot set up the action runner: {e}");
            return 1;
        }
    };
    let sidecars = Sidecars::new(spec.backoff, spec.grace, workdir.clone());
    let (control_tx, control_rx) = mpsc::channel();
    let control = match runner.waker().map_err(|e| e.to_string()).and_then(|w| control::Server::bind(w, control_tx)) {
        Ok(server) => {
            log::debug!("control socket at {}", server.path.display());
            Some(server)
        }
        Err(e) => {
            log::warn!("no control socket ({e}): `podinit pre-stop` and `podinit status` cannot reach this podinit; set PODINIT_SOCKET to a path in a writable directory");
            None
        }
    };
    let mut sup = Supervisor {
        opts,
        spec,
        signals,
        runner,
        workdir,
        main: Supervised::new(Instant::now()),
        // SAFETY: getpid has no preconditions.
        own_pid: nix::unistd::getpid().as_raw(),
        prestop: PreStopRecord::default(),
        control,
        control_rx,
        started_at: SystemTime::now(),
        sidecars,
        restore: Restore::default(),
        for_good: false,
        foreground_to: None,
        resumed: false,
        phase: Phase::Running { post_start: None },
    };
    let mut steps = InitSteps::new(std::mem::take(&mut sup.spec.init));
    match steps.begin(&mut sup.runner) {
        Progress::Done => {
            if let Err(code) = sup.start_main() {
                return code;
            }
        }
        Progress::Failed(code) => return code,
        Progress::Running => {
            sup.phase = Phase::Initializing(steps);
            if let Some(code) = sup.advance(false) {
                return code; // a first step that is a sidecar which could not start in time, ...
            }
        }
    }
    let code = sup.run_loop();
    if let Some(pgrp) = sup.foreground_to {
        terminal::take_back_from(pgrp);
    }
    code
}

impl Supervisor {
    fn run_loop(&mut self) -> i32 {
        let mut pending = Vec::new();
        loop {
            let [signalled, woken, knocked, printed] = self.wait();
            if signalled {
                self.signals.drain(&mut pending);
            }
            let mut reap = false;
            for received in pending.drain(..) {
                if received.sig == libc::SIGCHLD {
                    reap = true;
                } else {
                    self.on_signal(received);
                }
            }
            if woken {
                self.runner.on_wake();
            }
            if printed {
                self.runner.on_output();
            }
            if let (true, Some(c)) = (knocked, &self.control) {
                c.accept();
            }
            while let Ok(req) = self.control_rx.try_recv() {
                self.on_control(req);
            }
            let children_left = !reap || self.reap();
            self.runner.on_time(Instant::now());
            if let Some(code) = self.advance(children_left) {
                return code;
            }
        }
    }

    /// Blocks until a signal arrives, a worker finishes, a client connects, a
    /// probe writes output, or the nearest deadline passes; returns which of
    /// these four are ready.
    fn wait(&self) -> [bool; 4] {
        let timeout = match self.deadline() {
            None => PollTimeout::NONE,
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                let ms = left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 != 0);
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let control = self.control.as_ref().map(|c| c.fd());

        // The signalfd and the wake pipe, the control socket when there is
        // one, then the probes' output pipes (one run per probe at most; a
        // pipe left out is read when its probe exits). A fixed array: no
        // allocation per wake-up; the slots past `used` are not polled.
        let pollin = |fd| PollFd::new(fd, PollFlags::POLLIN);
        let mut fds: [PollFd; 6] = std::array::from_fn(|_| pollin(self.signals.as_fd()));
        fds[1] = pollin(self.runner.wake_fd());
        let mut used = 2;
        for (slot, fd) in fds[2..].iter_mut().zip(control.into_iter().chain(self.runner.output_fds())) {
            *slot = pollin(fd);
            used += 1;
        }
        // EINTR only returns early; the loop then looks at the clock again.
        let _ = poll(&mut fds[..used], timeout);
        let ready = |p: &PollFd| p.revents().is_some_and(|r| !r.is_empty());
        let outputs = 2 + usize::from(control.is_some());
        [ready(&fds[0]), ready(&fds[1]), control.is_some() && ready(&fds[2]), fds[outputs..used].iter().any(ready)]
    }

    fn deadline(&self) -> Option<Instant> {
        let phase = match &self.phase {
            Phase::Initializing(steps) => steps.deadline(),
            Phase::Running { post_start: None } => {
                // A pending restore is due as soon as the main process is ready.
                let restore = self.restore.is_pending() && self.main.probes.as_ref().is_some_and(Probes::ready);
                [self.main.probes.as_ref().and_then(Probes::deadline), restore.then(Instant::now)]
                    .into_iter()
                    .flatten()
                    .min()
            }
            Phase::Aborting { .. } | Phase::Running { .. } => None,
            Phase::BackOff { until, .. } => Some(*until),
            Phase::Terminating { pre_stop, stop } => stop.deadline(pre_stop.is_some()),
            Phase::Draining { told: false, .. } => None,
            Phase::Draining { kill_at, killed: false, .. } => Some(*kill_at),
            Phase::Draining { kill_at, killed: true, .. } => Some(*kill_at + AFTER_KILL),
        };
        [phase, self.runner.deadline(), self.sidecars.deadline()].into_iter().flatten().min()
    }

    /// Starts the main process and its postStart hooks; Err holds the exit
    /// status when it cannot start.
    fn start_main(&mut self) -> Result<(), i32> {
        let main = &self.spec.main;
        let takes_terminal = terminal::podinit_has_foreground();
        let pid = process::spawn_os(&main.command, main, self.workdir.as_deref(), true, None).map_err(|e| {
            log::error!("{}", e.message);
            e.code
        })?;
        let argv: Vec<_> = main.command.iter().map(|a| a.to_string_lossy()).collect();
        events::emit(log::Level::Info, Reason::Started, &format!("main process {pid}: {}", argv.join(" ")));
        self.main.started(pid, Instant::now());
        if takes_terminal {
            self.foreground_to = Some(pid);
        }
        let hooks: Vec<_> = self.spec.post_start.iter().map(|h| h.action.clone()).collect();
        let post_start = (!hooks.is_empty()).then(|| Sequence::start(hooks, &mut self.runner));
        if post_start.is_none() {
            self.main.probes = Some(Probes::new(&self.spec.probes, self.main.run_started));
        }
        self.phase = Phase::Running { post_start };
        Ok(())
    }

    /// Reaps every ended child; returns whether any child is left.
    fn reap(&mut self) -> bool {
        let mut ended = Vec::new();
        let (main, mut stopped_by_terminal) = (self.main.pid, false);
        let mut on_stop = |pid, sig| stopped_by_terminal |= Some(pid) == main && terminal::is_terminal_stop(sig);
        // Only a podinit run from a shell (not PID 1, with the terminal) follows the main process's stops.
        let follow_stops = self.own_pid != 1 && self.foreground_to.is_some();
        let left = process::reap(
            |pid, status| ended.push((pid, status)),
            follow_stops.then_some(&mut on_stop as &mut dyn FnMut(i32, i32)),
        );
        if stopped_by_terminal {
            self.suspend_with_main();
        }
        for (pid, status) in ended {
            if Some(pid) == self.main.pid {
                self.main.status = Some(status);
                let mut msg = format!("main process {pid} exited: {}", status.describe());
                if self.opts.reported(status.code()) != status.code() {
                    msg.push_str(", reported as exit code 0 (-e)");
                }
                events::emit(log::Level::Info, Reason::Exited, &msg);
            } else if !self.sidecars.on_exit(pid, status, &mut self.runner) && !self.runner.on_exit(pid, status) {
                if self.opts.warn_on_reap {
                    log::warn!("reaped zombie process {pid}: {}", status.describe());
                } else {
                    log::trace!("reaped process {pid}: {}", status.describe());
                }
            }
        }
        left
    }

    /// A signal other than SIGCHLD arrived: a `stop_on` signal starts the
    /// stop sequence; any other is forwarded.
    fn on_signal(&mut self, received: Received) {
        let Received { sig, pid: sender, .. } = received;
        log::debug!("received {} from pid {sender}", signals::name(sig));
        if sender == self.own_pid || !received.sent_by_a_process() {
            // podinit's own doing, e.g. SIGPIPE from writing to a closed stderr:
            // never the user's request, and forwarding SIGPIPE would kill the app.
            return;
        }
        if sig == libc::SIGCONT && std::mem::take(&mut self.resumed) {
            return; // what continued podinit; the main process got its own SIGCONT
        }
        let initializing = matches!(self.phase, Phase::Initializing(_));
        if self.spec.stop_on.contains(&sig) || initializing && matches!(sig, libc::SIGINT | libc::SIGQUIT) {
            self.stop_requested(sig);
        } else if signals::TERMINAL_INPUT_OUTPUT.contains(&sig) && !self.opts.rewrite.iter().any(|&(f, _)| f == sig) {
            // The terminal's own doing for a background group; forwarded only when --rewrite asks.
            log::debug!("{} not forwarded (no --rewrite names it)", signals::name(sig));
        } else {
            self.forward(sig);
        }
    }

    /// The one entry point of a request to stop the container (SIGTERM, a
    /// failed postStart). During init the running step is stopped and nothing
    /// more starts (docs/lifecycle.md B9); while the main process runs, the stop
    /// sequence begins; a second request during preStop skips the rest of it.
    fn stop_requested(&mut self, sig: i32) {
        self.for_good = true;
        // The stop is final: every started sidecar's preStop starts now (L32), nothing is restored (L39).
        self.sidecars.begin_final_stop(Instant::now() + self.spec.grace, &mut self.runner);
        self.restore.cancel(&mut self.runner);
        match &mut self.phase {
            Phase::BackOff { code, .. } => {
                log::info!("{} during restart back-off: exiting with the last status", signals::name(sig));
                self.phase = Phase::Aborting { step: None, code: *code };
            }
            Phase::Initializing(steps) => {
                let kill_at = Instant::now() + self.spec.grace;
                let step = steps.current().filter(|&id| self.runner.stop(id, self.spec.stop_signal, kill_at));
                log::info!("{} during init steps: starting nothing more", signals::name(sig));
                self.phase = Phase::Aborting { step, code: 128 + sig };
            }
            Phase::Running { .. } => self.begin_pre_stop(false),
            Phase::Terminating { pre_stop: Some(_), stop } if stop.held() => {
                log::info!(
                    "{} during the preStop that `podinit pre-stop` asked for: the stop signal follows it",
                    signals::name(sig)
                );
                stop.release();
            }
            Phase::Terminating { pre_stop: Some(_), .. } => {
                log::info!("{} again during preStop: skipping the rest of preStop", signals::name(sig));
                self.finish_pre_stop("skipped");
            }
            Phase::Terminating { stop, .. } if stop.kill_at().is_none() => {
                // preStop already ran for `podinit pre-stop`: the stop signal goes at once.
                let kill_at = stop.signal_now(Instant::now());
                self.send_stop_signal(kill_at);
            }
            Phase::Aborting { .. } | Phase::Terminating { .. } | Phase::Draining { .. } => self.forward(sig),
        }
    }

    /// Starts the preStop part (once per stop). `hold`: for `podinit pre-stop`,
    /// whose caller (the kubelet) sends SIGTERM itself once it returns.
    fn begin_pre_stop(&mut self, hold: bool) {
        let now = Instant::now();
        let stop = Stop::begin(now, self.spec.grace, hold);
        if let Phase::Running { post_start: Some(hooks) } = &mut self.phase {
            hooks.abort(&mut self.runner, libc::SIGKILL, now);
        }
        self.main.stop_probes(&mut self.runner);
        self.prestop.begin(now);
        if self.spec.pre_stop.is_empty() {
            self.phase = Phase::Terminating { pre_stop: None, stop };
            self.prestop.conclude("ok no preStop actions are configured".into());
            if !hold {
                self.send_stop_signal(stop.grace_deadline());
            }
            return;
        }
        events::emit(
            log::Level::Info,
            Reason::PreStopStarted,
            &format!("{} action(s), grace period {}", self.spec.pre_stop.len(), duration::show(self.spec.grace)),
        );
        let pre_stop = Sequence::start(self.spec.pre_stop.clone(), &mut self.runner);
        self.phase = Phase::Terminating { pre_stop: Some(pre_stop), stop };
    }

    /// Ends the preStop part (finished, skipped or abandoned), answers every
    /// `podinit pre-stop` caller, and sends the stop signal unless held.
    fn finish_pre_stop(&mut self, how: &str) {
        let Phase::Terminating { pre_stop, .. } = &mut self.phase else { return };
        let Some(mut seq) = pre_stop.take() else { return };
        let now = Instant::now();
        seq.abort(&mut self.runner, libc::SIGKILL, now);
        let failed = seq.failures.len();
        let level = if how == "finished" && failed == 0 { log::Level::Info } else { log::Level::Warn };
        let summary = crate::hooks::summary(how, seq.started, failed, seq.len());
        events::emit(level, Reason::PreStopFinished, &summary);
        // `podinit pre-stop` answers for every preStop that has finished by now, sidecars' too.
        let sidecars = self.sidecars.pre_stop_failures();
        let result = if failed == 0 && how == "finished" && sidecars.is_empty() {
            format!("ok preStop {summary}")
        } else {
            let all: Vec<&String> = seq.failures.iter().chain(sidecars).collect();
            let list = all.iter().map(|f| f.as_str()).collect::<Vec<_>>().join("; ");
            format!("fail preStop {summary}{}{list}", if all.is_empty() { "" } else { ": " })
        };
        let state = match how {
            "skipped" => "skipped",
            "abandoned" => "abandoned",
            _ => "finished",
        };
        self.prestop.conclude(result);
        self.prestop.set_outcome(state, std::mem::take(&mut seq.failures));
        let kill_at = match &mut self.phase {
            Phase::Terminating { stop, .. } => stop.pre_stop_ended(now),
            _ => None,
        };
        if let Some(kill_at) = kill_at {
            self.send_stop_signal(kill_at);
        }
    }

    /// A request from `podinit pre-stop` or `podinit status`.
    fn on_control(&mut self, req: control::Request) {
        match req.ask {
            control::Ask::Status => {
                let _ = req.reply.send(self.status_json());
            }
            control::Ask::PreStop => {
                if let Some(result) = self.prestop.result() {
                    let _ = req.reply.send(result.clone());
                    return;
                }
                match &self.phase {
                    Phase::Initializing(_) | Phase::Aborting { .. } => {
                        let _ = req.reply.send("ok the main process has not started yet: nothing to drain".into());
                    }
                    Phase::Draining { .. } => {
                        let _ = req.reply.send("fail the main process has already exited".into());
                    }
                    Phase::Terminating { .. } => self.prestop.wait(req.reply),
                    Phase::BackOff { .. } => {
                        let _ = req.reply.send("ok the main process is waiting to restart: nothing to drain".into());
                    }
                    Phase::Running { .. } => {
                        log::info!("preStop asked for over the control socket");
                        self.for_good = true;
                        self.prestop.wait(req.reply);
                        self.begin_pre_stop(true);
                        self.sidecars.begin_final_stop(Instant::now() + self.spec.grace, &mut self.runner);
                        self.restore.cancel(&mut self.runner);
                    }
                }
            }
        }
    }

    /// The lifecycle state as one JSON object (`podinit status --json`).
    fn status_json(&self) -> String {
        let running = self.main.running().is_some();
        let (phase, ready) = match &self.phase {
            Phase::Initializing(_) | Phase::Aborting { .. } => ("Pending", false),
            Phase::Running { post_start: Some(_) } => ("Pending", false),
            Phase::Running { post_start: None } => {
                ("Running", running && self.main.probes.as_ref().is_none_or(Probes::ready) && self.sidecars.ready())
            }
            Phase::BackOff { .. } => ("Pending", false),
            Phase::Terminating { .. } => ("Terminating", false),
            Phase::Draining { .. } => match self.main.status {
                Some(st) if self.opts.reported(st.code()) == 0 => ("Succeeded", false),
                _ => ("Failed", false),
            },
        };
        Status {
            phase,
            main_pid: self.main.pid,
            started_at: self.started_at,
            restarts: self.main.crash_loop.restarts,
            ready,
            live: running,
            exit_code: self.main.status.map(ExitStatus::code),
            pre_stop: self.prestop.json(),
            sidecars: self.sidecars.json(),
            events: events::recent(),
        }
        .to_json()
    }

    /// Sends the stop signal to the main process; SIGKILL follows at `kill_at`.
    fn send_stop_signal(&mut self, kill_at: Instant) {
        if let Phase::Terminating { stop, .. } = &mut self.phase {
            stop.signalled(kill_at);
        }
        let Some(pid) = self.main.running() else { return };
        // `--rewrite` applies to the stop signal too (dumb-init users rewrite 15).
        let Some(sig) = self.opts.rewritten(self.spec.stop_signal) else {
            log::info!("stop signal dropped by --rewrite: SIGKILL at the grace deadline");
            return;
        };
        let target = if self.opts.group { -pid } else { pid };
        if !process::stop(target, sig, &format!("main process {pid}")) {
            return;
        }
        let left = kill_at.saturating_duration_since(Instant::now());
        events::emit(
            log::Level::Info,
            Reason::Killing,
            &format!("sent {} to main process {pid}, SIGKILL in {}", signals::name(sig), show_left(left)),
        );
    }

    /// The terminal stopped the main process (^Z): podinit stops too, so the
    /// shell that started it gets control back; once continued (`fg`), the
    /// main process gets the foreground back, when podinit has it, and SIGCONT.
    fn suspend_with_main(&mut self) {
        let Some(pid) = self.main.pid else { return };
        log::info!("main process {pid} stopped by the terminal: podinit stops too");
        terminal::suspend_self();
        if terminal::podinit_has_foreground() {
            terminal::give_foreground(pid);
        }
        process::signal(-pid, libc::SIGCONT, &format!("main process {pid}"));
        self.resumed = true;
    }

    /// The grace deadline of the stop sequence: SIGKILL to the main process and
    /// everything left. When even SIGKILL cannot reach the main process (no
    /// CAP_KILL) and podinit is PID 1, podinit exits: the kernel then kills
    /// every process left in the pid namespace. Returns that exit status.
    fn kill_everything(&mut self) -> Option<i32> {
        events::emit(log::Level::Warn, Reason::Killing, "grace period over: sending SIGKILL to every process left");
        let pid = self.main.pid.unwrap_or(0);
        let killed = pid == 0 || process::signal(-pid, libc::SIGKILL, &format!("main process {pid}"));
        if !self.sidecars.any_alive() {
            // With sidecars, leftovers wait until the last sidecar is gone (L32).
            process::signal_all(libc::SIGKILL, pid);
        }
        if !killed && self.own_pid == 1 {
            log::error!("the main process cannot be killed: exiting, so that the kernel ends every process left");
            return Some(128 + libc::SIGKILL);
        }
        None
    }

    /// Forwards `sig` (after `--rewrite`) to the main process or, with `-g`, its group.
    fn forward(&self, sig: i32) {
        let Some(pid) = self.main.running() else {
            log::debug!("no main process: {} not forwarded", signals::name(sig));
            return;
        };
        let Some(to) = self.opts.rewritten(sig) else {
            log::debug!("{} dropped by --rewrite", signals::name(sig));
            return;
        };
        let target = if self.opts.group { -pid } else { pid };
        process::signal(target, to, &format!("main process {pid}"));
    }

    /// Moves the lifecycle on after signals, reaping and timers; returns
    /// podinit's exit status once nothing is left to wait for.
    fn advance(&mut self, children_left: bool) -> Option<i32> {
        let mut done = self.runner.take_done();
        done.retain(|(id, outcome)| !self.sidecars.on_done(*id, outcome, &mut self.runner));
        self.sidecars.on_time(Instant::now(), &mut self.runner);
        if let Phase::Initializing(steps) = &mut self.phase {
            let mut progress = Progress::Running;
            for (id, outcome) in done {
                progress = steps.on_done(id, outcome, &mut self.runner);
                if progress != Progress::Running {
                    break;
                }
            }
            let now = Instant::now();
            // A sidecar step: started here, then the next step waits until it has started (L30).
            while progress == Progress::Running {
                if let Some((name, sidecar)) = steps.sidecar_to_launch() {
                    self.sidecars.launch(name, sidecar, &mut self.runner);
                    self.sidecars.on_time(now, &mut self.runner);
                }
                if !steps.waits_for_sidecar() || !self.sidecars.newest_has_started() {
                    break;
                }
                progress = steps.on_sidecar_started(&mut self.runner);
            }
            if progress == Progress::Running {
                progress = steps.sidecar_timed_out(now).unwrap_or(Progress::Running);
            }
            return match progress {
                Progress::Running => {
                    steps.on_time(now, &mut self.runner);
                    None
                }
                Progress::Failed(code) => self.fail_init(code),
                Progress::Done => self.start_main().err(),
            };
        }
        if let Phase::Aborting { step, code } = self.phase {
            if step.is_some_and(|id| self.runner.is_running(id)) {
                return None;
            }
            if self.sidecars.any_alive() {
                // The running step is gone: the sidecars stop in reverse order (L32).
                self.sidecars.main_gone(Instant::now() + self.spec.grace, &mut self.runner);
                self.sidecars.on_time(Instant::now(), &mut self.runner);
                return None;
            }
            return Some(code);
        }
        let now = Instant::now();
        if let Phase::BackOff { until, .. } = self.phase {
            if now < until {
                return None;
            }
            self.main.crash_loop.restarted();
            return self.start_main().err();
        }
        for (id, outcome) in done {
            if self.restore.on_done(id, &outcome, &mut self.runner) {
                continue;
            }
            let verdict = self.main.probes.as_mut().and_then(|p| p.on_done(id, &outcome, now));
            if let Some(Verdict::Kill(why)) = verdict {
                log::warn!("{why}");
                self.begin_pre_stop(false);
            }
            self.on_hook_done(id, outcome);
        }
        if let (Phase::Running { post_start: None }, Some(probes)) = (&self.phase, &mut self.main.probes) {
            probes.on_time(now, &mut self.runner);
            // Ready again after a restart in place: undo the registry overrides (L39).
            if probes.ready() && self.main.status.is_none() {
                self.restore.on_ready(&mut self.runner);
            }
        }
        if let Phase::Terminating { pre_stop: Some(seq), stop } = &self.phase {
            if seq.is_done() {
                self.finish_pre_stop("finished");
            } else if now >= stop.grace_deadline() {
                events::emit(
                    log::Level::Warn,
                    Reason::FailedPreStopHook,
                    "preStop did not finish within the grace period: abandoned",
                );
                self.finish_pre_stop("abandoned");
            }
        }
        // SIGKILL at the deadline, once; stay here until the main process is
        // reaped, so `restart` can still decide.
        let kill = match &mut self.phase {
            Phase::Terminating { stop, .. } => self.main.status.is_none() && stop.kill_due(now),
            _ => false,
        };
        if kill {
            if let Some(code) = self.kill_everything() {
                return Some(code);
            }
        }
        self.after_main(children_left)
    }

    /// A hook action finished while the main process runs or stops.
    fn on_hook_done(&mut self, id: Id, outcome: crate::actions::Outcome) {
        match &mut self.phase {
            Phase::Running { post_start: Some(seq) } => {
                let Some(i) = seq.on_done(id, &outcome, &mut self.runner) else { return };
                let hook = &self.spec.post_start[i];
                if let crate::actions::Outcome::Failure { message, .. } = &outcome {
                    events::emit(
                        log::Level::Warn,
                        Reason::FailedPostStartHook,
                        &format!("{}: {message}", hook.action.name),
                    );
                    if hook.kill_on_failure {
                        // Killed through the normal kill path (L2); `restart` decides what follows.
                        self.begin_pre_stop(false);
                        return;
                    }
                }
                if seq.is_done() {
                    log::info!("postStart finished after {}: the container is running", runner::took(seq.started));
                    self.phase = Phase::Running { post_start: None };
                    self.main.probes = Some(Probes::new(&self.spec.probes, Instant::now()));
                }
            }
            Phase::Terminating { pre_stop: Some(seq), .. } => {
                if let Some(i) = seq.on_done(id, &outcome, &mut self.runner) {
                    if let crate::actions::Outcome::Failure { message, .. } = &outcome {
                        let name = &self.spec.pre_stop[i].name;
                        events::emit(log::Level::Warn, Reason::FailedPreStopHook, &format!("{name}: {message}"));
                    } else {
                        log::debug!("preStop action {} done", self.spec.pre_stop[i].name);
                        self.restore.on_pre_stop_success(&self.spec.pre_stop[i]);
                    }
                }
            }
            _ => {}
        }
    }

    /// An init step failed for good: podinit exits with `code`, once the
    /// sidecars started so far have stopped.
    fn fail_init(&mut self, code: i32) -> Option<i32> {
        if !self.sidecars.any_alive() {
            return Some(code);
        }
        self.phase = Phase::Aborting { step: None, code };
        self.sidecars.main_gone(Instant::now() + self.spec.grace, &mut self.runner);
        self.sidecars.on_time(Instant::now(), &mut self.runner);
        None
    }

    /// Once the main process is gone: stop hooks and leftovers, exit when
    /// none is left.
    fn after_main(&mut self, children_left: bool) -> Option<i32> {
        let status = self.main.status?;
        let code = self.opts.reported(status.code());
        let now = Instant::now();
        let group = self.main.pid.unwrap_or(0);
        if matches!(self.phase, Phase::Running { .. } | Phase::Terminating { .. }) && self.restart_wanted(status) {
            self.back_off(status, code, now);
            return None;
        }
        let kill_at = match &mut self.phase {
            Phase::Draining { .. } => None,
            Phase::Running { post_start } => {
                if let Some(mut seq) = post_start.take() {
                    seq.abort(&mut self.runner, libc::SIGTERM, now + self.spec.grace);
                }
                Some(now + self.spec.grace)
            }
            Phase::Terminating { pre_stop, stop } => {
                let deadline = stop.kill_at().unwrap_or(stop.grace_deadline()).max(now);
                if let Some(mut seq) = pre_stop.take() {
                    log::info!("main process gone during preStop: the rest of preStop is skipped");
                    seq.abort(&mut self.runner, libc::SIGTERM, stop.grace_deadline());
                    self.prestop.conclude("fail the main process exited during preStop".into());
                }
                Some(deadline)
            }
            Phase::Initializing(_) | Phase::Aborting { .. } | Phase::BackOff { .. } => None,
        };
        if let Some(kill_at) = kill_at {
            self.phase = Phase::Draining { kill_at, killed: false, told: false };
            // No restart follows: the sidecars stop in reverse order, each after its own preStop (L33).
            self.sidecars.main_gone(kill_at, &mut self.runner);
            self.sidecars.on_time(now, &mut self.runner);
        }
        // Leftovers get SIGTERM once the last sidecar is gone (L32).
        if let Phase::Draining { kill_at, told: told @ false, .. } = &mut self.phase {
            if !self.sidecars.any_alive() {
                *told = true;
                let kill_at = *kill_at;
                if children_left {
                    let n = process::signal_all(libc::SIGTERM, group);
                    events::emit(
                        log::Level::Info,
                        Reason::Killing,
                        &format!(
                            "stopping {} left after the main process with SIGTERM, SIGKILL in {}",
                            n.map_or("the processes".to_string(), |n| format!("{n} process(es)")),
                            show_left(kill_at.saturating_duration_since(now))
                        ),
                    );
                }
            }
        }
        if !children_left {
            return Some(code);
        }
        match self.phase {
            Phase::Draining { kill_at, killed: false, told: true } if now >= kill_at => {
                events::emit(
                    log::Level::Warn,
                    Reason::Killing,
                    "grace period over: sending SIGKILL to every process left",
                );
                process::signal_all(libc::SIGKILL, group);
                self.phase = Phase::Draining { kill_at, killed: true, told: true };
            }
            Phase::Draining { kill_at, killed: true, .. } if now >= kill_at + AFTER_KILL => {
                log::warn!("processes left after SIGKILL are abandoned");
                return Some(code);
            }
            _ => {}
        }
        // Processes may have ended between the last reap and the signal.
        (!self.reap()).then_some(code)
    }
}

impl Supervisor {
    /// Whether `restart` asks for another run after `status` (docs/lifecycle.md L13).
    fn restart_wanted(&self, status: ExitStatus) -> bool {
        !self.for_good
            && match self.spec.restart {
                Restart::Never => false,
                Restart::OnFailure => status.code() != 0,
                Restart::Always => true,
            }
    }

    /// Ends this run of the main process and schedules the next one: first
    /// restart at once, then `initial` doubling to `max`, back to immediate
    /// after `reset` of stable running.
    fn back_off(&mut self, status: ExitStatus, code: i32, now: Instant) {
        match std::mem::replace(&mut self.phase, Phase::Draining { kill_at: now, killed: false, told: false }) {
            Phase::Running { post_start: Some(mut seq) } => seq.abort(&mut self.runner, libc::SIGKILL, now),
            Phase::Terminating { pre_stop: Some(mut seq), .. } => {
                seq.abort(&mut self.runner, libc::SIGKILL, now);
                self.prestop.conclude("fail the main process exited during preStop".into());
            }
            _ => {}
        }
        self.main.stop_probes(&mut self.runner);
        if let Some(pid) = self.main.pid.take() {
            let _ = signals::send(-pid, libc::SIGKILL); // what is left of the old run's group
        }
        self.prestop.reset();
        let delay = self.main.next_delay(now, self.spec.backoff);
        events::emit(
            log::Level::Warn,
            Reason::BackOff,
            &format!(
                "main process exited ({}); restart {} in {}",
                status.describe(),
                self.main.crash_loop.restarts + 1,
                show_left(delay)
            ),
        );
        self.phase = Phase::BackOff { until: now + delay, code };
    }
}

/// A time left, rounded to the nearest shown unit: a 30 s grace period
/// that has already lost a few microseconds is still "30s", never "29s".
fn show_left(d: Duration) -> String {
    if d.subsec_millis() == 0 || d >= Duration::from_secs(10) {
        duration::show(Duration::from_secs((d + Duration::from_millis(500)).as_secs()))
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
