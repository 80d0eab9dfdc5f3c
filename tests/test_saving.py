"""Model persistence (seqcore.saving, Sequential.save/save_weights/load_weights) and ModelCheckpoint.

Round trips must be exact: predictions compared with np.array_equal, and training continued after a
save/load must give the very same weights as training continued without it (which only holds when
the optimizer state round-trips)."""

from __future__ import annotations

import json
import os
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import seqcore as keras
from seqcore import callbacks, optimizers, regularizers, saving, schedules
from seqcore.layers import (
    GRU,
    LSTM,
    Activation,
    AveragePooling1D,
    Bidirectional,
    Conv1D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    Masking,
    MaxPooling1D,
    Reshape,
    TimeDistributed,
)
from seqcore.saving import load_model, load_safetensors, save_model, save_safetensors

Sequential = keras.Sequential
RNG = np.random.default_rng(1234)


def randomize(model: Any, seed: int = 0) -> None:
    """Non-trivial values everywhere (biases too), so a weight loaded into the wrong place shows."""
    g = np.random.default_rng(seed)
    model.set_weights([g.normal(scale=0.4, size=w.shape).astype(np.float32) for w in model.get_weights()])


def config_json(model: Any) -> str:
    return json.dumps(model.get_config(), sort_keys=True)


def assert_same_weights(a: Any, b: Any) -> None:
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb, strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y)


# ----- architectures covering every layer type -------------------------------------------------
def recurrent_model(merge_mode: str) -> tuple[Any, np.ndarray]:
    m = Sequential(
        [
            keras.Input((7, 3)),
            Masking(0.0),
            LSTM(5, return_sequences=True, go_backwards=True, kernel_regularizer=regularizers.l1_l2(0.01, 0.02)),
            GRU(4, reset_after=False, return_sequences=True, recurrent_initializer="he_normal"),
            GRU(4, reset_after=True, return_sequences=True, bias_regularizer="l2"),
            Bidirectional(LSTM(3, return_sequences=True), merge_mode=merge_mode),
            TimeDistributed(Dense(2, activation="tanh", bias_initializer="ones")),
            Flatten(),
            Dense(1),
        ]
    )
    x = RNG.normal(size=(5, 7, 3)).astype(np.float32)
    x[1, 4:] = 0.0  # padded steps: the mask has to survive the round trip
    x[3, 2:] = 0.0
    return m, x


def conv_model() -> tuple[Any, np.ndarray]:
    m = Sequential(
        [
            keras.Input((16, 4)),
            Conv1D(4, 3, padding="causal", dilation_rate=2, kernel_regularizer=regularizers.l2(0.1)),
            Conv1D(6, 3, groups=2, padding="same", activation="relu", kernel_initializer="he_uniform"),
            MaxPooling1D(2),
            AveragePooling1D(2, strides=1, padding="same"),
            Dropout(0.25, seed=3),
            Reshape((4, 12)),
            Conv1D(5, 2, strides=2),
            GlobalMaxPooling1D(keepdims=True),
            GlobalAveragePooling1D(),
            Dense(3),
            Activation("sigmoid"),
        ]
    )
    return m, RNG.normal(size=(6, 16, 4)).astype(np.float32)


def cnn_lstm_model() -> tuple[Any, np.ndarray]:
    inner = Sequential([Conv1D(3, 2, activation="relu"), MaxPooling1D(2), Flatten()])
    m = Sequential(
        [
            keras.Input((3, 8, 2)),
            TimeDistributed(Conv1D(4, 3, padding="same")),
            TimeDistributed(inner),
            LSTM(4),
            Dense(1),
        ]
    )
    return m, RNG.normal(size=(4, 3, 8, 2)).astype(np.float32)


def nested_model() -> tuple[Any, np.ndarray]:
    m = Sequential([keras.Input((5, 3)), Sequential([Dense(4), Activation("relu")]), GRU(2), Dense(1)])
    return m, RNG.normal(size=(3, 5, 3)).astype(np.float32)


ARCHITECTURES: dict[str, Callable[[], tuple[Any, np.ndarray]]] = {
    **{f"recurrent-{mm}": (lambda mm=mm: recurrent_model(mm)) for mm in ("concat", "sum", "mul", "ave")},
    "conv": conv_model,
    "cnn_lstm": cnn_lstm_model,
    "nested_sequential": nested_model,
}


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_round_trip_predicts_bit_identically(arch: str, tmp_path: Path) -> None:
    model, x = ARCHITECTURES[arch]()
    randomize(model)
    before = model.predict(x, verbose=0)
    path = tmp_path / "model.seqcore"
    model.save(path)
    loaded = load_model(path)
    assert type(loaded) is Sequential and loaded is not model
    assert np.array_equal(loaded.predict(x, verbose=0), before)
    assert config_json(loaded) == config_json(model)  # layers, initializers, regularizers, names
    assert saving.weight_names(loaded) == saving.weight_names(model)
    assert_same_weights(loaded, model)
    assert loaded.count_params() == model.count_params()
    assert sum(ly.regularization_loss() for ly in loaded.layers) == sum(ly.regularization_loss() for ly in model.layers)
    assert loaded.optimizer is None  # never compiled


def test_weight_names_are_readable_unique_and_cover_nested_layers() -> None:
    model, _ = cnn_lstm_model()
    names = saving.weight_names(model)
    td, td2 = model.layers[0].name, model.layers[1].name
    inner = model.layers[1].layer.name
    conv_inner = model.layers[1].layer.layers[0].name
    assert names[:2] == [f"{td}/{model.layers[0].layer.name}/kernel", f"{td}/{model.layers[0].layer.name}/bias"]
    assert names[2:4] == [f"{td2}/{inner}/{conv_inner}/kernel", f"{td2}/{inner}/{conv_inner}/bias"]
    assert len(set(names)) == len(names) == len(model.weights)
    bi = Sequential([keras.Input((4, 2)), Bidirectional(GRU(2), name="bi")])
    assert saving.weight_names(bi) == [
        "bi/forward/kernel",
        "bi/forward/recurrent_kernel",
        "bi/forward/bias",
        "bi/backward/kernel",
        "bi/backward/recurrent_kernel",
        "bi/backward/bias",
    ]


def test_duplicate_layer_names_are_refused_before_writing(tmp_path: Path) -> None:
    m = Sequential([keras.Input((3,)), Dense(2, name="same"), Dense(1, name="same")])
    with pytest.raises(ValueError, match=r"'same/kernel'.*layer names must be unique"):
        m.save(tmp_path / "m.seqcore")
    assert os.listdir(tmp_path) == []


