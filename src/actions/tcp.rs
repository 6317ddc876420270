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
            // The resolved address only when it says more than `addr` (a name, not an IP).
            Ok(_) if a.to_string() == addr => return Outcome::Success(format!("tcp {addr}: connected")),
            Ok(_) => return Outcome::Success(format!("tcp {addr}: connected to {a}")),
            Err(e) if a.to_string() == addr => last = format!("tcp {addr}: {e}"),
            Err(e) => last = format!("tcp {addr}: {a}: {e}"),
        }
    }
    Outcome::failed(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_address_is_named_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        assert_eq!(run(&addr, Duration::from_secs(5)), Outcome::Success(format!("tcp {addr}: connected")));
        drop(listener);
        let Outcome::Failure { message, .. } = run(&addr, Duration::from_secs(5)) else { panic!("connected") };
        assert_eq!(message.matches(addr.as_str()).count(), 1, "{message}");
        let port = addr.rsplit_once(':').unwrap().1;
        let named = format!("localhost:{port}");
        let Outcome::Failure { message, .. } = run(&named, Duration::from_secs(5)) else { panic!("connected") };
        assert!(message.starts_with(&format!("tcp {named}: ")) && message.contains(port), "{message}");
    }
}
