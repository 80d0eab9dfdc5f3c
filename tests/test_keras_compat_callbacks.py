"""Keras 3 callback behaviours found missing by the compatibility sweep: LearningRateScheduler,
``learning_rate`` in the epoch logs (ReduceLROnPlateau, LearningRateScheduler) so it reaches
History and CSVLogger, ``logs`` accepted by every hook of every built-in callback, LambdaCallback
passing logs through, Keras's CSVLogger columns. Compared with Keras when it is installed."""

from __future__ import annotations

import csv
import inspect
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import seqcore as keras
from seqcore import callbacks

L = keras.layers


def data(n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(2)
    x = r.normal(size=(n, 4, 2)).astype(np.float32)
    return x, x.sum(axis=(1, 2))[:, None]


def model(lr: Any = 0.01) -> keras.Sequential:
    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input((4, 2)), L.GRU(3), L.Dense(1)])
    m.compile(keras.optimizers.SGD(lr), "mse")
    return m


# ----- LearningRateScheduler ---------------------------------------------------------------------
def test_learning_rate_scheduler_keras_docstring_example() -> None:
    def scheduler(epoch: int, lr: float) -> float:
        return lr if epoch < 10 else lr * float(np.exp(-0.1))

    m = keras.Sequential([keras.Input((20,)), L.Dense(10)])
    m.compile(keras.optimizers.SGD(), loss="mse")
    assert round(m.optimizer.learning_rate, 5) == 0.01
    # Keras's docstring feeds np.arange(100), whose loss overflows (Keras trains on through the inf);
    # seqcore stops on a non-finite loss, so the inputs are scaled down.
    h = m.fit(np.arange(100).reshape(5, 20) / 100, np.zeros((5, 10)), epochs=15, verbose=0,
              callbacks=[callbacks.LearningRateScheduler(scheduler)])  # fmt: skip
    assert round(m.optimizer.learning_rate, 5) == 0.00607
    lrs = h.history["learning_rate"]
    assert len(lrs) == 15 and lrs[:10] == [float(np.float32(0.01))] * 10  # read as Keras's float32 variable
    assert lrs[-1] == float(np.float32(m.optimizer.learning_rate))


def test_learning_rate_scheduler_sets_the_rate_used_in_each_epoch(capsys: Any) -> None:
    x, y = data()
    seen: list[tuple[int, float]] = []

    def schedule(epoch: int, lr: float) -> float:
        seen.append((epoch, lr))
        return 0.0 if epoch >= 1 else 0.05

    m = model()
    w0 = [w.copy() for w in m.get_weights()]
    after: list[list[np.ndarray]] = []
    grab = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: after.append(m.get_weights()))
    h = m.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[callbacks.LearningRateScheduler(schedule, 1), grab])
    assert seen == [(0, float(np.float32(0.01))), (1, float(np.float32(0.05))), (2, 0.0)]
    assert h.history["learning_rate"] == [float(np.float32(0.05)), 0.0, 0.0]
    assert not np.allclose(after[0][0], w0[0])  # epoch 0 trained at 0.05
    for a, b in zip(after[1], after[2], strict=True):
        np.testing.assert_array_equal(a, b)  # epoch 2 at rate 0 changed nothing
    out = capsys.readouterr().out
    assert "Epoch 1: LearningRateScheduler setting learning rate to 0.05." in out
    assert "Epoch 3: LearningRateScheduler setting learning rate to 0.0." in out


def test_learning_rate_scheduler_old_api_initial_epoch_and_errors() -> None:
    x, y = data()
    m = model()
    h = m.fit(x, y, epochs=3, initial_epoch=1, verbose=0,
              callbacks=[callbacks.LearningRateScheduler(lambda epoch: 0.001 * epoch)])  # fmt: skip
    assert h.history["learning_rate"] == [float(np.float32(0.001)), float(np.float32(0.002))]
    with pytest.raises(ValueError, match=r"output of the schedule function should be a float.*Got: 1 \(a int\)"):
        model().fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.LearningRateScheduler(lambda e, lr: 1)])
    assert model().fit(x, y, epochs=1, verbose=0, callbacks=[
        callbacks.LearningRateScheduler(lambda e, lr: np.float32(0.02))]).history["learning_rate"] == [
        float(np.float32(0.02))]  # fmt: skip
    with pytest.raises(ValueError, match=r"returned learning rate nan at epoch 0"):
        model().fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.LearningRateScheduler(lambda e, lr: math.nan)])
    with pytest.raises(TypeError, match=r"schedule must be a function"):
        callbacks.LearningRateScheduler(0.01)  # type: ignore[arg-type]
    scheduled = model(lr=keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5))
    with pytest.raises(TypeError, match=r"LearningRateScheduler: the optimizer was created with a "
                       r"LearningRateSchedule \(ExponentialDecay\).*not settable"):  # fmt: skip
        scheduled.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.LearningRateScheduler(lambda e, lr: lr)])


