//! Children: spawning the main process, decoding wait statuses, reaping every
//! child in one place, and signalling whatever is left at the end.
//!
//! The supervisor is the only caller of `reap`, so no status is ever stolen
//! (docs/design.md "The event loop"). Nothing here waits on a specific pid.

use crate::config::Main;
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
/// remains (ECHILD).
pub fn reap(mut on_exit: impl FnMut(i32, ExitStatus)) -> bool {
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        match pid {
            0 => return true,
            p if p > 0 => {
                if let Some(st) = ExitStatus::from_raw(status) {
                    on_exit(p, st);
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
    // SAFETY: the closure makes only async-signal-safe calls and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // SIGTTOU is still ignored here (inherited), so a background
            // group may take the terminal; ENOTTY just means no terminal.
            if foreground && libc::isatty(0) == 1 {
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

/// Sends `sig` to every process left under podinit: the whole pid namespace
/// when podinit is PID 1, otherwise every descendant found in /proc (a
/// subreaper must never signal processes outside its tree). Returns how many
/// processes were signalled, when that is known.
pub fn signal_all(sig: i32, fallback_group: i32) -> Option<usize> {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    if me == 1 {
        let _ = signals::send(-1, sig);
        return None;
    }
    match descendants(me) {
        Ok(pids) => {
            for &p in &pids {
                let _ = signals::send(p, sig);
            }
            Some(pids.len())
        }
        Err(_) => {
            let _ = signals::send(-fallback_group, sig);
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
    // SAFETY: prctl with integer arguments.
    signals::os_result(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
}

/// Asks the kernel to send `sig` to podinit when its parent dies (tini `-p`).
pub fn set_parent_death_signal(sig: i32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    signals::os_result(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) })
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
