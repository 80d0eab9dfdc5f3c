"""ONNX export: a seqcore ``Sequential`` or Functional model as an ONNX graph that ONNX Runtime runs.

``to_onnx(model, filepath=None, opset=17)`` (and ``model.export(filepath, format="onnx")``, Keras 3's
method) builds the graph with the ``onnx`` package (``onnx.helper``; checked by ``onnx.checker``) and,
given a path, writes it atomically. The ``onnx`` package is the optional extra ``seqcore[onnx]``;
nothing here imports it until asked.

What a layer becomes:

* Dense -> ``MatMul`` + ``Add`` (on any rank, so TimeDistributed(Dense) is the same), Conv1D ->
  ``Conv`` between two ``Transpose``\\ s (valid, TF ``same`` = ``SAME_UPPER``, causal as left pads),
  pooling -> ``MaxPool``/``AveragePool``/``Reduce*``;
* LSTM / GRU / SimpleRNN -> ONNX's ``LSTM`` / ``GRU`` / ``RNN`` node on time-major input (Keras's
  gate order i, f, c, o becomes ONNX's i, o, f, c; GRU's z, r, h is the same in both, and
  ``reset_after=True`` is ``linear_before_reset=1``); ``go_backwards`` is ``direction="reverse"``
  with the outputs flipped back to Keras's order; Bidirectional is the two directions merged as
  Keras merges them; ``initial_state`` tensors become ``initial_h``/``initial_c``;
* BatchNormalization (inference) -> one multiply-add with the statistics folded in;
  LayerNormalization -> ONNX ``LayerNormalization``; activations -> their ONNX ops (``gelu`` exact,
  via ``Erf``); Dropout and the noise layers -> nothing (identity at inference).

The batch axis of every input is dynamic, and so is the time axis (axis 1) of every sequence input
(rank >= 3, or integer ids for an Embedding). Anything ONNX cannot express here is refused with a
``ValueError`` naming the layer and why: masks (ONNX's ``sequence_lens`` describes post-padding only,
and ONNX zero-fills the padded outputs where Keras repeats the last one), stateful layers (export a
copy built with ``stateful=False`` and pass the states as ``initial_state``), and layers without an
ONNX form (Lambda, attention, ...).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ..layers.base import Layer

SUPPORTED_OPSETS = range(17, 22)
_INT_MIN = np.iinfo(np.int64).min
_INT_MAX = np.iinfo(np.int64).max


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "ONNX export needs the `onnx` package: pip install 'seqcore[onnx]' (or pip install onnx)."
        ) from None
    return onnx


def _arr(w: Any) -> np.ndarray:
    return np.asarray(getattr(w, "value", w), dtype=np.float32)


class _Builder:
    """Collects nodes and initializers, naming every value uniquely."""

    def __init__(self, onnx: Any, opset: int):
        self.onnx = onnx
        self.h = onnx.helper
        self.opset = opset
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._names: set[str] = set()
        self._consts: dict[tuple[Any, ...], str] = {}

    def fresh(self, hint: str) -> str:
        base = "".join(c if c.isalnum() or c in "_./" else "_" for c in hint) or "v"
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    def reserve(self, name: str) -> str:
        self._names.add(name)
        return name

    def const(self, value: Any, hint: str, dtype: Any = np.float32) -> str:
        a = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        small = a.size <= 16
        key = (a.dtype.str, a.shape, a.tobytes()) if small else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh(hint)
        self.inits.append(self.onnx.numpy_helper.from_array(a, name))
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values: Any, hint: str = "shape") -> str:
        return self.const(np.asarray(values, np.int64).reshape(-1), hint, np.int64)

    def op(self, op_type: str, inputs: list[str], hint: str, n_out: int = 1, **attrs: Any) -> Any:
        outs = [self.fresh(f"{hint}/{op_type}" + (f"_{i}" if n_out > 1 else "")) for i in range(n_out)]
        self.nodes.append(self.h.make_node(op_type, inputs, outs, name=self.fresh(f"{hint}/{op_type}_node"), **attrs))
        return outs if n_out > 1 else outs[0]

    # ----- small helpers over ops whose form changed across opsets --------------------------------
    def squeeze(self, x: str, axes: list[int], hint: str) -> str:
        return self.op("Squeeze", [x, self.ints(axes, "axes")], hint)

    def unsqueeze(self, x: str, axes: list[int], hint: str) -> str:
        return self.op("Unsqueeze", [x, self.ints(axes, "axes")], hint)

    def reduce(self, op_type: str, x: str, axes: list[int], keepdims: bool, hint: str) -> str:
        if self.opset >= 18 or op_type == "ReduceSum":
            return self.op(op_type, [x, self.ints(axes, "axes")], hint, keepdims=int(keepdims))
        return self.op(op_type, [x], hint, axes=axes, keepdims=int(keepdims))

    def flip_time(self, x: str, axis: int, hint: str) -> str:
        return self.op("Slice", [x, self.ints([-1]), self.ints([_INT_MIN]), self.ints([axis]), self.ints([-1])], hint)

    def transpose(self, x: str, perm: list[int], hint: str) -> str:
        return self.op("Transpose", [x], hint, perm=perm)


def _refuse(layer: Any, why: str) -> ValueError:
    return ValueError(f"to_onnx: layer {layer.name!r} ({type(layer).__name__}) cannot be exported to ONNX: {why}")


# ----- activations ---------------------------------------------------------------------------------
def _activation(g: _Builder, name: str, x: str, hint: str, layer: Any) -> str:
    if name == "linear":
        return x
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus", "softsign": "Softsign",
              "exponential": "Exp"}  # fmt: skip
    if name in simple:
        return g.op(simple[name], [x], hint)
    if name == "softmax":
        return g.op("Softmax", [x], hint, axis=-1)
    if name == "elu":
        return g.op("Elu", [x], hint, alpha=1.0)
    if name == "selu":
        return g.op("Selu", [x], hint)  # ONNX's default alpha and gamma are Keras's constants
    if name == "leaky_relu":
        return g.op("LeakyRelu", [x], hint, alpha=0.2)  # keras.activations.leaky_relu's slope
    if name == "relu6":
        return g.op("Clip", [x, g.const(0.0, "zero"), g.const(6.0, "six")], hint)
    if name == "hard_sigmoid":
        return g.op("HardSigmoid", [x], hint, alpha=1.0 / 6.0, beta=0.5)
    if name == "silu":
        return g.op("Mul", [x, g.op("Sigmoid", [x], hint)], hint)
    if name == "hard_silu":
        return g.op("Mul", [x, g.op("HardSigmoid", [x], hint, alpha=1.0 / 6.0, beta=0.5)], hint)
    if name == "mish":
        return g.op("Mul", [x, g.op("Tanh", [g.op("Softplus", [x], hint)], hint)], hint)
    if name == "gelu":  # keras.activations.gelu: the exact form
        return _gelu(g, x, False, hint)
    raise _refuse(layer, f"activation {name!r} has no ONNX form here.")


def _gelu(g: _Builder, x: str, approximate: bool, hint: str) -> str:
    if approximate:  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        x3 = g.op("Mul", [g.op("Mul", [x, x], hint), x], hint)
        inner = g.op("Add", [x, g.op("Mul", [x3, g.const(0.044715, "c")], hint)], hint)
        t = g.op("Tanh", [g.op("Mul", [inner, g.const(np.sqrt(2.0 / np.pi), "c")], hint)], hint)
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        t = g.op("Erf", [g.op("Mul", [x, g.const(1.0 / np.sqrt(2.0), "c")], hint)], hint)
    half_x = g.op("Mul", [x, g.const(0.5, "half")], hint)
    return g.op("Mul", [half_x, g.op("Add", [t, g.const(1.0, "one")], hint)], hint)


# ONNX RNN ops take their activations by name, with alpha/beta where the function has them.
_RNN_ACTIVATIONS: dict[str, tuple[str, list[float], list[float]]] = {
    "tanh": ("Tanh", [], []), "sigmoid": ("Sigmoid", [], []), "relu": ("Relu", [], []),
    "hard_sigmoid": ("HardSigmoid", [1.0 / 6.0], [0.5]), "linear": ("Affine", [1.0], [0.0]),
    "softsign": ("Softsign", [], []), "softplus": ("Softplus", [], []), "elu": ("Elu", [1.0], []),
    "leaky_relu": ("LeakyRelu", [0.2], []),
}  # fmt: skip


def _rnn_activation_attrs(layer: Any, names: list[str]) -> dict[str, Any]:
    acts: list[str] = []
    alphas: list[float] = []
    betas: list[float] = []
    for n in names:
        if n not in _RNN_ACTIVATIONS:
            raise _refuse(layer, f"the recurrent op has no activation {n!r} in ONNX.")
        a, al, be = _RNN_ACTIVATIONS[n]
        acts.append(a)
        alphas += al
        betas += be
    attrs: dict[str, Any] = {"activations": acts}
    if alphas:
        attrs["activation_alpha"] = alphas
    if betas:
        attrs["activation_beta"] = betas
    return attrs


# ----- recurrent layers ----------------------------------------------------------------------------
def _rnn_kind(layer: Any) -> str:
    return {"LSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN"}.get(type(layer).__name__, "")


def _rnn_weights(layer: Any, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX's W (gates*H, F), R (gates*H, H) and B (2*gates*H,) for one direction."""
    k, r = _arr(layer.kernel), _arr(layer.recurrent_kernel)
    h = layer.units
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind]
    if kind == "LSTM":  # Keras i, f, c, o -> ONNX i, o, f, c
        order = [0, 3, 1, 2]
        k = np.concatenate([k[:, j * h:(j + 1) * h] for j in order], axis=1)
        r = np.concatenate([r[:, j * h:(j + 1) * h] for j in order], axis=1)
    wb = np.zeros(gates * h, np.float32)
    rb = np.zeros(gates * h, np.float32)
    if layer.use_bias:
        b = _arr(layer.bias)
        if kind == "GRU" and getattr(layer, "reset_after", False):
            wb, rb = b[0], b[1]
        elif kind == "LSTM":
            wb = np.concatenate([b[j * h:(j + 1) * h] for j in [0, 3, 1, 2]])
        else:
            wb = b.reshape(-1)
    return k.T.copy(), r.T.copy(), np.concatenate([wb, rb])


