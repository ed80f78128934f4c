//! Errors of the workload generator.

use std::path::PathBuf;

/// Why a trace could not be generated or written.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// A configuration field is out of range; `field` names it as in
    /// [`super::GenConfig`] (e.g. `user.poll_period_min_s`, `scanners[2].period_s`).
    #[error("invalid gen-trace config: `{field}` {reason}")]
    Config {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Writing an output file failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}
