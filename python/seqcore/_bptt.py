"""Backpropagation through time in windows, with the tape kept or checkpointed.

A recurrent layer's training forward over ``T > WINDOW`` steps runs as consecutive windows of
``WINDOW`` steps (in processing order), each one call of the fused Rust kernel started from the
state the previous window ended in, and backward runs the windows in reverse, carrying the state
gradients from one into the next and adding the windows' weight gradients last window first.

Two ways to have each window's tape when its backward runs:

* **kept** (``mode="full"``): every window's tape is kept from the forward (the memory of one
  whole-sequence tape, as before);
* **checkpointed** (``mode="checkpoint"``): the forward keeps only the recurrent state (``h``, and
  ``c`` for an LSTM) at window starts and runs without a tape; backward recomputes each window's
  tape from its state, just before the window's backward consumes it.

Both run the same kernel calls on the same inputs in the same order, so the gradients are
bit-identical between the two, for every option (masks/lengths, ``go_backwards``,
``initial_state``, dropout masks, which are fixed per sequence, and any thread count). That is
also why the kept tape is windowed: one call over the whole sequence sums the weight gradients in
a different order.

Memory and time, with ``W = WINDOW``, ``n = ceil(T / W)`` windows, ``s`` the bytes of one state
(``states · B · H · 4``) and ``w`` the bytes of one window's tape (``B · W · f · 4``, ``f`` the
floats a step keeps: ``6H`` LSTM, ``5H`` GRU, ``2H`` SimpleRNN):

* kept: ``n · w`` (the whole tape); time: one forward and one backward;
* checkpointed, one level: ``n · s + w``; time: two forwards and one backward (the second forward
  writes the tape, the first does not);
* checkpointed in ``L`` levels of fan-out ``k = ceil(n^(1/L))`` (chosen when ``n`` states would not
  fit the memory limit; the recursive schedule of Revolve, Griewank & Walther 2000, with equal
  splits): at most ``L · k · s + w``; time ``L + 1`` forwards and one backward. The smallest ``L``
  whose states fit is used, which is the fewest recomputations for the budget.

A returned sequence (``return_sequences=True``) is the caller's array and stays whole; a layer
returning only its last output keeps no sequence at all.

Masks (lengths, or a boolean mask of any pattern; ``seqcore._masks``): a window's mask is the
sequence mask over its steps. A sample that had a valid step in an earlier window is *continued*
in this one (the kernels' ``continued``): its masked steps before the window's first valid step
output the carried state, as over the whole sequence, where a fresh call would output Keras's
leading zeros; the kernel's backward then routes those outputs' gradients into the carried state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _masks

WINDOW = 512
"""Steps per window. Fixed (not chosen per budget), so a kept and a checkpointed tape cut the
sequence at the same steps and their gradients agree bit for bit."""


class Windowed:
    """The windowed tape: per window either its kernel tape (kept) or nothing, plus the states at
    the checkpoints. Single use, as the kernels' tapes."""

    __slots__ = (
        "driver",
        "mode",
        "x",
        "mask",
        "continued",
        "go_backwards",
        "init",
        "windows",
        "tapes",
        "states",
        "sizes",
        "consumed",
        "held",
        "peak_held",
    )

    def __init__(
        self,
        driver: Driver,
        mode: str,
        x: np.ndarray,
        mask: Any,
        continued: np.ndarray | None,
        go_backwards: bool,
        init: list[np.ndarray] | None,
        windows: list[tuple[int, int]],
        sizes: list[int],
    ):
        self.driver = driver
        self.mode = mode
        self.x = x
        self.mask = mask
        self.continued = continued
        self.go_backwards = go_backwards
        self.init = init
        self.windows = windows
        self.tapes: list[Any] = []
        self.states: dict[int, list[np.ndarray] | None] = {}
        self.sizes = sizes
        self.consumed = False
        self.held = 0  # states held right now, at every level of the schedule (and the most ever)
        self.peak_held = 0

    def _hold(self, n: int) -> None:
        self.held += n
        self.peak_held = max(self.peak_held, self.held)

    def nbytes(self) -> int:
        """Bytes the tape holds (kernel tapes and checkpointed states), for tests and reports."""
        n = 0
        for tape in self.tapes:
            n += tape.outputs.nbytes + sum(a.nbytes for a in tape.saved if isinstance(a, np.ndarray))
        for st in self.states.values():
            n += sum(a.nbytes for a in st or [])
        return n


