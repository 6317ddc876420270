//! `nacos = { url, service, ip, port, group, namespace, cluster, ephemeral,
//! username, password, api, mode }` (docs/lifecycle.md L37): takes an instance out
//! of Nacos with `enabled=false` by a partial update (a full update resets
//! weight and metadata) or deregisters it; the restore (L39) is `enabled=true`.
//!
//! What each API is, as the Nacos server code has it:
//! - v1 `{base}/v1/ns/instance`: parameters from the query (`getParameter`),
//!   `PATCH` is the partial update; the answer is the text `ok`.
//! - v2 `{base}/v2/ns/instance` (2.2+): answers `{"code":0,...}`. Its `PATCH`
//!   requires `weight` and `metadata` and a `group@@service` name, so the
//!   instance's weight is read first (`GET`, the detail) and sent back unchanged.
//! - v3 `{base}/v3/admin/ns/instance/partial` (3.x, `PUT`); 3.x answers 410 to
//!   the old admin APIs unless their compatibility switch is on.
//!
//! With `username`, the action logs in (`POST {base}/v1/auth/login`, or
//! `/v3/auth/user/login` for v3), keeps the token for 90 % of its `tokenTtl`
//! (process-wide, so two actions log in once) and logs in again once on a 403.
//! v1 and v2 carry it as `accessToken=` in the query, v3 as an `accessToken`
//! header. `api = "auto"` tries v3, v2, v1, moving on only on 404 (not one of
//! Nacos's own JSON answers), 405 or 410, and remembers what answered.

use super::consul::one_line;
use super::http::{exchange, reason};
use super::{Nacos, NacosApi, Outcome};
use crate::url::encode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The API that answered at each base URL (`api = "auto"`), for the rest of the run.
static APIS: Mutex<Vec<(String, NacosApi)>> = Mutex::new(Vec::new());
/// Tokens by base URL and user, with the instant after which they are not used.
static TOKENS: Mutex<Vec<(String, String, Instant)>> = Mutex::new(Vec::new());

enum Step {
    /// This API is not there (404/405/410): try the next one.
    Absent(String),
    /// Nacos answered: the action's outcome.
    Answered(Outcome),
    /// A 403 with a cached token: log in again, once.
    Forbidden(Outcome),
    /// No answer (transport error, time up): do not move on, do not remember.
    Unreached(Outcome),
}

fn api_word(api: NacosApi) -> &'static str {
    match api {
        NacosApi::Auto => "auto",
        NacosApi::V1 => "v1",
        NacosApi::V2 => "v2",
        NacosApi::V3 => "v3",
    }
}

/// One line for the plan; never the password.
pub fn describe(n: &Nacos) -> String {
    let op = match (n.deregister, n.undo) {
        (true, _) => "deregister",
        (false, false) => "enabled=false",
        (false, true) => "enabled=true",
    };
    let mut s = format!("nacos {op} {}@@{} {}:{}", n.group, n.service, n.ip, n.port);
    if !n.namespace.is_empty() {
        s += &format!(" namespace {}", n.namespace);
    }
    if !n.cluster.is_empty() {
        s += &format!(" cluster {}", n.cluster);
    }
    if !n.ephemeral {
        s += " persistent";
    }
    s += &format!(" at {} (api {})", n.url.shown(), api_word(n.api));
    if !n.username.is_empty() {
        s += &format!(" as {} [password: ***]", n.username);
    }
    s
}

/// A request: method, path under the base, query (without the token).
type Req = (&'static str, &'static str, String);

fn query(pairs: &[(&str, &str)]) -> String {
    let kept = pairs.iter().filter(|(_, v)| !v.is_empty());
    kept.map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&")
}

/// The instance as v1 and v3 (and v2's `DELETE`, `PUT`, `GET`) name it.
fn instance(n: &Nacos, extra: &[(&str, &str)]) -> String {
    let port = n.port.to_string();
    let mut pairs = vec![
        ("serviceName", n.service.as_str()),
        ("groupName", n.group.as_str()),
        ("namespaceId", n.namespace.as_str()),
        ("clusterName", n.cluster.as_str()),
        ("ip", n.ip.as_str()),
        ("port", port.as_str()),
        ("ephemeral", if n.ephemeral { "true" } else { "false" }),
    ];
    pairs.extend_from_slice(extra);
    query(&pairs)
}

