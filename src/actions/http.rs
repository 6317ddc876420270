//! `http = { url, method, headers, body }`: succeeds on a response with a
//! status below 400. User-info in the URL is sent as Basic auth; the printed
//! URL never carries it.

use super::{Http, Outcome};
use crate::url::Url;
use std::time::Duration;

/// Sends one request; returns the status code or a transport error (credentials masked).
pub fn request(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: &str,
    limit: Duration,
) -> Result<u16, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(limit))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut req = ureq::http::Request::builder().method(method).uri(url.bare.as_str());
    if let Some(auth) = url.basic_auth() {
        req = req.header("Authorization", auth);
    }
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req.body(body.as_bytes().to_vec()).map_err(|e| crate::url::redact(&e.to_string()))?;
    match agent.run(req) {
        Ok(resp) => Ok(resp.status().as_u16()),
        Err(e) => Err(crate::url::redact(&e.to_string())),
    }
}

pub fn run(h: &Http, limit: Duration) -> Outcome {
    let what = format!("http {} {}", h.method, h.url.shown());
    match request(&h.method, &h.url, &h.headers, &h.body, limit) {
        Ok(code) if code < 400 => Outcome::Success(format!("{what}: {code}")),
        Ok(code) => Outcome::failed(format!("{what}: {code} {}", reason(code))),
        Err(e) => Outcome::failed(format!("{what}: {e}")),
    }
}

/// The standard reason phrase for the codes a registry or app answers most.
pub fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}
