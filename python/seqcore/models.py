"""``Sequential``: a Keras-compatible model over seqcore layers — build, summary, compile, fit,
evaluate, predict — with shape checks before any work and errors that name the layer, both shapes
and the fix."""

from __future__ import annotations

import math
import numbers
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from . import callbacks as callbacks_mod
from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from .layers import Layer
from .layers.base import Shape, shape_str, unique_name
from .layers.convolutional import Conv1D, _GlobalPooling1D, _Pooling1D
from .layers.core import Activation, Dense, Dropout, Flatten, InputLayer, InputSpec, Reshape
from .layers.embedding import Embedding
from .layers.recurrent import _RNN
from .layers.wrappers import Bidirectional, Masking, SequentialLayer, TimeDistributed
from .utils import rng


class NotCompiledError(ValueError, RuntimeError):
    """``fit``/``evaluate``/``train_on_batch``/``test_on_batch`` before ``compile``. Keras 3 raises a
    ValueError here and seqcore used to raise a RuntimeError: deriving from both keeps either
    ``except`` clause working."""


def _rnn_hint(prev: Layer | None) -> str:
    if isinstance(prev, _RNN) and not prev.return_sequences:
        return (
            f" The previous layer {prev.name!r} ({type(prev).__name__}) has return_sequences=False, so it "
            f"outputs one vector per sample, not a sequence: set return_sequences=True on it."
        )
    return ""


