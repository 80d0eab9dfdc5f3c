"""`kernels.conv1d_forward` / `kernels.conv1d_backward` against Keras / PyTorch goldens, the independent
float64 reference (seqcore.reference_conv) and finite differences.

Goldens: tests/golden/conv_goldens.npz from tests/golden/generate_conv_goldens.py (Keras 3.15.1 / TF
2.21 / torch 2.15, run once; CI needs none of them).

Tolerances: every float32 sum of n terms is off by at most ~n·eps·Σ|terms|. The bound used here is
``TOL * magnitude`` where ``magnitude`` is the same computation run by the reference on absolute values
(|x| ⊛ |W| + |b| for the output; the linear backward of |x|, |W|, slope·|dy| for the gradients), so
it follows each element's own scale; a real bug (a lost tap, a shifted window, a wrong group) is off
by the size of a whole term, orders of magnitude above it.
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest
import seqcore
from hypothesis import example, given, settings
from hypothesis import strategies as st
from seqcore import kernels
from seqcore import reference_conv as R

GOLDEN = __import__("pathlib").Path(__file__).parent / "golden" / "conv_goldens.npz"
PADDINGS = ("valid", "same", "causal")
ACTS = ("linear", "relu", "sigmoid", "hard_sigmoid", "tanh", "softmax")
KINKED = ("relu", "hard_sigmoid")
SLOPE = {"linear": 1.0, "relu": 1.0, "sigmoid": 0.25, "hard_sigmoid": 1 / 6, "tanh": 1.0, "softmax": 2.0}
TOL = 2e-5


@cache
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as z:
        return {k: z[k] for k in z.files}


def golden_names(kind: str) -> list[str]:
    return sorted(k.split("__")[1] for k in golden() if k.startswith(f"{kind}__") and k.endswith("__config"))


def golden_case(kind: str, name: str) -> tuple[dict, dict[str, np.ndarray]]:
    g = golden()
    prefix = f"{kind}__{name}__"
    return json.loads(str(g[prefix + "config"])), {k[len(prefix) :]: v for k, v in g.items() if k.startswith(prefix)}


def conv_kw(cfg: dict) -> dict:
    return {k: cfg[k] for k in ("strides", "padding", "dilation_rate", "groups", "activation")}


def assert_scaled(actual, desired, tol: float, what: str) -> None:
    """Error relative to the array's largest magnitude (for golden comparisons)."""
    desired = np.asarray(desired, dtype=np.float64)
    assert actual is not None, what
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == desired.shape, f"{what}: shape {actual.shape} != {desired.shape}"
    scale = max(1.0, float(np.abs(desired).max())) if desired.size else 1.0
    np.testing.assert_allclose(actual, desired, rtol=0, atol=tol * scale, err_msg=what)


def assert_within(got, want, tol, what: str) -> None:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    err = np.abs(got - want)
    bad = ~(err <= tol)  # NaN counts as bad
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err - tol, -np.inf)), err.shape)
        raise AssertionError(
            f"{what}: {bad.sum()} of {err.size} elements off; worst at {i}: got {got[i]}, want {want[i]}, "
            f"tolerance {np.broadcast_to(tol, err.shape)[i]}"
        )


# --- goldens ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", golden_names("conv"))
def test_matches_keras_goldens(name: str) -> None:
    cfg, g = golden_case("conv", name)
    bias = g.get("bias")
    y = kernels.conv1d_forward(g["x"], g["kernel"], bias, **conv_kw(cfg))
    assert_scaled(y, g["y"], 1e-5, f"{name} y")
    grads = kernels.conv1d_backward(g["x"], g["kernel"], y, g["G"], use_bias=cfg["use_bias"], **conv_kw(cfg))
    assert_scaled(grads.dx, g["dx"], 1e-5, f"{name} dx")
    assert_scaled(grads.dkernel, g["dkernel"], 1e-5, f"{name} dkernel")
    if cfg["use_bias"]:
        assert_scaled(grads.dbias, g["dbias"], 1e-5, f"{name} dbias")
    else:
        assert grads.dbias is None