/// The requests for `api`: the first, and the one to send if it answers 405.
/// `weight` is the instance's current weight (v2's `PATCH` requires one).
fn plan(n: &Nacos, api: NacosApi, weight: &str) -> (Req, Option<Req>) {
    let enabled = if n.undo { "true" } else { "false" };
    let (base, partial) = match api {
        NacosApi::V3 => ("/v3/admin/ns/instance", "/v3/admin/ns/instance/partial"),
        NacosApi::V2 => ("/v2/ns/instance", "/v2/ns/instance"),
        _ => ("/v1/ns/instance", "/v1/ns/instance"),
    };
    if n.deregister {
        return (("DELETE", base, instance(n, &[])), None);
    }
    match api {
        NacosApi::V2 => {
            let port = n.port.to_string();
            let grouped = format!("{}@@{}", n.group, n.service);
            let patch = query(&[
                ("serviceName", grouped.as_str()),
                ("namespaceId", n.namespace.as_str()),
                ("cluster", n.cluster.as_str()),
                ("ip", n.ip.as_str()),
                ("port", port.as_str()),
                ("weight", weight),
                ("enabled", enabled),
            ]) + "&metadata=";
            let put = instance(n, &[("weight", weight), ("enabled", enabled)]);
            (("PATCH", base, patch), Some(("PUT", base, put)))
        }
        NacosApi::V3 => {
            let q = instance(n, &[("enabled", enabled)]);
            (("PUT", partial, q.clone()), Some(("PUT", base, q)))
        }
        _ => {
            let q = instance(n, &[("enabled", enabled)]);
            (("PATCH", base, q.clone()), Some(("PUT", base, q)))
        }
    }
}

pub fn run(n: &Nacos, limit: Duration) -> Outcome {
    let deadline = Instant::now() + limit;
    let key = n.url.bare.clone();
    let known = APIS.lock().ok().and_then(|a| a.iter().find(|(k, _)| *k == key).map(|(_, api)| *api));
    let order = match (n.api, known) {
        (NacosApi::Auto, Some(api)) => vec![api],
        (NacosApi::Auto, None) => vec![NacosApi::V3, NacosApi::V2, NacosApi::V1],
        (api, _) => vec![api],
    };
    let mut skipped = Vec::new();
    for (i, &api) in order.iter().enumerate() {
        match attempt(n, api, deadline) {
            Step::Absent(why) if i + 1 < order.len() => skipped.push(why),
            Step::Absent(why) => {
                skipped.push(why);
                return Outcome::failed(format!(
                    "nacos: no Nacos API answered at {} ({}): check url (the server's base with its context path, e.g. http://nacos:8848/nacos)",
                    n.url.shown(),
                    skipped.join("; ")
                ));
            }
            Step::Answered(outcome) | Step::Forbidden(outcome) => {
                if let (NacosApi::Auto, Ok(mut apis)) = (n.api, APIS.lock()) {
                    if !apis.iter().any(|(k, _)| *k == key) {
                        apis.push((key.clone(), api));
                    }
                }
                return outcome;
            }
            Step::Unreached(outcome) => return outcome,
        }
    }
    Outcome::failed("nacos: no API to try")
}

/// Logs in if needed, runs the requests for `api`, logs in again once on a 403.
fn attempt(n: &Nacos, api: NacosApi, deadline: Instant) -> Step {
    let key = format!("{}|{}", n.url.bare, n.username);
    let mut relogged = false;
    loop {
        let mut token = None;
        if !n.username.is_empty() {
            let cached = TOKENS.lock().ok().and_then(|t| {
                t.iter().find(|(k, _, until)| *k == key && Instant::now() < *until).map(|(_, tok, _)| tok.clone())
            });
            token = match cached {
                Some(t) => Some(t),
                None => match login(n, api, deadline) {
                    Ok(t) => {
                        relogged = true;
                        Some(t)
                    }
                    Err(step) => return step,
                },
            };
        }
        match operate(n, api, deadline, token.as_deref()) {
            Step::Forbidden(_) if !relogged && token.is_some() => {
                if let Ok(mut t) = TOKENS.lock() {
                    t.retain(|(k, _, _)| *k != key);
                }
                relogged = true;
                continue;
            }
            step => return step,
        }
    }
}

fn left(deadline: Instant) -> Option<Duration> {
    Some(deadline.saturating_duration_since(Instant::now())).filter(|d| !d.is_zero())
}