class Sequential:
    """A linear stack of layers (Keras's ``Sequential``)."""

    def __init__(self, layers: Sequence[Any] | None = None, name: str | None = None, trainable: bool = True):
        self.name = name or unique_name("sequential")
        self.layers: list[Layer] = []
        self._input_spec: InputSpec | None = None
        self.trainable = trainable
        self.optimizer: optimizers_mod.Optimizer | None = None
        self.loss: losses_mod.Loss | None = None
        self.compiled_metrics: list[metrics_mod.Metric] = []
        self.stop_training = False
        self.history: callbacks_mod.History | None = None
        for layer in layers or []:
            self.add(layer)

    # ----- structure -------------------------------------------------------------------------
    def add(self, layer: Any) -> None:
        if isinstance(layer, InputSpec) or isinstance(layer, InputLayer):
            if self.layers or self._input_spec is not None:
                raise ValueError(f"{self.name}: an Input can only be the first entry of a Sequential model.")
            self._input_spec = layer if isinstance(layer, InputSpec) else layer.spec
            return
        if isinstance(layer, Sequential):
            from .layers.wrappers import SequentialLayer

            layer = SequentialLayer(layer)
        if not isinstance(layer, Layer):
            raise TypeError(
                f"{self.name}: only seqcore layers can be added; received {type(layer).__name__}. (Keras layers "
                f"must be rebuilt from seqcore.layers.)"
            )
        if not self.layers and self._input_spec is None and layer._input_shape_arg is not None:
            self._input_spec = InputSpec(layer._input_shape_arg, layer._batch_size_arg)
        self.layers.append(layer)
        if self._input_spec is not None:
            self._build_layers(self._input_spec.shape)

    def pop(self, rebuild: bool = True) -> Layer:
        """Removes and returns the last layer, as Keras's ``Sequential.pop``."""
        if not self.layers:
            raise TypeError(f"{self.name}: there are no layers in the model to pop.")
        layer = self.layers.pop()
        if rebuild and self._input_spec is not None and self.layers:
            self._build_layers(self._input_spec.shape)
        return layer

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by ``name`` or by ``index`` (0 is the first layer after the Input), as Keras."""
        if (name is None) == (index is None):
            raise ValueError(f"{self.name}.get_layer: provide exactly one of name or index. Received: "
                             f"name={name!r}, index={index!r}")  # fmt: skip
        if index is not None:
            if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
                raise TypeError(f"{self.name}.get_layer: index must be an int; received {index!r}.")
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(
                    f"{self.name}.get_layer: index {index} is out of range for a model with {len(self.layers)} "
                    f"layer(s)."
                )
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        names = [layer.name for layer in self.layers]
        raise ValueError(f"{self.name}.get_layer: no layer named {name!r}; the layers are {names}.")

    def _build_layers(self, input_shape: Shape) -> Shape:
        """Builds every layer on the shape flowing in, checking it; returns the output shape."""
        shape = tuple(input_shape)
        prev: Layer | None = None
        for i, layer in enumerate(self.layers):
            try:
                if layer.built:
                    if layer.input_shape is not None and not _compatible(layer.input_shape, shape):
                        raise ValueError(
                            f"expected input shape {shape_str((None, *layer.input_shape))}, received "
                            f"{shape_str((None, *shape))}"
                        )
                    out = layer.compute_output_shape(shape)
                else:
                    layer._maybe_build(shape)
                    out = layer.output_shape if layer.output_shape is not None else layer.compute_output_shape(shape)
            except ValueError as e:
                where = f"layer {i} {layer.name!r} ({type(layer).__name__})"
                after = f" after {prev.name!r}" if prev is not None else " (the first layer)"
                msg = str(e)
                raise ValueError(
                    f"{self.name}: {where}{after}: {msg}{_rnn_hint(prev) if _rnn_hint(prev) not in msg else ''}"
                ) from None
            shape = tuple(out)
            prev = layer
        return shape

    def build(self, input_shape: Any = None) -> None:
        """Builds the weights for ``input_shape`` (with or without the leading batch axis as Keras:
        ``build((None, 10, 3))``)."""
        if input_shape is not None:
            shape = tuple(input_shape)
            self._input_spec = InputSpec(shape[1:], shape[0])
        if self._input_spec is None:
            raise ValueError(f"{self.name}: build needs an input shape, e.g. model.build((None, timesteps, features)).")
        self._build_layers(self._input_spec.shape)

    @property
    def built(self) -> bool:
        return bool(self.layers) and all(layer.built for layer in self.layers)

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        if self._input_spec is None:
            raise AttributeError(f"{self.name} has no defined input shape yet (give it an Input or call it on data).")
        return (self._input_spec.batch_size, *self._input_spec.shape)

    @property
    def output_shape(self) -> tuple[int | None, ...]:
        if self._input_spec is None:
            raise AttributeError(f"{self.name} has no defined output shape yet (give it an Input or call it on data).")
        batch = self._input_spec.batch_size
        return (batch, *self._build_layers(self._input_spec.shape))

    @property
    def weights(self) -> list[Any]:
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable_weights(self) -> list[Any]:
        return [w for layer in self.layers for w in layer.trainable_weights] if self.trainable else []

    @property
    def non_trainable_weights(self) -> list[Any]:
        tw = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in tw]

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def get_weights(self) -> list[np.ndarray]:
        return [a for layer in self.layers for a in layer.get_weights()]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """All weights in Keras's order: ``model.set_weights(keras_model.get_weights())`` works for the
        same architecture."""
        need = sum(len(layer.weights) for layer in self.layers)
        if not self.built:
            raise ValueError(f"{self.name}: set_weights needs a built model (give it an Input shape first).")
        if len(weights) != need:
            raise ValueError(f"{self.name}: expected {need} weight arrays; received {len(weights)}.")
        # Check every shape before changing anything.
        i = 0
        for layer in self.layers:
            for w in layer.weights:
                if np.shape(weights[i]) != w.shape:
                    raise ValueError(
                        f"{self.name}: weight {i} ({layer.name}/{w.name}) has shape {w.shape}; received "
                        f"{np.shape(weights[i])}."
                    )
                i += 1
        i = 0
        for layer in self.layers:
            n = len(layer.weights)
            layer.set_weights(weights[i : i + n])
            i += n

    def reset_states(self) -> None:
        for layer in self.layers:
            if isinstance(layer, _RNN):
                layer.reset_states()

    def summary(self, print_fn: Any = None) -> str:
        """Keras's summary table: layer (type), output shape, parameter count, totals."""
        rows = []
        shape = self._input_spec.shape if self._input_spec is not None else None
        for layer in self.layers:
            if shape is not None and layer.built:
                shape = tuple(layer.compute_output_shape(shape))
                out = shape_str((None, *shape))
            else:
                out, shape = "?", None
            rows.append(
                (
                    f"{layer.name} ({type(layer).__name__})",
                    out,
                    f"{layer.count_params():,}" if layer.built else "0 (unbuilt)",
                )
            )
        w = [
            max(31, *(len(r[0]) for r in rows)) if rows else 31,
            max(22, *(len(r[1]) for r in rows)) if rows else 22,
            13,
        ]
        total = self.count_params()
        trainable = sum(int(np.prod(x.shape)) for x in self.trainable_weights)
        lines = [f'Model: "{self.name}"']
        lines.append("┏" + "┳".join("━" * (n + 2) for n in w) + "┓")
        lines.append(f"┃ {'Layer (type)':<{w[0]}} ┃ {'Output Shape':<{w[1]}} ┃ {'Param #':>{w[2]}} ┃")
        lines.append("┡" + "╇".join("━" * (n + 2) for n in w) + "┩")
        for i, (a, b, c) in enumerate(rows):
            lines.append(f"│ {a:<{w[0]}} │ {b:<{w[1]}} │ {c:>{w[2]}} │")
            if i < len(rows) - 1:
                lines.append("├" + "┼".join("─" * (n + 2) for n in w) + "┤")
        lines.append("└" + "┴".join("─" * (n + 2) for n in w) + "┘")

        def size(n: int) -> str:
            b = 4.0 * n
            for unit in ("B", "KB", "MB", "GB"):
                if b < 1024 or unit == "GB":
                    return f"{b:.2f} {unit}"
                b /= 1024
            return ""

        lines.append(f" Total params: {total:,} ({size(total)})")
        lines.append(f" Trainable params: {trainable:,} ({size(trainable)})")
        lines.append(f" Non-trainable params: {total - trainable:,} ({size(total - trainable)})")
        text = "\n".join(lines)
        (print_fn or print)(text)
        return text

    # ----- running ---------------------------------------------------------------------------
    def _check_x(self, x: np.ndarray, where: str) -> np.ndarray:
        if self._input_spec is None:
            self._input_spec = InputSpec(tuple(x.shape[1:]))
            self._build_layers(self._input_spec.shape)
        want = self._input_spec.shape
        got = tuple(x.shape[1:])
        if not _compatible(want, got):
            hint = ""
            if len(want) == 3 and len(got) == 2:
                hint = (
                    " This model expects sub-sequences (samples, n_seq, n_steps, features), as for a CNN-LSTM: "
                    "use seqcore.utils.split_sequences or reshape x to (samples, n_seq, n_steps, features)."
                )
            elif len(want) == 2 and len(got) == 1:
                hint = " Sequence models take (samples, timesteps, features): for one feature use x[..., None]."
            raise ValueError(
                f"{self.name}.{where}: the model expects input of shape {shape_str((None, *want))}; received x of "
                f"shape {x.shape}.{hint}"
            )
        return x

    def _forward(self, x: np.ndarray, training: bool, activity_batch: int | None = None) -> np.ndarray:
        """Runs the layers; a Masking layer's mask (as per-sample lengths) flows to the recurrent
        layers and, through the layers that keep it, to the loss (``self._out_lengths``). Each
        layer's activity penalty is recorded (``activity_loss``); ``activity_batch`` is the batch
        size it is divided by when this model runs inside TimeDistributed (see Layer._forward_outer)."""
        lengths = None
        for layer in self.layers:
            if layer.produces_mask:  # Masking, Embedding(mask_zero=True)
                from .layers.recurrent import mask_to_lengths

                lengths = mask_to_lengths(layer.compute_mask(x), layer.name)
            if layer.uses_mask:
                x = layer._forward_outer(x, training=training, batch=activity_batch, lengths=lengths)
            else:
                x = layer._forward_outer(x, training=training, batch=activity_batch)
            if not layer.propagates_mask:
                lengths = None
        self._out_lengths = lengths if x.ndim >= 3 else None
        return x

    def _backward(self, grad: np.ndarray, need_input_grad: bool = False) -> np.ndarray:
        """Backpropagates dL/d(output) of the last training forward through every layer (storing
        each weight's ``grad``); returns dL/d(input) when ``need_input_grad``."""
        g = grad
        for i, layer in enumerate(reversed(self.layers)):
            # Nothing consumes the first layer's input gradient: let it skip computing it.
            layer.need_input_grad = need_input_grad or i != len(self.layers) - 1
            g = layer._backward_outer(g)
        return g

    def activity_loss(self) -> float:
        """The activity regularization of the last forward (Keras counts it in the loss)."""
        return float(sum(layer.activity_loss() for layer in self.layers))

    def _mask_weights(self, out: np.ndarray, sw: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Keras excludes masked steps from the loss and metrics: the mask becomes a weight.

        Returns (loss weights, metric weights). For the loss the mask is scaled by total/valid steps
        of the batch, so that its mean (sum over batch size) runs over the valid steps only, as
        Keras's masked loss does. Metrics get the plain 0/1 mask (times ``sw``): they accumulate
        weighted counts and sums over the epoch themselves, and a rescaled mask would inflate
        counts (TruePositives) and weight batches with more padding more heavily."""
        lengths = getattr(self, "_out_lengths", None)
        if lengths is None:
            return sw, sw
        mask = (np.arange(out.shape[1])[None, :] < lengths[:, None]).astype(np.float32)
        if sw is not None:
            sw = np.asarray(sw, np.float32)
            mask = mask * (sw if sw.ndim == 2 else sw.reshape(-1, 1))
        valid = float((np.arange(out.shape[1])[None, :] < lengths[:, None]).sum())
        scale = np.float32(mask.size / valid) if valid else np.float32(0.0)
        return mask * scale, mask

    def __call__(self, x: Any, training: bool = False) -> np.ndarray:
        return self._forward(self._check_x(_as_array(x, "x", f"{self.name}.__call__"), "__call__"), training)

    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Sequence[Any] | None = None,
        loss_weights: Any = None,
        weighted_metrics: Sequence[Any] | None = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile: Any = "auto",
        auto_scale_loss: bool = True,
        **kwargs: Any,
    ) -> None:
        """As Keras 3. ``metrics`` are computed without ``sample_weight``/``class_weight`` (the
        padding mask still applies); ``weighted_metrics`` with them. ``run_eagerly``,
        ``steps_per_execution``, ``jit_compile`` and ``auto_scale_loss`` are accepted and have nothing
        to change: seqcore runs every step eagerly on its Rust kernels, in float32, with the same
        results."""
        who = f"{self.name}.compile"
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
        # Keras 3 refuses anything but a list/tuple (or a dict for multi-output models): a string
        # would otherwise be read character by character ("Unknown metric 'm'").
        for arg, value in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
            if value is not None and not isinstance(value, (list, tuple)):
                got = f"the str {value!r}" if isinstance(value, str) else f"a {type(value).__name__}"
                example = repr([value]) if isinstance(value, str) else "['mae']"
                raise ValueError(f"{who}: {arg} must be a list, e.g. {arg}={example}; received {got}.")
        # Resolve everything first: a compile that fails leaves the model as it was.
        opt = optimizers_mod.get(optimizer)
        loss_fn = losses_mod.get(loss)
        plain = [metrics_mod.get(m, loss_fn.name) for m in (metrics or [])]
        weighted = [metrics_mod.get(m, loss_fn.name) for m in (weighted_metrics or [])]
        mets = plain + weighted
        seen: dict[int, int] = {}
        for i, m in enumerate(mets):
            if id(m) in seen:
                raise ValueError(
                    f"{who}: metrics[{seen[id(m)]}] and metrics[{i}] are the same {type(m).__name__} object, which "
                    f"would count every batch twice; pass two instances (e.g. {type(m).__name__}() twice)."
                )
            seen[id(m)] = i
        self.optimizer, self.loss, self.compiled_metrics = opt, loss_fn, mets
        # Which compiled metrics take the sample weights (the weighted_metrics, after the plain ones).
        self._metric_weighted = [False] * len(plain) + [True] * len(weighted)
        self._metric_log_names = _unique_log_names(mets, self._metric_weighted)
        self.loss_weight = float(loss_weights) if isinstance(loss_weights, (int, float)) else 1.0

    @property
    def metrics_names(self) -> list[str]:
        """The keys of the logs: ``"loss"``, then each compiled metric's name (a repeated name gets
        ``_1``, ``_2``, ... as in Keras)."""
        return ["loss", *getattr(self, "_metric_log_names", [m.name for m in self.compiled_metrics])]

    def _metric_results(self) -> dict[str, Any]:
        names = getattr(self, "_metric_log_names", None)
        if names is None or len(names) != len(self.compiled_metrics):
            names = _unique_log_names(self.compiled_metrics, self._weighted_flags())
        return {n: m.result() for n, m in zip(names, self.compiled_metrics, strict=True)}

    def _weighted_flags(self) -> list[bool]:
        flags = getattr(self, "_metric_weighted", None)
        return (
            flags
            if flags is not None and len(flags) == len(self.compiled_metrics)
            else [False] * len(self.compiled_metrics)
        )

    def _update_metrics(self, y: np.ndarray, out: np.ndarray, sw: np.ndarray | None) -> None:
        """Keras 3: ``metrics`` see no sample weights, ``weighted_metrics`` see them; both see the
        padding mask (as Keras's metrics read the output's mask)."""
        _, weighted = self._mask_weights(out, sw)
        plain = weighted if sw is None else self._mask_weights(out, None)[1]
        for m, is_weighted in zip(self.compiled_metrics, self._weighted_flags(), strict=True):
            m.update_state(y, out, weighted if is_weighted else plain)

    def _require_compiled(self, where: str) -> None:
        if self.optimizer is None or self.loss is None:
            raise NotCompiledError(f"{self.name}.{where}: compile the model first, e.g. model.compile('adam', 'mse').")

    def _loss_and_grad(self, y: np.ndarray, out: np.ndarray, sw: np.ndarray | None) -> tuple[float, np.ndarray]:
        assert self.loss is not None
        try:
            value, grad = self.loss(y, out, sw)
        except ValueError as e:
            raise ValueError(f"{self.name}: {e}") from None
        if self.loss_weight != 1.0:
            value, grad = value * self.loss_weight, grad * np.float32(self.loss_weight)
        return value, grad

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
        who = f"{self.name}.train_on_batch"
        xa = self._check_x(_as_array(x, "x", who), "train_on_batch")
        ya = _as_array(y, "y", who)
        sw = _sample_weight(sample_weight, len(xa), who)
        if class_weight is not None:
            if sw is not None:
                raise ValueError(f"{who}: pass sample_weight or class_weight, not both (as Keras).")
            sw = _class_weights(ya, class_weight, self.name)
        for m in self.compiled_metrics:
            m.reset_state()
        logs = self._train_step(xa, ya, sw)
        logs = {"loss": logs["loss"], **self._metric_results()}
        return logs if return_dict else (logs["loss"] if not self.compiled_metrics else list(logs.values()))

    def _train_step(self, x: np.ndarray, y: np.ndarray, sw: np.ndarray | None) -> dict[str, float]:
        assert self.optimizer is not None
        out = self._forward(x, training=True)
        y = _match_rank(y, out)
        loss_sw, _ = self._mask_weights(out, sw)
        loss, grad = self._loss_and_grad(y, out, loss_sw)
        reg = sum(layer.regularization_loss() for layer in self.layers)
        total = loss + reg + self.activity_loss()
        if not math.isfinite(total):
            raise FloatingPointError(
                f"{self.name}: the loss became {total} at iteration {self.optimizer.iterations + 1}; the weights "
                f"were left as they were before this step. Common causes: a learning rate too high, unscaled "
                f"inputs or targets, or an activation such as relu in a recurrent layer exploding."
            )
        self._backward(grad)
        weights = self.trainable_weights
        grads = []
        for w in weights:
            gw = w.grad if w.grad is not None else np.zeros_like(w.value)
            if w.regularizer is not None:
                gw = gw + w.regularizer.grad(w.value)
            grads.append(gw)
            w.grad = None
        bad = next((w for w, gw in zip(weights, grads, strict=True) if not np.isfinite(gw).all()), None)
        if bad is not None:
            raise FloatingPointError(
                f"{self.name}: the gradient of {bad.name} became non-finite at iteration "
                f"{self.optimizer.iterations + 1}; the weights were left as they were before this step."
            )
        self.optimizer.apply(weights, grads)
        self._update_metrics(y, out, sw)
        return {"loss": total}

    # ----- truncated backpropagation through time (fit(tbptt_steps=...)) ------------------------
    def _tbptt_plan(self, tbptt_steps: Any, who: str) -> _TBPTTPlan:
        """Checks that chunking the time axis leaves the forward computation unchanged; returns
        the recurrent layers that carry state and whether the targets are per step."""
        if isinstance(tbptt_steps, bool) or not isinstance(tbptt_steps, (int, np.integer)) or tbptt_steps < 1:
            raise ValueError(
                f"{who}: tbptt_steps must be an int >= 1 (the chunk length in time steps) or None. Received: "
                f"tbptt_steps={tbptt_steps!r}"
            )
        k = int(tbptt_steps)
        intro = f"{who}: tbptt_steps={k} cuts every sequence into chunks of {k} steps that run one after another"
        rnns = [layer for layer in self.layers if isinstance(layer, _RNN)]
        rnn_at = [i for i, layer in enumerate(self.layers) if isinstance(layer, _RNN)]
        for i, layer in enumerate(self.layers):
            if _contains(layer, Bidirectional):
                raise ValueError(
                    f"{intro}; layer {i} {layer.name!r} is (or holds) a Bidirectional layer, whose backward direction "
                    f"starts from the end of the sequence, which a chunk does not have yet. Train it without "
                    f"tbptt_steps."
                )
        if not rnn_at:
            raise ValueError(
                f"{intro}, carrying the state of the recurrent layers; this model has no LSTM or GRU at its top "
                f"level, so there is no state to carry. Train it without tbptt_steps."
            )
        last = rnn_at[-1]
        per_step = rnns[-1].return_sequences
        for i, layer in enumerate(self.layers):
            if isinstance(layer, _RNN):
                if layer.go_backwards:
                    raise ValueError(
                        f"{intro}; layer {i} {layer.name!r} ({type(layer).__name__}) has go_backwards=True and needs "
                        f"the end of the sequence first. Reverse x in time instead (x[:, ::-1]) and use "
                        f"go_backwards=False, or train without tbptt_steps."
                    )
                continue
            if i > last and not per_step:
                continue  # after a return_sequences=False layer there is no time axis left to cut
            reason = _mixes_time(layer)
            if reason:
                where = "before" if i < last else "after"
                raise ValueError(
                    f"{intro}, so every layer {where} the recurrent layers must act on each time step on its own; "
                    f"layer {i} {layer.name!r} ({type(layer).__name__}) {reason}. Train this model without "
                    f"tbptt_steps, or move that layer after a return_sequences=False LSTM/GRU."
                )
        return _TBPTTPlan(k, rnns, per_step)

    def _tbptt_step(
        self, x: np.ndarray, y: np.ndarray, sw: np.ndarray | None, plan: _TBPTTPlan, who: str
    ) -> dict[str, float]:
        """One batch of truncated BPTT (see ``fit``): returns the batch's logs like ``_train_step``."""
        t = x.shape[1] if x.ndim >= 2 else 0
        k = plan.steps
        if plan.per_step and (y.ndim < 2 or y.shape[1] != t):
            raise ValueError(
                f"{who}: with tbptt_steps and a per-step output (return_sequences=True on the last LSTM/GRU), y is "
                f"cut along time with x, so it needs the same time axis: x has {t} steps (shape {x.shape}) but y has "
                f"shape {y.shape}."
            )
        if sw is not None and sw.ndim == 2 and plan.per_step and sw.shape[1] != t:
            raise ValueError(
                f"{who}: with tbptt_steps a per-step sample_weight is cut along time with x: x has {t} steps but "
                f"sample_weight has shape {sw.shape}."
            )
        bounds = [(a, min(a + k, t)) for a in range(0, t, k)]
        for layer in plan.rnns:
            layer._begin_carry()
        try:
            if len(bounds) <= 1:
                return self._train_step(x, y, sw)  # nothing to cut: exactly a plain training step
            if not plan.per_step:
                # The state-advancing chunks: inference forwards, so nothing is kept for backward.
                for a, b in bounds[:-1]:
                    self._forward(np.ascontiguousarray(x[:, a:b]), training=False)
                a, b = bounds[-1]
                return self._train_step(np.ascontiguousarray(x[:, a:b]), y, sw)
            total, weight = 0.0, 0.0
            fallback = 0.0  # plain step counts, when no chunk has an unmasked step
            for a, b in bounds:
                swc = sw[:, a:b] if sw is not None and sw.ndim == 2 else sw
                logs = self._train_step(np.ascontiguousarray(x[:, a:b]), np.ascontiguousarray(y[:, a:b]), swc)
                lengths = getattr(self, "_out_lengths", None)
                w = float(lengths.sum()) if lengths is not None else float(b - a)
                total += logs["loss"] * w
                weight += w
                fallback += logs["loss"] * (b - a)
            return {"loss": total / weight if weight else fallback / t}
        finally:
            for layer in plan.rnns:
                layer._end_carry()

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None, return_dict: bool = False) -> Any:
        self._require_compiled("test_on_batch")
        who = f"{self.name}.test_on_batch"
        xa = self._check_x(_as_array(x, "x", who), "test_on_batch")
        ya = _as_array(y, "y", who)
        sw = _sample_weight(sample_weight, len(xa), who)
        out = self._forward(xa, training=False)
        ya = _match_rank(ya, out)
        loss_sw, _ = self._mask_weights(out, sw)
        loss, _ = self._loss_and_grad(ya, out, loss_sw)
        loss += sum(layer.regularization_loss() for layer in self.layers) + self.activity_loss()
        for m in self.compiled_metrics:
            m.reset_state()
        self._update_metrics(ya, out, sw)
        logs = {"loss": loss, **self._metric_results()}
        return logs if return_dict else (loss if not self.compiled_metrics else list(logs.values()))

    def predict_on_batch(self, x: Any) -> np.ndarray:
        return self(x)

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: int | None = None,
        callbacks: Sequence[callbacks_mod.Callback] | None = None,
    ) -> np.ndarray:
        who = f"{self.name}.predict"
        bs = _positive_int_or_none(batch_size, "batch_size", who) or 32
        steps = _positive_int_or_none(steps, "steps", who)
        _check_input_kind(x, who)
        cbs = _prepare_callbacks(self, callbacks, who)
        _hook(cbs, "on_predict_begin", None)
        outs = []
        for i, (xb, _, _) in enumerate(_batches(x, None, None, bs, shuffle=False, steps=steps, who=who)):
            _hook(cbs, "on_predict_batch_begin", i, None)
            outs.append(self._forward(self._check_x(xb, "predict"), training=False))
            _hook(cbs, "on_predict_batch_end", i, {"outputs": outs[-1]})
        _hook(cbs, "on_predict_end", None)
        if not outs:
            raise ValueError(f"{who}: no input data.")
        return np.concatenate(outs, axis=0)

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
        who = f"{self.name}.evaluate"
        bs = _positive_int_or_none(batch_size, "batch_size", who) or 32
        steps = _positive_int_or_none(steps, "steps", who)
        x, y, sample_weight = _check_data(x, y, sample_weight, who)
        cbs = _prepare_callbacks(self, callbacks, who)
        _hook(cbs, "on_test_begin", None)
        total, count = 0.0, 0
        for m in self.compiled_metrics:
            m.reset_state()
        for i, (xb, yb, swb) in enumerate(_batches(x, y, sample_weight, bs, shuffle=False, steps=steps, who=who)):
            _hook(cbs, "on_test_batch_begin", i, None)
            _require_targets(yb, who)
            out = self._forward(self._check_x(xb, "evaluate"), training=False)
            yb = _match_rank(yb, out)
            loss_sw, _ = self._mask_weights(out, swb)
            loss, _ = self._loss_and_grad(yb, out, loss_sw)
            total += (loss + self.activity_loss()) * len(xb)  # as Keras: per batch, weighted by its size
            count += len(xb)
            self._update_metrics(yb, out, swb)
            if cbs:
                _hook(cbs, "on_test_batch_end", i, {"loss": total / count, **self._metric_results()})
        reg = sum(layer.regularization_loss() for layer in self.layers)
        logs = {"loss": total / max(1, count) + reg, **self._metric_results()}
        _hook(cbs, "on_test_end", logs)
        if verbose not in (0, "0", False) and verbose != "auto":
            print(_Progress._fmt(logs))
        if return_dict:
            return logs
        return logs["loss"] if not self.compiled_metrics else list(logs.values())

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
        """Keras's fit. ``x`` may be arrays (with ``y``), a ``seqcore.utils.Sequence`` / Keras
        ``PyDataset``-like object (``__len__``/``__getitem__``) or a generator of ``(x, y)`` batches
        (with ``steps_per_epoch``).

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
        Masking works (the mask is cut with the inputs; use post-padding as everywhere)."""
        self._require_compiled("fit")
        assert self.optimizer is not None and self.loss is not None
        who = f"{self.name}.fit"
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
        bs = _positive_int_or_none(batch_size, "batch_size", who) or 32
        steps_per_epoch = _positive_int_or_none(steps_per_epoch, "steps_per_epoch", who)
        validation_steps = _positive_int_or_none(validation_steps, "validation_steps", who)
        validation_batch_size = _positive_int_or_none(validation_batch_size, "validation_batch_size", who)
        validation_freq = _positive_int_or_none(validation_freq, "validation_freq", who) or 1
        tbptt = None if tbptt_steps is None else self._tbptt_plan(tbptt_steps, who)
        arrays = isinstance(x, (np.ndarray, list, tuple))
        x, y, sample_weight = _check_data(x, y, sample_weight, who)
        if arrays:
            self._check_x(x, "fit")
            _check_finite(x, "x", self.name)
            _check_finite(y, "y", self.name)
            if class_weight is not None:
                cw = _class_weights(y, class_weight, self.name)
                sample_weight = cw if sample_weight is None else sample_weight * cw
            if validation_split and validation_data is None:
                n_val = int(len(x) * validation_split)
                if n_val == 0:
                    raise ValueError(f"{who}: validation_split={validation_split} leaves no validation sample.")
                split = len(x) - n_val
                validation_data = (x[split:], y[split:]) + (
                    (sample_weight[split:],) if sample_weight is not None else ()
                )
                x, y = x[:split], y[:split]
                sample_weight = None if sample_weight is None else sample_weight[:split]
        elif validation_split:
            raise ValueError(f"{who}: validation_split needs array inputs; pass validation_data instead.")
        history = callbacks_mod.History()
        cbs = [*(callbacks or []), history]
        steps = steps_per_epoch or (math.ceil(len(x) / bs) if arrays else _len_or_none(x))
        params = {"epochs": epochs, "steps": steps, "verbose": verbose}
        for cb in cbs:
            cb.set_model(self)
            cb.set_params(params)
        self.stop_training = False
        self._validates = validation_data is not None  # callbacks tell skipped from missing val_* values
        verbose_level = 1 if verbose == "auto" else int(verbose)
        # Every hook gets its logs positionally, as Keras's CallbackList passes them (None where
        # Keras has none), so callbacks written for Keras (`def on_epoch_begin(self, epoch, logs)`) run.
        for cb in cbs:
            cb.on_train_begin(None)
        epoch_logs: dict[str, Any] | None = None
        for epoch in range(initial_epoch, epochs):
            for cb in cbs:
                cb.on_epoch_begin(epoch, None)
            for m in self.compiled_metrics:
                m.reset_state()
            bar = _Progress(epoch, epochs, steps, verbose_level)
            total, count = 0.0, 0
            batches = _batches(x, y, sample_weight, bs, shuffle=shuffle, steps=steps_per_epoch, epoch=epoch, who=who)
            for step, (xb, yb, swb) in enumerate(batches):
                for cb in cbs:
                    cb.on_train_batch_begin(step, None)
                self._check_x(xb, "fit")
                _require_targets(yb, who)
                if class_weight is not None and not arrays:  # arrays got theirs above, once
                    cw = _class_weights(yb, class_weight, self.name)
                    swb = cw if swb is None else swb * cw
                if tbptt is not None:
                    logs = self._tbptt_step(xb, yb, swb, tbptt, who)
                else:
                    logs = self._train_step(xb, yb, swb)
                total += logs["loss"] * len(xb)
                count += len(xb)
                shown = {"loss": total / max(1, count), **self._metric_results()}
                for cb in cbs:
                    cb.on_train_batch_end(step, {**shown, "loss": logs["loss"]})
                bar.update(step + 1, shown)
                if self.stop_training:
                    break
            epoch_logs = {"loss": total / max(1, count), **self._metric_results()}
            if validation_data is not None and (epoch + 1) % validation_freq == 0:
                vx, vy, vsw = _split_validation(validation_data, self.name)
                # With the fit's callbacks, as Keras does (their on_test_* hooks see the validation).
                val = self.evaluate(vx, vy, batch_size=validation_batch_size or bs, verbose=0, sample_weight=vsw,
                                    steps=validation_steps, callbacks=cbs, return_dict=True)  # fmt: skip
                epoch_logs.update({f"val_{k}": v for k, v in val.items()})
            bar.finish(epoch_logs)
            for cb in cbs:
                cb.on_epoch_end(epoch, epoch_logs)
            if hasattr(x, "on_epoch_end"):
                x.on_epoch_end()
            if self.stop_training:
                break
        for cb in cbs:
            cb.on_train_end(epoch_logs)
        self.history = history
        return history

    def get_config(self) -> dict[str, Any]:
        from .layers import serialize

        cfg: dict[str, Any] = {
            "name": self.name,
            "trainable": self.trainable,
            "layers": [serialize(layer) for layer in self.layers],
        }
        if self._input_spec is not None:
            cfg["input_shape"] = self._input_spec.shape
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        from .layers import deserialize

        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError(f"a Sequential config must be a dict with a 'layers' list; received {str(config)[:200]}")
        m = cls(name=config.get("name"), trainable=bool(config.get("trainable", True)))
        if config.get("input_shape") is not None:
            m._input_spec = InputSpec(config["input_shape"])
        for lc in config["layers"]:
            m.add(deserialize(lc))
        return m

    # ----- saving (implemented in seqcore.saving) ----------------------------------------------
    def save(self, filepath: Any, overwrite: bool = True, include_optimizer: bool = True) -> None:
        """Writes the whole model to one file (architecture, weights, compile config and optimizer
        state); ``seqcore.saving.load_model(filepath)`` restores it. See ``seqcore.saving``."""
        from .saving import save_model

        if str(filepath).endswith((".keras", ".h5", ".hdf5")):
            warnings.warn(
                f"{self.name}.save({str(filepath)!r}): this writes seqcore's own format, which Keras cannot load, "
                f"under a Keras file name. Use the '.seqcore' extension, or seqcore.interop.save_keras(model, path) "
                f"for a file Keras opens.",
                UserWarning,
                stacklevel=2,
            )
        save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def save_weights(self, filepath: Any, overwrite: bool = True) -> None:
        """Writes the weights only, as a plain safetensors file named by layer and weight."""
        from .saving import save_weights

        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: Any) -> None:
        """Loads weights by name from ``save_weights``'s file or a full model file; on any mismatch
        raises a ValueError listing it and changes no weight."""
        from .saving import load_weights

        load_weights(self, filepath)


