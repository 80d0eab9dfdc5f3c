"""The float64 LSTM / GRU reference (seqcore.reference_rnn) against Keras 3, PyTorch and itself.

Golden values: tests/golden/rnn_goldens.npz, written once by tests/golden/generate_rnn_goldens.py
(Keras 3.15.1 + TensorFlow 2.21 on CPU, float64 layers; torch 2.15, float64). That script is never
run here: no Keras, TensorFlow or torch is needed by these tests.

* forward and gradients == Keras goldens for LSTM, GRU(reset_after=True), GRU(reset_after=False) over
  activations, go_backwards, masks from lengths (incl. length 0 and full length), initial states and
  use_bias=False;
* backward == central finite differences of the forward (float64, h=1e-6);
* PyTorch layout converters: exact round trips, dtype preserved, shapes validated, and
  torch weights -> Keras layout -> reference == torch outputs and gradients.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest
from rnn_cases import GOLDEN, golden, golden_case, golden_cases
from seqcore import reference_rnn as R

CELLS = ("lstm", "gru_ra", "gru_rb")
GOLDEN_CASES = sorted((cell, case) for cell in CELLS for case in golden_cases(cell))
_keras_case = golden_case


def _close(actual: Any, desired: Any, tol: float = 1e-10, err_msg: str = "") -> None:
    """Agreement relative to the array's scale (Keras ran in float64; observed errors ~1e-15)."""
    desired = np.asarray(desired)
    scale = max(1.0, float(np.abs(desired).max())) if desired.size else 1.0
    np.testing.assert_allclose(actual, desired, rtol=0, atol=tol * scale, err_msg=err_msg)


# ------------------------------------------------------------------------------------------ Keras


def test_golden_file_is_small_and_complete() -> None:
    assert GOLDEN.stat().st_size < 300_000
    assert {c for c, _ in GOLDEN_CASES} == set(CELLS)
    assert len(GOLDEN_CASES) >= 3 * 10


@pytest.mark.parametrize(("cell", "case"), GOLDEN_CASES)
def test_forward_matches_keras(cell: str, case: str) -> None:
    kw, _, res = _keras_case(cell, case)
    if cell == "lstm":
        outputs, h, c = R.lstm_forward(**kw)
        _close(c, res["c"], err_msg="c_last")
    else:
        outputs, h = R.gru_forward(**kw)
    _close(outputs, res["outputs"], err_msg="outputs")
    _close(h, res["h"], err_msg="h_last")


@pytest.mark.parametrize(("cell", "case"), GOLDEN_CASES)
def test_backward_matches_keras(cell: str, case: str) -> None:
    kw, up, res = _keras_case(cell, case)
    grads = R.lstm_backward(**kw, **up) if cell == "lstm" else R.gru_backward(**kw, **up)
    names = ["dx", "dkernel", "drecurrent_kernel", "dbias", "dh0", "dc0"]
    checked = 0
    for name in names:
        if name in res:
            _close(grads[name], res[name], err_msg=name)
            checked += 1
    assert checked >= 3
    assert (grads["dbias"] is None) == (kw["bias"] is None)


def test_keras_masked_semantics_are_in_the_goldens() -> None:
    """The Keras behaviour the reference encodes, read straight off the goldens (lengths [5, 2, 0])."""
    g = golden()
    h0 = g["lstm__h0"]
    # forward: post-padding steps repeat the last valid output; a length-0 sample outputs zeros
    # (not h0) while its final state is h0.
    out, h = g["lstm__masked_initial_state__outputs"], g["lstm__masked_initial_state__h"]
    np.testing.assert_array_equal(out[1, 2:], np.broadcast_to(out[1, 1], (3, out.shape[2])))
    np.testing.assert_array_equal(h[1], out[1, 1])
    np.testing.assert_array_equal(out[2], 0.0)
    np.testing.assert_array_equal(h[2], h0[2])
    # go_backwards: outputs in processing order, the padding comes first and gives zeros.
    out, h = g["lstm__masked_backwards_initial_state__outputs"], g["lstm__masked_backwards_initial_state__h"]
    np.testing.assert_array_equal(out[1, :3], 0.0)
    assert np.all(out[1, 3:] != 0.0)
    np.testing.assert_array_equal(h[1], out[1, -1])
    np.testing.assert_array_equal(out[2], 0.0)
    np.testing.assert_array_equal(h[2], h0[2])
    # masked steps give no gradient to the inputs
    dx = g["gru_rb__masked_backwards_initial_state__dx"]
    np.testing.assert_array_equal(dx[1, 2:], 0.0)
    np.testing.assert_array_equal(dx[2], 0.0)


