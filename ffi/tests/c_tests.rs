//! The C tests: each program in `tests/c/` and the example in `examples/` is compiled with
//! strict warnings against `include/tandem.h` and `libtandem.a`, then run; it must exit
//! with status 0 (its output is shown when it does not). The header, the tests, the
//! example and the benchmark must also compile warning-free under every C compiler we
//! support that is installed.

mod support;

use std::path::PathBuf;
use std::time::Duration;
use support::{
    build_program, compile_only, ffi_dir, installed, run_program, STRICT_CXX_FLAGS, STRICT_FLAGS,
};

/// Generous: the library is a debug build when run by `cargo test`.
const TIMEOUT: Duration = Duration::from_secs(300);

/// The C compilers the header is checked with, and their C++ drivers.
const COMPILERS: &[(&str, &str)] = &[("gcc", "g++"), ("clang", "clang++")];

/// Warnings VM authors commonly enable, on top of the strict set, for the header itself.
const EXTRA_HEADER_WARNINGS: &[&str] = &[
    "-Wconversion",
    "-Wsign-conversion",
    "-Wshadow",
    "-Wcast-qual",
    "-Wstrict-prototypes",
    "-Wmissing-prototypes",
    "-Wundef",
];

/// `flags` followed by `more`.
fn with(flags: &[&'static str], more: &[&'static str]) -> Vec<&'static str> {
    flags.iter().chain(more).copied().collect()
}

fn c_test(name: &str) -> PathBuf {
    ffi_dir().join("tests/c").join(name)
}

/// Builds `src`, runs it with `args`, and returns its standard output.
fn build_and_run(src: PathBuf, args: &[&str]) -> String {
    let name = src.file_stem().unwrap().to_string_lossy().into_owned();
    let exe = build_program(&src, &name, &["-O2"]);
    let out = run_program(&exe, args, TIMEOUT);
    print!("{}", out.stdout);
    eprint!("{}", out.stderr);
    out.stdout
}

#[test]
fn binary_trees_in_four_threads_survive_stop_the_world_collections() {
    let out = build_and_run(c_test("binary_trees.c"), &["stw"]);
    assert!(out.contains("verify errors 0"), "{out}");
}

#[test]
fn binary_trees_in_four_threads_survive_concurrent_collections() {
    let out = build_and_run(c_test("binary_trees.c"), &["concurrent"]);
    assert!(out.contains("verify errors 0"), "{out}");
}

#[test]
fn a_gc_hook_that_collects_hands_its_events_to_the_next_poll() {
    for mode in ["stw", "concurrent"] {
        let out = build_and_run(c_test("hook_nesting.c"), &[mode]);
        assert!(
            out.contains(&format!("hook_nesting {mode}: all checks passed")),
            "{out}"
        );
    }
}

#[test]
fn vm_services_weakrefs_finalizers_destructors_and_control_stop_the_world() {
    let out = build_and_run(c_test("vm_services.c"), &["stw"]);
    assert!(out.contains("vm_services stw: all checks passed"), "{out}");
}

#[test]
fn vm_services_weakrefs_finalizers_destructors_and_control_concurrent() {
    let out = build_and_run(c_test("vm_services.c"), &["concurrent"]);
    assert!(
        out.contains("vm_services concurrent: all checks passed"),
        "{out}"
    );
}

#[test]
fn a_forked_child_collects_with_only_the_forking_thread_stop_the_world() {
    let out = build_and_run(c_test("fork.c"), &["stw"]);
    assert!(out.contains("fork stw: all checks passed"), "{out}");
}

#[test]
fn a_forked_child_collects_with_only_the_forking_thread_concurrent() {
    let out = build_and_run(c_test("fork.c"), &["concurrent"]);
    assert!(out.contains("fork concurrent: all checks passed"), "{out}");
}

#[test]
fn threads_that_exit_attached_or_are_cancelled_end_cleanly_stop_the_world() {
    let out = build_and_run(c_test("threads.c"), &["stw"]);
    assert!(out.contains("threads stw: all checks passed"), "{out}");
}

#[test]
fn threads_that_exit_attached_or_are_cancelled_end_cleanly_concurrent() {
    let out = build_and_run(c_test("threads.c"), &["concurrent"]);
    assert!(
        out.contains("threads concurrent: all checks passed"),
        "{out}"
    );
}

