"""Losses with Keras 3's formulas and reduction, each returning the value and its gradient.

Reduction (Keras's ``sum_over_batch_size``): the per-sample loss is the mean over the last axis
(MSE, MAE, Huber) or the sum over classes (cross-entropies); with ``sample_weight`` it is weighted;
the result is the sum divided by the number of per-sample values. Targets must match the
predictions' shape exactly (sparse cross-entropy: one class index per prediction row): a mismatch is
an error naming both shapes, never a silent broadcast.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from . import kernels

_EPS = 1e-7  # Keras's backend epsilon, used to clip probabilities


def _accepted_arguments(cls: type) -> list[str]:
    """The keyword arguments ``cls(...)`` takes, along its constructors up to :class:`Loss`."""
    names: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in names:
                names.append(p.name)
    return names


class Loss:
    name = "loss"

    def __init__(self, reduction: str = "sum_over_batch_size", name: str | None = None, **kwargs: Any):
        if kwargs:
            # Python's own message would name Loss.__init__, not the class the user wrote.
            accepted = _accepted_arguments(type(self))
            close = [m for k in sorted(kwargs) for m in difflib.get_close_matches(k, accepted, n=1, cutoff=0.6)]
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else f"; it accepts {accepted}."
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}{hint}")
        if reduction not in ("sum_over_batch_size", "sum", "mean"):
            raise ValueError(f"{type(self).__name__}: unsupported reduction {reduction!r}.")
        self.reduction = reduction
        if name:
            self.name = name

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(per-sample loss over y_pred.shape[:-1], its gradient by y_pred)."""
        raise NotImplementedError

    def check(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        if y_true.shape != y_pred.shape:
            hint = ""
            if y_true.shape == y_pred.shape[:-1] and y_pred.shape[-1] == 1:
                hint = " Add the trailing axis to the targets: y.reshape(-1, 1) (or y[..., None])."
            elif (
                isinstance(self, CategoricalCrossentropy)
                and y_pred.ndim
                and y_pred.shape[-1] > 1
                and y_true.shape in (y_pred.shape[:-1], y_pred.shape[:-1] + (1,))
            ):
                hint = (
                    f" These look like integer class labels: integer class labels need "
                    f"loss='sparse_categorical_crossentropy' (or one-hot y with {y_pred.shape[-1]} columns)."
                )
            raise ValueError(
                f"{self.name}: targets of shape {y_true.shape} do not match the model output of shape "
                f"{y_pred.shape}; seqcore does not broadcast them.{hint}"
            )
        return y_true

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> tuple[float, np.ndarray]:
        y_pred = np.asarray(y_pred, dtype=np.float32)
        y_true = self.check(np.asarray(y_true), y_pred)
        per, grad = self.per_sample(y_true, y_pred)
        n = max(1, per.size)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=np.float32)
            while sw.ndim < per.ndim:
                sw = sw[..., None]
            try:
                sw = np.broadcast_to(sw, per.shape)
            except ValueError:
                raise ValueError(
                    f"{self.name}: sample_weight of shape {np.shape(sample_weight)} does not fit the per-sample "
                    f"loss of shape {per.shape}."
                ) from None
            per = per * sw
            grad = grad * sw[..., None]
        if self.reduction == "sum":
            return float(per.sum(dtype=np.float64)), grad
        return float(per.sum(dtype=np.float64) / n), grad / np.float32(n)


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = y_pred - y_true.astype(np.float32)
        w = d.shape[-1] if d.ndim else 1
        return np.mean(np.square(d), axis=-1), d * np.float32(2.0 / w)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> tuple[float, np.ndarray]:
        if sample_weight is None and self.reduction == "sum_over_batch_size":
            p = np.asarray(y_pred, dtype=np.float32)
            t = self.check(np.asarray(y_true), p)
            return kernels.mse(p, t)  # fused Rust kernel: value and gradient in one pass
        return super().__call__(y_true, y_pred, sample_weight)


class MeanAbsoluteError(Loss):
    name = "mean_absolute_error"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = y_pred - y_true.astype(np.float32)
        w = d.shape[-1] if d.ndim else 1
        return np.mean(np.abs(d), axis=-1), np.sign(d) / np.float32(w)


