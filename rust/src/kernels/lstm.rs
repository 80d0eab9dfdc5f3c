//! LSTM forward (training and inference) and backward, Keras semantics.
//!
//! Math contract (Keras 3; gate blocks i, f, c, o in `kernel (F, 4H)`, `recurrent_kernel (H, 4H)`,
//! `bias (4H,)`; `σ` = recurrent_activation, `φ` = activation):
//! ```text
//! z_t = x_t·W + h_{t-1}·U + b        split into z_i, z_f, z_c, z_o
//! i = σ(z_i)  f = σ(z_f)  g = φ(z_c)  o = σ(z_o)
//! c_t = f ⊙ c_{t-1} + i ⊙ g          h_t = o ⊙ φ(c_t)
//! ```
//! Masked steps (`t >= len[b]`) leave `h`, `c` unchanged and output the previous output (zeros
//! before the row's first valid step; see [`StepMask`]).
//!
//! Kernel design (what cuDNN/oneDNN do):
//! 1. `[W; U]` is stacked and packed once per call (`linalg::packed`). Threads each own a
//!    contiguous slice of the batch and run all steps on it (no per-step barrier). Per step: one
//!    GEMM `[x_t | h_{t-1}]·[W; U]` writes that step's gates, then the bias, the gate nonlinearities
//!    and the state update are fused over each row while it is in cache; `h` goes straight into the
//!    output. Nothing is allocated inside the time loop.
//!
//!    Why not the usual separate input projection (one big `X·W` over all `B·T` rows first)? With
//!    few input features (F = 8..64 is typical for time series) that GEMM is memory-bound: it
//!    writes a `(B, T, 4H)` buffer that the loop then reads and rewrites, measured at ~40 GFLOP/s
//!    against ~100 for the fused step; stacking also removes the time reversal for
//!    `go_backwards` and lets inference run with a `rows×4H` buffer per thread instead of `B·T·4H`.
//!    With a wide input (`F >= 128` and `F >= H`, e.g. the 960 features a CNN-LSTM's convolutions
//!    hand to it) the balance flips: `X·W` is most of the work and runs better as one GEMM over
//!    all `B·T` rows than as `T` GEMMs over `B/threads` rows, so it is hoisted (written into the
//!    gates, onto which each step accumulates `h·U`), and backward likewise forms `dx = dG·Wᵀ` in
//!    one GEMM after the loop. Measured on B=256, T=4, H=100 (CPU time, train step): F=128 7.3 vs
//!    7.9 ms, F=256 10.4 vs 11.7, F=960 28.8 vs 29.7; F=64 equal. `SEQCORE_LSTM_HOIST=0|1` forces
//!    either design for such comparisons.
//! 2. Training keeps the post-activation gates and `c_t`; backward overwrites the gates with their
//!    gradients in place, so the tape costs `6·B·T·H` floats in all (with the output).
//! 3. Backward per step: the fused gate-gradient math and one GEMM `dG_t·[W; U]ᵀ = [dx_t | dh_{t-1}]`.
//!    After the loop `dW = Xᵀ·dG`, `db = Σ dG` and `dU = Σ h_{t-1}ᵀ·dG_t` are single big GEMMs.
use super::dense;
use super::rnn::{
    self, add_inplace, batch_chunk, copy_or_zero, mask_row, mul, mul_inplace, split_opt, Chunk, GateMasks, RnnDims,
    StepMask,
};
use crate::linalg::gemv::gemv_acc;
use crate::linalg::packed::{gemm_packed, PackedB};
use crate::linalg::{sgemm, Trans};
use crate::simd::activation::Activation;
use crate::simd::{math, multiversion};
use rayon::prelude::*;

#[derive(Clone, Copy, Debug)]
pub struct LstmSpec {
    pub dims: RnnDims,
    pub activation: Activation,
    pub recurrent_activation: Activation,
    pub go_backwards: bool,
}

impl LstmSpec {
    fn is_default_activations(&self) -> bool {
        self.activation == Activation::Tanh && self.recurrent_activation == Activation::Sigmoid
    }
}

/// Read-only inputs of a forward or backward call.
#[derive(Clone, Copy)]
pub struct LstmParams<'a> {
    /// `(B, T, F)`
    pub x: &'a [f32],
    /// `(F, 4H)`
    pub kernel: &'a [f32],
    /// `(H, 4H)`
    pub recurrent_kernel: &'a [f32],
    /// `(4H,)`
    pub bias: Option<&'a [f32]>,
    /// `(B, H)`, zeros when absent
    pub h0: Option<&'a [f32]>,
    /// `(B, H)`, zeros when absent
    pub c0: Option<&'a [f32]>,
    /// `(B,)`, each in `0..=T`
    pub mask: StepMask<'a>,
    /// Per-gate dropout masks (training with `recurrent_dropout`); none by default
    pub masks: GateMasks<'a>,
}

/// What a training forward keeps for backward: post-activation gates `(B, T, 4H)` and cell states
/// `(B, T, H)`, in processing order.
pub struct LstmTape<'a> {
    pub gates: &'a mut [f32],
    pub cells: &'a mut [f32],
}

