//! `StreamPlan`: a stateful chain of layers run one step at a time (`kernels::stream`), for
//! `seqcore.streaming`. Built once from the layers; every call reads the layers' current weights
//! (`layer.kernel.value`, ...) and updates their `states` arrays in place, so training, weight
//! assignment, `reset_states()` and `set_states()` on the layers are all seen by the next step.
//! The step runs on the calling thread (no hand-off to the pool: the work is microseconds), into
//! buffers the plan keeps; the only allocation is the returned array.
//!
//! The GIL is held for the whole step, unlike every other kernel: the step is a few microseconds,
//! and holding it is what makes the model's weights lock cheap here. The step first checks that no
//! optimizer update holds or waits for the lock (`WeightsLock._writing`, `_waiting`); a writer
//! needs the GIL to take the lock, so none can start before the step ends. When one is active,
//! `run` returns None and the caller takes the general, locked path.
use super::dense::parse_activation;
use super::errors::{slice, slice_mut, value_error};
use super::rnn::cell_activation;
use crate::kernels::stream::{self, Cell, CellWeights};
use crate::simd::activation::Activation;
use numpy::{PyArray2, PyArrayDyn, PyArrayMethods, PyReadonlyArray3, PyReadwriteArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::panic::{catch_unwind, AssertUnwindSafe};

enum Op {
    Recurrent { cell: Cell, activation: Activation, recurrent_activation: Activation, units: usize, layer: Py<PyAny> },
    Dense { activation: Activation, units: usize, layer: Py<PyAny> },
    Activation(Activation),
}

#[pyclass(module = "seqcore._seqcore")]
pub struct StreamPlan {
    ops: Vec<Op>,
    batch: usize,
    features: usize,
    out_shape: Vec<usize>,
    bufs: [Vec<f32>; 2],
    scratch: Vec<f32>,
    zeros: Vec<f32>,
}

const OP: &str = "StreamPlan";

/// `layer.<name>.value` as a float32 array, or None when `layer.<name>` is None.
fn weight<'py>(
    layer: &Bound<'py, PyAny>,
    name: &Bound<'py, pyo3::types::PyString>,
) -> PyResult<Option<Bound<'py, PyArrayDyn<f32>>>> {
    let var = layer.getattr(name)?;
    if var.is_none() {
        return Ok(None);
    }
    let value = var.getattr(intern!(layer.py(), "value"))?;
    let arr = value.cast_into::<PyArrayDyn<f32>>().map_err(|_| {
        PyTypeError::new_err(format!("{OP}: the weight `{name}` of a streamed layer must be a float32 array"))
    })?;
    Ok(Some(arr))
}

/// A weight's data, read without registering a NumPy borrow (about a third of a step's overhead
/// with five weights). Sound because the GIL is held for the whole step and no optimizer update is
/// running or can start (`run` checked the weights lock, and taking it needs the GIL): the only
/// writers of a weight are those updates and Python code, which needs the GIL.
fn view<'a>(a: &'a Bound<'_, PyArrayDyn<f32>>, name: &str) -> PyResult<&'a [f32]> {
    if !a.is_c_contiguous() {
        return Err(value_error(OP, format!("the weight `{name}` must be C-contiguous")));
    }
    // SAFETY: see above; the array outlives the returned slice (it borrows `a`).
    unsafe { a.as_slice() }.map_err(|_| value_error(OP, format!("the weight `{name}` must be C-contiguous")))
}

/// The layer's state arrays `(batch, units)`, made (zeros) and set on the layer when it has none.
fn states<'py>(
    layer: &Bound<'py, PyAny>,
    n: usize,
    batch: usize,
    units: usize,
) -> PyResult<Vec<Bound<'py, PyArray2<f32>>>> {
    let py = layer.py();
    let current = layer.getattr(intern!(py, "states"))?;
    if current.is_none() {
        let made: Vec<Bound<'py, PyArray2<f32>>> = (0..n).map(|_| PyArray2::zeros(py, [batch, units], false)).collect();
        layer.setattr(intern!(py, "states"), PyList::new(py, &made)?)?;
        return Ok(made);
    }
    let list: Vec<Bound<'py, PyAny>> = current.extract()?;
    if list.len() != n {
        return Err(value_error(OP, format!("a layer's states must be {n} arrays; received {}", list.len())));
    }
    list.into_iter()
        .map(|s| {
            let a = s.cast_into::<PyArray2<f32>>().map_err(|_| {
                PyTypeError::new_err(format!("{OP}: a layer's states must be float32 (batch, units) arrays"))
            })?;
            if a.shape() != [batch, units] {
                return Err(value_error(
                    OP,
                    format!(
                        "a stateful layer carries the state of {:?}, but this plan steps a batch of {batch} with {units} units; call reset_states() first",
                        a.shape()
                    ),
                ));
            }
            Ok(a)
        })
        .collect()
}

