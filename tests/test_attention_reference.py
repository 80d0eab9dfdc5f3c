"""MultiHeadAttention, Attention and AdditiveAttention against an independent float64 NumPy
reference over hypothesis-drawn shapes and options (masks of every kind, causal, sliding window,
gates, output shapes), finite differences through the dropout path, bit-identical results across
thread counts, graphs, saving and the errors."""

from __future__ import annotations

import numpy as np
import pytest
import seqcore
from hypothesis import given, settings
from hypothesis import strategies as st
from seqcore import _seqcore
from seqcore import layers as L


# ----- the reference ------------------------------------------------------------------------------
def mha_reference(layer, q, v, k, allowed, causal, window):  # type: ignore[no-untyped-def]
    """Keras's MultiHeadAttention in float64: where(mask, softmax(where(mask, s, -1e9)), 0)."""
    w = {x.name: x.value.astype(np.float64) for x in layer.weights}
    q, v, k = (a.astype(np.float64) for a in (q, v, k))

    def proj(x, name):  # type: ignore[no-untyped-def]
        y = np.einsum("btd,dhe->bthe", x, w[f"{name}/kernel"])
        return y + w[f"{name}/bias"] if f"{name}/bias" in w else y

    Q, K, V = proj(q, "query"), proj(k, "key"), proj(v, "value")
    s = np.einsum("bqhe,bkhe->bhqk", Q, K) / np.sqrt(layer.key_dim)
    tq, tk = s.shape[2], s.shape[3]
    ok = np.broadcast_to(allowed, (q.shape[0], tq, tk)).copy()
    i, j = np.arange(tq)[:, None], np.arange(tk)[None, :]
    if causal:
        ok &= j <= i
    if window:
        ok &= np.abs(i - j) < window
    ok4 = ok[:, None]
    s = np.where(ok4, s, -1e9)
    p = np.exp(s - s.max(-1, keepdims=True))
    p = np.where(ok4, p / p.sum(-1, keepdims=True), 0.0)
    o = np.einsum("bhqk,bkhe->bqhe", p, V)
    if "gate/kernel" in w:
        o = o / (1 + np.exp(-proj(q, "gate")))
    y = np.einsum("bqhe,he...->bq...", o, w["attention_output/kernel"])
    if "attention_output/bias" in w:
        y = y + w["attention_output/bias"]
    return y, p


def loss_and_grads(layer, q, v, k, dy, call_kw):  # type: ignore[no-untyped-def]
    for w in layer.weights:
        w.grad = None
    y, call = layer.apply(q, training=True, value=v, key=k, **call_kw)
    dq = layer.unapply(call, dy)
    return y, dq, call.ctx.kwarg_grads, {w.name: w.grad.copy() for w in layer.trainable_weights}


def directional(f, x, d, eps=1e-3):  # type: ignore[no-untyped-def]
    return (f(x + eps * d) - f(x - eps * d)) / (2 * eps)


