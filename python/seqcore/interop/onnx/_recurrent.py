"""Converters of the recurrent layers: LSTM, GRU, SimpleRNN, ``RNN(cell)`` (stacked cells included)
and Bidirectional, as ONNX's ``LSTM`` / ``GRU`` / ``RNN`` ops on time-major input.

* Weights: Keras's LSTM gates i, f, c, o become ONNX's i, o, f, c; GRU's z, r, h are the same in
  both, and ``reset_after=True`` is ``linear_before_reset=1`` with the two biases apart.
* ``go_backwards`` is ``direction="reverse"``, whose outputs ONNX gives in time order; Keras returns
  them in processing order, so they are flipped. Stacked cells after a backwards first cell read the
  sequence in processing order: the same as running them in reverse over time-ordered outputs.
* Masks (per-sample lengths, see the package docs) are ONNX's ``sequence_lens``: every step at or after
  a sample's length is skipped and its states stop there. ONNX zero-fills the skipped outputs; seqcore
  (as Keras) repeats the last valid output there when returning sequences forwards, so the graph does
  that with a Where; backwards, and with ``zero_output_for_mask`` (Bidirectional sets it), the zeros
  are seqcore's too. The last output of a sample with no valid step is 0 and its states stay the
  initial ones, as in seqcore (ONNX would give 0 states).
* Stateful layers: the carried states are graph inputs ``<name>/h_in`` (and ``<name>/c_in`` for an
  LSTM) and outputs ``<name>/h_out`` (``<name>/c_out``), ``<name>`` the layer's name
  (``<bidirectional>/forward`` and ``/backward`` in a Bidirectional, ``<rnn>/cell<i>`` for the i-th of
  stacked cells). Feed zeros first (a fresh or reset layer), then each call's outputs back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import layers as L
from ...layers.recurrent import _RNN
from ._base import Builder, Call, Value, arr, refuse, register

# ONNX's recurrent ops take their activations by name, with alpha/beta where the function has them.
_ACTIVATIONS: dict[str, tuple[str, list[float], list[float]]] = {
    "tanh": ("Tanh", [], []), "sigmoid": ("Sigmoid", [], []), "relu": ("Relu", [], []),
    "hard_sigmoid": ("HardSigmoid", [1.0 / 6.0], [0.5]), "linear": ("Affine", [1.0], [0.0]),
    "softsign": ("Softsign", [], []), "softplus": ("Softplus", [], []), "elu": ("Elu", [1.0], []),
    "leaky_relu": ("LeakyRelu", [0.2], []),
}  # fmt: skip


def _activation_attrs(layer: Any, names: list[str]) -> dict[str, Any]:
    acts: list[str] = []
    alphas: list[float] = []
    betas: list[float] = []
    for n in names:
        if n not in _ACTIVATIONS:
            raise refuse(layer, f"the recurrent op has no activation {n!r} in ONNX.")
        a, al, be = _ACTIVATIONS[n]
        acts.append(a)
        alphas += al
        betas += be
    attrs: dict[str, Any] = {"activations": acts}
    if alphas:
        attrs["activation_alpha"] = alphas
    if betas:
        attrs["activation_beta"] = betas
    return attrs


def _kind(layer: Any) -> str:
    return {L.LSTM: "LSTM", L.GRU: "GRU", L.SimpleRNN: "RNN"}[type(layer)]


def _weights(layer: Any, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX's W (gates*H, F), R (gates*H, H) and B (2*gates*H,) for one direction."""
    k, r = arr(layer.kernel), arr(layer.recurrent_kernel)
    h = layer.units
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind]
    if kind == "LSTM":  # Keras i, f, c, o -> ONNX i, o, f, c
        order = [0, 3, 1, 2]
        k = np.concatenate([k[:, j * h : (j + 1) * h] for j in order], axis=1)
        r = np.concatenate([r[:, j * h : (j + 1) * h] for j in order], axis=1)
    wb = np.zeros(gates * h, np.float32)
    rb = np.zeros(gates * h, np.float32)
    if layer.use_bias:
        b = arr(layer.bias)
        if kind == "GRU" and layer.reset_after:
            wb, rb = b[0], b[1]
        elif kind == "LSTM":
            wb = np.concatenate([b[j * h : (j + 1) * h] for j in [0, 3, 1, 2]])
        else:
            wb = b.reshape(-1)
    return k.T.copy(), r.T.copy(), np.concatenate([wb, rb])


