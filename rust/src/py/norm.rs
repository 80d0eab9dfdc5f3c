//! Bindings for `kernels::norm`: row normalization (LayerNormalization, RMSNormalization) and
//! column normalization (BatchNormalization). Shapes are re-checked here for memory safety; the
//! layers in `python/seqcore/layers/normalization.py` give the friendly errors.
use super::errors::{run_kernel_sized, slice, slice_mut, value_error};
use super::rnn::lengths_vec;
use crate::kernels::norm::{self, RowNormSpec, RowWeights};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

type Arr1<'py> = Bound<'py, PyArray1<f32>>;
type Arr2<'py> = Bound<'py, PyArray2<f32>>;

fn check_vec(op: &str, name: &str, v: &Option<PyReadonlyArray1<f32>>, n: usize) -> PyResult<()> {
    match v {
        Some(a) if a.len() != n => {
            Err(value_error(op, format!("{name} has shape ({},) but the normalized axis has size {n}", a.len())))
        }
        _ => Ok(()),
    }
}

fn opt<'a>(v: &'a Option<PyReadonlyArray1<f32>>, op: &str, name: &str) -> PyResult<Option<&'a [f32]>> {
    v.as_ref().map(|a| slice(a, op, name)).transpose()
}

/// `row_norm_forward(x (rows, cols), gamma | None, beta | None, epsilon, center_stats, center_out)
/// -> (y, mean (rows,), rstd (rows,))`
#[pyfunction]
fn row_norm_forward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    gamma: Option<PyReadonlyArray1<'py, f32>>,
    beta: Option<PyReadonlyArray1<'py, f32>>,
    epsilon: f32,
    center_stats: bool,
    center_out: bool,
) -> PyResult<(Arr2<'py>, Arr1<'py>, Arr1<'py>)> {
    const OP: &str = "row_norm_forward";
    let (rows, cols) = (x.shape()[0], x.shape()[1]);
    check_vec(OP, "gamma", &gamma, cols)?;
    check_vec(OP, "beta", &beta, cols)?;
    let spec = RowNormSpec { rows, cols, epsilon, center_stats, center_out };
    let (y, mean, rstd) =
        (super::buffers::pooled(py, [rows, cols]), PyArray1::zeros(py, rows, false), PyArray1::zeros(py, rows, false));
    {
        let (xs, gs, bs) = (slice(&x, OP, "x")?, opt(&gamma, OP, "gamma")?, opt(&beta, OP, "beta")?);
        let (mut yw, mut mw, mut rw) = (y.readwrite(), mean.readwrite(), rstd.readwrite());
        let (ys, ms, rs) =
            (slice_mut(&mut yw, OP, "y")?, slice_mut(&mut mw, OP, "mean")?, slice_mut(&mut rw, OP, "rstd")?);
        run_kernel_sized(py, OP, xs.len(), || norm::row_forward(spec, xs, gs, bs, ys, ms, rs))?;
    }
    Ok((y, mean, rstd))
}

type Grads<'py> = (Option<Arr2<'py>>, Option<Arr1<'py>>, Option<Arr1<'py>>);

/// `row_norm_backward(x, dy, gamma | None, mean, rstd, center_stats, center_out, need_dx,
/// need_dgamma, need_dbeta) -> (dx | None, dgamma | None, dbeta | None)`
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn row_norm_backward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    dy: PyReadonlyArray2<'py, f32>,
    gamma: Option<PyReadonlyArray1<'py, f32>>,
    mean: PyReadonlyArray1<'py, f32>,
    rstd: PyReadonlyArray1<'py, f32>,
    center_stats: bool,
    center_out: bool,
    need_dx: bool,
    need_dgamma: bool,
    need_dbeta: bool,
) -> PyResult<Grads<'py>> {
    const OP: &str = "row_norm_backward";
    let (rows, cols) = (x.shape()[0], x.shape()[1]);
    if dy.shape() != x.shape() {
        return Err(value_error(OP, format!("dy has shape {:?} but x has shape {:?}", dy.shape(), x.shape())));
    }
    if mean.len() != rows || rstd.len() != rows {
        return Err(value_error(OP, format!("mean and rstd must have shape ({rows},)")));
    }
    check_vec(OP, "gamma", &gamma, cols)?;
    let spec = RowNormSpec { rows, cols, epsilon: 0.0, center_stats, center_out };
    let dx = need_dx.then(|| super::buffers::pooled(py, [rows, cols]));
    let dg = need_dgamma.then(|| PyArray1::zeros(py, cols, false));
    let db = need_dbeta.then(|| PyArray1::zeros(py, cols, false));
    {
        let (xs, dys, gs) = (slice(&x, OP, "x")?, slice(&dy, OP, "dy")?, opt(&gamma, OP, "gamma")?);
        let (ms, rs) = (slice(&mean, OP, "mean")?, slice(&rstd, OP, "rstd")?);
        let mut dxw = dx.as_ref().map(|a| a.readwrite());
        let mut dgw = dg.as_ref().map(|a| a.readwrite());
        let mut dbw = db.as_ref().map(|a| a.readwrite());
        let dxs = dxw.as_mut().map(|a| slice_mut(a, OP, "dx")).transpose()?;
        let dgs = dgw.as_mut().map(|a| slice_mut(a, OP, "dgamma")).transpose()?;
        let dbs = dbw.as_mut().map(|a| slice_mut(a, OP, "dbeta")).transpose()?;
        run_kernel_sized(py, OP, 2 * xs.len(), || norm::row_backward(spec, xs, dys, gs, ms, rs, dxs, dgs, dbs))?;
    }
    Ok((dx, dg, db))
}

