//! `tandem-stress bench --smoke` runs every benchmark workload on Tandem and on libgc and
//! writes a complete report: both collectors and the ratios for every workload, the
//! scaling points, and the plots. Where libgc is not installed the libgc half is skipped
//! with a message (and fails under `TANDEM_STRESS_REQUIRE_LIBGC=1`, as in CI); the report must
//! then say that the comparison did not run.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs `tandem-stress bench --smoke --runs 1` plus `args` into `dir`, with `env`; asserts
/// exit 0 and returns the output and report.json.
fn smoke(dir: &PathBuf, args: &[&str], env: &[(&str, &str)]) -> (Output, Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem-stress"));
    cmd.args(["bench", "--smoke", "--runs", "1", "--out"])
        .arg(dir)
        .args(args)
        // A small minimum heap, so that Tandem collects even at these sizes.
        .env("TANDEM_HEAP_MIN", "4M")
        .env_remove("TANDEM_LOG")
        .env_remove("TANDEM_THREADS")
        .env_remove("GC_MARKERS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("cannot run tandem-stress bench");
    assert!(
        out.status.success(),
        "bench --smoke failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("report.json")).expect("report.json is written"),
    )
    .expect("report.json is JSON");
    (out, report)
}

/// Whether the libgc half of a test must run: true where libgc was loaded; where it was
/// not, false with a message, or a failure under `TANDEM_STRESS_REQUIRE_LIBGC=1`.
fn libgc_ran(test: &str, report: &Value) -> bool {
    if report["libgc"]["available"] == true {
        return true;
    }
    let reason = &report["libgc"]["reason"];
    assert!(
        std::env::var("TANDEM_STRESS_REQUIRE_LIBGC").as_deref() != Ok("1"),
        "{test}: TANDEM_STRESS_REQUIRE_LIBGC=1 but libgc is not available: {reason}"
    );
    eprintln!("{test}: SKIPPED the libgc comparison (libgc is not available: {reason})");
    false
}

/// Checks one collector's summary of one workload.
fn assert_side_ran(name: &Value, side: &str, s: &Value) {
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

#[test]
fn bench_smoke_reports_both_collectors_with_ratios_and_plots() {
    let test = "bench_smoke_reports_both_collectors_with_ratios_and_plots";
    let dir = out_dir("smoke");
    let (out, report) = smoke(&dir, &[], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Time and memory"), "no table:\n{stdout}");
    let with_libgc = libgc_ran(test, &report);

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
        assert_side_ran(name, "tandem", &w["tandem"]);
        assert!(!w["tandem"]["mode"].as_str().unwrap().is_empty(), "{name}");
        if with_libgc {
            assert_side_ran(name, "boehm", &w["boehm"]);
            assert_eq!(w["boehm"]["mode"], "boehm", "{name}");
            for r in ["wall", "cpu", "gc_time", "max_rss"] {
                assert!(w["ratios"][r].is_number(), "{name}: ratio {r} missing: {w}");
            }
        }
        let plot = w["plot"].as_str().expect("a plot per workload");
        let svg = std::fs::read_to_string(dir.join(plot)).expect("the plot file exists");
        assert!(
            svg.starts_with("<svg") || svg.contains("<svg"),
            "{plot} is not SVG"
        );
    }
    let sides: &[&str] = if with_libgc {
        &["tandem", "boehm"]
    } else {
        &["tandem"]
    };
    for (key, field) in [("mark_scaling", "mb_per_s"), ("ttsp_scaling", "ttsp_us")] {
        let points = report[key].as_array().expect("scaling points");
        for c in sides {
            assert!(
                points
                    .iter()
                    .any(|p| p["collector"] == *c && !p[field].is_null()),
                "no {c} point in {key}: {report}"
            );
        }
    }
    assert!(dir.join("scaling.svg").exists());
    c_clients_ran(test, &report, with_libgc);
    space_time_ran(&dir, &report);
    evacuation_ran(&report);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The evacuation sweep ran: graph and pypy at every `TANDEM_EVACUATION` setting with its
/// memory figures and pauses by kind, each C case at every setting, and the load-barrier
/// probe with the LOAD bit on and a time per load for each walk.
fn evacuation_ran(report: &Value) {
    let points = report["evacuation"].as_array().expect("evacuation points");
    for workload in ["graph/", "pypy/"] {
        for mode in ["off", "pause", "concurrent"] {
            let p = points
                .iter()
                .find(|p| {
                    p["workload"].as_str().unwrap_or("").starts_with(workload) && p["mode"] == mode
                })
                .unwrap_or_else(|| panic!("no {workload} {mode} point: {points:?}"));
            let t = &p["tandem"];
            assert_side_ran(&p["workload"], mode, t);
            assert!(t["rss_over_live"].as_f64().unwrap() > 0.0, "{p}");
            let kinds = t["pause_us_by_kind"].as_object().expect("pauses by kind");
            assert!(
                kinds.values().all(|k| k["max"].as_f64().unwrap() > 0.0),
                "{p}"
            );
        }
    }
    let c = &report["c_clients"];
    let c_points = c["evacuation"].as_array().expect("C evacuation points");
    for case in c["cases"].as_array().expect("C client cases") {
        let name = &case["case"]["name"];
        for mode in ["off", "pause", "concurrent"] {
            assert!(
                c_points.iter().any(|p| p["case"] == *name
                    && p["mode"] == mode
                    && p["summary"]["ok_runs"] == 1
                    && p["summary"]["wall_s"].as_f64().unwrap() > 0.0),
                "no {name} {mode} point: {c_points:?}"
            );
        }
    }
    let lb = &c["load_barrier"];
    assert_eq!(lb["runs_ok"], 1, "{lb}");
    assert_eq!(
        lb["load_bit_on"], true,
        "the probe's cycle chose no collection set: {lb}"
    );
    for walk in ["raw_ns", "off_ns", "first_ns", "on_ns"] {
        assert!(lb[walk].as_f64().unwrap() > 0.0, "{walk}: {lb}");
    }
}

/// Every C case has a space-time point per Tandem mode and growth factor, each from a run
/// that worked, and the plot was drawn.
fn space_time_ran(dir: &std::path::Path, report: &Value) {
    let c = &report["c_clients"];
    let points = c["space_time"].as_array().expect("space-time points");
    for case in c["cases"].as_array().expect("C client cases") {
        let name = &case["case"]["name"];
        for column in ["tandem-concurrent", "tandem-stw"] {
            let mine: Vec<&Value> = points
                .iter()
                .filter(|p| p["case"] == *name && p["column"] == column)
                .collect();
            assert!(mine.len() >= 2, "{name} {column}: {mine:?}");
            for p in mine {
                assert_eq!(p["summary"]["ok_runs"], 1, "{p}");
                assert!(p["summary"]["max_rss_bytes"].as_u64().unwrap() > 0, "{p}");
                assert!(p["growth"].as_f64().unwrap() > 1.0, "{p}");
            }
        }
    }
    assert!(dir.join("space_time.svg").exists());
}

/// The C clients (against tandem.h, and against gc.h where libgc's header is installed)
/// built, ran and checked their trees and caches in every column.
fn c_clients_ran(test: &str, report: &Value, with_libgc: bool) {
    let c = &report["c_clients"];
    assert!(
        c["status"]["tandem_error"].is_null(),
        "the Tandem C clients did not build: {}",
        c["status"]["tandem_error"]
    );
    let libgc_built = c["status"]["libgc_error"].is_null();
    if with_libgc && !libgc_built {
        assert!(
            std::env::var("TANDEM_STRESS_REQUIRE_LIBGC").as_deref() != Ok("1"),
            "{test}: TANDEM_STRESS_REQUIRE_LIBGC=1 but the libgc C clients did not build: {}",
            c["status"]["libgc_error"]
        );
        eprintln!(
            "{test}: SKIPPED the plain-C libgc clients: {}",
            c["status"]["libgc_error"]
        );
    }
    let cases = c["cases"].as_array().expect("C client cases");
    for program in ["c/binary-trees", "c/gcbench", "c/weak-cache"] {
        let case = cases
            .iter()
            .find(|r| {
                r["case"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with(program)
            })
            .unwrap_or_else(|| panic!("no {program} case in {c}"));
        let columns = case["columns"].as_array().expect("columns");
        let sides = if libgc_built { 3 } else { 2 };
        for col in &columns[..sides] {
            assert_eq!(col["ok_runs"], 1, "{program}: {col}");
            assert!(col["wall_s"].as_f64().unwrap() > 0.0, "{program}: {col}");
            assert!(
                col["max_rss_bytes"].as_u64().unwrap() > 0,
                "{program}: {col}"
            );
        }
    }
}

#[test]
fn bench_without_libgc_runs_tandem_and_says_the_comparison_did_not_run() {
    let dir = out_dir("no-libgc");
    let (out, report) = smoke(
        &dir,
        &["--only", "graph", "--no-scaling"],
        &[("TANDEM_STRESS_LIBGC", "off")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(report["libgc"]["available"], false, "{report}");
    let reason = report["libgc"]["reason"].as_str().expect("a reason");
    assert!(reason.contains("TANDEM_STRESS_LIBGC=off"), "{reason}");
    assert!(
        stdout.contains("libgc NOT AVAILABLE: the comparison did not run"),
        "the tables do not say that libgc did not run:\n{stdout}"
    );
    let workloads = report["workloads"].as_array().expect("a workloads array");
    assert!(!workloads.is_empty(), "{report}");
    for w in workloads {
        assert_side_ran(&w["name"], "tandem", &w["tandem"]);
        assert!(w["boehm"].is_null(), "libgc figures without libgc: {w}");
        assert!(w["ratios"]["wall"].is_null(), "a ratio without libgc: {w}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
