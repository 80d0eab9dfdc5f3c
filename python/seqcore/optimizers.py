"""Optimizers with Keras 3's update formulas. The update itself runs in Rust over every parameter
array in one call (``_seqcore.sgd_momentum_update`` / ``adam_update``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import _seqcore
from .layers.base import Weight
from .schedules import LearningRateSchedule


class Optimizer:
    def __init__(
        self,
        learning_rate: float | LearningRateSchedule = 0.001,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
    ):
        if sum(v is not None for v in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                f"{type(self).__name__}: pass at most one of clipnorm, clipvalue, global_clipnorm "
                f"(Keras allows only one). Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}"
            )
        self.schedule = learning_rate if isinstance(learning_rate, LearningRateSchedule) else None
        lr = learning_rate(0) if self.schedule is not None else float(learning_rate)  # type: ignore[operator, arg-type]
        if not np.isfinite(lr) or lr < 0:
            raise ValueError(f"{type(self).__name__}: learning_rate must be a finite number >= 0. Received: {lr}")
        self.learning_rate = lr
        if gradient_accumulation_steps is not None and (
            not isinstance(gradient_accumulation_steps, int) or gradient_accumulation_steps < 1
        ):
            raise ValueError(
                f"{type(self).__name__}: gradient_accumulation_steps must be an int >= 1. "
                f"Received: {gradient_accumulation_steps!r}"
            )
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self._accum: list[np.ndarray] | None = None
        self._accum_count = 0
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.iterations = 0
        self.name = name or type(self).__name__.lower()

    def _clip(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        if self.clipvalue is not None:
            c = np.float32(self.clipvalue)
            return [np.clip(g, -c, c) for g in grads]
        if self.clipnorm is not None:
            out = []
            for g in grads:
                n = float(np.sqrt(np.square(g, dtype=np.float64).sum()))
                out.append(g * np.float32(self.clipnorm / n) if n > self.clipnorm else g)
            return out
        if self.global_clipnorm is not None:
            n = float(np.sqrt(sum(np.square(g, dtype=np.float64).sum() for g in grads)))
            if n > self.global_clipnorm:
                return [g * np.float32(self.global_clipnorm / n) for g in grads]
        return grads

    def apply(self, weights: Sequence[Weight], grads: Sequence[np.ndarray]) -> None:
        """One step: ``weights[i].value`` updated in place from ``grads[i]``. With
        ``gradient_accumulation_steps=n`` the weights change every n-th call, by the mean of the
        n gradients (a larger effective batch without its memory)."""
        if not weights:
            return
        gs: list[np.ndarray] = [np.ascontiguousarray(g, dtype=np.float32) for g in grads]
        n = self.gradient_accumulation_steps
        if n is not None and n > 1:
            if self._accum is None:
                self._accum = [g.copy() for g in gs]
            else:
                for a, g in zip(self._accum, gs, strict=True):
                    a += g
            self._accum_count += 1
            if self._accum_count < n:
                return
            gs = [(a / np.float32(n)).astype(np.float32) for a in self._accum]
            self._accum, self._accum_count = None, 0
        if self.schedule is not None:
            self.learning_rate = float(self.schedule(self.iterations))
        self.iterations += 1
        self._update(list(weights), self._clip(gs))

    def _update(self, weights: list[Weight], grads: list[np.ndarray]) -> None:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
        }


class SGD(Optimizer):
    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False, **kwargs: Any):
        super().__init__(learning_rate, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"SGD: momentum must be in [0, 1]. Received: momentum={momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self._velocity: dict[int, np.ndarray] = {}

    def _update(self, weights: list[Weight], grads: list[np.ndarray]) -> None:
        vel = [self._velocity.setdefault(id(w), np.zeros_like(w.value)) for w in weights]
        _seqcore.sgd_momentum_update(
            [w.value for w in weights], grads, vel, self.learning_rate, self.momentum, self.nesterov
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ):
        super().__init__(learning_rate, **kwargs)
        if amsgrad:
            raise ValueError("Adam: amsgrad=True is not supported yet.")
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.weight_decay = 0.0
        self._m: dict[int, np.ndarray] = {}
        self._v: dict[int, np.ndarray] = {}

    def _update(self, weights: list[Weight], grads: list[np.ndarray]) -> None:
        m = [self._m.setdefault(id(w), np.zeros_like(w.value)) for w in weights]
        v = [self._v.setdefault(id(w), np.zeros_like(w.value)) for w in weights]
        _seqcore.adam_update(
            [w.value for w in weights], grads, m, v, self.learning_rate, self.beta_1, self.beta_2,
            self.epsilon, self.iterations, self.weight_decay,
        )  # fmt: skip

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras's default weight_decay=0.004)."""

    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004, **kwargs: Any):
        super().__init__(learning_rate, **kwargs)
        self.weight_decay = float(weight_decay)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weight_decay": self.weight_decay}


class RMSprop(Optimizer):
    """Keras 3 RMSprop (``rho=0.9``, ``momentum=0``, ``epsilon=1e-7``, ``centered=False``)."""

    def __init__(
        self,
        learning_rate: float = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **kwargs: Any,
    ):
        super().__init__(learning_rate, **kwargs)
        if not 0 <= rho < 1 or not 0 <= momentum < 1:
            raise ValueError(f"RMSprop: rho and momentum must be in [0, 1). Received: rho={rho}, momentum={momentum}")
        self.rho, self.momentum, self.epsilon, self.centered = (
            float(rho),
            float(momentum),
            float(epsilon),
            bool(centered),
        )
        self._v: dict[int, np.ndarray] = {}
        self._avg: dict[int, np.ndarray] = {}
        self._mom: dict[int, np.ndarray] = {}

    def _update(self, weights: list[Weight], grads: list[np.ndarray]) -> None:
        v = [self._v.setdefault(id(w), np.zeros_like(w.value)) for w in weights]
        avg = [self._avg.setdefault(id(w), np.zeros_like(w.value)) for w in weights] if self.centered else None
        mom = [self._mom.setdefault(id(w), np.zeros_like(w.value)) for w in weights] if self.momentum else None
        _seqcore.rmsprop_update(
            [w.value for w in weights], grads, v, avg, mom, self.learning_rate, self.rho, self.epsilon, self.momentum
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }


class Adagrad(Optimizer):
    """Keras 3 Adagrad (``initial_accumulator_value=0.1``, ``epsilon=1e-7``)."""

    def __init__(
        self, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1, epsilon: float = 1e-7, **kwargs: Any
    ):
        super().__init__(learning_rate, **kwargs)
        if initial_accumulator_value < 0:
            raise ValueError(f"Adagrad: initial_accumulator_value must be >= 0. Received: {initial_accumulator_value}")
        self.initial_accumulator_value, self.epsilon = float(initial_accumulator_value), float(epsilon)
        self._acc: dict[int, np.ndarray] = {}

    def _update(self, weights: list[Weight], grads: list[np.ndarray]) -> None:
        acc = [self._acc.setdefault(id(w), np.full_like(w.value, self.initial_accumulator_value)) for w in weights]
        _seqcore.adagrad_update([w.value for w in weights], grads, acc, self.learning_rate, self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }


_BY_NAME: dict[str, Callable[[], Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
}


def get(identifier: Any) -> Optimizer:
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _BY_NAME:
            raise ValueError(
                f"Unknown optimizer {identifier!r}; expected one of {sorted(_BY_NAME)} or an Optimizer instance."
            )
        return _BY_NAME[key]()
    raise TypeError(f"Could not interpret optimizer {identifier!r}: pass a name such as 'adam' or an instance.")
