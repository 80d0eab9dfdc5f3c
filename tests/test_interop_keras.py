"""seqcore.interop Keras converters: from_keras / to_keras / save_keras / keras_config.

Without Keras (CI): the .keras goldens in tests/golden/interop/ (written by Keras 3.15.1 with
tests/golden/generate_interop_goldens.py) are read with h5py only and the converted models must
reproduce Keras's outputs stored next to them; save_keras files must read back identically; bad
files and unsupported layers/options must be refused with messages naming them.
With Keras installed: live round trips keras -> seqcore -> keras, Keras loading save_keras's files,
and the built-in verification (including a deliberately broken conversion)."""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import seqcore
from seqcore import interop
from seqcore.interop import _common
from seqcore.interop import keras as ik

try:
    import h5py
except ModuleNotFoundError:  # h5py is in the test extra; without it only the tests reading HDF5 skip
    h5py = None
needs_h5py = pytest.mark.skipif(h5py is None, reason="h5py is not installed (pip install h5py)")

L = seqcore.layers
GOLDEN = Path(__file__).parent / "golden" / "interop"
G = np.load(GOLDEN / "keras_goldens.npz")
CASES = sorted({k.split("__")[0] for k in G.files})


def _no_keras(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes the converters behave as on a machine without Keras (as in CI), also where it is installed."""
    real = ik.optional_import
    monkeypatch.setattr(ik, "optional_import", lambda name: None if name == "keras" else real(name))


# ----- goldens, no Keras ------------------------------------------------------------------------
@needs_h5py
@pytest.mark.parametrize("case", CASES)
def test_keras_file_golden_reproduces_keras_outputs(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_keras(monkeypatch)
    model = interop.from_keras(GOLDEN / f"{case}.keras")
    report = model.conversion_report
    assert report.max_abs_diff is None and not report.verified and "not installed" in report.detail
    out = model.predict(G[f"{case}__x"], verbose=0)
    np.testing.assert_allclose(out, G[f"{case}__y"], rtol=1e-5, atol=1e-5)
    assert float(np.max(np.abs(out - G[f"{case}__y"]))) < 1e-5


@needs_h5py
def test_golden_structure_and_names() -> None:
    m = interop.from_keras(str(GOLDEN / "cnn_bilstm.keras"), verify=False)
    assert [type(x).__name__ for x in m.layers] == ["TimeDistributed", "Bidirectional", "GRU", "Dense", "Activation"]
    assert m.input_shape == (None, 3, 8, 1)
    gru, dense = m.layers[2], m.layers[3]
    assert gru.reset_after is False and gru.bias.shape == (6,)
    assert isinstance(dense.kernel_regularizer, seqcore.regularizers.L2) and dense.kernel_regularizer.l2 == 0.01
    f = interop.from_keras(GOLDEN / "functional.keras", verify=False)  # a Functional linear chain
    assert [type(x).__name__ for x in f.layers] == ["GRU", "Dense", "Reshape", "Dense"]


@needs_h5py
@pytest.mark.parametrize("case", CASES)
def test_save_keras_round_trip_without_keras(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_keras(monkeypatch)
    m = interop.from_keras(GOLDEN / f"{case}.keras")
    report = interop.save_keras(m, tmp_path / "out.keras")
    assert report.max_abs_diff is None
    with zipfile.ZipFile(tmp_path / "out.keras") as z:
        assert sorted(z.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        cfg = json.loads(z.read("config.json"))
    assert cfg["class_name"] == "Sequential" and cfg["config"]["layers"][0]["class_name"] == "InputLayer"
    again = interop.from_keras(tmp_path / "out.keras")
    for a, b in zip(m.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(again.predict(G[f"{case}__x"], verbose=0), m.predict(G[f"{case}__x"], verbose=0))


@needs_h5py
def test_save_keras_writes_keras_weight_layout(tmp_path: Path) -> None:
    """The h5 paths Keras 3 uses (snake-cased class names, counters, cell/ for RNNs, wrappers nested)."""
    model = seqcore.Sequential(
        [
            seqcore.Input((5, 2)),
            L.Dense(3),
            L.Bidirectional(L.LSTM(2, return_sequences=True)),
            L.Dense(1, use_bias=False),
        ]
    )
    interop.save_keras(model, tmp_path / "m.keras", verify=False)
    with zipfile.ZipFile(tmp_path / "m.keras") as z, h5py.File(io.BytesIO(z.read("model.weights.h5"))) as f:
        shapes = {}
        f.visititems(lambda name, obj: shapes.update({name: obj.shape}) if isinstance(obj, h5py.Dataset) else None)
    assert shapes == {
        "layers/dense/vars/0": (2, 3),
        "layers/dense/vars/1": (3,),
        "layers/bidirectional/forward_layer/cell/vars/0": (3, 8),
        "layers/bidirectional/forward_layer/cell/vars/1": (2, 8),
        "layers/bidirectional/forward_layer/cell/vars/2": (8,),
        "layers/bidirectional/backward_layer/cell/vars/0": (3, 8),
        "layers/bidirectional/backward_layer/cell/vars/1": (2, 8),
        "layers/bidirectional/backward_layer/cell/vars/2": (8,),
        "layers/dense_1/vars/0": (4, 1),
    }


@needs_h5py
def test_keras_config_round_trip_of_every_layer_kind(tmp_path: Path) -> None:
    reg = seqcore.regularizers.l1_l2(0.01, 0.02)
    inner = seqcore.Sequential([seqcore.Input((6, 2)), L.Conv1D(3, 2, padding="same"), L.GlobalMaxPooling1D()])
    model = seqcore.Sequential(
        [
            seqcore.Input((4, 6, 2)),
            L.TimeDistributed(inner),
            L.Masking(0.5),
            L.Bidirectional(L.LSTM(2, return_sequences=True, kernel_regularizer=reg), merge_mode="mul"),
            L.GRU(3, return_sequences=True, activation="relu", recurrent_activation="hard_sigmoid"),
            L.Dropout(0.1, seed=3),
            L.Conv1D(2, 2, strides=2, padding="valid", kernel_initializer="lecun_normal"),
            L.AveragePooling1D(1),
            L.Reshape((-1,)),
            L.Dense(2, activation="softmax", bias_regularizer="l2", trainable=False),
        ]
    )
    x = np.random.default_rng(0).normal(size=(3, 4, 6, 2)).astype(np.float32)
    interop.save_keras(model, tmp_path / "all.keras", verify=False)
    again = interop.from_keras(tmp_path / "all.keras", verify=False)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [type(a).__name__ for a in again.layers] == [type(a).__name__ for a in model.layers]
    lstm = again.layers[2].forward_layer
    assert isinstance(lstm.kernel_regularizer, seqcore.regularizers.L1L2) and lstm.kernel_regularizer.l2 == 0.02
    assert again.layers[3].recurrent_activation == "hard_sigmoid" and again.layers[4].seed == 3
    assert again.layers[-1].trainable is False and again.layers[-2].trainable is True


# ----- errors, no Keras -------------------------------------------------------------------------
def _write_keras(path: Path, layers: list[dict[str, Any]], weights: dict[str, np.ndarray] | None = None) -> Path:
    """A hand-made .keras file (what a Keras user's file could hold)."""
    cfg = {"module": "keras", "class_name": "Sequential", "config": {"name": "hand", "layers": layers}}
    buf = io.BytesIO()
    if weights is not None:  # without, the config is refused before the weights are opened
        with h5py.File(buf, "w") as f:
            for k, v in weights.items():
                f[k] = v
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(cfg))
        z.writestr("metadata.json", "{}")
        z.writestr("model.weights.h5", buf.getvalue())
    return path


def _inp(shape: list[Any]) -> dict[str, Any]:
    return {"class_name": "InputLayer", "config": {"batch_shape": [None, *shape], "name": "in"}}


def _layer(cls: str, **config: Any) -> dict[str, Any]:
    return {"module": "keras.layers", "class_name": cls, "config": config}


@pytest.mark.parametrize(
    ("layer", "match"),
    [
        (
            _layer("ConvLSTM1D", name="rnn", filters=2, kernel_size=[2]),
            r"layer 'rnn' \(ConvLSTM1D\) is not supported.*Supported Keras",
        ),
        (_layer("LSTM", name="l", units=2, return_state=True), r"'l' \(LSTM\): return_state=True"),
        (_layer("Conv1D", name="c", filters=2, kernel_size=[2], data_format="channels_first"), r"channels_first"),
        (
            _layer(
                "Dense",
                name="d",
                units=2,
                kernel_constraint={"module": None, "class_name": "MyC", "config": {}, "registered_name": "MyC"},
            ),
            r"'d' \(Dense\): kernel_constraint 'MyC' is not supported; seqcore converts only Keras's built-in",
        ),
        (_layer("Dense", name="d", units=2, activation="celu"), r"'d' \(Dense\): activation='celu' is not supported"),
        (_layer("Dense", name="d", units=2, dtype="mixed_float16"), r"dtype policy 'mixed_float16'"),
        (_layer("Dense", name="d", units=2, lora_rank=4), r"lora_rank=4"),
        (_layer("Dense", name="d", units=2, some_future_option=3), r"option some_future_option=3 is not supported"),
        (
            _layer("Dense", name="d", units=2, kernel_initializer={"class_name": "Identity", "config": {}}),
            r"kernel_initializer 'Identity' is not an initializer seqcore has",
        ),
        ({"module": "my_pkg.layers", "class_name": "Dense", "config": {"name": "x", "units": 2}}, r"custom layer"),
    ],
)
def test_unsupported_layers_and_options_are_named(tmp_path: Path, layer: dict[str, Any], match: str) -> None:
    path = _write_keras(tmp_path / "bad.keras", [_inp([4, 3]), layer])
    with pytest.raises(ValueError, match=r"^from_keras: (layer )?.*" + match):
        interop.from_keras(path, verify=False)


def test_masked_models_convert_with_keras_mask_semantics(tmp_path: Path) -> None:
    # Bidirectional forces zero_output_for_mask on its layers, and GlobalAveragePooling1D averages
    # the unmasked steps: seqcore does both (numbers against Keras in tests/test_model_parity.py),
    # so such models round-trip through a .keras file.
    pytest.importorskip("h5py")
    src = seqcore.Sequential(
        [seqcore.Input((4, 3)), L.Masking(), L.Bidirectional(L.GRU(2, return_sequences=True)),
         L.GlobalAveragePooling1D()]
    )  # fmt: skip
    interop.save_keras(src, tmp_path / "m.keras")
    model = interop.from_keras(tmp_path / "m.keras", verify=False)
    bi = model.layers[1]
    assert bi.forward_layer.zero_output_for_mask and bi.backward_layer.zero_output_for_mask
    x = np.random.default_rng(0).normal(size=(3, 4, 3)).astype(np.float32)
    x[1, 2:] = 0.0
    np.testing.assert_array_equal(model.predict(x, verbose=0), src.predict(x, verbose=0))
    inner = interop.keras_config(model)["config"]["layers"][2]["config"]["layer"]["config"]
    assert inner["return_sequences"] is True and inner["zero_output_for_mask"] is True


def test_bad_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="from_keras: no such file"):
        interop.from_keras(tmp_path / "missing.keras")
    (tmp_path / "legacy.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(ValueError, match=r"not a \.keras file.*Legacy Keras 2 HDF5"):
        interop.from_keras(tmp_path / "legacy.h5")
    with zipfile.ZipFile(tmp_path / "noweights.keras", "w") as z:
        z.writestr("config.json", "{}")
    with pytest.raises(ValueError, match="has no model.weights.h5"):
        interop.from_keras(tmp_path / "noweights.keras")
    unbuilt = _write_keras(tmp_path / "unbuilt.keras", [_layer("Dense", name="d", units=2)])
    with pytest.raises(ValueError, match="has no input shape"):
        interop.from_keras(unbuilt)
    with pytest.raises(TypeError, match="from_keras: expected a keras.Sequential"):
        interop.from_keras(42)


@needs_h5py
def test_weights_file_mismatches_are_refused(tmp_path: Path) -> None:
    layers = [_inp([3]), _layer("Dense", name="d", units=2)]
    wrong = _write_keras(
        tmp_path / "w.keras", layers, {"layers/dense/vars/0": np.ones((3, 5)), "layers/dense/vars/1": np.ones(2)}
    )
    with pytest.raises(ValueError, match=r"from_keras: layer 'd' \(Dense\): .*kernel.*\(3, 2\).*\(3, 5\)"):
        interop.from_keras(wrong, verify=False)
    missing = _write_keras(tmp_path / "m.keras", layers, {})
    with pytest.raises(ValueError, match=r"'d' \(Dense\) has 2 weight arrays in seqcore but 0"):
        interop.from_keras(missing, verify=False)


@needs_h5py
def test_weights_pointing_outside_the_file_are_refused(tmp_path: Path) -> None:
    """An HDF5 external link would make h5py read another file on disk; the reader refuses it."""
    outside = tmp_path / "outside.h5"
    with h5py.File(outside, "w") as f:
        f["secret"] = np.ones((3, 2))
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        g = f.create_group("layers/dense/vars")
        g["0"] = h5py.ExternalLink(str(outside), "secret")
        g["1"] = np.ones(2)
    cfg = {"class_name": "Sequential", "config": {"layers": [_inp([3]), _layer("Dense", name="d", units=2)]}}
    path = tmp_path / "link.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(cfg))
        z.writestr("model.weights.h5", buf.getvalue())
    with pytest.raises(ValueError, match=r"'d' \(Dense\): layers/dense/vars/0 in model.weights.h5 is a link"):
        interop.from_keras(path, verify=False)


def test_functional_config_layers_must_reach_the_outputs(tmp_path: Path) -> None:
    def node(src: str) -> list[dict[str, Any]]:
        return [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": [src, 0, 0]}}], "kwargs": {}}]

    layers = [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 3], "name": "in"}, "inbound_nodes": []},
        {**_layer("Dense", name="a", units=2), "inbound_nodes": node("in")},
        {**_layer("Dense", name="b", units=2), "inbound_nodes": node("in")},  # a branch, not a chain
    ]
    cfg = {"class_name": "Functional", "config": {"name": "f", "layers": layers, "input_layers": [["in", 0, 0]],
                                                  "output_layers": [["b", 0, 0]]}}  # fmt: skip
    path = tmp_path / "f.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(cfg))
        z.writestr("model.weights.h5", b"")
    with pytest.raises(
        ValueError, match=r"Functional model 'f': layer\(s\) \['a'\] do not lead to the model's outputs"
    ):
        interop.from_keras(path, verify=False)


