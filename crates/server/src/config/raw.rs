//! Stage one of config parsing: the TOML file as written, unknown fields
//! rejected (so a typo names itself). Tables are mirrored with every field
//! optional, except `[warming]`, which deserializes straight into the
//! typed settings of the engine and the driver ([`WarmingSection`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use prewarm_core::strategies::WarmingConfig;
use serde::Deserialize;

use super::error::ConfigError;
use super::warming::WarmingSection;

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`: listeners, state, request handling.
    #[serde(default)]
    pub server: RawServer,
    /// `[store]`: where entries live.
    #[serde(default)]
    pub store: RawStore,
    /// `[upstream]`: the HTTP client shared by every dataset.
    #[serde(default)]
    pub upstream: RawUpstream,
    /// `[warming]` (with `[warming.strategy]`): the engines' settings and
    /// the driver's.
    #[serde(default)]
    pub warming: WarmingSection,
    /// `[admin]`: access to the admin listener.
    #[serde(default)]
    pub admin: RawAdmin,
    /// `[datasets.NAME]`: one table per dataset.
    #[serde(default)]
    pub datasets: BTreeMap<String, RawDataset>,
}

/// `[server]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Proxy listener, e.g. `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// Admin listener, e.g. `127.0.0.1:8003`.
    pub admin_listen: Option<String>,
    /// Directory for learned state.
    pub state_dir: Option<PathBuf>,
    /// How long a client request may wait for upstream, seconds.
    pub request_timeout_s: Option<f64>,
    /// Capacity of the access-event channel.
    pub access_queue_capacity: Option<usize>,
    /// Capacity of the fetch-event channel.
    pub fetch_queue_capacity: Option<usize>,
    /// Most keys accepted by one batch read.
    pub max_batch_keys: Option<usize>,
    /// How often the metrics recorder's upkeep runs, seconds.
    pub metrics_upkeep_interval_s: Option<f64>,
    /// Log lines on stderr: `text` or `json`.
    pub log_format: Option<String>,
    /// Bearer token of `POST /v1/access` (usually from
    /// `PREWARM_ACCESS_TOKEN`); without one the route is disabled.
    pub access_token: Option<String>,
    /// Longest a request head may take to arrive, seconds (both listeners).
    pub header_read_timeout_s: Option<f64>,
    /// Longest a request body may take to arrive once its head has,
    /// seconds (both listeners).
    pub body_read_timeout_s: Option<f64>,
    /// Longest a response write may make no progress (a client that does
    /// not read), seconds (both listeners).
    pub write_timeout_s: Option<f64>,
    /// Longest a kept-alive connection may wait for its next request,
    /// seconds (both listeners).
    pub keep_alive_idle_s: Option<f64>,
    /// Most connections open at once per listener (default: from the
    /// process's file limit).
    pub max_connections: Option<usize>,
    /// Events `POST /v1/access` accepts per minute on the proxy listener
    /// (a batch counts its items).
    pub access_rate_limit_per_min: Option<f64>,
}

/// `[admin]`. `Debug` hides the token.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Bearer token of the admin listener (usually from
    /// `PREWARM_ADMIN_TOKEN`); without one, mutating routes are disabled.
    pub token: Option<String>,
    /// Whether read routes need the token too.
    pub protect_reads: Option<bool>,
}

impl std::fmt::Debug for RawAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawAdmin")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("protect_reads", &self.protect_reads)
            .finish()
    }
}

/// `[store]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// `memory` or `redis://HOST:PORT`.
    pub backend: Option<String>,
    /// Cap on the memory store, in MiB of entry bytes.
    pub memory_limit_mb: Option<u64>,
    /// How long past its TTL an entry is kept for STALE serving, seconds.
    pub stale_grace_s: Option<f64>,
    /// Longest a Redis store may take to connect or answer, milliseconds.
    pub timeout_ms: Option<u64>,
    /// Redis skipped this long after a failure, milliseconds (doubling
    /// with each failure in a row).
    pub backoff_base_ms: Option<u64>,
    /// The longest such skip, milliseconds.
    pub backoff_max_ms: Option<u64>,
    /// Redis ACL user (default: the URL's, else `default`).
    pub redis_username: Option<String>,
    /// Redis password (prefer `redis_password_file` or the environment);
    /// wins over a password in the URL.
    pub redis_password: Option<crate::store::Secret>,
    /// File whose first line is the Redis password.
    pub redis_password_file: Option<PathBuf>,
    /// PEM CA certificate(s) trusted for a `rediss://` server (default:
    /// the system's trust store).
    pub redis_ca_file: Option<PathBuf>,
}