#[pymethods]
impl StreamPlan {
    /// `StreamPlan(ops, batch, features, out_shape)`: `ops` a list of `(kind, layer, units,
    /// activation, recurrent_activation)` with kind one of `lstm`, `gru` (reset_after),
    /// `gru_before` (reset_after=False), `simple_rnn`, `dense`, `activation`.
    #[new]
    fn new(
        ops: Vec<(String, Py<PyAny>, usize, String, String)>,
        batch: usize,
        features: usize,
        out_shape: Vec<usize>,
    ) -> PyResult<Self> {
        let mut plan = Vec::with_capacity(ops.len());
        let (mut width, mut widest, mut scratch) = (features, features, 0usize);
        for (kind, layer, units, act, rec) in ops {
            let cell = match kind.as_str() {
                "lstm" => Some(Cell::Lstm),
                "gru" => Some(Cell::Gru { reset_after: true }),
                "gru_before" => Some(Cell::Gru { reset_after: false }),
                "simple_rnn" => Some(Cell::SimpleRnn),
                "dense" | "activation" => None,
                other => return Err(value_error(OP, format!("unknown op kind {other:?}"))),
            };
            match (cell, kind.as_str()) {
                (Some(cell), _) => {
                    let (activation, recurrent_activation) = (cell_activation(OP, &act)?, cell_activation(OP, &rec)?);
                    scratch = scratch.max(cell.scratch(units));
                    plan.push(Op::Recurrent { cell, activation, recurrent_activation, units, layer });
                    width = units;
                }
                (None, "dense") => {
                    plan.push(Op::Dense { activation: parse_activation(OP, &act)?, units, layer });
                    width = units;
                }
                _ => plan.push(Op::Activation(parse_activation(OP, &act)?)),
            }
            widest = widest.max(width);
        }
        if out_shape.iter().product::<usize>() != batch * width {
            return Err(value_error(OP, format!("out_shape {out_shape:?} does not hold ({batch}, {width})")));
        }
        let n = batch * widest;
        Ok(StreamPlan {
            ops: plan,
            batch,
            features,
            out_shape,
            bufs: [vec![0.0; n], vec![0.0; n]],
            scratch: vec![0.0; scratch],
            zeros: vec![0.0; 2 * widest.max(1) * 4],
        })
    }

