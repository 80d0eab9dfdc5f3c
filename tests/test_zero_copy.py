"""No copies: C-contiguous float32 input is used in place, and results are written straight into
the arrays returned (or into `out=`).

NumPy reports its data allocations to tracemalloc, so the peak traced memory during a call is an
upper bound on what the call allocated through NumPy, converted copies included. (Rust-side scratch is
not traced, but the forward kernels use none.) The float64 and Fortran-order controls show that a
converted copy does show up, so these tests can fail.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from seqcore import kernels
from seqcore._validation import as_f32

SLACK = 64 * 1024  # Python objects (the result array header, tuples) and tracemalloc noise


def peak_allocation(fn, *args, **kwargs):
    """(result, peak bytes traced while fn ran)."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.clear_traces()
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        result = fn(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return result, peak - base


@pytest.fixture(scope="module")
def big():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 200, 256)).astype(np.float32)  # 13 MB
    k = (rng.standard_normal((256, 8)) / 16).astype(np.float32)  # units 8: the output is 410 kB
    b = rng.standard_normal(8).astype(np.float32)
    kernels.dense_forward(x[:1], k, b)  # warm up: pool creation, first-call allocations
    return x, k, b


def test_dense_forward_uses_c_float32_input_in_place(big):
    x, k, b = big
    y, peak = peak_allocation(kernels.dense_forward, x, k, b, "relu")
    assert y.shape == (64, 200, 8)
    assert peak <= y.nbytes + SLACK, f"allocated {peak} bytes for a {y.nbytes}-byte output"
    assert peak < x.nbytes / 10


def test_read_only_input_is_used_in_place(big):
    x, k, b = big
    xr = x.view()
    xr.flags.writeable = False
    y, peak = peak_allocation(kernels.dense_forward, xr, k, b)
    assert peak <= y.nbytes + SLACK
    np.testing.assert_array_equal(y, kernels.dense_forward(x, k, b))


@pytest.mark.parametrize(
    "convert",
    [lambda a: a.astype(np.float64), np.asfortranarray, lambda a: np.ascontiguousarray(a[::-1])[::-1]],
    ids=["float64", "fortran", "negative-stride"],
)
def test_converted_input_does_allocate_a_copy(big, convert):
    x, k, b = big
    xc = convert(x)
    y, peak = peak_allocation(kernels.dense_forward, xc, k, b, "relu")
    # the float32 C-contiguous copy of x (13 MB) is made, so the measurement can see one
    assert peak >= x.nbytes
    np.testing.assert_array_equal(y, kernels.dense_forward(x, k, b, "relu"))


def test_dense_backward_copies_no_input(big):
    x, k, b = big
    y = kernels.dense_forward(x, k, b, "tanh")
    dy = np.ones_like(y)
    g, peak = peak_allocation(kernels.dense_backward, x, k, y, dy, "tanh")
    produced = g.dx.nbytes + g.dkernel.nbytes + g.dbias.nbytes
    assert peak <= produced + SLACK, f"allocated {peak} bytes for {produced} bytes of gradients"
    # and without dx, almost nothing
    g, peak = peak_allocation(kernels.dense_backward, x, k, y, dy, "tanh", need_dx=False)
    assert g.dx is None
    assert peak <= SLACK


def test_activation_and_mse_copy_no_input(big):
    x, _, _ = big
    y, peak = peak_allocation(kernels.activation, x, "sigmoid")
    assert y.shape == x.shape and peak <= y.nbytes + SLACK
    (loss, grad), peak = peak_allocation(kernels.mse, x, x)
    assert loss == 0.0 and peak <= grad.nbytes + SLACK
    _, peak = peak_allocation(kernels.activation, x.astype(np.float64), "sigmoid")
    # control: the float32 copy of a float64 input is a NumPy allocation (outputs come from
    # seqcore's buffer pool, which tracemalloc does not see)
    assert peak >= x.nbytes


def test_sgd_update_is_in_place(big):
    x, _, _ = big
    p = x.copy()
    g = np.ones_like(p)
    address = p.__array_interface__["data"][0]
    result, peak = peak_allocation(kernels.sgd_update, p, g, 0.5)
    assert result is None
    assert p.__array_interface__["data"][0] == address
    assert peak <= SLACK
    np.testing.assert_array_equal(p, x - np.float32(0.5))


