//! The one table of environment variables the daemon reads.
//!
//! Precedence, lowest first: built-in defaults, the TOML file, these
//! variables, command-line flags. `${NAME}` references inside URL templates
//! are a separate mechanism, resolved when templates are validated.
//!
//! | variable | field |
//! |---|---|
//! | `PREWARM_CONFIG` | path of the TOML file (when `--config` is absent) |
//! | `WARMING_ENABLED` | `warming.enabled` |
//! | `WARMING_POPULAR_LIMIT` | `warming.popular_limit` |
//! | `WARMING_RATE_LIMIT` | `warming.rate_limit_per_min` |
//! | `WARMING_STRATEGIES` | `warming.strategies` |
//! | `WARMING_OUTSIDE_SESSIONS` | `warming.outside_sessions` |
//! | `WARMING_MEMORY_LIMIT_MB` | `store.memory_limit_mb` |
//! | `PREWARM_LISTEN` | `server.listen` |
//! | `PREWARM_ADMIN_LISTEN` | `server.admin_listen` |
//! | `PREWARM_STATE_DIR` | `server.state_dir` |
//! | `PREWARM_REQUEST_TIMEOUT_S` | `server.request_timeout_s` |
//! | `PREWARM_STORE` | `store.backend` |
//! | `PREWARM_STALE_GRACE_S` | `store.stale_grace_s` |
//! | `PREWARM_UPSTREAM` | `datasets.quote.url` |
//! | `PREWARM_UNIVERSE` | `datasets.quote.universe` |
//! | `PREWARM_UPSTREAM_TIMEOUT_S` | `upstream.timeout_s` |
//! | `PREWARM_MAX_CONCURRENT` | `upstream.max_concurrent` |
//! | `PREWARM_MAX_RETRIES` | `upstream.max_retries` |
//! | `PREWARM_ADMIN_TOKEN` | `admin.token` |
//! | `PREWARM_LOG_FORMAT` | `server.log_format` |
//! | `PREWARM_ACCESS_TOKEN` | `server.access_token` |
//! | `WARMING_STARTUP` | `warming.startup` |
//! | `WARMING_STARTUP_DEADLINE_S` | `warming.startup_deadline_s` |
//! | `WARMING_STARTUP_BURST` | `warming.startup_burst` |

use std::str::FromStr;

use super::error::ConfigError;
use super::raw::RawConfig;

/// Names the config file when `--config` is not given.
pub const CONFIG_PATH_VAR: &str = "PREWARM_CONFIG";

/// One environment variable and the config field it sets.
#[derive(Debug, Clone, Copy)]
pub struct EnvVar {
    /// Variable name.
    pub name: &'static str,
    /// Dotted config field it overrides.
    pub field: &'static str,
    /// One-line description.
    pub doc: &'static str,
}

