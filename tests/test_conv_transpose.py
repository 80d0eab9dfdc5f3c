"""Conv1DTranspose: the adjoint of Conv1D (checked against seqcore's Conv1D kernel over drawn shapes,
strides, dilations, paddings and output paddings, which also covers dilation_rate > 1, where
TensorFlow's CPU kernel has no implementation), gradients by central differences, training,
configs, interop and errors. Keras's numbers are checked in tests/test_layer_goldens.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import seqcore as keras
from hypothesis import given, settings
from hypothesis import strategies as st
from seqcore import interop, kernels

L = keras.layers


@settings(max_examples=60, deadline=None)
@given(b=st.integers(1, 3), steps=st.integers(1, 6), cin=st.integers(1, 3), filters=st.integers(1, 3),
       k=st.integers(1, 4), s=st.integers(1, 3), d=st.integers(1, 3), padding=st.sampled_from(["valid", "same"]),
       op=st.integers(-1, 2), seed=st.integers(0, 2**16))  # fmt: skip
def test_is_the_adjoint_of_conv1d(b: int, steps: int, cin: int, filters: int, k: int, s: int, d: int, padding: str,
                                  op: int, seed: int) -> None:  # fmt: skip
    if s > 1 and d > 1:
        d = 1
    output_padding = None if op < 0 or op >= s else op
    if padding == "same" and output_padding == 0 and ((k - 1) * d + 1) % 2 == 0:
        output_padding = None  # refused (as TensorFlow refuses it): see test_errors
    rng = np.random.default_rng(seed)
    layer = L.Conv1DTranspose(filters, k, strides=s, padding=padding, output_padding=output_padding, dilation_rate=d,
                              use_bias=False)  # fmt: skip
    x = rng.normal(size=(b, steps, cin)).astype(np.float32)
    layer(x)  # builds the kernel
    y, call = layer.apply(x, training=True)
    assert y.shape[1:] == layer.compute_output_shape((steps, cin))
    kern = layer.kernel.value  # (k, filters, cin): as a Conv1D kernel it maps filters -> cin
    z = rng.normal(size=y.shape).astype(np.float32)
    conv = kernels.conv1d_forward(z, kern, None, strides=s, padding=padding, dilation_rate=d)
    assert conv.shape == x.shape
    lhs = float(np.sum(y.astype(np.float64) * z))
    rhs = float(np.sum(x.astype(np.float64) * conv))
    assert abs(lhs - rhs) <= 1e-4 * (1 + abs(lhs))
    # backward: dx is the convolution of dy, and dkernel matches central differences
    dx = layer.unapply(call, z)
    np.testing.assert_allclose(dx, conv, rtol=1e-4, atol=1e-5)
    num = np.zeros_like(kern, dtype=np.float64)
    base = kern.copy()
    for i in np.ndindex(kern.shape):
        for sign in (1, -1):
            layer.kernel.value[...] = base
            layer.kernel.value[i] += sign * 1e-2
            num[i] += sign * float(np.sum(layer(x).astype(np.float64) * z)) / 2e-2
    layer.kernel.value[...] = base
    np.testing.assert_allclose(layer.kernel.grad, num, rtol=1e-3, atol=1e-3)


def test_trains_in_an_autoencoder_and_round_trips(tmp_path: Any) -> None:
    model = keras.Sequential([
        keras.Input((16, 2)),
        L.Conv1D(4, 3, strides=2, padding="same", activation="relu"),
        L.Conv1DTranspose(2, 3, strides=2, padding="same"),
    ])  # fmt: skip
    assert model.output_shape == (None, 16, 2)
    x = np.sin(np.linspace(0, 12, 16 * 2 * 32)).reshape(32, 16, 2).astype(np.float32)
    model.compile("adam", "mse")
    before = model.evaluate(x, x, verbose=0)
    model.fit(x, x, epochs=20, verbose=0)
    assert model.evaluate(x, x, verbose=0) < before
    model.save(tmp_path / "m.seqcore")
    again = keras.models.load_model(tmp_path / "m.seqcore")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    cfg = interop.keras_config(model)["config"]["layers"][2]
    assert cfg["class_name"] == "Conv1DTranspose" and cfg["config"]["kernel_size"] == [3]


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"`strides > 1` not supported in conjunction with `dilation_rate > 1`"):
        L.Conv1DTranspose(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match=r"`output_padding` must be strictly less than `strides`"):
        L.Conv1DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match=r"padding='same' with output_padding=0 and an even \(dilated\) kernel size 4"):
        L.Conv1DTranspose(2, 4, strides=2, padding="same", output_padding=0)
    with pytest.raises(ValueError, match=r"padding must be 'valid' or 'same'"):
        L.Conv1DTranspose(2, 3, padding="causal")
    with pytest.raises(ValueError, match=r"Conv1DTranspose 'c': expects \(batch, steps, channels\) inputs"):
        L.Conv1DTranspose(2, 3, name="c")(keras.Input((4,)))
