//! Requests from the monitoring API, answered inside the driver task.

use super::Command;
use super::cycle::Honour;
use super::run::Driver;
use super::view::Patterns;
use crate::events::{AccessEvent, FetchEvent};
use prewarm_core::tracker::NameKeys;

impl Driver {
    pub(super) fn command(
        &mut self,
        cmd: Command,
        a: &mut Vec<AccessEvent>,
        f: &mut Vec<FetchEvent>,
    ) {
        let now_s = self.now_s();
        match cmd {
            Command::Sync(reply) => {
                self.apply_events(a, f);
                self.tick(now_s);
                let _ = reply.send(self.publish_now());
            }
            Command::Warm {
                dataset,
                requests,
                reply,
            } => {
                self.apply_events(a, f);
                let (requests, honour) = match requests {
                    Some(r) => (r, Honour::Always),
                    None => (self.default_cycle(), Honour::EnabledOnly),
                };
                self.start_cycle(now_s, dataset.as_deref(), &requests, honour, Some(reply));
                self.pump(now_s);
            }
            Command::Save(reply) => self.start_save(now_s, Some(reply)),
            Command::Patterns {
                dataset,
                limit,
                key,
                reply,
            } => {
                let _ = reply.send(self.patterns(now_s, dataset.as_deref(), limit, key.as_deref()));
            }
        }
    }

    fn patterns(
        &self,
        now_s: f64,
        dataset: Option<&str>,
        limit: usize,
        key: Option<&str>,
    ) -> Vec<Patterns> {
        let look_ahead_s = self.opts.warming.pre_market_look_ahead_s;
        self.datasets
            .iter()
            .filter(|ds| dataset.is_none_or(|d| d == &*ds.name))
            .map(|ds| {
                let (t, keys) = (ds.engine.tracker(), ds.engine.keys());
                let window_s = t.config().trending_window_s;
                Patterns {
                    dataset: ds.name.to_string(),
                    popular: t.popular(now_s, limit).named(keys),
                    trending: t.trending(now_s, window_s, limit).named(keys),
                    upcoming: t.upcoming(now_s, look_ahead_s, limit).named(keys),
                    groups: t.group_trends(now_s, limit),
                    // A key the engine does not know predicts nothing.
                    next: key.map(|k| {
                        keys.get(k)
                            .map_or_else(Vec::new, |id| t.predict_next(id, 0.0, limit).named(keys))
                    }),
                }
            })
            .collect()
    }
}
