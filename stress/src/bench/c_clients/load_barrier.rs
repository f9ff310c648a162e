//! The load-barrier probe (`stress/c/load_barrier_tandem.c`): nanoseconds per
//! `tandem_read_ref` along a ring of scattered cells, with the LOAD bit off (the inline fast
//! path) and on (every load through the slow path, the first walk copying the cells out of
//! the collection set), beside plain acquire loads. Tandem only, concurrent mode with
//! concurrent evacuation, whatever the environment says.

use super::super::process;
use super::super::spec::Suite;
use super::super::summary::median;
use super::Built;
use serde::Serialize;
use std::process::Command;
use std::time::Duration;

/// What one run of the probe prints.
#[derive(Debug, Default, Clone, serde::Deserialize)]
struct Printed {
    loads: u64,
    load_bit: u8,
    raw_ns: f64,
    off_ns: f64,
    first_ns: f64,
    on_ns: f64,
}

/// Medians over the probe's runs, in nanoseconds per load.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadBarrier {
    /// Successful runs.
    pub runs_ok: usize,
    /// Loads per timed walk (the first walk: one lap of the ring).
    pub loads: u64,
    /// Whether the LOAD bit was on during the "on" walks of every run (off when the
    /// cycle chose no collection set).
    pub load_bit_on: bool,
    /// Plain acquire loads.
    pub raw_ns: f64,
    /// `tandem_read_ref`, LOAD bit off.
    pub off_ns: f64,
    /// `tandem_read_ref`, LOAD bit on, first lap: each load copies its cell and heals the
    /// field (medians of the runs whose bit was on, as for `on_ns`).
    pub first_ns: f64,
    /// `tandem_read_ref`, LOAD bit on, later laps: the slow path finds nothing to move.
    pub on_ns: f64,
    /// The failures' messages.
    pub errors: Vec<String>,
}

/// The probe's arguments for a suite: cells in the ring, laps per timed walk.
fn args(suite: Suite) -> [&'static str; 2] {
    match suite {
        Suite::Smoke => ["4096", "5"],
        Suite::Quick | Suite::Full => ["65536", "50"],
    }
}

/// Runs the probe `runs` times; None when the Tandem clients did not build.
/// `report(line, ok)` hears each run.
pub fn run(
    built: &Built,
    suite: Suite,
    runs: usize,
    gc_threads: usize,
    timeout: Duration,
    mut report: impl FnMut(String, bool),
) -> Option<LoadBarrier> {
    let exe = built.tandem.as_ref().ok()?.load_barrier.as_ref()?;
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for run in 0..runs {
        let mut cmd = Command::new(exe);
        cmd.args(args(suite))
            .env("TANDEM_THREADS", gc_threads.to_string())
            .env("TANDEM_MODE", "concurrent")
            .env("TANDEM_EVACUATION", "concurrent");
        let outcome = process::run_command(cmd, timeout).and_then(|done| {
            if let Some(why) = done.failure(timeout) {
                return Err(why);
            }
            match done.json_line::<Printed>() {
                Some(Ok(p)) => Ok(p),
                Some(Err(e)) => Err(format!("unreadable result line: {e}")),
                None => Err(format!("no result line: {}", done.stdout.trim())),
            }
        });
        let line = match &outcome {
            Ok(p) => format!(
                "c/load-barrier run {}: {:.1} / {:.1} / {:.1} / {:.1} ns (raw / off / first / on)",
                run + 1,
                p.raw_ns,
                p.off_ns,
                p.first_ns,
                p.on_ns
            ),
            Err(e) => format!("c/load-barrier run {}: FAILED: {e}", run + 1),
        };
        report(line, outcome.is_ok());
        match outcome {
            Ok(p) => ok.push(p),
            Err(e) => errors.push(e),
        }
    }
    let med = |runs: &[&Printed], f: fn(&Printed) -> f64| {
        median(&runs.iter().map(|p| f(p)).collect::<Vec<_>>())
    };
    let all: Vec<&Printed> = ok.iter().collect();
    // The "on" walks only of runs whose cycle did turn the bit on.
    let on: Vec<&Printed> = ok.iter().filter(|p| p.load_bit != 0).collect();
    Some(LoadBarrier {
        runs_ok: ok.len(),
        loads: ok.first().map_or(0, |p| p.loads),
        load_bit_on: !ok.is_empty() && on.len() == ok.len(),
        raw_ns: med(&all, |p| p.raw_ns),
        off_ns: med(&all, |p| p.off_ns),
        first_ns: med(&on, |p| p.first_ns),
        on_ns: med(&on, |p| p.on_ns),
        errors,
    })
}
