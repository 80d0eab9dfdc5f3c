"""Bad input raises ValueError / TypeError naming the op (and the shapes involved), never a crash;
a Rust panic surfaces as RuntimeError; the raw `_seqcore` functions can't be crashed either."""

from __future__ import annotations

import re

import numpy as np
import pytest
import seqcore
from seqcore import _seqcore, kernels
from seqcore._seqcore import ACTIVATIONS

F32 = np.float32


def arr(*shape, value=0.5):
    return np.full(shape, value, dtype=F32)


def assert_mentions(excinfo, *parts):
    msg = str(excinfo.value)
    for part in parts:
        assert part in msg, f"{part!r} not in message: {msg!r}"


# --- dense_forward ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3,), (0,)])
def test_dense_forward_x_rank(shape):
    with pytest.raises(ValueError) as e:
        kernels.dense_forward(np.zeros(shape, F32), arr(3, 2))
    assert_mentions(e, "dense_forward", "rank", str(shape))


@pytest.mark.parametrize("x", [np.float32(1.0), np.array(1.0, F32), 1.0])
def test_dense_forward_scalar_x(x):
    with pytest.raises(ValueError) as e:
        kernels.dense_forward(x, arr(1, 2))
    assert_mentions(e, "dense_forward", "rank")


def test_dense_forward_mismatched_features():
    with pytest.raises(ValueError) as e:
        kernels.dense_forward(arr(2, 3, 4), arr(5, 6))
    assert_mentions(e, "dense_forward", "(5, 6)", "(2, 3, 4)")


def test_dense_forward_pytorch_layout_hint():
    with pytest.raises(ValueError) as e:
        kernels.dense_forward(arr(7, 4), arr(6, 4))  # a (units, in_features) weight
    assert_mentions(e, "dense_forward", "(6, 4)", "(7, 4)", "transpose")


@pytest.mark.parametrize("bias_shape", [(5,), (7,), (1, 6), (6, 1), ()])
def test_dense_forward_bias_shape(bias_shape):
    with pytest.raises(ValueError) as e:
        kernels.dense_forward(arr(2, 3, 4), arr(4, 6), np.zeros(bias_shape, F32))
    assert_mentions(e, "dense_forward", "bias", "(6,)", str(np.zeros(bias_shape).shape))


@pytest.mark.parametrize("kernel_shape", [(4, 6, 1), (4,), (), (1, 4, 6)])
def test_dense_forward_kernel_rank(kernel_shape):
    with pytest.raises(ValueError) as e:
        kernels.dense_forward(arr(2, 3, 4), np.zeros(kernel_shape, F32))
    assert_mentions(e, "dense_forward", "kernel", "2-D", str(kernel_shape))


UNCONVERTIBLE = {
    "complex": (lambda a: a.astype(np.complex64), TypeError),
    "object": (lambda a: a.astype(object), (TypeError, ValueError)),
    "str": (lambda a: a.astype(str), (TypeError, ValueError)),
    "datetime": (lambda a: a.astype("datetime64[s]"), TypeError),
    "None": (lambda a: None, TypeError),
    "string": (lambda a: "abc", (TypeError, ValueError)),
}


@pytest.mark.parametrize(
    ("arg", "bad"),
    [(arg, bad) for arg in ("x", "kernel", "bias") for bad in UNCONVERTIBLE if (arg, bad) != ("bias", "None")],
)
def test_dense_forward_unconvertible_dtype(arg, bad):
    transform, exc = UNCONVERTIBLE[bad]
    args = {"x": arr(2, 3, 4), "kernel": arr(4, 6), "bias": arr(6)}
    args[arg] = transform(args[arg])
    with pytest.raises(exc) as e:
        kernels.dense_forward(args["x"], args["kernel"], args["bias"])
    assert_mentions(e, "dense_forward", arg)


def test_object_array_of_numbers_is_still_rejected_by_name():
    with pytest.raises((TypeError, ValueError)) as e:
        kernels.dense_forward(np.array([[1, 2]], dtype=object), arr(2, 2))
    assert_mentions(e, "dense_forward", "x")


def test_dense_forward_complex_is_typeerror():
    with pytest.raises(TypeError) as e:
        kernels.dense_forward(arr(2, 3).astype(np.complex128), arr(3, 2))
    assert_mentions(e, "dense_forward", "complex")


@pytest.mark.parametrize("arg", ["x", "kernel"])
def test_ragged_list(arg):
    args = {"x": [[1.0, 2.0], [3.0]], "kernel": arr(2, 2)}
    if arg == "kernel":
        args = {"x": arr(3, 2), "kernel": [[1.0, 2.0], [3.0]]}
    with pytest.raises(ValueError) as e:
        kernels.dense_forward(args["x"], args["kernel"])
    assert_mentions(e, "dense_forward", arg)


