"""TimeDistributed and Masking."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .base import Layer, Shape, shape_str


class TimeDistributed(Layer):
    """Applies ``layer`` to every slice of axis 1 with ONE set of weights, by folding that axis into
    the batch (a single kernel call, not a loop over time). A regularizer on the wrapped layer
    therefore counts once, not once per step. The outer axis may vary between calls (``None``)."""

    propagates_mask = True

    def __init__(self, layer: Layer, **kwargs: Any):
        super().__init__(**kwargs)
        from ..models import Sequential

        if isinstance(layer, Sequential):
            layer = SequentialLayer(layer)
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
        self._outer: tuple[int, int] | None = None

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

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if x.ndim < 3:
            self._check(tuple(x.shape[1:]))
        b, t = x.shape[0], x.shape[1]
        self._outer = (b, t)
        if isinstance(self.layer, SequentialLayer):
            # Keras calls a nested model once per step on (batch, ...): its layers' activity
            # penalties are divided by the outer batch size, not by batch * steps.
            self.layer._activity_batch = self._activity_batch if self._activity_batch is not None else b
        # ``forward``, not ``_forward_outer``: Keras's TimeDistributed calls the wrapped layer's
        # call(), so the wrapped layer's own activity_regularizer is not applied (warned at init).
        y = self.layer.forward(np.ascontiguousarray(x).reshape(b * t, *x.shape[2:]), training=training)
        return y.reshape(b, t, *y.shape[1:])

    def activity_loss(self) -> float:
        inner = self.layer.model.activity_loss() if isinstance(self.layer, SequentialLayer) else 0.0
        return self._activity_loss + inner

    def backward(self, dy: np.ndarray) -> np.ndarray:
        assert self._outer is not None, "backward without a training forward"
        self.layer.need_input_grad = self.need_input_grad
        b, t = self._outer
        dx = self.layer.backward(np.ascontiguousarray(dy).reshape(b * t, *dy.shape[2:]))
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

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._keep = self.compute_mask(x)[..., None].astype(np.float32)
        return x * self._keep

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy * self._keep

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
        # As Keras: when returning sequences, masked steps of both directions output zeros (otherwise
        # the backward direction would repeat outputs from the future into the padding).
        for sub in (layer, backward_layer):
            assert isinstance(sub, _RNN)
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

    def forward(self, x: np.ndarray, training: bool = False, lengths: Any = None) -> np.ndarray:
        # Keras calls both layers through __call__, so their activity penalties count.
        f = self.forward_layer._forward_outer(x, training=training, batch=self._activity_batch, lengths=lengths)
        b = self.backward_layer._forward_outer(x, training=training, batch=self._activity_batch, lengths=lengths)
        if self.return_sequences:
            b = b[:, ::-1]
        if self.merge_mode == "concat":
            return np.concatenate([f, b], axis=-1)
        if self.merge_mode == "sum":
            return f + b
        if self.merge_mode == "ave":
            return (f + b) * np.float32(0.5)
        if self.merge_mode == "mul":
            self._fb = (f, b)
            return f * b
        raise ValueError(
            f"Bidirectional {self.name!r}: merge_mode=None returns two outputs; use it outside Sequential."
        )

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self.merge_mode == "concat":
            h = dy.shape[-1] // 2
            df, db = dy[..., :h], dy[..., h:]
        elif self.merge_mode == "sum":
            df = db = dy
        elif self.merge_mode == "ave":
            df = db = dy * np.float32(0.5)
        else:
            f, b = self._fb
            df, db = dy * b, dy * f
        if self.return_sequences:
            db = db[:, ::-1]
        self.forward_layer.need_input_grad = self.backward_layer.need_input_grad = self.need_input_grad
        dx = self.forward_layer._backward_outer(np.ascontiguousarray(df))
        return dx + self.backward_layer._backward_outer(np.ascontiguousarray(db))

    def activity_loss(self) -> float:
        return self._activity_loss + self.forward_layer.activity_loss() + self.backward_layer.activity_loss()

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


class SequentialLayer(Layer):
    """A ``Sequential`` used as one layer: inside ``TimeDistributed`` (a per-subsequence CNN stack) or
    nested in another ``Sequential``. Delegates to the model's layers."""

    def __init__(self, model: Any, **kwargs: Any):
        from ..models import Sequential

        if not isinstance(model, Sequential):
            raise TypeError(f"SequentialLayer: expected a seqcore Sequential model; received {type(model).__name__}.")
        super().__init__(name=kwargs.pop("name", None) or model.name, **kwargs)
        self.model = model
        self.propagates_mask = all(layer.propagates_mask for layer in model.layers)

    def build(self, input_shape: Shape) -> None:
        from .core import InputSpec

        if self.model._input_spec is None:
            self.model._input_spec = InputSpec(input_shape)
        self.model._build_layers(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self.model._build_layers(input_shape)

    @property
    def weights(self) -> list[Any]:
        return self.model.weights

    @property
    def trainable_weights(self) -> list[Any]:
        return self.model.trainable_weights if self.trainable else []

    @property
    def non_trainable_weights(self) -> list[Any]:
        return self.model.non_trainable_weights if self.trainable else self.model.weights

    def get_weights(self) -> list[np.ndarray]:
        return self.model.get_weights()

    def set_weights(self, weights: Any) -> None:
        self.model.set_weights(weights)

    def count_params(self) -> int:
        return self.model.count_params()

    def regularization_loss(self) -> float:
        return sum(layer.regularization_loss() for layer in self.model.layers)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return self.model._forward(x, training=training, activity_batch=self._activity_batch)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return self.model._backward(dy, need_input_grad=self.need_input_grad)

    def activity_loss(self) -> float:
        return self._activity_loss + self.model.activity_loss()

    def get_config(self) -> dict[str, Any]:
        # A frozen inner model (Sequential(..., trainable=False)) is frozen as a layer too.
        return {
            "name": self.name,
            "trainable": self.trainable and self.model.trainable,
            "model": self.model.get_config(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SequentialLayer:
        from ..models import Sequential

        cfg = dict(config)
        model_cfg = cfg.pop("model", None)
        if not isinstance(model_cfg, dict):
            raise ValueError(
                f"SequentialLayer: the config needs a 'model' dict (a Sequential config); received {model_cfg!r}"
            )
        return cls(Sequential.from_config(model_cfg), **cfg)
