"""Embedding: Keras 3 goldens (with mask_zero feeding an LSTM), the gather/scatter-add against a
float64 reference, errors, config/saving and Keras interop.

Goldens from Keras 3.15.1 / TF 2.21, generated once with (CI needs neither)::

    import numpy as np, keras as K
    x = (np.arange(6 * 9).reshape(6, 9) * 7 % 29 + 1).astype(np.int32); x[2, 5:] = 0; x[4, 2:] = 0
    y = (np.arange(6, dtype=np.float32).reshape(6, 1) - 2.5) / 3
    km = K.Sequential([K.Input((9,)), K.layers.Embedding(30, 5, mask_zero=True), K.layers.LSTM(7),
                       K.layers.Dense(1)])
    ws = [(np.sin(np.arange(w.size) * 0.37 + i) * 0.3).reshape(w.shape).astype(np.float32)
          for i, w in enumerate(km.get_weights())]
    km.set_weights(ws)
    print(km.predict(x, verbose=0).ravel().tolist())
    km.compile(K.optimizers.SGD(0.1), "mse")
    print([float(km.train_on_batch(x, y)) for _ in range(3)])
    print(km.get_weights()[0][[0, 1, 8, 29]].tolist())
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import seqcore as keras
from hypothesis import given, settings
from hypothesis import strategies as st

L = keras.layers

PRED = [-0.34246841073036194, -0.34170258045196533, -0.32175272703170776, -0.33390897512435913,
        -0.3351042866706848, -0.3154526650905609]  # fmt: skip
LOSSES = [0.4262904226779938, 0.38276636600494385, 0.35639604926109314]
ROWS = [
    [0.0, 0.10848463326692581, 0.20228637754917145, 0.26870959997177124, 0.29876425862312317],
    [0.28833428025245667, 0.23900914192199707, 0.15721526741981506, 0.05413774773478508, -0.05614076182246208],
    [0.23639148473739624, 0.15379565954208374, 0.05014338716864586, -0.060266826301813126, -0.16231340169906616],
    [-0.07261227816343307, -0.17200784385204315, -0.24985963106155396, -0.2932070791721344, -0.2959493398666382],
]


def golden_model() -> tuple[keras.Sequential, np.ndarray, np.ndarray]:
    x = (np.arange(6 * 9).reshape(6, 9) * 7 % 29 + 1).astype(np.int32)
    x[2, 5:] = 0
    x[4, 2:] = 0
    y = (np.arange(6, dtype=np.float32).reshape(6, 1) - 2.5) / 3
    m = keras.Sequential([keras.Input((9,)), L.Embedding(30, 5, mask_zero=True), L.LSTM(7), L.Dense(1)])
    ws = [(np.sin(np.arange(w.size) * 0.37 + i) * 0.3).reshape(w.shape).astype(np.float32)
          for i, w in enumerate(m.get_weights())]  # fmt: skip
    m.set_weights(ws)
    return m, x, y


def test_matches_keras_with_mask_zero_and_training() -> None:
    m, x, y = golden_model()
    np.testing.assert_allclose(m.predict(x, verbose=0).ravel(), PRED, rtol=1e-5, atol=1e-6)
    m.compile(keras.optimizers.SGD(0.1), "mse")
    got = [float(m.train_on_batch(x, y)) for _ in range(3)]
    np.testing.assert_allclose(got, LOSSES, rtol=1e-5)
    np.testing.assert_allclose(m.get_weights()[0][[0, 1, 8, 29]], ROWS, rtol=1e-5, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    batch=st.integers(0, 4),
    shape=st.sampled_from([(), (1,), (5,), (3, 2)]),
    vocab=st.integers(1, 12),
    dim=st.integers(1, 6),
    seed=st.integers(0, 2**31),
    dtype=st.sampled_from(["int32", "int64", "uint8", "float32"]),
)
def test_gather_and_scatter_add_against_float64(batch, shape, vocab, dim, seed, dtype) -> None:
    r = np.random.default_rng(seed)
    layer = L.Embedding(vocab, dim)
    layer._maybe_build(shape)
    table = r.normal(size=(vocab, dim)).astype(np.float32)
    layer.set_weights([table])
    ids = r.integers(0, vocab, size=(batch, *shape)).astype(dtype)  # repeats included
    out, ctx = layer.forward(ids, training=True)
    assert out.shape == (batch, *shape, dim) and out.dtype == np.float32
    np.testing.assert_array_equal(out, table.astype(np.float64)[ids.astype(np.int64)])
    dy = r.normal(size=out.shape).astype(np.float32)
    dx = layer.backward(ctx, dy, need_dx=False)
    want = np.zeros((vocab, dim))
    for i, row in zip(ids.reshape(-1).astype(np.int64), dy.reshape(-1, dim), strict=True):
        want[i] += row
    np.testing.assert_allclose(layer.embeddings.grad, want, rtol=1e-5, atol=1e-5)
    assert dx.shape == ids.shape and not dx.any()


def test_errors_name_the_layer_and_the_fix() -> None:
    layer = L.Embedding(10, 3, name="emb")
    layer._maybe_build((4,))
    with pytest.raises(ValueError, match=r"Embedding 'emb': index 10 is outside \[0, input_dim=10\).*plus 1"):
        layer.forward(np.array([[1, 2, 10, 3]]))
    with pytest.raises(ValueError, match=r"index -1 is outside"):
        layer.forward(np.array([[1, -1, 0, 3]]))
    with pytest.raises(ValueError, match=r"integer indices; received non-integer values"):
        layer.forward(np.array([[1.5, 2, 0, 3]]))
    with pytest.raises(TypeError, match=r"integer indices; received dtype <U1"):
        layer.forward(np.array([["a", "b", "c", "d"]]))
    with pytest.raises(ValueError, match=r"input_dim must be a positive integer"):
        L.Embedding(0, 3)
    with pytest.raises(ValueError, match=r"lora_rank is not supported"):
        L.Embedding(5, 3, lora_rank=2)
    with pytest.warns(UserWarning, match=r"input_length` is deprecated"):
        L.Embedding(5, 3, input_length=7)
    m = keras.Sequential([keras.Input((4,)), L.Embedding(10, 3, mask_zero=True), L.LSTM(2)])
    # pre-padded and post-padded ids give the same last output (the padding keeps the state)
    np.testing.assert_allclose(
        m.predict(np.array([[0, 0, 1, 2]]), verbose=0), m.predict(np.array([[1, 2, 0, 0]]), verbose=0), atol=1e-6
    )


def test_text_classifier_trains_and_round_trips(tmp_path: Any) -> None:
    keras.utils.set_random_seed(0)
    r = np.random.default_rng(1)
    x = r.integers(1, 40, (64, 10))
    for i, n in enumerate(r.integers(3, 11, 64)):
        x[i, n:] = 0  # post-padded variable lengths
    y = (np.isin(x, np.arange(1, 8)).any(axis=1)).astype(np.float32)[:, None]
    m = keras.Sequential(
        [keras.Input((10,)), L.Embedding(40, 8, mask_zero=True, embeddings_regularizer="l2"),
         L.Bidirectional(L.LSTM(8)), L.Dense(1, activation="sigmoid")]
    )  # fmt: skip
    m.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    hist = m.fit(x, y, epochs=15, batch_size=16, verbose=0).history
    assert hist["loss"][-1] < hist["loss"][0]
    m.save(tmp_path / "t.seqcore")
    back = keras.load_model(tmp_path / "t.seqcore")
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))
    cfg = back.layers[0].get_config()
    assert cfg["mask_zero"] is True and cfg["input_dim"] == 40 and cfg["embeddings_regularizer"] is not None


def test_keras_interop_both_ways() -> None:
    K = pytest.importorskip("keras")
    from seqcore import interop

    km = K.Sequential([K.Input((9,)), K.layers.Embedding(30, 5, mask_zero=True), K.layers.GRU(4), K.layers.Dense(1)])
    sm = interop.from_keras(km)
    assert sm.conversion_report.max_abs_diff is not None and sm.conversion_report.max_abs_diff < 1e-5
    assert isinstance(sm.layers[0], L.Embedding) and sm.layers[0].mask_zero
    back = interop.to_keras(sm)
    x = np.random.default_rng(0).integers(1, 30, (3, 9)).astype(np.int32)
    x[1, 4:] = 0
    np.testing.assert_allclose(np.asarray(back.predict(x, verbose=0)), sm.predict(x, verbose=0), atol=1e-5)
