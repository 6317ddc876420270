//! The serde side of the config: raw tables as written, each value checked
//! as it is read so that toml attaches the error to its place in the file.

use super::expand::expand;
use super::{Backoff, File, Hook, HookSleep, Main, Probe, Restart, Sidecar, Step};
use crate::actions::{Action, Consul, Eureka, Http, Kind, Nacos, NacosApi, Section};
use crate::url::Url;
use crate::{duration, signals, user};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

type EnvFn<'a> = &'a dyn Fn(&str) -> Option<String>;

thread_local! {
    /// The variables `${VAR}` may read while one file is parsed: what the
    /// caller's environment answered for every name the text references.
    static ENV: RefCell<BTreeMap<String, String>> = const { RefCell::new(BTreeMap::new()) };
}

fn env_expand(s: &str) -> Result<String, String> {
    ENV.with(|e| {
        let vars = e.borrow();
        expand(s, &|k| vars.get(k).cloned())
    })
}

pub fn parse(text: &str, env: EnvFn) -> Result<File, String> {
    let known: BTreeMap<String, String> = referenced(text).filter_map(|k| Some((k.to_string(), env(k)?))).collect();
    ENV.with(|e| *e.borrow_mut() = known);
    let raw: Result<RawFile, toml::de::Error> = toml::from_str(text);
    let raw = raw.map_err(|e| located(text, &e));
    ENV.with(|e| e.borrow_mut().clear());
    Ok(raw?.into_file(text))
}

/// Names used as `${NAME...}` in the text.
fn referenced(text: &str) -> impl Iterator<Item = &str> {
    text.split("${").skip(1).filter_map(|s| {
        let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
        Some(&s[..end])
    })
}

/// `line:column: key `k`: message`, never quoting the file's text (it may
/// hold credentials). toml places an error in a table on the table's header,
/// and in any entry of an array of tables on the first `[[name]]`; this finds
/// the entry at fault and, inside it, the line of the key the message names.
fn located(text: &str, e: &toml::de::Error) -> String {
    let msg = crate::url::redact(e.message().trim());
    let Some(span) = e.span() else {
        return format!(" {msg}");
    };
    let mut start = span.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let header = text[start..].lines().next().unwrap_or("").trim();
    if header.starts_with('[') {
        start = failing_entry(text, header).unwrap_or(start);
        start = named_key_line(text, start, &msg).unwrap_or(start);
    }
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    let line_text = text[start - (col - 1)..].lines().next().unwrap_or("");
    let key = line_text
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "_-.\"".contains(c)));
    let header = line_text.split('#').next().unwrap_or("").trim();
    let table = header.starts_with('[').then(|| header.trim_matches(|c| c == '[' || c == ']').trim());
    let named = key.or(table).filter(|n| !n.is_empty());
    let msg = match unknown_key(text, start, &msg, named) {
        Some(m) => m,
        None => without_prefix(&msg, named).to_string(),
    };
    match (key, table) {
        (Some(k), _) => format!("{line}:{col}: key `{k}`: {msg}"),
        (None, Some(t)) if header.starts_with("[[") => format!("{line}:{col}: [[{t}]]: {msg}"),
        (None, Some(t)) if !t.is_empty() => format!("{line}:{col}: [{t}]: {msg}"),
        _ => format!("{line}:{col}: {msg}"),
    }
}

/// A message without the prefix the location already says: the section
/// (`pre_stop: ...` under `[[pre_stop]]`) or the key itself (`user: ...`).
fn without_prefix<'m>(msg: &'m str, named: Option<&str>) -> &'m str {
    let Some(named) = named else { return msg };
    let sections = ["init", "post_start", "pre_stop", "probe.startup", "probe.liveness", "probe.readiness", named];
    let mut rest = msg;
    for s in sections {
        rest = rest.strip_prefix(s).and_then(|r| r.strip_prefix(": ")).unwrap_or(rest);
    }
    rest.strip_prefix("[main] ").unwrap_or(rest)
}

/// Every key an action entry (`RawEntry`) may hold, in its order.
const ENTRY_KEYS: [&str; 25] = [
    "name",
    "timeout",
    "exec",
    "http",
    "tcp",
    "dns",
    "sleep",
    "eureka",
    "nacos",
    "consul",
    "interval",
    "retries",
    "on_failure",
    "initial_delay",
    "period",
    "success_threshold",
    "failure_threshold",
    "restart",
    "stop_signal",
    "user",
    "env",
    "workdir",
    "probe",
    "post_start",
    "pre_stop",
];

/// The keys that make or shape a sidecar (`[[init]]` with `restart = "always"`).
const SIDECAR_KEYS: [&str; 8] = ["restart", "stop_signal", "user", "env", "workdir", "probe", "post_start", "pre_stop"];