# ----- helpers ---------------------------------------------------------------------------------
class _TBPTTPlan(NamedTuple):
    steps: int
    rnns: list[_RNN]
    per_step: bool


def _contains(layer: Layer, cls: type) -> bool:
    """Whether ``layer`` is, or wraps (TimeDistributed, nested Sequential), a ``cls``."""
    if isinstance(layer, cls):
        return True
    if isinstance(layer, TimeDistributed):
        return _contains(layer.layer, cls)
    if isinstance(layer, SequentialLayer):
        return any(_contains(sub, cls) for sub in layer.model.layers)
    return False


def _mixes_time(layer: Layer) -> str:
    """Why running ``layer`` on chunks of the time axis would differ from running it on the whole
    sequence ("" when it acts on each step on its own)."""
    if isinstance(layer, (Dense, Activation, Dropout, Masking, InputLayer, TimeDistributed, Embedding)):
        return ""  # TimeDistributed maps each step on its own, whatever it wraps
    if isinstance(layer, SequentialLayer):
        for sub in layer.model.layers:
            if isinstance(sub, _RNN):
                return f"holds the recurrent layer {sub.name!r}, whose state cannot be carried inside a nested model"
            reason = _mixes_time(sub)
            if reason:
                return f"holds {sub.name!r} ({type(sub).__name__}), which {reason}"
        return ""
    if isinstance(layer, Conv1D):
        return (
            "convolves neighbouring steps: at a chunk boundary its kernel would miss the previous chunk's inputs "
            "(with padding='causal' too)"
        )
    if isinstance(layer, _Pooling1D):
        return "pools neighbouring steps, and a pooling window could straddle a chunk boundary"
    if isinstance(layer, _GlobalPooling1D):
        return "reduces over all time steps, which no single chunk has"
    if isinstance(layer, (Flatten, Reshape)):
        return "reshapes across the time axis"
    return "is not known to act on each time step on its own"


