"""`ops.activation` / `ops.activation_backward` against the float64 reference.

Accuracy targets (float32 kernels vs float64 math on the same float32 inputs):
- sigmoid, tanh: 1e-6 relative wherever the true value is a normal float32 (|v| >= ~1.2e-38);
  below that, float32 has no relative precision left and seqcore's exp saturates at e^-87 by design
  (math.rs), so an absolute 2 * tiny is allowed there.
- relu, linear: exact.
- softmax: 1e-6 relative plus the rounding of the float32 subtraction z - max(z) (relative error
  eps/2 * |z - max|, which no float32 softmax avoids) and of the row sum (eps * sqrt(width)).
- hard_sigmoid: 1e-7 absolute here; its relative accuracy near the lower knee is a known bug
  (test_hard_sigmoid_relative_accuracy_near_lower_knee).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from seqcore import ops, reference
from seqcore._seqcore import ACTIVATIONS

EPS32 = float(np.finfo(np.float32).eps)
TINY = float(np.finfo(np.float32).tiny)
ATOL_TINY = 2 * TINY
ELEMENTWISE = ("linear", "relu", "sigmoid", "hard_sigmoid", "tanh")
NAN_PROPAGATING = ("relu", "sigmoid", "hard_sigmoid", "tanh", "linear")


def ref_act(z, act):
    with np.errstate(over="ignore", invalid="ignore"):
        return reference.activation(np.asarray(z, np.float32), act)


def forward_tol(z, r, act):
    z = np.asarray(z, np.float64)
    r = np.abs(r)
    if act in ("linear", "relu"):
        return np.zeros_like(r)
    if act in ("sigmoid", "tanh"):
        return 1e-6 * r + ATOL_TINY
    if act == "hard_sigmoid":
        return 1e-6 * r + 1e-7
    width = z.shape[-1] if z.ndim else 1
    dist = (z.max(axis=-1, keepdims=True) - z) if z.ndim else np.zeros_like(z)
    return (1e-6 + EPS32 * math.sqrt(width) + EPS32 * dist) * r + ATOL_TINY


def assert_within(got, want, tol, what):
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    with np.errstate(invalid="ignore"):  # inf - inf
        err = np.where(got == want, 0.0, np.abs(got - want))
    bad = ~(err <= tol)  # NaN counts as bad
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err - tol, -np.inf)), err.shape)
        raise AssertionError(
            f"{what}: {bad.sum()} of {err.size} off; worst at {i}: got {got[i]!r}, want {want[i]!r}, "
            f"tolerance {np.broadcast_to(tol, err.shape)[i]!r}"
        )


def away_from_kinks(z, act):
    """Moves hard_sigmoid inputs off +-3, where the float32 output (from which the derivative is
    taken) may round onto the clip boundary; relu decides exactly (y > 0 iff z > 0)."""
    if act == "hard_sigmoid":
        near = np.abs(np.abs(z) - 3) < 1e-3
        z = np.where(near, z * np.float32(0.99), z).astype(np.float32)
    return z


# --- layouts ---------------------------------------------------------------------------------------


def nan_padded_view(a, axis):
    shape = list(a.shape)
    shape[axis] *= 2
    base = np.full(shape, np.nan, dtype=a.dtype)
    idx = [slice(None)] * a.ndim
    idx[axis] = slice(None, None, 2)
    base[tuple(idx)] = a
    return base[tuple(idx)]


LAYOUTS = {
    "c_float32": lambda a: a,
    "fortran": np.asfortranarray,
    "strided_first_axis": lambda a: nan_padded_view(a, 0),
    "strided_last_axis": lambda a: nan_padded_view(a, a.ndim - 1),
    "negative_stride": lambda a: np.ascontiguousarray(a[::-1])[::-1],
    "float64": lambda a: a.astype(np.float64),
    "int64": lambda a: a.astype(np.int64),  # data is integer-valued for this layout
    "list": lambda a: a.tolist(),
}

dim = st.one_of(st.sampled_from([0, 1]), st.integers(2, 9))
last_dim = st.one_of(st.just(1), st.integers(2, 70))


@st.composite
def act_shapes(draw):
    """Rank 0..4; the last axis is never 0 (test_zero_width_last_axis covers that known bug)."""
    rank = draw(st.integers(0, 4))
    if rank == 0:
        return ()
    return (*draw(st.lists(dim, min_size=rank - 1, max_size=rank - 1)), draw(last_dim))


def make_z(shape, scale, seed, integer):
    rng = np.random.default_rng(seed)
    # np.asarray: for shape () NumPy's generators return a scalar, not a 0-d array
    if integer:
        return np.asarray(rng.integers(-6, 7, shape), dtype=np.float32)
    return np.asarray(rng.standard_normal(shape) * scale, dtype=np.float32)


@pytest.mark.parametrize("act", ACTIVATIONS)
@settings(max_examples=30, deadline=None)
@given(
    shape=act_shapes(),
    scale=st.sampled_from([0.01, 1.0, 4.0, 30.0, 120.0]),
    seed=st.integers(0, 2**32 - 1),
    layout=st.sampled_from(sorted(LAYOUTS)),
)
def test_forward_matches_reference(act, shape, scale, seed, layout):
    # 0-d inputs that are not float32 arrays come back 1-D: test_zero_d_shape_is_kept (known bug).
    assume(shape != () or layout == "c_float32")
    assume(layout != "list" or math.prod(shape) > 0)  # a nested list cannot hold a 0 in any axis
    z = make_z(shape, scale, seed, integer=layout == "int64")
    z0 = z.copy()

    y = ops.activation(z, act)

    assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.shape == z.shape
    r = ref_act(z, act)
    assert_within(y, r, forward_tol(z, r, act), f"{act} {shape} scale {scale}")
    np.testing.assert_array_equal(z, z0)  # input untouched

    yv = ops.activation(LAYOUTS[layout](z), act)
    assert yv.dtype == np.float32 and yv.shape == y.shape
    np.testing.assert_array_equal(yv, y, err_msg=f"layout {layout}")


def backward_tol(z, dy, r, act):
    """Tolerance for dz = dy * f'(z). The kernel takes f' from its float32 output y, whose rounding
    (|dy| * eps-level absolute) is all it may lose: e.g. sigmoid'(20) ~ 2e-9 is 0 once y rounds to 1."""
    dy_abs = np.abs(np.asarray(dy, np.float64))
    if act in ("linear", "relu"):
        return np.zeros_like(r)
    if act in ("sigmoid", "hard_sigmoid", "tanh"):
        return 1e-6 * np.abs(r) + 4 * EPS32 * dy_abs
    y = ref_act(z, "softmax")
    row = dy_abs.max(axis=-1, keepdims=True) if dy_abs.ndim else dy_abs
    # y's own error (relative, plus the saturation floor ATOL_TINY) times |dy - <dy, y>|
    return (1e-5 * y + ATOL_TINY) * (dy_abs + 2 * row) + 1e-6 * np.abs(r) + ATOL_TINY


