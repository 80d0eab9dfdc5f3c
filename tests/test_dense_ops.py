"""`kernels.dense_forward` / `kernels.dense_backward` against the float64 reference and finite differences.

Tolerances come from float32 error propagation, not from the kernel's own output: a GEMM over K
terms is off by about eps * sqrt(K) * (|x| @ |W|) (round-off random walk), the activation passes that
on through its slope, and a backward GEMM adds its own term. Each bound is a constant far below what
any real bug (wrong transpose, missing bias, lost row) produces.

Relu, hard_sigmoid, leaky_relu, relu6 and selu (whose slope jumps at 0) are tested on "quantized"
data (integers times 1/8, bias an odd multiple of 1/16) so every pre-activation is computed exactly
in float32 and lies at least 1/16 from a kink: the kernel (which takes the derivative from its
float32 output) and the float64 reference then make the same decision at every element, and finite
differences never straddle a kink.

The activations that need their input for the derivative (gelu, silu, mish, hard_silu) are not
fused, so not in `ACTIVATIONS`; the Dense layer runs them as a linear kernel plus
`kernels.activation` (tests/test_keras_compat_activations.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from seqcore import kernels, reference
from seqcore._seqcore import ACTIVATIONS

EPS32 = float(np.finfo(np.float32).eps)
KINKED = ("relu", "hard_sigmoid", "leaky_relu", "relu6", "selu")
# Largest |f'(z)| of each activation (softmax is handled row-wise; exponential's is y itself).
SLOPE = {
    "linear": 1.0,
    "relu": 1.0,
    "sigmoid": 0.25,
    "hard_sigmoid": 1 / 6,
    "tanh": 1.0,
    "softmax": 2.0,
    "elu": 1.0,
    "selu": 1.7581,
    "softplus": 1.0,
    "softsign": 1.0,
    "leaky_relu": 1.0,
    "relu6": 1.0,
}


def slope(act: str, y: np.ndarray) -> np.ndarray | float:
    """Bound on |f'(z)| (and, for exponential, on |f''(z)|, which is y too) near each element."""
    return np.abs(y) * (1 + 1e-5) if act == "exponential" else SLOPE[act]


small_dim = st.one_of(st.sampled_from([0, 1]), st.integers(2, 9))
features_st = st.one_of(st.sampled_from([0, 1]), st.integers(2, 40))
units_st = st.one_of(st.sampled_from([0, 1]), st.integers(2, 24))
seed_st = st.integers(0, 2**32 - 1)


@st.composite
def x_shapes(draw: st.DrawFn, min_rank: int = 2, max_rank: int = 4) -> tuple[int, ...]:
    rank = draw(st.integers(min_rank, max_rank))
    lead = draw(st.lists(small_dim, min_size=rank - 1, max_size=rank - 1))
    return (*lead, draw(features_st))


def reshape_bug(x_shape: tuple[int, ...], units: int) -> bool:
    """Shapes that hit the `reshape(-1, 0)` bug in ops (see the xfail tests at the end of this file)."""
    return len(x_shape) > 2 and (x_shape[-1] == 0 or units == 0)