/// The entry keys only some sections take.
const SECTION_ONLY: [(&str, &[Section]); 15] = [
    ("interval", &[Section::Init]),
    ("retries", &[Section::Init]),
    ("on_failure", &[Section::PostStart]),
    ("initial_delay", &[Section::Probe]),
    ("period", &[Section::Probe]),
    ("success_threshold", &[Section::Probe]),
    ("failure_threshold", &[Section::Probe]),
    ("restart", &[Section::Init]),
    ("stop_signal", &[Section::Init]),
    ("user", &[Section::Init]),
    ("env", &[Section::Init]),
    ("workdir", &[Section::Init]),
    ("probe", &[Section::Init]),
    ("post_start", &[Section::Init]),
    ("pre_stop", &[Section::Init]),
];

/// The keys an entry of `section` takes.
fn section_keys(section: Section) -> Vec<&'static str> {
    let only = |k: &str| SECTION_ONLY.iter().find(|(key, _)| *key == k).map(|(_, s)| s.contains(&section));
    ENTRY_KEYS
        .into_iter()
        .filter(|k| only(k).unwrap_or(*k == "name" || *k == "timeout" || allows(k, section)))
        .collect()
}

/// toml's "unknown field `x`, expected one of `a`, `b`" rewritten: only the
/// keys that the section at fault takes (every action entry shares one serde
/// struct, so toml lists them all), and the nearest one when it is close.
/// `named` is what the location already names (key or table).
fn unknown_key(text: &str, at: usize, msg: &str, named: Option<&str>) -> Option<String> {
    let (field, expected) = msg.strip_prefix("unknown field `")?.split_once('`')?;
    let mut allowed: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let mut here = "allowed here:".to_string();
    if allowed == ENTRY_KEYS {
        let inline = [Section::Init, Section::PostStart, Section::PreStop].into_iter().find(|s| named == Some(s.key()));
        if let Some(section) = inline.or_else(|| section_at(text, at)) {
            allowed = section_keys(section);
            here = match section {
                Section::Init => "an [[init]] step takes".into(),
                Section::Probe => "a probe takes".into(),
                s => format!("a [[{}]] entry takes", s.key()),
            };
        }
    }
    let what = if named == Some(field) { "unknown key".to_string() } else { format!("unknown key `{field}`") };
    let near = nearest(field, &allowed).map(|k| format!(": did you mean `{k}`?")).unwrap_or_default();
    let sep = if near.is_empty() { ";" } else { "" };
    Some(format!("{what}{near}{sep} {here} {}", allowed.join(", ")))
}

/// The action section whose table holds offset `at`: the last header above it.
fn section_at(text: &str, at: usize) -> Option<Section> {
    let (name, _) = scan(text, 0).take_while(|&(o, _, _)| o <= at).filter_map(|(_, l, s)| header_of(l, s)).last()?;
    // A sidecar's own tables (`[init.probe.readiness]`, `[[init.pre_stop]]`) take what the top-level ones do.
    match name.strip_prefix("init.").unwrap_or(&name) {
        "init" => Some(Section::Init),
        "post_start" => Some(Section::PostStart),
        "pre_stop" => Some(Section::PreStop),
        "probe.startup" | "probe.liveness" | "probe.readiness" => Some(Section::Probe),
        _ => None,
    }
}

/// The allowed key closest to `word` (case, `-` and `_` aside), when it is
/// close enough to be a slip: at most 2 edits, and at most half the word.
fn nearest<'k>(word: &str, keys: &[&'k str]) -> Option<&'k str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_").chars().collect::<Vec<char>>();
    let w = norm(word);
    let (d, k) = keys.iter().map(|k| (edit_distance(&w, &norm(k)), *k)).min_by_key(|&(d, _)| d)?;
    (d <= 2 && 2 * d <= w.len()).then_some(k)
}

/// Levenshtein distance.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The lines of `text` from `from` on: offset, line, and whether the line
/// starts inside a multi-line string (where `[` and `=` mean nothing).
fn scan(text: &str, from: usize) -> impl Iterator<Item = (usize, &str, bool)> {
    let (mut offset, mut in_string) = (from, false);
    text[from..].split_inclusive('\n').map(move |line| {
        let item = (offset, line, in_string);
        offset += line.len();
        if (line.matches("\"\"\"").count() + line.matches("'''").count()) % 2 == 1 {
            in_string = !in_string;
        }
        item
    })
}

/// A table header's name and whether it is an array entry: `[[init]]` ->
/// ("init", true), `[init.http]` -> ("init.http", false).
fn header_of(line: &str, in_string: bool) -> Option<(String, bool)> {
    if in_string || !line.trim_start().starts_with('[') {
        return None;
    }
    let bare: String = line.split('#').next().unwrap_or("").chars().filter(|c| !c.is_whitespace()).collect();
    Some((bare.trim_matches(|c| c == '[' || c == ']').to_string(), bare.starts_with("[[")))
}

