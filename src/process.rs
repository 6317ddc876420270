//! Children: spawning the main process, decoding wait statuses, reaping every
//! child in one place, and signalling whatever is left at the end.
//!
//! The supervisor is the only caller of `reap`, so no status is ever stolen
//! (docs/design.md "The event loop"). Nothing here waits on a specific pid.

use crate::config::Main;
use crate::events::{self, Reason};
use crate::{signals, user};
use std::ffi::OsString;
use std::io;
use std::io::PipeWriter;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// How a child ended, decoded from `waitpid` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    fn from_raw(status: i32) -> Option<ExitStatus> {
        if libc::WIFEXITED(status) {
            Some(ExitStatus::Exited(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(ExitStatus::Signaled(libc::WTERMSIG(status)))
        } else {
            None
        }
    }

    /// The shell convention: the exit code, or 128 + N for signal N (docs/lifecycle.md L15).
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }

    pub fn describe(self) -> String {
        match self {
            ExitStatus::Exited(c) => format!("exit code {c}"),
            ExitStatus::Signaled(s) => {
                format!("killed by {} (exit code {})", signals::name(s), 128 + s)
            }
        }
    }
}

/// Reaps every child that has ended, in a loop until none is left to collect
/// (one SIGCHLD can stand for many exits). Returns false once no child at all
/// remains (ECHILD). With `stops`, a child that stopped is reported too, as
/// `on_stop(pid, signal)`.
pub fn reap(mut on_exit: impl FnMut(i32, ExitStatus), stops: Option<&mut dyn FnMut(i32, i32)>) -> bool {
    let flags = if stops.is_some() { libc::WNOHANG | libc::WUNTRACED } else { libc::WNOHANG };
    let mut stops = stops;
    loop {
        let mut status = 0;
        // Raw waitpid: nix's decodes the status through its Signal enum, which
        // has no real-time signals, so a child killed by SIGRTMIN+n would be
        // reaped and then reported as an EINVAL error, its exit lost.
        // SAFETY: status is a valid out pointer for the call's duration.
        let pid = unsafe { libc::waitpid(-1, &mut status, flags) };
        match pid {
            0 => return true,
            p if p > 0 => {
                if let Some(st) = ExitStatus::from_raw(status) {
                    on_exit(p, st);
                } else if let (true, Some(on_stop)) = (libc::WIFSTOPPED(status), stops.as_mut()) {
                    on_stop(p, libc::WSTOPSIG(status));
                }
            }
            _ => match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                _ => return false, // ECHILD
            },
        }
    }
}

/// Why a command could not be started, with the exit code it maps to.
#[derive(Debug)]
pub struct SpawnError {
    pub code: i32,
    pub message: String,
}

/// Starts an action's `argv` in its own process group, as the `[main]` table
/// says (env, user, workdir; `dir` when it names no workdir), with default
/// signal dispositions, an empty mask and /dev/null as stdin. Its stdout and
/// stderr are podinit's, or `output` when given (a probe's captured output).
pub fn spawn(argv: &[String], main: &Main, dir: Option<&Path>, output: Option<PipeWriter>) -> Result<i32, SpawnError> {
    spawn_os(&argv.iter().map(OsString::from).collect::<Vec<_>>(), main, dir, false, output)
}

/// `spawn` for any argv; `foreground` (the main process) keeps stdin and
/// takes the terminal when stdin is one.
pub fn spawn_os(
    argv: &[OsString],
    main: &Main,
    dir: Option<&Path>,
    foreground: bool,
    output: Option<PipeWriter>,
) -> Result<i32, SpawnError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(SpawnError { code: 2, message: "no command to run".into() });
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(d) = main.workdir.as_deref().or(dir) {
        cmd.current_dir(d);
    }
    if let Some((_, ids)) = &main.user {
        if let Some(home) = &ids.home {
            cmd.env("HOME", home);
        }
    }
    cmd.envs(main.env.iter().map(|(k, v)| (k, v)));
    if !foreground {
        cmd.stdin(Stdio::null());
    }
    if let Some(out) = output {
        if let Ok(err) = out.try_clone() {
            cmd.stderr(err);
        }
        cmd.stdout(out);
    }
    let ids = main.user.as_ref().map(|(_, ids)| ids.clone());
    // The terminal's foreground is podinit's to give only when podinit has it.
    let take_terminal = foreground && crate::terminal::podinit_has_foreground();
    // Raw libc inside: between fork and exec only async-signal-safe calls
    // that allocate nothing are allowed (the parent may be multi-threaded).
    // SAFETY: the closure calls only setpgid, getpid, tcsetpgrp, user::apply
    // (set*id calls) and signals::reset_for_exec (sigaction, sigprocmask),
    // all async-signal-safe; `ids` was cloned before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // SIGTTOU is still blocked here (inherited), so the new group,
            // not yet in the foreground, may take the terminal.
            if take_terminal {
                libc::tcsetpgrp(0, libc::getpid());
            }
            if let Some(ids) = &ids {
                user::apply(ids)?;
            }
            signals::reset_for_exec();
            Ok(())
        });
    }
    match cmd.spawn() {
        Ok(child) => Ok(child.id() as i32), // never waited through `child`: the reaper owns it
        Err(e) => {
            let program = program.to_string_lossy();
            let code = match e.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ENOTDIR) => 127,
                _ => 126,
            };
            let hint = match e.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ENOTDIR) => "check the name, PATH and workdir",
                Some(libc::EPERM) => "podinit may lack the right to switch to that user",
                Some(libc::EAGAIN) => "the process limit is reached: pids.max of the container's cgroup, or ulimit -u",
                _ => "check its permissions and format",
            };
            Err(SpawnError { code, message: format!("cannot run '{program}': {e} ({hint})") })
        }
    }
}