def make_problem(
    x_shape: tuple[int, ...], units: int, act: str, use_bias: bool, seed: int, integer_x: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """x, kernel, bias (or None) and an upstream gradient dy, all C-contiguous float32."""
    rng = np.random.default_rng(seed)
    f = x_shape[-1]
    if act in KINKED or integer_x:
        x = rng.integers(-3, 4, x_shape).astype(np.float32)
        k = (rng.integers(-4, 5, (f, units)) / 8).astype(np.float32)
        b = ((rng.integers(-8, 8, units) + 0.5) / 8).astype(np.float32)
    else:
        x = rng.standard_normal(x_shape).astype(np.float32)
        k = (rng.standard_normal((f, units)) / math.sqrt(max(f, 1))).astype(np.float32)
        b = rng.standard_normal(units).astype(np.float32)
    dy = rng.standard_normal((*x_shape[:-1], units)).astype(np.float32)
    return x, k, (b if use_bias else None), dy


def rows(a: np.ndarray) -> np.ndarray:
    """(..., n) -> (rows, n) with explicit sizes (works for n == 0 too, unlike reshape(-1, n))."""
    return np.asarray(a, dtype=np.float64).reshape(math.prod(a.shape[:-1]), a.shape[-1])


def ref_forward(x, k, b, act):
    """reference.dense_forward; a zero-width problem is padded with one zero unit (its softmax
    reduces over an empty axis otherwise) that is then dropped."""
    if k.shape[1] > 0:
        return reference.dense_forward(x, k, b, act)
    kp = np.zeros((k.shape[0], 1))
    bp = None if b is None else np.zeros(1)
    return reference.dense_forward(x, kp, bp, act)[..., :0]


def ref_backward(x, k, b, dy, act):
    """reference.dense_backward on (rows, features). The reference folds rows with reshape(-1, n),
    which fails when n == 0, so a zero-width problem is padded with a zero feature / zero unit (zero
    weights and zero upstream gradient: every real gradient entry is unchanged), then cut back."""
    x, k, dy = rows(x), np.asarray(k, np.float64), rows(dy)
    f, u = k.shape
    b = None if b is None else np.asarray(b, np.float64)
    if f > 0 and u > 0:
        return reference.dense_backward(x, k, b, dy, act)
    xp = np.zeros((x.shape[0], f + 1))
    xp[:, :f] = x
    kp = np.zeros((f + 1, u + (u == 0)))
    kp[:f, :u] = k
    dyp = np.zeros((dy.shape[0], kp.shape[1]))
    dyp[:, :u] = dy
    bp = None
    if b is not None:
        bp = np.zeros(kp.shape[1])
        bp[:u] = b
    dx, dk, db = reference.dense_backward(xp, kp, bp, dyp, act)
    return dx[:, :f], dk[:f, :u], db[:u]


def gemm_err(a_abs: np.ndarray, b_abs: np.ndarray, k: int) -> np.ndarray:
    """Bound on the float32 round-off of a @ b with reduction length k."""
    return 4 * EPS32 * math.sqrt(k + 1) * (a_abs @ b_abs)


def forward_bounds(x, k, b, act, y_ref):
    """(tolerance on y, bound on the error of z = x @ k + b), both (rows, units)."""
    zerr = gemm_err(np.abs(rows(x)), np.abs(k.astype(np.float64)), k.shape[0])
    if b is not None:
        zerr = zerr + EPS32 * np.abs(b.astype(np.float64))
    y = rows(y_ref)
    if act == "softmax":
        row_max = zerr.max(axis=1, keepdims=True) if zerr.size else zerr
        yerr = 2 * y * row_max
    else:
        yerr = slope(act, y) * zerr
    return 1e-5 * np.abs(y) + yerr + 1e-7, zerr


def assert_within(got, want, tol, what):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    err = np.abs(got - want)
    bad = ~(err <= tol)  # NaN counts as bad
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err - tol, -np.inf)), err.shape)
        raise AssertionError(
            f"{what}: {bad.sum()} of {err.size} elements off; worst at {i}: got {got[i]}, "
            f"want {want[i]}, tolerance {np.broadcast_to(tol, err.shape)[i]}"
        )


# --- input layouts: each must give the C-contiguous float32 result --------------------------------


def nan_padded_view(a: np.ndarray, axis: int) -> np.ndarray:
    """`a` as a strided view (step 2 along `axis`) of a buffer whose gaps hold NaN, so reading the
    gaps shows up in the result."""
    shape = list(a.shape)
    shape[axis] *= 2
    base = np.full(shape, np.nan, dtype=a.dtype)
    idx = [slice(None)] * a.ndim
    idx[axis] = slice(None, None, 2)
    base[tuple(idx)] = a
    return base[tuple(idx)]


def reversed_view(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a[::-1])[::-1]


X_LAYOUTS = {
    "fortran": np.asfortranarray,
    "strided_first_axis": lambda a: nan_padded_view(a, 0),
    "strided_x[:, ::2]": lambda a: nan_padded_view(a, 1),
    "strided_last_axis": lambda a: nan_padded_view(a, a.ndim - 1),
    "negative_stride": reversed_view,
    "float64": lambda a: a.astype(np.float64),
    "int64": lambda a: a.astype(np.int64),  # data is integer-valued for this layout
    "int32_fortran": lambda a: np.asfortranarray(a.astype(np.int32)),
    "list": lambda a: a.tolist(),
}
K_LAYOUTS = {
    "fortran (a PyTorch weight's .T)": lambda k: np.ascontiguousarray(k.T).T,
    "strided": lambda k: nan_padded_view(k, 1),
    "float64": lambda k: k.astype(np.float64),
    "list": lambda k: k.tolist(),
}
B_LAYOUTS = {
    "strided": lambda b: nan_padded_view(b, 0),
    "float64": lambda b: b.astype(np.float64),
    "list": lambda b: b.tolist(),
}
LAYOUTS = [("x", n) for n in X_LAYOUTS] + [("kernel", n) for n in K_LAYOUTS] + [("bias", n) for n in B_LAYOUTS]
INT_LAYOUTS = {("x", "int64"), ("x", "int32_fortran")}


