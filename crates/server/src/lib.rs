//! The tokio daemon of prewarm.
//!
//! Module map and invariants:
//! - [`config`]: TOML + env + flags, parsed in two stages (raw, validated);
//!   every error names its field.
//! - [`clock`]: the [`clock::Clock`] trait (`now_s`, Unix seconds).
//! - [`events`]: the engine seams. Accesses and fetch completions leave the
//!   request path through bounded channels with `try_send`; a full channel
//!   drops and counts, never blocks. Warming never produces an access.
//! - [`upstream`]: URL templates, redaction and the HTTP client. API keys
//!   never reach a log or an error string; `max_concurrent` is a semaphore;
//!   a 429 sets `paused_until` which stops warming.
//! - [`store`]: the async [`store::Store`] trait with memory (moka) and
//!   Redis backends sharing one conformance suite; the sidecar writer.
//!   Stores keep entries their TTL `+ stale_grace_s`; freshness is decided
//!   by the caller from `fetched_at_s` (fresh iff `f <= t < expiry(f)`,
//!   `f + ttl_s` or by market session: `DatasetConfig::is_fresh`).
//! - [`coalesce`]: single-flight. One upstream call per key in flight; the
//!   load runs in its own task so a cancelled requester never cancels it,
//!   and a panicking or dropped loader wakes its waiters with an error.
//! - [`service`]: the read-through cache (single, batch, warm).
//! - [`driver`]: the engine driver, one task owning one engine per
//!   dataset: events in batches, timeouts on the real clock, warming
//!   orders out (bounded, paused by 429 and the outside-session gate),
//!   market-aware jobs, snapshots; a published read-only view.
//! - [`proxy`], [`admin`]: axum routes (`/warming/*` on the admin side).
//! - [`http`]: what both listeners share: JSON errors, shortened keys.
//! - [`openapi`]: the OpenAPI document of both listeners, generated from
//!   the handlers' annotations.
//! - [`listener`]: the accept loop of both listeners: a connection cap,
//!   header-read and keep-alive timeouts, graceful shutdown.
//! - [`upstream_sim`]: the built-in simulated market-data API.
//! - [`serve`]: builds everything from config, binds, shuts down gracefully.

pub mod admin;
pub mod clock;
pub mod coalesce;
pub mod config;
pub mod driver;
pub mod events;
pub mod http;
pub mod listener;
pub mod openapi;
pub mod proxy;
pub mod serve;
pub mod service;
pub mod store;
pub mod upstream;
pub mod upstream_sim;