# ------------------------------------------------------------------------------ semantics, directly


def _rand_lstm(rng: np.random.Generator, B: int, T: int, F: int, H: int) -> dict[str, Any]:
    return {
        "x": rng.normal(size=(B, T, F)),
        "kernel": 0.5 * rng.normal(size=(F, 4 * H)),
        "recurrent_kernel": 0.5 * rng.normal(size=(H, 4 * H)),
        "bias": 0.5 * rng.normal(size=4 * H),
        "h0": rng.normal(size=(B, H)),
        "c0": rng.normal(size=(B, H)),
    }


def _rand_gru(rng: np.random.Generator, B: int, T: int, F: int, H: int, reset_after: bool) -> dict[str, Any]:
    return {
        "x": rng.normal(size=(B, T, F)),
        "kernel": 0.5 * rng.normal(size=(F, 3 * H)),
        "recurrent_kernel": 0.5 * rng.normal(size=(H, 3 * H)),
        "bias": 0.5 * rng.normal(size=(2, 3 * H) if reset_after else 3 * H),
        "h0": rng.normal(size=(B, H)),
        "reset_after": reset_after,
    }


def _forward(cell: str, kw: dict[str, Any]) -> tuple[np.ndarray, ...]:
    return R.lstm_forward(**kw) if cell == "lstm" else R.gru_forward(**kw)


def _rand(cell: str, rng: np.random.Generator, B: int, T: int, F: int, H: int) -> dict[str, Any]:
    return _rand_lstm(rng, B, T, F, H) if cell == "lstm" else _rand_gru(rng, B, T, F, H, cell == "gru_ra")


