"""Weight initializers with Keras 3's names, formulas and fan conventions."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .utils import rng


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras's compute_fans: (in, out) for a dense kernel; receptive field × channels for conv."""
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: ``init(shape) -> float32 array``."""

    def __call__(self, shape: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}


class Constant(Initializer):
    def __init__(self, value: float = 0.0):
        self.value = float(value)

    def __call__(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.full(shape, self.value, dtype=np.float32)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


class Zeros(Constant):
    def __init__(self) -> None:
        super().__init__(0.0)

    def get_config(self) -> dict[str, Any]:
        return {}


class Ones(Constant):
    def __init__(self) -> None:
        super().__init__(1.0)

    def get_config(self) -> dict[str, Any]:
        return {}


class RandomNormal(Initializer):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05):
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape: tuple[int, ...]) -> np.ndarray:
        return rng().normal(self.mean, self.stddev, size=shape).astype(np.float32)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev}


class RandomUniform(Initializer):
    def __init__(self, minval: float = -0.05, maxval: float = 0.05):
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape: tuple[int, ...]) -> np.ndarray:
        return rng().uniform(self.minval, self.maxval, size=shape).astype(np.float32)

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval}


def _truncated_normal(shape: tuple[int, ...], stddev: float) -> np.ndarray:
    """Normal(0, stddev) with values beyond two standard deviations redrawn (Keras's truncation)."""
    out = rng().normal(0.0, stddev, size=shape)
    bad = np.abs(out) > 2 * stddev
    while bad.any():
        out[bad] = rng().normal(0.0, stddev, size=int(bad.sum()))
        bad = np.abs(out) > 2 * stddev
    return out.astype(np.float32)


class TruncatedNormal(Initializer):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05):
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape: tuple[int, ...]) -> np.ndarray:
        return _truncated_normal(shape, self.stddev) + np.float32(self.mean)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev}


class VarianceScaling(Initializer):
    """Keras's VarianceScaling: scale / fan (fan_in, fan_out or their average), normal
    (truncated, with Keras's 0.8796 correction), untruncated normal, or uniform."""

    def __init__(self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal"):
        if scale <= 0:
            raise ValueError(f"VarianceScaling: scale must be > 0. Received: scale={scale}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: mode must be fan_in, fan_out or fan_avg. Received: mode={mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(
                "VarianceScaling: distribution must be truncated_normal, untruncated_normal or uniform. "
                f"Received: distribution={distribution!r}"
            )
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def __call__(self, shape: tuple[int, ...]) -> np.ndarray:
        fan_in, fan_out = _fans(tuple(shape))
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        var = self.scale / max(1.0, fan)
        if self.distribution == "truncated_normal":
            return _truncated_normal(shape, math.sqrt(var) / 0.87962566103423978)
        if self.distribution == "untruncated_normal":
            return rng().normal(0.0, math.sqrt(var), size=shape).astype(np.float32)
        limit = math.sqrt(3.0 * var)
        return rng().uniform(-limit, limit, size=shape).astype(np.float32)

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution}


class GlorotUniform(VarianceScaling):
    def __init__(self) -> None:
        super().__init__(1.0, "fan_avg", "uniform")

    def get_config(self) -> dict[str, Any]:
        return {}


class GlorotNormal(VarianceScaling):
    def __init__(self) -> None:
        super().__init__(1.0, "fan_avg", "truncated_normal")

    def get_config(self) -> dict[str, Any]:
        return {}


class HeUniform(VarianceScaling):
    def __init__(self) -> None:
        super().__init__(2.0, "fan_in", "uniform")

    def get_config(self) -> dict[str, Any]:
        return {}


class HeNormal(VarianceScaling):
    def __init__(self) -> None:
        super().__init__(2.0, "fan_in", "truncated_normal")

    def get_config(self) -> dict[str, Any]:
        return {}


class LecunUniform(VarianceScaling):
    def __init__(self) -> None:
        super().__init__(1.0, "fan_in", "uniform")

    def get_config(self) -> dict[str, Any]:
        return {}


class LecunNormal(VarianceScaling):
    def __init__(self) -> None:
        super().__init__(1.0, "fan_in", "truncated_normal")

    def get_config(self) -> dict[str, Any]:
        return {}


class Orthogonal(Initializer):
    """Keras's Orthogonal: QR of a normal matrix, signs fixed by diag(R), transposed when wide."""

    def __init__(self, gain: float = 1.0):
        self.gain = float(gain)

    def __call__(self, shape: tuple[int, ...]) -> np.ndarray:
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: the shape must be at least 2-D. Received: shape={shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = rng().normal(size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q.reshape(shape)).astype(np.float32)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain}


_BY_NAME: dict[str, Callable[[], Initializer]] = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "random_normal": RandomNormal,
    "random_uniform": RandomUniform,
    "uniform": RandomUniform,  # Keras's aliases (Embedding's default is "uniform")
    "normal": RandomNormal,
    "truncated_normal": TruncatedNormal,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform,
    "he_normal": HeNormal,
    "lecun_uniform": LecunUniform,
    "lecun_normal": LecunNormal,
    "orthogonal": Orthogonal,
    "variance_scaling": VarianceScaling,
}
_CLASS_NAMES = {cls.__name__: name for name, cls in _BY_NAME.items() if isinstance(cls, type)}


def get(identifier: Any) -> Initializer:
    """An initializer from a Keras name (``"glorot_uniform"``), an instance, or a callable."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        key = _CLASS_NAMES.get(identifier, identifier)
        if key not in _BY_NAME:
            raise ValueError(f"Unknown initializer {identifier!r}; expected one of {sorted(_BY_NAME)}.")
        return _BY_NAME[key]()
    if callable(identifier):
        fn = identifier

        class _Wrapped(Initializer):
            def __call__(self, shape: tuple[int, ...]) -> np.ndarray:
                return np.asarray(fn(shape), dtype=np.float32)

        return _Wrapped()
    raise TypeError(f"Could not interpret initializer {identifier!r}: pass a name, an Initializer or a callable.")


def serialize(init: Initializer) -> dict[str, Any]:
    return {"class_name": type(init).__name__, "config": init.get_config()}


def deserialize(config: Any) -> Initializer:
    if isinstance(config, dict):
        cls = {c.__name__: c for c in _BY_NAME.values() if isinstance(c, type)}[config["class_name"]]
        return cls(**config.get("config", {}))
    return get(config)