def test_unbuilt_model_saves_and_loads_like_keras(tmp_path: Path) -> None:
    m = Sequential([Dense(3, activation="relu", name="a"), Dense(1, name="b")], name="lazy")
    m.compile(optimizers.Adam(0.02), "mae", metrics=["mse"])
    assert not m.built
    m.save(tmp_path / "lazy.seqcore")
    loaded = load_model(tmp_path / "lazy.seqcore")
    assert not loaded.built and loaded.name == "lazy" and config_json(loaded) == config_json(m)
    assert isinstance(loaded.optimizer, optimizers.Adam) and loaded.optimizer.learning_rate == 0.02
    x = RNG.normal(size=(4, 2)).astype(np.float32)
    assert loaded.predict(x, verbose=0).shape == (4, 1)  # builds on first use, as before saving


def test_layers_built_without_a_model_input_shape_are_rebuilt(tmp_path: Path) -> None:
    dense = Dense(2, name="pre_built")
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    dense(x)  # built on data, outside any model
    m = Sequential([dense])
    randomize(m)
    m.save(tmp_path / "m.seqcore")
    loaded = load_model(tmp_path / "m.seqcore")
    assert loaded.built
    assert np.array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))


def test_file_layout_is_a_zip_with_config_and_plain_safetensors(tmp_path: Path) -> None:
    model, x = recurrent_model("concat")
    model.compile("adam", "mse", metrics=["mae"])
    model.train_on_batch(x, np.zeros((5, 1), np.float32))
    path = tmp_path / "m.seqcore"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        assert set(zf.namelist()) == {"config.json", "model.safetensors", "optimizer.safetensors"}
        config = json.loads(zf.read("config.json"))
        weights_blob = zf.read("model.safetensors")
        optimizer_blob = zf.read("optimizer.safetensors")
    assert config["format"] == "seqcore" and config["format_version"] == saving.FORMAT_VERSION
    assert isinstance(config["format_version"], int) and config["seqcore_version"] == keras.__version__
    assert config["model"]["class_name"] == "Sequential"
    assert config["compile_config"]["loss"]["class_name"] == "MeanSquaredError"
    assert config["optimizer_state"]["iterations"] == 1
    # The weights member is a standard safetensors blob: check it with an independent parser.
    tensors, meta = parse_safetensors(weights_blob)
    assert list(tensors) == saving.weight_names(model)
    for (name, arr), w in zip(tensors.items(), model.get_weights(), strict=True):
        assert arr.dtype == np.float32 and np.array_equal(arr, w), name
    assert meta["producer"] == f"seqcore {keras.__version__}"
    opt, _ = parse_safetensors(optimizer_blob)
    assert {k.split("/", 1)[0] for k in opt} == {"momentum", "velocity"}
    assert set(opt) == {f"{slot}/{n}" for slot in ("momentum", "velocity") for n in saving.weight_names(model)}
    # Saving twice gives identical bytes (fixed member timestamps, deterministic JSON).
    model.save(tmp_path / "again.seqcore")
    assert (tmp_path / "again.seqcore").read_bytes() == path.read_bytes()