@pytest.mark.parametrize("cell", CELLS)
def test_go_backwards_is_the_reversed_input_in_processing_order(cell: str) -> None:
    kw = _rand(cell, np.random.default_rng(1), 2, 5, 3, 4)
    back = _forward(cell, {**kw, "go_backwards": True})
    fwd = _forward(cell, {**kw, "x": kw["x"][:, ::-1]})
    for a, b in zip(back, fwd, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("go_backwards", [False, True])
def test_masked_steps(cell: str, go_backwards: bool) -> None:
    B, T, F, H = 3, 5, 2, 3
    kw = _rand(cell, np.random.default_rng(2), B, T, F, H)
    kw["go_backwards"] = go_backwards
    lengths = np.array([T, 2, 0])
    res = _forward(cell, {**kw, "lengths": lengths})
    outputs, states = res[0], res[1:]
    # full lengths == no mask
    for a, b in zip(_forward(cell, {**kw, "lengths": np.full(B, T)}), _forward(cell, kw), strict=True):
        np.testing.assert_array_equal(a, b)
    # values at masked steps are irrelevant
    garbage = kw["x"].copy()
    garbage[1, 2:] = 50.0
    garbage[2] = -7.0
    for a, b in zip(_forward(cell, {**kw, "x": garbage, "lengths": lengths}), res, strict=True):
        np.testing.assert_array_equal(a, b)
    # sample 1 alone, truncated to its valid steps
    one = {**kw, "x": kw["x"][1:2, :2], "h0": kw["h0"][1:2]}
    if cell == "lstm":
        one["c0"] = kw["c0"][1:2]
    short = _forward(cell, one)
    for s, s_short in zip(states, short[1:], strict=True):
        np.testing.assert_allclose(s[1], s_short[0], rtol=0, atol=1e-15)
    if go_backwards:
        np.testing.assert_array_equal(outputs[1, :3], 0.0)  # padding is met first: zeros
        np.testing.assert_allclose(outputs[1, 3:], short[0][0], rtol=0, atol=1e-15)
    else:
        np.testing.assert_allclose(outputs[1, :2], short[0][0], rtol=0, atol=1e-15)
        np.testing.assert_array_equal(outputs[1, 2:], np.broadcast_to(outputs[1, 1], (3, H)))  # carried
    # length 0: zero outputs (not h0), states untouched
    np.testing.assert_array_equal(outputs[2], 0.0)
    np.testing.assert_array_equal(states[0][2], kw["h0"][2])
    if cell == "lstm":
        np.testing.assert_array_equal(states[1][2], kw["c0"][2])


def test_lstm_step_by_hand() -> None:
    """One step, every activation named, against the textbook formulas written out independently."""
    rng = np.random.default_rng(3)
    x, h0, c0 = rng.normal(size=(2, 1, 3)), rng.normal(size=(2, 2)), rng.normal(size=(2, 2))
    k, u, b = rng.normal(size=(3, 8)), rng.normal(size=(2, 8)), rng.normal(size=8)
    z = x[:, 0] @ k + h0 @ u + b
    hs = np.clip(z / 6 + 0.5, 0, 1)  # Keras 3 hard_sigmoid = relu6(z + 3) / 6
    c = hs[:, 2:4] * c0 + hs[:, 0:2] * np.maximum(z[:, 4:6], 0)
    h = hs[:, 6:8] * np.maximum(c, 0)
    out, h1, c1 = R.lstm_forward(x, k, u, b, h0, c0, None, "relu", "hard_sigmoid")
    np.testing.assert_allclose(c1, c, rtol=1e-14)
    np.testing.assert_allclose(h1, h, rtol=1e-14)
    np.testing.assert_array_equal(out[:, 0], h1)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_step_by_hand(reset_after: bool) -> None:
    rng = np.random.default_rng(4)
    x, h0 = rng.normal(size=(2, 1, 3)), rng.normal(size=(2, 2))
    k, u = rng.normal(size=(3, 6)), rng.normal(size=(2, 6))
    b = rng.normal(size=(2, 6) if reset_after else 6)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    b_in = b[0] if reset_after else b
    mx = x[:, 0] @ k + b_in
    rec = h0 @ u + (b[1] if reset_after else 0)
    zg, r = sig(mx[:, :2] + rec[:, :2]), sig(mx[:, 2:4] + rec[:, 2:4])
    if reset_after:
        hh = np.tanh(mx[:, 4:] + r * rec[:, 4:])
    else:
        hh = np.tanh(mx[:, 4:] + (r * h0) @ u[:, 4:])
    expected = zg * h0 + (1 - zg) * hh
    out, h1 = R.gru_forward(x, k, u, b, h0, reset_after=reset_after)
    np.testing.assert_allclose(h1, expected, rtol=1e-14)


# ----------------------------------------------------------------------------- finite differences


def _fd_grad(loss: Any, a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        orig = a[i]
        a[i] = orig + eps
        up = loss()
        a[i] = orig - eps
        down = loss()
        a[i] = orig
        g[i] = (up - down) / (2 * eps)
    return g


FD_SHAPES = [
    # (B, T, F, H, lengths)
    (1, 1, 1, 1, None),
    (1, 3, 2, 1, [2]),
    (2, 1, 1, 2, [0, 1]),
    (3, 4, 2, 3, [4, 2, 0]),
    (4, 3, 3, 2, [1, 3, 0, 2]),
]
FD_ACTS = [("tanh", "sigmoid"), ("relu", "hard_sigmoid"), ("linear", "tanh")]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shape", FD_SHAPES, ids=lambda s: "B{}T{}F{}H{}-L{}".format(*s))
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("acts", FD_ACTS, ids="-".join)
def test_backward_matches_finite_differences(
    cell: str, shape: tuple[Any, ...], go_backwards: bool, acts: tuple[str, str]
) -> None:
    B, T, F, H, lengths = shape
    seed = zlib.crc32(repr((cell, shape, go_backwards, acts)).encode())
    rng = np.random.default_rng(seed)
    kw = _rand(cell, rng, B, T, F, H)
    kw.update(
        lengths=None if lengths is None else np.array(lengths),
        activation=acts[0],
        recurrent_activation=acts[1],
        go_backwards=go_backwards,
    )
    if cell == "gru_rb" and acts[0] == "relu":
        kw["bias"] = None  # cover use_bias=False too
    G, GH, GC = rng.normal(size=(B, T, H)), rng.normal(size=(B, H)), rng.normal(size=(B, H))

    def loss() -> float:
        res = _forward(cell, kw)
        total = np.sum(res[0] * G) + np.sum(res[1] * GH)
        if cell == "lstm":
            total += np.sum(res[2] * GC)
        return float(total)

    if cell == "lstm":
        grads = R.lstm_backward(**kw, d_outputs=G, d_h_last=GH, d_c_last=GC)
        wrt = {"dx": "x", "dkernel": "kernel", "drecurrent_kernel": "recurrent_kernel", "dbias": "bias"}
        wrt.update(dh0="h0", dc0="c0")
    else:
        grads = R.gru_backward(**kw, d_outputs=G, d_h_last=GH)
        wrt = {"dx": "x", "dkernel": "kernel", "drecurrent_kernel": "recurrent_kernel", "dbias": "bias"}
        wrt.update(dh0="h0")
    for gname, arg in wrt.items():
        if kw[arg] is None:
            assert grads[gname] is None
            continue
        numeric = _fd_grad(loss, kw[arg])
        np.testing.assert_allclose(grads[gname], numeric, rtol=1e-6, atol=1e-6, err_msg=gname)
    if lengths is not None:  # masked steps: exactly zero input gradient
        valid = np.arange(T)[None, :] < np.array(lengths)[:, None]
        np.testing.assert_array_equal(grads["dx"][~valid], 0.0)


@pytest.mark.parametrize("cell", CELLS)
def test_backward_defaults(cell: str) -> None:
    """Optional upstream gradients default to zero; zero initial states give dh0 / dc0 all the same."""
    kw = _rand(cell, np.random.default_rng(5), 2, 3, 2, 2)
    G = np.random.default_rng(6).normal(size=(2, 3, 2))
    bwd = R.lstm_backward if cell == "lstm" else R.gru_backward
    kw_min = {**kw, "h0": None, "lengths": None, "activation": "tanh", "recurrent_activation": "sigmoid"}
    kw_min["go_backwards"] = False
    if cell == "lstm":
        kw_min["c0"] = None
    a = bwd(**kw_min, d_outputs=G)
    zeros = {"d_h_last": np.zeros((2, 2))}
    if cell == "lstm":
        zeros["d_c_last"] = np.zeros((2, 2))
    b = bwd(**kw_min, d_outputs=G, **zeros)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert a["dh0"].shape == (2, 2)


# ------------------------------------------------------------------------------------ PyTorch


def test_lstm_from_torch_matches_torch() -> None:
    g = golden()
    t = {k[len("torch_lstm__") :]: v for k, v in g.items() if k.startswith("torch_lstm__")}
    k, u, b = R.lstm_from_torch(t["weight_ih"], t["weight_hh"], t["bias_ih"], t["bias_hh"])
    out, h, c = R.lstm_forward(t["x"], k, u, b, t["h0"], t["c0"])
    _close(out, t["outputs"])
    _close(h, t["h_n"])
    _close(c, t["c_n"])
    d = R.lstm_backward(t["x"], k, u, b, t["h0"], t["c0"], None, "tanh", "sigmoid", False, t["G"])
    _close(d["dx"], t["dx"])
    w_ih, w_hh, _, _ = R.lstm_to_torch(d["dkernel"], d["drecurrent_kernel"], d["dbias"])
    _close(w_ih, t["dweight_ih"])
    _close(w_hh, t["dweight_hh"])
    _close(d["dbias"], t["dbias_ih"])  # torch's two biases both receive the full bias gradient
    _close(d["dbias"], t["dbias_hh"])


def test_gru_from_torch_matches_torch() -> None:
    g = golden()
    t = {k[len("torch_gru__") :]: v for k, v in g.items() if k.startswith("torch_gru__")}
    k, u, b = R.gru_from_torch(t["weight_ih"], t["weight_hh"], t["bias_ih"], t["bias_hh"])
    assert b is not None and b.shape == (2, k.shape[1])
    out, h = R.gru_forward(t["x"], k, u, b, t["h0"], reset_after=True)
    _close(out, t["outputs"])
    _close(h, t["h_n"])
    d = R.gru_backward(t["x"], k, u, b, t["h0"], None, "tanh", "sigmoid", False, True, t["G"])
    _close(d["dx"], t["dx"])
    dw = R.gru_to_torch(d["dkernel"], d["drecurrent_kernel"], d["dbias"])
    for got, name in zip(dw, ("dweight_ih", "dweight_hh", "dbias_ih", "dbias_hh"), strict=True):
        _close(got, t[name], err_msg=name)


def test_gru_gate_order_is_swapped() -> None:
    H, F = 2, 3
    w_ih = np.arange(3 * H * F, dtype=np.float64).reshape(3 * H, F)  # rows: r, z, n blocks
    k, _, _ = R.gru_from_torch(w_ih, np.zeros((3 * H, H)))
    np.testing.assert_array_equal(k[:, :H], w_ih[H : 2 * H].T)  # Keras z  <- torch z
    np.testing.assert_array_equal(k[:, H : 2 * H], w_ih[:H].T)  # Keras r  <- torch r
    np.testing.assert_array_equal(k[:, 2 * H :], w_ih[2 * H :].T)  # Keras h  <- torch n


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_converters_round_trip_exactly_and_keep_dtype(dtype: type) -> None:
    rng = np.random.default_rng(8)
    F, H = 3, 4
    k4, u4, b4 = (rng.normal(size=s).astype(dtype) for s in ((F, 4 * H), (H, 4 * H), (4 * H,)))
    torch_w = R.lstm_to_torch(k4, u4, b4)
    assert torch_w[0].shape == (4 * H, F) and torch_w[1].shape == (4 * H, H)
    assert all(a is not None and a.dtype == dtype for a in torch_w)
    np.testing.assert_array_equal(torch_w[3], 0)
    back = R.lstm_from_torch(*torch_w)
    for a, b in zip(back, (k4, u4, b4), strict=True):
        assert a is not None and a.dtype == dtype and a.flags.c_contiguous
        np.testing.assert_array_equal(a, b)
    # torch -> Keras -> torch: matrices exact, the bias split moves but its sum is kept
    w_ih, w_hh, b_ih, b_hh = (rng.normal(size=s).astype(dtype) for s in ((4 * H, F), (4 * H, H), (4 * H,), (4 * H,)))
    again = R.lstm_to_torch(*R.lstm_from_torch(w_ih, w_hh, b_ih, b_hh))
    np.testing.assert_array_equal(again[0], w_ih)
    np.testing.assert_array_equal(again[1], w_hh)
    np.testing.assert_array_equal(again[2], b_ih + b_hh)

    k3, u3, b3 = (rng.normal(size=s).astype(dtype) for s in ((F, 3 * H), (H, 3 * H), (2, 3 * H)))
    tw = R.gru_to_torch(k3, u3, b3)
    assert all(a is not None and a.dtype == dtype for a in tw)
    for a, b in zip(R.gru_from_torch(*tw), (k3, u3, b3), strict=True):
        assert a is not None and a.dtype == dtype and a.flags.c_contiguous
        np.testing.assert_array_equal(a, b)
    g_ih, g_hh, gb_ih, gb_hh = (rng.normal(size=s).astype(dtype) for s in ((3 * H, F), (3 * H, H), (3 * H,), (3 * H,)))
    for a, b in zip(
        R.gru_to_torch(*R.gru_from_torch(g_ih, g_hh, gb_ih, gb_hh)), (g_ih, g_hh, gb_ih, gb_hh), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_converters_without_bias() -> None:
    k, u, b = R.lstm_from_torch(np.ones((8, 3)), np.ones((8, 2)))
    assert b is None and k.shape == (3, 8) and u.shape == (2, 8)
    assert R.lstm_to_torch(k, u)[2:] == (None, None)
    k, u, b = R.gru_from_torch(np.ones((6, 3)), np.ones((6, 2)))
    assert b is None and k.shape == (3, 6)
    assert R.gru_to_torch(k, u, None)[2:] == (None, None)


@pytest.mark.parametrize(
    ("fn", "args", "match"),
    [
        (R.lstm_from_torch, (np.ones((7, 3)), np.ones((7, 2))), r"lstm_from_torch: weight_ih .*\(7, 3\)"),
        (R.lstm_from_torch, (np.ones(8), np.ones((8, 2))), r"lstm_from_torch: weight_ih .*\(8,\)"),
        (
            R.lstm_from_torch,
            (np.ones((8, 3)), np.ones((8, 3))),
            r"lstm_from_torch: weight_hh .*\(8, 2\).*\(8, 3\)",
        ),
        (
            R.lstm_from_torch,
            (np.ones((8, 3)), np.ones((8, 2)), np.ones(8), np.ones(7)),
            r"lstm_from_torch: bias_hh .*\(8,\).*\(7,\)",
        ),
        (R.lstm_from_torch, (np.ones((8, 3)), np.ones((8, 2)), np.ones(8)), "lstm_from_torch: pass both"),
        (R.lstm_to_torch, (np.ones((3, 8)), np.ones((2, 6))), r"lstm_to_torch: recurrent_kernel .*\(2, 6\)"),
        (
            R.lstm_to_torch,
            (np.ones((3, 12)), np.ones((2, 8))),
            r"lstm_to_torch: kernel .*\(input_dim, 8\).*\(3, 12\)",
        ),
        (
            R.lstm_to_torch,
            (np.ones((3, 8)), np.ones((2, 8)), np.ones(6)),
            r"lstm_to_torch: bias .*\(8,\).*\(6,\)",
        ),
        (R.gru_from_torch, (np.ones((8, 3)), np.ones((8, 2))), r"gru_from_torch: weight_ih .*\(8, 3\)"),
        (
            R.gru_from_torch,
            (np.ones((6, 3)), np.ones((6, 3))),
            r"gru_from_torch: weight_hh .*\(6, 2\).*\(6, 3\)",
        ),
        (R.gru_to_torch, (np.ones((3, 6)), np.ones((2, 6)), np.ones(6)), "gru_to_torch: .*reset_after=False"),
        (
            R.gru_to_torch,
            (np.ones((3, 6)), np.ones((2, 6)), np.ones((1, 6))),
            r"gru_to_torch: bias .*\(2, 6\)",
        ),
        (R.gru_to_torch, (np.ones((3, 9)), np.ones((2, 6))), r"gru_to_torch: kernel .*\(3, 9\)"),
    ],
)
def test_converter_shape_errors(fn: Any, args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fn(*args)


# ----------------------------------------------------------------------------------- validation


def test_reference_input_validation() -> None:
    kw = _rand_lstm(np.random.default_rng(9), 2, 3, 2, 2)
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, 3\]"):
        R.lstm_forward(**kw, lengths=np.array([4, 1]))
    with pytest.raises(ValueError, match="lengths must be integers"):
        R.lstm_forward(**kw, lengths=np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="unknown activation 'softmax'"):
        R.lstm_forward(**kw, activation="softmax")
    with pytest.raises(ValueError, match=r"lstm_forward: kernel must have shape \(2, 8\)"):
        R.lstm_forward(**{**kw, "kernel": np.ones((3, 8))})
    gkw = _rand_gru(np.random.default_rng(9), 2, 3, 2, 2, reset_after=True)
    with pytest.raises(ValueError, match=r"bias \(reset_after=False\) must have shape \(6,\)"):
        R.gru_forward(**{**gkw, "reset_after": False})
    with pytest.raises(ValueError, match=r"gru_backward: d_outputs must have shape \(2, 3, 2\)"):
        R.gru_backward(**gkw, lengths=None, activation="tanh", recurrent_activation="sigmoid",
                       go_backwards=False, d_outputs=np.ones((2, 2, 2)))  # fmt: skip
