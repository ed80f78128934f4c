//! A seeded pseudo-random generator whose output is specified bit for bit.
//!
//! The generator is SplitMix64 (Steele, Lea and Flood, 2014): a 64-bit
//! counter advanced by the golden-ratio increment and passed through a fixed
//! mixing function. Its output depends on nothing but the seed, so a trace
//! generated on one machine is byte-identical to one generated on another.
//!
//! Every component of the generator draws from its own stream, derived from
//! the run's seed and a path of labels ([`Rng::stream`]), so changing one
//! component's parameters does not reshuffle another component's traffic.
//!
//! Floating-point work only uses IEEE-754 basic operations (`+ - * /`,
//! `sqrt`, rounding), which are correctly rounded on every platform; the
//! logarithm and exponential come from [`super::math`], not from the
//! platform's libm, whose last bit may differ between systems.

use super::math::{exp, ln};

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function (a bijective 64-bit mixer).
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// An independent stream for the component named by `path` (for example
    /// `[USERS, user_index, day_index]`) of the run seeded with `seed`.
    pub fn stream(seed: u64, path: &[u64]) -> Self {
        let mut state = mix64(seed ^ 0x5eed_5eed_5eed_5eed);
        for &label in path {
            state = mix64(state.wrapping_add(GOLDEN_GAMMA) ^ mix64(label));
        }
        Self::new(state)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// A uniform `f64` in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform `f64` in `(0, 1]`, safe to take the logarithm of.
    pub fn unit_open(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `[0, n)` (`n > 0`), by Lemire's multiply-shift;
    /// the bias is below `n / 2^64`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniform integer in `[lo, hi]` (inclusive).
    pub fn range_incl(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// A uniform `f64` in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A log-uniform `f64` in `[lo, hi)` (`0 < lo <= hi`): every factor of
    /// two in the range is equally likely.
    pub fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        exp(ln(lo) + (ln(hi) - ln(lo)) * self.unit())
    }

    /// An exponential variate with mean 1.
    pub fn exp1(&mut self) -> f64 {
        -ln(self.unit_open())
    }

    /// A standard normal variate (Marsaglia's polar method).
    pub fn normal(&mut self) -> f64 {
        loop {
            let u = 2.0 * self.unit() - 1.0;
            let v = 2.0 * self.unit() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return u * (-2.0 * ln(s) / s).sqrt();
            }
        }
    }

    /// A Poisson variate with mean `lambda >= 0`: exact (Knuth's product
    /// method) below a mean of 30, a rounded normal approximation above.
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda < 30.0 {
            let limit = exp(-lambda);
            let mut product = self.unit_open();
            let mut count = 0;
            while product > limit {
                product *= self.unit_open();
                count += 1;
            }
            return count;
        }
        let x = lambda + lambda.sqrt() * self.normal();
        if x <= 0.0 {
            0
        } else {
            (x + 0.5).floor() as u64
        }
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// Walker's alias table: draws index `i` with probability
/// `weights[i] / sum(weights)` in constant time.
#[derive(Debug, Clone)]
pub struct AliasTable {
    /// Acceptance threshold of each column, in `[0, 1]`.
    threshold: Vec<f64>,
    /// The index drawn when a column's threshold rejects.
    alias: Vec<u32>,
}

impl AliasTable {
    /// Builds the table (Vose's method). Weights must be finite and `>= 0`
    /// with a positive sum; a table over no weights or a zero sum draws
    /// uniformly.
    pub fn new(weights: &[f64]) -> Self {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        let mut threshold = vec![1.0; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        if n == 0 || total <= 0.0 {
            return Self { threshold, alias };
        }
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let (mut small, mut large): (Vec<u32>, Vec<u32>) =
            (0..n as u32).partition(|&i| scaled[i as usize] < 1.0);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            threshold[s as usize] = scaled[s as usize];
            alias[s as usize] = l;
            scaled[l as usize] -= 1.0 - scaled[s as usize];
            if scaled[l as usize] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        Self { threshold, alias }
    }

    /// Draws one index.
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let r = rng.next_u64();
        let column = ((u128::from(r) * self.threshold.len() as u128) >> 64) as usize;
        // The low 53 bits are independent of the column choice, which used
        // the high bits.
        let u = (r & ((1 << 53) - 1)) as f64 * (1.0 / (1u64 << 53) as f64);
        if u < self.threshold[column] {
            column
        } else {
            self.alias[column] as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_reference_output() {
        // Reference values of SplitMix64 seeded with 1234567 (from the
        // published C implementation).
        let mut rng = Rng::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(rng.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn streams_differ_by_path() {
        let a = Rng::stream(7, &[1, 2]).next_u64();
        let b = Rng::stream(7, &[2, 1]).next_u64();
        let c = Rng::stream(8, &[1, 2]).next_u64();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, Rng::stream(7, &[1, 2]).next_u64());
    }

    #[test]
    fn poisson_mean_is_close_to_lambda() {
        let mut rng = Rng::new(3);
        for lambda in [0.5, 4.0, 80.0] {
            let n = 20_000;
            let sum: u64 = (0..n).map(|_| rng.poisson(lambda)).sum();
            let mean = sum as f64 / n as f64;
            assert!(
                (mean - lambda).abs() < 0.05 * lambda + 0.02,
                "{lambda}: {mean}"
            );
        }
    }

    #[test]
    fn alias_table_follows_weights() {
        let table = AliasTable::new(&[1.0, 0.0, 3.0]);
        let mut rng = Rng::new(9);
        let mut counts = [0u32; 3];
        for _ in 0..40_000 {
            counts[table.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        let ratio = f64::from(counts[2]) / f64::from(counts[0]);
        assert!((ratio - 3.0).abs() < 0.2, "{counts:?}");
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = Rng::new(5);
        assert!((0..10_000).all(|_| rng.below(7) < 7));
        assert!((0..10_000).all(|_| (3..=5).contains(&rng.range_incl(3, 5))));
    }
}
