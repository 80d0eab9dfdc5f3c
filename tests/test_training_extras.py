"""Schedules, gradient accumulation, clipping, and the data utilities (windows, CNN-LSTM shaping,
padding, Sequence)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import seqcore as keras
from seqcore import layers, schedules, utils


def test_schedules_follow_keras_formulas() -> None:
    e = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert math.isclose(e(0), 0.1) and math.isclose(e(10), 0.05) and math.isclose(e(5), 0.1 * 0.5**0.5)
    assert math.isclose(schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True)(15), 0.05)
    c = schedules.CosineDecay(1.0, decay_steps=100, alpha=0.1)
    assert math.isclose(c(0), 1.0) and math.isclose(c(100), 0.1) and math.isclose(c(50), 0.55)
    p = schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [p(10), p(11), p(20), p(21)] == [1.0, 0.5, 0.5, 0.1]
    with pytest.raises(ValueError, match=r"one more entry than boundaries"):
        schedules.PiecewiseConstantDecay([1], [1.0])


def test_optimizer_uses_schedule_per_step() -> None:
    m = keras.Sequential([keras.Input((2,)), layers.Dense(1, use_bias=False, kernel_initializer="ones")])
    m.compile(keras.optimizers.SGD(schedules.PiecewiseConstantDecay([0], [0.1, 0.0])), "mse")
    x, y = np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32)
    m.train_on_batch(x, y)  # step 0: lr 0.1
    after_first = m.get_weights()[0].copy()
    assert not np.allclose(after_first, 1.0)
    m.train_on_batch(x, y)  # step 1: lr 0
    np.testing.assert_array_equal(m.get_weights()[0], after_first)


def test_gradient_accumulation_equals_mean_of_grads() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = rng.normal(size=(8, 1)).astype(np.float32)
    a = keras.Sequential([keras.Input((3,)), layers.Dense(1)])
    b = keras.Sequential([keras.Input((3,)), layers.Dense(1)])
    b.set_weights(a.get_weights())
    a.compile(keras.optimizers.SGD(0.1, gradient_accumulation_steps=2), "mse")
    b.compile(keras.optimizers.SGD(0.1), "mse")
    w0 = a.get_weights()
    a.train_on_batch(x[:4], y[:4])
    for u, v in zip(a.get_weights(), w0, strict=True):
        np.testing.assert_array_equal(u, v)  # first half: no update yet
    a.train_on_batch(x[4:], y[4:])
    b.train_on_batch(x, y)  # one step on the whole batch = mean of the two half-batch gradients
    for u, v in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-7)


def test_clipping_options_are_exclusive_and_work() -> None:
    with pytest.raises(ValueError, match=r"at most one of clipnorm, clipvalue, global_clipnorm"):
        keras.optimizers.SGD(clipnorm=1.0, clipvalue=1.0)
    opt = keras.optimizers.SGD(1.0, global_clipnorm=1.0)
    g = opt._clip([np.full(4, 3.0, np.float32), np.full(5, 4.0, np.float32)])
    assert math.isclose(math.sqrt(sum(float((a**2).sum()) for a in g)), 1.0, rel_tol=1e-6)
    g = keras.optimizers.SGD(clipvalue=0.5)._clip([np.array([-2.0, 0.1, 3.0], np.float32)])
    np.testing.assert_array_equal(g[0], np.array([-0.5, 0.1, 0.5], np.float32))


def test_make_windows_and_split_sequences() -> None:
    series = np.arange(20, dtype=np.float32)
    x, y = utils.make_windows(series, n_steps=8, horizon=2)
    assert x.shape == (11, 8, 1) and y.shape == (11, 2)
    np.testing.assert_array_equal(x[3, :, 0], np.arange(3, 11))
    np.testing.assert_array_equal(y[3], [11, 12])
    sub = utils.split_sequences(x, n_seq=2, n_steps=4)
    assert sub.shape == (11, 2, 4, 1)
    np.testing.assert_array_equal(sub[3, 1, :, 0], np.arange(7, 11))  # time order kept
    with pytest.raises(ValueError, match=r"3 \* 4 = 12, but x has 8 steps"):
        utils.split_sequences(x, n_seq=3, n_steps=4)
    with pytest.raises(ValueError, match=r"too short"):
        utils.make_windows(series[:5], n_steps=8)


def test_pad_sequences_post_feeds_masking() -> None:
    seqs = [np.ones((3, 2)), np.ones((5, 2)) * 2, np.ones((1, 2)) * 3]
    x = utils.pad_sequences(seqs, padding="post", dtype="float32")  # one array, as Keras
    lengths = np.array([len(s) for s in seqs])
    assert x.shape == (3, 5, 2) and x.dtype == np.float32 and lengths.tolist() == [3, 5, 1]
    assert (x[0, 3:] == 0).all() and (x[2, 1:] == 0).all()
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((None, 2)), layers.Masking(), layers.LSTM(3)])
    out = m.predict(x, verbose=0)
    for i, n in enumerate(lengths):  # the mask skips the padding
        np.testing.assert_allclose(out[i], m.predict(x[i : i + 1, :n], verbose=0)[0], rtol=1e-5, atol=1e-6)
    # Keras's default pre-padding puts the padding first: the masked leading steps keep the zero
    # state, so the last output is the unpadded sequence's, as with post-padding.
    pre = utils.pad_sequences(seqs, dtype="float32")
    assert (pre[2, :4] == 0).all() and (pre[2, 4] == 3).all()
    np.testing.assert_allclose(m.predict(pre, verbose=0), out, rtol=1e-5, atol=1e-6)


def test_sequence_base_class_feeds_fit() -> None:
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(24, 6, 2)).astype(np.float32)
    ys = xs.sum(axis=(1, 2))[:, None]

    class Batches(utils.Sequence):
        def __len__(self) -> int:
            return 3

        def __getitem__(self, i: int):
            return xs[i * 8 : (i + 1) * 8], ys[i * 8 : (i + 1) * 8]

    m = keras.Sequential([keras.Input((6, 2)), layers.GRU(4), layers.Dense(1)])
    m.compile("adam", "mse")
    h = m.fit(Batches(), epochs=3, verbose=0)
    assert len(h.history["loss"]) == 3


def test_make_windows_keeps_float64_and_makes_float32_otherwise() -> None:
    big = np.arange(2**24, 2**24 + 12, dtype=np.float64)  # not exact in float32
    x, y = utils.make_windows(big, n_steps=4)
    assert x.dtype == np.float64 and y.dtype == np.float64
    np.testing.assert_array_equal(x[0, :, 0], big[:4])
    for series in (np.arange(12), np.arange(12, dtype=np.float32), list(range(12)), np.arange(12, dtype=np.float16)):
        x, y = utils.make_windows(series, n_steps=4)
        assert x.dtype == np.float32 and y.dtype == np.float32


def test_progress_bar_redraws_only_on_a_terminal(capsys, monkeypatch) -> None:
    import io
    import sys

    import seqcore as keras

    x = np.random.default_rng(0).normal(size=(64, 5, 2)).astype(np.float32)
    y = x.sum(axis=(1, 2))[:, None]
    model = keras.Sequential([keras.Input((5, 2)), keras.layers.LSTM(3), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    model.fit(x, y, epochs=2, batch_size=8, verbose=1)
    logged = capsys.readouterr().out
    # A pipe or log file gets one finished line per epoch: no carriage returns, no escape codes.
    assert "\r" not in logged and "\x1b" not in logged
    assert logged.count("8/8 ━━━━━━━━━━━━━━━━━━━━") == 2

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    monkeypatch.setattr(sys, "stdout", tty)
    model.fit(x, y, epochs=1, batch_size=8, verbose=1)
    assert "\r" in tty.getvalue() and "\x1b[K" in tty.getvalue()