@settings(max_examples=25, deadline=None)
@given(
    b=st.integers(1, 3),
    tq=st.integers(1, 9),
    tk=st.integers(1, 9),
    heads=st.integers(1, 3),
    key_dim=st.integers(1, 5),
    value_dim=st.sampled_from([None, 1, 3]),
    use_bias=st.booleans(),
    gate=st.booleans(),
    out=st.sampled_from([None, 2]),
    causal=st.booleans(),
    window=st.sampled_from([None, 1, 3]),
    mask_kind=st.sampled_from(["none", "dense", "value_prefix", "value_holes"]),
    separate_key=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_mha_matches_the_float64_reference(b, tq, tk, heads, key_dim, value_dim, use_bias, gate, out, causal, window,
                                           mask_kind, separate_key, seed):  # type: ignore[no-untyped-def]  # fmt: skip
    rng = np.random.default_rng(seed)
    dq_, dv_ = 4, 3
    q = rng.standard_normal((b, tq, dq_)).astype(np.float32)
    v = rng.standard_normal((b, tk, dv_)).astype(np.float32)
    k = rng.standard_normal((b, tk, 5)).astype(np.float32) if separate_key else None
    layer = L.MultiHeadAttention(heads, key_dim, value_dim=value_dim, use_bias=use_bias, use_gate=gate,
                                 output_shape=out, sliding_window=window)  # fmt: skip
    allowed = np.ones((b, tq, tk), bool)
    call_kw: dict = {"use_causal_mask": causal}
    if mask_kind == "dense":
        allowed = rng.random((b, tq, tk)) > 0.35
        call_kw["attention_mask"] = allowed
    elif mask_kind.startswith("value"):
        if mask_kind == "value_prefix":
            vm = np.arange(tk)[None, :] < rng.integers(0, tk + 1, b)[:, None]
        else:
            vm = rng.random((b, tk)) > 0.4
        call_kw["value_mask"] = vm
        allowed = np.broadcast_to(vm[:, None, :], (b, tq, tk))
    layer(q, v, k, **call_kw)
    for w in layer.weights:
        w.value[...] = rng.standard_normal(w.shape).astype(np.float32) * 0.5
    want, _ = mha_reference(layer, q, v, k if k is not None else v, allowed, causal, window)
    got = layer(q, v, k, **call_kw)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)

    dy = rng.standard_normal(got.shape).astype(np.float32)
    _, dq, extra, dws = loss_and_grads(layer, q, v, k, dy, call_kw)

    def loss(**repl):  # type: ignore[no-untyped-def]
        args = {"q": q, "v": v, "k": k if k is not None else v, **repl}
        if k is None and "v" in repl:
            args["k"] = repl["v"]  # the value is also the key
        y, _ = mha_reference(layer, args["q"], args["v"], args["k"], allowed, causal, window)
        return float((y * dy).sum())

    for name, x, g in [("q", q, dq), ("v", v, extra["value"])] + ([("k", k, extra["key"])] if k is not None else []):
        d = rng.standard_normal(x.shape)
        fd = directional(lambda a, name=name: loss(**{name: a}), x.astype(np.float64), d)
        assert abs(fd - float((g * d).sum())) <= 2e-3 * (1 + abs(fd)), name
    for w in layer.trainable_weights:
        d = rng.standard_normal(w.shape)
        keep = w.value.copy()

        def at(a, w=w, keep=keep):  # type: ignore[no-untyped-def]
            w.value[...] = a
            try:
                return loss()
            finally:
                w.value[...] = keep

        # float32 weights: a larger step, the loss is smooth in them
        fd = directional(at, keep.astype(np.float64), d, eps=1e-2)
        assert abs(fd - float((dws[w.name] * d).sum())) <= 5e-3 * (1 + abs(fd)), w.name


def test_rows_with_nothing_to_attend_give_zero_attention() -> None:
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 4, 3)).astype(np.float32)
    layer = L.MultiHeadAttention(2, 3, use_bias=False)
    mask = np.ones((2, 4, 4), bool)
    mask[1] = False
    y, scores = layer(q, q, attention_mask=mask, return_attention_scores=True)
    assert np.all(scores[1] == 0) and np.allclose(scores[0].sum(-1), 1, atol=1e-6)
    np.testing.assert_array_equal(y[1], 0)  # no bias: zero attention projects to zero


