"""LSTM, GRU and SimpleRNN layers on the fused Rust kernels, with Keras 3's arguments, defaults and
weight order (kernel, recurrent_kernel, bias). Long training sequences run in windows, with the
tape kept or checkpointed (``seqcore._bptt``)."""

from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np

from .. import _bptt, _masks, config, constraints, initializers, kernels, regularizers, remat
from .._recurrent import CELL_ACTIVATIONS, RecurrentTape
from ..utils import rng
from .base import Layer, Shape, shape_str, unused_input_grad
from .core import activation_name, positive_int


def _keep_mask(gen: np.random.Generator, shape: tuple[int, ...], rate: float) -> np.ndarray:
    """A dropout mask as Keras draws it: each entry kept with probability ``1 - rate`` and scaled
    by ``1 / (1 - rate)``, zero otherwise."""
    return ((gen.random(shape, dtype=np.float32) >= rate) / np.float32(1 - rate)).astype(np.float32)


class _RNN(Layer):
    """What LSTM and GRU share: argument checking, shapes, states, masks and the tape."""

    _gates = 0
    _n_states = 1
    _tape_units = 0  # floats a training step keeps per unit and sample (tape and output)
    propagates_mask = False  # set per instance: a sequence output keeps the mask
    uses_mask = True

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        **kwargs: Any,
    ):
        kwargs.pop("use_cudnn", None)  # accepted for Keras compatibility; there is no GPU path
        # activity_regularizer: applied by the base Layer to the layer's output (the sequence with
        # return_sequences=True, else the last output), as Keras's Layer.__call__ does.
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        who = f"{type(self).__name__} {self.name!r}"
        self.units = positive_int(units, who, "units")
        self.activation = activation_name(activation, who, CELL_ACTIVATIONS)
        self.recurrent_activation = activation_name(recurrent_activation, who, CELL_ACTIVATIONS)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        for arg, v in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not (isinstance(v, (int, float)) and 0 <= v < 1):
                raise ValueError(f"{who}: {arg} must be in [0, 1). Received: {arg}={v!r}")
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"{who}: seed must be an int >= 0 or None. Received: seed={seed!r}")
        self.seed = seed
        # One generator for the layer's life (as Dropout(seed=) and Keras's SeedGenerator): a new
        # mask every training step, and the same sequence of masks for the same seed.
        self._gen = np.random.default_rng(seed) if seed is not None else None
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)  # accepted; the kernel loop is already unrolled in Rust
        # Keras's RNN option: masked steps of a returned sequence output zeros instead of repeating
        # the last valid output (Bidirectional forces it on its layers when returning sequences).
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.propagates_mask = self.return_sequences
        self.states: list[np.ndarray] | None = None
        # The RematScope this layer was created in (Keras records it at creation too).
        self._remat_mode = remat.current_mode()
        self._said_checkpointing = False

    # --- shapes ---------------------------------------------------------------------------
    def _check_input_shape(self, input_shape: Shape) -> None:
        who = f"{type(self).__name__} {self.name!r}"
        if len(input_shape) != 2:
            hint = ""
            if len(input_shape) == 1:
                hint = (
                    " A 2-D input has no time axis: if it comes from another recurrent layer, set "
                    "return_sequences=True on that layer; for a single feature per step, reshape to "
                    "(batch, timesteps, 1)."
                )
            elif len(input_shape) == 3:
                hint = (
                    " For CNN-LSTM input (samples, n_seq, n_steps, features), wrap the per-subsequence "
                    "layers in TimeDistributed and Flatten them before the LSTM."
                )
            raise ValueError(
                f"{who}: expected input of shape (batch, timesteps, features); received "
                f"{shape_str((None, *input_shape))}.{hint}"
            )
        if input_shape[-1] is None:
            raise ValueError(
                f"{who}: the feature axis of the input must be known; received {shape_str((None, *input_shape))}."
            )

    def build(self, input_shape: Shape) -> None:
        self._check_input_shape(input_shape)
        f, h, g = int(input_shape[-1]), self.units, self._gates  # type: ignore[arg-type]
        self.kernel = self.add_weight(
            "kernel", (f, g * h), self.kernel_initializer, self.kernel_regularizer, constraint=self.kernel_constraint
        )
        self.recurrent_kernel = self.add_weight(
            "recurrent_kernel",
            (h, g * h),
            self.recurrent_initializer,
            self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        self.bias = (
            self.add_weight(
                "bias", self._bias_shape(), self._bias_init(), self.bias_regularizer, constraint=self.bias_constraint
            )
            if self.use_bias
            else None
        )

    def _bias_shape(self) -> tuple[int, ...]:
        return (self._gates * self.units,)

    def _bias_init(self) -> Any:
        return self.bias_initializer

    # --- states ---------------------------------------------------------------------------
    def reset_states(self, states: Any = None) -> None:
        """Stateful layers: forget the carried state (or set it to ``states``)."""
        if states is None:
            self.states = None
            return
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        if len(states) != self._n_states:
            raise ValueError(f"{self.name}: expected {self._n_states} state arrays; received {len(states)}.")
        out = []
        for s in states:
            # A copy: the layer updates its states in place when streaming (seqcore.streaming).
            a = np.array(s, dtype=np.float32, copy=True, order="C")
            if a.ndim != 2 or a.shape[1] != self.units:
                raise ValueError(
                    f"{type(self).__name__} {self.name!r}: each state must have shape (batch, units={self.units}); "
                    f"received {a.shape}."
                )
            out.append(a)
        self.states = out

    def _initial_state(self, batch: int, initial_state: Any) -> list[np.ndarray] | None:
        if initial_state is not None:
            return list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if self.stateful and self.states is not None:
            if self.states[0].shape[0] != batch:
                raise ValueError(
                    f"{self.name}: a stateful layer carries the state of a batch of {self.states[0].shape[0]} "
                    f"samples; received a batch of {batch}. Use a fixed batch size (and shuffle=False), or "
                    f"call reset_states() first."
                )
            return self.states
        return None

    def _begin_carry(self) -> None:
        """Starts carrying state from one forward to the next in this thread (one batch of truncated
        BPTT): from the layer's own carried state when it is stateful, else from zeros. Kept per
        thread, so inference from other threads during such a fit starts from zeros as usual."""
        start = [s.copy() for s in self.states] if self.stateful and self.states is not None else None
        # [state, which samples already had a valid step]: a chunk continues those samples'
        # sequences, so their masked leading steps output the carried state, not Keras's zeros.
        _carried()[id(self)] = [start, None]

    def _end_carry(self) -> None:
        _carried().pop(id(self), None)

    # --- forward / backward ---------------------------------------------------------------
    def _run(
        self, x: np.ndarray, training: bool, init: list[np.ndarray] | None, mask: Any, masks: Any, continued: Any
    ) -> Any:
        """The kernel forward: ``mask`` lengths or boolean (see ``seqcore._masks``), ``masks`` the
        per-gate dropout masks, ``continued`` the samples whose sequence started in an earlier call."""
        raise NotImplementedError

    def forward(
        self, x: np.ndarray, training: bool = False, initial_state: Any = None, lengths: Any = None
    ) -> tuple[Any, Any]:
        """The output (``[output, *final_states]`` with ``return_state``) and, in training, the
        call's context (the kernel's tape, the dropout masks drawn for it, the output mask)."""
        if x.ndim != 3:
            self._check_input_shape(tuple(x.shape[1:]))
        lengths = _masks.normalize(lengths, x.shape[0], x.shape[1], f"{type(self).__name__} {self.name!r}")
        ctx = _RNNContext(x.shape, lengths)
        if training and self.recurrent_dropout:
            # Keras's cell with recurrent_dropout (its implementation=1): every gate gets its own
            # input mask and recurrent mask, (batch, features) and (batch, units), fixed for the whole
            # sequence; the kernel applies them per gate at every step.
            gen = self._gen if self._gen is not None else rng()
            g, b = self._gates, x.shape[0]
            mi = _keep_mask(gen, (g, b, x.shape[2]), self.dropout) if self.dropout else None
            ctx.gate_masks = (mi, _keep_mask(gen, (g, b, self.units), self.recurrent_dropout))
        elif training and self.dropout:
            gen = self._gen if self._gen is not None else rng()
            # One mask per sequence, shared by every step (Keras's RNN cells draw it from the first
            # step's input shape and reuse it for the whole sequence: "variational" dropout).
            ctx.dropout_mask = _keep_mask(gen, (x.shape[0], 1, *x.shape[2:]), self.dropout)
            x = x * ctx.dropout_mask
        if initial_state is not None:
            initial_state = self._check_initial_state(x.shape[0], initial_state)
            ctx.has_init = True
        init = self._initial_state(x.shape[0], initial_state)
        carry = _carried().get(id(self))
        continued = None
        if carry is not None and initial_state is None:
            init, continued = carry
        plan = self._bptt_plan(x, training)
        if plan is None:
            res = self._run(x, training, init, lengths, ctx.gate_masks, continued)
        else:
            masks = ctx.gate_masks
            driver = _bptt.Driver(
                self._n_states,
                lambda xw, tr, st, mw, cw: self._run(xw, tr, st, mw, masks, cw),
                lambda tape, d_out, d_h, d_c, need: self._backward_kernel(tape, d_out, d_h, d_c, need),
            )
            res = driver.forward(x, init, lengths, continued, self.go_backwards, self.return_sequences, *plan)
        finals = [res.h, res.c] if self._n_states == 2 else [res.h]
        if self.stateful:
            self.states = [s.copy() for s in finals]
        if carry is not None:
            carry[0] = [s.copy() for s in finals]
            t = x.shape[1]
            had = np.ones(x.shape[0], dtype=bool) if lengths is None else _masks.any_valid(lengths, 0, t)
            carry[1] = had if carry[1] is None else carry[1] | had
        ctx.continued = continued
        ctx.tape = res.tape
        # Keras returns the output of the last processing step (zeros for a fully masked sample).
        out = res.outputs if self.return_sequences else res.outputs[:, -1] if x.shape[1] else finals[0] * 0
        if self.zero_output_for_mask and self.return_sequences and lengths is not None:
            # Valid steps in processing order (reversed time for go_backwards, as the outputs are).
            valid = _masks.to_bool(lengths, x.shape[1])
            ctx.zero_mask = (valid[:, ::-1] if self.go_backwards else valid)[..., None].astype(np.float32)
            out = out * ctx.zero_mask
        return ([out, *finals] if self.return_state else out), (ctx if training else None)

    @staticmethod
    def _constant_rows(mask: Any, continued: Any) -> np.ndarray | None:
        """Samples whose last output is Keras's constant zero (no valid step, none before), or None."""
        empty = _masks.counts(mask) == 0
        if continued is not None:
            empty &= ~continued
        return empty if empty.any() else None

    def _bptt_plan(self, x: np.ndarray, training: bool) -> tuple[str, list[int]] | None:
        """How a training call over a long sequence keeps its tape (see ``seqcore._bptt``): None for
        one kernel call (inference, or at most one window of steps), else the windowed mode, kept
        or checkpointed, and the checkpoint schedule. Checkpointed when a ``RematScope`` selected
        the layer, or when the kept tape would exceed the training memory limit."""
        b, t = x.shape[0], x.shape[1]
        if not training or t <= _bptt.WINDOW:
            return None
        per_step = self._tape_units * self.units * 4  # bytes one (sample, step) keeps
        tape_bytes = b * t * per_step
        limit = config.get_training_memory_limit()
        mode = self._remat_mode
        forced = mode is not None and mode.selects(self.name, self.compute_output_shape(tuple(x.shape[1:])))
        if not forced and tape_bytes <= limit:
            return "full", [1]
        who = f"{type(self).__name__} {self.name!r}"
        n_windows = -(-t // _bptt.WINDOW)
        state_bytes = self._n_states * b * self.units * 4
        sizes = _bptt.schedule(n_windows, state_bytes, b * _bptt.WINDOW * per_step, limit, who)
        if not forced and not self._said_checkpointing:
            self._said_checkpointing = True
            levels = len(sizes)
            states = n_windows if levels == 1 else levels * sizes[-2]
            print(
                f"seqcore: {who}: its training tape for {t} steps would take {_bptt._mib(tape_bytes)}, over the "
                f"training memory limit ({_bptt._mib(limit)}); checkpointing backpropagation through time every "
                f"{_bptt.WINDOW} steps ({states} states, {_bptt._mib(states * state_bytes)}; about {levels} more "
                f"forward pass{'es' if levels > 1 else ''}, same gradients).",
                file=sys.stderr,
            )
        return "checkpoint", sizes

    def _check_initial_state(self, batch: int, initial_state: Any) -> list[np.ndarray]:
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        who = f"{type(self).__name__} {self.name!r}"
        if len(states) != self._n_states:
            what = "[h, c]" if self._n_states == 2 else "[h]"
            raise ValueError(f"{who}: initial_state must be {self._n_states} array(s) {what}; received {len(states)}.")
        out = []
        for s in states:
            a = np.ascontiguousarray(s, dtype=np.float32)
            if a.shape != (batch, self.units):
                raise ValueError(
                    f"{who}: each initial state must have shape (batch, units) = {(batch, self.units)}; received "
                    f"{a.shape}."
                )
            out.append(a)
        return out

    def _backward_kernel(
        self, tape: RecurrentTape, d_out: np.ndarray | None, d_h: np.ndarray | None, d_c: Any, need_dx: bool
    ) -> Any:
        raise NotImplementedError

    def backward(self, ctx: Any, dy: Any, need_dx: bool = True) -> np.ndarray:
        if ctx is None or ctx.tape is None:
            raise RuntimeError(f"{self.name}: backward without a training forward.")
        if self.return_state:
            dy, *d_states = dy
        else:
            d_states = []
        b, t, _ = ctx.x_shape
        d_out, d_h = (dy, None) if self.return_sequences else (None, dy)
        if d_out is not None and ctx.zero_mask is not None:
            d_out = d_out * ctx.zero_mask  # zeroed outputs are constants: no gradient
        lengths = ctx.lengths
        if d_h is not None:
            # The last output is the final state (the kernels take its gradient as d_h, so no
            # (batch, time, units) buffer of zeros), except for rows with no valid step: their
            # output is Keras's constant zero and passes no gradient back to an initial state.
            if not t:
                d_h = None
            elif lengths is not None and (const := self._constant_rows(lengths, ctx.continued)) is not None:
                d_h = np.where(const[:, None], np.float32(0), d_h).astype(np.float32)
        d_c = None
        if d_states:  # return_state: the final states' own gradients
            if d_states[0] is not None:
                d_h = d_states[0] if d_h is None else d_h + d_states[0]
            if self._n_states == 2 and d_states[1] is not None:
                d_c = d_states[1]
        if isinstance(ctx.tape, _bptt.Windowed):
            g = ctx.tape.driver.backward(ctx.tape, d_out, d_h, d_c, need_dx)
        else:
            g = self._backward_kernel(ctx.tape, d_out, d_h, d_c, need_dx)
        ctx.tape = None
        self.kernel.add_grad(g.dkernel)
        self.recurrent_kernel.add_grad(g.drecurrent_kernel)
        if self.bias is not None:
            self.bias.add_grad(g.dbias)
        if ctx.has_init:
            ctx.kwarg_grads = {"initial_state": [g.dh0, g.dc0] if self._n_states == 2 else [g.dh0]}
        dx = g.dx if g.dx is not None else unused_input_grad(ctx.x_shape)
        return dx if ctx.dropout_mask is None else dx * ctx.dropout_mask

    def compute_output_shape(self, input_shape: Shape) -> Any:
        t = input_shape[0] if input_shape else None
        return (t, self.units) if self.return_sequences else (self.units,)

    def symbolic_output(self, inputs: Any, **kwargs: Any) -> Any:
        out = super().symbolic_output(inputs)
        if not self.return_state:
            return out
        return [out, *([(inputs.shape[0], self.units)] * self._n_states)]

    def output_mask(self, in_mask: Any, x: Any, ctx: Any) -> Any:
        keep = in_mask if self.return_sequences else None
        return [keep, *([None] * self._n_states)] if self.return_state else keep

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation,
            "recurrent_activation": self.recurrent_activation,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "zero_output_for_mask": self.zero_output_for_mask,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
        }


def return_sequences_hint(prev: Any) -> str:
    """The fix when ``prev`` (the layer feeding a sequence layer) is an LSTM/GRU that returns one
    vector per sample; "" otherwise. Used by Sequential and by symbolic calls alike."""
    if isinstance(prev, _RNN) and not prev.return_sequences:
        return (
            f" The previous layer {prev.name!r} ({type(prev).__name__}) has return_sequences=False, so it "
            f"outputs one vector per sample, not a sequence: set return_sequences=True on it."
        )
    return ""


def mask_to_lengths(mask: np.ndarray, who: str) -> np.ndarray:
    """A Keras boolean mask (batch, timesteps) in the form masks travel in: per-sample lengths when
    it is post-padded, else the boolean array (pre-padding, gaps; see ``seqcore._masks``)."""
    return _masks.from_bool(mask, who)


class LSTM(_RNN):
    """Keras's LSTM (gates i, f, c, o; ``unit_forget_bias=True`` starts the forget bias at 1)."""

    _gates = 4
    _n_states = 2
    _tape_units = 6  # gates 4H, cells H, output H

    def __init__(self, units: int, *args: Any, unit_forget_bias: bool = True, **kwargs: Any):
        self.unit_forget_bias = bool(unit_forget_bias)
        super().__init__(units, *args, **kwargs)

    def _bias_init(self) -> Any:
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, h = self.bias_initializer, self.units

        def init(shape: tuple[int, ...]) -> np.ndarray:
            b = base(shape)
            b[h : 2 * h] = 1.0
            return b

        return init

    def _run(
        self, x: np.ndarray, training: bool, init: list[np.ndarray] | None, mask: Any, masks: Any, continued: Any
    ) -> Any:
        return kernels.lstm_forward(
            x, self.kernel.value, self.recurrent_kernel.value, None if self.bias is None else self.bias.value,
            initial_state=init, **_masks.kernel_kwargs(mask), continued=continued, activation=self.activation,
            recurrent_activation=self.recurrent_activation, go_backwards=self.go_backwards, training=training,
            input_masks=masks[0], recurrent_masks=masks[1],
        )  # fmt: skip

    def _backward_kernel(
        self, tape: RecurrentTape, d_out: np.ndarray | None, d_h: np.ndarray | None, d_c: Any, need_dx: bool
    ) -> Any:
        return kernels.lstm_backward(tape, d_out, d_h, d_c, need_dx=need_dx)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class GRU(_RNN):
    """Keras's GRU (gates z, r, h). ``reset_after=True`` (default) has a (2, 3*units) bias and is the
    same cell as PyTorch's GRU; ``reset_after=False`` has a (3*units,) bias."""

    _gates = 3
    _n_states = 1
    _tape_units = 5  # gates 3H, the kept recurrent part H, output H

    def __init__(self, units: int, *args: Any, reset_after: bool = True, **kwargs: Any):
        self.reset_after = bool(reset_after)
        super().__init__(units, *args, **kwargs)

    def _bias_shape(self) -> tuple[int, ...]:
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _run(
        self, x: np.ndarray, training: bool, init: list[np.ndarray] | None, mask: Any, masks: Any, continued: Any
    ) -> Any:
        res = kernels.gru_forward(
            x, self.kernel.value, self.recurrent_kernel.value, None if self.bias is None else self.bias.value,
            initial_state=init, **_masks.kernel_kwargs(mask), continued=continued, activation=self.activation,
            recurrent_activation=self.recurrent_activation, go_backwards=self.go_backwards,
            reset_after=self.reset_after, training=training,
            input_masks=masks[0], recurrent_masks=masks[1],
        )  # fmt: skip
        return _GRUAsLSTM(res)

    def _backward_kernel(
        self, tape: RecurrentTape, d_out: np.ndarray | None, d_h: np.ndarray | None, d_c: Any, need_dx: bool
    ) -> Any:
        return kernels.gru_backward(tape, d_out, d_h, need_dx=need_dx)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "reset_after": self.reset_after}


