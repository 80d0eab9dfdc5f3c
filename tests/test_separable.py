"""DepthwiseConv1D and SeparableConv1D: equal to the grouped and pointwise Conv1D they are built from
(a float64 reference with central-difference gradients over drawn shapes), training, saving,
interop configs and errors. Keras's numbers are checked in tests/test_layer_goldens.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import seqcore as keras
from hypothesis import given, settings
from hypothesis import strategies as st
from seqcore import interop

L = keras.layers


def ref_depthwise(x: np.ndarray, k: np.ndarray, stride: int, dil: int, pad_left: int, out_len: int) -> np.ndarray:
    """float64: out[b, t, c*m + j] = Σ_i x[b, t*stride + i*dil - pad_left, c] * k[i, c, j]."""
    b, steps, c = x.shape
    ks, _, m = k.shape
    out = np.zeros((b, out_len, c * m))
    for t in range(out_len):
        for i in range(ks):
            s = t * stride + i * dil - pad_left
            if 0 <= s < steps:
                out[:, t] += (x[:, s, :, None] * k[i][None]).reshape(b, c * m)
    return out


def num_grad(f: Any, a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    a = a.astype(np.float64)
    g = np.zeros_like(a)
    flat, gf = a.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + eps
        up = f(a)
        flat[i] = keep - eps
        down = f(a)
        flat[i] = keep
        gf[i] = (up - down) / (2 * eps)
    return g


@settings(max_examples=40, deadline=None)
@given(steps=st.integers(3, 8), c=st.integers(1, 3), m=st.integers(1, 2), ks=st.integers(1, 3),
       stride=st.integers(1, 2), padding=st.sampled_from(["valid", "same"]), seed=st.integers(0, 2**16))  # fmt: skip
def test_separable_matches_the_float64_reference(steps: int, c: int, m: int, ks: int, stride: int, padding: str,
                                                 seed: int) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, steps, c)).astype(np.float32)
    layer = L.SeparableConv1D(3, ks, strides=stride, padding=padding, depth_multiplier=m)
    y0 = layer(x)
    dk, pk = layer.depthwise_kernel.value, layer.pointwise_kernel.value
    out_len = y0.shape[1]
    pad_left = max((out_len - 1) * stride + ks - steps, 0) // 2 if padding == "same" else 0

    def f(v: np.ndarray, d: np.ndarray = dk, p: np.ndarray = pk) -> np.ndarray:
        return ref_depthwise(v, d.astype(np.float64), stride, 1, pad_left, out_len) @ p[0].astype(np.float64)

    np.testing.assert_allclose(y0, f(x.astype(np.float64)), rtol=1e-5, atol=1e-5)
    dy = rng.normal(size=y0.shape).astype(np.float32)
    for w in layer.weights:
        w.grad = None
    y, call = layer.apply(x, training=True)
    dx = layer.unapply(call, dy)
    np.testing.assert_allclose(dx, num_grad(lambda v: float((f(v) * dy).sum()), x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.depthwise_kernel.grad, num_grad(lambda v: float((f(x, d=v) * dy).sum()), dk),
                               rtol=1e-4, atol=1e-4)  # fmt: skip
    np.testing.assert_allclose(layer.pointwise_kernel.grad, num_grad(lambda v: float((f(x, p=v) * dy).sum()), pk),
                               rtol=1e-4, atol=1e-4)  # fmt: skip


def test_depthwise_is_one_group_per_channel_and_trains(tmp_path: Any) -> None:
    x = np.random.default_rng(0).normal(size=(4, 10, 3)).astype(np.float32)
    dw = L.DepthwiseConv1D(3, depth_multiplier=2)
    y = dw(x)
    want = ref_depthwise(x.astype(np.float64), dw.kernel.value.astype(np.float64), 1, 1, 0, 8) + dw.bias.value
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    model = keras.Sequential([keras.Input((10, 3)), L.DepthwiseConv1D(3, padding="same"), L.SeparableConv1D(4, 3),
                              L.GlobalAveragePooling1D(), L.Dense(1)])  # fmt: skip
    model.compile("adam", "mse")
    yt = x.mean(axis=(1, 2))[:, None]
    before = model.evaluate(x, yt, verbose=0)
    model.fit(x, yt, epochs=20, verbose=0)
    assert model.evaluate(x, yt, verbose=0) < before
    model.save(tmp_path / "m.seqcore")
    again = keras.models.load_model(tmp_path / "m.seqcore")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    kinds = [e["class_name"] for e in interop.keras_config(model)["config"]["layers"][1:3]]
    assert kinds == ["DepthwiseConv1D", "SeparableConv1D"]


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"`strides > 1` not supported in conjunction with `dilation_rate > 1`"):
        L.SeparableConv1D(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match=r"DepthwiseConv1D 'd': padding must be 'valid' or 'same'"):
        L.DepthwiseConv1D(3, padding="causal", name="d")
    with pytest.raises(ValueError, match=r"depth_multiplier"):
        L.DepthwiseConv1D(3, depth_multiplier=0)
