//! `prewarm load`: replays a trace against a running proxy in real time
//! (scaled by `--speed`) and prints the hit rate it observes from
//! `X-Cache`, every 10 s and at the end, with the latency percentiles of
//! the answers (p50, p90, p99, max); then, from the daemon's
//! `/warming/stats` read before and after, its upstream calls (demand and
//! warming) and the hits served by warmed entries during the run; when
//! warming was on but made no call, one line says what held it
//! ([`crate::load_daemon`]: upstream pause, session gate, budget or cost
//! cap), so a run without warming calls is not read as warming failing. Run it
//! once with warming on and once with `WARMING_ENABLED=false` to see what
//! warming buys.
//!
//! The daemon runs on the real clock: its TTL and warming budget are set
//! for the trace's own pace, `--speed 1`. At `--speed N` an entry stays
//! fresh for N TTLs of trace time and the budget is spread over N times the
//! trace's requests, which raises the hit rate without warming and hides
//! what warming adds; `load` says so. Start at the open (`--from-open`) to
//! replay the busy part of a trading day.
//!
//! Bounded: at most `--max-requests` requests and `--max-duration-s`
//! seconds; gaps in the trace longer than `--max-idle-s` (nights,
//! weekends) are shortened. Only loopback targets unless `--allow-remote`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::NaiveTime;
use clap::Args;
use prewarm_core::calendar::ExchangeCalendar;
use prewarm_sim::trace::{Trace, read_trace};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::load_daemon::{Daemon, describe_daemon, print_daemon_run};
use crate::serve_cmd::runtime;

/// How often progress is printed.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Arguments of `prewarm load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The trace: CSV `timestamp,key[,client]`, gzip'd when it ends in .gz.
    #[arg(long, value_name = "FILE")]
    trace: PathBuf,
    /// The proxy's base URL.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    target: String,
    /// Trace seconds per real second. 1 (real time) is the pace the
    /// daemon's TTL and warming budget are set for; at N, run the daemon
    /// with `ttl_s`/N and the warming rate ×N to keep their ratios.
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    speed: f64,
    /// Dataset the trace's keys belong to.
    #[arg(long, value_name = "NAME", default_value = "quote")]
    dataset: String,
    /// Most requests sent.
    #[arg(long = "max-requests", value_name = "N", default_value_t = 100_000)]
    max_requests: usize,
    /// Longest run, real seconds.
    #[arg(long = "max-duration-s", value_name = "S", default_value_t = 600.0)]
    max_duration_s: f64,
    /// Trace gaps longer than this (trace seconds) are shortened to it.
    #[arg(long = "max-idle-s", value_name = "S", default_value_t = 300.0)]
    max_idle_s: f64,
    /// Skip the trace's first S seconds (counted from the open with
    /// `--from-open`).
    #[arg(long = "start-offset-s", value_name = "S", default_value_t = 0.0)]
    start_offset_s: f64,
    /// Start at the first regular-session open (09:30 New York, NYSE
    /// trading days) at or after the trace's first request.
    #[arg(long = "from-open")]
    from_open: bool,
    /// The daemon's admin base URL, for its `/warming/stats` before and
    /// after the run (`none` to skip).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8003")]
    admin: String,
    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    concurrency: usize,
    /// Allow a target that is not on the loopback interface.
    #[arg(long = "allow-remote")]
    allow_remote: bool,
}

/// What the replay observed.
#[derive(Debug, Default)]
struct Tally {
    sent: AtomicU64,
    hit: AtomicU64,
    miss: AtomicU64,
    stale: AtomicU64,
    errors: AtomicU64,
}

/// Response latencies, microseconds from sending to the response's head
/// (1 µs to 60 s, 3 significant figures).
#[derive(Debug)]
struct Latencies(std::sync::Mutex<hdrhistogram::Histogram<u64>>);