#[test]
fn callbacks_that_call_back_fail_and_a_cleared_hook_stays_quiet_stop_the_world() {
    let out = build_and_run(c_test("callbacks.c"), &["stw"]);
    assert!(out.contains("callbacks stw: all checks passed"), "{out}");
}

#[test]
fn callbacks_that_call_back_fail_and_a_cleared_hook_stays_quiet_concurrent() {
    let out = build_and_run(c_test("callbacks.c"), &["concurrent"]);
    assert!(
        out.contains("callbacks concurrent: all checks passed"),
        "{out}"
    );
}

#[test]
fn misuse_returns_errors_with_messages_and_never_aborts() {
    let out = build_and_run(c_test("misuse.c"), &[]);
    assert!(out.contains("misuse: all checks passed"), "{out}");
}

#[test]
fn with_verify_every_reference_store_is_audited_stop_the_world() {
    let out = build_and_run(c_test("store_audit.c"), &["stw"]);
    assert!(out.contains("store_audit stw: all checks passed"), "{out}");
}

#[test]
fn with_verify_every_reference_store_is_audited_concurrent() {
    let out = build_and_run(c_test("store_audit.c"), &["concurrent"]);
    assert!(
        out.contains("store_audit concurrent: all checks passed"),
        "{out}"
    );
}

#[test]
fn a_failing_trace_callback_is_an_error_for_every_thread_stop_the_world() {
    let out = build_and_run(c_test("faults.c"), &["stw"]);
    assert!(out.contains("faults stw: all checks passed"), "{out}");
}

#[test]
fn a_failing_trace_callback_is_an_error_for_every_thread_concurrent() {
    let out = build_and_run(c_test("faults.c"), &["concurrent"]);
    assert!(
        out.contains("faults concurrent: all checks passed"),
        "{out}"
    );
}

#[test]
fn every_kind_of_root_keeps_objects_and_garbage_is_reclaimed_stop_the_world() {
    build_and_run(c_test("shadow_stack.c"), &["stw"]);
}

#[test]
fn every_kind_of_root_keeps_objects_and_garbage_is_reclaimed_concurrent() {
    build_and_run(c_test("shadow_stack.c"), &["concurrent"]);
}

#[test]
fn barrier_slow_paths_keep_the_snapshot_during_concurrent_marking() {
    let out = build_and_run(c_test("concurrent_barriers.c"), &[]);
    assert!(out.contains("verify errors 0"), "{out}");
}

#[test]
fn four_threads_use_objects_through_the_inline_barriers_while_they_move_stw() {
    let out = build_and_run(c_test("evacuation.c"), &["stw"]);
    assert!(out.contains("verify errors 0"), "{out}");
}

#[test]
fn four_threads_use_objects_through_the_inline_barriers_while_they_move_concurrent() {
    let out = build_and_run(c_test("evacuation.c"), &["concurrent"]);
    assert!(out.contains("verify errors 0"), "{out}");
}

#[test]
fn four_threads_keep_the_remembered_set_through_the_inline_barriers_stw() {
    let out = build_and_run(c_test("evacuation.c"), &["stw", "gen"]);
    assert!(out.contains("verify errors 0"), "{out}");
}

#[test]
fn four_threads_keep_the_remembered_set_through_the_inline_barriers_concurrent() {
    let out = build_and_run(c_test("evacuation.c"), &["concurrent", "all", "gen"]);
    assert!(out.contains("verify errors 0"), "{out}");
}

#[test]
fn evacuate_all_moves_dense_blocks_under_four_threads_stop_the_world() {
    let out = build_and_run(c_test("evacuation.c"), &["stw", "all"]);
    assert!(out.contains("verify errors 0"), "{out}");
}

#[test]
fn evacuate_all_moves_dense_blocks_under_four_threads_concurrent() {
    let out = build_and_run(c_test("evacuation.c"), &["concurrent", "all"]);
    assert!(out.contains("verify errors 0"), "{out}");
}

#[test]
fn hello_gc_example_builds_and_runs() {
    let out = build_and_run(ffi_dir().join("examples/hello_gc.c"), &[]);
    assert!(
        out.contains("list of 1000 conses holding arrays of 499500 items"),
        "{out}"
    );
}

