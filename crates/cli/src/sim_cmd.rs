//! `prewarm upstream-sim`: the simulated market-data API on a real socket.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use clap::Args;
use prewarm_server::upstream_sim::{self, RetryAfterForm, SimConfig};

use crate::serve_cmd::{init_tracing, runtime, shutdown_signal};

/// Arguments of `prewarm upstream-sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Listen address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Delay before each answer, milliseconds.
    #[arg(long = "latency-ms", value_name = "N", default_value_t = 20)]
    latency_ms: u64,
    /// Fraction of requests answered 500, in [0, 1].
    #[arg(long = "error-rate", value_name = "F", default_value_t = 0.0)]
    error_rate: f64,
    /// Calls per minute before answering 429 (unlimited when absent).
    #[arg(long = "rate-limit", value_name = "PER_MIN")]
    rate_limit_per_min: Option<u32>,
    /// Status of the injected errors (with --error-rate), e.g. 503.
    #[arg(long = "error-status", value_name = "N", default_value_t = 500,
          value_parser = clap::value_parser!(u16).range(400..600))]
    error_status: u16,
    /// Write a 429's Retry-After as an HTTP-date instead of seconds.
    #[arg(long = "retry-after-date")]
    retry_after_date: bool,
    /// Close every connection as soon as it is accepted.
    #[arg(long = "refuse-connections")]
    refuse_connections: bool,
}

/// Runs the simulator until SIGINT or SIGTERM.
pub fn run(args: SimArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&args.error_rate) {
        bail!(
            "--error-rate must be between 0 and 1, got {}",
            args.error_rate
        );
    }
    init_tracing(prewarm_server::config::LogFormat::Text);
    let cfg = SimConfig {
        listen: args.listen,
        latency_ms: args.latency_ms,
        error_rate: args.error_rate,
        rate_limit_per_min: args.rate_limit_per_min,
        error_status: args.error_status,
        retry_after: if args.retry_after_date {
            RetryAfterForm::HttpDate
        } else {
            RetryAfterForm::Seconds
        },
        refuse_connections: args.refuse_connections,
        ..SimConfig::default()
    };
    let rt = runtime()?;
    let signals = {
        let _in_runtime = rt.enter();
        shutdown_signal()
    };
    rt.block_on(upstream_sim::run(cfg, signals))
        .with_context(|| format!("upstream-sim on {}", args.listen))
}
