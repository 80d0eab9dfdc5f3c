//! 1-D pooling over channels-last sequences `(batch, steps, channels)`, forward and backward, Keras 3
//! semantics.
//!
//! Windows: output step `t` covers input steps `t·s − p .. t·s − p + pool_size`, clipped to the
//! input (`s` = stride, `p` = left padding). Padding follows [`window_geometry`] (`valid`: none;
//! `same`: `ceil(steps/s)` outputs, total padding `max((out−1)·s + pool_size − steps, 0)`, the smaller
//! half on the left). Padded cells never take part: for max pooling they act as −∞, for average
//! pooling they are not counted (the divisor is the number of real cells in the window), as in
//! Keras/TensorFlow. With `same` every window holds at least one real cell.
//!
//! - max: `y = max` over the window. NaN propagates (a window holding a NaN outputs NaN). Backward
//!   recomputes the argmax from `x` (nothing is saved by the forward pass) and sends `dy` to the
//!   *first* maximal cell of the window (lowest step) when there are ties, or to the first NaN. Cells
//!   in several overlapping windows (stride < pool_size) sum the gradients of every window that
//!   picked them.
//! - average: `y = Σ window / count`; backward spreads `dy / count` equally over the counted cells.
//! - global max / average: over all steps, output `(batch, channels)` (Keras `keepdims=False`).
//!   Global max backward sends `dy` to the first maximal step of each channel. `steps` must be > 0.
//!
//! Design: forward runs over blocks of the flattened `batch × out_steps` rows, one window per output
//! row, every loop running along the contiguous channel axis (vectorized, multiversioned). Backward
//! is a gather, not a scatter: each task owns a block of input rows of one sample, zeroes it and adds
//! the gradient of every window overlapping it (a window straddling two blocks is evaluated by
//! both, each keeping its own rows), so tasks never write the same memory and need no reduction.
use super::conv1d::{window_geometry, Padding};
use crate::simd::multiversion;
use rayon::prelude::*;

/// Output rows per forward task and input rows per backward task.
const BLOCK_ROWS: usize = 256;

/// Shape and options of one pooling call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool1dSpec {
    pub batch: usize,
    pub steps: usize,
    pub channels: usize,
    pub pool_size: usize,
    pub stride: usize,
    /// `Valid` or `Same` (Keras pooling has no `causal`).
    pub padding: Padding,
}

impl Pool1dSpec {
    /// Checks what the kernels rely on; the error says what is wrong (callers add the op name).
    pub fn check(&self) -> Result<(), String> {
        if self.pool_size == 0 {
            return Err("pool_size must be a positive integer; received 0".into());
        }
        if self.stride == 0 {
            return Err("strides must be a positive integer; received 0".into());
        }
        if self.padding == Padding::Causal {
            return Err("padding must be \"valid\" or \"same\" for pooling; received \"causal\"".into());
        }
        if self.geometry().is_none() {
            return Err(format!(
                "the input has {} steps, fewer than pool_size {} with padding=\"valid\"; use padding=\"same\" or a longer input",
                self.steps, self.pool_size
            ));
        }
        Ok(())
    }

    fn geometry(&self) -> Option<(usize, usize)> {
        window_geometry(self.steps, self.pool_size, self.stride, 1, self.padding)
    }

    /// Output steps. Panics if [`check`](Self::check) would fail.
    pub fn out_steps(&self) -> usize {
        self.geometry().expect("pool1d: input shorter than pool_size with padding=valid").0
    }

    /// Padded cells before the first step.
    pub fn pad_left(&self) -> usize {
        self.geometry().expect("pool1d: input shorter than pool_size with padding=valid").1
    }

    /// Input steps `[start, end)` covered by output step `t` (never empty for a checked spec).
    fn window(&self, t: usize, pad: usize) -> (usize, usize) {
        let start = (t * self.stride) as isize - pad as isize;
        let end = (start + self.pool_size as isize).min(self.steps as isize);
        (start.max(0) as usize, end.max(0) as usize)
    }

