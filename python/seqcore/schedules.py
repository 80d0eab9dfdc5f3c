"""Learning-rate schedules with Keras 3's formulas, names, arguments and configs; pass one as
``learning_rate`` to an optimizer (the optimizer evaluates it at every step). Also reachable as
``seqcore.optimizers.schedules``, like ``keras.optimizers.schedules``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "CosineDecay",
    "CosineDecayRestarts",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "deserialize",
    "serialize",
]


def _positive_steps(value: Any, who: str, arg: str) -> None:
    if value <= 0:
        raise ValueError(f"{who}: Argument `{arg}` must be > 0. Received: {arg}={value}")


class LearningRateSchedule:
    """Base class: ``schedule(step) -> learning rate``; subclasses define ``__call__`` and
    ``get_config`` (the constructor arguments, so ``from_config`` rebuilds it)."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError(f"Learning rate schedule {type(self).__name__!r} must override __call__(self, step).")

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        return cls(**config)


class _StepDecay(LearningRateSchedule):
    """What ExponentialDecay and InverseTimeDecay share: their arguments and the progress
    ``step / decay_steps`` (floored when ``staircase``)."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        name: str | None = None,
    ):
        cls = type(self).__name__
        _positive_steps(decay_steps, cls, "decay_steps")
        self.initial_learning_rate, self.decay_steps = float(initial_learning_rate), int(decay_steps)
        self.decay_rate, self.staircase, self.name = float(decay_rate), bool(staircase), name or cls

    def _progress(self, step: int) -> float:
        p = step / self.decay_steps
        return math.floor(p) if self.staircase else p

    def get_config(self) -> dict[str, Any]:
        return dict(vars(self))


class ExponentialDecay(_StepDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (the exponent floored when
    ``staircase``)."""

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate * self.decay_rate ** self._progress(step)


class InverseTimeDecay(_StepDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)`` (``step / decay_steps``
    floored when ``staircase``). With ``decay_steps=1`` it is Keras 2's ``decay`` argument."""

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate / (1.0 + self.decay_rate * self._progress(step))


class PolynomialDecay(LearningRateSchedule):
    """From ``initial_learning_rate`` to ``end_learning_rate`` over ``decay_steps`` as
    ``(initial - end) * (1 - step / decay_steps) ** power + end``, then constant; with ``cycle``
    the horizon grows to the next multiple of ``decay_steps`` instead."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
        name: str = "PolynomialDecay",
    ):
        _positive_steps(decay_steps, "PolynomialDecay", "decay_steps")
        self.initial_learning_rate, self.decay_steps = float(initial_learning_rate), int(decay_steps)
        self.end_learning_rate, self.power = float(end_learning_rate), float(power)
        self.cycle, self.name = bool(cycle), name

    def __call__(self, step: int) -> float:
        horizon = float(self.decay_steps)
        if self.cycle:
            horizon *= 1.0 if step == 0 else math.ceil(step / self.decay_steps)
        else:
            step = min(step, self.decay_steps)
        p = step / horizon
        return (self.initial_learning_rate - self.end_learning_rate) * (1.0 - p) ** self.power + self.end_learning_rate

    def get_config(self) -> dict[str, Any]:
        return dict(vars(self))


class CosineDecay(LearningRateSchedule):
    """Keras's CosineDecay, with optional linear warmup. Without ``warmup_target``: the rate is
    ``initial_learning_rate * ((1 - alpha) * 0.5 * (1 + cos(pi * t / decay_steps)) + alpha)`` with
    ``t = min(step, decay_steps)``. With it: linear from ``initial_learning_rate`` to
    ``warmup_target`` over ``warmup_steps``, then that cosine decay from ``warmup_target``."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        name: str = "CosineDecay",
        warmup_target: float | None = None,
        warmup_steps: int = 0,
    ):
        _positive_steps(decay_steps, "CosineDecay", "decay_steps")
        self.initial_learning_rate, self.decay_steps, self.alpha = float(initial_learning_rate), int(decay_steps), alpha
        self.name = name
        self.warmup_target, self.warmup_steps = warmup_target, int(warmup_steps)

    def _decay(self, t: float, peak: float) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * t / self.decay_steps))
        return peak * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step: int) -> float:
        if self.warmup_target is None:  # Keras ignores warmup_steps then
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            delta = self.warmup_target - self.initial_learning_rate
            return delta * (step / self.warmup_steps) + self.initial_learning_rate
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self) -> dict[str, Any]:
        return dict(vars(self))


