"""Pure-NumPy float64 reference implementations: the test oracle for every kernel.

Written for clarity, not speed, straight from the math (Keras conventions), sharing no code with the
Rust kernels. Inputs are converted to float64; results are float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# selu's constants (Klambauer et al., 2017), as Keras defines them.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
LEAKY_RELU_SLOPE = 0.2  # keras.activations.leaky_relu's default negative_slope

_erfc = np.frompyfunc(math.erfc, 1, 1)


def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # exp of a negative number only: no overflow warning for large |z| (the value is exact either way)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    """Φ(z) = erfc(-z/√2)/2, with math.erfc (accurate in both tails)."""
    return 0.5 * np.asarray(_erfc(-z / math.sqrt(2.0)), dtype=np.float64)


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(z, 0.0)  # ln(e^z + 1), no overflow


def activation(z: Any, name: str | None) -> np.ndarray:
    z = _f64(z)
    if z.ndim == 0:  # a scalar is a one-element last axis
        return activation(z.reshape(1), name).reshape(())
    if name in (None, "linear"):
        return z.copy()
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "hard_sigmoid":  # Keras 3: relu6(x + 3) / 6
        return np.clip(z / 6.0 + 0.5, 0.0, 1.0)
    if name == "tanh":
        return np.tanh(z)
    if name == "softmax":
        if z.shape[-1] == 0:
            return z.copy()
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if name == "elu":  # alpha = 1
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))
    if name == "selu":
        return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0.0)))
    if name == "softplus":
        return _softplus(z)
    if name == "softsign":  # the limits ±1 at ±inf
        return np.where(np.isinf(z), np.sign(z), z / (1.0 + np.abs(z)))
    if name == "exponential":
        return np.exp(z)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_RELU_SLOPE * z)
    if name == "relu6":
        return np.clip(z, 0.0, 6.0)
    # x * g(x) with g -> 0 as x -> -inf: 0 there (in float64 it already is below these bounds),
    # not -inf * 0.
    if name == "gelu":  # exact (erf) form, Keras's default approximate=False
        return np.where(z < -40, 0.0, z * _normal_cdf(z))
    if name in ("silu", "swish"):
        return np.where(z < -800, 0.0, z * _sigmoid(z))
    if name == "mish":
        return np.where(z < -800, 0.0, z * np.tanh(_softplus(z)))
    if name in ("hard_silu", "hard_swish"):  # x * hard_sigmoid(x)
        return np.where(z <= -3, 0.0, z * np.clip(z / 6.0 + 0.5, 0.0, 1.0))
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
    # At the kinks, TensorFlow's conventions: elu and selu take the right-hand slope at 0, leaky_relu
    # the left-hand one, relu6 0 at both 0 and 6, hard_silu 0 at -3 and 1 at 3.
    if name == "elu":
        return dy * np.where(z >= 0, 1.0, np.exp(np.minimum(z, 0.0)))
    if name == "selu":
        return dy * np.where(z >= 0, SELU_SCALE, SELU_SCALE * SELU_ALPHA * np.exp(np.minimum(z, 0.0)))
    if name == "softplus":
        return dy * _sigmoid(z)
    if name == "softsign":
        return dy / (1.0 + np.abs(z)) ** 2
    if name == "exponential":
        return dy * y
    if name == "leaky_relu":
        return dy * np.where(z > 0, 1.0, LEAKY_RELU_SLOPE)
    if name == "relu6":
        return dy * ((z > 0) & (z < 6))
    # The smooth ones: z is clipped where the slope has already reached its limit (0 or 1) in
    # float64, so that ±inf gives that limit rather than inf * 0.
    if name == "gelu":  # Φ(z) + z φ(z)
        zc = np.clip(z, -40.0, 40.0)
        return dy * (_normal_cdf(zc) + zc * np.exp(-0.5 * zc * zc) / math.sqrt(2.0 * math.pi))
    if name in ("silu", "swish"):  # σ(z) (1 + z (1 - σ(z)))
        zc = np.clip(z, -800.0, 800.0)
        s = _sigmoid(zc)
        return dy * s * (1.0 + zc * (1.0 - s))
    if name == "mish":  # tanh(sp(z)) + z sech²(sp(z)) σ(z)
        zc = np.clip(z, -800.0, 800.0)
        t = np.tanh(_softplus(zc))
        return dy * (t + zc * (1.0 - t * t) * _sigmoid(zc))
    if name in ("hard_silu", "hard_swish"):
        return dy * np.where(z <= -3, 0.0, np.where(z >= 3, 1.0, (2.0 * z + 3.0) / 6.0))
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
