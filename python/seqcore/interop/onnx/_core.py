"""Converters of the core layers: Dense, the activation layers, Embedding and Masking (which start
masks), the inference-identity layers, reshaping, TimeDistributed, the merge layers (Dot included)
and the ``seqcore.ops`` calls recorded in Functional graphs."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import layers as L
from ...ops import Op
from ._base import _INT_MAX, _INT_MIN, Builder, Call, activation, arr, gelu, one, refuse, register, softmax
from ._base import l2_normalize as _l2


# ----- Dense and activations --------------------------------------------------------------------------
def dense(g: Builder, layer: Any, x: str, hint: str) -> str:
    y = g.op("MatMul", [x, g.const(arr(layer.kernel), f"{layer.name}/kernel")], hint)
    if layer.use_bias:
        y = g.op("Add", [y, g.const(arr(layer.bias), f"{layer.name}/bias")], hint)
    return activation(g, layer.activation, y, hint, layer)


@register(L.Dense)
@one
def _dense(g: Builder, c: Call) -> str:
    """MatMul + Add on any rank (so TimeDistributed(Dense) is the same)."""
    return dense(g, c.layer, c.x, c.hint)


@register(L.Activation)
@one
def _activation_layer(g: Builder, c: Call) -> str:
    return activation(g, c.layer.activation, c.x, c.hint, c.layer)


@register(L.ReLU)
@one
def _relu(g: Builder, c: Call) -> str:
    layer, x, hint = c.layer, c.x, c.hint
    mx, slope, th = layer.max_value, float(layer.negative_slope), float(layer.threshold)
    if th == 0.0 and slope == 0.0:
        y = g.op("Relu", [x], hint)
    else:
        below = g.op("Mul", [g.op("Sub", [x, g.const(th, "c")], hint), g.const(slope, "c")], hint)
        y = g.op("Where", [g.op("GreaterOrEqual", [x, g.const(th, "c")], hint), x, below], hint)
    if mx is not None:
        y = g.op("Min", [y, g.const(float(mx), "c")], hint)
    return y


@register(L.LeakyReLU)
@one
def _leaky_relu(g: Builder, c: Call) -> str:
    return g.op("LeakyRelu", [c.x], c.hint, alpha=float(c.layer.negative_slope))


@register(L.ELU)
@one
def _elu(g: Builder, c: Call) -> str:
    return g.op("Elu", [c.x], c.hint, alpha=float(c.layer.alpha))


@register(L.PReLU)
@one
def _prelu(g: Builder, c: Call) -> str:
    """``max(x, 0) - alpha * max(-x, 0)``: ONNX's PRelu, alpha (per-sample shape) broadcast."""
    return g.op("PRelu", [c.x, g.const(arr(c.layer.alpha), f"{c.layer.name}/alpha")], c.hint)


@register(L.Softmax)
@one
def _softmax_layer(g: Builder, c: Call) -> str:
    axis = c.layer.axis
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    return softmax(g, c.x, [int(a) for a in axes], c.hint)


# ----- layers that are the identity at inference ----------------------------------------------------
@register(L.Dropout, L.SpatialDropout1D, L.GaussianNoise, L.GaussianDropout, L.AlphaDropout, L.ActivityRegularization,
          L.InputLayer)  # fmt: skip
def _identity(g: Builder, c: Call) -> list[str]:
    """Dropout and the noise layers act in training only; an activity regularizer adds a loss."""
    return [c.x]


# ----- layers that start a mask -----------------------------------------------------------------------
def _lengths(g: Builder, valid: str, hint: str) -> str:
    """Per-sample lengths, int32 ``(batch,)``, from a ``(batch, time)`` 0/1 float tensor: the number of
    valid steps, which is the mask exactly when the batch is post-padded (see the package docs)."""
    return g.cast(g.reduce("ReduceSum", valid, [1], False, hint), "int32", hint)


@register(L.Masking)
@one
def _masking(g: Builder, c: Call) -> str:
    """Zeroes the steps whose features all equal ``mask_value`` and starts the mask (as lengths)."""
    layer, x, hint = c.layer, c.x, c.hint
    if c.rank != 3:
        raise refuse(layer, f"masking needs (batch, timesteps, features) input; received {c.in_shapes[0]} (seqcore "
                            f"refuses this input too).")  # fmt: skip
    differs = g.op("Not", [g.op("Equal", [x, g.const(layer.mask_value, f"{layer.name}/mask_value")], hint)], hint)
    keep = g.reduce("ReduceMax", g.cast(differs, "float", hint), [-1], False, hint)  # (B, T) 0/1
    c.out_masks = [_lengths(g, keep, hint)]
    return g.op("Mul", [x, g.unsqueeze(keep, [-1], hint)], hint)