# ----- ReduceLROnPlateau --------------------------------------------------------------------------
def scripted(values: list[float]) -> callbacks.LambdaCallback:
    """Puts a scripted ``score`` into the epoch logs (before the callbacks after it see them)."""
    return callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: logs.__setitem__("score", values[epoch]))


def test_reduce_lr_on_plateau_logs_the_learning_rate_into_history_and_csv(tmp_path: Path) -> None:
    x, y = data()
    path = tmp_path / "log.csv"
    plateau = callbacks.ReduceLROnPlateau(monitor="score", factor=0.5, patience=1, mode="min", verbose=0)
    cbs = [scripted([1.0, 1.0, 1.0, 0.5, 0.5]), plateau, callbacks.CSVLogger(str(path))]
    h = model(lr=0.1).fit(x, y, epochs=5, verbose=0, validation_data=(x, y), callbacks=cbs)
    f32 = [float(np.float32(v)) for v in (0.1, 0.1, 0.05, 0.025, 0.025)]
    assert h.history["learning_rate"] == f32  # the rate in force during each epoch (logged before a reduction)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "learning_rate", "loss", "score", "val_loss"]  # Keras: sorted
    assert [float(r["learning_rate"]) for r in rows] == f32


def test_reduce_lr_on_plateau_warns_without_its_monitor_and_refuses_a_schedule() -> None:
    m = model()
    cb = callbacks.ReduceLROnPlateau(monitor="val_loss")
    cb.set_model(m)
    cb.on_train_begin()
    logs: dict[str, Any] = {"loss": 1.0}
    with pytest.warns(UserWarning, match=r"conditioned on 'val_loss', which is not available. Available "
                      r"metrics are: loss,learning_rate"):  # fmt: skip
        cb.on_epoch_end(0, logs)
    assert logs["learning_rate"] == float(np.float32(0.01))
    s = model(lr=keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5))
    cb = callbacks.ReduceLROnPlateau(monitor="loss", patience=0)
    cb.set_model(s)
    cb.on_train_begin()
    cb.on_epoch_end(0, {"loss": 1.0})
    with pytest.raises(TypeError, match=r"ReduceLROnPlateau: the optimizer was created with a LearningRateSchedule"):
        cb.on_epoch_end(1, {"loss": 2.0})


# ----- CSVLogger ---------------------------------------------------------------------------------
def test_csv_logger_columns_as_keras_with_na_for_missing_values(tmp_path: Path) -> None:
    x, y = data()
    path = tmp_path / "log.csv"
    model().fit(x, y, epochs=2, verbose=0, validation_data=(x, y), validation_freq=2,
                callbacks=[callbacks.CSVLogger(str(path), separator=";")])  # fmt: skip
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    assert list(rows[0]) == ["epoch", "loss", "val_loss"]  # val_* columns added up front, as Keras
    assert rows[0]["val_loss"] == "NA" and rows[1]["val_loss"] != "NA"


# ----- logs on every hook -------------------------------------------------------------------------
BUILT_INS = [
    callbacks.Callback,
    callbacks.History,
    callbacks.EarlyStopping,
    callbacks.ReduceLROnPlateau,
    callbacks.LearningRateScheduler,
    callbacks.TerminateOnNaN,
    callbacks.LambdaCallback,
    callbacks.CSVLogger,
    callbacks.ModelCheckpoint,
]


