"""The Layer base class: Keras 3's lifecycle (``__init__`` validates the config, ``build(shape)``
creates weights on first use, ``call``) plus an explicit ``backward``.

Shapes exclude the batch axis and may hold ``None`` (variable). Weights are float32 C-contiguous
arrays that optimizers update in place.

Per-call contexts: ``forward(x, training)`` returns ``(outputs, ctx)``, where ``ctx`` is what this
one call's backward needs; ``backward(ctx, d_outputs, need_dx)`` consumes it, *adds* dL/dW to each
weight's ``grad`` (the trainer zeroes them every step) and returns dL/d(inputs). A layer keeps no
state of its last forward, so one layer may be called many times in a graph (shared weights, their
gradients summed) and inference may run from other threads while a training step is in flight.

Every subclass registers itself by class name (``__init_subclass__``) for deserialization, so
loading a model needs no import of the model module.
"""

from __future__ import annotations

import inspect
import itertools
import math
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .. import constraints, initializers, regularizers

Shape = tuple[int | None, ...]
_name_counters: dict[str, itertools.count[int]] = {}

#: every Layer subclass by class name (and registered custom classes by ``package>name`` too), filled
#: by ``Layer.__init_subclass__``; ``seqcore.layers.deserialize`` looks classes up here
REGISTRY: dict[str, type[Layer]] = {}


class Call:
    """The record of one ``Layer.apply``: the layer's own context, the activity penalty of this
    call (its sublayers' included) and, in training, the output the penalty's gradient needs."""

    __slots__ = ("ctx", "activity_loss", "activity")

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.activity_loss = 0.0
        self.activity: tuple[np.ndarray, int] | None = None


def _snake(name: str) -> str:
    """Keras's to_snake_case: Conv1D -> conv1d, MaxPooling1D -> max_pooling1d, LSTM -> lstm."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(base: str) -> str:
    """Keras-style default names: ``dense``, ``dense_1``, ``dense_2``, ..."""
    n = next(_name_counters.setdefault(base, itertools.count()))
    return base if n == 0 else f"{base}_{n}"


def shape_str(shape: Sequence[int | None]) -> str:
    """(None, 10, 64) as Keras prints it."""
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


class Weight:
    """One trainable or frozen parameter array of a layer. ``constraint`` (a callable ``w -> w'``, see
    ``seqcore.constraints``) is applied by the optimizer right after each update of the weight."""

    __slots__ = ("name", "value", "trainable", "regularizer", "constraint", "grad", "__weakref__")

    def __init__(
        self,
        name: str,
        value: np.ndarray,
        trainable: bool,
        regularizer: regularizers.Regularizer | None,
        constraint: Any = None,
    ):
        self.name = name
        v = np.asarray(value, dtype=np.float32)
        # (not ascontiguousarray alone: it turns a scalar weight, shape (), into shape (1,))
        self.value = v if v.flags.c_contiguous else np.ascontiguousarray(v)
        self.trainable = trainable
        self.regularizer = regularizer
        self.constraint = constraint
        self.grad: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    def numpy(self) -> np.ndarray:
        return self.value.copy()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.value if dtype is None else self.value.astype(dtype)

    @property
    def ndim(self) -> int:
        return self.value.ndim

    def add_grad(self, g: np.ndarray) -> None:
        """Accumulates dL/dW: a layer called several times in one step (shared weights) adds up."""
        self.grad = g if self.grad is None else self.grad + g

    def __repr__(self) -> str:
        return f"<Weight {self.name} shape={self.shape}>"


_COMMON_KWARGS = (
    "name",
    "trainable",
    "dtype",
    "input_shape",
    "batch_input_shape",
    "batch_size",
    "input_dim",
    "activity_regularizer",
)


def unused_input_grad(shape: tuple[int, ...]) -> np.ndarray:
    """What ``backward`` returns when ``need_input_grad`` is False (nothing consumes it): zeros of the
    input's shape as a read-only broadcast view, so skipping the gradient costs no memory at all."""
    return np.broadcast_to(np.zeros((), np.float32), shape)


