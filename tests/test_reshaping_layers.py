"""UpSampling1D, ZeroPadding1D, Cropping1D and Permute: values against direct index arithmetic
over drawn shapes and options, gradients by the adjoint identity <f(x), dy> = <x, f'(dy)> (each is
linear), symbolic output shapes, configs and the errors. Keras's numbers are checked in
tests/test_layer_goldens.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import seqcore as keras
from hypothesis import given, settings
from hypothesis import strategies as st
from seqcore import layers as L


def check_linear(layer: Any, x: np.ndarray, want: np.ndarray, rng: np.random.Generator) -> None:
    y, call = layer.apply(x, training=True)
    np.testing.assert_array_equal(y, want)
    dy = rng.normal(size=y.shape).astype(np.float32)
    dx = layer.unapply(call, dy)
    assert dx.shape == x.shape
    np.testing.assert_allclose(float(np.sum(y.astype(np.float64) * dy)), float(np.sum(x.astype(np.float64) * dx)),
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    sym = layer.compute_output_shape(tuple(x.shape[1:]))
    assert tuple(sym) == y.shape[1:]


@settings(max_examples=60, deadline=None)
@given(
    b=st.integers(1, 3), t=st.integers(1, 7), f=st.integers(1, 4), size=st.integers(1, 3),
    left=st.integers(0, 3), right=st.integers(0, 3), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_shaping_layers(b: int, t: int, f: int, size: int, left: int, right: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(b, t, f)).astype(np.float32)
    up = np.stack([x[:, i // size] for i in range(t * size)], axis=1)
    check_linear(L.UpSampling1D(size), x, up, rng)
    padded = np.zeros((b, left + t + right, f), np.float32)
    padded[:, left : left + t] = x
    check_linear(L.ZeroPadding1D((left, right)), x, padded, rng)
    cf = np.zeros((b, t, left + f + right), np.float32)
    cf[:, :, left : left + f] = x
    check_linear(L.ZeroPadding1D((left, right), data_format="channels_first"), x, cf, rng)
    if left + right < t:
        check_linear(L.Cropping1D((left, right)), x, x[:, left : t - right], rng)
    check_linear(L.Permute((2, 1)), x, np.einsum("btf->bft", x), rng)
    x4 = rng.normal(size=(b, t, f, 2)).astype(np.float32)
    check_linear(L.Permute((3, 1, 2)), x4, np.einsum("btfc->bctf", x4), rng)


def test_in_a_model_and_configs(tmp_path: Any) -> None:
    model = keras.Sequential([keras.Input((5, 2)), L.UpSampling1D(2), L.ZeroPadding1D(1), L.Cropping1D((0, 3)),
                              L.Permute((2, 1)), L.Dense(3), L.Flatten(), L.Dense(1)])  # fmt: skip
    assert model.output_shape == (None, 1)
    assert [lyr.output_shape for lyr in model.layers[:4]] == [(10, 2), (12, 2), (9, 2), (2, 9)]
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(4, 5, 2)).astype(np.float32)
    model.fit(x, np.zeros((4, 1), np.float32), epochs=1, verbose=0)
    model.save(tmp_path / "m.seqcore")
    again = keras.models.load_model(tmp_path / "m.seqcore")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert again.layers[1].get_config()["padding"] == [1, 1]


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"Cropping1D 'c': cropping \(2, 3\) removes all 5 steps"):
        L.Cropping1D((2, 3), name="c")(keras.Input((5, 2)))
    with pytest.raises(ValueError, match=r"Permute 'p': dims must be a permutation of 1..2"):
        L.Permute((0, 1), name="p")
    with pytest.raises(ValueError, match=r"Permute 'p': dims \(2, 1\) permute 2 axes, but the input of shape"):
        L.Permute((2, 1), name="p")(keras.Input((5, 2, 3)))
    with pytest.raises(ValueError, match=r"UpSampling1D 'u': expects \(batch, steps, features\) inputs"):
        L.UpSampling1D(name="u")(keras.Input((5,)))
    with pytest.raises(ValueError, match=r"padding must be non-negative ints"):
        L.ZeroPadding1D((-1, 2))
    with pytest.raises(ValueError, match=r"data_format must be 'channels_last' or 'channels_first'"):
        L.ZeroPadding1D(1, data_format="NCW")
