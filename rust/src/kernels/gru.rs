//! GRU forward (training and inference) and backward, Keras semantics, both `reset_after` modes.
//!
//! Math contract (Keras 3; gate blocks z, r, h in `kernel (F, 3H)`, `recurrent_kernel (H, 3H)`;
//! `σ` = recurrent_activation, `φ` = activation):
//! ```text
//! reset_after=True  (Keras default = PyTorch = cuDNN; bias (2, 3H): input row, recurrent row)
//!   mx = x_t·W + b_in     mh = h_{t-1}·U + b_rec
//!   z = σ(mx_z + mh_z)    r = σ(mx_r + mh_r)    ĥ = φ(mx_h + r ⊙ mh_h)
//! reset_after=False (bias (3H,), input side only)
//!   mx = x_t·W + b
//!   z = σ(mx_z + h_{t-1}·U_z)    r = σ(mx_r + h_{t-1}·U_r)    ĥ = φ(mx_h + (r ⊙ h_{t-1})·U_h)
//! both: h_t = z ⊙ h_{t-1} + (1 − z) ⊙ ĥ
//! ```
//! Masking as for the LSTM (see [`StepMask`]).
//!
//! Design as `lstm.rs`: one projection GEMM for all steps; batch slices per thread; per step one
//! recurrent GEMM for `reset_after=True` (its `h` block `mh_h` is kept for backward), two for
//! `reset_after=False` (`r ⊙ h_{t-1}` is kept for the `U_h` gradient). Backward overwrites the gates
//! with their gradients; weight gradients are big GEMMs after the loop.
use super::dense::column_sums_par;
use super::rnn::{self, batch_chunk, copy_or_zero, mask_row, split_opt, Chunk, GateMasks, RnnDims, StepMask};
use crate::linalg::gemv::gemv_acc;
use crate::linalg::packed::{gemm_packed, PackedB};
use crate::linalg::{sgemm, Trans};
use crate::simd::activation::Activation;
use crate::simd::{math, multiversion};
use rayon::prelude::*;

#[derive(Clone, Copy, Debug)]
pub struct GruSpec {
    pub dims: RnnDims,
    pub activation: Activation,
    pub recurrent_activation: Activation,
    pub go_backwards: bool,
    pub reset_after: bool,
}

impl GruSpec {
    fn is_default_activations(&self) -> bool {
        self.activation == Activation::Tanh && self.recurrent_activation == Activation::Sigmoid
    }
}

#[derive(Clone, Copy)]
pub struct GruParams<'a> {
    /// `(B, T, F)`
    pub x: &'a [f32],
    /// `(F, 3H)`
    pub kernel: &'a [f32],
    /// `(H, 3H)`
    pub recurrent_kernel: &'a [f32],
    /// `(2, 3H)` when `reset_after`, else `(3H,)`
    pub bias: Option<&'a [f32]>,
    /// `(B, H)`, zeros when absent
    pub h0: Option<&'a [f32]>,
    pub mask: StepMask<'a>,
    /// Per-gate dropout masks (training with `recurrent_dropout`); none by default
    pub masks: GateMasks<'a>,
}

/// What a training forward keeps: post-activation gates (z, r, ĥ) `(B, T, 3H)`, and `(B, T, H)` of
/// `mh_h` (reset_after) or `r ⊙ h_{t-1}` (reset_before), in processing order.
pub struct GruTape<'a> {
    pub gates: &'a mut [f32],
    pub extra: &'a mut [f32],
}

fn check(spec: &GruSpec, p: &GruParams) {
    let RnnDims { batch: b, steps: t, inputs: f, units: h } = spec.dims;
    assert_eq!(p.x.len(), b * t * f, "gru: x");
    assert_eq!(p.kernel.len(), f * 3 * h, "gru: kernel");
    assert_eq!(p.recurrent_kernel.len(), h * 3 * h, "gru: recurrent_kernel");
    let nb = if spec.reset_after { 6 * h } else { 3 * h };
    assert!(p.bias.is_none_or(|v| v.len() == nb), "gru: bias");
    assert!(p.h0.is_none_or(|v| v.len() == b * h), "gru: h0");
    p.mask.check("gru", b, t);
    assert!(rnn::CELL_ACTIVATIONS.contains(&spec.activation), "gru: activation");
    assert!(rnn::CELL_ACTIVATIONS.contains(&spec.recurrent_activation), "gru: recurrent_activation");
    p.masks.check("gru", 3, spec.dims);
}

/// Gate blocks `g0..g1` of a `(rows, 3H)` weight packed one gate each (`Trans::N`: `W_g`/`U_g`;
/// `Trans::T`: their transposes), for the per-gate masked products of recurrent dropout.
fn pack_gates(m: &[f32], rows: usize, h: usize, gates: std::ops::Range<usize>, trans: Trans) -> Vec<PackedB> {
    gates
        .map(|g| match trans {
            Trans::N => PackedB::pack(&m[g * h..], 3 * h, rows, h, Trans::N),
            Trans::T => PackedB::pack(&m[g * h..], 3 * h, h, rows, Trans::T),
        })
        .collect()
}

