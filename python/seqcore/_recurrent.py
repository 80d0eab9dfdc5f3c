"""Recurrent ops (LSTM, GRU): validation and the forward/backward tape. Re-exported by ``seqcore.kernels``.

Weight layouts are Keras's: LSTM ``kernel (F, 4H)``, ``recurrent_kernel (H, 4H)``, ``bias (4H,)``
with gate blocks i, f, c, o. Outputs are every step's ``h`` in processing order (for
``go_backwards=True`` that is reversed time, as Keras returns it). Masking, as Keras's ``Masking``
and ``mask_zero``: ``lengths (batch,)`` gives each sample's valid length (post-padded batches), or
``mask (batch, time)`` any boolean mask (pre-padded, post-padded, gaps in the middle). A masked step
leaves the state unchanged and outputs the previous step's output (zeros before the sample's first
valid step). ``continued (batch,)`` marks samples whose sequence already had a valid step in an
earlier call (a window or chunk of a longer sequence): they output their carried state from the
first step instead of Keras's leading zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from . import _seqcore
from ._validation import ACTIVATION_ALIASES, ALL_ACTIVATIONS, as_f32

CELL_ACTIVATIONS = ("linear", "relu", "sigmoid", "hard_sigmoid", "tanh")


def _cell_activation(name: Any, op: str, arg: str) -> str:
    if name is None:
        return "linear"
    if not isinstance(name, str):
        raise TypeError(f"{op}: {arg} must be a name, one of {list(CELL_ACTIVATIONS)}; received {name!r}.")
    if name not in CELL_ACTIVATIONS:
        what = "unknown" if ACTIVATION_ALIASES.get(name, name) not in ALL_ACTIVATIONS else "unsupported"
        raise ValueError(
            f"{op}: {what} {arg} {name!r}; a recurrent cell fuses its activations and supports "
            f"{list(CELL_ACTIVATIONS)}."
        )
    return name


def _sequence_input(x: Any, op: str) -> np.ndarray:
    xa = as_f32(x, op, "x")
    if xa.ndim != 3:
        hint = ""
        if xa.ndim == 2:
            hint = (
                " A 2-D input is one vector per sample: if it comes from a recurrent layer, set "
                "return_sequences=True there; for a single sequence, add a batch axis (x[None])."
            )
        raise ValueError(f"{op}: x must be 3-D (batch, time, features); received shape {xa.shape}.{hint}")
    return xa


def _weights(
    xa: np.ndarray, kernel: Any, recurrent_kernel: Any, gates: int, op: str
) -> tuple[np.ndarray, np.ndarray, int]:
    k = as_f32(kernel, op, "kernel")
    f = xa.shape[2]
    if k.ndim != 2 or k.shape[0] != f or k.shape[1] % gates != 0:
        raise ValueError(
            f"{op}: kernel must have shape ({f}, {gates}*units) for x of shape {xa.shape}; "
            f"received {k.shape}. (Keras layout: input features first, gate blocks side by side.)"
        )
    h = k.shape[1] // gates
    rk = as_f32(recurrent_kernel, op, "recurrent_kernel")
    if rk.shape != (h, gates * h):
        raise ValueError(
            f"{op}: recurrent_kernel must have shape ({h}, {gates * h}) for kernel {k.shape}; received {rk.shape}."
        )
    return k, rk, h


def _state(a: Any, b: int, h: int, op: str, name: str) -> np.ndarray | None:
    if a is None:
        return None
    s = as_f32(a, op, name)
    if s.shape != (b, h):
        raise ValueError(f"{op}: {name} must have shape ({b}, {h}) (batch, units); received {s.shape}.")
    return s


def _lengths(lengths: Any, b: int, t: int, op: str) -> np.ndarray | None:
    if lengths is None:
        return None
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{op}: lengths must be integers (one per sample); received dtype {arr.dtype}.")
    if arr.shape != (b,):
        raise ValueError(f"{op}: lengths must have shape ({b},) (one per sample); received {arr.shape}.")
    if b and (arr.min() < 0 or arr.max() > t):
        bad = int(arr.min()) if arr.min() < 0 else int(arr.max())
        raise ValueError(f"{op}: lengths must lie in [0, {t}] (the number of time steps); received {bad}.")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _step_mask(lengths: Any, mask: Any, b: int, t: int, op: str) -> np.ndarray | None:
    """The kernels' mask argument: int64 lengths ``(B,)``, or a C-contiguous bool ``(B, T)``."""
    if mask is None:
        return _lengths(lengths, b, t, op)
    if lengths is not None:
        raise ValueError(f"{op}: pass lengths= or mask=, not both.")
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        if m.dtype.kind not in "iuf" or not np.isin(m, (0, 1)).all():
            raise TypeError(f"{op}: mask must be boolean (True = a valid step); received dtype {m.dtype}.")
        m = m.astype(bool)
    if m.shape != (b, t):
        raise ValueError(f"{op}: mask must have shape (batch, time) = ({b}, {t}); received {m.shape}.")
    return np.ascontiguousarray(m)


