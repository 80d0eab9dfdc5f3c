"""Streaming metrics with Keras 3's semantics, names and results.

Two kinds, one protocol (``update_state(y_true, y_pred, sample_weight)``, ``result()``,
``reset_state()``, which ``Sequential.compile/fit/evaluate`` call):

- mean metrics (mse, mae, accuracy, ...): per-sample values averaged over every sample of an epoch;
- confusion-matrix metrics (``Precision``, ``Recall``, ``AUC``, ``TruePositives`` ...,
  ``F1Score``/``FBetaScore``): weighted counts accumulated over the epoch, and the ratio taken once
  at the end. That is why they are stateful: the mean of per-batch precisions is not the precision
  of the epoch.

Keras conventions kept on purpose, because a Keras user's numbers and monitors depend on them:

- ``y_true`` counts as positive when it is non-zero (Keras casts it to bool), so labels such as 2 or
  0.3 are positives, not errors. A prediction is positive when it is strictly above the threshold.
- Ratios with a zero denominator are 0 (precision with no predicted positive, recall with no
  positive label, AUC with no data), never NaN.
- ``Precision(thresholds=[...])`` (and TP/FP/TN/FN) return one value per threshold (an array).
- ``F1Score``/``FBetaScore`` default to ``average=None`` (one score per class) and, with no
  threshold, call the row's largest prediction positive, which for a single sigmoid column means
  *every* non-zero prediction. Pass ``threshold=0.5`` (or ``average="micro"``) for binary outputs.
- Names: ``Precision()`` logs as ``precision`` (``val_precision`` on validation data); a string in
  ``compile(metrics=[...])`` logs under that string, as Keras does (``"AUC"`` logs as ``AUC``).
  Unlike Keras, a second ``Precision()`` in the same process is not renamed ``precision_1``, so a
  monitor such as ``EarlyStopping("val_auc")`` keeps working when a notebook cell is re-run. Two
  metrics with the same name in one ``compile`` log as ``auc`` and ``auc_1``, as in Keras.

One deliberate difference: seqcore passes a ``Masking`` mask to every metric as a weight, so masked
steps never count. Keras 3 applies the mask to mean metrics only and counts padded steps in
precision, recall and AUC.

Counts are accumulated in float64 (Keras: float32), so with real-valued weights results can differ
from Keras in the 7th digit.
"""

from __future__ import annotations

import difflib
import numbers
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

_EPSILON = 1e-7  # Keras's backend.epsilon(): AUC's outer thresholds and the F-score's smoothing
_NEG_INF = -1e10  # Keras's stand-in for -inf: predictions outside top_k, and top_k's default threshold


class Metric:
    """Base class. Subclass it either by implementing ``values(y_true, y_pred)`` (per-sample
    values, averaged with equal weight over everything seen) or by overriding ``update_state``,
    ``result`` and ``reset_state`` (any running state)."""

    name = "metric"
    #: "up" when larger is better, "down" when smaller is (Keras's ``_direction``); None if unknown.
    #: Lets ``EarlyStopping(mode="auto")`` know that ``val_precision`` should grow.
    direction: str | None = None

    def __init__(self, name: str | None = None):
        if name is not None:
            if not isinstance(name, str) or not name:
                raise TypeError(f"{type(self).__name__}: name must be a non-empty str; received {name!r}.")
            self.name = name
        self.reset_state()

    @property
    def _direction(self) -> str | None:  # Keras's spelling, read by Keras-style callbacks
        return self.direction

    def reset_state(self) -> None:
        self._total, self._count = 0.0, 0.0

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """Per-sample values (averaged with equal weight)."""
        raise NotImplementedError(
            f"{type(self).__name__}: implement values(y_true, y_pred), or override update_state/result/reset_state."
        )

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

    def result(self) -> Any:
        return self._total / self._count if self._count else 0.0

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """Keras's ``metric(y_true, y_pred)``: updates the state, then returns the result."""
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


class MeanMetricWrapper(Metric):
    """A function ``fn(y_true, y_pred) -> per-sample values`` as a mean metric (what Keras does with
    a plain function in ``compile(metrics=[fn])``); it is named after the function."""

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], Any], name: str | None = None):
        if not callable(fn):
            raise TypeError(f"MeanMetricWrapper: fn must be callable; received {fn!r}.")
        self._fn = fn
        super().__init__(name or getattr(fn, "__name__", None) or "mean_metric_wrapper")

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.asarray(self._fn(y_true, y_pred))


class MeanSquaredError(Metric):
    name = "mean_squared_error"
    direction = "down"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean(np.square(y_pred - y_true), axis=-1)


class MeanAbsoluteError(Metric):
    name = "mean_absolute_error"
    direction = "down"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean(np.abs(y_pred - y_true), axis=-1)