    /// Output steps whose window overlaps input steps `[i0, i1)`, as a range `[t0, t1)`.
    fn windows_touching(&self, i0: usize, i1: usize, lo: usize, pad: usize) -> (usize, usize) {
        let (s, p, pad) = (self.stride as isize, self.pool_size as isize, pad as isize);
        // t·s − pad ≤ i1 − 1  and  t·s − pad + p − 1 ≥ i0
        let t1 = ((i1 as isize - 1 + pad).div_euclid(s) + 1).clamp(0, lo as isize);
        let t0 = (-((-(i0 as isize + pad - p + 1)).div_euclid(s))).clamp(0, t1);
        (t0 as usize, t1 as usize)
    }

    fn assert_check(&self, what: &str) {
        if let Err(e) = self.check() {
            panic!("{what}: {e}");
        }
    }
}

multiversion! {
    /// `best = max(best, row)` elementwise; NaN wins (and stays).
    fn max_into(best: &mut [f32], row: &[f32]) {
        for (b, &v) in best.iter_mut().zip(row) {
            if v > *b || (v.is_nan() && !b.is_nan()) { *b = v; }
        }
    }
}
multiversion! {
    /// [`max_into`] also recording, per channel, the index `j` of the row that won (first wins ties).
    fn argmax_into(best: &mut [f32], idx: &mut [u32], row: &[f32], j: u32) {
        for ((b, i), &v) in best.iter_mut().zip(idx.iter_mut()).zip(row) {
            if v > *b || (v.is_nan() && !b.is_nan()) { *b = v; *i = j; }
        }
    }
}
multiversion! {
    fn add_into(acc: &mut [f32], row: &[f32]) {
        for (a, &v) in acc.iter_mut().zip(row) { *a += v; }
    }
}
multiversion! {
    fn div_by(acc: &mut [f32], n: f32) {
        for a in acc.iter_mut() { *a /= n; }
    }
}

multiversion! {
    /// `dx = g` in the channels whose window maximum is row `j` (`idx == j`), 0 elsewhere.
    fn select_into(dx: &mut [f32], g: &[f32], idx: &[u32], j: u32) {
        for ((d, &v), &i) in dx.iter_mut().zip(g).zip(idx) { *d = if i == j { v } else { 0.0 }; }
    }
}

/// Per channel, the value and step (relative to `rows`' first row) of the first maximum of `rows`
/// (`n ≥ 1` rows of `c` channels).
fn window_argmax(rows: &[f32], c: usize, best: &mut [f32], idx: &mut [u32]) {
    best.copy_from_slice(&rows[..c]);
    idx.fill(0);
    for (j, row) in rows.chunks_exact(c).enumerate().skip(1) {
        argmax_into(best, idx, row, j as u32);
    }
}

/// Runs `f(first_row, out_block)` over blocks of the rows of `out` (`width` floats per row).
fn for_row_blocks(out: &mut [f32], width: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let rows = out.len() / width;
    let rb = super::block_rows(rows, crate::threads::current_threads(), BLOCK_ROWS);
    out.par_chunks_mut(rb * width).enumerate().for_each(|(i, ob)| f(i * rb, ob));
}

/// Runs `f(sample, first_step, dx_block)` over blocks of input rows of each sample of `dx`.
fn for_input_blocks(dx: &mut [f32], steps: usize, c: usize, f: impl Fn(usize, usize, &mut [f32]) + Sync) {
    dx.par_chunks_mut(steps * c).enumerate().for_each(|(b, dxs)| {
        dxs.par_chunks_mut(BLOCK_ROWS * c).enumerate().for_each(|(blk, dxb)| f(b, blk * BLOCK_ROWS, dxb));
    });
}

fn check_lengths(sp: &Pool1dSpec, what: &str, x_len: usize, y_len: usize) {
    assert_eq!(x_len, sp.batch * sp.steps * sp.channels, "{what}: x");
    assert_eq!(y_len, sp.batch * sp.out_steps() * sp.channels, "{what}: y");
}

