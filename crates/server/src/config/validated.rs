//! Stage two of config parsing: checked values with units, defaults filled
//! in, URL templates resolved. Every error names the field it is about.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use prewarm_core::check;

use super::check::{at_least, fraction, invalid, millis, positive, seconds};
pub use super::dataset::{
    BatchConfig, DEFAULT_KEY_PATTERN, DatasetConfig, SidecarConfig, UniverseFile,
};
use super::dataset::{builtin_quote_urls, validate_dataset};
use super::error::ConfigError;
use super::quota::validate_quota;
use super::raw::RawConfig;
pub use super::warming::WarmingSection;
use crate::listener::{ConnLimits, default_max_connections};
use crate::upstream::quota::QuotaConfig;
use crate::upstream::redact::Redactor;
use crate::upstream::template::{Placeholder, UrlTemplate};

/// Default proxy listener.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default admin listener.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8003";
/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "./prewarm-state";
/// The dataset used when none is configured.
pub const DEFAULT_DATASET: &str = "quote";

/// The daemon's whole validated configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listeners and request handling.
    pub server: ServerConfig,
    /// The entry store.
    pub store: StoreConfig,
    /// The upstream HTTP client.
    pub upstream: UpstreamConfig,
    /// `[warming]`: the engines' settings and the driver's.
    pub warming: WarmingSection,
    /// Access to the admin listener.
    pub admin: AdminConfig,
    /// Datasets by name.
    pub datasets: BTreeMap<String, DatasetConfig>,
    /// True when `quote` has no URL: `serve` then starts the built-in
    /// upstream-sim and calls [`ServeConfig::attach_builtin_upstream`].
    pub builtin_upstream: bool,
}

/// `[server]`, validated.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Proxy listener.
    pub listen: SocketAddr,
    /// Admin listener.
    pub admin_listen: SocketAddr,
    /// Directory for learned state (created at start).
    pub state_dir: PathBuf,
    /// Longest a client waits on upstream.
    pub request_timeout: Duration,
    /// Capacity of the access-event channel.
    pub access_queue_capacity: usize,
    /// Capacity of the fetch-event channel.
    pub fetch_queue_capacity: usize,
    /// Most keys in one batch read.
    pub max_batch_keys: usize,
    /// How often the metrics recorder's upkeep runs (whether or not
    /// `/metrics` is scraped).
    pub metrics_upkeep_interval: Duration,
    /// How log lines are written on stderr.
    pub log_format: LogFormat,
    /// Bearer token of `POST /v1/access`; `None` disables the route
    /// (403 `disabled`), so no client can steer warming unasked.
    pub access_token: Option<AdminToken>,
    /// Events `POST /v1/access` accepts per minute (a token bucket holding
    /// one minute's worth; a batch takes one token per item).
    pub access_rate_limit_per_min: f64,
    /// Timeouts and the connection cap of each listener.
    pub connections: ConnLimits,
}

/// How log lines are written on stderr (`server.log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (colours only on a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The forms `server.log_format` accepts.
    pub const FORMS: &'static str = "`text` or `json`";

    /// Parses `text` or `json`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// The admin listener's bearer token. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// A token (empty text means no token: use `None`).
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The secret bytes, for comparison only.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

/// `[admin]`, validated.
#[derive(Debug, Clone, Default)]
pub struct AdminConfig {
    /// Bearer token; `None` disables the mutating routes.
    pub token: Option<AdminToken>,
    /// Read routes need the token too.
    pub protect_reads: bool,
}

pub use crate::store::StoreBackend;

/// `[store]`, validated.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Backend.
    pub backend: StoreBackend,
    /// Memory store cap, MiB of weighed bytes.
    pub memory_limit_mb: u64,
    /// Retention past TTL for STALE serving, seconds.
    pub stale_grace_s: f64,
    /// Longest a Redis store may take to connect or answer a command.
    pub timeout: Duration,
    /// How long Redis is skipped after failures (doubling, capped).
    pub backoff: crate::store::Backoff,
    /// Redis credentials and CA, files read (`config/redis_auth.rs`).
    pub redis_auth: crate::store::RedisAuth,
}

