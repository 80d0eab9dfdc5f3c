"""seqcore's Sequential against Keras 3 on the same weights and data: predictions, parameter counts,
and the loss and weights after a few train_on_batch steps (SGD, SGD+Nesterov, Adam; mse, mae,
binary and categorical cross-entropy; masking, go_backwards, GRU reset_before, a regularizer; zero outputs
at masked steps (Bidirectional, zero_output_for_mask) and the masked GlobalAveragePooling1D).

Goldens: tests/golden/model_goldens.npz, written once by tests/golden/generate_model_goldens.py
(Keras 3.15.1 / TensorFlow 2.21); Keras is not needed here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import seqcore as keras

L = keras.layers
G = np.load(Path(__file__).parent / "golden" / "model_goldens.npz")
CASES = sorted({k.split("__")[0] for k in G.files})


def build(case: str) -> keras.Sequential:
    if case == "lstm_td":
        return keras.Sequential([keras.Input((6, 3)), L.LSTM(5, return_sequences=True), L.TimeDistributed(L.Dense(2))])
    if case == "gru_sigmoid_bce_adam":
        return keras.Sequential([keras.Input((5, 2)), L.GRU(4), L.Dense(1, activation="sigmoid")])
    if case == "lstm_back_softmax_nesterov":
        return keras.Sequential([keras.Input((7, 3)), L.LSTM(4, go_backwards=True), L.Dense(3, activation="softmax")])
    if case == "masked_lstm_regularized":
        reg = keras.regularizers.l1_l2(l1=0.01, l2=0.01)
        return keras.Sequential(
            [keras.Input((6, 2)), L.Masking(0.0), L.LSTM(4, return_sequences=True),
             L.TimeDistributed(L.Dense(1, kernel_regularizer=reg))]
        )  # fmt: skip
    if case == "gru_reset_before_mae":
        return keras.Sequential(
            [keras.Input((4, 3)), L.GRU(3, reset_after=False, return_sequences=True), L.Dense(2, activation="tanh")]
        )
    if case == "bidir_lstm_concat_seq":
        return keras.Sequential([keras.Input((5, 3)), L.Bidirectional(L.LSTM(3, return_sequences=True)), L.Dense(1)])
    if case == "bidir_gru_sum_masked":
        return keras.Sequential(
            [keras.Input((6, 2)), L.Masking(0.0), L.Bidirectional(L.GRU(4), merge_mode="sum"), L.Dense(2)]
        )
    if case == "cnn_lstm":
        return keras.Sequential(
            [keras.Input((3, 8, 1)), L.TimeDistributed(L.Conv1D(4, 3, activation="relu")),
             L.TimeDistributed(L.MaxPooling1D(2)), L.TimeDistributed(L.Flatten()), L.LSTM(5), L.Dense(1)]
        )  # fmt: skip
    if case == "conv_causal_pool_global":
        return keras.Sequential(
            [keras.Input((12, 3)), L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="tanh"),
             L.AveragePooling1D(2, padding="same"), L.Conv1D(3, 2, strides=2, padding="same"),
             L.GlobalMaxPooling1D(), L.Dense(2)]
        )  # fmt: skip
    if case == "rmsprop_centered_momentum":
        return keras.Sequential([keras.Input((5, 3)), L.GRU(4, return_sequences=True), L.Dense(2)])
    if case == "adagrad":
        return keras.Sequential([keras.Input((5, 3)), L.LSTM(4), L.Dense(2)])
    if case == "bidir_lstm_masked_seq":
        return keras.Sequential(
            [keras.Input((6, 3)), L.Masking(0.0), L.Bidirectional(L.LSTM(3, return_sequences=True)), L.Dense(2)]
        )
    if case == "gru_back_zero_output_masked":
        return keras.Sequential(
            [keras.Input((6, 2)), L.Masking(0.0),
             L.GRU(4, return_sequences=True, go_backwards=True, zero_output_for_mask=True), L.Dense(1)]
        )  # fmt: skip
    if case == "masked_lstm_global_average":
        return keras.Sequential(
            [keras.Input((7, 2)), L.Masking(0.0), L.LSTM(4, return_sequences=True), L.GlobalAveragePooling1D(),
             L.Dense(2)]
        )  # fmt: skip
    raise KeyError(case)


@pytest.mark.parametrize("case", CASES)
def test_matches_keras(case: str) -> None:
    cfg = json.loads(str(G[f"{case}__config"]))
    m = build(case)
    n_w = len(m.get_weights())
    m.set_weights([G[f"{case}__w{i}"] for i in range(n_w)])
    keras_params = [p for p in cfg["params"]]
    ours = [layer.count_params() for layer in m.layers]
    assert [p for p in keras_params if p] == [p for p in ours if p]  # Keras lists Masking (0 params) too
    x, y = G[f"{case}__x"], G[f"{case}__y"]
    np.testing.assert_allclose(m.predict(x, verbose=0), G[f"{case}__pred"], rtol=1e-5, atol=2e-6)
    name, kw = cfg["optimizer"]
    opt = keras.optimizers.get(name).__class__(**kw)
    m.compile(optimizer=opt, loss=cfg["loss"])
    losses = [m.train_on_batch(x, y) for _ in range(cfg["steps"])]
    np.testing.assert_allclose(losses, G[f"{case}__losses"], rtol=2e-5, atol=1e-6)
    for i, w in enumerate(m.get_weights()):
        np.testing.assert_allclose(w, G[f"{case}__after{i}"], rtol=1e-4, atol=2e-5, err_msg=f"weight {i}")
