//! Normalization, forward and backward, float32: statistics over each row (LayerNormalization,
//! RMSNormalization) and over each column (BatchNormalization), Keras's formulas.
//!
//! **Row norm** over a `(rows, cols)` matrix (the caller folds every non-normalized axis into rows):
//! ```text
//! m = mean(x) if center_stats else 0;   v = mean((x - m)²);   r = 1/√(v + ε)
//! y = x·inv + (β - m_o·inv),   inv = r·γ,   m_o = m if center_out else 0
//! ```
//! `center_stats = center_out = true` is LayerNormalization; `center_stats` alone is Keras's
//! deprecated `rms_scaling=True` (it scales x by the variance's rsqrt and does not centre it); both
//! false is RMSNormalization. The affine form `x·inv + res` is how Keras (TF) writes it, so
//! rounding follows it. Backward, with `u = dy·γ`, `d = x - m_o`, `a = x - m`:
//! ```text
//! dx = r·(u - [center_out]·mean(u)) - r³·a·mean(u·d),   dγ = Σ_rows dy·d·r,   dβ = Σ_rows dy
//! ```
//!
//! **Column norm** (BatchNormalization) over `rows` rows of `cols` channels, with row weights
//! `w ∈ {0, 1}` (0 for masked steps). In training the batch statistics are
//! `μ = Σ w·x / D`, `σ² = Σ w·(x - μ)² / D`, `D = Σ w` (plus 1e-7 when masked, as Keras divides);
//! every row (masked ones too) is normalized with them, `y = x·inv + (β - μ·inv)`, `inv = γ/√(σ² + ε)`.
//! In inference the moving statistics take their place. Backward, with `x̂ = (x - μ)·r`:
//! ```text
//! dβ = Σ dy,   dγ = Σ dy·x̂   (all rows),   dx = γ·r·(dy - w/D·(dβ + (x̂ - r·μ·(D-N)/D)·dγ))
//! ```
//! where `N = Σ w` (the `D - N` term is Keras's 1e-7, non-zero only when masked).
//! (inference: all `w = 0`, so `dx = γ·r·dy`).
//!
//! Design: memory-bound, so each pass reads its data once: per row, the mean and the centred sum
//! of squares are two passes over a row that is in L1 (two-pass statistics, which a float64
//! reference agrees with where a one-pass `Σx² - (Σx)²` would cancel), then one write. Rows are cut
//! into [`REDUCTION_PARTS`] fixed parts run in parallel; every sum over rows (dγ, dβ, the column
//! statistics) is formed per part and the parts are added in order, so results are bit-identical
//! whatever the thread count. Within a row, sums use 16 lanes (two AVX2 registers, one AVX-512).
// The kernels take each array as its own slice (x, dy, γ, statistics, outputs), as the others do.
#![allow(clippy::too_many_arguments)]
use super::REDUCTION_PARTS;
use rayon::prelude::*;

/// Which statistics a row norm uses (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowNormSpec {
    pub rows: usize,
    pub cols: usize,
    pub epsilon: f32,
    pub center_stats: bool,
    pub center_out: bool,
}

const LANES: usize = 16;

#[inline(always)]
fn lane_sum(acc: [f32; LANES]) -> f32 {
    // Pairwise, a fixed order.
    let mut a = acc;
    let mut w = LANES / 2;
    while w > 0 {
        for i in 0..w {
            a[i] += a[i + w];
        }
        w /= 2;
    }
    a[0]
}

#[inline(always)]
fn sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut it = v.chunks_exact(LANES);
    for c in &mut it {
        for i in 0..LANES {
            acc[i] += c[i];
        }
    }
    let mut s = lane_sum(acc);
    for &x in it.remainder() {
        s += x;
    }
    s
}

#[inline(always)]
fn centred_sq_sum(v: &[f32], m: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut it = v.chunks_exact(LANES);
    for c in &mut it {
        for i in 0..LANES {
            let d = c[i] - m;
            acc[i] += d * d;
        }
    }
    let mut s = lane_sum(acc);
    for &x in it.remainder() {
        let d = x - m;
        s += d * d;
    }
    s
}

