"""Converters of the convolution and pooling layers: Conv1D, DepthwiseConv1D, SeparableConv1D,
Conv1DTranspose, Max/AveragePooling1D and the global poolings (a masked GlobalAveragePooling1D
averages each sample's valid steps, as seqcore does).

seqcore is channels-last ``(batch, steps, channels)``; ONNX's ``Conv`` is channels-first, so each
convolution sits between two Transposes. ``same`` padding is TensorFlow's: the output has
``ceil(steps / strides)`` steps and the padding that needs, ``total // 2`` on the left and the odd cell
on the right. With strides 1 that is ``dilation * (kernel - 1)`` whatever the length: explicit pads.
With strides > 1 it depends on the length: ``auto_pad=SAME_UPPER`` (the same rule) without dilation,
and a Pad computed in the graph from the input's length with dilation (ONNX Runtime refuses
``auto_pad`` with dilation > 1; seqcore allows strides and dilation together, Keras does not)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ... import layers as L
from ._base import Builder, Call, activation, arr, one, register


def _channels_first(g: Builder, layer: Any, x: str, hint: str, body: Callable[[str], str]) -> str:
    """Runs ``body`` on channels-first ``x``, transposing in and out for channels_last layers."""
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return body(x)
    return g.transpose(body(g.transpose(x, [0, 2, 1], hint)), [0, 2, 1], hint)


def _same_pad(g: Builder, xc: str, strides: int, span: int, hint: str) -> str:
    """Zero-pads channels-first ``xc`` (B, C, T) for a strided "same" window of ``span`` steps:
    ``total = max((ceil(T / strides) - 1) * strides + span - T, 0)``, ``total // 2`` on the left."""
    t = g.dim(xc, 2, hint)
    s = g.ints([strides])
    out = g.op("Div", [g.op("Add", [t, g.ints([strides - 1])], hint), s], hint)  # ceil(T / strides)
    last = g.op("Mul", [g.op("Sub", [out, g.ints([1])], hint), s], hint)
    need = g.op("Sub", [g.op("Add", [last, g.ints([span])], hint), t], hint)
    total = g.op("Max", [need, g.ints([0])], hint)
    left = g.op("Div", [total, g.ints([2])], hint)
    right = g.op("Sub", [total, left], hint)
    pads = g.op("Concat", [g.ints([0, 0]), left, g.ints([0, 0]), right], hint, axis=0)
    return g.op("Pad", [xc, pads], hint)


