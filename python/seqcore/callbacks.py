"""Callbacks with Keras's hooks: History, EarlyStopping, ReduceLROnPlateau, LearningRateScheduler,
TerminateOnNaN, LambdaCallback, CSVLogger, ModelCheckpoint. Every hook takes ``logs`` (``None``
where Keras passes none), positionally or by keyword."""

from __future__ import annotations

import csv
import math
import numbers
import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from . import metrics as metrics_mod


class Callback:
    """Keras's Callback: override any hook. As in Keras, ``on_train_batch_begin``/``_end`` call
    the older ``on_batch_begin``/``_end`` by default."""

    model: Any = None
    params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_train_end(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None: ...

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.on_batch_end(batch, logs=logs)

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_test_end(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_predict_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None: ...


#: Every hook a callback can have (LambdaCallback accepts exactly these).
HOOKS = tuple(name for name in vars(Callback) if name.startswith("on_"))


def _settable_lr(optimizer: Any, who: str) -> Any:
    """The model's optimizer, if its learning rate can be set: one built on a schedule recomputes
    its rate every step, so a value set from outside would be silently replaced (Keras refuses too)."""
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError(f"{who}: the model has no optimizer with a learning_rate; compile it first.")
    if getattr(optimizer, "schedule", None) is not None:
        raise TypeError(
            f"{who}: the optimizer was created with a LearningRateSchedule ({type(optimizer.schedule).__name__}) "
            f"as its learning_rate, which sets the rate at every step, so its learning rate is not settable. Use "
            f"either the schedule or {who}, with a float learning_rate."
        )
    return optimizer


def _current_lr(optimizer: Any) -> float:
    """The learning rate as Keras reads it (its variable is float32): the value logs and schedule
    functions see, e.g. 0.0010000000474974513 for 0.001."""
    return float(np.float32(optimizer.learning_rate))


class History(Callback):
    """``fit`` returns one: ``history.history["loss"]`` etc., one value per epoch."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def plot(self, path: str = "history.png", keys: list[str] | None = None) -> str:
        """Saves loss/metric curves to ``path`` (needs matplotlib: ``pip install seqcore[plot]``)."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("History.plot needs matplotlib: pip install 'seqcore[plot]'") from None
        keys = keys or [k for k in self.history if not k.startswith("val_")]
        fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
        for ax, k in zip(axes[0], keys, strict=False):
            ax.plot(self.epoch, self.history[k], label=k)
            if f"val_{k}" in self.history:
                ax.plot(self.epoch, self.history[f"val_{k}"], label=f"val_{k}")
            ax.set_xlabel("epoch")
            ax.set_title(k)
            ax.legend()
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return path


def _mode_better(mode: str) -> Callable[[float, float, float], bool]:
    """``better(current, reference, min_delta)`` for a resolved mode: Keras's ``_is_improvement``
    (an improvement must beat the reference by more than ``min_delta``; NaN never does)."""
    if mode == "min":
        return lambda cur, best, delta: cur < best - delta
    if mode == "max":
        return lambda cur, best, delta: cur > best + delta
    raise ValueError(f"mode must be 'auto', 'min' or 'max'. Received: mode={mode!r}")


def _check_mode(mode: Any, who: str) -> str:
    # Keras warns and falls back to "auto" on an unknown mode; a typo such as "maximum" would then
    # silently pick a direction, so it is refused here.
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max'. Received: mode={mode!r}")
    return str(mode)


class EarlyStopping(Callback):
    """Keras 3's EarlyStopping: stops when ``monitor`` has not improved (by more than
    ``min_delta``) for ``patience`` epochs. ``mode="auto"`` minimizes the loss and goes the way
    each compiled metric improves (``val_precision``, ``val_auc``, ``val_f1_score`` ... are
    maximized), and refuses a monitor whose direction it cannot tell.

    With ``restore_best_weights=True`` the weights of the best epoch are restored when training
    ends, whether it stopped early or ran to the last epoch (Keras 3 semantics; the first
    monitored epoch counts as best until another beats it). ``baseline``: training stops unless
    the monitor beats it within ``patience`` epochs."""

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ):
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), int(patience)
        self.verbose, self.baseline, self.restore_best_weights = verbose, baseline, restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.mode = _check_mode(mode, "EarlyStopping")
        self._better: Callable[[float, float, float], bool] | None = None
        self.stopped_epoch = 0
        self.wait, self.best_epoch = 0, 0
        self.best: float | None = None
        self.best_weights: list[np.ndarray] | None = None

    def _resolve_mode(self) -> Callable[[float, float, float], bool]:
        if self._better is None:
            mode = self.mode if self.mode != "auto" else _auto_mode(self.monitor, self.model, "EarlyStopping")
            self._better = _mode_better(mode)
        return self._better

    def _is_improvement(self, current: float, reference: float | None) -> bool:
        return reference is None or self._resolve_mode()(current, reference, self.min_delta)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        # Reset, so the instance can be reused across fit calls (as Keras).
        self.wait, self.best_epoch, self.stopped_epoch = 0, 0, 0
        self.best = None
        self.best_weights = None
        if self.model is not None:
            self._resolve_mode()  # a monitor of unknown direction fails before the first epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs and _validation_skipped(self.model, self.monitor, logs):
            return  # fit(validation_freq=k): no val_* values this epoch; Keras skips it too (with a warning)
        if self.monitor not in logs:
            raise ValueError(
                f"EarlyStopping: monitored value {self.monitor!r} is not in the logs {sorted(logs)}. For val_* "
                f"values pass validation_data or validation_split to fit."
            )
        if epoch < self.start_from_epoch:
            return
        current = logs[self.monitor]
        if self.restore_best_weights and self.best_weights is None:
            # Until something beats it, the first monitored epoch is the best one.
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # Patience restarts only when the baseline is beaten too.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ReduceLROnPlateau(Callback):
    """Keras 3's ReduceLROnPlateau: multiplies the learning rate by ``factor`` (not below
    ``min_lr``) after ``patience`` epochs without improvement of ``monitor``, then waits
    ``cooldown`` epochs. ``mode="auto"`` as for :class:`EarlyStopping`."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ):
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1. Received: factor={factor}")
        self.monitor, self.factor, self.patience, self.verbose = monitor, factor, patience, verbose
        self.min_delta, self.cooldown, self.min_lr = abs(min_delta), cooldown, min_lr
        self.mode = _check_mode(mode, "ReduceLROnPlateau")
        self._better: Callable[[float, float, float], bool] | None = None
        self.wait, self.cooldown_counter = 0, 0
        self.best: float | None = None

    def _resolve_mode(self) -> Callable[[float, float, float], bool]:
        if self._better is None:
            mode = self.mode if self.mode != "auto" else _auto_mode(self.monitor, self.model, "ReduceLROnPlateau")
            self._better = _mode_better(mode)
        return self._better

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.best, self.wait, self.cooldown_counter = None, 0, 0
        if self.model is not None:
            self._resolve_mode()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        better = self._resolve_mode()
        logs = logs if logs is not None else {}
        # As Keras 3: the rate in force during this epoch goes into the logs (History, CSVLogger).
        logs["learning_rate"] = _current_lr(self.model.optimizer)
        cur = logs.get(self.monitor)
        if cur is None and _validation_skipped(self.model, self.monitor, logs):
            return  # fit(validation_freq=k): this epoch was not validated
        if cur is None:
            warnings.warn(
                f"ReduceLROnPlateau: learning rate reduction is conditioned on {self.monitor!r}, which is not "
                f"available. Available metrics are: {','.join(logs)}.",
                UserWarning,
                stacklevel=2,
            )
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.best is None or better(cur, self.best, self.min_delta):
            self.best, self.wait = cur, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                opt = _settable_lr(self.model.optimizer, "ReduceLROnPlateau")
                old = _current_lr(opt)
                if old > np.float32(self.min_lr):  # Keras: a cooldown only follows an actual reduction
                    new = max(old * self.factor, self.min_lr)
                    opt.learning_rate = new
                    if self.verbose:
                        print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class LearningRateScheduler(Callback):
    """Keras 3's LearningRateScheduler: at the start of every epoch the optimizer's learning rate
    becomes ``schedule(epoch, lr)`` (epoch from 0, ``lr`` the current rate as a float; a function
    of ``epoch`` alone works too, as in Keras), and the rate goes into the epoch's logs as
    ``learning_rate``. ``verbose=1`` prints each update. For a rate that changes every step, pass a
    ``seqcore.optimizers.schedules`` object as the optimizer's learning_rate instead."""

    def __init__(self, schedule: Callable[..., Any], verbose: int = 0):
        if not callable(schedule):
            raise TypeError(
                f"LearningRateScheduler: schedule must be a function (epoch, lr) -> new lr; received {schedule!r}."
            )
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        opt = _settable_lr(self.model.optimizer, "LearningRateScheduler")
        lr = _current_lr(opt)
        try:
            new = self.schedule(epoch, lr)
        except TypeError:  # Keras's fallback for the old API, schedule(epoch)
            new = self.schedule(epoch)
        if isinstance(new, np.ndarray) and new.ndim == 0:
            new = new[()]
        if not isinstance(new, (float, np.float32, np.float64)):
            raise ValueError(
                f"LearningRateScheduler: the output of the schedule function should be a float (as Keras "
                f"requires). Got: {new!r} (a {type(new).__name__}); return e.g. float(...)."
            )
        if not math.isfinite(new) or new < 0:
            raise ValueError(
                f"LearningRateScheduler: the schedule returned learning rate {new} at epoch {epoch}; it must be a "
                f"finite number >= 0."
            )
        opt.learning_rate = float(new)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {new}.")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = _current_lr(self.model.optimizer)


