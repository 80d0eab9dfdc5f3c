"""Normalization layers on the Rust kernels of ``rust/src/kernels/norm.rs``: ``LayerNormalization``
and ``RMSNormalization`` (statistics over each sample's normalized axes) and
``BatchNormalization`` (statistics over the batch, and time, per channel; moving statistics for
inference). Formulas, arguments, defaults and weight order are Keras 3's.

The kernels work on ``(rows, cols)`` matrices: the normalized axes (LayerNormalization) or the
channel axis (BatchNormalization) are moved last and every other axis is folded into rows. When
they already are last, which is the usual case, that is a free reshape; otherwise one transposed
copy each way.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .. import _masks, _seqcore, constraints, initializers, regularizers
from .._validation import as_f32
from .base import Layer, Shape, assign_state, shape_str, unused_input_grad


def _axes(axis: Any, who: str) -> list[int]:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer, list, tuple)):
        raise TypeError(f"{who}: axis must be an int or a list/tuple of ints; received {axis!r}.")
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    if not axes or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in axes):
        raise TypeError(f"{who}: axis must be an int or a non-empty list of ints; received {axis!r}.")
    return [int(a) for a in axes]


def _resolve(axes: list[int], rank: int, who: str, shape: tuple[Any, ...]) -> list[int]:
    """Axes (Keras's, counting the batch axis) as sorted non-negative indices into a full shape."""
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise ValueError(
                f"{who}: axis {a} is out of bounds for input shape {shape_str(shape)} (rank {rank}). Received: "
                f"axis={axes if len(axes) > 1 else axes[0]}"
            )
        out.append(a % rank)
    if len(set(out)) != len(out):
        raise ValueError(f"{who}: axis {axes} names an axis twice.")
    return sorted(out)


class _AffineOptions:
    """The initializers, regularizers and constraints of a normalization's gamma (scale) and beta
    (offset), as Keras's LayerNormalization, BatchNormalization and GroupNormalization take them."""

    beta_initializer: Any
    gamma_initializer: Any
    beta_regularizer: Any
    gamma_regularizer: Any
    beta_constraint: Any
    gamma_constraint: Any

    def _set_affine_options(self, beta_init: Any, gamma_init: Any, beta_reg: Any, gamma_reg: Any, beta_con: Any,
                            gamma_con: Any) -> None:  # fmt: skip
        self.beta_initializer = initializers.get(beta_init)
        self.gamma_initializer = initializers.get(gamma_init)
        self.beta_regularizer = regularizers.get(beta_reg)
        self.gamma_regularizer = regularizers.get(gamma_reg)
        self.beta_constraint = constraints.get(beta_con)
        self.gamma_constraint = constraints.get(gamma_con)

    def _affine_weight(self, name: str, shape: tuple[int, ...]) -> Any:
        """The ``gamma`` or ``beta`` weight, with that parameter's initializer, regularizer, constraint."""
        return self.add_weight(  # type: ignore[attr-defined]
            name, shape, getattr(self, f"{name}_initializer"), getattr(self, f"{name}_regularizer"),
            constraint=getattr(self, f"{name}_constraint"),
        )  # fmt: skip

    def _affine_config(self) -> dict[str, Any]:
        return {
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": constraints.serialize(self.beta_constraint),
            "gamma_constraint": constraints.serialize(self.gamma_constraint),
        }


class _Fold:
    """``x`` as a ``(rows, cols)`` matrix with the ``last`` axes as columns, and back."""

    def __init__(self, shape: tuple[int, ...], last: list[int]):
        n = len(shape)
        self.shape = shape
        self.perm = [i for i in range(n) if i not in last] + last
        self.identity = self.perm == list(range(n))
        self.moved = tuple(shape[i] for i in self.perm)
        self.cols = int(np.prod([shape[i] for i in last], dtype=np.int64))
        self.nrows = int(np.prod(self.moved[: n - len(last)], dtype=np.int64))

    def rows(self, a: np.ndarray) -> np.ndarray:
        if not self.identity:
            a = np.ascontiguousarray(a.transpose(self.perm))
        return a.reshape(self.nrows, self.cols)

    def back(self, a: np.ndarray) -> np.ndarray:
        a = a.reshape(self.moved)
        return a if self.identity else np.ascontiguousarray(a.transpose(np.argsort(self.perm)))


class _RowNorm(Layer):
    """What LayerNormalization and RMSNormalization share: statistics over the ``axis`` of each
    sample, a scale (and for LayerNormalization an offset) of the shape of those axes."""

    propagates_mask = True  # Keras: supports_masking, the mask passes through unchanged
    _center_stats = True
    _center_out = True
    epsilon: float
    _built_shape: tuple[int, ...] = ()

    def _setup_axes(self, axis: Any) -> None:
        self._axis_arg = _axes(axis, self._who)
        self.axis: Any = axis if isinstance(axis, (int, np.integer)) else list(axis)

    @property
    def _who(self) -> str:
        return f"{type(self).__name__} {self.name!r}"

    def _param_shape(self, input_shape: Shape) -> tuple[int, ...]:
        full = (None, *input_shape)
        self._full_axes = _resolve(self._axis_arg, len(full), self._who, full)
        if 0 in self._full_axes:
            raise ValueError(f"{self._who}: axis 0 is the batch axis, whose size is not fixed; normalize other axes.")
        dims = [full[i] for i in self._full_axes]
        if any(d is None for d in dims):
            raise ValueError(
                f"{self._who}: the normalized axes {self._axis_arg} must have known sizes to build the weights; "
                f"received input shape {shape_str(full)}."
            )
        # Keras keeps the axes as a sorted list once built (its get_config then shows a list).
        self.axis = sorted(self._axis_arg)
        return tuple(int(d) for d in dims)  # type: ignore[arg-type]

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def _check(self, x: np.ndarray) -> _Fold:
        axes = _resolve(self._axis_arg, x.ndim, self._who, x.shape)
        want = tuple(self._gamma_shape())
        got = tuple(x.shape[i] for i in axes)
        if want and got != want:
            raise ValueError(
                f"{self._who}: built for normalized axes of size {want}; received an input of shape {x.shape} "
                f"(sizes {got} on axis {self._axis_arg})."
            )
        return _Fold(tuple(x.shape), axes)

    def _gamma_shape(self) -> tuple[int, ...]:
        w = self._scale_weight()
        return w.shape if w is not None else tuple(self._built_shape)

    def _scale_weight(self) -> Any:
        return None

    def _offset_weight(self) -> Any:
        return None

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, self._who, "inputs")
        fold = self._check(x)
        g, b = self._scale_weight(), self._offset_weight()
        x2 = fold.rows(x)
        y, mean, rstd = _seqcore.row_norm_forward(
            x2,
            None if g is None else g.value.reshape(-1),
            None if b is None else b.value.reshape(-1),
            float(self.epsilon),
            self._center_stats,
            self._center_out,
        )
        return fold.back(y), ((x2, mean, rstd, fold) if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        if ctx is None:
            raise RuntimeError(f"{self._who}: backward without a training forward.")
        x2, mean, rstd, fold = ctx
        g, b = self._scale_weight(), self._offset_weight()
        want_g = g is not None and g.trainable
        want_b = b is not None and b.trainable
        dx, dg, db = _seqcore.row_norm_backward(
            x2,
            fold.rows(as_f32(dy, self._who, "dy")),
            None if g is None else g.value.reshape(-1),
            mean,
            rstd,
            self._center_stats,
            self._center_out,
            need_dx,
            want_g,
            want_b,
        )
        if want_g and dg is not None:
            g.add_grad(dg.reshape(g.shape))
        if want_b and db is not None:
            b.add_grad(db.reshape(b.shape))
        return fold.back(dx) if dx is not None else unused_input_grad(fold.shape)


class LayerNormalization(_AffineOptions, _RowNorm):
    """Keras's LayerNormalization: ``(x - mean) / sqrt(var + epsilon) * gamma + beta`` with the
    statistics over ``axis`` (default the last) of each sample. ``rms_scaling=True`` is Keras's
    deprecated option, with Keras's formula: ``x / sqrt(var + epsilon) * gamma`` (the variance, not
    the mean square, and no centring; ``RMSNormalization`` is the real RMS norm)."""

    def __init__(
        self,
        axis: Any = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ):
        rms_scaling = bool(kwargs.pop("rms_scaling", False))
        if rms_scaling:
            warnings.warn(
                "You passed `rms_scaling=True`, which is deprecated (as in Keras). It scales the input by the "
                "variance, not the root mean square; for RMS normalization use seqcore.layers.RMSNormalization.",
                UserWarning,
                stacklevel=2,
            )
        super().__init__(**kwargs)
        self._setup_axes(axis)
        self.epsilon = float(epsilon)
        if not self.epsilon >= 0:
            raise ValueError(f"{self._who}: epsilon must be >= 0; received {epsilon!r}.")
        self.center = bool(center)
        self.scale = bool(scale)
        self.rms_scaling = rms_scaling
        self._center_out = not rms_scaling
        self._set_affine_options(beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer,
                            beta_constraint, gamma_constraint)  # fmt: skip
        self.gamma: Any = None
        self.beta: Any = None

    def build(self, input_shape: Shape) -> None:
        shape = self._param_shape(input_shape)
        self._built_shape = shape
        if self.scale or self.rms_scaling:
            self.gamma = self._affine_weight("gamma", shape)
        if self.center and not self.rms_scaling:
            self.beta = self._affine_weight("beta", shape)

    def _scale_weight(self) -> Any:
        return self.gamma

    def _offset_weight(self) -> Any:
        return self.beta

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "rms_scaling": self.rms_scaling,
            **self._affine_config(),
        }