def _continued(continued: Any, b: int, op: str) -> np.ndarray | None:
    if continued is None:
        return None
    c = np.ascontiguousarray(continued, dtype=bool)
    if c.shape != (b,):
        raise ValueError(f"{op}: continued must have shape ({b},) (one flag per sample); received {c.shape}.")
    return c


def _initial_state(
    initial_state: Any, n: int, b: int, h: int, op: str, names: tuple[str, ...]
) -> list[np.ndarray | None]:
    if initial_state is None:
        return [None] * n
    if isinstance(initial_state, np.ndarray) and n == 1:
        initial_state = [initial_state]
    if not isinstance(initial_state, Sequence) or len(initial_state) != n:
        raise ValueError(
            f"{op}: initial_state must be a list of {n} arrays [{', '.join(names)}], each (batch, units); "
            f"received {type(initial_state).__name__}"
            + (f" of length {len(initial_state)}" if isinstance(initial_state, Sequence) else "")
            + "."
        )
    return [_state(s, b, h, op, f"initial_state[{i}] ({names[i]})") for i, s in enumerate(initial_state)]


def _gate_masks(masks: Any, gates: int, b: int, width: int, op: str, name: str, what: str) -> np.ndarray | None:
    """Per-gate dropout masks ``(gates, batch, width)``: one mask per gate, fixed over time, already
    scaled by ``1 / (1 - rate)`` (Keras's ``recurrent_dropout`` cell)."""
    if masks is None:
        return None
    m = as_f32(masks, op, name)
    if m.shape != (gates, b, width):
        raise ValueError(
            f"{op}: {name} must have shape ({gates}, {b}, {width}) (one (batch, {what}) mask per gate); "
            f"received {m.shape}."
        )
    return m


class RecurrentTape:
    """What a training forward keeps for its backward. Single use: backward consumes it (it
    overwrites the saved gates with their gradients instead of allocating new ones)."""

    __slots__ = ("cell", "args", "outputs", "saved", "consumed")

    def __init__(self, cell: str, args: dict[str, Any], outputs: np.ndarray, saved: tuple[Any, ...]):
        self.cell = cell
        self.args = args
        self.outputs = outputs
        self.saved = saved
        self.consumed = False

    def _take(self, cell: str, op: str) -> None:
        if self.cell != cell:
            raise ValueError(f"{op}: this tape comes from {self.cell}_forward, not {cell}_forward.")
        if self.consumed:
            raise ValueError(
                f"{op}: this tape was already used by a backward pass (it is consumed to save memory); "
                f"run the forward again."
            )
        self.consumed = True


class LSTMResult(NamedTuple):
    outputs: np.ndarray
    """(batch, time, units): h at every step, in processing order."""
    h: np.ndarray
    """(batch, units): final hidden state."""
    c: np.ndarray
    """(batch, units): final cell state."""
    tape: RecurrentTape | None
    """For :func:`lstm_backward`; None when ``training=False``."""


class LSTMGrads(NamedTuple):
    dx: np.ndarray | None
    dkernel: np.ndarray
    drecurrent_kernel: np.ndarray
    dbias: np.ndarray | None
    dh0: np.ndarray
    dc0: np.ndarray


