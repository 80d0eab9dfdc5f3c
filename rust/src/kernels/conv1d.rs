//! Conv1D over channels-last sequences `(batch, steps, channels)`, forward and backward, Keras 3
//! semantics.
//!
//! Math contract (Keras layout: `kernel` is `(K, C_in/groups, filters)` row-major, `bias` is
//! `(filters,)`; `s` = stride, `d` = dilation, `p` = left padding, `G` = groups, `cg = C_in/G`,
//! `fg = filters/G`; output channel `f` belongs to group `f / fg`, which reads input channels
//! `g·cg .. (g+1)·cg`):
//! - forward: `z[b, t, f] = bias[f] + Σ_k Σ_c x[b, t·s + k·d − p, g·cg + c] · W[k, c, f]` (cells
//!   outside `0..steps` are zero padding), `y = act(z)` (softmax over the filters axis);
//! - backward, given `dy` and the output `y`: `dz = dy ⊙ act'(·)` (from `y`), `db = Σ_{b,t} dz`,
//!   `dW[k, c, f] = Σ_{b,t} x[b, t·s + k·d − p, g·cg + c] · dz[b, t, f]`,
//!   `dx[b, i, g·cg + c] = Σ_{k, t : t·s + k·d − p = i} Σ_f dz[b, t, f] · W[k, c, f]`.
//!
//! Padding (TensorFlow's convention, which Keras uses): `valid` = none; `same` = output length
//! `ceil(steps/s)`, total padding `max((out−1)·s + (K−1)·d + 1 − steps, 0)`, split with the smaller
//! half on the left (`total/2`) and the extra cell on the right; `causal` = `d·(K−1)` on the left
//! only. Strides and dilation may be combined (Keras refuses it, PyTorch allows it; the formulas
//! above hold unchanged).
//!
//! Design (measured on the reference workload `Conv1D(64, 5, "same")`, B=64, T=1000, C=32, and on
//! the other shapes listed at `IM2COL_MAX_TAP_WORK`; 2 cores, AVX-512):
//! - forward is a sum of shifted GEMMs: each task owns a block of output steps of one sample, writes
//!   the bias into it, then for every tap `k` adds `x[rows t·s + k·d − p]·W[k]` (the rows of `x` read
//!   in place with a row stride of `s·C_in`, no copy; the steps whose tap falls into the padding
//!   are simply left out of that tap's GEMM), with each `W[k]` packed once per call ([`PackedB`]);
//!   the activation is applied while the block is in cache. For very small channel counts the taps'
//!   GEMMs are too thin and im2col wins instead: the receptive fields of a block of output rows are
//!   copied into a `(rows, K·C_in)` buffer (one per task, carved once per call from one scratch
//!   allocation) and multiplied by the whole kernel in one GEMM.
//! - backward `dW` and `db`: the output rows are cut into a fixed number of contiguous ranges (a
//!   partition that depends only on the shapes, so results are the same with any thread count); each task forms
//!   `dz` block by block, sums its columns and accumulates, per tap, `x[shifted rows]ᵀ·dz` into its
//!   own partial `dW`; the partials are added in order at the end. (This beat im2col + one
//!   `colᵀ·dz` GEMM per block on every shape measured: 6.4 vs 7.5 ms on the reference workload,
//!   3.1 vs 8.5 ms for C=64 F=64 K=3 groups=4.)
//! - backward `dx`: shifted GEMMs too, no col2im scatter: each task owns a block of input rows of one
//!   sample and, for every tap `k`, adds `dz[t-range]·W[k]ᵀ` onto the rows `t·s + k·d − p` of its
//!   block (a row stride of `s·C_in` in `dx`), with `W[k]ᵀ` packed once per call. No two tasks
//!   write the same row, so there is no reduction.
//! - groups: every GEMM is done per group on channel slices (row strides stay `C_in` / `filters`).
use crate::linalg::packed::{gemm_packed, PackedB};
use crate::linalg::{sgemm, Trans};
use crate::simd::activation::Activation;
use crate::simd::multiversion;
use rayon::prelude::*;

/// Rows per task block (output rows in the forward pass and `dW`, input rows for `dx`): a 256-row
/// block of output (64 KiB at 64 filters) stays in L2 between the GEMMs and the activation.
const BLOCK_ROWS: usize = 256;

/// The forward pass uses im2col when `groups == 1` and `C_in · filters` is at most this; shifted
/// GEMMs otherwise. Forward times (ms, 2 threads, B=64, T=1000, `same`), im2col vs shifted:
/// C=32 F=64 K=5 6.95 / 6.59; C=128 F=128 K=3 16.0 / 15.6; C=8 F=64 K=5 2.39 / 2.17; C=4 F=64 K=5
/// 1.34 / 1.42; C=16 F=16 K=5 2.03 / 2.57; C=1 F=32 K=7 0.47 / 0.59; C=64 F=64 K=3 groups=4
/// 10.1 / 6.4 (grouped im2col copies short runs).
const IM2COL_MAX_TAP_WORK: usize = 256;

