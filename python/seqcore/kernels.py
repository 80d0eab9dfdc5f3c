"""Typed functional API over the Rust kernels.

Each op validates its arguments once (shapes, dtypes, names) with messages that name the op and both
shapes, converts what is not already C-contiguous float32 (that input is used in place, never
copied), and calls one kernel with the GIL released. Results are new NumPy arrays that the kernel
wrote directly (no copy on the way back).

Shapes follow Keras: a Dense kernel is ``(in_features, units)``; leading axes of ``x`` (batch, time,
...) are folded into rows, so ``dense_forward`` on ``(batch, time, features)`` is Keras's
``Dense`` / ``TimeDistributed(Dense)`` on a sequence.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import _seqcore
from ._conv import *  # noqa: F403  (Conv1D and pooling ops)
from ._conv import __all__ as _conv_all
from ._recurrent import (
    GRUGrads,
    GRUResult,
    LSTMGrads,
    LSTMResult,
    RecurrentTape,
    SimpleRNNGrads,
    SimpleRNNResult,
    gru_backward,
    gru_forward,
    lstm_backward,
    lstm_forward,
    simple_rnn_backward,
    simple_rnn_forward,
)
from ._validation import (
    ACTIVATION_ALIASES,
    ACTIVATIONS,
    ALL_ACTIVATIONS,
    INPUT_ACTIVATIONS,
    activation_name,
    as_f32,
    require_rank,
    require_shape,
    rows_view,
)

__all__ = [
    "DenseGrads",
    "GRUGrads",
    "GRUResult",
    "LSTMGrads",
    "LSTMResult",
    "RecurrentTape",
    "SimpleRNNGrads",
    "SimpleRNNResult",
    "simple_rnn_backward",
    "simple_rnn_forward",
    "gru_backward",
    "gru_forward",
    "lstm_backward",
    "lstm_forward",
    "activation",
    "activation_backward",
    "activation_backward_from_input",
    "dense_backward",
    "dense_forward",
    "mse",
    "sgd_update",
    *_conv_all,
]


def _dense_kernel(x: np.ndarray, kernel: Any, op: str) -> np.ndarray:
    k = as_f32(kernel, op, "kernel")
    if k.ndim != 2:
        raise ValueError(f"{op}: `kernel` must be 2-D (in_features, units); received shape {k.shape}.")
    if k.shape[0] != x.shape[-1]:
        raise ValueError(
            f"{op}: kernel of shape {k.shape} expects {k.shape[0]} features on the last axis of x, "
            f"but x has shape {x.shape} ({x.shape[-1]} features). A Dense kernel is (in_features, units); "
            f"if you hold a PyTorch weight (units, in_features), pass its transpose."
        )
    return k


def dense_forward(
    x: Any,
    kernel: Any,
    bias: Any | None = None,
    activation: str | None = "linear",
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``activation(x @ kernel + bias)`` over the last axis of ``x`` (rank >= 2).

    x: ``(..., in_features)``; kernel: ``(in_features, units)``; bias: ``(units,)`` or None.
    Returns ``(..., units)``. ``out``, if given, must be a C-contiguous float32 array of that shape
    that does not overlap the inputs; it is written in place and returned.
    """
    op = "dense_forward"
    act = activation_name(activation, op)
    xa = as_f32(x, op, "x")
    require_rank(xa, op, "x", 2, "(batch, ..., features)")
    k = _dense_kernel(xa, kernel, op)
    units = k.shape[1]
    b = None
    if bias is not None:
        b = as_f32(bias, op, "bias")
        require_shape(b, (units,), op, "bias", f"(one value per unit of the kernel {k.shape})")
    out_shape = xa.shape[:-1] + (units,)
    out2 = None
    if out is not None:
        if not isinstance(out, np.ndarray) or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise TypeError(f"{op}: `out` must be a C-contiguous float32 numpy array.")
        require_shape(out, out_shape, op, "out")
        if not out.flags.writeable:
            raise ValueError(f"{op}: `out` is read-only.")
        if any(np.shares_memory(out, a) for a in (xa, k) + ((b,) if b is not None else ())):
            raise ValueError(f"{op}: `out` overlaps an input; pass a separate array.")
        out2 = rows_view(out)
    y = _seqcore.dense_forward(rows_view(xa), k, b, act, out2)
    return out if out is not None else y.reshape(out_shape)


class DenseGrads(NamedTuple):
    """Gradients of :func:`dense_forward` (``dx``/``dbias`` are None when not requested)."""

    dx: np.ndarray | None
    dkernel: np.ndarray
    dbias: np.ndarray | None


