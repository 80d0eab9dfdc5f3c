//! SimpleRNN forward (training and inference) and backward, Keras semantics:
//! ```text
//! h_t = φ(x_t·W + b + h_{t-1}·U)            (φ = activation, default tanh)
//! ```
//! `kernel (F, H)`, `recurrent_kernel (H, H)`, `bias (H,)`. Masked steps (`t >= len[b]`) leave `h`
//! unchanged and output the previous output (zeros before the row's first valid step), as in
//! [`super::lstm`]. With dropout masks (Keras's cell: one input mask `(B, F)` and one recurrent mask
//! `(B, H)` per sequence), `x_t ⊙ m_x` and `h_{t-1} ⊙ m_h` enter the products.
//!
//! Design: with a single gate there is no per-gate work to fuse, so the input projection `X·W` is
//! one GEMM over all `B·T` rows before the loop (written where the tape keeps the states), and each
//! step accumulates `h_{t-1}·U` onto its rows, adds the bias and applies φ in place; threads own
//! contiguous slices of the batch for the whole loop, as the other RNN kernels do. The tape is the
//! post-activation state of every step, from which φ' comes (every cell activation's derivative is a
//! function of its output). Backward per step: `dz_t = dh ⊙ φ'(h_t)` in place and one GEMM
//! `dz_t·Uᵀ` for `dh_{t-1}`; after the loop `dW = Xᵀ·dZ`, `dx = dZ·Wᵀ`, `db = Σ dZ` and
//! `dU = Σ h_{t-1}ᵀ·dz_t` are single big GEMMs.
use super::dense;
use super::rnn::{self, add_inplace, batch_chunk, copy_or_zero, mask_row, mul, Chunk, GateMasks, RnnDims, StepMask};
use crate::linalg::packed::{gemm_packed, PackedB};
use crate::linalg::{sgemm, Trans};
use crate::simd::activation::Activation;
use rayon::prelude::*;

#[derive(Clone, Copy, Debug)]
pub struct SimpleRnnSpec {
    pub dims: RnnDims,
    pub activation: Activation,
    pub go_backwards: bool,
}

/// Read-only inputs of a forward or backward call.
#[derive(Clone, Copy)]
pub struct SimpleRnnParams<'a> {
    /// `(B, T, F)`
    pub x: &'a [f32],
    /// `(F, H)`
    pub kernel: &'a [f32],
    /// `(H, H)`
    pub recurrent_kernel: &'a [f32],
    /// `(H,)`
    pub bias: Option<&'a [f32]>,
    /// `(B, H)`, zeros when absent
    pub h0: Option<&'a [f32]>,
    pub mask: StepMask<'a>,
    /// `(1, B, F)` and `(1, B, H)` dropout masks (training with recurrent_dropout); none by default
    pub masks: GateMasks<'a>,
}

fn check(spec: &SimpleRnnSpec, p: &SimpleRnnParams) {
    let RnnDims { batch: b, steps: t, inputs: f, units: h } = spec.dims;
    assert_eq!(p.x.len(), b * t * f, "simple_rnn: x");
    assert_eq!(p.kernel.len(), f * h, "simple_rnn: kernel");
    assert_eq!(p.recurrent_kernel.len(), h * h, "simple_rnn: recurrent_kernel");
    assert!(p.bias.is_none_or(|v| v.len() == h), "simple_rnn: bias");
    assert!(p.h0.is_none_or(|v| v.len() == b * h), "simple_rnn: h0");
    p.mask.check("simple_rnn", b, t);
    assert!(rnn::CELL_ACTIVATIONS.contains(&spec.activation), "simple_rnn: activation");
    p.masks.check("simple_rnn", 1, spec.dims);
}

