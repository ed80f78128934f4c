//! The access tracker: learns how keys are accessed, sans-I/O.
//!
//! Time is always passed in as `now_s` (Unix seconds); nothing here reads a
//! clock, does I/O or spawns threads (a driver wraps a [`Tracker`] in a
//! lock or shards it). **Warming never counts**: drivers call
//! [`Tracker::track_access`] only for client accesses, never for warming
//! fetches, or warming would inflate the very demand it predicts.
//!
//! Keys are [`KeyId`]s of the engine's [`KeyTable`](crate::keys::KeyTable):
//! the tracker takes and returns ids, and needs the table only to write and
//! read snapshots (which store key strings) and to name its statistics. Answers name keys by id;
//! [`NameKeys::named`] turns them into strings at the API edge. The keys it
//! stops tracking (evicted or forgotten) are reported, when asked to with
//! [`Tracker::report_drops`], so the engine can release their ids.
//!
//! Module map and invariants:
//! - [`config`]: [`TrackerConfig`], validated with errors naming the field.
//! - `decay`: forward decay; stored counts are scaled by
//!   `exp(λ (t - ref_s))`, so an access adds one weight computed once per
//!   distinct `now_s`, and all keys compare without decaying anything.
//! - `record`: the slab of (at most) 112-byte
//!   [`KeyRecord`](record::KeyRecord)s; handles carry a generation so stale
//!   references fail validation. A dense vector maps a key id to its record
//!   (4 bytes per key id).

//! - `popular`: incremental top candidates; `popular()` reads ~1,000 keys.
//! - `profile`: bounded slab of `u16` time-of-day profiles in exchange
//!   time, only for keys that earn one.
//! - `coaccess`: per-key successor slots with calibrated confidence;
//!   client sessions and the global stream ring.
//! - `groups`: decayed group shares and learned membership.
//! - `query`, `maintain`, `codec`: read-only queries, periodic upkeep and
//!   the snapshot section; `answer`: the types they answer with.
//!
//! Memory is bounded by `max_keys` (coldest-of-sample eviction), the
//! profile cap, `max_clients` and `max_groups`, and by the key table's
//! bound (which the engine keeps with the tracker's); it is flat in
//! accesses.

mod answer;
mod coaccess;
mod codec;
pub mod config;
mod decay;
mod groups;
mod maintain;
mod popular;
mod profile;
mod query;
mod record;
#[cfg(test)]
mod tests;

pub use answer::{GroupTrend, KeyScore, NameKeys, Prediction, TrackerStats, TrendingKey};
pub use coaccess::SUCCESSOR_SLOTS;
pub use config::{TrackerConfig, TrackerConfigError};
pub use profile::{OTHER_BUCKET_S, OTHER_BUCKETS, TRADING_BUCKET_S, TRADING_BUCKETS};
pub use record::MAX_GROUPS_PER_KEY;

use crate::calendar::{ExchangeCalendar, LocalClock};
use crate::keys::KeyId;
use coaccess::CoAccess;
use decay::{DecayClock, HARD_REBASE_EXPONENT, Rates, Weights};
use groups::Groups;
use popular::TopSet;
use profile::{DayCounters, MAX_WAITLIST, Profile, Profiles};
use record::{IN_TOP, IN_TRENDING, NO_KEY, NO_PROFILE, PROFILE_WAIT, Slab, TrackedKey};

/// Optional context of an access.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessContext<'a> {
    /// Client id, when known: co-access is then learned per client session.
    pub client: Option<&'a str>,
    /// Group tags of the key (such as a sector); learned as membership.
    pub groups: &'a [&'a str],
}

/// `slot_of` value of an untracked key.
const NO_SLOT: u32 = u32::MAX;