_STATE = threading.local()


@contextmanager
def deferred_state_updates() -> Iterator[list[tuple[Weight, np.ndarray]]]:
    """Inside, :func:`assign_state` records its assignments instead of making them (on this thread).
    The trainer runs a training forward inside, so that the new moving statistics of a
    BatchNormalization are written together with the optimizer's update, under the weights' write
    lock, and only when the step succeeded: a step refused for a non-finite loss or gradient leaves
    every weight as it was, as it promises."""
    previous = getattr(_STATE, "pending", None)
    pending: list[tuple[Weight, np.ndarray]] = []
    _STATE.pending = pending
    try:
        yield pending
    finally:
        _STATE.pending = previous


def assign_state(weight: Weight, value: np.ndarray) -> None:
    """Sets a non-trainable state weight (moving statistics): at once, or when the running
    :func:`deferred_state_updates` block's owner applies it."""
    pending = getattr(_STATE, "pending", None)
    value = np.asarray(value, dtype=np.float32).reshape(weight.shape)
    if pending is None:
        weight.value[...] = value
    else:
        pending.append((weight, value))


class Layer:
    """Base class. Subclasses implement ``build``, ``compute_output_shape``, ``forward``,
    ``backward`` and ``get_config``."""

    #: whether the layer passes a sequence mask (per-sample lengths) through unchanged
    propagates_mask = False
    #: whether ``forward`` takes the mask (as ``lengths=``): recurrent layers, Bidirectional, and
    #: GlobalAveragePooling1D (which averages the unmasked steps only)
    uses_mask = False
    #: whether the layer starts a mask (``compute_mask(x)``, turned into per-sample lengths by the
    #: model): Masking, and Embedding with ``mask_zero=True``
    produces_mask = False
    #: whether a built layer accepts inputs of another rank (Dense works on the last axis of any rank)
    _any_rank = False
    #: whether ``forward`` takes ``arg_masks=``: the masks of its tensor arguments but the first
    #: (MultiHeadAttention's ``value_mask``/``key_mask`` come from ``value``/``key``, as in Keras)
    arg_masks = False
    #: names of the extra positional tensor arguments a call takes after the first (a graph records
    #: them as Keras does, and runs ``forward`` with them by name)
    _positional_args: tuple[str, ...] = ()
    #: whether ``forward`` takes ``batch=`` (containers: the batch size their layers' activity
    #: penalties divide by, see ``apply``)
    _takes_batch = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            REGISTRY.setdefault(cls.__name__, cls)

    def __init__(self, **kwargs: Any):
        unknown = set(kwargs) - set(_COMMON_KWARGS)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}: unexpected keyword argument(s) {sorted(unknown)}. "
                f"Check the spelling against the Keras signature of {type(self).__name__}."
            )
        self.name: str = kwargs.get("name") or unique_name(_snake(type(self).__name__))
        self.trainable: bool = bool(kwargs.get("trainable", True))
        dtype = kwargs.get("dtype")
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"{self.name}: seqcore computes in float32; received dtype={dtype!r}.")
        self._input_shape_arg: Shape | None = None
        if kwargs.get("input_shape") is not None:
            self._input_shape_arg = tuple(kwargs["input_shape"])
        elif kwargs.get("batch_input_shape") is not None:
            self._input_shape_arg = tuple(kwargs["batch_input_shape"])[1:]
        elif kwargs.get("input_dim") is not None:
            self._input_shape_arg = (int(kwargs["input_dim"]),)
        self._batch_size_arg = kwargs.get("batch_size") or (
            tuple(kwargs["batch_input_shape"])[0] if kwargs.get("batch_input_shape") is not None else None
        )
        # Keras's Layer argument, for every layer: a penalty on the layer's output (see _forward_outer).
        self.activity_regularizer: regularizers.Regularizer | None = regularizers.deserialize(
            kwargs.get("activity_regularizer")
        )
        self._activity_loss = 0.0
        self.built = False
        self._weights: list[Weight] = []
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None

    # ----- weights -------------------------------------------------------------------------
    def add_weight(self, *args: Any, **kwargs: Any) -> Weight:
        """Keras 3's ``add_weight(shape=None, initializer=None, dtype=None, trainable=True,
        autocast=True, regularizer=None, constraint=None, aggregation="none", name=None)``; seqcore's
        own layers call it as ``add_weight(name, shape, initializer, regularizer, ...)``. The weight
        is float32 (seqcore computes in float32) and usable in ``seqcore.ops`` inside ``call``."""
        keys: tuple[str, ...]
        if args and isinstance(args[0], str):  # seqcore's order: name first
            keys = ("name", "shape", "initializer", "regularizer", "trainable", "constraint")
        else:  # Keras's order
            keys = ("shape", "initializer", "dtype", "trainable", "autocast", "regularizer", "constraint")
        if len(args) > len(keys):
            raise TypeError(f"{self.name}.add_weight: too many positional arguments ({len(args)}).")
        for k, v in zip(keys, args, strict=False):
            if k in kwargs:
                raise TypeError(f"{self.name}.add_weight: got multiple values for argument {k!r}.")
            kwargs[k] = v
        allowed = {"shape", "initializer", "dtype", "trainable", "autocast", "regularizer", "constraint",
                   "aggregation", "name", "synchronization", "overwrite_with_gradient"}  # fmt: skip
        unknown = set(kwargs) - allowed
        if unknown:
            raise TypeError(f"{self.name}.add_weight: unexpected keyword argument(s) {sorted(unknown)}.")
        dtype = kwargs.get("dtype")
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"{self.name}.add_weight: seqcore weights are float32; received dtype={dtype!r}.")
        shape = kwargs.get("shape")
        shape = () if shape is None else (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        name = kwargs.get("name") or f"variable_{len(self._weights)}"
        initializer = kwargs.get("initializer")
        if initializer is None:  # Keras: glorot_uniform for float weights... of rank >= 2, zeros otherwise
            initializer = "glorot_uniform" if len(shape) >= 2 else "zeros"
        init = initializers.get(initializer)
        value = np.asarray(init(tuple(shape)), dtype=np.float32)
        if value.shape != tuple(shape):
            raise ValueError(f"{self.name}: initializer for {name} returned shape {value.shape}, expected {shape}.")
        w = Weight(
            name,
            value,
            bool(kwargs.get("trainable", True)),
            regularizers.get(kwargs.get("regularizer")),
            constraints.get(kwargs.get("constraint")),
        )
        self._weights.append(w)
        return w

    @property
    def weights(self) -> list[Weight]:
        if self._traced:  # own weights, then the tracked sublayers' (Keras's order), each once
            out, seen = [], set()
            for w in [*self._weights, *(w for sub in self._sublayers() for w in sub.weights)]:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
            return out
        return list(self._weights)

    @property
    def trainable_weights(self) -> list[Weight]:
        return [w for w in self.weights if w.trainable] if self.trainable else []

    @property
    def non_trainable_weights(self) -> list[Weight]:
        return self.weights if not self.trainable else [w for w in self.weights if not w.trainable]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights, in Keras's order (e.g. Dense: kernel, bias; LSTM: kernel,
        recurrent_kernel, bias), so ``keras_layer.get_weights()`` loads directly."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        if not self.built:
            raise ValueError(
                f"{self.name}: set_weights needs a built layer (its weight shapes come from the input). "
                f"Call it on data first, or give the model an input shape."
            )
        if len(weights) != len(self._weights):
            names = [w.name for w in self._weights]
            raise ValueError(f"{self.name}: expected {len(self._weights)} arrays {names}; received {len(weights)}.")
        new = []
        for w, v in zip(self._weights, weights, strict=True):
            a = np.asarray(v)
            if a.shape != w.shape:
                raise ValueError(
                    f"{self.name}: weight {w.name!r} has shape {w.shape}; received an array of shape {a.shape}."
                )
            new.append(a.astype(np.float32))
        for w, a in zip(self._weights, new, strict=True):  # only after every shape checked
            w.value[...] = a

    def count_params(self) -> int:
        return sum(math.prod(w.shape) for w in self.weights)

    def regularization_loss(self) -> float:
        return sum(w.regularizer(w.value) for w in self._weights if w.regularizer is not None)

    # ----- activity regularization ------------------------------------------------------------
    # Keras adds ``activity_regularizer(output) / batch_size`` to the model's losses in
    # ``Layer.__call__``, i.e. whenever a model, a nested model or a Bidirectional calls the layer,
    # in training and in inference, but not when a wrapper calls the layer's ``call()`` directly as
    # TimeDistributed does. seqcore's containers call ``apply``/``unapply`` where Keras calls
    # ``__call__``, and ``forward``/``backward`` where Keras calls ``call``.
    def apply(self, x: Any, training: bool = False, batch: int | None = None, **kwargs: Any) -> tuple[Any, Call]:
        """``forward`` plus the activity penalty on its output, divided by the batch size (``batch``
        overrides it: TimeDistributed folds time into the batch, but Keras's per-step calls of a
        nested model divide by the outer batch). Returns the outputs and this call's record."""
        if self._takes_batch:
            kwargs["batch"] = batch
        y, ctx = self.forward(x, training=training, **kwargs)
        call = Call(ctx)
        call.activity_loss = float(getattr(ctx, "activity_loss", 0.0))
        reg = self.activity_regularizer
        if reg is not None:
            first = y[0] if isinstance(y, (list, tuple)) else y
            n = batch if batch is not None else (first.shape[0] if first.ndim else 1)
            call.activity_loss += reg(first) / n if n else 0.0  # Keras: divide_no_nan
            if training and n:
                call.activity = (first, n)
        return y, call

    def unapply(self, call: Call, dy: Any, need_dx: bool = True) -> Any:
        """``backward`` of an ``apply``, with the activity penalty's gradient added to dL/d(output)."""
        if call.activity is not None:
            y, n = call.activity
            assert self.activity_regularizer is not None
            g = self.activity_regularizer.grad(y) / np.float32(n)
            if isinstance(dy, list):
                dy = [g if dy[0] is None else dy[0] + g, *dy[1:]]
            else:
                dy = dy + g
        return self.backward(call.ctx, dy, need_dx=need_dx)

    def activity_loss(self) -> float:
        """The activity penalty of the last eager call (``layer(x)``), this layer's and its
        sublayers', as Keras's ``layer.losses`` after a call."""
        return self._activity_loss

    # ----- lifecycle -----------------------------------------------------------------------
    def build(self, input_shape: Shape) -> None:
        self.built = True

    def _maybe_build(self, input_shape: Shape) -> None:
        if not self.built:
            self.input_shape = tuple(input_shape)
            self.build(tuple(input_shape))
            self.built = True
            self.output_shape = self.compute_output_shape(tuple(input_shape))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def forward(self, x: Any, training: bool = False) -> tuple[Any, Any]:
        """Returns ``(outputs, ctx)``: ``ctx`` holds what ``backward`` needs from this call (None
        when ``training`` is False or nothing is needed). A subclass that defines ``call`` runs
        its traced graph."""
        if self._traced:
            return self._traced_graph(x).forward(x, training=training)
        raise NotImplementedError

    def backward(self, ctx: Any, dy: Any, need_dx: bool = True) -> Any:
        """Given this call's ``ctx`` and dL/d(output), adds dL/dW to each weight's ``grad`` and
        returns dL/d(input) (a zero-cost placeholder when ``need_dx`` is False: nothing consumes it)."""
        if self._traced:
            return self._graph.backward(ctx, dy, need_dx=need_dx)
        raise NotImplementedError(f"{type(self).__name__} does not support training yet.")

    def merge_input_masks(self, masks: list[Any]) -> Any:
        """The mask a call sees when its inputs carry ``masks`` (per-sample lengths or None): as
        Keras's Concatenate, a step is kept where every masked input keeps it (the shortest length);
        an unmasked input keeps every step."""
        from .. import _masks

        return _masks.merge(masks)

    def mask_argument(self, mask: Any) -> dict[str, Any]:
        """The ``forward`` keyword arguments for a ``mask=`` a user passed to a call: the mask as
        given (the layer's ``forward`` checks it against its input with ``_masks.normalize``)."""
        return {"lengths": None if mask is None else np.asarray(mask)}

    def output_mask(self, in_mask: Any, x: Any, ctx: Any) -> Any:
        """The mask (per-sample lengths, or None) of this call's output, from its input's: started
        by ``produces_mask`` layers, kept by ``propagates_mask`` ones, dropped by the rest."""
        if self.produces_mask:
            from .recurrent import mask_to_lengths

            return mask_to_lengths(self.compute_mask(x), self.name)
        return in_mask if self.propagates_mask else None

    def _check_call_input(self, shape: tuple[int, ...]) -> None:
        """A built layer's weights fix the last axis of its input (and, unless the layer works on
        any rank like Dense, the rank): check it here, where the layer's name is known, instead of
        letting the kernel's message about weight shapes surface."""
        if not self.built or self.input_shape is None or not self.weights:
            return  # weight-free layers adapt to any input; their own checks apply
        want, got = self.input_shape, tuple(shape[1:])
        rank_ok = len(got) == len(want) or (self._any_rank and len(got) >= 1)
        last_ok = not want or not got or want[-1] is None or got[-1] is None or want[-1] == got[-1]
        if rank_ok and last_ok:
            return
        spec = (*([None] * (len(want) - 1)), want[-1]) if want else ()
        raise ValueError(
            f"{type(self).__name__} {self.name!r}: built for input shape {shape_str((None, *spec))}; received "
            f"{tuple(shape)}. Its weights were created for that input: use a new layer for inputs of another shape."
        )

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        """On arrays: inference (or a training forward with ``training=True``) on a batch. On
        symbolic tensors (``seqcore.Input``): records the call into a graph and returns symbolic
        outputs, with shapes checked now (see ``seqcore.models.Model``)."""
        from ..symbolic import any_symbolic, symbolic_call

        if any_symbolic(x, args, kwargs):
            return symbolic_call(self, x, args, kwargs)
        return self._eager_call(x, *args, **kwargs)

    def _eager_call(self, x: Any, training: Any = False, mask: Any = None, **kwargs: Any) -> Any:
        if self._traced:
            self._traced_graph(x)
            y, call = self.apply(x, training=bool(training))
            self._activity_loss = call.activity_loss
            return y
        arr = np.asarray(x, dtype=np.float32) if not isinstance(x, np.ndarray) else x
        self._check_call_input(arr.shape)
        self._maybe_build(tuple(arr.shape[1:]))
        if self.uses_mask and mask is not None:
            kwargs.update(self.mask_argument(mask))
        y, call = self.apply(arr, training=bool(training), **kwargs)
        self._activity_loss = call.activity_loss  # activity_loss() then reports, like Keras's losses
        return y

    # ----- subclassed layers: call() traced into a graph ----------------------------------------
    def call(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Keras's ``call``: a subclass composes layers and ``seqcore.ops`` here. seqcore traces it
        once on symbolic inputs into a graph (``seqcore.models.Functional``) whose recorded ops carry
        their gradients, then runs that graph; seqcore's own layers implement ``forward`` instead."""
        raise NotImplementedError(f"{type(self).__name__} implements neither call() nor forward().")

    @property
    def _traced(self) -> bool:
        return type(self).call is not Layer.call

    def _sublayers(self) -> list[Layer]:
        """Layers held as attributes (or in lists/dicts of them), in assignment order, as Keras tracks."""
        out: list[Layer] = []
        for v in vars(self).values():
            items = v if isinstance(v, (list, tuple)) else list(v.values()) if isinstance(v, dict) else [v]
            out.extend(x for x in items if isinstance(x, Layer) and x is not self and x is not vars(self).get("_graph"))
        return out

    def _trace(self, shapes: Any) -> Any:
        """Builds (``build(input_shape)`` with the batch axis, as Keras passes it) and traces
        ``call`` on fresh symbolic inputs of ``shapes``; the graph is kept for every later call."""
        from ..models.functional import Functional  # the graph executor sits above the layers
        from .core import InputLayer

        many = isinstance(shapes, list)
        ins = [InputLayer(shape=tuple(s[1:]), batch_size=s[0]).output for s in (shapes if many else [shapes])]
        if not self.built:
            # a user's build(input_shape) creates weights; Model.build itself traces (no call back)
            if type(self).build is not Layer.build and type(self).build.__qualname__ != "Model.build":
                self.build([tuple(t.shape) for t in ins] if many else tuple(ins[0].shape))  # type: ignore[arg-type]
            self.built = True
        arg = ins if many else ins[0]
        params = inspect.signature(self.call).parameters
        out = self.call(arg, training=None) if "training" in params else self.call(arg)
        self._graph = Functional(arg, out, name=f"{self.name}_graph")
        return self._graph

    def _traced_graph(self, x: Any) -> Any:
        graph = getattr(self, "_graph", None)
        if graph is None:
            shapes = [(None, *np.shape(a)[1:]) for a in x] if isinstance(x, (list, tuple)) else (None, *np.shape(x)[1:])
            graph = self._trace(shapes)
        return graph

    def symbolic_output(self, inputs: Any, **kwargs: Any) -> Any:
        """Output shape(s) of a call on symbolic inputs (batch axis included): builds the layer on
        the input shape, as Keras's ``Layer.__call__`` does on a KerasTensor."""
        if self._traced:
            graph = getattr(self, "_graph", None)
            if graph is None:
                graph = self._trace([t.shape for t in inputs] if isinstance(inputs, list) else inputs.shape)
            first = inputs[0] if isinstance(inputs, list) else inputs
            shapes = [(first.shape[0], *t.shape[1:]) for t in graph.outputs]
            return shapes[0] if len(shapes) == 1 else shapes
        shape = tuple(inputs.shape[1:])
        self._check_call_input((None, *shape))  # type: ignore[arg-type]
        self._maybe_build(shape)
        return (inputs.shape[0], *self.compute_output_shape(shape))

    # ----- config --------------------------------------------------------------------------
    def compute_mask(self, x: np.ndarray) -> np.ndarray:
        """The (batch, steps) boolean mask this layer starts (only when ``produces_mask``)."""
        raise NotImplementedError(f"{type(self).__name__} does not produce a mask.")

    def get_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"name": self.name, "trainable": self.trainable}
        if self._input_shape_arg is not None:
            cfg["input_shape"] = self._input_shape_arg
        if self.activity_regularizer is not None:  # as Keras's Layer.get_config
            cfg["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Rebuilds a layer from ``get_config()``; ``*_initializer`` / ``*_regularizer`` /
        ``*_constraint`` entries are deserialized."""
        cfg = dict(config)
        for k, v in cfg.items():
            if k.endswith("_initializer"):
                cfg[k] = initializers.deserialize(v)
            elif k.endswith("_regularizer"):
                cfg[k] = regularizers.deserialize(v)
            elif k.endswith("_constraint"):
                cfg[k] = constraints.deserialize(v)
        return cls(**cfg)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"
