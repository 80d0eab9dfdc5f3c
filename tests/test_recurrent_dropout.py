"""recurrent_dropout: Keras 3's per-gate dropout masks in the LSTM / GRU kernels and layers.

With ``recurrent_dropout > 0`` Keras runs its ``implementation=1`` cell: masks drawn once per call
(``DropoutRNNCell``, ``dropout_mask_count`` = 4 for LSTM, 3 for GRU), ``(batch, features)`` for the
inputs (only with ``dropout > 0``) and ``(batch, units)`` for the state, scaled by 1 / (1 - rate);
gate g computes ``(x_t * input_mask[g]) @ kernel_g + (h_{t-1} * recurrent_mask[g]) @ recurrent_kernel_g``.
GRU: ``reset_after=True`` gives ``r * ((h * m_h) @ U_h + b_rec_h)``, ``reset_after=False``
``(r * (h * m_h)) @ U_h``; the update ``z * h_{t-1} + (1 - z) * hh`` uses the unmasked state. The
LSTM's c is never masked.

Checked here: the kernels (``seqcore.kernels``) against the float64 reference (``seqcore.reference_rnn``)
with masks over drawn shapes; the reference's masked backward against finite differences of its own
forward; exact properties (all-ones masks, zero masks, one gate's mask against its zeroed weight
block); Keras goldens (numbers pasted below from tests/golden/generate_dropout_goldens.py, so CI needs
neither Keras nor a data file); and the layers (masks drawn per training call, seeding, inference,
fit, Bidirectional, config and saving).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import seqcore
from hypothesis import given, settings
from hypothesis import strategies as st
from rnn_cases import assert_close, random_lengths
from seqcore import kernels
from seqcore import reference_rnn as R
from seqcore.layers import GRU, LSTM, Bidirectional, Dense
from seqcore.models import Sequential

TOL = 3e-5  # outputs / states, relative to the array's scale
GTOL = 2e-4  # gradients
GATES = {"lstm": 4, "gru": 3}
BOUNDED = ["tanh", "sigmoid", "hard_sigmoid"]
RATES = [0.1, 0.5, 0.9]
# (kind, reset_after) of each cell variant tested
CELLS = {"lstm": ("lstm", None), "gru_ra": ("gru", True), "gru_rb": ("gru", False)}
GRAD_NAMES = {
    "lstm": ("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0", "dc0"),
    "gru": ("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0"),
}


def keep_masks(rng: np.random.Generator, shape: tuple[int, ...], rate: float) -> np.ndarray:
    """Keras's dropout mask: Bernoulli(1 - rate) / (1 - rate)."""
    return (rng.random(shape) >= rate) / (1.0 - rate)


# ----------------------------------------------------------------------------------------- helpers
def run_kernel(kind: str, kw: dict[str, Any], up: dict[str, Any], need_dx: bool = True) -> tuple[Any, Any]:
    """ops.*_forward (training) and *_backward on a reference-style argument dict."""
    common = {
        "lengths": kw["lengths"],
        "activation": kw["activation"],
        "recurrent_activation": kw["recurrent_activation"],
        "go_backwards": kw["go_backwards"],
        "input_masks": kw["input_masks"],
        "recurrent_masks": kw["recurrent_masks"],
    }
    if kind == "lstm":
        init = None if kw["h0"] is None else [kw["h0"], kw["c0"]]
        res = kernels.lstm_forward(
            kw["x"], kw["kernel"], kw["recurrent_kernel"], kw["bias"], initial_state=init, **common
        )
        g = kernels.lstm_backward(res.tape, up["d_outputs"], up["d_h_last"], up["d_c_last"], need_dx=need_dx)
    else:
        init = None if kw["h0"] is None else [kw["h0"]]
        res = kernels.gru_forward(
            kw["x"], kw["kernel"], kw["recurrent_kernel"], kw["bias"], initial_state=init,
            reset_after=kw["reset_after"], **common,
        )  # fmt: skip
        g = kernels.gru_backward(res.tape, up["d_outputs"], up["d_h_last"], need_dx=need_dx)
    return res, g


def run_reference(kind: str, kw: dict[str, Any], up: dict[str, Any]) -> dict[str, Any]:
    """The float64 reference: outputs, states and gradients in one dict."""
    if kind == "lstm":
        out, h, c = R.lstm_forward(**kw)
        return {"outputs": out, "h": h, "c": c, **R.lstm_backward(**kw, **up)}
    out, h = R.gru_forward(**kw)
    return {"outputs": out, "h": h, **R.gru_backward(**kw, **up)}


def compare(kind: str, res: Any, g: Any, ref: dict[str, Any], has_bias: bool = True) -> None:
    assert_close(res.outputs, ref["outputs"], TOL, "outputs")
    assert_close(res.h, ref["h"], TOL, "h")
    if kind == "lstm":
        assert_close(res.c, ref["c"], TOL, "c")
    for name in GRAD_NAMES[kind]:
        if name == "dbias" and not has_bias:
            assert g.dbias is None
            continue
        assert_close(getattr(g, name), ref[name], GTOL, name)


