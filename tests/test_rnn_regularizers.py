"""``activity_regularizer`` on LSTM, GRU, Conv1D, Bidirectional and (as in Keras) on every layer.

Keras adds ``activity_regularizer(output) / batch_size`` to the loss in ``Layer.__call__``, in
training and inference; seqcore adds the penalty to the reported loss and its gradient to
dL/d(output) in backward. Checked against Keras goldens (tests/golden/activity_goldens.npz, written
by tests/golden/generate_activity_goldens.py with Keras 3.15.1 / TensorFlow 2.21; Keras is not
needed here) and against central differences of a float64 NumPy reference.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import seqcore as keras
from seqcore import reference_rnn

L = keras.layers
G = np.load(Path(__file__).parent / "golden" / "activity_goldens.npz")
CASES = sorted({k.split("__")[0] for k in G.files})


def make_regularizer(spec: dict[str, float] | None) -> Any:
    return None if spec is None else keras.regularizers.L1L2(l1=spec.get("l1", 0.0), l2=spec.get("l2", 0.0))


def make_layer(spec: dict[str, Any], drop_activity: bool = False) -> Any:
    """The generator's spec -> a seqcore layer (the same code path as its Keras twin)."""
    spec = dict(spec)
    cls = spec.pop("class")
    if cls == "Sequential":
        return keras.Sequential([make_layer(s, drop_activity) for s in spec["layers"]])
    if "layer" in spec:
        spec["layer"] = make_layer(spec["layer"], drop_activity)
    if "activity_regularizer" in spec:
        reg = spec.pop("activity_regularizer")
        if not drop_activity:
            spec["activity_regularizer"] = make_regularizer(reg)
    return getattr(L, cls)(**spec)


def build(case: str, drop_activity: bool = False) -> tuple[keras.Sequential, dict[str, Any]]:
    spec = json.loads(str(G[f"{case}__spec"]))
    with warnings.catch_warnings():
        # TimeDistributed(Dense(activity_regularizer=...)) warns that Keras ignores it (tested below).
        warnings.simplefilter("ignore", UserWarning)
        layers = [make_layer(s, drop_activity) for s in spec["layers"]]
    model = keras.Sequential([keras.Input(tuple(spec["input"])), *layers])
    model.set_weights([G[f"{case}__w{i}"] for i in range(len(model.get_weights()))])
    name, kwargs = spec["optimizer"]
    model.compile(getattr(keras.optimizers, name)(**kwargs), spec["loss"])
    return model, spec


@pytest.mark.parametrize("case", CASES)
def test_matches_keras(case: str) -> None:
    model, spec = build(case)
    x, y = G[f"{case}__x"], G[f"{case}__y"]
    np.testing.assert_allclose(model.predict(x, verbose=0), G[f"{case}__pred"], rtol=1e-5, atol=2e-6)
    # evaluate: the loss of the inference forward includes its activity penalty, as in Keras
    assert model.evaluate(x, y, batch_size=len(x), verbose=0) == pytest.approx(float(G[f"{case}__eval_loss"]), 2e-6)
    losses = [model.train_on_batch(x, y) for _ in range(len(G[f"{case}__losses"]))]
    np.testing.assert_allclose(losses, G[f"{case}__losses"], rtol=2e-5, atol=1e-6)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, G[f"{case}__after{i}"], rtol=1e-4, atol=2e-5, err_msg=f"weight {i}")


@pytest.mark.parametrize("case", CASES)
def test_goldens_depend_on_the_activity_penalty(case: str) -> None:
    # Without the regularizers the same model must miss the goldens: the cases test something.
    model, _ = build(case, drop_activity=True)
    x, y = G[f"{case}__x"], G[f"{case}__y"]
    assert abs(model.evaluate(x, y, verbose=0) - float(G[f"{case}__eval_loss"])) > 1e-3