/// Padding mode (Keras names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    Valid,
    Same,
    Causal,
}

impl Padding {
    pub fn parse(name: &str) -> Option<Padding> {
        match name {
            "valid" => Some(Padding::Valid),
            "same" => Some(Padding::Same),
            "causal" => Some(Padding::Causal),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Padding::Valid => "valid",
            Padding::Same => "same",
            Padding::Causal => "causal",
        }
    }
}

/// Output length and left padding of a 1-D window op (conv or pooling) over `steps` cells with a
/// window of `size` taps `dilation` apart, moved by `stride`. `None` when `padding` is `valid` and
/// the dilated window is longer than the input (no output position exists).
pub fn window_geometry(
    steps: usize,
    size: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
) -> Option<(usize, usize)> {
    assert!(size >= 1 && stride >= 1 && dilation >= 1, "window sizes must be positive");
    let span = dilation * (size - 1) + 1;
    match padding {
        Padding::Valid => (steps >= span).then(|| ((steps - span) / stride + 1, 0)),
        Padding::Same => {
            let out = steps.div_ceil(stride);
            let total = if out == 0 { 0 } else { ((out - 1) * stride + span).saturating_sub(steps) };
            Some((out, total / 2))
        }
        Padding::Causal => Some((steps.div_ceil(stride), span - 1)),
    }
}

/// Shape and options of one Conv1D call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dSpec {
    pub batch: usize,
    pub steps: usize,
    pub in_channels: usize,
    pub filters: usize,
    pub kernel_size: usize,
    pub stride: usize,
    pub dilation: usize,
    pub groups: usize,
    pub padding: Padding,
}

impl Conv1dSpec {
    /// Checks what the kernels rely on; the error says what is wrong (callers add the op name).
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("kernel_size", self.kernel_size),
            ("strides", self.stride),
            ("dilation_rate", self.dilation),
            ("groups", self.groups),
        ] {
            if v == 0 {
                return Err(format!("{name} must be a positive integer; received 0"));
            }
        }
        if self.dilation.checked_mul(self.kernel_size - 1).and_then(|v| v.checked_add(self.steps)).is_none() {
            return Err(format!(
                "dilation_rate {} * (kernel_size {} - 1) is too large",
                self.dilation, self.kernel_size
            ));
        }
        if !self.in_channels.is_multiple_of(self.groups) || !self.filters.is_multiple_of(self.groups) {
            return Err(format!(
                "input channels ({}) and filters ({}) must both be divisible by groups ({})",
                self.in_channels, self.filters, self.groups
            ));
        }
        if self.geometry().is_none() {
            return Err(format!(
                "the input has {} steps, shorter than the dilated kernel ({} = dilation_rate {} * (kernel_size {} - 1) + 1) with padding=\"valid\"; use padding=\"same\" or \"causal\", or a longer input",
                self.steps,
                self.span(),
                self.dilation,
                self.kernel_size
            ));
        }
        Ok(())
    }

    /// Length of the dilated kernel.
    pub fn span(&self) -> usize {
        self.dilation * (self.kernel_size - 1) + 1
    }

    fn geometry(&self) -> Option<(usize, usize)> {
        window_geometry(self.steps, self.kernel_size, self.stride, self.dilation, self.padding)
    }

    /// Output steps. Panics if [`check`](Self::check) would fail.
    pub fn out_steps(&self) -> usize {
        self.geometry().expect("conv1d: input shorter than the kernel with padding=valid").0
    }

    /// Zero cells added before the first step.
    pub fn pad_left(&self) -> usize {
        self.geometry().expect("conv1d: input shorter than the kernel with padding=valid").1
    }

    /// Multiply–adds of the forward pass.
    pub fn macs(&self) -> usize {
        self.batch * self.out_steps() * self.filters * self.kernel_size * (self.in_channels / self.groups)
    }

    fn cg(&self) -> usize {
        self.in_channels / self.groups
    }

    fn fg(&self) -> usize {
        self.filters / self.groups
    }

    /// Depth of one group's im2col row: `K · C_in/groups`.
    fn depth(&self) -> usize {
        self.kernel_size * self.cg()
    }
}

