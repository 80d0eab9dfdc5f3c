"""Generate tests/golden/conv_goldens.npz: Keras 3 and PyTorch Conv1D / pooling goldens.

NEVER run in CI (Keras, TensorFlow and torch are not installed there); the .npz it writes is committed
and tests/test_conv1d.py / tests/test_pooling.py read only that file. Regenerate by hand with

    python tests/golden/generate_conv_goldens.py

Generated with Keras 3.15.1, TensorFlow 2.21.0 (CPU), torch 2.15.0, NumPy 2.4.6.

Contents (every case stores its own inputs; ``config`` is a JSON string):

* ``conv__<case>__{config,x,kernel,bias,G,y,dx,dkernel,dbias}``: a float64 ``keras.layers.Conv1D``
  (channels_last) with the given kernel/bias, its output ``y`` and the gradients of
  ``loss = sum(y * G)`` by x, kernel and bias (``tf.GradientTape``). ``bias`` / ``dbias`` are absent
  when ``use_bias`` is false. Config keys: filters, kernel_size, strides, padding, dilation_rate,
  groups, activation, use_bias.
* ``torchconv__<case>__...``: the same fields from float64 ``torch.nn.functional.conv1d`` on
  channels-first data, for what Keras refuses (strides > 1 with dilation > 1) and for groups. The
  padding is applied explicitly with ``F.pad(left, right)`` using the Keras rule (``same``: total
  ``max((ceil(L/s) - 1)*s + (K-1)*d + 1 - L, 0)``, ``total // 2`` left; ``causal``: ``(K-1)*d`` left),
  so torch checks the strided/dilated/grouped arithmetic and Keras checks the padding rule. Stored
  in Keras layout: ``kernel = weight.transpose(2, 1, 0)`` (and ``dkernel`` likewise); the raw torch
  ``weight`` (filters, C_in/groups, K) is stored too, so the test checks that conversion.
* ``pool__<case>__{config,x,G,y,dx}``: float64 Keras ``MaxPooling1D`` / ``AveragePooling1D`` /
  ``GlobalMaxPooling1D`` / ``GlobalAveragePooling1D`` outputs and ``d sum(y * G) / dx``. Config keys:
  kind (max, avg, global_max, global_avg), pool_size, strides, padding. The ``ties`` cases hold
  integer-valued data with repeated maxima. For the windowed ``MaxPooling1D`` TensorFlow's gradient
  goes to the first maximum of each window (asserted below), seqcore's rule; for
  ``GlobalMaxPooling1D`` (``tf.reduce_max``) it is split equally among the tied maxima (asserted
  below), where seqcore sends it all to the first maximum (same total per channel).
* ``conv_lengths``: int64 rows ``[length, kernel_size, strides, dilation_rate, padding_code,
  keras_out]`` (padding_code 0 valid, 1 same, 2 causal) over a grid, from the layer's actual output
  shape; ``pool_lengths`` likewise ``[length, pool_size, strides, padding_code, keras_out]``.

Keras runs in float64 so the tests compare the float32 kernels at float32 accuracy against an
essentially exact value; this script also checks the float32 layer agrees to 1e-4.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

OUT = Path(__file__).with_name("conv_goldens.npz")
PADS = {"valid": 0, "same": 1, "causal": 2}

CONV_DEFAULTS = {
    "filters": 6,
    "kernel_size": 3,
    "strides": 1,
    "padding": "valid",
    "dilation_rate": 1,
    "groups": 1,
    "activation": "linear",
    "use_bias": True,
    "batch": 3,
    "length": 11,
    "channels": 4,
}
# name -> overrides of CONV_DEFAULTS
CONV_CASES = {
    "same_k5": {"kernel_size": 5, "padding": "same"},
    "same_k4_even_split": {"kernel_size": 4, "padding": "same", "activation": "relu"},
    "same_k4_stride2": {"kernel_size": 4, "strides": 2, "padding": "same"},
    "same_k3_stride3": {"kernel_size": 3, "strides": 3, "padding": "same", "activation": "tanh"},
    "same_k2_stride4_len10": {"kernel_size": 2, "strides": 4, "padding": "same", "length": 10},
    "same_dilated_k3_d2": {"kernel_size": 3, "dilation_rate": 2, "padding": "same", "activation": "sigmoid"},
    "same_dilated_k4_d3": {"kernel_size": 4, "dilation_rate": 3, "padding": "same"},
    "causal_k3": {"kernel_size": 3, "padding": "causal"},
    "causal_dilated_k3_d2": {"kernel_size": 3, "dilation_rate": 2, "padding": "causal", "activation": "tanh"},
    "causal_k4_stride2": {"kernel_size": 4, "strides": 2, "padding": "causal"},
    "valid_k3_stride2": {"kernel_size": 3, "strides": 2, "activation": "sigmoid"},
    "valid_k3_d3": {"kernel_size": 3, "dilation_rate": 3},
    "valid_exact_length": {"kernel_size": 4, "dilation_rate": 2, "length": 7},
    "softmax_same": {"kernel_size": 3, "padding": "same", "activation": "softmax"},
    "hard_sigmoid_causal": {"kernel_size": 2, "padding": "causal", "activation": "hard_sigmoid"},
    "no_bias_same": {"kernel_size": 3, "padding": "same", "use_bias": False},
    "len1_same_dilated": {"kernel_size": 5, "dilation_rate": 2, "padding": "same", "length": 1},
    "len1_causal_stride2": {"kernel_size": 3, "strides": 2, "padding": "causal", "length": 1},
    "groups2_same": {"kernel_size": 3, "padding": "same", "groups": 2},
    "channels1_batch1": {"kernel_size": 3, "padding": "same", "channels": 1, "filters": 1, "batch": 1},
}
TORCH_CASES = {
    "stride2_dilation2_valid": {"kernel_size": 3, "strides": 2, "dilation_rate": 2, "length": 13},
    "stride2_dilation2_same": {"kernel_size": 3, "strides": 2, "dilation_rate": 2, "padding": "same", "length": 12},
    "stride3_dilation2_causal": {"kernel_size": 4, "strides": 3, "dilation_rate": 2, "padding": "causal"},
    "groups2_valid": {"kernel_size": 3, "groups": 2},
    "groups4_stride2_dilation3_same": {
        "kernel_size": 3, "strides": 2, "dilation_rate": 3, "padding": "same", "groups": 4,
        "channels": 8, "filters": 12, "length": 14, "activation": "tanh",
    },
    "depthwise_groups_eq_channels_causal": {
        "kernel_size": 5, "padding": "causal", "groups": 4, "channels": 4, "filters": 4,
    },
}  # fmt: skip

POOL_CASES = {
    "max_p2_default": {"kind": "max", "pool_size": 2},
    "max_p3_s2_same": {"kind": "max", "pool_size": 3, "strides": 2, "padding": "same"},
    "max_p4_s1_same_even": {"kind": "max", "pool_size": 4, "strides": 1, "padding": "same"},
    "max_p3_s3_same": {"kind": "max", "pool_size": 3, "strides": 3, "padding": "same"},
    "max_p2_s3_valid": {"kind": "max", "pool_size": 2, "strides": 3},
    "max_p5_s2_same_short": {"kind": "max", "pool_size": 5, "strides": 2, "padding": "same", "length": 4},
    "max_p3_s1_valid_ties": {"kind": "max", "pool_size": 3, "strides": 1, "ties": True},
    "max_p2_s2_same_ties": {"kind": "max", "pool_size": 2, "strides": 2, "padding": "same", "ties": True},
    "avg_p2_default": {"kind": "avg", "pool_size": 2},
    "avg_p3_s2_same": {"kind": "avg", "pool_size": 3, "strides": 2, "padding": "same"},
    "avg_p4_s1_same_even": {"kind": "avg", "pool_size": 4, "strides": 1, "padding": "same"},
    "avg_p3_s3_same": {"kind": "avg", "pool_size": 3, "strides": 3, "padding": "same"},
    "avg_p2_s3_valid": {"kind": "avg", "pool_size": 2, "strides": 3},
    "avg_p5_s2_same_short": {"kind": "avg", "pool_size": 5, "strides": 2, "padding": "same", "length": 4},
    "global_max": {"kind": "global_max"},
    "global_max_ties": {"kind": "global_max", "ties": True},
    "global_avg": {"kind": "global_avg"},
}
POOL_DEFAULTS = {"pool_size": None, "strides": None, "padding": "valid", "length": 11, "ties": False}


def keras_pads(length: int, k: int, s: int, d: int, padding: str) -> tuple[int, int]:
    span = d * (k - 1) + 1
    if padding == "same":
        total = max((math.ceil(length / s) - 1) * s + span - length, 0)
        return total // 2, total - total // 2
    if padding == "causal":
        return span - 1, 0
    return 0, 0


def conv_inputs(cfg: dict, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    b, length, c = cfg["batch"], cfg["length"], cfg["channels"]
    k, g, f = cfg["kernel_size"], cfg["groups"], cfg["filters"]
    d = {
        "x": rng.normal(size=(b, length, c)),
        "kernel": rng.normal(scale=1 / math.sqrt(k * c / g), size=(k, c // g, f)),
        "bias": 0.3 * rng.normal(size=f),
    }
    if cfg["activation"] in ("relu", "hard_sigmoid"):
        # Keep pre-activations off the kinks (0 for relu, +-3 for hard_sigmoid) so a float32
        # kernel and this float64 golden take the same branch: quantized data, odd bias.
        d["x"] = rng.integers(-3, 4, size=d["x"].shape).astype(np.float64)
        d["kernel"] = rng.integers(-4, 5, size=d["kernel"].shape) / 8
        d["bias"] = (rng.integers(-8, 8, size=f) + 0.5) / 8
    return d


def run_keras_conv(cfg: dict, d: dict, dtype: str) -> dict[str, np.ndarray]:
    layer = keras.layers.Conv1D(
        cfg["filters"], cfg["kernel_size"], strides=cfg["strides"], padding=cfg["padding"],
        dilation_rate=cfg["dilation_rate"], groups=cfg["groups"], activation=cfg["activation"],
        use_bias=cfg["use_bias"], dtype=dtype,
    )  # fmt: skip
    layer.build(d["x"].shape)
    layer.set_weights([d["kernel"]] + ([d["bias"]] if cfg["use_bias"] else []))
    x = tf.Variable(d["x"].astype(dtype))
    with tf.GradientTape() as tape:
        y = layer(x)
        loss = tf.reduce_sum(y * tf.constant(d["G"].astype(dtype)))
    grads = tape.gradient(loss, [x, layer.kernel] + ([layer.bias] if cfg["use_bias"] else []))
    out = {"y": y.numpy(), "dx": grads[0].numpy(), "dkernel": grads[1].numpy()}
    if cfg["use_bias"]:
        out["dbias"] = grads[2].numpy()
    return out


def out_len(cfg: dict) -> int:
    left, right = keras_pads(cfg["length"], cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"], cfg["padding"])
    span = cfg["dilation_rate"] * (cfg["kernel_size"] - 1) + 1
    return (cfg["length"] + left + right - span) // cfg["strides"] + 1


def close_scaled(a: np.ndarray, b: np.ndarray, tol: float, what: str) -> None:
    scale = max(1.0, float(np.abs(b).max())) if b.size else 1.0
    np.testing.assert_allclose(a, b, rtol=0, atol=tol * scale, err_msg=what)


def keras_conv_goldens(store: dict) -> None:
    for i, (name, over) in enumerate(CONV_CASES.items()):
        cfg = {**CONV_DEFAULTS, **over}
        d = conv_inputs(cfg, 100 + i)
        d["G"] = np.random.default_rng(200 + i).normal(size=(cfg["batch"], out_len(cfg), cfg["filters"]))
        res = run_keras_conv(cfg, d, "float64")
        assert res["y"].shape == d["G"].shape, (name, res["y"].shape, d["G"].shape)
        res32 = run_keras_conv(cfg, d, "float32")
        for key in res:
            close_scaled(res32[key], res[key], 1e-4, f"{name} float32 vs float64 {key}")
        prefix = f"conv__{name}__"
        store[prefix + "config"] = json.dumps(cfg)
        for key in ("x", "kernel", "G"):
            store[prefix + key] = d[key]
        if cfg["use_bias"]:
            store[prefix + "bias"] = d["bias"]
        for key, v in res.items():
            store[prefix + key] = v


def torch_conv_goldens(store: dict) -> None:
    for i, (name, over) in enumerate(TORCH_CASES.items()):
        cfg = {**CONV_DEFAULTS, **over}
        d = conv_inputs(cfg, 300 + i)
        d["G"] = np.random.default_rng(400 + i).normal(size=(cfg["batch"], out_len(cfg), cfg["filters"]))
        weight = np.ascontiguousarray(d["kernel"].transpose(2, 1, 0))  # as torch holds it
        x = torch.tensor(d["x"].transpose(0, 2, 1), requires_grad=True)  # (B, C, L)
        w = torch.tensor(weight, requires_grad=True)
        b = torch.tensor(d["bias"], requires_grad=True)
        left, right = keras_pads(
            cfg["length"], cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"], cfg["padding"]
        )
        z = F.conv1d(
            F.pad(x, (left, right)), w, b, stride=cfg["strides"], dilation=cfg["dilation_rate"], groups=cfg["groups"]
        )
        act = {"linear": lambda t: t, "tanh": torch.tanh}[cfg["activation"]]
        y = act(z).permute(0, 2, 1)  # (B, out, F)
        assert tuple(y.shape) == d["G"].shape, (name, tuple(y.shape), d["G"].shape)
        (y * torch.tensor(d["G"])).sum().backward()
        prefix = f"torchconv__{name}__"
        store[prefix + "config"] = json.dumps(cfg)
        store[prefix + "x"] = d["x"]
        store[prefix + "weight"] = weight
        store[prefix + "kernel"] = d["kernel"]
        store[prefix + "bias"] = d["bias"]
        store[prefix + "G"] = d["G"]
        store[prefix + "y"] = y.detach().numpy()
        store[prefix + "dx"] = x.grad.numpy().transpose(0, 2, 1)
        store[prefix + "dweight"] = w.grad.numpy()
        store[prefix + "dkernel"] = w.grad.numpy().transpose(2, 1, 0)
        store[prefix + "dbias"] = b.grad.numpy()
        if cfg["strides"] == 1 or cfg["dilation_rate"] == 1:  # Keras accepts it: cross-check
            kd = {k: d[k] for k in ("x", "kernel", "bias", "G")}
            res = run_keras_conv(cfg, kd, "float64")
            close_scaled(store[prefix + "y"], res["y"], 1e-10, f"{name}: torch vs keras y")
            close_scaled(store[prefix + "dx"], res["dx"], 1e-10, f"{name}: torch vs keras dx")
            close_scaled(store[prefix + "dkernel"], res["dkernel"], 1e-10, f"{name}: torch vs keras dkernel")


def make_pool_layer(cfg: dict, dtype: str) -> keras.layers.Layer:
    kind = cfg["kind"]
    if kind == "global_max":
        return keras.layers.GlobalMaxPooling1D(dtype=dtype)
    if kind == "global_avg":
        return keras.layers.GlobalAveragePooling1D(dtype=dtype)
    cls = keras.layers.MaxPooling1D if kind == "max" else keras.layers.AveragePooling1D
    return cls(pool_size=cfg["pool_size"], strides=cfg["strides"], padding=cfg["padding"], dtype=dtype)


def run_keras_pool(cfg: dict, x_np: np.ndarray, g_np: np.ndarray | None, dtype: str):
    layer = make_pool_layer(cfg, dtype)
    x = tf.Variable(x_np.astype(dtype))
    with tf.GradientTape() as tape:
        y = layer(x)
        g = g_np if g_np is not None else np.ones(y.shape)
        loss = tf.reduce_sum(y * tf.constant(g.astype(dtype)))
    return y.numpy(), tape.gradient(loss, x).numpy(), g


def first_max_grad(x: np.ndarray, g: np.ndarray, cfg: dict) -> np.ndarray:
    """d sum(y*G)/dx with every window's gradient on its first maximum (the documented rule)."""
    b, length, c = x.shape
    if cfg["kind"] == "global_max":
        wins = [list(range(length))]
        g = g[:, None, :]
    else:
        p = cfg["pool_size"]
        s = cfg["strides"] or p
        if cfg["padding"] == "valid":
            wins = [list(range(a, a + p)) for a in range(0, length - p + 1, s)]
        else:
            left, _ = keras_pads(length, p, s, 1, "same")
            wins = [
                [i for i in range(t * s - left, t * s - left + p) if 0 <= i < length]
                for t in range(math.ceil(length / s))
            ]
    dx = np.zeros_like(x)
    for t, cells in enumerate(wins):
        for bi in range(b):
            for ch in range(c):
                dx[bi, cells[int(np.argmax(x[bi, cells, ch]))], ch] += g[bi, t, ch]
    return dx


