"""The callback list: every hook of every callback called in one place, with logs passed
positionally as Keras's CallbackList passes them (so callbacks written for Keras run), and hooks a
Keras-style callback does not define skipped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class CallbackList:
    def __init__(self, callbacks: Sequence[Any], model: Any, params: dict[str, Any] | None = None):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if callable(getattr(cb, "set_model", None)):
                cb.set_model(model)
            if params is not None and callable(getattr(cb, "set_params", None)):
                cb.set_params(params)

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    def __iter__(self) -> Any:
        return iter(self.callbacks)

    def call(self, name: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, name, None)
            if callable(fn):
                fn(*args)


def prepare(callbacks: Any, who: str) -> list[Any]:
    """``callbacks`` of fit/evaluate/predict: a list of Callback objects."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple, CallbackList)):
        raise TypeError(f"{who}: callbacks must be a list of Callback objects; received {type(callbacks).__name__}.")
    for cb in callbacks:
        if not callable(getattr(cb, "set_model", None)):
            raise TypeError(f"{who}: callbacks must be Callback objects; received {type(cb).__name__}.")
    return list(callbacks)
