"""``seqcore.ops``: Keras 3's ``keras.ops`` array functions that models are written with —
``add``, ``subtract``, ``multiply``, ``divide``, ``negative``, ``matmul``, ``mean``, ``sum``, ``max``,
``concatenate``, ``stack``, ``reshape``, ``transpose``, ``expand_dims``, ``squeeze``, ``relu``,
``sigmoid``, ``tanh``, ``softmax``, ``abs``, ``square``, ``sqrt``, ``exp``, ``log`` and indexing.

On NumPy arrays they compute eagerly (float32). On symbolic tensors (``seqcore.Input`` and layer
outputs) each call records an op layer in the graph, with its gradient, so ``x + res`` or
``ops.mean(x, axis=1)`` trains inside a ``Model``. A ``Weight`` (from ``add_weight``) used in an op
receives its gradient. (The Rust kernel API is ``seqcore.kernels``.)
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

import numpy as np

from .layers.base import Layer, Weight, unique_name
from .symbolic import KerasTensor, any_symbolic, symbolic_call

__all__ = [
    "abs", "add", "concatenate", "divide", "exp", "expand_dims", "gelu", "getitem", "leaky_relu", "log", "matmul",
    "max", "mean", "min", "multiply", "negative", "relu", "reshape", "sigmoid", "softmax", "sqrt", "square",
    "squeeze", "stack", "subtract", "sum", "tanh", "transpose",
]  # fmt: skip


#: The class Keras gives each op (keras.src.ops.numpy, or .nn for relu, sigmoid and softmax): what a
#: Functional summary shows in the "Layer (type)" column, and what a Keras config names.
KERAS_CLASSES = {
    "add": "Add", "subtract": "Subtract", "multiply": "Multiply", "divide": "TrueDivide", "negative": "Negative",
    "abs": "Absolute", "square": "Square", "sqrt": "Sqrt", "exp": "Exp", "log": "Log", "relu": "Relu",
    "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax", "matmul": "Matmul", "sum": "Sum", "mean": "Mean",
    "max": "Max", "min": "Min", "concatenate": "Concatenate", "stack": "Stack", "reshape": "Reshape",
    "transpose": "Transpose", "expand_dims": "ExpandDims", "squeeze": "Squeeze", "getitem": "GetItem",
    "gelu": "Gelu", "leaky_relu": "LeakyRelu",
}  # fmt: skip


def _f32(v: Any) -> np.ndarray:
    return np.asarray(v.value if isinstance(v, Weight) else v, dtype=np.float32)


def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sums a broadcast gradient back to an operand's shape."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, d in enumerate(shape):
        if d == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return np.ascontiguousarray(g, dtype=np.float32)


class Op(Layer):
    """One ``seqcore.ops`` call in a graph: tensor operands come from the graph (``inputs``), the
    others (arrays, numbers, weights) are held here. ``fn(*values)`` computes the result and
    ``grad(values, y, dy)`` returns the gradient of every operand (None for constants)."""

    def __init__(self, op: str, fn: Callable[..., np.ndarray], grad: Callable[..., list[Any]], operands: list[Any],
                 options: dict[str, Any] | None = None, **kwargs: Any):  # fmt: skip
        super().__init__(name=kwargs.pop("name", None) or unique_name(op), **kwargs)
        self.op = op
        self.options = dict(options or {})  # the op function's other arguments (axis=, keepdims=, ...)
        self.fn = fn
        self.grad = grad
        self.operands = operands  # KerasTensor slots are None; constants and Weights are kept
        self._params = [v for v in operands if isinstance(v, Weight)]

    @property
    def weights(self) -> list[Weight]:
        return []  # a weight in an op belongs to the layer that created it

    @property
    def keras_class(self) -> str:
        return KERAS_CLASSES[self.op]

    def _values(self, xs: list[np.ndarray]) -> list[Any]:
        it = iter(xs)
        return [next(it) if v is None else v for v in self.operands]

    def symbolic_output(self, inputs: Any, **kwargs: Any) -> Any:
        xs = inputs if isinstance(inputs, list) else [inputs]
        # the shape by running the op on zeros of the operands' shapes (batch 1 for unknown dims)
        probe = [np.zeros(tuple(2 if d is None else d for d in t.shape), np.float32) for t in xs]
        try:
            y = self.fn(*[_f32(v) for v in self._values(probe)])
        except ValueError as e:
            shapes = [t.shape for t in xs]
            raise ValueError(f"ops.{self.op}: incompatible operand shapes {shapes}: {e}") from None
        batch = xs[0].shape[0]
        if y.ndim and xs[0].ndim and batch is None and y.shape[0] == 2:
            return (None, *y.shape[1:])
        return tuple(y.shape)

    def forward(self, x: Any, training: bool = False) -> tuple[np.ndarray, Any]:
        xs = x if isinstance(x, list) else [x]
        vals = [_f32(v) for v in self._values(xs)]
        y = np.asarray(self.fn(*vals), dtype=np.float32)
        return y, ((vals, y) if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> Any:
        vals, y = ctx
        gs = self.grad(vals, y, dy)
        out = []
        for slot, g in zip(self.operands, gs, strict=True):
            if slot is None:
                out.append(g)
            elif isinstance(slot, Weight) and g is not None and slot.trainable:
                slot.add_grad(np.ascontiguousarray(g, dtype=np.float32).reshape(slot.shape))
        return out if len(out) > 1 else out[0]

    def get_config(self) -> dict[str, Any]:
        """The op's name, its options and its constant operands (``None`` where a tensor goes): enough
        to record the same call again (``from_config``). A weight operand belongs to another layer and
        cannot be written here."""
        if self._params:
            raise TypeError(
                f"ops.{self.op} ({self.name!r}) computes with a weight of another layer, which a config cannot refer "
                f"to; save the weights (save_weights) and rebuild the model in code."
            )
        return {
            "name": self.name,
            "op": self.op,
            "options": {k: _encode(v) for k, v in self.options.items()},
            "operands": [None if v is None else np.asarray(v).tolist() for v in self.operands],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        return _OpCall(config)


class _OpCall:
    """An op read back from a config. Calling it on the tensors of its node records the op again,
    through the public function of the same name, so the rebuilt op has the same formula and
    gradient as the one that was saved."""

    def __init__(self, config: dict[str, Any]):
        self.name = str(config.get("name"))
        self.op = str(config.get("op"))
        if self.op not in __all__:
            raise ValueError(f"Op {self.name!r}: unknown op {self.op!r}; seqcore.ops has {sorted(__all__)}.")
        self.options = {k: _decode(v) for k, v in dict(config.get("options") or {}).items()}
        self.operands = list(config.get("operands") or [None])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise ValueError(f"Op {self.name!r}: unexpected call arguments {sorted(kwargs)} in the config.")
        from .symbolic import flatten

        tensors = iter(flatten(list(args)))
        values = [next(tensors) if v is None else np.asarray(v, np.float32) for v in self.operands]
        fn = globals()[self.op]
        out = fn(values, **self.options) if self.op in _LIST_OPS else fn(*values, **self.options)
        out.node.layer.name = self.name
        return out


_LIST_OPS = ("concatenate", "stack")  # these take their operands as one list


def _encode(v: Any) -> Any:
    """Op options as JSON: tuples as lists, and getitem's slices and Ellipsis tagged."""
    if isinstance(v, slice):
        return {"__slice__": [v.start, v.stop, v.step]}
    if v is Ellipsis:
        return {"__ellipsis__": True}
    if isinstance(v, (list, tuple)):
        return {"__tuple__": [_encode(x) for x in v]} if isinstance(v, tuple) else [_encode(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _decode(v: Any) -> Any:
    if isinstance(v, dict) and "__slice__" in v:
        return slice(*v["__slice__"])
    if isinstance(v, dict) and "__ellipsis__" in v:
        return Ellipsis
    if isinstance(v, dict) and "__tuple__" in v:
        return tuple(_decode(x) for x in v["__tuple__"])
    if isinstance(v, list):
        return [_decode(x) for x in v]
    return v


def _apply(op: str, fn: Callable[..., np.ndarray], grad: Callable[..., list[Any]], *operands: Any,
           options: dict[str, Any] | None = None) -> Any:  # fmt: skip
    if not any_symbolic(operands):
        return np.asarray(fn(*[_f32(v) for v in operands]), dtype=np.float32)
    slots = [None if isinstance(v, KerasTensor) else (v if isinstance(v, Weight) else _f32(v)) for v in operands]
    layer = Op(op, fn, grad, slots, options=options)
    tensors = [v for v in operands if isinstance(v, KerasTensor)]
    return symbolic_call(layer, tensors if len(tensors) > 1 else tensors[0], (), {})


# ----- elementwise -------------------------------------------------------------------------------
def add(x1: Any, x2: Any) -> Any:
    return _apply("add", np.add, lambda v, y, g: [_unbroadcast(g, v[0].shape), _unbroadcast(g, v[1].shape)], x1, x2)


def subtract(x1: Any, x2: Any) -> Any:
    return _apply(
        "subtract", np.subtract, lambda v, y, g: [_unbroadcast(g, v[0].shape), _unbroadcast(-g, v[1].shape)], x1, x2
    )


def multiply(x1: Any, x2: Any) -> Any:
    return _apply(
        "multiply",
        np.multiply,
        lambda v, y, g: [_unbroadcast(g * v[1], v[0].shape), _unbroadcast(g * v[0], v[1].shape)],
        x1,
        x2,
    )


def divide(x1: Any, x2: Any) -> Any:
    return _apply(
        "divide",
        np.divide,
        lambda v, y, g: [_unbroadcast(g / v[1], v[0].shape), _unbroadcast(-g * v[0] / (v[1] * v[1]), v[1].shape)],
        x1,
        x2,
    )


def negative(x: Any) -> Any:
    return _apply("negative", np.negative, lambda v, y, g: [-g], x)


def abs(x: Any) -> Any:  # noqa: A001
    return _apply("abs", np.abs, lambda v, y, g: [g * np.sign(v[0])], x)


def square(x: Any) -> Any:
    return _apply("square", np.square, lambda v, y, g: [2 * g * v[0]], x)


def sqrt(x: Any) -> Any:
    return _apply("sqrt", np.sqrt, lambda v, y, g: [g * 0.5 / np.where(y == 0, np.inf, y)], x)


def exp(x: Any) -> Any:
    return _apply("exp", np.exp, lambda v, y, g: [g * y], x)


def log(x: Any) -> Any:
    return _apply("log", np.log, lambda v, y, g: [g / v[0]], x)


def relu(x: Any) -> Any:
    return _apply("relu", lambda a: np.maximum(a, 0), lambda v, y, g: [g * (v[0] > 0)], x)


def leaky_relu(x: Any, negative_slope: float = 0.2) -> Any:
    """Keras's ``ops.leaky_relu``: ``x`` where positive, ``negative_slope·x`` elsewhere (any slope)."""
    a = np.float32(negative_slope)
    return _apply("leaky_relu", lambda v: np.where(v > 0, v, a * v), lambda v, y, g: [np.where(v[0] > 0, g, a * g)],
                  x, options={"negative_slope": float(negative_slope)})  # fmt: skip


_SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)


def gelu(x: Any, approximate: bool = True) -> Any:
    """Keras's ``ops.gelu`` (``approximate=True`` by default there, as here): the tanh form
    ``0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))``, or with ``approximate=False`` the exact
    ``x·Φ(x)``."""
    from math import erf

    verf = np.vectorize(erf, otypes=[np.float64])

    def fn(v: np.ndarray) -> np.ndarray:
        w = v.astype(np.float64)
        if approximate:
            return 0.5 * w * (1 + np.tanh(_SQRT_2_OVER_PI * (w + 0.044715 * w**3)))
        return 0.5 * w * (1 + verf(w / np.sqrt(2.0)))

    def grad(v: list[np.ndarray], y: np.ndarray, g: np.ndarray) -> list[Any]:
        w = v[0].astype(np.float64)
        if approximate:
            u = _SQRT_2_OVER_PI * (w + 0.044715 * w**3)
            t = np.tanh(u)
            d = 0.5 * (1 + t) + 0.5 * w * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * w * w)
        else:
            d = 0.5 * (1 + verf(w / np.sqrt(2.0))) + w * np.exp(-0.5 * w * w) / np.sqrt(2 * np.pi)
        return [(g * d).astype(np.float32)]

    return _apply("gelu", fn, grad, x, options={"approximate": bool(approximate)})


