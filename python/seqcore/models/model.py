"""``Model``: a Layer that trains. What every seqcore model shares — the trainer
(``seqcore.trainers``), data as one array per input/output, weights gathered from its layers, the
parameter-count summary numbers, saving — on top of the Layer contract (``forward`` returns the
outputs and a per-call context, ``backward`` consumes it), so a model nests in another model or in
a ``Sequential`` like any layer.

``Model(inputs, outputs)`` builds a ``Functional`` graph (``seqcore.models.functional``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..layers.base import Layer, Weight, _snake, unique_name
from ..trainers import Trainer
from ..trainers import data_adapters as da


class Model(Trainer, Layer):
    """Keras's ``Model``. ``Model(inputs, outputs, name=None)`` is a Functional model."""

    _takes_batch = True

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
            from .functional import Functional

            return super().__new__(Functional)
        return super().__new__(cls)

    def __init__(self, *args: Any, name: str | None = None, trainable: bool = True, **kwargs: Any):
        if args:
            raise TypeError(f"{type(self).__name__}: unexpected positional arguments {args!r}.")
        Layer.__init__(self, name=name or unique_name(_snake(type(self).__name__)), trainable=trainable, **kwargs)
        self._init_trainer()

    # ----- structure ----------------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        if self._traced:  # a subclassed model: the layers it holds as attributes, as Keras tracks them
            return self._sublayers()
        raise NotImplementedError

    # ----- subclassed models: call() traced once into a graph ------------------------------------
    def _run(self, xs: list[np.ndarray], training: bool) -> tuple[list[np.ndarray], list[Any], Any]:
        return self._traced_graph(xs if len(xs) > 1 else xs[0])._execute(xs, training, None)

    def _run_backward(self, ctx: Any, grads: list[Any]) -> None:
        self._graph._run_backward(ctx, grads)

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        from ..symbolic import any_symbolic

        if not self._traced or any_symbolic(x, args, kwargs):
            return Layer.__call__(self, x, *args, **kwargs)
        training = bool(kwargs.pop("training", args[0] if args else False))
        xs = self._input_list(x, f"{self.name}.__call__")
        graph = self._traced_graph(list(xs) if len(xs) > 1 else xs[0])
        outs, _, ctx = graph._execute(list(xs), training, None)
        self._activity_loss = ctx.activity_loss
        return graph._structure_outputs(outs)

    def _input_list(self, x: Any, who: str) -> da.FlatArrays:
        if self._traced and getattr(self, "_graph", None) is not None:
            return self._graph._input_list(x, who)
        if self._traced and isinstance(x, (list, tuple)) and x and all(np.ndim(a) >= 1 for a in x) and (
            len({np.shape(a)[0] for a in x}) == 1 and len(x) > 1 and not isinstance(x[0], (int, float))
            and np.ndim(x[0]) >= 2
        ):  # fmt: skip
            return da.FlatArrays(da.as_array(a, "x", who) for a in x)
        return _as_list(x, self._input_names(), "x", who)

    @property
    def built(self) -> bool:  # type: ignore[override]
        return self._built_flag or getattr(self, "_graph", None) is not None

    @built.setter
    def built(self, value: bool) -> None:
        self._built_flag = value

    def build(self, input_shape: Any = None) -> None:  # type: ignore[override]
        """A subclassed model: traces ``call`` on ``input_shape`` (with the batch axis), as
        ``model.build((None, ...))`` does in Keras."""
        if self._traced and input_shape is not None and getattr(self, "_graph", None) is None:
            self._trace(list(input_shape) if isinstance(input_shape, list) else tuple(input_shape))
        self._built_flag = True

    def _chain_layers(self) -> list[Layer]:
        """The layers in the order they run (what truncated BPTT inspects)."""
        return [layer for layer in self.layers if type(layer).__name__ != "InputLayer"]

    @property
    def output_names(self) -> list[str]:
        return ["output"]

    def _input_names(self) -> list[str]:
        return ["input"]

    def inputs_or_none(self) -> list[Any] | None:
        return None

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by ``name`` or by ``index``, as Keras."""
        if (name is None) == (index is None):
            raise ValueError(f"{self.name}.get_layer: provide exactly one of name or index. Received: "
                             f"name={name!r}, index={index!r}")  # fmt: skip
        layers = self.layers
        if index is not None:
            if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
                raise TypeError(f"{self.name}.get_layer: index must be an int; received {index!r}.")
            if not -len(layers) <= index < len(layers):
                raise ValueError(
                    f"{self.name}.get_layer: index {index} is out of range for a model with {len(layers)} layer(s)."
                )
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"{self.name}.get_layer: no layer named {name!r}; the layers are {[x.name for x in layers]}.")

    # ----- weights ------------------------------------------------------------------------------
    @property
    def weights(self) -> list[Weight]:
        seen: set[int] = set()
        out = []
        for layer in self.layers:
            for w in layer.weights:
                if id(w) not in seen:  # a layer used twice holds one set of weights
                    seen.add(id(w))
                    out.append(w)
        return out

    @property
    def trainable_weights(self) -> list[Weight]:
        if not self.trainable:
            return []
        seen: set[int] = set()
        out = []
        for layer in self.layers:
            for w in layer.trainable_weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    @property
    def non_trainable_weights(self) -> list[Weight]:
        tw = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in tw]

    def count_params(self) -> int:
        return sum(math.prod(w.shape) for w in self.weights)

    def get_weights(self) -> list[np.ndarray]:
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """All weights in Keras's order: ``model.set_weights(keras_model.get_weights())`` works for the
        same architecture. Every shape is checked before any weight changes."""
        if not self.built:
            raise ValueError(f"{self.name}: set_weights needs a built model (give it an Input shape first).")
        own = self.weights
        if len(weights) != len(own):
            raise ValueError(f"{self.name}: expected {len(own)} weight arrays; received {len(weights)}.")
        owner = {id(w): layer.name for layer in self.layers for w in layer.weights}
        for i, (w, v) in enumerate(zip(own, weights, strict=True)):
            if np.shape(v) != w.shape:
                raise ValueError(
                    f"{self.name}: weight {i} ({owner.get(id(w), '?')}/{w.name}) has shape {w.shape}; received "
                    f"{np.shape(v)}."
                )
        for w, v in zip(own, weights, strict=True):
            w.value[...] = np.asarray(v, np.float32)

    def regularization_loss(self) -> float:
        total = 0.0
        for w in self.weights:
            if w.regularizer is not None:
                total += w.regularizer(w.value)
        return total

    def reset_states(self) -> None:
        from ..layers.recurrent import _RNN

        for layer in self.layers:
            if isinstance(layer, _RNN):
                layer.reset_states()
            elif isinstance(layer, Model):
                layer.reset_states()

    def _stateful_layers(self) -> list[Any]:
        from ..layers.recurrent import _RNN
        from ..layers.wrappers import Bidirectional

        out: list[Any] = []
        for layer in self.layers:
            if isinstance(layer, Model):
                out.extend(layer._stateful_layers())
            elif isinstance(layer, Bidirectional):
                out.extend(sub for sub in (layer.forward_layer, layer.backward_layer) if sub.stateful)
            elif isinstance(layer, _RNN) and layer.stateful:
                out.append(layer)
        return out

    def get_states(self) -> list[np.ndarray]:
        """The carried states of every stateful recurrent layer, in layer order (``[h, c]`` for an
        LSTM, ``[h]`` otherwise), as copies: explicit state, as ONNX models take it, so that one
        model can serve several streams (``set_states`` one stream's, step, ``get_states``). A layer
        that carries no state yet contributes zeros of the batch size ``batch_size`` fixed by its
        input, or is refused if none is known."""
        out: list[np.ndarray] = []
        for layer in self._stateful_layers():
            if layer.states is None:
                batch = self._stateful_batch(layer)
                out.extend(np.zeros((batch, layer.units), np.float32) for _ in range(layer._n_states))
            else:
                out.extend(s.copy() for s in layer.states)
        return out

    def set_states(self, states: Any) -> None:
        """Sets the states :meth:`get_states` returns (the same count and order); ``None`` resets
        them, as :meth:`reset_states`."""
        layers = self._stateful_layers()
        if states is None:
            for layer in layers:
                layer.reset_states()
            return
        states = list(states)
        want = sum(layer._n_states for layer in layers)
        if len(states) != want:
            raise ValueError(
                f"{self.name}.set_states: the model's stateful layers carry {want} state arrays "
                f"({', '.join(f'{lyr.name}: {lyr._n_states}' for lyr in layers) or 'none'}); received {len(states)}."
            )
        parts, i = [], 0
        for layer in layers:
            parts.append(states[i : i + layer._n_states])
            i += layer._n_states
        batches = {np.shape(s)[0] for s in states if np.ndim(s) == 2}
        if len(batches) > 1:
            raise ValueError(f"{self.name}.set_states: every state must have the same batch size; received {batches}.")
        for layer, part in zip(layers, parts, strict=True):
            layer.reset_states(part)

    def _stateful_batch(self, layer: Any) -> int:
        spec = getattr(self, "_input_spec", None)
        batch = getattr(spec, "batch_size", None) if spec is not None else None
        if batch is None:
            raise ValueError(
                f"{self.name}.get_states: layer {layer.name!r} carries no state yet and the model's batch size is "
                f"not fixed; call the model once, or give Input(batch_size=...)."
            )
        return int(batch)

    # ----- data ---------------------------------------------------------------------------------
    def _target_list(self, y: Any, who: str) -> da.FlatArrays:
        return _as_list(y, self.output_names, "y", who)

    def _structure_outputs(self, outs: list[np.ndarray]) -> Any:
        return outs[0] if len(outs) == 1 else outs

    def _check_inputs(self, xs: list[np.ndarray], where: str) -> list[np.ndarray]:
        return xs

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        """``keras.Model.from_config``: a Functional config (with ``layers``) becomes a Functional."""
        if cls is Model and isinstance(config, dict) and "layers" in config:
            from .functional import Functional

            return Functional.from_config(config)
        return super().from_config(config)

    # ----- saving (implemented in seqcore.saving) ----------------------------------------------
    def save(self, filepath: Any, overwrite: bool = True, include_optimizer: bool = True) -> None:
        """Writes the whole model to one file (architecture, weights, compile config and optimizer
        state); ``seqcore.saving.load_model(filepath)`` restores it. See ``seqcore.saving``."""
        from ..saving import save_model

        if str(filepath).endswith((".keras", ".h5", ".hdf5")):
            warnings.warn(
                f"{self.name}.save({str(filepath)!r}): this writes seqcore's own format, which Keras cannot load, "
                f"under a Keras file name. Use the '.seqcore' extension, or seqcore.interop.save_keras(model, path) "
                f"for a file Keras opens.",
                UserWarning,
                stacklevel=2,
            )
        save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def export(self, filepath: Any, format: str = "tf_saved_model", **kwargs: Any) -> Any:  # noqa: A002
        """Keras 3's ``model.export``: ``format="onnx"`` writes an ONNX model that ONNX Runtime runs
        (``seqcore.interop.to_onnx``; ``opset=`` 17 by default) and returns its ``onnx.ModelProto``.
        Keras's default, ``tf_saved_model``, needs TensorFlow and is refused with that fix."""
        from ..interop.onnx import export_model

        return export_model(self, filepath, format, **kwargs)

    def save_weights(self, filepath: Any, overwrite: bool = True) -> None:
        """Writes the weights only, as a plain safetensors file named by layer and weight."""
        from ..saving import save_weights

        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: Any) -> None:
        """Loads weights by name from ``save_weights``'s file or a full model file; on any mismatch
        raises a ValueError listing it and changes no weight."""
        from ..saving import load_weights

        load_weights(self, filepath)


