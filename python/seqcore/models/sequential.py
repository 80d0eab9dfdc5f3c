"""``Sequential``: a linear stack of layers, with shape checks before any work and errors that name
the layer, both shapes and the fix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import streaming
from ..layers.base import Layer, Shape, shape_str, unique_name
from ..layers.core import InputLayer, InputSpec
from ..layers.recurrent import return_sequences_hint as _rnn_hint
from ..symbolic import KerasTensor
from ..trainers import data_adapters as da
from .model import Model, render_summary


class Sequential(Model):
    """A linear stack of layers (Keras's ``Sequential``): a Model, so it nests in another model or in
    TimeDistributed (a per-subsequence CNN stack) as a layer."""

    def __init__(
        self, layers: Sequence[Any] | None = None, name: str | None = None, trainable: bool = True, **kwargs: Any
    ):
        super().__init__(name=name or unique_name("sequential"), trainable=trainable, **kwargs)
        self._layers: list[Layer] = []
        self._input_spec: InputSpec | None = None
        for layer in layers or []:
            self.add(layer)

    # ----- structure -------------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        return self._layers

    @layers.setter
    def layers(self, value: list[Layer]) -> None:
        self._layers = value
        self._stream = None

    #: the streaming plan for one-step calls (``seqcore.streaming``); reset when the layers change
    _stream: Any = None

    def add(self, layer: Any) -> None:
        if isinstance(layer, KerasTensor) and layer.node is not None and isinstance(layer.node.layer, InputLayer):
            layer = layer.node.layer
        if isinstance(layer, InputSpec) or isinstance(layer, InputLayer):
            if self.layers or self._input_spec is not None:
                raise ValueError(f"{self.name}: an Input can only be the first entry of a Sequential model.")
            self._input_spec = layer if isinstance(layer, InputSpec) else layer.spec
            return
        if isinstance(layer, KerasTensor):
            raise TypeError(
                f"{self.name}: a Sequential takes layers (and one Input first); received the symbolic tensor "
                f"{layer.name}. To build a graph from tensors, use seqcore.Model(inputs, outputs)."
            )
        if not isinstance(layer, Layer):
            raise TypeError(
                f"{self.name}: only seqcore layers can be added; received {type(layer).__name__}. (Keras layers "
                f"must be rebuilt from seqcore.layers.)"
            )
        if not self.layers and self._input_spec is None and layer._input_shape_arg is not None:
            self._input_spec = InputSpec(layer._input_shape_arg, layer._batch_size_arg)
        self.layers.append(layer)
        self._stream = None
        if self._input_spec is not None:
            self._build_layers(self._input_spec.shape)

    def pop(self, rebuild: bool = True) -> Layer:
        """Removes and returns the last layer, as Keras's ``Sequential.pop``."""
        if not self.layers:
            raise TypeError(f"{self.name}: there are no layers in the model to pop.")
        layer = self.layers.pop()
        self._stream = None
        if rebuild and self._input_spec is not None and self.layers:
            self._build_layers(self._input_spec.shape)
        return layer

    def _build_layers(self, input_shape: Shape) -> Shape:
        """Builds every layer on the shape flowing in, checking it; returns the output shape."""
        shape = tuple(input_shape)
        prev: Layer | None = None
        for i, layer in enumerate(self.layers):
            try:
                if layer.built:
                    want = layer._input_spec.shape if isinstance(layer, Sequential) and layer._input_spec else (
                        None if isinstance(layer, Model) else layer.input_shape)  # fmt: skip
                    if want is not None and not _compatible(want, shape):
                        raise ValueError(
                            f"expected input shape {shape_str((None, *want))}, received {shape_str((None, *shape))}"
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
    def built(self) -> bool:  # type: ignore[override]
        return bool(self.layers) and all(layer.built for layer in self.layers)

    @built.setter
    def built(self, value: bool) -> None:
        pass  # derived from the layers

    def _maybe_build(self, input_shape: Shape) -> None:
        if self._input_spec is None:
            self._input_spec = InputSpec(input_shape)
        self._build_layers(tuple(input_shape))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self._build_layers(tuple(input_shape))

    @property
    def inputs(self) -> list[KerasTensor]:
        """Keras's ``model.inputs``: the symbolic input tensor (its shape with the batch axis, its dtype)."""
        spec = self._input_spec
        if spec is None:
            raise AttributeError(f"{self.name} has no defined inputs yet (give it an Input or call it on data).")
        tensor = getattr(spec, "tensor", None)
        if tensor is None or tuple(tensor.shape) != (spec.batch_size, *spec.shape) or tensor.dtype != spec.dtype:
            tensor = spec.tensor = KerasTensor((spec.batch_size, *spec.shape), spec.dtype, name=spec.name)
        return [tensor]

    @property
    def input_shape(self) -> tuple[int | None, ...]:  # type: ignore[override]
        if self._input_spec is None:
            raise AttributeError(f"{self.name} has no defined input shape yet (give it an Input or call it on data).")
        return (self._input_spec.batch_size, *self._input_spec.shape)

    @input_shape.setter
    def input_shape(self, value: Any) -> None:
        pass  # derived from the Input

    @property
    def output_shape(self) -> tuple[int | None, ...]:  # type: ignore[override]
        if self._input_spec is None:
            raise AttributeError(f"{self.name} has no defined output shape yet (give it an Input or call it on data).")
        batch = self._input_spec.batch_size
        return (batch, *self._build_layers(self._input_spec.shape))

    @output_shape.setter
    def output_shape(self, value: Any) -> None:
        pass

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
        trainable = sum(int(np.prod(x.shape)) for x in self.trainable_weights)
        text = render_summary(
            self.name, ["Layer (type)", "Output Shape", "Param #"], rows, self.count_params(), trainable
        )
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

    def forward(
        self, x: np.ndarray, training: bool = False, batch: int | None = None, lengths: Any = None
    ) -> tuple[np.ndarray, Any]:
        """Runs the layers; a Masking layer's mask (as per-sample lengths) flows to the recurrent
        layers and, through the layers that keep it, to the loss (``ctx.out_lengths``). Each
        layer's activity penalty is summed into ``ctx.activity_loss``; ``batch`` is the batch size
        it is divided by when this model runs inside TimeDistributed (see Layer.apply)."""
        calls = []
        for layer in self.layers:
            kw = {"lengths": lengths} if layer.uses_mask else {}
            in_mask = lengths
            out, call = layer.apply(x, training=training, batch=batch, **kw)
            lengths = layer.output_mask(in_mask, x, call.ctx)
            x = out
            calls.append(call)
        ctx = _ChainContext(calls, lengths if x.ndim >= 3 else None)
        return x, ctx

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        """Backpropagates dL/d(output) through every layer (adding to each weight's ``grad``);
        returns dL/d(input) when ``need_dx`` (nothing consumes the first layer's otherwise)."""
        g = dy
        n = len(self.layers)
        for i, (layer, call) in enumerate(zip(reversed(self.layers), reversed(ctx.calls), strict=True)):
            g = layer.unapply(call, g, need_dx=need_dx or i != n - 1)
        return g

    def _run(self, xs: list[np.ndarray], training: bool) -> tuple[list[np.ndarray], list[Any], Any]:
        y, ctx = self.forward(xs[0], training=training)
        return [y], [ctx.out_lengths], ctx

    def _run_backward(self, ctx: Any, grads: list[Any]) -> None:
        self.backward(ctx, grads[0], need_dx=False)

    def _check_inputs(self, xs: list[np.ndarray], where: str) -> list[np.ndarray]:
        self._check_x(xs[0], where)
        return xs

    def activity_loss(self) -> float:
        """The activity regularization of the last eager call (Keras counts it in the loss)."""
        return self._activity_loss

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs and streaming.fast_input(self._stream, x):
            y = self._stream.plan.run(x, self._weights_lock)
            if y is not None:
                return y
        from ..symbolic import any_symbolic, symbolic_call

        if any_symbolic(x, args, kwargs):
            return symbolic_call(self, x, args, kwargs)
        training = bool(kwargs.pop("training", args[0] if args else False))
        xa = self._check_x(da.as_array(x, "x", f"{self.name}.__call__"), "__call__")
        y, ctx = self.forward(xa, training=training)
        self._activity_loss = ctx.activity_loss
        if not training:
            streaming.after_general_call(self, x, y)
        return y

    def predict_on_batch(self, x: Any) -> Any:
        if streaming.fast_input(self._stream, x):
            y = self._stream.plan.run(x, self._weights_lock)
            if y is not None:
                return y
        y = super().predict_on_batch(x)
        streaming.after_general_call(self, x, y)
        return y

    def get_config(self) -> dict[str, Any]:
        from ..layers import serialize

        cfg: dict[str, Any] = {
            "name": self.name,
            "trainable": self.trainable,
            "layers": [serialize(layer) for layer in self.layers],
        }
        if self._input_spec is not None:
            cfg["input_shape"] = self._input_spec.shape
            if self._input_spec.dtype != "float32":
                cfg["input_dtype"] = self._input_spec.dtype
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        from ..layers import deserialize

        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError(f"a Sequential config must be a dict with a 'layers' list; received {str(config)[:200]}")
        m = cls(name=config.get("name"), trainable=bool(config.get("trainable", True)))
        if config.get("input_shape") is not None:
            m._input_spec = InputSpec(config["input_shape"], dtype=config.get("input_dtype"))
        for lc in config["layers"]:
            m.add(deserialize(lc))
        return m


class _ChainContext:
    """One Sequential call: every layer's call record, the output mask, the activity penalties."""

    __slots__ = ("calls", "out_lengths", "activity_loss")

    def __init__(self, calls: list[Any], out_lengths: Any):
        self.calls = calls
        self.out_lengths = out_lengths
        self.activity_loss = float(sum(c.activity_loss for c in calls))


def _compatible(want: Sequence[int | None], got: Sequence[int | None]) -> bool:
    return len(want) == len(got) and all(a is None or b is None or a == b for a, b in zip(want, got, strict=True))
