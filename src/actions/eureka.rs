//! `eureka = { url | urls, app, instance, status }`: the status override
//! `PUT {url}/apps/{APP}/{instance}/status?value={status}` (docs/lifecycle.md L19-L23),
//! tried on each server in turn until one answers 200. Each server gets an
//! equal share of the time left, so one that hangs (the usual way a host
//! fails) cannot use up the whole timeout before the next is tried.
//! The restore (L39) is `DELETE` on the same path with `?value=UP`; a 404
//! there means there is no override to remove.

use super::http::{reason, request};
use super::{Eureka, Outcome};
use std::time::{Duration, Instant};

/// The REST path under the base URL.
pub fn path(e: &Eureka) -> String {
    let value = if e.undo { "UP" } else { &e.status };
    format!("/apps/{}/{}/status?value={value}", e.app.to_uppercase(), e.instance)
}

pub fn run(e: &Eureka, limit: Duration) -> Outcome {
    let deadline = Instant::now() + limit;
    let method = if e.undo { "DELETE" } else { "PUT" };
    let path = path(e);
    let mut failures = Vec::new();
    for (i, base) in e.urls.iter().enumerate() {
        let url = base.join(&path);
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            failures.push(format!("{}: not tried, time is up", url.shown()));
            continue;
        }
        let share = left / (e.urls.len() - i) as u32;
        match request(method, &url, &[], "", share) {
            Ok(200) => return Outcome::Success(format!("eureka {method} {}: 200 OK", url.shown())),
            Ok(404) if e.undo => {
                return Outcome::Success(format!("eureka {method} {}: 404 (no override: nothing to undo)", url.shown()))
            }
            Ok(404) => failures.push(format!("{}: 404 Not Found (instance not registered)", url.shown())),
            Ok(code) => failures.push(format!("{}: {code} {}", url.shown(), reason(code))),
            Err(err) => failures.push(format!("{}: {err}", url.shown())),
        }
    }
    Outcome::failed(format!("eureka {method} {}", failures.join("; ")))
}