def _rnn_direction(g: _Builder, layer: Any, x_tm: str, init: list[str], reverse: bool, hint: str) -> tuple[str, list[str]]:
    """One recurrent layer over time-major ``x_tm`` (T, B, F): (Y in time order (T, B, H), states)."""
    kind = _rnn_kind(layer)
    if getattr(layer, "stateful", False):
        raise _refuse(
            layer, "a stateful layer carries state between calls, which an ONNX graph cannot. Export a copy built with "
            "stateful=False (same weights) and pass the states in as initial_state= inputs of a Functional model.")  # fmt: skip
    W, R, B = _rnn_weights(layer, kind)
    ins = [x_tm, g.const(W[None], f"{layer.name}/W"), g.const(R[None], f"{layer.name}/R"),
           g.const(B[None], f"{layer.name}/B"), ""]  # fmt: skip
    n_states = 2 if kind == "LSTM" else 1
    if init:
        if len(init) != n_states:
            raise _refuse(layer, f"expected {n_states} initial state tensor(s); received {len(init)}.")
        ins += [g.unsqueeze(s, [0], hint) for s in init]
    acts = [layer.recurrent_activation, layer.activation] if kind != "RNN" else [layer.activation]
    if kind == "LSTM":
        acts.append(layer.activation)
    attrs = _rnn_activation_attrs(layer, acts)
    attrs.update(hidden_size=int(layer.units), direction="reverse" if reverse else "forward")
    if kind == "GRU":
        attrs["linear_before_reset"] = int(bool(layer.reset_after))
    outs = g.op(kind, ins, hint, n_out=1 + n_states, **attrs)
    y = g.squeeze(outs[0], [1], hint)  # (T, 1, B, H) -> (T, B, H)
    states = [g.squeeze(s, [0], hint) for s in outs[1:]]
    return y, states


