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

/// Which steps of each sample are valid: Keras's boolean `(batch, steps)` mask, stored as each
/// row's run `[start, end)` of input times that holds its valid steps, plus the steps themselves
/// only when some run has holes. Post-padded rows (Keras's `lengths`) are runs `[0, len)`,
/// pre-padded ones `[T-len, T)`: neither needs a per-step lookup.
///
/// Keras semantics at masked steps: the state is left unchanged and the step outputs the previous
/// step's *output*, where the output "before step 0" is zeros, not the initial state. So a step's
/// output is the state once some step up to it was valid ([`StepMask::started`]), and zero before.
/// A call that continues a sequence (a window of checkpointed BPTT, a truncated-BPTT chunk) marks
/// the rows whose sequence already had a valid step in `continued`: their state is an output
/// from the first step on.
#[derive(Clone, Copy, Default)]
pub struct StepMask<'a> {
    /// first valid input time per row (`None`: 0); `start == end` for a row with no valid step
    start: Option<&'a [usize]>,
    /// one past the last valid input time per row (`None`: no mask, every step is valid)
    end: Option<&'a [usize]>,
    /// `(batch, steps)` in input-time order, nonzero = valid; `None`: every step of a run is valid
    steps: Option<&'a [u8]>,
    /// per row, nonzero: an earlier call already had a valid step of this sequence
    continued: Option<&'a [u8]>,
}

impl<'a> StepMask<'a> {
    /// Every step valid.
    pub const ALL: StepMask<'static> = StepMask { start: None, end: None, steps: None, continued: None };

    /// Post-padded rows: the first `lengths[b]` steps of row `b` are valid.
    pub fn lengths(lengths: &'a [usize]) -> Self {
        StepMask { end: Some(lengths), ..Default::default() }
    }

    /// Rows whose valid steps are `start[b]..end[b]` (`start[b] == end[b]`: none), with holes given
    /// by `steps` when present. See [`MaskBuf`] to build one from a boolean mask.
    pub fn runs(start: &'a [usize], end: &'a [usize], steps: Option<&'a [u8]>) -> Self {
        StepMask { start: Some(start), end: Some(end), steps, continued: None }
    }

    /// The same mask for a call that continues sequences: rows with `continued[b] != 0` output
    /// their (carried) state from the first step.
    pub fn continuing(self, continued: Option<&'a [u8]>) -> Self {
        StepMask { continued, ..self }
    }

    pub fn is_all(&self) -> bool {
        self.end.is_none()
    }

    /// Panics unless the mask fits `batch` rows of `steps` steps (the bindings check first).
    pub fn check(&self, op: &str, batch: usize, steps: usize) {
        let ok = self.end.is_none_or(|e| {
            e.len() == batch
                && e.iter().enumerate().all(|(b, &v)| v <= steps && self.start_of(b) <= v)
                && self.start.is_none_or(|s| s.len() == batch)
                && self.steps.is_none_or(|m| m.len() == batch * steps)
        }) && self.continued.is_none_or(|c| c.len() == batch);
        assert!(ok, "{op}: mask");
    }

    #[inline]
    fn start_of(&self, b: usize) -> usize {
        self.start.map_or(0, |s| s[b])
    }

    #[inline]
    fn is_continued(&self, b: usize) -> bool {
        self.continued.is_some_and(|c| c[b] != 0)
    }

    /// Whether batch row `b` is updated at processing step `s`.
    #[inline]
    pub fn valid(&self, b: usize, s: usize, steps: usize, go_backwards: bool) -> bool {
        match self.end {
            None => true,
            Some(e) => {
                let t = if go_backwards { steps - 1 - s } else { s };
                t < e[b] && t >= self.start_of(b) && self.steps.is_none_or(|m| m[b * steps + t] != 0)
            }
        }
    }

    /// Whether some step `<= s` of row `b` was valid, in this call or (`continued`) an earlier one:
    /// the step's output is then the carried state.
    #[inline]
    pub fn started(&self, b: usize, s: usize, steps: usize, go_backwards: bool) -> bool {
        if self.is_continued(b) {
            return true;
        }
        match self.end {
            None => true,
            Some(e) => {
                let (lo, hi) = (self.start_of(b), e[b]);
                // The first valid step in processing order: `lo` forward, `T-hi` backward.
                hi > lo && if go_backwards { s + hi >= steps } else { s >= lo }
            }
        }
    }

