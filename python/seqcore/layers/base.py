"""The Layer base class: Keras 3's lifecycle (``__init__`` validates the config, ``build(shape)``
creates weights on first use, ``call``) plus an explicit ``backward``.

Shapes exclude the batch axis and may hold ``None`` (variable). Weights are float32 C-contiguous
arrays that optimizers update in place; ``forward`` keeps what ``backward`` needs (one pending
forward per layer), so nothing is recomputed.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import constraints, initializers, regularizers

Shape = tuple[int | None, ...]
_name_counters: dict[str, itertools.count[int]] = {}


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
        self.value = np.ascontiguousarray(value, dtype=np.float32)
        self.trainable = trainable
        self.regularizer = regularizer
        self.constraint = constraint
        self.grad: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    def numpy(self) -> np.ndarray:
        return self.value.copy()

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
        self._activity_saved: tuple[np.ndarray, int] | None = None
        self._activity_batch: int | None = None
        self.built = False
        # False when nothing consumes dL/d(input) (the first layer of a model): backward may skip it.
        self.need_input_grad = True
        self._weights: list[Weight] = []
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None

    # ----- weights -------------------------------------------------------------------------
    def add_weight(
        self,
        name: str,
        shape: tuple[int, ...],
        initializer: Any = "zeros",
        regularizer: Any = None,
        trainable: bool = True,
        constraint: Any = None,
    ) -> Weight:
        init = initializers.get(initializer)
        value = init(tuple(shape))
        if value.shape != tuple(shape):
            raise ValueError(f"{self.name}: initializer for {name} returned shape {value.shape}, expected {shape}.")
        w = Weight(name, value, trainable, regularizers.get(regularizer), constraints.get(constraint))
        self._weights.append(w)
        return w

    @property
    def weights(self) -> list[Weight]:
        return list(self._weights)

    @property
    def trainable_weights(self) -> list[Weight]:
        return [w for w in self._weights if w.trainable] if self.trainable else []

    @property
    def non_trainable_weights(self) -> list[Weight]:
        return self._weights if not self.trainable else [w for w in self._weights if not w.trainable]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights, in Keras's order (e.g. Dense: kernel, bias; LSTM: kernel,
        recurrent_kernel, bias), so ``keras_layer.get_weights()`` loads directly."""
        return [w.numpy() for w in self._weights]

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
        return sum(math.prod(w.shape) for w in self._weights)

    def regularization_loss(self) -> float:
        return sum(w.regularizer(w.value) for w in self._weights if w.regularizer is not None)

    # ----- activity regularization ------------------------------------------------------------
    # Keras adds ``activity_regularizer(output) / batch_size`` to the model's losses in
    # ``Layer.__call__``, i.e. whenever a model, a nested model or a Bidirectional calls the layer,
    # in training and in inference, but not when a wrapper calls the layer's ``call()`` directly as
    # TimeDistributed does. seqcore's containers call ``_forward_outer``/``_backward_outer`` where
    # Keras calls ``__call__``, and ``forward``/``backward`` where Keras calls ``call``.
    def _forward_outer(self, x: np.ndarray, training: bool = False, batch: int | None = None, **kwargs: Any) -> Any:
        """``forward`` plus the activity penalty on its output, divided by the batch size (``batch``
        overrides it: TimeDistributed folds time into the batch, but Keras's per-step calls of a
        nested model divide by the outer batch)."""
        self._activity_batch = batch
        y = self.forward(x, training=training, **kwargs)
        self._activity_loss, self._activity_saved = 0.0, None
        reg = self.activity_regularizer
        if reg is not None:
            n = batch if batch is not None else (y.shape[0] if y.ndim else 1)
            self._activity_loss = reg(y) / n if n else 0.0  # Keras: divide_no_nan
            if training and n:
                self._activity_saved = (y, n)
        return y

    def _backward_outer(self, dy: np.ndarray) -> np.ndarray:
        """``backward`` with the activity penalty's gradient added to dL/d(output) first."""
        if self._activity_saved is not None:
            y, n = self._activity_saved
            self._activity_saved = None
            assert self.activity_regularizer is not None
            dy = dy + self.activity_regularizer.grad(y) / np.float32(n)
        return self.backward(dy)

    def activity_loss(self) -> float:
        """The activity penalty of the last forward (this layer's and its sublayers')."""
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

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Given dL/d(output) of the last training forward, stores dL/dW in each weight's ``grad``
        and returns dL/d(input)."""
        raise NotImplementedError(f"{type(self).__name__} does not support training yet.")

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

    def __call__(self, x: Any, training: bool = False) -> Any:
        """Inference (or a training forward with ``training=True``) on a batch."""
        arr = np.asarray(x, dtype=np.float32) if not isinstance(x, np.ndarray) else x
        self._check_call_input(arr.shape)
        self._maybe_build(tuple(arr.shape[1:]))
        return self._forward_outer(arr, training=training)  # activity_loss() then reports, like Keras's losses

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
