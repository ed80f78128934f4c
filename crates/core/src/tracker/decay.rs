//! Forward decay: exponentially decayed counts without touching every
//! counter as time passes.
//!
//! A count decayed with rate `λ` (per second) is stored *scaled* as
//! `Σ exp(λ (t_i - ref_s))`. Its decayed value at `now` is the stored value
//! times `exp(-λ (now - ref_s))`. An access adds the weight
//! `exp(λ (now - ref_s))`, computed once per distinct `now` for all rates
//! together, so the hot path does no `exp()` while time stands still, and
//! stored values of different keys compare directly. When the weights grow
//! large the owner rebases: multiplies every stored value by
//! `exp(-λ (new_ref - ref_s))` and moves `ref_s` (see [`DecayClock::rebase`]).

use std::f64::consts::LN_2;

/// The decay rates the tracker uses, one per time constant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rates {
    /// Popularity and co-access counts.
    pub pop: f64,
    /// Short trending rate.
    pub short: f64,
    /// Long baseline rate and long group share.
    pub long: f64,
    /// Short group share.
    pub group: f64,
}

impl Rates {
    /// Rate λ (per second) of a half-life in seconds.
    pub fn from_half_life_s(half_life_s: f64) -> f64 {
        LN_2 / half_life_s
    }

    /// The largest of the rates, which decides when to rebase.
    pub fn max(&self) -> f64 {
        self.pop.max(self.short).max(self.long).max(self.group)
    }
}

/// Weights of one instant: `exp(λ (now - ref_s))` for every rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Weights {
    pub pop: f64,
    pub short: f64,
    pub long: f64,
    pub group: f64,
}

/// Rebase when the largest exponent passes this (cheap, in `maintain`).
pub(crate) const SOFT_REBASE_EXPONENT: f64 = 24.0;
/// Rebase at once in the hot path when the largest exponent passes this, so
/// `f32` counters (short rate, co-access) keep ample headroom (`e^48`).
pub(crate) const HARD_REBASE_EXPONENT: f64 = 48.0;

/// Forward-decay reference time and a one-entry cache of weights.
///
/// The hot path avoids `exp()`: weights are computed exactly at grid
/// points (multiples of `grid_s`, a power of two with `λ_max grid_s <=
/// 2^-8`) and between them multiplied by a degree-4 Taylor polynomial of
/// `exp(λ (now - grid point))`, accurate to ~1e-14 relative. The result is a
/// pure function of `now_s`, so replays and restored snapshots agree.
#[derive(Debug, Clone)]
pub(crate) struct DecayClock {
    rates: Rates,
    ref_s: f64,
    grid_s: f64,
    anchor_s: f64,
    anchor: Weights,
    cached_now_s: f64,
    cached: Weights,
}

const ONE: Weights = Weights {
    pop: 1.0,
    short: 1.0,
    long: 1.0,
    group: 1.0,
};

/// `exp(x)` for `|x| <= 2^-8`.
#[inline]
fn exp_small(x: f64) -> f64 {
    1.0 + x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0))))
}

impl DecayClock {
    pub fn new(rates: Rates, ref_s: f64) -> Self {
        // Largest power of two (at most 1 s) with λ_max grid <= 2^-8.
        let mut grid_s = 1.0;
        while rates.max() * grid_s > 1.0 / 256.0 && grid_s > 1e-9 {
            grid_s *= 0.5;
        }
        DecayClock {
            rates,
            ref_s,
            grid_s,
            anchor_s: f64::NAN,
            anchor: ONE,
            cached_now_s: f64::NAN,
            cached: ONE,
        }
    }

    pub fn rates(&self) -> Rates {
        self.rates
    }

    pub fn ref_s(&self) -> f64 {
        self.ref_s
    }

