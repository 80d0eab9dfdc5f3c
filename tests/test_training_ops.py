"""`kernels.mse` and `kernels.sgd_update` against the reference, and a short training loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqcore import kernels, reference

EPS32 = float(np.finfo(np.float32).eps)

dim = st.one_of(st.just(1), st.integers(2, 9))


@st.composite
def shapes(draw, min_rank=0, max_rank=4, allow_empty=False):
    rank = draw(st.integers(min_rank, max_rank))
    d = st.one_of(st.just(0), dim) if allow_empty else dim
    return tuple(draw(st.lists(d, min_size=rank, max_size=rank)))


def randn(rng, shape, scale=1.0):
    return np.asarray(rng.standard_normal(shape) * scale, dtype=np.float32)


LAYOUTS = {
    "fortran": np.asfortranarray,
    "negative_stride": lambda a: np.ascontiguousarray(a[::-1])[::-1] if a.ndim else a,
    "float64": lambda a: a.astype(np.float64),
    "list": lambda a: a.tolist(),
}


# --- mse -------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    shape=shapes(),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    seed=st.integers(0, 2**32 - 1),
    layout=st.sampled_from(sorted(LAYOUTS)),
    which=st.sampled_from(["pred", "target"]),
)
def test_mse_matches_reference(shape, scale, seed, layout, which):
    rng = np.random.default_rng(seed)
    p, t = randn(rng, shape, scale), randn(rng, shape, scale)
    p0, t0 = p.copy(), t.copy()

    loss, grad = kernels.mse(p, t)

    assert isinstance(loss, float)
    assert isinstance(grad, np.ndarray) and grad.dtype == np.float32 and grad.shape == p.shape
    want_loss, want_grad = reference.mse(p, t)
    n = max(p.size, 1)
    # strips of float32 sums (<= 256 terms) accumulated in float64
    assert loss == pytest.approx(want_loss, rel=4 * EPS32 * math.sqrt(min(n, 256)) + 1e-7)
    np.testing.assert_allclose(grad, want_grad, rtol=4 * EPS32, atol=0)
    np.testing.assert_array_equal(p, p0)
    np.testing.assert_array_equal(t, t0)

    if shape == ():
        return  # 0-d non-float32 inputs are the as_f32 bug: test_mse_zero_d_mixed_dtypes
    args = {"pred": p, "target": t}
    args[which] = LAYOUTS[layout](args[which])
    loss_v, grad_v = kernels.mse(args["pred"], args["target"])
    assert loss_v == pytest.approx(loss, rel=1e-12)
    np.testing.assert_array_equal(grad_v, grad)


@pytest.mark.parametrize("n", [255, 256, 257, 16_383, 16_384, 16_385, 50_001, 300_007])
def test_mse_large_and_chunk_edges(n):
    # lengths around the 256-element strips and the 16384-element parallel chunks
    rng = np.random.default_rng(n)
    p, t = randn(rng, n), randn(rng, n)
    loss, grad = kernels.mse(p, t)
    want_loss, want_grad = reference.mse(p, t)
    assert loss == pytest.approx(want_loss, rel=1e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=4 * EPS32, atol=0)


def test_mse_of_equal_arrays_is_zero():
    x = randn(np.random.default_rng(0), (7, 9))
    loss, grad = kernels.mse(x, x)
    assert loss == 0.0
    np.testing.assert_array_equal(grad, 0.0)


def test_mse_zero_d_mixed_dtypes():
    loss, grad = kernels.mse(np.array(2.0, np.float32), np.array(1.0))
    assert loss == 1.0 and grad.shape == ()


# --- sgd_update ------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    shape=shapes(min_rank=1, allow_empty=True),
    lr=st.one_of(st.sampled_from([0.0, 1.0, 0.1, -0.5]), st.floats(-10, 10, allow_nan=False, width=32)),
    seed=st.integers(0, 2**32 - 1),
    layout=st.sampled_from(sorted(LAYOUTS)),
)
def test_sgd_update_in_place(shape, lr, seed, layout):
    rng = np.random.default_rng(seed)
    p, g = randn(rng, shape), randn(rng, shape, 3.0)
    p_before, g0 = p.copy(), g.copy()
    address = p.__array_interface__["data"][0]

    assert kernels.sgd_update(p, g, lr) is None

    assert p.__array_interface__["data"][0] == address and p.dtype == np.float32
    lr32 = float(np.float32(lr))  # the kernel's learning rate is float32
    want = p_before.astype(np.float64) - lr32 * g.astype(np.float64)
    # one or two roundings (FMA or not) of numbers of size |p| + |lr * g|
    tol = 2 * EPS32 * (np.abs(p_before) + np.abs(lr32 * g0.astype(np.float64)))
    assert np.all(np.abs(p - want) <= tol), np.abs(p - want).max()
    np.testing.assert_array_equal(g, g0)

    if layout == "list" and p.size == 0:
        return  # a nested list cannot hold a 0 in a leading axis
    q = p_before.copy()
    kernels.sgd_update(q, LAYOUTS[layout](g0), lr)
    np.testing.assert_array_equal(q, p)


@pytest.mark.parametrize("n", [32_767, 32_768, 32_769, 100_003])
def test_sgd_update_chunk_edges(n):
    rng = np.random.default_rng(n)
    p, g = randn(rng, n), randn(rng, n)
    want = p.astype(np.float64) - 0.25 * g
    kernels.sgd_update(p, g, 0.25)
    np.testing.assert_allclose(p, want, rtol=0, atol=4 * EPS32 * (1 + np.abs(want).max()))


def test_sgd_update_zero_d_param():
    p = np.array(1.0, np.float32)
    kernels.sgd_update(p, np.array(0.5, np.float32), 0.1)
    assert p.shape == () and p == pytest.approx(0.95, rel=1e-7)


@pytest.mark.parametrize("grad", [0.5, np.array(0.5)], ids=["float", "f64_0d"])
def test_sgd_update_zero_d_param_with_scalar_grad(grad):
    p = np.array(1.0, np.float32)
    kernels.sgd_update(p, grad, 0.1)
    assert p == pytest.approx(0.95, rel=1e-7)


# --- end to end ------------------------------------------------------------------------------------


def train(act, steps=30, lr=0.5, seed=0):
    rng = np.random.default_rng(seed)
    x = randn(rng, (32, 6, 8))
    true_k, true_b = randn(rng, (8, 3), 0.5), randn(rng, 3, 0.5)
    target = reference.activation(x.astype(np.float64) @ true_k + true_b, act).astype(np.float32)
    k = randn(rng, (8, 3), 0.1)
    b = np.zeros(3, np.float32)
    losses = []
    for _ in range(steps):
        y = kernels.dense_forward(x, k, b, act)
        loss, dy = kernels.mse(y, target)
        grads = kernels.dense_backward(x, k, y, dy, act)
        kernels.sgd_update(k, grads.dkernel, lr)
        kernels.sgd_update(b, grads.dbias, lr)
        losses.append(loss)
    return losses, (x, k, b, target)


@pytest.mark.parametrize(("act", "factor"), [("linear", 1e-5), ("tanh", 0.05), ("sigmoid", 0.05)])
def test_training_reduces_loss(act, factor):
    lr = {"linear": 0.5, "tanh": 0.5, "sigmoid": 4.0}[act]
    losses, _ = train(act, lr=lr)
    assert losses[-1] < factor * losses[0], losses
    # gradient descent on a smooth loss with a safe step: every step helps
    assert all(b <= a * (1 + 1e-6) for a, b in zip(losses, losses[1:], strict=False)), losses


def test_one_step_matches_reference_gradient_step():
    rng = np.random.default_rng(5)
    x, target = randn(rng, (4, 5, 6)), randn(rng, (4, 5, 2))
    k, b = randn(rng, (6, 2)), randn(rng, 2)
    k0, b0 = k.copy(), b.copy()
    y = kernels.dense_forward(x, k, b, "tanh")
    _, dy = kernels.mse(y, target)
    g = kernels.dense_backward(x, k, y, dy, "tanh")
    kernels.sgd_update(k, g.dkernel, 0.1)
    kernels.sgd_update(b, g.dbias, 0.1)

    _, dy_ref = reference.mse(reference.dense_forward(x, k0, b0, "tanh"), target)
    _, dk_ref, db_ref = reference.dense_backward(x, k0, b0, dy_ref, "tanh")
    np.testing.assert_allclose(k, k0 - 0.1 * dk_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b, b0 - 0.1 * db_ref, rtol=1e-5, atol=1e-6)
