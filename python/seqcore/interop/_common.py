"""What the Keras and PyTorch converters share: the report attached to every converted object, the
deterministic probe batch and the tolerance check."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

#: Default verification tolerance, relative to the largest reference output magnitude (at least 1).
#: float32 kernels with different summation orders agree to ~1e-6 on the small probe batches used
#: here; 1e-4 leaves room for long reductions while still catching a wrong gate order or transpose
#: (those move outputs by ~1e-1).
DEFAULT_TOLERANCE = 1e-4

#: Length used for a ``None`` (variable) time axis in a probe batch: long enough for the kernel sizes
#: and pool sizes of typical small models, short enough to keep verification instant.
PROBE_STEPS = 16


@dataclass(frozen=True)
class ConversionReport:
    """How a conversion was checked; attached as ``.conversion_report`` to what a converter returns.

    ``max_abs_diff`` is the largest absolute difference between the source framework's output and the
    converted model's output on a deterministic probe batch of shape ``probe_shape``; ``None`` when no
    check ran (``verify=False`` or the other framework is not installed; ``detail`` says which).
    A check that exceeds ``tolerance`` (absolute, already scaled by the reference magnitude) raises a
    ``ValueError`` instead of returning."""

    source: str
    target: str
    max_abs_diff: float | None
    tolerance: float | None
    probe_shape: tuple[int, ...] | None
    detail: str

    @property
    def verified(self) -> bool:
        return self.max_abs_diff is not None


def unverified(source: str, target: str, detail: str) -> ConversionReport:
    return ConversionReport(source, target, None, None, None, detail)


def optional_import(name: str) -> ModuleType | None:
    """The module if it can be imported, else None (a peer framework is an optional dependency)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def probe_batch(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A fixed float32 standard-normal batch: the same numbers on every machine (PCG64 is stable)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def tolerance_for(reference: np.ndarray, tolerance: float) -> float:
    return float(tolerance) * max(1.0, float(np.max(np.abs(reference), initial=0.0)))


def check_close(
    who: str,
    reference: np.ndarray,
    converted: np.ndarray,
    tolerance: float,
    *,
    source: str,
    target: str,
    probe_shape: tuple[int, ...],
    locate: Callable[[float], str] | None = None,
) -> ConversionReport:
    """Compares a converted model's probe output with the source's; raises a ValueError naming the
    first diverging layer (``locate``) when the difference exceeds the scaled tolerance."""
    ref = np.asarray(reference, dtype=np.float64)
    out = np.asarray(converted, dtype=np.float64)
    if ref.shape != out.shape:
        raise ValueError(
            f"{who}: verification failed: the {source} model outputs shape {ref.shape} on the probe batch but the "
            f"converted {target} model outputs {out.shape}."
        )
    tol = tolerance_for(ref, tolerance)
    diff = float(np.max(np.abs(ref - out), initial=0.0)) if ref.size else 0.0
    if not np.isfinite(diff) or diff > tol:
        where = ""
        if locate is not None:
            try:
                where = " " + locate(tol)
            except Exception as e:  # locating is best effort; never hide the real failure behind it
                where = f" (could not locate the diverging layer: {type(e).__name__}: {e})"
        raise ValueError(
            f"{who}: verification failed: on a probe batch the converted {target} model differs from the {source} "
            f"model by up to {diff:.3g} (tolerance {tol:.3g}).{where} Please report this with the model's config."
        )
    shape = tuple(int(d) for d in probe_shape)
    return ConversionReport(source, target, diff, tol, shape, f"outputs compared on a probe batch of shape {shape}")


def attach(obj: Any, report: ConversionReport) -> Any:
    """Sets ``obj.conversion_report`` (a plain attribute: seqcore layers/models, torch modules and
    Keras models all accept one) and returns ``obj``."""
    obj.conversion_report = report
    return obj


def _seqcore_rnns(obj: Any) -> Iterator[Any]:
    """Every LSTM/GRU inside a seqcore layer or model (through wrappers and nested models)."""
    from ..layers.recurrent import _RNN
    from ..layers.rnn_cells import RNN
    from ..layers.wrappers import Bidirectional, TimeDistributed
    from ..models import Model

    if isinstance(obj, _RNN):
        yield obj
    elif isinstance(obj, RNN):
        yield from obj._layers
    elif isinstance(obj, Bidirectional):
        yield from (obj.forward_layer, obj.backward_layer)
    elif isinstance(obj, TimeDistributed):
        yield from _seqcore_rnns(obj.layer)
    elif isinstance(obj, Model):
        for layer in obj.layers:
            yield from _seqcore_rnns(layer)


@contextmanager
def fresh_states(obj: Any) -> Iterator[None]:
    """Runs a verification from zero recurrent states and then gives stateful layers back the state
    they carried: checking a conversion must neither depend on nor disturb that state."""
    rnns = list(_seqcore_rnns(obj))
    saved = [r.states for r in rnns]
    for r in rnns:
        r.states = None
    try:
        yield
    finally:
        for r, st in zip(rnns, saved, strict=True):
            r.states = st
