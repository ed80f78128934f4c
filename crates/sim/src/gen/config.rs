//! Parameters of the synthetic workload, with their defaults and validation.
//!
//! Every rate is per calendar day of the named kind; every clock time is
//! exchange-local (America/New_York). The defaults give roughly 0.6–0.8M
//! requests per trading day and about 3% of that on weekends and holidays.

use chrono::NaiveDate;
use prewarm_core::calendar::ExchangeCalendar;

/// Everything [`super::generate`] needs. `GenConfig::default()` is the
/// documented default workload.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// Calendar days to generate (weekends and holidays included), each from
    /// local midnight to local midnight. Default 20.
    pub days: u32,
    /// Seed of every random choice; the same config gives the same bytes.
    /// Default 42.
    pub seed: u64,
    /// First local day of the trace. Default 2026-03-02, a Monday before the
    /// US DST change of 2026-03-08, so a run of 7+ days crosses it.
    pub start_date: NaiveDate,
    /// The exchange calendar: time zone (DST), weekends, holidays and early
    /// closes (regular session 09:30–13:00, after-hours to 17:00). Default
    /// `ExchangeCalendar::nyse()` (America/New_York).
    pub calendar: ExchangeCalendar,
    /// Number of synthetic tickers (keys 0..universe_size). Default 2000.
    pub universe_size: usize,
    /// Number of sectors the tickers are spread over (the first 11 carry
    /// GICS names). Default 11.
    pub sectors: usize,
    /// Exponent `s` of the Zipf popularity, weight ∝ rank^-s. Default 1.0.
    pub zipf_exponent: f64,
    /// Standard deviation of each ticker's daily random-walk step in log
    /// popularity (0 freezes popularity). With the default 0.1, a few head
    /// ranks swap each day, and over 20 days a typical ticker's popularity
    /// grows or shrinks by a factor of about 1.5.
    pub daily_drift: f64,
    /// Number of registered users polling watchlists (`u<i>`). Default 60.
    pub users: usize,
    /// How users poll (watchlists, periods, habitual hours).
    pub user: UserParams,
    /// The scanner clients (`scan<i>`), one batch schedule each. Default:
    /// see [`ScannerSpec::defaults`].
    pub scanners: Vec<ScannerSpec>,
    /// News bursts on single symbols.
    pub news: NewsParams,
    /// Anonymous one-off lookups (the unpredictable long tail).
    pub lookups: LookupParams,
    /// Intraday shape of the anonymous lookups on trading days.
    pub profile: SessionProfile,
    /// Volume of a weekend or holiday relative to a trading day, applied to
    /// anonymous lookups, news events and users (fewer and shorter polling
    /// sessions, see the `users` module); scanners stay off. Default 0.03.
    pub lull_fraction: f64,
    /// Whether the written CSV has the `client` column (`timestamp,key,client`)
    /// or only `timestamp,key`, as traces of market traffic recorded without
    /// client ids look. The requests are the same either way. Default true.
    pub client_column: bool,
}

/// How a user's poll requests its watchlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PollMode {
    /// One request per ticker, in watchlist order, a few milliseconds apart
    /// (see [`UserParams::item_gap_min_ms`]). The default.
    #[default]
    Sequential,
    /// The whole watchlist at the same millisecond, as a batch quote call
    /// split into one request per ticker.
    Batched,
}

/// How registered users poll their watchlists.
#[derive(Debug, Clone, PartialEq)]
pub struct UserParams {
    /// Smallest watchlist, tickers. Default 5.
    pub watchlist_min: usize,
    /// Largest watchlist, tickers (sizes are log-uniform in between).
    /// Default 40.
    pub watchlist_max: usize,
    /// Probability that one watchlist slot is replaced by a ticker drawn from
    /// the current popularity, per day. Default 0.02.
    pub watchlist_churn_per_day: f64,
    /// Shortest poll period, seconds (periods are log-uniform). Default 15.
    pub poll_period_min_s: f64,
    /// Longest poll period, seconds. Default 300.
    pub poll_period_max_s: f64,
    /// Share of users who habitually start at 09:25–09:35. Default 0.6.
    pub open_start_fraction: f64,
    /// Share of users who habitually start pre-market, 04:00–09:25 (mostly
    /// the last 90 minutes); the rest start at 10:00–14:00. Default 0.25.
    pub premarket_start_fraction: f64,
    /// Daily jitter of the habitual start and stop times, ± seconds
    /// (uniform). Default 60.
    pub start_jitter_s: f64,
    /// Probability that a user does not poll on a given trading day.
    /// Default 0.1.
    pub absent_prob: f64,
    /// Smallest gap between two tickers of one poll, milliseconds (each
    /// user has a fixed gap in `[min, max]`). Default 2.
    pub item_gap_min_ms: u32,
    /// Largest gap between two tickers of one poll, milliseconds.
    /// Default 20.
    pub item_gap_max_ms: u32,
    /// Whether a poll's tickers come one after another or all at once.
    /// Default [`PollMode::Sequential`].
    pub poll_mode: PollMode,
    /// Timer jitter of each poll: a uniform delay in `[0, poll_jitter_ms]`
    /// milliseconds after its scheduled time (not carried to the next
    /// poll). Default 100.
    pub poll_jitter_ms: u32,
}

