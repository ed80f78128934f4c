//! `GET /metrics`: Prometheus text.
//!
//! Two sources, one page:
//! - the request path records through the `metrics` facade (counters and
//!   histograms `prewarm_*`); [`install`] puts a Prometheus recorder in
//!   the global slot once per process (tests share it) and keeps its
//!   handle. If another recorder was installed first, those series are
//!   missing and a warning is logged.
//! - the engine's figures (warm fetches and uses per strategy, budget
//!   tokens, queued candidates) are written from the driver's published
//!   view at scrape time, so they can never disagree with `/warming/stats`.
//!
//! The recorder's upkeep (draining histogram buckets, so memory stays
//! flat) runs on a timer from [`spawn_upkeep`], whether or not anyone
//! scrapes, and stops with the daemon.
//!
//! Labels stay low-cardinality: `dataset` (configured names), `strategy`
//! (the engine's fixed list), `result`, `kind`. Never a key.

use std::fmt::Write as _;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::driver::DriverSnapshot;

/// Histogram buckets of every `*_duration_seconds`, seconds.
pub const DURATION_BUCKETS_S: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once) and returns its
/// handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".into()),
                    DURATION_BUCKETS_S,
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder was installed already: /metrics shows engine figures only"
                );
            }
            handle
        })
        .clone()
}

/// Runs `upkeep` every `every` until `stop` turns true (or its sender
/// is dropped); the daemon passes the recorder's
/// [`PrometheusHandle::run_upkeep`].
pub fn spawn_upkeep(
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    upkeep: impl Fn() + Send + 'static,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                _ = tick.tick() => upkeep(),
                r = stop.wait_for(|s| *s) => {
                    let _ = r;
                    return Ok(());
                }
            }
        }
    })
}

/// The whole `/metrics` page: recorded series, then the engine's figures
/// from `view` (when the driver runs).
pub fn render(handle: &PrometheusHandle, view: Option<&DriverSnapshot>) -> String {
    handle.run_upkeep();
    let mut out = handle.render();
    if let Some(v) = view {
        render_view(&mut out, v);
    }
    out
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
        }
    }
}

/// Appends the engine's figures of `v`.
fn render_view(out: &mut String, v: &DriverSnapshot) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let mut f = Family { out };
    type Pick = fn(&crate::driver::view::StrategyFigures) -> u64;
    let per_strategy: [(&str, &str, Pick); 4] = [
        (
            "prewarm_warm_fetches_total",
            "Warming fetches per strategy (engine orders plus cycles).",
            |s| s.warm_fetches,
        ),
        (
            "prewarm_warm_used_total",
            "Warming fetches whose entry served a hit, per strategy.",
            |s| s.warm_used,
        ),
        (
            "prewarm_warm_wasted_total",
            "Warming fetches whose entry left the cache unused, or that failed, per strategy.",
            |s| s.warm_wasted,
        ),
        (
            "prewarm_warm_hits_total",
            "Hits served by entries a strategy fetched.",
            |s| s.hits,
        ),
    ];
    for (name, help, pick) in per_strategy {
        f.head(name, "counter", help);
        for (ds, d) in &v.datasets {
            for (strategy, s) in &d.total.strategies {
                f.sample(
                    name,
                    &[("dataset", ds), ("strategy", strategy)],
                    pick(s) as f64,
                );
            }
        }
    }
    type Gauge = fn(&crate::driver::DatasetView) -> f64;
    let gauges: [(&str, &str, &str, Gauge); 4] = [
        (
            "prewarm_budget_tokens",
            "gauge",
            "Warming budget tokens available now.",
            |d| d.budget_tokens,
        ),
        (
            "prewarm_queued_candidates",
            "gauge",
            "Warming candidates waiting for budget or their window.",
            |d| d.queued_candidates as f64,
        ),
        (
            "prewarm_engine_requests_total",
            "counter",
            "Accesses the engine saw since start.",
            |d| d.total.requests as f64,
        ),
        (
            "prewarm_engine_hits_total",
            "counter",
            "Accesses that hit, by the engine's model, since start.",
            |d| d.total.hits as f64,
        ),
    ];
    for (name, kind, help, pick) in gauges {
        f.head(name, kind, help);
        for (ds, d) in &v.datasets {
            f.sample(name, &[("dataset", ds)], pick(d));
        }
    }
    f.head(
        "prewarm_warms_in_flight",
        "gauge",
        "Warming fetches in flight.",
    );
    f.sample("prewarm_warms_in_flight", &[], v.warms_in_flight as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[tokio::test(start_paused = true)]
    async fn upkeep_runs_on_its_timer_without_a_scrape_and_stops_with_the_daemon() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::time::Duration;
        let runs = Arc::new(AtomicU64::new(0));
        let (stop, rx) = tokio::sync::watch::channel(false);
        let counted = Arc::clone(&runs);
        let task = spawn_upkeep(Duration::from_secs(5), rx, move || {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        tokio::time::sleep(Duration::from_millis(15_500)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "at 5, 10 and 15 s");
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "no upkeep after the stop");
    }

    #[test]
    fn empty_view_still_renders_families() {
        let mut out = String::new();
        render_view(&mut out, &DriverSnapshot::empty());
        assert!(out.contains("# TYPE prewarm_budget_tokens gauge"));
        assert!(out.contains("prewarm_warms_in_flight 0"));
    }
}