def test_time_distributed_warns_that_keras_ignores_the_wrapped_layers_penalty() -> None:
    with pytest.warns(UserWarning, match=r"TimeDistributed 'td': the activity_regularizer of the wrapped Dense"):
        L.TimeDistributed(L.Dense(2, activity_regularizer="l2"), name="td")
    # On the TimeDistributed itself it counts (divided by the batch, like Dense on a 3-D input).
    x = np.random.default_rng(0).normal(size=(4, 3, 2)).astype(np.float32)
    td = keras.Sequential(
        [keras.Input((3, 2)), L.TimeDistributed(L.Dense(2), activity_regularizer=keras.regularizers.L2(0.1))]
    )
    dense = keras.Sequential([keras.Input((3, 2)), L.Dense(2, activity_regularizer=keras.regularizers.L2(0.1))])
    dense.set_weights(td.get_weights())
    for m in (td, dense):
        m.compile("sgd", "mse")
    out = td.predict(x, verbose=0)
    y = np.zeros_like(out)
    expected = float(np.mean(out.astype(np.float64) ** 2) + 0.1 * np.sum(out.astype(np.float64) ** 2) / 4)
    assert td.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-6)
    assert dense.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-6)


# ----- gradients against central differences of a float64 reference --------------------------------
def _reference_loss(cell: str, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray, lengths: np.ndarray,
                    l2: float, return_sequences: bool, go_backwards: bool) -> float:  # fmt: skip
    """mse(out, y) + l2 * sum(out**2) / batch for a lone LSTM/GRU layer after Masking, in float64.
    With return_sequences the mask reaches the loss (mean over valid steps, Keras's prefix mask in
    output order) but not the penalty, which covers every returned step."""
    k, rk, b = (np.asarray(w, np.float64) for w in weights)
    if cell == "lstm":
        outputs, h, _ = reference_rnn.lstm_forward(x, k, rk, b, lengths=lengths, go_backwards=go_backwards)
    else:
        outputs, h = reference_rnn.gru_forward(x, k, rk, b, lengths=lengths, go_backwards=go_backwards)
    # Keras's last output: the output of the last processing step (zeros for a length-0 sample).
    out = outputs if return_sequences else outputs[:, -1]
    if return_sequences:
        valid = np.arange(x.shape[1])[None, :] < lengths[:, None]
        mse = np.mean((out - y) ** 2, axis=-1)[valid].sum() / valid.sum()
    else:
        mse = np.mean((out - y) ** 2)
    return float(mse + l2 * np.sum(out**2) / len(x))


@pytest.mark.parametrize(
    ("cell", "return_sequences", "go_backwards"),
    [("lstm", True, False), ("lstm", False, False), ("gru", True, True), ("gru", False, False)],
)
def test_gradient_matches_central_differences(cell: str, return_sequences: bool, go_backwards: bool) -> None:
    r = np.random.default_rng(7)
    b, t, f, h, l2 = 3, 5, 2, 3, 0.3
    x = r.normal(size=(b, t, f)).astype(np.float32)
    lengths = np.array([5, 3, 1])
    x[np.arange(t)[None, :] >= lengths[:, None]] = 0.0
    layer_cls = L.LSTM if cell == "lstm" else L.GRU
    layer = layer_cls(h, return_sequences=return_sequences, go_backwards=go_backwards,
                      activity_regularizer=keras.regularizers.L2(l2))  # fmt: skip
    model = keras.Sequential([keras.Input((t, f)), L.Masking(0.0), layer])
    model.set_weights([r.normal(scale=0.5, size=w.shape).astype(np.float32) for w in model.get_weights()])
    y = r.normal(size=model.predict(x, verbose=0).shape).astype(np.float32)
    w0 = [w.astype(np.float64) for w in model.get_weights()]
    model.compile(keras.optimizers.SGD(learning_rate=1.0), "mse")
    # The reported loss is the reference loss, penalty included.
    reference = _reference_loss(cell, w0, x, y, lengths, l2, return_sequences, go_backwards)
    assert model.test_on_batch(x, y) == pytest.approx(reference, rel=1e-5)
    model.train_on_batch(x, y)
    grads = [a - w for a, w in zip(w0, model.get_weights(), strict=True)]  # SGD(1): w1 = w0 - g
    eps = 1e-6
    for i, g in enumerate(grads):
        fd = np.zeros_like(g)
        for idx in np.ndindex(g.shape):
            wp = [w.copy() for w in w0]
            wm = [w.copy() for w in w0]
            wp[i][idx] += eps
            wm[i][idx] -= eps
            fp = _reference_loss(cell, wp, x, y, lengths, l2, return_sequences, go_backwards)
            fm = _reference_loss(cell, wm, x, y, lengths, l2, return_sequences, go_backwards)
            fd[idx] = (fp - fm) / (2 * eps)
        np.testing.assert_allclose(g, fd, rtol=2e-4, atol=2e-6, err_msg=f"{cell} weight {i}")