def _compatible(want: Sequence[int | None], got: Sequence[int | None]) -> bool:
    return len(want) == len(got) and all(a is None or b is None or a == b for a, b in zip(want, got, strict=True))


def _ragged_detail(a: Any) -> str:
    """What makes ``a`` ragged, for the message: two different lengths (or shapes) of its items."""
    shapes: list[Any] = []
    try:
        for item in a:
            try:
                shapes.append(np.shape(item))
            except ValueError:  # the item is itself ragged
                shapes.append(None)
    except TypeError:
        return "its items have different shapes"
    lengths = list(dict.fromkeys(s[0] if s else None for s in shapes if s is not None))
    if len(lengths) >= 2 and None not in lengths[:2]:
        return f"sequences of different lengths, e.g. {lengths[0]} and {lengths[1]} steps"
    distinct = list(dict.fromkeys(s for s in shapes if s is not None))
    if len(distinct) >= 2:
        return f"items of different shapes, e.g. {distinct[0]} and {distinct[1]}"
    return "its items have different shapes"


def _as_array(a: Any, name: str, who: str) -> np.ndarray:
    """``a`` as an array (no copy for arrays), or an error naming ``who`` and the fix for ragged
    lists and object arrays (NumPy's own messages name neither the method nor the cure)."""

    def ragged(items: Any) -> str:
        detail = _ragged_detail(items)
        return (
            f"{who}: {name} is ragged ({detail}); pad them with seqcore.utils.pad_sequences(..., padding='post') "
            f"and use a Masking layer."
        )

    if isinstance(a, np.ndarray):
        arr = a
    else:
        try:
            arr = np.asarray(a)
        except ValueError:  # NumPy >= 1.24: "setting an array element with a sequence ... inhomogeneous"
            raise ValueError(ragged(a)) from None
    if arr.dtype == object:
        if arr.ndim == 1 and _is_ragged(arr):
            raise ValueError(ragged(arr))
        raise TypeError(
            f"{who}: {name} has dtype object; convert it with {name}.astype('float32') (ragged sequences: pad "
            f"them with seqcore.utils.pad_sequences(..., padding='post'))."
        )
    return arr


