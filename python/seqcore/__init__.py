"""seqcore: fast, friendly sequence models on the CPU.

Rust SIMD, multithreaded kernels (time-distributed Dense, LSTM, GRU, Conv1D) behind a NumPy API
with no copies. ``seqcore.ops`` is the functional API; ``seqcore.reference`` its float64 oracle.
"""

from __future__ import annotations

import numbers

from . import (
    _malloc,
    callbacks,
    convert,
    initializers,
    layers,
    losses,
    metrics,
    models,
    ops,
    optimizers,
    reference,
    regularizers,
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
from .models import Sequential

_malloc.tune()  # see _malloc.py: keeps training-step arrays in the process instead of re-faulting them

__all__ = [
    "BUILD_PROFILE",
    "Input",
    "Sequential",
    "callbacks",
    "convert",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "regularizers",
    "schedules",
    "utils",
    "__version__",
    "detected_simd_level",
    "get_num_threads",
    "info",
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


def info() -> dict[str, object]:
    """Version, SIMD level in use (and detected), thread count and build profile."""
    return {
        "version": __version__,
        "simd_level": simd_level(),
        "detected_simd_level": detected_simd_level(),
        "num_threads": get_num_threads(),
        "build_profile": BUILD_PROFILE,
        "malloc_tuning": _malloc.tuned,
    }
