//! `prewarm gen-trace`.

use anyhow::{Context, Result, anyhow};
use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use prewarm_sim::r#gen::{GenConfig, GenError, PollMode, ScannerSpec, universe_path, write_trace};
use std::path::PathBuf;

/// How a watchlist poll requests its tickers (`--poll-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PollModeArg {
    /// One request per ticker, in watchlist order, a few ms apart.
    Sequential,
    /// The whole watchlist at the same millisecond (a batch quote call).
    Batched,
}

/// Arguments of `prewarm gen-trace`. Without any of the workload flags the
/// output is the default workload, byte for byte.
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
    /// Number of tickers in the universe (scanner subsets and watchlists
    /// shrink to fit a small one).
    #[arg(long, default_value_t = 2000)]
    universe_size: usize,
    /// Users polling watchlists.
    #[arg(long, default_value_t = 60)]
    users: usize,
    /// Scanners kept, of the default four in this order: top 200 every
    /// 5 min, top 100 every 15 min over extended hours, sector 0 every
    /// 5 min, sector 1 every 15 min.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u8).range(0..=4))]
    scanners: u8,
    /// Exponent s of the Zipf popularity (weight ∝ rank^-s): higher puts
    /// more of the traffic on the head. Within [0, 10].
    #[arg(long, value_name = "S", default_value_t = GenConfig::default().zipf_exponent)]
    zipf_exponent: f64,
    /// Standard deviation of each ticker's daily random-walk step in log
    /// popularity: 0 freezes the ranks, 0.1 swaps a few head ranks a day,
    /// 0.5 reshuffles the head within days. Within [0, 5].
    #[arg(long, value_name = "SIGMA", default_value_t = GenConfig::default().daily_drift)]
    daily_drift: f64,
    /// Mean news events per trading day, each a burst of anonymous lookups
    /// of one symbol and its sector peers (weekends: the lull fraction).
    #[arg(long, value_name = "EVENTS", default_value_t = GenConfig::default().news.events_per_trading_day)]
    news_per_day: f64,
    /// Most lookups of one news burst (sizes are log-uniform from
    /// the minimum of 50).
    #[arg(long, value_name = "LOOKUPS", default_value_t = GenConfig::default().news.lookups_max)]
    news_lookups_max: f64,
    /// Mean anonymous one-off lookups per trading day (the long tail).
    #[arg(long, value_name = "LOOKUPS", default_value_t = GenConfig::default().lookups.per_trading_day,
          conflicts_with = "anonymous_share")]
    lookups_per_day: f64,
    /// Share of all requests made by anonymous clients (one-off lookups
    /// and news lookers), within [0, 0.999]: the lookup volume is chosen to
    /// reach it (instead of --lookups-per-day).
    #[arg(long, value_name = "FRACTION")]
    anonymous_share: Option<f64>,
    /// How a watchlist poll requests its tickers.
    #[arg(long, value_enum, default_value_t = PollModeArg::Sequential)]
    poll_mode: PollModeArg,
    /// Shortest user poll period, seconds (each user's is log-uniform
    /// between the two).
    #[arg(long, value_name = "SECONDS", default_value_t = GenConfig::default().user.poll_period_min_s)]
    poll_period_min_s: f64,
    /// Longest user poll period, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = GenConfig::default().user.poll_period_max_s)]
    poll_period_max_s: f64,
    /// Timer jitter of each poll: a uniform delay of up to this many
    /// milliseconds after its scheduled time.
    #[arg(long, value_name = "MS", default_value_t = GenConfig::default().user.poll_jitter_ms)]
    poll_jitter_ms: u32,
    /// Write `timestamp,key` without the client column, as recorded market
    /// traffic without client ids looks.
    #[arg(long)]
    no_client_column: bool,
    /// Output trace: CSV `timestamp,key,client`, gzip'd if it ends in .gz.
    /// The universe (`key,sector`) is written beside it as
    /// `<stem>.universe.csv`.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// The flag that sets each config field, to name it in errors.
const FLAG_OF_FIELD: &[(&str, &str)] = &[
    ("days", "--days"),
    ("start_date", "--start"),
    ("universe_size", "--universe-size"),
    ("users", "--users"),
    ("zipf_exponent", "--zipf-exponent"),
    ("daily_drift", "--daily-drift"),
    ("news.events_per_trading_day", "--news-per-day"),
    ("news.lookups_max", "--news-lookups-max"),
    ("lookups.per_trading_day", "--lookups-per-day"),
    ("lookups.anonymous_share", "--anonymous-share"),
    ("user.poll_period_min_s", "--poll-period-min-s"),
    ("user.poll_period_max_s", "--poll-period-max-s"),
    ("user.poll_jitter_ms", "--poll-jitter-ms"),
];