/// For an error on `[[name]]`: the offset of the header of the first entry
/// that fails on its own. Each entry's text (its header, its sub-tables, up
/// to the next other header) is loaded again alone, through the same loader,
/// so this costs no code beyond a loop. A sidecar's hook (`[[init.pre_stop]]`)
/// is loaded under a sidecar that is valid on its own.
fn failing_entry(text: &str, header: &str) -> Option<usize> {
    let (name, _) = header_of(header, false)?;
    let sub = format!("{name}.");
    let parent = if name.starts_with("init.") { "[[init]]\nexec = [\"true\"]\nrestart = \"always\"\n" } else { "" };
    let headers = scan(text, 0).filter_map(|(at, line, s)| Some((at, header_of(line, s)?)));
    let mut entry: Option<usize> = None;
    for (at, (h, array)) in headers.chain(std::iter::once((text.len(), (String::new(), false)))) {
        if h.starts_with(&sub) {
            continue; // `[init.http]` belongs to the entry above it
        }
        if let Some(start) = entry.take() {
            if toml::from_str::<RawFile>(&format!("{parent}{}", &text[start..at])).is_err() {
                return Some(start);
            }
        }
        if array && h == name {
            entry = Some(at);
        }
    }
    None
}

/// Inside the table whose header starts at `start` (and its sub-tables): the
/// offset of the `key = ...` line whose key the message names first, in
/// backticks if any is, else as a word.
fn named_key_line(text: &str, start: usize, msg: &str) -> Option<usize> {
    let mut lines = scan(text, start);
    let (name, _) = lines.next().and_then(|(_, line, _)| header_of(line, false))?;
    let sub = format!("{name}.");
    let mut keys = Vec::new();
    for (at, line, in_string) in lines {
        match header_of(line, in_string) {
            // A sub-table is named by its first key: `[init.probe.readiness]` is `probe`.
            Some((h, _)) if h.starts_with(&sub) => {
                let key = h[sub.len()..].split('.').next().unwrap_or("").to_string();
                keys.push((key, at + (line.len() - line.trim_start().len())));
                continue;
            }
            Some(_) => break,
            None if in_string => continue,
            None => {}
        }
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim().trim_matches('"');
            if !key.is_empty() {
                keys.push((key.to_string(), at + (line.len() - line.trim_start().len())));
            }
        }
    }
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let as_word = |k: &str| {
        msg.match_indices(k)
            .map(|(i, _)| i)
            .find(|&i| !msg[..i].ends_with(ident) && !msg[i + k.len()..].starts_with(ident))
    };
    let quoted = keys.iter().filter_map(|(k, at)| Some((msg.find(&format!("`{k}`"))?, *at))).min();
    let named = quoted.or_else(|| keys.iter().filter_map(|(k, at)| Some((as_word(k)?, *at))).min());
    named.map(|(_, at)| at)
}

/// A string with `${VAR}` expanded.
#[derive(Debug, Clone)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        env_expand(&s).map(Text).map_err(de::Error::custom)
    }
}

/// A duration: integer seconds or a string with units.
#[derive(Debug, Clone, Copy)]
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration: seconds like 30, or a string like \"30s\", \"1m30s\", \"500ms\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                let secs = u64::try_from(v).map_err(|_| E::custom("a duration cannot be negative"))?;
                self.visit_u64(secs)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                duration::parse(&v.to_string()).map(Dur).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                let s = env_expand(v).map_err(E::custom)?;
                duration::parse(&s).map(Dur).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A signal: `"SIGTERM"`, `"TERM"` or `15`.
#[derive(Debug, Clone, Copy)]
struct Sig(i32);

impl<'de> Deserialize<'de> for Sig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Sig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a signal like \"SIGTERM\", \"TERM\" or 15")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Sig, E> {
                signals::parse(&v.to_string()).map(Sig).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Sig, E> {
                let s = env_expand(v).map_err(E::custom)?;
                signals::parse(&s).map(Sig).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// `stop_on`: a non-empty list of signals podinit can catch.
#[derive(Debug, Clone)]
struct StopOn(Vec<i32>);

impl<'de> Deserialize<'de> for StopOn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<Sig>::deserialize(d)?;
        if list.is_empty() {
            return Err(de::Error::custom("an empty stop_on would leave no way to stop the container: name at least one signal, e.g. [\"SIGTERM\"]"));
        }
        let checked = list.into_iter().map(|Sig(s)| signals::parse_stop_on(&s.to_string()));
        checked.collect::<Result<Vec<_>, _>>().map(StopOn).map_err(de::Error::custom)
    }
}

/// An http(s) URL, expanded and checked.
#[derive(Debug, Clone)]
struct UrlText(Url);

impl<'de> Deserialize<'de> for UrlText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Text(s) = Text::deserialize(d)?;
        Url::parse(&s).map(UrlText).map_err(de::Error::custom)
    }
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawRestart {
    Never,
    OnFailure,
    Always,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    grace_period: Option<Dur>,
    stop_signal: Option<Sig>,
    stop_on: Option<StopOn>,
    restart: Option<RawRestart>,
    main: Option<RawMain>,
    #[serde(default)]
    init: Vec<InitEntry>,
    #[serde(default)]
    post_start: Vec<PostStartEntry>,
    #[serde(default)]
    pre_stop: Vec<PreStopEntry>,
    #[serde(default)]
    probe: RawProbes,
    backoff: Option<RawBackoff>,
}

/// Crash-loop back-off (docs/lifecycle.md L13), shortened for tests and impatient users.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackoff {
    initial: Option<Dur>,
    max: Option<Dur>,
    reset: Option<Dur>,
}