def _is_ragged(a: Any) -> bool:
    try:
        shapes = {np.shape(item) for item in a}
    except (TypeError, ValueError):
        return True
    return len(shapes) > 1


def _check_input_kind(x: Any, who: str) -> None:
    """Refuses what is neither arrays, a Sequence nor an iterable of batches, before anything
    indexes it (a dict would be taken for a Sequence and leak ``KeyError: 0``)."""
    if x is None:
        raise ValueError(f"{who}: x is required: arrays, a seqcore.utils.Sequence or a generator of (x, y) batches.")
    extra = ""
    if isinstance(x, Mapping):
        extra = " (named inputs are not supported by Sequential: pass the array itself)"
    elif isinstance(x, (str, bytes)):
        extra = " (a file name? load the data into an array first)"
    elif isinstance(x, (np.ndarray, list, tuple)) or hasattr(x, "__getitem__") or isinstance(x, Iterable):
        return
    raise TypeError(f"{who}: x must be an array, a Sequence or a generator; received {type(x).__name__}{extra}.")


def _sample_weight(sw: Any, n: int, who: str) -> np.ndarray | None:
    """``sample_weight`` as float32, with one entry per sample (or per step) of the ``n`` in x."""
    if sw is None:
        return None
    try:
        a = np.asarray(sw, np.float32)
    except (TypeError, ValueError):
        raise TypeError(
            f"{who}: sample_weight must be an array of numbers, one per sample; received {type(sw).__name__}."
        ) from None
    if a.ndim == 0:
        raise ValueError(
            f"{who}: sample_weight must hold one weight per sample (shape ({n},)) or per step (shape ({n}, steps)); "
            f"received the scalar {sw!r}."
        )
    if len(a) != n:
        raise ValueError(f"{who}: x has {n} samples but sample_weight has {len(a)}.")
    return a


