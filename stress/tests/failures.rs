//! Failures are reported: a bad environment variable, and a corrupted object that only the
//! verifier and the final check can see.

mod common;

use common::{last_json, run};

#[test]
fn bad_env_var_exits_nonzero_naming_it() {
    let out = run(
        &["graph", "--iterations", "10", "--json"],
        &[("TANDEM_THREADS", "abc")],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TANDEM_THREADS"), "{stderr}");
}

#[test]
fn verifier_reports_a_corrupted_object_by_id() {
    let out = run(
        &[
            "graph",
            "--threads",
            "1",
            "--slots",
            "1024",
            "--iterations",
            "200000",
            "--heap-max",
            "32M",
            "--corrupt-shared-array",
            "--json",
        ],
        &[("TANDEM_HEAP_MIN", "4M")],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let j = last_json(&out);
    assert!(j["gcs"].as_u64().unwrap() > 0, "{j}");
    assert!(j["verify_errors"].as_u64().unwrap() > 0, "{j}");
    let msg = j["verify_messages"][0].as_str().unwrap();
    assert!(
        msg.contains("object id 0x") && msg.contains("checksum expected"),
        "{msg}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("checksum expected"), "{stderr}");
}