/// Copies the receptive fields of output rows `r0 .. r0 + nr` (flattened `batch × out_steps`) into
/// `col` (`nr × K·C_in`, row-major), zeros where a field reaches into the padding. `groups == 1`.
fn im2col(sp: &Conv1dSpec, x: &[f32], r0: usize, nr: usize, col: &mut [f32]) {
    let (lo, pad) = (sp.out_steps(), sp.pad_left() as isize);
    let (l, cin, kk) = (sp.steps as isize, sp.in_channels, sp.kernel_size);
    let (s, d) = (sp.stride as isize, sp.dilation as isize);
    let depth = sp.depth();
    if depth == 0 {
        return;
    }
    for (i, row) in col[..nr * depth].chunks_exact_mut(depth).enumerate() {
        let r = r0 + i;
        let (b, t) = (r / lo, (r % lo) as isize);
        let first = t * s - pad;
        let sample = &x[b * sp.steps * cin..(b + 1) * sp.steps * cin];
        if d == 1 && first >= 0 && first + kk as isize <= l {
            // Adjacent taps: the field is one contiguous run of x.
            let f = first as usize;
            row.copy_from_slice(&sample[f * cin..(f + kk) * cin]);
            continue;
        }
        for (k, dst) in row.chunks_exact_mut(cin).enumerate() {
            let src = first + k as isize * d;
            if src >= 0 && src < l {
                dst.copy_from_slice(&sample[src as usize * cin..(src as usize + 1) * cin]);
            } else {
                dst.fill(0.0);
            }
        }
    }
}

/// Splits `n` items into `parts` contiguous ranges of near-equal size (the first ones shorter).
fn split_ranges(n: usize, parts: usize) -> Vec<(usize, usize)> {
    let parts = parts.clamp(1, n.max(1));
    (0..parts).map(|i| (i * n / parts, (i + 1) * n / parts)).collect()
}

/// The steps `t` in `[t0, t1)` whose tap at offset `off` (input step `t·s + off`) lies in `[i0, i1)`,
/// as a (possibly empty) range.
fn tap_steps(off: isize, s: isize, (i0, i1): (isize, isize), (t0, t1): (isize, isize)) -> (isize, isize) {
    let lo = (-(off - i0).div_euclid(s)).max(t0); // ceil((i0 − off) / s)
    let hi = ((i1 - 1 - off).div_euclid(s) + 1).min(t1);
    (lo, hi.max(lo))
}

/// Each `W[k]` restricted to group `g`, packed: `packed[k·groups + g]` is `cg × fg` (or its
/// transpose, `fg × cg`, for `dx`).
fn pack_taps(sp: &Conv1dSpec, w: &[f32], trans: Trans) -> Vec<PackedB> {
    let (f, cg, fg) = (sp.filters, sp.cg(), sp.fg());
    (0..sp.kernel_size)
        .flat_map(|k| (0..sp.groups).map(move |g| (k, g)))
        .map(|(k, g)| {
            // (with no input channels the kernel is empty and so is every tap)
            let tap = if cg == 0 { &[][..] } else { &w[k * cg * f + g * fg..] };
            match trans {
                Trans::N => PackedB::pack(tap, f, cg, fg, Trans::N),
                Trans::T => PackedB::pack(tap, f, fg, cg, Trans::T),
            }
        })
        .collect()
}

/// Runs `f(sample, first_step, block)` over blocks of at most [`BLOCK_ROWS`] rows of `width` floats
/// of each sample's `steps` rows in `data`, in parallel.
fn for_sample_blocks(data: &mut [f32], steps: usize, width: usize, f: impl Fn(usize, usize, &mut [f32]) + Sync) {
    data.par_chunks_mut(steps * width).enumerate().for_each(|(b, sample)| {
        sample.par_chunks_mut(BLOCK_ROWS * width).enumerate().for_each(|(j, blk)| f(b, j * BLOCK_ROWS, blk));
    });
}

/// `out = act(conv1d(x, W) + b)`; `x` is `batch × steps × C_in`, `w` is `K × C_in/groups × filters`,
/// `out` is `batch × out_steps × filters`, fully written.
pub fn forward(sp: &Conv1dSpec, x: &[f32], w: &[f32], b: Option<&[f32]>, act: Activation, out: &mut [f32]) {
    if let Err(e) = sp.check() {
        panic!("conv1d forward: {e}");
    }
    let (lo, f) = (sp.out_steps(), sp.filters);
    assert_eq!(x.len(), sp.batch * sp.steps * sp.in_channels, "conv1d forward: x");
    assert_eq!(w.len(), sp.depth() * f, "conv1d forward: kernel");
    assert_eq!(out.len(), sp.batch * lo * f, "conv1d forward: out");
    if let Some(b) = b {
        assert_eq!(b.len(), f, "conv1d forward: bias");
    }
    if sp.batch * lo == 0 || f == 0 {
        return;
    }
    if sp.groups == 1 && sp.in_channels * f <= IM2COL_MAX_TAP_WORK {
        forward_im2col(sp, x, w, b, act, out);
    } else {
        forward_shifted(sp, x, w, b, act, out);
    }
}