def test_export_refuses_what_keras_cannot_express() -> None:
    m = seqcore.Sequential([seqcore.Input((9, 2)), L.Conv1D(2, 3, strides=2, dilation_rate=2)])
    with pytest.raises(ValueError, match=r"keras_config: layer 'conv1d\w*' \(Conv1D\): strides=2 with dilation_rate=2"):
        interop.keras_config(m)
    m = seqcore.Sequential([seqcore.Input((3,)), L.Dense(2, kernel_initializer=lambda shape: np.ones(shape))])
    with pytest.raises(ValueError, match=r"kernel_initializer is a custom initializer"):
        interop.keras_config(m)
    with pytest.raises(ValueError, match="is not built"):
        interop.keras_config(seqcore.Sequential([L.Dense(2)]))
    with pytest.raises(TypeError, match="keras_config: expected a seqcore.Sequential"):
        interop.keras_config(L.Dense(2))  # type: ignore[arg-type]


def test_missing_h5py_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = ik.optional_import
    monkeypatch.setattr(ik, "optional_import", lambda name: None if name == "h5py" else real(name))
    with pytest.raises(ImportError, match=r"h5py, which is not installed: pip install h5py"):
        interop.from_keras(GOLDEN / "conv_stack.keras", verify=False)
    with pytest.raises(ImportError, match=r"pip install h5py"):
        interop.save_keras(seqcore.Sequential([seqcore.Input((3,)), L.Dense(2)]), tmp_path / "x.keras")


