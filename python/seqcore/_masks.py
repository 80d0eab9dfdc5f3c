"""Sequence masks as they travel from the layer that starts one (``Masking``, ``Embedding`` with
``mask_zero=True``, a ``mask=`` argument) to the layers and the loss that use it.

A mask is one of:

* ``None``: every step valid;
* per-sample lengths, ``(batch,)`` int64: the first ``lengths[b]`` steps are valid. The common case
  (post-padded batches), which every masked consumer handles without a per-step lookup;
* a boolean ``(batch, time)`` array, C-contiguous, of any other pattern: pre-padding (Keras's
  ``pad_sequences`` default), gaps in the middle, anything.

:func:`from_bool` picks the representation for a Keras boolean mask, so a post-padded one always
travels as lengths. This module owns the conversions and the questions consumers ask of a mask
(which steps, how many, merged how), so that no consumer needs to know which form it got.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def is_steps(mask: Any) -> bool:
    """Whether ``mask`` is the boolean ``(batch, time)`` form (else lengths or None)."""
    return isinstance(mask, np.ndarray) and mask.ndim == 2


def from_bool(mask: Any, who: str) -> np.ndarray:
    """A Keras boolean ``(batch, time)`` mask as it travels: lengths when it keeps a prefix of every
    row (post-padding), else the boolean array itself."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"{who}: mask must be (batch, timesteps); received shape {m.shape}.")
    if m.dtype != np.bool_:
        if m.dtype.kind not in "biuf" or not np.isin(m, (0, 1)).all():
            raise TypeError(f"{who}: a mask must be boolean (True = a valid step); received dtype {m.dtype}.")
        m = m.astype(bool)
    lengths = m.sum(axis=1)
    if np.array_equal(m, np.arange(m.shape[1])[None, :] < lengths[:, None]):
        return lengths.astype(np.int64)
    return np.ascontiguousarray(m)


def normalize(mask: Any, batch: int, steps: int, who: str) -> Any:
    """A mask given to a layer call (lengths, a boolean or 0/1 ``(batch, time)`` array, or None),
    checked against the call's batch and steps, in its travelling form."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.ndim == 2:
        if m.shape != (batch, steps):
            raise ValueError(
                f"{who}: the mask must have shape (batch, time) = ({batch}, {steps}) to match the input; "
                f"received {m.shape}."
            )
        return from_bool(m, who)
    from ._recurrent import _lengths

    return _lengths(m, batch, steps, who)


def to_bool(mask: Any, steps: int) -> np.ndarray:
    """The ``(batch, steps)`` boolean form of a lengths or boolean mask."""
    if is_steps(mask):
        return np.asarray(mask, dtype=bool)
    return np.arange(steps)[None, :] < np.asarray(mask)[:, None]


def counts(mask: Any) -> np.ndarray:
    """Valid steps per sample, ``(batch,)`` int64."""
    if is_steps(mask):
        return np.asarray(mask).sum(axis=1).astype(np.int64)
    return np.asarray(mask, dtype=np.int64)


def merge(masks: list[Any], steps: int | None = None) -> Any:
    """The mask of a step kept where every given mask keeps it (Keras's ``Concatenate``/``Add``);
    ``None`` entries keep every step. Lengths stay lengths (the shortest)."""
    present = [m for m in masks if m is not None]
    if not present:
        return None
    if not any(is_steps(m) for m in present):
        out = present[0]
        for m in present[1:]:
            out = np.minimum(out, m)
        return out
    t = steps if steps is not None else next(m.shape[1] for m in present if is_steps(m))
    acc = to_bool(present[0], t)
    for m in present[1:]:
        acc = acc & to_bool(m, t)
    return from_bool(acc, "mask")


def window(mask: Any, a: int, b: int) -> Any:
    """The mask of input times ``[a, b)``, in the same form (lengths stay lengths)."""
    if mask is None:
        return None
    if is_steps(mask):
        return np.ascontiguousarray(mask[:, a:b])
    return np.clip(np.asarray(mask) - a, 0, b - a).astype(np.int64)


def any_valid(mask: Any, a: int, b: int) -> np.ndarray:
    """Per sample, whether some input time in ``[a, b)`` is valid, ``(batch,)`` bool."""
    if is_steps(mask):
        return np.asarray(np.asarray(mask)[:, a:b].any(axis=1))
    return np.asarray(mask) > a if b > a else np.zeros(len(mask), dtype=bool)


def kernel_kwargs(mask: Any) -> dict[str, Any]:
    """The keyword arguments of the recurrent kernels (``lengths=`` or ``mask=``) for ``mask``."""
    return {"mask": mask} if is_steps(mask) else {"lengths": mask}