fn check(spec: &LstmSpec, p: &LstmParams) {
    let RnnDims { batch: b, steps: t, inputs: f, units: h } = spec.dims;
    assert_eq!(p.x.len(), b * t * f, "lstm: x");
    assert_eq!(p.kernel.len(), f * 4 * h, "lstm: kernel");
    assert_eq!(p.recurrent_kernel.len(), h * 4 * h, "lstm: recurrent_kernel");
    assert!(p.bias.is_none_or(|v| v.len() == 4 * h), "lstm: bias");
    assert!(p.h0.is_none_or(|v| v.len() == b * h), "lstm: h0");
    assert!(p.c0.is_none_or(|v| v.len() == b * h), "lstm: c0");
    p.mask.check("lstm", b, t);
    assert!(rnn::CELL_ACTIVATIONS.contains(&spec.activation), "lstm: activation");
    assert!(rnn::CELL_ACTIVATIONS.contains(&spec.recurrent_activation), "lstm: recurrent_activation");
    p.masks.check("lstm", 4, spec.dims);
}

/// The recurrent kernel packed for the forward steps: all of `U` in one, or with recurrent-dropout
/// masks one `U_g` per gate (each gate multiplies its own masked copy of `h_{t-1}`).
fn pack_recurrent(p: &LstmParams, h: usize) -> Vec<PackedB> {
    let g4 = 4 * h;
    match p.masks.recurrent {
        None => vec![PackedB::pack(p.recurrent_kernel, g4, h, g4, Trans::N)],
        Some(_) => (0..4).map(|g| PackedB::pack(&p.recurrent_kernel[g * h..], g4, h, h, Trans::N)).collect(),
    }
}

/// Forward pass. `out` `(B, T, H)` receives every step's output; `h_last`, `c_last` `(B, H)` the
/// final states. With `tape`, saves what [`backward`] needs (training); without, saves nothing.
pub fn forward(
    spec: &LstmSpec,
    p: &LstmParams,
    out: &mut [f32],
    h_last: &mut [f32],
    c_last: &mut [f32],
    tape: Option<LstmTape>,
) {
    check(spec, p);
    let d = spec.dims;
    let (b, t, h) = (d.batch, d.steps, d.units);
    assert_eq!(out.len(), b * t * h, "lstm: out");
    assert_eq!(h_last.len(), b * h, "lstm: h_last");
    assert_eq!(c_last.len(), b * h, "lstm: c_last");
    if b == 0 || h == 0 {
        return;
    }
    if t == 0 {
        // No step: the final states are the initial ones.
        copy_or_zero(h_last, p.h0);
        copy_or_zero(c_last, p.c0);
        return;
    }
    if let Some(tape) = &tape {
        assert_eq!(tape.gates.len(), b * t * 4 * h, "lstm: gates");
        assert_eq!(tape.cells.len(), b * t * h, "lstm: cells");
    }
    let (gates, cells) = match tape {
        Some(tape) => (Some(tape.gates), Some(tape.cells)),
        None => (None, None),
    };
    let f = d.inputs;
    let g4 = 4 * h;
    if !hoist_input(d) && !p.masks.any() {
        // [W; U] stacked and packed once for every step and thread: each step is one GEMM
        // [x_t | h_{t-1}]·[W; U].
        let wu = PackedB::pack_stacked(&[(p.kernel, f), (p.recurrent_kernel, h)], g4, g4, Trans::N);
        return forward_steps(spec, p, &[wu], false, out, h_last, c_last, gates, cells);
    }
    // Wide input (or per-gate dropout masks): X·W for every step at once, then per step only
    // h_{t-1}·U accumulated onto it.
    let threads = crate::threads::current_threads();
    // One sample without recurrent dropout: `U` is read in place by the GEMV, so nothing is packed
    // (packing the LSTM(128) `U` cost about 20 µs per call, a tenth of a T=100 inference).
    let in_place = b == 1 && p.masks.recurrent.is_none();
    let u = if in_place { Vec::new() } else { pack_recurrent(p, h) };
    let project = |zx: &mut [f32]| {
        match p.masks.input {
            Some(m) => rnn::masked_input_projection(d, 4, p.x, m, p.kernel, zx),
            None => sgemm(Trans::N, Trans::N, b * t, g4, f, 1.0, p.x, f, p.kernel, g4, 0.0, zx, g4, threads),
        }
        if spec.go_backwards {
            rnn::reverse_time(zx, d, g4); // into processing order
        }
    };
    match gates {
        Some(g) => {
            project(g);
            forward_steps(spec, p, &u, true, out, h_last, c_last, Some(g), cells);
        }
        // Inference: the projections live in scratch memory for the call.
        None => crate::workspace::with_scratch(b * t * g4, |zx| {
            project(zx);
            forward_steps(spec, p, &u, true, out, h_last, c_last, Some(zx), cells);
        }),
    }
}

/// From this many input features (and no fewer than units) the input projection is one GEMM over
/// all steps before the loop; below, it is fused into each step's GEMM (see the module docs).
const HOIST_MIN_INPUTS: usize = 128;

/// Lets the tests run both designs on the same small case (0: default, 1: fused, 2: hoisted). A
/// global, not a thread-local: the kernels run inside the thread pool.
#[cfg(test)]
static TEST_HOIST: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
#[cfg(test)]
static TEST_HOIST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Whether the input projection `X·W` runs as one GEMM over all steps before the time loop.
/// `SEQCORE_LSTM_HOIST=0|1` forces the choice, to benchmark one design against the other.
fn hoist_input(d: RnnDims) -> bool {
    #[cfg(test)]
    match TEST_HOIST.load(std::sync::atomic::Ordering::SeqCst) {
        1 => return false,
        2 => return true,
        _ => {}
    }
    static FORCE: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();
    let force = FORCE.get_or_init(|| match std::env::var("SEQCORE_LSTM_HOIST").as_deref() {
        Ok("1") => Some(true),
        Ok("0") => Some(false),
        _ => None,
    });
    force.unwrap_or(
        (d.inputs >= HOIST_MIN_INPUTS && d.inputs >= d.units) || (d.batch <= HOIST_MAX_BATCH && d.steps >= 8),
    )
}

