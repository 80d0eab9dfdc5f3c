"""Pure-NumPy float64 reference LSTM and GRU (forward, backpropagation through time, PyTorch converters).

The test oracle for the Rust recurrent kernels. Written for clarity, not speed, one time step at a time,
sharing no code with the kernels. Inputs are converted to float64; results are float64 (except the
PyTorch layout converters, which preserve dtype).

Semantics, verified against the installed Keras 3.15 source (TensorFlow backend, CPU) and against
golden values produced by Keras and PyTorch (tests/golden/generate_rnn_goldens.py):

Weights (Keras layout; ``keras/src/layers/rnn/lstm.py`` ``LSTMCell.build`` / ``call``,
``keras/src/layers/rnn/gru.py`` ``GRUCell.build`` / ``call``):

* LSTM: ``kernel`` (F, 4H), ``recurrent_kernel`` (H, 4H), ``bias`` (4H,); gate column blocks
  ``i, f, c, o``. Per step ``z = x_t @ kernel + h @ recurrent_kernel + bias``;
  ``i = ra(z_i)``, ``f = ra(z_f)``, ``g = a(z_c)``, ``o = ra(z_o)``; ``c' = f*c + i*g``;
  ``h' = o * a(c')``. (``a`` = activation, ``ra`` = recurrent_activation.) The cell output is ``h'``.
  ``unit_forget_bias`` only affects initialisation.
* GRU: ``kernel`` (F, 3H), ``recurrent_kernel`` (H, 3H), gate column blocks ``z, r, h``.
  ``reset_after=True`` (Keras default): ``bias`` (2, 3H), row 0 the input bias, row 1 the recurrent
  bias. ``mx = x_t @ kernel + bias[0]``, ``mh = h @ recurrent_kernel + bias[1]``;
  ``z = ra(mx_z + mh_z)``, ``r = ra(mx_r + mh_r)``, ``hh = a(mx_h + r * mh_h)``.
  ``reset_after=False``: ``bias`` (3H,), input side only, no recurrent bias.
  ``mx = x_t @ kernel + bias``; ``z = ra(mx_z + h @ U_z)``, ``r = ra(mx_r + h @ U_r)``,
  ``hh = a(mx_h + (r * h) @ U_h)``. Both: ``h' = z * h + (1 - z) * hh`` (z weights the OLD state).
* ``use_bias=False``: no bias term at all (``bias=None`` here).

Activations (``keras/src/activations/activations.py``, ``keras/src/backend/tensorflow/nn.py``):
``linear`` (also ``None``), ``relu`` = max(x, 0), ``tanh``, ``sigmoid`` = 1 / (1 + exp(-x)),
``hard_sigmoid`` = ``relu6(x + 3) / 6`` = clip(x/6 + 1/2, 0, 1) (Keras 3; NOT Keras 2's 0.2x + 0.5).
Gradients as TensorFlow defines them: relu' = 1 for x > 0 (0 at 0); hard_sigmoid' = 1/6 for
-3 < x < 3, else 0 (TF's relu6 gradient is 0 at both kinks).

Sequence loop (``keras/src/layers/rnn/rnn.py`` ``RNN.call`` / ``inner_loop`` and
``keras/src/backend/tensorflow/rnn.py`` ``rnn``, the ``unroll=False`` masked ``_step``; on CPU
``backend.lstm`` / ``backend.gru`` raise NotImplementedError and Keras falls back to this loop):

* Processing order: step k (k = 0..T-1) reads ``x[:, k]``, or ``x[:, T-1-k]`` when ``go_backwards``.
* ``outputs`` (``return_sequences=True``) is indexed by PROCESSING step: ``outputs[:, k]`` is the output
  of step k. With ``go_backwards`` the sequence comes back reversed (``outputs[:, 0]`` belongs to the
  last time index); Keras does not flip it back.
* Mask: ``lengths`` is a boolean ``(B, T)`` Keras mask on the original time index (any pattern), or
  per-sample lengths: ``lengths[b]`` means Keras mask ``m[b, t] = t < lengths[b]`` on the ORIGINAL time index t (a
  Masking layer on post-padded data; the mask is reversed along with the inputs when
  ``go_backwards``, so a backwards layer meets the padding first). At a masked step the states
  (h, and c for LSTM) are left unchanged. Its output is the previous step's (already masked) output,
  and the "previous output" before step 0 is ZEROS, not h0 (``zero_output_for_mask=False``, the
  LSTM / GRU default). Equivalently, ``outputs[:, k] = h_k`` (the state after step k) if any step
  <= k was valid for that sample, else 0. Hence: forward + post-padding, the padding steps repeat
  h at the last valid step; a length-0 sample gives all-zero outputs; go_backwards gives
  ``T - lengths[b]`` leading zero rows, then the valid outputs.
* ``h_last`` / ``c_last`` (``return_state=True``) are the final states, i.e. the state after the last
  valid step (h0 / c0 for a length-0 sample). They are not the zeroed output.
* Initial state defaults to zeros; ``initial_state=[h0, c0]`` (LSTM) or ``[h0]`` (GRU) otherwise.
* Gradients: Keras computes the cell at masked steps and discards it with ``tf.where``, so masked
  steps give zero gradient to x[:, t] and the weights and pass the state gradients (dh, dc) through
  unchanged. ``d_outputs[:, k]`` flows into h_k when a valid step <= k exists, otherwise nowhere
  (in particular never into h0).
* On a GPU with cuDNN (not this oracle's target), Keras's cuDNN path writes zeros, not the carried
  output, at post-padding steps of a forward layer; backwards layers agree with the CPU loop.
* Keras quirk (not modelled): ``Layer.__call__`` fills ``mask`` from a Masking layer's
  ``_keras_mask`` only when the call has a single tensor argument, so ``layer(masked_x,
  initial_state=[...])`` silently ignores the mask; pass ``mask=`` explicitly in that case.

PyTorch (``torch.nn.LSTM`` / ``torch.nn.GRU``, ``batch_first=True``):

* LSTM gate order ``i, f, g, o`` equals Keras's ``i, f, c, o``; ``weight_ih`` (4H, F) =
  ``kernel.T``, ``weight_hh`` (4H, H) = ``recurrent_kernel.T``; two biases whose sum is the Keras
  bias. Same cell equations (tanh / sigmoid fixed).
* GRU gate order ``r, z, n`` versus Keras ``z, r, h`` (swap the first two blocks). PyTorch's GRU is
  Keras ``reset_after=True``: ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`` and
  ``h' = (1 - z) * n + z * h`` -- the same z convention as Keras. ``bias_ih`` / ``bias_hh`` are the
  Keras bias rows 0 / 1 (block-permuted). Keras ``reset_after=False`` has no PyTorch equivalent.
* PyTorch initial states are (num_layers, B, H); it has no go_backwards and no output masking
  (packed sequences are a different mechanism).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .reference import activation as _act
from .reference import activation_grad as _act_grad

__all__ = [
    "gru_backward",
    "gru_forward",
    "gru_from_torch",
    "gru_to_torch",
    "lstm_backward",
    "lstm_forward",
    "lstm_from_torch",
    "lstm_to_torch",
]

RNN_ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "hard_sigmoid")


def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _check_activation(name: str | None, what: str) -> str:
    if name is None:
        return "linear"
    if name not in RNN_ACTIVATIONS:
        raise ValueError(f"unknown {what} {name!r}; expected one of {RNN_ACTIVATIONS}")
    return name


def _check_shape(a: np.ndarray, shape: tuple[int, ...], what: str, fn: str) -> None:
    if a.shape != shape:
        raise ValueError(f"{fn}: {what} must have shape {shape}; received {a.shape}")


def _inputs(
    fn: str, x: Any, kernel: Any, recurrent_kernel: Any, gates: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, k, u = _f64(x), _f64(kernel), _f64(recurrent_kernel)
    if x.ndim != 3:
        raise ValueError(f"{fn}: x must have shape (batch, time, features); received {x.shape}")
    if u.ndim != 2 or u.shape[1] != gates * u.shape[0]:
        raise ValueError(f"{fn}: recurrent_kernel must have shape (units, {gates}*units); received {u.shape}")
    _check_shape(k, (x.shape[2], u.shape[1]), "kernel", fn)
    return x, k, u


def _state(fn: str, s: Any, batch: int, units: int, what: str) -> np.ndarray:
    if s is None:
        return np.zeros((batch, units))
    s = _f64(s)
    _check_shape(s, (batch, units), what, fn)
    return s.copy()


def _step_mask(fn: str, lengths: Any, batch: int, time: int, go_backwards: bool) -> np.ndarray:
    """(B, T) bool, True where processing step k is valid (k indexes processing order)."""
    if lengths is None:
        return np.ones((batch, time), dtype=bool)
    lengths = np.asarray(lengths)
    if lengths.ndim == 2:  # a boolean (B, T) mask of any pattern, in original time order
        if lengths.shape != (batch, time) or lengths.dtype != np.bool_:
            raise ValueError(f"{fn}: a step mask must be boolean of shape ({batch}, {time}); received {lengths!r}")
        return lengths[:, ::-1] if go_backwards else lengths
    if lengths.shape != (batch,) or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"{fn}: lengths must be integers of shape ({batch},); received {lengths!r}")
    if np.any(lengths < 0) or np.any(lengths > time):
        raise ValueError(f"{fn}: lengths must lie in [0, {time}]; received {lengths.tolist()}")
    mask = np.arange(time)[None, :] < lengths[:, None]  # original time order
    return mask[:, ::-1] if go_backwards else mask


def _processing_order(a: np.ndarray, go_backwards: bool) -> np.ndarray:
    """(B, T, ...) in the order the loop consumes it; the same call maps it back (an involution)."""
    return a[:, ::-1] if go_backwards else a


def _has_output(step_mask: np.ndarray) -> np.ndarray:
    """(B, T) bool: some step <= k was valid, so outputs[:, k] is h_k rather than zeros."""
    return np.logical_or.accumulate(step_mask, axis=1)


def _upstream(fn: str, d: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    if d is None:
        return np.zeros(shape)
    d = _f64(d)
    _check_shape(d, shape, what, fn)
    return d


# ------------------------------------------------------------------- per-gate dropout masks (Keras)
# With ``recurrent_dropout`` Keras 3 runs its ``implementation=1`` cell: gate g multiplies
# ``x_t * input_masks[g]`` by its kernel block and ``h * recurrent_masks[g]`` by its recurrent block
# (``keras/src/layers/rnn/lstm.py`` ``LSTMCell.call``; ``gru.py`` ``GRUCell.call``). The masks are drawn
# once per call (``DropoutRNNCell``) and already include the 1 / (1 - rate) scale.


def _gate_masks(fn: str, masks: Any, gates: int, batch: int, width: int, what: str) -> np.ndarray | None:
    if masks is None:
        return None
    m = _f64(masks)
    _check_shape(m, (gates, batch, width), what, fn)
    return m


def _gate_in(v: np.ndarray, masks: np.ndarray | None, g: int) -> np.ndarray:
    """What gate ``g`` multiplies by its weight block: ``v`` or ``v * masks[g]``."""
    return v if masks is None else v * masks[g]


def _gate_matmul(v: np.ndarray, w: np.ndarray, masks: np.ndarray | None, gates: int) -> np.ndarray:
    """``[ (v * m_0) @ w_0 | (v * m_1) @ w_1 | ... ]`` over the gate column blocks of ``w``."""
    blocks = np.split(w, gates, axis=1)
    return np.concatenate([_gate_in(v, masks, g) @ blocks[g] for g in range(gates)], axis=1)


def _gate_matmul_grad_v(dz: np.ndarray, w: np.ndarray, masks: np.ndarray | None, gates: int) -> np.ndarray:
    """Gradient of :func:`_gate_matmul` by ``v``: ``sum_g (dz_g @ w_g.T) * m_g``."""
    wb, db = np.split(w, gates, axis=1), np.split(dz, gates, axis=1)
    return sum((_gate_in(db[g] @ wb[g].T, masks, g) for g in range(gates)), np.zeros((dz.shape[0], w.shape[0])))


def _gate_matmul_grad_w(v: np.ndarray, dz: np.ndarray, masks: np.ndarray | None, gates: int) -> np.ndarray:
    """Gradient of :func:`_gate_matmul` by ``w``: ``[ (v * m_g).T @ dz_g ]`` over the gates."""
    db = np.split(dz, gates, axis=1)
    return np.concatenate([_gate_in(v, masks, g).T @ db[g] for g in range(gates)], axis=1)


# ----------------------------------------------------------------------------------------------- LSTM


def _lstm_scan(
    fn: str,
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any,
    h0: Any,
    c0: Any,
    lengths: Any,
    activation: str | None,
    recurrent_activation: str | None,
    go_backwards: bool,
    input_masks: Any = None,
    recurrent_masks: Any = None,
) -> dict[str, Any]:
    x, k, u = _inputs(fn, x, kernel, recurrent_kernel, 4)
    B, T, F = x.shape
    H = u.shape[0]
    mx = _gate_masks(fn, input_masks, 4, B, F, "input_masks")
    mh = _gate_masks(fn, recurrent_masks, 4, B, H, "recurrent_masks")
    act = _check_activation(activation, "activation")
    ract = _check_activation(recurrent_activation, "recurrent_activation")
    b = np.zeros(4 * H)
    if bias is not None:
        b = _f64(bias)
        _check_shape(b, (4 * H,), "bias", fn)
    h = _state(fn, h0, B, H, "h0")
    c = _state(fn, c0, B, H, "c0")
    xs = _processing_order(x, go_backwards)
    valid = _step_mask(fn, lengths, B, T, go_backwards)
    has_out = _has_output(valid)

    outputs = np.zeros((B, T, H))
    steps = []
    for t in range(T):
        z = _gate_matmul(xs[:, t], k, mx, 4) + _gate_matmul(h, u, mh, 4) + b
        zi, zf, zc, zo = np.split(z, 4, axis=1)
        i = _act(zi, ract)
        f = _act(zf, ract)
        g = _act(zc, act)
        o = _act(zo, ract)
        c_new = f * c + i * g
        h_new = o * _act(c_new, act)
        steps.append({"z": z, "h_prev": h, "c_prev": c, "c_new": c_new})
        m = valid[:, t, None]
        h = np.where(m, h_new, h)
        c = np.where(m, c_new, c)
        outputs[:, t] = np.where(has_out[:, t, None], h, 0.0)
    return {
        "outputs": outputs,
        "h": h,
        "c": c,
        "steps": steps,
        "xs": xs,
        "kernel": k,
        "recurrent_kernel": u,
        "valid": valid,
        "has_out": has_out,
        "act": act,
        "ract": ract,
        "mx": mx,
        "mh": mh,
    }


def lstm_forward(
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any = None,
    h0: Any = None,
    c0: Any = None,
    lengths: Any = None,
    activation: str | None = "tanh",
    recurrent_activation: str | None = "sigmoid",
    go_backwards: bool = False,
    input_masks: Any = None,
    recurrent_masks: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras ``LSTM(return_sequences=True, return_state=True)``: ``(outputs (B,T,H), h_last, c_last)``.
    ``input_masks`` (4, B, F) / ``recurrent_masks`` (4, B, H): per-gate dropout masks (training with
    ``recurrent_dropout``)."""
    s = _lstm_scan(
        "lstm_forward",
        x,
        kernel,
        recurrent_kernel,
        bias,
        h0,
        c0,
        lengths,
        activation,
        recurrent_activation,
        go_backwards,
        input_masks,
        recurrent_masks,
    )
    return s["outputs"], s["h"], s["c"]


