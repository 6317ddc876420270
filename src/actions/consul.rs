//! `consul = { url, service_id, token, token_file, mode, reason }` (docs/lifecycle.md
//! L38): maintenance mode `PUT /v1/agent/service/maintenance/{id}?enable=true&reason=...`
//! (a critical check: the service leaves DNS and health-filtered lists) or
//! `PUT /v1/agent/service/deregister/{id}`; the restore (L39) is
//! `enable=false`. The ACL token goes in `X-Consul-Token`, read from
//! `token_file` when the action runs, and is never printed.

use super::http::{exchange, reason};
use super::{Consul, Outcome};
use crate::url::encode;
use std::time::Duration;

/// The method and path (with query) the action sends.
pub fn request(c: &Consul) -> (&'static str, String) {
    let id = encode(&c.service_id);
    let path = match (c.deregister, c.undo) {
        (true, _) => format!("/v1/agent/service/deregister/{id}"),
        (false, false) => format!("/v1/agent/service/maintenance/{id}?enable=true&reason={}", encode(&c.reason)),
        (false, true) => format!("/v1/agent/service/maintenance/{id}?enable=false"),
    };
    ("PUT", path)
}

pub fn run(c: &Consul, limit: Duration) -> Outcome {
    let (method, path) = request(c);
    let url = c.url.join(&path);
    let what = format!("consul {method} {}", url.shown());
    let token = if c.token_file.is_empty() {
        c.token.clone()
    } else {
        match std::fs::read_to_string(&c.token_file) {
            Ok(t) => t.trim().to_string(),
            Err(e) => return Outcome::failed(format!("{what}: cannot read token_file {}: {e}", c.token_file)),
        }
    };
    let headers: Vec<(String, String)> = if token.is_empty() { vec![] } else { vec![("X-Consul-Token".into(), token)] };
    let (code, body) = match exchange(method, &url, &headers, "", limit) {
        Ok(answer) => answer,
        Err(e) => return Outcome::failed(format!("{what}: {e}")),
    };
    let said = one_line(&body);
    let missing = code == 404 || said.contains("does not exist") || said.contains("Unknown service");
    match code {
        200 => Outcome::Success(format!("{what}: 200 OK")),
        _ if missing && c.undo => Outcome::Success(format!("{what}: {code} {said} (nothing to undo)")),
        _ if missing => Outcome::failed(format!(
            "{what}: {code} {said}: the agent at {} does not know service id '{}': check that url is the agent the service registered with (usually the node's, $HOST_IP:8500) and the id",
            c.url.shown(),
            c.service_id
        )),
        403 => Outcome::failed(format!(
            "{what}: 403 {said}: {}",
            if headers.is_empty() {
                "no token was sent: set token or token_file to one with service:write on the service".to_string()
            } else {
                format!("check that the token has service:write on '{}'", c.service_id)
            }
        )),
        _ => Outcome::failed(format!("{what}: {code} {} {said}", reason(code)).trim_end().to_string()),
    }
}

/// The first line of an answer, bounded, for an error message (secrets masked).
pub fn one_line(body: &str) -> String {
    let line = body.trim().lines().next().unwrap_or("").trim();
    let cut: String = line.chars().take(200).collect();
    crate::url::redact(&cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url::Url;

    fn consul(deregister: bool, undo: bool) -> Consul {
        Consul {
            url: Url::parse("http://10.0.0.5:8500").unwrap(),
            service_id: "web 1".into(),
            token: "t0k".into(),
            token_file: String::new(),
            deregister,
            reason: "podinit preStop".into(),
            undo,
        }
    }

    #[test]
    fn requests_and_restore() {
        assert_eq!(
            request(&consul(false, false)).1,
            "/v1/agent/service/maintenance/web%201?enable=true&reason=podinit%20preStop"
        );
        assert_eq!(request(&consul(true, false)).1, "/v1/agent/service/deregister/web%201");
        let undo = super::super::Kind::Consul(consul(false, false)).restore().unwrap();
        let super::super::Kind::Consul(u) = &undo else { panic!() };
        assert_eq!(request(u), ("PUT", "/v1/agent/service/maintenance/web%201?enable=false".to_string()));
        assert!(super::super::Kind::Consul(consul(true, false)).restore().is_none());
        assert!(!undo.describe().contains("t0k"), "{}", undo.describe());
    }
}
