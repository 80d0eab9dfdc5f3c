//! Bindings for `kernels::conv1d` and `kernels::pool`.
use super::dense::parse_activation;
use super::errors::{run_kernel_on, slice, slice_mut, value_error, INLINE_WORK};
use super::rnn::{new2, new3};
use crate::kernels::conv1d::{self, Conv1dSpec, Padding};
use crate::kernels::pool::{self, GlobalDims, Pool1dSpec};
use numpy::{PyArray1, PyArray2, PyArray3, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3};
use numpy::{PyReadonlyArray, PyUntypedArrayMethods};
use pyo3::prelude::*;

fn parse_padding(op: &str, name: &str, pooling: bool) -> PyResult<Padding> {
    match Padding::parse(name) {
        Some(Padding::Causal) if pooling => {
            Err(value_error(op, "padding must be \"valid\" or \"same\" for pooling; received \"causal\""))
        }
        Some(p) => Ok(p),
        None => Err(value_error(
            op,
            format!(
                "unknown padding {name:?}; expected {}",
                if pooling { "\"valid\" or \"same\"" } else { "\"valid\", \"same\" or \"causal\"" }
            ),
        )),
    }
}

fn shape3<D: numpy::ndarray::Dimension>(a: &PyReadonlyArray<'_, f32, D>) -> (usize, usize, usize) {
    let s = a.shape();
    (s[0], s[1], s[2])
}

fn check_shape(op: &str, name: &str, got: &[usize], want: &[usize]) -> PyResult<()> {
    if got != want {
        return Err(value_error(op, format!("{name} has shape {got:?}, expected {want:?}")));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn conv_spec(
    op: &str,
    x: &PyReadonlyArray3<f32>,
    kernel: &PyReadonlyArray3<f32>,
    strides: usize,
    padding: &str,
    dilation_rate: usize,
    groups: usize,
) -> PyResult<Conv1dSpec> {
    let (b, l, c) = shape3(x);
    let (k, kc, f) = shape3(kernel);
    let sp = Conv1dSpec {
        batch: b,
        steps: l,
        in_channels: c,
        filters: f,
        kernel_size: k,
        stride: strides,
        dilation: dilation_rate,
        groups,
        padding: parse_padding(op, padding, false)?,
    };
    // Sizes and divisibility first (a zero would make the channel check below meaningless).
    if k == 0 || strides == 0 || dilation_rate == 0 || groups == 0 {
        sp.check().map_err(|e| value_error(op, e))?;
    }
    if kc * groups != c {
        return Err(value_error(
            op,
            format!(
                "kernel has shape ({k}, {kc}, {f}) but x has {c} channels (shape ({b}, {l}, {c})) and groups={groups}; the kernel must be (kernel_size, channels/groups, filters)"
            ),
        ));
    }
    sp.check().map_err(|e| value_error(op, e))?;
    Ok(sp)
}

/// `conv1d_forward(x (B, L, C), kernel (K, C/groups, F), bias (F,) | None, strides, padding,
/// dilation_rate, groups, activation) -> y (B, L_out, F)`
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn conv1d_forward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray3<'py, f32>,
    kernel: PyReadonlyArray3<'py, f32>,
    bias: Option<PyReadonlyArray1<'py, f32>>,
    strides: usize,
    padding: &str,
    dilation_rate: usize,
    groups: usize,
    activation: &str,
) -> PyResult<Bound<'py, PyArray3<f32>>> {
    const OP: &str = "conv1d_forward";
    let act = parse_activation(OP, activation)?;
    let sp = conv_spec(OP, &x, &kernel, strides, padding, dilation_rate, groups)?;
    if let Some(b) = &bias {
        check_shape(OP, "bias", b.shape(), &[sp.filters])?;
    }
    let out = new3(py, sp.batch, sp.out_steps(), sp.filters);
    {
        let (xs, ks) = (slice(&x, OP, "x")?, slice(&kernel, OP, "kernel")?);
        let bs = bias.as_ref().map(|b| slice(b, OP, "bias")).transpose()?;
        let mut ow = out.readwrite();
        let os = slice_mut(&mut ow, OP, "out")?;
        run_kernel_on(py, OP, sp.macs() < INLINE_WORK, || conv1d::forward(&sp, xs, ks, bs, act, os))?;
    }
    Ok(out)
}

type ConvGrads<'py> = (Option<Bound<'py, PyArray3<f32>>>, Bound<'py, PyArray3<f32>>, Option<Bound<'py, PyArray1<f32>>>);

