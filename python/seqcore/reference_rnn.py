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
* Mask: ``lengths[b]`` means Keras mask ``m[b, t] = t < lengths[b]`` on the ORIGINAL time index t (a
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
) -> dict[str, Any]:
    x, k, u = _inputs(fn, x, kernel, recurrent_kernel, 4)
    B, T, _ = x.shape
    H = u.shape[0]
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
        z = xs[:, t] @ k + h @ u + b
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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras ``LSTM(return_sequences=True, return_state=True)``: ``(outputs (B,T,H), h_last, c_last)``."""
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
    )
    outputs = s["outputs"]
    B, T, H = outputs.shape
    k, u, xs, act, ract = s["kernel"], s["recurrent_kernel"], s["xs"], s["act"], s["ract"]
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
        dxs[:, t] = dz @ k.T
        dk += xs[:, t].T @ dz
        du += st["h_prev"].T @ dz
        db += dz.sum(axis=0)
        # masked step: state gradients pass through unchanged
        dh = np.where(m, dz @ u.T, dh)
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
) -> dict[str, Any]:
    x, k, u = _inputs(fn, x, kernel, recurrent_kernel, 3)
    B, T, _ = x.shape
    H = u.shape[0]
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
        mx = xs[:, t] @ k + b_in
        mx_z, mx_r, mx_h = np.split(mx, 3, axis=1)
        if reset_after:
            mh = h @ u + b_rec
            mh_z, mh_r, mh_h = np.split(mh, 3, axis=1)
            z = _act(mx_z + mh_z, ract)
            r = _act(mx_r + mh_r, ract)
            pre_h = mx_h + r * mh_h
        else:
            mh = h @ u[:, : 2 * H]
            mh_z, mh_r = np.split(mh, 2, axis=1)
            mh_h = None
            z = _act(mx_z + mh_z, ract)
            r = _act(mx_r + mh_r, ract)
            pre_h = mx_h + (r * h) @ u[:, 2 * H :]
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
) -> tuple[np.ndarray, np.ndarray]:
    """Keras ``GRU(return_sequences=True, return_state=True)``: ``(outputs (B,T,H), h_last)``."""
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
    )
    outputs = s["outputs"]
    B, T, H = outputs.shape
    k, u, xs, act, ract = s["kernel"], s["recurrent_kernel"], s["xs"], s["act"], s["ract"]
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
            du += h_prev.T @ d_mh
            db_rec += d_mh.sum(axis=0)
            dh_prev = dh_prev + d_mh @ u.T
        else:
            # pre_h = mx_h + (r * h) @ U_h,  pre_{z,r} = mx_{z,r} + h @ U_{z,r}
            u_zr, u_h = u[:, : 2 * H], u[:, 2 * H :]
            d_rh = d_pre_h @ u_h.T
            d_pre_r = _act_grad(st["pre_r"], d_rh * h_prev, ract)
            d_zr = np.concatenate([d_pre_z, d_pre_r], axis=1)
            d_mx = np.concatenate([d_pre_z, d_pre_r, d_pre_h], axis=1)
            m = s["valid"][:, t, None]
            d_zr = np.where(m, d_zr, 0.0)
            d_mx = np.where(m, d_mx, 0.0)
            d_pre_h_m = np.where(m, d_pre_h, 0.0)
            du[:, : 2 * H] += h_prev.T @ d_zr
            du[:, 2 * H :] += (r * h_prev).T @ d_pre_h_m
            dh_prev = dh_prev + d_rh * r + d_zr @ u_zr.T
        dxs[:, t] = d_mx @ k.T
        dk += xs[:, t].T @ d_mx
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


def _array(a: Any) -> np.ndarray:
    """A NumPy view of an array or a (CPU) torch tensor, dtype unchanged."""
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # torch.Tensor, without importing torch
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _torch_weights(
    fn: str, gates: int, weight_ih: Any, weight_hh: Any, bias_ih: Any, bias_hh: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, int]:
    w_ih, w_hh = _array(weight_ih), _array(weight_hh)
    if w_ih.ndim != 2 or w_ih.shape[0] == 0 or w_ih.shape[0] % gates:
        raise ValueError(
            f"{fn}: weight_ih must have shape ({gates}*hidden_size, input_size); received {w_ih.shape}"
        )
    H = w_ih.shape[0] // gates
    if w_hh.shape != (gates * H, H):
        raise ValueError(
            f"{fn}: weight_hh must have shape ({gates * H}, {H}) = ({gates}*hidden_size, hidden_size) "
            f"to match weight_ih {w_ih.shape}; received {w_hh.shape}"
        )
    if (bias_ih is None) != (bias_hh is None):
        raise ValueError(f"{fn}: pass both bias_ih and bias_hh, or neither (a bias=False module)")
    if bias_ih is None:
        return w_ih, w_hh, None, None, H
    b_ih, b_hh = _array(bias_ih), _array(bias_hh)
    for name, b in (("bias_ih", b_ih), ("bias_hh", b_hh)):
        if b.shape != (gates * H,):
            raise ValueError(
                f"{fn}: {name} must have shape ({gates * H},) = ({gates}*hidden_size,); received {b.shape}"
            )
    return w_ih, w_hh, b_ih, b_hh, H


def _keras_weights(
    fn: str, gates: int, kernel: Any, recurrent_kernel: Any
) -> tuple[np.ndarray, np.ndarray, int]:
    k, u = _array(kernel), _array(recurrent_kernel)
    if u.ndim != 2 or u.shape[0] == 0 or u.shape[1] != gates * u.shape[0]:
        raise ValueError(f"{fn}: recurrent_kernel must have shape (units, {gates}*units); received {u.shape}")
    H = u.shape[0]
    if k.ndim != 2 or k.shape[1] != gates * H:
        raise ValueError(
            f"{fn}: kernel must have shape (input_dim, {gates * H}) = (input_dim, {gates}*units) "
            f"to match recurrent_kernel {u.shape}; received {k.shape}"
        )
    return k, u, H


def lstm_from_torch(
    weight_ih: Any, weight_hh: Any, bias_ih: Any = None, bias_hh: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """PyTorch ``nn.LSTM`` layer-0 weights -> Keras ``(kernel (F,4H), recurrent_kernel (H,4H), bias)``.

    Gate order is the same (PyTorch ``i, f, g, o`` = Keras ``i, f, c, o``); the matrices are
    transposed and the two biases summed (None for a ``bias=False`` module). Dtype is preserved.
    """
    w_ih, w_hh, b_ih, b_hh, _ = _torch_weights("lstm_from_torch", 4, weight_ih, weight_hh, bias_ih, bias_hh)
    bias = None if b_ih is None or b_hh is None else b_ih + b_hh
    return np.ascontiguousarray(w_ih.T), np.ascontiguousarray(w_hh.T), bias


def lstm_to_torch(
    kernel: Any, recurrent_kernel: Any, bias: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Keras LSTM weights -> PyTorch ``(weight_ih (4H,F), weight_hh (4H,H), bias_ih, bias_hh)``.

    The whole bias goes to ``bias_ih`` and ``bias_hh`` is zeros (both None when ``bias`` is None).
    Dtype is preserved.
    """
    fn = "lstm_to_torch"
    k, u, H = _keras_weights(fn, 4, kernel, recurrent_kernel)
    if bias is None:
        return np.ascontiguousarray(k.T), np.ascontiguousarray(u.T), None, None
    b = _array(bias)
    if b.shape != (4 * H,):
        raise ValueError(f"{fn}: bias must have shape ({4 * H},) = (4*units,); received {b.shape}")
    return np.ascontiguousarray(k.T), np.ascontiguousarray(u.T), b.copy(), np.zeros_like(b)


