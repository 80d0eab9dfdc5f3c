//! Dense applied to every row of a `(rows, inputs)` matrix — a time-distributed Dense once the
//! caller folds `(batch, time)` into rows.
//!
//! Math contract (Keras layout: `kernel` is `(inputs, units)` row-major, `bias` is `(units,)`):
//! - forward: `y = act(x·W + b)`
//! - backward, given `dy = ∂L/∂y` and the forward output `y`:
//!   `dz = dy ⊙ act'(·)` (from `y`), `dx = dz·Wᵀ`, `dW = xᵀ·dz`, `db = Σ_rows dz`.
//!
//! Design: rows are cut into blocks, one task per block. Forward writes the bias into the output
//! block, accumulates the GEMM onto it and applies the activation while the block is still in cache
//! (the GEMM "epilogue"). Backward forms `dz` and `dx` block by block in the same way and sums `db`
//! per block; `dW` is one big GEMM over all rows (reduction dimension = rows), threaded inside.
use crate::linalg::packed::{gemm_packed, PackedB};
use crate::linalg::{sgemm, Trans};
use crate::simd::activation::Activation;

/// Row-block height: 256 rows of output (≤ 256 KiB for 256 units) stay in L2 between the GEMM and
/// the activation; measured with `cargo bench --bench kernels`.
const BLOCK_ROWS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DenseDims {
    pub rows: usize,
    pub inputs: usize,
    pub units: usize,
}

impl DenseDims {
    /// Multiply–adds of the forward GEMM.
    pub fn macs(&self) -> usize {
        self.rows * self.inputs * self.units
    }
}

/// `out = act(x·W + b)`; `out` is `rows×units`, fully written.
pub fn forward(d: DenseDims, x: &[f32], w: &[f32], b: Option<&[f32]>, act: Activation, out: &mut [f32]) {
    let DenseDims { rows, inputs, units } = d;
    assert_eq!(x.len(), rows * inputs, "dense forward: x");
    assert_eq!(w.len(), inputs * units, "dense forward: kernel");
    assert_eq!(out.len(), rows * units, "dense forward: out");
    if let Some(b) = b {
        assert_eq!(b.len(), units, "dense forward: bias");
    }
    if rows == 0 || units == 0 {
        return;
    }
    let threads = crate::threads::current_threads();
    let rb = super::block_rows(rows, threads, BLOCK_ROWS);
    // W packed once for all blocks (a general GEMM would re-pack it for every block).
    let pw = PackedB::pack(w, units, inputs, units, Trans::N);
    let run_block = |xb: &[f32], ob: &mut [f32], gemm_threads: usize| {
        let nr = ob.len() / units;
        if gemm_threads > 1 {
            let beta = match b {
                Some(b) => {
                    ob.chunks_exact_mut(units).for_each(|row| row.copy_from_slice(b));
                    1.0
                }
                None => 0.0,
            };
            sgemm(Trans::N, Trans::N, nr, units, inputs, 1.0, xb, inputs, w, units, beta, ob, units, gemm_threads);
        } else {
            gemm_packed(nr, xb, inputs, &pw, ob, units, false);
            if let Some(b) = b {
                ob.chunks_exact_mut(units).for_each(|row| crate::kernels::optim::axpy(1.0, b, row));
            }
        }
        act.forward_inplace(ob, units);
    };
    if rows.div_ceil(rb) < threads {
        // Too few rows to give every thread a block (e.g. inference on one sample): let the GEMM
        // split the columns instead.
        run_block(x, out, threads);
    } else {
        // Index-based, not a zip with x's chunks: x is empty when inputs == 0 and would yield no chunk.
        let blocks: Vec<_> = out.chunks_mut(rb * units).enumerate().collect();
        crate::threads::for_each(blocks, |(i, ob)| {
            let r0 = i * rb;
            let nr = ob.len() / units;
            run_block(&x[r0 * inputs..(r0 + nr) * inputs], ob, 1)
        });
    }
}

