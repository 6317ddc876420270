//! The control socket (docs/lifecycle.md B11, B12): a Unix socket that lets
//! `podinit pre-stop` and `podinit status` reach the running podinit.
//!
//! Server side: the supervisor polls the listener; each accepted peer is
//! checked with SO_PEERCRED (podinit's own uid or root only), then handed to
//! a short-lived thread that reads one request line (bounded in size and
//! time, so a silent client blocks nothing) and passes it to the supervisor
//! through a channel plus a byte on the wake-up socket. The supervisor
//! answers through the reply channel; the thread writes the answer. When
//! MAX_CLIENTS threads are busy, the client that has waited longest without
//! sending its request is dropped to make room, so clients that connect and
//! stall cannot lock `podinit status` and `podinit pre-stop` out.
//!
//! Protocol: the client sends `pre-stop\n` or `status\n`; the server answers
//! one line `ok <text>` / `fail <text>` (pre-stop) or the status JSON, then closes.
//! Connecting (and saying why a connect failed) is src/client.rs.

use nix::sys::socket::{self, MsgFlags};
use nix::sys::stat::{umask, Mode};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest request line accepted.
const MAX_REQUEST: u64 = 64;
/// How long a client may take to send its request.
const REQUEST_TIME: Duration = Duration::from_secs(5);
/// Most clients served at once; beyond, the longest silent one is dropped, or
/// the newcomer is refused when every client already sent its request.
const MAX_CLIENTS: usize = 32;

/// What a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    PreStop,
    Status,
}

/// A request waiting for the supervisor's answer.
pub struct Request {
    pub ask: Ask,
    pub reply: mpsc::Sender<String>,
}

/// Where the socket lives: `$PODINIT_SOCKET`, else the first writable of
/// /run/podinit.sock and /tmp/podinit.sock.
pub fn candidates() -> Vec<PathBuf> {
    match std::env::var_os("PODINIT_SOCKET").filter(|p| !p.is_empty()) {
        Some(p) => vec![PathBuf::from(p)],
        None => vec![PathBuf::from("/run/podinit.sock"), PathBuf::from("/tmp/podinit.sock")],
    }
}

pub struct Server {
    listener: UnixListener,
    pub path: PathBuf,
    requests: mpsc::Sender<Request>,
    clients: Arc<AtomicUsize>,
    /// Clients whose request line has not arrived yet: (id, since, stream).
    reading: Arc<Mutex<Vec<(u64, Instant, UnixStream)>>>,
    next_id: AtomicU64,
    wake: UnixStream,
}

