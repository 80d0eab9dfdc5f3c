"""seqcore.interop for Keras Functional graphs that are not chains (branches, merges, shared layers,
several inputs and outputs, ``initial_state=`` links, keras.ops calls).

Without Keras (CI): the graph goldens in tests/golden/interop/ (written by Keras 3.15.1 with
tests/golden/generate_interop_goldens.py) are read with h5py only and must reproduce Keras's stored
outputs; save_keras on a seqcore graph must read back identically; unsupported ops and call
arguments are refused by name. With Keras installed: live conversions both ways, Keras loading
save_keras's graph files, and verification naming the layer a broken conversion diverges at."""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import seqcore
from seqcore import interop, ops
from seqcore.interop import keras as ik

try:
    import h5py
except ModuleNotFoundError:
    h5py = None
needs_h5py = pytest.mark.skipif(h5py is None, reason="h5py is not installed (pip install h5py)")

L = seqcore.layers
GOLDEN = Path(__file__).parent / "golden" / "interop"
G = np.load(GOLDEN / "keras_graph_goldens.npz")
CASES = sorted({k.split("__")[0] for k in G.files})


def _no_keras(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ik.optional_import
    monkeypatch.setattr(ik, "optional_import", lambda name: None if name == "keras" else real(name))


def _inputs(case: str) -> list[np.ndarray]:
    return [G[k] for k in sorted(k for k in G.files if k.startswith(f"{case}__x"))]


def _outputs(case: str) -> dict[str, np.ndarray]:
    return {k.split("__")[2]: G[k] for k in G.files if k.startswith(f"{case}__y__")}


def _as_dict(out: Any) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in out.items()} if isinstance(out, dict) else {"0": np.asarray(out)}


def _feed(xs: list[np.ndarray]) -> Any:
    return xs if len(xs) > 1 else xs[0]


