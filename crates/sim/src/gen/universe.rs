//! The synthetic ticker universe, its sectors, and the drifting Zipf
//! popularity over it.
//!
//! Keys are indices into [`Universe::tickers`]. Tickers are 1–5 uppercase
//! letters (mostly 3–4, like US listings), unique, drawn from the seed.
//! Popularity starts as Zipf over a random ranking (so key order says
//! nothing about rank) and then each day every ticker's log weight takes a
//! normal random-walk step of standard deviation `daily_drift`: head ranks
//! occasionally swap, and over weeks some tickers rise while others fade.

use rustc_hash::FxHashSet;

use super::config::GenConfig;
use super::math::{exp, ln};
use super::rng::{AliasTable, Rng};

/// Stream labels of this module (see [`Rng::stream`]).
const TICKERS: u64 = 1;
const SECTORS: u64 = 2;
const POPULARITY: u64 = 3;

/// The first sector names, after the GICS sectors; further sectors are
/// named `Sector <n>`.
const GICS_SECTORS: [&str; 11] = [
    "Information Technology",
    "Health Care",
    "Financials",
    "Consumer Discretionary",
    "Communication Services",
    "Industrials",
    "Consumer Staples",
    "Energy",
    "Utilities",
    "Real Estate",
    "Materials",
];

/// Relative frequency of ticker lengths 1..=5.
const LENGTH_WEIGHTS: [f64; 5] = [0.01, 0.06, 0.28, 0.5, 0.15];

/// The tickers of a generated trace and the sector of each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Universe {
    /// Ticker of each key (`tickers[key]`), unique.
    pub tickers: Vec<String>,
    /// Sector name of each key (`sectors[key]`).
    pub sectors: Vec<String>,
}

impl Universe {
    /// The universe of `cfg` (depends only on `seed`, `universe_size` and
    /// `sectors`).
    pub fn generate(cfg: &GenConfig) -> Self {
        let market = Market::new(cfg);
        market.universe
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.tickers.len()
    }

    /// Whether the universe has no keys.
    pub fn is_empty(&self) -> bool {
        self.tickers.is_empty()
    }
}

/// The universe with the indices the generator needs.
#[derive(Debug, Clone)]
pub(crate) struct Market {
    pub universe: Universe,
    /// Sector index of each key.
    pub sector_of: Vec<u32>,
    /// Keys of each sector, sorted by ticker.
    pub members: Vec<Vec<u32>>,
}

impl Market {
    pub fn new(cfg: &GenConfig) -> Self {
        let tickers = make_tickers(cfg.seed, cfg.universe_size);
        let sector_of = assign_sectors(cfg.seed, cfg.universe_size, cfg.sectors);
        let names: Vec<String> = (0..cfg.sectors).map(sector_name).collect();
        let sectors = sector_of
            .iter()
            .map(|&s| names[s as usize].clone())
            .collect();
        let mut members = vec![Vec::new(); cfg.sectors];
        for (key, &s) in sector_of.iter().enumerate() {
            members[s as usize].push(key as u32);
        }
        for list in &mut members {
            list.sort_by(|&a, &b| tickers[a as usize].cmp(&tickers[b as usize]));
        }
        Self {
            universe: Universe { tickers, sectors },
            sector_of,
            members,
        }
    }

    /// `keys` sorted by ticker name.
    pub fn sort_by_ticker(&self, keys: &mut [u32]) {
        let tickers = &self.universe.tickers;
        keys.sort_by(|&a, &b| tickers[a as usize].cmp(&tickers[b as usize]));
    }
}

fn sector_name(index: usize) -> String {
    GICS_SECTORS
        .get(index)
        .map_or_else(|| format!("Sector {}", index + 1), |s| s.to_string())
}

fn make_tickers(seed: u64, count: usize) -> Vec<String> {
    let mut rng = Rng::stream(seed, &[TICKERS]);
    let lengths = AliasTable::new(&LENGTH_WEIGHTS);
    let mut seen = FxHashSet::default();
    let mut tickers = Vec::with_capacity(count);
    let mut misses = 0u32;
    while tickers.len() < count {
        // After many collisions (a crowded short length), fall back to five
        // letters, whose 11.8M combinations always leave room.
        let len = if misses > 64 {
            5
        } else {
            lengths.sample(&mut rng) + 1
        };
        let ticker: String = (0..len)
            .map(|_| char::from(b'A' + rng.below(26) as u8))
            .collect();
        if seen.insert(ticker.clone()) {
            tickers.push(ticker);
            misses = 0;
        } else {
            misses += 1;
        }
    }
    tickers
}

