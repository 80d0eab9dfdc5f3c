"""The Keras-style layer API and Sequential trainer: the seeds' examples with only the import
changed, Keras's parameter counts and weight layouts, training, and every error path's message."""

from __future__ import annotations

import numpy as np
import pytest
import seqcore as keras
from seqcore import kernels, layers
from seqcore.layers import LSTM, Dense, TimeDistributed
from seqcore.models import Sequential


@pytest.fixture(autouse=True)
def _seed() -> None:
    keras.utils.set_random_seed(0)


def data(n: int = 64, t: int = 10, f: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, f)).astype(np.float32)
    return x, np.cumsum(x[..., :1], axis=1) * 0.3


# ----- parameter counts and layouts Keras prints (formulas: Keras's own) ----------------------------
def test_param_counts_match_keras() -> None:
    m = Sequential([keras.Input((3, 1)), LSTM(50, activation="relu"), Dense(1)])
    assert [layer.count_params() for layer in m.layers] == [4 * (50 * 1 + 50 * 50 + 50), 51]
    g = Sequential([keras.Input((3, 1)), layers.GRU(50), Dense(1)])
    assert g.layers[0].count_params() == 3 * (50 * 1 + 50 * 50 + 2 * 50)  # reset_after=True: two bias rows
    g2 = Sequential([keras.Input((3, 1)), layers.GRU(50, reset_after=False)])
    assert g2.count_params() == 3 * (50 * 1 + 50 * 50 + 50)
    assert m.output_shape == (None, 1)
    text = m.summary(print_fn=lambda s: None)
    assert "10,400" in text and "Total params: 10,451" in text and "(None, 1)" in text


def test_weight_order_and_shapes_are_keras() -> None:
    m = Sequential([keras.Input((7, 4)), LSTM(6, return_sequences=True), layers.GRU(5), Dense(2)])
    shapes = [w.shape for w in m.get_weights()]
    assert shapes == [(4, 24), (6, 24), (24,), (6, 15), (5, 15), (2, 15), (5, 2), (2,)]
    lstm_bias = m.layers[0].bias.value
    np.testing.assert_array_equal(lstm_bias[6:12], 1.0)  # unit_forget_bias
    np.testing.assert_array_equal(np.delete(lstm_bias, np.s_[6:12]), 0.0)
    rk = m.layers[0].recurrent_kernel.value  # orthogonal (H, 4H): rows orthonormal
    np.testing.assert_allclose(rk @ rk.T, np.eye(6), atol=1e-5)


def test_set_weights_round_trip_and_errors() -> None:
    m = Sequential([keras.Input((5, 3)), LSTM(4), Dense(1)])
    w = [np.full(a.shape, 0.1 * i, np.float32) for i, a in enumerate(m.get_weights())]
    m.set_weights(w)
    for a, b in zip(m.get_weights(), w, strict=True):
        np.testing.assert_array_equal(a, b)
    bad = list(w)
    bad[1] = np.zeros((4, 15))
    with pytest.raises(
        ValueError, match=r"weight 1 \(lstm_?\d*/recurrent_kernel\) has shape \(4, 16\); received \(4, 15\)"
    ):
        m.set_weights(bad)
    np.testing.assert_array_equal(m.get_weights()[0], w[0])  # nothing changed by the failed call