class Huber(Loss):
    name = "huber_loss"

    def __init__(self, delta: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.delta = float(delta)

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = y_pred - y_true.astype(np.float32)
        a = np.abs(d)
        quad = a <= self.delta
        per = np.where(quad, 0.5 * d * d, self.delta * a - 0.5 * self.delta**2)
        g = np.where(quad, d, self.delta * np.sign(d))
        w = d.shape[-1] if d.ndim else 1
        return per.mean(axis=-1), (g / np.float32(w)).astype(np.float32)


class MeanAbsolutePercentageError(Loss):
    """``100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7))`` over the last axis, as Keras."""

    name = "mean_absolute_percentage_error"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = y_true.astype(np.float32)
        scale = np.maximum(np.abs(t), np.float32(_EPS))
        d = y_pred - t
        w = d.shape[-1] if d.ndim else 1
        return 100.0 * np.mean(np.abs(d) / scale, axis=-1), (np.sign(d) * np.float32(100.0 / w) / scale)


class MeanSquaredLogarithmicError(Loss):
    """``mean((log(max(y_pred, 1e-7) + 1) - log(max(y_true, 1e-7) + 1))**2)``, as Keras."""

    name = "mean_squared_logarithmic_error"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = np.maximum(y_pred, np.float32(_EPS))
        d = np.log1p(p) - np.log1p(np.maximum(y_true.astype(np.float32), np.float32(_EPS)))
        w = d.shape[-1] if d.ndim else 1
        # d/dy_pred: zero where the clamp at eps is active, as the maximum's gradient is.
        g = np.where(y_pred > _EPS, d * np.float32(2.0 / w) / (1.0 + p), 0.0)
        return np.mean(np.square(d), axis=-1), g.astype(np.float32)


class LogCosh(Loss):
    """``mean(log(cosh(y_pred - y_true)))`` over the last axis, computed stably as Keras does
    (``x + softplus(-2x) - log 2``)."""

    name = "log_cosh"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = y_pred - y_true.astype(np.float32)
        w = x.shape[-1] if x.ndim else 1
        per = x + np.logaddexp(0.0, -2.0 * x) - np.log(2.0)
        return np.mean(per, axis=-1), (np.tanh(x) / np.float32(w)).astype(np.float32)


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


class BinaryCrossentropy(Loss):
    name = "binary_crossentropy"

    def __init__(self, from_logits: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.from_logits = bool(from_logits)

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = y_true.astype(np.float32)
        w = y_pred.shape[-1] if y_pred.ndim else 1
        if self.from_logits:  # stable on logits: -(t log σ(z) + (1-t) log σ(-z))
            per = -(t * _log_sigmoid(y_pred) + (1 - t) * _log_sigmoid(-y_pred))
            g = 1.0 / (1.0 + np.exp(-y_pred)) - t
        else:
            p = np.clip(y_pred, _EPS, 1 - _EPS)
            per = -(t * np.log(p) + (1 - t) * np.log(1 - p))
            g = np.where((y_pred > _EPS) & (y_pred < 1 - _EPS), (p - t) / (p * (1 - p)), 0.0)
        return per.mean(axis=-1), (g / np.float32(w)).astype(np.float32)


class CategoricalCrossentropy(Loss):
    name = "categorical_crossentropy"

    def __init__(self, from_logits: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.from_logits = bool(from_logits)

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = y_true.astype(np.float32)
        if self.from_logits:
            z = y_pred - y_pred.max(axis=-1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
            p = np.exp(logp)
            return -(t * logp).sum(axis=-1), (p * t.sum(axis=-1, keepdims=True) - t).astype(np.float32)
        # Keras normalizes the probabilities to sum to one, then clips.
        s = y_pred.sum(axis=-1, keepdims=True)
        p = np.clip(y_pred / s, _EPS, 1 - _EPS)
        per = -(t * np.log(p)).sum(axis=-1)
        dp = -t / p * ((y_pred / s > _EPS) & (y_pred / s < 1 - _EPS))
        g = (dp - (dp * (y_pred / s)).sum(axis=-1, keepdims=True)) / s
        return per, g.astype(np.float32)


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    name = "sparse_categorical_crossentropy"

    def check(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        t = y_true
        if t.shape == y_pred.shape[:-1] + (1,):
            t = t[..., 0]
        if t.shape != y_pred.shape[:-1]:
            raise ValueError(
                f"{self.name}: expected one class index per prediction row, targets of shape {y_pred.shape[:-1]} "
                f"(or {y_pred.shape[:-1] + (1,)}); received {y_true.shape}. For one-hot targets use "
                f"categorical_crossentropy."
            )
        if t.size and (np.any(t < 0) or np.any(t >= y_pred.shape[-1]) or np.any(t != np.round(t))):
            raise ValueError(
                f"{self.name}: class indices must be integers in [0, {y_pred.shape[-1]}); received values in "
                f"[{t.min()}, {t.max()}]."
            )
        return np.eye(y_pred.shape[-1], dtype=np.float32)[t.astype(np.int64)]


_LOSS_CLASSES: tuple[type[Loss], ...] = (
    MeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    LogCosh,
    Huber,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
)

# Every string Keras 3's losses.get accepts for these: the class names, the function names and the
# short aliases (plus "huber_loss", the name Huber logs under).
_BY_NAME: dict[str, Callable[[], Loss]] = {
    **{cls.__name__: cls for cls in _LOSS_CLASSES},
    **{cls.name: cls for cls in _LOSS_CLASSES},
    "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError,
    "MAPE": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError,
    "MSLE": MeanSquaredLogarithmicError,
    "bce": BinaryCrossentropy,
    "BCE": BinaryCrossentropy,
    "huber": Huber,
}


def _loss_function(cls: type[Loss], fn_name: str) -> Callable[[Any, Any], np.ndarray]:
    """Keras's function form (``keras.losses.mean_squared_error(y_true, y_pred)``): the per-sample
    values. Passed to ``compile(loss=...)`` it stands for the class (with its gradient)."""

    def fn(y_true: Any, y_pred: Any) -> np.ndarray:
        loss = cls()
        p = np.asarray(y_pred, dtype=np.float32)
        return loss.per_sample(loss.check(np.asarray(y_true), p), p)[0]

    fn.__name__ = fn.__qualname__ = fn_name
    fn.__doc__ = f"Per-sample {fn_name}, as keras.losses.{fn_name}."
    _FUNCTIONS[fn] = cls
    return fn


_FUNCTIONS: dict[Callable[..., Any], type[Loss]] = {}
mean_squared_error = _loss_function(MeanSquaredError, "mean_squared_error")
mean_absolute_error = _loss_function(MeanAbsoluteError, "mean_absolute_error")
mean_absolute_percentage_error = _loss_function(MeanAbsolutePercentageError, "mean_absolute_percentage_error")
mean_squared_logarithmic_error = _loss_function(MeanSquaredLogarithmicError, "mean_squared_logarithmic_error")
log_cosh = _loss_function(LogCosh, "log_cosh")
huber = _loss_function(Huber, "huber")
binary_crossentropy = _loss_function(BinaryCrossentropy, "binary_crossentropy")
categorical_crossentropy = _loss_function(CategoricalCrossentropy, "categorical_crossentropy")
sparse_categorical_crossentropy = _loss_function(SparseCategoricalCrossentropy, "sparse_categorical_crossentropy")


def get(identifier: Any) -> Loss:
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            names = sorted(k for k in _BY_NAME if k.islower() or "_" in k)
            close = difflib.get_close_matches(identifier, list(_BY_NAME), n=2, cutoff=0.6)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(
                f"Unknown loss {identifier!r}.{hint} Expected one of {names} (or the class names, e.g. "
                f"'MeanSquaredError'), or a Loss instance."
            )
        return _BY_NAME[identifier]()
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier) and identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier]()
    if callable(identifier):
        raise TypeError(
            f"Could not use the loss function {getattr(identifier, '__name__', identifier)!r}: training needs its "
            f"gradient, which seqcore does not derive from Python code. Subclass seqcore.losses.Loss and implement "
            f"per_sample(y_true, y_pred) -> (per-sample values, their gradient by y_pred), or use a built-in loss."
        )
    raise TypeError(f"Could not interpret loss {identifier!r}: pass a name such as 'mse' or a seqcore.losses.Loss.")
