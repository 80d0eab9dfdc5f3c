//! Bindings for `kernels::lstm` (and the shared recurrent argument handling).
use super::dense::parse_activation;
use super::errors::{run_kernel_on, slice, slice_mut, value_error};
use crate::kernels::gru::{self, GruGrads, GruParams, GruSpec, GruTape};
use crate::kernels::lstm::{self, LstmGrads, LstmParams, LstmSpec, LstmTape, LstmUpstream};
use crate::kernels::rnn::{GateMasks, MaskBuf, RnnDims, StepMask, CELL_ACTIVATIONS};
use crate::kernels::simple_rnn::{self, SimpleRnnGrads, SimpleRnnParams, SimpleRnnSpec};
use crate::simd::activation::Activation;
use numpy::{
    PyArray1, PyArray2, PyArray3, PyArrayDyn, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3,
    PyReadonlyArrayDyn, PyReadwriteArray3, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

pub(crate) fn cell_activation(op: &str, name: &str) -> PyResult<Activation> {
    let a = parse_activation(op, name)?;
    if !CELL_ACTIVATIONS.contains(&a) {
        return Err(value_error(op, format!("activation {name:?} is not supported in a recurrent cell; use one of linear, relu, sigmoid, hard_sigmoid, tanh")));
    }
    Ok(a)
}

pub(crate) fn new3<'py>(py: Python<'py>, a: usize, b: usize, c: usize) -> Bound<'py, PyArray3<f32>> {
    super::buffers::pooled(py, [a, b, c])
}

pub(crate) fn new2<'py>(py: Python<'py>, a: usize, b: usize) -> Bound<'py, PyArray2<f32>> {
    super::dense::new_array2(py, a, b)
}

pub(crate) fn opt<'a, D: numpy::ndarray::Dimension>(
    a: &'a Option<numpy::PyReadonlyArray<'_, f32, D>>,
    op: &str,
    name: &str,
) -> PyResult<Option<&'a [f32]>> {
    a.as_ref().map(|v| slice(v, op, name)).transpose()
}

/// Checks `(B, H)`-shaped state arrays.
pub(crate) fn check_state(op: &str, name: &str, a: &Option<PyReadonlyArray2<f32>>, b: usize, h: usize) -> PyResult<()> {
    if let Some(v) = a {
        if v.shape() != [b, h] {
            return Err(value_error(op, format!("{name} must have shape ({b}, {h}); received {:?}", v.shape())));
        }
    }
    Ok(())
}

/// Per-sample lengths as `usize`, each in `0..=steps`.
pub(crate) fn lengths_vec(
    op: &str,
    l: &Option<PyReadonlyArray1<i64>>,
    batch: usize,
    steps: usize,
) -> PyResult<Option<Vec<usize>>> {
    let Some(l) = l else { return Ok(None) };
    let v = l.as_array();
    if v.len() != batch {
        return Err(value_error(op, format!("lengths must have shape ({batch},); received ({},)", v.len())));
    }
    v.iter()
        .map(|&n| {
            if n < 0 || n as usize > steps {
                Err(value_error(
                    op,
                    format!("lengths must lie in [0, {steps}] (the number of time steps); received {n}"),
                ))
            } else {
                Ok(n as usize)
            }
        })
        .collect::<PyResult<Vec<usize>>>()
        .map(Some)
}

/// A recurrent kernel's `mask` argument, owned: absent, per-sample lengths `(B,)` int64 (post-padded
/// sequences), or a boolean `(B, T)` mask of any pattern; and the optional `continued` rows `(B,)`
/// bool (see [`StepMask::continuing`]).
pub(crate) struct MaskArg {
    lengths: Option<Vec<usize>>,
    steps: Option<MaskBuf>,
    continued: Option<Vec<u8>>,
}

impl MaskArg {
    pub(crate) fn view(&self) -> StepMask<'_> {
        let m = match (&self.lengths, &self.steps) {
            (Some(l), _) => StepMask::lengths(l),
            (None, Some(buf)) => buf.view(),
            (None, None) => StepMask::ALL,
        };
        m.continuing(self.continued.as_deref())
    }
}

