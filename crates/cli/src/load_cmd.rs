//! `prewarm load`: replays a trace against a running proxy in real time
//! (scaled by `--speed`) and prints the hit rate it observes from
//! `X-Cache`, every 10 s and at the end. Run it once with warming on and
//! once with `WARMING_ENABLED=false` to see what warming buys.
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
use clap::Args;
use prewarm_sim::trace::{Trace, read_trace};
use tokio::sync::Semaphore;
use tokio::time::Instant;

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
    /// Trace seconds per real second (60: one trace minute per second).
    #[arg(long, value_name = "X", default_value_t = 60.0)]
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
    /// Skip the trace's first S seconds (e.g. to start at the open).
    #[arg(long = "start-offset-s", value_name = "S", default_value_t = 0.0)]
    start_offset_s: f64,
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

/// Index of the first request at or after `offset_s` trace seconds.
fn skip_to(times_s: &[f64], offset_s: f64) -> usize {
    let Some(&t0) = times_s.first() else {
        return 0;
    };
    times_s.partition_point(|&t| t < t0 + offset_s)
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
    let trace = read_trace(&args.trace)
        .with_context(|| format!("reading trace {}", args.trace.display()))?;
    if trace.is_empty() {
        bail!("{}: the trace has no request", args.trace.display());
    }
    println!(
        "replaying {} requests of {} ({} keys) against {target} at {}x",
        trace.len().min(args.max_requests),
        trace.name,
        trace.distinct_keys(),
        args.speed
    );
    runtime()?.block_on(replay(&trace, &args, target))
}

fn request_url(base: &reqwest::Url, dataset: &str, key: &str) -> Result<reqwest::Url> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|_| anyhow::anyhow!("--target {base} cannot take a path"))?
        .pop_if_empty()
        .extend(["v1", dataset, key]);
    Ok(url)
}

async fn replay(trace: &Trace, args: &LoadArgs, target: reqwest::Url) -> Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("HTTP client")?;
    let first = skip_to(&trace.times_s, args.start_offset_s);
    let offsets = schedule(
        &trace.times_s[first..],
        args.speed,
        args.max_idle_s,
        args.max_requests,
    );
    let tally = Arc::new(Tally::default());
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
        tally.sent.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let counter = match req.send().await {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_scales_and_caps_gaps() {
        let t = [100.0, 160.0, 160.0, 100_000.0];
        let s = schedule(&t, 60.0, 300.0, 10);
        assert_eq!(s, vec![0.0, 1.0, 1.0, 6.0]);
        assert_eq!(schedule(&t, 60.0, 300.0, 2).len(), 2);
        assert_eq!(skip_to(&t, 60.0), 1);
        assert_eq!(skip_to(&t, 0.0), 0);
        assert_eq!(skip_to(&t, 1e9), 4);
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
