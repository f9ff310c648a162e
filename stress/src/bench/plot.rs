//! SVG plots: per workload, the pauses of one run of each collector over time (the run with
//! the median wall time) and a histogram of all runs' pauses in power-of-two buckets; the
//! two scaling curves; and the C clients' space-time curves.

use super::summary::{MarkPoint, TtspPoint};
use crate::collector::Pause;
use plotters::prelude::*;
use std::path::Path;

const TANDEM: RGBColor = RGBColor(31, 119, 180);
const BOEHM: RGBColor = RGBColor(214, 39, 40);
const STW: RGBColor = RGBColor(255, 127, 14);

fn err<E: std::fmt::Display>(e: E) -> String {
    format!("plot: {e}")
}

/// Draws `chart`'s legend at `at`.
fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    at: SeriesLabelPosition,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(at)
        .draw()
        .map_err(err)
}

/// The pauses of one collector for a workload plot.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// The run shown over time.
    pub timeline: &'a [Pause],
    /// Every run's pause durations, nanoseconds.
    pub all_ns: &'a [u64],
    /// Runs pooled in `all_ns`.
    pub runs: usize,
}

/// Histogram bucket of a pause: `k` for [2^k, 2^(k+1)) microseconds (0 also holds < 1 us).
fn bucket(ns: u64) -> usize {
    let us = ns / 1000;
    if us == 0 {
        0
    } else {
        63 - us.leading_zeros() as usize
    }
}

fn label_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.0}s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.0}ms", us / 1e3)
    } else {
        format!("{us:.0}us")
    }
}