def sigmoid(x: Any) -> Any:
    return _apply("sigmoid", lambda a: 0.5 * (np.tanh(0.5 * a) + 1), lambda v, y, g: [g * y * (1 - y)], x)


def tanh(x: Any) -> Any:
    return _apply("tanh", np.tanh, lambda v, y, g: [g * (1 - y * y)], x)


def softmax(x: Any, axis: int = -1) -> Any:
    def fn(a: np.ndarray) -> np.ndarray:
        e = np.exp(a - a.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    return _apply(
        "softmax", fn, lambda v, y, g: [y * (g - (g * y).sum(axis=axis, keepdims=True))], x, options={"axis": axis}
    )


def matmul(x1: Any, x2: Any) -> Any:
    def grad(v: list[np.ndarray], y: np.ndarray, g: np.ndarray) -> list[Any]:
        a, b = v
        ga = g @ np.swapaxes(b, -1, -2) if b.ndim > 1 else np.multiply.outer(g, b)
        gb = np.swapaxes(a, -1, -2) @ g if a.ndim > 1 else np.multiply.outer(a, g)
        return [_unbroadcast(ga, a.shape), _unbroadcast(gb, b.shape)]

    return _apply("matmul", np.matmul, grad, x1, x2)


# ----- reductions ----------------------------------------------------------------------------------
def _reduce_grad(v: list[np.ndarray], g: np.ndarray, axis: Any, keepdims: bool, scale: Any = 1.0) -> np.ndarray:
    if not keepdims and axis is not None:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        for ax in sorted(a % v[0].ndim for a in axes):
            g = np.expand_dims(g, ax)
    return np.broadcast_to(g * scale, v[0].shape).astype(np.float32)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    return _apply(
        "sum",
        lambda a: np.sum(a, axis=axis, keepdims=keepdims),
        lambda v, y, g: [_reduce_grad(v, g, axis, keepdims)],
        x,
        options={"axis": axis, "keepdims": keepdims},
    )


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    def grad(v: list[np.ndarray], y: np.ndarray, g: np.ndarray) -> list[Any]:
        n = v[0].size / builtins.max(1, np.size(y))
        return [_reduce_grad(v, g, axis, keepdims, 1.0 / n)]

    return _apply(
        "mean",
        lambda a: np.mean(a, axis=axis, keepdims=keepdims),
        grad,
        x,
        options={"axis": axis, "keepdims": keepdims},
    )


def _extreme(name: str, fn: Callable[..., np.ndarray], x: Any, axis: Any, keepdims: bool) -> Any:
    def grad(v: list[np.ndarray], y: np.ndarray, g: np.ndarray) -> list[Any]:
        yk = y if keepdims or axis is None else _reduce_grad(v, y, axis, keepdims)
        hit = (v[0] == yk).astype(np.float32)
        hit /= hit.sum(axis=axis, keepdims=True)  # ties share the gradient
        return [_reduce_grad(v, g, axis, keepdims) * hit]

    return _apply(
        name, lambda a: fn(a, axis=axis, keepdims=keepdims), grad, x, options={"axis": axis, "keepdims": keepdims}
    )


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    return _extreme("max", np.max, x, axis, keepdims)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    return _extreme("min", np.min, x, axis, keepdims)


# ----- shapes --------------------------------------------------------------------------------------
def concatenate(xs: Any, axis: int = 0) -> Any:
    xs = list(xs)

    def grad(v: list[np.ndarray], y: np.ndarray, g: np.ndarray) -> list[Any]:
        cuts = np.cumsum([a.shape[axis] for a in v])[:-1]
        return [np.ascontiguousarray(p) for p in np.split(g, cuts, axis=axis)]

    return _apply("concatenate", lambda *a: np.concatenate(a, axis=axis), grad, *xs, options={"axis": axis})


def stack(xs: Any, axis: int = 0) -> Any:
    xs = list(xs)

    def grad(v: list[np.ndarray], y: np.ndarray, g: np.ndarray) -> list[Any]:
        return [np.ascontiguousarray(np.take(g, i, axis=axis)) for i in range(len(v))]

    return _apply("stack", lambda *a: np.stack(a, axis=axis), grad, *xs, options={"axis": axis})


def reshape(x: Any, newshape: Any) -> Any:
    shape = tuple(newshape)
    return _apply(
        "reshape",
        lambda a: np.reshape(a, shape),
        lambda v, y, g: [g.reshape(v[0].shape)],
        x,
        options={"newshape": shape},
    )


def transpose(x: Any, axes: Any = None) -> Any:
    def grad(v: list[np.ndarray], y: np.ndarray, g: np.ndarray) -> list[Any]:
        inv = None if axes is None else np.argsort(axes)
        return [np.ascontiguousarray(np.transpose(g, inv))]

    return _apply("transpose", lambda a: np.transpose(a, axes), grad, x, options={"axes": axes})


def expand_dims(x: Any, axis: int) -> Any:
    return _apply(
        "expand_dims",
        lambda a: np.expand_dims(a, axis),
        lambda v, y, g: [g.reshape(v[0].shape)],
        x,
        options={"axis": axis},
    )


def squeeze(x: Any, axis: Any = None) -> Any:
    return _apply(
        "squeeze", lambda a: np.squeeze(a, axis), lambda v, y, g: [g.reshape(v[0].shape)], x, options={"axis": axis}
    )


def getitem(x: Any, key: Any) -> Any:
    """``x[key]`` (basic indexing: ints, slices, ``None``, ``...``)."""

    def grad(v: list[np.ndarray], y: np.ndarray, g: np.ndarray) -> list[Any]:
        out = np.zeros_like(v[0])
        out[key] = g
        return [out]

    return _apply("getitem", lambda a: a[key], grad, x, options={"key": key})
