//! Replay and simulation driver of prewarm (being written).
//!
//! Module map and invariants:
//! - [`r#gen`]: `gen-trace`, the synthetic market workload generator;
//!   deterministic in its config, requests in non-decreasing time order.

pub mod r#gen;