def test_check_close_reports_and_raises() -> None:
    ref = np.array([[1.0, -3.0]], np.float32)
    r = _common.check_close("f", ref, ref + 1e-5, 1e-4, source="a", target="b", probe_shape=(1, 2))
    assert r.verified and r.max_abs_diff == pytest.approx(1e-5, rel=1e-2) and r.tolerance == pytest.approx(3e-4)
    with pytest.raises(
        ValueError, match=r"f: verification failed: .* differs from the a model by up to 0\.1 .*layer X"
    ):
        _common.check_close(
            "f", ref, ref + 0.1, 1e-4, source="a", target="b", probe_shape=(1, 2), locate=lambda t: "layer X"
        )
    with pytest.raises(ValueError, match="outputs shape"):
        _common.check_close("f", ref, ref[0], 1e-4, source="a", target="b", probe_shape=(1, 2))
    with pytest.raises(ValueError, match="nan"):
        _common.check_close("f", ref, ref * np.nan, 1e-4, source="a", target="b", probe_shape=(1, 2))


# ----- with Keras --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("keras")


def _keras_models(keras: Any) -> dict[str, Any]:
    K, Input = keras.layers, keras.Input
    return {
        "lstm_td": keras.Sequential([Input((6, 3)), K.LSTM(5, return_sequences=True), K.TimeDistributed(K.Dense(2))]),
        "bigru_concat": keras.Sequential(
            [Input((None, 2)), K.Bidirectional(K.GRU(3)), K.Dense(1, activation="sigmoid")]
        ),
        "conv": keras.Sequential(
            [
                Input((10, 3)),
                K.Conv1D(4, 3, padding="same", activation="relu"),
                K.MaxPooling1D(2),
                K.Flatten(),
                K.Dense(2),
            ]
        ),
        "masked": keras.Sequential(
            [Input((5, 2)), K.Masking(0.0), K.LSTM(3, return_sequences=True), K.GRU(2, go_backwards=True)]
        ),
    }