def parse_safetensors(blob: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """A minimal independent reader, to check the writer against the format, not against itself."""
    (n,) = struct.unpack("<Q", blob[:8])
    assert (8 + n) % 8 == 0, "data should start 8-byte aligned"
    header = json.loads(blob[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    codes = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I8": "i1", "U8": "u1", "BOOL": "?"}
    out = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(blob[8 + n + b : 8 + n + e], dtype=codes[info["dtype"]]).reshape(info["shape"])
    return out, meta


# ----- optimizer state -------------------------------------------------------------------------
OPTIMIZERS: dict[str, Callable[[], Any]] = {
    "sgd": lambda: optimizers.SGD(0.05),
    "sgd_momentum": lambda: optimizers.SGD(0.05, momentum=0.9),
    "sgd_nesterov": lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: optimizers.Adam(0.01),
    "adamw": lambda: optimizers.AdamW(0.01, weight_decay=0.05, beta_2=0.99),
    "rmsprop": lambda: optimizers.RMSprop(0.01),
    "rmsprop_centered_momentum": lambda: optimizers.RMSprop(0.01, centered=True, momentum=0.5, clipnorm=1.0),
    "adagrad": lambda: optimizers.Adagrad(0.05, initial_accumulator_value=0.2),
    "adam_schedule": lambda: optimizers.Adam(schedules.ExponentialDecay(0.02, decay_steps=2, decay_rate=0.5)),
    "sgd_accumulation": lambda: optimizers.SGD(0.05, momentum=0.5, gradient_accumulation_steps=3),
}
# Stateless between steps: a fresh optimizer continues identically, so the control check is skipped.
STATELESS = {"sgd"}


def small_model() -> Any:
    return Sequential(
        [keras.Input((6, 2)), LSTM(4, return_sequences=True, name="lstm"), Flatten(name="flat"), Dense(1, name="out")]
    )


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_continued_training_is_identical_after_save_and_load(opt: str, tmp_path: Path) -> None:
    g = np.random.default_rng(7)
    batches = [
        (g.normal(size=(8, 6, 2)).astype(np.float32), g.normal(size=(8, 1)).astype(np.float32)) for _ in range(8)
    ]
    model = small_model()
    randomize(model)
    model.compile(OPTIMIZERS[opt](), "mse", metrics=["mae"])
    for xb, yb in batches[:4]:  # 4 steps: with accumulation over 3, one gradient is pending
        model.train_on_batch(xb, yb)
    path = tmp_path / "ckpt.seqcore"
    model.save(path)
    loaded = load_model(path)
    fresh = load_model(path, compile=False)
    fresh.compile(OPTIMIZERS[opt](), "mse")  # same hyper-parameters, no state: the control

    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations
    for xb, yb in batches[4:]:
        assert loaded.train_on_batch(xb, yb) == model.train_on_batch(xb, yb)
        fresh.train_on_batch(xb, yb)
    assert loaded.optimizer.iterations == model.optimizer.iterations
    assert_same_weights(loaded, model)
    if opt not in STATELESS:  # the comparison above can fail: without the state, training differs
        assert not all(np.array_equal(a, b) for a, b in zip(fresh.get_weights(), model.get_weights(), strict=True))


def test_compile_config_round_trips(tmp_path: Path) -> None:
    model = small_model()
    model.compile(
        optimizers.RMSprop(0.003, rho=0.8, clipvalue=0.5, name="my_rms"),
        keras.losses.Huber(delta=0.7),
        metrics=["mae", keras.metrics.RootMeanSquaredError(name="rmse_custom")],
        loss_weights=0.5,
    )
    x, y = RNG.normal(size=(4, 6, 2)).astype(np.float32), RNG.normal(size=(4, 1)).astype(np.float32)
    model.save(tmp_path / "m.seqcore")
    loaded = load_model(tmp_path / "m.seqcore")
    assert isinstance(loaded.loss, keras.losses.Huber) and loaded.loss.delta == 0.7
    assert [m.name for m in loaded.compiled_metrics] == ["mae", "rmse_custom"]
    assert loaded.loss_weight == 0.5
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.name == "my_rms" and loaded.optimizer.clipvalue == 0.5
    assert loaded.evaluate(x, y, verbose=0, return_dict=True) == model.evaluate(x, y, verbose=0, return_dict=True)
    uncompiled = load_model(tmp_path / "m.seqcore", compile=False)
    assert uncompiled.optimizer is None and uncompiled.loss is None


def test_accuracy_metric_keeps_its_resolved_variant(tmp_path: Path) -> None:
    m = Sequential([keras.Input((4,)), Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    m.save(tmp_path / "m.seqcore")
    loaded = load_model(tmp_path / "m.seqcore")
    assert type(loaded.compiled_metrics[0]) is keras.metrics.SparseCategoricalAccuracy
    assert loaded.compiled_metrics[0].name == "accuracy"


def test_metric_arguments_survive(tmp_path: Path) -> None:
    m = Sequential([keras.Input((4,)), Dense(3, activation="sigmoid")])
    mets: list[Any] = [keras.metrics.BinaryAccuracy(name="acc70", threshold=0.7)]
    if hasattr(keras.metrics, "AUC"):  # metrics with their own get_config, where available
        mets += [keras.metrics.AUC(num_thresholds=17), keras.metrics.Precision(thresholds=[0.3, 0.6])]
    m.compile("adam", "binary_crossentropy", metrics=mets)
    m.save(tmp_path / "m.seqcore")
    loaded = load_model(tmp_path / "m.seqcore")
    assert loaded.compiled_metrics[0].threshold == 0.7 and loaded.compiled_metrics[0].name == "acc70"
    x = RNG.random((16, 4)).astype(np.float32)
    y = (RNG.random((16, 3)) > 0.5).astype(np.float32)
    a, b = m.evaluate(x, y, verbose=0, return_dict=True), loaded.evaluate(x, y, verbose=0, return_dict=True)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_include_optimizer_false_saves_compile_config_but_no_state(tmp_path: Path) -> None:
    model = small_model()
    model.compile(optimizers.Adam(0.01), "mse")
    model.train_on_batch(np.ones((2, 6, 2), np.float32), np.ones((2, 1), np.float32))
    model.save(tmp_path / "m.seqcore", include_optimizer=False)
    with zipfile.ZipFile(tmp_path / "m.seqcore") as zf:
        assert "optimizer.safetensors" not in zf.namelist()
    loaded = load_model(tmp_path / "m.seqcore")
    assert isinstance(loaded.optimizer, optimizers.Adam) and loaded.optimizer.iterations == 0


def test_custom_loss_needs_compile_false(tmp_path: Path) -> None:
    class MyLoss(keras.losses.MeanSquaredError):
        pass

    model = small_model()
    model.compile("sgd", MyLoss())
    model.save(tmp_path / "m.seqcore")
    with pytest.raises(ValueError, match=r"loss 'MyLoss'.*compile=False"):
        load_model(tmp_path / "m.seqcore")
    assert load_model(tmp_path / "m.seqcore", compile=False).optimizer is None


def test_optimizer_set_state_validates_before_changing_anything() -> None:
    model = small_model()
    model.compile(optimizers.Adam(0.01), "mse")
    model.train_on_batch(np.ones((2, 6, 2), np.float32), np.ones((2, 1), np.float32))
    opt, weights = model.optimizer, model.weights
    state = opt.get_state(weights)
    snapshot = {k: [a.copy() for a in v] for k, v in state["slots"].items()}
    bad = {**state, "iterations": 99, "slots": {**state["slots"], "velocity": [np.zeros((1, 1))] * len(weights)}}
    with pytest.raises(ValueError, match=r"Adam.set_state: slot 'velocity' of weight 'kernel' must be a float array"):
        opt.set_state(weights, bad)
    assert opt.iterations == 1
    for k, arrays in opt.get_state(weights)["slots"].items():
        assert all(np.array_equal(a, b) for a, b in zip(arrays, snapshot[k], strict=True))
    with pytest.raises(ValueError, match=r"unknown slot\(s\) \['accumulator'\]"):
        opt.set_state(weights, {"slots": {"accumulator": [None] * len(weights)}})
    with pytest.raises(ValueError, match=r"iterations must be an int >= 0"):
        opt.set_state(weights, {"iterations": -1})
    with pytest.raises(ValueError, match=r"accumulation_count must be an int in \[0, 1\)"):
        opt.set_state(weights, {"accumulation_count": 1})


def test_optimizer_config_round_trips_through_serialize() -> None:
    for make in OPTIMIZERS.values():
        opt = make()
        again = optimizers.deserialize(json.loads(json.dumps(optimizers.serialize(opt))))
        assert type(again) is type(opt) and again.get_config() == opt.get_config()
    with pytest.raises(ValueError, match=r"Unknown optimizer class 'Lion'"):
        optimizers.deserialize({"class_name": "Lion", "config": {}})


# ----- save_weights / load_weights -------------------------------------------------------------
def twin(model: Any) -> Any:
    """A second model with the same architecture and layer names, different weights."""
    other = Sequential.from_config(model.get_config())
    randomize(other, seed=99)
    return other


def test_save_weights_writes_plain_safetensors_and_loads_by_name(tmp_path: Path) -> None:
    model, x = recurrent_model("sum")
    randomize(model)
    path = tmp_path / "w.safetensors"
    model.save_weights(path)
    blob = path.read_bytes()
    tensors, meta = parse_safetensors(blob)
    assert list(tensors) == saving.weight_names(model)
    assert meta["model"] == model.name
    assert list(load_safetensors(path)) == saving.weight_names(model)
    assert saving.load_safetensors_metadata(path) == meta
    other = twin(model)
    assert not np.array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    other.load_weights(path)
    assert np.array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))


def test_load_weights_accepts_a_full_model_file(tmp_path: Path) -> None:
    model, x = conv_model()
    randomize(model)
    model.save(tmp_path / "m.seqcore")
    other = twin(model)
    other.load_weights(tmp_path / "m.seqcore")
    assert np.array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))


def test_load_weights_mismatches_are_listed_and_change_nothing(tmp_path: Path) -> None:
    a = Sequential([keras.Input((3,)), Dense(4, name="d1"), Dense(2, name="d2"), Dense(1, name="extra")])
    a.save_weights(tmp_path / "a.safetensors")
    b = Sequential([keras.Input((3,)), Dense(5, name="d1"), Dense(2, name="d2"), Dense(1, name="mine")])
    randomize(b, seed=5)
    before = [w.copy() for w in b.get_weights()]
    with pytest.raises(ValueError) as info:
        b.load_weights(tmp_path / "a.safetensors")
    msg = str(info.value)
    assert "load_weights" in msg and "a.safetensors" in msg and "No weight was changed" in msg
    assert "missing from the file: mine/kernel, mine/bias" in msg
    assert "unexpected weight(s) in the file: extra/kernel, extra/bias" in msg
    assert "d1/kernel expected float32 (3, 5), received float32 (3, 4)" in msg
    assert "d2/kernel expected float32 (5, 2), received float32 (4, 2)" in msg
    for x, y in zip(b.get_weights(), before, strict=True):  # atomic: d2/bias matched but was not assigned
        assert np.array_equal(x, y)


def test_load_weights_lists_only_the_first_mismatches(tmp_path: Path) -> None:
    save_safetensors(tmp_path / "many.safetensors", {f"t{i}": np.zeros(1, np.float32) for i in range(12)})
    m = Sequential([keras.Input((3,)), Dense(1, name="d")])
    with pytest.raises(ValueError, match=r"12 unexpected weight\(s\) in the file: t0, t1, t2, t3, t4 \(and 7 more\)"):
        m.load_weights(tmp_path / "many.safetensors")


def test_load_weights_hints_at_auto_generated_names(tmp_path: Path) -> None:
    def make() -> Any:
        return Sequential([keras.Input((3,)), Dense(2), Dense(1)])

    a, b = make(), make()  # default names differ: dense_N vs dense_M
    a.save_weights(tmp_path / "a.safetensors")
    with pytest.raises(ValueError, match=r"shapes match in order but the names differ.*set_weights"):
        b.load_weights(tmp_path / "a.safetensors")
    b.set_weights(list(load_safetensors(tmp_path / "a.safetensors").values()))  # the fix the message gives
    assert_same_weights(a, b)


def test_load_weights_into_an_unbuilt_model_says_to_build_it(tmp_path: Path) -> None:
    Sequential([keras.Input((3,)), Dense(2, name="d")]).save_weights(tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match=r"not built: give it an Input"):
        Sequential([Dense(2, name="d")]).load_weights(tmp_path / "w.safetensors")


def test_load_weights_rejects_integer_tensors(tmp_path: Path) -> None:
    save_safetensors(tmp_path / "w.safetensors", {"d/kernel": np.zeros((3, 2), np.int32), "d/bias": np.zeros(2)})
    m = Sequential([keras.Input((3,)), Dense(2, name="d")])
    with pytest.raises(ValueError, match=r"d/kernel expected float32 \(3, 2\), received int32 \(3, 2\)"):
        m.load_weights(tmp_path / "w.safetensors")


def test_load_weights_casts_float64_files(tmp_path: Path) -> None:
    k = RNG.normal(size=(3, 2))
    save_safetensors(tmp_path / "w.safetensors", {"d/kernel": k, "d/bias": np.arange(2.0)})
    m = Sequential([keras.Input((3,)), Dense(2, name="d")])
    m.load_weights(tmp_path / "w.safetensors")
    assert np.array_equal(m.get_weights()[0], k.astype(np.float32))


# ----- the safetensors reader/writer -----------------------------------------------------------
def test_safetensors_round_trips_dtypes_shapes_and_metadata(tmp_path: Path) -> None:
    tensors = {
        "f32": RNG.normal(size=(2, 3)).astype(np.float32),
        "f64": RNG.normal(size=(4,)),
        "f16": np.arange(5, dtype=np.float16),
        "i64": np.array([-(2**62), 7]),
        "i8": np.array([[-3, 4]], np.int8),
        "u8": np.arange(3, dtype=np.uint8),
        "bool": np.array([True, False, True]),
        "scalar": np.float32(2.5),
        "empty": np.zeros((0, 3), np.float32),
        "big_endian": np.arange(3, dtype=">i4"),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
    }
    path = tmp_path / "t.safetensors"
    save_safetensors(path, tensors, metadata={"k": "v"})
    back = load_safetensors(path)
    assert list(back) == list(tensors)
    for name, value in tensors.items():
        want = np.asarray(value)
        assert back[name].shape == want.shape and np.array_equal(back[name], want), name
        assert back[name].dtype == want.dtype.newbyteorder("=")
        assert back[name].flags.writeable
    assert saving.load_safetensors_metadata(path) == {"k": "v"}
    assert parse_safetensors(path.read_bytes())[0]["i8"].tolist() == [[-3, 4]]


def test_safetensors_writer_refuses_what_the_format_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"tensor 'c' has dtype complex128"):
        save_safetensors(tmp_path / "x", {"c": np.zeros(2, complex)})
    with pytest.raises(ValueError, match=r"'__metadata__' is reserved"):
        save_safetensors(tmp_path / "x", {"__metadata__": np.zeros(2)})
    with pytest.raises(TypeError, match=r"metadata maps str to str"):
        save_safetensors(tmp_path / "x", {"a": np.zeros(2)}, metadata={"n": 1})  # type: ignore[dict-item]
    assert os.listdir(tmp_path) == []