class MeanAbsolutePercentageError(Metric):
    name = "mean_absolute_percentage_error"
    direction = "down"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        scale = np.maximum(np.abs(y_true), 1e-7)  # Keras's backend epsilon
        return 100.0 * np.mean(np.abs(y_true - y_pred) / scale, axis=-1)


class MeanSquaredLogarithmicError(Metric):
    name = "mean_squared_logarithmic_error"
    direction = "down"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        d = np.log1p(np.maximum(y_pred, 1e-7)) - np.log1p(np.maximum(y_true, 1e-7))
        return np.mean(np.square(d), axis=-1)


class LogCoshError(Metric):
    name = "logcosh"
    direction = "down"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        x = np.asarray(y_pred, np.float64) - y_true
        return np.mean(x + np.logaddexp(0.0, -2.0 * x) - np.log(2.0), axis=-1)


class RootMeanSquaredError(Metric):
    name = "root_mean_squared_error"
    direction = "down"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.square(y_pred - y_true)

    def result(self) -> float:
        return float(np.sqrt(super().result()))


class BinaryAccuracy(Metric):
    name = "binary_accuracy"
    direction = "up"

    def __init__(self, name: str | None = None, threshold: float = 0.5):
        self.threshold = threshold
        super().__init__(name)

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean((y_pred > self.threshold) == (y_true > 0.5), axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "threshold": self.threshold}


class CategoricalAccuracy(Metric):
    name = "categorical_accuracy"
    direction = "up"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return (np.argmax(y_pred, axis=-1) == np.argmax(y_true, axis=-1)).astype(np.float64)


class SparseCategoricalAccuracy(Metric):
    name = "sparse_categorical_accuracy"
    direction = "up"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        t = y_true[..., 0] if y_true.shape == y_pred.shape[:-1] + (1,) else y_true
        return (np.argmax(y_pred, axis=-1) == t).astype(np.float64)


# ----- argument and input checking --------------------------------------------------------------
def _real_array(a: Any, who: str, arg: str) -> np.ndarray:
    """``a`` as a float array, or a TypeError naming the metric and the argument."""
    try:
        arr = np.asarray(a)
    except ValueError:  # ragged nested lists
        raise ValueError(f"{who}: {arg} could not be read as a rectangular array; pad it first.") from None
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            sample = arr.ravel()[:3].tolist()
            msg = f"{who}: {arg} must hold real numbers; received an object array starting {sample!r}."
            raise TypeError(msg) from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{who}: {arg} must hold real numbers (bool, int or float); received dtype {arr.dtype}.")
    return arr


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _parse_thresholds(thresholds: Any, default: float, who: str) -> list[float]:
    """Keras's parse_init_thresholds: a float or a list of floats in [0, 1]; None -> [default]."""
    if thresholds is None:
        return [default]
    items = list(thresholds) if isinstance(thresholds, (list, tuple, np.ndarray)) else [thresholds]
    if not items:
        raise ValueError(f"{who}: thresholds must hold at least one value in [0, 1]; received {thresholds!r}.")
    bad_type = [t for t in items if not _is_real(t)]
    if bad_type:
        raise TypeError(
            f"{who}: thresholds must be a float or a list of floats in [0, 1]; received {thresholds!r} "
            f"(not numbers: {bad_type!r})."
        )
    out = [float(t) for t in items]
    bad = [t for t in out if not 0.0 <= t <= 1.0]  # NaN fails this too
    if bad:
        raise ValueError(
            f"{who}: threshold values must be in [0, 1]; received {bad}. For a model that outputs logits (a "
            f"loss with from_logits=True) threshold at 0.5 after a sigmoid, or at thresholds=0.0 on the logits."
        )
    return out


def _evenly_spaced(thresholds: Sequence[float]) -> bool:
    """Keras's is_evenly_distributed_thresholds: [0, 1/(n-1), ..., 1] (n >= 3) lets the counts be
    made by bucketing each prediction once, O(n) instead of O(n * thresholds)."""
    n = len(thresholds)
    if n < 3:
        return False
    return bool(np.allclose(thresholds, np.arange(n, dtype=np.float32) / (n - 1), atol=_EPSILON))