def test_dropout_gradient_is_the_gradient_of_the_same_draw() -> None:
    rng = np.random.default_rng(1)
    q = rng.standard_normal((2, 9, 4)).astype(np.float32)
    v = rng.standard_normal((2, 11, 4)).astype(np.float32)
    dy = rng.standard_normal((2, 9, 4)).astype(np.float32)

    def fresh() -> L.MultiHeadAttention:
        layer = L.MultiHeadAttention(2, 3, dropout=0.4, seed=5)
        layer(q, v)
        for i, w in enumerate(layer.weights):
            w.value[...] = np.random.default_rng(i).standard_normal(w.shape).astype(np.float32) * 0.5
        return layer

    a, b = fresh(), fresh()
    ya, _ = a.apply(q, training=True, value=v)
    yb, _ = b.apply(q, training=True, value=v)
    np.testing.assert_array_equal(ya, yb)  # the same seed draws the same keeps
    np.testing.assert_array_equal(a(q, v), a(q, v, training=False))  # inference: no dropout
    assert np.abs(ya - a(q, v)).max() > 1e-3  # training drops something
    layer = fresh()
    _, call = layer.apply(q, training=True, value=v)
    layer.unapply(call, dy)
    dv = call.ctx.kwarg_grads["value"]
    d = rng.standard_normal(v.shape).astype(np.float32)

    def loss(vv: np.ndarray) -> float:
        y, _ = fresh().apply(q, training=True, value=vv.astype(np.float32))
        return float((y.astype(np.float64) * dy).sum())

    fd = directional(loss, v.astype(np.float64), d, eps=1e-2)
    assert abs(fd - float((dv * d).sum())) <= 5e-3 * (1 + abs(fd))


# ----- Attention and AdditiveAttention ------------------------------------------------------------
def dense_attention_reference(mode, q, v, k, scale, cw, q_mask, v_mask, causal):  # type: ignore[no-untyped-def]
    q, v, k = (a.astype(np.float64) for a in (q, v, k))
    if mode == "dot":
        s = q @ k.transpose(0, 2, 1) * scale
    elif mode == "concat":
        s = cw * np.tanh(scale * (q[:, :, None] + k[:, None])).sum(-1)
    else:  # additive: scale is a vector
        s = (np.tanh(q[:, :, None] + k[:, None]) * scale).sum(-1)
    ok = np.ones(s.shape, bool)
    if v_mask is not None:
        ok &= v_mask[:, None, :]
    if causal:
        ok &= np.tril(np.ones(s.shape[1:], bool))[None]
    s = np.where(ok, s, s - 1e9)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    y = p @ v
    if q_mask is not None:
        y = y * q_mask[..., None]
    return y, p


