"""Utilities: the global random generator (seeding) and small helpers shared by layers."""

from __future__ import annotations

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
    sequences: list[Any], maxlen: int | None = None, padding: str = "post", truncating: str = "post", value: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Pads a list of ``(steps, features)`` arrays to ``(samples, maxlen, features)`` and returns the
    per-sample lengths too. Unlike Keras's default, padding is ``"post"``: seqcore's recurrent
    kernels take valid steps first (pass the lengths, or a ``Masking`` layer, to skip the padding)."""
    if padding != "post":
        raise ValueError("pad_sequences: seqcore needs post-padding (valid steps first); use padding='post'.")
    if truncating not in ("pre", "post"):
        raise ValueError(f"pad_sequences: truncating must be 'pre' or 'post'. Received: {truncating!r}")
    arrs = [np.asarray(s, dtype=np.float32) for s in sequences]
    arrs = [a[:, None] if a.ndim == 1 else a for a in arrs]
    if arrs and len({a.shape[1:] for a in arrs}) > 1:
        shapes = sorted({a.shape[1:] for a in arrs})
        raise ValueError(f"pad_sequences: all sequences need the same per-step shape; received {shapes}.")
    n = maxlen if maxlen is not None else max((len(a) for a in arrs), default=0)
    feat = arrs[0].shape[1:] if arrs else (1,)
    out = np.full((len(arrs), n, *feat), value, dtype=np.float32)
    lengths = np.zeros(len(arrs), dtype=np.int64)
    for i, a in enumerate(arrs):
        a = a[:n] if truncating == "post" else a[-n:] if n else a[:0]
        out[i, : len(a)] = a
        lengths[i] = len(a)
    return out, lengths


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
