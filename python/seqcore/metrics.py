"""Streaming metrics (averaged over all samples of an epoch, as Keras reports them)."""

from __future__ import annotations

from typing import Any

import numpy as np


class Metric:
    name = "metric"

    def __init__(self, name: str | None = None):
        if name:
            self.name = name
        self.reset_state()

    def reset_state(self) -> None:
        self._total, self._count = 0.0, 0.0

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """Per-sample values (averaged with equal weight)."""
        raise NotImplementedError

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        v = np.asarray(self.values(np.asarray(y_true), np.asarray(y_pred)), dtype=np.float64)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, np.float64)
            if sw.shape != v.shape:  # per-sample weights over per-step values
                sw = sw.reshape(-1, *([1] * (v.ndim - 1)))
            sw = np.broadcast_to(sw, v.shape)
            self._total += float((v * sw).sum())
            self._count += float(sw.sum())
        else:
            self._total += float(v.sum())
            self._count += v.size

    def result(self) -> float:
        return self._total / self._count if self._count else 0.0


class MeanSquaredError(Metric):
    name = "mean_squared_error"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean(np.square(y_pred - y_true), axis=-1)


class MeanAbsoluteError(Metric):
    name = "mean_absolute_error"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean(np.abs(y_pred - y_true), axis=-1)


class RootMeanSquaredError(Metric):
    name = "root_mean_squared_error"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.square(y_pred - y_true)

    def result(self) -> float:
        return float(np.sqrt(super().result()))


class BinaryAccuracy(Metric):
    name = "binary_accuracy"

    def __init__(self, name: str | None = None, threshold: float = 0.5):
        self.threshold = threshold
        super().__init__(name)

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean((y_pred > self.threshold) == (y_true > 0.5), axis=-1)


class CategoricalAccuracy(Metric):
    name = "categorical_accuracy"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return (np.argmax(y_pred, axis=-1) == np.argmax(y_true, axis=-1)).astype(np.float64)


class SparseCategoricalAccuracy(Metric):
    name = "sparse_categorical_accuracy"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        t = y_true[..., 0] if y_true.shape == y_pred.shape[:-1] + (1,) else y_true
        return (np.argmax(y_pred, axis=-1) == t).astype(np.float64)


_BY_NAME: dict[str, type[Metric]] = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "rmse": RootMeanSquaredError,
    "root_mean_squared_error": RootMeanSquaredError,
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
}


def get(identifier: Any, loss_name: str = "") -> Metric:
    """A metric by Keras name; ``"accuracy"``/``"acc"`` picks the variant that fits the loss, as
    Keras does. The reported name is the one given (``"mae"`` reports as ``mae``)."""
    if isinstance(identifier, Metric):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(f"Could not interpret metric {identifier!r}: pass a name such as 'mae' or a Metric.")
    if identifier in ("accuracy", "acc"):
        if "sparse" in loss_name:
            cls: type[Metric] = SparseCategoricalAccuracy
        elif "categorical" in loss_name:
            cls = CategoricalAccuracy
        else:
            cls = BinaryAccuracy
        return cls(name=identifier)
    if identifier not in _BY_NAME:
        raise ValueError(
            f"Unknown metric {identifier!r}; expected one of {sorted([*_BY_NAME, 'accuracy'])} or a Metric instance."
        )
    return _BY_NAME[identifier](name=identifier)