/// [`forward`] as one accumulating GEMM per tap and group over each block of output steps.
fn forward_shifted(sp: &Conv1dSpec, x: &[f32], w: &[f32], b: Option<&[f32]>, act: Activation, out: &mut [f32]) {
    let (l, cin, f) = (sp.steps, sp.in_channels, sp.filters);
    let (lo, pad) = (sp.out_steps(), sp.pad_left() as isize);
    let (cg, fg, groups) = (sp.cg(), sp.fg(), sp.groups);
    let (s, d) = (sp.stride as isize, sp.dilation as isize);
    let packed = pack_taps(sp, w, Trans::N);
    for_sample_blocks(out, lo, f, |bi, t0, ob| {
        match b {
            Some(b) => ob.chunks_exact_mut(f).for_each(|row| row.copy_from_slice(b)),
            None => ob.fill(0.0),
        }
        let xs = &x[bi * l * cin..(bi + 1) * l * cin];
        let (t0, t1) = (t0 as isize, (t0 + ob.len() / f) as isize);
        for k in 0..sp.kernel_size {
            let off = k as isize * d - pad;
            let (ta, tb) = tap_steps(off, s, (0, l as isize), (t0, t1));
            if ta == tb {
                continue; // this tap reads only padding for the whole block
            }
            let src = (ta * s + off) as usize;
            for g in 0..groups {
                gemm_packed(
                    (tb - ta) as usize,
                    &xs[src * cin + g * cg..],
                    s as usize * cin,
                    &packed[k * groups + g],
                    &mut ob[(ta - t0) as usize * f + g * fg..],
                    f,
                    true,
                );
            }
        }
        act.forward_inplace(ob, f);
    });
}

/// [`forward`] by im2col (`groups == 1`): one GEMM of depth `K·C_in` per block of output rows.
fn forward_im2col(sp: &Conv1dSpec, x: &[f32], w: &[f32], b: Option<&[f32]>, act: Activation, out: &mut [f32]) {
    let (rows, f, depth) = (sp.batch * sp.out_steps(), sp.filters, sp.depth());
    let packed = PackedB::pack(w, f, depth, f, Trans::N);
    let threads = crate::threads::current_threads();
    let rb = super::block_rows(rows, threads, BLOCK_ROWS);
    let nblocks = rows.div_ceil(rb);
    // A few tasks per thread, each walking its blocks with one im2col buffer.
    let tasks = split_ranges(nblocks, threads * 4);
    let col_len = (rb * depth).max(1);
    crate::workspace::with_scratch(tasks.len() * col_len, |scratch| {
        let mut outs: Vec<&mut [f32]> = Vec::with_capacity(tasks.len());
        let mut rest = &mut *out;
        for &(b0, b1) in &tasks {
            let (head, tail) = rest.split_at_mut(((b1 * rb).min(rows) - b0 * rb) * f);
            outs.push(head);
            rest = tail;
        }
        let cols = scratch.par_chunks_exact_mut(col_len);
        outs.into_par_iter().zip(tasks.par_iter()).zip(cols).for_each(|((ot, &(b0, _)), col)| {
            for (j, ob) in ot.chunks_mut(rb * f).enumerate() {
                let nr = ob.len() / f;
                im2col(sp, x, (b0 + j) * rb, nr, col);
                gemm_packed(nr, col, depth, &packed, ob, f, false);
                if let Some(b) = b {
                    ob.chunks_exact_mut(f).for_each(|row| crate::kernels::optim::axpy(1.0, b, row));
                }
                act.forward_inplace(ob, f);
            }
        });
    });
}