#[test]
fn header_layout_and_constants_match_the_core() {
    use tandem_core::{barriers, mutator, object, safepoint};
    let out = build_and_run(c_test("abi_layout.c"), &[]);
    let c: std::collections::HashMap<&str, u64> = out
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k, v.parse().expect("a number")))
        .collect();
    let expected: &[(&str, u64)] = &[
        (
            "offsetof(tandem_mutator, cursor)",
            mutator::OFFSET_CURSOR as u64,
        ),
        (
            "offsetof(tandem_mutator, limit)",
            mutator::OFFSET_LIMIT as u64,
        ),
        (
            "offsetof(tandem_mutator, ss_top)",
            mutator::OFFSET_SS_TOP as u64,
        ),
        (
            "offsetof(tandem_mutator, ss_limit)",
            mutator::OFFSET_SS_LIMIT as u64,
        ),
        (
            "offsetof(tandem_mutator, ss_base)",
            mutator::OFFSET_SS_BASE as u64,
        ),
        (
            "offsetof(tandem_mutator, state)",
            mutator::OFFSET_STATE as u64,
        ),
        (
            "offsetof(tandem_mutator, barriers)",
            mutator::OFFSET_BARRIERS as u64,
        ),
        (
            "offsetof(tandem_mutator, gc_state)",
            mutator::OFFSET_BARRIERS as u64,
        ),
        ("sizeof(tandem_type_layout)", 16),
        ("TANDEM_MAX_TYPES", object::types::MAX_TYPES as u64),
        (
            "TANDEM_LARGE_OBJECT_THRESHOLD",
            tandem_core::heap::LARGE_OBJECT_THRESHOLD as u64,
        ),
        ("TANDEM_STOP_REQUESTED", safepoint::STOP_REQUESTED as u64),
        (
            "TANDEM_HANDSHAKE_REQUESTED",
            safepoint::HANDSHAKE_REQUESTED as u64,
        ),
        ("TANDEM_POLL_MASK", safepoint::POLL_MASK as u64),
        ("TANDEM_BARRIER_WRITE", barriers::WRITE as u64),
        ("TANDEM_BARRIER_OBJECT", barriers::OBJECT as u64),
        ("TANDEM_BARRIER_ARRAY_COPY", barriers::ARRAY_COPY as u64),
        ("TANDEM_BARRIER_LOAD", barriers::LOAD as u64),
        ("TANDEM_BARRIER_STORE", barriers::STORE as u64),
        ("TANDEM_BARRIER_REMEMBER", barriers::REMEMBER as u64),
        ("TANDEM_GC_MARKING", barriers::MARKING as u64),
        ("TANDEM_ABI_VERSION", mutator::ABI_VERSION as u64),
        ("tandem_abi_version()", mutator::ABI_VERSION as u64),
        ("TANDEM_FLAG_LOGGED", object::FLAG_LOGGED),
        ("TANDEM_FLAG_REMEMBER", object::FLAG_REMEMBER),
    ];
    for (name, want) in expected {
        assert_eq!(
            c.get(name),
            Some(want),
            "{name}: tandem.h disagrees with the core"
        );
    }
    assert_eq!(
        c.len(),
        expected.len(),
        "abi_layout.c prints a value not checked here"
    );
}

#[test]
fn header_and_c_sources_compile_warning_free_with_gcc_and_clang_and_as_cxx() {
    let sources = [
        c_test("binary_trees.c"),
        c_test("misuse.c"),
        c_test("callbacks.c"),
        c_test("store_audit.c"),
        c_test("faults.c"),
        c_test("shadow_stack.c"),
        c_test("concurrent_barriers.c"),
        c_test("abi_layout.c"),
        c_test("threads.c"),
        ffi_dir().join("examples/hello_gc.c"),
        ffi_dir().join("benches/c_fastpath.c"),
    ];
    let header_check = c_test("header_check.c");
    let mut checked = 0;
    for &(cc, cxx) in COMPILERS {
        if !installed(cc) {
            println!("{cc}: not installed, skipped");
            continue;
        }
        compile_only(
            cc,
            &header_check,
            &with(STRICT_FLAGS, EXTRA_HEADER_WARNINGS),
        );
        for src in &sources {
            compile_only(cc, src, &with(STRICT_FLAGS, &["-O2"]));
        }
        println!(
            "{cc}: tandem.h and {} sources compile warning-free",
            sources.len()
        );
        checked += 1;
        if installed(cxx) {
            compile_only(cxx, &header_check, &with(STRICT_CXX_FLAGS, &["-O2"]));
            println!("{cxx}: tandem.h compiles warning-free as C++11");
        } else {
            println!("{cxx}: not installed, C++ check skipped");
        }
    }
    assert!(checked > 0, "none of {COMPILERS:?} is installed");
}