/// Up to this batch the input projection is hoisted whatever the width: with one or two rows a
/// step is bound by reading its weights, and hoisting leaves only `U` to read per step (`X·W` is
/// one GEMM for all steps). B=1, T=100, F=32, H=128 inference: 584 -> 540 µs.
const HOIST_MAX_BATCH: usize = 2;

/// The time loop over the batch slices of all threads. `hoisted`: `gates` already holds `x_t·W`
/// for every step and `wu` is `U` alone (accumulated onto it; one `U_g` per gate with
/// recurrent-dropout masks), or empty for one sample: then each step reads `U` in place with
/// [`gemv_acc`] (bound by streaming the weights, which packing does not speed up); else `wu` is
/// `[W; U]`.
#[allow(clippy::too_many_arguments)]
fn forward_steps(
    spec: &LstmSpec,
    p: &LstmParams,
    wu: &[PackedB],
    hoisted: bool,
    out: &mut [f32],
    h_last: &mut [f32],
    c_last: &mut [f32],
    gates: Option<&mut [f32]>,
    cells: Option<&mut [f32]>,
) {
    let RnnDims { batch: b, steps: t, units: h, .. } = spec.dims;
    let g4 = 4 * h;
    let nb = batch_chunk(b, crate::threads::current_threads());
    let nchunks = b.div_ceil(nb);
    if nchunks == 1 {
        // One slice: run it here, no hand-off to another thread.
        return forward_chunk(spec, p, wu, hoisted, Chunk { b0: 0, rows: b }, out, h_last, c_last, gates, cells);
    }
    let mut gate_chunks = split_opt(gates, nb * t * g4, nchunks);
    let mut cell_chunks = split_opt(cells, nb * t * h, nchunks);
    out.par_chunks_mut(nb * t * h)
        .zip(h_last.par_chunks_mut(nb * h).zip(c_last.par_chunks_mut(nb * h)))
        .zip(gate_chunks.par_iter_mut().zip(cell_chunks.par_iter_mut()))
        .enumerate()
        .for_each(|(ci, ((o, (hl, cl)), (g, c)))| {
            let chunk = Chunk { b0: ci * nb, rows: hl.len() / h };
            forward_chunk(spec, p, wu, hoisted, chunk, o, hl, cl, g.as_deref_mut(), c.as_deref_mut());
        });
}

#[allow(clippy::too_many_arguments)]
fn forward_chunk(
    spec: &LstmSpec,
    p: &LstmParams,
    wu: &[PackedB],
    hoisted: bool,
    ch: Chunk,
    out: &mut [f32],
    h_last: &mut [f32],
    c_state: &mut [f32],
    mut gates: Option<&mut [f32]>,
    mut cells: Option<&mut [f32]>,
) {
    let RnnDims { batch, steps: t, inputs, units: h } = spec.dims;
    let (b0, rows) = (ch.b0, ch.rows);
    // The left operand is [x_t | h] with the input fused into the step, h alone when hoisted.
    let f = if hoisted { 0 } else { inputs };
    let (g4, kx) = (4 * h, f + h);
    // Per-thread buffers, allocated once for the whole loop: the GEMM's left operand [x_t | h]
    // (h lives here between steps), and the gates when there is no tape to write them into.
    let mut xh = vec![0.0f32; rows * kx];
    let mut local_gates = if gates.is_none() { vec![0.0f32; rows * g4] } else { Vec::new() };
    // With recurrent-dropout masks: the gate's masked copy of h_{t-1}.
    let mut hm = if p.masks.recurrent.is_some() { vec![0.0f32; rows * h] } else { Vec::new() };
    let zero_bias = vec![0.0f32; g4];
    let bias = p.bias.unwrap_or(&zero_bias);
    for r in 0..rows {
        let hs = &mut xh[r * kx + f..(r + 1) * kx];
        match p.h0 {
            Some(h0) => hs.copy_from_slice(&h0[(b0 + r) * h..(b0 + r + 1) * h]),
            None => hs.fill(0.0),
        }
    }
    match p.c0 {
        Some(c0) => c_state.copy_from_slice(&c0[b0 * h..(b0 + rows) * h]),
        None => c_state.fill(0.0),
    }
    let fused = spec.is_default_activations();
    for s in 0..t {
        let t_in = if spec.go_backwards { t - 1 - s } else { s };
        if !hoisted {
            for r in 0..rows {
                let src = ((b0 + r) * t + t_in) * f;
                xh[r * kx..r * kx + f].copy_from_slice(&p.x[src..src + f]);
            }
        }
        // Gates of this step for the slice's rows: in the tape (row stride T·4H) or the local buffer.
        let (gm, ld, off): (&mut [f32], usize, usize) = match gates.as_deref_mut() {
            Some(g) => (g, t * g4, s * g4),
            None => (&mut local_gates, g4, 0),
        };
        match p.masks.recurrent {
            None if wu.is_empty() => {
                debug_assert!(hoisted && rows == 1);
                gemv_acc(&xh[f..kx], p.recurrent_kernel, g4, 0, &mut gm[off..off + g4]);
            }
            None => gemm_packed(rows, &xh, kx, &wu[0], &mut gm[off..], ld, hoisted),
            Some(m) => {
                for (g, ug) in wu.iter().enumerate() {
                    for r in 0..rows {
                        let mr = mask_row(m, g, b0 + r, batch, h);
                        mul(&xh[r * kx + f..(r + 1) * kx], mr, &mut hm[r * h..(r + 1) * h]);
                    }
                    gemm_packed(rows, &hm, h, ug, &mut gm[off + g * h..], ld, true);
                }
            }
        }
        for r in 0..rows {
            let hs = &mut xh[r * kx + f..(r + 1) * kx];
            let cs = &mut c_state[r * h..(r + 1) * h];
            if p.mask.valid(b0 + r, s, t, spec.go_backwards) {
                let z = &mut gm[off + r * ld..off + r * ld + g4];
                if fused {
                    cell_forward_tanh_sigmoid(z, bias, cs, hs);
                } else {
                    rnn::add_inplace(z, bias);
                    cell_forward_generic(spec, z, cs, hs);
                }
            }
            let o = &mut out[(r * t + s) * h..(r * t + s + 1) * h];
            if p.mask.started(b0 + r, s, t, spec.go_backwards) {
                o.copy_from_slice(hs);
            } else {
                o.fill(0.0);
            }
            if let Some(cells) = cells.as_deref_mut() {
                cells[(r * t + s) * h..(r * t + s + 1) * h].copy_from_slice(cs);
            }
        }
    }
    for r in 0..rows {
        h_last[r * h..(r + 1) * h].copy_from_slice(&xh[r * kx + f..(r + 1) * kx]);
    }
}

