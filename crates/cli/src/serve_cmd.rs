//! `prewarm serve`: the daemon (proxy, admin API, warming driver).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use prewarm_server::config::{self, CliOverrides, LogFormat};
use prewarm_server::serve;

/// Arguments of `prewarm serve`. Flags beat environment variables, which
/// beat the config file, which beats the defaults.
#[derive(Debug, Args)]
#[command(after_help = env_help())]
pub struct ServeArgs {
    /// TOML config file [env: PREWARM_CONFIG] [default: none, built-in
    /// defaults; `--print-config` shows them all].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Proxy listen address [env: PREWARM_LISTEN] [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Admin listen address: dashboard, /healthz, /readyz, /warming/*,
    /// /metrics [env: PREWARM_ADMIN_LISTEN] [default: 127.0.0.1:8003].
    #[arg(long = "admin-listen", value_name = "ADDR")]
    admin_listen: Option<String>,
    /// Entry store: `memory` or `redis://HOST:PORT` [env: PREWARM_STORE]
    /// [default: memory].
    #[arg(long, value_name = "memory|redis://HOST:PORT")]
    store: Option<String>,
    /// Directory for snapshots of learned state, created if missing
    /// [env: PREWARM_STATE_DIR] [default: ./prewarm-state].
    #[arg(long = "state-dir", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Upstream URL template of the `quote` dataset, with `{key}`
    /// [env: PREWARM_UPSTREAM] [default: none: a built-in upstream-sim is
    /// started on loopback].
    #[arg(long, value_name = "URL_TEMPLATE")]
    upstream: Option<String>,
    /// Universe file of the `quote` dataset (CSV `key,group[,weight]`, as
    /// `prewarm gen-trace` writes beside its trace): groups for `sector`
    /// [env: PREWARM_UNIVERSE] [default: none].
    #[arg(long, value_name = "FILE")]
    universe: Option<PathBuf>,
    /// Log lines on stderr: `text` (colours only on a terminal) or `json`
    /// (one object per line) [env: PREWARM_LOG_FORMAT] [default: text].
    #[arg(long = "log-format", value_name = "text|json")]
    log_format: Option<String>,
    /// Print a full config file with every default (examples commented
    /// out; it starts the daemon as it is) and exit.
    #[arg(long)]
    print_config: bool,
}

/// The environment variables `serve` reads, from the daemon's own table.
fn env_help() -> String {
    let mut out =
        String::from("Environment variables (flags beat them; they beat the config file):\n");
    out.push_str(&format!(
        "  {:<28} path of the TOML file when --config is absent\n",
        config::env::CONFIG_PATH_VAR
    ));
    for v in config::ENV_VARS {
        out.push_str(&format!("  {:<28} {} ({})\n", v.name, v.field, v.doc));
    }
    out
}

/// Installs the tracing subscriber on stderr: `RUST_LOG` filter (default
/// `info`), `format` lines, ANSI colours only when stderr is a terminal.
pub fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// A future that resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are
/// installed now, not when the future is first polled, so a signal that
/// arrives right after the `ready` line still shuts down gracefully. Call
/// it inside a tokio runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let streams = signal(SignalKind::interrupt())
            .and_then(|int| Ok((int, signal(SignalKind::terminate())?)));
        async move {
            match streams {
                Ok((mut int, mut term)) => tokio::select! {
                    _ = int.recv() => tracing::info!("SIGINT received"),
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                },
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGINT and SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("Ctrl-C received");
    }
}

/// A multi-threaded tokio runtime.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// Runs `prewarm serve` until SIGINT or SIGTERM, then shuts down
/// gracefully (requests in flight finish, snapshots are saved).
pub fn run(args: ServeArgs) -> Result<()> {
    if args.print_config {
        print!("{}", config::EXAMPLE_TOML);
        return Ok(());
    }
    let overrides = CliOverrides {
        config: args.config,
        listen: args.listen,
        admin_listen: args.admin_listen,
        store: args.store,
        state_dir: args.state_dir,
        upstream: args.upstream,
        universe: args.universe,
        log_format: args.log_format,
    };
    let cfg = config::load(&overrides, &config::process_env).context("configuration")?;
    init_tracing(cfg.server.log_format);
    let rt = runtime()?;
    let signals = {
        let _in_runtime = rt.enter();
        shutdown_signal()
    };
    rt.block_on(serve::run(cfg, signals))?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[derive(Debug, clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn help_shows_every_environment_variable_and_the_defaults() {
        let help = Wrap::command().render_long_help().to_string();
        for v in config::ENV_VARS {
            assert!(help.contains(v.name), "{} missing from:\n{help}", v.name);
        }
        for default in [
            prewarm_server::config::validated::DEFAULT_LISTEN,
            prewarm_server::config::validated::DEFAULT_ADMIN_LISTEN,
            prewarm_server::config::validated::DEFAULT_STATE_DIR,
        ] {
            assert!(help.contains(default), "{default} missing from:\n{help}");
        }
    }
}
