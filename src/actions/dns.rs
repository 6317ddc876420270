//! `dns = "name"`: succeeds when the name resolves (the seed's
//! `until nslookup myservice; do sleep 2; done`).

use super::Outcome;
use std::net::ToSocketAddrs;

pub fn run(name: &str) -> Outcome {
    match (name, 0).to_socket_addrs() {
        Ok(mut addrs) => match addrs.next() {
            Some(a) => Outcome::Success(format!("dns {name}: {}", a.ip())),
            None => Outcome::failed(format!("dns {name}: no address")),
        },
        Err(e) => Outcome::failed(format!("dns {name}: {e}")),
    }
}
