//! The sans-I/O engine of prewarm.
//!
//! Nothing in this crate reads a clock, touches a file or a socket, or is
//! async. Every entry point takes `now_s` (seconds since the Unix epoch, as
//! `f64`) from its driver: the replay driver passes virtual time from a
//! trace, the daemon passes the real clock. Both therefore run exactly the
//! same decisions.
//!
//! Module map and invariants:
//! - [`calendar`]: the exchange calendar (NYSE by default): trading days,
//!   holidays, early closes, market sessions, exchange-local time through
//!   chrono-tz (DST-correct).
//! - [`tracker`]: learns how keys are accessed (decayed popularity,
//!   time-of-day profile, trending, co-access, groups). Memory is bounded by
//!   a cap on tracked keys; warming never records an access.
//! - [`check`]: the rules of configured numbers and their words, shared
//!   by the engine's settings and the daemon's config.
//! - [`budget`]: the token bucket that limits warming fetches. Demand fetches
//!   never draw from it.
//! - [`keys`]: key identity. Every key is a dense `KeyId` from the key
//!   table; strings appear only at the edges (parsing, the API, the
//!   snapshot). The table is bounded with the tracker: the engine releases
//!   (and reuses) the id of a key nothing refers to any more.
//! - [`time`]: `UnixInstant` and `Seconds`, distinct types where an instant
//!   and a duration meet (the freshness rule).
//! - [`cache`]: the engine's model of what is cached and since when; the
//!   freshness rule `f <= t < f + ttl` lives here and nowhere else (the
//!   replay and the daemon call it).
//! - [`ttl`]: TTL policies, flat or by market session (`until_open` for
//!   the closed session); [`ttl::TtlRule::expires_at`] is the one rule of
//!   when an entry expires, used by the cache model, the cost shadow, the
//!   replay's baseline, bound and policies, and the daemon.
//! - [`latency`]: the measured upstream latency (90th percentile of the
//!   last hour) the engine plans its lead times with in the daemon.
//! - [`stats`]: counters of requests, hits, fetches and their attribution to
//!   strategies. Everything `prewarm replay` reports is computed here.
//! - [`strategy`]: the names of the warming strategies.
//! - [`cost`]: the hard cost cap (`max_cost_ratio`) and its learned
//!   price, against a shadow of the cache without warming.
//! - [`model`]: the learned model of demand (online logistic regression)
//!   that turns a strategy's candidate into a chance of being requested;
//!   its examples and calibration.
//! - [`planner`]: queues candidates by value and opening time; spends the
//!   budget on the best open one the engine still accepts.
//! - [`engine`]: ties the above together behind a poll-style API
//!   (`on_access`, `on_fetched`, `poll_warm`, `next_timeout`,
//!   `handle_timeout`), like quinn-proto's connection.
//! - [`snapshot`]: the versioned byte format of learned state; the atomic
//!   file handling lives in the `prewarm-persist` crate.
//! - [`universe`]: parsing of universe files (CSV `key,group[,weight]`)
//!   from text, errors naming line and field, and giving an engine every
//!   key's groups. Callers read the file.

pub mod budget;
pub mod cache;
pub mod calendar;
pub mod check;
pub mod cost;
pub mod engine;
pub mod keys;
pub mod latency;
pub mod model;
pub mod planner;
pub mod snapshot;
pub mod stats;
pub mod strategies;
pub mod strategy;
pub mod time;
pub mod tracker;
pub mod ttl;
pub mod universe;

/// Seconds since the Unix epoch. Time is always passed in, never read.
pub type UnixSeconds = f64;