def _as_list(data: Any, names: list[str], arg: str, who: str) -> da.FlatArrays:
    """One array per named input/output, from an array (one input), a list/tuple in order, or a
    dict by name; a missing or an unexpected name is an error naming both sets."""
    n = len(names)
    if isinstance(data, da.FlatArrays):
        return data
    if isinstance(data, Mapping):
        missing = [k for k in names if k not in data]
        extra = [k for k in data if k not in names]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {missing}")
            if extra:
                parts.append(f"unexpected {extra}")
            raise ValueError(f"{who}: {arg} as a dict must have exactly the keys {names}; {' and '.join(parts)}.")
        items = [data[k] for k in names]
    elif n > 1:
        if not isinstance(data, (list, tuple)) or len(data) != n:
            got = f"a {type(data).__name__}" + (f" of length {len(data)}" if isinstance(data, (list, tuple)) else "")
            raise ValueError(
                f"{who}: the model has {n} {'inputs' if arg == 'x' else 'outputs'} {names}, so {arg} must be a list "
                f"of {n} arrays or a dict by name; received {got}."
            )
        items = list(data)
    else:
        items = [data]
    return da.FlatArrays(da.as_array(a, arg if n == 1 else f"{arg}[{names[i]!r}]", who) for i, a in enumerate(items))


def render_summary(name: str, header: list[str], rows: Sequence[tuple[str, ...]], total: int, trainable: int) -> str:
    """Keras's summary table (box-drawn, ``Param #`` right-aligned) and its three totals; shared
    weights count once."""
    mins = [31, 22, 13, 17]
    w = [max(mins[i], *(len(r[i]) for r in rows)) if rows else mins[i] for i in range(len(header))]

    def cell(i: int, text: str) -> str:
        return f"{text:>{w[i]}}" if header[i] == "Param #" else f"{text:<{w[i]}}"

    lines = [f'Model: "{name}"']
    lines.append("┏" + "┳".join("━" * (n + 2) for n in w) + "┓")
    lines.append("┃ " + " ┃ ".join(cell(i, h) for i, h in enumerate(header)) + " ┃")
    lines.append("┡" + "╇".join("━" * (n + 2) for n in w) + "┩")
    for k, r in enumerate(rows):
        lines.append("│ " + " │ ".join(cell(i, c) for i, c in enumerate(r)) + " │")
        if k < len(rows) - 1:
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
    return "\n".join(lines)