class CosineDecayRestarts(LearningRateSchedule):
    """Keras's CosineDecayRestarts (SGDR): cosine decays of ``first_decay_steps``, each next period
    ``t_mul`` times longer and starting ``m_mul`` times lower, down to ``alpha`` of the rate."""

    def __init__(
        self,
        initial_learning_rate: float,
        first_decay_steps: int,
        t_mul: float = 2.0,
        m_mul: float = 1.0,
        alpha: float = 0.0,
        name: str = "SGDRDecay",
    ):
        _positive_steps(first_decay_steps, "CosineDecayRestarts", "first_decay_steps")
        self.initial_learning_rate, self.first_decay_steps = float(initial_learning_rate), int(first_decay_steps)
        self.t_mul, self.m_mul, self.alpha, self.name = float(t_mul), float(m_mul), float(alpha), name

    def __call__(self, step: int) -> float:
        done = step / self.first_decay_steps
        if self.t_mul == 1.0:
            restart = math.floor(done)
            done -= restart
        else:
            # Periods 1, t, t^2, ...: the restart index from the geometric sum, then the fraction of it.
            restart = math.floor(math.log(1.0 - done * (1.0 - self.t_mul)) / math.log(self.t_mul))
            before = (1.0 - self.t_mul**restart) / (1.0 - self.t_mul)
            done = (done - before) / self.t_mul**restart
        cosine = 0.5 * self.m_mul**restart * (1.0 + math.cos(math.pi * done))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)

    def get_config(self) -> dict[str, Any]:
        return dict(vars(self))


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` while ``step <= boundaries[i]`` (Keras's convention), ``values[-1]`` after."""

    def __init__(self, boundaries: Sequence[int], values: Sequence[float], name: str = "PiecewiseConstant"):
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"PiecewiseConstantDecay: values needs one more entry than boundaries; received "
                f"{len(boundaries)} boundaries and {len(values)} values."
            )
        self.boundaries, self.values, self.name = list(boundaries), [float(v) for v in values], name

    def __call__(self, step: int) -> float:
        for b, v in zip(self.boundaries, self.values, strict=False):
            if step <= b:
                return v
        return self.values[-1]

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


def _classes() -> dict[str, type[LearningRateSchedule]]:
    return {
        name: obj
        for name, obj in globals().items()
        if isinstance(obj, type)
        and issubclass(obj, LearningRateSchedule)
        and obj is not LearningRateSchedule
        and not name.startswith("_")  # shared bases such as _StepDecay
    }


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """``{"class_name": ..., "config": schedule.get_config()}``."""
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(f"schedules.serialize: expected a LearningRateSchedule; received {type(schedule).__name__}.")
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(
    config: Mapping[str, Any], custom_objects: Mapping[str, type[LearningRateSchedule]] | None = None
) -> LearningRateSchedule:
    """The schedule ``serialize`` (or Keras's ``serialize``) described; the class is looked up among
    seqcore's schedules and ``custom_objects`` only (nothing is imported)."""
    if not isinstance(config, Mapping) or not isinstance(config.get("class_name"), str):
        raise TypeError(
            f"schedules.deserialize: expected {{'class_name': str, 'config': dict}}; received {config!r:.200}"
        )
    classes = {**_classes(), **(custom_objects or {})}
    name = config["class_name"]
    if name not in classes:
        raise ValueError(f"Unknown learning-rate schedule {name!r}; seqcore has {sorted(_classes())}.")
    cfg = config.get("config") or {}
    if not isinstance(cfg, Mapping):
        raise TypeError(f"{name}: the schedule config must be a dict; received {type(cfg).__name__}.")
    return classes[name].from_config(dict(cfg))