/// Sends `sig` to `target` (a pid, or minus a process group) for the user's
/// lifecycle; `what` names it in events ("main process 6"). Returns whether
/// the signal went out. A process already gone is not an error; any other
/// failure is a `FailedKill` error event, and EPERM names the process's user
/// and the capability podinit lacks, never a silent "sent".
pub fn signal(target: i32, sig: i32, what: &str) -> bool {
    match signals::send(target, sig) {
        Ok(()) => true,
        Err(nix::errno::Errno::ESRCH) => false,
        Err(nix::errno::Errno::EPERM) => {
            let uid = owner(target.abs()).map_or("another user".to_string(), |u| format!("uid {u}"));
            events::emit(
                log::Level::Error,
                Reason::FailedKill,
                &format!(
                    "cannot send {} to {what}, which runs as {uid}: podinit lacks the CAP_KILL capability \
                     (give it back: --cap-add KILL for docker/podman run, \
                     securityContext.capabilities.add: [KILL] in Kubernetes)",
                    signals::name(sig)
                ),
            );
            false
        }
        Err(e) => {
            events::emit(
                log::Level::Error,
                Reason::FailedKill,
                &format!("cannot send {} to {what}: {}", signals::name(sig), e.desc()),
            );
            false
        }
    }
}

/// A stop signal for `target`, then SIGCONT, as systemd does: a process
/// stopped by SIGTSTP or SIGSTOP could not act on the stop signal otherwise.
pub fn stop(target: i32, sig: i32, what: &str) -> bool {
    let sent = signal(target, sig, what);
    if sent && sig != libc::SIGCONT && sig != libc::SIGKILL {
        let _ = signals::send(target, libc::SIGCONT);
    }
    sent
}

/// The real uid a process runs as, from /proc/PID/status.
fn owner(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// The capability to signal any user's processes (linux/capability.h).
const CAP_KILL: u32 = 5;

/// Whether podinit has CAP_KILL in its effective set (unknown counts as yes).
pub fn can_kill_any_user() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return true };
    let eff = status.lines().find_map(|l| l.strip_prefix("CapEff:")).map(str::trim);
    eff.and_then(|hex| u64::from_str_radix(hex, 16).ok()).is_none_or(|caps| caps & (1 << CAP_KILL) != 0)
}

/// Sends `sig` to every process left under podinit: the whole pid namespace
/// when podinit is PID 1, otherwise every descendant found in /proc (a
/// subreaper must never signal processes outside its tree). A stop signal is
/// followed by SIGCONT. Returns how many processes were signalled, when that
/// is known.
pub fn signal_all(sig: i32, fallback_group: i32) -> Option<usize> {
    let me = nix::unistd::getpid().as_raw();
    if me == 1 {
        stop(-1, sig, "the processes left");
        return None;
    }
    match descendants(me) {
        Ok(pids) => {
            for &p in &pids {
                stop(p, sig, &format!("process {p}"));
            }
            Some(pids.len())
        }
        Err(_) => {
            stop(-fallback_group, sig, &format!("process group {fallback_group}"));
            None
        }
    }
}

/// Every descendant of `root`, read from /proc/*/stat.
fn descendants(root: i32) -> io::Result<Vec<i32>> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name may hold spaces and parentheses: fields resume after the last ')'.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|f| f.parse::<i32>().ok()) {
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parent_of.iter().filter(|&&(_, pp)| pp == parent).map(|&(p, _)| p));
        i += 1;
    }
    found.remove(0);
    Ok(found)
}

/// Makes podinit a child subreaper, so orphans of its tree are re-parented to
/// it (docs/lifecycle.md L17, L28). PID 1 is one already.
pub fn become_subreaper() -> io::Result<()> {
    Ok(nix::sys::prctl::set_child_subreaper(true)?)
}

/// Asks the kernel to send `sig` to podinit when its parent dies (tini `-p`).
pub fn set_parent_death_signal(sig: i32) -> io::Result<()> {
    let sig = nix::sys::signal::Signal::try_from(sig)?;
    Ok(nix::sys::prctl::set_pdeathsig(sig)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_shell_convention() {
        assert_eq!(ExitStatus::Exited(3).code(), 3);
        assert_eq!(ExitStatus::Signaled(libc::SIGTERM).code(), 143);
        assert_eq!(ExitStatus::Signaled(libc::SIGKILL).code(), 137);
        assert!(ExitStatus::Signaled(libc::SIGKILL).describe().contains("SIGKILL"));
    }

    #[test]
    fn descendants_finds_a_grandchild() {
        let mut child = Command::new("sh").args(["-c", "sleep 5 & wait"]).process_group(0).spawn().unwrap();
        let me = std::process::id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut found = Vec::new();
        while std::time::Instant::now() < deadline {
            found = descendants(me).unwrap();
            if found.len() >= 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(found.contains(&(child.id() as i32)), "{found:?}");
        assert!(found.len() >= 2, "grandchild missing: {found:?}");
        let _ = signals::send(-(child.id() as i32), libc::SIGKILL);
        let _ = child.wait();
    }
}