def lstm_backward(
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any,
    h0: Any,
    c0: Any,
    lengths: Any,
    activation: str | None,
    recurrent_activation: str | None,
    go_backwards: bool,
    d_outputs: Any,
    d_h_last: Any = None,
    d_c_last: Any = None,
    input_masks: Any = None,
    recurrent_masks: Any = None,
) -> dict[str, np.ndarray | None]:
    """Backpropagation through time of :func:`lstm_forward`.

    ``d_outputs`` (B, T, H) is laid out like ``outputs`` (processing order when ``go_backwards``).
    Returns ``dx`` (original time order), ``dkernel``, ``drecurrent_kernel``, ``dbias`` (None when
    ``bias`` is None), ``dh0`` and ``dc0`` (gradients w.r.t. the initial states, zeros or given).
    """
    fn = "lstm_backward"
    s = _lstm_scan(
        fn,
        x,
        kernel,
        recurrent_kernel,
        bias,
        h0,
        c0,
        lengths,
        activation,
        recurrent_activation,
        go_backwards,
        input_masks,
        recurrent_masks,
    )
    outputs = s["outputs"]
    B, T, H = outputs.shape
    k, u, xs, act, ract = s["kernel"], s["recurrent_kernel"], s["xs"], s["act"], s["ract"]
    mx, mh = s["mx"], s["mh"]
    d_out = _upstream(fn, d_outputs, (B, T, H), "d_outputs")
    dh = _upstream(fn, d_h_last, (B, H), "d_h_last").copy()
    dc = _upstream(fn, d_c_last, (B, H), "d_c_last").copy()

    dxs = np.zeros(xs.shape)
    dk = np.zeros(k.shape)
    du = np.zeros(u.shape)
    db = np.zeros(4 * H)
    for t in reversed(range(T)):
        # outputs[:, t] is h_t where some step <= t was valid, else a constant 0.
        dh = dh + np.where(s["has_out"][:, t, None], d_out[:, t], 0.0)
        st = s["steps"][t]
        zi, zf, zc, zo = np.split(st["z"], 4, axis=1)
        i, f, g, o = _act(zi, ract), _act(zf, ract), _act(zc, act), _act(zo, ract)
        c_new = st["c_new"]
        # h' = o * a(c'),  c' = f * c + i * g
        dc_tot = dc + _act_grad(c_new, dh * o, act)
        do = dh * _act(c_new, act)
        di = dc_tot * g
        df = dc_tot * st["c_prev"]
        dg = dc_tot * i
        dz = np.concatenate(
            [
                _act_grad(zi, di, ract),
                _act_grad(zf, df, ract),
                _act_grad(zc, dg, act),
                _act_grad(zo, do, ract),
            ],
            axis=1,
        )
        m = s["valid"][:, t, None]
        dz = np.where(m, dz, 0.0)  # masked step: no gradient into the update
        dxs[:, t] = _gate_matmul_grad_v(dz, k, mx, 4)
        dk += _gate_matmul_grad_w(xs[:, t], dz, mx, 4)
        du += _gate_matmul_grad_w(st["h_prev"], dz, mh, 4)
        db += dz.sum(axis=0)
        # masked step: state gradients pass through unchanged
        dh = np.where(m, _gate_matmul_grad_v(dz, u, mh, 4), dh)
        dc = np.where(m, dc_tot * f, dc)
    return {
        "dx": _processing_order(dxs, go_backwards).copy(),
        "dkernel": dk,
        "drecurrent_kernel": du,
        "dbias": None if bias is None else db,
        "dh0": dh,
        "dc0": dc,
    }