def make_case(
    kind: str,
    rng: np.random.Generator,
    b: int,
    t: int,
    f: int,
    h: int,
    *,
    reset_after: bool = True,
    bias: bool = True,
    state: bool = True,
    lengths: bool = False,
    go_backwards: bool = False,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    input_rate: float | None = 0.5,
    recurrent_rate: float | None = 0.5,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reference-style arguments (float64) and upstream gradients; a rate of None means no mask."""
    gates = GATES[kind]
    if kind == "gru":
        bias_shape: tuple[int, ...] = (2, 3 * h) if reset_after else (3 * h,)
    else:
        bias_shape = (4 * h,)
    kw: dict[str, Any] = {
        "x": rng.normal(size=(b, t, f)),
        "kernel": rng.normal(scale=0.5 * min(1.0, (6 / max(f, 1)) ** 0.5), size=(f, gates * h)),
        "recurrent_kernel": rng.normal(scale=0.5, size=(h, gates * h)),
        "bias": rng.normal(scale=0.3, size=bias_shape) if bias else None,
        "h0": rng.normal(size=(b, h)) if state else None,
        "lengths": random_lengths(rng, b, t) if lengths else None,
        "activation": activation,
        "recurrent_activation": recurrent_activation,
        "go_backwards": go_backwards,
        "input_masks": None if input_rate is None else keep_masks(rng, (gates, b, f), input_rate),
        "recurrent_masks": None if recurrent_rate is None else keep_masks(rng, (gates, b, h), recurrent_rate),
    }
    up: dict[str, Any] = {"d_outputs": rng.normal(size=(b, t, h)), "d_h_last": rng.normal(size=(b, h))}
    if kind == "lstm":
        kw["c0"] = rng.normal(size=(b, h)) if state else None
        up["d_c_last"] = rng.normal(size=(b, h))
    else:
        kw["reset_after"] = reset_after
    return kw, up


# ------------------------------------------------------------------ 1. kernel against the reference
@st.composite
def masked_case(draw: Any, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    which = draw(st.sampled_from(["input", "recurrent", "both"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    kw, up = make_case(
        kind,
        rng,
        b=draw(st.integers(1, 5)),
        t=draw(st.integers(1, 7)),
        # Wide inputs (f >= 128 and >= h) take the kernels' other design: the input projection
        # hoisted out of the time loop, and dx as one GEMM after it.
        f=draw(st.one_of(st.integers(1, 6), st.integers(128, 140))),
        h=draw(st.integers(1, 9)),
        reset_after=draw(st.booleans()),
        bias=draw(st.booleans()),
        state=draw(st.booleans()),
        lengths=draw(st.booleans()),
        go_backwards=draw(st.booleans()),
        activation=draw(st.sampled_from(["tanh", "tanh", *BOUNDED])),
        recurrent_activation=draw(st.sampled_from(["sigmoid", "sigmoid", *BOUNDED])),
        input_rate=draw(st.sampled_from(RATES)) if which != "recurrent" else None,
        recurrent_rate=draw(st.sampled_from(RATES)) if which != "input" else None,
    )
    if not draw(st.booleans()):
        up["d_h_last"] = None
    if kind == "lstm" and not draw(st.booleans()):
        up["d_c_last"] = None
    return kw, up


@settings(max_examples=100, deadline=None)
@given(masked_case("lstm"))
def test_lstm_masks_match_reference(case) -> None:
    kw, up = case
    res, g = run_kernel("lstm", kw, up)
    compare("lstm", res, g, run_reference("lstm", kw, up), has_bias=kw["bias"] is not None)


@settings(max_examples=100, deadline=None)
@given(masked_case("gru"))
def test_gru_masks_match_reference(case) -> None:
    kw, up = case
    res, g = run_kernel("gru", kw, up)
    compare("gru", res, g, run_reference("gru", kw, up), has_bias=kw["bias"] is not None)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize(("b", "t"), [(0, 3), (2, 0), (0, 0)])
def test_empty_batch_or_sequence(cell: str, b: int, t: int) -> None:
    kind, reset_after = CELLS[cell]
    kw, up = make_case(kind, np.random.default_rng(0), b, t, 3, 4, reset_after=bool(reset_after))
    res, g = run_kernel(kind, kw, up)
    compare(kind, res, g, run_reference(kind, kw, up))


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_mask_layouts_and_dtypes_give_the_same_result(cell: str) -> None:
    kind, reset_after = CELLS[cell]
    kw, up = make_case(kind, np.random.default_rng(1), 3, 5, 4, 6, reset_after=bool(reset_after), lengths=True)
    mi = kw["input_masks"].astype(np.float32)
    mr = kw["recurrent_masks"].astype(np.float32)
    base_res, base_g = run_kernel(kind, {**kw, "input_masks": mi, "recurrent_masks": mr}, up)
    wide_i = np.zeros((mi.shape[0], mi.shape[1], 2 * mi.shape[2]), np.float32)
    wide_i[..., ::2] = mi
    variants = {
        "fortran": (np.asfortranarray(mi), np.asfortranarray(mr)),
        "float64": (mi.astype(np.float64), mr.astype(np.float64)),
        "fortran float64": (np.asfortranarray(mi, dtype=np.float64), np.asfortranarray(mr, dtype=np.float64)),
        "strided": (wide_i[..., ::2], np.ascontiguousarray(mr.transpose(0, 2, 1)).transpose(0, 2, 1)),
    }
    for what, (vi, vr) in variants.items():
        res, g = run_kernel(kind, {**kw, "input_masks": vi, "recurrent_masks": vr}, up)
        for name in ("outputs", "h"):
            np.testing.assert_array_equal(getattr(res, name), getattr(base_res, name), err_msg=f"{what}: {name}")
        for name in GRAD_NAMES[kind]:
            np.testing.assert_array_equal(getattr(g, name), getattr(base_g, name), err_msg=f"{what}: {name}")


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("f", [4, 130])
def test_masks_apply_in_inference_mode_and_without_dx(cell: str, f: int) -> None:
    # training= only decides whether a tape is kept: explicit masks apply either way, bit for bit;
    # need_dx=False skips dx and leaves the other gradients unchanged.
    kind, reset_after = CELLS[cell]
    kw, up = make_case(kind, np.random.default_rng(8), 3, 5, f, 6, reset_after=bool(reset_after), lengths=True)
    res, g = run_kernel(kind, kw, up)
    _, g_nodx = run_kernel(kind, kw, up, need_dx=False)
    assert g_nodx.dx is None
    for name in GRAD_NAMES[kind][1:]:
        np.testing.assert_array_equal(getattr(g_nodx, name), getattr(g, name), err_msg=name)
    masks = {"input_masks": kw["input_masks"], "recurrent_masks": kw["recurrent_masks"]}
    args = (kw["x"], kw["kernel"], kw["recurrent_kernel"], kw["bias"])
    if kind == "lstm":
        inf = kernels.lstm_forward(
            *args, initial_state=[kw["h0"], kw["c0"]], lengths=kw["lengths"], training=False, **masks
        )
        np.testing.assert_array_equal(inf.c, res.c)
    else:
        inf = kernels.gru_forward(*args, initial_state=[kw["h0"]], lengths=kw["lengths"], reset_after=bool(reset_after),
                              training=False, **masks)  # fmt: skip
    assert inf.tape is None
    np.testing.assert_array_equal(inf.outputs, res.outputs)
    np.testing.assert_array_equal(inf.h, res.h)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_counts_split_the_masks_with_the_batch(cell: str, threads: int) -> None:
    # A batch large enough to be split across threads: each thread must use its own samples' masks.
    kind, reset_after = CELLS[cell]
    seqcore.set_num_threads(threads)  # restored by conftest
    for f in (5, 130):
        kw, up = make_case(kind, np.random.default_rng(threads), 37, 6, f, 7, reset_after=bool(reset_after),
                           lengths=True, go_backwards=True)  # fmt: skip
        res, g = run_kernel(kind, kw, up)
        compare(kind, res, g, run_reference(kind, kw, up))


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_simd_levels_agree_with_masks(cell: str, simd_levels: list[str], force_simd: Any) -> None:
    kind, reset_after = CELLS[cell]
    for level in simd_levels:
        force_simd(level)
        for f in (5, 130):
            kw, up = make_case(kind, np.random.default_rng(6), 9, 6, f, 17, reset_after=bool(reset_after), lengths=True)
            res, g = run_kernel(kind, kw, up)
            compare(kind, res, g, run_reference(kind, kw, up))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("which", ["input_masks", "recurrent_masks"])
def test_wrong_mask_shapes_are_refused(cell: str, which: str) -> None:
    g, b, f, h = GATES[cell], 2, 3, 4
    x = np.zeros((b, 5, f), np.float32)
    k = np.zeros((f, g * h), np.float32)
    rk = np.zeros((h, g * h), np.float32)
    width = f if which == "input_masks" else h
    fn = kernels.lstm_forward if cell == "lstm" else kernels.gru_forward
    for bad in [(b, width), (g - 1, b, width), (g + 1, b, width), (g, b + 1, width), (g, b, width + 1),
                (g, 1, width), (g, b, 1), (1, b, width), (g, b, width, 1)]:  # fmt: skip
        with pytest.raises(ValueError, match=rf"{cell}_forward: {which} must have shape \({g}, {b}, {width}\)"):
            fn(x, k, rk, **{which: np.ones(bad, np.float32)})


# --------------------------------------------------------- 2. the reference against finite differences
def fd_loss(kind: str, kw: dict[str, Any], up: dict[str, Any]) -> float:
    """sum(outputs * d_outputs) + h . d_h_last (+ c . d_c_last), through the float64 reference forward."""
    if kind == "lstm":
        out, h, c = R.lstm_forward(**kw)
        return float((out * up["d_outputs"]).sum() + (h * up["d_h_last"]).sum() + (c * up["d_c_last"]).sum())
    out, h = R.gru_forward(**kw)
    return float((out * up["d_outputs"]).sum() + (h * up["d_h_last"]).sum())


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("variant", ["plain", "backwards_lengths", "recurrent_only", "input_only"])
def test_reference_backward_matches_finite_differences(cell: str, variant: str) -> None:
    kind, reset_after = CELLS[cell]
    kw, up = make_case(
        kind,
        np.random.default_rng(7),
        3,
        4,
        2,
        3,
        reset_after=bool(reset_after),
        lengths=variant == "backwards_lengths",
        go_backwards=variant == "backwards_lengths",
        input_rate=None if variant == "recurrent_only" else 0.4,
        recurrent_rate=None if variant == "input_only" else 0.4,
    )
    if kw["lengths"] is not None:
        kw["lengths"] = np.array([4, 0, 2])
    grads = run_reference(kind, kw, up)
    params = {"dx": "x", "dkernel": "kernel", "drecurrent_kernel": "recurrent_kernel", "dbias": "bias", "dh0": "h0"}
    if kind == "lstm":
        params["dc0"] = "c0"
    eps = 1e-6
    for gname, pname in params.items():
        p = kw[pname]
        num = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            plus, minus = p.copy(), p.copy()
            plus[i] += eps
            minus[i] -= eps
            num[i] = (fd_loss(kind, {**kw, pname: plus}, up) - fd_loss(kind, {**kw, pname: minus}, up)) / (2 * eps)
        scale = max(1.0, float(np.abs(num).max()))
        np.testing.assert_allclose(grads[gname], num, rtol=0, atol=1e-7 * scale, err_msg=f"{cell} {variant} {gname}")


# -------------------------------------------------------------------------------- 3. exact properties
@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("f", [3, 130])
def test_all_ones_masks_equal_no_masks(cell: str, f: int) -> None:
    kind, reset_after = CELLS[cell]
    g = GATES[kind]
    kw, up = make_case(kind, np.random.default_rng(2), 4, 6, f, 5, reset_after=bool(reset_after), lengths=True)
    plain_res, plain_g = run_kernel(kind, {**kw, "input_masks": None, "recurrent_masks": None}, up)
    ones = {"input_masks": np.ones((g, 4, f)), "recurrent_masks": np.ones((g, 4, 5))}
    res, grads = run_kernel(kind, {**kw, **ones}, up)
    # x * 1 and h * 1 are exact, but a masked kernel may sum the gates' products in another order
    # than the fused unmasked one: equal to float32 rounding, not necessarily bit for bit.
    for name in ("outputs", "h"):
        assert_close(getattr(res, name), getattr(plain_res, name), 1e-6, name)
    for name in GRAD_NAMES[kind]:
        assert_close(getattr(grads, name), getattr(plain_g, name), 1e-5, name)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("f", [3, 130])
def test_zero_recurrent_masks_cut_the_recurrent_kernel(cell: str, f: int) -> None:
    # With every recurrent mask zero, h_{t-1} reaches no gate: the result cannot depend on the
    # recurrent kernel at all (bit for bit: (h * 0) @ U adds only zeros), its gradient is exactly
    # zero, and for LSTM (where h reaches the next step only through the gates) neither does h0.
    # GRU still carries h_{t-1} through z * h_{t-1}, unmasked.
    kind, reset_after = CELLS[cell]
    g = GATES[kind]
    rng = np.random.default_rng(3)
    kw, up = make_case(kind, rng, 4, 6, f, 5, reset_after=bool(reset_after), lengths=True, recurrent_rate=None)
    kw["recurrent_masks"] = np.zeros((g, 4, 5))
    res, grads = run_kernel(kind, kw, up)
    other = {**kw, "recurrent_kernel": rng.normal(size=kw["recurrent_kernel"].shape)}
    if kind == "lstm":
        other["h0"] = rng.normal(size=kw["h0"].shape)
    res2, grads2 = run_kernel(kind, other, up)
    # (a length-0 sample's final h is its h0, and d_h_last flows straight back to its dh0)
    ran = kw["lengths"] > 0
    assert not ran.all()
    np.testing.assert_array_equal(res.outputs, res2.outputs)
    np.testing.assert_array_equal(res.h[ran], res2.h[ran])
    np.testing.assert_array_equal(grads.drecurrent_kernel, 0.0)
    for name in GRAD_NAMES[kind]:
        if name != "dh0" or kind == "gru":
            np.testing.assert_array_equal(getattr(grads, name), getattr(grads2, name), err_msg=name)
    if kind == "lstm":
        np.testing.assert_array_equal(res.c, res2.c)
        np.testing.assert_array_equal(grads.dh0[ran], 0.0)
        np.testing.assert_array_equal(grads.dh0[~ran], up["d_h_last"][~ran].astype(np.float32))
    compare(kind, res, grads, run_reference(kind, kw, up))


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_zero_input_masks_cut_the_input(cell: str) -> None:
    kind, reset_after = CELLS[cell]
    g = GATES[kind]
    rng = np.random.default_rng(4)
    kw, up = make_case(kind, rng, 3, 5, 4, 6, reset_after=bool(reset_after), input_rate=None)
    kw["input_masks"] = np.zeros((g, 3, 4))
    res, grads = run_kernel(kind, kw, up)
    res2, _ = run_kernel(kind, {**kw, "x": rng.normal(size=kw["x"].shape)}, up)
    np.testing.assert_array_equal(res.outputs, res2.outputs)
    np.testing.assert_array_equal(grads.dx, 0.0)
    np.testing.assert_array_equal(grads.dkernel, 0.0)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("which", ["input_masks", "recurrent_masks"])
def test_one_zero_gate_mask_equals_that_gates_weight_block_zeroed(cell: str, which: str) -> None:
    # Gate order (i, f, c, o / z, r, h) and per-gate application: zeroing gate g's mask must equal
    # running without masks on weights whose block g is zero -- except that the masked run still
    # reports that block's weight gradient as zero (its input was zero).
    kind, reset_after = CELLS[cell]
    gates = GATES[kind]
    b, f, h = 3, 4, 5
    kw, up = make_case(
        kind, np.random.default_rng(5), b, 6, f, h, reset_after=bool(reset_after), lengths=True,
        input_rate=None, recurrent_rate=None,
    )  # fmt: skip
    wname = "kernel" if which == "input_masks" else "recurrent_kernel"
    dname = "d" + wname
    for gate in range(gates):
        m = np.ones((gates, b, f if which == "input_masks" else h))
        m[gate] = 0.0
        res, grads = run_kernel(kind, {**kw, which: m}, up)
        w = kw[wname].copy()
        w[:, gate * h : (gate + 1) * h] = 0.0
        ref = run_reference(kind, {**kw, wname: w}, up)
        ref[dname] = ref[dname].copy()
        ref[dname][:, gate * h : (gate + 1) * h] = 0.0
        compare(kind, res, grads, ref)
        # and a partial mask (one sample, one feature/unit) agrees with the reference too
        m2 = np.ones_like(m)
        m2[gate, 1, 2] = 0.0
        res2, grads2 = run_kernel(kind, {**kw, which: m2}, up)
        compare(kind, res2, grads2, run_reference(kind, {**kw, which: m2}, up))


# ----------------------------------------------------------------------------------- 4. Keras goldens
GOLDEN_SHAPE = (2, 3, 3, 2)  # batch, time, features, units
GOLDEN_CELLS = CELLS
GOLDEN_CASES: dict[str, dict[str, Any]] = {
    "both": {"dropout": 0.5, "recurrent_dropout": 0.25, "go_backwards": False, "initial_state": False, "lengths": None},
    "recurrent_backwards_state_lengths": {
        "dropout": 0.0,
        "recurrent_dropout": 0.5,
        "go_backwards": True,
        "initial_state": True,
        "lengths": (3, 1),
    },
}


def _grid(shape: tuple[int, ...], mult: int, shift: int, mod: int, step: float) -> np.ndarray:
    """Deterministic values in [-(mod-1)/2, (mod-1)/2] * step (no random generator involved)."""
    i = np.arange(int(np.prod(shape)))
    return (((i * mult + shift) % mod - (mod - 1) / 2) * step).reshape(shape)


def _keep(shape: tuple[int, ...], rate: float, shift: int) -> np.ndarray:
    """A fixed 0/1 pattern (about 2/7 zeros, different per gate) scaled by 1 / (1 - rate)."""
    i = np.arange(int(np.prod(shape)))
    return (((i * i + 3 * i + shift) % 7 >= 2) / (1.0 - rate)).reshape(shape)


def golden_inputs(cell: str, case: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reference-style arguments and upstream gradients of a golden case (also used by the generator)."""
    kind, reset_after = CELLS[cell]
    cfg = GOLDEN_CASES[case]
    b, t, f, h = GOLDEN_SHAPE
    g = GATES[kind]
    kw: dict[str, Any] = {
        "x": _grid((b, t, f), 7, 1, 11, 0.2),
        "kernel": _grid((f, g * h), 5, 2, 13, 0.08),
        "recurrent_kernel": _grid((h, g * h), 3, 4, 11, 0.1),
        "bias": _grid((2, g * h) if reset_after else (g * h,), 4, 0, 9, 0.05),
        "h0": _grid((b, h), 3, 1, 5, 0.3) if cfg["initial_state"] else None,
        "lengths": None if cfg["lengths"] is None else np.array(cfg["lengths"]),
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "go_backwards": cfg["go_backwards"],
        "input_masks": _keep((g, b, f), cfg["dropout"], 0) if cfg["dropout"] else None,
        "recurrent_masks": _keep((g, b, h), cfg["recurrent_dropout"], 3),
    }
    up: dict[str, Any] = {"d_outputs": _grid((b, t, h), 5, 3, 9, 0.25), "d_h_last": _grid((b, h), 3, 2, 7, 0.3)}
    if kind == "lstm":
        kw["c0"] = _grid((b, h), 2, 0, 7, 0.25) if cfg["initial_state"] else None
        up["d_c_last"] = _grid((b, h), 4, 1, 9, 0.2)
    else:
        kw["reset_after"] = reset_after
    return kw, up


# Pasted from the output of tests/golden/generate_dropout_goldens.py (Keras 3.15.1, TensorFlow 2.21.0, float64).
# fmt: off
KERAS_GOLDENS: dict[str, dict[str, np.ndarray]] = {
    "lstm/both": {
        "outputs": np.array([
            0.0313508941, 0.0525705486, -0.00132197801, 0.166615371, 0.147153146, -0.137319907, -0.0188788294,
            -0.0961641563, -0.102236558, -0.0531265905, 0.0306485732, -0.0726553576,
        ]).reshape(2, 3, 2),
        "h": np.array([
            0.147153146, -0.137319907, 0.0306485732, -0.0726553576,
        ]).reshape(2, 2),
        "c": np.array([
            0.313266394, -0.214571775, 0.0507460835, -0.40899752,
        ]).reshape(2, 2),
        "dx": np.array([
            -0.139094699, -0.124214884, -0.00787609928, 0.0704270869, -0.0802274987, 0.0300070228,
            -0.0988783913, -0.0698688827, 0.0155316155, 0.170317338, 0.163679003, 0.130411547, 0.0276106227,
            0.0167143919, -0.0160885007, 0.0198999897, -0.111174166, -0.0387969671,
        ]).reshape(2, 3, 3),
        "dkernel": np.array([
            -0.0624217908, 0.0528162977, 0.0367257347, 0.0428005976, 0.332741534, 0.0302199526, 0, 0,
            -0.0500496402, -0.0509244989, -0.0211082143, -0.00150998082, -0.321776428, -0.050853664,
            0.00730061376, -0.0155675376, -0.0617517975, -0.000564288773, 0.00557465852, 0.00113510295,
            -0.226575638, 0.423109637, 0.111473281, -0.0417533038,
        ]).reshape(3, 8),
        "drecurrent_kernel": np.array([
            0.0118386288, -0.00180101332, -0.00030546344, -0.000496042855, 0, 0, 0.00043500583, 0.00228600848,
            0, 0, -0.00193642119, -0.000664868485, -0.0418609133, -0.00420976854, 0, 0,
        ]).reshape(2, 8),
        "dbias": np.array([
            -0.186894131, -0.0466854662, 0.0196701568, -5.69280188e-05, -0.575942549, -0.315638933,
            -0.051773504, -0.0323393413,
        ]).reshape(8,),
    },
    "lstm/recurrent_backwards_state_lengths": {
        "outputs": np.array([
            -0.147877665, -0.0260169722, -0.0952814574, 0.0397864594, -0.0152735584, 0.0483835844, 0, 0, 0, 0,
            0.0540341345, 0.0292803481,
        ]).reshape(2, 3, 2),
        "h": np.array([
            -0.0152735584, 0.0483835844, 0.0540341345, 0.0292803481,
        ]).reshape(2, 2),
        "c": np.array([
            -0.0288823121, 0.101459031, 0.110044671, 0.0461389135,
        ]).reshape(2, 2),
        "dx": np.array([
            -0.0821581239, -0.12887421, -0.143023711, 0.0373707097, -0.00458753364, -0.00617017482,
            -0.0414496268, -0.0715929467, -0.0578827187, -0.105918582, -0.0942151735, -0.111055312, 0, 0, 0, 0,
            0, 0,
        ]).reshape(2, 3, 3),
        "dkernel": np.array([
            0.00823024703, 0.00816855832, -0.0222172274, 0.00464078609, 0.101402696, 0.293392291, 0.0279937996,
            0.0214463886, -0.00921312008, -0.00507554586, 0.0299488867, -0.000179180061, -0.242692916,
            -0.00946071765, 0.00328993551, -0.0128019803, -0.0132561396, 0.0273261793, -0.0136188418,
            -0.0201919515, 0.340229049, -0.0542616199, -0.0191659644, 0.0115165896,
        ]).reshape(3, 8),
        "drecurrent_kernel": np.array([
            0.0126698352, -0.000915956189, -0.031084643, 0.0087557248, 0, 0, 0, 0, 0, 0, 0.0290880902,
            -0.0427396813, 0.193177169, 0.107225364, 0, 0,
        ]).reshape(2, 8),
        "dbias": np.array([
            0.00505377435, -0.0405021564, 0.0544596607, 0.0250159643, -0.728652457, 0.0560011278, 0.0280698749,
            -0.0303982124,
        ]).reshape(8,),
        "dh0": np.array([
            0.0547433305, 0.099168028, -0.0314261825, -0.0365140405,
        ]).reshape(2, 2),
        "dc0": np.array([
            -0.126136807, 0.136901871, -0.483912675, 0.092301088,
        ]).reshape(2, 2),
    },
    "gru_ra/both": {
        "outputs": np.array([
            -0.372797292, 0.189462674, -0.520702669, 0.367599998, -0.0294488673, -0.103338679, 0.496921,
            -0.296821909, 0.718903353, -0.441483482, 0.625608724, -0.0341366046,
        ]).reshape(2, 3, 2),
        "h": np.array([
            -0.0294488673, -0.103338679, 0.625608724, -0.0341366046,
        ]).reshape(2, 2),
        "dx": np.array([
            -0.128668452, 0.0119373038, 0.0107664868, 0.222911466, 0.143867716, -0.0839403411, 0.0141352372,
            -0.000275166865, 0.0309651867, 0.271719345, -0.281554286, -0.12138531, 0.194471486, -0.26830354,
            -0.122687862, -0.097911923, -0.157185416, 0.0862169525,
        ]).reshape(2, 3, 3),
        "dkernel": np.array([
            -0.18415524, -0.273424735, 0.0183388435, 0.0113385437, 1.01557667, 0.246826111, -0.0428614774,
            0.0179085194, -0.00910599011, -0.00759616367, -0.322067552, -0.230792823, 0.285699685, 0.138956218,
            -0.00156801594, 0.00859235516, -0.786513573, 0.59190758,
        ]).reshape(3, 6),
        "drecurrent_kernel": np.array([
            -0.0189885176, -0.0830509746, -0.000914353364, 0.00672306949, 0, 0, 0, 0, -0.00762809442,
            -0.00543549096, -0.141724852, -0.0675412382,
        ]).reshape(2, 6),
        "dbias": np.array([
            -0.147083413, -0.172656523, 0.0173323657, -0.00369741024, 0.614066982, -0.150925705, -0.147083413,
            -0.172656523, 0.0173323657, -0.00369741024, 0.468835044, -0.0764936061,
        ]).reshape(2, 6),
    },
    "gru_ra/recurrent_backwards_state_lengths": {
        "outputs": np.array([
            -0.0399135366, 0.0448548726, -0.129412372, 0.146584974, -0.224461557, 0.175000598, 0, 0, 0, 0,
            0.416856506, -0.551132143,
        ]).reshape(2, 3, 2),
        "h": np.array([
            -0.224461557, 0.175000598, 0.416856506, -0.551132143,
        ]).reshape(2, 2),
        "dx": np.array([
            0.0249108742, 0.0159391055, -0.0164625511, 0.200859967, 0.0622457145, -0.144319882, -0.0884226009,
            0.10945436, 0.0256861228, 0.0204986661, -0.0877709135, -0.0114652257, 0, 0, 0, 0, 0, 0,
        ]).reshape(2, 3, 3),
        "dkernel": np.array([
            -0.0223710719, 0.0825194433, 0.029850243, 0.0332175375, 0.00719830768, 0.793283842, 0.00235370797,
            0.0525475108, 0.00369089771, -0.0103921858, -0.0449583005, -0.20377747, 0.0349612795, -0.103645157,
            -0.0239545269, 0.00330755053, -0.0285431112, 0.0257864603,
        ]).reshape(3, 6),
        "drecurrent_kernel": np.array([
            -0.0121340958, -0.0924604029, -0.0100687718, 0.000730650266, 0, 0, 0, 0, -0.0208381004,
            -0.00693619304, -0.213250141, 0.0184162025,
        ]).reshape(2, 6),
        "dbias": np.array([
            -0.0407594644, 0.195240835, 0.0345567808, -0.0171246704, -0.0205189865, -0.286954913,
            -0.0407594644, 0.195240835, 0.0345567808, -0.0171246704, -0.0019436898, -0.167670705,
        ]).reshape(2, 6),
        "dh0": np.array([
            -0.0138089089, 0.315940589, 0.149185987, 0.0918289929,
        ]).reshape(2, 2),
    },
    "gru_rb/both": {
        "outputs": np.array([
            -0.389214516, 0.146982963, -0.538126637, 0.303810871, 0.0280867003, -0.113989928, 0.508796584,
            -0.279289176, 0.709667285, -0.423183651, 0.587469841, -0.0854973225,
        ]).reshape(2, 3, 2),
        "h": np.array([
            0.0280867003, -0.113989928, 0.587469841, -0.0854973225,
        ]).reshape(2, 2),
        "dx": np.array([
            -0.118831605, 0.0286990804, -0.00286553805, 0.224613972, 0.140301784, -0.0666176941, 0.00858293113,
            0.00033432822, 0.0319631393, 0.244629936, -0.283338201, -0.110757385, 0.183424368, -0.288641949,
            -0.123492491, -0.0933269853, -0.170345331, 0.0779948569,
        ]).reshape(2, 3, 3),
        "dkernel": np.array([
            -0.159006779, -0.248795663, 0, 0.0202361228, 1.0721116, 0.343963755, -0.0431284578, 0.0282113948,
            0, -0.0125092167, -0.354245634, -0.249407026, 0.267247354, 0.121971209, 0, -0.00274547768,
            -0.805169096, 0.517241522,
        ]).reshape(3, 6),
        "drecurrent_kernel": np.array([
            -0.0102494333, -0.0773155386, 0, -0.00170752895, 0, 0, 0, 0, 0, -0.00978908446, -0.0807868636,
            -0.0661179526,
        ]).reshape(2, 6),
        "dbias": np.array([
            -0.126315927, -0.146697915, 0, 0.0238181499, 0.654479261, -0.136752784,
        ]).reshape(6,),
    },
    "gru_rb/recurrent_backwards_state_lengths": {
        "outputs": np.array([
            0.0169200673, 0.0641580443, -0.111573303, 0.108817022, -0.22082176, 0.110190786, 0, 0, 0, 0,
            0.357962786, -0.567683704,
        ]).reshape(2, 3, 2),
        "h": np.array([
            -0.22082176, 0.110190786, 0.357962786, -0.567683704,
        ]).reshape(2, 2),
        "dx": np.array([
            0.022192921, 0.0161313134, -0.0130225579, 0.184705126, 0.0535494501, -0.1173738, -0.0897157018,
            0.124347957, 0.0282841193, 0.0208521717, -0.0985266185, -0.0124535449, 0, 0, 0, 0, 0, 0,
        ]).reshape(2, 3, 3),
        "dkernel": np.array([
            -0.00647968388, 0.106704635, 0, 0.0287262381, 0.0225463478, 0.717295556, 0.00319277643,
            0.0381301606, 0, 0.00418556295, -0.0501274231, -0.199815525, 0.0224426728, -0.0886435016, 0,
            -0.0258060193, -0.048027647, 0.0487553579,
        ]).reshape(3, 6),
        "drecurrent_kernel": np.array([
            -0.0158932512, -0.0817114749, 0, -0.00921146455, 0, 0, 0, 0, 0, -0.0238553084, -0.146047882,
            -0.000144010203,
        ]).reshape(2, 6),
        "dbias": np.array([
            -0.0240623704, 0.158467078, 0, 0.0374894778, -0.00262472023, -0.310713603,
        ]).reshape(6,),
        "dh0": np.array([
            -0.0460366087, 0.301014896, 0.13884231, 0.144881048,
        ]).reshape(2, 2),
    },
}
# fmt: on


@pytest.mark.parametrize("key", sorted(KERAS_GOLDENS))
def test_matches_keras_goldens(key: str) -> None:
    cell, case = key.split("/")
    kind = CELLS[cell][0]
    kw, up = golden_inputs(cell, case)
    keras = KERAS_GOLDENS[key]
    res, g = run_kernel(kind, kw, up)
    for name in ("outputs", "h", "c"):
        if name in keras:
            assert_close(getattr(res, name), keras[name], 1e-5, name)
    for name in GRAD_NAMES[kind]:
        if name in keras:
            assert_close(getattr(g, name), keras[name], 1e-5, name)
    assert set(keras) >= {"outputs", "h", "dx", "dkernel", "drecurrent_kernel", "dbias"}


def test_keras_goldens_are_complete() -> None:
    assert sorted(KERAS_GOLDENS) == sorted(f"{c}/{k}" for c in CELLS for k in GOLDEN_CASES)


def test_reference_matches_keras_goldens() -> None:
    # The float64 reference against the float64 Keras numbers (9 significant digits pasted).
    for key, keras in KERAS_GOLDENS.items():
        cell, case = key.split("/")
        kw, up = golden_inputs(cell, case)
        ref = run_reference(CELLS[cell][0], kw, up)
        for name, v in keras.items():
            np.testing.assert_allclose(ref[name], v, rtol=1e-7, atol=1e-8, err_msg=f"{key} {name}")


# ------------------------------------------------------------------------------------- 5. the layers
@pytest.fixture(autouse=True)
def _seed() -> None:
    seqcore.utils.set_random_seed(0)


def seq_data(n: int = 64, t: int = 8, f: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, f)).astype(np.float32)
    return x, np.cumsum(x[..., :1], axis=1) * 0.3