/// `[upstream]`, validated.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Timeout of one attempt.
    pub timeout: Duration,
    /// Most requests in flight.
    pub max_concurrent: usize,
    /// Retries after 5xx or timeout.
    pub max_retries: u32,
    /// First backoff.
    pub backoff_base: Duration,
    /// Largest backoff.
    pub backoff_max: Duration,
    /// Longest pause honoured from a 429's `Retry-After`, seconds; a longer
    /// one is capped, then one probe call tests the host.
    pub retry_after_max_s: f64,
    /// Consecutive failed attempts (5xx, timeout, transport) on one host
    /// that open its circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before one probe, seconds
    /// (so at most one probe per this period while the host fails).
    pub breaker_open_s: f64,
    /// Attempts on one host over which its failure rate is measured (a
    /// sliding window of the last this many).
    pub breaker_window_calls: u32,
    /// Fewest attempts in the window before the failure rate can open
    /// the breaker.
    pub breaker_min_calls: u32,
    /// Failed share of the window, 0 to 1, above which the breaker opens
    /// (as well as after `breaker_failures` in a row); 1 turns the rate
    /// rule off.
    pub breaker_failure_ratio: f64,
    /// How long a key whose fetch failed is not fetched again, seconds
    /// (reads get its stale entry or the remembered error); doubles per
    /// consecutive failure of the key.
    pub failure_backoff_s: f64,
    /// Cap of the per-key failure back-off, seconds.
    pub failure_backoff_max_s: f64,
    /// First warming back-off after a 429 or a failure, seconds (doubles
    /// per consecutive one; a success resets it).
    pub warm_backoff_base_s: f64,
    /// Longest warming back-off, seconds.
    pub warm_backoff_max_s: f64,
    /// The upstream plan's quota (`rate_limit_per_min`), shared by demand
    /// and warming, demand first; `None`: no quota.
    pub quota: Option<QuotaConfig>,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_concurrent: 8,
            max_retries: 2,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            retry_after_max_s: 300.0,
            breaker_failures: 5,
            breaker_open_s: 10.0,
            breaker_window_calls: 20,
            breaker_min_calls: 10,
            breaker_failure_ratio: 0.5,
            failure_backoff_s: 2.0,
            failure_backoff_max_s: 60.0,
            warm_backoff_base_s: 1.0,
            warm_backoff_max_s: 120.0,
            quota: None,
        }
    }
}

/// Shortest `server.metrics_upkeep_interval_s`, seconds.
pub const MIN_UPKEEP_INTERVAL_S: f64 = 0.1;

/// `value` (or `default`) seconds, finite, at most a year and at least
/// `other`'s value.
fn at_least_field(
    field: &str,
    value: Option<f64>,
    default: f64,
    other_field: &str,
    other: f64,
) -> Result<f64, ConfigError> {
    let v = seconds(field, value, default, 0.0)?;
    if v < other {
        return Err(invalid(field, format!("must be >= {other_field}")));
    }
    Ok(v)
}

/// A positive number of seconds (or `default`) as a [`Duration`].
fn secs(field: &str, value: Option<f64>, default: f64) -> Result<Duration, ConfigError> {
    secs_from(field, value, default, check::MIN_SECONDS)
}

/// [`secs`] with a floor of `min_s` seconds (intervals).
fn secs_from(
    field: &str,
    value: Option<f64>,
    default: f64,
    min_s: f64,
) -> Result<Duration, ConfigError> {
    let v = seconds(field, value, default, min_s)?;
    Duration::try_from_secs_f64(v).map_err(|_| invalid(field, "too large"))
}

fn socket_addr(field: &str, value: Option<&str>, default: &str) -> Result<SocketAddr, ConfigError> {
    let text = value.unwrap_or(default);
    text.parse().map_err(|_| {
        invalid(
            field,
            format!("not a socket address (HOST:PORT with an IP): {text:?}"),
        )
    })
}

