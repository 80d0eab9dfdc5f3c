"""seqcore.convert: PyTorch <-> Keras layout converters feed the Rust kernels correctly.

The torch goldens (tests/golden/rnn_goldens.npz, from tests/golden/generate_rnn_goldens.py with torch
2.15; no torch needed here) hold nn.LSTM / nn.GRU weights, inputs and outputs: converting the torch
weights and running seqcore's kernels must reproduce torch's outputs."""

from __future__ import annotations

import numpy as np
import pytest
from rnn_cases import assert_close, golden
from seqcore import convert, kernels


def _torch_case(cell: str):
    g = golden()
    keys = {k.split("__", 2)[-1]: v for k, v in g.items() if k.startswith(f"torch_{cell}__")}
    return keys


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_kernels_reproduce_torch_outputs_and_gradients(cell: str) -> None:
    c = _torch_case(cell)
    assert c, f"no torch golden for {cell}"
    w_ih, w_hh, b_ih, b_hh = c["weight_ih"], c["weight_hh"], c["bias_ih"], c["bias_hh"]
    if cell == "lstm":
        k, rk, b = convert.lstm_from_torch(w_ih, w_hh, b_ih, b_hh)
        res = kernels.lstm_forward(c["x"], k, rk, b, initial_state=[c["h0"], c["c0"]])
        assert_close(res.c, c["c_n"], 3e-5, "c_n")
        g = kernels.lstm_backward(res.tape, c["G"])
        dw_ih, dw_hh, _, _ = convert.lstm_to_torch(g.dkernel, g.drecurrent_kernel, g.dbias)
        # both torch biases enter as their sum: each gets the whole bias gradient
        assert_close(g.dbias, c["dbias_ih"], 1e-4, "dbias_ih")
        assert_close(g.dbias, c["dbias_hh"], 1e-4, "dbias_hh")
    else:
        k, rk, b = convert.gru_from_torch(w_ih, w_hh, b_ih, b_hh)
        res = kernels.gru_forward(c["x"], k, rk, b, initial_state=[c["h0"]])
        g = kernels.gru_backward(res.tape, c["G"])
        dw_ih, dw_hh, db_ih, db_hh = convert.gru_to_torch(g.dkernel, g.drecurrent_kernel, g.dbias)
        assert_close(db_ih, c["dbias_ih"], 1e-4, "dbias_ih")
        assert_close(db_hh, c["dbias_hh"], 1e-4, "dbias_hh")
    assert_close(res.outputs, c["outputs"], 3e-5, f"{cell} outputs vs torch")
    assert_close(res.h, c["h_n"], 3e-5, "h_n")
    assert_close(g.dx, c["dx"], 1e-4, "dx")
    assert_close(dw_ih, c["dweight_ih"], 1e-4, "dweight_ih")
    assert_close(dw_hh, c["dweight_hh"], 1e-4, "dweight_hh")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_round_trip_to_torch_is_exact(cell: str) -> None:
    rng = np.random.default_rng(0)
    h, f = 5, 3
    gates = 4 if cell == "lstm" else 3
    w_ih = rng.normal(size=(gates * h, f)).astype(np.float32)
    w_hh = rng.normal(size=(gates * h, h)).astype(np.float32)
    b_ih = rng.normal(size=gates * h).astype(np.float32)
    b_hh = rng.normal(size=gates * h).astype(np.float32)
    frm, to = (
        (convert.lstm_from_torch, convert.lstm_to_torch)
        if cell == "lstm"
        else (convert.gru_from_torch, convert.gru_to_torch)
    )
    k, rk, b = frm(w_ih, w_hh, b_ih, b_hh)
    assert k.dtype == np.float32 and k.shape == (f, gates * h) and rk.shape == (h, gates * h)
    w_ih2, w_hh2, b_ih2, b_hh2 = to(k, rk, b)
    np.testing.assert_array_equal(w_ih2, w_ih)
    np.testing.assert_array_equal(w_hh2, w_hh)
    if cell == "gru":  # GRU keeps both biases exactly
        np.testing.assert_array_equal(b_ih2, b_ih)
        np.testing.assert_array_equal(b_hh2, b_hh)
    else:  # LSTM sums them; the sum survives
        np.testing.assert_allclose(b_ih2 + b_hh2, b_ih + b_hh, rtol=1e-6)


def test_dense_converters() -> None:
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 3))
    b = rng.normal(size=4)
    k, kb = convert.dense_from_torch(w, b)
    x = rng.normal(size=(2, 5, 3))
    np.testing.assert_allclose(kernels.dense_forward(x, k, kb), x @ w.T + b, rtol=1e-5, atol=1e-5)
    w2, b2 = convert.dense_to_torch(k, kb)
    np.testing.assert_array_equal(w2, w)
    with pytest.raises(ValueError, match=r"dense_from_torch: bias must have shape \(4,\).*\(3,\)"):
        convert.dense_from_torch(w, np.zeros(3))


def test_converter_errors_name_shapes() -> None:
    with pytest.raises(ValueError, match=r"lstm_from_torch: weight_hh must have shape \(8, 2\)"):
        convert.lstm_from_torch(np.zeros((8, 3)), np.zeros((8, 3)))
    with pytest.raises(ValueError, match=r"gru_to_torch: bias has shape \(6,\).*reset_after=False"):
        convert.gru_to_torch(np.zeros((3, 6)), np.zeros((2, 6)), np.zeros(6))
    with pytest.raises(ValueError, match=r"both bias_ih and bias_hh"):
        convert.gru_from_torch(np.zeros((6, 3)), np.zeros((6, 2)), np.zeros(6), None)