impl RawFile {
    fn into_file(self, text: &str) -> File {
        let place = |at: usize| {
            let before = &text[..at.min(text.len())];
            let line = before.matches('\n').count() + 1;
            format!("{line}:{}", before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1)
        };
        let post_start = self.post_start.iter().map(|e| ("post_start", &e.0.action, e.1));
        let mut sleeps: Vec<Sleep> = post_start
            .chain(self.pre_stop.iter().map(|e| ("pre_stop", &e.0, e.1)))
            .filter_map(|(table, action, at)| match action.kind {
                Kind::Sleep(sleep) => Some((table, sleep, at?)),
                _ => None,
            })
            .chain(self.init.iter().flat_map(|e| e.1.iter().copied()))
            .collect();
        sleeps.sort_by_key(|s| s.2);
        let hook_sleeps =
            sleeps.into_iter().map(|(table, sleep, at)| HookSleep { table, sleep, at: place(at) }).collect();
        let main = self.main.map(|m| m.0).unwrap_or_default();
        let probes = self.probe.into_vec();
        let b = self.backoff;
        let pick = |f: fn(&RawBackoff) -> Option<Dur>, d: Duration| b.as_ref().and_then(f).map_or(d, |d| d.0);
        let d = Backoff::default();
        let backoff = Backoff {
            initial: pick(|b| b.initial, d.initial),
            max: pick(|b| b.max, d.max),
            reset: pick(|b| b.reset, d.reset),
        };
        File {
            backoff,
            path: None,
            grace_period: self.grace_period.map(|d| d.0),
            stop_signal: self.stop_signal.map(|s| s.0),
            stop_on: self.stop_on.map(|s| s.0),
            restart: self.restart.map(|r| match r {
                RawRestart::Never => Restart::Never,
                RawRestart::OnFailure => Restart::OnFailure,
                RawRestart::Always => Restart::Always,
            }),
            main,
            init: self.init.into_iter().map(|e| e.0).collect(),
            post_start: self.post_start.into_iter().map(|e| e.0).collect(),
            pre_stop: self.pre_stop.into_iter().map(|e| e.0).collect(),
            probes,
            hook_sleeps,
        }
    }
}

#[derive(Deserialize)]
#[serde(try_from = "RawMainTable")]
struct RawMain(Main);

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with command, user, workdir, env")]
struct RawMainTable {
    command: Option<Vec<Text>>,
    user: Option<Text>,
    workdir: Option<Text>,
    #[serde(default)]
    env: BTreeMap<String, Text>,
}

impl TryFrom<RawMainTable> for RawMain {
    type Error = String;
    fn try_from(m: RawMainTable) -> Result<Self, String> {
        if m.command.as_ref().is_some_and(Vec::is_empty) {
            return Err(
                "[main] command = []: give the program and its arguments, e.g. [\"java\", \"-jar\", \"/app/app.jar\"]"
                    .into(),
            );
        }
        let command = m.command.unwrap_or_default().into_iter().map(|t| t.0.into()).collect();
        let user = match m.user {
            Some(Text(u)) => Some((u.clone(), user::resolve(&u)?)),
            None => None,
        };
        Ok(RawMain(Main {
            command,
            user,
            workdir: m.workdir.map(|w| w.0.into()),
            env: m.env.into_iter().map(|(k, v)| (k, v.0)).collect(),
        }))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawProbes {
    startup: Option<StartupProbe>,
    liveness: Option<LivenessProbe>,
    readiness: Option<ReadinessProbe>,
}

impl RawProbes {
    fn into_vec(self) -> Vec<Probe> {
        let probes = [self.startup.map(|e| e.0), self.liveness.map(|e| e.0), self.readiness.map(|e| e.0)];
        probes.into_iter().flatten().collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table like { url = \"http://host:port/path\", method = \"GET\" }")]
struct RawHttp {
    url: UrlText,
    method: Option<Text>,
    #[serde(default)]
    headers: BTreeMap<String, Text>,
    body: Option<Text>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table like { url = \"http://eureka:8761/eureka\", app = \"APP\", instance = \"ID\" }"
)]
struct RawEureka {
    url: Option<UrlText>,
    urls: Option<Vec<UrlText>>,
    app: Text,
    instance: Text,
    status: Option<Text>,
}

/// A value in a registry table (`nacos`, `consul`): text (with `${VAR}`
/// expanded), an integer or a boolean, kept as text. The two tables are read
/// as maps of these and checked by hand: one small deserializer instead of
/// one per table (serde's derive costs kilobytes per struct in the binary).
#[derive(Debug, Clone)]
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, an integer or true/false")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                env_expand(v).map(Scalar).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A registry table's entries in order (a Vec, not a map: no second
/// BTreeMap instance in the binary; toml refuses duplicate keys already).
#[derive(Debug, Clone)]
struct Table(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Table {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Table;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table like { url = \"http://host:port\", ... }")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Table, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, Scalar(v))) = map.next_entry::<String, Scalar>()? {
                    entries.push((k, v));
                }
                Ok(Table(entries))
            }
        }
        d.deserialize_map(V)
    }
}

