"""Optimizers with Keras 3's update formulas. The update itself runs in Rust over every parameter
array in one call (``_seqcore.sgd_momentum_update`` / ``adam_update``).

For saving (``seqcore.saving``): ``get_config``/``from_config`` (and module-level ``serialize``/
``deserialize``) round-trip the hyper-parameters, and ``get_state``/``set_state`` export and import the
training state (iteration count, current learning rate, slot arrays such as Adam's moments, and the
gradient-accumulation buffers) so that training continues exactly where it stopped.

Keras 3's common optimizer arguments are accepted where seqcore does what Keras does with them
(``weight_decay`` on every optimizer, ``use_ema=False``, ``ema_momentum``/``ema_overwrite_frequency``,
which Keras ignores without EMA, ``loss_scale_factor=None``) and refused with what to use instead
otherwise; an unknown argument raises a TypeError listing the accepted ones.

``seqcore.optimizers.schedules`` is ``seqcore.schedules``, as ``keras.optimizers.schedules``."""

from __future__ import annotations

import difflib
import inspect
import math
import numbers
import sys
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import _seqcore
from . import schedules as schedules_mod
from .layers.base import Weight
from .schedules import LearningRateSchedule

# keras.optimizers.schedules: the same module under that path, also for
# `from seqcore.optimizers.schedules import ExponentialDecay` (a module of a module, not a package).
schedules = schedules_mod
sys.modules[f"{__name__}.schedules"] = schedules_mod

# Slot holding the running gradient sum between updates when gradient_accumulation_steps > 1.
ACCUMULATOR_SLOT = "accumulated_gradient"