def _rnn_layer(g: _Builder, layer: Any, x: str, init: list[str], hint: str) -> list[str]:
    x_tm = g.transpose(x, [1, 0, 2], hint)
    y, states = _rnn_direction(g, layer, x_tm, init, bool(layer.go_backwards), hint)
    if layer.return_sequences:
        if layer.go_backwards:  # Keras returns the outputs in processing order
            y = g.flip_time(y, 0, hint)
        out = g.transpose(y, [1, 0, 2], hint)
    else:
        out = states[0]
    return [out, *states] if layer.return_state else [out]


def _bidirectional(g: _Builder, layer: Any, x: str, init: list[str], hint: str) -> list[str]:
    fwd, bwd = layer.forward_layer, layer.backward_layer
    x_tm = g.transpose(x, [1, 0, 2], hint)
    half = len(init) // 2
    yf, sf = _rnn_direction(g, fwd, x_tm, init[:half], bool(fwd.go_backwards), hint + "/forward")
    yb, sb = _rnn_direction(g, bwd, x_tm, init[half:], bool(bwd.go_backwards), hint + "/backward")
    if layer.return_sequences:
        # Keras order of each layer, then the backward one flipped again in time (as Keras does):
        # the forward one is flipped when it runs backwards; the backward one only when it does not.
        if fwd.go_backwards:
            yf = g.flip_time(yf, 0, hint)
        if not bwd.go_backwards:
            yb = g.flip_time(yb, 0, hint)
        of, ob = g.transpose(yf, [1, 0, 2], hint), g.transpose(yb, [1, 0, 2], hint)
    else:
        of, ob = sf[0], sb[0]
    mode = layer.merge_mode
    if mode is None:
        outs = [of, ob]
    elif mode == "concat":
        outs = [g.op("Concat", [of, ob], hint, axis=-1)]
    elif mode == "sum":
        outs = [g.op("Add", [of, ob], hint)]
    elif mode == "mul":
        outs = [g.op("Mul", [of, ob], hint)]
    else:  # ave
        outs = [g.op("Mul", [g.op("Add", [of, ob], hint), g.const(0.5, "half")], hint)]
    return outs + sf + sb if fwd.return_state else outs


# ----- the other layers ----------------------------------------------------------------------------
def _dense(g: _Builder, layer: Any, x: str, hint: str) -> str:
    y = g.op("MatMul", [x, g.const(_arr(layer.kernel), f"{layer.name}/kernel")], hint)
    if layer.use_bias:
        y = g.op("Add", [y, g.const(_arr(layer.bias), f"{layer.name}/bias")], hint)
    return _activation(g, layer.activation, y, hint, layer)


