"""Core layers: Input, Dense, Activation, Dropout, Flatten, Reshape, RepeatVector."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import constraints, initializers, kernels, regularizers
from .._validation import ACTIVATION_ALIASES, ALL_ACTIVATIONS, INPUT_ACTIVATIONS
from ..utils import rng
from .base import Layer, Shape, shape_str, unique_name, unused_input_grad


def activation_name(activation: Any, layer: str, allowed: tuple[str, ...] = ALL_ACTIVATIONS) -> str:
    """The canonical seqcore name (Keras aliases such as swish resolved) of a Keras activation
    argument, or a clear error."""
    if activation is None:
        return "linear"
    if callable(activation) and isinstance(getattr(activation, "__name__", None), str):
        name = ACTIVATION_ALIASES.get(activation.__name__, activation.__name__)
        if name in allowed:  # keras.activations.relu and the like
            return name
    if not isinstance(activation, str):
        raise TypeError(
            f"{layer}: activation must be a name, one of {list(allowed)} (or None); received {activation!r}. "
            f"Custom activation functions are not supported by the fused kernels; add an Activation layer instead."
        )
    name = ACTIVATION_ALIASES.get(activation, activation)
    if name not in allowed:
        what = "unknown activation" if name not in ALL_ACTIVATIONS else "activation"
        where = " is not supported here" if name in ALL_ACTIVATIONS else ""
        raise ValueError(f"{layer}: {what} {activation!r}{where}; supported: {list(allowed)}.")
    return name


def needs_input(activation: str) -> bool:
    """True for gelu, silu, mish and hard_silu: their derivative needs the pre-activation, so Dense
    and Conv1D run their kernel linear, keep its output and apply the activation separately."""
    return activation in INPUT_ACTIVATIONS


def positive_int(value: Any, layer: str, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{layer}: {arg} must be a positive integer. Received: {arg}={value!r}")
    return int(value)


def input_dtype(dtype: Any, who: str = "Input") -> str:
    """A Keras input dtype as its canonical name (``None``: float32): any NumPy number or bool type."""
    if dtype is None:
        return "float32"
    name = _dtype_name(dtype)
    try:
        dt = np.dtype(name)
    except TypeError:
        dt = None
    if dt is None or dt.kind not in "biuf":
        raise TypeError(
            f"{who}: dtype must be a number or bool type, such as 'float32' or 'int32' (token ids for an "
            f"Embedding); received dtype={dtype!r}."
        )
    return dt.name


def _dtype_name(dtype: Any) -> Any:
    if isinstance(dtype, dict):  # a Keras DTypePolicy config
        return _dtype_name(dtype.get("config", {}).get("name"))
    return getattr(dtype, "name", dtype) if not isinstance(dtype, (str, type)) else dtype


class InputSpec:
    """What ``seqcore.Input(shape)`` returns: the per-sample input shape of a model, with its batch
    size and dtype (``float32`` unless given; seqcore computes in float32 and reports the dtype, as
    Keras does, e.g. ``int32`` ids for an Embedding; the ONNX export types its graph inputs with it)."""

    def __init__(self, shape: Any, batch_size: int | None = None, name: str | None = None, dtype: Any = None):
        if shape is None:
            raise ValueError("Input: shape is required, e.g. Input(shape=(timesteps, features)).")
        if isinstance(shape, int):
            shape = (shape,)
        shape = tuple(shape)
        for d in shape:
            if d is not None and (not isinstance(d, (int, np.integer)) or d < 0):
                raise ValueError(f"Input: every dimension must be a non-negative int or None. Received: shape={shape}")
        self.shape: Shape = tuple(None if d is None else int(d) for d in shape)
        self.batch_size = batch_size
        self.name = name or "input_layer"
        self.dtype = input_dtype(dtype)
        self.tensor: Any = None  # the symbolic tensor of the Input (seqcore.Input's, or a Sequential's own)

    def __repr__(self) -> str:
        extra = "" if self.dtype == "float32" else f", dtype={self.dtype}"
        return f"<Input shape={shape_str((self.batch_size, *self.shape))}{extra}>"


def Input(  # noqa: N802
    shape: Any = None,
    batch_size: int | None = None,
    dtype: Any = None,
    name: str | None = None,
    **kwargs: Any,
) -> Any:
    """Keras's ``Input(shape=...)``: a symbolic tensor of shape ``(batch_size, *shape)`` to call layers
    on (the Functional API), or the first entry of a ``Sequential``. ``dtype`` (float32 by default) is
    kept and reported (``tensor.dtype``, ``model.inputs[0].dtype``): ``int32``/``int64`` marks integer
    ids (for Embedding); seqcore computes in float32 whatever it is."""
    if shape is None and "batch_shape" in kwargs:
        bs = tuple(kwargs.pop("batch_shape"))
        shape, batch_size = bs[1:], bs[0]
    kwargs.pop("sparse", None)
    kwargs.pop("ragged", None)
    if kwargs:
        raise TypeError(f"Input: unexpected keyword argument(s) {sorted(kwargs)}.")
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name or unique_name("input_layer"))
    return layer.output


class InputLayer(Layer):
    """Keras's InputLayer; holds the input shape and dtype (no weights, identity)."""

    propagates_mask = True

    def __init__(self, shape: Any = None, batch_size: int | None = None, dtype: Any = None, **kwargs: Any):
        shape = kwargs.pop("input_shape", shape)
        super().__init__(**kwargs)
        self.spec = InputSpec(shape, batch_size, self.name, input_dtype(dtype, f"InputLayer {self.name!r}"))
        self._input_shape_arg = self.spec.shape
        from ..symbolic import KerasTensor, Node

        self.output = self.spec.tensor = KerasTensor((batch_size, *self.spec.shape), self.spec.dtype, name=self.name)
        self.built = True
        self.input_shape = self.output_shape = self.spec.shape
        Node(self, (), {}, [self.output], False)

    @property
    def dtype(self) -> str:
        return self.spec.dtype

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        return x, None

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        return dy

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "shape": self.spec.shape, "batch_size": self.spec.batch_size,
                "dtype": self.spec.dtype}  # fmt: skip


