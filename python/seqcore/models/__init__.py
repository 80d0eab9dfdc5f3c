"""Models: ``Model`` (a Layer that trains), ``Functional`` (a graph of layer calls) and
``Sequential`` (a chain of layers); the trainer they share lives in ``seqcore.trainers``."""

from __future__ import annotations

from typing import Any

from ..trainers import NotCompiledError
from .functional import Functional
from .model import Model
from .sequential import Sequential

__all__ = ["Functional", "Model", "NotCompiledError", "Sequential", "load_model", "save_model"]


def load_model(filepath: Any, compile: bool = True) -> Any:
    """``keras.models.load_model``: the model ``model.save`` wrote (see ``seqcore.saving.load_model``)."""
    from ..saving import load_model as _load_model  # saving imports this package

    return _load_model(filepath, compile=compile)


def save_model(model: Any, filepath: Any, overwrite: bool = True, include_optimizer: bool = True) -> None:
    """``keras.models.save_model``: the same as ``model.save(filepath)``."""
    model.save(filepath, overwrite=overwrite, include_optimizer=include_optimizer)