/// `(Σ a·b, Σ a)` over two rows.
#[inline(always)]
fn dot_and_sum(a: &[f32], b: &[f32]) -> (f32, f32) {
    let mut acc = [0.0f32; LANES];
    let mut accs = [0.0f32; LANES];
    let n = a.len() / LANES * LANES;
    for (ca, cb) in a[..n].chunks_exact(LANES).zip(b[..n].chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] += ca[i] * cb[i];
            accs[i] += ca[i];
        }
    }
    let (mut s, mut t) = (lane_sum(acc), lane_sum(accs));
    for (&x, &y) in a[n..].iter().zip(&b[n..]) {
        s += x * y;
        t += x;
    }
    (s, t)
}

/// Rows of each of the fixed parts (the last ones may be empty).
fn part_rows(rows: usize) -> usize {
    rows.div_ceil(REDUCTION_PARTS).max(1)
}

crate::simd::multiversion! {
    /// Forward over consecutive rows; `mean`, `rstd` get one value per row.
    fn row_forward_part(spec: RowNormSpec, x: &[f32], gamma: Option<&[f32]>, beta: Option<&[f32]>, y: &mut [f32],
                        mean: &mut [f32], rstd: &mut [f32], inv: &mut [f32], res: &mut [f32]) {
        let c = spec.cols;
        let inv_c = 1.0 / c as f32;
        for (((xr, yr), m_out), r_out) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)).zip(mean.iter_mut()).zip(rstd.iter_mut()) {
            let m = if spec.center_stats { sum(xr) * inv_c } else { 0.0 };
            let v = centred_sq_sum(xr, m) * inv_c;
            let r = 1.0 / (v + spec.epsilon).sqrt();
            *m_out = m;
            *r_out = r;
            let mo = if spec.center_out { m } else { 0.0 };
            match gamma {
                Some(g) => for (o, &gv) in inv.iter_mut().zip(g) { *o = r * gv; },
                None => inv.fill(r),
            }
            match beta {
                Some(b) => for ((o, &bv), &iv) in res.iter_mut().zip(b).zip(inv.iter()) { *o = bv - mo * iv; },
                None => for (o, &iv) in res.iter_mut().zip(inv.iter()) { *o = -mo * iv; },
            }
            for (((o, &xv), &iv), &rv) in yr.iter_mut().zip(xr).zip(inv.iter()).zip(res.iter()) {
                *o = xv * iv + rv;
            }
        }
    }
}

/// Row-norm forward: `y` `(rows, cols)`, and per row the statistic mean `m` and `r = 1/√(v+ε)`
/// that [`row_backward`] takes.
pub fn row_forward(
    spec: RowNormSpec,
    x: &[f32],
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    y: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
) {
    let RowNormSpec { rows, cols, .. } = spec;
    assert_eq!(x.len(), rows * cols, "row norm: x");
    assert_eq!(y.len(), rows * cols, "row norm: y");
    assert!(mean.len() == rows && rstd.len() == rows, "row norm: statistics");
    assert!(gamma.is_none_or(|g| g.len() == cols) && beta.is_none_or(|b| b.len() == cols), "row norm: γ, β");
    if rows == 0 || cols == 0 {
        // Keras: the mean and variance of no values are NaN; nothing to write for no rows.
        mean.fill(f32::NAN);
        rstd.fill(f32::NAN);
        return;
    }
    let pr = part_rows(rows);
    x.par_chunks(pr * cols)
        .zip(y.par_chunks_mut(pr * cols))
        .zip(mean.par_chunks_mut(pr))
        .zip(rstd.par_chunks_mut(pr))
        .for_each(|(((xp, yp), mp), rp)| {
            let (mut inv, mut res) = (vec![0.0f32; cols], vec![0.0f32; cols]);
            row_forward_part(spec, xp, gamma, beta, yp, mp, rp, &mut inv, &mut res);
        });
}