def model_with(cell: type, **kw: Any) -> Sequential:
    return Sequential([seqcore.Input((8, 3)), cell(4, return_sequences=True, **kw), Dense(1)])


def layer_weights(layer: Any) -> dict[str, Any]:
    return {
        "kernel": layer.kernel.value,
        "recurrent_kernel": layer.recurrent_kernel.value,
        "bias": None if layer.bias is None else layer.bias.value,
    }


@pytest.mark.parametrize("cell", [LSTM, GRU])
def test_training_differs_and_inference_ignores_dropout(cell: type) -> None:
    x, _ = seq_data()
    m = model_with(cell, dropout=0.2, recurrent_dropout=0.3, seed=1)
    plain = model_with(cell)
    plain.set_weights(m.get_weights())
    inference = m(x)
    assert m.layers[0].forward(x)[1] is None  # inference keeps no context and draws no mask
    np.testing.assert_array_equal(inference, plain(x))
    np.testing.assert_array_equal(m.predict(x, verbose=0), plain.predict(x, verbose=0))
    train1, ctx1 = m.layers[0].forward(x, training=True)
    masks1 = ctx1.gate_masks
    train2, ctx2 = m.layers[0].forward(x, training=True)
    masks2 = ctx2.gate_masks
    assert not np.allclose(train1, inference, atol=1e-3)
    assert not np.allclose(train1, train2, atol=1e-3)  # a new draw per training call
    assert not np.array_equal(masks1[0], masks2[0]) and not np.array_equal(masks1[1], masks2[1])
    np.testing.assert_array_equal(m(x), inference)  # and inference is unaffected by the draws


