//! Branch-free f32 math that the compiler vectorizes. Every function is `#[inline(always)]` so it is
//! compiled with the SIMD features of the multiversioned loop that calls it.
//!
//! Accuracy contract (checked by tests against f64): `exp` within 2 ulp on [-87, 88]; `sigmoid`,
//! `tanh` within ~1e-6 relative. NaN in gives NaN out (clamps are written as comparisons that a NaN
//! fails, not with `f32::max`, which would swallow it).

// Published polynomial coefficients are kept as printed, even where f32 cannot hold every digit.
#![allow(clippy::excessive_precision)]

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two (Cody–Waite): C1 is exact in few bits, so `x - n*C1` has no rounding error.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits.
const ROUND_MAGIC: f32 = 12_582_912.0;
const ROUND_MAGIC_BITS: i32 = 0x4B40_0000;

/// e^x. Inputs are clamped to [-87, 88] so that 2^n stays a normal float (results saturate at
/// ~1.6e-38 and ~1.65e38 instead of 0 and inf; callers use it where that is harmless).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    let (e, ni) = exp_reduced(x);
    e * f32::from_bits((ni.wrapping_add(127) << 23) as u32)
}

/// The shared core of [`exp`] and [`exp_full`]: `x = n·ln2 + r` (Cody–Waite), and `(e^r, n)`.
#[inline(always)]
fn exp_reduced(x: f32) -> (f32, i32) {
    let t = x * LOG2E + ROUND_MAGIC;
    let n = t - ROUND_MAGIC; // round(x * log2 e)
    let ni = (t.to_bits() as i32).wrapping_sub(ROUND_MAGIC_BITS);
    let r = x - n * LN2_HI - n * LN2_LO;
    // Minimax polynomial for e^r on [-ln2/2, ln2/2] (Cephes expf coefficients).
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    (p * r * r + r + 1.0, ni)
}

#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// tanh: odd polynomial near 0 (where 1 - 2/(e^2x + 1) would cancel), the exp form elsewhere.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let ax = x.abs();
    let z = x * x;
    // Cephes tanhf polynomial for |x| < 0.625.
    let mut p = -5.704_988_7e-3f32;
    p = p * z + 2.063_908_9e-2;
    p = p * z - 5.373_971_6e-2;
    p = p * z + 1.333_144_2e-1;
    p = p * z - 3.333_328_2e-1;
    let small = x + x * z * p;
    let big = (1.0 - 2.0 / (exp(2.0 * ax) + 1.0)).copysign(x);
    if ax < 0.625 {
        small
    } else {
        big
    }
}

/// Keras 3's hard_sigmoid: `relu6(x + 3) / 6`, i.e. clip(x/6 + 1/2, 0, 1).
#[inline(always)]
pub fn hard_sigmoid(x: f32) -> f32 {
    // (x + 3)/6 rather than x/6 + 1/2: near x = -3 the latter cancels (1e-3 relative error).
    let y = (x + 3.0) * (1.0 / 6.0);
    let y = if y < 0.0 { 0.0 } else { y };
    if y > 1.0 {
        1.0
    } else {
        y
    }
}

/// max(x, 0), keeping NaN. A bit mask rather than a branch, so loops over it vectorize.
#[inline(always)]
pub fn relu(x: f32) -> f32 {
    let negative = ((x < 0.0) as u32).wrapping_neg();
    f32::from_bits(x.to_bits() & !negative)
}

/// e^x over the whole f32 range: overflows to +inf above ~88.72 and underflows gradually
/// (subnormals, then 0) below ~-87.3, where [`exp`] saturates. The same reduction as [`exp`], with
/// 2^n applied as two factors so that neither leaves the normal range.
#[inline(always)]
pub fn exp_full(x: f32) -> f32 {
    let x = if x < -104.0 { -104.0 } else { x };
    let x = if x > 89.0 { 89.0 } else { x };
    let (e, ni) = exp_reduced(x); // ni in [-150, 129]
    let n1 = ni >> 1; // in [-75, 64]: 2^n1 and 2^(n - n1) are normal
    let n2 = ni.wrapping_sub(n1);
    let s1 = f32::from_bits((n1.wrapping_add(127) << 23) as u32);
    let s2 = f32::from_bits((n2.wrapping_add(127) << 23) as u32);
    e * s1 * s2
}