pub(crate) fn step_mask(
    op: &str,
    mask: &Option<Bound<PyAny>>,
    continued: &Option<PyReadonlyArray1<bool>>,
    batch: usize,
    steps: usize,
) -> PyResult<MaskArg> {
    let mut arg = MaskArg { lengths: None, steps: None, continued: None };
    if let Some(m) = mask {
        if let Ok(l) = m.extract::<PyReadonlyArray1<i64>>() {
            arg.lengths = lengths_vec(op, &Some(l), batch, steps)?;
        } else if let Ok(a) = m.extract::<PyReadonlyArray2<bool>>() {
            if a.shape() != [batch, steps] {
                return Err(value_error(
                    op,
                    format!("mask must have shape (batch, steps) = ({batch}, {steps}); received {:?}", a.shape()),
                ));
            }
            let flat: Vec<u8> = a.as_array().iter().map(|&v| v as u8).collect();
            arg.steps = Some(MaskBuf::from_steps(&flat, batch, steps));
        } else {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "{op}: mask must be per-sample lengths (a 1-D int64 array) or a boolean (batch, steps) array; \
                 received {}",
                m.repr().map_or_else(|_| "an unprintable object".to_string(), |r| r.to_string())
            )));
        }
    }
    if let Some(c) = continued {
        if c.len() != batch {
            return Err(value_error(op, format!("continued must have shape ({batch},); received ({},)", c.len())));
        }
        arg.continued = Some(c.as_array().iter().map(|&v| v as u8).collect());
    }
    Ok(arg)
}

/// Dims from `x (B, T, F)` and `kernel (F, gates·H)`, checking the weight shapes.
pub(crate) fn rnn_dims(
    op: &str,
    x: &PyReadonlyArray3<f32>,
    kernel: &PyReadonlyArray2<f32>,
    recurrent: &PyReadonlyArray2<f32>,
    gates: usize,
) -> PyResult<RnnDims> {
    let (b, t, f) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let (kf, kg) = (kernel.shape()[0], kernel.shape()[1]);
    if kf != f || kg % gates != 0 {
        return Err(value_error(
            op,
            format!(
                "kernel must have shape ({f}, {gates}*units) for x of shape ({b}, {t}, {f}); received {:?}",
                kernel.shape()
            ),
        ));
    }
    let h = kg / gates;
    if recurrent.shape() != [h, gates * h] {
        return Err(value_error(
            op,
            format!("recurrent_kernel must have shape ({h}, {}); received {:?}", gates * h, recurrent.shape()),
        ));
    }
    Ok(RnnDims { batch: b, steps: t, inputs: f, units: h })
}