/// Keras's default cell (tanh, sigmoid) for one row: adds the bias, activates the gates in place
/// and updates `c`, `h`. The hand-written AVX-512 copy when the CPU has it (see `simd::avx512` for
/// why), else the compiled one.
#[inline]
fn cell_forward_tanh_sigmoid(z: &mut [f32], bias: &[f32], c: &mut [f32], h: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::level() == crate::simd::Level::Avx512 {
        // SAFETY: `level()` never reports AVX-512 on a CPU without it.
        return unsafe { crate::simd::avx512::lstm_cell_forward(z, bias, c, h) };
    }
    cell_forward_compiled(z, bias, c, h)
}

multiversion! {
    /// The compiled (AVX2 and portable) copy of [`cell_forward_tanh_sigmoid`]. One nonlinearity per pass over the row (which is in L1): each loop
    /// keeps one polynomial's constants live. A single fused loop over all five transcendentals
    /// spills on AVX2's 16 vector registers and was slower: LSTM forward, 1 thread, CPU time,
    /// B=64 T=100: H=64 19.3 -> 16.2 ms, H=128 47.7 -> 45.0 ms, H=512 equal.
    fn cell_forward_compiled(z: &mut [f32], bias: &[f32], c: &mut [f32], h: &mut [f32]) {
        let n = c.len();
        let z = &mut z[..4 * n];
        let bias = &bias[..4 * n];
        let h = &mut h[..n];
        let (zif, rest) = z.split_at_mut(2 * n);
        let (zc, zo) = rest.split_at_mut(n);
        let (bif, rest) = bias.split_at(2 * n);
        let (bc, bo) = rest.split_at(n);
        for (v, b) in zif.iter_mut().zip(bif) {
            *v = math::sigmoid(*v + b);
        }
        for (v, b) in zc.iter_mut().zip(bc) {
            *v = math::tanh(*v + b);
        }
        for (v, b) in zo.iter_mut().zip(bo) {
            *v = math::sigmoid(*v + b);
        }
        let (zi, zf) = zif.split_at(n);
        for j in 0..n {
            let cn = zf[j] * c[j] + zi[j] * zc[j];
            c[j] = cn;
            h[j] = cn;
        }
        for (v, o) in h.iter_mut().zip(zo.iter()) {
            *v = o * math::tanh(*v);
        }
    }
}

/// One row's cell update, as the time loop does it: `z` holds the gate pre-activations without
/// the bias (i, f, c, o blocks); `c`, `h` are updated in place. For the streaming step.
pub fn cell_step(
    activation: Activation,
    recurrent_activation: Activation,
    z: &mut [f32],
    bias: &[f32],
    c: &mut [f32],
    h: &mut [f32],
) {
    let units = c.len();
    let dims = RnnDims { batch: 1, steps: 1, inputs: 0, units };
    let spec = LstmSpec { dims, activation, recurrent_activation, go_backwards: false };
    if spec.is_default_activations() {
        cell_forward_tanh_sigmoid(z, bias, c, h);
    } else {
        rnn::add_inplace(z, bias);
        cell_forward_generic(&spec, z, c, h);
    }
}

fn cell_forward_generic(spec: &LstmSpec, z: &mut [f32], c: &mut [f32], h: &mut [f32]) {
    let n = c.len();
    let (ifs, rest) = z.split_at_mut(2 * n);
    let (g, o) = rest.split_at_mut(n);
    spec.recurrent_activation.forward_inplace(ifs, n);
    spec.activation.forward_inplace(g, n);
    spec.recurrent_activation.forward_inplace(o, n);
    let (i, f) = ifs.split_at(n);
    // c = f ⊙ c + i ⊙ g ; h = o ⊙ φ(c)
    mul_inplace(c, f);
    mul(i, g, h);
    add_inplace(c, h);
    h.copy_from_slice(c);
    spec.activation.forward_inplace(h, n);
    mul_inplace(h, o);
}

/// Gradients, written in full (never accumulated).
pub struct LstmGrads<'a> {
    /// `(B, T, F)`; skipped when `None` (a first layer needs no input gradient)
    pub dx: Option<&'a mut [f32]>,
    pub dkernel: &'a mut [f32],
    pub drecurrent_kernel: &'a mut [f32],
    pub dbias: Option<&'a mut [f32]>,
    /// `(B, H)` gradients by the initial states
    pub dh0: &'a mut [f32],
    pub dc0: &'a mut [f32],
}

