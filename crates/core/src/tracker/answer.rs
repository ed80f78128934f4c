//! What the tracker answers: keys with scores, trending keys, predictions,
//! group trends and its statistics. Keys are [`KeyId`]s; [`NameKeys`]
//! turns an answer into the `String` form the API shows.

use crate::keys::{KeyId, KeyTable};
use serde::Serialize;

/// A key with a score (meaning depends on the query).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyScore<K = KeyId> {
    /// The key.
    pub key: K,
    /// Decayed accesses (`popular`, `group_members`) or expected accesses
    /// (`upcoming`).
    pub score: f64,
}

/// A key whose short-window rate rises above its own baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrendingKey<K = KeyId> {
    /// The key.
    pub key: K,
    /// Poisson z-score of the short-window count against the baseline.
    pub score: f64,
    /// Short EWMA rate, accesses per minute.
    pub short_rate_per_min: f64,
    /// Long-run baseline EWMA rate, accesses per minute.
    pub baseline_rate_per_min: f64,
}

/// A predicted next key with its calibrated confidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Prediction<K = KeyId> {
    /// The key predicted to follow.
    pub key: K,
    /// Share of the current key's occurrences followed by `key`, in [0, 1].
    pub confidence: f64,
}

/// A group's share of all accesses, short against long.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupTrend {
    /// The group name.
    pub group: String,
    /// Share of accesses at the short group half-life, in [0, 1].
    pub share_short: f64,
    /// Share of accesses at the long (baseline) half-life, in [0, 1].
    pub share_long: f64,
    /// `share_short / share_long`; above 1 the group gains attention.
    pub lift: f64,
}

/// Counters and a summary of the tracker.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrackerStats {
    /// Keys tracked now.
    pub tracked_keys: usize,
    /// Accesses recorded since creation (kept across snapshots).
    pub total_accesses: u64,
    /// Keys evicted to respect `max_keys`.
    pub evicted_keys: u64,
    /// Keys forgotten after `forget_after_s` without access.
    pub forgotten_keys: u64,
    /// Keys with a time-of-day profile.
    pub profiled_keys: usize,
    /// Client sessions tracked.
    pub tracked_clients: usize,
    /// Groups known.
    pub groups: usize,
    /// Estimated heap and inline bytes of the whole tracker, with the key
    /// table that names its keys.
    pub approx_memory_bytes: usize,
    /// The ten most popular keys.
    pub top_10: Vec<KeyScore<String>>,
}

/// A tracker answer whose keys can be named: the API edge.
pub trait NameKeys {
    /// The same answer with key strings.
    type Named;
    /// Names every key through `keys` (the table the ids came from).
    fn named(self, keys: &KeyTable) -> Self::Named;
}

impl NameKeys for KeyScore {
    type Named = KeyScore<String>;
    fn named(self, keys: &KeyTable) -> KeyScore<String> {
        KeyScore {
            key: keys.name(self.key).to_string(),
            score: self.score,
        }
    }
}

impl NameKeys for TrendingKey {
    type Named = TrendingKey<String>;
    fn named(self, keys: &KeyTable) -> TrendingKey<String> {
        TrendingKey {
            key: keys.name(self.key).to_string(),
            score: self.score,
            short_rate_per_min: self.short_rate_per_min,
            baseline_rate_per_min: self.baseline_rate_per_min,
        }
    }
}

impl NameKeys for Prediction {
    type Named = Prediction<String>;
    fn named(self, keys: &KeyTable) -> Prediction<String> {
        Prediction {
            key: keys.name(self.key).to_string(),
            confidence: self.confidence,
        }
    }
}

impl<T: NameKeys> NameKeys for Vec<T> {
    type Named = Vec<T::Named>;
    fn named(self, keys: &KeyTable) -> Vec<T::Named> {
        self.into_iter().map(|x| x.named(keys)).collect()
    }
}
