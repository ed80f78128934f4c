//! `prewarm replay`.

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use prewarm_core::engine::EngineConfig;
use prewarm_core::strategies::WarmingConfig;
use prewarm_core::strategy::{StrategyId, StrategySet};
use prewarm_core::ttl::SessionTtls;
use prewarm_sim::frontier::{Frontier, FrontierSweep, ReportWithFrontier};
use prewarm_sim::replay::{ReplayConfig, replay};
use prewarm_sim::trace::{Trace, read_trace_with_progress};
use prewarm_sim::universe::read_universe;
use std::path::{Path, PathBuf};

/// The help of `--strategies`, naming every strategy.
fn strategies_help() -> String {
    format!(
        "Comma-separated strategies ({}), `all` or `none`. Default: the config's \
         `warming.strategies`, else all",
        StrategyId::ALL.map(StrategyId::name).join(",")
    )
}

/// Arguments of `prewarm replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The trace: CSV `timestamp,key[,client]`, gzip'd when it ends in .gz.
    #[arg(long, value_name = "FILE")]
    trace: PathBuf,
    /// Seconds an entry stays fresh.
    #[arg(
        long = "ttl",
        value_name = "SECONDS",
        default_value_t = 60.0,
        allow_negative_numbers = true
    )]
    ttl_s: f64,
    /// TTL per market session, replacing --ttl: comma-separated
    /// `session=value`, sessions `pre`, `regular`, `after`, `closed`,
    /// values in seconds or `until_open` (closed only: fresh until the next
    /// pre-market open on the NYSE calendar); a session left out keeps
    /// --ttl. E.g. `pre=60,regular=15,after=60,closed=until_open`.
    #[arg(long = "ttl-by-session", value_name = "SPEC")]
    ttl_by_session: Option<String>,
    /// Most keys one warming call fetches, as through an upstream batch
    /// endpoint (the daemon's `batch_max_keys`): each call spends one token
    /// and counts once in the API calls and the cost cap. 1: a call per key.
    #[arg(long = "batch-max-keys", value_name = "N", default_value_t = 1)]
    batch_max_keys: usize,
    /// Warming fetches allowed per minute (token bucket, burst equal to
    /// it). Default: the config's `warming.rate_limit_per_min`, else 100.
    #[arg(
        long = "warm-rate",
        value_name = "PER_MIN",
        allow_negative_numbers = true
    )]
    warm_rate_per_min: Option<f64>,
    /// Cache capacity in entries (LRU); unlimited when absent.
    #[arg(long = "capacity", value_name = "ENTRIES")]
    capacity_entries: Option<usize>,
    /// Upstream latency in milliseconds: a fetch started at `f` serves from
    /// `f + L`, and a request for a key in flight is coalesced (no call,
    /// not a hit); the engine plans its lead times with it. Needs an
    /// unlimited cache.
    #[arg(
        long = "latency-ms",
        value_name = "MS",
        default_value_t = 0.0,
        allow_negative_numbers = true,
        conflicts_with = "capacity_entries"
    )]
    latency_ms: f64,
    /// Comma-separated strategies, `all` or `none` (help text: see
    /// [`strategies_help`]).
    #[arg(long, value_name = "LIST", help = strategies_help())]
    strategies: Option<String>,
    /// The daemon's TOML config: its `[warming]` settings (rate, strategies,
    /// thresholds, cost cap, `[warming.strategy]`) are replayed; flags
    /// given here override them. Environment variables are not read.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Refresh-ahead threshold as a fraction of the TTL (default 0.8).
    #[arg(long, value_name = "FRACTION", allow_negative_numbers = true)]
    refresh_fraction: Option<f64>,
    /// The cost cap: API calls (demand and warming) stay at most this
    /// multiple of those of the same trace without warming, plus one bucket
    /// burst (default 1.25). A hard limit.
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    max_cost_ratio: Option<f64>,
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
    /// Draw the cost frontier to this SVG file: hit rate against API cost
    /// for prewarm at caps 1.0 to 1.5, refresh-ahead at 0.5 to 0.95 of the
    /// TTL, the 100 most requested keys every 30 minutes, no warming and
    /// the bound; the points are added to the table and to --json (as
    /// `frontier`). Needs an unlimited cache.
    #[arg(long, value_name = "FILE.svg", conflicts_with = "capacity_entries")]
    frontier: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Restart the replayed process at these instants: `T1,T2,...` (Unix
    /// seconds) or `daily@HH:MM` (exchange time, each trading day). The
    /// cache and fetches in flight empty, the learned state is kept, as a
    /// daemon restart with the memory store; the report adds the time to
    /// recover and the hits lost against the same run without restarts
    /// (`restarts` in --json).
    #[arg(long, value_name = "T1,T2,...|daily@HH:MM")]
    restart_at: Option<prewarm_sim::replay::restarts::RestartSchedule>,
    /// With --restart-at: the restarted runs to make, start-up warming
    /// `on`, `off`, or `both` (two runs, both reported).
    #[arg(
        long,
        value_name = "on|off|both",
        default_value = "both",
        requires = "restart_at"
    )]
    startup: StartupArg,
}