/// e^x - 1 without cancellation near 0: Taylor series to x^9 for |x| < ln 2 (remainder < 1.5e-8
/// relative), `exp(x) - 1` elsewhere (its cancellation costs at most a factor 2 there). Saturates
/// at -1 below and, like [`exp`], at ~1.65e38 above 88.
#[inline(always)]
pub fn expm1(x: f32) -> f32 {
    let mut p = 1.0f32 / 362_880.0;
    p = p * x + 1.0 / 40_320.0;
    p = p * x + 1.0 / 5_040.0;
    p = p * x + 1.0 / 720.0;
    p = p * x + 1.0 / 120.0;
    p = p * x + 1.0 / 24.0;
    p = p * x + 1.0 / 6.0;
    p = p * x + 0.5;
    p = p * x + 1.0;
    let small = p * x;
    let big = exp(x) - 1.0;
    if x.abs() < std::f32::consts::LN_2 {
        small
    } else {
        big
    }
}

/// ln(1 + u) for u in [0, 1] (callers pass e^-|x|): `2 atanh(s)` with `s = u / (2 + u)` in
/// [0, 1/3], a series to s^13 (remainder < 2e-8 relative). Exact for subnormal `u` (returns `u`).
#[inline(always)]
pub fn log1p_unit(u: f32) -> f32 {
    let s = u / (2.0 + u);
    let z = s * s;
    let mut p = 1.0f32 / 13.0;
    p = p * z + 1.0 / 11.0;
    p = p * z + 1.0 / 9.0;
    p = p * z + 1.0 / 7.0;
    p = p * z + 1.0 / 5.0;
    p = p * z + 1.0 / 3.0;
    let t = s * z * p; // atanh(s) - s
    2.0 * s + 2.0 * t
}

/// softplus(x) = ln(1 + e^x), computed as max(x, 0) + ln(1 + e^-|x|) (no overflow, no
/// cancellation). NaN in, NaN out.
#[inline(always)]
pub fn softplus(x: f32) -> f32 {
    let pos = if x > 0.0 { x } else { 0.0 };
    let l = log1p_unit(exp_full(-x.abs()));
    pos + l // NaN: exp_full(NaN) is NaN
}

/// The standard normal CDF Φ(x) = erfc(-x/√2)/2. erfc from the Chebyshev fit of Numerical Recipes
/// (`erfcc`, relative error < 1.2e-7 for every argument), one exp and one division, no branch. In
/// the lower tail the relative error also grows like eps·x²/2 (the float32 rounding of x², which
/// the exponent of e^(-x²/2) amplifies). Returns (Φ(x), Φ(-x)) without cancellation in either.
#[inline(always)]
pub fn normal_cdf_pair(x: f32) -> (f32, f32) {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = 0.170_872_77f32;
    p = p * t - 0.822_152_23;
    p = p * t + 1.488_515_87;
    p = p * t - 1.135_203_98;
    p = p * t + 0.278_868_07;
    p = p * t - 0.186_288_06;
    p = p * t + 0.096_784_18;
    p = p * t + 0.374_091_96;
    p = p * t + 1.000_023_68;
    p = p * t - 1.265_512_23;
    let tail = 0.5 * t * exp_full(p - 0.5 * (x * x)); // Φ(-|x|)
    let body = 1.0 - tail; // Φ(|x|)
    if x < 0.0 {
        (tail, body)
    } else {
        (body, tail)
    }
}

/// The standard normal density φ(x) = e^(-x²/2)/√(2π).
#[inline(always)]
pub fn normal_pdf(x: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_280_401_432_7;
    INV_SQRT_2PI * exp_full(-0.5 * (x * x))
}