/// Forward pass; see `lstm::forward` for the argument conventions.
pub fn forward(spec: &GruSpec, p: &GruParams, out: &mut [f32], h_last: &mut [f32], tape: Option<GruTape>) {
    check(spec, p);
    let RnnDims { batch: b, steps: t, units: h, .. } = spec.dims;
    assert_eq!(out.len(), b * t * h, "gru: out");
    assert_eq!(h_last.len(), b * h, "gru: h_last");
    if b == 0 || h == 0 {
        return;
    }
    if t == 0 {
        copy_or_zero(h_last, p.h0);
        return;
    }
    if let Some(tape) = &tape {
        assert_eq!(tape.gates.len(), b * t * 3 * h, "gru: gates");
        assert_eq!(tape.extra.len(), b * t * h, "gru: extra");
    }
    let (gates, extra) = match tape {
        Some(tape) => (Some(tape.gates), Some(tape.extra)),
        None => (None, None),
    };
    let (f, g3) = (spec.dims.inputs, 3 * h);
    // Packed once for every step and thread: W, and the recurrent blocks (all of U for
    // reset_after; U_zr and U_h for reset_before). Per step x_t·W is its own small GEMM rather
    // than one projection pass over all steps (memory-bound for few features; see lstm.rs).
    // With dropout masks each gate multiplies its own masked copy, so those weights are packed
    // one gate block each.
    let u = p.recurrent_kernel;
    // One sample without dropout masks: every product is a matrix-vector product, read in place by
    // `gemv_acc` (bound by streaming the weights; packing them would only add a copy), as in lstm.rs.
    // Empty packs tell the steps so.
    let gemv = b == 1 && p.masks.input.is_none() && p.masks.recurrent.is_none();
    let w = match p.masks.input {
        _ if gemv => Vec::new(),
        None => vec![PackedB::pack(p.kernel, g3, f, g3, Trans::N)],
        Some(_) => pack_gates(p.kernel, f, h, 0..3, Trans::N),
    };
    let zr_gates = if spec.reset_after { 0..3 } else { 0..2 };
    let u_direct = match (spec.reset_after, p.masks.recurrent) {
        _ if gemv => Vec::new(),
        (true, None) => vec![PackedB::pack(u, g3, h, g3, Trans::N)],
        (false, None) => vec![PackedB::pack(u, g3, h, 2 * h, Trans::N)],
        (_, Some(_)) => pack_gates(u, h, h, zr_gates, Trans::N),
    };
    let packs = (u_direct, (!spec.reset_after && !gemv).then(|| PackedB::pack(&u[2 * h..], g3, h, h, Trans::N)));
    let nb = batch_chunk(b, crate::threads::current_threads());
    let nchunks = b.div_ceil(nb);
    if nchunks == 1 {
        // One slice: run it here, no hand-off to another thread.
        let mats = Mats { w: &w, u: &packs.0, u_h: packs.1.as_ref() };
        return forward_chunk(spec, p, mats, Chunk { b0: 0, rows: b }, out, h_last, gates, extra);
    }
    let mut gate_chunks = split_opt(gates, nb * t * g3, nchunks);
    let mut extra_chunks = split_opt(extra, nb * t * h, nchunks);
    out.par_chunks_mut(nb * t * h)
        .zip(h_last.par_chunks_mut(nb * h))
        .zip(gate_chunks.par_iter_mut().zip(extra_chunks.par_iter_mut()))
        .enumerate()
        .for_each(|(ci, ((o, hl), (g, e)))| {
            let ch = Chunk { b0: ci * nb, rows: hl.len() / h };
            let mats = Mats { w: &w, u: &packs.0, u_h: packs.1.as_ref() };
            forward_chunk(spec, p, mats, ch, o, hl, g.as_deref_mut(), e.as_deref_mut());
        });
}

/// The packed weights a forward step multiplies by (with dropout masks, one per gate block).
#[derive(Clone, Copy)]
struct Mats<'a> {
    /// W, or W_z, W_r, W_h with input masks
    w: &'a [PackedB],
    /// all of U (reset_after) or U_zr (reset_before); per gate with recurrent masks
    u: &'a [PackedB],
    /// U_h (reset_before only)
    u_h: Option<&'a PackedB>,
}

