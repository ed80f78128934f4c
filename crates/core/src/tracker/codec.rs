//! The tracker's snapshot section (`tracker`, version [`SECTION_VERSION`]).
//!
//! Compact binary: a header of scalars, the groups, the slab slot by slot
//! (free slots keep only their generation; live ones their key string, so
//! a snapshot does not depend on key ids), profiles with a bitmap of
//! non-zero buckets, the candidate lists, client sessions and the ring. A
//! restore interns the key strings of the records it keeps into the
//! engine's key table, only once the whole section has been read.
//! Restoring with the same decay settings is bit-exact, so every query
//! answers identically; with different half-lives the counts are carried
//! over at their decayed values as of the snapshot (an approximation).

use super::coaccess::{ClientState, RingEntry, SUCCESSOR_SLOTS};
use super::decay::DecayClock;
use super::groups::GroupState;
use super::profile::{BUCKETS, Profile};
use super::record::{LIVE, NO_PROFILE, PROFILE_WAIT, Slab, TrackedKey};
use super::{NO_SLOT, Tracker, TrackerConfig, rates};
use crate::keys::KeyTable;
use crate::snapshot::{Envelope, Reader, Section, SnapshotError, Writer};
use rustc_hash::FxHashSet;

/// The key string of each record while a section is read (`None`: free).
type Names = Vec<Option<Box<str>>>;

/// Name of the tracker's section.
pub const SECTION_NAME: &str = "tracker";
/// Version of the tracker's section format.
pub const SECTION_VERSION: u32 = 1;

fn put_key(w: &mut Writer, k: TrackedKey) {
    w.u32(k.id);
    w.u32(k.generation);
}

fn get_key(r: &mut Reader<'_>) -> Result<TrackedKey, SnapshotError> {
    Ok(TrackedKey {
        id: r.u32()?,
        generation: r.u32()?,
    })
}

impl Tracker {
    /// The whole learned state as a snapshot (an [`Envelope`] with one
    /// `tracker` section). `now_s` is recorded as the snapshot time; `keys`
    /// names the tracked keys.
    pub fn snapshot(&self, now_s: f64, keys: &KeyTable) -> Vec<u8> {
        let mut e = Envelope::default();
        e.put(self.snapshot_section(now_s, keys));
        e.to_bytes()
    }

    /// Restores a tracker from [`Tracker::snapshot`] bytes under `config`,
    /// interning its keys into `keys`. On error `keys` is unchanged.
    pub fn restore(
        bytes: &[u8],
        config: TrackerConfig,
        keys: &mut KeyTable,
    ) -> Result<Tracker, SnapshotError> {
        let e = Envelope::from_bytes(bytes)?;
        Self::from_section(e.require(SECTION_NAME, SECTION_VERSION)?, config, keys)
    }

    /// The `tracker` section, for an engine composing its own envelope.
    pub fn snapshot_section(&self, now_s: f64, keys: &KeyTable) -> Section {
        let mut w = Writer::default();
        let r = self.decay.rates();
        for x in [
            r.pop,
            r.short,
            r.long,
            r.group,
            self.config.profile_half_life_days,
            self.decay.ref_s(),
        ] {
            w.f64(x);
        }
        w.f64(
            self.last_now_s
                .max(if now_s.is_finite() { now_s } else { f64::MIN }),
        );
        w.f64(self.started_s);
        for x in [
            self.total_accesses,
            self.evicted_keys,
            self.forgotten_keys,
            self.rng,
            self.group_cursor as u64,
        ] {
            w.u64(x);
        }
        w.u32(self.sweep_cursor);
        w.i32(self.days.day);
        w.f64(self.days.counts[0]);
        w.f64(self.days.counts[1]);
        self.write_groups(&mut w);
        self.write_slab(&mut w, keys);
        self.write_profiles(&mut w);
        w.f64(self.top.threshold);
        for list in [&self.top.members, &self.trending, &self.profiles.waitlist] {
            w.u32(list.len() as u32);
            list.iter().for_each(|k| put_key(&mut w, *k));
        }
        w.u32(self.coaccess.clients.len() as u32);
        for (name, c) in &self.coaccess.clients {
            w.str16(name);
            put_key(&mut w, c.last);
            w.f64(c.last_s);
            w.f64(c.last_w);
        }
        w.u32(self.coaccess.ring.len() as u32);
        for e in &self.coaccess.ring {
            put_key(&mut w, e.key);
            w.f64(e.t_s);
            w.f64(e.w);
        }
        Section {
            name: SECTION_NAME.to_string(),
            version: SECTION_VERSION,
            bytes: w.into_bytes(),
        }
    }