/// The keys of a registry table, checked: unknown keys refused (naming the
/// allowed ones), `required` present. Values are never quoted here (a
/// password may be among them).
fn registry_table(s: &str, kind: &str, t: Table, allowed: &[&str], required: &[&str]) -> Result<Table, String> {
    if let Some((k, _)) = t.0.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        return Err(format!("{s}: {kind}: unknown key `{k}`: expected one of {}", allowed.join(", ")));
    }
    if let Some(k) = required.iter().find(|k| !t.0.iter().any(|(n, _)| n == *k)) {
        return Err(format!("{s}: {kind} needs `{k}`"));
    }
    Ok(t)
}

fn take(t: &mut Table, key: &str) -> String {
    take_or(t, key, "")
}

fn take_or(t: &mut Table, key: &str, default: &str) -> String {
    match t.0.iter().position(|(k, _)| k == key) {
        Some(i) => t.0.swap_remove(i).1,
        None => default.into(),
    }
}

/// `nacos = { url, service, ip, port, group, namespace, cluster, ephemeral, username, password, api, mode }`.
fn nacos(s: &str, t: Table) -> Result<Kind, String> {
    const KEYS: [&str; 12] = [
        "url",
        "service",
        "ip",
        "port",
        "group",
        "namespace",
        "cluster",
        "ephemeral",
        "username",
        "password",
        "api",
        "mode",
    ];
    let mut t = registry_table(s, "nacos", t, &KEYS, &["url", "service", "ip", "port"])?;
    let url = Url::parse(&take(&mut t, "url")).map_err(|e| format!("{s}: nacos url: {e}"))?;
    let api = match take_or(&mut t, "api", "auto").as_str() {
        "auto" => NacosApi::Auto,
        "v1" => NacosApi::V1,
        "v2" => NacosApi::V2,
        "v3" => NacosApi::V3,
        other => return Err(format!("{s}: nacos api '{other}': expected auto, v1, v2 or v3")),
    };
    let deregister = match take_or(&mut t, "mode", "disable").as_str() {
        "disable" => false,
        "deregister" => true,
        other => return Err(format!("{s}: nacos mode '{other}': expected disable or deregister")),
    };
    let ephemeral = match take_or(&mut t, "ephemeral", "true").as_str() {
        "true" => true,
        "false" => false,
        _ => return Err(format!("{s}: nacos ephemeral: expected true or false")),
    };
    let port = take(&mut t, "port");
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{s}: nacos port '{port}': expected a port number, 1 to 65535"))?;
    let (username, password) = (take(&mut t, "username"), take(&mut t, "password"));
    if username.is_empty() != password.is_empty() {
        return Err(format!("{s}: nacos takes username and password together (or neither, without auth)"));
    }
    let group = take_or(&mut t, "group", "DEFAULT_GROUP");
    let (service, ip) = (take(&mut t, "service"), take(&mut t, "ip"));
    for (what, v) in [("service", &service), ("ip", &ip), ("group", &group)] {
        plain(s, &format!("nacos {what}"), v)?;
    }
    Ok(Kind::Nacos(Nacos {
        url,
        service,
        ip,
        port,
        group,
        namespace: take(&mut t, "namespace"),
        cluster: take(&mut t, "cluster"),
        ephemeral,
        username,
        password,
        api,
        deregister,
        undo: false,
    }))
}

/// `consul = { url, service_id, token, token_file, mode, reason }`.
fn consul(s: &str, t: Table) -> Result<Kind, String> {
    const KEYS: [&str; 6] = ["url", "service_id", "token", "token_file", "mode", "reason"];
    let mut t = registry_table(s, "consul", t, &KEYS, &["url", "service_id"])?;
    let url = Url::parse(&take(&mut t, "url")).map_err(|e| format!("{s}: consul url: {e}"))?;
    let deregister = match take_or(&mut t, "mode", "maintenance").as_str() {
        "maintenance" => false,
        "deregister" => true,
        other => return Err(format!("{s}: consul mode '{other}': expected maintenance or deregister")),
    };
    let service_id = take(&mut t, "service_id");
    plain(s, "consul service_id", &service_id)?;
    let (token, token_file) = (take(&mut t, "token"), take(&mut t, "token_file"));
    if !token.is_empty() && !token_file.is_empty() {
        return Err(format!("{s}: consul takes token or token_file, not both"));
    }
    Ok(Kind::Consul(Consul {
        url,
        service_id,
        token,
        token_file,
        deregister,
        reason: take_or(&mut t, "reason", "podinit preStop"),
        undo: false,
    }))
}

/// A registry name or id that goes into a path or query: non-empty, one line.
fn plain(s: &str, what: &str, v: &str) -> Result<(), String> {
    if v.trim().is_empty() || v.contains(char::is_control) {
        return Err(format!("{s}: {what} '{v}' must be non-empty, on one line"));
    }
    Ok(())
}

