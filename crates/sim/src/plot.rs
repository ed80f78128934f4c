//! `prewarm replay --plot FILE.svg`: hourly hit rate of the baseline, the
//! warmed run and the bound, and warming fetches (made and used) per
//! strategy per hour.
//!
//! The hourly figures are computed here from the trace (baseline and bound,
//! with the same rules as [`crate::baseline`] and [`crate::bound`]) and
//! from the engine's own hourly series (warmed run); the SVG is drawn with
//! plotters and written in one go.
//!
//! `prewarm replay --frontier FILE.svg`: the cost frontier of
//! [`crate::frontier`], hit rate against API cost per policy.

use crate::baseline::miss_groups;
use crate::bound::{BucketStart, bucket_start_s, schedule_edf_with, warm_jobs};
use crate::frontier::{Frontier, FrontierPoint, Policy};
use crate::trace::Trace;
use plotters::prelude::*;
use prewarm_core::stats::Series;
use prewarm_core::strategy::StrategyId;
use std::collections::BTreeMap;
use std::path::Path;

const HOUR_S: f64 = 3600.0;

/// Hourly figures of one replay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hourly {
    /// Hour start (Unix seconds) → (requests, baseline hits, bound hits,
    /// warmed hits, per-strategy (warm fetches, warm used)).
    pub hours: BTreeMap<i64, Hour>,
}

/// One hour.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Hour {
    /// Requests.
    pub requests: u64,
    /// Hits without warming.
    pub baseline_hits: u64,
    /// Hits of the clairvoyant bound.
    pub bound_hits: u64,
    /// Hits with warming.
    pub warmed_hits: u64,
    /// Per strategy: warming fetches and used ones.
    pub strategies: [(u64, u64); StrategyId::COUNT],
}

fn hour_of(t: f64) -> i64 {
    (t / HOUR_S).floor() as i64
}

/// The hourly figures of `trace` at `ttl` (seconds or a TTL rule) and `warm_rate_per_min`, with
/// the warmed run's hourly `series` (buckets of one hour).
pub fn hourly(
    trace: &Trace,
    ttl: impl Into<prewarm_core::ttl::TtlRule>,
    warm_rate_per_min: f64,
    series: &Series,
) -> Hourly {
    let ttl = ttl.into();
    let mut out = Hourly::default();
    let groups = miss_groups(trace, &ttl);
    for t in &trace.times_s {
        out.hours.entry(hour_of(*t)).or_default().requests += 1;
    }
    // Baseline hits per hour: requests minus miss groups (one miss each).
    for h in out.hours.values_mut() {
        h.baseline_hits = h.requests;
    }
    for g in &groups {
        let h = out.hours.entry(hour_of(g.start_s)).or_default();
        h.baseline_hits -= 1;
    }
    for h in out.hours.values_mut() {
        h.bound_hits = h.baseline_hits;
    }
    let jobs = warm_jobs(&groups, &ttl);
    let start_s = bucket_start_s(trace, &jobs, BucketStart::FirstRelease);
    schedule_edf_with(&jobs, start_s, warm_rate_per_min, &mut |deadline_s| {
        out.hours.entry(hour_of(deadline_s)).or_default().bound_hits += 1;
    });
    for (start, c) in series.buckets() {
        let h = out.hours.entry(hour_of(start)).or_default();
        h.warmed_hits = c.hits;
        for id in StrategyId::ALL {
            let s = c.strategy(id);
            h.strategies[id.index()] = (s.warm_fetches, s.warm_used);
        }
    }
    out
}

/// What went wrong drawing a plot.
#[derive(Debug, thiserror::Error)]
#[error("plot {file}: {detail}")]
pub struct PlotError {
    /// The output file.
    pub file: String,
    /// What failed.
    pub detail: String,
}

