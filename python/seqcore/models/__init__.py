"""Models: ``Model`` (a Layer that trains), ``Functional`` (a graph of layer calls) and
``Sequential`` (a chain of layers); the trainer they share lives in ``seqcore.trainers``."""

from __future__ import annotations

from typing import Any

from ..trainers import NotCompiledError
from .functional import Functional
from .model import Model
from .sequential import Sequential

__all__ = ["Functional", "Model", "NotCompiledError", "Sequential", "clone_model", "load_model", "save_model"]


def load_model(filepath: Any, compile: bool = True) -> Any:
    """``keras.models.load_model``: the model ``model.save`` wrote (see ``seqcore.saving.load_model``)."""
    from ..saving import load_model as _load_model  # saving imports this package

    return _load_model(filepath, compile=compile)


def save_model(model: Any, filepath: Any, overwrite: bool = True, include_optimizer: bool = True) -> None:
    """``keras.models.save_model``: the same as ``model.save(filepath)``."""
    model.save(filepath, overwrite=overwrite, include_optimizer=include_optimizer)


def clone_model(model: Any, input_tensors: Any = None, clone_function: Any = None, **kwargs: Any) -> Any:
    """``keras.models.clone_model``: the same architecture (layer names and configs) with freshly
    initialized weights, rebuilt from the model's config; ``clone_function(layer) -> layer`` may
    replace each layer's copy (a Sequential's). A subclassed model has no config to rebuild from."""
    if kwargs:
        raise TypeError(f"clone_model: unexpected keyword argument(s) {sorted(kwargs)}.")
    if input_tensors is not None:
        raise ValueError("clone_model: input_tensors is not supported; call the clone on new tensors instead.")
    if isinstance(model, Sequential):
        from ..layers import deserialize, serialize

        fn = clone_function or (lambda layer: deserialize(serialize(layer)))
        clone = Sequential(name=model.name, trainable=model.trainable)
        if model._input_spec is not None:
            clone._input_spec = model._input_spec
        for layer in model.layers:
            clone.add(fn(layer))
        return clone
    if isinstance(model, Functional):
        if clone_function is not None:
            raise ValueError("clone_model: clone_function is supported for Sequential models only.")
        return Functional.from_config(model.get_config())
    raise TypeError(
        f"clone_model: expected a Sequential or Functional model; received {type(model).__name__} (a subclassed "
        f"model is cloned by constructing it again)."
    )