def pool_goldens(store: dict) -> None:
    for i, (name, over) in enumerate(POOL_CASES.items()):
        cfg = {**POOL_DEFAULTS, **over}
        rng = np.random.default_rng(500 + i)
        shape = (3, cfg["length"], 4)
        x = rng.integers(-2, 3, size=shape).astype(np.float64) if cfg["ties"] else rng.normal(size=shape)
        y, _, _ = run_keras_pool(cfg, x, None, "float64")
        g = rng.normal(size=y.shape)
        y, dx, _ = run_keras_pool(cfg, x, g, "float64")
        y32, dx32, _ = run_keras_pool(cfg, x, g, "float32")
        close_scaled(y32, y, 1e-5, f"{name} float32 y")
        close_scaled(dx32, dx, 1e-5, f"{name} float32 dx")
        if cfg["kind"] == "max":
            np.testing.assert_allclose(dx, first_max_grad(x, g, cfg), atol=1e-12, err_msg=f"{name}: not first-max")
        if cfg["kind"] == "global_max":
            # tf.reduce_max splits the gradient equally among tied maxima (seqcore: first maximum).
            is_max = x == x.max(axis=1, keepdims=True)
            split = is_max * (g / is_max.sum(axis=1))[:, None, :]
            np.testing.assert_allclose(dx, split, atol=1e-12, err_msg=f"{name}: not an equal split")
        prefix = f"pool__{name}__"
        store[prefix + "config"] = json.dumps(cfg)
        store[prefix + "x"] = x
        store[prefix + "G"] = g
        store[prefix + "y"] = y
        store[prefix + "dx"] = dx