    /// The processing step whose gate gradient pairs with `h0` in the recurrent weight gradient:
    /// the row's first valid step, where the state before it is `h0` but the previous output is
    /// Keras's zero; 0 for a row without a mask or a continued one (its step-0 output is `h0`).
    #[inline]
    pub fn first_valid(&self, b: usize, steps: usize, go_backwards: bool) -> usize {
        match self.end {
            _ if self.is_continued(b) => 0,
            None => 0,
            Some(e) if go_backwards => steps - e[b].min(steps),
            Some(_) => self.start_of(b),
        }
    }
}

/// The owned arrays behind a [`StepMask`] built from a boolean `(batch, steps)` mask.
pub struct MaskBuf {
    start: Vec<usize>,
    end: Vec<usize>,
    steps: Option<Vec<u8>>,
}

impl MaskBuf {
    /// From a row-major `(batch, steps)` mask (nonzero = valid). The per-step mask is kept only
    /// when some row's valid steps are not one contiguous run.
    pub fn from_steps(mask: &[u8], batch: usize, steps: usize) -> MaskBuf {
        assert_eq!(mask.len(), batch * steps, "mask: shape");
        let (mut start, mut end, mut holes) = (vec![0; batch], vec![0; batch], false);
        for b in 0..batch.min(mask.len() / steps.max(1)) {
            let row = &mask[b * steps..(b + 1) * steps];
            if let (Some(lo), Some(hi)) = (row.iter().position(|&v| v != 0), row.iter().rposition(|&v| v != 0)) {
                (start[b], end[b]) = (lo, hi + 1);
                holes |= row[lo..=hi].contains(&0);
            }
        }
        MaskBuf { start, end, steps: holes.then(|| mask.to_vec()) }
    }

    pub fn view(&self) -> StepMask<'_> {
        StepMask::runs(&self.start, &self.end, self.steps.as_deref())
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
    mask: StepMask,
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
        let fv = mask.first_valid(bi, t, go_backwards);
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

/// Keras's per-gate dropout masks for a training call with `recurrent_dropout` (its
/// `implementation=1` cell): gate `g` multiplies `x_t ⊙ input[g]` by its block of the kernel and
/// `h_{t-1} ⊙ recurrent[g]` by its block of the recurrent kernel. One mask per sequence, the same
/// at every step (Keras caches them for the call), already scaled by `1/(1-rate)`. The carried
/// state itself is never masked (an LSTM's `c`, a GRU's `z ⊙ h_{t-1}` term).
#[derive(Clone, Copy, Default)]
pub struct GateMasks<'a> {
    /// `(G, B, F)`; `None`: every gate sees `x_t` unmasked
    pub input: Option<&'a [f32]>,
    /// `(G, B, H)`; `None`: every gate sees `h_{t-1}` unmasked
    pub recurrent: Option<&'a [f32]>,
}

impl GateMasks<'_> {
    pub fn any(&self) -> bool {
        self.input.is_some() || self.recurrent.is_some()
    }

    pub fn check(&self, op: &str, gates: usize, d: RnnDims) {
        assert!(self.input.is_none_or(|m| m.len() == gates * d.batch * d.inputs), "{op}: input masks");
        assert!(self.recurrent.is_none_or(|m| m.len() == gates * d.batch * d.units), "{op}: recurrent masks");
    }
}

/// Row `b` of gate `g`'s mask in a `(G, batch, width)` buffer.
#[inline]
pub fn mask_row(m: &[f32], g: usize, b: usize, batch: usize, width: usize) -> &[f32] {
    &m[(g * batch + b) * width..(g * batch + b + 1) * width]
}

/// `dst[b, t, :] = src[b, t, :] ⊙ mask[b, :]` for a `(batch, steps, width)` `src` and a
/// `(batch, width)` `mask`.
pub fn mask_over_time(src: &[f32], mask: &[f32], steps: usize, width: usize, dst: &mut [f32]) {
    use rayon::prelude::*;
    if steps == 0 || width == 0 {
        return;
    }
    let one = |(b, d): (usize, &mut [f32])| {
        let m = &mask[b * width..(b + 1) * width];
        let s = &src[b * steps * width..(b + 1) * steps * width];
        for (dr, sr) in d.chunks_mut(width).zip(s.chunks(width)) {
            mul(sr, m, dr);
        }
    };
    if crate::threads::current_threads() > 1 {
        dst.par_chunks_mut(steps * width).enumerate().for_each(one);
    } else {
        dst.chunks_mut(steps * width).enumerate().for_each(one);
    }
}