/// Gradients of [`forward`]. `y` is the forward output and `dy` the gradient of the loss by it.
/// `dx` (rows×inputs) and `db` (units) are computed only when given; `dw` (inputs×units) always.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    d: DenseDims,
    x: &[f32],
    w: &[f32],
    y: &[f32],
    dy: &[f32],
    act: Activation,
    dx: Option<&mut [f32]>,
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) {
    let DenseDims { rows, inputs, units } = d;
    assert_eq!(x.len(), rows * inputs, "dense backward: x");
    assert_eq!(w.len(), inputs * units, "dense backward: kernel");
    assert_eq!(y.len(), rows * units, "dense backward: y");
    assert_eq!(dy.len(), rows * units, "dense backward: dy");
    assert_eq!(dw.len(), inputs * units, "dense backward: dw");
    if let Some(dx) = dx.as_deref() {
        assert_eq!(dx.len(), rows * inputs, "dense backward: dx");
    }
    if let Some(db) = db.as_deref() {
        assert_eq!(db.len(), units, "dense backward: db");
    }
    let threads = crate::threads::current_threads();
    if rows == 0 || units == 0 {
        dw.fill(0.0);
        if let Some(db) = db {
            db.fill(0.0);
        }
        if let Some(dx) = dx {
            dx.fill(0.0);
        }
        return;
    }
    // The bias gradient sums per-block partials: blocks independent of the thread count keep it
    // bit-identical across thread counts.
    let rb = super::block_rows(rows, super::REDUCTION_PARTS, BLOCK_ROWS);
    let nblocks = rows.div_ceil(rb);
    let want_db = db.is_some();
    let want_dx = dx.is_some();
    let linear = act == Activation::Linear;
    let scratch_len = if linear { 0 } else { rows * units } + if want_db { nblocks * units } else { 0 };
    crate::workspace::with_scratch(scratch_len, |scratch| {
        let (dz_buf, db_parts) = scratch.split_at_mut(if linear { 0 } else { rows * units });

        // One job per row block: (first row, dz block to fill, dx block, db partial).
        struct Job<'a> {
            r0: usize,
            nr: usize,
            dz: Option<&'a mut [f32]>,
            dx: Option<&'a mut [f32]>,
            db: Option<&'a mut [f32]>,
        }
        let mut jobs: Vec<Job> =
            (0..nblocks).map(|i| Job { r0: i * rb, nr: rb.min(rows - i * rb), dz: None, dx: None, db: None }).collect();
        if !linear {
            for (j, c) in jobs.iter_mut().zip(dz_buf.chunks_mut(rb * units)) {
                j.dz = Some(c);
            }
        }
        if let Some(dx) = dx {
            for (j, c) in jobs.iter_mut().zip(dx.chunks_mut(rb * inputs.max(1))) {
                j.dx = Some(c);
            }
        }
        if want_db {
            for (j, c) in jobs.iter_mut().zip(db_parts.chunks_mut(units)) {
                j.db = Some(c);
            }
        }
        let gemm_threads = if nblocks < threads { threads } else { 1 };
        // Wᵀ packed once for the per-block dx products (when blocks run one per thread).
        let pwt = (gemm_threads == 1 && want_dx).then(|| PackedB::pack(w, units, units, inputs, Trans::T));
        let block = |j: Job| {
            let span = j.r0 * units..(j.r0 + j.nr) * units;
            let dz: &[f32] = match j.dz {
                Some(buf) => {
                    act.backward(&y[span.clone()], &dy[span.clone()], buf, units);
                    buf
                }
                None => &dy[span],
            };
            if let Some(dxb) = j.dx {
                match &pwt {
                    Some(pwt) => gemm_packed(j.nr, dz, units, pwt, dxb, inputs, false),
                    None => sgemm(
                        Trans::N,
                        Trans::T,
                        j.nr,
                        inputs,
                        units,
                        1.0,
                        dz,
                        units,
                        w,
                        units,
                        0.0,
                        dxb,
                        inputs,
                        gemm_threads,
                    ),
                }
            }
            if let Some(part) = j.db {
                column_sums(dz, units, part);
            }
        };
        if gemm_threads > 1 {
            jobs.into_iter().for_each(block);
        } else {
            crate::threads::for_each(jobs, block);
        }

        let dz_all: &[f32] = if linear { dy } else { dz_buf };
        sgemm(Trans::T, Trans::N, inputs, units, rows, 1.0, x, inputs, dz_all, units, 0.0, dw, units, threads);
        if let Some(db) = db {
            column_sums(db_parts, units, db);
        }
    });
}

/// [`column_sums`] split into row blocks summed in parallel, partial sums added in order at the
/// end. The blocks depend on the size only (not on the thread count), so the result is the same
/// with any number of threads.
pub fn column_sums_par(m: &[f32], width: usize, out: &mut [f32]) {
    let rows = m.len().checked_div(width).unwrap_or(0);
    if rows < 4096 {
        column_sums(m, width, out);
        return;
    }
    let rb = rows.div_ceil(super::REDUCTION_PARTS);
    let parts: Vec<Vec<f32>> = crate::threads::map(m.chunks(rb * width).collect(), |blk| {
        let mut p = vec![0.0f32; width];
        column_sums(blk, width, &mut p);
        p
    });
    out.fill(0.0);
    for p in &parts {
        crate::kernels::optim::axpy(1.0, p, out);
    }
}

/// `out[j] = Σ_i m[i, j]` for a row-major matrix of `width` columns.
pub fn column_sums(m: &[f32], width: usize, out: &mut [f32]) {
    out.fill(0.0);
    column_sums_acc(m, width, out);
}