/// Draws `h` as an SVG at `path`, with the strategies in `shown`.
pub fn write_svg(
    h: &Hourly,
    shown: &[StrategyId],
    title: &str,
    path: &Path,
) -> Result<(), PlotError> {
    let err = |e: &dyn std::fmt::Display| PlotError {
        file: path.display().to_string(),
        detail: e.to_string(),
    };
    let (Some(first), Some(last)) = (h.hours.keys().next(), h.hours.keys().next_back()) else {
        return Err(err(&"the trace is empty"));
    };
    let hours = (*first as f64)..(*last as f64 + 1.0);
    let root = SVGBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(420);
    draw_hit_rates(&top, h, hours.clone(), title).map_err(|e| err(&e))?;
    draw_fetches(&bottom, h, hours, shown).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
/// (x, y) points of one line.
type Points = Vec<(f64, f64)>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw_hit_rates(area: &Area<'_>, h: &Hourly, x: std::ops::Range<f64>, title: &str) -> DrawResult {
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{title}: hourly hit rate"), ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(x, 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("hour (UTC)")
        .y_desc("hit rate, %")
        .x_label_formatter(&hour_label)
        .draw()?;
    let rate = |f: fn(&Hour) -> u64| -> Vec<(f64, f64)> {
        h.hours
            .iter()
            .filter(|(_, v)| v.requests > 0)
            .map(|(k, v)| (*k as f64, 100.0 * f(v) as f64 / v.requests as f64))
            .collect()
    };
    let lines: [(&str, RGBColor, Points); 3] = [
        (
            "baseline",
            RGBColor(120, 120, 120),
            rate(|v| v.baseline_hits),
        ),
        ("warmed", RGBColor(31, 119, 180), rate(|v| v.warmed_hits)),
        ("bound", RGBColor(44, 160, 44), rate(|v| v.bound_hits)),
    ];
    for (name, color, points) in lines {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    draw_legend(&mut chart)
}

/// The legend box of a chart, in one style for both panels.
fn draw_legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
) -> DrawResult {
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
}

/// An hour index as `MM-DD HH:00` in UTC.
fn hour_label(hour: &f64) -> String {
    chrono::DateTime::from_timestamp((hour * HOUR_S) as i64, 0)
        .map_or_else(String::new, |t| t.format("%m-%d %H:00").to_string())
}

const PALETTE: [RGBColor; StrategyId::COUNT] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(44, 160, 44),
    RGBColor(140, 86, 75),
];

