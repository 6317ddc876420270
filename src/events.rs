//! Lifecycle events and podinit's own log lines: one line each on stderr, as
//! `podinit: Reason: message` text or one JSON object a line.
//!
//! Everything goes through the `log` crate with env_logger as the writer, so
//! `PODINIT_LOG` / `-v` pick the level. Event reasons follow the kubelet's
//! names where one exists (docs/config.md "Events").

use crate::cli::LogFormat;
use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Lifecycle event reasons (docs/config.md "Events").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Started,
    Killing,
    Exited,
    InitStepSucceeded,
    InitStepFailed,
    FailedPostStartHook,
    PreStopStarted,
    PreStopFinished,
    FailedPreStopHook,
    Unhealthy,
    BackOff,
    /// A signal podinit had to send could not be sent (EPERM: no CAP_KILL).
    FailedKill,
    /// A registry override undone after a restart in place (docs/lifecycle.md L39).
    RegistryRestored,
    FailedRegistryRestore,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Started => "Started",
            Reason::Killing => "Killing",
            Reason::Exited => "Exited",
            Reason::InitStepSucceeded => "InitStepSucceeded",
            Reason::InitStepFailed => "InitStepFailed",
            Reason::FailedPostStartHook => "FailedPostStartHook",
            Reason::PreStopStarted => "PreStopStarted",
            Reason::PreStopFinished => "PreStopFinished",
            Reason::FailedPreStopHook => "FailedPreStopHook",
            Reason::Unhealthy => "Unhealthy",
            Reason::BackOff => "BackOff",
            Reason::FailedKill => "FailedKill",
            Reason::RegistryRestored => "RegistryRestored",
            Reason::FailedRegistryRestore => "FailedRegistryRestore",
        }
    }
}

/// How many recent events `podinit status` shows.
const KEPT: usize = 20;

/// The last events, for `podinit status` (like `kubectl describe`'s Events),
/// each the JSON object `--log-format json` writes for it.
static RECENT: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());

/// Logs one lifecycle event and keeps it for `status`.
pub fn emit(level: log::Level, reason: Reason, message: &str) {
    log::log!(target: reason.as_str(), level, "{message}");
    if let Ok(mut recent) = RECENT.lock() {
        if recent.len() == KEPT {
            recent.pop_front();
        }
        recent.push_back(json_line(level, Some(reason.as_str()), &crate::url::redact(message)));
    }
}

/// One event or log line as a JSON object: `{"ts":..,"level":..,"reason":..,"message":..}`
/// (`reason` only for lifecycle events).
fn json_line(level: log::Level, reason: Option<&str>, message: &str) -> String {
    let mut line =
        format!("{{\"ts\":\"{}\",\"level\":\"{}\"", timestamp(SystemTime::now()), level.as_str().to_ascii_lowercase());
    if let Some(reason) = reason {
        line += &format!(",\"reason\":{}", json_string(reason));
    }
    line + &format!(",\"message\":{}}}", json_string(message))
}

/// The recent events (JSON objects), oldest first.
pub fn recent() -> Vec<String> {
    RECENT.lock().map(|r| r.iter().cloned().collect()).unwrap_or_default()
}

/// Installs the stderr writer; events carry their reason as the log target.
pub fn init(level: log::LevelFilter, format: LogFormat) {
    let mut b = env_logger::Builder::new();
    b.filter_level(level).target(env_logger::Target::Stderr);
    b.format(move |buf, record| {
        let reason = record.target();
        let is_event = !reason.contains("::") && reason != "podinit";
        // Credentials never reach the output, whatever a message quotes.
        let message = crate::url::redact(&record.args().to_string());
        match format {
            LogFormat::Text if is_event => writeln!(buf, "podinit: {reason}: {message}"),
            LogFormat::Text => writeln!(buf, "podinit: {message}"),
            LogFormat::Json => writeln!(buf, "{}", json_line(record.level(), is_event.then_some(reason), &message)),
        }
    });
    // A second init (only possible in tests) keeps the first logger.
    let _ = b.try_init();
}

/// A JSON string literal with the escapes RFC 8259 requires.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The value of a top-level `"key":` in a JSON object podinit wrote: a
/// string unescaped, anything else as written.
pub fn json_field(json: &str, key: &str) -> Option<String> {
    let at = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &json[at..];
    if rest.starts_with('"') {
        return json_strings(rest).into_iter().next();
    }
    Some(rest.split([',', '}']).next()?.trim().to_string())
}

/// The string literals of the JSON array that starts right after `marker`.
pub fn json_strings_after(json: &str, marker: &str) -> Vec<String> {
    let Some(at) = json.find(marker) else { return Vec::new() };
    json_strings(&json[at + marker.len()..])
}

/// The objects of the JSON array (or the one object) that starts right after
/// `marker`, each as written: `"events":[` or `"pre_stop":`.
pub fn json_objects_after<'a>(json: &'a str, marker: &str) -> Vec<&'a str> {
    let Some(at) = json.find(marker) else { return Vec::new() };
    let mut rest = &json[at + marker.len()..];
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if !rest.starts_with('{') {
            return out;
        }
        let (mut depth, mut in_string, mut escaped, mut end) = (0usize, false, false, None);
        for (i, c) in rest.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if in_string => escaped = true,
                '"' => in_string = !in_string,
                '{' if !in_string => depth += 1,
                '}' if !in_string => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else { return out };
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
}

/// Reads consecutive string literals (separated by commas) until anything else.
fn json_strings(mut s: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches([',', ' ']);
        let Some(body) = s.strip_prefix('"') else { return out };
        let mut value = String::new();
        let mut chars = body.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                '\\' => match chars.next().map(|(_, e)| e) {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).map(|(_, h)| h).collect();
                        value.extend(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32));
                    }
                    Some(other) => value.push(other),
                    None => return out,
                },
                c => value.push(c),
            }
        }
        let Some(end) = end else { return out };
        out.push(value);
        s = &body[end..];
    }
}

/// RFC 3339 UTC with milliseconds: `2026-11-22T10:00:00.123Z`.
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_341_600_123);
        assert_eq!(timestamp(t), "2026-11-22T10:00:00.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(timestamp(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn json_fields_read_back() {
        let j = format!(
            "{{\"phase\":\"Running\",\"pid\":42,\"ok\":true,\"events\":[{},{}]}}",
            json_string("a \"b\"\n"),
            json_string("c")
        );
        assert_eq!(json_field(&j, "phase").as_deref(), Some("Running"));
        assert_eq!(json_field(&j, "pid").as_deref(), Some("42"));
        assert_eq!(json_field(&j, "ok").as_deref(), Some("true"));
        assert_eq!(json_strings_after(&j, "\"events\":["), vec!["a \"b\"\n".to_string(), "c".to_string()]);
    }

    #[test]
    fn json_objects_read_back() {
        let j = r#"{"pre_stop":{"state":"finished","failures":["a }\"{"]},"events":[{"ts":"t","message":"x}"},{"ts":"u"}]}"#;
        let pre_stop = json_objects_after(j, "\"pre_stop\":");
        assert_eq!(pre_stop, vec![r#"{"state":"finished","failures":["a }\"{"]}"#]);
        assert_eq!(json_strings_after(pre_stop[0], "\"failures\":["), vec!["a }\"{".to_string()]);
        let events = json_objects_after(j, "\"events\":[");
        assert_eq!(events.len(), 2);
        assert_eq!(json_field(events[0], "message").as_deref(), Some("x}"));
        assert_eq!(json_field(events[1], "ts").as_deref(), Some("u"));
    }

    #[test]
    fn json_strings_escape() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
