"""Merge layers (Keras 3's names, arguments and formulas): ``Add``, ``Subtract``, ``Multiply``,
``Average``, ``Maximum``, ``Minimum``, ``Concatenate(axis)``, ``Dot(axes, normalize)``, and their
functional forms (``add``, ``concatenate``, ...). Each takes a list of tensors of one shape (or, for
Concatenate, shapes equal but on ``axis``); masks are ANDed (the shortest valid length)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Layer, Shape, shape_str


class _Merge(Layer):
    propagates_mask = True
    _min_inputs = 2

    def _check_list(self, inputs: Any) -> list[Any]:
        if not isinstance(inputs, (list, tuple)) or len(inputs) < self._min_inputs:
            n = len(inputs) if isinstance(inputs, (list, tuple)) else 1
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: expects a list of at least {self._min_inputs} inputs; "
                f"received {n}."
            )
        return list(inputs)

    def _merged_shape(self, shapes: list[tuple[int | None, ...]]) -> tuple[int | None, ...]:
        first = shapes[0]
        for s in shapes[1:]:
            if len(s) != len(first) or any(
                a is not None and b is not None and a != b for a, b in zip(first, s, strict=True)
            ):
                raise ValueError(
                    f"{type(self).__name__} {self.name!r}: inputs must have the same shape; received "
                    f"{' and '.join(shape_str(x) for x in shapes)}. Add a Dense or Reshape so they match."
                )
        return tuple(next((d for d in dims if d is not None), None) for dims in zip(*shapes, strict=True))

    def merge_input_masks(self, masks: list[Any]) -> Any:
        """Keras's Merge.compute_mask: a step is kept where any input keeps it (the longest length),
        and there is no mask unless every input has one."""
        if not masks or any(m is None for m in masks):
            return None
        out = masks[0]
        for m in masks[1:]:
            out = np.maximum(out, m)
        return out

    def symbolic_output(self, inputs: Any, **kwargs: Any) -> Any:
        shapes = [tuple(t.shape) for t in self._check_list(inputs)]
        self.built = True
        return self._merged_shape(shapes)

    def compute_output_shape(self, input_shape: Any) -> Shape:
        return self._merged_shape([tuple(s) for s in input_shape])

    def _eager_call(self, x: Any, training: Any = False, mask: Any = None, **kwargs: Any) -> Any:
        xs = [np.asarray(a, dtype=np.float32) for a in self._check_list(x)]
        self._merged_shape([(None, *a.shape[1:]) for a in xs])
        y, call = self.apply(xs, training=bool(training))
        self._activity_loss = call.activity_loss
        return y

    def forward(self, x: Any, training: bool = False) -> tuple[np.ndarray, Any]:
        xs = self._check_list(x)
        y = self._combine(xs)
        return y, (xs, y) if training else None

    def _combine(self, xs: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> list[np.ndarray]:
        xs, y = ctx
        return [np.ascontiguousarray(g, dtype=np.float32) for g in self._grads(xs, y, dy)]

    def _grads(self, xs: list[np.ndarray], y: np.ndarray, dy: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError


class Add(_Merge):
    def _combine(self, xs: list[np.ndarray]) -> np.ndarray:
        out = xs[0].copy()
        for a in xs[1:]:
            out += a
        return out

    def _grads(self, xs: list[np.ndarray], y: np.ndarray, dy: np.ndarray) -> list[np.ndarray]:
        return [dy] * len(xs)


class Subtract(_Merge):
    def _check_list(self, inputs: Any) -> list[Any]:
        xs = super()._check_list(inputs)
        if len(xs) != 2:
            raise ValueError(f"Subtract {self.name!r}: expects exactly 2 inputs; received {len(xs)}.")
        return xs

    def _combine(self, xs: list[np.ndarray]) -> np.ndarray:
        return xs[0] - xs[1]

    def _grads(self, xs: list[np.ndarray], y: np.ndarray, dy: np.ndarray) -> list[np.ndarray]:
        return [dy, -dy]


class Multiply(_Merge):
    def _combine(self, xs: list[np.ndarray]) -> np.ndarray:
        out = xs[0].copy()
        for a in xs[1:]:
            out *= a
        return out

    def _grads(self, xs: list[np.ndarray], y: np.ndarray, dy: np.ndarray) -> list[np.ndarray]:
        grads = []
        for i in range(len(xs)):
            g = dy.copy()
            for j, a in enumerate(xs):
                if j != i:
                    g *= a
            grads.append(g)
        return grads


class Average(_Merge):
    def _combine(self, xs: list[np.ndarray]) -> np.ndarray:
        return Add._combine(self, xs) / np.float32(len(xs))  # type: ignore[arg-type]

    def _grads(self, xs: list[np.ndarray], y: np.ndarray, dy: np.ndarray) -> list[np.ndarray]:
        return [dy / np.float32(len(xs))] * len(xs)


class _Extreme(_Merge):
    _pick: Any = np.maximum

    def _combine(self, xs: list[np.ndarray]) -> np.ndarray:
        out = xs[0]
        for a in xs[1:]:
            out = type(self)._pick(out, a)
        return out

    def _grads(self, xs: list[np.ndarray], y: np.ndarray, dy: np.ndarray) -> list[np.ndarray]:
        # The gradient goes to the first input holding the extreme (as the chained TF ops route it).
        taken = np.zeros(y.shape, bool)
        grads = []
        for a in xs:
            hit = (a == y) & ~taken
            taken |= hit
            grads.append(np.where(hit, dy, np.float32(0)))
        return grads


class Maximum(_Extreme):
    _pick = np.maximum


class Minimum(_Extreme):
    _pick = np.minimum


class Concatenate(_Merge):
    """Joins the inputs along ``axis`` (default -1); every other axis must match."""

    def __init__(self, axis: int = -1, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"Concatenate {self.name!r}: axis must be an int; received {axis!r}.")
        if axis == 0:
            raise ValueError(f"Concatenate {self.name!r}: axis=0 is the batch axis; concatenate along another axis.")
        self.axis = int(axis)

    def _merged_shape(self, shapes: list[tuple[int | None, ...]]) -> tuple[int | None, ...]:
        rank = len(shapes[0])
        ax = self.axis % rank if rank else 0
        bad = any(len(s) != rank for s in shapes) or any(
            a is not None and b is not None and a != b
            for s in shapes[1:]
            for i, (a, b) in enumerate(zip(shapes[0], s, strict=True))
            if i != ax
        )
        if bad:
            raise ValueError(
                f"Concatenate {self.name!r}: inputs must match on every axis but the concatenation axis "
                f"(axis={self.axis}); received {' and '.join(shape_str(x) for x in shapes)}."
            )
        sizes = [s[ax] for s in shapes]
        total = None if any(d is None for d in sizes) else sum(d for d in sizes if d is not None)
        out = list(next((d for d in dims if d is not None), None) for dims in zip(*shapes, strict=True))
        out[ax] = total
        return tuple(out)

    def merge_input_masks(self, masks: list[Any]) -> Any:
        # Keras's Concatenate ANDs the masks, an unmasked input counting as all-kept.
        return Layer.merge_input_masks(self, masks)

    def _combine(self, xs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(xs, axis=self.axis)

    def _grads(self, xs: list[np.ndarray], y: np.ndarray, dy: np.ndarray) -> list[np.ndarray]:
        cuts = np.cumsum([a.shape[self.axis] for a in xs])[:-1]
        return list(np.split(dy, cuts, axis=self.axis))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


class Dot(_Merge):
    """Keras's Dot: per sample, the dot product of the two inputs along ``axes`` (Keras's
    ``batch_dot``): ``(batch, n)`` with ``(batch, n)`` gives ``(batch, 1)``; ``(batch, t, d)`` with
    ``(batch, s, d)`` and ``axes=2`` gives the ``(batch, t, s)`` scores of Luong attention. With
    ``normalize=True`` both inputs are L2-normalized along their axes first (cosine similarity)."""

    propagates_mask = False

    def __init__(self, axes: Any, normalize: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        axes_t = tuple(axes) if isinstance(axes, (list, tuple)) else (axes, axes)
        if len(axes_t) != 2 or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in axes_t):
            raise ValueError(f"Dot {self.name!r}: axes must be an int or a pair of ints. Received: axes={axes!r}")
        self.axes = axes if isinstance(axes, int) else list(axes_t)
        self._axes = (int(axes_t[0]), int(axes_t[1]))
        self.normalize = bool(normalize)

    def _check_list(self, inputs: Any) -> list[Any]:
        xs = super()._check_list(inputs)
        if len(xs) != 2:
            raise ValueError(f"Dot {self.name!r}: expects exactly 2 inputs; received {len(xs)}.")
        return xs

    def _resolved(self, ra: int, rb: int, shapes: Any) -> tuple[int, int]:
        out = []
        for ax, rank in zip(self._axes, (ra, rb), strict=True):
            a = ax % rank if -rank <= ax < rank else -1
            if a < 1:
                raise ValueError(
                    f"Dot {self.name!r}: axes={self.axes} must name a non-batch axis of each input; received "
                    f"{' and '.join(shape_str(tuple(s)) for s in shapes)}."
                )
            out.append(a)
        return out[0], out[1]

    def _merged_shape(self, shapes: list[tuple[int | None, ...]]) -> tuple[int | None, ...]:
        a, b = shapes
        if len(a) < 2 or len(b) < 2:
            raise ValueError(
                f"Dot {self.name!r}: inputs need a batch axis and at least one more; received {a} and {b}."
            )
        ia, ib = self._resolved(len(a), len(b), shapes)
        if a[ia] is not None and b[ib] is not None and a[ia] != b[ib]:
            raise ValueError(
                f"Dot {self.name!r}: the dotted axes must have the same size; received {shape_str(a)} (axis {ia}) "
                f"and {shape_str(b)} (axis {ib})."
            )
        rest = [d for i, d in enumerate(a) if i not in (0, ia)] + [d for i, d in enumerate(b) if i not in (0, ib)]
        return (a[0] if a[0] is not None else b[0], *(rest or [1]))

    def _spec(self, ra: int, rb: int) -> tuple[str, str, str, bool]:
        """einsum subscripts (a, b, out) and whether the output gains Keras's trailing axis of 1."""
        ia, ib = self._resolved(ra, rb, [(None,) * ra, (None,) * rb])
        letters = iter("cdefghijklmnopqrstuvwxyz")
        sa = ["b"] + [next(letters) for _ in range(ra - 1)]
        sb = ["b"] + [next(letters) for _ in range(rb - 1)]
        sb[ib] = sa[ia] = "a"
        out = (
            ["b"]
            + [c for i, c in enumerate(sa) if i not in (0, ia)]
            + [c for i, c in enumerate(sb) if i not in (0, ib)]
        )
        return "".join(sa), "".join(sb), "".join(out), len(out) == 1

    def forward(self, x: Any, training: bool = False) -> tuple[np.ndarray, Any]:
        a, b = (np.asarray(v, np.float32) for v in self._check_list(x))
        self._merged_shape([(None, *a.shape[1:]), (None, *b.shape[1:])])
        ia, ib = self._resolved(a.ndim, b.ndim, [a.shape, b.shape])
        if self.normalize:  # Keras's ops.normalize: x * min(1/sqrt(sum(x²)), 1e12)
            na = np.minimum(1.0 / np.sqrt((a * a).sum(axis=ia, keepdims=True)), np.float32(1e12)).astype(np.float32)
            nb = np.minimum(1.0 / np.sqrt((b * b).sum(axis=ib, keepdims=True)), np.float32(1e12)).astype(np.float32)
            ua, ub = a * na, b * nb
        else:
            na = nb = None
            ua, ub = a, b
        sa, sb, so, expand = self._spec(a.ndim, b.ndim)
        y = np.einsum(f"{sa},{sb}->{so}", ua, ub, optimize=True).astype(np.float32)
        if expand:
            y = y[:, None]
        return np.ascontiguousarray(y), ((ua, ub, na, nb, ia, ib) if training else None)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> list[np.ndarray]:
        ua, ub, na, nb, ia, ib = ctx
        sa, sb, so, expand = self._spec(ua.ndim, ub.ndim)
        g = np.asarray(dy, np.float32)
        if expand:
            g = g[:, 0]
        ga = np.einsum(f"{so},{sb}->{sa}", g, ub, optimize=True)
        gb = np.einsum(f"{so},{sa}->{sb}", g, ua, optimize=True)
        if self.normalize:  # u = x·n with n = 1/|x|: du/dx applied to g is (g - u (u·g))·n (unclamped)
            ga = np.where(na >= 1e12, ga * na, (ga - ua * (ua * ga).sum(axis=ia, keepdims=True)) * na)
            gb = np.where(nb >= 1e12, gb * nb, (gb - ub * (ub * gb).sum(axis=ib, keepdims=True)) * nb)
        return [np.ascontiguousarray(ga, np.float32), np.ascontiguousarray(gb, np.float32)]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def add(inputs: Any, **kwargs: Any) -> Any:
    return Add(**kwargs)(inputs)


def subtract(inputs: Any, **kwargs: Any) -> Any:
    return Subtract(**kwargs)(inputs)


def multiply(inputs: Any, **kwargs: Any) -> Any:
    return Multiply(**kwargs)(inputs)


def average(inputs: Any, **kwargs: Any) -> Any:
    return Average(**kwargs)(inputs)


def maximum(inputs: Any, **kwargs: Any) -> Any:
    return Maximum(**kwargs)(inputs)


def minimum(inputs: Any, **kwargs: Any) -> Any:
    return Minimum(**kwargs)(inputs)


def concatenate(inputs: Any, axis: int = -1, **kwargs: Any) -> Any:
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs: Any, axes: Any = -1, normalize: bool = False, **kwargs: Any) -> Any:
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