/// The access tracker. See the module docs.
#[derive(Debug, Clone)]
pub struct Tracker {
    config: TrackerConfig,
    decay: DecayClock,
    clock: LocalClock,
    /// Record id of each tracked key, by key id ([`NO_SLOT`]: untracked).
    slot_of: Vec<u32>,
    slab: Slab,
    top: TopSet,
    /// Keys with at least `trending_min_count` short-window accesses.
    trending: Vec<TrackedKey>,
    profiles: Profiles,
    days: DayCounters,
    groups: Groups,
    coaccess: CoAccess,
    rng: u64,
    total_accesses: u64,
    evicted_keys: u64,
    forgotten_keys: u64,
    sweep_cursor: u32,
    group_cursor: usize,
    last_now_s: f64,
    /// First access ever (NaN before): EWMA rates are bias-corrected for
    /// the time observed so a young tracker does not see everything trend.
    started_s: f64,
    /// The last [`Tracker::upcoming_cached`] answer (not in snapshots).
    upcoming_cache: Option<query::UpcomingCache>,
    /// Whether keys that stop being tracked are reported (see
    /// [`Tracker::report_drops`]).
    report_drops: bool,
    /// Keys that stopped being tracked since the last
    /// [`Tracker::take_dropped`].
    dropped: Vec<KeyId>,
}

fn rates(c: &TrackerConfig) -> Rates {
    Rates {
        pop: Rates::from_half_life_s(c.popularity_half_life_s),
        short: 1.0 / c.trending_window_s,
        long: Rates::from_half_life_s(c.trending_baseline_half_life_s),
        group: Rates::from_half_life_s(c.group_short_half_life_s),
    }
}

impl Tracker {
    /// A new, empty tracker. Fails if `config` does not validate.
    pub fn new(config: TrackerConfig) -> Result<Tracker, TrackerConfigError> {
        Self::with_reference(config, 0.0)
    }