def _check_data(x: Any, y: Any, sw: Any, who: str) -> tuple[Any, Any, np.ndarray | None]:
    """fit/evaluate input: arrays are converted and their lengths checked against each other; a
    Sequence or generator carries its own targets and weights, as in Keras."""
    _check_input_kind(x, who)
    if not isinstance(x, (np.ndarray, list, tuple)):
        for arg, v in (("y", y), ("sample_weight", sw)):
            if v is not None:
                raise ValueError(
                    f"{who}: {arg} must not be given when x is a Sequence or generator ({type(x).__name__}); let it "
                    f"yield (x, y) or (x, y, sample_weight) batches instead."
                )
        return x, None, None
    xa = _as_array(x, "x", who)
    if y is None:
        raise ValueError(f"{who}: y is required when x is an array.")
    ya = _as_array(y, "y", who)
    if ya.ndim == 0 or len(ya) != len(xa):
        raise ValueError(f"{who}: x has {len(xa)} samples but y has {len(ya) if ya.ndim else 'none (a scalar)'}.")
    return xa, ya, _sample_weight(sw, len(xa), who)


def _positive_int_or_none(value: Any, arg: str, who: str) -> int | None:
    # bool is an int in Python; batch_size=True is a mistake, not 1.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{who}: {arg} must be an int >= 1 or None. Received: {arg}={value!r}")
    return int(value)


def _unique_log_names(metrics: Sequence[metrics_mod.Metric], weighted: Sequence[bool] | None = None) -> list[str]:
    """Log keys for the compiled metrics, as Keras's CompileMetrics.result() names them: a repeated
    name gets ``_1``, ``_2``, ...; a weighted metric whose name is taken becomes ``weighted_<name>``
    first. Unlike Keras, a metric named ``loss`` is renamed too, instead of silently replacing the loss
    in the logs."""
    counters: dict[str, int] = {"loss": 1}
    names: list[str] = []
    for m, is_weighted in zip(metrics, weighted or [False] * len(metrics), strict=True):
        base = m.name
        if is_weighted and base in counters:
            base = f"weighted_{m.name}"
        name = base
        while name in counters:
            index = counters[base]
            counters[base] += 1
            name = f"{base}_{index}"
        counters[name] = 1
        names.append(name)
    return names


def _require_targets(y: np.ndarray | None, who: str) -> None:
    if y is None:
        raise ValueError(
            f"{who}: the data gave inputs but no targets; a Sequence/generator must yield (x, y) or "
            f"(x, y, sample_weight) batches (x alone is for predict)."
        )


def _prepare_callbacks(model: Sequential, callbacks: Any, who: str) -> list[Any]:
    """``callbacks`` of evaluate/predict: a list of Callback objects, attached to the model."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"{who}: callbacks must be a list of Callback objects; received {type(callbacks).__name__}.")
    for cb in callbacks:
        if not callable(getattr(cb, "set_model", None)):
            raise TypeError(f"{who}: callbacks must be Callback objects; received {type(cb).__name__}.")
        cb.set_model(model)
    return list(callbacks)


def _hook(cbs: Sequence[Any], name: str, *args: Any) -> None:
    """Calls the hook ``name`` on every callback that has it (a Keras-style callback may define
    only some of them)."""
    for cb in cbs:
        fn = getattr(cb, name, None)
        if callable(fn):
            fn(*args)


def _match_rank(y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Keras 3 lines the targets up with the output when their ranks differ by one trailing axis of
    size 1 (``squeeze_or_expand_to_same_rank``): targets ``(N,)`` for a ``Dense(1)`` output
    ``(N, 1)``, or ``(N, 1)`` for ``(N,)``. Only that: any other mismatch stays an error (seqcore
    never broadcasts targets)."""
    if y.ndim == out.ndim - 1 and out.shape[-1] == 1 and y.shape == out.shape[:-1]:
        return y[..., None]
    if y.ndim == out.ndim + 1 and y.shape[-1] == 1 and y.shape[:-1] == out.shape:
        return y[..., 0]
    return y