# ----- seed 000/001: Dense on a sequence is TimeDistributed(Dense) -----------------------------------
def test_dense_on_sequence_equals_time_distributed_dense_and_per_step_loop() -> None:
    x, _ = data()
    a = Sequential([keras.Input((10, 3)), LSTM(8, return_sequences=True), Dense(4)])
    b = Sequential([keras.Input((10, 3)), LSTM(8, return_sequences=True), TimeDistributed(Dense(4))])
    assert a.count_params() == b.count_params() == (3 * 32 + 8 * 32 + 32) + (8 * 4 + 4)
    b.set_weights(a.get_weights())
    np.testing.assert_allclose(a.predict(x, verbose=0), b.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    seq = a.layers[0](x)
    k, bias = a.layers[1].get_weights()
    per_step = np.stack([seq[:, t] @ k + bias for t in range(10)], axis=1)
    np.testing.assert_allclose(a.layers[1](seq), per_step, rtol=1e-5, atol=1e-5)


def test_seed_001_dense_after_lstm_has_shared_weights_either_way() -> None:
    nf, batch, steps = 5, 8, 12
    for rs in (True, False):
        model = Sequential()
        model.add(LSTM(nf, batch_input_shape=(batch, steps, nf), return_sequences=rs))
        model.add(Dense(nf))
        assert model.layers[1].count_params() == nf * (nf + 1)
        assert model.output_shape == ((batch, steps, nf) if rs else (batch, nf))


# ----- seed 003: regularizers on TimeDistributed(Dense) count once; the invalid model is refused ------
def test_seed_003_missing_return_sequences_is_explained() -> None:
    with pytest.raises(ValueError, match=r"return_sequences=True"):
        Sequential(
            [
                LSTM(64, input_shape=(20, 3)),
                TimeDistributed(Dense(1, kernel_regularizer=keras.regularizers.l1_l2(l1=0.01, l2=0.01))),
            ]
        )


def test_seed_003_regularizer_counts_once_not_per_step() -> None:
    reg = keras.regularizers.l1_l2(l1=0.01, l2=0.01)
    m = Sequential(
        [keras.Input((20, 3)), LSTM(8, return_sequences=True), TimeDistributed(Dense(1, kernel_regularizer=reg))]
    )
    w = m.layers[1].layer.kernel.value
    expected = 0.01 * np.abs(w).sum() + 0.01 * np.square(w).sum()
    assert np.isclose(sum(layer.regularization_loss() for layer in m.layers), expected, rtol=1e-6)
    m.compile("sgd", "mse")
    x, y = data(t=20)
    out = m.predict(x, verbose=0)
    loss = m.evaluate(x, y, verbose=0)
    assert np.isclose(loss, np.mean((out - y) ** 2) + expected, rtol=1e-5)


# ----- training --------------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["adam", "sgd", lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True)])
@pytest.mark.parametrize("cell", [LSTM, layers.GRU])
def test_fit_reduces_loss(optimizer, cell) -> None:
    # A fresh instance per model: one optimizer instance serves one model (see the reuse test).
    optimizer = optimizer() if callable(optimizer) else optimizer
    # Seeded: the initial weights would otherwise depend on which tests ran before (shared RNG),
    # and a rare draw makes 8 epochs of SGD too few.
    keras.utils.set_random_seed(0)
    x, y = data(n=128)
    m = Sequential([keras.Input((10, 3)), cell(16, return_sequences=True), Dense(1)])
    m.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
    before = m.evaluate(x, y, verbose=0)[0]
    hist = m.fit(x, y, epochs=8, batch_size=16, verbose=0, validation_split=0.25)
    assert set(hist.history) == {"loss", "mae", "val_loss", "val_mae"}
    assert len(hist.history["loss"]) == 8
    assert m.evaluate(x, y, verbose=0)[0] < 0.7 * before


def test_optimizer_instance_reused_for_another_model_is_refused() -> None:
    # Keras refuses this too; silently continuing would carry the first model's step count (Adam's
    # bias correction) into the second.
    x, y = data(n=16)
    opt = keras.optimizers.Adam(0.01)
    first = Sequential([keras.Input((10, 3)), LSTM(4), Dense(1)])
    first.compile(opt, "mse")
    first.fit(x, y[:, -1], epochs=1, batch_size=8, verbose=0)
    second = Sequential([keras.Input((10, 3)), LSTM(4), Dense(1)])
    second.compile(opt, "mse")
    w0 = [a.copy() for a in second.get_weights()]
    with pytest.raises(ValueError, match="another model.*Give each model its own optimizer"):
        second.fit(x, y[:, -1], epochs=1, batch_size=8, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(w0, second.get_weights(), strict=True))
    # The first model keeps training with it.
    first.fit(x, y[:, -1], epochs=1, batch_size=8, verbose=0)
    assert opt.iterations == 4


def test_optimizer_state_belongs_to_the_weight_object_not_its_id() -> None:
    # Regression: slots were keyed by id(weight); after a model was collected, a new model whose
    # weight reused that id inherited a dead weight's momentum (and crashed on a shape mismatch).
    import gc

    from seqcore.layers.base import Weight

    opt = keras.optimizers.SGD(0.1, momentum=0.9)
    w = Weight("a", np.zeros((3, 5), np.float32), True, None)
    opt.apply([w], [np.ones((3, 5), np.float32)])
    assert len(opt._velocity) == 1
    del w
    gc.collect()
    assert len(opt._velocity) == 0  # the state went with its weight


def test_unfrozen_layer_joins_training_with_fresh_optimizer_state() -> None:
    x, y = data(n=16)
    m = Sequential([keras.Input((10, 3)), LSTM(4, return_sequences=True), Dense(1)])
    m.layers[0].trainable = False
    m.compile(keras.optimizers.Adam(0.01), "mse")
    m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    m.layers[0].trainable = True
    before = m.layers[0].get_weights()[0].copy()
    m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert not np.array_equal(before, m.layers[0].get_weights()[0])
    assert m.optimizer.iterations == 4


def test_adam_step_matches_keras_formula() -> None:
    m = Sequential([keras.Input((3,)), Dense(2)])
    m.compile(keras.optimizers.Adam(0.1), "mse")
    w0 = [a.copy() for a in m.get_weights()]
    x = np.ones((4, 3), np.float32)
    y = np.zeros((4, 2), np.float32)
    out = x @ w0[0] + w0[1]
    g_k = x.T @ (2 * out / out.size)
    m.train_on_batch(x, y)
    # step 1: m = 0.1 g, v = 0.001 g², alpha = lr·√(1-0.999)/(1-0.9) => Δ = -lr·g/(|g| + eps·...)
    expect = w0[0] - 0.1 * (0.1 * g_k) * (np.sqrt(1 - 0.999) / 0.1) / (np.sqrt(0.001 * g_k**2) + 1e-7)
    np.testing.assert_allclose(m.get_weights()[0], expect, rtol=1e-4, atol=1e-6)


def test_non_finite_loss_stops_and_keeps_weights() -> None:
    m = Sequential([keras.Input((3,)), Dense(1)])
    m.compile(keras.optimizers.SGD(1e30), "mse")  # diverges within a few steps
    x = np.full((8, 3), 1e15, np.float32)
    before: list[np.ndarray] = []
    with pytest.raises(FloatingPointError, match=r"weights were left as they were before this step"):
        for _ in range(10):
            before = m.get_weights()
            m.train_on_batch(x, np.zeros((8, 1)))
    assert m.optimizer.iterations >= 1  # at least one good step ran before the bad one
    for a, b in zip(m.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_nan_input_refused_before_training() -> None:
    m = Sequential([keras.Input((5, 2)), LSTM(3), Dense(1)])
    m.compile("adam", "mse")
    x = np.zeros((4, 5, 2), np.float32)
    x[2, 3, 1] = np.nan
    with pytest.raises(ValueError, match=r"x contains nan at index \(2, 3, 1\)"):
        m.fit(x, np.zeros((4, 1)), verbose=0)


def test_target_shape_mismatch_is_not_broadcast() -> None:
    m = Sequential([keras.Input((5, 2)), LSTM(3), Dense(1)])
    m.compile("adam", "mse")
    # Keras would broadcast (4, 3) targets against the (4, 1) output into a (4, 3) loss.
    with pytest.raises(ValueError, match=r"targets of shape \(4, 3\) do not match the model output of shape \(4, 1\)"):
        m.fit(np.zeros((4, 5, 2)), np.zeros((4, 3)), verbose=0)


def test_targets_missing_the_trailing_unit_axis_are_lined_up_as_keras_does() -> None:
    # Keras 3 expands (N,) targets to a (N, 1) output (squeeze_or_expand_to_same_rank): every
    # forecasting tutorial fits Dense(1) on a 1-D y. Same for (N, T) targets of a (N, T, 1) output.
    x = np.random.default_rng(0).normal(size=(8, 5, 2)).astype(np.float32)
    y = x[:, :, 0].sum(axis=1)
    m = Sequential([keras.Input((5, 2)), LSTM(3), Dense(1)])
    m.compile("sgd", "mse", metrics=["mae"])
    w0 = m.get_weights()
    flat = m.train_on_batch(x, y, return_dict=True)
    m.set_weights(w0)
    m.compile("sgd", "mse", metrics=["mae"])
    column = m.train_on_batch(x, y[:, None], return_dict=True)
    assert flat == column
    seq = Sequential([keras.Input((5, 2)), LSTM(3, return_sequences=True), Dense(1)])
    seq.compile("sgd", "mse")
    assert np.isfinite(seq.evaluate(x, x[:, :, 0], verbose=0))


def test_wrong_input_shape_named() -> None:
    m = Sequential([keras.Input((5, 2)), LSTM(3)])
    with pytest.raises(ValueError, match=r"expects input of shape \(None, 5, 2\); received x of shape \(4, 5, 3\)"):
        m.predict(np.zeros((4, 5, 3)), verbose=0)
    with pytest.raises(
        ValueError,
        match=r"expected input of shape \(batch, timesteps, features\); received \(None, 3\).*return_sequences=True",
    ):
        Sequential([keras.Input((5, 2)), LSTM(3), LSTM(3)])


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: Dense(0), r"units must be a positive integer. Received: units=0"),
        (lambda: LSTM(4, activation="gelu"), r"activation 'gelu' is not supported here; supported: \['linear'"),
        (lambda: LSTM(4, activation="gelu_new"), r"unknown activation 'gelu_new'"),
        (lambda: LSTM(4, recurrent_dropout=1.0), r"recurrent_dropout must be in \[0, 1\). Received: recurrent_drop"),
        (lambda: Dense(3, kernal_initializer="zeros"), r"unexpected keyword argument\(s\) \['kernal_initializer'\]"),
        (lambda: layers.Dropout(1.5), r"rate must be in \[0, 1\)"),
    ],
)
def test_constructor_errors(make, pattern) -> None:
    with pytest.raises((ValueError, TypeError), match=pattern):
        make()