    fn with_reference(config: TrackerConfig, ref_s: f64) -> Result<Tracker, TrackerConfigError> {
        config.validate()?;
        let tz = config.parse_timezone()?;
        Ok(Tracker {
            decay: DecayClock::new(rates(&config), ref_s),
            clock: LocalClock::new(ExchangeCalendar::with_timezone(tz)),
            slot_of: Vec::new(),
            slab: Slab::default(),
            top: TopSet::default(),
            trending: Vec::new(),
            profiles: Profiles::default(),
            days: DayCounters::default(),
            groups: Groups::default(),
            coaccess: CoAccess::default(),
            rng: 0x9E37_79B9_7F4A_7C15,
            total_accesses: 0,
            evicted_keys: 0,
            forgotten_keys: 0,
            sweep_cursor: 0,
            group_cursor: 0,
            last_now_s: ref_s,
            started_s: f64::NAN,
            upcoming_cache: None,
            report_drops: false,
            dropped: Vec::new(),
            config,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// The exchange calendar the profiles use.
    pub fn calendar(&self) -> &ExchangeCalendar {
        self.clock.calendar()
    }

    /// Records one client access of `key` at `now_s`. O(1), no allocation
    /// except for a new key, client or group. A non-finite `now_s` counts
    /// as the latest time seen. Never call this for a warming fetch.
    pub fn track_access(&mut self, key: KeyId, now_s: f64, ctx: &AccessContext<'_>) {
        let now_s = if now_s.is_finite() {
            now_s
        } else {
            self.last_now_s
        };
        if now_s > self.last_now_s {
            self.last_now_s = now_s;
        }
        if self.started_s.is_nan() || self.started_s > now_s {
            self.started_s = now_s;
        }
        if self.decay.exponent(now_s) > HARD_REBASE_EXPONENT {
            self.rebase(now_s);
        }
        let w = self.decay.weights(now_s);
        let id = self.record_of_or_insert(key, now_s);
        self.record_access(id, now_s, w, ctx);
    }

    /// The record id of tracked `key`.
    #[inline]
    fn record_id(&self, key: KeyId) -> Option<u32> {
        self.slot_of
            .get(key.ix())
            .copied()
            .filter(|&id| id != NO_SLOT)
    }

    /// Whether `key` is tracked.
    #[inline]
    pub fn is_tracked(&self, key: KeyId) -> bool {
        self.record_id(key).is_some()
    }

    /// The tracked keys, in record order.
    pub fn tracked_keys(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.slab
            .records
            .iter()
            .filter(|r| r.is_live())
            .map(|r| r.key)
    }

    /// The record id of `key`, inserting it (and evicting if full).
    #[inline]
    fn record_of_or_insert(&mut self, key: KeyId, now_s: f64) -> u32 {
        match self.record_id(key) {
            Some(id) => id,
            None => self.insert_key(key, now_s),
        }
    }

    #[cold]
    fn insert_key(&mut self, key: KeyId, now_s: f64) -> u32 {
        if self.slab.live() >= self.config.max_keys {
            self.evict_coldest_sampled();
        }
        let id = self.slab.alloc(key, now_s, self.config.max_keys);
        if self.slot_of.len() <= key.ix() {
            self.slot_of.resize(key.ix() + 1, NO_SLOT);
        }
        self.slot_of[key.ix()] = id;
        id
    }

    /// From now on, keys that stop being tracked (evicted to respect
    /// `max_keys`, or forgotten after `forget_after_s`) are collected for
    /// [`Tracker::take_dropped`]. The engine asks for this and drains the
    /// list after every call; a tracker used alone does not collect them.
    pub fn report_drops(&mut self) {
        self.report_drops = true;
    }

    /// Moves the keys dropped since the last call to the end of `out`.
    pub fn take_dropped(&mut self, out: &mut Vec<KeyId>) {
        out.append(&mut self.dropped);
    }

    /// Whether keys were dropped since the last [`Tracker::take_dropped`].
    #[inline]
    pub fn has_dropped(&self) -> bool {
        !self.dropped.is_empty()
    }

    /// Evicts the least popular of a few random keys.
    fn evict_coldest_sampled(&mut self) {
        const SAMPLES: usize = 8;
        let n = self.slab.records.len() as u64;
        let mut best: Option<(f64, u32)> = None;
        let mut seen = 0;
        for _ in 0..SAMPLES * 8 {
            let id = (profile::next_u64(&mut self.rng) % n) as u32;
            let r = &self.slab.records[id as usize];
            if !r.is_live() {
                continue;
            }
            if best.is_none_or(|(p, _)| r.pop < p) {
                best = Some((r.pop, id));
            }
            seen += 1;
            if seen == SAMPLES {
                break;
            }
        }
        if let Some((_, id)) = best {
            self.remove_key(id);
            self.evicted_keys += 1;
        }
    }

    /// Forgets live record `id` everywhere it is owned (lists drop it
    /// lazily through generation checks).
    fn remove_key(&mut self, id: u32) {
        let key = self.slab.records[id as usize].key;
        // A restored record is not keyed yet while the restore fits the
        // config (see `codec`): nothing to unmap or report.
        if key != NO_KEY {
            self.slot_of[key.ix()] = NO_SLOT;
            if self.report_drops {
                self.dropped.push(key);
            }
        }
        let old = self.slab.release(id);
        if old.profile != NO_PROFILE {
            self.profiles.release(old.profile);
        }
    }

    #[inline]
    fn record_access(&mut self, id: u32, now_s: f64, w: Weights, ctx: &AccessContext<'_>) {
        let r = &mut self.slab.records[id as usize];
        r.pop += w.pop;
        r.long += w.long;
        r.short += w.short as f32;
        r.last_s = r.last_s.max(now_s);
        let (pop, short, flags, profile) = (r.pop, r.short, r.flags, r.profile);
        if flags & IN_TOP == 0 && pop > self.top.threshold {
            self.top.admit(&mut self.slab, id);
        }
        if flags & IN_TRENDING == 0
            && f64::from(short) >= self.config.trending_min_count * (1.0 - 1e-6) * w.short
        {
            self.slab.records[id as usize].flags |= IN_TRENDING;
            self.trending.push(self.slab.handle(id));
        }
        if profile != NO_PROFILE {
            self.profile_access(profile, now_s);
        } else if flags & PROFILE_WAIT == 0 && pop >= self.config.profile_min_accesses * w.pop {
            self.grant_profile(id, now_s, true);
        }
        let handle = self.slab.handle(id);
        for g in ctx.groups {
            if let Some(g) = self.groups.intern(g, self.config.max_groups) {
                self.groups.join(&mut self.slab, handle, g);
            }
        }
        self.groups
            .on_access(&self.slab.records[id as usize].groups, w.group, w.long);
        match ctx.client {
            Some(client) if self.config.max_clients > 0 => {
                let gap = self.config.session_idle_gap_s;
                self.coaccess
                    .on_client_access(&mut self.slab, client, handle, now_s, w.pop, gap);
                self.coaccess.bound_clients(self.config.max_clients);
            }
            _ => {
                let win = self.config.coaccess_window_s;
                self.coaccess
                    .on_anonymous_access(&mut self.slab, handle, now_s, w.pop, win);
            }
        }
        self.total_accesses += 1;
    }

    /// Local day of `now_s`, with the day counters brought up to it.
    fn local_day(&mut self, now_s: f64) -> crate::calendar::LocalTime {
        let lt = self.clock.at(now_s);
        if lt.day_index > self.days.day {
            let cal = self.clock.calendar();
            let hl = self.config.profile_half_life_days;
            self.days
                .advance(lt.day_index, hl, |d| is_trading_day(cal, d));
        }
        lt
    }

    fn profile_access(&mut self, p: u32, now_s: f64) {
        let lt = self.local_day(now_s);
        let b = profile::bucket_of(lt.kind.is_trading(), lt.second_of_day);
        let hl = self.config.profile_half_life_days;
        self.profiles.slots[p as usize].add(b, lt.day_index, hl, &mut self.rng);
    }

    /// Gives record `id` a profile if one is free, else waitlists it.
    /// `access` counts the access being recorded now into the new profile
    /// (false when `maintain` hands out profiles).
    fn grant_profile(&mut self, id: u32, now_s: f64, access: bool) {
        let lt = self.local_day(now_s);
        let handle = self.slab.handle(id);
        let p = Profile::new(handle, lt.day_index, lt.kind.is_trading(), &self.days);
        match self.profiles.assign(p, self.config.profiled_key_cap()) {
            Some(p) => {
                self.slab.records[id as usize].profile = p;
                if access {
                    self.profile_access(p, now_s);
                }
            }
            None => {
                if self.profiles.waitlist.len() < MAX_WAITLIST {
                    self.profiles.waitlist.push(handle);
                }
                self.slab.records[id as usize].flags |= PROFILE_WAIT;
            }
        }
    }

    /// Moves the forward-decay reference to `now_s`, rescaling every
    /// stored count (O(keys); rare: see `decay`).
    fn rebase(&mut self, now_s: f64) {
        let f = self.decay.rebase(now_s);
        self.rebase_by(f);
    }

    /// Multiplies every stored forward-scaled count by `f`.
    fn rebase_by(&mut self, f: Weights) {
        for r in self.slab.records.iter_mut().filter(|r| r.is_live()) {
            r.pop *= f.pop;
            r.long *= f.long;
            r.short *= f.short as f32;
            r.succ.scale(f.pop as f32);
        }
        self.top.threshold *= f.pop;
        self.groups.scale(f.group, f.long);
        self.coaccess.scale(f.pop);
    }

    /// Sets the groups of `key` (tracking it without counting an access
    /// if it is new), replacing learned ones. At most
    /// [`MAX_GROUPS_PER_KEY`] are kept; groups beyond `max_groups` are
    /// ignored.
    pub fn set_groups(&mut self, key: KeyId, groups: &[&str]) {
        let id = self.record_of_or_insert(key, self.last_now_s);
        let handle = self.slab.handle(id);
        self.slab.records[id as usize].groups = [record::NO_GROUP; MAX_GROUPS_PER_KEY];
        for g in groups {
            if let Some(g) = self.groups.intern(g, self.config.max_groups) {
                self.groups.join(&mut self.slab, handle, g);
            }
        }
    }
}

/// Whether day `day_index` (days since 1970-01-01) is a trading day.
fn is_trading_day(cal: &ExchangeCalendar, day_index: i32) -> bool {
    chrono::NaiveDate::from_num_days_from_ce_opt(day_index + 719_163)
        .is_some_and(|d| cal.day_kind(d).is_trading())
}