/// `--startup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StartupArg {
    On,
    Off,
    Both,
}

impl StartupArg {
    fn runs(self) -> prewarm_sim::replay::restarts::StartupRuns {
        use prewarm_sim::replay::restarts::{Startup, StartupRuns};
        match self {
            StartupArg::On => StartupRuns::Only(Startup::On),
            StartupArg::Off => StartupRuns::Only(Startup::Off),
            StartupArg::Both => StartupRuns::Both,
        }
    }
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

/// The engine replayed: the TTL and capacity flags, and the warming
/// settings (the defaults, or the daemon config's `[warming]`, then the
/// flags).
fn engine_config(args: &ReplayArgs) -> Result<EngineConfig> {
    let mut w = match &args.config {
        None => WarmingConfig::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config {}", path.display()))?;
            let origin = path.display().to_string();
            prewarm_server::config::RawConfig::from_toml(&text, &origin)?
                .warming_settings()
                .with_context(|| format!("config {origin}"))?
        }
    };
    if let Some(r) = args.warm_rate_per_min {
        w.rate_limit_per_min = r;
    }
    if let Some(list) = &args.strategies {
        w.strategies = StrategySet::parse_list(list).context("--strategies")?;
    }
    let set = |slot: &mut f64, flag: Option<f64>| {
        if let Some(v) = flag {
            *slot = v;
        }
    };
    set(&mut w.refresh_fraction, args.refresh_fraction);
    set(&mut w.max_cost_ratio, args.max_cost_ratio);
    // The bucket holds one minute of the rate, as the bound assumes.
    w.burst = None;
    if !(args.latency_ms.is_finite() && args.latency_ms >= 0.0) {
        anyhow::bail!(
            "--latency-ms must be a number of milliseconds >= 0, got {}",
            args.latency_ms
        );
    }
    let ttl_by_session = args
        .ttl_by_session
        .as_deref()
        .map(|spec| SessionTtls::parse_spec(spec, args.ttl_s))
        .transpose()
        .map_err(|e| {
            let spec = args.ttl_by_session.as_deref().unwrap_or("");
            anyhow::anyhow!("--ttl-by-session {spec}: {e}")
        })?;
    let cfg = EngineConfig {
        ttl_s: args.ttl_s,
        ttl_by_session,
        capacity_entries: args.capacity_entries,
        warming: w,
        upstream_latency_s: args.latency_ms / 1000.0,
        warm_batch_max_keys: args.batch_max_keys,
        ..EngineConfig::default()
    };
    cfg.validate().map_err(|e| named_by_flag(e, args))?;
    Ok(cfg)
}

/// A bad engine setting named by the flag that sets it, with the value
/// given, when a flag set it (otherwise the config file's field).
fn named_by_flag(e: prewarm_core::engine::ConfigError, args: &ReplayArgs) -> anyhow::Error {
    let flag = match e.field {
        "ttl_s" => Some(("--ttl", Some(args.ttl_s.to_string()))),
        "warm_batch_max_keys" => Some(("--batch-max-keys", Some(args.batch_max_keys.to_string()))),
        "capacity_entries" => Some(("--capacity", args.capacity_entries.map(|c| c.to_string()))),
        "warming.max_cost_ratio" => Some((
            "--max-cost-ratio",
            args.max_cost_ratio.map(|v| v.to_string()),
        )),
        "warming.refresh_fraction" => Some((
            "--refresh-fraction",
            args.refresh_fraction.map(|v| v.to_string()),
        )),
        "warming.rate_limit_per_min" => {
            Some(("--warm-rate", args.warm_rate_per_min.map(|v| v.to_string())))
        }
        _ => None,
    };
    match flag {
        Some((flag, Some(given))) => {
            anyhow::anyhow!("{flag} {}, got {given}", e.problem)
        }
        _ => anyhow::Error::new(e),
    }
}

