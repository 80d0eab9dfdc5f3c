"""Weight constraints (seqcore.constraints): Keras 3's MaxNorm, MinMaxNorm, NonNeg and UnitNorm, applied
by the optimizer to each weight right after its update.

Checked against an independent float64 NumPy formula (hypothesis-drawn shapes and axes, zero-norm
columns), against weights Keras 3.15.1 reached after training with constraints (numbers pasted below
with the script that generated them, so Keras is not needed), and for when they apply (after every
apply call, accumulation-only ones included as in Keras; never on frozen weights), config and file round
trips, error messages and Keras interop."""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import seqcore as keras
from hypothesis import given, settings
from hypothesis import strategies as st
from seqcore import constraints, interop
from seqcore.interop import keras as ik

L = keras.layers
C = constraints
EPS = 1e-7  # Keras's backend.epsilon()


# ----- the formulas, against float64 NumPy ---------------------------------------------------------
def ref_norms(w: np.ndarray, axis: Any) -> np.ndarray:
    ax = tuple(axis) if isinstance(axis, list) else axis
    return np.sqrt(np.sum(np.square(w.astype(np.float64)), axis=ax, keepdims=True))


def reference(c: Any, w: np.ndarray) -> np.ndarray:
    """Keras's formulas (keras/src/constraints/constraints.py) written out in float64."""
    w64 = w.astype(np.float64)
    if isinstance(c, C.NonNeg):
        return np.where(w64 > 0, w64, 0.0)
    n = ref_norms(w, c.axis)
    if isinstance(c, C.MaxNorm):
        return w64 * (np.minimum(n, c.max_value) / (EPS + n))
    if isinstance(c, C.MinMaxNorm):
        desired = c.rate * np.minimum(np.maximum(n, c.min_value), c.max_value) + (1 - c.rate) * n
        return w64 * (desired / (EPS + n))
    assert isinstance(c, C.UnitNorm)
    return w64 / (EPS + n)


def check(c: Any, w: np.ndarray) -> np.ndarray:
    out = c(w)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == w.shape
    ref = reference(c, w)
    scale = max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
    np.testing.assert_allclose(out, ref, rtol=2e-6, atol=2e-7 * scale)
    return out


def all_constraints(axis: Any) -> list[Any]:
    return [
        C.MaxNorm(0.7, axis=axis),
        C.MaxNorm(axis=axis),
        C.MinMaxNorm(0.4, 1.1, rate=1.0, axis=axis),
        C.MinMaxNorm(0.9, 2.5, rate=0.3, axis=axis),
        C.UnitNorm(axis=axis),
        C.NonNeg(),
    ]


@pytest.mark.parametrize(
    ("shape", "axis"),
    [
        ((5,), 0),  # a bias vector: one norm over the whole vector
        ((5,), -1),
        ((4, 3), 0),  # Dense kernel: the incoming weights of each unit
        ((4, 3), 1),
        ((4, 3), [0, 1]),
        ((3, 2, 4), 0),  # Conv1D kernel (kernel_size, in, filters): Keras's default norm is over positions only
        ((3, 2, 4), [0, 1]),  # the whole filter
        ((3, 2, 4), [0, 1, 2]),
        ((2, 6), 0),  # GRU reset_after bias
        ((1, 1), 0),
    ],
)
def test_constraints_match_the_float64_formula(shape: tuple[int, ...], axis: Any) -> None:
    w = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    for c in all_constraints(axis):
        check(c, w)


def test_zero_norm_columns_stay_zero_thanks_to_epsilon() -> None:
    w = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    w[:, 1] = 0.0
    for c in all_constraints(0):
        out = check(c, w)
        assert np.all(out[:, 1] == 0.0) and np.isfinite(out).all()
    # A tiny column: eps dominates its norm, as in Keras (not rescaled up to norm 1 or min_value).
    w[:, 1] = 1e-9
    out = C.UnitNorm()(w)
    np.testing.assert_allclose(out[:, 1], 1e-9 / (EPS + 2e-9), rtol=1e-5)
    np.testing.assert_array_equal(C.MaxNorm()(np.zeros(3, np.float32)), np.zeros(3, np.float32))


def test_epsilon_shrinks_columns_already_inside_the_bounds() -> None:
    # Keras's formula divides by (eps + norm) even when the norm is within bounds: a column of norm
    # 0.5 under MaxNorm(2) is scaled by 0.5 / (0.5 + 1e-7), not left alone.
    w = np.array([[0.3], [0.4]], np.float32)
    out = C.MaxNorm(2.0)(w)
    assert not np.array_equal(out, w)
    np.testing.assert_array_equal(out, w * (np.float32(0.5) / (np.float32(EPS) + np.float32(0.5))))
    # UnitNorm leaves a small column visibly short of norm 1 (norm 0.005: by eps / 0.005 = 2e-5).
    u = C.UnitNorm()(np.array([[0.003], [0.004]], np.float32))
    assert float(np.linalg.norm(u)) == pytest.approx(0.005 / (0.005 + EPS), rel=1e-6) and np.linalg.norm(u) < 1 - 1e-5