/// Gradients of [`forward`]. `y` is the forward output and `dy` the gradient of the loss by it.
/// `dx` (like `x`) and `db` (`filters`) are computed only when given; `dw` (like `w`) always.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    sp: &Conv1dSpec,
    x: &[f32],
    w: &[f32],
    y: &[f32],
    dy: &[f32],
    act: Activation,
    dx: Option<&mut [f32]>,
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) {
    if let Err(e) = sp.check() {
        panic!("conv1d backward: {e}");
    }
    let (lo, f) = (sp.out_steps(), sp.filters);
    let rows = sp.batch * lo;
    assert_eq!(x.len(), sp.batch * sp.steps * sp.in_channels, "conv1d backward: x");
    assert_eq!(w.len(), sp.depth() * f, "conv1d backward: kernel");
    assert_eq!(y.len(), rows * f, "conv1d backward: y");
    assert_eq!(dy.len(), rows * f, "conv1d backward: dy");
    assert_eq!(dw.len(), w.len(), "conv1d backward: dw");
    if let Some(dx) = dx.as_deref() {
        assert_eq!(dx.len(), x.len(), "conv1d backward: dx");
    }
    if let Some(db) = db.as_deref() {
        assert_eq!(db.len(), f, "conv1d backward: db");
    }
    if rows == 0 || f == 0 {
        dw.fill(0.0);
        if let Some(db) = db {
            db.fill(0.0);
        }
        if let Some(dx) = dx {
            dx.fill(0.0);
        }
        return;
    }
    // A fixed partition of the output rows, independent of scheduling and of the thread count, so
    // the partial sums, and the gradients, are bit-identical with any number of threads. Fewer
    // parts when the kernel is so large that the per-part dW copies would cost more than 16 MiB.
    let part_len = w.len() + f;
    let parts_cap = (PARTIALS_BUDGET_FLOATS / part_len.max(1)).max(1);
    let tasks = split_ranges(rows, super::REDUCTION_PARTS.min(parts_cap));
    let linear = act == Activation::Linear;
    // dz is kept whole only when dx needs it afterwards; otherwise each task forms it block by
    // block in a buffer that stays in cache (it is consumed by db and dW right away).
    let keep_dz = dx.is_some();
    let dz_len = match (linear, keep_dz) {
        (true, _) => 0,
        (false, true) => rows * f,
        (false, false) => tasks.len() * BLOCK_ROWS * f,
    };
    // dW by im2col blocks that may span samples, when per-sample blocks would be short (few
    // output steps per sample, e.g. the sub-sequences of a CNN-LSTM) or the per-tap products thin
    // (few input channels): there, thousands of tiny per-tap GEMMs cost more than the copy.
    // Measured on TimeDistributed(Conv1D(64, 3)) over (1024, 32, 1): 3.9 ms -> see the commit.
    let dw_im2col = sp.groups == 1 && (lo < BLOCK_ROWS || sp.depth() <= 32) && sp.depth() > 0;
    // A receptive field of a few numbers (e.g. Conv1D(k=3) on one feature): a GEMM with 3 rows is
    // all overhead, so each row of dz is folded into db and dW directly while it is in L1, in
    // blocks small enough to keep dz there.
    let small_depth = dw_im2col && sp.depth() <= SMALL_DEPTH;
    let col_len = if dw_im2col { BLOCK_ROWS * sp.depth() } else { 0 };
    crate::workspace::with_scratch(dz_len + tasks.len() * (part_len + col_len), |scratch| {
        let (dz_buf, rest) = scratch.split_at_mut(dz_len);
        let (parts, cols) = rest.split_at_mut(tasks.len() * part_len);

        // Pass 1, one task per range: dz, partial db, partial dW.
        let mut dz_slices: Vec<Option<&mut [f32]>> = Vec::with_capacity(tasks.len());
        let mut dz_rest = &mut *dz_buf;
        for &(r0, r1) in &tasks {
            if linear {
                dz_slices.push(None);
            } else {
                let len = if keep_dz { (r1 - r0) * f } else { BLOCK_ROWS * f };
                let (head, tail) = dz_rest.split_at_mut(len);
                dz_slices.push(Some(head));
                dz_rest = tail;
            }
        }
        let mut col_chunks: Vec<&mut [f32]> = if dw_im2col {
            cols.chunks_mut(col_len).collect()
        } else {
            (0..tasks.len()).map(|_| &mut [][..]).collect()
        };
        dz_slices
            .into_par_iter()
            .zip(tasks.par_iter())
            .zip(parts.par_chunks_mut(part_len).zip(col_chunks.par_iter_mut()))
            .for_each(|((mut dz_task, &(r0, r1)), (part, col))| {
                let (pdw, pdb) = part.split_at_mut(w.len());
                pdw.fill(0.0);
                pdb.fill(0.0);
                // Blocks that never cross a sample boundary (the taps shift within one sample),
                // or any rows for the im2col path.
                let mut r = r0;
                while r < r1 {
                    let t0 = r % lo;
                    let nr = if small_depth {
                        SMALL_DEPTH_BLOCK.min(r1 - r)
                    } else if dw_im2col {
                        BLOCK_ROWS.min(r1 - r)
                    } else {
                        (lo - t0).min(BLOCK_ROWS).min(r1 - r)
                    };
                    let span = r * f..(r + nr) * f;
                    let dzb: &[f32] = match dz_task.as_deref_mut() {
                        Some(buf) => {
                            let at = if keep_dz { (r - r0) * f } else { 0 };
                            let blk = &mut buf[at..at + nr * f];
                            act.backward(&y[span.clone()], &dy[span], blk, f);
                            blk
                        }
                        None => &dy[span],
                    };
                    if small_depth {
                        let depth = sp.depth();
                        im2col(sp, x, r, nr, col);
                        for (dz_row, col_row) in dzb.chunks_exact(f).zip(col.chunks_exact(depth)) {
                            accumulate_outer_row(dz_row, col_row, pdw, pdb);
                        }
                        r += nr;
                        continue;
                    }
                    crate::kernels::dense::column_sums_acc(dzb, f, pdb);
                    if dw_im2col {
                        let depth = sp.depth();
                        im2col(sp, x, r, nr, col);
                        sgemm(Trans::T, Trans::N, depth, f, nr, 1.0, &col[..nr * depth], depth, dzb, f, 1.0, pdw, f, 1);
                    } else {
                        dw_block(sp, x, r / lo, t0, dzb, pdw);
                    }
                    r += nr;
                }
            });
        let (first, others) = parts.split_at_mut(part_len);
        for p in others.chunks_exact(part_len) {
            crate::kernels::optim::axpy(1.0, p, first);
        }
        dw.copy_from_slice(&first[..w.len()]);
        if let Some(db) = db {
            db.copy_from_slice(&first[w.len()..]);
        }

        // Pass 2: dx by shifted GEMMs over blocks of input rows.
        if let Some(dx) = dx {
            let dz_all: &[f32] = if linear { dy } else { dz_buf };
            dx_shifted(sp, w, dz_all, dx);
        }
    });
}

