//! Snapshots of learned state: `<state_dir>/<dataset>.snapshot`, written
//! atomically through `prewarm-persist`; a corrupt file is moved aside by
//! it and reported here as an error naming both paths, and the dataset
//! starts cold.

use std::path::PathBuf;
use std::sync::Arc;

use prewarm_persist::{PersistError, read_snapshot_file, write_atomic};
use serde::Serialize;

use super::dataset::DatasetState;

/// What restoring one dataset found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// Learned state restored.
    Restored,
    /// No file: first start.
    Cold,
    /// The file did not parse and was moved aside to this path.
    Corrupt(PathBuf),
    /// The file could not be read (or not moved aside).
    Failed,
}

/// Restores `ds` from its snapshot file, logging what happened; the
/// universe file's groups are set again over the restored tracker.
pub fn restore(ds: &mut DatasetState) -> RestoreOutcome {
    let path = ds.path.clone();
    let engine = &mut ds.engine;
    let outcome = match read_snapshot_file(&path, |bytes| engine.restore(bytes)) {
        Ok(Some(())) => {
            let keys = ds.engine.tracker().len();
            tracing::info!(dataset = %ds.name, file = %path.display(), tracked_keys = keys, "restored learned state");
            ds.apply_universe();
            RestoreOutcome::Restored
        }
        Ok(None) => {
            tracing::info!(dataset = %ds.name, file = %path.display(), "no snapshot: starting cold");
            RestoreOutcome::Cold
        }
        Err(e) => {
            tracing::error!(dataset = %ds.name, error = %e, "snapshot not restored; starting cold");
            ds.snapshot.last_error = Some(e.to_string());
            match e {
                PersistError::Corrupt { moved_to, .. } => RestoreOutcome::Corrupt(moved_to),
                _ => RestoreOutcome::Failed,
            }
        }
    };
    ds.snapshot.restore = match &outcome {
        RestoreOutcome::Restored => "restored",
        RestoreOutcome::Cold => "cold",
        RestoreOutcome::Corrupt(_) => "corrupt",
        RestoreOutcome::Failed => "error",
    }
    .into();
    outcome
}

/// One dataset's bytes to write.
#[derive(Debug)]
pub struct SaveJob {
    /// Index of the dataset in the driver.
    pub index: usize,
    /// Dataset name.
    pub dataset: Arc<str>,
    /// Target file.
    pub path: PathBuf,
    /// Snapshot bytes.
    pub bytes: Vec<u8>,
}

/// What one save did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SaveReport {
    /// Dataset name.
    pub dataset: String,
    /// Target file.
    pub path: String,
    /// Bytes written (0 on error).
    pub bytes: u64,
    /// The error, if the write failed.
    pub error: Option<String>,
    /// Index of the dataset in the driver.
    #[serde(skip)]
    pub index: usize,
}

/// Writes every job atomically (blocking I/O: run it off the runtime).
pub fn write_all(jobs: Vec<SaveJob>) -> Vec<SaveReport> {
    jobs.into_iter()
        .map(|j| {
            let result = write_atomic(&j.path, &j.bytes);
            if let Err(e) = &result {
                tracing::error!(dataset = %j.dataset, error = %e, "snapshot not saved");
            }
            SaveReport {
                dataset: j.dataset.to_string(),
                path: j.path.display().to_string(),
                bytes: if result.is_ok() {
                    j.bytes.len() as u64
                } else {
                    0
                },
                error: result.err().map(|e| e.to_string()),
                index: j.index,
            }
        })
        .collect()
}
