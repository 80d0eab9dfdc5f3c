"""``timeseries_dataset_from_array`` (exported as ``seqcore.utils.timeseries_dataset_from_array``):
Keras's sliding windows over a series, as a lazy dataset of ``(x, y)`` batches.

Windows and targets are Keras's: window ``i`` starts at ``start_index + p_i`` with
``p_i = 0, sequence_stride, 2·sequence_stride, ...`` and takes ``sequence_length`` rows
``sampling_rate`` apart; its target is ``targets[start_index + p_i]``; there are
``min(end_index - start_index - (sequence_length - 1)·sampling_rate, len(targets))`` start positions
before the stride. Nothing is copied up front: a batch is gathered from ``data`` when it is asked
for, so a long series never sits in memory as all its overlapping windows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .utils import Sequence, rng


def _int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(
            f"timeseries_dataset_from_array: `{name}` must be an int >= {minimum}. Received: {name}={value!r}"
        )
    return int(value)


class TimeseriesDataset(Sequence):
    """The batches of :func:`timeseries_dataset_from_array`: ``len(ds)`` batches, ``ds[i]`` the
    i-th (``(x, y)`` with targets, ``x`` alone without), and iteration over them in order. ``fit``,
    ``evaluate`` and ``predict`` take it as a Sequence. With ``batch_size=None`` it holds single
    windows instead of batches, as Keras's unbatched dataset does."""

    def __init__(self, data: np.ndarray, targets: np.ndarray | None, positions: np.ndarray, start_index: int,
                 sequence_length: int, sampling_rate: int, batch_size: int | None):  # fmt: skip
        self.data = data
        self.targets = targets
        self.positions = positions
        self.start_index = start_index
        self.offsets = np.arange(sequence_length) * sampling_rate
        self.batch_size = batch_size

    def __len__(self) -> int:
        n = len(self.positions)
        return n if self.batch_size is None else -(-n // self.batch_size)

    def _windows(self, p: np.ndarray) -> Any:
        starts = self.start_index + p
        x = self.data[starts[:, None] + self.offsets[None, :]]
        return x if self.targets is None else (x, self.targets[starts])

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"TimeseriesDataset indices are ints; received {index!r}.")
        if not -n <= index < n:
            raise IndexError(f"TimeseriesDataset: batch {index} out of range for {n} batches.")
        index = int(index) % n
        if self.batch_size is None:
            out = self._windows(self.positions[index : index + 1])
            return out[0] if self.targets is None else (out[0][0], out[1][0])
        return self._windows(self.positions[index * self.batch_size : (index + 1) * self.batch_size])

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return (
            f"<TimeseriesDataset: {len(self.positions)} windows of {len(self.offsets)} steps, "
            f"{len(self)} {'windows' if self.batch_size is None else 'batches'}>"
        )


def timeseries_dataset_from_array(
    data: Any,
    targets: Any,
    sequence_length: int,
    sequence_stride: int = 1,
    sampling_rate: int = 1,
    batch_size: int | None = 128,
    shuffle: bool = False,
    seed: int | None = None,
    start_index: int | None = None,
    end_index: int | None = None,
) -> TimeseriesDataset:
    """Keras's ``timeseries_dataset_from_array``, with its arguments, windows, targets and errors.
    ``data`` is an array-like of rows (time first); ``targets`` one per row or None. ``shuffle``
    permutes the windows as Keras's first shuffle does (``np.random.RandomState(seed)``); Keras then
    also shuffles within a buffer with TensorFlow's generator, which seqcore does not reproduce, so
    with ``shuffle=True`` the order of windows differs from Keras's (the windows are the same)."""
    who = "timeseries_dataset_from_array"
    arr = np.asarray(data)
    if arr.ndim == 0:
        raise ValueError(f"{who}: `data` must be an array of time steps (rows); received a scalar.")
    if arr.dtype.kind in "biu" or arr.dtype == np.float64:
        pass  # Keras keeps the data's dtype
    elif arr.dtype.kind == "f":
        arr = arr.astype(np.float32, copy=False)
    else:
        raise TypeError(f"{who}: `data` must hold numbers; received dtype {arr.dtype}.")
    tg = None if targets is None else np.asarray(targets)
    sequence_length = _int(sequence_length, "sequence_length", 1)
    sequence_stride = _int(sequence_stride, "sequence_stride", 1)
    sampling_rate = _int(sampling_rate, "sampling_rate", 1)
    n = len(arr)
    # Keras's checks, with its messages
    if start_index:
        start_index = _int(start_index, "start_index", 0)
        if start_index >= n:
            raise ValueError(
                f"{who}: `start_index` must be lower than the length of the data. Received: start_index="
                f"{start_index}, for data of length {n}"
            )
    if end_index:
        end_index = _int(end_index, "end_index", 1)
        if start_index and end_index <= start_index:
            raise ValueError(
                f"{who}: `end_index` must be higher than `start_index`. Received: start_index={start_index}, and "
                f"end_index={end_index}"
            )
        if end_index >= n:
            raise ValueError(
                f"{who}: `end_index` must be lower than the length of the data. Received: end_index={end_index}, "
                f"for data of length {n}"
            )
    if sampling_rate >= n:
        raise ValueError(
            f"{who}: `sampling_rate` must be lower than the length of the data. Received: sampling_rate="
            f"{sampling_rate}, for data of length {n}"
        )
    if sequence_stride >= n:
        raise ValueError(
            f"{who}: `sequence_stride` must be lower than the length of the data. Received: sequence_stride="
            f"{sequence_stride}, for data of length {n}"
        )
    if batch_size is not None:
        batch_size = _int(batch_size, "batch_size", 1)
    start = int(start_index or 0)
    end = int(end_index) if end_index else n
    num = end - start - (sequence_length - 1) * sampling_rate
    if tg is not None:
        num = min(num, len(tg))
    positions = np.arange(0, max(num, 0), sequence_stride, dtype=np.int64)
    if shuffle:
        if seed is None:
            seed = int(rng().integers(1_000_000))  # seqcore's generator: utils.set_random_seed fixes it
        # Keras's own first shuffle, with the legacy generator it uses, so a seed gives Keras's permutation
        np.random.RandomState(seed).shuffle(positions)  # noqa: NPY002
    return TimeseriesDataset(arr, tg, positions, start, sequence_length, sampling_rate, batch_size)
