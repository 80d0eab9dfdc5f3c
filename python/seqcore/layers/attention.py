"""Attention layers on the blocked attention kernel of ``rust/src/kernels/attention.rs``:
``MultiHeadAttention`` (Keras 3's arguments, defaults, weight names and layouts: the EinsumDense
kernels ``query/kernel (dim, heads, key_dim)`` ... ``attention_output/kernel (heads, value_dim,
*output_shape)``), and the Luong and Bahdanau layers ``Attention`` and ``AdditiveAttention``.

The projections are GEMMs over ``(batch·time, features)`` rows that write ``(B, T, heads·d)``, the
layout the kernel reads, so no transpose happens anywhere; self-attention (``mha(x, x)``) projects
q, k and v with one GEMM into one array that the kernel reads at three column offsets, and its
backward gets the three gradients back in one array for one GEMM. The kernel never materializes a
head's ``(Tq, Tk)`` score matrix unless the scores are asked for.

Masks follow Keras: the query's mask (from the graph or ``query_mask=``), the value's and key's
masks, ``attention_mask`` (broadcast to ``(B, Tq, Tk)`` or ``(B, heads, Tq, Tk)``),
``use_causal_mask`` and ``sliding_window`` are ANDed; masks of padded sequences travel as lengths
(no ``T²`` array), any other pattern as a dense boolean mask. A disallowed score is ``-1e9`` as in
Keras's masked softmax (``s - 1e9`` in ``Attention``), so even a row with nothing to attend to
gives Keras's numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _seqcore, constraints, initializers, kernels, regularizers
from .base import Layer, Shape, shape_str, unused_input_grad


class _Options:
    """The options the Rust bindings read (``rust/src/py/attention.rs``'s ``Options``)."""

    __slots__ = ("heads", "key_dim", "value_dim", "cols", "scale", "causal", "window", "replace_fill", "dropout",
                 "seed", "scores_after_dropout")  # fmt: skip

    heads: int
    dropout: float
    scores_after_dropout: bool

    def __init__(self, **kw: Any):
        kw.setdefault("scores_after_dropout", False)
        for k in self.__slots__:
            setattr(self, k, kw[k])


# ----- masks ----------------------------------------------------------------------------------
def _seq_mask(m: Any, batch: int, steps: int, who: str, what: str) -> Any:
    """A sequence mask as lengths ``(B,)`` (int64) when it keeps a prefix of each row, else as a
    boolean ``(B, steps)`` array; None stays None."""
    if m is None:
        return None
    a = np.asarray(m)
    if a.ndim == 1 and np.issubdtype(a.dtype, np.integer):  # lengths, from a graph
        return a.astype(np.int64)
    if a.shape != (batch, steps):
        raise ValueError(f"{who}: {what} must have shape ({batch}, {steps}) (batch, steps); received {a.shape}.")
    b = a.astype(bool)
    lengths = b.sum(axis=1)
    if np.array_equal(b, np.arange(steps)[None, :] < lengths[:, None]):
        return lengths.astype(np.int64)
    return b


def _attention_mask(m: Any, batch: int, heads: int, tq: int, tk: int, who: str) -> np.ndarray:
    """``attention_mask`` as boolean ``(B | 1, H | 1, Tq, Tk)``, Keras's broadcasting (a mask of
    rank 2 or 3 gains the head axis, then the batch axis); anything else is refused."""
    a = np.asarray(m)
    want = (batch, heads, tq, tk)
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 2:
        a = a[None, None]
    if a.ndim != 4 or any(d not in (1, w) for d, w in zip(a.shape, want, strict=True)):
        raise ValueError(
            f"{who}: attention_mask of shape {np.shape(m)} does not broadcast to the attention scores "
            f"(batch, heads, Tq, Tk) = {want}; pass a boolean mask of shape ({batch}, {tq}, {tk})."
        )
    return a.astype(bool) if a.dtype != bool else a


class _KernelMasks:
    """Every mask of one call as the kernel takes them: query lengths, key lengths, a dense mask."""

    __slots__ = ("q_len", "k_len", "dense")

    def __init__(self, who: str, batch: int, heads: int, tq: int, tk: int, q_mask: Any, k_masks: list[Any],
                 attention_mask: Any):  # fmt: skip
        self.q_len: np.ndarray | None = None
        self.k_len: np.ndarray | None = None
        dense = None if attention_mask is None else _attention_mask(attention_mask, batch, heads, tq, tk, who)
        qm = _seq_mask(q_mask, batch, tq, who, "the query mask")
        if isinstance(qm, np.ndarray) and qm.dtype == bool:
            part = qm[:, None, :, None]
            dense = part if dense is None else dense & part
        else:
            self.q_len = qm
        for km in k_masks:
            km = _seq_mask(km, batch, tk, who, "the value/key mask")
            if isinstance(km, np.ndarray) and km.dtype == bool:
                part = km[:, None, None, :]
                dense = part if dense is None else dense & part
            elif km is not None:
                self.k_len = km if self.k_len is None else np.minimum(self.k_len, km)
        for name, lengths, n in (("query", self.q_len, tq), ("value", self.k_len, tk)):
            if lengths is not None and (lengths.shape != (batch,) or (lengths < 0).any() or (lengths > n).any()):
                raise ValueError(f"{who}: the {name} mask's lengths must be {batch} values in [0, {n}].")
        if dense is not None:
            shape = (dense.shape[0], dense.shape[1], tq, tk)
            dense = np.ascontiguousarray(np.broadcast_to(dense, shape)).view(np.uint8)
        self.dense: np.ndarray | None = dense


# ----- the kernel calls ---------------------------------------------------------------------------
#: A training call keeps its attention probabilities for backward (which then skips recomputing
#: Q·Kᵀ and the softmax, ~20% of the attention backward) when they take at most this many bytes
#: and the keys fit one kernel block; longer or larger calls recompute, in memory that grows with T
#: only. 256 MiB holds (64, 4 heads, 500, 500), the keras.io time-series transformer's.
SAVE_PROBS_BYTES = 256 << 20


class _Attn:
    """One attention call's saved state: inputs as the kernel read them, its output and statistics
    (and the probabilities, when small enough to keep)."""

    __slots__ = ("q", "k", "v", "opts", "masks", "o", "stats", "scores", "fused", "probs")

    def forward(self, q: np.ndarray, k: np.ndarray, v: np.ndarray, opts: _Options, masks: _KernelMasks,
                fused: bool, want_scores: bool, training: bool = False,
                want_dscale: bool = False) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
        self.q, self.k, self.v, self.opts, self.masks, self.fused = q, k, v, opts, masks, fused
        b, tq, tk = q.shape[0], q.shape[1], k.shape[1]
        size = 4 * b * opts.heads * tq * tk
        fits = tk < _seqcore.ATTENTION_SAVE_PROBS_MAX_KEYS
        # the scores asked for are these probabilities (before dropout): made once, the same in
        # training and inference
        as_scores = want_scores and not (opts.scores_after_dropout and opts.dropout > 0)
        save = fits and ((training and not want_dscale and size <= SAVE_PROBS_BYTES) or as_scores)
        self.o, self.stats, self.probs = _seqcore.attention_forward(
            q, k, v, opts, masks.q_len, masks.k_len, masks.dense, save
        )
        self.scores = None
        if want_scores:
            if self.probs is not None and as_scores:
                self.scores = self.probs  # the same numbers: P before dropout
            else:
                self.scores = _seqcore.attention_scores(q, k, opts, masks.q_len, masks.k_len, masks.dense, self.stats)
        return self.o, self.scores

    def backward(self, d_o: Any, d_scores: Any, need: tuple[bool, bool, bool], want_dscale: bool = False) -> Any:
        d_o = np.zeros_like(self.o) if d_o is None else np.ascontiguousarray(d_o, dtype=np.float32)
        extra = None
        if d_scores is not None:
            d_scores = np.ascontiguousarray(d_scores, dtype=np.float32).reshape(self.scores.shape)  # type: ignore[union-attr]
            extra = np.ascontiguousarray((self.scores * d_scores).sum(axis=-1, dtype=np.float32))
        m = self.masks
        return _seqcore.attention_backward(
            self.q, self.k, self.v, self.opts, m.q_len, m.k_len, m.dense, self.o, self.stats, d_o,
            d_scores, extra, self.probs, need, self.fused, want_dscale,
        )  # fmt: skip


def _project(x: np.ndarray, kernel: Any, bias: Any, activation: str | None = None) -> np.ndarray:
    """An EinsumDense projection ``(…, D) @ (D, heads, d) + (heads, d)`` as one GEMM into ``(…, heads·d)``."""
    k = kernel.value.reshape(kernel.shape[0], -1)
    return kernels.dense_forward(x, k, None if bias is None else bias.value.reshape(-1), activation)


def _dropout_seed(rate: float, training: bool, gen: np.random.Generator | None) -> int:
    if not training or rate == 0:
        return 0
    from ..utils import rng

    return int((gen or rng()).integers(0, 2**63))


def _check_rate(rate: Any, who: str) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f"{who}: dropout must be a number in [0, 1). Received: dropout={rate!r}")
    return float(rate)


