"""Writes tests/golden/functional_goldens.npz and tests/golden/functional_goldens.json: Keras 3 (TensorFlow
backend, CPU) predictions, parameter counts, train_on_batch logs and trained weights for small Functional
graphs (residual connections, several inputs and outputs, shared layers, encoder-decoder states, nested
models, tensor operators and keras.ops on symbolic tensors, subclassed models and layers, masking, merge
layers), from fixed weights and data, so that tests/test_functional_goldens.py checks seqcore's
Functional API against Keras without Keras installed.

Run once, by hand, where keras and tensorflow are installed:
    python tests/golden/generate_functional_goldens.py
Generated with keras 3.15.1 / tensorflow 2.21.0.

Per case ``c`` the npz holds ``c__w{i}`` (initial weights, in ``model.get_weights()`` order), ``c__x{j}``
(inputs, in ``model.inputs`` order), ``c__y{k}`` (targets, in output order), ``c__pred{k}``
(``predict_on_batch``), ``c__loss`` (the losses of 3 successive ``train_on_batch`` calls, SGD(0.05)) and
``c__after{i}`` (the weights after them). The JSON holds per case the layer names, classes and
``count_params()`` in ``model.layers`` order, the total/trainable/non-trainable counts, ``output_names``,
every log key and value of each train step, the output shapes and the ``model.summary()`` text.

Every case draws its weights and data from its own ``np.random.default_rng`` (seeded from the case name),
so adding or removing a case leaves the others unchanged. Weights are set explicitly (uniform in
[-0.3, 0.3]): nothing depends on Keras initializers or global name counters.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# model.summary() sizes its table from the terminal (rich and shutil read COLUMNS): wide enough that the
# captured text is Keras's default layout (88 or 108 characters), not truncated to 80 columns.
os.environ["COLUMNS"] = "200"

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

L = keras.layers
HERE = Path(__file__).parent
OUT_NPZ = HERE / "functional_goldens.npz"
OUT_JSON = HERE / "functional_goldens.json"
STEPS = 3
LEARNING_RATE = 0.05


# ---------------------------------------------------------------------------------------------------------
# Subclassed model and layer (cases "subclassed_model" and "subclassed_layer").


class SeqHead(keras.Model):
    """LSTM over the sequence; its last step and its mean over time, concatenated, through two Dense."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lstm = L.LSTM(6, return_sequences=True, name="lstm")
        self.proj = L.Dense(4, activation="relu", name="proj")
        self.head = L.Dense(1, name="head")

    def call(self, inputs: Any, training: Any = None) -> Any:
        seq = self.lstm(inputs)
        last = seq[:, -1]
        pooled = ops.mean(seq, axis=1)
        return self.head(self.proj(ops.concatenate([last, pooled], axis=-1)))


class Linear(keras.layers.Layer):
    """tanh(x @ w + b)."""

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True, name="w"
        )
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True, name="b")

    def call(self, x: Any) -> Any:
        return ops.tanh(ops.matmul(x, self.w) + self.b)


# ---------------------------------------------------------------------------------------------------------
# Cases. Each builder returns (model, spec); spec has "loss" (and optionally "loss_weights", "metrics"),
# "x": a list of (kind, shape) in model.inputs order, "y": a list of (kind, shape) in output order, and
# optionally "x_format" / "y_format" ("array", "list" or "dict": how the data is passed to Keras).


def residual_conv() -> tuple[keras.Model, dict]:
    inp = keras.Input((16, 4), name="seq")
    h = L.Conv1D(8, 3, padding="same", activation="relu", name="conv_a")(inp)
    h = L.Conv1D(4, 3, padding="same", name="conv_b")(h)
    h = L.Add(name="residual")([h, inp])
    h = L.Activation("relu", name="relu")(h)
    h = L.GlobalAveragePooling1D(name="gap")(h)
    out = L.Dense(1, name="out")(h)
    m = keras.Model(inp, out, name="residual_conv")
    return m, {"loss": "mse", "x": [("normal", (5, 16, 4))], "y": [("normal", (5, 1))]}


