//! `prewarm replay`.

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use prewarm_core::strategy::StrategySet;
use prewarm_sim::replay::{ReplayConfig, replay};
use prewarm_sim::trace::read_trace_with_progress;
use prewarm_sim::universe::read_universe;
use std::path::PathBuf;

/// Arguments of `prewarm replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The trace: CSV `timestamp,key[,client]`, gzip'd when it ends in .gz.
    #[arg(long, value_name = "FILE")]
    trace: PathBuf,
    /// Seconds an entry stays fresh.
    #[arg(long = "ttl", value_name = "SECONDS", default_value_t = 60.0)]
    ttl_s: f64,
    /// Warming fetches allowed per minute (token bucket, burst equal to it).
    #[arg(long = "warm-rate", value_name = "PER_MIN", default_value_t = 100.0)]
    warm_rate_per_min: f64,
    /// Cache capacity in entries (LRU); unlimited when absent.
    #[arg(long = "capacity", value_name = "ENTRIES")]
    capacity_entries: Option<usize>,
    /// Comma-separated strategies (popular,time,trending,predictive,refresh,sector),
    /// `all` or `none`. Default: all.
    #[arg(long, value_name = "LIST", default_value = "all")]
    strategies: String,
    /// Refresh-ahead threshold as a fraction of the TTL.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.8)]
    refresh_fraction: f64,
    /// Value (expected misses saved) a candidate needs when the budget is
    /// scarce.
    #[arg(long, value_name = "VALUE", default_value_t = prewarm_core::strategies::WarmingConfig::default().min_value)]
    min_value: f64,
    /// Value a candidate needs when the budget is full (spare tokens that
    /// would otherwise be lost); at most --min-value.
    #[arg(long, value_name = "VALUE", default_value_t = prewarm_core::strategies::WarmingConfig::default().spare_min_value)]
    spare_min_value: f64,
    /// Value a candidate needs when the budget is full and the API cost is
    /// under --max-cost-ratio; at most --spare-min-value.
    #[arg(long, value_name = "VALUE", default_value_t = prewarm_core::strategies::WarmingConfig::default().spare_floor_value)]
    spare_floor_value: f64,
    /// Spare tokens go below --spare-min-value only while the API calls
    /// stay within this multiple of a cache without warming (measured on
    /// the requests so far, over about the last day).
    #[arg(long, value_name = "X", default_value_t = prewarm_core::strategies::WarmingConfig::default().max_cost_ratio)]
    max_cost_ratio: f64,
    /// Universe file, CSV `key,group[,weight]`: the groups (sectors) of keys.
    #[arg(long, value_name = "FILE")]
    universe: Option<PathBuf>,
    /// Break the remaining misses down by kind (gap since the key's previous
    /// request, client class).
    #[arg(long)]
    explain: bool,
    /// Draw hourly hit rates (baseline, warmed, bound) and warming fetches
    /// per strategy to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>9} [{bar:40}] {percent:>3}% {elapsed_precise} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Runs `prewarm replay`.
pub fn run(args: ReplayArgs) -> Result<()> {
    let strategies = StrategySet::parse_list(&args.strategies).context("--strategies")?;
    let cfg = ReplayConfig {
        ttl_s: args.ttl_s,
        warm_rate_per_min: args.warm_rate_per_min,
        capacity_entries: args.capacity_entries,
        strategies,
        refresh_fraction: args.refresh_fraction,
        min_value: args.min_value,
        spare_min_value: args.spare_min_value.min(args.min_value),
        spare_floor_value: args.spare_floor_value,
        max_cost_ratio: args.max_cost_ratio,
        hourly_series: args.plot.is_some(),
        universe: match &args.universe {
            Some(p) => read_universe(p)?,
            None => Vec::new(),
        },
        explain: args.explain,
    };
    let reading = bar(0, "reading");
    let trace = read_trace_with_progress(&args.trace, &mut |done, total| {
        reading.set_length(total);
        reading.set_position(done);
    })
    .with_context(|| format!("reading trace {}", args.trace.display()))?;
    reading.finish_and_clear();
    let replaying = bar(trace.len() as u64, "replaying");
    let run = replay(&trace, &cfg, &mut |done, _| replaying.set_position(done))?;
    replaying.finish_and_clear();
    if let Some(path) = &args.plot {
        let series = &run.engine.stats().series()[0];
        let hourly = prewarm_sim::plot::hourly(&trace, cfg.ttl_s, cfg.warm_rate_per_min, series);
        let shown: Vec<_> = cfg.strategies.iter().collect();
        prewarm_sim::plot::write_svg(&hourly, &shown, &trace.name, path)?;
        eprintln!("plot written to {}", path.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&run.report)?);
    } else {
        print!("{}", prewarm_sim::table::render(&run.report));
        if let Some(b) = &run.report.explain {
            print!("{}", prewarm_sim::explain::render(b));
        }
        if let Some(p) = &run.report.planner {
            println!(
                "\ncandidates: {} proposed, {} issued, {} expired waiting for budget, {} not needed by their turn, {} shed",
                p.proposed, p.issued, p.expired, p.rejected, p.shed
            );
        }
    }
    Ok(())
}