fn login(n: &Nacos, api: NacosApi, deadline: Instant) -> Result<String, Step> {
    let path = if api == NacosApi::V3 { "/v3/auth/user/login" } else { "/v1/auth/login" };
    let what = format!("nacos POST {}{path} (login as {})", n.url.shown(), n.username);
    let Some(limit) = left(deadline) else {
        return Err(Step::Unreached(Outcome::failed(format!("{what}: not tried, time is up"))));
    };
    let body = format!("username={}&password={}", encode(&n.username), encode(&n.password));
    let headers = [("Content-Type".to_string(), "application/x-www-form-urlencoded".to_string())];
    let (code, answer) = match exchange("POST", &n.url.join(path), &headers, &body, limit) {
        Ok(a) => a,
        Err(e) => return Err(Step::Unreached(Outcome::failed(format!("{what}: {e}")))),
    };
    if matches!(code, 404 | 405 | 410) {
        return Err(Step::Absent(format!("{what}: {code} {}", reason(code))));
    }
    match (code, json_field(&answer, "accessToken")) {
        (200, Some(token)) if !token.is_empty() => {
            let ttl = json_field(&answer, "tokenTtl").and_then(|t| t.parse::<u64>().ok()).unwrap_or(18000);
            let until = Instant::now() + Duration::from_secs(ttl) * 9 / 10;
            if let Ok(mut t) = TOKENS.lock() {
                let key = format!("{}|{}", n.url.bare, n.username);
                t.retain(|(k, _, _)| *k != key);
                t.push((key, token.clone(), until));
            }
            Ok(token)
        }
        _ => Err(Step::Answered(Outcome::failed(format!(
            "{what}: {code} {}: {}: check username and password",
            reason(code),
            message(&answer)
        )))),
    }
}

/// Sends one request with the token where `api` wants it.
fn send(
    n: &Nacos,
    api: NacosApi,
    deadline: Instant,
    token: Option<&str>,
    req: &Req,
) -> Result<(u16, String, String), Step> {
    let (method, path, q) = req;
    let what = format!("nacos {method} {}{path}", n.url.shown());
    let Some(limit) = left(deadline) else {
        return Err(Step::Unreached(Outcome::failed(format!("{what}: not tried, time is up"))));
    };
    let mut q = q.clone();
    let mut headers = Vec::new();
    match (api, token) {
        (NacosApi::V3, Some(t)) => headers.push(("accessToken".to_string(), t.to_string())),
        (_, Some(t)) => q += &format!("&accessToken={}", encode(t)),
        _ => {}
    }
    match exchange(method, &n.url.join(&format!("{path}?{q}")), &headers, "", limit) {
        Ok((code, body)) => Ok((code, body, what)),
        Err(e) => Err(Step::Unreached(Outcome::failed(format!("{what}: {e}")))),
    }
}

fn operate(n: &Nacos, api: NacosApi, deadline: Instant, token: Option<&str>) -> Step {
    let mut weight = String::new();
    if api == NacosApi::V2 && !n.deregister {
        let detail = ("GET", "/v2/ns/instance", instance(n, &[]));
        match send(n, api, deadline, token, &detail) {
            Err(step) => return step,
            Ok((200, body, _)) if json_field(&body, "code").as_deref() == Some("0") => {
                weight = json_field(&body, "weight").unwrap_or_else(|| "1.0".into());
            }
            Ok(answer) => return judge(n, api, answer),
        }
    }
    let (first, fallback) = plan(n, api, &weight);
    let mut answer = match send(n, api, deadline, token, &first) {
        Ok(a) => a,
        Err(step) => return step,
    };
    if let (405, Some(put)) = (answer.0, &fallback) {
        answer = match send(n, api, deadline, token, put) {
            Ok(a) => a,
            Err(step) => return step,
        };
    }
    judge(n, api, answer)
}

/// What an answer means: success is 200 and, for v2/v3, `code == 0` (or the
/// text `ok` that v2's `PATCH` answers).
fn judge(n: &Nacos, api: NacosApi, (code, body, what): (u16, String, String)) -> Step {
    let ncode = json_field(&body, "code");
    // v1 answers text; a JSON answer without `code` is Spring's own 404.
    let own = ncode.is_some() || (api == NacosApi::V1 && !body.trim_start().starts_with('{'));
    if matches!(code, 405 | 410) || (code == 404 && !own) {
        return Step::Absent(format!("{what}: {code} {}", reason(code)));
    }
    let said = message(&body);
    let ok = code == 200 && (api == NacosApi::V1 || body.trim() == "ok" || ncode.as_deref() == Some("0"));
    if ok {
        let done = if n.deregister {
            "deregistered"
        } else if n.undo {
            "enabled"
        } else {
            "disabled"
        };
        return Step::Answered(Outcome::Success(format!("{what}: 200 OK ({done} {}:{})", n.ip, n.port)));
    }
    let failed = |text: String| Outcome::failed(text);
    match code {
        404 if n.undo => Step::Answered(Outcome::Success(format!("{what}: 404 {said} (nothing to undo)"))),
        404 => Step::Answered(failed(format!(
            "{what}: 404 instance not found: {said}: check service, group, namespace, cluster, ip and port"
        ))),
        403 => Step::Forbidden(failed(format!(
            "{what}: 403 {said}: {}",
            if n.username.is_empty() {
                "the server wants a login: set username and password"
            } else {
                "check that the user may write in the namespace"
            }
        ))),
        200 => Step::Answered(failed(format!(
            "{what}: 200 but Nacos says {}: {said}",
            ncode.map(|c| format!("code {c}")).unwrap_or("no code".into())
        ))),
        _ => Step::Answered(failed(format!("{what}: {code} {}: {said}", reason(code)))),
    }
}

