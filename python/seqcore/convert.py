"""Weight-layout converters between PyTorch and Keras/seqcore.

seqcore's canonical layout is Keras's: ``kernel (in, units*gates)``, LSTM gate blocks i, f, c, o, GRU
z, r, h, Conv1D ``kernel (kernel_size, in_channels/groups, filters)``. PyTorch stores weights transposed,
orders the GRU blocks r, z, n, keeps two biases and stores conv kernels as ``(out, in/groups, K)``.
All converters are exact, preserve dtype, accept NumPy arrays or (CPU) torch tensors without
importing torch, and name the function, the expected and the received shape when a shape is wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "conv1d_from_torch",
    "conv1d_to_torch",
    "dense_from_torch",
    "dense_to_torch",
    "gru_from_torch",
    "gru_to_torch",
    "lstm_from_torch",
    "lstm_to_torch",
]


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
        raise ValueError(f"{fn}: weight_ih must have shape ({gates}*hidden_size, input_size); received {w_ih.shape}")
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


def _keras_weights(fn: str, gates: int, kernel: Any, recurrent_kernel: Any) -> tuple[np.ndarray, np.ndarray, int]:
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


def dense_from_torch(weight: Any, bias: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """PyTorch ``nn.Linear`` ``(weight (out, in), bias (out,))`` -> Keras ``(kernel (in, out), bias)``."""
    w = _array(weight)
    if w.ndim != 2:
        raise ValueError(f"dense_from_torch: weight must have shape (out_features, in_features); received {w.shape}")
    b = None if bias is None else _array(bias)
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(
            f"dense_from_torch: bias must have shape ({w.shape[0]},) to match weight {w.shape}; received {b.shape}"
        )
    return np.ascontiguousarray(w.T), None if b is None else b.copy()


def dense_to_torch(kernel: Any, bias: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Keras ``(kernel (in, out), bias (out,))`` -> PyTorch ``nn.Linear`` ``(weight (out, in), bias)``."""
    k = _array(kernel)
    if k.ndim != 2:
        raise ValueError(f"dense_to_torch: kernel must have shape (in_features, units); received {k.shape}")
    b = None if bias is None else _array(bias)
    if b is not None and b.shape != (k.shape[1],):
        raise ValueError(
            f"dense_to_torch: bias must have shape ({k.shape[1]},) to match kernel {k.shape}; received {b.shape}"
        )
    return np.ascontiguousarray(k.T), None if b is None else b.copy()


def conv1d_from_torch(weight: Any, bias: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """PyTorch ``nn.Conv1d`` ``(weight (filters, C_in/groups, K), bias (filters,))`` -> Keras ``Conv1D``
    ``(kernel (K, C_in/groups, filters), bias)``.

    Both frameworks compute a cross-correlation (no kernel flip) and split grouped channels into
    contiguous blocks, so the conversion is a pure axis reversal; exact, dtype preserved. Padding,
    stride and dilation are layer options, not weights: see ``seqcore.interop.from_torch``.
    """
    w = _array(weight)
    if w.ndim != 3:
        raise ValueError(
            f"conv1d_from_torch: weight must have shape (out_channels, in_channels/groups, kernel_size); "
            f"received {w.shape}"
        )
    b = None if bias is None else _array(bias)
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(
            f"conv1d_from_torch: bias must have shape ({w.shape[0]},) = (out_channels,) to match weight {w.shape}; "
            f"received {b.shape}"
        )
    return np.ascontiguousarray(w.transpose(2, 1, 0)), None if b is None else b.copy()


def conv1d_to_torch(kernel: Any, bias: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Keras ``Conv1D`` ``(kernel (K, C_in/groups, filters), bias)`` -> PyTorch ``nn.Conv1d``
    ``(weight (filters, C_in/groups, K), bias)``. Inverse of :func:`conv1d_from_torch` (exact)."""
    k = _array(kernel)
    if k.ndim != 3:
        raise ValueError(
            f"conv1d_to_torch: kernel must have shape (kernel_size, in_channels/groups, filters); received {k.shape}"
        )
    b = None if bias is None else _array(bias)
    if b is not None and b.shape != (k.shape[2],):
        raise ValueError(
            f"conv1d_to_torch: bias must have shape ({k.shape[2]},) = (filters,) to match kernel {k.shape}; "
            f"received {b.shape}"
        )
    return np.ascontiguousarray(k.transpose(2, 1, 0)), None if b is None else b.copy()