/// Max pooling: `out` is `batch × out_steps × channels`, fully written.
pub fn max_forward(sp: &Pool1dSpec, x: &[f32], out: &mut [f32]) {
    sp.assert_check("max_pool1d forward");
    check_lengths(sp, "max_pool1d forward", x.len(), out.len());
    let (lo, pad, c, l) = (sp.out_steps(), sp.pad_left(), sp.channels, sp.steps);
    if out.is_empty() {
        return;
    }
    for_row_blocks(out, c, |r0, ob| {
        for (j, orow) in ob.chunks_exact_mut(c).enumerate() {
            let (b, t) = ((r0 + j) / lo, (r0 + j) % lo);
            let (a, e) = sp.window(t, pad);
            let rows = &x[(b * l + a) * c..(b * l + e) * c];
            orow.copy_from_slice(&rows[..c]);
            for row in rows.chunks_exact(c).skip(1) {
                max_into(orow, row);
            }
        }
    });
}

/// Gradient of [`max_forward`] by `x`, recomputing the argmax from `x`; `dx` is fully written.
pub fn max_backward(sp: &Pool1dSpec, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    sp.assert_check("max_pool1d backward");
    check_lengths(sp, "max_pool1d backward", x.len(), dy.len());
    assert_eq!(dx.len(), x.len(), "max_pool1d backward: dx");
    let (lo, pad, c, l) = (sp.out_steps(), sp.pad_left(), sp.channels, sp.steps);
    if dx.is_empty() {
        return;
    }
    if sp.stride >= sp.pool_size && sp.batch >= 4 * crate::threads::current_threads() {
        return max_backward_disjoint(sp, x, dy, dx);
    }
    for_input_blocks(dx, l, c, |b, i0, dxb| {
        dxb.fill(0.0);
        let i1 = i0 + dxb.len() / c;
        let (t0, t1) = sp.windows_touching(i0, i1, lo, pad);
        let (mut best, mut idx) = (vec![0.0f32; c], vec![0u32; c]);
        for t in t0..t1 {
            let (a, e) = sp.window(t, pad);
            window_argmax(&x[(b * l + a) * c..(b * l + e) * c], c, &mut best, &mut idx);
            let g = &dy[(b * lo + t) * c..(b * lo + t + 1) * c];
            for ch in 0..c {
                let i = a + idx[ch] as usize;
                if i >= i0 && i < i1 {
                    dxb[(i - i0) * c + ch] += g[ch];
                }
            }
        }
    });
}

/// [`max_backward`] when windows do not overlap (`stride >= pool_size`, the usual
/// `MaxPooling1D(2)`): every input row belongs to at most one window, so each row is written once,
/// as `dy` or 0 per channel, with no zeroing pass and no scatter. Tasks take whole samples (many of
/// them when samples are short, as in a CNN-LSTM's sub-sequences).
fn max_backward_disjoint(sp: &Pool1dSpec, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (lo, pad, c, l) = (sp.out_steps(), sp.pad_left(), sp.channels, sp.steps);
    let per_task = (BLOCK_ROWS / l.max(1)).max(1);
    dx.par_chunks_mut(per_task * l * c).enumerate().for_each(|(k, dxs)| {
        let (mut best, mut idx) = (vec![0.0f32; c], vec![0u32; c]);
        for (j, dxb) in dxs.chunks_exact_mut(l * c).enumerate() {
            let b = k * per_task + j;
            let mut done = 0; // rows of this sample written so far
            for t in 0..lo {
                let (a, e) = sp.window(t, pad);
                dxb[done * c..a * c].fill(0.0);
                window_argmax(&x[(b * l + a) * c..(b * l + e) * c], c, &mut best, &mut idx);
                let g = &dy[(b * lo + t) * c..(b * lo + t + 1) * c];
                for i in a..e {
                    select_into(&mut dxb[i * c..(i + 1) * c], g, &idx, (i - a) as u32);
                }
                done = e;
            }
            dxb[done * c..].fill(0.0);
        }
    });
}