@pytest.mark.parametrize("name", golden_names("torchconv"))
def test_matches_torch_goldens(name: str) -> None:
    """Strides with dilation (Keras refuses it) and groups, against torch; the torch weight
    (filters, C_in/groups, K) goes through the documented conversion transpose(2, 1, 0)."""
    cfg, g = golden_case("torchconv", name)
    kernel = np.transpose(g["weight"], (2, 1, 0))
    np.testing.assert_array_equal(kernel, g["kernel"])
    y = kernels.conv1d_forward(g["x"], kernel, g["bias"], **conv_kw(cfg))
    assert_scaled(y, g["y"], 1e-5, f"{name} y")
    grads = kernels.conv1d_backward(g["x"], kernel, y, g["G"], **conv_kw(cfg))
    assert_scaled(grads.dx, g["dx"], 1e-5, f"{name} dx")
    assert_scaled(np.transpose(grads.dkernel, (2, 1, 0)), g["dweight"], 1e-5, f"{name} dweight")
    assert_scaled(grads.dbias, g["dbias"], 1e-5, f"{name} dbias")


def test_output_length_matches_keras_table() -> None:
    rows = golden()["conv_lengths"]
    assert len(rows) > 500
    for length, k, s, d, p, want in rows.tolist():
        got = kernels.conv1d_output_length(length, k, s, PADDINGS[p], d)
        assert got == want, f"L={length} K={k} s={s} d={d} {PADDINGS[p]}: {got} != Keras {want}"
        assert got == R.conv1d_output_length(length, k, s, PADDINGS[p], d)


def test_same_padding_puts_the_extra_cell_on_the_right() -> None:
    """K=4, 'same': one zero on the left, two on the right (TF's split), seen on a one-hot input."""
    x = np.zeros((1, 6, 1), np.float32)
    x[0, 0, 0] = 1.0
    k = np.arange(1, 5, dtype=np.float32).reshape(4, 1, 1)  # taps 1, 2, 3, 4
    y = kernels.conv1d_forward(x, k, padding="same")[0, :, 0]
    # y[t] = Σ_k x[t + k - 1] * (k + 1): x[0] is read by tap 1 at t = 0 and by tap 0 at t = 1.
    np.testing.assert_array_equal(y, [2, 1, 0, 0, 0, 0])
    # causal: three zeros on the left, y[t] = Σ_k x[t + k - 3] * (k + 1): the taps in reverse.
    y = kernels.conv1d_forward(x, k, padding="causal")[0, :, 0]
    np.testing.assert_array_equal(y, [4, 3, 2, 1, 0, 0])


# --- against the reference over drawn problems ------------------------------------------------------


@st.composite
def conv_problems(draw: st.DrawFn) -> dict:
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    p = {
        "batch": draw(st.sampled_from([0, 1, 1, 2, 3])),
        "length": draw(st.integers(1, 13)),
        # C_in * filters above 256 with one group takes the shifted-GEMM forward, below it im2col
        "cg": draw(st.one_of(st.integers(1, 4), st.sampled_from([17, 20]))),
        "fg": draw(st.one_of(st.integers(1, 4), st.sampled_from([16, 19]))),
        "groups": groups,
        "kernel_size": draw(st.integers(1, 5)),
        "strides": draw(st.sampled_from([1, 1, 2, 3])),
        "dilation_rate": draw(st.sampled_from([1, 1, 2, 3])),
        "padding": draw(st.sampled_from(PADDINGS)),
        "activation": draw(st.sampled_from(ACTS)),
        "use_bias": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }
    span = p["dilation_rate"] * (p["kernel_size"] - 1) + 1
    if p["padding"] == "valid" and p["length"] < span:
        # Valid padding on a short input is an error (tested below): draw an exact-fit length instead.
        p["length"] = span + draw(st.integers(0, 2))
    return p


