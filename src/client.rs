//! The client side of the control socket (`podinit pre-stop`, `podinit
//! status`): reach the running podinit, or say exactly why not.
//!
//! docs/lifecycle.md B11: `pre-stop` may run the preStop
//! actions itself only when no podinit supervises this container AND no
//! socket file exists at any candidate path; otherwise a failed connect is a
//! reason with a fix (permission, a missing directory, no socket at all, a
//! full backlog), never "no podinit". Whether a podinit supervises this
//! container is read from /proc: a process other than this one with the same
//! root directory whose argv is a podinit run as init (not a client verb).

use crate::control;
use std::ffi::OsString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Connect attempts while the server's listen backlog is full.
const BUSY_TRIES: u32 = 20;

/// Why no connection to a running podinit was made.
#[derive(Debug)]
pub enum Unreachable {
    /// No socket file at any candidate path (each: the path, whether its directory exists).
    Missing(Vec<(PathBuf, bool)>),
    /// connect() was refused for lack of permission; the socket's owner when known.
    Denied { path: PathBuf, owner: Option<u32> },
    /// A socket file nobody listens on (a podinit that ended without removing it, or is ending).
    NotListening(PathBuf),
    /// The listen backlog stayed full.
    Busy(PathBuf),
    /// Anything else connect() said.
    Other(PathBuf, io::Error),
}

/// Whether a podinit supervises this container (docs/lifecycle.md B11: /proc decides).
#[derive(Debug, PartialEq)]
pub enum Supervisor {
    Found {
        pid: u32,
        uid: Option<u32>,
    },
    Absent,
    /// /proc could not tell (the reason): treated as a podinit that exists.
    Unknown(String),
}

/// Connects to the running podinit at the first candidate path that answers;
/// otherwise the most telling reason (a refused or busy socket before a missing one).
pub fn connect() -> Result<UnixStream, Unreachable> {
    let mut missing = Vec::new();
    let mut worst: Option<Unreachable> = None;
    for path in control::candidates() {
        match connect_at(&path) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
                missing.push((path.clone(), dir.is_dir()));
            }
            Err(e) => {
                let why = match e.raw_os_error() {
                    Some(libc::EACCES) | Some(libc::EPERM) => {
                        let owner = std::fs::metadata(&path).ok().map(|m| m.uid());
                        Unreachable::Denied { path, owner }
                    }
                    Some(libc::ECONNREFUSED) => Unreachable::NotListening(path),
                    Some(libc::EAGAIN) => Unreachable::Busy(path),
                    _ => Unreachable::Other(path, e),
                };
                worst.get_or_insert(why);
            }
        }
    }
    Err(worst.unwrap_or(Unreachable::Missing(missing)))
}

/// One non-blocking connect (so a full backlog is EAGAIN, not an endless
/// wait), retried while the backlog stays full; the stream is then blocking.
fn connect_at(path: &Path) -> io::Result<UnixStream> {
    use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
    let bytes = path.as_os_str().as_bytes();
    let sun_path_len = std::mem::size_of::<libc::sockaddr_un>() - std::mem::size_of::<libc::sa_family_t>();
    if bytes.len() >= sun_path_len || bytes.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "socket path too long or not a plain path"));
    }
    let addr = UnixAddr::new(path)?;
    for attempt in 1..=BUSY_TRIES {
        let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
        let stream = UnixStream::from(socket::socket(AddressFamily::Unix, SockType::Stream, flags, None)?);
        match socket::connect(stream.as_raw_fd(), &addr) {
            Ok(()) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(e) if e != nix::errno::Errno::EAGAIN || attempt == BUSY_TRIES => return Err(e.into()),
            Err(_) => std::thread::sleep(Duration::from_millis(10 * u64::from(attempt))),
        }
    }
    Err(io::Error::from_raw_os_error(libc::EAGAIN))
}

impl Unreachable {
    /// Whether no socket file exists at any candidate path.
    pub fn is_missing(&self) -> bool {
        matches!(self, Unreachable::Missing(_))
    }

