//! Hand-written AVX-512 copies of the hottest elementwise loops: the fused (tanh, sigmoid) cells of
//! LSTM and GRU, forward and backward, and the vector math under them.
//!
//! Why not [`multiversion!`](super::multiversion) like the rest: Rust never contracts `a * b + c`
//! into an FMA (it would change results), and it compiles `1 / x` to `vdivps`, whose 512-bit form
//! issues once every ~10 cycles. The cell evaluates five transcendentals per unit, each a chain of
//! multiply-adds ending in a division, so the compiled copy ran at about half the FMA ports' rate,
//! stalled behind the divider. Here every polynomial step is one `vfmadd`, the reciprocal is
//! `vrcp14ps` refined by one Newton step (relative error ~2^-28 before the final rounding, so within
//! an ulp or two of the division), `2^n` is one `vscalefps`, the row tail is a masked load and store
//! instead of a scalar loop, and the five nonlinearities share one pass over the row (32 vector
//! registers hold every constant without spilling, which the AVX2 copy could not).
//!
//! Accuracy contract, the same as [`super::math`] (tested against f64 below): `exp` within 2 ulp on
//! [-87, 88], `sigmoid` and `tanh` within ~1e-6 relative, NaN in gives NaN out. The results are not
//! bit-identical to the portable copy; the kernels' tests compare the levels within tolerances.
//!
//! Every function here is `unsafe`: callers must have checked [`super::level`] is `Avx512` (the CPU
//! has AVX-512 F/VL/DQ/BW); slice lengths are checked with asserts before any raw access.
#![allow(clippy::excessive_precision)]
#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// 16 lanes, and the mask of the first `rem` of them.
const W: usize = 16;
#[inline(always)]
fn tail_mask(rem: usize) -> __mmask16 {
    ((1u32 << rem) - 1) as __mmask16
}

#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
#[inline]
fn splat(v: f32) -> __m512 {
    _mm512_set1_ps(v)
}

/// # Safety
/// Every lane `k` keeps lies in one readable allocation from `p` (masked-off lanes are not read).
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
#[inline]
unsafe fn load(k: __mmask16, p: *const f32) -> __m512 {
    unsafe { _mm512_maskz_loadu_ps(k, p) }
}

/// # Safety
/// Every lane `k` keeps lies in one writable allocation from `p`.
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
#[inline]
unsafe fn store(k: __mmask16, p: *mut f32, v: __m512) {
    unsafe { _mm512_mask_storeu_ps(p, k, v) }
}

/// e^x, clamped to [-87, 88] like [`super::math::exp`]. `max(lo, x)`: x86's max returns its second
/// operand when either is NaN, so a NaN input survives the clamp.
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
#[inline]
fn exp(x: __m512) -> __m512 {
    let x = _mm512_min_ps(splat(88.0), _mm512_max_ps(splat(-87.0), x));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
        x,
        splat(std::f32::consts::LOG2_E),
    ));
    let r = _mm512_fnmadd_ps(n, splat(LN2_HI), x);
    let r = _mm512_fnmadd_ps(n, splat(LN2_LO), r);
    // Cephes expf's minimax polynomial for e^r on [-ln2/2, ln2/2].
    let mut p = splat(1.987_569_1e-4);
    p = _mm512_fmadd_ps(p, r, splat(1.398_199_9e-3));
    p = _mm512_fmadd_ps(p, r, splat(8.333_452e-3));
    p = _mm512_fmadd_ps(p, r, splat(4.166_579_6e-2));
    p = _mm512_fmadd_ps(p, r, splat(1.666_666_5e-1));
    p = _mm512_fmadd_ps(p, r, splat(5.000_000_1e-1));
    let e = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), splat(1.0));
    _mm512_scalef_ps(e, n)
}

/// 1/d for d ≥ 1 (every caller's denominator is 1 + e^y): `vrcp14ps` and one Newton step.
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
#[inline]
fn recip(d: __m512) -> __m512 {
    let r = _mm512_rcp14_ps(d);
    _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, splat(1.0)), r)
}

#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
#[inline]
fn sigmoid(x: __m512) -> __m512 {
    recip(_mm512_add_ps(splat(1.0), exp(_mm512_sub_ps(_mm512_setzero_ps(), x))))
}