def make_problem(p: dict):
    rng = np.random.default_rng(p["seed"])
    cin, f = p["cg"] * p["groups"], p["fg"] * p["groups"]
    kshape = (p["kernel_size"], p["cg"], f)
    if p["activation"] in KINKED:
        # Integer data, weights in 1/8, bias an odd multiple of 1/16: every pre-activation is exact
        # in float32 and at least 1/16 from a kink, so the kernel and the reference agree on f'.
        x = rng.integers(-3, 4, (p["batch"], p["length"], cin)).astype(np.float32)
        k = (rng.integers(-4, 5, kshape) / 8).astype(np.float32)
        b = ((rng.integers(-8, 8, f) + 0.5) / 8).astype(np.float32)
    else:
        x = rng.standard_normal((p["batch"], p["length"], cin)).astype(np.float32)
        k = (rng.standard_normal(kshape) / np.sqrt(p["kernel_size"] * p["cg"])).astype(np.float32)
        b = rng.standard_normal(f).astype(np.float32)
    out = R.conv1d_output_length(p["length"], p["kernel_size"], p["strides"], p["padding"], p["dilation_rate"])
    dy = rng.standard_normal((p["batch"], out, f)).astype(np.float32)
    return x, k, (b if p["use_bias"] else None), dy


def opts(p: dict) -> dict:
    return {k: p[k] for k in ("strides", "padding", "dilation_rate", "groups")}


def ref_fwd(x, k, b, p, act=None):
    o = opts(p)
    return R.conv1d_forward(x, k, b, o["strides"], o["padding"], o["dilation_rate"], o["groups"], act)


def ref_bwd(x, k, b, dy, p, act=None):
    o = opts(p)
    return R.conv1d_backward(x, k, b, dy, o["strides"], o["padding"], o["dilation_rate"], o["groups"], act)


def bounds(x, k, b, dy, p):
    """(y tolerance, (dx, dkernel, dbias) tolerances) from the magnitudes of every summed term."""
    act = p["activation"]
    ax, ak = np.abs(x.astype(np.float64)), np.abs(k.astype(np.float64))
    ab = None if b is None else np.abs(b.astype(np.float64))
    zmag = ref_fwd(ax, ak, ab, p)
    y_ref = ref_fwd(x, k, b, p, act)
    if act == "softmax":
        ytol = TOL * 2 * np.abs(y_ref) * (zmag.max(axis=-1, keepdims=True) if zmag.size else zmag)
    else:
        ytol = TOL * SLOPE[act] * zmag
    ady = np.abs(dy.astype(np.float64))
    if act == "softmax":  # |dz| <= y (|dy| + max|dy|); its error also carries the forward's
        scale = ady.max(axis=-1, keepdims=True) if ady.size else ady
        dzmag = np.abs(y_ref) * (ady + scale) * (1 + zmag.max(axis=-1, keepdims=True) if zmag.size else 1)
    elif act in ("sigmoid", "tanh"):  # f' from the (rounded) output: error ~ |dy| * |z err|
        dzmag = SLOPE[act] * ady * (1 + zmag)
    else:
        dzmag = SLOPE[act] * ady
    gmag = ref_bwd(ax, ak, None, dzmag, p)
    return ytol + 1e-6, tuple(TOL * m + 1e-6 for m in gmag)


SMALL_EDGES = [
    # batch 0; length == dilated kernel (valid -> one step); length 1 with same / causal; channels 1
    dict(batch=0, length=5, cg=2, fg=3, groups=1, kernel_size=3, strides=1, dilation_rate=1, padding="same"),
    dict(batch=2, length=7, cg=1, fg=1, groups=1, kernel_size=4, strides=1, dilation_rate=2, padding="valid"),
    dict(batch=1, length=1, cg=3, fg=2, groups=1, kernel_size=5, strides=1, dilation_rate=3, padding="same"),
    dict(batch=1, length=1, cg=1, fg=2, groups=2, kernel_size=4, strides=3, dilation_rate=2, padding="causal"),
    dict(batch=3, length=11, cg=1, fg=1, groups=3, kernel_size=2, strides=2, dilation_rate=3, padding="same"),
    dict(batch=1, length=9, cg=3, fg=5, groups=1, kernel_size=1, strides=4, dilation_rate=1, padding="valid"),
    dict(batch=2, length=1, cg=17, fg=16, groups=1, kernel_size=3, strides=1, dilation_rate=1, padding="same"),
    # no input channels (the output is the bias), with and without groups
    dict(batch=2, length=5, cg=0, fg=2, groups=2, kernel_size=3, strides=1, dilation_rate=1, padding="same"),
    dict(batch=2, length=5, cg=0, fg=2, groups=1, kernel_size=3, strides=2, dilation_rate=1, padding="causal"),
]


def with_edges(f):
    for i, e in enumerate(SMALL_EDGES):
        for act in ("linear", "softmax"):
            f = example({**e, "activation": act, "use_bias": bool(i % 2), "seed": i})(f)
    return f