/// Checks the optional per-gate dropout masks: input `(gates, B, F)`, recurrent `(gates, B, H)`.
pub(crate) fn check_masks(
    op: &str,
    gates: usize,
    d: RnnDims,
    input: &Option<PyReadonlyArray3<f32>>,
    recurrent: &Option<PyReadonlyArray3<f32>>,
) -> PyResult<()> {
    for (name, m, w) in [("input_masks", input, d.inputs), ("recurrent_masks", recurrent, d.units)] {
        if let Some(m) = m {
            if m.shape() != [gates, d.batch, w] {
                return Err(value_error(
                    op,
                    format!(
                        "{name} must have shape ({gates}, {}, {w}) (one mask per gate); received {:?}",
                        d.batch,
                        m.shape()
                    ),
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn masks<'a>(
    op: &str,
    input: &'a Option<PyReadonlyArray3<f32>>,
    recurrent: &'a Option<PyReadonlyArray3<f32>>,
) -> PyResult<GateMasks<'a>> {
    Ok(GateMasks { input: opt(input, op, "input_masks")?, recurrent: opt(recurrent, op, "recurrent_masks")? })
}

type LstmFwdOut<'py> = (
    Bound<'py, PyArray3<f32>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray2<f32>>,
    Option<Bound<'py, PyArray3<f32>>>,
    Option<Bound<'py, PyArray3<f32>>>,
);

/// `lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask, activation,
/// recurrent_activation, go_backwards, training, input_masks=None, recurrent_masks=None, continued=None)
/// -> (outputs, h, c, gates | None, cells | None)`
#[pyfunction]
#[pyo3(signature = (x, kernel, recurrent_kernel, bias, h0, c0, mask, activation, recurrent_activation, go_backwards, training, input_masks=None, recurrent_masks=None, continued=None))]
#[allow(clippy::too_many_arguments)]
fn lstm_forward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray3<'py, f32>,
    kernel: PyReadonlyArray2<'py, f32>,
    recurrent_kernel: PyReadonlyArray2<'py, f32>,
    bias: Option<PyReadonlyArray1<'py, f32>>,
    h0: Option<PyReadonlyArray2<'py, f32>>,
    c0: Option<PyReadonlyArray2<'py, f32>>,
    mask: Option<Bound<'py, PyAny>>,
    activation: &str,
    recurrent_activation: &str,
    go_backwards: bool,
    training: bool,
    input_masks: Option<PyReadonlyArray3<'py, f32>>,
    recurrent_masks: Option<PyReadonlyArray3<'py, f32>>,
    continued: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<LstmFwdOut<'py>> {
    const OP: &str = "lstm_forward";
    let spec = LstmSpec {
        dims: rnn_dims(OP, &x, &kernel, &recurrent_kernel, 4)?,
        activation: cell_activation(OP, activation)?,
        recurrent_activation: cell_activation(OP, recurrent_activation)?,
        go_backwards,
    };
    let RnnDims { batch: b, steps: t, units: h, .. } = spec.dims;
    if let Some(v) = &bias {
        if v.len() != 4 * h {
            return Err(value_error(OP, format!("bias must have shape ({},); received ({},)", 4 * h, v.len())));
        }
    }
    check_state(OP, "initial h", &h0, b, h)?;
    check_state(OP, "initial c", &c0, b, h)?;
    check_masks(OP, 4, spec.dims, &input_masks, &recurrent_masks)?;
    let step_mask = step_mask(OP, &mask, &continued, b, t)?;
    let out = new3(py, b, t, h);
    let (hl, cl) = (new2(py, b, h), new2(py, b, h));
    let gates = training.then(|| new3(py, b, t, 4 * h));
    let cells = training.then(|| new3(py, b, t, h));
    {
        let p = LstmParams {
            x: slice(&x, OP, "x")?,
            kernel: slice(&kernel, OP, "kernel")?,
            recurrent_kernel: slice(&recurrent_kernel, OP, "recurrent_kernel")?,
            bias: opt(&bias, OP, "bias")?,
            h0: opt(&h0, OP, "initial h")?,
            c0: opt(&c0, OP, "initial c")?,
            mask: step_mask.view(),
            masks: masks(OP, &input_masks, &recurrent_masks)?,
        };
        let (mut ow, mut hw, mut cw) = (out.readwrite(), hl.readwrite(), cl.readwrite());
        let mut gw = gates.as_ref().map(|a| a.readwrite());
        let mut sw = cells.as_ref().map(|a| a.readwrite());
        let (os, hs, cs) = (slice_mut(&mut ow, OP, "out")?, slice_mut(&mut hw, OP, "h")?, slice_mut(&mut cw, OP, "c")?);
        let tape = match (gw.as_mut(), sw.as_mut()) {
            (Some(g), Some(s)) => {
                Some(LstmTape { gates: slice_mut(g, OP, "gates")?, cells: slice_mut(s, OP, "cells")? })
            }
            _ => None,
        };
        run_kernel_on(py, OP, b <= 1, || lstm::forward(&spec, &p, os, hs, cs, tape))?;
    }
    Ok((out, hl, cl, gates, cells))
}

type LstmBwdOut<'py> = (
    Option<Bound<'py, PyArray3<f32>>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray2<f32>>,
    Option<Bound<'py, PyArray1<f32>>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray2<f32>>,
);

/// `lstm_backward(x, kernel, recurrent_kernel, has_bias, h0, c0, mask, activation,
/// recurrent_activation, go_backwards, outputs, gates, cells, d_outputs, d_h, d_c, need_dx,
/// input_masks=None, recurrent_masks=None) -> (dx | None, dkernel, drecurrent_kernel, dbias | None,
/// dh0, dc0)`. Overwrites `gates`. The masks must be the forward's.
#[pyfunction]
#[pyo3(signature = (x, kernel, recurrent_kernel, has_bias, h0, c0, mask, activation, recurrent_activation, go_backwards, outputs, gates, cells, d_outputs, d_h, d_c, need_dx, input_masks=None, recurrent_masks=None, continued=None))]
#[allow(clippy::too_many_arguments)]
fn lstm_backward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray3<'py, f32>,
    kernel: PyReadonlyArray2<'py, f32>,
    recurrent_kernel: PyReadonlyArray2<'py, f32>,
    has_bias: bool,
    h0: Option<PyReadonlyArray2<'py, f32>>,
    c0: Option<PyReadonlyArray2<'py, f32>>,
    mask: Option<Bound<'py, PyAny>>,
    activation: &str,
    recurrent_activation: &str,
    go_backwards: bool,
    outputs: PyReadonlyArray3<'py, f32>,
    mut gates: PyReadwriteArray3<'py, f32>,
    cells: PyReadonlyArray3<'py, f32>,
    d_outputs: Option<PyReadonlyArray3<'py, f32>>,
    d_h: Option<PyReadonlyArray2<'py, f32>>,
    d_c: Option<PyReadonlyArray2<'py, f32>>,
    need_dx: bool,
    input_masks: Option<PyReadonlyArray3<'py, f32>>,
    recurrent_masks: Option<PyReadonlyArray3<'py, f32>>,
    continued: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<LstmBwdOut<'py>> {
    const OP: &str = "lstm_backward";
    let spec = LstmSpec {
        dims: rnn_dims(OP, &x, &kernel, &recurrent_kernel, 4)?,
        activation: cell_activation(OP, activation)?,
        recurrent_activation: cell_activation(OP, recurrent_activation)?,
        go_backwards,
    };
    let RnnDims { batch: b, steps: t, inputs: f, units: h } = spec.dims;
    check_state(OP, "initial h", &h0, b, h)?;
    check_state(OP, "initial c", &c0, b, h)?;
    check_state(OP, "d_h", &d_h, b, h)?;
    check_state(OP, "d_c", &d_c, b, h)?;
    check_masks(OP, 4, spec.dims, &input_masks, &recurrent_masks)?;
    for (name, shape, want) in [
        ("outputs", outputs.shape().to_vec(), [b, t, h]),
        ("gates", gates.shape().to_vec(), [b, t, 4 * h]),
        ("cells", cells.shape().to_vec(), [b, t, h]),
    ] {
        if shape != want {
            return Err(value_error(OP, format!("{name} must have shape {want:?}; received {shape:?}")));
        }
    }
    if let Some(d) = &d_outputs {
        if d.shape() != [b, t, h] {
            return Err(value_error(
                OP,
                format!("d_outputs must have shape ({b}, {t}, {h}); received {:?}", d.shape()),
            ));
        }
    }
    let step_mask = step_mask(OP, &mask, &continued, b, t)?;
    let dx = need_dx.then(|| new3(py, b, t, f));
    let (dk, drk) = (new2(py, f, 4 * h), new2(py, h, 4 * h));
    let db = has_bias.then(|| super::buffers::pooled(py, [4 * h]));
    let (dh0, dc0) = (new2(py, b, h), new2(py, b, h));
    {
        let p = LstmParams {
            x: slice(&x, OP, "x")?,
            kernel: slice(&kernel, OP, "kernel")?,
            recurrent_kernel: slice(&recurrent_kernel, OP, "recurrent_kernel")?,
            bias: None,
            h0: opt(&h0, OP, "initial h")?,
            c0: opt(&c0, OP, "initial c")?,
            mask: step_mask.view(),
            masks: masks(OP, &input_masks, &recurrent_masks)?,
        };
        let up = LstmUpstream {
            d_out: opt(&d_outputs, OP, "d_outputs")?,
            d_h_last: opt(&d_h, OP, "d_h")?,
            d_c_last: opt(&d_c, OP, "d_c")?,
        };
        let outs = slice(&outputs, OP, "outputs")?;
        let cells_s = slice(&cells, OP, "cells")?;
        let gs = slice_mut(&mut gates, OP, "gates")?;
        let mut dxw = dx.as_ref().map(|a| a.readwrite());
        let (mut dkw, mut drkw, mut dh0w, mut dc0w) =
            (dk.readwrite(), drk.readwrite(), dh0.readwrite(), dc0.readwrite());
        let mut dbw = db.as_ref().map(|a| a.readwrite());
        let grads = LstmGrads {
            dx: dxw.as_mut().map(|a| slice_mut(a, OP, "dx")).transpose()?,
            dkernel: slice_mut(&mut dkw, OP, "dkernel")?,
            drecurrent_kernel: slice_mut(&mut drkw, OP, "drecurrent_kernel")?,
            dbias: dbw.as_mut().map(|a| slice_mut(a, OP, "dbias")).transpose()?,
            dh0: slice_mut(&mut dh0w, OP, "dh0")?,
            dc0: slice_mut(&mut dc0w, OP, "dc0")?,
        };
        run_kernel_on(py, OP, b <= 1, || lstm::backward(&spec, &p, outs, gs, cells_s, up, grads))?;
    }
    Ok((dx, dk, drk, db, dh0, dc0))
}

