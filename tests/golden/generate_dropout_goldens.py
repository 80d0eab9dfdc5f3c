"""Print the Keras 3 recurrent_dropout goldens that tests/test_recurrent_dropout.py holds as literals.

NEVER run in CI (Keras and TensorFlow are not installed there); the numbers it prints were pasted
into ``KERAS_GOLDENS`` in tests/test_recurrent_dropout.py, which needs neither Keras nor a data file.
Regenerate by hand with

    python tests/golden/generate_dropout_goldens.py > /tmp/goldens.py

and paste the printed block over the old one. Generated with Keras 3.15.1, TensorFlow 2.21.0 (CPU),
NumPy 2.4.6.

What it computes, per cell (``lstm``, ``gru_ra`` = GRU reset_after=True, ``gru_rb`` = GRU
reset_after=False) and case (``GOLDEN_CASES`` in the test module: input + recurrent masks; recurrent
masks only with go_backwards, an initial state and a Keras ``mask``): the Keras layer
(``keras.layers.LSTM`` / ``GRU``, ``return_sequences=True, return_state=True``, float64 weights and
compute so the literals carry no float32 rounding) called with ``training=True`` under
``tf.GradientTape``; it records ``outputs``, the final states ``h`` (and ``c``) and the gradients of
``loss = sum(outputs * d_outputs) + sum(h * d_h_last) [+ sum(c * d_c_last)]`` by ``x``, ``kernel``,
``recurrent_kernel``, ``bias`` and (with an initial state) ``h0`` (and ``c0``). All inputs, weights,
masks and upstream gradients come from ``golden_inputs`` in the test module (deterministic integer
grids, no random generator), which this script imports.

Making the masks deterministic: with ``recurrent_dropout > 0`` Keras switches the cell to its
``implementation=1`` (``keras/src/layers/rnn/lstm.py`` / ``gru.py``, ``LSTMCell.__init__`` /
``GRUCell.__init__``; ``dropout_mask_count`` = 4 / 3) and skips the fused ``backend.lstm`` /
``backend.gru`` path (``LSTM.inner_loop`` only tries it when ``not self.recurrent_dropout``). The
generic ``RNN.call`` (``keras/src/layers/rnn/rnn.py``) first calls ``_maybe_config_dropout_masks``,
which calls ``cell.get_dropout_mask(x[:, 0])`` and ``cell.get_recurrent_dropout_mask(h0)``; then each
step's ``cell.call`` calls them again (``DropoutRNNCell`` caches the first draw for the sequence) and
multiplies gate g's input by ``mask[g]`` -- only when ``training`` and ``0 < rate < 1``, so the layer
is built with the case's rates. This script replaces those two methods on the cell instance with
functions that return fixed lists of constant tensors (the test's masks, already scaled by
1 / (1 - rate), as Keras's ``backend.random.dropout`` scales them). ``RNN.call`` afterwards calls
``reset_dropout_mask`` / ``reset_recurrent_dropout_mask``, which only clear the (unused) cache.

Self-checks before printing: (1) the patched masks are really used -- all-ones masks reproduce the
``training=False`` result to 1e-12 while the case's masks change it; (2) the float32 layer agrees with
the float64 one to 1e-4 (same code path); (3) for information, the largest difference from
``seqcore.reference_rnn`` with the same masks is printed to stderr.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU: the generic loop, never cuDNN

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the test module

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from test_recurrent_dropout import GOLDEN_CASES, GOLDEN_CELLS, GOLDEN_SHAPE, golden_inputs  # noqa: E402

FIELDS = ("outputs", "h", "c", "dx", "dkernel", "drecurrent_kernel", "dbias", "dh0", "dc0")


def run_keras(cell: str, case: str, dtype: str, masks: str = "case", training: bool = True) -> dict[str, np.ndarray]:
    """One Keras run; ``masks`` = "case" (the test's masks) or "ones" (all-ones masks)."""
    kind, reset_after = GOLDEN_CELLS[cell]
    cfg = GOLDEN_CASES[case]
    kw, up = golden_inputs(cell, case)
    b, t, f, _ = GOLDEN_SHAPE
    common = {
        "units": GOLDEN_SHAPE[3],
        "dropout": cfg["dropout"],
        "recurrent_dropout": cfg["recurrent_dropout"],
        "go_backwards": cfg["go_backwards"],
        "return_sequences": True,
        "return_state": True,
        "dtype": dtype,
    }
    layer = keras.layers.LSTM(**common) if kind == "lstm" else keras.layers.GRU(reset_after=reset_after, **common)
    layer.build((b, t, f))
    layer.set_weights([kw[k].astype(dtype) for k in ("kernel", "recurrent_kernel", "bias")])
    rnn_cell = layer.cell
    assert rnn_cell.implementation == 1 and rnn_cell.dropout_mask_count == (4 if kind == "lstm" else 3)

    def fixed(name: str) -> list[tf.Tensor] | None:
        m = kw[name]
        if m is None:
            return None
        m = np.ones_like(m) if masks == "ones" else m
        return [tf.constant(g, dtype=dtype) for g in m]

    input_masks, recurrent_masks = fixed("input_masks"), fixed("recurrent_masks")
    object.__setattr__(rnn_cell, "get_dropout_mask", lambda step_input: input_masks)
    object.__setattr__(rnn_cell, "get_recurrent_dropout_mask", lambda step_input: recurrent_masks)

    x = tf.constant(kw["x"], dtype=dtype)
    states = []
    if cfg["initial_state"]:
        states = [tf.constant(kw["h0"], dtype=dtype)]
        if kind == "lstm":
            states.append(tf.constant(kw["c0"], dtype=dtype))
    mask = None
    if kw["lengths"] is not None:
        mask = tf.constant(np.arange(t)[None, :] < kw["lengths"][:, None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        for s in states:
            tape.watch(s)
        res = layer(x, initial_state=states or None, mask=mask, training=training)
        loss = tf.reduce_sum(res[0] * up["d_outputs"].astype(dtype))
        loss += tf.reduce_sum(res[1] * up["d_h_last"].astype(dtype))
        if kind == "lstm":
            loss += tf.reduce_sum(res[2] * up["d_c_last"].astype(dtype))
    targets = {"dx": x, "dkernel": rnn_cell.kernel, "drecurrent_kernel": rnn_cell.recurrent_kernel}
    targets["dbias"] = rnn_cell.bias
    if states:
        targets["dh0"] = states[0]
        if kind == "lstm":
            targets["dc0"] = states[1]
    grads = tape.gradient(loss, list(targets.values()))
    out = {"outputs": np.asarray(res[0]), "h": np.asarray(res[1])}
    if kind == "lstm":
        out["c"] = np.asarray(res[2])
    for name, g in zip(targets, grads, strict=True):
        out[name] = np.asarray(g)
    return out


def check(cell: str, case: str, res: dict[str, np.ndarray]) -> None:
    ones = run_keras(cell, case, "float64", masks="ones")
    plain = run_keras(cell, case, "float64", training=False)
    for k in ("outputs", "h"):
        np.testing.assert_allclose(ones[k], plain[k], rtol=0, atol=1e-12, err_msg=f"{cell}/{case} {k}: ones")
    assert np.abs(res["outputs"] - plain["outputs"]).max() > 1e-3, f"{cell}/{case}: masks had no effect"
    f32 = run_keras(cell, case, "float32")
    for k, v in res.items():
        scale = max(1.0, float(np.abs(v).max()))
        np.testing.assert_allclose(f32[k], v, rtol=0, atol=1e-4 * scale, err_msg=f"{cell}/{case} {k}: float32")
    try:  # information only: the float64 reference with the same masks
        from seqcore import reference_rnn as R

        kw, up = golden_inputs(cell, case)
        if GOLDEN_CELLS[cell][0] == "lstm":
            out, h, c = R.lstm_forward(**kw)
            ref = {"outputs": out, "h": h, "c": c, **R.lstm_backward(**kw, **up)}
        else:
            out, h = R.gru_forward(**kw)
            ref = {"outputs": out, "h": h, **R.gru_backward(**kw, **up)}
        err = max(float(np.abs(ref[k] - v).max()) for k, v in res.items())
        print(f"# {cell}/{case}: max |reference - keras| = {err:.3g}", file=sys.stderr)
    except Exception as e:  # the GRU reference may not take masks yet
        print(f"# {cell}/{case}: reference not compared ({type(e).__name__}: {e})", file=sys.stderr)


def literal(a: np.ndarray, indent: int) -> str:
    """``np.array([...])`` (flat, 9 significant digits) reshaped to ``a.shape``, lines < 120 columns."""
    nums = [f"{v:.9g}" for v in np.asarray(a, dtype=np.float64).ravel()]
    pad = " " * indent
    lines, line = [], ""
    for n in nums:
        item = f"{n}, "
        if len(pad) + 4 + len(line) + len(item) > 112:
            lines.append(line.rstrip())
            line = ""
        line += item
    lines.append(line.rstrip().rstrip(","))
    body = f"\n{pad}    ".join(lines)
    return f"np.array([\n{pad}    {body},\n{pad}]).reshape{a.shape if a.ndim > 1 else (a.size,)}"


def main() -> None:
    keras.utils.set_random_seed(0)  # unused (the masks are fixed), for good measure
    print(f"# Generated by tests/golden/generate_dropout_goldens.py (Keras {keras.__version__}, "
          f"TensorFlow {tf.__version__}, float64).")  # fmt: skip
    print("# fmt: off")
    print("KERAS_GOLDENS: dict[str, dict[str, np.ndarray]] = {")
    for cell in GOLDEN_CELLS:
        for case in GOLDEN_CASES:
            res = run_keras(cell, case, "float64")
            check(cell, case, res)
            print(f'    "{cell}/{case}": {{')
            for k in FIELDS:
                if k in res:
                    print(f'        "{k}": {literal(res[k], 8)},')
            print("    },")
    print("}")
    print("# fmt: on")


if __name__ == "__main__":
    main()