#[allow(clippy::too_many_arguments)]
fn forward_chunk(
    spec: &GruSpec,
    p: &GruParams,
    mats: Mats,
    ch: Chunk,
    out: &mut [f32],
    h_state: &mut [f32],
    mut gates: Option<&mut [f32]>,
    mut extra: Option<&mut [f32]>,
) {
    let RnnDims { batch, steps: t, inputs: f, units: h } = spec.dims;
    let (b0, rows) = (ch.b0, ch.rows);
    let g3 = 3 * h;
    match p.h0 {
        Some(h0) => h_state.copy_from_slice(&h0[b0 * h..(b0 + rows) * h]),
        None => h_state.fill(0.0),
    }
    // With dropout masks: a gate's masked copy of x_t, and of h_{t-1}.
    let masked = p.masks.any();
    let mut xm = if p.masks.input.is_some() { vec![0.0f32; rows * f] } else { Vec::new() };
    let mut hm = if masked { vec![0.0f32; rows * h] } else { Vec::new() };
    // Per-thread buffers, allocated once for the whole loop.
    let mut xb = vec![0.0f32; rows * f];
    let mut rec = vec![0.0f32; rows * g3];
    let mut tmp = vec![0.0f32; 2 * h];
    let mut local_g = if gates.is_none() { vec![0.0f32; rows * g3] } else { Vec::new() };
    let mut local_e = if extra.is_none() { vec![0.0f32; rows * h] } else { Vec::new() };
    let zeros = vec![0.0f32; g3];
    let b_in = p.bias.map_or(&zeros[..], |v| &v[..g3]);
    let b_rec = if spec.reset_after { p.bias.map_or(&zeros[..], |v| &v[g3..]) } else { &zeros[..] };
    let fused = spec.reset_after && spec.is_default_activations();
    for s in 0..t {
        let t_in = if spec.go_backwards { t - 1 - s } else { s };
        for r in 0..rows {
            let src = ((b0 + r) * t + t_in) * f;
            xb[r * f..(r + 1) * f].copy_from_slice(&p.x[src..src + f]);
        }
        let (gm, gld, goff): (&mut [f32], usize, usize) = match gates.as_deref_mut() {
            Some(g) => (g, t * g3, s * g3),
            None => (&mut local_g, g3, 0),
        };
        let (em, eld, eoff): (&mut [f32], usize, usize) = match extra.as_deref_mut() {
            Some(e) => (e, t * h, s * h),
            None => (&mut local_e, h, 0),
        };
        // mx without its bias
        match p.masks.input {
            None if mats.w.is_empty() => {
                debug_assert_eq!(rows, 1);
                gm[goff..goff + g3].fill(0.0);
                gemv_acc(&xb[..f], p.kernel, g3, 0, &mut gm[goff..goff + g3]);
            }
            None => gemm_packed(rows, &xb, f, &mats.w[0], &mut gm[goff..], gld, false),
            Some(m) => {
                for (g, wg) in mats.w.iter().enumerate() {
                    for r in 0..rows {
                        rnn::mul(
                            &xb[r * f..(r + 1) * f],
                            mask_row(m, g, b0 + r, batch, f),
                            &mut xm[r * f..(r + 1) * f],
                        );
                    }
                    gemm_packed(rows, &xm, f, wg, &mut gm[goff + g * h..], gld, false);
                }
            }
        }
        // The recurrent products of the blocks that see h_{t-1} directly, into `rec` (row stride ld).
        let recurrent = |rec: &mut [f32], ld: usize, hm: &mut [f32], h_state: &[f32]| match p.masks.recurrent {
            None if mats.u.is_empty() => {
                let n = if spec.reset_after { g3 } else { 2 * h };
                rec[..n].fill(0.0);
                gemv_acc(&h_state[..h], p.recurrent_kernel, g3, 0, &mut rec[..n]);
            }
            None => gemm_packed(rows, h_state, h, &mats.u[0], rec, ld, false),
            Some(m) => {
                for (g, ug) in mats.u.iter().enumerate() {
                    for r in 0..rows {
                        let hs = &h_state[r * h..(r + 1) * h];
                        rnn::mul(hs, mask_row(m, g, b0 + r, batch, h), &mut hm[r * h..(r + 1) * h]);
                    }
                    gemm_packed(rows, hm, h, ug, &mut rec[g * h..], ld, false);
                }
            }
        };
        if spec.reset_after {
            recurrent(&mut rec, g3, &mut hm, h_state); // mh without its bias
            for r in 0..rows {
                let z = &mut gm[goff + r * gld..goff + r * gld + g3];
                let mh = &mut rec[r * g3..(r + 1) * g3];
                let keep = &mut em[eoff + r * eld..eoff + r * eld + h];
                let valid = p.mask.valid(b0 + r, s, t, spec.go_backwards);
                let hs = &mut h_state[r * h..(r + 1) * h];
                if fused {
                    cell_after_tanh_sigmoid(z, b_in, mh, b_rec, keep, hs, valid);
                } else {
                    rnn::add_inplace(z, b_in);
                    rnn::add_inplace(mh, b_rec);
                    keep.copy_from_slice(&mh[2 * h..]);
                    cell_after_generic(spec, z, mh, hs, valid, &mut tmp);
                }
            }
        } else {
            // z, r from mx + h·U_zr; then ĥ from (r ⊙ h)·U_h (h masked by m_h with dropout).
            recurrent(&mut rec, 2 * h, &mut hm, h_state);
            for r in 0..rows {
                let z = &mut gm[goff + r * gld..goff + r * gld + g3];
                rnn::add_inplace(z, b_in);
                let rh = &mut em[eoff + r * eld..eoff + r * eld + h];
                let mut hs = &h_state[r * h..(r + 1) * h];
                if let Some(m) = p.masks.recurrent {
                    rnn::mul(hs, mask_row(m, 2, b0 + r, batch, h), &mut hm[r * h..(r + 1) * h]);
                    hs = &hm[r * h..(r + 1) * h];
                }
                gates_zr_before(spec, &mut z[..2 * h], &rec[r * 2 * h..(r + 1) * 2 * h], hs, rh);
            }
            match mats.u_h {
                Some(u_h) => gemm_packed(rows, &em[eoff..], eld, u_h, &mut rec[..rows * h], h, false),
                None => {
                    rec[..h].fill(0.0);
                    gemv_acc(&em[eoff..eoff + h], p.recurrent_kernel, g3, 2 * h, &mut rec[..h]);
                }
            }
            for r in 0..rows {
                let z = &mut gm[goff + r * gld..goff + r * gld + g3];
                let valid = p.mask.valid(b0 + r, s, t, spec.go_backwards);
                let hs = &mut h_state[r * h..(r + 1) * h];
                cell_before_finish(spec, z, &rec[r * h..(r + 1) * h], hs, valid);
            }
        }
        for r in 0..rows {
            let o = &mut out[(r * t + s) * h..(r * t + s + 1) * h];
            if p.mask.started(b0 + r, s, t, spec.go_backwards) {
                o.copy_from_slice(&h_state[r * h..(r + 1) * h]);
            } else {
                o.fill(0.0);
            }
        }
    }
}