class SimpleRNN(_RNN):
    """Keras's SimpleRNN: ``h_t = activation(x_t·kernel + bias + h_{t-1}·recurrent_kernel)``, on
    its own fused Rust kernel (``kernels.simple_rnn_forward``); every option LSTM and GRU have
    (masks, ``go_backwards``, ``initial_state``, ``return_state``, ``stateful``, ``dropout`` and
    ``recurrent_dropout``, ...). It has no recurrent activation."""

    _gates = 1
    _n_states = 1
    _tape_units = 2  # states H, output H

    def __init__(self, units: int, activation: Any = "tanh", *args: Any, **kwargs: Any):
        if "recurrent_activation" in kwargs:
            raise TypeError(
                "SimpleRNN: unexpected keyword argument 'recurrent_activation' (a SimpleRNN cell has one "
                "activation, `activation`)."
            )
        super().__init__(units, activation, "linear", *args, **kwargs)

    def _run(
        self, x: np.ndarray, training: bool, init: list[np.ndarray] | None, mask: Any, masks: Any, continued: Any
    ) -> Any:
        res = kernels.simple_rnn_forward(
            x, self.kernel.value, self.recurrent_kernel.value, None if self.bias is None else self.bias.value,
            initial_state=init, **_masks.kernel_kwargs(mask), continued=continued, activation=self.activation,
            go_backwards=self.go_backwards, training=training, input_masks=masks[0], recurrent_masks=masks[1],
        )  # fmt: skip
        return _GRUAsLSTM(res)

    def _backward_kernel(
        self, tape: RecurrentTape, d_out: np.ndarray | None, d_h: np.ndarray | None, d_c: Any, need_dx: bool
    ) -> Any:
        return kernels.simple_rnn_backward(tape, d_out, d_h, need_dx=need_dx)

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.pop("recurrent_activation", None)
        return cfg


