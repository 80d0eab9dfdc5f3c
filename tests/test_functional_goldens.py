"""seqcore's Functional API, nested models and subclassing against Keras 3, on the same weights and data.

Each case is built below exactly as Keras code (``import seqcore as keras``, same layer names): residual
connections through ``Add`` and the ``+`` operator, two inputs (a list) and two outputs (loss, loss-weight
and metric dicts), a layer shared by two inputs, an encoder whose LSTM states start the decoder, a Functional
model nested in a Functional model and in a Sequential, ``keras.ops`` on symbolic tensors, a subclassed
``keras.Model`` (slicing ``x[:, -1]``) and a subclassed ``Layer`` (``add_weight``), Embedding masks through
Bidirectional and GlobalAveragePooling1D, and the merge layers. Checked against Keras: the layers (names,
classes, ``count_params()``, in ``model.layers`` order), the weight shapes in ``get_weights()`` order,
``predict_on_batch``, the logs of 3 ``train_on_batch(..., return_dict=True)`` steps (SGD(0.05)) and the
weights after them.

Goldens: tests/golden/functional_goldens.npz and .json, written once by
tests/golden/generate_functional_goldens.py (Keras 3.15.1 / TensorFlow 2.21.0); Keras is not needed here.
Keras orders ``model.layers`` (and so ``get_weights()``) by decreasing depth from the outputs, ties broken
by a depth-first walk from the outputs: in ``two_branch`` the static branch's Dense comes before the LSTM.

The subclasses are defined inside their builders so that a missing base class fails those cases only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import seqcore as keras

L = keras.layers
GOLDEN = Path(__file__).parent / "golden"
G = np.load(GOLDEN / "functional_goldens.npz")
INFO = json.loads((GOLDEN / "functional_goldens.json").read_text(encoding="utf-8"))
CASES = list(INFO["cases"])


# ---------------------------------------------------------------------------------------------------------
# The models, as Keras code. Each builder returns (model, compile keyword arguments besides the optimizer).


def residual_conv() -> tuple[Any, dict]:
    inp = keras.Input((16, 4), name="seq")
    h = L.Conv1D(8, 3, padding="same", activation="relu", name="conv_a")(inp)
    h = L.Conv1D(4, 3, padding="same", name="conv_b")(h)
    h = L.Add(name="residual")([h, inp])
    h = L.Activation("relu", name="relu")(h)
    h = L.GlobalAveragePooling1D(name="gap")(h)
    out = L.Dense(1, name="out")(h)
    return keras.Model(inp, out, name="residual_conv"), {"loss": "mse"}


def two_branch() -> tuple[Any, dict]:
    seq = keras.Input((12, 3), name="seq")
    static = keras.Input((5,), name="static")
    a = L.LSTM(6, name="lstm")(seq)
    b = L.Dense(4, activation="relu", name="static_dense")(static)
    b = L.Dropout(0.0, name="dropout")(b)
    h = L.Concatenate(name="concat")([a, b])
    out = L.Dense(1, name="out")(h)
    return keras.Model([seq, static], out, name="two_branch"), {"loss": "mse"}


def two_outputs() -> tuple[Any, dict]:
    inp = keras.Input((10, 3), name="seq")
    h = L.GRU(8, name="gru")(inp)
    reg = L.Dense(1, name="reg")(h)
    cls = L.Dense(3, activation="softmax", name="cls")(h)
    return keras.Model(inp, [reg, cls], name="two_outputs"), {
        "loss": {"reg": "mse", "cls": "categorical_crossentropy"},
        "loss_weights": {"reg": 1.0, "cls": 0.5},
        "metrics": {"reg": ["mae"]},
    }


def siamese() -> tuple[Any, dict]:
    a = keras.Input((8, 3), name="left")
    b = keras.Input((8, 3), name="right")
    shared = L.LSTM(5, name="shared_lstm")
    ea, eb = shared(a), shared(b)
    d = L.Subtract(name="diff")([ea, eb])
    sq = L.Multiply(name="squared")([d, d])
    out = L.Dense(1, activation="sigmoid", name="same")(sq)
    return keras.Model([a, b], out, name="siamese"), {"loss": "binary_crossentropy"}


def encoder_decoder() -> tuple[Any, dict]:
    enc_in = keras.Input((7, 3), name="encoder_in")
    dec_in = keras.Input((5, 2), name="decoder_in")
    _, h, c = L.LSTM(6, return_state=True, name="encoder")(enc_in)
    dec = L.LSTM(6, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    out = L.TimeDistributed(L.Dense(2, name="proj"), name="td_proj")(dec)
    return keras.Model([enc_in, dec_in], out, name="encoder_decoder"), {"loss": "mse"}


def _inner_mlp() -> Any:
    inner_in = keras.Input((6,), name="inner_in")
    h = L.Dense(5, activation="relu", name="inner_hidden")(inner_in)
    inner_out = L.Dense(3, name="inner_out")(h)
    return keras.Model(inner_in, inner_out, name="inner")


def nested_model() -> tuple[Any, dict]:
    inner = _inner_mlp()
    inp = keras.Input((6,), name="outer_in")
    out = L.Dense(1, name="out")(inner(inp))
    return keras.Model(inp, out, name="nested_model"), {"loss": "mse"}


def functional_in_sequential() -> tuple[Any, dict]:
    m = keras.Sequential([keras.Input((6,)), _inner_mlp(), L.Dense(1, name="out")], name="functional_in_sequential")
    return m, {"loss": "mse"}


def transformer_residual() -> tuple[Any, dict]:
    inp = keras.Input((9, 4), name="tokens")
    x = L.Dense(8, activation="relu", name="ff_up")(inp)
    x = L.Dense(4, name="ff_down")(x)
    x = x + inp
    x = keras.ops.mean(x, axis=1)
    out = L.Dense(1, name="out")(x)
    return keras.Model(inp, out, name="transformer_residual"), {"loss": "mse"}


def subclassed_model() -> tuple[Any, dict]:
    class SeqHead(keras.Model):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.lstm = L.LSTM(6, return_sequences=True, name="lstm")
            self.proj = L.Dense(4, activation="relu", name="proj")
            self.head = L.Dense(1, name="head")

        def call(self, inputs: Any, training: Any = None) -> Any:
            seq = self.lstm(inputs)
            last = seq[:, -1]
            pooled = keras.ops.mean(seq, axis=1)
            return self.head(self.proj(keras.ops.concatenate([last, pooled], axis=-1)))

    return SeqHead(name="seq_head"), {"loss": "mse"}


def subclassed_layer() -> tuple[Any, dict]:
    class Linear(keras.layers.Layer):
        def __init__(self, units: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape: tuple[int | None, ...]) -> None:
            self.w = self.add_weight(
                shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True, name="w"
            )
            self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True, name="b")

        def call(self, x: Any) -> Any:
            return keras.ops.tanh(keras.ops.matmul(x, self.w) + self.b)

    inp = keras.Input((5,), name="features")
    h = Linear(4, name="linear")(inp)
    out = L.Dense(1, name="out")(h)
    return keras.Model(inp, out, name="subclassed_layer"), {"loss": "mse"}


def masked_bidirectional() -> tuple[Any, dict]:
    inp = keras.Input((10,), dtype="int32", name="tokens")
    h = L.Embedding(20, 4, mask_zero=True, name="embed")(inp)
    h = L.Bidirectional(L.LSTM(5, return_sequences=True, name="lstm"), name="bilstm")(h)
    h = L.GlobalAveragePooling1D(name="gap")(h)
    out = L.Dense(1, name="out")(h)
    return keras.Model(inp, out, name="masked_bidirectional"), {"loss": "mse"}


def merge_zoo() -> tuple[Any, dict]:
    a_in = keras.Input((6,), name="a")
    b_in = keras.Input((6,), name="b")
    a = L.Dense(4, name="dense_a")(a_in)
    b = L.Dense(4, name="dense_b")(b_in)
    merged = [
        L.Average(name="average")([a, b]),
        L.Maximum(name="maximum")([a, b]),
        L.Minimum(name="minimum")([a, b]),
        L.Multiply(name="multiply")([a, b]),
        L.Add(name="add")([a, b]),
        L.Subtract(name="subtract")([a, b]),
        L.Dot(axes=1, name="dot")([a, b]),
        L.Dot(axes=1, normalize=True, name="cosine")([a, b]),
    ]
    h = L.Concatenate(name="concat")(merged)
    out = L.Dense(1, name="out")(h)
    return keras.Model([a_in, b_in], out, name="merge_zoo"), {"loss": "mse"}


def ops_zoo() -> tuple[Any, dict]:
    ops = keras.ops
    inp = keras.Input((6, 4), name="seq")
    h = L.Dense(4, name="proj")(inp)
    scores = ops.matmul(h, ops.transpose(h, axes=(0, 2, 1)))
    attn = ops.softmax(ops.divide(scores, 2.0), axis=-1)
    ctx = ops.matmul(attn, h)
    s = ops.stack([ops.sum(ctx, axis=1), ops.max(ctx, axis=1)], axis=1)
    r = ops.squeeze(ops.expand_dims(ops.reshape(s, (-1, 8)), 1), axis=1)
    z = ops.sigmoid(r) * ops.tanh(r) - ops.relu(r) / 2.0
    z = ops.add(ops.multiply(z, 3.0), ops.subtract(r, 1.0))
    out = L.Dense(1, name="out")(z)
    return keras.Model(inp, out, name="ops_zoo"), {"loss": "mse"}


def conv_pool_repeat() -> tuple[Any, dict]:
    inp = keras.Input((8, 3), name="seq")
    c = L.Conv1D(4, 3, activation="relu", name="conv")(inp)
    p = L.MaxPooling1D(2, name="pool")(c)
    flat = L.Flatten(name="flatten")(p)
    grid = L.Reshape((3, 2), name="reshape")(L.Dense(6, name="dense6")(flat))
    rep = L.RepeatVector(3, name="repeat")(L.GlobalMaxPooling1D(name="gmp")(p))
    h = L.Concatenate(axis=-1, name="concat")([grid, rep])
    h = L.GRU(3, name="gru")(h)
    out = L.Dense(1, name="out")(h)
    return keras.Model(inp, out, name="conv_pool_repeat"), {"loss": "mse"}


BUILDERS = {
    f.__name__: f
    for f in (
        residual_conv,
        two_branch,
        two_outputs,
        siamese,
        encoder_decoder,
        nested_model,
        functional_in_sequential,
        transformer_residual,
        subclassed_model,
        subclassed_layer,
        masked_bidirectional,
        merge_zoo,
        ops_zoo,
        conv_pool_repeat,
    )
}


# ---------------------------------------------------------------------------------------------------------


def test_goldens_cover_every_case() -> None:
    assert INFO["failed"] == {}
    assert set(CASES) == set(BUILDERS)
    assert len(CASES) >= 10


def _data(case: str) -> tuple[Any, Any, dict]:
    """The golden inputs and targets, packed as the generator passed them to Keras (array, list or dict)."""
    info = INFO["cases"][case]
    xs = [G[f"{case}__x{j}"] for j in range(sum(k.startswith(f"{case}__x") for k in G.files))]
    ys = [G[f"{case}__y{k}"] for k in range(sum(k.startswith(f"{case}__y") for k in G.files))]

    def pack(arrays: list[np.ndarray], fmt: str, names: list[str] | None) -> Any:
        if fmt == "array":
            (only,) = arrays
            return only
        return list(arrays) if fmt == "list" else dict(zip(names or [], arrays, strict=True))

    return pack(xs, info["x_format"], info["input_names"]), pack(ys, info["y_format"], info["output_names"]), info


def _golden_model(case: str) -> tuple[Any, dict, Any, Any, dict]:
    """The case's model built and given the golden initial weights (after checking their shapes)."""
    x, y, info = _data(case)
    m, compile_kw = BUILDERS[case]()
    assert compile_kw == info["compile"]  # the test and the generator compile alike
    if info["model_class"] not in ("Functional", "Sequential"):  # subclassed: built by a call on the batch
        m(x)
    shapes = [list(np.shape(w)) for w in m.get_weights()]
    assert shapes == info["weight_shapes"], "get_weights() order or shapes differ from Keras"
    m.set_weights([G[f"{case}__w{i}"] for i in range(info["n_weights"])])
    return m, compile_kw, x, y, info


