//! The PID-1 loop: one thread that owns every child. It blocks in one `poll`
//! over the signalfd and the action runner's wake-up fd, with the nearest
//! deadline as timeout (none when idle, so an idle podinit never wakes up).
//! It runs the init steps, starts the main process, forwards signals, reaps,
//! and decides when podinit exits and with which status.

use crate::cli::RunOptions;
use crate::config::Spec;
use crate::events::{self, Reason};
use crate::process::{self, ExitStatus};
use crate::runner::{Id, Runner};
use crate::signals::{self, SignalFd};
use crate::steps::{InitSteps, Progress};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long podinit still waits for SIGKILLed leftovers to be reaped.
const AFTER_KILL: Duration = Duration::from_secs(5);

/// Where the container is in its life.
enum Phase {
    /// Init steps run; the main process has not started.
    Initializing(InitSteps),
    /// A stop arrived during init: the running step got the stop signal and is
    /// SIGKILLed at `kill_at`; podinit then exits with `code`.
    Aborting { step: Option<Id>, code: i32 },
    /// The main process runs.
    Running,
    /// The main process is gone; leftovers were sent SIGTERM and get SIGKILL at `kill_at`.
    Draining { kill_at: Instant, killed: bool },
}

pub struct Supervisor {
    opts: RunOptions,
    spec: Spec,
    signals: SignalFd,
    runner: Runner,
    workdir: Option<PathBuf>,
    main_pid: Option<i32>,
    main_status: Option<ExitStatus>,
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
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } != 1 {
        if let Err(e) = process::become_subreaper() {
            log::warn!(
                "cannot become a child subreaper ({e}): orphans will not be reaped by podinit"
            );
        }
    }
    if let Some(sig) = opts.parent_death {
        if let Err(e) = process::set_parent_death_signal(sig) {
            log::warn!(
                "cannot set the parent-death signal {}: {e}",
                signals::name(sig)
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
    let mut sup = Supervisor {
        opts,
        spec,
        signals,
        runner,
        workdir,
        main_pid: None,
        main_status: None,
        phase: Phase::Running,
    };
    let mut steps = InitSteps::new(std::mem::take(&mut sup.spec.init));
    match steps.begin(&mut sup.runner) {
        Progress::Done => {
            if let Err(code) = sup.start_main() {
                return code;
            }
        }
        Progress::Failed(code) => return code,
        Progress::Running => sup.phase = Phase::Initializing(steps),
    }
    sup.run_loop()
}

impl Supervisor {
    fn run_loop(&mut self) -> i32 {
        let mut pending = Vec::new();
        loop {
            self.wait();
            self.signals.drain(&mut pending);
            let mut reap = false;
            for (sig, sender) in pending.drain(..) {
                if sig == libc::SIGCHLD {
                    reap = true;
                } else {
                    self.on_signal(sig, sender);
                }
            }
            self.runner.on_wake();
            let children_left = !reap || self.reap();
            self.runner.on_time(Instant::now());
            if let Some(code) = self.advance(children_left) {
                return code;
            }
        }
    }

    /// Blocks until a signal arrives, a worker finishes, or the nearest deadline passes.
    fn wait(&self) {
        let timeout_ms = match self.deadline() {
            None => -1,
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                let ms = left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 != 0);
                ms.min(i32::MAX as u128) as i32
            }
        };
        let mut fds = [
            libc::pollfd {
                fd: self.signals.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.runner.wake_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: fds is a valid array of two pollfds. EINTR only returns early.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    }

    fn deadline(&self) -> Option<Instant> {
        let phase = match &self.phase {
            Phase::Initializing(steps) => steps.deadline(),
            Phase::Aborting { .. } | Phase::Running => None,
            Phase::Draining {
                kill_at,
                killed: false,
            } => Some(*kill_at),
            Phase::Draining {
                kill_at,
                killed: true,
            } => Some(*kill_at + AFTER_KILL),
        };
        [phase, self.runner.deadline()].into_iter().flatten().min()
    }

    /// Starts the main process; Err holds the exit status when it cannot start.
    fn start_main(&mut self) -> Result<(), i32> {
        let pid = process::spawn_os(
            &self.spec.main.command,
            &self.spec.main,
            self.workdir.as_deref(),
            true,
        )
        .map_err(|e| {
            log::error!("{}", e.message);
            e.code
        })?;
        let argv: Vec<_> = self
            .spec
            .main
            .command
            .iter()
            .map(|a| a.to_string_lossy())
            .collect();
        events::emit(
            log::Level::Info,
            Reason::Started,
            &format!("main process {pid}: {}", argv.join(" ")),
        );
        self.main_pid = Some(pid);
        self.phase = Phase::Running;
        Ok(())
    }

    /// Reaps every ended child; returns whether any child is left.
    fn reap(&mut self) -> bool {
        let mut ended = Vec::new();
        let left = process::reap(|pid, status| ended.push((pid, status)));
        for (pid, status) in ended {
            if Some(pid) == self.main_pid {
                self.main_status = Some(status);
                let msg = format!("main process {pid} exited: {}", status.describe());
                events::emit(log::Level::Info, Reason::Exited, &msg);
            } else if !self.runner.on_exit(pid, status) {
                log::trace!("reaped process {pid}: {}", status.describe());
            }
        }
        left
    }

    /// A signal other than SIGCHLD arrived.
    fn on_signal(&mut self, sig: i32, sender: i32) {
        log::debug!("received {} from pid {sender}", signals::name(sig));
        let initializing = matches!(self.phase, Phase::Initializing(_));
        if sig == libc::SIGTERM || initializing && matches!(sig, libc::SIGINT | libc::SIGQUIT) {
            self.stop_requested(sig);
        } else {
            self.forward(sig);
        }
    }

    /// The one entry point of a request to stop the container. During init
    /// the running step is stopped and nothing more starts (SPEC behaviour 9);
    /// once the main process runs, the request is forwarded as it came.
    fn stop_requested(&mut self, sig: i32) {
        match &self.phase {
            Phase::Initializing(steps) => {
                let kill_at = Instant::now() + self.spec.grace;
                let step = steps
                    .current()
                    .filter(|&id| self.runner.stop(id, self.spec.stop_signal, kill_at));
                log::info!(
                    "{} during init steps: starting nothing more",
                    signals::name(sig)
                );
                self.phase = Phase::Aborting {
                    step,
                    code: 128 + sig,
                };
            }
            Phase::Aborting { .. } => {}
            Phase::Running | Phase::Draining { .. } => self.forward(sig),
        }
    }

    /// Forwards `sig` (after `--rewrite`) to the main process or, with `-g`, its group.
    fn forward(&self, sig: i32) {
        let Some(pid) = self.main_pid.filter(|_| self.main_status.is_none()) else {
            log::debug!("no main process: {} not forwarded", signals::name(sig));
            return;
        };
        let Some(to) = self.opts.rewritten(sig) else {
            log::debug!("{} dropped by --rewrite", signals::name(sig));
            return;
        };
        let target = if self.opts.group { -pid } else { pid };
        if let Err(e) = signals::send(target, to) {
            log::debug!("forwarding {} to {target}: {e}", signals::name(to));
        }
    }

    /// Moves the lifecycle on after signals, reaping and timers; returns
    /// podinit's exit status once nothing is left to wait for.
    fn advance(&mut self, children_left: bool) -> Option<i32> {
        let done = self.runner.take_done();
        match &mut self.phase {
            Phase::Initializing(steps) => {
                let mut progress = Progress::Running;
                for (id, outcome) in done {
                    progress = steps.on_done(id, outcome, &mut self.runner);
                    if progress != Progress::Running {
                        break;
                    }
                }
                match progress {
                    Progress::Running => {
                        steps.on_time(Instant::now(), &mut self.runner);
                        None
                    }
                    Progress::Failed(code) => Some(code),
                    Progress::Done => self.start_main().err(),
                }
            }
            Phase::Aborting { step, code } => match step {
                Some(id) if self.runner.is_running(*id) => None,
                _ => Some(*code),
            },
            Phase::Running | Phase::Draining { .. } => self.after_main(children_left),
        }
    }

    /// Once the main process is gone: stop the leftovers, exit when none is left.
    fn after_main(&mut self, children_left: bool) -> Option<i32> {
        let status = self.main_status?;
        let code = self.opts.reported(status.code());
        if !children_left {
            return Some(code);
        }
        let group = self.main_pid.unwrap_or(0);
        let now = Instant::now();
        match self.phase {
            Phase::Running => {
                let n = process::signal_all(libc::SIGTERM, group);
                events::emit(
                    log::Level::Info,
                    Reason::Killing,
                    &format!(
                        "stopping {} left after the main process with SIGTERM, SIGKILL in {}",
                        n.map_or("the processes".to_string(), |n| format!("{n} process(es)")),
                        crate::duration::show(self.spec.grace)
                    ),
                );
                self.phase = Phase::Draining {
                    kill_at: now + self.spec.grace,
                    killed: false,
                };
            }
            Phase::Draining {
                kill_at,
                killed: false,
            } if now >= kill_at => {
                events::emit(
                    log::Level::Warn,
                    Reason::Killing,
                    "grace period over: sending SIGKILL to every process left",
                );
                process::signal_all(libc::SIGKILL, group);
                self.phase = Phase::Draining {
                    kill_at,
                    killed: true,
                };
            }
            Phase::Draining {
                kill_at,
                killed: true,
            } if now >= kill_at + AFTER_KILL => {
                log::warn!("processes left after SIGKILL are abandoned");
                return Some(code);
            }
            _ => {}
        }
        // Processes may have ended between the last reap and the signal.
        (!self.reap()).then_some(code)
    }
}