/// reset_after cell with (tanh, sigmoid), one row: `z` holds mx without bias (z, r, h blocks)
/// on entry and (z, r, ĥ) on exit; `keep` receives `mh_h` with its bias; `h` is updated when
/// `valid`. The hand-written AVX-512 copy when the CPU has it (see `simd::avx512`).
#[inline]
fn cell_after_tanh_sigmoid(
    z: &mut [f32],
    b_in: &[f32],
    mh: &[f32],
    b_rec: &[f32],
    keep: &mut [f32],
    h: &mut [f32],
    valid: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::level() == crate::simd::Level::Avx512 {
        // SAFETY: `level()` never reports AVX-512 on a CPU without it.
        return unsafe { crate::simd::avx512::gru_cell_after_forward(z, b_in, mh, b_rec, keep, h, valid) };
    }
    cell_after_compiled(z, b_in, mh, b_rec, keep, h, valid)
}

multiversion! {
    /// The compiled copy of [`cell_after_tanh_sigmoid`].
    fn cell_after_compiled(z: &mut [f32], b_in: &[f32], mh: &[f32], b_rec: &[f32], keep: &mut [f32], h: &mut [f32], valid: bool) {
        let n = h.len();
        let (zz, rest) = z.split_at_mut(n);
        let (zr, zh) = rest.split_at_mut(n);
        for j in 0..n {
            let zg = math::sigmoid(zz[j] + b_in[j] + mh[j] + b_rec[j]);
            let rg = math::sigmoid(zr[j] + b_in[n + j] + mh[n + j] + b_rec[n + j]);
            let m = mh[2 * n + j] + b_rec[2 * n + j];
            keep[j] = m;
            let hh = math::tanh(zh[j] + b_in[2 * n + j] + rg * m);
            zz[j] = zg;
            zr[j] = rg;
            zh[j] = hh;
        }
        if valid {
            for j in 0..n {
                h[j] = zz[j] * h[j] + (1.0 - zz[j]) * zh[j];
            }
        }
    }
}

/// One row's reset_after cell update, as the time loop does it: `mx` = x·W and `mh` = h·U without
/// their biases (z, r, h blocks); `h` is updated in place; `tmp` is `H` of scratch. For the
/// streaming step.
pub fn cell_step_after(
    spec: &GruSpec,
    mx: &mut [f32],
    mh: &mut [f32],
    b_in: &[f32],
    b_rec: &[f32],
    h: &mut [f32],
    tmp: &mut [f32],
) {
    if spec.is_default_activations() {
        cell_after_tanh_sigmoid(mx, b_in, mh, b_rec, tmp, h, true);
    } else {
        rnn::add_inplace(mx, b_in);
        rnn::add_inplace(mh, b_rec);
        cell_after_generic(spec, mx, mh, h, true, tmp);
    }
}

/// reset_before, the two halves of one row's update around the `(r ⊙ h)·U_h` product: first `z`,
/// `r` from `mx` (with its bias) and `rec_zr` = h·U_zr, writing `r ⊙ h` into `rh`; then
/// [`cell_step_before_finish`] with `rec_h` = rh·U_h. For the streaming step.
pub fn cell_step_before_gates(spec: &GruSpec, mx: &mut [f32], rec_zr: &[f32], h: &[f32], rh: &mut [f32]) {
    let n = h.len();
    gates_zr_before(spec, &mut mx[..2 * n], rec_zr, h, rh);
}