/// Writes the workload plot to `path`.
pub fn workload(
    path: &Path,
    title: &str,
    tandem: Series<'_>,
    boehm: Series<'_>,
) -> Result<(), String> {
    let root = SVGBackend::new(path, (1000, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (top, bottom) = root.split_vertically(380);

    let ms = |p: &Pause| (p.dur_ns as f64 / 1e6).max(1e-3);
    let secs = |p: &Pause| p.start_ns as f64 / 1e9;
    let both = tandem.timeline.iter().chain(boehm.timeline);
    let x_max = both.clone().map(secs).fold(0.0, f64::max) * 1.05 + 1e-3;
    let y_max = both.clone().map(ms).fold(1e-3, f64::max) * 2.0;
    let y_min = both.map(ms).fold(f64::INFINITY, f64::min).min(y_max / 10.0) / 2.0;
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!("{title}: pauses over time (median run)"),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the collector started")
        .y_desc("pause (ms, log)")
        .draw()
        .map_err(err)?;
    for (name, s, color) in [("Tandem", tandem, TANDEM), ("libgc", boehm, BOEHM)] {
        chart
            .draw_series(
                s.timeline
                    .iter()
                    .map(|p| Circle::new((secs(p), ms(p)), 3, color.mix(0.7).filled())),
            )
            .map_err(err)?
            .label(if s.runs == 0 {
                format!("{name} (did not run)")
            } else {
                format!("{name} ({} pauses)", s.timeline.len())
            })
            .legend(move |(x, y)| Circle::new((x, y), 4, color.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;

    let counts = |s: &Series<'_>| {
        let mut c = vec![0f64; 40];
        for &ns in s.all_ns {
            c[bucket(ns).min(39)] += 1.0 / s.runs.max(1) as f64;
        }
        c
    };
    let (ct, cb) = (counts(&tandem), counts(&boehm));
    let used = |c: &[f64]| c.iter().rposition(|&v| v > 0.0);
    let first = |c: &[f64]| c.iter().position(|&v| v > 0.0);
    let hi = used(&ct).max(used(&cb)).unwrap_or(0) + 1;
    let lo = first(&ct).into_iter().chain(first(&cb)).min().unwrap_or(0);
    let y_top = ct.iter().chain(&cb).fold(1.0f64, |a, &b| a.max(b)) * 1.15;
    let mut hist = ChartBuilder::on(&bottom)
        .caption(
            "pause histogram: pauses per run by duration",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(lo as f64..hi as f64, 0f64..y_top)
        .map_err(err)?;
    hist.configure_mesh()
        .x_desc("pause duration (bucket [2^k, 2^(k+1)) us)")
        .y_desc("pauses per run")
        .x_labels((hi - lo).clamp(2, 24))
        .x_label_formatter(&|k| label_us(2f64.powf(k.floor())))
        .disable_x_mesh()
        .draw()
        .map_err(err)?;
    for (name, c, color, off) in [("Tandem", &ct, TANDEM, 0.05), ("libgc", &cb, BOEHM, 0.5)] {
        hist.draw_series(
            c.iter()
                .enumerate()
                .filter(|(_, &v)| v > 0.0)
                .map(|(k, &v)| {
                    let x0 = k as f64 + off;
                    Rectangle::new([(x0, 0.0), (x0 + 0.45, v)], color.mix(0.8).filled())
                }),
        )
        .map_err(err)?
        .label(name)
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    legend(&mut hist, SeriesLabelPosition::UpperRight)?;
    root.present().map_err(err)
}

/// Writes the scaling plot: marking throughput against GC threads, and time-to-safepoint
/// (p99 and max) against mutator threads.
pub fn scaling(path: &Path, mark: &[MarkPoint], ttsp: &[TtspPoint]) -> Result<(), String> {
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (left, right) = root.split_horizontally(500);

    let x_max = mark.iter().map(|p| p.gc_threads).max().unwrap_or(1) as f64 + 0.5;
    let y_max = mark.iter().map(|p| p.mb_per_s).fold(1.0, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(&left)
        .caption("marking throughput", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.5f64..x_max, 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("GC threads")
        .y_desc("live MiB / s of marking")
        .draw()
        .map_err(err)?;
    let mut shapes: Vec<&str> = mark.iter().map(|p| p.shape.as_str()).collect();
    shapes.dedup();
    // The first shape (the graph) in full colour, the others paler.
    let series = shapes.iter().enumerate().flat_map(|(i, &s)| {
        let alpha = if i == 0 { 1.0 } else { 0.45 };
        [("tandem", TANDEM), ("boehm", BOEHM)].map(|(n, c)| (s, n, c.mix(alpha)))
    });
    for (shape, name, color) in series {
        let pts: Vec<(f64, f64)> = mark
            .iter()
            .filter(|p| p.collector == name && p.shape == shape && p.mb_per_s > 0.0)
            .map(|p| (p.gc_threads as f64, p.mb_per_s))
            .collect();
        let who = if name == "tandem" { "Tandem" } else { "libgc" };
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(format!("{who}, {shape}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(err)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;

    let x_max = ttsp.iter().map(|p| p.mutators).max().unwrap_or(1) as f64 * 1.5;
    let y_max = ttsp.iter().map(|p| p.ttsp_us.max).fold(10.0, f64::max) * 2.0;
    let mut chart = ChartBuilder::on(&right)
        .caption("time-to-safepoint", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d((0.8f64..x_max).log_scale(), (1f64..y_max).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("mutator threads (log)")
        .y_desc("us (log)")
        .draw()
        .map_err(err)?;
    for (name, color) in [("tandem", TANDEM), ("boehm", BOEHM)] {
        let label = if name == "tandem" { "Tandem" } else { "libgc" };
        for (what, pick, dashed) in [
            (
                "p99",
                (|p: &TtspPoint| p.ttsp_us.p99) as fn(&TtspPoint) -> f64,
                false,
            ),
            ("max", |p: &TtspPoint| p.ttsp_us.max, true),
        ] {
            let pts: Vec<(f64, f64)> = ttsp
                .iter()
                .filter(|p| p.collector == name)
                .map(|p| (p.mutators as f64, pick(p).max(1.0)))
                .collect();
            let style = if dashed {
                color.mix(0.5).stroke_width(1)
            } else {
                color.stroke_width(2)
            };
            chart
                .draw_series(LineSeries::new(pts, style))
                .map_err(err)?
                .label(format!("{label} {what}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
        }
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(err)
}

/// Writes the C clients' space-time curves to `path`: per case, wall time against peak
/// RSS for each Tandem mode over the growth factors (each point labelled with its factor),
/// beside libgc's point.
pub fn space_time(
    path: &Path,
    cases: &[super::c_clients::CReport],
    points: &[super::c_clients::SpaceTimePoint],
) -> Result<(), String> {
    let shown: Vec<&super::c_clients::CReport> = cases
        .iter()
        .filter(|c| points.iter().any(|p| p.case == c.case.name))
        .collect();
    let root = SVGBackend::new(path, (460 * shown.len().max(1) as u32, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let panels = root.split_evenly((1, shown.len().max(1)));
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    for (panel, case) in panels.iter().zip(shown) {
        let name = &case.case.name;
        let mine: Vec<_> = points
            .iter()
            .filter(|p| &p.case == name && p.summary.ok_runs > 0)
            .collect();
        let libgc = case
            .columns
            .get(2)
            .and_then(Option::as_ref)
            .filter(|s| s.ok_runs > 0);
        let xs = mine
            .iter()
            .map(|p| mib(p.summary.max_rss_bytes))
            .chain(libgc.map(|s| mib(s.max_rss_bytes)));
        let ys = mine
            .iter()
            .map(|p| p.summary.wall_s)
            .chain(libgc.map(|s| s.wall_s));
        let x_max = xs.fold(1.0, f64::max) * 1.15;
        let y_max = ys.fold(0.01, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(panel)
            .caption(name.as_str(), ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("peak RSS (MiB)")
            .y_desc("wall (s)")
            .draw()
            .map_err(err)?;
        for (column, label, color) in [
            ("tandem-concurrent", "Tandem concurrent", TANDEM),
            ("tandem-stw", "Tandem stw", STW),
        ] {
            let pts: Vec<(f64, f64, f64)> = mine
                .iter()
                .filter(|p| p.column == column)
                .map(|p| (mib(p.summary.max_rss_bytes), p.summary.wall_s, p.growth))
                .collect();
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|&(x, y, _)| (x, y)),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            chart
                .draw_series(pts.iter().map(|&(x, y, g)| {
                    EmptyElement::at((x, y))
                        + Circle::new((0, 0), 3, color.filled())
                        + Text::new(format!("{g}"), (4, -14), ("sans-serif", 12))
                }))
                .map_err(err)?;
        }
        if let Some(s) = libgc {
            chart
                .draw_series(std::iter::once(TriangleMarker::new(
                    (mib(s.max_rss_bytes), s.wall_s),
                    6,
                    BOEHM.filled(),
                )))
                .map_err(err)?
                .label("libgc")
                .legend(|(x, y)| TriangleMarker::new((x + 8, y), 5, BOEHM.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    }
    root.present().map_err(err)
}
