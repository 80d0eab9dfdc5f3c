"""The Rust GRU kernel (seqcore.kernels.gru_forward / gru_backward), both reset_after modes, against
Keras golden values and the float64 reference (seqcore.reference_rnn).

Goldens: tests/golden/rnn_goldens.npz from tests/golden/generate_rnn_goldens.py (Keras 3.15.1 / TF
2.21, run once; CI needs neither)."""

from __future__ import annotations

import numpy as np
import pytest
import seqcore
from hypothesis import given, settings
from hypothesis import strategies as st
from rnn_cases import assert_close, golden_case, golden_cases, random_lengths
from seqcore import kernels
from seqcore import reference_rnn as R

TOL = 3e-5
ACTS = ["linear", "relu", "sigmoid", "hard_sigmoid", "tanh"]


def run_gru(kw: dict, up: dict, need_dx: bool = True):
    res = kernels.gru_forward(
        kw["x"], kw["kernel"], kw["recurrent_kernel"], kw["bias"],
        initial_state=None if kw["h0"] is None else [kw["h0"]],
        lengths=kw["lengths"], activation=kw["activation"],
        recurrent_activation=kw["recurrent_activation"], go_backwards=kw["go_backwards"],
        reset_after=kw["reset_after"],
    )  # fmt: skip
    grads = kernels.gru_backward(res.tape, up["d_outputs"], up.get("d_h_last"), need_dx=need_dx)
    return res, grads


@pytest.mark.parametrize(("cell", "case"), [(c, k) for c in ("gru_ra", "gru_rb") for k in golden_cases(c)])
def test_matches_keras_goldens(cell: str, case: str) -> None:
    kw, up, keras = golden_case(cell, case)
    res, g = run_gru(kw, up)
    assert_close(res.outputs, keras["outputs"], TOL, "outputs")
    assert_close(res.h, keras["h"], TOL, "h")
    for name in ("dx", "dkernel", "drecurrent_kernel"):
        assert_close(getattr(g, name), keras[name], 1e-4, name)
    if kw["bias"] is not None:
        assert_close(g.dbias, keras["dbias"], 1e-4, "dbias")
    if "dh0" in keras:
        assert_close(g.dh0, keras["dh0"], 1e-4, "dh0")


@st.composite
def gru_case(draw):
    b = draw(st.integers(1, 5))
    t = draw(st.integers(1, 7))
    f = draw(st.integers(1, 6))
    h = draw(st.integers(1, 9))
    reset_after = draw(st.booleans())
    act = draw(st.sampled_from(["tanh", "tanh", *ACTS]))
    rec = draw(st.sampled_from(["sigmoid", "sigmoid", *ACTS]))
    # Unbounded gates (linear/relu) make the recursion expansive: float32 rounding then grows
    # without bound and no tolerance is meaningful. Draw contractive weights for them.
    scale = 0.5 if {act, rec} <= {"tanh", "sigmoid", "hard_sigmoid"} else 0.2
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    bias_shape = (2, 3 * h) if reset_after else (3 * h,)
    kw = {
        "x": rng.normal(size=(b, t, f)),
        "kernel": rng.normal(scale=scale, size=(f, 3 * h)),
        "recurrent_kernel": rng.normal(scale=scale, size=(h, 3 * h)),
        "bias": rng.normal(scale=0.3, size=bias_shape) if draw(st.booleans()) else None,
        "h0": rng.normal(size=(b, h)) if draw(st.booleans()) else None,
        "lengths": random_lengths(rng, b, t) if draw(st.booleans()) else None,
        "activation": act,
        "recurrent_activation": rec,
        "go_backwards": draw(st.booleans()),
        "reset_after": reset_after,
    }
    up = {
        "d_outputs": rng.normal(size=(b, t, h)),
        "d_h_last": rng.normal(size=(b, h)) if draw(st.booleans()) else None,
    }
    return kw, up


@settings(max_examples=80, deadline=None)
@given(gru_case())
def test_matches_reference(case) -> None:
    kw, up = case
    res, g = run_gru(kw, up)
    ref_out, ref_h = R.gru_forward(**kw)
    assert_close(res.outputs, ref_out, TOL, "outputs")
    assert_close(res.h, ref_h, TOL, "h")
    ref = R.gru_backward(**kw, **up)
    for name in ("dx", "dkernel", "drecurrent_kernel", "dh0"):
        assert_close(getattr(g, name), ref[name], 2e-4, name)
    if kw["bias"] is None:
        assert g.dbias is None
    else:
        assert_close(g.dbias, ref["dbias"], 2e-4, "dbias")


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_counts_agree(threads: int, reset_after: bool) -> None:
    rng = np.random.default_rng(1)
    b, t, f, h = 7, 6, 5, 4
    x = rng.normal(size=(b, t, f))
    k = rng.normal(scale=0.4, size=(f, 3 * h))
    rk = rng.normal(scale=0.4, size=(h, 3 * h))
    d = rng.normal(size=(b, t, h))
    before = seqcore.get_num_threads()
    try:
        seqcore.set_num_threads(threads)
        res = kernels.gru_forward(x, k, rk, reset_after=reset_after, lengths=random_lengths(rng, b, t))
        lens = res.tape.args["mask"]
        g = kernels.gru_backward(res.tape, d)
    finally:
        seqcore.set_num_threads(before)
    ref = R.gru_backward(x, k, rk, None, None, lens, "tanh", "sigmoid", False, reset_after, d)
    assert_close(g.drecurrent_kernel, ref["drecurrent_kernel"], 2e-4, "drecurrent_kernel")
    assert_close(g.dx, ref["dx"], 2e-4, "dx")


