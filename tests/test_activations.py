"""`kernels.activation` / `kernels.activation_backward` against the float64 reference.

Accuracy targets (float32 kernels vs float64 math on the same float32 inputs):
- sigmoid, tanh: 1e-6 relative wherever the true value is a normal float32 (|v| >= ~1.2e-38);
  below that, float32 has no relative precision left and seqcore's exp saturates at e^-87 by design
  (math.rs), so an absolute 2 * tiny is allowed there.
- relu, linear: exact.
- softmax: 1e-6 relative plus the rounding of the float32 subtraction z - max(z) (relative error
  eps/2 * |z - max|, which no float32 softmax avoids) and of the row sum (eps * sqrt(width)).
- hard_sigmoid: 1e-7 absolute here; its relative accuracy near the lower knee is a known bug
  (test_hard_sigmoid_relative_accuracy_near_lower_knee).
- elu, selu, softplus, softsign, exponential, silu, mish, hard_silu: 1e-6 relative (plus the
  subnormal floor). leaky_relu: 2e-7 relative (0.2 is not a float32); relu6: exact.
- gelu: 1e-6 relative plus 1.2e-7 * x^2 relative in the lower tail: Φ(x) = erfc(-x/√2)/2 holds
  e^(-x²/2), whose float32 argument x² is rounded (relative eps/2), an error the exponent multiplies
  by x²/2 (so 6e-6 at x = -10, where gelu is -7.6e-23).
- exponential: compared with e^x rounded to float32 (inf from 88.73 on, as TensorFlow).
- Gradients: from the output (the fused activations) lose what the rounding of y loses; from the
  input (gelu, silu, mish, hard_silu, and any activation through activation_backward_from_input)
  1e-6 relative to the size of the terms of f'.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from seqcore import kernels, reference
from seqcore._seqcore import ACTIVATION_ALIASES, ACTIVATIONS, INPUT_ACTIVATIONS

EPS32 = float(np.finfo(np.float32).eps)
TINY = float(np.finfo(np.float32).tiny)
# The kernels run with subnormals flushed to zero (FTZ/DAZ, as TensorFlow's CPU threads; see
# rust/src/threads.rs), so a result built from a subnormal intermediate, e.g. silu(x) = x·σ(x) with
# σ(x) ≈ e^x below FLT_MIN for x < -87, is 0 where exact arithmetic gives |x|·e^x < 128·FLT_MIN.
ATOL_TINY = 128 * TINY
ALL = (*ACTIVATIONS, *INPUT_ACTIVATIONS)
ELEMENTWISE = tuple(a for a in ALL if a != "softmax")
NAN_PROPAGATING = ELEMENTWISE
NEW = ("elu", "selu", "softplus", "softsign", "exponential", "leaky_relu", "relu6", *INPUT_ACTIVATIONS)
SMOOTH = ("sigmoid", "tanh", "elu", "selu", "softplus", "softsign", "silu", "mish", "hard_silu")


def test_activation_lists():
    assert set(NEW) | {"linear", "relu", "sigmoid", "hard_sigmoid", "tanh", "softmax"} == set(ALL)
    assert sorted(INPUT_ACTIVATIONS) == ["gelu", "hard_silu", "mish", "silu"]
    assert ACTIVATION_ALIASES == {"swish": "silu", "hard_swish": "hard_silu"}
    assert not set(ACTIVATIONS) & set(INPUT_ACTIVATIONS)


def ref_act(z, act):
    with np.errstate(over="ignore", invalid="ignore"):
        r = reference.activation(np.asarray(z, np.float32), act)
    if act == "exponential":  # e^x as float32 holds it: inf from 88.73 on
        with np.errstate(over="ignore"):
            r = r.astype(np.float32).astype(np.float64)
    return r


def backward(x, y, dy, act):
    """The gradient the way a layer takes it: from the output for the fused activations, from
    the input for the others."""
    if act in INPUT_ACTIVATIONS:
        return kernels.activation_backward_from_input(x, dy, act)
    return kernels.activation_backward(y, dy, act)


def forward_tol(z, r, act):
    z = np.asarray(z, np.float64)
    r = np.abs(r)
    if act in ("linear", "relu", "relu6"):
        return np.zeros_like(r)
    if act == "leaky_relu":
        return 2e-7 * r
    if act in SMOOTH or act == "exponential":
        return 1e-6 * r + ATOL_TINY
    if act == "gelu":
        with np.errstate(over="ignore", invalid="ignore"):
            return (1e-6 + 1.2e-7 * np.minimum(z * z, 1e6)) * r + ATOL_TINY
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
        err = np.where((got == want) | (np.isnan(got) & np.isnan(want)), 0.0, np.abs(got - want))
    bad = ~(err <= tol)  # NaN counts as bad
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err - tol, -np.inf)), err.shape)
        raise AssertionError(
            f"{what}: {bad.sum()} of {err.size} off; worst at {i}: got {got[i]!r}, want {want[i]!r}, "
            f"tolerance {np.broadcast_to(tol, err.shape)[i]!r}"
        )


def away_from_kinks(z, act):
    """Moves hard_sigmoid inputs off +-3, where the float32 output (from which the derivative is
    taken) may round onto the clip boundary, and hard_silu's likewise (x + 3 may round onto 0 or 6);
    relu, leaky_relu and relu6 decide exactly (y > 0 iff z > 0; y = z inside (0, 6))."""
    if act in ("hard_sigmoid", "hard_silu"):
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


@pytest.mark.parametrize("act", ALL)
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

    y = kernels.activation(z, act)

    assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.shape == z.shape
    r = ref_act(z, act)
    assert_within(y, r, forward_tol(z, r, act), f"{act} {shape} scale {scale}")
    np.testing.assert_array_equal(z, z0)  # input untouched

    yv = kernels.activation(LAYOUTS[layout](z), act)
    assert yv.dtype == np.float32 and yv.shape == y.shape
    np.testing.assert_array_equal(yv, y, err_msg=f"layout {layout}")


def slope_terms(z, act):
    """|f| of each term of f'(z) summed, for the activations whose f' is a sum (x·g(x)' = g + x·g'):
    their gradient loses about 1e-6 relative to this, which cancellation can make far larger than
    |f'| (gelu' = 0 at z = -0.75)."""
    z = np.clip(np.asarray(z, np.float64), -1e3, 1e3)
    with np.errstate(over="ignore", under="ignore"):
        if act == "gelu":
            cdf = reference.activation(z, "gelu") / np.where(z == 0, 1.0, z)
            cdf = np.where(z == 0, 0.5, cdf)
            return cdf + np.abs(z) * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        s = reference.activation(z, "sigmoid")
        if act == "silu":
            return s + np.abs(z) * s * (1 - s)
        if act == "mish":
            t = np.tanh(np.logaddexp(z, 0.0))
            return t + np.abs(z) * (1 - t * t) * s
        if act == "hard_silu":
            return np.clip(z / 6 + 0.5, 0, 1) + np.where(np.abs(z) < 3, np.abs(z) / 6, 0.0)
    raise AssertionError(act)


def backward_tol(z, dy, r, act):
    """Tolerance for dz = dy * f'(z). The fused activations take f' from their float32 output y,
    whose rounding (|dy| * eps-level absolute) is all they may lose: e.g. sigmoid'(20) ~ 2e-9 is 0
    once y rounds to 1."""
    dy_abs = np.abs(np.asarray(dy, np.float64))
    if act in ("linear", "relu", "relu6"):
        return np.zeros_like(r)
    if act == "leaky_relu":
        return 2e-7 * np.abs(r)
    if act in ("sigmoid", "hard_sigmoid", "tanh", "elu", "selu", "softplus", "softsign", "exponential"):
        return 1e-6 * np.abs(r) + 4 * EPS32 * dy_abs + ATOL_TINY
    if act in INPUT_ACTIVATIONS:
        terms = dy_abs * slope_terms(z, act)
        tail = 1.2e-7 * np.minimum(np.asarray(z, np.float64) ** 2, 1e6) if act == "gelu" else 0.0
        return (1e-6 + tail) * terms + 1e-6 * np.abs(r) + ATOL_TINY
    y = ref_act(z, "softmax")
    row = dy_abs.max(axis=-1, keepdims=True) if dy_abs.ndim else dy_abs
    # y's own error (relative, plus the saturation floor ATOL_TINY) times |dy - <dy, y>|
    return (1e-5 * y + ATOL_TINY) * (dy_abs + 2 * row) + 1e-6 * np.abs(r) + ATOL_TINY


@pytest.mark.parametrize("act", ALL)
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
    if act == "exponential":
        # below e^x's float32 overflow: beyond it y = inf, and dy * inf is all y can tell
        z = np.minimum(z, np.float32(88)).astype(np.float32)
    dy = np.asarray(np.random.default_rng(seed + 1).standard_normal(shape), dtype=np.float32)
    y = kernels.activation(z, act)

    dz = backward(z, y, dy, act)

    assert dz.dtype == np.float32 and dz.shape == z.shape
    with np.errstate(over="ignore", under="ignore"):
        r = reference.activation_grad(z, dy, act)
        if act == "exponential":  # dy * e^x as float32 holds it (inf beyond 3.4e38)
            r = r.astype(np.float32).astype(np.float64)
    assert_within(dz, r, backward_tol(z, dy, r, act), f"{act}' {shape} scale {scale}")

    # From the input, any activation gives what the output gives (it goes through y).
    np.testing.assert_array_equal(kernels.activation_backward_from_input(z, dy, act), dz)

    first = "x" if act in INPUT_ACTIVATIONS else "y"
    args = {first: z if first == "x" else y, "dy": dy}
    key = first if which == "y" else "dy"
    args[key] = LAYOUTS[layout](args[key])
    np.testing.assert_array_equal(backward(args.get("x"), args.get("y"), args["dy"], act), dz)


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
    y = kernels.activation(SWEEP, act)
    r = ref_act(SWEEP, act)
    assert_within(y, r, forward_tol(SWEEP, r, act), f"{act} sweep")


@pytest.mark.parametrize("act", ["sigmoid", "tanh"])
def test_large_inputs_saturate_accurately(act):
    z = np.array([-100, -50, -20, -10, 10, 20, 50, 100], np.float32)
    y = kernels.activation(z, act).astype(np.float64)
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
    y = kernels.activation(z, "softmax")
    r = ref_act(z, "softmax")
    assert_within(y, r, forward_tol(z, r, "softmax"), f"softmax width {width}")
    sums = y.astype(np.float64).sum(axis=-1)
    np.testing.assert_allclose(sums, 1.0, rtol=0, atol=1e-6 + 2 * EPS32 * math.sqrt(width))


def test_softmax_huge_logits():
    z = np.array([[1000, 999, -1000], [-1000, -999, 1000], [1000, 1000, 1000]], np.float32)
    y = kernels.activation(z, "softmax").astype(np.float64)
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
        y = kernels.activation(z, act)
        np.testing.assert_array_equal(np.isnan(y), nan_at, err_msg=f"{act} at {level}")
        r = ref_act(z[~nan_at], act)
        assert_within(y[~nan_at], r, forward_tol(z[~nan_at], r, act), f"{act} at {level}")


# --- known bugs ------------------------------------------------------------------------------------


def test_hard_sigmoid_relative_accuracy_near_lower_knee():
    z = np.float32(-3) + np.geomspace(1e-5, 0.5, 2001).astype(np.float32)
    y = kernels.activation(z, "hard_sigmoid")
    r = ref_act(z, "hard_sigmoid")
    np.testing.assert_allclose(y, r, rtol=1e-6, atol=0)


@pytest.mark.parametrize("shape", [(0,), (3, 0), (2, 0, 0), (0, 5), (2, 0, 3)])
@pytest.mark.parametrize("act", ["relu", "softmax", "elu", "exponential", "gelu", "silu"])
def test_zero_width_last_axis(shape, act):
    z = np.zeros(shape, np.float32)
    assert kernels.activation(z, act).shape == shape
    if act not in INPUT_ACTIVATIONS:
        assert kernels.activation_backward(z, z, act).shape == shape
    assert kernels.activation_backward_from_input(z, z, act).shape == shape


@pytest.mark.parametrize("act", ALL)
def test_zero_d_float32_array(act):
    z = np.array(0.75, np.float32)
    y = kernels.activation(z, act)
    assert y.shape == ()
    np.testing.assert_allclose(y, ref_act(z, act), rtol=1e-6)
    dz = backward(z, y, np.array(2.0, np.float32), act)
    assert dz.shape == ()
    np.testing.assert_allclose(dz, reference.activation_grad(z, 2.0, act), rtol=1e-6)


@pytest.mark.parametrize("value", [0.75, 2, np.array(0.75), np.float64(0.75)], ids=["float", "int", "f64_0d", "f64"])
def test_zero_d_shape_is_kept(value):
    assert kernels.activation(value, "sigmoid").shape == ()
    assert kernels.activation_backward(value, value, "sigmoid").shape == ()


# --- the activations added for Keras 3 (elu ... hard_silu) ------------------------------------------


@pytest.mark.parametrize("act", NEW)
def test_new_activations_agree_at_every_simd_level(act, simd_levels, force_simd):
    """Forward, gradient from the output (fused ones) and from the input, at every SIMD level, on
    values that cover the vector bodies and tails, the kinks and both saturated ends."""
    rng = np.random.default_rng(11)
    z = (rng.standard_normal(1003) * rng.choice([0.3, 3, 30], 1003)).astype(np.float32)
    z[:16] = [-200, -90, -30, -3, -1e-30, 0, 1e-30, 3, 6, 30, 87, 88.5, 90, 200, np.inf, -np.inf]
    dy = rng.standard_normal(z.shape).astype(np.float32)
    results = {}
    for level in simd_levels:
        assert force_simd(level) == level
        y = kernels.activation(z, act)
        from_input = kernels.activation_backward_from_input(z, dy, act)
        if act not in INPUT_ACTIVATIONS:
            np.testing.assert_array_equal(kernels.activation_backward(y, dy, act), from_input, err_msg=level)
        results[level] = (y, from_input)
    y0, d0 = results["portable"]
    r = ref_act(z, act)
    assert_within(y0, r, forward_tol(z, r, act), f"{act} portable")
    for level in simd_levels[1:]:
        y, d = results[level]
        np.testing.assert_allclose(y, y0, rtol=1e-6, atol=2 * TINY, err_msg=f"{act} forward at {level}")
        np.testing.assert_allclose(d, d0, rtol=1e-6, atol=1e-6 * np.abs(dy).max(), err_msg=f"{act}' at {level}")


@pytest.mark.parametrize("act", INPUT_ACTIVATIONS)
def test_gradient_from_input_propagates_nan_at_every_simd_level(act, simd_levels, force_simd):
    rng = np.random.default_rng(8)
    z = (rng.standard_normal(1003) * 4).astype(np.float32)
    nan_at = rng.random(z.shape) < 0.1
    nan_at[[0, 1, 15, 16, 17, 1002]] = True
    z[nan_at] = np.nan
    for level in simd_levels:
        assert force_simd(level) == level
        d = kernels.activation_backward_from_input(z, np.ones_like(z), act)
        np.testing.assert_array_equal(np.isnan(d), nan_at, err_msg=f"{act}' at {level}")


def test_infinite_inputs_give_the_limits():
    """Where TensorFlow computes inf * 0 = NaN (x·g(x) at -inf, softsign at ±inf) seqcore gives the
    limit; everywhere else the same as TensorFlow."""
    z = np.array([-np.inf, np.inf], np.float32)
    want = {
        "elu": ([-1, np.inf], [0, 1]),
        "selu": ([-reference.SELU_SCALE * reference.SELU_ALPHA, np.inf], [0, reference.SELU_SCALE]),
        "softplus": ([0, np.inf], [0, 1]),
        "softsign": ([-1, 1], [0, 0]),
        "exponential": ([0, np.inf], [0, np.inf]),
        "leaky_relu": ([-np.inf, np.inf], [0.2, 1]),
        "relu6": ([0, 6], [0, 0]),
        "gelu": ([0, np.inf], [0, 1]),
        "silu": ([0, np.inf], [0, 1]),
        "mish": ([0, np.inf], [0, 1]),
        "hard_silu": ([0, np.inf], [0, 1]),
    }
    for act, (y_want, d_want) in want.items():
        np.testing.assert_allclose(kernels.activation(z, act), y_want, rtol=1e-7, err_msg=act)
        d = kernels.activation_backward_from_input(z, np.ones_like(z), act)
        np.testing.assert_allclose(d, d_want, rtol=1e-7, err_msg=act)
        with np.errstate(over="ignore", invalid="ignore"):
            np.testing.assert_allclose(ref_act(z, act), y_want, rtol=1e-7, err_msg=f"reference {act}")


@pytest.mark.parametrize(("alias", "name"), sorted(ACTIVATION_ALIASES.items()))
def test_keras_aliases_are_the_same_function(alias, name):
    z = np.linspace(-8, 8, 101, dtype=np.float32)
    np.testing.assert_array_equal(kernels.activation(z, alias), kernels.activation(z, name))
    dy = np.cos(z)
    np.testing.assert_array_equal(
        kernels.activation_backward_from_input(z, dy, alias), kernels.activation_backward_from_input(z, dy, name)
    )


@pytest.mark.parametrize("act", [*INPUT_ACTIVATIONS, "swish"])
def test_output_gradient_of_an_input_activation_says_what_to_use(act):
    y = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=rf"activation_backward: '{act}'.*activation_backward_from_input"):
        kernels.activation_backward(y, y, act)
    with pytest.raises(ValueError, match=rf"dense_forward: activation '{act}' cannot be fused.*'linear'"):
        kernels.dense_forward(y, np.zeros((3, 4), np.float32), None, act)
    with pytest.raises(ValueError, match=r"dy must match x"):
        kernels.activation_backward_from_input(y, y[:1], act)