/// The input projection with per-gate input masks: `zx[·, g·H..(g+1)·H] = (X ⊙ m_g)·W_g` for every
/// gate, `X` `(B, T, F)` in input-time order, `zx` with row stride `G·H`.
pub fn masked_input_projection(d: RnnDims, gates: usize, x: &[f32], masks: &[f32], kernel: &[f32], zx: &mut [f32]) {
    let (b, t, f, h) = (d.batch, d.steps, d.inputs, d.units);
    let (gw, threads) = (gates * h, crate::threads::current_threads());
    crate::workspace::with_scratch(b * t * f, |xm| {
        for g in 0..gates {
            mask_over_time(x, &masks[g * b * f..(g + 1) * b * f], t, f, xm);
            sgemm(
                Trans::N,
                Trans::N,
                b * t,
                h,
                f,
                1.0,
                xm,
                f,
                &kernel[g * h..],
                gw,
                0.0,
                &mut zx[g * h..],
                gw,
                threads,
            );
        }
    });
}

/// The input-side gradients under per-gate input masks, `dg` `(B, T, G·H)` in input-time order:
/// `dW_g = (X ⊙ m_g)ᵀ·dG_g` and `dx = Σ_g (dG_g·W_gᵀ) ⊙ m_g`.
#[allow(clippy::too_many_arguments)]
pub fn masked_input_grads(
    d: RnnDims,
    gates: usize,
    x: &[f32],
    masks: &[f32],
    kernel: &[f32],
    dg: &[f32],
    dkernel: &mut [f32],
    mut dx: Option<&mut [f32]>,
) {
    let (b, t, f, h) = (d.batch, d.steps, d.inputs, d.units);
    let (gw, threads) = (gates * h, crate::threads::current_threads());
    if let Some(dx) = dx.as_deref_mut() {
        dx.fill(0.0);
    }
    crate::workspace::with_scratch(2 * b * t * f, |buf| {
        let (xm, part) = buf.split_at_mut(b * t * f);
        for g in 0..gates {
            let m = &masks[g * b * f..(g + 1) * b * f];
            mask_over_time(x, m, t, f, xm);
            sgemm(
                Trans::T,
                Trans::N,
                f,
                h,
                b * t,
                1.0,
                xm,
                f,
                &dg[g * h..],
                gw,
                0.0,
                &mut dkernel[g * h..],
                gw,
                threads,
            );
            if let Some(dx) = dx.as_deref_mut() {
                sgemm(
                    Trans::N,
                    Trans::T,
                    b * t,
                    f,
                    h,
                    1.0,
                    &dg[g * h..],
                    gw,
                    &kernel[g * h..],
                    gw,
                    0.0,
                    part,
                    f,
                    threads,
                );
                mask_over_time(part, m, t, f, xm); // xm is free again: reuse it for the masked part
                add_inplace(dx, xm);
            }
        }
    });
}