/// tanh: Cephes' odd polynomial for |x| < 0.625 (where 1 - 2/(e^2x + 1) cancels), that form
/// elsewhere, with the sign put back.
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
#[inline]
fn tanh(x: __m512) -> __m512 {
    let sign = _mm512_set1_epi32(i32::MIN);
    let xi = _mm512_castps_si512(x);
    let ax = _mm512_castsi512_ps(_mm512_andnot_si512(sign, xi));
    let big = _mm512_fnmadd_ps(splat(2.0), recip(_mm512_add_ps(splat(1.0), exp(_mm512_add_ps(ax, ax)))), splat(1.0));
    let big = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(big), _mm512_and_si512(sign, xi)));
    let z = _mm512_mul_ps(x, x);
    let mut p = splat(-5.704_988_7e-3);
    p = _mm512_fmadd_ps(p, z, splat(2.063_908_9e-2));
    p = _mm512_fmadd_ps(p, z, splat(-5.373_971_6e-2));
    p = _mm512_fmadd_ps(p, z, splat(1.333_144_2e-1));
    p = _mm512_fmadd_ps(p, z, splat(-3.333_328_2e-1));
    let small = _mm512_fmadd_ps(_mm512_mul_ps(x, z), p, x);
    let is_small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(ax, splat(0.625));
    _mm512_mask_blend_ps(is_small, big, small)
}

/// Runs `f(mask, offset)` over `0..n` in 16-lane blocks, the last one masked.
#[inline(always)]
fn blocks(n: usize, mut f: impl FnMut(__mmask16, usize)) {
    let mut j = 0;
    while j + W <= n {
        f(0xFFFF, j);
        j += W;
    }
    if j < n {
        f(tail_mask(n - j), j);
    }
}

/// The LSTM cell for one row, Keras's default activations: `z` holds the gate pre-activations
/// (i, f, c, o blocks of `n = c.len()`) without `bias`; on return `z` holds the activated gates,
/// `c` the new cell state and `h` the new output.
///
/// # Safety
/// The CPU must have AVX-512 F/VL/DQ/BW (see [`super::level`]).
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
pub unsafe fn lstm_cell_forward(z: &mut [f32], bias: &[f32], c: &mut [f32], h: &mut [f32]) {
    let n = c.len();
    assert!(z.len() >= 4 * n && bias.len() >= 4 * n && h.len() >= n);
    let (zp, bp, cp, hp) = (z.as_mut_ptr(), bias.as_ptr(), c.as_mut_ptr(), h.as_mut_ptr());
    // One pass: all five nonlinearities of a block together (a two-pass version, gates first,
    // then the state update, measured the same: 3.5 ns/unit either way on B=64 H=64).
    // SAFETY: the assert above bounds every block's lanes inside the slices.
    blocks(n, |k, j| unsafe {
        let gate = |g: usize| _mm512_add_ps(load(k, zp.add(g * n + j)), load(k, bp.add(g * n + j)));
        let i = sigmoid(gate(0));
        let f = sigmoid(gate(1));
        let g = tanh(gate(2));
        let o = sigmoid(gate(3));
        let cn = _mm512_fmadd_ps(f, load(k, cp.add(j)), _mm512_mul_ps(i, g));
        store(k, zp.add(j), i);
        store(k, zp.add(n + j), f);
        store(k, zp.add(2 * n + j), g);
        store(k, zp.add(3 * n + j), o);
        store(k, cp.add(j), cn);
        store(k, hp.add(j), _mm512_mul_ps(o, tanh(cn)));
    });
}

