"""Keras's noise and regularization layers: ``SpatialDropout1D``, ``GaussianNoise``,
``GaussianDropout``, ``AlphaDropout`` and ``ActivityRegularization``, with Keras 3's formulas.
Each is the identity at inference; in training the noise is drawn from seqcore's generator (or the
layer's own, seeded, when ``seed`` is given) and kept for backward, so the gradient is that of the
same draw. Masks pass through."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import regularizers
from .._validation import as_f32
from ..utils import rng
from .base import Layer, Shape, shape_str


def _rate(rate: Any, who: str) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) or not 0 <= rate < 1:
        raise ValueError(f"{who}: rate must be a float in [0, 1). Received: rate={rate!r}")
    return float(rate)


class _Noise(Layer):
    propagates_mask = True

    def __init__(self, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.seed = seed
        self._gen = np.random.default_rng(seed) if seed is not None else None

    def _rng(self) -> np.random.Generator:
        return self._gen or rng()

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape


class SpatialDropout1D(_Noise):
    """Dropout of whole channels: in training each (sample, channel) is zeroed with probability
    ``rate`` at every step at once, the rest scaled by ``1/(1 - rate)``."""

    def __init__(self, rate: Any, seed: int | None = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        self.rate = _rate(rate, f"SpatialDropout1D {self.name!r}")

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) != 2:
            raise ValueError(
                f"SpatialDropout1D {self.name!r}: expects (batch, steps, channels) inputs; received shape "
                f"{shape_str((None, *input_shape))}."
            )

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, f"SpatialDropout1D {self.name!r}", "inputs")
        if not training or self.rate == 0:
            return x, None
        keep = self._rng().random((x.shape[0], 1, x.shape[2]), dtype=np.float32) >= self.rate
        scale = keep.astype(np.float32) / np.float32(1 - self.rate)
        return x * scale, scale

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        return dy if ctx is None else np.ascontiguousarray(dy * ctx)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class GaussianNoise(_Noise):
    """Adds zero-mean Gaussian noise of standard deviation ``stddev`` in training."""

    def __init__(self, stddev: Any, seed: int | None = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        if isinstance(stddev, bool) or not isinstance(stddev, (int, float, np.integer, np.floating)) or stddev < 0:
            raise ValueError(f"GaussianNoise {self.name!r}: stddev must be a float >= 0. Received: stddev={stddev!r}")
        self.stddev = float(stddev)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, f"GaussianNoise {self.name!r}", "inputs")
        if not training or self.stddev == 0:
            return x, None
        noise = self._rng().standard_normal(x.shape, dtype=np.float32) * np.float32(self.stddev)
        return x + noise, True

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        return dy

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_Noise):
    """Multiplies by Gaussian noise of mean 1 and standard deviation ``sqrt(rate / (1 - rate))`` in
    training."""

    def __init__(self, rate: Any, seed: int | None = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        self.rate = _rate(rate, f"GaussianDropout {self.name!r}")

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, f"GaussianDropout {self.name!r}", "inputs")
        if not training or self.rate == 0:
            return x, None
        std = np.float32(math.sqrt(self.rate / (1.0 - self.rate)))
        noise = np.float32(1.0) + self._rng().standard_normal(x.shape, dtype=np.float32) * std
        return x * noise, noise

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        return dy if ctx is None else np.ascontiguousarray(dy * ctx)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class AlphaDropout(_Noise):
    """Dropout that keeps the mean and variance of SELU activations (Keras 3's formula): dropped
    units are set to ``-alpha·scale`` of SELU, then ``a·x + b`` restores the moments."""

    _ALPHA = 1.6732632423543772848170429916717
    _SCALE = 1.0507009873554804934193349852946

    def __init__(self, rate: Any, noise_shape: Any = None, seed: int | None = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        self.rate = _rate(rate, f"AlphaDropout {self.name!r}")
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, f"AlphaDropout {self.name!r}", "inputs")
        if not training or self.rate == 0:
            return x, None
        shape = x.shape
        if self.noise_shape is not None:
            shape = tuple(x.shape[i] if d is None else d for i, d in enumerate(self.noise_shape))
        kept = (self._rng().random(shape, dtype=np.float32) >= self.rate).astype(np.float32)
        alpha_p = -self._ALPHA * self._SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p**2)) ** -0.5
        b = -a * alpha_p * self.rate
        y = np.float32(a) * (x * kept + np.float32(alpha_p) * (np.float32(1.0) - kept)) + np.float32(b)
        return np.ascontiguousarray(y, dtype=np.float32), kept * np.float32(a)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        return dy if ctx is None else np.ascontiguousarray(dy * ctx)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}


class ActivityRegularization(Layer):
    """The identity, with the activity penalty ``l1·Σ|x| + l2·Σx²`` (per sample, as every activity
    regularizer in Keras) added to the loss."""

    propagates_mask = True

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any):
        kwargs.pop("activity_regularizer", None)
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1, self.l2 = float(l1), float(l2)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        return x, None

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        return dy

    def get_config(self) -> dict[str, Any]:
        cfg = {**super().get_config(), "l1": self.l1, "l2": self.l2}
        cfg.pop("activity_regularizer", None)
        return cfg
