"""Masks of any pattern through the recurrent layers (``seqcore._masks``, the kernels' ``StepMask``).

Keras goldens (tests/golden/generate_mask_goldens.py) for post-padded, pre-padded, holed and mixed
masks through LSTM, GRU, SimpleRNN and Bidirectional, forward and backward; random masks against
the float64 reference (``seqcore.reference_rnn``); and the properties a user relies on: padding
before the data, or a gap inside it, gives what the sequence without those steps gives.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import seqcore
import seqcore as keras
from hypothesis import given, settings
from hypothesis import strategies as st
from rnn_cases import assert_close
from seqcore import _masks, _seqcore, kernels
from seqcore import reference_rnn as R
from seqcore.layers import GRU, LSTM, Bidirectional, SimpleRNN

GOLDEN = Path(__file__).parent / "golden" / "mask_goldens.npz"
MASKS = ("post", "pre", "holes", "mixed")
H = 5


@cache
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as z:
        return {k: z[k] for k in z.files}


def _golden_layer(name: str) -> Any:
    kw: dict[str, Any] = {"return_sequences": True}
    return {
        "lstm": lambda: LSTM(H, **kw),
        "lstm_back": lambda: LSTM(H, go_backwards=True, **kw),
        "lstm_h0": lambda: LSTM(H, **kw),
        "gru": lambda: GRU(H, **kw),
        "gru_back": lambda: GRU(H, go_backwards=True, reset_after=False, **kw),
        "simple_rnn": lambda: SimpleRNN(H, **kw),
        "bidi": lambda: Bidirectional(LSTM(H, **kw)),
        "bidi_last": lambda: Bidirectional(GRU(H), merge_mode="sum"),
    }[name]()


LAYERS = ("lstm", "lstm_back", "lstm_h0", "gru", "gru_back", "simple_rnn", "bidi", "bidi_last")


@pytest.mark.parametrize("mask_name", MASKS)
@pytest.mark.parametrize("name", LAYERS)
def test_matches_keras_goldens(name: str, mask_name: str) -> None:
    g = golden()
    x = g["x"].astype(np.float32)
    mask = g[f"masks__{mask_name}"]
    layer = _golden_layer(name)
    layer(x[:1])
    weights = [g[f"{name}__w{i}"] for i in range(len(layer.weights))]
    layer.set_weights([w.astype(np.float32) for w in weights])
    init = [g["h0"].astype(np.float32), g["c0"].astype(np.float32)] if name == "lstm_h0" else None
    kw = {"initial_state": init} if init is not None else {}
    y, ctx = layer.forward(x, training=True, lengths=mask, **kw)
    key = f"{name}__{mask_name}__"
    assert_close(y, g[key + "out"], 2e-5, "outputs")
    for w in layer.weights:
        w.grad = None
    dx = layer.backward(ctx, g[key + "G"].astype(np.float32))
    assert_close(dx, g[key + "dx"], 1e-4, "dx")
    for i, w in enumerate(layer.weights):
        assert_close(w.grad, g[key + f"dw{i}"], 1e-4, f"dw{i} ({w.name})")
    if init is not None:
        dh0, dc0 = ctx.kwarg_grads["initial_state"]
        assert_close(dh0, g[key + "dh0"], 1e-4, "dh0")
        assert_close(dc0, g[key + "dc0"], 1e-4, "dc0")
    # Inference gives the training forward's outputs.
    np.testing.assert_allclose(layer.forward(x, lengths=mask, **kw)[0], y, rtol=1e-6, atol=1e-7)


@st.composite
def random_mask(draw: Any, b: int, t: int) -> np.ndarray:
    kind = draw(st.sampled_from(["post", "pre", "holes", "runs"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    if kind == "holes":
        return rng.random((b, t)) < 0.6
    lo = rng.integers(0, t + 1, size=b)
    hi = rng.integers(0, t + 1, size=b)
    if kind == "post":
        lo[:] = 0
    elif kind == "pre":
        hi[:] = t
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    steps = np.arange(t)[None, :]
    return (steps >= lo[:, None]) & (steps < hi[:, None])


@settings(max_examples=60, deadline=None)
@given(
    cell=st.sampled_from(["lstm", "gru_ra", "gru_rb"]),
    b=st.integers(1, 5),
    t=st.integers(1, 9),
    f=st.integers(1, 4),
    h=st.integers(1, 6),
    back=st.booleans(),
    init=st.booleans(),
    threads=st.sampled_from([1, 2]),
    data=st.data(),
)
def test_kernels_match_the_reference_for_any_mask(
    cell: str, b: int, t: int, f: int, h: int, back: bool, init: bool, threads: int, data: Any
) -> None:
    mask = data.draw(random_mask(b, t))
    rng = np.random.default_rng(b * 100 + t)
    gates = 4 if cell == "lstm" else 3
    x = rng.normal(size=(b, t, f))
    k = rng.normal(scale=0.5, size=(f, gates * h))
    rk = rng.normal(scale=0.5, size=(h, gates * h))
    h0 = rng.normal(size=(b, h)) if init else None
    c0 = rng.normal(size=(b, h)) if init else None
    d_out, d_h = rng.normal(size=(b, t, h)), rng.normal(size=(b, h))
    seqcore.set_num_threads(threads)
    try:
        if cell == "lstm":
            bias = rng.normal(scale=0.3, size=4 * h)
            res = kernels.lstm_forward(
                x, k, rk, bias, initial_state=None if h0 is None else [h0, c0], mask=mask, go_backwards=back
            )
            g = kernels.lstm_backward(res.tape, d_out, d_h)
            out, rh, _ = R.lstm_forward(x, k, rk, bias, h0, c0, mask, "tanh", "sigmoid", back)
            ref = R.lstm_backward(x, k, rk, bias, h0, c0, mask, "tanh", "sigmoid", back, d_out, d_h)
        else:
            ra = cell == "gru_ra"
            bias = rng.normal(scale=0.3, size=(2, 3 * h) if ra else 3 * h)
            res = kernels.gru_forward(x, k, rk, bias, initial_state=h0, mask=mask, go_backwards=back, reset_after=ra)
            g = kernels.gru_backward(res.tape, d_out, d_h)
            out, rh = R.gru_forward(x, k, rk, bias, h0, mask, "tanh", "sigmoid", back, ra)
            ref = R.gru_backward(x, k, rk, bias, h0, mask, "tanh", "sigmoid", back, ra, d_out, d_h)
    finally:
        seqcore.set_num_threads(2)
    assert_close(res.outputs, out, 2e-5, "outputs")
    assert_close(res.h, rh, 2e-5, "h")
    for name in ("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0"):
        assert_close(getattr(g, name), ref[name], 2e-4, name)


def test_lstm_kernel_go_backwards_with_a_mask_matches_the_reference() -> None:
    rng = np.random.default_rng(3)
    b, t, f, h = 4, 8, 3, 5
    mask = np.array([[1, 1, 0, 1, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0, 0], [0] * 8], dtype=bool)
    x, k, rk = (
        rng.normal(size=(b, t, f)),
        rng.normal(scale=0.5, size=(f, 4 * h)),
        rng.normal(scale=0.5, size=(h, 4 * h)),
    )
    bias, h0, c0 = rng.normal(size=4 * h), rng.normal(size=(b, h)), rng.normal(size=(b, h))
    d_out, d_h, d_c = rng.normal(size=(b, t, h)), rng.normal(size=(b, h)), rng.normal(size=(b, h))
    res = kernels.lstm_forward(x, k, rk, bias, initial_state=[h0, c0], mask=mask, go_backwards=True)
    g = kernels.lstm_backward(res.tape, d_out, d_h, d_c)
    out, rh, rc = R.lstm_forward(x, k, rk, bias, h0, c0, mask, "tanh", "sigmoid", True)
    ref = R.lstm_backward(x, k, rk, bias, h0, c0, mask, "tanh", "sigmoid", True, d_out, d_h, d_c)
    assert_close(res.outputs, out, 2e-5, "outputs")
    assert_close(res.c, rc, 2e-5, "c")
    for name in ("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0", "dc0"):
        assert_close(getattr(g, name), ref[name], 2e-4, name)


def test_continued_rows_output_their_carried_state() -> None:
    """Two calls over halves of a sequence, the second told which rows started in the first, give the
    whole call's outputs and final state (the windowed BPTT and truncated BPTT rely on this)."""
    rng = np.random.default_rng(5)
    b, t, f, h = 3, 10, 2, 4
    x = rng.normal(size=(b, t, f)).astype(np.float32)
    k, rk = rng.normal(scale=0.5, size=(f, 4 * h)), rng.normal(scale=0.5, size=(h, 4 * h))
    mask = np.zeros((b, t), dtype=bool)
    mask[0, [1, 2, 8]] = True  # started in the first half, then a long gap
    mask[1, 6:] = True  # starts in the second half
    mask[2, :3] = True  # ends in the first half
    whole = kernels.lstm_forward(x, k, rk, mask=mask, training=False)
    a = kernels.lstm_forward(x[:, :5], k, rk, mask=mask[:, :5], training=False)
    cont = mask[:, :5].any(axis=1)
    second = kernels.lstm_forward(
        np.ascontiguousarray(x[:, 5:]), k, rk, initial_state=[a.h, a.c], mask=np.ascontiguousarray(mask[:, 5:]),
        continued=cont, training=False,
    )  # fmt: skip
    np.testing.assert_allclose(np.concatenate([a.outputs, second.outputs], axis=1), whole.outputs, atol=1e-6)
    np.testing.assert_allclose(second.h, whole.h, atol=1e-6)
    # Without `continued`, the second call's leading masked steps are Keras's zeros.
    fresh = kernels.lstm_forward(
        np.ascontiguousarray(x[:, 5:]), k, rk, initial_state=[a.h, a.c], mask=np.ascontiguousarray(mask[:, 5:]),
        training=False,
    )  # fmt: skip
    assert np.all(fresh.outputs[0, :3] == 0) and np.all(fresh.outputs[2] == 0)


