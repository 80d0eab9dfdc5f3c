"""Learning-rate schedules with Keras's formulas; pass one as ``learning_rate`` to an optimizer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


class LearningRateSchedule:
    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}


class ExponentialDecay(LearningRateSchedule):
    """``lr0 * decay_rate ** (step / decay_steps)`` (floored exponent when ``staircase``)."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False):
        if decay_steps <= 0:
            raise ValueError(f"ExponentialDecay: decay_steps must be > 0. Received: decay_steps={decay_steps}")
        self.initial_learning_rate, self.decay_steps = float(initial_learning_rate), int(decay_steps)
        self.decay_rate, self.staircase = float(decay_rate), bool(staircase)

    def __call__(self, step: int) -> float:
        p = step / self.decay_steps
        return self.initial_learning_rate * self.decay_rate ** (math.floor(p) if self.staircase else p)

    def get_config(self) -> dict[str, Any]:
        return dict(vars(self))


class CosineDecay(LearningRateSchedule):
    """Keras's CosineDecay with optional linear warmup: after ``warmup_steps``, ``lr`` follows
    ``(1 - alpha) * 0.5 * (1 + cos(pi * t / decay_steps)) + alpha`` of the peak."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        warmup_target: float | None = None,
        warmup_steps: int = 0,
    ):
        if decay_steps <= 0:
            raise ValueError(f"CosineDecay: decay_steps must be > 0. Received: decay_steps={decay_steps}")
        self.initial_learning_rate, self.decay_steps, self.alpha = float(initial_learning_rate), int(decay_steps), alpha
        self.warmup_target, self.warmup_steps = warmup_target, int(warmup_steps)

    def __call__(self, step: int) -> float:
        peak = self.initial_learning_rate if self.warmup_target is None else self.warmup_target
        if self.warmup_target is not None and step < self.warmup_steps:
            return self.initial_learning_rate + (peak - self.initial_learning_rate) * step / max(1, self.warmup_steps)
        t = min(step - self.warmup_steps, self.decay_steps)
        return peak * ((1 - self.alpha) * 0.5 * (1 + math.cos(math.pi * t / self.decay_steps)) + self.alpha)

    def get_config(self) -> dict[str, Any]:
        return dict(vars(self))


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` while ``step <= boundaries[i]`` (Keras's convention), ``values[-1]`` after."""

    def __init__(self, boundaries: Sequence[int], values: Sequence[float]):
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"PiecewiseConstantDecay: values needs one more entry than boundaries; received "
                f"{len(boundaries)} boundaries and {len(values)} values."
            )
        self.boundaries, self.values = list(boundaries), [float(v) for v in values]

    def __call__(self, step: int) -> float:
        for b, v in zip(self.boundaries, self.values, strict=False):
            if step <= b:
                return v
        return self.values[-1]

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": self.boundaries, "values": self.values}
