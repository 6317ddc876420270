//! HTTP URLs for the http and eureka actions: user-info becomes Basic auth and
//! is never printed. `redact` masks credentials in any text podinit prints.

/// A URL split so its credentials can be kept apart from everything printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The URL without user-info: what is requested, and what may be printed.
    pub bare: String,
    /// `user:password`, percent-decoded, when the URL had user-info.
    credentials: Option<String>,
}

impl Url {
    /// Accepts `http://[user[:pass]@]host[:port][/path][?query]` (and `https://`
    /// when podinit is built with the `https` feature).
    pub fn parse(text: &str) -> Result<Url, String> {
        let shown = redact(text);
        let (scheme, rest) =
            text.split_once("://").ok_or_else(|| format!("'{shown}' is not a URL: write http://host:port/path"))?;
        match scheme {
            "http" => {}
            "https" if cfg!(feature = "https") => {}
            "https" => {
                return Err(format!(
                    "'{shown}': this podinit is built without HTTPS; rebuild with `--features https` or use http://"
                ))
            }
            _ => return Err(format!("'{shown}': the scheme must be http:// or https://")),
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("'{shown}': a URL has no spaces or control characters (write %20)"));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let (credentials, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(percent_decode(userinfo)), host),
            None => (None, authority),
        };
        let valid_host = valid_host_port(host);
        if !valid_host {
            if text.contains('@') {
                // The "host" may be half a password that holds a '/' (base64 does): never echo it.
                return Err(format!(
                    "'{shown}': cannot tell the host from the user name and password: write '/', '?', '#' and '@' in them as %2F, %3F, %23 and %40"
                ));
            }
            return Err(format!("'{shown}': '{host}' is not a host[:port]"));
        }
        Ok(Url { bare: format!("{scheme}://{host}{path}"), credentials })
    }

    /// The `Authorization` header value for the URL's user-info.
    pub fn basic_auth(&self) -> Option<String> {
        self.credentials.as_ref().map(|c| format!("Basic {}", base64(c.as_bytes())))
    }

    /// The URL as printed: credentials shown as `***`.
    pub fn shown(&self) -> String {
        match &self.credentials {
            Some(_) => self.bare.replacen("://", "://***@", 1),
            None => self.bare.clone(),
        }
    }

    /// This URL with `suffix` appended to its path (for Eureka's REST paths).
    pub fn join(&self, suffix: &str) -> Url {
        Url { bare: format!("{}{suffix}", self.bare.trim_end_matches('/')), credentials: self.credentials.clone() }
    }
}

/// `host[:port]`: a name or IPv4 address, or an IPv6 address in brackets;
/// the port, when given, 1 to 65535.
fn valid_host_port(s: &str) -> bool {
    let (host_ok, port) = match s.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip6, port)) => {
                (ip6.contains(':') && ip6.chars().all(|c| c.is_ascii_hexdigit() || ":.".contains(c)), port)
            }
            None => return false,
        },
        None => {
            let (name, port) = s.find(':').map_or((s, ""), |i| s.split_at(i));
            let name_ok = !name.is_empty()
                && !name.starts_with(['.', '-'])
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
            (name_ok, port)
        }
    };
    host_ok
        && (port.is_empty()
            || port.strip_prefix(':').is_some_and(|p| {
                !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0)
            }))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Masks the user-info of every URL in `text`: `http://u:p@h` -> `http://***@h`.
/// Everything up to the URL's last '@' is masked, not only up to its first
/// '/': a password may hold an unencoded '/', '?' or '#' (base64 ones do), and
/// masking part of a path that holds an '@' costs nothing.
/// The value of any `Authorization:` header the text quotes (a probe's `curl
/// -v` output, say) is masked too, up to the end of the line or a quote,
/// bracket, comma or semicolon.
pub fn redact(text: &str) -> String {
    let text = mask_authorization(text);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest.find(|c: char| c.is_whitespace() || "\"'`<>,;".contains(c)).unwrap_or(rest.len());
        match rest[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&rest[at..end]);
            }
            None => out.push_str(&rest[..end]),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Names whose value is a secret, as a header (`name: value`), a query or
/// form value (`name=value`) or a JSON field (`"name":"value"`).
const SECRETS: [&str; 5] = ["authorization", "x-consul-token", "accesstoken", "password", "token"];

fn mask_authorization(text: &str) -> String {
    let mut text = text.to_string();
    for name in SECRETS {
        for (sep, stop) in [(": ", "\n\r\"'`],;"), (":", "\n\r\"'`],;"), ("=", "&\n\r\"'`]),; "), ("\":\"", "\"")] {
            text = mask_after(&text, &format!("{name}{sep}"), stop);
        }
    }
    text
}

