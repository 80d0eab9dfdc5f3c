"""Keras-style layers on seqcore's kernels (``from seqcore import layers``)."""

from __future__ import annotations

from typing import Any

from .base import Layer, Weight
from .convolutional import AveragePooling1D, Conv1D, GlobalAveragePooling1D, GlobalMaxPooling1D, MaxPooling1D
from .core import Activation, Dense, Dropout, Flatten, Input, InputLayer, InputSpec, RepeatVector, Reshape
from .embedding import Embedding
from .recurrent import GRU, LSTM
from .wrappers import Bidirectional, Masking, SequentialLayer, TimeDistributed

# Keras 3's aliases (keras.layers exports exactly these for the 1-D layers seqcore has); a layer
# built under an alias is the canonical class and serializes under its canonical name, as in Keras.
MaxPool1D = MaxPooling1D
AvgPool1D = AveragePooling1D
GlobalMaxPool1D = GlobalMaxPooling1D
GlobalAvgPool1D = GlobalAveragePooling1D
Convolution1D = Conv1D

__all__ = [
    "GRU",
    "LSTM",
    "Activation",
    "AveragePooling1D",
    "Conv1D",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "MaxPooling1D",
    "AvgPool1D",
    "Convolution1D",
    "GlobalAvgPool1D",
    "GlobalMaxPool1D",
    "MaxPool1D",
    "Bidirectional",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "Input",
    "InputLayer",
    "InputSpec",
    "Layer",
    "Masking",
    "RepeatVector",
    "Reshape",
    "SequentialLayer",
    "TimeDistributed",
    "Weight",
    "deserialize",
    "serialize",
]

# Every layer class imported above, by name (collected, so a new layer cannot be forgotten).
_CLASSES: dict[str, type[Layer]] = {
    name: obj
    for name, obj in globals().items()
    if isinstance(obj, type) and issubclass(obj, Layer) and obj is not Layer
}


def serialize(layer: Layer) -> dict[str, Any]:
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config: dict[str, Any]) -> Layer:
    """A layer from ``serialize``'s ``{"class_name": ..., "config": {...}}``. A nested model
    (``SequentialLayer``, or ``Sequential`` as Keras writes it) comes back as a ``SequentialLayer``."""
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ValueError(f"a layer entry must be {{'class_name': str, 'config': dict}}; received {str(config)[:200]}")
    name = config["class_name"]
    cfg = config.get("config", {})
    if not isinstance(cfg, dict):
        raise ValueError(f"the config of a {name!r} layer must be a dict; received {str(cfg)[:200]}")
    if name == "Sequential":
        from ..models import Sequential

        model = Sequential.from_config(cfg)
        return SequentialLayer(model, trainable=bool(cfg.get("trainable", True)))
    if name not in _CLASSES:
        raise ValueError(f"Unknown layer class {name!r}; seqcore has {sorted(_CLASSES)}.")
    return _CLASSES[name].from_config(dict(cfg))