fn gru_bias_shape(reset_after: bool, h: usize) -> Vec<usize> {
    if reset_after {
        vec![2, 3 * h]
    } else {
        vec![3 * h]
    }
}

type GruFwdOut<'py> = (
    Bound<'py, PyArray3<f32>>,
    Bound<'py, PyArray2<f32>>,
    Option<Bound<'py, PyArray3<f32>>>,
    Option<Bound<'py, PyArray3<f32>>>,
);

/// `gru_forward(x, kernel, recurrent_kernel, bias, h0, mask, activation, recurrent_activation,
/// go_backwards, reset_after, training, input_masks=None, recurrent_masks=None, continued=None)
/// -> (outputs, h, gates | None, extra | None)`
#[pyfunction]
#[pyo3(signature = (x, kernel, recurrent_kernel, bias, h0, mask, activation, recurrent_activation, go_backwards, reset_after, training, input_masks=None, recurrent_masks=None, continued=None))]
#[allow(clippy::too_many_arguments)]
fn gru_forward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray3<'py, f32>,
    kernel: PyReadonlyArray2<'py, f32>,
    recurrent_kernel: PyReadonlyArray2<'py, f32>,
    bias: Option<PyReadonlyArrayDyn<'py, f32>>,
    h0: Option<PyReadonlyArray2<'py, f32>>,
    mask: Option<Bound<'py, PyAny>>,
    activation: &str,
    recurrent_activation: &str,
    go_backwards: bool,
    reset_after: bool,
    training: bool,
    input_masks: Option<PyReadonlyArray3<'py, f32>>,
    recurrent_masks: Option<PyReadonlyArray3<'py, f32>>,
    continued: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<GruFwdOut<'py>> {
    const OP: &str = "gru_forward";
    let spec = GruSpec {
        dims: rnn_dims(OP, &x, &kernel, &recurrent_kernel, 3)?,
        activation: cell_activation(OP, activation)?,
        recurrent_activation: cell_activation(OP, recurrent_activation)?,
        go_backwards,
        reset_after,
    };
    let RnnDims { batch: b, steps: t, units: h, .. } = spec.dims;
    if let Some(v) = &bias {
        let want = gru_bias_shape(reset_after, h);
        if v.shape() != want.as_slice() {
            return Err(value_error(
                OP,
                format!("bias must have shape {want:?} for reset_after={reset_after}; received {:?}", v.shape()),
            ));
        }
    }
    check_state(OP, "initial h", &h0, b, h)?;
    check_masks(OP, 3, spec.dims, &input_masks, &recurrent_masks)?;
    let step_mask = step_mask(OP, &mask, &continued, b, t)?;
    let out = new3(py, b, t, h);
    let hl = new2(py, b, h);
    let gates = training.then(|| new3(py, b, t, 3 * h));
    let extra = training.then(|| new3(py, b, t, h));
    {
        let p = GruParams {
            x: slice(&x, OP, "x")?,
            kernel: slice(&kernel, OP, "kernel")?,
            recurrent_kernel: slice(&recurrent_kernel, OP, "recurrent_kernel")?,
            bias: opt(&bias, OP, "bias")?,
            h0: opt(&h0, OP, "initial h")?,
            mask: step_mask.view(),
            masks: masks(OP, &input_masks, &recurrent_masks)?,
        };
        let (mut ow, mut hw) = (out.readwrite(), hl.readwrite());
        let mut gw = gates.as_ref().map(|a| a.readwrite());
        let mut ew = extra.as_ref().map(|a| a.readwrite());
        let (os, hs) = (slice_mut(&mut ow, OP, "out")?, slice_mut(&mut hw, OP, "h")?);
        let tape = match (gw.as_mut(), ew.as_mut()) {
            (Some(g), Some(e)) => {
                Some(GruTape { gates: slice_mut(g, OP, "gates")?, extra: slice_mut(e, OP, "extra")? })
            }
            _ => None,
        };
        run_kernel_on(py, OP, b <= 1, || gru::forward(&spec, &p, os, hs, tape))?;
    }
    Ok((out, hl, gates, extra))
}

