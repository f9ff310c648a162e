//! `tandem-stress` ends quietly, with the run's exit status, when its stdout or stderr is
//! closed (`tandem-stress graph | head -1`): no panic, no hang. Rust ignores SIGPIPE, so
//! every write after the reader has gone fails with EPIPE, which `println!` turns into a
//! panic and which once panicked the log writer inside a GC thread.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Longer than any run here takes on a loaded machine; reaching it means a hang.
const LIMIT: Duration = Duration::from_secs(120);

fn stress(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem-stress"));
    cmd.args(args)
        .stdin(Stdio::null())
        // A small minimum heap, so that the collector runs (and logs) in a short run.
        .env("TANDEM_HEAP_MIN", "4M")
        .env_remove("TANDEM_LOG");
    cmd
}

/// Waits for `child`, killing it and failing the test if it outlives [`LIMIT`].
fn wait_or_fail(mut child: Child, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("cannot wait for tandem-stress") {
            return status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: tandem-stress hung (killed after {LIMIT:?})");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// All of `child`'s stderr, read on a thread so that a full pipe cannot block it.
fn collect_stderr(child: &mut Child) -> std::thread::JoinHandle<String> {
    let mut err = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    })
}

#[test]
fn stdout_closed_after_the_first_line_ends_the_bench_quietly() {
    let dir = std::env::temp_dir().join(format!("tandem-closed-pipe-{}", std::process::id()));
    // The plan comes first; the tables, printed after the runs, meet the closed pipe.
    let mut child = stress(&[
        "bench",
        "--smoke",
        "--only",
        "graph",
        "--no-scaling",
        "--out",
    ])
    .arg(&dir)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("cannot start tandem-stress");
    let stderr = collect_stderr(&mut child);
    let mut first = String::new();
    let mut out = BufReader::new(child.stdout.take().expect("stdout is piped"));
    out.read_line(&mut first)
        .expect("cannot read the first line");
    drop(out);
    let status = wait_or_fail(child, "bench with stdout closed");
    let stderr = stderr.join().expect("the stderr reader panicked");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        first.starts_with("tandem-stress bench"),
        "first line: {first}"
    );
    assert!(!stderr.contains("panicked"), "a panic:\n{stderr}");
    assert_eq!(status.code(), Some(0), "{status}; stderr:\n{stderr}");
}

#[test]
fn stdout_closed_before_the_summary_keeps_the_runs_exit_status() {
    let mut child = stress(&["graph", "--seconds", "1", "--threads", "2", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start tandem-stress");
    let stderr = collect_stderr(&mut child);
    // The reader goes before the run ends: both the summary and the JSON line fail.
    drop(child.stdout.take());
    let status = wait_or_fail(child, "graph with stdout closed");
    let stderr = stderr.join().expect("the stderr reader panicked");
    assert!(!stderr.contains("panicked"), "a panic:\n{stderr}");
    assert_eq!(status.code(), Some(0), "{status}; stderr:\n{stderr}");
}

#[test]
fn stderr_closed_under_gc_logging_neither_panics_nor_hangs() {
    // Every pause logs from a GC thread (info and debug); each write meets the closed pipe.
    let mut child = stress(&["graph", "--seconds", "1", "--threads", "2"])
        .env("TANDEM_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start tandem-stress");
    drop(child.stderr.take());
    let out = child.stdout.take().expect("stdout is piped");
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(out), &mut s);
        s
    });
    // A panic (in main: status 101) or a hang would show here; the message itself had
    // nowhere to go.
    let status = wait_or_fail(child, "graph with stderr closed");
    let stdout = stdout.join().expect("the stdout reader panicked");
    assert_eq!(status.code(), Some(0), "{status}; stdout:\n{stdout}");
    assert!(
        stdout.contains("tandem-stress graph: ok"),
        "stdout:\n{stdout}"
    );
}