/// Forward pass. `out` `(B, T, H)` receives every step's output, `h_last` `(B, H)` the final state.
/// With `states` `(B, T, H)` (training) the post-activation state of every step is kept for
/// [`backward`]; without, a scratch buffer holds the projections for the call.
pub fn forward(
    spec: &SimpleRnnSpec,
    p: &SimpleRnnParams,
    out: &mut [f32],
    h_last: &mut [f32],
    states: Option<&mut [f32]>,
) {
    check(spec, p);
    let d = spec.dims;
    let (b, t, f, h) = (d.batch, d.steps, d.inputs, d.units);
    assert_eq!(out.len(), b * t * h, "simple_rnn: out");
    assert_eq!(h_last.len(), b * h, "simple_rnn: h_last");
    if b == 0 || h == 0 {
        return;
    }
    if t == 0 {
        copy_or_zero(h_last, p.h0);
        return;
    }
    let threads = crate::threads::current_threads();
    let u = PackedB::pack(p.recurrent_kernel, h, h, h, Trans::N);
    let mut run = |z: &mut [f32]| {
        // X·W (the input dropout mask applied first) for every step, in processing order.
        match p.masks.input {
            Some(m) => rnn::masked_input_projection(d, 1, p.x, m, p.kernel, z),
            None => sgemm(Trans::N, Trans::N, b * t, h, f, 1.0, p.x, f, p.kernel, h, 0.0, z, h, threads),
        }
        if spec.go_backwards {
            rnn::reverse_time(z, d, h);
        }
        let nb = batch_chunk(b, threads);
        let nchunks = b.div_ceil(nb);
        if nchunks == 1 {
            forward_chunk(spec, p, &u, Chunk { b0: 0, rows: b }, z, out, h_last);
        } else {
            z.par_chunks_mut(nb * t * h)
                .zip(out.par_chunks_mut(nb * t * h).zip(h_last.par_chunks_mut(nb * h)))
                .enumerate()
                .for_each(|(ci, (zc, (oc, hc)))| {
                    let ch = Chunk { b0: ci * nb, rows: hc.len() / h };
                    forward_chunk(spec, p, &u, ch, zc, oc, hc);
                });
        }
    };
    match states {
        Some(s) => {
            assert_eq!(s.len(), b * t * h, "simple_rnn: states");
            run(s)
        }
        None => crate::workspace::with_scratch(b * t * h, run),
    }
}

fn forward_chunk(
    spec: &SimpleRnnSpec,
    p: &SimpleRnnParams,
    u: &PackedB,
    ch: Chunk,
    z: &mut [f32],
    out: &mut [f32],
    state: &mut [f32],
) {
    let RnnDims { batch, steps: t, units: h, .. } = spec.dims;
    let (b0, rows) = (ch.b0, ch.rows);
    // `state` is this slice's h; with a recurrent mask the GEMM reads its masked copy.
    match p.h0 {
        Some(h0) => state.copy_from_slice(&h0[b0 * h..(b0 + rows) * h]),
        None => state.fill(0.0),
    }
    let mut hm = if p.masks.recurrent.is_some() { vec![0.0f32; rows * h] } else { Vec::new() };
    for s in 0..t {
        let left: &[f32] = match p.masks.recurrent {
            Some(m) => {
                for r in 0..rows {
                    mul(&state[r * h..(r + 1) * h], mask_row(m, 0, b0 + r, batch, h), &mut hm[r * h..(r + 1) * h]);
                }
                &hm
            }
            None => state,
        };
        gemm_packed(rows, left, h, u, &mut z[s * h..], t * h, true);
        for r in 0..rows {
            let zr = &mut z[(r * t + s) * h..(r * t + s + 1) * h];
            let hs = &mut state[r * h..(r + 1) * h];
            if p.mask.valid(b0 + r, s, t, spec.go_backwards) {
                if let Some(bias) = p.bias {
                    add_inplace(zr, bias);
                }
                spec.activation.forward_inplace(zr, h);
                hs.copy_from_slice(zr);
            }
            let o = &mut out[(r * t + s) * h..(r * t + s + 1) * h];
            if p.mask.started(b0 + r, s, t, spec.go_backwards) {
                o.copy_from_slice(hs);
            } else {
                o.fill(0.0);
            }
        }
    }
}

/// Gradients, written in full.
pub struct SimpleRnnGrads<'a> {
    /// `(B, T, F)`; skipped when `None`
    pub dx: Option<&'a mut [f32]>,
    pub dkernel: &'a mut [f32],
    pub drecurrent_kernel: &'a mut [f32],
    pub dbias: Option<&'a mut [f32]>,
    /// `(B, H)`
    pub dh0: &'a mut [f32],
}

