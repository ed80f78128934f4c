//! Anonymous one-off lookups: the long tail no warmer can predict.
//!
//! A trading day has Poisson(`per_trading_day`) lookups, a weekend or
//! holiday `lull_fraction` of that. Each falls in a local minute drawn by
//! the [`super::profile`] weights, at a uniform millisecond within it; its
//! key is uniform over the universe with probability `uniform_fraction`,
//! else drawn by the day's popularity; its client is a uniform anonymous id
//! `a<i>` out of `anon_clients`.

use super::config::GenConfig;
use super::day::LocalDay;
use super::profile::minute_weights;
use super::rng::{AliasTable, Rng};
use super::universe::Popularity;
use super::{ClientKind, Event, client_id};

/// Stream label of this module.
const LOOKUPS: u64 = 13;

/// Appends the day's anonymous lookups to `out`.
pub(crate) fn generate_day(
    cfg: &GenConfig,
    popularity: &Popularity,
    day: &LocalDay,
    out: &mut Vec<Event>,
) {
    let p = &cfg.lookups;
    let mut rng = Rng::stream(cfg.seed, &[LOOKUPS, u64::from(day.index)]);
    let scale = day.volume_scale(cfg.lull_fraction);
    let count = rng.poisson(p.per_trading_day * scale);
    let minutes = AliasTable::new(&minute_weights(day, &cfg.profile));
    out.reserve(count as usize);
    for _ in 0..count {
        let (start_ms, len_ms) = day.minute_span(minutes.sample(&mut rng));
        let ms = start_ms + rng.below(len_ms.max(1) as u64) as i64;
        let key = if rng.chance(p.uniform_fraction) {
            rng.below(cfg.universe_size as u64) as u32
        } else {
            popularity.sample(&mut rng)
        };
        let client = client_id(
            ClientKind::Anonymous,
            rng.below(u64::from(p.anon_clients)) as u32,
        );
        out.push(Event { ms, key, client });
    }
}
