//! The tables printed on stdout.

use super::c_clients::{CClients, CSummary, COLUMNS};
use super::summary::{CollectorSummary, MarkPoint, Report, TtspPoint};
use std::fmt::Write;

/// Formats rows as an aligned text table (first column left-aligned, the rest right).
fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i == 0 {
                let _ = write!(s, "{c:<w$}");
            } else {
                let _ = write!(s, "  {c:>w$}");
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
    for r in rows {
        out.push('\n');
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out.push('\n');
    out
}

fn f(v: f64, digits: usize) -> String {
    format!("{v:.digits$}")
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

fn mib(b: u64) -> String {
    format!("{:.0}", b as f64 / (1 << 20) as f64)
}

fn thousands(n: u64) -> String {
    format!("{:.0}", n as f64 / 1e3)
}

fn ms(us: f64) -> String {
    if us >= 100_000.0 {
        format!("{:.0}", us / 1e3)
    } else {
        format!("{:.2}", us / 1e3)
    }
}

/// A libgc cell: `-` where libgc did not run.
fn cell(b: Option<&CollectorSummary>, g: impl Fn(&CollectorSummary) -> String) -> String {
    b.map_or_else(|| "-".into(), g)
}

/// Every table of the report.
pub fn tables(r: &Report) -> String {
    let mut out = String::new();
    if !r.libgc.available {
        let _ = writeln!(
            out,
            "\nlibgc NOT AVAILABLE: the comparison did not run, the B and T/B columns are \
             empty (-).\n  why: {}",
            r.libgc.reason.as_deref().unwrap_or("unknown")
        );
    }
    let _ = writeln!(
        out,
        "\nTime and memory: medians of {} runs per collector; T = Tandem, B = libgc, T/B = \
         ratio (below 1: Tandem better); GC = sum of stop-the-world pauses; CPU = process \
         user+system time; GC CPU = CPU time of Tandem's collector threads and of the \
         mutators' mark assists; faults = minor page faults, thousands",
        r.settings.runs
    );
    let rows: Vec<Vec<String>> = r
        .workloads
        .iter()
        .map(|w| {
            let (t, b, q) = (&w.tandem, w.boehm.as_ref(), &w.ratios);
            vec![
                w.name.clone(),
                w.threads.to_string(),
                f(t.wall_s, 2),
                cell(b, |b| f(b.wall_s, 2)),
                ratio(q.wall),
                f(t.cpu_s, 2),
                cell(b, |b| f(b.cpu_s, 2)),
                ratio(q.cpu),
                t.gc_cpu_s.map_or_else(|| "-".to_string(), |s| f(s, 2)),
                f(t.gc_s, 3),
                cell(b, |b| f(b.gc_s, 3)),
                ratio(q.gc_time),
                mib(t.max_rss_bytes),
                cell(b, |b| mib(b.max_rss_bytes)),
                ratio(q.max_rss),
                mib(t.live_set_bytes),
                format!(
                    "{:.1}/{}",
                    t.rss_over_live,
                    cell(b, |b| format!("{:.1}", b.rss_over_live))
                ),
                thousands(t.minor_faults),
                cell(b, |b| thousands(b.minor_faults)),
            ]
        })
        .collect();
    out.push_str(&render(
        &[
            "workload",
            "thr",
            "wall T",
            "wall B",
            "T/B",
            "CPU T",
            "CPU B",
            "T/B",
            "GC CPU T",
            "GC s T",
            "GC s B",
            "T/B",
            "RSS MiB T",
            "RSS B",
            "T/B",
            "live MiB",
            "RSS/live T/B",
            "faults T",
            "faults B",
        ],
        &rows,
    ));

    let _ = writeln!(
        out,
        "\nPauses in ms, all runs pooled (n = pauses per run, median); wait = the longest any \
         mutator waited on the collector in any run (Tandem: pause, mutator-observed stop or \
         allocation stall; libgc: pause); Tandem mode and pause kinds"
    );
    let rows: Vec<Vec<String>> = r
        .workloads
        .iter()
        .map(|w| {
            let (t, b) = (&w.tandem, w.boehm.as_ref());
            let kinds = t
                .pause_kinds
                .iter()
                .map(|(k, n)| format!("{k}:{n}"))
                .collect::<Vec<_>>()
                .join(" ");
            vec![
                w.name.clone(),
                f(t.pauses_per_run, 0),
                ms(t.pause_us.p50),
                ms(t.pause_us.p99),
                ms(t.pause_us.max),
                ms(t.longest_wait_us),
                cell(b, |b| f(b.pauses_per_run, 0)),
                cell(b, |b| ms(b.pause_us.p50)),
                cell(b, |b| ms(b.pause_us.p99)),
                cell(b, |b| ms(b.pause_us.max)),
                cell(b, |b| ms(b.longest_wait_us)),
                ratio(w.ratios.pause_p99),
                format!("{} {kinds}", t.mode),
            ]
        })
        .collect();
    out.push_str(&render(
        &[
            "workload",
            "n T",
            "p50 T",
            "p99 T",
            "max T",
            "wait T",
            "n B",
            "p50 B",
            "p99 B",
            "max B",
            "wait B",
            "p99 T/B",
            "Tandem mode, kinds",
        ],
        &rows,
    ));

    if !r.evacuation.is_empty() {
        out.push_str(&evacuation_rows(r));
    }
    if let Some(c) = &r.c_clients {
        out.push_str(&c_client_rows(c, r.settings.runs));
    }
    let mut shapes: Vec<&str> = r.mark_scaling.iter().map(|p| p.shape.as_str()).collect();
    shapes.dedup();
    for shape in shapes {
        let points: Vec<MarkPoint> = r
            .mark_scaling
            .iter()
            .filter(|p| p.shape == shape)
            .cloned()
            .collect();
        let _ = writeln!(
            out,
            "\nMarking throughput on a fixed live {shape} ({} MiB), explicit collections, \
             Tandem in stw mode: live MiB per second of mark time (mark ms)",
            mib(points[0].live_bytes)
        );
        out.push_str(&scaling_rows(
            &points,
            |p| p.gc_threads,
            |p| format!("{:.0} ({:.1})", p.mb_per_s, p.mark_ms),
            "GC threads",
        ));
    }
    if !r.ttsp_scaling.is_empty() {
        let _ = writeln!(
            out,
            "\nTime-to-safepoint against mutator threads on {} cores, microseconds p50 / p99 / \
             max (libgc: stop signal to all threads suspended)",
            r.machine.cores
        );
        out.push_str(&scaling_rows(
            &r.ttsp_scaling,
            |p: &TtspPoint| p.mutators,
            |p| {
                format!(
                    "{:.0} / {:.0} / {:.0}",
                    p.ttsp_us.p50, p.ttsp_us.p99, p.ttsp_us.max
                )
            },
            "mutators",
        ));
    }
    out
}

/// The C clients' table: Tandem concurrent (C) and stw (S) beside libgc (B).
fn c_client_rows(c: &CClients, runs: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nC clients (stress/c/, against tandem.h alone and gc.h alone), medians of {runs} \
         runs: C = Tandem concurrent, S = Tandem stw, B = libgc; C/B = ratio; GC CPU C = CPU \
         seconds of the collector's threads and assists; RSS MiB; faults in thousands; pause \
         and wait max in ms (Tandem); harness/C = the bench's libgc wall for the same case \
         over plain C's"
    );
    for (side, e) in [
        ("Tandem", &c.status.tandem_error),
        ("libgc", &c.status.libgc_error),
    ] {
        if let Some(e) = e {
            let _ = writeln!(out, "  {side} clients NOT BUILT: {e}");
        }
    }
    let rows: Vec<Vec<String>> = c
        .cases
        .iter()
        .map(|r| {
            let col = |i: usize| r.columns.get(i).and_then(Option::as_ref);
            let (cc, ss, bb) = (col(0), col(1), col(2));
            let opt = |v: Option<&CSummary>, g: &dyn Fn(&CSummary) -> String| {
                v.filter(|s| s.ok_runs > 0).map_or_else(|| "-".into(), g)
            };
            let q = |a: Option<&CSummary>, g: &dyn Fn(&CSummary) -> f64| match (a, bb) {
                (Some(a), Some(b)) if g(b) > 0.0 && a.ok_runs > 0 => ratio(Some(g(a) / g(b))),
                _ => "-".into(),
            };
            vec![
                r.case.name.clone(),
                r.case.tandem_heap_max.unwrap_or("-").to_string(),
                opt(cc, &|s| f(s.wall_s, 2)),
                opt(ss, &|s| f(s.wall_s, 2)),
                opt(bb, &|s| f(s.wall_s, 2)),
                q(cc, &|s| s.wall_s),
                opt(cc, &|s| f(s.gc_cpu_s, 2)),
                opt(cc, &|s| mib(s.max_rss_bytes)),
                opt(ss, &|s| mib(s.max_rss_bytes)),
                opt(bb, &|s| mib(s.max_rss_bytes)),
                q(cc, &|s| s.max_rss_bytes as f64),
                opt(cc, &|s| thousands(s.minor_faults)),
                opt(bb, &|s| thousands(s.minor_faults)),
                opt(cc, &|s| ms(s.pause_max_us)),
                opt(cc, &|s| ms(s.ttsp_max_us)),
                opt(cc, &|s| ms(s.longest_wait_us)),
                opt(ss, &|s| ms(s.pause_max_us)),
                ratio(r.harness_over_plain_c),
            ]
        })
        .collect();
    out.push_str(&render(
        &[
            "C client",
            "max",
            "wall C",
            "wall S",
            "wall B",
            "C/B",
            "GC CPU C",
            "RSS C",
            "RSS S",
            "RSS B",
            "C/B",
            "faults C",
            "faults B",
            "pause C",
            "ttsp C",
            "wait C",
            "pause S",
            "harness/C",
        ],
        &rows,
    ));
    let failed: Vec<String> = c
        .cases
        .iter()
        .flat_map(|r| {
            r.columns
                .iter()
                .zip(COLUMNS)
                .filter_map(move |(s, name)| Some((r, s.as_ref()?, name)))
        })
        .flat_map(|(r, s, name)| {
            s.errors
                .iter()
                .map(move |e| format!("  {} {name}: {e}", r.case.name))
        })
        .collect();
    for l in failed {
        let _ = writeln!(out, "{l}");
    }
    if !c.space_time.is_empty() {
        out.push_str(&space_time_rows(c));
    }
    if !c.evacuation.is_empty() {
        out.push_str(&c_evacuation_rows(c));
    }
    if let Some(lb) = c.load_barrier.as_ref().filter(|lb| lb.runs_ok > 0) {
        let _ = writeln!(
            out,
            "\nLoad barrier (stress/c/load_barrier_tandem.c, {} loads per walk, medians of {} \
             runs): ns per load\nplain acquire load {:.2}, tandem_read_ref LOAD off {:.2}, \
             LOAD on first lap (copying) {:.2}, LOAD on later laps {:.2}{}",
            lb.loads,
            lb.runs_ok,
            lb.raw_ns,
            lb.off_ns,
            lb.first_ns,
            lb.on_ns,
            if lb.load_bit_on {
                ""
            } else {
                " (the LOAD bit was not on in every run: some cycles chose no collection set)"
            }
        );
    }
    for e in c.load_barrier.iter().flat_map(|lb| &lb.errors) {
        let _ = writeln!(out, "  c/load-barrier: {e}");
    }
    out
}

/// The C clients in concurrent mode at each `TANDEM_EVACUATION` setting, with wall time
/// over the `off` setting's (what the load barrier and evacuation cost).
fn c_evacuation_rows(c: &CClients) -> String {
    let off_wall = |case: &str| {
        c.evacuation
            .iter()
            .find(|p| p.case == case && p.mode == "off" && p.summary.ok_runs > 0)
            .map(|p| p.summary.wall_s)
    };
    let rows: Vec<Vec<String>> = c
        .evacuation
        .iter()
        .map(|p| {
            let s = &p.summary;
            vec![
                p.case.clone(),
                p.mode.clone(),
                f(s.wall_s, 2),
                ratio(
                    off_wall(&p.case)
                        .filter(|_| s.ok_runs > 0)
                        .map(|w| s.wall_s / w),
                ),
                mib(s.max_rss_bytes),
                thousands(s.minor_faults),
                ms(s.pause_max_us),
                s.ok_runs.to_string(),
            ]
        })
        .collect();
    format!(
        "\nC clients, concurrent mode, by TANDEM_EVACUATION: medians (wall/off: over the \
         `off` setting's wall)\n{}",
        render(
            &[
                "C client",
                "evacuation",
                "wall s",
                "wall/off",
                "RSS MiB",
                "faults k",
                "pause max ms",
                "runs",
            ],
            &rows,
        )
    )
}

/// The scattered workloads at each `TANDEM_EVACUATION` setting: memory (peak RSS, over the
/// live set, the most held after a cycle) and the pauses evacuation rides on, beside
/// libgc's RSS from the main table.
fn evacuation_rows(r: &Report) -> String {
    let libgc_rss = |w: &str| {
        r.workloads
            .iter()
            .find(|x| x.name == w)
            .and_then(|x| x.boehm.as_ref())
            .map_or_else(|| "-".into(), |b| mib(b.max_rss_bytes))
    };
    let kind = |s: &CollectorSummary, k: &str| {
        s.pause_us_by_kind
            .get(k)
            .map_or_else(|| "-".into(), |p| format!("{} / {}", ms(p.p99), ms(p.max)))
    };
    let rows: Vec<Vec<String>> = r
        .evacuation
        .iter()
        .map(|p| {
            let s = &p.tandem;
            vec![
                p.workload.clone(),
                p.mode.clone(),
                f(s.wall_s, 2),
                f(s.cpu_s, 2),
                mib(s.max_rss_bytes),
                f(s.rss_over_live, 2),
                s.heap_live_max_bytes.map_or_else(|| "-".into(), mib),
                kind(s, "init_mark"),
                kind(s, "final_mark"),
                s.pause_kinds
                    .get("degenerate")
                    .copied()
                    .unwrap_or(0)
                    .to_string(),
                libgc_rss(&p.workload),
            ]
        })
        .collect();
    format!(
        "\nBy TANDEM_EVACUATION (Tandem only, its mode otherwise as above): medians; pauses \
         p99 / max ms pooled over the runs; live after: the most the heap held after a cycle\n{}",
        render(
            &[
                "workload",
                "evacuation",
                "wall s",
                "CPU s",
                "RSS MiB",
                "RSS/live",
                "live after MiB",
                "init_mark",
                "final_mark",
                "degenerate",
                "libgc RSS",
            ],
            &rows,
        )
    )
}

/// The space-time curves as a table: per case and Tandem mode, wall seconds / peak RSS MiB
/// at each growth factor, beside libgc's.
fn space_time_rows(c: &CClients) -> String {
    let mut growths: Vec<f64> = c.space_time.iter().map(|p| p.growth).collect();
    growths.sort_by(f64::total_cmp);
    growths.dedup();
    let cell = |s: &CSummary| {
        if s.ok_runs == 0 {
            "-".to_string()
        } else {
            format!("{} / {}", f(s.wall_s, 2), mib(s.max_rss_bytes))
        }
    };
    let mut rows = Vec::new();
    for r in &c.cases {
        for column in &COLUMNS[..2] {
            let mine: Vec<_> = c
                .space_time
                .iter()
                .filter(|p| p.case == r.case.name && p.column == *column)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let mut row = vec![r.case.name.clone(), column.to_string()];
            row.extend(growths.iter().map(|g| {
                mine.iter()
                    .find(|p| p.growth == *g)
                    .map_or_else(|| "-".into(), |p| cell(&p.summary))
            }));
            row.push(
                r.columns
                    .get(2)
                    .and_then(Option::as_ref)
                    .map_or_else(|| "-".into(), cell),
            );
            rows.push(row);
        }
    }
    let names: Vec<String> = growths.iter().map(|g| format!("growth {g}")).collect();
    let mut header: Vec<&str> = vec!["C client", "Tandem"];
    header.extend(names.iter().map(String::as_str));
    header.push("libgc");
    format!(
        "\nSpace-time (TANDEM_GC_GROWTH): wall s / peak RSS MiB, medians\n{}",
        render(&header, &rows)
    )
}

/// A table with one row per x value and one column per collector.
fn scaling_rows<P>(
    points: &[P],
    x: impl Fn(&P) -> usize,
    cell: impl Fn(&P) -> String,
    x_name: &str,
) -> String
where
    P: HasCollector,
{
    let mut xs: Vec<usize> = points.iter().map(&x).collect();
    xs.sort_unstable();
    xs.dedup();
    let rows: Vec<Vec<String>> = xs
        .iter()
        .map(|&v| {
            let get = |c: &str| {
                points
                    .iter()
                    .find(|p| x(p) == v && p.collector() == c)
                    .map_or_else(|| "-".into(), &cell)
            };
            vec![v.to_string(), get("tandem"), get("boehm")]
        })
        .collect();
    render(&[x_name, "Tandem", "libgc"], &rows)
}

/// A scaling point's collector.
trait HasCollector {
    fn collector(&self) -> &str;
}

impl HasCollector for MarkPoint {
    fn collector(&self) -> &str {
        &self.collector
    }
}

impl HasCollector for TtspPoint {
    fn collector(&self) -> &str {
        &self.collector
    }
}
