"""seqcore: fast, friendly sequence models on the CPU.

Rust SIMD, multithreaded kernels (time-distributed Dense, LSTM, GRU, Conv1D) behind a NumPy API
with no copies. ``seqcore.kernels`` is the kernel API (``seqcore.reference`` its float64 oracle);
``seqcore.ops`` the Keras-style array ops; ``seqcore.Model`` and ``seqcore.Input`` the Functional API.
"""

from __future__ import annotations

import numbers

from . import (
    _malloc,
    _seqcore,
    backend,
    callbacks,
    config,
    constraints,
    convert,
    datasets,
    initializers,
    interop,
    kernels,
    layers,
    losses,
    metrics,
    models,
    ops,
    optimizers,
    reference,
    regularizers,
    saving,
    utils,
)
from ._seqcore import (
    BUILD_PROFILE,
    __version__,
    detected_simd_level,
    get_num_threads,
    simd_level,
)
from ._seqcore import set_num_threads as _set_num_threads
from .layers import Input
from .models import Functional, Model, Sequential
from .remat import RematScope
from .saving import load_model, save_model

_malloc.tune()  # only with SEQCORE_MALLOC_TUNING=1; see _malloc.py

__all__ = [
    "BUILD_PROFILE",
    "Input",
    "Functional",
    "Model",
    "RematScope",
    "Sequential",
    "backend",
    "callbacks",
    "config",
    "constraints",
    "convert",
    "datasets",
    "initializers",
    "interop",
    "kernels",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "regularizers",
    "saving",
    "load_model",
    "save_model",
    "schedules",
    "utils",
    "__version__",
    "detected_simd_level",
    "get_num_threads",
    "info",
    "release_memory",
    "tune_malloc",
    "ops",
    "reference",
    "set_num_threads",
    "simd_level",
]


def set_num_threads(n: int) -> None:
    """Number of threads the kernels use (default: ``SEQCORE_NUM_THREADS`` or all cores)."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"set_num_threads: n must be an int >= 1; received {n!r}.")
    _set_num_threads(int(n))


def tune_malloc() -> bool:
    """Opt in to glibc malloc tuning for the whole process (see ``seqcore/_malloc.py``): large freed
    arrays stay in the process instead of being page-faulted back every training step. Speeds up
    NumPy and PyTorch code in the same process too; the resident set stays at its peak."""
    return _malloc.tune(force=True)


def release_memory() -> None:
    """Frees the buffers seqcore keeps for reuse between calls."""
    _seqcore.release_memory()


def info() -> dict[str, object]:
    """Version, SIMD level in use (and detected), thread count and build profile."""
    return {
        "version": __version__,
        "simd_level": simd_level(),
        "detected_simd_level": detected_simd_level(),
        "num_threads": get_num_threads(),
        "build_profile": BUILD_PROFILE,
        "malloc_tuning": _malloc.tuned,
        "cached_buffer_bytes": _seqcore.cached_bytes(),
    }