class TerminateOnNaN(Callback):
    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """Keras's LambdaCallback: each given function becomes that hook and receives what the hook
    does, ``logs`` included: ``on_epoch_begin``/``on_epoch_end`` get ``(epoch, logs)``,
    ``on_train_batch_begin``/``_end`` ``(batch, logs)``, ``on_train_begin``/``_end`` ``(logs)``;
    any other hook (``on_test_end=...``, ``on_predict_batch_end=...``) by keyword. A hook left
    ``None`` does nothing; an unknown hook name is refused (it would never be called)."""

    def __init__(
        self,
        on_epoch_begin: Callable[..., Any] | None = None,
        on_epoch_end: Callable[..., Any] | None = None,
        on_train_begin: Callable[..., Any] | None = None,
        on_train_end: Callable[..., Any] | None = None,
        on_train_batch_begin: Callable[..., Any] | None = None,
        on_train_batch_end: Callable[..., Any] | None = None,
        **kwargs: Callable[..., Any] | None,
    ):
        hooks = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
            **kwargs,
        }
        for k, fn in hooks.items():
            if k not in HOOKS:
                raise TypeError(f"LambdaCallback: unexpected argument {k!r}; the hooks are {list(HOOKS)}.")
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError(f"LambdaCallback: {k} must be a function; received {fn!r}.")
            setattr(self, k, fn)