/// Nacos's own words: `message` (and `data` when it is text) of a JSON
/// answer, else the answer's first line.
fn message(body: &str) -> String {
    let m = json_field(body, "message").unwrap_or_default();
    let d = json_field(body, "data").filter(|d| !d.is_empty() && *d != m && d != "null");
    let text = match (m.is_empty(), d) {
        (false, Some(d)) => format!("{m}: {d}"),
        (false, None) => m,
        (true, Some(d)) => d,
        (true, None) => one_line(body),
    };
    let text = one_line(&text);
    if text.is_empty() {
        "(empty answer)".into()
    } else {
        text
    }
}

/// The value of the first `"key":` in a JSON text, as text (a string
/// unquoted, a number or word as written); None if absent or not JSON.
fn json_field(body: &str, key: &str) -> Option<String> {
    let body = body.trim_start();
    if !body.starts_with('{') {
        return None;
    }
    let at = body.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = body[at..].trim_start().strip_prefix(':')?.trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => out.push(chars.next().unwrap_or('\\')),
                c => out.push(c),
            }
        }
        return None;
    }
    let end = rest.find([',', '}', ']']).unwrap_or(rest.len());
    Some(rest[..end].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Kind;
    use crate::url::Url;

    fn nacos(api: NacosApi) -> Nacos {
        Nacos {
            url: Url::parse("http://nacos:8848/nacos").unwrap(),
            service: "orders".into(),
            ip: "10.0.0.7".into(),
            port: 8080,
            group: "DEFAULT_GROUP".into(),
            namespace: String::new(),
            cluster: String::new(),
            ephemeral: true,
            username: "nacos".into(),
            password: "s3cret".into(),
            api,
            deregister: false,
            undo: false,
        }
    }

    const ID: &str = "serviceName=orders&groupName=DEFAULT_GROUP&ip=10.0.0.7&port=8080&ephemeral=true";

    #[test]
    fn each_api_takes_the_instance_out_by_a_partial_update() {
        let (first, put) = plan(&nacos(NacosApi::V1), NacosApi::V1, "");
        assert_eq!(first, ("PATCH", "/v1/ns/instance", format!("{ID}&enabled=false")));
        assert_eq!(put.unwrap(), ("PUT", "/v1/ns/instance", format!("{ID}&enabled=false")));
        let (first, _) = plan(&nacos(NacosApi::V3), NacosApi::V3, "");
        assert_eq!(first, ("PUT", "/v3/admin/ns/instance/partial", format!("{ID}&enabled=false")));
        let (first, put) = plan(&nacos(NacosApi::V2), NacosApi::V2, "2.5");
        assert_eq!(
            first.2,
            "serviceName=DEFAULT_GROUP%40%40orders&ip=10.0.0.7&port=8080&weight=2.5&enabled=false&metadata="
        );
        assert_eq!(put.unwrap().2, format!("{ID}&weight=2.5&enabled=false"));
        let mut d = nacos(NacosApi::V2);
        d.deregister = true;
        d.namespace = "prod".into();
        assert_eq!(
            plan(&d, NacosApi::V2, "").0,
            ("DELETE", "/v2/ns/instance", ID.replace("&ip", "&namespaceId=prod&ip"))
        );
        assert!(Kind::Nacos(d).restore().is_none());
    }

    #[test]
    fn the_restore_sends_enabled_true_the_same_way() {
        let Some(Kind::Nacos(u)) = Kind::Nacos(nacos(NacosApi::V3)).restore() else { panic!() };
        assert_eq!(plan(&u, NacosApi::V3, "").0 .2, format!("{ID}&enabled=true"));
        assert_eq!(plan(&u, NacosApi::V1, "").0 .0, "PATCH");
        let text = Kind::Nacos(u).describe();
        assert!(text.contains("enabled=true") && !text.contains("s3cret"), "{text}");
    }

    #[test]
    fn json_answers_are_read() {
        let body = r#"{"code":20004,"message":"resource not found","data":"no matched ip found!"}"#;
        assert_eq!(json_field(body, "code").as_deref(), Some("20004"));
        assert_eq!(message(body), "resource not found: no matched ip found!");
        assert_eq!(json_field(r#"{"accessToken":"a\"b","tokenTtl":18000}"#, "tokenTtl").as_deref(), Some("18000"));
        assert_eq!(json_field(r#"{"accessToken":"a\"b"}"#, "accessToken").as_deref(), Some("a\"b"));
        assert_eq!(json_field("ok", "code"), None);
        assert_eq!(
            message("caused: errCode: 404, errMsg: no matched ip\nmore"),
            "caused: errCode: 404, errMsg: no matched ip"
        );
        assert_eq!(message(""), "(empty answer)");
    }
}
