"""Converters of the attention layers, as MatMul / Softmax graphs with the masks as seqcore applies
them (lengths from Masking or Embedding(mask_zero=True) upstream, ``use_causal_mask``, and for
MultiHeadAttention ``attention_mask`` tensors and ``sliding_window``):

* MultiHeadAttention (Keras 3's): the EinsumDense projections as MatMuls, ``softmax(where(allowed,
  q.kᵀ / sqrt(key_dim), -1e9))`` zeroed where not allowed (Keras's masked softmax), the optional
  sigmoid gate, the output projection; ``return_attention_scores`` gives those probabilities.
  Inputs of rank 3 (batch, steps, features) only: seqcore's higher-rank ``attention_axes`` fold
  several axes into one and are refused.
* Attention (Luong: ``dot`` scores ``scale * q.kᵀ``, or ``concat`` scores ``c * sum(tanh(scale * (q + k)))``)
  and AdditiveAttention (Bahdanau: ``sum_d scale_d * tanh(q_d + k_d)``): a disallowed score is
  ``score - 1e9``, and masked query rows output zeros.
Dropout is inference's identity."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import layers as L
from ._base import Builder, Call, Value, arr, refuse, register


def _allowed(g: Builder, q: str, k: str, q_len: Any, k_lens: list[Any], causal: bool, window: int,
             hint: str) -> Any:  # fmt: skip
    """Bool (B, Tq, Tk) of the allowed (query, key) pairs, or None when every pair is."""
    parts: list[str] = []
    tq_len = g.squeeze(g.dim(q, 1, hint), [0], hint)
    tk_len = g.squeeze(g.dim(k, 1, hint), [0], hint)
    i = g.unsqueeze(g.op("Range", [g.const(0, "zero_l", np.int64), tq_len, g.const(1, "one_l", np.int64)], hint),
                    [1], hint)  # fmt: skip
    j = g.unsqueeze(g.op("Range", [g.const(0, "zero_l", np.int64), tk_len, g.const(1, "one_l", np.int64)], hint),
                    [0], hint)  # fmt: skip
    if q_len is not None:
        parts.append(g.unsqueeze(g.steps_below(q, 1, q_len, hint), [2], hint))  # (B, Tq, 1)
    for kl in k_lens:
        if kl is not None:
            parts.append(g.unsqueeze(g.steps_below(k, 1, kl, hint), [1], hint))  # (B, 1, Tk)
    if causal:
        parts.append(g.unsqueeze(g.op("LessOrEqual", [j, i], hint), [0], hint))  # (1, Tq, Tk)
    if window:
        dist = g.op("Abs", [g.op("Sub", [i, j], hint)], hint)
        parts.append(g.unsqueeze(g.op("Less", [dist, g.const(window, "window", np.int64)], hint), [0], hint))
    if not parts:
        return None
    ok = parts[0]
    for p in parts[1:]:
        ok = g.op("And", [ok, p], hint)
    return ok


def _masks_of(c: Call) -> list[Any]:
    m = c.mask
    if isinstance(m, list):
        return m
    return [m]


def _tensor_arg(c: Call, name: str) -> Any:
    v = c.kwargs.get(name)
    if v is not None and not isinstance(v, Value):
        raise refuse(c.layer, f"{name}= must be a graph tensor (an Input of the model or a layer output) to be "
                              f"exported; received a constant {type(v).__name__}.")  # fmt: skip
    return v


def _explicit_lengths(g: Builder, c: Call, name: str) -> Any:
    """An explicit ``value_mask=`` / ``key_mask=`` tensor (batch, steps) as lengths (post-padding)."""
    v = _tensor_arg(c, name)
    if v is None:
        return None
    return g.cast(g.reduce("ReduceSum", g.cast(g.cast(v, "bool", c.hint), "int32", c.hint), [1], False, c.hint),
                  "int32", c.hint)  # fmt: skip


@register(L.MultiHeadAttention, kwargs=("value", "key", "query_mask", "value_mask", "key_mask", "attention_mask",
                                        "return_attention_scores", "use_causal_mask"))  # fmt: skip
def _mha(g: Builder, c: Call) -> list[str]:
    layer, hint = c.layer, c.hint
    if c.rank != 3:
        raise refuse(layer, f"inputs of rank {c.rank}: seqcore folds several attention axes into one there, which "
                            f"is not exported; reshape to (batch, steps, features).")  # fmt: skip
    q = c.x
    v = _tensor_arg(c, "value")
    k_given = _tensor_arg(c, "key")
    k = k_given if k_given is not None else v
    h, dk, dv = layer.num_heads, layer.key_dim, layer.value_dim

    def project(x: str, kernel: Any, bias: Any, d: int, what: str) -> str:
        w = arr(kernel)
        y = g.op("MatMul", [x, g.const(w.reshape(w.shape[0], -1), f"{layer.name}/{what}/kernel")], hint)
        if bias is not None:
            y = g.op("Add", [y, g.const(arr(bias).reshape(-1), f"{layer.name}/{what}/bias")], hint)
        return y

    def heads(x: str, d: int) -> str:  # (B, T, h*d) -> (B, h, T, d)
        return g.transpose(g.op("Reshape", [x, g.ints([0, 0, h, d])], hint), [0, 2, 1, 3], hint)

    pq = heads(project(q, layer.query_kernel, layer.query_bias, dk, "query"), dk)
    pk = heads(project(k, layer.key_kernel, layer.key_bias, dk, "key"), dk)
    pv = heads(project(v, layer.value_kernel, layer.value_bias, dv, "value"), dv)
    pq = g.op("Mul", [pq, g.const(np.float32(layer._scale), "scale")], hint)
    scores = g.op("MatMul", [pq, g.transpose(pk, [0, 1, 3, 2], hint)], hint)  # (B, h, Tq, Tk)
    # masks, as seqcore: the query's own (the graph's), the value's and the key's (explicit or the graph's)
    v_mask = _explicit_lengths(g, c, "value_mask")
    v_mask = v_mask if v_mask is not None else c.arg_masks.get("value")
    k_mask = _explicit_lengths(g, c, "key_mask")
    k_mask = k_mask if k_mask is not None else (c.arg_masks.get("key") if k_given is not None else None)
    q_len = c.mask if isinstance(c.mask, str) else None
    ok = _allowed(g, q, k, q_len, [v_mask, k_mask], bool(c.kwargs.get("use_causal_mask")),
                  int(layer.sliding_window or 0), hint)  # fmt: skip
    ok4 = None if ok is None else g.unsqueeze(ok, [1], hint)  # (B, 1, Tq, Tk)
    am = _tensor_arg(c, "attention_mask")
    if am is not None:  # (B, Tq, Tk), (B, h, Tq, Tk) or (Tq, Tk), broadcast as seqcore does
        am_rank = len(g.shapes.get(am, (None, None, None)))
        am4 = g.cast(am, "bool", hint)
        if am_rank < 4:
            am4 = g.unsqueeze(am4, [1] if am_rank == 3 else [0, 1], hint)
        ok4 = am4 if ok4 is None else g.op("And", [ok4, am4], hint)
    if ok4 is not None:
        scores = g.op("Where", [ok4, scores, g.const(-1e9, "neg_big")], hint)
        probs = g.op("Mul", [g.op("Softmax", [scores], hint, axis=-1), g.cast(ok4, "float", hint)], hint)
    else:
        probs = g.op("Softmax", [scores], hint, axis=-1)
    o = g.op("MatMul", [probs, pv], hint)  # (B, h, Tq, dv)
    o = g.op("Reshape", [g.transpose(o, [0, 2, 1, 3], hint), g.ints([0, 0, h * dv])], hint)
    if layer.use_gate:
        gate = g.op("Sigmoid", [project(q, layer.gate_kernel, layer.gate_bias, dv, "gate")], hint)
        o = g.op("Mul", [o, gate], hint)
    out_dims = list(layer._dims["output"])
    wo = arr(layer.output_kernel).reshape(h * dv, -1)
    y = g.op("MatMul", [o, g.const(wo, f"{layer.name}/attention_output/kernel")], hint)
    if layer.output_bias is not None:
        y = g.op("Add", [y, g.const(arr(layer.output_bias).reshape(-1), f"{layer.name}/attention_output/bias")], hint)
    if len(out_dims) != 1:
        y = g.op("Reshape", [y, g.ints([0, 0, *out_dims])], hint)
    if c.kwargs.get("return_attention_scores"):
        c.out_masks = [q_len, None]
        return [y, probs]
    c.out_masks = [q_len]
    return [y]


@register(L.Attention, L.AdditiveAttention, kwargs=("return_attention_scores", "use_causal_mask", "mask"))
def _attention(g: Builder, c: Call) -> list[str]:
    layer, hint = c.layer, c.hint
    q, v = c.xs[0], c.xs[1]
    k = c.xs[2] if len(c.xs) > 2 else v
    masks = (_masks_of(c) + [None, None])[:2]
    q_len, v_len = (m if isinstance(m, str) else None for m in masks)
    if c.rank != 3 and (q_len is not None or v_len is not None):
        raise refuse(layer, f"masks with inputs of rank {c.rank} are not exported; use (batch, steps, dim) inputs.")
    additive = isinstance(layer, L.AdditiveAttention) or layer.score_mode == "concat"
    if not additive:
        s = g.op("MatMul", [q, g.op("Transpose", [k], hint, perm=[*range(c.rank - 2), c.rank - 1, c.rank - 2])], hint)
        if layer.use_scale:
            s = g.op("Mul", [s, g.const(arr(layer.scale), f"{layer.name}/scale")], hint)
    else:
        if isinstance(layer, L.AdditiveAttention):
            a, w, cc = 1.0, (arr(layer.scale) if layer.use_scale else None), 1.0
        else:
            a = float(arr(layer.scale)) if layer.use_scale else 1.0
            w, cc = None, float(arr(layer.concat_score_weight))
        u = g.op(
            "Add", [g.unsqueeze(q, [c.rank - 1], hint), g.unsqueeze(k, [c.rank - 2], hint)], hint
        )  # (.., Tq, Tk, D)
        t = g.op("Tanh", [g.op("Mul", [u, g.const(a, "a")], hint) if a != 1.0 else u], hint)
        s = g.op("MatMul", [t, g.const(w, f"{layer.name}/scale")], hint) if w is not None else g.reduce(
            "ReduceSum", t, [-1], False, hint)  # fmt: skip
        if cc != 1.0:
            s = g.op("Mul", [s, g.const(cc, "c")], hint)
    ok = _allowed(g, q, k, None, [v_len], bool(c.kwargs.get("use_causal_mask")), 0, hint) if c.rank == 3 else (
        None)  # fmt: skip
    if ok is None and c.kwargs.get("use_causal_mask"):
        raise refuse(layer, f"use_causal_mask with inputs of rank {c.rank} is not exported; use (batch, steps, dim).")
    if ok is not None:
        s = g.op("Where", [ok, s, g.op("Sub", [s, g.const(1e9, "big")], hint)], hint)
    p = g.op("Softmax", [s], hint, axis=-1)
    o = g.op("MatMul", [p, v], hint)
    if q_len is not None:
        keep = g.unsqueeze(g.cast(g.steps_below(q, 1, q_len, hint), "float", hint), [2], hint)
        o = g.op("Mul", [o, keep], hint)
    if c.kwargs.get("return_attention_scores"):
        c.out_masks = [q_len, None]
        return [o, p]
    c.out_masks = [q_len]
    return [o]
