"""ReLU, LeakyReLU, PReLU, ELU and Softmax layers against float64 NumPy references over drawn
shapes and options (values, and gradients against central differences away from the kinks), and
their configs, saving, interop and errors. Keras's own numbers are checked in
tests/test_layer_goldens.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import seqcore as keras
from hypothesis import given, settings
from hypothesis import strategies as st
from seqcore import layers as L


def run(layer: Any, x: np.ndarray, dy: np.ndarray) -> tuple[Any, ...]:
    for w in layer.weights:
        w.grad = None
    y, call = layer.apply(x, training=True)
    dx = layer.unapply(call, dy)
    return y, dx, [None if w.grad is None else w.grad.copy() for w in layer.trainable_weights]


def numeric_grad(f: Any, x: np.ndarray, dy: np.ndarray, h: float = 1e-6) -> np.ndarray:
    x = x.astype(np.float64)
    out = np.zeros_like(x)
    flat, gflat = x.reshape(-1), out.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + h
        up = float(np.sum(f(x) * dy))
        flat[i] = keep - h
        down = float(np.sum(f(x) * dy))
        flat[i] = keep
        gflat[i] = (up - down) / (2 * h)
    return out


def away_from(x: np.ndarray, *kinks: float, margin: float = 1e-3) -> np.ndarray:
    """x with values within ``margin`` of a kink moved off it (finite differences straddle kinks)."""
    x = x.copy()
    for k in kinks:
        near = np.abs(x - k) < margin
        x[near] = k + 2 * margin
    return x


def ref_relu(x: np.ndarray, max_value: Any, slope: float, threshold: float) -> np.ndarray:
    pos = np.where(x > threshold, x, 0.0)
    if max_value is not None:
        pos = np.minimum(pos, max_value)
    return pos - slope * np.maximum(threshold - x, 0.0)


shapes = st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple)


@settings(max_examples=60, deadline=None)
@given(
    shape=shapes,
    max_value=st.sampled_from([None, 0.5, 2.0, 6.0]),
    slope=st.sampled_from([0.0, 0.1, 0.3]),
    threshold=st.sampled_from([0.0, 0.2]),
    seed=st.integers(0, 2**16),
)
def test_relu_matches_the_reference(shape: tuple[int, ...], max_value: Any, slope: float, threshold: float,
                                    seed: int) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    kinks = [threshold] + ([max_value] if max_value is not None else [])
    x = away_from((rng.normal(size=(2, *shape)) * 2).astype(np.float32), *kinks).astype(np.float32)
    dy = rng.normal(size=x.shape).astype(np.float32)
    layer = L.ReLU(max_value=max_value, negative_slope=slope, threshold=threshold)

    def f(v: np.ndarray) -> np.ndarray:
        return ref_relu(v, max_value, slope, threshold)

    y, dx, _ = run(layer, x, dy)
    np.testing.assert_allclose(y, f(x.astype(np.float64)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, numeric_grad(f, x, dy), rtol=1e-4, atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, slope=st.floats(0.0, 1.0), alpha=st.floats(0.1, 2.0), seed=st.integers(0, 2**16))
def test_leaky_relu_and_elu_match_the_reference(shape: tuple[int, ...], slope: float, alpha: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = away_from((rng.normal(size=(2, *shape)) * 2).astype(np.float32), 0.0).astype(np.float32)
    dy = rng.normal(size=x.shape).astype(np.float32)
    cases = [
        (L.LeakyReLU(negative_slope=slope), lambda v: np.where(v >= 0, v, np.float32(slope) * v)),
        (L.ELU(alpha=alpha), lambda v: np.where(v > 0, v, np.float32(alpha) * np.expm1(np.minimum(v, 0)))),
        (L.ELU(), lambda v: np.where(v > 0, v, np.expm1(np.minimum(v, 0)))),
    ]
    for layer, f in cases:
        y, dx, _ = run(layer, x, dy)
        np.testing.assert_allclose(y, f(x.astype(np.float64)), rtol=2e-6, atol=2e-6)
        np.testing.assert_allclose(dx, numeric_grad(f, x, dy), rtol=1e-4, atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(steps=st.integers(1, 5), feats=st.integers(1, 5), share=st.sampled_from([None, [1], [2], [1, 2]]),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_prelu_matches_the_reference(steps: int, feats: int, share: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = away_from(rng.normal(size=(3, steps, feats)).astype(np.float32), 0.0).astype(np.float32)
    dy = rng.normal(size=x.shape).astype(np.float32)
    layer = L.PReLU(shared_axes=share)
    layer(x)
    want_shape = [steps, feats]
    for a in share or []:
        want_shape[a - 1] = 1
    assert layer.alpha.shape == tuple(want_shape)
    layer.alpha.value[...] = rng.normal(size=layer.alpha.shape).astype(np.float32)
    alpha = layer.alpha.value.astype(np.float64)

    def f(v: np.ndarray, a: np.ndarray = alpha) -> np.ndarray:
        return np.maximum(v, 0) - a * np.maximum(-v, 0)

    y, dx, (da,) = run(layer, x, dy)
    np.testing.assert_allclose(y, f(x.astype(np.float64)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, numeric_grad(f, x, dy), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(da, numeric_grad(lambda a: f(x.astype(np.float64), a), alpha, dy), rtol=1e-4,
                               atol=1e-4)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=2, max_size=3).map(tuple), pick=st.integers(0, 3),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_softmax_matches_the_reference(shape: tuple[int, ...], pick: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    full = (2, *shape)
    axis: Any = [-1, 1, [1, 2], -2][pick]
    x = (rng.normal(size=full) * 3).astype(np.float32)
    dy = rng.normal(size=full).astype(np.float32)
    axes = tuple(sorted({a % len(full) for a in (axis if isinstance(axis, list) else [axis])}))

    def f(v: np.ndarray) -> np.ndarray:
        e = np.exp(v - v.max(axis=axes, keepdims=True))
        return e / e.sum(axis=axes, keepdims=True)

    y, dx, _ = run(L.Softmax(axis=axis), x, dy)
    np.testing.assert_allclose(y, f(x.astype(np.float64)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, numeric_grad(f, x, dy), rtol=1e-4, atol=1e-5)


def test_in_a_model_saved_and_converted(tmp_path: Path) -> None:
    model = keras.Sequential(
        [
            keras.Input((6, 3)),
            L.Dense(4),
            L.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.1),
            L.PReLU(shared_axes=[1]),
            L.LeakyReLU(),
            L.ELU(alpha=0.5),
            L.Softmax(axis=1),
            L.LSTM(2),
        ]
    )
    model.compile("adam", "mse")
    x = np.random.default_rng(0).normal(size=(4, 6, 3)).astype(np.float32)
    model.fit(x, np.zeros((4, 2), np.float32), epochs=2, verbose=0)
    model.save(tmp_path / "m.seqcore")
    again = keras.models.load_model(tmp_path / "m.seqcore")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert model.layers[3].get_config()["negative_slope"] == 0.3  # Keras 3's LeakyReLU default
    from seqcore import interop

    cfg = interop.keras_config(model)
    kinds = [e["class_name"] for e in cfg["config"]["layers"][1:]]
    assert kinds == ["Dense", "ReLU", "PReLU", "LeakyReLU", "ELU", "Softmax", "LSTM"]
    assert cfg["config"]["layers"][3]["config"]["shared_axes"] == [1]


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"ReLU 'r': max_value cannot be negative"):
        L.ReLU(max_value=-1.0, name="r")
    with pytest.raises(ValueError, match=r"negative_slope cannot be negative"):
        L.LeakyReLU(negative_slope=-0.1)
    with pytest.raises(TypeError, match=r"threshold must be a number"):
        L.ReLU(threshold="0")
    with pytest.raises(ValueError, match=r"PReLU .p.: every non-shared axis needs a known size .*\(shared_axes=\[1\]"):
        L.PReLU(name="p")(keras.Input((None, 3)))
    with pytest.raises(ValueError, match=r"shared_axes are axes of the input counted from 1"):
        L.PReLU(shared_axes=[0])
    with pytest.raises(ValueError, match=r"Softmax 's': axis 3 is out of bounds for an input of rank 3"):
        L.Softmax(axis=3, name="s")(np.zeros((2, 3, 4), np.float32))
    with pytest.warns(UserWarning, match="alpha` is deprecated"):
        assert L.LeakyReLU(alpha=0.1).negative_slope == 0.1