class Result:
    """What a layer reads from a forward: outputs (whole, or ``(B, 1, H)`` holding the last one),
    the final states, and the tape."""

    __slots__ = ("outputs", "h", "c", "tape")

    def __init__(self, outputs: np.ndarray, finals: list[np.ndarray], tape: Windowed):
        self.outputs = outputs
        self.h = finals[0]
        self.c = finals[1] if len(finals) > 1 else None
        self.tape = tape


class Grads:
    __slots__ = ("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0", "dc0")

    def __init__(self, dx: Any, sums: list[Any], carry: list[np.ndarray]):
        self.dx = dx
        self.dkernel, self.drecurrent_kernel, self.dbias = sums
        self.dh0 = carry[0]
        self.dc0 = carry[1] if len(carry) > 1 else None


def windows_of(steps: int, window: int | None = None) -> list[tuple[int, int]]:
    w = WINDOW if window is None else window
    return [(s0, min(s0 + w, steps)) for s0 in range(0, steps, w)]


def schedule(n_windows: int, state_bytes: int, window_bytes: int, budget: int | None, who: str) -> list[int]:
    """Sub-segment sizes per level, outermost first (``[1]``: a state at every window). With a
    budget, the fewest levels whose states (at most ``levels · fan-out``) fit beside one window."""
    if budget is None or n_windows * state_bytes + window_bytes <= budget:
        return [1]
    room = (budget - window_bytes) // max(state_bytes, 1)
    for levels in range(2, max(2, math.ceil(math.log2(max(n_windows, 2)))) + 1):
        k = math.ceil(n_windows ** (1.0 / levels))
        while k > 1 and (k - 1) ** levels >= n_windows:
            k -= 1
        if levels * k <= room:
            return [k ** (levels - 1 - i) for i in range(levels)]
    need = 2 * math.ceil(math.log2(max(n_windows, 2))) * state_bytes + window_bytes
    raise ValueError(
        f"{who}: the training memory limit ({_mib(budget)}) is below what checkpointed backpropagation "
        f"needs for this sequence (about {_mib(need)}: one window of {WINDOW} steps and its checkpoints). "
        f"Raise it with seqcore.config.set_training_memory_limit(...), use a smaller batch, or split the "
        f"sequence with fit(..., tbptt_steps=...)."
    )