type GruBwdOut<'py> = (
    Option<Bound<'py, PyArray3<f32>>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray2<f32>>,
    Option<Bound<'py, PyArrayDyn<f32>>>,
    Bound<'py, PyArray2<f32>>,
);

/// `gru_backward(x, kernel, recurrent_kernel, has_bias, h0, mask, activation,
/// recurrent_activation, go_backwards, reset_after, outputs, gates, extra, d_outputs, d_h, need_dx,
/// input_masks=None, recurrent_masks=None) -> (dx | None, dkernel, drecurrent_kernel, dbias | None,
/// dh0)`. Overwrites `gates` and `extra`. The masks must be the forward's.
#[pyfunction]
#[pyo3(signature = (x, kernel, recurrent_kernel, has_bias, h0, mask, activation, recurrent_activation, go_backwards, reset_after, outputs, gates, extra, d_outputs, d_h, need_dx, input_masks=None, recurrent_masks=None, continued=None))]
#[allow(clippy::too_many_arguments)]
fn gru_backward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray3<'py, f32>,
    kernel: PyReadonlyArray2<'py, f32>,
    recurrent_kernel: PyReadonlyArray2<'py, f32>,
    has_bias: bool,
    h0: Option<PyReadonlyArray2<'py, f32>>,
    mask: Option<Bound<'py, PyAny>>,
    activation: &str,
    recurrent_activation: &str,
    go_backwards: bool,
    reset_after: bool,
    outputs: PyReadonlyArray3<'py, f32>,
    mut gates: PyReadwriteArray3<'py, f32>,
    mut extra: PyReadwriteArray3<'py, f32>,
    d_outputs: Option<PyReadonlyArray3<'py, f32>>,
    d_h: Option<PyReadonlyArray2<'py, f32>>,
    need_dx: bool,
    input_masks: Option<PyReadonlyArray3<'py, f32>>,
    recurrent_masks: Option<PyReadonlyArray3<'py, f32>>,
    continued: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<GruBwdOut<'py>> {
    const OP: &str = "gru_backward";
    let spec = GruSpec {
        dims: rnn_dims(OP, &x, &kernel, &recurrent_kernel, 3)?,
        activation: cell_activation(OP, activation)?,
        recurrent_activation: cell_activation(OP, recurrent_activation)?,
        go_backwards,
        reset_after,
    };
    let RnnDims { batch: b, steps: t, inputs: f, units: h } = spec.dims;
    check_state(OP, "initial h", &h0, b, h)?;
    check_state(OP, "d_h", &d_h, b, h)?;
    check_masks(OP, 3, spec.dims, &input_masks, &recurrent_masks)?;
    for (name, shape, want) in [
        ("outputs", outputs.shape().to_vec(), [b, t, h]),
        ("gates", gates.shape().to_vec(), [b, t, 3 * h]),
        ("extra", extra.shape().to_vec(), [b, t, h]),
    ] {
        if shape != want {
            return Err(value_error(OP, format!("{name} must have shape {want:?}; received {shape:?}")));
        }
    }
    if let Some(d) = &d_outputs {
        if d.shape() != [b, t, h] {
            return Err(value_error(
                OP,
                format!("d_outputs must have shape ({b}, {t}, {h}); received {:?}", d.shape()),
            ));
        }
    }
    let step_mask = step_mask(OP, &mask, &continued, b, t)?;
    let dx = need_dx.then(|| new3(py, b, t, f));
    let (dk, drk, dh0) = (new2(py, f, 3 * h), new2(py, h, 3 * h), new2(py, b, h));
    let db = has_bias.then(|| super::buffers::pooled(py, numpy::ndarray::IxDyn(&gru_bias_shape(reset_after, h))));
    {
        let p = GruParams {
            x: slice(&x, OP, "x")?,
            kernel: slice(&kernel, OP, "kernel")?,
            recurrent_kernel: slice(&recurrent_kernel, OP, "recurrent_kernel")?,
            bias: None,
            h0: opt(&h0, OP, "initial h")?,
            mask: step_mask.view(),
            masks: masks(OP, &input_masks, &recurrent_masks)?,
        };
        let (d_out, d_hl) = (opt(&d_outputs, OP, "d_outputs")?, opt(&d_h, OP, "d_h")?);
        let outs = slice(&outputs, OP, "outputs")?;
        let gs = slice_mut(&mut gates, OP, "gates")?;
        let es = slice_mut(&mut extra, OP, "extra")?;
        let mut dxw = dx.as_ref().map(|a| a.readwrite());
        let (mut dkw, mut drkw, mut dh0w) = (dk.readwrite(), drk.readwrite(), dh0.readwrite());
        let mut dbw = db.as_ref().map(|a| a.readwrite());
        let grads = GruGrads {
            dx: dxw.as_mut().map(|a| slice_mut(a, OP, "dx")).transpose()?,
            dkernel: slice_mut(&mut dkw, OP, "dkernel")?,
            drecurrent_kernel: slice_mut(&mut drkw, OP, "drecurrent_kernel")?,
            dbias: dbw.as_mut().map(|a| slice_mut(a, OP, "dbias")).transpose()?,
            dh0: slice_mut(&mut dh0w, OP, "dh0")?,
        };
        run_kernel_on(py, OP, b <= 1, || gru::backward(&spec, &p, outs, gs, es, d_out, d_hl, grads))?;
    }
    Ok((dx, dk, drk, db, dh0))
}