/// Every variable that overrides a config field (see the module docs).
pub const ENV_VARS: &[EnvVar] = &[
    var(
        "WARMING_ENABLED",
        "warming.enabled",
        "turn warming on or off (true/false)",
    ),
    var(
        "WARMING_POPULAR_LIMIT",
        "warming.popular_limit",
        "popular keys kept warm",
    ),
    var(
        "WARMING_RATE_LIMIT",
        "warming.rate_limit_per_min",
        "warming fetches per minute",
    ),
    var(
        "WARMING_STRATEGIES",
        "warming.strategies",
        "strategies allowed to warm (all, none, or a comma list)",
    ),
    var(
        "WARMING_OUTSIDE_SESSIONS",
        "warming.outside_sessions",
        "warming while the market is closed: run, reduce or pause",
    ),
    var(
        "WARMING_MEMORY_LIMIT_MB",
        "store.memory_limit_mb",
        "memory store cap, MiB",
    ),
    var("PREWARM_LISTEN", "server.listen", "proxy listen address"),
    var(
        "PREWARM_ADMIN_LISTEN",
        "server.admin_listen",
        "admin listen address",
    ),
    var(
        "PREWARM_STATE_DIR",
        "server.state_dir",
        "directory for learned state",
    ),
    var(
        "PREWARM_REQUEST_TIMEOUT_S",
        "server.request_timeout_s",
        "client wait, seconds",
    ),
    var(
        "PREWARM_STORE",
        "store.backend",
        "memory or redis://HOST:PORT",
    ),
    var(
        "PREWARM_STALE_GRACE_S",
        "store.stale_grace_s",
        "stale retention, seconds",
    ),
    var(
        "PREWARM_UPSTREAM",
        "datasets.quote.url",
        "upstream URL template of quote",
    ),
    var(
        "PREWARM_UNIVERSE",
        "datasets.quote.universe",
        "universe file of quote (CSV key,group[,weight])",
    ),
    var(
        "PREWARM_UPSTREAM_TIMEOUT_S",
        "upstream.timeout_s",
        "one attempt, seconds",
    ),
    var(
        "PREWARM_MAX_CONCURRENT",
        "upstream.max_concurrent",
        "upstream calls in flight",
    ),
    var(
        "PREWARM_MAX_RETRIES",
        "upstream.max_retries",
        "retries after 5xx/timeout",
    ),
    var(
        "PREWARM_ADMIN_TOKEN",
        "admin.token",
        "bearer token of the admin listener (POST routes disabled without it)",
    ),
    var(
        "PREWARM_LOG_FORMAT",
        "server.log_format",
        "log lines on stderr: text or json",
    ),
    var(
        "PREWARM_ACCESS_TOKEN",
        "server.access_token",
        "bearer token of POST /v1/access (the route is disabled without it)",
    ),
    var(
        "WARMING_STARTUP",
        "warming.startup",
        "start-up cycle after a restart: before_ready, after_ready or off",
    ),
    var(
        "WARMING_STARTUP_DEADLINE_S",
        "warming.startup_deadline_s",
        "longest /readyz waits for the start-up cycle, seconds",
    ),
    var(
        "WARMING_STARTUP_BURST",
        "warming.startup_burst",
        "fetches the start-up cycle may make at once (default: one bucket)",
    ),
];

const fn var(name: &'static str, field: &'static str, doc: &'static str) -> EnvVar {
    EnvVar { name, field, doc }
}

/// Applies every set variable of [`ENV_VARS`] onto `raw`.
pub fn apply_env(
    raw: &mut RawConfig,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for v in ENV_VARS {
        if let Some(value) = lookup(v.name) {
            set_field(raw, v, value.trim())?;
        }
    }
    Ok(())
}

fn set_field(raw: &mut RawConfig, v: &EnvVar, value: &str) -> Result<(), ConfigError> {
    let s = || Some(value.to_string());
    match v.field {
        "warming.enabled" => raw.warming.driver.enabled = parse_bool(v, value)?,
        "warming.popular_limit" => raw.warming.engine.popular_limit = parse(v, value)?,
        "warming.rate_limit_per_min" => raw.warming.engine.rate_limit_per_min = parse(v, value)?,
        "warming.strategies" => raw.warming.engine.strategies = parse(v, value)?,
        "warming.outside_sessions" => raw.warming.driver.outside_sessions = parse(v, value)?,
        "store.memory_limit_mb" => raw.store.memory_limit_mb = Some(parse(v, value)?),
        "server.listen" => raw.server.listen = s(),
        "server.admin_listen" => raw.server.admin_listen = s(),
        "server.state_dir" => raw.server.state_dir = Some(value.into()),
        "server.request_timeout_s" => raw.server.request_timeout_s = Some(parse(v, value)?),
        "store.backend" => raw.store.backend = s(),
        "store.stale_grace_s" => raw.store.stale_grace_s = Some(parse(v, value)?),
        "datasets.quote.url" => raw.dataset_mut("quote").url = s(),
        "datasets.quote.universe" => raw.dataset_mut("quote").universe = Some(value.into()),
        "upstream.timeout_s" => raw.upstream.timeout_s = Some(parse(v, value)?),
        "upstream.max_concurrent" => raw.upstream.max_concurrent = Some(parse(v, value)?),
        "upstream.max_retries" => raw.upstream.max_retries = Some(parse(v, value)?),
        "admin.token" => raw.admin.token = s(),
        "server.log_format" => raw.server.log_format = s(),
        "server.access_token" => raw.server.access_token = s(),
        "warming.startup" => raw.warming.driver.startup = parse(v, value)?,
        "warming.startup_deadline_s" => raw.warming.driver.startup_deadline_s = parse(v, value)?,
        "warming.startup_burst" => raw.warming.engine.startup_burst = Some(parse(v, value)?),
        other => return Err(env_error(v, format!("no setter for field {other}"))),
    }
    Ok(())
}

