"""MAPE, MSLE and log-cosh (losses and metrics), Keras's class names and function forms as loss
identifiers, and the message for a custom loss function.

Goldens from Keras 3.15.1 / TF 2.21, generated once with (CI needs neither):

    import numpy as np, keras, tensorflow as tf
    yt = np.array([[0.5, -1.25, 2.0], [0.0, 3.0, -0.75]], np.float32)
    yp = np.array([[0.25, -1.0, 2.5], [0.125, 2.5, 0.5]], np.float32)
    sw = np.array([1.0, 2.5], np.float32)
    for cls in (keras.losses.MeanAbsolutePercentageError, keras.losses.MeanSquaredLogarithmicError,
                keras.losses.LogCosh):
        p = tf.Variable(yp)
        with tf.GradientTape() as tape:
            v = cls()(yt, p, sample_weight=sw)
        print(cls.__name__, float(v), tape.gradient(v, p).numpy().tolist())
    for name in ("mape", "msle"):
        m = keras.metrics.get(name); m.update_state(yt, yp, sample_weight=sw); print(name, float(m.result()))
    m = keras.metrics.LogCoshError(); m.update_state(yt, yp); print("logcosh", float(m.result()))
"""

from __future__ import annotations

import numpy as np
import pytest
import seqcore as keras
from hypothesis import given, settings
from hypothesis import strategies as st
from seqcore import losses, metrics

YT = np.array([[0.5, -1.25, 2.0], [0.0, 3.0, -0.75]], np.float32)
YP = np.array([[0.25, -1.0, 2.5], [0.125, 2.5, 0.5]], np.float32)
SW = np.array([1.0, 2.5], np.float32)

GOLDEN = {
    "mape": (52083420.0, [[-33.33333206176758, 13.333333015441895, 8.333333015441895],
                          [416666688.0, -13.88888931274414, 55.55555725097656]]),
    "msle": (0.09121114015579224, [[-0.04861908033490181, 0.0, 0.014681011438369751],
                                   [0.0872466042637825, -0.031793203204870224, 0.22525832056999207]]),
    "log_cosh": (0.34851619601249695, [[-0.04081977903842926, 0.04081977903842926, 0.07701952755451202],
                                       [0.051813751459121704, -0.19254884123802185, 0.35345152020454407]]),
}  # fmt: skip
METRIC_GOLDEN = {"mape": 29761954.0, "msle": 0.05212065204977989}
LOGCOSH_METRIC = 0.1576038897037506


@pytest.mark.parametrize("name", ["mape", "msle", "log_cosh"])
def test_losses_match_keras(name: str) -> None:
    value, grad = losses.get(name)(YT, YP, SW)
    want_v, want_g = GOLDEN[name]
    assert value == pytest.approx(want_v, rel=2e-6)
    np.testing.assert_allclose(grad, np.array(want_g, np.float32), rtol=2e-6, atol=1e-8)


def test_metrics_match_keras() -> None:
    for name, want in METRIC_GOLDEN.items():
        m = metrics.get(name)
        m.update_state(YT, YP, SW)
        assert m.result() == pytest.approx(want, rel=2e-6), name
    m = metrics.LogCoshError()
    m.update_state(YT, YP)
    assert m.name == "logcosh" and m.result() == pytest.approx(LOGCOSH_METRIC, rel=1e-6)


def _reference(name: str, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per-sample values in float64, written from Keras's formulas."""
    if name == "mape":
        return 100.0 * np.mean(np.abs(t - p) / np.maximum(np.abs(t), 1e-7), axis=-1)
    if name == "msle":
        return np.mean((np.log(np.maximum(p, 1e-7) + 1) - np.log(np.maximum(t, 1e-7) + 1)) ** 2, axis=-1)
    return np.mean(np.log(np.cosh(p - t)), axis=-1)


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(["mape", "msle", "log_cosh"]),
    shape=st.sampled_from([(1, 1), (3, 1), (2, 5), (4, 3, 2)]),
    seed=st.integers(0, 2**31),
)
def test_value_and_gradient_against_float64_and_finite_differences(name: str, shape: tuple, seed: int) -> None:
    r = np.random.default_rng(seed)
    # Away from the kinks (|t - p| near 0 for MAPE, p near 0 for MSLE) so central differences are exact.
    t = r.uniform(0.5, 2.0, shape) * r.choice([-1.0, 1.0], shape) if name != "msle" else r.uniform(0.1, 2.0, shape)
    p = t + r.uniform(0.2, 1.0, shape) * r.choice([-1.0, 1.0], shape)
    if name == "msle":
        p = np.abs(p) + 0.05
    # The loss sees float32 inputs: the reference takes the same rounded values (for a tiny loss, the
    # rounding of t and p alone moved the float64 value by more than the tolerance).
    t, p = t.astype(np.float32).astype(np.float64), p.astype(np.float32).astype(np.float64)
    loss = losses.get(name)
    value, grad = loss(t.astype(np.float32), p.astype(np.float32))
    assert value == pytest.approx(_reference(name, t, p).mean(), rel=1e-5)
    h = 1e-4
    num = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        up, dn = p.copy(), p.copy()
        up[i] += h
        dn[i] -= h
        num[i] = (_reference(name, t, up).mean() - _reference(name, t, dn).mean()) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=2e-3, atol=1e-5)


def test_keras_identifiers_class_names_and_functions() -> None:
    for ident, cls in [
        ("MeanSquaredError", losses.MeanSquaredError),
        ("mean_absolute_percentage_error", losses.MeanAbsolutePercentageError),
        ("MAPE", losses.MeanAbsolutePercentageError),
        ("LogCosh", losses.LogCosh),
        ("bce", losses.BinaryCrossentropy),
        (losses.mean_squared_logarithmic_error, losses.MeanSquaredLogarithmicError),
        (keras.losses.mean_squared_error, losses.MeanSquaredError),
    ]:
        assert type(losses.get(ident)) is cls, ident
    # The function form returns per-sample values, as keras.losses.mean_squared_error does.
    np.testing.assert_allclose(losses.mean_squared_error(YT, YP), np.mean((YT - YP) ** 2, axis=-1), rtol=1e-6)


def test_a_model_trains_on_mape_and_reports_it() -> None:
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(1, 2, (32, 5, 1)).astype(np.float32)
    y = x.sum(axis=1)
    m = keras.Sequential([keras.Input((5, 1)), keras.layers.LSTM(8), keras.layers.Dense(1)])
    m.compile("adam", loss="mape", metrics=["mape", "msle"])
    hist = m.fit(x, y, epochs=3, verbose=0).history
    assert set(hist) == {"loss", "mape", "msle"}
    assert hist["loss"][-1] < hist["loss"][0]


def test_errors_name_the_fix() -> None:
    with pytest.raises(ValueError, match=r"Unknown loss 'mean_sqaured_error'. Did you mean 'mean_squared_error'"):
        losses.get("mean_sqaured_error")

    def my_loss(y_true, y_pred):  # type: ignore[no-untyped-def]
        return (y_true - y_pred) ** 2

    with pytest.raises(TypeError, match=r"'my_loss'.*needs its gradient.*Subclass seqcore.losses.Loss"):
        losses.get(my_loss)