def lossless(layout, x, k, b) -> bool:
    """A nested list drops the shape of an array with a 0 in a non-last axis ([[]] is (1, 0))."""
    which, name = layout
    arr = {"x": x, "kernel": k, "bias": b}[which]
    return name != "list" or arr is None or arr.size > 0


def apply_layout(layout, x, k, b):
    which, name = layout
    if which == "x":
        return X_LAYOUTS[name](x), k, b
    if which == "kernel":
        return x, K_LAYOUTS[name](k), b
    return x, k, (B_LAYOUTS[name](b) if b is not None else None)


BIG_EXAMPLES = [
    # several row blocks per thread (parallel over rows), odd sizes
    dict(x_shape=(3, 700, 67), units=19, use_bias=True, seed=1, layout=("x", "strided_x[:, ::2]")),
    # one row, wide: the GEMM splits columns instead of rows
    dict(
        x_shape=(1, 300),
        units=70,
        use_bias=True,
        seed=2,
        layout=("kernel", "fortran (a PyTorch weight's .T)"),
    ),
    dict(x_shape=(2, 3, 4, 5), units=3, use_bias=False, seed=3, layout=("x", "fortran")),
    dict(x_shape=(0, 5), units=3, use_bias=True, seed=4, layout=("x", "float64")),
    dict(x_shape=(4, 0), units=3, use_bias=True, seed=5, layout=("bias", "list")),
    dict(x_shape=(2, 3, 5), units=0, use_bias=True, seed=6, layout=("x", "fortran")),
    dict(x_shape=(1, 1), units=1, use_bias=False, seed=7, layout=("x", "int64")),
]


def with_examples(examples):
    def deco(f):
        for ex in reversed(examples):
            f = example(**ex)(f)
        return f

    return deco


# --- forward ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("act", ACTIVATIONS)
@settings(max_examples=25, deadline=None)
@given(
    x_shape=x_shapes(),
    units=units_st,
    use_bias=st.booleans(),
    seed=seed_st,
    layout=st.sampled_from(LAYOUTS),
)
@with_examples(BIG_EXAMPLES)
def test_forward_matches_reference(act, x_shape, units, use_bias, seed, layout):
    assume(not reshape_bug(x_shape, units))
    x, k, b, _ = make_problem(x_shape, units, act, use_bias, seed, integer_x=layout in INT_LAYOUTS)
    x0, k0 = x.copy(), k.copy()

    y = kernels.dense_forward(x, k, b, act)

    assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.flags.c_contiguous
    assert y.shape == (*x_shape[:-1], units)
    y_ref = ref_forward(x, k, b, act)
    tol, _ = forward_bounds(x, k, b, act, y_ref)
    assert_within(rows(y), rows(y_ref), tol, f"dense_forward[{act}] {x_shape}->{units}")
    np.testing.assert_array_equal(x, x0)  # inputs are read, never written
    np.testing.assert_array_equal(k, k0)

    if not lossless(layout, x, k, b):
        return
    xv, kv, bv = apply_layout(layout, x, k, b)
    yv = kernels.dense_forward(xv, kv, bv, act)
    assert yv.dtype == np.float32 and yv.shape == y.shape
    np.testing.assert_allclose(yv, y, rtol=1e-6, atol=1e-7, err_msg=f"layout {layout}")


def test_activation_none_means_linear():
    x, k, b, _ = make_problem((4, 6, 5), 3, "linear", True, 0)
    np.testing.assert_array_equal(kernels.dense_forward(x, k, b, None), kernels.dense_forward(x, k, b, "linear"))
    np.testing.assert_array_equal(kernels.dense_forward(x, k, b), kernels.dense_forward(x, k, b, "linear"))


# --- backward --------------------------------------------------------------------------------------