@settings(max_examples=400, deadline=None)
@given(conv_problems())
@with_edges
def test_forward_and_gradients_match_reference(p: dict) -> None:
    x, k, b, dy = make_problem(p)
    x0, k0 = x.copy(), k.copy()
    act = p["activation"]
    y = kernels.conv1d_forward(x, k, b, activation=act, **opts(p))
    assert y.dtype == np.float32 and y.flags.c_contiguous and y.shape == dy.shape
    ytol, (dxtol, dktol, dbtol) = bounds(x, k, b, dy, p)
    y_ref = ref_fwd(x, k, b, p, act)
    assert_within(y, y_ref, ytol, f"y {p}")

    g = kernels.conv1d_backward(x, k, y, dy, activation=act, use_bias=p["use_bias"], **opts(p))
    dx_ref, dk_ref, db_ref = ref_bwd(x, k, b, dy, p, act)
    assert isinstance(g, kernels.Conv1DGrads)
    assert g.dx.dtype == g.dkernel.dtype == np.float32
    assert_within(g.dx, dx_ref, dxtol, f"dx {p}")
    assert_within(g.dkernel, dk_ref, dktol, f"dkernel {p}")
    if p["use_bias"]:
        assert_within(g.dbias, db_ref, dbtol, f"dbias {p}")
    else:
        assert g.dbias is None
    np.testing.assert_array_equal(x, x0)  # inputs are read, never written
    np.testing.assert_array_equal(k, k0)

    no_dx = kernels.conv1d_backward(x, k, y, dy, activation=act, need_dx=False, **opts(p))
    assert no_dx.dx is None
    np.testing.assert_array_equal(no_dx.dkernel, g.dkernel)


@pytest.mark.parametrize(
    "p",
    [
        # several forward row blocks and dx blocks (256 rows each), odd sizes, every padding
        dict(batch=3, length=700, cg=20, fg=24, groups=1, kernel_size=5, strides=1, dilation_rate=1, padding="same"),
        dict(batch=2, length=530, cg=5, fg=7, groups=1, kernel_size=4, strides=2, dilation_rate=2, padding="same"),
        dict(batch=2, length=601, cg=3, fg=4, groups=2, kernel_size=4, strides=2, dilation_rate=3, padding="causal"),
        dict(batch=1, length=1030, cg=2, fg=3, groups=3, kernel_size=3, strides=3, dilation_rate=1, padding="valid"),
        dict(batch=5, length=300, cg=8, fg=16, groups=1, kernel_size=9, strides=1, dilation_rate=2, padding="same"),
    ],
)
@pytest.mark.parametrize("act", ["linear", "tanh"])
def test_long_sequences_match_reference(p: dict, act: str) -> None:
    p = {**p, "activation": act, "use_bias": True, "seed": 7}
    x, k, b, dy = make_problem(p)
    y = kernels.conv1d_forward(x, k, b, activation=act, **opts(p))
    ytol, (dxtol, dktol, dbtol) = bounds(x, k, b, dy, p)
    assert_within(y, ref_fwd(x, k, b, p, act), ytol, "y")
    g = kernels.conv1d_backward(x, k, y, dy, activation=act, **opts(p))
    dx_ref, dk_ref, db_ref = ref_bwd(x, k, b, dy, p, act)
    assert_within(g.dx, dx_ref, dxtol, "dx")
    assert_within(g.dkernel, dk_ref, dktol, "dkernel")
    assert_within(g.dbias, db_ref, dbtol, "dbias")


# --- finite differences ----------------------------------------------------------------------------


def numeric_grads(x, k, b, g, p, act, h=1e-5):
    """Central differences of loss = Σ reference_forward · g by x, kernel and bias (float64)."""
    arrs = [np.array(a, dtype=np.float64) for a in (x, k, b)]

    def loss() -> float:
        return float(np.sum(ref_fwd(arrs[0], arrs[1], arrs[2], p, act) * g))

    out = []
    for a in arrs:
        grad = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + h
            up = loss()
            a[i] = old - h
            down = loss()
            a[i] = old
            grad[i] = (up - down) / (2 * h)
        out.append(grad)
    return out


