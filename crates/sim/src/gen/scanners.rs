//! Scanners: fixed batches of tickers at clock-aligned times.
//!
//! Scanner `i` (`scan<i>`) requests its subset — the top `n` tickers by the
//! first day's popularity, or a whole sector — sorted by ticker name, in the
//! same order every time, `item_gap_ms` apart. Batches start `delay_ms`
//! after each local time that is a multiple of `period_s` since local
//! midnight, within the regular session (`open <= t < close`) or, for
//! extended-hours scanners, from 04:00 to the end of after-hours. Scanners
//! do not run on weekends and holidays.

use super::config::{GenConfig, ScanSubset, ScannerSpec};
use super::day::{LocalDay, OPEN_MS, PREMARKET_OPEN_MS};
use super::universe::{Market, Popularity};
use super::{ClientKind, Event, client_id};

#[derive(Debug, Clone)]
struct Scanner {
    client: u32,
    spec: ScannerSpec,
    keys: Vec<u32>,
}

/// All scanners of a trace.
#[derive(Debug, Clone)]
pub(crate) struct Scanners {
    scanners: Vec<Scanner>,
}

impl Scanners {
    /// Fixes each scanner's subset from the first day's popularity.
    pub fn new(cfg: &GenConfig, market: &Market, popularity: &Popularity) -> Self {
        let scanners = cfg
            .scanners
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let mut keys = match spec.subset {
                    ScanSubset::Top(n) => popularity.top(n),
                    ScanSubset::Sector(s) => market.members[s].clone(),
                };
                market.sort_by_ticker(&mut keys);
                Scanner {
                    client: client_id(ClientKind::Scanner, i as u32),
                    spec: spec.clone(),
                    keys,
                }
            })
            .collect();
        Self { scanners }
    }

    /// Appends the day's batches of every scanner to `out`.
    pub fn generate_day(&self, day: &LocalDay, out: &mut Vec<Event>) {
        if !day.is_trading() {
            return;
        }
        for scanner in &self.scanners {
            let spec = &scanner.spec;
            let (from_ms, to_ms) = if spec.extended_hours {
                (PREMARKET_OPEN_MS, day.after_hours_end_ms())
            } else {
                (OPEN_MS, day.close_ms())
            };
            let period_ms = spec.period_s * 1000;
            let mut t = from_ms.div_ceil(period_ms) * period_ms;
            while t < to_ms {
                let start = day.utc_ms(t) + i64::from(spec.delay_ms);
                for (i, &key) in scanner.keys.iter().enumerate() {
                    let ms = start + i as i64 * i64::from(spec.item_gap_ms);
                    out.push(Event {
                        ms,
                        key,
                        client: scanner.client,
                    });
                }
                t += period_ms;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use prewarm_core::calendar::DayKind;

    #[test]
    fn batches_are_aligned_and_in_fixed_order() {
        let cfg = GenConfig {
            universe_size: 500,
            ..GenConfig::default()
        };
        let market = Market::new(&cfg);
        let pop = Popularity::new(&cfg);
        let scanners = Scanners::new(&cfg, &market, &pop);
        let date = NaiveDate::from_ymd_opt(2026, 3, 3).unwrap();
        let day = LocalDay::new(date, 1, DayKind::Trading, chrono_tz::America::New_York);
        let mut out = Vec::new();
        scanners.generate_day(&day, &mut out);
        let scan0: Vec<&Event> = out
            .iter()
            .filter(|e| e.client == scanners.scanners[0].client)
            .collect();
        // Top 200 every 5 minutes from 09:30 to 15:55: 78 batches.
        assert_eq!(scan0.len(), 78 * 200);
        let first_batch: Vec<u32> = scan0[..200].iter().map(|e| e.key).collect();
        let last_batch: Vec<u32> = scan0[77 * 200..].iter().map(|e| e.key).collect();
        assert_eq!(first_batch, last_batch);
        assert_eq!(scan0[0].ms, day.utc_ms(OPEN_MS) + 250);
        let extended = out
            .iter()
            .filter(|e| e.client == scanners.scanners[1].client)
            .count();
        assert_eq!(extended, 64 * 100, "04:00 to 19:45 every 15 minutes");
    }
}