def length_tables(store: dict) -> None:
    rows = []
    for length in (1, 2, 5, 7, 8, 12, 13):
        for k in (1, 2, 3, 4, 5):
            for s in (1, 2, 3, 5):
                for d in (1, 2, 3):
                    if s > 1 and d > 1:
                        continue  # Keras refuses the combination
                    for padding in ("valid", "same", "causal"):
                        if padding == "valid" and length < d * (k - 1) + 1:
                            continue  # Keras: "output size would be zero or negative"
                        layer = keras.layers.Conv1D(1, k, strides=s, padding=padding, dilation_rate=d)
                        out = layer(np.zeros((1, length, 1), np.float32)).shape[1]
                        rows.append([length, k, s, d, PADS[padding], out])
    store["conv_lengths"] = np.array(rows, dtype=np.int64)
    prow = []
    for length in (1, 2, 5, 7, 8, 12, 13):
        for p in (1, 2, 3, 4, 5):
            for s in (1, 2, 3, 5):
                for padding in ("valid", "same"):
                    if padding == "valid" and length < p:
                        continue
                    out = keras.layers.MaxPooling1D(p, strides=s, padding=padding)(np.zeros((1, length, 1))).shape[1]
                    prow.append([length, p, s, PADS[padding], out])
    store["pool_lengths"] = np.array(prow, dtype=np.int64)


def main() -> None:
    store: dict = {}
    keras_conv_goldens(store)
    torch_conv_goldens(store)
    pool_goldens(store)
    length_tables(store)
    np.savez_compressed(OUT, **store)
    print(f"wrote {OUT} ({len(store)} arrays, {OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
