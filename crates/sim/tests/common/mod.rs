//! Helpers shared by the sim crate's integration tests (each test binary
//! uses part of them).
#![allow(dead_code)]

use std::path::PathBuf;

use prewarm_sim::r#gen::{GenConfig, GenSummary, Request, generate};

/// The repository's real traces, `data/traces/`; a missing folder fails
/// the test rather than skipping it.
pub fn traces_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/traces");
    assert!(
        dir.is_dir(),
        "trace directory {} not found: the repository's data/traces is missing",
        dir.display()
    );
    dir
}

/// Every request `cfg` generates, and the summary.
pub fn collect(cfg: &GenConfig) -> (Vec<Request>, GenSummary) {
    let mut requests = Vec::new();
    let summary = generate(cfg, |r| requests.push(r)).expect("valid config");
    (requests, summary)
}
