"""Keras-style layers on seqcore's kernels (``from seqcore import layers``)."""

from __future__ import annotations

from typing import Any

from .activations import ELU, LeakyReLU, PReLU, ReLU, Softmax
from .attention import AdditiveAttention, Attention, MultiHeadAttention
from .base import REGISTRY, Layer, Weight
from .conv_transpose import Conv1DTranspose
from .convolutional import AveragePooling1D, Conv1D, GlobalAveragePooling1D, GlobalMaxPooling1D, MaxPooling1D
from .core import Activation, Dense, Dropout, Flatten, Input, InputLayer, InputSpec, RepeatVector, Reshape
from .embedding import Embedding
from .lambda_layer import Lambda
from .merging import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)
from .normalization import (
    BatchNormalization,
    GroupNormalization,
    LayerNormalization,
    RMSNormalization,
    UnitNormalization,
)
from .recurrent import GRU, LSTM, SimpleRNN
from .regularization import (
    ActivityRegularization,
    AlphaDropout,
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1D,
)
from .reshaping import Cropping1D, Permute, UpSampling1D, ZeroPadding1D
from .rnn_cells import RNN, GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from .separable import DepthwiseConv1D, SeparableConv1D
from .wrappers import Bidirectional, Masking, TimeDistributed

# Keras 3's aliases (keras.layers exports exactly these for the 1-D layers seqcore has); a layer
# built under an alias is the canonical class and serializes under its canonical name, as in Keras.
MaxPool1D = MaxPooling1D
AvgPool1D = AveragePooling1D
GlobalMaxPool1D = GlobalMaxPooling1D
GlobalAvgPool1D = GlobalAveragePooling1D
Convolution1D = Conv1D
for _alias, _cls in (
    ("MaxPool1D", MaxPooling1D),
    ("AvgPool1D", AveragePooling1D),
    ("GlobalMaxPool1D", GlobalMaxPooling1D),
    ("GlobalAvgPool1D", GlobalAveragePooling1D),
    ("Convolution1D", Conv1D),
):
    REGISTRY.setdefault(_alias, _cls)

__all__ = [
    "ActivityRegularization",
    "AdditiveAttention",
    "AlphaDropout",
    "Attention",
    "GaussianDropout",
    "GaussianNoise",
    "SpatialDropout1D",
    "Add",
    "Average",
    "Concatenate",
    "Dot",
    "Maximum",
    "Minimum",
    "Multiply",
    "Subtract",
    "add",
    "average",
    "concatenate",
    "dot",
    "maximum",
    "minimum",
    "multiply",
    "subtract",
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "RNN",
    "SimpleRNNCell",
    "StackedRNNCells",
    "Activation",
    "AveragePooling1D",
    "Conv1D",
    "Conv1DTranspose",
    "Cropping1D",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "GroupNormalization",
    "MaxPooling1D",
    "AvgPool1D",
    "Convolution1D",
    "GlobalAvgPool1D",
    "GlobalMaxPool1D",
    "MaxPool1D",
    "BatchNormalization",
    "Bidirectional",
    "Dense",
    "DepthwiseConv1D",
    "Dropout",
    "ELU",
    "Embedding",
    "Flatten",
    "Input",
    "InputLayer",
    "InputSpec",
    "Layer",
    "LayerNormalization",
    "LeakyReLU",
    "Lambda",
    "Masking",
    "MultiHeadAttention",
    "PReLU",
    "Permute",
    "ReLU",
    "RMSNormalization",
    "RepeatVector",
    "Reshape",
    "SeparableConv1D",
    "SimpleRNN",
    "Softmax",
    "TimeDistributed",
    "UnitNormalization",
    "UpSampling1D",
    "Weight",
    "ZeroPadding1D",
    "deserialize",
    "serialize",
]


def serialize(layer: Layer) -> dict[str, Any]:
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config: dict[str, Any]) -> Layer:
    """A layer from ``serialize``'s ``{"class_name": ..., "config": {...}}``, looked up among the
    registered classes (every Layer subclass registers itself, models included). Files written
    before models were layers name a nested model ``SequentialLayer`` with its config under
    ``model``: that comes back as the ``Sequential`` it is."""
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ValueError(f"a layer entry must be {{'class_name': str, 'config': dict}}; received {str(config)[:200]}")
    name = config["class_name"]
    cfg = config.get("config", {})
    if not isinstance(cfg, dict):
        raise ValueError(f"the config of a {name!r} layer must be a dict; received {str(cfg)[:200]}")
    if name == "SequentialLayer":
        from .. import models  # noqa: F401  (registers the model classes)

        inner = cfg.get("model")
        if not isinstance(inner, dict):
            raise ValueError(
                f"SequentialLayer: the config needs a 'model' dict (a Sequential config); received {inner!r}"
            )
        model = REGISTRY["Sequential"].from_config(inner)
        model.trainable = bool(cfg.get("trainable", True)) and model.trainable
        return model
    if name not in REGISTRY:
        from .. import models  # noqa: F401  (registers the model classes)
    if name not in REGISTRY:
        raise ValueError(f"Unknown layer class {name!r}; seqcore has {sorted(REGISTRY)}.")
    return REGISTRY[name].from_config(dict(cfg))
