"""Keras 3 interop: a seqcore ``Sequential`` from a Keras model object or a ``.keras`` file, and back.

Reading a ``.keras`` file needs neither Keras nor TensorFlow. The file is a zip archive holding
``config.json`` (the model's serialized config), ``metadata.json`` and ``model.weights.h5``; the
config is parsed as plain JSON (no object in it is ever instantiated or executed: only the layer
classes listed in ``SUPPORTED_LAYERS`` are mapped, by name, to seqcore's) and the weights are read
with h5py. Keras 3 stores the weights of an object at a path built from attribute names and
snake-cased class names, not from layer names:

* a Sequential model's layers (its InputLayer excluded) at ``layers/<snake class name>``, with
  ``_1``, ``_2``, ... for repeated classes (``layers/dense``, ``layers/dense_1``); a Functional
  model counts its InputLayers too;
* a layer's own variables at ``<path>/vars/0``, ``1``, ... in creation order (Dense and Conv1D:
  kernel, bias); an LSTM/GRU keeps them in its cell: ``<path>/cell/vars``;
* wrappers nest: ``<path>/forward_layer`` and ``<path>/backward_layer`` (Bidirectional),
  ``<path>/layer`` (TimeDistributed), ``<path>/layers/...`` (a nested Sequential).

Every layout and config detail here was read off files written by Keras 3.15 (see
tests/golden/generate_interop_goldens.py); the layouts are those of Keras's saving_lib since 3.0.

Every converter checks itself when it can (``verify=True``): the source and the converted model run
a fixed probe batch and the largest difference is attached as ``.conversion_report`` (see
:class:`~seqcore.interop.ConversionReport`); above the tolerance it raises, naming the first layer
whose output diverges.
"""

from __future__ import annotations

import copy
import datetime
import io
import json
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .. import _validation, constraints, initializers, regularizers
from ..layers import (
    ELU,
    GRU,
    LSTM,
    RNN,
    Activation,
    ActivityRegularization,
    Add,
    AdditiveAttention,
    AlphaDropout,
    Attention,
    Average,
    AveragePooling1D,
    BatchNormalization,
    Bidirectional,
    Concatenate,
    Conv1D,
    Conv1DTranspose,
    Cropping1D,
    Dense,
    DepthwiseConv1D,
    Dot,
    Dropout,
    Embedding,
    Flatten,
    GaussianDropout,
    GaussianNoise,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    GroupNormalization,
    GRUCell,
    Input,
    Layer,
    LayerNormalization,
    LeakyReLU,
    LSTMCell,
    Masking,
    Maximum,
    MaxPooling1D,
    Minimum,
    MultiHeadAttention,
    Multiply,
    Permute,
    PReLU,
    ReLU,
    RepeatVector,
    Reshape,
    RMSNormalization,
    SeparableConv1D,
    SimpleRNN,
    SimpleRNNCell,
    Softmax,
    SpatialDropout1D,
    StackedRNNCells,
    Subtract,
    TimeDistributed,
    UnitNormalization,
    UpSampling1D,
    ZeroPadding1D,
)
from ..layers.recurrent import _RNN
from ..models import Functional, Sequential
from ._common import (
    DEFAULT_TOLERANCE,
    PROBE_STEPS,
    ConversionReport,
    attach,
    check_close,
    fresh_states,
    optional_import,
    probe_batch,
    tolerance_for,
    unverified,
)

__all__ = ["SUPPORTED_LAYERS", "from_keras", "keras_config", "save_keras", "to_keras"]

#: Keras layer classes seqcore maps (InputLayer, Sequential and Functional as containers; a
#: Functional model may also hold the keras.ops calls listed in ``_keras_graph``).
SUPPORTED_LAYERS = (
    "InputLayer",
    "Dense",
    "Activation",
    "Dropout",
    "Flatten",
    "Reshape",
    "RepeatVector",
    "Masking",
    "Embedding",
    "LSTM",
    "GRU",
    "SimpleRNN",
    "RNN",
    "Conv1D",
    "Conv1DTranspose",
    "DepthwiseConv1D",
    "SeparableConv1D",
    "MaxPooling1D",
    "AveragePooling1D",
    "GlobalMaxPooling1D",
    "GlobalAveragePooling1D",
    "TimeDistributed",
    "Bidirectional",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "Dot",
    "LayerNormalization",
    "RMSNormalization",
    "BatchNormalization",
    "GroupNormalization",
    "UnitNormalization",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "Softmax",
    "UpSampling1D",
    "ZeroPadding1D",
    "Cropping1D",
    "Permute",
    "SpatialDropout1D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "MultiHeadAttention",
    "Attention",
    "AdditiveAttention",
    "Sequential",
    "Functional",
)
_MERGES = {"Add": Add, "Subtract": Subtract, "Multiply": Multiply, "Average": Average, "Maximum": Maximum,
           "Minimum": Minimum}  # fmt: skip
