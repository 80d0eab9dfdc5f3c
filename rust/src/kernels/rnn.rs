//! What the LSTM and GRU kernels share: shapes, masking by length, the batch split across
//! threads, and the after-the-loop weight-gradient GEMMs.
//!
//! Layout: every per-step buffer (gates, cells, outputs) is batch-major, `(batch, steps, width)`,
//! in *processing* order `s` (for `go_backwards`, step `s` reads input time `t = T-1-s`, as Keras
//! does, and outputs are returned in processing order, as Keras returns them). Batch-major keeps a
//! thread's slice of the batch contiguous for the whole time loop.
use crate::linalg::{sgemm, Trans};
use crate::simd::activation::Activation;
use crate::simd::multiversion;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RnnDims {
    pub batch: usize,
    pub steps: usize,
    pub inputs: usize,
    pub units: usize,
}

/// Activations a recurrent cell accepts (elementwise ones; Keras allows any, we support these).
pub const CELL_ACTIVATIONS: &[Activation] =
    &[Activation::Linear, Activation::Relu, Activation::Sigmoid, Activation::HardSigmoid, Activation::Tanh];

/// Per-sample valid lengths (Keras's mask `t < len[b]` on post-padded input).
///
/// Keras semantics at masked steps: the state is left unchanged and the step outputs the previous
/// step's *output*, where the output "before step 0" is zeros, not the initial state. So a step's
/// output is the state once some step up to it was valid ([`Lengths::started`]), and zero before.
#[derive(Clone, Copy)]
pub struct Lengths<'a>(pub Option<&'a [usize]>);

impl Lengths<'_> {
    /// Whether batch row `b` is updated at processing step `s`.
    #[inline]
    pub fn valid(&self, b: usize, s: usize, steps: usize, go_backwards: bool) -> bool {
        match self.0 {
            None => true,
            Some(l) => {
                let t = if go_backwards { steps - 1 - s } else { s };
                t < l[b]
            }
        }
    }
}

impl Lengths<'_> {
    /// Whether some step `<= s` of row `b` was valid (its output is then the carried state).
    #[inline]
    pub fn started(&self, b: usize, s: usize, steps: usize, go_backwards: bool) -> bool {
        match self.0 {
            None => true,
            Some(l) if go_backwards => s + l[b] >= steps && l[b] > 0,
            Some(l) => l[b] > 0,
        }
    }

    /// The processing step of row `b`'s first valid step (0 when there is no mask).
    #[inline]
    pub fn first_valid(&self, b: usize, steps: usize, go_backwards: bool) -> usize {
        match self.0 {
            Some(l) if go_backwards => steps - l[b].min(steps),
            _ => 0,
        }
    }
}

/// How many batch rows each thread takes: one contiguous slice per thread, all steps, no per-step
/// barrier (the time loop is sequential; parallelism comes from the batch).
pub fn batch_chunk(batch: usize, threads: usize) -> usize {
    batch.div_ceil(threads.clamp(1, batch.max(1))).max(1)
}

/// A thread's contiguous slice of the batch.
#[derive(Clone, Copy)]
pub struct Chunk {
    pub b0: usize,
    pub rows: usize,
}

/// Splits an optional buffer into `n` optional chunks of `len` (all `None` when absent), to zip
/// with the other per-thread chunks.
pub fn split_opt(buf: Option<&mut [f32]>, len: usize, n: usize) -> Vec<Option<&mut [f32]>> {
    match buf {
        // An empty buffer (e.g. dx with no input features) has no chunks; `n` empty ones keep the zip whole.
        Some(v) if !v.is_empty() => v.chunks_mut(len).map(Some).collect(),
        Some(_) => (0..n).map(|_| Some(&mut [][..])).collect(),
        None => (0..n).map(|_| None).collect(),
    }
}

pub fn copy_or_zero(dst: &mut [f32], src: Option<&[f32]>) {
    match src {
        Some(v) => dst.copy_from_slice(v),
        None => dst.fill(0.0),
    }
}

/// Reverses the time axis of a `(batch, steps, width)` buffer in place.
pub fn reverse_time(buf: &mut [f32], d: RnnDims, width: usize) {
    use rayon::prelude::*;
    if d.steps < 2 || width == 0 {
        return;
    }
    let reverse = |seq: &mut [f32]| {
        let (mut lo, mut hi) = (0, d.steps - 1);
        while lo < hi {
            let (a, b) = seq.split_at_mut(hi * width);
            a[lo * width..(lo + 1) * width].swap_with_slice(&mut b[..width]);
            lo += 1;
            hi -= 1;
        }
    };
    if crate::threads::current_threads() > 1 {
        buf.par_chunks_mut(d.steps * width).for_each(reverse);
    } else {
        buf.chunks_mut(d.steps * width).for_each(reverse);
    }
}