/// Fails early, before any replay, when `path` cannot be written (the
/// frontier and the plot are drawn after minutes of work).
fn check_writable(path: &Path, what: &str) -> Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(|_| ())
        .with_context(|| format!("cannot write the {what} to {}", path.display()))
}

/// Runs `prewarm replay`.
pub fn run(args: ReplayArgs) -> Result<()> {
    if let Some(p) = &args.plot {
        check_writable(p, "plot")?;
    }
    if let Some(p) = &args.frontier {
        check_writable(p, "frontier")?;
    }
    let cfg = ReplayConfig {
        engine: engine_config(&args)?,
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
    if trace.is_empty() {
        anyhow::bail!(
            "trace {} has no requests: nothing to replay",
            args.trace.display()
        );
    }
    let replaying = bar(trace.len() as u64, "replaying");
    let mut run = replay(&trace, &cfg, &mut |done, _| replaying.set_position(done))?;
    replaying.finish_and_clear();
    if let Some(schedule) = &args.restart_at {
        let restarting = bar(0, "restarts");
        restarting.tick();
        let runs = args.startup.runs();
        let r = prewarm_sim::replay::restarts::replay_restarts(&trace, &cfg, schedule, runs)?;
        restarting.finish_and_clear();
        run.report.restarts = Some(r);
    }
    if let Some(path) = &args.plot {
        let series = &run.engine.stats().series()[0];
        let e = &cfg.engine;
        let hourly =
            prewarm_sim::plot::hourly(&trace, e.ttl_s, e.warming.rate_limit_per_min, series);
        let shown: Vec<_> = e.warming.strategies.iter().collect();
        prewarm_sim::plot::write_svg(&hourly, &shown, &trace.name, path)?;
        eprintln!("plot written to {}", path.display());
    }
    let frontier = match &args.frontier {
        Some(path) => Some(frontier(&trace, &cfg, path)?),
        None => None,
    };
    let out = if args.json {
        let json = match &frontier {
            Some(f) => serde_json::to_string_pretty(&ReportWithFrontier {
                report: &run.report,
                frontier: &f.points,
            })?,
            None => serde_json::to_string_pretty(&run.report)?,
        };
        json + "\n"
    } else {
        let mut s = prewarm_sim::table::render(&run.report);
        if let Some(b) = &run.report.explain {
            s += &prewarm_sim::explain::render(b);
        }
        if let Some(p) = &run.report.planner {
            s += &format!(
                "\ncandidates: {} proposed, {} issued, {} expired waiting for budget, {} not needed by their turn, {} shed\n",
                p.proposed, p.issued, p.expired, p.rejected, p.shed
            );
        }
        if let Some(l) = &run.report.learning {
            s += &prewarm_sim::learning::render(l);
        }
        if let Some(f) = &frontier {
            s += &prewarm_sim::frontier::render(f);
        }
        if let Some(r) = &run.report.restarts {
            s += &prewarm_sim::replay::restarts::render(r);
        }
        s
    };
    write_stdout(&out)
}

/// Writes `text` to stdout; a reader that went away (`| head`) ends the
/// output quietly instead of panicking.
fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing the report to stdout"),
    }
}

