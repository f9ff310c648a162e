//! Running the `tandem-stress` binary and reading its JSON line.
// Each test binary uses only some of these helpers.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `tandem-stress` with `args` and `TANDEM_VERIFY=1`, plus `env`.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem-stress"));
    cmd.args(args)
        .env("TANDEM_VERIFY", "1")
        .env_remove("TANDEM_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("cannot run tandem-stress")
}

/// The JSON object on the last line of stdout.
pub fn last_json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "the last stdout line is not JSON ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Asserts a passing run: exit 0, some GCs, no verification errors, the required fields.
pub fn assert_clean_run(args: &[&str]) -> serde_json::Value {
    assert_clean_run_with(args, &[])
}

/// [`assert_clean_run`] with `env` set too.
pub fn assert_clean_run_with(args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let mut all = vec![("TANDEM_HEAP_MIN", "4M")];
    all.extend_from_slice(env);
    let out = run(args, &all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{args:?} failed ({}):\n{stderr}",
        out.status
    );
    let j = last_json(&out);
    for field in [
        "workload",
        "threads",
        "gc_threads",
        "gcs",
        "pause_us",
        "ttsp_us_max",
        "allocated_bytes",
        "wall_s",
        "peak_heap_bytes",
        "verify_errors",
    ] {
        assert!(j.get(field).is_some(), "field {field} missing in {j}");
    }
    for p in ["p50", "p99", "max"] {
        assert!(j["pause_us"][p].is_number(), "pause_us.{p} missing in {j}");
    }
    assert!(j["gcs"].as_u64().unwrap() > 0, "no GC ran: {j}");
    assert_eq!(j["verify_errors"].as_u64(), Some(0), "{j}");
    assert_eq!(j["verify"].as_bool(), Some(true), "{j}");
    j
}
