"""seqcore.ops.gelu (tanh and exact forms) and seqcore.ops.leaky_relu (any slope): values against a
float64 reference, gradients in a graph against central differences, and the op's config."""

from __future__ import annotations

import math

import numpy as np
import pytest
import seqcore
from seqcore import ops

X = np.concatenate([np.linspace(-5, 5, 37), [-1e-3, 0.0, 1e-3]]).astype(np.float32)


def gelu_ref(x: np.ndarray, approximate: bool) -> np.ndarray:
    w = x.astype(np.float64)
    if approximate:
        return 0.5 * w * (1 + np.tanh(math.sqrt(2 / math.pi) * (w + 0.044715 * w**3)))
    return np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in w.ravel()]).reshape(w.shape)


def grad_in_graph(f, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    inp = seqcore.Input(x.shape)
    m = seqcore.Model(inp, f(inp))
    _, ctx = m.forward(x[None], training=True)
    return m.backward(ctx, np.ones((1, *x.shape), np.float32))[0]


@pytest.mark.parametrize("approximate", [True, False])
def test_gelu(approximate: bool) -> None:
    np.testing.assert_allclose(ops.gelu(X, approximate=approximate), gelu_ref(X, approximate), rtol=1e-6, atol=1e-7)
    g = grad_in_graph(lambda t: ops.gelu(t, approximate=approximate), X)
    eps = 1e-4
    fd = (gelu_ref(X.astype(np.float64) + eps, approximate) - gelu_ref(X.astype(np.float64) - eps, approximate)) / (
        2 * eps
    )
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-5)


def test_gelu_defaults_to_the_tanh_form_as_keras_ops() -> None:
    np.testing.assert_allclose(ops.gelu(X), gelu_ref(X, True), rtol=1e-6, atol=1e-7)
    assert np.abs(gelu_ref(X, True) - gelu_ref(X, False)).max() > 1e-4  # the two forms differ


@pytest.mark.parametrize("slope", [0.2, 0.01, -0.5, 1.7])
def test_leaky_relu_any_slope(slope: float) -> None:
    want = np.where(X > 0, X, slope * X.astype(np.float64))
    np.testing.assert_allclose(ops.leaky_relu(X, negative_slope=slope), want, rtol=1e-6)
    g = grad_in_graph(lambda t: ops.leaky_relu(t, negative_slope=slope), X)
    np.testing.assert_allclose(g, np.where(X > 0, 1.0, slope), rtol=1e-6)


def test_options_survive_a_config_round_trip() -> None:
    inp = seqcore.Input((5,))
    out = ops.gelu(inp, approximate=False) + ops.leaky_relu(inp, negative_slope=0.3)
    m = seqcore.Model(inp, out)
    again = seqcore.models.Functional.from_config(m.get_config())
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    np.testing.assert_allclose(again.predict(x), m.predict(x))
    np.testing.assert_allclose(m.predict(x), gelu_ref(x, False) + np.where(x > 0, x, 0.3 * x), rtol=1e-5, atol=1e-6)
