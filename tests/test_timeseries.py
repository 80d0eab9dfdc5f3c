"""seqcore.utils.timeseries_dataset_from_array: the same windows, targets and batch boundaries as
Keras 3 for a grid of arguments (goldens from tests/golden/generate_timeseries_goldens.py), lazy
batches, shuffling, use in fit/evaluate/predict, and Keras's argument errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import seqcore as keras

HERE = Path(__file__).parent / "golden"
G = np.load(HERE / "timeseries_goldens.npz")
CASES = json.loads((HERE / "timeseries_goldens.json").read_text())


def _make(name: str) -> tuple[np.ndarray, np.ndarray | None, dict]:  # type: ignore[type-arg]
    n, features, n_targets, kw = CASES[name]
    data = np.arange(n * features, dtype=np.float32).reshape(n, features)
    targets = None if n_targets is None else np.arange(n_targets) * 10
    return data, targets, kw


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_batches_as_keras(name: str) -> None:
    data, targets, kw = _make(name)
    ds = keras.utils.timeseries_dataset_from_array(data, targets, **kw)
    batches = list(ds)
    assert len(batches) == len(ds) == len(G[f"{name}__sizes"])
    xs = [b[0] if targets is not None else b for b in batches]
    assert [len(x) for x in xs] == list(G[f"{name}__sizes"])
    np.testing.assert_array_equal(np.concatenate(xs), G[f"{name}__x"])
    assert np.concatenate(xs).dtype == np.float32
    if targets is not None:
        np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), G[f"{name}__y"])


def test_batches_are_gathered_on_demand_and_shuffle_is_a_permutation() -> None:
    series = np.arange(100_000, dtype=np.float32)[:, None]
    ds = keras.utils.timeseries_dataset_from_array(series, series[:, 0], 50, batch_size=32)
    assert ds.data is series  # no copy of the series, let alone of its overlapping windows
    x, y = ds[-1]
    np.testing.assert_array_equal(x[-1, :, 0], np.arange(99_950, 100_000))
    a = keras.utils.timeseries_dataset_from_array(series[:200], None, 10, batch_size=16, shuffle=True, seed=3)
    b = keras.utils.timeseries_dataset_from_array(series[:200], None, 10, batch_size=16, shuffle=True, seed=3)
    plain = keras.utils.timeseries_dataset_from_array(series[:200], None, 10, batch_size=16)
    wa = np.concatenate(list(a))
    np.testing.assert_array_equal(wa, np.concatenate(list(b)))  # the seed fixes the order
    order = np.argsort(wa[:, 0, 0])
    np.testing.assert_array_equal(wa[order], np.concatenate(list(plain)))  # the same windows
    assert not np.array_equal(wa, np.concatenate(list(plain)))
    single = keras.utils.timeseries_dataset_from_array(series[:20], series[:20, 0], 5, batch_size=None)
    x0, y0 = single[3]
    assert x0.shape == (5, 1) and y0 == 3.0


def test_fit_evaluate_predict_take_it() -> None:
    t = np.linspace(0, 20, 400, dtype=np.float32)
    series = np.sin(t)[:, None]
    ds = keras.utils.timeseries_dataset_from_array(series[:-10], series[10:, 0], 10, batch_size=32)
    model = keras.Sequential([keras.Input((10, 1)), keras.layers.LSTM(8), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    before = model.evaluate(ds, verbose=0)
    model.fit(ds, epochs=3, verbose=0)
    assert model.evaluate(ds, verbose=0) < before
    pred = model.predict(keras.utils.timeseries_dataset_from_array(series, None, 10, batch_size=64), verbose=0)
    assert pred.shape == (391, 1)


def test_errors_as_keras() -> None:
    f = keras.utils.timeseries_dataset_from_array
    data = np.zeros((10, 1), np.float32)
    with pytest.raises(ValueError, match=r"`start_index` must be lower than the length of the data"):
        f(data, None, 2, start_index=10)
    with pytest.raises(ValueError, match=r"`end_index` must be higher than `start_index`"):
        f(data, None, 2, start_index=5, end_index=4)
    with pytest.raises(ValueError, match=r"`end_index` must be lower than the length of the data"):
        f(data, None, 2, end_index=10)
    with pytest.raises(ValueError, match=r"`sampling_rate` must be lower than the length of the data"):
        f(data, None, 2, sampling_rate=10)
    with pytest.raises(ValueError, match=r"`sequence_stride` must be an int >= 1"):
        f(data, None, 2, sequence_stride=0)
    with pytest.raises(ValueError, match=r"`sequence_length` must be an int >= 1"):
        f(data, None, 0)
    with pytest.raises(TypeError, match=r"`data` must hold numbers"):
        f(np.array(["a", "b"]), None, 1)
