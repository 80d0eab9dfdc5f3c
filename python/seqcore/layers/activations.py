"""Keras's activation layers: ``ReLU`` (max_value, negative_slope, threshold), ``LeakyReLU``,
``PReLU`` (a trainable slope, ``shared_axes``), ``ELU`` and ``Softmax`` (any axis), with Keras 3's
formulas and defaults. The plain cases run on the Rust activation kernels (relu, elu with alpha 1,
softmax over the last axis); the parametrized ones are elementwise NumPy in float32, which is
memory-bound either way. Masks pass through, as in Keras."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import constraints, initializers, kernels, regularizers
from .._validation import as_f32, rows_view
from .base import Layer, Shape, shape_str


def _number(value: Any, who: str, what: str, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{who}: {what} must be a number; received {value!r}.")
    if not float(value) >= 0.0:
        raise ValueError(f"{who}: {what} cannot be negative (or NaN); received {what}={value!r}.")
    return float(value)


class _Elementwise(Layer):
    propagates_mask = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape


class ReLU(_Elementwise):
    """Keras's ReLU layer: ``x`` above ``threshold`` (clipped at ``max_value``), and
    ``negative_slope * (x - threshold)`` below it."""

    def __init__(self, max_value: Any = None, negative_slope: Any = 0.0, threshold: Any = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        who = f"ReLU {self.name!r}"
        self.max_value = _number(max_value, who, "max_value", allow_none=True)
        self.negative_slope = _number(negative_slope, who, "negative_slope")
        self.threshold = _number(threshold, who, "threshold")

    def _plain(self) -> bool:
        return self.max_value is None and self.negative_slope == 0.0 and self.threshold == 0.0

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, f"ReLU {self.name!r}", "inputs")
        if self._plain():
            y = kernels.activation(x, "relu")
            return y, (y if training else None)
        t, s = np.float32(self.threshold), np.float32(self.negative_slope or 0.0)
        pos = np.where(x > t, x, np.float32(0.0))
        if self.max_value is not None:
            pos = np.minimum(pos, np.float32(self.max_value))
        y = pos - s * np.maximum(t - x, np.float32(0.0)) if s else pos
        return np.ascontiguousarray(y, dtype=np.float32), (x if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        if self._plain():
            return kernels.activation_backward(ctx, dy, "relu")
        x = ctx
        t = np.float32(self.threshold)
        slope = np.where(x > t, np.float32(1.0), np.float32(self.negative_slope or 0.0))
        if self.max_value is not None:
            slope = np.where(x > t, (x < np.float32(self.max_value)).astype(np.float32), slope)
        return np.ascontiguousarray(dy * slope, dtype=np.float32)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}  # fmt: skip


class LeakyReLU(_Elementwise):
    """Keras's LeakyReLU layer: ``x`` for ``x >= 0``, ``negative_slope * x`` below (default 0.3,
    the layer's default in Keras 3; the ``leaky_relu`` activation's is 0.2)."""

    def __init__(self, negative_slope: Any = 0.3, **kwargs: Any):
        if "alpha" in kwargs:  # Keras 2's name, still accepted by Keras 3 with a warning
            import warnings

            negative_slope = kwargs.pop("alpha")
            warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.", UserWarning, stacklevel=2)
        super().__init__(**kwargs)
        self.negative_slope = _number(negative_slope, f"LeakyReLU {self.name!r}", "negative_slope")

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, f"LeakyReLU {self.name!r}", "inputs")
        s = np.float32(self.negative_slope)
        return np.ascontiguousarray(np.where(x >= 0, x, s * x), dtype=np.float32), (x if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        s = np.float32(self.negative_slope)
        return np.ascontiguousarray(np.where(ctx >= 0, dy, s * dy), dtype=np.float32)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "negative_slope": self.negative_slope}


class PReLU(_Elementwise):
    """Keras's PReLU: ``relu(x) - alpha * relu(-x)`` with a trainable ``alpha`` of the input's shape
    (batch axis excluded), size 1 along ``shared_axes``."""

    def __init__(
        self,
        alpha_initializer: Any = "Zeros",
        alpha_regularizer: Any = None,
        alpha_constraint: Any = None,
        shared_axes: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = [shared_axes] if isinstance(shared_axes, (int, np.integer)) else list(shared_axes)
            if any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 1 for a in axes):
                raise ValueError(
                    f"PReLU {self.name!r}: shared_axes are axes of the input counted from 1 (0 is the batch); "
                    f"received {shared_axes!r}."
                )
            self.shared_axes = [int(a) for a in axes]

    def build(self, input_shape: Shape) -> None:
        shape = list(input_shape)
        for a in self.shared_axes or []:
            if a > len(shape):
                raise ValueError(
                    f"PReLU {self.name!r}: shared axis {a} does not exist in input shape {shape_str((None, *shape))}."
                )
            shape[a - 1] = 1
        if any(d is None for d in shape):
            raise ValueError(
                f"PReLU {self.name!r}: every non-shared axis needs a known size for alpha; received input shape "
                f"{shape_str((None, *input_shape))}. Share the unknown axes (shared_axes=[1] for the time axis)."
            )
        self.alpha = self.add_weight("alpha", tuple(shape), self.alpha_initializer, self.alpha_regularizer,
                                     constraint=self.alpha_constraint)  # fmt: skip

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, f"PReLU {self.name!r}", "inputs")
        a = self.alpha.value
        y = np.maximum(x, np.float32(0.0)) - a * np.maximum(-x, np.float32(0.0))
        return np.ascontiguousarray(y, dtype=np.float32), (x if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        x = ctx
        neg = x < 0
        if self.alpha.trainable:
            g = np.where(neg, dy * x, np.float32(0.0))
            # sum over the batch and every shared axis, back to alpha's shape
            red = (0, *[i + 1 for i, d in enumerate(self.alpha.shape) if d == 1 and x.shape[i + 1] != 1])
            self.alpha.add_grad(np.ascontiguousarray(g.sum(axis=red, keepdims=True)[0], dtype=np.float32))
        return np.ascontiguousarray(np.where(neg, dy * self.alpha.value, dy), dtype=np.float32)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "alpha_initializer": initializers.serialize(self.alpha_initializer),
            "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
            "alpha_constraint": constraints.serialize(self.alpha_constraint),
            "shared_axes": self.shared_axes,
        }


class ELU(_Elementwise):
    """Keras's ELU layer: ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` below."""

    def __init__(self, alpha: Any = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
            raise TypeError(f"ELU {self.name!r}: alpha must be a number; received {alpha!r}.")
        self.alpha = float(alpha)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, f"ELU {self.name!r}", "inputs")
        if self.alpha == 1.0:
            return kernels.activation(x, "elu"), (x if training else None)
        y = np.where(x > 0, x, np.float32(self.alpha) * np.expm1(np.minimum(x, np.float32(0.0))))
        return np.ascontiguousarray(y, dtype=np.float32), (x if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        x = ctx
        d = np.where(x > 0, np.float32(1.0), np.float32(self.alpha) * np.exp(np.minimum(x, np.float32(0.0))))
        return np.ascontiguousarray(dy * d, dtype=np.float32)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(_Elementwise):
    """Keras's Softmax layer over ``axis`` (an int or a list of ints; default -1), on the Rust
    softmax kernel after moving the axis last."""

    def __init__(self, axis: Any = -1, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer, list, tuple)):
            raise TypeError(f"Softmax {self.name!r}: axis must be an int or a list of ints; received {axis!r}.")
        self.axis = int(axis) if isinstance(axis, (int, np.integer)) else [int(a) for a in axis]

    def _axes(self, ndim: int) -> list[int]:
        axes = [self.axis] if isinstance(self.axis, int) else list(self.axis)
        for a in axes:
            if not -ndim <= a < ndim:
                raise ValueError(f"Softmax {self.name!r}: axis {a} is out of bounds for an input of rank {ndim}.")
        return sorted({a % ndim for a in axes})

    def _fold(self, x: np.ndarray) -> tuple[np.ndarray, list[int], tuple[int, ...]]:
        axes = self._axes(x.ndim)
        perm = [i for i in range(x.ndim) if i not in axes] + axes
        moved = np.ascontiguousarray(x.transpose(perm))
        n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
        return moved.reshape(-1, n) if n else rows_view(moved), perm, moved.shape

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, f"Softmax {self.name!r}", "inputs")
        rows, perm, moved = self._fold(x)
        y = kernels.activation(rows, "softmax").reshape(moved).transpose(np.argsort(perm))
        y = np.ascontiguousarray(y)
        return y, (y if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        y = ctx
        yr, perm, moved = self._fold(y)
        gr, _, _ = self._fold(np.asarray(dy, np.float32))
        g = kernels.activation_backward(yr, gr, "softmax").reshape(moved).transpose(np.argsort(perm))
        return np.ascontiguousarray(g)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}