/// The rows a statistic counts, owned: all, per-sequence lengths, or one flag per row.
enum RowMask {
    All,
    Lengths(Vec<usize>),
    Rows(Vec<u8>),
}

fn weights(mask: &RowMask, steps: usize) -> RowWeights<'_> {
    match mask {
        RowMask::Lengths(l) => RowWeights::Lengths { lengths: l, steps },
        RowMask::Rows(f) => RowWeights::Rows(f),
        RowMask::All => RowWeights::All,
    }
}

/// `mask`: None, lengths `(B,)` int64, or a boolean `(B, steps)` mask, for `rows = B·steps` rows.
fn row_mask(op: &str, mask: &Option<Bound<PyAny>>, rows: usize, steps: usize) -> PyResult<RowMask> {
    let Some(m) = mask else { return Ok(RowMask::All) };
    if steps == 0 || !rows.is_multiple_of(steps) {
        return Err(value_error(op, format!("{rows} rows are not whole sequences of {steps} steps")));
    }
    if let Ok(l) = m.extract::<PyReadonlyArray1<i64>>() {
        return Ok(lengths_vec(op, &Some(l), rows / steps, steps)?.map_or(RowMask::All, RowMask::Lengths));
    }
    let Ok(a) = m.extract::<PyReadonlyArray2<bool>>() else {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{op}: mask must be per-sequence lengths (a 1-D int64 array) or a boolean (batch, steps) array"
        )));
    };
    if a.shape() != [rows / steps, steps] {
        return Err(value_error(
            op,
            format!("mask must have shape ({}, {steps}); received {:?}", rows / steps, a.shape()),
        ));
    }
    Ok(RowMask::Rows(a.as_array().iter().map(|&v| v as u8).collect()))
}

/// `batch_norm_moments(x (rows, channels), mask | None, steps) -> (mean, variance, denom)`:
/// the batch statistics, masked steps excluded when `mask` (lengths per sequence of `steps` rows, or
/// a boolean `(sequences, steps)` mask) is given.
#[pyfunction]
fn batch_norm_moments<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    mask: Option<Bound<'py, PyAny>>,
    steps: usize,
) -> PyResult<(Arr1<'py>, Arr1<'py>, f32)> {
    const OP: &str = "batch_norm_moments";
    let (rows, cols) = (x.shape()[0], x.shape()[1]);
    let lens = row_mask(OP, &mask, rows, steps)?;
    let (mean, var) = (PyArray1::zeros(py, cols, false), PyArray1::zeros(py, cols, false));
    let denom = {
        let xs = slice(&x, OP, "x")?;
        let (mut mw, mut vw) = (mean.readwrite(), var.readwrite());
        let (ms, vs) = (slice_mut(&mut mw, OP, "mean")?, slice_mut(&mut vw, OP, "variance")?);
        let w = weights(&lens, steps);
        run_kernel_sized(py, OP, xs.len(), || norm::column_moments(xs, rows, cols, w, ms, vs))?
    };
    Ok((mean, var, denom))
}