def _same_rank(a: np.ndarray, b: np.ndarray, expand_rank_1: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Keras's squeeze_or_expand_to_same_rank: when the ranks differ by one and the longer has a
    trailing axis of 1, squeeze it (or give a 1-D partner that axis)."""
    if a.ndim == b.ndim + 1 and a.shape[-1] == 1:
        if b.ndim == 1 and expand_rank_1:
            b = b[:, None]
        else:
            a = a[..., 0]
    elif b.ndim == a.ndim + 1 and b.shape[-1] == 1:
        if a.ndim == 1 and expand_rank_1:
            a = a[:, None]
        else:
            b = b[..., 0]
    return a, b


def _targets_and_predictions(y_true: Any, y_pred: Any, who: str) -> tuple[np.ndarray, np.ndarray]:
    t = _real_array(y_true, who, "y_true")
    p = _real_array(y_pred, who, "y_pred")
    p, t = _same_rank(p, t)
    if t.shape != p.shape:
        hint = ""
        if t.ndim == p.ndim - 1 or (t.ndim == p.ndim and t.shape[-1] == 1 and p.shape[-1] > 1):
            hint = (
                " This metric compares y_true and y_pred element by element (one column per class); for "
                "integer class labels one-hot encode y_true first (and pick a class with class_id)."
            )
        raise ValueError(
            f"{who}: y_true of shape {t.shape} does not match y_pred of shape {p.shape}; seqcore does not "
            f"broadcast them.{hint}"
        )
    return t, p


def _weights_like(sample_weight: Any, shape: tuple[int, ...], who: str) -> np.ndarray | None:
    """``sample_weight`` broadcast to the predictions' shape, aligned on the leading axes: one weight
    per sample ``(batch,)``, per step ``(batch, steps)`` (what a Masking mask becomes), or per element.
    Keras expands a trailing axis and broadcasts; for every shape Keras accepts this gives the same
    weights, and per-sample weights on sequence outputs work too."""
    if sample_weight is None:
        return None
    sw = _real_array(sample_weight, who, "sample_weight").astype(np.float64)
    while sw.ndim > len(shape) and sw.shape[-1] == 1:
        sw = sw[..., 0]
    if sw.ndim > len(shape):
        raise ValueError(f"{who}: sample_weight of shape {np.shape(sample_weight)} has more axes than y_pred {shape}.")
    sw = sw.reshape(sw.shape + (1,) * (len(shape) - sw.ndim))
    try:
        return np.broadcast_to(sw, shape)
    except ValueError:
        raise ValueError(
            f"{who}: sample_weight of shape {np.shape(sample_weight)} does not fit y_pred of shape {shape}; pass "
            f"one weight per sample (shape {shape[:1]}) or one per element (shape {shape})."
        ) from None


def _div_no_nan(a: Any, b: Any) -> np.ndarray:
    """a / b, and 0 where b == 0 (Keras's divide_no_nan: empty ratios are 0, not NaN)."""
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    return np.divide(a, b, out=np.zeros(a.shape), where=b != 0)


def _top_k_filter(p: np.ndarray, k: int, who: str) -> np.ndarray:
    """Keeps each row's k largest predictions and sets the rest to -1e10, as Keras does before
    thresholding. Ties keep the lower index first (tf.math.top_k's order), hence the stable sort."""
    if p.ndim == 0 or p.shape[-1] < k:
        raise ValueError(
            f"{who}: top_k={k} needs at least {k} classes on the last axis of y_pred; received shape {p.shape}."
        )
    order = np.argsort(-p, axis=-1, kind="stable")[..., :k]
    keep = np.zeros(p.shape, bool)
    np.put_along_axis(keep, order, True, axis=-1)
    return np.where(keep, p, np.float32(_NEG_INF)).astype(np.float32)


def _confusion_counts(
    y_true: Any,
    y_pred: Any,
    sample_weight: Any,
    thresholds: Sequence[float],
    who: str,
    *,
    evenly: bool,
    top_k: int | None = None,
    class_id: int | None = None,
    multi_label: bool = False,
    label_weights: np.ndarray | None = None,
    from_logits: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weighted (tp, fp, tn, fn) at each threshold — shape (thresholds,), or (thresholds, labels)
    with ``multi_label`` — with Keras's update_confusion_matrix_variables semantics."""
    t, p = _targets_and_predictions(y_true, y_pred, who)
    sw = _weights_like(sample_weight, p.shape, who)
    # Keras compares in float32 (the metric's variables' dtype): a prediction of 0.3 against the
    # threshold 0.3 compares float32 with float32, and is not above it.
    p = p.astype(np.float32)
    if from_logits:
        p = (1.0 / (1.0 + np.exp(-p.astype(np.float64)))).astype(np.float32)
    if top_k is not None:
        p = _top_k_filter(p, top_k, who)
    if class_id is not None:
        if p.ndim < 2:
            raise ValueError(
                f"{who}: class_id={class_id} needs y_pred of shape (samples, classes); received shape {p.shape}."
            )
        if class_id >= p.shape[-1]:
            raise ValueError(
                f"{who}: class_id={class_id} is out of range for y_pred with {p.shape[-1]} classes (shape "
                f"{p.shape}); it must be in [0, {p.shape[-1]})."
            )
        t, p = t[..., class_id], p[..., class_id]
        sw = None if sw is None else sw[..., class_id]
    if multi_label:
        if p.ndim != 2:
            raise ValueError(
                f"{who}: multi_label=True needs y_pred of shape (samples, labels); received shape {p.shape}."
            )
        pos_lab, p2, w = t != 0, p, sw  # one column per label
    else:
        pos_lab, p2 = (t != 0).reshape(-1, 1), p.reshape(-1, 1)
        w = None if sw is None else sw.reshape(-1, 1)
    weights = np.ones(p2.shape) if w is None else np.asarray(w, np.float64)
    if label_weights is not None and not multi_label:
        if p.ndim == 0 or p.shape[-1] != label_weights.shape[0]:
            raise ValueError(
                f"{who}: label_weights has {label_weights.shape[0]} entries but y_pred has shape {p.shape}; give one "
                f"weight per label (last axis)."
            )
        weights = weights * np.broadcast_to(label_weights, p.shape).reshape(-1, 1)

    n_thr = len(thresholds)
    # For every element, how many thresholds it is above: above[i] = c means positive at the c
    # lowest thresholds. Counting then is one histogram per label and a reversed cumulative sum.
    if evenly:
        # Keras's bucketing: thresholds i/(n-1); bucket = ceil(p*(n-1)) - 1 on p clipped to [0, 1],
        # computed in float32 exactly as Keras does so that predictions sitting on a threshold land in
        # the same bucket. With AUC's -eps/1+eps end thresholds, p = 0 still passes the first one.
        with np.errstate(invalid="ignore"):
            b = np.ceil(np.clip(p2, np.float32(0), np.float32(1)) * np.float32(n_thr - 1)) - 1
        if thresholds[0] < 0.0 or thresholds[-1] > 1.0:
            b = np.maximum(b, 0)
        above = np.where(np.isnan(b), 0, b + 1).astype(np.int64)  # bucket -1 (dropped by Keras) -> 0
        order = np.arange(n_thr)
    else:
        thr32 = np.asarray(thresholds, np.float32)
        order = np.argsort(thr32, kind="stable")
        above = np.searchsorted(thr32[order], p2, side="left")  # number of thresholds strictly below p
        above[np.isnan(p2)] = 0  # NaN is never above a threshold
    n_lab = p2.shape[1]
    idx = (above + np.arange(n_lab)[None, :] * (n_thr + 1)).ravel()

    def above_counts(w_elem: np.ndarray) -> np.ndarray:
        hist = np.bincount(idx, weights=w_elem.ravel(), minlength=n_lab * (n_thr + 1)).reshape(n_lab, n_thr + 1)
        # positive at sorted threshold j <=> above > j: the sum of the histogram beyond j
        return np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:].T  # (thresholds, labels), sorted order

    w_pos = np.where(pos_lab, weights, 0.0)
    w_neg = np.where(pos_lab, 0.0, weights)
    tp_sorted, fp_sorted = above_counts(w_pos), above_counts(w_neg)
    tp, fp = np.empty_like(tp_sorted), np.empty_like(fp_sorted)
    tp[order], fp[order] = tp_sorted, fp_sorted  # back to the order the thresholds were given in
    tn = w_neg.sum(axis=0) - fp
    fn = w_pos.sum(axis=0) - tp
    if not multi_label:
        tp, fp, tn, fn = tp[:, 0], fp[:, 0], tn[:, 0], fn[:, 0]
    return tp, fp, tn, fn


def _optional_index(value: Any, who: str, arg: str, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{who}: {arg} must be an int >= {minimum} or None; received {value!r}.")
    if value < minimum:
        raise ValueError(f"{who}: {arg} must be >= {minimum}; received {arg}={value}.")
    return int(value)


def _scalar_or_vector(v: np.ndarray) -> Any:
    """One threshold: a float (what logs and monitors expect); several: one value per threshold."""
    return float(v[0]) if v.shape == (1,) else v.copy()


# ----- confusion-matrix metrics -----------------------------------------------------------------
class _ConfusionMatrixConditionCount(Metric):
    _which = "tp"
    direction = None  # Keras leaves counts without a direction: pass mode= to EarlyStopping

    def __init__(self, thresholds: Any = None, name: str | None = None):
        who = type(self).__name__
        self.init_thresholds = thresholds
        self.thresholds = _parse_thresholds(thresholds, 0.5, who)
        self._evenly = _evenly_spaced(self.thresholds)
        super().__init__(name)

    def reset_state(self) -> None:
        self.accumulator = np.zeros(len(self.thresholds))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        tp, fp, tn, fn = _confusion_counts(
            y_true, y_pred, sample_weight, self.thresholds, f"{type(self).__name__} {self.name!r}", evenly=self._evenly
        )
        self.accumulator += {"tp": tp, "fp": fp, "tn": tn, "fn": fn}[self._which]

    def result(self) -> Any:
        return _scalar_or_vector(self.accumulator)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "thresholds": self.init_thresholds}


class TruePositives(_ConfusionMatrixConditionCount):
    """Weighted count of positives predicted above the threshold (default 0.5)."""

    name = "true_positives"
    _which = "tp"


class FalsePositives(_ConfusionMatrixConditionCount):
    """Weighted count of negatives predicted above the threshold (default 0.5)."""

    name = "false_positives"
    _which = "fp"


class TrueNegatives(_ConfusionMatrixConditionCount):
    """Weighted count of negatives predicted at or below the threshold (default 0.5)."""

    name = "true_negatives"
    _which = "tn"


class FalseNegatives(_ConfusionMatrixConditionCount):
    """Weighted count of positives predicted at or below the threshold (default 0.5)."""

    name = "false_negatives"
    _which = "fn"


class _PrecisionRecall(Metric):
    direction = "up"

    def __init__(
        self, thresholds: Any = None, top_k: int | None = None, class_id: int | None = None, name: str | None = None
    ):
        who = type(self).__name__
        self.init_thresholds = thresholds
        self.top_k = _optional_index(top_k, who, "top_k", 1)
        self.class_id = _optional_index(class_id, who, "class_id", 0)
        # With top_k and no threshold, "predicted positive" means "in the top k": Keras thresholds
        # the filtered predictions at -1e10, which only the kept ones exceed.
        self.thresholds = _parse_thresholds(thresholds, 0.5 if top_k is None else _NEG_INF, who)
        self._evenly = _evenly_spaced(self.thresholds)
        super().__init__(name)

    def reset_state(self) -> None:
        n = len(self.thresholds)
        self.true_positives, self.false_positives, self.false_negatives = np.zeros(n), np.zeros(n), np.zeros(n)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        tp, fp, _, fn = _confusion_counts(
            y_true,
            y_pred,
            sample_weight,
            self.thresholds,
            f"{type(self).__name__} {self.name!r}",
            evenly=self._evenly,
            top_k=self.top_k,
            class_id=self.class_id,
        )
        self.true_positives += tp
        self.false_positives += fp
        self.false_negatives += fn

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "thresholds": self.init_thresholds, "top_k": self.top_k, "class_id": self.class_id}


class Precision(_PrecisionRecall):
    """TP / (TP + FP) over everything seen since ``reset_state`` (0 when nothing was predicted
    positive). ``thresholds`` (default 0.5; a list gives one value per threshold), ``top_k`` (only the
    k largest predictions of a row can be positive), ``class_id`` (one column of a multi-class
    output)."""

    name = "precision"

    def result(self) -> Any:
        return _scalar_or_vector(_div_no_nan(self.true_positives, self.true_positives + self.false_positives))


class Recall(_PrecisionRecall):
    """TP / (TP + FN) over everything seen since ``reset_state`` (0 when there was no positive
    label). Arguments as :class:`Precision`."""

    name = "recall"

    def result(self) -> Any:
        return _scalar_or_vector(_div_no_nan(self.true_positives, self.true_positives + self.false_negatives))


_CURVES = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
_SUMMATIONS = ("interpolation", "minoring", "majoring")


class AUC(Metric):
    """Area under the ROC or PR curve, approximated as Keras does on ``num_thresholds`` thresholds
    (``i/(num_thresholds-1)``, the outer two moved to -1e-7 and 1+1e-7 so that predictions of
    exactly 0 and 1 are counted). ``summation_method``: ``"interpolation"`` (trapezoids; for PR the
    Davis & Goadrich interpolation, which is what makes PR-AUC not overestimate), ``"minoring"`` /
    ``"majoring"`` (lower / upper Riemann sums). ``multi_label=True`` computes one AUC per column
    of a ``(samples, labels)`` output and averages them (weighted by ``label_weights``); otherwise
    every element is one prediction. ``from_logits=True`` applies a sigmoid first."""

    name = "auc"
    direction = "up"

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: str | None = None,
        thresholds: Any = None,
        multi_label: bool = False,
        num_labels: int | None = None,
        label_weights: Any = None,
        from_logits: bool = False,
    ):
        who = "AUC"
        if not isinstance(curve, str) or curve.lower() not in _CURVES:
            raise ValueError(f"{who}: curve must be 'ROC', 'PR' or 'PRGAIN'; received curve={curve!r}.")
        self.curve = _CURVES[curve.lower()]
        if not isinstance(summation_method, str) or summation_method.lower() not in _SUMMATIONS:
            raise ValueError(
                f"{who}: summation_method must be one of {list(_SUMMATIONS)}; received "
                f"summation_method={summation_method!r}."
            )
        self.summation_method = summation_method.lower()
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(_parse_thresholds(thresholds, 0.5, who))
            self.num_thresholds = len(inner) + 2
            self._evenly = _evenly_spaced([0.0, *inner, 1.0])
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, numbers.Integral):
                raise TypeError(f"{who}: num_thresholds must be an int > 1; received {num_thresholds!r}.")
            if num_thresholds <= 1:
                raise ValueError(f"{who}: num_thresholds must be an int > 1; received num_thresholds={num_thresholds}.")
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) / (self.num_thresholds - 1) for i in range(self.num_thresholds - 2)]
            self._evenly = True
        self._thresholds = [0.0 - _EPSILON, *inner, 1.0 + _EPSILON]
        self.multi_label = bool(multi_label)
        if num_labels is not None and not self.multi_label:
            raise ValueError(f"{who}: num_labels is only used with multi_label=True; received num_labels={num_labels}.")
        self.num_labels = _optional_index(num_labels, who, "num_labels", 1)
        self.label_weights: np.ndarray | None = None
        if label_weights is not None:
            lw = _real_array(label_weights, who, "label_weights").astype(np.float64)
            if lw.ndim != 1 or (lw < 0).any():
                raise ValueError(f"{who}: label_weights must be a 1-D list of non-negative weights; received {lw}.")
            if self.num_labels is not None and lw.shape[0] != self.num_labels:
                raise ValueError(
                    f"{who}: label_weights has {lw.shape[0]} entries but num_labels={self.num_labels}; they must agree."
                )
            self.label_weights = lw
        self.from_logits = bool(from_logits)
        super().__init__(name)

    @property
    def thresholds(self) -> list[float]:
        """All thresholds, including the two outer ones (as Keras's ``AUC.thresholds``)."""
        return list(self._thresholds)

    def reset_state(self) -> None:
        # Multi-label state needs the number of labels: known from num_labels, or from the first batch.
        self._built_labels = self.num_labels
        self._alloc()

    def _alloc(self) -> None:
        shape: tuple[int, ...] = (self.num_thresholds,)
        if self.multi_label:
            shape = (self.num_thresholds, self._built_labels or 0)
        self.true_positives = np.zeros(shape)
        self.false_positives = np.zeros(shape)
        self.true_negatives = np.zeros(shape)
        self.false_negatives = np.zeros(shape)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        who = f"AUC {self.name!r}"
        counts = _confusion_counts(
            y_true,
            y_pred,
            sample_weight,
            self._thresholds,
            who,
            evenly=self._evenly,
            multi_label=self.multi_label,
            label_weights=None if self.multi_label else self.label_weights,
            from_logits=self.from_logits,
        )
        if self.multi_label:
            labels = counts[0].shape[1]
            if self._built_labels is None:
                self._built_labels = labels
                self._alloc()
            elif labels != self._built_labels:
                raise ValueError(
                    f"{who}: multi_label AUC was built for {self._built_labels} labels; received y_pred with {labels}."
                )
            if self.label_weights is not None and self.label_weights.shape[0] != labels:
                raise ValueError(
                    f"{who}: label_weights has {self.label_weights.shape[0]} entries; y_pred has {labels} labels."
                )
        self.true_positives += counts[0]
        self.false_positives += counts[1]
        self.true_negatives += counts[2]
        self.false_negatives += counts[3]

    def _average_labels(self, per_threshold_terms: np.ndarray) -> float:
        if not self.multi_label:
            return float(per_threshold_terms.sum())
        by_label = per_threshold_terms.sum(axis=0)
        if by_label.size == 0:
            return 0.0
        if self.label_weights is None:
            return float(by_label.mean())
        return float(_div_no_nan((by_label * self.label_weights).sum(), self.label_weights.sum()))

    def _interpolated_pr_terms(self) -> np.ndarray:
        """Davis & Goadrich (2006): between two thresholds, TP grows linearly with the number of
        predicted positives P, so precision = TP/P is not linear and trapezoids overestimate. With
        TP = slope * P + intercept, the exact area between P[i+1] and P[i] is
        slope * (dTP + intercept * ln(P[i] / P[i+1])), divided by the positives for recall."""
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        p = tp + fp
        dtp = tp[:-1] - tp[1:]
        dp = p[:-1] - p[1:]
        slope = _div_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _div_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
        with np.errstate(divide="ignore"):  # ratio is 0 only where it is unused (slope 0 there)
            log_ratio = np.where(ratio > 0, np.log(np.where(ratio > 0, ratio, 1.0)), 0.0)
        return _div_no_nan(slope * (dtp + intercept * log_ratio), np.maximum(tp[1:] + fn[1:], 0))

    def result(self) -> float:
        if self.multi_label and self._built_labels is None:
            return 0.0
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._average_labels(self._interpolated_pr_terms())
        tp, fp, tn, fn = self.true_positives, self.false_positives, self.true_negatives, self.false_negatives
        recall = _div_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _div_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, _div_no_nan(tp, tp + fp)
        else:  # PRGAIN (Flach & Kull 2015), as Keras computes it
            scale = _div_no_nan(tp + fn, tn + fp)
            x = np.maximum(np.where(tp == 0, 0.0, 1.0 - scale * _div_no_nan(fn, tp)), 0.0)
            y = np.where(tp == 0, 1.0, 1.0 - scale * _div_no_nan(fp, tp))
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return self._average_labels((x[:-1] - x[1:]) * heights)

    def get_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "name": self.name,
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
            "from_logits": self.from_logits,
        }
        if self._init_from_thresholds:
            cfg["thresholds"] = self._thresholds[1:-1]
        return cfg