@settings(max_examples=60, deadline=None)
@given(conv_problems())
def test_gradients_match_finite_differences(p: dict) -> None:
    # small enough for one reference forward per parameter
    p = {**p, "batch": min(p["batch"], 2), "cg": min(p["cg"], 2), "fg": min(p["fg"], 2), "use_bias": True}
    span = p["dilation_rate"] * (p["kernel_size"] - 1) + 1
    p["length"] = min(p["length"], max(8, span) if p["padding"] == "valid" else 8)
    x, k, b, dy = make_problem(p)
    act = p["activation"]
    num = numeric_grads(x, k, b, dy.astype(np.float64), p, act)
    # the reference's own backward agrees with its finite differences (the oracle is right) ...
    for name, r, n in zip(("dx", "dkernel", "dbias"), ref_bwd(x, k, b, dy, p, act), num, strict=True):
        np.testing.assert_allclose(r, n, rtol=1e-6, atol=1e-6 * (1 + np.abs(n).max(initial=0)), err_msg=name)
    # ... and so does the kernel, at float32 accuracy
    y = kernels.conv1d_forward(x, k, b, activation=act, **opts(p))
    got = kernels.conv1d_backward(x, k, y, dy, activation=act, **opts(p))
    for name, gv, n in zip(("dx", "dkernel", "dbias"), got, num, strict=True):
        np.testing.assert_allclose(gv, n, rtol=1e-4, atol=2e-5 * (1 + np.abs(n).max(initial=0)), err_msg=name)


# --- layouts, SIMD levels, threads ----------------------------------------------------------------


def nan_padded_view(a: np.ndarray, axis: int) -> np.ndarray:
    """`a` as a strided view (step 2 along `axis`) of a buffer whose gaps hold NaN."""
    shape = list(a.shape)
    shape[axis] *= 2
    base = np.full(shape, np.nan, dtype=a.dtype)
    idx = [slice(None)] * a.ndim
    idx[axis] = slice(None, None, 2)
    base[tuple(idx)] = a
    return base[tuple(idx)]


LAYOUTS = {
    "fortran": np.asfortranarray,
    "strided_steps": lambda a: nan_padded_view(a, min(1, a.ndim - 1)),  # (bias: its only axis)
    "strided_channels": lambda a: nan_padded_view(a, a.ndim - 1),
    "negative_stride": lambda a: np.ascontiguousarray(a[::-1])[::-1],
    "float64": lambda a: a.astype(np.float64),
    "list": lambda a: a.tolist(),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("which", ["x", "kernel", "bias", "y", "dy"])
def test_layouts_and_dtypes_give_the_same_result(layout: str, which: str) -> None:
    p = dict(batch=2, length=9, cg=3, fg=2, groups=2, kernel_size=3, strides=2, dilation_rate=2,
             padding="same", activation="tanh", use_bias=True, seed=3)  # fmt: skip
    x, k, b, dy = make_problem(p)
    kw = {**opts(p), "activation": "tanh"}
    y = kernels.conv1d_forward(x, k, b, **kw)
    g = kernels.conv1d_backward(x, k, y, dy, **kw)
    args = {"x": x, "kernel": k, "bias": b, "y": y, "dy": dy}
    args[which] = LAYOUTS[layout](args[which])
    y2 = kernels.conv1d_forward(args["x"], args["kernel"], args["bias"], **kw)
    np.testing.assert_array_equal(y2, y)
    g2 = kernels.conv1d_backward(args["x"], args["kernel"], args["y"], args["dy"], **kw)
    for a, c in zip(g2, g, strict=True):
        np.testing.assert_array_equal(a, c)


def test_simd_levels_agree(force_simd) -> None:
    p = dict(batch=3, length=300, cg=6, fg=10, groups=2, kernel_size=5, strides=1, dilation_rate=2,
             padding="same", activation="sigmoid", use_bias=True, seed=11)  # fmt: skip
    x, k, b, dy = make_problem(p)
    kw = {**opts(p), "activation": "sigmoid"}
    results = []
    for level in ["portable", seqcore.detected_simd_level()]:
        force_simd(level)
        y = kernels.conv1d_forward(x, k, b, **kw)
        results.append((y, *kernels.conv1d_backward(x, k, y, dy, **kw)))
    for a, c in zip(results[0], results[1], strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("padding", "cg", "fg"), [("same", 8, 8), ("valid", 8, 8), ("same", 32, 64)])
def test_thread_counts_agree(padding: str, cg: int, fg: int) -> None:
    p = dict(batch=3, length=900, cg=cg, fg=fg, groups=1, kernel_size=5, strides=1, dilation_rate=1,
             padding=padding, activation="relu", use_bias=True, seed=5)  # fmt: skip
    x, k, b, dy = make_problem(p)
    kw = {**opts(p), "activation": "relu"}
    results = []
    before = seqcore.get_num_threads()
    try:
        for n in (1, 2, 3):
            seqcore.set_num_threads(n)
            y = kernels.conv1d_forward(x, k, b, **kw)
            results.append((y, *kernels.conv1d_backward(x, k, y, dy, **kw)))
    finally:
        seqcore.set_num_threads(before)
    for other in results[1:]:
        for a, c in zip(results[0], other, strict=True):
            np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-4)
    # and a given thread count is reproducible (fixed partition of the reductions)
    seqcore.set_num_threads(2)
    try:
        y = kernels.conv1d_forward(x, k, b, **kw)
        again = kernels.conv1d_backward(x, k, y, dy, **kw)
    finally:
        seqcore.set_num_threads(before)
    np.testing.assert_array_equal(again.dkernel, results[1][2])


