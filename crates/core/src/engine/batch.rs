//! Batched warming: one upstream call for up to `warm_batch_max_keys`
//! keys, where the upstream has a batch endpoint.
//!
//! Every paid warming order (a token, a cycle's token, the start-up
//! burst) is one upstream call: it counts once in the figures and the cost
//! account and opens a *batch call* with `warm_batch_max_keys − 1` seats.
//! Until the seats run out, the engine may seat more keys in that call at
//! the same instant ([`Engine::poll_ride_along`]): those orders *ride
//! along* ([`WarmOrder::rides_along`]), spend no token and count no call,
//! only a key fetched ([`crate::stats::Event::WarmRideAlong`]). The driver
//! fetches an order and the riding orders after it in one call.
//!
//! Why a seat is worth any candidate of positive value: a riding key costs
//! no call, so its net cost in calls is `−w` for a worth `w > 0` of demand
//! calls saved. The price and the token scarcity are the price of a
//! *call*; they apply to the order that pays for it. A candidate is seated
//! only when its window is open, as for any order: a key fetched before
//! its window would expire before it is needed.
//!
//! The cost cap still holds: a riding fetch adds nothing to the calls `C`,
//! and a fetch never puts a key at risk (it only moves the key's expiry
//! later), so `C + R ≤ c·S + b` is kept as by a paid order (property test
//! in `tests`).

use super::{Engine, Pay, WarmOrder, still_needed};
use crate::UnixSeconds;
use crate::stats::Event;
use crate::strategy::StrategyId;

/// The batch call of the last paid order, while it has seats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct OpenCall {
    /// When the paying order was issued: keys ride along only at that
    /// instant.
    at_s: UnixSeconds,
    /// Keys that may still ride along.
    seats: usize,
}

impl Engine {
    /// Opens the batch call of a paid order issued at `now_s`.
    pub(super) fn open_batch_call(&mut self, now_s: UnixSeconds) {
        let seats = self.cfg.warm_batch_max_keys.saturating_sub(1);
        self.open_call = (seats > 0).then_some(OpenCall { at_s: now_s, seats });
    }

    /// Closes the open batch call, if any: no key rides along in it now.
    pub(super) fn close_batch_call(&mut self) {
        self.open_call = None;
    }

    /// Takes a seat in the batch call open at `now_s`; `false` (and the
    /// call closed) when there is none.
    pub(super) fn take_seat(&mut self, now_s: UnixSeconds) -> bool {
        match &mut self.open_call {
            Some(c) if c.at_s == now_s && c.seats > 0 => {
                c.seats -= 1;
                true
            }
            _ => {
                self.open_call = None;
                false
            }
        }
    }

    /// The next key to ride in the batch call of the order just issued at
    /// `now_s`: the best open candidate of positive value that a paid
    /// order would take. `None` when the call has no seat left (or
    /// batching is off, or the instant moved on), or no candidate
    /// qualifies; the call is then closed. [`Engine::poll_warm`] returns
    /// these first; a driver that fetches each paid order with its riding
    /// ones calls this after each paid order until it returns `None`.
    pub fn poll_ride_along(&mut self, now_s: UnixSeconds) -> Option<WarmOrder> {
        if !matches!(self.open_call, Some(c) if c.at_s == now_s && c.seats > 0) {
            self.close_batch_call();
            return None;
        }
        let (cache, flights) = (&self.cache, &self.flights);
        let Some(c) = self.planner.pop_best(now_s, |c| {
            c.value > 0.0
                && still_needed(cache, c)
                && !flights.under_way(c.key, now_s)
                && cache.fetch_would_extend(c.key, now_s)
        }) else {
            self.close_batch_call();
            return None;
        };
        let seated = self.take_seat(now_s);
        debug_assert!(seated, "the seat was checked above");
        Some(self.issue(
            now_s,
            (c.key, c.strategy, f64::from(c.value)),
            Pay::RideAlong,
        ))
    }

    /// A riding order of `strategy` issued at `issued_at_s` whose key its
    /// call did not fetch (the call was not made, or the key joined a
    /// fetch already in flight): the key is taken back from the figures.
    /// It counted no call, so the cost account is unchanged.
    pub fn take_back_ride_along(&mut self, issued_at_s: UnixSeconds, strategy: StrategyId) {
        self.stats
            .record(issued_at_s, Event::RideAlongTakenBack(strategy));
    }
}

#[cfg(test)]
mod tests;
