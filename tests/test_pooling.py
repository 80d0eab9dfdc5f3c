"""1-D pooling ops (max, average, global max, global average; forward and backward) against Keras
goldens, the float64 reference (seqcore.reference_conv) and finite differences.

Goldens: tests/golden/conv_goldens.npz (see tests/golden/generate_conv_goldens.py).

Max pooling is exact (a max is a copy); average pooling sums at most pool_size values, so it is
compared at a few float32 ulps. Tie-breaking (gradient to the first maximal cell) is exercised on
integer-valued data with many ties.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import seqcore
from hypothesis import example, given, settings
from hypothesis import strategies as st
from seqcore import kernels
from seqcore import reference_conv as R

GOLDEN = Path(__file__).parent / "golden" / "conv_goldens.npz"
PADDINGS = ("valid", "same")


@cache
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as z:
        return {k: z[k] for k in z.files}


def golden_names() -> list[str]:
    return sorted(k.split("__")[1] for k in golden() if k.startswith("pool__") and k.endswith("__config"))


def run(kind: str, x, dy, pool_size=None, strides=None, padding="valid"):
    """(y, dx) from seqcore.kernels."""
    if kind == "global_max":
        return kernels.global_max_pool1d_forward(x), kernels.global_max_pool1d_backward(x, dy)
    if kind == "global_avg":
        return kernels.global_avg_pool1d_forward(x), kernels.global_avg_pool1d_backward(x, dy)
    fwd, bwd = {
        "max": (kernels.max_pool1d_forward, kernels.max_pool1d_backward),
        "avg": (kernels.avg_pool1d_forward, kernels.avg_pool1d_backward),
    }[kind]
    kw = {"strides": strides, "padding": padding}
    return fwd(x, pool_size, **kw), bwd(x, dy, pool_size, **kw)


def reference(kind: str, x, dy, pool_size=None, strides=None, padding="valid"):
    x = np.asarray(x, np.float64)
    if kind == "global_max":
        return R.global_max_pool1d_forward(x), R.global_max_pool1d_backward(x, dy)
    if kind == "global_avg":
        return R.global_avg_pool1d_forward(x), R.global_avg_pool1d_backward(x.shape, dy)
    if kind == "max":
        return (R.max_pool1d_forward(x, pool_size, strides, padding),
                R.max_pool1d_backward(x, dy, pool_size, strides, padding))  # fmt: skip
    return (R.avg_pool1d_forward(x, pool_size, strides, padding),
            R.avg_pool1d_backward(x.shape, dy, pool_size, strides, padding))  # fmt: skip


def close(got, want, what: str, exact: bool = False) -> None:
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if exact:
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=what)


# --- goldens ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", golden_names())
def test_matches_keras_goldens(name: str) -> None:
    g = golden()
    cfg = json.loads(str(g[f"pool__{name}__config"]))
    x, gy, y_k, dx_k = (g[f"pool__{name}__{k}"] for k in ("x", "G", "y", "dx"))
    kind = cfg["kind"]
    x32 = x.astype(np.float32)
    y, dx = run(kind, x32, gy, cfg["pool_size"], cfg["strides"], cfg["padding"])
    close(y, y_k, f"{name} y", exact=kind in ("max", "global_max") and cfg["ties"])
    if name == "global_max_ties":
        # Keras (tf.reduce_max) splits the gradient equally among tied maxima; seqcore gives it all
        # to the first one (documented). Same total per channel, same support.
        close(dx.sum(axis=1), dx_k.sum(axis=1), "per-channel total")
        assert np.all((dx != 0) <= (x == x.max(axis=1, keepdims=True)))
        close(dx, R.global_max_pool1d_backward(x, gy), "first-max rule")
    else:
        close(dx, dx_k, f"{name} dx")


def test_output_length_matches_keras_table() -> None:
    rows = golden()["pool_lengths"]
    assert len(rows) > 200
    for length, p, s, pad, want in rows.tolist():
        assert kernels.pool1d_output_length(length, p, s, PADDINGS[pad]) == want, (length, p, s, PADDINGS[pad])
        assert len(R.pool1d_windows(length, p, s, PADDINGS[pad])) == want


def test_same_padding_semantics_on_a_ramp() -> None:
    """pool 4, stride 1, 'same' on 6 steps: one padded cell on the left, two on the right, not
    counted by the average and never the max."""
    x = -np.arange(1, 7, dtype=np.float32).reshape(1, 6, 1)  # -1 .. -6: padding (0 or -inf) would win
    np.testing.assert_array_equal(kernels.max_pool1d_forward(x, 4, strides=1, padding="same")[0, :, 0],
                                  [-1, -1, -2, -3, -4, -5])  # fmt: skip
    np.testing.assert_allclose(kernels.avg_pool1d_forward(x, 4, strides=1, padding="same")[0, :, 0],
                               [-2, -2.5, -3.5, -4.5, -5, -5.5])  # fmt: skip


# --- against the reference over drawn problems ------------------------------------------------------


@st.composite
def pool_problems(draw: st.DrawFn) -> dict:
    p = {
        "kind": draw(st.sampled_from(["max", "avg"])),
        "batch": draw(st.sampled_from([0, 1, 2, 3])),
        "length": draw(st.integers(1, 14)),
        "channels": draw(st.sampled_from([1, 2, 3, 5, 17])),
        "pool_size": draw(st.integers(1, 5)),
        "strides": draw(st.sampled_from([None, 1, 2, 3, 4])),
        "padding": draw(st.sampled_from(PADDINGS)),
        "ties": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }
    if p["padding"] == "valid" and p["length"] < p["pool_size"]:
        p["length"] = p["pool_size"] + draw(st.integers(0, 2))
    return p


def make_pool_problem(p: dict):
    rng = np.random.default_rng(p["seed"])
    shape = (p["batch"], p["length"], p["channels"])
    if p["ties"]:
        x = rng.integers(-2, 3, shape).astype(np.float32)
    else:
        x = rng.standard_normal(shape).astype(np.float32)
    out = kernels.pool1d_output_length(p["length"], p["pool_size"], p["strides"], p["padding"])
    dy = rng.standard_normal((p["batch"], out, p["channels"])).astype(np.float32)
    return x, dy


@settings(max_examples=400, deadline=None)
@given(pool_problems())
@example(dict(kind="max", batch=2, length=1, channels=3, pool_size=5, strides=None, padding="same", ties=False, seed=1))
@example(dict(kind="avg", batch=2, length=1, channels=3, pool_size=5, strides=2, padding="same", ties=False, seed=1))
@example(dict(kind="max", batch=1, length=4, channels=1, pool_size=4, strides=1, padding="valid", ties=True, seed=2))
@example(
    dict(kind="avg", batch=0, length=5, channels=2, pool_size=2, strides=None, padding="valid", ties=False, seed=3)
)
def test_pooling_matches_reference(p: dict) -> None:
    x, dy = make_pool_problem(p)
    x0 = x.copy()
    args = (p["pool_size"], p["strides"], p["padding"])
    y, dx = run(p["kind"], x, dy, *args)
    y_ref, dx_ref = reference(p["kind"], x, dy, *args)
    assert y.dtype == dx.dtype == np.float32 and y.flags.c_contiguous
    close(y, y_ref, f"y {p}", exact=p["kind"] == "max")
    close(dx, dx_ref, f"dx {p}")
    np.testing.assert_array_equal(x, x0)


@settings(max_examples=100, deadline=None)
@given(
    kind=st.sampled_from(["global_max", "global_avg"]),
    shape=st.tuples(st.integers(0, 3), st.integers(1, 12), st.integers(1, 9)),
    ties=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_global_pooling_matches_reference(kind: str, shape, ties: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = (rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)).astype(np.float32)
    dy = rng.standard_normal((shape[0], shape[2])).astype(np.float32)
    y, dx = run(kind, x, dy)
    y_ref, dx_ref = reference(kind, x, dy)
    assert y.shape == (shape[0], shape[2])
    close(y, y_ref, "y", exact=kind == "global_max")
    close(dx, dx_ref, "dx")


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(
    ("length", "pool_size", "strides", "padding"),
    [(1000, 3, 1, "same"), (777, 4, 4, "valid"), (600, 5, 2, "same"), (513, 2, 3, "same")],
)
def test_long_sequences_cross_block_boundaries(kind, length, pool_size, strides, padding) -> None:
    p = dict(kind=kind, batch=2, length=length, channels=7, pool_size=pool_size, strides=strides,
             padding=padding, ties=kind == "max", seed=4)  # fmt: skip
    x, dy = make_pool_problem(p)
    y, dx = run(kind, x, dy, pool_size, strides, padding)
    y_ref, dx_ref = reference(kind, x, dy, pool_size, strides, padding)
    close(y, y_ref, "y")
    close(dx, dx_ref, "dx")


def test_max_gradient_goes_to_the_first_of_tied_maxima() -> None:
    x = np.array([[[1.0], [3.0], [3.0], [2.0], [3.0], [0.0]]], np.float32)
    dx = kernels.max_pool1d_backward(x, np.ones((1, 4, 1)), 3, strides=1)
    # windows [1 3 3] and [3 3 2] pick step 1, [3 2 3] picks step 2, [2 3 0] picks step 4
    np.testing.assert_array_equal(dx[0, :, 0], [0, 2, 1, 0, 1, 0])
    dx = kernels.global_max_pool1d_backward(x, np.full((1, 1), 5.0))
    np.testing.assert_array_equal(dx[0, :, 0], [0, 5, 0, 0, 0, 0])


def test_nan_propagates_through_max_pooling() -> None:
    x = np.array([[[1.0, 1.0], [np.nan, 2.0], [5.0, np.nan], [0.0, 0.0]]], np.float32)
    y = kernels.max_pool1d_forward(x, 2, strides=1)
    assert np.isnan(y[0, 0, 0]) and np.isnan(y[0, 1, 0]) and y[0, 2, 0] == 5.0
    assert y[0, 0, 1] == 2.0 and np.isnan(y[0, 1, 1]) and np.isnan(y[0, 2, 1])
    dx = kernels.max_pool1d_backward(x, np.ones((1, 3, 2)), 2, strides=1)
    np.testing.assert_array_equal(dx[0], [[0, 0], [2, 1], [1, 2], [0, 0]])
    assert np.isnan(kernels.global_max_pool1d_forward(x)).all()


# --- finite differences ----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(pool_problems())
def test_gradients_match_finite_differences(p: dict) -> None:
    """Central differences of Σ reference_forward · dy (untied data, so every argmax is stable)."""
    p = {**p, "ties": False, "batch": min(p["batch"], 2)}
    x, dy = make_pool_problem(p)
    args = (p["pool_size"], p["strides"], p["padding"])
    fwd = R.max_pool1d_forward if p["kind"] == "max" else R.avg_pool1d_forward
    xd = x.astype(np.float64)
    num = np.zeros_like(xd)
    h = 1e-6
    for i in np.ndindex(xd.shape):
        old = xd[i]
        xd[i] = old + h
        up = float(np.sum(fwd(xd, *args) * dy))
        xd[i] = old - h
        down = float(np.sum(fwd(xd, *args) * dy))
        xd[i] = old
        num[i] = (up - down) / (2 * h)
    _, dx = run(p["kind"], x, dy, *args)
    np.testing.assert_allclose(dx, num, rtol=1e-5, atol=1e-5)


# --- layouts, SIMD, threads -----------------------------------------------------------------------


def strided(a: np.ndarray) -> np.ndarray:
    base = np.full((a.shape[0], 2 * a.shape[1], a.shape[2]), np.nan, a.dtype)
    base[:, ::2] = a
    return base[:, ::2]


LAYOUTS = {
    "fortran": np.asfortranarray,
    "strided": strided,
    "float64": lambda a: a.astype(np.float64),
    "list": lambda a: a.tolist(),
}
KINDS = ["max", "avg", "global_max", "global_avg"]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("kind", KINDS)
def test_layouts_and_dtypes_give_the_same_result(layout: str, kind: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 3)).astype(np.float32)
    pool = (3, 2, "same") if kind in ("max", "avg") else (None, None, "valid")
    dy_shape = (2, 5, 3) if kind in ("max", "avg") else (2, 3)
    dy = rng.standard_normal(dy_shape).astype(np.float32)
    y, dx = run(kind, x, dy, *pool)
    y2, dx2 = run(kind, LAYOUTS[layout](x), dy if layout == "strided" and dy.ndim == 2 else LAYOUTS[layout](dy), *pool)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(dx2, dx)


def test_simd_levels_and_threads_agree(force_simd) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 600, 19)).astype(np.float32)
    cases = [("max", 3, 2, "same"), ("avg", 4, 1, "same"), ("global_max", None, None, "valid"),
             ("global_avg", None, None, "valid")]  # fmt: skip
    results = []
    before = seqcore.get_num_threads()
    try:
        for level, threads in [("portable", 1), (seqcore.detected_simd_level(), 2), ("portable", 3)]:
            force_simd(level)
            seqcore.set_num_threads(threads)
            out = []
            for kind, ps, s, pad in cases:
                if kind in ("max", "avg"):
                    n = kernels.pool1d_output_length(600, ps, s, pad)
                    dy = np.linspace(-1, 1, 3 * n * 19, dtype=np.float32).reshape(3, n, 19)
                else:
                    dy = np.linspace(-1, 1, 3 * 19, dtype=np.float32).reshape(3, 19)
                out.extend(run(kind, x, dy, ps, s, pad))
            results.append(out)
    finally:
        seqcore.set_num_threads(before)
    for other in results[1:]:
        for a, c in zip(results[0], other, strict=True):
            np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-6)


# --- errors ---------------------------------------------------------------------------------------

X = np.zeros((2, 6, 3), np.float32)


def raises(exc, fn, *args, parts=(), **kw):
    with pytest.raises(exc) as e:
        fn(*args, **kw)
    for part in parts:
        assert part in str(e.value), f"{part!r} not in message: {str(e.value)!r}"


@pytest.mark.parametrize("fn", [kernels.max_pool1d_forward, kernels.avg_pool1d_forward])
def test_pool_errors(fn) -> None:
    op = fn.__name__
    raises(ValueError, fn, X, 0, parts=(op, "pool_size", "0"))
    raises(ValueError, fn, X, 2, strides=-1, parts=(op, "strides", "-1"))
    raises(TypeError, fn, X, 2.5, parts=(op, "pool_size", "integer"))
    raises(ValueError, fn, X, 2, padding="causal", parts=(op, "padding", "Conv1D only"))
    raises(ValueError, fn, X, 7, parts=(op, "6 steps", "pool_size 7", 'padding="same"'))
    raises(ValueError, fn, X[0], 2, parts=(op, "3-D (batch, steps, channels)", "(6, 3)", "x[None]"))
    assert fn(X, 7, padding="same").shape == (2, 1, 3)


@pytest.mark.parametrize("fn", [kernels.max_pool1d_backward, kernels.avg_pool1d_backward])
def test_pool_backward_errors(fn) -> None:
    op = fn.__name__
    raises(ValueError, fn, X, np.zeros((2, 3, 3)), 2, strides=1, parts=(op, "`dy`", "(2, 5, 3)", "(2, 3, 3)"))
    raises(ValueError, fn, X[0], np.zeros((2, 3, 3)), 2, parts=(op, "3-D"))


def test_global_pool_errors() -> None:
    for fn in (kernels.global_max_pool1d_forward, kernels.global_avg_pool1d_forward):
        raises(ValueError, fn, np.zeros((2, 0, 3)), parts=(fn.__name__, "0 steps", "(2, 0, 3)"))
        raises(ValueError, fn, np.zeros((2, 3)), parts=(fn.__name__, "3-D"))
    for fn in (kernels.global_max_pool1d_backward, kernels.global_avg_pool1d_backward):
        raises(ValueError, fn, X, np.zeros((2, 6, 3)), parts=(fn.__name__, "`dy`", "(2, 3)", "(2, 6, 3)"))
        raises(ValueError, fn, np.zeros((2, 0, 3)), np.zeros((2, 3)), parts=(fn.__name__, "0 steps"))


def test_output_length_errors() -> None:
    raises(ValueError, kernels.pool1d_output_length, 3, 4, parts=("pool1d_output_length", "pool_size 4"))
    raises(ValueError, kernels.pool1d_output_length, -1, 2, parts=("length",))
    assert kernels.pool1d_output_length(3, 4, padding="same") == 1
    assert kernels.pool1d_output_length(11, 3) == 3  # strides default to pool_size


def test_raw_extension_rejects_bad_arguments_without_crashing() -> None:
    ext = seqcore._seqcore
    with pytest.raises(ValueError, match="max_pool1d_forward.*causal"):
        ext.pool1d_forward(X, 2, 2, "causal", False)
    with pytest.raises(ValueError, match="avg_pool1d_forward.*pool_size must be a positive"):
        ext.pool1d_forward(X, 0, 2, "valid", True)
    with pytest.raises(ValueError, match="max_pool1d_backward.*dy has shape"):
        ext.max_pool1d_backward(X, np.zeros((2, 2, 3), np.float32), 2, 2, "valid")
    with pytest.raises(ValueError, match="avg_pool1d_backward.*fewer than pool_size"):
        ext.avg_pool1d_backward(np.zeros((2, 1, 3), np.float32), 1, 2, 2, "valid")
    with pytest.raises(ValueError, match="global_avg_pool1d_backward.*0 steps"):
        ext.global_avg_pool1d_backward(np.zeros((2, 3), np.float32), 0)
    with pytest.raises(ValueError, match="global_max_pool1d_forward.*0 steps"):
        ext.global_pool1d_forward(np.zeros((2, 0, 3), np.float32), False)