    fn write_groups(&self, w: &mut Writer) {
        w.f64(self.groups.total_short);
        w.f64(self.groups.total_long);
        w.u32(self.groups.list.len() as u32);
        for g in &self.groups.list {
            w.str16(&g.name);
            w.f64(g.short);
            w.f64(g.long);
        }
    }

    fn write_slab(&self, w: &mut Writer, keys: &KeyTable) {
        w.u32(self.slab.records.len() as u32);
        for r in &self.slab.records {
            w.u8(r.flags & (LIVE | PROFILE_WAIT));
            w.u32(r.generation);
            if !r.is_live() {
                continue;
            }
            w.str16(keys.name(r.key));
            w.f64(r.pop);
            w.f64(r.long);
            w.f64(r.last_s);
            w.f32(r.short);
            w.u32(r.profile);
            r.groups.iter().for_each(|g| w.u16(*g));
            let s = &r.succ;
            w.f32(s.total);
            let used: Vec<usize> = (0..SUCCESSOR_SLOTS)
                .filter(|&i| s.weights[i] != 0.0)
                .collect();
            w.u8(used.len() as u8);
            for i in used {
                w.u8(i as u8);
                w.u32(s.ids[i]);
                w.u16(s.gens[i]);
                w.f32(s.weights[i]);
            }
        }
    }

    fn write_profiles(&self, w: &mut Writer) {
        w.u32(self.profiles.slots.len() as u32);
        for p in &self.profiles.slots {
            put_key(w, p.owner);
            w.i32(p.base_day);
            w.i32(p.created_day);
            w.i32(p.shift);
            w.f32(p.days_before[0]);
            w.f32(p.days_before[1]);
            let mut bitmap = [0u8; BUCKETS.div_ceil(8)];
            for (i, b) in p.buckets.iter().enumerate() {
                if *b != 0 {
                    bitmap[i / 8] |= 1 << (i % 8);
                }
            }
            w.bytes(&bitmap);
            p.buckets
                .iter()
                .filter(|b| **b != 0)
                .for_each(|b| w.u16(*b));
        }
        w.u32(self.profiles.free.len() as u32);
        self.profiles.free.iter().for_each(|i| w.u32(*i));
    }

    /// Restores from a `tracker` section under `config`, interning the
    /// keys it keeps into `keys` (on error `keys` is unchanged).
    pub fn from_section(
        section: &Section,
        config: TrackerConfig,
        keys: &mut KeyTable,
    ) -> Result<Tracker, SnapshotError> {
        if section.version > SECTION_VERSION {
            let what = section.name.clone();
            return Err(SnapshotError::NewerVersion {
                what,
                found: section.version,
                supported: SECTION_VERSION,
            });
        }
        let mut t =
            Tracker::new(config).map_err(|e| SnapshotError::Malformed(format!("config: {e}")))?;
        let mut r = Reader::new(&section.bytes, "tracker section");
        let mut saved = [0.0; 6];
        for x in &mut saved {
            *x = r.f64()?;
        }
        let [pop, short, long, group, hl_days, ref_s] = saved;
        let saved_rates = super::decay::Rates {
            pop,
            short,
            long,
            group,
        };
        t.last_now_s = r.f64()?;
        t.started_s = r.f64()?;
        t.total_accesses = r.u64()?;
        t.evicted_keys = r.u64()?;
        t.forgotten_keys = r.u64()?;
        t.rng = r.u64()?.max(1);
        t.group_cursor = r.u64()? as usize;
        t.sweep_cursor = r.u32()?;
        t.days.day = r.i32()?;
        t.days.counts = [r.f64()?, r.f64()?];
        t.read_groups(&mut r)?;
        let names = t.read_slab(&mut r)?;
        t.read_profiles(&mut r, &names)?;
        t.top.threshold = r.f64()?;
        let mut lists = [Vec::new(), Vec::new(), Vec::new()];
        for list in &mut lists {
            let n = r.u32()? as usize;
            for _ in 0..n {
                list.push(t.checked_key(&mut r)?);
            }
        }
        let [top, trending, waitlist] = lists;
        (t.top.members, t.trending, t.profiles.waitlist) = (top, trending, waitlist);
        t.read_coaccess(&mut r)?;
        r.finish()?;
        t.rebuild_derived();
        t.decay = DecayClock::new(saved_rates, ref_s);
        if saved_rates != rates(&t.config) || hl_days != t.config.profile_half_life_days {
            t.convert_rates(rates(&t.config));
        }
        t.fit_to_config();
        t.intern_keys(names, keys);
        Ok(t)
    }