crate::simd::multiversion! {
    /// `out[j] += Σ_i m[i, j]`: the whole matrix in one dispatched call (a call per row cost more
    /// than the adds for short rows).
    pub fn column_sums_acc(m: &[f32], width: usize, out: &mut [f32]) {
        if width == 0 {
            return;
        }
        for row in m.chunks_exact(width) {
            for (o, &v) in out.iter_mut().zip(row) {
                *o += v;
            }
        }
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
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn act_f64(act: Activation, z: &mut [f64], width: usize) {
        for row in z.chunks_mut(width) {
            match act {
                Activation::Linear => {}
                Activation::Relu => row.iter_mut().for_each(|v| *v = v.max(0.0)),
                Activation::Sigmoid => row.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
                Activation::HardSigmoid => row.iter_mut().for_each(|v| *v = (*v / 6.0 + 0.5).clamp(0.0, 1.0)),
                Activation::Tanh => row.iter_mut().for_each(|v| *v = v.tanh()),
                Activation::Softmax => {
                    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
                    row.iter_mut().for_each(|v| *v = (*v - m).exp() / s);
                }
                _ => unreachable!("not used in these tests"),
            }
        }
    }

    /// Naive f64 forward.
    fn reference(d: DenseDims, x: &[f32], w: &[f32], b: &[f32], act: Activation) -> Vec<f64> {
        let mut z = vec![0.0f64; d.rows * d.units];
        for r in 0..d.rows {
            for u in 0..d.units {
                let mut s = b[u] as f64;
                for i in 0..d.inputs {
                    s += x[r * d.inputs + i] as f64 * w[i * d.units + u] as f64;
                }
                z[r * d.units + u] = s;
            }
        }
        act_f64(act, &mut z, d.units);
        z
    }

    fn loss(d: DenseDims, x: &[f32], w: &[f32], b: &[f32], act: Activation, g: &[f32]) -> f64 {
        reference(d, x, w, b, act).iter().zip(g).map(|(y, g)| y * *g as f64).sum()
    }

    #[test]
    fn forward_matches_reference_across_shapes() {
        let acts = [
            Activation::Linear,
            Activation::Relu,
            Activation::Sigmoid,
            Activation::HardSigmoid,
            Activation::Tanh,
            Activation::Softmax,
        ];
        for &(rows, inputs, units) in &[(0, 3, 4), (1, 1, 1), (3, 0, 2), (7, 5, 3), (300, 17, 9), (1100, 8, 33)] {
            let d = DenseDims { rows, inputs, units };
            let x = vals(rows * inputs, 1);
            let w = vals(inputs * units, 2);
            let b = vals(units, 3);
            for act in acts {
                let mut out = vec![f32::NAN; rows * units];
                crate::threads::install(|| forward(d, &x, &w, Some(&b), act, &mut out));
                let r = reference(d, &x, &w, &b, act);
                for (g, want) in out.iter().zip(&r) {
                    assert!((*g as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()), "{act:?} {d:?}");
                }
            }
        }
    }

    /// Backward against central differences of the f64 reference, for the loss Σ y ⊙ g.
    #[test]
    fn backward_matches_finite_differences() {
        let acts = [Activation::Linear, Activation::Relu, Activation::Sigmoid, Activation::Tanh, Activation::Softmax];
        let d = DenseDims { rows: 9, inputs: 4, units: 5 };
        let x = vals(d.rows * d.inputs, 5);
        let w = vals(d.inputs * d.units, 6);
        let b = vals(d.units, 7);
        let g = vals(d.rows * d.units, 8);
        for act in acts {
            let mut y = vec![0.0; d.rows * d.units];
            forward(d, &x, &w, Some(&b), act, &mut y);
            let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; b.len()]);
            crate::threads::install(|| backward(d, &x, &w, &y, &g, act, Some(&mut dx), &mut dw, Some(&mut db)));
            let h = 1e-3f32;
            let check = |which: usize, got: &[f32]| {
                for i in 0..got.len() {
                    let (mut xp, mut wp, mut bp) = (x.clone(), w.clone(), b.clone());
                    let (mut xm, mut wm, mut bm) = (x.clone(), w.clone(), b.clone());
                    match which {
                        0 => {
                            xp[i] += h;
                            xm[i] -= h;
                        }
                        1 => {
                            wp[i] += h;
                            wm[i] -= h;
                        }
                        _ => {
                            bp[i] += h;
                            bm[i] -= h;
                        }
                    }
                    let num = (loss(d, &xp, &wp, &bp, act, &g) - loss(d, &xm, &wm, &bm, act, &g)) / (2.0 * h as f64);
                    assert!(
                        (got[i] as f64 - num).abs() < 2e-3 * (1.0 + num.abs()),
                        "{act:?} grad {which}[{i}]: {} vs {num}",
                        got[i]
                    );
                }
            };
            check(0, &dx);
            check(1, &dw);
            check(2, &db);
        }
    }
}
