"""The SimpleRNN kernel and layer against an independent float64 NumPy loop (forward) and central
differences of it (backward), over hypothesis-drawn shapes with the edges (no samples, no steps, one
unit), every cell activation, masks (post-padding, fully masked samples), go_backwards, initial
states, dropout masks, and strided/Fortran inputs; plus the layer's options, errors, TBPTT and
saving. Keras's numbers are checked in tests/test_layer_goldens.py (the simple_rnn cases)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import seqcore as keras
from hypothesis import given, settings
from hypothesis import strategies as st
from seqcore import kernels

ACTS = {
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "linear": lambda z: z,
    "hard_sigmoid": lambda z: np.clip((z + 3) / 6, 0, 1),
}


def reference(x: np.ndarray, k: np.ndarray, u: np.ndarray, b: Any, h0: Any, lengths: Any, act: str,
              back: bool, mi: Any, mr: Any) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Keras's masked SimpleRNN loop in float64: outputs in processing order, and the final state."""
    x, k, u = x.astype(np.float64), k.astype(np.float64), u.astype(np.float64)
    bsz, t, _ = x.shape
    h = np.zeros((bsz, u.shape[0])) if h0 is None else h0.astype(np.float64)
    prev_out = np.zeros_like(h)
    outs = np.zeros((bsz, t, u.shape[0]))
    for s in range(t):
        ti = t - 1 - s if back else s
        xt = x[:, ti] * (1 if mi is None else mi[0])
        z = xt @ k + (0 if b is None else b) + (h * (1 if mr is None else mr[0])) @ u
        new = ACTS[act](z)
        valid = np.ones(bsz, bool) if lengths is None else ti < np.asarray(lengths)
        h = np.where(valid[:, None], new, h)
        prev_out = np.where(valid[:, None], new, prev_out)
        outs[:, s] = prev_out
    return outs, h


