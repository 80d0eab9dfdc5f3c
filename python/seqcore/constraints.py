"""Weight constraints (Keras 3's names, arguments and formulas).

A constraint is a projection ``w -> constraint(w)`` of a weight array. The optimizer applies it to
each weight of every apply call, right after the update (``Optimizer.apply``), as Keras's
``variable.assign(variable.constraint(variable))`` does; also on an accumulation-only call with
``gradient_accumulation_steps > 1`` (the weights did not move, Keras projects them all the same), and
never on a frozen weight (it is not passed to the optimizer).

Bad arguments (a negative bound, ``min_value > max_value``, ``rate`` outside [0, 1], an axis that
is not an int or a list of ints) raise a ValueError here; Keras accepts them unchecked.

The norm-based constraints compute, in float32 like Keras, with ``eps = 1e-7`` (Keras's
``backend.epsilon()``)::

    norms   = sqrt(sum(w**2, axis=axis, keepdims=True))
    MaxNorm:    w * (clip(norms, 0, max_value) / (eps + norms))
    MinMaxNorm: w * ((rate * clip(norms, min_value, max_value) + (1 - rate) * norms) / (eps + norms))
    UnitNorm:   w / (eps + norms)
    NonNeg:     maximum(w, 0)

Note what follows from the formulas (Keras's behaviour, kept): the ``eps`` makes every norm-based
constraint shrink its columns a little each time (``norms / (eps + norms)``) even when they are
already inside the bounds, a zero column stays zero, and the default ``axis=0`` of a Conv1D kernel
``(kernel_size, in_channels, filters)`` takes the norm over the kernel positions only (pass
``axis=[0, 1]`` for the whole filter).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

#: Keras's ``backend.epsilon()``.
EPSILON = 1e-7


def _axis(value: Any, who: str) -> int | list[int]:
    """An int, or a non-empty list/tuple of distinct ints (returned as a list, as JSON keeps it)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in value)
        and len({int(a) for a in value}) == len(value)
    ):
        return [int(a) for a in value]
    raise ValueError(
        f"{who}: axis must be an int or a non-empty list of distinct ints (e.g. 0, or [0, 1] for a Conv1D "
        f"kernel's whole filter). Received: axis={value!r}"
    )


def _number(value: Any, who: str, arg: str, low: float = 0.0, high: float = math.inf) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and low <= float(value) <= high
    if not ok:
        bounds = f">= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
        raise ValueError(f"{who}: {arg} must be a number {bounds}. Received: {arg}={value!r}")
    return float(value)


class Constraint:
    """Base class: ``__call__(w)`` returns the projected weight (the base class returns ``w``
    unchanged, as Keras's). Subclass it and override ``__call__`` (and ``get_config`` when the
    constructor takes arguments) for a custom constraint; such a constraint works in training, but
    ``save_model`` cannot store it."""

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return w

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constraint:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(type(self).__name__)


