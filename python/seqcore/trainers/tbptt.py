"""Truncated backpropagation through time (``fit(tbptt_steps=k)``): which models it applies to
(chunking time must not change the forward computation) and one batch of it."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import _masks
from ..layers.base import Layer
from ..layers.convolutional import Conv1D, _GlobalPooling1D, _Pooling1D
from ..layers.core import Activation, Dense, Dropout, Flatten, InputLayer, Reshape
from ..layers.embedding import Embedding
from ..layers.normalization import BatchNormalization, LayerNormalization, RMSNormalization
from ..layers.recurrent import _RNN
from ..layers.rnn_cells import RNN
from ..layers.wrappers import Bidirectional, Masking, TimeDistributed


class TBPTTPlan(NamedTuple):
    steps: int
    rnns: list[_RNN]
    per_step: bool


def _contains(layer: Layer, cls: type) -> bool:
    """Whether ``layer`` is, or wraps (TimeDistributed, nested Sequential), a ``cls``."""
    if isinstance(layer, cls):
        return True
    if isinstance(layer, TimeDistributed):
        return _contains(layer.layer, cls)
    if hasattr(layer, "_chain_layers"):
        return any(_contains(sub, cls) for sub in layer._chain_layers())
    return False


def _mixes_time(layer: Layer) -> str:
    """Why running ``layer`` on chunks of the time axis would differ from running it on the whole
    sequence ("" when it acts on each step on its own)."""
    if isinstance(layer, (Dense, Activation, Dropout, Masking, InputLayer, TimeDistributed, Embedding)):
        return ""  # TimeDistributed maps each step on its own, whatever it wraps
    if hasattr(layer, "_chain_layers"):
        for sub in layer._chain_layers():
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
    if isinstance(layer, (LayerNormalization, RMSNormalization)):
        axes = sorted(a % 3 for a in layer._axis_arg)
        return "" if axes == [2] else f"normalizes over axes {layer._axis_arg}, which include the time axis"
    if isinstance(layer, BatchNormalization):
        return "computes its statistics over every time step of the batch, which no single chunk has"
    return "is not known to act on each time step on its own"


def plan(model: Any, tbptt_steps: Any, who: str) -> TBPTTPlan:
    """Checks that chunking the time axis leaves the forward computation unchanged; returns
    the recurrent layers that carry state and whether the targets are per step."""
    if isinstance(tbptt_steps, bool) or not isinstance(tbptt_steps, (int, np.integer)) or tbptt_steps < 1:
        raise ValueError(
            f"{who}: tbptt_steps must be an int >= 1 (the chunk length in time steps) or None. Received: "
            f"tbptt_steps={tbptt_steps!r}"
        )
    k = int(tbptt_steps)
    intro = f"{who}: tbptt_steps={k} cuts every sequence into chunks of {k} steps that run one after another"
    if len(model.output_names) != 1 or len(model._input_names()) != 1:
        raise ValueError(f"{who}: tbptt_steps needs a model with one input and one output.")
    nodes = getattr(model, "_nodes", None)
    if nodes is not None:  # a Functional graph: chunking is checked layer by layer, so it must be a chain
        used: dict[int, int] = {}
        for node in nodes:
            for t in node.inputs:
                used[id(t)] = used.get(id(t), 0) + 1
        branching = next((n for n in nodes if len(n.inputs) != 1 or len(n.outputs) != 1), None)
        if branching is not None or any(c > 1 for c in used.values()):
            where = f" (layer {branching.layer.name!r} takes or gives several tensors)" if branching else ""
            raise ValueError(
                f"{who}: tbptt_steps needs a chain of layers (each one feeding the next); this graph branches"
                f"{where}. Train it without tbptt_steps, or build the recurrent part as a Sequential."
            )
    # An RNN(cell) is its fused layers, one per cell, each carrying its own state.
    layers = [sub for layer in model._chain_layers() for sub in (layer._layers if isinstance(layer, RNN) else [layer])]
    rnns = [layer for layer in layers if isinstance(layer, _RNN)]
    rnn_at = [i for i, layer in enumerate(layers) if isinstance(layer, _RNN)]
    for i, layer in enumerate(layers):
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
    for i, layer in enumerate(layers):
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
    return TBPTTPlan(k, rnns, per_step)


def step(
    model: Any, xs: list[np.ndarray], ys: list[np.ndarray], sw: np.ndarray | None, plan: TBPTTPlan, who: str
) -> dict[str, Any]:
    """One batch of truncated BPTT (see ``fit``): returns the batch's logs like ``_train_step``."""
    x, y = xs[0], ys[0]
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
            return model._train_step([x], [y], sw)  # nothing to cut: exactly a plain training step
        if not plan.per_step:
            # The state-advancing chunks: inference forwards, so nothing is kept for backward.
            for a, b in bounds[:-1]:
                model._run([np.ascontiguousarray(x[:, a:b])], training=False)
            a, b = bounds[-1]
            return model._train_step([np.ascontiguousarray(x[:, a:b])], [y], sw)
        total, weight = 0.0, 0.0
        fallback = 0.0  # plain step counts, when no chunk has an unmasked step
        for a, b in bounds:
            swc = sw[:, a:b] if sw is not None and sw.ndim == 2 else sw
            logs = model._train_step([np.ascontiguousarray(x[:, a:b])], [np.ascontiguousarray(y[:, a:b])], swc)
            lengths = logs.get("_lengths")
            w = float(_masks.counts(lengths).sum()) if lengths is not None else float(b - a)
            total += logs["loss"] * w
            weight += w
            fallback += logs["loss"] * (b - a)
        return {"loss": total / weight if weight else fallback / t}
    finally:
        for layer in plan.rnns:
            layer._end_carry()
