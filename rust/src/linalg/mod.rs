//! The one place that does GEMM. Every other module asks here: [`sgemm`] for general products
//! (backed by the `gemm` crate, picked over `matrixmultiply` by `benches/gemm.rs`), and
//! [`packed`] for the many small products of a recurrent time loop against one fixed matrix, which
//! no library serves well (each call would re-pack the recurrent kernel; ours is packed once), and
//! [`gemv`] for the one-sample steps, which are bound by streaming the weights once.

pub mod gemv;
pub mod packed;

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trans {
    /// use the stored matrix
    N,
    /// use its transpose
    T,
}

/// Below this many FLOPs a product runs on the calling thread: handing a small GEMM to the pool
/// cost more than it saved. Measured with `gemm`'s Rayon parallelism on this 2-core machine (one
/// thread against two, µs): 100×32×512 (3.3 MFLOP, an LSTM's hoisted input projection for T=100)
/// 28 vs 34; 64×64×256 18 vs 45; 1000×64×64 52 vs 70; 400×32×512 (13 MFLOP) 126 vs 124;
/// 300×128×512 (39 MFLOP) 253 vs 236; 800×32×512 (26 MFLOP) 254 vs 190.
const PARALLEL_MIN_FLOP: usize = 16_000_000;

/// `C = alpha·op(A)·op(B) + beta·C`, all matrices row-major (BLAS convention, row-major flavour).
///
/// `op(A)` is `m×k`, `op(B)` is `k×n`, `C` is `m×n`. `lda`, `ldb`, `ldc` are the row strides of the
/// matrices *as stored* (so for `Trans::T`, `A` is stored `k×m` with row stride `lda`).
/// With `beta == 0`, `C` is not read (it may hold garbage, NaN included).
/// `threads <= 1` runs on the calling thread; otherwise the GEMM may use up to that many threads
/// of the current rayon pool (see `threads::install`).
///
/// # Panics
/// If a slice is too short for the shape and strides given (a bug in the caller, never user input:
/// user input is validated before it reaches a kernel).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    ta: Trans,
    tb: Trans,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldc >= n && c.len() >= (m - 1) * ldc + n, "sgemm: C too short");
    if k == 0 || alpha == 0.0 {
        for row in c.chunks_mut(ldc).take(m) {
            for v in &mut row[..n] {
                *v = if beta == 0.0 { 0.0 } else { *v * beta };
            }
        }
        return;
    }
    let (a_rows, a_cols) = if ta == Trans::N { (m, k) } else { (k, m) };
    let (b_rows, b_cols) = if tb == Trans::N { (k, n) } else { (n, k) };
    assert!(lda >= a_cols && a.len() >= (a_rows - 1) * lda + a_cols, "sgemm: A too short");
    assert!(ldb >= b_cols && b.len() >= (b_rows - 1) * ldb + b_cols, "sgemm: B too short");
    // (row stride, column stride) of op(X) in elements.
    let strides = |t: Trans, ld: usize| -> (isize, isize) {
        match t {
            Trans::N => (ld as isize, 1),
            Trans::T => (1, ld as isize),
        }
    };
    let (a_rs, a_cs) = strides(ta, lda);
    let (b_rs, b_cs) = strides(tb, ldb);
    let small = 2 * m * n * k < PARALLEL_MIN_FLOP;
    let parallelism = if threads <= 1 || small { gemm::Parallelism::None } else { gemm::Parallelism::Rayon(threads) };
    // SAFETY: the asserts above guarantee every element addressed through these strides lies inside
    // the slices; `c` is borrowed mutably, so it does not alias `a` or `b`.
    unsafe {
        // gemm's convention: dst := dst_scale·dst + prod_scale·lhs·rhs, dst read only if asked.
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            ldc as isize,
            beta != 0.0,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            beta,
            alpha,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::too_many_arguments)]
    fn naive(
        ta: Trans,
        tb: Trans,
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
    ) -> Vec<f64> {
        let mut c = vec![0.0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    let av = if ta == Trans::N { a[i * lda + p] } else { a[p * lda + i] };
                    let bv = if tb == Trans::N { b[p * ldb + j] } else { b[j * ldb + p] };
                    s += av as f64 * bv as f64;
                }
                c[i * n + j] = s;
            }
        }
        c
    }

    fn vals(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_add(12345);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 9) as f32 / (1u32 << 22) as f32 - 1.0
            })
            .collect()
    }

    #[test]
    fn sweep_small_sizes_transposes_strides_and_scales() {
        for &(ta, tb) in &[(Trans::N, Trans::N), (Trans::T, Trans::N), (Trans::N, Trans::T), (Trans::T, Trans::T)] {
            for m in [0usize, 1, 2, 3, 7, 17] {
                for n in [0usize, 1, 5, 16, 33] {
                    for k in [0usize, 1, 4, 9, 31] {
                        let pad = 3; // strides wider than the logical width
                        let (ar, ac) = if ta == Trans::N { (m, k) } else { (k, m) };
                        let (br, bc) = if tb == Trans::N { (k, n) } else { (n, k) };
                        let (lda, ldb, ldc) = (ac + pad, bc + pad, n + pad);
                        let a = vals(ar.max(1) * lda, 1);
                        let b = vals(br.max(1) * ldb, 2);
                        let c0 = vals(m.max(1) * ldc, 3);
                        for &(alpha, beta) in &[(1.0f32, 0.0f32), (0.5, 1.0), (-2.0, 0.25)] {
                            let mut c = c0.clone();
                            sgemm(ta, tb, m, n, k, alpha, &a, lda, &b, ldb, beta, &mut c, ldc, 1);
                            let r = naive(ta, tb, m, n, k, &a, lda, &b, ldb);
                            for i in 0..m {
                                for j in 0..n {
                                    let want = alpha as f64 * r[i * n + j] + beta as f64 * c0[i * ldc + j] as f64;
                                    let got = c[i * ldc + j] as f64;
                                    assert!(
                                        (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                                        "{ta:?}{tb:?} m={m} n={n} k={k}: {got} vs {want}"
                                    );
                                }
                                // padding columns untouched
                                for j in n..ldc.min(c.len() - i * ldc) {
                                    assert_eq!(c[i * ldc + j], c0[i * ldc + j]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn beta_zero_ignores_nan_in_c_and_threads_agree() {
        let (m, n, k) = (130, 70, 300);
        let a = vals(m * k, 4);
        let b = vals(k * n, 5);
        let mut c1 = vec![f32::NAN; m * n];
        let mut c2 = vec![f32::NAN; m * n];
        sgemm(Trans::N, Trans::N, m, n, k, 1.0, &a, k, &b, n, 0.0, &mut c1, n, 1);
        crate::threads::install(|| sgemm(Trans::N, Trans::N, m, n, k, 1.0, &a, k, &b, n, 0.0, &mut c2, n, 2));
        let r = naive(Trans::N, Trans::N, m, n, k, &a, k, &b, n);
        for i in 0..m * n {
            assert!((c1[i] as f64 - r[i]).abs() < 1e-3);
            assert!((c2[i] as f64 - r[i]).abs() < 1e-3);
        }
    }
}
