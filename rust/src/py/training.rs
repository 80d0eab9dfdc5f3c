//! Bindings for `kernels::loss` and `kernels::optim`.
use super::errors::{run_kernel_sized, slice, slice_mut, value_error};
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
    let grad = super::buffers::pooled(py, numpy::ndarray::IxDyn(pred.shape()));
    let l = {
        let (ps, ts) = (slice(&pred, OP, "pred")?, slice(&target, OP, "target")?);
        let mut gw = grad.readwrite();
        let gs = slice_mut(&mut gw, OP, "grad")?;
        run_kernel_sized(py, OP, 2 * ps.len(), || loss::mse(ps, ts, gs))? // 2x: one chunk of `loss::mse` inline
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
    run_kernel_sized(py, OP, ps.len(), || optim::sgd(ps, gs, lr))
}

fn check_same(op: &str, what: &str, a: &[usize], b: &[usize]) -> PyResult<()> {
    if a != b {
        return Err(value_error(op, format!("{what} has shape {b:?} but its parameter has shape {a:?}")));
    }
    Ok(())
}

/// `sgd_momentum_update(params, grads, velocities, lr, momentum, nesterov)`: one step over every
/// parameter array at once, in place.
#[pyfunction]
fn sgd_momentum_update(
    py: Python<'_>,
    mut params: Vec<PyReadwriteArrayDyn<'_, f32>>,
    grads: Vec<PyReadonlyArrayDyn<'_, f32>>,
    mut velocities: Vec<PyReadwriteArrayDyn<'_, f32>>,
    lr: f32,
    momentum: f32,
    nesterov: bool,
) -> PyResult<()> {
    const OP: &str = "sgd_momentum_update";
    if params.len() != grads.len() || params.len() != velocities.len() {
        return Err(value_error(OP, "params, grads and velocities must be lists of the same length"));
    }
    for i in 0..params.len() {
        check_same(OP, "a gradient", params[i].shape(), grads[i].shape())?;
        check_same(OP, "a velocity", params[i].shape(), velocities[i].shape())?;
    }
    let gs = grads.iter().map(|g| slice(g, OP, "grad")).collect::<PyResult<Vec<_>>>()?;
    let mut jobs = Vec::new();
    for ((p, v), g) in params.iter_mut().zip(velocities.iter_mut()).zip(gs) {
        jobs.push((slice_mut(p, OP, "param")?, g, slice_mut(v, OP, "velocity")?));
    }
    let work = jobs.iter().map(|j| j.0.len()).sum();
    run_kernel_sized(py, OP, work, || optim::sgd_momentum(jobs, lr, momentum, nesterov))
}

/// `adam_update(params, grads, ms, vs, lr, beta_1, beta_2, epsilon, t, weight_decay)`: one Adam(W)
/// step over every parameter array at once, in place (Keras 3's formula).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn adam_update(
    py: Python<'_>,
    mut params: Vec<PyReadwriteArrayDyn<'_, f32>>,
    grads: Vec<PyReadonlyArrayDyn<'_, f32>>,
    mut ms: Vec<PyReadwriteArrayDyn<'_, f32>>,
    mut vs: Vec<PyReadwriteArrayDyn<'_, f32>>,
    lr: f32,
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    t: u64,
    weight_decay: f32,
) -> PyResult<()> {
    const OP: &str = "adam_update";
    if params.len() != grads.len() || params.len() != ms.len() || params.len() != vs.len() {
        return Err(value_error(OP, "params, grads, ms and vs must be lists of the same length"));
    }
    for i in 0..params.len() {
        check_same(OP, "a gradient", params[i].shape(), grads[i].shape())?;
        check_same(OP, "a first moment", params[i].shape(), ms[i].shape())?;
        check_same(OP, "a second moment", params[i].shape(), vs[i].shape())?;
    }
    let gs = grads.iter().map(|g| slice(g, OP, "grad")).collect::<PyResult<Vec<_>>>()?;
    let mut jobs = Vec::new();
    for (((p, m), v), g) in params.iter_mut().zip(ms.iter_mut()).zip(vs.iter_mut()).zip(gs) {
        jobs.push((slice_mut(p, OP, "param")?, g, slice_mut(m, OP, "m")?, slice_mut(v, OP, "v")?));
    }
    let step = optim::AdamStep { lr, beta_1, beta_2, epsilon, t, weight_decay };
    let work = jobs.iter().map(|j| j.0.len()).sum();
    run_kernel_sized(py, OP, work, || optim::adam(jobs, step))
}