/// Upstream gradients: by every output (`(B, T, H)`, absent = 0) and by the final states.
#[derive(Clone, Copy)]
pub struct LstmUpstream<'a> {
    pub d_out: Option<&'a [f32]>,
    pub d_h_last: Option<&'a [f32]>,
    pub d_c_last: Option<&'a [f32]>,
}

/// Backward pass. `out`, `gates` and `cells` are what the training forward produced; `gates` is
/// overwritten with the gate gradients (the tape is consumed).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    spec: &LstmSpec,
    p: &LstmParams,
    out: &[f32],
    gates: &mut [f32],
    cells: &[f32],
    up: LstmUpstream,
    mut g: LstmGrads,
) {
    check(spec, p);
    let d = spec.dims;
    let (b, t, f, h) = (d.batch, d.steps, d.inputs, d.units);
    let g4 = 4 * h;
    assert_eq!(out.len(), b * t * h, "lstm backward: out");
    assert_eq!(gates.len(), b * t * g4, "lstm backward: gates");
    assert_eq!(cells.len(), b * t * h, "lstm backward: cells");
    assert!(up.d_out.is_none_or(|v| v.len() == b * t * h), "lstm backward: d_out");
    assert!(up.d_h_last.is_none_or(|v| v.len() == b * h), "lstm backward: d_h_last");
    assert!(up.d_c_last.is_none_or(|v| v.len() == b * h), "lstm backward: d_c_last");
    assert_eq!(g.dkernel.len(), f * g4);
    assert_eq!(g.drecurrent_kernel.len(), h * g4);
    assert_eq!(g.dh0.len(), b * h);
    assert_eq!(g.dc0.len(), b * h);
    let threads = crate::threads::current_threads();
    if let Some(dx) = g.dx.as_deref() {
        assert_eq!(dx.len(), b * t * f, "lstm backward: dx");
    }
    if b == 0 || t == 0 || h == 0 {
        // No step ran (or no units): the state gradients pass straight through, weights get none.
        copy_or_zero(g.dh0, up.d_h_last);
        copy_or_zero(g.dc0, up.d_c_last);
        g.dkernel.fill(0.0);
        g.drecurrent_kernel.fill(0.0);
        if let Some(db) = g.dbias {
            db.fill(0.0);
        }
        if let Some(dx) = g.dx {
            dx.fill(0.0);
        }
        return;
    }

    // 1. Backward through time: gates become dG in place; dh0/dc0 carry the running state grads.
    //    Per step one GEMM dG_t·[W; U]ᵀ gives [dx_t | dh_{t-1}] (only dG_t·Uᵀ without dx).
    let nb = batch_chunk(b, threads);
    let nchunks = b.div_ceil(nb);
    // With a wide input (or dropout masks), dx is one GEMM dG·Wᵀ over all steps after the loop
    // (like the forward's hoisted projection); the loop then only carries dh.
    let dx_after = if hoist_input(d) || p.masks.any() { g.dx.take() } else { None };
    let want_dx = g.dx.is_some();
    let back_w = if want_dx {
        vec![PackedB::pack_stacked(&[(p.kernel, f), (p.recurrent_kernel, h)], g4, g4, Trans::T)]
    } else if p.masks.recurrent.is_some() {
        // dh_{t-1} = Σ_g (dG_g·U_gᵀ) ⊙ m_g: one packed U_gᵀ per gate.
        (0..4).map(|gi| PackedB::pack(&p.recurrent_kernel[gi * h..], g4, h, h, Trans::T)).collect()
    } else {
        vec![PackedB::pack(p.recurrent_kernel, g4, g4, h, Trans::T)]
    };
    let mut dx_chunks = split_opt(g.dx, nb * t * f, nchunks);
    #[allow(clippy::type_complexity)] // the zipped per-thread chunks
    let run =
        |(ci, ((gc, (dh, dc)), dx)): (usize, ((&mut [f32], (&mut [f32], &mut [f32])), &mut Option<&mut [f32]>))| {
            let ch = Chunk { b0: ci * nb, rows: dh.len() / h };
            let cells_c = &cells[ch.b0 * t * h..(ch.b0 + ch.rows) * t * h];
            backward_chunk(spec, p, &back_w, up, ch, gc, cells_c, dh, dc, dx.as_deref_mut());
        };
    if nchunks == 1 {
        run((0, ((&mut gates[..], (&mut g.dh0[..], &mut g.dc0[..])), &mut dx_chunks[0])));
    } else {
        gates
            .par_chunks_mut(nb * t * g4)
            .zip(g.dh0.par_chunks_mut(nb * h).zip(g.dc0.par_chunks_mut(nb * h)))
            .zip(dx_chunks.par_iter_mut())
            .enumerate()
            .for_each(run);
    }
    let dg: &mut [f32] = gates;

    // 2. Weight gradients over all steps at once.
    match p.masks.recurrent {
        None => rnn::recurrent_weight_grad(
            d,
            out,
            p.h0,
            p.mask,
            spec.go_backwards,
            dg,
            g4,
            g4,
            g.drecurrent_kernel,
            g4,
            threads,
        ),
        Some(m) => {
            for gi in 0..4 {
                let mask = &m[gi * b * h..(gi + 1) * b * h];
                let (dgi, dui) = (&dg[gi * h..], &mut g.drecurrent_kernel[gi * h..]);
                rnn::masked_recurrent_weight_grad(d, out, p.h0, mask, p.mask, spec.go_backwards, dgi, g4, h, dui, g4);
            }
        }
    }
    if let Some(db) = g.dbias {
        dense::column_sums_par(dg, g4, db);
    }
    if spec.go_backwards {
        rnn::reverse_time(dg, d, g4); // back to input-time order, to pair with x
    }
    if let Some(m) = p.masks.input {
        rnn::masked_input_grads(d, 4, p.x, m, p.kernel, dg, g.dkernel, dx_after);
        return;
    }
    sgemm(Trans::T, Trans::N, f, g4, b * t, 1.0, p.x, f, dg, g4, 0.0, g.dkernel, g4, threads);
    if let Some(dx) = dx_after {
        sgemm(Trans::N, Trans::T, b * t, f, g4, 1.0, dg, g4, p.kernel, g4, 0.0, dx, f, threads);
    }
}