/// Every key an entry of init, post_start, pre_stop or a probe may hold;
/// which ones a section accepts is checked in `action`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with one of exec, http, tcp, dns, sleep, eureka, nacos, consul")]
struct RawEntry {
    name: Option<Text>,
    timeout: Option<Dur>,
    exec: Option<Vec<Text>>,
    http: Option<RawHttp>,
    tcp: Option<Text>,
    dns: Option<Text>,
    sleep: Option<toml::Spanned<Dur>>,
    eureka: Option<RawEureka>,
    nacos: Option<Table>,
    consul: Option<Table>,
    interval: Option<Dur>,
    retries: Option<u32>,
    on_failure: Option<Text>,
    initial_delay: Option<Dur>,
    period: Option<Dur>,
    success_threshold: Option<u32>,
    failure_threshold: Option<u32>,
    restart: Option<RestartAlways>,
    stop_signal: Option<Sig>,
    user: Option<Text>,
    env: Option<BTreeMap<String, Text>>,
    workdir: Option<Text>,
    probe: Option<RawProbes>,
    post_start: Option<Vec<PostStartEntry>>,
    pre_stop: Option<Vec<PreStopEntry>>,
}

/// An init step's `restart`: only `"always"` (a sidecar, docs/lifecycle.md L30).
#[derive(Debug, Clone, Copy)]
struct RestartAlways;

impl<'de> Deserialize<'de> for RestartAlways {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Text::deserialize(d)?.0.as_str() {
            "always" => Ok(RestartAlways),
            other => Err(de::Error::custom(format!(
                "restart = \"{other}\": only \"always\" makes a sidecar (Kubernetes restartPolicy: Always); \
                 an init step without `restart` runs once"
            ))),
        }
    }
}

impl RawEntry {
    /// Where the `sleep` value starts in the text (its key is on that line).
    fn sleep_at(&self) -> Option<usize> {
        self.sleep.as_ref().map(|s| s.span().start)
    }

    /// The entry's one action, checked against `section`; the keys that
    /// belong to other sections are refused here.
    fn action(&mut self, section: Section) -> Result<Action, String> {
        let s = section.key();
        let present = [
            self.interval.is_some(),
            self.retries.is_some(),
            self.on_failure.is_some(),
            self.initial_delay.is_some(),
            self.period.is_some(),
            self.success_threshold.is_some(),
            self.failure_threshold.is_some(),
            self.restart.is_some(),
            self.stop_signal.is_some(),
            self.user.is_some(),
            self.env.is_some(),
            self.workdir.is_some(),
            self.probe.is_some(),
            self.post_start.is_some(),
            self.pre_stop.is_some(),
        ];
        for ((key, allowed), present) in SECTION_ONLY.into_iter().zip(present) {
            if present && !allowed.contains(&section) {
                let only = allowed.iter().map(|a| a.key()).collect::<Vec<_>>().join(", ");
                return Err(format!("`{key}` is not allowed in {s}: it belongs to {only}"));
            }
        }
        let mut kinds = Vec::new();
        if let Some(argv) = self.exec.take() {
            if argv.is_empty() {
                return Err(format!(
                    "{s}: exec = []: give the program and its arguments, e.g. [\"/app/migrate\", \"up\"]"
                ));
            }
            kinds.push(Kind::Exec(argv.into_iter().map(|t| t.0).collect()));
        }
        if let Some(h) = self.http.take() {
            let method = h.method.map(|m| m.0.to_ascii_uppercase()).unwrap_or("GET".into());
            if method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()) {
                return Err(format!("{s}: http method '{method}' is not a method: write GET, POST, PUT, ..."));
            }
            let bad_header = h.headers.iter().find(|(k, v)| {
                k.is_empty()
                    || !k.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
                    || v.0.contains(['\r', '\n'])
            });
            if let Some((k, _)) = bad_header {
                return Err(format!(
                    "{s}: http header '{k}': names are letters, digits, '-' and '_'; values hold no line breaks"
                ));
            }
            kinds.push(Kind::Http(Http {
                url: h.url.0,
                method,
                headers: h.headers.into_iter().map(|(k, v)| (k, v.0)).collect(),
                body: h.body.map(|b| b.0).unwrap_or_default(),
            }));
        }
        if let Some(Text(addr)) = self.tcp.take() {
            let ok = addr.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(format!("{s}: tcp '{addr}' is not host:port, e.g. \"db:5432\""));
            }
            kinds.push(Kind::Tcp(addr));
        }
        if let Some(Text(name)) = self.dns.take() {
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(format!("{s}: dns '{name}' is not a host name"));
            }
            kinds.push(Kind::Dns(name));
        }
        if let Some(d) = self.sleep.as_ref() {
            kinds.push(Kind::Sleep(d.get_ref().0));
        }
        if let Some(e) = self.eureka.take() {
            let urls: Vec<Url> = match (e.url, e.urls) {
                (Some(u), None) => vec![u.0],
                (None, Some(us)) if !us.is_empty() => us.into_iter().map(|u| u.0).collect(),
                (None, Some(_)) => return Err(format!("{s}: eureka urls = []: give at least one server")),
                (None, None) => return Err(format!("{s}: eureka needs `url` or `urls` (the server's /eureka base)")),
                (Some(_), Some(_)) => return Err(format!("{s}: eureka takes `url` or `urls`, not both")),
            };
            let status = e.status.map(|t| t.0.to_ascii_uppercase()).unwrap_or("OUT_OF_SERVICE".into());
            if !EUREKA_STATUSES.contains(&status.as_str()) {
                return Err(format!(
                    "{s}: eureka `status` '{status}' is not a Eureka status: write one of {} (OUT_OF_SERVICE, the default, takes the instance out of rotation)",
                    EUREKA_STATUSES.join(", ")
                ));
            }
            for (key, v) in [("app", &e.app.0), ("instance", &e.instance.0), ("status", &status)] {
                if v.is_empty() || v.contains(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace()) {
                    return Err(format!("{s}: eureka {key} '{v}' must be non-empty, without '/', '?', '#' or spaces"));
                }
            }
            kinds.push(Kind::Eureka(Eureka { urls, app: e.app.0, instance: e.instance.0, status, undo: false }));
        }
        if let Some(t) = self.nacos.take() {
            kinds.push(nacos(s, t)?);
        }
        if let Some(t) = self.consul.take() {
            kinds.push(consul(s, t)?);
        }
        let fits = || {
            let all = ["exec", "http", "tcp", "dns", "sleep", "eureka", "nacos", "consul"];
            all.into_iter().filter(|w| allows(w, section)).collect::<Vec<_>>().join(", ")
        };
        let kind = match kinds.len() {
            1 => kinds.remove(0),
            0 => return Err(format!("{s}: an entry needs one of {}", fits())),
            _ => {
                let names: Vec<_> = kinds.iter().map(Kind::word).collect();
                return Err(format!("{s}: an entry holds exactly one kind, this one has {}", names.join(" and ")));
            }
        };
        if !kind.allowed_in(section) {
            return Err(format!("`{}` is not allowed in {s}: use one of {}", kind.word(), fits()));
        }
        let name = self.name.take().map(|n| n.0).unwrap_or_else(|| short_name(&kind));
        Ok(Action { name, kind, timeout: self.timeout.map(|t| t.0) })
    }
}

