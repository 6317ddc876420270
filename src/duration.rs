//! Durations as users write them: `30` (seconds), `"30s"`, `"1m30s"`, `"500ms"`, `"2h"`.

use std::time::Duration;

/// The longest duration accepted: 100 years, beyond any real wait, and short
/// enough that a deadline `Instant::now() + d` can never overflow (which
/// panicked: `--grace 18446744073709551615` brought PID 1 down).
pub const MAX: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parses a duration; the error says what is expected.
pub fn parse(text: &str) -> Result<Duration, String> {
    let d = parse_unbounded(text)?;
    if d > MAX {
        return Err(format!("'{text}' is too long: at most {} (100 years)", show(MAX)));
    }
    Ok(d)
}

fn parse_unbounded(text: &str) -> Result<Duration, String> {
    let bad =
        || format!("'{text}' is not a duration: write seconds like 30, or units like \"30s\", \"1m30s\", \"500ms\"");
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let part = n.checked_mul(unit_ms).ok_or_else(bad)?;
        total = total.checked_add(Duration::from_millis(part)).ok_or_else(bad)?;
    }
    Ok(total)
}

/// `1m30s`, `500ms`, `0s`: the shortest exact form, for the resolved plan and events.
pub fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
    let mut out = String::new();
    for (n, u) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            out += &format!("{n}{u}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "s", "-1", "1.5s", "10x", "m5", "99999999999999999999h", "1 m"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        // Anything past MAX would overflow a deadline.
        for huge in ["18446744073709551615", "9223372036854775807", "876001h", "3153600001s"] {
            assert!(parse(huge).unwrap_err().contains("too long"), "{huge}");
        }
        assert_eq!(parse("876000h"), Ok(MAX));
    }

    #[test]
    fn shows_round_trip() {
        for t in ["0s", "500ms", "30s", "1m30s", "2h", "1h1s"] {
            assert_eq!(show(parse(t).unwrap()), t);
        }
    }
}