def dense_backward(
    x: Any,
    kernel: Any,
    y: Any,
    dy: Any,
    activation: str | None = "linear",
    *,
    need_dx: bool = True,
    use_bias: bool = True,
) -> DenseGrads:
    """Gradients of ``y = activation(x @ kernel + bias)`` given ``dy = dL/dy``.

    ``y`` is the forward output (the activation's derivative is taken from it). Returns
    ``DenseGrads(dx (like x), dkernel (like kernel), dbias (units,))``; ``dkernel`` and ``dbias`` sum
    over every row (batch and time): the weights are shared across steps.
    """
    op = "dense_backward"
    act = activation_name(activation, op)
    xa = as_f32(x, op, "x")
    require_rank(xa, op, "x", 2, "(batch, ..., features)")
    k = _dense_kernel(xa, kernel, op)
    out_shape = xa.shape[:-1] + (k.shape[1],)
    ya = as_f32(y, op, "y")
    require_shape(ya, out_shape, op, "y", "(the output of dense_forward for this x)")
    dya = as_f32(dy, op, "dy")
    require_shape(dya, out_shape, op, "dy", "(the gradient of the loss by y; no broadcasting)")
    dx, dk, db = _seqcore.dense_backward(
        rows_view(xa), k, rows_view(ya), rows_view(dya), act, bool(need_dx), bool(use_bias)
    )
    return DenseGrads(dx.reshape(xa.shape) if dx is not None else None, dk, db)


def activation(x: Any, name: str | None) -> np.ndarray:
    """Applies a Keras activation elementwise (softmax: over the last axis). Returns a new array.
    Any activation, including those fused kernels refuse (gelu, silu/swish, mish, hard_silu/hard_swish)."""
    op = "activation"
    act = activation_name(name, op, ALL_ACTIVATIONS)
    xa = as_f32(x, op, "x")
    return _seqcore.activation_forward(rows_view(xa), act).reshape(xa.shape)


def activation_backward(y: Any, dy: Any, name: str | None) -> np.ndarray:
    """``dL/dz`` for ``y = activation(z)``, from the output ``y`` and ``dy = dL/dy``."""
    op = "activation_backward"
    if isinstance(name, str) and ACTIVATION_ALIASES.get(name, name) in INPUT_ACTIVATIONS:
        raise ValueError(
            f"{op}: {name!r}'s derivative cannot be taken from its output (the function is not monotonic, so "
            f"y does not determine x); use kernels.activation_backward_from_input(x, dy, {name!r}) with the input x. "
            f"From the output: {list(ACTIVATIONS)}."
        )
    act = activation_name(name, op)
    ya = as_f32(y, op, "y")
    dya = as_f32(dy, op, "dy")
    require_shape(dya, ya.shape, op, "dy", "(dy must match y exactly; no broadcasting)")
    return _seqcore.activation_backward(rows_view(ya), rows_view(dya), act).reshape(ya.shape)


def activation_backward_from_input(x: Any, dy: Any, name: str | None) -> np.ndarray:
    """``dL/dx`` for ``y = activation(x)``, from the input ``x`` and ``dy = dL/dy``. Any activation;
    the only way for gelu, silu/swish, mish and hard_silu/hard_swish, whose output does not
    determine their slope."""
    op = "activation_backward_from_input"
    act = activation_name(name, op, ALL_ACTIVATIONS)
    xa = as_f32(x, op, "x")
    dya = as_f32(dy, op, "dy")
    require_shape(dya, xa.shape, op, "dy", "(dy must match x exactly; no broadcasting)")
    return _seqcore.activation_backward_from_input(rows_view(xa), rows_view(dya), act).reshape(xa.shape)


def mse(pred: Any, target: Any) -> tuple[float, np.ndarray]:
    """Mean squared error (Keras's reduction) and its gradient by ``pred``.

    Shapes must match exactly: a ``(batch, 1)`` prediction against a ``(batch,)`` target is an
    error here, not a silent ``(batch, batch)`` broadcast.
    """
    op = "mse"
    p = as_f32(pred, op, "pred")
    t = as_f32(target, op, "target")
    require_shape(t, p.shape, op, "target", "(targets must match the predictions' shape; reshape them)")
    if p.size == 0:
        raise ValueError(f"{op}: empty input (shape {p.shape}); the mean of no values is undefined.")
    loss, grad = _seqcore.mse(p, t)
    return float(loss), grad


def sgd_update(param: np.ndarray, grad: Any, lr: float) -> None:
    """``param -= lr * grad`` in place. ``param`` must be a writable C-contiguous float32 array."""
    op = "sgd_update"
    if not isinstance(param, np.ndarray) or param.dtype != np.float32 or not param.flags.c_contiguous:
        raise TypeError(f"{op}: `param` must be a C-contiguous float32 numpy array (it is updated in place).")
    if not param.flags.writeable:
        raise ValueError(f"{op}: `param` is read-only.")
    g = as_f32(grad, op, "grad")
    require_shape(g, param.shape, op, "grad", "(one gradient per parameter)")
    if np.may_share_memory(g, param):
        g = g.copy()  # the kernel writes param while reading grad
    lr = float(lr)
    if not np.isfinite(lr) or abs(lr) > float(np.finfo(np.float32).max):
        raise ValueError(f"{op}: lr must be a finite float32 value; received {lr}.")
    _seqcore.sgd_update(param, g, lr)