def _conv_layout(g: _Builder, layer: Any, x: str, hint: str, body: Callable[[str], str]) -> str:
    """Runs ``body`` on channels-first ``x``, transposing in and out for channels_last layers."""
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return body(x)
    return g.transpose(body(g.transpose(x, [0, 2, 1], hint)), [0, 2, 1], hint)


def _conv1d(g: _Builder, layer: Any, x: str, hint: str) -> str:
    k = _arr(layer.kernel)  # (kernel, in/groups, filters) -> ONNX (filters, in/groups, kernel)
    w = g.const(np.ascontiguousarray(k.transpose(2, 1, 0)), f"{layer.name}/kernel")
    ins = [w] + ([g.const(_arr(layer.bias), f"{layer.name}/bias")] if layer.use_bias else [])
    attrs: dict[str, Any] = dict(kernel_shape=[layer.kernel_size], strides=[layer.strides],
                                 dilations=[layer.dilation_rate], group=layer.groups)  # fmt: skip
    reach = layer.dilation_rate * (layer.kernel_size - 1)
    dynamic_same = False
    if layer.padding == "same" and layer.strides == 1:
        # seqcore's (TensorFlow's) same: total = dilation * (kernel - 1), total // 2 on the left and
        # the odd cell on the right. Explicit pads, as ONNX Runtime refuses auto_pad with dilation > 1.
        attrs["pads"] = [reach // 2, reach - reach // 2]
    elif layer.padding == "same" and layer.dilation_rate == 1:
        attrs["auto_pad"] = "SAME_UPPER"  # the padding depends on the length; the same rule as above
    elif layer.padding == "same":
        dynamic_same = True  # strides and dilation > 1 (seqcore allows it, Keras does not): pads in-graph
        attrs["pads"] = [0, 0]
    elif layer.padding == "causal":
        attrs["pads"] = [reach, 0]
    else:
        attrs["pads"] = [0, 0]

    def body(xc: str) -> str:
        if dynamic_same:
            xc = _same_pad(g, xc, layer.strides, reach + 1, hint)
        return g.op("Conv", [xc, *ins], hint, **attrs)

    return _activation(g, layer.activation, _conv_layout(g, layer, x, hint, body), hint, layer)


def _same_pad(g: _Builder, xc: str, strides: int, span: int, hint: str) -> str:
    """Zero-pads channels-first ``xc`` (B, C, T) for a strided "same" window of ``span`` steps:
    ``total = max((ceil(T / strides) - 1) * strides + span - T, 0)``, ``total // 2`` on the left."""
    t = g.op("Slice", [g.op("Shape", [xc], hint), g.ints([2]), g.ints([3]), g.ints([0])], hint)
    s = g.ints([strides])
    out = g.op("Div", [g.op("Add", [t, g.ints([strides - 1])], hint), s], hint)  # ceil(T / strides)
    need = g.op("Sub", [g.op("Add", [g.op("Mul", [g.op("Sub", [out, g.ints([1])], hint), s], hint),
                                     g.ints([span])], hint), t], hint)  # fmt: skip
    total = g.op("Max", [need, g.ints([0])], hint)
    left = g.op("Div", [total, g.ints([2])], hint)
    right = g.op("Sub", [total, left], hint)
    pads = g.op("Concat", [g.ints([0, 0]), left, g.ints([0, 0]), right], hint, axis=0)
    return g.op("Pad", [xc, pads], hint)


def _pool(g: _Builder, layer: Any, x: str, hint: str) -> str:
    op_type = "MaxPool" if type(layer).__name__.startswith("Max") else "AveragePool"
    attrs = dict(kernel_shape=[layer.pool_size], strides=[layer.strides],
                 auto_pad="SAME_UPPER" if layer.padding == "same" else "VALID")  # fmt: skip
    return _conv_layout(g, layer, x, hint, lambda xc: g.op(op_type, [xc], hint, **attrs))


def _global_pool(g: _Builder, layer: Any, x: str, hint: str) -> str:
    op_type = "ReduceMax" if type(layer).__name__.startswith("GlobalMax") else "ReduceMean"
    axis = 2 if layer.data_format == "channels_first" else 1
    return g.reduce(op_type, x, [axis], layer.keepdims, hint)


def _norm_axes(layer: Any, rank: int) -> list[int]:
    raw = getattr(layer, "_axis_arg", layer.axis)
    raw = [raw] if isinstance(raw, (int, np.integer)) else list(raw)
    return sorted(int(a) % rank for a in raw)


def _layer_norm(g: _Builder, layer: Any, x: str, rank: int, hint: str) -> str:
    axes = _norm_axes(layer, rank)
    if axes != list(range(axes[0], rank)):
        raise _refuse(layer, f"ONNX's LayerNormalization normalizes trailing axes only; this layer uses axes {axes}.")
    if layer.rms_scaling:
        raise _refuse(layer, "rms_scaling=True (Keras's deprecated option) has no ONNX form here; use RMSNormalization.")
    shape = [int(d) for d in layer._built_shape]  # the normalized axes' sizes (no weight holds them without scale)
    scale = _arr(layer.gamma) if layer.scale else np.ones(shape, np.float32)
    ins = [x, g.const(scale, f"{layer.name}/gamma")]
    if layer.center:
        ins.append(g.const(_arr(layer.beta), f"{layer.name}/beta"))
    return g.op("LayerNormalization", ins, hint, axis=axes[0], epsilon=float(layer.epsilon))


def _batch_norm(g: _Builder, layer: Any, x: str, rank: int, hint: str) -> str:
    mean, var = _arr(layer.moving_mean).astype(np.float64), _arr(layer.moving_variance).astype(np.float64)
    gamma = _arr(layer.gamma).astype(np.float64) if layer.scale else 1.0
    beta = _arr(layer.beta).astype(np.float64) if layer.center else 0.0
    s = gamma / np.sqrt(var + layer.epsilon)
    t = beta - mean * s
    ax = int(layer.axis) % rank
    bshape = [-1] + [1] * (rank - 1 - ax)
    y = g.op("Mul", [x, g.const(s.reshape(bshape), f"{layer.name}/scale")], hint)
    return g.op("Add", [y, g.const(t.reshape(bshape), f"{layer.name}/shift")], hint)


def _relu_layer(g: _Builder, layer: Any, x: str, hint: str) -> str:
    mx, slope, th = layer.max_value, float(layer.negative_slope), float(layer.threshold)
    if th == 0.0 and slope == 0.0:
        y = g.op("Relu", [x], hint)
    else:
        below = g.op("Mul", [g.op("Sub", [x, g.const(th, "c")], hint), g.const(slope, "c")], hint)
        y = g.op("Where", [g.op("GreaterOrEqual", [x, g.const(th, "c")], hint), x, below], hint)
    if mx is not None:
        y = g.op("Min", [y, g.const(float(mx), "c")], hint)
    return y


def _merge(g: _Builder, layer: Any, xs: list[str], hint: str) -> str:
    kind = type(layer).__name__
    if kind == "Concatenate":
        return g.op("Concat", xs, hint, axis=int(layer.axis))
    if kind == "Subtract":
        return g.op("Sub", xs, hint)
    if kind == "Multiply":
        y = xs[0]
        for other in xs[1:]:
            y = g.op("Mul", [y, other], hint)
        return y
    return g.op({"Add": "Sum", "Average": "Mean", "Maximum": "Max", "Minimum": "Min"}[kind], xs, hint)


_IDENTITY = {"Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
             "InputLayer"}  # fmt: skip
_MERGES = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"}


def _time_distributed(g: _Builder, layer: Any, x: str, in_shape: tuple[Any, ...], out_shape: tuple[Any, ...],
                      hint: str) -> str:  # fmt: skip
    inner = layer.layer
    if type(inner).__name__ == "Dense":
        return _dense(g, inner, x, hint)  # MatMul applies to every step already
    rest_in, rest_out = in_shape[2:], out_shape[2:]
    if any(d is None for d in (*rest_in, *rest_out)):
        raise _refuse(layer, f"the per-step shapes must be known; received input {in_shape}, output {out_shape}.")
    folded = g.op("Reshape", [x, g.ints([-1, *rest_in])], hint)
    (y,) = _emit_layer(g, inner, [folded], {}, [(None, *rest_in)], [(None, *rest_out)], hint + "/inner")
    lead = g.op("Slice", [g.op("Shape", [x], hint), g.ints([0]), g.ints([2]), g.ints([0])], hint)
    shape = g.op("Concat", [lead, g.ints(list(rest_out))], hint, axis=0)
    return g.op("Reshape", [y, shape], hint)


def _emit_layer(g: _Builder, layer: Any, xs: list[str], kwargs: dict[str, Any], in_shapes: list[tuple[Any, ...]],
                out_shapes: list[tuple[Any, ...]], hint: str) -> list[str]:  # fmt: skip
    """The ONNX values of one call of ``layer`` on ``xs`` (``kwargs``: other tensor arguments, as
    value names, e.g. ``initial_state``)."""
    from ..models.model import Model

    kind = type(layer).__name__
    x = xs[0] if xs else ""
    rank = len(in_shapes[0]) if in_shapes else 0
    if isinstance(layer, Model):
        return _emit_model(g, layer, xs, hint)
    if getattr(layer, "mask_zero", False) or kind == "Masking":
        raise _refuse(
            layer, "masks are not exported: ONNX's sequence_lens describes post-padding only, and ONNX zero-fills "
            "padded outputs where Keras repeats the last one. Export a model without the mask and give it "
            "unpadded (or equal-length) sequences.")  # fmt: skip
    init = kwargs.get("initial_state") or []
    init = [init] if isinstance(init, str) else list(init)
    if kind in _IDENTITY:
        return [x]
    if kind == "Dense":
        return [_dense(g, layer, x, hint)]
    if kind == "Activation":
        return [_activation(g, layer.activation, x, hint, layer)]
    if _rnn_kind(layer):
        return _rnn_layer(g, layer, x, init, hint)
    if kind == "Bidirectional":
        return _bidirectional(g, layer, x, init, hint)
    if kind == "Conv1D":
        return [_conv1d(g, layer, x, hint)]
    if kind in ("MaxPooling1D", "AveragePooling1D"):
        return [_pool(g, layer, x, hint)]
    if kind in ("GlobalMaxPooling1D", "GlobalAveragePooling1D"):
        return [_global_pool(g, layer, x, hint)]
    if kind == "Embedding":
        ids = g.op("Cast", [x], hint, to=g.onnx.TensorProto.INT64)
        return [g.op("Gather", [g.const(_arr(layer.embeddings), f"{layer.name}/embeddings"), ids], hint, axis=0)]
    if kind in _MERGES:
        return [_merge(g, layer, xs, hint)]
    if kind == "Flatten":
        return [g.op("Flatten", [x], hint, axis=1)]
    if kind == "Reshape":
        return [g.op("Reshape", [x, g.ints([0, *layer.target_shape])], hint)]
    if kind == "Permute":
        return [g.transpose(x, [0, *layer.dims], hint)]
    if kind == "RepeatVector":
        return [g.op("Tile", [g.unsqueeze(x, [1], hint), g.ints([1, layer.n, 1])], hint)]
    if kind == "UpSampling1D":
        c = in_shapes[0][2]
        tiled = g.op("Tile", [g.unsqueeze(x, [2], hint), g.ints([1, 1, layer.size, 1])], hint)
        return [g.op("Reshape", [tiled, g.ints([0, -1, c])], hint)]
    if kind == "ZeroPadding1D":
        if layer.data_format == "channels_first":
            pads = [0, 0, layer.padding[0], 0, 0, layer.padding[1]]
        else:
            pads = [0, layer.padding[0], 0, 0, layer.padding[1], 0]
        return [g.op("Pad", [x, g.ints(pads)], hint)]
    if kind == "Cropping1D":
        lo, hi = layer.cropping
        return [g.op("Slice", [x, g.ints([lo]), g.ints([-hi if hi else _INT_MAX]), g.ints([1])], hint)]
    if kind == "TimeDistributed":
        return [_time_distributed(g, layer, x, in_shapes[0], out_shapes[0], hint)]
    if kind == "LayerNormalization":
        return [_layer_norm(g, layer, x, rank, hint)]
    if kind == "BatchNormalization":
        return [_batch_norm(g, layer, x, rank, hint)]
    if kind == "ReLU":
        return [_relu_layer(g, layer, x, hint)]
    if kind == "LeakyReLU":
        return [g.op("LeakyRelu", [x], hint, alpha=float(layer.negative_slope))]
    if kind == "ELU":
        return [g.op("Elu", [x], hint, alpha=float(layer.alpha))]
    if kind == "Softmax":
        if not isinstance(layer.axis, int):
            raise _refuse(layer, f"softmax over several axes {layer.axis} has no single ONNX op.")
        return [g.op("Softmax", [x], hint, axis=int(layer.axis))]
    if kind == "Op":
        return [_seqcore_op(g, layer, xs, hint)]
    raise _refuse(layer, "there is no ONNX conversion for this layer type.")


def _seqcore_op(g: _Builder, layer: Any, xs: list[str], hint: str) -> str:
    """A ``seqcore.ops`` call recorded in a graph (``x + y``, ``ops.tanh(x)``, ...)."""
    it = iter(xs)
    args = [next(it) if v is None else g.const(_arr(v), f"{layer.name}/const") for v in layer.operands]
    o, op = layer.options, layer.op
    binary = {"add": "Add", "subtract": "Sub", "multiply": "Mul", "divide": "Div", "matmul": "MatMul"}
    unary = {"negative": "Neg", "abs": "Abs", "sqrt": "Sqrt", "exp": "Exp", "log": "Log", "relu": "Relu",
             "sigmoid": "Sigmoid", "tanh": "Tanh"}  # fmt: skip
    if op in binary:
        return g.op(binary[op], args, hint)
    if op in unary:
        return g.op(unary[op], args, hint)
    if op == "square":
        return g.op("Mul", [args[0], args[0]], hint)
    if op == "softmax":
        axis = o.get("axis", -1)
        if not isinstance(axis, int):
            raise _refuse(layer, f"softmax over several axes {axis} has no single ONNX op.")
        return g.op("Softmax", args, hint, axis=axis)
    if op == "gelu":
        return _gelu(g, args[0], bool(o.get("approximate", True)), hint)
    if op == "leaky_relu":
        return g.op("LeakyRelu", args, hint, alpha=float(o["negative_slope"]))
    if op in ("sum", "mean", "max", "min"):
        axis = o.get("axis")
        if axis is None:
            raise _refuse(layer, f"ops.{op} over every axis (batch included) is not exported; give axis=.")
        axes = [axis] if isinstance(axis, int) else list(axis)
        op_type = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax", "min": "ReduceMin"}[op]
        return g.reduce(op_type, args[0], axes, bool(o.get("keepdims", False)), hint)
    if op == "concatenate":
        return g.op("Concat", args, hint, axis=int(o.get("axis", 0)))
    if op == "transpose":
        axes = o.get("axes")
        return g.op("Transpose", args, hint, **({"perm": list(axes)} if axes is not None else {}))
    if op == "expand_dims":
        return g.unsqueeze(args[0], [int(o["axis"])], hint)
    if op == "squeeze" and o.get("axis") is not None:
        axis = o["axis"]
        return g.squeeze(args[0], [axis] if isinstance(axis, int) else list(axis), hint)
    raise _refuse(layer, f"ops.{op} has no ONNX conversion here.")


# ----- walking a model -----------------------------------------------------------------------------
def _emit_model(g: _Builder, model: Any, xs: list[str], hint: str) -> list[str]:
    """The output values of ``model`` called on values ``xs``."""
    from ..models.functional import Functional
    from ..models.sequential import Sequential

    if isinstance(model, Sequential):
        shape: tuple[Any, ...] = tuple(model.input_shape)
        (x,) = xs
        for layer in model.layers:
            out_shape = (shape[0], *layer.compute_output_shape(shape[1:]))
            (x,) = _emit_layer(g, layer, [x], {}, [shape], [out_shape], f"{hint}{layer.name}")
            shape = out_shape
        return [x]
    if not isinstance(model, Functional):
        raise ValueError(
            f"to_onnx: model {model.name!r} ({type(model).__name__}) is a subclassed model, whose call() is Python "
            f"code; export a Sequential or Functional model (Model(inputs, outputs))."
        )
    values: dict[int, str] = {id(t): v for t, v in zip(model.inputs, xs, strict=True)}

    def name_of(s: Any) -> Any:
        if isinstance(s, (list, tuple)):
            return [name_of(v) for v in s]
        if isinstance(s, dict):
            return {k: name_of(v) for k, v in s.items()}
        if hasattr(s, "node") and hasattr(s, "shape"):
            return values[id(s)]
        return s

    for node in model._nodes:
        layer = node.layer
        if type(layer).__name__ == "InputLayer":
            continue
        first = node.args[0] if node.args else None
        tensors = first if isinstance(first, (list, tuple)) else [first]
        extra = [a for a in node.args[1:] if hasattr(a, "node")]
        pos = [t for t in tensors if t is not None and hasattr(t, "node")] + extra
        if type(layer).__name__ == "Op":
            pos = [t for t in node.inputs]
        kw = {k: name_of(v) for k, v in node.kwargs.items() if k in ("initial_state",)}
        for k, v in node.kwargs.items():
            if k == "mask" and v is not None:
                raise _refuse(layer, "an explicit mask= argument is not exported (masks are not, see to_onnx).")
        outs = _emit_layer(g, layer, [values[id(t)] for t in pos], kw, [tuple(t.shape) for t in pos],
                           [tuple(t.shape) for t in node.outputs], f"{hint}{layer.name}")  # fmt: skip
        if len(outs) != len(node.outputs):
            raise _refuse(layer, f"produced {len(outs)} ONNX outputs for {len(node.outputs)} graph tensors.")
        for t, v in zip(node.outputs, outs, strict=True):
            values[id(t)] = v
    return [values[id(t)] for t in model.outputs]


def _input_specs(model: Any) -> list[tuple[str, tuple[Any, ...], bool]]:
    """(name, shape with batch, feeds only Embeddings) of each model input."""
    from ..models.sequential import Sequential

    if isinstance(model, Sequential):
        if not model.layers:
            raise ValueError(f"to_onnx: model {model.name!r} has no layers.")
        try:
            shape = tuple(model.input_shape)
        except (AttributeError, ValueError):
            shape = ()
        if not shape:
            raise ValueError(
                f"to_onnx: model {model.name!r} is not built; give it an input shape (keras.Input(...) as its first "
                f"entry) or call it on data first."
            )
        return [("input_layer" if not hasattr(model, "_input_spec") else model._input_spec.name, shape,
                 type(model.layers[0]).__name__ == "Embedding")]  # fmt: skip
    names = model._input_names()
    consumers: dict[int, list[str]] = {id(t): [] for t in model.inputs}
    for node in model._nodes:
        for t in node.inputs:
            if id(t) in consumers:
                consumers[id(t)].append(type(node.layer).__name__)
    return [(n, tuple(t.shape), bool(consumers[id(t)]) and all(c == "Embedding" for c in consumers[id(t)]))
            for n, t in zip(names, model.inputs, strict=True)]  # fmt: skip


def _output_shapes(model: Any) -> list[tuple[Any, ...]]:
    from ..models.sequential import Sequential

    if isinstance(model, Sequential):
        return [tuple(model.output_shape)]
    return [tuple(t.shape) for t in model.outputs]


def build_onnx(model: Any, opset: int = 17) -> Any:
    """The ``onnx.ModelProto`` of ``model`` (checked by ``onnx.checker``)."""
    from ..models.model import Model

    onnx = _onnx()
    if not isinstance(model, Model):
        raise TypeError(f"to_onnx: expected a seqcore model (Sequential or Model); received {type(model).__name__}.")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in SUPPORTED_OPSETS:
        raise ValueError(
            f"to_onnx: opset must be an int from {SUPPORTED_OPSETS.start} to {SUPPORTED_OPSETS.stop - 1}; received "
            f"{opset!r}."
        )
    g = _Builder(onnx, opset)
    graph_inputs, xs = [], []
    for name, shape, ids in _input_specs(model):
        name = g.reserve(name)
        dims: list[Any] = ["batch" if shape[0] is None else shape[0]]
        for i, d in enumerate(shape[1:], start=1):
            dynamic_time = i == 1 and (len(shape) >= 3 or ids)
            dims.append(f"{name}_time" if dynamic_time else d if d is not None else f"{name}_dim{i}")
        dtype = onnx.TensorProto.INT32 if ids else onnx.TensorProto.FLOAT
        graph_inputs.append(onnx.helper.make_tensor_value_info(name, dtype, dims))
        xs.append(name)
    outs = _emit_model(g, model, xs, "")
    out_names = list(getattr(model, "output_names", None) or [])
    if len(out_names) != len(outs):
        out_names = ["output_0"] if len(outs) == 1 else [f"output_{i}" for i in range(len(outs))]
    graph_outputs = []
    for name, v, shape in zip(out_names, outs, _output_shapes(model), strict=True):
        oname = g.reserve(name if name not in xs else f"{name}_output")
        g.nodes.append(onnx.helper.make_node("Identity", [v], [oname], name=g.fresh(f"{oname}/Identity")))
        # Every axis but the features is symbolic: the batch and time axes follow the input's.
        dims: list[Any] = ["batch"] + [f"{oname}_dim{i}" for i in range(1, len(shape) - 1)]
        if len(shape) > 1:
            dims.append(shape[-1] if shape[-1] is not None else f"{oname}_dim{len(shape) - 1}")
        graph_outputs.append(onnx.helper.make_tensor_value_info(oname, onnx.TensorProto.FLOAT, dims))
    graph = onnx.helper.make_graph(g.nodes, model.name or "seqcore_model", graph_inputs, graph_outputs, g.inits)
    from .. import __version__

    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
                                   producer_name="seqcore", producer_version=str(__version__))  # fmt: skip
    proto.ir_version = min(proto.ir_version, 8 if opset <= 18 else 9)  # what current ONNX Runtime releases read
    onnx.checker.check_model(proto, full_check=True)
    return proto