def _swap_zr(a: np.ndarray, H: int, axis: int) -> np.ndarray:
    """Swap the first two H-blocks along ``axis``: PyTorch ``r, z, n`` <-> Keras ``z, r, h``."""
    order = np.concatenate([np.arange(H, 2 * H), np.arange(0, H), np.arange(2 * H, 3 * H)])
    return np.ascontiguousarray(np.take(a, order, axis=axis))


def gru_from_torch(
    weight_ih: Any, weight_hh: Any, bias_ih: Any = None, bias_hh: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """PyTorch ``nn.GRU`` layer-0 weights -> Keras ``GRU(reset_after=True)`` weights.

    Returns ``(kernel (F,3H), recurrent_kernel (H,3H), bias (2,3H) or None)``: blocks reordered from
    PyTorch ``r, z, n`` to Keras ``z, r, h``, matrices transposed, ``bias[0] = bias_ih``,
    ``bias[1] = bias_hh`` (reordered). Exact; dtype is preserved.
    """
    w_ih, w_hh, b_ih, b_hh, H = _torch_weights("gru_from_torch", 3, weight_ih, weight_hh, bias_ih, bias_hh)
    kernel = _swap_zr(w_ih, H, axis=0).T
    recurrent_kernel = _swap_zr(w_hh, H, axis=0).T
    bias = None if b_ih is None or b_hh is None else np.stack([_swap_zr(b_ih, H, 0), _swap_zr(b_hh, H, 0)])
    return np.ascontiguousarray(kernel), np.ascontiguousarray(recurrent_kernel), bias


def gru_to_torch(
    kernel: Any, recurrent_kernel: Any, bias: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Keras ``GRU(reset_after=True)`` weights -> PyTorch ``(weight_ih, weight_hh, bias_ih, bias_hh)``.

    Inverse of :func:`gru_from_torch` (exact). A ``reset_after=False`` bias of shape (3H,) is
    rejected: that variant computes ``(r * h) @ U_h`` and has no PyTorch equivalent (without a bias
    the two variants cannot be told apart from the weights; only convert ``reset_after=True``).
    """
    fn = "gru_to_torch"
    k, u, H = _keras_weights(fn, 3, kernel, recurrent_kernel)
    w_ih = _swap_zr(k.T, H, axis=0)
    w_hh = _swap_zr(u.T, H, axis=0)
    if bias is None:
        return w_ih, w_hh, None, None
    b = _array(bias)
    if b.shape == (3 * H,):
        raise ValueError(
            f"{fn}: bias has shape {b.shape}, the Keras reset_after=False layout, which has no PyTorch "
            f"equivalent; expected ({2}, {3 * H}) = (2, 3*units) from a reset_after=True GRU"
        )
    if b.shape != (2, 3 * H):
        raise ValueError(f"{fn}: bias must have shape (2, {3 * H}) = (2, 3*units); received {b.shape}")
    return w_ih, w_hh, _swap_zr(b[0], H, 0), _swap_zr(b[1], H, 0)
