"""Buffer reuse (rust/src/pool.rs) and the opt-in glibc malloc tuning (seqcore/_malloc.py)."""

from __future__ import annotations

import gc
import platform
import subprocess
import sys

import numpy as np
import pytest
import seqcore
from seqcore import kernels


def test_output_buffers_are_reused_and_released() -> None:
    seqcore.release_memory()
    x = np.ones((64, 100, 32), np.float32)
    k = np.ones((32, 256), np.float32)
    y = kernels.dense_forward(x, k)
    ptr = y.__array_interface__["data"][0]
    assert y.flags.c_contiguous and y.flags.writeable and y.base is not None
    del y
    gc.collect()
    assert seqcore.info()["cached_buffer_bytes"] >= 64 * 100 * 256 * 4  # back in the pool
    y2 = kernels.dense_forward(x, k)
    assert y2.__array_interface__["data"][0] == ptr  # the same memory, no new pages
    np.testing.assert_allclose(y2, 32.0)
    keep = kernels.dense_forward(x, k)  # while y2 lives, a second output gets different memory
    assert keep.__array_interface__["data"][0] != y2.__array_interface__["data"][0]
    seqcore.release_memory()
    assert seqcore.info()["cached_buffer_bytes"] == 0


def test_glibc_tuning_is_opt_in() -> None:
    assert seqcore.info()["malloc_tuning"] is False
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    code = "import seqcore; print(seqcore.info()['malloc_tuning'], seqcore.tune_malloc())"
    out = subprocess.run([sys.executable, "-c", code], env={"PATH": ""}, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "True"], out.stderr
    out = subprocess.run(
        [sys.executable, "-c", "import seqcore; print(seqcore.info()['malloc_tuning'])"],
        env={"SEQCORE_MALLOC_TUNING": "1", "PATH": ""}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.stdout.strip() == "True", out.stderr