def to_onnx(model: Any, filepath: Any = None, opset: int = 17) -> Any:
    """Exports ``model`` to ONNX; returns the ``onnx.ModelProto`` and, given ``filepath``, writes it
    there atomically (a failed export leaves no file and an existing file untouched)."""
    from ..saving import _atomic_write, _path

    proto = build_onnx(model, opset)
    if filepath is not None:
        path = _path(filepath, "to_onnx")
        if os.path.dirname(path) and not os.path.isdir(os.path.dirname(path)):
            raise FileNotFoundError(f"to_onnx: the folder of {path!r} does not exist.")
        with _atomic_write(path, "to_onnx") as f:
            f.write(proto.SerializeToString())
    return proto


def export_model(model: Layer, filepath: Any, fmt: str, **kwargs: Any) -> Any:
    """``Model.export``: Keras 3's method, for the formats seqcore writes."""
    if fmt == "onnx":
        opset = kwargs.pop("opset", 17)
        kwargs.pop("verbose", None)
        if kwargs:
            raise TypeError(f"export: unexpected keyword argument(s) {sorted(kwargs)} for format='onnx'.")
        return to_onnx(model, filepath, opset=opset)
    if fmt in ("tf_saved_model", "openvino", "litert"):
        raise ValueError(
            f"export: seqcore does not write format={fmt!r} (that needs TensorFlow / its own toolchain); it exports "
            f"ONNX: model.export({os.fspath(filepath)!r}, format='onnx'), which ONNX Runtime, OpenVINO and TensorRT "
            f"read."
        )
    raise ValueError(f"export: unknown format {fmt!r}; seqcore exports format='onnx'.")
