"""Generate tests/golden/mask_goldens.npz: Keras 3 outputs and gradients of LSTM, GRU, SimpleRNN and
Bidirectional(LSTM) under boolean masks of every shape: post-padded, pre-padded (Keras's
``pad_sequences`` default), holed (gaps in the middle), and mixed (one row of each, plus a fully
masked row). Read by tests/test_masks.py.

NEVER run in CI (Keras and TensorFlow are not installed there); the .npz it writes is committed.
Regenerate by hand with

    python tests/golden/generate_mask_goldens.py

Generated with Keras 3.15.1, TensorFlow 2.21.0 (CPU: the generic ``backend.rnn`` loop), NumPy 2.4.

Keys ``<layer>__<mask>__<field>``; ``layer`` in ``lstm``, ``lstm_back`` (go_backwards),
``lstm_h0`` (with initial_state), ``gru``, ``gru_back``, ``simple_rnn``, ``bidi`` (Bidirectional(LSTM),
concat, return_sequences) and ``bidi_last`` (Bidirectional(GRU), sum, last step only); ``mask`` in
``post``, ``pre``, ``holes``, ``mixed``. Shared: ``x`` (B, T, F), ``masks__<mask>`` (B, T) bool,
``G`` the upstream gradient of the outputs, ``h0``/``c0``. Per layer: its weights
``<layer>__w<i>`` in Keras order. Per case: ``out`` and the gradients of ``sum(out * G)`` by x
(``dx``), by each weight (``dw<i>``) and, for ``lstm_h0``, by the initial states (``dh0``, ``dc0``).
Keras runs in float64 so the test compares float32 results to the float64 truth.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

OUT = Path(__file__).with_name("mask_goldens.npz")
B, T, F, H = 4, 7, 3, 5


def masks() -> dict[str, np.ndarray]:
    lengths = np.array([7, 4, 1, 5])
    t = np.arange(T)[None, :]
    post = t < lengths[:, None]
    pre = t >= (T - lengths)[:, None]
    holes = np.ones((B, T), dtype=bool)
    holes[0, [1, 2]] = False
    holes[1, [0, 3, 6]] = False
    holes[2, 2:5] = False
    holes[3, [5]] = False
    mixed = np.stack([post[1], pre[1], holes[2], np.zeros(T, dtype=bool)])
    return {"post": post, "pre": pre, "holes": holes, "mixed": mixed}


def layers() -> dict[str, keras.layers.Layer]:
    kw = {"dtype": "float64", "return_sequences": True}
    return {
        "lstm": keras.layers.LSTM(H, **kw),
        "lstm_back": keras.layers.LSTM(H, go_backwards=True, **kw),
        "lstm_h0": keras.layers.LSTM(H, **kw),
        "gru": keras.layers.GRU(H, **kw),
        "gru_back": keras.layers.GRU(H, go_backwards=True, reset_after=False, **kw),
        "simple_rnn": keras.layers.SimpleRNN(H, **kw),
        "bidi": keras.layers.Bidirectional(keras.layers.LSTM(H, **kw), dtype="float64"),
        "bidi_last": keras.layers.Bidirectional(
            keras.layers.GRU(H, dtype="float64"), merge_mode="sum", dtype="float64"
        ),
    }


def main() -> None:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, F))
    h0, c0 = rng.normal(size=(B, H)) * 0.5, rng.normal(size=(B, H)) * 0.5
    out: dict[str, np.ndarray] = {"x": x, "h0": h0, "c0": c0}
    ms = masks()
    for name, m in ms.items():
        out[f"masks__{name}"] = m
    for lname, layer in layers().items():
        layer.build((B, T, F))
        # Spread the weights a little beyond the initializers so that every gate matters.
        for i, w in enumerate(layer.weights):
            w.assign(w.numpy() + rng.normal(scale=0.2, size=w.shape))
            out[f"{lname}__w{i}"] = w.numpy()
        for mname, m in ms.items():
            xt = tf.constant(x)
            states = [tf.constant(h0), tf.constant(c0)] if lname == "lstm_h0" else None
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(xt)
                if states is not None:
                    for s in states:
                        tape.watch(s)
                y = layer(xt, mask=tf.constant(m), initial_state=states) if states else layer(xt, mask=tf.constant(m))
                g = np.random.default_rng(1).normal(size=y.shape)
                loss = tf.reduce_sum(y * g)
            key = f"{lname}__{mname}__"
            out[key + "out"] = y.numpy()
            out[key + "G"] = g
            out[key + "dx"] = tape.gradient(loss, xt).numpy()
            for i, w in enumerate(layer.weights):
                out[key + f"dw{i}"] = tape.gradient(loss, w).numpy()
            if states is not None:
                out[key + "dh0"] = tape.gradient(loss, states[0]).numpy()
                out[key + "dc0"] = tape.gradient(loss, states[1]).numpy()
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({len(out)} arrays)")


if __name__ == "__main__":
    main()