class RMSNormalization(_RowNorm):
    """Keras's RMSNormalization: ``x / sqrt(mean(x²) + epsilon) * scale`` over ``axis`` (default
    the last) of each sample; one weight, ``scale``, initialized to ones."""

    _center_stats = False
    _center_out = False

    def __init__(self, axis: Any = -1, epsilon: float = 1e-6, **kwargs: Any):
        super().__init__(**kwargs)
        self._setup_axes(axis)
        self.epsilon = float(epsilon)
        if not self.epsilon >= 0:
            raise ValueError(f"{self._who}: epsilon must be >= 0; received {epsilon!r}.")
        self.scale: Any = None

    def build(self, input_shape: Shape) -> None:
        shape = self._param_shape(input_shape)
        self._built_shape = shape
        self.scale = self.add_weight("scale", shape, "ones")

    def _scale_weight(self) -> Any:
        return self.scale

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


class BatchNormalization(_AffineOptions, Layer):
    """Keras's BatchNormalization. In training (``training=True`` and the layer trainable) each
    channel of ``axis`` is normalized with the batch's mean and (biased) variance over every other
    axis, masked steps excluded as Keras excludes them, and the moving statistics move by
    ``moving = moving * momentum + batch * (1 - momentum)``; in inference, and whenever the layer is
    frozen (``trainable = False``, as in Keras 3), the moving statistics are used. Weights, in
    Keras's order: gamma, beta (trainable), moving_mean, moving_variance (non-trainable, counted as
    non-trainable parameters in ``summary()``). Inside ``fit`` the moving statistics are written with
    the optimizer's update, so a step refused for a non-finite loss leaves them as they were."""

    propagates_mask = True
    uses_mask = True

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        synchronized: bool = False,
        renorm: bool = False,
        renorm_clipping: Any = None,
        renorm_momentum: float = 0.99,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        who = f"BatchNormalization {self.name!r}"
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"{who}: axis must be an int (the channel axis); received {axis!r}.")
        if renorm:
            raise ValueError(
                f"{who}: renorm=True (batch renormalization) is not supported by seqcore yet; use renorm=False."
            )
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"{who}: momentum must be in [0, 1]; received {momentum!r}.")
        if not float(epsilon) >= 0:
            raise ValueError(f"{who}: epsilon must be >= 0; received {epsilon!r}.")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        # One process holds the whole batch, so a synchronized BatchNormalization is the plain one.
        self.synchronized = bool(synchronized)
        self.renorm = False
        self.renorm_clipping = renorm_clipping
        self.renorm_momentum = float(renorm_momentum)
        self._set_affine_options(beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer,
                            beta_constraint, gamma_constraint)  # fmt: skip
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.gamma: Any = None
        self.beta: Any = None

    @property
    def _who(self) -> str:
        return f"BatchNormalization {self.name!r}"

    def build(self, input_shape: Shape) -> None:
        full = (None, *input_shape)
        (ax,) = _resolve([self.axis], len(full), self._who, full)
        if ax == 0:
            raise ValueError(f"{self._who}: axis 0 is the batch axis; give the channel axis (default -1).")
        if full[ax] is None:
            raise ValueError(
                f"{self._who}: the channel axis {self.axis} must have a known size to build the weights; received "
                f"input shape {shape_str(full)}."
            )
        n = (int(full[ax]),)  # type: ignore[arg-type]
        if self.scale:
            self.gamma = self._affine_weight("gamma", n)
        if self.center:
            self.beta = self._affine_weight("beta", n)
        self.moving_mean = self.add_weight("moving_mean", n, self.moving_mean_initializer, trainable=False)
        self.moving_variance = self.add_weight("moving_variance", n, self.moving_variance_initializer, trainable=False)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def forward(self, x: np.ndarray, training: bool = False, lengths: Any = None) -> tuple[np.ndarray, Any]:
        x = as_f32(x, self._who, "inputs")
        (ax,) = _resolve([self.axis], x.ndim, self._who, x.shape)
        if x.shape[ax] != self.moving_mean.shape[0]:
            raise ValueError(
                f"{self._who}: built for {self.moving_mean.shape[0]} channels on axis {self.axis}; received an input "
                f"of shape {x.shape}."
            )
        fold = _Fold(tuple(x.shape), [ax])
        x2 = fold.rows(x)
        steps = 0
        if lengths is not None:
            if x.ndim != 3 or ax != 2:
                raise ValueError(
                    f"{self._who}: a mask (from Masking or Embedding(mask_zero=True)) reaches it with an input of "
                    f"shape {x.shape} normalized over axis {self.axis}; seqcore excludes masked steps for "
                    f"(batch, steps, channels) inputs with axis=-1 only."
                )
            steps = x.shape[1]
            lengths = _masks.normalize(lengths, x.shape[0], steps, self._who)
        g = None if self.gamma is None else self.gamma.value
        b = None if self.beta is None else self.beta.value
        batch_stats = bool(training) and self.trainable
        if batch_stats:
            mean, var, denom = _seqcore.batch_norm_moments(x2, lengths, steps)
            m = np.float32(self.momentum)
            assign_state(self.moving_mean, self.moving_mean.value * m + mean * (np.float32(1.0) - m))
            assign_state(self.moving_variance, self.moving_variance.value * m + var * (np.float32(1.0) - m))
        else:
            mean, var, denom = self.moving_mean.value, self.moving_variance.value, 0.0
        y, rstd = _seqcore.batch_norm_forward(x2, mean, var, g, b, self.epsilon)
        ctx = (x2, mean, rstd, batch_stats, lengths, steps, denom, fold) if training else None
        return fold.back(y), ctx

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        if ctx is None:
            raise RuntimeError(f"{self._who}: backward without a training forward.")
        x2, mean, rstd, batch_stats, lengths, steps, denom, fold = ctx
        want_g = self.gamma is not None and self.gamma.trainable
        want_b = self.beta is not None and self.beta.trainable
        dx, dg, db = _seqcore.batch_norm_backward(
            x2,
            fold.rows(as_f32(dy, self._who, "dy")),
            mean,
            rstd,
            None if self.gamma is None else self.gamma.value,
            batch_stats,
            lengths,
            steps,
            float(denom),
            need_dx,
            want_g,
            want_b,
        )
        if want_g and dg is not None:
            self.gamma.add_grad(dg)
        if want_b and db is not None:
            self.beta.add_grad(db)
        return fold.back(dx) if dx is not None else unused_input_grad(fold.shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            **self._affine_config(),
            "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
            "synchronized": self.synchronized,
            "renorm": False,
            "renorm_clipping": self.renorm_clipping,
            "renorm_momentum": self.renorm_momentum,
        }