/// `rmsprop_update(params, grads, velocities, averages | None, momentums | None, lr, rho, epsilon,
/// momentum)`: one Keras RMSprop step over every parameter array at once, in place.
#[pyfunction]
#[pyo3(signature = (params, grads, velocities, averages, momentums, lr, rho, epsilon, momentum))]
#[allow(clippy::too_many_arguments)]
fn rmsprop_update(
    py: Python<'_>,
    mut params: Vec<PyReadwriteArrayDyn<'_, f32>>,
    grads: Vec<PyReadonlyArrayDyn<'_, f32>>,
    mut velocities: Vec<PyReadwriteArrayDyn<'_, f32>>,
    averages: Option<Vec<PyReadwriteArrayDyn<'_, f32>>>,
    momentums: Option<Vec<PyReadwriteArrayDyn<'_, f32>>>,
    lr: f32,
    rho: f32,
    epsilon: f32,
    momentum: f32,
) -> PyResult<()> {
    const OP: &str = "rmsprop_update";
    let n = params.len();
    let (mut averages, mut momentums) = (averages.unwrap_or_default(), momentums.unwrap_or_default());
    if grads.len() != n
        || velocities.len() != n
        || !(averages.is_empty() || averages.len() == n)
        || !(momentums.is_empty() || momentums.len() == n)
    {
        return Err(value_error(OP, "the parameter and state lists must have the same length"));
    }
    for i in 0..n {
        check_same(OP, "a gradient", params[i].shape(), grads[i].shape())?;
        check_same(OP, "a velocity", params[i].shape(), velocities[i].shape())?;
        if let Some(a) = averages.get(i) {
            check_same(OP, "an average gradient", params[i].shape(), a.shape())?;
        }
        if let Some(m) = momentums.get(i) {
            check_same(OP, "a momentum", params[i].shape(), m.shape())?;
        }
    }
    let gs = grads.iter().map(|g| slice(g, OP, "grad")).collect::<PyResult<Vec<_>>>()?;
    let mut a_it = averages.iter_mut();
    let mut m_it = momentums.iter_mut();
    let mut jobs = Vec::new();
    for ((p, v), g) in params.iter_mut().zip(velocities.iter_mut()).zip(gs) {
        let a: &mut [f32] = match a_it.next() {
            Some(a) => slice_mut(a, OP, "average")?,
            None => &mut [],
        };
        let m: &mut [f32] = match m_it.next() {
            Some(m) => slice_mut(m, OP, "momentum")?,
            None => &mut [],
        };
        jobs.push((slice_mut(p, OP, "param")?, g, slice_mut(v, OP, "velocity")?, a, m));
    }
    let work = jobs.iter().map(|j| j.0.len()).sum();
    run_kernel_sized(py, OP, work, || optim::rmsprop(jobs, lr, rho, epsilon, momentum))
}

/// `adagrad_update(params, grads, accumulators, lr, epsilon)`: one Keras Adagrad step, in place.
#[pyfunction]
fn adagrad_update(
    py: Python<'_>,
    mut params: Vec<PyReadwriteArrayDyn<'_, f32>>,
    grads: Vec<PyReadonlyArrayDyn<'_, f32>>,
    mut accumulators: Vec<PyReadwriteArrayDyn<'_, f32>>,
    lr: f32,
    epsilon: f32,
) -> PyResult<()> {
    const OP: &str = "adagrad_update";
    if params.len() != grads.len() || params.len() != accumulators.len() {
        return Err(value_error(OP, "params, grads and accumulators must be lists of the same length"));
    }
    for i in 0..params.len() {
        check_same(OP, "a gradient", params[i].shape(), grads[i].shape())?;
        check_same(OP, "an accumulator", params[i].shape(), accumulators[i].shape())?;
    }
    let gs = grads.iter().map(|g| slice(g, OP, "grad")).collect::<PyResult<Vec<_>>>()?;
    let mut jobs = Vec::new();
    for ((p, a), g) in params.iter_mut().zip(accumulators.iter_mut()).zip(gs) {
        jobs.push((slice_mut(p, OP, "param")?, g, slice_mut(a, OP, "accumulator")?));
    }
    let work = jobs.iter().map(|j| j.0.len()).sum();
    run_kernel_sized(py, OP, work, || optim::adagrad(jobs, lr, epsilon))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(rmsprop_update, m)?)?;
    m.add_function(wrap_pyfunction!(adagrad_update, m)?)?;
    m.add_function(wrap_pyfunction!(mse, m)?)?;
    m.add_function(wrap_pyfunction!(sgd_update, m)?)?;
    m.add_function(wrap_pyfunction!(sgd_momentum_update, m)?)?;
    m.add_function(wrap_pyfunction!(adam_update, m)?)?;
    Ok(())
}
