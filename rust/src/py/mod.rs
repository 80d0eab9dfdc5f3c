//! PyO3 bindings: borrow NumPy arrays, release the GIL, call one kernel, hand back arrays.
//! One file per kernel file; argument policy and friendly messages live in `python/seqcore/ops.py`,
//! these wrappers re-check only what memory safety needs (so `_seqcore` can't be crashed directly).
use pyo3::prelude::*;

mod attention;
mod buffers;
mod conv;
mod dense;
mod errors;
mod norm;
mod rnn;
mod runtime;
mod stream;
mod training;

#[pymodule]
fn _seqcore(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("BUILD_PROFILE", if cfg!(debug_assertions) { "debug" } else { "release" })?;
    use crate::simd::activation::Activation;
    m.add("ACTIVATIONS", Activation::NAMES.to_vec())?;
    m.add("INPUT_ACTIVATIONS", Activation::INPUT_NAMES.to_vec())?;
    m.add("ACTIVATION_ALIASES", Activation::ALIASES.iter().copied().collect::<std::collections::HashMap<_, _>>())?;
    runtime::register(m)?;
    m.add_class::<buffers::PooledBuffer>()?;
    m.add_function(wrap_pyfunction!(buffers::release_memory, m)?)?;
    m.add_function(wrap_pyfunction!(buffers::cached_bytes, m)?)?;
    dense::register(m)?;
    training::register(m)?;
    rnn::register(m)?;
    conv::register(m)?;
    norm::register(m)?;
    attention::register(m)?;
    stream::register(m)?;
    m.add("ATTENTION_SAVE_PROBS_MAX_KEYS", crate::kernels::attention::SAVE_PROBS_MAX_KEYS)?;
    Ok(())
}