# --- as_f32 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a",
    [
        np.zeros((3, 4), np.float32),
        np.zeros((2, 3, 4), np.float32),
        np.zeros(0, np.float32),
        np.array(1.0, np.float32),
    ],
    ids=["2-D", "3-D", "empty", "0-D"],
)
def test_as_f32_returns_c_float32_itself(a):
    assert as_f32(a, "op", "x") is a
    a.flags.writeable = False
    assert as_f32(a, "op", "x") is a


def test_as_f32_views_are_passed_through():
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    view = base[1:3]  # C-contiguous view: no copy either
    assert as_f32(view, "op", "x") is view


@pytest.mark.parametrize(
    "make",
    [
        np.asfortranarray,
        lambda a: a[:, ::2],
        lambda a: a.astype(np.float64),
        lambda a: a.astype(np.int16),
        lambda a: a.astype(">f4"),
        lambda a: a.tolist(),
    ],
    ids=["fortran", "strided", "float64", "int16", "big-endian", "list"],
)
def test_as_f32_converts_everything_else_once(make):
    a = np.arange(24, dtype=np.float32).reshape(4, 6)
    src = make(a)
    out = as_f32(src, "op", "x")
    assert out is not src
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, np.asarray(src, dtype=np.float64))
    if isinstance(src, np.ndarray):
        assert not np.shares_memory(out, src)


# --- out= ------------------------------------------------------------------------------------------


def test_out_is_returned_and_written(big):
    x, k, b = big
    out = np.full((64, 200, 8), np.nan, np.float32)
    res, peak = peak_allocation(kernels.dense_forward, x, k, b, "sigmoid", out=out)
    assert res is out
    assert peak <= SLACK  # nothing allocated: the kernel wrote into `out`
    np.testing.assert_array_equal(out, kernels.dense_forward(x, k, b, "sigmoid"))


@pytest.mark.parametrize("act", ["linear", "softmax"])
def test_out_garbage_is_ignored_without_bias(act):
    # without a bias the GEMM must overwrite `out`, not accumulate onto what it held (NaN here)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 7, 5)).astype(np.float32)
    k = rng.standard_normal((5, 4)).astype(np.float32)
    out = np.full((3, 7, 4), np.nan, np.float32)
    assert kernels.dense_forward(x, k, None, act, out=out) is out
    np.testing.assert_array_equal(out, kernels.dense_forward(x, k, None, act))


def test_out_can_be_a_view_of_a_bigger_buffer():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    k = rng.standard_normal((5, 3)).astype(np.float32)
    buf = np.zeros((10, 3), np.float32)
    out = buf[2:8]  # C-contiguous view
    assert kernels.dense_forward(x, k, out=out) is out
    assert np.shares_memory(out, buf)
    np.testing.assert_array_equal(buf[2:8], kernels.dense_forward(x, k))
    np.testing.assert_array_equal(buf[:2], 0)  # nothing outside the view touched
    np.testing.assert_array_equal(buf[8:], 0)


def test_out_overlapping_an_input_raises():
    buf = np.ones(64, np.float32)
    x = buf[:24].reshape(6, 4)
    k = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="dense_forward.*overlap"):
        kernels.dense_forward(x, k, out=x)
    with pytest.raises(ValueError, match="dense_forward.*overlap"):
        kernels.dense_forward(x, k, out=buf[20:44].reshape(6, 4))  # partial overlap with x
    kk = buf[40:56].reshape(4, 4)
    with pytest.raises(ValueError, match="dense_forward.*overlap"):
        kernels.dense_forward(np.ones((4, 4), np.float32), kk, out=buf[48:64].reshape(4, 4))
    b = buf[60:64]
    with pytest.raises(ValueError, match="dense_forward.*overlap"):
        kernels.dense_forward(np.ones((1, 4), np.float32), k, b, out=buf[60:64].reshape(1, 4))
    # the same buffer, disjoint regions: allowed
    out = buf[24:48].reshape(6, 4)
    assert kernels.dense_forward(x, k, out=out) is out
    np.testing.assert_array_equal(out, 4.0)