impl RawConfig {
    /// Validates into a [`ServeConfig`]; `env` resolves `${NAME}`s.
    pub fn validate(
        mut self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ServeConfig, ConfigError> {
        if self.datasets.is_empty() {
            self.dataset_mut(DEFAULT_DATASET);
        }
        let server = self.validate_server()?;
        let store = self.validate_store()?;
        let mut upstream = self.validate_upstream()?;
        upstream.quota = validate_quota(&self.upstream, server.request_timeout)?;
        self.warming.validate()?;
        let admin = self.validate_admin()?;
        let mut builtin_upstream = false;
        let mut datasets = BTreeMap::new();
        for (name, raw) in &self.datasets {
            let builtin = name == DEFAULT_DATASET && raw.url.is_none();
            builtin_upstream |= builtin;
            let grace_s = store.stale_grace_s;
            datasets.insert(
                name.clone(),
                validate_dataset(name, raw, builtin, grace_s, env)?,
            );
        }
        Ok(ServeConfig {
            server,
            store,
            upstream,
            warming: self.warming,
            admin,
            datasets,
            builtin_upstream,
        })
    }

    fn validate_admin(&self) -> Result<AdminConfig, ConfigError> {
        let a = &self.admin;
        let token = a
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(AdminToken::new);
        let protect_reads = a.protect_reads.unwrap_or(false);
        if protect_reads && token.is_none() {
            return Err(invalid(
                "admin.protect_reads",
                "needs a token (admin.token or PREWARM_ADMIN_TOKEN)",
            ));
        }
        Ok(AdminConfig {
            token,
            protect_reads,
        })
    }

    fn validate_server(&self) -> Result<ServerConfig, ConfigError> {
        let s = &self.server;
        Ok(ServerConfig {
            listen: socket_addr("server.listen", s.listen.as_deref(), DEFAULT_LISTEN)?,
            admin_listen: socket_addr(
                "server.admin_listen",
                s.admin_listen.as_deref(),
                DEFAULT_ADMIN_LISTEN,
            )?,
            state_dir: s
                .state_dir
                .clone()
                .unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
            request_timeout: secs("server.request_timeout_s", s.request_timeout_s, 10.0)?,
            access_queue_capacity: at_least(
                "server.access_queue_capacity",
                s.access_queue_capacity,
                65_536,
                1,
            )?,
            fetch_queue_capacity: at_least(
                "server.fetch_queue_capacity",
                s.fetch_queue_capacity,
                16_384,
                1,
            )?,
            max_batch_keys: at_least("server.max_batch_keys", s.max_batch_keys, 1_000, 1)?,
            metrics_upkeep_interval: secs_from(
                "server.metrics_upkeep_interval_s",
                s.metrics_upkeep_interval_s,
                5.0,
                MIN_UPKEEP_INTERVAL_S,
            )?,
            access_rate_limit_per_min: positive(
                "server.access_rate_limit_per_min",
                s.access_rate_limit_per_min,
                60_000.0,
            )?,
            connections: ConnLimits {
                header_read_timeout: secs(
                    "server.header_read_timeout_s",
                    s.header_read_timeout_s,
                    10.0,
                )?,
                body_read_timeout: secs("server.body_read_timeout_s", s.body_read_timeout_s, 30.0)?,
                write_timeout: secs("server.write_timeout_s", s.write_timeout_s, 30.0)?,
                keep_alive_idle: secs("server.keep_alive_idle_s", s.keep_alive_idle_s, 60.0)?,
                max_connections: match s.max_connections {
                    Some(n) => at_least("server.max_connections", Some(n), n, 1)?,
                    None => default_max_connections(),
                },
            },
            access_token: s
                .access_token
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(AdminToken::new),
            log_format: match s.log_format.as_deref() {
                None => LogFormat::Text,
                Some(t) => LogFormat::parse(t).ok_or_else(|| {
                    invalid(
                        "server.log_format",
                        format!("must be {}, not {t:?}", LogFormat::FORMS),
                    )
                })?,
            },
        })
    }

    fn validate_store(&self) -> Result<StoreConfig, ConfigError> {
        let s = &self.store;
        let text = s.backend.as_deref().unwrap_or("memory");
        let Some(backend) = StoreBackend::parse(text) else {
            return Err(invalid(
                "store.backend",
                format!("must be {}", StoreBackend::FORMS),
            ));
        };
        let base_ms = millis("store.backoff_base_ms", s.backoff_base_ms, 1_000, 1)?;
        let max_ms = millis("store.backoff_max_ms", s.backoff_max_ms, 30_000, 0)?;
        if max_ms < base_ms {
            return Err(invalid(
                "store.backoff_max_ms",
                "must be >= store.backoff_base_ms",
            ));
        }
        Ok(StoreConfig {
            backend,
            memory_limit_mb: at_least("store.memory_limit_mb", s.memory_limit_mb, 300, 1)?,
            stale_grace_s: seconds("store.stale_grace_s", s.stale_grace_s, 300.0, 0.0)?,
            timeout: Duration::from_millis(millis("store.timeout_ms", s.timeout_ms, 250, 1)?),
            backoff: crate::store::Backoff {
                base: Duration::from_millis(base_ms),
                max: Duration::from_millis(max_ms),
            },
            redis_auth: super::redis_auth::validate_redis_auth(s)?,
        })
    }

    fn validate_upstream(&self) -> Result<UpstreamConfig, ConfigError> {
        let u = &self.upstream;
        let d = UpstreamConfig::default();
        let base_ms = millis(
            "upstream.backoff_base_ms",
            u.backoff_base_ms,
            d.backoff_base.as_millis() as u64,
            0,
        )?;
        let max_ms = millis(
            "upstream.backoff_max_ms",
            u.backoff_max_ms,
            d.backoff_max.as_millis() as u64,
            0,
        )?;
        if max_ms < base_ms {
            return Err(invalid(
                "upstream.backoff_max_ms",
                "must be >= upstream.backoff_base_ms",
            ));
        }
        Ok(UpstreamConfig {
            timeout: secs("upstream.timeout_s", u.timeout_s, 5.0)?,
            max_concurrent: at_least(
                "upstream.max_concurrent",
                u.max_concurrent,
                d.max_concurrent,
                1,
            )?,
            max_retries: u.max_retries.unwrap_or(d.max_retries),
            backoff_base: Duration::from_millis(base_ms),
            backoff_max: Duration::from_millis(max_ms),
            retry_after_max_s: seconds(
                "upstream.retry_after_max_s",
                u.retry_after_max_s,
                d.retry_after_max_s,
                check::MIN_SECONDS,
            )?,
            breaker_failures: at_least(
                "upstream.breaker_failures",
                u.breaker_failures,
                d.breaker_failures,
                1,
            )?,
            breaker_open_s: seconds(
                "upstream.breaker_open_s",
                u.breaker_open_s,
                d.breaker_open_s,
                check::MIN_SECONDS,
            )?,
            breaker_window_calls: at_least(
                "upstream.breaker_window_calls",
                u.breaker_window_calls,
                d.breaker_window_calls,
                1,
            )?,
            breaker_min_calls: at_least(
                "upstream.breaker_min_calls",
                u.breaker_min_calls,
                d.breaker_min_calls,
                1,
            )?,
            breaker_failure_ratio: fraction(
                "upstream.breaker_failure_ratio",
                u.breaker_failure_ratio,
                d.breaker_failure_ratio,
            )?,
            failure_backoff_s: seconds(
                "upstream.failure_backoff_s",
                u.failure_backoff_s,
                d.failure_backoff_s,
                0.0,
            )?,
            failure_backoff_max_s: at_least_field(
                "upstream.failure_backoff_max_s",
                u.failure_backoff_max_s,
                d.failure_backoff_max_s,
                "upstream.failure_backoff_s",
                u.failure_backoff_s.unwrap_or(d.failure_backoff_s),
            )?,
            warm_backoff_base_s: seconds(
                "upstream.warm_backoff_base_s",
                u.warm_backoff_base_s,
                d.warm_backoff_base_s,
                check::MIN_SECONDS,
            )?,
            warm_backoff_max_s: at_least_field(
                "upstream.warm_backoff_max_s",
                u.warm_backoff_max_s,
                d.warm_backoff_max_s,
                "upstream.warm_backoff_base_s",
                u.warm_backoff_base_s.unwrap_or(d.warm_backoff_base_s),
            )?,
            quota: None,
        })
    }
}

impl ServeConfig {
    /// Points the URL-less `quote` dataset at a running upstream-sim.
    pub fn attach_builtin_upstream(&mut self, addr: SocketAddr) {
        let Some(ds) = self.datasets.get_mut(DEFAULT_DATASET) else {
            return;
        };
        let (url, batch) = builtin_quote_urls(addr);
        let no_env = |_: &str| None;
        if let Ok(t) = UrlTemplate::parse(&url, Placeholder::Key, &no_env) {
            ds.url = t;
        }
        if let (Some(b), Ok(t)) = (
            ds.batch.as_mut(),
            UrlTemplate::parse(&batch, Placeholder::Keys, &no_env),
        ) {
            b.url = t;
        }
        self.builtin_upstream = false;
    }

    /// A redactor knowing every `${NAME}` value of every template.
    pub fn redactor(&self) -> Redactor {
        let mut r = Redactor::new();
        for ds in self.datasets.values() {
            r.merge(ds.url.redactor());
            r.merge(ds.headers.redactor());
            if let Some(b) = &ds.batch {
                r.merge(b.url.redactor());
            }
        }
        r
    }
}