class GroupNormalization(_AffineOptions, Layer):
    """Keras's GroupNormalization: the channels of ``axis`` are split into ``groups`` groups and each
    sample is normalized over every non-batch axis within a group, then scaled and shifted per
    channel (``groups=-1``: one group per channel, instance normalization). The statistics run on
    the row-norm kernel, one row per (sample, group); the per-channel gamma and beta are applied
    around it."""

    propagates_mask = True

    def __init__(
        self,
        groups: int = 32,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or (groups <= 0 and groups != -1):
            raise ValueError(
                f"{self._who}: groups must be a positive int, or -1 for instance normalization; received "
                f"groups={groups!r}."
            )
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"{self._who}: axis must be an int (the channel axis); received {axis!r}.")
        self.groups = int(groups)
        self.axis = int(axis)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self._set_affine_options(beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer,
                            beta_constraint, gamma_constraint)  # fmt: skip
        self.gamma: Any = None
        self.beta: Any = None

    @property
    def _who(self) -> str:
        return f"GroupNormalization {self.name!r}"

    def build(self, input_shape: Shape) -> None:
        full = (None, *input_shape)
        (ax,) = _resolve([self.axis], len(full), self._who, full)
        dim = full[ax]
        if ax == 0 or dim is None:
            raise ValueError(
                f"{self._who}: axis {self.axis} of the input must be a channel axis of known size; received input "
                f"shape {shape_str(full)}."
            )
        if self.groups == -1:
            self.groups = int(dim)
        if dim < self.groups or dim % self.groups:
            raise ValueError(
                f"{self._who}: the {dim} channels cannot be split into {self.groups} equal groups; pick groups that "
                f"divide {dim}."
            )
        n = (int(dim),)
        if self.scale:
            self.gamma = self._affine_weight("gamma", n)
        if self.center:
            self.beta = self._affine_weight("beta", n)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def _grouped(self, x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...], list[int], int]:
        """x as (batch, groups, everything else in the group) rows, with what undoes it."""
        (ax,) = _resolve([self.axis], x.ndim, self._who, x.shape)
        c = x.shape[ax]
        xm = np.moveaxis(x, ax, -1)  # (B, ..., C)
        moved = xm.shape
        xg = xm.reshape(*moved[:-1], self.groups, c // self.groups)  # (B, ..., G, C/G)
        perm = [0, xg.ndim - 2, *range(1, xg.ndim - 2), xg.ndim - 1]  # (B, G, ..., C/G)
        rows = np.ascontiguousarray(xg.transpose(perm)).reshape(x.shape[0] * self.groups, -1)
        return rows, moved, perm, ax

    def _ungrouped(self, rows: np.ndarray, moved: tuple[int, ...], perm: list[int], ax: int) -> np.ndarray:
        g = self.groups
        shape_g = (*moved[:-1], g, moved[-1] // g)
        back = rows.reshape(tuple(shape_g[i] for i in perm)).transpose(np.argsort(perm)).reshape(moved)
        return np.ascontiguousarray(np.moveaxis(back, -1, ax))

    def _channel_view(self, v: np.ndarray, ndim: int, ax: int) -> np.ndarray:
        shape = [1] * ndim
        shape[ax] = v.shape[0]
        return v.reshape(shape)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, self._who, "inputs")
        rows, moved, perm, ax = self._grouped(x)
        if rows.size == 0:  # nothing to normalize
            return x.copy(), ((rows, None, None, moved, perm, ax, x.copy()) if training else None)
        xhat_rows, mean, rstd = _seqcore.row_norm_forward(rows, None, None, self.epsilon, True, True)
        xhat = self._ungrouped(xhat_rows, moved, perm, ax)
        y = xhat
        if self.gamma is not None:
            y = y * self._channel_view(self.gamma.value, x.ndim, ax)
        if self.beta is not None:
            y = y + self._channel_view(self.beta.value, x.ndim, ax)
        y = np.ascontiguousarray(y, dtype=np.float32)
        return y, ((rows, mean, rstd, moved, perm, ax, xhat) if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        if ctx is None:
            raise RuntimeError(f"{self._who}: backward without a training forward.")
        rows, mean, rstd, moved, perm, ax, xhat = ctx
        dy = as_f32(dy, self._who, "dy")
        red = tuple(i for i in range(dy.ndim) if i != ax)
        if self.gamma is not None and self.gamma.trainable:
            self.gamma.add_grad((dy * xhat).sum(axis=red, dtype=np.float64).astype(np.float32))
        if self.beta is not None and self.beta.trainable:
            self.beta.add_grad(dy.sum(axis=red, dtype=np.float64).astype(np.float32))
        if not need_dx or mean is None:
            return unused_input_grad(dy.shape) if not need_dx else np.zeros_like(dy)
        dxhat = dy if self.gamma is None else dy * self._channel_view(self.gamma.value, dy.ndim, ax)
        drows = self._grouped(np.ascontiguousarray(dxhat, dtype=np.float32))[0]
        dx_rows, _, _ = _seqcore.row_norm_backward(rows, drows, None, mean, rstd, True, True, True, False, False)
        assert dx_rows is not None  # need_dx=True
        return self._ungrouped(dx_rows, moved, perm, ax)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "groups": self.groups,
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            **self._affine_config(),
        }


class UnitNormalization(Layer):
    """Keras's UnitNormalization: each sample scaled to unit L2 norm over ``axis``,
    ``x * min(1/sqrt(sum(x²)), 1e12)`` (Keras's ``ops.normalize``). No weights; memory-bound and
    computed with NumPy in float32."""

    propagates_mask = True
    _EPSILON = 1e-12

    def __init__(self, axis: Any = -1, **kwargs: Any):
        super().__init__(**kwargs)
        self._axis_arg = _axes(axis, f"UnitNormalization {self.name!r}")
        self.axis: Any = axis if isinstance(axis, (int, np.integer)) else list(axis)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def build(self, input_shape: Shape) -> None:
        full = (None, *input_shape)
        _resolve(self._axis_arg, len(full), f"UnitNormalization {self.name!r}", full)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        x = as_f32(x, f"UnitNormalization {self.name!r}", "inputs")
        axes = tuple(_resolve(self._axis_arg, x.ndim, f"UnitNormalization {self.name!r}", x.shape))
        sq = np.sum(np.square(x), axis=axes, keepdims=True, dtype=np.float32)
        with np.errstate(divide="ignore"):
            inv = np.minimum(1.0 / np.sqrt(sq), np.float32(1.0 / self._EPSILON)).astype(np.float32)
        y = np.ascontiguousarray(x * inv)
        return y, ((y, inv, axes, sq) if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray:
        y, inv, axes, sq = ctx
        if not need_dx:
            return unused_input_grad(y.shape)
        dy = np.asarray(dy, np.float32)
        # Unclamped: d(x/|x|) = (dy - y·Σ(dy·y)) / |x|; where the clamp held, inv is a constant.
        proj = np.sum(dy * y, axis=axes, keepdims=True, dtype=np.float32)
        clamped = inv >= np.float32(1.0 / self._EPSILON)
        dx = np.where(clamped, dy * inv, (dy - y * proj) * inv)
        return np.ascontiguousarray(dx, dtype=np.float32)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}
