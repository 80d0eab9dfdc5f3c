"""MultiHeadAttention, Attention and AdditiveAttention: outputs, attention scores and every gradient
(inputs and weights) against independent float64 NumPy references written here from Keras 3's
formulas, over hypothesis-drawn shapes and options (self and cross attention, a separate key,
biases, gates, output shapes, causal masks, sliding windows, boolean attention masks with empty
rows, prefix and non-prefix query/value/key masks, returned scores); dropout (the exact keep factors
of a seeded layer, recovered by a twin layer, then the reference with them; reproducibility; linear
finite differences); edge shapes (one key, one query, an empty batch), memory layouts and dtypes,
rank-4 inputs; the errors of the layers and of the raw bindings; configs, functional models
(training, masks, saving, summary) and bit-identical results across thread counts.

Mask semantics are Keras 3.15's (the installed version): MultiHeadAttention's masked softmax is
``where(mask, softmax(where(mask, s, -1e9)), 0)``, so a query row with nothing to attend to has
all-zero probabilities (its output is the output bias); its query mask is the query tensor's own
(a graph mask, here the ``lengths=`` that a graph passes), an explicit ``query_mask=`` is ignored
as in Keras's call. Attention and AdditiveAttention use ``s - 1e9`` (so a row with nothing to
attend to averages every value) and zero the output rows of masked queries.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
import seqcore
from hypothesis import given, settings
from hypothesis import strategies as st
from seqcore import _seqcore
from seqcore import layers as L


# ----- helpers ------------------------------------------------------------------------------------
def close(got: Any, want: Any, rtol: float = 1e-4, atol: float = 1e-4, what: str = "") -> None:
    """float32 results against float64 references: ``rtol`` relative, plus ``atol`` scaled by the
    reference's magnitude (so that sums of many terms are judged on their size)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale, err_msg=what)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def randomize_weights(layer: Any, rng: np.random.Generator, scale: float = 0.5, offset: float = 0.0) -> None:
    layer.set_weights([rng.standard_normal(w.shape) * scale + offset for w in layer.weights])


def weights64(layer: Any) -> dict[str, np.ndarray]:
    return {w.name: np.asarray(w.value, np.float64) for w in layer.weights}


# ----- the MultiHeadAttention reference -----------------------------------------------------------
def mha_reference(w: dict[str, np.ndarray], q: Any, v: Any, k: Any, allowed: np.ndarray, key_dim: int,
                  keep: Any = None, dy: Any = None, dscores: Any = None) -> tuple[Any, ...]:  # fmt: skip
    """Keras 3's MultiHeadAttention in float64, on rank-3 inputs.

    ``w``: the weights by Keras name; ``allowed``: the combined boolean mask ``(B, H, Tq, Tk)``;
    ``keep``: dropout factors ``(B, H, Tq, Tk)`` (0 or 1/(1-rate)) or None. Returns ``(y, P)`` (P the
    probabilities before dropout, what ``return_attention_scores`` gives), and with ``dy`` also the
    gradients of ``sum(y·dy) + sum(P·dscores)``: ``(weight grads by name, dquery, dvalue, dkey)``."""
    q, v, k = (np.asarray(a, np.float64) for a in (q, v, k))
    bias = "query/bias" in w

    def proj(x: np.ndarray, name: str) -> np.ndarray:
        y = np.einsum("btd,dhe->bthe", x, w[f"{name}/kernel"])
        return y + w[f"{name}/bias"] if bias else y

    Q, K, V = proj(q, "query"), proj(k, "key"), proj(v, "value")
    c = 1.0 / math.sqrt(key_dim)
    S = np.einsum("bqhd,bkhd->bhqk", Q, K) * c
    Sm = np.where(allowed, S, -1e9)
    E = np.exp(Sm - Sm.max(axis=-1, keepdims=True))
    P0 = E / E.sum(axis=-1, keepdims=True)
    P = np.where(allowed, P0, 0.0)
    Z = 1.0 if keep is None else np.asarray(keep, np.float64)
    Pd = P * Z
    Ov = np.einsum("bhqk,bkhe->bqhe", Pd, V)
    gated = "gate/kernel" in w
    G = sigmoid(proj(q, "gate")) if gated else None
    Og = Ov * G if gated else Ov
    Wo = w["attention_output/kernel"]  # (H, dv, *out)
    y = np.tensordot(Og, Wo, axes=([2, 3], [0, 1]))
    if bias:
        y = y + w["attention_output/bias"]
    if dy is None:
        return y, P
    dy = np.asarray(dy, np.float64)
    g: dict[str, np.ndarray] = {}
    out_axes = list(range(2, dy.ndim))
    g["attention_output/kernel"] = np.tensordot(Og, dy, axes=([0, 1], [0, 1]))
    if bias:
        g["attention_output/bias"] = dy.sum(axis=(0, 1))
    dOg = np.tensordot(dy, Wo, axes=(out_axes, [a for a in range(2, Wo.ndim)]))
    dq_gate: Any = 0.0
    if gated:
        assert G is not None
        dO = dOg * G
        dGpre = dOg * Ov * G * (1 - G)
        g["gate/kernel"] = np.einsum("btd,bthe->dhe", q, dGpre)
        if bias:
            g["gate/bias"] = dGpre.sum(axis=(0, 1))
        dq_gate = np.einsum("bthe,dhe->btd", dGpre, w["gate/kernel"])
    else:
        dO = dOg
    dPd = np.einsum("bqhe,bkhe->bhqk", dO, V)
    dV = np.einsum("bhqk,bqhe->bkhe", Pd, dO)
    dP = dPd * Z + (0.0 if dscores is None else np.asarray(dscores, np.float64))
    dP0 = np.where(allowed, dP, 0.0)
    dSm = P0 * (dP0 - (P0 * dP0).sum(axis=-1, keepdims=True))
    dS = np.where(allowed, dSm, 0.0) * c  # a masked score is the constant -1e9
    dQ = np.einsum("bhqk,bkhd->bqhd", dS, K)
    dK = np.einsum("bhqk,bqhd->bkhd", dS, Q)

    def back(x: np.ndarray, name: str, dp: np.ndarray) -> np.ndarray:
        g[f"{name}/kernel"] = np.einsum("btd,bthe->dhe", x, dp)
        if bias:
            g[f"{name}/bias"] = dp.sum(axis=(0, 1))
        return np.einsum("bthe,dhe->btd", dp, w[f"{name}/kernel"])

    dq = back(q, "query", dQ) + dq_gate
    dk = back(k, "key", dK)
    dv = back(v, "value", dV)
    return y, P, g, dq, dv, dk


def mha_allowed(b: int, h: int, tq: int, tk: int, q_rows: Any = None, k_cols: Any = (),
                attention_mask: Any = None, causal: bool = False, window: int | None = None) -> np.ndarray:  # fmt: skip
    """Keras's ``_compute_attention_mask`` for rank-3 inputs, as ``(B, H, Tq, Tk)``."""
    ok = np.ones((b, h, tq, tk), bool)
    if q_rows is not None:
        ok &= np.asarray(q_rows, bool)[:, None, :, None]
    for m in k_cols:
        if m is not None:
            ok &= np.asarray(m, bool)[:, None, None, :]
    if attention_mask is not None:
        a = np.asarray(attention_mask).astype(bool)
        a = a[None, None] if a.ndim == 2 else a[:, None] if a.ndim == 3 else a
        ok &= a
    i, j = np.arange(tq)[:, None], np.arange(tk)[None, :]
    if causal:
        ok &= j <= i
    if window is not None:
        ok &= np.abs(i - j) < window
    return ok


def test_the_reference_gradient_is_the_derivative_of_the_reference() -> None:
    """The float64 reference's backward against its own forward (central differences in float64),
    so that the layer's gradients are judged against a right answer."""
    rng = np.random.default_rng(11)
    b, tq, tk, h, dk, dv = 2, 4, 5, 2, 3, 2
    q, v, k = rng.standard_normal((b, tq, 3)), rng.standard_normal((b, tk, 2)), rng.standard_normal((b, tk, 4))
    w = {"query/kernel": rng.standard_normal((3, h, dk)), "query/bias": rng.standard_normal((h, dk)),
         "key/kernel": rng.standard_normal((4, h, dk)), "key/bias": rng.standard_normal((h, dk)),
         "gate/kernel": rng.standard_normal((3, h, dv)), "gate/bias": rng.standard_normal((h, dv)),
         "value/kernel": rng.standard_normal((2, h, dv)), "value/bias": rng.standard_normal((h, dv)),
         "attention_output/kernel": rng.standard_normal((h, dv, 2, 3)),
         "attention_output/bias": rng.standard_normal((2, 3))}  # fmt: skip
    allowed = rng.random((b, h, tq, tk)) > 0.3
    allowed[0, 1, 2] = False  # a row with nothing to attend to
    keep = (rng.random((b, h, tq, tk)) > 0.25) / 0.75
    dy = rng.standard_normal((b, tq, 2, 3))
    ds = rng.standard_normal((b, h, tq, tk))

    def loss(ww: dict[str, np.ndarray], qq: np.ndarray, vv: np.ndarray, kk: np.ndarray) -> float:
        y, p = mha_reference(ww, qq, vv, kk, allowed, dk, keep)
        return float((y * dy).sum() + (p * ds).sum())

    _, _, g, dq, dv_, dk_ = mha_reference(w, q, v, k, allowed, dk, keep, dy, ds)
    eps = 1e-6
    for name, x, grad in (("q", q, dq), ("v", v, dv_), ("k", k, dk_)):
        d = rng.standard_normal(x.shape)
        args = {"q": q, "v": v, "k": k}
        lo = [args[n] - eps * d if n == name else args[n] for n in "qvk"]
        hi = [args[n] + eps * d if n == name else args[n] for n in "qvk"]
        fd = (loss(w, *hi) - loss(w, *lo)) / (2 * eps)
        assert fd == pytest.approx(float((grad * d).sum()), rel=1e-6, abs=1e-7), name
    for name in w:
        d = rng.standard_normal(w[name].shape)
        fd = (loss({**w, name: w[name] + eps * d}, q, v, k) - loss({**w, name: w[name] - eps * d}, q, v, k)) / (2 * eps)
        assert fd == pytest.approx(float((g[name] * d).sum()), rel=1e-6, abs=1e-7), name


