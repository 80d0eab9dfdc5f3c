"""Keras's 1-D shaping layers: ``UpSampling1D``, ``ZeroPadding1D``, ``Cropping1D`` and ``Permute``,
with their arguments, output shapes and errors. Each is a copy, a slice or a transpose in NumPy,
and its gradient the adjoint (a sum over the repeats, a slice, zero padding, the inverse
transpose). As in Keras, the time-changing layers drop an incoming mask; Permute drops it too."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_f32
from .base import Layer, Shape, shape_str


def _pair(value: Any, who: str, what: str) -> tuple[int, int]:
    vals = (value, value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        a, b = vals
    except (TypeError, ValueError):
        raise ValueError(f"{who}: {what} must be an int or a pair of ints; received {value!r}.") from None
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in (a, b)):
        raise ValueError(f"{who}: {what} must be non-negative ints; received {value!r}.")
    return int(a), int(b)


class _Temporal(Layer):
    """A layer on ``(batch, steps, features)`` inputs."""

    def _check_rank(self, shape: tuple[Any, ...]) -> None:
        if len(shape) != 3:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: expects (batch, steps, features) inputs; received shape "
                f"{shape_str(shape)}."
            )

    def build(self, input_shape: Shape) -> None:
        self._check_rank((None, *input_shape))


class UpSampling1D(_Temporal):
    """Repeats every time step ``size`` times (``ops.repeat`` along axis 1)."""

    def __init__(self, size: int = 2, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"UpSampling1D {self.name!r}: size must be a positive int; received {size!r}.")
        self.size = int(size)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        steps = input_shape[0]
        return (None if steps is None else steps * self.size, *input_shape[1:])

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, f"UpSampling1D {self.name!r}", "inputs")
        self._check_rank(x.shape)
        return np.repeat(x, self.size, axis=1), (x.shape if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        b, t, f = ctx
        return np.ascontiguousarray(np.asarray(dy, np.float32).reshape(b, t, self.size, f).sum(axis=2))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size}


class ZeroPadding1D(_Temporal):
    """Pads the time axis with zeros: ``padding`` steps on each side, or ``(left, right)``;
    ``data_format="channels_first"`` pads the last axis of ``(batch, features, steps)`` instead."""

    def __init__(self, padding: Any = 1, data_format: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.padding = _pair(padding, f"ZeroPadding1D {self.name!r}", "padding")
        if data_format not in (None, "channels_last", "channels_first"):
            raise ValueError(
                f"ZeroPadding1D {self.name!r}: data_format must be 'channels_last' or 'channels_first'; received "
                f"{data_format!r}."
            )
        self.data_format = data_format or "channels_last"
        self._axis = 1 if self.data_format == "channels_last" else 2

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        out = list(input_shape)
        d = out[self._axis - 1]
        out[self._axis - 1] = None if d is None else d + sum(self.padding)
        return tuple(out)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, f"ZeroPadding1D {self.name!r}", "inputs")
        self._check_rank(x.shape)
        pads = [(0, 0)] * 3
        pads[self._axis] = self.padding
        return np.pad(x, pads), (x.shape if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        n = ctx[self._axis]
        index = [slice(None)] * 3
        index[self._axis] = slice(self.padding[0], self.padding[0] + n)
        return np.ascontiguousarray(np.asarray(dy, np.float32)[tuple(index)])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "padding": list(self.padding), "data_format": self.data_format}


class Cropping1D(_Temporal):
    """Removes ``cropping`` steps from the start and the end of the time axis (an int crops both)."""

    def __init__(self, cropping: Any = (1, 1), **kwargs: Any):
        super().__init__(**kwargs)
        self.cropping = _pair(cropping, f"Cropping1D {self.name!r}", "cropping")

    def _check_length(self, steps: Any, shape: tuple[Any, ...]) -> None:
        if steps is not None and sum(self.cropping) >= steps:
            raise ValueError(
                f"Cropping1D {self.name!r}: cropping {self.cropping} removes all {steps} steps of an input of shape "
                f"{shape_str(shape)}; crop fewer steps in total than the input has."
            )

    def build(self, input_shape: Shape) -> None:
        super().build(input_shape)
        self._check_length(input_shape[0], (None, *input_shape))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        steps = input_shape[0]
        return (None if steps is None else steps - sum(self.cropping), *input_shape[1:])

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, f"Cropping1D {self.name!r}", "inputs")
        self._check_rank(x.shape)
        self._check_length(x.shape[1], x.shape)
        a, b = self.cropping
        return np.ascontiguousarray(x[:, a : x.shape[1] - b]), (x.shape if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        return np.pad(np.asarray(dy, np.float32), [(0, 0), self.cropping, (0, 0)])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "cropping": list(self.cropping)}


class Permute(Layer):
    """Permutes the non-batch axes: ``dims`` is a permutation of ``1..rank-1`` (1-indexed, as Keras),
    e.g. ``Permute((2, 1))`` swaps steps and features."""

    def __init__(self, dims: Any, **kwargs: Any):
        super().__init__(**kwargs)
        who = f"Permute {self.name!r}"
        try:
            d = tuple(int(v) for v in dims)
        except (TypeError, ValueError):
            raise ValueError(f"{who}: dims must be a tuple of ints; received {dims!r}.") from None
        if sorted(d) != list(range(1, len(d) + 1)):
            raise ValueError(
                f"{who}: dims must be a permutation of 1..{len(d)} (the batch axis 0 stays first); received "
                f"dims={dims!r}."
            )
        self.dims = d

    def _check(self, ndim: int, shape: tuple[Any, ...]) -> None:
        if ndim != len(self.dims) + 1:
            raise ValueError(
                f"Permute {self.name!r}: dims {self.dims} permute {len(self.dims)} axes, but the input of shape "
                f"{shape_str(shape)} has {ndim - 1} non-batch axes."
            )

    def build(self, input_shape: Shape) -> None:
        self._check(len(input_shape) + 1, (None, *input_shape))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape[d - 1] for d in self.dims)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, f"Permute {self.name!r}", "inputs")
        self._check(x.ndim, x.shape)
        return np.ascontiguousarray(x.transpose((0, *self.dims))), (x.shape if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        inverse = np.argsort((0, *self.dims))
        return np.ascontiguousarray(np.asarray(dy, np.float32).transpose(inverse))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dims": list(self.dims)}
