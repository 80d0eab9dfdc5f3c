"""Writes the interop goldens in tests/golden/interop/, read by tests/test_interop_keras.py and
tests/test_interop_torch.py so that the converters are checked against real Keras and PyTorch
outputs in CI, where neither is installed.

NEVER run in CI. Regenerate by hand where keras, tensorflow and torch are installed:

    python tests/golden/generate_interop_goldens.py          # everything
    python tests/golden/generate_interop_goldens.py graphs   # only the Functional-graph goldens

Generated with Keras 3.15.1 / TensorFlow 2.21 (CPU) and torch 2.15.0.

Contents:

* ``<case>.keras``: tiny Keras 3 models saved with ``model.save`` (config.json + metadata.json +
  model.weights.h5), then re-zipped with deflate to keep the repository small (Keras writes the
  members uncompressed; zipfile, and so Keras, reads either). Every weight, biases included, is set
  to random values so that a wrong layout cannot go unnoticed.
* ``keras_goldens.npz``: per case ``<case>__x`` (a probe input; in ``masked_rnn`` sample 1 is
  post-padded with the mask value) and ``<case>__y`` (the Keras model's output on it).
* ``graph_<case>.keras`` and ``keras_graph_goldens.npz``: Functional graphs that are not chains
  (several inputs and dict outputs, ``initial_state=`` links, keras.ops calls, every merge layer, a
  shared layer, masks through a merge), with ``<case>__x<i>`` per input and ``<case>__y__<output>``.
* ``torch_goldens.npz``: per case ``<case>__sd__<key>`` (the module's ``state_dict`` as float32
  arrays), ``<case>__x`` (the input as torch takes it: channels-first for conv modules,
  batch-first for RNNs) and ``<case>__y`` (the module's output, for RNNs the ``output`` tensor); the
  modules are listed in ``torch_modules`` below.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

OUT = Path(__file__).parent / "interop"
L = keras.layers


def keras_models() -> dict[str, keras.Model]:
    inner = keras.Sequential(
        [keras.Input((8, 1)), L.Conv1D(3, 3, activation="relu"), L.MaxPooling1D(2), L.Flatten()], name="per_step"
    )
    cnn_bilstm = keras.Sequential(
        [
            keras.Input((3, 8, 1)),
            L.TimeDistributed(inner),
            L.Bidirectional(L.LSTM(3, return_sequences=True)),
            L.GRU(2, reset_after=False),
            L.Dense(3, kernel_regularizer=keras.regularizers.l2(0.01)),
            L.Activation("softmax"),
        ],
        name="cnn_bilstm",
    )
    conv_stack = keras.Sequential(
        [
            keras.Input((12, 4)),
            L.Conv1D(4, 3, padding="causal", dilation_rate=2, groups=2, activation="tanh"),
            L.AveragePooling1D(2, padding="same"),
            L.Conv1D(5, 2, strides=2, padding="same", activation="relu", kernel_initializer="he_normal"),
            L.MaxPooling1D(2, strides=1),
            L.Dropout(0.2),
            L.GlobalAveragePooling1D(),
            L.Dense(2, activation="hard_sigmoid", kernel_regularizer=keras.regularizers.L1L2(0.01, 0.02)),
        ],
        name="conv_stack",
    )
    masked_rnn = keras.Sequential(
        [
            keras.Input((6, 3)),
            L.Masking(0.0),
            L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum"),
            L.LSTM(4, return_sequences=True, go_backwards=True, unit_forget_bias=False),
            L.TimeDistributed(L.Dense(2, activation="tanh")),
            L.Flatten(),
            L.Dense(1),
        ],
        name="masked_rnn",
    )
    inp = keras.Input((5, 3))
    h = L.GRU(4, return_sequences=True)(inp)
    h = L.Dense(3, activation="tanh")(h)
    h = L.Reshape((15,))(h)
    functional = keras.Model(inp, L.Dense(2)(h), name="functional_chain")
    return {"cnn_bilstm": cnn_bilstm, "conv_stack": conv_stack, "masked_rnn": masked_rnn, "functional": functional}


def deflate(data: bytes) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for info in src.infolist():
            z.writestr(info.filename, src.read(info.filename))
    return buf.getvalue()


def keras_goldens() -> None:
    rng = np.random.default_rng(0)
    arrays: dict[str, np.ndarray] = {}
    for case, model in keras_models().items():
        model.set_weights([rng.normal(0, 0.5, size=w.shape).astype(np.float32) for w in model.get_weights()])
        shape = tuple(model.input_shape[1:])
        x = rng.normal(size=(3, *shape)).astype(np.float32)
        if case == "masked_rnn":
            x[1, 4:] = 0.0  # post-padded with the mask value
            x[2, 2:] = 0.0
        tmp = OUT / f"{case}.tmp.keras"
        model.save(tmp)
        (OUT / f"{case}.keras").write_bytes(deflate(tmp.read_bytes()))
        tmp.unlink()
        arrays[f"{case}__x"] = x
        arrays[f"{case}__y"] = keras.ops.convert_to_numpy(model(x, training=False))
        # the deflated file must load in Keras and give the same numbers
        again = keras.saving.load_model(OUT / f"{case}.keras", compile=False)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(again(x)), arrays[f"{case}__y"])
    np.savez_compressed(OUT / "keras_goldens.npz", **arrays)


def keras_graphs() -> dict[str, tuple[keras.Model, list[tuple[int, ...]]]]:
    """Functional graphs that are not chains: name -> (model, input shapes without the batch)."""
    ops = keras.ops
    enc_in, dec_in = keras.Input((6, 3), name="enc_in"), keras.Input((5, 2), name="dec_in")
    _, h, c = L.LSTM(4, return_state=True, name="encoder")(enc_in)
    dec = L.LSTM(4, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    y = dec + L.Dense(4, name="skip")(dec_in)  # a keras.ops Add
    y = L.Concatenate(name="join")([ops.tanh(y) * 0.5, dec])
    seq2seq = keras.Model([enc_in, dec_in], L.Dense(2, activation="softmax", name="head")(y), name="seq2seq")

    x = keras.Input((8, 4), name="series")
    a = L.Conv1D(5, 3, padding="same", activation="relu", name="conv")(x)
    b = L.Dense(5, name="proj")(x)
    s = ops.relu(L.Add(name="residual")([a, b]))
    m = L.Multiply(name="gate")([s, L.Subtract(name="diff")([b, a])])
    g = L.Bidirectional(L.GRU(3, return_sequences=True), name="bigru")(L.Maximum(name="max")([m, s]))
    p = L.GlobalMaxPooling1D(name="gmp")(g)
    q = L.Dense(6, name="widen")(L.GlobalAveragePooling1D(name="gap")(a))
    shared = L.Dense(2, name="shared")
    o1, o2 = shared(p), shared(q)
    branches = keras.Model(
        x,
        {"cls": L.Average(name="avg")([o1, o2]), "sim": L.Dot(axes=1, normalize=True, name="cos")([o1, o2])},
        name="branches",
    )

    ids = keras.Input((7,), name="ids")
    e = L.Embedding(20, 4, mask_zero=True, name="emb")(ids)
    h1 = L.LSTM(3, return_sequences=True, name="lstm_a")(e)
    h2 = L.GRU(3, return_sequences=True, name="gru_b")(e)
    text = keras.Model(ids, L.LSTM(2, name="reader")(L.Add(name="sum")([h1, h2])), name="text")
    z = keras.Input((6, 4), name="z")
    h = L.LayerNormalization(epsilon=1e-6, name="ln")(L.Add(name="res")([z, L.Dense(4, name="ff")(z)]))
    h = L.BatchNormalization(momentum=0.9, name="bn")(h)
    h = L.RMSNormalization(name="rms")(L.LSTM(3, return_sequences=True, name="rnn")(h))
    h = L.GroupNormalization(groups=3, name="gn")(h)
    h = L.UnitNormalization(name="unit")(L.Concatenate(name="cat")([h, L.Dense(2, name="side")(z)]))
    norm = keras.Model(z, L.LayerNormalization(axis=[1, 2], center=False, name="ln2")(h), name="norm_block")
    return {"graph_seq2seq": (seq2seq, [(6, 3), (5, 2)]), "graph_branches": (branches, [(8, 4)]),
            "graph_text": (text, [(7,)]), "graph_norm": (norm, [(6, 4)])}  # fmt: skip


def keras_graph_goldens() -> None:
    """``graph_<case>.keras`` and keras_graph_goldens.npz: ``<case>__x<i>`` per input and
    ``<case>__y__<output>`` per output (dict keys, or the index for a list)."""
    rng = np.random.default_rng(1)
    arrays: dict[str, np.ndarray] = {}
    for case, (model, shapes) in keras_graphs().items():
        # |N(0, 0.5)| + 0.5 for the moving variances, which must be positive
        model.set_weights(
            [
                (
                    np.abs(rng.normal(0, 0.5, size=w.shape)) + 0.5
                    if "variance" in w.path
                    else rng.normal(0, 0.5, w.shape)
                ).astype(np.float32)
                for w in model.weights
            ]
        )
        if case == "graph_text":
            xs = [rng.integers(1, 20, size=(3, 7)).astype(np.int32)]
            xs[0][1, 4:] = 0  # post-padding: index 0 is the mask
            xs[0][2, 2:] = 0
        else:
            xs = [rng.normal(size=(3, *shape)).astype(np.float32) for shape in shapes]
        tmp = OUT / f"{case}.tmp.keras"
        model.save(tmp)
        (OUT / f"{case}.keras").write_bytes(deflate(tmp.read_bytes()))
        tmp.unlink()
        out = model(xs if len(xs) > 1 else xs[0], training=False)
        outs = out if isinstance(out, dict) else {"0": out}
        for i, x in enumerate(xs):
            arrays[f"{case}__x{i}"] = x
        for k, v in outs.items():
            arrays[f"{case}__y__{k}"] = keras.ops.convert_to_numpy(v)
    np.savez_compressed(OUT / "keras_graph_goldens.npz", **arrays)


def torch_modules() -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    """name -> (module, input shape as torch takes it)."""
    return {
        "linear": (nn.Linear(4, 3), (2, 5, 4)),
        "lstm_bi2": (nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True, dropout=0.1), (2, 6, 3)),
        "gru": (nn.GRU(3, 5, batch_first=True), (2, 6, 3)),
        "gru_nobias": (nn.GRU(2, 3, bias=False, batch_first=True), (2, 4, 2)),
        "conv_same_even": (nn.Conv1d(3, 4, 4, padding="same"), (2, 3, 9)),
        "conv_int_same_dilated": (nn.Conv1d(2, 3, 5, padding=4, dilation=2), (2, 2, 11)),
        "conv_groups_stride": (nn.Conv1d(4, 6, 3, stride=2, dilation=2, groups=2), (2, 4, 13)),
        # steps: 12 -> conv 10 -> pool 5 -> 'same' conv 5; Flatten gives 3 channels x 5 steps = 15
        "seq_cnn": (
            nn.Sequential(
                nn.Conv1d(2, 4, 3),
                nn.ReLU(),
                nn.MaxPool1d(2),
                nn.Conv1d(4, 3, 3, padding=1),
                nn.Flatten(),
                nn.Linear(15, 2),
            ),
            (2, 2, 12),
        ),
        "seq_mlp": (
            nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Dropout(0.3), nn.Linear(6, 3), nn.Softmax(-1)),
            (3, 4),
        ),
    }


def torch_goldens() -> None:
    torch.manual_seed(0)
    arrays: dict[str, np.ndarray] = {}
    for case, (module, shape) in torch_modules().items():
        module.eval()
        with torch.no_grad():
            for p in module.parameters():  # every bias random too
                p.copy_(torch.randn_like(p) * 0.5)
            x = torch.randn(*shape)
            y = module(x)
        y = y[0] if isinstance(y, tuple) else y
        for k, v in module.state_dict().items():
            arrays[f"{case}__sd__{k}"] = v.numpy().astype(np.float32)
        arrays[f"{case}__x"] = x.numpy()
        arrays[f"{case}__y"] = y.numpy()
    np.savez_compressed(OUT / "torch_goldens.npz", **arrays)


if __name__ == "__main__":
    import sys

    OUT.mkdir(exist_ok=True)
    # `graphs` regenerates only the Functional-graph goldens (the others keep their bytes).
    if sys.argv[1:] != ["graphs"]:
        keras_goldens()
        torch_goldens()
    keras_graph_goldens()
    for f in sorted(OUT.iterdir()):
        print(f"{f.name}: {f.stat().st_size} bytes")
