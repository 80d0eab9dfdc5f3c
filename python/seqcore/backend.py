"""The few ``keras.backend`` functions Keras code calls outside of a backend's tensor ops:
``clear_session``, ``floatx`` and ``epsilon`` (``from seqcore import backend as K``)."""

from __future__ import annotations

import gc

from . import _seqcore
from .layers import base as _layer_base

__all__ = ["clear_session", "epsilon", "floatx"]


def clear_session(free_memory: bool = True) -> None:
    """Keras's ``clear_session``: resets the automatic naming, so the next layers and models are
    named ``dense``, ``lstm``, ``sequential``, ... again. seqcore keeps no graph or session state
    beyond that; existing models are untouched and keep working. ``free_memory=True`` (the default,
    as Keras) also runs Python's garbage collection and frees the buffers seqcore's kernels keep for
    reuse (they are reallocated on the next call)."""
    _layer_base._name_counters.clear()
    if free_memory:
        gc.collect()
        _seqcore.release_memory()


def floatx() -> str:
    """The float type seqcore computes in: always ``"float32"`` (Keras's default)."""
    return "float32"


def epsilon() -> float:
    """Keras's fuzz factor, ``1e-7`` (the default of ``keras.backend.epsilon()``)."""
    return 1e-7
