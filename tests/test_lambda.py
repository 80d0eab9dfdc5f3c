"""Lambda: a function of seqcore.ops traced into a layer (values, gradients by finite differences,
training, refusals with the fix, and saving by reference)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import seqcore as keras
from seqcore import ops


def scaled_tanh(x, factor=2.0):  # type: ignore[no-untyped-def]
    return ops.tanh(x) * factor


def with_training(x, training=None):  # type: ignore[no-untyped-def]
    return x * 2.0


def _model(fn, **kw):  # type: ignore[no-untyped-def]
    inp = keras.Input((4, 3))
    return keras.Model(inp, keras.layers.Lambda(fn, **kw)(inp))


def test_values_and_arguments() -> None:
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
    m = _model(scaled_tanh, arguments={"factor": 3.0})
    np.testing.assert_allclose(m.predict(x), np.tanh(x) * 3.0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(_model(with_training).predict(x), x * 2.0)
    layer = keras.layers.Lambda(lambda t: ops.mean(t, axis=1))
    np.testing.assert_allclose(layer(x), x.mean(axis=1), rtol=1e-6)


def test_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    dy = rng.standard_normal((2, 4, 3)).astype(np.float32)
    layer = keras.layers.Lambda(lambda t: ops.tanh(t) * t)
    layer(x)
    y, call = layer.apply(x, training=True)
    dx = layer.unapply(call, dy)
    want = dy * (np.tanh(x) + x * (1 - np.tanh(x) ** 2))
    np.testing.assert_allclose(dx, want, rtol=1e-5, atol=1e-5)
    d = rng.standard_normal(x.shape)
    eps = 1e-3
    f = lambda a: float((np.tanh(a) * a * dy).sum())  # noqa: E731
    fd = (f(x + eps * d) - f(x - eps * d)) / (2 * eps)
    assert abs(fd - float((dx * d).sum())) < 1e-3 * (1 + abs(fd))


def test_trains_inside_a_model() -> None:
    rng = np.random.default_rng(2)
    inp = keras.Input((4, 3))
    h = keras.layers.Dense(5)(inp)
    h = keras.layers.Lambda(lambda t: ops.relu(t) + t * 0.1)(h)
    out = keras.layers.Dense(1)(keras.layers.Lambda(lambda t: ops.mean(t, axis=1))(h))
    m = keras.Model(inp, out)
    m.compile(keras.optimizers.Adam(0.05), "mse")
    x = rng.standard_normal((32, 4, 3)).astype(np.float32)
    y = x.sum(axis=(1, 2))[:, None].astype(np.float32)
    first = m.train_on_batch(x, y)
    for _ in range(30):
        last = m.train_on_batch(x, y)
    assert last < 0.5 * first


def test_numpy_inside_is_refused_with_the_fix() -> None:
    inp = keras.Input((4, 3))
    with pytest.raises(TypeError, match=r"Lambda .*seqcore\.ops"):
        keras.layers.Lambda(lambda t: np.tanh(t))(inp)
    with pytest.raises(TypeError, match="callable"):
        keras.layers.Lambda(3)
    with pytest.raises(ValueError, match="mask="):
        keras.layers.Lambda(scaled_tanh, mask=lambda a, b: b)


def test_saving_by_reference(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(3).standard_normal((2, 4, 3)).astype(np.float32)
    layer = keras.layers.Lambda(scaled_tanh, arguments={"factor": 1.5})
    cfg = layer.get_config()
    assert cfg["function"] == {"module": __name__, "name": "scaled_tanh"}
    again = keras.layers.Lambda.from_config(cfg)
    np.testing.assert_allclose(again(x), layer(x))
    with pytest.raises(ValueError, match="module level"):
        keras.layers.Lambda(lambda t: t).get_config()
    missing = dict(cfg, function={"module": "no_such_module_here", "name": "f"})
    assert "no_such_module_here" not in sys.modules
    with pytest.raises(ValueError, match="not imported"):
        keras.layers.Lambda.from_config(missing)
