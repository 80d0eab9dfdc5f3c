"""Converters of the normalization layers: LayerNormalization (ONNX's op over trailing axes from opset
17, else its formula), RMSNormalization, BatchNormalization (inference: one multiply-add with the moving
statistics folded in; a mask changes nothing there), GroupNormalization and UnitNormalization."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import layers as L
from ._base import Builder, Call, arr, l2_normalize, one, register


def _axes(layer: Any, rank: int) -> list[int]:
    raw = getattr(layer, "_axis_arg", layer.axis)
    raw = [raw] if isinstance(raw, (int, np.integer)) else list(raw)
    return sorted(int(a) % rank for a in raw)


def _broadcast(v: np.ndarray, axes: list[int], rank: int) -> np.ndarray:
    """A per-axes weight (the normalized axes' shape) reshaped to broadcast over a rank-``rank`` input."""
    shape = [1] * rank
    for a, d in zip(axes, v.shape, strict=True):
        shape[a] = d
    return v.reshape(shape)


def _row_norm(g: Builder, x: str, axes: list[int], eps: float, center_stats: bool, center_out: bool,
              hint: str) -> str:  # fmt: skip
    """``(x - mean) / sqrt(var + eps)`` over ``axes`` (RMS: ``x / sqrt(mean(x²) + eps)``; Keras's
    deprecated rms_scaling: ``x / sqrt(var + eps)``)."""
    if center_stats:
        xc = g.op("Sub", [x, g.reduce("ReduceMean", x, axes, True, hint)], hint)
        second = g.reduce("ReduceMean", g.op("Mul", [xc, xc], hint), axes, True, hint)
    else:
        xc = x
        second = g.reduce("ReduceMean", g.op("Mul", [x, x], hint), axes, True, hint)
    rstd = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [second, g.const(eps, "eps")], hint)], hint)], hint)
    return g.op("Mul", [xc if center_out else x, rstd], hint)


@register(L.LayerNormalization)
@one
def _layer_norm(g: Builder, c: Call) -> str:
    layer, x, hint, rank = c.layer, c.x, c.hint, c.rank
    axes = _axes(layer, rank)
    shape = [int(d) for d in layer._built_shape]  # the normalized axes' sizes (no weight holds them without scale)
    gamma = arr(layer.gamma) if layer.gamma is not None else None
    beta = arr(layer.beta) if layer.beta is not None else None
    if axes == list(range(axes[0], rank)) and not layer.rms_scaling and g.opset >= 17:  # ONNX's op since 17
        ins = [x, g.const(gamma if gamma is not None else np.ones(shape, np.float32), f"{layer.name}/gamma")]
        if beta is not None:
            ins.append(g.const(beta, f"{layer.name}/beta"))
        return g.op("LayerNormalization", ins, hint, axis=axes[0], epsilon=float(layer.epsilon))
    y = _row_norm(g, x, axes, float(layer.epsilon), True, not layer.rms_scaling, hint)
    if gamma is not None:
        y = g.op("Mul", [y, g.const(_broadcast(gamma, axes, rank), f"{layer.name}/gamma")], hint)
    if beta is not None:
        y = g.op("Add", [y, g.const(_broadcast(beta, axes, rank), f"{layer.name}/beta")], hint)
    return y


@register(L.RMSNormalization)
@one
def _rms_norm(g: Builder, c: Call) -> str:
    layer, rank = c.layer, c.rank
    axes = _axes(layer, rank)
    y = _row_norm(g, c.x, axes, float(layer.epsilon), False, False, c.hint)
    return g.op("Mul", [y, g.const(_broadcast(arr(layer.scale), axes, rank), f"{layer.name}/scale")], c.hint)


@register(L.BatchNormalization)
@one
def _batch_norm(g: Builder, c: Call) -> str:
    layer, rank = c.layer, c.rank
    mean, var = arr(layer.moving_mean).astype(np.float64), arr(layer.moving_variance).astype(np.float64)
    gamma = arr(layer.gamma).astype(np.float64) if layer.scale else 1.0
    beta = arr(layer.beta).astype(np.float64) if layer.center else 0.0
    s = gamma / np.sqrt(var + layer.epsilon)
    t = beta - mean * s
    ax = int(layer.axis) % rank
    bshape = [-1] + [1] * (rank - 1 - ax)
    y = g.op("Mul", [c.x, g.const(s.reshape(bshape), f"{layer.name}/scale")], c.hint)
    return g.op("Add", [y, g.const(t.reshape(bshape), f"{layer.name}/shift")], c.hint)


@register(L.GroupNormalization)
@one
def _group_norm(g: Builder, c: Call) -> str:
    """Channels moved last and split into (groups, channels/groups); each sample normalized over
    every other axis within its group; gamma and beta per channel."""
    layer, x, hint, rank = c.layer, c.x, c.hint, c.rank
    ax = int(layer.axis) % rank
    perm = [i for i in range(rank) if i != ax] + [ax]
    xm = g.transpose(x, perm, hint) if ax != rank - 1 else x
    ch = int(c.in_shapes[0][ax])
    groups = int(layer.groups)
    grouped = g.op("Reshape", [xm, g.ints([0, -1, groups, ch // groups])], hint)  # (B, rest, G, C/G)
    y = _row_norm(g, grouped, [1, 3], float(layer.epsilon), True, True, hint)
    y = g.op("Reshape", [y, g.op("Shape", [xm], hint)], hint)
    if layer.gamma is not None:
        y = g.op("Mul", [y, g.const(arr(layer.gamma), f"{layer.name}/gamma")], hint)
    if layer.beta is not None:
        y = g.op("Add", [y, g.const(arr(layer.beta), f"{layer.name}/beta")], hint)
    return g.transpose(y, [int(i) for i in np.argsort(perm)], hint) if ax != rank - 1 else y


@register(L.UnitNormalization)
@one
def _unit_norm(g: Builder, c: Call) -> str:
    return l2_normalize(g, c.x, _axes(c.layer, c.rank), c.hint)