/// (σ(x), σ(-x)) = (σ(x), 1 - σ(x)), both to full relative precision over the whole range (one
/// exp of -|x| and one division).
#[inline(always)]
pub fn sigmoid_pair(x: f32) -> (f32, f32) {
    let e = exp_full(-x.abs());
    let inv = 1.0 / (1.0 + e);
    let small = e * inv; // σ(-|x|)
    if x < 0.0 {
        (small, inv)
    } else {
        (inv, small)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep() -> impl Iterator<Item = f32> {
        (-197_000..=200_000).map(|i| i as f32 * 4.4e-4) // about [-86.7, 88], inside the clamp
    }

    #[test]
    fn exp_accuracy() {
        for x in sweep() {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            assert!(((got - want) / want).abs() < 2.5e-7, "exp({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn sigmoid_tanh_accuracy() {
        for x in sweep().map(|v| v * 0.3) {
            let xd = x as f64;
            let s = 1.0 / (1.0 + (-xd).exp());
            assert!(((sigmoid(x) as f64 - s) / s).abs() < 1e-6, "sigmoid({x})");
            let t = xd.tanh();
            let err = (tanh(x) as f64 - t).abs();
            assert!(err <= 1e-6 * t.abs() + 1e-30, "tanh({x}) = {} want {t}", tanh(x));
        }
    }

    #[test]
    fn exp_full_covers_the_whole_range() {
        for i in -110_000..=95_000 {
            let x = i as f32 * 1e-3;
            let want = (x as f64).exp();
            let got = exp_full(x) as f64;
            if want > f32::MAX as f64 {
                assert_eq!(got, f64::INFINITY, "exp_full({x})");
            } else if want >= f32::MIN_POSITIVE as f64 {
                assert!(((got - want) / want).abs() < 2.5e-7, "exp_full({x}) = {got}, want {want}");
            } else {
                // subnormal: one rounding to the subnormal grid (2^-149) on top of the relative error
                assert!((got - want).abs() <= 2.5e-7 * want + 2f64.powi(-150), "exp_full({x}) = {got}, want {want}");
            }
        }
        assert_eq!(exp_full(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_full(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_full(0.0), 1.0);
    }

    #[test]
    fn expm1_log1p_softplus_accuracy() {
        for x in sweep().map(|v| v * 0.2).chain((1..1800).map(|i| 1e-30f32 * 1.04f32.powi(i))) {
            let xd = x as f64;
            let want = xd.exp_m1();
            assert!((expm1(x) as f64 - want).abs() <= 4e-7 * want.abs(), "expm1({x}) = {} want {want}", expm1(x));
            let sp = xd.max(0.0) + (-xd.abs()).exp().ln_1p();
            assert!((softplus(x) as f64 - sp).abs() <= 4e-7 * sp, "softplus({x}) = {} want {sp}", softplus(x));
        }
        for i in 0..=100_000 {
            let u = i as f32 * 1e-5;
            let want = (u as f64).ln_1p();
            assert!((log1p_unit(u) as f64 - want).abs() <= 2.5e-7 * want, "log1p({u})");
        }
        assert_eq!(log1p_unit(1e-40), 1e-40);
        assert_eq!(expm1(f32::NEG_INFINITY), -1.0);
        assert_eq!(softplus(f32::INFINITY), f32::INFINITY);
        assert_eq!(softplus(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn sigmoid_pair_and_normal_cdf_accuracy() {
        for x in sweep().map(|v| v * 0.3) {
            let xd = x as f64;
            let (s, c) = sigmoid_pair(x);
            let (ws, wc) = (1.0 / (1.0 + (-xd).exp()), 1.0 / (1.0 + xd.exp()));
            assert!(((s as f64 - ws) / ws).abs() < 5e-7 && ((c as f64 - wc) / wc).abs() < 5e-7, "sigmoid_pair({x})");
        }
        // Φ against a fine Simpson integration of the density, on [-12, 12]
        let pdf = |t: f64| (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let (a, h) = (-40.0f64, 1e-4);
        let mut acc = 0.0;
        let mut t = a;
        for i in -1200..=1200 {
            let x = i as f32 * 0.01;
            while t + h <= x as f64 {
                acc += h / 6.0 * (pdf(t) + 4.0 * pdf(t + h / 2.0) + pdf(t + h));
                t += h;
            }
            let rest = x as f64 - t;
            let want = acc + rest / 6.0 * (pdf(t) + 4.0 * pdf(t + rest / 2.0) + pdf(x as f64));
            let (p, q) = normal_cdf_pair(x);
            let tol = 4e-7 + 1.2e-7 * (x as f64).powi(2); // the eps·x²/2 of the lower tail (see the docs)
            assert!(((p as f64 - want) / want).abs() < tol, "Φ({x}) = {p} want {want}");
            let wq = 1.0 - want;
            if wq > 1e-6 {
                assert!(((q as f64 - wq) / wq).abs() < 1e-5, "Φ(-{x}) = {q} want {wq}");
            }
            assert!(((normal_pdf(x) as f64 - pdf(x as f64)) / pdf(x as f64)).abs() < tol, "φ({x})");
        }
    }

    #[test]
    fn nan_propagates_and_saturation() {
        for f in [exp_full, expm1, softplus, |x| normal_cdf_pair(x).0, normal_pdf, |x| sigmoid_pair(x).1] {
            assert!(f(f32::NAN).is_nan());
        }
        for f in [exp, sigmoid, tanh, hard_sigmoid, relu] {
            assert!(f(f32::NAN).is_nan());
        }
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-50.0), -1.0);
        assert_eq!(sigmoid(200.0), 1.0);
        assert!(sigmoid(-200.0) < 1e-37);
        assert_eq!(hard_sigmoid(-3.5), 0.0);
        assert_eq!(hard_sigmoid(3.5), 1.0);
        assert_eq!(hard_sigmoid(0.0), 0.5);
        assert_eq!(relu(-1.0), 0.0);
    }
}
