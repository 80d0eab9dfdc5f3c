//! Bindings for `kernels::dense`.
use super::errors::{run_kernel_sized, slice, slice_mut, value_error};
use crate::kernels::dense::{self, DenseDims};
use crate::simd::activation::Activation;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// An activation a fused kernel can use: one whose derivative comes from its output.
pub(crate) fn parse_activation(op: &str, name: &str) -> PyResult<Activation> {
    let act = parse_any_activation(op, name)?;
    if act.needs_input() {
        return Err(value_error(
            op,
            format!(
                "activation {name:?} cannot be fused here: its derivative needs the pre-activation, which the \
                 kernel does not keep; use \"linear\" and apply activation_forward / \
                 activation_backward_from_input to the result (expected one of {:?})",
                Activation::NAMES
            ),
        ));
    }
    Ok(act)
}

/// Any activation, aliases included (for the elementwise ops that have the input).
pub(crate) fn parse_any_activation(op: &str, name: &str) -> PyResult<Activation> {
    Activation::parse(name).ok_or_else(|| {
        value_error(
            op,
            format!(
                "unknown activation {name:?}; expected one of {:?} or {:?}",
                Activation::NAMES,
                Activation::INPUT_NAMES
            ),
        )
    })
}

/// Allocates an uninitialized C-contiguous float32 array; the kernel writes every element.
pub(crate) fn new_array2<'py>(py: Python<'py>, rows: usize, cols: usize) -> Bound<'py, PyArray2<f32>> {
    super::buffers::pooled(py, [rows, cols])
}

fn dims(op: &str, x: &PyReadonlyArray2<f32>, kernel: &PyReadonlyArray2<f32>) -> PyResult<DenseDims> {
    let (rows, inputs) = (x.shape()[0], x.shape()[1]);
    let (k_in, units) = (kernel.shape()[0], kernel.shape()[1]);
    if k_in != inputs {
        return Err(value_error(
            op,
            format!("x has {inputs} features per row but kernel expects {k_in} (kernel shape ({k_in}, {units}), x shape ({rows}, {inputs}))"),
        ));
    }
    Ok(DenseDims { rows, inputs, units })
}

/// `dense_forward(x (rows, in), kernel (in, units), bias (units,) | None, activation, out=None)`
#[pyfunction]
#[pyo3(signature = (x, kernel, bias, activation, out=None))]
fn dense_forward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    kernel: PyReadonlyArray2<'py, f32>,
    bias: Option<PyReadonlyArray1<'py, f32>>,
    activation: &str,
    out: Option<Bound<'py, PyArray2<f32>>>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    const OP: &str = "dense_forward";
    let act = parse_activation(OP, activation)?;
    let d = dims(OP, &x, &kernel)?;
    if let Some(b) = &bias {
        if b.len() != d.units {
            return Err(value_error(OP, format!("bias has shape ({},) but kernel has {} units", b.len(), d.units)));
        }
    }
    let out = match out {
        Some(o) => {
            if o.shape() != [d.rows, d.units] {
                return Err(value_error(
                    OP,
                    format!("out has shape {:?}, expected ({}, {})", o.shape(), d.rows, d.units),
                ));
            }
            o
        }
        None => new_array2(py, d.rows, d.units),
    };
    {
        let mut ow = out.try_readwrite().map_err(|e| value_error(OP, format!("`out` cannot be written: {e}")))?;
        let xs = slice(&x, OP, "x")?;
        let ks = slice(&kernel, OP, "kernel")?;
        let bs = match &bias {
            Some(b) => Some(slice(b, OP, "bias")?),
            None => None,
        };
        let os = slice_mut(&mut ow, OP, "out")?;
        run_kernel_sized(py, OP, d.macs(), || dense::forward(d, xs, ks, bs, act, os))?;
    }
    Ok(out)
}

