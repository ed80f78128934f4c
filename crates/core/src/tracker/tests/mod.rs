//! Behaviour tests of the tracker (acceptance criteria of the module).
//!
//! The tests speak in key strings: [`Named`] pairs a tracker with its own
//! key table, names keys on the way in and out and releases the ids of the
//! keys the tracker drops (as the engine does). Test modules import it as
//! `Tracker`.

mod coaccess;
mod popularity;
mod snapshot;
mod time;

use super::record::KeyRecord;
use super::{
    AccessContext, KeyScore, NameKeys, Prediction, Tracker, TrackerConfig, TrackerConfigError,
    TrackerStats, TrendingKey,
};
use crate::keys::{KeyId, KeyTable};
use crate::snapshot::{Section, SnapshotError};
use chrono::TimeZone;
use std::ops::{Deref, DerefMut};

/// Unix seconds of a New York wall-clock time.
pub(super) fn ny(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> f64 {
    let t = chrono_tz::America::New_York
        .with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("unambiguous");
    t.timestamp() as f64
}

/// A tracker with its own key table, spoken to by key strings.
#[derive(Debug, Clone)]
pub(super) struct Named {
    tracker: Tracker,
    keys: KeyTable,
}

impl Deref for Named {
    type Target = Tracker;
    fn deref(&self) -> &Tracker {
        &self.tracker
    }
}

impl DerefMut for Named {
    fn deref_mut(&mut self) -> &mut Tracker {
        &mut self.tracker
    }
}

impl Named {
    fn with(mut tracker: Tracker, keys: KeyTable) -> Named {
        tracker.report_drops();
        Named { tracker, keys }
    }

    pub fn new(config: TrackerConfig) -> Result<Named, TrackerConfigError> {
        Ok(Named::with(Tracker::new(config)?, KeyTable::default()))
    }

    /// Restores into a new key table.
    pub fn restore(bytes: &[u8], config: TrackerConfig) -> Result<Named, SnapshotError> {
        let mut keys = KeyTable::default();
        let tracker = Tracker::restore(bytes, config, &mut keys)?;
        Ok(Named::with(tracker, keys))
    }

    pub fn from_section(section: &Section, config: TrackerConfig) -> Result<Named, SnapshotError> {
        let mut keys = KeyTable::default();
        let tracker = Tracker::from_section(section, config, &mut keys)?;
        Ok(Named::with(tracker, keys))
    }

    /// Releases the ids of the keys the tracker dropped.
    fn release_dropped(&mut self) {
        let mut dropped = Vec::new();
        self.tracker.take_dropped(&mut dropped);
        for k in dropped {
            assert!(self.keys.release(k), "dropped once");
        }
    }

    pub fn maintain(&mut self, now_s: f64) {
        self.tracker.maintain(now_s);
        self.release_dropped();
    }

    fn id(&mut self, key: &str) -> KeyId {
        self.keys.intern(key)
    }

    /// The id of `key` if it is tracked.
    pub fn lookup(&self, key: &str) -> Option<KeyId> {
        self.keys.get(key).filter(|&k| self.tracker.is_tracked(k))
    }

    /// The record of tracked `key`.
    pub fn record(&self, key: &str) -> &KeyRecord {
        let id = self.lookup(key).expect("tracked");
        &self.tracker.slab.records[self.tracker.record_id(id).unwrap() as usize]
    }

    pub fn track_access(&mut self, key: &str, now_s: f64, ctx: &AccessContext<'_>) -> KeyId {
        let id = self.id(key);
        self.tracker.track_access(id, now_s, ctx);
        self.release_dropped();
        id
    }

    pub fn set_groups(&mut self, key: &str, groups: &[&str]) {
        let id = self.id(key);
        self.tracker.set_groups(id, groups);
        self.release_dropped();
    }

    pub fn popularity(&self, key: &str, now_s: f64) -> Option<f64> {
        self.lookup(key)
            .and_then(|k| self.tracker.popularity(k, now_s))
    }

    pub fn expected_rate(&self, key: &str, now_s: f64) -> f64 {
        self.lookup(key)
            .map_or(0.0, |k| self.tracker.expected_rate(k, now_s))
    }

    pub fn groups_of(&self, key: &str) -> Vec<&str> {
        self.lookup(key)
            .map_or_else(Vec::new, |k| self.tracker.groups_of(k))
    }

    pub fn popular(&self, now_s: f64, limit: usize) -> Vec<KeyScore<String>> {
        self.tracker.popular(now_s, limit).named(&self.keys)
    }

    pub fn trending(&self, now_s: f64, window_s: f64, limit: usize) -> Vec<TrendingKey<String>> {
        self.tracker
            .trending(now_s, window_s, limit)
            .named(&self.keys)
    }

    pub fn upcoming(&self, now_s: f64, look_ahead_s: f64, limit: usize) -> Vec<KeyScore<String>> {
        self.tracker
            .upcoming(now_s, look_ahead_s, limit)
            .named(&self.keys)
    }

    pub fn upcoming_cached(
        &mut self,
        now_s: f64,
        look_ahead_s: f64,
        limit: usize,
        max_age_s: f64,
    ) -> Vec<KeyScore<String>> {
        self.tracker
            .upcoming_cached(now_s, look_ahead_s, limit, max_age_s)
            .named(&self.keys)
    }

    pub fn predict_next(&self, current: &str, limit: usize) -> Vec<Prediction<String>> {
        self.predict_next_above(current, 0.0, limit)
    }

    pub fn predict_next_above(
        &self,
        current: &str,
        min_confidence: f64,
        limit: usize,
    ) -> Vec<Prediction<String>> {
        self.keys.get(current).map_or_else(Vec::new, |k| {
            self.tracker
                .predict_next(k, min_confidence, limit)
                .named(&self.keys)
        })
    }

    pub fn group_members(&self, group: &str, limit: usize) -> Vec<KeyScore<String>> {
        self.tracker.group_members(group, limit).named(&self.keys)
    }

    pub fn stats(&self, now_s: f64) -> TrackerStats {
        self.tracker.stats(now_s, &self.keys)
    }

    pub fn snapshot(&self, now_s: f64) -> Vec<u8> {
        self.tracker.snapshot(now_s, &self.keys)
    }

    pub fn snapshot_section(&self, now_s: f64) -> Section {
        self.tracker.snapshot_section(now_s, &self.keys)
    }
}

pub(super) fn tracker(max_keys: usize) -> Named {
    Named::new(TrackerConfig::with_max_keys(max_keys)).expect("valid config")
}

pub(super) fn hit(t: &mut Named, key: &str, now_s: f64) {
    t.track_access(key, now_s, &AccessContext::default());
}

pub(super) fn hit_by(t: &mut Named, client: &str, key: &str, now_s: f64) {
    t.track_access(
        key,
        now_s,
        &AccessContext {
            client: Some(client),
            groups: &[],
        },
    );
}
