//! Any text as a podinit config file: loading, `check`'s plan and resolving it
//! may refuse the text, but must never panic (a panic in PID 1 kills the container).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        podinit::fuzz_config(text);
    }
});