@register(L.Embedding)
@one
def _embedding(g: Builder, c: Call) -> str:
    """A Gather of the table rows; with ``mask_zero`` the mask counts the ids that are not 0."""
    layer, hint = c.layer, c.hint
    ids = g.cast(c.x, "int64", hint)
    if layer.mask_zero:
        if c.rank != 2:
            raise refuse(layer, f"mask_zero=True needs (batch, timesteps) ids; received {c.in_shapes[0]} (seqcore "
                                f"refuses this input too).")  # fmt: skip
        nonzero = g.op("Not", [g.op("Equal", [ids, g.ints([0], "zero_id")], hint)], hint)
        c.out_masks = [_lengths(g, g.cast(nonzero, "float", hint), hint)]
    return g.op("Gather", [g.const(arr(layer.embeddings), f"{layer.name}/embeddings"), ids], hint, axis=0)


# ----- reshaping ------------------------------------------------------------------------------------------
@register(L.Flatten)
@one
def _flatten(g: Builder, c: Call) -> str:
    return g.op("Flatten", [c.x], c.hint, axis=1)


@register(L.Reshape)
@one
def _reshape(g: Builder, c: Call) -> str:
    return g.op("Reshape", [c.x, g.ints([0, *c.layer.target_shape])], c.hint)


@register(L.Permute)
@one
def _permute(g: Builder, c: Call) -> str:
    return g.transpose(c.x, [0, *c.layer.dims], c.hint)


@register(L.RepeatVector)
@one
def _repeat_vector(g: Builder, c: Call) -> str:
    return g.op("Tile", [g.unsqueeze(c.x, [1], c.hint), g.ints([1, c.layer.n, 1])], c.hint)


@register(L.UpSampling1D)
@one
def _upsampling(g: Builder, c: Call) -> str:
    """Each step repeated ``size`` times along axis 1 (any rank)."""
    x, hint, r = c.x, c.hint, c.rank
    tiled = g.op("Tile", [g.unsqueeze(x, [2], hint), g.ints([1, 1, c.layer.size] + [1] * (r - 2))], hint)
    shape = g.op("Concat", [g.dims(x, 0, 1, hint), g.ints([-1]), g.dims(x, 2, None, hint)], hint, axis=0)
    return g.op("Reshape", [tiled, shape], hint)


@register(L.ZeroPadding1D)
@one
def _zero_padding(g: Builder, c: Call) -> str:
    layer = c.layer
    pads = [0] * (2 * c.rank)
    pads[layer._axis], pads[c.rank + layer._axis] = layer.padding
    return g.op("Pad", [c.x, g.ints(pads)], c.hint)


@register(L.Cropping1D)
@one
def _cropping(g: Builder, c: Call) -> str:
    lo, hi = c.layer.cropping
    return g.op("Slice", [c.x, g.ints([lo]), g.ints([-hi if hi else _INT_MAX]), g.ints([1])], c.hint)


@register(L.TimeDistributed)
@one
def _time_distributed(g: Builder, c: Call) -> str:
    """The wrapped layer on the time axis folded into the batch (shapes read in the graph, so every
    axis may vary), then unfolded; a wrapped Dense is a MatMul on every step already."""
    inner, x, hint = c.layer.layer, c.x, c.hint
    if type(inner) is L.Dense:
        return dense(g, inner, x, hint)
    in_shape, out_shape = c.in_shapes[0], c.out_shapes[0]
    folded = g.op("Reshape", [x, g.op("Concat", [g.ints([-1]), g.dims(x, 2, None, hint)], hint, axis=0)], hint)
    inner_in: tuple[Any, ...] = (None, *in_shape[2:])
    g.shapes[folded] = inner_in
    sub = Call(inner, [folded], [inner_in], [(None, *out_shape[2:])], f"{hint}/{inner.name}")
    (y,) = g.emit(g, sub)
    shape = g.op("Concat", [g.dims(x, 0, 2, hint), g.dims(y, 1, None, hint)], hint, axis=0)
    return g.op("Reshape", [y, shape], hint)


# ----- merging --------------------------------------------------------------------------------------------
@register(L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum, L.Concatenate)
@one
def _merge(g: Builder, c: Call) -> str:
    kind, xs, hint = type(c.layer).__name__, c.xs, c.hint
    if kind == "Concatenate":
        return g.op("Concat", xs, hint, axis=int(c.layer.axis))
    if kind == "Subtract":
        return g.op("Sub", xs, hint)
    if kind == "Multiply":
        y = xs[0]
        for other in xs[1:]:
            y = g.op("Mul", [y, other], hint)
        return y
    return g.op({"Add": "Sum", "Average": "Mean", "Maximum": "Max", "Minimum": "Min"}[kind], xs, hint)


@register(L.Dot)
@one
def _dot(g: Builder, c: Call) -> str:
    """Keras's batch_dot as an ONNX Einsum over the layer's own subscripts (normalized first when
    ``normalize=True``); a result of the batch axis alone gains Keras's trailing axis of 1."""
    layer, (a, b), hint = c.layer, c.xs, c.hint
    ra, rb = (len(s) for s in c.in_shapes)
    ia, ib = layer._resolved(ra, rb, c.in_shapes)
    if layer.normalize:
        a, b = _l2(g, a, [ia], hint), _l2(g, b, [ib], hint)
    sa, sb, so, expand = layer._spec(ra, rb)
    y = g.op("Einsum", [a, b], hint, equation=f"{sa},{sb}->{so}")
    return g.unsqueeze(y, [1], hint) if expand else y


