//! `eureka = { url | urls, app, instance, status }`: the status override
//! `PUT {url}/apps/{APP}/{instance}/status?value={status}` (docs/lifecycle.md L19-L23),
//! tried on each server in turn until one answers 200. Each server gets an
//! equal share of the time left, so one that hangs (the usual way a host
//! fails) cannot use up the whole timeout before the next is tried.

use super::http::{reason, request};
use super::{Eureka, Outcome};
use std::time::{Duration, Instant};

pub fn run(e: &Eureka, limit: Duration) -> Outcome {
    let deadline = Instant::now() + limit;
    let path = format!("/apps/{}/{}/status?value={}", e.app.to_uppercase(), e.instance, e.status);
    let mut failures = Vec::new();
    for (i, base) in e.urls.iter().enumerate() {
        let url = base.join(&path);
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            failures.push(format!("{}: not tried, time is up", url.shown()));
            continue;
        }
        let share = left / (e.urls.len() - i) as u32;
        match request("PUT", &url, &[], "", share) {
            Ok(200) => return Outcome::Success(format!("eureka PUT {}: 200 OK", url.shown())),
            Ok(404) => failures.push(format!("{}: 404 Not Found (instance not registered)", url.shown())),
            Ok(code) => failures.push(format!("{}: {code} {}", url.shown(), reason(code))),
            Err(err) => failures.push(format!("{}: {err}", url.shown())),
        }
    }
    Outcome::failed(format!("eureka PUT {}", failures.join("; ")))
}