type SimpleFwdOut<'py> = (Bound<'py, PyArray3<f32>>, Bound<'py, PyArray2<f32>>, Option<Bound<'py, PyArray3<f32>>>);

/// `simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask, activation, go_backwards,
/// training, input_masks=None, recurrent_masks=None) -> (outputs, h, states | None)`
#[pyfunction]
#[pyo3(signature = (x, kernel, recurrent_kernel, bias, h0, mask, activation, go_backwards, training, input_masks=None, recurrent_masks=None, continued=None))]
#[allow(clippy::too_many_arguments)]
fn simple_rnn_forward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray3<'py, f32>,
    kernel: PyReadonlyArray2<'py, f32>,
    recurrent_kernel: PyReadonlyArray2<'py, f32>,
    bias: Option<PyReadonlyArray1<'py, f32>>,
    h0: Option<PyReadonlyArray2<'py, f32>>,
    mask: Option<Bound<'py, PyAny>>,
    activation: &str,
    go_backwards: bool,
    training: bool,
    input_masks: Option<PyReadonlyArray3<'py, f32>>,
    recurrent_masks: Option<PyReadonlyArray3<'py, f32>>,
    continued: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<SimpleFwdOut<'py>> {
    const OP: &str = "simple_rnn_forward";
    let spec = SimpleRnnSpec {
        dims: rnn_dims(OP, &x, &kernel, &recurrent_kernel, 1)?,
        activation: cell_activation(OP, activation)?,
        go_backwards,
    };
    let RnnDims { batch: b, steps: t, units: h, .. } = spec.dims;
    if let Some(v) = &bias {
        if v.len() != h {
            return Err(value_error(OP, format!("bias must have shape ({h},); received ({},)", v.len())));
        }
    }
    check_state(OP, "initial h", &h0, b, h)?;
    check_masks(OP, 1, spec.dims, &input_masks, &recurrent_masks)?;
    let step_mask = step_mask(OP, &mask, &continued, b, t)?;
    let (out, hl) = (new3(py, b, t, h), new2(py, b, h));
    let states = training.then(|| new3(py, b, t, h));
    {
        let p = SimpleRnnParams {
            x: slice(&x, OP, "x")?,
            kernel: slice(&kernel, OP, "kernel")?,
            recurrent_kernel: slice(&recurrent_kernel, OP, "recurrent_kernel")?,
            bias: opt(&bias, OP, "bias")?,
            h0: opt(&h0, OP, "initial h")?,
            mask: step_mask.view(),
            masks: masks(OP, &input_masks, &recurrent_masks)?,
        };
        let (mut ow, mut hw) = (out.readwrite(), hl.readwrite());
        let mut sw = states.as_ref().map(|a| a.readwrite());
        let (os, hs) = (slice_mut(&mut ow, OP, "out")?, slice_mut(&mut hw, OP, "h")?);
        let ss = sw.as_mut().map(|a| slice_mut(a, OP, "states")).transpose()?;
        run_kernel_on(py, OP, b <= 1, || simple_rnn::forward(&spec, &p, os, hs, ss))?;
    }
    Ok((out, hl, states))
}