def _mib(n: float) -> str:
    """A size as people read it: GiB, MiB, KiB or bytes."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


class Driver:
    """One recurrent call's windows over a layer's kernels.

    ``run(x_w, training, init, mask_w, continued_w)`` is the layer's kernel forward on one window (a result
    with ``outputs``, ``h``, ``c`` and ``tape``); ``back(tape, d_out_w, d_h, d_c, need_dx)`` its
    kernel backward (grads with ``dx``, ``dkernel``, ``drecurrent_kernel``, ``dbias``, ``dh0`` and,
    for two states, ``dc0``). One driver per forward call (its tape refers to it), so concurrent
    calls of one layer never share a backward's running sums."""

    def __init__(self, n_states: int, run: Callable[..., Any], back: Callable[..., Any]):
        self.n_states = n_states
        self.run = run
        self.back = back

    # --- windows -------------------------------------------------------------------------
    def _slice(self, tape: Windowed, w: int) -> tuple[np.ndarray, Any, np.ndarray | None]:
        """Window ``w``'s input (in input time), its mask, and which samples it continues (some
        valid step in an earlier window, or ``continued`` from before this call)."""
        s0, s1 = tape.windows[w]
        t = tape.x.shape[1]
        a, b = (t - s1, t - s0) if tape.go_backwards else (s0, s1)
        xw = np.ascontiguousarray(tape.x[:, a:b])
        if tape.mask is None:
            return xw, None, tape.continued
        earlier = _masks.any_valid(tape.mask, b, t) if tape.go_backwards else _masks.any_valid(tape.mask, 0, a)
        cont = earlier if tape.continued is None else earlier | tape.continued
        return xw, _masks.window(tape.mask, a, b), (cont if cont.any() else None)

    def _finals(self, res: Any) -> list[np.ndarray]:
        return [res.h, res.c] if self.n_states == 2 else [res.h]

    def _step(self, tape: Windowed, w: int, state: list[np.ndarray] | None, training: bool) -> Any:
        xw, mw, cw = self._slice(tape, w)
        return self.run(xw, training, state, mw, cw)

    # --- forward -------------------------------------------------------------------------
    def forward(
        self,
        x: np.ndarray,
        init: list[np.ndarray] | None,
        mask: Any,
        continued: np.ndarray | None,
        go_backwards: bool,
        keep_sequences: bool,
        mode: str,
        sizes: list[int],
    ) -> Result:
        b, t, _ = x.shape
        wins = windows_of(t)
        tape = Windowed(self, mode, x, mask, continued, go_backwards, init, wins, sizes)
        state = init
        outputs: np.ndarray | None = None
        last: np.ndarray | None = None
        for w, (s0, s1) in enumerate(wins):
            if mode == "checkpoint" and w % sizes[0] == 0:
                tape.states[w] = state
                tape._hold(1)
            res = self._step(tape, w, state, training=mode == "full")
            out = res.outputs
            if mode == "full":
                tape.tapes.append(res.tape)
            if keep_sequences:
                if outputs is None:
                    outputs = np.empty((b, t, out.shape[2]), dtype=np.float32)
                outputs[:, s0:s1] = out
            last = out[:, -1:]
            state = self._finals(res)
        assert state is not None and last is not None
        return Result(outputs if keep_sequences else np.ascontiguousarray(last), state, tape)  # type: ignore[arg-type]

    # --- backward ------------------------------------------------------------------------
    def backward(
        self,
        tape: Windowed,
        d_out: np.ndarray | None,
        d_h: np.ndarray | None,
        d_c: np.ndarray | None,
        need_dx: bool,
    ) -> Grads:
        if tape.consumed:
            raise ValueError(
                "recurrent backward: this tape was already used by a backward pass (it is consumed to save "
                "memory); run the forward again."
            )
        tape.consumed = True
        b, t, f = tape.x.shape
        self._dx = np.empty((b, t, f), dtype=np.float32) if need_dx else None
        self._sums: list[Any] = [None, None, None]
        self._carry: list[Any] = [d_h, d_c] if self.n_states == 2 else [d_h]
        self._d_out = d_out
        self._need_dx = need_dx
        n = len(tape.windows)
        if tape.mode == "full":
            for w in reversed(range(n)):
                self._window_backward(tape, w, tape.tapes.pop())
        else:
            top = tape.sizes[0]
            for st in reversed(range(0, n, top)):
                self._segment(tape, st, min(st + top, n), tape.states.pop(st), 1)
        grads = Grads(self._dx, self._sums, self._carry)
        del self._dx, self._sums, self._carry, self._d_out
        return grads

    def _segment(self, tape: Windowed, a: int, b: int, state: list[np.ndarray] | None, level: int) -> None:
        """Backward over windows ``[a, b)`` given the state at ``a``: a leaf window recomputes its
        tape; a longer segment recomputes its states at the next level's sub-segment starts."""
        if b - a == 1:
            res = self._step(tape, a, state, training=True)
            tape.held -= 1  # this window's state is spent
            self._window_backward(tape, a, res.tape)
            return
        size = tape.sizes[level]
        starts = list(range(a, b, size))
        states = {a: state}
        s = state
        for w in range(a, starts[-1]):
            s = self._finals(self._step(tape, w, s, training=False))
            if (w + 1 - a) % size == 0:
                states[w + 1] = s
                tape._hold(1)
        for st in reversed(starts):
            self._segment(tape, st, min(st + size, b), states.pop(st), level + 1)

    def _window_backward(self, tape: Windowed, w: int, kernel_tape: Any) -> None:
        s0, s1 = tape.windows[w]
        d_out_w = None if self._d_out is None else np.ascontiguousarray(self._d_out[:, s0:s1])
        carry = self._carry
        g = self.back(kernel_tape, d_out_w, carry[0], carry[1] if self.n_states == 2 else None, self._need_dx)
        self._carry = [g.dh0, g.dc0] if self.n_states == 2 else [g.dh0]
        for i, part in enumerate((g.dkernel, g.drecurrent_kernel, g.dbias)):
            if part is None:
                continue
            if self._sums[i] is None:
                self._sums[i] = part
            else:
                self._sums[i] += part
        if self._dx is not None:
            t = tape.x.shape[1]
            a, b = (t - s1, t - s0) if tape.go_backwards else (s0, s1)
            self._dx[:, a:b] = g.dx
