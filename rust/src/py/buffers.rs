//! Output arrays backed by the buffer pool (`crate::pool`): handed to NumPy without a copy, and
//! returned to the pool when NumPy frees the array (the pyclass below is the array's base object).
use numpy::ndarray::{ArrayViewMut, Dimension, IntoDimension};
use numpy::PyArray;
use pyo3::prelude::*;

/// Owns a pooled buffer for as long as a NumPy array views it.
#[pyclass(module = "seqcore._seqcore", frozen)]
pub(crate) struct PooledBuffer {
    data: std::sync::Mutex<Vec<f32>>,
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        let v = std::mem::take(self.data.get_mut().unwrap_or_else(|e| e.into_inner()));
        crate::pool::give(v);
    }
}

/// A C-contiguous float32 array of `dims` whose memory comes from the pool. Its contents are
/// unspecified: the kernel that fills it writes every element.
pub(crate) fn pooled<'py, D: Dimension, I: IntoDimension<Dim = D>>(
    py: Python<'py>,
    dims: I,
) -> Bound<'py, PyArray<f32, D>> {
    let dims = dims.into_dimension();
    let mut v = crate::pool::take(dims.size());
    let ptr = v.as_mut_ptr();
    // SAFETY: `ptr` points at `dims.size()` initialized floats owned by `v`, which moves (without
    // reallocating: only the Vec header moves) into `owner`; `owner` becomes the array's base
    // object, so the memory outlives the array.
    let view = unsafe { ArrayViewMut::from_shape_ptr(dims, ptr) };
    let owner = Bound::new(py, PooledBuffer { data: std::sync::Mutex::new(v) }).expect("allocating a buffer owner");
    unsafe { PyArray::borrow_from_array(&view, owner.into_any()) }
}

/// `release_memory()`: frees the buffers seqcore keeps for reuse.
#[pyfunction]
pub(crate) fn release_memory() {
    crate::pool::clear();
}

/// `cached_bytes()`: bytes of buffers kept for reuse.
#[pyfunction]
pub(crate) fn cached_bytes() -> usize {
    crate::pool::cached_bytes()
}
