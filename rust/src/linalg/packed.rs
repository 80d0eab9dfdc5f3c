//! GEMM against a matrix packed once: `C (+)= A·B` where `B` (`k×n`) is the same for many calls.
//!
//! A recurrent layer multiplies a small block of states by the same recurrent kernel at every time
//! step. A general GEMM re-packs that kernel on each call (measured: ~20% of an LSTM training step
//! went to the `gemm` crate's packing). Here `B` is packed once per layer call into column panels
//! of `NR` floats laid out `k`-major, and a register-blocked microkernel (`MR×NR` accumulators,
//! `A` broadcast one element at a time) streams each panel. The panel width and microkernel follow
//! the SIMD level in use when packing: AVX-512 32 columns × 8 rows, AVX2+FMA 16 × 6, portable 16 × 4.
use super::Trans;
use crate::simd::{self, Level};

/// `B` packed for [`gemm_packed`]. Its buffer returns to the pool when dropped.
pub struct PackedB {
    level: Level,
    nr: usize,
    k: usize,
    n: usize,
    data: Vec<f32>,
}

fn panel_width(level: Level) -> usize {
    match level {
        Level::Avx512 => 32,
        Level::Avx2 | Level::Portable => 16,
    }
}

impl PackedB {
    /// Packs `op(B)` (`k×n`); `B` is stored row-major with row stride `ldb` (`k×n` for `Trans::N`,
    /// `n×k` for `Trans::T`).
    pub fn pack(b: &[f32], ldb: usize, k: usize, n: usize, trans: Trans) -> PackedB {
        match trans {
            Trans::N => PackedB::pack_stacked(&[(b, k)], ldb, n, trans),
            Trans::T => PackedB::pack_stacked(&[(b, n)], ldb, k, trans),
        }
    }

    /// Packs `op(S)` where `S` is the stored matrices of `parts` stacked row-wise (each part is
    /// `(data, rows)` with the shared row stride `ldb` and `width` used columns). So with `Trans::N`
    /// it packs `[W; U]` (`k = Σ rows`, `n = width`), for `[x | h]·[W; U]`; with `Trans::T` it packs
    /// `[W; U]ᵀ` (`k = width`, `n = Σ rows`), for `dG·[W; U]ᵀ = [dx | dh]`.
    pub fn pack_stacked(parts: &[(&[f32], usize)], ldb: usize, width: usize, trans: Trans) -> PackedB {
        let level = simd::level();
        let nr = panel_width(level);
        // The stored rows of all parts, in order.
        let rows: Vec<&[f32]> =
            parts.iter().flat_map(|&(b, r)| (0..r).map(move |i| &b[i * ldb..i * ldb + width])).collect();
        let (k, n) = match trans {
            Trans::N => (rows.len(), width),
            Trans::T => (width, rows.len()),
        };
        let panels = n.div_ceil(nr);
        // Written in full below (padding columns included); taken from the buffer pool, since a
        // training loop packs the same shapes every step.
        let mut data = crate::pool::take(panels * k * nr);
        data.clear();
        for pi in 0..panels {
            let j0 = pi * nr;
            let w = nr.min(n - j0);
            for p in 0..k {
                match trans {
                    Trans::N => data.extend_from_slice(&rows[p][j0..j0 + w]),
                    Trans::T => data.extend(rows[j0..j0 + w].iter().map(|r| r[p])),
                }
                data.extend(std::iter::repeat_n(0.0f32, nr - w));
            }
        }
        PackedB { level, nr, k, n, data }
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn n(&self) -> usize {
        self.n
    }
}

/// `C = A·B` (or `C += A·B` with `accumulate`), `A` is `m×k` with row stride `lda`, `C` is `m×n`
/// with row stride `ldc`. Single-threaded: callers run it inside their own batch slice.
pub fn gemm_packed(m: usize, a: &[f32], lda: usize, b: &PackedB, c: &mut [f32], ldc: usize, accumulate: bool) {
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldc >= n && c.len() >= (m - 1) * ldc + n, "gemm_packed: C too short");
    assert!(k == 0 || (lda >= k && a.len() >= (m - 1) * lda + k), "gemm_packed: A too short");
    if k == 0 {
        if !accumulate {
            c.chunks_mut(ldc).take(m).for_each(|r| r[..n].fill(0.0));
        }
        return;
    }
    // The panel layout was chosen for `b.level`; a later forced level change must not mismatch it.
    match b.level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the level was detected on this CPU when B was packed; bounds asserted above.
        Level::Avx512 => unsafe { x86::run_avx512(m, a, lda, b, c, ldc, accumulate) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Level::Avx2 => unsafe { x86::run_avx2(m, a, lda, b, c, ldc, accumulate) },
        _ => portable(m, a, lda, b, c, ldc, accumulate),
    }
}