crate::simd::multiversion! {
    /// Backward over consecutive rows; adds this part's dγ (`dg`) and dβ (`db`) sums.
    fn row_backward_part(spec: RowNormSpec, x: &[f32], dy: &[f32], gamma: Option<&[f32]>, mean: &[f32], rstd: &[f32],
                         dx: Option<&mut [f32]>, dg: &mut [f32], db: &mut [f32], u: &mut [f32], d: &mut [f32]) {
        let mut dx = dx;
        let c = spec.cols;
        let inv_c = 1.0 / c as f32;
        for (i, (xr, gr)) in x.chunks_exact(c).zip(dy.chunks_exact(c)).enumerate() {
            let (m, r) = (mean[i], rstd[i]);
            let mo = if spec.center_out { m } else { 0.0 };
            match gamma {
                Some(g) => for ((o, &a), &b) in u.iter_mut().zip(gr).zip(g) { *o = a * b; },
                None => u.copy_from_slice(gr),
            }
            for (o, &xv) in d.iter_mut().zip(xr) { *o = xv - mo; }
            for (((acc_g, acc_b), &gv), &dv) in dg.iter_mut().zip(db.iter_mut()).zip(gr).zip(d.iter()) {
                *acc_g += gv * dv * r;
                *acc_b += gv;
            }
            if let Some(dxa) = dx.as_deref_mut() {
                let (sud, su) = dot_and_sum(u, d);
                let mu = if spec.center_out { su * inv_c } else { 0.0 };
                let k = r * r * r * sud * inv_c;
                let shift = mo - m; // a = x - m = d + (m_o - m)
                for ((o, &uv), &dv) in dxa[i * c..(i + 1) * c].iter_mut().zip(u.iter()).zip(d.iter()) {
                    *o = r * (uv - mu) - k * (dv + shift);
                }
            }
        }
    }
}

/// Row-norm backward from the forward's `mean`, `rstd`: `dx` (when wanted) is written in full;
/// `dgamma`, `dbeta` (when wanted) are written, not accumulated.
#[allow(clippy::too_many_arguments)]
pub fn row_backward(
    spec: RowNormSpec,
    x: &[f32],
    dy: &[f32],
    gamma: Option<&[f32]>,
    mean: &[f32],
    rstd: &[f32],
    dx: Option<&mut [f32]>,
    dgamma: Option<&mut [f32]>,
    dbeta: Option<&mut [f32]>,
) {
    let RowNormSpec { rows, cols, .. } = spec;
    assert!(x.len() == rows * cols && dy.len() == rows * cols, "row norm backward: x, dy");
    assert!(mean.len() == rows && rstd.len() == rows, "row norm backward: statistics");
    assert!(gamma.is_none_or(|g| g.len() == cols), "row norm backward: γ");
    assert!(dx.as_ref().is_none_or(|v| v.len() == rows * cols), "row norm backward: dx");
    let pr = part_rows(rows);
    let parts = if rows == 0 { 0 } else { rows.div_ceil(pr) };
    let mut partial = vec![0.0f32; 2 * parts * cols];
    if rows > 0 && cols > 0 {
        let dx_parts: Vec<Option<&mut [f32]>> = match dx {
            Some(v) => v.chunks_mut(pr * cols).map(Some).collect(),
            None => (0..parts).map(|_| None).collect(),
        };
        partial.par_chunks_mut(2 * cols).zip(dx_parts).enumerate().for_each(|(p, (acc, dxp))| {
            let r0 = p * pr;
            let r1 = (r0 + pr).min(rows);
            let (dg, db) = acc.split_at_mut(cols);
            let (mut u, mut d) = (vec![0.0f32; cols], vec![0.0f32; cols]);
            row_backward_part(
                spec,
                &x[r0 * cols..r1 * cols],
                &dy[r0 * cols..r1 * cols],
                gamma,
                &mean[r0..r1],
                &rstd[r0..r1],
                dxp,
                dg,
                db,
                &mut u,
                &mut d,
            );
        });
    }
    for (out, offset) in [(dgamma, 0), (dbeta, cols)] {
        if let Some(out) = out {
            assert_eq!(out.len(), cols, "row norm backward: dγ, dβ");
            out.fill(0.0);
            for part in partial.chunks_exact(2 * cols) {
                for (o, &v) in out.iter_mut().zip(&part[offset..offset + cols]) {
                    *o += v;
                }
            }
        }
    }
}

