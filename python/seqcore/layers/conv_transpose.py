"""``Conv1DTranspose``: Keras's transposed 1-D convolution (the adjoint of Conv1D), with its output
lengths, padding, ``output_padding``, dilation and weight layout ``kernel (kernel_size, filters,
in_channels)``.

Each kernel tap is one GEMM over every input step (``x · kernel[j]ᵀ``) whose rows are added at
output steps ``t·strides + j·dilation - pad_left``; within one tap those steps are distinct, so the
add is a plain indexed add. Backward gathers the same rows: ``dx += dz[rows] · kernel[j]`` and
``dkernel[j] = dz[rows]ᵀ · x``. The GEMMs are NumPy's (BLAS), not a fused Rust kernel: a transposed
convolution is rare next to Conv1D in sequence models, and this is exact and not slow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import constraints, initializers, kernels, regularizers
from .._validation import ALL_ACTIVATIONS, activation_name, as_f32
from .base import Layer, Shape, shape_str, unused_input_grad
from .convolutional import _one_int
from .core import needs_input, positive_int


def _non_negative_int(value: Any, who: str, what: str) -> int:
    v = value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"{who}: {what} must be an int >= 0; received {value!r}.")
    return int(v)


class Conv1DTranspose(Layer):
    """Keras's Conv1DTranspose (``data_format="channels_last"``)."""

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        output_padding: Any = None,
        data_format: Any = None,
        dilation_rate: Any = 1,
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
        who = self._who
        self.filters = positive_int(filters, who, "filters")
        self.kernel_size = _one_int(kernel_size, who, "kernel_size")
        self.strides = _one_int(strides, who, "strides")
        self.dilation_rate = _one_int(dilation_rate, who, "dilation_rate")
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"{who}: padding must be 'valid' or 'same'; received {padding!r}.")
        self.padding = padding.lower()
        if data_format not in (None, "channels_last"):
            raise ValueError(
                f"{who}: data_format={data_format!r} is not supported; seqcore's sequences are channels-last "
                f"(transpose (batch, channels, steps) input with x.transpose(0, 2, 1))."
            )
        self.data_format = "channels_last"
        if self.strides > 1 and self.dilation_rate > 1:
            raise ValueError(
                f"{who}: `strides > 1` not supported in conjunction with `dilation_rate > 1` (as in Keras). "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}"
            )
        op = None if output_padding is None else _non_negative_int(output_padding, who, "output_padding")
        self.output_padding = op
        if self.output_padding is not None and self.output_padding >= self.strides:
            raise ValueError(
                f"{who}: `output_padding` must be strictly less than `strides`; received output_padding="
                f"{self.output_padding}, strides={self.strides}."
            )
        dk = (self.kernel_size - 1) * self.dilation_rate + 1
        if self.padding == "same" and self.output_padding == 0 and dk % 2 == 0:
            # Keras's length is then (steps - 1)·strides, which a 'same' convolution maps back to
            # steps - 1, not steps: TensorFlow refuses it at call time; say so here, with the fix.
            raise ValueError(
                f"{who}: padding='same' with output_padding=0 and an even (dilated) kernel size {dk} gives an output "
                f"that is not the transpose of any 'same' convolution of the input; use output_padding >= 1 (or "
                f"None), or an odd kernel_size."
            )
        self.activation = activation_name(activation, who, ALL_ACTIVATIONS)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    @property
    def _who(self) -> str:
        return f"Conv1DTranspose {self.name!r}"

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(
                f"{self._who}: expects (batch, steps, channels) inputs with known channels; received shape "
                f"{shape_str((None, *input_shape))}."
            )
        cin = int(input_shape[-1])  # type: ignore[arg-type]
        self.kernel = self.add_weight("kernel", (self.kernel_size, self.filters, cin), self.kernel_initializer,
                                      self.kernel_regularizer, constraint=self.kernel_constraint)  # fmt: skip
        self.bias = (
            self.add_weight(
                "bias", (self.filters,), self.bias_initializer, self.bias_regularizer, constraint=self.bias_constraint
            )  # fmt: skip
            if self.use_bias
            else None
        )

    def _out_length(self, steps: int) -> int:
        """Keras's output length (``_get_output_shape_given_tf_padding``)."""
        dk = (self.kernel_size - 1) * self.dilation_rate + 1
        s, op = self.strides, self.output_padding
        if self.padding == "valid":
            return (steps - 1) * s + dk + (max(dk, s) - dk if op is None else op)
        return steps * s if op is None else (steps - 1) * s + dk % 2 + op

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        steps = input_shape[0]
        return (None if steps is None else self._out_length(int(steps)), self.filters)

    def _taps(self, steps: int, out_len: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Per tap: (tap, input steps that land inside the output, their output steps)."""
        dk = (self.kernel_size - 1) * self.dilation_rate + 1
        pad_left = 0
        if self.padding == "same":  # TF's SAME padding of the convolution this is the adjoint of
            pad_left = max((steps - 1) * self.strides + dk - out_len, 0) // 2
        t = np.arange(steps)
        taps = []
        for j in range(self.kernel_size):
            pos = t * self.strides + j * self.dilation_rate - pad_left
            ok = (pos >= 0) & (pos < out_len)
            taps.append((j, t[ok], pos[ok]))
        return taps

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, self._who, "inputs")
        if x.ndim != 3:
            raise ValueError(f"{self._who}: expects (batch, steps, channels) inputs; received shape {x.shape}.")
        b, steps, _ = x.shape
        out_len = self._out_length(steps)
        z = np.zeros((b, out_len, self.filters), np.float32)
        k = self.kernel.value
        for j, src, dst in self._taps(steps, out_len):
            if len(src):
                z[:, dst] += x[:, src] @ k[j].T
        if self.bias is not None:
            z += self.bias.value
        split = needs_input(self.activation)
        y = kernels.activation(z, self.activation) if self.activation != "linear" else z
        ctx = (x, z if split else y) if training else None
        return np.ascontiguousarray(y, dtype=np.float32), ctx

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        x, kept = ctx
        dy = as_f32(dy, self._who, "dy")
        if self.activation == "linear":
            dz = dy
        elif needs_input(self.activation):
            dz = kernels.activation_backward_from_input(kept, dy, self.activation)
        else:
            dz = kernels.activation_backward(kept, dy, self.activation)
        b, steps, cin = x.shape
        k = self.kernel.value
        dk = np.zeros_like(k)
        dx = np.zeros_like(x) if need_dx else None
        for j, src, dst in self._taps(steps, dz.shape[1]):
            if not len(src):
                continue
            g = dz[:, dst]
            dk[j] = g.reshape(-1, self.filters).T @ x[:, src].reshape(-1, cin)
            if dx is not None:
                dx[:, src] += g @ k[j]
        self.kernel.add_grad(dk)
        if self.bias is not None:
            self.bias.add_grad(dz.sum(axis=(0, 1), dtype=np.float64).astype(np.float32))
        if dx is None:
            return unused_input_grad(x.shape)
        return dx

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "output_padding": self.output_padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }
