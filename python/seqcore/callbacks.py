"""Callbacks with Keras's hooks: History, EarlyStopping, ReduceLROnPlateau, TerminateOnNaN,
LambdaCallback, CSVLogger."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from typing import Any

import numpy as np


class Callback:
    model: Any = None
    params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None: ...
    def on_train_end(self, logs: dict[str, float] | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: dict[str, float] | None = None) -> None: ...
    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None: ...
    def on_test_begin(self, logs: dict[str, float] | None = None) -> None: ...
    def on_test_end(self, logs: dict[str, float] | None = None) -> None: ...
    def on_predict_begin(self, logs: dict[str, float] | None = None) -> None: ...
    def on_predict_end(self, logs: dict[str, float] | None = None) -> None: ...


class History(Callback):
    """``fit`` returns one: ``history.history["loss"]`` etc., one value per epoch."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
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


def _mode_better(monitor: str, mode: str) -> Callable[[float, float, float], bool]:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max'. Received: mode={mode!r}")
    if mode == "auto":
        mode = "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"
    if mode == "min":
        return lambda cur, best, delta: cur < best - delta
    return lambda cur, best, delta: cur > best + delta


class EarlyStopping(Callback):
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
        self._better = _mode_better(monitor, mode)
        self.stopped_epoch = 0

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.wait, self.best_epoch = 0, 0
        self.best: float | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.stopped_epoch = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(
                f"EarlyStopping: monitored value {self.monitor!r} is not in the logs {sorted(logs)}. For val_* "
                f"values pass validation_data or validation_split to fit."
            )
        if epoch < self.start_from_epoch:
            return
        cur = logs[self.monitor]
        ref = self.best if self.best is not None else self.baseline
        if ref is None or self._better(cur, ref, self.min_delta):
            self.best, self.best_epoch, self.wait = cur, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        if self.stopped_epoch and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")


class ReduceLROnPlateau(Callback):
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
        self.min_delta, self.cooldown, self.min_lr = min_delta, cooldown, min_lr
        self._better = _mode_better(monitor, mode)
        self.wait, self.cooldown_counter = 0, 0
        self.best: float | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        cur = (logs or {}).get(self.monitor)
        if cur is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.best is None or self._better(cur, self.best, self.min_delta):
            self.best, self.wait = cur, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                opt = self.model.optimizer
                new = max(opt.learning_rate * self.factor, self.min_lr)
                if new < opt.learning_rate:
                    opt.learning_rate = new
                    if self.verbose:
                        print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                self.cooldown_counter, self.wait = self.cooldown, 0


class TerminateOnNaN(Callback):
    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    def __init__(self, **hooks: Callable[..., Any]):
        for k, fn in hooks.items():
            if not k.startswith("on_"):
                raise TypeError(f"LambdaCallback: unexpected argument {k!r} (hooks are named on_*).")
            setattr(self, k, fn)


class CSVLogger(Callback):
    def __init__(self, filename: str, separator: str = ",", append: bool = False):
        self.filename, self.separator, self.append = filename, separator, append

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self._file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        self._writer: Any = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, ["epoch", *logs], delimiter=self.separator)
            if not self.append or self._file.tell() == 0:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **{k: float(np.asarray(v)) for k, v in logs.items()}})
        self._file.flush()

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        self._file.close()
