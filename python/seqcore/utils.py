"""Utilities: the global random generator (seeding) and small helpers shared by layers."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

_rng = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Makes weight initialization, shuffling and dropout repeatable (for the same thread count)."""
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"set_random_seed: seed must be an int; received {seed!r}.")
    _rng = np.random.default_rng(int(seed))


def rng() -> np.random.Generator:
    """The generator seqcore draws from (reseeded by :func:`set_random_seed`)."""
    return _rng


class Sequence:
    """Keras's ``Sequence`` / ``PyDataset`` protocol for ``fit``: ``__len__`` batches,
    ``__getitem__(i) -> (x, y)`` or ``(x, y, sample_weight)``, optional ``on_epoch_end``. Data
    never has to sit in memory at once."""

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def on_epoch_end(self) -> None:
        pass


PyDataset = Sequence


def pad_sequences(
    sequences: Any,
    maxlen: int | None = None,
    dtype: Any = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: Any = 0.0,
) -> np.ndarray:
    """Keras's ``pad_sequences``: one array ``(len(sequences), maxlen, *sample_shape)`` of ``dtype``.

    Each sequence (a list of ints, or an array whose first axis is time, e.g. ``(steps, features)``)
    is cut to its last (``truncating="pre"``) or first (``"post"``) ``maxlen`` steps and filled up
    with ``value`` before (``padding="pre"``) or after (``"post"``) it. ``maxlen`` defaults to the
    longest sequence; the sample shape is that of the first non-empty sequence, and every other
    must match it. Defaults as Keras: ``dtype="int32"`` (token ids; pass ``dtype="float32"`` for
    feature sequences), pre-padding and pre-truncation.

    seqcore's recurrent layers skip padding only at the end (valid steps first): to mask padded
    sequences (``Masking``, ``Embedding(mask_zero=True)``) pad with ``padding="post"``."""
    who = "pad_sequences"
    if padding not in ("pre", "post"):
        raise ValueError(f'{who}: Padding type "{padding}" not understood; use "pre" or "post".')
    if truncating not in ("pre", "post"):
        raise ValueError(f'{who}: Truncating type "{truncating}" not understood; use "pre" or "post".')
    if maxlen is not None:
        if isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)):
            raise TypeError(f"{who}: maxlen must be an int or None; received {maxlen!r}.")
        if maxlen < 0:
            raise ValueError(f"{who}: maxlen must be >= 0. Received: maxlen={maxlen}")
        maxlen = int(maxlen)
    if not hasattr(sequences, "__len__"):
        raise ValueError(
            f"{who}: `sequences` must be iterable (a list of sequences, with a length); received "
            f"{type(sequences).__name__}. Pass list(...) of a generator."
        )
    lengths: list[int] = []
    sample_shape: tuple[int, ...] | None = None
    for i, s in enumerate(sequences):
        try:
            lengths.append(len(s))
        except TypeError:
            raise ValueError(
                f"{who}: `sequences` must be a list of iterables. Found non-iterable: {s!s:.100} (at position {i})."
            ) from None
        if sample_shape is None and len(s):
            sample_shape = _steps(s, i, who).shape[1:]
    if maxlen is None:
        if not lengths:
            raise ValueError(f"{who}: received no sequences, so there is no longest one; pass maxlen.")
        maxlen = max(lengths)
    sample_shape = sample_shape or ()
    is_text = np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_text:
        raise ValueError(
            f"{who}: `dtype` {dtype} is not compatible with `value`'s type: {type(value)}. You should set "
            f"`dtype=object` for variable length strings."
        )
    out = np.full((len(lengths), maxlen, *sample_shape), value, dtype=dtype)
    to_int = out.dtype.kind in "iu"
    lossy = False
    for i, s in enumerate(sequences):
        if not len(s) or not maxlen:
            continue
        kept = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        if to_int and not lossy:
            src = _steps(kept, i, who)
            lossy = src.dtype.kind in "fc" and not bool(np.all(np.isfinite(src) & (src == np.round(src))))
        steps = _steps(kept, i, who, dtype)
        if steps.shape[1:] != sample_shape:
            raise ValueError(
                f"{who}: Shape of sample {steps.shape[1:]} of sequence at position {i} is different from expected "
                f"shape {sample_shape} (that of the first non-empty sequence)."
            )
        if padding == "post":
            out[i, : len(steps)] = steps
        else:
            out[i, -len(steps) :] = steps
    if lossy:
        warnings.warn(
            f"{who}: the sequences hold non-integer values, which dtype={out.dtype.name!r} truncates (Keras's default "
            f"dtype is int32, for token ids). Pass dtype='float32' to keep them.",
            UserWarning,
            stacklevel=2,
        )
    return out


def _steps(seq: Any, i: int, who: str, dtype: Any = None) -> np.ndarray:
    """One sequence as an array (time first), or an error naming its position if it is ragged."""
    try:
        return np.asarray(seq, dtype=dtype)
    except ValueError as e:
        if "inhomogeneous" not in str(e) and "sequence" not in str(e):
            raise
        raise ValueError(
            f"{who}: the steps of the sequence at position {i} have different shapes; every step must have the "
            f"same shape (e.g. all scalars, or all vectors of the same length)."
        ) from None