    /// The reason and the fix, for a podinit that exists (`sup`) but cannot be reached.
    pub fn explain(&self, sup: &Supervisor) -> String {
        let who = match sup {
            Supervisor::Found { pid, .. } => format!("podinit runs here as pid {pid}"),
            Supervisor::Unknown(why) => format!("a podinit may run here: {why}"),
            Supervisor::Absent => "no podinit process is visible here".into(),
        };
        let (reason, fix) = match self {
            Unreachable::Denied { path, owner } => {
                let uid = owner.or(match sup {
                    Supervisor::Found { uid, .. } => *uid,
                    _ => None,
                });
                let me = nix::unistd::geteuid();
                (
                    format!("permission denied at {} for uid {me}", path.display()),
                    format!(
                        "run the hook as root or as {}",
                        uid.map_or("podinit's uid".into(), |u| format!("podinit's uid {u}"))
                    ),
                )
            }
            Unreachable::Missing(paths) => match paths.as_slice() {
                [(path, false)] => {
                    let dir = path.parent().unwrap_or(Path::new("/")).display();
                    (
                        format!(
                            "no control socket: PODINIT_SOCKET={} is in a directory that does not exist ({dir})",
                            path.display()
                        ),
                        format!(
                            "create {dir} before podinit starts (in Kubernetes: mount an emptyDir there), or point \
                             PODINIT_SOCKET at a writable directory"
                        ),
                    )
                }
                _ => (
                    format!(
                        "no control socket at {}",
                        paths.iter().map(|(p, _)| p.display().to_string()).collect::<Vec<_>>().join(", ")
                    ),
                    "podinit runs without one: give it one by setting PODINIT_SOCKET to a path in a directory \
                     podinit can write, for podinit and for this hook alike"
                        .into(),
                ),
            },
            Unreachable::NotListening(path) => (
                format!("nothing answers at {} (connection refused)", path.display()),
                "podinit is ending, or the file is left from an earlier run: if no podinit runs, remove it".into(),
            ),
            Unreachable::Busy(path) => (
                format!(
                    "the control socket {} stayed busy (listen backlog full after {BUSY_TRIES} attempts)",
                    path.display()
                ),
                "try again".into(),
            ),
            Unreachable::Other(path, e) => {
                (format!("cannot connect to {}: {e}", path.display()), "check the socket path and its directory".into())
            }
        };
        format!("{reason} ({who}); {fix}")
    }

    /// The candidate paths, for "no running podinit (tried ...)".
    pub fn tried(&self) -> String {
        match self {
            Unreachable::Missing(paths) => {
                paths.iter().map(|(p, _)| p.display().to_string()).collect::<Vec<_>>().join(", ")
            }
            Unreachable::Denied { path, .. }
            | Unreachable::NotListening(path)
            | Unreachable::Busy(path)
            | Unreachable::Other(path, _) => path.display().to_string(),
        }
    }
}

/// Looks through /proc for a podinit that supervises this container.
pub fn supervisor() -> Supervisor {
    supervisor_in(Path::new("/proc"), std::process::id())
}

fn supervisor_in(proc: &Path, me: u32) -> Supervisor {
    let own_root = match std::fs::metadata(proc.join("self/root")) {
        Ok(m) => (m.dev(), m.ino()),
        Err(e) => return Supervisor::Unknown(format!("/proc cannot tell: {}: {e}", proc.join("self/root").display())),
    };
    let entries = match std::fs::read_dir(proc) {
        Ok(d) => d,
        Err(e) => return Supervisor::Unknown(format!("/proc cannot tell: {}: {e}", proc.display())),
    };
    let mut unknown = None;
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let dir = entry.path();
        let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else { continue }; // gone meanwhile
        if !runs_as_init(&cmdline) {
            continue;
        }
        match std::fs::metadata(dir.join("root")) {
            Ok(m) if (m.dev(), m.ino()) == own_root => {
                return Supervisor::Found { pid, uid: effective_uid(&dir) };
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => unknown = Some(format!("pid {pid} runs podinit, and its /proc/{pid}/root is unreadable: {e}")),
        }
    }
    unknown.map_or(Supervisor::Absent, Supervisor::Unknown)
}