# ----- MultiHeadAttention against the reference ---------------------------------------------------
def seq_mask(rng: np.random.Generator, kind: str, b: int, t: int) -> np.ndarray | None:
    """A (B, T) boolean mask: None, a prefix (lengths 0..T, so some rows may be empty), or holes."""
    if kind == "none":
        return None
    if kind == "prefix":
        lengths = rng.integers(0, t + 1, b)
        lengths[0] = max(1, t - 1) if t > 1 else 1
        return np.arange(t)[None, :] < lengths[:, None]
    m = rng.random((b, t)) > 0.4
    if t >= 3:
        m[0, :3] = [False, True, False]  # certainly not a prefix
    if b > 1:
        m[-1] = False  # a sample with nothing to attend to
    return m


@settings(max_examples=70, deadline=None)
@given(
    b=st.integers(1, 3),
    tq=st.sampled_from([1, 2, 3, 5, 8, 9]),
    tk=st.sampled_from([1, 2, 4, 7, 9]),
    heads=st.integers(1, 3),
    key_dim=st.integers(1, 5),
    value_dim=st.sampled_from([None, 1, 2, 4]),
    mode=st.sampled_from(["self", "cross", "cross_key"]),
    dims=st.tuples(st.integers(1, 5), st.integers(1, 4), st.integers(1, 4)),
    use_bias=st.booleans(),
    use_gate=st.booleans(),
    output_shape=st.sampled_from([None, 3, (2, 2)]),
    causal=st.booleans(),
    window=st.sampled_from([None, 1, 2, 4]),
    amask=st.sampled_from(["none", "rank3", "rank4", "rank2", "batch1", "one_row"]),
    qmask=st.sampled_from(["none", "prefix", "holes"]),
    vmask=st.sampled_from(["none", "prefix", "holes"]),
    kmask=st.booleans(),
    scores=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_mha_matches_the_reference(b: int, tq: int, tk: int, heads: int, key_dim: int, value_dim: int | None,
                                   mode: str, dims: tuple[int, int, int], use_bias: bool, use_gate: bool,
                                   output_shape: Any, causal: bool, window: int | None, amask: str, qmask: str,
                                   vmask: str, kmask: bool, scores: bool, seed: int) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    if mode == "self":
        tk = tq
    dq_, dvf, dkf = dims
    q = rng.standard_normal((b, tq, dq_)).astype(np.float32)
    v = q if mode == "self" else rng.standard_normal((b, tk, dvf)).astype(np.float32)
    k = rng.standard_normal((b, tk, dkf)).astype(np.float32) if mode == "cross_key" else None
    layer = L.MultiHeadAttention(heads, key_dim, value_dim=value_dim, use_bias=use_bias, use_gate=use_gate,
                                 output_shape=output_shape, sliding_window=window)  # fmt: skip
    kw: dict[str, Any] = {"use_causal_mask": causal}
    attention_mask = None
    if amask == "rank3":
        attention_mask = rng.random((b, tq, tk)) > 0.3
        attention_mask[0, 0] = False  # a query row with nothing allowed
    elif amask == "rank4":
        attention_mask = (rng.random((b, heads, tq, tk)) > 0.3).astype(np.int32)  # any dtype: cast to bool
    elif amask == "rank2":
        attention_mask = rng.random((tq, tk)) > 0.2
    elif amask == "batch1":
        attention_mask = rng.random((1, tq, tk)) > 0.2
    elif amask == "one_row":  # (B, 1, Tk): one row for every query
        attention_mask = rng.random((b, 1, tk)) > 0.3
    if attention_mask is not None:
        kw["attention_mask"] = attention_mask
    q_rows = seq_mask(rng, qmask, b, tq)
    if q_rows is not None:
        kw["lengths"] = q_rows  # the query's own mask, as a graph passes it
    v_cols = seq_mask(rng, vmask, b, tk)
    if v_cols is not None:
        kw["value_mask"] = v_cols
    k_cols = seq_mask(rng, "holes", b, tk) if kmask and mode == "cross_key" else None
    if k_cols is not None:
        kw["key_mask"] = k_cols
    layer(q, v, k, **kw)  # builds
    randomize_weights(layer, rng)
    names = [w.name for w in layer.weights]
    want_names = ["query/kernel", "query/bias", "key/kernel", "key/bias"]
    want_names += ["gate/kernel", "gate/bias"] if use_gate else []
    want_names += ["value/kernel", "value/bias", "attention_output/kernel", "attention_output/bias"]
    assert names == [n for n in want_names if use_bias or n.endswith("kernel")]
    dv = value_dim or key_dim
    out = (dq_,) if output_shape is None else (output_shape,) if isinstance(output_shape, int) else output_shape
    assert layer.get_weights()[names.index("attention_output/kernel")].shape == (heads, dv, *out)

    allowed = mha_allowed(b, heads, tq, tk, q_rows, [v_cols, k_cols], attention_mask, causal, window)
    kk = k if k is not None else v
    dy = rng.standard_normal((b, tq, *out)).astype(np.float32)
    ds = rng.standard_normal((b, heads, tq, tk)).astype(np.float32) if scores else None
    y_ref, p_ref, g_ref, dq_ref, dv_ref, dk_ref = mha_reference(weights64(layer), q, v, kk, allowed, key_dim,
                                                                None, dy, ds)  # fmt: skip

    eager = layer(q, v, k, return_attention_scores=scores, **kw)
    for wt in layer.trainable_weights:
        wt.grad = None
    got, call = layer.apply(q, training=True, value=v, key=k, return_attention_scores=scores, **kw)
    if scores:
        y, p = got
        close(p, p_ref, what="scores")
        np.testing.assert_array_equal(eager[1], p)
        assert p.shape == (b, heads, tq, tk)
        np.testing.assert_array_equal(p[~allowed], 0)  # Keras 3.15: masked probabilities are zero
        eager = eager[0]
    else:
        y = got
    close(y, y_ref, what="output")
    np.testing.assert_array_equal(eager, y)  # inference and training agree without dropout
    dq = layer.unapply(call, [dy, ds] if scores else dy)
    extra = call.ctx.kwarg_grads
    if mode == "self":
        assert extra is None
        close(dq, dq_ref + dv_ref + dk_ref, what="d(x) of self-attention")
    else:
        close(dq, dq_ref, what="dquery")
        if k is None:
            assert set(extra) == {"value"}
            close(extra["value"], dv_ref + dk_ref, what="dvalue (also the key)")
        else:
            assert set(extra) == {"value", "key"}
            close(extra["value"], dv_ref, what="dvalue")
            close(extra["key"], dk_ref, what="dkey")
    for wt in layer.trainable_weights:
        close(wt.grad, g_ref[wt.name], what=f"d {wt.name}")


def test_self_attention_fused_path_equals_the_cross_attention_path() -> None:
    """``mha(x, x)`` projects q, k and v in one GEMM; a copy of x as the value takes the separate
    path: the same output, and dx of the first is the sum of the second's three gradients."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 7, 5)).astype(np.float32)
    layer = L.MultiHeadAttention(3, 2, value_dim=4, use_gate=True)
    layer(x, x)
    randomize_weights(layer, rng)
    dy = rng.standard_normal((3, 7, 5)).astype(np.float32)
    mask = rng.random((3, 7, 7)) > 0.3

    def run(value: np.ndarray) -> tuple[Any, ...]:
        for w in layer.trainable_weights:
            w.grad = None
        y, call = layer.apply(x, training=True, value=value, attention_mask=mask, use_causal_mask=True)
        dx = layer.unapply(call, dy)
        return y, dx, call.ctx.kwarg_grads, [w.grad.copy() for w in layer.trainable_weights]

    y1, dx1, extra1, g1 = run(x)
    y2, dx2, extra2, g2 = run(x.copy())
    assert extra1 is None and set(extra2) == {"value"}
    np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx1, dx2 + extra2["value"], rtol=1e-4, atol=1e-5)
    for a, c in zip(g1, g2, strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-5)


def test_explicit_query_mask_is_ignored_as_in_keras() -> None:
    """Keras 3's call replaces ``query_mask`` by the query tensor's own mask; value and key masks given
    by hand do apply."""
    rng = np.random.default_rng(4)
    q = rng.standard_normal((2, 4, 3)).astype(np.float32)
    v = rng.standard_normal((2, 5, 3)).astype(np.float32)
    layer = L.MultiHeadAttention(2, 3)
    base = layer(q, v)
    qm = np.array([[True, False, True, False], [False, False, True, True]])
    np.testing.assert_array_equal(layer(q, v, query_mask=qm), base)
    vm = np.array([[True, True, False, True, False], [True] * 5])
    assert not np.allclose(layer(q, v, value_mask=vm), base)
    np.testing.assert_allclose(layer(q, v, value_mask=vm), layer(q, v, key_mask=vm), rtol=1e-6)


def test_rows_with_nothing_to_attend_give_the_output_bias() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    layer = L.MultiHeadAttention(2, 3)
    layer(x, x)
    randomize_weights(layer, rng)
    bias = layer.get_weights()[-1]
    vm = np.array([[True, True, False, False], [False] * 4])
    y, p = layer(x, x, value_mask=vm, return_attention_scores=True)
    np.testing.assert_array_equal(p[1], 0)
    np.testing.assert_allclose(p[0].sum(-1), 1, rtol=1e-6)
    np.testing.assert_allclose(y[1], np.broadcast_to(bias, (4, 3)), rtol=1e-6, atol=1e-6)
    # and no gradient reaches the inputs through those rows' scores
    _, call = layer.apply(x, training=True, value=x.copy(), value_mask=vm)
    layer.unapply(call, np.ones((2, 4, 3), np.float32))
    np.testing.assert_array_equal(call.ctx.kwarg_grads["value"][1], 0)


# ----- dropout ------------------------------------------------------------------------------------
def dropout_keeps(seed: int, rate: float, b: int, h: int, tq: int, tk: int) -> np.ndarray:
    """The keep factors (B, H, Tq, Tk) that the first training call of ``MultiHeadAttention(h, ...,
    dropout=rate, seed=seed)`` applies to probabilities of that shape, read off a twin layer whose
    queries and keys project to zero (uniform probabilities 1/Tk) and whose values and output are
    identities, so its output is ``Z / Tk``. Checks on the way that every factor is 0 or 1/(1-rate)."""
    twin = L.MultiHeadAttention(h, 1, value_dim=tk, dropout=rate, seed=seed, output_shape=(h, tk))
    q = np.zeros((b, tq, 1), np.float32)
    v = np.broadcast_to(np.eye(tk, dtype=np.float32), (b, tk, tk)).copy()
    twin(q, v)  # builds; inference draws nothing
    ws = []
    for w in twin.weights:
        if w.name == "value/kernel":
            ws.append(np.repeat(np.eye(tk)[:, None, :], h, axis=1))
        elif w.name == "attention_output/kernel":
            ws.append(np.eye(h * tk).reshape(h, tk, h, tk))
        else:
            ws.append(np.zeros(w.shape))
    twin.set_weights(ws)
    y, _ = twin.apply(q, training=True, value=v)
    z = y.transpose(0, 2, 1, 3).astype(np.float64) * tk
    keep = z > 0.5
    np.testing.assert_allclose(z, keep / (1 - rate), rtol=1e-5, atol=1e-6)
    return keep / (1.0 - rate)


@settings(max_examples=20, deadline=None)
@given(
    b=st.integers(1, 3),
    tq=st.integers(1, 9),
    tk=st.integers(1, 9),
    heads=st.integers(1, 3),
    rate=st.sampled_from([0.1, 0.5, 0.9]),
    mode=st.sampled_from(["self", "cross", "cross_key"]),
    use_gate=st.booleans(),
    causal=st.booleans(),
    scores=st.booleans(),
    layer_seed=st.integers(0, 2**31),
    seed=st.integers(0, 2**32 - 1),
)
def test_mha_dropout_matches_the_reference_with_the_same_keeps(b: int, tq: int, tk: int, heads: int, rate: float,
                                                               mode: str, use_gate: bool, causal: bool, scores: bool,
                                                               layer_seed: int, seed: int) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    if mode == "self":
        tk = tq
    q = rng.standard_normal((b, tq, 3)).astype(np.float32)
    v = q if mode == "self" else rng.standard_normal((b, tk, 2)).astype(np.float32)
    k = rng.standard_normal((b, tk, 4)).astype(np.float32) if mode == "cross_key" else None
    layer = L.MultiHeadAttention(heads, 2, value_dim=3, dropout=rate, seed=layer_seed, use_gate=use_gate)
    vm = seq_mask(rng, "holes", b, tk)
    layer(q, v, k, value_mask=vm)
    randomize_weights(layer, rng)
    keep = dropout_keeps(layer_seed, rate, b, heads, tq, tk)
    allowed = mha_allowed(b, heads, tq, tk, None, [vm], None, causal)
    dy = rng.standard_normal((b, tq, 3)).astype(np.float32)
    ds = rng.standard_normal((b, heads, tq, tk)).astype(np.float32) if scores else None
    kk = k if k is not None else v
    y_ref, p_ref, g_ref, dq_ref, dv_ref, dk_ref = mha_reference(weights64(layer), q, v, kk, allowed, 2, keep, dy, ds)
    for w in layer.trainable_weights:
        w.grad = None
    got, call = layer.apply(q, training=True, value=v, key=k, value_mask=vm, use_causal_mask=causal,
                            return_attention_scores=scores)  # fmt: skip
    if scores:
        got, p = got
        close(p, p_ref, what="scores (before dropout, as Keras returns them)")
    close(got, y_ref, what="output with dropout")
    dq = layer.unapply(call, [dy, ds] if scores else dy)
    if mode == "self":
        close(dq, dq_ref + dv_ref + dk_ref, what="dx")
    else:
        close(dq, dq_ref, what="dquery")
        extra = call.ctx.kwarg_grads
        close(extra["value"], dv_ref if k is not None else dv_ref + dk_ref, what="dvalue")
        if k is not None:
            close(extra["key"], dk_ref, what="dkey")
    for w in layer.trainable_weights:
        close(w.grad, g_ref[w.name], what=f"d {w.name}")
    # inference ignores dropout
    y_inf = layer(q, v, k, value_mask=vm, use_causal_mask=causal)
    close(y_inf, mha_reference(weights64(layer), q, v, kk, allowed, 2)[0], what="inference")


def test_dropout_drops_about_rate_of_the_probabilities_and_draws_anew_each_call() -> None:
    for rate in (0.2, 0.6):
        z = dropout_keeps(7, rate, 4, 2, 48, 64)
        dropped = float((z == 0).mean())
        assert abs(dropped - rate) < 0.02, (rate, dropped)
        # different masks for different samples, heads and rows
        assert not np.array_equal(z[0], z[1]) and not np.array_equal(z[:, 0], z[:, 1])
        assert not np.array_equal(z[:, :, 0], z[:, :, 1])
    rng = np.random.default_rng(8)
    q = rng.standard_normal((2, 30, 4)).astype(np.float32)
    layer = L.MultiHeadAttention(2, 4, dropout=0.5, seed=3)
    layer(q, q)
    a, _ = layer.apply(q, training=True, value=q)
    b, _ = layer.apply(q, training=True, value=q)
    assert not np.array_equal(a, b)  # the layer's generator advances
    np.testing.assert_array_equal(layer(q, q), layer(q, q, training=False))
    assert np.abs(a - layer(q, q)).max() > 1e-3
    # on average over draws, dropout with the 1/(1-rate) scale leaves the output unbiased (loosely)
    mean = np.mean([layer.apply(q, training=True, value=q)[0] for _ in range(200)], axis=0)
    assert np.abs(mean - layer(q, q)).mean() < 0.25 * np.abs(layer(q, q)).mean()


def test_dropout_gradient_is_the_derivative_of_the_same_draw() -> None:
    """Fresh layers with the same seed and weights draw the same keeps, so the loss is a function of
    the inputs: its directional derivatives (linear in the value when the key is separate, so exact)
    are the backward's."""
    rng = np.random.default_rng(9)
    q = rng.standard_normal((2, 6, 4)).astype(np.float32)
    v = rng.standard_normal((2, 8, 3)).astype(np.float32)
    k = rng.standard_normal((2, 8, 5)).astype(np.float32)
    dy = rng.standard_normal((2, 6, 4)).astype(np.float32)
    template = L.MultiHeadAttention(2, 3, dropout=0.4, seed=12, use_gate=True)
    template(q, v, k)
    randomize_weights(template, rng)
    weights = template.get_weights()

    def fresh() -> Any:
        layer = L.MultiHeadAttention(2, 3, dropout=0.4, seed=12, use_gate=True)
        layer(q, v, k)
        layer.set_weights(weights)
        return layer

    ya, _ = fresh().apply(q, training=True, value=v, key=k)
    yb, _ = fresh().apply(q, training=True, value=v, key=k)
    np.testing.assert_array_equal(ya, yb)
    assert not np.allclose(ya, fresh()(q, v, k), atol=1e-3)  # something was dropped

    layer = fresh()
    for w in layer.trainable_weights:
        w.grad = None
    _, call = layer.apply(q, training=True, value=v, key=k)
    dq = layer.unapply(call, dy)
    grads = {"query": dq, **call.ctx.kwarg_grads}

    def loss(**args: np.ndarray) -> float:
        inputs = {"query": q, "value": v, "key": k, **args}
        f32 = {name: a.astype(np.float32) for name, a in inputs.items()}
        y, _ = fresh().apply(f32["query"], training=True, value=f32["value"], key=f32["key"])
        return float((y.astype(np.float64) * dy).sum())

    eps = 1e-2
    for name, x, tol in (("value", v, 1e-4), ("query", q, 2e-2), ("key", k, 2e-2)):
        d = rng.standard_normal(x.shape).astype(np.float32)
        fd = (loss(**{name: x + eps * d}) - loss(**{name: x - eps * d})) / (2 * eps)
        assert fd == pytest.approx(float((grads[name] * d).sum()), rel=tol, abs=tol), name


# ----- Attention and AdditiveAttention ------------------------------------------------------------
def dense_reference(mode: str, q: Any, v: Any, k: Any, a: float, wvec: Any, c: float, q_mask: Any,
                    v_mask: Any, causal: bool, keep: Any = None, dy: Any = None,
                    dscores: Any = None) -> tuple[Any, ...]:  # fmt: skip
    """Keras 3's Attention ("dot": ``a·q·kᵀ``; "concat": ``c·Σ tanh(a·(q+k))``) and AdditiveAttention
    ("additive": ``Σ_d w_d·tanh(q_d+k_d)``) in float64. A masked score is ``s - 1e9`` as Keras computes it
    in float32 (rounded to float32, which is what decides a row with nothing to attend to). Returns
    ``(out, weights after dropout)`` and with ``dy`` the gradients ``(dq, dv, dk, da, dw, dc)`` of
    ``sum(out·dy) + sum(weights·dscores)``."""
    q, v, k = (np.asarray(x, np.float64) for x in (q, v, k))
    u = q[:, :, None, :] + k[:, None, :, :]
    T = R = None
    if mode == "dot":
        R = q @ k.transpose(0, 2, 1)
        S = a * R
    elif mode == "concat":
        T = np.tanh(a * u)
        S = c * T.sum(-1)
    else:
        T = np.tanh(u)
        S = T @ np.asarray(wvec, np.float64)
    ok = np.ones(S.shape, bool)
    if v_mask is not None:
        ok &= np.asarray(v_mask, bool)[:, None, :]
    if causal:
        ok &= np.tril(np.ones(S.shape[1:], bool))[None]
    filled = (S.astype(np.float32) - np.float32(1e9)).astype(np.float64)
    Sm = np.where(ok, S, filled)
    E = np.exp(Sm - Sm.max(-1, keepdims=True))
    P = E / E.sum(-1, keepdims=True)
    Z = 1.0 if keep is None else keep
    Pd = P * Z
    out = Pd @ v
    rows = 1.0 if q_mask is None else np.asarray(q_mask, np.float64)[..., None]
    out = out * rows
    if dy is None:
        return out, Pd
    dO = np.asarray(dy, np.float64) * rows
    dPd = dO @ v.transpose(0, 2, 1) + (0.0 if dscores is None else np.asarray(dscores, np.float64))
    dv = Pd.transpose(0, 2, 1) @ dO
    dP = dPd * Z
    dS = P * (dP - (P * dP).sum(-1, keepdims=True))  # s - 1e9 passes the gradient on
    da = dc = 0.0
    dw = None
    if mode == "dot":
        assert R is not None
        dq, dk = a * dS @ k, a * dS.transpose(0, 2, 1) @ q
        da = float((dS * R).sum())
    else:
        assert T is not None
        if mode == "concat":
            dt = dS[..., None] * c * (1 - T * T)
            da = float((dt * u).sum())
            dc = float((dS * T.sum(-1)).sum())
            du = dt * a
        else:
            du = dS[..., None] * np.asarray(wvec, np.float64) * (1 - T * T)
            dw = np.einsum("bij,bijd->d", dS, T)
        dq, dk = du.sum(2), du.sum(1)
    return out, Pd, dq, dv, dk, da, dw, dc


def make_dense_layer(mode: str, dropout: float = 0.0, seed: int | None = None) -> Any:
    if mode.startswith("additive"):
        return L.AdditiveAttention(use_scale=mode == "additive", dropout=dropout, seed=seed)
    return L.Attention(use_scale=mode.endswith("_scale"), score_mode=mode.split("_")[0], dropout=dropout, seed=seed)


@settings(max_examples=60, deadline=None)
@given(
    mode=st.sampled_from(["dot", "dot_scale", "concat", "concat_scale", "additive", "additive_plain"]),
    b=st.integers(1, 3),
    tq=st.integers(1, 8),
    tk=st.integers(1, 8),
    dim=st.integers(1, 4),
    with_key=st.booleans(),
    qmask=st.sampled_from(["none", "prefix", "holes"]),
    vmask=st.sampled_from(["none", "prefix", "holes"]),
    causal=st.booleans(),
    scores=st.booleans(),
    dropout=st.sampled_from([0.0, 0.0, 0.3]),
    seed=st.integers(0, 2**32 - 1),
)
def test_dense_attention_matches_the_reference(mode: str, b: int, tq: int, tk: int, dim: int, with_key: bool,
                                               qmask: str, vmask: str, causal: bool, scores: bool, dropout: float,
                                               seed: int) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    q = rng.uniform(-1, 1, (b, tq, dim)).astype(np.float32)  # |scores| well below 32: see dense_reference
    v = rng.uniform(-1, 1, (b, tk, dim + 2 if with_key else dim)).astype(np.float32)
    k = rng.uniform(-1, 1, (b, tk, dim)).astype(np.float32) if with_key else None
    ins = [q, v] + ([k] if k is not None else [])
    layer = make_dense_layer(mode, dropout, seed=seed % 1000)
    layer(ins)
    names = [w.name for w in layer.weights]
    want = {"dot": [], "dot_scale": ["scale"], "concat": ["concat_score_weight"], "additive": ["scale"],
            "concat_scale": ["scale", "concat_score_weight"], "additive_plain": []}[mode]  # fmt: skip
    assert names == want
    randomize_weights(layer, rng, 0.3, 1.0)
    ws = weights64(layer)
    a = float(ws["scale"]) if "scale" in ws and not mode.startswith("additive") else 1.0
    wvec = ws.get("scale", np.ones(dim)) if mode.startswith("additive") else None
    c = float(ws.get("concat_score_weight", 1.0))
    ref_mode = "additive" if mode.startswith("additive") else mode.split("_")[0]
    qm, vm = seq_mask(rng, qmask, b, tq), seq_mask(rng, vmask, b, tk)
    kk = k if k is not None else v
    dy = rng.standard_normal((b, tq, v.shape[-1])).astype(np.float32)
    ds = rng.standard_normal((b, tq, tk)).astype(np.float32) if scores else None

    for w in layer.trainable_weights:
        w.grad = None
    got, call = layer.apply(ins, training=True, lengths=[qm, vm], return_attention_scores=True,
                            use_causal_mask=causal)  # fmt: skip
    y, p = got
    keep = None
    if dropout:
        # the returned weights are after dropout (as Keras): read the keeps off them
        _, p0 = dense_reference(ref_mode, q, v, kk, a, wvec, c, qm, vm, causal)
        ratio = np.where(p0 > 1e-12, p.astype(np.float64) / np.maximum(p0, 1e-300), 1 / (1 - dropout))
        keep = (ratio > 0.5) / (1 - dropout)
        np.testing.assert_allclose(ratio, keep, rtol=2e-3, atol=2e-3)
    out_ref, p_ref, dq_ref, dv_ref, dk_ref, da_ref, dw_ref, dc_ref = dense_reference(
        ref_mode, q, v, kk, a, wvec, c, qm, vm, causal, keep, dy, ds)  # fmt: skip
    close(y, out_ref, what="output")
    close(p, p_ref, what="attention weights")
    if qm is not None:
        np.testing.assert_array_equal(y[~qm], 0)
    if not dropout:  # the eager call, with and without the scores
        eager = layer(ins, mask=[qm, vm], use_causal_mask=causal, return_attention_scores=scores)
        np.testing.assert_array_equal(eager[0] if scores else eager, y)
    grads = layer.unapply(call, [dy, ds])
    assert len(grads) == len(ins)
    close(grads[0], dq_ref, what="dquery")
    if k is None:
        close(grads[1], dv_ref + dk_ref, what="dvalue (also the key)")
    else:
        close(grads[1], dv_ref, what="dvalue")
        close(grads[2], dk_ref, what="dkey")
    for w in layer.trainable_weights:
        if w.name == "concat_score_weight":
            close(w.grad, dc_ref, what=w.name)
        elif mode.startswith("additive"):
            close(w.grad, dw_ref, what="AdditiveAttention scale")
        else:
            close(w.grad, da_ref, what="Attention scale")


def test_dense_attention_reference_gradients_are_derivatives() -> None:
    rng = np.random.default_rng(13)
    q, v, k = rng.uniform(-1, 1, (2, 3, 4)), rng.uniform(-1, 1, (2, 5, 3)), rng.uniform(-1, 1, (2, 5, 4))
    # no row without keys: there the float32 rounding of s - 1e9 makes the function flat while Keras's
    # (and the reference's) gradient passes through s - 1e9 as autodiff does
    qm, vm = np.array([[1, 0, 1], [1, 1, 1]], bool), np.array([[1, 1, 0, 1, 0], [1, 0, 0, 1, 1]], bool)
    keep = (rng.random((2, 3, 5)) > 0.3) / 0.7
    dy, ds = rng.standard_normal((2, 3, 3)), rng.standard_normal((2, 3, 5))
    wvec = rng.uniform(0.5, 1.5, 4)
    eps = 1e-6
    for mode in ("dot", "concat", "additive"):

        def loss(qq: Any, vv: Any, kk: Any, a: float = 1.3, w: Any = wvec, c: float = 0.7, mode: str = mode) -> float:
            o, p = dense_reference(mode, qq, vv, kk, a, w, c, qm, vm, True, keep)
            return float((o * dy).sum() + (p * ds).sum())

        _, _, dq, dv, dk, da, dw, dc = dense_reference(mode, q, v, k, 1.3, wvec, 0.7, qm, vm, True, keep, dy, ds)
        for i, (x, g) in enumerate(((q, dq), (v, dv), (k, dk))):
            d = rng.standard_normal(x.shape)
            args_hi = [x + eps * d if j == i else y for j, y in enumerate((q, v, k))]
            args_lo = [x - eps * d if j == i else y for j, y in enumerate((q, v, k))]
            fd = (loss(*args_hi) - loss(*args_lo)) / (2 * eps)
            assert fd == pytest.approx(float((g * d).sum()), rel=1e-5, abs=1e-6), (mode, i)
        fd = (loss(q, v, k, a=1.3 + eps) - loss(q, v, k, a=1.3 - eps)) / (2 * eps)
        if mode != "additive":
            assert fd == pytest.approx(da, rel=1e-5, abs=1e-6), mode
        if mode == "concat":
            fd = (loss(q, v, k, c=0.7 + eps) - loss(q, v, k, c=0.7 - eps)) / (2 * eps)
            assert fd == pytest.approx(dc, rel=1e-5, abs=1e-6)
        if mode == "additive":
            d = rng.standard_normal(4)
            fd = (loss(q, v, k, w=wvec + eps * d) - loss(q, v, k, w=wvec - eps * d)) / (2 * eps)
            assert fd == pytest.approx(float(dw @ d), rel=1e-5, abs=1e-6)


def test_dense_attention_row_with_nothing_to_attend_averages_every_value() -> None:
    rng = np.random.default_rng(14)
    q = rng.uniform(-1, 1, (2, 3, 4)).astype(np.float32)
    v = rng.uniform(-1, 1, (2, 5, 4)).astype(np.float32)
    vm = np.array([[True, True, False, False, True], [False] * 5])
    for layer in (L.Attention(), L.Attention(score_mode="concat"), L.AdditiveAttention()):
        y, p = layer([q, v], mask=[None, vm], return_attention_scores=True)
        np.testing.assert_allclose(p[1], 1 / 5, rtol=1e-6)
        np.testing.assert_allclose(y[1], np.broadcast_to(v[1].mean(0), (3, 4)), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(p[0][:, 2:4], 0)


# ----- edge shapes, layouts, dtypes, rank 4 -------------------------------------------------------
def test_one_key_gives_its_projected_value_everywhere() -> None:
    """Tk = 1: softmax over one key is 1, so every query row outputs that key's value, projected;
    with the key masked, every row gets only the output bias."""
    rng = np.random.default_rng(15)
    q = rng.standard_normal((3, 5, 4)).astype(np.float32)
    v = rng.standard_normal((3, 1, 2)).astype(np.float32)
    layer = L.MultiHeadAttention(2, 3, value_dim=2, use_gate=False)
    layer(q, v)
    randomize_weights(layer, rng)
    w = weights64(layer)
    vp = np.einsum("btd,dhe->bthe", v.astype(np.float64), w["value/kernel"]) + w["value/bias"]
    want = np.tensordot(vp, w["attention_output/kernel"], axes=([2, 3], [0, 1])) + w["attention_output/bias"]
    y, p = layer(q, v, return_attention_scores=True)
    close(y, np.broadcast_to(want, y.shape))
    np.testing.assert_array_equal(p, 1)
    y = layer(q, v, value_mask=np.array([[False], [True], [False]]))
    close(y[0], np.broadcast_to(w["attention_output/bias"], (5, 4)))
    close(y[1], np.broadcast_to(want[1], (5, 4)))
    # Attention too
    att = L.Attention(use_scale=True)
    vv = rng.standard_normal((3, 1, 4)).astype(np.float32)
    np.testing.assert_allclose(att([q, vv]), np.broadcast_to(vv, (3, 5, 4)), rtol=1e-6)


def test_one_query_and_self_attention_of_one_step() -> None:
    rng = np.random.default_rng(16)
    x = rng.standard_normal((2, 1, 3)).astype(np.float32)
    v = rng.standard_normal((2, 6, 3)).astype(np.float32)
    layer = L.MultiHeadAttention(3, 2)
    layer(x, v)
    randomize_weights(layer, rng)
    y, p = layer(x, v, return_attention_scores=True)
    y_ref, p_ref = mha_reference(weights64(layer), x, v, v, np.ones((2, 3, 1, 6), bool), 2)
    close(y, y_ref)
    close(p, p_ref)
    y = layer(x, x, use_causal_mask=True)
    close(y, mha_reference(weights64(layer), x, x, x, np.ones((2, 3, 1, 1), bool), 2)[0])


@pytest.mark.parametrize("mode", ["self", "cross", "cross_key"])
def test_an_empty_batch_gives_empty_outputs_and_gradients(mode: str) -> None:
    rng = np.random.default_rng(17)
    q = rng.standard_normal((2, 4, 3)).astype(np.float32)
    v = q if mode == "self" else rng.standard_normal((2, 5, 2)).astype(np.float32)
    k = rng.standard_normal((2, 5, 6)).astype(np.float32) if mode == "cross_key" else None
    layer = L.MultiHeadAttention(2, 3, output_shape=4)
    layer(q, v, k)
    q0 = q[:0]
    v0 = q0 if mode == "self" else v[:0]
    k0 = None if k is None else k[:0]
    y = layer(q0, v0, k0)
    assert y.shape == (0, 4, 4) and y.dtype == np.float32
    y, p = layer(q0, v0, k0, return_attention_scores=True, use_causal_mask=True)
    assert y.shape == (0, 4, 4) and p.shape == (0, 2, 4, 4 if mode == "self" else 5)
    for w in layer.trainable_weights:
        w.grad = None
    y, call = layer.apply(q0, training=True, value=v0, key=k0)
    dq = layer.unapply(call, np.zeros_like(y))
    assert dq.shape == (0, 4, 3)
    for w in layer.trainable_weights:
        np.testing.assert_array_equal(w.grad, np.zeros(w.shape))
    if mode != "self":
        assert call.ctx.kwarg_grads["value"].shape == v0.shape


def test_an_empty_batch_for_attention_layers() -> None:
    q = np.zeros((0, 4, 3), np.float32)
    v = np.zeros((0, 5, 3), np.float32)
    for layer in (L.Attention(use_scale=True), L.Attention(score_mode="concat"), L.AdditiveAttention()):
        y, p = layer([q, v], return_attention_scores=True)
        assert y.shape == (0, 4, 3) and p.shape == (0, 4, 5)
        out, call = layer.apply([q, v], training=True)
        grads = layer.unapply(call, np.zeros_like(out))
        assert [g.shape for g in grads] == [q.shape, v.shape]


def test_layouts_and_dtypes_give_bit_identical_results() -> None:
    """Fortran-order, strided and float64 inputs (and masks of other dtypes and layouts) are the same
    numbers as C-contiguous float32 ones, in MultiHeadAttention (self and cross) and Attention,
    forward and backward."""
    rng = np.random.default_rng(18)
    q = rng.standard_normal((3, 6, 4)).astype(np.float32)
    v = rng.standard_normal((3, 7, 5)).astype(np.float32)
    amask = rng.random((3, 6, 7)) > 0.3
    dy = rng.standard_normal((3, 6, 4)).astype(np.float32)
    cross = L.MultiHeadAttention(2, 3, use_gate=True)
    cross(q, v)
    randomize_weights(cross, rng)
    self_layer = L.MultiHeadAttention(2, 3, use_gate=True)
    self_layer(q, q)
    randomize_weights(self_layer, rng)

    def variants(a: np.ndarray) -> list[np.ndarray]:
        wide = np.zeros((a.shape[0], a.shape[1] * 2, a.shape[2] + 1), a.dtype)
        wide[:, ::2, 1:] = a
        return [np.asfortranarray(a), wide[:, ::2, 1:], a.astype(np.float64), a.astype(np.float64)[:, ::-1][:, ::-1]]

    def run(layer: Any, qq: np.ndarray, vv: np.ndarray, mask: Any) -> list[np.ndarray]:
        for w in layer.trainable_weights:
            w.grad = None
        y, call = layer.apply(qq, training=True, value=vv, attention_mask=mask)
        dx = layer.unapply(call, dy)
        extra = call.ctx.kwarg_grads
        return [y, dx, *([] if extra is None else [extra["value"]]), *(w.grad.copy() for w in layer.trainable_weights)]

    want_cross = run(cross, q, v, amask)
    for qq, vv in zip(variants(q), variants(v), strict=True):
        got = run(cross, qq, vv, amask)
        assert len(got) == len(want_cross)
        for a, c in zip(got, want_cross, strict=True):
            np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(cross(qq, vv, attention_mask=amask), want_cross[0])
    want_self = run(self_layer, q, q, None)
    for x in variants(q):
        got = run(self_layer, x, x, None)  # still recognized as self-attention: one gradient
        assert len(got) == len(want_self)
        for a, c in zip(got, want_self, strict=True):
            np.testing.assert_array_equal(a, c)
    for mask in (amask.astype(np.int8), amask.astype(np.float32), np.asfortranarray(amask),
                 np.repeat(amask, 2, axis=2)[:, :, ::2]):  # fmt: skip
        np.testing.assert_array_equal(cross(q, v, attention_mask=mask), want_cross[0])
    # Attention, forward and backward
    att = L.Attention(use_scale=True)
    vm = rng.random((3, 7)) > 0.3
    att([q, v[..., :4]])

    def run_att(qq: np.ndarray, vv: np.ndarray, m: Any) -> list[np.ndarray]:
        for w in att.trainable_weights:
            w.grad = None
        y, call = att.apply([qq, vv], training=True, lengths=[None, m])
        return [y, *att.unapply(call, dy), att.scale.grad.copy()]

    want = run_att(q, v[..., :4], vm)
    for qq, vv in zip(variants(q), variants(v), strict=True):
        for a, c in zip(run_att(qq, vv[..., :4], vm.astype(np.int32)), want, strict=True):
            np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(att([qq, vv[..., :4]], mask=[None, vm]), want[0])


def test_rank4_inputs_with_attention_axes() -> None:
    """(B, A, T, D) inputs: attention_axes=(2,) attends within each A slice, (1,) within each T slice,
    the default (1, 2) over all A·T positions: the reference by looping over the other axis (or on the
    flattened steps), outputs, scores and gradients."""
    rng = np.random.default_rng(19)
    b, a_, t, s, d = 2, 3, 4, 5, 3
    q = rng.standard_normal((b, a_, t, d)).astype(np.float32)
    v = rng.standard_normal((b, a_, s, 2)).astype(np.float32)
    dy = rng.standard_normal((b, a_, t, d)).astype(np.float32)
    heads, key_dim = 2, 3

    layer = L.MultiHeadAttention(heads, key_dim, attention_axes=(2,), use_gate=True)
    layer(q, v)
    randomize_weights(layer, rng)
    w = weights64(layer)
    for x in layer.trainable_weights:
        x.grad = None
    (y, p), call = layer.apply(q, training=True, value=v, return_attention_scores=True)
    assert y.shape == (b, a_, t, d) and p.shape == (b, a_, heads, t, s)
    ds = rng.standard_normal(p.shape).astype(np.float32)
    dq = layer.unapply(call, [dy, ds])
    dv = call.ctx.kwarg_grads["value"]
    gsum: dict[str, np.ndarray] = {}
    for i in range(a_):
        yi, pi, gi, dqi, dvi, dki = mha_reference(w, q[:, i], v[:, i], v[:, i], np.ones((b, heads, t, s), bool),
                                                  key_dim, None, dy[:, i], ds[:, i])  # fmt: skip
        close(y[:, i], yi, what=f"slice {i}")
        close(p[:, i], pi, what=f"scores {i}")
        close(dq[:, i], dqi, what=f"dq {i}")
        close(dv[:, i], dvi + dki, what=f"dv {i}")
        for n, g in gi.items():
            gsum[n] = gsum.get(n, 0) + g
    for x in layer.trainable_weights:
        close(x.grad, gsum[x.name], what=x.name)

    # axis 1 (not the last of the middle ones): attention across A for each t
    v1 = rng.standard_normal((b, 6, t, 2)).astype(np.float32)
    layer1 = L.MultiHeadAttention(heads, key_dim, attention_axes=1)
    layer1(q, v1)
    randomize_weights(layer1, rng)
    w1 = weights64(layer1)
    y1, p1 = layer1(q, v1, return_attention_scores=True)
    assert p1.shape == (b, t, heads, a_, 6)
    for j in range(t):
        yj, pj = mha_reference(w1, q[:, :, j], v1[:, :, j], v1[:, :, j], np.ones((b, heads, a_, 6), bool), key_dim)
        close(y1[:, :, j], yj, what=f"axis-1 slice {j}")
        close(p1[:, j], pj)

    # default axes: every middle axis attends, as one flattened steps axis
    layer2 = L.MultiHeadAttention(heads, key_dim)
    layer2(q, v)
    assert layer2.attention_axes == (1, 2)
    randomize_weights(layer2, rng)
    w2 = weights64(layer2)
    for x in layer2.trainable_weights:
        x.grad = None
    (y2, p2), call = layer2.apply(q, training=True, value=v, return_attention_scores=True)
    assert p2.shape == (b, heads, a_, t, a_, s)
    ds2 = rng.standard_normal(p2.shape).astype(np.float32)
    dq2 = layer2.unapply(call, [dy, ds2])
    qf, vf = q.reshape(b, a_ * t, d), v.reshape(b, a_ * s, 2)
    yr, pr, gr, dqr, dvr, dkr = mha_reference(w2, qf, vf, vf, np.ones((b, heads, a_ * t, a_ * s), bool), key_dim,
                                              None, dy.reshape(b, a_ * t, d),
                                              ds2.reshape(b, heads, a_ * t, a_ * s))  # fmt: skip
    close(y2.reshape(b, a_ * t, d), yr)
    close(p2.reshape(b, heads, a_ * t, a_ * s), pr)
    close(dq2.reshape(b, a_ * t, d), dqr)
    close(call.ctx.kwarg_grads["value"].reshape(b, a_ * s, 2), dvr + dkr)
    for x in layer2.trainable_weights:
        close(x.grad, gr[x.name], what=x.name)


def test_attention_on_rank4_inputs_folds_the_leading_axes() -> None:
    rng = np.random.default_rng(25)
    q = rng.uniform(-1, 1, (2, 3, 4, 5)).astype(np.float32)
    v = rng.uniform(-1, 1, (2, 3, 6, 5)).astype(np.float32)
    dy = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    for layer in (L.Attention(use_scale=True), L.Attention(score_mode="concat"), L.AdditiveAttention()):
        layer([q, v])
        randomize_weights(layer, rng, 0.3, 1.0)
        for w in layer.trainable_weights:
            w.grad = None
        (y, p), call = layer.apply([q, v], training=True, return_attention_scores=True, use_causal_mask=True)
        assert y.shape == q.shape and p.shape == (2, 3, 4, 6)
        dq, dv = layer.unapply(call, dy)
        ws = weights64(layer)
        additive = isinstance(layer, L.AdditiveAttention)
        mode = "additive" if additive else layer.score_mode
        a = 1.0 if additive or "scale" not in ws else float(ws["scale"])
        wvec = ws.get("scale") if additive else None
        c = float(ws.get("concat_score_weight", 1.0))
        grads = {n: 0.0 for n in ws}
        for i in range(3):
            o, pr, dqr, dvr, dkr, da, dw, dc = dense_reference(mode, q[:, i], v[:, i], v[:, i], a, wvec, c, None, None,
                                                               True, None, dy[:, i])  # fmt: skip
            close(y[:, i], o)
            close(p[:, i], pr)
            close(dq[:, i], dqr)
            close(dv[:, i], dvr + dkr)
            for n in ws:
                grads[n] = grads[n] + (dw if additive else dc if n == "concat_score_weight" else da)
        for w in layer.trainable_weights:
            close(w.grad, grads[w.name], what=w.name)


# ----- errors -------------------------------------------------------------------------------------
def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match=r"num_heads.*positive integer.*num_heads=0"):
        L.MultiHeadAttention(0, 2)
    with pytest.raises(ValueError, match=r"key_dim.*positive integer.*key_dim=-1"):
        L.MultiHeadAttention(2, -1)
    with pytest.raises(ValueError, match=r"value_dim"):
        L.MultiHeadAttention(2, 2, value_dim=0)
    with pytest.raises(ValueError, match=r"'drop'.*dropout.*1.5"):
        L.MultiHeadAttention(2, 2, dropout=1.5, name="drop")
    with pytest.raises(ValueError, match=r"dropout"):
        L.MultiHeadAttention(2, 2, dropout=-0.1)
    with pytest.raises(ValueError, match=r"sliding_window"):
        L.MultiHeadAttention(2, 2, sliding_window=0)
    with pytest.raises(ValueError, match=r"attention_axes"):
        L.MultiHeadAttention(2, 2, attention_axes="x")
    with pytest.raises(ValueError, match=r"'att'.*dropout"):
        L.Attention(dropout=1.0, name="att")
    with pytest.raises(ValueError, match=r"score_mode"):
        L.Attention(score_mode="general")
    with pytest.raises(ValueError, match=r"'add'.*dropout"):
        L.AdditiveAttention(dropout=2, name="add")


def test_call_errors_name_the_layer() -> None:
    q = np.zeros((2, 4, 3), np.float32)
    layer = L.MultiHeadAttention(2, 2, name="mha_err")
    with pytest.raises(TypeError, match=r"'mha_err'.*value"):
        layer(q)
    with pytest.raises(ValueError, match=r"'mha_err'.*batch"):
        layer(q, np.zeros((3, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"'mha_err'.*batch"):
        layer(q, q.copy(), np.zeros((1, 4, 3), np.float32))
    layer(q, q)  # built for 3 features
    with pytest.raises(ValueError, match=r"'mha_err'.*query.*3 features"):
        layer(np.zeros((2, 4, 5), np.float32), q)
    with pytest.raises(ValueError, match=r"'mha_err'.*value.*3 features"):
        layer(q, np.zeros((2, 4, 6), np.float32))
    with pytest.raises(ValueError, match=r"'mha_err'.*attention_mask.*broadcast"):
        layer(q, q, attention_mask=np.ones((2, 3, 4), bool))
    with pytest.raises(ValueError, match=r"'mha_err'.*attention_mask.*broadcast"):
        layer(q, q, attention_mask=np.ones((2, 5, 4, 4), bool))
    with pytest.raises(ValueError, match=r"'mha_err'.*attention_mask"):
        layer(q, q, attention_mask=np.ones((4,), bool))
    with pytest.raises(ValueError, match=r"'mha_err'.*mask"):
        layer(q, q, value_mask=np.ones((2, 5), bool))
    with pytest.raises(ValueError, match=r"'mha_err'.*rank"):
        layer(q[0], q[0])
    cross = L.MultiHeadAttention(2, 2, name="kv_err")
    with pytest.raises(ValueError, match=r"'kv_err'"):
        cross(q, q, np.zeros((2, 5, 3), np.float32))  # key and value of different lengths
    att = L.Attention(name="att_err")
    with pytest.raises(ValueError, match=r"'att_err'.*list"):
        att(q)
    with pytest.raises(ValueError, match=r"'att_err'.*length 2 or 3"):
        att([q, q, q, q])
    with pytest.raises(ValueError, match=r"'att_err'.*length 2 or 3"):
        att([q])
    with pytest.raises(ValueError, match=r"'att_err'.*last dimension"):
        att([q, np.zeros((2, 4, 2), np.float32)])
    with pytest.raises(ValueError, match=r"'att_err'.*last dimension"):
        att([q, q, np.zeros((2, 4, 5), np.float32)])
    with pytest.raises(ValueError, match=r"'att_err'.*batch"):
        att([q, np.zeros((3, 4, 3), np.float32)])
    with pytest.raises(ValueError, match=r"'att_err'.*mask"):
        att([q, q], mask=np.ones((2, 4), bool))
    add = L.AdditiveAttention(name="add_err")
    with pytest.raises(ValueError, match=r"'add_err'.*last dimension"):
        add([q, np.zeros((2, 4, 2), np.float32)])


class _Opts:
    def __init__(self, **kw: Any):
        base = dict(heads=2, key_dim=2, value_dim=2, cols=(0, 0, 0), scale=1.0, causal=False, window=0,
                    replace_fill=True, dropout=0.0, seed=0, scores_after_dropout=False)  # fmt: skip
        base.update(kw)
        self.__dict__.update(base)


def test_the_raw_bindings_refuse_bad_shapes() -> None:
    q = np.ones((2, 3, 4), np.float32)
    fwd = _seqcore.attention_forward
    with pytest.raises(ValueError, match="attention_forward.*batch"):
        fwd(q, np.ones((3, 3, 4), np.float32), q, _Opts(), None, None, None, False)
    with pytest.raises(ValueError, match="attention_forward.*key length"):
        fwd(q, q, np.ones((2, 5, 4), np.float32), _Opts(), None, None, None, False)
    with pytest.raises(ValueError, match="columns"):
        fwd(q, q, q, _Opts(cols=(1, 0, 0)), None, None, None, False)
    with pytest.raises(ValueError, match="columns"):
        fwd(q, q, q, _Opts(heads=3), None, None, None, False)
    with pytest.raises(ValueError, match="columns"):
        fwd(q, q, q, _Opts(value_dim=3), None, None, None, False)
    for rate in (1.0, 1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="dropout"):
            fwd(q, q, q, _Opts(dropout=rate), None, None, None, False)
    with pytest.raises(ValueError, match="mask"):
        fwd(q, q, q, _Opts(), None, None, np.ones((2, 1, 3, 2), np.uint8), False)
    with pytest.raises(ValueError, match="mask"):
        fwd(q, q, q, _Opts(), None, None, np.ones((2, 3, 3, 3), np.uint8), False)
    with pytest.raises(ValueError, match="lengths"):
        fwd(q, q, q, _Opts(), None, np.array([1, 9]), None, False)
    with pytest.raises(ValueError, match="lengths"):
        fwd(q, q, q, _Opts(), np.array([-1, 2]), None, None, False)
    with pytest.raises(ValueError, match="lengths"):
        fwd(q, q, q, _Opts(), np.array([1, 2, 3]), None, None, False)
    with pytest.raises(ValueError, match="contiguous"):
        fwd(np.ones((2, 3, 8), np.float32)[:, :, ::2], q, q, _Opts(), None, None, None, False)
    with pytest.raises(TypeError):
        fwd(q.astype(np.float64), q, q, _Opts(), None, None, None, False)
    with pytest.raises(TypeError):
        fwd(q[0], q, q, _Opts(), None, None, None, False)

    o, stats, _ = fwd(q, q, q, _Opts(), None, None, None, False)
    assert o.shape == (2, 3, 4) and stats.shape == (2, 2, 3, 2)

    def bwd(**kw: Any) -> Any:
        a = dict(q=q, k=q, v=q, opts=_Opts(), o=o, stats=stats, d_o=np.ones_like(o), ds=None, de=None, fused=False)
        a.update(kw)
        return _seqcore.attention_backward(a["q"], a["k"], a["v"], a["opts"], None, None, None, a["o"],
                                           a["stats"], a["d_o"], a["ds"], a["de"], None, (True, True, True), a["fused"],
                                           False)  # fmt: skip

    assert [g.shape for g in bwd()[:3]] == [(2, 3, 4)] * 3
    with pytest.raises(ValueError, match="attention_backward.*batch"):
        bwd(k=np.ones((1, 3, 4), np.float32))
    with pytest.raises(ValueError, match="stats"):
        bwd(stats=np.ones((2, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="d_o"):
        bwd(d_o=np.ones((2, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"\bo\b"):
        bwd(o=np.ones((1, 3, 4), np.float32))
    with pytest.raises(ValueError, match="d_scores"):
        bwd(ds=np.ones((2, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="d_scores"):
        bwd(ds=np.ones((2, 2, 3, 2), np.float32), de=np.ones((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="dropout"):
        bwd(opts=_Opts(dropout=1.0))
    with pytest.raises(ValueError, match="fused"):
        bwd(v=np.ones((2, 3, 6), np.float32), fused=True)
    qkv = np.ones((2, 3, 12), np.float32)
    with pytest.raises(ValueError, match="overlap"):
        bwd(q=qkv, k=qkv, v=qkv, opts=_Opts(cols=(0, 2, 8)), fused=True)
    with pytest.raises(ValueError, match="attention_scores.*stats"):
        _seqcore.attention_scores(q, q, _Opts(), None, None, None, np.ones((2, 2, 2, 2), np.float32))
    with pytest.raises(ValueError, match="attention_scores.*batch"):
        _seqcore.attention_scores(q, np.ones((1, 3, 4), np.float32), _Opts(), None, None, None, stats)


@pytest.mark.parametrize(
    "opts",
    [
        pytest.param("cols=(2**64 - 1, 0, 0)", id="column-offset-overflows"),
        pytest.param("heads=2**63, key_dim=2, value_dim=2", id="heads-times-dim-overflows"),
        pytest.param("heads=2, key_dim=2**63, value_dim=2", id="key-dim-overflows"),
    ],
)
def test_the_raw_bindings_refuse_overflowing_options(run_python: Any, opts: str) -> None:
    """Column offsets and widths whose sums overflow must be refused as bad shapes (ValueError), not
    reach the kernel: run in a child process, since an unchecked one can crash it."""
    code = f"""
import numpy as np
from seqcore import _seqcore
class O:
    def __init__(self, **kw):
        d = dict(heads=2, key_dim=2, value_dim=2, cols=(0, 0, 0), scale=1.0, causal=False, window=0,
                 replace_fill=True, dropout=0.0, seed=0, scores_after_dropout=False)
        d.update(kw)
        self.__dict__.update(d)
q = np.ones((2, 3, 4), np.float32)
try:
    _seqcore.attention_forward(q, q, q, O({opts}), None, None, None, False)
    print("NO ERROR")
except ValueError as e:
    print("VALUE ERROR", e)
except BaseException as e:
    print("OTHER", type(e).__name__, e)
"""
    r = run_python(code, env={"RUST_BACKTRACE": "0"})
    assert r.returncode == 0, f"the process died (return code {r.returncode}): {r.stderr[-500:]}"
    assert r.stdout.startswith("VALUE ERROR"), r.stdout + r.stderr[-500:]


# ----- configs, functional models, saving ---------------------------------------------------------
def test_config_round_trips() -> None:
    rng = np.random.default_rng(20)
    q = rng.standard_normal((2, 5, 4)).astype(np.float32)
    v = rng.standard_normal((2, 6, 3)).astype(np.float32)
    layer = L.MultiHeadAttention(3, 2, value_dim=4, dropout=0.25, use_bias=False, output_shape=(2, 3),
                                 sliding_window=3, use_gate=True, seed=7, kernel_initializer="he_normal",
                                 name="cfg_mha")  # fmt: skip
    y = layer(q, v, use_causal_mask=True)
    assert y.shape == (2, 5, 2, 3)
    cfg = layer.get_config()
    for key, val in {"num_heads": 3, "key_dim": 2, "value_dim": 4, "dropout": 0.25, "use_bias": False,
                     "output_shape": (2, 3), "sliding_window": 3, "use_gate": True, "seed": 7,
                     "name": "cfg_mha"}.items():  # fmt: skip
        assert cfg[key] == val or (key == "output_shape" and tuple(cfg[key]) == val), key
    clone = L.MultiHeadAttention.from_config(cfg)
    assert clone.get_config() == cfg
    clone(q, v)
    assert [w.name for w in clone.weights] == [w.name for w in layer.weights]
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(q, v, use_causal_mask=True), y)
    # layers from one config (one seed) draw the same dropout
    a = L.MultiHeadAttention.from_config(cfg)
    b = L.MultiHeadAttention.from_config(cfg)
    for m in (a, b):
        m(q, v)
        m.set_weights(layer.get_weights())
    np.testing.assert_array_equal(a.apply(q, training=True, value=v)[0], b.apply(q, training=True, value=v)[0])

    for cls, kw in ((L.Attention, {"use_scale": True, "score_mode": "concat", "dropout": 0.1, "seed": 3}),
                    (L.AdditiveAttention, {"use_scale": True, "dropout": 0.2})):  # fmt: skip
        att = cls(**kw)
        vv = v[..., :1].repeat(4, axis=-1)
        out = att([q, vv])
        randomize_weights(att, rng, 0.3, 1.0)
        out = att([q, vv])
        cfg = att.get_config()
        assert all(cfg[k] == val for k, val in kw.items())
        twin = cls.from_config(cfg)
        assert twin.get_config() == cfg
        twin([q, vv])
        twin.set_weights(att.get_weights())
        np.testing.assert_array_equal(twin([q, vv]), out)
    assert "score_mode" not in L.AdditiveAttention().get_config()


def mha_param_count(heads: int, key_dim: int, value_dim: int, dq: int, dv: int, dk: int, out: int, bias: bool = True,
                    gate: bool = False) -> int:  # fmt: skip
    """Keras's parameter count from the EinsumDense shapes."""
    b = 1 if bias else 0
    n = dq * heads * key_dim + b * heads * key_dim  # query
    n += dk * heads * key_dim + b * heads * key_dim  # key
    n += dv * heads * value_dim + b * heads * value_dim  # value
    if gate:
        n += dq * heads * value_dim + b * heads * value_dim
    return n + heads * value_dim * out + b * out  # attention_output


def test_parameter_counts() -> None:
    # the hand-computed Keras value for MultiHeadAttention(num_heads=2, key_dim=3) on 5 features
    assert mha_param_count(2, 3, 3, 5, 5, 5, 5) == 2 * (5 * 2 * 3 + 2 * 3) + (5 * 2 * 3 + 2 * 3) + (2 * 3 * 5 + 5)
    x = np.zeros((1, 4, 5), np.float32)
    layer = L.MultiHeadAttention(num_heads=2, key_dim=3)
    layer(x, x)
    assert layer.count_params() == 2 * (5 * 2 * 3 + 2 * 3) + (5 * 2 * 3 + 2 * 3) + (2 * 3 * 5 + 5) == 143
    for kw, shapes in (({"value_dim": 4, "output_shape": 7, "use_gate": True}, (6, 3, 2)),
                       ({"use_bias": False}, (6, 3, 2)), ({}, (6, 3, None))):  # fmt: skip
        dq, dv, dk = shapes
        m = L.MultiHeadAttention(3, 2, **kw)
        q, v = np.zeros((1, 2, dq), np.float32), np.zeros((1, 3, dv), np.float32)
        k = None if dk is None else np.zeros((1, 3, dk), np.float32)
        m(q, v, k)
        want = mha_param_count(3, 2, kw.get("value_dim", 2), dq, dv, dk or dv, kw.get("output_shape", dq),
                               kw.get("use_bias", True), kw.get("use_gate", False))  # fmt: skip
        assert m.count_params() == want == sum(int(np.prod(w.shape)) for w in m.weights), kw


def test_functional_self_attention_trains_saves_and_counts(tmp_path: Any) -> None:
    rng = np.random.default_rng(21)
    heads, key_dim, dim, steps = 2, 3, 5, 6
    inp = seqcore.Input((steps, dim))
    mha = L.MultiHeadAttention(heads, key_dim, name="mha")
    h = mha(inp, inp)
    out = L.Dense(1, name="head")(L.GlobalAveragePooling1D()(h))
    m = seqcore.Model(inp, out)
    mha_params = 2 * (dim * heads * key_dim + heads * key_dim) + (dim * heads * key_dim + heads * key_dim) + (
        heads * key_dim * dim + dim)  # fmt: skip
    assert mha.count_params() == mha_params == 143
    total = mha_params + dim + 1
    assert m.count_params() == total == sum(int(np.prod(w.shape)) for w in m.weights)
    text = m.summary(print_fn=lambda s: None)
    assert re.search(rf"Total params: {total:,} ", text), text
    assert re.search(r"mha \(MultiHeadAttention\)\s*│\s*\(None, 6, 5\)\s*│\s*143\b", text), text
    # the model's output is the eager layers'
    x = rng.standard_normal((32, steps, dim)).astype(np.float32)
    eager = m.get_layer("head")(mha(x, x).mean(axis=1))
    np.testing.assert_allclose(m.predict(x, verbose=0), eager, rtol=1e-5, atol=1e-6)
    # a tiny problem: the target depends on interactions between steps
    y = (x[:, :, 0] * x[:, ::-1, 1]).mean(axis=1, keepdims=True).astype(np.float32)
    m.compile(seqcore.optimizers.Adam(0.02), "mse")
    hist = m.fit(x, y, epochs=15, batch_size=8, verbose=0).history["loss"]
    assert hist[-1] < 0.7 * hist[0], hist
    path = tmp_path / "mha.seqcore"
    m.save(path)
    back = seqcore.models.load_model(path)
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))
    assert back.get_layer("mha").get_config() == mha.get_config()


def test_functional_cross_attention_with_masks_and_scores(tmp_path: Any) -> None:
    """Two inputs, a Masking layer on each (their padding masks reach the query rows and the value
    columns), the scores as a second output; the model against the reference; fit; save and load."""
    rng = np.random.default_rng(22)
    b, tq, tk = 8, 5, 7
    qi, vi = seqcore.Input((tq, 3), name="q"), seqcore.Input((tk, 4), name="v")
    mq, mv = L.Masking()(qi), L.Masking()(vi)
    mha = L.MultiHeadAttention(2, 3, name="xatt")
    y, scores = mha(mq, mv, return_attention_scores=True)
    model = seqcore.Model([qi, vi], [y, scores])
    qx = rng.standard_normal((b, tq, 3)).astype(np.float32)
    vx = rng.standard_normal((b, tk, 4)).astype(np.float32)
    ql, vl = rng.integers(1, tq + 1, b), rng.integers(0, tk + 1, b)
    qrows, vcols = np.arange(tq)[None] < ql[:, None], np.arange(tk)[None] < vl[:, None]
    qx[~qrows], vx[~vcols] = 0, 0  # post-padding
    randomize_weights(mha, rng)
    got_y, got_p = model.predict([qx, vx], verbose=0)
    allowed = mha_allowed(b, 2, tq, tk, qrows, [vcols])
    want_y, want_p = mha_reference(weights64(mha), qx, vx, vx, allowed, 3)
    close(got_y, want_y)
    close(got_p, want_p)
    # fit on the output only (the scores have no target: zero weight)
    target = rng.standard_normal((b, tq, 3)).astype(np.float32)
    model.compile(seqcore.optimizers.Adam(0.05), ["mse", "mse"], loss_weights=[1.0, 0.0])
    first = model.evaluate([qx, vx], [target, want_p.astype(np.float32)], verbose=0)
    model.fit([qx, vx], [target, want_p.astype(np.float32)], epochs=20, verbose=0)
    last = model.evaluate([qx, vx], [target, want_p.astype(np.float32)], verbose=0)
    first, last = (np.atleast_1d(np.asarray(r, np.float64))[0] for r in (first, last))
    assert last < first
    path = tmp_path / "xatt.seqcore"
    model.save(path)
    back = seqcore.models.load_model(path)
    for a, c in zip(back.predict([qx, vx], verbose=0), model.predict([qx, vx], verbose=0), strict=True):
        np.testing.assert_array_equal(a, c)


def attention_model(seed: int) -> tuple[Any, list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    qi, vi = seqcore.Input((4, 3)), seqcore.Input((6, 3))
    a = L.Attention(use_scale=True, score_mode="concat", name="luong")([qi, vi])
    d = L.Attention(use_scale=True, name="dot")([qi, vi])
    c = L.AdditiveAttention(name="bahdanau")([qi, vi, vi])
    out = L.Dense(2)(L.Concatenate()([a, d, c]))
    model = seqcore.Model([qi, vi], out)
    assert [model.get_layer(n).count_params() for n in ("luong", "dot", "bahdanau")] == [2, 1, 3]
    for n in ("luong", "dot", "bahdanau"):
        randomize_weights(model.get_layer(n), rng, 0.3, 1.0)
    xs = [rng.standard_normal((16, 4, 3)).astype(np.float32), rng.standard_normal((16, 6, 3)).astype(np.float32)]
    return model, xs, rng.standard_normal((16, 4, 2)).astype(np.float32)


def test_functional_attention_layers_save_and_load(tmp_path: Any) -> None:
    model, xs, _ = attention_model(23)
    path = tmp_path / "att.seqcore"
    model.save(path)
    back = seqcore.models.load_model(path)
    np.testing.assert_array_equal(back.predict(xs, verbose=0), model.predict(xs, verbose=0))
    assert back.get_layer("luong").get_config() == model.get_layer("luong").get_config()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_functional_attention_layers_train(optimizer: str) -> None:
    """Attention's scalar weights (``scale`` and ``concat_score_weight``, shape ()) train in a model."""
    model, xs, y = attention_model(24)
    model.compile(optimizer, "mse")
    names = ("luong", "dot", "bahdanau")
    before = {n: model.get_layer(n).get_weights() for n in names}
    hist = model.fit(xs, y, epochs=5, verbose=0).history["loss"]
    assert hist[-1] < hist[0]
    for n in names:
        after = model.get_layer(n).get_weights()
        assert [a.shape for a in after] == [b.shape for b in before[n]], n
        assert all(not np.array_equal(a, b) for a, b in zip(after, before[n], strict=True)), n


# ----- determinism ------------------------------------------------------------------------------
def test_thread_counts_give_bit_identical_results() -> None:
    """Two query blocks (Tq > 128), several heads and samples, masks, dropout and scores: the output,
    the scores and every gradient with 1 and 2 threads are the same bits (and so is a rerun)."""
    rng = np.random.default_rng(24)
    b, t, d = 2, 150, 8
    q = rng.standard_normal((b, t, d)).astype(np.float32)
    v = rng.standard_normal((b, 140, 6)).astype(np.float32)
    dy = rng.standard_normal((b, t, d)).astype(np.float32)
    ds = rng.standard_normal((b, 3, t, 140)).astype(np.float32)
    amask = rng.random((b, t, 140)) > 0.2
    vm = np.arange(140)[None] < np.array([[130], [77]])
    template = L.MultiHeadAttention(3, 4, dropout=0.3, seed=5, use_gate=True)
    template(q, v)
    randomize_weights(template, rng, 0.3)
    weights = template.get_weights()
    att_q = rng.standard_normal((b, t, 6)).astype(np.float32)

    def run() -> list[np.ndarray]:
        out = []
        for self_attn in (False, True):
            layer = L.MultiHeadAttention(3, 4, dropout=0.3, seed=5, use_gate=True)
            vv = q if self_attn else v
            layer(q, vv)
            if self_attn:
                randomize_weights(layer, np.random.default_rng(0), 0.3)
            else:
                layer.set_weights(weights)
            kw = {"use_causal_mask": True} if self_attn else {"attention_mask": amask, "value_mask": vm}
            (y, p), call = layer.apply(q, training=True, value=vv, return_attention_scores=True, **kw)
            dx = layer.unapply(call, [dy, None if self_attn else ds])
            extra = call.ctx.kwarg_grads or {}
            out += [y, p, dx, *extra.values(), *(w.grad.copy() for w in layer.trainable_weights)]
        # one sample and one head (fewer tasks than threads: the GEMMs get the spare threads), keys
        # in several blocks
        big = L.MultiHeadAttention(1, 64, dropout=0.1, seed=2)
        bq = np.random.default_rng(1).standard_normal((1, 200, 16)).astype(np.float32)
        bv = np.random.default_rng(2).standard_normal((1, 1100, 16)).astype(np.float32)
        big(bq, bv)
        randomize_weights(big, np.random.default_rng(3), 0.2)
        y, call = big.apply(bq, training=True, value=bv, value_mask=np.arange(1100)[None] < 1050)
        out += [y, big.unapply(call, np.ones_like(y)), call.ctx.kwarg_grads["value"]]
        out += [w.grad.copy() for w in big.trainable_weights]
        att = L.Attention(use_scale=True, dropout=0.2, seed=1)
        att([att_q, v])
        (y, p), call = att.apply([att_q, v], training=True, lengths=[None, vm], return_attention_scores=True)
        out += [y, p, *att.unapply(call, [dy[..., :6], ds[:, 0]])]
        return out

    before = seqcore.get_num_threads()
    try:
        seqcore.set_num_threads(1)
        one = run()
        seqcore.set_num_threads(2)
        two = run()
        again = run()
    finally:
        seqcore.set_num_threads(before)
    assert len(one) == len(two) == len(again)
    for i, (a, c, e) in enumerate(zip(one, two, again, strict=True)):
        np.testing.assert_array_equal(a, c, err_msg=f"array {i}: 1 vs 2 threads")
        np.testing.assert_array_equal(c, e, err_msg=f"array {i}: rerun")
