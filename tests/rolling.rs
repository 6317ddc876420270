//! The rolling-update demonstration as a test: an app under podinit behind a
//! Eureka emulator and a caching load-balancing client, stopped with SIGTERM
//! under steady load. With podinit's preStop (OUT_OF_SERVICE + a 2 s drain) no
//! request fails; the same app under tini loses requests, which shows the test
//! can fail.

mod common;
use common::*;

#[test]
fn rolling_update_loses_no_request_under_podinit() {
    if !can_unshare() {
        return;
    }
    if std::process::Command::new("python3").arg("--version").output().is_err() {
        skip("python3 is not installed");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/rolling_update.py");
    let out = std::process::Command::new("python3")
        .args([script, "--init", "both", "--json", "--podinit", bin()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let results: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let podinit = &results[0];
    assert_eq!(podinit["init"], "podinit");
    assert!(podinit["requests"].as_u64().unwrap() > 300, "too little load to prove anything: {podinit}");
    assert_eq!(podinit["failures"], 0, "requests failed during the rolling update: {podinit}");
    assert_eq!(podinit["exit_code"], 0, "{podinit}");
    assert_eq!(podinit["out_of_service_puts"], 1, "{podinit}");
    assert!(podinit["stop_seconds"].as_f64().unwrap() >= 1.9, "the drain was skipped: {podinit}");
    let tini = &results[1];
    if tini.get("skipped").is_some() {
        skip(&format!("the tini comparison: {tini}"));
        return;
    }
    assert!(
        tini["failures"].as_u64().unwrap() > 0,
        "the same stop under tini lost nothing: the demo proves nothing: {tini}"
    );
}

/// The same with Nacos (the client skips `enabled=false` instances) and
/// Consul (the client asks for passing instances only): podinit's `nacos`
/// and `consul` preStop actions take B out, and no request fails.
#[test]
fn rolling_update_loses_no_request_with_nacos_or_consul() {
    if !can_unshare() {
        return;
    }
    if std::process::Command::new("python3").arg("--version").output().is_err() {
        skip("python3 is not installed");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/rolling_update.py");
    for registry in ["nacos", "consul"] {
        let out = std::process::Command::new("python3")
            .args([script, "--init", "podinit", "--registry", registry, "--json", "--podinit", bin()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "demo failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        let results: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        let r = &results[0];
        assert_eq!(r["registry"], registry, "{r}");
        assert!(r["requests"].as_u64().unwrap() > 300, "too little load to prove anything: {r}");
        assert_eq!(r["failures"], 0, "requests failed during the rolling update with {registry}: {r}");
        assert_eq!(r["exit_code"], 0, "{r}");
        assert_eq!(r["out_of_service_puts"], 1, "B was not taken out of {registry}: {r}");
        assert!(r["stop_seconds"].as_f64().unwrap() >= 1.9, "the drain was skipped: {r}");
    }
}
