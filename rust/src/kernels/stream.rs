//! One time step of a stateful model, for streaming inference (online forecasting calls a model
//! one step at a time, and the whole cost of a call is then overhead unless the step is its own
//! path): the recurrent cells and the dense layers of a chain, each as a matrix-vector product per
//! sample followed by the same cell update the time loops use (`lstm::cell_step`,
//! `gru::cell_step_*`), on the caller's thread, into buffers the caller keeps between calls.
//!
//! Why not the sequence kernels with `T = 1`: they pack the weights for their GEMMs on every call
//! (for LSTM(128) on 32 features, 330 KB copied per call, more than the step's own work) and
//! allocate their outputs and tapes. Here the weights are read in place by
//! [`gemv_acc`] (`y += v·W`, blocks of columns held in registers over all rows), which streams
//! each weight once in Keras's `(inputs, gates·units)` layout (the whole LSTM(128) weight set fits
//! in L2, so a step is bound by L2 bandwidth).
use super::gru::{self, GruSpec};
use super::lstm;
use super::rnn::{self, RnnDims};
use crate::linalg::gemv::gemv_acc;
use crate::simd::activation::Activation;

/// Weights of a recurrent cell in Keras's layout: `kernel (F, G·H)`, `recurrent (H, G·H)`, and the
/// bias (`(G·H,)`, or GRU reset_after's `(2, 3H)`), or none.
#[derive(Clone, Copy)]
pub struct CellWeights<'a> {
    pub kernel: &'a [f32],
    pub recurrent: &'a [f32],
    pub bias: Option<&'a [f32]>,
}

/// The cell of one streaming recurrent layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    Lstm,
    Gru { reset_after: bool },
    SimpleRnn,
}

impl Cell {
    pub fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru { .. } => 3,
            Cell::SimpleRnn => 1,
        }
    }

    /// Floats of scratch one step needs for `units`.
    pub fn scratch(self, units: usize) -> usize {
        (2 * self.gates() + 2) * units
    }
}

/// One step of a recurrent layer for `batch` samples: `x (B, F)`, state `h (B, H)` (and `c` for an
/// LSTM) updated in place. `zeros` is at least `2·G·H` zeros (the absent bias); `scratch` at least
/// [`Cell::scratch`] floats.
#[allow(clippy::too_many_arguments)]
pub fn recurrent_step(
    cell: Cell,
    activation: Activation,
    recurrent_activation: Activation,
    units: usize,
    w: CellWeights,
    x: &[f32],
    h: &mut [f32],
    c: Option<&mut [f32]>,
    zeros: &[f32],
    scratch: &mut [f32],
) {
    let g = cell.gates();
    let gw = g * units;
    let batch = h.len() / units.max(1);
    if units == 0 || batch == 0 {
        return;
    }
    let inputs = x.len() / batch;
    assert!(w.kernel.len() == inputs * gw && w.recurrent.len() == units * gw, "stream step: weights");
    let (mx, rest) = scratch.split_at_mut(gw);
    let (mh, rest) = rest.split_at_mut(gw);
    let (tmp, _) = rest.split_at_mut(2 * units);
    let spec = GruSpec {
        dims: RnnDims { batch: 1, steps: 1, inputs, units },
        activation,
        recurrent_activation,
        go_backwards: false,
        reset_after: matches!(cell, Cell::Gru { reset_after: true }),
    };
    let mut c = c;
    for b in 0..batch {
        let xb = &x[b * inputs..(b + 1) * inputs];
        let hb = &mut h[b * units..(b + 1) * units];
        mx.fill(0.0);
        gemv_acc(xb, w.kernel, gw, 0, mx);
        match cell {
            Cell::Lstm => {
                gemv_acc(hb, w.recurrent, gw, 0, mx);
                let cb = &mut c.as_deref_mut().expect("an LSTM step needs c")[b * units..(b + 1) * units];
                lstm::cell_step(activation, recurrent_activation, mx, w.bias.unwrap_or(zeros), cb, hb);
            }
            Cell::SimpleRnn => {
                gemv_acc(hb, w.recurrent, gw, 0, mx);
                if let Some(bias) = w.bias {
                    rnn::add_inplace(mx, bias);
                }
                activation.forward_inplace(mx, units);
                hb.copy_from_slice(mx);
            }
            Cell::Gru { reset_after: true } => {
                mh.fill(0.0);
                gemv_acc(hb, w.recurrent, gw, 0, mh);
                let (b_in, b_rec) = match w.bias {
                    Some(bias) => bias.split_at(gw),
                    None => (&zeros[..gw], &zeros[..gw]),
                };
                gru::cell_step_after(&spec, mx, mh, b_in, b_rec, hb, &mut tmp[..units]);
            }
            Cell::Gru { reset_after: false } => {
                rnn::add_inplace(mx, w.bias.unwrap_or(&zeros[..gw]));
                let rec_zr = &mut mh[..2 * units];
                rec_zr.fill(0.0);
                gemv_acc(hb, w.recurrent, gw, 0, rec_zr);
                let (rh, rec_h) = tmp.split_at_mut(units);
                gru::cell_step_before_gates(&spec, mx, rec_zr, hb, rh);
                rec_h.fill(0.0);
                gemv_acc(rh, w.recurrent, gw, 2 * units, rec_h);
                gru::cell_step_before_finish(&spec, mx, rec_h, hb);
            }
        }
    }
}

