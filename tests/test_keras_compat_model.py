"""Keras 3 behaviours of the Sequential model that tutorials rely on, found by a side-by-side sweep
(Keras 3.15 vs seqcore with only the import changed): callbacks receive ``logs`` on every hook,
evaluate/predict take callbacks, ``metrics`` ignore sample weights while ``weighted_metrics`` use
them, compile's execution options are accepted, ``get_layer``/``pop``, and a warning when
``save`` is given a Keras file name."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import seqcore as keras

L = keras.layers


def data(n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(5)
    x = r.normal(size=(n, 6, 2)).astype(np.float32)
    return x, x[:, :, :1].sum(axis=1)


def model(compile_: bool = True, **compile_kw: Any) -> keras.Sequential:
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((6, 2)), L.LSTM(4, name="rnn"), L.Dense(1, name="head")])
    if compile_:
        m.compile("sgd", "mse", **({"metrics": ["mae"]} | compile_kw))
    return m


class Recorder(keras.callbacks.Callback):
    """A callback written the Keras way: every hook takes ``logs`` positionally, no default."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []

    def on_train_begin(self, logs):  # type: ignore[no-untyped-def, override]
        self.calls.append(("train_begin", logs))

    def on_epoch_begin(self, epoch, logs):  # type: ignore[no-untyped-def, override]
        self.calls.append(("epoch_begin", logs))

    def on_train_batch_begin(self, batch, logs):  # type: ignore[no-untyped-def, override]
        self.calls.append(("batch_begin", logs))

    def on_test_begin(self, logs):  # type: ignore[no-untyped-def, override]
        self.calls.append(("test_begin", logs))

    def on_test_batch_end(self, batch, logs):  # type: ignore[no-untyped-def]
        self.calls.append(("test_batch_end", sorted(logs)))

    def on_test_end(self, logs):  # type: ignore[no-untyped-def, override]
        self.calls.append(("test_end", sorted(logs)))

    def on_predict_batch_end(self, batch, logs):  # type: ignore[no-untyped-def]
        self.calls.append(("predict_batch_end", logs["outputs"].shape))

    def on_train_end(self, logs):  # type: ignore[no-untyped-def, override]
        self.calls.append(("train_end", sorted(logs)))


def test_every_hook_gets_logs_positionally_as_keras_passes_them() -> None:
    x, y = data()
    m, rec = model(), Recorder()
    m.fit(x, y, epochs=1, batch_size=12, validation_split=0.5, callbacks=[rec], verbose=0)
    kinds = [c[0] for c in rec.calls]
    assert kinds == ["train_begin", "epoch_begin", "batch_begin", "test_begin", "test_batch_end", "test_end",
                     "train_end"]  # fmt: skip
    assert rec.calls[0][1] is None and rec.calls[1][1] is None  # Keras passes None to these
    assert rec.calls[-1][1] == ["loss", "mae", "val_loss", "val_mae"]  # the last epoch's logs


def test_evaluate_and_predict_take_callbacks() -> None:
    x, y = data()
    m, rec = model(), Recorder()
    m.evaluate(x, y, batch_size=8, callbacks=[rec], verbose=0)
    assert [c[0] for c in rec.calls] == ["test_begin", *["test_batch_end"] * 3, "test_end"]
    rec.calls.clear()
    m.predict(x, batch_size=16, callbacks=[rec], verbose=0)
    assert rec.calls == [("predict_batch_end", (16, 1)), ("predict_batch_end", (8, 1))]
    with pytest.raises(TypeError, match=r"callbacks must be a list of Callback objects"):
        m.predict(x, callbacks=rec, verbose=0)  # type: ignore[arg-type]


def test_metrics_ignore_sample_weight_and_weighted_metrics_use_it() -> None:
    # Keras 3 (compile_utils.CompileMetrics): `metrics` are updated without sample weights.
    x, y = data()
    sw = np.linspace(0, 2, len(x)).astype(np.float32)
    m = model(weighted_metrics=["mae"])
    logs = m.evaluate(x, y, sample_weight=sw, return_dict=True, verbose=0)
    err = np.abs(m.predict(x, verbose=0) - y)[:, 0]
    assert logs["mae"] == pytest.approx(err.mean(), rel=1e-6)
    assert logs["weighted_mae"] == pytest.approx((err * sw).sum() / sw.sum(), rel=1e-6)
    # class_weight acts like sample_weight: only the loss and weighted_metrics see it.
    yb = (y > 0).astype(np.float32)
    c = keras.Sequential([keras.Input((6, 2)), L.LSTM(3), L.Dense(1, activation="sigmoid")])
    c.compile("sgd", "binary_crossentropy", metrics=["accuracy"], weighted_metrics=["accuracy"])
    hist = c.fit(x, yb, epochs=1, batch_size=24, class_weight={0: 1.0, 1: 3.0}, shuffle=False, verbose=0).history
    assert set(hist) == {"loss", "accuracy", "weighted_accuracy"}


