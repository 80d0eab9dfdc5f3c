"""The trainer: ``compile``, the train/test/predict steps, ``fit``/``evaluate``/``predict`` and
``train_on_batch``/``test_on_batch``/``predict_on_batch`` with Keras 3's semantics, for a model with
any number of inputs and outputs.

It works against a small interface that every seqcore model provides (``seqcore.models.Model``), so
it never imports a model class:

- ``_input_list(x, who)`` / ``_target_list(y, who)``: the data as one array per input / output;
- ``_run(xs, training) -> (outputs, masks, ctx)``: a forward pass on flat lists (``masks`` are the
  outputs' per-sample lengths or None, ``ctx.activity_loss`` the activity penalties);
- ``_run_backward(ctx, d_outputs)``: adds dL/dW to every weight's ``grad``;
- ``output_names``, ``weights``, ``trainable_weights``, ``regularization_loss()``, ``name``.
"""

from __future__ import annotations

import math
import numbers
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import _masks
from .. import callbacks as callbacks_mod
from .. import losses as losses_mod
from .. import metrics as metrics_mod
from .. import optimizers as optimizers_mod
from ..layers.base import deferred_state_updates
from . import data_adapters as da
from .callback_list import CallbackList, prepare
from .progbar import Progress


class NotCompiledError(ValueError, RuntimeError):
    """``fit``/``evaluate``/``train_on_batch``/``test_on_batch`` before ``compile``. Keras 3 raises a
    ValueError here and seqcore used to raise a RuntimeError: deriving from both keeps either
    ``except`` clause working."""


def _unique_log_names(names: Sequence[str], weighted: Sequence[bool]) -> list[str]:
    """Log keys for the compiled metrics, as Keras's CompileMetrics.result() names them: a repeated
    name gets ``_1``, ``_2``, ...; a weighted metric whose name is taken becomes ``weighted_<name>``
    first. Unlike Keras, a metric named ``loss`` is renamed too, instead of silently replacing the loss
    in the logs."""
    counters: dict[str, int] = {"loss": 1}
    out: list[str] = []
    for name0, is_weighted in zip(names, weighted, strict=True):
        base = name0
        if is_weighted and base in counters:
            base = f"weighted_{name0}"
        name = base
        while name in counters:
            index = counters[base]
            counters[base] += 1
            name = f"{base}_{index}"
        counters[name] = 1
        out.append(name)
    return out


class WeightsLock:
    """Readers (forward passes) share the weights; the optimizer's in-place update is exclusive.
    Inference from other threads during ``fit`` then never reads a half-updated weight, and NumPy's
    borrow checks in the kernels never see a weight written while it is read."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting = 0  # writers waiting: new readers queue behind them, so updates never starve

    def read(self) -> _Reading:
        return _Reading(self)

    def write(self) -> _Writing:
        return _Writing(self)


class _Reading:
    def __init__(self, lock: WeightsLock):
        self.lock = lock

    def __enter__(self) -> None:
        with self.lock._cond:
            while self.lock._writing or self.lock._waiting:
                self.lock._cond.wait()
            self.lock._readers += 1

    def __exit__(self, *exc: Any) -> None:
        with self.lock._cond:
            self.lock._readers -= 1
            self.lock._cond.notify_all()


class _Writing:
    def __init__(self, lock: WeightsLock):
        self.lock = lock

    def __enter__(self) -> None:
        with self.lock._cond:
            self.lock._waiting += 1
            while self.lock._writing or self.lock._readers:
                self.lock._cond.wait()
            self.lock._waiting -= 1
            self.lock._writing = True

    def __exit__(self, *exc: Any) -> None:
        with self.lock._cond:
            self.lock._writing = False
            self.lock._cond.notify_all()


class Trainer:
    """Mixed into ``seqcore.models.Model``."""

    optimizer: optimizers_mod.Optimizer | None
    loss: Any
    stop_training: bool

    def _init_trainer(self) -> None:
        self._weights_lock = WeightsLock()
        self.optimizer = None
        self.loss = None
        self.compiled_metrics: list[metrics_mod.Metric] = []
        self.stop_training = False
        self.history: callbacks_mod.History | None = None
        self._output_losses: list[losses_mod.Loss | None] = []
        self._loss_weights: list[float] = []
        self._metric_outputs: list[int] = []
        self._metric_weighted: list[bool] = []
        self._metric_log_names: list[str] = []
        self._compile_args: dict[str, Any] = {}

    # ----- compile ---------------------------------------------------------------------------
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Any = None,
        loss_weights: Any = None,
        weighted_metrics: Any = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile: Any = "auto",
        auto_scale_loss: bool = True,
        **kwargs: Any,
    ) -> None:
        """As Keras 3. With several outputs, ``loss``, ``loss_weights``, ``metrics`` and
        ``weighted_metrics`` may be given per output as a list (in output order) or a dict by
        output name; one loss is applied to every output. ``metrics`` are computed without
        ``sample_weight``/``class_weight`` (the padding mask still applies); ``weighted_metrics``
        with them. ``run_eagerly``, ``steps_per_execution``, ``jit_compile`` and
        ``auto_scale_loss`` are accepted and have nothing to change: seqcore runs every step eagerly
        on its Rust kernels, in float32, with the same results."""
        who = f"{self.name}.compile"  # type: ignore[attr-defined]
        if kwargs:
            raise TypeError(
                f"{who}: unsupported argument(s) {sorted(kwargs)}; compile takes optimizer, loss, metrics, "
                f"loss_weights, weighted_metrics, run_eagerly, steps_per_execution, jit_compile, auto_scale_loss."
            )
        if loss is None:
            raise ValueError(f"{who}: a loss is required, e.g. compile(optimizer='adam', loss='mse').")
        if isinstance(steps_per_execution, bool) or not isinstance(steps_per_execution, (int, np.integer)):
            raise TypeError(f"{who}: steps_per_execution must be an int >= 1; received {steps_per_execution!r}.")
        if steps_per_execution < 1:
            raise ValueError(f"{who}: steps_per_execution must be an int >= 1; received {steps_per_execution!r}.")
        names = self.output_names  # type: ignore[attr-defined]
        # Resolve everything first: a compile that fails leaves the model as it was.
        out_losses = [None if spec is None else losses_mod.get(spec) for spec in _per_output(loss, names, "loss", who)]
        if all(lf is None for lf in out_losses):
            raise ValueError(f"{who}: a loss is required for at least one output; received loss={loss!r}.")
        lw = _per_output(1.0 if loss_weights is None else loss_weights, names, "loss_weights", who)
        weights = [1.0 if w is None else _number(w, "loss_weights", who) for w in lw]
        opt = optimizers_mod.get(optimizer)
        mets: list[metrics_mod.Metric] = []
        outs: list[int] = []
        flags: list[bool] = []
        base_names: list[str] = []
        for arg, value, weighted in (("metrics", metrics, False), ("weighted_metrics", weighted_metrics, True)):
            for i, specs in enumerate(_metrics_per_output(value, names, arg, who)):
                lf = out_losses[i]
                for spec in specs:
                    m = metrics_mod.get(spec, lf.name if lf is not None else "mse")
                    mets.append(m)
                    outs.append(i)
                    flags.append(weighted)
                    base_names.append(m.name if len(names) == 1 else f"{names[i]}_{m.name}")
        seen: dict[int, int] = {}
        for i, m in enumerate(mets):
            if id(m) in seen:
                raise ValueError(
                    f"{who}: metrics[{seen[id(m)]}] and metrics[{i}] are the same {type(m).__name__} object, which "
                    f"would count every batch twice; pass two instances (e.g. {type(m).__name__}() twice)."
                )
            seen[id(m)] = i
        self.optimizer = opt
        self.loss = out_losses[0] if len(names) == 1 and not isinstance(loss, (list, dict)) else loss
        self._output_losses, self._loss_weights = out_losses, weights
        self.loss_weight = weights[0] if len(weights) == 1 else 1.0
        self.compiled_metrics, self._metric_outputs, self._metric_weighted = mets, outs, flags
        self._metric_log_names = _unique_log_names(base_names, flags)
        self._compile_args = {
            "loss": loss,
            "loss_weights": loss_weights,
            "metrics": metrics,
            "weighted_metrics": weighted_metrics,
        }

    @property
    def metrics_names(self) -> list[str]:
        """The keys of the logs: ``"loss"``, each output's ``<name>_loss`` when there are several,
        then each compiled metric's name (a repeated name gets ``_1``, ``_2``, ... as in Keras)."""
        return ["loss", *self._output_loss_names(), *self._metric_log_names]

    def _output_loss_names(self) -> list[str]:
        names = self.output_names  # type: ignore[attr-defined]
        if len(names) == 1:
            return []
        return [f"{n}_loss" for n, lf in zip(names, self._output_losses, strict=True) if lf is not None]

    def _metric_results(self) -> dict[str, Any]:
        return {n: m.result() for n, m in zip(self._metric_log_names, self.compiled_metrics, strict=True)}

    def _weighted_flags(self) -> list[bool]:
        return list(self._metric_weighted)

    def _require_compiled(self, where: str) -> None:
        if self.optimizer is None or not self._output_losses:
            raise NotCompiledError(f"{self.name}.{where}: compile the model first, e.g. model.compile('adam', 'mse').")  # type: ignore[attr-defined]

    # ----- losses and metrics of one batch ------------------------------------------------------
    @staticmethod
    def _mask_weights(
        out: np.ndarray, lengths: np.ndarray | None, sw: np.ndarray | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Keras excludes masked steps from the loss and metrics: the mask becomes a weight.

        Returns (loss weights, metric weights). For the loss the mask is scaled by total/valid steps
        of the batch, so that its mean (sum over batch size) runs over the valid steps only, as
        Keras's masked loss does. Metrics get the plain 0/1 mask (times ``sw``): they accumulate
        weighted counts and sums over the epoch themselves, and a rescaled mask would inflate
        counts (TruePositives) and weight batches with more padding more heavily."""
        if lengths is None or out.ndim < 3:
            return sw, sw
        valid = _masks.to_bool(lengths, out.shape[1])
        mask = valid.astype(np.float32)
        if sw is not None:
            sw = np.asarray(sw, np.float32)
            mask = mask * (sw if sw.ndim == 2 else sw.reshape(-1, 1))
        n_valid = float(valid.sum())
        scale = np.float32(mask.size / n_valid) if n_valid else np.float32(0.0)
        return mask * scale, mask

    def _losses(
        self,
        ys: list[np.ndarray],
        outs: list[np.ndarray],
        masks: list[Any],
        sw: np.ndarray | None,
        want_grads: bool = True,
    ) -> tuple[float, list[float], list[np.ndarray | None]]:
        """The weighted sum of the outputs' losses, each output's (weighted) loss, and dL/d(output)."""
        total = 0.0
        per: list[float] = []
        grads: list[np.ndarray | None] = []
        for i, (lf, w) in enumerate(zip(self._output_losses, self._loss_weights, strict=True)):
            if lf is None:
                grads.append(None)
                continue
            loss_sw, _ = self._mask_weights(outs[i], masks[i], sw)
            try:
                value, grad = lf(ys[i], outs[i], loss_sw)
            except ValueError as e:
                where = "" if len(outs) == 1 else f" output {self.output_names[i]!r}:"  # type: ignore[attr-defined]
                raise ValueError(f"{self.name}:{where} {e}") from None  # type: ignore[attr-defined]
            per.append(value)  # Keras logs each output's loss unweighted; the total is weighted
            if w != 1.0:
                value, grad = value * w, grad * np.float32(w)
            total += value
            grads.append(grad if want_grads else None)
        return total, per, grads

    def _update_metrics(self, ys: list[np.ndarray], outs: list[np.ndarray], masks: list[Any], sw: Any) -> None:
        """Keras 3: ``metrics`` see no sample weights, ``weighted_metrics`` see them; both see the
        padding mask (as Keras's metrics read the output's mask)."""
        for m, i, is_weighted in zip(self.compiled_metrics, self._metric_outputs, self._metric_weighted, strict=True):
            _, weighted = self._mask_weights(outs[i], masks[i], sw)
            plain = weighted if sw is None else self._mask_weights(outs[i], masks[i], None)[1]
            m.update_state(ys[i], outs[i], weighted if is_weighted else plain)

    def _align(self, ys: list[np.ndarray], outs: list[np.ndarray]) -> list[np.ndarray]:
        return [da.match_rank(y, o) for y, o in zip(ys, outs, strict=True)]

    def _batch_logs(self, total: float, per: list[float]) -> dict[str, Any]:
        logs: dict[str, Any] = {"loss": total}
        logs.update(zip(self._output_loss_names(), per, strict=False))
        return logs

    # ----- steps ---------------------------------------------------------------------------
    def _train_step(self, xs: list[np.ndarray], ys: list[np.ndarray], sw: np.ndarray | None) -> dict[str, Any]:
        assert self.optimizer is not None
        with deferred_state_updates() as state_updates:  # moving statistics: written with the update below
            outs, masks, ctx = self._run(xs, training=True)  # type: ignore[attr-defined]
        self._activity_loss = ctx.activity_loss
        ys = self._align(ys, outs)
        loss, per, grads = self._losses(ys, outs, masks, sw)
        reg = self.regularization_loss()  # type: ignore[attr-defined]
        total = loss + reg + ctx.activity_loss
        if not math.isfinite(total):
            raise FloatingPointError(
                f"{self.name}: the loss became {total} at iteration {self.optimizer.iterations + 1}; the weights "  # type: ignore[attr-defined]
                f"were left as they were before this step. Common causes: a learning rate too high, unscaled "
                f"inputs or targets, or an activation such as relu in a recurrent layer exploding."
            )
        for w in self.weights:  # type: ignore[attr-defined]
            w.grad = None
        self._run_backward(ctx, grads)  # type: ignore[attr-defined]
        weights = self.trainable_weights  # type: ignore[attr-defined]
        gradients = []
        for w in weights:
            gw = w.grad if w.grad is not None else np.zeros_like(w.value)
            if w.regularizer is not None:
                gw = gw + w.regularizer.grad(w.value)
            gradients.append(gw)
        for w in self.weights:  # type: ignore[attr-defined]
            w.grad = None
        bad = next((w for w, gw in zip(weights, gradients, strict=True) if not np.isfinite(gw).all()), None)
        if bad is not None:
            raise FloatingPointError(
                f"{self.name}: the gradient of {bad.name} became non-finite at iteration "  # type: ignore[attr-defined]
                f"{self.optimizer.iterations + 1}; the weights were left as they were before this step."
            )
        with self._weights_lock.write():
            self.optimizer.apply(weights, gradients)
            for w, value in state_updates:
                w.value[...] = value
        self._update_metrics(ys, outs, masks, sw)
        return {**self._batch_logs(total, per), "_n": len(xs[0]), "_lengths": masks[0]}

    def _test_step(self, xs: list[np.ndarray], ys: list[np.ndarray], sw: Any) -> tuple[float, list[float]]:
        outs, masks, ctx = self._run(xs, training=False)  # type: ignore[attr-defined]
        self._activity_loss = ctx.activity_loss
        ys = self._align(ys, outs)
        loss, per, _ = self._losses(ys, outs, masks, sw, want_grads=False)
        self._update_metrics(ys, outs, masks, sw)
        return loss + ctx.activity_loss, per

    def _predict_step(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        with self._weights_lock.read():
            outs, _, _ = self._run(xs, training=False)  # type: ignore[attr-defined]
        return outs

    # ----- one batch -----------------------------------------------------------------------
    def train_on_batch(
        self,
        x: Any,
        y: Any,
        sample_weight: Any = None,
        class_weight: dict[int, float] | None = None,
        return_dict: bool = False,
    ) -> Any:
        """One training step on one batch; like Keras 3 it resets the metrics first and returns the
        loss (or ``[loss, *metrics]`` when metrics are compiled, or a dict with ``return_dict``)."""
        self._require_compiled("train_on_batch")
        who = f"{self.name}.train_on_batch"  # type: ignore[attr-defined]
        xs = self._check_inputs(self._input_list(x, who), "train_on_batch")  # type: ignore[attr-defined]
        ys = self._target_list(y, who)  # type: ignore[attr-defined]
        sw = da.sample_weight(sample_weight, len(xs[0]), who)
        if class_weight is not None:
            if sw is not None:
                raise ValueError(f"{who}: pass sample_weight or class_weight, not both (as Keras).")
            sw = da.class_weights(ys[0], class_weight, self.name)  # type: ignore[attr-defined]
        for m in self.compiled_metrics:
            m.reset_state()
        logs = self._public(self._train_step(xs, ys, sw))
        logs.update(self._metric_results())
        return logs if return_dict else (logs["loss"] if len(logs) == 1 else list(logs.values()))

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None, return_dict: bool = False) -> Any:
        self._require_compiled("test_on_batch")
        who = f"{self.name}.test_on_batch"  # type: ignore[attr-defined]
        xs = self._check_inputs(self._input_list(x, who), "test_on_batch")  # type: ignore[attr-defined]
        ys = self._target_list(y, who)  # type: ignore[attr-defined]
        sw = da.sample_weight(sample_weight, len(xs[0]), who)
        for m in self.compiled_metrics:
            m.reset_state()
        loss, per = self._test_step(xs, ys, sw)
        logs = self._batch_logs(loss + self.regularization_loss(), per)  # type: ignore[attr-defined]
        logs.update(self._metric_results())
        return logs if return_dict else (logs["loss"] if len(logs) == 1 else list(logs.values()))

    def predict_on_batch(self, x: Any) -> Any:
        who = f"{self.name}.predict_on_batch"  # type: ignore[attr-defined]
        xs = self._check_inputs(self._input_list(x, who), "predict_on_batch")  # type: ignore[attr-defined]
        return self._structure_outputs(self._predict_step(xs))  # type: ignore[attr-defined]

    @staticmethod
    def _public(logs: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in logs.items() if not k.startswith("_")}

    # ----- loops ---------------------------------------------------------------------------
    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: int | None = None,
        callbacks: Sequence[callbacks_mod.Callback] | None = None,
    ) -> Any:
        who = f"{self.name}.predict"  # type: ignore[attr-defined]
        bs = da.positive_int_or_none(batch_size, "batch_size", who) or 32
        steps = da.positive_int_or_none(steps, "steps", who)
        da.check_input_kind(x, who)
        data = self._input_list(x, who) if da.is_arrays(x) else x  # type: ignore[attr-defined]
        cbs = CallbackList(prepare(callbacks, who), self)
        cbs.call("on_predict_begin", None)
        outs: list[list[np.ndarray]] = []
        for i, (xb, _, _) in enumerate(da.batches(data, None, None, bs, False, self, steps=steps, who=who)):
            cbs.call("on_predict_batch_begin", i, None)
            outs.append(self._predict_step(self._check_inputs(xb, "predict")))  # type: ignore[attr-defined]
            cbs.call("on_predict_batch_end", i, {"outputs": self._structure_outputs(outs[-1])})  # type: ignore[attr-defined]
        cbs.call("on_predict_end", None)
        if not outs:
            raise ValueError(f"{who}: no input data.")
        joined = [np.concatenate([o[k] for o in outs], axis=0) for k in range(len(outs[0]))]
        return self._structure_outputs(joined)  # type: ignore[attr-defined]

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: Any = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: Sequence[callbacks_mod.Callback] | None = None,
        return_dict: bool = False,
    ) -> Any:
        self._require_compiled("evaluate")
        who = f"{self.name}.evaluate"  # type: ignore[attr-defined]
        bs = da.positive_int_or_none(batch_size, "batch_size", who) or 32
        steps = da.positive_int_or_none(steps, "steps", who)
        x, y, sample_weight = da.check_data(x, y, sample_weight, who, self)
        cbs = CallbackList(prepare(callbacks, who), self)
        cbs.call("on_test_begin", None)
        total, count = 0.0, 0
        per_total: list[float] = []
        for m in self.compiled_metrics:
            m.reset_state()
        for i, (xb, yb, swb) in enumerate(da.batches(x, y, sample_weight, bs, False, self, steps=steps, who=who)):
            cbs.call("on_test_batch_begin", i, None)
            da.require_targets(yb, who)  # type: ignore[arg-type]
            assert yb is not None
            loss, per = self._test_step(self._check_inputs(xb, "evaluate"), yb, swb)  # type: ignore[attr-defined]
            n = len(xb[0])
            total += loss * n  # as Keras: per batch, weighted by its size
            per_total = [a + b * n for a, b in zip(per_total, per, strict=True)] if per_total else [p * n for p in per]
            count += n
            if cbs:
                running = self._batch_logs(total / count, [p / count for p in per_total])
                cbs.call("on_test_batch_end", i, {**running, **self._metric_results()})
        reg = self.regularization_loss()  # type: ignore[attr-defined]
        c = max(1, count)
        logs = {**self._batch_logs(total / c + reg, [p / c for p in per_total]), **self._metric_results()}
        cbs.call("on_test_end", logs)
        if verbose not in (0, "0", False) and verbose != "auto":
            print(Progress._fmt(logs))
        if return_dict:
            return logs
        return logs["loss"] if len(logs) == 1 else list(logs.values())

    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: Any = "auto",
        callbacks: Sequence[callbacks_mod.Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: dict[int, float] | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: int = 1,
        tbptt_steps: int | None = None,
    ) -> callbacks_mod.History:
        """Keras's fit. ``x`` may be arrays (with ``y``; a list or a dict by name for a model with
        several inputs or outputs), a ``seqcore.utils.Sequence`` / Keras ``PyDataset``-like object
        (``__len__``/``__getitem__``) or a generator of ``(x, y)`` batches (with
        ``steps_per_epoch``).

        ``tbptt_steps=k`` (seqcore's addition; Keras has no equivalent) trains with **truncated
        backpropagation through time**: each batch ``(batch, T, ...)`` is cut along time into chunks
        of ``k`` steps (the last one shorter). The recurrent layers start every batch from zeros
        (a ``stateful`` layer from its carried state) and carry their final state from one chunk to
        the next, but no gradient crosses a chunk boundary.

        - Per-step targets (the last LSTM/GRU has ``return_sequences=True`` and ``y`` has the time
          axis): every chunk is a training step of its own — forward, loss on its targets,
          backward, optimizer update (so an epoch makes ``ceil(T / k)`` updates per batch, and
          ``gradient_accumulation_steps`` counts chunks). The same as training a ``stateful``
          copy of the model on consecutive chunks and resetting it after each batch.
        - One target per sequence (the last LSTM/GRU has ``return_sequences=False``): the earlier
          chunks only advance the state, as an inference forward (no dropout, nothing kept for
          backward); the last chunk is the training step.

        Memory: backward keeps the activations of one chunk instead of the whole sequence, so the
        recurrent layers' saved gates and states (the bulk of a training step's memory for long
        sequences) shrink by about ``T / k``; the input batch itself is still whole. The logged
        ``loss`` of a batch is the chunks' losses averaged with their number of (unmasked) steps
        as weights; metrics accumulate over the chunks, so they cover every step once. Validation,
        ``evaluate`` and ``predict`` run whole sequences (they keep no tape). With ``k >= T`` the
        training is exactly that of a plain ``fit``.

        Only models where chunking does not change the forward computation are accepted: around
        the recurrent layers, layers must act on each time step on its own (Dense, Activation,
        Dropout, Masking, TimeDistributed(...)); Conv1D (even causal: its receptive field reaches
        into the previous chunk), pooling, Flatten/Reshape over time, Bidirectional and
        ``go_backwards`` (both need the end of the sequence first) are refused, with the reason.
        Layers after a ``return_sequences=False`` layer see no time axis and may be anything.
        Masking works (the mask is cut with the inputs; use post-padding as everywhere). A model
        with one input and one output is required."""
        from .. import config
        from . import tbptt as tbptt_mod

        self._require_compiled("fit")
        config.refresh_default_limit()  # the default training-memory limit follows what is free now
        assert self.optimizer is not None
        who = f"{self.name}.fit"  # type: ignore[attr-defined]
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"{who}: epochs must be an int >= 0. Received: epochs={epochs!r}")
        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) or initial_epoch < 0:
            raise ValueError(f"{who}: initial_epoch must be an int >= 0. Received: initial_epoch={initial_epoch!r}")
        if (
            isinstance(validation_split, bool)
            or not isinstance(validation_split, numbers.Real)
            or not 0 <= validation_split < 1
        ):
            raise ValueError(
                f"{who}: validation_split must be a number in [0, 1). Received: validation_split={validation_split!r}"
            )
        bs = da.positive_int_or_none(batch_size, "batch_size", who) or 32
        steps_per_epoch = da.positive_int_or_none(steps_per_epoch, "steps_per_epoch", who)
        validation_steps = da.positive_int_or_none(validation_steps, "validation_steps", who)
        validation_batch_size = da.positive_int_or_none(validation_batch_size, "validation_batch_size", who)
        validation_freq = da.positive_int_or_none(validation_freq, "validation_freq", who) or 1
        plan = None if tbptt_steps is None else tbptt_mod.plan(self, tbptt_steps, who)
        arrays = da.is_arrays(x)
        x, y, sample_weight = da.check_data(x, y, sample_weight, who, self)
        if arrays:
            self._check_inputs(x, "fit")  # type: ignore[attr-defined]
            for i, a in enumerate(x):
                da.check_finite(a, "x" if len(x) == 1 else f"x[{i}]", self.name)  # type: ignore[attr-defined]
            for i, a in enumerate(y):
                da.check_finite(a, "y" if len(y) == 1 else f"y[{i}]", self.name)  # type: ignore[attr-defined]
            if class_weight is not None:
                cw = da.class_weights(y[0], class_weight, self.name)  # type: ignore[attr-defined]
                sample_weight = cw if sample_weight is None else sample_weight * cw
            if validation_split and validation_data is None:
                n = len(x[0])
                n_val = int(n * validation_split)
                if n_val == 0:
                    raise ValueError(f"{who}: validation_split={validation_split} leaves no validation sample.")
                split = n - n_val
                validation_data = (
                    da.FlatArrays(a[split:] for a in x),
                    da.FlatArrays(a[split:] for a in y),
                ) + ((sample_weight[split:],) if sample_weight is not None else ())
                x, y = da.FlatArrays(a[:split] for a in x), da.FlatArrays(a[:split] for a in y)
                sample_weight = None if sample_weight is None else sample_weight[:split]
        elif validation_split:
            raise ValueError(f"{who}: validation_split needs array inputs; pass validation_data instead.")
        history = callbacks_mod.History()
        steps = steps_per_epoch or (math.ceil(len(x[0]) / bs) if arrays else da.len_or_none(x))
        params = {"epochs": epochs, "steps": steps, "verbose": verbose}
        cbs = CallbackList([*(callbacks or []), history], self, params)
        self.stop_training = False
        self._validates = validation_data is not None  # callbacks tell skipped from missing val_* values
        verbose_level = 1 if verbose == "auto" else int(verbose)
        cbs.call("on_train_begin", None)
        epoch_logs: dict[str, Any] | None = None
        for epoch in range(initial_epoch, epochs):
            cbs.call("on_epoch_begin", epoch, None)
            for m in self.compiled_metrics:
                m.reset_state()
            bar = Progress(epoch, epochs, steps, verbose_level)
            total, count = 0.0, 0
            per_total: list[float] = []
            batches = da.batches(x, y, sample_weight, bs, shuffle, self, steps=steps_per_epoch, who=who)
            for step, (xb, yb, swb) in enumerate(batches):
                cbs.call("on_train_batch_begin", step, None)
                self._check_inputs(xb, "fit")  # type: ignore[attr-defined]
                da.require_targets(yb, who)  # type: ignore[arg-type]
                assert yb is not None
                if class_weight is not None and not arrays:  # arrays got theirs above, once
                    cw = da.class_weights(yb[0], class_weight, self.name)  # type: ignore[attr-defined]
                    swb = cw if swb is None else swb * cw
                if plan is not None:
                    logs = tbptt_mod.step(self, xb, yb, swb, plan, who)
                else:
                    logs = self._train_step(xb, yb, swb)
                logs = self._public(logs)
                n = len(xb[0])
                total += logs["loss"] * n
                per = [v for k, v in logs.items() if k != "loss"]
                per_total = (
                    [a + b * n for a, b in zip(per_total, per, strict=True)] if per_total else [p * n for p in per]
                )
                count += n
                shown = {**self._batch_logs(total / max(1, count), [p / max(1, count) for p in per_total]),
                         **self._metric_results()}  # fmt: skip
                cbs.call("on_train_batch_end", step, {**shown, **logs})
                bar.update(step + 1, shown)
                if self.stop_training:
                    break
            c = max(1, count)
            epoch_logs = {**self._batch_logs(total / c, [p / c for p in per_total]), **self._metric_results()}
            if validation_data is not None and (epoch + 1) % validation_freq == 0:
                vx, vy, vsw = da.split_validation(validation_data, who)
                # With the fit's callbacks, as Keras does (their on_test_* hooks see the validation).
                val = self.evaluate(vx, vy, batch_size=validation_batch_size or bs, verbose=0, sample_weight=vsw,
                                    steps=validation_steps, callbacks=cbs.callbacks, return_dict=True)  # fmt: skip
                epoch_logs.update({f"val_{k}": v for k, v in val.items()})
            bar.finish(epoch_logs)
            cbs.call("on_epoch_end", epoch, epoch_logs)
            if hasattr(x, "on_epoch_end"):
                x.on_epoch_end()
            if self.stop_training:
                break
        cbs.call("on_train_end", epoch_logs)
        self.history = history
        return history


# ----- compile arguments per output ----------------------------------------------------------------
def _number(v: Any, arg: str, who: str) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{who}: {arg} must hold numbers; received {v!r}.")
    return float(v)


def _per_output(value: Any, names: list[str], arg: str, who: str) -> list[Any]:
    """``value`` for each output: one value for all, a list in output order, or a dict by name."""
    n = len(names)
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ValueError(
                f"{who}: {arg} names output(s) {unknown} that the model does not have; its outputs are {names}."
            )
        return [value.get(name) for name in names]
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(
                f"{who}: {arg} as a list must have one entry per output ({n}: {names}); received {len(value)}."
            )
        return list(value)
    return [value] * n


def _metrics_per_output(value: Any, names: list[str], arg: str, who: str) -> list[list[Any]]:
    """Each output's metrics: Keras 3 takes a list (one output), a list of lists or a dict by name."""
    n = len(names)
    if value is None:
        return [[] for _ in names]
    if isinstance(value, Mapping) and n == 1 and not set(value) <= set(names):
        raise ValueError(
            f"{who}: {arg} must be a list, e.g. {arg}=['mae']; received a dict naming {list(value)}, but the model "
            f"has one output ({names[0]!r}): pass the metrics as a list."
        )
    if isinstance(value, Mapping):
        per = _per_output(value, names, arg, who)
        return [[] if v is None else list(v) if isinstance(v, (list, tuple)) else [v] for v in per]
    if not isinstance(value, (list, tuple)):
        got = f"the str {value!r}" if isinstance(value, str) else f"a {type(value).__name__}"
        example = repr([value]) if isinstance(value, str) else "['mae']"
        raise ValueError(f"{who}: {arg} must be a list, e.g. {arg}={example}; received {got}.")
    if n == 1:
        return [list(value)]
    if len(value) == n and all(v is None or isinstance(v, (list, tuple)) for v in value):
        return [[] if v is None else list(v) for v in value]
    raise ValueError(
        f"{who}: the model has {n} outputs {names}, so {arg} must give each output its own list, as a list of "
        f"{n} lists or a dict by output name, e.g. {arg}={{{names[0]!r}: ['mae']}}; received {value!r}."
    )