/// `y (B, U) = act(x (B, K) · kernel (K, U) + bias)`.
pub fn dense_step(
    x: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    units: usize,
    y: &mut [f32],
) {
    if units == 0 || y.is_empty() {
        return;
    }
    let batch = y.len() / units;
    let k = x.len() / batch;
    assert_eq!(kernel.len(), k * units, "stream dense: kernel");
    for b in 0..batch {
        let yb = &mut y[b * units..(b + 1) * units];
        match bias {
            Some(v) => yb.copy_from_slice(v),
            None => yb.fill(0.0),
        }
        gemv_acc(&x[b * k..(b + 1) * k], kernel, units, 0, yb);
    }
    activation.forward_inplace(y, units);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::lstm::{self, LstmParams, LstmSpec};
    use crate::kernels::rnn::{GateMasks, StepMask};

    fn vals(n: usize, seed: u32, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed.wrapping_mul(40503)) % 1000) as f32 / 500.0 - 1.0)
            .map(|v| v * scale)
            .collect()
    }

    #[test]
    fn an_lstm_step_is_the_sequence_kernel_on_one_step() {
        let (b, f, h) = (3, 5, 7);
        let (x, w, u, bias) =
            (vals(b * f, 1, 1.0), vals(f * 4 * h, 2, 0.5), vals(h * 4 * h, 3, 0.5), vals(4 * h, 4, 0.3));
        let (h0, c0) = (vals(b * h, 5, 0.5), vals(b * h, 6, 0.5));
        let spec = LstmSpec {
            dims: RnnDims { batch: b, steps: 1, inputs: f, units: h },
            activation: Activation::Tanh,
            recurrent_activation: Activation::Sigmoid,
            go_backwards: false,
        };
        let p = LstmParams {
            x: &x,
            kernel: &w,
            recurrent_kernel: &u,
            bias: Some(&bias),
            h0: Some(&h0),
            c0: Some(&c0),
            mask: StepMask::ALL,
            masks: GateMasks::default(),
        };
        let (mut out, mut hl, mut cl) = (vec![0.0; b * h], vec![0.0; b * h], vec![0.0; b * h]);
        lstm::forward(&spec, &p, &mut out, &mut hl, &mut cl, None);
        let (mut hs, mut cs) = (h0.clone(), c0.clone());
        let zeros = vec![0.0; 8 * h];
        let mut scratch = vec![0.0; Cell::Lstm.scratch(h)];
        let cw = CellWeights { kernel: &w, recurrent: &u, bias: Some(&bias) };
        recurrent_step(
            Cell::Lstm,
            Activation::Tanh,
            Activation::Sigmoid,
            h,
            cw,
            &x,
            &mut hs,
            Some(&mut cs),
            &zeros,
            &mut scratch,
        );
        for (a, e) in hs.iter().zip(&hl).chain(cs.iter().zip(&cl)) {
            assert!((a - e).abs() < 1e-5, "{a} vs {e}");
        }
    }

    #[test]
    fn dense_step_is_a_matrix_product() {
        let (x, k, bias) = (vec![1.0, 2.0, 3.0, 4.0], vec![1.0, 0.0, 0.5, 1.0], vec![0.25, -10.0]);
        let mut y = vec![0.0; 4];
        dense_step(&x, &k, Some(&bias), Activation::Relu, 2, &mut y);
        assert_eq!(y, vec![1.0 + 1.0 + 0.25, 0.0, 3.0 + 2.0 + 0.25, 0.0]);
    }
}
#[cfg(test)]
mod timing {
    use super::*;
    #[test]
    #[ignore]
    fn time_lstm_step() {
        let (f, h): (usize, usize) = (32, std::env::var("H").map_or(128, |v| v.parse().unwrap()));
        let (x, w, u, bias) =
            (vec![0.1f32; f], vec![0.01f32; f * 4 * h], vec![0.01f32; h * 4 * h], vec![0.0f32; 4 * h]);
        let (mut hs, mut cs) = (vec![0.0f32; h], vec![0.0f32; h]);
        let zeros = vec![0.0; 8 * h];
        let mut scratch = vec![0.0; Cell::Lstm.scratch(h)];
        let cw = CellWeights { kernel: &w, recurrent: &u, bias: Some(&bias) };
        let t0 = std::time::Instant::now();
        for _ in 0..20000 {
            recurrent_step(
                Cell::Lstm,
                Activation::Tanh,
                Activation::Sigmoid,
                h,
                cw,
                &x,
                &mut hs,
                Some(&mut cs),
                &zeros,
                &mut scratch,
            );
        }
        eprintln!("lstm step: {:.2} us", t0.elapsed().as_secs_f64() / 20000.0 * 1e6);
        let mut z = vec![0.0f32; 4 * h];
        let t0 = std::time::Instant::now();
        for _ in 0..20000 {
            gemv_acc(&x, &w, 4 * h, 0, &mut z);
            gemv_acc(&hs, &u, 4 * h, 0, &mut z);
            std::hint::black_box(&mut z);
        }
        eprintln!("gemv only: {:.2} us", t0.elapsed().as_secs_f64() / 20000.0 * 1e6);
        let t0 = std::time::Instant::now();
        // A NumPy-like 16-byte offset into the allocation (the kernel realigns its loads).
        let u_off: Vec<f32> = [0.0; 4].iter().chain(&u).copied().collect();
        for _ in 0..20000 {
            gemv_acc(&hs, &u_off[4..], 4 * h, 0, &mut z);
            std::hint::black_box(&mut z);
        }
        eprintln!(
            "gemv U only: {:.2} us, level {:?}",
            t0.elapsed().as_secs_f64() / 20000.0 * 1e6,
            crate::simd::level()
        );
    }
}