/// Average pooling (padding not counted): `out` is `batch × out_steps × channels`, fully written.
pub fn avg_forward(sp: &Pool1dSpec, x: &[f32], out: &mut [f32]) {
    sp.assert_check("avg_pool1d forward");
    check_lengths(sp, "avg_pool1d forward", x.len(), out.len());
    let (lo, pad, c, l) = (sp.out_steps(), sp.pad_left(), sp.channels, sp.steps);
    if out.is_empty() {
        return;
    }
    for_row_blocks(out, c, |r0, ob| {
        for (j, orow) in ob.chunks_exact_mut(c).enumerate() {
            let (b, t) = ((r0 + j) / lo, (r0 + j) % lo);
            let (a, e) = sp.window(t, pad);
            let rows = &x[(b * l + a) * c..(b * l + e) * c];
            orow.copy_from_slice(&rows[..c]);
            for row in rows.chunks_exact(c).skip(1) {
                add_into(orow, row);
            }
            div_by(orow, (e - a) as f32);
        }
    });
}

/// Gradient of [`avg_forward`] by `x` (it depends on `x` only through its shape); `dx` fully written.
pub fn avg_backward(sp: &Pool1dSpec, dy: &[f32], dx: &mut [f32]) {
    sp.assert_check("avg_pool1d backward");
    check_lengths(sp, "avg_pool1d backward", dx.len(), dy.len());
    let (lo, pad, c, l) = (sp.out_steps(), sp.pad_left(), sp.channels, sp.steps);
    if dx.is_empty() {
        return;
    }
    for_input_blocks(dx, l, c, |b, i0, dxb| {
        dxb.fill(0.0);
        let i1 = i0 + dxb.len() / c;
        let (t0, t1) = sp.windows_touching(i0, i1, lo, pad);
        for t in t0..t1 {
            let (a, e) = sp.window(t, pad);
            let inv = 1.0 / (e - a) as f32;
            let g = &dy[(b * lo + t) * c..(b * lo + t + 1) * c];
            for i in a.max(i0)..e.min(i1) {
                crate::kernels::optim::axpy(inv, g, &mut dxb[(i - i0) * c..(i - i0 + 1) * c]);
            }
        }
    });
}

/// Shape of a global pooling call: `x` is `batch × steps × channels`, the output `batch × channels`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalDims {
    pub batch: usize,
    pub steps: usize,
    pub channels: usize,
}

impl GlobalDims {
    fn check(&self, what: &str, x_len: usize, y_len: usize) {
        assert!(self.steps > 0 || self.batch * self.channels == 0, "{what}: steps must be > 0");
        assert_eq!(x_len, self.batch * self.steps * self.channels, "{what}: x");
        assert_eq!(y_len, self.batch * self.channels, "{what}: y");
    }
}

/// Max over all steps: `out` is `batch × channels`.
pub fn global_max_forward(d: GlobalDims, x: &[f32], out: &mut [f32]) {
    d.check("global_max_pool1d forward", x.len(), out.len());
    let (l, c) = (d.steps, d.channels);
    if out.is_empty() {
        return;
    }
    out.par_chunks_mut(c).enumerate().for_each(|(b, orow)| {
        let xs = &x[b * l * c..(b + 1) * l * c];
        orow.copy_from_slice(&xs[..c]);
        for row in xs.chunks_exact(c).skip(1) {
            max_into(orow, row);
        }
    });
}

/// Gradient of [`global_max_forward`]: `dy` (`batch × channels`) goes to the first maximal step.
pub fn global_max_backward(d: GlobalDims, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    d.check("global_max_pool1d backward", x.len(), dy.len());
    assert_eq!(dx.len(), x.len(), "global_max_pool1d backward: dx");
    let (l, c) = (d.steps, d.channels);
    if dx.is_empty() {
        return;
    }
    dx.par_chunks_mut(l * c).enumerate().for_each(|(b, dxs)| {
        let (mut best, mut idx) = (vec![0.0f32; c], vec![0u32; c]);
        window_argmax(&x[b * l * c..(b + 1) * l * c], c, &mut best, &mut idx);
        dxs.fill(0.0);
        for ch in 0..c {
            dxs[idx[ch] as usize * c + ch] = dy[b * c + ch];
        }
    });
}