    /// Interns the keys of the records kept and maps them to their records.
    fn intern_keys(&mut self, names: Names, keys: &mut KeyTable) {
        for (id, name) in names.into_iter().enumerate() {
            let r = &mut self.slab.records[id];
            if let (true, Some(name)) = (r.is_live(), name) {
                r.key = keys.intern(&name);
                if self.slot_of.len() <= r.key.ix() {
                    self.slot_of.resize(r.key.ix() + 1, NO_SLOT);
                }
                self.slot_of[r.key.ix()] = id as u32;
            }
        }
    }

    fn checked_key(&self, r: &mut Reader<'_>) -> Result<TrackedKey, SnapshotError> {
        let k = get_key(r)?;
        if (k.id as usize) < self.slab.records.len() || k.id == u32::MAX {
            Ok(k)
        } else {
            Err(r.error(format_args!("key id {} out of range", k.id)))
        }
    }

    fn read_groups(&mut self, r: &mut Reader<'_>) -> Result<(), SnapshotError> {
        self.groups.total_short = r.f64()?;
        self.groups.total_long = r.f64()?;
        let n = r.u32()? as usize;
        if n > u16::MAX as usize {
            return Err(r.error(format_args!("{n} groups")));
        }
        for g in 0..n {
            let name = r.str16()?;
            let (short, long) = (r.f64()?, r.f64()?);
            if self
                .groups
                .by_name
                .insert(Box::from(name), g as u16)
                .is_some()
            {
                return Err(r.error(format_args!("duplicate group `{name}`")));
            }
            self.groups.list.push(GroupState {
                name: Box::from(name),
                short,
                long,
                members: Vec::new(),
            });
        }
        Ok(())
    }

