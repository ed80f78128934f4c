//! Stage two of config parsing: checked values with units, defaults filled
//! in, URL templates resolved. Every error names the field it is about.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use super::ConfigError;
use super::raw::{RawConfig, RawDataset, RawSidecar};
use crate::upstream::redact::Redactor;
use crate::upstream::template::{Placeholder, UrlTemplate};

/// Default proxy listener.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default admin listener.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8003";
/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "./prewarm-state";
/// Default key pattern (anchored).
pub const DEFAULT_KEY_PATTERN: &str = "^[A-Z][A-Z0-9.-]{0,14}$";
/// The dataset used when none is configured.
pub const DEFAULT_DATASET: &str = "quote";
const DEFAULT_TTL_S: f64 = 60.0;

/// The daemon's whole validated configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listeners and request handling.
    pub server: ServerConfig,
    /// The entry store.
    pub store: StoreConfig,
    /// The upstream HTTP client.
    pub upstream: UpstreamConfig,
    /// Settings for the engine's warmer.
    pub warming: WarmingConfig,
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
}

/// Which store backend. `Debug` hides URL passwords.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// In-process moka cache.
    Memory,
    /// Redis at this URL.
    Redis {
        /// `redis://HOST:PORT`.
        url: String,
    },
}

impl std::fmt::Debug for StoreBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreBackend::Memory => f.write_str("Memory"),
            StoreBackend::Redis { url } => f
                .debug_struct("Redis")
                .field("url", &Redactor::new().redact(url))
                .finish(),
        }
    }
}

/// `[store]`, validated.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Backend.
    pub backend: StoreBackend,
    /// Memory store cap, MiB of weighed bytes.
    pub memory_limit_mb: u64,
    /// Retention past TTL for STALE serving, seconds.
    pub stale_grace_s: f64,
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
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_concurrent: 8,
            max_retries: 2,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
        }
    }
}

/// `[warming]`, validated (consumed by the engine driver).
#[derive(Debug, Clone, PartialEq)]
pub struct WarmingConfig {
    /// Whether warming runs.
    pub enabled: bool,
    /// Popular keys kept warm.
    pub popular_limit: u32,
    /// Warming fetches per minute.
    pub rate_limit_per_min: f64,
}

/// One dataset, validated.
#[derive(Debug, Clone)]
pub struct DatasetConfig {
    /// Name, e.g. `quote`.
    pub name: Arc<str>,
    /// Upstream URL for one key.
    pub url: UrlTemplate,
    /// Freshness lifetime, seconds.
    pub ttl_s: f64,
    /// Anchored key pattern.
    pub key_pattern: Regex,
    /// Serve stale entries when upstream cannot answer.
    pub serve_stale: bool,
    /// Batch endpoint, if any.
    pub batch: Option<BatchConfig>,
    /// Write-through into the application's Redis, if any.
    pub sidecar: Option<SidecarConfig>,
}

/// A dataset's batch endpoint.
#[derive(Debug, Clone)]
pub struct BatchConfig {
    /// URL with `{keys}`.
    pub url: UrlTemplate,
    /// Most keys per call.
    pub max_keys: usize,
    /// JSON pointer to the items ("" is the root).
    pub items_pointer: String,
    /// Key field of array items; `None`: items are an object keyed by key.
    pub key_field: Option<String>,
}

/// Write-through into the application's own Redis. `Debug` hides URL
/// passwords.
#[derive(Clone)]
pub struct SidecarConfig {
    /// `redis://HOST:PORT`.
    pub redis_url: String,
    /// Key template with `{key}`.
    pub key_template: String,
    /// TTL of written keys, seconds.
    pub ttl_s: f64,
}

impl std::fmt::Debug for SidecarConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidecarConfig")
            .field("redis_url", &Redactor::new().redact(&self.redis_url))
            .field("key_template", &self.key_template)
            .field("ttl_s", &self.ttl_s)
            .finish()
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn positive(field: &str, value: Option<f64>, default: f64) -> Result<f64, ConfigError> {
    let v = value.unwrap_or(default);
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(invalid(field, "must be > 0"))
    }
}