/// The instance statuses a Eureka server knows (`InstanceStatus`); it answers
/// any other value with 500 (docs/lifecycle.md L19), found out only at stop time.
const EUREKA_STATUSES: [&str; 5] = ["UP", "DOWN", "STARTING", "OUT_OF_SERVICE", "UNKNOWN"];

fn allows(word: &str, section: Section) -> bool {
    match word {
        "exec" | "http" => true,
        "tcp" => matches!(section, Section::Init | Section::Probe),
        "dns" => section == Section::Init,
        _ => section != Section::Probe,
    }
}

/// A default name: the kind and its target, e.g. `tcp db:5432`.
fn short_name(kind: &Kind) -> String {
    match kind {
        Kind::Exec(argv) => argv.first().cloned().unwrap_or_default(),
        Kind::Http(h) => format!("http {}", h.url.shown()),
        Kind::Eureka(e) => format!("eureka {}", e.app.to_uppercase()),
        Kind::Nacos(n) => format!("nacos {}", n.service),
        Kind::Consul(c) => format!("consul {}", c.service_id),
        other => other.describe(),
    }
}

/// An init step, and the `sleep`s of its hooks when it is a sidecar (for the grace check).
#[derive(Deserialize)]
#[serde(try_from = "RawEntry")]
struct InitEntry(Step, Vec<Sleep>);