pub fn cell_step_before_finish(spec: &GruSpec, mx: &mut [f32], rec_h: &[f32], h: &mut [f32]) {
    cell_before_finish(spec, mx, rec_h, h, true);
}

fn cell_after_generic(spec: &GruSpec, z: &mut [f32], mh: &[f32], h: &mut [f32], valid: bool, tmp: &mut [f32]) {
    let n = h.len();
    let (zr, zh) = z.split_at_mut(2 * n);
    rnn::add_inplace(zr, &mh[..2 * n]);
    spec.recurrent_activation.forward_inplace(zr, n);
    let t = &mut tmp[..n];
    rnn::mul(&zr[n..], &mh[2 * n..], t);
    rnn::add_inplace(zh, t);
    spec.activation.forward_inplace(zh, n);
    if valid {
        blend(&zr[..n], zh, h);
    }
}

multiversion! {
    /// `h = z ⊙ h + (1 − z) ⊙ ĥ`
    fn blend(z: &[f32], hh: &[f32], h: &mut [f32]) {
        for ((o, &zg), &c) in h.iter_mut().zip(z).zip(hh) { *o = zg * *o + (1.0 - zg) * c; }
    }
}

/// reset_before, first half: z, r from `mx + h·U_zr` into `zr` (2H), and `r ⊙ h` into `rh`.
fn gates_zr_before(spec: &GruSpec, zr: &mut [f32], rec: &[f32], h: &[f32], rh: &mut [f32]) {
    let n = h.len();
    rnn::add_inplace(zr, rec);
    spec.recurrent_activation.forward_inplace(zr, n);
    rnn::mul(&zr[n..], h, rh);
}

/// reset_before, second half: ĥ = φ(mx_h + (r ⊙ h)·U_h), then the state update.
fn cell_before_finish(spec: &GruSpec, z: &mut [f32], rec_h: &[f32], h: &mut [f32], valid: bool) {
    let n = h.len();
    let (zr, zh) = z.split_at_mut(2 * n);
    rnn::add_inplace(zh, rec_h);
    spec.activation.forward_inplace(zh, n);
    if valid {
        blend(&zr[..n], zh, h);
    }
}

pub struct GruGrads<'a> {
    pub dx: Option<&'a mut [f32]>,
    pub dkernel: &'a mut [f32],
    pub drecurrent_kernel: &'a mut [f32],
    /// same shape as the bias
    pub dbias: Option<&'a mut [f32]>,
    pub dh0: &'a mut [f32],
}

