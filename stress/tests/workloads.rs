//! Each workload, run small under `TANDEM_VERIFY=1`, passes its own checks and the
//! collector's verification after every GC.

mod common;

use common::assert_clean_run;

#[test]
fn binary_trees_item_checks_and_verification_pass() {
    let j = assert_clean_run(&[
        "binary-trees",
        "--threads",
        "2",
        "--depth",
        "12",
        "--iterations",
        "1",
        "--heap-max",
        "64M",
        "--json",
    ]);
    assert_eq!(j["workload"], "binary-trees");
    assert_eq!(j["threads"], 2);
}

#[test]
fn graph_shared_pointer_overwrites_pass_verification() {
    let j = assert_clean_run(&[
        "graph",
        "--threads",
        "3",
        "--slots",
        "4096",
        "--seconds",
        "1.5",
        "--heap-max",
        "64M",
        "--json",
    ]);
    assert_eq!(j["workload"], "graph");
    assert!(j["work"].as_u64().unwrap() > 0);
}

#[test]
fn graph_runs_a_fixed_number_of_iterations() {
    let j = assert_clean_run(&[
        "graph",
        "--threads",
        "2",
        "--slots",
        "1024",
        "--iterations",
        "100000",
        "--heap-max",
        "32M",
        "--json",
    ]);
    assert_eq!(j["work"], 200_000);
}

#[test]
fn large_objects_pass_verification() {
    let j = assert_clean_run(&[
        "large",
        "--threads",
        "2",
        "--seconds",
        "1.5",
        "--max-size",
        "128K",
        "--heap-max",
        "64M",
        "--json",
    ]);
    assert_eq!(j["workload"], "large");
}
