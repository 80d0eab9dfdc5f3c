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
    let e = p * r * r + r + 1.0;
    e * f32::from_bits((ni.wrapping_add(127) << 23) as u32)
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
    fn nan_propagates_and_saturation() {
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