/// Which tickers a scanner requests, in a fixed order (by ticker name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanSubset {
    /// The `n` most popular tickers of the first day.
    Top(usize),
    /// Every ticker of the sector with this index.
    Sector(usize),
}

/// One scanner: a fixed batch at clock-aligned times.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannerSpec {
    /// The tickers of each batch.
    pub subset: ScanSubset,
    /// Batch period, seconds; batches start at local times that are
    /// multiples of it (e.g. 300 → :00, :05, :10, …).
    pub period_s: u32,
    /// Run from 04:00 to the end of after-hours instead of only during the
    /// regular session.
    pub extended_hours: bool,
    /// Fixed delay of each batch after its aligned time, milliseconds.
    pub delay_ms: u32,
    /// Gap between two requests of one batch, milliseconds (>= 1).
    pub item_gap_ms: u32,
}

impl ScannerSpec {
    /// The default scanners: top 200 every 5 min and sector 0 every 5 min
    /// during the regular session, top 100 every 15 min over the extended
    /// hours, sector 1 every 15 min during the regular session.
    pub fn defaults() -> Vec<ScannerSpec> {
        let spec = |subset, period_s, extended_hours, delay_ms, item_gap_ms| ScannerSpec {
            subset,
            period_s,
            extended_hours,
            delay_ms,
            item_gap_ms,
        };
        vec![
            spec(ScanSubset::Top(200), 300, false, 250, 2),
            spec(ScanSubset::Top(100), 900, true, 1_000, 3),
            spec(ScanSubset::Sector(0), 300, false, 500, 2),
            spec(ScanSubset::Sector(1), 900, false, 2_000, 4),
        ]
    }
}

/// News bursts: Poisson events on single symbols.
#[derive(Debug, Clone, PartialEq)]
pub struct NewsParams {
    /// Mean number of events per trading day (weekends and holidays get
    /// `lull_fraction` of it). Default 40.
    pub events_per_trading_day: f64,
    /// Share of a trading day's events that fall in the regular session;
    /// the rest are uniform over the rest of the day. Default 0.7.
    pub in_session_fraction: f64,
    /// Fewest lookups of one burst (sizes are log-uniform). Default 50.
    pub lookups_min: f64,
    /// Most lookups of one burst. Default 1500.
    pub lookups_max: f64,
    /// Shortest mean delay of a lookup after the event, seconds (lookups
    /// decay exponentially; each event's mean is uniform in
    /// `[min, max]`). Default 120.
    pub decay_min_s: f64,
    /// Longest mean delay, seconds. Default 600.
    pub decay_max_s: f64,
    /// Probability that a looker also requests peers of the same sector
    /// right after the symbol. Default 0.5.
    pub peer_prob: f64,
    /// Fewest peers a looker requests. Default 2.
    pub peers_min: usize,
    /// Most peers a looker requests (each takes a prefix of the event's
    /// fixed peer list). Default 5.
    pub peers_max: usize,
    /// Share of events whose symbol is drawn by popularity; the rest are
    /// uniform over the universe. Default 0.5.
    pub popular_symbol_fraction: f64,
}

/// Anonymous one-off lookups.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupParams {
    /// Mean lookups per trading day. Default 250 000.
    pub per_trading_day: f64,
    /// Share of lookups uniform over the universe; the rest follow the
    /// day's popularity. Default 0.3.
    pub uniform_fraction: f64,
    /// Size of the anonymous client pool (`a<i>`, shared with news
    /// lookers). Default 100 000.
    pub anon_clients: u32,
    /// When set, `per_trading_day` is ignored and chosen so that anonymous
    /// requests (these lookups plus news lookers) are this share of all
    /// requests, in expectation: the users, scanners and news of the run are
    /// counted first, and the lookups make up the rest (see
    /// [`super::GenSummary::lookups_per_trading_day`]). In `[0, 0.999]`; a
    /// share below what news alone gives, or any share below 1 when users
    /// and scanners make no request, is an error. Default `None`.
    pub anonymous_share: Option<f64>,
}