def _model(t: int, f: int, cell: Any, **kw: Any) -> Any:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((t, f)), keras.layers.Masking(0.0), cell(4, **kw), keras.layers.Dense(1)])


@pytest.mark.parametrize("cell", [LSTM, GRU, SimpleRNN])
def test_padding_anywhere_trains_as_the_unpadded_sequence(cell: Any) -> None:
    """Many-to-one: pre-padding, post-padding or a gap of masked steps leave the last output and every
    weight gradient as the sequence without those steps gives them."""
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(1, 5, 3)).astype(np.float32) + 2.0  # no exact zeros: Masking keeps every step
    z = np.zeros((1, 3, 3), np.float32)
    variants = {
        "pre": np.concatenate([z, seq], axis=1),
        "post": np.concatenate([seq, z], axis=1),
        "gap": np.concatenate([seq[:, :2], z, seq[:, 2:]], axis=1),
    }
    y = np.ones((1, 1), np.float32)

    def grads(x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        m = _model(x.shape[1], 3, cell)
        out, ctx = m.forward(x, training=True)
        for w in m.weights:
            w.grad = None
        m.backward(ctx, np.ones_like(out))
        return out, [w.grad.copy() for w in m.trainable_weights]

    ref_out, ref_g = grads(seq)
    for name, x in variants.items():
        out, gs = grads(x)
        np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-6, err_msg=name)
        for a, b in zip(gs, ref_g, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=name)
    assert y.shape == (1, 1)