def _csv_value(v: Any) -> Any:
    """A log value for a CSV cell: numbers as floats; array results (F1Score(average=None),
    Precision(thresholds=[...])) as "[a, b]", the text Keras's CSVLogger writes for them."""
    a = np.asarray(v)
    if a.ndim == 0:
        return float(a)
    return "[" + ", ".join(str(float(e)) for e in a.ravel()) + "]"


class CSVLogger(Callback):
    """Keras's CSVLogger: one row per epoch, ``epoch`` then the first epoch's log keys in sorted
    order (plus a ``val_*`` column for each when the first epoch had no validation, so later
    validation epochs fit); a value missing in an epoch is written ``NA``, as Keras does. Array-valued
    results are written as ``[a, b]`` (a quoted cell, since it holds the separator)."""

    def __init__(self, filename: str, separator: str = ",", append: bool = False):
        self.filename, self.separator, self.append = filename, separator, append

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        self._writer: Any = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self._writer is None:
            keys = sorted(logs)
            if keys and not any(k.startswith("val_") for k in keys):
                keys += [f"val_{k}" for k in keys]
            self._keys = keys
            self._writer = csv.DictWriter(self._file, ["epoch", *keys], delimiter=self.separator)
            if not self.append or self._file.tell() == 0:
                self._writer.writeheader()
        row = {k: _csv_value(logs[k]) if k in logs else "NA" for k in self._keys}
        self._writer.writerow({"epoch": epoch, **row})
        self._file.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._file.close()