def two_branch() -> tuple[keras.Model, dict]:
    seq = keras.Input((12, 3), name="seq")
    static = keras.Input((5,), name="static")
    a = L.LSTM(6, name="lstm")(seq)
    b = L.Dense(4, activation="relu", name="static_dense")(static)
    b = L.Dropout(0.0, name="dropout")(b)
    h = L.Concatenate(name="concat")([a, b])
    out = L.Dense(1, name="out")(h)
    m = keras.Model([seq, static], out, name="two_branch")
    spec = {"loss": "mse", "x": [("normal", (5, 12, 3)), ("normal", (5, 5))], "y": [("normal", (5, 1))]}
    return m, {**spec, "x_format": "list"}


def two_outputs() -> tuple[keras.Model, dict]:
    inp = keras.Input((10, 3), name="seq")
    h = L.GRU(8, name="gru")(inp)
    reg = L.Dense(1, name="reg")(h)
    cls = L.Dense(3, activation="softmax", name="cls")(h)
    m = keras.Model(inp, [reg, cls], name="two_outputs")
    return m, {
        "loss": {"reg": "mse", "cls": "categorical_crossentropy"},
        "loss_weights": {"reg": 1.0, "cls": 0.5},
        "metrics": {"reg": ["mae"]},
        "x": [("normal", (6, 10, 3))],
        "y": [("normal", (6, 1)), ("onehot", (6, 3))],
        "y_format": "dict",
    }


def siamese() -> tuple[keras.Model, dict]:
    a = keras.Input((8, 3), name="left")
    b = keras.Input((8, 3), name="right")
    shared = L.LSTM(5, name="shared_lstm")
    ea, eb = shared(a), shared(b)
    d = L.Subtract(name="diff")([ea, eb])
    sq = L.Multiply(name="squared")([d, d])
    out = L.Dense(1, activation="sigmoid", name="same")(sq)
    m = keras.Model([a, b], out, name="siamese")
    return m, {
        "loss": "binary_crossentropy",
        "x": [("normal", (6, 8, 3)), ("normal", (6, 8, 3))],
        "y": [("binary", (6, 1))],
        "x_format": "list",
    }


