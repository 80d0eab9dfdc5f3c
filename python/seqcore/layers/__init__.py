"""Keras-style layers on seqcore's kernels (``from seqcore import layers``)."""

from __future__ import annotations

from typing import Any

from .base import Layer, Weight
from .convolutional import AveragePooling1D, Conv1D, GlobalAveragePooling1D, GlobalMaxPooling1D, MaxPooling1D
from .core import Activation, Dense, Dropout, Flatten, Input, InputLayer, InputSpec, Reshape
from .recurrent import GRU, LSTM
from .wrappers import Bidirectional, Masking, TimeDistributed

__all__ = [
    "GRU",
    "LSTM",
    "Activation",
    "AveragePooling1D",
    "Conv1D",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "MaxPooling1D",
    "Bidirectional",
    "Dense",
    "Dropout",
    "Flatten",
    "Input",
    "InputLayer",
    "InputSpec",
    "Layer",
    "Masking",
    "Reshape",
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
    name = config.get("class_name")
    if name not in _CLASSES:
        raise ValueError(f"Unknown layer class {name!r}; seqcore has {sorted(_CLASSES)}.")
    return _CLASSES[name].from_config(dict(config.get("config", {})))