type SimpleBwdOut<'py> = (
    Option<Bound<'py, PyArray3<f32>>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray2<f32>>,
    Option<Bound<'py, PyArray1<f32>>>,
    Bound<'py, PyArray2<f32>>,
);

/// `simple_rnn_backward(x, kernel, recurrent_kernel, has_bias, h0, mask, activation,
/// go_backwards, outputs, states, d_outputs, d_h, need_dx, input_masks=None, recurrent_masks=None, continued=None)
/// -> (dx | None, dkernel, drecurrent_kernel, dbias | None, dh0)`. Overwrites `states`.
#[pyfunction]
#[pyo3(signature = (x, kernel, recurrent_kernel, has_bias, h0, mask, activation, go_backwards, outputs, states, d_outputs, d_h, need_dx, input_masks=None, recurrent_masks=None, continued=None))]
#[allow(clippy::too_many_arguments)]
fn simple_rnn_backward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray3<'py, f32>,
    kernel: PyReadonlyArray2<'py, f32>,
    recurrent_kernel: PyReadonlyArray2<'py, f32>,
    has_bias: bool,
    h0: Option<PyReadonlyArray2<'py, f32>>,
    mask: Option<Bound<'py, PyAny>>,
    activation: &str,
    go_backwards: bool,
    outputs: PyReadonlyArray3<'py, f32>,
    mut states: PyReadwriteArray3<'py, f32>,
    d_outputs: Option<PyReadonlyArray3<'py, f32>>,
    d_h: Option<PyReadonlyArray2<'py, f32>>,
    need_dx: bool,
    input_masks: Option<PyReadonlyArray3<'py, f32>>,
    recurrent_masks: Option<PyReadonlyArray3<'py, f32>>,
    continued: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<SimpleBwdOut<'py>> {
    const OP: &str = "simple_rnn_backward";
    let spec = SimpleRnnSpec {
        dims: rnn_dims(OP, &x, &kernel, &recurrent_kernel, 1)?,
        activation: cell_activation(OP, activation)?,
        go_backwards,
    };
    let RnnDims { batch: b, steps: t, inputs: f, units: h } = spec.dims;
    check_state(OP, "initial h", &h0, b, h)?;
    check_state(OP, "d_h", &d_h, b, h)?;
    check_masks(OP, 1, spec.dims, &input_masks, &recurrent_masks)?;
    for (name, shape) in [("outputs", outputs.shape().to_vec()), ("states", states.shape().to_vec())] {
        if shape != [b, t, h] {
            return Err(value_error(OP, format!("{name} must have shape [{b}, {t}, {h}]; received {shape:?}")));
        }
    }
    if let Some(d) = &d_outputs {
        if d.shape() != [b, t, h] {
            return Err(value_error(
                OP,
                format!("d_outputs must have shape ({b}, {t}, {h}); received {:?}", d.shape()),
            ));
        }
    }
    let step_mask = step_mask(OP, &mask, &continued, b, t)?;
    let dx = need_dx.then(|| new3(py, b, t, f));
    let (dk, drk, dh0) = (new2(py, f, h), new2(py, h, h), new2(py, b, h));
    let db = has_bias.then(|| super::buffers::pooled(py, [h]));
    {
        let p = SimpleRnnParams {
            x: slice(&x, OP, "x")?,
            kernel: slice(&kernel, OP, "kernel")?,
            recurrent_kernel: slice(&recurrent_kernel, OP, "recurrent_kernel")?,
            bias: None,
            h0: opt(&h0, OP, "initial h")?,
            mask: step_mask.view(),
            masks: masks(OP, &input_masks, &recurrent_masks)?,
        };
        let (d_out, d_last) = (opt(&d_outputs, OP, "d_outputs")?, opt(&d_h, OP, "d_h")?);
        let outs = slice(&outputs, OP, "outputs")?;
        let ss = slice_mut(&mut states, OP, "states")?;
        let mut dxw = dx.as_ref().map(|a| a.readwrite());
        let (mut dkw, mut drkw, mut dh0w) = (dk.readwrite(), drk.readwrite(), dh0.readwrite());
        let mut dbw = db.as_ref().map(|a| a.readwrite());
        let grads = SimpleRnnGrads {
            dx: dxw.as_mut().map(|a| slice_mut(a, OP, "dx")).transpose()?,
            dkernel: slice_mut(&mut dkw, OP, "dkernel")?,
            drecurrent_kernel: slice_mut(&mut drkw, OP, "drecurrent_kernel")?,
            dbias: dbw.as_mut().map(|a| slice_mut(a, OP, "dbias")).transpose()?,
            dh0: slice_mut(&mut dh0w, OP, "dh0")?,
        };
        run_kernel_on(py, OP, b <= 1, || simple_rnn::backward(&spec, &p, outs, ss, d_out, d_last, grads))?;
    }
    Ok((dx, dk, drk, db, dh0))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(simple_rnn_forward, m)?)?;
    m.add_function(wrap_pyfunction!(simple_rnn_backward, m)?)?;
    m.add_function(wrap_pyfunction!(lstm_forward, m)?)?;
    m.add_function(wrap_pyfunction!(lstm_backward, m)?)?;
    m.add_function(wrap_pyfunction!(gru_forward, m)?)?;
    m.add_function(wrap_pyfunction!(gru_backward, m)?)?;
    Ok(())
}
