"""SpatialDropout1D, GaussianNoise, GaussianDropout, AlphaDropout and ActivityRegularization: the
identity at inference; in training, Keras's formulas checked exactly on the draw each call kept
(its gradient is that draw's) and statistically over many draws (rates, moments, whole channels
dropped); seeding; the activity penalty; configs, interop and errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import seqcore as keras
from seqcore import layers as L


def train(layer: Any, x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, call = layer.apply(x, training=True)
    return y, layer.unapply(call, dy)


@pytest.mark.parametrize(
    "layer",
    [
        L.SpatialDropout1D(0.3),
        L.GaussianNoise(0.5),
        L.GaussianDropout(0.3),
        L.AlphaDropout(0.2),
        L.ActivityRegularization(0.1, 0.2),
    ],  # fmt: skip
    ids=lambda lyr: type(lyr).__name__,
)
def test_identity_at_inference(layer: Any) -> None:
    x = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, training=False), x)


def test_spatial_dropout_drops_whole_channels() -> None:
    keras.utils.set_random_seed(1)
    x = np.random.default_rng(0).normal(size=(400, 6, 8)).astype(np.float32) + 3
    dy = np.ones_like(x)
    y, dx = train(L.SpatialDropout1D(0.25), x, dy)
    ratio = y / x
    # per (sample, channel): 0 at every step, or 1/(1-rate) at every step
    assert np.allclose(ratio, ratio[:, :1, :])
    values = np.unique(ratio)
    assert np.all(np.isclose(values, 0.0) | np.isclose(values, 1 / 0.75, rtol=1e-5))
    assert abs(float((ratio[:, 0] == 0).mean()) - 0.25) < 0.02
    np.testing.assert_allclose(dx, ratio, rtol=1e-6)


def test_gaussian_noise_and_dropout_moments_and_gradients() -> None:
    keras.utils.set_random_seed(2)
    x = np.full((200, 50, 4), 2.0, np.float32)
    dy = np.random.default_rng(1).normal(size=x.shape).astype(np.float32)
    y, dx = train(L.GaussianNoise(0.5), x, dy)
    noise = y - x
    assert abs(float(noise.mean())) < 0.01 and abs(float(noise.std()) - 0.5) < 0.01
    np.testing.assert_array_equal(dx, dy)
    y, dx = train(L.GaussianDropout(0.2), x, dy)
    factor = y / x
    assert abs(float(factor.mean()) - 1) < 0.01 and abs(float(factor.std()) - np.sqrt(0.2 / 0.8)) < 0.01
    np.testing.assert_allclose(dx, dy * factor, rtol=1e-5, atol=1e-6)


def test_alpha_dropout_formula_and_selu_moments() -> None:
    keras.utils.set_random_seed(3)
    rate = 0.2
    alpha_p = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    b = -a * alpha_p * rate
    # SELU outputs have zero mean and unit variance for standard normal inputs; AlphaDropout keeps them
    z = np.random.default_rng(0).normal(size=(400_000,))
    selu = 1.0507009873554804934193349852946 * np.where(z > 0, z, 1.6732632423543772848170429916717 * np.expm1(z))
    x = selu.astype(np.float32).reshape(1000, 400)
    dy = np.ones_like(x)
    y, dx = train(L.AlphaDropout(rate), x, dy)
    dropped = np.isclose(y, a * alpha_p + b, atol=1e-6) & ~np.isclose(x * a + b, a * alpha_p + b, atol=1e-6)
    assert abs(float(dropped.mean()) - rate) < 0.01
    np.testing.assert_allclose(y[~dropped], (a * x + b)[~dropped], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx[~dropped], a, rtol=1e-6)
    assert np.all(dx[dropped] == 0)
    assert abs(float(y.mean())) < 0.01 and abs(float(y.var()) - 1) < 0.02


def test_seeded_layers_repeat_their_draws() -> None:
    x = np.ones((4, 5, 3), np.float32)
    for make in (lambda: L.SpatialDropout1D(0.5, seed=7), lambda: L.GaussianNoise(1.0, seed=7),
                 lambda: L.GaussianDropout(0.5, seed=7), lambda: L.AlphaDropout(0.5, seed=7)):  # fmt: skip
        np.testing.assert_array_equal(make()(x, training=True), make()(x, training=True))


def test_activity_regularization_adds_its_penalty() -> None:
    x = np.random.default_rng(4).normal(size=(5, 3)).astype(np.float32)
    m = keras.Sequential([keras.Input((3,)), L.ActivityRegularization(l1=0.1, l2=0.2, name="act"), L.Dense(1,
                          kernel_initializer="zeros")])  # fmt: skip
    m.compile("sgd", "mse")
    loss = m.evaluate(x, np.zeros((5, 1), np.float32), verbose=0)
    want = (0.1 * np.abs(x).sum() + 0.2 * (x.astype(np.float64) ** 2).sum()) / 5  # per sample, as Keras
    assert abs(loss - want) < 1e-5
    assert (
        m.get_layer("act").get_config()["l1"] == 0.1 and "activity_regularizer" not in m.get_layer("act").get_config()
    )


def test_in_a_model_configs_and_errors(tmp_path: Any) -> None:
    m = keras.Sequential([keras.Input((6, 3)), L.SpatialDropout1D(0.2), L.GaussianNoise(0.1), L.GaussianDropout(0.1),
                          L.AlphaDropout(0.1), L.LSTM(2)])  # fmt: skip
    m.compile("adam", "mse")
    x = np.random.default_rng(5).normal(size=(8, 6, 3)).astype(np.float32)
    m.fit(x, np.zeros((8, 2), np.float32), epochs=2, verbose=0)
    m.save(tmp_path / "m.seqcore")
    again = keras.models.load_model(tmp_path / "m.seqcore")
    np.testing.assert_array_equal(again.predict(x, verbose=0), m.predict(x, verbose=0))
    with pytest.raises(ValueError, match=r"SpatialDropout1D 's': rate must be a float in \[0, 1\)"):
        L.SpatialDropout1D(1.0, name="s")
    with pytest.raises(ValueError, match=r"stddev must be a float >= 0"):
        L.GaussianNoise(-1)
    with pytest.raises(ValueError, match=r"SpatialDropout1D 's': expects \(batch, steps, channels\) inputs"):
        L.SpatialDropout1D(0.1, name="s")(keras.Input((3,)))