# ------------------------------------------------------------------------------------------------ GRU


def _gru_bias(fn: str, bias: Any, H: int, reset_after: bool) -> tuple[np.ndarray, np.ndarray]:
    """(input bias (3H,), recurrent bias (3H,)); zeros where absent."""
    if bias is None:
        return np.zeros(3 * H), np.zeros(3 * H)
    b = _f64(bias)
    if reset_after:
        _check_shape(b, (2, 3 * H), "bias (reset_after=True)", fn)
        return b[0], b[1]
    _check_shape(b, (3 * H,), "bias (reset_after=False)", fn)
    return b, np.zeros(3 * H)


def _gru_scan(
    fn: str,
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any,
    h0: Any,
    lengths: Any,
    activation: str | None,
    recurrent_activation: str | None,
    go_backwards: bool,
    reset_after: bool,
    input_masks: Any = None,
    recurrent_masks: Any = None,
) -> dict[str, Any]:
    x, k, u = _inputs(fn, x, kernel, recurrent_kernel, 3)
    B, T, F = x.shape
    H = u.shape[0]
    mx_m = _gate_masks(fn, input_masks, 3, B, F, "input_masks")
    mh_m = _gate_masks(fn, recurrent_masks, 3, B, H, "recurrent_masks")
    act = _check_activation(activation, "activation")
    ract = _check_activation(recurrent_activation, "recurrent_activation")
    b_in, b_rec = _gru_bias(fn, bias, H, reset_after)
    h = _state(fn, h0, B, H, "h0")
    xs = _processing_order(x, go_backwards)
    valid = _step_mask(fn, lengths, B, T, go_backwards)
    has_out = _has_output(valid)

    outputs = np.zeros((B, T, H))
    steps = []
    for t in range(T):
        mx = _gate_matmul(xs[:, t], k, mx_m, 3) + b_in
        mx_z, mx_r, mx_h = np.split(mx, 3, axis=1)
        if reset_after:
            mh = _gate_matmul(h, u, mh_m, 3) + b_rec
            mh_z, mh_r, mh_h = np.split(mh, 3, axis=1)
            z = _act(mx_z + mh_z, ract)
            r = _act(mx_r + mh_r, ract)
            pre_h = mx_h + r * mh_h
        else:
            mh = _gate_matmul(h, u[:, : 2 * H], mh_m, 2)
            mh_z, mh_r = np.split(mh, 2, axis=1)
            mh_h = None
            z = _act(mx_z + mh_z, ract)
            r = _act(mx_r + mh_r, ract)
            pre_h = mx_h + (r * _gate_in(h, mh_m, 2)) @ u[:, 2 * H :]
        hh = _act(pre_h, act)
        h_new = z * h + (1.0 - z) * hh
        steps.append({"h_prev": h, "pre_z": mx_z + mh_z, "pre_r": mx_r + mh_r, "pre_h": pre_h, "mh_h": mh_h})
        m = valid[:, t, None]
        h = np.where(m, h_new, h)
        outputs[:, t] = np.where(has_out[:, t, None], h, 0.0)
    return {
        "outputs": outputs,
        "h": h,
        "steps": steps,
        "xs": xs,
        "kernel": k,
        "recurrent_kernel": u,
        "valid": valid,
        "has_out": has_out,
        "act": act,
        "ract": ract,
        "mx": mx_m,
        "mh": mh_m,
    }


