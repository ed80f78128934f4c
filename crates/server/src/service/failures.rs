//! Failed fetches remembered per key (negative caching): for a short,
//! growing back-off after a failure, reads and warming do not call
//! upstream for that key again; reads get its stale entry (within the
//! grace) or the remembered error.
//!
//! Invariants: the back-off is `failure_backoff_s × 2^(streak − 1)`, at
//! most `failure_backoff_max_s`; a success forgets the key; a failure long
//! after the last back-off ended starts a new streak; the map is bounded
//! ([`MAX_REMEMBERED`] keys).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::FlightKey;
use crate::upstream::FetchError;

/// Most keys remembered at once.
pub const MAX_REMEMBERED: usize = 10_000;

#[derive(Debug, Clone)]
struct Failed {
    error: FetchError,
    until_s: f64,
    streak: u32,
}

/// The remembered failures, by dataset and key.
#[derive(Debug)]
pub(super) struct FailureMemo {
    failed: Mutex<HashMap<FlightKey, Failed>>,
    base_s: f64,
    max_s: f64,
}

impl FailureMemo {
    /// Remembers failures for `base_s` (doubling up to `max_s`); a zero
    /// `base_s` remembers nothing.
    pub(super) fn new(base_s: f64, max_s: f64) -> Self {
        Self {
            failed: Mutex::new(HashMap::new()),
            base_s,
            max_s,
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<FlightKey, Failed>> {
        // Every entry is valid on its own: a poisoned lock is taken over.
        self.failed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The error of `key`'s last fetch and when its back-off ends (Unix
    /// seconds), while it lasts.
    pub(super) fn recall(&self, key: &FlightKey, now_s: f64) -> Option<(FetchError, f64)> {
        self.map()
            .get(key)
            .filter(|f| now_s < f.until_s)
            .map(|f| (f.error.clone(), f.until_s))
    }

    /// Counts the outcome of a fetch of `key` that ended at `now_s`.
    pub(super) fn record(&self, key: &FlightKey, result: Result<(), &FetchError>, now_s: f64) {
        let error = match result {
            Ok(()) => {
                self.map().remove(key);
                return;
            }
            Err(e) if self.base_s > 0.0 && remembered(e) => e,
            Err(_) => return,
        };
        let mut map = self.map();
        let streak = match map.get(key) {
            Some(f) if now_s - f.until_s <= self.max_s => f.streak.saturating_add(1),
            _ => 1,
        };
        let wait_s = (self.base_s * 2f64.powi(streak.min(30) as i32 - 1)).min(self.max_s);
        if map.len() >= MAX_REMEMBERED && !map.contains_key(key) {
            let max_s = self.max_s;
            map.retain(|_, f| now_s - f.until_s <= max_s);
            if map.len() >= MAX_REMEMBERED {
                map.clear();
            }
        }
        map.insert(
            key.clone(),
            Failed {
                error: error.clone(),
                until_s: now_s + wait_s,
                streak,
            },
        );
    }
}

/// Whether a failure is the key's own (remembered): not a host-wide hold
/// (rate limit, open breaker, which the host's gate remembers; a spent
/// upstream quota) nor a crashed loader.
fn remembered(e: &FetchError) -> bool {
    !matches!(
        e,
        FetchError::RateLimited { .. }
            | FetchError::Unavailable { .. }
            | FetchError::QuotaExhausted { .. }
            | FetchError::Abandoned
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> FlightKey {
        ("quote".into(), k.into())
    }

    #[test]
    fn a_failure_is_remembered_for_a_growing_back_off_and_a_success_forgets_it() {
        let memo = FailureMemo::new(2.0, 10.0);
        let k = key("A");
        let mut ends = Vec::new();
        let mut t = 0.0;
        for _ in 0..5 {
            memo.record(&k, Err(&FetchError::Timeout), t);
            let (e, until) = memo.recall(&k, t).expect("remembered");
            assert_eq!(e, FetchError::Timeout);
            assert!(memo.recall(&k, until).is_none(), "over at its end");
            ends.push(until - t);
            t = until;
        }
        assert_eq!(ends, [2.0, 4.0, 8.0, 10.0, 10.0]);
        memo.record(&k, Ok(()), t);
        memo.record(&k, Err(&FetchError::Timeout), t);
        assert_eq!(memo.recall(&k, t).unwrap().1 - t, 2.0, "a new streak");
        assert!(memo.recall(&key("B"), t).is_none());
    }

    #[test]
    fn host_wide_holds_are_not_remembered_per_key() {
        let memo = FailureMemo::new(2.0, 10.0);
        let k = key("A");
        let held = FetchError::Unavailable { retry_after_s: 5.0 };
        memo.record(&k, Err(&held), 0.0);
        memo.record(
            &k,
            Err(&FetchError::RateLimited { retry_after_s: 1.0 }),
            0.0,
        );
        assert!(memo.recall(&k, 0.0).is_none());
        let off = FailureMemo::new(0.0, 10.0);
        off.record(&k, Err(&FetchError::Timeout), 0.0);
        assert!(off.recall(&k, 0.0).is_none(), "a zero back-off is off");
    }

    #[test]
    fn the_map_stays_bounded() {
        let memo = FailureMemo::new(2.0, 10.0);
        for i in 0..MAX_REMEMBERED + 10 {
            memo.record(&key(&i.to_string()), Err(&FetchError::Timeout), 0.0);
        }
        assert!(memo.map().len() <= MAX_REMEMBERED);
    }
}