/// The weight of each row in the column statistics.
#[derive(Clone, Copy)]
pub enum RowWeights<'a> {
    /// Every row counts.
    All,
    /// Rows are `(batch, steps)` pairs; row `b·steps + t` counts when `t < lengths[b]`.
    Lengths { lengths: &'a [usize], steps: usize },
    /// Row `r` counts when `rows[r] != 0` (a boolean `(batch, steps)` mask of any pattern).
    Rows(&'a [u8]),
}

impl RowWeights<'_> {
    #[inline(always)]
    fn weight(&self, row: usize) -> f32 {
        match *self {
            RowWeights::All => 1.0,
            RowWeights::Lengths { lengths, steps } => {
                if row % steps < lengths[row / steps] {
                    1.0
                } else {
                    0.0
                }
            }
            RowWeights::Rows(flags) => f32::from(flags[row] != 0),
        }
    }

    fn check(&self, rows: usize) {
        match *self {
            RowWeights::Lengths { lengths, steps } => {
                assert!(steps > 0 && rows == lengths.len() * steps, "column norm: lengths")
            }
            RowWeights::Rows(flags) => assert_eq!(flags.len(), rows, "column norm: row mask"),
            RowWeights::All => {}
        }
    }
}

crate::simd::multiversion! {
    /// `acc[c] += w·x[r, c]` over the part's rows (`first` = the part's first row index).
    fn weighted_col_sums(x: &[f32], cols: usize, w: RowWeights, first: usize, acc: &mut [f32]) {
        for (i, row) in x.chunks_exact(cols).enumerate() {
            if w.weight(first + i) != 0.0 {
                for (a, &v) in acc.iter_mut().zip(row) { *a += v; }
            }
        }
    }
}

crate::simd::multiversion! {
    /// `acc[c] += w·(x[r, c] - μ[c])²` over the part's rows.
    fn weighted_col_sq(x: &[f32], cols: usize, w: RowWeights, first: usize, mean: &[f32], acc: &mut [f32]) {
        for (i, row) in x.chunks_exact(cols).enumerate() {
            if w.weight(first + i) != 0.0 {
                for ((a, &v), &m) in acc.iter_mut().zip(row).zip(mean) { let d = v - m; *a += d * d; }
            }
        }
    }
}

/// Per-part column sums, added in part order (deterministic for any thread count).
fn column_reduce(rows: usize, cols: usize, f: impl Fn(usize, usize, &mut [f32]) + Sync, out: &mut [f32]) {
    let pr = part_rows(rows);
    let parts = rows.div_ceil(pr);
    let mut partial = vec![0.0f32; parts * cols];
    partial.par_chunks_mut(cols).enumerate().for_each(|(p, acc)| {
        let r0 = p * pr;
        f(r0, (r0 + pr).min(rows), acc);
    });
    out.fill(0.0);
    for part in partial.chunks_exact(cols) {
        for (o, &v) in out.iter_mut().zip(part) {
            *o += v;
        }
    }
}

/// Batch statistics of the columns: `mean`, `variance` `(cols,)`, as Keras's moments (masked:
/// divided by `Σw + 1e-7`). Returns the divisor `D`.
pub fn column_moments(
    x: &[f32],
    rows: usize,
    cols: usize,
    w: RowWeights,
    mean: &mut [f32],
    variance: &mut [f32],
) -> f32 {
    assert_eq!(x.len(), rows * cols, "column norm: x");
    assert!(mean.len() == cols && variance.len() == cols, "column norm: statistics");
    w.check(rows);
    let denom = match w {
        RowWeights::All => rows as f32,
        RowWeights::Lengths { .. } | RowWeights::Rows(_) => (0..rows).map(|r| w.weight(r)).sum::<f32>() + 1e-7,
    };
    if cols == 0 {
        return denom;
    }
    if rows == 0 {
        mean.fill(f32::NAN);
        variance.fill(f32::NAN);
        return denom;
    }
    column_reduce(rows, cols, |r0, r1, acc| weighted_col_sums(&x[r0 * cols..r1 * cols], cols, w, r0, acc), mean);
    for m in mean.iter_mut() {
        *m /= denom;
    }
    let mean_ro: &[f32] = mean;
    column_reduce(
        rows,
        cols,
        |r0, r1, acc| weighted_col_sq(&x[r0 * cols..r1 * cols], cols, w, r0, mean_ro, acc),
        variance,
    );
    for v in variance.iter_mut() {
        *v /= denom;
    }
    denom
}