impl Server {
    /// Binds the first usable candidate; a stale socket (nobody answering) is
    /// replaced, a live one (another podinit) is left alone.
    pub fn bind(wake: UnixStream, requests: mpsc::Sender<Request>) -> Result<Server, String> {
        let mut errors = Vec::new();
        for path in candidates() {
            match bind_at(&path) {
                Ok(listener) => {
                    return Ok(Server {
                        listener,
                        path,
                        requests,
                        clients: Arc::new(AtomicUsize::new(0)),
                        reading: Arc::new(Mutex::new(Vec::new())),
                        next_id: AtomicU64::new(0),
                        wake,
                    });
                }
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            }
        }
        Err(errors.join("; "))
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Accepts every waiting client (called when the listener is readable).
    pub fn accept(&self) {
        while let Ok((stream, _)) = self.listener.accept() {
            match peer_uid(&stream) {
                Ok(uid) if uid == 0 || uid == nix::unistd::geteuid().as_raw() => {}
                Ok(uid) => {
                    log::warn!("control socket: refused a client with uid {uid} (only root or podinit's own uid)");
                    let _ = (&stream)
                        .write_all(b"fail permission denied: only root or podinit's own user may control podinit\n");
                    continue;
                }
                Err(e) => {
                    log::warn!("control socket: cannot identify a client ({e}): refused");
                    continue;
                }
            }
            if self.clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS && !self.drop_longest_silent() {
                self.clients.fetch_sub(1, Ordering::SeqCst);
                log::warn!("control socket: too many clients at once, one refused");
                continue;
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if let (Ok(copy), Ok(mut reading)) = (stream.try_clone(), self.reading.lock()) {
                reading.push((id, Instant::now(), copy));
            }
            let (tx, clients, reading) = (self.requests.clone(), self.clients.clone(), self.reading.clone());
            let wake = self.wake.try_clone();
            let spawned = std::thread::Builder::new().name("podinit-control".into()).spawn(move || {
                serve(stream, tx, wake.ok(), || {
                    if let Ok(mut r) = reading.lock() {
                        r.retain(|(i, _, _)| *i != id);
                    }
                });
                clients.fetch_sub(1, Ordering::SeqCst);
            });
            if spawned.is_err() {
                self.clients.fetch_sub(1, Ordering::SeqCst);
                if let Ok(mut r) = self.reading.lock() {
                    r.retain(|(i, _, _)| *i != id);
                }
            }
        }
    }
}

impl Server {
    /// Ends the read of the client that has waited longest without sending a
    /// request (its thread then finishes at once); false when there is none.
    fn drop_longest_silent(&self) -> bool {
        let Ok(mut reading) = self.reading.lock() else { return false };
        // A client whose request is already in the socket is not silent, only not read yet.
        let silent = |s: &UnixStream| {
            let mut byte = [0u8];
            // MSG_PEEK leaves the byte for the reader.
            let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
            !matches!(socket::recv(s.as_raw_fd(), &mut byte, flags), Ok(n) if n > 0)
        };
        let oldest = reading
            .iter()
            .enumerate()
            .filter(|(_, (_, _, s))| silent(s))
            .min_by_key(|(_, (_, since, _))| *since)
            .map(|(i, _)| i);
        let Some(oldest) = oldest else {
            return false;
        };
        let (_, _, stream) = reading.remove(oldest);
        let _ = stream.shutdown(std::net::Shutdown::Both);
        log::debug!("control socket: too many clients at once, dropped the one silent the longest");
        true
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn bind_at(path: &Path) -> io::Result<UnixListener> {
    if path.exists() {
        match UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(io::ErrorKind::AddrInUse, "another podinit is listening there"));
            }
            Err(_) => std::fs::remove_file(path)?, // stale, from an earlier run
        }
    }
    // Created 0600 from the start: no window in which others could connect.
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    umask(old);
    let listener = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    Ok(socket::getsockopt(stream, socket::sockopt::PeerCredentials)?.uid())
}

/// One client: read its request line, hand it over, write the answer.
/// `read_done` runs once the request line is in (or never will be).
fn serve(stream: UnixStream, requests: mpsc::Sender<Request>, wake: Option<UnixStream>, read_done: impl FnOnce()) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(REQUEST_TIME));
    let mut raw = Vec::new();
    let read = BufReader::new((&stream).take(MAX_REQUEST)).read_until(b'\n', &mut raw);
    read_done();
    let line = String::from_utf8_lossy(&raw);
    let ask = match (read, line.trim()) {
        (Ok(_), "pre-stop") => Ask::PreStop,
        (Ok(_), "status") => Ask::Status,
        (Err(e), _) => {
            log::debug!("control socket: client sent nothing usable: {e}");
            let _ = (&stream).write_all(b"fail no request received in time\n");
            return;
        }
        (Ok(_), "") => {
            log::debug!("control socket: a client closed without a request");
            return;
        }
        (Ok(_), other) => {
            let shown: String = other.chars().take(32).filter(|c| !c.is_control()).collect();
            log::warn!("control socket: unknown request '{shown}'");
            let _ = (&stream).write_all(b"fail unknown request: send pre-stop or status\n");
            return;
        }
    };
    let (reply, answer) = mpsc::channel();
    if requests.send(Request { ask, reply }).is_err() {
        return;
    }
    if let Some(mut w) = wake {
        let _ = w.write(&[1]);
    }
    if let Ok(text) = answer.recv() {
        let _ = (&stream).write_all(text.as_bytes());
        let _ = (&stream).write_all(b"\n");
    }
}

/// Sends `ask` and returns the whole answer. A server that closes without a
/// word was too busy (see `Server::accept`): asked again a few times, shortly
/// after (both requests are safe to repeat: `pre-stop` twice waits for the same run).
pub fn call(stream: UnixStream, ask: Ask) -> io::Result<String> {
    let path = stream.peer_addr().ok().and_then(|a| a.as_pathname().map(Path::to_path_buf));
    let mut answer = call_once(stream, ask);
    let dropped = |a: &io::Result<String>| match a {
        Ok(text) => text.is_empty(),
        Err(e) => matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe),
    };
    for attempt in 1..=10u64 {
        match &path {
            Some(path) if dropped(&answer) => {
                std::thread::sleep(Duration::from_millis(20 * attempt));
                match UnixStream::connect(path) {
                    Ok(s) => answer = call_once(s, ask),
                    Err(_) => break,
                }
            }
            _ => break,
        }
    }
    answer
}

fn call_once(mut stream: UnixStream, ask: Ask) -> io::Result<String> {
    let line: &[u8] = match ask {
        Ask::PreStop => b"pre-stop\n",
        Ask::Status => b"status\n",
    };
    // A server that refuses us answers and closes at once: the write may then
    // fail, and the read end in a reset, while the answer still counts.
    let wrote = stream.write_all(line);
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if answer.is_empty() => return Err(wrote.err().unwrap_or(e)),
            Err(_) => break,
        }
    }
    if answer.is_empty() {
        wrote?;
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}