/// `[upstream]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// Timeout of one upstream attempt, seconds.
    pub timeout_s: Option<f64>,
    /// Most upstream requests in flight at once.
    pub max_concurrent: Option<usize>,
    /// Retries after a 5xx or a timeout.
    pub max_retries: Option<u32>,
    /// First backoff, milliseconds (doubles per retry, full jitter).
    pub backoff_base_ms: Option<u64>,
    /// Largest backoff, milliseconds.
    pub backoff_max_ms: Option<u64>,
    /// Longest pause honoured from a 429's `Retry-After`, seconds.
    pub retry_after_max_s: Option<f64>,
    /// Consecutive failed attempts on one host that open its breaker.
    pub breaker_failures: Option<u32>,
    /// How long an open breaker refuses calls before a probe, seconds.
    pub breaker_open_s: Option<f64>,
    /// Attempts on one host over which its failure rate is measured.
    pub breaker_window_calls: Option<u32>,
    /// Fewest attempts in that window before the rate can open the breaker.
    pub breaker_min_calls: Option<u32>,
    /// Failed share of the window (0 to 1) above which the breaker opens.
    pub breaker_failure_ratio: Option<f64>,
    /// How long a key whose fetch failed is not fetched again, seconds
    /// (doubles per consecutive failure of the key).
    pub failure_backoff_s: Option<f64>,
    /// Cap of that back-off, seconds.
    pub failure_backoff_max_s: Option<f64>,
    /// First warming back-off after a 429 or a failure, seconds.
    pub warm_backoff_base_s: Option<f64>,
    /// Longest warming back-off, seconds.
    pub warm_backoff_max_s: Option<f64>,
    /// The upstream plan's calls per minute, demand and warming together
    /// (default: no quota).
    pub rate_limit_per_min: Option<u32>,
    /// Calls per minute of that quota warming leaves to demand (default:
    /// a tenth of it, rounded up).
    pub demand_reserve_per_min: Option<u32>,
    /// Longest a demand fetch queues for the quota before 503, seconds
    /// (capped by `server.request_timeout_s`).
    pub quota_queue_s: Option<f64>,
}

/// `[datasets.NAME]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataset {
    /// Upstream URL template with `{key}` and optional `${ENV_VAR}`s.
    pub url: Option<String>,
    /// Request headers sent with every upstream call of the dataset,
    /// values with optional `${ENV_VAR}`s (never shown or logged).
    pub headers: Option<BTreeMap<String, String>>,
    /// How long an upstream 404 is remembered and answered 404 without a
    /// call, seconds (0 disables).
    pub negative_ttl_s: Option<f64>,
    /// Whether keys are upper-cased before aliases and validation.
    pub uppercase_keys: Option<bool>,
    /// Other spellings of keys and the canonical key each stands for
    /// (`"BRK-B" = "BRK.B"`).
    pub aliases: Option<BTreeMap<String, String>>,
    /// Freshness lifetime of an entry, seconds.
    pub ttl_s: Option<f64>,
    /// Regex every key must match (anchored automatically).
    pub key_pattern: Option<String>,
    /// Whether stale entries are served when upstream cannot answer.
    pub serve_stale: Option<bool>,
    /// How long past its TTL a stale entry is answered at once while it is
    /// refreshed in the background, seconds (default: `store.stale_grace_s`).
    pub stale_while_revalidate_s: Option<f64>,
    /// Batch URL template with `{keys}` (comma-joined).
    pub batch_url: Option<String>,
    /// Most keys per upstream batch call.
    pub batch_max_keys: Option<usize>,
    /// JSON pointer to the items in a batch response (default: the root).
    pub batch_items_pointer: Option<String>,
    /// Field naming the key when the items are an array of objects; when
    /// absent the items must be an object keyed by key.
    pub batch_key_field: Option<String>,
    /// Universe file (CSV `key,group[,weight]`) giving keys their groups
    /// (sectors, indices) for the `sector` strategy; read at start.
    pub universe: Option<PathBuf>,
    /// Optional write-through into the application's own Redis.
    pub sidecar: Option<RawSidecar>,
    /// Optional TTL per market session (`config/session_ttl.rs`).
    pub ttl_by_session: Option<super::session_ttl::RawSessionTtl>,
}

