"""Keras's cell API, ``keras.layers.RNN(cell)`` with ``LSTMCell``, ``GRUCell``, ``SimpleRNNCell``
and ``StackedRNNCells``, mapped onto the fused kernels: ``RNN(LSTMCell(...))`` runs exactly the
``LSTM(...)`` kernel (same weights, same numbers), and ``RNN(StackedRNNCells([...]))`` runs one
fused layer per cell, each feeding its whole output sequence to the next, which is what stacking
the cells computes step by step. A cell called on its own computes one step (``cell(x_t, states)
-> (h, new_states)``), as in Keras. A user-written cell class has no fused kernel and is refused
with the cells seqcore supports."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _masks
from .base import Layer, Shape
from .recurrent import _RNN, GRU, LSTM, SimpleRNN

_CELL_ARGS = (
    "units", "activation", "recurrent_activation", "use_bias", "kernel_initializer", "recurrent_initializer",
    "bias_initializer", "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "kernel_constraint",
    "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout", "seed",
)  # fmt: skip


class _Cell(Layer):
    """A recurrent cell: the configuration of one fused layer (``_layer``), which also holds its
    weights once an ``RNN`` (or a direct call) has built it."""

    _layer_class: type[_RNN] = _RNN
    _state_count = 1

    def __init__(self, units: int, **kwargs: Any):
        own = {k: kwargs.pop(k) for k in list(kwargs) if k in _CELL_ARGS or k in self._extra_args()}
        super().__init__(**kwargs)
        self._layer_kwargs = {"units": units, **own}
        # The fused layer validates every argument now, so a bad cell fails where it is written.
        self._layer: _RNN = self._layer_class(name=self.name, **self._layer_kwargs)
        self.units = self._layer.units

    def _extra_args(self) -> tuple[str, ...]:
        return ()

    @property
    def state_size(self) -> Any:
        return [self.units] * self._state_count if self._state_count > 1 else self.units

    @property
    def output_size(self) -> int:
        return self.units

    @property
    def weights(self) -> list[Any]:
        return self._layer.weights

    def fused(self, **rnn_options: Any) -> _RNN:
        """A fused layer with this cell's arguments and the RNN's options, sharing nothing yet."""
        return self._layer_class(name=self.name, **self._layer_kwargs, **rnn_options)

    def get_config(self) -> dict[str, Any]:
        cfg = self._layer.get_config()
        keep = {"name", "trainable", *_CELL_ARGS, *self._extra_args()}
        return {k: v for k, v in cfg.items() if k in keep}

    # One step, as Keras's cell(inputs, states): the fused kernel on a sequence of one step.
    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        from ..symbolic import any_symbolic

        inputs = x
        states = args[0] if args else kwargs.pop("states", None)
        training = kwargs.pop("training", args[1] if len(args) > 1 else False)
        if any_symbolic(inputs, states):
            raise TypeError(
                f"{type(self).__name__} {self.name!r}: a cell is not called on symbolic tensors in seqcore; wrap it in "
                f"keras.layers.RNN({type(self).__name__}(...)), which runs the fused {self._layer_class.__name__} "
                f"kernel over the whole sequence."
            )
        x = np.asarray(inputs, np.float32)
        if x.ndim != 2:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: a cell takes one step, (batch, features); received shape "
                f"{x.shape}. For a sequence, use keras.layers.RNN(cell)."
            )
        layer = self._layer
        if not layer.built:
            layer._maybe_build((1, x.shape[1]))
        # A stepping twin, made once, that shares the weights of the layer (which may be an RNN's, with
        # its own options; they are re-bound on every call because an RNN may have replaced them).
        step = self.__dict__.get("_step")
        if step is None:
            step = self._step = self.fused(return_state=True)
            step.built = True
        step.kernel, step.recurrent_kernel, step.bias = layer.kernel, layer.recurrent_kernel, layer.bias
        init = None if states is None else (list(states) if isinstance(states, (list, tuple)) else [states])
        out, _ = step.apply(x[:, None, :], training=bool(training), initial_state=init)
        h, *new = out
        return h, new


class LSTMCell(_Cell):
    """Keras's LSTMCell (gates i, f, c, o); its RNN runs the fused LSTM kernel."""

    _layer_class = LSTM
    _state_count = 2

    def _extra_args(self) -> tuple[str, ...]:
        return ("unit_forget_bias",)