/// [`recurrent_weight_grad`] for one gate whose recurrent input is `h_{t-1} ⊙ mask` (a `(B, H)`
/// recurrent-dropout mask): the same sum with the history and `h0` masked first.
#[allow(clippy::too_many_arguments)]
pub fn masked_recurrent_weight_grad(
    d: RnnDims,
    hist: &[f32],
    h0: Option<&[f32]>,
    mask: &[f32],
    steps: StepMask,
    go_backwards: bool,
    dg: &[f32],
    ldg: usize,
    n: usize,
    du: &mut [f32],
    lddu: usize,
) {
    let (b, t, h) = (d.batch, d.steps, d.units);
    crate::workspace::with_scratch(b * t * h + b * h, |buf| {
        let (hm, h0m) = buf.split_at_mut(b * t * h);
        mask_over_time(hist, mask, t, h, hm);
        if let Some(h0) = h0 {
            mul(h0, mask, h0m);
        }
        let h0m = h0.map(|_| &*h0m);
        let threads = crate::threads::current_threads();
        recurrent_weight_grad(d, hm, h0m, steps, go_backwards, dg, ldg, n, du, lddu, threads);
    });
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

    /// valid / started / first_valid of a mask, against their definitions on the boolean mask.
    fn check_against_definition(mask: &[u8], batch: usize, steps: usize, continued: Option<&[u8]>) {
        let buf = MaskBuf::from_steps(mask, batch, steps);
        let m = buf.view().continuing(continued);
        for back in [false, true] {
            for b in 0..batch {
                let input_t = |s: usize| if back { steps - 1 - s } else { s };
                let cont = continued.is_some_and(|c| c[b] != 0);
                let mut seen = cont;
                for s in 0..steps {
                    let v = mask[b * steps + input_t(s)] != 0;
                    assert_eq!(m.valid(b, s, steps, back), v, "valid b={b} s={s} back={back}");
                    seen |= v;
                    assert_eq!(m.started(b, s, steps, back), seen, "started b={b} s={s} back={back}");
                }
                let first = (0..steps).find(|&s| mask[b * steps + input_t(s)] != 0);
                let fv = m.first_valid(b, steps, back);
                match first {
                    _ if cont => assert_eq!(fv, 0),
                    Some(f) => assert_eq!(fv, f, "first_valid b={b} back={back}"),
                    // No valid step: any index whose gate gradient is zero works; never out of range.
                    None => assert!(fv <= steps),
                }
            }
        }
    }

    #[test]
    fn step_masks_follow_their_definition() {
        let (b, t) = (5, 6);
        #[rustfmt::skip]
        let mask: Vec<u8> = [
            [1, 1, 1, 0, 0, 0], // post-padded
            [0, 0, 1, 1, 1, 1], // pre-padded
            [1, 0, 1, 0, 0, 1], // holes
            [0, 0, 0, 0, 0, 0], // empty
            [0, 1, 1, 1, 1, 0], // one run inside
        ].concat();
        check_against_definition(&mask, b, t, None);
        check_against_definition(&mask, b, t, Some(&[0, 1, 0, 1, 1]));
        // Contiguous rows keep no per-step mask; a row with a hole makes one.
        assert!(MaskBuf::from_steps(&mask[..b * t - 3 * t], 2, t).steps.is_none());
        assert!(MaskBuf::from_steps(&mask, b, t).steps.is_some());
        // Lengths are the post-padded case of the same rules.
        let lens = [3usize, 0, 6];
        let m = StepMask::lengths(&lens);
        for (bi, &l) in lens.iter().enumerate() {
            for s in 0..t {
                assert_eq!(m.valid(bi, s, t, false), s < l);
                assert_eq!(m.valid(bi, s, t, true), t - 1 - s < l);
                assert_eq!(m.started(bi, s, t, true), l > 0 && s + l >= t);
            }
        }
        assert!(StepMask::ALL.valid(0, 0, 1, false) && StepMask::ALL.started(0, 0, 1, true));
    }

    #[test]
    fn recurrent_weight_grad_pairs_each_step_with_the_state_before_it_under_any_mask() {
        // hist = outputs: the state once started (held through masked steps), zeros before.
        let (b, t, h, n) = (3, 5, 2, 3);
        #[rustfmt::skip]
        let mask: Vec<u8> = [[0, 1, 0, 1, 1], [1, 1, 0, 0, 1], [0, 0, 0, 0, 0]].concat();
        let buf = MaskBuf::from_steps(&mask, b, t);
        let sm = buf.view();
        let d = RnnDims { batch: b, steps: t, inputs: 0, units: h };
        let h0: Vec<f32> = (0..b * h).map(|i| 0.5 + i as f32).collect();
        let mut state = h0.clone();
        let mut hist = vec![0.0f32; b * t * h];
        let mut dg = vec![0.0f32; b * t * n];
        let mut want = vec![0.0f64; h * n];
        for bi in 0..b {
            for s in 0..t {
                if mask[bi * t + s] != 0 {
                    for j in 0..n {
                        let g = 1.0 + (bi * 7 + s * 3 + j) as f32 * 0.25;
                        dg[(bi * t + s) * n + j] = g;
                        for k in 0..h {
                            want[k * n + j] += state[bi * h + k] as f64 * g as f64;
                        }
                    }
                    for k in 0..h {
                        state[bi * h + k] += 1.0 + s as f32; // the new state after a valid step
                    }
                }
                if sm.started(bi, s, t, false) {
                    hist[(bi * t + s) * h..(bi * t + s + 1) * h].copy_from_slice(&state[bi * h..(bi + 1) * h]);
                }
            }
        }
        let mut du = vec![0.0f32; h * n];
        recurrent_weight_grad(d, &hist, Some(&h0), sm, false, &dg, n, n, &mut du, n, 1);
        for (g, w) in du.iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-4 * w.abs().max(1.0), "{g} vs {w}");
        }
    }

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
        recurrent_weight_grad(d, &hist, Some(&h0), StepMask::ALL, false, &dg, ldg, n, &mut du, 6, 1);
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
