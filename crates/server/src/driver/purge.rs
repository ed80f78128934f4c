//! Purges asked for on the admin listener: the store drops the entries of
//! one key, of one group's members or of a whole dataset, and the engine
//! stops counting them as cached (so it may warm them again); what the
//! tracker learned of them stays.
//!
//! The driver resolves the keys on its own task; the store's deletions
//! run on a task of their own ([`Purges`]), so the driver never waits on
//! the store; once they are done the engine forgets the keys as cached.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::{JoinError, JoinSet};

use super::dataset::DatasetState;
use crate::store::{Store, StoreError};

/// Most members a group purge drops.
pub const MAX_GROUP_PURGE_KEYS: usize = 100_000;

/// What a purge drops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum PurgeScope {
    /// One key's entry.
    Key {
        /// The key.
        key: String,
    },
    /// The entries of a group's members (as the tracker knows them: from
    /// the universe file and `/v1/access` groups).
    Group {
        /// The group (a sector, a watchlist name).
        group: String,
    },
    /// Every entry of the dataset.
    Dataset,
}

/// What a purge did.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PurgeReport {
    /// The dataset.
    pub dataset: String,
    /// What was asked.
    #[serde(flatten)]
    pub scope: PurgeScope,
    /// Entries the store held and dropped.
    pub purged: u64,
}

/// Why a purge failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PurgeError {
    /// The driver runs no such dataset.
    #[error("unknown dataset {0:?}")]
    UnknownDataset(String),
    /// The key is refused, as a read of it would be (the message names
    /// the dataset's key pattern).
    #[error("{0}")]
    InvalidKey(String),
    /// The store failed; entries may be left.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a purge's answer goes.
pub(super) type PurgeReply = oneshot::Sender<Result<PurgeReport, PurgeError>>;

/// A purge whose store deletions are done.
pub(super) struct Purged {
    dataset: String,
    scope: PurgeScope,
    /// The keys dropped (`None`: the whole dataset).
    keys: Option<Vec<String>>,
    dropped: Result<u64, StoreError>,
    reply: PurgeReply,
}

/// The purges of one driver whose store deletions run. The store drops
/// the entries first; only then does the engine forget them as cached, so
/// a warm fetch the engine orders meanwhile is never deleted behind its
/// back.
#[derive(Default)]
pub(super) struct Purges {
    running: JoinSet<Purged>,
}

impl Purges {
    /// Whether no purge runs.
    pub(super) fn is_idle(&self) -> bool {
        self.running.is_empty()
    }

    /// Starts dropping `scope`'s entries of `ds` from `store` (the keys
    /// resolved now, a group's from the tracker).
    pub(super) fn start(
        &mut self,
        store: Arc<dyn Store>,
        ds: &DatasetState,
        scope: PurgeScope,
        reply: PurgeReply,
    ) {
        let keys = ds.keys_of(&scope);
        let dataset = ds.name.to_string();
        self.running.spawn(async move {
            let dropped = drop_entries(store, &dataset, keys.as_deref()).await;
            Purged {
                dataset,
                scope,
                keys,
                dropped,
                reply,
            }
        });
    }

    /// The next purge whose deletions are done; `None` when idle.
    pub(super) async fn next_done(&mut self) -> Option<Result<Purged, JoinError>> {
        self.running.join_next().await
    }

    /// Makes `datasets`' engine forget a finished purge's keys as cached
    /// and answers whoever asked.
    pub(super) fn finished(done: Result<Purged, JoinError>, datasets: &mut [DatasetState]) {
        let p = match done {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "purge task failed");
                return;
            }
        };
        if let Some(ds) = datasets.iter_mut().find(|d| *d.name == *p.dataset) {
            ds.forget_cached(p.keys.as_deref());
        }
        let report = p.dropped.map(|purged| PurgeReport {
            dataset: p.dataset,
            scope: p.scope,
            purged,
        });
        let _ = p.reply.send(report.map_err(PurgeError::from));
    }
}

impl DatasetState {
    /// The keys `scope` names (`None`: the whole dataset): a group's
    /// members as the tracker knows them.
    fn keys_of(&self, scope: &PurgeScope) -> Option<Vec<String>> {
        match scope {
            PurgeScope::Key { key } => Some(vec![key.clone()]),
            PurgeScope::Group { group } => {
                let members = self
                    .engine
                    .tracker()
                    .group_members(group, MAX_GROUP_PURGE_KEYS);
                let names = self.engine.keys();
                Some(
                    members
                        .iter()
                        .map(|m| names.name(m.key).to_string())
                        .filter(|k| !k.is_empty())
                        .collect(),
                )
            }
            PurgeScope::Dataset => None,
        }
    }

    /// The engine stops counting `keys` (`None`: every key) as cached, so
    /// it may warm them again; the tracker keeps what it learned.
    fn forget_cached(&mut self, keys: Option<&[String]>) {
        let ids: Vec<_> = match keys {
            Some(keys) => keys
                .iter()
                .filter_map(|k| self.engine.keys().get(k))
                .collect(),
            None => self.engine.cache().keys().collect(),
        };
        for id in ids {
            self.engine.on_purged(id);
        }
    }
}

/// Drops from `store` the entries of `keys` in `dataset`, or all of the
/// dataset's when `keys` is `None`; returns how many were there, or the
/// store's error when any deletion failed (entries may be left).
async fn drop_entries(
    store: Arc<dyn Store>,
    dataset: &str,
    keys: Option<&[String]>,
) -> Result<u64, StoreError> {
    let Some(keys) = keys else {
        return store.remove_dataset(dataset).await;
    };
    // Every key is tried (the fallback drops its copies even when the
    // backend fails); the first error is the answer.
    let mut purged = 0;
    let mut failed = None;
    for key in keys {
        match store.remove(dataset, key).await {
            Ok(was_there) => purged += u64::from(was_there),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    failed.map_or(Ok(purged), Err)
}
