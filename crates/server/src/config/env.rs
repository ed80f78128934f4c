//! The one table of environment variables the daemon reads.
//!
//! Precedence, lowest first: built-in defaults, the TOML file, these
//! variables, command-line flags. `${NAME}` references inside URL templates
//! are a separate mechanism, resolved when templates are validated.
//!
//! The variables are [`ENV_VARS`] (`prewarm serve --help` lists them):
//! every field of the config file has one, except the tables of datasets
//! other than the default `quote`.

use std::str::FromStr;

use super::error::ConfigError;
use super::raw::RawConfig;

mod vars;

pub use vars::ENV_VARS;

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
    let section = v.field.split('.').next().unwrap_or_default();
    let known = match section {
        "warming" => set_warming(raw, v, value)?,
        "server" => set_server(raw, v, value)?,
        "store" => set_store(raw, v, value)?,
        "upstream" => set_upstream(raw, v, value)?,
        "admin" => set_admin(raw, v, value)?,
        "datasets" => set_quote(raw, v, value)?,
        _ => false,
    };
    if known {
        Ok(())
    } else {
        Err(env_error(v, format!("no setter for field {}", v.field)))
    }
}

/// `[warming]` (engine and driver); `Ok(false)`: not one of its fields.
fn set_warming(raw: &mut RawConfig, v: &EnvVar, value: &str) -> Result<bool, ConfigError> {
    let engine = &mut raw.warming.engine;
    let driver = &mut raw.warming.driver;
    let tuning = &mut engine.strategy;
    match v.field {
        "warming.enabled" => driver.enabled = parse_bool(v, value)?,
        "warming.popular_limit" => engine.popular_limit = parse(v, value)?,
        "warming.rate_limit_per_min" => engine.rate_limit_per_min = parse(v, value)?,
        "warming.burst" => engine.burst = Some(parse(v, value)?),
        "warming.strategies" => engine.strategies = parse(v, value)?,
        "warming.max_cost_ratio" => engine.max_cost_ratio = parse(v, value)?,
        "warming.refresh_fraction" => engine.refresh_fraction = parse(v, value)?,
        "warming.popular_interval_s" => engine.popular_interval_s = parse(v, value)?,
        "warming.max_concurrent" => driver.max_concurrent = Some(parse(v, value)?),
        "warming.outside_sessions" => driver.outside_sessions = parse(v, value)?,
        "warming.outside_rate_factor" => driver.outside_rate_factor = parse(v, value)?,
        "warming.pre_market_at" => driver.pre_market_at = parse_hh_mm(v, value)?,
        "warming.pre_market_limit" => driver.pre_market_limit = Some(parse(v, value)?),
        "warming.pre_market_look_ahead_s" => driver.pre_market_look_ahead_s = parse(v, value)?,
        "warming.snapshot_interval_s" => driver.snapshot_interval_s = parse(v, value)?,
        "warming.startup" => driver.startup = parse(v, value)?,
        "warming.startup_deadline_s" => driver.startup_deadline_s = parse(v, value)?,
        "warming.startup_burst" => engine.startup_burst = Some(parse(v, value)?),
        "warming.strategy.predictive_confidence_threshold" => {
            tuning.predictive_confidence_threshold = parse(v, value)?;
        }
        "warming.strategy.predictive_limit" => tuning.predictive_limit = parse(v, value)?,
        "warming.strategy.trending_interval_s" => tuning.trending_interval_s = parse(v, value)?,
        "warming.strategy.trending_limit" => tuning.trending_limit = parse(v, value)?,
        "warming.strategy.sector_interval_s" => tuning.sector_interval_s = parse(v, value)?,
        "warming.strategy.sector_min_lift" => tuning.sector_min_lift = parse(v, value)?,
        "warming.strategy.sector_members" => tuning.sector_members = parse(v, value)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// `[server]`; `Ok(false)`: not one of its fields.
fn set_server(raw: &mut RawConfig, v: &EnvVar, value: &str) -> Result<bool, ConfigError> {
    let s = &mut raw.server;
    let text = || Some(value.to_string());
    match v.field {
        "server.listen" => s.listen = text(),
        "server.admin_listen" => s.admin_listen = text(),
        "server.state_dir" => s.state_dir = Some(value.into()),
        "server.request_timeout_s" => s.request_timeout_s = Some(parse(v, value)?),
        "server.access_queue_capacity" => s.access_queue_capacity = Some(parse(v, value)?),
        "server.fetch_queue_capacity" => s.fetch_queue_capacity = Some(parse(v, value)?),
        "server.max_batch_keys" => s.max_batch_keys = Some(parse(v, value)?),
        "server.metrics_upkeep_interval_s" => s.metrics_upkeep_interval_s = Some(parse(v, value)?),
        "server.log_format" => s.log_format = text(),
        "server.access_token" => s.access_token = text(),
        "server.access_rate_limit_per_min" => s.access_rate_limit_per_min = Some(parse(v, value)?),
        "server.header_read_timeout_s" => s.header_read_timeout_s = Some(parse(v, value)?),
        "server.body_read_timeout_s" => s.body_read_timeout_s = Some(parse(v, value)?),
        "server.write_timeout_s" => s.write_timeout_s = Some(parse(v, value)?),
        "server.keep_alive_idle_s" => s.keep_alive_idle_s = Some(parse(v, value)?),
        "server.max_connections" => s.max_connections = Some(parse(v, value)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// `[store]`; `Ok(false)`: not one of its fields.
fn set_store(raw: &mut RawConfig, v: &EnvVar, value: &str) -> Result<bool, ConfigError> {
    let s = &mut raw.store;
    match v.field {
        "store.backend" => s.backend = Some(value.to_string()),
        "store.memory_limit_mb" => s.memory_limit_mb = Some(parse(v, value)?),
        "store.stale_grace_s" => s.stale_grace_s = Some(parse(v, value)?),
        "store.timeout_ms" => s.timeout_ms = Some(parse(v, value)?),
        "store.backoff_base_ms" => s.backoff_base_ms = Some(parse(v, value)?),
        "store.backoff_max_ms" => s.backoff_max_ms = Some(parse(v, value)?),
        "store.redis_username" => s.redis_username = Some(value.to_string()),
        "store.redis_password" => s.redis_password = Some(crate::store::Secret::new(value)),
        "store.redis_password_file" => s.redis_password_file = Some(value.into()),
        "store.redis_ca_file" => s.redis_ca_file = Some(value.into()),
        _ => return Ok(false),
    }
    Ok(true)
}

/// `[upstream]`; `Ok(false)`: not one of its fields.
fn set_upstream(raw: &mut RawConfig, v: &EnvVar, value: &str) -> Result<bool, ConfigError> {
    let u = &mut raw.upstream;
    match v.field {
        "upstream.timeout_s" => u.timeout_s = Some(parse(v, value)?),
        "upstream.max_concurrent" => u.max_concurrent = Some(parse(v, value)?),
        "upstream.max_retries" => u.max_retries = Some(parse(v, value)?),
        "upstream.rate_limit_per_min" => u.rate_limit_per_min = Some(parse(v, value)?),
        "upstream.demand_reserve_per_min" => u.demand_reserve_per_min = Some(parse(v, value)?),
        "upstream.quota_queue_s" => u.quota_queue_s = Some(parse(v, value)?),
        "upstream.backoff_base_ms" => u.backoff_base_ms = Some(parse(v, value)?),
        "upstream.backoff_max_ms" => u.backoff_max_ms = Some(parse(v, value)?),
        "upstream.retry_after_max_s" => u.retry_after_max_s = Some(parse(v, value)?),
        "upstream.breaker_failures" => u.breaker_failures = Some(parse(v, value)?),
        "upstream.breaker_open_s" => u.breaker_open_s = Some(parse(v, value)?),
        "upstream.breaker_window_calls" => u.breaker_window_calls = Some(parse(v, value)?),
        "upstream.breaker_min_calls" => u.breaker_min_calls = Some(parse(v, value)?),
        "upstream.breaker_failure_ratio" => u.breaker_failure_ratio = Some(parse(v, value)?),
        "upstream.failure_backoff_s" => u.failure_backoff_s = Some(parse(v, value)?),
        "upstream.failure_backoff_max_s" => u.failure_backoff_max_s = Some(parse(v, value)?),
        "upstream.warm_backoff_base_s" => u.warm_backoff_base_s = Some(parse(v, value)?),
        "upstream.warm_backoff_max_s" => u.warm_backoff_max_s = Some(parse(v, value)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// `[admin]`; `Ok(false)`: not one of its fields.
fn set_admin(raw: &mut RawConfig, v: &EnvVar, value: &str) -> Result<bool, ConfigError> {
    match v.field {
        "admin.token" => raw.admin.token = Some(value.to_string()),
        "admin.protect_reads" => raw.admin.protect_reads = Some(parse_bool(v, value)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// `[datasets.quote]` and its sidecar; `Ok(false)`: not one of its fields.
fn set_quote(raw: &mut RawConfig, v: &EnvVar, value: &str) -> Result<bool, ConfigError> {
    let d = raw.dataset_mut(super::validated::DEFAULT_DATASET);
    let text = || Some(value.to_string());
    match v.field {
        "datasets.quote.url" => d.url = text(),
        "datasets.quote.universe" => d.universe = Some(value.into()),
        "datasets.quote.ttl_s" => d.ttl_s = Some(parse(v, value)?),
        "datasets.quote.key_pattern" => d.key_pattern = text(),
        "datasets.quote.serve_stale" => d.serve_stale = Some(parse_bool(v, value)?),
        "datasets.quote.stale_while_revalidate_s" => {
            d.stale_while_revalidate_s = Some(parse(v, value)?);
        }
        "datasets.quote.negative_ttl_s" => d.negative_ttl_s = Some(parse(v, value)?),
        "datasets.quote.uppercase_keys" => d.uppercase_keys = Some(parse_bool(v, value)?),
        "datasets.quote.batch_url" => d.batch_url = text(),
        "datasets.quote.batch_max_keys" => d.batch_max_keys = Some(parse(v, value)?),
        "datasets.quote.batch_items_pointer" => d.batch_items_pointer = text(),
        "datasets.quote.batch_key_field" => d.batch_key_field = text(),
        "datasets.quote.sidecar.redis" => d.sidecar.get_or_insert_default().redis = text(),
        "datasets.quote.sidecar.key_template" => {
            d.sidecar.get_or_insert_default().key_template = text();
        }
        "datasets.quote.sidecar.ttl_s" => {
            d.sidecar.get_or_insert_default().ttl_s = Some(parse(v, value)?);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// `HH:MM`, as `warming.pre_market_at` is written in the file.
fn parse_hh_mm(v: &EnvVar, value: &str) -> Result<chrono::NaiveTime, ConfigError> {
    chrono::NaiveTime::parse_from_str(value, "%H:%M")
        .map_err(|_| env_error(v, format!("expected HH:MM, got {value:?}")))
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

/// `err` naming the environment variable that set its field, when one did
/// and no flag replaced it (`flag_fields`: the fields flags set), so a
/// range error found at validation says which variable to fix; other
/// errors unchanged.
pub fn name_env_source(
    err: ConfigError,
    lookup: &dyn Fn(&str) -> Option<String>,
    flag_fields: &[&str],
) -> ConfigError {
    let ConfigError::Invalid { field, message } = err else {
        return err;
    };
    let set_by = ENV_VARS
        .iter()
        .find(|v| v.field == field && !flag_fields.contains(&v.field) && lookup(v.name).is_some());
    match set_by {
        Some(v) => env_error(v, message),
        None => ConfigError::Invalid { field, message },
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
            "warming.enabled" | "admin.protect_reads" | "datasets.quote.serve_stale" => "false",
            "datasets.quote.uppercase_keys" => "true",
            "warming.strategies" => "popular,time",
            "warming.outside_sessions" => "pause",
            "warming.startup" => "before_ready",
            "warming.pre_market_at" => "07:45",
            "server.listen" | "server.admin_listen" => "127.0.0.1:1",
            "store.backend" => "memory",
            "datasets.quote.url" | "datasets.quote.batch_url" => "http://x/{key}",
            "datasets.quote.sidecar.redis" => "redis://127.0.0.1:1",
            "server.state_dir" => "/tmp/x",
            "datasets.quote.universe" => "/tmp/u.csv",
            "server.log_format" => "json",
            _ => "7",
        }
    }

    #[test]
    fn each_variable_alone_changes_the_config() {
        let untouched = format!("{:?}", RawConfig::default());
        for v in ENV_VARS {
            let mut raw = RawConfig::default();
            apply_env(&mut raw, &|name| {
                (name == v.name).then(|| numeric_value(v.field).to_string())
            })
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
            assert_ne!(format!("{raw:?}"), untouched, "{} changed nothing", v.name);
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
        assert_eq!(
            raw.warming.driver.pre_market_at,
            chrono::NaiveTime::from_hms_opt(7, 45, 0).unwrap()
        );
        assert_eq!(raw.warming.engine.strategy.sector_members, 7);
        assert_eq!(raw.server.listen.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(raw.server.request_timeout_s, Some(7.0));
        assert_eq!(raw.server.access_rate_limit_per_min, Some(7.0));
        assert_eq!(raw.server.body_read_timeout_s, Some(7.0));
        assert_eq!(raw.server.write_timeout_s, Some(7.0));
        assert_eq!(raw.server.max_connections, Some(7));
        assert_eq!(raw.store.backend.as_deref(), Some("memory"));
        assert_eq!(raw.store.stale_grace_s, Some(7.0));
        assert_eq!(raw.store.timeout_ms, Some(7));
        assert_eq!(raw.datasets["quote"].url.as_deref(), Some("http://x/{key}"));
        assert_eq!(raw.datasets["quote"].stale_while_revalidate_s, Some(7.0));
        assert_eq!(raw.datasets["quote"].serve_stale, Some(false));
        assert_eq!(
            raw.datasets["quote"].universe.as_deref(),
            Some(std::path::Path::new("/tmp/u.csv"))
        );
        assert_eq!(raw.upstream.timeout_s, Some(7.0));
        assert_eq!(raw.upstream.max_concurrent, Some(7));
        assert_eq!(raw.upstream.max_retries, Some(7));
        assert_eq!(raw.upstream.rate_limit_per_min, Some(7));
        assert_eq!(raw.upstream.quota_queue_s, Some(7.0));
        assert_eq!(raw.upstream.breaker_window_calls, Some(7));
        assert_eq!(raw.upstream.breaker_failure_ratio, Some(7.0));
        assert_eq!(raw.admin.token.as_deref(), Some("7"));
        assert_eq!(raw.admin.protect_reads, Some(false));
        assert_eq!(raw.server.log_format.as_deref(), Some("json"));
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