class FBetaScore(Metric):
    """F-beta score per class, ``(1 + beta²) P R / (beta² P + R)`` from counts accumulated over the
    epoch, on ``(samples, classes)`` outputs. ``average``: None (one score per class), ``"micro"``
    (counts pooled over classes), ``"macro"`` (mean over classes), ``"weighted"`` (mean weighted by
    each class's total of y_true). ``threshold``: a prediction above it is positive; None (default)
    makes each row's largest non-zero prediction positive (one label per sample). ``y_true`` is used
    as given (soft labels count fractionally), and Keras's 1e-7 smoothing is kept, so a class never
    seen scores 0."""

    name = "fbeta_score"
    direction = "up"

    def __init__(
        self, average: str | None = None, beta: float = 1.0, threshold: float | None = None, name: str | None = None
    ):
        who = type(self).__name__
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(
                f"{who}: average must be one of None, 'micro', 'macro', 'weighted'; received average={average!r}."
            )
        # Keras insists on Python floats (beta=2 is an error there); any real number is accepted here.
        if not _is_real(beta):
            raise TypeError(f"{who}: beta must be a float > 0; received beta={beta!r}.")
        if not beta > 0:
            raise ValueError(f"{who}: beta must be > 0; received beta={beta}.")
        if threshold is not None:
            if not _is_real(threshold):
                raise TypeError(
                    f"{who}: threshold must be a float in (0, 1] or None; received threshold={threshold!r}."
                )
            if not 0.0 < threshold <= 1.0:
                raise ValueError(f"{who}: threshold must be in (0, 1]; received threshold={threshold}.")
        self.average = average
        self.beta = float(beta)
        self.threshold = None if threshold is None else float(threshold)
        super().__init__(name)

    def reset_state(self) -> None:
        self._num_classes: int | None = None
        self.true_positives = self.false_positives = self.false_negatives = self.intermediate_weights = np.zeros(0)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        who = f"{type(self).__name__} {self.name!r}"
        t = _real_array(y_true, who, "y_true").astype(np.float64)
        p = _real_array(y_pred, who, "y_pred").astype(np.float32)
        if p.ndim != 2 or t.ndim != 2:
            hint = ""
            if p.ndim == 3:
                hint = " For per-step outputs reshape both to (samples * steps, classes)."
            elif p.ndim == 1 or t.ndim == 1:
                hint = " For one binary output use shape (samples, 1), e.g. y[:, None]."
            raise ValueError(
                f"{who}: expects 2-D inputs of shape (samples, classes); received y_true of shape {t.shape} and "
                f"y_pred of shape {p.shape}.{hint}"
            )
        if t.shape != p.shape:
            raise ValueError(
                f"{who}: y_true of shape {t.shape} does not match y_pred of shape {p.shape}; one-hot encode integer "
                f"labels (one column per class)."
            )
        n_cls = p.shape[1]
        if self._num_classes is None:
            self._num_classes = n_cls
            shape = (n_cls,) if self.average != "micro" else ()
            self.true_positives, self.false_positives = np.zeros(shape), np.zeros(shape)
            self.false_negatives, self.intermediate_weights = np.zeros(shape), np.zeros(shape)
        elif n_cls != self._num_classes:
            raise ValueError(
                f"{who}: built for {self._num_classes} classes (the first batch); received y_pred of shape {p.shape}."
            )
        if self.threshold is None:
            # the row maximum is the prediction; abs > 1e-9 keeps an all-zero row from predicting every class
            pred = (p >= p.max(axis=1, keepdims=True, initial=-np.inf)) & (np.abs(p) > 1e-9)
        else:
            pred = p > np.float32(self.threshold)
        yp = pred.astype(np.float64)
        w = np.ones((p.shape[0], 1))
        if sample_weight is not None:
            sw = _real_array(sample_weight, who, "sample_weight").astype(np.float64)
            if sw.ndim == 2 and sw.shape[1] == 1:
                sw = sw[:, 0]
            if sw.ndim == 0:
                sw = np.full(p.shape[0], float(sw))
            if sw.shape != (p.shape[0],):
                raise ValueError(
                    f"{who}: sample_weight must hold one weight per sample, shape ({p.shape[0]},); received shape "
                    f"{np.shape(sample_weight)}."
                )
            w = sw[:, None]
        axis = None if self.average == "micro" else 0
        self.true_positives = self.true_positives + (w * yp * t).sum(axis=axis)
        self.false_positives = self.false_positives + (w * yp * (1 - t)).sum(axis=axis)
        self.false_negatives = self.false_negatives + (w * (1 - yp) * t).sum(axis=axis)
        self.intermediate_weights = self.intermediate_weights + (w * t).sum(axis=axis)

    def result(self) -> Any:
        if self._num_classes is None:  # nothing seen: Keras's zero-initialized state gives 0
            return 0.0 if self.average is not None else np.zeros(0)
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        precision = tp / (tp + fp + _EPSILON)
        recall = tp / (tp + fn + _EPSILON)
        b2 = self.beta**2
        f = (1 + b2) * (precision * recall) / (b2 * precision + recall + _EPSILON)
        if self.average == "weighted":
            return float((f * self.intermediate_weights / (self.intermediate_weights.sum() + _EPSILON)).sum())
        if self.average is not None:  # micro: already a scalar; macro: mean over classes
            return float(np.mean(f))
        return np.asarray(f, np.float64).copy()

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "average": self.average, "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    """:class:`FBetaScore` with ``beta=1``: the harmonic mean of precision and recall."""

    name = "f1_score"

    def __init__(self, average: str | None = None, threshold: float | None = None, name: str | None = None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name)

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        del cfg["beta"]
        return cfg


# ----- lookup by name ---------------------------------------------------------------------------
_CLASSES: tuple[type[Metric], ...] = (
    MeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    LogCoshError,
    RootMeanSquaredError,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    Precision,
    Recall,
    AUC,
    TruePositives,
    FalsePositives,
    TrueNegatives,
    FalseNegatives,
    F1Score,
    FBetaScore,
)


def _keras_snake(name: str) -> str:
    """Keras's to_snake_case, which builds its string names: FBetaScore -> f_beta_score (not the
    metric's own name, fbeta_score: Keras accepts only the former in compile)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