def test_ops_exports_the_conv_and_pooling_api() -> None:
    from seqcore import _conv

    assert set(_conv.__all__) <= set(kernels.__all__)
    for name in _conv.__all__:
        assert getattr(kernels, name) is getattr(_conv, name)


def test_activation_none_means_linear_and_defaults_are_keras() -> None:
    p = dict(batch=2, length=6, cg=2, fg=3, groups=1, kernel_size=3, strides=1, dilation_rate=1,
             padding="valid", activation="linear", use_bias=True, seed=1)  # fmt: skip
    x, k, b, _ = make_problem(p)
    np.testing.assert_array_equal(kernels.conv1d_forward(x, k, b), kernels.conv1d_forward(x, k, b, activation="linear"))
    assert kernels.conv1d_forward(x, k, b).shape == (2, 4, 3)  # valid, stride 1 by default
    np.testing.assert_array_equal(
        kernels.conv1d_forward(x, k, b, strides=(2,), padding="SAME"),
        kernels.conv1d_forward(x, k, b, strides=2, padding="same"),
    )


# --- errors ---------------------------------------------------------------------------------------

X = np.zeros((2, 10, 4), np.float32)
K = np.zeros((3, 4, 6), np.float32)


def raises(exc, *parts, **call):
    fn = call.pop("fn", kernels.conv1d_forward)
    args = call.pop("args", (X, K))
    with pytest.raises(exc) as e:
        fn(*args, **call)
    msg = str(e.value)
    for part in parts:
        assert part in msg, f"{part!r} not in message: {msg!r}"
    return msg


def test_short_input_with_valid_padding_names_length_kernel_and_fix() -> None:
    msg = raises(ValueError, "conv1d_forward", "4 steps", "kernel_size 3", "dilation_rate 2", 'padding="same"',
                 '"causal"', args=(np.zeros((2, 4, 4)), K), dilation_rate=2)  # fmt: skip
    assert "5" in msg  # the dilated span
    raises(ValueError, "conv1d_output_length", "kernel_size 3", fn=kernels.conv1d_output_length, args=(2, 3))
    # same input is fine with same / causal padding
    assert kernels.conv1d_forward(np.zeros((2, 4, 4)), K, dilation_rate=2, padding="causal").shape == (2, 4, 6)


@pytest.mark.parametrize("name", ["strides", "dilation_rate", "groups"])
@pytest.mark.parametrize("value", [0, -2])
def test_non_positive_sizes(name: str, value: int) -> None:
    raises(ValueError, "conv1d_forward", name, str(value), **{name: value})


@pytest.mark.parametrize("value", [1.5, True, "2", None, (1, 2)])
def test_non_integer_sizes(value) -> None:
    raises(TypeError, "conv1d_forward", "strides", "positive integer", strides=value)


def test_zero_kernel_size() -> None:
    raises(ValueError, "conv1d_forward", "kernel_size 0", args=(X, np.zeros((0, 4, 6))))


