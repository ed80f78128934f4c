//! Natural logarithm and exponential from IEEE-754 basic operations only.
//!
//! `f64::ln` and `f64::exp` call the platform's libm, whose results may
//! differ in the last bit between systems. The generator must produce the
//! same bytes everywhere, so it uses these versions: range reduction by the
//! exponent bits, then a fixed series evaluated with `+ - * /`, which IEEE
//! 754 rounds identically on every platform. Relative error is below 1e-15,
//! far more than a synthetic workload needs.

const LN2: f64 = std::f64::consts::LN_2;
/// ln 2 split as in fdlibm: `LN2_HI` has trailing zero bits, so `k * LN2_HI`
/// is exact for the `k` that `exp` meets.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
const MANTISSA_MASK: u64 = (1 << 52) - 1;
const EXPONENT_BIAS: i64 = 1023;

/// Natural logarithm of `x`. Returns `-inf` for zero, NaN for negative or
/// NaN input, `+inf` for `+inf`. Subnormal inputs are rounded up to the
/// smallest normal number (the generator never needs them).
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    let x = x.max(f64::MIN_POSITIVE);
    let bits = x.to_bits();
    let mut exponent = ((bits >> 52) & 0x7ff) as i64 - EXPONENT_BIAS;
    // Mantissa in [1, 2), then folded into [sqrt(1/2), sqrt(2)).
    let mut m = f64::from_bits((bits & MANTISSA_MASK) | ((EXPONENT_BIAS as u64) << 52));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        exponent += 1;
    }
    // ln(m) = 2 atanh(s) with s = (m - 1) / (m + 1), |s| <= 0.1716.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut sum = 0.0;
    let mut k = 1.0;
    while k < 30.0 {
        sum += term / k;
        term *= s2;
        k += 2.0;
    }
    exponent as f64 * LN2 + 2.0 * sum
}

/// `e` raised to `x`. Underflows to 0 below -745 and overflows to `+inf`
/// above 709.
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x > 709.0 {
        return f64::INFINITY;
    }
    if x < -745.0 {
        return 0.0;
    }
    // x = k ln 2 + r with |r| <= ln(2) / 2.
    let k = (x / LN2).round();
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut n = 1.0;
    while n < 24.0 {
        term *= r / n;
        sum += term;
        n += 1.0;
    }
    // Scale by 2^k in two exact steps so that k down to -1074 stays exact.
    let k = k as i64;
    let half = k / 2;
    sum * pow2(half) * pow2(k - half)
}

/// 2^k for `-1022 <= k <= 1023`, exactly.
fn pow2(k: i64) -> f64 {
    f64::from_bits(((k + EXPONENT_BIAS) as u64) << 52)
}

/// `base` raised to `power`, for `base > 0`.
pub fn powf(base: f64, power: f64) -> f64 {
    exp(power * ln(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 2e-15 * b.abs().max(1e-300)
    }

    #[test]
    fn ln_agrees_with_libm() {
        for &x in &[
            1e-300, 1e-9, 0.001, 0.5, 0.999, 1.0, 1.5, 2.0, 10.0, 86_400.0, 1e300,
        ] {
            assert!(close(ln(x), x.ln()), "ln({x}) = {} vs {}", ln(x), x.ln());
        }
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
    }

    #[test]
    fn exp_agrees_with_libm() {
        for &x in &[-700.0, -30.0, -1.0, -1e-9, 0.0, 0.3, 1.0, 7.5, 300.0, 700.0] {
            assert!(
                close(exp(x), x.exp()),
                "exp({x}) = {} vs {}",
                exp(x),
                x.exp()
            );
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-800.0), 0.0);
    }

    #[test]
    fn powf_matches_zipf_weights() {
        assert!(close(powf(100.0, -1.0), 0.01));
        assert!(close(powf(2.0, 10.0), 1024.0));
    }
}