def backward_bounds(x, k, dy, act, y_ref, zerr):
    """Tolerances for (dx, dkernel, dbias) from the magnitude of dz = dy * f'(z) and its error."""
    dy_abs = np.abs(rows(dy))
    y = rows(y_ref)
    if act == "softmax":
        row_dy = dy_abs.max(axis=1, keepdims=True) if dy_abs.size else dy_abs
        dz_mag = y * (dy_abs + row_dy)
        dy_scale = np.broadcast_to(row_dy, dy_abs.shape)
        zerr = np.broadcast_to(zerr.max(axis=1, keepdims=True), zerr.shape) if zerr.size else zerr
    else:
        dz_mag = slope(act, y) * dy_abs
        dy_scale = dy_abs * (slope(act, y) if act == "exponential" else 1.0)
    # error of dz: float32 rounding of the derivative, plus the forward error it inherits through
    # f'' (|f''| <= 2 for every activation here but exponential, whose f'' = y is folded into
    # dy_scale; 0 for linear, relu, hard_sigmoid, leaky_relu, relu6 off the kinks).
    dz_err = 1e-6 * dz_mag + 2 * dy_scale * zerr
    k_abs = np.abs(k.astype(np.float64))
    x_abs = np.abs(rows(x))
    n_rows = x_abs.shape[0]
    dx_tol = dz_err @ k_abs.T + gemm_err(dz_mag, k_abs.T, k.shape[1])
    dk_tol = x_abs.T @ dz_err + gemm_err(x_abs.T, dz_mag, n_rows)
    db_tol = dz_err.sum(axis=0) + 4 * EPS32 * math.sqrt(n_rows + 1) * dz_mag.sum(axis=0)
    return dx_tol + 1e-7, dk_tol + 1e-7, db_tol + 1e-7


BACKWARD_LAYOUTS = [
    ("x", "fortran"),
    ("x", "strided_x[:, ::2]"),
    ("x", "float64"),
    ("kernel", "fortran (a PyTorch weight's .T)"),
    ("kernel", "float64"),
    ("y", "fortran"),
    ("y", "float64"),
    ("dy", "strided_x[:, ::2]"),
    ("dy", "float64"),
    ("dy", "list"),
]


@pytest.mark.parametrize("act", ACTIVATIONS)
@settings(max_examples=20, deadline=None)
@given(
    x_shape=x_shapes(),
    units=units_st,
    use_bias=st.booleans(),
    seed=seed_st,
    layout=st.sampled_from(BACKWARD_LAYOUTS),
)
@example(x_shape=(3, 700, 67), units=19, use_bias=True, seed=1, layout=("dy", "float64"))
@example(x_shape=(1, 300), units=70, use_bias=True, seed=2, layout=("x", "fortran"))
@example(x_shape=(0, 4), units=3, use_bias=True, seed=3, layout=("y", "fortran"))
@example(x_shape=(5, 0), units=3, use_bias=True, seed=4, layout=("dy", "float64"))
@example(x_shape=(5, 4), units=0, use_bias=True, seed=5, layout=("x", "fortran"))
def test_backward_matches_reference(act, x_shape, units, use_bias, seed, layout):
    assume(not reshape_bug(x_shape, units))
    x, k, b, dy = make_problem(x_shape, units, act, use_bias, seed)
    y = kernels.dense_forward(x, k, b, act)

    g = kernels.dense_backward(x, k, y, dy, act)

    assert isinstance(g, kernels.DenseGrads)
    assert g.dx.shape == x.shape and g.dkernel.shape == k.shape and g.dbias.shape == (units,)
    assert g.dx.dtype == g.dkernel.dtype == g.dbias.dtype == np.float32
    y_ref = ref_forward(x, k, b, act)
    dx_ref, dk_ref, db_ref = ref_backward(x, k, b, dy, act)
    _, zerr = forward_bounds(x, k, b, act, y_ref)
    dx_tol, dk_tol, db_tol = backward_bounds(x, k, dy, act, y_ref, zerr)
    what = f"dense_backward[{act}] {x_shape}->{units}"
    assert_within(rows(g.dx), dx_ref, 1e-5 * np.abs(dx_ref) + dx_tol, what + " dx")
    assert_within(g.dkernel, dk_ref, 1e-5 * np.abs(dk_ref) + dk_tol, what + " dkernel")
    assert_within(g.dbias, db_ref, 1e-5 * np.abs(db_ref) + db_tol, what + " dbias")

    args = {"x": x, "kernel": k, "y": y, "dy": dy}
    which, name = layout
    if name == "list" and args[which].size == 0:
        return  # a nested list cannot hold that shape
    all_layouts = {**X_LAYOUTS, **K_LAYOUTS}
    args[which] = all_layouts[name](args[which])
    gv = kernels.dense_backward(args["x"], args["kernel"], args["y"], args["dy"], act)
    for got, want, n in zip(gv, g, ("dx", "dkernel", "dbias"), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=f"{n} with layout {layout}")