/// Backward pass from the training forward's `out` and `states` (consumed: `states` becomes
/// `dZ`), given the upstream gradients by every output (`d_out`, `(B, T, H)`) and by the final
/// state (`d_h_last`), either absent meaning zero.
pub fn backward(
    spec: &SimpleRnnSpec,
    p: &SimpleRnnParams,
    out: &[f32],
    states: &mut [f32],
    d_out: Option<&[f32]>,
    d_h_last: Option<&[f32]>,
    g: SimpleRnnGrads,
) {
    check(spec, p);
    let d = spec.dims;
    let (b, t, f, h) = (d.batch, d.steps, d.inputs, d.units);
    assert_eq!(out.len(), b * t * h, "simple_rnn backward: out");
    assert_eq!(states.len(), b * t * h, "simple_rnn backward: states");
    assert!(d_out.is_none_or(|v| v.len() == b * t * h), "simple_rnn backward: d_out");
    assert!(d_h_last.is_none_or(|v| v.len() == b * h), "simple_rnn backward: d_h_last");
    assert_eq!(g.dkernel.len(), f * h);
    assert_eq!(g.drecurrent_kernel.len(), h * h);
    assert_eq!(g.dh0.len(), b * h);
    assert!(g.dx.as_ref().is_none_or(|v| v.len() == b * t * f), "simple_rnn backward: dx");
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
    let threads = crate::threads::current_threads();
    let ut = PackedB::pack(p.recurrent_kernel, h, h, h, Trans::T);
    let nb = batch_chunk(b, threads);
    let nchunks = b.div_ceil(nb);
    if nchunks == 1 {
        backward_chunk(spec, p, &ut, Chunk { b0: 0, rows: b }, states, d_out, d_h_last, g.dh0);
    } else {
        states.par_chunks_mut(nb * t * h).zip(g.dh0.par_chunks_mut(nb * h)).enumerate().for_each(|(ci, (zc, dh))| {
            let ch = Chunk { b0: ci * nb, rows: dh.len() / h };
            backward_chunk(spec, p, &ut, ch, zc, d_out, d_h_last, dh);
        });
    }
    let dz: &mut [f32] = states;
    match p.masks.recurrent {
        None => rnn::recurrent_weight_grad(
            d,
            out,
            p.h0,
            p.mask,
            spec.go_backwards,
            dz,
            h,
            h,
            g.drecurrent_kernel,
            h,
            threads,
        ),
        Some(m) => rnn::masked_recurrent_weight_grad(
            d,
            out,
            p.h0,
            &m[..b * h],
            p.mask,
            spec.go_backwards,
            dz,
            h,
            h,
            g.drecurrent_kernel,
            h,
        ),
    }
    if let Some(db) = g.dbias {
        dense::column_sums_par(dz, h, db);
    }
    if spec.go_backwards {
        rnn::reverse_time(dz, d, h); // to input-time order, to pair with x
    }
    if let Some(m) = p.masks.input {
        rnn::masked_input_grads(d, 1, p.x, m, p.kernel, dz, g.dkernel, g.dx);
        return;
    }
    sgemm(Trans::T, Trans::N, f, h, b * t, 1.0, p.x, f, dz, h, 0.0, g.dkernel, h, threads);
    if let Some(dx) = g.dx {
        sgemm(Trans::N, Trans::T, b * t, f, h, 1.0, dz, h, p.kernel, h, 0.0, dx, f, threads);
    }
}

#[allow(clippy::too_many_arguments)]
fn backward_chunk(
    spec: &SimpleRnnSpec,
    p: &SimpleRnnParams,
    ut: &PackedB,
    ch: Chunk,
    z: &mut [f32],
    d_out: Option<&[f32]>,
    d_h_last: Option<&[f32]>,
    dh: &mut [f32],
) {
    let RnnDims { batch, steps: t, units: h, .. } = spec.dims;
    let (b0, rows) = (ch.b0, ch.rows);
    match d_h_last {
        Some(v) => dh.copy_from_slice(&v[b0 * h..(b0 + rows) * h]),
        None => dh.fill(0.0),
    }
    let mut prod = vec![0.0f32; rows * h];
    for s in (0..t).rev() {
        for r in 0..rows {
            let dhr = &mut dh[r * h..(r + 1) * h];
            // An output before the row's first valid step is a constant zero: its gradient stops.
            if let Some(d_out) = d_out.filter(|_| p.mask.started(b0 + r, s, t, spec.go_backwards)) {
                let o = ((b0 + r) * t + s) * h;
                add_inplace(dhr, &d_out[o..o + h]);
            }
            let zr = &mut z[(r * t + s) * h..(r * t + s + 1) * h];
            if p.mask.valid(b0 + r, s, t, spec.go_backwards) {
                spec.activation.grad_from_output_inplace(zr, dhr); // h_t becomes dz_t
            } else {
                zr.fill(0.0);
            }
        }
        gemm_packed(rows, &z[s * h..], t * h, ut, &mut prod, h, false);
        for r in 0..rows {
            // Masked rows (dz = 0) pass dh through unchanged.
            if p.mask.valid(b0 + r, s, t, spec.go_backwards) {
                let pr = &prod[r * h..(r + 1) * h];
                match p.masks.recurrent {
                    Some(m) => mul(pr, mask_row(m, 0, b0 + r, batch, h), &mut dh[r * h..(r + 1) * h]),
                    None => dh[r * h..(r + 1) * h].copy_from_slice(pr),
                }
            }
        }
    }
}
