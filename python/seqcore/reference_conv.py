"""Pure-NumPy float64 reference for Conv1D and 1-D pooling: the test oracle for those kernels.

Written from the definitions (Keras 3 / TensorFlow conventions, channels last), for clarity, sharing no
code with the Rust kernels or with ``seqcore._conv``: the input is explicitly zero-padded (or, for
pooling, each window is listed cell by cell) and every output step gathers its receptive field.
Inputs are converted to float64; results are float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .reference import activation, activation_grad


def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def conv1d_pads(length: int, kernel_size: int, strides: int, padding: str, dilation_rate: int) -> tuple[int, int]:
    """(left, right) zero padding. ``same`` is TensorFlow's rule: the output has ceil(length/strides)
    steps and the padding needed for that is split with the odd cell on the right."""
    span = dilation_rate * (kernel_size - 1) + 1
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return span - 1, 0
    if padding == "same":
        out = math.ceil(length / strides)
        total = max((out - 1) * strides + span - length, 0)
        return total // 2, total - total // 2
    raise ValueError(f"unknown padding {padding!r}")


def conv1d_output_length(length: int, kernel_size: int, strides: int, padding: str, dilation_rate: int) -> int:
    """Number of window positions that fit in the padded input."""
    left, right = conv1d_pads(length, kernel_size, strides, padding, dilation_rate)
    span = dilation_rate * (kernel_size - 1) + 1
    padded = length + left + right
    if padded < span:
        return 0
    return (padded - span) // strides + 1


def _windows(x: np.ndarray, kernel_size: int, strides: int, padding: str, dilation_rate: int):
    """(padded x, index array (out, K) of the padded steps each output step reads)."""
    b, length, c = x.shape
    left, right = conv1d_pads(length, kernel_size, strides, padding, dilation_rate)
    xp = np.zeros((b, left + length + right, c))
    xp[:, left : left + length] = x
    out = conv1d_output_length(length, kernel_size, strides, padding, dilation_rate)
    idx = np.arange(out)[:, None] * strides + np.arange(kernel_size)[None, :] * dilation_rate
    return xp, idx, left


def _pre_activation(x, kernel, bias, strides, padding, dilation_rate, groups):
    x, w = _f64(x), _f64(kernel)
    ksize, cg, filters = w.shape
    fg = filters // groups
    xp, idx, _ = _windows(x, ksize, strides, padding, dilation_rate)
    cols = xp[:, idx, :]  # (B, out, K, C)
    b, out = cols.shape[:2]
    cols = cols.reshape(b, out, ksize, groups, cg)
    wg = w.reshape(ksize, cg, groups, fg)
    z = np.einsum("btkgc,kcgf->btgf", cols, wg).reshape(b, out, filters)
    if bias is not None:
        z = z + _f64(bias)
    return z, cols, wg


def conv1d_forward(
    x: Any,
    kernel: Any,
    bias: Any = None,
    strides: int = 1,
    padding: str = "valid",
    dilation_rate: int = 1,
    groups: int = 1,
    activation_name: str | None = None,
) -> np.ndarray:
    """Keras Conv1D: kernel ``(K, C_in/groups, filters)``, output ``(B, out, filters)``."""
    z, _, _ = _pre_activation(x, kernel, bias, strides, padding, dilation_rate, groups)
    return activation(z, activation_name)


def conv1d_backward(
    x: Any,
    kernel: Any,
    bias: Any,
    dy: Any,
    strides: int = 1,
    padding: str = "valid",
    dilation_rate: int = 1,
    groups: int = 1,
    activation_name: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dkernel, dbias) of :func:`conv1d_forward` for the upstream gradient ``dy``."""
    x, w = _f64(x), _f64(kernel)
    ksize, cg, filters = w.shape
    fg = filters // groups
    z, cols, wg = _pre_activation(x, w, bias, strides, padding, dilation_rate, groups)
    dz = activation_grad(z, _f64(dy), activation_name)
    b, out = dz.shape[:2]
    dzg = dz.reshape(b, out, groups, fg)
    dbias = dz.sum(axis=(0, 1))
    dkernel = np.einsum("btkgc,btgf->kcgf", cols, dzg).reshape(ksize, cg, filters)
    dcols = np.einsum("btgf,kcgf->btkgc", dzg, wg).reshape(b, out, ksize, groups * cg)
    xp, idx, left = _windows(x, ksize, strides, padding, dilation_rate)
    dxp = np.zeros_like(xp)
    for t in range(out):
        for k in range(ksize):
            dxp[:, idx[t, k]] += dcols[:, t, k]
    return dxp[:, left : left + x.shape[1]], dkernel, dbias