    /// One step: `x (batch, 1, features)` float32, C-contiguous; returns the chain's output, or
    /// None (nothing done) when `lock`, the model's `WeightsLock`, has a writer active or waiting.
    #[pyo3(signature = (x, lock=None))]
    fn run<'py>(
        &mut self,
        py: Python<'py>,
        x: PyReadonlyArray3<'py, f32>,
        lock: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyArrayDyn<f32>>>> {
        if let Some(lock) = &lock {
            if lock.getattr(intern!(py, "_writing"))?.is_truthy()?
                || lock.getattr(intern!(py, "_waiting"))?.is_truthy()?
            {
                return Ok(None);
            }
        }
        let want = [self.batch, 1, self.features];
        if x.shape() != want {
            return Err(value_error(OP, format!("x must have shape {want:?}; received {:?}", x.shape())));
        }
        let (b, mut width) = (self.batch, self.features);
        self.bufs[0][..b * width].copy_from_slice(slice(&x, OP, "x")?);
        let mut cur = 0;
        for op in &self.ops {
            let (src, dst) = if cur == 0 {
                let (a, o) = self.bufs.split_at_mut(1);
                (&mut a[0], &mut o[0])
            } else {
                let (o, a) = self.bufs.split_at_mut(1);
                (&mut a[0], &mut o[0])
            };
            match op {
                Op::Recurrent { cell, activation, recurrent_activation, units, layer } => {
                    let layer = layer.bind(py);
                    let (k, r) =
                        (weight(layer, intern!(py, "kernel"))?, weight(layer, intern!(py, "recurrent_kernel"))?);
                    let (Some(k), Some(r)) = (k, r) else {
                        return Err(value_error(OP, "a streamed recurrent layer must be built"));
                    };
                    let bias = weight(layer, intern!(py, "bias"))?;
                    let n_states = if *cell == Cell::Lstm { 2 } else { 1 };
                    let st = states(layer, n_states, b, *units)?;
                    let mut rw: Vec<PyReadwriteArray2<f32>> = st.iter().map(|a| a.readwrite()).collect();
                    let (ks, rs) = (view(&k, "kernel")?, view(&r, "recurrent_kernel")?);
                    let bs = bias.as_ref().map(|v| view(v, "bias")).transpose()?;
                    let gw = cell.gates() * units;
                    let want_bias = if matches!(cell, Cell::Gru { reset_after: true }) { 2 * gw } else { gw };
                    if ks.len() != width * gw || rs.len() != units * gw || bs.is_some_and(|v| v.len() != want_bias) {
                        return Err(value_error(OP, "a streamed layer's weights do not match its input and units"));
                    }
                    let (hs, cs) = match rw.as_mut_slice() {
                        [h] => (slice_mut(h, OP, "h")?, None),
                        [h, c] => (slice_mut(h, OP, "h")?, Some(slice_mut(c, OP, "c")?)),
                        _ => unreachable!("one or two states"),
                    };
                    let w = CellWeights { kernel: ks, recurrent: rs, bias: bs };
                    let (zeros, scratch) = (&self.zeros, &mut self.scratch);
                    let xin = &src[..b * width];
                    let (cell, act, rec, u) = (*cell, *activation, *recurrent_activation, *units);
                    held(|| stream::recurrent_step(cell, act, rec, u, w, xin, hs, cs, zeros, scratch))?;
                    dst[..b * u].copy_from_slice(slice_mut(&mut rw[0], OP, "h")?);
                    width = u;
                }
                Op::Dense { activation, units, layer } => {
                    let layer = layer.bind(py);
                    let Some(k) = weight(layer, intern!(py, "kernel"))? else {
                        return Err(value_error(OP, "a streamed Dense layer must be built"));
                    };
                    let bias = weight(layer, intern!(py, "bias"))?;
                    let ks = view(&k, "kernel")?;
                    let bs = bias.as_ref().map(|v| view(v, "bias")).transpose()?;
                    if ks.len() != width * units || bs.is_some_and(|v| v.len() != *units) {
                        return Err(value_error(OP, "a streamed Dense layer's weights do not match its input"));
                    }
                    let (xin, y) = (&src[..b * width], &mut dst[..b * units]);
                    let (act, u) = (*activation, *units);
                    held(|| stream::dense_step(xin, ks, bs, act, u, y))?;
                    width = u;
                }
                Op::Activation(act) => {
                    let a = *act;
                    let (xin, y) = (&src[..b * width], &mut dst[..b * width]);
                    y.copy_from_slice(xin);
                    if width > 0 {
                        a.forward_inplace(y, width);
                    }
                }
            }
            cur = 1 - cur;
        }
        let out = PyArrayDyn::<f32>::zeros(py, self.out_shape.as_slice(), false);
        {
            let mut w = out.readwrite();
            slice_mut(&mut w, OP, "out")?.copy_from_slice(&self.bufs[cur][..b * width]);
        }
        Ok(Some(out))
    }
}

/// Runs a step's kernel on this thread with the GIL held (see the module doc), a panic becoming a
/// RuntimeError as in every other kernel.
fn held<R: Send>(f: impl FnOnce() -> R + Send) -> PyResult<R> {
    catch_unwind(AssertUnwindSafe(|| crate::threads::run(true, f))).map_err(|_| {
        PyRuntimeError::new_err(format!(
            "{OP}: internal error in the seqcore kernel. This is a bug in seqcore; please report it with the shapes you used."
        ))
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<StreamPlan>()
}