@pytest.mark.parametrize("act", ACTIVATIONS)
@settings(max_examples=30, deadline=None)
@given(
    shape=act_shapes(),
    scale=st.sampled_from([0.01, 1.0, 4.0, 30.0]),
    seed=st.integers(0, 2**32 - 1),
    layout=st.sampled_from(["fortran", "strided_last_axis", "float64", "negative_stride"]),
    which=st.sampled_from(["y", "dy"]),
)
def test_backward_matches_reference(act, shape, scale, seed, layout, which):
    assume(shape != ())  # see test_zero_d_shape_is_kept
    z = away_from_kinks(make_z(shape, scale, seed, integer=False), act)
    dy = np.asarray(np.random.default_rng(seed + 1).standard_normal(shape), dtype=np.float32)
    y = ops.activation(z, act)

    dz = ops.activation_backward(y, dy, act)

    assert dz.dtype == np.float32 and dz.shape == z.shape
    with np.errstate(over="ignore"):
        r = reference.activation_grad(z, dy, act)
    assert_within(dz, r, backward_tol(z, dy, r, act), f"{act}' {shape} scale {scale}")

    args = {"y": y, "dy": dy}
    args[which] = LAYOUTS[layout](args[which])
    np.testing.assert_array_equal(ops.activation_backward(args["y"], args["dy"], act), dz)


# --- wide sweeps and extreme inputs ---------------------------------------------------------------

SWEEP = np.concatenate(
    [
        np.linspace(-100, 100, 200_001, dtype=np.float32),
        np.geomspace(1e-30, 10, 1001, dtype=np.float32),
        -np.geomspace(1e-30, 10, 1001, dtype=np.float32),
        np.array([-1e30, -1000, -100, -88.5, -87.5, -50, -0.0, 0.0, 50, 87.5, 88.5, 100, 1000, 1e30], np.float32),
        np.array([np.inf, -np.inf], np.float32),
    ]
)


@pytest.mark.parametrize("act", ELEMENTWISE)
def test_wide_sweep_accuracy(act):
    y = ops.activation(SWEEP, act)
    r = ref_act(SWEEP, act)
    assert_within(y, r, forward_tol(SWEEP, r, act), f"{act} sweep")