# Keras serializes its aliases under the canonical class name, but hand-written configs may not.
_ALIASES = {
    "MaxPool1D": "MaxPooling1D",
    "AvgPool1D": "AveragePooling1D",
    "GlobalMaxPool1D": "GlobalMaxPooling1D",
    "GlobalAvgPool1D": "GlobalAveragePooling1D",
    "Convolution1D": "Conv1D",
}
# Keras activations with a seqcore kernel of the same formula (Keras 3's hard_sigmoid is
# relu6(x + 3) / 6, which is seqcore's; gelu is Keras's default approximate=False; leaky_relu is the
# keras.activations function, negative_slope=0.2). Aliases (swish, hard_swish) map to seqcore's names.
_ACTIVATIONS = _validation.ALL_ACTIVATIONS
_RNN_ACTIVATIONS = ("linear", "relu", "sigmoid", "hard_sigmoid", "tanh")
_INITIALIZERS = {
    "Zeros",
    "Ones",
    "Constant",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "GlorotUniform",
    "GlorotNormal",
    "HeUniform",
    "HeNormal",
    "LecunUniform",
    "LecunNormal",
    "Orthogonal",
    "VarianceScaling",
}
_REGULARIZERS = {"L1": ("l1",), "L2": ("l2",), "L1L2": ("l1", "l2")}
# Keras's built-in constraints (keras.constraints), which seqcore has with the same names, arguments
# and formulas; the base class Constraint is the identity.
_CONSTRAINTS = ("Constraint", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm")
_MAX_JSON_BYTES = 64 << 20  # a config is a few KB; refuse to inflate anything absurd from a zip


# ================================================================================================
# Reading Keras configs
# ================================================================================================
def _snake(name: str) -> str:
    """Keras's ``to_snake_case`` (used for the weight paths): Conv1D -> conv1d, MaxPooling1D ->
    max_pooling1d, LSTM -> lstm."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _unique(name: str, used: dict[str, int]) -> str:
    """Keras's ``_get_unique_name``: name, name_1, name_2, ..."""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _class(entry: dict[str, Any]) -> str:
    name = str(entry.get("class_name"))
    return _ALIASES.get(name, name)


def _cfg(entry: dict[str, Any]) -> dict[str, Any]:
    c = entry.get("config", {})
    return c if isinstance(c, dict) else {}


def _who(entry: dict[str, Any]) -> str:
    return f"layer {_cfg(entry).get('name')!r} ({entry.get('class_name')})"


def _dtype_name(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):  # {"class_name": "DTypePolicy", "config": {"name": "float32"}}
        return _dtype_name(value.get("config", {}).get("name"))
    return str(value)


class _Options:
    """The options of one Keras layer config. Each is read at most once; ``finish`` then refuses any
    option nobody read unless it holds a default-like value, so an option seqcore does not know is
    an error rather than silently dropped."""

    _ALWAYS_OK = ("name", "trainable", "dtype")

    def __init__(self, entry: dict[str, Any], fn: str, graph: bool = False):
        self.entry, self.fn, self.graph = entry, fn, graph  # graph: the layer is called in a Functional model
        self.c = _cfg(entry)
        self.who = f"{fn}: {_who(entry)}"
        self.used: set[str] = set(self._ALWAYS_OK)
        dtype = _dtype_name(self.c.get("dtype"))
        if dtype not in (None, "float32"):
            raise ValueError(
                f"{self.who}: dtype policy {dtype!r}; seqcore computes in float32. Rebuild the Keras model with "
                f"dtype='float32' (or keras.config.set_dtype_policy('float32')) and copy the weights over."
            )
        module = entry.get("module")
        if module is not None and not str(module).startswith("keras"):
            raise ValueError(
                f"{self.who}: a custom layer (module {module!r}); seqcore can convert only Keras's built-in "
                f"layers {list(SUPPORTED_LAYERS)}."
            )

    def get(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        return self.c.get(key, default)

    def require(self, key: str, allowed: Sequence[Any], fix: str = "") -> Any:
        value = self.get(key, allowed[0])
        if value not in allowed:
            ok = " or ".join(repr(a) for a in allowed)
            fix = f" {fix}" if fix else ""
            raise ValueError(f"{self.who}: {key}={value!r} is not supported by seqcore (it needs {key}={ok}).{fix}")
        return value

    def activation(self, key: str, allowed: tuple[str, ...] = _ACTIVATIONS) -> str:
        value = self.get(key, "linear")
        if isinstance(value, dict):  # {"module": "keras.activations", "class_name": "function", "config": "relu"}
            value = value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
        value = "linear" if value is None else value
        value = _validation.ACTIVATION_ALIASES.get(value, value) if isinstance(value, str) else value
        if value not in allowed:
            raise ValueError(f"{self.who}: {key}={value!r} is not supported; seqcore has {list(allowed)}.")
        return str(value)

    def initializer(self, key: str) -> Any:
        value = self.get(key)
        if value is None or isinstance(value, str):
            try:
                return initializers.get(value) if value is not None else None
            except ValueError:
                raise ValueError(
                    f"{self.who}: {key}={value!r} is not an initializer seqcore has ({sorted(_INITIALIZERS)})."
                ) from None
        name = value.get("class_name")
        if name not in _INITIALIZERS:
            raise ValueError(f"{self.who}: {key} {name!r} is not an initializer seqcore has ({sorted(_INITIALIZERS)}).")
        cfg = dict(value.get("config") or {})
        cfg.pop("seed", None)  # seeds only matter for a fresh initialization, which a converted model skips
        for axes in ("input_axes", "output_axes"):  # Keras 3.15's VarianceScaling fan axes
            if cfg.pop(axes, None) is not None:
                raise ValueError(f"{self.who}: {key} {name} with {axes} is not supported by seqcore.")
        return initializers.deserialize({"class_name": name, "config": cfg})

    def regularizer(self, key: str) -> Any:
        value = self.get(key)
        if value is None or isinstance(value, str):
            return regularizers.get(value)
        name = value.get("class_name")
        if name not in _REGULARIZERS:
            raise ValueError(f"{self.who}: {key} {name!r} is not supported; seqcore has L1, L2 and L1L2.")
        cfg = value.get("config") or {}
        return regularizers.deserialize({"class_name": name, "config": {k: cfg[k] for k in _REGULARIZERS[name]}})

    def constraint(self, key: str) -> Any:
        """A Keras built-in constraint (``{"module": "keras.constraints", "class_name": "MaxNorm",
        "config": {...}, "registered_name": None}``, or a name in a hand-written config) as seqcore's.
        A custom constraint (Keras gives its class a ``registered_name``) or a function is refused."""
        value = self.get(key)
        if value is None:
            return None
        name: Any = None
        cfg: Any = {}
        custom = False
        if isinstance(value, str):
            cls = constraints.ALL_OBJECTS.get(value)
            name = None if cls is None else cls.__name__
        elif isinstance(value, dict):
            name, cfg = value.get("class_name"), value.get("config") or {}
            module = value.get("module")
            custom = value.get("registered_name") is not None or not (module is None or str(module).startswith("keras"))
        if custom or name not in _CONSTRAINTS:
            shown = value.get("class_name") if isinstance(value, dict) else value
            raise ValueError(
                f"{self.who}: {key} {shown!r} is not supported; seqcore converts only Keras's built-in "
                f"constraints {list(_CONSTRAINTS[1:])} (a custom constraint class or function cannot be converted)."
            )
        try:
            return constraints.deserialize({"class_name": name, "config": cfg})
        except ValueError as e:
            raise ValueError(f"{self.who}: {key}: {e}") from None

    def none(self, *keys: str) -> None:
        """Options seqcore supports only in their default ``None`` (quantization)."""
        for key in keys:
            value = self.get(key)
            if value is not None:
                shown = value.get("class_name", value) if isinstance(value, dict) else value
                raise ValueError(f"{self.who}: {key}={shown!r} is not supported by seqcore (only None).")

    def finish(self) -> None:
        for key, value in self.c.items():
            if key not in self.used and value not in (None, False, 0, 0.0, "", [], {}, ()):
                raise ValueError(f"{self.who}: option {key}={value!r} is not supported by seqcore's converter.")


def _one(value: Any) -> Any:
    """Keras stores 1-D sizes as 1-lists: [3] -> 3."""
    return value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value


def _kernel_bias_options(o: _Options) -> dict[str, Any]:
    """What Dense and Conv1D share: initializers, regularizers and constraints of a kernel and a bias,
    the activity regularizer, name and trainable flag."""
    return {
        "kernel_initializer": o.initializer("kernel_initializer") or "glorot_uniform",
        "bias_initializer": o.initializer("bias_initializer") or "zeros",
        "kernel_regularizer": o.regularizer("kernel_regularizer"),
        "bias_regularizer": o.regularizer("bias_regularizer"),
        "activity_regularizer": o.regularizer("activity_regularizer"),
        "kernel_constraint": o.constraint("kernel_constraint"),
        "bias_constraint": o.constraint("bias_constraint"),
        "name": o.get("name"),
        "trainable": o.get("trainable", True),
    }


def _dense(o: _Options) -> Layer:
    o.none("quantization_config")
    o.require("lora_rank", [None, 0])
    o.get("lora_alpha")
    return Dense(
        int(o.get("units")),
        activation=o.activation("activation"),
        use_bias=bool(o.get("use_bias", True)),
        **_kernel_bias_options(o),
    )


def _attention(o: _Options) -> Layer:
    cls = _class(o.entry)
    name, trainable = o.get("name"), o.get("trainable", True)
    if cls == "MultiHeadAttention":
        out = o.get("output_shape")
        axes = o.get("attention_axes")
        return MultiHeadAttention(
            int(o.get("num_heads")),
            int(o.get("key_dim")),
            value_dim=o.get("value_dim"),
            dropout=float(o.get("dropout", 0.0)),
            use_bias=bool(o.get("use_bias", True)),
            output_shape=None if out is None else tuple(out) if isinstance(out, (list, tuple)) else out,
            attention_axes=None if axes is None else tuple(axes) if isinstance(axes, (list, tuple)) else axes,
            sliding_window=o.get("sliding_window"),
            use_gate=bool(o.get("use_gate", False)),
            seed=o.get("seed"),
            **_kernel_bias_options(o),
        )
    o.get("activity_regularizer")
    if cls == "AdditiveAttention":
        return AdditiveAttention(use_scale=bool(o.get("use_scale", True)), dropout=float(o.get("dropout", 0.0)),
                                 seed=o.get("seed"), name=name, trainable=trainable)  # fmt: skip
    return Attention(use_scale=bool(o.get("use_scale", False)), score_mode=o.get("score_mode", "dot"),
                     dropout=float(o.get("dropout", 0.0)), seed=o.get("seed"), name=name,
                     trainable=trainable)  # fmt: skip


def _embedding(o: _Options) -> Layer:
    o.require("lora_rank", [None, 0])
    o.get("lora_alpha")
    o.get("input_length")  # deprecated in Keras 3, ignored by it
    o.get("sparse")
    return Embedding(
        int(o.get("input_dim")),
        int(o.get("output_dim")),
        embeddings_initializer=o.initializer("embeddings_initializer") or "uniform",
        embeddings_regularizer=o.regularizer("embeddings_regularizer"),
        embeddings_constraint=o.constraint("embeddings_constraint"),
        activity_regularizer=o.regularizer("activity_regularizer"),
        mask_zero=bool(o.get("mask_zero", False)),
        name=o.get("name"),
        trainable=o.get("trainable", True),
    )


def _rnn(o: _Options) -> Layer:
    cls = _class(o.entry)
    if o.graph:
        return_state = bool(o.get("return_state", False))
    else:
        return_state = o.require(
            "return_state", [False], "A Sequential model has one output per layer; use a Functional model in Keras."
        )
    o.get("use_cudnn")
    kw: dict[str, Any] = {
        "activation": o.activation("activation", _RNN_ACTIVATIONS),
        "use_bias": bool(o.get("use_bias", True)),
        "kernel_initializer": o.initializer("kernel_initializer") or "glorot_uniform",
        "recurrent_initializer": o.initializer("recurrent_initializer") or "orthogonal",
        "bias_initializer": o.initializer("bias_initializer") or "zeros",
        "kernel_regularizer": o.regularizer("kernel_regularizer"),
        "recurrent_regularizer": o.regularizer("recurrent_regularizer"),
        "bias_regularizer": o.regularizer("bias_regularizer"),
        "activity_regularizer": o.regularizer("activity_regularizer"),
        "kernel_constraint": o.constraint("kernel_constraint"),
        "recurrent_constraint": o.constraint("recurrent_constraint"),
        "bias_constraint": o.constraint("bias_constraint"),
        "zero_output_for_mask": bool(o.get("zero_output_for_mask", False)),
        "dropout": float(o.get("dropout", 0.0)),
        "recurrent_dropout": float(o.get("recurrent_dropout", 0.0)),
        "seed": o.get("seed"),
        "return_sequences": bool(o.get("return_sequences", False)),
        "return_state": return_state,
        "go_backwards": bool(o.get("go_backwards", False)),
        "stateful": bool(o.get("stateful", False)),
        "unroll": bool(o.get("unroll", False)),
        "name": o.get("name"),
        "trainable": o.get("trainable", True),
    }
    if cls == "SimpleRNN":
        return SimpleRNN(int(o.get("units")), **kw)
    kw["recurrent_activation"] = o.activation("recurrent_activation", _RNN_ACTIVATIONS)
    if cls == "LSTM":
        return LSTM(int(o.get("units")), unit_forget_bias=bool(o.get("unit_forget_bias", True)), **kw)
    return GRU(int(o.get("units")), reset_after=bool(o.get("reset_after", True)), **kw)


_CELLS = {"LSTMCell": LSTMCell, "GRUCell": GRUCell, "SimpleRNNCell": SimpleRNNCell}


def _cell(entry: Any, fn: str) -> Any:
    """A Keras cell entry (LSTMCell, GRUCell, SimpleRNNCell, StackedRNNCells of them) as seqcore's."""
    cls = _class(entry) if isinstance(entry, dict) else type(entry).__name__
    if cls == "StackedRNNCells":
        return StackedRNNCells([_cell(c, fn) for c in _cfg(entry).get("cells") or []], name=_cfg(entry).get("name"))
    if cls not in _CELLS:
        raise ValueError(
            f"{fn}: the RNN's cell is a {cls}; seqcore converts LSTMCell, GRUCell, SimpleRNNCell and StackedRNNCells "
            f"(a custom cell has no fused kernel)."
        )
    o = _Options(entry, fn)
    kw: dict[str, Any] = {
        "activation": o.activation("activation", _RNN_ACTIVATIONS),
        "use_bias": bool(o.get("use_bias", True)),
        "kernel_initializer": o.initializer("kernel_initializer") or "glorot_uniform",
        "recurrent_initializer": o.initializer("recurrent_initializer") or "orthogonal",
        "bias_initializer": o.initializer("bias_initializer") or "zeros",
        "kernel_regularizer": o.regularizer("kernel_regularizer"),
        "recurrent_regularizer": o.regularizer("recurrent_regularizer"),
        "bias_regularizer": o.regularizer("bias_regularizer"),
        "kernel_constraint": o.constraint("kernel_constraint"),
        "recurrent_constraint": o.constraint("recurrent_constraint"),
        "bias_constraint": o.constraint("bias_constraint"),
        "dropout": float(o.get("dropout", 0.0)),
        "recurrent_dropout": float(o.get("recurrent_dropout", 0.0)),
        "seed": o.get("seed"),
        "name": o.get("name"),
    }
    if cls != "SimpleRNNCell":
        kw["recurrent_activation"] = o.activation("recurrent_activation", _RNN_ACTIVATIONS)
    if cls == "LSTMCell":
        kw["unit_forget_bias"] = bool(o.get("unit_forget_bias", True))
    if cls == "GRUCell":
        kw["reset_after"] = bool(o.get("reset_after", True))
    o.get("implementation")  # Keras 2's kernel choice; the fused kernel is the only one
    cell = _CELLS[cls](int(o.get("units")), **kw)
    o.finish()
    return cell


def _rnn_wrapper(o: _Options) -> Layer:
    if not o.graph and o.get("return_state", False):
        raise ValueError(f"{o.who}: return_state=True has no place in a Keras Sequential model.")
    return RNN(
        _cell(o.get("cell"), o.fn),
        return_sequences=bool(o.get("return_sequences", False)),
        return_state=bool(o.get("return_state", False)),
        go_backwards=bool(o.get("go_backwards", False)),
        stateful=bool(o.get("stateful", False)),
        unroll=bool(o.get("unroll", False)),
        zero_output_for_mask=bool(o.get("zero_output_for_mask", False)),
        name=o.get("name"),
        trainable=o.get("trainable", True),
    )


def _conv1d(o: _Options) -> Layer:
    o.require("data_format", ["channels_last", None], "Transpose channels-first data: x.transpose(0, 2, 1).")
    return Conv1D(
        int(o.get("filters")),
        _one(o.get("kernel_size")),
        strides=_one(o.get("strides", 1)),
        padding=o.get("padding", "valid"),
        dilation_rate=_one(o.get("dilation_rate", 1)),
        groups=int(o.get("groups", 1)),
        activation=o.activation("activation"),
        use_bias=bool(o.get("use_bias", True)),
        **_kernel_bias_options(o),
    )


def _conv1d_transpose(o: _Options) -> Layer:
    o.require("data_format", ["channels_last", None], "Transpose channels-first data: x.transpose(0, 2, 1).")
    op = o.get("output_padding")
    return Conv1DTranspose(
        int(o.get("filters")),
        _one(o.get("kernel_size")),
        strides=_one(o.get("strides", 1)),
        padding=o.get("padding", "valid"),
        output_padding=None if op is None else _one(op),
        dilation_rate=_one(o.get("dilation_rate", 1)),
        activation=o.activation("activation"),
        use_bias=bool(o.get("use_bias", True)),
        **_kernel_bias_options(o),
    )


def _separable(o: _Options) -> Layer:
    o.require("data_format", ["channels_last", None], "Transpose channels-first data: x.transpose(0, 2, 1).")
    kw: dict[str, Any] = {
        "strides": _one(o.get("strides", 1)),
        "padding": o.get("padding", "valid"),
        "dilation_rate": _one(o.get("dilation_rate", 1)),
        "depth_multiplier": int(o.get("depth_multiplier", 1)),
        "activation": o.activation("activation"),
        "use_bias": bool(o.get("use_bias", True)),
        "depthwise_initializer": o.initializer("depthwise_initializer") or "glorot_uniform",
        "bias_initializer": o.initializer("bias_initializer") or "zeros",
        "depthwise_regularizer": o.regularizer("depthwise_regularizer"),
        "bias_regularizer": o.regularizer("bias_regularizer"),
        "activity_regularizer": o.regularizer("activity_regularizer"),
        "depthwise_constraint": o.constraint("depthwise_constraint"),
        "bias_constraint": o.constraint("bias_constraint"),
        "name": o.get("name"),
        "trainable": o.get("trainable", True),
    }
    if _class(o.entry) == "DepthwiseConv1D":
        return DepthwiseConv1D(_one(o.get("kernel_size")), **kw)
    return SeparableConv1D(
        int(o.get("filters")),
        _one(o.get("kernel_size")),
        pointwise_initializer=o.initializer("pointwise_initializer") or "glorot_uniform",
        pointwise_regularizer=o.regularizer("pointwise_regularizer"),
        pointwise_constraint=o.constraint("pointwise_constraint"),
        **kw,
    )


def _pool(o: _Options) -> Layer:
    o.require("data_format", ["channels_last", None], "Transpose channels-first data: x.transpose(0, 2, 1).")
    cls = MaxPooling1D if _class(o.entry) == "MaxPooling1D" else AveragePooling1D
    strides = o.get("strides")
    return cls(
        _one(o.get("pool_size", 2)),
        strides=None if strides is None else _one(strides),
        padding=o.get("padding", "valid"),
        name=o.get("name"),
    )


def _global_pool(o: _Options) -> Layer:
    o.require("data_format", ["channels_last", "channels_first", None], "")
    cls = GlobalMaxPooling1D if _class(o.entry) == "GlobalMaxPooling1D" else GlobalAveragePooling1D
    return cls(data_format=o.get("data_format"), keepdims=bool(o.get("keepdims", False)), name=o.get("name"))


def _simple(o: _Options) -> Layer:
    cls = _class(o.entry)
    name = o.get("name")
    if cls == "Activation":
        return Activation(o.activation("activation"), name=name)
    if cls == "Dropout":
        shape = o.get("noise_shape")
        return Dropout(float(o.get("rate")), noise_shape=shape, seed=o.get("seed"), name=name)
    if cls == "Flatten":
        o.require("data_format", ["channels_last", None], "Flatten(data_format='channels_first') reorders features.")
        return Flatten(name=name)
    if cls == "Reshape":
        return Reshape(tuple(o.get("target_shape")), name=name)
    if cls == "Masking":
        return Masking(float(o.get("mask_value", 0.0)), name=name)
    if cls == "RepeatVector":
        return RepeatVector(int(o.get("n")), name=name)
    if cls == "UpSampling1D":
        return UpSampling1D(int(o.get("size", 2)), name=name)
    if cls == "ZeroPadding1D":
        return ZeroPadding1D(o.get("padding", 1), data_format=o.get("data_format"), name=name)
    if cls == "Cropping1D":
        return Cropping1D(o.get("cropping", (1, 1)), name=name)
    if cls == "Permute":
        return Permute(tuple(o.get("dims")), name=name)
    if cls == "SpatialDropout1D":
        return SpatialDropout1D(float(o.get("rate")), seed=o.get("seed"), name=name)
    if cls == "GaussianNoise":
        return GaussianNoise(float(o.get("stddev")), seed=o.get("seed"), name=name)
    if cls == "GaussianDropout":
        return GaussianDropout(float(o.get("rate")), seed=o.get("seed"), name=name)
    if cls == "AlphaDropout":
        return AlphaDropout(float(o.get("rate")), noise_shape=o.get("noise_shape"), seed=o.get("seed"), name=name)
    if cls == "ActivityRegularization":
        return ActivityRegularization(float(o.get("l1", 0.0)), float(o.get("l2", 0.0)), name=name)
    raise AssertionError(cls)


def _time_distributed(o: _Options) -> Layer:
    inner = _layer_from_entry(o.get("layer"), o.fn)
    return TimeDistributed(inner, name=o.get("name"), trainable=o.get("trainable", True))  # type: ignore[arg-type]


def _bidirectional(o: _Options) -> Layer:
    # In a graph the wrapped layers may return their states (Keras reads return_state off them).
    fwd = _layer_from_entry(o.get("layer"), o.fn, graph=o.graph)
    back_entry = o.get("backward_layer")
    bwd = _layer_from_entry(back_entry, o.fn, graph=o.graph) if back_entry else None
    merge = o.get("merge_mode", "concat")
    if merge is None and not o.graph:
        raise ValueError(f"{o.who}: merge_mode=None returns two outputs, which a Sequential model cannot hold.")
    return Bidirectional(
        fwd,  # type: ignore[arg-type]
        merge_mode=merge,
        backward_layer=bwd,  # type: ignore[arg-type]
        name=o.get("name"),
        trainable=o.get("trainable", True),
    )


def _merge(o: _Options) -> Layer:
    cls = _class(o.entry)
    kw = {"name": o.get("name"), "trainable": o.get("trainable", True)}
    if cls == "Concatenate":
        return Concatenate(axis=int(o.get("axis", -1)), **kw)
    if cls == "Dot":
        return Dot(o.get("axes"), normalize=bool(o.get("normalize", False)), **kw)
    return _MERGES[cls](**kw)  # type: ignore[no-any-return]


def _norm(o: _Options) -> Layer:
    cls = _class(o.entry)
    kw = {"name": o.get("name"), "trainable": o.get("trainable", True)}
    axis = o.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if cls == "RMSNormalization":
        return RMSNormalization(axis=axis, epsilon=float(o.get("epsilon", 1e-6)), **kw)
    if cls == "UnitNormalization":
        return UnitNormalization(axis=axis, **kw)
    common = {
        "epsilon": float(o.get("epsilon", 1e-3)),
        "center": bool(o.get("center", True)),
        "scale": bool(o.get("scale", True)),
        "beta_initializer": o.initializer("beta_initializer") or "zeros",
        "gamma_initializer": o.initializer("gamma_initializer") or "ones",
        "beta_regularizer": o.regularizer("beta_regularizer"),
        "gamma_regularizer": o.regularizer("gamma_regularizer"),
        "beta_constraint": o.constraint("beta_constraint"),
        "gamma_constraint": o.constraint("gamma_constraint"),
        **kw,
    }
    if cls == "GroupNormalization":
        return GroupNormalization(groups=int(o.get("groups", 32)), axis=int(axis), **common)
    if cls == "LayerNormalization":
        with warnings.catch_warnings():  # the deprecation warning is Keras's user's, already given there
            warnings.simplefilter("ignore")
            return LayerNormalization(axis=axis, rms_scaling=bool(o.get("rms_scaling", False)), **common)
    o.require("renorm", [False], "Batch renormalization is not supported by seqcore yet.")
    o.get("renorm_clipping")
    o.get("renorm_momentum")
    o.get("synchronized")
    return BatchNormalization(
        axis=int(axis),
        momentum=float(o.get("momentum", 0.99)),
        moving_mean_initializer=o.initializer("moving_mean_initializer") or "zeros",
        moving_variance_initializer=o.initializer("moving_variance_initializer") or "ones",
        **common,
    )


def _activation_layer(o: _Options) -> Layer:
    cls = _class(o.entry)
    kw = {"name": o.get("name"), "trainable": o.get("trainable", True)}
    if cls == "ReLU":
        return ReLU(o.get("max_value"), o.get("negative_slope", 0.0), o.get("threshold", 0.0), **kw)
    if cls == "LeakyReLU":
        return LeakyReLU(o.get("negative_slope", 0.3), **kw)
    if cls == "ELU":
        return ELU(o.get("alpha", 1.0), **kw)
    if cls == "Softmax":
        return Softmax(o.get("axis", -1), **kw)
    return PReLU(
        alpha_initializer=o.initializer("alpha_initializer") or "zeros",
        alpha_regularizer=o.regularizer("alpha_regularizer"),
        alpha_constraint=o.constraint("alpha_constraint"),
        shared_axes=o.get("shared_axes"),
        **kw,
    )


_IMPORTERS: dict[str, Callable[[_Options], Any]] = {
    "Dense": _dense,
    "LSTM": _rnn,
    "GRU": _rnn,
    "SimpleRNN": _rnn,
    "RNN": _rnn_wrapper,
    "Conv1D": _conv1d,
    "Conv1DTranspose": _conv1d_transpose,
    "DepthwiseConv1D": _separable,
    "SeparableConv1D": _separable,
    "MaxPooling1D": _pool,
    "AveragePooling1D": _pool,
    "GlobalMaxPooling1D": _global_pool,
    "GlobalAveragePooling1D": _global_pool,
    "Activation": _simple,
    "Dropout": _simple,
    "Flatten": _simple,
    "Reshape": _simple,
    "Masking": _simple,
    "RepeatVector": _simple,
    "UpSampling1D": _simple,
    "ZeroPadding1D": _simple,
    "Cropping1D": _simple,
    "Permute": _simple,
    "SpatialDropout1D": _simple,
    "GaussianNoise": _simple,
    "GaussianDropout": _simple,
    "AlphaDropout": _simple,
    "ActivityRegularization": _simple,
    "Embedding": _embedding,
    **{cls: _attention for cls in ("MultiHeadAttention", "Attention", "AdditiveAttention")},
    "TimeDistributed": _time_distributed,
    "Bidirectional": _bidirectional,
    **{cls: _merge for cls in (*_MERGES, "Concatenate", "Dot")},
    **{
        cls: _norm
        for cls in (
            "LayerNormalization",
            "RMSNormalization",
            "BatchNormalization",
            "GroupNormalization",
            "UnitNormalization",
        )
    },  # fmt: skip
    **{cls: _activation_layer for cls in ("ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax")},
}


def _layer_from_entry(entry: Any, fn: str, graph: bool = False) -> Layer | Sequential | Functional:
    if not isinstance(entry, dict) or "class_name" not in entry:
        raise ValueError(
            f"{fn}: expected a serialized Keras layer (a dict with 'class_name'); received {entry!r:.200}."
        )
    cls = _class(entry)
    if cls in ("Sequential", "Functional"):
        return _model_from_entry(entry, fn)
    if cls not in _IMPORTERS:
        raise ValueError(
            f"{fn}: {_who(entry)} is not supported: seqcore has no {cls} layer. Supported Keras layers: "
            f"{', '.join(SUPPORTED_LAYERS)}."
        )
    o = _Options(entry, fn, graph)
    try:
        layer = _IMPORTERS[cls](o)
    except (ValueError, TypeError) as e:
        if str(e).startswith(fn):
            raise
        raise type(e)(f"{o.who}: {e}") from None
    o.finish()
    return layer  # type: ignore[no-any-return]


class _Chain:
    """A Keras Sequential, or a Functional model that is a linear chain, as an ordered layer list."""

    def __init__(self, entry: dict[str, Any], fn: str):
        self.cls = _class(entry)
        c = _cfg(entry)
        self.name = c.get("name")
        self.functional = self.cls != "Sequential"
        all_layers = list(c.get("layers") or [])
        self.batch_shape: tuple[Any, ...] | None = None
        self.input_dtype: str | None = None
        inputs = [e for e in all_layers if _class(e) == "InputLayer"]
        if inputs:
            ic = _cfg(inputs[0])
            self.input_dtype = _dtype_name(ic.get("dtype"))
            bs = ic.get("batch_shape", ic.get("batch_input_shape"))
            if bs is None and ic.get("shape") is not None:
                bs = [ic.get("batch_size"), *ic["shape"]]
            self.batch_shape = None if bs is None else tuple(bs)
        else:
            bs = c.get("build_input_shape") or (entry.get("build_config") or {}).get("input_shape")
            self.batch_shape = None if bs is None else tuple(bs)
        if self.functional:
            self._check_chain(all_layers, c, fn)
        self.entries = [e for e in all_layers if _class(e) != "InputLayer"]
        # Weight paths: Keras names children by class within the container's `layers` list, which
        # for Sequential omits the InputLayer and for Functional keeps it.
        used: dict[str, int] = {}
        names = {}
        for e in all_layers:
            if self.functional or _class(e) != "InputLayer":
                names[id(e)] = _unique(_snake(str(e.get("class_name"))), used)
        self.paths = [names[id(e)] for e in self.entries]

    def _check_chain(self, layers: list[dict[str, Any]], c: dict[str, Any], fn: str) -> None:
        if self.cls != "Functional":
            raise ValueError(
                f"{fn}: model {self.name!r} is a {self.cls}; seqcore converts Sequential models and Functional models "
                f"that are a linear chain of supported layers (a subclassed model has no config to read)."
            )

        def refuse(why: str) -> None:
            raise ValueError(
                f"{fn}: Functional model {self.name!r} is not a linear chain ({why}); seqcore.Sequential can only hold "
                f"one input flowing through one layer after another."
            )

        ins, outs = c.get("input_layers"), c.get("output_layers")
        if isinstance(ins, dict) or isinstance(outs, dict):
            refuse("it takes or gives a dict")
        ins = ins if ins and isinstance(ins[0], list) else [ins]
        outs = outs if outs and isinstance(outs[0], list) else [outs]
        if len(ins) != 1 or len(outs) != 1:
            refuse(f"{len(ins)} inputs and {len(outs)} outputs")
        if not layers or _class(layers[0]) != "InputLayer" or _cfg(layers[0]).get("name") != ins[0][0]:
            refuse("the first layer is not its input")
        prev = ins[0][0]
        for e in layers[1:]:
            name = _cfg(e).get("name")
            nodes = e.get("inbound_nodes") or []
            args = nodes[0].get("args", []) if len(nodes) == 1 and isinstance(nodes[0], dict) else None
            ok = (
                args is not None
                and len(args) == 1
                and isinstance(args[0], dict)
                and (args[0].get("config") or {}).get("keras_history", [None])[0] == prev
                and all(v is None or k == "training" for k, v in (nodes[0].get("kwargs") or {}).items())
            )
            if not ok:
                refuse(f"layer {name!r} is not called once on the output of {prev!r} alone")
            prev = name
        if outs[0][0] != prev:
            refuse(f"its output is {outs[0][0]!r}, not the last layer {prev!r}")


def _is_graph(entry: dict[str, Any]) -> bool:
    """A Functional model that is not a linear chain (a chain converts to a seqcore Sequential)."""
    if _class(entry) != "Functional":
        return False
    try:
        _Chain(entry, "")
    except ValueError:
        return True
    return False


def _model_from_entry(entry: dict[str, Any], fn: str) -> Sequential | Functional:
    if _is_graph(entry):
        from ._keras_graph import graph_from_entry

        name = _cfg(entry).get("name")
        try:
            return graph_from_entry(entry, fn, lambda e: _layer_from_entry(e, fn, graph=True))
        except ValueError as e:
            if str(e).startswith(fn):
                raise
            raise ValueError(f"{fn}: model {name!r}: {e}") from None
    chain = _Chain(entry, fn)
    layers: list[Any] = []
    if chain.batch_shape is not None:
        layers.append(Input(shape=chain.batch_shape[1:], batch_size=chain.batch_shape[0], dtype=chain.input_dtype))
    layers += [_layer_from_entry(e, fn) for e in chain.entries]
    try:
        return Sequential(layers, name=chain.name)
    except ValueError as e:
        raise ValueError(f"{fn}: model {chain.name!r}: {e}") from None


# ----- weights ---------------------------------------------------------------------------------
def _weight_groups(entry: dict[str, Any], path: str) -> Iterator[tuple[str, int]]:
    """(h5 group path, number of variables) of every object Keras saves for this layer, in the order
    of ``layer.get_weights()``. The count is what the config implies; containers hold none."""
    cls, c = _class(entry), _cfg(entry)
    yield path, 0 if cls in ("LSTM", "GRU", "SimpleRNN") else _n_vars(cls, c)
    if cls == "RNN":
        cell = c.get("cell") or {}
        if _class(cell) == "StackedRNNCells":
            used: dict[str, int] = {}
            for sub in _cfg(cell).get("cells") or []:
                name = _unique(_snake(str(sub.get("class_name"))), used)
                yield f"{path}/cell/cells/{name}", 2 + bool(_cfg(sub).get("use_bias", True))
        else:
            yield f"{path}/cell", 2 + bool(_cfg(cell).get("use_bias", True))
    if cls in ("LSTM", "GRU", "SimpleRNN"):
        yield f"{path}/cell", 2 + bool(c.get("use_bias", True))
    elif cls == "Bidirectional":
        yield from _weight_groups(c["layer"], f"{path}/forward_layer")
        yield from _weight_groups(c.get("backward_layer") or c["layer"], f"{path}/backward_layer")
    elif cls == "TimeDistributed":
        yield from _weight_groups(c["layer"], f"{path}/layer")
    elif cls == "MultiHeadAttention":  # EinsumDense sublayers, each a kernel and a bias
        per = 1 + bool(c.get("use_bias", True))
        for sub in ("query", "key", *(("gate",) if c.get("use_gate") else ()), "value", "attention_output"):
            yield f"{path}/{sub}", per
    elif cls == "Functional":
        from ._keras_graph import weight_paths

        for sub, name in weight_paths(list(c.get("layers") or []), _snake, _unique):
            yield from _weight_groups(sub, f"{path}/layers/{name}")
    elif cls == "Sequential":
        chain = _Chain(entry, "from_keras")
        for sub, name in zip(chain.entries, chain.paths, strict=True):
            yield from _weight_groups(sub, f"{path}/layers/{name}")


def _n_vars(cls: str, c: dict[str, Any]) -> int:
    if cls == "Embedding":
        return 1  # embeddings
    if cls == "RMSNormalization":
        return 1  # scale
    if cls == "LayerNormalization":
        rms = bool(c.get("rms_scaling", False))
        return int(bool(c.get("scale", True)) or rms) + int(bool(c.get("center", True)) and not rms)
    if cls == "PReLU":
        return 1  # alpha
    if cls == "Attention":  # [scale,] [concat_score_weight]
        return int(bool(c.get("use_scale", False))) + int(c.get("score_mode", "dot") == "concat")
    if cls == "AdditiveAttention":
        return int(bool(c.get("use_scale", True)))
    if cls in ("DepthwiseConv1D", "SeparableConv1D"):  # [depthwise, pointwise,] bias
        return (1 if cls == "DepthwiseConv1D" else 2) + bool(c.get("use_bias", True))
    if cls == "GroupNormalization":  # gamma, beta
        return int(bool(c.get("scale", True))) + int(bool(c.get("center", True)))
    if cls == "BatchNormalization":  # gamma, beta, moving_mean, moving_variance
        return int(bool(c.get("scale", True))) + int(bool(c.get("center", True))) + 2
    return 1 + bool(c.get("use_bias", True)) if cls in ("Dense", "Conv1D", "Conv1DTranspose") else 0


def _h5py() -> Any:
    h5py = optional_import("h5py")
    if h5py is None:
        raise ImportError(
            "seqcore.interop reads and writes the weights of .keras files with h5py, which is not installed: "
            "pip install h5py (or pip install 'seqcore[interop]')."
        )
    return h5py


def _read_vars(h5: Any, group_path: str, fn: str, who: str) -> list[np.ndarray]:
    h5py = _h5py()
    path = f"{group_path}/vars" if group_path else "vars"
    if path not in h5:
        return []
    group = h5[path]
    names = sorted(group.keys(), key=lambda k: int(k) if k.isdigit() else -1)
    out = []
    for i, key in enumerate(names):
        # Only plain datasets stored inside this file: an external link, external raw storage or a
        # virtual dataset would make h5py read another file on disk.
        if key != str(i):
            raise ValueError(f"{fn}: {who}: unexpected entry {path}/{key} in model.weights.h5 (expected 0, 1, ...).")
        if not isinstance(group.get(key, getlink=True), h5py.HardLink):
            raise ValueError(
                f"{fn}: {who}: {path}/{key} in model.weights.h5 is a link (possibly to another file); only arrays "
                f"stored in the file itself are read."
            )
        ds = group[key]
        if not isinstance(ds, h5py.Dataset) or ds.is_virtual or ds.external:
            raise ValueError(f"{fn}: {who}: {path}/{key} in model.weights.h5 is not a plain stored array.")
        if ds.dtype.kind != "f":
            raise ValueError(f"{fn}: {who}: {path}/{key} has dtype {ds.dtype}; expected floating point weights.")
        out.append(np.asarray(ds[()], dtype=np.float32))
    return out


class _KerasFile:
    """The parts of a ``.keras`` archive, read without Keras."""

    def __init__(self, path: str, fn: str):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{fn}: no such file {path!r}.")
        if not zipfile.is_zipfile(path):
            hint = (
                " Legacy Keras 2 HDF5 files (.h5) are not supported: load them with keras and pass the model object, "
                "or re-save them as .keras with Keras 3."
                if path.endswith((".h5", ".hdf5"))
                else ""
            )
            raise ValueError(f"{fn}: {path!r} is not a .keras file (a zip archive written by Keras 3).{hint}")
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if "config.json" not in names:
                raise ValueError(f"{fn}: {path!r} has no config.json; it is not a Keras 3 .keras file.")
            if "model.weights.h5" not in names:
                sharded = (
                    " (its weights are sharded, which seqcore does not read)" if "model.weights.json" in names else ""
                )
                raise ValueError(f"{fn}: {path!r} has no model.weights.h5{sharded}.")
            if z.getinfo("config.json").file_size > _MAX_JSON_BYTES:
                raise ValueError(f"{fn}: config.json in {path!r} is larger than {_MAX_JSON_BYTES >> 20} MiB.")
            self.config = json.loads(z.read("config.json"))
            self.weights_bytes = z.read("model.weights.h5")


# ================================================================================================
# from_keras
# ================================================================================================
def from_keras(source: Any, *, verify: bool = True, tolerance: float = DEFAULT_TOLERANCE) -> Sequential | Functional:
    """A seqcore model with the architecture and weights of a Keras 3 model.

    ``source`` is a ``keras.Sequential``, a Functional ``keras.Model(inputs, outputs)``, or the path
    of a ``.keras`` file; reading the file needs h5py but not Keras. A Sequential, or a Functional
    model that is a linear chain, becomes a ``seqcore.Sequential``; any other graph (branches, merges,
    shared layers, several inputs or outputs, ``initial_state=`` links, ``x + res`` and the other
    ``keras.ops`` calls seqcore has) becomes a seqcore ``Functional`` model with the same layer
    names. Supported layers: ``SUPPORTED_LAYERS``, with their initializers, L1/L2 regularizers,
    built-in constraints and activations. A layer or option seqcore lacks
    (``data_format='channels_first'``, a custom constraint, a custom layer, ...) raises a ValueError
    naming the layer, its class and the option.

    With ``verify=True`` and Keras importable, both models run a probe batch and the returned
    model's ``conversion_report.max_abs_diff`` holds the largest difference over its outputs; above
    ``tolerance`` (times the largest output magnitude, at least 1) a ValueError names the first
    diverging layer. Without Keras the report's ``max_abs_diff`` is None."""
    fn = "from_keras"
    keras_model = None
    h5: Any = None
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        kfile = _KerasFile(path, fn)
        entry = kfile.config
    elif hasattr(source, "get_config") and hasattr(source, "layers") and hasattr(source, "get_weights"):
        keras_model, path = source, ""
        try:
            entry = {"class_name": type(source).__name__, "config": source.get_config()}
        except NotImplementedError:
            raise ValueError(
                f"{fn}: {type(source).__name__} has no config (a subclassed model); convert a Sequential or Functional "
                f"model."
            ) from None
        if type(source).__name__ == "Model":  # keras.Model(inputs, outputs) is a Functional
            entry["class_name"] = "Functional"
    else:
        raise TypeError(
            f"{fn}: expected a keras.Sequential / Functional model or the path of a .keras file; received "
            f"{type(source).__name__}."
        )
    try:
        if not isinstance(entry, dict) or _class(entry) not in ("Sequential", "Functional"):
            got = entry.get("class_name") if isinstance(entry, dict) else type(entry).__name__
            raise ValueError(
                f"{fn}: the model is a {got}; seqcore converts Sequential and Functional models (a subclassed "
                f"model has no config to read)."
            )
        graph = _is_graph(entry)
        if graph:
            from ._keras_graph import weight_paths

            pairs = list(weight_paths(list(_cfg(entry).get("layers") or []), _snake, _unique))
        else:
            chain = _Chain(entry, fn)
            if chain.batch_shape is None:
                raise ValueError(
                    f"{fn}: model {chain.name!r} has no input shape (it was never built), so it has no weights to "
                    f"convert. Give it a keras.Input(shape=...) or call it on data first."
                )
            pairs = list(zip(chain.entries, chain.paths, strict=True))
        model = _model_from_entry(entry, fn)
        targets = [model.get_layer(str(_cfg(e).get("name"))) for e, _ in pairs] if graph else list(model.layers)
        if keras_model is not None:
            if graph:
                klayers = [keras_model.get_layer(layer.name) for layer in targets]
            else:
                klayers = [kl for kl in keras_model.layers if type(kl).__name__ != "InputLayer"]
            arrays = [[np.asarray(w, np.float32) for w in kl.get_weights()] for kl in klayers]
        else:
            try:
                h5 = _h5py().File(io.BytesIO(kfile.weights_bytes), "r")
            except OSError as err:
                raise ValueError(f"{fn}: model.weights.h5 in {path!r} is not a readable HDF5 file ({err}).") from None
            arrays = []
            for e, p in pairs:
                found: list[np.ndarray] = []
                for group, _ in _weight_groups(e, f"layers/{p}"):
                    found += _read_vars(h5, group, fn, _who(e))
                arrays.append(found)
        for layer, (e, _), ws in zip(targets, pairs, arrays, strict=True):
            want = len(layer.weights)
            if len(ws) != want:
                where = "the Keras model" if keras_model is not None else f"{path!r}"
                raise ValueError(
                    f"{fn}: {_who(e)} has {want} weight arrays in seqcore but {len(ws)} in {where}; the file does not "
                    f"follow Keras 3's weight layout for this layer."
                )
            try:
                layer.set_weights(ws)
            except ValueError as err:
                raise ValueError(f"{fn}: {_who(e)}: {err}") from None
    finally:
        if h5 is not None:
            h5.close()
    if not verify:
        return attach(model, unverified("keras", "seqcore", "verify=False"))
    keras = optional_import("keras")
    if keras is None:
        return attach(model, unverified("keras", "seqcore", "keras is not installed, so nothing to compare with"))
    if keras_model is None:
        # safe_mode=True (the default) refuses configs that would deserialize code (Lambda layers).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            keras_model = keras.saving.load_model(path, compile=False, safe_mode=True)
    if isinstance(model, Functional):
        return attach(model, _verify_graph(fn, keras, keras_model, model, tolerance, "keras", "seqcore"))
    entries = [e for e, _ in pairs]
    return attach(model, _verify_pair(fn, keras, keras_model, model, entries, tolerance, "keras", "seqcore"))


def _probe_for(model: Sequential, entries: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(probe, probe with post-padding): the padded variant, used when the model starts with Masking,
    makes the check cover mask handling; the plain one is for the layer-by-layer search."""
    shape = tuple(PROBE_STEPS if d is None else int(d) for d in model.input_shape[1:])
    x = probe_batch((model.input_shape[0] or 2, *shape))  # a stateful model fixes its batch size
    first = _class(entries[0]) if entries else None
    if first == "Embedding":
        # Indices, not values: in [1, input_dim), with post-padding zeros when index 0 is the mask.
        vocab = int(_cfg(entries[0]).get("input_dim", 2))
        x = np.random.default_rng(0).integers(1, max(2, vocab), size=x.shape).astype(np.int32)
        if vocab < 2:
            x[...] = 0
    masked = x.copy()
    padded = (first == "Masking" and len(shape) == 2) or (first == "Embedding" and _cfg(entries[0]).get("mask_zero"))
    if padded and shape and shape[0] >= 2 and len(x) >= 2:
        pad = 0 if first == "Embedding" else _cfg(entries[0]).get("mask_value", 0.0)
        masked[1, shape[0] // 2 :] = pad
    return x, masked


def _keras_run(keras: Any, layer_or_model: Any, x: np.ndarray) -> np.ndarray:
    # Keras warns about its own model here (e.g. "Flatten destroys the mask"); that concerns the
    # user's model, not the conversion, and must not turn the check into an error under -W error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(keras.ops.convert_to_numpy(layer_or_model(x, training=False)))


def _verify_pair(
    fn: str,
    keras: Any,
    keras_model: Any,
    model: Sequential,
    entries: Sequence[dict[str, Any]],
    tolerance: float,
    source: str,
    target: str,
) -> ConversionReport:
    x, masked = _probe_for(model, entries)
    with fresh_states(model), _fresh_keras_states(keras, keras_model):
        return _compare(fn, keras, keras_model, model, x, masked, tolerance, source, target)


@contextmanager
def _fresh_keras_states(keras: Any, keras_model: Any) -> Iterator[None]:
    """Keras's counterpart of ``fresh_states``: stateful RNNs keep their state in ``layer.states``
    variables; they are zeroed for the check and restored after it."""
    flatten = getattr(keras_model, "_flatten_layers", None)
    layers = list(flatten()) if callable(flatten) else list(keras_model.layers)
    variables = [
        v
        for layer in layers
        if getattr(layer, "stateful", False) and getattr(layer, "states", None) is not None
        for v in (layer.states if isinstance(layer.states, (list, tuple)) else [layer.states])
    ]
    saved = [np.array(v.numpy()) for v in variables]
    for v, value in zip(variables, saved, strict=True):
        v.assign(np.zeros_like(value))
    try:
        yield
    finally:
        for v, value in zip(variables, saved, strict=True):
            v.assign(value)


def _compare(
    fn: str,
    keras: Any,
    keras_model: Any,
    model: Sequential,
    x: np.ndarray,
    masked: np.ndarray,
    tolerance: float,
    source: str,
    target: str,
) -> ConversionReport:
    k_out = _keras_run(keras, keras_model, masked)
    s_out = model(masked)
    klayers = [kl for kl in keras_model.layers if type(kl).__name__ != "InputLayer"]

    def locate(tol: float) -> str:
        h = x
        for kl, sl in zip(klayers, model.layers, strict=True):
            ref = _keras_run(keras, kl, h)
            got = sl(h)
            d = float(np.max(np.abs(ref - got))) if ref.shape == got.shape else float("inf")
            if not d <= tolerance_for(ref, tolerance):
                return (
                    f"Fed the same input, layer {sl.name!r} ({type(sl).__name__}) is the first to differ (by {d:.3g}, "
                    f"shapes {ref.shape} and {got.shape})."
                )
            h = ref
        return "Fed the same input, every layer agrees on its own: the difference comes from masking."

    ref, out = (k_out, s_out) if source == "keras" else (s_out, k_out)
    return check_close(fn, ref, out, tolerance, source=source, target=target, probe_shape=masked.shape, locate=locate)


def _graph_probes(model: Functional) -> list[np.ndarray]:
    """One probe per input of a graph: integer ids for an input that feeds an Embedding, and sample 1
    post-padded (with the mask value, or id 0) for an input that feeds a Masking layer or an
    Embedding with mask_zero, so that the check covers masks."""
    xs = []
    for i, t in enumerate(model.inputs):
        shape = tuple(PROBE_STEPS if d is None else int(d) for d in t.shape[1:])
        batch = t.shape[0] or 2
        users = [n.layer for n in model._nodes if any(x is t for x in n.inputs)]
        emb = [u for u in users if isinstance(u, Embedding)]
        masking = [u for u in users if isinstance(u, Masking)]
        pad: Any = None
        if emb:
            vocab = min(u.input_dim for u in emb)
            x = np.random.default_rng(i).integers(1, max(2, vocab), size=(batch, *shape)).astype(np.int32)
            pad = 0 if any(u.mask_zero for u in emb) else None
        else:
            x = probe_batch((batch, *shape), seed=i)
            pad = masking[0].mask_value if masking and len(shape) == 2 else None
        if pad is not None and shape and shape[0] >= 2 and batch >= 2:
            x[1, shape[0] // 2 :] = pad
        xs.append(x)
    return xs


def _flat_outputs(out: Any, names: list[str]) -> list[np.ndarray]:
    if isinstance(out, dict):
        return [np.asarray(out[k]) for k in names]
    if isinstance(out, (list, tuple)):
        return [np.asarray(o) for o in out]
    return [np.asarray(out)]


def _verify_graph(
    fn: str, keras: Any, keras_model: Any, model: Functional, tolerance: float, source: str, target: str
) -> ConversionReport:
    """The probe check of a graph: every output compared; on failure, the first node (in the order the
    graph runs) whose output differs is named."""
    from ._keras_graph import layer_nodes

    xs = _graph_probes(model)
    names = model._input_names()
    feed: Any = (
        dict(zip(names, xs, strict=True))
        if isinstance(model._inputs_struct, dict)
        else (xs[0] if len(xs) == 1 and not isinstance(model._inputs_struct, (list, tuple)) else list(xs))
    )

    def run_keras(m: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return keras.tree.map_structure(keras.ops.convert_to_numpy, m(feed, training=False))

    with fresh_states(model), _fresh_keras_states(keras, keras_model):
        k_outs = _flat_outputs(run_keras(keras_model), model.output_names)
        s_outs = _flat_outputs(model(feed), model.output_names)
        for i, (a, b) in enumerate(zip(k_outs, s_outs, strict=True)):
            if a.shape != b.shape:
                raise ValueError(
                    f"{fn}: verification failed: output {model.output_names[i]!r} has shape {a.shape} in Keras and "
                    f"{b.shape} in seqcore on the probe batch."
                )

        def locate(tol: float) -> str:
            nodes = [(layer, i, outs) for layer, i, outs in layer_nodes(model) if type(layer).__name__ != "Op"]
            wanted = [t for _, _, outs in nodes for t in outs]
            k_tensors = []
            for layer, i, _ in nodes:
                knode = keras_model.get_layer(layer.name)._inbound_nodes[i]
                k_tensors += list(knode.output_tensors)
            k_vals = _flat_outputs(run_keras(keras.Model(keras_model.inputs, k_tensors)), [])
            s_vals = _flat_outputs(Functional(model.inputs, wanted)(feed), [])
            pos = 0
            for layer, _, outs in nodes:
                for _ in outs:
                    a, b = k_vals[pos], s_vals[pos]
                    pos += 1
                    d = float(np.max(np.abs(a - b), initial=0.0)) if a.shape == b.shape else float("inf")
                    if not d <= tolerance_for(a, tolerance):
                        return (
                            f"Layer {layer.name!r} ({type(layer).__name__}) is the first whose output differs (by "
                            f"{d:.3g}, shapes {a.shape} and {b.shape}); every layer before it agrees."
                        )
            return "Every layer agrees on its own outputs."

        ref = np.concatenate([a.ravel() for a in k_outs]).astype(np.float64)
        out = np.concatenate([b.ravel() for b in s_outs]).astype(np.float64)
        if source != "keras":
            ref, out = out, ref
        return check_close(fn, ref, out, tolerance, source=source, target=target, probe_shape=xs[0].shape,
                           locate=locate)  # fmt: skip


# ================================================================================================
# seqcore -> Keras
# ================================================================================================
def _init_entry(init: Any, who: str, key: str) -> dict[str, Any]:
    name = type(init).__name__
    if name not in _INITIALIZERS:
        raise ValueError(
            f"{who}: {key} is a custom initializer ({name}), which Keras cannot rebuild from a config; use one of "
            f"{sorted(_INITIALIZERS)} (the weights themselves are exported either way)."
        )
    return {"module": "keras.initializers", "class_name": name, "config": init.get_config(), "registered_name": None}


def _reg_entry(reg: Any) -> dict[str, Any] | None:
    if reg is None:
        return None
    return {
        "module": "keras.regularizers",
        "class_name": type(reg).__name__,
        "config": reg.get_config(),
        "registered_name": None,
    }


def _constraint_entry(c: Any, who: str, key: str) -> dict[str, Any] | None:
    if c is None:
        return None
    name = type(c).__name__
    if name not in _CONSTRAINTS or constraints.ALL_OBJECTS[name] is not type(c):
        raise ValueError(
            f"{who}: {key} is a custom constraint ({name}: {c!r}), which Keras cannot rebuild from a config; use "
            f"one of {list(_CONSTRAINTS[1:])} from seqcore.constraints."
        )
    return {"module": "keras.constraints", "class_name": name, "config": c.get_config(), "registered_name": None}


def _weight_entries(layer: Any, who: str, *names: str) -> dict[str, Any]:
    """Keras's ``<name>_initializer``, ``<name>_regularizer`` and ``<name>_constraint`` options of
    each weight ``name`` of a layer (``kernel``, ``bias``, ``gamma``, ...)."""
    out: dict[str, Any] = {}
    for n in names:
        out[f"{n}_initializer"] = _init_entry(getattr(layer, f"{n}_initializer"), who, f"{n}_initializer")
        out[f"{n}_regularizer"] = _reg_entry(getattr(layer, f"{n}_regularizer"))
        out[f"{n}_constraint"] = _constraint_entry(getattr(layer, f"{n}_constraint"), who, f"{n}_constraint")
    return out


def _entry(cls: str, config: dict[str, Any], module: str = "keras.layers") -> dict[str, Any]:
    return {"module": module, "class_name": cls, "config": config, "registered_name": None}


def _base(layer: Layer) -> dict[str, Any]:
    return {"name": layer.name, "trainable": layer.trainable, "dtype": "float32"}


def _export_layer(layer: Any, fn: str, graph: bool = False) -> dict[str, Any]:
    """The Keras entry of one layer; ``graph``: it is called in a Functional model, where layers may
    return their states and take several inputs."""
    who = f"{fn}: layer {getattr(layer, 'name', '?')!r} ({type(layer).__name__})"
    if isinstance(layer, Functional):
        from ._keras_graph import graph_config

        return graph_config(layer, fn, lambda sub: _export_layer(sub, fn, graph=True))
    if isinstance(layer, Sequential):
        return _export_model(layer, fn, None)
    c = _base(layer)
    if isinstance(layer, Dense):
        c.update(
            units=layer.units,
            activation=layer.activation,
            use_bias=layer.use_bias,
            kernel_initializer=_init_entry(layer.kernel_initializer, who, "kernel_initializer"),
            bias_initializer=_init_entry(layer.bias_initializer, who, "bias_initializer"),
            kernel_regularizer=_reg_entry(layer.kernel_regularizer),
            bias_regularizer=_reg_entry(layer.bias_regularizer),
            kernel_constraint=_constraint_entry(layer.kernel_constraint, who, "kernel_constraint"),
            bias_constraint=_constraint_entry(layer.bias_constraint, who, "bias_constraint"),
        )
        if layer.activity_regularizer is not None:
            c["activity_regularizer"] = _reg_entry(layer.activity_regularizer)
        return _entry("Dense", c)
    if isinstance(layer, RNN):
        if layer.return_state and not graph:
            raise ValueError(f"{who}: return_state=True has no place in a Keras Sequential model.")
        c.update(
            return_sequences=layer.return_sequences,
            return_state=layer.return_state,
            go_backwards=layer.go_backwards,
            stateful=layer.stateful,
            unroll=layer.unroll,
            zero_output_for_mask=layer.zero_output_for_mask,
            cell=_export_cell(layer.cell, who),
        )
        return _entry("RNN", c)
    if isinstance(layer, _RNN):
        c.update(
            units=layer.units,
            activation=layer.activation,
            recurrent_activation=layer.recurrent_activation,
            use_bias=layer.use_bias,
            return_sequences=layer.return_sequences,
            return_state=layer.return_state,
            go_backwards=layer.go_backwards,
            stateful=layer.stateful,
            unroll=layer.unroll,
            zero_output_for_mask=layer.zero_output_for_mask,
            kernel_initializer=_init_entry(layer.kernel_initializer, who, "kernel_initializer"),
            recurrent_initializer=_init_entry(layer.recurrent_initializer, who, "recurrent_initializer"),
            bias_initializer=_init_entry(layer.bias_initializer, who, "bias_initializer"),
            kernel_regularizer=_reg_entry(layer.kernel_regularizer),
            recurrent_regularizer=_reg_entry(layer.recurrent_regularizer),
            bias_regularizer=_reg_entry(layer.bias_regularizer),
            activity_regularizer=_reg_entry(layer.activity_regularizer),
            kernel_constraint=_constraint_entry(layer.kernel_constraint, who, "kernel_constraint"),
            recurrent_constraint=_constraint_entry(layer.recurrent_constraint, who, "recurrent_constraint"),
            bias_constraint=_constraint_entry(layer.bias_constraint, who, "bias_constraint"),
            dropout=layer.dropout,
            recurrent_dropout=layer.recurrent_dropout,
            seed=layer.seed,
        )
        if layer.return_state and not graph:
            raise ValueError(f"{who}: return_state=True has no place in a Keras Sequential model.")
        if isinstance(layer, SimpleRNN):
            del c["recurrent_activation"]
            return _entry("SimpleRNN", c)
        if isinstance(layer, LSTM):
            c["unit_forget_bias"] = layer.unit_forget_bias
            return _entry("LSTM", c)
        assert isinstance(layer, GRU)
        c["reset_after"] = layer.reset_after
        return _entry("GRU", c)
    if isinstance(layer, Conv1D):
        if layer.strides > 1 and layer.dilation_rate > 1:
            raise ValueError(
                f"{who}: strides={layer.strides} with dilation_rate={layer.dilation_rate}; Keras's Conv1D refuses "
                f"strides > 1 together with dilation_rate > 1 (seqcore and PyTorch allow it)."
            )
        c.update(
            filters=layer.filters,
            kernel_size=[layer.kernel_size],
            strides=[layer.strides],
            padding=layer.padding,
            data_format="channels_last",
            dilation_rate=[layer.dilation_rate],
            groups=layer.groups,
            activation=layer.activation,
            use_bias=layer.use_bias,
            activity_regularizer=_reg_entry(layer.activity_regularizer),
            **_weight_entries(layer, who, "kernel", "bias"),
        )
        return _entry("Conv1D", c)
    if isinstance(layer, (DepthwiseConv1D, SeparableConv1D)):
        c.update(
            kernel_size=[layer.kernel_size],
            strides=[layer.strides],
            padding=layer.padding,
            data_format="channels_last",
            dilation_rate=[layer.dilation_rate],
            depth_multiplier=layer.depth_multiplier,
            activation=layer.activation,
            use_bias=layer.use_bias,
            activity_regularizer=_reg_entry(layer.activity_regularizer),
            **_weight_entries(layer, who, "depthwise", "bias"),
        )
        if isinstance(layer, DepthwiseConv1D):
            return _entry("DepthwiseConv1D", c)
        c.update(
            filters=layer.filters,
            **_weight_entries(layer, who, "pointwise"),
        )
        return _entry("SeparableConv1D", c)
    if isinstance(layer, Conv1DTranspose):
        c.update(
            filters=layer.filters,
            kernel_size=[layer.kernel_size],
            strides=[layer.strides],
            padding=layer.padding,
            output_padding=None if layer.output_padding is None else [layer.output_padding],
            data_format="channels_last",
            dilation_rate=[layer.dilation_rate],
            activation=layer.activation,
            use_bias=layer.use_bias,
            activity_regularizer=_reg_entry(layer.activity_regularizer),
            **_weight_entries(layer, who, "kernel", "bias"),
        )
        return _entry("Conv1DTranspose", c)
    if isinstance(layer, (MaxPooling1D, AveragePooling1D)):
        c.update(
            pool_size=[layer.pool_size], strides=[layer.strides], padding=layer.padding, data_format="channels_last"
        )
        return _entry(type(layer).__name__, c)
    if isinstance(layer, (GlobalMaxPooling1D, GlobalAveragePooling1D)):
        c.update(data_format=layer.data_format, keepdims=layer.keepdims)
        return _entry(type(layer).__name__, c)
    if isinstance(layer, Activation):
        return _entry("Activation", {**c, "activation": layer.activation})
    if isinstance(layer, Dropout):
        shape = None if layer.noise_shape is None else list(layer.noise_shape)
        return _entry("Dropout", {**c, "rate": layer.rate, "noise_shape": shape, "seed": layer.seed})
    if isinstance(layer, Flatten):
        return _entry("Flatten", {**c, "data_format": "channels_last"})
    if isinstance(layer, Reshape):
        return _entry("Reshape", {**c, "target_shape": list(layer.target_shape)})
    if isinstance(layer, Masking):
        return _entry("Masking", {**c, "mask_value": layer.mask_value})
    if isinstance(layer, RepeatVector):
        return _entry("RepeatVector", {**c, "n": layer.n})
    if isinstance(layer, UpSampling1D):
        return _entry("UpSampling1D", {**c, "size": layer.size})
    if isinstance(layer, ZeroPadding1D):
        return _entry("ZeroPadding1D", {**c, "padding": list(layer.padding), "data_format": layer.data_format})
    if isinstance(layer, Cropping1D):
        return _entry("Cropping1D", {**c, "cropping": list(layer.cropping)})
    if isinstance(layer, Permute):
        return _entry("Permute", {**c, "dims": list(layer.dims)})
    if isinstance(layer, SpatialDropout1D):  # Keras's takes no `trainable` (it writes none)
        return _entry("SpatialDropout1D", {"rate": layer.rate, "seed": layer.seed, "name": layer.name,
                                           "dtype": "float32"})  # fmt: skip
    if isinstance(layer, GaussianDropout):
        return _entry("GaussianDropout", {**c, "rate": layer.rate, "seed": layer.seed})
    if isinstance(layer, GaussianNoise):
        return _entry("GaussianNoise", {**c, "stddev": layer.stddev, "seed": layer.seed})
    if isinstance(layer, AlphaDropout):
        shape = None if layer.noise_shape is None else list(layer.noise_shape)
        return _entry("AlphaDropout", {**c, "rate": layer.rate, "noise_shape": shape, "seed": layer.seed})
    if isinstance(layer, ActivityRegularization):
        return _entry("ActivityRegularization", {**c, "l1": layer.l1, "l2": layer.l2})
    if isinstance(layer, Embedding):
        c.update(
            input_dim=layer.input_dim,
            output_dim=layer.output_dim,
            embeddings_initializer=_init_entry(layer.embeddings_initializer, who, "embeddings_initializer"),
            embeddings_regularizer=_reg_entry(layer.embeddings_regularizer),
            activity_regularizer=_reg_entry(layer.activity_regularizer),
            embeddings_constraint=_constraint_entry(layer.embeddings_constraint, who, "embeddings_constraint"),
            mask_zero=layer.mask_zero,
        )
        return _entry("Embedding", c)
    if isinstance(layer, TimeDistributed):
        return _entry("TimeDistributed", {**c, "layer": _export_layer(layer.layer, fn)})
    if isinstance(layer, Bidirectional):
        if layer.merge_mode is None and not graph:
            raise ValueError(f"{who}: merge_mode=None returns two outputs, which a Keras Sequential cannot hold.")
        c.update(
            merge_mode=layer.merge_mode,
            layer=_export_layer(layer.forward_layer, fn, graph),
            backward_layer=_export_layer(layer.backward_layer, fn, graph),
        )
        return _entry("Bidirectional", c)
    if isinstance(layer, RMSNormalization):
        return _entry("RMSNormalization", {**c, "axis": layer.axis, "epsilon": layer.epsilon})
    if isinstance(layer, ReLU):
        return _entry("ReLU", {**c, "max_value": layer.max_value, "negative_slope": layer.negative_slope,
                               "threshold": layer.threshold})  # fmt: skip
    if isinstance(layer, LeakyReLU):
        return _entry("LeakyReLU", {**c, "negative_slope": layer.negative_slope})
    if isinstance(layer, ELU):
        return _entry("ELU", {**c, "alpha": layer.alpha})
    if isinstance(layer, Softmax):
        return _entry("Softmax", {**c, "axis": layer.axis})
    if isinstance(layer, PReLU):
        c.update(
            **_weight_entries(layer, who, "alpha"),
            shared_axes=layer.shared_axes,
        )
        return _entry("PReLU", c)
    if isinstance(layer, UnitNormalization):
        return _entry("UnitNormalization", {**c, "axis": layer.axis})
    if isinstance(layer, MultiHeadAttention):
        cfg = layer.get_config()
        c.update(**{k: cfg[k] for k in ("num_heads", "key_dim", "value_dim", "dropout", "use_bias", "use_gate",
                                        "output_shape", "attention_axes", "sliding_window", "seed")},  # fmt: skip
                 **_weight_entries(layer, who, "kernel", "bias"),
                 activity_regularizer=_reg_entry(layer.activity_regularizer))  # fmt: skip
        return _entry("MultiHeadAttention", c)
    if isinstance(layer, AdditiveAttention):
        return _entry("AdditiveAttention", {**c, "use_scale": layer.use_scale, "dropout": layer.dropout,
                                            "seed": layer.seed})  # fmt: skip
    if isinstance(layer, Attention):
        return _entry("Attention", {**c, "use_scale": layer.use_scale, "score_mode": layer.score_mode,
                                    "dropout": layer.dropout, "seed": layer.seed})  # fmt: skip
    if isinstance(layer, (LayerNormalization, BatchNormalization, GroupNormalization)):
        c.update(
            axis=layer.axis,
            epsilon=layer.epsilon,
            center=layer.center,
            scale=layer.scale,
            **_weight_entries(layer, who, "beta", "gamma"),
        )
        if isinstance(layer, LayerNormalization):
            return _entry("LayerNormalization", {**c, "rms_scaling": layer.rms_scaling})
        if isinstance(layer, GroupNormalization):
            return _entry("GroupNormalization", {**c, "groups": layer.groups})
        c.update(
            momentum=layer.momentum,
            moving_mean_initializer=_init_entry(layer.moving_mean_initializer, who, "moving_mean_initializer"),
            moving_variance_initializer=_init_entry(
                layer.moving_variance_initializer, who, "moving_variance_initializer"
            ),
            synchronized=False,
            renorm=False,
            renorm_clipping=None,
            renorm_momentum=layer.renorm_momentum,
        )
        return _entry("BatchNormalization", c)
    if isinstance(layer, Concatenate):
        return _entry("Concatenate", {**c, "axis": layer.axis})
    if isinstance(layer, Dot):
        return _entry("Dot", {**c, "axes": layer.axes, "normalize": layer.normalize})
    for cls, merge in _MERGES.items():
        if type(layer) is merge:
            return _entry(cls, c)
    raise ValueError(
        f"{who}: no Keras equivalent is known to seqcore's converter (supported: {', '.join(SUPPORTED_LAYERS)})."
    )


def _export_cell(cell: Any, who: str) -> dict[str, Any]:
    if isinstance(cell, StackedRNNCells):
        return _entry("StackedRNNCells", {"name": cell.name, "trainable": cell.trainable, "dtype": "float32",
                                          "cells": [_export_cell(c, who) for c in cell.cells]})  # fmt: skip
    fused = _export_layer(cell._layer, who.split(":")[0], graph=True)["config"]
    keep = ("units", "activation", "recurrent_activation", "use_bias", "kernel_initializer", "recurrent_initializer",
            "bias_initializer", "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
            "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout", "seed",
            "unit_forget_bias", "reset_after")  # fmt: skip
    cfg = {"name": cell.name, "trainable": cell.trainable, "dtype": "float32",
           **{k: v for k, v in fused.items() if k in keep}}  # fmt: skip
    return _entry(type(cell).__name__, cfg)


def _export_model(model: Sequential, fn: str, input_shape: Any) -> dict[str, Any]:
    spec = model._input_spec
    shape = spec.shape if spec is not None else input_shape
    if shape is None or not model.built:
        raise ValueError(
            f"{fn}: model {model.name!r} is not built; give it seqcore.Input(shape=...) (or call it on data) first, "
            f"so the weights exist."
        )
    batch = spec.batch_size if spec is not None else None
    inp = _entry(
        "InputLayer",
        {
            "batch_shape": [batch, *shape],
            "dtype": spec.dtype if spec is not None else "float32",
            "sparse": False,
            "name": f"{model.name}_input",
        },
    )
    entries = [_export_layer(layer, fn) for layer in model.layers]
    config = {"name": model.name, "trainable": model.trainable, "dtype": "float32", "layers": [inp, *entries]}
    return {**_entry("Sequential", config, module="keras"), "build_config": {"input_shape": [batch, *shape]}}


def _keras_model_config(model: Any, fn: str) -> dict[str, Any]:
    if isinstance(model, Functional):
        from ._keras_graph import graph_config

        return graph_config(model, fn, lambda layer: _export_layer(layer, fn, graph=True))
    if isinstance(model, Sequential):
        return _export_model(model, fn, None)
    raise TypeError(
        f"{fn}: expected a seqcore.Sequential or a Functional model (seqcore.Model(inputs, outputs)); received "
        f"{type(model).__name__}. A subclassed model has no config Keras could rebuild."
    )


def _weighted(model: Sequential | Functional, cfg: dict[str, Any]) -> list[tuple[Layer, dict[str, Any], str]]:
    """(seqcore layer, its Keras entry, its weight path below ``layers/``) for every layer of the
    model that Keras saves (InputLayers and ops excluded)."""
    entries = cfg["config"]["layers"]
    if isinstance(model, Functional):
        from ._keras_graph import weight_paths

        return [(model.get_layer(str(e["name"])), e, p) for e, p in weight_paths(entries, _snake, _unique)]
    used: dict[str, int] = {}
    return [
        (layer, e, _unique(_snake(e["class_name"]), used)) for layer, e in zip(model.layers, entries[1:], strict=True)
    ]


def keras_config(model: Sequential | Functional) -> dict[str, Any]:
    """The Keras 3 serialized config of a built seqcore ``Sequential`` or ``Functional`` model (what
    ``config.json`` of a ``.keras`` file holds; ``keras.Sequential.from_config(cfg["config"])`` or
    ``keras.Model.from_config(cfg["config"])`` rebuilds it). Needs no Keras. Raises a ValueError
    naming the layer for what Keras cannot express."""
    return _keras_model_config(model, "keras_config")


def to_keras(model: Sequential | Functional, *, verify: bool = True, tolerance: float = DEFAULT_TOLERANCE) -> Any:
    """A Keras model with the architecture and weights of a built seqcore ``Sequential`` (a
    ``keras.Sequential``) or ``Functional`` model (a ``keras.Model``, same layer names), needs
    keras. With ``verify=True`` both run a probe batch; the Keras model gets a
    ``conversion_report`` attribute, and a difference above ``tolerance`` raises a ValueError."""
    fn = "to_keras"
    keras = optional_import("keras")
    if keras is None:
        raise ImportError(
            f"{fn} needs keras (pip install keras tensorflow-cpu); seqcore.interop.save_keras writes a .keras file "
            f"without it."
        )
    cfg = _keras_model_config(model, fn)
    if isinstance(model, Functional):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kmodel = keras.Model.from_config(copy.deepcopy(cfg["config"]))  # Keras consumes the dict
        for layer, _, _ in _weighted(model, cfg):
            kmodel.get_layer(layer.name).set_weights(layer.get_weights())
    else:
        kmodel = keras.Sequential.from_config(cfg["config"])
        for kl, sl in zip(kmodel.layers, model.layers, strict=True):
            kl.set_weights(sl.get_weights())
    if not verify:
        return attach(kmodel, unverified("seqcore", "keras", "verify=False"))
    return attach(kmodel, _verify_any(fn, keras, kmodel, model, cfg, tolerance))


def _verify_any(
    fn: str, keras: Any, kmodel: Any, model: Sequential | Functional, cfg: dict[str, Any], tolerance: float
) -> ConversionReport:
    if isinstance(model, Functional):
        return _verify_graph(fn, keras, kmodel, model, tolerance, "seqcore", "keras")
    return _verify_pair(fn, keras, kmodel, model, cfg["config"]["layers"][1:], tolerance, "seqcore", "keras")


def save_keras(
    model: Sequential | Functional, path: Any, *, verify: bool = True, tolerance: float = DEFAULT_TOLERANCE
) -> ConversionReport:
    """Writes a built seqcore ``Sequential`` or ``Functional`` model as a Keras 3 ``.keras`` file,
    without Keras (needs h5py): ``keras.saving.load_model(path)`` then rebuilds the same model. With
    ``verify=True`` and Keras importable, Keras loads the file and both models run a probe batch;
    returns the report. The file is written to a temporary name and renamed, so an interrupted save
    never leaves a half-written file at ``path``."""
    fn = "save_keras"
    cfg = _keras_model_config(model, fn)
    path = os.fspath(path)
    h5py = _h5py()
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:
        h5.create_group("vars").attrs["name"] = model.name
        for layer, e, p in _weighted(model, cfg):
            weights = layer.get_weights()
            groups = list(_weight_groups(e, f"layers/{p}"))
            if sum(n for _, n in groups) != len(weights):
                raise AssertionError(f"{fn}: layout of {_who(e)} does not match its {len(weights)} weights")
            for group, n in groups:
                g = h5.require_group(group).create_group("vars")
                for i in range(n):
                    g.create_dataset(str(i), data=weights.pop(0))
    from .. import __version__

    metadata = {
        "keras_version": "3.0.0",  # the format: Keras 3's saving_lib layout (readable by every Keras 3)
        "date_saved": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d@%H:%M:%S"),
        "saved_by": f"seqcore {__version__}",
    }
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        # Stored, not deflated, as Keras writes it: h5py then reads model.weights.h5 with cheap seeks.
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr("metadata.json", json.dumps(metadata))
            z.writestr("config.json", json.dumps(cfg))
            z.writestr("model.weights.h5", buf.getvalue())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    if not verify:
        return unverified("seqcore", "keras", "verify=False")
    keras = optional_import("keras")
    if keras is None:
        return unverified("seqcore", "keras", "keras is not installed, so nothing to compare with")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kmodel = keras.saving.load_model(path, compile=False, safe_mode=True)
    return _verify_any(fn, keras, kmodel, model, cfg, tolerance)