/// The gate gradients of the default LSTM cell for one row: `z` holds (i, f, g, o) on entry and
/// (dz_i, dz_f, dz_c, dz_o) on exit; `dc` goes from dL/dc_t to dL/dc_{t-1}.
///
/// # Safety
/// As [`lstm_cell_forward`].
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
pub unsafe fn lstm_cell_backward(z: &mut [f32], c: &[f32], c_prev: &[f32], dh: &[f32], dc: &mut [f32]) {
    let n = c.len();
    assert!(z.len() >= 4 * n && c_prev.len() >= n && dh.len() >= n && dc.len() >= n);
    let (zp, cp, pp, dhp, dcp) = (z.as_mut_ptr(), c.as_ptr(), c_prev.as_ptr(), dh.as_ptr(), dc.as_mut_ptr());
    let one = splat(1.0);
    // SAFETY: the assert above bounds every block's lanes inside the slices.
    blocks(n, |k, j| unsafe {
        let (i, f) = (load(k, zp.add(j)), load(k, zp.add(n + j)));
        let (g, o) = (load(k, zp.add(2 * n + j)), load(k, zp.add(3 * n + j)));
        let tc = tanh(load(k, cp.add(j)));
        let d = load(k, dhp.add(j));
        let dho = _mm512_mul_ps(d, o);
        // dc_t = dc + dh·o·(1 - tanh²c)
        let dct = _mm512_fmadd_ps(dho, _mm512_fnmadd_ps(tc, tc, one), load(k, dcp.add(j)));
        // σ'(y) = y(1 - y) as y - y²
        let ds = |y: __m512| _mm512_fnmadd_ps(y, y, y);
        store(k, zp.add(3 * n + j), _mm512_mul_ps(_mm512_mul_ps(d, tc), ds(o)));
        store(k, zp.add(j), _mm512_mul_ps(_mm512_mul_ps(dct, g), ds(i)));
        store(k, zp.add(n + j), _mm512_mul_ps(_mm512_mul_ps(dct, load(k, pp.add(j))), ds(f)));
        store(k, zp.add(2 * n + j), _mm512_mul_ps(_mm512_mul_ps(dct, i), _mm512_fnmadd_ps(g, g, one)));
        store(k, dcp.add(j), _mm512_mul_ps(dct, f));
    });
}

/// The GRU `reset_after` cell, default activations, one row; the contract of
/// `gru::cell_after_tanh_sigmoid`: `z` holds mx without bias (z, r, h blocks) on entry and
/// (z, r, ĥ) on exit; `keep` receives `mh_h` with its bias; `h` is updated when `valid`.
///
/// # Safety
/// As [`lstm_cell_forward`].
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
pub unsafe fn gru_cell_after_forward(
    z: &mut [f32],
    b_in: &[f32],
    mh: &[f32],
    b_rec: &[f32],
    keep: &mut [f32],
    h: &mut [f32],
    valid: bool,
) {
    let n = h.len();
    assert!(z.len() >= 3 * n && b_in.len() >= 3 * n && mh.len() >= 3 * n && b_rec.len() >= 3 * n && keep.len() >= n);
    let (zp, bip, mhp, brp, kp, hp) =
        (z.as_mut_ptr(), b_in.as_ptr(), mh.as_ptr(), b_rec.as_ptr(), keep.as_mut_ptr(), h.as_mut_ptr());
    // SAFETY: the assert above bounds every block's lanes inside the slices.
    blocks(n, |k, j| unsafe {
        let pre = |g: usize| {
            let o = g * n + j;
            _mm512_add_ps(
                _mm512_add_ps(load(k, zp.add(o)), load(k, bip.add(o))),
                _mm512_add_ps(load(k, mhp.add(o)), load(k, brp.add(o))),
            )
        };
        let zg = sigmoid(pre(0));
        let rg = sigmoid(pre(1));
        let m = _mm512_add_ps(load(k, mhp.add(2 * n + j)), load(k, brp.add(2 * n + j)));
        store(k, kp.add(j), m);
        let xh = _mm512_add_ps(load(k, zp.add(2 * n + j)), load(k, bip.add(2 * n + j)));
        let hh = tanh(_mm512_fmadd_ps(rg, m, xh));
        store(k, zp.add(j), zg);
        store(k, zp.add(n + j), rg);
        store(k, zp.add(2 * n + j), hh);
        if valid {
            // h = z·h + (1 - z)·ĥ = ĥ + z·(h - ĥ)
            let hv = load(k, hp.add(j));
            store(k, hp.add(j), _mm512_fmadd_ps(zg, _mm512_sub_ps(hv, hh), hh));
        }
    });
}

