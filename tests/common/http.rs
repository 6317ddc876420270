//! A tiny HTTP/1.1 server on 127.0.0.1 for tests: it records every request
//! and answers with the status a handler picks. Used as a health endpoint and
//! as an emulator of Eureka's REST calls (docs/lifecycle.md L19-L23), and, through
//! `Server::serve` (a handler that picks the whole answer), of Nacos's and
//! Consul's (`Nacos`, `Consul` below, L37, L38).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
    /// Wall-clock arrival, to compare with times a shell script records.
    pub wall: SystemTime,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What the server answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Status and body, with a Content-Length.
    Answer(u16, String),
    /// Status and body in `Transfer-Encoding: chunked`, as Tomcat sends JSON.
    Chunked(u16, String),
    /// Bytes that are not HTTP.
    Garbage,
    /// Nothing, for a minute.
    Hang,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Chunked(status, body.to_string())
    }
}

type Handler = dyn Fn(&Request, usize) -> Reply + Send + Sync;

pub struct Server {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    /// Serves until the test process ends; `handler(request, index)` picks the status.
    pub fn start(handler: impl Fn(&Request, usize) -> u16 + Send + Sync + 'static) -> Server {
        Server::serve(move |r, i| Reply::Answer(handler(r, i), String::new()))
    }

    /// Serves until the test process ends; `handler(request, index)` picks the answer.
    pub fn serve(handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let handler: Arc<Handler> = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let log = log.clone();
                let handler = handler.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or("").to_string();
                    let target = parts.next().unwrap_or("").to_string();
                    let mut headers = Vec::new();
                    let mut length = 0usize;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.trim_end().split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                            headers.push((k.to_string(), v.trim().to_string()));
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    let body = String::from_utf8_lossy(&body).into_owned();
                    let req = Request { method, target, headers, body, at: Instant::now(), wall: SystemTime::now() };
                    let index = {
                        let mut l = log.lock().unwrap();
                        l.push(req.clone());
                        l.len() - 1
                    };
                    let _ = match handler(&req, index) {
                        Reply::Answer(status, body) => write!(
                            stream,
                            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        Reply::Chunked(status, body) => {
                            let mut out = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
                            let cut = body.char_indices().nth(body.chars().count() / 2).map_or(0, |(i, _)| i);
                            for part in [&body[..cut], &body[cut..]] {
                                if !part.is_empty() {
                                    out += &format!("{:x}\r\n{part}\r\n", part.len());
                                }
                            }
                            stream.write_all((out + "0\r\n\r\n").as_bytes())
                        }
                        Reply::Garbage => stream.write_all(b"\x00\x01garbage\r\n\r\n"),
                        Reply::Hang => {
                            std::thread::sleep(std::time::Duration::from_secs(60));
                            Ok(())
                        }
                    };
                });
            }
        });
        Server { port, requests }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `a=1&b=x%20y` as pairs, percent-decoded.