@pytest.mark.parametrize("act", ["sigmoid", "tanh"])
def test_large_inputs_saturate_accurately(act):
    z = np.array([-100, -50, -20, -10, 10, 20, 50, 100], np.float32)
    y = ops.activation(z, act).astype(np.float64)
    r = ref_act(z, act)
    np.testing.assert_allclose(y, r, rtol=1e-6, atol=ATOL_TINY)
    assert np.all(np.isfinite(y))
    lo, hi = (0.0, 1.0) if act == "sigmoid" else (-1.0, 1.0)
    assert np.all((y >= lo) & (y <= hi))
    np.testing.assert_array_equal(np.diff(y) >= 0, True)  # monotone, even when saturated


@pytest.mark.parametrize("width", [1, 2, 3, 7, 16, 17, 64, 301])
def test_softmax_rows_sum_to_one_and_match_reference(width):
    rng = np.random.default_rng(width)
    rows = [
        rng.standard_normal(width),
        rng.standard_normal(width) * 50,
        rng.standard_normal(width) * 100,
        rng.uniform(-1000, 1000, width),
        np.full(width, -1000.0),
        np.full(width, 1e30),
        np.where(np.arange(width) % 2 == 0, 50.0, -50.0),
        np.where(np.arange(width) % 2 == 0, 100.0, -100.0),
    ]
    z = np.array(rows, np.float32)
    y = ops.activation(z, "softmax")
    r = ref_act(z, "softmax")
    assert_within(y, r, forward_tol(z, r, "softmax"), f"softmax width {width}")
    sums = y.astype(np.float64).sum(axis=-1)
    np.testing.assert_allclose(sums, 1.0, rtol=0, atol=1e-6 + 2 * EPS32 * math.sqrt(width))


def test_softmax_huge_logits():
    z = np.array([[1000, 999, -1000], [-1000, -999, 1000], [1000, 1000, 1000]], np.float32)
    y = ops.activation(z, "softmax").astype(np.float64)
    r = ref_act(z, "softmax")
    np.testing.assert_allclose(y, r, rtol=1e-6, atol=ATOL_TINY)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=1e-6)
    assert y[0, 0] / y[0, 1] == pytest.approx(math.e, rel=1e-6)


@pytest.mark.parametrize("act", NAN_PROPAGATING)
def test_nan_propagates_at_every_simd_level(act, simd_levels, force_simd):
    rng = np.random.default_rng(7)
    z = (rng.standard_normal(1003) * 10).astype(np.float32)  # odd length: SIMD body and tail
    nan_at = rng.random(z.shape) < 0.1
    nan_at[[0, 1, 15, 16, 17, 1002]] = True  # lane edges of 4/8/16-wide vectors, and the tail
    z[nan_at] = np.nan
    for level in simd_levels:
        assert force_simd(level) == level
        y = ops.activation(z, act)
        np.testing.assert_array_equal(np.isnan(y), nan_at, err_msg=f"{act} at {level}")
        r = ref_act(z[~nan_at], act)
        assert_within(y[~nan_at], r, forward_tol(z[~nan_at], r, act), f"{act} at {level}")


# --- known bugs ------------------------------------------------------------------------------------


def test_hard_sigmoid_relative_accuracy_near_lower_knee():
    z = np.float32(-3) + np.geomspace(1e-5, 0.5, 2001).astype(np.float32)
    y = ops.activation(z, "hard_sigmoid")
    r = ref_act(z, "hard_sigmoid")
    np.testing.assert_allclose(y, r, rtol=1e-6, atol=0)


@pytest.mark.parametrize("shape", [(0,), (3, 0), (2, 0, 0)])
@pytest.mark.parametrize("act", ["relu", "softmax"])
def test_zero_width_last_axis(shape, act):
    z = np.zeros(shape, np.float32)
    assert ops.activation(z, act).shape == shape
    assert ops.activation_backward(z, z, act).shape == shape


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_zero_d_float32_array(act):
    z = np.array(0.75, np.float32)
    y = ops.activation(z, act)
    assert y.shape == ()
    np.testing.assert_allclose(y, ref_act(z, act), rtol=1e-6)
    dz = ops.activation_backward(y, np.array(2.0, np.float32), act)
    assert dz.shape == ()
    np.testing.assert_allclose(dz, reference.activation_grad(z, 2.0, act), rtol=1e-6)


@pytest.mark.parametrize("value", [0.75, 2, np.array(0.75), np.float64(0.75)], ids=["float", "int", "f64_0d", "f64"])
def test_zero_d_shape_is_kept(value):
    assert ops.activation(value, "sigmoid").shape == ()
    assert ops.activation_backward(value, value, "sigmoid").shape == ()
