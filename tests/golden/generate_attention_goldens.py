"""Writes tests/golden/attention_goldens.npz and tests/golden/attention_goldens.json: Keras 3
(TensorFlow backend, CPU) outputs, attention scores and gradients of MultiHeadAttention, Attention
and AdditiveAttention, so that tests/test_attention_goldens.py checks seqcore's layers against Keras
without Keras installed.

Run once, by hand, where keras and tensorflow are installed:
    python tests/golden/generate_attention_goldens.py
Generated with keras 3.15.1 / tensorflow 2.21.0.

Per case ``c``: ``c__in{i}`` (the inputs: query, value[, key]), ``c__w{i}`` (weights, ``get_weights()``
order, set before the call), masks ``c__qmask``/``c__vmask``/``c__amask`` where the case has them,
``c__y`` (output), ``c__scores`` (when returned), ``c__dy`` and ``c__ds`` (upstream gradients),
``c__din{i}`` and ``c__dw{i}`` (gradients of ``sum(y·dy) + sum(scores·ds)`` by the inputs and the
trainable weights). The JSON holds each case's class, config, call arguments, weight paths and
parameter count.
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

HERE = Path(__file__).parent

# name -> (class, config, input shapes (query, value[, key]), call kwargs, masks: q / v / attention)
CASES: dict[str, tuple[str, dict[str, Any], list[tuple[int, ...]], dict[str, Any], str]] = {
    "mha_self": ("MultiHeadAttention", {"num_heads": 3, "key_dim": 4}, [(2, 7, 6), "self"], {}, ""),
    "mha_cross_key": ("MultiHeadAttention", {"num_heads": 2, "key_dim": 5, "value_dim": 3},
                      [(2, 6, 4), (2, 9, 5), (2, 9, 7)], {}, ""),
    "mha_no_bias_output_shape": ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3, "use_bias": False,
                                                        "output_shape": (2, 3)}, [(3, 5, 4), (3, 4, 4)], {}, ""),
    "mha_causal_scores": ("MultiHeadAttention", {"num_heads": 2, "key_dim": 4}, [(2, 6, 5), "self"],
                          {"use_causal_mask": True, "return_attention_scores": True}, ""),
    "mha_masks": ("MultiHeadAttention", {"num_heads": 2, "key_dim": 4}, [(2, 6, 5), (2, 7, 5)],
                  {"return_attention_scores": True}, "qva"),
    "mha_gate_window": ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3, "use_gate": True, "sliding_window": 2},
                        [(2, 8, 4), "self"], {}, ""),
    "mha_4d_axis": ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3, "attention_axes": [2]},
                    [(2, 3, 5, 4), (2, 3, 6, 4)], {"return_attention_scores": True}, ""),
    "att_dot": ("Attention", {}, [(2, 5, 4), (2, 6, 4)], {}, ""),
    "att_scale_key_masks": ("Attention", {"use_scale": True}, [(2, 5, 4), (2, 6, 3), (2, 6, 4)],
                            {"return_attention_scores": True}, "qv"),
    "att_concat_causal": ("Attention", {"score_mode": "concat", "use_scale": True}, [(2, 6, 4), (2, 6, 4)],
                          {"use_causal_mask": True}, ""),
    "additive": ("AdditiveAttention", {}, [(2, 5, 4), (2, 6, 4)], {"return_attention_scores": True}, "qv"),
    "additive_no_scale": ("AdditiveAttention", {"use_scale": False}, [(3, 4, 3), (3, 5, 2), (3, 5, 3)], {}, ""),
}  # fmt: skip


def rng_for(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def case(name: str, cls: str, cfg: dict[str, Any], shapes: list[Any], kw: dict[str, Any], masks: str,
         out: dict[str, np.ndarray]) -> dict[str, Any]:  # fmt: skip
    rng = rng_for(name)
    self_attn = shapes[1] == "self"
    ins = [rng.standard_normal(shapes[0]).astype(np.float32)]
    if not self_attn:
        ins += [rng.standard_normal(s).astype(np.float32) for s in shapes[1:]]
    q, v = ins[0], ins[0] if self_attn else ins[1]
    tq, tk = q.shape[1], v.shape[1]
    layer = getattr(keras.layers, cls)(**cfg)
    call_kw = dict(kw)
    mha = cls == "MultiHeadAttention"
    mask_arrays: dict[str, np.ndarray] = {}
    if "q" in masks:
        mask_arrays["qmask"] = np.arange(tq)[None, :] < np.array([tq, tq - 2])[:, None]
    if "v" in masks:
        vm = rng.random((q.shape[0], tk)) > 0.3
        vm[:, 0] = True
        mask_arrays["vmask"] = vm
    if "a" in masks:
        am = rng.random((q.shape[0], tq, tk)) > 0.4
        am[0, 1] = False  # a query row that may attend to nothing
        mask_arrays["amask"] = am

    def call(tensors: list[Any]) -> Any:
        args = [tensors[0], tensors[0]] if self_attn else tensors
        extra = dict(call_kw)
        if mha:
            if "qmask" in mask_arrays:
                extra["query_mask"] = tf.constant(mask_arrays["qmask"])
            if "vmask" in mask_arrays:
                extra["value_mask"] = tf.constant(mask_arrays["vmask"])
            if "amask" in mask_arrays:
                extra["attention_mask"] = tf.constant(mask_arrays["amask"])
            return layer(*args, **extra)
        if mask_arrays:
            extra["mask"] = [tf.constant(mask_arrays.get("qmask")) if "qmask" in mask_arrays else None,
                             tf.constant(mask_arrays.get("vmask")) if "vmask" in mask_arrays else None]  # fmt: skip
        return layer(list(args), **extra)

    consts = [tf.constant(a) for a in ins]
    call(consts)  # build
    weights = []
    for w in layer.weights:
        value = rng.standard_normal(w.shape).astype(np.float32) * 0.5 + (1.0 if w.shape == () else 0.0)
        w.assign(value)
        weights.append(value)
    with tf.GradientTape() as tape:
        tape.watch(consts)
        res = call(consts)
        y, scores = (res[0], res[1]) if isinstance(res, (tuple, list)) else (res, None)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        loss = tf.reduce_sum(y * dy)
        ds = None
        if scores is not None:
            ds = rng.standard_normal(scores.shape).astype(np.float32)
            loss += tf.reduce_sum(scores * ds)
    grads = tape.gradient(loss, consts + list(layer.trainable_weights))
    for i, a in enumerate(ins):
        out[f"{name}__in{i}"] = a
        out[f"{name}__din{i}"] = grads[i].numpy()
    for i, w in enumerate(weights):
        out[f"{name}__w{i}"] = w
    for i, g in enumerate(grads[len(ins) :]):
        out[f"{name}__dw{i}"] = g.numpy()
    for k, m in mask_arrays.items():
        out[f"{name}__{k}"] = m
    out[f"{name}__y"] = y.numpy()
    out[f"{name}__dy"] = dy
    if scores is not None:
        out[f"{name}__scores"] = scores.numpy()
        out[f"{name}__ds"] = ds  # type: ignore[assignment]
    return {
        "class": cls,
        "config": cfg,
        "kwargs": kw,
        "self_attention": self_attn,
        "weights": [w.path.split("/", 1)[1] for w in layer.weights],
        "params": int(layer.count_params()),
    }


def main() -> None:
    out: dict[str, np.ndarray] = {}
    meta = {name: case(name, *spec, out) for name, spec in CASES.items()}
    np.savez_compressed(HERE / "attention_goldens.npz", **out)
    (HERE / "attention_goldens.json").write_text(
        json.dumps({"keras": keras.__version__, "tensorflow": tf.__version__, "cases": meta}, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
