//! Replay and simulation driver of prewarm: the core engine on virtual time.
//!
//! Module map and invariants:
//! - [`trace`]: reads `timestamp,key[,client]` CSV (gzip'd by `.gz`);
//!   timestamps non-decreasing; every bad line is an error naming file and
//!   line, nothing is skipped.
//! - [`baseline`]: the no-warming TTL cache, exact to the request (fresh iff
//!   `f <= t < f + ttl`), optional LRU capacity; its miss groups.
//!   Under a latency it coalesces requests for keys in flight.
//! - [`flights`]: fetches in flight on virtual time (`--latency-ms`).
//! - [`bound`]: the clairvoyant bound: EDF over the baseline's miss groups
//!   through the warming token bucket; never below the baseline.
//! - [`replay`]: drives the core engine over a trace on virtual time with
//!   the causality rule of `docs/replay-semantics.md`; no look-ahead.
//! - [`table`]: the human-readable report.
//! - [`plot`]: hourly hit rates and warming fetches as SVG (`--plot`).
//! - [`explain`]: the remaining misses by kind (`--explain`).
//! - [`frontier`]: hit rate against API cost for prewarm by cost cap and
//!   for the reference policies (`--frontier`).
//! - [`policies`]: reference warming policies outside the engine
//!   (refresh-ahead, popular every 30 minutes).
//! - [`learning`]: the learned model's calibration and the cost cap's
//!   price (`--explain`).
//! - [`sessions`]: baseline, warmed and bound by market session
//!   (`--explain`), from the hourly figures.
//! - [`universe`]: reading `key,group[,weight]` files giving keys their
//!   groups (the format is parsed in `prewarm_core::universe`).
//! - [`r#gen`]: `gen-trace`, the synthetic market workload generator;
//!   deterministic in its config, requests in non-decreasing time order.

pub mod baseline;
pub mod bound;
pub mod explain;
pub mod flights;
pub mod frontier;
pub mod r#gen;
pub mod learning;
pub mod plot;
pub mod policies;
pub mod replay;
pub mod sessions;
pub mod table;
pub mod trace;
pub mod universe;
