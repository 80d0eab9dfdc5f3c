"""Generate tests/golden/rnn_goldens.npz: Keras 3 and PyTorch LSTM / GRU goldens for the reference.

NEVER run in CI (Keras, TensorFlow and torch are not installed there); the .npz it writes is committed
and tests/test_reference_rnn.py reads only that file. Regenerate by hand with

    python tests/golden/generate_rnn_goldens.py

Generated with Keras 3.15.1, TensorFlow 2.21.0 (CPU, so the generic ``backend.rnn`` loop, not cuDNN),
torch 2.15.0, NumPy 2.4.6.

Contents (keys ``<cell>__<case>__<field>``, cell in ``lstm``, ``gru_ra`` (GRU reset_after=True),
``gru_rb`` (GRU reset_after=False)):

* Shared per cell: ``<cell>__x`` (B, T, F), ``__kernel``, ``__recurrent_kernel``, ``__bias``, ``__h0``
  (and ``__c0`` for LSTM), the upstream gradients ``__G`` (B, T, H), ``__GH`` (B, H) (and ``__GC``),
  and ``__lengths`` (B,) = [5, 2, 0] (a full-length, a partial and a length-0 sample).
* Per case ``<cell>__<case>__config``: a JSON string (activation, recurrent_activation, go_backwards,
  use_bias, masked, initial_state). Masking uses ``mask = t < lengths[b]`` passed as ``mask=`` to the
  layer call (checked below to equal a ``keras.layers.Masking`` layer on post-padded data).
* Per case, the Keras layer (``return_sequences=True, return_state=True``, float64 weights and
  compute) results ``outputs``, ``h``, (``c``), and the gradients of
  ``loss = sum(outputs * G) + sum(h * GH) [+ sum(c * GC)]`` via ``tf.GradientTape``:
  ``dx``, ``dkernel``, ``drecurrent_kernel``, ``dbias`` (if use_bias), ``dh0`` / ``dc0`` (if
  initial_state).
* ``torch_lstm__*`` / ``torch_gru__*``: float64 ``nn.LSTM`` / ``nn.GRU`` (batch_first=True) with their
  own seeded weights (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``), ``x``, ``h0`` (``c0``),
  ``outputs``, ``h_n`` (``c_n``), and the gradients of ``sum(outputs * G)`` w.r.t. x and the torch
  parameters (``dx``, ``dweight_ih``, ``dweight_hh``, ``dbias_ih``, ``dbias_hh``).

Keras runs in float64 (``dtype="float64"``) so the test can compare at ~1e-10 rather than float32's
~1e-5; this script also runs every case in float32 and asserts it agrees with float64 to 1e-4
(relative to the array's largest magnitude), i.e. the float64 layer follows the same code path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU: the generic loop, never cuDNN

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

OUT = Path(__file__).with_name("rnn_goldens.npz")
B, T, F, H = 3, 5, 4, 6
LENGTHS = np.array([5, 2, 0])

CASES = {
    "default": {},
    "relu_hard_sigmoid": {"activation": "relu", "recurrent_activation": "hard_sigmoid"},
    "linear_tanh": {"activation": "linear", "recurrent_activation": "tanh"},
    "backwards": {"go_backwards": True},
    "masked": {"masked": True},
    "initial_state": {"initial_state": True},
    "masked_initial_state": {"masked": True, "initial_state": True},
    "masked_backwards_initial_state": {"masked": True, "go_backwards": True, "initial_state": True},
    "no_bias": {"use_bias": False},
    "no_bias_masked_backwards_relu": {
        "use_bias": False,
        "masked": True,
        "go_backwards": True,
        "activation": "relu",
        "recurrent_activation": "hard_sigmoid",
    },
}
DEFAULTS = {
    "activation": "tanh",
    "recurrent_activation": "sigmoid",
    "go_backwards": False,
    "use_bias": True,
    "masked": False,
    "initial_state": False,
}
CELLS = {"lstm": (4, None), "gru_ra": (3, True), "gru_rb": (3, False)}


def shared_inputs(cell: str, seed: int) -> dict[str, np.ndarray]:
    gates, reset_after = CELLS[cell]
    rng = np.random.default_rng(seed)
    d = {
        "x": rng.normal(size=(B, T, F)),
        "kernel": 0.5 * rng.normal(size=(F, gates * H)),
        "recurrent_kernel": 0.5 * rng.normal(size=(H, gates * H)),
        "bias": 0.5 * rng.normal(size=(2, gates * H) if reset_after else (gates * H,)),
        "h0": rng.normal(size=(B, H)),
        "G": rng.normal(size=(B, T, H)),
        "GH": rng.normal(size=(B, H)),
        "lengths": LENGTHS,
    }
    if cell == "lstm":
        d["c0"] = rng.normal(size=(B, H))
        d["GC"] = rng.normal(size=(B, H))
    return d


def make_layer(cell: str, cfg: dict, dtype: str) -> keras.layers.Layer:
    common = {
        "units": H,
        "activation": cfg["activation"],
        "recurrent_activation": cfg["recurrent_activation"],
        "use_bias": cfg["use_bias"],
        "go_backwards": cfg["go_backwards"],
        "return_sequences": True,
        "return_state": True,
        "dtype": dtype,
    }
    if cell == "lstm":
        return keras.layers.LSTM(**common)
    return keras.layers.GRU(reset_after=CELLS[cell][1], **common)


def run_keras(cell: str, cfg: dict, d: dict[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    layer = make_layer(cell, cfg, dtype)
    layer.build((B, T, F))
    weights = [d["kernel"], d["recurrent_kernel"]] + ([d["bias"]] if cfg["use_bias"] else [])
    layer.set_weights([w.astype(dtype) for w in weights])
    x = tf.constant(d["x"], dtype=dtype)
    states = [tf.constant(d["h0"], dtype=dtype)]
    if cell == "lstm":
        states.append(tf.constant(d["c0"], dtype=dtype))
    mask = tf.constant(np.arange(T)[None, :] < d["lengths"][:, None]) if cfg["masked"] else None
    with tf.GradientTape() as tape:
        tape.watch(x)
        for s in states:
            tape.watch(s)
        res = layer(x, initial_state=states if cfg["initial_state"] else None, mask=mask)
        outputs, h = res[0], res[1]
        loss = tf.reduce_sum(outputs * d["G"].astype(dtype)) + tf.reduce_sum(h * d["GH"].astype(dtype))
        if cell == "lstm":
            loss += tf.reduce_sum(res[2] * d["GC"].astype(dtype))
    cellw = layer.cell
    targets = {"dx": x, "dkernel": cellw.kernel, "drecurrent_kernel": cellw.recurrent_kernel}
    if cfg["use_bias"]:
        targets["dbias"] = cellw.bias
    if cfg["initial_state"]:
        targets["dh0"] = states[0]
        if cell == "lstm":
            targets["dc0"] = states[1]
    grads = tape.gradient(loss, list(targets.values()))
    out = {"outputs": outputs.numpy(), "h": h.numpy()}
    if cell == "lstm":
        out["c"] = res[2].numpy()
    for name, g in zip(targets, grads, strict=True):
        out[name] = np.asarray(g)

    if cfg["masked"] and not cfg["initial_state"]:
        # mask= equals a Masking layer on post-padded (zeroed) data. (Not with initial_state: Keras's
        # Layer.__call__ only auto-fills `mask` from the input's _keras_mask when the call has a
        # single tensor argument, so with initial_state tensors a Masking mask is silently dropped.)
        valid = np.arange(T)[None, :, None] < d["lengths"][:, None, None]
        padded = tf.constant(np.where(valid, d["x"], 0.0), dtype=dtype)
        res2 = layer(keras.layers.Masking(mask_value=0.0, dtype=dtype)(padded))
        for a, b in zip(res, res2, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-12)
    return out


def torch_goldens(seed: int) -> dict[str, np.ndarray]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, cls in (("torch_lstm", torch.nn.LSTM), ("torch_gru", torch.nn.GRU)):
        mod = cls(F, H, batch_first=True).double()
        x = torch.tensor(rng.normal(size=(B, T, F)), requires_grad=True)
        h0 = torch.tensor(rng.normal(size=(1, B, H)))
        G = rng.normal(size=(B, T, H))
        if cls is torch.nn.LSTM:
            c0 = torch.tensor(rng.normal(size=(1, B, H)))
            y, (h_n, c_n) = mod(x, (h0, c0))
            out[f"{name}__c0"], out[f"{name}__c_n"] = c0.numpy()[0], c_n.detach().numpy()[0]
        else:
            y, h_n = mod(x, h0)
        (y * torch.tensor(G)).sum().backward()
        out[f"{name}__x"] = x.detach().numpy()
        out[f"{name}__h0"] = h0.numpy()[0]
        out[f"{name}__G"] = G
        out[f"{name}__outputs"] = y.detach().numpy()
        out[f"{name}__h_n"] = h_n.detach().numpy()[0]
        out[f"{name}__dx"] = x.grad.numpy()
        for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            param = getattr(mod, f"{p}_l0")
            out[f"{name}__{p}"] = param.detach().numpy()
            out[f"{name}__d{p}"] = param.grad.numpy()
    return out


def main() -> None:
    keras.utils.set_random_seed(0)
    data: dict[str, np.ndarray] = {}
    for seed, cell in enumerate(CELLS):
        d = shared_inputs(cell, seed=100 + seed)
        for k, v in d.items():
            data[f"{cell}__{k}"] = v
        for case, overrides in CASES.items():
            cfg = {**DEFAULTS, **overrides}
            res = run_keras(cell, cfg, d, "float64")
            res32 = run_keras(cell, cfg, d, "float32")
            for k, v in res.items():
                scale = max(1.0, float(np.abs(v).max()))
                np.testing.assert_allclose(res32[k], v, rtol=0, atol=1e-4 * scale, err_msg=f"{cell}/{case}/{k}")
                data[f"{cell}__{case}__{k}"] = v
            data[f"{cell}__{case}__config"] = np.array(json.dumps(cfg))
    data.update(torch_goldens(seed=7))
    np.savez_compressed(OUT, **data)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(data)} arrays)")


if __name__ == "__main__":
    main()