/// Sector of each key: the first `sectors` keys get one each (no sector is
/// empty), the rest follow random sector sizes.
fn assign_sectors(seed: u64, count: usize, sectors: usize) -> Vec<u32> {
    let mut rng = Rng::stream(seed, &[SECTORS]);
    let weights: Vec<f64> = (0..sectors).map(|_| rng.uniform(0.5, 1.5)).collect();
    let table = AliasTable::new(&weights);
    (0..count)
        .map(|key| {
            if key < sectors {
                key as u32
            } else {
                table.sample(&mut rng) as u32
            }
        })
        .collect()
}

/// Drifting Zipf popularity; one state per day.
#[derive(Debug, Clone)]
pub(crate) struct Popularity {
    log_weight: Vec<f64>,
    table: AliasTable,
    rng: Rng,
    drift: f64,
}

impl Popularity {
    /// The first day's popularity.
    pub fn new(cfg: &GenConfig) -> Self {
        let mut rng = Rng::stream(cfg.seed, &[POPULARITY]);
        let mut by_rank: Vec<u32> = (0..cfg.universe_size as u32).collect();
        rng.shuffle(&mut by_rank);
        let mut log_weight = vec![0.0; cfg.universe_size];
        for (rank, &key) in by_rank.iter().enumerate() {
            log_weight[key as usize] = -cfg.zipf_exponent * ln(rank as f64 + 1.0);
        }
        let table = build_table(&log_weight);
        Self {
            log_weight,
            table,
            rng,
            drift: cfg.daily_drift,
        }
    }

    /// Moves to the next day: one random-walk step per ticker.
    pub fn advance_day(&mut self) {
        if self.drift > 0.0 {
            for w in &mut self.log_weight {
                *w += self.drift * self.rng.normal();
            }
            self.table = build_table(&self.log_weight);
        }
    }

    /// Draws a key by today's popularity.
    pub fn sample(&self, rng: &mut Rng) -> u32 {
        self.table.sample(rng) as u32
    }

    /// Today's relative weight of `key` (the most popular has the largest).
    pub fn log_weight(&self, key: u32) -> f64 {
        self.log_weight[key as usize]
    }

    /// Today's `n` most popular keys, most popular first (ties by key).
    pub fn top(&self, n: usize) -> Vec<u32> {
        let mut keys: Vec<u32> = (0..self.log_weight.len() as u32).collect();
        keys.sort_by(|&a, &b| {
            self.log_weight[b as usize]
                .total_cmp(&self.log_weight[a as usize])
                .then(a.cmp(&b))
        });
        keys.truncate(n);
        keys
    }
}

fn build_table(log_weight: &[f64]) -> AliasTable {
    let max = log_weight.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = log_weight.iter().map(|w| exp(w - max)).collect();
    AliasTable::new(&weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> GenConfig {
        GenConfig {
            universe_size: 3000,
            ..GenConfig::default()
        }
    }

    #[test]
    fn tickers_are_unique_uppercase_and_short() {
        let u = Universe::generate(&small());
        assert_eq!(u.len(), 3000);
        let distinct: FxHashSet<&String> = u.tickers.iter().collect();
        assert_eq!(distinct.len(), 3000);
        for t in &u.tickers {
            assert!(
                (1..=5).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_uppercase()),
                "{t}"
            );
        }
    }

    #[test]
    fn every_sector_has_members() {
        let cfg = GenConfig {
            universe_size: 40,
            sectors: 11,
            ..GenConfig::default()
        };
        let market = Market::new(&cfg);
        assert!(market.members.iter().all(|m| !m.is_empty()));
        assert_eq!(market.universe.sectors[3], "Consumer Discretionary");
    }

    #[test]
    fn popularity_drifts_a_little_each_day() {
        let cfg = small();
        let mut pop = Popularity::new(&cfg);
        let before = pop.top(50);
        pop.advance_day();
        let after = pop.top(50);
        assert_ne!(before, after, "some ranks swap");
        let kept = after.iter().filter(|k| before.contains(k)).count();
        assert!(kept >= 40, "the head stays mostly stable: {kept}");
    }

    #[test]
    fn zipf_head_dominates_samples() {
        let pop = Popularity::new(&small());
        let top = pop.top(1)[0];
        let mut rng = Rng::new(1);
        let hits = (0..10_000).filter(|_| pop.sample(&mut rng) == top).count();
        // Rank 1 of Zipf(1) over 3000 keys has weight 1 / H(3000) ≈ 0.116.
        assert!((1000..1350).contains(&hits), "{hits}");
    }
}
