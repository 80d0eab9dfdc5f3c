//! Runtime controls: threads and SIMD level.
use crate::simd::{self, Level};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

#[pyfunction]
fn get_num_threads() -> usize {
    crate::threads::get_num_threads()
}

#[pyfunction]
fn set_num_threads(n: i64) -> PyResult<()> {
    if n < 1 {
        return Err(PyValueError::new_err(format!(
            "set_num_threads: the number of threads must be >= 1. Received: n={n}"
        )));
    }
    crate::threads::set_num_threads(n as usize).map_err(PyValueError::new_err)
}

/// Name of the SIMD level in use.
#[pyfunction]
fn simd_level() -> &'static str {
    simd::level().name()
}

#[pyfunction]
fn detected_simd_level() -> &'static str {
    simd::detected_level().name()
}

/// Forces a SIMD level ("portable", "avx2", "avx512"; capped at what the CPU has) or, with None,
/// returns to the detected one. Returns the level now in use.
#[pyfunction]
#[pyo3(signature = (level=None))]
fn _force_simd_level(level: Option<&str>) -> PyResult<&'static str> {
    let lvl = match level {
        None => None,
        Some(s) => Some(Level::parse(s).ok_or_else(|| {
            PyValueError::new_err(format!(
                "SIMD level must be one of 'portable' (alias 'scalar'), 'avx2', 'avx512'. Received: {s:?}"
            ))
        })?),
    };
    Ok(simd::set_forced_level(lvl).name())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(detected_simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(_force_simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(super::errors::_debug_panic, m)?)?;
    Ok(())
}