@pytest.mark.parametrize("cell", [LSTM, GRU])
def test_mask_shapes_values_and_keep_rate(cell: type) -> None:
    x, _ = seq_data(n=256)
    g = 4 if cell is LSTM else 3
    layer = cell(4, dropout=0.2, recurrent_dropout=0.3, seed=1)
    layer(x)  # builds
    _, ctx = layer.forward(x, training=True)
    mi, mr = ctx.gate_masks
    assert ctx.dropout_mask is None  # the masks are applied in the kernel, per gate
    assert mi.shape == (g, 256, 3) and mr.shape == (g, 256, 4)
    assert mi.dtype == mr.dtype == np.float32
    assert set(np.unique(mi)) <= {0.0, np.float32(1 / 0.8)}
    assert set(np.unique(mr)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((mi == 0).mean() - 0.2) < 0.05 and abs((mr == 0).mean() - 0.3) < 0.05
    # gates get different masks (drawn independently, as Keras's dropout_mask_count draws)
    assert not np.array_equal(mr[0], mr[1])
    # recurrent_dropout alone: no input masks; dropout alone: the old single (B, 1, F) input mask
    only_rec = cell(4, recurrent_dropout=0.3, seed=1)
    only_rec(x)
    c = only_rec.forward(x, training=True)[1]
    assert c.gate_masks[0] is None and c.gate_masks[1].shape == (g, 256, 4)
    only_in = cell(4, dropout=0.3, seed=1)
    only_in(x)
    c = only_in.forward(x, training=True)[1]
    assert c.gate_masks == (None, None) and c.dropout_mask.shape == (256, 1, 3)


@pytest.mark.parametrize("cell", [LSTM, GRU])
@pytest.mark.parametrize(
    "opts", [{}, {"go_backwards": True, "return_sequences": False}, {"masked": True, "go_backwards": True}]
)
def test_layer_forward_and_backward_use_its_masks(cell: type, opts: dict[str, Any]) -> None:
    # The layer's training forward and backward equal the reference run with the masks it drew.
    x, _ = seq_data(n=5)
    opts = {"return_sequences": True, **opts}
    lengths = np.array([8, 3, 0, 5, 8]) if opts.pop("masked", False) else None
    layer = cell(4, dropout=0.2, recurrent_dropout=0.3, seed=1, **opts)
    layer(x)  # builds
    lengths_arg = None if lengths is None else lengths.astype(np.int64)
    out, ctx = layer.forward(x, training=True, lengths=lengths_arg)
    mi, mr = ctx.gate_masks
    kind = "lstm" if cell is LSTM else "gru"
    kw: dict[str, Any] = {
        "x": x,
        **layer_weights(layer),
        "h0": None,
        "lengths": lengths,
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "go_backwards": layer.go_backwards,
        "input_masks": mi,
        "recurrent_masks": mr,
    }
    up: dict[str, Any] = {"d_outputs": None, "d_h_last": None}
    if kind == "lstm":
        kw["c0"] = None
        up["d_c_last"] = None
    else:
        kw["reset_after"] = True
    dy = np.random.default_rng(9).normal(size=out.shape).astype(np.float32)
    up["d_outputs" if layer.return_sequences else "d_h_last"] = dy
    ref = run_reference(kind, kw, up)
    assert_close(out, ref["outputs"] if layer.return_sequences else ref["h"], TOL, "layer output")
    dx = layer.backward(ctx, dy)
    assert_close(dx, ref["dx"], GTOL, "dx")
    assert_close(layer.kernel.grad, ref["dkernel"], GTOL, "dkernel")
    assert_close(layer.recurrent_kernel.grad, ref["drecurrent_kernel"], GTOL, "drecurrent_kernel")
    assert_close(layer.bias.grad, ref["dbias"], GTOL, "dbias")
    # and the masks matter: without them the reference differs
    plain = run_reference(kind, {**kw, "input_masks": None, "recurrent_masks": None}, up)
    assert np.abs(plain["outputs"] - ref["outputs"]).max() > 1e-3


@pytest.mark.parametrize("cell", [LSTM, GRU])
def test_same_seed_trains_bit_identically(cell: type) -> None:
    x, y = seq_data(n=32)

    def train(layer_seed: int | None, global_seed: int) -> tuple[list[np.ndarray], Any]:
        seqcore.utils.set_random_seed(global_seed)  # the weight initialization
        m = model_with(cell, dropout=0.2, recurrent_dropout=0.3, seed=layer_seed)
        m.compile("adam", "mse")
        for _ in range(3):
            m.train_on_batch(x, y)
        return m.get_weights(), m.layers[0].forward(x, training=True)[1].gate_masks

    w1, masks1 = train(1, 0)
    w2, masks2 = train(1, 0)
    for a, b in zip(w1, w2, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(masks1[1], masks2[1])
    w3, masks3 = train(2, 0)  # another layer seed: other masks, other weights
    assert not np.array_equal(masks1[1], masks3[1])
    assert not all(np.array_equal(a, b) for a, b in zip(w1, w3, strict=True))
    # seed=None: the masks come from the global generator, reseeded by set_random_seed
    w4, masks4 = train(None, 5)
    w5, masks5 = train(None, 5)
    np.testing.assert_array_equal(masks4[1], masks5[1])
    for a, b in zip(w4, w5, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", [LSTM, GRU])
def test_fit_with_recurrent_dropout_reduces_loss(cell: type) -> None:
    x, y = seq_data(n=128, t=8)
    m = Sequential([seqcore.Input((8, 3)), cell(16, return_sequences=True, recurrent_dropout=0.2, seed=3), Dense(1)])
    m.compile(seqcore.optimizers.Adam(0.01), "mse")
    before = m.evaluate(x, y, verbose=0)
    hist = m.fit(x, y, epochs=8, batch_size=16, verbose=0)
    assert np.all(np.isfinite(hist.history["loss"]))
    assert m.evaluate(x, y, verbose=0) < 0.6 * before


@pytest.mark.parametrize("cell", [LSTM, GRU])
def test_bidirectional_with_recurrent_dropout_trains(cell: type) -> None:
    x, y = seq_data(n=96, t=8)
    bi = Bidirectional(cell(6, return_sequences=True, recurrent_dropout=0.2), merge_mode="concat")
    m = Sequential([seqcore.Input((8, 3)), bi, Dense(1)])
    assert bi.forward_layer.recurrent_dropout == 0.2
    assert bi.backward_layer.recurrent_dropout == 0.2  # the copy made from the layer's config
    m.compile(seqcore.optimizers.Adam(0.01), "mse")
    before = m.evaluate(x, y, verbose=0)
    m.fit(x, y, epochs=6, batch_size=16, verbose=0)
    assert bi.forward_layer.forward(x, training=True)[1].gate_masks[1] is not None
    assert bi.backward_layer.forward(x, training=True)[1].gate_masks[1] is not None
    assert m.evaluate(x, y, verbose=0) < 0.6 * before


@pytest.mark.parametrize("cell", [LSTM, GRU])
def test_config_and_saving_keep_recurrent_dropout(cell: type, tmp_path: Path) -> None:
    layer = cell(4, dropout=0.2, recurrent_dropout=0.3, seed=1)
    cfg = layer.get_config()
    assert cfg["recurrent_dropout"] == 0.3 and cfg["dropout"] == 0.2 and cfg["seed"] == 1
    again = cell.from_config(cfg)
    assert (again.recurrent_dropout, again.dropout, again.seed) == (0.3, 0.2, 1)
    m = model_with(cell, dropout=0.2, recurrent_dropout=0.3, seed=1)
    x, _ = seq_data(n=4)
    before = m.predict(x, verbose=0)
    m.save(tmp_path / "m.seqcore")
    loaded = seqcore.load_model(tmp_path / "m.seqcore")
    lay = loaded.layers[0]
    assert (lay.recurrent_dropout, lay.dropout, lay.seed) == (0.3, 0.2, 1)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), before)
    assert Sequential.from_config(m.get_config()).layers[0].recurrent_dropout == 0.3
