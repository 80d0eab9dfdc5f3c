"""Writes tests/golden/layer_goldens.npz and tests/golden/layer_goldens.json: Keras 3 (TensorFlow
backend, CPU) outputs, gradients, moving statistics and parameter counts of single layers — the
normalization layers (LayerNormalization, RMSNormalization, BatchNormalization,
GroupNormalization, UnitNormalization), the activation layers (ReLU, LeakyReLU, PReLU, ELU,
Softmax), the shaping layers (UpSampling1D, ZeroPadding1D, Cropping1D, Permute), SimpleRNN and
RNN(cell) with LSTMCell, GRUCell, SimpleRNNCell and StackedRNNCells — so that
tests/test_layer_goldens.py checks seqcore's layers against Keras without Keras installed.

Run once, by hand, where keras and tensorflow are installed:
    python tests/golden/generate_layer_goldens.py
Generated with keras 3.15.1 / tensorflow 2.21.0.

Per layer case ``c``: ``c__x`` (input), ``c__dy`` (the upstream gradient), ``c__w{i}`` (weights set
before the calls, ``get_weights()`` order), ``c__mask`` (per-sample lengths, masked cases only),
``c__infer`` (the output with training=False), ``c__train`` (with training=True), ``c__dx``,
``c__dw{i}`` (gradients of ``sum(train * dy)`` by the input and the trainable weights) and
``c__after{i}`` (the weights after the training call: the moving statistics moved). The JSON holds
the case's layer config and its total / trainable / non-trainable parameter counts.

The model case ``model`` (Conv1D, BatchNormalization, LayerNormalization, LSTM, Dense) holds
``model__w{i}``, ``model__x``, ``model__y``, ``model__loss`` (3 train_on_batch losses, SGD(0.05)),
``model__after{i}`` and ``model__pred`` (predict after training).
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

L = keras.layers
HERE = Path(__file__).parent

# name -> (layer class, config, input shape (with batch), lengths or None)
CASES: dict[str, tuple[str, dict[str, Any], tuple[int, ...], list[int] | None]] = {
    "ln_last": ("LayerNormalization", {}, (3, 5, 7), None),
    "ln_two_axes": ("LayerNormalization", {"axis": [1, 2], "epsilon": 1e-5}, (2, 4, 6), None),
    "ln_middle_axis": ("LayerNormalization", {"axis": 1}, (3, 5, 4), None),
    "ln_no_center": ("LayerNormalization", {"center": False}, (4, 9), None),
    "ln_no_scale_no_center": ("LayerNormalization", {"center": False, "scale": False}, (2, 3, 17), None),
    "ln_rms_scaling": ("LayerNormalization", {"rms_scaling": True}, (3, 4, 6), None),
    "rms": ("RMSNormalization", {}, (3, 5, 8), None),
    "rms_two_axes": ("RMSNormalization", {"axis": [-2, -1], "epsilon": 1e-3}, (2, 3, 5), None),
    "bn_last": ("BatchNormalization", {}, (4, 6, 3), None),
    "bn_2d": ("BatchNormalization", {"momentum": 0.9, "epsilon": 1e-5}, (7, 5), None),
    "bn_axis1": ("BatchNormalization", {"axis": 1}, (3, 4, 6), None),
    "bn_no_scale": ("BatchNormalization", {"scale": False}, (5, 4, 2), None),
    "bn_no_center_no_scale": ("BatchNormalization", {"center": False, "scale": False}, (3, 5, 3), None),
    "bn_masked": ("BatchNormalization", {"momentum": 0.8}, (3, 6, 4), [6, 2, 4]),
    "gn_two_groups": ("GroupNormalization", {"groups": 2}, (3, 5, 4), None),
    "gn_instance": ("GroupNormalization", {"groups": -1, "epsilon": 1e-5}, (2, 6, 3), None),
    "gn_axis1": ("GroupNormalization", {"groups": 2, "axis": 1, "center": False}, (2, 4, 3), None),
    "unit": ("UnitNormalization", {}, (3, 4, 5), None),
    "unit_two_axes": ("UnitNormalization", {"axis": [1, 2]}, (2, 3, 4), None),
    "relu": ("ReLU", {}, (3, 4, 5), None),
    "relu_all_options": ("ReLU", {"max_value": 1.5, "negative_slope": 0.1, "threshold": 0.25}, (3, 4, 5), None),
    "relu6": ("ReLU", {"max_value": 6.0}, (2, 3, 4), None),
    "leaky_relu": ("LeakyReLU", {}, (3, 4, 5), None),
    "leaky_relu_slope": ("LeakyReLU", {"negative_slope": 0.05}, (2, 6), None),
    "prelu": ("PReLU", {}, (3, 4, 5), None),
    "prelu_shared_time": ("PReLU", {"shared_axes": [1]}, (3, 4, 5), None),
    "elu": ("ELU", {}, (3, 4, 5), None),
    "elu_alpha": ("ELU", {"alpha": 0.5}, (3, 4, 5), None),
    "softmax": ("Softmax", {}, (3, 4, 5), None),
    "softmax_time": ("Softmax", {"axis": 1}, (2, 5, 3), None),
    "softmax_two_axes": ("Softmax", {"axis": [1, 2]}, (2, 3, 4), None),
    "upsampling": ("UpSampling1D", {"size": 3}, (2, 4, 3), None),
    "zero_padding": ("ZeroPadding1D", {"padding": (1, 2)}, (2, 4, 3), None),
    "zero_padding_channels_first": ("ZeroPadding1D", {"padding": 2, "data_format": "channels_first"}, (2, 3, 4), None),
    "cropping": ("Cropping1D", {"cropping": (2, 1)}, (2, 6, 3), None),
    "cropping_int": ("Cropping1D", {"cropping": 1}, (2, 5, 2), None),
    "permute": ("Permute", {"dims": (2, 1)}, (2, 3, 4), None),
    "permute_three": ("Permute", {"dims": (3, 1, 2)}, (2, 3, 4, 5), None),
    "simple_rnn": ("SimpleRNN", {"units": 4}, (3, 5, 2), None),
    "simple_rnn_relu_backwards_seq": (
        "SimpleRNN",
        {"units": 3, "activation": "relu", "return_sequences": True, "go_backwards": True},
        (2, 6, 3),
        None,
    ),
    "simple_rnn_masked_seq": ("SimpleRNN", {"units": 3, "return_sequences": True}, (3, 6, 2), [6, 2, 0]),
    "simple_rnn_masked_last_no_bias": (
        "SimpleRNN",
        {"units": 2, "use_bias": False, "activation": "sigmoid"},
        (3, 5, 2),
        [5, 3, 1],
    ),
    "conv_t_valid": ("Conv1DTranspose", {"filters": 3, "kernel_size": 3}, (2, 5, 2), None),
    "conv_t_stride_same": (
        "Conv1DTranspose",
        {"filters": 2, "kernel_size": 4, "strides": 2, "padding": "same", "activation": "tanh"},
        (2, 5, 3),
        None,
    ),  # fmt: skip
    "conv_t_stride_valid_k2": ("Conv1DTranspose", {"filters": 2, "kernel_size": 2, "strides": 3}, (2, 4, 2), None),
    "conv_t_output_padding": (
        "Conv1DTranspose",
        {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 1},
        (2, 5, 3),
        None,
    ),  # fmt: skip
    "conv_t_valid_output_padding": (
        "Conv1DTranspose",
        {"filters": 2, "kernel_size": 3, "strides": 3, "output_padding": 2, "use_bias": False},
        (2, 4, 2),
        None,
    ),  # fmt: skip
    # (TensorFlow's CPU transposed convolution has no dilation, so no golden for dilation_rate > 1)
    "conv_t_gelu_same": (
        "Conv1DTranspose",
        {"filters": 3, "kernel_size": 5, "padding": "same", "activation": "gelu"},
        (2, 6, 2),
        None,
    ),  # fmt: skip
    "depthwise": ("DepthwiseConv1D", {"kernel_size": 3}, (2, 6, 3), None),
    "depthwise_multiplier_same_stride": (
        "DepthwiseConv1D",
        {"kernel_size": 4, "depth_multiplier": 2, "padding": "same", "strides": 2, "activation": "tanh"},
        (2, 7, 3),
        None,
    ),
    "separable": ("SeparableConv1D", {"filters": 4, "kernel_size": 3}, (2, 6, 3), None),
    "separable_dilated_gelu": (
        "SeparableConv1D",
        {
            "filters": 2,
            "kernel_size": 3,
            "dilation_rate": 2,
            "depth_multiplier": 2,
            "padding": "same",
            "activation": "gelu",
            "use_bias": False,
        },
        (2, 8, 3),
        None,
    ),  # fmt: skip
    # RNN(cell): "cells" lists (cell class, its arguments); more than one means StackedRNNCells
    "rnn_lstm_cell": ("RNN", {"cells": [["LSTMCell", {"units": 3}]]}, (2, 5, 4), None),
    "rnn_gru_cell_seq_back": (
        "RNN",
        {"cells": [["GRUCell", {"units": 3, "reset_after": False}]], "return_sequences": True, "go_backwards": True},
        (2, 5, 2),
        None,
    ),
    "rnn_stacked": (
        "RNN",
        {
            "cells": [["SimpleRNNCell", {"units": 3}], ["LSTMCell", {"units": 2}], ["GRUCell", {"units": 2}]],
            "return_sequences": True,
        },
        (2, 4, 3),
        None,
    ),
    "rnn_stacked_masked": (
        "RNN",
        {"cells": [["LSTMCell", {"units": 2}], ["SimpleRNNCell", {"units": 3}]]},
        (3, 5, 2),
        [5, 2, 4],
    ),
}


def make_layer(module: Any, cls: str, config: dict[str, Any]) -> Any:
    """The layer of a case, in Keras (here) or seqcore (tests/test_layer_goldens.py does the same)."""
    if cls != "RNN":
        return getattr(module, cls)(**config)
    cfg = dict(config)
    cells = [getattr(module, c)(**kw) for c, kw in cfg.pop("cells")]
    return module.RNN(cells[0] if len(cells) == 1 else module.StackedRNNCells(cells), **cfg)


def rng_for(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def layer_case(name: str, cls: str, config: dict[str, Any], shape: tuple[int, ...], lengths: Any, out: dict) -> dict:
    rng = rng_for(name)
    layer = make_layer(L, cls, config)
    x = (rng.normal(size=shape) * 2.0 + 0.5).astype(np.float32)
    dy = rng.normal(size=tuple(layer.compute_output_shape(shape))).astype(np.float32)  # the output's shape
    layer.build(shape)
    weights = []
    for w in layer.weights:
        v = rng.uniform(0.5, 1.5, size=w.shape) if "variance" in w.path else rng.normal(0, 0.5, size=w.shape)
        weights.append(v.astype(np.float32))
    layer.set_weights(weights)
    mask = None
    if lengths is not None:
        mask = tf.constant(np.arange(shape[1])[None, :] < np.asarray(lengths)[:, None])
        out[f"{name}__mask"] = np.asarray(lengths, np.int64)
    out[f"{name}__x"], out[f"{name}__dy"] = x, dy
    for i, v in enumerate(weights):
        out[f"{name}__w{i}"] = v
    kw = {} if mask is None else {"mask": mask}
    out[f"{name}__infer"] = keras.ops.convert_to_numpy(layer(x, training=False, **kw))
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt, training=True, **kw)
        loss = tf.reduce_sum(y * dy)
    grads = tape.gradient(loss, [xt, *layer.trainable_weights])
    out[f"{name}__train"] = y.numpy()
    out[f"{name}__dx"] = grads[0].numpy()
    for i, g in enumerate(grads[1:]):
        out[f"{name}__dw{i}"] = g.numpy()
    for i, w in enumerate(layer.get_weights()):
        out[f"{name}__after{i}"] = w
    trainable = int(sum(np.prod(w.shape) for w in layer.trainable_weights))
    total = int(layer.count_params())
    return {"class": cls, "config": config, "total": total, "trainable": trainable, "non_trainable": total - trainable,
            "weights": [w.name for w in layer.weights]}  # fmt: skip


def model_case(out: dict) -> dict:
    rng = rng_for("model")
    model = keras.Sequential(
        [
            keras.Input((10, 3)),
            L.Conv1D(4, 3, padding="same"),
            L.BatchNormalization(momentum=0.9),
            L.LayerNormalization(),
            L.LSTM(5),
            L.Dense(2),
        ]
    )
    weights = [rng.uniform(-0.3, 0.3, size=w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(weights)
    x = rng.normal(size=(6, 10, 3)).astype(np.float32)
    y = rng.normal(size=(6, 2)).astype(np.float32)
    model.compile(keras.optimizers.SGD(0.05), "mse")
    losses = [float(model.train_on_batch(x, y)) for _ in range(3)]
    for i, w in enumerate(weights):
        out[f"model__w{i}"] = w
    for i, w in enumerate(model.get_weights()):
        out[f"model__after{i}"] = w
    out["model__x"], out["model__y"] = x, y
    out["model__loss"] = np.asarray(losses, np.float64)
    out["model__pred"] = model.predict_on_batch(x)
    return {
        "total": int(model.count_params()),
        "trainable": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
    }


# Dot on two inputs: name -> (shape a, shape b, config); written to dot_goldens.npz as
# <name>__a, <name>__b, <name>__dy, <name>__y, <name>__da, <name>__db.
DOT_CASES: dict[str, tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]] = {
    "dot_2d": ((3, 4), (3, 4), {"axes": 1}),
    "dot_scores": ((2, 4, 3), (2, 5, 3), {"axes": 2}),
    "dot_context": ((2, 4, 5), (2, 5, 3), {"axes": (2, 1)}),
    "dot_time": ((2, 4, 3), (2, 4, 2), {"axes": 1, "normalize": True}),
    "dot_mixed_rank": ((3, 4), (3, 4, 2), {"axes": (1, 1)}),
}


def dot_goldens() -> None:
    out: dict[str, np.ndarray] = {}
    for name, (sa, sb, config) in DOT_CASES.items():
        rng = rng_for(name)
        a, b = rng.normal(size=sa).astype(np.float32), rng.normal(size=sb).astype(np.float32)
        layer = L.Dot(**config)
        at, bt = tf.constant(a), tf.constant(b)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([at, bt])
            y = layer([at, bt])
            dy = tf.constant(rng.normal(size=y.shape).astype(np.float32))
            loss = tf.reduce_sum(y * dy)
        da, db = tape.gradient(loss, [at, bt])
        out.update({f"{name}__a": a, f"{name}__b": b, f"{name}__dy": dy.numpy(), f"{name}__y": y.numpy(),
                    f"{name}__da": da.numpy(), f"{name}__db": db.numpy()})  # fmt: skip
    np.savez_compressed(HERE / "dot_goldens.npz", **out)


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"keras": keras.__version__, "tensorflow": tf.__version__, "cases": {}}
    for name, (cls, config, shape, lengths) in CASES.items():
        meta["cases"][name] = layer_case(name, cls, config, shape, lengths, arrays)
    meta["model"] = model_case(arrays)
    np.savez_compressed(HERE / "layer_goldens.npz", **arrays)
    (HERE / "layer_goldens.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    dot_goldens()
    print(f"wrote {len(arrays)} arrays for {len(CASES)} layer cases and the model case, and the Dot cases")


if __name__ == "__main__":
    main()