/// Whether a NUL-separated argv is podinit run as init (not `pre-stop`,
/// `status`, `check`, `--help`, `--version` or a usage error).
fn runs_as_init(cmdline: &[u8]) -> bool {
    let mut argv = cmdline.split(|b| *b == 0);
    let Some(zero) = argv.next() else { return false };
    if Path::new(std::ffi::OsStr::from_bytes(zero)).file_name().is_none_or(|n| n != "podinit") {
        return false;
    }
    let mut args: Vec<OsString> = argv.map(|a| std::ffi::OsStr::from_bytes(a).to_os_string()).collect();
    if args.last().is_some_and(|a| a.is_empty()) {
        args.pop(); // the NUL that ends the last argument
    }
    matches!(crate::cli::parse(args, &|_: &str| None), Ok(i) if matches!(i.verb, crate::cli::Verb::Run(_)))
}

/// The effective uid in /proc/PID/status.
fn effective_uid(dir: &Path) -> Option<u32> {
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_podinit_as_init_is_a_supervisor() {
        let yes: [&[u8]; 4] = [
            b"/sbin/podinit\0--\0sleep\0inf\0",
            b"podinit\0-c\0/etc/podinit.toml\0",
            b"podinit\0",
            b"./target/debug/podinit\0-v\0--\0status\0",
        ];
        for argv in yes {
            assert!(runs_as_init(argv), "{}", String::from_utf8_lossy(argv));
        }
        let no: [&[u8]; 9] = [
            b"podinit\0pre-stop\0",
            b"/usr/bin/podinit\0-v\0status\0--json\0",
            b"podinit\0check\0-c\0x\0",
            b"podinit\0--help\0",
            b"podinit\0--version\0",
            b"podinit\0--bogus\0",
            b"sh\0-c\0podinit -- x\0",
            b"unshare\0--pid\0/bin/podinit\0--\0x\0",
            b"",
        ];
        for argv in no {
            assert!(!runs_as_init(argv), "{}", String::from_utf8_lossy(argv));
        }
    }

    #[test]
    fn a_full_backlog_is_busy_after_retries_not_an_endless_wait() {
        let path = std::env::temp_dir().join(format!("podinit-unit-backlog-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap(); // never accepts
        let mut held = Vec::new();
        let started = std::time::Instant::now();
        let err = loop {
            match connect_at(&path) {
                Ok(s) => held.push(s),
                Err(e) => break e,
            }
            assert!(held.len() < 100_000, "the backlog never filled");
        };
        assert_eq!(err.raw_os_error(), Some(libc::EAGAIN), "{err}");
        assert!(started.elapsed() >= Duration::from_secs(1), "gave up without retrying");
        let why = Unreachable::Busy(path.clone());
        assert!(why.explain(&Supervisor::Absent).contains("backlog full"));
        drop(listener);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn an_unreadable_proc_means_a_supervisor_may_exist() {
        let sup = supervisor_in(Path::new("/nonexistent-proc"), 1);
        assert!(matches!(sup, Supervisor::Unknown(_)), "{sup:?}");
    }

    #[test]
    fn this_test_runs_without_a_podinit_in_a_fake_proc() {
        // A /proc of one process: this one. The caller itself never counts.
        let dir = std::env::temp_dir().join(format!("podinit-unit-proc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("self")).unwrap();
        std::os::unix::fs::symlink("/", dir.join("self/root")).unwrap();
        std::fs::create_dir_all(dir.join("7")).unwrap();
        std::fs::write(dir.join("7/cmdline"), b"podinit\0pre-stop\0").unwrap();
        std::os::unix::fs::symlink("/", dir.join("7/root")).unwrap();
        assert_eq!(supervisor_in(&dir, 1), Supervisor::Absent);
        std::fs::write(dir.join("7/cmdline"), b"/podinit\0--\0sleep\0").unwrap();
        std::fs::write(dir.join("7/status"), "Name:\tpodinit\nUid:\t0\t1000\t0\t0\n").unwrap();
        assert_eq!(supervisor_in(&dir, 1), Supervisor::Found { pid: 7, uid: Some(1000) });
        assert_eq!(supervisor_in(&dir, 7), Supervisor::Absent, "the caller is not its own supervisor");
        std::fs::remove_file(dir.join("7/root")).unwrap();
        std::os::unix::fs::symlink(&dir, dir.join("7/root")).unwrap();
        assert_eq!(supervisor_in(&dir, 1), Supervisor::Absent, "another container's podinit (another root)");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