OPS_WITH_ACTIVATION = {
    "dense_forward": lambda act: kernels.dense_forward(arr(2, 3), arr(3, 4), None, act),
    "dense_backward": lambda act: kernels.dense_backward(arr(2, 3), arr(3, 4), arr(2, 4), arr(2, 4), act),
    "activation": lambda act: kernels.activation(arr(2, 3), act),
    "activation_backward": lambda act: kernels.activation_backward(arr(2, 3), arr(2, 3), act),
}


@pytest.mark.parametrize("op", sorted(OPS_WITH_ACTIVATION))
@pytest.mark.parametrize("name", ["celu", "Relu", "", "None", " relu", "soft_max"])
def test_unknown_activation_lists_valid_names(op, name):
    with pytest.raises(ValueError) as e:
        OPS_WITH_ACTIVATION[op](name)
    assert_mentions(e, op, repr(name), *ACTIVATIONS)


@pytest.mark.parametrize("op", sorted(OPS_WITH_ACTIVATION))
@pytest.mark.parametrize("name", [1, 1.5, b"relu", ["relu"], np.tanh])
def test_activation_must_be_a_str(op, name):
    with pytest.raises(TypeError) as e:
        OPS_WITH_ACTIVATION[op](name)
    assert_mentions(e, op, "activation")


# --- dense_backward --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "shape"),
    [
        ("dy", (2, 3, 1)),
        ("dy", (3, 2, 4)),
        ("dy", (2, 3)),
        ("dy", (1, 3, 4)),
        ("y", (2, 3, 1)),
        ("y", (2, 3, 5)),
    ],
)
def test_dense_backward_no_broadcasting(arg, shape):
    args = {"y": arr(2, 3, 4), "dy": arr(2, 3, 4)}
    args[arg] = arr(*shape)
    with pytest.raises(ValueError) as e:
        kernels.dense_backward(arr(2, 3, 5), arr(5, 4), args["y"], args["dy"], "tanh")
    assert_mentions(e, "dense_backward", arg, str(shape), "(2, 3, 4)")


def test_dense_backward_mismatched_kernel():
    with pytest.raises(ValueError) as e:
        kernels.dense_backward(arr(2, 3, 5), arr(4, 4), arr(2, 3, 4), arr(2, 3, 4))
    assert_mentions(e, "dense_backward", "(4, 4)", "(2, 3, 5)")


def test_dense_backward_x_rank():
    with pytest.raises(ValueError) as e:
        kernels.dense_backward(arr(5), arr(5, 4), arr(4), arr(4))
    assert_mentions(e, "dense_backward", "rank", "(5,)")


def test_dense_backward_complex_dy():
    with pytest.raises(TypeError) as e:
        kernels.dense_backward(arr(2, 5), arr(5, 4), arr(2, 4), arr(2, 4).astype(np.complex64))
    assert_mentions(e, "dense_backward", "dy")


def test_activation_backward_shape_mismatch():
    with pytest.raises(ValueError) as e:
        kernels.activation_backward(arr(4, 3), arr(4, 1), "sigmoid")
    assert_mentions(e, "activation_backward", "(4, 3)", "(4, 1)")


def test_activation_unconvertible():
    with pytest.raises(TypeError) as e:
        kernels.activation(np.array(["a", "b"]), "relu")
    assert_mentions(e, "activation", "x")
    with pytest.raises(ValueError) as e:
        kernels.activation([[1.0], [2.0, 3.0]], "relu")
    assert_mentions(e, "activation", "x")


# --- mse and sgd_update ----------------------------------------------------------------------------


@pytest.mark.parametrize(("p", "t"), [((8, 1), (8,)), ((8,), (8, 1)), ((8, 3), (3,)), ((2, 4), (4, 2)), ((8,), ())])
def test_mse_no_silent_broadcast(p, t):
    with pytest.raises(ValueError) as e:
        kernels.mse(arr(*p), np.zeros(t, F32))
    assert_mentions(e, "mse", str(p), str(t))


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 0, 2)])
def test_mse_empty(shape):
    with pytest.raises(ValueError) as e:
        kernels.mse(np.zeros(shape, F32), np.zeros(shape, F32))
    assert_mentions(e, "mse", "empty")


def test_mse_unconvertible():
    with pytest.raises(TypeError) as e:
        kernels.mse(arr(3), np.ones(3, np.complex64))
    assert_mentions(e, "mse", "target")


