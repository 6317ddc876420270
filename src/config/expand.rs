//! `${VAR}` and `${VAR:-default}` in config strings, expanded from podinit's
//! environment when the file loads. `$$` is a literal `$`. `HOSTNAME` falls
//! back to the kernel's host name, as containers often do not export it.

/// Expands every `${...}` in `text`; the error names the variable, never a value.
pub fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(body) = rest.strip_prefix("${") {
            let end = body.find('}').ok_or_else(|| {
                format!("unclosed '${{' in \"{}\": write ${{NAME}} or ${{NAME:-default}}", redact_hint(text))
            })?;
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "'${{{inner}}}' is not a variable reference: write ${{NAME}} or ${{NAME:-default}}"
                ));
            }
            match (lookup(name, env).filter(|v| !v.is_empty() || default.is_none()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable {name} is not set: set it, or write ${{{name}:-default}}"
                    ))
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn redact_hint(text: &str) -> String {
    crate::url::redact(text)
}

fn lookup(name: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    env(name).or_else(|| (name == "HOSTNAME").then(kernel_hostname).flatten())
}

/// The kernel's host name (uname nodename).
pub fn kernel_hostname() -> Option<String> {
    nix::unistd::gethostname().ok()?.into_string().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "APP" => Some("orders".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_and_defaults() {
        assert_eq!(expand("${APP}-svc", &env).unwrap(), "orders-svc");
        assert_eq!(expand("${MISSING:-8080}", &env).unwrap(), "8080");
        assert_eq!(expand("${EMPTY:-x}", &env).unwrap(), "x");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand("cost $5 and $$HOME", &env).unwrap(), "cost $5 and $HOME");
        assert_eq!(expand("no vars", &env).unwrap(), "no vars");
        assert_eq!(expand("${APP}${APP}", &env).unwrap(), "ordersorders");
    }

    #[test]
    fn hostname_falls_back_to_the_kernel() {
        let h = expand("${HOSTNAME}", &env).unwrap();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(h, kernel.trim_end());
        assert_eq!(Some(h), kernel_hostname());
    }

    #[test]
    fn errors_name_the_variable() {
        let e = expand("${NOPE}", &env).unwrap_err();
        assert!(e.contains("NOPE") && e.contains("${NOPE:-default}"), "{e}");
        assert!(expand("${APP", &env).is_err());
        assert!(expand("${}", &env).is_err());
        assert!(expand("${A B}", &env).is_err());
    }
}
