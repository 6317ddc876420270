//! Signals: names and numbers, the set podinit reads synchronously through a
//! signalfd, and the reset a child needs before exec (docs/lifecycle.md L16, L18).
//!
//! podinit blocks every catchable signal before any child exists and reads
//! them from one signalfd inside the supervisor's poll. Blocked signals are
//! never dropped by the kernel, even for PID 1, so nothing is lost.
//!
//! The fault signals (SEGV, BUS, ILL, FPE, ABRT, TRAP, SYS) are blocked too, so
//! that one sent with kill() by another process is forwarded like any other
//! (dumb-init does the same) instead of killing podinit or being dropped. A
//! real fault inside podinit still ends it: the kernel unblocks a fault
//! signal it forces and applies the default action, and abort() unblocks
//! SIGABRT before raising it. Blocked SIGTTIN/SIGTTOU also mean terminal
//! hand-over never stops podinit (a blocked SIGTTOU is never generated).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// Signals that report a fault: forwarded only when another process sent
/// them (a `si_code` of SI_USER, SI_QUEUE, SI_TKILL, ...: zero or below).
const FAULTS: [i32; 7] =
    [libc::SIGFPE, libc::SIGILL, libc::SIGSEGV, libc::SIGBUS, libc::SIGABRT, libc::SIGTRAP, libc::SIGSYS];

/// Terminal signals that podinit reads but forwards only when `--rewrite`
/// names them as a source: the kernel sends them to background groups.
pub const TERMINAL_INPUT_OUTPUT: [i32; 2] = [libc::SIGTTIN, libc::SIGTTOU];

/// One signal read from the signalfd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub sig: i32,
    /// The sending pid; 0 when the kernel (or a process outside podinit's pid namespace) sent it.
    pub pid: i32,
    /// `si_code`: zero or below when a process sent it (kill, sigqueue, tgkill).
    pub code: i32,
}

impl Received {
    /// Whether a process sent this signal; a fault signal the kernel raised
    /// (a real fault of a child is reported by SIGCHLD, not this) is not forwarded.
    pub fn sent_by_a_process(&self) -> bool {
        !FAULTS.contains(&self.sig) || self.code <= 0
    }
}

/// Parses a `stop_on` signal: any signal podinit can catch.
pub fn parse_stop_on(text: &str) -> Result<i32, String> {
    let sig = parse(text)?;
    match uncatchable(sig) {
        Some(why) => Err(format!("{} cannot stop the container: {why}", name(sig))),
        None => Ok(sig),
    }
}

/// Parses a comma-separated `PODINIT_STOP_ON` list; an empty list is refused.
pub fn parse_stop_on_list(text: &str) -> Result<Vec<i32>, String> {
    let list = text.split(',').filter(|s| !s.trim().is_empty()).map(parse_stop_on).collect::<Result<Vec<_>, _>>()?;
    if list.is_empty() {
        return Err("no signal given: name at least one, e.g. SIGTERM,SIGQUIT".into());
    }
    Ok(list)
}

/// Why `sig` cannot be a `--rewrite` source or a `stop_on` signal, if it cannot.
pub fn uncatchable(sig: i32) -> Option<&'static str> {
    match sig {
        libc::SIGKILL | libc::SIGSTOP => Some("it cannot be caught"),
        libc::SIGCHLD => Some("podinit reaps children on it"),
        _ => None,
    }
}

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

/// Every signal podinit reads through its signalfd: all catchable signals,
/// 1-31 and 34-64. glibc keeps 32 and 33 for its threads; musl keeps 32-34,
/// but podinit's own threads never need 34 (musl's set*id broadcast; podinit
/// changes ids only in a forked child), and another process may send it.
fn handled() -> impl Iterator<Item = i32> {
    (1..=max_signal()).filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP && !(32..34).contains(&s))
}

/// The kernel's signal set of `signals`, built bit by bit: musl's sigaddset
/// refuses 34, which the kernel takes like any other.
fn set_of(signals: impl Iterator<Item = i32>) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; all zeroes is the empty set.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    const BITS: usize = 8 * std::mem::size_of::<libc::c_ulong>();
    let words = std::mem::size_of::<libc::sigset_t>() / std::mem::size_of::<libc::c_ulong>();
    // SAFETY: sigset_t is an array of c_ulong on Linux (glibc and musl), `words` long.
    let bits =
        unsafe { std::slice::from_raw_parts_mut((&mut set as *mut libc::sigset_t).cast::<libc::c_ulong>(), words) };
    for s in signals {
        let i = (s - 1) as usize;
        if let Some(w) = bits.get_mut(i / BITS) {
            *w |= 1 << (i % BITS);
        }
    }
    set
}

/// The signalfd that delivers every handled signal; created once, before any child.
pub struct SignalFd {
    fd: nix::sys::signalfd::SignalFd,
}