# ----- seqcore.ops in a graph --------------------------------------------------------------------------
_BINARY = {"add": "Add", "subtract": "Sub", "multiply": "Mul", "divide": "Div", "matmul": "MatMul"}
_UNARY = {"negative": "Neg", "abs": "Abs", "sqrt": "Sqrt", "exp": "Exp", "log": "Log", "relu": "Relu",
          "sigmoid": "Sigmoid", "tanh": "Tanh"}  # fmt: skip
_REDUCE = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax", "min": "ReduceMin"}


@register(Op)
@one
def _seqcore_op(g: Builder, c: Call) -> str:
    """A ``seqcore.ops`` call recorded in a graph (``x + y``, ``ops.tanh(x)``, ``x[:, -1]``, ...)."""
    layer, hint = c.layer, c.hint
    it = iter(c.xs)
    args = [next(it) if v is None else g.const(arr(v), f"{layer.name}/const") for v in layer.operands]
    o, op = layer.options, layer.op
    if op in _BINARY:
        return g.op(_BINARY[op], args, hint)
    if op in _UNARY:
        return g.op(_UNARY[op], args, hint)
    if op == "square":
        return g.op("Mul", [args[0], args[0]], hint)
    if op == "softmax":
        axis = o.get("axis", -1)
        return softmax(g, args[0], [int(axis)] if isinstance(axis, (int, np.integer)) else list(axis), hint)
    if op == "gelu":
        return gelu(g, args[0], bool(o.get("approximate", True)), hint)
    if op == "leaky_relu":
        return g.op("LeakyRelu", args, hint, alpha=float(o["negative_slope"]))
    if op in _REDUCE:
        axis = o.get("axis")
        axes = None if axis is None else [int(axis)] if isinstance(axis, (int, np.integer)) else [int(a) for a in axis]
        return g.reduce(_REDUCE[op], args[0], axes, bool(o.get("keepdims", False)), hint)
    if op == "concatenate":
        return g.op("Concat", args, hint, axis=int(o.get("axis", 0)))
    if op == "stack":
        axis = int(o.get("axis", 0))
        return g.op("Concat", [g.unsqueeze(a, [axis], hint) for a in args], hint, axis=axis)
    if op == "reshape":
        return g.op("Reshape", [args[0], g.ints(list(o["newshape"]))], hint)
    if op == "transpose":
        axes = o.get("axes")
        if axes is None:
            return g.op("Transpose", args, hint)
        return g.op("Transpose", args, hint, perm=[int(a) for a in axes])
    if op == "expand_dims":
        return g.unsqueeze(args[0], [int(o["axis"])], hint)
    if op == "squeeze":
        axis = o.get("axis")
        if axis is None:  # every axis of size 1 when it runs, as NumPy (the batch axis of a batch of 1 too)
            return g.op("Squeeze", [args[0]], hint)
        axes = [int(axis)] if isinstance(axis, (int, np.integer)) else [int(a) for a in axis]
        return g.squeeze(args[0], axes, hint)
    if op == "getitem":
        return _getitem(g, c, args[0], o["key"])
    raise refuse(layer, f"ops.{op} has no ONNX conversion here.")


def _getitem(g: Builder, c: Call, x: str, key: Any) -> str:
    """Basic indexing (ints, slices, None, ...) as one Slice, a Squeeze of the int axes and an
    Unsqueeze of the new ones."""
    rank, hint = c.rank, c.hint
    items = list(key) if isinstance(key, tuple) else [key]
    for k in items:
        if not (k is None or k is Ellipsis or isinstance(k, (int, np.integer, slice))) or isinstance(k, bool):
            raise refuse(c.layer, f"indexing with {k!r} (advanced indexing) has no ONNX conversion here; use ints, "
                                  f"slices, None and ....")  # fmt: skip
    n_real = sum(1 for k in items if k is not None and k is not Ellipsis)
    if Ellipsis in items:
        i = items.index(Ellipsis)
        items[i : i + 1] = [slice(None)] * (rank - n_real)
    starts, ends, axes, steps, dropped, new = [], [], [], [], [], []
    axis = out = 0
    for k in items:
        if k is None:
            new.append(out)
            out += 1
            continue
        if isinstance(k, slice):
            step = 1 if k.step is None else int(k.step)
            lo = k.start if k.start is not None else (0 if step > 0 else -1)
            hi = k.stop if k.stop is not None else (_INT_MAX if step > 0 else _INT_MIN)
            if (k.start, k.stop, step) != (None, None, 1):
                starts.append(int(lo))
                ends.append(int(hi))
                axes.append(axis)
                steps.append(step)
            out += 1
        else:
            i = int(k)
            starts.append(i)
            ends.append(i + 1 if i != -1 else _INT_MAX)
            axes.append(axis)
            steps.append(1)
            dropped.append(axis)
        axis += 1
    y = x
    if axes:
        y = g.op("Slice", [y, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)], hint)
    if dropped:
        y = g.squeeze(y, dropped, hint)
    if new:
        y = g.unsqueeze(y, new, hint)
    return y
