"""Argument checking shared by the functional API: one place for the wording of errors.

Every message names the op, what was expected and what was received, and the fix when one is known.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _seqcore

ACTIVATIONS: tuple[str, ...] = tuple(_seqcore.ACTIVATIONS)


def as_f32(a: Any, op: str, name: str) -> np.ndarray:
    """`a` as a C-contiguous float32 array: the input itself when it already is one (no copy),
    else one converted copy (float64, integers, Fortran order, strided views, lists)."""
    if isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous and a.flags.aligned:
        return a
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as e:  # ragged lists and the like
        raise ValueError(f"{op}: `{name}` could not be read as an array ({e}).") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{op}: `{name}` must hold real numbers (float or int); received dtype {arr.dtype}.")
    # np.require keeps 0-d arrays 0-d (ascontiguousarray would make them 1-D) and also fixes
    # alignment, which the kernels' slices need.
    return np.require(arr, dtype=np.float32, requirements=["C", "A"])


def activation_name(activation: Any, op: str) -> str:
    if activation is None:
        return "linear"
    if not isinstance(activation, str):
        raise TypeError(
            f"{op}: activation must be a name (one of {list(ACTIVATIONS)}) or None; "
            f"received {type(activation).__name__}."
        )
    if activation not in ACTIVATIONS:
        raise ValueError(f"{op}: unknown activation {activation!r}; expected one of {list(ACTIVATIONS)}.")
    return activation


def rows_view(a: np.ndarray) -> np.ndarray:
    """(..., n) -> (rows, n) as a view of a C-contiguous array; correct for n == 0 too, where
    ``reshape(-1, 0)`` cannot infer the row count."""
    if a.ndim == 2:
        return a
    lead = int(np.prod(a.shape[:-1], dtype=np.int64)) if a.ndim >= 1 else 1
    return a.reshape(lead, a.shape[-1] if a.ndim >= 1 else 1)


def require_rank(a: np.ndarray, op: str, name: str, min_rank: int, what: str) -> None:
    if a.ndim < min_rank:
        raise ValueError(f"{op}: `{name}` must have rank >= {min_rank} ({what}); received shape {a.shape}.")


def require_shape(a: np.ndarray, expected: tuple[int, ...], op: str, name: str, hint: str = "") -> None:
    if tuple(a.shape) != tuple(expected):
        msg = f"{op}: `{name}` must have shape {tuple(expected)}; received shape {tuple(a.shape)}."
        raise ValueError(msg + (f" {hint}" if hint else ""))
