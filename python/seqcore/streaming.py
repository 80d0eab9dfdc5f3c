"""Streaming inference: a stateful model called on one time step at a time, at the cost of the
step's own work.

Online forecasting calls ``model(x)`` (or ``predict_on_batch``) with ``x`` of shape
``(batch, 1, features)`` on a model whose recurrent layers are ``stateful=True``. Through the
general path each call validates the model, dispatches layer by layer, packs the weights for the
sequence kernels and allocates their outputs: about 150 µs for LSTM(128) + Dense(1), where the
arithmetic is a few microseconds. So the first such call builds a :class:`seqcore._seqcore.StreamPlan`
for the model (when every layer is one a step can run: stateful LSTM/GRU/SimpleRNN, Dense,
Activation, Dropout, InputLayer), and later calls with the same input shape, dtype float32 and
C-contiguous memory go straight to it: one Rust call, on the calling thread, into buffers the plan
keeps. The plan reads the layers' current weights and updates their ``states`` in place on every
call, so training, ``set_weights``, ``reset_states()`` and :meth:`Model.set_states` in between are
all seen; results are those of the general path (the same cell code, summed in the same order).

Anything else (another shape, ``training=True``, a mask, a layer the plan does not know) takes the
general path, unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _seqcore


class Stream:
    """A model's plan for one input shape."""

    __slots__ = ("plan", "shape")

    def __init__(self, plan: Any, shape: tuple[int, ...]):
        self.plan = plan
        self.shape = shape


def ops_for(layers: list[Any]) -> list[tuple[str, Any, int, str, str]] | None:
    """The plan's ops for a chain of layers, or None when some layer cannot run as a step."""
    from .layers.core import Activation, Dense, Dropout, InputLayer
    from .layers.recurrent import GRU, LSTM, SimpleRNN
    from .layers.regularization import _Noise

    ops: list[tuple[str, Any, int, str, str]] = []
    stateful = False
    for layer in layers:
        if isinstance(layer, (InputLayer, Dropout, _Noise)):
            continue  # identities at inference (the noise layers act in training only)
        if isinstance(layer, (LSTM, GRU, SimpleRNN)):
            if not layer.stateful or layer.return_state or not layer.built or type(layer) not in (LSTM, GRU, SimpleRNN):
                return None
            kind = "lstm" if isinstance(layer, LSTM) else "simple_rnn" if isinstance(layer, SimpleRNN) else "gru"
            if isinstance(layer, GRU) and not layer.reset_after:
                kind = "gru_before"
            ops.append((kind, layer, layer.units, layer.activation, layer.recurrent_activation))
            stateful = True
        elif type(layer) is Dense and layer.built:
            ops.append(("dense", layer, layer.units, layer.activation, "linear"))
        elif type(layer) is Activation:
            ops.append(("activation", layer, 0, layer.activation, "linear"))
        else:
            return None
    return ops if stateful else None


def build(layers: list[Any], x_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> Stream:
    """The plan for ``layers`` called on ``x_shape`` (``(batch, 1, features)``); its ``plan`` is None
    when the model cannot stream (so it is not checked again until the shape or the layers change)."""
    unsupported = Stream(None, tuple(x_shape))
    if len(x_shape) != 3 or x_shape[1] != 1:
        return unsupported
    ops = ops_for(layers)
    if ops is None:
        return unsupported
    try:
        plan = _seqcore.StreamPlan(ops, x_shape[0], x_shape[2], list(out_shape))
    except (ValueError, TypeError):
        return unsupported
    return Stream(plan, tuple(x_shape))


def chain_of(model: Any) -> list[Any] | None:
    """The layers of ``model`` when it is a plain chain, in call order: a ``Sequential``, or a
    Functional model with one input and one output whose every call takes the previous call's one
    output and nothing else (no other tensor argument, no keyword); else None."""
    nodes = getattr(model, "_nodes", None)
    if nodes is None:
        return list(model.layers)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return None
    prev = model.inputs[0]
    layers = []
    for node in nodes:
        if node.multi_output or node.kwargs or len(node.args) != 1 or node.args[0] is not prev:
            return None
        layers.append(node.layer)
        prev = node.outputs[0]
    return layers if prev is model.outputs[0] else None


def after_general_call(model: Any, x: Any, y: Any) -> None:
    """After a general-path inference call of ``model`` on ``x``: make its plan for ``x``'s shape
    when there is none yet (one check per shape)."""
    if type(x) is not np.ndarray or x.ndim != 3 or x.shape[1] != 1 or type(y) is not np.ndarray:
        return
    s = model._stream
    if s is None or s.shape != x.shape:
        layers = chain_of(model)
        model._stream = build(layers, x.shape, y.shape) if layers is not None else Stream(None, tuple(x.shape))


def fast_input(stream: Any, x: Any) -> bool:
    """Whether ``x`` can go to ``stream``'s plan as it is."""
    return (
        stream is not None
        and stream.plan is not None
        and type(x) is np.ndarray
        and x.shape == stream.shape
        and x.dtype == np.float32
        and x.flags.c_contiguous
    )