fn non_negative(field: &str, value: Option<f64>, default: f64) -> Result<f64, ConfigError> {
    let v = value.unwrap_or(default);
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(invalid(field, "must be >= 0"))
    }
}

fn at_least<T: PartialOrd + Copy + std::fmt::Display>(
    field: &str,
    value: Option<T>,
    default: T,
    min: T,
) -> Result<T, ConfigError> {
    let v = value.unwrap_or(default);
    if v >= min {
        Ok(v)
    } else {
        Err(invalid(field, format!("must be >= {min}")))
    }
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
        let upstream = self.validate_upstream()?;
        let warming = WarmingConfig {
            enabled: self.warming.enabled.unwrap_or(true),
            popular_limit: self.warming.popular_limit.unwrap_or(50),
            rate_limit_per_min: non_negative(
                "warming.rate_limit_per_min",
                self.warming.rate_limit_per_min,
                100.0,
            )?,
        };
        let mut builtin_upstream = false;
        let mut datasets = BTreeMap::new();
        for (name, raw) in &self.datasets {
            let builtin = name == DEFAULT_DATASET && raw.url.is_none();
            builtin_upstream |= builtin;
            datasets.insert(name.clone(), validate_dataset(name, raw, builtin, env)?);
        }
        Ok(ServeConfig {
            server,
            store,
            upstream,
            warming,
            datasets,
            builtin_upstream,
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
            request_timeout: Duration::from_secs_f64(positive(
                "server.request_timeout_s",
                s.request_timeout_s,
                10.0,
            )?),
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
        })
    }

    fn validate_store(&self) -> Result<StoreConfig, ConfigError> {
        let s = &self.store;
        let backend = match s.backend.as_deref().unwrap_or("memory") {
            "memory" => StoreBackend::Memory,
            url if url.starts_with("redis://") => StoreBackend::Redis {
                url: url.to_string(),
            },
            _ => {
                return Err(invalid(
                    "store.backend",
                    "must be `memory` or `redis://HOST:PORT`",
                ));
            }
        };
        Ok(StoreConfig {
            backend,
            memory_limit_mb: at_least("store.memory_limit_mb", s.memory_limit_mb, 300, 1)?,
            stale_grace_s: non_negative("store.stale_grace_s", s.stale_grace_s, 300.0)?,
        })
    }

    fn validate_upstream(&self) -> Result<UpstreamConfig, ConfigError> {
        let u = &self.upstream;
        let d = UpstreamConfig::default();
        let base_ms = u
            .backoff_base_ms
            .unwrap_or(d.backoff_base.as_millis() as u64);
        let max_ms = u.backoff_max_ms.unwrap_or(d.backoff_max.as_millis() as u64);
        if max_ms < base_ms {
            return Err(invalid(
                "upstream.backoff_max_ms",
                "must be >= upstream.backoff_base_ms",
            ));
        }
        Ok(UpstreamConfig {
            timeout: Duration::from_secs_f64(positive("upstream.timeout_s", u.timeout_s, 5.0)?),
            max_concurrent: at_least(
                "upstream.max_concurrent",
                u.max_concurrent,
                d.max_concurrent,
                1,
            )?,
            max_retries: u.max_retries.unwrap_or(d.max_retries),
            backoff_base: Duration::from_millis(base_ms),
            backoff_max: Duration::from_millis(max_ms),
        })
    }
}

/// The URL the built-in upstream-sim answers one quote on.
fn builtin_quote_urls(addr: SocketAddr) -> (String, String) {
    (
        format!("http://{addr}/v1/quote/{{key}}"),
        format!("http://{addr}/v1/quotes?symbols={{keys}}"),
    )
}