/// Mean over all steps: `out` is `batch × channels`.
pub fn global_avg_forward(d: GlobalDims, x: &[f32], out: &mut [f32]) {
    d.check("global_avg_pool1d forward", x.len(), out.len());
    let (l, c) = (d.steps, d.channels);
    if out.is_empty() {
        return;
    }
    out.par_chunks_mut(c).enumerate().for_each(|(b, orow)| {
        let xs = &x[b * l * c..(b + 1) * l * c];
        orow.copy_from_slice(&xs[..c]);
        for row in xs.chunks_exact(c).skip(1) {
            add_into(orow, row);
        }
        div_by(orow, l as f32);
    });
}

/// Gradient of [`global_avg_forward`]: every step gets `dy / steps`.
pub fn global_avg_backward(d: GlobalDims, dy: &[f32], dx: &mut [f32]) {
    d.check("global_avg_pool1d backward", dx.len(), dy.len());
    let (l, c) = (d.steps, d.channels);
    if dx.is_empty() {
        return;
    }
    let inv = 1.0 / l as f32;
    for_input_blocks(dx, l, c, |b, _, dxb| {
        let g = &dy[b * c..(b + 1) * c];
        for row in dxb.chunks_exact_mut(c) {
            row.iter_mut().zip(g).for_each(|(o, &v)| *o = v * inv);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                // Coarse values, so that windows hold ties.
                ((s >> 59) as f32) - 16.0
            })
            .collect()
    }

    /// Naive f64 pooling from the definition: windows over an explicitly padded index range.
    /// Returns (y, dx for upstream `dy`).
    fn naive(sp: &Pool1dSpec, x: &[f32], dy: &[f32], max: bool) -> (Vec<f64>, Vec<f64>) {
        let (l, c, p, s) = (sp.steps as isize, sp.channels, sp.pool_size as isize, sp.stride as isize);
        let (lo, pad) = match sp.padding {
            Padding::Valid => (((l - p) / s + 1) as usize, 0isize),
            _ => {
                let lo = (l + s - 1) / s;
                let total = ((lo - 1) * s + p - l).max(0);
                (lo as usize, total / 2)
            }
        };
        let mut y = vec![0.0f64; sp.batch * lo * c];
        let mut dx = vec![0.0f64; x.len()];
        for b in 0..sp.batch {
            for t in 0..lo {
                for ch in 0..c {
                    let cells: Vec<usize> = (t as isize * s - pad..t as isize * s - pad + p)
                        .filter(|&i| i >= 0 && i < l)
                        .map(|i| (b * sp.steps + i as usize) * c + ch)
                        .collect();
                    let g = dy[(b * lo + t) * c + ch] as f64;
                    let o = &mut y[(b * lo + t) * c + ch];
                    if max {
                        let mut arg = cells[0];
                        for &i in &cells {
                            if x[i] > x[arg] {
                                arg = i;
                            }
                        }
                        *o = x[arg] as f64;
                        dx[arg] += g;
                    } else {
                        *o = cells.iter().map(|&i| x[i] as f64).sum::<f64>() / cells.len() as f64;
                        for &i in &cells {
                            dx[i] += g / cells.len() as f64;
                        }
                    }
                }
            }
        }
        (y, dx)
    }

    fn close(what: &str, got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((*g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()), "{what} [{i}]: {g} vs {w}");
        }
    }

    #[test]
    fn pooling_matches_naive_loops() {
        let shapes = [
            (2, 10, 3, 3, 2, Padding::Same),
            (2, 10, 3, 4, 1, Padding::Same),
            (1, 7, 2, 2, 2, Padding::Valid),
            (3, 9, 4, 3, 3, Padding::Same),
            (2, 5, 1, 1, 3, Padding::Same),
            (1, 1, 3, 4, 2, Padding::Same),
            (2, 9, 2, 4, 5, Padding::Valid),
            (0, 4, 2, 2, 2, Padding::Valid),
            (2, 700, 5, 3, 1, Padding::Same), // several backward blocks, overlapping windows
            (1, 1000, 3, 5, 4, Padding::Valid),
            // batch >= 4·threads with disjoint windows: the max backward's per-sample path
            (9, 30, 64, 2, 2, Padding::Valid),
            (10, 31, 3, 2, 3, Padding::Valid),
            (12, 11, 5, 3, 3, Padding::Same),
            (40, 1, 2, 2, 2, Padding::Same),
            (300, 3, 2, 2, 2, Padding::Valid),
        ];
        for (batch, steps, channels, pool_size, stride, padding) in shapes {
            let sp = Pool1dSpec { batch, steps, channels, pool_size, stride, padding };
            let lo = sp.out_steps();
            let x = vals(batch * steps * channels, 1);
            let dy = vals(batch * lo * channels, 2);
            for max in [true, false] {
                let (want_y, want_dx) = naive(&sp, &x, &dy, max);
                let mut y = vec![f32::NAN; want_y.len()];
                let mut dx = vec![f32::NAN; x.len()];
                crate::threads::install(|| {
                    if max {
                        max_forward(&sp, &x, &mut y);
                        max_backward(&sp, &x, &dy, &mut dx);
                    } else {
                        avg_forward(&sp, &x, &mut y);
                        avg_backward(&sp, &dy, &mut dx);
                    }
                });
                close(&format!("y max={max} {sp:?}"), &y, &want_y);
                close(&format!("dx max={max} {sp:?}"), &dx, &want_dx);
            }
        }
    }

    #[test]
    fn global_pooling_matches_naive_loops() {
        for (batch, steps, channels) in [(3, 7, 4), (1, 1, 2), (2, 300, 5), (0, 3, 2)] {
            let d = GlobalDims { batch, steps, channels };
            let x = vals(batch * steps * channels, 3);
            let dy = vals(batch * channels, 4);
            let (mut ym, mut ya) = (vec![0.0; batch * channels], vec![0.0; batch * channels]);
            let (mut dxm, mut dxa) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
            crate::threads::install(|| {
                global_max_forward(d, &x, &mut ym);
                global_avg_forward(d, &x, &mut ya);
                global_max_backward(d, &x, &dy, &mut dxm);
                global_avg_backward(d, &dy, &mut dxa);
            });
            let (mut wym, mut wya) = (vec![0.0f64; ym.len()], vec![0.0f64; ym.len()]);
            let (mut wdxm, mut wdxa) = (vec![0.0f64; x.len()], vec![0.0f64; x.len()]);
            for b in 0..batch {
                for ch in 0..channels {
                    let at = |t: usize| (b * steps + t) * channels + ch;
                    let arg = (0..steps).fold(0, |a, t| if x[at(t)] > x[at(a)] { t } else { a });
                    wym[b * channels + ch] = x[at(arg)] as f64;
                    wdxm[at(arg)] = dy[b * channels + ch] as f64;
                    wya[b * channels + ch] = (0..steps).map(|t| x[at(t)] as f64).sum::<f64>() / steps as f64;
                    for t in 0..steps {
                        wdxa[at(t)] = dy[b * channels + ch] as f64 / steps as f64;
                    }
                }
            }
            close("global max y", &ym, &wym);
            close("global avg y", &ya, &wya);
            close("global max dx", &dxm, &wdxm);
            close("global avg dx", &dxa, &wdxa);
        }
    }

    #[test]
    fn nan_propagates_and_gets_the_gradient() {
        let sp = Pool1dSpec { batch: 1, steps: 4, channels: 1, pool_size: 4, stride: 4, padding: Padding::Valid };
        let x = [1.0, f32::NAN, 5.0, f32::NAN];
        let mut y = [0.0];
        let mut dx = [9.0; 4];
        max_forward(&sp, &x, &mut y);
        max_backward(&sp, &x, &[2.0], &mut dx);
        assert!(y[0].is_nan());
        assert_eq!(dx, [0.0, 2.0, 0.0, 0.0]);
    }
}
