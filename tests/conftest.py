"""Shared fixtures for the seqcore test suite.

Every test leaves the process-wide runtime state (SIMD level, thread count) as it found it: an autouse
fixture restores both, so a failing test that forced ``portable`` or one thread cannot change what
the tests after it measure. Hypothesis exempts autouse fixtures from its function-scoped-fixture
health check, so property tests get the same guarantee.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator

import pytest
import seqcore
from hypothesis import settings
from seqcore import _seqcore

LEVEL_NAMES = ("portable", "avx2", "avx512")

# When a property test fails, Hypothesis imports libcst (to write a patch file with the failing
# example), and libcst's import emits a DeprecationWarning from mypy_extensions that
# `filterwarnings = error` turns into a pytest INTERNALERROR which hides the real failure and stops
# the run. Import it once here with exactly that warning ignored, so failures are reported normally.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "mypy_extensions.TypedDict is deprecated", DeprecationWarning)
    try:
        import libcst  # noqa: F401
    except ImportError:
        pass


# CI runs the property tests derandomized (HYPOTHESIS_PROFILE=ci, set by .ci/run): the same examples
# on every run, so a submission's CI result does not depend on the draw. Local runs keep exploring
# new random examples (and Hypothesis's database replays any failure found).
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _restore_simd(level: str) -> None:
    # `None` returns to the detected level (the documented reset); a level lowered by SEQCORE_SIMD
    # for the whole run is restored by name so that such a run keeps testing that level.
    _seqcore._force_simd_level(None if level == seqcore.detected_simd_level() else level)


@pytest.fixture(autouse=True)
def _restore_runtime_state() -> Iterator[None]:
    level = seqcore.simd_level()
    threads = seqcore.get_num_threads()
    try:
        yield
    finally:
        _restore_simd(level)
        seqcore.set_num_threads(threads)


@pytest.fixture(scope="session")
def simd_levels() -> list[str]:
    """The SIMD levels this CPU can run, lowest first (always starts with "portable")."""
    start = seqcore.simd_level()
    levels = []
    try:
        for name in LEVEL_NAMES:
            if _seqcore._force_simd_level(name) == name:  # capped to the CPU's best otherwise
                levels.append(name)
    finally:
        _restore_simd(start)
    assert levels[0] == "portable"
    return levels


@pytest.fixture
def force_simd() -> Iterator[Callable[[str | None], str]]:
    """`force_simd(level)` forces a SIMD level for the rest of the test; undone on teardown."""
    start = seqcore.simd_level()
    try:
        yield _seqcore._force_simd_level
    finally:
        _restore_simd(start)


@pytest.fixture(scope="session")
def run_python() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs `python -c code` in a fresh interpreter with SEQCORE_* variables removed from the
    environment unless given in `env`; a hang fails after `timeout` seconds instead of blocking."""

    def run(code: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SEQCORE_")}
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-c", code],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run