fn validate_dataset(
    name: &str,
    raw: &RawDataset,
    builtin: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<DatasetConfig, ConfigError> {
    let field = |f: &str| format!("datasets.{name}.{f}");
    let name_ok = Regex::new("^[a-z][a-z0-9_]{0,31}$").is_ok_and(|r| r.is_match(name));
    if !name_ok || name == "access" {
        return Err(invalid(
            format!("datasets.{name}"),
            "dataset names are lowercase letters, digits and _ (not `access`)",
        ));
    }
    let placeholder_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let (builtin_url, builtin_batch) = builtin_quote_urls(placeholder_addr);
    let url_text = match (&raw.url, builtin) {
        (Some(u), _) => u.clone(),
        (None, true) => builtin_url,
        (None, false) => return Err(invalid(field("url"), "missing (only quote may omit it)")),
    };
    let url = UrlTemplate::parse(&url_text, Placeholder::Key, env)
        .map_err(|e| invalid(field("url"), e.to_string()))?;
    let ttl_s = positive(&field("ttl_s"), raw.ttl_s, DEFAULT_TTL_S)?;
    let pattern = raw.key_pattern.as_deref().unwrap_or(DEFAULT_KEY_PATTERN);
    let key_pattern = Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| invalid(field("key_pattern"), e.to_string()))?;
    let batch_text = raw.batch_url.clone().or(builtin.then_some(builtin_batch));
    let batch = match batch_text {
        None => None,
        Some(text) => Some(validate_batch(name, raw, &text, builtin, env)?),
    };
    let sidecar = match &raw.sidecar {
        None => None,
        Some(s) => Some(validate_sidecar(name, s, ttl_s)?),
    };
    Ok(DatasetConfig {
        name: name.into(),
        url,
        ttl_s,
        key_pattern,
        serve_stale: raw.serve_stale.unwrap_or(true),
        batch,
        sidecar,
    })
}

fn validate_batch(
    name: &str,
    raw: &RawDataset,
    text: &str,
    builtin: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BatchConfig, ConfigError> {
    let field = |f: &str| format!("datasets.{name}.{f}");
    let url = UrlTemplate::parse(text, Placeholder::Keys, env)
        .map_err(|e| invalid(field("batch_url"), e.to_string()))?;
    let default_pointer = if builtin { "/quotes" } else { "" };
    let items_pointer = raw
        .batch_items_pointer
        .clone()
        .unwrap_or_else(|| default_pointer.into());
    if !(items_pointer.is_empty() || items_pointer.starts_with('/')) {
        return Err(invalid(
            field("batch_items_pointer"),
            "must be empty or start with /",
        ));
    }
    let key_field = raw
        .batch_key_field
        .clone()
        .or(builtin.then(|| "symbol".to_string()));
    Ok(BatchConfig {
        url,
        max_keys: at_least(&field("batch_max_keys"), raw.batch_max_keys, 100, 1)?,
        items_pointer,
        key_field,
    })
}

fn validate_sidecar(
    name: &str,
    raw: &RawSidecar,
    ttl_s: f64,
) -> Result<SidecarConfig, ConfigError> {
    let field = |f: &str| format!("datasets.{name}.sidecar.{f}");
    let redis_url = raw
        .redis
        .clone()
        .ok_or_else(|| invalid(field("redis"), "missing"))?;
    if !redis_url.starts_with("redis://") {
        return Err(invalid(field("redis"), "must start with redis://"));
    }
    let key_template = raw
        .key_template
        .clone()
        .ok_or_else(|| invalid(field("key_template"), "missing"))?;
    if !key_template.contains("{key}") {
        return Err(invalid(field("key_template"), "must contain {key}"));
    }
    Ok(SidecarConfig {
        redis_url,
        key_template,
        ttl_s: positive(&field("ttl_s"), raw.ttl_s, ttl_s)?,
    })
}

impl DatasetConfig {
    /// Whether `key` matches this dataset's key pattern.
    pub fn key_is_valid(&self, key: &str) -> bool {
        self.key_pattern.is_match(key)
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
            if let Some(b) = &ds.batch {
                r.merge(b.url.redactor());
            }
        }
        r
    }
}