/// Memory for the per-part partial `dW`/`db` of a backward call, in floats (16 MiB).
const PARTIALS_BUDGET_FLOATS: usize = 4 << 20;

/// Receptive fields up to this many numbers (`K·C_in`) take the row-wise dW path.
const SMALL_DEPTH: usize = 8;
/// Rows per block on that path: `dz` of 32 rows × 64 filters is 8 KiB, well inside L1.
const SMALL_DEPTH_BLOCK: usize = 32;

multiversion! {
    /// One output row's contribution: `db += dz`, `dW[j, :] += col[j]·dz` (`dW` rows of `dz.len()`).
    fn accumulate_outer_row(dz: &[f32], col: &[f32], dw: &mut [f32], db: &mut [f32]) {
        let f = dz.len();
        for (d, &v) in db.iter_mut().zip(dz) { *d += v; }
        for (&cj, row) in col.iter().zip(dw.chunks_exact_mut(f)) {
            for (d, &v) in row.iter_mut().zip(dz) { *d += cj * v; }
        }
    }
}

/// `pdw[k] += x[b, rows t·s + k·d − p]ᵀ · dz[t]` for the output steps `t0 ..` of sample `b` held in
/// `dz` (one block), per tap and group.
fn dw_block(sp: &Conv1dSpec, x: &[f32], b: usize, t0: usize, dz: &[f32], pdw: &mut [f32]) {
    let (l, cin, f) = (sp.steps, sp.in_channels, sp.filters);
    let (cg, fg, pad) = (sp.cg(), sp.fg(), sp.pad_left() as isize);
    let (s, d) = (sp.stride as isize, sp.dilation as isize);
    if cg == 0 {
        return; // no input channels: dW is empty
    }
    let xs = &x[b * l * cin..(b + 1) * l * cin];
    let (t0, t1) = (t0 as isize, (t0 + dz.len() / f) as isize);
    for k in 0..sp.kernel_size {
        let off = k as isize * d - pad;
        let (ta, tb) = tap_steps(off, s, (0, l as isize), (t0, t1));
        if ta == tb {
            continue;
        }
        let src = (ta * s + off) as usize;
        for g in 0..sp.groups {
            sgemm(
                Trans::T,
                Trans::N,
                cg,
                fg,
                (tb - ta) as usize,
                1.0,
                &xs[src * cin + g * cg..],
                s as usize * cin,
                &dz[(ta - t0) as usize * f + g * fg..],
                f,
                1.0,
                &mut pdw[k * cg * f + g * fg..],
                f,
                1,
            );
        }
    }
}

