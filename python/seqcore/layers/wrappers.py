"""Wrappers: TimeDistributed, Bidirectional, and Masking."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .. import remat
from .base import Layer, Shape, shape_str


class TimeDistributed(Layer):
    """Applies ``layer`` to every slice of axis 1 with ONE set of weights, by folding that axis into
    the batch (a single kernel call, not a loop over time). A regularizer on the wrapped layer
    therefore counts once, not once per step. The outer axis may vary between calls (``None``)."""

    propagates_mask = True

    def __init__(self, layer: Layer, **kwargs: Any):
        super().__init__(**kwargs)
        if not isinstance(layer, Layer):
            raise TypeError(
                f"TimeDistributed {self.name!r}: expected a seqcore layer (or Sequential) to wrap; received "
                f"{type(layer).__name__}."
            )
        if layer.activity_regularizer is not None:
            warnings.warn(
                f"TimeDistributed {self.name!r}: the activity_regularizer of the wrapped {type(layer).__name__} "
                f"{layer.name!r} has no effect, as in Keras 3 (TimeDistributed calls the layer's call(), which "
                f"skips it). Put it on the TimeDistributed layer instead: "
                f"TimeDistributed(..., activity_regularizer=...).",
                UserWarning,
                stacklevel=2,
            )
        self.layer = layer

    def _check(self, input_shape: Shape) -> None:
        if len(input_shape) < 2:
            raise ValueError(
                f"TimeDistributed {self.name!r}: the input must have a time axis and per-step data, i.e. rank >= 3 "
                f"with the batch (batch, timesteps, ...); received {shape_str((None, *input_shape))}. If the "
                f"input comes from an LSTM/GRU, set return_sequences=True on it."
            )

    def build(self, input_shape: Shape) -> None:
        self._check(input_shape)
        self.layer._maybe_build(tuple(input_shape[1:]))

    @property
    def weights(self) -> list[Any]:
        return self.layer.weights

    @property
    def trainable_weights(self) -> list[Any]:
        return self.layer.trainable_weights if self.trainable else []

    @property
    def non_trainable_weights(self) -> list[Any]:
        return self.layer.non_trainable_weights if self.trainable else self.layer.weights

    def get_weights(self) -> list[np.ndarray]:
        return self.layer.get_weights()

    def set_weights(self, weights: Any) -> None:
        self.layer.set_weights(weights)

    def count_params(self) -> int:
        return self.layer.count_params()

    def regularization_loss(self) -> float:
        return self.layer.regularization_loss()

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self._check(input_shape)
        return (input_shape[0], *self.layer.compute_output_shape(tuple(input_shape[1:])))

    _takes_batch = True

    def forward(self, x: np.ndarray, training: bool = False, batch: int | None = None) -> tuple[np.ndarray, Any]:
        if x.ndim < 3:
            self._check(tuple(x.shape[1:]))
        b, t = x.shape[0], x.shape[1]
        kw: dict[str, Any] = {}
        if self.layer._takes_batch:
            # Keras calls a nested model once per step on (batch, ...): its layers' activity
            # penalties are divided by the outer batch size, not by batch * steps.
            kw["batch"] = batch if batch is not None else b
        # ``forward``, not ``apply``: Keras's TimeDistributed calls the wrapped layer's call(), so
        # the wrapped layer's own activity_regularizer is not applied (warned at init).
        y, inner = self.layer.forward(np.ascontiguousarray(x).reshape(b * t, *x.shape[2:]), training=training, **kw)
        return y.reshape(b, t, *y.shape[1:]), _Wrapped(inner, (b, t))

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        assert ctx is not None, "backward without a training forward"
        b, t = ctx.outer
        dx = self.layer.backward(ctx.inner, np.ascontiguousarray(dy).reshape(b * t, *dy.shape[2:]), need_dx=need_dx)
        return dx.reshape(b, t, *dx.shape[1:])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "layer": {"class_name": type(self.layer).__name__, "config": self.layer.get_config()},
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TimeDistributed:
        from . import deserialize

        cfg = dict(config)
        cfg["layer"] = deserialize(cfg["layer"])
        return cls(**cfg)


class Masking(Layer):
    """Keras's Masking: a step whose features all equal ``mask_value`` is masked for the recurrent
    layers that follow (and its values are zeroed). seqcore takes post-padded sequences."""

    propagates_mask = True
    produces_mask = True

    def __init__(self, mask_value: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def compute_mask(self, x: np.ndarray) -> np.ndarray:
        return np.any(x != np.float32(self.mask_value), axis=-1)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        keep = self.compute_mask(x)[..., None].astype(np.float32)
        return x * keep, keep

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        return dy * ctx

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mask_value": self.mask_value}


class Bidirectional(Layer):
    """Keras's Bidirectional: runs ``layer`` forward and a copy with the opposite ``go_backwards``
    on the same input, re-reverses the backward outputs in time (as Keras does), and merges them
    (``concat``, ``sum``, ``mul``, ``ave``, or ``None`` for a list). Weights: forward layer's, then
    backward layer's."""

    uses_mask = True

    def __init__(
        self, layer: Layer, merge_mode: str | None = "concat", backward_layer: Layer | None = None, **kwargs: Any
    ):
        super().__init__(**kwargs)
        from .recurrent import _RNN

        if not isinstance(layer, _RNN):
            raise TypeError(
                f"Bidirectional {self.name!r}: expected an LSTM or GRU layer; received {type(layer).__name__}."
            )
        if merge_mode not in ("concat", "sum", "mul", "ave", None):
            raise ValueError(
                f"Bidirectional {self.name!r}: merge_mode must be one of 'concat', 'sum', 'mul', 'ave' or None. "
                f"Received: merge_mode={merge_mode!r}"
            )
        self.merge_mode = merge_mode
        self.forward_layer = layer
        if backward_layer is None:
            cfg = layer.get_config()
            cfg.update(name=f"backward_{layer.name}", go_backwards=not layer.go_backwards)
            cfg.pop("input_shape", None)
            backward_layer = type(layer).from_config(cfg)
        elif not isinstance(backward_layer, type(layer)) or backward_layer.go_backwards == layer.go_backwards:
            raise ValueError(
                f"Bidirectional {self.name!r}: backward_layer must be the same kind of layer as `layer` with the "
                f"opposite go_backwards."
            )
        self.backward_layer: Any = backward_layer
        assert isinstance(layer, _RNN) and isinstance(backward_layer, _RNN)
        # A RematScope around the wrapper, or around the layer it copies, applies to both directions.
        # As Keras: when returning sequences, masked steps of both directions output zeros (otherwise
        # the backward direction would repeat outputs from the future into the padding).
        scope = layer._remat_mode or remat.current_mode()
        for sub in (layer, backward_layer):
            if sub._remat_mode is None:
                sub._remat_mode = scope
            sub.zero_output_for_mask = sub.return_sequences
        self.return_sequences = layer.return_sequences
        self.propagates_mask = self.return_sequences

    def build(self, input_shape: Shape) -> None:
        self.forward_layer._maybe_build(input_shape)
        self.backward_layer._maybe_build(input_shape)

    @property
    def weights(self) -> list[Any]:
        return self.forward_layer.weights + self.backward_layer.weights

    @property
    def trainable_weights(self) -> list[Any]:
        return (self.forward_layer.trainable_weights + self.backward_layer.trainable_weights) if self.trainable else []

    @property
    def non_trainable_weights(self) -> list[Any]:
        return [] if self.trainable else self.weights

    def get_weights(self) -> list[np.ndarray]:
        return self.forward_layer.get_weights() + self.backward_layer.get_weights()

    def set_weights(self, weights: Any) -> None:
        n = len(self.forward_layer.weights)
        if len(weights) != 2 * n:
            raise ValueError(f"Bidirectional {self.name!r}: expected {2 * n} arrays; received {len(weights)}.")
        self.forward_layer.set_weights(weights[:n])
        self.backward_layer.set_weights(weights[n:])

    def count_params(self) -> int:
        return self.forward_layer.count_params() + self.backward_layer.count_params()

    def regularization_loss(self) -> float:
        return self.forward_layer.regularization_loss() + self.backward_layer.regularization_loss()

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        out = self.forward_layer.compute_output_shape(input_shape)
        if self.merge_mode == "concat":
            return (*out[:-1], 2 * out[-1])  # type: ignore[operator]
        return out

    _takes_batch = True

    def symbolic_output(self, inputs: Any, **kwargs: Any) -> Any:
        self._maybe_build(tuple(inputs.shape[1:]))
        f = self.forward_layer.compute_output_shape(tuple(inputs.shape[1:]))
        out = (inputs.shape[0], *f)
        merged = (inputs.shape[0], *self.compute_output_shape(tuple(inputs.shape[1:])))
        outs = [out, out] if self.merge_mode is None else [merged]
        if self.forward_layer.return_state:
            outs += [(inputs.shape[0], self.forward_layer.units)] * (2 * self.forward_layer._n_states)
        return outs if len(outs) > 1 else outs[0]

    def output_mask(self, in_mask: Any, x: Any, ctx: Any) -> Any:
        keep = in_mask if self.return_sequences else None
        n_out = 2 if self.merge_mode is None else 1
        n_states = 2 * self.forward_layer._n_states if self.forward_layer.return_state else 0
        return keep if n_out + n_states == 1 else [keep] * n_out + [None] * n_states

    def forward(
        self,
        x: np.ndarray,
        training: bool = False,
        lengths: Any = None,
        initial_state: Any = None,
        batch: int | None = None,
    ) -> tuple[Any, Any]:
        fwd_init = bwd_init = None
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            n = self.forward_layer._n_states
            if len(states) != 2 * n:
                raise ValueError(
                    f"Bidirectional {self.name!r}: initial_state must hold {2 * n} arrays (the forward layer's "
                    f"{n} states, then the backward layer's); received {len(states)}."
                )
            fwd_init, bwd_init = states[:n], states[n:]
        # Keras calls both layers through __call__, so their activity penalties count.
        f, fcall = self.forward_layer.apply(x, training, batch, lengths=lengths, initial_state=fwd_init)
        b, bcall = self.backward_layer.apply(x, training, batch, lengths=lengths, initial_state=bwd_init)
        states = []
        if self.forward_layer.return_state:
            f, *fs = f
            b, *bs = b
            states = [*fs, *bs]
        if self.return_sequences:
            b = b[:, ::-1]
        ctx = _BidiContext(fcall, bcall, (f, b) if self.merge_mode == "mul" and training else None)
        if self.merge_mode == "concat":
            out = np.concatenate([f, b], axis=-1)
        elif self.merge_mode == "sum":
            out = f + b
        elif self.merge_mode == "ave":
            out = (f + b) * np.float32(0.5)
        elif self.merge_mode == "mul":
            out = f * b
        else:
            return [f, b, *states], ctx
        return ([out, *states] if states else out), ctx

    def backward(self, ctx: Any, dy: Any, need_dx: bool = True) -> np.ndarray:
        n_states = 2 * self.forward_layer._n_states if self.forward_layer.return_state else 0
        outs = 2 if self.merge_mode is None else 1
        parts = list(dy) if outs + n_states > 1 else [dy]
        d_states = parts[outs:]
        if self.merge_mode is None:
            df, db = parts[0], parts[1]
        else:
            d = parts[0]
            if d is None:
                df = db = None
            elif self.merge_mode == "concat":
                h = d.shape[-1] // 2
                df, db = d[..., :h], d[..., h:]
            elif self.merge_mode == "sum":
                df = db = d
            elif self.merge_mode == "ave":
                df = db = d * np.float32(0.5)
            else:
                f, b = ctx.fb
                df, db = d * b, d * f
        if db is not None and self.return_sequences:
            db = db[:, ::-1]
        k = n_states // 2
        dfw = _with_states(self.forward_layer, df, d_states[:k], ctx.fcall, n_states)
        dbw = _with_states(self.backward_layer, db, d_states[k:], ctx.bcall, n_states)
        dx = self.forward_layer.unapply(ctx.fcall, dfw, need_dx=need_dx)
        dx = dx + self.backward_layer.unapply(ctx.bcall, dbw, need_dx=need_dx)
        fk = getattr(ctx.fcall.ctx, "kwarg_grads", None)
        bk = getattr(ctx.bcall.ctx, "kwarg_grads", None)
        if fk and bk:
            ctx.kwarg_grads = {"initial_state": [*fk["initial_state"], *bk["initial_state"]]}
        return dx

    def get_config(self) -> dict[str, Any]:
        # The backward layer is saved too: a custom one (other units' names, initializers, dropout)
        # would otherwise come back as a copy of the forward layer.
        return {
            **super().get_config(),
            "merge_mode": self.merge_mode,
            "layer": {"class_name": type(self.forward_layer).__name__, "config": self.forward_layer.get_config()},
            "backward_layer": {
                "class_name": type(self.backward_layer).__name__,
                "config": self.backward_layer.get_config(),
            },
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Bidirectional:
        from . import deserialize

        cfg = dict(config)
        cfg["layer"] = deserialize(cfg["layer"])
        if cfg.get("backward_layer") is not None:
            cfg["backward_layer"] = deserialize(cfg["backward_layer"])
        return cls(**cfg)


class _Wrapped:
    """TimeDistributed's record of one call: the wrapped layer's context and the folded axes."""

    __slots__ = ("inner", "outer", "activity_loss")

    def __init__(self, inner: Any, outer: tuple[int, int]):
        self.inner, self.outer = inner, outer
        self.activity_loss = float(getattr(inner, "activity_loss", 0.0))


class _BidiContext:
    __slots__ = ("fcall", "bcall", "fb", "activity_loss", "kwarg_grads")

    def __init__(self, fcall: Any, bcall: Any, fb: Any):
        self.fcall, self.bcall, self.fb = fcall, bcall, fb
        self.activity_loss = fcall.activity_loss + bcall.activity_loss
        self.kwarg_grads: dict[str, Any] | None = None


def _with_states(layer: Any, d_out: Any, d_states: list[Any], call: Any, n_states: int) -> Any:
    """A direction's output gradient in the structure its forward returned (with return_state:
    ``[d_out, *d_states]``; a missing output gradient becomes zeros)."""
    if d_out is None:
        b, t, _ = call.ctx.x_shape
        d_out = np.zeros((b, t, layer.units) if layer.return_sequences else (b, layer.units), np.float32)
    d_out = np.ascontiguousarray(d_out)
    return [d_out, *d_states] if n_states else d_out
