"""LayerNormalization, RMSNormalization and BatchNormalization: against an independent float64
NumPy reference over hypothesis-drawn shapes and options (forward, and the backward against
central differences of that reference), against Keras 3's numbers (goldens from
tests/golden/generate_layer_goldens.py: outputs, gradients, moving statistics, parameter counts and
a trained model), and their behaviour in models: training vs inference, frozen layers, masks,
refused steps leaving the moving statistics alone, configs, saving and the errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import seqcore as keras
from hypothesis import given, settings
from hypothesis import strategies as st
from seqcore import layers as L

HERE = Path(__file__).parent / "golden"
G = np.load(HERE / "layer_goldens.npz")
META = json.loads((HERE / "layer_goldens.json").read_text())


# ----- float64 references -------------------------------------------------------------------------
def ref_row_norm(x: np.ndarray, axes: list[int], g: Any, b: Any, eps: float, mode: str) -> np.ndarray:
    """mode: 'layer' (LayerNormalization), 'rms_scaling' (Keras's deprecated option), 'rms'."""
    x = x.astype(np.float64)
    shape = [x.shape[a] if a in axes else 1 for a in range(x.ndim)]
    if mode == "rms":
        ms = np.mean(x * x, axis=tuple(axes), keepdims=True)
        y = x / np.sqrt(ms + eps)
    else:
        m = np.mean(x, axis=tuple(axes), keepdims=True)
        v = np.mean((x - m) ** 2, axis=tuple(axes), keepdims=True)
        y = ((x - m) if mode == "layer" else x) / np.sqrt(v + eps)
    if g is not None:
        y = y * np.asarray(g, np.float64).reshape(shape)
    if b is not None:
        y = y + np.asarray(b, np.float64).reshape(shape)
    return y


def ref_batch_norm(x: np.ndarray, axis: int, g: Any, b: Any, eps: float, lengths: Any = None) -> np.ndarray:
    x = x.astype(np.float64)
    red = tuple(a for a in range(x.ndim) if a != axis % x.ndim)
    shape = [x.shape[a] if a == axis % x.ndim else 1 for a in range(x.ndim)]
    if lengths is None:
        m = x.mean(axis=red, keepdims=True)
        v = ((x - m) ** 2).mean(axis=red, keepdims=True)
    else:
        w = (np.arange(x.shape[1])[None, :] < np.asarray(lengths)[:, None]).astype(np.float64)[..., None]
        d = float(np.float32(w.sum()) + np.float32(1e-7))  # Keras adds its epsilon in float32
        m = (w * x).sum(axis=red, keepdims=True) / d
        v = (w * (x - m) ** 2).sum(axis=red, keepdims=True) / d
    y = (x - m) / np.sqrt(v + eps)
    if g is not None:
        y = y * np.asarray(g, np.float64).reshape(shape)
    if b is not None:
        y = y + np.asarray(b, np.float64).reshape(shape)
    return y


def numeric_grad(f: Any, x: np.ndarray, dy: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d sum(f(x) * dy) / dx by central differences, in float64."""
    x = x.astype(np.float64)
    out = np.zeros_like(x)
    flat, gflat = x.reshape(-1), out.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + h
        up = float(np.sum(f(x) * dy))
        flat[i] = keep - h
        down = float(np.sum(f(x) * dy))
        flat[i] = keep
        gflat[i] = (up - down) / (2 * h)
    return out


def run(layer: Any, x: np.ndarray, dy: np.ndarray, training: bool = True, **kw: Any) -> tuple[Any, ...]:
    for w in layer.weights:
        w.grad = None
    y, call = layer.apply(x, training=training, **kw)
    dx = layer.unapply(call, dy)
    return y, dx, [None if w.grad is None else w.grad.copy() for w in layer.trainable_weights]


def _layout(x: np.ndarray, how: str) -> np.ndarray:
    if how == "fortran":
        return np.asfortranarray(x)
    if how == "strided":
        wide = np.zeros((*x.shape[:-1], 2 * x.shape[-1]), x.dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    return x


# ----- the references, over drawn shapes ----------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 7), min_size=1, max_size=3).map(tuple),
    mode=st.sampled_from(["layer", "rms_scaling", "rms", "plain"]),
    pick=st.integers(0, 7),
    layout=st.sampled_from(["c", "fortran", "strided"]),
    seed=st.integers(0, 2**16),
)
def test_row_norms_match_the_float64_reference(shape: tuple[int, ...], mode: str, pick: int, layout: str,
                                               seed: int) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    full = (int(rng.integers(1, 4)), *shape)
    choices = [[-1]] + ([[1], list(range(1, len(full)))] if len(full) > 2 else [[1]])
    axes = choices[pick % len(choices)]
    eps = 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mode == "rms":
            layer = L.RMSNormalization(axis=axes, epsilon=eps)
        else:
            layer = L.LayerNormalization(axis=axes, epsilon=eps, rms_scaling=mode == "rms_scaling",
                                         center=mode != "plain", scale=mode != "plain")  # fmt: skip
    x = (rng.normal(size=full) * 3 + 2).astype(np.float32)
    layer(x)
    for w in layer.weights:
        w.value[...] = rng.normal(size=w.shape).astype(np.float32)
    g = layer.weights[0].value if layer.weights else None
    b = layer.weights[1].value if len(layer.weights) > 1 else None
    ref_mode = "layer" if mode == "plain" else mode
    resolved = sorted(a % len(full) for a in axes)

    def f(v: np.ndarray) -> np.ndarray:
        return ref_row_norm(v, resolved, g, b, eps, ref_mode)

    dy = rng.normal(size=full).astype(np.float32)
    y, dx, grads = run(layer, _layout(x, layout), dy)
    want = f(x)
    np.testing.assert_allclose(y, want, rtol=2e-5, atol=2e-5 * max(1.0, float(np.abs(want).max())))
    np.testing.assert_allclose(dx, numeric_grad(f, x, dy), rtol=1e-3, atol=1e-3)
    if g is not None:
        gref = numeric_grad(lambda gv: ref_row_norm(x, resolved, gv, b, eps, ref_mode), g, dy)
        np.testing.assert_allclose(grads[0], gref, rtol=1e-3, atol=1e-3)
    if b is not None:
        red = tuple(a for a in range(len(full)) if a not in resolved)
        np.testing.assert_allclose(grads[1], dy.astype(np.float64).sum(axis=red), rtol=1e-5, atol=1e-4)


@settings(max_examples=50, deadline=None)
@given(
    batch=st.integers(1, 5),
    steps=st.integers(1, 6),
    channels=st.integers(1, 9),
    masked=st.booleans(),
    center=st.booleans(),
    scale=st.booleans(),
    layout=st.sampled_from(["c", "fortran", "strided"]),
    seed=st.integers(0, 2**16),
)
def test_batch_norm_matches_the_float64_reference(batch: int, steps: int, channels: int, masked: bool, center: bool,
                                                  scale: bool, layout: str, seed: int) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(batch, steps, channels)) * 2 - 1).astype(np.float32)
    dy = rng.normal(size=x.shape).astype(np.float32)
    lengths = rng.integers(1, steps + 1, size=batch) if masked else None
    layer = L.BatchNormalization(center=center, scale=scale, momentum=0.5)
    layer(x)
    for w in layer.trainable_weights:
        w.value[...] = rng.normal(size=w.shape).astype(np.float32)
    g = None if layer.gamma is None else layer.gamma.value.copy()
    b = None if layer.beta is None else layer.beta.value.copy()
    kw = {} if lengths is None else {"lengths": lengths}

    def f(v: np.ndarray) -> np.ndarray:
        return ref_batch_norm(v, -1, g, b, 1e-3, lengths)

    y, dx, grads = run(layer, _layout(x, layout), dy, **kw)
    np.testing.assert_allclose(y, f(x), rtol=1e-4, atol=1e-4)
    # With one or two valid steps the variance is tiny, r = 1/sqrt(var + eps) is large and the masked
    # rows (normalized with it) are far out: the float32 rounding of the mean then moves dx by a
    # few 1e-4 of its largest entry (Keras's float32 gradients too). The tolerance scales with it.
    want_dx = numeric_grad(f, x, dy)
    np.testing.assert_allclose(dx, want_dx, rtol=2e-3, atol=1e-3 * max(2.0, float(np.abs(want_dx).max())))
    # the moving statistics moved halfway to the batch's (momentum 0.5)
    w = np.ones(x.shape[:2]) if lengths is None else (np.arange(steps)[None] < lengths[:, None])
    xm = x.astype(np.float64)[w.astype(bool)]
    np.testing.assert_allclose(layer.moving_mean.value, 0.5 * xm.mean(0), rtol=1e-4, atol=1e-5)
    # inference uses the moving statistics
    out = layer(x)
    mm, mv = layer.moving_mean.value.astype(np.float64), layer.moving_variance.value.astype(np.float64)
    want = (x - mm) / np.sqrt(mv + 1e-3) * (1 if g is None else g) + (0 if b is None else b)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_size_zero_and_one() -> None:
    ln = L.LayerNormalization()
    x = np.zeros((0, 4, 3), np.float32)
    assert ln(x).shape == (0, 4, 3)
    y = L.LayerNormalization()(np.full((2, 3, 1), 5.0, np.float32))  # one value per row: normalized to 0
    np.testing.assert_array_equal(y, np.zeros((2, 3, 1), np.float32))
    bn = L.BatchNormalization()
    one = np.array([[3.0, -1.0]], np.float32)
    np.testing.assert_allclose(bn(one, training=True), np.zeros((1, 2)), atol=1e-6)  # batch of one: x - mean = 0


# ----- Keras goldens (the single-layer cases are in tests/test_layer_goldens.py) -------------------------
def _model() -> Any:
    return keras.Sequential(
        [
            keras.Input((10, 3)),
            L.Conv1D(4, 3, padding="same"),
            L.BatchNormalization(momentum=0.9),
            L.LayerNormalization(),
            L.LSTM(5),
            L.Dense(2),
        ]
    )


def test_model_trains_as_keras_does() -> None:
    model = _model()
    n = len(model.get_weights())
    model.set_weights([G[f"model__w{i}"] for i in range(n)])
    assert model.count_params() == META["model"]["total"]
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == META["model"]["trainable"]
    model.compile(keras.optimizers.SGD(0.05), "mse")
    losses = [float(model.train_on_batch(G["model__x"], G["model__y"])) for _ in range(3)]
    np.testing.assert_allclose(losses, G["model__loss"], rtol=1e-5)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, G[f"model__after{i}"], rtol=1e-4, atol=1e-5, err_msg=f"weight {i}")
    np.testing.assert_allclose(model.predict_on_batch(G["model__x"]), G["model__pred"], rtol=1e-4, atol=1e-5)
    text = model.summary(print_fn=lambda s: None)
    assert "Non-trainable params: 8 (32.00 B)" in text


# ----- in models -------------------------------------------------------------------------------------
def test_frozen_batch_norm_runs_in_inference_mode_and_gets_no_gradient() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5, 3)).astype(np.float32)
    bn = L.BatchNormalization()
    bn(x)
    bn.moving_mean.value[...] = [0.5, -0.5, 1.0]
    bn.trainable = False
    before = [w.copy() for w in bn.get_weights()]
    y, dx, grads = run(bn, x, np.ones_like(x))
    np.testing.assert_allclose(y, bn(x), rtol=0, atol=0)  # training=True behaves as inference
    for a, b in zip(before, bn.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(dx, np.ones_like(x) / np.sqrt(1 + 1e-3), rtol=1e-6)


def test_a_refused_step_leaves_the_moving_statistics_alone() -> None:
    m = keras.Sequential([keras.Input((4,)), L.BatchNormalization(), L.Dense(1)])
    m.compile("sgd", "mse")
    x = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    before = [w.copy() for w in m.get_weights()]
    with pytest.raises(FloatingPointError, match="left as they were"):
        m.train_on_batch(x, np.full((6, 1), np.nan, np.float32))
    for a, b in zip(before, m.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    m.train_on_batch(x, np.zeros((6, 1), np.float32))
    assert not np.array_equal(m.layers[0].moving_mean.value, before[2])


def test_masked_steps_are_excluded_from_the_statistics_in_a_model() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 6, 2)).astype(np.float32)
    x[0, 4:] = 0.0
    x[2, 2:] = 0.0
    m = keras.Sequential([keras.Input((6, 2)), L.Masking(0.0), L.BatchNormalization(momentum=0.0), L.LSTM(3)])
    m.compile("sgd", "mse")
    m.train_on_batch(x, np.zeros((3, 3), np.float32))
    valid = x[[0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2], [0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 0, 1]]
    np.testing.assert_allclose(m.layers[1].moving_mean.value, valid.mean(0) * (12 / (12 + 1e-7)), rtol=1e-5)


def test_functional_and_saving_round_trip(tmp_path: Path) -> None:
    inp = keras.Input((7, 4))
    h = L.BatchNormalization(name="bn")(inp)
    h = L.LayerNormalization(axis=[1, 2], name="ln")(L.Add()([h, inp]))
    out = L.Dense(1)(L.RMSNormalization(name="rms")(L.LSTM(3)(h)))
    model = keras.Model(inp, out)
    model.compile("adam", "mse")
    x = np.random.default_rng(3).normal(size=(5, 7, 4)).astype(np.float32)
    model.fit(x, np.zeros((5, 1), np.float32), epochs=2, verbose=0)
    path = tmp_path / "m.seqcore"
    model.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert again.get_layer("ln").get_config()["axis"] == [1, 2]
    cfg = model.get_layer("bn").get_config()
    assert {k: cfg[k] for k in ("axis", "momentum", "epsilon", "center", "scale", "renorm")} == {
        "axis": -1, "momentum": 0.99, "epsilon": 1e-3, "center": True, "scale": True, "renorm": False}  # fmt: skip
    clone = L.BatchNormalization.from_config(cfg)
    assert clone.momentum == 0.99 and clone.name == "bn"


def test_errors_name_the_layer_and_the_fix() -> None:
    with pytest.raises(
        ValueError, match=r"LayerNormalization 'ln': axis 3 is out of bounds for input shape \(None, 4, 5\)"
    ):
        L.LayerNormalization(axis=3, name="ln")(keras.Input((4, 5)))
    with pytest.raises(ValueError, match=r"axis 0 is the batch axis"):
        L.LayerNormalization(axis=0)(keras.Input((4, 5)))
    with pytest.raises(TypeError, match=r"axis must be an int or a list/tuple of ints"):
        L.LayerNormalization(axis="last")
    with pytest.raises(ValueError, match=r"normalized axes \[-1\] must have known sizes"):
        L.LayerNormalization()(keras.Input((4, None)))
    with pytest.raises(ValueError, match=r"renorm=True .* not supported by seqcore yet"):
        L.BatchNormalization(renorm=True)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\]"):
        L.BatchNormalization(momentum=1.5)
    bn = L.BatchNormalization(name="bn")
    bn(np.zeros((2, 3), np.float32))
    with pytest.raises(
        ValueError, match=r"BatchNormalization 'bn': built for input shape \(None, 3\); received \(2, 4\)"
    ):
        bn(np.zeros((2, 4), np.float32))
    bn1 = L.BatchNormalization(axis=1, name="bn1")
    x = np.zeros((2, 3, 4), np.float32)
    bn1(x)
    with pytest.raises(ValueError, match=r"'bn1': a mask .* axis=-1 only"):
        bn1.apply(x, training=True, lengths=np.array([3, 1]))
    with pytest.warns(UserWarning, match="rms_scaling=True.*deprecated"):
        L.LayerNormalization(rms_scaling=True)


def test_truncated_bptt_takes_a_per_step_layer_norm_and_refuses_batch_norm() -> None:
    x = np.random.default_rng(4).normal(size=(4, 12, 3)).astype(np.float32)
    y = np.zeros((4, 12, 2), np.float32)
    ok = keras.Sequential([keras.Input((12, 3)), L.LayerNormalization(), L.LSTM(2, return_sequences=True)])
    ok.compile("sgd", "mse")
    ok.fit(x, y, tbptt_steps=4, epochs=1, verbose=0)
    bad = keras.Sequential([keras.Input((12, 3)), L.BatchNormalization(name="bn"), L.LSTM(2, return_sequences=True)])
    bad.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"'bn' \(BatchNormalization\).*statistics over every time step"):
        bad.fit(x, y, tbptt_steps=4, epochs=1, verbose=0)


def ref_group_norm(x: np.ndarray, groups: int, g: Any, b: Any, eps: float) -> np.ndarray:
    x = x.astype(np.float64)
    c = x.shape[-1]
    xg = x.reshape(*x.shape[:-1], groups, c // groups)
    axes = tuple(i for i in range(1, xg.ndim) if i != xg.ndim - 2)
    m = xg.mean(axis=axes, keepdims=True)
    v = ((xg - m) ** 2).mean(axis=axes, keepdims=True)
    y = ((xg - m) / np.sqrt(v + eps)).reshape(x.shape)
    return y * (1 if g is None else g) + (0 if b is None else b)


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 3),
    steps=st.integers(1, 5),
    groups=st.integers(1, 4),
    per_group=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_group_and_unit_norm_match_the_float64_reference(batch: int, steps: int, groups: int, per_group: int,
                                                         seed: int) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(batch, steps, groups * per_group)) * 2 + 0.5).astype(np.float32)
    dy = rng.normal(size=x.shape).astype(np.float32)
    layer = L.GroupNormalization(groups=groups)
    layer(x)
    for w in layer.weights:
        w.value[...] = rng.normal(size=w.shape).astype(np.float32)
    g, b = layer.gamma.value.copy(), layer.beta.value.copy()

    def f(v: np.ndarray) -> np.ndarray:
        return ref_group_norm(v, groups, g, b, 1e-3)

    y, dx, grads = run(layer, x, dy)
    np.testing.assert_allclose(y, f(x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, numeric_grad(f, x, dy), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(grads[0], numeric_grad(lambda gv: ref_group_norm(x, groups, gv, b, 1e-3), g, dy),
                               rtol=1e-3, atol=1e-3)  # fmt: skip
    unit = L.UnitNormalization(axis=[1, 2])

    def fu(v: np.ndarray) -> np.ndarray:
        return v / np.sqrt((v * v).sum(axis=(1, 2), keepdims=True))

    y, dx, _ = run(unit, x, dy)
    np.testing.assert_allclose(y, fu(x.astype(np.float64)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, numeric_grad(fu, x, dy), rtol=1e-3, atol=1e-3)


def test_group_norm_errors() -> None:
    with pytest.raises(
        ValueError, match=r"GroupNormalization 'gn': the 6 channels cannot be split into 4 equal groups"
    ):
        L.GroupNormalization(groups=4, name="gn")(keras.Input((3, 6)))
    with pytest.raises(ValueError, match=r"groups must be a positive int, or -1"):
        L.GroupNormalization(groups=0)