@settings(max_examples=25, deadline=None)
@given(
    mode=st.sampled_from(["dot", "dot_scaled", "concat", "concat_scaled", "additive", "additive_plain"]),
    b=st.integers(1, 3),
    tq=st.integers(1, 7),
    tk=st.integers(1, 7),
    dim=st.integers(1, 4),
    with_key=st.booleans(),
    masked=st.booleans(),
    causal=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_dense_attention_matches_the_float64_reference(mode, b, tq, tk, dim, with_key, masked, causal, seed):  # type: ignore[no-untyped-def]  # fmt: skip
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((b, tq, dim)).astype(np.float32)
    v = rng.standard_normal((b, tk, dim + int(with_key))).astype(np.float32)
    k = rng.standard_normal((b, tk, dim)).astype(np.float32) if with_key else None
    if mode.startswith("additive"):
        layer = L.AdditiveAttention(use_scale=mode == "additive")
    else:
        layer = L.Attention(use_scale=mode.endswith("scaled"), score_mode=mode.split("_")[0])
    ins = [q, v] + ([k] if k is not None else [])
    qm = vm = None
    if masked:
        qm = rng.random((b, tq)) > 0.3
        vm = rng.random((b, tk)) > 0.3
        vm[:, 0] = True
    layer(ins)
    for w in layer.weights:
        w.value[...] = rng.standard_normal(w.shape).astype(np.float32) * 0.5 + 1.0
    ws = {w.name: w.value.astype(np.float64) for w in layer.weights}
    if mode.startswith("additive"):
        scale: object = ws.get("scale", np.ones(dim))
    else:
        scale = float(ws.get("scale", 1.0))
    cw = float(ws.get("concat_score_weight", 1.0))
    ref_mode = mode.split("_")[0]
    want, p = dense_attention_reference(ref_mode, q, v, k if k is not None else v, scale, cw, qm, vm, causal)
    y, call = layer.apply(ins, training=True, lengths=[qm, vm], return_attention_scores=True, use_causal_mask=causal)
    np.testing.assert_allclose(y[0], want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(y[1], p, rtol=1e-4, atol=1e-5)
    dy = rng.standard_normal(want.shape).astype(np.float32)
    for w in layer.weights:
        w.grad = None
    grads = layer.unapply(call, [dy, None])

    def loss(qq, vv, kk, sc=scale, c=cw):  # type: ignore[no-untyped-def]
        return float((dense_attention_reference(ref_mode, qq, vv, kk, sc, c, qm, vm, causal)[0] * dy).sum())

    base = [q, v, k if k is not None else v]
    for i, g in enumerate(grads):
        d = rng.standard_normal(ins[i].shape)
        slot = [0, 1, 2][i]

        def f(a, slot=slot):  # type: ignore[no-untyped-def]
            args = [x.astype(np.float64) for x in base]
            args[slot] = a
            if k is None and slot == 1:
                args[2] = a  # value is also the key
            return loss(*args)

        fd = directional(f, ins[i].astype(np.float64), d)
        assert abs(fd - float((g * d).sum())) <= 2e-3 * (1 + abs(fd)), i
    for w in layer.trainable_weights:
        d = rng.standard_normal(w.shape)
        if w.name == "concat_score_weight":
            fd = directional(lambda c: loss(*base, c=float(c)), np.float64(cw), d)
        elif mode.startswith("additive"):
            fd = directional(lambda s: loss(*base, sc=s), np.asarray(scale, np.float64), d)
        else:
            fd = directional(lambda s: loss(*base, sc=float(s)), np.float64(scale), d)
        assert abs(fd - float((w.grad * d).sum())) <= 2e-3 * (1 + abs(fd)), w.name


# ----- properties, graphs, errors -----------------------------------------------------------------
def test_thread_count_does_not_change_a_bit() -> None:
    rng = np.random.default_rng(2)
    q = rng.standard_normal((3, 70, 8)).astype(np.float32)
    dy = rng.standard_normal((3, 70, 8)).astype(np.float32)
    layer = L.MultiHeadAttention(3, 4, dropout=0.2, seed=1)
    layer(q, q)
    before = seqcore.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            seqcore.set_num_threads(n)
            layer._gen = np.random.default_rng(1)
            y, grads = loss_and_grads(layer, q, q, None, dy, {})[::3], None
            results.append(y)
            del grads
    finally:
        seqcore.set_num_threads(before)
    np.testing.assert_array_equal(results[0][0], results[1][0])
    for name in results[0][1]:
        np.testing.assert_array_equal(results[0][1][name], results[1][1][name])


def test_layouts_and_dtypes_give_the_same_numbers() -> None:
    rng = np.random.default_rng(3)
    q = rng.standard_normal((2, 5, 4)).astype(np.float32)
    layer = L.MultiHeadAttention(2, 3)
    want = layer(q, q)
    np.testing.assert_allclose(layer(np.asfortranarray(q), np.asfortranarray(q)), want, rtol=1e-6)
    np.testing.assert_allclose(layer(q.astype(np.float64), q.astype(np.float64)), want, rtol=1e-6)
    wide = np.repeat(q, 2, axis=1)[:, ::2]  # a strided view
    np.testing.assert_allclose(layer(wide, wide), want, rtol=1e-6)
    assert layer(q[:0], q[:0]).shape == (0, 5, 4)


def test_rank4_attention_axes_loop_over_the_other_axis() -> None:
    rng = np.random.default_rng(4)
    q = rng.standard_normal((2, 3, 5, 4)).astype(np.float32)
    v = rng.standard_normal((2, 3, 6, 4)).astype(np.float32)
    layer = L.MultiHeadAttention(2, 3, attention_axes=(2,))
    y = layer(q, v)
    flat = L.MultiHeadAttention(2, 3)
    flat(q[:, 0], v[:, 0])
    flat.set_weights(layer.get_weights())
    for i in range(3):
        np.testing.assert_allclose(y[:, i], flat(q[:, i], v[:, i]), rtol=1e-5, atol=1e-6)


def test_functional_training_saving_and_summary(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    inp = seqcore.Input((6, 5))
    h = L.MultiHeadAttention(2, 3, name="mha")(inp, inp, use_causal_mask=True)
    h = L.LayerNormalization()(h + inp)
    out = L.Dense(1)(L.GlobalAveragePooling1D()(h))
    m = seqcore.Model(inp, out)
    heads, key_dim, dim = 2, 3, 5
    mha_params = 3 * (dim * heads * key_dim + heads * key_dim) + (heads * key_dim * dim + dim)
    assert m.get_layer("mha").count_params() == mha_params
    assert m.count_params() == mha_params + 2 * dim + dim + 1
    x = rng.standard_normal((64, 6, 5)).astype(np.float32)
    y = x[:, :, 0].mean(axis=1, keepdims=True).astype(np.float32)
    m.compile(seqcore.optimizers.Adam(0.02), "mse")
    first = m.train_on_batch(x, y)
    for _ in range(40):
        last = m.train_on_batch(x, y)
    assert last < 0.5 * first
    path = str(tmp_path / "m.seqcore")
    m.save(path)
    again = seqcore.models.load_model(path)
    np.testing.assert_array_equal(again.predict(x), m.predict(x))


def test_errors_name_the_layer_and_the_fix() -> None:
    q = np.zeros((2, 4, 3), np.float32)
    with pytest.raises(ValueError, match="num_heads"):
        L.MultiHeadAttention(0, 2)
    with pytest.raises(ValueError, match="key_dim"):
        L.MultiHeadAttention(2, -1)
    with pytest.raises(ValueError, match="dropout"):
        L.MultiHeadAttention(2, 2, dropout=1.5)
    layer = L.MultiHeadAttention(2, 2, name="att")
    with pytest.raises(TypeError, match="'att'.*value"):
        layer(q)
    with pytest.raises(ValueError, match="'att'.*batch"):
        layer(q, np.zeros((3, 4, 3), np.float32))
    with pytest.raises(ValueError, match="'att'.*query"):
        layer(np.zeros((2, 4, 5), np.float32), q)
    with pytest.raises(ValueError, match="attention_mask.*broadcast"):
        layer(q, q, attention_mask=np.ones((2, 3, 4), bool))
    with pytest.raises(ValueError, match="list of inputs"):
        L.Attention()(q)
    with pytest.raises(ValueError, match="length 2 or 3"):
        L.Attention()([q, q, q, q])
    with pytest.raises(ValueError, match="last dimension"):
        L.Attention()([q, np.zeros((2, 4, 2), np.float32)])


def test_the_bindings_refuse_bad_shapes() -> None:
    class Opts:
        heads, key_dim, value_dim, cols, scale, causal, window = 2, 2, 2, (0, 0, 0), 1.0, False, 0
        replace_fill, dropout, seed, scores_after_dropout = True, 0.0, 0, False

    q = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="batch"):
        _seqcore.attention_forward(q, np.zeros((3, 3, 4), np.float32), q, Opts(), None, None, None, False)
    bad = Opts()
    bad.cols = (1, 0, 0)
    with pytest.raises(ValueError, match="columns"):
        _seqcore.attention_forward(q, q, q, bad, None, None, None, False)
    bad = Opts()
    bad.dropout = 1.0
    with pytest.raises(ValueError, match="dropout"):
        _seqcore.attention_forward(q, q, q, bad, None, None, None, False)
    with pytest.raises(ValueError, match="mask"):
        _seqcore.attention_forward(q, q, q, Opts(), None, None, np.ones((2, 1, 3, 2), np.uint8), False)
    with pytest.raises(ValueError, match="lengths"):
        _seqcore.attention_forward(q, q, q, Opts(), None, np.array([1, 9]), None, False)