/// Relative intensity of anonymous lookups over a trading day; 1.0 is the
/// regular session's midday level.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionProfile {
    /// Level overnight (before 04:00 and after after-hours). Default 0.02.
    pub overnight: f64,
    /// Level at 04:00; pre-market ramps geometrically from it. Default 0.05.
    pub premarket_start: f64,
    /// Level just before 09:30. Default 0.5.
    pub premarket_end: f64,
    /// Extra level at the open, decaying exponentially. Default 8.0.
    pub open_boost: f64,
    /// Decay time of the open boost, seconds. Default 480.
    pub open_decay_s: f64,
    /// Extra level at the close, rising exponentially toward it.
    /// Default 4.0.
    pub close_boost: f64,
    /// Rise time of the close boost, seconds. Default 900.
    pub close_rise_s: f64,
    /// Level at the start of after-hours. Default 0.3.
    pub after_hours_start: f64,
    /// Level at the end of after-hours (four hours after the close).
    /// Default 0.03.
    pub after_hours_end: f64,
}

impl GenConfig {
    /// Shrinks what a universe of `universe_size` keys cannot hold: scanner
    /// top-`n` subsets and watchlist sizes to the universe, the number of
    /// sectors to the universe (dropping scanners of a sector that no
    /// longer exists). Changes nothing when everything fits, as with the
    /// defaults and 200 keys or more.
    pub fn fit_to_universe(&mut self) {
        let keys = self.universe_size.max(1);
        self.sectors = self.sectors.min(keys);
        let sectors = self.sectors;
        self.scanners.retain(|s| match s.subset {
            ScanSubset::Sector(i) => i < sectors,
            ScanSubset::Top(_) => true,
        });
        for spec in &mut self.scanners {
            if let ScanSubset::Top(n) = &mut spec.subset {
                *n = (*n).min(keys);
            }
        }
        self.user.watchlist_min = self.user.watchlist_min.min(keys);
        self.user.watchlist_max = self.user.watchlist_max.min(keys);
    }
}

impl Default for GenConfig {
    fn default() -> Self {
        Self {
            days: 20,
            seed: 42,
            start_date: NaiveDate::from_ymd_opt(2026, 3, 2).expect("valid date"),
            calendar: ExchangeCalendar::nyse(),
            universe_size: 2000,
            sectors: 11,
            zipf_exponent: 1.0,
            daily_drift: 0.1,
            users: 60,
            user: UserParams::default(),
            scanners: ScannerSpec::defaults(),
            news: NewsParams::default(),
            lookups: LookupParams::default(),
            profile: SessionProfile::default(),
            lull_fraction: 0.03,
            client_column: true,
        }
    }
}

impl Default for UserParams {
    fn default() -> Self {
        Self {
            watchlist_min: 5,
            watchlist_max: 40,
            watchlist_churn_per_day: 0.02,
            poll_period_min_s: 15.0,
            poll_period_max_s: 300.0,
            open_start_fraction: 0.6,
            premarket_start_fraction: 0.25,
            start_jitter_s: 60.0,
            absent_prob: 0.1,
            item_gap_min_ms: 2,
            item_gap_max_ms: 20,
            poll_mode: PollMode::Sequential,
            poll_jitter_ms: 100,
        }
    }
}

impl Default for NewsParams {
    fn default() -> Self {
        Self {
            events_per_trading_day: 40.0,
            in_session_fraction: 0.7,
            lookups_min: 50.0,
            lookups_max: 1500.0,
            decay_min_s: 120.0,
            decay_max_s: 600.0,
            peer_prob: 0.5,
            peers_min: 2,
            peers_max: 5,
            popular_symbol_fraction: 0.5,
        }
    }
}

impl Default for LookupParams {
    fn default() -> Self {
        Self {
            per_trading_day: 250_000.0,
            uniform_fraction: 0.3,
            anon_clients: 100_000,
            anonymous_share: None,
        }
    }
}

impl Default for SessionProfile {
    fn default() -> Self {
        Self {
            overnight: 0.02,
            premarket_start: 0.05,
            premarket_end: 0.5,
            open_boost: 8.0,
            open_decay_s: 480.0,
            close_boost: 4.0,
            close_rise_s: 900.0,
            after_hours_start: 0.3,
            after_hours_end: 0.03,
        }
    }
}