class _NormConstraint(Constraint):
    axis: int | list[int]

    def _norms(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(w as float32, its float32 norms along axis, keepdims)``."""
        w32 = np.asarray(w, dtype=np.float32)
        axis = self.axis if isinstance(self.axis, int) else tuple(self.axis)
        try:
            sq = np.sum(np.square(w32), axis=axis, keepdims=True)
        except ValueError:  # numpy's AxisError is a ValueError
            raise ValueError(
                f"{type(self).__name__}: axis={self.axis!r} does not fit a weight of shape {w32.shape}."
            ) from None
        return w32, np.sqrt(sq)


class MaxNorm(_NormConstraint):
    """Scales the weights incident to each unit (the norm along ``axis``) down to a norm of at most
    ``max_value``: ``w * clip(norms, 0, max_value) / (eps + norms)``."""

    def __init__(self, max_value: float = 2.0, axis: Any = 0):
        self.max_value = _number(max_value, "MaxNorm", "max_value")
        self.axis = _axis(axis, "MaxNorm")

    def __call__(self, w: np.ndarray) -> np.ndarray:
        w32, norms = self._norms(w)
        desired = np.clip(norms, np.float32(0.0), np.float32(self.max_value))
        out: np.ndarray = w32 * (desired / (np.float32(EPSILON) + norms))
        return out

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": self.axis}


class MinMaxNorm(_NormConstraint):
    """Moves the norm along ``axis`` into ``[min_value, max_value]``, by the fraction ``rate`` of the
    way (1: all the way): ``w * (rate * clip(norms, min, max) + (1 - rate) * norms) / (eps + norms)``."""

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: Any = 0):
        self.min_value = _number(min_value, "MinMaxNorm", "min_value")
        self.max_value = _number(max_value, "MinMaxNorm", "max_value")
        if self.min_value > self.max_value:
            raise ValueError(
                f"MinMaxNorm: min_value must be <= max_value. Received: min_value={min_value!r}, "
                f"max_value={max_value!r}"
            )
        self.rate = _number(rate, "MinMaxNorm", "rate", 0.0, 1.0)
        self.axis = _axis(axis, "MinMaxNorm")

    def __call__(self, w: np.ndarray) -> np.ndarray:
        w32, norms = self._norms(w)
        clipped = np.clip(norms, np.float32(self.min_value), np.float32(self.max_value))
        desired = np.float32(self.rate) * clipped + np.float32(1.0 - self.rate) * norms
        out: np.ndarray = w32 * (desired / (np.float32(EPSILON) + norms))
        return out

    def get_config(self) -> dict[str, Any]:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


class NonNeg(Constraint):
    """Sets negative weights to zero: ``maximum(w, 0)``."""

    def __call__(self, w: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.maximum(np.asarray(w, dtype=np.float32), np.float32(0.0))
        return out


class UnitNorm(_NormConstraint):
    """Scales the weights incident to each unit to a norm of 1 (just under: ``w / (eps + norms)``)."""

    def __init__(self, axis: Any = 0):
        self.axis = _axis(axis, "UnitNorm")

    def __call__(self, w: np.ndarray) -> np.ndarray:
        w32, norms = self._norms(w)
        out: np.ndarray = w32 / (np.float32(EPSILON) + norms)
        return out

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}


# Keras's shortcut names are the classes themselves (keras.constraints.max_norm is MaxNorm).
max_norm = MaxNorm
min_max_norm = MinMaxNorm
non_neg = NonNeg
unit_norm = UnitNorm

#: Every name ``get`` resolves, as Keras's ``ALL_OBJECTS_DICT``: class names and snake_case names.
ALL_OBJECTS: dict[str, type[Constraint]] = {
    "Constraint": Constraint,
    "MaxNorm": MaxNorm,
    "MinMaxNorm": MinMaxNorm,
    "NonNeg": NonNeg,
    "UnitNorm": UnitNorm,
    "constraint": Constraint,
    "max_norm": MaxNorm,
    "min_max_norm": MinMaxNorm,
    "non_neg": NonNeg,
    "unit_norm": UnitNorm,
}


def _lookup(name: Any) -> type[Constraint]:
    cls = ALL_OBJECTS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(
            f"Unknown constraint {name!r}; expected one of {sorted(ALL_OBJECTS)}, a config dict "
            f"{{'class_name': ..., 'config': ...}}, a Constraint instance or a callable."
        )
    return cls


def serialize(constraint: Any) -> Any:
    """``None``, or ``{"class_name", "config"}`` for seqcore's (Keras's) built-in constraints. Any
    other callable (a custom ``Constraint`` subclass, a function) is returned as it is: a layer's
    ``get_config`` keeps it for ``from_config`` in memory, but ``save_model`` cannot store it."""
    if constraint is None:
        return None
    cls = type(constraint)
    if ALL_OBJECTS.get(cls.__name__) is cls:
        return {"class_name": cls.__name__, "config": constraint.get_config()}
    return constraint


def deserialize(config: Any) -> Constraint | Any:
    """The inverse of ``serialize``; any other identifier goes through ``get``."""
    if isinstance(config, dict):
        if "class_name" not in config:
            raise ValueError(
                f"A constraint config must be {{'class_name': ..., 'config': {{...}}}}; received {config!r}."
            )
        cls = _lookup(config["class_name"])
        cfg = config.get("config") or {}
        if not isinstance(cfg, dict):
            raise ValueError(f"The config of constraint {config['class_name']!r} must be a dict; received {cfg!r}.")
        try:
            return cls.from_config(dict(cfg))
        except TypeError as e:  # an unexpected argument name
            raise ValueError(f"{cls.__name__}: invalid config {cfg!r} ({e}).") from None
    return get(config)


def get(identifier: Any) -> Any:
    """Resolves a layer's ``*_constraint`` argument as Keras does: None; a name (``"max_norm"``,
    ``"MaxNorm"``, ...: the constraint with its default arguments); a config dict; a constraint
    class (instantiated with its defaults); a Constraint instance or any callable ``w -> w'``
    (returned as it is)."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return _lookup(identifier)()
    if isinstance(identifier, type):
        if issubclass(identifier, Constraint):
            return identifier()
        raise ValueError(f"Could not interpret constraint identifier {identifier!r}: not a Constraint class.")
    if callable(identifier):
        return identifier
    raise ValueError(
        f"Could not interpret constraint identifier {identifier!r}: pass a name ({sorted(ALL_OBJECTS)}), a "
        f"config dict, a Constraint instance or a callable."
    )


__all__ = [
    "EPSILON",
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "deserialize",
    "get",
    "max_norm",
    "min_max_norm",
    "non_neg",
    "serialize",
    "unit_norm",
]