/// `conv1d_backward(x, kernel, y, dy, strides, padding, dilation_rate, groups, activation, need_dx,
/// need_db) -> (dx | None, dkernel, dbias | None)`
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn conv1d_backward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray3<'py, f32>,
    kernel: PyReadonlyArray3<'py, f32>,
    y: PyReadonlyArray3<'py, f32>,
    dy: PyReadonlyArray3<'py, f32>,
    strides: usize,
    padding: &str,
    dilation_rate: usize,
    groups: usize,
    activation: &str,
    need_dx: bool,
    need_db: bool,
) -> PyResult<ConvGrads<'py>> {
    const OP: &str = "conv1d_backward";
    let act = parse_activation(OP, activation)?;
    let sp = conv_spec(OP, &x, &kernel, strides, padding, dilation_rate, groups)?;
    let out_shape = [sp.batch, sp.out_steps(), sp.filters];
    check_shape(OP, "y", y.shape(), &out_shape)?;
    check_shape(OP, "dy", dy.shape(), &out_shape)?;
    let dx = need_dx.then(|| new3(py, sp.batch, sp.steps, sp.in_channels));
    let (k, kc, f) = shape3(&kernel);
    let dk = new3(py, k, kc, f);
    let db = need_db.then(|| super::buffers::pooled(py, [f]));
    {
        let (xs, ks, ys, dys) =
            (slice(&x, OP, "x")?, slice(&kernel, OP, "kernel")?, slice(&y, OP, "y")?, slice(&dy, OP, "dy")?);
        let mut dxw = dx.as_ref().map(|a| a.readwrite());
        let mut dkw = dk.readwrite();
        let mut dbw = db.as_ref().map(|a| a.readwrite());
        let dxs = dxw.as_mut().map(|a| slice_mut(a, OP, "dx")).transpose()?;
        let dks = slice_mut(&mut dkw, OP, "dkernel")?;
        let dbs = dbw.as_mut().map(|a| slice_mut(a, OP, "dbias")).transpose()?;
        run_kernel_on(py, OP, sp.macs() < INLINE_WORK, || conv1d::backward(&sp, xs, ks, ys, dys, act, dxs, dks, dbs))?;
    }
    Ok((dx, dk, db))
}

fn pool_spec(
    op: &str,
    x: (usize, usize, usize),
    pool_size: usize,
    strides: usize,
    padding: &str,
) -> PyResult<Pool1dSpec> {
    let sp = Pool1dSpec {
        batch: x.0,
        steps: x.1,
        channels: x.2,
        pool_size,
        stride: strides,
        padding: parse_padding(op, padding, true)?,
    };
    sp.check().map_err(|e| value_error(op, e))?;
    Ok(sp)
}

/// `max_pool1d_forward(x (B, L, C), pool_size, strides, padding) -> y (B, L_out, C)`; with
/// `average=True` the average pool instead.
#[pyfunction]
#[pyo3(signature = (x, pool_size, strides, padding, average))]
fn pool1d_forward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray3<'py, f32>,
    pool_size: usize,
    strides: usize,
    padding: &str,
    average: bool,
) -> PyResult<Bound<'py, PyArray3<f32>>> {
    let op = if average { "avg_pool1d_forward" } else { "max_pool1d_forward" };
    let sp = pool_spec(op, shape3(&x), pool_size, strides, padding)?;
    let out = new3(py, sp.batch, sp.out_steps(), sp.channels);
    {
        let xs = slice(&x, op, "x")?;
        let mut ow = out.readwrite();
        let os = slice_mut(&mut ow, op, "out")?;
        run_kernel_on(py, op, xs.len() < INLINE_WORK, || {
            if average {
                pool::avg_forward(&sp, xs, os)
            } else {
                pool::max_forward(&sp, xs, os)
            }
        })?;
    }
    Ok(out)
}

/// `max_pool1d_backward(x (B, L, C), dy (B, L_out, C), pool_size, strides, padding) -> dx`
#[pyfunction]
fn max_pool1d_backward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray3<'py, f32>,
    dy: PyReadonlyArray3<'py, f32>,
    pool_size: usize,
    strides: usize,
    padding: &str,
) -> PyResult<Bound<'py, PyArray3<f32>>> {
    const OP: &str = "max_pool1d_backward";
    let sp = pool_spec(OP, shape3(&x), pool_size, strides, padding)?;
    check_shape(OP, "dy", dy.shape(), &[sp.batch, sp.out_steps(), sp.channels])?;
    let dx = new3(py, sp.batch, sp.steps, sp.channels);
    {
        let (xs, dys) = (slice(&x, OP, "x")?, slice(&dy, OP, "dy")?);
        let mut dw = dx.readwrite();
        let dxs = slice_mut(&mut dw, OP, "dx")?;
        run_kernel_on(py, OP, xs.len() < INLINE_WORK, || pool::max_backward(&sp, xs, dys, dxs))?;
    }
    Ok(dx)
}