# ----- goldens, no Keras ------------------------------------------------------------------------
@needs_h5py
@pytest.mark.parametrize("case", CASES)
def test_graph_golden_reproduces_keras_outputs(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_keras(monkeypatch)
    model = interop.from_keras(GOLDEN / f"{case}.keras")
    assert isinstance(model, seqcore.models.Functional)
    assert not model.conversion_report.verified
    got = _as_dict(model.predict(_feed(_inputs(case)), verbose=0))
    want = _outputs(case)
    assert sorted(got) == sorted(want)
    for k, v in want.items():
        np.testing.assert_allclose(got[k], v, rtol=1e-5, atol=2e-6, err_msg=f"{case} output {k}")


@needs_h5py
def test_graph_golden_structure() -> None:
    m = interop.from_keras(GOLDEN / "graph_seq2seq.keras", verify=False)
    assert m.name == "seq2seq"
    assert [t.shape for t in m.inputs] == [(None, 6, 3), (None, 5, 2)]
    names = [layer.name for layer in m.layers]
    assert names[:2] == ["enc_in", "dec_in"] and {"encoder", "decoder", "skip", "join", "head"} <= set(names)
    assert m.get_layer("encoder").return_state
    # the decoder takes the encoder's two states as initial_state
    (node,) = [n for n in m._nodes if n.layer.name == "decoder"]
    assert [t.node.layer.name for t in node.kwargs["initial_state"]] == ["encoder", "encoder"]
    assert [t.index for t in node.kwargs["initial_state"]] == [1, 2]
    b = interop.from_keras(GOLDEN / "graph_branches.keras", verify=False)
    assert b.output_names == ["cls", "sim"]
    shared = b.get_layer("shared")
    assert sum(n.layer is shared for n in b._nodes) == 2  # one layer, two calls: weights shared
    text = b.summary(print_fn=lambda s: None)
    assert "relu (Relu)" in text and "shared[0][0], shared[1][0]" in text


@needs_h5py
@pytest.mark.parametrize("case", CASES)
def test_graph_save_keras_reads_back_identically(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_keras(monkeypatch)
    model = interop.from_keras(GOLDEN / f"{case}.keras")
    path = tmp_path / f"{case}.keras"
    assert not interop.save_keras(model, path).verified
    with zipfile.ZipFile(path) as z:
        cfg = json.loads(z.read("config.json"))
        assert cfg["class_name"] == "Functional" and cfg["module"] == "keras.src.models.functional"
        weights = h5py.File(z.open("model.weights.h5"), "r")
        names: list[str] = []
        weights.visit(names.append)
    assert "layers/input_layer/vars" in names  # Keras's path names count the InputLayers
    again = interop.from_keras(path)
    x = _feed(_inputs(case))
    for k, v in _as_dict(model.predict(x, verbose=0)).items():
        np.testing.assert_array_equal(_as_dict(again.predict(x, verbose=0))[k], v)


@needs_h5py
def test_graph_converted_model_trains(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_keras(monkeypatch)
    m = interop.from_keras(GOLDEN / "graph_seq2seq.keras")
    xs = _inputs("graph_seq2seq")
    y = np.full_like(G["graph_seq2seq__y__0"], 0.5)
    m.compile("adam", "mse")
    before = m.evaluate(xs, y, verbose=0)
    m.fit(xs, y, epochs=5, verbose=0)
    assert m.evaluate(xs, y, verbose=0) < before


def _graph_of_ops() -> seqcore.Model:
    a = seqcore.Input((6, 4), name="a")
    b = seqcore.Input((6, 4), name="b")
    x = L.Dense(4, name="d1")(a)
    y = x + b
    y = 2.0 - ops.sigmoid(y)
    z = ops.mean(ops.softmax(y, axis=1), axis=1)
    out, h = L.GRU(3, return_state=True, name="gru")(L.Concatenate(name="cat")([y, a]))
    return seqcore.Model({"a": a, "b": b}, [ops.transpose(y, (0, 2, 1)), z, L.Add(name="plus")([out, h])],
                         name="ops_graph")  # fmt: skip


def test_graph_keras_config_shape() -> None:
    cfg = interop.keras_config(_graph_of_ops())
    c = cfg["config"]
    assert c["input_layers"] == {"a": ["a", 0, 0], "b": ["b", 0, 0]}
    ops_written = {e["class_name"]: e for e in c["layers"] if e["module"].startswith("keras.src.ops")}
    assert set(ops_written) == {"Add", "Subtract", "Sigmoid", "Softmax", "Mean", "Transpose"}
    assert ops_written["Softmax"]["module"] == "keras.src.ops.nn"
    assert ops_written["Mean"]["config"] == {"name": ops_written["Mean"]["name"], "axis": 1, "keepdims": False}
    sub = ops_written["Subtract"]["inbound_nodes"][0]["args"]
    assert sub[0] == 2.0 and sub[1]["class_name"] == "__keras_tensor__"
    gru = next(e for e in c["layers"] if e["name"] == "gru")
    assert gru["config"]["return_state"] is True


@needs_h5py
def test_graph_of_ops_round_trips_without_keras(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_keras(monkeypatch)
    m = _graph_of_ops()
    rng = np.random.default_rng(0)
    x = {"a": rng.normal(size=(2, 6, 4)).astype(np.float32), "b": rng.normal(size=(2, 6, 4)).astype(np.float32)}
    interop.save_keras(m, tmp_path / "g.keras")
    again = interop.from_keras(tmp_path / "g.keras")
    for p, q in zip(m.predict(x, verbose=0), again.predict(x, verbose=0), strict=True):
        np.testing.assert_array_equal(p, q)


# ----- refusals -----------------------------------------------------------------------------------
def _write(tmp_path: Path, layers: list[dict[str, Any]], outputs: Any) -> Path:
    cfg = {"class_name": "Functional", "config": {"name": "f", "layers": layers, "input_layers": [["in", 0, 0]],
                                                  "output_layers": outputs}}  # fmt: skip
    path = tmp_path / "f.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(cfg))
        z.writestr("model.weights.h5", b"")
    return path


def _t(src: str, index: int = 0) -> dict[str, Any]:
    return {"class_name": "__keras_tensor__", "config": {"keras_history": [src, 0, index]}}


_IN = {"class_name": "InputLayer", "config": {"batch_shape": [None, 4, 3], "name": "in"}, "inbound_nodes": []}


def test_graph_unsupported_op_is_named(tmp_path: Path) -> None:
    layers = [
        _IN,
        {
            "module": "keras.src.ops.numpy",
            "class_name": "Cumsum",
            "config": {"name": "cumsum", "axis": 1},
            "name": "cumsum",
            "inbound_nodes": [{"args": [_t("in")], "kwargs": {}}],
        },
        {
            "module": "keras.src.ops.numpy",
            "class_name": "Add",
            "config": {"name": "add"},
            "name": "add",
            "inbound_nodes": [{"args": [_t("cumsum"), _t("in")], "kwargs": {}}],
        },
    ]
    with pytest.raises(ValueError, match=r"from_keras: op 'cumsum' \(keras.ops Cumsum\) is not supported"):
        interop.from_keras(_write(tmp_path, layers, ["add", 0, 0]), verify=False)
    layers[1] = {"module": "keras.src.ops.numpy", "class_name": "Mean", "config": {"name": "cumsum", "axis": 1,
                 "where": 3}, "name": "cumsum", "inbound_nodes": [{"args": [_t("in")], "kwargs": {}}]}  # fmt: skip
    with pytest.raises(ValueError, match=r"op 'cumsum' \(Mean\) has options \['where'\]"):
        interop.from_keras(_write(tmp_path, layers, ["add", 0, 0]), verify=False)


def test_graph_call_arguments_seqcore_lacks_are_refused(tmp_path: Path) -> None:
    dense = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 3}, "name": "d"}
    add = {"module": "keras.layers", "class_name": "Add", "config": {"name": "add"}, "name": "add",
           "inbound_nodes": [{"args": [[_t("d"), _t("in")]], "kwargs": {}}]}  # fmt: skip
    drop = {**dense, "inbound_nodes": [{"args": [_t("in")], "kwargs": {"training": True}}]}
    with pytest.raises(ValueError, match=r"layer 'd' is called with training=True"):
        interop.from_keras(_write(tmp_path, [_IN, drop, add], ["add", 0, 0]), verify=False)
    other = {**dense, "inbound_nodes": [{"args": [_t("in")], "kwargs": {"constants": 1}}]}
    with pytest.raises(ValueError, match=r"layer 'd' is called with \['constants'\], which seqcore does not take"):
        interop.from_keras(_write(tmp_path, [_IN, other, add], ["add", 0, 0]), verify=False)
    legacy = {**dense, "inbound_nodes": [[["in", 0, 0, {}]]]}  # Keras 2's node format
    with pytest.raises(ValueError, match=r"not in Keras 3's format"):
        interop.from_keras(_write(tmp_path, [_IN, legacy, add], ["add", 0, 0]), verify=False)
    loop = {**dense, "inbound_nodes": [{"args": [_t("add")], "kwargs": {}}]}  # d reads add, add reads d
    with pytest.raises(ValueError, match=r"cannot connect the calls of \['add', 'd'\]"):
        interop.from_keras(_write(tmp_path, [_IN, loop, add], ["add", 0, 0]), verify=False)


def test_graph_export_refusals() -> None:
    a = seqcore.Input((5, 3), name="a")
    w = L.Dense(3, name="d")
    y = w(a)
    y = ops.exp(ops.getitem(y, (slice(None), -1)))  # getitem has no keras.ops mapping here
    m = seqcore.Model(a, y)
    with pytest.raises(ValueError, match=r"keras_config: ops.getitem \('getitem\w*'\) has no keras.ops counterpart"):
        interop.keras_config(m)
    with pytest.raises(TypeError, match=r"keras_config: expected a seqcore.Sequential or a Functional model"):
        interop.keras_config(L.Dense(2))  # type: ignore[arg-type]


# ----- with Keras -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("keras")


@needs_h5py
@pytest.mark.parametrize("case", CASES)
def test_graph_keras_round_trips(case: str, tmp_path: Path, keras: Any) -> None:
    kmodel = keras.saving.load_model(GOLDEN / f"{case}.keras", compile=False)
    model = interop.from_keras(kmodel)  # a live Keras object, verified against it
    assert model.conversion_report.verified and model.conversion_report.max_abs_diff < 1e-5
    back = interop.to_keras(model)
    assert back.conversion_report.verified and [lyr.name for lyr in back.layers] == [lyr.name for lyr in kmodel.layers]
    report = interop.save_keras(model, tmp_path / "x.keras")
    assert report.verified and report.max_abs_diff < 1e-5
    loaded = keras.saving.load_model(tmp_path / "x.keras", compile=False)
    x = _feed(_inputs(case))
    got = _as_dict(keras.tree.map_structure(keras.ops.convert_to_numpy, loaded(x)))
    for name, want in _outputs(case).items():
        np.testing.assert_allclose(got[name], want, rtol=1e-5, atol=2e-6)


def test_graph_of_ops_to_keras(keras: Any) -> None:
    report = interop.to_keras(_graph_of_ops()).conversion_report
    assert report.verified and report.max_abs_diff < 1e-5


def test_graph_verification_names_the_diverging_layer(keras: Any) -> None:
    kmodel = keras.saving.load_model(GOLDEN / "graph_branches.keras", compile=False)
    model = interop.from_keras(kmodel)
    model.get_layer("proj").kernel.value[0, 0] += 1.0  # break one layer after a correct conversion
    with pytest.raises(ValueError, match=r"from_keras: verification failed.*Layer 'proj' \(Dense\) is the first"):
        ik._verify_graph("from_keras", keras, kmodel, model, 1e-4, "keras", "seqcore")


def test_graph_explicit_mask_argument_is_refused(tmp_path: Path) -> None:
    dense = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 3}, "name": "d"}
    lstm = {"module": "keras.layers", "class_name": "LSTM", "config": {"name": "r", "units": 2}, "name": "r",
            "inbound_nodes": [{"args": [_t("in")], "kwargs": {"mask": _t("d")}}]}  # fmt: skip
    dense["inbound_nodes"] = [{"args": [_t("in")], "kwargs": {}}]
    add = {"module": "keras.layers", "class_name": "Concatenate", "config": {"name": "c"}, "name": "c",
           "inbound_nodes": [{"args": [[_t("r"), _t("d", 0)]], "kwargs": {}}]}  # fmt: skip
    with pytest.raises(ValueError, match=r"layer 'r' is called with an explicit mask= from 'd'"):
        interop.from_keras(_write(tmp_path, [_IN, dense, lstm, add], ["c", 0, 0]), verify=False)