def _direction(g: Builder, layer: _RNN, x_tm: str, init: list[str], reverse: bool, lens: Any, state_name: str,
               hint: str) -> tuple[str, list[str]]:  # fmt: skip
    """One fused recurrent layer over time-major ``x_tm`` (T, B, F): (Y in time order (T, B, H),
    final states). ``lens``: int32 lengths or None; ``state_name``: the prefix of a stateful layer's
    graph inputs and outputs."""
    kind = _kind(layer)
    n_states = 2 if kind == "LSTM" else 1
    suffixes = ["h", "c"][:n_states]
    if init and len(init) != n_states:
        raise refuse(layer, f"expected {n_states} initial state tensor(s); received {len(init)}.")
    if layer.stateful:
        if id(layer) in g.stateful_calls:
            raise refuse(
                layer,
                "a stateful layer called twice in one graph would carry one state through both "
                "calls; ONNX state inputs and outputs name one state per layer. Use two layers.",
            )
        g.stateful_calls[id(layer)] = state_name
        if not init:  # as seqcore: an explicit initial_state wins over the carried one
            init = [g.state_input(f"{state_name}/{s}_in", layer.units) for s in suffixes]
    W, R, B = _weights(layer, kind)
    ins = [x_tm, g.const(W[None], f"{layer.name}/W"), g.const(R[None], f"{layer.name}/R"),
           g.const(B[None], f"{layer.name}/B"), lens if lens is not None else ""]  # fmt: skip
    ins += [g.unsqueeze(s, [0], hint) for s in init]
    acts = [layer.recurrent_activation, layer.activation] if kind != "RNN" else [layer.activation]
    if kind == "LSTM":
        acts.append(layer.activation)
    attrs = _activation_attrs(layer, acts)
    attrs.update(hidden_size=int(layer.units), direction="reverse" if reverse else "forward")
    if kind == "GRU":
        attrs["linear_before_reset"] = int(bool(getattr(layer, "reset_after", False)))
    outs = g.op(kind, ins, hint, n_out=1 + n_states, **attrs)
    y: str = g.squeeze(outs[0], [1], hint)  # (T, 1, B, H) -> (T, B, H)
    states: list[str] = [g.squeeze(s, [0], hint) for s in outs[1:]]
    if lens is not None and init:  # a sample with no valid step keeps its initial states (ONNX: zeros)
        any_step = g.unsqueeze(g.op("Greater", [lens, g.const(0, "zero_i", np.int32)], hint), [1], hint)
        states = [g.op("Where", [any_step, s, s0], hint) for s, s0 in zip(states, init, strict=True)]
    if layer.stateful:
        for s, v in zip(suffixes, states, strict=True):
            g.state_output(f"{state_name}/{s}_out", v)
    return y, states


def _any_step(g: Builder, lens: str, hint: str) -> str:
    """Float (B, 1): 1 where a sample has a valid step."""
    return g.unsqueeze(g.cast(g.op("Greater", [lens, g.const(0, "zero_i", np.int32)], hint), "float", hint), [1], hint)


def _sequence(g: Builder, y: str, last: str, lens: Any, reverse: bool, zero_output: bool, hint: str) -> str:
    """Keras's returned sequence (B, T, H), in processing order, from ONNX's time-ordered ``y``."""
    if reverse:
        y = g.flip(y, 0, hint)  # ONNX's zeros after each length become seqcore's leading zeros
    elif lens is not None and not zero_output:
        # seqcore repeats the last valid output over the padding (0 for a sample with none)
        valid = g.unsqueeze(g.transpose(g.steps_below(y, 0, lens, hint), [1, 0], hint), [2], hint)  # (T, B, 1)
        y = g.op("Where", [valid, y, g.op("Mul", [last, _any_step(g, lens, hint)], hint)], hint)
    return g.transpose(y, [1, 0, 2], hint)


def _last(g: Builder, h: str, lens: Any, hint: str) -> str:
    """The last output: the final h, 0 for a sample with no valid step."""
    return h if lens is None else g.op("Mul", [h, _any_step(g, lens, hint)], hint)


def _initial(call: Call) -> list[str]:
    init = call.kwargs.get("initial_state")
    if init is None:
        return []
    if isinstance(init, Value):
        return [init]
    if not all(isinstance(v, Value) for v in init):
        raise refuse(call.layer, "initial_state must be graph tensors (seqcore.Input or layer outputs); constant "
                                 "arrays are not exported. Make them an Input of the model.")  # fmt: skip
    return list(init)