crate::simd::multiversion! {
    fn affine_rows(x: &[f32], scale: &[f32], shift: &[f32], y: &mut [f32]) {
        let c = scale.len();
        for (xr, yr) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
            for (((o, &v), &s), &t) in yr.iter_mut().zip(xr).zip(scale).zip(shift) { *o = v * s + t; }
        }
    }
}

/// `y = x·inv + (β - μ·inv)` per column, `inv = γ/√(var + ε)`; returns `r = 1/√(var + ε)` in `rstd`.
#[allow(clippy::too_many_arguments)]
pub fn column_normalize(
    x: &[f32],
    rows: usize,
    cols: usize,
    mean: &[f32],
    variance: &[f32],
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    epsilon: f32,
    y: &mut [f32],
    rstd: &mut [f32],
) {
    assert!(x.len() == rows * cols && y.len() == rows * cols, "column norm: x, y");
    assert!(mean.len() == cols && variance.len() == cols && rstd.len() == cols, "column norm: statistics");
    assert!(gamma.is_none_or(|g| g.len() == cols) && beta.is_none_or(|b| b.len() == cols), "column norm: γ, β");
    let mut scale = vec![0.0f32; cols];
    let mut shift = vec![0.0f32; cols];
    for c in 0..cols {
        let r = 1.0 / (variance[c] + epsilon).sqrt();
        rstd[c] = r;
        let inv = r * gamma.map_or(1.0, |g| g[c]);
        scale[c] = inv;
        shift[c] = beta.map_or(0.0, |b| b[c]) - mean[c] * inv;
    }
    if rows == 0 || cols == 0 {
        return;
    }
    let block = super::block_rows(rows, crate::threads::current_threads(), 1024);
    x.par_chunks(block * cols)
        .zip(y.par_chunks_mut(block * cols))
        .for_each(|(xb, yb)| affine_rows(xb, &scale, &shift, yb));
}

crate::simd::multiversion! {
    /// `acc_b[c] += dy`, `acc_g[c] += dy·(x - μ)·r` over the part's rows.
    fn col_grad_sums(x: &[f32], dy: &[f32], mean: &[f32], rstd: &[f32], acc_g: &mut [f32], acc_b: &mut [f32]) {
        let c = mean.len();
        for (xr, gr) in x.chunks_exact(c).zip(dy.chunks_exact(c)) {
            for (((((ag, ab), &xv), &gv), &m), &r) in
                acc_g.iter_mut().zip(acc_b.iter_mut()).zip(xr).zip(gr).zip(mean).zip(rstd)
            {
                *ag += gv * (xv - m) * r;
                *ab += gv;
            }
        }
    }
}

crate::simd::multiversion! {
    /// `dx = k1·dy - w·(k2 + k3·(x - μ))` per row (the constants fold γ, r, D, dβ, dγ).
    fn col_dx_rows(x: &[f32], dy: &[f32], mean: &[f32], k1: &[f32], k2: &[f32], k3: &[f32], w: RowWeights,
                   first: usize, dx: &mut [f32]) {
        let c = mean.len();
        for (i, ((xr, gr), or)) in x.chunks_exact(c).zip(dy.chunks_exact(c)).zip(dx.chunks_exact_mut(c)).enumerate() {
            let wr = w.weight(first + i);
            for ((((((o, &xv), &gv), &m), &a), &b), &k) in or.iter_mut().zip(xr).zip(gr).zip(mean).zip(k1).zip(k2).zip(k3) {
                *o = a * gv - wr * (b + k * (xv - m));
            }
        }
    }
}