def test_compile_errors_list_valid_names() -> None:
    m = Sequential([keras.Input((3,)), Dense(1)])
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adamax'.*'adam'"):
        m.compile("adamax", "mse")
    with pytest.raises(ValueError, match=r"Unknown loss 'kld'.*'mse'"):
        m.compile("adam", "kld")
    with pytest.raises(ValueError, match=r"Unknown metric 'f2'"):
        m.compile("adam", "mse", metrics=["f2"])
    with pytest.raises(RuntimeError, match=r"compile the model first"):
        m.fit(np.zeros((2, 3)), np.zeros((2, 1)), verbose=0)


# ----- masking, states, callbacks --------------------------------------------------------------------
def test_masking_equals_lengths() -> None:
    x, _ = data(n=4)
    x[1, 6:] = 0.0
    x[3, 2:] = 0.0
    m = Sequential([keras.Input((10, 3)), layers.Masking(0.0), LSTM(5)])
    lstm = m.layers[1]
    res = kernels.lstm_forward(
        x, lstm.kernel.value, lstm.recurrent_kernel.value, lstm.bias.value, lengths=[10, 6, 10, 2], training=False
    )
    np.testing.assert_allclose(m.predict(x, verbose=0), res.outputs[:, -1], rtol=1e-6, atol=1e-6)
    x[0, 4] = 0.0  # a hole: the kernel's per-step mask
    mask = np.ones((4, 10), dtype=bool)
    mask[0, 4], mask[1, 6:], mask[3, 2:] = False, False, False
    res = kernels.lstm_forward(
        x, lstm.kernel.value, lstm.recurrent_kernel.value, lstm.bias.value, mask=mask, training=False
    )
    np.testing.assert_allclose(m.predict(x, verbose=0), res.outputs[:, -1], rtol=1e-6, atol=1e-6)
    # The hole skips step 4: the same as the sequence without it.
    short = np.delete(x[:1], 4, axis=1)
    m2 = Sequential([keras.Input((9, 3)), LSTM(5)])
    m2.set_weights(m.get_weights())
    np.testing.assert_allclose(m.predict(x[:1], verbose=0), m2.predict(short, verbose=0), rtol=1e-5, atol=1e-6)


