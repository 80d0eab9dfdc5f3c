"""Conv1D and 1-D pooling ops: validation and calls into the kernels. Re-exported by ``seqcore.kernels``.

Everything is channels-last, ``(batch, steps, channels)``, with Keras 3 semantics:

* Conv1D kernel layout is Keras's ``(kernel_size, in_channels // groups, filters)``, bias ``(filters,)``.
  A PyTorch ``Conv1d.weight`` is ``(filters, in_channels // groups, kernel_size)``: convert it with
  ``np.transpose(weight, (2, 1, 0))`` (groups included; both frameworks give group ``g`` the
  contiguous channel blocks ``g * C/groups ...``). Both compute a cross-correlation (no kernel flip).
* Padding: ``"valid"`` (none), ``"same"`` (output ``ceil(steps / strides)``; total padding
  ``max((out - 1) * strides + dilation_rate * (kernel_size - 1) + 1 - steps, 0)``, ``total // 2`` on the
  left and the rest, one more cell when odd, on the right, as TensorFlow/Keras do), ``"causal"``
  (``dilation_rate * (kernel_size - 1)`` on the left only; Conv1D only). Strides and dilation may be
  combined (Keras refuses that; PyTorch allows it).
* Pooling: ``strides`` defaults to ``pool_size``. Padded cells never count: max pooling treats them
  as -inf, average pooling divides by the number of real cells in each window (Keras/TF behaviour).
  Max pooling keeps nothing for its backward pass: :func:`max_pool1d_backward` recomputes each
  window's argmax from ``x`` and sends the gradient to the *first* (lowest-step) maximal cell when
  several tie; a NaN in a window is its maximum (it propagates, and the first NaN gets the gradient).
  Global pooling reduces over all steps and returns ``(batch, channels)`` (Keras ``keepdims=False``).

Inputs that are already C-contiguous float32 are used in place; anything else (float64, Fortran
order, strided views, lists) is converted once.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np

from . import _seqcore
from ._validation import activation_name, as_f32, require_shape

__all__ = [
    "Conv1DGrads",
    "avg_pool1d_backward",
    "avg_pool1d_forward",
    "conv1d_backward",
    "conv1d_forward",
    "conv1d_output_length",
    "global_avg_pool1d_backward",
    "global_avg_pool1d_forward",
    "global_max_pool1d_backward",
    "global_max_pool1d_forward",
    "max_pool1d_backward",
    "max_pool1d_forward",
    "pool1d_output_length",
]


CONV_PADDINGS = ("valid", "same", "causal")
POOL_PADDINGS = ("valid", "same")
_TORCH_HINT = (
    "A PyTorch Conv1d weight (filters, in_channels/groups, kernel_size) must be converted first: "
    "np.transpose(weight, (2, 1, 0))."
)


def _positive_int(value: Any, op: str, name: str) -> int:
    """A positive int; a 1-element tuple/list (Keras accepts ``strides=(2,)``) is unwrapped."""
    v = value
    if isinstance(v, (tuple, list)) and len(v) == 1:
        v = v[0]
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{op}: {name} must be a positive integer (or a 1-tuple of one); received {value!r}.")
    if int(v) <= 0:
        raise ValueError(f"{op}: {name} must be a positive integer; received {int(v)}.")
    return int(v)


def _padding(value: Any, op: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in allowed:
        extra = ""
        if isinstance(value, str) and value.lower() == "causal":
            extra = " Causal padding exists for Conv1D only."
        raise ValueError(f"{op}: padding must be one of {list(allowed)}; received {value!r}.{extra}")
    return value.lower()


def _window_geometry(
    op: str, length: int, size: int, strides: int, padding: str, dilation_rate: int, what: str
) -> tuple[int, int]:
    """(output length, left padding) of a 1-D window op; ValueError when ``valid`` has no window."""
    span = dilation_rate * (size - 1) + 1
    if padding == "valid":
        if length < span:
            if what == "pool_size":
                raise ValueError(
                    f"{op}: the input has {length} steps, fewer than pool_size {size} with "
                    f'padding="valid", so there is no output step; use padding="same" or a longer input.'
                )
            raise ValueError(
                f"{op}: the input has {length} steps, shorter than the dilated kernel ({span} = "
                f'dilation_rate {dilation_rate} * (kernel_size {size} - 1) + 1) with padding="valid"; '
                f'use padding="same" or "causal", or a longer input.'
            )
        return (length - span) // strides + 1, 0
    out = -(-length // strides)
    if padding == "same":
        total = max((out - 1) * strides + span - length, 0) if out else 0
        return out, total // 2
    return out, span - 1  # causal


def conv1d_output_length(
    length: int, kernel_size: int, strides: int = 1, padding: str = "valid", dilation_rate: int = 1
) -> int:
    """Output steps of a Conv1D over ``length`` steps: ``valid``: ``(length - span) // strides + 1``
    with ``span = dilation_rate * (kernel_size - 1) + 1`` (ValueError when ``length < span``);
    ``same`` and ``causal``: ``ceil(length / strides)``."""
    op = "conv1d_output_length"
    if isinstance(length, (bool, np.bool_)) or not isinstance(length, numbers.Integral) or length < 0:
        raise ValueError(f"{op}: length must be a non-negative integer; received {length!r}.")
    k = _positive_int(kernel_size, op, "kernel_size")
    s = _positive_int(strides, op, "strides")
    d = _positive_int(dilation_rate, op, "dilation_rate")
    p = _padding(padding, op, CONV_PADDINGS)
    return _window_geometry(op, int(length), k, s, p, d, "kernel_size")[0]


def pool1d_output_length(length: int, pool_size: int, strides: int | None = None, padding: str = "valid") -> int:
    """Output steps of a 1-D pooling: ``valid``: ``(length - pool_size) // strides + 1``; ``same``:
    ``ceil(length / strides)``. ``strides`` defaults to ``pool_size``."""
    op = "pool1d_output_length"
    if isinstance(length, (bool, np.bool_)) or not isinstance(length, numbers.Integral) or length < 0:
        raise ValueError(f"{op}: length must be a non-negative integer; received {length!r}.")
    p = _positive_int(pool_size, op, "pool_size")
    s = p if strides is None else _positive_int(strides, op, "strides")
    return _window_geometry(op, int(length), p, s, _padding(padding, op, POOL_PADDINGS), 1, "pool_size")[0]


def _sequence(x: Any, op: str, name: str = "x") -> np.ndarray:
    xa = as_f32(x, op, name)
    if xa.ndim != 3:
        hint = ""
        if xa.ndim == 2:
            hint = (
                f" For one sequence of shape {xa.shape} (steps, channels) add a batch axis: {name}[None]; "
                f"for one channel per step, add a channel axis: {name}[..., None]."
            )
        raise ValueError(
            f"{op}: `{name}` must be 3-D (batch, steps, channels), channels last; received shape {xa.shape}.{hint}"
        )
    return xa


def _conv_args(
    op: str, x: Any, kernel: Any, strides: Any, padding: Any, dilation_rate: Any, groups: Any
) -> tuple[np.ndarray, np.ndarray, int, str, int, int, int, int]:
    """Validated (x, kernel, strides, padding, dilation_rate, groups, out_steps, pad_left)."""
    xa = _sequence(x, op)
    s = _positive_int(strides, op, "strides")
    d = _positive_int(dilation_rate, op, "dilation_rate")
    g = _positive_int(groups, op, "groups")
    p = _padding(padding, op, CONV_PADDINGS)
    b, length, cin = xa.shape
    k = as_f32(kernel, op, "kernel")
    if k.ndim != 3:
        hint = (
            " A 2-D (in_channels, filters) kernel is a kernel_size-1 Conv1D: pass kernel[None]." if k.ndim == 2 else ""
        )
        raise ValueError(
            f"{op}: `kernel` must be 3-D (kernel_size, in_channels/groups, filters), Keras's Conv1D layout; "
            f"received shape {k.shape}.{hint} {_TORCH_HINT}"
        )
    ksize, kin, filters = k.shape
    if cin % g != 0:
        raise ValueError(
            f"{op}: x has {cin} channels (shape {xa.shape}), which groups={g} does not divide; "
            f"in_channels must be a multiple of groups."
        )
    if kin != cin // g:
        raise ValueError(
            f"{op}: kernel of shape {k.shape} has {kin} input channels per group, but x of shape {xa.shape} "
            f"with groups={g} needs {cin // g}: the kernel must be (kernel_size, {cin // g}, filters). "
            f"{_TORCH_HINT}"
        )
    if filters % g != 0:
        raise ValueError(
            f"{op}: kernel of shape {k.shape} has {filters} filters, which groups={g} does not divide; "
            f"filters must be a multiple of groups."
        )
    if ksize == 0:
        raise ValueError(f"{op}: kernel of shape {k.shape} has kernel_size 0; it must be positive.")
    out, pad = _window_geometry(op, length, ksize, s, p, d, "kernel_size")
    return xa, k, s, p, d, g, out, pad


def _bias(bias: Any, filters: int, k_shape: tuple[int, ...], op: str) -> np.ndarray | None:
    if bias is None:
        return None
    b = as_f32(bias, op, "bias")
    if b.shape != (filters,):
        raise ValueError(
            f"{op}: `bias` must have shape ({filters},), one value per filter of the kernel {k_shape}; "
            f"received shape {b.shape}. If the kernel is a PyTorch Conv1d weight, convert it first: "
            f"np.transpose(weight, (2, 1, 0))."
        )
    return b


def conv1d_forward(
    x: Any,
    kernel: Any,
    bias: Any | None = None,
    *,
    strides: int = 1,
    padding: str = "valid",
    dilation_rate: int = 1,
    groups: int = 1,
    activation: str | None = None,
) -> np.ndarray:
    """Keras ``Conv1D``: ``activation(conv1d(x, kernel) + bias)``.

    x: ``(batch, steps, in_channels)``; kernel: ``(kernel_size, in_channels // groups, filters)``;
    bias: ``(filters,)`` or None. Returns ``(batch, out_steps, filters)`` with ``out_steps`` from
    :func:`conv1d_output_length`. ``activation`` is one of the Keras names (softmax: over filters).
    """
    op = "conv1d_forward"
    act = activation_name(activation, op)
    xa, k, s, p, d, g, _, _ = _conv_args(op, x, kernel, strides, padding, dilation_rate, groups)
    b = _bias(bias, k.shape[2], k.shape, op)
    y: np.ndarray = _seqcore.conv1d_forward(xa, k, b, s, p, d, g, act)
    return y


class Conv1DGrads(NamedTuple):
    """Gradients of :func:`conv1d_forward` (``dx``/``dbias`` are None when not requested)."""

    dx: np.ndarray | None
    dkernel: np.ndarray
    dbias: np.ndarray | None


def conv1d_backward(
    x: Any,
    kernel: Any,
    y: Any,
    dy: Any,
    *,
    strides: int = 1,
    padding: str = "valid",
    dilation_rate: int = 1,
    groups: int = 1,
    activation: str | None = None,
    use_bias: bool = True,
    need_dx: bool = True,
) -> Conv1DGrads:
    """Gradients of ``y = conv1d_forward(x, kernel, bias, ...)`` given ``dy = dL/dy``.

    Pass the same ``strides``, ``padding``, ``dilation_rate``, ``groups`` and ``activation`` as to the
    forward call; ``y`` is its output (the activation's derivative is taken from it). Returns
    ``Conv1DGrads(dx (like x) or None, dkernel (like kernel), dbias (filters,) or None)``; ``dkernel``
    and ``dbias`` sum over the batch and every step. ``need_dx=False`` skips ``dx`` (first layer).
    """
    op = "conv1d_backward"
    act = activation_name(activation, op)
    xa, k, s, p, d, g, out, _ = _conv_args(op, x, kernel, strides, padding, dilation_rate, groups)
    out_shape = (xa.shape[0], out, k.shape[2])
    hint = "(the output of conv1d_forward with the same strides, padding, dilation_rate and groups)"
    ya = as_f32(y, op, "y")
    require_shape(ya, out_shape, op, "y", hint)
    dya = as_f32(dy, op, "dy")
    require_shape(dya, out_shape, op, "dy", "(the gradient of the loss by y; no broadcasting)")
    dx, dk, db = _seqcore.conv1d_backward(xa, k, ya, dya, s, p, d, g, act, bool(need_dx), bool(use_bias))
    return Conv1DGrads(dx, dk, db)


def _pool_args(op: str, pool_size: Any, strides: Any, padding: Any) -> tuple[int, int, str]:
    ps = _positive_int(pool_size, op, "pool_size")
    s = ps if strides is None else _positive_int(strides, op, "strides")
    return ps, s, _padding(padding, op, POOL_PADDINGS)


def _pool_dy(dy: Any, x_shape: tuple[int, ...], ps: int, s: int, p: str, op: str) -> np.ndarray:
    b, length, c = x_shape
    out, _ = _window_geometry(op, length, ps, s, p, 1, "pool_size")
    dya = as_f32(dy, op, "dy")
    require_shape(dya, (b, out, c), op, "dy", "(the gradient by the pooling output: same pool_size, strides, padding)")
    return dya


def _shape3(x: Any, op: str) -> tuple[int, int, int]:
    """The shape of ``x`` (an array, or anything NumPy reads as one), which must be 3-D."""
    shape = np.shape(x)
    if len(shape) != 3:
        raise ValueError(
            f"{op}: `x` must be 3-D (batch, steps, channels), channels last; received shape {tuple(shape)}."
        )
    return int(shape[0]), int(shape[1]), int(shape[2])


def max_pool1d_forward(x: Any, pool_size: int = 2, *, strides: int | None = None, padding: str = "valid") -> np.ndarray:
    """Keras ``MaxPooling1D`` on ``x (batch, steps, channels)`` -> ``(batch, out_steps, channels)``.
    ``strides`` defaults to ``pool_size``; padded cells act as -inf."""
    op = "max_pool1d_forward"
    xa = _sequence(x, op)
    ps, s, p = _pool_args(op, pool_size, strides, padding)
    _window_geometry(op, xa.shape[1], ps, s, p, 1, "pool_size")
    y: np.ndarray = _seqcore.pool1d_forward(xa, ps, s, p, False)
    return y


def max_pool1d_backward(
    x: Any, dy: Any, pool_size: int = 2, *, strides: int | None = None, padding: str = "valid"
) -> np.ndarray:
    """Gradient of :func:`max_pool1d_forward` by ``x``: each window's ``dy`` goes to its maximal cell
    (recomputed from ``x``; on ties the first, lowest-step one). Returns an array like ``x``."""
    op = "max_pool1d_backward"
    xa = _sequence(x, op)
    ps, s, p = _pool_args(op, pool_size, strides, padding)
    dya = _pool_dy(dy, xa.shape, ps, s, p, op)
    dx: np.ndarray = _seqcore.max_pool1d_backward(xa, dya, ps, s, p)
    return dx


def avg_pool1d_forward(x: Any, pool_size: int = 2, *, strides: int | None = None, padding: str = "valid") -> np.ndarray:
    """Keras ``AveragePooling1D`` on ``x (batch, steps, channels)`` -> ``(batch, out_steps, channels)``.
    ``strides`` defaults to ``pool_size``; with ``same`` the padded cells are not counted."""
    op = "avg_pool1d_forward"
    xa = _sequence(x, op)
    ps, s, p = _pool_args(op, pool_size, strides, padding)
    _window_geometry(op, xa.shape[1], ps, s, p, 1, "pool_size")
    y: np.ndarray = _seqcore.pool1d_forward(xa, ps, s, p, True)
    return y


def avg_pool1d_backward(
    x: Any, dy: Any, pool_size: int = 2, *, strides: int | None = None, padding: str = "valid"
) -> np.ndarray:
    """Gradient of :func:`avg_pool1d_forward` by ``x``: each window's ``dy`` is spread equally over
    its counted cells. Only the shape of ``x`` is used (it is not read or converted)."""
    op = "avg_pool1d_backward"
    shape = _shape3(x, op)
    ps, s, p = _pool_args(op, pool_size, strides, padding)
    dya = _pool_dy(dy, shape, ps, s, p, op)
    dx: np.ndarray = _seqcore.avg_pool1d_backward(dya, shape[1], ps, s, p)
    return dx


def _global_input(x: Any, op: str) -> np.ndarray:
    xa = _sequence(x, op)
    if xa.shape[1] == 0:
        raise ValueError(f"{op}: x has 0 steps (shape {xa.shape}); pooling over no steps is undefined.")
    return xa


def _global_dy(dy: Any, b: int, c: int, op: str) -> np.ndarray:
    dya = as_f32(dy, op, "dy")
    require_shape(dya, (b, c), op, "dy", "(batch, channels): the gradient by the global pooling output")
    return dya


def global_max_pool1d_forward(x: Any) -> np.ndarray:
    """Keras ``GlobalMaxPooling1D``: max over steps of ``x (batch, steps, channels)`` -> ``(batch, channels)``."""
    op = "global_max_pool1d_forward"
    y: np.ndarray = _seqcore.global_pool1d_forward(_global_input(x, op), False)
    return y


def global_max_pool1d_backward(x: Any, dy: Any) -> np.ndarray:
    """Gradient of :func:`global_max_pool1d_forward`: ``dy (batch, channels)`` goes to the first
    maximal step of each channel. Returns an array like ``x``."""
    op = "global_max_pool1d_backward"
    xa = _global_input(x, op)
    dya = _global_dy(dy, xa.shape[0], xa.shape[2], op)
    dx: np.ndarray = _seqcore.global_max_pool1d_backward(xa, dya)
    return dx


def global_avg_pool1d_forward(x: Any) -> np.ndarray:
    """Keras ``GlobalAveragePooling1D``: mean over steps -> ``(batch, channels)``."""
    op = "global_avg_pool1d_forward"
    y: np.ndarray = _seqcore.global_pool1d_forward(_global_input(x, op), True)
    return y


def global_avg_pool1d_backward(x: Any, dy: Any) -> np.ndarray:
    """Gradient of :func:`global_avg_pool1d_forward`: ``dy / steps`` at every step. Only the shape of
    ``x`` is used (it is not read or converted)."""
    op = "global_avg_pool1d_backward"
    b, length, c = _shape3(x, op)
    if length == 0:
        raise ValueError(f"{op}: x has 0 steps (shape {(b, length, c)}); pooling over no steps is undefined.")
    dya = _global_dy(dy, b, c, op)
    dx: np.ndarray = _seqcore.global_avg_pool1d_backward(dya, length)
    return dx
