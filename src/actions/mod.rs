//! Actions: the one vocabulary shared by init steps, hooks and probes
//! (docs/config.md "Actions"). `exec` runs as a child of the supervisor (it alone
//! reaps), `sleep` is a deadline in the supervisor's poll, and the kinds that
//! do blocking network I/O (`http`, `tcp`, `dns`, `eureka`) run on a worker
//! thread through `run_blocking`.
//!
//! The registry kinds (`eureka`, `nacos`, `consul`) take an instance out of
//! its registry; `Kind::restore` is the action that puts it back (L39).

mod consul;
mod dns;
mod eureka;
mod http;
mod nacos;
mod tcp;

use crate::duration;
use crate::url::Url;
use std::time::Duration;

/// Which list an action stands in; decides which kinds are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Init,
    PostStart,
    PreStop,
    Probe,
}

impl Section {
    pub fn key(self) -> &'static str {
        match self {
            Section::Init => "init",
            Section::PostStart => "post_start",
            Section::PreStop => "pre_stop",
            Section::Probe => "probe",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Http {
    pub url: Url,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Eureka {
    pub urls: Vec<Url>,
    pub app: String,
    pub instance: String,
    pub status: String,
    /// The restore (L39): `DELETE .../status?value=UP` instead of the override.
    pub undo: bool,
}

/// Which Nacos HTTP API a `nacos` action speaks (docs/lifecycle.md L37).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NacosApi {
    Auto,
    V1,
    V2,
    V3,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Nacos {
    /// The server's base including its context path: `http://nacos:8848/nacos`.
    pub url: Url,
    pub service: String,
    pub ip: String,
    pub port: u16,
    pub group: String,
    pub namespace: String,
    pub cluster: String,
    pub ephemeral: bool,
    /// Empty when the server runs without auth.
    pub username: String,
    pub password: String,
    pub api: NacosApi,
    /// `mode = "deregister"`: DELETE instead of `enabled=false`.
    pub deregister: bool,
    /// The restore: `enabled=true`.
    pub undo: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Consul {
    /// The agent the service registered with: `http://127.0.0.1:8500`.
    pub url: Url,
    pub service_id: String,
    pub token: String,
    /// Read (and trimmed) when the action runs; wins over `token`.
    pub token_file: String,
    /// `mode = "deregister"` instead of maintenance.
    pub deregister: bool,
    pub reason: String,
    /// The restore: `enable=false`.
    pub undo: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Exec(Vec<String>),
    Http(Http),
    Tcp(String),
    Dns(String),
    Sleep(Duration),
    Eureka(Eureka),
    Nacos(Nacos),
    Consul(Consul),
}

impl Kind {
    pub fn word(&self) -> &'static str {
        match self {
            Kind::Exec(_) => "exec",
            Kind::Http(_) => "http",
            Kind::Tcp(_) => "tcp",
            Kind::Dns(_) => "dns",
            Kind::Sleep(_) => "sleep",
            Kind::Eureka(_) => "eureka",
            Kind::Nacos(_) => "nacos",
            Kind::Consul(_) => "consul",
        }
    }

    /// Whether this kind may stand in `section` (docs/config.md "Actions" table).
    pub fn allowed_in(&self, section: Section) -> bool {
        match self {
            Kind::Exec(_) | Kind::Http(_) => true,
            Kind::Tcp(_) => matches!(section, Section::Init | Section::Probe),
            Kind::Dns(_) => section == Section::Init,
            Kind::Sleep(_) => section != Section::Probe,
            Kind::Eureka(_) | Kind::Nacos(_) | Kind::Consul(_) => section != Section::Probe,
        }
    }

    /// One line for the plan and for events; credentials masked.
    pub fn describe(&self) -> String {
        match self {
            Kind::Exec(argv) => format!("exec {}", argv.join(" ")),
            Kind::Http(h) => {
                let mut s = format!("http {} {}", h.method, h.url.shown());
                for (k, v) in &h.headers {
                    s += &format!(" [{k}: {}]", if is_secret_header(k) { "***" } else { v });
                }
                s
            }
            Kind::Tcp(a) => format!("tcp {a}"),
            Kind::Dns(n) => format!("dns {n}"),
            Kind::Sleep(d) => format!("sleep {}", duration::show(*d)),
            Kind::Eureka(e) => format!(
                "eureka {} {{{}}}{}",
                if e.undo { "DELETE" } else { "PUT" },
                e.urls.iter().map(Url::shown).collect::<Vec<_>>().join(" | "),
                eureka::path(e)
            ),
            Kind::Nacos(n) => nacos::describe(n),
            Kind::Consul(c) => {
                let (method, path) = consul::request(c);
                format!(
                    "consul {method} {}{path}{}",
                    c.url.shown(),
                    if consul_token(c) { " [X-Consul-Token: ***]" } else { "" }
                )
            }
        }
    }

    /// The action that undoes this one when the main process is restarted in
    /// place (L39): Eureka `DELETE .../status?value=UP`, Nacos `enabled=true`,
    /// Consul `enable=false`. None for other kinds and for a deregistration
    /// (the application registers itself again).
    pub fn restore(&self) -> Option<Kind> {
        match self {
            Kind::Eureka(e) if !e.undo => Some(Kind::Eureka(Eureka { undo: true, ..e.clone() })),
            Kind::Nacos(n) if !n.undo && !n.deregister => Some(Kind::Nacos(Nacos { undo: true, ..n.clone() })),
            Kind::Consul(c) if !c.undo && !c.deregister => Some(Kind::Consul(Consul { undo: true, ..c.clone() })),
            _ => None,
        }
    }
}

fn consul_token(c: &Consul) -> bool {
    !c.token.is_empty() || !c.token_file.is_empty()
}

/// Header values that must never be printed.
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("authorization") || n.contains("token") || n.contains("secret") || n.contains("key") || n == "cookie"
}

#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub name: String,
    pub kind: Kind,
    /// Limit for one run of the action (default: none, like the kubelet's hooks).
    pub timeout: Option<Duration>,
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success(String),
    /// `code` is the exit status an init step passes on: the exec's own, else 1.
    Failure {
        code: i32,
        message: String,
    },
}

impl Outcome {
    pub fn failed(message: impl Into<String>) -> Outcome {
        Outcome::Failure { code: 1, message: message.into() }
    }
}

/// An outcome's message without a leading `name: ` (the default name of a tcp
/// or dns action is its description), for lines that name the action already.
pub fn detail<'m>(name: &str, message: &'m str) -> &'m str {
    message.strip_prefix(name).and_then(|m| m.strip_prefix(": ")).unwrap_or(message)
}

/// How long a network attempt may take when the action sets no timeout.
pub const DEFAULT_ATTEMPT: Duration = Duration::from_secs(10);

/// Runs a network kind to completion on the calling (worker) thread.
pub fn run_blocking(kind: &Kind, limit: Duration) -> Outcome {
    match kind {
        Kind::Http(h) => http::run(h, limit),
        Kind::Tcp(addr) => tcp::run(addr, limit),
        Kind::Dns(name) => dns::run(name),
        Kind::Eureka(e) => eureka::run(e, limit),
        Kind::Nacos(n) => nacos::run(n, limit),
        Kind::Consul(c) => consul::run(c, limit),
        Kind::Exec(_) | Kind::Sleep(_) => Outcome::failed("internal: not a blocking action"),
    }
}
