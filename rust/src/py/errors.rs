//! The single place where Rust failures become Python exceptions.
use numpy::{Element, PyReadonlyArray, PyReadwriteArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub(crate) fn value_error(op: &str, msg: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{op}: {msg}"))
}

/// Work below this many multiply–adds (or elements, for elementwise kernels) runs on the calling
/// thread: the hand-off to the pool and back costs ~10-50 µs of wake-ups (measured: a 64×8×32
/// Dense forward took 45 µs through the pool), more than such work takes on one core. Small layers
/// of a larger model (a Dense head, the loss, the optimizer step of a small model) are the usual case.
pub(crate) const INLINE_WORK: usize = 1 << 15;

/// [`run_kernel_on`], on the calling thread when `work` (multiply–adds or elements) is below
/// [`INLINE_WORK`].
pub(crate) fn run_kernel_sized<R: Send>(
    py: Python<'_>,
    op: &str,
    work: usize,
    f: impl FnOnce() -> R + Send,
) -> PyResult<R> {
    run_kernel_on(py, op, work < INLINE_WORK, f)
}

/// Runs a kernel with the GIL released, inside the seqcore thread pool. A panic (always a bug:
/// inputs are validated first) becomes a `RuntimeError` naming the op, never a `PanicException`.
pub(crate) fn run_kernel<R: Send>(py: Python<'_>, op: &str, f: impl FnOnce() -> R + Send) -> PyResult<R> {
    run_kernel_on(py, op, false, f)
}

/// [`run_kernel`], optionally `inline` on the calling thread (see `threads::run`).
pub(crate) fn run_kernel_on<R: Send>(
    py: Python<'_>,
    op: &str,
    inline: bool,
    f: impl FnOnce() -> R + Send,
) -> PyResult<R> {
    py.detach(|| catch_unwind(AssertUnwindSafe(|| crate::threads::run(inline, f)))).map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        PyRuntimeError::new_err(format!(
            "{op}: internal error in the seqcore kernel ({msg}). This is a bug in seqcore; please report it with the shapes you used."
        ))
    })
}

/// The data of a C-contiguous array, or a ValueError naming the op and argument.
pub(crate) fn slice<'a, T: Element, D: numpy::ndarray::Dimension>(
    a: &'a PyReadonlyArray<'_, T, D>,
    op: &str,
    arg: &str,
) -> PyResult<&'a [T]> {
    // as_slice alone also accepts Fortran order, whose memory is not the row-major data we read.
    if !a.is_c_contiguous() {
        return Err(value_error(op, format!("`{arg}` must be C-contiguous (seqcore.ops converts it for you)")));
    }
    a.as_slice().map_err(|_| value_error(op, format!("`{arg}` must be C-contiguous (seqcore.ops converts it for you)")))
}

pub(crate) fn slice_mut<'a, T: Element, D: numpy::ndarray::Dimension>(
    a: &'a mut PyReadwriteArray<'_, T, D>,
    op: &str,
    arg: &str,
) -> PyResult<&'a mut [T]> {
    if !a.is_c_contiguous() {
        return Err(value_error(op, format!("`{arg}` must be a C-contiguous float32 array")));
    }
    a.as_slice_mut().map_err(|_| value_error(op, format!("`{arg}` must be a C-contiguous float32 array")))
}

/// `_debug_panic()`: raises a Rust panic inside a kernel call, for the test that proves panics
/// surface as ordinary exceptions.
#[pyfunction]
pub(crate) fn _debug_panic(py: Python<'_>) -> PyResult<()> {
    run_kernel(py, "_debug_panic", || {
        use rayon::prelude::*;
        // Panic on a pool worker, not the calling thread: rayon must carry it back to us.
        (0..4).into_par_iter().for_each(|i| {
            if i == 3 {
                panic!("deliberate panic for testing");
            }
        });
    })
}
