//! Integration tests of prewarm-server against real servers: the built-in
//! upstream-sim and redis-server on loopback. One binary, many modules, to
//! keep link times down.

mod access_feed;
mod admin;
mod batch_items;
mod cache_semantics;
mod coalescing;
mod config;
mod connections;
mod counting;
mod cycles;
mod dashboard;
mod demand_awaited;
mod driver;
mod errors;
mod evictions;
mod failing_upstream;
mod hooked_store;
mod openapi;
mod proxy;
mod purge;
mod purge_outage;
mod quota;
mod rate_limit;
mod recording;
mod redaction;
mod redis_auth;
mod redis_backed;
mod session_ttl;
mod slow_upstream;
mod startup;
mod store_conformance;
mod store_outage;
mod support;
mod universe;
mod warm;