def test_simd_levels_agree() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 12, 7)).astype(np.float32)
    k = rng.normal(scale=0.4, size=(7, 27)).astype(np.float32)
    rk = rng.normal(scale=0.4, size=(9, 27)).astype(np.float32)
    d = rng.normal(size=(5, 12, 9)).astype(np.float32)
    results = []
    try:
        for level in ["portable", seqcore.detected_simd_level()]:
            seqcore._seqcore._force_simd_level(level)
            for reset_after in (True, False):
                r = kernels.gru_forward(x, k, rk, reset_after=reset_after)
                results.append((r.outputs, kernels.gru_backward(r.tape, d).drecurrent_kernel))
    finally:
        seqcore._seqcore._force_simd_level(None)
    for (o1, g1), (o2, g2) in zip(results[:2], results[2:], strict=True):
        np.testing.assert_allclose(o1, o2, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize(("b", "t", "f", "h"), [(0, 3, 2, 4), (2, 0, 2, 4), (2, 3, 0, 4), (2, 3, 2, 0)])
def test_zero_sizes(b: int, t: int, f: int, h: int, reset_after: bool) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(b, t, f))
    k = rng.normal(size=(f, 3 * h))
    rk = rng.normal(size=(h, 3 * h))
    h0 = rng.normal(size=(b, h))
    bias = np.ones((2, 3 * h) if reset_after else (3 * h,))
    res = kernels.gru_forward(x, k, rk, bias, initial_state=h0, reset_after=reset_after)
    ref_out, ref_h = R.gru_forward(x, k, rk, bias, h0, reset_after=reset_after)
    assert_close(res.outputs, ref_out, TOL, "outputs")
    assert_close(res.h, ref_h, TOL, "h")
    dh = rng.normal(size=(b, h))
    g = kernels.gru_backward(res.tape, np.ones((b, t, h)), dh)
    ref = R.gru_backward(x, k, rk, bias, h0, None, "tanh", "sigmoid", False, reset_after, np.ones((b, t, h)), dh)
    for name in ("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0"):
        assert_close(getattr(g, name), ref[name], 2e-4, name)


class TestErrors:
    x = np.zeros((2, 5, 3), np.float32)
    k = np.zeros((3, 12), np.float32)
    rk = np.zeros((4, 12), np.float32)

    def test_bias_shape_depends_on_reset_after(self) -> None:
        with pytest.raises(ValueError, match=r"gru_forward: bias must have shape \(2, 12\).*\(12,\).*two rows"):
            kernels.gru_forward(self.x, self.k, self.rk, np.zeros(12))
        with pytest.raises(ValueError, match=r"bias must have shape \(12,\).*\(2, 12\).*only the input bias"):
            kernels.gru_forward(self.x, self.k, self.rk, np.zeros((2, 12)), reset_after=False)

    def test_shapes_named(self) -> None:
        with pytest.raises(ValueError, match=r"gru_forward: kernel must have shape \(3, 3\*units\).*\(3, 13\)"):
            kernels.gru_forward(self.x, np.zeros((3, 13)), self.rk)
        with pytest.raises(ValueError, match=r"initial_state\[0\] \(h\) must have shape \(2, 4\)"):
            kernels.gru_forward(self.x, self.k, self.rk, initial_state=np.zeros((2, 5)))
        with pytest.raises(ValueError, match=r"x must be 3-D"):
            kernels.gru_forward(np.zeros((2, 5, 3, 1)), self.k, self.rk)

    def test_tape_checks(self) -> None:
        lstm = kernels.lstm_forward(self.x, np.zeros((3, 16)), np.zeros((4, 16)))
        with pytest.raises(ValueError, match=r"comes from lstm_forward"):
            kernels.gru_backward(lstm.tape, None)
        with pytest.raises(TypeError, match=r"gru_backward: tape must be"):
            kernels.gru_backward(None, None)  # type: ignore[arg-type]