    /// Reads the records (keyed later, see `intern_keys`); returns their
    /// key strings.
    fn read_slab(&mut self, r: &mut Reader<'_>) -> Result<Names, SnapshotError> {
        let n = r.u32()? as usize;
        let mut records = Vec::with_capacity(n.min(1 << 20));
        let mut names: Names = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            let flags = r.u8()?;
            let mut rec = Slab::vacant_record(r.u32()?);
            let mut name = None;
            if flags & LIVE != 0 {
                rec.flags = flags & (LIVE | PROFILE_WAIT);
                name = Some(Box::<str>::from(r.str16()?));
                rec.pop = r.f64()?;
                rec.long = r.f64()?;
                rec.last_s = r.f64()?;
                rec.short = r.f32()?;
                rec.profile = r.u32()?;
                for g in &mut rec.groups {
                    *g = r.u16()?;
                }
                if rec
                    .groups
                    .iter()
                    .any(|&g| g != super::record::NO_GROUP && g as usize >= self.groups.list.len())
                {
                    return Err(r.error("group id out of range"));
                }
                rec.succ.total = r.f32()?;
                for _ in 0..r.u8()? {
                    let i = r.u8()? as usize;
                    if i >= SUCCESSOR_SLOTS {
                        return Err(r.error(format_args!("successor slot {i}")));
                    }
                    (rec.succ.ids[i], rec.succ.gens[i], rec.succ.weights[i]) =
                        (r.u32()?, r.u16()?, r.f32()?);
                    if rec.succ.ids[i] as usize >= n {
                        return Err(r.error("successor id out of range"));
                    }
                }
            }
            records.push(rec);
            names.push(name);
        }
        self.slab = Slab::from_records(records);
        let mut seen = FxHashSet::default();
        for name in names.iter().flatten() {
            if !seen.insert(&**name) {
                return Err(r.error(format_args!("duplicate key `{name}`")));
            }
        }
        Ok(names)
    }

    fn read_profiles(&mut self, r: &mut Reader<'_>, names: &Names) -> Result<(), SnapshotError> {
        let n = r.u32()? as usize;
        for _ in 0..n {
            let owner = get_key(r)?;
            let (base_day, created_day, shift) = (r.i32()?, r.i32()?, r.i32()?);
            let days_before = [r.f32()?, r.f32()?];
            let bitmap = r.take(BUCKETS.div_ceil(8))?.to_vec();
            let mut buckets = [0u16; BUCKETS];
            for (i, b) in buckets.iter_mut().enumerate() {
                if bitmap[i / 8] & (1 << (i % 8)) != 0 {
                    *b = r.u16()?;
                }
            }
            self.profiles.slots.push(Profile {
                owner,
                base_day,
                created_day,
                shift,
                days_before,
                maybe_nonzero: Profile::nonzero_mask(&buckets),
                buckets,
            });
        }
        let free = r.u32()? as usize;
        for _ in 0..free {
            let i = r.u32()?;
            if i as usize >= n {
                return Err(r.error("free profile slot out of range"));
            }
            self.profiles.free.push(i);
        }
        for (id, rec) in self.slab.records.iter().enumerate() {
            if rec.is_live() && rec.profile != NO_PROFILE {
                let ok = self
                    .profiles
                    .slots
                    .get(rec.profile as usize)
                    .is_some_and(|p| p.owner.id == id as u32);
                if !ok {
                    let name = names[id].as_deref().unwrap_or("");
                    return Err(r.error(format_args!("key `{name}` has a foreign profile")));
                }
            }
        }
        Ok(())
    }

    fn read_coaccess(&mut self, r: &mut Reader<'_>) -> Result<(), SnapshotError> {
        let n = r.u32()? as usize;
        for _ in 0..n {
            let name = r.str16()?;
            let last = self.checked_key(r)?;
            let c = ClientState {
                last,
                last_s: r.f64()?,
                last_w: r.f64()?,
            };
            self.coaccess.clients.insert(Box::from(name), c);
        }
        let n = r.u32()? as usize;
        for _ in 0..n {
            let key = self.checked_key(r)?;
            self.coaccess.ring.push(RingEntry {
                key,
                t_s: r.f64()?,
                w: r.f64()?,
            });
        }
        Ok(())
    }

    /// Flags and member lists that the snapshot does not store.
    fn rebuild_derived(&mut self) {
        for k in self.top.members.clone() {
            if self.slab.get(k).is_some() {
                self.slab.records[k.id as usize].flags |= super::record::IN_TOP;
            }
        }
        for k in self.trending.clone() {
            if self.slab.get(k).is_some() {
                self.slab.records[k.id as usize].flags |= super::record::IN_TRENDING;
            }
        }
        for id in 0..self.slab.records.len() {
            let rec = &self.slab.records[id];
            if rec.is_live() {
                let (handle, groups) = (self.slab.handle(id as u32), rec.groups);
                for g in groups.into_iter().filter(|&g| g != super::record::NO_GROUP) {
                    self.groups.list[g as usize].members.push(handle);
                }
            }
        }
    }

    /// Carries counts over to new decay rates at their decayed values as of
    /// the snapshot time.
    fn convert_rates(&mut self, new: super::decay::Rates) {
        let now_s = self.last_now_s;
        let f = self.decay.rebase(now_s);
        self.rebase_by(f);
        self.decay = DecayClock::new(new, now_s);
    }

    /// Evicts and releases until the restored state fits `config`.
    fn fit_to_config(&mut self) {
        let max = self.config.max_keys;
        let over = self.slab.live() > max;
        if over {
            let mut live: Vec<(f64, u32)> = (0..self.slab.records.len() as u32)
                .filter(|&i| self.slab.records[i as usize].is_live())
                .map(|i| (self.slab.records[i as usize].pop, i))
                .collect();
            live.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
            let excess = live.len() - max;
            for (_, id) in live.into_iter().take(excess) {
                self.remove_key(id);
                self.evicted_keys += 1;
            }
        }
        let cap = self.config.profiled_key_cap();
        while self.profiles.assigned() > cap {
            let Some((i, owner)) = self
                .profiles
                .slots
                .iter()
                .enumerate()
                .rev()
                .find(|(_, p)| p.owner.id != u32::MAX)
                .map(|(i, p)| (i, p.owner))
            else {
                break;
            };
            if self.slab.get(owner).is_some() {
                self.slab.records[owner.id as usize].profile = NO_PROFILE;
            }
            self.profiles.release(i as u32);
        }
        self.coaccess.bound_clients(self.config.max_clients);
        if over {
            self.top.rebuild(&mut self.slab);
        }
    }
}
