//! Which store backend a daemon runs on: the one place that names every
//! backend, parses its `store.backend` text and opens it. A new backend is
//! its own file beside this one, a variant here, and an entry in the
//! conformance suite (`tests/it/store_conformance.rs`).

use std::sync::Arc;

use std::time::Duration;

use super::guard::{Backoff, GuardedStore, StoreHealth};
use super::redis_conn::{RedisAuth, RedisTarget};
use super::{MemoryStore, RedisStore, Store, StoreError};
use crate::clock::Clock;
use crate::events::EventSink;
use crate::upstream::redact::Redactor;

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

/// What every backend is opened with.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Memory cap, MiB of weighed bytes (memory backend).
    pub memory_limit_mb: u64,
    /// Seconds an entry is kept past its TTL (to serve stale).
    pub stale_grace_s: f64,
    /// The daemon's clock.
    pub clock: Arc<dyn Clock>,
    /// Where size evictions are reported (backends that can).
    pub events: EventSink,
    /// Longest a remote backend may take to connect or answer a command.
    pub op_timeout: Duration,
    /// How long a remote backend is skipped after failures.
    pub backoff: Backoff,
    /// Credentials and CA of the Redis backend (`[store]`).
    pub redis_auth: RedisAuth,
    /// Where a remote backend's outages are reported.
    pub health: StoreHealth,
}

impl StoreBackend {
    /// The forms `store.backend` accepts, for error messages.
    pub const FORMS: &'static str =
        "`memory`, `redis://[USER:PASSWORD@]HOST:PORT` or `rediss://…` (TLS)";

    /// Parses the text of `store.backend`; `None` if it names no backend.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "memory" => Some(StoreBackend::Memory),
            url if url.starts_with("redis://") || url.starts_with("rediss://") => {
                Some(StoreBackend::Redis {
                    url: url.to_string(),
                })
            }
            _ => None,
        }
    }

    /// The backend's name as the monitoring API shows it.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreBackend::Memory => "memory",
            StoreBackend::Redis { .. } => "redis",
        }
    }

    /// Opens the backend. A remote one is guarded ([`GuardedStore`]): it
    /// connects on first use, so one that is down at start starts the
    /// daemon degraded, served from an in-process fallback of
    /// `memory_limit_mb`. Errors name what is wrong (a malformed URL).
    pub async fn open(&self, opts: StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            StoreBackend::Memory => Arc::new(MemoryStore::with_evictions(
                opts.memory_limit_mb,
                opts.stale_grace_s,
                opts.clock,
                opts.events,
            )),
            StoreBackend::Redis { url } => {
                let target = RedisTarget::new(url.clone(), opts.redis_auth.clone());
                let redis = RedisStore::lazy(
                    target,
                    opts.stale_grace_s,
                    opts.clock.clone(),
                    opts.op_timeout,
                )?;
                let fallback =
                    MemoryStore::new(opts.memory_limit_mb, opts.stale_grace_s, opts.clock.clone());
                Arc::new(GuardedStore::new(
                    Arc::new(redis),
                    fallback,
                    opts.health,
                    opts.backoff,
                    opts.clock,
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_and_others_do_not() {
        assert_eq!(StoreBackend::parse("memory"), Some(StoreBackend::Memory));
        assert_eq!(
            StoreBackend::parse("redis://127.0.0.1:6379"),
            Some(StoreBackend::Redis {
                url: "redis://127.0.0.1:6379".into()
            })
        );
        for bad in ["", "Memory", "redis:/x", "memcached://h:1"] {
            assert_eq!(StoreBackend::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let b = StoreBackend::parse("redis://:hunter2@h:1").unwrap();
        assert!(!format!("{b:?}").contains("hunter2"));
    }
}
