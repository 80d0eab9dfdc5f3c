"""The Dot merge layer on inputs of any rank (Keras's batch_dot): Keras's values and gradients
(tests/golden/dot_goldens.npz, from tests/golden/generate_layer_goldens.py), a float64 einsum
reference with central differences over drawn shapes and axes, normalize=True, a Luong-attention
graph that trains, and the errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import seqcore as keras
from hypothesis import given, settings
from hypothesis import strategies as st

L = keras.layers
G = np.load(Path(__file__).parent / "golden" / "dot_goldens.npz")
CASES = sorted({k.split("__")[0] for k in G.files})
CONFIGS = {
    "dot_2d": {"axes": 1},
    "dot_scores": {"axes": 2},
    "dot_context": {"axes": (2, 1)},
    "dot_time": {"axes": 1, "normalize": True},
    "dot_mixed_rank": {"axes": (1, 1)},
}  # as DOT_CASES in the generator


def run(layer: Any, a: np.ndarray, b: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    y, call = layer.apply([a, b], training=True)
    return y, layer.unapply(call, dy)


@pytest.mark.parametrize("case", CASES)
def test_against_keras(case: str) -> None:
    y, (da, db) = run(L.Dot(**CONFIGS[case]), G[f"{case}__a"], G[f"{case}__b"], G[f"{case}__dy"])
    np.testing.assert_allclose(y, G[f"{case}__y"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(da, G[f"{case}__da"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(db, G[f"{case}__db"], rtol=1e-5, atol=1e-6)


def num_grad(f: Any, a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    a = a.astype(np.float64)
    g = np.zeros_like(a)
    flat, gf = a.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + eps
        up = f(a)
        flat[i] = keep - eps
        down = f(a)
        flat[i] = keep
        gf[i] = (up - down) / (2 * eps)
    return g


@settings(max_examples=50, deadline=None)
@given(ra=st.integers(2, 3), rb=st.integers(2, 3), k=st.integers(1, 4), normalize=st.booleans(),
       ia=st.integers(1, 2), ib=st.integers(1, 2), seed=st.integers(0, 2**16))  # fmt: skip
def test_matches_the_float64_reference(ra: int, rb: int, k: int, normalize: bool, ia: int, ib: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ia, ib = min(ia, ra - 1), min(ib, rb - 1)
    sa = [2] + [int(rng.integers(1, 4)) for _ in range(ra - 1)]
    sb = [2] + [int(rng.integers(1, 4)) for _ in range(rb - 1)]
    sa[ia] = sb[ib] = k
    a, b = rng.normal(size=sa).astype(np.float32), rng.normal(size=sb).astype(np.float32)

    def ref(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if normalize:
            x = x / np.sqrt((x * x).sum(axis=ia, keepdims=True))
            y = y / np.sqrt((y * y).sum(axis=ib, keepdims=True))
        xm, ym = np.moveaxis(x, ia, -1), np.moveaxis(y, ib, 1)
        out = xm.reshape(2, -1, k) @ ym.reshape(2, k, -1)
        rest = [d for i, d in enumerate(x.shape) if i not in (0, ia)] + [
            d for i, d in enumerate(y.shape) if i not in (0, ib)
        ]
        return out.reshape(2, *(rest or [1]))

    layer = L.Dot(axes=(ia, ib), normalize=normalize)
    want = ref(a.astype(np.float64), b.astype(np.float64))
    dy = rng.normal(size=want.shape).astype(np.float32)
    y, (da, db) = run(layer, a, b, dy)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(da, num_grad(lambda v: float((ref(v, b) * dy).sum()), a), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, num_grad(lambda v: float((ref(a, v) * dy).sum()), b), rtol=1e-4, atol=1e-4)


def test_luong_attention_graph_trains() -> None:
    enc_in, dec_in = keras.Input((7, 3)), keras.Input((5, 2))
    enc = L.LSTM(8, return_sequences=True)(enc_in)
    dec = L.LSTM(8, return_sequences=True)(dec_in)
    scores = L.Dot(axes=2)([dec, enc])  # (batch, 5, 7)
    weights = L.Softmax(axis=-1)(scores)
    context = L.Dot(axes=(2, 1))([weights, enc])  # (batch, 5, 8)
    out = L.Dense(1)(L.Concatenate()([context, dec]))
    model = keras.Model([enc_in, dec_in], out)
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(16, 7, 3)).astype(np.float32), rng.normal(size=(16, 5, 2)).astype(np.float32)]
    y = rng.normal(size=(16, 5, 1)).astype(np.float32)
    before = model.evaluate(xs, y, verbose=0)
    model.fit(xs, y, epochs=10, verbose=0)
    assert model.evaluate(xs, y, verbose=0) < before


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"Dot 'd': the dotted axes must have the same size"):
        L.Dot(axes=2, name="d")([keras.Input((4, 3)), keras.Input((4, 2))])
    with pytest.raises(ValueError, match=r"Dot 'd': axes=\[0, 1\] must name a non-batch axis"):
        L.Dot(axes=(0, 1), name="d")([keras.Input((4,)), keras.Input((4,))])
    with pytest.raises(ValueError, match=r"axes must be an int or a pair of ints"):
        L.Dot(axes="x")
