"""The glibc malloc tuning applied at import (see seqcore/_malloc.py) and its opt-out."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest
import seqcore


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_tuned_by_default_and_reported() -> None:
    assert seqcore.info()["malloc_tuning"] is True


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_opt_out() -> None:
    code = "import seqcore; print(seqcore.info()['malloc_tuning'])"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"SEQCORE_MALLOC_TUNING": "0", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip() == "False", out.stderr
