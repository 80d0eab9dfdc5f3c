"""The Rust LSTM kernel (seqcore.kernels.lstm_forward / lstm_backward) against Keras golden values and
the independent float64 reference (seqcore.reference_rnn), over drawn shapes and every option.

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


def run_lstm(kw: dict, up: dict, need_dx: bool = True):
    res = kernels.lstm_forward(
        kw["x"], kw["kernel"], kw["recurrent_kernel"], kw["bias"],
        initial_state=None if kw["h0"] is None else [kw["h0"], kw["c0"]],
        lengths=kw["lengths"], activation=kw["activation"],
        recurrent_activation=kw["recurrent_activation"], go_backwards=kw["go_backwards"],
    )  # fmt: skip
    grads = kernels.lstm_backward(res.tape, up["d_outputs"], up.get("d_h_last"), up.get("d_c_last"), need_dx=need_dx)
    return res, grads


@pytest.mark.parametrize("case", golden_cases("lstm"))
def test_matches_keras_goldens(case: str) -> None:
    kw, up, keras = golden_case("lstm", case)
    res, g = run_lstm(kw, up)
    assert_close(res.outputs, keras["outputs"], TOL, "outputs")
    assert_close(res.h, keras["h"], TOL, "h")
    assert_close(res.c, keras["c"], TOL, "c")
    for name in ("dx", "dkernel", "drecurrent_kernel"):
        assert_close(getattr(g, name), keras[name], 1e-4, name)
    if "dbias" in keras and kw["bias"] is not None:
        assert_close(g.dbias, keras["dbias"], 1e-4, "dbias")
    if "dh0" in keras:
        assert_close(g.dh0, keras["dh0"], 1e-4, "dh0")
        assert_close(g.dc0, keras["dc0"], 1e-4, "dc0")


@st.composite
def lstm_case(draw):
    b = draw(st.integers(1, 5))
    t = draw(st.integers(1, 7))
    # Wide inputs (f >= 128 and >= h) take the kernel's other design: the input projection
    # hoisted out of the time loop, and dx as one GEMM after it.
    f = draw(st.one_of(st.integers(1, 6), st.integers(128, 140)))
    h = draw(st.integers(1, 9))
    act = draw(st.sampled_from(["tanh", "tanh", *ACTS]))
    rec = draw(st.sampled_from(["sigmoid", "sigmoid", *ACTS]))
    # Unbounded gates (linear/relu) make the recursion expansive: float32 rounding then grows
    # without bound and no tolerance is meaningful. Draw contractive weights for them.
    scale = 0.5 if {act, rec} <= {"tanh", "sigmoid", "hard_sigmoid"} else 0.2
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    kw = {
        "x": rng.normal(size=(b, t, f)),
        "kernel": rng.normal(scale=scale * min(1.0, (6 / f) ** 0.5), size=(f, 4 * h)),
        "recurrent_kernel": rng.normal(scale=scale, size=(h, 4 * h)),
        "bias": rng.normal(scale=0.3, size=4 * h) if draw(st.booleans()) else None,
        "h0": None,
        "c0": None,
        "lengths": random_lengths(rng, b, t) if draw(st.booleans()) else None,
        "activation": act,
        "recurrent_activation": rec,
        "go_backwards": draw(st.booleans()),
    }
    if draw(st.booleans()):
        kw["h0"] = rng.normal(size=(b, h))
        kw["c0"] = rng.normal(size=(b, h))
    up = {
        "d_outputs": rng.normal(size=(b, t, h)),
        "d_h_last": rng.normal(size=(b, h)) if draw(st.booleans()) else None,
        "d_c_last": rng.normal(size=(b, h)) if draw(st.booleans()) else None,
    }
    return kw, up


@settings(max_examples=60, deadline=None)
@given(lstm_case())
def test_matches_reference(case) -> None:
    kw, up = case
    res, g = run_lstm(kw, up)
    ref_out, ref_h, ref_c = R.lstm_forward(**kw)
    assert_close(res.outputs, ref_out, TOL, "outputs")
    assert_close(res.h, ref_h, TOL, "h")
    assert_close(res.c, ref_c, TOL, "c")
    ref = R.lstm_backward(**kw, **up)
    for name in ("dx", "dkernel", "drecurrent_kernel", "dh0", "dc0"):
        assert_close(getattr(g, name), ref[name], 2e-4, name)
    if kw["bias"] is None:
        assert g.dbias is None
    else:
        assert_close(g.dbias, ref["dbias"], 2e-4, "dbias")


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_counts_and_large_batch_agree(threads: int) -> None:
    rng = np.random.default_rng(1)
    b, t, f, h = 9, 6, 5, 7
    x = rng.normal(size=(b, t, f)).astype(np.float32)
    k = rng.normal(scale=0.4, size=(f, 4 * h)).astype(np.float32)
    rk = rng.normal(scale=0.4, size=(h, 4 * h)).astype(np.float32)
    before = seqcore.get_num_threads()
    try:
        seqcore.set_num_threads(threads)
        res, g = run_lstm(
            {"x": x, "kernel": k, "recurrent_kernel": rk, "bias": None, "h0": None, "c0": None,
             "lengths": None, "activation": "tanh", "recurrent_activation": "sigmoid", "go_backwards": False},
            {"d_outputs": np.ones((b, t, h))},
        )  # fmt: skip
    finally:
        seqcore.set_num_threads(before)
    ref_out, _, _ = R.lstm_forward(x, k, rk)
    assert_close(res.outputs, ref_out, TOL, "outputs")
    ref = R.lstm_backward(x, k, rk, None, None, None, None, "tanh", "sigmoid", False, np.ones((b, t, h)))
    assert_close(g.drecurrent_kernel, ref["drecurrent_kernel"], 2e-4, "drecurrent_kernel")


def test_layouts_and_dtypes_give_the_same_result() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 10, 6))
    k = rng.normal(scale=0.4, size=(3, 16))
    rk = rng.normal(scale=0.4, size=(4, 16))
    base = kernels.lstm_forward(x[:, ::2, ::2].astype(np.float32).copy(), k, rk, training=False).outputs
    strided = kernels.lstm_forward(x.astype(np.float32)[:, ::2, ::2], k, rk, training=False).outputs
    fortran = kernels.lstm_forward(np.asfortranarray(x[:, ::2, ::2]), np.asfortranarray(k), rk, training=False)
    np.testing.assert_array_equal(base, strided)
    np.testing.assert_array_equal(base, fortran.outputs)
    assert fortran.tape is None


def test_inference_equals_training_forward() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 8, 5)).astype(np.float32)
    k = rng.normal(scale=0.4, size=(5, 24)).astype(np.float32)
    rk = rng.normal(scale=0.4, size=(6, 24)).astype(np.float32)
    a = kernels.lstm_forward(x, k, rk, lengths=[8, 3, 0], go_backwards=True, training=True)
    b = kernels.lstm_forward(x, k, rk, lengths=[8, 3, 0], go_backwards=True, training=False)
    np.testing.assert_array_equal(a.outputs, b.outputs)
    np.testing.assert_array_equal(a.h, b.h)


def test_simd_levels_agree() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 12, 7)).astype(np.float32)
    k = rng.normal(scale=0.4, size=(7, 36)).astype(np.float32)
    rk = rng.normal(scale=0.4, size=(9, 36)).astype(np.float32)
    d = rng.normal(size=(5, 12, 9)).astype(np.float32)
    results = []
    try:
        for level in ["portable", seqcore.detected_simd_level()]:
            seqcore._seqcore._force_simd_level(level)
            for acts in (("tanh", "sigmoid"), ("relu", "hard_sigmoid")):
                r = kernels.lstm_forward(x, k, rk, activation=acts[0], recurrent_activation=acts[1])
                results.append((r.outputs, kernels.lstm_backward(r.tape, d).drecurrent_kernel))
    finally:
        seqcore._seqcore._force_simd_level(None)
    half = len(results) // 2
    for (o1, g1), (o2, g2) in zip(results[:half], results[half:], strict=True):
        np.testing.assert_allclose(o1, o2, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("b", "t", "f", "h"), [(0, 3, 2, 4), (2, 0, 2, 4), (2, 3, 0, 4), (2, 3, 2, 0)])
def test_zero_sizes(b: int, t: int, f: int, h: int) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(b, t, f))
    k = rng.normal(size=(f, 4 * h))
    rk = rng.normal(size=(h, 4 * h))
    h0 = rng.normal(size=(b, h))
    c0 = rng.normal(size=(b, h))
    res = kernels.lstm_forward(x, k, rk, np.zeros(4 * h), initial_state=[h0, c0])
    ref_out, ref_h, ref_c = R.lstm_forward(x, k, rk, np.zeros(4 * h), h0, c0)
    assert_close(res.outputs, ref_out, TOL, "outputs")
    assert_close(res.h, ref_h, TOL, "h")
    assert_close(res.c, ref_c, TOL, "c")
    dh = rng.normal(size=(b, h))
    g = kernels.lstm_backward(res.tape, np.ones((b, t, h)), dh, None)
    ref = R.lstm_backward(x, k, rk, np.zeros(4 * h), h0, c0, None, "tanh", "sigmoid", False, np.ones((b, t, h)), dh)
    for name in ("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0", "dc0"):
        assert_close(getattr(g, name), ref[name], 2e-4, name)


class TestErrors:
    x = np.zeros((2, 5, 3), np.float32)
    k = np.zeros((3, 16), np.float32)
    rk = np.zeros((4, 16), np.float32)

    def test_two_d_input_suggests_return_sequences(self) -> None:
        with pytest.raises(ValueError, match=r"lstm_forward: x must be 3-D.*\(2, 3\).*return_sequences=True"):
            kernels.lstm_forward(np.zeros((2, 3)), self.k, self.rk)

    def test_kernel_feature_mismatch_names_both_shapes(self) -> None:
        with pytest.raises(
            ValueError, match=r"lstm_forward: kernel must have shape \(3, 4\*units\).*\(2, 5, 3\).*\(4, 16\)"
        ):
            kernels.lstm_forward(self.x, np.zeros((4, 16)), self.rk)

    def test_recurrent_kernel_shape(self) -> None:
        with pytest.raises(ValueError, match=r"recurrent_kernel must have shape \(4, 16\).*\(16, 4\)"):
            kernels.lstm_forward(self.x, self.k, np.zeros((16, 4)))

    def test_bias_shape(self) -> None:
        with pytest.raises(ValueError, match=r"bias must have shape \(16,\).*\(4,\)"):
            kernels.lstm_forward(self.x, self.k, self.rk, np.zeros(4))

    def test_initial_state_shapes(self) -> None:
        with pytest.raises(ValueError, match=r"initial_state\[1\] \(c\) must have shape \(2, 4\).*\(3, 4\)"):
            kernels.lstm_forward(self.x, self.k, self.rk, initial_state=[np.zeros((2, 4)), np.zeros((3, 4))])
        with pytest.raises(ValueError, match=r"list of 2 arrays \[h, c\]"):
            kernels.lstm_forward(self.x, self.k, self.rk, initial_state=[np.zeros((2, 4))])

    def test_lengths_out_of_range_and_wrong_type(self) -> None:
        with pytest.raises(ValueError, match=r"lengths must lie in \[0, 5\].*6"):
            kernels.lstm_forward(self.x, self.k, self.rk, lengths=[6, 1])
        with pytest.raises(ValueError, match=r"lengths must lie in \[0, 5\].*-1"):
            kernels.lstm_forward(self.x, self.k, self.rk, lengths=[-1, 1])
        with pytest.raises(ValueError, match=r"lengths must have shape \(2,\)"):
            kernels.lstm_forward(self.x, self.k, self.rk, lengths=[1, 2, 3])
        with pytest.raises(TypeError, match=r"lengths must be integers"):
            kernels.lstm_forward(self.x, self.k, self.rk, lengths=[1.5, 2])

    def test_unsupported_activation(self) -> None:
        with pytest.raises(ValueError, match=r"unsupported activation 'softmax'"):
            kernels.lstm_forward(self.x, self.k, self.rk, activation="softmax")
        with pytest.raises(ValueError, match=r"unknown activation 'sofmax'"):
            kernels.lstm_forward(self.x, self.k, self.rk, activation="sofmax")
        with pytest.raises(ValueError, match=r"unsupported recurrent_activation 'gelu'; a recurrent cell fuses"):
            kernels.lstm_forward(self.x, self.k, self.rk, recurrent_activation="gelu")

    def test_tape_is_single_use_and_upstream_shapes_checked(self) -> None:
        res = kernels.lstm_forward(self.x, self.k, self.rk)
        with pytest.raises(ValueError, match=r"d_outputs must have shape \(2, 5, 4\).*\(2, 5, 1\)"):
            kernels.lstm_backward(res.tape, np.zeros((2, 5, 1)))
        res = kernels.lstm_forward(self.x, self.k, self.rk)
        kernels.lstm_backward(res.tape, np.zeros((2, 5, 4)))
        with pytest.raises(ValueError, match=r"already used"):
            kernels.lstm_backward(res.tape, np.zeros((2, 5, 4)))
        assert kernels.lstm_forward(self.x, self.k, self.rk, training=False).tape is None
