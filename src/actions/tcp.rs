//! `tcp = "host:port"`: succeeds when a connection opens.

use super::Outcome;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

pub fn run(addr: &str, limit: Duration) -> Outcome {
    let deadline = Instant::now() + limit;
    let addrs = match addr.to_socket_addrs() {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => return Outcome::failed(format!("tcp {addr}: cannot resolve: {e}")),
    };
    let mut last = format!("tcp {addr}: no address");
    for a in addrs {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        match TcpStream::connect_timeout(&a, left) {
            Ok(_) => return Outcome::Success(format!("tcp {addr}: connected to {a}")),
            Err(e) => last = format!("tcp {addr}: {a}: {e}"),
        }
    }
    Outcome::failed(last)
}
