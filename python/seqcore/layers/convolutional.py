"""Conv1D and 1-D pooling layers (channels_last, Keras 3 arguments and defaults)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _masks, constraints, initializers, kernels, regularizers
from .base import Layer, Shape, shape_str, unused_input_grad
from .core import activation_name, needs_input, positive_int


def _one_int(value: Any, layer: str, arg: str) -> int:
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{layer}: {arg} must be an int or a 1-tuple. Received: {arg}={value!r}")
        value = value[0]
    return positive_int(value, layer, arg)


def _channels_last(data_format: Any, layer: str) -> None:
    if data_format not in (None, "channels_last"):
        raise ValueError(
            f"{layer}: only data_format='channels_last' (batch, steps, channels) is supported. For channels-first "
            f"data transpose it: x.transpose(0, 2, 1)."
        )


def _check_seq(layer: str, input_shape: Shape) -> None:
    if len(input_shape) != 2:
        hint = ""
        if len(input_shape) == 3:
            hint = (
                " For CNN-LSTM input (samples, n_seq, n_steps, features) wrap the layer in TimeDistributed so it runs "
                "on every sub-sequence."
            )
        elif len(input_shape) == 1:
            hint = " For one feature per step reshape x to (samples, steps, 1)."
        got = shape_str((None, *input_shape))
        raise ValueError(f"{layer}: expected input of shape (batch, steps, channels); received {got}.{hint}")


class Conv1D(Layer):
    """Keras's Conv1D: kernel ``(kernel_size, in_channels / groups, filters)``; padding valid, same
    (extra cell on the right) or causal; strides with dilation allowed (Keras refuses, PyTorch
    allows)."""

    propagates_mask = False

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: Any = None,
        dilation_rate: Any = 1,
        groups: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        who = f"Conv1D {self.name!r}"
        self.filters = positive_int(filters, who, "filters")
        self.kernel_size = _one_int(kernel_size, who, "kernel_size")
        self.strides = _one_int(strides, who, "strides")
        self.dilation_rate = _one_int(dilation_rate, who, "dilation_rate")
        self.groups = positive_int(groups, who, "groups")
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same", "causal"):
            raise ValueError(f"{who}: padding must be 'valid', 'same' or 'causal'. Received: padding={padding!r}")
        self.padding = padding.lower()
        _channels_last(data_format, who)
        if self.filters % self.groups:
            raise ValueError(f"{who}: filters ({self.filters}) must be divisible by groups ({self.groups}).")
        self.activation = activation_name(activation, who)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def _opts(self) -> dict[str, Any]:
        return {
            "strides": self.strides,
            "padding": self.padding,
            "dilation_rate": self.dilation_rate,
            "groups": self.groups,
        }

    def build(self, input_shape: Shape) -> None:
        who = f"Conv1D {self.name!r}"
        _check_seq(who, input_shape)
        c = input_shape[-1]
        if c is None:
            raise ValueError(f"{who}: the channel axis must be known; received {shape_str((None, *input_shape))}.")
        if c % self.groups:
            raise ValueError(f"{who}: input channels ({c}) must be divisible by groups ({self.groups}).")
        if input_shape[0] is not None:
            self.compute_output_shape(input_shape)  # a sequence too short for 'valid' fails here, clearly
        self.kernel = self.add_weight(
            "kernel",
            (self.kernel_size, c // self.groups, self.filters),
            self.kernel_initializer,
            self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = (
            self.add_weight(
                "bias", (self.filters,), self.bias_initializer, self.bias_regularizer, constraint=self.bias_constraint
            )
            if self.use_bias
            else None
        )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _check_seq(f"Conv1D {self.name!r}", input_shape)
        steps = input_shape[0]
        if steps is None:
            return (None, self.filters)
        try:
            out = kernels.conv1d_output_length(steps, self.kernel_size, self.strides, self.padding, self.dilation_rate)
        except ValueError as e:
            raise ValueError(f"Conv1D {self.name!r}: {e}") from None
        return (out, self.filters)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        split = needs_input(self.activation)  # gelu & co: linear kernel, then the activation on its output
        y = kernels.conv1d_forward(
            x,
            self.kernel.value,
            None if self.bias is None else self.bias.value,
            activation="linear" if split else self.activation,
            **self._opts(),
        )
        ctx = (x, y) if training else None  # y is the pre-activation when split
        return (kernels.activation(y, self.activation) if split else y), ctx

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        assert ctx is not None, "backward without a training forward"
        x, y = ctx
        act = self.activation
        if needs_input(act):
            dy, act = kernels.activation_backward_from_input(y, dy, act), "linear"
        g = kernels.conv1d_backward(
            x,
            self.kernel.value,
            y,
            dy,
            activation=act,
            use_bias=self.use_bias,
            need_dx=need_dx,
            **self._opts(),
        )
        self.kernel.add_grad(g.dkernel)
        if self.bias is not None:
            self.bias.add_grad(g.dbias)  # type: ignore[arg-type]
        return g.dx if g.dx is not None else unused_input_grad(x.shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            **self._opts(),
        }


class _Pooling1D(Layer):
    _average = False

    def __init__(
        self, pool_size: Any = 2, strides: Any = None, padding: str = "valid", data_format: Any = None, **kwargs: Any
    ):
        super().__init__(**kwargs)
        who = f"{type(self).__name__} {self.name!r}"
        self.pool_size = _one_int(pool_size, who, "pool_size")
        self.strides = self.pool_size if strides is None else _one_int(strides, who, "strides")
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"{who}: padding must be 'valid' or 'same'. Received: padding={padding!r}")
        self.padding = padding.lower()
        _channels_last(data_format, who)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        who = f"{type(self).__name__} {self.name!r}"
        _check_seq(who, input_shape)
        steps = input_shape[0]
        if steps is None:
            return (None, input_shape[1])
        try:
            out = kernels.pool1d_output_length(steps, self.pool_size, self.strides, self.padding)
        except ValueError as e:
            raise ValueError(f"{who}: {e}") from None
        return (out, input_shape[1])

    def build(self, input_shape: Shape) -> None:
        self.compute_output_shape(input_shape)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        fwd = kernels.avg_pool1d_forward if self._average else kernels.max_pool1d_forward
        return fwd(x, self.pool_size, strides=self.strides, padding=self.padding), (x if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        assert ctx is not None, "backward without a training forward"
        bwd = kernels.avg_pool1d_backward if self._average else kernels.max_pool1d_backward
        return bwd(ctx, dy, self.pool_size, strides=self.strides, padding=self.padding)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides, "padding": self.padding}


class MaxPooling1D(_Pooling1D):
    """Keras's MaxPooling1D (``strides`` defaults to ``pool_size``; padded cells act as -inf)."""


