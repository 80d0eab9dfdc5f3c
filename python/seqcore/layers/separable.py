"""Keras's ``DepthwiseConv1D`` and ``SeparableConv1D`` on the Conv1D Rust kernel: a depthwise
convolution is a grouped convolution with one group per input channel (Keras's
``depthwise_kernel (kernel_size, channels, depth_multiplier)`` is a view of the grouped kernel
``(kernel_size, 1, channels·depth_multiplier)``: output channel ``c·depth_multiplier + m``, as
TensorFlow orders them), and a separable convolution is that followed by a pointwise (size 1)
convolution with ``pointwise_kernel (1, channels·depth_multiplier, filters)`` and the bias."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import constraints, initializers, kernels, regularizers
from .._validation import as_f32
from .base import Layer, Shape, shape_str, unused_input_grad
from .convolutional import _channels_last, _check_seq, _one_int
from .core import activation_name, needs_input, positive_int


class _Depthwise(Layer):
    propagates_mask = False
    depthwise_kernel: Any  # the Weight, created in build

    def _setup(self, kernel_size: Any, strides: Any, padding: Any, data_format: Any, dilation_rate: Any,
               depth_multiplier: Any, activation: Any, use_bias: Any) -> None:  # fmt: skip
        who = self._who
        self.kernel_size = _one_int(kernel_size, who, "kernel_size")
        self.strides = _one_int(strides, who, "strides")
        self.dilation_rate = _one_int(dilation_rate, who, "dilation_rate")
        self.depth_multiplier = positive_int(depth_multiplier, who, "depth_multiplier")
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"{who}: padding must be 'valid' or 'same'. Received: padding={padding!r}")
        self.padding = padding.lower()
        _channels_last(data_format, who)
        self.data_format = "channels_last"
        if self.strides > 1 and self.dilation_rate > 1:
            raise ValueError(
                f"{who}: `strides > 1` not supported in conjunction with `dilation_rate > 1` (as in Keras). "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}"
            )
        self.activation = activation_name(activation, who)
        self.use_bias = bool(use_bias)

    @property
    def _who(self) -> str:
        return f"{type(self).__name__} {self.name!r}"

    def _channels(self, input_shape: Shape) -> int:
        _check_seq(self._who, input_shape)
        c = input_shape[-1]
        if c is None:
            raise ValueError(
                f"{self._who}: the channel axis must be known; received {shape_str((None, *input_shape))}."
            )
        if input_shape[0] is not None:
            self._length(int(input_shape[0]))
        return int(c)

    def _length(self, steps: int) -> int:
        try:
            return kernels.conv1d_output_length(steps, self.kernel_size, self.strides, self.padding, self.dilation_rate)
        except ValueError as e:
            raise ValueError(f"{self._who}: {e}") from None

    def _grouped(self) -> np.ndarray:
        k, c, m = self.depthwise_kernel.shape
        return self.depthwise_kernel.value.reshape(k, 1, c * m)

    def _depthwise_opts(self) -> dict[str, Any]:
        return {"strides": self.strides, "padding": self.padding, "dilation_rate": self.dilation_rate,
                "groups": self.depthwise_kernel.shape[1]}  # fmt: skip

    def _common_config(self) -> dict[str, Any]:
        return {
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "depth_multiplier": self.depth_multiplier,
            "activation": self.activation,
            "use_bias": self.use_bias,
        }


class DepthwiseConv1D(_Depthwise):
    """Keras's DepthwiseConv1D: each input channel convolved with its own ``depth_multiplier``
    filters; output ``(batch, steps', channels·depth_multiplier)``."""

    def __init__(
        self,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        depth_multiplier: int = 1,
        data_format: Any = None,
        dilation_rate: Any = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        depthwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        depthwise_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self._setup(kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier, activation, use_bias)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape: Shape) -> None:
        c = self._channels(input_shape)
        # Keras names this layer's weight "kernel" (SeparableConv1D's is "depthwise_kernel").
        self.depthwise_kernel = self.add_weight(
            "kernel", (self.kernel_size, c, self.depth_multiplier), self.depthwise_initializer,
            self.depthwise_regularizer, constraint=self.depthwise_constraint,
        )  # fmt: skip
        n = c * self.depth_multiplier
        self.bias = (
            self.add_weight("bias", (n,), self.bias_initializer, self.bias_regularizer, constraint=self.bias_constraint)
            if self.use_bias
            else None
        )

    @property
    def kernel(self) -> Any:
        return self.depthwise_kernel

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        c = input_shape[-1]
        steps = input_shape[0]
        return (None if steps is None else self._length(int(steps)), None if c is None else c * self.depth_multiplier)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, self._who, "inputs")
        split = needs_input(self.activation)
        bias = None if self.bias is None else self.bias.value
        act = "linear" if split else self.activation
        y = kernels.conv1d_forward(x, self._grouped(), bias, activation=act, **self._depthwise_opts())
        return (kernels.activation(y, self.activation) if split else y), ((x, y) if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        x, y = ctx
        act = self.activation
        if needs_input(act):
            dy, act = kernels.activation_backward_from_input(y, dy, act), "linear"
        g = kernels.conv1d_backward(x, self._grouped(), y, dy, activation=act, use_bias=self.use_bias,
                                    need_dx=need_dx, **self._depthwise_opts())  # fmt: skip
        self.depthwise_kernel.add_grad(g.dkernel.reshape(self.depthwise_kernel.shape))
        if self.bias is not None:
            self.bias.add_grad(g.dbias)  # type: ignore[arg-type]
        return g.dx if g.dx is not None else unused_input_grad(x.shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            **self._common_config(),
            "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }


class SeparableConv1D(_Depthwise):
    """Keras's SeparableConv1D: a depthwise convolution (strides, padding and dilation apply here)
    then a pointwise one to ``filters`` channels, with the bias and activation."""

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: Any = None,
        dilation_rate: Any = 1,
        depth_multiplier: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        pointwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        depthwise_regularizer: Any = None,
        pointwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        depthwise_constraint: Any = None,
        pointwise_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.filters = positive_int(filters, f"SeparableConv1D {self.name!r}", "filters")
        self._setup(kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier, activation, use_bias)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.pointwise_constraint = constraints.get(pointwise_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape: Shape) -> None:
        c = self._channels(input_shape)
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel", (self.kernel_size, c, self.depth_multiplier), self.depthwise_initializer,
            self.depthwise_regularizer, constraint=self.depthwise_constraint,
        )  # fmt: skip
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel", (1, c * self.depth_multiplier, self.filters), self.pointwise_initializer,
            self.pointwise_regularizer, constraint=self.pointwise_constraint,
        )  # fmt: skip
        self.bias = (
            self.add_weight(
                "bias", (self.filters,), self.bias_initializer, self.bias_regularizer, constraint=self.bias_constraint
            )  # fmt: skip
            if self.use_bias
            else None
        )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        steps = input_shape[0]
        return (None if steps is None else self._length(int(steps)), self.filters)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, self._who, "inputs")
        z = kernels.conv1d_forward(x, self._grouped(), None, **self._depthwise_opts())
        split = needs_input(self.activation)
        y = kernels.conv1d_forward(z, self.pointwise_kernel.value, None if self.bias is None else self.bias.value,
                                   activation="linear" if split else self.activation)  # fmt: skip
        out = kernels.activation(y, self.activation) if split else y
        return out, ((x, z, y) if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        x, z, y = ctx
        act = self.activation
        if needs_input(act):
            dy, act = kernels.activation_backward_from_input(y, dy, act), "linear"
        gp = kernels.conv1d_backward(z, self.pointwise_kernel.value, y, dy, activation=act, use_bias=self.use_bias)
        self.pointwise_kernel.add_grad(gp.dkernel)
        if self.bias is not None:
            self.bias.add_grad(gp.dbias)  # type: ignore[arg-type]
        gd = kernels.conv1d_backward(x, self._grouped(), z, gp.dx, use_bias=False, need_dx=need_dx,
                                     **self._depthwise_opts())  # fmt: skip
        self.depthwise_kernel.add_grad(gd.dkernel.reshape(self.depthwise_kernel.shape))
        return gd.dx if gd.dx is not None else unused_input_grad(x.shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            **self._common_config(),
            "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
            "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
            "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
            "pointwise_constraint": constraints.serialize(self.pointwise_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }
