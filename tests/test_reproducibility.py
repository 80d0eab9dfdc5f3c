"""Reproducibility: ``seqcore.utils.set_random_seed`` fixes everything random in training (weight
initialization, shuffling, Dropout, recurrent input dropout and recurrent_dropout), so the same seed and thread count
give bit-identical weights and history, and another seed gives different ones.

Across thread counts: inference is bit-identical (each thread owns whole rows), and so are the
training gradients: the backward reductions over rows (conv1d weight/bias gradients, the dense bias
gradient, the LSTM/GRU bias gradient) sum a fixed partition of the rows, not one part per thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
import seqcore as keras

L = keras.layers


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Runs the block with ``n`` kernel threads and restores the previous count even on failure (the
    conftest fixture restores it after each test as well)."""
    before = keras.get_num_threads()
    keras.set_num_threads(n)
    try:
        yield
    finally:
        keras.set_num_threads(before)


def data(n: int = 48, steps: int = 12) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(123)  # fixed data: only seqcore's own randomness may vary
    x = r.normal(size=(n, steps, 3)).astype(np.float32)
    y = (x[:, :, 0].cumsum(1)[:, -1:] > 0).astype(np.float32)
    return x, y


def build(steps: int = 12) -> keras.Sequential:
    # Every source of randomness: initializers (glorot, orthogonal), LSTM input dropout, Dropout,
    # the GRU's per-gate input and recurrent dropout masks, plus shuffle=True in fit.
    return keras.Sequential(
        [
            keras.Input((steps, 3)),
            L.Conv1D(6, 3, padding="same", activation="relu"),
            L.LSTM(8, return_sequences=True, dropout=0.2),
            L.Dropout(0.3),
            L.GRU(5, dropout=0.1, recurrent_dropout=0.2),
            L.Dense(1, activation="sigmoid"),
        ]
    )


def train(
    seed: int, n_threads: int, large: bool = False
) -> tuple[list[np.ndarray], dict[str, list[float]], np.ndarray]:
    """Builds and fits the model. ``large``: 128 training samples of 40 steps in one batch, 5120 rows
    per step, past the 4096 rows where the recurrent bias gradients are summed per thread."""
    n, steps, batch = (160, 40, 128) if large else (48, 12, 8)
    with threads(n_threads):
        keras.utils.set_random_seed(seed)
        model = build(steps)
        model.compile("adam", "binary_crossentropy", metrics=["auc"])
        x, y = data(n, steps)
        history = model.fit(x, y, epochs=3, batch_size=batch, shuffle=True, validation_split=0.2, verbose=0)
        return model.get_weights(), history.history, model.predict(x, verbose=0)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_same_seed_is_bit_identical(n_threads):
    w1, h1, p1 = train(7, n_threads)
    w2, h2, p2 = train(7, n_threads)
    assert len(w1) == len(w2) == 10
    for i, (a, b) in enumerate(zip(w1, w2, strict=True)):
        assert np.array_equal(a, b), f"weight {i} differs"
    assert h1 == h2  # exact float equality of every logged value
    assert set(h1) == {"loss", "auc", "val_loss", "val_auc"}
    assert np.array_equal(p1, p2)


def test_different_seed_gives_different_weights_and_history():
    w1, h1, _ = train(7, 2)
    w2, h2, _ = train(8, 2)
    assert not any(np.array_equal(a, b) for a, b in zip(w1, w2, strict=True) if np.any(a) or np.any(b))
    assert h1["loss"] != h2["loss"]


def test_seed_also_drives_shuffling_and_dropout():
    # Same initial weights, different seeds: training must still differ, since the seed also sets the
    # batch order and the dropout masks, not only the initial weights.
    keras.utils.set_random_seed(1)
    start = build().get_weights()
    x, y = data()

    def fit_from_start(seed: int, shuffle: bool, dropout_free: bool) -> list[np.ndarray]:
        keras.utils.set_random_seed(seed)
        model = build()
        if dropout_free:
            model.layers[1].dropout, model.layers[2].rate = 0.0, 0.0
            model.layers[3].dropout, model.layers[3].recurrent_dropout = 0.0, 0.0
        model.set_weights(start)
        model.compile("sgd", "binary_crossentropy")
        model.fit(x, y, epochs=2, batch_size=8, shuffle=shuffle, verbose=0)
        return model.get_weights()

    a, b = fit_from_start(1, True, False), fit_from_start(2, True, False)
    assert not all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    # Control: no shuffling and no dropout leave nothing random after set_weights.
    c, d = fit_from_start(1, False, True), fit_from_start(2, False, True)
    assert all(np.array_equal(u, v) for u, v in zip(c, d, strict=True))


@pytest.mark.parametrize("layer", ["lstm", "gru", "conv1d", "dense"])
def test_inference_is_bit_identical_across_thread_counts(layer):
    # 64 x 80 = 5120 rows: enough for every kernel to split the batch between the two threads.
    make = {
        "lstm": lambda: L.LSTM(16, return_sequences=True),
        "gru": lambda: L.GRU(16, return_sequences=True),
        "conv1d": lambda: L.Conv1D(16, 5, padding="same", activation="tanh"),
        "dense": lambda: L.Dense(16, activation="tanh"),
    }[layer]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((80, 4)), make(), L.Dense(1)])
    x = np.random.default_rng(1).normal(size=(64, 80, 4)).astype(np.float32)
    with threads(1):
        one = model.predict(x, batch_size=64, verbose=0)
    with threads(2):
        two = model.predict(x, batch_size=64, verbose=0)
    assert np.array_equal(one, two)


@pytest.mark.parametrize("large", [False, True])
def test_training_across_thread_counts_is_bit_identical(large):
    w1, h1, p1 = train(7, 1, large)
    w2, h2, p2 = train(7, 2, large)
    for i, (a, b) in enumerate(zip(w1, w2, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"weight {i}")
    assert h1 == h2
    np.testing.assert_array_equal(p1, p2)


def one_step(n_threads: int, layer: str) -> list[np.ndarray]:
    shape = {"conv1d": (8, 20, 4), "lstm": (64, 64, 4), "gru": (64, 64, 4)}[layer]
    make = {
        "conv1d": lambda: L.Conv1D(16, 5, padding="same"),
        "lstm": lambda: L.LSTM(16, return_sequences=True),
        "gru": lambda: L.GRU(16, return_sequences=True),
    }[layer]
    with threads(n_threads):
        keras.utils.set_random_seed(5)
        model = keras.Sequential([keras.Input(shape[1:]), make(), L.Dense(1)])
        r = np.random.default_rng(1)
        x = r.normal(size=shape).astype(np.float32)
        y = r.normal(size=(*shape[:2], 1)).astype(np.float32)
        model.compile(keras.optimizers.SGD(0.1), "mse")
        model.train_on_batch(x, y)
        return model.get_weights()


@pytest.mark.parametrize("layer", ["conv1d", "lstm", "gru"])
def test_training_step_is_bit_identical_across_thread_counts(layer):
    a, b, c = one_step(1, layer), one_step(2, layer), one_step(3, layer)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert all(np.array_equal(u, v) for u, v in zip(a, c, strict=True))


@pytest.mark.parametrize("cls", [L.LSTM, L.GRU])
def test_seeded_rnn_dropout_draws_a_new_mask_each_step(cls):
    x = np.ones((4, 5, 3), np.float32)
    layer = cls(4, dropout=0.5, seed=3, return_sequences=True)
    first, second = layer(x, training=True), layer(x, training=True)
    assert not np.array_equal(first, second)


def test_seeded_layers_are_reproducible_without_the_global_seed():
    x = np.ones((4, 5, 3), np.float32)
    for make in (
        lambda: L.Dropout(0.5, seed=3),
        lambda: L.LSTM(4, dropout=0.5, seed=3, kernel_initializer="ones", recurrent_initializer="zeros"),
    ):
        keras.utils.set_random_seed(1)
        a = make()(x, training=True)
        keras.utils.set_random_seed(2)
        b = make()(x, training=True)
        assert np.array_equal(a, b)


@pytest.mark.parametrize("seed", [1.5, "1", None, True])
def test_set_random_seed_refuses_non_integers(seed):
    with pytest.raises(TypeError, match=r"set_random_seed: seed must be an int; received"):
        keras.utils.set_random_seed(seed)