type DenseGrads<'py> =
    (Option<Bound<'py, PyArray2<f32>>>, Bound<'py, PyArray2<f32>>, Option<Bound<'py, PyArray1<f32>>>);

/// `dense_backward(x, kernel, y, dy, activation, need_dx, need_db) -> (dx | None, dkernel, dbias | None)`
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn dense_backward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    kernel: PyReadonlyArray2<'py, f32>,
    y: PyReadonlyArray2<'py, f32>,
    dy: PyReadonlyArray2<'py, f32>,
    activation: &str,
    need_dx: bool,
    need_db: bool,
) -> PyResult<DenseGrads<'py>> {
    const OP: &str = "dense_backward";
    let act = parse_activation(OP, activation)?;
    let d = dims(OP, &x, &kernel)?;
    for (name, a) in [("y", &y), ("dy", &dy)] {
        if a.shape() != [d.rows, d.units] {
            return Err(value_error(
                OP,
                format!("{name} has shape {:?}, expected ({}, {})", a.shape(), d.rows, d.units),
            ));
        }
    }
    let dx = need_dx.then(|| new_array2(py, d.rows, d.inputs));
    let dw = new_array2(py, d.inputs, d.units);
    let db = need_db.then(|| super::buffers::pooled(py, [d.units]));
    {
        let (xs, ks, ys, dys) =
            (slice(&x, OP, "x")?, slice(&kernel, OP, "kernel")?, slice(&y, OP, "y")?, slice(&dy, OP, "dy")?);
        let mut dxw = dx.as_ref().map(|a| a.readwrite());
        let mut dww = dw.readwrite();
        let mut dbw = db.as_ref().map(|a| a.readwrite());
        let dxs = match dxw.as_mut() {
            Some(a) => Some(slice_mut(a, OP, "dx")?),
            None => None,
        };
        let dws = slice_mut(&mut dww, OP, "dkernel")?;
        let dbs = match dbw.as_mut() {
            Some(a) => Some(slice_mut(a, OP, "dbias")?),
            None => None,
        };
        run_kernel_sized(py, OP, d.macs(), || dense::backward(d, xs, ks, ys, dys, act, dxs, dws, dbs))?;
    }
    Ok((dx, dw, db))
}

/// `activation_forward(x (rows, width), name) -> y` (a new array).
#[pyfunction]
fn activation_forward<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    name: &str,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    const OP: &str = "activation";
    let act = parse_any_activation(OP, name)?;
    let (rows, width) = (x.shape()[0], x.shape()[1]);
    let out = new_array2(py, rows, width);
    {
        let xs = slice(&x, OP, "x")?;
        let mut ow = out.readwrite();
        let os = slice_mut(&mut ow, OP, "out")?;
        run_kernel_sized(py, OP, xs.len(), || {
            os.copy_from_slice(xs);
            act.forward_inplace(os, width);
        })?;
    }
    Ok(out)
}

/// `activation_backward(y, dy, name) -> dz`: gradient through the activation, from its output.
#[pyfunction]
fn activation_backward<'py>(
    py: Python<'py>,
    y: PyReadonlyArray2<'py, f32>,
    dy: PyReadonlyArray2<'py, f32>,
    name: &str,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    const OP: &str = "activation_backward";
    let act = parse_activation(OP, name)?;
    if y.shape() != dy.shape() {
        return Err(value_error(OP, format!("y has shape {:?} but dy has shape {:?}", y.shape(), dy.shape())));
    }
    let (rows, width) = (y.shape()[0], y.shape()[1]);
    let out = new_array2(py, rows, width);
    {
        let (ys, dys) = (slice(&y, OP, "y")?, slice(&dy, OP, "dy")?);
        let mut ow = out.readwrite();
        let os = slice_mut(&mut ow, OP, "out")?;
        run_kernel_sized(py, OP, ys.len(), || act.backward(ys, dys, os, width))?;
    }
    Ok(out)
}

/// `activation_backward_from_input(x, dy, name) -> dz`: gradient through the activation, from its
/// input (any activation; the only way for those whose output does not determine their slope).
#[pyfunction]
fn activation_backward_from_input<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    dy: PyReadonlyArray2<'py, f32>,
    name: &str,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    const OP: &str = "activation_backward_from_input";
    let act = parse_any_activation(OP, name)?;
    if x.shape() != dy.shape() {
        return Err(value_error(OP, format!("x has shape {:?} but dy has shape {:?}", x.shape(), dy.shape())));
    }
    let (rows, width) = (x.shape()[0], x.shape()[1]);
    let out = new_array2(py, rows, width);
    {
        let (xs, dys) = (slice(&x, OP, "x")?, slice(&dy, OP, "dy")?);
        let mut ow = out.readwrite();
        let os = slice_mut(&mut ow, OP, "out")?;
        run_kernel_sized(py, OP, xs.len(), || act.backward_from_input(xs, dys, os, width))?;
    }
    Ok(out)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(dense_forward, m)?)?;
    m.add_function(wrap_pyfunction!(dense_backward, m)?)?;
    m.add_function(wrap_pyfunction!(activation_forward, m)?)?;
    m.add_function(wrap_pyfunction!(activation_backward, m)?)?;
    m.add_function(wrap_pyfunction!(activation_backward_from_input, m)?)?;
    Ok(())
}