def _check_finite(a: np.ndarray, name: str, model: str) -> None:
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise ValueError(
            f"{model}.fit: {name} contains {a[idx]} at index {idx} (and maybe elsewhere). Clean or impute the data "
            f"before training: non-finite inputs make every loss NaN."
        )


def _class_weights(y: np.ndarray, class_weight: dict[int, float], model: str) -> np.ndarray:
    labels = np.argmax(y, axis=-1) if y.ndim >= 2 and y.shape[-1] > 1 else np.rint(y.reshape(len(y), -1)[:, 0])
    labels = labels.reshape(len(y), -1)[:, 0].astype(np.int64)
    missing = sorted(set(np.unique(labels).tolist()) - set(class_weight))
    if missing:
        raise ValueError(f"{model}.fit: class_weight has no entry for class(es) {missing}.")
    return np.array([class_weight[int(c)] for c in labels], dtype=np.float32)


def _len_or_none(x: Any) -> int | None:
    try:
        return len(x)
    except TypeError:
        return None


def _split_validation(data: Any, model: str) -> tuple[Any, Any, Any]:
    if isinstance(data, tuple) and len(data) in (2, 3):
        return data[0], data[1], data[2] if len(data) == 3 else None
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, (list, np.ndarray)):
        return data, None, None
    raise ValueError(f"{model}.fit: validation_data must be (x, y), (x, y, sample_weight) or a Sequence.")


def _batches(
    x: Any,
    y: Any,
    sw: Any,
    batch_size: int,
    shuffle: bool,
    steps: int | None = None,
    epoch: int = 0,
    who: str = "Sequential",
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Batches from arrays, a Sequence (``__len__``/``__getitem__``) or a generator/iterable."""
    if isinstance(x, (np.ndarray, list, tuple)):
        xa = _as_array(x, "x", who)
        ya = None if y is None else _as_array(y, "y", who)
        n = len(xa)
        order = rng().permutation(n) if shuffle else np.arange(n)
        for i, start in enumerate(range(0, n, batch_size)):
            if steps is not None and i >= steps:
                return
            idx = order[start : start + batch_size]
            sl = slice(start, start + batch_size)
            xb = xa[idx] if shuffle else xa[sl]
            yb = None if ya is None else (ya[idx] if shuffle else ya[sl])
            swb = None if sw is None else (sw[idx] if shuffle else sw[sl])
            yield xb, yb, swb  # type: ignore[misc]
        return
    if hasattr(x, "__getitem__") and hasattr(x, "__len__"):
        n = len(x)
        order = rng().permutation(n) if shuffle else np.arange(n)
        for i, j in enumerate(order):
            if steps is not None and i >= steps:
                return
            yield _unpack(x[int(j)], who)
        return
    if isinstance(x, Iterable):
        it = iter(x)
        for _ in range(steps if steps is not None else sys.maxsize):
            try:
                item = next(it)
            except StopIteration:
                return
            yield _unpack(item, who)
        return
    raise TypeError(f"{who}: x must be an array, a Sequence or a generator; received {type(x).__name__}.")


def _unpack(item: Any, who: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    # As Keras's unpack_x_y_sample_weight: a list is a tuple (a torch DataLoader yields lists), and
    # anything else is x alone (for predict).
    if isinstance(item, list):
        item = tuple(item)
    if not isinstance(item, tuple):
        item = (item,)
    if len(item) not in (1, 2, 3):
        raise ValueError(
            f"{who}: a Sequence/generator must yield x, (x,), (x, y) or (x, y, sample_weight); received a "
            f"tuple of length {len(item)}."
        )
    xb = _as_array(item[0], "x", who)
    yb = _as_array(item[1], "y", who) if len(item) > 1 else None
    swb = _sample_weight(item[2], len(xb), who) if len(item) > 2 else None
    return xb, yb, swb  # type: ignore[return-value]


def _fmt_value(v: Any) -> str:
    # Array-valued results (F1Score(average=None), Precision(thresholds=[...])) show their mean,
    # as Keras's progress bar does; the logs and History keep the arrays.
    return f"{float(np.mean(v)) if np.ndim(v) else float(v):.4f}"


class _Progress:
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
        return " - ".join(f"{k}: {_fmt_value(v)}" for k, v in logs.items())

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


def load_model(filepath: Any, compile: bool = True) -> Sequential:
    """``keras.models.load_model``: the model ``model.save`` wrote (see ``seqcore.saving.load_model``)."""
    from .saving import load_model as _load_model  # saving imports this module

    return _load_model(filepath, compile=compile)


def save_model(model: Sequential, filepath: Any, overwrite: bool = True, include_optimizer: bool = True) -> None:
    """``keras.models.save_model``: the same as ``model.save(filepath)``."""
    model.save(filepath, overwrite=overwrite, include_optimizer=include_optimizer)