#[allow(clippy::too_many_arguments)]
fn backward_chunk(
    spec: &LstmSpec,
    p: &LstmParams,
    back_w: &[PackedB],
    up: LstmUpstream,
    ch: Chunk,
    gates: &mut [f32],
    cells: &[f32],
    dh: &mut [f32],
    dc: &mut [f32],
    mut dx: Option<&mut [f32]>,
) {
    let RnnDims { batch, steps: t, inputs: f, units: h } = spec.dims;
    let (b0, rows) = (ch.b0, ch.rows);
    let g4 = 4 * h;
    match up.d_h_last {
        Some(v) => dh.copy_from_slice(&v[b0 * h..(b0 + rows) * h]),
        None => dh.fill(0.0),
    }
    match up.d_c_last {
        Some(v) => dc.copy_from_slice(&v[b0 * h..(b0 + rows) * h]),
        None => dc.fill(0.0),
    }
    let fused = spec.is_default_activations();
    // Per-thread buffers, allocated once for the whole loop. `prod` receives [dx_t | dh_{t-1}]
    // (or dh_{t-1} alone).
    let kx = if back_w.len() == 1 { back_w[0].n() } else { h };
    let xoff = kx - h; // f when dx is computed, else 0
    let mut prod = vec![0.0f32; rows * kx];
    // With recurrent-dropout masks: one gate's dG_g·U_gᵀ before its mask.
    let mut part = if p.masks.recurrent.is_some() { vec![0.0f32; rows * h] } else { Vec::new() };
    let mut tmp = vec![0.0f32; 5 * h];
    let zeros = vec![0.0f32; h];
    for s in (0..t).rev() {
        for r in 0..rows {
            let dhr = &mut dh[r * h..(r + 1) * h];
            // An output before the row's first valid step is a constant zero: its gradient stops.
            if let Some(d_out) = up.d_out.filter(|_| p.mask.started(b0 + r, s, t, spec.go_backwards)) {
                let o = ((b0 + r) * t + s) * h;
                add_inplace(dhr, &d_out[o..o + h]);
            }
            let z = &mut gates[(r * t + s) * g4..(r * t + s + 1) * g4];
            if p.mask.valid(b0 + r, s, t, spec.go_backwards) {
                let c = &cells[(r * t + s) * h..(r * t + s + 1) * h];
                let c_prev = if s > 0 {
                    &cells[(r * t + s - 1) * h..(r * t + s) * h]
                } else {
                    p.c0.map_or(&zeros[..], |c0| &c0[(b0 + r) * h..(b0 + r + 1) * h])
                };
                let dcr = &mut dc[r * h..(r + 1) * h];
                if fused {
                    cell_backward_tanh_sigmoid(z, c, c_prev, dhr, dcr);
                } else {
                    cell_backward_generic(spec, z, c, c_prev, dhr, dcr, &mut tmp);
                }
            } else {
                z.fill(0.0);
            }
        }
        match p.masks.recurrent {
            None => gemm_packed(rows, &gates[s * g4..], t * g4, &back_w[0], &mut prod, kx, false),
            Some(m) => {
                for (gi, ut) in back_w.iter().enumerate() {
                    gemm_packed(rows, &gates[s * g4 + gi * h..], t * g4, ut, &mut part, h, false);
                    for r in 0..rows {
                        let (pr, mr) = (&mut part[r * h..(r + 1) * h], mask_row(m, gi, b0 + r, batch, h));
                        if gi == 0 {
                            mul(pr, mr, &mut prod[r * h..(r + 1) * h]);
                        } else {
                            mul_inplace(pr, mr);
                            add_inplace(&mut prod[r * h..(r + 1) * h], pr);
                        }
                    }
                }
            }
        }
        let t_in = if spec.go_backwards { t - 1 - s } else { s };
        for r in 0..rows {
            let pr = &prod[r * kx..(r + 1) * kx];
            if let Some(dx) = dx.as_deref_mut() {
                dx[(r * t + t_in) * f..(r * t + t_in + 1) * f].copy_from_slice(&pr[..f]);
            }
            // Masked rows (dG = 0) pass dh through unchanged.
            if p.mask.valid(b0 + r, s, t, spec.go_backwards) {
                dh[r * h..(r + 1) * h].copy_from_slice(&pr[xoff..]);
            }
        }
    }
}

/// Gate gradients of the default cell for one row: `z` holds (i, f, g, o) on entry and
/// (dz_i, dz_f, dz_c, dz_o) on exit; `dc` goes from dL/dc_t to dL/dc_{t-1}.
#[inline]
fn cell_backward_tanh_sigmoid(z: &mut [f32], c: &[f32], c_prev: &[f32], dh: &[f32], dc: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::level() == crate::simd::Level::Avx512 {
        // SAFETY: as in `cell_forward_tanh_sigmoid`.
        return unsafe { crate::simd::avx512::lstm_cell_backward(z, c, c_prev, dh, dc) };
    }
    cell_backward_compiled(z, c, c_prev, dh, dc)
}