@pytest.mark.parametrize(
    "param",
    [
        np.ones(4, np.float64),
        np.ones(4, np.int32),
        np.asfortranarray(np.ones((3, 4), F32)),
        np.ones(8, F32)[::2],
        [1.0, 2.0],
        np.float32(1.0),
    ],
    ids=["float64", "int32", "fortran", "strided", "list", "scalar"],
)
def test_sgd_param_must_be_c_float32_array(param):
    with pytest.raises(TypeError) as e:
        kernels.sgd_update(param, np.ones(np.shape(param), F32), 0.1)
    assert_mentions(e, "sgd_update", "param")


def test_sgd_read_only_param():
    p = arr(4)
    p.flags.writeable = False
    with pytest.raises(ValueError) as e:
        kernels.sgd_update(p, arr(4), 0.1)
    assert_mentions(e, "sgd_update", "read-only")
    np.testing.assert_array_equal(p, 0.5)


@pytest.mark.parametrize("g_shape", [(4, 1), (1, 4), (5,), (2, 2), (4, 4)])
def test_sgd_grad_shape(g_shape):
    p = arr(4)
    with pytest.raises(ValueError) as e:
        kernels.sgd_update(p, arr(*g_shape), 0.1)
    assert_mentions(e, "sgd_update", "grad", "(4,)", str(g_shape))
    np.testing.assert_array_equal(p, 0.5)  # untouched


@pytest.mark.parametrize("lr", [float("nan"), float("inf"), -float("inf")])
def test_sgd_non_finite_lr(lr):
    p = arr(4)
    with pytest.raises(ValueError) as e:
        kernels.sgd_update(p, arr(4), lr)
    assert_mentions(e, "sgd_update", "lr")
    np.testing.assert_array_equal(p, 0.5)


@pytest.mark.parametrize("lr", [None, "fast", [0.1]])
def test_sgd_lr_not_a_number(lr):
    p = arr(4)
    with pytest.raises((TypeError, ValueError)):
        kernels.sgd_update(p, arr(4), lr)
    np.testing.assert_array_equal(p, 0.5)


@pytest.mark.parametrize("lr", [1e39, -1e39])
def test_sgd_lr_overflowing_float32(lr):
    p = arr(4)
    try:
        kernels.sgd_update(p, np.zeros(4, F32), lr)
    except ValueError as e:
        assert "sgd_update" in str(e)
    np.testing.assert_array_equal(p, 0.5)  # rejected, or param - lr * 0 == param


def test_sgd_grad_aliasing_param():
    p = np.arange(6, dtype=F32)
    try:
        kernels.sgd_update(p, p, 0.25)
    except (TypeError, ValueError) as e:
        assert "sgd_update" in str(e), str(e)
    else:
        np.testing.assert_allclose(p, 0.75 * np.arange(6), rtol=1e-6)


# --- out= ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("out", "exc"),
    [
        (np.zeros((2, 3, 6), np.float64), TypeError),
        (np.asfortranarray(np.zeros((2, 3, 6), F32)), TypeError),
        (np.zeros((2, 3, 12), F32)[..., ::2], TypeError),
        ([[0.0] * 6] * 6, TypeError),
        (np.zeros((6, 6), F32), ValueError),
        (np.zeros((2, 3, 5), F32), ValueError),
    ],
    ids=["float64", "fortran", "strided", "list", "rows-shape", "units"],
)
def test_dense_forward_bad_out(out, exc):
    with pytest.raises(exc) as e:
        kernels.dense_forward(arr(2, 3, 4), arr(4, 6), out=out)
    assert_mentions(e, "dense_forward", "out")


def test_dense_forward_read_only_out():
    out = np.zeros((2, 6), F32)
    out.flags.writeable = False
    with pytest.raises(ValueError) as e:
        kernels.dense_forward(arr(2, 4), arr(4, 6), out=out)
    assert_mentions(e, "dense_forward", "out", "read-only")


# --- panics ----------------------------------------------------------------------------------------


def test_panic_is_runtime_error_and_library_keeps_working():
    for threads in (1, 2):
        seqcore.set_num_threads(threads)
        with pytest.raises(BaseException) as e:
            _seqcore._debug_panic()
        err = e.value
        # pyo3's PanicException derives from BaseException: `except Exception` would miss it.
        assert isinstance(err, RuntimeError), type(err).__mro__
        assert type(err).__name__ != "PanicException"
        assert_mentions(e, "_debug_panic", "bug")
        # the pool survives a panic in one of its workers
        x = np.arange(12, dtype=F32).reshape(3, 4)
        k = np.arange(8, dtype=F32).reshape(4, 2)
        np.testing.assert_allclose(kernels.dense_forward(x, k), x.astype(np.float64) @ k, rtol=1e-6)