fn draw_fetches(
    area: &Area<'_>,
    h: &Hourly,
    x: std::ops::Range<f64>,
    shown: &[StrategyId],
) -> DrawResult {
    let max = h
        .hours
        .values()
        .flat_map(|v| v.strategies.iter().map(|s| s.0))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "warming fetches per hour (solid: made, dashed: used)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(x, 0.0..max * 1.05)?;
    chart
        .configure_mesh()
        .y_desc("fetches")
        .x_label_formatter(&hour_label)
        .draw()?;
    for id in shown {
        let color = PALETTE[id.index()];
        let made: Vec<(f64, f64)> = h
            .hours
            .iter()
            .map(|(k, v)| (*k as f64, v.strategies[id.index()].0 as f64))
            .collect();
        let used: Vec<(f64, f64)> = h
            .hours
            .iter()
            .map(|(k, v)| (*k as f64, v.strategies[id.index()].1 as f64))
            .collect();
        chart
            .draw_series(LineSeries::new(made, color.stroke_width(2)))?
            .label(id.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(DashedLineSeries::new(used, 4, 4, color.stroke_width(1)))?;
    }
    draw_legend(&mut chart)
}

/// Cost ratios beyond this are drawn at the chart's right edge, their value
/// in the legend (the edge is then set by the other points): one outlier (a policy costing 30×) would otherwise squash
/// the region a budget is picked in.
const FRONTIER_MAX_COST_SHOWN: f64 = 2.0;

/// Draws the cost frontier `f` as an SVG at `path`: hit rate (%) against
/// API cost (API calls / no-warming API calls), one series per policy.
pub fn write_frontier_svg(f: &Frontier, path: &Path) -> Result<(), PlotError> {
    let err = |e: &dyn std::fmt::Display| PlotError {
        file: path.display().to_string(),
        detail: e.to_string(),
    };
    if f.points.is_empty() {
        return Err(err(&"the frontier has no points"));
    }
    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    draw_frontier(&root, f).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// The axes' ranges: cost ratio (points beyond [`FRONTIER_MAX_COST_SHOWN`]
/// left out: they are drawn at the right edge) and
/// hit rate in %, padded, with room above the points for the legend. The
/// bound is left out of the hit-rate range when it lies more than twice the
/// other points' spread above them (it is then drawn at the top edge).
fn frontier_ranges(f: &Frontier) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let costs = f.points.iter().map(|p| p.cost_ratio);
    let x_lo = costs.clone().fold(1.0, f64::min);
    let x_hi = costs
        .filter(|c| *c <= FRONTIER_MAX_COST_SHOWN)
        .fold(1.0, f64::max);
    let x_pad = ((x_hi - x_lo) * 0.05).max(0.01);
    let rates = |bound: bool| {
        f.points
            .iter()
            .filter(move |p| (p.policy == Policy::Bound) == bound)
            .map(|p| p.hit_rate * 100.0)
    };
    let lo = rates(false).fold(100.0, f64::min);
    let hi = rates(false).fold(0.0, f64::max);
    let spread = (hi - lo).max(1.0);
    let top = rates(true)
        .filter(|b| *b <= hi + 2.0 * spread)
        .fold(hi, f64::max);
    let span = (top - lo).max(1.0);
    (
        (x_lo - x_pad)..(x_hi + x_pad),
        (lo - 0.08 * span).max(0.0)..(top + 0.35 * span).min(102.0),
    )
}

fn frontier_style(p: Policy) -> RGBColor {
    match p {
        Policy::Baseline => RGBColor(120, 120, 120),
        Policy::Prewarm => RGBColor(31, 119, 180),
        Policy::RefreshAhead => RGBColor(255, 127, 14),
        Policy::Popular30Min => RGBColor(148, 103, 189),
        Policy::Bound => RGBColor(44, 160, 44),
    }
}

/// The legend entry of `policy`: its name, what its point labels mean or its
/// one point's figures, and the costs drawn at the right edge.
fn frontier_label(policy: Policy, points: &[&FrontierPoint]) -> String {
    let mut label = match (policy.setting_name(), points) {
        (Some(setting), _) => format!("{} (labels: {setting})", policy.name()),
        (None, [p]) => format!(
            "{} ({:.2} % at {:.3}x)",
            policy.name(),
            p.hit_rate * 100.0,
            p.cost_ratio
        ),
        (None, _) => policy.name().to_string(),
    };
    let off_scale: Vec<String> = points
        .iter()
        .filter(|p| p.cost_ratio > FRONTIER_MAX_COST_SHOWN)
        .map(|p| format!("{:.2}x", p.cost_ratio))
        .collect();
    if !off_scale.is_empty() {
        label.push_str(&format!(", off scale at {}", off_scale.join(", ")));
    }
    label
}

fn draw_frontier(area: &Area<'_>, f: &Frontier) -> DrawResult {
    let (x, y) = frontier_ranges(f);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "{}: TTL {} s, warm rate {}/min: hit rate against API cost",
                f.trace, f.ttl_s, f.warm_rate_per_min
            ),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(x.clone(), y.clone())?;
    chart
        .configure_mesh()
        .x_desc("API calls / no-warming API calls")
        .y_desc("hit rate, %")
        .draw()?;
    for policy in Policy::ALL {
        let points: Vec<&FrontierPoint> = f.points_of(policy).collect();
        if points.is_empty() {
            continue;
        }
        let color = frontier_style(policy);
        let xy = |p: &FrontierPoint| (p.cost_ratio.min(x.end), p.hit_rate * 100.0);
        let mut label = frontier_label(policy, &points);
        if policy == Policy::Bound {
            let rate = (points[0].hit_rate * 100.0).min(y.end);
            if rate < points[0].hit_rate * 100.0 {
                label.push_str(", above the chart");
            }
            chart
                .draw_series(DashedLineSeries::new(
                    [(x.start, rate), (x.end, rate)],
                    6,
                    4,
                    color.stroke_width(2),
                ))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            continue;
        }
        if points.len() > 1 {
            chart.draw_series(LineSeries::new(
                points.iter().map(|p| xy(p)),
                color.stroke_width(2),
            ))?;
        }
        chart
            .draw_series(points.iter().enumerate().map(|(i, p)| {
                let text = p.setting.map_or_else(String::new, |v| format!("{v}"));
                // Settings alternate above and below their points, so close
                // neighbours stay readable.
                let dy = if i % 2 == 0 { -16 } else { 6 };
                EmptyElement::at(xy(p))
                    + Circle::new((0, 0), 4, color.filled())
                    + Text::new(text, (5, dy), ("sans-serif", 12).into_font().color(&color))
            }))?
            .label(label)
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::{ReplayConfig, replay};
    use crate::trace::read_trace_from;

    #[test]
    fn hourly_figures_add_up_to_the_report_and_the_svg_is_written() {
        let mut csv = String::from("timestamp,key\n");
        for i in 0..3000 {
            csv.push_str(&format!(
                "{},{}\n",
                1_772_461_800 + i * 7,
                ["A", "B", "C", "D"][i % 4]
            ));
        }
        let trace = read_trace_from(csv.as_bytes(), "t.csv").unwrap();
        let cfg = ReplayConfig {
            hourly_series: true,
            ..ReplayConfig::default()
        };
        let run = replay(&trace, &cfg, &mut |_, _| {}).unwrap();
        let h = hourly(
            &trace,
            cfg.engine.ttl_s,
            cfg.engine.warming.rate_limit_per_min,
            &run.engine.stats().series()[0],
        );
        let sum = |f: fn(&Hour) -> u64| h.hours.values().map(f).sum::<u64>();
        assert_eq!(sum(|v| v.requests), run.report.requests);
        assert_eq!(sum(|v| v.baseline_hits), run.report.baseline.hits);
        assert_eq!(sum(|v| v.warmed_hits), run.report.warmed.hits);
        let bound_rate = sum(|v| v.bound_hits) as f64 / run.report.requests as f64;
        assert!((bound_rate - run.report.bound.hit_rate).abs() < 1e-12);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.svg");
        write_svg(&h, &StrategyId::ALL, "t.csv", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("warmed") && svg.contains("polyline"));
    }

    fn point(policy: Policy, hit_rate: f64, cost_ratio: f64) -> FrontierPoint {
        FrontierPoint {
            policy,
            setting: None,
            hits: 0,
            hit_rate,
            api_calls: 0,
            cost_ratio,
        }
    }

    /// A bound far above the points and a cost far right of them are left
    /// out of the axes (drawn at the edges); a close bound is kept in.
    #[test]
    fn frontier_axes_leave_out_far_outliers_only() {
        let mut f = Frontier {
            trace: "t".into(),
            ttl_s: 60.0,
            warm_rate_per_min: 100.0,
            points: vec![
                point(Policy::Baseline, 0.10, 1.0),
                point(Policy::Prewarm, 0.12, 1.2),
                point(Policy::Popular30Min, 0.11, 30.0),
                point(Policy::Bound, 0.90, 1.0),
            ],
        };
        let (x, y) = frontier_ranges(&f);
        assert!(x.start < 1.0 && (1.2..1.3).contains(&x.end), "{x:?}");
        assert!(y.start < 10.0 && (12.0..20.0).contains(&y.end), "{y:?}");
        f.points[3].hit_rate = 0.13;
        let (_, y) = frontier_ranges(&f);
        assert!(y.end > 13.0 && y.end < 20.0, "{y:?}");
    }
}