class GRUCell(_Cell):
    """Keras's GRUCell (gates z, r, h; ``reset_after``); its RNN runs the fused GRU kernel."""

    _layer_class = GRU

    def _extra_args(self) -> tuple[str, ...]:
        return ("reset_after",)


class SimpleRNNCell(_Cell):
    """Keras's SimpleRNNCell; its RNN runs the fused SimpleRNN kernel."""

    _layer_class = SimpleRNN


class StackedRNNCells(Layer):
    """Keras's StackedRNNCells: cells applied one after another at every step."""

    def __init__(self, cells: Any, **kwargs: Any):
        super().__init__(**kwargs)
        cells = list(cells)
        if not cells:
            raise ValueError(f"StackedRNNCells {self.name!r}: needs at least one cell.")
        for c in cells:
            _check_cell(c, f"StackedRNNCells {self.name!r}")
        self.cells: list[_Cell] = cells

    @property
    def state_size(self) -> list[Any]:
        return [c.state_size for c in self.cells]

    @property
    def output_size(self) -> int:
        return self.cells[-1].output_size

    def get_config(self) -> dict[str, Any]:
        from . import serialize

        return {**super().get_config(), "cells": [serialize(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> StackedRNNCells:
        from . import deserialize

        cfg = dict(config)
        cells = [deserialize(c) for c in cfg.pop("cells")]
        return cls(cells, **cfg)


def _check_cell(cell: Any, who: str) -> None:
    if not isinstance(cell, (_Cell, StackedRNNCells)):
        raise TypeError(
            f"{who}: the cell is a {type(cell).__name__}; seqcore runs RNN cells on its fused kernels and supports "
            f"LSTMCell, GRUCell, SimpleRNNCell and StackedRNNCells of them. Write a custom cell's step with "
            f"layers and seqcore.ops in a subclassed Layer's call() instead."
        )


class RNN(Layer):
    """Keras's ``RNN(cell, return_sequences, return_state, go_backwards, stateful, unroll,
    zero_output_for_mask)`` on the fused kernels (see the module docs)."""

    uses_mask = True
    propagates_mask = False

    def __init__(
        self,
        cell: Any,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        **kwargs: Any,
    ):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(list(cell))
        super().__init__(**kwargs)
        _check_cell(cell, f"RNN {self.name!r}")
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.propagates_mask = self.return_sequences
        cells = cell.cells if isinstance(cell, StackedRNNCells) else [cell]
        last = len(cells) - 1
        # One fused layer per cell: every cell but the last hands its whole sequence to the next; only
        # the first runs backwards (the others then read the sequence in the order it comes).
        self._layers: list[_RNN] = [
            c.fused(
                return_sequences=self.return_sequences if i == last else True,
                return_state=self.return_state,
                go_backwards=self.go_backwards and i == 0,
                stateful=self.stateful,
                zero_output_for_mask=self.zero_output_for_mask,
            )
            for i, c in enumerate(cells)
        ]
        for c, layer in zip(cells, self._layers, strict=True):
            c._layer = layer  # the cell reports (and steps with) the weights the RNN trains
        self._stacked = isinstance(cell, StackedRNNCells)

    @property
    def states(self) -> Any:
        return [layer.states for layer in self._layers] if self._stacked else self._layers[0].states

    def reset_states(self, states: Any = None) -> None:
        for i, layer in enumerate(self._layers):
            layer.reset_states(None if states is None else (states[i] if self._stacked else states))

    def build(self, input_shape: Shape) -> None:
        shape = input_shape
        for layer in self._layers:
            layer._maybe_build(shape)
            out = layer.compute_output_shape(shape)
            shape = out if not isinstance(out, list) else out[0]
        # The cells' weights are this layer's (the same objects), in Keras's order: cell by cell.
        self._weights = [w for layer in self._layers for w in layer._weights]

    def compute_output_shape(self, input_shape: Shape) -> Any:
        shape: Any = tuple(input_shape)
        for layer in self._layers:
            out = layer.compute_output_shape(shape)
            shape = out[0] if isinstance(out, list) else out
        return shape

    def symbolic_output(self, inputs: Any, **kwargs: Any) -> Any:
        seq = super().symbolic_output(inputs)
        if not self.return_state:
            return seq
        states = [(inputs.shape[0], layer.units) for layer in self._layers for _ in range(layer._n_states)]
        return [seq, *states]

    def output_mask(self, in_mask: Any, x: Any, ctx: Any) -> Any:
        keep = in_mask if self.return_sequences else None
        n = sum(layer._n_states for layer in self._layers)
        return [keep, *([None] * n)] if self.return_state else keep

    def _split_initial(self, initial_state: Any) -> list[Any]:
        if initial_state is None:
            return [None] * len(self._layers)
        if not self._stacked:
            return [initial_state]
        states = list(initial_state)
        if len(states) == len(self._layers) and all(isinstance(s, (list, tuple)) for s in states):
            return states  # Keras's nesting: one list per cell
        out, i = [], 0
        for layer in self._layers:  # or flat, in cell order
            out.append(states[i : i + layer._n_states])
            i += layer._n_states
        if i != len(states):
            raise ValueError(
                f"RNN {self.name!r}: initial_state has {len(states)} arrays; the stacked cells take "
                f"{sum(lyr._n_states for lyr in self._layers)} ({[lyr._n_states for lyr in self._layers]} per cell)."
            )
        return out

    def forward(self, x: Any, training: bool = False, initial_state: Any = None, lengths: Any = None) -> Any:
        inits = self._split_initial(initial_state)
        h, ctxs, states = x, [], []
        later = lengths
        if self.go_backwards and lengths is not None and len(self._layers) > 1:
            # The first cell runs backwards and outputs in processing order; the cells after it run
            # forwards over that, so their mask is the input's reversed in time (as Keras's stacked
            # cells, which all see step t of the reversed input together).
            x3 = np.asarray(x)
            steps = _masks.to_bool(
                _masks.normalize(lengths, x3.shape[0], x3.shape[1], f"RNN {self.name!r}"), x3.shape[1]
            )
            later = _masks.from_bool(steps[:, ::-1], f"RNN {self.name!r}")
        for i, (layer, init) in enumerate(zip(self._layers, inits, strict=True)):
            out, ctx = layer.forward(h, training=training, initial_state=init, lengths=lengths if i == 0 else later)
            if self.return_state:
                h, *st = out
                states.append(st)
            else:
                h = out
            ctxs.append(ctx)
        call = _RNNCallContext(ctxs, self._stacked) if training else None
        if not self.return_state:
            return h, call
        flat = [s for st in states for s in st]
        return ([h, *states] if self._stacked else [h, *flat]), call

    def backward(self, ctx: Any, dy: Any, need_dx: bool = True) -> Any:
        if ctx is None:
            raise RuntimeError(f"RNN {self.name!r}: backward without a training forward.")
        if self.return_state:
            d_out, *d_states = dy
            if self._stacked:
                per = [list(d) if isinstance(d, (list, tuple)) else [d] for d in d_states]
            else:
                per = [list(d_states)]
        else:
            d_out, per = dy, [[] for _ in self._layers]
        g = d_out
        per = list(per)
        for i in range(len(self._layers) - 1, -1, -1):
            layer, c = self._layers[i], ctx.calls[i]
            dys = [g, *per[i]] if self.return_state else g
            g = layer.backward(c, dys, need_dx=need_dx or i > 0)
        return g

    def get_config(self) -> dict[str, Any]:
        from . import serialize

        return {
            **super().get_config(),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
            "cell": serialize(self.cell),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RNN:
        from . import deserialize

        cfg = dict(config)
        return cls(deserialize(cfg.pop("cell")), **cfg)


class _RNNCallContext:
    """An RNN call's record: each fused layer's context; the initial states' gradients (when the
    call had an initial_state) in the structure the call took them."""

    __slots__ = ("calls", "stacked")

    def __init__(self, calls: list[Any], stacked: bool):
        self.calls = calls
        self.stacked = stacked

    @property
    def kwarg_grads(self) -> dict[str, Any] | None:
        per = [getattr(c, "kwarg_grads", None) for c in self.calls]
        if all(p is None for p in per):
            return None
        grads = [None if p is None else p["initial_state"] for p in per]
        return {"initial_state": grads if self.stacked else grads[0]}