def lstm_forward(
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any | None = None,
    *,
    initial_state: Sequence[Any] | None = None,
    lengths: Any | None = None,
    mask: Any | None = None,
    continued: Any | None = None,
    activation: str | None = "tanh",
    recurrent_activation: str | None = "sigmoid",
    go_backwards: bool = False,
    training: bool = True,
    input_masks: Any | None = None,
    recurrent_masks: Any | None = None,
) -> LSTMResult:
    """Keras-exact LSTM over ``x (batch, time, features)``.

        ``initial_state=[h0, c0]`` (each ``(batch, units)``, zeros if omitted); ``lengths (batch,)``
        per-sample valid lengths or ``mask (batch, time)`` any boolean mask, and ``continued`` (see
    the module doc). With ``training=True`` the result carries a tape for
        :func:`lstm_backward`; ``training=False`` saves nothing (inference).

        ``input_masks (4, batch, features)`` and ``recurrent_masks (4, batch, units)``: Keras's per-gate
        dropout masks (gate order i, f, c, o), as its cell uses them with ``recurrent_dropout``: gate g
        multiplies ``x_t * input_masks[g]`` and ``h_{t-1} * recurrent_masks[g]``, at every step.
    """
    op = "lstm_forward"
    xa = _sequence_input(x, op)
    b, t, _ = xa.shape
    k, rk, h = _weights(xa, kernel, recurrent_kernel, 4, op)
    bias_a = None
    if bias is not None:
        bias_a = as_f32(bias, op, "bias")
        if bias_a.shape != (4 * h,):
            raise ValueError(f"{op}: bias must have shape ({4 * h},) (4*units); received {bias_a.shape}.")
    h0, c0 = _initial_state(initial_state, 2, b, h, op, ("h", "c"))
    lens = _step_mask(lengths, mask, b, t, op)
    cont = _continued(continued, b, op)
    act = _cell_activation(activation, op, "activation")
    rec = _cell_activation(recurrent_activation, op, "recurrent_activation")
    mi = _gate_masks(input_masks, 4, b, xa.shape[2], op, "input_masks", "features")
    mr = _gate_masks(recurrent_masks, 4, b, h, op, "recurrent_masks", "units")
    out, hl, cl, gates, cells = _seqcore.lstm_forward(
        xa, k, rk, bias_a, h0, c0, lens, act, rec, bool(go_backwards), bool(training), mi, mr, cont
    )
    tape = None
    if training:
        args = dict(
            x=xa, kernel=k, recurrent_kernel=rk, has_bias=bias_a is not None, h0=h0, c0=c0,
            mask=lens, continued=cont, activation=act, recurrent_activation=rec, go_backwards=bool(go_backwards),
            input_masks=mi, recurrent_masks=mr,
        )  # fmt: skip
        tape = RecurrentTape("lstm", args, out, (gates, cells))
    return LSTMResult(out, hl, cl, tape)


def _upstream(a: Any, shape: tuple[int, ...], op: str, name: str) -> np.ndarray | None:
    if a is None:
        return None
    g = as_f32(a, op, name)
    if g.shape != shape:
        raise ValueError(f"{op}: {name} must have shape {shape} (no broadcasting); received {g.shape}.")
    return g


def lstm_backward(
    tape: RecurrentTape,
    d_outputs: Any | None = None,
    d_h: Any | None = None,
    d_c: Any | None = None,
    *,
    need_dx: bool = True,
) -> LSTMGrads:
    """Gradients of an :func:`lstm_forward` given the loss gradients by its outputs
    (``(batch, time, units)``) and/or its final states (``(batch, units)``); any may be None (zero)."""
    op = "lstm_backward"
    if not isinstance(tape, RecurrentTape):
        raise TypeError(f"{op}: tape must be the .tape of an lstm_forward(..., training=True) result.")
    tape._take("lstm", op)
    a = tape.args
    b, t, _ = a["x"].shape
    h = a["recurrent_kernel"].shape[0]
    d_out = _upstream(d_outputs, (b, t, h), op, "d_outputs")
    dh = _upstream(d_h, (b, h), op, "d_h")
    dc = _upstream(d_c, (b, h), op, "d_c")
    gates, cells = tape.saved
    res = _seqcore.lstm_backward(
        a["x"], a["kernel"], a["recurrent_kernel"], a["has_bias"], a["h0"], a["c0"], a["mask"],
        a["activation"], a["recurrent_activation"], a["go_backwards"], tape.outputs, gates, cells,
        d_out, dh, dc, bool(need_dx), a["input_masks"], a["recurrent_masks"], a["continued"],
    )  # fmt: skip
    tape.saved = ()
    return LSTMGrads(*res)


class GRUResult(NamedTuple):
    outputs: np.ndarray
    """(batch, time, units): h at every step, in processing order."""
    h: np.ndarray
    """(batch, units): final state."""
    tape: RecurrentTape | None
    """For :func:`gru_backward`; None when ``training=False``."""