def test_weighted_metrics_survive_save_and_load(tmp_path: Any) -> None:
    x, y = data()
    m = model(weighted_metrics=["mse"])
    m.save(tmp_path / "m.seqcore")
    back = keras.load_model(tmp_path / "m.seqcore")
    assert back.metrics_names == m.metrics_names == ["loss", "mae", "mse"]
    sw = np.arange(len(x), dtype=np.float32)
    a = m.evaluate(x, y, sample_weight=sw, return_dict=True, verbose=0)
    assert back.evaluate(x, y, sample_weight=sw, return_dict=True, verbose=0) == a


def test_compile_accepts_keras_execution_options() -> None:
    x, y = data()
    plain = model().fit(x, y, epochs=1, shuffle=False, verbose=0).history
    opts = model(run_eagerly=True, jit_compile=False, steps_per_execution=4, auto_scale_loss=False)
    assert opts.fit(x, y, epochs=1, shuffle=False, verbose=0).history == plain
    with pytest.raises(ValueError, match=r"steps_per_execution must be an int >= 1; received 0"):
        model(steps_per_execution=0)
    with pytest.raises(TypeError, match=r"unsupported argument\(s\) \['metric'\].*weighted_metrics"):
        model(metric=["mae"])


def test_get_layer_and_pop() -> None:
    m = model(compile_=False)
    assert m.get_layer("head") is m.layers[1] and m.get_layer(index=0) is m.layers[0]
    assert m.get_layer(index=-1) is m.layers[-1]
    with pytest.raises(ValueError, match=r"no layer named 'nope'; the layers are \['rnn', 'head'\]"):
        m.get_layer("nope")
    with pytest.raises(ValueError, match=r"exactly one of name or index"):
        m.get_layer()
    with pytest.raises(ValueError, match=r"index 2 is out of range for a model with 2 layer"):
        m.get_layer(index=2)
    head = m.pop()
    assert head.name == "head" and [layer.name for layer in m.layers] == ["rnn"]
    assert m.output_shape == (None, 4)
    m.pop()
    with pytest.raises(TypeError, match=r"no layers in the model to pop"):
        m.pop()


def test_save_under_a_keras_name_warns(tmp_path: Any) -> None:
    m = model()
    with pytest.warns(UserWarning, match=r"seqcore's own format.*seqcore.interop.save_keras"):
        m.save(tmp_path / "m.keras")
    assert keras.load_model(tmp_path / "m.keras").count_params() == m.count_params()


def test_generators_may_yield_lists_or_bare_inputs_as_keras_accepts() -> None:
    # Keras's unpack_x_y_sample_weight: a list is a tuple (a torch DataLoader yields lists) and a
    # bare array is x alone.
    x, y = data()
    m = model()
    ref = m.predict(x, batch_size=8, verbose=0)
    np.testing.assert_array_equal(m.predict((b for b in np.split(x, 3)), verbose=0), ref)
    np.testing.assert_array_equal(m.predict(([b] for b in np.split(x, 3)), verbose=0), ref)
    logs = m.evaluate(([a, b] for a, b in zip(np.split(x, 3), np.split(y, 3), strict=True)), verbose=0)
    assert logs == m.evaluate(x, y, batch_size=8, verbose=0)


def test_val_monitors_skip_epochs_that_validation_freq_does_not_validate() -> None:
    # Regression: with validation_freq=2 the first epoch has no val_loss, and EarlyStopping raised.
    x, y = data()
    m = model()
    stop = keras.callbacks.EarlyStopping(patience=1)
    plateau = keras.callbacks.ReduceLROnPlateau(patience=1)
    hist = m.fit(x, y, epochs=4, validation_split=0.25, validation_freq=2, callbacks=[stop, plateau], verbose=0)
    assert len(hist.history["loss"]) == 4 and len(hist.history["val_loss"]) == 2
    # Without any validation a val_* monitor can never appear: still a clear error up front.
    with pytest.raises(ValueError, match=r"'val_loss' is not in the logs.*validation_split"):
        model().fit(x, y, epochs=1, callbacks=[keras.callbacks.EarlyStopping()], verbose=0)
