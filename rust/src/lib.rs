//! seqcore: fused, SIMD, multithreaded CPU kernels for sequence models.
//!
//! Layers (see ARCHITECTURE in the repository):
//! - [`kernels`]: pure math on slices, forward and backward of one op per file. No Python.
//! - [`linalg`]: the only caller of GEMM.
//! - [`simd`]: activations and elementwise loops with run-time dispatch (AVX-512 / AVX2+FMA / portable).
//! - [`threads`]: the resizable, fork-safe thread pool every kernel runs in.
//! - `py` (feature `python`): thin PyO3 bindings, one file per kernel file.
pub mod kernels;
pub mod linalg;
pub mod pool;
pub mod simd;
pub mod threads;
pub mod workspace;

#[cfg(feature = "python")]
mod py;
