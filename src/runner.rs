//! The one action runner, shared by init steps, hooks and probes. It starts
//! an action and reports its `Outcome` later, whatever the kind: an exec is a
//! child the supervisor reaps (`on_exit`), a sleep is a deadline, a network
//! kind runs on a worker thread that reports through a channel and one byte
//! on the wake-up socket the supervisor polls. Workers never touch processes.
//! A probe's exec output is captured through a pipe the supervisor also polls,
//! so its failure event can quote it, as the kubelet's does.

use crate::actions::{self, Action, Kind, Outcome};
use crate::config::Main;
use crate::process::{self, ExitStatus};
use crate::{duration, signals};
use std::io::{PipeReader, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Names one started action.
pub type Id = u64;

/// Extra time a worker gets past its own limit before the runner gives up on it.
const WORKER_SLACK: Duration = Duration::from_millis(500);

/// How much of a probe's output its failure event quotes; the rest is read and dropped.
const KEPT_OUTPUT: usize = 1024;

#[derive(Debug)]
enum Work {
    /// An exec action: the leader of its own process group.
    Proc(i32),
    /// A network action on a worker thread.
    Worker,
    /// A sleep action.
    Timer,
}

#[derive(Debug)]
struct InFlight {
    id: Id,
    work: Work,
    /// When a timer completes, or when a proc or worker has run out of time.
    deadline: Option<Instant>,
    label: String,
    /// A probe exec's captured output.
    output: Option<Captured>,
}

/// What a probe's exec printed: the pipe (open until end of file or exit),
/// its first bytes, and whether more came than were kept.
#[derive(Debug)]
struct Captured {
    pipe: Option<PipeReader>,
    kept: Vec<u8>,
    cut: bool,
}

impl InFlight {
    /// Reads what the captured output pipe holds now, without blocking, and
    /// at most 64 KiB a call: a probe writing without end (`yes`) cannot hold
    /// PID 1 here; poll reports the rest at the next turn of the loop.
    fn read_output(&mut self) {
        let Some(c) = &mut self.output else { return };
        let mut buf = [0u8; 4096];
        for _ in 0..16 {
            let Some(pipe) = &mut c.pipe else { return };
            match pipe.read(&mut buf) {
                Ok(n) if n > 0 => {
                    let room = KEPT_OUTPUT.saturating_sub(c.kept.len());
                    c.kept.extend_from_slice(&buf[..n.min(room)]);
                    c.cut |= n > room;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                _ => c.pipe = None, // end of file or an error: nothing more to read
            }
        }
    }

    /// `message` and, for a captured exec, what it printed (one line, control
    /// characters dropped, cut at KEPT_OUTPUT bytes, marked `...` when cut).
    fn with_output(&mut self, message: String) -> String {
        self.read_output();
        let Some(Captured { kept, cut, .. }) = self.output.take() else { return message };
        let text = String::from_utf8_lossy(&kept);
        // A character cut in two at the limit is not the probe's fault.
        let text = if cut { text.trim_end_matches('\u{FFFD}') } else { &text };
        let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let text: String = text.chars().filter(|c| !c.is_control()).collect();
        match (text.is_empty(), cut) {
            (true, _) => message,
            (false, false) => format!("{message}: {text}"),
            (false, true) => format!("{message}: {text}..."),
        }
    }
}

pub struct Runner {
    next: Id,
    inflight: Vec<InFlight>,
    done: Vec<(Id, Outcome)>,
    tx: mpsc::Sender<(Id, Outcome)>,
    rx: mpsc::Receiver<(Id, Outcome)>,
    wake_rx: UnixStream,
    wake_tx: UnixStream,
    /// What exec actions inherit: the main process's env, user and workdir.
    main: Main,
    dir: Option<PathBuf>,
}

impl Runner {
    pub fn new(main: Main, dir: Option<PathBuf>) -> std::io::Result<Runner> {
        let (wake_rx, wake_tx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        wake_tx.set_nonblocking(true)?;
        let (tx, rx) = mpsc::channel();
        Ok(Runner { next: 1, inflight: Vec::new(), done: Vec::new(), tx, rx, wake_rx, wake_tx, main, dir })
    }

    /// Another handle on the wake-up socket, for other threads that report to the supervisor.
    pub fn waker(&self) -> std::io::Result<UnixStream> {
        self.wake_tx.try_clone()
    }

    /// The fd to poll: readable when a worker has finished.
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.wake_rx.as_fd()
    }

    /// Starts `action`; `limit` overrides its own timeout (init wait steps
    /// bound each attempt). The outcome arrives later through `take_done`.
    pub fn start(&mut self, action: &Action, limit: Option<Duration>) -> Id {
        self.start_with(action, limit, false, None)
    }

    /// `start` for an exec that runs as `who` (a sidecar's hooks and probes)
    /// rather than as the main process; `capture` keeps a probe's output.
    pub fn start_as(&mut self, action: &Action, limit: Option<Duration>, capture: bool, who: Option<&Main>) -> Id {
        self.start_with(action, limit, capture, who)
    }

    fn start_with(&mut self, action: &Action, limit: Option<Duration>, capture: bool, who: Option<&Main>) -> Id {
        let id = self.next;
        self.next += 1;
        let now = Instant::now();
        let limit = limit.or(action.timeout);
        let label = action.kind.describe();
        match &action.kind {
            Kind::Exec(argv) => {
                let (reader, writer) = match capture.then(output_pipe) {
                    Some(Some((r, w))) => (Some(r), Some(w)),
                    _ => (None, None),
                };
                match process::spawn(argv, who.unwrap_or(&self.main), self.dir.as_deref(), writer) {
                    Ok(pid) => {
                        log::debug!("{}: started process {pid}", action.name);
                        self.inflight.push(InFlight {
                            id,
                            work: Work::Proc(pid),
                            deadline: limit.map(|l| now + l),
                            label,
                            output: reader.map(|r| Captured { pipe: Some(r), kept: Vec::new(), cut: false }),
                        });
                    }
                    Err(e) => self.done.push((id, Outcome::Failure { code: e.code, message: e.message })),
                }
            }
            Kind::Sleep(d) => {
                self.inflight.push(InFlight { id, work: Work::Timer, deadline: Some(now + *d), label, output: None });
            }
            kind => {
                let limit = limit.unwrap_or(actions::DEFAULT_ATTEMPT);
                let (kind, tx, wake) = (kind.clone(), self.tx.clone(), self.wake_tx.try_clone());
                let spawned = std::thread::Builder::new().name("podinit-action".into()).spawn(move || {
                    let outcome = actions::run_blocking(&kind, limit);
                    let _ = tx.send((id, outcome));
                    if let Ok(mut w) = wake {
                        let _ = std::io::Write::write(&mut w, &[1]);
                    }
                });
                match spawned {
                    Ok(_) => self.inflight.push(InFlight {
                        id,
                        work: Work::Worker,
                        deadline: Some(now + limit + WORKER_SLACK),
                        label,
                        output: None,
                    }),
                    Err(e) => self.done.push((id, Outcome::failed(format!("cannot start a worker thread: {e}")))),
                }
            }
        }
        id
    }

    /// A child ended: if it was an exec action, its outcome is ready. Returns
    /// whether the pid was one of ours.
    pub fn on_exit(&mut self, pid: i32, status: ExitStatus) -> bool {
        let Some(i) = self.inflight.iter().position(|f| matches!(f.work, Work::Proc(p) if p == pid)) else {
            return false;
        };
        let mut f = self.inflight.remove(i);
        // Anything the action left in its group goes with it.
        let _ = signals::send(-pid, libc::SIGKILL);
        let outcome = match status {
            ExitStatus::Exited(0) => Outcome::Success(format!("{}: exit code 0", f.label)),
            st => {
                Outcome::Failure { code: st.code(), message: f.with_output(format!("{}: {}", f.label, st.describe())) }
            }
        };
        self.done.push((f.id, outcome));
        true
    }

    /// The captured output pipes, for the supervisor to poll.
    pub fn output_fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> + '_ {
        self.inflight.iter().filter_map(|f| f.output.as_ref()?.pipe.as_ref().map(|p| p.as_fd()))
    }

    /// Reads every captured output pipe (after one of them was readable).
    pub fn on_output(&mut self) {
        self.inflight.iter_mut().for_each(InFlight::read_output);
    }

    /// Collects finished workers (after the wake-up fd was readable).
    pub fn on_wake(&mut self) {
        let mut buf = [0u8; 64];
        while matches!((&self.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
        while let Ok((id, outcome)) = self.rx.try_recv() {
            if let Some(i) = self.inflight.iter().position(|f| f.id == id) {
                self.inflight.remove(i);
                self.done.push((id, outcome));
            }
        }
    }

    /// Completes due timers and fails actions that ran out of time (an exec's
    /// whole process group is killed; a late worker's answer is ignored).
    pub fn on_time(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.inflight.len() {
            if self.inflight[i].deadline.is_some_and(|d| d <= now) {
                let mut f = self.inflight.remove(i);
                let outcome = match f.work {
                    Work::Timer => Outcome::Success(f.label),
                    Work::Proc(pid) => {
                        process::signal(-pid, libc::SIGKILL, &format!("{} (process group {pid})", f.label));
                        Outcome::failed(f.with_output(format!("{}: timed out, killed", f.label)))
                    }
                    Work::Worker => Outcome::failed(format!("{}: no answer in time", f.label)),
                };
                self.done.push((f.id, outcome));
            } else {
                i += 1;
            }
        }
    }

    /// The nearest timer or timeout; `Instant::now()` when outcomes are waiting.
    pub fn deadline(&self) -> Option<Instant> {
        if !self.done.is_empty() {
            return Some(Instant::now());
        }
        self.inflight.iter().filter_map(|f| f.deadline).min()
    }

    pub fn take_done(&mut self) -> Vec<(Id, Outcome)> {
        std::mem::take(&mut self.done)
    }

    /// Stops an action that is no longer wanted: `sig` to an exec's process
    /// group (it stays tracked until reaped, with `kill_at` as its deadline);
    /// timers and workers are simply forgotten. Returns whether a process
    /// was signalled.
    pub fn stop(&mut self, id: Id, sig: i32, kill_at: Instant) -> bool {
        let Some(i) = self.inflight.iter().position(|f| f.id == id) else {
            return false;
        };
        match self.inflight[i].work {
            Work::Proc(pid) => {
                process::stop(-pid, sig, &format!("{} (process group {pid})", self.inflight[i].label));
                self.inflight[i].deadline = Some(kill_at);
                true
            }
            Work::Timer | Work::Worker => {
                self.inflight.remove(i);
                false
            }
        }
    }

    /// Whether an action is still running.
    pub fn is_running(&self, id: Id) -> bool {
        self.inflight.iter().any(|f| f.id == id)
    }
}

/// A pipe for a probe's stdout and stderr; its read end never blocks.
fn output_pipe() -> Option<(PipeReader, std::io::PipeWriter)> {
    let (r, w) = std::io::pipe().ok()?;
    let ok = nix::fcntl::fcntl(&r, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).is_ok();
    ok.then_some((r, w))
}

/// `12.3s` / `450ms`: how long something took, for events.
pub fn took(since: Instant) -> String {
    let d = since.elapsed();
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d < Duration::from_secs(60) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        duration::show(Duration::from_secs(d.as_secs()))
    }
}
