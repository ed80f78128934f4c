//! Which store backend a daemon runs on: the one place that names every
//! backend, parses its `store.backend` text and opens it. A new backend is
//! its own file beside this one, a variant here, and an entry in the
//! conformance suite (`tests/it/store_conformance.rs`).

use std::sync::Arc;

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
}

impl StoreBackend {
    /// The forms `store.backend` accepts, for error messages.
    pub const FORMS: &'static str = "`memory` or `redis://HOST:PORT`";

    /// Parses the text of `store.backend`; `None` if it names no backend.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "memory" => Some(StoreBackend::Memory),
            url if url.starts_with("redis://") => Some(StoreBackend::Redis {
                url: url.to_string(),
            }),
            _ => None,
        }
    }

    /// Opens the backend. Errors name what could not be reached.
    pub async fn open(&self, opts: StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            StoreBackend::Memory => Arc::new(MemoryStore::with_evictions(
                opts.memory_limit_mb,
                opts.stale_grace_s,
                opts.clock,
                opts.events,
            )),
            StoreBackend::Redis { url } => {
                Arc::new(RedisStore::connect(url, opts.stale_grace_s, opts.clock).await?)
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
