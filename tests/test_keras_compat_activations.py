"""The Keras 3 activations added to seqcore: elu, selu, softplus, softsign, exponential, leaky_relu,
relu6 (fused into Dense/Conv1D, derivative from the output) and gelu, silu (swish), mish, hard_silu
(hard_swish), whose derivative needs the input: the Activation layer keeps its input for them, and
Dense/Conv1D run their kernel linear and apply the activation to its output (the same numbers as
``Dense(units)`` followed by ``Activation(name)``). Recurrent cells keep their five.

Keras goldens are literals (generated once, script below), so they run without Keras; the
comparisons with a live Keras model skip when Keras is not installed (CI).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import seqcore as keras
from seqcore import interop, kernels
from seqcore._seqcore import ACTIVATION_ALIASES, ACTIVATIONS, INPUT_ACTIVATIONS

L = keras.layers
NEW_FUSED = ("elu", "selu", "softplus", "softsign", "exponential", "leaky_relu", "relu6")

# Generated with Keras 3.15.1 / TensorFlow 2.21.0 (backend tensorflow), float32:
#
#   import numpy as np, tensorflow as tf, keras
#   X = [-10.0, -3.5, -3.0, -1.5, -0.75, -0.1, 0.0, 0.1, 1.0, 3.0, 6.0, 12.0]
#   for n in ["elu", "selu", "softplus", "softsign", "exponential", "leaky_relu", "relu6", "gelu", "silu",
#             "mish", "hard_silu"]:
#       f, x = keras.activations.get(n), tf.constant(X, tf.float32)
#       with tf.GradientTape() as t:
#           t.watch(x)
#           y = f(x)
#       for kind, v in (("y", y.numpy()), ("dy", t.gradient(y, x).numpy())):
#           for half in (v[:6], v[6:]):
#               print(n, kind, *(str(np.float32(a)) for a in half))
#
# The points include every kink (0 for elu/selu/leaky_relu/relu6, 6 for relu6, ±3 for hard_silu), where
# the gradient is TensorFlow's convention, and gelu's stationary point near -0.75.
X = [-10.0, -3.5, -3.0, -1.5, -0.75, -0.1, 0.0, 0.1, 1.0, 3.0, 6.0, 12.0]
KERAS_TABLE = """
elu y -0.9999546 -0.9698026 -0.95021296 -0.77686983 -0.5276334 -0.09516263
elu y 0.0 0.1 1.0 3.0 6.0 12.0
elu dy 4.541874e-05 0.030197382 0.049787045 0.22313017 0.47236657 0.90483737
elu dy 1.0 1.0 1.0 1.0 1.0 1.0
selu y -1.7580194 -1.7050093 -1.6705687 -1.3658143 -0.927632 -0.16730535
selu y 0.0 0.10507011 1.050701 3.152103 6.304206 12.608412
selu dy 7.9870224e-05 0.053089976 0.08753061 0.392285 0.83046734 1.590794
selu dy 1.050701 1.050701 1.050701 1.050701 1.050701 1.050701
softplus y 4.5398898e-05 0.029750422 0.048587356 0.20141326 0.38687098 0.64439666
softplus y 0.6931472 0.7443967 1.3132616 3.0485873 6.0024757 12.000006
softplus dy 4.539786e-05 0.02931223 0.047425866 0.18242553 0.32082132 0.4750208
softplus dy 0.5 0.5249792 0.7310586 0.95257413 0.99752736 0.99999386
softsign y -0.90909094 -0.7777778 -0.75 -0.6 -0.42857143 -0.09090909
softsign y 0.0 0.09090909 0.5 0.75 0.85714287 0.9230769
softsign dy 0.008264462 0.049382716 0.0625 0.16 0.3265306 0.82644624
softsign dy 1.0 0.82644624 0.25 0.0625 0.020408163 0.00591716
exponential y 4.539993e-05 0.030197384 0.04978707 0.22313017 0.47236654 0.90483737
exponential y 1.0 1.105171 2.7182817 20.085537 403.4288 162754.8
exponential dy 4.539993e-05 0.030197384 0.04978707 0.22313017 0.47236654 0.90483737
exponential dy 1.0 1.105171 2.7182817 20.085537 403.4288 162754.8
leaky_relu y -2.0 -0.7 -0.6 -0.3 -0.15 -0.020000001
leaky_relu y 0.0 0.1 1.0 3.0 6.0 12.0
leaky_relu dy 0.2 0.2 0.2 0.2 0.2 0.2
leaky_relu dy 0.2 1.0 1.0 1.0 1.0 1.0
relu6 y 0.0 0.0 0.0 0.0 0.0 0.0
relu6 y 0.0 0.1 1.0 3.0 6.0 6.0
relu6 dy 0.0 0.0 0.0 0.0 0.0 0.0
relu6 dy 0.0 1.0 1.0 1.0 0.0 0.0
gelu y -7.6198536e-23 -0.00081420154 -0.0040496965 -0.1002108 -0.16997054 -0.04601722
gelu y 0.0 0.053982783 0.8413447 2.9959502 6.0 12.0
gelu dy -7.6184e-22 -0.0028217607 -0.011945652 -0.12746921 0.00077430904 0.4204769
gelu dy 0.5 0.5795231 1.0833155 1.0119456 1.0 1.0
silu y -0.0004539786 -0.10259281 -0.1422776 -0.2736383 -0.240616 -0.04750208
silu y 0.0 0.05249792 0.7310586 2.8577223 5.985164 11.999927
silu dy -0.00040856015 -0.07027335 -0.08810409 -0.04129416 0.15740006 0.4500832
silu dy 0.5 0.54991674 0.92767054 1.0881041 1.0123265 1.0000675
mish y -0.00045398896 -0.10409577 -0.14564748 -0.29809973 -0.2764947 -0.056788575
mish y 0.0 0.063179426 0.8650984 2.986535 5.999927 12.0
mish dy -0.0004085797 -0.0727604 -0.09339309 -0.06409785 0.16074573 0.5357028
mish dy 0.59999996 0.6633369 1.0490363 1.021107 1.0001334 1.0
hard_silu y -0.0 -0.0 -0.0 -0.375 -0.28125 -0.048333336
hard_silu y 0.0 0.051666666 0.6666667 3.0 6.0 12.0
hard_silu dy 0.0 0.0 0.0 0.0 0.25 0.46666667
hard_silu dy 0.5 0.5333333 0.8333334 1.0 1.0 1.0
"""


def _parse(table: str) -> dict[str, tuple[list[float], list[float]]]:
    """{activation: (values, gradients)} from rows `name y|dy numbers...` (a row may continue)."""
    out: dict[str, dict[str, list[float]]] = {}
    for row in table.strip().splitlines():
        name, kind, *nums = row.split()
        out.setdefault(name, {"y": [], "dy": []})[kind] += [float(v) for v in nums]
    return {k: (v["y"], v["dy"]) for k, v in out.items()}


KERAS = _parse(KERAS_TABLE)


def test_goldens_cover_every_new_activation() -> None:
    assert set(KERAS) == set(NEW_FUSED) | set(INPUT_ACTIVATIONS)
    assert set(NEW_FUSED) <= set(ACTIVATIONS)


@pytest.mark.parametrize("act", sorted(KERAS))
def test_values_and_gradients_match_keras(act: str) -> None:
    x = np.array(X, np.float32)
    y_want, g_want = (np.array(v, np.float64) for v in KERAS[act])
    y = kernels.activation(x, act)
    # 2e-6 relative, and 2e-7 absolute on these O(1) values (gelu' is 7.7e-4 at -0.75, a difference
    # of two terms near 0.3: both float32 computations lose ~1e-7 there).
    np.testing.assert_allclose(y, y_want, rtol=2e-6, atol=2e-7, err_msg=act)
    ones = np.ones_like(x)
    g = kernels.activation_backward_from_input(x, ones, act)
    np.testing.assert_allclose(g, g_want, rtol=2e-6, atol=2e-7, err_msg=f"{act}'")
    if act in ACTIVATIONS:  # fused: from the output, as the kernels take it
        np.testing.assert_allclose(kernels.activation_backward(y, ones, act), g_want, rtol=2e-6, atol=2e-7)
    # the kinks follow TensorFlow exactly
    kinks = {"elu": [6], "selu": [6], "leaky_relu": [6], "relu6": [6, 10], "hard_silu": [2, 9]}
    for i in kinks.get(act, []):
        assert g[i] == np.float32(g_want[i]), (act, X[i], g[i], g_want[i])


# --- layers ----------------------------------------------------------------------------------------


def _data(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * 2).astype(np.float32)


@pytest.mark.parametrize("act", [*INPUT_ACTIVATIONS, "swish", "hard_swish"])
@pytest.mark.parametrize("kind", ["Dense", "Conv1D"])
def test_dense_and_conv1d_with_an_input_activation_equal_linear_plus_activation(kind: str, act: str) -> None:
    """Dense(units, activation="gelu") is Dense(units) then Activation("gelu"), to the bit, forward
    and backward (weights, bias and input gradients)."""
    x = _data((3, 9, 4))
    make = (lambda a: L.Dense(5, activation=a)) if kind == "Dense" else (lambda a: L.Conv1D(5, 3, activation=a))
    fused, plain, post = make(act), make(None), L.Activation(act)
    fused(x)  # builds
    plain(x)
    plain.set_weights(fused.get_weights())
    assert fused.activation == ACTIVATION_ALIASES.get(act, act) == post.activation
    y, cf = fused.forward(x, training=True)
    mid, cp = plain.forward(x, training=True)
    want, cq = post.forward(mid, training=True)
    np.testing.assert_array_equal(y, want)
    dy = _data(y.shape, 1)
    dx = fused.backward(cf, dy)
    dx_want = plain.backward(cp, post.backward(cq, dy))
    np.testing.assert_array_equal(dx, dx_want)
    np.testing.assert_array_equal(fused.kernel.grad, plain.kernel.grad)
    np.testing.assert_array_equal(fused.bias.grad, plain.bias.grad)
    np.testing.assert_array_equal(fused.forward(x)[0], y)  # inference: nothing kept, same numbers


@pytest.mark.parametrize("act", [*NEW_FUSED, *INPUT_ACTIVATIONS])
def test_activation_layer_gradient_matches_finite_differences(act: str) -> None:
    layer = L.Activation(act)
    x = np.linspace(-4, 4, 37).astype(np.float64)
    x = x[np.abs(np.abs(x) - 3) > 0.1]  # off hard_silu's kinks
    x = x[(np.abs(x) > 0.1) & (np.abs(x - 6) > 0.1)]  # and the others'
    w = np.cos(3 * x)
    _, ctx = layer.forward(x.astype(np.float32)[None], training=True)
    got = layer.backward(ctx, w.astype(np.float32)[None])[0]
    h = 1e-3
    up = kernels.activation((x + h).astype(np.float32), act).astype(np.float64)
    down = kernels.activation((x - h).astype(np.float32), act).astype(np.float64)
    num = w * (up - down) / (2 * h)
    np.testing.assert_allclose(got, num, rtol=2e-3, atol=2e-3 * (1 + np.abs(num).max()), err_msg=act)


@pytest.mark.parametrize("layer", ["LSTM", "GRU"])
@pytest.mark.parametrize("arg", ["activation", "recurrent_activation"])
@pytest.mark.parametrize("act", ["gelu", "swish", "elu"])
def test_recurrent_cells_refuse_the_new_activations_by_name(layer: str, arg: str, act: str) -> None:
    with pytest.raises(ValueError, match=rf"{layer} 'r': activation '{act}' is not supported here; supported:"):
        getattr(L, layer)(3, name="r", **{arg: act})


def test_callable_keras_style_activations_are_accepted_by_name() -> None:
    def swish(x: Any) -> Any:  # stands for keras.activations.swish (whose __name__ is "silu")
        return x

    assert L.Dense(2, activation=swish).activation == "silu"


def test_model_with_new_activations_trains_and_round_trips(tmp_path: Path) -> None:
    keras.utils.set_random_seed(2)
    m = keras.Sequential(
        [
            keras.Input((6, 3)),
            L.Conv1D(8, 3, activation="mish", padding="causal"),
            L.Dense(8, activation="selu"),
            L.Activation("gelu"),
            L.Dense(8, activation="swish"),
            L.GlobalAveragePooling1D(),
            L.Dense(1, activation="softplus"),
        ]
    )
    x = _data((64, 6, 3), 3)
    y = np.abs(x[:, :, :1].mean(axis=1))
    m.compile(keras.optimizers.Adam(0.01), "mse")
    h = m.fit(x, y, epochs=30, batch_size=16, verbose=0, shuffle=False)
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
    assert m.layers[3].activation == "silu"
    path = tmp_path / "m.seqcore"
    m.save(path)
    back = keras.load_model(path)
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))


# --- live Keras (skipped without it) ---------------------------------------------------------------


@pytest.fixture
def K() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("keras")


def test_keras_accepts_every_name_seqcore_has(K: Any) -> None:
    import inspect

    for name in (*ACTIVATIONS, *INPUT_ACTIVATIONS, *ACTIVATION_ALIASES):
        fn = K.activations.get(name)
        assert ACTIVATION_ALIASES.get(name, name) == fn.__name__, name
    assert inspect.signature(K.activations.leaky_relu).parameters["negative_slope"].default == 0.2
    assert inspect.signature(K.activations.gelu).parameters["approximate"].default is False


def test_activation_gelu_model_matches_keras_predictions_and_training(K: Any) -> None:
    keras.utils.set_random_seed(5)
    m = keras.Sequential(
        [keras.Input((4,)), L.Dense(16), L.Activation("gelu"), L.Dense(8, activation="elu"), L.Dense(1)]
    )
    x = _data((48, 4), 6)
    y = np.sin(x.sum(axis=1, keepdims=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km = K.Sequential(
            [
                K.Input((4,)),
                K.layers.Dense(16),
                K.layers.Activation("gelu"),
                K.layers.Dense(8, activation="elu"),
                K.layers.Dense(1),
            ]
        )
        km.set_weights(m.get_weights())
        np.testing.assert_allclose(m.predict(x, verbose=0), K.ops.convert_to_numpy(km(x)), rtol=1e-5, atol=1e-6)
        km.compile(K.optimizers.SGD(0.05), "mse")
        m.compile(keras.optimizers.SGD(0.05), "mse")
        kh = km.fit(x, y, epochs=5, batch_size=16, shuffle=False, verbose=0)
        sh = m.fit(x, y, epochs=5, batch_size=16, shuffle=False, verbose=0)
        assert sh.history["loss"][-1] < sh.history["loss"][0]
        np.testing.assert_allclose(sh.history["loss"], kh.history["loss"], rtol=1e-4)
        for got, want in zip(m.get_weights(), km.get_weights(), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(m.predict(x, verbose=0), K.ops.convert_to_numpy(km(x)), rtol=1e-4, atol=1e-5)


def test_keras_models_with_the_new_activations_convert_both_ways(K: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km = K.Sequential(
            [
                K.Input((7, 3)),
                K.layers.Conv1D(4, 2, activation="swish"),
                K.layers.Dense(6, activation="leaky_relu"),
                K.layers.Activation("hard_swish"),
                K.layers.Dense(5, activation="relu6"),
                K.layers.Dense(4, activation="softsign"),
                K.layers.Activation("mish"),
                K.layers.Dense(2, activation="exponential"),
            ]
        )
        m = interop.from_keras(km)  # verified on a probe batch
        assert [getattr(layer, "activation", None) for layer in m.layers] == [
            "silu",
            "leaky_relu",
            "hard_silu",
            "relu6",
            "softsign",
            "mish",
            "exponential",
        ]
        assert m.conversion_report.max_abs_diff < 1e-5
        back = interop.to_keras(m)
        assert back.conversion_report.max_abs_diff < 1e-5


def test_torch_modules_for_the_new_activations_convert_both_ways() -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    mods = [nn.ELU(), nn.SELU(), nn.Softplus(), nn.Softsign(), nn.LeakyReLU(0.2), nn.ReLU6()]
    mods += [nn.GELU(), nn.SiLU(), nn.Mish(), nn.Hardswish()]
    seq = nn.Sequential(*[m for mod in mods for m in (nn.Linear(4, 4), mod)])
    m = interop.from_torch(seq)  # verified on a probe batch
    names = [layer.activation for layer in m.layers if isinstance(layer, L.Activation)]
    assert names == ["elu", "selu", "softplus", "softsign", "leaky_relu", "relu6", "gelu", "silu", "mish", "hard_silu"]
    back = interop.to_torch(m)
    assert [type(c).__name__ for c in back][1::2] == [type(c).__name__ for c in mods]
    with pytest.raises(ValueError, match=r"activation 'exponential' has no torch.nn module"):
        interop.to_torch(keras.Sequential([keras.Input((3,)), L.Dense(2, activation="exponential")]))