fn parse<T: FromStr>(v: &EnvVar, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value
        .parse::<T>()
        .map_err(|e| env_error(v, format!("{e}: {value:?}")))
}

fn parse_bool(v: &EnvVar, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(env_error(
            v,
            format!("expected true or false, got {value:?}"),
        )),
    }
}

fn env_error(v: &EnvVar, message: String) -> ConfigError {
    ConfigError::Env {
        var: v.name.to_string(),
        field: v.field.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_value(field: &str) -> &'static str {
        match field {
            "warming.enabled" => "false",
            "warming.strategies" => "popular,time",
            "warming.outside_sessions" => "pause",
            "server.listen" | "server.admin_listen" => "127.0.0.1:1",
            "store.backend" => "memory",
            "datasets.quote.url" => "http://x/{key}",
            "server.state_dir" => "/tmp/x",
            "datasets.quote.universe" => "/tmp/u.csv",
            "server.log_format" => "json",
            "warming.startup" => "before_ready",
            _ => "7",
        }
    }

    #[test]
    fn every_variable_sets_its_field() {
        let mut raw = RawConfig::default();
        apply_env(&mut raw, &|name| {
            ENV_VARS
                .iter()
                .find(|v| v.name == name)
                .map(|v| numeric_value(v.field).to_string())
        })
        .unwrap();
        assert!(!raw.warming.driver.enabled);
        assert_eq!(raw.warming.engine.popular_limit, 7);
        assert_eq!(raw.warming.engine.rate_limit_per_min, 7.0);
        assert_eq!(raw.store.memory_limit_mb, Some(7));
        assert_eq!(raw.warming.engine.strategies.to_string(), "popular,time");
        assert_eq!(
            raw.warming.driver.outside_sessions,
            crate::driver::settings::OutsideSessions::Pause
        );
        assert_eq!(raw.server.listen.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(raw.server.request_timeout_s, Some(7.0));
        assert_eq!(raw.store.backend.as_deref(), Some("memory"));
        assert_eq!(raw.store.stale_grace_s, Some(7.0));
        assert_eq!(raw.datasets["quote"].url.as_deref(), Some("http://x/{key}"));
        assert_eq!(
            raw.datasets["quote"].universe.as_deref(),
            Some(std::path::Path::new("/tmp/u.csv"))
        );
        assert_eq!(raw.upstream.timeout_s, Some(7.0));
        assert_eq!(raw.upstream.max_concurrent, Some(7));
        assert_eq!(raw.upstream.max_retries, Some(7));
        assert_eq!(raw.admin.token.as_deref(), Some("7"));
        assert_eq!(raw.server.log_format.as_deref(), Some("json"));
        assert_eq!(
            raw.warming.driver.startup,
            crate::driver::settings::StartupMode::BeforeReady
        );
        assert_eq!(raw.warming.driver.startup_deadline_s, 7.0);
        assert_eq!(raw.warming.engine.startup_burst, Some(7.0));
    }

    #[test]
    fn bad_value_names_variable_and_field() {
        let mut raw = RawConfig::default();
        let err = apply_env(&mut raw, &|name| {
            (name == "WARMING_RATE_LIMIT").then(|| "lots".to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("WARMING_RATE_LIMIT"), "{err}");
        assert!(err.contains("warming.rate_limit_per_min"), "{err}");
        let err = apply_env(&mut raw, &|name| {
            (name == "WARMING_STRATEGIES").then(|| "popular,bogus".to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("WARMING_STRATEGIES") && err.contains("`bogus`"),
            "{err}"
        );
    }
}