# Every string Keras 3's metrics.get accepts for these classes: the class name, its snake case, and
# the short aliases; plus seqcore's "rmse".
_BY_NAME: dict[str, type[Metric]] = {
    **{cls.__name__: cls for cls in _CLASSES},
    **{_keras_snake(cls.__name__): cls for cls in _CLASSES},
    "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError,
    "MAPE": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError,
    "MSLE": MeanSquaredLogarithmicError,
    "rmse": RootMeanSquaredError,
}


def get(identifier: Any, loss_name: str = "") -> Metric:
    """A metric from what ``compile(metrics=[...])`` accepts: a name (as Keras 3: ``"precision"`` or
    ``"Precision"``, ``"recall"``, ``"auc"``/``"AUC"``, ``"f1_score"``, ``"true_positives"``, ``"mae"``,
    ...), a Metric instance or class, or a function ``fn(y_true, y_pred)`` of per-sample values.
    ``"accuracy"``/``"acc"`` picks the variant that fits the loss, as Keras does. A name reports
    under the name given (``"mae"`` logs as ``mae``), an instance under its own name."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if not isinstance(identifier, str):
        if callable(identifier):
            return MeanMetricWrapper(identifier)
        raise TypeError(
            f"Could not interpret metric {identifier!r} (a {type(identifier).__name__}): pass a name such as 'mae' "
            f"or 'precision', a seqcore.metrics.Metric, or a function fn(y_true, y_pred)."
        )
    if identifier.lower() in ("accuracy", "acc"):
        if "sparse" in loss_name:
            cls: type[Metric] = SparseCategoricalAccuracy
        elif "categorical" in loss_name:
            cls = CategoricalAccuracy
        else:
            cls = BinaryAccuracy
        return cls(name=identifier)
    if identifier not in _BY_NAME:
        names = sorted({*(k for k in _BY_NAME if not k[0].isupper()), "accuracy"})
        close = difflib.get_close_matches(identifier, [*_BY_NAME, "accuracy"], n=3, cutoff=0.6)
        if not close:  # case-insensitive fallback: "Auc" -> "auc"
            close = [k for k in _BY_NAME if k.lower() == identifier.lower()][:3]
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"Unknown metric {identifier!r}.{hint} Expected one of {names} (or the class names, e.g. 'AUC'), a "
            f"Metric instance, or a function fn(y_true, y_pred)."
        )
    return _BY_NAME[identifier](name=identifier)


__all__ = [
    "AUC",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "F1Score",
    "FBetaScore",
    "FalseNegatives",
    "FalsePositives",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "LogCoshError",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "Metric",
    "Precision",
    "Recall",
    "RootMeanSquaredError",
    "SparseCategoricalAccuracy",
    "TrueNegatives",
    "TruePositives",
    "get",
]