/// A hook `sleep`: the table it stands in, its length, and the offset of its value.
type Sleep = (&'static str, Duration, usize);

impl TryFrom<RawEntry> for InitEntry {
    type Error = String;
    fn try_from(mut r: RawEntry) -> Result<Self, String> {
        let action = r.action(Section::Init)?;
        if r.restart.is_some() {
            return sidecar(r, action);
        }
        let present = [
            r.stop_signal.is_some(),
            r.user.is_some(),
            r.env.is_some(),
            r.workdir.is_some(),
            r.probe.is_some(),
            r.post_start.is_some(),
            r.pre_stop.is_some(),
        ];
        if let Some((key, _)) = SIDECAR_KEYS[1..].iter().zip(present).find(|(_, p)| *p) {
            return Err(format!(
                "`{key}` is only for a sidecar: add restart = \"always\" to this step to make it one \
                 (an init step without it runs once and takes no {key})"
            ));
        }
        let interval = r.interval.map(|d| d.0).unwrap_or(Duration::from_secs(2));
        if interval.is_zero() {
            return Err("init: interval must be more than 0s".into());
        }
        if r.retries.is_some() && !matches!(action.kind, Kind::Exec(_)) {
            return Err(format!(
                "init: `retries` is for exec steps; a {} step retries every `interval` until `timeout`",
                action.kind.word()
            ));
        }
        Ok(InitEntry(Step { action, interval, retries: r.retries.unwrap_or(0), sidecar: None }, vec![]))
    }
}

/// An `[[init]]` step with `restart = "always"` (docs/lifecycle.md L30-L33): an exec
/// step with the run settings, probes and hooks of a container; its
/// `timeout` is how long the next step waits for it to start.
fn sidecar(mut r: RawEntry, action: Action) -> Result<InitEntry, String> {
    let Kind::Exec(argv) = &action.kind else {
        let word = action.kind.word();
        return Err(format!(
            "a sidecar (restart = \"always\") runs a command: `{word}` cannot be one; make it an `exec` step, \
             or drop restart to wait for {word} once"
        ));
    };
    for (key, set) in [("interval", r.interval.is_some()), ("retries", r.retries.is_some())] {
        if set {
            return Err(format!(
                "`{key}` is not for a sidecar: it is restarted on every exit with the [backoff] delays; remove {key}"
            ));
        }
    }
    let user = match r.user.take() {
        Some(Text(u)) => Some((u.clone(), user::resolve(&u)?)),
        None => None,
    };
    let (sets_user, sets_workdir, sets_env) = (user.is_some(), r.workdir.is_some(), r.env.is_some());
    let run = Main {
        command: argv.iter().map(Into::into).collect(),
        user,
        workdir: r.workdir.take().map(|w| w.0.into()),
        env: r.env.take().unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect(),
    };
    let post_start = r.post_start.take().unwrap_or_default();
    let pre_stop = r.pre_stop.take().unwrap_or_default();
    let sleeps = post_start
        .iter()
        .map(|e| ("init.post_start", &e.0.action, e.1))
        .chain(pre_stop.iter().map(|e| ("init.pre_stop", &e.0, e.1)))
        .filter_map(|(table, a, at)| match a.kind {
            Kind::Sleep(d) => Some((table, d, at?)),
            _ => None,
        })
        .collect();
    let sidecar = Sidecar {
        run,
        sets_user,
        sets_workdir,
        sets_env,
        stop_signal: r.stop_signal.map_or(super::defaults::STOP_SIGNAL, |s| s.0),
        probes: r.probe.take().map(RawProbes::into_vec).unwrap_or_default(),
        post_start: post_start.into_iter().map(|e| e.0).collect(),
        pre_stop: pre_stop.into_iter().map(|e| e.0).collect(),
    };
    let step = Step { action, interval: Duration::from_secs(2), retries: 0, sidecar: Some(Box::new(sidecar)) };
    Ok(InitEntry(step, sleeps))
}

/// A hook entry keeps the offset of its `sleep` value, for the grace check.
#[derive(Deserialize)]
#[serde(try_from = "RawEntry")]
struct PostStartEntry(Hook, Option<usize>);

impl TryFrom<RawEntry> for PostStartEntry {
    type Error = String;
    fn try_from(mut r: RawEntry) -> Result<Self, String> {
        let action = r.action(Section::PostStart)?;
        let kill_on_failure = match r.on_failure.as_ref().map(|t| t.0.as_str()) {
            None | Some("kill") => true,
            Some("ignore") => false,
            Some(other) => return Err(format!("post_start: on_failure '{other}': expected kill or ignore")),
        };
        Ok(PostStartEntry(Hook { action, kill_on_failure }, r.sleep_at()))
    }
}

#[derive(Deserialize)]
#[serde(try_from = "RawEntry")]
struct PreStopEntry(Action, Option<usize>);

impl TryFrom<RawEntry> for PreStopEntry {
    type Error = String;
    fn try_from(mut r: RawEntry) -> Result<Self, String> {
        let action = r.action(Section::PreStop)?;
        Ok(PreStopEntry(action, r.sleep_at()))
    }
}

/// A probe entry; liveness and startup need success_threshold 1 (docs/lifecycle.md L8).
fn probe(mut r: RawEntry, which: &'static str) -> Result<Probe, String> {
    let mut action = r.action(Section::Probe)?;
    let period = r.period.map(|d| d.0).unwrap_or(super::defaults::PROBE_PERIOD);
    if period.is_zero() {
        return Err(format!("probe.{which}: period must be more than 0s"));
    }
    let timeout = action.timeout.unwrap_or(super::defaults::PROBE_TIMEOUT);
    if timeout.is_zero() {
        return Err(format!("probe.{which}: timeout must be more than 0s"));
    }
    action.timeout = Some(timeout);
    let success_threshold = r.success_threshold.unwrap_or(1);
    let failure_threshold = r.failure_threshold.unwrap_or(3);
    if success_threshold == 0 || failure_threshold == 0 {
        return Err(format!("probe.{which}: success_threshold and failure_threshold must be at least 1"));
    }
    if which != "readiness" && success_threshold != 1 {
        return Err(format!(
            "probe.{which}: success_threshold must be 1 for {which} probes (only readiness may count successes)"
        ));
    }
    Ok(Probe {
        which,
        action,
        initial_delay: r.initial_delay.map(|d| d.0).unwrap_or_default(),
        period,
        success_threshold,
        failure_threshold,
    })
}

macro_rules! probe_entry {
    ($t:ident, $which:literal) => {
        #[derive(Deserialize)]
        #[serde(try_from = "RawEntry")]
        struct $t(Probe);

        impl TryFrom<RawEntry> for $t {
            type Error = String;
            fn try_from(r: RawEntry) -> Result<Self, String> {
                probe(r, $which).map($t)
            }
        }
    };
}

probe_entry!(StartupProbe, "startup");
probe_entry!(LivenessProbe, "liveness");
probe_entry!(ReadinessProbe, "readiness");

#[cfg(test)]
mod tests;