@pytest.mark.parametrize("act", ACTIVATIONS)
@settings(max_examples=10, deadline=None)
@given(x_shape=x_shapes(max_rank=3), units=units_st, seed=seed_st)
def test_backward_without_bias_or_dx(act, x_shape, units, seed):
    assume(not reshape_bug(x_shape, units))
    x, k, b, dy = make_problem(x_shape, units, act, True, seed)
    y = kernels.dense_forward(x, k, b, act)
    full = kernels.dense_backward(x, k, y, dy, act)

    no_bias = kernels.dense_backward(x, k, y, dy, act, use_bias=False)
    assert no_bias.dbias is None
    np.testing.assert_allclose(no_bias.dx, full.dx, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(no_bias.dkernel, full.dkernel, rtol=1e-6, atol=1e-6)

    no_dx = kernels.dense_backward(x, k, y, dy, act, need_dx=False)
    assert no_dx.dx is None
    np.testing.assert_allclose(no_dx.dkernel, full.dkernel, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(no_dx.dbias, full.dbias, rtol=1e-6, atol=1e-6)

    neither = kernels.dense_backward(x, k, y, dy, act, need_dx=False, use_bias=False)
    assert neither.dx is None and neither.dbias is None
    np.testing.assert_allclose(neither.dkernel, full.dkernel, rtol=1e-6, atol=1e-6)


# --- finite differences ---------------------------------------------------------------------------


def numeric_grads(x, k, b, g, act, h=1e-4):
    """Central differences in float64 of loss = sum(reference forward * g) by x, kernel and bias."""
    x, k, b, g = (np.array(a, dtype=np.float64) for a in (x, k, b, g))

    def loss():
        return float(np.sum(reference.dense_forward(x, k, b, act) * g))

    out = []
    for a in (x, k, b):
        grad = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + h
            up = loss()
            a[i] = old - h
            down = loss()
            a[i] = old
            grad[i] = (up - down) / (2 * h)
        out.append(grad)
    return out


@pytest.mark.parametrize("act", ACTIVATIONS)
@settings(max_examples=8, deadline=None)
@given(
    x_shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4))
    | st.tuples(st.integers(1, 5), st.integers(1, 4)),
    units=st.integers(1, 4),
    seed=seed_st,
)
def test_backward_matches_finite_differences(act, x_shape, units, seed):
    x, k, b, g = make_problem(x_shape, units, act, True, seed)
    y = kernels.dense_forward(x, k, b, act)
    dx, dk, db = kernels.dense_backward(x, k, y, g, act)
    num_dx, num_dk, num_db = numeric_grads(x, k, b, g, act)
    for name, got, num in (("dx", dx, num_dx), ("dkernel", dk, num_dk), ("dbias", db, num_db)):
        scale = 1.0 + np.abs(num).max()
        np.testing.assert_allclose(got, num, rtol=1e-4, atol=2e-5 * scale, err_msg=f"{act} {name}")


# --- known bug: a zero-width last axis on rank >= 3 -----------------------------------------------


def test_forward_zero_features_rank3():
    x = np.zeros((2, 3, 0), np.float32)
    k = np.zeros((0, 4), np.float32)
    b = np.arange(4, dtype=np.float32)
    y = kernels.dense_forward(x, k, b, "tanh")
    np.testing.assert_allclose(y, np.broadcast_to(np.tanh(b), (2, 3, 4)), rtol=1e-6)


def test_forward_zero_units_rank3_with_out():
    out = np.zeros((2, 3, 0), np.float32)
    assert kernels.dense_forward(np.ones((2, 3, 4), np.float32), np.zeros((4, 0), np.float32), out=out) is out


@pytest.mark.parametrize("features, units", [(0, 5), (4, 0)])
def test_backward_zero_width_rank3(features, units):
    x, k, b, dy = make_problem((2, 3, features), units, "sigmoid", True, 0)
    y = kernels.dense_forward(x.reshape(6, features), k, b, "sigmoid").reshape(2, 3, units)
    dx, dk, db = kernels.dense_backward(x, k, y, dy, "sigmoid")
    dx_ref, dk_ref, db_ref = ref_backward(x, k, b, dy, "sigmoid")
    assert dx.shape == x.shape and dk.shape == k.shape and db.shape == (units,)
    np.testing.assert_allclose(rows(dx), dx_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dk, dk_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(db, db_ref, rtol=1e-5, atol=1e-6)