# Per-weight state is keyed by the Weight object itself, held weakly: not by id(weight), because
# CPython reuses the id of a collected object, and a new model's weight could then silently inherit a
# dead model's momentum of the same shape (or crash the Rust update on a shape mismatch).


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside this module (the user's constructor call),
    whatever the depth of ``__init__`` chaining (AdamW -> Adam -> Optimizer)."""
    level, frame = 1, sys._getframe(1)  # frame 1: the function calling warnings.warn
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        level += 1
        frame = frame.f_back  # type: ignore[assignment]
    return level


def _slot_dict() -> weakref.WeakKeyDictionary[Weight, np.ndarray]:
    return weakref.WeakKeyDictionary()


class OptimizerArgumentError(TypeError, ValueError):
    """An unknown optimizer argument. A TypeError, as Python raises for an unexpected keyword
    argument, and a ValueError, as Keras 3 raises (``Argument(s) not recognized``), so code written
    for either catches it."""


class Optimizer:
    #: Whether the update applies Keras's decoupled ``weight_decay`` inside the Rust step (Adam/AdamW);
    #: the others apply it in ``apply`` just before their update, as Keras's ``_apply_weight_decay``.
    _WEIGHT_DECAY = False
    #: The per-weight state: (slot name, attribute holding a dict keyed by the weight). Slot names
    #: follow Keras's optimizer variable names (``momentum``, ``velocity``, ...).
    _SLOTS: tuple[tuple[str, str], ...] = ()

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule = 0.001,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        *,
        weight_decay: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        **kwargs: Any,
    ):
        self._check_keras_arguments(weight_decay, use_ema, loss_scale_factor, kwargs)
        # Keras ignores these without use_ema (and use_ema=True is refused above); kept for inspection.
        self.ema_momentum, self.ema_overwrite_frequency = ema_momentum, ema_overwrite_frequency
        self.weight_decay = 0.0 if weight_decay is None else float(weight_decay)
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
        # Keyed by weight, like the slots, so the buffers can be saved by weight name.
        self._accum: weakref.WeakKeyDictionary[Weight, np.ndarray] | None = None
        # The weights this optimizer has stepped (or restored state for): a second model handed the
        # same instance is refused, as Keras does, instead of inheriting its iteration count.
        self._seen: weakref.WeakSet[Weight] = weakref.WeakSet()
        self._accum_count = 0
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.iterations = 0
        self.name = name or type(self).__name__.lower()

    @classmethod
    def accepted_arguments(cls) -> list[str]:
        """The keyword arguments of this optimizer class (its own first, then the common ones)."""
        names: list[str] = []
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or not (isinstance(klass, type) and issubclass(klass, Optimizer)):
                continue
            for p in inspect.signature(init).parameters.values():
                if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in names:
                    names.append(p.name)
        return names

    def _check_keras_arguments(
        self, weight_decay: Any, use_ema: Any, loss_scale_factor: Any, kwargs: dict[str, Any]
    ) -> None:
        """Keras 3's arguments seqcore does not act on are refused with what to use instead, and an
        unknown one with the list of accepted ones; ``decay`` is ignored with a warning, as Keras 3."""
        cls = type(self).__name__
        if kwargs.pop("decay", None) is not None:
            warnings.warn(
                f"{cls}: Argument `decay` is no longer supported and will be ignored (as in Keras 3). For Keras 2's "
                f"lr / (1 + decay * step) pass learning_rate=seqcore.optimizers.schedules.InverseTimeDecay(lr, "
                f"decay_steps=1, decay_rate=decay).",
                UserWarning,
                stacklevel=_caller_stacklevel(),
            )
        if kwargs:
            accepted = self.accepted_arguments()
            hints = []
            for key in sorted(kwargs):
                close = ["learning_rate"] if key == "lr" else difflib.get_close_matches(key, accepted, n=1)
                if close:
                    hints.append(f"{key!r} -> did you mean {close[0]!r}?")
            hint = f" ({'; '.join(hints)})" if hints else ""
            raise OptimizerArgumentError(
                f"{cls}: unexpected keyword argument(s) {sorted(kwargs)}{hint}. {cls} accepts: {', '.join(accepted)}."
            )
        if weight_decay is not None:
            if isinstance(weight_decay, bool) or not isinstance(weight_decay, numbers.Real):
                raise TypeError(f"{cls}: weight_decay must be a float or None; received {weight_decay!r}.")
            if not math.isfinite(float(weight_decay)):
                raise ValueError(f"{cls}: weight_decay must be finite. Received: weight_decay={weight_decay}")
        if use_ema:
            raise ValueError(
                f"{cls}: use_ema=True (an exponential moving average of the weights, swapped in at the end of fit) "
                f"is not supported by seqcore's optimizers. Train with use_ema=False; to keep the best weights use "
                f"EarlyStopping(restore_best_weights=True) or ModelCheckpoint(save_best_only=True)."
            )
        if loss_scale_factor is not None:
            raise ValueError(
                f"{cls}: loss_scale_factor={loss_scale_factor!r} is not supported: loss scaling protects float16 "
                f"gradients in mixed-precision training, and seqcore computes in float32, so it needs none. Drop "
                f"the argument (or pass None)."
            )

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
        self._check_same_model(weights)
        # (reshaped to the weight: ascontiguousarray alone turns a scalar weight's gradient into shape (1,))
        gs: list[np.ndarray] = [
            np.ascontiguousarray(g, dtype=np.float32).reshape(w.shape) if np.ndim(g) == 0 else
            np.ascontiguousarray(g, dtype=np.float32) for w, g in zip(weights, grads, strict=True)
        ]  # fmt: skip
        self._seen.update(weights)
        n = self.gradient_accumulation_steps
        if n is not None and n > 1:
            if self._accum is None:
                self._accum = _slot_dict()
            for w, g in zip(weights, gs, strict=True):
                a = self._accum.get(w)
                if a is None:
                    self._accum[w] = g.copy()
                else:
                    a += g
            self._accum_count += 1
            if self._accum_count < n:
                self._apply_constraints(weights)  # Keras projects on every apply call, this one too
                return
            gs = [(self._accum[w] / np.float32(n)).astype(np.float32) for w in weights]
            self._accum, self._accum_count = None, 0
        if self.schedule is not None:
            self.learning_rate = float(self.schedule(self.iterations))
        self.iterations += 1
        gs = self._clip(gs)
        if self.weight_decay and not self._WEIGHT_DECAY:
            # Keras's _apply_weight_decay, before the update and with the same learning rate:
            # w <- w - w * weight_decay * lr (Adam/AdamW do this inside their Rust step).
            wd, lr = np.float32(self.weight_decay), np.float32(self.learning_rate)
            for w in weights:
                w.value -= w.value * wd * lr
        self._update(list(weights), gs)
        self._apply_constraints(weights)

    @staticmethod
    def _apply_constraints(weights: Sequence[Weight]) -> None:
        """Keras: ``variable.assign(variable.constraint(variable))`` for each weight of the apply call.
        In place (the arrays stay the same objects: layers and the optimizer's slots hold them), and
        all results checked before any is written."""
        new: list[tuple[Weight, np.ndarray]] = []
        for w in weights:
            if w.constraint is not None:
                v = np.asarray(w.constraint(w.value))
                if v.shape != w.value.shape:
                    raise ValueError(
                        f"The constraint {w.constraint!r} of weight {w.name!r} returned shape {v.shape}; "
                        f"expected {w.value.shape}."
                    )
                new.append((w, v))
        for w, v in new:
            w.value[...] = v

    def _check_same_model(self, weights: Sequence[Weight]) -> None:
        """Refuses a step on weights none of which this optimizer has seen, once it has state (steps
        taken, or state restored): that is a second model given the same optimizer instance. New
        weights beside known ones (a layer unfrozen mid-training) are fine and start from zero state."""
        started = self.iterations > 0 or self._accum_count > 0 or len(self._seen) > 0
        if started and not any(w in self._seen for w in weights):
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: this optimizer instance already holds the training "
                f"state of another model ({self.iterations} step(s) taken) and cannot be reused for a new "
                "set of weights. Give each model its own optimizer, e.g. "
                f"compile(optimizer=seqcore.optimizers.{type(self).__name__}.from_config(opt.get_config())) "
                "or compile(optimizer='adam')."
            )

    def _update(self, weights: list[Weight], grads: list[np.ndarray]) -> None:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-compatible): ``type(opt).from_config(opt.get_config())`` is
        an equivalent fresh optimizer. ``learning_rate`` is the current rate, or the schedule as a
        ``{"class_name", "config"}`` dict."""
        lr: Any = self.learning_rate
        if self.schedule is not None:
            lr = {"class_name": type(self.schedule).__name__, "config": self.schedule.get_config()}
        return {
            "name": self.name,
            "learning_rate": lr,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            **({"weight_decay": self.weight_decay} if self.weight_decay else {}),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        if not isinstance(config, dict):
            raise TypeError(f"{cls.__name__}.from_config: expected a dict; received {type(config).__name__}.")
        cfg = dict(config)
        if isinstance(cfg.get("learning_rate"), dict):
            cfg["learning_rate"] = _deserialize_schedule(cfg["learning_rate"])
        return cls(**cfg)

    # ----- state (for saving) ----------------------------------------------------------------
    def slot_names(self) -> list[str]:
        """Names of the per-weight state arrays this optimizer can hold (``get_state()["slots"]``)."""
        names = [slot for slot, _ in self._SLOTS]
        if self.gradient_accumulation_steps is not None and self.gradient_accumulation_steps > 1:
            names.append(ACCUMULATOR_SLOT)
        return names

    def _slot_dict(self, slot: str) -> weakref.WeakKeyDictionary[Weight, np.ndarray] | None:
        if slot == ACCUMULATOR_SLOT:
            return self._accum
        d: weakref.WeakKeyDictionary[Weight, np.ndarray] = getattr(self, dict(self._SLOTS)[slot])
        return d

    def get_state(self, weights: Sequence[Weight]) -> dict[str, Any]:
        """The training state, for saving: ``{"iterations", "learning_rate", "accumulation_count",
        "slots": {slot name: [array or None for each of weights]}}``. A slot entry is None when the
        optimizer never created it for that weight (e.g. before the first step). The arrays are the
        optimizer's own, not copies: write them out, do not modify them."""
        slots: dict[str, list[np.ndarray | None]] = {}
        for slot in self.slot_names():
            d = self._slot_dict(slot)
            slots[slot] = [None if d is None else d.get(w) for w in weights]
        return {
            "iterations": self.iterations,
            "learning_rate": self.learning_rate,
            "accumulation_count": self._accum_count,
            "slots": slots,
        }

    def set_state(self, weights: Sequence[Weight], state: dict[str, Any]) -> None:
        """Restores what ``get_state(weights)`` returned (for the same weights, in the same order).
        Everything is checked first; on any error nothing changes."""
        who = f"{type(self).__name__}.set_state"
        if not isinstance(state, dict):
            raise TypeError(f"{who}: expected the dict returned by get_state; received {type(state).__name__}.")
        unknown = set(state) - {"iterations", "learning_rate", "accumulation_count", "slots"}
        if unknown:
            raise ValueError(f"{who}: unexpected key(s) {sorted(unknown)}.")
        it = state.get("iterations", 0)
        if isinstance(it, bool) or not isinstance(it, (int, np.integer)) or it < 0:
            raise ValueError(f"{who}: iterations must be an int >= 0; received {it!r}.")
        lr = state.get("learning_rate", self.learning_rate)
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not np.isfinite(lr) or lr < 0:
            raise ValueError(f"{who}: learning_rate must be a finite number >= 0; received {lr!r}.")
        count = state.get("accumulation_count", 0)
        steps = self.gradient_accumulation_steps or 1
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 0 <= count < steps:
            raise ValueError(
                f"{who}: accumulation_count must be an int in [0, {steps}) for gradient_accumulation_steps="
                f"{self.gradient_accumulation_steps}; received {count!r}."
            )
        slots = state.get("slots", {})
        if not isinstance(slots, dict):
            raise TypeError(f"{who}: slots must be a dict of lists; received {type(slots).__name__}.")
        known = self.slot_names()
        bad = sorted(set(slots) - set(known))
        if bad:
            raise ValueError(f"{who}: unknown slot(s) {bad}; {type(self).__name__} has {known}.")
        new: dict[str, weakref.WeakKeyDictionary[Weight, np.ndarray]] = {}
        for slot, arrays in slots.items():
            if not isinstance(arrays, (list, tuple)) or len(arrays) != len(weights):
                n = len(arrays) if isinstance(arrays, (list, tuple)) else type(arrays).__name__
                raise ValueError(f"{who}: slot {slot!r} needs one entry per weight ({len(weights)}); received {n}.")
            d: weakref.WeakKeyDictionary[Weight, np.ndarray] = _slot_dict()
            for w, a in zip(weights, arrays, strict=True):
                if a is None:
                    continue
                arr = np.asarray(a)
                if arr.shape != w.shape or arr.dtype.kind != "f":
                    raise ValueError(
                        f"{who}: slot {slot!r} of weight {w.name!r} must be a float array of shape {w.shape}; "
                        f"received {arr.dtype} {arr.shape}."
                    )
                # A fresh float32 C-contiguous copy: the Rust updates work in place on these.
                d[w] = np.array(arr, dtype=np.float32, order="C", copy=True)
            new[slot] = d
        # Everything checked: assign.
        self.iterations, self.learning_rate, self._accum_count = int(it), float(lr), int(count)
        self._seen = weakref.WeakSet(weights)
        for slot in known:
            d = new.get(slot, _slot_dict())
            if slot == ACCUMULATOR_SLOT:
                self._accum = d if len(d) else None
            else:
                setattr(self, dict(self._SLOTS)[slot], d)


class SGD(Optimizer):
    _SLOTS = (("momentum", "_velocity"),)

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False, **kwargs: Any):
        super().__init__(learning_rate, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"SGD: momentum must be in [0, 1]. Received: momentum={momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self._velocity: weakref.WeakKeyDictionary[Weight, np.ndarray] = _slot_dict()

    def _update(self, weights: list[Weight], grads: list[np.ndarray]) -> None:
        vel = [self._velocity.setdefault(w, np.zeros_like(w.value)) for w in weights]
        _seqcore.sgd_momentum_update(
            [w.value for w in weights], grads, vel, self.learning_rate, self.momentum, self.nesterov
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Keras 3's Adam. ``weight_decay`` applies Keras's decoupled weight decay, as every Keras 3
    optimizer's argument does (the same update as ``AdamW``)."""

    _WEIGHT_DECAY = True
    _SLOTS = (("momentum", "_m"), ("velocity", "_v"))

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        weight_decay: float | None = None,
        **kwargs: Any,
    ):
        super().__init__(learning_rate, weight_decay=weight_decay, **kwargs)
        if amsgrad:
            raise ValueError(
                f"{type(self).__name__}: amsgrad=True is not supported: seqcore's fused Adam update (one Rust call "
                f"over all weights) has no AMSGrad variant (the running maximum of the second moments). Use "
                f"amsgrad=False."
            )
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self._m: weakref.WeakKeyDictionary[Weight, np.ndarray] = _slot_dict()
        self._v: weakref.WeakKeyDictionary[Weight, np.ndarray] = _slot_dict()

    def _update(self, weights: list[Weight], grads: list[np.ndarray]) -> None:
        m = [self._m.setdefault(w, np.zeros_like(w.value)) for w in weights]
        v = [self._v.setdefault(w, np.zeros_like(w.value)) for w in weights]
        _seqcore.adam_update(
            [w.value for w in weights], grads, m, v, self.learning_rate, self.beta_1, self.beta_2,
            self.epsilon, self.iterations, self.weight_decay,
        )  # fmt: skip

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "weight_decay": self.weight_decay,
        }


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras's default weight_decay=0.004)."""

    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004, **kwargs: Any):
        if weight_decay is None:  # Keras's AdamW refuses it too
            raise ValueError("AdamW: Argument `weight_decay` must be a float. Received: weight_decay=None")
        super().__init__(learning_rate, weight_decay=weight_decay, **kwargs)


class RMSprop(Optimizer):
    """Keras 3 RMSprop (``rho=0.9``, ``momentum=0``, ``epsilon=1e-7``, ``centered=False``)."""

    _SLOTS = (("velocity", "_v"), ("average_gradient", "_avg"), ("momentum", "_mom"))

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
        self._v: weakref.WeakKeyDictionary[Weight, np.ndarray] = _slot_dict()
        self._avg: weakref.WeakKeyDictionary[Weight, np.ndarray] = _slot_dict()
        self._mom: weakref.WeakKeyDictionary[Weight, np.ndarray] = _slot_dict()

    def _update(self, weights: list[Weight], grads: list[np.ndarray]) -> None:
        v = [self._v.setdefault(w, np.zeros_like(w.value)) for w in weights]
        avg = [self._avg.setdefault(w, np.zeros_like(w.value)) for w in weights] if self.centered else None
        mom = [self._mom.setdefault(w, np.zeros_like(w.value)) for w in weights] if self.momentum else None
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

    _SLOTS = (("accumulator", "_acc"),)

    def __init__(
        self, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1, epsilon: float = 1e-7, **kwargs: Any
    ):
        super().__init__(learning_rate, **kwargs)
        if initial_accumulator_value < 0:
            raise ValueError(f"Adagrad: initial_accumulator_value must be >= 0. Received: {initial_accumulator_value}")
        self.initial_accumulator_value, self.epsilon = float(initial_accumulator_value), float(epsilon)
        self._acc: weakref.WeakKeyDictionary[Weight, np.ndarray] = _slot_dict()

    def _update(self, weights: list[Weight], grads: list[np.ndarray]) -> None:
        acc = [self._acc.setdefault(w, np.full_like(w.value, self.initial_accumulator_value)) for w in weights]
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


# Optimizer and schedule classes by name, for deserialize: only these can be rebuilt from a config
# (a saved file names a class; nothing is imported or executed).
_CLASSES: dict[str, type[Optimizer]] = {c.__name__: c for c in (SGD, Adam, AdamW, RMSprop, Adagrad)}
_SCHEDULES: dict[str, type[LearningRateSchedule]] = {
    name: obj
    for name, obj in vars(schedules_mod).items()
    if isinstance(obj, type) and issubclass(obj, LearningRateSchedule) and obj is not LearningRateSchedule
}


def _deserialize_schedule(config: dict[str, Any]) -> LearningRateSchedule:
    name = config.get("class_name")
    if name not in _SCHEDULES:
        raise ValueError(f"Unknown learning-rate schedule {name!r}; seqcore has {sorted(_SCHEDULES)}.")
    cfg = config.get("config", {})
    if not isinstance(cfg, dict):
        raise TypeError(f"{name}: the schedule config must be a dict; received {type(cfg).__name__}.")
    return _SCHEDULES[name](**cfg)


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """``{"class_name": ..., "config": optimizer.get_config()}``."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: dict[str, Any]) -> Optimizer:
    """The optimizer ``serialize`` described (class resolved among seqcore's own optimizers)."""
    if not isinstance(config, dict):
        raise TypeError(f"optimizers.deserialize: expected a dict; received {type(config).__name__}.")
    name = config.get("class_name")
    if name not in _CLASSES:
        raise ValueError(f"Unknown optimizer class {name!r}; seqcore has {sorted(_CLASSES)}.")
    return _CLASSES[name].from_config(config.get("config", {}))
