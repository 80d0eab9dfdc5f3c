"""The Keras-style progress bar of ``fit``: a bar with ETA and running metrics (verbose=1), one line
per epoch (verbose=2), nothing (0)."""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np


def fmt_value(v: Any) -> str:
    # Array-valued results (F1Score(average=None), Precision(thresholds=[...])) show their mean,
    # as Keras's progress bar does; the logs and History keep the arrays.
    return f"{float(np.mean(v)) if np.ndim(v) else float(v):.4f}"


class Progress:
    """Keras-style progress: a bar with ETA and running metrics (verbose=1), one line per epoch
    (verbose=2), nothing (0)."""

    def __init__(self, epoch: int, epochs: int, steps: int | None, verbose: int):
        self.verbose, self.steps, self.t0 = verbose, steps, time.perf_counter()
        self.last_draw = 0.0
        # Redrawing a line in place only makes sense on a terminal; in a log file or a pipe (CI,
        # notebooks capturing output) Keras prints the finished line once, and so do we.
        isatty = getattr(sys.stdout, "isatty", None)
        self.dynamic = bool(isatty and isatty())
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs}")

    @staticmethod
    def _fmt(logs: dict[str, Any]) -> str:
        return " - ".join(f"{k}: {fmt_value(v)}" for k, v in logs.items())

    def update(self, step: int, logs: dict[str, float]) -> None:
        if self.verbose != 1:
            return
        self.step = step
        if not self.dynamic:
            return
        now = time.perf_counter()
        if now - self.last_draw < 0.1 and (self.steps is None or step < self.steps):
            return
        self.last_draw = now
        self.step = step
        elapsed = now - self.t0
        if self.steps:
            done = int(20 * step / self.steps)
            bar = "━" * done + "─" * (20 - done)
            eta = elapsed / step * (self.steps - step)
            head = f"{step:>{len(str(self.steps))}}/{self.steps} {bar} {int(eta)}s eta"
        else:
            head = f"{step} steps {elapsed:.0f}s"
        sys.stdout.write(f"\r{head} - {self._fmt(logs)}\033[K")
        sys.stdout.flush()

    def finish(self, logs: dict[str, float]) -> None:
        if not self.verbose:
            return
        elapsed = time.perf_counter() - self.t0
        steps = self.steps or getattr(self, "step", 1) or 1
        per = f"{elapsed / steps * 1e3:.0f}ms/step"
        if self.verbose == 1:
            bar = "━" * 20
            line = f"{steps}/{steps} {bar} {elapsed:.0f}s {per} - {self._fmt(logs)}"
            sys.stdout.write(f"\r{line}\033[K\n" if self.dynamic else f"{line}\n")
        else:
            sys.stdout.write(f"{steps}/{steps} - {elapsed:.0f}s - {per} - {self._fmt(logs)}\n")
        sys.stdout.flush()
