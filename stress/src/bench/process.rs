//! Runs one case on one collector in a child process (this binary, `bench-one`), so that
//! runs are independent and the child's peak RSS, CPU time and page faults can be read
//! from `wait4`.

use super::child::RunRecord;
use super::spec::Case;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `case` on `collector` with `gc_threads` GC threads; a failure to run, a crash or a
/// timeout comes back as a record with `error` set.
pub fn run_child(case: &Case, collector: &str, gc_threads: usize, timeout: Duration) -> RunRecord {
    match spawn_and_wait(case, collector, gc_threads, timeout) {
        Ok(r) => r,
        Err(e) => RunRecord {
            collector: collector.into(),
            error: Some(e),
            ..Default::default()
        },
    }
}

fn spawn_and_wait(
    case: &Case,
    collector: &str,
    gc_threads: usize,
    timeout: Duration,
) -> Result<RunRecord, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let spec = serde_json::to_string(&case.spec).expect("a spec serialises");
    let threads = case.gc_threads.unwrap_or(gc_threads).to_string();
    let mut cmd = Command::new(exe);
    cmd.args(["bench-one", "--collector", collector, "--spec", &spec])
        .env("TANDEM_THREADS", &threads)
        .env("GC_MARKERS", &threads);
    for (k, v) in &case.env {
        cmd.env(k, v);
    }
    let done = run_command(cmd, timeout)?;
    let mut record = match done.json_line() {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            return Err(format!(
                "unreadable child output ({e}): {}",
                tail(&done.stdout)
            ))
        }
        None => RunRecord {
            collector: collector.into(),
            error: Some(String::new()),
            ..Default::default()
        },
    };
    if let Some(how) = done.failure(timeout) {
        let what = record.error.take().unwrap_or_default();
        record.error = Some(format!("{how}: {what}").trim().to_string());
    }
    record.max_rss_bytes = done.max_rss_bytes;
    record.cpu_s = done.cpu_s;
    record.minor_faults = done.minor_faults;
    record.major_faults = done.major_faults;
    Ok(record)
}

/// A finished child process: its output and what `wait4` said of it.
#[derive(Debug)]
pub struct Finished {
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
    status: libc::c_int,
    killed: bool,
    /// Peak resident set size.
    pub max_rss_bytes: u64,
    /// User plus system time.
    pub cpu_s: f64,
    /// Minor page faults.
    pub minor_faults: u64,
    /// Major page faults.
    pub major_faults: u64,
}

impl Finished {
    /// The last line of stdout that starts with `{`, parsed.
    pub fn json_line<T: serde::de::DeserializeOwned>(&self) -> Option<serde_json::Result<T>> {
        self.stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .map(serde_json::from_str::<T>)
    }

    /// Why the process did not exit with status 0 (killed at the limit, a signal or a
    /// status, with the tail of stderr); None when it did.
    pub fn failure(&self, timeout: Duration) -> Option<String> {
        if self.killed {
            return Some(format!(
                "killed after the {} s time limit",
                timeout.as_secs()
            ));
        }
        if libc::WIFEXITED(self.status) && libc::WEXITSTATUS(self.status) == 0 {
            return None;
        }
        let how = if libc::WIFSIGNALED(self.status) {
            format!("killed by signal {}", libc::WTERMSIG(self.status))
        } else {
            format!("exit status {}", libc::WEXITSTATUS(self.status))
        };
        Some(format!("{how}: {}", tail(&self.stderr)))
    }
}

/// What to show of a failed child's stderr: a panic's message (with `RUST_BACKTRACE` set
/// it comes before the backtrace, which would otherwise fill the tail), else the last lines.
fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    if let Some(i) = lines.iter().rposition(|l| l.contains("panicked at")) {
        let message = lines[i..]
            .iter()
            .take(8)
            .take_while(|l| !l.starts_with("stack backtrace:"))
            .copied()
            .collect::<Vec<_>>();
        return message.join("\n");
    }
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// Runs `cmd` (stdin closed, output captured) and waits for it, killing it after `timeout`.
pub fn run_command(mut cmd: Command, timeout: Duration) -> Result<Finished, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the child process: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.take().expect("stdout is piped");
    let mut err = child.stderr.take().expect("stderr is piped");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let mut killed = false;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child, not yet reaped (only this loop reaps it); the
        // out-pointers are valid locals.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break (status, usage);
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("wait4 failed: {e}"));
        }
        if !killed && start.elapsed() > timeout {
            // SAFETY: `pid` is our child and not yet reaped, so it cannot be another process.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    drop(child);
    Ok(Finished {
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
        status,
        killed,
        max_rss_bytes: usage.ru_maxrss as u64 * 1024,
        cpu_s: crate::report::cpu_seconds(&usage),
        minor_faults: usage.ru_minflt as u64,
        major_faults: usage.ru_majflt as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn a_failed_childs_panic_message_is_shown_not_its_backtrace() {
        let mut err = String::from("starting\nthread 'main' panicked at src/x.rs:1:2:\nboom\n");
        err.push_str("stack backtrace:\n");
        for i in 0..20 {
            err.push_str(&format!("  {i}: frame\n      at ./src/x.rs:{i}:1\n"));
        }
        assert_eq!(tail(&err), "thread 'main' panicked at src/x.rs:1:2:\nboom");
        let plain: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
        assert_eq!(tail(&plain.join("\n")), "3\n4\n5\n6\n7\n8\n9\n10");
    }
}