/// `avg_pool1d_backward(dy (B, L_out, C), steps, pool_size, strides, padding) -> dx (B, steps, C)`
#[pyfunction]
fn avg_pool1d_backward<'py>(
    py: Python<'py>,
    dy: PyReadonlyArray3<'py, f32>,
    steps: usize,
    pool_size: usize,
    strides: usize,
    padding: &str,
) -> PyResult<Bound<'py, PyArray3<f32>>> {
    const OP: &str = "avg_pool1d_backward";
    let (b, _, c) = shape3(&dy);
    let sp = pool_spec(OP, (b, steps, c), pool_size, strides, padding)?;
    check_shape(OP, "dy", dy.shape(), &[b, sp.out_steps(), c])?;
    let dx = new3(py, b, steps, c);
    {
        let dys = slice(&dy, OP, "dy")?;
        let mut dw = dx.readwrite();
        let dxs = slice_mut(&mut dw, OP, "dx")?;
        run_kernel_on(py, OP, dxs.len() < INLINE_WORK, || pool::avg_backward(&sp, dys, dxs))?;
    }
    Ok(dx)
}

fn global_dims(op: &str, shape: (usize, usize, usize)) -> PyResult<GlobalDims> {
    let (batch, steps, channels) = shape;
    if steps == 0 {
        return Err(value_error(
            op,
            format!("x has 0 steps (shape ({batch}, 0, {channels})); pooling over no steps is undefined"),
        ));
    }
    Ok(GlobalDims { batch, steps, channels })
}

/// `global_pool1d_forward(x (B, L, C), average) -> y (B, C)`
#[pyfunction]
fn global_pool1d_forward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray3<'py, f32>,
    average: bool,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let op = if average { "global_avg_pool1d_forward" } else { "global_max_pool1d_forward" };
    let d = global_dims(op, shape3(&x))?;
    let out = new2(py, d.batch, d.channels);
    {
        let xs = slice(&x, op, "x")?;
        let mut ow = out.readwrite();
        let os = slice_mut(&mut ow, op, "out")?;
        run_kernel_on(py, op, xs.len() < INLINE_WORK, || {
            if average {
                pool::global_avg_forward(d, xs, os)
            } else {
                pool::global_max_forward(d, xs, os)
            }
        })?;
    }
    Ok(out)
}

/// `global_max_pool1d_backward(x (B, L, C), dy (B, C)) -> dx`
#[pyfunction]
fn global_max_pool1d_backward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray3<'py, f32>,
    dy: PyReadonlyArray2<'py, f32>,
) -> PyResult<Bound<'py, PyArray3<f32>>> {
    const OP: &str = "global_max_pool1d_backward";
    let d = global_dims(OP, shape3(&x))?;
    check_shape(OP, "dy", dy.shape(), &[d.batch, d.channels])?;
    let dx = new3(py, d.batch, d.steps, d.channels);
    {
        let (xs, dys) = (slice(&x, OP, "x")?, slice(&dy, OP, "dy")?);
        let mut dw = dx.readwrite();
        let dxs = slice_mut(&mut dw, OP, "dx")?;
        run_kernel_on(py, OP, xs.len() < INLINE_WORK, || pool::global_max_backward(d, xs, dys, dxs))?;
    }
    Ok(dx)
}

/// `global_avg_pool1d_backward(dy (B, C), steps) -> dx (B, steps, C)`
#[pyfunction]
fn global_avg_pool1d_backward<'py>(
    py: Python<'py>,
    dy: PyReadonlyArray2<'py, f32>,
    steps: usize,
) -> PyResult<Bound<'py, PyArray3<f32>>> {
    const OP: &str = "global_avg_pool1d_backward";
    let (b, c) = (dy.shape()[0], dy.shape()[1]);
    let d = global_dims(OP, (b, steps, c))?;
    let dx = new3(py, b, steps, c);
    {
        let dys = slice(&dy, OP, "dy")?;
        let mut dw = dx.readwrite();
        let dxs = slice_mut(&mut dw, OP, "dx")?;
        run_kernel_on(py, OP, dxs.len() < INLINE_WORK, || pool::global_avg_backward(d, dys, dxs))?;
    }
    Ok(dx)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(conv1d_forward, m)?)?;
    m.add_function(wrap_pyfunction!(conv1d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(pool1d_forward, m)?)?;
    m.add_function(wrap_pyfunction!(max_pool1d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(avg_pool1d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(global_pool1d_forward, m)?)?;
    m.add_function(wrap_pyfunction!(global_max_pool1d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(global_avg_pool1d_backward, m)?)?;
    Ok(())
}
