"""Error-path audit of the Keras-style API: the mistakes a Keras user makes, and the message each
gets. A message must be a ValueError/TypeError that names the layer/function, says what was expected
and what was received, and gives the fix when one is known; each case matches on those key facts
only, so rewording keeps the tests green.

Cases marked xfail(strict=True) are messages that fall short today (a raw NumPy/Python error, a
wrong exception type, a silent acceptance, a missing name or hint). Each reason names the file and
the proposed message; when one is fixed its xfail turns into an XPASS failure, the signal to drop
the mark. Layers and models are given explicit names so the messages can be matched on them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import seqcore as keras
from seqcore import utils

L = keras.layers
F32 = np.float32
X = np.ones((8, 10, 3), F32)
Y = np.ones((8, 1), F32)


def model(*layers: Any) -> keras.Sequential:
    return keras.Sequential(list(layers), name="m")


def lstm_model() -> keras.Sequential:
    return model(keras.Input((10, 3)), L.LSTM(4, name="enc"), L.Dense(1, name="head"))


def compiled(m: keras.Sequential | None = None, loss: str = "mse") -> keras.Sequential:
    m = m or lstm_model()
    m.compile("adam", loss)
    return m


def cnn_lstm() -> keras.Sequential:
    return model(
        keras.Input((3, 8, 1)),
        L.TimeDistributed(L.Conv1D(4, 3), name="td_conv"),
        L.TimeDistributed(L.Flatten(), name="td_flat"),
        L.LSTM(5, name="enc"),
        L.Dense(1),
    )


def nan_at(index: tuple[int, ...]) -> np.ndarray:
    x = X.copy()
    x[index] = np.nan
    return x


def built_layer(layer: Any, x: np.ndarray) -> Any:
    layer(x)
    return layer


def xfail(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=reason)


# (call, expected exception, substrings the message must contain)
CASES = [
    # --- layer arguments ---------------------------------------------------------------------------
    pytest.param(lambda: L.Dense(0, name="d"), ValueError, ["Dense", "'d'", "units", "positive", "units=0"],
                 id="dense-units-zero"),
    pytest.param(lambda: L.LSTM(-1, name="l"), ValueError, ["LSTM", "'l'", "units=-1"], id="lstm-units-negative"),
    pytest.param(lambda: L.Dense(4.0, name="d"), (ValueError, TypeError), ["'d'", "integer", "units=4.0"],
                 id="dense-float-units"),
    pytest.param(lambda: L.GRU(3.5, name="g"), (ValueError, TypeError), ["GRU", "'g'", "units=3.5"],
                 id="gru-float-units"),
    pytest.param(lambda: L.Conv1D(4, 0, name="c"), ValueError, ["Conv1D", "'c'", "kernel_size=0"],
                 id="conv-kernel-size-zero"),
    pytest.param(lambda: L.MaxPooling1D(0, name="p"), ValueError, ["MaxPooling1D", "pool_size=0"],
                 id="pool-size-zero"),
    pytest.param(lambda: L.LSTM(4, dropout=-0.1, name="l"), ValueError, ["'l'", "dropout", "[0, 1)", "-0.1"],
                 id="lstm-negative-dropout"),
    pytest.param(lambda: L.Dropout(1.0, name="dr"), ValueError, ["Dropout", "'dr'", "rate", "[0, 1)", "1.0"],
                 id="dropout-rate-one"),
    pytest.param(lambda: L.Dense(3, activation="celu", name="d"), ValueError, ["'d'", "'celu'", "'relu'", "'gelu'"],
                 id="unknown-activation-lists-supported"),
    pytest.param(lambda: L.LSTM(3, activation="relu6", name="l"), ValueError, ["'l'", "'relu6'", "'tanh'"],
                 id="unknown-cell-activation"),
    pytest.param(lambda: L.Dense(3, activation=5, name="d"), TypeError, ["'d'", "activation", "5", "Activation"],
                 id="activation-not-a-name"),
    pytest.param(lambda: L.Dense(4, activaton="relu"), TypeError, ["Dense", "'activaton'", "spelling"],
                 id="misspelled-layer-argument"),
    pytest.param(lambda: L.Conv1D(3, 3, groups=2, name="c"), ValueError, ["'c'", "filters (3)", "groups (2)"],
                 id="conv-filters-not-divisible-by-groups"),
    pytest.param(lambda: L.Conv1D(3, 3, padding="full"), ValueError, ["padding='full'", "'same'", "'causal'"],
                 id="conv-unknown-padding"),
    pytest.param(lambda: L.Bidirectional(L.Dense(3)), TypeError, ["Bidirectional", "LSTM or GRU", "Dense"],
                 id="bidirectional-over-dense"),
    pytest.param(lambda: keras.Input((10, -3)), ValueError, ["Input", "(10, -3)"], id="input-negative-dim"),
    pytest.param(lambda: keras.losses.BinaryCrossentropy(from_logit=True), TypeError,
                 ["BinaryCrossentropy", "'from_logit'"], id="loss-misspelled-argument"),
    # --- shapes through the model ----------------------------------------------------------------
    pytest.param(lambda: model(keras.Input((10,)), L.LSTM(4, name="enc")), ValueError,
                 ["'enc'", "(None, 10)", "(batch, timesteps, features)", "(batch, timesteps, 1)"],
                 id="lstm-rank2-input"),
    pytest.param(lambda: model(keras.Input((10,)), L.Conv1D(2, 3, name="c")), ValueError,
                 ["'c'", "(None, 10)", "(samples, steps, 1)"], id="conv-rank2-input"),
    pytest.param(lambda: model(keras.Input((4, 2)), L.Conv1D(3, 5, name="c")), ValueError,
                 ["'c'", "4 steps", "kernel_size 5", "padding=\"same\""], id="conv-kernel-longer-than-sequence"),
    pytest.param(lambda: model(keras.Input((10, 3)), L.Conv1D(4, 3, groups=2, name="c")), ValueError,
                 ["'c'", "channels (3)", "groups (2)"], id="conv-channels-not-divisible-by-groups"),
    pytest.param(lambda: model(keras.Input((3, 2)), L.MaxPooling1D(5, name="p")), ValueError,
                 ["'p'", "3 steps", "pool_size 5", "padding=\"same\""], id="pool-longer-than-sequence"),
    pytest.param(lambda: model(keras.Input((10, 3)), L.LSTM(4, name="enc"), L.TimeDistributed(L.Dense(1), name="td")),
                 ValueError, ["'td'", "(None, 4)", "'enc'", "return_sequences=True"],
                 id="timedistributed-after-lstm-without-sequences"),
    pytest.param(lambda: model(keras.Input((10, 3)), L.LSTM(4, name="enc"), L.LSTM(2, name="dec")), ValueError,
                 ["'dec'", "(None, 4)", "'enc'", "return_sequences=True"], id="stacked-lstm-without-sequences"),
    pytest.param(lambda: model(keras.Input((3, 8, 1)), L.Conv1D(4, 3, name="c")), ValueError,
                 ["'c'", "(None, 3, 8, 1)", "TimeDistributed"], id="conv-on-cnn-lstm-input"),
    pytest.param(lambda: model(keras.Input((3, 8, 1)), L.LSTM(4, name="enc")), ValueError,
                 ["'enc'", "(None, 3, 8, 1)", "TimeDistributed", "Flatten"], id="lstm-on-rank4-input"),
    pytest.param(lambda: model(keras.Input((10, 3)), L.Reshape((7, 4), name="r")), ValueError,
                 ["'r'", "(7, 4)", "30", "28"], id="reshape-wrong-size"),
    pytest.param(lambda: model(keras.Input((10, None)), L.LSTM(4, name="enc")), ValueError,
                 ["'enc'", "feature axis", "(None, 10, None)"], id="lstm-unknown-feature-count"),
    # --- data given to fit / predict -------------------------------------------------------------
    pytest.param(lambda: compiled(cnn_lstm()).fit(np.ones((8, 24, 1), F32), Y, verbose=0), ValueError,
                 ["(None, 3, 8, 1)", "(8, 24, 1)", "split_sequences"], id="cnn-lstm-given-rank3-x"),
    pytest.param(lambda: compiled().fit(np.ones((8, 10), F32), Y, verbose=0), ValueError,
                 ["fit", "(None, 10, 3)", "(8, 10)", "x[..., None]"], id="sequence-model-given-2d-x"),
    pytest.param(lambda: lstm_model().predict(np.ones((4, 10, 4), F32), verbose=0), ValueError,
                 ["predict", "(None, 10, 3)", "(4, 10, 4)"], id="wrong-feature-count-after-build"),
    pytest.param(lambda: compiled().fit(X, np.ones((7, 1), F32), verbose=0), ValueError,
                 ["fit", "8 samples", "7"], id="y-wrong-batch-size"),
    # (8,) targets for an (8, 1) output are lined up as Keras 3 does; (8, 3) would be broadcast by Keras.
    pytest.param(lambda: compiled().fit(X, np.ones((8, 3), F32), verbose=0), ValueError,
                 ["(8, 3)", "(8, 1)", "does not broadcast"], id="y-wider-than-output"),
    pytest.param(lambda: compiled().fit(nan_at((1, 2, 1)), Y, verbose=0), ValueError,
                 ["fit", "x contains nan", "(1, 2, 1)"], id="nan-in-x"),
    pytest.param(lambda: compiled().fit(X, np.full((8, 1), np.inf, F32), verbose=0), ValueError,
                 ["fit", "y contains inf", "(0, 0)"], id="inf-in-y"),
    pytest.param(lambda: lstm_model().predict(np.full((2, 10, 3), "a"), verbose=0), TypeError,
                 ["real numbers", "<U1"], id="predict-strings"),
    pytest.param(lambda: lstm_model().predict(np.ones((2, 10, 3), np.complex64), verbose=0), TypeError,
                 ["real numbers", "complex64"], id="predict-complex"),
    pytest.param(
        lambda: compiled(model(keras.Input((10, 3)), L.LSTM(4), L.Dense(3, activation="softmax")),
                         "sparse_categorical_crossentropy").fit(X, np.full((8, 1), 3, F32), verbose=0),
        ValueError, ["sparse_categorical_crossentropy", "[0, 3)", "3.0"], id="sparse-label-out-of-range"),
    pytest.param(
        lambda: compiled(model(keras.Input((10, 3)), L.LSTM(4), L.Dense(1, activation="sigmoid")),
                         "binary_crossentropy").fit(X, np.array([[0], [1]] * 4, F32), class_weight={0: 1.0}, verbose=0),
        ValueError, ["class_weight", "[1]"], id="class-weight-missing-class"),
    pytest.param(lambda: compiled().fit(X, Y, validation_split=1.5, verbose=0), ValueError,
                 ["validation_split", "1.5"], id="validation-split-out-of-range"),
    pytest.param(lambda: compiled().fit(X, Y, epochs=-1, verbose=0), ValueError, ["epochs", "-1"],
                 id="negative-epochs"),
    pytest.param(lambda: compiled().fit(X, Y, validation_data=[X, Y], verbose=0), ValueError,
                 ["validation_data", "(x, y)"], id="validation-data-as-list"),
    pytest.param(lambda: lstm_model().predict(np.ones((2, 10, 3), dtype=object), verbose=0), TypeError,
                 ["predict", "object", "astype"], id="predict-object-array"),
    pytest.param(lambda: lstm_model().predict([np.ones((4, 3)), np.ones((5, 3))], verbose=0), ValueError,
                 ["x", "pad_sequences"], id="predict-ragged-list"),
    pytest.param(lambda: compiled().fit({"x": X}, Y, verbose=0), ValueError, ["fit", "dict", "keys"], id="fit-dict-x"),
    pytest.param(lambda: compiled().fit(X, Y, sample_weight=np.ones(5), verbose=0), ValueError,
                 ["sample_weight", "5", "8"], id="sample-weight-wrong-length"),
    pytest.param(lambda: compiled().fit(X, Y, batch_size=-4, verbose=0), ValueError, ["batch_size", "-4"],
                 id="negative-batch-size"),
    pytest.param(lambda: compiled().fit(X, Y, batch_size=4.0, verbose=0), (ValueError, TypeError),
                 ["batch_size", "4.0"], id="float-batch-size"),
    pytest.param(
        lambda: compiled(model(keras.Input((10, 3)), L.LSTM(4), L.Dense(3, activation="softmax")),
                         "categorical_crossentropy").fit(X, np.zeros((8, 1), F32), verbose=0),
        ValueError, ["(8, 1)", "(8, 3)", "sparse_categorical_crossentropy"], id="categorical-loss-with-int-labels"),
    # --- compile -------------------------------------------------------------------------------------
    pytest.param(lambda: lstm_model().compile("adam", "mean_squared_eror"), ValueError,
                 ["'mean_squared_eror'", "'mean_squared_error'", "'mae'"], id="unknown-loss-lists-names"),
    pytest.param(lambda: lstm_model().compile("adamm", "mse"), ValueError, ["'adamm'", "'adam'", "'sgd'"],
                 id="unknown-optimizer-lists-names"),
    pytest.param(lambda: lstm_model().compile("adam", "mse", metrics=["mean_absolute_eror"]), ValueError,
                 ["'mean_absolute_eror'", "Did you mean 'mean_absolute_error'"], id="unknown-metric-suggests"),
    pytest.param(lambda: lstm_model().compile("adam"), ValueError, ["compile", "loss", "loss='mse'"],
                 id="compile-without-loss"),
    pytest.param(lambda: lstm_model().compile("adam", "mse", metric=["mae"]), TypeError, ["compile", "'metric'"],
                 id="compile-misspelled-argument"),
    pytest.param(lambda: lstm_model().compile(5, "mse"), TypeError, ["optimizer", "5", "'adam'"],
                 id="optimizer-not-a-name"),
    pytest.param(lambda: lstm_model().compile("adam", "mse", metrics="mae"), (ValueError, TypeError),
                 ["metrics", "['mae']"], id="metrics-as-a-string"),
    pytest.param(lambda: lstm_model().fit(X, Y, verbose=0), ValueError, ["fit", "compile"], id="fit-before-compile"),
    pytest.param(lambda: lstm_model().evaluate(X, Y, verbose=0), ValueError, ["evaluate", "compile"],
                 id="evaluate-before-compile"),
    # --- weights -------------------------------------------------------------------------------------
    pytest.param(
        lambda: lstm_model().set_weights(
            [np.ones((3, 16)), np.ones((4, 16)), np.ones(16), np.ones((5, 1)), np.ones(1)]  # head kernel is (4, 1)
        ),
        ValueError, ["weight 3", "head/kernel", "(4, 1)", "(5, 1)"], id="set-weights-wrong-shape"),
    pytest.param(lambda: lstm_model().set_weights([np.ones((3, 16))]), ValueError, ["expected 5", "received 1"],
                 id="set-weights-wrong-count"),
    pytest.param(lambda: lstm_model().layers[0].set_weights([np.ones((3, 4)), np.ones((4, 16)), np.ones(16)]),
                 ValueError, ["enc", "'kernel'", "(3, 16)", "(3, 4)"], id="layer-set-weights-wrong-shape"),
    pytest.param(lambda: L.Dense(3, name="d").set_weights([np.ones((2, 3)), np.ones(3)]), ValueError,
                 ["d", "built", "input shape"], id="set-weights-before-build"),
    pytest.param(lambda: built_layer(L.Dense(2, name="d"), np.ones((4, 3), F32))(np.ones((4, 5), F32)), ValueError,
                 ["'d'", "3", "(4, 5)"], id="built-dense-called-with-other-features"),
    pytest.param(lambda: built_layer(L.LSTM(2, name="l"), np.ones((4, 6, 3), F32))(np.ones((4, 6, 5), F32)),
                 ValueError, ["'l'", "3", "(4, 6, 5)"], id="built-lstm-called-with-other-features"),
    # --- utilities -----------------------------------------------------------------------------------
    pytest.param(lambda: utils.split_sequences(np.ones((8, 24, 1)), 5, 5), ValueError,
                 ["split_sequences", "5 * 5 = 25", "24"], id="split-sequences-wrong-factors"),
    pytest.param(lambda: utils.make_windows(np.arange(5), 10), ValueError, ["make_windows", "5 steps", "10"],
                 id="make-windows-series-too-short"),
    pytest.param(lambda: keras.set_num_threads(0), ValueError, ["set_num_threads", "0"], id="zero-threads"),
    pytest.param(lambda: keras.optimizers.Adam(learning_rate=-0.1), ValueError, ["Adam", "learning_rate", "-0.1"],
                 id="negative-learning-rate"),
    # --- more data/argument checks (the fixes of the audit above, on the other entry points) -------
    pytest.param(lambda: compiled().evaluate(X, Y, sample_weight=np.ones(9), verbose=0), ValueError,
                 ["m.evaluate", "x has 8 samples but sample_weight has 9"], id="evaluate-sample-weight-wrong-length"),
    pytest.param(lambda: compiled().evaluate(X, Y[:5], verbose=0), ValueError,
                 ["m.evaluate", "x has 8 samples but y has 5"], id="evaluate-y-wrong-length"),
    pytest.param(lambda: compiled().fit(X, Y, sample_weight=3.0, verbose=0), ValueError,
                 ["m.fit", "sample_weight", "one weight per sample", "(8,)"], id="scalar-sample-weight"),
    pytest.param(lambda: lstm_model().predict(X, batch_size=0, verbose=0), ValueError,
                 ["m.predict", "batch_size must be an int >= 1 or None", "batch_size=0"], id="predict-batch-size-zero"),
    pytest.param(lambda: compiled().evaluate(X, Y, batch_size=True, verbose=0), ValueError,
                 ["m.evaluate", "batch_size=True"], id="evaluate-bool-batch-size"),
    pytest.param(lambda: compiled().fit(X, Y, steps_per_epoch=0, verbose=0), ValueError,
                 ["m.fit", "steps_per_epoch", "steps_per_epoch=0"], id="zero-steps-per-epoch"),
    pytest.param(lambda: compiled().fit(X, Y, epochs=2.5, verbose=0), ValueError, ["m.fit", "epochs=2.5"],
                 id="float-epochs"),
    pytest.param(lambda: compiled().fit(X, Y, validation_split="0.2", verbose=0), ValueError,
                 ["m.fit", "validation_split", "'0.2'"], id="string-validation-split"),
    pytest.param(lambda: compiled().fit(iter([(X, Y)]), Y, verbose=0), ValueError,
                 ["m.fit", "y must not be given", "generator", "(x, y)"], id="generator-with-y"),
    pytest.param(lambda: compiled().fit("data.csv", Y, verbose=0), TypeError, ["m.fit", "received str"],
                 id="fit-string-x"),
    pytest.param(lambda: compiled().fit(X, [[1.0], [2.0, 3.0]] * 4, verbose=0), ValueError,
                 ["m.fit", "y is ragged", "1 and 2"], id="ragged-y"),
    pytest.param(lambda: compiled().fit(iter([X]), verbose=0), ValueError,
                 ["m.fit", "no targets", "(x, y)", "x alone is for predict"], id="generator-yields-bare-arrays"),
    pytest.param(lambda: keras.losses.MeanSquaredError(from_logits=True), TypeError,
                 ["MeanSquaredError", "'from_logits'", "'reduction'"], id="loss-argument-it-does-not-take"),
    pytest.param(lambda: lstm_model().compile("adam", "mse", metrics=(lambda m: [m, m])(keras.metrics.AUC())),
                 ValueError, ["metrics[0] and metrics[1]", "same AUC object"], id="same-metric-object-twice"),
    pytest.param(lambda: lstm_model().compile("adam", "mse", metrics={"out": "mae"}), ValueError,
                 ["m.compile", "metrics must be a list", "a dict"], id="metrics-as-a-dict"),
    pytest.param(lambda: lstm_model().train_on_batch(X, Y), ValueError, ["train_on_batch", "compile"],
                 id="train-on-batch-before-compile"),
    pytest.param(lambda: built_layer(L.Conv1D(2, 3, name="c"), np.ones((4, 6, 3), F32))(np.ones((4, 6, 2), F32)),
                 ValueError, ["Conv1D 'c'", "(None, None, 3)", "(4, 6, 2)"], id="built-conv-other-channels"),
    pytest.param(lambda: built_layer(L.LSTM(2, name="l"), np.ones((4, 6, 3), F32))(np.ones((4, 3), F32)),
                 ValueError, ["LSTM 'l'", "(None, None, 3)", "(4, 3)"], id="built-lstm-called-with-rank-2"),
    pytest.param(lambda: L.GRU(2, dropout=0.1, seed=1.5, name="g"), ValueError, ["'g'", "seed", "seed=1.5"],
                 id="rnn-float-seed"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "exc", "parts"), CASES)
def test_message(call: Callable[[], Any], exc: Any, parts: list[str]) -> None:
    with pytest.raises(exc) as e:
        call()
    msg = str(e.value)
    missing = [p for p in parts if p not in msg]
    assert not missing, f"{missing} not in {type(e.value).__name__}: {msg}"


def test_failed_compile_leaves_the_model_as_it_was() -> None:
    m = compiled()
    with pytest.raises(ValueError):
        m.compile("adam", "mse", metrics=["nope"])
    assert m.loss is not None and m.loss.name == "mean_squared_error" and m.compiled_metrics == []


def test_refused_set_weights_changes_nothing() -> None:
    m = lstm_model()
    before = m.get_weights()
    bad = [np.zeros_like(w) for w in before]
    bad[-1] = np.zeros(2)  # the last array is wrong: nothing may have been written before the check
    with pytest.raises(ValueError):
        m.set_weights(bad)
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights(), strict=True))


def test_refused_fit_does_not_train() -> None:
    m = compiled()
    before = m.get_weights()
    with pytest.raises(ValueError, match="nan"):
        m.fit(nan_at((7, 9, 2)), Y, verbose=0)  # the last element: the whole array is checked first
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights(), strict=True))


def test_not_compiled_error_is_a_value_error_and_a_runtime_error() -> None:
    # Keras 3 raises ValueError; earlier seqcore raised RuntimeError: handlers for either must work.
    for exc in (ValueError, RuntimeError, keras.models.NotCompiledError):
        with pytest.raises(exc, match=r"m\.fit: compile the model first"):
            lstm_model().fit(X, Y, verbose=0)


def test_built_dense_accepts_other_ranks_with_the_same_features() -> None:
    # Dense works on the last axis of any rank (Keras: min_ndim=2), so only the feature count is fixed.
    d = built_layer(L.Dense(2, name="d"), np.ones((4, 3), F32))
    assert d(np.ones((4, 5, 3), F32)).shape == (4, 5, 2)
    lstm = built_layer(L.LSTM(2, name="l"), np.ones((4, 6, 3), F32))
    assert lstm(np.ones((2, 9, 3), F32)).shape == (2, 2)  # another batch and length: fine