/// `dU = Σ_b Σ_s h_prev[b,s]ᵀ · dg[b,s]`, the state before step `s` paired with that step's gate
/// gradient, where `hist` holds the step outputs.
///
/// One big GEMM pairs every row `r` of `dg` with row `r-1` of `hist` (right inside a sequence, where
/// the output is the state), then two rank-`batch` corrections fix the pairs that cross a sequence
/// boundary, and pair `h0` with each row's first valid step (before it, `dg` is zero and the
/// outputs are Keras's zeros rather than the state `h0`).
/// `hist` is `(batch, steps, units)`; `dg` is `(batch, steps, ·)` with row stride `ldg`, of which the
/// first `n` columns are used; `du` is `units × n` with row stride `lddu`.
#[allow(clippy::too_many_arguments)]
pub fn recurrent_weight_grad(
    d: RnnDims,
    hist: &[f32],
    h0: Option<&[f32]>,
    lengths: Lengths,
    go_backwards: bool,
    dg: &[f32],
    ldg: usize,
    n: usize,
    du: &mut [f32],
    lddu: usize,
    threads: usize,
) {
    let (b, t, h) = (d.batch, d.steps, d.units);
    for row in du.chunks_mut(lddu).take(h) {
        row[..n].fill(0.0);
    }
    if b == 0 || t == 0 || h == 0 || n == 0 {
        return;
    }
    let rows = b * t;
    if rows > 1 {
        sgemm(Trans::T, Trans::N, h, n, rows - 1, 1.0, hist, h, &dg[ldg..], ldg, 1.0, du, lddu, threads);
    }
    // Boundary rows, gathered to apply the corrections as two small GEMMs.
    let mut step0_dg = vec![0.0f32; b * n];
    let mut first_dg = vec![0.0f32; b * n];
    let mut last_h = vec![0.0f32; b * h];
    for bi in 0..b {
        step0_dg[bi * n..(bi + 1) * n].copy_from_slice(&dg[bi * t * ldg..bi * t * ldg + n]);
        let fv = lengths.first_valid(bi, t, go_backwards);
        if fv < t {
            let r = (bi * t + fv) * ldg;
            first_dg[bi * n..(bi + 1) * n].copy_from_slice(&dg[r..r + n]);
        }
        if bi > 0 {
            let r = (bi * t - 1) * h;
            last_h[bi * h..(bi + 1) * h].copy_from_slice(&hist[r..r + h]);
        }
    }
    // Remove the wrong pairs (previous sequence's last output with this sequence's step 0)…
    sgemm(Trans::T, Trans::N, h, n, b, -1.0, &last_h, h, &step0_dg, n, 1.0, du, lddu, 1);
    // …and add the right ones (h0 with the first valid step).
    if let Some(h0) = h0 {
        sgemm(Trans::T, Trans::N, h, n, b, 1.0, h0, h, &first_dg, n, 1.0, du, lddu, 1);
    }
}

multiversion! {
    /// `out = a ⊙ b`
    pub fn mul(a: &[f32], b: &[f32], out: &mut [f32]) {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) { *o = x * y; }
    }
}
multiversion! {
    /// `a ⊙= b`
    pub fn mul_inplace(a: &mut [f32], b: &[f32]) {
        for (o, &y) in a.iter_mut().zip(b) { *o *= y; }
    }
}
multiversion! {
    /// `a += b`
    pub fn add_inplace(a: &mut [f32], b: &[f32]) {
        for (o, &y) in a.iter_mut().zip(b) { *o += y; }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_time_reverses_each_sequence() {
        let d = RnnDims { batch: 2, steps: 5, inputs: 0, units: 0 };
        let mut buf: Vec<f32> = (0..2 * 5 * 3).map(|v| v as f32).collect();
        let orig = buf.clone();
        reverse_time(&mut buf, d, 3);
        for b in 0..2 {
            for s in 0..5 {
                assert_eq!(buf[(b * 5 + s) * 3..(b * 5 + s + 1) * 3], orig[(b * 5 + 4 - s) * 3..(b * 5 + 5 - s) * 3]);
            }
        }
    }

    #[test]
    fn recurrent_weight_grad_matches_loop() {
        let d = RnnDims { batch: 3, steps: 4, inputs: 0, units: 2 };
        let n = 5;
        let hist: Vec<f32> = (0..3 * 4 * 2).map(|v| (v as f32 * 0.37).sin()).collect();
        let h0: Vec<f32> = (0..3 * 2).map(|v| (v as f32 * 0.11).cos()).collect();
        let ldg = 7;
        let dg: Vec<f32> = (0..3 * 4 * ldg).map(|v| (v as f32 * 0.23).cos()).collect();
        let mut du = vec![9.0f32; 2 * 6];
        recurrent_weight_grad(d, &hist, Some(&h0), Lengths(None), false, &dg, ldg, n, &mut du, 6, 1);
        for i in 0..2 {
            for j in 0..n {
                let mut want = 0.0f64;
                for b in 0..3 {
                    for s in 0..4 {
                        let hp = if s == 0 { h0[b * 2 + i] } else { hist[(b * 4 + s - 1) * 2 + i] };
                        want += hp as f64 * dg[(b * 4 + s) * ldg + j] as f64;
                    }
                }
                assert!((du[i * 6 + j] as f64 - want).abs() < 1e-5, "{i},{j}");
            }
            assert_eq!(du[i * 6 + 5], 9.0, "column past n untouched");
        }
    }
}
