//! Each workload, run small under `TANDEM_VERIFY=1`, passes its own checks and the
//! collector's verification after every GC.

mod common;

use common::{assert_clean_run, assert_clean_run_with};

/// The torture setting that moves objects out of every block with a free line.
const EVACUATE_ALL: (&str, &str) = ("TANDEM_EVACUATE_ALL", "1");
/// A one-second graph run small enough for the torture settings.
const SMALL_GRAPH: &[&str] = &[
    "graph",
    "--threads",
    "2",
    "--slots",
    "4096",
    "--seconds",
    "1",
    "--heap-max",
    "64M",
    "--json",
];

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

/// A workload's walk that polls must hold what it still needs on the shadow stack: a poll
/// may start a cycle that moves objects, and only roots are updated. Under the setting
/// that moves nearly every object, a node kept in a local across a poll (as the tree check
/// kept each right child while walking its left sibling) is stale at once.
#[test]
fn binary_trees_check_walk_survives_objects_moving_at_its_polls() {
    assert_clean_run_with(
        &[
            "binary-trees",
            "--threads",
            "2",
            "--depth",
            "16",
            "--seconds",
            "3",
            "--heap-max",
            "64M",
            "--json",
        ],
        &[EVACUATE_ALL],
    );
}

/// The graph's final check walks every reachable node, polling as it goes (see above);
/// here every poll also asks for a cycle (`TANDEM_TORTURE=1`).
#[test]
fn graph_final_check_survives_objects_moving_at_its_polls() {
    let j = assert_clean_run_with(SMALL_GRAPH, &[EVACUATE_ALL, ("TANDEM_TORTURE", "1")]);
    assert!(j["work"].as_u64().unwrap() > 0);
}

/// The young generation under the settings that find missing barriers soonest: objects
/// move in nearly every cycle, most cycles are nursery cycles (a torture cycle is one),
/// and the verifier checks at each nursery cycle's start that every old object referring
/// to a young one is remembered.
#[test]
fn generational_workloads_keep_their_remembered_sets_under_torture() {
    const GENERATIONAL: (&str, &str) = ("TANDEM_GENERATIONAL", "1");
    let j = assert_clean_run_with(
        SMALL_GRAPH,
        &[GENERATIONAL, EVACUATE_ALL, ("TANDEM_TORTURE", "50")],
    );
    assert!(j["nursery_cycles"].as_u64().unwrap() > 0, "{j}");
    for mode in ["concurrent", "stw"] {
        let j = assert_clean_run_with(
            &[
                "binary-trees",
                "--threads",
                "2",
                "--depth",
                "14",
                // A fixed amount of work (one program: about 150 MB of trees, a dozen
                // cycles), not a time: on a loaded machine a debug build ran one cycle in a
                // second, and no nursery cycle.
                "--iterations",
                "1",
                "--heap-max",
                "64M",
                "--json",
            ],
            &[GENERATIONAL, EVACUATE_ALL, ("TANDEM_MODE", mode)],
        );
        assert!(j["nursery_cycles"].as_u64().unwrap() > 0, "{j}");
    }
}