class AveragePooling1D(_Pooling1D):
    """Keras's AveragePooling1D (with ``same``, padded cells are not counted in the mean)."""

    _average = True


class _GlobalPooling1D(Layer):
    """Pools over the steps axis: axis 1 of ``(batch, steps, channels)``, or with
    ``data_format="channels_first"`` axis 2 of ``(batch, channels, steps)`` (moved last by one copy
    each way, as the kernels read channels-last rows)."""

    _average = False

    def __init__(self, data_format: Any = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last", "channels_first"):
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: data_format must be 'channels_last' or 'channels_first'. "
                f"Received: data_format={data_format!r}"
            )
        self.data_format = data_format or "channels_last"
        self.keepdims = bool(keepdims)

    @property
    def _first(self) -> bool:
        return self.data_format == "channels_first"

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _check_seq(f"{type(self).__name__} {self.name!r}", input_shape)
        channels = input_shape[0] if self._first else input_shape[1]
        if not self.keepdims:
            return (channels,)
        return (channels, 1) if self._first else (1, channels)

    def _last(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x.transpose(0, 2, 1)) if self._first else x

    def _keep(self, y: np.ndarray) -> np.ndarray:
        if not self.keepdims:
            return y
        return y[:, :, None] if self._first else y[:, None, :]

    def _unkeep(self, dy: np.ndarray) -> np.ndarray:
        if not self.keepdims:
            return dy
        return dy[:, :, 0] if self._first else dy[:, 0, :]

    def _back(self, dx: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(dx.transpose(0, 2, 1)) if self._first else dx

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = self._last(x)
        y = (kernels.global_avg_pool1d_forward if self._average else kernels.global_max_pool1d_forward)(x)
        return self._keep(y), (x if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        assert ctx is not None, "backward without a training forward"
        dx = (kernels.global_avg_pool1d_backward if self._average else kernels.global_max_pool1d_backward)(
            ctx, np.ascontiguousarray(self._unkeep(dy)))  # fmt: skip
        return self._back(dx)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalMaxPooling1D(_GlobalPooling1D):
    pass


class GlobalAveragePooling1D(_GlobalPooling1D):
    """Keras's GlobalAveragePooling1D. After a Masking layer (in a Sequential) it averages over each
    sample's unmasked steps only, as Keras does; a sample with no unmasked step gives 0 (Keras: NaN)."""

    _average = True
    uses_mask = True

    def forward(self, x: np.ndarray, training: bool = False, lengths: Any = None) -> tuple[np.ndarray, Any]:
        if lengths is None:
            return super().forward(x, training)
        x = self._last(x)
        lengths = _masks.normalize(lengths, x.shape[0], x.shape[1], f"GlobalAveragePooling1D {self.name!r}")
        valid = _masks.to_bool(lengths, x.shape[1])[..., None]
        count = np.maximum(_masks.counts(lengths), 1).astype(np.float32)[:, None]
        y = np.where(valid, x, np.float32(0)).sum(axis=1, dtype=np.float32) / count
        return self._keep(y), (("masked", valid, count) if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        if not (isinstance(ctx, tuple) and ctx and isinstance(ctx[0], str)):
            return super().backward(ctx, dy, need_dx)
        _, valid, count = ctx
        dy = self._unkeep(dy)
        # Each unmasked step gets dy / count; masked steps get nothing.
        return self._back(np.where(valid, (dy / count)[:, None, :], np.float32(0)).astype(np.float32))
