"""Runtime controls: SIMD dispatch, thread count, fork safety and the GIL.

The SIMD levels are compared in one process through `_force_simd_level` (the portable copy is the
baseline every other copy must reproduce); environment variables are read once per process, so they
are tested in subprocesses.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import numpy as np
import pytest
import seqcore
from seqcore import _seqcore, kernels, reference
from seqcore._seqcore import ACTIVATIONS

TINY = float(np.finfo(np.float32).tiny)


# --- SIMD levels -----------------------------------------------------------------------------------


def test_simd_level_names(simd_levels):
    assert seqcore.simd_level() in simd_levels
    assert seqcore.detected_simd_level() == simd_levels[-1]
    assert seqcore.info()["simd_level"] == seqcore.simd_level()
    assert seqcore.info()["detected_simd_level"] == seqcore.detected_simd_level()


def test_force_simd_level(simd_levels, force_simd):
    detected = seqcore.detected_simd_level()
    for level in simd_levels:
        assert force_simd(level) == level
        assert seqcore.simd_level() == level
    assert force_simd("scalar") == "portable"  # documented alias
    assert seqcore.simd_level() == "portable"
    # Never above what the CPU has: asking for the top level gives the detected one.
    assert force_simd("avx512") == detected
    assert force_simd(None) == detected
    assert seqcore.simd_level() == detected
    with pytest.raises(ValueError, match="Received"):
        force_simd("neon")
    assert seqcore.simd_level() == detected  # a rejected name changes nothing


def act_inputs(seed=0):
    rng = np.random.default_rng(seed)
    # width 17 (odd: exercises the vector tails) x 59 rows = 1003 values over a wide range
    z = (rng.standard_normal((59, 17)) * rng.choice([0.1, 1, 5, 40], (59, 1))).astype(np.float32)
    dy = rng.standard_normal(z.shape).astype(np.float32)
    return z, dy


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_activation_levels_agree(act, simd_levels, force_simd):
    z, dy = act_inputs()
    results = {}
    for level in simd_levels:
        assert force_simd(level) == level
        y = kernels.activation(z, act)
        results[level] = (y, kernels.activation_backward(y, dy, act))
    y0, dz0 = results["portable"]
    # sanity: the baseline itself is right, so agreeing with it means something
    with np.errstate(over="ignore"):  # exponential: e^x as float32 holds it (inf from 88.73 on)
        want = reference.activation(z, act).astype(np.float32)
    np.testing.assert_allclose(y0, want, rtol=2e-6, atol=1e-7)
    for level in simd_levels[1:]:
        y, dz = results[level]
        np.testing.assert_allclose(y, y0, rtol=1e-6, atol=2 * TINY, err_msg=f"{act} forward at {level}")
        # dz = dy * f'(y): 1 - y cancels near saturation, so compare on the scale of dy
        np.testing.assert_allclose(
            dz, dz0, rtol=1e-6, atol=1e-6 * np.abs(dy).max(), err_msg=f"{act} backward at {level}"
        )


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("x_shape", [(3, 101, 13), (1, 37)], ids=["row-blocks", "one-row"])
def test_dense_levels_agree(act, x_shape, simd_levels, force_simd):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(np.float32)
    k = (rng.standard_normal((x_shape[-1], 11)) / 3).astype(np.float32)
    b = rng.standard_normal(11).astype(np.float32)
    dy = rng.standard_normal((*x_shape[:-1], 11)).astype(np.float32)
    results = {}
    for level in simd_levels:
        assert force_simd(level) == level
        y = kernels.dense_forward(x, k, b, act)
        results[level] = (y, *kernels.dense_backward(x, k, y, dy, act))
    base = results["portable"]
    for level in simd_levels[1:]:
        for name, got, want in zip(("y", "dx", "dkernel", "dbias"), results[level], base, strict=True):
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * scale, err_msg=f"{act} {name} at {level}")


PRINT_RUNTIME = (
    "import json, seqcore; "
    "print(json.dumps({'simd': seqcore.simd_level(), 'detected': seqcore.detected_simd_level(), "
    "'threads': seqcore.get_num_threads()}))"
)


def runtime_in_subprocess(run_python, env):
    proc = run_python(PRINT_RUNTIME, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("value", ["scalar", "portable", " PORTABLE "])
def test_env_forces_portable(run_python, value):
    assert runtime_in_subprocess(run_python, {"SEQCORE_SIMD": value})["simd"] == "portable"


def test_env_simd_is_capped_and_ignores_garbage(run_python):
    info = runtime_in_subprocess(run_python, {"SEQCORE_SIMD": "avx512"})
    assert info["simd"] == info["detected"]  # never above the CPU
    info = runtime_in_subprocess(run_python, {"SEQCORE_SIMD": "neon"})
    assert info["simd"] == info["detected"]  # unknown name: the detected level


def test_env_scalar_still_computes_correctly(run_python):
    code = (
        "import numpy as np, seqcore; from seqcore import kernels, reference\n"
        "assert seqcore.simd_level() == 'portable'\n"
        "x = np.linspace(-8, 8, 999, dtype=np.float32).reshape(-1, 9)\n"
        "for a in ('sigmoid', 'tanh', 'softmax'):\n"
        "    want = reference.activation(x, a)\n"
        "    np.testing.assert_allclose(kernels.activation(x, a), want, rtol=2e-6, atol=1e-7)\n"
        "print('ok')\n"
    )
    proc = run_python(code, env={"SEQCORE_SIMD": "scalar"})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


# --- threads ---------------------------------------------------------------------------------------


def cores_available():
    counts = {os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        counts.add(len(os.sched_getaffinity(0)))  # what Rust's available_parallelism honours
    return counts


def test_default_threads_is_cpu_count(run_python):
    assert runtime_in_subprocess(run_python, {})["threads"] in cores_available()


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("3", 3), (" 2 ", 2)])
def test_env_num_threads(run_python, value, expected):
    assert runtime_in_subprocess(run_python, {"SEQCORE_NUM_THREADS": value})["threads"] == expected


@pytest.mark.parametrize("value", ["0", "-2", "many", ""])
def test_env_num_threads_invalid_falls_back_to_cores(run_python, value):
    assert runtime_in_subprocess(run_python, {"SEQCORE_NUM_THREADS": value})["threads"] in cores_available()


def threaded_workload():
    """Problems big enough to be split across threads: dense over several row blocks and over one
    row (GEMM splits columns), mse and sgd over several chunks."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 600, 33)).astype(np.float32)
    k = (rng.standard_normal((33, 21)) / 6).astype(np.float32)
    b = rng.standard_normal(21).astype(np.float32)
    dy = rng.standard_normal((4, 600, 21)).astype(np.float32)
    x1 = rng.standard_normal((1, 512)).astype(np.float32)
    k1 = (rng.standard_normal((512, 300)) / 20).astype(np.float32)
    p = rng.standard_normal(100_003).astype(np.float32)
    t = rng.standard_normal(100_003).astype(np.float32)

    y = kernels.dense_forward(x, k, b, "tanh")
    dx, dk, db = kernels.dense_backward(x, k, y, dy, "tanh")
    y1 = kernels.dense_forward(x1, k1, None, "sigmoid")
    loss, g = kernels.mse(p, t)
    q = p.copy()
    kernels.sgd_update(q, t, 0.125)
    return {"y": y, "dx": dx, "dk": dk, "db": db, "y1": y1, "loss": np.float64(loss), "g": g, "sgd": q}


