//! Registered users polling persistent watchlists.
//!
//! Each user (`u<i>`) has, for the whole trace:
//! - a watchlist of `watchlist_min..=watchlist_max` distinct tickers
//!   (log-uniform size) drawn by popularity, in a fixed order; each day each
//!   slot is replaced with probability `watchlist_churn_per_day` by a ticker
//!   drawn from that day's popularity (in place, so the order holds);
//! - a poll period, log-uniform in `[poll_period_min_s, poll_period_max_s]`
//!   and rounded to whole seconds;
//! - a habitual start: 09:25–09:35 (triangular around 09:30) for
//!   `open_start_fraction` of users, pre-market for
//!   `premarket_start_fraction` (70% in 08:00–09:25, the rest 04:00–08:00),
//!   10:00–14:00 for the rest;
//! - a habitual stop: 0–15 min after the close (55%), at a clock time
//!   during the session (20%) or in after-hours, 16:30–20:00 (25%). On an
//!   early close, session stops are capped at the close and after-hours
//!   stops move three hours earlier;
//! - a fixed gap of `item_gap_min_ms..=item_gap_max_ms` between the tickers
//!   of one poll.
//!
//! On a trading day a user is absent with probability `absent_prob`;
//! otherwise it polls from its start to its stop (both jittered by up to
//! ±`start_jitter_s`), at `start + k·period` plus up to `poll_jitter_ms`
//! of timer jitter, requesting its whole watchlist: in order, `gap + [0,
//! gap)` ms apart, so the tickers of a poll always come in the same order
//! ([`PollMode::Sequential`]), or all at the poll's millisecond
//! ([`PollMode::Batched`]). On a
//! weekend or holiday a user polls only with probability
//! `min(1, 4·lull_fraction)`, for 30–120 minutes starting at 09:00–21:00,
//! which makes the users' lull-day volume about `lull_fraction` of a
//! trading day's.

use super::config::{GenConfig, PollMode};
use super::day::{HOUR_MS, LocalDay, MINUTE_MS, OPEN_MS, PREMARKET_OPEN_MS};
use super::rng::Rng;
use super::universe::Popularity;
use super::{ClientKind, Event, client_id};

/// Stream label of this module.
const USERS: u64 = 10;
/// Users poll on a lull day with this times `lull_fraction` probability.
const LULL_ACTIVITY_FACTOR: f64 = 4.0;
/// 16:00, the close a habitual clock stop is measured against.
const FULL_CLOSE_MS: u32 = 16 * HOUR_MS;

#[derive(Debug, Clone, Copy)]
enum Stop {
    /// At the close plus this offset, ms.
    AtClose(i64),
    /// At this local clock time, ms.
    Clock(u32),
}

#[derive(Debug, Clone)]
struct User {
    client: u32,
    watchlist: Vec<u32>,
    period_ms: u32,
    start_ms: u32,
    stop: Stop,
    gap_ms: u32,
    /// Persistent stream for churn and daily choices.
    rng: Rng,
}

/// All users of a trace.
#[derive(Debug, Clone)]
pub(crate) struct Users {
    users: Vec<User>,
    churn: f64,
    jitter_ms: f64,
    absent_prob: f64,
    lull_fraction: f64,
    mode: PollMode,
    poll_jitter_ms: u64,
}

impl Users {
    pub fn new(cfg: &GenConfig, popularity: &Popularity) -> Self {
        let users = (0..cfg.users)
            .map(|i| new_user(cfg, popularity, i as u32))
            .collect();
        Self {
            users,
            churn: cfg.user.watchlist_churn_per_day,
            jitter_ms: cfg.user.start_jitter_s * 1000.0,
            absent_prob: cfg.user.absent_prob,
            lull_fraction: cfg.lull_fraction,
            mode: cfg.user.poll_mode,
            poll_jitter_ms: u64::from(cfg.user.poll_jitter_ms),
        }
    }