def _f32(x: Any) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


# ----- MultiHeadAttention -------------------------------------------------------------------------
class MultiHeadAttention(Layer):
    """Keras 3's MultiHeadAttention: ``mha(query, value, key=None, query_mask=None, value_mask=None,
    key_mask=None, attention_mask=None, return_attention_scores=False, training=None,
    use_causal_mask=False)``. The output takes the query's mask. As in Keras 3, the query mask is
    the query tensor's own (from Masking or Embedding(mask_zero=True) upstream in a graph): an
    explicit ``query_mask=`` is overwritten by it in Keras's call, and ignored here too."""

    uses_mask = True
    arg_masks = True
    _positional_args = ("value", "key")

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape: Any = None,
        attention_axes: Any = None,
        sliding_window: int | None = None,
        flash_attention: bool | None = None,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        use_gate: bool = False,
        seed: int | None = None,
        **kwargs: Any,
    ):
        # Keras's own checks and messages, before the name exists
        for arg, v in (("num_heads", num_heads), ("key_dim", key_dim)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(
                    f"Received an invalid value for argument `{arg}`, expected a positive integer. Received: {arg}={v}"
                )
        if value_dim is not None and (isinstance(value_dim, bool) or not isinstance(value_dim, (int, np.integer))
                                      or value_dim <= 0):  # fmt: skip
            raise ValueError(
                "Received an invalid value for argument `value_dim`, expected a positive integer or `None`. "
                f"Received: value_dim={value_dim}"
            )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        who = f"MultiHeadAttention {self.name!r}"
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.value_dim = int(value_dim) if value_dim else self.key_dim
        self.dropout = _check_rate(dropout, who)
        self.use_bias = bool(use_bias)
        self.use_gate = bool(use_gate)
        if output_shape is not None and output_shape != ():
            try:
                output_shape = (int(output_shape),) if isinstance(output_shape, (int, np.integer)) else tuple(
                    int(d) for d in output_shape)  # fmt: skip
            except TypeError:
                raise ValueError(
                    f"{who}: Invalid `output_shape`: {output_shape}. When specified, the `output_shape` should be "
                    f"of type tuple, list, or int."
                ) from None
        else:
            output_shape = None
        self._output_shape_arg: tuple[int, ...] | None = output_shape
        if isinstance(attention_axes, (int, np.integer)):
            attention_axes = (int(attention_axes),)
        elif attention_axes is not None and not isinstance(attention_axes, (list, tuple)):
            raise ValueError(
                f"`attention_axes` must be an int, list, or tuple.Received: attention_axes={attention_axes}"
            )
        self._attention_axes_arg = None if attention_axes is None else tuple(int(a) for a in attention_axes)
        if sliding_window is not None and (isinstance(sliding_window, bool) or not isinstance(sliding_window, int)
                                           or sliding_window <= 0):  # fmt: skip
            raise ValueError(
                f"`sliding_window` must be `None` or a positive integer. Received: sliding_window={sliding_window}"
            )
        self.sliding_window = sliding_window
        self.flash_attention = flash_attention
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.seed = seed
        self._gen = np.random.default_rng(seed) if seed is not None else None
        self._scale = 1.0 / math.sqrt(float(self.key_dim))
        self._dims: dict[str, Any] = {}

    # ----- building -----------------------------------------------------------------------------
    @property
    def attention_axes(self) -> tuple[int, ...] | None:
        return self._dims.get("attention_axes", self._attention_axes_arg)

    def _dense(self, name: str, shape: tuple[int, ...], bias_shape: tuple[int, ...]) -> tuple[Any, Any]:
        k = self.add_weight(f"{name}/kernel", shape, self.kernel_initializer, self.kernel_regularizer,
                            constraint=self.kernel_constraint)  # fmt: skip
        b = None
        if self.use_bias:
            b = self.add_weight(f"{name}/bias", bias_shape, self.bias_initializer, self.bias_regularizer,
                                constraint=self.bias_constraint)  # fmt: skip
        return k, b

    def build(self, query_shape: Any, value_shape: Any = None, key_shape: Any = None) -> None:  # type: ignore[override]
        """Shapes with the batch axis, as Keras's ``build(query_shape, value_shape, key_shape)``."""
        who = f"MultiHeadAttention {self.name!r}"
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        qs, vs, ks = tuple(query_shape), tuple(value_shape), tuple(key_shape)
        if vs[1:-1] != ks[1:-1]:
            raise ValueError(
                f"{who}: All dimensions of `value` and `key`, except the last one, must be equal. Received: "
                f"value_shape={vs} and key_shape={ks}"
            )
        if len(qs) < 3 or len(vs) != len(qs):
            raise ValueError(
                f"{who}: query and value must be (batch, ..., steps, features) of one rank >= 3; received "
                f"query {shape_str(qs)} and value {shape_str(vs)}."
            )
        for name, s in (("query", qs), ("value", vs), ("key", ks)):
            if s[-1] is None:
                raise ValueError(
                    f"{who}: the last axis of {name} must be known to build the layer; received {shape_str(s)}."
                )
        rank = len(qs)
        axes = self._attention_axes_arg
        axes = tuple(range(1, rank - 1)) if axes is None else tuple(a % rank if a < 0 else a for a in axes)
        if any(not 1 <= a < rank - 1 for a in axes) or len(set(axes)) != len(axes):
            raise ValueError(
                f"{who}: attention_axes {self._attention_axes_arg} must name distinct axes between the batch and "
                f"the feature axis of inputs of rank {rank}."
            )
        h, dk, dv = self.num_heads, self.key_dim, self.value_dim
        out = self._output_shape_arg or (qs[-1],)
        self._dims = {"query": qs[-1], "value": vs[-1], "key": ks[-1], "rank": rank, "attention_axes": axes,
                      "output": tuple(out)}  # fmt: skip
        self.query_kernel, self.query_bias = self._dense("query", (qs[-1], h, dk), (h, dk))
        self.key_kernel, self.key_bias = self._dense("key", (ks[-1], h, dk), (h, dk))
        if self.use_gate:
            self.gate_kernel, self.gate_bias = self._dense("gate", (qs[-1], h, dv), (h, dv))
        self.value_kernel, self.value_bias = self._dense("value", (vs[-1], h, dv), (h, dv))
        self.output_kernel, self.output_bias = self._dense("attention_output", (h, dv, *out), tuple(out))
        self.built = True

    def _maybe_build(self, input_shape: Shape) -> None:
        pass  # built from every input's shape in _build_for

    def _build_for(self, q: tuple[Any, ...], v: tuple[Any, ...], k: tuple[Any, ...] | None) -> None:
        who = f"MultiHeadAttention {self.name!r}"
        if not self.built:
            self.build(q, v, k)
            self.input_shape = tuple(q[1:])
            return
        d = self._dims
        for name, s in (("query", q), ("value", v), ("key", k if k is not None else v)):
            if len(s) != d["rank"] or (s[-1] is not None and s[-1] != d[name]):
                raise ValueError(
                    f"{who}: built for a {name} of {d[name]} features and rank {d['rank']}; received {name} of "
                    f"shape {shape_str(s)}. Its weights were created for that input: use a new layer."
                )
        key = k if k is not None else v
        if v[1:-1] != key[1:-1]:
            raise ValueError(
                f"{who}: value {shape_str(v)} and key {shape_str(key)} must agree on every axis but the last."
            )

    # ----- shapes ---------------------------------------------------------------------------------
    def _scores_shape(self, q: tuple[Any, ...], v: tuple[Any, ...]) -> tuple[Any, ...]:
        axes = self._dims["attention_axes"]
        rank = len(q)
        batch_dims = [q[i] for i in range(1, rank - 1) if i not in axes]
        return (q[0], *batch_dims, self.num_heads, *(q[a] for a in axes), *(v[a] for a in axes))

    def compute_output_shape(self, query_shape: Any, value_shape: Any = None, key_shape: Any = None) -> Any:  # type: ignore[override]
        q = tuple(query_shape)
        return (*q[:-1], *self._dims["output"]) if self._dims else q

    def symbolic_output(self, inputs: Any, value: Any = None, key: Any = None, return_attention_scores: bool = False,
                        **kwargs: Any) -> Any:  # fmt: skip
        who = f"MultiHeadAttention {self.name!r}"
        if value is None:
            raise TypeError(
                f"{who}: missing the `value` input: call it as mha(query, value) (mha(x, x) for self-attention)."
            )
        self._check_call_kwargs(kwargs, who)
        q, v = tuple(inputs.shape), tuple(value.shape)
        k = None if key is None else tuple(key.shape)
        self._build_for(q, v, k)
        out = (*q[:-1], *self._dims["output"])
        if return_attention_scores:
            return [out, self._scores_shape(q, v)]
        return out

    @staticmethod
    def _check_call_kwargs(kwargs: dict[str, Any], who: str) -> None:
        allowed = {"query_mask", "value_mask", "key_mask", "attention_mask", "use_causal_mask", "lengths",
                   "arg_masks", "training"}  # fmt: skip
        unknown = set(kwargs) - allowed
        if unknown:
            raise TypeError(
                f"{who}: unexpected call argument(s) {sorted(unknown)}. MultiHeadAttention is called as "
                f"mha(query, value, key=None, query_mask=None, value_mask=None, key_mask=None, attention_mask=None, "
                f"return_attention_scores=False, training=None, use_causal_mask=False)."
            )

    # ----- calling --------------------------------------------------------------------------------
    def __call__(self, query: Any, value: Any = None, key: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        from ..symbolic import any_symbolic, symbolic_call

        if any_symbolic(query, value, key, kwargs):
            if key is not None:
                kwargs["key"] = key
            return symbolic_call(self, query, (value,) if value is not None else (), kwargs)
        who = f"MultiHeadAttention {self.name!r}"
        if value is None:
            raise TypeError(
                f"{who}: missing the `value` input: call it as mha(query, value) (mha(x, x) for self-attention)."
            )
        training = bool(kwargs.pop("training", False))
        q, v = _f32(query), _f32(value)
        k = None if key is None else _f32(key)
        if value is query:
            v = q  # keep self-attention recognizable after the conversion
        y, call = self.apply(q, training=training, value=v, key=k, **kwargs)
        self._activity_loss = call.activity_loss
        return y

    def output_mask(self, in_mask: Any, x: Any, ctx: Any) -> Any:
        # Keras: the output keeps the query's mask; the scores have none
        return [in_mask, None] if ctx is not None and getattr(ctx, "scores_out", False) else in_mask

    def _fold(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        """(B, *dims, D) -> (B', T, D) with the attention axes flattened into T and the other axes
        into the batch; returns the permutation and shapes that undo it. Rank 3: as is."""
        rank = x.ndim
        axes = self._dims["attention_axes"]
        if rank == 3:
            return x, None
        batch_axes = [i for i in range(1, rank - 1) if i not in axes]
        perm = [0, *batch_axes, *axes, rank - 1]
        moved = np.transpose(x, perm)
        lead = moved.shape[: 1 + len(batch_axes)]
        steps = moved.shape[1 + len(batch_axes) : -1]
        return np.ascontiguousarray(moved.reshape(math.prod(lead), math.prod(steps), x.shape[-1])), (perm, lead, steps)

    @staticmethod
    def _unfold(y: np.ndarray, how: Any) -> np.ndarray:
        if how is None:
            return y
        perm, lead, steps = how
        moved = y.reshape(*lead, *steps, y.shape[-1])
        return np.ascontiguousarray(np.transpose(moved, np.argsort(perm)))

    def forward(  # type: ignore[override]
        self,
        query: np.ndarray,
        training: bool = False,
        value: np.ndarray | None = None,
        key: np.ndarray | None = None,
        query_mask: Any = None,
        value_mask: Any = None,
        key_mask: Any = None,
        attention_mask: Any = None,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
        lengths: Any = None,
        arg_masks: dict[str, Any] | None = None,
    ) -> tuple[Any, Any]:
        who = f"MultiHeadAttention {self.name!r}"
        if value is None:
            raise TypeError(
                f"{who}: missing the `value` input: call it as mha(query, value) (mha(x, x) for self-attention)."
            )
        self_attention = value is query and key is None
        query, value = _f32(query), (_f32(query) if value is query else _f32(value))
        key_given = key is not None
        key_arr = _f32(key) if key_given else value
        self._build_for(tuple((None, *query.shape[1:])), tuple((None, *value.shape[1:])),
                        tuple((None, *key_arr.shape[1:])) if key_given else None)  # fmt: skip
        if query.shape[0] != value.shape[0] or key_arr.shape[0] != value.shape[0]:
            raise ValueError(
                f"{who}: query, value and key must have one batch size; received {query.shape}, {value.shape}"
                f"{f' and {key_arr.shape}' if key_given else ''}."
            )
        arg_masks = arg_masks or {}
        # As Keras 3: the query mask is the query tensor's own mask (from the graph); Keras's call
        # overwrites a query_mask argument with it, so an explicit query_mask has no effect there
        # either (seqcore accepts it for Keras's signature and ignores it the same way).
        q_mask = lengths
        v_mask = value_mask if value_mask is not None else arg_masks.get("value")
        k_mask = key_mask if key_mask is not None else (arg_masks.get("key") if key_given else None)
        rank = query.ndim
        if rank > 3 and any(m is not None for m in (q_mask, v_mask, k_mask, attention_mask)) or (
                rank > 3 and (use_causal_mask or self.sliding_window)):  # fmt: skip
            raise ValueError(
                f"{who}: masks, use_causal_mask and sliding_window are supported for inputs of rank 3 (batch, steps, "
                f"features); received a query of rank {rank}. Reshape the attention axes into one steps axis."
            )
        qf, how = self._fold(query)
        vf, how_v = self._fold(value)
        kf, how_k = self._fold(key_arr) if key_given else (vf, how_v)
        batch, tq, tk = qf.shape[0], qf.shape[1], vf.shape[1]
        h, dk, dv = self.num_heads, self.key_dim, self.value_dim
        masks = _KernelMasks(who, batch, h, tq, tk, q_mask, [v_mask, k_mask], attention_mask)
        # projections: one GEMM for self-attention, the kernel reading q, k, v at column offsets
        hk, hv = h * dk, h * dv
        if self_attention:
            kernel = np.concatenate([w.value.reshape(w.shape[0], -1) for w in
                                     (self.query_kernel, self.key_kernel, self.value_kernel)], axis=1)  # fmt: skip
            bias = None
            if self.use_bias:
                bias = np.concatenate([b.value.reshape(-1) for b in (self.query_bias, self.key_bias, self.value_bias)])
            qkv = kernels.dense_forward(qf, kernel, bias)
            pq = pk = pv = qkv
            cols = (0, hk, 2 * hk)
            proj: list[tuple[np.ndarray, Any, np.ndarray]] = [(qf, kernel, qkv)]
        else:
            pq = _project(qf, self.query_kernel, self.query_bias)
            pk = _project(kf, self.key_kernel, self.key_bias)
            pv = _project(vf, self.value_kernel, self.value_bias)
            cols = (0, 0, 0)
            proj = [(qf, None, pq), (kf, None, pk), (vf, None, pv)]
        opts = _Options(heads=h, key_dim=dk, value_dim=dv, cols=cols, scale=self._scale,
                        causal=bool(use_causal_mask), window=int(self.sliding_window or 0), replace_fill=True,
                        dropout=self.dropout if training else 0.0,
                        seed=_dropout_seed(self.dropout, training, self._gen))  # fmt: skip
        attn = _Attn()
        o, scores = attn.forward(pq, pk, pv, opts, masks, self_attention, bool(return_attention_scores), training)
        gate = None
        if self.use_gate:
            gate = _project(qf, self.gate_kernel, self.gate_bias, "sigmoid")
            gated = o * gate
        else:
            gated = o
        out_dims = self._dims["output"]
        y = kernels.dense_forward(gated, self.output_kernel.value.reshape(hv, -1),
                                  None if self.output_bias is None else self.output_bias.value.reshape(-1))  # fmt: skip
        yf = y
        y = self._unfold(y, how).reshape(*query.shape[:-1], *out_dims)
        ctx = None
        if training:
            ctx = _MHAContext(attn, proj, gate, gated, yf, (how, how_v, how_k), self_attention, key_given,
                              (query.shape, value.shape, key_arr.shape))  # fmt: skip
        if return_attention_scores:
            assert scores is not None
            if how is not None:
                perm, lead, steps = how
                scores = scores.reshape(*lead, h, *steps, *(value.shape[a] for a in self._dims["attention_axes"]))
            if ctx is not None:
                ctx.scores_out = True
            return [y, scores], ctx if ctx is not None else _ScoresFlag()
        return y, ctx

    def backward(self, ctx: Any, dy: Any, need_dx: bool = True) -> Any:
        if ctx is None or not isinstance(ctx, _MHAContext):
            raise RuntimeError(f"MultiHeadAttention {self.name!r}: backward without a training forward.")
        d_scores = None
        if isinstance(dy, list):
            dy, d_scores = dy[0], dy[1]
        attn = ctx.attn
        h, dk, dv = self.num_heads, self.key_dim, self.value_dim
        hk, hv = h * dk, h * dv
        qshape, vshape, kshape = ctx.shapes
        how_q, how_v, how_k = ctx.how
        if dy is not None:
            dy2 = np.ascontiguousarray(dy, dtype=np.float32).reshape(*qshape[:-1], math.prod(self._dims["output"]))
            if how_q is not None:
                dy2 = self._fold(dy2)[0]
            g = kernels.dense_backward(ctx.gated, self.output_kernel.value.reshape(hv, -1), ctx.y, dy2,
                                       use_bias=self.use_bias)  # fmt: skip
            self.output_kernel.add_grad(g.dkernel.reshape(self.output_kernel.shape))
            if self.output_bias is not None:
                self.output_bias.add_grad(g.dbias.reshape(self.output_bias.shape))  # type: ignore[union-attr]
            d_gated = g.dx
        else:
            d_gated = None
        d_query_gate = None
        if self.use_gate and d_gated is not None:
            d_o = d_gated * ctx.gate
            gg = kernels.dense_backward(ctx.proj[0][0], self.gate_kernel.value.reshape(-1, hv), ctx.gate,
                                        d_gated * attn.o, "sigmoid", use_bias=self.use_bias)  # fmt: skip
            self.gate_kernel.add_grad(gg.dkernel.reshape(self.gate_kernel.shape))
            if self.gate_bias is not None:
                self.gate_bias.add_grad(gg.dbias.reshape(self.gate_bias.shape))  # type: ignore[union-attr]
            d_query_gate = gg.dx
        else:
            d_o = d_gated
        if d_scores is not None and how_q is not None:
            d_scores = np.asarray(d_scores).reshape(attn.scores.shape)  # type: ignore[union-attr]
        dq, dk_, dv_, _ = attn.backward(d_o, d_scores, (True, True, True))
        weights = [(self.query_kernel, self.query_bias), (self.key_kernel, self.key_bias),
                   (self.value_kernel, self.value_bias)]  # fmt: skip
        if ctx.self_attention:
            x, kernel, qkv = ctx.proj[0]
            g = kernels.dense_backward(x, kernel, qkv, dq, need_dx=need_dx, use_bias=self.use_bias)
            bounds = [(0, hk), (hk, 2 * hk), (2 * hk, 2 * hk + hv)]
            for (w, b), (c0, c1) in zip(weights, bounds, strict=True):
                w.add_grad(np.ascontiguousarray(g.dkernel[:, c0:c1]).reshape(w.shape))
                if b is not None:
                    b.add_grad(np.ascontiguousarray(g.dbias[c0:c1]).reshape(b.shape))  # type: ignore[index]
            dx = g.dx
            if d_query_gate is not None and dx is not None:
                dx = dx + d_query_gate
            ctx.kwarg_grads = None
            if not need_dx:
                return unused_input_grad(qshape)
            return self._unfold(dx, how_q).reshape(qshape)  # type: ignore[arg-type]
        dxs: list[np.ndarray] = []
        for (w, b), (x, _, p), g_in in zip(weights, ctx.proj, (dq, dk_, dv_), strict=True):
            g = kernels.dense_backward(
                x, w.value.reshape(w.shape[0], -1), p, g_in, need_dx=True, use_bias=self.use_bias
            )
            w.add_grad(g.dkernel.reshape(w.shape))
            if b is not None:
                b.add_grad(g.dbias.reshape(b.shape))  # type: ignore[union-attr]
            assert g.dx is not None
            dxs.append(g.dx)
        d_query, d_key, d_value = dxs
        if d_query_gate is not None:
            d_query = d_query + d_query_gate
        d_query = self._unfold(d_query, how_q).reshape(qshape)
        d_value = self._unfold(d_value, how_v).reshape(vshape)
        d_key = self._unfold(d_key, how_k).reshape(kshape)
        if ctx.key_given:
            ctx.kwarg_grads = {"value": d_value, "key": d_key}
        else:
            ctx.kwarg_grads = {"value": d_value + d_key}
        return d_query

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "use_gate": self.use_gate,
            "output_shape": self._output_shape_arg,
            "attention_axes": self._attention_axes_arg,
            "sliding_window": self.sliding_window,
            "flash_attention": self.flash_attention,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "seed": self.seed,
        }


class _ScoresFlag:
    """The inference context of a call that returned the scores (for ``output_mask``)."""

    __slots__ = ()
    scores_out = True


class _MHAContext:
    __slots__ = ("attn", "proj", "gate", "gated", "y", "how", "self_attention", "key_given", "shapes", "scores_out",
                 "kwarg_grads")  # fmt: skip

    def __init__(self, attn: _Attn, proj: list[Any], gate: Any, gated: np.ndarray, y: np.ndarray, how: Any,
                 self_attention: bool, key_given: bool, shapes: tuple[Any, ...]):  # fmt: skip
        self.attn, self.proj, self.gate, self.gated, self.y, self.how = attn, proj, gate, gated, y, how
        self.self_attention, self.key_given, self.shapes = self_attention, key_given, shapes
        self.scores_out = False
        self.kwarg_grads: dict[str, Any] | None = None


# ----- Attention (Luong) and AdditiveAttention (Bahdanau) ------------------------------------------
class Attention(Layer):
    """Keras 3's Attention (Luong-style): ``Attention(use_scale=False, score_mode="dot", dropout=0.0,
    seed=None)`` called on ``[query, value]`` or ``[query, value, key]``, with ``mask=[query_mask,
    value_mask]``, ``return_attention_scores`` and ``use_causal_mask``. ``"dot"`` scores are
    ``scale·q·kᵀ`` on the attention kernel; ``"concat"`` scores are ``w·Σ tanh(scale·(q + k))``.
    Masked values get ``score - 1e9``; masked query rows give zeros. The scores returned are the
    attention weights after dropout, as Keras returns them."""

    uses_mask = True
    #: AdditiveAttention: its scores are always the additive (tanh) ones
    _always_additive = False

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0, seed: int | None = None,
                 **kwargs: Any):  # fmt: skip
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(
                "Invalid value for argument score_mode. Expected one of {'dot', 'concat'}. "
                f"Received: score_mode={score_mode}"
            )
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = _check_rate(dropout, f"{type(self).__name__} {self.name!r}")
        self.seed = seed
        self._gen = np.random.default_rng(seed) if seed is not None else None
        self.scale: Any = None
        self.concat_score_weight: Any = None

    @property
    def _who(self) -> str:
        return f"{type(self).__name__} {self.name!r}"

    def _inputs(self, inputs: Any) -> list[Any]:
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"{self._who}: must be called on a list of inputs, namely [query, value] or [query, value, key]. "
                f"Received: inputs={type(inputs).__name__}."
            )
        if not 2 <= len(inputs) <= 3:
            raise ValueError(
                f"{self._who}: accepts inputs list of length 2 or 3, namely [query, value] or [query, value, key]. "
                f"Received length: {len(inputs)}."
            )
        return list(inputs)

    def _check_shapes(self, shapes: list[tuple[Any, ...]]) -> None:
        q, v = shapes[0], shapes[1]
        k = shapes[2] if len(shapes) > 2 else v
        if len(q) < 3 or len(v) != len(q) or len(k) != len(q):
            raise ValueError(
                f"{self._who}: query, value and key must be (batch, steps, dim) of one rank; received "
                f"{', '.join(shape_str(s) for s in shapes)}."
            )
        if k[-2] is not None and v[-2] is not None and k[-2] != v[-2]:
            raise ValueError(f"{self._who}: key {shape_str(k)} and value {shape_str(v)} must have the same steps.")
        if q[-1] is not None and k[-1] is not None and q[-1] != k[-1]:
            raise ValueError(
                f"{self._who}: query {shape_str(q)} and key {shape_str(k)} must have the same last dimension (the "
                f"scores compare them); project one with a Dense layer."
            )

    def build(self, input_shape: Any) -> None:
        if self.use_scale:
            self.scale = self.add_weight("scale", (), "ones")
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight("concat_score_weight", (), "ones")
        self.built = True

    def _maybe_build(self, input_shape: Any) -> None:
        if not self.built:
            self.build(input_shape)
            self.input_shape = input_shape

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*input_shape[0][:-1], input_shape[1][-1])

    def symbolic_output(self, inputs: Any, return_attention_scores: bool = False, **kwargs: Any) -> Any:
        ins = self._inputs(inputs)
        shapes = [tuple(t.shape) for t in ins]
        self._check_shapes(shapes)
        self._maybe_build([s[1:] for s in shapes])
        out = (*shapes[0][:-1], shapes[1][-1])
        if return_attention_scores:
            k = shapes[2] if len(shapes) > 2 else shapes[1]
            return [out, (*shapes[0][:-1], k[-2])]
        return out

    def merge_input_masks(self, masks: list[Any]) -> Any:
        return list(masks)  # [query, value(, key)]: kept apart (the query's masks the output rows)

    def mask_argument(self, mask: Any) -> dict[str, Any]:
        if mask is not None and not isinstance(mask, (list, tuple)):
            raise ValueError(
                f"{self._who}: mask must be a list, namely [query_mask, value_mask]. Received: mask={mask}."
            )
        if mask is not None and not 2 <= len(mask) <= 3:
            raise ValueError(f"{self._who}: accepts mask list of length 2 or 3. Received: mask={mask}.")
        return {"lengths": list(mask) if mask is not None else None}

    def output_mask(self, in_mask: Any, x: Any, ctx: Any) -> Any:
        q = in_mask[0] if isinstance(in_mask, list) else in_mask
        if q is not None and not (isinstance(q, np.ndarray) and q.ndim == 1):
            q = None  # a pattern mask given by hand is not a per-sample length: not propagated
        return [q, None] if getattr(ctx, "scores_out", False) else q

    def _eager_call(self, x: Any, training: Any = False, mask: Any = None, **kwargs: Any) -> Any:
        ins = [_f32(a) for a in self._inputs(x)]
        self._check_shapes([(None, *a.shape[1:]) for a in ins])
        self._maybe_build([a.shape[1:] for a in ins])
        if mask is not None:
            kwargs.update(self.mask_argument(mask))
        y, call = self.apply(ins, training=bool(training), **kwargs)
        self._activity_loss = call.activity_loss
        return y

    # ----- computing --------------------------------------------------------------------------------
    def _score_params(self) -> tuple[float, np.ndarray | None, float]:
        """(inner scale a, per-dim weights w or None for ones, outer scale c) of the additive score."""
        a = float(self.scale.value) if self.use_scale else 1.0
        c = float(self.concat_score_weight.value)
        return a, None, c

    def forward(self, x: Any, training: bool = False, lengths: Any = None, return_attention_scores: bool = False,
                use_causal_mask: bool = False) -> tuple[Any, Any]:  # fmt: skip
        ins = [_f32(a) for a in self._inputs(x)]
        q, v = ins[0], ins[1]
        k = ins[2] if len(ins) > 2 else v
        self._check_shapes([(None, *a.shape[1:]) for a in (q, v, k)])
        masks = list(lengths) if isinstance(lengths, (list, tuple)) else [lengths, None]
        q_mask, v_mask = (masks + [None, None])[:2]
        lead = q.shape[:-2]
        if v.shape[:-2] != lead or k.shape[:-2] != lead:
            raise ValueError(f"{self._who}: query {q.shape}, value {v.shape} and key {k.shape} must share batch axes.")
        b = math.prod(lead)
        tq, tk = q.shape[-2], k.shape[-2]
        q3, k3, v3 = (a.reshape(b, a.shape[-2], a.shape[-1]) for a in (q, k, v))
        qm = _seq_mask(q_mask, b, tq, self._who, "the query mask") if q_mask is not None else None
        km = _KernelMasks(self._who, b, 1, tq, tk, None, [v_mask], None)
        seed = _dropout_seed(self.dropout, training, self._gen)
        rate = self.dropout if training else 0.0
        want = bool(return_attention_scores)
        if self.score_mode == "dot" and not self._always_additive:
            opts = _Options(heads=1, key_dim=q3.shape[-1], value_dim=v3.shape[-1], cols=(0, 0, 0),
                            scale=float(self.scale.value) if self.use_scale else 1.0, causal=bool(use_causal_mask),
                            window=0, replace_fill=False, dropout=rate, seed=seed,
                            scores_after_dropout=True)  # fmt: skip
            attn = _Attn()
            o, scores = attn.forward(q3, k3, v3, opts, km, False, want, training, want_dscale=self.use_scale)
            state: Any = attn
        else:
            o, scores, state = self._additive(q3, k3, v3, km, bool(use_causal_mask), rate, want, training)
        keep_rows = None
        if qm is not None:
            keep_rows = (np.arange(tq)[None, :] < qm[:, None]) if qm.dtype != bool else qm
            o = o * keep_rows[..., None]
        y = o.reshape(*lead, tq, v.shape[-1])
        ctx = _DenseAttentionContext(state, keep_rows, (q.shape, v.shape, k.shape), len(ins) > 2) if training else None
        if want:
            assert scores is not None
            if ctx is not None:
                ctx.scores_out = True
            return [y, scores.reshape(*lead, tq, tk)], ctx if ctx is not None else _ScoresFlag()
        return y, ctx

    def _additive(self, q: np.ndarray, k: np.ndarray, v: np.ndarray, km: _KernelMasks, causal: bool, rate: float,
                  want: bool, training: bool) -> tuple[np.ndarray, Any, Any]:  # fmt: skip
        """The additive-score path (``concat`` and AdditiveAttention), on materialized scores
        (``(B, Tq, Tk)``, as Keras holds them)."""
        a, w, c = self._score_params()
        u_shape = (q.shape[0], q.shape[1], k.shape[1], q.shape[2])
        s = _additive_scores(q, k, a, w, c)
        tq, tk = u_shape[1], u_shape[2]
        allowed = np.ones((q.shape[0], tq, tk), dtype=bool)
        if km.k_len is not None:
            allowed &= np.arange(tk)[None, None, :] < km.k_len[:, None, None]
        if km.dense is not None:
            allowed &= km.dense.view(bool)[:, 0]
        if causal:
            allowed &= np.tril(np.ones((tq, tk), dtype=bool))[None]
        s = np.where(allowed, s, s - np.float32(1e9))
        if tk == 0:  # a softmax over no keys: no weights, and a sum over no values is 0
            p = s
        else:
            p = np.exp(s - s.max(axis=-1, keepdims=True))
            p /= p.sum(axis=-1, keepdims=True)
        z = None
        if rate > 0:
            from ..utils import rng

            z = ((self._gen or rng()).random(p.shape, dtype=np.float32) >= rate).astype(np.float32) / np.float32(
                1 - rate
            )
        pd = p if z is None else p * z
        o = np.matmul(pd, v).astype(np.float32)
        state = (q, k, v, p, z, pd, a, w, c) if training else None
        return o, (pd if want else None), state

    def backward(self, ctx: Any, dy: Any, need_dx: bool = True) -> Any:
        if not isinstance(ctx, _DenseAttentionContext):
            raise RuntimeError(f"{self._who}: backward without a training forward.")
        d_scores = None
        if isinstance(dy, list):
            dy, d_scores = dy[0], dy[1]
        qs, vs, ks = ctx.shapes
        b = math.prod(qs[:-2])
        tq, tk = qs[-2], ks[-2]
        d_o = np.zeros((b, tq, vs[-1]), np.float32) if dy is None else np.asarray(dy, np.float32).reshape(b, tq, vs[-1])
        if ctx.keep_rows is not None:
            d_o = d_o * ctx.keep_rows[..., None]
        if d_scores is not None:
            d_scores = np.asarray(d_scores, np.float32).reshape(b, 1, tq, tk)
        if isinstance(ctx.state, _Attn):
            dq, dk, dv, dscale = ctx.state.backward(d_o, d_scores, (True, True, True), want_dscale=self.use_scale)
            if self.use_scale:
                self.scale.add_grad(np.asarray(dscale, np.float32).reshape(()))
        else:
            dq, dk, dv = self._additive_backward(ctx.state, d_o, None if d_scores is None else d_scores[:, 0])
        grads = [dq.reshape(qs), dv.reshape(vs)]
        if ctx.has_key:
            grads.append(dk.reshape(ks))
        else:
            grads[1] = grads[1] + dk.reshape(ks)
        return grads

    def _additive_backward(self, state: Any, d_o: np.ndarray, d_scores: Any) -> tuple[np.ndarray, ...]:
        q, k, v, p, z, pd, a, w, c = state
        dv = np.matmul(pd.transpose(0, 2, 1), d_o).astype(np.float32)
        dpd = np.matmul(d_o, v.transpose(0, 2, 1))
        if d_scores is not None:
            dpd = dpd + d_scores  # the returned scores are the weights after dropout
        dp = dpd if z is None else dpd * z
        ds = p * (dp - (p * dp).sum(axis=-1, keepdims=True))  # s - 1e9 passes the gradient through
        dq, dk, da, dw, dc = _additive_scores_backward(q, k, a, w, c, ds.astype(np.float32))
        self._add_score_grads(da, dw, dc)
        return dq, dk, dv

    def _add_score_grads(self, da: float, dw: np.ndarray, dc: float) -> None:
        if self.use_scale:
            self.scale.add_grad(np.asarray(da, np.float32).reshape(()))
        self.concat_score_weight.add_grad(np.asarray(dc, np.float32).reshape(()))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "use_scale": self.use_scale, "score_mode": self.score_mode,
                "dropout": self.dropout, "seed": self.seed}  # fmt: skip