class Dense(Layer):
    """Keras's Dense. On a 3-D input it applies to the last axis at every step with one shared
    kernel — the same as ``TimeDistributed(Dense)`` (no flattening, same parameter count)."""

    propagates_mask = True
    _any_rank = True

    def __init__(
        self,
        units: int,
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
        self.units = positive_int(units, f"Dense {self.name!r}", "units")
        self.activation = activation_name(activation, f"Dense {self.name!r}")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) < 1 or input_shape[-1] is None:
            raise ValueError(
                f"Dense {self.name!r}: the last axis of the input must be known to build the kernel; "
                f"received input shape {shape_str((None, *input_shape))}."
            )
        f = int(input_shape[-1])
        self.kernel = self.add_weight(
            "kernel",
            (f, self.units),
            self.kernel_initializer,
            self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = (
            self.add_weight(
                "bias", (self.units,), self.bias_initializer, self.bias_regularizer, constraint=self.bias_constraint
            )
            if self.use_bias
            else None
        )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.units)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        split = needs_input(self.activation)  # gelu & co: linear kernel, then the activation on its output
        bias = None if self.bias is None else self.bias.value
        y = kernels.dense_forward(x, self.kernel.value, bias, "linear" if split else self.activation)
        ctx = (x, y) if training else None  # y is the pre-activation when split
        return (kernels.activation(y, self.activation) if split else y), ctx

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        if ctx is None:
            raise RuntimeError(f"Dense {self.name!r}: backward without a training forward.")
        x, y = ctx
        act = self.activation
        if needs_input(act):
            dy, act = kernels.activation_backward_from_input(y, dy, act), "linear"
        g = kernels.dense_backward(x, self.kernel.value, y, dy, act, use_bias=self.use_bias, need_dx=need_dx)
        self.kernel.add_grad(g.dkernel)
        if self.bias is not None:
            self.bias.add_grad(g.dbias)  # type: ignore[arg-type]
        return g.dx if g.dx is not None else unused_input_grad(x.shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }


class Activation(Layer):
    propagates_mask = True

    def __init__(self, activation: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.activation = activation_name(activation, f"Activation {self.name!r}")

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        y = kernels.activation(x, self.activation)
        # ctx: the output, or the input for gelu & co (see needs_input)
        return y, ((x if needs_input(self.activation) else y) if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        assert ctx is not None, "backward without a training forward"
        if needs_input(self.activation):
            return kernels.activation_backward_from_input(ctx, dy, self.activation)
        return kernels.activation_backward(ctx, dy, self.activation)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": self.activation}


class Dropout(Layer):
    """Keras's Dropout: in training, zeroes a fraction ``rate`` of inputs and scales the rest by
    1/(1 - rate); identity at inference."""

    propagates_mask = True

    def __init__(self, rate: float, noise_shape: Any = None, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if not (isinstance(rate, (int, float)) and 0 <= rate < 1):
            raise ValueError(f"Dropout {self.name!r}: rate must be in [0, 1). Received: rate={rate!r}")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._gen = np.random.default_rng(seed) if seed is not None else None

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        if not training or self.rate == 0:
            return x, None
        shape = x.shape
        if self.noise_shape is not None:
            shape = tuple(x.shape[i] if d is None else d for i, d in enumerate(self.noise_shape))
        gen = self._gen or rng()
        keep = (gen.random(shape, dtype=np.float32) >= self.rate).astype(np.float32) / np.float32(1 - self.rate)
        return x * keep, keep

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        return dy if ctx is None else dy * ctx

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}


class Flatten(Layer):
    """Flattens all axes but the batch axis (a view, not a copy)."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if any(d is None for d in input_shape):
            return (None,)
        return (math.prod(d for d in input_shape if d is not None),)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        y = x.reshape(x.shape[0], -1) if x.shape[0] else x.reshape(0, math.prod(x.shape[1:]))
        return y, x.shape

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        return dy.reshape(ctx)


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (one entry may be -1); a view, not a copy."""

    def __init__(self, target_shape: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1 or any(d < -1 or d == 0 for d in self.target_shape):
            raise ValueError(
                f"Reshape {self.name!r}: target_shape may hold one -1 and otherwise positive sizes. "
                f"Received: target_shape={self.target_shape}"
            )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if any(d is None for d in input_shape):
            return tuple(None if d == -1 else d for d in self.target_shape)
        total = math.prod(d for d in input_shape if d is not None)
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if total % known:
                raise ValueError(
                    f"Reshape {self.name!r}: cannot reshape {shape_str((None, *input_shape))} ({total} values per "
                    f"sample) to {self.target_shape}: {total} is not divisible by {known}."
                )
            return tuple(total // known if d == -1 else d for d in self.target_shape)
        if known != total:
            raise ValueError(
                f"Reshape {self.name!r}: cannot reshape {shape_str((None, *input_shape))} ({total} values per "
                f"sample) to {self.target_shape} ({known} values)."
            )
        return self.target_shape

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        try:
            return x.reshape((x.shape[0], *self.target_shape)), x.shape
        except ValueError:
            raise ValueError(
                f"Reshape {self.name!r}: cannot reshape a batch of shape {x.shape} to (batch, "
                f"{', '.join(map(str, self.target_shape))})."
            ) from None

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        return dy.reshape(ctx)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target_shape": self.target_shape}


class RepeatVector(Layer):
    """Keras's RepeatVector: ``(batch, features)`` -> ``(batch, n, features)``, each sample repeated
    ``n`` times along a new time axis; backward sums dL/d(output) over that axis. The bridge of an
    encoder-decoder (seq2seq) model: ``LSTM(units)`` -> ``RepeatVector(horizon)`` ->
    ``LSTM(units, return_sequences=True)`` -> ``TimeDistributed(Dense(1))``. No weights; like
    Keras's, it carries no mask (its input has no time axis)."""

    def __init__(self, n: int, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(
                f"RepeatVector {self.name!r}: n must be an int (the number of repetitions); received {n!r}."
            )
        if n <= 0:
            raise ValueError(f"RepeatVector {self.name!r}: n must be a positive integer. Received: n={n}")
        self.n = int(n)

    def _refuse_rank(self, shape: Shape) -> None:
        hint = (
            " It repeats one vector per sample: put it after a layer that returns one, e.g. an LSTM/GRU with "
            "return_sequences=False, Flatten or GlobalAveragePooling1D."
            if len(shape) > 1
            else ""
        )
        raise ValueError(
            f"RepeatVector {self.name!r}: expects a 2-D input (batch, features); received input shape "
            f"{shape_str((None, *shape))}.{hint}"
        )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 1:
            self._refuse_rank(tuple(input_shape))
        return (self.n, input_shape[0])

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        if x.ndim != 2:
            self._refuse_rank(tuple(x.shape[1:]))
        # A contiguous copy, not a broadcast view: the next layer's kernel reads it as (batch, n, features).
        return np.repeat(x[:, None, :], self.n, axis=1), None

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        if not need_dx:
            return unused_input_grad((dy.shape[0], dy.shape[2]))
        return dy.sum(axis=1, dtype=np.float32)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n": self.n}
