"""Symbolic tensors and the call graph they record: what ``seqcore.Input`` returns and what calling
a layer on one gives back (Keras 3's ``KerasTensor``), and ``Node``, one *call* of a layer (a layer
called twice is one layer with two nodes, which is how weights are shared).

Calling a layer on symbolic tensors builds the layer, checks the shapes and records a node; nothing
is computed. ``seqcore.models.Functional`` walks the nodes from a model's outputs back to its
inputs, runs them in topological order and replays them in reverse for the gradients.

Operators (``+ - * /``, unary ``-``, ``x[...]``) on symbolic tensors record calls of the op layers
in ``seqcore.ops``; a Python ``if`` on a tensor's value, or a NumPy function applied to one, cannot be
recorded and is refused with the fix (``seqcore.ops``).
"""

from __future__ import annotations

import itertools
import traceback
from typing import Any

import numpy as np

_counter = itertools.count()


class KerasTensor:
    """A symbolic tensor: a shape (batch axis first, ``None`` where unknown), a dtype, and the
    node (layer call) that produces it."""

    __slots__ = ("shape", "dtype", "name", "node", "index", "__weakref__")
    __array_priority__ = 1000  # ndarray + KerasTensor defers to KerasTensor.__radd__

    def __init__(self, shape: tuple[int | None, ...], dtype: str = "float32", name: str | None = None):
        self.shape = tuple(shape)
        self.dtype = dtype
        n = next(_counter)
        self.name = name or ("keras_tensor" if n == 0 else f"keras_tensor_{n}")
        self.node: Node | None = None
        self.index = 0

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    # --- what cannot be traced ---------------------------------------------------------------
    def __bool__(self) -> bool:
        raise TypeError(
            f"A symbolic tensor ({self.name}, shape {self.shape}) has no value while the model is being built, "
            f"so Python control flow on it (if/while/and/or/bool(...)) cannot be recorded{_user_line()}. "
            f"Write the computation with layers and seqcore.ops (for a choice between two values, compute both "
            f"and combine them arithmetically), or move the decision out of call()."
        )

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise TypeError(
            f"NumPy cannot compute on a symbolic tensor ({self.name}, shape {self.shape}){_user_line()}: it has no "
            f"value while the model is being built, and NumPy's result would have no gradient. Use the seqcore.ops "
            f"function of the same name (seqcore.ops.{', seqcore.ops.'.join(_SUPPORTED[:6])}, ...)."
        )

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        name = getattr(ufunc, "__name__", str(ufunc))
        mapped = {"add": "add", "subtract": "subtract", "multiply": "multiply", "true_divide": "divide",
                  "negative": "negative"}  # fmt: skip
        if method == "__call__" and name in mapped and not kwargs:
            from . import ops

            return getattr(ops, mapped[name])(*inputs)
        raise TypeError(
            f"numpy.{name} cannot be applied to a symbolic tensor ({self.name}){_user_line()}: it is not an op "
            f"seqcore can differentiate. Supported ops: seqcore.ops.{', seqcore.ops.'.join(_SUPPORTED)}."
        )

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        name = getattr(func, "__name__", str(func))
        raise TypeError(
            f"numpy.{name} cannot be applied to a symbolic tensor{_user_line()}: it is not an op seqcore can "
            f"differentiate. Supported ops: seqcore.ops.{', seqcore.ops.'.join(_SUPPORTED)}."
        )

    def __iter__(self) -> Any:
        raise TypeError(
            f"A symbolic tensor ({self.name}, shape {self.shape}) cannot be iterated over{_user_line()}; "
            f"index it (x[:, 0]) or use seqcore.ops."
        )

    def __len__(self) -> int:
        raise TypeError(f"len() of a symbolic tensor is not defined; use x.shape[0] ({self.shape[0]}).")

    # --- operators: recorded as op layers ----------------------------------------------------
    def __add__(self, other: Any) -> Any:
        from . import ops

        return ops.add(self, other)

    def __radd__(self, other: Any) -> Any:
        from . import ops

        return ops.add(other, self)

    def __sub__(self, other: Any) -> Any:
        from . import ops

        return ops.subtract(self, other)

    def __rsub__(self, other: Any) -> Any:
        from . import ops

        return ops.subtract(other, self)

    def __mul__(self, other: Any) -> Any:
        from . import ops

        return ops.multiply(self, other)

    def __rmul__(self, other: Any) -> Any:
        from . import ops

        return ops.multiply(other, self)

    def __truediv__(self, other: Any) -> Any:
        from . import ops

        return ops.divide(self, other)

    def __rtruediv__(self, other: Any) -> Any:
        from . import ops

        return ops.divide(other, self)

    def __matmul__(self, other: Any) -> Any:
        from . import ops

        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Any:
        from . import ops

        return ops.matmul(other, self)

    def __neg__(self) -> Any:
        from . import ops

        return ops.negative(self)

    def __pos__(self) -> Any:
        return self

    def __getitem__(self, key: Any) -> Any:
        from . import ops

        return ops.getitem(self, key)