/// The GRU `reset_after` backward for one valid row; the contract of
/// `gru::cell_after_backward_tanh_sigmoid`.
///
/// # Safety
/// As [`lstm_cell_forward`].
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
pub unsafe fn gru_cell_after_backward(
    z: &mut [f32],
    mh_h: &mut [f32],
    h_prev: &[f32],
    dh: &mut [f32],
    drec: &mut [f32],
) {
    let n = dh.len();
    assert!(z.len() >= 3 * n && mh_h.len() >= n && h_prev.len() >= n && drec.len() >= 3 * n);
    let (zp, mp, hpp, dhp, dp) =
        (z.as_mut_ptr(), mh_h.as_mut_ptr(), h_prev.as_ptr(), dh.as_mut_ptr(), drec.as_mut_ptr());
    let one = splat(1.0);
    // SAFETY: the assert above bounds every block's lanes inside the slices.
    blocks(n, |k, j| unsafe {
        let (zg, rg, hh) = (load(k, zp.add(j)), load(k, zp.add(n + j)), load(k, zp.add(2 * n + j)));
        let m = load(k, mp.add(j));
        let g = load(k, dhp.add(j));
        let dz = _mm512_mul_ps(_mm512_mul_ps(g, _mm512_sub_ps(load(k, hpp.add(j)), hh)), _mm512_fnmadd_ps(zg, zg, zg));
        let da = _mm512_mul_ps(_mm512_fnmadd_ps(g, zg, g), _mm512_fnmadd_ps(hh, hh, one));
        let dr = _mm512_mul_ps(_mm512_mul_ps(da, m), _mm512_fnmadd_ps(rg, rg, rg));
        let dm = _mm512_mul_ps(da, rg);
        store(k, zp.add(j), dz);
        store(k, zp.add(n + j), dr);
        store(k, zp.add(2 * n + j), da);
        store(k, dp.add(j), dz);
        store(k, dp.add(n + j), dr);
        store(k, dp.add(2 * n + j), dm);
        store(k, mp.add(j), dm);
        store(k, dhp.add(j), _mm512_mul_ps(g, zg));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn have() -> bool {
        super::super::detected_level() == super::super::Level::Avx512
    }

    /// Applies a vector function to every element of `xs`, 16 at a time.
    fn map(xs: &[f32], f: unsafe fn(__m512) -> __m512) -> Vec<f32> {
        #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
        unsafe fn run(xs: &[f32], out: &mut [f32], f: unsafe fn(__m512) -> __m512) {
            blocks(xs.len(), |k, j| unsafe { store(k, out.as_mut_ptr().add(j), f(load(k, xs.as_ptr().add(j)))) });
        }
        let mut out = vec![0.0; xs.len()];
        unsafe { run(xs, &mut out, f) };
        out
    }

    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
    unsafe fn exp_t(x: __m512) -> __m512 {
        exp(x)
    }
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
    unsafe fn sigmoid_t(x: __m512) -> __m512 {
        sigmoid(x)
    }
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
    unsafe fn tanh_t(x: __m512) -> __m512 {
        tanh(x)
    }

    #[test]
    fn math_accuracy_against_f64() {
        if !have() {
            return;
        }
        let xs: Vec<f32> = (-197_000..=200_000).map(|i| i as f32 * 4.4e-4).collect();
        for (x, e) in xs.iter().zip(map(&xs, exp_t)) {
            let want = (*x as f64).exp();
            assert!(((e as f64 - want) / want).abs() < 2.5e-7, "exp({x}) = {e}, want {want}");
        }
        let xs: Vec<f32> = xs.iter().map(|v| v * 0.3).collect();
        for ((x, s), t) in xs.iter().zip(map(&xs, sigmoid_t)).zip(map(&xs, tanh_t)) {
            let xd = *x as f64;
            let ws = 1.0 / (1.0 + (-xd).exp());
            assert!(((s as f64 - ws) / ws).abs() < 1e-6, "sigmoid({x}) = {s}, want {ws}");
            let wt = xd.tanh();
            assert!((t as f64 - wt).abs() <= 1e-6 * wt.abs() + 1e-30, "tanh({x}) = {t}, want {wt}");
        }
        let special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 200.0, -200.0, 0.0, -0.0];
        let (s, t) = (map(&special, sigmoid_t), map(&special, tanh_t));
        assert!(s[0].is_nan() && t[0].is_nan() && map(&special, exp_t)[0].is_nan());
        assert_eq!((s[1], s[3]), (1.0, 1.0));
        assert!((0.0..1e-37).contains(&s[2]) && (0.0..1e-37).contains(&s[4]));
        assert_eq!((t[1], t[2], t[3], t[4]), (1.0, -1.0, 1.0, -1.0));
        assert!(t[5] == 0.0 && t[6] == 0.0);
    }
}