def raw_safetensors(header: Any, data: bytes = b"", length: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


F32_2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
BAD_FILES: dict[str, tuple[bytes, str]] = {
    "too_short": (b"\x01\x02", r"fewer than the 8-byte header length"),
    "huge_header_length": (raw_safetensors({"a": F32_2}, bytes(8), length=2**63), r"more than the 100000000-byte"),
    "header_past_end": (raw_safetensors({"a": F32_2}, bytes(8), length=4000), r"truncated file"),
    "not_utf8": (raw_safetensors(b"{\xff\xfe}"), r"not UTF-8"),
    "not_json": (raw_safetensors(b"{nope"), r"not valid JSON"),
    "json_array": (raw_safetensors(b"[1, 2]"), r"not a JSON object"),
    "duplicate_key": (raw_safetensors(b'{"a": {}, "a": {}}'), r"the key 'a' appears twice"),
    "missing_key": (raw_safetensors({"a": {"dtype": "F32", "shape": [2]}}, bytes(8)), r"exactly the keys"),
    "unknown_dtype": (raw_safetensors({"a": {**F32_2, "dtype": "X9"}}, bytes(8)), r"dtype 'X9'"),
    "bf16": (raw_safetensors({"a": {**F32_2, "dtype": "BF16", "data_offsets": [0, 4]}}, bytes(4)), r"numpy has no"),
    "negative_dim": (raw_safetensors({"a": {**F32_2, "shape": [-2]}}, bytes(8)), r"non-negative ints"),
    "bool_dim": (raw_safetensors({"a": {**F32_2, "shape": [True, 2]}}, bytes(8)), r"non-negative ints"),
    "span_mismatch": (raw_safetensors({"a": {**F32_2, "shape": [3]}}, bytes(8)), r"needs 12 bytes but .* span 8"),
    "huge_shape": (
        raw_safetensors({"a": {"dtype": "F64", "shape": [2**40, 2**30], "data_offsets": [0, 2**73]}}, bytes(8)),
        r"cover 9444732965739290427392 data bytes but the file holds 8",
    ),
    "overlap": (
        raw_safetensors({"a": F32_2, "b": {**F32_2, "data_offsets": [4, 12]}}, bytes(12)),
        r"'b' starts at data offset 4, expected 8",
    ),
    "gap": (raw_safetensors({"a": {**F32_2, "data_offsets": [4, 12]}}, bytes(12)), r"starts at data offset 4"),
    "out_of_range": (raw_safetensors({"a": F32_2}, bytes(4)), r"cover 8 data bytes but the file holds 4"),
    "trailing_bytes": (raw_safetensors({"a": F32_2}, bytes(9)), r"trailing bytes"),
    "bad_offsets": (raw_safetensors({"a": {**F32_2, "data_offsets": [8, 0]}}, bytes(8)), r"span -8"),
    "bad_metadata": (raw_safetensors({"__metadata__": {"k": 1}}), r"__metadata__ must map strings"),
    "bad_bool": (
        raw_safetensors({"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\x01\x07"),
        "0 and 1",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_safetensors_reader_rejects_malformed_files(case: str, tmp_path: Path) -> None:
    blob, pattern = BAD_FILES[case]
    path = tmp_path / f"{case}.safetensors"
    path.write_bytes(blob)
    with pytest.raises(ValueError, match=pattern) as info:
        load_safetensors(path)
    assert repr(str(path)) in str(info.value)
    with pytest.raises(ValueError, match=pattern):  # and through load_weights, which names itself
        Sequential([keras.Input((3,)), Dense(2)]).load_weights(path)


def test_safetensors_package_reads_our_files_and_we_read_its_files(tmp_path: Path) -> None:
    st = pytest.importorskip("safetensors.numpy")
    model, _ = recurrent_model("ave")
    randomize(model)
    model.save_weights(tmp_path / "ours.safetensors")
    theirs = st.load_file(str(tmp_path / "ours.safetensors"))
    assert set(theirs) == set(saving.weight_names(model))
    for name, w in zip(saving.weight_names(model), model.get_weights(), strict=True):
        assert np.array_equal(theirs[name], w)
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, -2], np.int64)}
    st.save_file(arrays, str(tmp_path / "theirs.safetensors"), metadata={"x": "y"})
    back = load_safetensors(tmp_path / "theirs.safetensors")
    assert set(back) == {"a", "b"} and all(np.array_equal(back[k], v) for k, v in arrays.items())
    assert saving.load_safetensors_metadata(tmp_path / "theirs.safetensors") == {"x": "y"}


# ----- damaged and foreign model files ---------------------------------------------------------
def saved(tmp_path: Path, compile: bool = True) -> Path:
    model = small_model()
    if compile:
        model.compile("adam", "mse")
        model.train_on_batch(np.ones((2, 6, 2), np.float32), np.ones((2, 1), np.float32))
    path = tmp_path / "good.seqcore"
    model.save(path)
    return path


def rewrite(src: Path, dst: Path, edit_config: Callable[[dict], Any] | None = None, drop: str = "", **extra: bytes):
    """Copies a model archive, editing its config.json or members."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == drop:
                continue
            if name == "config.json" and edit_config is not None:
                cfg = json.loads(data)
                edit_config(cfg)
                data = json.dumps(cfg).encode()
            zout.writestr(name, extra.pop(name, data))
        for name, data in extra.items():
            zout.writestr(name, data)
    return dst


def zip_of(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"load_model: no such file.*nope.seqcore"):
        load_model(tmp_path / "nope.seqcore")
    with pytest.raises(FileNotFoundError, match=r"load_weights: no such file"):
        small_model().load_weights(tmp_path / "nope.safetensors")
    with pytest.raises(IsADirectoryError, match=r"expected a file, found a directory"):
        load_model(tmp_path)
    with pytest.raises(TypeError, match=r"path must be a str or os.PathLike; received int"):
        load_model(3)
    with pytest.raises(TypeError, match=r"expected a seqcore Sequential or Functional model; received str"):
        save_model("model", tmp_path / "x")


FOREIGN: dict[str, tuple[Callable[[Path], Path], str]] = {
    "random_bytes": (
        lambda d: write(d / "r.bin", np.random.default_rng(0).bytes(300)),
        r"is not a seqcore model file \(not a zip archive",
    ),
    "text": (lambda d: write(d / "notes.txt", b"hello, model\n"), r"not a zip archive: it starts with b'hello, m'"),
    "empty": (lambda d: write(d / "empty.seqcore", b""), r"is empty \(0 bytes\)"),
    "hdf5": (lambda d: write(d / "m.h5", b"\x89HDF\r\n\x1a\n" + bytes(100)), r"HDF5 file \(a Keras \.h5"),
    "zip_without_config": (lambda d: zip_of(d / "z.zip", {"readme.txt": b"x"}), r"without config.json.*readme.txt"),
    "other_format": (
        lambda d: zip_of(d / "o.zip", {"config.json": b'{"format": "other", "format_version": 1}'}),
        r"config.json has format 'other', expected 'seqcore'",
    ),
    "config_not_json": (lambda d: zip_of(d / "c.zip", {"config.json": b"{oops"}), r"config.json is not valid JSON"),
    "keras_archive": (
        lambda d: zip_of(
            d / "model.keras",
            {
                "metadata.json": b'{"keras_version": "3.15.1"}',
                "config.json": b'{"module": "keras", "class_name": "Sequential", "config": {}}',
                "model.weights.h5": b"\x89HDF\r\n\x1a\n",
            },
        ),
        r"looks like a Keras \.keras archive.*set_weights\(keras_model.get_weights\(\)\)",
    ),
}


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(FOREIGN))
def test_foreign_files_are_refused_clearly(case: str, tmp_path: Path) -> None:
    make, pattern = FOREIGN[case]
    path = make(tmp_path)
    with pytest.raises(ValueError, match=pattern) as info:
        load_model(path)
    assert str(info.value).startswith("load_model: ") and repr(str(path)) in str(info.value)


def test_weights_file_given_to_load_model(tmp_path: Path) -> None:
    small_model().save_weights(tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match=r"weights-only safetensors file.*model.load_weights\(path\)"):
        load_model(tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match=r"is a zip archive.*not a safetensors file"):
        load_safetensors(saved(tmp_path))


def test_newer_format_version_says_to_upgrade(tmp_path: Path) -> None:
    path = rewrite(saved(tmp_path), tmp_path / "new.seqcore", lambda c: c.update(format_version=7))
    with pytest.raises(
        ValueError, match=r"written by seqcore format version 7 .* reads up to format version 1; upgrade"
    ):
        load_model(path)
    for bad in ("7", True, 0):
        path = rewrite(saved(tmp_path), tmp_path / "bad.seqcore", lambda c, v=bad: c.update(format_version=v))
        with pytest.raises(ValueError, match=r"format_version must be a positive int"):
            load_model(path)


def test_truncated_and_corrupted_model_files(tmp_path: Path) -> None:
    good = saved(tmp_path)
    blob = good.read_bytes()
    for cut in (len(blob) // 2, len(blob) - 10, 30):
        path = write(tmp_path / f"cut{cut}.seqcore", blob[:cut])
        with pytest.raises(ValueError, match=r"damaged or truncated zip archive"):
            load_model(path)
    # A flipped byte inside the weights: the zip's CRC catches it.
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("model.safetensors")
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    damaged = bytearray(blob)
    damaged[start + info.file_size - 5] ^= 0xFF
    path = write(tmp_path / "flipped.seqcore", bytes(damaged))
    with pytest.raises(ValueError, match=r"member model.safetensors\) is damaged \(Bad CRC-32"):
        load_model(path)
    with pytest.raises(ValueError, match=r"member model.safetensors\) is damaged"):
        small_model().load_weights(path)


def test_damaged_members_and_configs(tmp_path: Path) -> None:
    good = saved(tmp_path)
    cases: list[tuple[Path, str]] = [
        (rewrite(good, tmp_path / "a.seqcore", drop="model.safetensors"), r"the member model.safetensors is missing"),
        (
            rewrite(good, tmp_path / "b.seqcore", **{"model.safetensors": raw_safetensors({"a": F32_2}, bytes(3))}),
            r"\(member model.safetensors\) is not a valid safetensors file: .* holds 3",
        ),
        (
            rewrite(
                good, tmp_path / "c.seqcore", lambda c: c["model"]["config"]["layers"][0].update(class_name="Fancy")
            ),
            r"cannot rebuild the model from config.json: Unknown layer class 'Fancy'",
        ),
        (
            rewrite(
                good, tmp_path / "d.seqcore", lambda c: c["model"]["config"]["layers"][0].update(class_name="os.system")
            ),
            r"Unknown layer class 'os.system'",
        ),
        (
            rewrite(
                good, tmp_path / "e.seqcore", lambda c: c["model"]["config"]["layers"][0]["config"].update(units=0)
            ),
            r"cannot rebuild the model.*units must be a positive integer",
        ),
        (
            rewrite(good, tmp_path / "f.seqcore", lambda c: c["model"].update(class_name="MyModel")),
            r"expected a Sequential or Functional model in config.json; received MyModel",
        ),
        (
            rewrite(good, tmp_path / "f2.seqcore", lambda c: c["model"].update(class_name="Functional")),
            r"cannot rebuild the model.*a Functional config needs 'input_layers' and 'output_layers'",
        ),
        (
            rewrite(good, tmp_path / "g.seqcore", lambda c: c["compile_config"]["optimizer"].update(class_name="Lion")),
            r"cannot compile the model as saved: Unknown optimizer class 'Lion'",
        ),
        (
            rewrite(
                good,
                tmp_path / "h.seqcore",
                **{"optimizer.safetensors": raw_safetensors({"momentum/ghost/kernel": F32_2}, bytes(8))},
            ),
            r"optimizer state 'momentum/ghost/kernel' names no weight",
        ),
        (
            rewrite(good, tmp_path / "i.seqcore", lambda c: c["optimizer_state"].update(iterations=-3)),
            r"cannot restore the optimizer state: Adam.set_state: iterations must be an int >= 0",
        ),
    ]
    for path, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            load_model(path)
    # The same weights with another architecture in config.json: a mismatch, named.
    path = rewrite(good, tmp_path / "j.seqcore", lambda c: c["model"]["config"]["layers"][0]["config"].update(units=5))
    with pytest.raises(ValueError, match=r"lstm/kernel expected float32 \(2, 20\), received float32 \(2, 16\)"):
        load_model(path)


def test_random_damage_gives_value_errors_only(tmp_path: Path) -> None:
    """Flipped, cut, inserted and overwritten bytes (including huge 8-byte integers, as a crafted
    length or offset would be): loading either works or raises ValueError, never anything else."""
    path = saved(tmp_path)
    small_model().save_weights(tmp_path / "w.safetensors")
    g = np.random.default_rng(0)
    for src, load in ((path.read_bytes(), load_model), ((tmp_path / "w.safetensors").read_bytes(), load_safetensors)):
        for _ in range(150):
            b = bytearray(src)
            kind = g.integers(4)
            if kind == 0:
                b[g.integers(len(b))] = g.integers(256)
            elif kind == 1:
                b = b[: g.integers(len(b))]
            elif kind == 2:
                i = g.integers(len(b))
                b[i:i] = g.bytes(int(g.integers(1, 20)))
            else:
                i = g.integers(len(b) - 8)
                b[i : i + 8] = int(g.integers(2**63)).to_bytes(8, "little")
            damaged = write(tmp_path / "damaged", bytes(b))
            try:
                load(damaged)
            except ValueError:
                pass


# ----- atomic writes ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["save", "save_weights"])
@pytest.mark.parametrize("failure", ["mid_write", "fsync", "replace"])
def test_failed_write_leaves_the_old_file_and_no_temp_files(
    method: str, failure: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = small_model()
    model.compile("adam", "mse")
    path = tmp_path / "model.out"
    getattr(model, method)(path)
    old = path.read_bytes()
    randomize(model, seed=3)  # the new file would differ

    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full (simulated)")

    if failure == "mid_write":
        calls = []
        real = saving._write_array

        def half(f: Any, arr: np.ndarray) -> None:
            calls.append(1)
            if len(calls) == 3:
                f.write(b"partial")
                boom()
            real(f, arr)

        monkeypatch.setattr(saving, "_write_array", half)
    else:
        monkeypatch.setattr(saving.os, failure, boom)
    with pytest.raises(OSError, match=r"disk full \(simulated\)"):
        getattr(model, method)(path)
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["model.out"]


def test_overwrite_false_and_directory_target(tmp_path: Path) -> None:
    model = small_model()
    model.save(tmp_path / "m.seqcore")
    with pytest.raises(FileExistsError, match=r"overwrite=False"):
        model.save(tmp_path / "m.seqcore", overwrite=False)
    with pytest.raises(FileExistsError, match=r"overwrite=False"):
        model.save_weights(tmp_path / "m.seqcore", overwrite=False)
    with pytest.raises(IsADirectoryError, match=r"the target is a directory"):
        model.save(tmp_path)
    assert os.listdir(tmp_path) == ["m.seqcore"]


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_new_files_get_ordinary_permissions(tmp_path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    small_model().save(tmp_path / "m.seqcore")
    assert (tmp_path / "m.seqcore").stat().st_mode & 0o777 == 0o666 & ~umask


# ----- ModelCheckpoint -------------------------------------------------------------------------
def fit_data(n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(3)
    return g.normal(size=(n, 6, 2)).astype(np.float32), g.normal(size=(n, 1)).astype(np.float32)


def drive(cb: Any, model: Any, values: list[dict[str, float]], weights: list[list[np.ndarray]] | None = None) -> None:
    """Runs the callback through epochs with the given logs (and model weights), as fit would."""
    cb.set_model(model)
    cb.set_params({"epochs": len(values)})
    cb.on_train_begin()
    for epoch, logs in enumerate(values):
        if weights is not None:
            model.set_weights(weights[epoch])
        cb.on_epoch_begin(epoch)
        cb.on_epoch_end(epoch, logs)
    cb.on_train_end()


def test_checkpoint_every_epoch_with_formatted_names(tmp_path: Path) -> None:
    model = small_model()
    model.compile("sgd", "mse")
    x, y = fit_data()
    pattern = str(tmp_path / "ckpt" / "{epoch:02d}-{loss:.4f}.seqcore")
    history = model.fit(x, y, epochs=3, batch_size=5, verbose=0, shuffle=False,
                        callbacks=[callbacks.ModelCheckpoint(pattern, monitor="loss")])  # fmt: skip
    expected = [f"{e + 1:02d}-{loss:.4f}.seqcore" for e, loss in enumerate(history.history["loss"])]
    assert sorted(os.listdir(tmp_path / "ckpt")) == expected  # directory created, 1-based epochs
    last = load_model(tmp_path / "ckpt" / expected[-1])
    assert np.array_equal(last.predict(x, verbose=0), model.predict(x, verbose=0))
    assert last.optimizer.iterations == model.optimizer.iterations == 6


def test_checkpoint_save_best_only_min(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = small_model()
    model.compile("sgd", "mse")
    cb = callbacks.ModelCheckpoint(str(tmp_path / "e{epoch}.seqcore"), save_best_only=True, verbose=1)
    drive(cb, model, [{"val_loss": v} for v in (0.5, 0.4, 0.45, 0.3, float("nan"))])
    assert sorted(os.listdir(tmp_path)) == ["e1.seqcore", "e2.seqcore", "e4.seqcore"]
    assert cb.best == 0.3
    out = capsys.readouterr().out.splitlines()  # Keras 3's messages
    assert out[:5] == [
        f"Epoch 1: val_loss improved from None to 0.50000, saving model to {tmp_path / 'e1.seqcore'}",
        f"Epoch 1: finished saving model to {tmp_path / 'e1.seqcore'}",
        f"Epoch 2: val_loss improved from 0.50000 to 0.40000, saving model to {tmp_path / 'e2.seqcore'}",
        f"Epoch 2: finished saving model to {tmp_path / 'e2.seqcore'}",
        "Epoch 3: val_loss did not improve from 0.40000",
    ]
    assert out[-1] == "Epoch 5: val_loss did not improve from 0.30000"


def test_checkpoint_save_best_only_max_overwrites_one_file_with_the_best(tmp_path: Path) -> None:
    model = Sequential([keras.Input((4,)), Dense(2, activation="softmax", name="d")])
    model.compile("sgd", "categorical_crossentropy", metrics=["accuracy"])
    weights = []
    for seed in range(4):
        randomize(model, seed)
        weights.append(model.get_weights())
    path = tmp_path / "best.seqcore"
    cb = callbacks.ModelCheckpoint(path, monitor="val_accuracy", save_best_only=True)  # auto -> max
    drive(cb, model, [{"val_accuracy": v} for v in (0.5, 0.7, 0.6, 0.65)], weights)
    assert os.listdir(tmp_path) == ["best.seqcore"]
    assert_same_weights(load_model(path), _with_weights(model, weights[1]))  # epoch 2 was the best
    # An explicit mode wins over the name: "min" on an accuracy keeps the lowest.
    cb = callbacks.ModelCheckpoint(path, monitor="val_accuracy", save_best_only=True, mode="min")
    drive(cb, model, [{"val_accuracy": v} for v in (0.5, 0.7, 0.4, 0.65)], weights)
    assert_same_weights(load_model(path), _with_weights(model, weights[2]))


def _with_weights(model: Any, weights: list[np.ndarray]) -> Any:
    other = Sequential.from_config(model.get_config())
    other.set_weights(weights)
    return other


def test_checkpoint_auto_mode_follows_keras(tmp_path: Path) -> None:
    model = Sequential([keras.Input((4,)), Dense(1)])
    model.compile("sgd", "mse", metrics=["mae", "rmse"])
    resolve = callbacks._auto_mode
    assert [resolve(m, model, "t") for m in ("loss", "val_loss", "mae", "val_rmse")] == ["min"] * 4
    model.compile("sgd", "binary_crossentropy", metrics=["acc"])
    assert resolve("val_acc", model, "t") == "max"
    cb = callbacks.ModelCheckpoint(tmp_path / "x", monitor="val_f1", save_best_only=True)
    cb.set_model(model)
    with pytest.raises(ValueError, match=r"cannot tell whether 'val_f1'.*mode='min' or mode='max'"):
        cb.on_train_begin()
    # Without save_best_only the direction does not matter and is not asked for.
    cb = callbacks.ModelCheckpoint(tmp_path / "x", monitor="val_f1")
    drive(cb, model, [{"loss": 1.0}])
    assert (tmp_path / "x").exists()


def test_checkpoint_initial_value_threshold(tmp_path: Path) -> None:
    model = small_model()
    cb = callbacks.ModelCheckpoint(
        tmp_path / "{epoch}", monitor="loss", save_best_only=True, initial_value_threshold=0.35
    )
    drive(cb, model, [{"loss": v} for v in (0.5, 0.4, 0.3, 0.32)])
    assert os.listdir(tmp_path) == ["3"]


def test_checkpoint_missing_monitor_warns_and_saves(tmp_path: Path) -> None:
    model = small_model()
    cb = callbacks.ModelCheckpoint(tmp_path / "m.seqcore", save_best_only=True)
    with pytest.warns(UserWarning, match=r"only with 'val_loss' available; the logs have \['loss'\]"):
        drive(cb, model, [{"loss": 1.0}])
    assert (tmp_path / "m.seqcore").exists()


def test_checkpoint_non_scalar_monitor_warns_and_saves(tmp_path: Path) -> None:
    cb = callbacks.ModelCheckpoint(tmp_path / "m.seqcore", monitor="val_p", mode="max", save_best_only=True)
    with pytest.warns(UserWarning, match=r"only when 'val_p' is a scalar"):
        drive(cb, small_model(), [{"val_p": np.array([0.1, 0.2])}])
    assert (tmp_path / "m.seqcore").exists()


def test_checkpoint_auto_mode_reads_a_metric_direction(tmp_path: Path) -> None:
    class Score(keras.metrics.Metric):
        name = "score"
        _direction = "up"

        def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
            return -np.abs(y_true - y_pred).mean(axis=-1)

    model = Sequential([keras.Input((4,)), Dense(1)])
    model.compile("sgd", "mse", metrics=[Score()])
    cb = callbacks.ModelCheckpoint(tmp_path / "{epoch}", monitor="val_score", save_best_only=True)
    drive(cb, model, [{"val_score": v} for v in (-0.5, -0.2, -0.4)])
    assert sorted(os.listdir(tmp_path)) == ["1", "2"]


def test_checkpoint_save_weights_only_writes_safetensors(tmp_path: Path) -> None:
    model = small_model()
    model.compile("adam", "mse")
    x, y = fit_data()
    cb = callbacks.ModelCheckpoint(tmp_path / "w-{epoch}.safetensors", save_weights_only=True, monitor="loss")
    model.fit(x, y, epochs=2, batch_size=5, verbose=0, callbacks=[cb])
    assert sorted(os.listdir(tmp_path)) == ["w-1.safetensors", "w-2.safetensors"]
    assert list(load_safetensors(tmp_path / "w-2.safetensors")) == saving.weight_names(model)
    other = twin(model)
    other.load_weights(tmp_path / "w-2.safetensors")
    assert_same_weights(other, model)
    with pytest.raises(ValueError, match=r"weights-only"):
        load_model(tmp_path / "w-2.safetensors")


def test_checkpoint_save_freq_counts_batches_across_epochs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = small_model()
    model.compile("sgd", "mse")
    x, y = fit_data(10)
    cb = callbacks.ModelCheckpoint(tmp_path / "{epoch}-{batch}.seqcore", save_freq=3, monitor="loss", verbose=1)
    model.fit(x, y, epochs=2, batch_size=2, verbose=0, callbacks=[cb])  # 5 batches per epoch
    assert sorted(os.listdir(tmp_path)) == ["1-3.seqcore", "2-1.seqcore", "2-4.seqcore"]
    assert capsys.readouterr().out.count("finished saving model to") == 3
    assert load_model(tmp_path / "2-4.seqcore").optimizer.iterations == 9


def test_checkpoint_in_fit_with_validation_keeps_the_best(tmp_path: Path) -> None:
    model = small_model()
    model.compile(optimizers.Adam(0.05), "mse")
    x, y = fit_data(20)
    path = tmp_path / "best-{epoch}.seqcore"
    history = model.fit(x, y, epochs=4, batch_size=5, verbose=0, validation_split=0.25, shuffle=False,
                        callbacks=[callbacks.ModelCheckpoint(path, save_best_only=True)])  # fmt: skip
    val = history.history["val_loss"]
    improved = [e + 1 for e in range(len(val)) if val[e] < min(val[:e], default=np.inf)]
    assert sorted(os.listdir(tmp_path)) == sorted(f"best-{e}.seqcore" for e in improved)


def test_checkpoint_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"mode must be 'auto', 'min' or 'max'"):
        callbacks.ModelCheckpoint("x", mode="best")
    for freq in (0, "batch", 2.5, True):
        with pytest.raises(ValueError, match=r"save_freq must be 'epoch' or a number of batches >= 1"):
            callbacks.ModelCheckpoint("x", save_freq=freq)
    with pytest.raises(TypeError, match=r"filepath must be a str or os.PathLike"):
        callbacks.ModelCheckpoint(None)
    with pytest.raises(TypeError, match=r"initial_value_threshold must be a number"):
        callbacks.ModelCheckpoint("x", initial_value_threshold="0.3")
    cb = callbacks.ModelCheckpoint(tmp_path / "{epoch}-{val_mae:.2f}", monitor="loss")
    with pytest.raises(ValueError, match=r"no value for 'val_mae'. Available: \['epoch', 'loss'\]"):
        drive(cb, small_model(), [{"loss": 1.0}])
    assert os.listdir(tmp_path) == []
