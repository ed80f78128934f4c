//! `prewarm gen-trace`.

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use prewarm_sim::r#gen::{GenConfig, universe_path, write_trace};
use std::path::PathBuf;

/// Arguments of `prewarm gen-trace`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Calendar days to generate, weekends and holidays included.
    #[arg(long, default_value_t = 20)]
    days: u32,
    /// Seed of the generator: the same seed gives the same bytes.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// First local (America/New_York) day, YYYY-MM-DD.
    #[arg(long, value_name = "DATE", default_value = "2026-03-02")]
    start: NaiveDate,
    /// Number of tickers in the universe.
    #[arg(long, default_value_t = 2000)]
    universe_size: usize,
    /// Users polling watchlists.
    #[arg(long, default_value_t = 60)]
    users: usize,
    /// Output trace: CSV `timestamp,key,client`, gzip'd if it ends in .gz.
    /// The universe (`key,sector`) is written beside it as
    /// `<stem>.universe.csv`.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Runs `prewarm gen-trace`.
pub fn run(args: GenArgs) -> Result<()> {
    let cfg = GenConfig {
        days: args.days,
        seed: args.seed,
        start_date: args.start,
        universe_size: args.universe_size,
        users: args.users,
        ..GenConfig::default()
    };
    let pb = ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} {human_pos} requests written ({per_sec}) {elapsed_precise}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let summary = write_trace(&cfg, &args.out, |n| pb.set_position(n))
        .with_context(|| format!("generating {}", args.out.display()))?;
    pb.finish_and_clear();
    eprintln!(
        "wrote {} requests over {} days ({} trading) on {} keys to {}; universe in {}",
        summary.requests,
        summary.days,
        summary.trading_days,
        summary.distinct_keys,
        args.out.display(),
        universe_path(&args.out).display()
    );
    Ok(())
}
