"""Argument checking shared by the functional API: one place for the wording of errors.

Every message names the op, what was expected and what was received, and the fix when one is known.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _seqcore

# The activations the kernels fuse (derivative from the output) ...
ACTIVATIONS: tuple[str, ...] = tuple(_seqcore.ACTIVATIONS)
# ... the ones whose derivative needs the input (gelu, silu, mish, hard_silu: never fused) ...
INPUT_ACTIVATIONS: tuple[str, ...] = tuple(_seqcore.INPUT_ACTIVATIONS)
ALL_ACTIVATIONS: tuple[str, ...] = ACTIVATIONS + INPUT_ACTIVATIONS
# ... and Keras's other names for some of them (swish = silu, hard_swish = hard_silu).
ACTIVATION_ALIASES: dict[str, str] = dict(_seqcore.ACTIVATION_ALIASES)


def not_fusable(op: str, name: str, allowed: tuple[str, ...]) -> str:
    """The message for an input-needing activation passed to a kernel that keeps only its output."""
    return (
        f"{op}: activation {name!r} cannot be fused here: its derivative needs the pre-activation, which the "
        f"kernel does not keep (it keeps only the output). Use activation='linear' and apply kernels.activation(z, "
        f"{name!r}) to the result (backward: kernels.activation_backward_from_input(z, dy, {name!r})); the layers "
        f"Dense and Conv1D do this for you. Fused activations: {list(allowed)}."
    )


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


def activation_name(activation: Any, op: str, allowed: tuple[str, ...] = ACTIVATIONS) -> str:
    """The canonical name (aliases resolved) of an activation argument that must be in `allowed`."""
    if activation is None:
        return "linear"
    if not isinstance(activation, str):
        raise TypeError(
            f"{op}: activation must be a name (one of {list(allowed)}) or None; received {type(activation).__name__}."
        )
    name = ACTIVATION_ALIASES.get(activation, activation)
    if name not in allowed:
        if name in INPUT_ACTIVATIONS:
            raise ValueError(not_fusable(op, activation, allowed))
        raise ValueError(f"{op}: unknown activation {activation!r}; expected one of {list(allowed)}.")
    return name


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