# --- the raw extension functions -------------------------------------------------------------------


def strided(a):
    """A non-contiguous float32 view holding the same values as `a`."""
    base = np.zeros((*a.shape[:-1], a.shape[-1] * 2), F32)
    base[..., ::2] = a
    return base[..., ::2]


# op -> (call taking a dict of arrays, {argument: shape})
RAW = {
    "dense_forward": (
        lambda a: _seqcore.dense_forward(a["x"], a["kernel"], a["bias"], "linear", a["out"]),
        {"x": (5, 3), "kernel": (3, 4), "bias": (4,), "out": (5, 4)},
    ),
    "dense_backward": (
        lambda a: _seqcore.dense_backward(a["x"], a["kernel"], a["y"], a["dy"], "tanh", True, True),
        {"x": (5, 3), "kernel": (3, 4), "y": (5, 4), "dy": (5, 4)},
    ),
    "activation_forward": (lambda a: _seqcore.activation_forward(a["x"], "softmax"), {"x": (5, 4)}),
    "activation_backward": (
        lambda a: _seqcore.activation_backward(a["y"], a["dy"], "sigmoid"),
        {"y": (5, 4), "dy": (5, 4)},
    ),
    "mse": (lambda a: _seqcore.mse(a["pred"], a["target"]), {"pred": (5, 4), "target": (5, 4)}),
    "sgd_update": (
        lambda a: _seqcore.sgd_update(a["param"], a["grad"], 0.1),
        {"param": (5, 4), "grad": (5, 4)},
    ),
}
RAW_ARGS = [(op, arg) for op, (_, shapes) in RAW.items() for arg in shapes]


def call_raw(op, arg, transform):
    call, shapes = RAW[op]
    args = {name: arr(*shape) for name, shape in shapes.items()}
    args[arg] = transform(args[arg])
    return call(args)


def test_raw_calls_work_with_valid_arrays():
    for call, shapes in RAW.values():
        call({name: arr(*shape) for name, shape in shapes.items()})  # the baseline of the tests below


@pytest.mark.parametrize(("op", "arg"), RAW_ARGS)
def test_raw_non_contiguous_is_value_error(op, arg):
    with pytest.raises(ValueError) as e:
        call_raw(op, arg, strided)
    assert_mentions(e, "contiguous")


@pytest.mark.parametrize(("op", "arg"), RAW_ARGS)
def test_raw_float64_is_type_error(op, arg):
    with pytest.raises(TypeError):
        call_raw(op, arg, lambda a: a.astype(np.float64))


fortran = np.asfortranarray


@pytest.mark.parametrize("case", ["dense_forward x", "dense_forward out", "activation softmax", "sgd_update param"])
def test_raw_fortran_order_is_refused_or_correct(case):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3)).astype(F32)
    k = rng.standard_normal((3, 4)).astype(F32)
    try:
        if case == "dense_forward x":
            got, want = _seqcore.dense_forward(fortran(x), k, None, "linear"), x @ k
        elif case == "dense_forward out":
            out = fortran(np.zeros((5, 4), F32))
            _seqcore.dense_forward(x, k, None, "linear", out)
            got, want = out, x @ k
        elif case == "activation softmax":
            got = _seqcore.activation_forward(fortran(x), "softmax")
            want = kernels.activation(x, "softmax")
        else:
            p = fortran(x.copy())
            _seqcore.sgd_update(p, x, 1.0)
            got, want = p, np.zeros_like(x)
    except ValueError as e:
        assert re.search("contiguous", str(e))
        return
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def unaligned(a):
    buf = bytearray(a.nbytes + 1)
    u = np.frombuffer(buf, dtype=F32, offset=1, count=a.size).reshape(a.shape)
    u[...] = a
    assert not u.flags.aligned and u.flags.c_contiguous
    return u


@pytest.mark.parametrize("op", ["dense_forward", "activation", "mse"])
def test_unaligned_input_is_converted(op):
    x = np.arange(12, dtype=F32).reshape(3, 4) / 7
    if op == "dense_forward":
        k = np.eye(4, dtype=F32)
        np.testing.assert_array_equal(kernels.dense_forward(unaligned(x), k), kernels.dense_forward(x, k))
    elif op == "activation":
        np.testing.assert_array_equal(kernels.activation(unaligned(x), "tanh"), kernels.activation(x, "tanh"))
    else:
        assert kernels.mse(unaligned(x), x * 0)[0] == kernels.mse(x, x * 0)[0]
