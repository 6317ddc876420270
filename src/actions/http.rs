//! `http = { url, method, headers, body }`: succeeds on a response with a
//! status below 400. User-info in the URL is sent as Basic auth; the printed
//! URL never carries it. `exchange` also returns the answer's body, for
//! the registry actions that must read a JSON answer.

use super::{Http, Outcome};
use crate::url::Url;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Sends one request; returns the status code or a transport error (credentials masked).
/// Plain http uses the small client below; https (the `https` feature) uses ureq with rustls.
pub fn request(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: &str,
    limit: Duration,
) -> Result<u16, String> {
    send(method, url, headers, body, limit, false).map(|(code, _)| code)
}

/// Like `request`, and also reads the answer's body (up to `MAX_BODY`
/// bytes, de-chunked): what a registry's JSON answer needs.
pub fn exchange(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: &str,
    limit: Duration,
) -> Result<(u16, String), String> {
    send(method, url, headers, body, limit, true)
}

const MAX_BODY: usize = 64 * 1024;

fn send(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: &str,
    limit: Duration,
    want_body: bool,
) -> Result<(u16, String), String> {
    #[cfg(feature = "https")]
    if url.bare.starts_with("https://") {
        return tls_request(method, url, headers, body, limit, want_body);
    }
    plain_request(method, url, headers, body, limit, want_body).map_err(|e| crate::url::redact(&e))
}

/// HTTP/1.1 over one TCP connection, `Connection: close`, everything within
/// `limit`: all podinit needs is the status line.
fn plain_request(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: &str,
    limit: Duration,
    want_body: bool,
) -> Result<(u16, String), String> {
    let deadline = Instant::now() + limit;
    let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    let rest = url.bare.strip_prefix("http://").ok_or("only http:// URLs are supported")?;
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = if path.is_empty() {
        "/".to_string()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && p.chars().all(|c| c.is_ascii_digit()) => {
            (h.trim_matches(['[', ']']), p.parse::<u16>().map_err(|_| "bad port")?)
        }
        _ => (authority.trim_matches(['[', ']']), 80),
    };
    let addrs = (host, port).to_socket_addrs().map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last = format!("{host}: no address");
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, left()) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("connect {a}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last)?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: podinit/{}\r\nConnection: close\r\nContent-Length: {}\r\n", env!("CARGO_PKG_VERSION"), body.len());
    if let Some(auth) = url_auth(url, headers) {
        req += &format!("Authorization: {auth}\r\n");
    }
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    req += body;
    let io = |e: std::io::Error| {
        if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
            format!("no answer within {}", crate::duration::show(limit))
        } else {
            e.to_string()
        }
    };
    stream.set_write_timeout(Some(left())).map_err(io)?;
    stream.write_all(req.as_bytes()).map_err(io)?;
    // The status line: `HTTP/1.1 200 OK`.
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        stream.set_read_timeout(Some(left())).map_err(io)?;
        match stream.read(&mut byte).map_err(io)? {
            0 => break,
            _ => line.push(byte[0]),
        }
        if line.len() > 1024 || Instant::now() >= deadline {
            break;
        }
    }
    let text = String::from_utf8_lossy(&line);
    let mut parts = text.split_whitespace();
    match (parts.next(), parts.next().and_then(|c| c.parse::<u16>().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") && (100..600).contains(&code) => {
            // Read the headers too (bounded), so the server is not reset mid-answer.
            let mut tail = Vec::new();
            while tail != b"\r\n"
                && !tail.ends_with(b"\r\n\r\n")
                && !tail.ends_with(b"\n\n")
                && tail.len() < 8192
                && Instant::now() < deadline
            {
                if stream.set_read_timeout(Some(left())).is_err() || !matches!(stream.read(&mut byte), Ok(1)) {
                    break;
                }
                tail.push(byte[0]);
            }
            if !want_body {
                return Ok((code, String::new()));
            }
            let head = String::from_utf8_lossy(&tail).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(MAX_BODY)
                .min(MAX_BODY);
            let mut content = Vec::new();
            let mut chunk = [0u8; 4096];
            while content.len() < length && Instant::now() < deadline {
                if stream.set_read_timeout(Some(left())).is_err() {
                    break;
                }
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => content.extend_from_slice(&chunk[..n]),
                }
            }
            if head.contains("transfer-encoding: chunked") {
                content = dechunk(&content);
            }
            Ok((code, String::from_utf8_lossy(&content).into_owned()))
        }
        _ if line.is_empty() => Err("the server closed the connection without an answer".into()),
        _ => Err(format!("not an HTTP answer: {:?}", text.chars().take(40).collect::<String>())),
    }
}

/// The data of a `Transfer-Encoding: chunked` body (as much as is whole).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&raw[..eol]);
        let size = size.split(';').next().unwrap_or("").trim();
        let Ok(n) = usize::from_str_radix(size, 16) else { break };
        let start = eol + 2;
        if n == 0 || start + n > raw.len() {
            out.extend_from_slice(&raw[start.min(raw.len())..(start + n).min(raw.len())]);
            break;
        }
        out.extend_from_slice(&raw[start..start + n]);
        raw = raw.get(start + n + 2..).unwrap_or_default();
    }
    out
}

#[cfg(feature = "https")]
fn tls_request(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: &str,
    limit: Duration,
    want_body: bool,
) -> Result<(u16, String), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(limit))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut req = ureq::http::Request::builder().method(method).uri(url.bare.as_str());
    if let Some(auth) = url_auth(url, headers) {
        req = req.header("Authorization", auth);
    }
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req.body(body.as_bytes().to_vec()).map_err(|e| crate::url::redact(&e.to_string()))?;
    let mut answer = agent.run(req).map_err(|e| crate::url::redact(&e.to_string()))?;
    let code = answer.status().as_u16();
    let text = if want_body {
        answer.body_mut().with_config().limit(MAX_BODY as u64).read_to_string().unwrap_or_default()
    } else {
        String::new()
    };
    Ok((code, text))
}

/// Basic auth from the URL's user-info, unless `headers` name an Authorization
/// of their own, which wins: two Authorization headers are not valid HTTP.
fn url_auth(url: &Url, headers: &[(String, String)]) -> Option<String> {
    url.basic_auth().filter(|_| !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization")))
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
        410 => "Gone",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}