impl Latencies {
    fn new() -> Self {
        let h = hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3)
            .unwrap_or_else(|_| hdrhistogram::Histogram::new(3).expect("3 significant figures"));
        Self(std::sync::Mutex::new(h))
    }

    fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        if let Ok(mut h) = self.0.lock() {
            h.saturating_record(us);
        }
    }

    /// `latency p50 … p90 … p99 … max … ms over N answers`.
    fn line(&self) -> String {
        let Ok(h) = self.0.lock() else {
            return "latency: unavailable".into();
        };
        latency_line(&h)
    }
}

fn latency_line(h: &hdrhistogram::Histogram<u64>) -> String {
    if h.is_empty() {
        return "latency: no answers".into();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "latency p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms over {} answers",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.90)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
        h.len()
    )
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    sent: u64,
    hit: u64,
    miss: u64,
    stale: u64,
    errors: u64,
}

impl Tally {
    fn counts(&self) -> Counts {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            sent: l(&self.sent),
            hit: l(&self.hit),
            miss: l(&self.miss),
            stale: l(&self.stale),
            errors: l(&self.errors),
        }
    }
}

impl Counts {
    fn answered(&self) -> u64 {
        self.hit + self.miss + self.stale
    }
    fn hit_rate(&self) -> f64 {
        if self.answered() == 0 {
            0.0
        } else {
            self.hit as f64 / self.answered() as f64
        }
    }
    fn since(&self, before: &Counts) -> Counts {
        Counts {
            sent: self.sent - before.sent,
            hit: self.hit - before.hit,
            miss: self.miss - before.miss,
            stale: self.stale - before.stale,
            errors: self.errors - before.errors,
        }
    }
}

/// Whether `url`'s host is a loopback address (or `localhost`).
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Index of the first request at or after `start_s`.
fn skip_to(times_s: &[f64], start_s: f64) -> usize {
    times_s.partition_point(|&t| t < start_s)
}

/// The first regular-session open (09:30 exchange time, trading days) at
/// or after `t0_s`.
fn first_open_s(cal: &ExchangeCalendar, t0_s: f64) -> f64 {
    let open = NaiveTime::from_hms_opt(9, 30, 0).unwrap_or_default();
    // `next_local_time` is strictly after its argument.
    cal.next_local_time(t0_s - 1e-3, open, true)
}

/// Real-time offsets (seconds from the start) of the first `max` requests,
/// with gaps capped at `max_idle_s` and scaled by `speed`.
fn schedule(times_s: &[f64], speed: f64, max_idle_s: f64, max: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(times_s.len().min(max));
    let mut offset_s = 0.0;
    let mut prev = times_s.first().copied().unwrap_or(0.0);
    for &t in times_s.iter().take(max) {
        offset_s += (t - prev).clamp(0.0, max_idle_s) / speed;
        prev = t;
        out.push(offset_s);
    }
    out
}

fn print_line(label: &str, elapsed: Duration, window: &Counts, total: &Counts) {
    println!(
        "{label:>5} {:>6.0}s  sent {:>7}  hit rate {:>5.1}% (last 10 s {:>5.1}%)  miss {}  stale {}  errors {}",
        elapsed.as_secs_f64(),
        total.sent,
        100.0 * total.hit_rate(),
        100.0 * window.hit_rate(),
        total.miss,
        total.stale,
        total.errors,
    );
}