# Which way is better for seqcore's metrics (Keras 3 keeps this as each metric's ``_direction``).
_METRIC_DIRECTIONS: tuple[tuple[type, str], ...] = (
    (metrics_mod.BinaryAccuracy, "max"),
    (metrics_mod.CategoricalAccuracy, "max"),
    (metrics_mod.SparseCategoricalAccuracy, "max"),
    (metrics_mod.MeanSquaredError, "min"),
    (metrics_mod.MeanAbsoluteError, "min"),
    (metrics_mod.RootMeanSquaredError, "min"),
)


def _validation_skipped(model: Any, monitor: str, logs: dict[str, Any]) -> bool:
    """Whether ``monitor`` is a ``val_*`` value missing only because fit validates on other epochs
    (``validation_freq``), not because it never exists."""
    return (
        monitor.startswith("val_")
        and bool(getattr(model, "_validates", False))
        and not any(k.startswith("val_") for k in logs)
    )


def _auto_mode(monitor: str, model: Any, who: str) -> str:
    """Keras 3's ``mode="auto"``: ``loss``/``val_loss`` is minimized; a compiled metric (with or
    without the ``val_`` prefix) goes the way that metric improves (a ``_direction`` attribute of
    ``"up"``/``"down"`` on a custom Metric is honoured); anything else must be told."""
    name = monitor.removeprefix("val_")
    if name == "loss":
        return "min"
    metrics = list(getattr(model, "compiled_metrics", None) or [])
    # The names the logs use (a repeated metric name is logged as name_1, name_2, ... as in Keras).
    names = getattr(model, "metrics_names", None)
    names = list(names[1:]) if isinstance(names, list) and len(names) == len(metrics) + 1 else None
    for i, m in enumerate(metrics):
        if (names[i] if names is not None else getattr(m, "name", None)) != name:
            continue
        direction = getattr(m, "_direction", None)
        if direction in ("up", "down"):
            return "max" if direction == "up" else "min"
        for cls, mode in _METRIC_DIRECTIONS:
            if isinstance(m, cls):
                return mode
    raise ValueError(
        f"{who}: cannot tell whether {monitor!r} should be minimized or maximized (it is neither the loss nor a "
        f"compiled metric whose direction is known). Pass mode='min' or mode='max'."
    )


