//! Fetches under way, as the engine knows them: warming orders out,
//! demand fetches reported started, and demand fetches awaited.
//!
//! Why "awaited": a driver whose read-through fetches on every miss (the
//! daemon) reports the access first and the fetch only when it lands.
//! Between the two the key looks absent, and a warming order issued then
//! pays for a second call of a key whose demand fetch is already on its way
//! (or has just landed and not yet been reported). The driver says a demand
//! fetch follows ([`super::Engine::on_demand_fetch_awaited`]) and until
//! when at most; the key is not warmed until the fetch is reported or that
//! instant passes (a lost report never holds a key back for longer).

use rustc_hash::{FxHashMap, FxHashSet};

use crate::UnixSeconds;
use crate::cache::KeyId;

/// The engine's view of fetches in flight.
#[derive(Debug, Default)]
pub(super) struct Flights {
    /// Keys with a warming order issued and not yet ended.
    pub warm: FxHashSet<KeyId>,
    /// Keys with a demand fetch reported started
    /// ([`super::Engine::on_fetch_started`]) and not yet reported back.
    pub demand: FxHashSet<KeyId>,
    /// Keys whose client read missed and whose demand fetch the driver
    /// will report, with the latest instant it is expected by (Unix s).
    awaited: FxHashMap<KeyId, UnixSeconds>,
}

impl Flights {
    /// Whether a fetch of `key` is under way at `now_s`, so warming it
    /// would pay for a call that one already in flight makes.
    pub fn under_way(&self, key: KeyId, now_s: UnixSeconds) -> bool {
        self.warm.contains(&key) || self.demand.contains(&key) || self.awaits(key, now_s)
    }

    /// Whether a demand fetch of `key` is awaited at `now_s`.
    pub fn awaits(&self, key: KeyId, now_s: UnixSeconds) -> bool {
        self.awaited
            .get(&key)
            .is_some_and(|&until_s| now_s < until_s)
    }

    /// Awaits a demand fetch of `key` until `until_s` at the latest.
    pub fn await_demand(&mut self, key: KeyId, until_s: UnixSeconds) {
        let until = self.awaited.entry(key).or_insert(until_s);
        *until = until.max(until_s);
    }

    /// A demand fetch of `key` was reported (landed, failed or refused):
    /// no longer awaited. Returns whether its start had been reported.
    pub fn demand_reported(&mut self, key: KeyId) -> bool {
        self.awaited.remove(&key);
        self.demand.remove(&key)
    }

    /// Drops what is known of `key` (its id is being released).
    pub fn forget(&mut self, key: KeyId) {
        self.awaited.remove(&key);
    }

    /// Drops awaited fetches whose instant passed by `now_s`, so the map
    /// holds only keys a report may still come for.
    pub fn expire(&mut self, now_s: UnixSeconds) {
        self.awaited.retain(|_, until_s| now_s < *until_s);
    }

    /// Awaited demand fetches held now (tests, sizes).
    #[cfg(test)]
    pub fn awaited_len(&self) -> usize {
        self.awaited.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> KeyId {
        KeyId(n)
    }

    #[test]
    fn an_awaited_demand_fetch_holds_its_key_until_reported_or_its_instant() {
        let mut f = Flights::default();
        f.await_demand(key(1), 10.0);
        assert!(f.under_way(key(1), 9.9));
        assert!(!f.under_way(key(1), 10.0), "a lost report holds no longer");
        assert!(!f.under_way(key(2), 5.0));
        f.await_demand(key(1), 4.0);
        assert!(f.awaits(key(1), 9.0), "a shorter wait never shortens one");
        assert!(!f.demand_reported(key(1)), "no start was reported");
        assert!(!f.under_way(key(1), 1.0));
    }

    #[test]
    fn expiry_keeps_only_fetches_still_awaited() {
        let mut f = Flights::default();
        f.await_demand(key(1), 10.0);
        f.await_demand(key(2), 20.0);
        f.expire(15.0);
        assert_eq!(f.awaited_len(), 1);
        assert!(f.awaits(key(2), 15.0));
    }
}