/// The cost frontier of `trace` under `cfg`, drawn to `path`, with a
/// progress bar over all its runs.
fn frontier(trace: &Trace, cfg: &ReplayConfig, path: &Path) -> Result<Frontier> {
    let sweeping = bar(0, "frontier");
    let f =
        prewarm_sim::frontier::frontier(trace, cfg, &FrontierSweep::default(), &|done, total| {
            sweeping.set_length(total);
            sweeping.set_position(done);
        })?;
    sweeping.finish_and_clear();
    prewarm_sim::plot::write_frontier_svg(&f, path)?;
    eprintln!("frontier written to {}", path.display());
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: ReplayArgs,
    }

    fn args(extra: &[&str]) -> ReplayArgs {
        let mut argv = vec!["replay", "--trace", "t.csv"];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).args
    }

    /// `scripts/strategy-table.py` reads the list in this form.
    #[test]
    fn the_strategies_help_names_every_strategy() {
        use clap::CommandFactory;
        let help = Cli::command().render_help().to_string();
        let names: Vec<&str> = StrategyId::ALL.iter().map(|id| id.name()).collect();
        let listed = format!("({})", names.join(","));
        assert!(help.contains(&listed), "{listed} missing from:\n{help}");
    }

    #[test]
    fn the_daemon_config_is_replayed_and_flags_override_it() {
        let dir = std::env::temp_dir().join(format!("prewarm-replay-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("prewarm.toml");
        std::fs::write(
            &path,
            "[warming]\nrate_limit_per_min = 40\nstrategies = \"popular,time\"\nmax_cost_ratio = 1.1\n\
             [warming.strategy]\ntrending_limit = 7\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let w = engine_config(&args(&["--config", p])).unwrap().warming;
        assert_eq!(w.rate_limit_per_min, 40.0);
        assert_eq!(
            w.strategies,
            StrategySet::parse_list("popular,time").unwrap()
        );
        assert_eq!((w.max_cost_ratio, w.strategy.trending_limit), (1.1, 7));
        let w = engine_config(&args(&[
            "--config",
            p,
            "--warm-rate",
            "10",
            "--max-cost-ratio",
            "1.4",
        ]))
        .unwrap()
        .warming;
        assert_eq!((w.rate_limit_per_min, w.max_cost_ratio), (10.0, 1.4));
        assert_eq!(
            w.strategies,
            StrategySet::parse_list("popular,time").unwrap()
        );
        // Without a config: the engine's defaults.
        let w = engine_config(&args(&[])).unwrap().warming;
        assert_eq!(
            (w.rate_limit_per_min, w.strategies),
            (100.0, StrategySet::all())
        );
        assert_eq!(w, WarmingConfig::default());
        // A bad config names its file and field.
        std::fs::write(&path, "[warming]\nmax_cost_ratio = 0.5\n").unwrap();
        let err = format!("{:#}", engine_config(&args(&["--config", p])).unwrap_err());
        assert!(
            err.contains("prewarm.toml") && err.contains("warming.max_cost_ratio"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The frontier's reference policies know no capacity: clap refuses
    /// the two flags together.
    #[test]
    fn frontier_refuses_a_capacity() {
        let argv = ["replay", "--trace", "t.csv", "--frontier", "f.svg"];
        assert!(Cli::try_parse_from(argv).is_ok());
        let with_capacity = [&argv[..], &["--capacity", "10"]].concat();
        let err = Cli::try_parse_from(with_capacity).unwrap_err().to_string();
        assert!(
            err.contains("--capacity") && err.contains("--frontier"),
            "{err}"
        );
    }

    #[test]
    fn ttl_by_session_sets_the_policy_and_keeps_ttl_for_sessions_left_out() {
        use prewarm_core::ttl::SessionTtl;
        let cfg = engine_config(&args(&[
            "--ttl",
            "30",
            "--ttl-by-session",
            "closed=until_open",
        ]))
        .unwrap();
        let t = cfg.ttl_by_session.expect("set");
        assert_eq!(
            (t.closed, t.regular),
            (SessionTtl::UntilOpen, SessionTtl::Seconds(30.0))
        );
    }

    /// A bad flag value was reported under the engine's field name
    /// (`warming.max_cost_ratio`) and a negative latency as an unknown
    /// argument: the error names the flag and the value given.
    #[test]
    fn bad_flag_values_are_named_by_their_flag_with_the_value_given() {
        for (argv, want) in [
            (&["--max-cost-ratio", "0.5"][..], "--max-cost-ratio must be"),
            (&["--ttl", "0"][..], "--ttl must be > 0, got 0"),
            (&["--latency-ms", "-5"][..], "--latency-ms must be"),
            (
                &["--warm-rate", "-3"][..],
                "--warm-rate must be >= 0, got -3",
            ),
            (&["--refresh-fraction", "2"][..], "--refresh-fraction"),
            (
                &["--ttl-by-session", "regular=until_open"][..],
                "`until_open` is only for the closed session",
            ),
            (
                &["--ttl-by-session", "closed=-1"][..],
                "the TTL of session `closed` must be > 0",
            ),
        ] {
            let err = format!("{:#}", engine_config(&args(argv)).unwrap_err());
            assert!(err.contains(want), "{argv:?}: {err}");
            assert!(err.contains(argv[1]), "{argv:?} echoes the value: {err}");
        }
    }
}