def test_groups_must_divide_channels_and_filters() -> None:
    raises(ValueError, "conv1d_forward", "4 channels", "groups=3", args=(X, np.zeros((3, 1, 6))), groups=3)
    raises(ValueError, "conv1d_forward", "5 filters", "groups=2", args=(X, np.zeros((3, 2, 5))), groups=2)


def test_kernel_channel_mismatch_explains_layout_and_pytorch() -> None:
    raises(ValueError, "conv1d_forward", "(3, 5, 6)", "(2, 10, 4)", "(kernel_size, 4, filters)", "PyTorch",
           "np.transpose(weight, (2, 1, 0))", args=(X, np.zeros((3, 5, 6))))  # fmt: skip
    raises(ValueError, "groups=2", "(kernel_size, 2, filters)", args=(X, K), groups=2)


@pytest.mark.parametrize("shape", [(4, 6), (3, 4, 6, 1), (6,)])
def test_kernel_rank(shape) -> None:
    raises(ValueError, "conv1d_forward", "3-D", "(kernel_size, in_channels/groups, filters)", str(shape),
           "PyTorch", args=(X, np.zeros(shape)))  # fmt: skip


def test_pytorch_weight_is_caught_by_the_bias() -> None:
    """A torch weight (filters=6, 4, K=3) has the right middle axis; its bias (6,) exposes it."""
    raises(ValueError, "conv1d_forward", "bias", "(3,)", "(6,)", "PyTorch", "np.transpose",
           args=(X, np.zeros((6, 4, 3)), np.zeros(6)))  # fmt: skip


@pytest.mark.parametrize("shape", [(10, 4), (2, 10, 4, 1), (4,)])
def test_x_rank(shape) -> None:
    msg = raises(ValueError, "conv1d_forward", "3-D (batch, steps, channels)", str(shape), args=(np.zeros(shape), K))
    if len(shape) == 2:
        assert "x[None]" in msg


def test_bad_padding_and_activation() -> None:
    raises(ValueError, "conv1d_forward", "padding", "'full'", "causal", padding="full")
    raises(ValueError, "conv1d_forward", "unknown activation", "'celu'", activation="celu")
    raises(ValueError, "conv1d_forward", "'gelu' cannot be fused", "activation='linear'", activation="gelu")
    raises(TypeError, "conv1d_forward", "x", "real numbers", args=(X.astype(np.complex64), K))


def test_backward_checks_y_and_dy_shapes() -> None:
    y = kernels.conv1d_forward(X, K, padding="same")
    raises(ValueError, "conv1d_backward", "`y`", "(2, 10, 6)", "(2, 8, 6)", "same strides, padding",
           fn=kernels.conv1d_backward, args=(X, K, np.zeros((2, 8, 6)), y), padding="same")  # fmt: skip
    raises(ValueError, "conv1d_backward", "`dy`", "(2, 10, 6)", "(2, 10, 1)",
           fn=kernels.conv1d_backward, args=(X, K, y, np.zeros((2, 10, 1))), padding="same")  # fmt: skip


def test_raw_extension_rejects_bad_shapes_without_crashing() -> None:
    ext = seqcore._seqcore
    with pytest.raises(ValueError, match="conv1d_forward.*groups"):
        ext.conv1d_forward(X, np.zeros((3, 3, 6), np.float32), None, 1, "valid", 1, 1, "linear")
    with pytest.raises(ValueError, match="conv1d_forward.*shorter than the dilated kernel"):
        ext.conv1d_forward(X, np.zeros((6, 4, 6), np.float32), None, 1, "valid", 2, 1, "linear")
    with pytest.raises(ValueError, match="conv1d_forward.*strides must be a positive"):
        ext.conv1d_forward(X, K, None, 0, "valid", 1, 1, "linear")
    with pytest.raises(ValueError, match="conv1d_backward.*dy has shape"):
        ext.conv1d_backward(X, K, np.zeros((2, 8, 6), np.float32), np.zeros((2, 7, 6), np.float32),
                            1, "valid", 1, 1, "linear", True, True)  # fmt: skip
    with pytest.raises(ValueError, match="C-contiguous"):
        ext.conv1d_forward(np.asfortranarray(X), K, None, 1, "valid", 1, 1, "linear")
