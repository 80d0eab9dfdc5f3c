"""Data adapters of the trainer: what ``fit``/``evaluate``/``predict`` accept as ``x``, ``y`` and
``sample_weight`` — arrays (one per model input or output, as a list or a dict by name), a
``Sequence``/``PyDataset`` (``__len__``/``__getitem__``) or a generator of batches — turned into
batches of flat lists of float32 arrays, with errors that name the method and the fix."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..utils import rng


def compatible(want: Sequence[int | None], got: Sequence[int | None]) -> bool:
    return len(want) == len(got) and all(a is None or b is None or a == b for a, b in zip(want, got, strict=True))


def ragged_detail(a: Any) -> str:
    """What makes ``a`` ragged, for the message: two different lengths (or shapes) of its items."""
    shapes: list[Any] = []
    try:
        for item in a:
            try:
                shapes.append(np.shape(item))
            except ValueError:  # the item is itself ragged
                shapes.append(None)
    except TypeError:
        return "its items have different shapes"
    lengths = list(dict.fromkeys(s[0] if s else None for s in shapes if s is not None))
    if len(lengths) >= 2 and None not in lengths[:2]:
        return f"sequences of different lengths, e.g. {lengths[0]} and {lengths[1]} steps"
    distinct = list(dict.fromkeys(s for s in shapes if s is not None))
    if len(distinct) >= 2:
        return f"items of different shapes, e.g. {distinct[0]} and {distinct[1]}"
    return "its items have different shapes"


def as_array(a: Any, name: str, who: str) -> np.ndarray:
    """``a`` as an array (no copy for arrays), or an error naming ``who`` and the fix for ragged
    lists and object arrays (NumPy's own messages name neither the method nor the cure)."""

    def ragged(items: Any) -> str:
        detail = ragged_detail(items)
        return (
            f"{who}: {name} is ragged ({detail}); pad them with seqcore.utils.pad_sequences(..., padding='post') "
            f"and use a Masking layer."
        )

    if isinstance(a, np.ndarray):
        arr = a
    else:
        try:
            arr = np.asarray(a)
        except ValueError:  # NumPy >= 1.24: "setting an array element with a sequence ... inhomogeneous"
            raise ValueError(ragged(a)) from None
    if arr.dtype == object:
        if arr.ndim == 1 and is_ragged(arr):
            raise ValueError(ragged(arr))
        raise TypeError(
            f"{who}: {name} has dtype object; convert it with {name}.astype('float32') (ragged sequences: pad "
            f"them with seqcore.utils.pad_sequences(..., padding='post'))."
        )
    return arr


def is_ragged(a: Any) -> bool:
    try:
        shapes = {np.shape(item) for item in a}
    except (TypeError, ValueError):
        return True
    return len(shapes) > 1


def is_arrays(x: Any) -> bool:
    """Whether ``x`` is in-memory data (an array, or a list/tuple/dict of them) rather than a
    Sequence or a generator."""
    return isinstance(x, (np.ndarray, list, tuple, Mapping)) or hasattr(x, "__array__")


def check_input_kind(x: Any, who: str) -> None:
    """Refuses what is neither arrays, a Sequence nor an iterable of batches, before anything
    indexes it (a dict would be taken for a Sequence and leak ``KeyError: 0``)."""
    if x is None:
        raise ValueError(f"{who}: x is required: arrays, a seqcore.utils.Sequence or a generator of (x, y) batches.")
    extra = ""
    if isinstance(x, Mapping):
        return
    if isinstance(x, (str, bytes)):
        extra = " (a file name? load the data into an array first)"
    elif isinstance(x, (np.ndarray, list, tuple)) or hasattr(x, "__getitem__") or isinstance(x, Iterable):
        return
    raise TypeError(f"{who}: x must be an array, a Sequence or a generator; received {type(x).__name__}{extra}.")


def sample_weight(sw: Any, n: int, who: str) -> np.ndarray | None:
    """``sample_weight`` as float32, with one entry per sample (or per step) of the ``n`` in x."""
    if sw is None:
        return None
    try:
        a = np.asarray(sw, np.float32)
    except (TypeError, ValueError):
        raise TypeError(
            f"{who}: sample_weight must be an array of numbers, one per sample; received {type(sw).__name__}."
        ) from None
    if a.ndim == 0:
        raise ValueError(
            f"{who}: sample_weight must hold one weight per sample (shape ({n},)) or per step (shape ({n}, steps)); "
            f"received the scalar {sw!r}."
        )
    if len(a) != n:
        raise ValueError(f"{who}: x has {n} samples but sample_weight has {len(a)}.")
    return a


def check_data(x: Any, y: Any, sw: Any, who: str, model: Any) -> tuple[Any, Any, np.ndarray | None]:
    """fit/evaluate input: in-memory data becomes flat lists of arrays (one per model input and
    output) whose sample counts are checked against each other; a Sequence or generator carries its
    own targets and weights, as in Keras."""
    check_input_kind(x, who)
    if not is_arrays(x):
        for arg, v in (("y", y), ("sample_weight", sw)):
            if v is not None:
                raise ValueError(
                    f"{who}: {arg} must not be given when x is a Sequence or generator ({type(x).__name__}); let it "
                    f"yield (x, y) or (x, y, sample_weight) batches instead."
                )
        return x, None, None
    xs = model._input_list(x, who)
    if y is None:
        raise ValueError(f"{who}: y is required when x is an array.")
    ys = model._target_list(y, who)
    n = len(xs[0])
    for i, ya in enumerate(ys):
        if ya.ndim == 0 or len(ya) != n:
            which = "y" if len(ys) == 1 else f"y for output {model.output_names[i]!r}"
            raise ValueError(f"{who}: x has {n} samples but {which} has {len(ya) if ya.ndim else 'none (a scalar)'}.")
    return FlatArrays(xs), FlatArrays(ys), sample_weight(sw, n, who)


def positive_int_or_none(value: Any, arg: str, who: str) -> int | None:
    # bool is an int in Python; batch_size=True is a mistake, not 1.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{who}: {arg} must be an int >= 1 or None. Received: {arg}={value!r}")
    return int(value)


def require_targets(y: np.ndarray | None, who: str) -> None:
    if y is None:
        raise ValueError(
            f"{who}: the data gave inputs but no targets; a Sequence/generator must yield (x, y) or "
            f"(x, y, sample_weight) batches (x alone is for predict)."
        )


def match_rank(y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Keras 3 lines the targets up with the output when their ranks differ by one trailing axis of
    size 1 (``squeeze_or_expand_to_same_rank``): targets ``(N,)`` for a ``Dense(1)`` output
    ``(N, 1)``, or ``(N, 1)`` for ``(N,)``. Only that: any other mismatch stays an error (seqcore
    never broadcasts targets)."""
    if y.ndim == out.ndim - 1 and out.shape[-1] == 1 and y.shape == out.shape[:-1]:
        return y[..., None]
    if y.ndim == out.ndim + 1 and y.shape[-1] == 1 and y.shape[:-1] == out.shape:
        return y[..., 0]
    return y


def check_finite(a: np.ndarray, name: str, model: str) -> None:
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise ValueError(
            f"{model}.fit: {name} contains {a[idx]} at index {idx} (and maybe elsewhere). Clean or impute the data "
            f"before training: non-finite inputs make every loss NaN."
        )


def class_weights(y: np.ndarray, class_weight: dict[int, float], model: str) -> np.ndarray:
    labels = np.argmax(y, axis=-1) if y.ndim >= 2 and y.shape[-1] > 1 else np.rint(y.reshape(len(y), -1)[:, 0])
    labels = labels.reshape(len(y), -1)[:, 0].astype(np.int64)
    missing = sorted(set(np.unique(labels).tolist()) - set(class_weight))
    if missing:
        raise ValueError(f"{model}.fit: class_weight has no entry for class(es) {missing}.")
    return np.array([class_weight[int(c)] for c in labels], dtype=np.float32)


def len_or_none(x: Any) -> int | None:
    try:
        return len(x)
    except TypeError:
        return None


def split_validation(data: Any, who: str) -> tuple[Any, Any, Any]:
    if isinstance(data, tuple) and len(data) in (2, 3):
        return data[0], data[1], data[2] if len(data) == 3 else None
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, (list, np.ndarray, Mapping)):
        return data, None, None
    raise ValueError(f"{who}: validation_data must be (x, y), (x, y, sample_weight) or a Sequence.")


def batches(
    x: Any,
    y: Any,
    sw: Any,
    batch_size: int,
    shuffle: bool,
    model: Any,
    steps: int | None = None,
    who: str = "Model",
) -> Iterator[tuple[list[np.ndarray], list[np.ndarray] | None, np.ndarray | None]]:
    """Batches ``(inputs, targets, sample_weight)`` as flat lists, from flat lists of arrays
    (``check_data``'s), a Sequence (``__len__``/``__getitem__``) or a generator/iterable."""
    if isinstance(x, FlatArrays):
        n = len(x[0])
        order = rng().permutation(n) if shuffle else np.arange(n)
        for i, start in enumerate(range(0, n, batch_size)):
            if steps is not None and i >= steps:
                return
            idx = order[start : start + batch_size]
            sl = slice(start, start + batch_size)
            xb = [a[idx] if shuffle else a[sl] for a in x]
            yb = None if y is None else [a[idx] if shuffle else a[sl] for a in y]
            swb = None if sw is None else (sw[idx] if shuffle else sw[sl])
            yield xb, yb, swb
        return
    if hasattr(x, "__getitem__") and hasattr(x, "__len__"):
        n = len(x)
        order = rng().permutation(n) if shuffle else np.arange(n)
        for i, j in enumerate(order):
            if steps is not None and i >= steps:
                return
            yield unpack(x[int(j)], who, model)
        return
    if isinstance(x, Iterable):
        it = iter(x)
        for _ in range(steps if steps is not None else sys.maxsize):
            try:
                item = next(it)
            except StopIteration:
                return
            yield unpack(item, who, model)
        return
    raise TypeError(f"{who}: x must be an array, a Sequence or a generator; received {type(x).__name__}.")


class FlatArrays(list):  # type: ignore[type-arg]
    """One array per model input (or output): what ``check_data`` makes of in-memory data."""


def unpack(item: Any, who: str, model: Any) -> tuple[list[np.ndarray], list[np.ndarray] | None, np.ndarray | None]:
    # As Keras's unpack_x_y_sample_weight: a list is a tuple (a torch DataLoader yields lists), and
    # anything else is x alone (for predict). A model with several inputs takes a tuple of them as x
    # only inside an (x, y) pair.
    if isinstance(item, list):
        item = tuple(item)
    if not isinstance(item, tuple) or (len(model.inputs_or_none() or ()) > 1 and not _is_batch_tuple(item)):
        item = (item,)
    if len(item) not in (1, 2, 3):
        raise ValueError(
            f"{who}: a Sequence/generator must yield x, (x,), (x, y) or (x, y, sample_weight); received a "
            f"tuple of length {len(item)}."
        )
    xb = model._input_list(item[0], who)
    yb = model._target_list(item[1], who) if len(item) > 1 and item[1] is not None else None
    swb = sample_weight(item[2], len(xb[0]), who) if len(item) > 2 else None
    return xb, yb, swb


def _is_batch_tuple(item: tuple[Any, ...]) -> bool:
    """For a multi-input model: whether a yielded tuple is (x, y[, sw]) rather than the inputs."""
    return len(item) in (2, 3) and not all(isinstance(v, np.ndarray) for v in item)