class GRUGrads(NamedTuple):
    dx: np.ndarray | None
    dkernel: np.ndarray
    drecurrent_kernel: np.ndarray
    dbias: np.ndarray | None
    """Same shape as the bias: (2, 3*units) with reset_after=True, else (3*units,)."""
    dh0: np.ndarray


def gru_forward(
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any | None = None,
    *,
    initial_state: Any | None = None,
    lengths: Any | None = None,
    mask: Any | None = None,
    continued: Any | None = None,
    activation: str | None = "tanh",
    recurrent_activation: str | None = "sigmoid",
    go_backwards: bool = False,
    reset_after: bool = True,
    training: bool = True,
    input_masks: Any | None = None,
    recurrent_masks: Any | None = None,
) -> GRUResult:
    """Keras-exact GRU over ``x (batch, time, features)``; gate blocks z, r, h.

    ``bias`` is ``(2, 3*units)`` (input row, recurrent row) with ``reset_after=True`` (the Keras
    default, the same cell as PyTorch's and cuDNN's) and ``(3*units,)`` with ``reset_after=False``.
    ``initial_state=[h0]`` or ``h0`` (``(batch, units)``). Other arguments as :func:`lstm_forward`;
    the dropout masks are ``(3, batch, features)`` and ``(3, batch, units)`` (gates z, r, h). The
    state update ``z * h_{t-1} + (1 - z) * hh`` uses the unmasked state, as Keras's cell does.
    """
    op = "gru_forward"
    xa = _sequence_input(x, op)
    b, t, _ = xa.shape
    k, rk, h = _weights(xa, kernel, recurrent_kernel, 3, op)
    bias_a = None
    if bias is not None:
        bias_a = as_f32(bias, op, "bias")
        want = (2, 3 * h) if reset_after else (3 * h,)
        if bias_a.shape != want:
            hint = (
                " With reset_after=True the bias has two rows (input bias, recurrent bias)."
                if reset_after
                else " With reset_after=False there is only the input bias."
            )
            raise ValueError(f"{op}: bias must have shape {want}; received {bias_a.shape}.{hint}")
    (h0,) = _initial_state(initial_state, 1, b, h, op, ("h",))
    lens = _step_mask(lengths, mask, b, t, op)
    cont = _continued(continued, b, op)
    act = _cell_activation(activation, op, "activation")
    rec = _cell_activation(recurrent_activation, op, "recurrent_activation")
    mi = _gate_masks(input_masks, 3, b, xa.shape[2], op, "input_masks", "features")
    mr = _gate_masks(recurrent_masks, 3, b, h, op, "recurrent_masks", "units")
    out, hl, gates, extra = _seqcore.gru_forward(
        xa, k, rk, bias_a, h0, lens, act, rec, bool(go_backwards), bool(reset_after), bool(training), mi, mr, cont
    )
    tape = None
    if training:
        args = dict(
            x=xa, kernel=k, recurrent_kernel=rk, has_bias=bias_a is not None, h0=h0, mask=lens, continued=cont,
            activation=act, recurrent_activation=rec, go_backwards=bool(go_backwards),
            reset_after=bool(reset_after), input_masks=mi, recurrent_masks=mr,
        )  # fmt: skip
        tape = RecurrentTape("gru", args, out, (gates, extra))
    return GRUResult(out, hl, tape)


def gru_backward(
    tape: RecurrentTape,
    d_outputs: Any | None = None,
    d_h: Any | None = None,
    *,
    need_dx: bool = True,
) -> GRUGrads:
    """Gradients of a :func:`gru_forward` given the loss gradients by its outputs and/or final state."""
    op = "gru_backward"
    if not isinstance(tape, RecurrentTape):
        raise TypeError(f"{op}: tape must be the .tape of a gru_forward(..., training=True) result.")
    tape._take("gru", op)
    a = tape.args
    b, t, _ = a["x"].shape
    h = a["recurrent_kernel"].shape[0]
    d_out = _upstream(d_outputs, (b, t, h), op, "d_outputs")
    dh = _upstream(d_h, (b, h), op, "d_h")
    gates, extra = tape.saved
    res = _seqcore.gru_backward(
        a["x"], a["kernel"], a["recurrent_kernel"], a["has_bias"], a["h0"], a["mask"],
        a["activation"], a["recurrent_activation"], a["go_backwards"], a["reset_after"],
        tape.outputs, gates, extra, d_out, dh, bool(need_dx), a["input_masks"], a["recurrent_masks"], a["continued"],
    )  # fmt: skip
    tape.saved = ()
    return GRUGrads(*res)