/// Masks the value after each (case-insensitive) `needle`, up to a `stop` character.
fn mask_after(text: &str, needle: &str, stop: &str) -> String {
    let lower = text.to_ascii_lowercase(); // same byte offsets as `text`
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for (i, _) in lower.match_indices(needle) {
        // `token` inside `accesstoken` was handled under its own name.
        let inside = lower[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        if i < done || inside {
            continue;
        }
        let start = i + needle.len();
        let end = text[start..].find(|c: char| stop.contains(c)).map_or(text.len(), |e| start + e);
        out.push_str(&text[done..start]);
        let value = text[start..end].trim();
        if value.is_empty() || value == "***" {
            out.push_str(&text[start..end]);
        } else {
            out.push_str(if needle.ends_with(' ') || !needle.ends_with(':') { "***" } else { " ***" });
        }
        done = end;
    }
    out.push_str(&text[done..]);
    out
}

/// Percent-encodes `s` for a query value or a path segment (RFC 3986 unreserved kept).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_become_basic_auth_and_are_hidden() {
        let u = Url::parse("http://admin:s%40cret@eureka:8761/eureka").unwrap();
        assert_eq!(u.bare, "http://eureka:8761/eureka");
        assert_eq!(u.shown(), "http://***@eureka:8761/eureka");
        assert_eq!(u.basic_auth().unwrap(), format!("Basic {}", base64(b"admin:s@cret")));
        assert_eq!(base64(b"admin:admin"), "YWRtaW46YWRtaW4=");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(u.join("/apps/X").bare, "http://eureka:8761/eureka/apps/X");
        assert!(Url::parse("http://h").unwrap().basic_auth().is_none());
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_secrets() {
        let bad = [
            "eureka:8761",
            "ftp://h/",
            "http://",
            "http://h:99999/",
            "http://h:x/",
            "http://h:0/",
            "http://h:+80/",
            "http://h:/",
            "http://a b/",
            "http://[bad/x",
            "http://a:pw@[bad/x",
            "http://[::1/x",
            "http://[]/x",
            "http://[zz::1]/",
            "http://[::1]x/",
            "http://h]/",
            "http://h:1:2/",
            "http://.h/",
            "http://-h/",
        ];
        for bad in bad {
            let e = Url::parse(bad).err();
            assert!(e.is_some(), "{bad} was accepted");
            assert!(!e.unwrap().contains("pw@"), "{bad}");
        }
        for good in ["http://h", "http://h.example:80/x?y#z", "http://10.0.0.1:8761/eureka", "http://[::ffff:1.2.3.4]/"]
        {
            assert!(Url::parse(good).is_ok(), "{good}");
        }
        let e = Url::parse("ftp://bob:hunter2@h/").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(Url::parse("http://[::1]:8080/x").is_ok());
    }

    #[test]
    fn redact_masks_every_url() {
        assert_eq!(
            redact("PUT http://a:b@h:1/x failed; also \"https://t@k/\""),
            "PUT http://***@h:1/x failed; also \"https://***@k/\""
        );
        assert_eq!(redact("no url here"), "no url here");
        assert_eq!(
            redact("> GET / HTTP/1.1 > Authorization: Basic dXNlcjpwYXNz\n< HTTP/1.1 401"),
            "> GET / HTTP/1.1 > Authorization: ***\n< HTTP/1.1 401"
        );
        assert_eq!(redact("[proxy-authorization: Bearer eyJ.x-y_z]"), "[proxy-authorization: ***]");
        assert_eq!(
            redact("headers [Authorization: ***] and authorization:"),
            "headers [Authorization: ***] and authorization:"
        );
        assert_eq!(redact("http://plain/path"), "http://plain/path");
        // An unencoded '/' in the password (base64) must not end the masking early.
        assert_eq!(redact("'http://admin:ab/c+d=@eureka:8761/x'"), "'http://***@eureka:8761/x'");
        assert_eq!(
            redact("PATCH /nacos/v1/ns/instance?ip=1&accessToken=eyJhbGci.x&port=2 failed"),
            "PATCH /nacos/v1/ns/instance?ip=1&accessToken=***&port=2 failed"
        );
        assert_eq!(redact(r#"{"accessToken":"eyJ.a","tokenTtl":18000}"#), r#"{"accessToken":"***","tokenTtl":18000}"#);
        assert_eq!(redact("X-Consul-Token: 0b1c-22\nnext"), "X-Consul-Token: ***\nnext");
        assert_eq!(redact("[accessToken: abc]"), "[accessToken: ***]");
        assert_eq!(redact("username=nacos&password=s3cret"), "username=nacos&password=***");
        assert_eq!(redact("tokenTtl=5 and token=abc"), "tokenTtl=5 and token=***");
        assert_eq!(encode("a b/c@d~"), "a%20b%2Fc%40d~");
        let e = Url::parse("http://admin:ab/cS3cret=@eureka:8761/eureka").unwrap_err();
        assert!(!e.contains("S3cret") && !e.contains("admin"), "{e}");
    }
}
