//! Requests from the monitoring API to the driver task, sent by
//! [`super::DriverClient`] and answered by the driver on its own task.

use std::sync::Arc;

use prewarm_core::engine::CycleRequest;
use tokio::sync::oneshot;

use super::cycle::WarmReport;
use super::persist::SaveReport;
use super::purge::{PurgeReply, PurgeScope};
use super::view::{DriverSnapshot, Patterns};

/// One request, with where to send the answer.
pub(crate) enum Command {
    /// Apply every event queued so far, then answer a fresh view.
    Sync(oneshot::Sender<Arc<DriverSnapshot>>),
    /// Run a warming cycle and answer its report once its orders are back.
    Warm {
        /// Warm this dataset only; `None`: every dataset.
        dataset: Option<String>,
        /// `None`: the default cycle (popular and time, as the pre-market
        /// job runs it).
        requests: Option<Vec<CycleRequest>>,
        reply: oneshot::Sender<WarmReport>,
    },
    /// Save every snapshot and answer once written.
    Save(oneshot::Sender<Vec<SaveReport>>),
    /// Answer what the trackers learned.
    Patterns {
        /// This dataset only; `None`: every dataset.
        dataset: Option<String>,
        /// Most keys of each kind.
        limit: usize,
        /// Predict what follows this key too.
        key: Option<String>,
        reply: oneshot::Sender<Vec<Patterns>>,
    },
    /// Drop entries from the store; answer once they are gone.
    Purge {
        /// The dataset.
        dataset: String,
        /// What to drop.
        scope: PurgeScope,
        reply: PurgeReply,
    },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Sync(_) => "Sync",
            Command::Warm { .. } => "Warm",
            Command::Save(_) => "Save",
            Command::Patterns { .. } => "Patterns",
            Command::Purge { .. } => "Purge",
        })
    }
}
