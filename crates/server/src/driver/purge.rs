//! Purges asked for on the admin listener: the store drops the entries of
//! one key, of one group's members or of a whole dataset, and the engine
//! stops counting them as cached (so it may warm them again); what the
//! tracker learned of them stays.
//!
//! The driver resolves the keys and updates the engine on its own task;
//! the store's deletions run on a task of their own, so the driver never
//! waits on the store.

use std::sync::Arc;

use serde::Serialize;

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
    /// The store failed; entries may be left.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DatasetState {
    /// The keys `scope` names (`None`: the whole dataset), each forgotten
    /// as cached by the engine.
    pub(super) fn forget_cached(&mut self, scope: &PurgeScope) -> Option<Vec<String>> {
        let keys: Vec<String> = match scope {
            PurgeScope::Key { key } => vec![key.clone()],
            PurgeScope::Group { group } => {
                let members = self
                    .engine
                    .tracker()
                    .group_members(group, MAX_GROUP_PURGE_KEYS);
                let names = self.engine.keys();
                members
                    .iter()
                    .map(|m| names.name(m.key).to_string())
                    .filter(|k| !k.is_empty())
                    .collect()
            }
            PurgeScope::Dataset => {
                let cached: Vec<_> = self.engine.cache().keys().collect();
                for id in cached {
                    self.engine.on_evicted(id);
                }
                return None;
            }
        };
        for key in &keys {
            if let Some(id) = self.engine.keys().get(key) {
                self.engine.on_evicted(id);
            }
        }
        Some(keys)
    }
}

/// Drops from `store` the entries of `keys` in `dataset`, or all of the
/// dataset's when `keys` is `None`; returns how many were there.
pub(super) async fn drop_entries(
    store: Arc<dyn Store>,
    dataset: &str,
    keys: Option<Vec<String>>,
) -> Result<u64, StoreError> {
    let Some(keys) = keys else {
        return store.remove_dataset(dataset).await;
    };
    let mut purged = 0;
    for key in &keys {
        purged += u64::from(store.remove(dataset, key).await?);
    }
    Ok(purged)
}