def test_nonneg_and_what_the_constraints_return() -> None:
    w = np.array([-2.0, -0.0, 0.0, 1.5, -1e-30], np.float32)
    out = C.NonNeg()(w)
    np.testing.assert_array_equal(out, [0.0, 0.0, 0.0, 1.5, 0.0])
    assert out is not w and w[0] == -2.0  # a new array; the input is not modified
    assert C.Constraint()(w) is w  # the base class is the identity, as Keras's


@st.composite
def weight_and_axis(draw: Any) -> tuple[np.ndarray, Any]:
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=3)))
    nd = len(shape)
    axis = draw(
        st.one_of(
            st.integers(-nd, nd - 1),
            st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True),
        )
    )
    g = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = (g.normal(size=shape) * draw(st.sampled_from([1e-3, 0.1, 1.0, 30.0]))).astype(np.float32)
    if draw(st.booleans()):  # some zero entries, possibly whole zero-norm slices
        w[g.random(shape) < 0.4] = 0.0
    return w, axis


@settings(max_examples=60, deadline=None)
@given(
    wa=weight_and_axis(),
    bounds=st.tuples(st.floats(0.0, 3.0), st.floats(0.0, 3.0)).map(sorted),
    rate=st.floats(0.0, 1.0),
)
def test_constraints_match_the_formula_on_drawn_shapes(
    wa: tuple[np.ndarray, Any], bounds: list[float], rate: float
) -> None:
    w, axis = wa
    lo, hi = bounds
    for c in (C.MaxNorm(hi, axis), C.MinMaxNorm(lo, hi, rate, axis), C.UnitNorm(axis), C.NonNeg()):
        check(c, w)


# ----- Keras goldens -------------------------------------------------------------------------------
# Generated once with Keras 3.15.1 (TensorFlow backend) by this script; the weights after two SGD
# steps are pasted below. test_keras_goldens replays it with seqcore (same data, same start weights).
#
#   import os
#   os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
#   import keras
#   import numpy as np
#
#   def data(seed, x_shape, y_shape):
#       g = np.random.default_rng(seed)
#       return g.normal(size=x_shape).astype("float32"), g.normal(size=y_shape).astype("float32")
#
#   def weights(seed, shapes):
#       g = np.random.default_rng(seed)
#       return [g.normal(scale=0.6, size=s).astype("float32") for s in shapes]
#
#   def run(name, layer, in_shape, x_shape, y_shape):
#       model = keras.Sequential([keras.Input(in_shape), layer])
#       model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
#       model.set_weights(weights(1, [w.shape for w in model.get_weights()]))
#       x, y = data(2, x_shape, y_shape)
#       for _ in range(2):
#           model.train_on_batch(x, y)
#       fmt = lambda a: "[" + ", ".join(np.format_float_positional(v, unique=True) for v in a.ravel()) + "]"
#       print(f"    {name!r}: [")
#       for w in model.get_weights():
#           print(f"        {fmt(w)},")
#       print("    ],")
#
#   C = keras.constraints
#   print("KERAS_GOLDENS = {")
#   run("dense", keras.layers.Dense(3, kernel_constraint=C.max_norm(0.5), bias_constraint=C.non_neg()),
#       (4,), (5, 4), (5, 3))
#   run("lstm", keras.layers.LSTM(2, recurrent_constraint=C.unit_norm()), (3, 2), (4, 3, 2), (4, 2))
#   run("conv1d", keras.layers.Conv1D(2, 3, kernel_constraint=C.min_max_norm(0.5, 0.8, rate=0.7, axis=[0, 1])),
#       (6, 2), (3, 6, 2), (3, 4, 2))
#   print("}")
# fmt: off
KERAS_GOLDENS = {
    "dense": [
        [0.1803013, 0.24255842, 0.20314986, -0.43561456, 0.29875395, 0.25442132, -0.16165443, 0.22171418, 0.16874863, 0.03998974, -0.055248145, 0.23593831],  # noqa: E501
        [0.030556101, 0., 0.0027623232],
    ],
    "lstm": [
        [0.20900917, 0.49234766, 0.19561611, -0.7855681, 0.5427465, 0.28600904, -0.32727063, 0.34890386, 0.21848688, 0.17779459, 0.017889533, 0.32194936, -0.43020284, -0.08096558, -0.29105607, 0.33928072],  # noqa: E501
        [0.014685177, -0.15336694, -0.9762204, -0.5212976, 0.022212073, -0.77901274, 0.520618, 0.6675298, -0.99989206, -0.9881692, -0.21677974, -0.8533749, 0.9997532, 0.6270079, 0.8537896, -0.74458295],  # noqa: E501
        [-0.23197946, 1.2257832, 0.38469872, 0.3978948, -0.30765253, -0.98399407, 0.093395546, 0.072976105],
    ],
    "conv1d": [
        [0.16113944, 0.45496652, 0.14140838, -0.5030491, 0.51787615, 0.20494199, -0.2616488, 0.14100964, 0.23963067, 0.10358134, 0.05165266, 0.13666092],  # noqa: E501
        [-0.45406285, -0.09018736],
    ],
}
# fmt: on