def test_stateful_carries_state_until_reset() -> None:
    x, _ = data(n=2, t=6)
    m = Sequential([LSTM(4, batch_input_shape=(2, 3, 3), stateful=True)])
    whole = Sequential([keras.Input((6, 3)), LSTM(4)])
    whole.set_weights(m.get_weights())
    m.predict(x[:, :3], batch_size=2, verbose=0)
    np.testing.assert_allclose(
        m.predict(x[:, 3:], batch_size=2, verbose=0), whole.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    m.reset_states()
    first = Sequential([keras.Input((3, 3)), LSTM(4)])
    first.set_weights(m.get_weights())
    np.testing.assert_allclose(
        m.predict(x[:, 3:], batch_size=2, verbose=0), first.predict(x[:, 3:], verbose=0), rtol=1e-5, atol=1e-6
    )


def test_early_stopping_restores_best_weights() -> None:
    x, y = data(n=64)
    m = Sequential([keras.Input((10, 3)), layers.GRU(8), Dense(1)])
    m.compile(keras.optimizers.SGD(0.5), "mse")  # a learning rate that overshoots: the loss turns up
    es = keras.callbacks.EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
    seen: list[float] = []
    snapshots: list[list[np.ndarray]] = []

    def record(epoch: int, logs: dict) -> None:
        seen.append(logs["loss"])
        snapshots.append(m.get_weights())

    cb = keras.callbacks.LambdaCallback(on_epoch_end=record)
    h = m.fit(x, y[:, -1], epochs=40, batch_size=64, verbose=0, callbacks=[cb, es], shuffle=False)
    assert h.history["loss"] == seen
    assert es.stopped_epoch, "the overshooting learning rate should trigger early stopping"
    assert len(seen) == es.stopped_epoch + 1 < 40
    best = int(np.argmin(seen))
    # Keras semantics: the weights as they were at the end of the best epoch
    for a, b in zip(m.get_weights(), snapshots[best], strict=True):
        np.testing.assert_array_equal(a, b)


def test_generators_and_sequences_feed_fit() -> None:
    x, y = data(n=32)

    class Seq:
        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int):
            return x[i * 8 : (i + 1) * 8], y[i * 8 : (i + 1) * 8, -1]

        def on_epoch_end(self) -> None:
            self.ended = getattr(self, "ended", 0) + 1

    s = Seq()
    m = Sequential([keras.Input((10, 3)), LSTM(4), Dense(1)])
    m.compile("adam", "mse")
    h = m.fit(s, epochs=2, verbose=0)
    assert len(h.history["loss"]) == 2 and s.ended == 2

    def gen():
        while True:
            for i in range(4):
                yield x[i * 8 : (i + 1) * 8], y[i * 8 : (i + 1) * 8, -1]

    h = m.fit(gen(), epochs=2, steps_per_epoch=3, verbose=0)
    assert len(h.history["loss"]) == 2