/// Runs `prewarm load`.
pub fn run(args: LoadArgs) -> Result<()> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        bail!("--speed must be a positive number, got {}", args.speed);
    }
    if args.concurrency == 0 || args.max_requests == 0 {
        bail!("--concurrency and --max-requests must be at least 1");
    }
    let target = reqwest::Url::parse(&args.target)
        .with_context(|| format!("--target {:?} is not a URL", args.target))?;
    if !args.allow_remote && !is_loopback(&target) {
        bail!("--target {target} is not on loopback; pass --allow-remote to load a remote proxy");
    }
    let admin = match args.admin.as_str() {
        "none" => None,
        a => {
            let url =
                reqwest::Url::parse(a).with_context(|| format!("--admin {a:?} is not a URL"))?;
            if !args.allow_remote && !is_loopback(&url) {
                bail!("--admin {url} is not on loopback; pass --allow-remote");
            }
            Some(url)
        }
    };
    let trace = read_trace(&args.trace)
        .with_context(|| format!("reading trace {}", args.trace.display()))?;
    if trace.is_empty() {
        bail!("{}: the trace has no request", args.trace.display());
    }
    let cal = ExchangeCalendar::nyse();
    let t0_s = trace.times_s[0];
    let start_s = if args.from_open {
        first_open_s(&cal, t0_s)
    } else {
        t0_s
    } + args.start_offset_s;
    let first = skip_to(&trace.times_s, start_s);
    if first >= trace.len() {
        bail!("{}: no request after the start", args.trace.display());
    }
    println!(
        "replaying {} requests of {} ({} keys) from {} against {target} at {}x",
        (trace.len() - first).min(args.max_requests),
        trace.name,
        trace.distinct_keys(),
        cal.local_date_time(trace.times_s[first])
            .format("%Y-%m-%d %H:%M:%S ET"),
        args.speed
    );
    runtime()?.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("HTTP client")?;
        let daemon = Daemon {
            client: client.clone(),
            admin,
            dataset: args.dataset.clone(),
        };
        let before = daemon.figures().await;
        if let Some(b) = &before {
            describe_daemon(b, args.speed);
        }
        replay(&client, &trace, first, &args, target).await?;
        if let Some(b) = before {
            // The driver publishes what it applied within a quarter second.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            match daemon.figures().await {
                Some(a) => {
                    let run = a.since(&b);
                    print_daemon_run(&run);
                    if run.warming_enabled && run.warming_calls == 0 {
                        println!("{}", daemon.why_no_warming().await);
                    }
                }
                None => println!("daemon figures: /warming/stats did not answer at the end"),
            }
        }
        Ok(())
    })
}

fn request_url(base: &reqwest::Url, dataset: &str, key: &str) -> Result<reqwest::Url> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|_| anyhow::anyhow!("--target {base} cannot take a path"))?
        .pop_if_empty()
        .extend(["v1", dataset, key]);
    Ok(url)
}

