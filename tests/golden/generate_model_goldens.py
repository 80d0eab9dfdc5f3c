"""Writes tests/golden/model_goldens.npz: Keras 3 (TensorFlow backend, CPU) predictions and training
trajectories for small Sequential models, from fixed weights and data, so that tests/test_model_parity.py
checks seqcore's layer API and trainer against Keras without Keras installed.

Run once, by hand, where keras and tensorflow are installed:
    python tests/golden/generate_model_goldens.py
Generated with keras 3.15.1 / tensorflow 2.21.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = Path(__file__).with_name("model_goldens.npz")
STEPS = 3


def build(case: str) -> tuple[keras.Sequential, dict]:
    L = keras.layers
    if case == "lstm_td":
        m = keras.Sequential([keras.Input((6, 3)), L.LSTM(5, return_sequences=True), L.TimeDistributed(L.Dense(2))])
        return m, {"loss": "mse", "optimizer": ["sgd", {"learning_rate": 0.1}], "x": (8, 6, 3), "y": (8, 6, 2)}
    if case == "gru_sigmoid_bce_adam":
        m = keras.Sequential([keras.Input((5, 2)), L.GRU(4), L.Dense(1, activation="sigmoid")])
        return m, {
            "loss": "binary_crossentropy",
            "optimizer": ["adam", {"learning_rate": 0.05}],
            "x": (8, 5, 2),
            "y": "binary",
        }
    if case == "lstm_back_softmax_nesterov":
        m = keras.Sequential([keras.Input((7, 3)), L.LSTM(4, go_backwards=True), L.Dense(3, activation="softmax")])
        return m, {
            "loss": "categorical_crossentropy",
            "optimizer": ["sgd", {"learning_rate": 0.2, "momentum": 0.9, "nesterov": True}],
            "x": (8, 7, 3),
            "y": "onehot3",
        }
    if case == "masked_lstm_regularized":
        reg = keras.regularizers.l1_l2(l1=0.01, l2=0.01)
        m = keras.Sequential(
            [
                keras.Input((6, 2)),
                L.Masking(0.0),
                L.LSTM(4, return_sequences=True),
                L.TimeDistributed(L.Dense(1, kernel_regularizer=reg)),
            ]
        )
        return m, {
            "loss": "mse",
            "optimizer": ["adam", {"learning_rate": 0.01}],
            "x": (6, 6, 2),
            "y": (6, 6, 1),
            "lengths": [6, 4, 1, 6, 3, 5],
        }
    if case == "gru_reset_before_mae":
        m = keras.Sequential(
            [keras.Input((4, 3)), L.GRU(3, reset_after=False, return_sequences=True), L.Dense(2, activation="tanh")]
        )
        return m, {"loss": "mae", "optimizer": ["sgd", {"learning_rate": 0.3}], "x": (5, 4, 3), "y": (5, 4, 2)}
    if case == "bidir_lstm_concat_seq":
        m = keras.Sequential([keras.Input((5, 3)), L.Bidirectional(L.LSTM(3, return_sequences=True)), L.Dense(1)])
        return m, {"loss": "mse", "optimizer": ["sgd", {"learning_rate": 0.1}], "x": (6, 5, 3), "y": (6, 5, 1)}
    if case == "bidir_gru_sum_masked":
        m = keras.Sequential(
            [keras.Input((6, 2)), L.Masking(0.0), L.Bidirectional(L.GRU(4), merge_mode="sum"), L.Dense(2)]
        )
        return m, {
            "loss": "mse",
            "optimizer": ["adam", {"learning_rate": 0.02}],
            "x": (5, 6, 2),
            "y": (5, 2),
            "lengths": [6, 2, 4, 6, 1],
        }
    if case == "cnn_lstm":
        m = keras.Sequential(
            [
                keras.Input((3, 8, 1)),
                L.TimeDistributed(L.Conv1D(4, 3, activation="relu")),
                L.TimeDistributed(L.MaxPooling1D(2)),
                L.TimeDistributed(L.Flatten()),
                L.LSTM(5),
                L.Dense(1),
            ]
        )
        return m, {"loss": "mse", "optimizer": ["adam", {"learning_rate": 0.01}], "x": (6, 3, 8, 1), "y": (6, 1)}
    if case == "conv_causal_pool_global":
        m = keras.Sequential(
            [
                keras.Input((12, 3)),
                L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="tanh"),
                L.AveragePooling1D(2, padding="same"),
                L.Conv1D(3, 2, strides=2, padding="same"),
                L.GlobalMaxPooling1D(),
                L.Dense(2),
            ]
        )
        return m, {
            "loss": "mse",
            "optimizer": ["sgd", {"learning_rate": 0.1, "momentum": 0.5}],
            "x": (5, 12, 3),
            "y": (5, 2),
        }
    if case == "rmsprop_centered_momentum":
        m = keras.Sequential([keras.Input((5, 3)), L.GRU(4, return_sequences=True), L.Dense(2)])
        spec = {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.5, "centered": True}
        return m, {"loss": "mse", "optimizer": ["rmsprop", spec], "x": (6, 5, 3), "y": (6, 5, 2)}
    if case == "adagrad":
        m = keras.Sequential([keras.Input((5, 3)), L.LSTM(4), L.Dense(2)])
        return m, {"loss": "mse", "optimizer": ["adagrad", {"learning_rate": 0.1}], "x": (6, 5, 3), "y": (6, 2)}
    if case == "bidir_lstm_masked_seq":
        # Bidirectional forces zero_output_for_mask on its layers: padded steps output zeros.
        m = keras.Sequential(
            [keras.Input((6, 3)), L.Masking(0.0), L.Bidirectional(L.LSTM(3, return_sequences=True)), L.Dense(2)]
        )
        return m, {
            "loss": "mse",
            "optimizer": ["sgd", {"learning_rate": 0.1}],
            "x": (5, 6, 3),
            "y": (5, 6, 2),
            "lengths": [6, 4, 1, 0, 5],
        }
    if case == "gru_back_zero_output_masked":
        m = keras.Sequential(
            [
                keras.Input((6, 2)),
                L.Masking(0.0),
                L.GRU(4, return_sequences=True, go_backwards=True, zero_output_for_mask=True),
                L.Dense(1),
            ]
        )
        return m, {
            "loss": "mse",
            "optimizer": ["adam", {"learning_rate": 0.02}],
            "x": (5, 6, 2),
            "y": (5, 6, 1),
            "lengths": [6, 3, 5, 1, 2],
        }
    if case == "masked_lstm_global_average":
        m = keras.Sequential(
            [
                keras.Input((7, 2)),
                L.Masking(0.0),
                L.LSTM(4, return_sequences=True),
                L.GlobalAveragePooling1D(),
                L.Dense(2),
            ]
        )
        return m, {
            "loss": "mse",
            "optimizer": ["sgd", {"learning_rate": 0.2}],
            "x": (5, 7, 2),
            "y": (5, 2),
            "lengths": [7, 2, 5, 1, 4],
        }
    raise KeyError(case)


CASES = [
    "rmsprop_centered_momentum",
    "adagrad",
    "cnn_lstm",
    "conv_causal_pool_global",
    "bidir_lstm_concat_seq",
    "bidir_gru_sum_masked",
    "lstm_td",
    "gru_sigmoid_bce_adam",
    "lstm_back_softmax_nesterov",
    "masked_lstm_regularized",
    "gru_reset_before_mae",
    # Appended later (the generator's random stream is shared, so new cases go last to leave the
    # goldens above unchanged): zero outputs at masked steps, and the masked global average.
    "bidir_lstm_masked_seq",
    "gru_back_zero_output_masked",
    "masked_lstm_global_average",
]


def main() -> None:
    out: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(1234)
    for case in CASES:
        m, spec = build(case)
        weights = [rng.normal(scale=0.4, size=w.shape).astype(np.float32) for w in m.get_weights()]
        m.set_weights(weights)
        x = rng.normal(size=spec["x"]).astype(np.float32)
        if "lengths" in spec:
            for i, n in enumerate(spec["lengths"]):
                x[i, n:] = 0.0
        if spec["y"] == "binary":
            y = (rng.random((spec["x"][0], 1)) > 0.5).astype(np.float32)
        elif spec["y"] == "onehot3":
            y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, spec["x"][0])]
        else:
            y = rng.normal(size=spec["y"]).astype(np.float32)
        name, kw = spec["optimizer"]
        opt = {
            "sgd": keras.optimizers.SGD,
            "adam": keras.optimizers.Adam,
            "rmsprop": keras.optimizers.RMSprop,
            "adagrad": keras.optimizers.Adagrad,
        }[name](**kw)
        m.compile(optimizer=opt, loss=spec["loss"])
        pred = m.predict(x, verbose=0)
        losses = [float(m.train_on_batch(x, y)) for _ in range(STEPS)]
        out[f"{case}__config"] = np.array(
            json.dumps({**spec, "steps": STEPS, "params": [layer.count_params() for layer in m.layers]})
        )
        out[f"{case}__x"], out[f"{case}__y"] = x, y
        for i, w in enumerate(weights):
            out[f"{case}__w{i}"] = w
        out[f"{case}__pred"] = pred
        out[f"{case}__losses"] = np.array(losses)
        for i, w in enumerate(m.get_weights()):
            out[f"{case}__after{i}"] = w
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