_SUPPORTED = [
    "add", "subtract", "multiply", "divide", "negative", "concatenate", "stack", "mean", "sum", "max", "min",
    "reshape", "transpose", "expand_dims", "squeeze", "matmul", "relu", "sigmoid", "tanh", "softmax", "abs",
    "square", "sqrt", "exp", "log",
]  # fmt: skip


def _user_line() -> str:
    """' (at file:line: code)' for the innermost frame outside seqcore, to point at the user's line."""
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    for frame in reversed(traceback.extract_stack()[:-2]):
        if not os.path.abspath(frame.filename).startswith(here):
            code = f": {frame.line.strip()}" if frame.line else ""
            return f" (at {os.path.basename(frame.filename)}:{frame.lineno}{code})"
    return ""


class Node:
    """One call of ``layer``: its arguments with the symbolic tensors in place (``args`` holds the
    inputs, ``kwargs`` the other call arguments, which may hold tensors too, e.g. ``initial_state``)
    and the tensors it produced."""

    __slots__ = ("layer", "args", "kwargs", "inputs", "outputs", "multi_output")

    def __init__(self, layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any], outputs: list[KerasTensor],
                 multi_output: bool):  # fmt: skip
        self.layer = layer
        self.args = args
        self.kwargs = kwargs
        self.inputs = flatten((args, kwargs))
        self.outputs = outputs
        self.multi_output = multi_output
        for i, t in enumerate(outputs):
            t.node, t.index = self, i

    def named_args(self) -> dict[str, Any]:
        """The call arguments but the first, by name: ``kwargs`` plus the extra positional tensors
        of a layer that takes several (MultiHeadAttention's ``value``), named by its
        ``_positional_args``."""
        extra = self.args[1:]
        if not extra:
            return self.kwargs
        names = getattr(self.layer, "_positional_args", ())
        return {**dict(zip(names, extra, strict=False)), **self.kwargs}

    @property
    def parents(self) -> list[Node]:
        return [t.node for t in self.inputs if t.node is not None]

    def __repr__(self) -> str:
        return f"<Node {self.layer.name}: {[t.name for t in self.inputs]} -> {[t.name for t in self.outputs]}>"


def flatten(structure: Any) -> list[KerasTensor]:
    """The symbolic tensors in a nested list/tuple/dict, in order."""
    out: list[KerasTensor] = []

    def walk(s: Any) -> None:
        if isinstance(s, KerasTensor):
            out.append(s)
        elif isinstance(s, (list, tuple)):
            for v in s:
                walk(v)
        elif isinstance(s, dict):
            for v in s.values():
                walk(v)

    walk(structure)
    return out


def substitute(structure: Any, values: dict[int, Any]) -> Any:
    """``structure`` with every symbolic tensor replaced by ``values[id(tensor)]``."""
    if isinstance(structure, KerasTensor):
        return values[id(structure)]
    if isinstance(structure, list):
        return [substitute(v, values) for v in structure]
    if isinstance(structure, tuple):
        return tuple(substitute(v, values) for v in structure)
    if isinstance(structure, dict):
        return {k: substitute(v, values) for k, v in structure.items()}
    return structure


def any_symbolic(*structures: Any) -> bool:
    return bool(flatten(structures))


def symbolic_call(layer: Any, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Records ``layer(x, *args, **kwargs)`` on symbolic tensors and returns the output tensor(s)."""
    kwargs = dict(kwargs)
    kwargs.pop("training", None)  # a graph runs with the training flag of the model's call
    if len(args) > len(getattr(layer, "_positional_args", ())):
        raise TypeError(
            f"{type(layer).__name__} {layer.name!r}: pass call arguments after the inputs by keyword "
            f"(e.g. initial_state=[h, c]); received {len(args)} extra positional argument(s)."
        )
    if "mask" in kwargs and kwargs["mask"] is None:
        kwargs.pop("mask")
    if not flatten(x):
        raise TypeError(
            f"{type(layer).__name__} {layer.name!r}: the inputs must be symbolic tensors (from seqcore.Input or "
            f"another layer) when other arguments are; received {type(x).__name__}."
        )
    try:
        named = dict(zip(getattr(layer, "_positional_args", ()), args, strict=False))
        shapes = layer.symbolic_output(x, **named, **kwargs)
    except ValueError as e:
        msg = str(e)
        hint = _rnn_hint(x)
        raise ValueError(msg + (hint if hint and hint not in msg else "")) from None
    multi = isinstance(shapes, list)
    shape_list = shapes if multi else [shapes]
    dtype = "float32"
    outs = [KerasTensor(tuple(s), dtype) for s in shape_list]
    Node(layer, (x, *args), kwargs, outs, multi)
    return outs if multi else outs[0]


def _rnn_hint(x: Any) -> str:
    from .layers.recurrent import return_sequences_hint

    for t in flatten(x):
        if t.node is not None and t.index == 0:
            hint = return_sequences_hint(t.node.layer)
            if hint:
                return hint
    return ""


def shape_of(v: Any) -> tuple[int | None, ...]:
    return tuple(v.shape) if isinstance(v, KerasTensor) else tuple(np.shape(v))