multiversion! {
    /// The compiled copy of [`cell_backward_tanh_sigmoid`].
    fn cell_backward_compiled(z: &mut [f32], c: &[f32], c_prev: &[f32], dh: &[f32], dc: &mut [f32]) {
        let n = c.len();
        let (zi, rest) = z.split_at_mut(n);
        let (zf, rest) = rest.split_at_mut(n);
        let (zc, zo) = rest.split_at_mut(n);
        for j in 0..n {
            let (i, f, g, o) = (zi[j], zf[j], zc[j], zo[j]);
            let tc = math::tanh(c[j]);
            let dct = dc[j] + dh[j] * o * (1.0 - tc * tc);
            zo[j] = dh[j] * tc * o * (1.0 - o);
            zi[j] = dct * g * i * (1.0 - i);
            zf[j] = dct * c_prev[j] * f * (1.0 - f);
            zc[j] = dct * i * (1.0 - g * g);
            dc[j] = dct * f;
        }
    }
}

fn cell_backward_generic(
    spec: &LstmSpec,
    z: &mut [f32],
    c: &[f32],
    c_prev: &[f32],
    dh: &[f32],
    dc: &mut [f32],
    tmp: &mut [f32],
) {
    let n = c.len();
    let (tc, rest) = tmp.split_at_mut(n);
    let (a, rest) = rest.split_at_mut(n);
    let (ti, rest) = rest.split_at_mut(n);
    let (tf, rest) = rest.split_at_mut(n);
    let tg = &mut rest[..n];
    let (zi, rest) = z.split_at_mut(n);
    let (zf, rest) = rest.split_at_mut(n);
    let (zc, zo) = rest.split_at_mut(n);
    // tc = φ(c);  dc_t = dc + dh ⊙ o ⊙ φ'(c)
    tc.copy_from_slice(c);
    spec.activation.forward_inplace(tc, n);
    mul(dh, zo, ti);
    a.copy_from_slice(tc);
    spec.activation.grad_from_output_inplace(a, ti);
    add_inplace(dc, a);
    // raw gate grads, before the gates are overwritten
    mul(dc, zc, ti); // dL/di = dc_t ⊙ g
    mul(dc, c_prev, tf); // dL/df = dc_t ⊙ c_prev
    mul(dc, zi, tg); // dL/dg = dc_t ⊙ i
    mul(dh, tc, a); // dL/do = dh ⊙ φ(c)
    mul_inplace(dc, zf); // dc_{t-1} = dc_t ⊙ f
    spec.recurrent_activation.grad_from_output_inplace(zi, ti);
    spec.recurrent_activation.grad_from_output_inplace(zf, tf);
    spec.activation.grad_from_output_inplace(zc, tg);
    spec.recurrent_activation.grad_from_output_inplace(zo, a);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut st = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                st = st.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (((st >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0) * scale
            })
            .collect()
    }

    fn act64(a: Activation, x: f64) -> f64 {
        match a {
            Activation::Linear => x,
            Activation::Relu => x.max(0.0),
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::HardSigmoid => (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Activation::Tanh => x.tanh(),
            _ => unreachable!("not a recurrent-cell activation"),
        }
    }

    struct Case {
        spec: LstmSpec,
        x: Vec<f32>,
        w: Vec<f32>,
        u: Vec<f32>,
        bias: Vec<f32>,
        h0: Vec<f32>,
        c0: Vec<f32>,
        lens: Vec<usize>,
        d_out: Vec<f32>,
        d_hl: Vec<f32>,
        d_cl: Vec<f32>,
    }

    /// Naive f64 forward, straight from the math; returns Σ out⊙d_out + h_last⊙d_hl + c_last⊙d_cl.
    fn naive_loss(c: &Case, x: &[f32], w: &[f32], u: &[f32], bias: &[f32], h0: &[f32], c0: &[f32]) -> (f64, Vec<f64>) {
        let RnnDims { batch: b, steps: t, inputs: f, units: h } = c.spec.dims;
        let mut outs = vec![0.0f64; b * t * h];
        let mut loss = 0.0;
        for bi in 0..b {
            let mut hs: Vec<f64> = h0[bi * h..(bi + 1) * h].iter().map(|&v| v as f64).collect();
            let mut cs: Vec<f64> = c0[bi * h..(bi + 1) * h].iter().map(|&v| v as f64).collect();
            let mut started = false;
            for s in 0..t {
                let ti = if c.spec.go_backwards { t - 1 - s } else { s };
                if ti < c.lens[bi] {
                    started = true;
                    let mut z = vec![0.0f64; 4 * h];
                    for (j, zj) in z.iter_mut().enumerate() {
                        let mut acc = bias[j] as f64;
                        for k in 0..f {
                            acc += x[(bi * t + ti) * f + k] as f64 * w[k * 4 * h + j] as f64;
                        }
                        for k in 0..h {
                            acc += hs[k] * u[k * 4 * h + j] as f64;
                        }
                        *zj = acc;
                    }
                    let (ra, a) = (c.spec.recurrent_activation, c.spec.activation);
                    for j in 0..h {
                        let (i, fg, g, o) =
                            (act64(ra, z[j]), act64(ra, z[h + j]), act64(a, z[2 * h + j]), act64(ra, z[3 * h + j]));
                        cs[j] = fg * cs[j] + i * g;
                        hs[j] = o * act64(a, cs[j]);
                    }
                }
                for j in 0..h {
                    let o = if started { hs[j] } else { 0.0 };
                    outs[(bi * t + s) * h + j] = o;
                    loss += o * c.d_out[(bi * t + s) * h + j] as f64;
                }
            }
            for j in 0..h {
                loss += hs[j] * c.d_hl[bi * h + j] as f64 + cs[j] * c.d_cl[bi * h + j] as f64;
            }
        }
        (loss, outs)
    }

    fn run_case(act: Activation, rec: Activation, go_backwards: bool, lens: Vec<usize>) {
        let dims = RnnDims { batch: lens.len(), steps: 4, inputs: 3, units: 5 };
        let (b, t, f, h) = (dims.batch, dims.steps, dims.inputs, dims.units);
        let c = Case {
            spec: LstmSpec { dims, activation: act, recurrent_activation: rec, go_backwards },
            x: vals(b * t * f, 1, 1.0),
            w: vals(f * 4 * h, 2, 0.6),
            u: vals(h * 4 * h, 3, 0.6),
            bias: vals(4 * h, 4, 0.5),
            h0: vals(b * h, 5, 0.5),
            c0: vals(b * h, 6, 0.5),
            lens,
            d_out: vals(b * t * h, 7, 1.0),
            d_hl: vals(b * h, 8, 1.0),
            d_cl: vals(b * h, 9, 1.0),
        };
        let p = LstmParams {
            x: &c.x,
            kernel: &c.w,
            recurrent_kernel: &c.u,
            bias: Some(&c.bias),
            h0: Some(&c.h0),
            c0: Some(&c.c0),
            mask: StepMask::lengths(&c.lens),
            masks: GateMasks::default(),
        };
        let (mut out, mut hl, mut cl) = (vec![0.0; b * t * h], vec![0.0; b * h], vec![0.0; b * h]);
        let (mut gates, mut cells) = (vec![0.0; b * t * 4 * h], vec![0.0; b * t * h]);
        crate::threads::install(|| {
            forward(&c.spec, &p, &mut out, &mut hl, &mut cl, Some(LstmTape { gates: &mut gates, cells: &mut cells }))
        });
        let (_, want) = naive_loss(&c, &c.x, &c.w, &c.u, &c.bias, &c.h0, &c.c0);
        for (g, w) in out.iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-5, "forward {act:?}/{rec:?} back={go_backwards}: {g} vs {w}");
        }
        let mut dx = vec![0.0; b * t * f];
        let (mut dw, mut du, mut db) = (vec![0.0; f * 4 * h], vec![0.0; h * 4 * h], vec![0.0; 4 * h]);
        let (mut dh0, mut dc0) = (vec![0.0; b * h], vec![0.0; b * h]);
        let up = LstmUpstream { d_out: Some(&c.d_out), d_h_last: Some(&c.d_hl), d_c_last: Some(&c.d_cl) };
        crate::threads::install(|| {
            backward(
                &c.spec,
                &p,
                &out,
                &mut gates,
                &cells,
                up,
                LstmGrads {
                    dx: Some(&mut dx),
                    dkernel: &mut dw,
                    drecurrent_kernel: &mut du,
                    dbias: Some(&mut db),
                    dh0: &mut dh0,
                    dc0: &mut dc0,
                },
            )
        });
        let eps = 1e-3f32;
        let grads: [(&str, &Vec<f32>, usize); 6] =
            [("x", &dx, 0), ("w", &dw, 1), ("u", &du, 2), ("b", &db, 3), ("h0", &dh0, 4), ("c0", &dc0, 5)];
        for (name, got, which) in grads {
            for i in 0..got.len() {
                let mut args = [c.x.clone(), c.w.clone(), c.u.clone(), c.bias.clone(), c.h0.clone(), c.c0.clone()];
                args[which][i] += eps;
                let lp = naive_loss(&c, &args[0], &args[1], &args[2], &args[3], &args[4], &args[5]).0;
                args[which][i] -= 2.0 * eps;
                let lm = naive_loss(&c, &args[0], &args[1], &args[2], &args[3], &args[4], &args[5]).0;
                let num = (lp - lm) / (2.0 * eps as f64);
                assert!(
                    (got[i] as f64 - num).abs() < 3e-3 * (1.0 + num.abs()),
                    "{act:?}/{rec:?} back={go_backwards} d{name}[{i}]: {} vs {num}",
                    got[i]
                );
            }
        }
    }

    /// Runs the case with the input projection fused into the steps and hoisted out of the loop.
    fn run_both(act: Activation, rec: Activation, go_backwards: bool, lens: Vec<usize>) {
        use std::sync::atomic::Ordering::SeqCst;
        let _serial = super::TEST_HOIST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        for mode in [1, 2] {
            super::TEST_HOIST.store(mode, SeqCst);
            run_case(act, rec, go_backwards, lens.clone());
        }
        super::TEST_HOIST.store(0, SeqCst);
    }

    #[test]
    fn default_cell_matches_naive_forward_and_finite_differences() {
        run_both(Activation::Tanh, Activation::Sigmoid, false, vec![4, 2, 0]);
        run_both(Activation::Tanh, Activation::Sigmoid, true, vec![4, 3, 1, 0]);
    }

    #[test]
    fn generic_cell_matches_naive_forward_and_finite_differences() {
        run_both(Activation::Linear, Activation::Sigmoid, false, vec![4, 1]);
        run_both(Activation::Tanh, Activation::HardSigmoid, true, vec![4, 2]);
    }
}
