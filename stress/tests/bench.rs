//! `tandem-stress bench --smoke` runs every benchmark workload on Tandem and on libgc and
//! writes a complete report: both collectors and the ratios for every workload, the
//! scaling points, and the plots.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn out_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-bench-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn bench_smoke_reports_both_collectors_with_ratios_and_plots() {
    let dir = out_dir();
    // A small minimum heap, so that Tandem collects even at these sizes.
    let out = Command::new(env!("CARGO_BIN_EXE_tandem-stress"))
        .args(["bench", "--smoke", "--runs", "1", "--out"])
        .arg(&dir)
        .env("TANDEM_HEAP_MIN", "4M")
        .env_remove("TANDEM_LOG")
        .env_remove("TANDEM_THREADS")
        .env_remove("GC_MARKERS")
        .output()
        .expect("cannot run tandem-stress bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench --smoke failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("Time and memory"), "no table:\n{stdout}");

    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("report.json")).expect("report.json is written"),
    )
    .expect("report.json is JSON");
    let workloads = report["workloads"].as_array().expect("a workloads array");
    for family in ["binary-trees", "gcbench", "graph", "pypy", "large"] {
        assert!(
            workloads
                .iter()
                .any(|w| w["name"].as_str().unwrap_or("").starts_with(family)),
            "no {family} case in {report}"
        );
    }
    for w in workloads {
        let name = &w["name"];
        for side in ["tandem", "boehm"] {
            let s = &w[side];
            assert_eq!(s["runs_ok"], 1, "{name} {side}: {s}");
            assert!(s["wall_s"].as_f64().unwrap() > 0.0, "{name} {side}: {s}");
            assert!(
                s["max_rss_bytes"].as_u64().unwrap() > 0,
                "{name} {side}: {s}"
            );
            assert!(
                s["live_set_bytes"].as_u64().unwrap() > 0,
                "{name} {side}: {s}"
            );
            for p in ["p50", "p99", "max"] {
                assert!(s["pause_us"][p].is_number(), "{name} {side}: {s}");
            }
        }
        assert!(!w["tandem"]["mode"].as_str().unwrap().is_empty(), "{name}");
        assert_eq!(w["boehm"]["mode"], "boehm", "{name}");
        for r in ["wall", "cpu", "gc_time", "max_rss"] {
            assert!(w["ratios"][r].is_number(), "{name}: ratio {r} missing: {w}");
        }
        let plot = w["plot"].as_str().expect("a plot per workload");
        let svg = std::fs::read_to_string(dir.join(plot)).expect("the plot file exists");
        assert!(
            svg.starts_with("<svg") || svg.contains("<svg"),
            "{plot} is not SVG"
        );
    }
    for (key, field) in [("mark_scaling", "mb_per_s"), ("ttsp_scaling", "ttsp_us")] {
        let points = report[key].as_array().expect("scaling points");
        for c in ["tandem", "boehm"] {
            assert!(
                points
                    .iter()
                    .any(|p| p["collector"] == c && !p[field].is_null()),
                "no {c} point in {key}: {report}"
            );
        }
    }
    assert!(dir.join("scaling.svg").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