def encoder_decoder() -> tuple[keras.Model, dict]:
    enc_in = keras.Input((7, 3), name="encoder_in")
    dec_in = keras.Input((5, 2), name="decoder_in")
    _, h, c = L.LSTM(6, return_state=True, name="encoder")(enc_in)
    dec = L.LSTM(6, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    out = L.TimeDistributed(L.Dense(2, name="proj"), name="td_proj")(dec)
    m = keras.Model([enc_in, dec_in], out, name="encoder_decoder")
    return m, {
        "loss": "mse",
        "x": [("normal", (4, 7, 3)), ("normal", (4, 5, 2))],
        "y": [("normal", (4, 5, 2))],
        "x_format": "list",
    }


def _inner_mlp() -> keras.Model:
    inner_in = keras.Input((6,), name="inner_in")
    h = L.Dense(5, activation="relu", name="inner_hidden")(inner_in)
    inner_out = L.Dense(3, name="inner_out")(h)
    return keras.Model(inner_in, inner_out, name="inner")


def nested_model() -> tuple[keras.Model, dict]:
    inner = _inner_mlp()
    inp = keras.Input((6,), name="outer_in")
    out = L.Dense(1, name="out")(inner(inp))
    m = keras.Model(inp, out, name="nested_model")
    return m, {"loss": "mse", "x": [("normal", (5, 6))], "y": [("normal", (5, 1))]}


def functional_in_sequential() -> tuple[keras.Model, dict]:
    m = keras.Sequential([keras.Input((6,)), _inner_mlp(), L.Dense(1, name="out")], name="functional_in_sequential")
    return m, {"loss": "mse", "x": [("normal", (5, 6))], "y": [("normal", (5, 1))]}


def transformer_residual() -> tuple[keras.Model, dict]:
    inp = keras.Input((9, 4), name="tokens")
    x = L.Dense(8, activation="relu", name="ff_up")(inp)
    x = L.Dense(4, name="ff_down")(x)
    x = x + inp
    x = ops.mean(x, axis=1)
    out = L.Dense(1, name="out")(x)
    m = keras.Model(inp, out, name="transformer_residual")
    return m, {"loss": "mse", "x": [("normal", (5, 9, 4))], "y": [("normal", (5, 1))]}


def subclassed_model() -> tuple[keras.Model, dict]:
    return SeqHead(name="seq_head"), {"loss": "mse", "x": [("normal", (5, 7, 3))], "y": [("normal", (5, 1))]}


def subclassed_layer() -> tuple[keras.Model, dict]:
    inp = keras.Input((5,), name="features")
    h = Linear(4, name="linear")(inp)
    out = L.Dense(1, name="out")(h)
    m = keras.Model(inp, out, name="subclassed_layer")
    return m, {"loss": "mse", "x": [("normal", (5, 5))], "y": [("normal", (5, 1))]}


def masked_bidirectional() -> tuple[keras.Model, dict]:
    inp = keras.Input((10,), dtype="int32", name="tokens")
    h = L.Embedding(20, 4, mask_zero=True, name="embed")(inp)
    h = L.Bidirectional(L.LSTM(5, return_sequences=True, name="lstm"), name="bilstm")(h)
    h = L.GlobalAveragePooling1D(name="gap")(h)
    out = L.Dense(1, name="out")(h)
    m = keras.Model(inp, out, name="masked_bidirectional")
    # Post-padded (zeros at the end only), with a length-1 row.
    return m, {"loss": "mse", "x": [("tokens", (6, 10), [10, 1, 4, 7, 2, 9], 20)], "y": [("normal", (6, 1))]}


def merge_zoo() -> tuple[keras.Model, dict]:
    a_in = keras.Input((6,), name="a")
    b_in = keras.Input((6,), name="b")
    a = L.Dense(4, name="dense_a")(a_in)
    b = L.Dense(4, name="dense_b")(b_in)
    merged = [
        L.Average(name="average")([a, b]),
        L.Maximum(name="maximum")([a, b]),
        L.Minimum(name="minimum")([a, b]),
        L.Multiply(name="multiply")([a, b]),
        L.Add(name="add")([a, b]),
        L.Subtract(name="subtract")([a, b]),
        L.Dot(axes=1, name="dot")([a, b]),
        L.Dot(axes=1, normalize=True, name="cosine")([a, b]),
    ]
    h = L.Concatenate(name="concat")(merged)
    out = L.Dense(1, name="out")(h)
    m = keras.Model([a_in, b_in], out, name="merge_zoo")
    return m, {
        "loss": "mse",
        "x": [("normal", (5, 6)), ("normal", (5, 6))],
        "y": [("normal", (5, 1))],
        "x_format": "list",
    }


def ops_zoo() -> tuple[keras.Model, dict]:
    inp = keras.Input((6, 4), name="seq")
    h = L.Dense(4, name="proj")(inp)  # (N, 6, 4)
    scores = ops.matmul(h, ops.transpose(h, axes=(0, 2, 1)))  # (N, 6, 6)
    attn = ops.softmax(ops.divide(scores, 2.0), axis=-1)
    ctx = ops.matmul(attn, h)  # (N, 6, 4)
    s = ops.stack([ops.sum(ctx, axis=1), ops.max(ctx, axis=1)], axis=1)  # (N, 2, 4)
    r = ops.squeeze(ops.expand_dims(ops.reshape(s, (-1, 8)), 1), axis=1)  # (N, 8)
    z = ops.sigmoid(r) * ops.tanh(r) - ops.relu(r) / 2.0
    z = ops.add(ops.multiply(z, 3.0), ops.subtract(r, 1.0))
    out = L.Dense(1, name="out")(z)
    m = keras.Model(inp, out, name="ops_zoo")
    return m, {"loss": "mse", "x": [("normal", (5, 6, 4))], "y": [("normal", (5, 1))]}


def conv_pool_repeat() -> tuple[keras.Model, dict]:
    inp = keras.Input((8, 3), name="seq")
    c = L.Conv1D(4, 3, activation="relu", name="conv")(inp)  # (N, 6, 4)
    p = L.MaxPooling1D(2, name="pool")(c)  # (N, 3, 4)
    flat = L.Flatten(name="flatten")(p)  # (N, 12)
    grid = L.Reshape((3, 2), name="reshape")(L.Dense(6, name="dense6")(flat))  # (N, 3, 2)
    rep = L.RepeatVector(3, name="repeat")(L.GlobalMaxPooling1D(name="gmp")(p))  # (N, 3, 4)
    h = L.Concatenate(axis=-1, name="concat")([grid, rep])  # (N, 3, 6)
    h = L.GRU(3, name="gru")(h)
    out = L.Dense(1, name="out")(h)
    m = keras.Model(inp, out, name="conv_pool_repeat")
    return m, {"loss": "mse", "x": [("normal", (5, 8, 3))], "y": [("normal", (5, 1))]}


CASES: dict[str, Callable[[], tuple[keras.Model, dict]]] = {
    "residual_conv": residual_conv,
    "two_branch": two_branch,
    "two_outputs": two_outputs,
    "siamese": siamese,
    "encoder_decoder": encoder_decoder,
    "nested_model": nested_model,
    "functional_in_sequential": functional_in_sequential,
    "transformer_residual": transformer_residual,
    "subclassed_model": subclassed_model,
    "subclassed_layer": subclassed_layer,
    "masked_bidirectional": masked_bidirectional,
    "merge_zoo": merge_zoo,
    "ops_zoo": ops_zoo,
    "conv_pool_repeat": conv_pool_repeat,
}


# ---------------------------------------------------------------------------------------------------------


def draw(rng: np.random.Generator, spec: tuple) -> np.ndarray:
    kind, shape = spec[0], spec[1]
    if kind == "normal":
        return rng.normal(size=shape).astype(np.float32)
    if kind == "binary":
        return (rng.random(shape) > 0.5).astype(np.float32)
    if kind == "onehot":
        return np.eye(shape[-1], dtype=np.float32)[rng.integers(0, shape[-1], shape[:-1])]
    if kind == "tokens":
        lengths, vocab = spec[2], spec[3]
        x = rng.integers(1, vocab, size=shape).astype(np.int32)
        for i, n in enumerate(lengths):
            x[i, n:] = 0
        return x
    raise KeyError(kind)


def pack(arrays: list[np.ndarray], fmt: str, names: list[str]) -> Any:
    if fmt == "array":
        assert len(arrays) == 1
        return arrays[0]
    if fmt == "list":
        return list(arrays)
    return dict(zip(names, arrays, strict=True))


def as_list(out: Any) -> list[np.ndarray]:
    if isinstance(out, dict):
        raise TypeError("dict outputs are not used here")
    return [np.asarray(o) for o in out] if isinstance(out, list | tuple) else [np.asarray(out)]


def shape_of(t: Any) -> list[int | None]:
    return [None if d is None else int(d) for d in t.shape]


def layer_output_shapes(layer: Any) -> list[Any]:
    """Output shapes of every call of `layer` in the graph (a shared layer has several)."""
    shapes = []
    for node in getattr(layer, "_inbound_nodes", []):
        outs = node.output_tensors
        shapes.append([shape_of(t) for t in outs] if len(outs) > 1 else shape_of(outs[0]))
    return shapes


def summary_text(model: keras.Model) -> str:
    lines: list[str] = []

    def print_fn(text: str, line_break: bool = True) -> None:  # Keras passes line_break=
        lines.append(text)

    model.summary(print_fn=print_fn)
    return "\n".join(lines)


def run_case(case: str, build: Callable[[], tuple[keras.Model, dict]]) -> tuple[dict[str, np.ndarray], dict]:
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    m, spec = build()
    xs = [draw(rng, s) for s in spec["x"]]
    ys = [draw(rng, s) for s in spec["y"]]
    if not m.built:  # a subclassed model: build it by calling it on the batch
        m(xs[0] if len(xs) == 1 else xs)
    weights = [rng.uniform(-0.3, 0.3, size=w.shape).astype(np.float32) for w in m.get_weights()]
    m.set_weights(weights)
    summary_before = summary_text(m)  # before compile: no "Optimizer params" line

    compile_kw: dict[str, Any] = {"loss": spec["loss"]}
    for key in ("loss_weights", "metrics"):
        if key in spec:
            compile_kw[key] = spec[key]
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE), **compile_kw)

    # Functional models have output_names (and named inputs); Sequential and subclassed models do not.
    functional = hasattr(m, "output_names") and not isinstance(m, keras.Sequential)
    output_names = list(m.output_names) if functional else None
    input_names = [t.name for t in m.inputs] if functional else None
    x = pack(xs, spec.get("x_format", "array"), input_names or [])
    y = pack(ys, spec.get("y_format", "array"), output_names or [])

    preds = as_list(m.predict_on_batch(x))
    logs = [{k: float(v) for k, v in m.train_on_batch(x, y, return_dict=True).items()} for _ in range(STEPS)]
    after = m.get_weights()

    arrays: dict[str, np.ndarray] = {}
    for i, w in enumerate(weights):
        arrays[f"{case}__w{i}"] = w
    for j, a in enumerate(xs):
        arrays[f"{case}__x{j}"] = a
    for k, a in enumerate(ys):
        arrays[f"{case}__y{k}"] = a
    for k, p in enumerate(preds):
        arrays[f"{case}__pred{k}"] = p.astype(np.float32)
    arrays[f"{case}__loss"] = np.array([lg["loss"] for lg in logs], dtype=np.float64)
    for i, w in enumerate(after):
        arrays[f"{case}__after{i}"] = np.asarray(w, dtype=np.float32)

    layers = [
        {
            "name": layer.name,
            "class": type(layer).__name__,
            "params": int(layer.count_params()),
            "output_shapes": layer_output_shapes(layer),
        }
        for layer in m.layers
    ]
    info = {
        "model_class": type(m).__name__,
        "model_name": m.name,
        "compile": {k: v for k, v in compile_kw.items()},
        "optimizer": {"class": "SGD", "learning_rate": LEARNING_RATE},
        "steps": STEPS,
        "x_format": spec.get("x_format", "array"),
        "y_format": spec.get("y_format", "array"),
        "input_names": input_names,
        "output_names": output_names,
        "n_weights": len(weights),
        "weight_names": [v.path for v in m.weights],
        "weight_shapes": [list(w.shape) for w in weights],
        "layers": layers,
        "total_params": int(m.count_params()),
        "trainable_params": int(sum(int(np.prod(v.shape)) for v in m.trainable_weights)),
        "non_trainable_params": int(sum(int(np.prod(v.shape)) for v in m.non_trainable_weights)),
        "log_keys": [sorted(lg) for lg in logs],
        "logs": logs,
        "pred_shapes": [list(p.shape) for p in preds],
        "model_output_shapes": [shape_of(t) for t in m.outputs] if getattr(m, "outputs", None) else [],
        "summary": summary_before,
        "summary_after_training": summary_text(m),  # adds "Optimizer params: 2" (SGD's iteration and lr)
    }
    return arrays, info


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    infos: dict[str, Any] = {"keras_version": keras.__version__, "backend": keras.backend.backend()}
    try:
        import tensorflow as tf

        infos["tensorflow_version"] = tf.__version__
    except ImportError:  # pragma: no cover
        pass
    cases: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for case, build in CASES.items():
        try:
            a, info = run_case(case, build)
        except Exception as e:  # a case Keras itself cannot build is dropped (and reported)
            failed[case] = f"{type(e).__name__}: {e}"
            print(f"SKIPPED {case}: {failed[case]}")
            continue
        arrays.update(a)
        cases[case] = info
        print(f"{case}: logs {info['logs'][0]}")
    infos["cases"] = cases
    infos["failed"] = failed
    np.savez_compressed(OUT_NPZ, **arrays)
    OUT_JSON.write_text(json.dumps(infos, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT_NPZ} ({OUT_NPZ.stat().st_size} bytes), {OUT_JSON} ({OUT_JSON.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