def test_pre_padded_embedding_model_fits_and_masks_the_loss() -> None:
    """Keras's default pipeline: pad_sequences (pre) -> Embedding(mask_zero=True) -> LSTM, with a
    per-step head: masked steps are left out of the loss, as Keras does."""
    keras.utils.set_random_seed(1)
    seqs = [[3, 4, 5], [6, 7], [1, 2, 3, 4, 5, 6]]
    x = keras.utils.pad_sequences(seqs)  # pre-padded, Keras's default
    assert x[1].tolist() == [0, 0, 0, 0, 6, 7]
    m = keras.Sequential(
        [keras.Input((6,)), keras.layers.Embedding(10, 4, mask_zero=True), LSTM(3, return_sequences=True),
         keras.layers.Dense(1)]
    )  # fmt: skip
    m.compile("sgd", "mse")
    y = np.ones((3, 6, 1), np.float32)
    y_far = y.copy()
    y_far[x == 0] = 1e6  # targets at masked steps must not count
    assert np.isclose(m.evaluate(x, y, verbose=0), m.evaluate(x, y_far, verbose=0))
    hist = m.fit(x, y, epochs=3, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()


def test_functional_mask_argument_and_compute_mask_take_any_pattern() -> None:
    inp = keras.Input((6, 2))
    lstm = LSTM(3)
    model = keras.Model(inp, lstm(inp, mask=None))
    x = np.random.default_rng(2).normal(size=(2, 6, 2)).astype(np.float32)
    mask = np.array([[0, 1, 1, 0, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=bool)
    got = lstm(x, mask=mask)
    k, rk, b = (w.value for w in lstm.weights)
    want = kernels.lstm_forward(x, k, rk, b, mask=mask, training=False).outputs[:, -1]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert model.predict(x, verbose=0).shape == (2, 3)
    m = keras.layers.Masking(0.0)
    xm = x.copy()
    xm[0, 0] = 0.0
    np.testing.assert_array_equal(m.compute_mask(xm)[0], [False, True, True, True, True, True])


def test_masked_pooling_and_batch_norm_exclude_any_masked_step() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    mask = np.array([[0, 1, 0, 1, 1], [1, 0, 0, 0, 1]], dtype=bool)
    pool = keras.layers.GlobalAveragePooling1D()
    y, _ = pool.forward(x, lengths=mask)
    np.testing.assert_allclose(y, np.stack([x[i][mask[i]].mean(axis=0) for i in range(2)]), rtol=1e-6)
    bn = keras.layers.BatchNormalization(momentum=0.0)
    bn(x)
    out, _ = bn.forward(x, training=True, lengths=mask)
    valid = x[mask]
    np.testing.assert_allclose(bn.moving_mean.value, valid.mean(axis=0), rtol=1e-5, atol=1e-6)
    want = (x - valid.mean(axis=0)) / np.sqrt(valid.var(axis=0) + bn.epsilon)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)


def test_mask_forms() -> None:
    post = np.array([[1, 1, 0], [1, 0, 0]], dtype=bool)
    assert _masks.from_bool(post, "w").tolist() == [2, 1]  # post-padding travels as lengths
    pre = post[:, ::-1]
    assert _masks.from_bool(pre, "w").dtype == bool
    assert _masks.merge([np.array([2, 1]), pre]).tolist() == [[False, True, False], [False, False, False]]
    assert _masks.merge([np.array([3, 1]), np.array([2, 2])]).tolist() == [2, 1]
    assert _masks.counts(pre).tolist() == [2, 1]
    assert _masks.window(np.array([5, 2]), 2, 4).tolist() == [2, 0]
    assert _masks.any_valid(np.array([5, 2]), 2, 4).tolist() == [True, False]


def test_bad_masks_are_refused_clearly() -> None:
    layer = LSTM(2, name="l")
    x = np.zeros((2, 3, 1), np.float32)
    layer(x)
    with pytest.raises(ValueError, match=r"LSTM 'l': the mask must have shape \(batch, time\) = \(2, 3\).*\(2, 4\)"):
        layer(x, mask=np.ones((2, 4), dtype=bool))
    with pytest.raises(TypeError, match=r"mask must be boolean"):
        layer(x, mask=np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match=r"lstm_forward: pass lengths= or mask=, not both"):
        kernels.lstm_forward(x, np.zeros((1, 8)), np.zeros((2, 8)), lengths=[1, 1], mask=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match=r"lstm_forward: mask must have shape \(batch, steps\) = \(2, 3\)"):
        _seqcore.lstm_forward(
            x, np.zeros((1, 8), np.float32), np.zeros((2, 8), np.float32), None, None, None,
            np.ones((3, 2), dtype=bool), "tanh", "sigmoid", False, False,
        )  # fmt: skip
    with pytest.raises(TypeError, match=r"mask must be per-sample lengths .* or a boolean"):
        _seqcore.lstm_forward(
            x, np.zeros((1, 8), np.float32), np.zeros((2, 8), np.float32), None, None, None,
            np.ones((2, 3), dtype=np.float32), "tanh", "sigmoid", False, False,
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"continued must have shape \(2,\)"):
        kernels.lstm_forward(x, np.zeros((1, 8)), np.zeros((2, 8)), continued=[True])