def test_masked_sequence_penalty_counts_the_repeated_outputs_like_keras() -> None:
    # Keras regularizes the whole returned sequence, padded steps (which repeat the last output)
    # included; the loss's mask does not apply to it.
    x = np.zeros((2, 4, 1), np.float32)
    x[0, :4], x[1, :1] = 1.0, 1.0
    lstm = L.LSTM(2, return_sequences=True, activity_regularizer=keras.regularizers.L1(0.5))
    m = keras.Sequential([keras.Input((4, 1)), L.Masking(0.0), lstm])
    out = m.predict(x, verbose=0)
    assert np.array_equal(out[1, 1:], np.repeat(out[1, :1], 3, axis=0))
    m.compile("sgd", "mse")
    mse = float(np.mean(out.astype(np.float64)[0] ** 2) * 4 + np.mean(out.astype(np.float64)[1, :1] ** 2)) / 5
    assert m.evaluate(x, np.zeros_like(out), verbose=0) == pytest.approx(mse + 0.5 * np.abs(out).sum() / 2, 1e-6)


def test_activity_regularizer_survives_config_and_saving(tmp_path: Path) -> None:
    reg = keras.regularizers.L1L2(l1=0.01, l2=0.02)
    m = keras.Sequential([
        keras.Input((5, 2)),
        L.Conv1D(3, 2, padding="causal", activity_regularizer=reg),
        L.Bidirectional(L.GRU(2, return_sequences=True, activity_regularizer="l2"), activity_regularizer="l1"),
        L.LSTM(2, activity_regularizer=reg),
        L.Dropout(0.1, activity_regularizer="l2"),  # any layer takes it, as Keras's Layer does
    ])  # fmt: skip
    cfg = m.get_config()
    clone = keras.Sequential.from_config(cfg)
    assert clone.get_config() == cfg
    assert clone.layers[2].activity_regularizer.get_config() == {"l1": 0.01, "l2": 0.02}
    assert clone.layers[1].forward_layer.activity_regularizer.get_config() == {"l2": 0.01}
    m.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(3, 5, 2)).astype(np.float32)
    y = np.zeros((3, 2), np.float32)
    m.save(tmp_path / "m.seqcore")
    loaded = keras.saving.load_model(tmp_path / "m.seqcore")
    assert loaded.evaluate(x, y, verbose=0) == m.evaluate(x, y, verbose=0)
    assert m.activity_loss() > 0


def test_fit_reports_the_penalty_in_the_loss() -> None:
    x = np.random.default_rng(1).normal(size=(8, 4, 2)).astype(np.float32)
    y = np.zeros((8, 1), np.float32)
    m = keras.Sequential([keras.Input((4, 2)), L.GRU(3, activity_regularizer=keras.regularizers.L2(10.0)), L.Dense(1)])
    m.compile(keras.optimizers.SGD(0.0), "mse")  # no update: every batch sees the same weights
    h = m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    gru = keras.Sequential([keras.Input((4, 2)), L.GRU(3)])
    gru.set_weights(m.get_weights()[:3])
    states = gru.predict(x, verbose=0).astype(np.float64)
    pred = m.predict(x, verbose=0).astype(np.float64)
    per_batch = [np.mean(pred[i : i + 4] ** 2) + 10.0 * np.sum(states[i : i + 4] ** 2) / 4 for i in (0, 4)]
    assert h.history["loss"][0] == pytest.approx(np.mean(per_batch), rel=1e-6)
    assert m.evaluate(x, y, batch_size=4, verbose=0) == pytest.approx(np.mean(per_batch), rel=1e-6)


def test_a_layer_called_on_its_own_reports_its_penalty() -> None:
    # Keras: layer(x) records activity_regularizer(output) / batch in layer.losses.
    x = np.random.default_rng(3).normal(size=(5, 4, 2)).astype(np.float32)
    for layer in (L.LSTM(3, activity_regularizer="l1"), L.Conv1D(2, 2, activity_regularizer="l2")):
        out = layer(x).astype(np.float64)
        penalty = 0.01 * (np.abs(out).sum() if isinstance(layer, L.LSTM) else (out**2).sum()) / 5
        assert layer.activity_loss() == pytest.approx(penalty, rel=1e-6)