/// `[datasets.NAME.sidecar]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSidecar {
    /// `redis://HOST:PORT` of the application's Redis.
    pub redis: Option<String>,
    /// Key template with `{key}`, e.g. `quote:{key}`.
    pub key_template: Option<String>,
    /// TTL of written keys, seconds (default: the dataset's `ttl_s`).
    pub ttl_s: Option<f64>,
}

impl RawConfig {
    /// Parses TOML text; `origin` (a file path) prefixes every error.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })
    }

    /// The engine's `[warming]` settings, the whole table validated on its
    /// own (for `prewarm replay --config`: no datasets, environment or
    /// upstream needed). Errors name the field.
    pub fn warming_settings(&self) -> Result<WarmingConfig, ConfigError> {
        self.warming.validate()?;
        let mut engine = self.warming.engine.clone();
        if !self.warming.driver.enabled {
            // `enabled = false`: the daemon warms nothing, so neither does
            // a replay of its config.
            engine.strategies = prewarm_core::strategy::StrategySet::NONE;
        }
        Ok(engine)
    }

    /// The dataset table `name`, created empty if absent.
    pub fn dataset_mut(&mut self, name: &str) -> &mut RawDataset {
        self.datasets.entry(name.to_string()).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_is_named_with_its_line() {
        let err = RawConfig::from_toml("[datasets.quote]\nttl = 5\n", "prewarm.toml").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("prewarm.toml"), "{text}");
        assert!(text.contains("ttl"), "{text}");
        assert!(text.contains("line 2"), "{text}");
    }

    #[test]
    fn full_file_parses() {
        let text = r#"
            [server]
            listen = "127.0.0.1:9000"
            [store]
            backend = "memory"
            memory_limit_mb = 10
            [datasets.quote]
            url = "http://x/{key}"
            ttl_s = 5
            universe = "u.csv"
            [datasets.quote.sidecar]
            redis = "redis://127.0.0.1:6379"
            key_template = "quote:{key}"
        "#;
        let raw = RawConfig::from_toml(text, "f").unwrap();
        assert_eq!(raw.server.listen.as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(raw.datasets["quote"].ttl_s, Some(5.0));
        assert!(raw.datasets["quote"].sidecar.is_some());
        assert_eq!(
            raw.datasets["quote"].universe.as_deref(),
            Some(std::path::Path::new("u.csv"))
        );
    }

    /// A replayed daemon config with warming off warmed anyway.
    #[test]
    fn warming_settings_of_a_config_with_warming_off_enable_no_strategy() {
        let raw = RawConfig::from_toml("[warming]\nenabled = false\n", "t.toml").unwrap();
        assert!(raw.warming_settings().unwrap().strategies.is_empty());
        let raw = RawConfig::from_toml("[warming]\n", "t.toml").unwrap();
        assert!(!raw.warming_settings().unwrap().strategies.is_empty());
    }
}
