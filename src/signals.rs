//! Signals: names and numbers, the set podinit reads synchronously through a
//! signalfd, and the reset a child needs before exec (docs/lifecycle.md L16, L18).
//!
//! podinit blocks every signal it handles before any child exists and reads
//! them from one signalfd inside the supervisor's poll. Blocked signals are
//! never dropped by the kernel, even for PID 1, so nothing is lost. Signals
//! that report a fault in podinit itself (SEGV, BUS, ...) stay unblocked, and
//! SIGTTIN/SIGTTOU are ignored so that terminal hand-over never stops podinit.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Signals that are synchronous faults of podinit itself: never blocked, never forwarded.
const SYNCHRONOUS: [i32; 7] =
    [libc::SIGFPE, libc::SIGILL, libc::SIGSEGV, libc::SIGBUS, libc::SIGABRT, libc::SIGTRAP, libc::SIGSYS];

/// Signals podinit ignores for itself (terminal hand-over) and resets for the child.
const IGNORED: [i32; 2] = [libc::SIGTTIN, libc::SIGTTOU];

const NAMES: [(&str, i32); 31] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("SYS", libc::SIGSYS),
];

/// The highest signal number (SIGRTMAX).
fn max_signal() -> i32 {
    libc::SIGRTMAX()
}

/// Parses `SIGTERM`, `TERM`, `sigterm`, `15`, `SIGRTMIN+2` or `RTMAX-1`.
pub fn parse(text: &str) -> Result<i32, String> {
    let bad = || {
        format!("'{text}' is not a signal: write a name like SIGTERM or TERM, or a number from 1 to {}", max_signal())
    };
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        return if (1..=max_signal()).contains(&n) { Ok(n) } else { Err(bad()) };
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMES.iter().find(|(nm, _)| *nm == name) {
        return Ok(n);
    }
    let rt = |rest: &str, base: i32, sign: i32| -> Option<i32> {
        let n = if rest.is_empty() { base } else { base + sign * rest.parse::<i32>().ok()? };
        (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n).then_some(n)
    };
    let parsed = if let Some(rest) = name.strip_prefix("RTMIN") {
        rt(rest.strip_prefix('+').unwrap_or(rest), libc::SIGRTMIN(), 1)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        rt(rest.strip_prefix('-').unwrap_or(rest), libc::SIGRTMAX(), -1)
    } else {
        None
    };
    parsed.ok_or_else(bad)
}

/// `SIGTERM` for 15, `SIGRTMIN+2` for a real-time signal, the number otherwise.
pub fn name(sig: i32) -> String {
    if let Some((n, _)) = NAMES.iter().find(|(_, s)| *s == sig) {
        return format!("SIG{n}");
    }
    if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&sig) {
        return format!("SIGRTMIN+{}", sig - libc::SIGRTMIN());
    }
    sig.to_string()
}

/// Every signal podinit reads through its signalfd: all catchable signals but
/// the synchronous faults and the ignored terminal ones. Reserved libc
/// real-time signals (below SIGRTMIN) are left alone.
fn handled() -> impl Iterator<Item = i32> {
    (1..=max_signal()).filter(|&s| {
        s != libc::SIGKILL
            && s != libc::SIGSTOP
            && !SYNCHRONOUS.contains(&s)
            && !IGNORED.contains(&s)
            && (s < 32 || s >= libc::SIGRTMIN())
    })
}

fn empty_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the whole set; a zeroed sigset_t is valid input.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        set
    }
}

/// The signalfd that delivers every handled signal; created once, before any child.
pub struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    /// Blocks the handled signals, ignores SIGTTIN/SIGTTOU and opens the signalfd.
    pub fn install() -> io::Result<SignalFd> {
        let mut set = empty_set();
        for s in handled() {
            // SAFETY: set is initialised and s is a valid signal number.
            unsafe { libc::sigaddset(&mut set, s) };
        }
        // SAFETY: valid set pointer, old set not requested.
        if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        for s in IGNORED {
            // SAFETY: setting SIG_IGN for a valid, catchable signal.
            unsafe { libc::signal(s, libc::SIG_IGN) };
        }
        // SAFETY: -1 asks for a new fd; set is initialised.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        Ok(SignalFd { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Reads every pending signal: the signal number and the sending pid
    /// (0 when the kernel sent it). One read takes up to 16 at once, so a
    /// single signal costs one read and no trailing EAGAIN.
    pub fn drain(&self, out: &mut Vec<(i32, i32)>) {
        const SIZE: usize = std::mem::size_of::<libc::signalfd_siginfo>();
        const BATCH: usize = 16;
        // Not zeroed: only what the kernel wrote is looked at (2 KiB of
        // zeroing per signal was most of podinit's own work on this path).
        let mut buf = std::mem::MaybeUninit::<[libc::signalfd_siginfo; BATCH]>::uninit();
        loop {
            // SAFETY: reading at most the buffer's size into it.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), SIZE * BATCH) };
            // EAGAIN (n < 0): nothing pending (EINTR cannot happen: all handled signals are blocked).
            let got = usize::try_from(n).unwrap_or(0) / SIZE;
            // SAFETY: the kernel wrote `got` whole signalfd_siginfo records (plain data) at the start.
            let infos = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<libc::signalfd_siginfo>(), got) };
            out.extend(infos.iter().map(|i| (i.ssi_signo as i32, i.ssi_pid as i32)));
            if got < BATCH {
                return;
            }
        }
    }
}

impl AsRawFd for SignalFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// In a forked child before exec: default disposition for every signal and an
/// empty mask (docs/lifecycle.md L18). Only async-signal-safe calls.
pub fn reset_for_exec() {
    // SAFETY: sigaction/sigprocmask are async-signal-safe; errors for
    // uncatchable or reserved signals are harmless and ignored.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut act.sa_mask);
        for s in 1..=libc::SIGRTMAX() {
            if s != libc::SIGKILL && s != libc::SIGSTOP {
                libc::sigaction(s, &act, std::ptr::null_mut());
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Sends `sig` to `pid` (a negative pid names a process group, -1 everyone).
pub fn send(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill has no memory effects.
    os_result(unsafe { libc::kill(pid, sig) })
}

/// A libc return code as a Result: 0 is success, anything else reads errno.
pub fn os_result(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        assert_eq!(parse("SIGTERM"), Ok(libc::SIGTERM));
        assert_eq!(parse("term"), Ok(libc::SIGTERM));
        assert_eq!(parse("15"), Ok(15));
        assert_eq!(parse("SIGQUIT"), Ok(libc::SIGQUIT));
        assert_eq!(parse("RTMIN+1"), Ok(libc::SIGRTMIN() + 1));
        assert_eq!(parse("SIGRTMAX"), Ok(libc::SIGRTMAX()));
        assert!(parse("SIGFOO").is_err());
        assert!(parse("0").is_err());
        assert!(parse("65").is_err());
        assert!(parse("RTMIN+99").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn names_round_trip() {
        for s in 1..=libc::SIGRTMAX() {
            if s < 32 || s >= libc::SIGRTMIN() {
                assert_eq!(parse(&name(s)), Ok(s), "signal {s}");
            }
        }
        assert_eq!(name(libc::SIGTERM), "SIGTERM");
    }

    #[test]
    fn handled_excludes_faults_and_uncatchable() {
        let h: Vec<i32> = handled().collect();
        assert!(h.contains(&libc::SIGTERM) && h.contains(&libc::SIGCHLD) && h.contains(&libc::SIGTSTP));
        assert!(!h.contains(&libc::SIGKILL) && !h.contains(&libc::SIGSEGV) && !h.contains(&libc::SIGTTOU));
    }
}