impl SignalFd {
    /// Blocks the handled signals and opens the signalfd.
    pub fn install() -> io::Result<SignalFd> {
        use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
        use nix::sys::signalfd::SfdFlags;
        // nix's SigSet::add goes through sigaddset, which musl refuses for 34,
        // so the set is built by `set_of` and only wrapped here.
        // SAFETY: `set_of` returns an initialised sigset_t: all zeroes (the empty
        // set, as sigemptyset leaves it), then the kernel bits of `handled()`.
        let set = unsafe { SigSet::from_sigset_t_unchecked(set_of(handled())) };
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
        let fd = nix::sys::signalfd::SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
        Ok(SignalFd { fd })
    }

    /// Reads the pending signals, at most about 1,024 a call. One read takes
    /// up to 16 at once, so a single signal costs one read and no trailing
    /// EAGAIN. Under a flood the sender refills the signalfd as fast as it is
    /// read: unbounded, one call gathered the whole flood into `out` (whose
    /// capacity the caller keeps: +0.5 MiB RSS after 200,000 signals,
    /// tests/soak.rs) and forwarded nothing until it ended. The rest stays
    /// queued in the kernel and the signalfd readable: the next poll returns at once.
    pub fn drain(&self, out: &mut Vec<Received>) {
        const SIZE: usize = std::mem::size_of::<libc::signalfd_siginfo>();
        const BATCH: usize = 16;
        // Not zeroed: only what the kernel wrote is looked at (2 KiB of
        // zeroing per signal was most of podinit's own work on this path).
        let mut buf = std::mem::MaybeUninit::<[libc::signalfd_siginfo; BATCH]>::uninit();
        loop {
            // Raw read: nix's SignalFd reads one record per call, this takes up to 16.
            // SAFETY: reading at most the buffer's size into it.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), SIZE * BATCH) };
            // EAGAIN (n < 0): nothing pending (EINTR cannot happen: all handled signals are blocked).
            let got = usize::try_from(n).unwrap_or(0) / SIZE;
            // SAFETY: the kernel wrote `got` whole signalfd_siginfo records (plain data) at the start.
            let infos = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<libc::signalfd_siginfo>(), got) };
            out.extend(infos.iter().map(|i| Received {
                sig: i.ssi_signo as i32,
                pid: i.ssi_pid as i32,
                code: i.ssi_code,
            }));
            if got < BATCH || out.len() >= 1024 {
                return;
            }
        }
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// In a forked child before exec: default disposition for every signal and an
/// empty mask (docs/lifecycle.md L18). Only async-signal-safe calls.
///
/// Raw libc: nix's sigaction takes its Signal enum, which has no real-time
/// signals, and this must reset every signal up to SIGRTMAX.
pub fn reset_for_exec() {
    // SAFETY: sigaction is plain data, so all zeroes is valid before its
    // fields are set; sigemptyset, sigaction and sigprocmask are
    // async-signal-safe and get valid pointers; errors for uncatchable or
    // reserved signals are harmless and ignored.
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

/// Sends `sig` to `pid` (a negative pid names a process group, -1 everyone),
/// quietly: callers that act for the user report failures through
/// `process::signal`.
pub fn send(pid: i32, sig: i32) -> Result<(), nix::errno::Errno> {
    // Raw kill: nix's Signal has no real-time signals, which are forwarded too.
    // SAFETY: kill takes no pointers and has no memory effects.
    nix::errno::Errno::result(unsafe { libc::kill(pid, sig) }).map(drop)
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
    fn handled_is_every_catchable_signal() {
        let h: Vec<i32> = handled().collect();
        for s in [libc::SIGTERM, libc::SIGCHLD, libc::SIGTSTP, libc::SIGSEGV, libc::SIGABRT, libc::SIGTTOU] {
            assert!(h.contains(&s), "{}", name(s));
        }
        assert!(!h.contains(&libc::SIGKILL) && !h.contains(&libc::SIGSTOP));
        assert!(h.contains(&34) && !h.contains(&32) && !h.contains(&33));
    }

    #[test]
    fn sets_are_built_like_sigaddset() {
        let set = set_of([libc::SIGTERM, libc::SIGUSR1, libc::SIGRTMAX()].into_iter());
        for s in 1..=libc::SIGRTMAX() {
            // SAFETY: a valid set and signal number.
            let member = unsafe { libc::sigismember(&set, s) } == 1;
            assert_eq!(member, [libc::SIGTERM, libc::SIGUSR1, libc::SIGRTMAX()].contains(&s), "signal {s}");
        }
    }

    #[test]
    fn fault_signals_count_only_when_a_process_sent_them() {
        let sent = |sig, code| Received { sig, pid: 7, code };
        assert!(sent(libc::SIGSEGV, 0).sent_by_a_process()); // SI_USER
        assert!(sent(libc::SIGABRT, -6).sent_by_a_process()); // SI_TKILL
        assert!(!sent(libc::SIGSEGV, 1).sent_by_a_process()); // SEGV_MAPERR
        assert!(sent(libc::SIGUSR1, 0).sent_by_a_process());
    }
}