    /// Appends the day's polls of every user to `out`.
    pub fn generate_day(&mut self, day: &LocalDay, popularity: &Popularity, out: &mut Vec<Event>) {
        for user in &mut self.users {
            if day.index > 0 {
                churn(user, popularity, self.churn);
            }
            let window = if day.is_trading() {
                if user.rng.chance(self.absent_prob) {
                    continue;
                }
                trading_window(user, day, self.jitter_ms)
            } else {
                if !user.rng.chance(LULL_ACTIVITY_FACTOR * self.lull_fraction) {
                    continue;
                }
                let start = user.rng.range_incl(9, 20) as u32 * HOUR_MS
                    + user.rng.below(u64::from(HOUR_MS)) as u32;
                let minutes = user.rng.range_incl(30, 120) as u32;
                (start, start + minutes * MINUTE_MS)
            };
            poll(user, day, window, (self.mode, self.poll_jitter_ms), out);
        }
    }
}

fn new_user(cfg: &GenConfig, popularity: &Popularity, index: u32) -> User {
    let p = &cfg.user;
    let mut rng = Rng::stream(cfg.seed, &[USERS, u64::from(index)]);
    let size = rng.log_uniform(p.watchlist_min as f64, p.watchlist_max as f64 + 1.0) as usize;
    let size = size.clamp(p.watchlist_min, p.watchlist_max);
    let mut watchlist = Vec::with_capacity(size);
    let mut attempts = 0;
    while watchlist.len() < size && attempts < 50 * size {
        let key = popularity.sample(&mut rng);
        if !watchlist.contains(&key) {
            watchlist.push(key);
        }
        attempts += 1;
    }
    // A tiny universe can defeat random draws; fill up in key order.
    let mut key = 0;
    while watchlist.len() < size {
        if !watchlist.contains(&key) {
            watchlist.push(key);
        }
        key += 1;
    }
    let period_s = rng
        .log_uniform(p.poll_period_min_s, p.poll_period_max_s)
        .round()
        .max(1.0);
    let start_ms = habitual_start(&mut rng, p.open_start_fraction, p.premarket_start_fraction);
    let stop = habitual_stop(&mut rng, start_ms);
    let gap_ms = rng.range_incl(u64::from(p.item_gap_min_ms), u64::from(p.item_gap_max_ms)) as u32;
    User {
        client: client_id(ClientKind::User, index),
        watchlist,
        period_ms: (period_s * 1000.0) as u32,
        start_ms,
        stop,
        gap_ms,
        rng,
    }
}

/// A uniform local time in `[from_ms, to_ms)`.
fn between(rng: &mut Rng, from_ms: u32, to_ms: u32) -> u32 {
    from_ms + rng.below(u64::from(to_ms - from_ms)) as u32
}

fn habitual_start(rng: &mut Rng, open_fraction: f64, premarket_fraction: f64) -> u32 {
    let u = rng.unit();
    if u < open_fraction {
        // Triangular on 09:25–09:35, peaking at 09:30.
        let offset = (rng.unit() + rng.unit() - 1.0) * f64::from(5 * MINUTE_MS);
        (f64::from(OPEN_MS) + offset) as u32
    } else if u < open_fraction + premarket_fraction {
        if rng.chance(0.7) {
            between(rng, 8 * HOUR_MS, OPEN_MS - 5 * MINUTE_MS)
        } else {
            between(rng, PREMARKET_OPEN_MS, 8 * HOUR_MS)
        }
    } else {
        between(rng, 10 * HOUR_MS, 14 * HOUR_MS)
    }
}

fn habitual_stop(rng: &mut Rng, start_ms: u32) -> Stop {
    let u = rng.unit();
    let session_stop_from = start_ms + HOUR_MS;
    let session_stop_to = 15 * HOUR_MS + 30 * MINUTE_MS;
    if u < 0.2 && session_stop_from < session_stop_to {
        Stop::Clock(between(rng, session_stop_from, session_stop_to))
    } else if u < 0.45 {
        Stop::Clock(between(rng, 16 * HOUR_MS + 30 * MINUTE_MS, 20 * HOUR_MS))
    } else {
        Stop::AtClose(rng.range_incl(0, u64::from(15 * MINUTE_MS)) as i64)
    }
}