/// The generator config the flags describe, validated; errors name the flag.
fn config(args: &GenArgs) -> Result<GenConfig> {
    let mut cfg = GenConfig {
        days: args.days,
        seed: args.seed,
        start_date: args.start,
        universe_size: args.universe_size,
        users: args.users,
        zipf_exponent: args.zipf_exponent,
        daily_drift: args.daily_drift,
        client_column: !args.no_client_column,
        ..GenConfig::default()
    };
    cfg.scanners = ScannerSpec::defaults();
    cfg.scanners.truncate(usize::from(args.scanners));
    cfg.news.events_per_trading_day = args.news_per_day;
    cfg.news.lookups_max = args.news_lookups_max;
    cfg.lookups.per_trading_day = args.lookups_per_day;
    cfg.lookups.anonymous_share = args.anonymous_share;
    cfg.user.poll_mode = match args.poll_mode {
        PollModeArg::Sequential => PollMode::Sequential,
        PollModeArg::Batched => PollMode::Batched,
    };
    cfg.user.poll_period_min_s = args.poll_period_min_s;
    cfg.user.poll_period_max_s = args.poll_period_max_s;
    cfg.user.poll_jitter_ms = args.poll_jitter_ms;
    cfg.fit_to_universe();
    cfg.validate().map_err(name_flag)?;
    Ok(cfg)
}

/// A config error restated with the flag that sets the field, when one does.
fn name_flag(err: GenError) -> anyhow::Error {
    if let GenError::Config { field, reason } = &err
        && let Some((_, flag)) = FLAG_OF_FIELD.iter().find(|(f, _)| f == field)
    {
        return anyhow!("invalid {flag}: {reason}");
    }
    err.into()
}

/// Runs `prewarm gen-trace`.
pub fn run(args: GenArgs) -> Result<()> {
    let cfg = config(&args)?;
    let pb = ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} {human_pos} requests written ({per_sec}) {elapsed_precise}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let summary = write_trace(&cfg, &args.out, |n| pb.set_position(n))
        .map_err(name_flag)
        .with_context(|| format!("generating {}", args.out.display()))?;
    pb.finish_and_clear();
    let anonymous_share = summary.anonymous_requests as f64 / summary.requests.max(1) as f64;
    eprintln!(
        "wrote {} requests over {} days ({} trading) on {} keys to {} \
         ({:.1} % anonymous, {:.0} lookups per trading day); universe in {}",
        summary.requests,
        summary.days,
        summary.trading_days,
        summary.distinct_keys,
        args.out.display(),
        anonymous_share * 100.0,
        summary.lookups_per_trading_day,
        universe_path(&args.out).display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: GenArgs,
    }

    fn parse(extra: &[&str]) -> Result<GenArgs, clap::Error> {
        let mut argv = vec!["gen-trace", "--out", "t.csv"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).map(|c| c.args)
    }

    #[test]
    fn no_workload_flag_gives_the_default_config() {
        let cfg = config(&parse(&[]).unwrap()).unwrap();
        assert_eq!(cfg, GenConfig::default());
    }

    #[test]
    fn knobs_reach_the_config() {
        let args = parse(&[
            "--zipf-exponent=1.3",
            "--daily-drift=0.4",
            "--news-per-day=90",
            "--news-lookups-max=4000",
            "--anonymous-share=0.7",
            "--poll-mode=batched",
            "--poll-period-min-s=5",
            "--poll-period-max-s=30",
            "--poll-jitter-ms=0",
            "--scanners=1",
            "--no-client-column",
        ])
        .unwrap();
        let cfg = config(&args).unwrap();
        assert_eq!((cfg.zipf_exponent, cfg.daily_drift), (1.3, 0.4));
        assert_eq!(cfg.news.events_per_trading_day, 90.0);
        assert_eq!(cfg.news.lookups_max, 4000.0);
        assert_eq!(cfg.lookups.anonymous_share, Some(0.7));
        assert_eq!(cfg.user.poll_mode, PollMode::Batched);
        assert_eq!(
            (cfg.user.poll_period_min_s, cfg.user.poll_period_max_s),
            (5.0, 30.0)
        );
        assert_eq!(cfg.user.poll_jitter_ms, 0);
        assert_eq!(cfg.scanners, ScannerSpec::defaults()[..1]);
        assert!(!cfg.client_column);
    }

    #[test]
    fn bad_knob_values_are_errors_naming_the_flag() {
        for (flags, flag) in [
            (&["--zipf-exponent=-1"][..], "--zipf-exponent"),
            (&["--daily-drift=nan"], "--daily-drift"),
            (&["--anonymous-share=1"], "--anonymous-share"),
            (&["--news-per-day=-3"], "--news-per-day"),
            (&["--news-lookups-max=10"], "--news-lookups-max"),
            (
                &["--poll-period-min-s=60", "--poll-period-max-s=30"],
                "--poll-period-max-s",
            ),
            (&["--universe-size=0"], "--universe-size"),
        ] {
            let err = config(&parse(flags).unwrap()).unwrap_err().to_string();
            assert!(err.contains(flag), "{flags:?}: {err}");
        }
        for (flags, flag) in [
            (&["--scanners=5"][..], "--scanners"),
            (&["--poll-mode=bulk"], "--poll-mode"),
            (
                &["--anonymous-share=0.5", "--lookups-per-day=10"],
                "--anonymous-share",
            ),
        ] {
            let err = parse(flags).unwrap_err().to_string();
            assert!(err.contains(flag), "{flags:?}: {err}");
        }
    }

    #[test]
    fn a_small_universe_shrinks_scanners_and_watchlists() {
        let cfg = config(&parse(&["--universe-size=30"]).unwrap()).unwrap();
        assert_eq!(cfg.user.watchlist_max, 30);
        assert_eq!(cfg.scanners.len(), 4);
    }
}
