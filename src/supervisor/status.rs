//! The status document (`podinit status`): built by the supervisor as one
//! struct and serialised here, in one place; `podinit status` prints the
//! fields by these names.

use std::time::SystemTime;

/// The lifecycle state at one moment.
pub struct Status {
    /// Pending, Running, Terminating, Succeeded or Failed (docs/lifecycle.md L14).
    pub phase: &'static str,
    pub main_pid: Option<i32>,
    pub started_at: SystemTime,
    pub restarts: u32,
    pub ready: bool,
    pub live: bool,
    pub exit_code: Option<i32>,
    /// The preStop part's object (state, took_ms, failed, failures).
    pub pre_stop: String,
    /// Each sidecar: name, pid, restarts, started, ready (a JSON array).
    pub sidecars: String,
    /// The recent events, each a JSON object.
    pub events: Vec<String>,
}

impl Status {
    pub fn to_json(&self) -> String {
        let opt = |v: Option<i32>| v.map_or("null".into(), |v| v.to_string());
        format!(
            "{{\"phase\":\"{}\",\"main_pid\":{},\"started_at\":\"{}\",\"restarts\":{},\"ready\":{},\"live\":{},\"exit_code\":{},\"pre_stop\":{},\"sidecars\":{},\"events\":[{}]}}",
            self.phase,
            opt(self.main_pid),
            crate::events::timestamp(self.started_at),
            self.restarts,
            self.ready,
            self.live,
            opt(self.exit_code),
            self.pre_stop,
            self.sidecars,
            self.events.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_every_field_once() {
        let s = Status {
            phase: "Running",
            main_pid: Some(7),
            started_at: SystemTime::UNIX_EPOCH,
            restarts: 2,
            ready: true,
            live: true,
            exit_code: None,
            pre_stop: "{\"state\":\"not run\"}".into(),
            sidecars: "[]".into(),
            events: vec!["{\"reason\":\"Started\"}".into()],
        };
        let json = s.to_json();
        for want in
            ["\"phase\":\"Running\"", "\"main_pid\":7", "\"restarts\":2", "\"exit_code\":null", "\"ready\":true"]
        {
            assert_eq!(json.matches(want).count(), 1, "{want} in {json}");
        }
        assert!(json.ends_with("\"events\":[{\"reason\":\"Started\"}]}"), "{json}");
    }
}
