//! Bindings for `kernels::conv1d` and `kernels::pool`. (Being written.)
use pyo3::prelude::*;

pub(crate) fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
