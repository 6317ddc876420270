//! One source for every default (docs/config.md lists them): the schema, the
//! resolver, `podinit check` and `--help` all read these.

use std::time::Duration;

/// terminationGracePeriodSeconds (docs/lifecycle.md L4).
pub const GRACE: Duration = Duration::from_secs(30);
/// What asks the main process to stop (docs/lifecycle.md L15).
pub const STOP_SIGNAL: i32 = libc::SIGTERM;
/// The signals that start the stop sequence.
pub const STOP_ON: [i32; 1] = [libc::SIGTERM];
/// Probe timing (docs/lifecycle.md L8).
pub const PROBE_PERIOD: Duration = Duration::from_secs(10);
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Crash-loop back-off (docs/lifecycle.md L13): first delay, cap, stable run that resets it.
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
pub const BACKOFF_RESET: Duration = Duration::from_secs(600);