/// `dx` from `dz` (see the module doc): per block of input rows, one accumulating GEMM per tap and
/// group against `W[k]ᵀ` packed once.
fn dx_shifted(sp: &Conv1dSpec, w: &[f32], dz: &[f32], dx: &mut [f32]) {
    let (l, cin, f) = (sp.steps, sp.in_channels, sp.filters);
    let (lo, pad) = (sp.out_steps(), sp.pad_left() as isize);
    let (cg, fg, groups) = (sp.cg(), sp.fg(), sp.groups);
    let (s, d) = (sp.stride as isize, sp.dilation as isize);
    if l == 0 || cin == 0 {
        return;
    }
    let packed = pack_taps(sp, w, Trans::T);
    for_sample_blocks(dx, l, cin, |b, i0, dxb| {
        dxb.fill(0.0);
        let dzs = &dz[b * lo * f..(b + 1) * lo * f];
        let (i0, i1) = (i0 as isize, (i0 + dxb.len() / cin) as isize);
        for k in 0..sp.kernel_size {
            // Rows i = t·s + off with i in [i0, i1) and t in [0, lo).
            let off = k as isize * d - pad;
            let (ta, tb) = tap_steps(off, s, (i0, i1), (0, lo as isize));
            if ta == tb {
                continue;
            }
            let first = (ta * s + off - i0) as usize;
            for g in 0..groups {
                gemm_packed(
                    (tb - ta) as usize,
                    &dzs[ta as usize * f + g * fg..],
                    f,
                    &packed[k * groups + g],
                    &mut dxb[first * cin + g * cg..],
                    s as usize * cin,
                    true,
                );
            }
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
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Naive f64 forward (pre-activation), written from the definition with explicit padding.
    fn reference_z(sp: &Conv1dSpec, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f64> {
        let (lo, pad) = (sp.out_steps(), sp.pad_left());
        let (cin, f, cg, fg) = (sp.in_channels, sp.filters, sp.in_channels / sp.groups, sp.filters / sp.groups);
        let mut z = vec![0.0f64; sp.batch * lo * f];
        for bi in 0..sp.batch {
            for t in 0..lo {
                for o in 0..f {
                    let g = o / fg;
                    let mut acc = b[o] as f64;
                    for k in 0..sp.kernel_size {
                        let i = (t * sp.stride + k * sp.dilation) as isize - pad as isize;
                        if i < 0 || i >= sp.steps as isize {
                            continue;
                        }
                        for c in 0..cg {
                            acc += x[(bi * sp.steps + i as usize) * cin + g * cg + c] as f64
                                * w[(k * cg + c) * f + o] as f64;
                        }
                    }
                    z[(bi * lo + t) * f + o] = acc;
                }
            }
        }
        z
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

    fn loss(sp: &Conv1dSpec, x: &[f32], w: &[f32], b: &[f32], act: Activation, g: &[f32]) -> f64 {
        let mut z = reference_z(sp, x, w, b);
        act_f64(act, &mut z, sp.filters);
        z.iter().zip(g).map(|(y, g)| y * *g as f64).sum()
    }

    #[allow(clippy::too_many_arguments)]
    fn spec(
        b: usize,
        l: usize,
        cin: usize,
        f: usize,
        k: usize,
        s: usize,
        d: usize,
        g: usize,
        p: Padding,
    ) -> Conv1dSpec {
        Conv1dSpec {
            batch: b,
            steps: l,
            in_channels: cin,
            filters: f,
            kernel_size: k,
            stride: s,
            dilation: d,
            groups: g,
            padding: p,
        }
    }

    fn specs() -> Vec<Conv1dSpec> {
        use Padding::*;
        vec![
            spec(2, 11, 3, 4, 3, 1, 1, 1, Same),
            spec(2, 10, 4, 6, 4, 1, 1, 1, Same),
            spec(3, 13, 4, 6, 3, 2, 2, 2, Same),
            spec(1, 9, 2, 3, 2, 3, 1, 1, Causal),
            spec(2, 12, 6, 4, 3, 2, 3, 2, Valid),
            spec(1, 1, 3, 2, 5, 1, 2, 1, Same),
            spec(1, 1, 3, 2, 5, 4, 1, 1, Causal),
            spec(0, 5, 2, 2, 2, 1, 1, 1, Same),
            spec(2, 7, 2, 3, 7, 1, 1, 1, Valid),
            spec(3, 600, 5, 7, 5, 1, 1, 1, Same),
            spec(2, 300, 8, 8, 3, 3, 2, 4, Causal),
            // C_in·filters > IM2COL_MAX_TAP_WORK with one group: the shifted-GEMM forward
            spec(2, 530, 17, 19, 4, 2, 1, 1, Same),
            spec(2, 9, 17, 16, 3, 2, 1, 1, Same),
            spec(1, 40, 20, 16, 3, 1, 2, 1, Valid),
            spec(2, 6, 18, 15, 2, 1, 1, 1, Causal),
            // no input channels (output = bias), with and without groups
            spec(2, 5, 0, 4, 3, 1, 1, 2, Same),
            spec(2, 5, 0, 4, 3, 1, 1, 1, Causal),
        ]
    }

    #[test]
    fn geometry_matches_keras_formulas() {
        assert_eq!(window_geometry(10, 4, 1, 1, Padding::Same), Some((10, 1))); // pad 1 left, 2 right
        assert_eq!(window_geometry(10, 3, 3, 1, Padding::Same), Some((4, 1))); // total 2
        assert_eq!(window_geometry(7, 3, 2, 2, Padding::Valid), Some((2, 0)));
        assert_eq!(window_geometry(4, 3, 1, 2, Padding::Valid), None);
        assert_eq!(window_geometry(9, 3, 2, 2, Padding::Causal), Some((5, 4)));
        assert_eq!(window_geometry(0, 3, 1, 1, Padding::Same), Some((0, 0)));
    }

    #[test]
    fn forward_matches_naive_loop() {
        let acts = [Activation::Linear, Activation::Relu, Activation::Tanh, Activation::Softmax];
        for sp in specs() {
            let (lo, f) = (sp.out_steps(), sp.filters);
            let x = vals(sp.batch * sp.steps * sp.in_channels, 1);
            let w = vals(sp.kernel_size * sp.in_channels / sp.groups * f, 2);
            let b = vals(f, 3);
            for act in acts {
                let mut out = vec![f32::NAN; sp.batch * lo * f];
                crate::threads::install(|| forward(&sp, &x, &w, Some(&b), act, &mut out));
                let mut want = reference_z(&sp, &x, &w, &b);
                act_f64(act, &mut want, f);
                for (i, (g, r)) in out.iter().zip(&want).enumerate() {
                    assert!((*g as f64 - r).abs() <= 1e-5 * (1.0 + r.abs()), "{act:?} {sp:?} [{i}]: {g} vs {r}");
                }
            }
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        for sp in specs().into_iter().filter(|s| s.batch * s.steps <= 40) {
            for act in [Activation::Linear, Activation::Sigmoid, Activation::Softmax] {
                let f = sp.filters;
                let x = vals(sp.batch * sp.steps * sp.in_channels, 4);
                let w = vals(sp.kernel_size * sp.in_channels / sp.groups * f, 5);
                let b = vals(f, 6);
                let g = vals(sp.batch * sp.out_steps() * f, 7);
                let mut y = vec![0.0; g.len()];
                forward(&sp, &x, &w, Some(&b), act, &mut y);
                let (mut dx, mut dw, mut db) = (vec![f32::NAN; x.len()], vec![f32::NAN; w.len()], vec![0.0; f]);
                crate::threads::install(|| backward(&sp, &x, &w, &y, &g, act, Some(&mut dx), &mut dw, Some(&mut db)));
                let h = 1e-3f32;
                let check = |which: usize, got: &[f32]| {
                    for i in 0..got.len() {
                        let mut p = [x.clone(), w.clone(), b.clone()];
                        let mut m = [x.clone(), w.clone(), b.clone()];
                        p[which][i] += h;
                        m[which][i] -= h;
                        let num = (loss(&sp, &p[0], &p[1], &p[2], act, &g) - loss(&sp, &m[0], &m[1], &m[2], act, &g))
                            / (2.0 * h as f64);
                        assert!(
                            (got[i] as f64 - num).abs() < 2e-3 * (1.0 + num.abs()),
                            "{act:?} {sp:?} grad {which}[{i}]: {} vs {num}",
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

    /// Larger shapes (several blocks and tasks): backward against the analytic f64 gradients.
    #[test]
    fn backward_matches_naive_gradients_on_large_shapes() {
        for sp in specs() {
            let (lo, f, cin, cg, fg) =
                (sp.out_steps(), sp.filters, sp.in_channels, sp.in_channels / sp.groups, sp.filters / sp.groups);
            let x = vals(sp.batch * sp.steps * cin, 8);
            let w = vals(sp.kernel_size * cg * f, 9);
            let dy = vals(sp.batch * lo * f, 10);
            let y = vec![0.0; dy.len()]; // unused for linear
            let (mut dx, mut dw, mut db) = (vec![f32::NAN; x.len()], vec![f32::NAN; w.len()], vec![f32::NAN; f]);
            crate::threads::install(|| {
                backward(&sp, &x, &w, &y, &dy, Activation::Linear, Some(&mut dx), &mut dw, Some(&mut db))
            });
            let (mut rdx, mut rdw, mut rdb) = (vec![0.0f64; x.len()], vec![0.0f64; w.len()], vec![0.0f64; f]);
            for bi in 0..sp.batch {
                for t in 0..lo {
                    for o in 0..f {
                        let gz = dy[(bi * lo + t) * f + o] as f64;
                        rdb[o] += gz;
                        let g = o / fg;
                        for k in 0..sp.kernel_size {
                            let i = (t * sp.stride + k * sp.dilation) as isize - sp.pad_left() as isize;
                            if i < 0 || i >= sp.steps as isize {
                                continue;
                            }
                            for c in 0..cg {
                                let xi = (bi * sp.steps + i as usize) * cin + g * cg + c;
                                let wi = (k * cg + c) * f + o;
                                rdx[xi] += gz * w[wi] as f64;
                                rdw[wi] += gz * x[xi] as f64;
                            }
                        }
                    }
                }
            }
            for (what, got, want) in [("dx", &dx, &rdx), ("dw", &dw, &rdw), ("db", &db, &rdb)] {
                for (i, (g, r)) in got.iter().zip(want.iter()).enumerate() {
                    assert!((*g as f64 - r).abs() <= 1e-4 * (1.0 + r.abs()), "{what} {sp:?} [{i}]: {g} vs {r}");
                }
            }
        }
    }

    /// The two forward strategies agree on every one-group spec (each is used for only some shapes).
    #[test]
    fn im2col_and_shifted_forward_agree() {
        for sp in specs().into_iter().filter(|s| s.groups == 1 && s.batch * s.out_steps() > 0) {
            let f = sp.filters;
            let x = vals(sp.batch * sp.steps * sp.in_channels, 11);
            let w = vals(sp.kernel_size * sp.in_channels * f, 12);
            let b = vals(f, 13);
            let mut a = vec![f32::NAN; sp.batch * sp.out_steps() * f];
            let mut c = a.clone();
            crate::threads::install(|| {
                forward_im2col(&sp, &x, &w, Some(&b), Activation::Tanh, &mut a);
                forward_shifted(&sp, &x, &w, Some(&b), Activation::Tanh, &mut c);
            });
            for (i, (p, q)) in a.iter().zip(&c).enumerate() {
                assert!((p - q).abs() <= 1e-5, "{sp:?} [{i}]: {p} vs {q}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "shorter than the dilated kernel")]
    fn valid_padding_on_a_short_input_panics_with_a_message() {
        let sp = spec(1, 4, 1, 1, 3, 1, 2, 1, Padding::Valid);
        forward(&sp, &[0.0; 4], &[0.0; 3], None, Activation::Linear, &mut []);
    }
}