class ModelCheckpoint(Callback):
    """Keras's ModelCheckpoint: saves the model (``model.save``) or only its weights
    (``model.save_weights``, a safetensors file) at the end of every epoch or every ``save_freq``
    batches, optionally only when ``monitor`` improved.

    ``filepath`` may hold ``str.format`` fields: ``{epoch}`` (1-based, as Keras), ``{batch}``
    (1-based, with an integer ``save_freq``) and any key of the logs, e.g.
    ``"ckpt/{epoch:02d}-{val_loss:.3f}.seqcore"``. Keras insists on ``.keras``/``.weights.h5``
    suffixes; any name works here. Missing directories are created.

    ``mode="auto"`` follows Keras 3: ``loss``/``val_loss`` and error metrics (mae, mse, rmse) are
    minimized, accuracies maximized; other names need ``mode="min"`` or ``"max"``. With
    ``save_best_only``, an epoch whose logs lack ``monitor`` is saved anyway with a warning, as in
    Keras; ``best`` carries over to later ``fit`` calls. ``initial_value_threshold`` is the value
    the first save must beat.
    """

    def __init__(
        self,
        filepath: Any,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: Any = "epoch",
        initial_value_threshold: float | None = None,
    ):
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"ModelCheckpoint: filepath must be a str or os.PathLike; received {filepath!r}.")
        if not isinstance(monitor, str):
            raise TypeError(f"ModelCheckpoint: monitor must be a str such as 'val_loss'; received {monitor!r}.")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"ModelCheckpoint: mode must be 'auto', 'min' or 'max'. Received: mode={mode!r}")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(
                f"ModelCheckpoint: save_freq must be 'epoch' or a number of batches >= 1. Received: "
                f"save_freq={save_freq!r}"
            )
        if initial_value_threshold is not None and (
            isinstance(initial_value_threshold, bool) or not isinstance(initial_value_threshold, numbers.Real)
        ):
            raise TypeError(
                f"ModelCheckpoint: initial_value_threshold must be a number or None; received "
                f"{initial_value_threshold!r}."
            )
        self.filepath = os.fsdecode(os.fspath(filepath))
        self.monitor, self.verbose, self.mode = monitor, verbose, mode
        self.save_best_only, self.save_weights_only = bool(save_best_only), bool(save_weights_only)
        self.save_freq = save_freq
        self.best: float | None = None if initial_value_threshold is None else float(initial_value_threshold)
        self._better: Callable[[float, float, float], bool] | None = None
        self._epoch = 0
        self._batches_since_save = 0
        self._last_batch: int | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._batches_since_save, self._last_batch = 0, None
        if self.save_best_only:
            # Resolved once the model (and its compiled metrics) is known, so a bad monitor fails
            # before the first epoch rather than after it.
            mode = self.mode if self.mode != "auto" else _auto_mode(self.monitor, self.model, "ModelCheckpoint")
            self._better = _mode_better(mode)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.save_freq == "epoch":
            return
        # Batches are numbered from 0 in each epoch; count across epochs as Keras does.
        seen = batch + 1 if self._last_batch is None or batch <= self._last_batch else batch - self._last_batch
        self._last_batch = batch
        self._batches_since_save += seen
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save(self._epoch, batch, logs or {})

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.save_freq == "epoch":
            self._save(epoch, None, logs or {})

    def _path(self, epoch: int, batch: int | None, logs: dict[str, float]) -> str:
        fields: dict[str, Any] = {**logs, "epoch": epoch + 1}
        if batch is not None and "batch" not in logs:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except (KeyError, IndexError) as e:
            raise ValueError(
                f"ModelCheckpoint: cannot fill in filepath {self.filepath!r}: no value for {e}. Available: "
                f"{sorted(fields)}. (val_* values exist only at epoch ends with validation data.)"
            ) from None
        except ValueError as e:
            raise ValueError(f"ModelCheckpoint: cannot fill in filepath {self.filepath!r}: {e}.") from None

    def _should_save(self, epoch: int, logs: dict[str, float], path: str) -> bool:
        if not self.save_best_only:
            if self.verbose:
                print(f"Epoch {epoch + 1}: saving model to {path}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"ModelCheckpoint: can save the best model only with {self.monitor!r} available; the logs have "
                f"{sorted(logs)}. Saving anyway.",
                UserWarning,
                stacklevel=3,
            )
            return True
        if np.ndim(current) > 0:  # e.g. Precision(thresholds=[...]) logs one value per threshold
            warnings.warn(
                f"ModelCheckpoint: can save the best model only when {self.monitor!r} is a scalar; received "
                f"{current}. Saving anyway.",
                UserWarning,
                stacklevel=3,
            )
            return True
        current = float(current)
        assert self._better is not None
        best = "None" if self.best is None else f"{self.best:.5f}"
        # A NaN is never "best" (Keras would save it when nothing was saved yet, then never again).
        if not math.isnan(current) and (self.best is None or self._better(current, self.best, 0.0)):
            if self.verbose:
                print(
                    f"Epoch {epoch + 1}: {self.monitor} improved from {best} to {current:.5f}, saving model to {path}"
                )
            self.best = current
            return True
        if self.verbose:
            print(f"Epoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _save(self, epoch: int, batch: int | None, logs: dict[str, float]) -> None:
        path = self._path(epoch, batch, logs)
        if not self._should_save(epoch, logs, path):
            return
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: finished saving model to {path}")