/// The user's jittered polling window on a trading day, local ms.
fn trading_window(user: &mut User, day: &LocalDay, jitter_ms: f64) -> (u32, u32) {
    let close = day.close_ms();
    let stop = match user.stop {
        Stop::AtClose(offset) => (i64::from(close) + offset) as u32,
        Stop::Clock(t) if t >= FULL_CLOSE_MS => t - (FULL_CLOSE_MS - close),
        Stop::Clock(t) => t.min(close),
    };
    let mut jitter =
        |t: u32| (f64::from(t) + user.rng.uniform(-jitter_ms, jitter_ms)).max(0.0) as u32;
    let start = jitter(user.start_ms);
    let stop = jitter(stop).min(day.after_hours_end_ms());
    (start, stop)
}

/// The user's polls over `[start_ms, stop_ms)` local time, in `mode`, each
/// delayed by up to `jitter_ms`.
fn poll(
    user: &mut User,
    day: &LocalDay,
    (start_ms, stop_ms): (u32, u32),
    (mode, jitter_ms): (PollMode, u64),
    out: &mut Vec<Event>,
) {
    let gap = u64::from(user.gap_ms);
    let mut t = start_ms;
    while t < stop_ms {
        let mut at = day.utc_ms(t) + user.rng.below(jitter_ms + 1) as i64;
        for &key in &user.watchlist {
            let ms = match mode {
                PollMode::Sequential => at + user.rng.below(gap) as i64,
                PollMode::Batched => at,
            };
            out.push(Event {
                ms,
                key,
                client: user.client,
            });
            if mode == PollMode::Sequential {
                at += gap as i64;
            }
        }
        t += user.period_ms;
    }
}

fn churn(user: &mut User, popularity: &Popularity, prob: f64) {
    for slot in 0..user.watchlist.len() {
        if user.rng.chance(prob) {
            let key = popularity.sample(&mut user.rng);
            if !user.watchlist.contains(&key) {
                user.watchlist[slot] = key;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use prewarm_core::calendar::DayKind;

    fn trading_day(index: u32) -> LocalDay {
        let date = NaiveDate::from_ymd_opt(2026, 3, 2 + index).unwrap();
        LocalDay::new(date, index, DayKind::Trading, chrono_tz::America::New_York)
    }

    #[test]
    fn polls_repeat_the_watchlist_in_order_at_the_period() {
        let cfg = GenConfig {
            users: 1,
            universe_size: 300,
            ..GenConfig::default()
        };
        let pop = Popularity::new(&cfg);
        let mut users = Users::new(&cfg, &pop);
        users.absent_prob = 0.0;
        let mut out = Vec::new();
        users.generate_day(&trading_day(0), &pop, &mut out);
        let user = &users.users[0];
        let n = user.watchlist.len();
        assert!(out.len() >= 2 * n && out.len() % n == 0);
        for (poll, chunk) in out.chunks(n).enumerate() {
            let keys: Vec<u32> = chunk.iter().map(|e| e.key).collect();
            assert_eq!(keys, user.watchlist, "poll {poll} in watchlist order");
            assert!(chunk.windows(2).all(|w| w[0].ms < w[1].ms));
        }
        let gap = out[n].ms - out[0].ms - i64::from(user.period_ms);
        assert!(gap.abs() <= 2 * users.poll_jitter_ms as i64, "{gap}");
    }

    #[test]
    fn watchlists_churn_slowly() {
        let cfg = GenConfig {
            users: 50,
            ..GenConfig::default()
        };
        let mut pop = Popularity::new(&cfg);
        let mut users = Users::new(&cfg, &pop);
        let before: Vec<Vec<u32>> = users.users.iter().map(|u| u.watchlist.clone()).collect();
        let mut out = Vec::new();
        for index in 1..=5 {
            pop.advance_day();
            users.generate_day(&trading_day(index), &pop, &mut out);
        }
        let slots: usize = before.iter().map(Vec::len).sum();
        let changed: usize = users
            .users
            .iter()
            .zip(&before)
            .map(|(u, b)| u.watchlist.iter().zip(b).filter(|(x, y)| x != y).count())
            .sum();
        assert!(
            changed > 0 && changed * 5 < slots,
            "{changed} of {slots} slots changed"
        );
    }
}