/// `batch_norm_forward(x, mean, variance, gamma | None, beta | None, epsilon) -> (y, rstd)`
#[pyfunction]
fn batch_norm_forward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    mean: PyReadonlyArray1<'py, f32>,
    variance: PyReadonlyArray1<'py, f32>,
    gamma: Option<PyReadonlyArray1<'py, f32>>,
    beta: Option<PyReadonlyArray1<'py, f32>>,
    epsilon: f32,
) -> PyResult<(Arr2<'py>, Arr1<'py>)> {
    const OP: &str = "batch_norm_forward";
    let (rows, cols) = (x.shape()[0], x.shape()[1]);
    for (name, v) in [("mean", &mean), ("variance", &variance)] {
        if v.len() != cols {
            return Err(value_error(OP, format!("{name} has shape ({},) but x has {cols} channels", v.len())));
        }
    }
    check_vec(OP, "gamma", &gamma, cols)?;
    check_vec(OP, "beta", &beta, cols)?;
    let (y, rstd) = (super::buffers::pooled(py, [rows, cols]), PyArray1::zeros(py, cols, false));
    {
        let (xs, ms, vs) = (slice(&x, OP, "x")?, slice(&mean, OP, "mean")?, slice(&variance, OP, "variance")?);
        let (gs, bs) = (opt(&gamma, OP, "gamma")?, opt(&beta, OP, "beta")?);
        let (mut yw, mut rw) = (y.readwrite(), rstd.readwrite());
        let (ys, rs) = (slice_mut(&mut yw, OP, "y")?, slice_mut(&mut rw, OP, "rstd")?);
        run_kernel_sized(py, OP, xs.len(), || norm::column_normalize(xs, rows, cols, ms, vs, gs, bs, epsilon, ys, rs))?;
    }
    Ok((y, rstd))
}

/// `batch_norm_backward(x, dy, mean, rstd, gamma | None, training, mask | None, steps, denom,
/// need_dx, need_dgamma, need_dbeta) -> (dx | None, dgamma | None, dbeta | None)`
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn batch_norm_backward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    dy: PyReadonlyArray2<'py, f32>,
    mean: PyReadonlyArray1<'py, f32>,
    rstd: PyReadonlyArray1<'py, f32>,
    gamma: Option<PyReadonlyArray1<'py, f32>>,
    training: bool,
    mask: Option<Bound<'py, PyAny>>,
    steps: usize,
    denom: f32,
    need_dx: bool,
    need_dgamma: bool,
    need_dbeta: bool,
) -> PyResult<Grads<'py>> {
    const OP: &str = "batch_norm_backward";
    let (rows, cols) = (x.shape()[0], x.shape()[1]);
    if dy.shape() != x.shape() {
        return Err(value_error(OP, format!("dy has shape {:?} but x has shape {:?}", dy.shape(), x.shape())));
    }
    if mean.len() != cols || rstd.len() != cols {
        return Err(value_error(OP, format!("mean and rstd must have shape ({cols},)")));
    }
    check_vec(OP, "gamma", &gamma, cols)?;
    let lens = row_mask(OP, &mask, rows, steps)?;
    let dx = need_dx.then(|| super::buffers::pooled(py, [rows, cols]));
    let dg = need_dgamma.then(|| PyArray1::zeros(py, cols, false));
    let db = need_dbeta.then(|| PyArray1::zeros(py, cols, false));
    {
        let (xs, dys, gs) = (slice(&x, OP, "x")?, slice(&dy, OP, "dy")?, opt(&gamma, OP, "gamma")?);
        let (ms, rs) = (slice(&mean, OP, "mean")?, slice(&rstd, OP, "rstd")?);
        let mut dxw = dx.as_ref().map(|a| a.readwrite());
        let mut dgw = dg.as_ref().map(|a| a.readwrite());
        let mut dbw = db.as_ref().map(|a| a.readwrite());
        let dxs = dxw.as_mut().map(|a| slice_mut(a, OP, "dx")).transpose()?;
        let dgs = dgw.as_mut().map(|a| slice_mut(a, OP, "dgamma")).transpose()?;
        let dbs = dbw.as_mut().map(|a| slice_mut(a, OP, "dbeta")).transpose()?;
        let w = weights(&lens, steps);
        run_kernel_sized(py, OP, 2 * xs.len(), || {
            norm::column_backward(xs, dys, rows, cols, ms, rs, gs, training, w, denom, dxs, dgs, dbs)
        })?;
    }
    Ok((dx, dg, db))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(row_norm_forward, m)?)?;
    m.add_function(wrap_pyfunction!(row_norm_backward, m)?)?;
    m.add_function(wrap_pyfunction!(batch_norm_moments, m)?)?;
    m.add_function(wrap_pyfunction!(batch_norm_forward, m)?)?;
    m.add_function(wrap_pyfunction!(batch_norm_backward, m)?)?;
    Ok(())
}