@pytest.mark.parametrize("case", CASES)
def test_structure_matches_keras(case: str) -> None:
    m, _, _, _, info = _golden_model(case)
    ours = [(layer.name, type(layer).__name__, layer.count_params()) for layer in m.layers]
    theirs = [(layer["name"], layer["class"], layer["params"]) for layer in info["layers"]]
    assert ours == theirs
    assert m.count_params() == info["total_params"]
    assert sum(int(np.prod(w.shape)) for w in m.trainable_weights) == info["trainable_params"]
    assert sum(int(np.prod(w.shape)) for w in m.non_trainable_weights) == info["non_trainable_params"]
    if info["output_names"] is not None:
        assert list(m.output_names) == info["output_names"]
        assert [list(t.shape) for t in m.outputs] == info["model_output_shapes"]


@pytest.mark.parametrize("case", CASES)
def test_predict_on_batch_matches_keras(case: str) -> None:
    m, _, x, _, info = _golden_model(case)
    out = m.predict_on_batch(x)
    preds = list(out) if isinstance(out, list | tuple) else [out]
    assert [list(np.shape(p)) for p in preds] == info["pred_shapes"]
    for k, p in enumerate(preds):
        np.testing.assert_allclose(p, G[f"{case}__pred{k}"], rtol=1e-5, atol=1e-6, err_msg=f"output {k}")


@pytest.mark.parametrize("case", CASES)
def test_train_on_batch_matches_keras(case: str) -> None:
    m, compile_kw, x, y, info = _golden_model(case)
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), **compile_kw)
    for step, golden_logs in enumerate(info["logs"]):
        logs = m.train_on_batch(x, y, return_dict=True)
        assert sorted(logs) == sorted(golden_logs), f"step {step}: log keys"
        for key, value in golden_logs.items():
            np.testing.assert_allclose(float(logs[key]), value, rtol=1e-5, atol=1e-7, err_msg=f"step {step}: {key}")
    np.testing.assert_allclose([lg["loss"] for lg in info["logs"]], G[f"{case}__loss"], rtol=1e-7)  # npz == json
    after = m.get_weights()
    assert len(after) == info["n_weights"]
    for i, w in enumerate(after):
        np.testing.assert_allclose(w, G[f"{case}__after{i}"], rtol=1e-5, atol=1e-5, err_msg=f"weight {i}")