pub fn form(text: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

impl Request {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn query(&self) -> Vec<(String, String)> {
        form(self.target.split_once('?').map_or("", |(_, q)| q))
    }

    pub fn param(&self, name: &str) -> Option<String> {
        self.query().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// One instance as the Nacos emulator holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub group: String,
    pub service: String,
    pub ip: String,
    pub port: u16,
    pub enabled: bool,
    pub weight: f64,
    pub metadata: String,
}

/// The Nacos emulator's state: which APIs it has, its users, and what it saw.
pub struct NacosState {
    /// Of "v1", "v2", "v3": the APIs this server has (v1 login comes with v1 or v2).
    pub apis: Vec<&'static str>,
    /// (username, password) when auth is on.
    pub auth: Option<(String, String)>,
    pub ttl: u64,
    /// Tokens accepted now (a test may clear them, as an expiry would).
    pub tokens: Vec<String>,
    pub logins: usize,
    pub instances: Vec<Instance>,
    /// When set, every instance request gets this answer (after the auth check).
    pub fault: Option<Reply>,
    /// Every way a request broke the protocol; a test asserts it stays empty.
    pub errors: Vec<String>,
}

/// A Nacos server at `http://127.0.0.1:{port}/nacos`, answering as the
/// server code does (v1 `InstanceController`, v2 `InstanceControllerV2`, v3
/// `InstanceControllerV3`, the login controllers): 404 (Spring's JSON, no
/// `code`) for an API it does not have, 403 for a missing or bad token, 400
/// for a missing parameter, 404 with Nacos's own answer for an unknown instance.
pub struct Nacos {
    pub server: Server,
    pub state: Arc<Mutex<NacosState>>,
}

impl Nacos {
    pub fn start(apis: &[&'static str], auth: Option<(&str, &str)>) -> Nacos {
        let state = Arc::new(Mutex::new(NacosState {
            apis: apis.to_vec(),
            auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
            ttl: 18000,
            tokens: Vec::new(),
            logins: 0,
            instances: vec![Instance {
                group: "DEFAULT_GROUP".into(),
                service: "orders".into(),
                ip: "10.0.0.7".into(),
                port: 8080,
                enabled: true,
                weight: 2.5,
                metadata: "{\"zone\":\"a\"}".into(),
            }],
            fault: None,
            errors: Vec::new(),
        }));
        let st = state.clone();
        let server = Server::serve(move |req, _| nacos_answer(&mut st.lock().unwrap(), req));
        Nacos { server, state }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}/nacos", self.server.port)
    }

    pub fn instance(&self) -> Instance {
        self.state.lock().unwrap().instances[0].clone()
    }

    pub fn errors(&self) -> Vec<String> {
        self.state.lock().unwrap().errors.clone()
    }
}

fn nacos_answer(st: &mut NacosState, req: &Request) -> Reply {
    let Some(path) = req.path().strip_prefix("/nacos") else {
        st.errors.push(format!("{} {}: not under the context path /nacos", req.method, req.target));
        return Reply::json(404, r#"{"status":404,"error":"Not Found"}"#);
    };
    let not_found = || {
        Reply::json(
            404,
            &format!(r#"{{"timestamp":"2025-01-01T00:00:00","status":404,"error":"Not Found","path":"/nacos{path}"}}"#),
        )
    };
    let has = |st: &NacosState, a: &str| st.apis.contains(&a);
    // Login.
    let login = match path {
        "/v1/auth/login" if has(st, "v1") || has(st, "v2") => true,
        "/v3/auth/user/login" if has(st, "v3") => true,
        "/v1/auth/login" | "/v3/auth/user/login" => return not_found(),
        _ => false,
    };
    if login {
        if req.method != "POST" {
            return Reply::json(405, r#"{"status":405,"error":"Method Not Allowed"}"#);
        }
        if !req.query().is_empty() {
            st.errors.push(format!("login with a query (credentials in a URL): {}", req.target));
        }
        if !req.header("content-type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")) {
            st.errors.push("login body is not a form".into());
        }
        let f = form(&req.body);
        let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        return match &st.auth {
            Some((u, p)) if get("username") == *u && get("password") == *p => {
                st.logins += 1;
                let token = format!("eyJhbGciOiJIUzI1NiJ9.tok{}", st.logins);
                st.tokens.push(token.clone());
                Reply::Answer(
                    200,
                    format!(r#"{{"accessToken":"{token}","tokenTtl":{},"globalAdmin":true,"username":"{u}"}}"#, st.ttl),
                )
            }
            _ => Reply::Answer(403, "unknown user!".into()),
        };
    }
    let api = match path {
        "/v1/ns/instance" => "v1",
        "/v2/ns/instance" => "v2",
        "/v3/admin/ns/instance" | "/v3/admin/ns/instance/partial" => "v3",
        _ => {
            st.errors.push(format!("unexpected path {path}"));
            return not_found();
        }
    };
    if !has(st, api) {
        // 3.x refuses the old admin APIs (ApiCompatibilityFilter) unless switched on.
        if has(st, "v3") {
            return Reply::json(
                410,
                r#"{"code":40000,"message":"Current API will be deprecated, please use API `PUT ${contextPath:nacos}/v3/admin/ns/instance/partial` instead","data":null}"#,
            );
        }
        return not_found();
    }
    let partial = path.ends_with("/partial");
    let method_ok = match (api, req.method.as_str()) {
        ("v3", "PUT") => true,
        ("v3", "DELETE" | "GET") => !partial,
        (_, "PUT" | "PATCH" | "DELETE" | "GET") => true,
        _ => false,
    };
    if !method_ok {
        return Reply::json(405, r#"{"status":405,"error":"Method Not Allowed"}"#);
    }
    // Auth: v1 and v2 take the token in the query, v3 in a header (L37).
    if st.auth.is_some() {
        let token = if api == "v3" { req.header("accessToken").map(str::to_string) } else { req.param("accessToken") };
        if api == "v3" && req.param("accessToken").is_some() {
            st.errors.push("v3 with the token in the query".into());
        }
        match token {
            Some(t) if st.tokens.contains(&t) => {}
            Some(_) => return Reply::Answer(403, "token invalid!".into()),
            None => return Reply::Answer(403, "user not found!".into()),
        }
    }
    if !req.body.is_empty() {
        st.errors.push(format!("{} {path} with a body: {}", req.method, req.body));
    }
    if let Some(fault) = st.fault.clone() {
        return fault;
    }
    let q = req.query();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let missing = |k: &str| {
        if api == "v1" {
            Reply::Answer(400, format!("Parameter '{k}' is missing"))
        } else {
            Reply::json(
                400,
                &format!(
                    r#"{{"code":10000,"message":"parameter missing","data":"Required parameter '{k}' is not present"}}"#
                ),
            )
        }
    };
    // v2's PATCH: `group@@service`, `cluster`, and weight, enabled, metadata all required.
    let v2_patch = api == "v2" && req.method == "PATCH";
    let required: &[&str] = if v2_patch {
        &["serviceName", "ip", "port", "weight", "enabled", "metadata"]
    } else {
        &["serviceName", "ip", "port"]
    };
    for k in required {
        if get(k).is_none() {
            st.errors.push(format!("{} {path}: no {k}", req.method));
            return missing(k);
        }
    }
    let name = get("serviceName").unwrap_or_default();
    let (group, service) = match name.split_once("@@") {
        Some((g, s)) => (g.to_string(), s.to_string()),
        None if v2_patch => {
            st.errors.push("v2 PATCH without group@@service".into());
            return Reply::json(
                400,
                r#"{"code":10001,"message":"parameter validate error","data":"Param 'serviceName' is illegal, it should be format as 'groupName@@serviceName'"}"#,
            );
        }
        None => (get("groupName").unwrap_or("DEFAULT_GROUP".into()), name.clone()),
    };
    if v2_patch && get("clusterName").is_some() {
        st.errors.push("v2 PATCH names the cluster `cluster`, not `clusterName`".into());
    }
    let ip = get("ip").unwrap_or_default();
    let port: u16 = get("port").and_then(|p| p.parse().ok()).unwrap_or(0);
    let pos =
        st.instances.iter().position(|i| i.group == group && i.service == service && i.ip == ip && i.port == port);
    let Some(pos) = pos else {
        return if api == "v1" {
            Reply::Answer(404, "caused: errCode: 404, errMsg: no matched ip found! ;".into())
        } else {
            Reply::json(404, r#"{"code":20004,"message":"resource not found","data":"no matched ip found!"}"#)
        };
    };
    let ok = |api: &str| {
        if api == "v1" {
            Reply::Answer(200, "ok".into())
        } else {
            Reply::json(200, r#"{"code":0,"message":"success","data":"ok"}"#)
        }
    };
    let enabled = get("enabled").map(|e| e == "true");
    let inst = &mut st.instances[pos];
    match req.method.as_str() {
        "GET" => {
            let i = inst.clone();
            Reply::json(
                200,
                &format!(
                    r#"{{"code":0,"message":"success","data":{{"serviceName":"{}","ip":"{}","port":{},"clusterName":"DEFAULT","weight":{},"healthy":true,"enabled":{},"metadata":{}}}}}"#,
                    i.service, i.ip, i.port, i.weight, i.enabled, i.metadata
                ),
            )
        }
        "DELETE" => {
            st.instances.remove(pos);
            ok(api)
        }
        "PATCH" => {
            if let Some(e) = enabled {
                inst.enabled = e;
            }
            if let Some(w) = get("weight").and_then(|w| w.parse().ok()) {
                inst.weight = w;
            }
            if v2_patch {
                Reply::Answer(200, "ok".into())
            } else {
                ok(api)
            }
        }
        _ if partial => {
            if let Some(e) = enabled {
                inst.enabled = e;
            }
            ok(api)
        }
        _ => {
            // A full update: weight and metadata not given are reset.
            inst.enabled = enabled.unwrap_or(true);
            inst.weight = get("weight").and_then(|w| w.parse().ok()).unwrap_or(1.0);
            inst.metadata = "{}".into();
            ok(api)
        }
    }
}

/// A Consul agent at `http://127.0.0.1:{port}` knowing the service `web-1`;
/// wants `token` in `X-Consul-Token` when one is set (403 otherwise, as with
/// ACLs on), 404 for a service it does not know.
pub struct Consul {
    pub server: Server,
    /// Service ids in maintenance.
    pub maintenance: Arc<Mutex<Vec<String>>>,
    pub errors: Arc<Mutex<Vec<String>>>,
}

impl Consul {
    pub fn start(token: Option<&str>, fault: Option<Reply>) -> Consul {
        let maintenance = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (m, e, token) = (maintenance.clone(), errors.clone(), token.map(str::to_string));
        let known = Arc::new(Mutex::new(vec!["web-1".to_string()]));
        let server = Server::serve(move |req, _| {
            let err = |what: String| e.lock().unwrap().push(what);
            if req.method != "PUT" {
                err(format!("{} {}: the agent API wants PUT", req.method, req.target));
                return Reply::Answer(405, "method not allowed".into());
            }
            if let Some(t) = &token {
                if req.header("X-Consul-Token") != Some(t.as_str()) {
                    return Reply::Answer(
                        403,
                        "Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'service:write' on \"web-1\"".into(),
                    );
                }
            }
            if let Some(f) = &fault {
                return f.clone();
            }
            let path = req.path().to_string();
            if let Some(id) = path.strip_prefix("/v1/agent/service/maintenance/") {
                if !known.lock().unwrap().iter().any(|k| k == id) {
                    return Reply::Answer(404, format!("Unknown service ID \"{id}\""));
                }
                let mut m = m.lock().unwrap();
                match req.param("enable").as_deref() {
                    Some("true") => {
                        if req.param("reason").is_none() {
                            err("maintenance without a reason".into());
                        }
                        m.push(id.to_string())
                    }
                    Some("false") => m.retain(|x| x != id),
                    _ => {
                        err(format!("bad enable in {}", req.target));
                        return Reply::Answer(400, "Missing value for enable".into());
                    }
                }
                Reply::Answer(200, String::new())
            } else if let Some(id) = path.strip_prefix("/v1/agent/service/deregister/") {
                let mut k = known.lock().unwrap();
                if !k.iter().any(|x| x == id) {
                    return Reply::Answer(404, format!("Unknown service ID \"{id}\""));
                }
                k.retain(|x| x != id);
                Reply::Answer(200, String::new())
            } else {
                err(format!("unexpected path {path}"));
                Reply::Answer(404, "404 page not found".into())
            }
        });
        Consul { server, maintenance, errors }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port)
    }
}