def _conv(g: Builder, xc: str, w: np.ndarray, bias: np.ndarray | None, layer: Any, hint: str, groups: int = 1,
          windowed: bool = True) -> str:  # fmt: skip
    """ONNX Conv of channels-first ``xc`` with ONNX-layout kernel ``w`` (out, in/groups, k) and the
    layer's strides, dilation and padding (``windowed=False``: a pointwise convolution)."""
    k = int(w.shape[2])
    strides, dilation = (int(layer.strides), int(layer.dilation_rate)) if windowed else (1, 1)
    padding = layer.padding if windowed else "valid"
    reach = dilation * (k - 1)
    attrs: dict[str, Any] = dict(kernel_shape=[k], strides=[strides], dilations=[dilation], group=groups)
    if padding == "same" and strides == 1:
        attrs["pads"] = [reach // 2, reach - reach // 2]
    elif padding == "same" and dilation == 1:
        attrs["auto_pad"] = "SAME_UPPER"
    elif padding == "same":
        xc = _same_pad(g, xc, strides, reach + 1, hint)
        attrs["pads"] = [0, 0]
    elif padding == "causal":
        attrs["pads"] = [reach, 0]
    else:
        attrs["pads"] = [0, 0]
    ins = [xc, g.const(np.ascontiguousarray(w), f"{layer.name}/kernel")]
    if bias is not None:
        ins.append(g.const(bias, f"{layer.name}/bias"))
    return g.op("Conv", ins, hint, **attrs)


@register(L.Conv1D)
@one
def _conv1d(g: Builder, c: Call) -> str:
    layer = c.layer
    w = arr(layer.kernel).transpose(2, 1, 0)  # (kernel, in/groups, filters) -> (filters, in/groups, kernel)
    bias = arr(layer.bias) if layer.use_bias else None
    y = _channels_first(g, layer, c.x, c.hint, lambda xc: _conv(g, xc, w, bias, layer, c.hint, int(layer.groups)))
    return activation(g, layer.activation, y, c.hint, layer)


@register(L.DepthwiseConv1D)
@one
def _depthwise(g: Builder, c: Call) -> str:
    """A grouped convolution, one group per input channel (output channel ``c * multiplier + m``)."""
    layer = c.layer
    w = layer._grouped().transpose(2, 1, 0)  # (k, 1, C*M) -> (C*M, 1, k)
    bias = arr(layer.bias) if layer.bias is not None else None
    groups = int(layer.depthwise_kernel.shape[1])
    y = _channels_first(g, layer, c.x, c.hint, lambda xc: _conv(g, xc, w, bias, layer, c.hint, groups))
    return activation(g, layer.activation, y, c.hint, layer)


@register(L.SeparableConv1D)
@one
def _separable(g: Builder, c: Call) -> str:
    """The depthwise convolution (strides, padding, dilation; no bias), then the pointwise one with
    the bias and the activation."""
    layer = c.layer
    wd = layer._grouped().transpose(2, 1, 0)
    groups = int(layer.depthwise_kernel.shape[1])
    wp = arr(layer.pointwise_kernel).transpose(2, 1, 0)  # (1, C*M, filters) -> (filters, C*M, 1)
    bias = arr(layer.bias) if layer.bias is not None else None

    def body(xc: str) -> str:
        z = _conv(g, xc, wd, None, layer, c.hint, groups)
        return _conv(g, z, wp, bias, layer, c.hint, windowed=False)

    return activation(g, layer.activation, _channels_first(g, layer, c.x, c.hint, body), c.hint, layer)


@register(L.Conv1DTranspose)
@one
def _conv_transpose(g: Builder, c: Call) -> str:
    """ONNX ConvTranspose: ``out[t * strides + j * dilation - pad_left] += x[t] . kernel[j]`` as
    seqcore computes it. Keras's output length is ``(steps - 1) * strides + span - D`` for a ``D``
    that does not depend on the length: ``D >= 0`` is cropped as pads (``D // 2`` on the left, as
    TensorFlow's same), ``D < 0`` added at the end as ``output_padding``."""
    layer = c.layer
    w = arr(layer.kernel).transpose(2, 1, 0)  # (k, filters, in) -> (in, filters, k)
    k, s, d = int(layer.kernel_size), int(layer.strides), int(layer.dilation_rate)
    span = (k - 1) * d + 1
    probe = 8
    crop = (probe - 1) * s + span - int(layer._out_length(probe))
    pads, extra = ([crop // 2, crop - crop // 2], 0) if crop >= 0 else ([0, 0], -crop)
    ins = [g.const(np.ascontiguousarray(w), f"{layer.name}/kernel")]
    if layer.use_bias:
        ins.append(g.const(arr(layer.bias), f"{layer.name}/bias"))

    def body(xc: str) -> str:
        return g.op("ConvTranspose", [xc, *ins], c.hint, kernel_shape=[k], strides=[s], dilations=[d], pads=pads,
                    output_padding=[extra])  # fmt: skip

    return activation(g, layer.activation, _channels_first(g, layer, c.x, c.hint, body), c.hint, layer)


@register(L.MaxPooling1D, L.AveragePooling1D)
@one
def _pool(g: Builder, c: Call) -> str:
    """ONNX's pooling: padded cells are -inf for the max and not counted in the average, as in seqcore."""
    layer = c.layer
    op_type = "MaxPool" if isinstance(layer, L.MaxPooling1D) else "AveragePool"
    attrs: dict[str, Any] = dict(kernel_shape=[layer.pool_size], strides=[layer.strides],
                                 auto_pad="SAME_UPPER" if layer.padding == "same" else "VALID")  # fmt: skip
    return _channels_first(g, layer, c.x, c.hint, lambda xc: g.op(op_type, [xc], c.hint, **attrs))


@register(L.GlobalMaxPooling1D, L.GlobalAveragePooling1D)
@one
def _global_pool(g: Builder, c: Call) -> str:
    layer, x, hint = c.layer, c.x, c.hint
    axis = 2 if layer.data_format == "channels_first" else 1
    if isinstance(layer, L.GlobalMaxPooling1D):
        return g.reduce("ReduceMax", x, [axis], layer.keepdims, hint)
    if not isinstance(c.mask, str):
        return g.reduce("ReduceMean", x, [axis], layer.keepdims, hint)
    # masked: the mean of each sample's valid steps (0 for a sample with none)
    valid = g.cast(g.steps_below(x, axis, c.mask, hint), "float", hint)  # (B, T)
    weight = g.unsqueeze(valid, [1 if axis == 2 else 2], hint)
    total = g.reduce("ReduceSum", g.op("Mul", [x, weight], hint), [axis], layer.keepdims, hint)
    count = g.op("Max", [g.cast(c.mask, "float", hint), g.const(1.0, "one")], hint)
    count = g.unsqueeze(count, [1, 2] if layer.keepdims else [1], hint)
    return g.op("Div", [total, count], hint)