def golden_case(name: str, with_constraints: bool = True) -> tuple[Any, np.ndarray, np.ndarray]:
    """The generator's model (seqcore twin), start weights and data."""
    k: dict[str, Any]
    if name == "dense":
        k = {"kernel_constraint": C.max_norm(0.5), "bias_constraint": C.non_neg()}
        layer, in_shape, x_shape, y_shape = L.Dense(3, **(k if with_constraints else {})), (4,), (5, 4), (5, 3)
    elif name == "lstm":
        k = {"recurrent_constraint": C.unit_norm()}
        layer, in_shape, x_shape, y_shape = L.LSTM(2, **(k if with_constraints else {})), (3, 2), (4, 3, 2), (4, 2)
    else:
        k = {"kernel_constraint": C.min_max_norm(0.5, 0.8, rate=0.7, axis=[0, 1])}
        layer = L.Conv1D(2, 3, **(k if with_constraints else {}))
        in_shape, x_shape, y_shape = (6, 2), (3, 6, 2), (3, 4, 2)
    model = keras.Sequential([keras.Input(in_shape), layer])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    g = np.random.default_rng(1)
    model.set_weights([g.normal(scale=0.6, size=w.shape).astype("float32") for w in model.get_weights()])
    g = np.random.default_rng(2)
    return model, g.normal(size=x_shape).astype("float32"), g.normal(size=y_shape).astype("float32")


@pytest.mark.parametrize("name", sorted(KERAS_GOLDENS))
def test_keras_goldens(name: str) -> None:
    model, x, y = golden_case(name)
    free, _, _ = golden_case(name, with_constraints=False)
    for _ in range(2):
        model.train_on_batch(x, y)
        free.train_on_batch(x, y)
    got = model.get_weights()
    for w, ref in zip(got, KERAS_GOLDENS[name], strict=True):
        np.testing.assert_allclose(w.ravel(), np.array(ref, np.float32), rtol=0, atol=1e-6)
    # The constraints changed the result (the goldens would catch them being ignored).
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(got, free.get_weights(), strict=True)) > 1e-3