def gru_forward(
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any = None,
    h0: Any = None,
    lengths: Any = None,
    activation: str | None = "tanh",
    recurrent_activation: str | None = "sigmoid",
    go_backwards: bool = False,
    reset_after: bool = True,
    input_masks: Any = None,
    recurrent_masks: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Keras ``GRU(return_sequences=True, return_state=True)``: ``(outputs (B,T,H), h_last)``.
    ``input_masks`` (3, B, F) / ``recurrent_masks`` (3, B, H): per-gate dropout masks (training with
    ``recurrent_dropout``); the update ``z * h + (1 - z) * hh`` keeps the unmasked ``h``."""
    s = _gru_scan(
        "gru_forward",
        x,
        kernel,
        recurrent_kernel,
        bias,
        h0,
        lengths,
        activation,
        recurrent_activation,
        go_backwards,
        reset_after,
        input_masks,
        recurrent_masks,
    )
    return s["outputs"], s["h"]


def gru_backward(
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any,
    h0: Any,
    lengths: Any,
    activation: str | None,
    recurrent_activation: str | None,
    go_backwards: bool,
    reset_after: bool,
    d_outputs: Any,
    d_h_last: Any = None,
    input_masks: Any = None,
    recurrent_masks: Any = None,
) -> dict[str, np.ndarray | None]:
    """Backpropagation through time of :func:`gru_forward`.

    ``d_outputs`` (B, T, H) is laid out like ``outputs``. Returns ``dx`` (original time order),
    ``dkernel``, ``drecurrent_kernel``, ``dbias`` (shaped like ``bias``; None when ``bias`` is None)
    and ``dh0``.
    """
    fn = "gru_backward"
    s = _gru_scan(
        fn,
        x,
        kernel,
        recurrent_kernel,
        bias,
        h0,
        lengths,
        activation,
        recurrent_activation,
        go_backwards,
        reset_after,
        input_masks,
        recurrent_masks,
    )
    outputs = s["outputs"]
    B, T, H = outputs.shape
    k, u, xs, act, ract = s["kernel"], s["recurrent_kernel"], s["xs"], s["act"], s["ract"]
    mx_m, mh_m = s["mx"], s["mh"]
    d_out = _upstream(fn, d_outputs, (B, T, H), "d_outputs")
    dh = _upstream(fn, d_h_last, (B, H), "d_h_last").copy()

    dxs = np.zeros(xs.shape)
    dk = np.zeros(k.shape)
    du = np.zeros(u.shape)
    db_in = np.zeros(3 * H)
    db_rec = np.zeros(3 * H)
    for t in reversed(range(T)):
        dh = dh + np.where(s["has_out"][:, t, None], d_out[:, t], 0.0)
        st = s["steps"][t]
        h_prev = st["h_prev"]
        z = _act(st["pre_z"], ract)
        r = _act(st["pre_r"], ract)
        hh = _act(st["pre_h"], act)
        # h' = z * h + (1 - z) * hh
        d_pre_z = _act_grad(st["pre_z"], dh * (h_prev - hh), ract)
        d_pre_h = _act_grad(st["pre_h"], dh * (1.0 - z), act)
        dh_prev = dh * z
        if reset_after:
            # pre_h = mx_h + r * mh_h,  mh = h @ U + b_rec
            d_pre_r = _act_grad(st["pre_r"], d_pre_h * st["mh_h"], ract)
            d_mh = np.concatenate([d_pre_z, d_pre_r, d_pre_h * r], axis=1)
            d_mx = np.concatenate([d_pre_z, d_pre_r, d_pre_h], axis=1)
            m = s["valid"][:, t, None]
            d_mh = np.where(m, d_mh, 0.0)
            d_mx = np.where(m, d_mx, 0.0)
            du += _gate_matmul_grad_w(h_prev, d_mh, mh_m, 3)
            db_rec += d_mh.sum(axis=0)
            dh_prev = dh_prev + _gate_matmul_grad_v(d_mh, u, mh_m, 3)
        else:
            # pre_h = mx_h + (r * h) @ U_h,  pre_{z,r} = mx_{z,r} + h @ U_{z,r}
            u_zr, u_h = u[:, : 2 * H], u[:, 2 * H :]
            h_prev_h = _gate_in(h_prev, mh_m, 2)  # what the h block's product saw
            d_rh = d_pre_h @ u_h.T
            d_pre_r = _act_grad(st["pre_r"], d_rh * h_prev_h, ract)
            d_zr = np.concatenate([d_pre_z, d_pre_r], axis=1)
            d_mx = np.concatenate([d_pre_z, d_pre_r, d_pre_h], axis=1)
            m = s["valid"][:, t, None]
            d_zr = np.where(m, d_zr, 0.0)
            d_mx = np.where(m, d_mx, 0.0)
            d_pre_h_m = np.where(m, d_pre_h, 0.0)
            du[:, : 2 * H] += _gate_matmul_grad_w(h_prev, d_zr, mh_m, 2)
            du[:, 2 * H :] += (r * h_prev_h).T @ d_pre_h_m
            dh_prev = dh_prev + _gate_in(d_rh * r, mh_m, 2) + _gate_matmul_grad_v(d_zr, u_zr, mh_m, 2)
        dxs[:, t] = _gate_matmul_grad_v(d_mx, k, mx_m, 3)
        dk += _gate_matmul_grad_w(xs[:, t], d_mx, mx_m, 3)
        db_in += d_mx.sum(axis=0)
        dh = np.where(m, dh_prev, dh)  # masked step: gradient passes through unchanged
    dbias: np.ndarray | None = None
    if bias is not None:
        dbias = np.stack([db_in, db_rec]) if reset_after else db_in
    return {
        "dx": _processing_order(dxs, go_backwards).copy(),
        "dkernel": dk,
        "drecurrent_kernel": du,
        "dbias": dbias,
        "dh0": dh,
    }


# ------------------------------------------------------------------------------ PyTorch layout converters


# The PyTorch layout converters live in the library (seqcore.convert); re-exported here because the
# reference tests check them against the torch goldens.
from .convert import gru_from_torch, gru_to_torch, lstm_from_torch, lstm_to_torch  # noqa: E402