class SimpleRNNResult(NamedTuple):
    outputs: np.ndarray
    """(batch, time, units): h at every step, in processing order."""
    h: np.ndarray
    """(batch, units): final state."""
    tape: RecurrentTape | None
    """For :func:`simple_rnn_backward`; None when ``training=False``."""


class SimpleRNNGrads(NamedTuple):
    dx: np.ndarray | None
    dkernel: np.ndarray
    drecurrent_kernel: np.ndarray
    dbias: np.ndarray | None
    dh0: np.ndarray


def simple_rnn_forward(
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any | None = None,
    *,
    initial_state: Any | None = None,
    lengths: Any | None = None,
    mask: Any | None = None,
    continued: Any | None = None,
    activation: str | None = "tanh",
    go_backwards: bool = False,
    training: bool = True,
    input_masks: Any | None = None,
    recurrent_masks: Any | None = None,
) -> SimpleRNNResult:
    """Keras-exact SimpleRNN over ``x (batch, time, features)``: ``h_t = activation(x_t·kernel +
    bias + h_{t-1}·recurrent_kernel)``; ``kernel (F, units)``, ``recurrent_kernel (units, units)``,
    ``bias (units,)``. ``initial_state=[h0]`` or ``h0``; ``lengths``, ``go_backwards`` and
    ``training`` as :func:`lstm_forward`; ``input_masks (1, batch, features)`` and
    ``recurrent_masks (1, batch, units)``: Keras's dropout masks of its cell (fixed over time)."""
    op = "simple_rnn_forward"
    xa = _sequence_input(x, op)
    b, t, _ = xa.shape
    k, rk, h = _weights(xa, kernel, recurrent_kernel, 1, op)
    bias_a = None
    if bias is not None:
        bias_a = as_f32(bias, op, "bias")
        if bias_a.shape != (h,):
            raise ValueError(f"{op}: bias must have shape ({h},) (units); received {bias_a.shape}.")
    (h0,) = _initial_state(initial_state, 1, b, h, op, ("h",))
    lens = _step_mask(lengths, mask, b, t, op)
    cont = _continued(continued, b, op)
    act = _cell_activation(activation, op, "activation")
    mi = _gate_masks(input_masks, 1, b, xa.shape[2], op, "input_masks", "features")
    mr = _gate_masks(recurrent_masks, 1, b, h, op, "recurrent_masks", "units")
    out, hl, states = _seqcore.simple_rnn_forward(
        xa, k, rk, bias_a, h0, lens, act, bool(go_backwards), bool(training), mi, mr, cont
    )
    tape = None
    if training:
        args = dict(
            x=xa, kernel=k, recurrent_kernel=rk, has_bias=bias_a is not None, h0=h0, mask=lens, continued=cont,
            activation=act, go_backwards=bool(go_backwards), input_masks=mi, recurrent_masks=mr,
        )  # fmt: skip
        tape = RecurrentTape("simple_rnn", args, out, (states,))
    return SimpleRNNResult(out, hl, tape)


def simple_rnn_backward(
    tape: RecurrentTape,
    d_outputs: Any | None = None,
    d_h: Any | None = None,
    *,
    need_dx: bool = True,
) -> SimpleRNNGrads:
    """Gradients of a :func:`simple_rnn_forward` given the loss gradients by its outputs and/or its
    final state."""
    op = "simple_rnn_backward"
    if not isinstance(tape, RecurrentTape):
        raise TypeError(f"{op}: tape must be the .tape of a simple_rnn_forward(..., training=True) result.")
    tape._take("simple_rnn", op)
    a = tape.args
    b, t, _ = a["x"].shape
    h = a["recurrent_kernel"].shape[0]
    d_out = _upstream(d_outputs, (b, t, h), op, "d_outputs")
    dh = _upstream(d_h, (b, h), op, "d_h")
    (states,) = tape.saved
    res = _seqcore.simple_rnn_backward(
        a["x"], a["kernel"], a["recurrent_kernel"], a["has_bias"], a["h0"], a["mask"], a["activation"],
        a["go_backwards"], tape.outputs, states, d_out, dh, bool(need_dx), a["input_masks"], a["recurrent_masks"],
        a["continued"],
    )  # fmt: skip
    tape.saved = ()
    return SimpleRNNGrads(*res)