    /// The weights at `now_s`: cached while `now_s` repeats, no `exp()`
    /// within a grid step.
    #[inline]
    pub fn weights(&mut self, now_s: f64) -> Weights {
        if now_s != self.cached_now_s {
            let anchor_s = (now_s / self.grid_s).floor() * self.grid_s;
            if anchor_s != self.anchor_s {
                self.anchor = self.compute(anchor_s);
                self.anchor_s = anchor_s;
            }
            self.cached = self.between(self.anchor, now_s - anchor_s);
            self.cached_now_s = now_s;
        }
        self.cached
    }

    #[inline]
    fn between(&self, a: Weights, dt: f64) -> Weights {
        let r = &self.rates;
        Weights {
            pop: a.pop * exp_small(r.pop * dt),
            short: a.short * exp_small(r.short * dt),
            long: a.long * exp_small(r.long * dt),
            group: a.group * exp_small(r.group * dt),
        }
    }

    /// The weights at `now_s` without touching the cache (for queries);
    /// equal to what [`DecayClock::weights`] returns.
    pub fn weights_at(&self, now_s: f64) -> Weights {
        if now_s == self.cached_now_s {
            return self.cached;
        }
        let anchor_s = (now_s / self.grid_s).floor() * self.grid_s;
        let anchor = if anchor_s == self.anchor_s {
            self.anchor
        } else {
            self.compute(anchor_s)
        };
        self.between(anchor, now_s - anchor_s)
    }

    fn compute(&self, now_s: f64) -> Weights {
        let dt = now_s - self.ref_s;
        Weights {
            pop: (self.rates.pop * dt).exp(),
            short: (self.rates.short * dt).exp(),
            long: (self.rates.long * dt).exp(),
            group: (self.rates.group * dt).exp(),
        }
    }

    /// Largest exponent `λ (now - ref_s)` over the rates.
    pub fn exponent(&self, now_s: f64) -> f64 {
        self.rates.max() * (now_s - self.ref_s)
    }

    /// Moves the reference to `new_ref_s` and returns the factors
    /// (`1 / weights(new_ref_s)`) every stored value must be multiplied by.
    pub fn rebase(&mut self, new_ref_s: f64) -> Weights {
        let w = self.weights_at(new_ref_s);
        self.ref_s = new_ref_s;
        self.anchor_s = f64::NAN;
        self.cached_now_s = f64::NAN;
        Weights {
            pop: 1.0 / w.pop,
            short: 1.0 / w.short,
            long: 1.0 / w.long,
            group: 1.0 / w.group,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> DecayClock {
        let r = Rates::from_half_life_s(100.0);
        DecayClock::new(
            Rates {
                pop: r,
                short: r * 2.0,
                long: r / 2.0,
                group: r,
            },
            1000.0,
        )
    }

    #[test]
    fn weight_doubles_every_half_life() {
        let mut c = clock();
        let w0 = c.weights(1000.0).pop;
        let w1 = c.weights(1100.0).pop;
        assert!((w1 / w0 - 2.0).abs() < 1e-12);
        assert!((c.weights(1100.0).short - 4.0).abs() < 1e-12);
    }

    #[test]
    fn hot_path_weights_match_exp() {
        let mut c = clock();
        for i in 0..2000 {
            let now = 1000.0 + f64::from(i) * 0.37;
            let w = c.weights(now);
            let exact = c.compute(now);
            assert!((w.short / exact.short - 1.0).abs() < 1e-13, "{now}");
            assert_eq!(w, c.weights_at(now));
            let fresh = DecayClock::new(c.rates(), c.ref_s());
            assert_eq!(fresh.weights_at(now), w, "a pure function of now");
        }
    }

    #[test]
    fn rebase_preserves_decayed_values() {
        let mut c = clock();
        let stored = c.weights(1050.0).pop * 3.0; // three accesses at t=1050
        let before = stored / c.weights_at(1300.0).pop;
        let f = c.rebase(1200.0);
        let after = stored * f.pop / c.weights_at(1300.0).pop;
        assert!((before - after).abs() < 1e-12 * before.abs().max(1.0));
        assert_eq!(c.ref_s(), 1200.0);
        assert!(c.exponent(1200.0).abs() < 1e-15);
    }
}
