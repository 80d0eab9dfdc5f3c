//! Bindings for `kernels::loss` and `kernels::optim`.
use super::errors::{run_kernel, slice, slice_mut, value_error};
use crate::kernels::{loss, optim};
use numpy::{PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// `mse(pred, target) -> (loss, grad)` with `grad = ∂loss/∂pred`, same shape as pred.
#[pyfunction]
fn mse<'py>(
    py: Python<'py>,
    pred: PyReadonlyArrayDyn<'py, f32>,
    target: PyReadonlyArrayDyn<'py, f32>,
) -> PyResult<(f64, Bound<'py, PyArrayDyn<f32>>)> {
    const OP: &str = "mse";
    if pred.shape() != target.shape() {
        return Err(value_error(
            OP,
            format!("pred has shape {:?} but target has shape {:?}", pred.shape(), target.shape()),
        ));
    }
    // SAFETY: float32, fully written by the kernel.
    let grad = unsafe { PyArrayDyn::<f32>::new(py, pred.shape(), false) };
    let l = {
        let (ps, ts) = (slice(&pred, OP, "pred")?, slice(&target, OP, "target")?);
        let mut gw = grad.readwrite();
        let gs = slice_mut(&mut gw, OP, "grad")?;
        run_kernel(py, OP, || loss::mse(ps, ts, gs))?
    };
    Ok((l, grad))
}

/// `sgd_update(param, grad, lr)`: `param -= lr * grad`, in place.
#[pyfunction]
fn sgd_update(
    py: Python<'_>,
    mut param: PyReadwriteArrayDyn<'_, f32>,
    grad: PyReadonlyArrayDyn<'_, f32>,
    lr: f32,
) -> PyResult<()> {
    const OP: &str = "sgd_update";
    if param.shape() != grad.shape() {
        return Err(value_error(
            OP,
            format!("param has shape {:?} but grad has shape {:?}", param.shape(), grad.shape()),
        ));
    }
    let gs = slice(&grad, OP, "grad")?;
    let ps = slice_mut(&mut param, OP, "param")?;
    run_kernel(py, OP, || optim::sgd(ps, gs, lr))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(mse, m)?)?;
    m.add_function(wrap_pyfunction!(sgd_update, m)?)?;
    Ok(())
}
