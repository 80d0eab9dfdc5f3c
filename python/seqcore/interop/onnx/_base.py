"""What every layer family's converter shares: the graph builder (nodes, initializers, unique value
names, the graph inputs and outputs of stateful layers), the record of one layer call (:class:`Call`),
the registry of converters by layer class, refusals, and the activation functions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_INT_MIN = np.iinfo(np.int64).min
_INT_MAX = np.iinfo(np.int64).max
Shape = tuple[Any, ...]


def onnx_module() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "ONNX export needs the `onnx` package: pip install 'seqcore[onnx]' (or pip install onnx)."
        ) from None
    return onnx


def arr(w: Any) -> np.ndarray:
    """A weight (or array) as float32."""
    return np.asarray(getattr(w, "value", w), dtype=np.float32)


class Value(str):
    """The name of an ONNX value (a graph tensor), as opposed to a constant, in a call's arguments."""

    __slots__ = ()


class Builder:
    """Collects nodes and initializers, naming every value uniquely; holds the static shape of every
    value the walkers know (``shapes``) and the extra graph inputs/outputs of stateful layers."""

    def __init__(self, onnx: Any, opset: int):
        self.onnx = onnx
        self.h = onnx.helper
        self.opset = opset
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.shapes: dict[str, Shape] = {}
        self.state_inputs: list[tuple[str, int]] = []
        self.state_outputs: list[tuple[str, str]] = []
        self.stateful_calls: dict[int, str] = {}
        self._names: set[str] = set()
        self._consts: dict[tuple[Any, ...], str] = {}
        #: the walker's ``emit(g, call)``, for layers that contain layers (TimeDistributed)
        self.emit: Callable[[Builder, Call], list[str]] = _no_emit

    # ----- names ------------------------------------------------------------------------------------
    def fresh(self, hint: str) -> Value:
        base = "".join(c if c.isalnum() or c in "_./" else "_" for c in hint) or "v"
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return Value(name)

    def reserve(self, name: str, what: str) -> Value:
        """``name`` exactly (a graph input or output), or ValueError when it is taken."""
        if name in self._names:
            raise ValueError(
                f"to_onnx: the {what} name {name!r} is used twice in the graph; give the layers or inputs unique names."
            )
        self._names.add(name)
        return Value(name)

    # ----- constants and nodes ----------------------------------------------------------------------
    def const(self, value: Any, hint: str, dtype: Any = np.float32) -> Value:
        a = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        small = a.size <= 16
        key = (a.dtype.str, a.shape, a.tobytes()) if small else None
        if key is not None and key in self._consts:
            return Value(self._consts[key])
        name = self.fresh(hint)
        self.inits.append(self.onnx.numpy_helper.from_array(a, name))
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values: Any, hint: str = "shape") -> Value:
        return self.const(np.asarray(values, np.int64).reshape(-1), hint, np.int64)

    def op(self, op_type: str, inputs: list[str], hint: str, n_out: int = 1, **attrs: Any) -> Any:
        outs = [self.fresh(f"{hint}/{op_type}" + (f"_{i}" if n_out > 1 else "")) for i in range(n_out)]
        self.nodes.append(self.h.make_node(op_type, inputs, outs, name=self.fresh(f"{hint}/{op_type}_node"), **attrs))
        return outs if n_out > 1 else outs[0]

    # ----- small helpers over ops whose form changed across opsets --------------------------------
    def squeeze(self, x: str, axes: list[int], hint: str) -> Value:
        return self.op("Squeeze", [x, self.ints(axes, "axes")], hint)

    def unsqueeze(self, x: str, axes: list[int], hint: str) -> Value:
        return self.op("Unsqueeze", [x, self.ints(axes, "axes")], hint)

    def reduce(self, op_type: str, x: str, axes: list[int] | None, keepdims: bool, hint: str) -> Value:
        """``op_type`` over ``axes`` (None: every axis)."""
        if axes is None:
            return self.op(op_type, [x], hint, keepdims=int(keepdims))
        if self.opset >= 18 or op_type == "ReduceSum":
            return self.op(op_type, [x, self.ints(axes, "axes")], hint, keepdims=int(keepdims))
        return self.op(op_type, [x], hint, axes=axes, keepdims=int(keepdims))

    def flip(self, x: str, axis: int, hint: str) -> Value:
        return self.op("Slice", [x, self.ints([-1]), self.ints([_INT_MIN]), self.ints([axis]), self.ints([-1])], hint)

    def transpose(self, x: str, perm: list[int], hint: str) -> Value:
        return self.op("Transpose", [x], hint, perm=perm)

    def dim(self, x: str, axis: int, hint: str) -> Value:
        """The size of ``x``'s axis ``axis`` as a 1-element int64 tensor."""
        return self.op("Slice", [self.op("Shape", [x], hint), self.ints([axis]), self.ints([axis + 1]),
                                 self.ints([0])], hint)  # fmt: skip

    def dims(self, x: str, start: int, end: int | None, hint: str) -> Value:
        """``shape(x)[start:end]`` as an int64 tensor."""
        stop = self.ints([_INT_MAX if end is None else end])
        return self.op("Slice", [self.op("Shape", [x], hint), self.ints([start]), stop, self.ints([0])], hint)

    def cast(self, x: str, to: str, hint: str) -> Value:
        tp = self.onnx.TensorProto
        return self.op("Cast", [x], hint, to={"float": tp.FLOAT, "int32": tp.INT32, "int64": tp.INT64,
                                              "bool": tp.BOOL}[to])  # fmt: skip

    def steps_below(self, x: str, axis: int, lengths: str, hint: str) -> Value:
        """Bool ``(B, T)``: step ``t < lengths[b]``, ``T`` the size of ``x``'s axis ``axis``."""
        t = self.cast(self.squeeze(self.dim(x, axis, hint), [0], hint), "int32", hint)
        steps = self.op("Range", [self.const(0, "zero_i", np.int32), t, self.const(1, "one_i", np.int32)], hint)
        return self.op("Less", [self.unsqueeze(steps, [0], hint), self.unsqueeze(lengths, [1], hint)], hint)

    # ----- stateful layers --------------------------------------------------------------------------
    def state_input(self, name: str, units: int) -> Value:
        v = self.reserve(name, "state input")
        self.state_inputs.append((v, int(units)))
        return v

    def state_output(self, name: str, value: str) -> None:
        self.state_outputs.append((name, value))


