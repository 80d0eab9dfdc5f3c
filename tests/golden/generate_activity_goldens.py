"""Writes tests/golden/activity_goldens.npz: Keras 3 (TensorFlow backend, CPU) results for models with
``activity_regularizer`` on LSTM, GRU, Conv1D, Bidirectional (inner and outer), Dense and a nested
Sequential inside TimeDistributed, plus TimeDistributed(Dense(activity_regularizer=...)), which Keras
ignores. Per case: the initial weights, data, predictions, the evaluate() loss (which includes the
activity penalty of the inference forward), the train_on_batch losses of a few steps and the weights
after them. tests/test_rnn_regularizers.py checks seqcore against them without Keras.

Each case is a JSON spec that both this script and the test turn into a model, so the two cannot
drift apart: ``{"class": "LSTM", "units": 4, ...}``; a regularizer is ``{"l1": a, "l2": b}``; a
nested model is ``{"class": "Sequential", "layers": [...]}``; ``"layer"`` holds a wrapped layer.

Run once, by hand, where keras and tensorflow are installed:
    python tests/golden/generate_activity_goldens.py
Generated with keras 3.15.1 / tensorflow 2.21.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = Path(__file__).with_name("activity_goldens.npz")
STEPS = 3

# name: (input shape, layers, loss, optimizer [name, kwargs], y shape or "binary", lengths or None)
CASES: dict[str, dict[str, Any]] = {
    "lstm_seq_l2": {
        "input": [6, 3],
        "layers": [
            {"class": "LSTM", "units": 4, "return_sequences": True, "activity_regularizer": {"l2": 0.05}},
            {"class": "Dense", "units": 1},
        ],
        "loss": "mse",
        "optimizer": ["SGD", {"learning_rate": 0.2}],
        "y": [6, 1],
    },
    "gru_last_l1_adam": {
        "input": [5, 2],
        "layers": [
            {"class": "GRU", "units": 3, "activity_regularizer": {"l1": 0.02}},
            {"class": "Dense", "units": 1, "activation": "sigmoid"},
        ],
        "loss": "binary_crossentropy",
        "optimizer": ["Adam", {"learning_rate": 0.05}],
        "y": "binary",
    },
    "gru_backwards_reset_before_seq": {
        "input": [5, 3],
        "layers": [
            {
                "class": "GRU",
                "units": 3,
                "reset_after": False,
                "go_backwards": True,
                "return_sequences": True,
                "activity_regularizer": {"l1": 0.01, "l2": 0.03},
            },
            {"class": "Dense", "units": 2},
        ],
        "loss": "mse",
        "optimizer": ["SGD", {"learning_rate": 0.1}],
        "y": [5, 2],
    },
    "masked_lstm_l1l2": {
        "input": [6, 2],
        "layers": [
            {"class": "Masking", "mask_value": 0.0},
            {"class": "LSTM", "units": 4, "return_sequences": True, "activity_regularizer": {"l1": 0.01, "l2": 0.02}},
            {"class": "Dense", "units": 1},
        ],
        "loss": "mse",
        "optimizer": ["SGD", {"learning_rate": 0.3}],
        "y": [6, 1],
        "lengths": [6, 4, 1, 6, 3, 5, 2, 6],
    },
    "conv_lstm_dense": {
        "input": [8, 3],
        "layers": [
            {
                "class": "Conv1D",
                "filters": 4,
                "kernel_size": 3,
                "padding": "causal",
                "activation": "relu",
                "activity_regularizer": {"l2": 0.03},
            },
            {"class": "LSTM", "units": 3, "activity_regularizer": {"l1": 0.05}},
            {"class": "Dense", "units": 2, "activity_regularizer": {"l2": 0.1}},
        ],
        "loss": "mse",
        "optimizer": ["SGD", {"learning_rate": 0.1}],
        "y": [2],
    },
    "bidirectional_inner_and_outer": {
        "input": [5, 3],
        "layers": [
            {
                "class": "Bidirectional",
                "layer": {"class": "LSTM", "units": 3, "return_sequences": True, "activity_regularizer": {"l1": 0.02}},
                "activity_regularizer": {"l2": 0.04},
            },
            {"class": "Dense", "units": 1},
        ],
        "loss": "mse",
        "optimizer": ["SGD", {"learning_rate": 0.1}],
        "y": [5, 1],
    },
    "timedistributed_nested_and_ignored": {
        "input": [3, 6, 2],
        "layers": [
            {
                "class": "TimeDistributed",
                "layer": {
                    "class": "Sequential",
                    "layers": [
                        {"class": "Conv1D", "filters": 3, "kernel_size": 2, "activity_regularizer": {"l2": 0.05}},
                        {"class": "Flatten"},
                    ],
                },
            },
            {"class": "TimeDistributed", "layer": {"class": "Dense", "units": 4, "activity_regularizer": {"l1": 1.0}}},
            {"class": "GRU", "units": 3, "activity_regularizer": {"l2": 0.02}},
            {"class": "Dense", "units": 1},
        ],
        "loss": "mse",
        "optimizer": ["SGD", {"learning_rate": 0.05}],
        "y": [1],
    },
}


def make_regularizer(spec: dict[str, float] | None) -> Any:
    return None if spec is None else keras.regularizers.L1L2(l1=spec.get("l1", 0.0), l2=spec.get("l2", 0.0))


def make_layer(spec: dict[str, Any]) -> Any:
    spec = dict(spec)
    cls = spec.pop("class")
    if cls == "Sequential":
        return keras.Sequential([make_layer(s) for s in spec["layers"]])
    if "layer" in spec:
        spec["layer"] = make_layer(spec["layer"])
    if "activity_regularizer" in spec:
        spec["activity_regularizer"] = make_regularizer(spec["activity_regularizer"])
    return getattr(keras.layers, cls)(**spec)


def main() -> None:
    out: dict[str, Any] = {}
    for i, (name, case) in enumerate(CASES.items()):
        keras.utils.set_random_seed(100 + i)
        model = keras.Sequential([keras.Input(tuple(case["input"])), *(make_layer(s) for s in case["layers"])])
        rng = np.random.default_rng(i)
        batch = len(case.get("lengths") or []) or 6
        x = rng.normal(size=(batch, *case["input"])).astype(np.float32)
        if case.get("lengths"):
            steps = np.arange(case["input"][0])[None, :]
            x[steps >= np.asarray(case["lengths"])[:, None]] = 0.0  # post-padding, masked by Masking
        if case["y"] == "binary":
            y = (rng.random((batch, 1)) < 0.5).astype(np.float32)
        else:
            y = rng.normal(size=(batch, *case["y"])).astype(np.float32)
        opt_name, opt_kwargs = case["optimizer"]
        model.compile(optimizer=getattr(keras.optimizers, opt_name)(**opt_kwargs), loss=case["loss"])
        weights = model.get_weights()
        pred = model.predict(x, verbose=0)
        eval_loss = model.evaluate(x, y, batch_size=batch, verbose=0)
        losses = [float(model.train_on_batch(x, y)) for _ in range(STEPS)]
        out[f"{name}__spec"] = json.dumps(case)
        out[f"{name}__x"], out[f"{name}__y"], out[f"{name}__pred"] = x, y, pred
        out[f"{name}__eval_loss"] = np.float64(eval_loss)
        out[f"{name}__losses"] = np.asarray(losses)
        for j, w in enumerate(weights):
            out[f"{name}__w{j}"] = w
        for j, w in enumerate(model.get_weights()):
            out[f"{name}__after{j}"] = w
        print(f"{name}: eval loss {eval_loss:.6f}, train losses {losses}")
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
