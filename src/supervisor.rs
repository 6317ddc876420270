//! The PID-1 loop: one thread that owns every child. It blocks on one `poll`
//! over the signalfd whose timeout is the nearest deadline (none when idle,
//! so an idle podinit never wakes up), forwards signals, reaps, and decides
//! when podinit exits and with which status.

use crate::cli::RunOptions;
use crate::events::{self, Reason};
use crate::process::{self, ExitStatus};
use crate::signals::{self, SignalFd};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long podinit still waits for SIGKILLed leftovers to be reaped.
const AFTER_KILL: Duration = Duration::from_secs(5);

/// Where the container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The main process runs.
    Running,
    /// The main process is gone; leftovers were sent SIGTERM and get SIGKILL at `kill_at`.
    Draining { kill_at: Instant, killed: bool },
}

pub struct Supervisor {
    opts: RunOptions,
    signals: SignalFd,
    main_pid: i32,
    main_status: Option<ExitStatus>,
    phase: Phase,
}

/// Runs the main process under podinit until everything has ended; returns
/// podinit's exit status.
pub fn run(opts: RunOptions) -> i32 {
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
    let workdir: Option<PathBuf> = std::env::current_dir().ok();
    let main_pid = match process::spawn_main(&opts.command, workdir.as_deref()) {
        Ok(pid) => pid,
        Err(e) => {
            log::error!("{}", e.message);
            return e.code;
        }
    };
    // podinit itself pins no mount; the main process keeps the original directory.
    let _ = std::env::set_current_dir("/");
    events::emit(
        log::Level::Info,
        Reason::Started,
        &format!("main process {main_pid}: {}", show_argv(&opts.command)),
    );
    let mut sup = Supervisor {
        opts,
        signals,
        main_pid,
        main_status: None,
        phase: Phase::Running,
    };
    sup.run_loop()
}

impl Supervisor {
    fn run_loop(&mut self) -> i32 {
        let mut pending = Vec::new();
        loop {
            self.wait_for_signals();
            self.signals.drain(&mut pending);
            let mut reap = false;
            for (sig, sender) in pending.drain(..) {
                if sig == libc::SIGCHLD {
                    reap = true;
                } else {
                    self.on_signal(sig, sender);
                }
            }
            let children_left = !reap || self.reap();
            if let Some(code) = self.advance(children_left) {
                return code;
            }
        }
    }

    /// Blocks until a signal arrives or the nearest deadline passes.
    fn wait_for_signals(&self) {
        let timeout_ms = match self.deadline() {
            None => -1,
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                left.as_millis()
                    .saturating_add(u128::from(left.subsec_nanos() % 1_000_000 != 0))
                    .min(i32::MAX as u128) as i32
            }
        };
        let mut fds = [libc::pollfd {
            fd: self.signals.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: fds is a valid array of one pollfd. EINTR only returns early.
        unsafe { libc::poll(fds.as_mut_ptr(), 1, timeout_ms) };
    }

    fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Running => None,
            Phase::Draining {
                kill_at,
                killed: false,
            } => Some(kill_at),
            Phase::Draining {
                kill_at,
                killed: true,
            } => Some(kill_at + AFTER_KILL),
        }
    }

    /// Reaps every ended child; returns whether any child is left.
    fn reap(&mut self) -> bool {
        let main_pid = self.main_pid;
        let mut main_status = None;
        let left = process::reap(|pid, status| {
            if pid == main_pid {
                main_status = Some(status);
            } else {
                log::trace!("reaped process {pid}: {}", status.describe());
            }
        });
        if let Some(status) = main_status {
            self.main_status = Some(status);
            events::emit(
                log::Level::Info,
                Reason::Exited,
                &format!("main process {main_pid} exited: {}", status.describe()),
            );
        }
        left
    }

    /// A signal other than SIGCHLD arrived.
    fn on_signal(&mut self, sig: i32, sender: i32) {
        log::debug!("received {} from pid {sender}", signals::name(sig));
        if sig == libc::SIGTERM {
            self.stop_requested(sig);
        } else {
            self.forward(sig);
        }
    }

    /// The one entry point of a request to stop the container. For now the
    /// request is forwarded as it came; the stop sequence takes over here.
    fn stop_requested(&mut self, sig: i32) {
        self.forward(sig);
    }

    /// Forwards `sig` (after `--rewrite`) to the main process or, with `-g`, its group.
    fn forward(&self, sig: i32) {
        if self.main_status.is_some() {
            log::debug!("main process gone: {} not forwarded", signals::name(sig));
            return;
        }
        let Some(to) = self.opts.rewritten(sig) else {
            log::debug!("{} dropped by --rewrite", signals::name(sig));
            return;
        };
        let target = if self.opts.group {
            -self.main_pid
        } else {
            self.main_pid
        };
        if let Err(e) = signals::send(target, to) {
            log::debug!("forwarding {} to {target}: {e}", signals::name(to));
        }
    }

    /// Moves the lifecycle on after signals and reaping; returns podinit's exit
    /// status once nothing is left to wait for.
    fn advance(&mut self, children_left: bool) -> Option<i32> {
        let status = self.main_status?;
        let code = self.opts.reported(status.code());
        if !children_left {
            return Some(code);
        }
        let now = Instant::now();
        match self.phase {
            Phase::Running => {
                let n = process::signal_all(libc::SIGTERM, self.main_pid);
                events::emit(
                    log::Level::Info,
                    Reason::Killing,
                    &format!(
                        "stopping {} left after the main process with SIGTERM, SIGKILL in {}",
                        n.map_or("the processes".to_string(), |n| format!("{n} process(es)")),
                        crate::duration::show(self.opts.grace)
                    ),
                );
                self.phase = Phase::Draining {
                    kill_at: now + self.opts.grace,
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
                process::signal_all(libc::SIGKILL, self.main_pid);
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
            Phase::Draining { .. } => {}
        }
        // Processes may have ended between the last reap and the signal.
        (!self.reap()).then_some(code)
    }
}

fn show_argv(argv: &[std::ffi::OsString]) -> String {
    argv.iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}