@pytest.mark.parametrize("cls", BUILT_INS, ids=lambda c: c.__name__)
def test_every_hook_of_every_built_in_takes_logs_defaulting_to_none(cls: type) -> None:
    assert set(callbacks.HOOKS) >= {
        "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
        "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
        "on_predict_begin", "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end",
    }  # fmt: skip
    for hook in callbacks.HOOKS:
        params = inspect.signature(getattr(cls, hook)).parameters
        assert "logs" in params and params["logs"].default is None, (cls.__name__, hook)
        assert list(params).index("logs") == len(params) - 1  # last, so Keras's positional call fits


def test_base_callback_hooks_run_with_logs_positional_keyword_or_absent() -> None:
    cb = callbacks.Callback()
    for hook in callbacks.HOOKS:
        fn = getattr(cb, hook)
        params = inspect.signature(fn).parameters
        args = (0,) if "epoch" in params or "batch" in params else ()
        fn(*args)
        fn(*args, None)
        fn(*args, logs={"loss": 1.0})


def test_train_batch_hooks_call_the_older_on_batch_hooks_as_keras() -> None:
    class Old(callbacks.Callback):
        def __init__(self) -> None:
            self.seen: list[tuple[str, int, Any]] = []

        def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            self.seen.append(("begin", batch, logs))

        def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            self.seen.append(("end", batch, sorted(logs or {})))

    x, y = data()
    cb = Old()
    model().fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[cb])
    assert cb.seen == [("begin", 0, None), ("end", 0, ["loss"]), ("begin", 1, None), ("end", 1, ["loss"])]


def test_lambda_callback_passes_logs_and_takes_any_hook() -> None:
    x, y = data()
    calls: list[tuple[Any, ...]] = []
    cb = callbacks.LambdaCallback(
        on_train_begin=lambda logs: calls.append(("train_begin", logs)),
        on_epoch_begin=lambda epoch, logs: calls.append(("epoch_begin", epoch, logs)),
        on_train_batch_begin=lambda batch, logs: calls.append(("batch_begin", batch, logs)),
        on_train_batch_end=lambda batch, logs: calls.append(("batch_end", batch, sorted(logs))),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, sorted(logs))),
        on_train_end=lambda logs: calls.append(("train_end", sorted(logs))),
        on_test_end=lambda logs: calls.append(("test_end", sorted(logs))),
        on_predict_batch_end=None,  # None: no hook, as Keras
    )
    model().fit(x, y, epochs=1, batch_size=16, verbose=0, validation_data=(x, y), callbacks=[cb])
    assert calls == [
        ("train_begin", None),
        ("epoch_begin", 0, None),
        ("batch_begin", 0, None),
        ("batch_end", 0, ["loss"]),
        ("test_end", ["loss"]),
        ("epoch_end", 0, ["loss", "val_loss"]),
        ("train_end", ["loss", "val_loss"]),
    ]
    with pytest.raises(TypeError, match=r"unexpected argument 'on_epch_end'; the hooks are \[.*'on_epoch_end'"):
        callbacks.LambdaCallback(on_epch_end=print)
    with pytest.raises(TypeError, match=r"on_epoch_end must be a function; received 3"):
        callbacks.LambdaCallback(on_epoch_end=3)  # type: ignore[arg-type]


# ----- with Keras ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def K() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("keras")


def test_learning_rate_logs_equal_keras(K: Any) -> None:
    x, y = data()
    score = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]

    def schedule(epoch: int, lr: float) -> float:
        return lr * 0.9 if epoch % 2 else lr

    def run(api: Any, m: Any) -> dict[str, list[Any]]:
        cbs = api.callbacks
        m.compile(api.optimizers.SGD(0.1), "mse")
        inject = cbs.LambdaCallback(on_epoch_end=lambda epoch, logs: logs.__setitem__("score", score[epoch]))
        plateau = cbs.ReduceLROnPlateau(monitor="score", factor=0.3, patience=1, mode="min", min_lr=0.004)
        hist = m.fit(x, y, epochs=7, verbose=0, callbacks=[cbs.LearningRateScheduler(schedule), inject, plateau])
        return {k: v for k, v in hist.history.items() if k != "loss"}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km = K.Sequential([K.Input((4, 2)), K.layers.GRU(3), K.layers.Dense(1)])
        want = run(K, km)
    got = run(keras, model())
    assert got == want and len(got["learning_rate"]) == 7