/// Portable path: the same panel walk with plain loops (vectorized by the compiler for SSE2).
fn portable(m: usize, a: &[f32], lda: usize, b: &PackedB, c: &mut [f32], ldc: usize, accumulate: bool) {
    const MR: usize = 4;
    const NR: usize = 16;
    debug_assert_eq!(b.nr, NR);
    let k = b.k;
    for (pi, panel) in b.data.chunks_exact(k * NR).enumerate() {
        let j0 = pi * NR;
        let w = NR.min(b.n - j0);
        let mut i0 = 0;
        while i0 < m {
            let mr = MR.min(m - i0);
            let mut acc = [[0.0f32; NR]; MR];
            for p in 0..k {
                let bp = &panel[p * NR..p * NR + NR];
                for (i, row) in acc.iter_mut().enumerate().take(mr) {
                    let av = a[(i0 + i) * lda + p];
                    for j in 0..NR {
                        row[j] += av * bp[j];
                    }
                }
            }
            for (i, row) in acc.iter().enumerate().take(mr) {
                let cr = &mut c[(i0 + i) * ldc + j0..(i0 + i) * ldc + j0 + w];
                for j in 0..w {
                    cr[j] = if accumulate { cr[j] + row[j] } else { row[j] };
                }
            }
            i0 += mr;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::PackedB;

    /// Calls `$tile::<MR>` for the `MR` among `$n` equal to `$mr`, `$tile::<1>` otherwise (the
    /// row count of a tile must be a constant for its accumulators to live in registers).
    macro_rules! dispatch_rows {
        ($tile:ident, $mr:expr, [$($n:literal),*], $args:tt) => {
            match $mr {
                $($n => dispatch_rows!(@call $tile, $n, $args),)*
                _ => dispatch_rows!(@call $tile, 1, $args),
            }
        };
        (@call $tile:ident, $n:literal, ($($a:expr),*)) => { $tile::<$n>($($a),*) };
    }
    use std::arch::x86_64::*;

    /// One `MR×32` tile: rows `a[i*lda..]`, panel `bp` (`k×32`), into `c` (`w` valid columns).
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_avx512<const MR: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        bp: *const f32,
        c: *mut f32,
        ldc: usize,
        w: usize,
        accumulate: bool,
    ) {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        for p in 0..k {
            // SAFETY (whole fn): the caller guarantees k·32 floats at bp, MR rows of k at a, and
            // MR rows of w writable floats at c.
            let b0 = unsafe { _mm512_loadu_ps(bp.add(p * 32)) };
            let b1 = unsafe { _mm512_loadu_ps(bp.add(p * 32 + 16)) };
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(unsafe { *a.add(i * lda + p) });
                row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                row[1] = _mm512_fmadd_ps(av, b1, row[1]);
            }
        }
        let m0: __mmask16 = if w >= 16 { 0xFFFF } else { ((1u32 << w) - 1) as u16 };
        let m1: __mmask16 = if w >= 32 {
            0xFFFF
        } else if w > 16 {
            ((1u32 << (w - 16)) - 1) as u16
        } else {
            0
        };
        for (i, row) in acc.iter().enumerate() {
            let cp = unsafe { c.add(i * ldc) };
            let (mut v0, mut v1) = (row[0], row[1]);
            if accumulate {
                v0 = _mm512_add_ps(v0, unsafe { _mm512_maskz_loadu_ps(m0, cp) });
                v1 = _mm512_add_ps(v1, unsafe { _mm512_maskz_loadu_ps(m1, cp.add(16)) });
            }
            unsafe {
                _mm512_mask_storeu_ps(cp, m0, v0);
                _mm512_mask_storeu_ps(cp.add(16), m1, v1);
            }
        }
    }

    /// One `MR×16` tile for a panel with at most 16 used columns (the panel keeps its 32-float
    /// rows; only the first half is read). The 8×32 tile would spend half its multiply-adds on the
    /// zero padding there: N = 16 (a Conv1D with 16 filters) or the last 16 columns of N = 80 (an
    /// LSTM backward's `[dx | dh]` with F = 16, H = 64) ran at half the FMA rate.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_avx512_half<const MR: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        bp: *const f32,
        c: *mut f32,
        ldc: usize,
        w: usize,
        accumulate: bool,
    ) {
        let mut acc = [_mm512_setzero_ps(); MR];
        for p in 0..k {
            // SAFETY (whole fn): as tile_avx512.
            let b0 = unsafe { _mm512_loadu_ps(bp.add(p * 32)) };
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(unsafe { *a.add(i * lda + p) });
                *row = _mm512_fmadd_ps(av, b0, *row);
            }
        }
        let m0: __mmask16 = if w >= 16 { 0xFFFF } else { ((1u32 << w) - 1) as u16 };
        for (i, row) in acc.iter().enumerate() {
            let cp = unsafe { c.add(i * ldc) };
            let mut v0 = *row;
            if accumulate {
                v0 = _mm512_add_ps(v0, unsafe { _mm512_maskz_loadu_ps(m0, cp) });
            }
            unsafe { _mm512_mask_storeu_ps(cp, m0, v0) };
        }
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn run_avx512(
        m: usize,
        a: &[f32],
        lda: usize,
        b: &PackedB,
        c: &mut [f32],
        ldc: usize,
        accumulate: bool,
    ) {
        let k = b.k;
        for (pi, panel) in b.data.chunks_exact(k * 32).enumerate() {
            let j0 = pi * 32;
            let w = 32.min(b.n - j0);
            let mut i0 = 0;
            if w <= 16 {
                while i0 < m {
                    let mr = 16.min(m - i0);
                    let (ap, bp) = (a[i0 * lda..].as_ptr(), panel.as_ptr());
                    let cp = c[i0 * ldc + j0..].as_mut_ptr();
                    // SAFETY: as below.
                    unsafe {
                        dispatch_rows!(
                            tile_avx512_half,
                            mr,
                            [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2],
                            (k, ap, lda, bp, cp, ldc, w, accumulate)
                        );
                    }
                    i0 += mr;
                }
                continue;
            }
            while i0 < m {
                let mr = 8.min(m - i0);
                let (ap, bp) = (a[i0 * lda..].as_ptr(), panel.as_ptr());
                let cp = c[i0 * ldc + j0..].as_mut_ptr();
                // SAFETY: bounds asserted by gemm_packed (rows i0..i0+mr of A and C exist; the
                // masked stores touch only columns j0..j0+w < n).
                unsafe {
                    dispatch_rows!(tile_avx512, mr, [8, 7, 6, 5, 4, 3, 2], (k, ap, lda, bp, cp, ldc, w, accumulate));
                }
                i0 += mr;
            }
        }
    }

    /// `mask` lanes `0..w` of 8 (for maskload/maskstore).
    #[target_feature(enable = "avx2")]
    fn lane_mask(w: usize) -> __m256i {
        let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(w.min(8) as i32), idx)
    }

    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_avx2<const MR: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        bp: *const f32,
        c: *mut f32,
        ldc: usize,
        w: usize,
        accumulate: bool,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        for p in 0..k {
            // SAFETY (whole fn): as tile_avx512, with 16-float panel rows.
            let b0 = unsafe { _mm256_loadu_ps(bp.add(p * 16)) };
            let b1 = unsafe { _mm256_loadu_ps(bp.add(p * 16 + 8)) };
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_ps(unsafe { *a.add(i * lda + p) });
                row[0] = _mm256_fmadd_ps(av, b0, row[0]);
                row[1] = _mm256_fmadd_ps(av, b1, row[1]);
            }
        }
        let (m0, m1) = (lane_mask(w), lane_mask(w.saturating_sub(8)));
        for (i, row) in acc.iter().enumerate() {
            let cp = unsafe { c.add(i * ldc) };
            let (mut v0, mut v1) = (row[0], row[1]);
            if accumulate {
                v0 = _mm256_add_ps(v0, unsafe { _mm256_maskload_ps(cp, m0) });
                v1 = _mm256_add_ps(v1, unsafe { _mm256_maskload_ps(cp.add(8), m1) });
            }
            unsafe {
                _mm256_maskstore_ps(cp, m0, v0);
                _mm256_maskstore_ps(cp.add(8), m1, v1);
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn run_avx2(
        m: usize,
        a: &[f32],
        lda: usize,
        b: &PackedB,
        c: &mut [f32],
        ldc: usize,
        accumulate: bool,
    ) {
        let k = b.k;
        for (pi, panel) in b.data.chunks_exact(k * 16).enumerate() {
            let j0 = pi * 16;
            let w = 16.min(b.n - j0);
            let mut i0 = 0;
            while i0 < m {
                let mr = 6.min(m - i0);
                let (ap, bp) = (a[i0 * lda..].as_ptr(), panel.as_ptr());
                let cp = c[i0 * ldc + j0..].as_mut_ptr();
                // SAFETY: as in run_avx512.
                unsafe {
                    dispatch_rows!(tile_avx2, mr, [6, 5, 4, 3, 2], (k, ap, lda, bp, cp, ldc, w, accumulate));
                }
                i0 += mr;
            }
        }
    }
}

impl Drop for PackedB {
    fn drop(&mut self) {
        crate::pool::give(std::mem::take(&mut self.data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::set_forced_level;

    fn vals(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_add(99);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 9) as f32 / (1u32 << 22) as f32 - 1.0
            })
            .collect()
    }

    #[test]
    fn stacked_packing_equals_packing_the_concatenation() {
        let (f, h, n) = (3, 5, 37);
        let w = vals(f * n, 7);
        let u = vals(h * n, 8);
        let wu = [w.clone(), u.clone()].concat();
        for trans in [Trans::N, Trans::T] {
            let a = PackedB::pack_stacked(&[(&w, f), (&u, h)], n, n, trans);
            let b = match trans {
                Trans::N => PackedB::pack(&wu, n, f + h, n, trans),
                Trans::T => PackedB::pack(&wu, n, n, f + h, trans),
            };
            assert_eq!((a.k, a.n), (b.k, b.n));
            assert_eq!(a.data, b.data);
        }
    }

    #[test]
    fn every_level_matches_sgemm_over_odd_sizes() {
        let _level = crate::simd::test_level_lock(true);
        for lvl in [Level::Portable, Level::Avx2, Level::Avx512] {
            set_forced_level(Some(lvl));
            for &(m, n, k) in
                &[(1, 1, 1), (3, 17, 5), (8, 32, 7), (9, 33, 64), (13, 100, 31), (1, 512, 128), (20, 7, 0)]
            {
                for trans in [Trans::N, Trans::T] {
                    let (lda, ldc) = (k + 3, n + 5);
                    let ldb = if trans == Trans::N { n + 2 } else { k + 2 };
                    let brows = if trans == Trans::N { k } else { n };
                    let a = vals(m * lda, 1);
                    let b = vals(brows.max(1) * ldb, 2);
                    let c0 = vals(m * ldc, 3);
                    let pb = PackedB::pack(&b, ldb, k, n, trans);
                    for accumulate in [false, true] {
                        let mut got = c0.clone();
                        gemm_packed(m, &a, lda, &pb, &mut got, ldc, accumulate);
                        let mut want = c0.clone();
                        super::super::sgemm(
                            Trans::N,
                            trans,
                            m,
                            n,
                            k,
                            1.0,
                            &a,
                            lda,
                            &b,
                            ldb,
                            if accumulate { 1.0 } else { 0.0 },
                            &mut want,
                            ldc,
                            1,
                        );
                        for i in 0..got.len() {
                            assert!(
                                (got[i] - want[i]).abs() < 1e-4,
                                "{lvl:?} m={m} n={n} k={k} {trans:?} acc={accumulate} [{i}]"
                            );
                        }
                    }
                }
            }
        }
        set_forced_level(None);
    }
}