/// Backward pass. `out`, `gates` and `extra` come from the training forward; `gates` and `extra`
/// are overwritten (the tape is consumed). `d_out` `(B, T, H)` and `d_h_last` `(B, H)` may be absent.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    spec: &GruSpec,
    p: &GruParams,
    out: &[f32],
    gates: &mut [f32],
    extra: &mut [f32],
    d_out: Option<&[f32]>,
    d_h_last: Option<&[f32]>,
    g: GruGrads,
) {
    check(spec, p);
    let d = spec.dims;
    let RnnDims { batch: b, steps: t, inputs: f, units: h } = d;
    let g3 = 3 * h;
    assert_eq!(out.len(), b * t * h, "gru backward: out");
    assert_eq!(gates.len(), b * t * g3, "gru backward: gates");
    assert_eq!(extra.len(), b * t * h, "gru backward: extra");
    assert!(d_out.is_none_or(|v| v.len() == b * t * h), "gru backward: d_out");
    assert!(d_h_last.is_none_or(|v| v.len() == b * h), "gru backward: d_h_last");
    assert_eq!(g.dkernel.len(), f * g3);
    assert_eq!(g.drecurrent_kernel.len(), h * g3);
    assert_eq!(g.dh0.len(), b * h);
    let threads = crate::threads::current_threads();
    if b == 0 || t == 0 || h == 0 {
        copy_or_zero(g.dh0, d_h_last);
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
    let nb = batch_chunk(b, threads);
    // Transposed recurrent blocks, packed once: Uᵀ over the blocks that saw h_{t-1} (all three for
    // reset_after, z and r for reset_before), and U_hᵀ for reset_before's d(r ⊙ h_{t-1}).
    // With recurrent-dropout masks, one transposed block per gate (each product is masked).
    let u = p.recurrent_kernel;
    let k_rec = if spec.reset_after { g3 } else { 2 * h };
    let put = match p.masks.recurrent {
        None => vec![PackedB::pack(u, g3, k_rec, h, Trans::T)],
        Some(_) => pack_gates(u, h, h, 0..k_rec / h, Trans::T),
    };
    let puh = (!spec.reset_after).then(|| PackedB::pack(&u[2 * h..], g3, h, h, Trans::T));
    #[allow(clippy::type_complexity)] // the zipped per-thread chunks
    let run = |(ci, ((gc, ec), dh)): (usize, ((&mut [f32], &mut [f32]), &mut [f32]))| {
        let (b0, rows) = (ci * nb, dh.len() / h);
        let out_c = &out[b0 * t * h..(b0 + rows) * t * h];
        backward_chunk(spec, p, (&put[..], puh.as_ref()), b0, rows, gc, ec, out_c, d_out, d_h_last, dh);
    };
    if b.div_ceil(nb) == 1 {
        run((0, ((&mut gates[..], &mut extra[..]), &mut g.dh0[..])));
    } else {
        gates
            .par_chunks_mut(nb * t * g3)
            .zip(extra.par_chunks_mut(nb * t * h))
            .zip(g.dh0.par_chunks_mut(nb * h))
            .enumerate()
            .for_each(run);
    }

    // Weight gradients over all steps. gates now holds dmx = (dz, dr, dĥ_pre); extra holds dmh_h
    // (reset_after) or is r ⊙ h_{t-1} (reset_before).
    let (du, gb) = (g.drecurrent_kernel, spec.go_backwards);
    match p.masks.recurrent {
        None => {
            rnn::recurrent_weight_grad(d, out, p.h0, p.mask, gb, gates, g3, 2 * h, du, g3, threads);
            if spec.reset_after {
                rnn::recurrent_weight_grad(d, out, p.h0, p.mask, gb, extra, h, h, &mut du[2 * h..], g3, threads);
            }
        }
        Some(m) => {
            // Each block multiplied its own masked h_{t-1}.
            let mask = |gi: usize| &m[gi * b * h..(gi + 1) * b * h];
            for gi in 0..2 {
                let (dg, dug) = (&gates[gi * h..], &mut du[gi * h..]);
                rnn::masked_recurrent_weight_grad(d, out, p.h0, mask(gi), p.mask, gb, dg, g3, h, dug, g3);
            }
            if spec.reset_after {
                let dug = &mut du[2 * h..];
                rnn::masked_recurrent_weight_grad(d, out, p.h0, mask(2), p.mask, gb, extra, h, h, dug, g3);
            }
        }
    }
    if !spec.reset_after {
        // U_h multiplied the kept r ⊙ h_{t-1} (⊙ m_h with recurrent dropout).
        sgemm(Trans::T, Trans::N, h, h, b * t, 1.0, extra, h, &gates[2 * h..], g3, 0.0, &mut du[2 * h..], g3, threads);
    }
    if let Some(db) = g.dbias {
        column_sums_par(gates, g3, &mut db[..g3]);
        if spec.reset_after {
            // recurrent bias: (dz, dr) as for the input bias, dmh_h for the h block
            let (din, drec) = db.split_at_mut(g3);
            drec[..2 * h].copy_from_slice(&din[..2 * h]);
            column_sums_par(extra, h, &mut drec[2 * h..]);
        }
    }
    if spec.go_backwards {
        rnn::reverse_time(gates, d, g3);
    }
    if let Some(m) = p.masks.input {
        if let Some(dx) = g.dx.as_deref() {
            assert_eq!(dx.len(), b * t * f);
        }
        rnn::masked_input_grads(d, 3, p.x, m, p.kernel, gates, g.dkernel, g.dx);
        return;
    }
    sgemm(Trans::T, Trans::N, f, g3, b * t, 1.0, p.x, f, gates, g3, 0.0, g.dkernel, g3, threads);
    if let Some(dx) = g.dx {
        assert_eq!(dx.len(), b * t * f);
        sgemm(Trans::N, Trans::T, b * t, f, g3, 1.0, gates, g3, p.kernel, g3, 0.0, dx, f, threads);
    }
}

#[allow(clippy::too_many_arguments)]
fn backward_chunk(
    spec: &GruSpec,
    p: &GruParams,
    packs: (&[PackedB], Option<&PackedB>),
    b0: usize,
    rows: usize,
    gates: &mut [f32],
    extra: &mut [f32],
    out: &[f32],
    d_out: Option<&[f32]>,
    d_h_last: Option<&[f32]>,
    dh: &mut [f32],
) {
    let RnnDims { batch, steps: t, units: h, .. } = spec.dims;
    let g3 = 3 * h;
    let back = spec.go_backwards;
    match d_h_last {
        Some(v) => dh.copy_from_slice(&v[b0 * h..(b0 + rows) * h]),
        None => dh.fill(0.0),
    }
    let zeros = vec![0.0f32; h];
    // Per-thread buffers, allocated once: gradient by the step's recurrent products, next dh, temps.
    let mut drec = vec![0.0f32; rows * g3];
    let mut dh_next = vec![0.0f32; rows * h];
    let mut tmp = vec![0.0f32; 3 * h];
    // With recurrent-dropout masks: one gate's drec_g·U_gᵀ before its mask.
    let mut part = if p.masks.recurrent.is_some() { vec![0.0f32; rows * h] } else { Vec::new() };
    let fused = spec.reset_after && spec.is_default_activations();
    // The state before step s of row r: the previous output once the row has started, else h0.
    let h_prev = |r: usize, s: usize| -> &[f32] {
        if s > 0 && p.mask.started(b0 + r, s - 1, t, back) {
            &out[(r * t + s - 1) * h..(r * t + s) * h]
        } else {
            p.h0.map_or(&zeros[..], |h0| &h0[(b0 + r) * h..(b0 + r + 1) * h])
        }
    };
    for s in (0..t).rev() {
        for r in 0..rows {
            let dhr = &mut dh[r * h..(r + 1) * h];
            // An output before the row's first valid step is a constant zero: its gradient stops.
            if let Some(d_out) = d_out.filter(|_| p.mask.started(b0 + r, s, t, back)) {
                let o = ((b0 + r) * t + s) * h;
                rnn::add_inplace(dhr, &d_out[o..o + h]);
            }
            let z = &mut gates[(r * t + s) * g3..(r * t + s + 1) * g3];
            let ex = &mut extra[(r * t + s) * h..(r * t + s + 1) * h];
            let dr = &mut drec[r * g3..(r + 1) * g3];
            if !p.mask.valid(b0 + r, s, t, back) {
                // No update at this step: no gradient to its gates; dh passes through unchanged.
                z.fill(0.0);
                dr.fill(0.0);
                ex.fill(0.0);
                continue;
            }
            let hp = h_prev(r, s);
            if fused {
                cell_after_backward_tanh_sigmoid(z, ex, hp, dhr, dr);
            } else if spec.reset_after {
                cell_after_backward_generic(spec, z, ex, hp, dhr, dr, &mut tmp);
            } else {
                cell_before_backward_first(spec, z, hp, dhr, &mut tmp);
            }
        }
        if !spec.reset_after {
            // d(r ⊙ h_prev) = dĥ_pre·U_hᵀ for all rows, then the reset gate's gradient.
            let drh = &mut dh_next; // free until the final GEMM of this step
            let u_ht = packs.1.expect("reset_before packs U_hᵀ");
            gemm_packed(rows, &gates[s * g3 + 2 * h..], t * g3, u_ht, drh, h, false);
            for r in 0..rows {
                if !p.mask.valid(b0 + r, s, t, back) {
                    continue;
                }
                if let Some(m) = p.masks.recurrent {
                    // The product was (r ⊙ h_prev ⊙ m_h)·U_h: d(r ⊙ h_prev) is drh ⊙ m_h.
                    rnn::mul_inplace(&mut drh[r * h..(r + 1) * h], mask_row(m, 2, b0 + r, batch, h));
                }
                let z = &mut gates[(r * t + s) * g3..(r * t + s + 1) * g3];
                let hp = h_prev(r, s);
                cell_before_backward_second(
                    spec,
                    z,
                    &drh[r * h..(r + 1) * h],
                    hp,
                    &mut dh[r * h..(r + 1) * h],
                    &mut drec[r * g3..(r + 1) * g3],
                    &mut tmp,
                );
            }
        }
        // dh_{s-1} = (direct part, already in dh) + drec·Uᵀ over the blocks that saw h_{s-1}
        // (with recurrent-dropout masks, Σ_g (drec_g·U_gᵀ) ⊙ m_g).
        match p.masks.recurrent {
            None => {
                gemm_packed(rows, &drec, g3, &packs.0[0], &mut dh_next, h, false);
                rnn::add_inplace(&mut dh_next, dh);
            }
            Some(m) => {
                dh_next.copy_from_slice(dh);
                for (gi, ut) in packs.0.iter().enumerate() {
                    gemm_packed(rows, &drec[gi * h..], g3, ut, &mut part, h, false);
                    for r in 0..rows {
                        let pr = &mut part[r * h..(r + 1) * h];
                        rnn::mul_inplace(pr, mask_row(m, gi, b0 + r, batch, h));
                        rnn::add_inplace(&mut dh_next[r * h..(r + 1) * h], pr);
                    }
                }
            }
        }
        dh.copy_from_slice(&dh_next);
    }
}

/// reset_after, (tanh, sigmoid), one valid row. In: `z` = (z, r, ĥ), `mh_h`, `h_prev`, `dh`.
/// Out: `z` = (dz, dr, dĥ_pre) (the input-side gradient), `mh_h` = dmh_h, `drec` = (dz, dr,
/// dmh_h), `dh` = dh ⊙ z (the direct part of dh_{t-1}). AVX-512 copy when the CPU has it.
#[inline]
fn cell_after_backward_tanh_sigmoid(z: &mut [f32], mh_h: &mut [f32], h_prev: &[f32], dh: &mut [f32], drec: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::level() == crate::simd::Level::Avx512 {
        // SAFETY: as in `cell_after_tanh_sigmoid`.
        return unsafe { crate::simd::avx512::gru_cell_after_backward(z, mh_h, h_prev, dh, drec) };
    }
    cell_after_backward_compiled(z, mh_h, h_prev, dh, drec)
}

multiversion! {
    /// The compiled copy of [`cell_after_backward_tanh_sigmoid`].
    fn cell_after_backward_compiled(z: &mut [f32], mh_h: &mut [f32], h_prev: &[f32], dh: &mut [f32], drec: &mut [f32]) {
        let n = dh.len();
        let (zz, rest) = z.split_at_mut(n);
        let (zr, zh) = rest.split_at_mut(n);
        let (rz, rest) = drec.split_at_mut(n);
        let (rr, rh) = rest.split_at_mut(n);
        for j in 0..n {
            let (zg, rg, hh, m) = (zz[j], zr[j], zh[j], mh_h[j]);
            let g = dh[j];
            let dz = g * (h_prev[j] - hh) * zg * (1.0 - zg);
            let da = g * (1.0 - zg) * (1.0 - hh * hh);
            let dr = da * m * rg * (1.0 - rg);
            let dm = da * rg;
            zz[j] = dz;
            zr[j] = dr;
            zh[j] = da;
            rz[j] = dz;
            rr[j] = dr;
            rh[j] = dm;
            mh_h[j] = dm;
            dh[j] = g * zg;
        }
    }
}

/// Shared first part of the generic backward: from (z, ĥ) and dh, `zz := dz`, `zh := dĥ_pre`,
/// `dh := dh ⊙ z`. Uses `tmp[..2H]`.
fn gates_z_h_backward(spec: &GruSpec, zz: &mut [f32], zh: &mut [f32], h_prev: &[f32], dh: &mut [f32], tmp: &mut [f32]) {
    let n = dh.len();
    let (t1, rest) = tmp.split_at_mut(n);
    let t2 = &mut rest[..n];
    diff_times(h_prev, zh, dh, t1); // dz_raw = dh ⊙ (h_prev − ĥ)
    one_minus_times(zz, dh, t2); // dĥ = dh ⊙ (1 − z)
    spec.activation.grad_from_output_inplace(zh, t2);
    rnn::mul_inplace(dh, zz); // direct path into h_{t-1}
    spec.recurrent_activation.grad_from_output_inplace(zz, t1);
}

/// reset_after with any activations; same contract as the fused version.
fn cell_after_backward_generic(
    spec: &GruSpec,
    z: &mut [f32],
    mh_h: &mut [f32],
    h_prev: &[f32],
    dh: &mut [f32],
    drec: &mut [f32],
    tmp: &mut [f32],
) {
    let n = dh.len();
    let (zz, rest) = z.split_at_mut(n);
    let (zr, zh) = rest.split_at_mut(n);
    gates_z_h_backward(spec, zz, zh, h_prev, dh, tmp);
    let t3 = &mut tmp[2 * n..3 * n];
    rnn::mul(zh, mh_h, t3); // dr_raw = dĥ_pre ⊙ mh_h
    rnn::mul(zh, zr, mh_h); // dmh_h = dĥ_pre ⊙ r (replaces mh_h)
    spec.recurrent_activation.grad_from_output_inplace(zr, t3);
    drec[..n].copy_from_slice(zz);
    drec[n..2 * n].copy_from_slice(zr);
    drec[2 * n..].copy_from_slice(mh_h);
}

/// reset_before, before the `U_h` GEMM: `z` = (dz, r, dĥ_pre), `dh` = dh ⊙ z.
fn cell_before_backward_first(spec: &GruSpec, z: &mut [f32], h_prev: &[f32], dh: &mut [f32], tmp: &mut [f32]) {
    let n = dh.len();
    let (zz, rest) = z.split_at_mut(n);
    let zh = &mut rest[n..];
    gates_z_h_backward(spec, zz, zh, h_prev, dh, tmp);
}

/// reset_before, after it: with `drh` = d(r ⊙ h_prev), `zr := dr`, `dh += drh ⊙ r`, `drec` = (dz, dr, ·).
fn cell_before_backward_second(
    spec: &GruSpec,
    z: &mut [f32],
    drh: &[f32],
    h_prev: &[f32],
    dh: &mut [f32],
    drec: &mut [f32],
    tmp: &mut [f32],
) {
    let n = dh.len();
    let (zz, rest) = z.split_at_mut(n);
    let zr = &mut rest[..n];
    let t1 = &mut tmp[..n];
    rnn::mul(drh, h_prev, t1); // dr_raw
    let t2 = &mut tmp[n..2 * n];
    rnn::mul(drh, zr, t2);
    rnn::add_inplace(dh, t2);
    let t1 = &tmp[..n];
    spec.recurrent_activation.grad_from_output_inplace(zr, t1);
    drec[..n].copy_from_slice(zz);
    drec[n..2 * n].copy_from_slice(zr);
}

multiversion! {
    /// `out = (1 − z) ⊙ g`
    fn one_minus_times(z: &[f32], g: &[f32], out: &mut [f32]) {
        for ((o, &zg), &gg) in out.iter_mut().zip(z).zip(g) { *o = (1.0 - zg) * gg; }
    }
}
multiversion! {
    /// `out = (a − b) ⊙ g`
    fn diff_times(a: &[f32], b: &[f32], g: &[f32], out: &mut [f32]) {
        for (((o, &x), &y), &gg) in out.iter_mut().zip(a).zip(b).zip(g) { *o = (x - y) * gg; }
    }
}

#[cfg(test)]
#[path = "gru_tests.rs"]
mod tests;