# ----- when constraints apply ----------------------------------------------------------------------
class Recorder(C.Constraint):
    """Records each call (a copy of the weight it was given) and returns NonNeg's projection."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def __call__(self, w: np.ndarray) -> np.ndarray:
        self.seen.append(w.copy())
        return np.maximum(w, 0)


def dense_model(**kw: Any) -> tuple[Any, np.ndarray, np.ndarray]:
    model = keras.Sequential([keras.Input((4,)), L.Dense(3, name="d", **kw)])
    g = np.random.default_rng(3)
    model.set_weights([g.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model, g.normal(size=(6, 4)).astype(np.float32), g.normal(size=(6, 3)).astype(np.float32)


def test_applied_in_place_to_the_updated_weight_after_each_step() -> None:
    rec = Recorder()
    model, x, y = dense_model(kernel_constraint=rec)
    kernel = model.layers[0].kernel
    assert kernel.constraint is rec and model.layers[0].bias.constraint is None
    arr = kernel.value
    assert (arr < 0).any()  # not applied at creation or by set_weights, as in Keras
    model.compile(keras.optimizers.SGD(0.1), "mse")
    for step in range(1, 4):
        before = kernel.value.copy()
        model.train_on_batch(x, y)
        assert len(rec.seen) == step
        assert not np.array_equal(rec.seen[-1], before)  # it received the updated weight
        np.testing.assert_array_equal(kernel.value, np.maximum(rec.seen[-1], 0))
    assert kernel.value is arr and arr.flags.c_contiguous and arr.dtype == np.float32  # same array, in place
    assert (model.layers[0].bias.value < 0).any()  # the unconstrained bias is left alone


def test_applied_on_accumulation_only_steps_as_keras_does() -> None:
    # Keras 3.15 projects every variable of each apply call, also when the call only accumulates.
    rec = Recorder()
    model, x, y = dense_model(kernel_constraint=rec, bias_constraint=C.non_neg())
    model.compile(keras.optimizers.SGD(0.1, gradient_accumulation_steps=3), "mse")
    start = model.get_weights()
    assert (start[1] < 0).any()  # the bias constraint has something to do
    model.train_on_batch(x, y)  # accumulation only: no update, but the projection runs
    assert len(rec.seen) == 1
    np.testing.assert_array_equal(rec.seen[0], start[0])  # it saw the unchanged kernel
    np.testing.assert_array_equal(model.get_weights()[1], np.maximum(start[1], 0))
    model.train_on_batch(x, y)
    assert len(rec.seen) == 2
    model.train_on_batch(x, y)  # the real update
    assert len(rec.seen) == 3 and (model.layers[0].kernel.value >= 0).all() and (model.layers[0].bias.value >= 0).all()


def test_frozen_weights_are_never_constrained() -> None:
    frozen = L.Dense(3, kernel_constraint=C.non_neg(), bias_constraint=C.UnitNorm(), trainable=False, name="frozen")
    model = keras.Sequential([keras.Input((4,)), frozen, L.Dense(2, kernel_constraint=C.MaxNorm(0.1), name="top")])
    g = np.random.default_rng(4)
    model.set_weights([g.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    before = frozen.get_weights()
    model.compile("adam", "mse")
    model.fit(g.normal(size=(8, 4)), g.normal(size=(8, 2)), epochs=2, batch_size=4, verbose=0)
    for a, b in zip(frozen.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (before[0] < 0).any()  # the constraint would have changed it
    assert float(np.max(np.linalg.norm(model.layers[1].kernel.value, axis=0))) <= 0.1 + 1e-6


def test_every_weight_of_recurrent_and_conv_layers_gets_its_constraint() -> None:
    lstm = L.LSTM(3, kernel_constraint="max_norm", recurrent_constraint="unit_norm", bias_constraint="non_neg")
    gru = L.GRU(2, recurrent_constraint=C.UnitNorm(axis=1), bias_constraint=C.NonNeg())
    conv = L.Conv1D(4, 2, kernel_constraint=C.MinMaxNorm(0.5, 1.0, axis=[0, 1]), bias_constraint="non_neg")
    bi = L.Bidirectional(L.LSTM(2, return_sequences=True, recurrent_constraint=C.UnitNorm()))
    model = keras.Sequential(
        [keras.Input((6, 3)), conv, bi, L.TimeDistributed(L.Dense(2, kernel_constraint=C.MaxNorm(0.3))), lstm]
    )
    model.add(L.Reshape((3, 1)))
    model.add(gru)
    g = np.random.default_rng(5)
    model.set_weights([g.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    model.train_on_batch(g.normal(size=(4, 6, 3)).astype(np.float32), g.normal(size=(4, 2)).astype(np.float32))
    norms = lambda w, axis: np.sqrt(np.sum(np.square(w.astype(np.float64)), axis=axis))  # noqa: E731
    assert lstm.kernel.constraint == C.MaxNorm(2.0) and norms(lstm.kernel.value, 0).max() <= 2.0 + 1e-6
    np.testing.assert_allclose(norms(lstm.recurrent_kernel.value, 0), 1.0, atol=1e-6)
    assert (lstm.bias.value >= 0).all() and (gru.bias.value >= 0).all() and gru.bias.value.shape == (2, 6)
    np.testing.assert_allclose(norms(gru.recurrent_kernel.value, 1), 1.0, atol=1e-6)
    assert gru.kernel.constraint is None
    filt = norms(conv.kernel.value, (0, 1))
    assert ((filt >= 0.5 - 1e-6) & (filt <= 1.0 + 1e-6)).all() and (conv.bias.value >= 0).all()
    for sub in (bi.forward_layer, bi.backward_layer):
        assert isinstance(sub.recurrent_constraint, C.UnitNorm)
        np.testing.assert_allclose(norms(sub.recurrent_kernel.value, 0), 1.0, atol=1e-6)
    assert norms(model.layers[2].layer.kernel.value, 0).max() <= 0.3 + 1e-6


def test_a_constraint_returning_the_wrong_shape_is_named() -> None:
    model, x, y = dense_model(kernel_constraint=lambda w: w[:1])
    model.compile("sgd", "mse")
    with pytest.raises(
        ValueError, match=r"constraint .* of weight 'kernel' returned shape \(1, 3\); expected \(4, 3\)"
    ):
        model.train_on_batch(x, y)


# ----- identifiers, configs, saving ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        ("max_norm", C.MaxNorm(2.0, 0)),
        ("MaxNorm", C.MaxNorm()),
        ("min_max_norm", C.MinMaxNorm(0.0, 1.0, 1.0, 0)),
        ("MinMaxNorm", C.MinMaxNorm()),
        ("non_neg", C.NonNeg()),
        ("NonNeg", C.NonNeg()),
        ("unit_norm", C.UnitNorm()),
        ("UnitNorm", C.UnitNorm(0)),
        ({"class_name": "MaxNorm", "config": {"max_value": 3, "axis": [0, 1]}}, C.MaxNorm(3.0, [0, 1])),
        (
            {"module": "keras.constraints", "class_name": "UnitNorm", "config": {"axis": 1}, "registered_name": None},
            C.UnitNorm(1),
        ),
        ({"class_name": "non_neg"}, C.NonNeg()),
        (C.UnitNorm, C.UnitNorm()),
    ],
)
def test_get_resolves_keras_identifiers(identifier: Any, expected: Any) -> None:
    got = C.get(identifier)
    assert type(got) is type(expected) and got.get_config() == expected.get_config()


def test_get_passes_instances_callables_and_none_through() -> None:
    c = C.MaxNorm(1.0)
    assert C.get(c) is c and C.get(None) is None
    fn = np.abs
    assert C.get(fn) is fn
    assert C.max_norm is C.MaxNorm and C.non_neg is C.NonNeg and C.unit_norm is C.UnitNorm
    assert C.min_max_norm is C.MinMaxNorm
    assert keras.constraints is C


def test_serialize_round_trip_and_keras_config_keys() -> None:
    for c in (C.MaxNorm(0.5, [0, 1]), C.MinMaxNorm(0.1, 0.9, 0.5, 1), C.NonNeg(), C.UnitNorm(-1)):
        s = C.serialize(c)
        assert s == json.loads(json.dumps(s))  # JSON-ready
        assert C.deserialize(s) == c and type(c).from_config(c.get_config()) == c
    assert C.MaxNorm().get_config() == {"max_value": 2.0, "axis": 0}  # Keras's keys and defaults
    assert C.MinMaxNorm().get_config() == {"min_value": 0.0, "max_value": 1.0, "rate": 1.0, "axis": 0}
    assert C.UnitNorm().get_config() == {"axis": 0} and C.NonNeg().get_config() == {}
    assert C.serialize(None) is None
    custom = Recorder()
    assert C.serialize(custom) is custom  # kept for from_config in memory; save_model refuses it


@pytest.mark.parametrize("cls", ["Dense", "Conv1D", "LSTM", "GRU"])
def test_layer_config_round_trip(cls: str) -> None:
    kw: dict[str, Any] = {"kernel_constraint": C.MaxNorm(0.5, axis=[0, 1]), "bias_constraint": "non_neg"}
    if cls in ("LSTM", "GRU"):
        kw["recurrent_constraint"] = C.UnitNorm()
        kw["kernel_constraint"] = C.MinMaxNorm(0.2, 0.9, 0.5)
    layer = L.Conv1D(2, 3, **kw) if cls == "Conv1D" else getattr(L, cls)(3, **kw)
    cfg = layer.get_config()
    assert cfg["bias_constraint"] == {"class_name": "NonNeg", "config": {}}
    assert cfg["kernel_constraint"] == C.serialize(layer.kernel_constraint)
    again = type(layer).from_config(json.loads(json.dumps(cfg)))
    for key in ("kernel_constraint", "recurrent_constraint", "bias_constraint"):
        assert getattr(again, key, None) == getattr(layer, key, None)
    assert again.get_config() == cfg
    none_cfg = (L.Conv1D(2, 3) if cls == "Conv1D" else getattr(L, cls)(3)).get_config()
    assert none_cfg["kernel_constraint"] is None and none_cfg["bias_constraint"] is None


def test_bidirectional_backward_layer_carries_the_constraints() -> None:
    bi = L.Bidirectional(L.GRU(2, kernel_constraint=C.MaxNorm(1.5), recurrent_constraint="unit_norm"))
    assert bi.backward_layer.kernel_constraint == C.MaxNorm(1.5)
    assert isinstance(bi.backward_layer.recurrent_constraint, C.UnitNorm)
    custom = Recorder()
    bi = L.Bidirectional(L.LSTM(2, bias_constraint=custom))  # a custom one is passed through in memory
    assert bi.backward_layer.bias_constraint is custom
    again = L.Bidirectional.from_config(L.Bidirectional(L.LSTM(2, kernel_constraint="non_neg")).get_config())
    assert isinstance(again.forward_layer.kernel_constraint, C.NonNeg)
    assert isinstance(again.backward_layer.kernel_constraint, C.NonNeg)


def test_save_and_load_model_keep_the_constraints(tmp_path: Path) -> None:
    model = keras.Sequential(
        [
            keras.Input((6, 2)),
            L.Conv1D(3, 2, kernel_constraint=C.MinMaxNorm(0.3, 0.9, 0.5, axis=[0, 1]), bias_constraint="non_neg"),
            L.Bidirectional(L.LSTM(2, return_sequences=True, recurrent_constraint=C.UnitNorm())),
            L.TimeDistributed(L.Dense(2, kernel_constraint=C.MaxNorm(0.4, axis=1))),
            L.GRU(2, bias_constraint=C.NonNeg()),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "mse")
    g = np.random.default_rng(6)
    x, y = g.normal(size=(4, 6, 2)).astype(np.float32), g.normal(size=(4, 2)).astype(np.float32)
    model.train_on_batch(x, y)
    model.save(tmp_path / "m.seqcore")
    loaded = keras.load_model(tmp_path / "m.seqcore")
    assert loaded.get_config() == model.get_config()
    assert loaded.layers[0].kernel.constraint == C.MinMaxNorm(0.3, 0.9, 0.5, [0, 1])
    assert loaded.layers[1].backward_layer.recurrent_kernel.constraint == C.UnitNorm()
    assert loaded.layers[2].layer.kernel.constraint == C.MaxNorm(0.4, 1)
    assert loaded.layers[3].bias.constraint == C.NonNeg()
    for _ in range(2):  # training continues identically, constraints included
        assert loaded.train_on_batch(x, y) == model.train_on_batch(x, y)
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_custom_constraints_train_but_cannot_be_saved(tmp_path: Path) -> None:
    model, x, y = dense_model(kernel_constraint=Recorder())
    model.compile("sgd", "mse")
    model.train_on_batch(x, y)
    with pytest.raises(TypeError, match=r"cannot store Recorder .*custom callables cannot be saved"):
        model.save(tmp_path / "m.seqcore")


# ----- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: C.get("max_nrom"), r"Unknown constraint 'max_nrom'; expected one of \[.*'max_norm'.*'unit_norm'\]"),
        (lambda: C.get({"class_name": "Clip"}), r"Unknown constraint 'Clip'; expected one of"),
        (lambda: C.get({"config": {}}), r"A constraint config must be \{'class_name'"),
        (lambda: C.get(3), r"Could not interpret constraint identifier 3"),
        (lambda: C.get(int), r"Could not interpret constraint identifier <class 'int'>: not a Constraint class"),
        (lambda: C.deserialize({"class_name": "MaxNorm", "config": {"maxval": 1}}), r"MaxNorm: invalid config"),
        (lambda: C.MaxNorm(-1), r"^MaxNorm: max_value must be a number >= 0. Received: max_value=-1$"),
        (lambda: C.MaxNorm(float("nan")), r"MaxNorm: max_value must be a number >= 0. Received: max_value=nan"),
        (lambda: C.MaxNorm("2"), r"MaxNorm: max_value must be a number >= 0. Received: max_value='2'"),
        (lambda: C.MaxNorm(axis=1.0), r"^MaxNorm: axis must be an int or a non-empty list .*Received: axis=1.0$"),
        (
            lambda: C.MinMaxNorm(2.0, 1.0),
            r"^MinMaxNorm: min_value must be <= max_value. Received: min_value=2.0, max_value=1.0$",
        ),
        (
            lambda: C.MinMaxNorm(min_value=-0.5),
            r"MinMaxNorm: min_value must be a number >= 0. Received: min_value=-0.5",
        ),
        (lambda: C.MinMaxNorm(rate=1.5), r"^MinMaxNorm: rate must be a number in \[0, 1\]. Received: rate=1.5$"),
        (lambda: C.MinMaxNorm(rate=-0.1), r"MinMaxNorm: rate must be a number in \[0, 1\]. Received: rate=-0.1"),
        (lambda: C.MinMaxNorm(axis=[0, 0]), r"MinMaxNorm: axis must be .*distinct.*Received: axis=\[0, 0\]"),
        (lambda: C.UnitNorm(axis="0"), r"UnitNorm: axis must be an int .*Received: axis='0'"),
        (lambda: C.UnitNorm(axis=True), r"UnitNorm: axis must be an int .*Received: axis=True"),
        (lambda: C.UnitNorm(axis=[]), r"UnitNorm: axis must be an int .*Received: axis=\[\]"),
        (
            lambda: C.UnitNorm(axis=2)(np.ones((3, 4), np.float32)),
            r"UnitNorm: axis=2 does not fit a weight of shape \(3, 4\)",
        ),
        (lambda: L.Dense(2, kernel_constraint="maxnorm"), r"Unknown constraint 'maxnorm'"),
        (lambda: L.LSTM(2, recurrent_constraint=C.MaxNorm(-2)), r"MaxNorm: max_value must be a number >= 0"),
    ],
)
def test_error_messages(make: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


# ----- Keras interop -------------------------------------------------------------------------------
def constrained_model() -> Any:
    return keras.Sequential(
        [
            keras.Input((6, 2)),
            L.Conv1D(3, 2, kernel_constraint=C.MinMaxNorm(0.3, 0.9, 0.5, axis=[0, 1]), bias_constraint="non_neg"),
            L.Bidirectional(
                L.LSTM(2, return_sequences=True, recurrent_constraint=C.UnitNorm(), kernel_constraint="max_norm")
            ),
            L.GRU(2, bias_constraint=C.NonNeg()),
            L.Dense(1, kernel_constraint=C.MaxNorm(0.5, axis=1)),
        ]
    )


def constraint_configs(model: Any) -> list[Any]:
    out = []
    for layer in model.layers:
        for sub in (layer.forward_layer, layer.backward_layer) if isinstance(layer, L.Bidirectional) else (layer,):
            out.append({k: v for k, v in sub.get_config().items() if k.endswith("_constraint")})
    return out


def test_keras_config_carries_constraints_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("h5py")
    model = constrained_model()
    entries = ik.keras_config(model)["config"]["layers"]
    conv = entries[1]["config"]
    assert conv["kernel_constraint"] == {
        "module": "keras.constraints",
        "class_name": "MinMaxNorm",
        "config": {"min_value": 0.3, "max_value": 0.9, "rate": 0.5, "axis": [0, 1]},
        "registered_name": None,
    }
    assert (
        entries[3]["config"]["recurrent_constraint"] is None
        and entries[3]["config"]["bias_constraint"]["class_name"] == "NonNeg"
    )
    real = ik.optional_import
    monkeypatch.setattr(ik, "optional_import", lambda name: None if name == "keras" else real(name))
    interop.save_keras(model, tmp_path / "c.keras", verify=False)
    again = interop.from_keras(tmp_path / "c.keras", verify=False)
    assert constraint_configs(again) == constraint_configs(model)


def rewrite_config(src: Path, dst: Path, edit: Any) -> Path:
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(members["config.json"])
    edit(cfg)
    members["config.json"] = json.dumps(cfg).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    return dst


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (
            {"module": None, "class_name": "MyC", "config": {}, "registered_name": "MyC"},
            r"layer 'd' \(Dense\): kernel_constraint 'MyC' is not supported; seqcore converts only Keras's built-in "
            r"constraints \['MaxNorm', 'MinMaxNorm', 'NonNeg', 'UnitNorm'\]",
        ),
        (  # a custom class that happens to be called MaxNorm
            {"module": "my_pkg", "class_name": "MaxNorm", "config": {}, "registered_name": "my>MaxNorm"},
            r"'d' \(Dense\): kernel_constraint 'MaxNorm' is not supported",
        ),
        ({"class_name": "__lambda__", "config": {"value": ["xx", None, None]}}, r"kernel_constraint '__lambda__'"),
        ("clip", r"'d' \(Dense\): kernel_constraint 'clip' is not supported"),
        (
            {"module": "keras.constraints", "class_name": "MaxNorm", "config": {"max_value": -1, "axis": 0}},
            r"'d' \(Dense\): kernel_constraint: MaxNorm: max_value must be a number >= 0",
        ),
    ],
)
def test_from_keras_refuses_custom_constraints(tmp_path: Path, value: Any, match: str) -> None:
    pytest.importorskip("h5py")
    model = keras.Sequential([keras.Input((3,)), L.Dense(2, name="d")])
    interop.save_keras(model, tmp_path / "ok.keras", verify=False)

    def edit(cfg: dict[str, Any]) -> None:
        cfg["config"]["layers"][1]["config"]["kernel_constraint"] = value

    bad = rewrite_config(tmp_path / "ok.keras", tmp_path / "bad.keras", edit)
    with pytest.raises(ValueError, match=r"^from_keras: .*" + match):
        interop.from_keras(bad, verify=False)


def test_from_keras_accepts_names_in_hand_written_configs(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    model = keras.Sequential([keras.Input((3,)), L.Dense(2, name="d")])
    interop.save_keras(model, tmp_path / "ok.keras", verify=False)

    def edit(cfg: dict[str, Any]) -> None:
        cfg["config"]["layers"][1]["config"].update(
            kernel_constraint="unit_norm", bias_constraint={"class_name": "NonNeg"}
        )

    again = interop.from_keras(rewrite_config(tmp_path / "ok.keras", tmp_path / "h.keras", edit), verify=False)
    assert again.layers[0].kernel_constraint == C.UnitNorm() and again.layers[0].bias_constraint == C.NonNeg()


def test_to_keras_refuses_custom_constraints() -> None:
    model = keras.Sequential([keras.Input((3,)), L.Dense(2, name="d", bias_constraint=Recorder())])
    with pytest.raises(ValueError, match=r"layer 'd' \(Dense\): bias_constraint is a custom constraint \(Recorder"):
        ik.keras_config(model)
    model = keras.Sequential([keras.Input((3, 2)), L.LSTM(2, name="l", recurrent_constraint=np.tanh)])
    with pytest.raises(ValueError, match=r"layer 'l' \(LSTM\): recurrent_constraint is a custom constraint \(ufunc"):
        ik.keras_config(model)


@pytest.fixture(scope="module")
def keras3() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("keras")


def test_live_keras_model_with_constraints_round_trips_and_trains_alike(keras3: Any) -> None:
    K, KC = keras3.layers, keras3.constraints
    km = keras3.Sequential(
        [
            keras3.Input((6, 2)),
            K.Conv1D(3, 2, kernel_constraint=KC.MinMaxNorm(0.3, 0.9, 0.5, axis=[0, 1]), bias_constraint="non_neg"),
            K.Bidirectional(K.LSTM(2, return_sequences=True, recurrent_constraint=KC.UnitNorm())),
            K.GRU(2, kernel_constraint=KC.max_norm(0.8), bias_constraint=KC.NonNeg()),
            K.Dense(1, kernel_constraint=KC.MaxNorm(0.5, axis=1)),
        ]
    )
    g = np.random.default_rng(8)
    km.set_weights([g.normal(scale=0.5, size=w.shape).astype(np.float32) for w in km.get_weights()])
    sm = interop.from_keras(km)
    assert sm.conversion_report.max_abs_diff < 1e-5
    assert sm.layers[0].kernel_constraint == C.MinMaxNorm(0.3, 0.9, 0.5, [0, 1])
    assert sm.layers[0].bias_constraint == C.NonNeg()
    assert sm.layers[1].backward_layer.recurrent_constraint == C.UnitNorm()
    assert sm.layers[2].kernel_constraint == C.MaxNorm(0.8) and sm.layers[3].kernel_constraint == C.MaxNorm(0.5, 1)

    # Both train two SGD steps to the same weights (the constraints applied after each update).
    x, y = g.normal(size=(4, 6, 2)).astype(np.float32), g.normal(size=(4, 1)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km.compile(optimizer=keras3.optimizers.SGD(learning_rate=0.2), loss="mse")
        sm.compile(optimizer=keras.optimizers.SGD(learning_rate=0.2), loss="mse")
        for _ in range(2):
            km.train_on_batch(x, y)
            sm.train_on_batch(x, y)
    for a, b in zip(sm.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=2e-6)

    back = interop.to_keras(sm)
    assert back.conversion_report.max_abs_diff < 1e-5
    for kl, bl in zip(km.layers, back.layers, strict=True):
        kc, bc = kl.get_config(), bl.get_config()
        if isinstance(kl, K.Bidirectional):
            kc, bc = kc["layer"]["config"], bc["layer"]["config"]
        for key in ("kernel_constraint", "recurrent_constraint", "bias_constraint"):
            assert kc.get(key) == bc.get(key), (kl.name, key)
    c = back.layers[0].kernel_constraint
    assert isinstance(c, KC.MinMaxNorm) and c.axis == [0, 1] and c.rate == 0.5
    w = g.normal(size=(3, 2, 4)).astype(np.float32)
    np.testing.assert_array_equal(keras3.ops.convert_to_numpy(c(w)), sm.layers[0].kernel_constraint(w))


def test_keras_constraints_compute_what_ours_do(keras3: Any) -> None:
    """Bit-for-bit on float32 inputs (both compute in float32 with the same operations)."""
    KC = keras3.constraints
    g = np.random.default_rng(9)
    for shape, axes in (((5,), [0]), ((4, 3), [0, 1, [0, 1]]), ((3, 2, 4), [0, [0, 1], -1])):
        w = g.normal(size=shape).astype(np.float32)
        w[..., 0] = 0.0
        for ax in axes:
            pairs = [
                (KC.MaxNorm(0.7, ax), C.MaxNorm(0.7, ax)),
                (KC.MinMaxNorm(0.5, 1.2, 0.6, ax), C.MinMaxNorm(0.5, 1.2, 0.6, ax)),
                (KC.UnitNorm(ax), C.UnitNorm(ax)),
                (KC.NonNeg(), C.NonNeg()),
            ]
            for kc, sc in pairs:
                np.testing.assert_allclose(keras3.ops.convert_to_numpy(kc(w)), sc(w), rtol=0, atol=1e-7)