# --- pooling -----------------------------------------------------------------------------------------


def pool1d_windows(length: int, pool_size: int, strides: int | None, padding: str) -> list[list[int]]:
    """For each output step, the list of real input steps in its window (padding cells dropped)."""
    s = pool_size if strides is None else strides
    if padding == "valid":
        starts = range(0, length - pool_size + 1, s) if length >= pool_size else range(0)
        return [list(range(a, a + pool_size)) for a in starts]
    if padding != "same":
        raise ValueError(f"unknown padding {padding!r}")
    out = math.ceil(length / s)
    total = max((out - 1) * s + pool_size - length, 0)
    left = total // 2
    return [[i for i in range(t * s - left, t * s - left + pool_size) if 0 <= i < length] for t in range(out)]


def max_pool1d_forward(x: Any, pool_size: int, strides: int | None = None, padding: str = "valid") -> np.ndarray:
    x = _f64(x)
    wins = pool1d_windows(x.shape[1], pool_size, strides, padding)
    y = np.zeros((x.shape[0], len(wins), x.shape[2]))
    for t, cells in enumerate(wins):
        y[:, t] = x[:, cells].max(axis=1)
    return y


def max_pool1d_backward(
    x: Any, dy: Any, pool_size: int, strides: int | None = None, padding: str = "valid"
) -> np.ndarray:
    """Each window's gradient goes to its first maximal cell (np.argmax picks the first)."""
    x, dy = _f64(x), _f64(dy)
    wins = pool1d_windows(x.shape[1], pool_size, strides, padding)
    dx = np.zeros_like(x)
    bi, ci = np.meshgrid(np.arange(x.shape[0]), np.arange(x.shape[2]), indexing="ij")
    for t, cells in enumerate(wins):
        arg = np.asarray(cells)[np.argmax(x[:, cells], axis=1)]  # (B, C) input steps
        np.add.at(dx, (bi, arg, ci), dy[:, t])
    return dx


def avg_pool1d_forward(x: Any, pool_size: int, strides: int | None = None, padding: str = "valid") -> np.ndarray:
    x = _f64(x)
    wins = pool1d_windows(x.shape[1], pool_size, strides, padding)
    y = np.zeros((x.shape[0], len(wins), x.shape[2]))
    for t, cells in enumerate(wins):
        y[:, t] = x[:, cells].mean(axis=1)
    return y


def avg_pool1d_backward(
    x_shape: tuple[int, int, int], dy: Any, pool_size: int, strides: int | None = None, padding: str = "valid"
) -> np.ndarray:
    dy = _f64(dy)
    wins = pool1d_windows(x_shape[1], pool_size, strides, padding)
    dx = np.zeros(x_shape)
    for t, cells in enumerate(wins):
        for i in cells:
            dx[:, i] += dy[:, t] / len(cells)
    return dx


def global_max_pool1d_forward(x: Any) -> np.ndarray:
    return _f64(x).max(axis=1)


def global_max_pool1d_backward(x: Any, dy: Any) -> np.ndarray:
    x, dy = _f64(x), _f64(dy)
    dx = np.zeros_like(x)
    arg = np.argmax(x, axis=1)  # first maximum
    bi, ci = np.meshgrid(np.arange(x.shape[0]), np.arange(x.shape[2]), indexing="ij")
    dx[bi, arg, ci] = dy
    return dx


def global_avg_pool1d_forward(x: Any) -> np.ndarray:
    return _f64(x).mean(axis=1)


def global_avg_pool1d_backward(x_shape: tuple[int, int, int], dy: Any) -> np.ndarray:
    dy = _f64(dy)
    return np.broadcast_to(dy[:, None, :] / x_shape[1], x_shape).copy()