def num_grad(f: Any, a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    a = a.astype(np.float64)
    g = np.zeros_like(a)
    flat, gf = a.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + eps
        up = f(a)
        flat[i] = keep - eps
        down = f(a)
        flat[i] = keep
        gf[i] = (up - down) / (2 * eps)
    return g


@settings(max_examples=60, deadline=None)
@given(
    b=st.integers(0, 3), t=st.integers(0, 5), f=st.integers(1, 3), h=st.integers(1, 4),
    act=st.sampled_from(sorted(ACTS)), back=st.booleans(), masked=st.booleans(), with_h0=st.booleans(),
    use_bias=st.booleans(), dropout=st.booleans(), layout=st.sampled_from(["c", "fortran", "strided"]),
    seed=st.integers(0, 2**16),
)  # fmt: skip
def test_kernel_matches_the_float64_reference(b: int, t: int, f: int, h: int, act: str, back: bool, masked: bool,
                                              with_h0: bool, use_bias: bool, dropout: bool, layout: str,
                                              seed: int) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(b, t, f)).astype(np.float32)
    k = rng.normal(size=(f, h)).astype(np.float32) * 0.7
    u = rng.normal(size=(h, h)).astype(np.float32) * 0.5
    bias = rng.normal(size=(h,)).astype(np.float32) if use_bias else None
    h0 = rng.normal(size=(b, h)).astype(np.float32) if with_h0 else None
    lengths = rng.integers(0, t + 1, size=b) if masked else None
    mi = (rng.random((1, b, f)) > 0.3).astype(np.float32) / 0.7 if dropout else None
    mr = (rng.random((1, b, h)) > 0.3).astype(np.float32) / 0.7 if dropout else None
    if act in ("relu", "hard_sigmoid"):  # keep pre-activations off the kinks for finite differences
        x = np.round(x, 1) + 0.013
    xin = (
        np.asfortranarray(x)
        if layout == "fortran"
        else (np.repeat(x, 2, axis=2)[..., ::2] if layout == "strided" else x)
    )
    res = kernels.simple_rnn_forward(xin, k, u, bias, initial_state=None if h0 is None else [h0], lengths=lengths,
                                     activation=act, go_backwards=back, training=True, input_masks=mi,
                                     recurrent_masks=mr)  # fmt: skip
    want, want_h = reference(x, k, u, bias, h0, lengths, act, back, mi, mr)
    np.testing.assert_allclose(res.outputs, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(res.h, want_h, rtol=1e-5, atol=1e-5)
    d_out = rng.normal(size=want.shape).astype(np.float32)
    d_h = rng.normal(size=want_h.shape).astype(np.float32)
    g = kernels.simple_rnn_backward(res.tape, d_out, d_h)

    def loss(**over: Any) -> float:
        args = dict(x=x, k=k, u=u, b=bias, h0=h0)
        args.update(over)
        o, hl = reference(args["x"], args["k"], args["u"], args["b"], args["h0"], lengths, act, back, mi, mr)
        return float((o * d_out).sum() + (hl * d_h).sum())

    tol = dict(rtol=2e-3, atol=2e-3)
    if b and t:
        np.testing.assert_allclose(g.dx, num_grad(lambda v: loss(x=v), x), **tol)
    np.testing.assert_allclose(g.dkernel, num_grad(lambda v: loss(k=v), k), **tol)
    np.testing.assert_allclose(g.drecurrent_kernel, num_grad(lambda v: loss(u=v), u), **tol)
    if bias is not None:
        np.testing.assert_allclose(g.dbias, num_grad(lambda v: loss(b=v), bias), **tol)
    if h0 is not None:
        np.testing.assert_allclose(g.dh0, num_grad(lambda v: loss(h0=v), h0), **tol)


def test_layer_options_and_model_use(tmp_path: Any) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 8, 3)).astype(np.float32)
    x[1, 5:] = 0.0
    inp = keras.Input((8, 3))
    seq, state = keras.layers.SimpleRNN(5, return_sequences=True, return_state=True, name="enc")(
        keras.layers.Masking()(inp)
    )
    dec = keras.layers.SimpleRNN(5, go_backwards=True, dropout=0.1, recurrent_dropout=0.2, seed=1, name="dec")(
        seq, initial_state=[state]
    )
    model = keras.Model(inp, keras.layers.Dense(1)(dec))
    model.compile("adam", "mse")
    y = rng.normal(size=(6, 1)).astype(np.float32)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=20, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before
    model.save(tmp_path / "m.seqcore")
    again = keras.models.load_model(tmp_path / "m.seqcore")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    cfg = model.get_layer("dec").get_config()
    assert "recurrent_activation" not in cfg and cfg["recurrent_dropout"] == 0.2
    # truncated BPTT and stateful use carry the SimpleRNN's state like the others'
    seqm = keras.Sequential([keras.Input((8, 3)), keras.layers.SimpleRNN(4, return_sequences=True)])
    seqm.compile("sgd", "mse")
    seqm.fit(x, np.zeros((6, 8, 4), np.float32), tbptt_steps=3, epochs=1, verbose=0)
    st_layer = keras.layers.SimpleRNN(2, stateful=True)
    st_layer(x[:2, :4])
    first = st_layer.states[0].copy()
    st_layer(x[:2, 4:])
    assert not np.array_equal(first, st_layer.states[0])


def test_errors() -> None:
    with pytest.raises(TypeError, match=r"SimpleRNN: unexpected keyword argument 'recurrent_activation'"):
        keras.layers.SimpleRNN(3, recurrent_activation="sigmoid")
    with pytest.raises(ValueError, match=r"simple_rnn_forward: unsupported activation 'softmax'"):
        kernels.simple_rnn_forward(np.zeros((1, 2, 3), np.float32), np.zeros((3, 2), np.float32),
                                   np.zeros((2, 2), np.float32), activation="softmax")  # fmt: skip
    with pytest.raises(ValueError, match=r"recurrent_kernel must have shape \(2, 2\)"):
        kernels.simple_rnn_forward(np.zeros((1, 2, 3), np.float32), np.zeros((3, 2), np.float32),
                                   np.zeros((2, 4), np.float32))  # fmt: skip
    layer = keras.layers.SimpleRNN(3, name="r")
    with pytest.raises(ValueError, match=r"SimpleRNN 'r'.*return_sequences=True"):
        keras.Sequential([keras.Input((4, 2)), keras.layers.SimpleRNN(3), layer])
