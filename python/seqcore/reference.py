"""Pure-NumPy float64 reference implementations: the test oracle for every kernel.

Written for clarity, not speed, straight from the math (Keras conventions), sharing no code with the
Rust kernels. Inputs are converted to float64; results are float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def activation(z: Any, name: str | None) -> np.ndarray:
    z = _f64(z)
    if z.ndim == 0:  # a scalar is a one-element last axis
        return activation(z.reshape(1), name).reshape(())
    if name in (None, "linear"):
        return z.copy()
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "sigmoid":
        # exp of a negative number only: no overflow warning for large |z| (the value is exact either way)
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    if name == "hard_sigmoid":  # Keras 3: relu6(x + 3) / 6
        return np.clip(z / 6.0 + 0.5, 0.0, 1.0)
    if name == "tanh":
        return np.tanh(z)
    if name == "softmax":
        if z.shape[-1] == 0:
            return z.copy()
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError(f"unknown activation {name!r}")


def activation_grad(z: Any, dy: Any, name: str | None) -> np.ndarray:
    """dL/dz from the pre-activation z (independent of the kernels, which use the output)."""
    z, dy = _f64(z), _f64(dy)
    if z.ndim == 0:
        return activation_grad(z.reshape(1), dy.reshape(1), name).reshape(())
    y = activation(z, name)
    if name in (None, "linear"):
        return dy.copy()
    if name == "relu":
        return dy * (z > 0)
    if name == "sigmoid":
        return dy * y * (1 - y)
    if name == "hard_sigmoid":
        return dy * ((z > -3) & (z < 3)) / 6.0
    if name == "tanh":
        return dy * (1 - y**2)
    if name == "softmax":
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    raise ValueError(f"unknown activation {name!r}")


def dense_forward(x: Any, kernel: Any, bias: Any = None, activation_name: str | None = None) -> np.ndarray:
    z = _f64(x) @ _f64(kernel)
    if bias is not None:
        z = z + _f64(bias)
    return activation(z, activation_name)


def dense_backward(
    x: Any, kernel: Any, bias: Any, dy: Any, activation_name: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dkernel, dbias) for y = act(x @ kernel + bias) and upstream gradient dy."""
    x, k = _f64(x), _f64(kernel)
    z = x @ k + (_f64(bias) if bias is not None else 0.0)
    dz = activation_grad(z, dy, activation_name)
    n = int(np.prod(x.shape[:-1], dtype=np.int64))
    rows_x = x.reshape(n, x.shape[-1])
    rows_dz = dz.reshape(n, dz.shape[-1])
    return dz @ k.T, rows_x.T @ rows_dz, rows_dz.sum(axis=0)


def mse(pred: Any, target: Any) -> tuple[float, np.ndarray]:
    p, t = _f64(pred), _f64(target)
    return float(np.mean((p - t) ** 2)), 2.0 * (p - t) / p.size