def test_live_round_trip_keras_seqcore_keras(keras: Any) -> None:
    rng = np.random.default_rng(1)
    for name, km in _keras_models(keras).items():
        km.set_weights([rng.normal(0, 0.5, size=w.shape).astype(np.float32) for w in km.get_weights()])
        sm = interop.from_keras(km)
        assert sm.conversion_report.verified and sm.conversion_report.max_abs_diff < 1e-5, name
        shape = tuple(7 if d is None else d for d in km.input_shape[1:])
        x = rng.normal(size=(4, *shape)).astype(np.float32)
        if name == "masked":
            x[2, 3:] = 0.0
        ref = keras.ops.convert_to_numpy(km(x))
        np.testing.assert_allclose(sm.predict(x, verbose=0), ref, atol=1e-5, err_msg=name)
        back = interop.to_keras(sm)
        assert back.conversion_report.max_abs_diff < 1e-5
        np.testing.assert_allclose(keras.ops.convert_to_numpy(back(x)), ref, atol=1e-5, err_msg=name)


def test_keras_loads_save_keras_files_and_goldens(keras: Any, tmp_path: Path) -> None:
    def run(path: Path, x: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns that Flatten drops the mask in masked_rnn
            return keras.ops.convert_to_numpy(keras.saving.load_model(path, compile=False)(x))

    for case in CASES:
        x, y = G[f"{case}__x"], G[f"{case}__y"]
        np.testing.assert_allclose(run(GOLDEN / f"{case}.keras", x), y, atol=1e-6)  # the deflated goldens load
        m = interop.from_keras(GOLDEN / f"{case}.keras")
        assert m.conversion_report.max_abs_diff < 1e-5
        report = interop.save_keras(m, tmp_path / f"{case}.keras")
        assert report.verified and report.max_abs_diff < 1e-5
        np.testing.assert_allclose(run(tmp_path / f"{case}.keras", x), y, atol=1e-5)


def test_verification_neither_uses_nor_disturbs_carried_states(keras: Any) -> None:
    K = keras.layers
    km = keras.Sequential([keras.Input(batch_shape=(2, 5, 3)), K.LSTM(4, stateful=True), K.Dense(1)])
    x = np.random.default_rng(2).normal(size=(2, 5, 3)).astype(np.float32)
    km(x)  # the Keras model now carries a state
    carried = [np.array(v.numpy()) for v in km.layers[0].states]
    sm = interop.from_keras(km)
    assert sm.conversion_report.max_abs_diff < 1e-5 and sm.input_shape == (2, 5, 3)
    for v, before in zip(km.layers[0].states, carried, strict=True):
        np.testing.assert_array_equal(v.numpy(), before)
    assert sm.layers[0].states is None  # fresh, as a converted model starts
    sm.predict(x, verbose=0)
    carried_sc = [a.copy() for a in sm.layers[0].states]
    back = interop.to_keras(sm)  # verified from zero states on both sides
    assert back.conversion_report.max_abs_diff < 1e-5
    for a, b in zip(sm.layers[0].states, carried_sc, strict=True):
        np.testing.assert_array_equal(a, b)


def test_verification_names_the_diverging_layer(keras: Any) -> None:
    km = _keras_models(keras)["conv"]
    sm = interop.from_keras(km)
    # break the Dense after a correct conversion: every entry, since one entry can meet a feature the
    # ReLU zeroed for every verification sample (then nothing would differ)
    sm.layers[3].kernel.value[...] += 1.0
    entries = ik.keras_config(sm)["config"]["layers"][1:]
    with pytest.raises(ValueError, match=r"verification failed.*layer 'dense\w*' \(Dense\) is the first to differ"):
        ik._verify_pair("from_keras", keras, km, sm, entries, 1e-4, "keras", "seqcore")


def test_unsupported_live_layer_is_named(keras: Any) -> None:
    km = keras.Sequential([keras.Input((4, 2, 1)), keras.layers.Conv2D(3, 2, name="simple")])
    with pytest.raises(ValueError, match=r"layer 'simple' \(Conv2D\) is not supported"):
        interop.from_keras(km)


def test_recurrent_dropout_converts_both_ways(keras: Any) -> None:
    km = keras.Sequential([keras.Input((4, 2)), keras.layers.LSTM(3, dropout=0.2, recurrent_dropout=0.1, name="rd")])
    sm = interop.from_keras(km)
    assert (sm.layers[0].dropout, sm.layers[0].recurrent_dropout) == (0.2, 0.1)
    back = interop.to_keras(sm)
    assert back.layers[0].recurrent_dropout == 0.1