class _GRUAsLSTM:
    """A GRU result with the attribute names `_RNN` reads."""

    def __init__(self, res: Any):
        self.outputs, self.h, self.tape = res.outputs, res.h, res.tape


class _RNNContext:
    """One recurrent call's record for its backward."""

    __slots__ = (
        "x_shape", "lengths", "continued", "tape", "dropout_mask", "gate_masks", "zero_mask", "has_init", "kwarg_grads",
    )  # fmt: skip

    def __init__(self, x_shape: tuple[int, ...], lengths: Any):
        self.x_shape = x_shape
        self.lengths = lengths  # the mask: lengths or boolean (seqcore._masks)
        self.continued: np.ndarray | None = None
        self.tape: RecurrentTape | None = None
        self.dropout_mask: np.ndarray | None = None
        # With recurrent_dropout, Keras's per-gate masks (input, recurrent), applied in the kernel.
        self.gate_masks: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
        self.zero_mask: np.ndarray | None = None
        self.has_init = False
        self.kwarg_grads: dict[str, Any] | None = None


_THREAD = threading.local()


def _carried() -> dict[int, list[Any]]:
    """This thread's truncated-BPTT carries: layer id -> [state] (see ``_RNN._begin_carry``)."""
    d = getattr(_THREAD, "carry", None)
    if d is None:
        d = _THREAD.carry = {}
    return d