async fn replay(
    client: &reqwest::Client,
    trace: &Trace,
    first: usize,
    args: &LoadArgs,
    target: reqwest::Url,
) -> Result<()> {
    let offsets = schedule(
        &trace.times_s[first..],
        args.speed,
        args.max_idle_s,
        args.max_requests,
    );
    let tally = Arc::new(Tally::default());
    let latencies = Arc::new(Latencies::new());
    let samples = Arc::new(std::sync::Mutex::new(
        Vec::<crate::load_recovery::Sample>::new(),
    ));
    let slots = Arc::new(Semaphore::new(args.concurrency));
    let start = Instant::now();
    let limit = Duration::from_secs_f64(args.max_duration_s.max(0.0));
    let mut next_report = start + REPORT_EVERY;
    let mut last = Counts::default();
    for (n, offset_s) in offsets.iter().enumerate() {
        let i = first + n;
        let due = start + Duration::from_secs_f64(*offset_s);
        if due - start > limit {
            println!("stopping: --max-duration-s {} reached", args.max_duration_s);
            break;
        }
        while next_report <= due {
            tokio::time::sleep_until(next_report).await;
            let now = tally.counts();
            print_line("", start.elapsed(), &now.since(&last), &now);
            last = now;
            next_report += REPORT_EVERY;
        }
        tokio::time::sleep_until(due).await;
        let permit = Arc::clone(&slots).acquire_owned().await?;
        let key = &trace.keys[trace.key_ids[i] as usize];
        let url = request_url(&target, &args.dataset, key)?;
        let mut req = client.get(url);
        if let Some(ids) = &trace.client_ids {
            req = req.header("X-Client-Id", &*trace.clients[ids[i] as usize]);
        }
        let tally = Arc::clone(&tally);
        let latencies = Arc::clone(&latencies);
        tally.sent.fetch_add(1, Ordering::Relaxed);
        let (samples, sent_s) = (Arc::clone(&samples), start.elapsed().as_secs_f64());
        tokio::spawn(async move {
            let sent_at = Instant::now();
            let answer = req.send().await;
            if answer.is_ok() {
                latencies.record(sent_at.elapsed());
            }
            let counter = match answer {
                Ok(r) if r.status().is_success() => {
                    match r.headers().get("x-cache").and_then(|v| v.to_str().ok()) {
                        Some("HIT") => &tally.hit,
                        Some("STALE") => &tally.stale,
                        _ => &tally.miss,
                    }
                }
                _ => &tally.errors,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if !std::ptr::eq(counter, &tally.errors)
                && let Ok(mut v) = samples.lock()
            {
                let cached =
                    std::ptr::eq(counter, &tally.hit) || std::ptr::eq(counter, &tally.stale);
                v.push((sent_s, cached));
            }
            drop(permit);
        });
    }
    let _all = slots
        .acquire_many(args.concurrency as u32)
        .await
        .context("waiting for requests in flight")?;
    let total = tally.counts();
    print_line("final", start.elapsed(), &total.since(&last), &total);
    println!(
        "observed hit rate {:.1}% over {} answered requests ({} errors)",
        100.0 * total.hit_rate(),
        total.answered(),
        total.errors
    );
    println!("{}", latencies.line());
    if let Ok(v) = samples.lock() {
        print!("{}", crate::load_recovery::render(&v));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_line_gives_the_percentiles_in_milliseconds() {
        let l = Latencies::new();
        assert_eq!(l.line(), "latency: no answers");
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        let line = l.line();
        assert!(line.starts_with("latency p50 50.0"), "{line}");
        assert!(line.contains("p90 90.0"), "{line}");
        assert!(line.contains("p99 99.0"), "{line}");
        assert!(line.contains("max 100.0"), "{line}");
        assert!(line.ends_with("over 100 answers"), "{line}");
    }

    #[test]
    fn schedule_scales_and_caps_gaps() {
        let t = [100.0, 160.0, 160.0, 100_000.0];
        let s = schedule(&t, 60.0, 300.0, 10);
        assert_eq!(s, vec![0.0, 1.0, 1.0, 6.0]);
        assert_eq!(schedule(&t, 60.0, 300.0, 2).len(), 2);
        assert_eq!(skip_to(&t, 160.0), 1);
        assert_eq!(skip_to(&t, 100.0), 0);
        assert_eq!(skip_to(&t, 1e9), 4);
    }

    #[test]
    fn the_open_is_the_first_regular_session_start_at_or_after_the_trace() {
        let cal = ExchangeCalendar::nyse();
        // Monday 2026-03-02 00:00:21 ET (EST): 09:30 that day.
        let monday_open = 1_772_461_800.0;
        assert_eq!(first_open_s(&cal, 1_772_427_621.715), monday_open);
        assert_eq!(first_open_s(&cal, monday_open), monday_open);
        // Saturday 2026-03-07 12:00 ET: Monday 2026-03-09, now EDT.
        assert_eq!(first_open_s(&cal, 1_772_902_800.0), 1_773_063_000.0);
    }

    #[test]
    fn only_loopback_targets_pass_by_default() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:8080",
        ] {
            assert!(is_loopback(&reqwest::Url::parse(ok).unwrap()), "{ok}");
        }
        for bad in ["http://10.0.0.1:8080", "http://example.com"] {
            assert!(!is_loopback(&reqwest::Url::parse(bad).unwrap()), "{bad}");
        }
    }

    #[test]
    fn request_urls_escape_keys() {
        let base = reqwest::Url::parse("http://127.0.0.1:8080/").unwrap();
        let u = request_url(&base, "quote", "BRK.B").unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:8080/v1/quote/BRK.B");
        let u = request_url(&base, "quote", "A/B").unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:8080/v1/quote/A%2FB");
    }

    #[test]
    fn hit_rate_counts_answered_requests_only() {
        let c = Counts {
            sent: 10,
            hit: 3,
            miss: 1,
            stale: 0,
            errors: 6,
        };
        assert_eq!(c.hit_rate(), 0.75);
        assert_eq!(Counts::default().hit_rate(), 0.0);
    }
}