def to_categorical(x: Any, num_classes: int | None = None) -> np.ndarray:
    """Keras's ``to_categorical``: integer class labels to one-hot rows (float64, as Keras returns
    for array input), the class axis last. A trailing axis of size 1 is replaced: ``(N, 1)`` and
    ``(N,)`` both give ``(N, num_classes)``; ``(N, T)`` gives ``(N, T, num_classes)``.
    ``num_classes`` defaults (``None`` or 0) to ``max(x) + 1``.

    Refused (Keras wraps a negative label around to the last classes, and fails with a bare
    IndexError on one too large): labels that are negative, not below ``num_classes``, or not
    whole numbers."""
    who = "to_categorical"
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer))):
        raise TypeError(f"{who}: num_classes must be an int or None; received {num_classes!r}.")
    if num_classes is not None and num_classes < 0:
        raise ValueError(f"{who}: num_classes must be >= 1 (or None to infer it). Received: num_classes={num_classes}")
    try:
        a = np.asarray(x)
    except ValueError:
        raise ValueError(f"{who}: x is ragged; pass an array of class labels of one shape.") from None
    if a.dtype.kind == "f":
        bad = ~(np.isfinite(a) & (a == np.round(a)))
        if bad.any():
            raise ValueError(
                f"{who}: x must hold integer class labels; received the non-integer value {a[bad].flat[0].item()!r}."
            )
    elif a.dtype.kind not in "biu":
        try:
            a = np.array(a, dtype=np.int64)  # as Keras: digit strings and the like convert
        except (TypeError, ValueError):
            raise ValueError(f"{who}: x must hold integer class labels; received dtype {a.dtype}.") from None
    labels = a.astype(np.int64)
    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = labels.reshape(-1)
    if not num_classes:
        if not flat.size:
            raise ValueError(f"{who}: x is empty, so the number of classes cannot be inferred; pass num_classes.")
        num_classes = int(flat.max()) + 1
    if flat.size:
        lo, hi = int(flat.min()), int(flat.max())
        if lo < 0:
            raise ValueError(f"{who}: class labels must be >= 0; received {lo}.")
        if hi >= num_classes:
            raise ValueError(
                f"{who}: label {hi} is out of range for num_classes={num_classes} (labels must be in "
                f"[0, {num_classes - 1}])."
            )
    out = np.zeros((flat.size, int(num_classes)))
    out[np.arange(flat.size), flat] = 1.0
    return out.reshape(*shape, int(num_classes))


def make_windows(series: Any, n_steps: int, horizon: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Supervised windows from a series ``(total_steps,)`` or ``(total_steps, features)``:
    ``x (samples, n_steps, features)`` and the next ``horizon`` values of the first feature,
    ``y (samples, horizon)``. A float64 array stays float64 (as Keras's
    ``timeseries_dataset_from_array`` keeps the data's dtype), so windows of large values (e.g.
    positions past 2**24) stay exact; anything else becomes float32."""
    dtype = np.float64 if getattr(series, "dtype", None) == np.float64 else np.float32
    s = np.asarray(series, dtype=dtype)
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2:
        raise ValueError(f"make_windows: series must be (steps,) or (steps, features); received shape {s.shape}.")
    if n_steps < 1 or horizon < 1:
        raise ValueError(
            f"make_windows: n_steps and horizon must be >= 1. Received: n_steps={n_steps}, horizon={horizon}"
        )
    count = len(s) - n_steps - horizon + 1
    if count < 1:
        raise ValueError(
            f"make_windows: a series of {len(s)} steps is too short for windows of {n_steps} steps plus a horizon "
            f"of {horizon}."
        )
    idx = np.arange(n_steps)[None, :] + np.arange(count)[:, None]
    x = s[idx]
    y = s[np.arange(horizon)[None, :] + np.arange(count)[:, None] + n_steps, 0]
    return x, y


def split_sequences(x: Any, n_seq: int, n_steps: int) -> np.ndarray:
    """CNN-LSTM input shaping: ``(samples, total_steps, features)`` -> ``(samples, n_seq, n_steps,
    features)`` (a view when possible). Refuses when ``n_seq * n_steps`` is not the number of steps,
    the reshape mistake that silently scrambles time order."""
    a = np.asarray(x)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3:
        raise ValueError(
            f"split_sequences: expected (samples, total_steps, features); received shape {a.shape}. "
            f"Build windows first with make_windows."
        )
    if n_seq < 1 or n_steps < 1 or n_seq * n_steps != a.shape[1]:
        raise ValueError(
            f"split_sequences: n_seq * n_steps must equal the number of time steps: {n_seq} * {n_steps} = "
            f"{n_seq * n_steps}, but x has {a.shape[1]} steps (shape {a.shape}). Choose factors of {a.shape[1]}."
        )
    return a.reshape(a.shape[0], n_seq, n_steps, a.shape[2])


def __getattr__(name: str) -> Any:
    # utils.timeseries_dataset_from_array lives in seqcore.timeseries (which imports Sequence from here)
    if name in ("timeseries_dataset_from_array", "TimeseriesDataset"):
        from . import timeseries

        return getattr(timeseries, name)
    raise AttributeError(f"module 'seqcore.utils' has no attribute {name!r}")