def _no_emit(g: Builder, call: Call) -> list[str]:
    raise AssertionError("Builder.emit is set by the exporter")


@dataclass
class Call:
    """One call of ``layer`` in the graph being built: its tensor inputs (value names), the other
    call arguments (graph tensors as :class:`Value`, constants as they are), the static shapes
    (batch axis first), the mask the layer sees, and the masks of its outputs once converted."""

    layer: Any
    xs: list[str]
    in_shapes: list[Shape]
    out_shapes: list[Shape]
    hint: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: what seqcore passes as ``lengths=``: an int32 ``(batch,)`` value of per-sample lengths, a
    #: list of them (attention layers: query, value, key), or None
    mask: Any = None
    #: masks of the tensor arguments but the first, by name (MultiHeadAttention's value and key)
    arg_masks: dict[str, Any] = field(default_factory=dict)
    #: set by converters whose outputs' masks are not the default (see the walker)
    out_masks: list[Any] | None = None

    @property
    def x(self) -> str:
        return self.xs[0]

    @property
    def rank(self) -> int:
        return len(self.in_shapes[0]) if self.in_shapes else 0


Converter = Callable[[Builder, Call], list[str]]


@dataclass
class Handler:
    fn: Converter
    kwargs: frozenset[str]


#: converters by exact layer class (a subclass may compute something else: it is refused)
HANDLERS: dict[type, Handler] = {}
#: layer classes that are refused, with why
REFUSED: dict[type, str] = {}


def register(*classes: type, kwargs: Iterable[str] = ()) -> Callable[[Converter], Converter]:
    """Registers a converter for the layer ``classes``, accepting the call arguments ``kwargs``."""

    def deco(fn: Converter) -> Converter:
        for cls in classes:
            HANDLERS[cls] = Handler(fn, frozenset(kwargs))
        return fn

    return deco


def refuse(layer: Any, why: str) -> ValueError:
    return ValueError(f"to_onnx: layer {layer.name!r} ({type(layer).__name__}) cannot be exported to ONNX: {why}")


def one(fn: Callable[[Builder, Call], str]) -> Converter:
    """A converter of one output from one that returns its value."""

    def wrapped(g: Builder, call: Call) -> list[str]:
        return [fn(g, call)]

    wrapped.__name__ = getattr(fn, "__name__", "converter")
    wrapped.__doc__ = fn.__doc__
    return wrapped


# ----- activations ---------------------------------------------------------------------------------
def activation(g: Builder, name: str, x: str, hint: str, layer: Any, axis: int = -1) -> str:
    if name == "linear":
        return x
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus", "softsign": "Softsign",
              "exponential": "Exp"}  # fmt: skip
    if name in simple:
        return g.op(simple[name], [x], hint)
    if name == "softmax":
        return g.op("Softmax", [x], hint, axis=axis)
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
        return gelu(g, x, False, hint)
    raise refuse(layer, f"activation {name!r} has no ONNX form here.")


def gelu(g: Builder, x: str, approximate: bool, hint: str) -> str:
    if approximate:  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        x3 = g.op("Mul", [g.op("Mul", [x, x], hint), x], hint)
        inner = g.op("Add", [x, g.op("Mul", [x3, g.const(0.044715, "c")], hint)], hint)
        t = g.op("Tanh", [g.op("Mul", [inner, g.const(np.sqrt(2.0 / np.pi), "c")], hint)], hint)
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        t = g.op("Erf", [g.op("Mul", [x, g.const(1.0 / np.sqrt(2.0), "c")], hint)], hint)
    half_x = g.op("Mul", [x, g.const(0.5, "half")], hint)
    return g.op("Mul", [half_x, g.op("Add", [t, g.const(1.0, "one")], hint)], hint)


def softmax(g: Builder, x: str, axes: list[int], hint: str) -> str:
    """Softmax over one axis (ONNX's op) or several (exp(x - max) / sum)."""
    if len(axes) == 1:
        return g.op("Softmax", [x], hint, axis=int(axes[0]))
    e = g.op("Exp", [g.op("Sub", [x, g.reduce("ReduceMax", x, axes, True, hint)], hint)], hint)
    return g.op("Div", [e, g.reduce("ReduceSum", e, axes, True, hint)], hint)


def l2_normalize(g: Builder, x: str, axes: list[int], hint: str) -> str:
    """Keras's ``ops.normalize``: ``x * min(1 / sqrt(sum(x²)), 1e12)`` over ``axes``."""
    sq = g.reduce("ReduceSum", g.op("Mul", [x, x], hint), axes, True, hint)
    inv = g.op("Reciprocal", [g.op("Sqrt", [sq], hint)], hint)
    return g.op("Mul", [x, g.op("Min", [inv, g.const(1e12, "c")], hint)], hint)