def test_progress_bar_verbose_modes(capsys) -> None:
    x, y = data(n=16)
    m = Sequential([keras.Input((10, 3)), LSTM(2), Dense(1)])
    m.compile("adam", "mse")
    m.fit(x, y[:, -1], epochs=2, batch_size=8, verbose=2)
    out = capsys.readouterr().out
    assert out.count("Epoch") == 2 and "2/2 - " in out and "loss:" in out
    m.fit(x, y[:, -1], epochs=1, batch_size=8, verbose=0)
    assert capsys.readouterr().out == ""


def test_config_round_trip_rebuilds_the_same_model() -> None:
    reg = keras.regularizers.l1_l2(0.01, 0.02)
    m = Sequential(
        [
            keras.Input((6, 3)),
            layers.Masking(0.0),
            layers.Bidirectional(LSTM(4, return_sequences=True, kernel_regularizer=reg), merge_mode="sum"),
            layers.GRU(3, reset_after=False, return_sequences=True, recurrent_initializer="he_normal"),
            TimeDistributed(Dense(2, activation="tanh", bias_initializer="ones")),
            layers.Conv1D(2, 2, padding="causal", dilation_rate=2),
            layers.GlobalAveragePooling1D(),
        ]
    )
    cfg = m.get_config()
    clone = Sequential.from_config(cfg)
    assert clone.get_config()["layers"] == cfg["layers"]
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in m.get_weights()]
    clone.set_weights(m.get_weights())
    x, _ = data(n=5, t=6)
    np.testing.assert_allclose(clone.predict(x, verbose=0), m.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    bi = clone.layers[1]
    assert bi.forward_layer.kernel_regularizer.get_config() == {"l1": 0.01, "l2": 0.02}


def test_config_round_trip_of_nested_models_custom_backward_layers_and_frozen_parts() -> None:
    inner = Sequential([Dense(4, activation="relu"), layers.Dropout(0.1)], name="inner", trainable=False)
    per_step = Sequential([layers.Conv1D(2, 2), layers.Flatten()], name="per_step")
    backward = layers.GRU(3, go_backwards=True, return_sequences=True, kernel_initializer="ones", name="bw")
    m = Sequential(
        [
            keras.Input((4, 5, 3)),
            TimeDistributed(per_step),
            inner,
            layers.Bidirectional(layers.GRU(3, return_sequences=True), backward_layer=backward),
            layers.GRU(2),
        ]
    )
    cfg = m.get_config()
    assert [lc["class_name"] for lc in cfg["layers"]] == ["TimeDistributed", "Sequential", "Bidirectional", "GRU"]
    clone = Sequential.from_config(cfg)  # no workaround needed: the registry knows nested models
    assert clone.get_config() == cfg
    bi = clone.layers[2]
    assert bi.backward_layer.name == "bw" and type(bi.backward_layer.kernel_initializer).__name__ == "Ones"
    assert clone.layers[1].trainable is False and clone.layers[1].trainable_weights == []
    clone.set_weights(m.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 4, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(clone.predict(x, verbose=0), m.predict(x, verbose=0))
    # Keras writes a nested model as class "Sequential": read that too.
    keras_style = {"class_name": "Sequential", "config": inner.get_config()}
    nested = layers.deserialize(keras_style)
    assert isinstance(nested, keras.Sequential) and not nested.trainable
    with pytest.raises(ValueError, match=r"a layer entry must be \{'class_name': str, 'config': dict\}"):
        layers.deserialize(["Dense"])  # type: ignore[arg-type]


def test_binary_accuracy_threshold_survives_config() -> None:
    acc = keras.metrics.BinaryAccuracy(threshold=0.8)
    again = keras.metrics.BinaryAccuracy.from_config(acc.get_config())
    assert again.threshold == 0.8
    assert again([[1.0]], [[0.7]]) == 0.0


def test_early_stopping_restores_the_best_weights_when_training_ran_to_the_end() -> None:
    # Keras 3 restores in on_train_end whether or not training stopped early.
    x, y = data(n=32)
    m = Sequential([keras.Input((10, 3)), layers.GRU(4), Dense(1)])
    m.compile(keras.optimizers.SGD(0.01), "mse")
    losses = iter([3.0, 1.0, 2.0, 2.5])  # best at epoch 1, patience never runs out
    snapshots: list[list[np.ndarray]] = []

    def fake(epoch: int, logs: dict) -> None:
        logs["loss"] = next(losses)  # the monitor value EarlyStopping sees (it runs after this callback)
        snapshots.append(m.get_weights())

    es = keras.callbacks.EarlyStopping(monitor="loss", patience=10, restore_best_weights=True, verbose=1)
    m.fit(x, y[:, -1], epochs=4, batch_size=8, verbose=0, shuffle=False,
          callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=fake), es])  # fmt: skip
    assert es.stopped_epoch == 0 and es.best_epoch == 1
    for a, b in zip(m.get_weights(), snapshots[1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_baseline_follows_keras() -> None:
    # The first epoch is the best so far, but patience restarts only when the baseline is beaten.
    m = Sequential([keras.Input((3,)), Dense(1)])
    m.compile("sgd", "mse")
    es = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, baseline=0.5)
    es.set_model(m)
    es.on_train_begin()
    es.on_epoch_end(0, {"val_loss": 1.0})
    assert es.best == 1.0 and es.wait == 1
    es.on_epoch_end(1, {"val_loss": 0.9})
    assert es.best == 0.9 and es.wait == 2 and m.stop_training is False  # improved: no stop this epoch
    es.on_epoch_end(2, {"val_loss": 0.95})
    assert m.stop_training is True and es.stopped_epoch == 2
    es.on_train_begin()  # reusable across fit calls
    assert es.best is None and es.wait == 0 and es.stopped_epoch == 0


def test_train_on_batch_returns_loss_and_metrics_like_keras() -> None:
    x, y = data(n=8)
    m = Sequential([keras.Input((10, 3)), LSTM(3), Dense(1)])
    m.compile("sgd", "mse", metrics=["mae"])
    first = m.train_on_batch(x, y[:, -1])
    assert isinstance(first, list) and len(first) == 2
    logs = m.train_on_batch(x[:4], y[:4, -1], return_dict=True)
    assert set(logs) == {"loss", "mae"}
    # metrics are reset per call (Keras 3): the mae is this batch's, before the update
    m2 = Sequential.from_config(m.get_config())
    m2.set_weights(m.get_weights())
    m2.compile("sgd", "mse", metrics=["mae"])
    assert m2.evaluate(x[4:], y[4:, -1], return_dict=True, verbose=0)["mae"] == pytest.approx(
        m.train_on_batch(x[4:], y[4:, -1], return_dict=True)["mae"], rel=1e-6
    )


def test_class_weight_applies_to_generator_batches_too() -> None:
    x, _ = data(n=16)
    y = (np.arange(16) % 2).astype(np.float32)[:, None]
    m = Sequential([keras.Input((10, 3)), layers.GRU(2), Dense(1, activation="sigmoid")])
    m.compile("sgd", "binary_crossentropy")
    w0 = m.get_weights()
    m.fit(iter([(x, y)]), steps_per_epoch=1, class_weight={0: 0.0, 1: 2.0}, verbose=0)
    via_gen = m.get_weights()
    m.set_weights(w0)
    m.compile("sgd", "binary_crossentropy")
    m.fit(x, y, batch_size=16, shuffle=False, sample_weight=np.where(y[:, 0] == 1, 2.0, 0.0), verbose=0)
    for a, b in zip(via_gen, m.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", [LSTM, layers.GRU])
def test_rnn_input_dropout_uses_one_mask_per_sequence(cell) -> None:
    # Keras's cells draw the input-dropout mask once per sequence and reuse it at every step; a
    # fresh mask per step would be a different (and noisier) regularizer.
    keras.utils.set_random_seed(0)
    x = np.ones((6, 9, 5), np.float32)
    layer = cell(3, dropout=0.4, return_sequences=True)
    layer(x, training=True)
    _, ctx = layer.forward(x, training=True)
    mask = ctx.dropout_mask
    assert mask is not None and mask.shape == (6, 1, 5)
    assert set(np.unique(mask)) <= {0.0, np.float32(1 / 0.6)}
    assert 0 < (mask == 0).sum() < mask.size
    dx = layer.backward(ctx, np.ones((6, 9, 3), np.float32))
    assert np.all(dx[np.broadcast_to(mask, dx.shape) == 0] == 0)


# ----- Input dtype ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["int32", "int64", np.int32, "float32", None, "bool", "float64"])
def test_input_dtype_is_stored_and_reported(dtype: object, tmp_path: object) -> None:
    want = "float32" if dtype is None else np.dtype(dtype).name  # type: ignore[call-overload]
    i = keras.Input((6,), dtype=dtype, name="ids")
    assert i.dtype == want
    f = keras.Model(i, layers.Dense(2)(i))
    assert f.inputs[0].dtype == want and f.get_layer("ids").dtype == want
    s = Sequential([keras.Input((6,), dtype=dtype), layers.Dense(2)])
    assert s.inputs[0].dtype == want and s.inputs[0].shape == (None, 6)
    # configs, seqcore files and Keras configs keep it
    assert keras.Model.from_config(f.get_config()).inputs[0].dtype == want
    assert Sequential.from_config(s.get_config()).inputs[0].dtype == want
    path = f"{tmp_path}/m.seqcore"
    s.save(path)
    assert keras.saving.load_model(path).inputs[0].dtype == want
    f.save(path)
    assert keras.saving.load_model(path).inputs[0].dtype == want
    kc = keras.interop.keras_config(s)
    assert kc["config"]["layers"][0]["config"]["dtype"] == want
    kf = keras.interop.keras_config(f)
    assert next(e for e in kf["config"]["layers"] if e["class_name"] == "InputLayer")["config"]["dtype"] == want


def test_input_dtype_default_and_errors() -> None:
    s = Sequential([layers.Dense(2, input_shape=(3,))])
    assert s.inputs[0].dtype == "float32"
    with pytest.raises(AttributeError, match="no defined inputs yet"):
        _ = Sequential([layers.Dense(2)]).inputs
    with pytest.raises(TypeError, match=r"dtype must be a number or bool type.*'int32'.*received dtype='string'"):
        keras.Input((3,), dtype="string")


def test_int_ids_input_runs_the_embedding() -> None:
    i = keras.Input((5,), dtype="int32")
    m = keras.Model(i, layers.LSTM(2)(layers.Embedding(9, 3, mask_zero=True)(i)))
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]], np.int32)
    np.testing.assert_allclose(m.predict(ids, verbose=0), m.predict(ids.astype(np.float32), verbose=0))