def _mask(call: Call) -> Any:
    return call.mask if isinstance(call.mask, str) else None


@register(L.LSTM, L.GRU, L.SimpleRNN, kwargs=("initial_state", "mask"))
def _recurrent(g: Builder, c: Call) -> list[str]:
    layer, hint, lens = c.layer, c.hint, _mask(c)
    x_tm = g.transpose(c.x, [1, 0, 2], hint)
    reverse = bool(layer.go_backwards)
    y, states = _direction(g, layer, x_tm, _initial(c), reverse, lens, layer.name, hint)
    if layer.return_sequences:
        out = _sequence(g, y, states[0], lens, reverse, bool(layer.zero_output_for_mask), hint)
    else:
        out = _last(g, states[0], lens, hint)
    c.out_masks = [lens if layer.return_sequences else None] + [None] * (len(states) if layer.return_state else 0)
    return [out, *states] if layer.return_state else [out]


@register(L.RNN, kwargs=("initial_state", "mask"))
def _rnn(g: Builder, c: Call) -> list[str]:
    """``RNN(cell)``: one fused layer per cell, each reading the previous one's whole sequence."""
    layer, hint, lens = c.layer, c.hint, _mask(c)
    stack = layer._layers
    init = _initial(c)
    per_cell: list[list[str]] = [[] for _ in stack]
    if init:
        counts = [sub._n_states for sub in stack]
        if len(init) != sum(counts):
            raise refuse(layer, f"initial_state has {len(init)} tensors; the cells take {sum(counts)} ({counts}).")
        i = 0
        for k, n in enumerate(counts):
            per_cell[k] = init[i : i + n]
            i += n
    reverse = bool(layer.go_backwards)
    y: str = g.transpose(c.x, [1, 0, 2], hint)
    finals: list[str] = []
    last_states: list[str] = []
    for k, sub in enumerate(stack):
        name = f"{layer.name}/cell{k}" if layer._stacked else layer.name
        y, last_states = _direction(g, sub, y, per_cell[k], reverse, lens, name, f"{hint}/cell{k}")
        finals += last_states
    top = stack[-1]
    if layer.return_sequences:
        out = _sequence(g, y, last_states[0], lens, reverse, bool(top.zero_output_for_mask), hint)
    else:
        out = _last(g, last_states[0], lens, hint)
    c.out_masks = [lens if layer.return_sequences else None] + [None] * (len(finals) if layer.return_state else 0)
    return [out, *finals] if layer.return_state else [out]


@register(L.Bidirectional, kwargs=("initial_state", "mask"))
def _bidirectional(g: Builder, c: Call) -> list[str]:
    layer, hint, lens = c.layer, c.hint, _mask(c)
    fwd, bwd = layer.forward_layer, layer.backward_layer
    x_tm = g.transpose(c.x, [1, 0, 2], hint)
    init = _initial(c)
    of: str
    ob: str
    half = len(init) // 2
    yf, sf = _direction(g, fwd, x_tm, init[:half], bool(fwd.go_backwards), lens, f"{layer.name}/forward",
                        f"{hint}/forward")  # fmt: skip
    yb, sb = _direction(g, bwd, x_tm, init[half:], bool(bwd.go_backwards), lens, f"{layer.name}/backward",
                        f"{hint}/backward")  # fmt: skip
    if layer.return_sequences:
        # each direction's sequence in its processing order, then the backward one flipped back in time
        of = _sequence(g, yf, sf[0], lens, bool(fwd.go_backwards), bool(fwd.zero_output_for_mask), hint)
        ob = g.flip(_sequence(g, yb, sb[0], lens, bool(bwd.go_backwards), bool(bwd.zero_output_for_mask), hint), 1,
                    hint)  # fmt: skip
    else:
        of, ob = _last(g, sf[0], lens, hint), _last(g, sb[0], lens, hint)
    mode = layer.merge_mode
    if mode is None:
        outs = [of, ob]
    elif mode == "concat":
        outs = [g.op("Concat", [of, ob], hint, axis=-1)]
    elif mode == "sum":
        outs = [g.op("Add", [of, ob], hint)]
    elif mode == "mul":
        outs = [g.op("Mul", [of, ob], hint)]
    else:  # ave
        outs = [g.op("Mul", [g.op("Add", [of, ob], hint), g.const(0.5, "half")], hint)]
    states = sf + sb if fwd.return_state else []
    c.out_masks = [lens if layer.return_sequences else None] * len(outs) + [None] * len(states)
    return outs + states
