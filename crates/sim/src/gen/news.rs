//! News bursts: Poisson events on single symbols that many distinct clients
//! look up over the following minutes, together with sector peers.
//!
//! A trading day has Poisson(`events_per_trading_day`) events, a weekend or
//! holiday `lull_fraction` of that. An event falls in the regular session
//! with probability `in_session_fraction`, otherwise uniformly in the rest
//! of the day (on a lull day: anywhere). Its symbol follows popularity with
//! probability `popular_symbol_fraction`, else is uniform over the
//! universe. It draws log-uniform `lookups_min..lookups_max` lookups, each by
//! an anonymous client (`a<i>`), delayed by an exponential of mean `decay`
//! (uniform in `decay_min_s..decay_max_s` per event), so the symbol's rate
//! jumps and decays. The event has a fixed list of up to `peers_max` peers
//! from its sector, drawn by popularity; with probability `peer_prob` a
//! looker then requests the first `peers_min..=peers_max` of them, in
//! order, 0.3–3 s apart. Lookups may run past midnight into the next day.

use super::config::GenConfig;
use super::day::{LocalDay, MINUTE_MS, MINUTES_PER_DAY, OPEN_MS};
use super::math::exp;
use super::rng::Rng;
use super::universe::{Market, Popularity};
use super::{ClientKind, Event, client_id};

/// Stream label of this module.
const NEWS: u64 = 12;
/// Milliseconds in a local day.
const DAY_MS: u32 = MINUTES_PER_DAY as u32 * MINUTE_MS;

/// One news event, as generated (ground truth for analysis and tests).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NewsEvent {
    /// When the news broke, Unix seconds (millisecond precision).
    pub time_s: f64,
    /// The symbol in the news.
    pub key: u32,
    /// Lookups of the symbol it caused.
    pub lookups: u32,
    /// Mean delay of a lookup after the event, seconds.
    pub decay_s: f64,
    /// The sector peers lookers may request next, in order.
    pub peers: Vec<u32>,
}

/// Appends the day's news lookups to `out` and returns the day's events.
pub(crate) fn generate_day(
    cfg: &GenConfig,
    market: &Market,
    popularity: &Popularity,
    day: &LocalDay,
    out: &mut Vec<Event>,
) -> Vec<NewsEvent> {
    let p = &cfg.news;
    let mut rng = Rng::stream(cfg.seed, &[NEWS, u64::from(day.index)]);
    let scale = day.volume_scale(cfg.lull_fraction);
    let count = rng.poisson(p.events_per_trading_day * scale);
    let mut events = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let local_ms = event_time(&mut rng, day, p.in_session_fraction);
        let start_ms = day.utc_ms(local_ms);
        let key = if rng.chance(p.popular_symbol_fraction) {
            popularity.sample(&mut rng)
        } else {
            rng.below(cfg.universe_size as u64) as u32
        };
        let peers = pick_peers(&mut rng, market, popularity, key, p.peers_max);
        let lookups = rng.log_uniform(p.lookups_min, p.lookups_max + 1.0) as u32;
        let decay_s = rng.uniform(p.decay_min_s, p.decay_max_s);
        for _ in 0..lookups {
            let client = client_id(
                ClientKind::Anonymous,
                rng.below(u64::from(cfg.lookups.anon_clients)) as u32,
            );
            let mut at = start_ms + (decay_s * 1000.0 * rng.exp1()) as i64;
            out.push(Event {
                ms: at,
                key,
                client,
            });
            if !peers.is_empty() && rng.chance(p.peer_prob) {
                let k = (rng.range_incl(p.peers_min as u64, p.peers_max as u64) as usize)
                    .min(peers.len());
                for &peer in &peers[..k] {
                    at += rng.range_incl(300, 3000) as i64;
                    out.push(Event {
                        ms: at,
                        key: peer,
                        client,
                    });
                }
            }
        }
        events.push(NewsEvent {
            time_s: start_ms as f64 / 1000.0,
            key,
            lookups,
            decay_s,
            peers,
        });
    }
    events
}

/// Local time of an event: in the regular session with probability
/// `in_session` on a trading day, otherwise uniform outside it.
fn event_time(rng: &mut Rng, day: &LocalDay, in_session: f64) -> u32 {
    if !day.is_trading() {
        return rng.below(u64::from(DAY_MS)) as u32;
    }
    let (open, close) = (OPEN_MS, day.close_ms());
    if rng.chance(in_session) {
        open + rng.below(u64::from(close - open)) as u32
    } else {
        let t = rng.below(u64::from(DAY_MS - (close - open))) as u32;
        if t < open { t } else { t + (close - open) }
    }
}

/// Up to `n` distinct peers of `key`'s sector, drawn by popularity without
/// replacement (most likely the sector's leaders).
fn pick_peers(
    rng: &mut Rng,
    market: &Market,
    popularity: &Popularity,
    key: u32,
    n: usize,
) -> Vec<u32> {
    let sector = market.sector_of[key as usize] as usize;
    let mut candidates: Vec<u32> = market.members[sector]
        .iter()
        .copied()
        .filter(|&k| k != key)
        .collect();
    let max = candidates
        .iter()
        .map(|&k| popularity.log_weight(k))
        .fold(f64::NEG_INFINITY, f64::max);
    let mut weights: Vec<f64> = candidates
        .iter()
        .map(|&k| exp(popularity.log_weight(k) - max))
        .collect();
    let mut peers = Vec::with_capacity(n);
    while peers.len() < n && !candidates.is_empty() {
        let total: f64 = weights.iter().sum();
        let mut target = rng.unit() * total;
        let mut chosen = candidates.len() - 1;
        for (i, w) in weights.iter().enumerate() {
            if target < *w {
                chosen = i;
                break;
            }
            target -= w;
        }
        peers.push(candidates.swap_remove(chosen));
        weights.swap_remove(chosen);
    }
    peers
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use prewarm_core::calendar::DayKind;

    #[test]
    fn lookers_follow_the_symbol_with_its_peers_in_order() {
        let cfg = GenConfig {
            universe_size: 400,
            ..GenConfig::default()
        };
        let market = Market::new(&cfg);
        let pop = Popularity::new(&cfg);
        let date = NaiveDate::from_ymd_opt(2026, 3, 3).unwrap();
        let day = LocalDay::new(date, 1, DayKind::Trading, chrono_tz::America::New_York);
        let mut out = Vec::new();
        let events = generate_day(&cfg, &market, &pop, &day, &mut out);
        assert!(!events.is_empty());
        let total: u32 = events.iter().map(|e| e.lookups).sum();
        assert!(out.len() > total as usize, "peers add requests");
        for e in &events {
            assert_eq!(e.peers.len(), cfg.news.peers_max);
            let sector = market.sector_of[e.key as usize];
            assert!(
                e.peers
                    .iter()
                    .all(|&p| market.sector_of[p as usize] == sector && p != e.key)
            );
        }
        // Event 0's requests come first: each lookup, then a prefix of the
        // peer list by the same client, in order, 0.3–3 s apart.
        let first = &events[0];
        let mut groups = 0;
        let mut i = 0;
        while groups < first.lookups {
            let looker = out[i];
            assert_eq!(looker.key, first.key);
            groups += 1;
            i += 1;
            let mut j = 0;
            while i < out.len()
                && out[i].client == looker.client
                && j < first.peers.len()
                && out[i].key == first.peers[j]
            {
                assert!((300..=3000).contains(&(out[i].ms - out[i - 1].ms)));
                i += 1;
                j += 1;
            }
        }
    }
}