/// Column-norm backward. `training`: the statistics were the batch's (with divisor `denom` and
/// weights `w`), so dx flows through them; otherwise they were constants (inference). `dx`,
/// `dgamma`, `dbeta` (each when wanted) are written in full.
#[allow(clippy::too_many_arguments)]
pub fn column_backward(
    x: &[f32],
    dy: &[f32],
    rows: usize,
    cols: usize,
    mean: &[f32],
    rstd: &[f32],
    gamma: Option<&[f32]>,
    training: bool,
    w: RowWeights,
    denom: f32,
    dx: Option<&mut [f32]>,
    dgamma: Option<&mut [f32]>,
    dbeta: Option<&mut [f32]>,
) {
    assert!(x.len() == rows * cols && dy.len() == rows * cols, "column norm backward: x, dy");
    assert!(mean.len() == cols && rstd.len() == cols, "column norm backward: statistics");
    assert!(gamma.is_none_or(|g| g.len() == cols), "column norm backward: γ");
    w.check(rows);
    let mut dg = vec![0.0f32; cols];
    let mut dbv = vec![0.0f32; cols];
    if rows > 0 && cols > 0 {
        let pr = part_rows(rows);
        let parts = rows.div_ceil(pr);
        let mut partial = vec![0.0f32; 2 * parts * cols];
        partial.par_chunks_mut(2 * cols).enumerate().for_each(|(p, acc)| {
            let r0 = p * pr;
            let r1 = (r0 + pr).min(rows);
            let (ag, ab) = acc.split_at_mut(cols);
            col_grad_sums(&x[r0 * cols..r1 * cols], &dy[r0 * cols..r1 * cols], mean, rstd, ag, ab);
        });
        for part in partial.chunks_exact(2 * cols) {
            for c in 0..cols {
                dg[c] += part[c];
                dbv[c] += part[cols + c];
            }
        }
    }
    if let Some(dx) = dx {
        assert_eq!(dx.len(), rows * cols, "column norm backward: dx");
        let mut k1 = vec![0.0f32; cols];
        let mut k2 = vec![0.0f32; cols];
        let mut k3 = vec![0.0f32; cols];
        // Masked, Keras divides by D = N + 1e-7 (in float32), so Σw·(x - μ) = μ·(D - N) is not 0 and
        // the variance's gradient keeps a term in it: x̂ becomes x̂ - r·μ·(D - N)/D below. It matters
        // when few steps are valid (r is large and the masked rows, normalized too, feel it).
        let excess = match w {
            RowWeights::All => 0.0,
            RowWeights::Lengths { .. } | RowWeights::Rows(_) => denom - (0..rows).map(|r| w.weight(r)).sum::<f32>(),
        };
        for c in 0..cols {
            let gr = gamma.map_or(1.0, |g| g[c]) * rstd[c];
            k1[c] = gr;
            if training {
                // dx = γr·dy - w·(γr/D)·(dβ + (x̂ - r·μ·(D - N)/D)·dγ),   x̂ = (x - μ)·r
                k3[c] = gr / denom * dg[c] * rstd[c];
                k2[c] = gr / denom * dbv[c] - k3[c] * mean[c] * excess / denom;
            }
        }
        if rows > 0 && cols > 0 {
            let block = super::block_rows(rows, crate::threads::current_threads(), 1024);
            let wt = if training { w } else { RowWeights::All };
            dx.par_chunks_mut(block * cols).enumerate().for_each(|(bi, dxb)| {
                let r0 = bi * block;
                let r1 = r0 + dxb.len() / cols;
                col_dx_rows(&x[r0 * cols..r1 * cols], &dy[r0 * cols..r1 * cols], mean, &k1, &k2, &k3, wt, r0, dxb);
            });
        }
    }
    if let Some(out) = dgamma {
        out.copy_from_slice(&dg);
    }
    if let Some(out) = dbeta {
        out.copy_from_slice(&dbv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 1.0
            })
            .collect()
    }

    fn loss(spec: RowNormSpec, x: &[f32], g: &[f32], b: &[f32], dy: &[f32]) -> f64 {
        // float64 reference forward, dotted with dy
        let c = spec.cols;
        let mut total = 0.0f64;
        for (i, row) in x.chunks(c).enumerate() {
            let xr: Vec<f64> = row.iter().map(|&v| v as f64).collect();
            let m = if spec.center_stats { xr.iter().sum::<f64>() / c as f64 } else { 0.0 };
            let v = xr.iter().map(|&a| (a - m) * (a - m)).sum::<f64>() / c as f64;
            let r = 1.0 / (v + spec.epsilon as f64).sqrt();
            let mo = if spec.center_out { m } else { 0.0 };
            for j in 0..c {
                let y = (xr[j] - mo) * r * g[j] as f64 + b[j] as f64;
                total += y * dy[i * c + j] as f64;
            }
        }
        total
    }

    #[test]
    fn row_norm_matches_f64_and_finite_differences() {
        for (center_stats, center_out) in [(true, true), (true, false), (false, false)] {
            let spec = RowNormSpec { rows: 5, cols: 19, epsilon: 1e-3, center_stats, center_out };
            let n = spec.rows * spec.cols;
            let (x, dy, g, b) = (vals(n, 1), vals(n, 2), vals(spec.cols, 3), vals(spec.cols, 4));
            let mut y = vec![0.0; n];
            let (mut m, mut r) = (vec![0.0; spec.rows], vec![0.0; spec.rows]);
            row_forward(spec, &x, Some(&g), Some(&b), &mut y, &mut m, &mut r);
            let got: f64 = y.iter().zip(&dy).map(|(&a, &d)| a as f64 * d as f64).sum();
            assert!((got - loss(spec, &x, &g, &b, &dy)).abs() < 1e-4);
            let (mut dx, mut dg, mut db) = (vec![0.0; n], vec![0.0; spec.cols], vec![0.0; spec.cols]);
            row_backward(spec, &x, &dy, Some(&g), &m, &r, Some(&mut dx), Some(&mut dg), Some(&mut db));
            for k in [0, 7, 40, n - 1] {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[k] += 1e-2;
                xm[k] -= 1e-2;
                let fd = (loss(spec, &xp, &g, &b, &dy) - loss(spec, &xm, &g, &b, &dy)) / 2e-2;
                assert!((fd - dx[k] as f64).abs() < 2e-3 * (1.0 + fd.abs()), "dx[{k}] {} vs {fd}", dx[k]);
            }
            let db_ref: Vec<f32> =
                (0..spec.cols).map(|j| (0..spec.rows).map(|i| dy[i * spec.cols + j]).sum()).collect();
            for (a, b) in db.iter().zip(&db_ref) {
                assert!((a - b).abs() < 1e-5);
            }
            let _ = dg;
        }
    }

    #[test]
    fn column_norm_gradients_match_finite_differences() {
        let (rows, cols) = (12, 3);
        let (x, dy, g) = (vals(rows * cols, 5), vals(rows * cols, 6), vals(cols, 7));
        let lengths = [4usize, 2, 3];
        let w = RowWeights::Lengths { lengths: &lengths, steps: 4 };
        let f = |x: &[f32]| -> f64 {
            let (mut m, mut v) = (vec![0.0; cols], vec![0.0; cols]);
            column_moments(x, rows, cols, w, &mut m, &mut v);
            let (mut y, mut r) = (vec![0.0; rows * cols], vec![0.0; cols]);
            column_normalize(x, rows, cols, &m, &v, Some(&g), None, 1e-3, &mut y, &mut r);
            y.iter().zip(&dy).map(|(&a, &d)| a as f64 * d as f64).sum()
        };
        let (mut m, mut v) = (vec![0.0; cols], vec![0.0; cols]);
        let denom = column_moments(&x, rows, cols, w, &mut m, &mut v);
        let (mut y, mut r) = (vec![0.0; rows * cols], vec![0.0; cols]);
        column_normalize(&x, rows, cols, &m, &v, Some(&g), None, 1e-3, &mut y, &mut r);
        let mut dx = vec![0.0; rows * cols];
        column_backward(&x, &dy, rows, cols, &m, &r, Some(&g), true, w, denom, Some(&mut dx), None, None);
        for k in 0..rows * cols {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[k] += 1e-2;
            xm[k] -= 1e-2;
            let fd = (f(&xp) - f(&xm)) / 2e-2;
            assert!((fd - dx[k] as f64).abs() < 5e-3 * (1.0 + fd.abs()), "dx[{k}] {} vs {fd}", dx[k]);
        }
    }
}