def test_set_num_threads_changes_count_and_not_results():
    seqcore.set_num_threads(1)
    assert seqcore.get_num_threads() == 1 and seqcore.info()["num_threads"] == 1
    one = threaded_workload()
    seqcore.set_num_threads(3)  # more threads than this CI's 2 cores is allowed
    assert seqcore.get_num_threads() == 3
    three = threaded_workload()
    seqcore.set_num_threads(2)
    assert seqcore.get_num_threads() == 2
    two = threaded_workload()
    for name in one:
        scale = max(1.0, float(np.abs(one[name]).max()))
        for other in (two, three):
            np.testing.assert_allclose(other[name], one[name], rtol=1e-6, atol=1e-6 * scale, err_msg=name)
    # and they are right, not merely consistent
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 600, 33)).astype(np.float32)
    k = (rng.standard_normal((33, 21)) / 6).astype(np.float32)
    b = rng.standard_normal(21).astype(np.float32)
    np.testing.assert_allclose(three["y"], reference.dense_forward(x, k, b, "tanh"), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n", [0, -1, -100])
def test_set_num_threads_rejects_non_positive(n):
    before = seqcore.get_num_threads()
    with pytest.raises(ValueError, match="Received"):
        seqcore.set_num_threads(n)
    assert seqcore.get_num_threads() == before


@pytest.mark.parametrize("n", ["2", 2.5, 2.0, True, False, None, [2]])
def test_set_num_threads_rejects_non_int(n):
    before = seqcore.get_num_threads()
    with pytest.raises(TypeError, match="set_num_threads"):
        seqcore.set_num_threads(n)
    assert seqcore.get_num_threads() == before


FORK_SCRIPT = r"""
import os, sys
import numpy as np
import seqcore
from seqcore import kernels, reference

seqcore.set_num_threads(2)
rng = np.random.default_rng(0)
x = rng.standard_normal((8, 300, 16)).astype(np.float32)
k = rng.standard_normal((16, 8)).astype(np.float32)
dy = rng.standard_normal((8, 300, 8)).astype(np.float32)
want = reference.dense_forward(x, k, None, "tanh")

def works():
    y = kernels.dense_forward(x, k, None, "tanh")          # row-parallel: needs the pool's workers
    dx, dk, db = kernels.dense_backward(x, k, y, dy, "tanh")
    return np.allclose(y, want, rtol=1e-5, atol=1e-5) and np.isfinite(dk).all()

assert works()  # the pool now exists, with worker threads, in the parent
pid = os.fork()
if pid == 0:
    try:
        ok = works()
        seqcore.set_num_threads(3)  # and a resized pool in the child
        ok = ok and works()
    except BaseException:
        ok = False
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
if code != 0:
    sys.exit(10 + code)
sys.exit(0 if works() else 3)  # the parent's pool is unharmed
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX fork()")
def test_fork_after_pool_use(run_python):
    # A deadlock in the child makes the parent wait forever: the subprocess timeout turns it into
    # a failure (subprocess.TimeoutExpired) instead of a hung test run.
    proc = run_python(FORK_SCRIPT, timeout=60)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"


# --- the GIL -------------------------------------------------------------------------------------


def test_kernel_releases_the_gil():
    """While a long dense_forward runs in a worker thread, the main thread keeps running Python.

    With the GIL held for the kernel, the main thread could run only in the few milliseconds
    (switch interval) before the worker enters Rust, so it would see the kernel for ~0% of its
    duration; with the GIL released it sees it for nearly all of it. The threshold (half the kernel's
    duration, which is asserted to be >= 80 ms) sits far from both.
    """
    seqcore.set_num_threads(1)  # leave a core to the main thread on a 2-core machine
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8192, 768)).astype(np.float32)
    k = rng.standard_normal((768, 1024)).astype(np.float32)
    kernels.dense_forward(x[:8], k)  # warm up (pool creation)

    state = {"in_kernel": False, "done": False, "duration": 0.0}

    def worker():
        state["in_kernel"] = True
        t0 = time.perf_counter()
        kernels.dense_forward(x, k)
        state["duration"] = time.perf_counter() - t0
        state["in_kernel"] = False
        state["done"] = True

    seen = []
    thread = threading.Thread(target=worker)
    thread.start()
    while not state["done"]:
        if state["in_kernel"]:
            seen.append(time.perf_counter())
    thread.join()

    duration = state["duration"]
    assert duration >= 0.08, f"kernel too short ({duration:.3f}s) for this test to mean anything"
    span = seen[-1] - seen[0] if len(seen) >= 2 else 0.0
    assert span >= 0.5 * duration, (
        f"main thread ran during only {span:.3f}s of a {duration:.3f}s kernel "
        f"({len(seen)} iterations): the GIL seems held"
    )
    assert len(seen) > 1000


def test_info_is_consistent():
    info = seqcore.info()
    assert info.pop("malloc_tuning") in (True, False)
    assert info.pop("cached_buffer_bytes") >= 0
    assert info == {
        "version": seqcore.__version__,
        "simd_level": seqcore.simd_level(),
        "detected_simd_level": seqcore.detected_simd_level(),
        "num_threads": seqcore.get_num_threads(),
        "build_profile": seqcore.BUILD_PROFILE,
    }
    assert info["build_profile"] in ("release", "debug")
    assert _seqcore.__version__ == seqcore.__version__
    assert sys.modules["seqcore._seqcore"] is _seqcore