class AdditiveAttention(Attention):
    """Keras 3's AdditiveAttention (Bahdanau-style): scores ``Σ_d scale_d·tanh(q_d + k_d)``, with a
    trainable ``scale`` of shape ``(dim,)`` (glorot_uniform) when ``use_scale`` (the default)."""

    _always_additive = True

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, **kwargs: Any):
        kwargs.pop("score_mode", None)
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def build(self, input_shape: Any) -> None:
        dim = input_shape[0][-1]
        if self.use_scale:
            self.scale = self.add_weight("scale", (dim,), "glorot_uniform")
        self.built = True

    def _score_params(self) -> tuple[float, np.ndarray | None, float]:
        return 1.0, (self.scale.value if self.use_scale else None), 1.0

    def _add_score_grads(self, da: float, dw: np.ndarray, dc: float) -> None:
        if self.use_scale:
            self.scale.add_grad(dw.astype(np.float32))

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        del cfg["score_mode"]
        return cfg


def _chunks(q: np.ndarray, k: np.ndarray) -> range:
    """Batch rows per chunk so that one chunk's (rows, Tq, Tk, dim) tanh tensor stays near 32 MB."""
    per = max(1, q.shape[1] * k.shape[1] * q.shape[2])
    return range(0, q.shape[0], max(1, (8 << 20) // per))


def _additive_scores(q: np.ndarray, k: np.ndarray, a: float, w: np.ndarray | None, c: float) -> np.ndarray:
    """``S_ij = c·Σ_d w_d·tanh(a·(q_id + k_jd))`` (``w`` None: ones), over batch chunks."""
    out = np.empty((q.shape[0], q.shape[1], k.shape[1]), np.float32)
    step = _chunks(q, k).step
    for s in range(0, q.shape[0], step):
        t = np.tanh(np.float32(a) * (q[s : s + step, :, None, :] + k[s : s + step, None, :, :]))
        out[s : s + step] = np.float32(c) * (t.sum(axis=-1) if w is None else t @ w.astype(np.float32))
    return out


def _additive_scores_backward(q: np.ndarray, k: np.ndarray, a: float, w: np.ndarray | None, c: float,
                              ds: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, float]:  # fmt: skip
    """Gradients of :func:`_additive_scores` given ``dS``: (dq, dk, da, dw, dc)."""
    dq, dk = np.zeros_like(q), np.zeros_like(k)
    dim = q.shape[2]
    dw = np.zeros(dim, np.float64)
    da = dc = 0.0
    wv = np.ones(dim, np.float32) if w is None else w.astype(np.float32)
    step = _chunks(q, k).step
    for s in range(0, q.shape[0], step):
        u = q[s : s + step, :, None, :] + k[s : s + step, None, :, :]
        t = np.tanh(np.float32(a) * u)
        g = ds[s : s + step, :, :, None]
        dw += c * (g * t).sum(axis=(0, 1, 2), dtype=np.float64)
        dc += float((ds[s : s + step] * (t @ wv)).sum(dtype=np.float64))
        dt = g * np.float32(c) * wv * (1 - t * t)
        da += float((dt * u).sum(dtype=np.float64))
        du = dt * np.float32(a)
        dq[s : s + step] = du.sum(axis=2)
        dk[s : s + step] = du.sum(axis=1)
    return dq, dk, da, dw, dc


class _DenseAttentionContext:
    __slots__ = ("state", "keep_rows", "shapes", "has_key", "scores_out")

    def __init__(self, state: Any, keep_rows: Any, shapes: tuple[Any, ...], has_key: bool):
        self.state, self.keep_rows, self.shapes, self.has_key = state, keep_rows, shapes, has_key
        self.scores_out = False
